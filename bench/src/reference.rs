//! The machine's limit: k256 signature recoveries per second on all cores.

use std::time::{Duration, Instant};

use primitives::crypto::{keccak256, SecretKey};
use rayon::prelude::*;

/// Recoveries per second using every core (rayon), measured for about `duration`.
pub fn recoveries_per_second(duration: Duration) -> f64 {
    let key = SecretKey::random();
    let samples: Vec<_> = (0..2048u32)
        .map(|i| {
            let h = keccak256(&i.to_le_bytes());
            (h, key.sign_prehash(&h))
        })
        .collect();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < duration {
        done += samples
            .par_iter()
            .filter(|(h, s)| s.recover(h).is_ok())
            .count();
    }
    done as f64 / start.elapsed().as_secs_f64()
}
