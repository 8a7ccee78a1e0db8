//! `concierge snapshot save FILE` (stream `GET /v1/snapshot` into `FILE.part`, verify
//! it, fsync, rename to FILE), `concierge snapshot verify FILE`, and `concierge snapshot
//! restore FILE --data-dir DIR --members ...` (the data directory of a member of a NEW
//! cluster, `concierge::backup::restore`).
//!
//! Invariant: FILE exists only once it was fully written, verified (header, every
//! frame's CRC and structure, the trailer's counts and digest) and fsynced; a failed
//! save leaves no FILE and removes FILE.part. A restore from a bad file creates nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use concierge::backup::reader::{verify, Summary};
use concierge::backup::restore::restore;
use concierge::config::parse_concierges;
use futures_util::StreamExt;
use serde_json::json;

use super::conn::Conn;
use super::exit::{Failure, ERROR, OK};
use super::output;

/// `concierge snapshot`
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

/// The snapshot subcommands.
#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Save a backup of the cluster's state to FILE (verified, fsynced, then renamed).
    Save(SaveArgs),
    /// Check a backup file and print what it holds.
    Verify(VerifyArgs),
    /// Create the data directory of a member of a NEW cluster from a backup.
    Restore(RestoreArgs),
}

/// `concierge snapshot save`
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Where to write the backup.
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

/// `concierge snapshot verify`
#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `concierge snapshot restore`
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// The data directory to create (must not exist, or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Every member of the new cluster, as `serve`'s CONCIERGES (a JSON array or a
    /// comma list of host:port). Give every member the same list.
    #[arg(long, env = "CONCIERGES")]
    pub members: String,
    /// Optional text mixed into the new cluster's identity (restoring the same backup
    /// twice with different names makes two clusters that never talk to each other).
    #[arg(long)]
    pub cluster_token: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn snapshot(args: SnapshotArgs) -> Result<u8, Failure> {
    match args.command {
        SnapshotCommand::Save(a) => save(a).await,
        SnapshotCommand::Verify(a) => verify_file(a),
        SnapshotCommand::Restore(a) => restore_dir(a),
    }
}

fn part_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

fn io_failure(what: String) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure::new(ERROR, format!("{what}: {e}"))
}

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "revision": s.header.revision,
        "slot": s.header.slot,
        "compact_revision": s.header.compact_revision,
        "cluster_id": format!("{:016x}", s.header.cluster_id),
        "created_unix_ms": s.header.created_unix_ms,
        "keys": s.trailer.keys,
        "sessions": s.trailer.sessions,
        "records": s.trailer.records,
        "chunks": s.trailer.chunks,
        "data_bytes": s.trailer.data_bytes,
        "file_bytes": s.file_bytes,
        "digest": format!("{:016x}", s.trailer.digest),
    })
}

fn summary_text(s: &Summary) -> String {
    format!(
        "revision {}, {} keys, {} sessions, {} bytes ({} of state in {} chunks), digest {:016x}",
        s.header.revision,
        s.trailer.keys,
        s.trailer.sessions,
        s.file_bytes,
        s.trailer.data_bytes,
        s.trailer.chunks,
        s.trailer.digest
    )
}

async fn save(args: SaveArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    let part = part_path(&args.file);
    let result = save_to(&client, &part, &args.file).await;
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    let summary = result?;
    if args.conn.json {
        output::json_line(&summary_json(&summary))?;
    } else {
        output::line(&format!(
            "saved {}: {}",
            args.file.display(),
            summary_text(&summary)
        ))?;
    }
    Ok(OK)
}

async fn save_to(
    client: &concierge_client::Client,
    part: &Path,
    file: &Path,
) -> Result<Summary, Failure> {
    let mut stream = client.snapshot().await?;
    let out =
        std::fs::File::create(part).map_err(io_failure(format!("creating {}", part.display())))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        out.write_all(&piece)
            .map_err(io_failure(format!("writing {}", part.display())))?;
    }
    let out = out
        .into_inner()
        .map_err(|e| Failure::new(ERROR, format!("writing {}: {}", part.display(), e.error())))?;
    out.sync_all()
        .map_err(io_failure(format!("syncing {}", part.display())))?;
    drop(out);
    let reader =
        std::fs::File::open(part).map_err(io_failure(format!("reading {}", part.display())))?;
    let summary = verify(std::io::BufReader::with_capacity(1 << 20, reader)).map_err(|e| {
        Failure::new(
            ERROR,
            format!(
                "the backup from {} failed verification: {e}",
                stream.endpoint
            ),
        )
    })?;
    std::fs::rename(part, file).map_err(io_failure(format!(
        "renaming {} to {}",
        part.display(),
        file.display()
    )))?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io_failure(format!("syncing {}", parent.display())))?;
    Ok(summary)
}

fn verify_file(args: VerifyArgs) -> Result<u8, Failure> {
    let reader = std::fs::File::open(&args.file)
        .map_err(io_failure(format!("opening {}", args.file.display())))?;
    let summary = verify(std::io::BufReader::with_capacity(1 << 20, reader))
        .map_err(|e| Failure::new(ERROR, format!("{}: {e}", args.file.display())))?;
    if args.json {
        output::json_line(&summary_json(&summary))?;
    } else {
        output::line(&format!(
            "{}: {}",
            args.file.display(),
            summary_text(&summary)
        ))?;
    }
    Ok(OK)
}

fn restore_dir(args: RestoreArgs) -> Result<u8, Failure> {
    let members = parse_concierges(&args.members).map_err(|e| Failure::usage(e.to_string()))?;
    let report = restore(
        &args.file,
        &args.data_dir,
        &members,
        args.cluster_token.as_deref(),
    )
    .map_err(|e| Failure::new(ERROR, e))?;
    if args.json {
        let mut v = summary_json(&report.summary);
        v["data_dir"] = json!(report.data_dir.display().to_string());
        v["cluster_token"] = json!(format!("{:016x}", report.cluster_token));
        v["members"] = json!(members);
        output::json_line(&v)?;
    } else {
        output::line(&format!(
            "restored {} into {}: {}; new cluster token {:016x}, members {}",
            args.file.display(),
            report.data_dir.display(),
            summary_text(&report.summary),
            report.cluster_token,
            members.join(",")
        ))?;
    }
    Ok(OK)
}
