//! `concierge member add|promote|remove|list`: change the members of a running cluster
//! (`/v1/cluster/members`, like `etcdctl member`). Each change is one change through the
//! log, made by the leader (any node relays it) and answered once chosen; one at a time.
//!
//! Replacing a machine: `member add NEWHOST:PORT`, start the new node with `JOIN`, wait
//! until `member list` shows it caught up, `member promote ID`, then `member remove OLD`.

use super::cluster::{members_json, members_table};
use super::conn::Conn;
use super::exit::{Failure, OK};
use super::output;
use clap::{Args, Subcommand};
use serde_json::json;

/// `concierge member`
#[derive(Args, Debug)]
pub struct MemberArgs {
    #[command(subcommand)]
    pub command: MemberCommand,
}

/// The member subcommands.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a node as a learner: it gets the next id; then start it with JOIN.
    Add(AddArgs),
    /// Make a learner a voter (refused while it lags behind the leader).
    Promote(IdArgs),
    /// Remove a voter or a learner.
    Remove(IdArgs),
    /// List the voters and learners with their progress.
    List(ListArgs),
}

/// `concierge member add`
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The new node's peer address (its HOST:ACTOR_PORT).
    pub peer_addr: String,
    /// The new node's client address (its HOST:CLIENT_PORT), for followers to relay to.
    #[arg(long, default_value = "")]
    pub client_addr: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// `concierge member promote|remove`
#[derive(Args, Debug)]
pub struct IdArgs {
    /// The member's id (`member list`).
    pub id: u64,
    #[command(flatten)]
    pub conn: Conn,
}

/// `concierge member list`
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn member(args: MemberArgs) -> Result<u8, Failure> {
    let (conn, done, what) = match args.command {
        MemberCommand::List(a) => {
            let s = a.conn.client()?.cluster().await?;
            if a.conn.json {
                output::json_line(&json!({
                    "leader_id": s.leader_id,
                    "membership_slot": s.membership_slot,
                    "members": members_json(&s),
                }))?;
            } else {
                output::write(members_table(&s).as_bytes())?;
            }
            return Ok(OK);
        }
        MemberCommand::Add(a) => {
            let done = a
                .conn
                .client()?
                .add_member(&a.peer_addr, &a.client_addr)
                .await?;
            (a.conn, done, "added as a learner")
        }
        MemberCommand::Promote(a) => {
            let done = a.conn.client()?.promote_member(a.id).await?;
            (a.conn, done, "promoted to voter")
        }
        MemberCommand::Remove(a) => {
            let done = a.conn.client()?.remove_member(a.id).await?;
            (a.conn, done, "removed")
        }
    };
    if conn.json {
        output::json_line(&json!({"id": done.id, "slot": done.slot, "role": done.role}))?;
    } else {
        output::line(&format!(
            "node {} {what} (chosen at slot {})",
            done.id, done.slot
        ))?;
    }
    Ok(OK)
}
