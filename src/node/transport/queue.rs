//! The bounded outbound queue of one peer link.
//!
//! Two lanes of encoded frames: `msgs` (consensus traffic) drops its OLDEST frame when
//! full, because Paxos tolerates loss and newer messages supersede older ones; `bulk`
//! (snapshot chunks and their flow control) refuses NEW frames when full, so the snapshot
//! sender notices and waits. Drops are counted. Invariant: `msgs.len() <= msgs_max`, the
//! bytes in `msgs` are at most `msgs_bytes_max` (or one frame, if that frame alone is
//! larger), and `bulk.len() <= bulk_max`, so a slow or dead peer costs bounded memory
//! whatever the size of the values in flight.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// The bounds of one peer's queue (every peer gets the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Consensus frames queued at most (the oldest dropped beyond this).
    pub messages_max: usize,
    /// Bytes of consensus frames queued at most (the oldest dropped beyond this).
    pub bytes_max: usize,
    /// Bulk frames (snapshot chunks) queued at most (new ones refused beyond this).
    pub bulk_max: usize,
}

/// A bounded two-lane frame queue with a wake-up for its single consumer.
#[derive(Debug)]
pub struct PeerQueue {
    lanes: Mutex<Lanes>,
    notify: Notify,
    msgs_max: usize,
    msgs_bytes_max: usize,
    bulk_max: usize,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Lanes {
    msgs: VecDeque<Bytes>,
    /// Sum of the lengths of `msgs`.
    msgs_bytes: usize,
    bulk: VecDeque<Bytes>,
    /// Alternate between lanes so neither starves the other.
    bulk_turn: bool,
}

impl PeerQueue {
    pub fn new(limits: QueueLimits) -> PeerQueue {
        let QueueLimits {
            messages_max: msgs_max,
            bytes_max: msgs_bytes_max,
            bulk_max,
        } = limits;
        assert!(
            msgs_max > 0 && msgs_bytes_max > 0 && bulk_max > 0,
            "queue limits must be positive"
        );
        PeerQueue {
            lanes: Mutex::new(Lanes::default()),
            notify: Notify::new(),
            msgs_max,
            msgs_bytes_max,
            bulk_max,
            dropped: AtomicU64::new(0),
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        // A panic while holding this lock leaves the deques consistent; keep going.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a consensus frame, dropping the oldest ones while the lane is full by count
    /// or by bytes.
    pub fn push(&self, frame: Bytes) {
        {
            let mut lanes = self.lanes();
            while lanes.msgs.len() >= self.msgs_max
                || (!lanes.msgs.is_empty()
                    && lanes.msgs_bytes.saturating_add(frame.len()) > self.msgs_bytes_max)
            {
                if let Some(old) = lanes.msgs.pop_front() {
                    lanes.msgs_bytes -= old.len();
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            lanes.msgs_bytes += frame.len();
            lanes.msgs.push_back(frame);
            debug_assert!(lanes.msgs.len() <= self.msgs_max);
        }
        self.notify.notify_one();
    }

    /// Queues a bulk frame; false (and the frame is not queued) when the lane is full.
    pub fn push_bulk(&self, frame: Bytes) -> bool {
        {
            let mut lanes = self.lanes();
            if lanes.bulk.len() >= self.bulk_max {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            lanes.bulk.push_back(frame);
        }
        self.notify.notify_one();
        true
    }

    /// The next frame to write, alternating lanes when both hold frames.
    pub fn pop(&self) -> Option<Bytes> {
        let mut lanes = self.lanes();
        let take_bulk = match (lanes.msgs.is_empty(), lanes.bulk.is_empty()) {
            (true, true) => return None,
            (false, true) => false,
            (true, false) => true,
            (false, false) => lanes.bulk_turn,
        };
        lanes.bulk_turn = !take_bulk;
        if take_bulk {
            lanes.bulk.pop_front()
        } else {
            let frame = lanes.msgs.pop_front();
            if let Some(f) = &frame {
                lanes.msgs_bytes -= f.len();
            }
            frame
        }
    }

    /// Waits until a frame may be available (a permit is stored if nobody waits).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Frames dropped so far because a lane was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// True when no frame waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames waiting in both lanes.
    pub fn len(&self) -> usize {
        let lanes = self.lanes();
        lanes.msgs.len() + lanes.bulk.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn msgs_lane_drops_oldest_and_counts() {
        let q = PeerQueue::new(QueueLimits {
            messages_max: 3,
            bytes_max: 1 << 20,
            bulk_max: 1,
        });
        for i in 0..5u8 {
            q.push(Bytes::from(vec![i]));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 2);
        let got: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|b| b[0]).collect();
        assert_eq!(got, vec![2, 3, 4]);
    }

    #[test]
    fn msgs_lane_drops_oldest_beyond_its_byte_budget() {
        let q = PeerQueue::new(QueueLimits {
            messages_max: 100,
            bytes_max: 10,
            bulk_max: 1,
        });
        for i in 0..4u8 {
            q.push(Bytes::from(vec![i; 4]));
        }
        // 4-byte frames in a 10-byte budget: two fit.
        assert_eq!((q.len(), q.dropped()), (2, 2));
        // A frame larger than the whole budget still goes, alone.
        q.push(Bytes::from(vec![9u8; 25]));
        assert_eq!((q.len(), q.dropped()), (1, 4));
        assert_eq!(q.pop().map(|b| b.len()), Some(25));
        q.push(Bytes::from(vec![1u8; 10]));
        assert_eq!(
            (q.len(), q.dropped()),
            (1, 4),
            "the budget was given back on pop"
        );
    }

    #[test]
    fn bulk_lane_refuses_new_and_lanes_alternate() {
        let q = PeerQueue::new(QueueLimits {
            messages_max: 4,
            bytes_max: 1 << 20,
            bulk_max: 1,
        });
        assert!(q.push_bulk(Bytes::from_static(b"b1")));
        assert!(!q.push_bulk(Bytes::from_static(b"b2")));
        q.push(Bytes::from_static(b"m1"));
        q.push(Bytes::from_static(b"m2"));
        let got: Vec<Bytes> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, vec!["m1", "b1", "m2"]);
        assert_eq!(q.dropped(), 1);
    }
}
