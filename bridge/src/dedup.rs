//! A bounded, time-limited set of what was seen: the members' gossip drops an attestation it
//! verified a moment ago before spending a signature recovery on it again, however it was
//! re-bundled or re-timed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use primitives::types::Hash;

/// Most keys remembered: a burst of 20,000 transfers signed by three members fits.
pub const SEEN_CAPACITY: usize = 65_536;
/// How long a key is remembered. Long enough that a replay costs nothing, short enough that
/// an attestation verified but then lost (an intake queue full, an early one expired) is taken
/// again from the sender's re-gossip.
pub const SEEN_TTL: Duration = Duration::from_secs(60);

/// Keys with the time they were inserted; at most `capacity`, each for at most `ttl`.
#[derive(Debug)]
pub struct Seen {
    at: HashMap<Hash, Instant>,
    // Insertion order, for eviction; an entry whose key was removed or inserted again since
    // is stale and skipped.
    order: VecDeque<(Hash, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl Default for Seen {
    fn default() -> Self {
        Self::new(SEEN_CAPACITY, SEEN_TTL)
    }
}

impl Seen {
    /// An empty set of at most `capacity` keys (at least one), each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            at: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Whether `key` was inserted less than the TTL before `now`.
    pub fn contains(&self, key: &Hash, now: Instant) -> bool {
        self.at
            .get(key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.ttl)
    }

    /// Remembers `key` from `now` on, forgetting the oldest keys beyond the capacity and every
    /// key older than the TTL.
    pub fn insert(&mut self, key: Hash, now: Instant) {
        self.at.insert(key, now);
        self.order.push_back((key, now));
        while self.order.len() > self.capacity {
            self.pop_front();
        }
        while self
            .order
            .front()
            .is_some_and(|(_, t)| now.saturating_duration_since(*t) >= self.ttl)
        {
            self.pop_front();
        }
    }

    /// Forgets `key` (its verification failed, or what it let in was dropped).
    pub fn remove(&mut self, key: &Hash) {
        self.at.remove(key);
    }

    /// Keys remembered (some may be past the TTL until the next insert).
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    fn pop_front(&mut self) {
        if let Some((key, t)) = self.order.pop_front() {
            if self.at.get(&key) == Some(&t) {
                self.at.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> Hash {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        Hash(h)
    }

    #[test]
    fn remembers_for_the_ttl_within_the_capacity() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut s = Seen::new(3, ttl);
        s.insert(k(1), t0);
        assert!(s.contains(&k(1), t0 + ttl - Duration::from_millis(1)));
        assert!(!s.contains(&k(1), t0 + ttl), "expired");
        assert!(!s.contains(&k(2), t0));
        // The capacity evicts the oldest first.
        for i in 2..=4 {
            s.insert(k(i), t0);
        }
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&k(1), t0));
        assert!((2..=4).all(|i| s.contains(&k(i), t0)));
        // Removed keys are forgotten; their stale order entries do not evict fresh ones.
        s.remove(&k(2));
        assert!(!s.contains(&k(2), t0));
        s.insert(k(3), t0 + Duration::from_secs(1)); // again: refreshed
        s.insert(k(5), t0 + Duration::from_secs(1));
        assert!(s.contains(&k(3), t0 + Duration::from_secs(1)));
        assert!(s.contains(&k(5), t0 + Duration::from_secs(1)));
        assert!(s.len() <= 3);
        // An insert after the TTL sweeps out everything older.
        s.insert(k(6), t0 + ttl + Duration::from_secs(2));
        assert_eq!(s.len(), 1);
        assert!(s.contains(&k(6), t0 + ttl + Duration::from_secs(2)));
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let t0 = Instant::now();
        let mut s = Seen::new(1000, Duration::from_secs(60));
        for i in 0..100_000 {
            s.insert(k(i), t0);
        }
        assert_eq!(s.len(), 1000);
        assert!(s.order.len() <= 1000);
        assert!(s.contains(&k(99_999), t0));
    }
}
