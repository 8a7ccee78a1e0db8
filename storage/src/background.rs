//! The two background threads: flush (frozen memtable -> level-0 table) and
//! compaction (leveled, plus manual full compactions).
//!
//! Each job does its I/O without locks, then installs its result under the state
//! lock: append the edit to the manifest (Durable), apply it to the version, publish
//! a new super version, wake waiters. Only then are inputs marked obsolete (their
//! files go when the last reader drops them) and, after a flush, the WAL prefix the
//! table now covers is dropped. A failed job latches the engine (`bg_error`): writes
//! stop with an error, reads go on.
//!
//! Invariant: a compaction job (which holds handles of its input tables) is dropped
//! BEFORE the job is reported done (`compacting` cleared, `manual_done` raised), so
//! `compact_all` and `Db::wait_for_compactions` return with the inputs deleted unless
//! a reader still holds them.

use crate::compaction::{self, Compaction, JobContext};
use crate::edit::{EditKind, TableMeta, VersionEdit};
use crate::error::Error;
use crate::flush::write_memtable;
use crate::inner::{Frozen, Inner, State};
use crate::latch::Failure;
use crate::table_file::finish_tables;
use crate::version::TableHandle;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs flushes until shutdown.
pub(crate) fn flush_loop(inner: Arc<Inner>) {
    loop {
        let frozen = {
            let mut st = inner.state.lock();
            loop {
                if inner.shutdown.load(Ordering::Acquire) || st.bg_error.is_some() {
                    return;
                }
                if let Some(f) = &st.imm {
                    break f.clone();
                }
                inner.cv.wait(&mut st);
            }
        };
        if let Err(e) = guarded(|| flush_frozen(&inner, &frozen)) {
            fail(&inner, Failure::of("flush failed", &e));
            return;
        }
    }
}

fn flush_frozen(inner: &Inner, frozen: &Frozen) -> Result<(), Error> {
    let (snapshots, _) = inner.snapshots.live_and(|| 0);
    let number = inner.new_file_number();
    let meta = write_memtable(
        &inner.fs,
        &inner.dir,
        &inner.opts,
        &frozen.mem,
        snapshots,
        number,
    )?;
    let handles = finish_tables(
        &inner.fs,
        &inner.dir,
        meta.into_iter().collect(),
        &inner.read_mode,
    )?;
    let mut st = inner.state.lock();
    let added: Vec<(u8, Arc<TableHandle>)> = handles.into_iter().map(|h| (0u8, h)).collect();
    let edit = delta(
        inner,
        &st,
        frozen.wal_end,
        frozen.last_seqno,
        &added,
        Vec::new(),
    );
    apply_edit(inner, &mut st, &edit, &[], added)?;
    st.imm = None;
    st.flushes_done += 1;
    inner.install(&st);
    inner.cv.notify_all();
    drop(st);
    // The table holds every record below wal_end: drop those WAL segments.
    if let Err(e) = inner.wal.truncate_prefix(frozen.wal_end) {
        tracing::warn!(error = %e, "dropping flushed WAL segments");
    }
    Ok(())
}

/// A delta edit carrying the engine's current scalars.
fn delta(
    inner: &Inner,
    st: &State,
    log_index: u64,
    flushed_seqno: u64,
    added: &[(u8, Arc<TableHandle>)],
    removed: Vec<(u8, u64)>,
) -> VersionEdit {
    VersionEdit {
        kind: EditKind::Delta,
        log_index: log_index.max(st.mstate.log_index),
        next_file: inner.next_file.load(Ordering::Relaxed),
        last_seqno: inner
            .last_seqno
            .load(Ordering::Acquire)
            .max(st.mstate.last_seqno),
        flushed_seqno: flushed_seqno.max(st.mstate.flushed_seqno),
        added: added
            .iter()
            .map(|(l, h)| (*l, h.meta.clone()))
            .collect::<Vec<(u8, TableMeta)>>(),
        removed,
    }
}

/// Makes `edit` durable and applies it to the state's version (state lock held).
fn apply_edit(
    inner: &Inner,
    st: &mut State,
    edit: &VersionEdit,
    removed: &[(u8, u64)],
    added: Vec<(u8, Arc<TableHandle>)>,
) -> Result<(), Error> {
    let version = st.version.apply(removed, added)?;
    let rewrite = st.manifest.append(edit, inner.opts.manifest_bytes_max)?;
    st.mstate
        .apply(edit)
        .map_err(|r| Error::corrupt("version edit", r))?;
    st.version = Arc::new(version);
    if rewrite {
        let snapshot = st.mstate.clone();
        st.manifest.write_snapshot(&snapshot)?;
    }
    Ok(())
}

/// Runs a job, turning a panic (a bug) into an error so the engine latches instead of
/// leaving writers waiting forever for a flush that will never come.
fn guarded<T>(job: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        Ok(result) => result,
        Err(_) => Err(Failure::new("a background job panicked".into(), false).error()),
    }
}

fn fail(inner: &Inner, failure: Failure) {
    inner.poison(failure.clone());
    let mut st = inner.state.lock();
    st.bg_error.get_or_insert(failure);
    inner.cv.notify_all();
}

/// Runs compactions until shutdown.
pub(crate) fn compaction_loop(inner: Arc<Inner>) {
    loop {
        let (job, manual_ticket) = {
            let mut st = inner.state.lock();
            loop {
                if inner.shutdown.load(Ordering::Acquire) || st.bg_error.is_some() {
                    return;
                }
                if st.manual_done < st.manual_requested {
                    let ticket = st.manual_requested;
                    match compaction::pick_all(&st.version) {
                        Some(c) => {
                            st.compacting = true;
                            break (c, Some(ticket));
                        }
                        None => {
                            st.manual_done = ticket;
                            inner.cv.notify_all();
                            continue;
                        }
                    }
                }
                if let Some(c) = compaction::pick(&st.version, &inner.opts, &st.pointers) {
                    st.compacting = true;
                    break (c, None);
                }
                inner.cv.wait(&mut st);
            }
        };
        // `compact` consumes the job: its input handles are gone before we report.
        match guarded(|| compact(&inner, job)) {
            Ok(true) => {
                let mut st = inner.state.lock();
                st.compacting = false;
                if let Some(ticket) = manual_ticket {
                    st.manual_done = st.manual_done.max(ticket);
                }
                inner.cv.notify_all();
                drop(st);
                #[cfg(test)]
                if let Some(hook) = inner.after_compaction_reported.lock().as_ref() {
                    hook();
                }
            }
            Ok(false) => return,
            Err(e) => {
                fail(&inner, Failure::of("compaction failed", &e));
                return;
            }
        }
    }
}

/// Runs one compaction and installs it; false when stopped for shutdown.
///
/// Takes the job by value: its `inputs` hold handles of the input tables, and an
/// obsolete table's file is deleted when its last handle drops. The job is dropped here,
/// after the install, so when the caller reports the compaction done its inputs are no
/// longer on disk (unless a reader still holds an older version).
fn compact(inner: &Inner, c: Compaction) -> Result<bool, Error> {
    let removed = c.removed();
    let added: Vec<(u8, Arc<TableHandle>)> = if c.trivial_move {
        c.inputs
            .iter()
            .flat_map(|(_, ts)| ts.iter().map(|t| (c.output_level as u8, Arc::clone(t))))
            .collect()
    } else {
        let (snapshots, _) = inner.snapshots.live_and(|| 0);
        let new_file = || inner.new_file_number();
        let ctx = JobContext {
            fs: &inner.fs,
            dir: &inner.dir,
            opts: &inner.opts,
            new_file_number: &new_file,
            shutdown: &inner.shutdown,
            limiter: inner.compaction_limiter.as_ref(),
        };
        let Some(metas) = compaction::run(&c, snapshots, &ctx)? else {
            return Ok(false);
        };
        let handles = finish_tables(&inner.fs, &inner.dir, metas, &inner.read_mode)?;
        handles
            .into_iter()
            .map(|h| (c.output_level as u8, h))
            .collect()
    };
    let mut st = inner.state.lock();
    let edit = delta(inner, &st, 0, 0, &added, removed.clone());
    apply_edit(inner, &mut st, &edit, &removed, added)?;
    let level = c.level();
    if let Some(key) = c.largest_of_first_level() {
        if level < st.pointers.len() {
            st.pointers[level] = key;
        }
    }
    inner.install(&st);
    inner.cv.notify_all();
    drop(st);
    if !c.trivial_move {
        for (_, ts) in &c.inputs {
            for t in ts {
                t.mark_obsolete();
            }
        }
    }
    tracing::debug!(
        level,
        output_level = c.output_level,
        inputs = c.input_count(),
        trivial = c.trivial_move,
        "compaction installed"
    );
    drop(c); // the inputs' last handles (no reader holds them): their files go now
    Ok(true)
}
