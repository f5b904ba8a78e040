//! `devnet status`: each node of `devnet.json`, asked for its health.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::health;
use crate::info::DevnetInfo;
use crate::{Error, Result};

use super::{resolve_dir, running_launcher, StatusArgs};

/// One node's state, as `devnet status --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// `mainchain-0`, ...
    pub name: String,
    /// `mainchain` or `sidechain`.
    pub chain: String,
    /// `authority` or `follower`.
    pub role: String,
    /// Its HTTP endpoint.
    pub rpc_http: String,
    /// Its pid as `devnet.json` lists it.
    pub pid: u32,
    /// Whether it answered `tp_health`.
    pub healthy: bool,
    /// Its head height, if it answered.
    pub head: Option<u64>,
    /// Milliseconds since its head's slot started, if it answered.
    pub head_age_ms: Option<u64>,
    /// Why not, if it did not.
    pub error: Option<String>,
}

/// The whole answer of `devnet status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The devnet directory.
    pub dir: String,
    /// The running launcher's pid, if any.
    pub launcher_pid: Option<u32>,
    /// Every node.
    pub nodes: Vec<NodeStatus>,
}

/// Runs `devnet status`; exits non-zero unless the launcher runs and every node is healthy.
pub async fn run(args: StatusArgs) -> Result<ExitCode> {
    let dir = resolve_dir(&args.dir)?;
    let file = dir.join("devnet.json");
    if !file.exists() {
        return Err(Error::Mismatch(format!(
            "no {}: start the devnet with `devnet up`",
            file.display()
        )));
    }
    let info = DevnetInfo::read(&file)?;
    let mut nodes = Vec::new();
    for (chain, n) in info.nodes() {
        let h = health::health(&n.rpc_http, Duration::from_secs(3)).await;
        nodes.push(NodeStatus {
            name: n.name.clone(),
            chain: chain.into(),
            role: n.role.clone(),
            rpc_http: n.rpc_http.clone(),
            pid: n.pid,
            healthy: h.is_ok(),
            head: h.as_ref().ok().map(|h| h.head),
            head_age_ms: h.as_ref().ok().map(|h| h.head_age_ms),
            error: h.err().map(|e| e.to_string()),
        });
    }
    let report = StatusReport {
        dir: dir.display().to_string(),
        launcher_pid: running_launcher(&dir),
        nodes,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Format {
            what: "status".into(),
            reason: e.to_string(),
        })?;
        println!("{text}");
    } else {
        print!("{}", table(&report));
    }
    let ok = report.launcher_pid.is_some() && report.nodes.iter().all(|n| n.healthy);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn table(r: &StatusReport) -> String {
    let mut t = String::new();
    let launcher = match r.launcher_pid {
        Some(p) => format!("running (pid {p})"),
        None => "not running".into(),
    };
    let _ = writeln!(t, "devnet {}: launcher {launcher}", r.dir);
    let _ = writeln!(
        t,
        "  {:<12} {:<10} {:<28} {:<8} {:>8} {:>10}",
        "node", "role", "JSON-RPC (HTTP)", "health", "head", "head age"
    );
    for n in &r.nodes {
        let _ = writeln!(
            t,
            "  {:<12} {:<10} {:<28} {:<8} {:>8} {:>10}",
            n.name,
            n.role,
            n.rpc_http,
            if n.healthy { "ok" } else { "DOWN" },
            n.head.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
            n.head_age_ms
                .map(|a| format!("{a} ms"))
                .unwrap_or_else(|| "-".into()),
        );
        if let Some(e) = &n.error {
            let _ = writeln!(t, "      {e}");
        }
    }
    t
}
