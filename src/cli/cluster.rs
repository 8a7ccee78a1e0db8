//! `concierge cluster` (the members as one node sees them, a table) and `concierge
//! health` (whether each node given is ready to serve: `GET /ready`, one attempt per
//! node, no failover, since it reports on that node).
//!
//! `health` exits 0 only when every endpoint given answered ready, 1 otherwise (never
//! 2 for an unready node: Docker reserves 2 in health checks).

use super::conn::Conn;
use super::exit::{Failure, ERROR, OK};
use super::output;
use clap::Args;
use concierge_client::ClusterStatus;
use serde_json::json;

/// `concierge cluster`
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn cluster(args: ClusterArgs) -> Result<u8, Failure> {
    let s = args.conn.client()?.cluster().await?;
    if args.conn.json {
        let members = members_json(&s);
        output::json_line(&json!({
            "node_id": s.node_id,
            "leader_id": s.leader_id,
            "ballot": {"round": s.ballot.round, "node": s.ballot.node},
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "revision": s.revision,
            "db_size_bytes": s.db_size_bytes,
            "live_bytes": s.live_bytes,
            "history_bytes": s.history_bytes,
            "compact_revision": s.compact_revision,
            "members": members,
            "membership_slot": s.membership_slot,
        }))?;
        return Ok(OK);
    }
    let leader = s
        .leader_id
        .map_or_else(|| "no leader".to_string(), |l| format!("leader {l}"));
    let mut text = format!(
        "node {} sees {leader}, ballot {}.{}, commit {}, applied {}, revision {}\n\
         data {} B on disk, {} B live, history {} B above revision {}\n",
        s.node_id,
        s.ballot.round,
        s.ballot.node,
        s.commit_index,
        s.applied_index,
        s.revision,
        s.db_size_bytes,
        s.live_bytes,
        s.history_bytes,
        s.compact_revision
    );
    text.push_str(&members_table(&s));
    output::write(text.as_bytes())?;
    Ok(OK)
}

/// The members as JSON objects (`concierge cluster --json`, `concierge member list --json`).
pub fn members_json(s: &ClusterStatus) -> Vec<serde_json::Value> {
    s.members
        .iter()
        .map(|m| {
            json!({"id": m.id, "peer_addr": m.peer_addr, "client_addr": m.client_addr,
                   "healthy": m.healthy, "role": m.role, "commit_index": m.commit_index,
                   "leader": Some(m.id) == s.leader_id})
        })
        .collect()
}

/// The members as a table: ROLE is `leader`, `voter` or `learner`; COMMIT the commit
/// index each last reported (its progress).
pub fn members_table(s: &ClusterStatus) -> String {
    let rows: Vec<Vec<String>> = s
        .members
        .iter()
        .map(|m| {
            let role = if Some(m.id) == s.leader_id {
                "leader"
            } else if m.role.is_empty() {
                "follower"
            } else {
                m.role.as_str()
            };
            vec![
                m.id.to_string(),
                m.peer_addr.clone(),
                m.client_addr.clone(),
                if m.healthy { "yes" } else { "no" }.to_string(),
                role.to_string(),
                m.commit_index.to_string(),
            ]
        })
        .collect();
    output::table(
        &["ID", "PEER", "CLIENT", "HEALTHY", "ROLE", "COMMIT"],
        &rows,
    )
}

/// `concierge health`
#[derive(Args, Debug)]
pub struct HealthArgs {
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn health(args: HealthArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    let mut all_ready = true;
    let mut report = Vec::new();
    for (i, endpoint) in client.endpoints().iter().enumerate() {
        let answer = client.ready(i).await;
        all_ready &= answer.is_ok();
        report.push((endpoint.clone(), answer));
    }
    if args.conn.json {
        let list: Vec<_> = report
            .iter()
            .map(|(e, a)| {
                json!({"endpoint": e, "ready": a.is_ok(),
                       "error": a.as_ref().err().map(|e| e.to_string())})
            })
            .collect();
        output::json_line(&json!({"ready": all_ready, "endpoints": list}))?;
    } else {
        for (e, a) in &report {
            match a {
                Ok(()) => output::line(&format!("{e}: ready"))?,
                Err(err) => output::line(&format!("{e}: not ready: {err}"))?,
            }
        }
    }
    Ok(if all_ready { OK } else { ERROR })
}
