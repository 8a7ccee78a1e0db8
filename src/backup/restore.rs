//! Restoring the data directory of one member of a NEW cluster from a backup (like
//! `etcdutl snapshot restore`). Every member is restored from the same file with the
//! same member list; the directories come out identical (a node's id is found at
//! `serve` time from `HOST:ACTOR_PORT`, as always).
//!
//! Steps: (1) verify the whole file (nothing is created if it fails); (2) into a
//! sibling `DIR.restoring`, write the state (`kv::restore`: applied slot 0, revisions
//! kept) and the cluster file with the member list and a cluster token; (3) open the
//! restored state machine once, as `serve` will; (4) rename to `DIR` and fsync the
//! parent. A failure at any step removes `DIR.restoring`. `DIR` must not exist or be
//! an empty directory.
//!
//! The cluster token: XXH3-64 of the backup's digest, its creation time, the source
//! cluster id and the optional `--cluster-token` text, never 0. It is mixed into the
//! cluster id peers check in their handshake, so the new cluster never talks to the
//! old one, nor to members restored from another backup (whose state would differ at
//! the same slot). Acceptor logs start empty (`paxos/` is created at first start).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::Header;
use super::reader::{verify, BackupReader, Summary};
use crate::config::write_cluster_file;
use crate::kv::restore::{Restored, Restorer};
use crate::kv::{KvOptions, KvStateMachine, LeaseTable};

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub summary: Summary,
    pub restored: Restored,
    pub cluster_token: u64,
    pub data_dir: PathBuf,
}

/// The cluster token of a cluster restored from the backup `summary`.
pub fn cluster_token(summary: &Summary, name: Option<&str>) -> u64 {
    let Header {
        cluster_id,
        created_unix_ms,
        ..
    } = summary.header;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&summary.trailer.digest.to_be_bytes());
    bytes.extend_from_slice(&created_unix_ms.to_be_bytes());
    bytes.extend_from_slice(&cluster_id.to_be_bytes());
    bytes.extend_from_slice(name.unwrap_or("").as_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes).max(1)
}

fn open_file(file: &Path) -> Result<std::io::BufReader<std::fs::File>, String> {
    std::fs::File::open(file)
        .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(|e| format!("opening {}: {e}", file.display()))
}

/// Restores `file` into `data_dir` for a cluster of `members`.
pub fn restore(
    file: &Path,
    data_dir: &Path,
    members: &[String],
    name: Option<&str>,
) -> Result<RestoreReport, String> {
    let summary = verify(open_file(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Ok(mut entries) = std::fs::read_dir(data_dir) {
        if entries.next().is_some() {
            return Err(format!(
                "{} exists and is not empty: restore creates a new data directory",
                data_dir.display()
            ));
        }
    } else if data_dir.exists() {
        return Err(format!(
            "{} exists and is not a directory",
            data_dir.display()
        ));
    }
    let mut staging = data_dir.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .map_err(|e| format!("removing the leftover {}: {e}", staging.display()))?;
    }
    let token = cluster_token(&summary, name);
    let result = write_state(file, &staging, members, token);
    let restored = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let published = (|| {
        if data_dir.exists() {
            std::fs::remove_dir(data_dir)
                .map_err(|e| format!("replacing the empty {}: {e}", data_dir.display()))?;
        }
        std::fs::rename(&staging, data_dir).map_err(|e| {
            format!(
                "renaming {} to {}: {e}",
                staging.display(),
                data_dir.display()
            )
        })?;
        let parent = match data_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::File::open(&parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("syncing {}: {e}", parent.display()))
    })();
    if let Err(e) = published {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    Ok(RestoreReport {
        summary,
        restored,
        cluster_token: token,
        data_dir: data_dir.to_path_buf(),
    })
}

/// Writes the state and the cluster file into `dir`, reading (and checking) the backup
/// again, then opens the state machine once as `serve` will.
fn write_state(
    file: &Path,
    dir: &Path,
    members: &[String],
    token: u64,
) -> Result<Restored, String> {
    let fs: Arc<dyn vfs::Fs> = vfs::RealFs::shared();
    let kv_dir = dir.join("kv");
    let restored = {
        let db = storage::Db::open(Arc::clone(&fs), &kv_dir, storage::Options::default())
            .map_err(|e| format!("creating the key-value store in {}: {e}", kv_dir.display()))?;
        let mut reader =
            BackupReader::open(open_file(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut restorer = Restorer::new(&db).map_err(|e| e.to_string())?;
        while let Some(chunk) = reader
            .next_chunk()
            .map_err(|e| format!("{}: {e}", file.display()))?
        {
            restorer
                .add_chunk(&chunk)
                .map_err(|e| format!("restoring: {e}"))?;
        }
        let restored = restorer.finish().map_err(|e| format!("restoring: {e}"))?;
        db.sync_wal()
            .map_err(|e| format!("syncing the store: {e}"))?;
        restored
    };
    let db = storage::Db::open(Arc::clone(&fs), &kv_dir, storage::Options::default())
        .map_err(|e| format!("reopening the restored store: {e}"))?;
    let sm = KvStateMachine::open(db, KvOptions::default(), LeaseTable::new())
        .map_err(|e| format!("the restored state does not open: {e}"))?;
    if sm.applied_index() != 0 || sm.revision() != restored.meta.revision {
        return Err(format!(
            "the restored state opens at slot {} revision {}, expected slot 0 revision {}",
            sm.applied_index(),
            sm.revision(),
            restored.meta.revision
        ));
    }
    drop(sm);
    let file = crate::config::ClusterFile {
        members: members.to_vec(),
        token,
        ..Default::default()
    };
    write_cluster_file(fs.as_ref(), dir, &file).map_err(|e| e.to_string())?;
    Ok(restored)
}
