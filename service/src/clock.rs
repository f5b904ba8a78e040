//! Wall-clock time as the chains and the bridge count it: milliseconds since the unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where a component reads the time, so a test can hand it a clock it moves by hand.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// Milliseconds since the unix epoch (0 if the system clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
