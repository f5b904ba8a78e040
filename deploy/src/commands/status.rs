//! `devnet status`: each node and member of `devnet.json`, asked for its health.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::health;
use crate::info;
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

/// One federation member's state, as `devnet status --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// `member-0`, ...
    pub name: String,
    /// Its status URL.
    pub status_http: String,
    /// Its pid as `devnet.json` lists it.
    pub pid: u32,
    /// Whether it answered `bridge_status`.
    pub healthy: bool,
    /// Connected members, if it answered.
    pub peers: Option<usize>,
    /// Unpaid transfers (deposits + withdrawals), if it answered.
    pub backlog: Option<u64>,
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
    /// Every federation member.
    pub members: Vec<MemberStatus>,
}

/// Runs `devnet status`; exits non-zero unless the launcher runs and every node is healthy.
pub async fn run(args: StatusArgs) -> Result<ExitCode> {
    let dir = resolve_dir(&args.dir)?;
    let file = dir.join(primitives::devnet::FILE);
    if !file.exists() {
        return Err(Error::Mismatch(format!(
            "no {}: start the devnet with `devnet up`",
            file.display()
        )));
    }
    let info = info::read(&file)?;
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
    let mut members = Vec::new();
    for m in &info.members {
        let s = health::member_status(&m.status_http, Duration::from_secs(3)).await;
        let backlog = s.as_ref().ok().map(|s| {
            s.directions
                .iter()
                .map(|d| u64::try_from(d.backlog).unwrap_or(u64::MAX))
                .sum()
        });
        members.push(MemberStatus {
            name: m.name.clone(),
            status_http: m.status_http.clone(),
            pid: m.pid,
            healthy: s.is_ok(),
            peers: s.as_ref().ok().map(|s| s.peers.len()),
            backlog,
            error: s.err().map(|e| e.to_string()),
        });
    }
    let report = StatusReport {
        dir: dir.display().to_string(),
        launcher_pid: running_launcher(&dir),
        nodes,
        members,
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
    let ok = report.launcher_pid.is_some()
        && report.nodes.iter().all(|n| n.healthy)
        && report.members.iter().all(|m| m.healthy);
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
    if !r.members.is_empty() {
        let _ = writeln!(
            t,
            "  {:<12} {:<39} {:<8} {:>8} {:>10}",
            "member", "status", "health", "peers", "backlog"
        );
        for m in &r.members {
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            let _ = writeln!(
                t,
                "  {:<12} {:<39} {:<8} {:>8} {:>10}",
                m.name,
                m.status_http,
                if m.healthy { "ok" } else { "DOWN" },
                opt(m.peers.map(|p| p as u64)),
                opt(m.backlog),
            );
            if let Some(e) = &m.error {
                let _ = writeln!(t, "      {e}");
            }
        }
    }
    t
}
