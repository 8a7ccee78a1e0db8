//! The nodes that clients, the watch follower and the harness's probes talk to: the
//! cluster's current members, as `(slot, base URL)` pairs. Without membership churn it
//! never changes after the start; with it, `churn.rs` takes a node out before it is
//! removed or loses its disk, and puts a new one in once it serves.
//!
//! Invariant: the pool is never empty, and a pick draws exactly one number from the
//! caller's [`Rng`] (`index(len)`), so a run without churn makes the same draws as
//! when the pool was a fixed list (same seed, same choices).

use crate::rng::Rng;
use std::sync::RwLock;

/// The current targets.
#[derive(Debug)]
pub struct Pool {
    targets: RwLock<Vec<(usize, String)>>,
}

impl Pool {
    /// A pool of `targets` (slot from 0, base URL); at least one.
    pub fn new(targets: Vec<(usize, String)>) -> Pool {
        assert!(!targets.is_empty(), "an empty pool");
        Pool {
            targets: RwLock::new(targets),
        }
    }

    fn read(&self) -> Vec<(usize, String)> {
        match self.targets.read() {
            Ok(g) => g.clone(),
            // A writer never panics while holding the lock; take the data regardless.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A seeded random target.
    pub fn pick(&self, rng: &mut Rng) -> (usize, String) {
        let targets = self.read();
        let i = rng.index(targets.len());
        targets
            .get(i)
            .cloned()
            .unwrap_or_else(|| (0, String::new()))
    }

    /// Every target, in slot order.
    pub fn all(&self) -> Vec<(usize, String)> {
        self.read()
    }

    /// Replaces the targets (at least one).
    pub fn set(&self, mut targets: Vec<(usize, String)>) {
        assert!(!targets.is_empty(), "an empty pool");
        targets.sort();
        targets.dedup();
        match self.targets.write() {
            Ok(mut g) => *g = targets,
            Err(poisoned) => *poisoned.into_inner() = targets,
        }
    }

    /// Takes slot `slot` out (no-op when it is the last target or absent).
    pub fn remove(&self, slot: usize) {
        let mut t = self.read();
        t.retain(|(s, _)| *s != slot);
        if !t.is_empty() {
            self.set(t);
        }
    }

    /// Puts slot `slot` in.
    pub fn insert(&self, slot: usize, url: String) {
        let mut t = self.read();
        t.push((slot, url));
        self.set(t);
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;
    use crate::rng::Rng;

    #[test]
    fn a_fixed_pool_picks_as_an_index_into_a_list() {
        let urls: Vec<String> = (0..3).map(|i| format!("u{i}")).collect();
        let pool = Pool::new(urls.iter().cloned().enumerate().collect());
        let mut a = Rng::new(9, 1);
        let mut b = Rng::new(9, 1);
        for _ in 0..100 {
            let (slot, url) = pool.pick(&mut a);
            let i = b.index(urls.len());
            assert_eq!((slot, url.as_str()), (i, urls[i].as_str()));
        }
    }

    #[test]
    fn removed_slots_are_not_picked_and_the_last_one_stays() {
        let pool = Pool::new(vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]);
        pool.remove(1);
        pool.insert(3, "d".into());
        let mut rng = Rng::new(1, 1);
        assert!((0..100).all(|_| pool.pick(&mut rng).0 != 1));
        pool.remove(0);
        pool.remove(2);
        pool.remove(3);
        assert_eq!(pool.all(), vec![(3, "d".to_string())]);
    }
}
