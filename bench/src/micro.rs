//! The criterion micro-benchmarks' latest figures (`make microbench`, also run by
//! `make bench`, keeps them under `target/criterion`), folded into the suite's table and JSON.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One micro-benchmark's latest result.
#[derive(Debug, Clone, Serialize)]
pub struct Micro {
    /// `group/function`, e.g. `block_commit_1000/commit_canonical`.
    pub name: String,
    /// Median time of one iteration, ns.
    pub median_ns: f64,
    /// Elements one iteration handles (transactions), when the benchmark declares them.
    pub elements: Option<u64>,
    /// How long ago criterion wrote it, seconds.
    pub age_seconds: u64,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
    #[serde(default)]
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
enum Throughput {
    Elements(u64),
    #[serde(other)]
    Other,
}

fn read_one(new: &Path) -> Option<Micro> {
    let est: Estimates =
        serde_json::from_str(&std::fs::read_to_string(new.join("estimates.json")).ok()?).ok()?;
    let b: Benchmark =
        serde_json::from_str(&std::fs::read_to_string(new.join("benchmark.json")).ok()?).ok()?;
    let age_seconds = std::fs::metadata(new.join("estimates.json"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    Some(Micro {
        name: b.full_id,
        median_ns: est.median.point_estimate,
        elements: match b.throughput {
            Some(Throughput::Elements(n)) => Some(n),
            _ => None,
        },
        age_seconds,
    })
}

/// Every `<group>/<function>/new` result under `dir`, sorted by name; empty when criterion
/// has not run here.
pub fn read(dir: &Path) -> Vec<Micro> {
    let mut out = Vec::new();
    let Ok(groups) = std::fs::read_dir(dir) else {
        return out;
    };
    for g in groups.flatten() {
        let Ok(functions) = std::fs::read_dir(g.path()) else {
            continue;
        };
        for f in functions.flatten() {
            if let Some(m) = read_one(&f.path().join("new")) {
                out.push(m);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A duration in ns, in the unit that reads best.
pub fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_criterion_writes_and_skips_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let new = dir.path().join("block_commit_1000/commit_canonical/new");
        std::fs::create_dir_all(&new).expect("mkdir");
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":3.1e6},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":2.8e6,"upper_bound":3.2e6},"point_estimate":2966558.5,"standard_error":8.3e4}}"#,
        )
        .expect("write");
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"block_commit_1000","function_id":"commit_canonical","value_str":null,"throughput":{"Elements":1000},"full_id":"block_commit_1000/commit_canonical"}"#,
        )
        .expect("write");
        // A benchmark without a finished run is skipped.
        std::fs::create_dir_all(dir.path().join("tx_ingress/decode/new")).expect("mkdir");
        let got = read(dir.path());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "block_commit_1000/commit_canonical");
        assert_eq!(got[0].median_ns, 2966558.5);
        assert_eq!(got[0].elements, Some(1000));
        assert_eq!(human(got[0].median_ns), "2.97 ms");
        assert!(read(&dir.path().join("absent")).is_empty());
    }
}
