//! The write path: one WAL record per batch, memtable insert, publish; back-pressure;
//! memtable switches; `Db::flush`.
//!
//! A write, under the write lock: make room (see below), take seqnos
//! `allocated + 1 ..= allocated + n`, encode the batch once into a reused buffer,
//! append it to the WAL (`Buffered`: one write(2), no fsync; a sync write only
//! `Queued`: its record takes its place in the next group and is written by the
//! fsync that covers it), insert into the memtable (invisible: readers read at the
//! published seqno). A non-sync write with
//! nothing unpublished before it is published right there. Otherwise it is queued
//! for publication (`publish.rs`) and, outside the lock, a `sync` write waits for a
//! WAL fsync (the WAL shares one fdatasync among concurrent syncers: group commit),
//! then it and every ready write after it are published in seqno order. So a write
//! is visible only once it is as durable as asked, and every write returns only
//! once it is visible (read-your-writes); a non-sync write queued behind a sync
//! write waits for that sync. A single sync writer costs one fdatasync per write, a
//! non-sync writer none.
//!
//! Making room: when the memtable is full it is frozen (and handed to the flush
//! thread) and a new one takes writes — unless a frozen memtable is still waiting, in
//! which case the writer waits (at most one frozen memtable). The active and the
//! frozen memtable together stay under one and a half write buffers
//! ([`at_memtables_cap`]): a writer that fills the new one up
//! to that while the frozen one is still flushing waits, and once the flush is done
//! it freezes what it has at once (at least half a buffer) rather than filling it to
//! the full size while the flush thread idles. A writer faster than the flush thus
//! keeps it busy with smaller tables, and memory never holds two full buffers; a
//! slower writer never meets the cap and writes full-size tables.
//! A memtable is frozen only once every write in it is published (flush drops
//! versions no reader at the published seqno needs, so it must not see later ones).
//! When level 0 holds `l0_slowdown_writes` tables each write is delayed 1 ms once;
//! at `l0_stop_writes` writers wait for compaction.
//!
//! Any WAL failure latches the engine: after a failed write or fsync nobody can know
//! what is durable, so no later write is accepted, and the writes whose fsync failed
//! (and those queued behind them) are never published: they return an error and
//! readers never see them (after a restart they may or may not be there).

use crate::batch::{encode_single, BATCH_HEADER_BYTES, KEY_BYTES_MAX};
use crate::error::Error;
use crate::inner::{Frozen, Inner, State, WriteState};
use crate::internal_key::SEQNO_MAX;
use crate::memtable::Memtable;
use crate::options::WriteOptions;
use crate::WriteBatch;
use parking_lot::MutexGuard;
use sstable::Kind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wal::SyncMode;

/// Writes a batch (see the module doc).
pub(crate) fn write(inner: &Inner, batch: &WriteBatch, opts: WriteOptions) -> Result<u64, Error> {
    check_sizes(
        inner,
        batch.longest_key(),
        BATCH_HEADER_BYTES + batch.encoded_bytes(),
    )?;
    commit(
        inner,
        batch.len() as u64,
        opts,
        |first, buf| batch.encode_record(first, buf),
        |mem, first| mem.insert_ops(batch.iter(), first),
    )
}

/// Writes one put or delete without building a batch (same record format).
pub(crate) fn write_one(
    inner: &Inner,
    kind: Kind,
    key: &[u8],
    value: &[u8],
    opts: WriteOptions,
) -> Result<u64, Error> {
    check_sizes(
        inner,
        key.len(),
        BATCH_HEADER_BYTES + 11 + key.len() + value.len(),
    )?;
    commit(
        inner,
        1,
        opts,
        |first, buf| encode_single(kind, key, value, first, buf),
        |mem, first| {
            mem.insert(key, first, kind, value);
            Ok(())
        },
    )
}

fn check_sizes(inner: &Inner, key_bytes: usize, record_bytes: usize) -> Result<(), Error> {
    let max = inner.opts.batch_bytes_max as usize;
    if record_bytes > max {
        return Err(Error::TooLarge {
            what: "write batch",
            len: record_bytes as u64,
            max: max as u64,
        });
    }
    if key_bytes > KEY_BYTES_MAX {
        return Err(Error::TooLarge {
            what: "key",
            len: key_bytes as u64,
            max: KEY_BYTES_MAX as u64,
        });
    }
    Ok(())
}

/// The write lock section, the optional sync, publication: `count` seqnos, one WAL record.
fn commit(
    inner: &Inner,
    count: u64,
    opts: WriteOptions,
    encode: impl FnOnce(u64, &mut Vec<u8>),
    insert: impl FnOnce(&Memtable, u64) -> Result<(), Error>,
) -> Result<u64, Error> {
    let last = {
        let mut w = inner.write.lock();
        inner.check_poisoned()?;
        if count == 0 {
            return Ok(inner.last_seqno.load(Ordering::Acquire));
        }
        if w.allocated.saturating_add(count) >= SEQNO_MAX {
            return Err(Error::SeqnosExhausted {
                last: w.allocated,
                wanted: count,
            });
        }
        make_room(inner, &mut w)?;
        let first = w.allocated + 1;
        let WriteState { mem, buf, .. } = &mut *w;
        encode(first, buf);
        // A sync write only queues its record here and waits for the fsync after the
        // lock: writers arriving while an fsync is in flight then queue behind it and
        // share the next one, instead of waiting for it one by one under this lock.
        let mode = if opts.sync {
            SyncMode::Queued
        } else {
            SyncMode::Buffered
        };
        inner
            .wal
            .append(buf, mode)
            .map_err(|e| inner.latch(Error::wal("appending a write batch to the WAL", e)))?;
        // The WAL holds these seqnos now: a failed insert must not let them be reused.
        insert(mem, first).map_err(|e| inner.latch(e))?;
        let last = first + count - 1;
        w.allocated = last;
        if !opts.sync && inner.last_seqno.load(Ordering::Acquire) == first - 1 {
            // Nothing waits for publication before this write: publish it now.
            inner.last_seqno.store(last, Ordering::Release);
            return Ok(last);
        }
        inner.publisher.enqueue(&inner.last_seqno, last, !opts.sync);
        last
    };
    if opts.sync {
        if let Err(e) = inner.wal.sync() {
            let e = inner.latch(Error::wal("syncing the WAL", e));
            inner.publisher.fail();
            return Err(e);
        }
        inner.publisher.mark_ready(&inner.last_seqno, last);
    }
    inner.wait_published(last)?;
    Ok(last)
}

/// True when the active memtable (`active` bytes) and the one frozen before it
/// (`frozen` bytes) reach the memtables' cap, one and a half write buffers. An active memtable under half a buffer
/// never does, so a frozen one over a whole buffer (one big batch) cannot make the
/// next tables tiny.
fn at_memtables_cap(active: usize, frozen: usize, write_buffer: usize) -> bool {
    let half = write_buffer / 2;
    active >= half && active + frozen >= 3 * half
}

/// Waits until the memtable has room, switching it when full (see the module doc).
fn make_room(inner: &Inner, w: &mut MutexGuard<'_, WriteState>) -> Result<(), Error> {
    let opts = &inner.opts;
    let mut delayed = false;
    // Set once this call has waited for a frozen memtable's flush.
    let mut held = false;
    loop {
        let l0 = inner.l0_tables.load(Ordering::Acquire);
        let active = w.mem.approximate_bytes();
        let full = active >= opts.write_buffer_bytes;
        let mut capped = at_memtables_cap(active, w.frozen_bytes, opts.write_buffer_bytes);
        if !full && !capped && l0 < opts.l0_slowdown_writes {
            return Ok(());
        }
        if l0 >= opts.l0_slowdown_writes && l0 < opts.l0_stop_writes && !delayed {
            // Give compaction a little time, once per write.
            delayed = true;
            let t = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            inner.note_stall(t);
            continue;
        }
        let mut st = inner.state.lock();
        if let Some(failure) = &st.bg_error {
            return Err(failure.error());
        }
        if st.version.levels[0].len() >= opts.l0_stop_writes {
            let t = Instant::now();
            inner.cv.wait(&mut st);
            inner.note_stall(t);
            continue;
        }
        if st.imm.is_none() && !held {
            // The flush finished before this writer had to wait for it: the cap was
            // never in the way, so the memtable fills to its full size.
            w.frozen_bytes = 0;
            capped = false;
        }
        if !full && !capped {
            return Ok(());
        }
        if inner.last_seqno.load(Ordering::Acquire) < w.allocated {
            // A frozen memtable must hold only published writes (flush and compaction
            // drop versions that no reader at `last_seqno` needs): wait for the syncs.
            drop(st);
            inner.wait_published(w.allocated)?;
            continue;
        }
        if st.imm.is_some() {
            held = true;
            let t = Instant::now();
            inner.cv.wait(&mut st);
            inner.note_stall(t);
            continue;
        }
        switch_memtable(inner, &mut st, w);
        return Ok(());
    }
}

/// Freezes the memtable and starts a new one (write lock and state lock held).
fn switch_memtable(inner: &Inner, st: &mut State, w: &mut WriteState) {
    assert!(
        st.imm.is_none(),
        "switching the memtable while one is still frozen"
    );
    let frozen = Frozen {
        mem: Arc::clone(&w.mem),
        wal_end: inner.wal.next_index(),
        last_seqno: w.allocated,
    };
    debug_assert_eq!(w.allocated, inner.last_seqno.load(Ordering::Acquire));
    w.frozen_bytes = w.mem.approximate_bytes();
    let mem = Arc::new(Memtable::new());
    w.mem = Arc::clone(&mem);
    st.mem = mem;
    st.imm = Some(frozen);
    st.switches += 1;
    inner.install(st);
    inner.cv.notify_all();
}

/// `Db::flush`: freezes a non-empty memtable and waits until it is in a table.
pub(crate) fn flush(inner: &Inner) -> Result<(), Error> {
    let ticket = {
        let mut w = inner.write.lock();
        inner.check_poisoned()?;
        let allocated = w.allocated;
        inner.wait_published(allocated)?;
        let mut st = inner.state.lock();
        loop {
            if let Some(failure) = &st.bg_error {
                return Err(failure.error());
            }
            if st.imm.is_none() {
                break;
            }
            inner.cv.wait(&mut st);
        }
        if !w.mem.is_empty() {
            switch_memtable(inner, &mut st, &mut w);
        }
        st.switches
    };
    let mut st = inner.state.lock();
    while st.flushes_done < ticket {
        if let Some(failure) = &st.bg_error {
            return Err(failure.error());
        }
        inner.cv.wait(&mut st);
    }
    Ok(())
}
