//! `concierge compact REVISION`: drops the watch history below REVISION through the log
//! (`POST /v1/compact`, as `etcdctl compact`). Keys and their versions are untouched; a
//! watch from below REVISION is refused afterwards (410). A revision above the current
//! one, or at or below what is already compacted, is refused (exit 1) and changes nothing.

use super::conn::Conn;
use super::exit::{Failure, OK};
use super::output;
use clap::Args;
use serde_json::json;

/// `concierge compact`
#[derive(Args, Debug)]
pub struct CompactArgs {
    /// History keeps this revision and those above it.
    pub revision: u64,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn compact(args: CompactArgs) -> Result<u8, Failure> {
    let done = args.conn.client()?.compact(args.revision).await?;
    if args.conn.json {
        output::json_line(&json!({
            "compact_revision": done.compact_revision,
            "revision": done.revision,
        }))?;
    } else {
        let line = format!(
            "history holds the revisions above {} (the cluster is at revision {})\n",
            done.compact_revision, done.revision
        );
        output::write(line.as_bytes())?;
    }
    Ok(OK)
}
