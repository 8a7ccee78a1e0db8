//! The harness's calls to the membership API (docs/API.md, "Changing the members"):
//! `GET /v1/cluster` parsed into what churn needs, and the three changes (add, promote,
//! remove), each answer sorted into what the caller does next: done, retry (409, 503,
//! no connection, a timeout), or refused.
//!
//! Nothing here retries or decides: `churn.rs` does, and after an unknown outcome it
//! asks `GET /v1/cluster` what the membership is rather than assuming.

use crate::membership::View;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// Deadline of one membership call: the server's request timeout (5 s) plus a relay.
pub const CALL_MS: u64 = 8_000;
/// Deadline of one `GET /v1/cluster`.
pub const VIEW_MS: u64 = 1_000;

/// One member as `GET /v1/cluster` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub peer_addr: String,
    pub voter: bool,
}

/// A node's `GET /v1/cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// The node that answered.
    pub node_id: u64,
    pub leader: Option<u64>,
    pub members: Vec<Member>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// The slot whose change made this membership.
    pub membership_slot: u64,
    /// The answering node's commit index.
    pub commit_index: u64,
}

impl ClusterView {
    /// The membership part, for the planner.
    pub fn view(&self) -> View {
        View {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            leader: self.leader,
        }
    }

    /// The id of the member listening for peers on `peer_addr`.
    pub fn id_of(&self, peer_addr: &str) -> Option<u64> {
        self.members
            .iter()
            .find(|m| m.peer_addr == peer_addr)
            .map(|m| m.id)
    }

    /// True when `id` is a voter or a learner.
    pub fn has(&self, id: u64) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }
}

fn ids(v: &Value) -> Option<Vec<u64>> {
    v.as_array()?.iter().map(Value::as_u64).collect()
}

/// Parses a `GET /v1/cluster` body.
pub fn parse_view(v: &Value) -> Result<ClusterView, String> {
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("GET /v1/cluster: no {name} in {v}"))
    };
    let members = v
        .get("members")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("GET /v1/cluster: no members in {v}"))?
        .iter()
        .map(|m| {
            Some(Member {
                id: m.get("id")?.as_u64()?,
                peer_addr: m.get("peer_addr")?.as_str()?.to_string(),
                voter: m.get("role")?.as_str()? == "voter",
            })
        })
        .collect::<Option<Vec<Member>>>()
        .ok_or_else(|| format!("GET /v1/cluster: a malformed member in {v}"))?;
    Ok(ClusterView {
        node_id: field("node_id")?,
        leader: v.get("leader_id").and_then(Value::as_u64),
        voters: v
            .get("voters")
            .and_then(ids)
            .ok_or_else(|| format!("GET /v1/cluster: no voters in {v}"))?,
        learners: v
            .get("learners")
            .and_then(ids)
            .ok_or_else(|| format!("GET /v1/cluster: no learners in {v}"))?,
        members,
        membership_slot: field("membership_slot")?,
        commit_index: field("commit_index")?,
    })
}

/// Asks the node at `base` for its view of the cluster.
pub async fn view(http: &reqwest::Client, base: &str) -> Result<ClusterView, String> {
    let resp = http
        .get(format!("{base}/v1/cluster"))
        .timeout(Duration::from_millis(VIEW_MS))
        .send()
        .await
        .map_err(|e| format!("GET {base}/v1/cluster: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("GET {base}/v1/cluster: {e}"))?;
    if status != 200 {
        return Err(format!("GET {base}/v1/cluster: {status} {body}"));
    }
    parse_view(&body)
}

/// What a membership change's answer means for the caller.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 200/201: the change was chosen; the body.
    Done(Value),
    /// 409 (another change pending, a learner still lagging), 503 (no leader or quorum),
    /// or no connection: nothing changed, try again.
    Retry(String),
    /// A timeout, a dropped connection or a 504: the change may have been chosen; ask
    /// `GET /v1/cluster`.
    Unknown(String),
    /// Any other answer (400, 404): the status and the body.
    Refused(u16, Value),
}

/// Sorts an HTTP answer to a change.
pub fn classify(status: u16, body: Value) -> Reply {
    match status {
        200 | 201 => Reply::Done(body),
        409 | 503 | 408 => Reply::Retry(format!("{status} {body}")),
        504 => Reply::Unknown(format!("504 {body}")),
        _ => Reply::Refused(status, body),
    }
}

async fn change(http: &reqwest::Client, method: Method, url: String, body: Option<Value>) -> Reply {
    let mut req = http
        .request(method, &url)
        .timeout(Duration::from_millis(CALL_MS));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            classify(status, body)
        }
        Err(e) if e.is_connect() => Reply::Retry(format!("{url}: connect: {e}")),
        Err(e) => Reply::Unknown(format!("{url}: {e}")),
    }
}

/// `POST /v1/cluster/members` through the node at `base`.
pub async fn add(http: &reqwest::Client, base: &str, peer_addr: &str, client_addr: &str) -> Reply {
    let body = serde_json::json!({"peer_addr": peer_addr, "client_addr": client_addr});
    change(
        http,
        Method::POST,
        format!("{base}/v1/cluster/members"),
        Some(body),
    )
    .await
}

/// `POST /v1/cluster/members/{id}/promote` through the node at `base`.
pub async fn promote(http: &reqwest::Client, base: &str, id: u64) -> Reply {
    change(
        http,
        Method::POST,
        format!("{base}/v1/cluster/members/{id}/promote"),
        None,
    )
    .await
}

/// `DELETE /v1/cluster/members/{id}` through the node at `base`.
pub async fn remove(http: &reqwest::Client, base: &str, id: u64) -> Reply {
    change(
        http,
        Method::DELETE,
        format!("{base}/v1/cluster/members/{id}"),
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cluster_answer_parses() {
        let v = json!({
            "node_id": 2, "leader_id": 1, "commit_index": 900, "membership_slot": 812,
            "members": [
                {"id": 1, "peer_addr": "127.0.0.1:10001", "client_addr": "127.0.0.1:10002",
                 "healthy": true, "role": "voter", "commit_index": 900},
                {"id": 4, "peer_addr": "127.0.0.1:10007", "client_addr": "127.0.0.1:10008",
                 "healthy": true, "role": "learner", "commit_index": 12}
            ],
            "voters": [1], "learners": [4]
        });
        let c = parse_view(&v).unwrap();
        assert_eq!(c.leader, Some(1));
        assert_eq!(c.id_of("127.0.0.1:10007"), Some(4));
        assert!(c.has(4) && !c.has(2));
        assert_eq!(c.view().learners, vec![4]);
        let no_leader = json!({
            "node_id": 2, "leader_id": null, "commit_index": 1, "membership_slot": 0,
            "members": [], "voters": [], "learners": []
        });
        assert_eq!(parse_view(&no_leader).unwrap().leader, None);
        assert!(parse_view(&json!({"node_id": 2})).is_err());
    }

    #[test]
    fn answers_sort_into_what_to_do_next() {
        assert!(matches!(classify(201, json!({"id": 4})), Reply::Done(_)));
        assert!(matches!(classify(409, json!({})), Reply::Retry(_)));
        assert!(matches!(classify(503, json!({})), Reply::Retry(_)));
        assert!(matches!(classify(504, json!({})), Reply::Unknown(_)));
        assert!(matches!(classify(400, json!({})), Reply::Refused(400, _)));
        assert!(matches!(classify(404, json!({})), Reply::Refused(404, _)));
    }
}
