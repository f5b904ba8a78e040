//! Starting a node or bridge member and learning where it serves. Both bind port 0, so their
//! addresses are only known from the `<data_dir>/endpoints.json` each writes once bound
//! (`service::endpoints::{NodeEndpoints, MemberEndpoints}`); the file carries the writer's pid so
//! that one left by an earlier start is never taken for this one's.
//! Also the shared part of a bridge member's config. Nothing here assumes debug binaries: the
//! benchmarks start release builds through it too.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;

/// Spawns `cmd` with stderr appended to `log`, and waits up to `deadline` for the
/// `<data_dir>/endpoints.json` naming its pid; on failure the child is killed and the error
/// carries the log.
pub fn spawn_serving<E: DeserializeOwned>(
    what: &str,
    cmd: &mut Command,
    data_dir: &Path,
    log: &Path,
    deadline: Duration,
) -> Result<(Child, E)> {
    let endpoints = service::endpoints::path(data_dir);
    // The pid check alone is not enough: the OS may give this start an earlier one's pid.
    let _ = std::fs::remove_file(&endpoints);
    // Appended, so that after a restart the log still shows what the earlier run said.
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    match wait_for_endpoints(what, &mut child, &endpoints, log, deadline) {
        Ok(found) => Ok((child, found)),
        Err(e) => {
            // A `Child` is not killed on drop; a failed start must not leave a process behind.
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Polls `endpoints` until it names `child`'s pid, failing early if the child exits.
fn wait_for_endpoints<E: DeserializeOwned>(
    what: &str,
    child: &mut Child,
    endpoints: &Path,
    log: &Path,
    deadline: Duration,
) -> Result<E> {
    let pid = u64::from(child.id());
    let start = Instant::now();
    loop {
        // Writers rename a finished file into place, so a file that is there is complete.
        if let Ok(text) = std::fs::read_to_string(endpoints) {
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", endpoints.display()))?;
            if v["pid"].as_u64() == Some(pid) {
                return serde_json::from_value(v)
                    .with_context(|| format!("reading {} of {what}", endpoints.display()));
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited with {status} before serving; log:\n{}",
                read_log(log)
            );
        }
        if start.elapsed() > deadline {
            bail!(
                "{what} did not start within {deadline:?}; log:\n{}",
                read_log(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// A bridge member's config for a network on loopback: ephemeral p2p and status ports, and
/// timers short enough for payouts within a few blocks; callers add keys of their own.
pub fn member_config(
    data_dir: &Path,
    key_file: &Path,
    main_rpc: &str,
    side_rpc: &str,
    bootstrap: &[String],
) -> toml::Table {
    let s = |v: &str| toml::Value::String(v.to_string());
    let mut t = toml::Table::new();
    t.insert("data_dir".into(), s(&data_dir.display().to_string()));
    t.insert("key_file".into(), s(&key_file.display().to_string()));
    t.insert("main_rpc".into(), s(main_rpc));
    t.insert("side_rpc".into(), s(side_rpc));
    t.insert("p2p_listen".into(), s("/ip4/127.0.0.1/tcp/0"));
    t.insert(
        "bootstrap".into(),
        toml::Value::Array(bootstrap.iter().map(|b| s(b)).collect()),
    );
    t.insert("status_addr".into(), s("127.0.0.1:0"));
    t.insert("submit_timeout_ms".into(), toml::Value::Integer(2_000));
    t.insert("poll_interval_ms".into(), toml::Value::Integer(250));
    t
}

/// `kill -9` of a started process, then waits for it so no zombie is left; a no-op when
/// `child` is `None` (never started, or already killed).
pub fn kill9(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}
