//! Wall-clock time as the chains and the bridge count it: milliseconds since the unix epoch.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A fault hook for tests (`make chaos`): with `TWINPEG_CLOCK_SKEW_MS=<signed ms>` in its
/// environment a process reads the wall clock that far off, as on a host whose clock drifted.
pub const SKEW_ENV: &str = "TWINPEG_CLOCK_SKEW_MS";

fn skew_ms() -> i64 {
    static SKEW: OnceLock<i64> = OnceLock::new();
    *SKEW.get_or_init(|| {
        std::env::var(SKEW_ENV)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    })
}

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

/// Milliseconds since the unix epoch (0 if the system clock is before it), moved by
/// [`SKEW_ENV`] if set.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        .saturating_add_signed(skew_ms())
}
