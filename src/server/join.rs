//! Joining a running cluster with a new data directory: `concierge serve` with `JOIN`.
//!
//! The cluster must have added this node first (`POST /v1/cluster/members` with this
//! node's `HOST:ACTOR_PORT`, which gives it the next id, as a learner). The node then
//! asks any member for `GET /v1/cluster` and takes from it what makes it one of the
//! cluster: its id (the learner listening on its peer address), the first members and
//! the cluster token (the cluster id and the first membership), and the members of the
//! moment (whom to dial until it has caught up). It writes them to the data directory's
//! cluster file before the node starts, so a restart needs no `JOIN`.
//!
//! A directory that already holds a cluster file is never re-joined: its node restarts
//! as what it was (`config::check_cluster_file`).

use concierge_client::ClusterStatus;

use crate::config::ClusterFile;
use crate::node::MemberAddr;

/// What the join learnt, as the cluster file records it.
pub async fn join(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    peer_addr: &str,
) -> Result<ClusterFile, String> {
    let url = format!("{}/v1/cluster", url.trim_end_matches('/'));
    let mut request = client.get(&url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let resp = request
        .send()
        .await
        .map_err(|e| format!("asking {url} for the cluster: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("{url} answered {status}: {body}"));
    }
    let cluster: ClusterStatus = resp
        .json()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    cluster_file(&cluster, peer_addr).map_err(|why| format!("joining through {url}: {why}"))
}

/// The cluster file of the node listening on `peer_addr`, from a `GET /v1/cluster` answer.
pub fn cluster_file(cluster: &ClusterStatus, peer_addr: &str) -> Result<ClusterFile, String> {
    let mut peers = Vec::with_capacity(cluster.members.len());
    let mut me = None;
    for m in &cluster.members {
        let id = u32::try_from(m.id)
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("a member without a valid id: {}", m.id))?;
        if m.peer_addr == peer_addr {
            if m.role != "learner" {
                return Err(format!(
                    "{peer_addr} is already a voter (node {id}): a voter's lost directory \
                     cannot be re-joined; remove it and add a new member"
                ));
            }
            me = Some(id);
        }
        if !m.peer_addr.is_empty() {
            peers.push(MemberAddr {
                id,
                peer_addr: m.peer_addr.clone(),
                client_addr: m.client_addr.clone(),
            });
        }
    }
    let id = me.ok_or_else(|| {
        format!(
            "no learner listens on {peer_addr}: add this node first \
             (`concierge member add {peer_addr}`)"
        )
    })?;
    let mut first_addrs = Vec::with_capacity(cluster.first_members.len());
    for (i, m) in cluster.first_members.iter().enumerate() {
        // The first members' ids are their positions, counting from 1.
        if m.id != i as u64 + 1 {
            return Err(format!("first_members out of order at node {}", m.id));
        }
        if m.peer_addr.is_empty() {
            return Err(format!("first member {} has no address", m.id));
        }
        first_addrs.push(m.peer_addr.clone());
    }
    if first_addrs.is_empty() {
        return Err("the answer has no first_members".into());
    }
    let token = if cluster.cluster_token.is_empty() {
        0
    } else {
        u64::from_str_radix(&cluster.cluster_token, 16)
            .map_err(|e| format!("cluster_token {:?}: {e}", cluster.cluster_token))?
    };
    Ok(ClusterFile {
        members: first_addrs,
        token,
        id: Some(id),
        peers,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn body(role4: &str) -> ClusterStatus {
        serde_json::from_value(json!({
            "node_id": 2, "leader_id": 2, "ballot": {"round": 1, "node": 2},
            "commit_index": 9, "applied_index": 9, "revision": 3,
            "members": [
                {"id": 2, "peer_addr": "h2:1", "client_addr": "h2:2", "healthy": true,
                 "role": "voter", "commit_index": 9},
                {"id": 4, "peer_addr": "h4:1", "client_addr": "", "healthy": true,
                 "role": role4, "commit_index": 9},
            ],
            "first_members": [{"id": 1, "peer_addr": "h1:1"}, {"id": 2, "peer_addr": "h2:1"}],
            "cluster_token": "00000000000000ff",
        }))
        .unwrap()
    }

    #[test]
    fn a_learner_finds_its_id_the_first_members_and_the_token() {
        let file = cluster_file(&body("learner"), "h4:1").unwrap();
        assert_eq!(file.id, Some(4));
        assert_eq!(file.members, vec!["h1:1", "h2:1"]);
        assert_eq!(file.token, 255);
        assert_eq!(file.peers.len(), 2);
    }

    #[test]
    fn a_node_not_added_or_already_voting_is_refused() {
        let not_added = cluster_file(&body("learner"), "h9:1").unwrap_err();
        assert!(not_added.contains("add this node first"), "{not_added}");
        let voter = cluster_file(&body("voter"), "h4:1").unwrap_err();
        assert!(voter.contains("already a voter"), "{voter}");
        let mut shuffled = body("learner");
        shuffled.first_members[0].id = 2;
        assert!(cluster_file(&shuffled, "h4:1").is_err());
    }
}
