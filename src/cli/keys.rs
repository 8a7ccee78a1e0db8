//! `get`, `put`, `del` and `ls`: the key commands.
//!
//! `get` prints the value exactly (scripts get the bytes that were stored); `put`
//! takes it from an argument, `-` (stdin) or `--file`. A missing key exits 3, a failed
//! `--version` condition 4 (see `exit`).

use super::conn::Conn;
use super::exit::{Failure, NOT_FOUND, OK};
use super::{input, output};
use clap::Args;
use concierge_client::{Consistency, DeleteOptions, ListOptions, PutOptions};
use serde_json::json;
use std::path::PathBuf;

/// Most keys `ls` gathers without `--limit`.
const LS_KEYS_MAX: usize = 1_000_000;

fn consistency(serializable: bool) -> Consistency {
    if serializable {
        Consistency::Serializable
    } else {
        Consistency::Linearizable
    }
}

/// `concierge get KEY`
#[derive(Args, Debug)]
pub struct GetArgs {
    pub key: String,
    /// Read this node's replica (may be stale) instead of a linearizable read.
    #[arg(long)]
    pub serializable: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn get(args: GetArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    let Some(kv) = client
        .get_with(&args.key, consistency(args.serializable))
        .await?
    else {
        return Err(Failure::new(
            NOT_FOUND,
            format!("key not found: {:?}", args.key),
        ));
    };
    if args.conn.json {
        let (text, b64) = output::value_fields(Some(&kv.value));
        output::json_line(&json!({
            "key": kv.key,
            "value": text,
            "value_base64": b64,
            "version": kv.version,
            "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision,
            "session": kv.session,
            "revision": kv.revision,
        }))?;
    } else {
        output::raw_value(&kv.value)?;
    }
    Ok(OK)
}

/// `concierge put KEY (VALUE | - | --file PATH)`
#[derive(Args, Debug)]
pub struct PutArgs {
    pub key: String,
    /// The value; `-` reads it from stdin.
    pub value: Option<String>,
    /// Read the value from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Write only if the key's version is N (0: only if absent); else exit 4.
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// Make the key ephemeral, owned by this session.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Append a 20-digit sequence number to the key (printed).
    #[arg(long)]
    pub sequential: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn put(args: PutArgs) -> Result<u8, Failure> {
    let value = input::read(args.value.as_deref(), args.file.as_deref(), "value")?;
    let client = args.conn.client()?;
    let options = PutOptions {
        version: args.version,
        session: args.session.clone(),
        sequential: args.sequential,
    };
    let r = client.put_with(&args.key, value, &options).await?;
    if args.conn.json {
        output::json_line(&json!({
            "key": r.key,
            "created": r.created,
            "version": r.version,
            "create_revision": r.create_revision,
            "mod_revision": r.mod_revision,
            "session": r.session,
        }))?;
    } else {
        let verb = if r.created { "created" } else { "updated" };
        output::line(&format!(
            "{verb} {} version {} revision {}",
            r.key, r.version, r.mod_revision
        ))?;
    }
    Ok(OK)
}

/// `concierge del KEY`
#[derive(Args, Debug)]
pub struct DelArgs {
    pub key: String,
    /// Delete only if the key's version is N; else exit 4.
    #[arg(long, value_name = "N", conflicts_with = "prefix")]
    pub version: Option<u64>,
    /// Delete every key starting with KEY (none is not an error).
    #[arg(long)]
    pub prefix: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn del(args: DelArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    let options = DeleteOptions {
        version: args.version,
        prefix: args.prefix,
    };
    let r = client.delete_with(&args.key, &options).await?;
    if args.conn.json {
        output::json_line(&json!({"deleted": r.deleted, "revision": r.revision}))?;
    } else {
        output::line(&format!("deleted {} revision {}", r.deleted, r.revision))?;
    }
    Ok(OK)
}

/// `concierge ls [PREFIX]`
#[derive(Args, Debug)]
pub struct LsArgs {
    /// List the keys starting with this ("" lists every key).
    #[arg(default_value = "")]
    pub prefix: String,
    /// Keys and metadata only, no values.
    #[arg(long)]
    pub keys_only: bool,
    /// At most N keys (one page, N <= 10000); default: every key, page by page.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Read this node's replica (may be stale).
    #[arg(long)]
    pub serializable: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn ls(args: LsArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    let options = ListOptions {
        limit: args.limit,
        keys_only: args.keys_only,
        consistency: consistency(args.serializable),
        ..ListOptions::default()
    };
    let (entries, more) = match args.limit {
        Some(_) => {
            let page = client.list(&args.prefix, &options).await?;
            (page.entries, page.more)
        }
        None => (
            client.list_all(&args.prefix, &options, LS_KEYS_MAX).await?,
            false,
        ),
    };
    if args.conn.json {
        let list: Vec<_> = entries.iter().map(output::entry_json).collect();
        output::json_line(&json!({"entries": list, "more": more}))?;
        return Ok(OK);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.key.clone(),
                e.version.to_string(),
                e.create_revision.to_string(),
                e.mod_revision.to_string(),
                e.session.clone().unwrap_or_default(),
                output::cell(e.value.as_deref(), 40),
            ]
        })
        .collect();
    let mut text = output::table(
        &["KEY", "VERSION", "CREATED", "MODIFIED", "SESSION", "VALUE"],
        &rows,
    );
    if more {
        text.push_str("(more keys follow)\n");
    }
    output::write(text.as_bytes())?;
    Ok(OK)
}
