//! Crash points for tests: with `TWINPEG_CRASH_AT=<point>[:<n>]` in its environment, a process
//! aborts the `n`-th time (default: the first) it passes the named point, with no unwinding and
//! no flush, as `kill -9` at that instant would. Tests aim crashes at the steps that matter
//! (a vote written but not yet sent, a block committed but not yet announced) instead of hoping
//! a random `kill -9` lands there. Without the variable a point costs one relaxed load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const ENV: &str = "TWINPEG_CRASH_AT";

struct Armed {
    point: String,
    at: u64,
    passed: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            parse(&spec)
        })
        .as_ref()
}

fn parse(spec: &str) -> Option<Armed> {
    let (point, at) = match spec.rsplit_once(':') {
        Some((p, n)) => (p, n.parse().ok().filter(|n| *n > 0)?),
        None => (spec, 1),
    };
    (!point.is_empty()).then(|| Armed {
        point: point.to_string(),
        at,
        passed: AtomicU64::new(0),
    })
}

/// Passes the crash point `name`: aborts the process here if `TWINPEG_CRASH_AT` names it and
/// this is the pass it asks for.
pub fn point(name: &str) {
    let Some(a) = armed() else { return };
    if a.point == name && a.passed.fetch_add(1, Ordering::Relaxed) + 1 == a.at {
        eprintln!(
            "{ENV}: crash point {name} reached (pass {}): aborting",
            a.at
        );
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_a_point_and_optionally_a_pass() {
        let a = parse("finality-persisted:3").expect("valid");
        assert_eq!((a.point.as_str(), a.at), ("finality-persisted", 3));
        let a = parse("block-committed").expect("valid");
        assert_eq!((a.point.as_str(), a.at), ("block-committed", 1));
        assert!(parse("x:0").is_none(), "pass 0 never comes");
        assert!(parse("x:many").is_none());
        assert!(parse("").is_none());
    }
}
