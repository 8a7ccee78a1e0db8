//! `concierge watch`: prints the changes of a key or a prefix as they happen, one line
//! each, resuming after a dropped connection with no gap and no duplicate (the client
//! crate's watch). Runs until interrupted, or until `--count` events were printed.

use super::conn::Conn;
use super::exit::{Failure, OK};
use super::output;
use clap::Args;
use concierge_client::WatchOptions;
use futures_util::StreamExt;

/// `concierge watch (KEY | --prefix P)`
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The key to watch.
    #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
    pub key: Option<String>,
    /// Watch every key starting with this ("" for every key).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Start at this revision (events with mod_revision >= R); default: from now.
    #[arg(long, value_name = "R")]
    pub from_revision: Option<u64>,
    /// Stop after N events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn watch(args: WatchArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    let mut options = match (&args.key, &args.prefix) {
        (Some(k), _) => WatchOptions::key(k.clone()),
        (None, Some(p)) => WatchOptions::prefix(p.clone()),
        (None, None) => return Err(Failure::usage("give a KEY or --prefix")),
    };
    if let Some(r) = args.from_revision {
        options = options.from_revision(r);
    }
    if args.count == Some(0) {
        return Ok(OK);
    }
    let mut stream = client.watch(options);
    let mut printed = 0u64;
    while let Some(event) = stream.next().await {
        let e = event?;
        if args.conn.json {
            output::json_line(&output::event_json(&e))?;
        } else {
            let value = match &e.value {
                Some(v) => format!(" {}", output::cell(Some(v), 60)),
                None => String::new(),
            };
            output::line(&format!(
                "{} {} {}{value}",
                e.mod_revision,
                output::event_kind(e.kind).to_uppercase(),
                e.key
            ))?;
        }
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(OK);
        }
    }
    Err(Failure::error("the watch ended without an error"))
}
