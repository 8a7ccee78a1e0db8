//! `concierge session create | keepalive | ls | close`: sessions by hand. `create`
//! prints only the id (`S=$(concierge session create)`); the session is not kept alive
//! by this process: keep it with `keepalive` within its TTL, or it expires.

use super::conn::Conn;
use super::exit::{Failure, OK};
use super::output;
use clap::{Args, Subcommand};
use concierge_client::PageOptions;
use serde_json::json;
use std::time::Duration;

/// Sessions listed per page by `ls`.
const PAGE: u64 = 1000;

/// `concierge session ...`
#[derive(Args, Debug)]
pub struct SessionArgs {
    #[command(subcommand)]
    pub command: SessionCommand,
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Create a session; prints its id.
    Create {
        /// Its time to live in seconds (1..=300; default: the server's, 10).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<f64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Renew a session's TTL once (exit 3 if it is gone).
    Keepalive {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the live sessions.
    Ls {
        #[command(flatten)]
        conn: Conn,
    },
    /// Close a session, deleting its ephemeral keys (exit 3 if it is gone).
    Close {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn session(args: SessionArgs) -> Result<u8, Failure> {
    match args.command {
        SessionCommand::Create { ttl, conn } => {
            let ttl = ttl
                .map(|s| {
                    Duration::try_from_secs_f64(s)
                        .map_err(|_| Failure::usage(format!("--ttl {s}: not a duration")))
                })
                .transpose()?;
            let info = conn.client()?.create_session(ttl).await?;
            if conn.json {
                output::json_line(&json!({"id": info.id, "ttl_ms": info.ttl_ms}))?;
            } else {
                output::line(&info.id)?;
            }
        }
        SessionCommand::Keepalive { id, conn } => {
            let info = conn.client()?.keepalive(&id).await?;
            if conn.json {
                output::json_line(&json!({"id": info.id, "ttl_ms": info.ttl_ms}))?;
            } else {
                output::line(&format!("{} ttl_ms {}", info.id, info.ttl_ms))?;
            }
        }
        SessionCommand::Ls { conn } => {
            let client = conn.client()?;
            let mut page = PageOptions {
                limit: Some(PAGE),
                start_after: None,
            };
            let mut all = Vec::new();
            loop {
                let list = client.list_sessions(&page).await?;
                let last = list.sessions.last().map(|s| s.id.clone());
                all.extend(list.sessions);
                match (list.more, last) {
                    (true, Some(last)) => page.start_after = Some(last),
                    _ => break,
                }
            }
            if conn.json {
                let list: Vec<_> = all
                    .iter()
                    .map(|s| json!({"id": s.id, "ttl_ms": s.ttl_ms}))
                    .collect();
                output::json_line(&json!({"sessions": list}))?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|s| vec![s.id.clone(), s.ttl_ms.to_string()])
                    .collect();
                output::write(output::table(&["ID", "TTL_MS"], &rows).as_bytes())?;
            }
        }
        SessionCommand::Close { id, conn } => {
            let deleted = conn.client()?.close_session(&id).await?;
            if conn.json {
                output::json_line(&json!({"id": id, "deleted_keys": deleted}))?;
            } else {
                output::line(&format!("closed {id}, deleted {deleted} keys"))?;
            }
        }
    }
    Ok(OK)
}
