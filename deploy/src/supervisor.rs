//! The supervisor: starts every process, waits until each is ready, reports (and with
//! `--restart`, restarts) the ones that die, and stops them all: SIGTERM, a grace period,
//! then SIGKILL. One task per child waits on it and reports its exit through a bounded
//! channel; the supervisor alone starts, signals and restarts.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};

use crate::health::{self, Endpoints, MemberEndpoints};
use crate::plan::tcp_multiaddr;
use crate::process::{self, ProcessSpec, Readiness};
use crate::{Error, Result};

/// Restarts of one process in a row, each within [`STABLE_AFTER`] of its start, before giving up.
const MAX_QUICK_RESTARTS: u32 = 5;
/// A process that ran this long is considered to have been healthy.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long a child gets between SIGKILL and being reaped.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A process exit, as the per-child task reports it.
#[derive(Debug)]
struct Exit {
    index: usize,
    generation: u64,
    status: String,
}

/// What the supervisor knows about one process.
#[derive(Debug, Default)]
struct Slot {
    /// Incremented at each start; tells this start's exit from an earlier one's.
    generation: u64,
    pid: Option<u32>,
    started: Option<Instant>,
    /// Whether the current start was seen ready.
    ready: bool,
    /// A node's endpoints at its last ready start (kept across restarts: a restart reuses them).
    endpoints: Option<Endpoints>,
    /// A member's endpoints at its last ready start (likewise).
    member: Option<MemberEndpoints>,
    exited: Option<String>,
    /// Whether its exit was reported.
    reported: bool,
    quick_restarts: u32,
}

/// How supervision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A signal or `devnet down` asked for shutdown.
    Requested,
    /// Every process has exited and none is being restarted.
    AllExited,
}

/// Becomes ready when the launcher is asked to stop (Ctrl-C, SIGTERM, SIGHUP).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<Option<&'static str>>);

impl Shutdown {
    /// Listens for SIGINT, SIGTERM and SIGHUP.
    pub fn listen() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |e| Error::Io {
            what: "listening for signals".into(),
            source: e,
        };
        let mut int = signal(SignalKind::interrupt()).map_err(io)?;
        let mut term = signal(SignalKind::terminate()).map_err(io)?;
        let mut hup = signal(SignalKind::hangup()).map_err(io)?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            let _ = tx.send(Some(name));
        });
        Ok(Self(rx))
    }

    /// Waits until shutdown is requested; returns the signal's name.
    pub async fn requested(&mut self) -> &'static str {
        match self.0.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or("signal"),
            // The listener is gone: treat as a request to stop.
            Err(_) => "signal",
        }
    }
}

/// Runs and watches a set of processes.
#[derive(Debug)]
pub struct Supervisor {
    specs: Vec<ProcessSpec>,
    slots: Vec<Slot>,
    exits_tx: mpsc::Sender<Exit>,
    exits_rx: mpsc::Receiver<Exit>,
    restart: bool,
    start_timeout: Duration,
}

impl Supervisor {
    /// A supervisor for `specs`; nothing runs until [`Supervisor::start_all`].
    pub fn new(specs: Vec<ProcessSpec>, restart: bool, start_timeout: Duration) -> Self {
        // Each start sends exactly one exit; the supervisor drains them promptly.
        let (exits_tx, exits_rx) = mpsc::channel(specs.len().max(1) * 4);
        let slots = specs.iter().map(|_| Slot::default()).collect();
        Self {
            specs,
            slots,
            exits_tx,
            exits_rx,
            restart,
            start_timeout,
        }
    }

    /// The processes, in start order.
    pub fn specs(&self) -> &[ProcessSpec] {
        &self.specs
    }

    /// The pid of process `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.slots.get(i).and_then(|s| s.pid)
    }

    /// The endpoints node `i` reported at its last ready start.
    pub fn endpoints(&self, i: usize) -> Option<&Endpoints> {
        self.slots.get(i).and_then(|s| s.endpoints.as_ref())
    }

    /// The endpoints member `i` reported at its last ready start.
    pub fn member_endpoints(&self, i: usize) -> Option<&MemberEndpoints> {
        self.slots.get(i).and_then(|s| s.member.as_ref())
    }

    /// The processes `i` is started after: those it bootstraps from and, for a member, its
    /// two nodes.
    fn dependencies(&self, i: usize) -> Vec<usize> {
        let spec = &self.specs[i];
        let mut deps = spec.bootstrap_from.clone();
        if let Readiness::Member {
            main_node,
            side_node,
            ..
        } = &spec.ready
        {
            deps.extend([*main_node, *side_node]);
        }
        deps
    }

    /// Starts every process, then waits until each is ready. A process with dependencies
    /// ([`ProcessSpec::bootstrap_from`], a member's nodes) is started once those are ready,
    /// with their addresses; the others start at once.
    pub async fn start_all(&mut self) -> Result<()> {
        for i in 0..self.specs.len() {
            for d in self.dependencies(i) {
                if !self.slots[d].ready {
                    self.wait_ready(d).await?;
                }
            }
            let (args, env) = self.start_extra(i, false);
            self.start(i, &args, &env)?;
        }
        for i in 0..self.specs.len() {
            if !self.slots[i].ready {
                self.wait_ready(i).await?;
            }
        }
        Ok(())
    }

    /// Fails if a process has exited (reported with the end of its log); for waits that
    /// follow [`Supervisor::start_all`].
    pub fn check_running(&mut self) -> Result<()> {
        self.drain_exits();
        match self.slots.iter().position(|s| s.exited.is_some()) {
            Some(i) => Err(Error::Child {
                name: self.specs[i].name.clone(),
                reason: format!(
                    "exited ({}) during start-up",
                    self.slots[i].exited.as_deref().unwrap_or("unknown status")
                ),
                log_tail: process::log_tail(&self.specs[i].log, 20),
            }),
            None => Ok(()),
        }
    }

    /// `--bootstrap <addr>` for each process of [`ProcessSpec::bootstrap_from`] that reported
    /// a p2p address (the first: loopback, with its peer id).
    fn bootstrap_args(&self, i: usize) -> Vec<OsString> {
        self.bootstrap_addrs(i)
            .into_iter()
            .flat_map(|a| [OsString::from("--bootstrap"), OsString::from(a)])
            .collect()
    }

    /// The p2p address (loopback, with its peer id) of each process of
    /// [`ProcessSpec::bootstrap_from`] that reported one.
    fn bootstrap_addrs(&self, i: usize) -> Vec<String> {
        self.specs[i]
            .bootstrap_from
            .iter()
            .filter_map(|&d| {
                let slot = &self.slots[d];
                let p2p = match (&slot.endpoints, &slot.member) {
                    (Some(e), _) => &e.p2p,
                    (None, Some(m)) => &m.p2p,
                    (None, None) => return None,
                };
                health::prefer_loopback(p2p).cloned()
            })
            .collect()
    }

    /// Extra arguments and environment for starting process `i` (`restart`: again, keeping
    /// the addresses it had).
    fn start_extra(&self, i: usize, restart: bool) -> (Vec<OsString>, Vec<(String, String)>) {
        match &self.specs[i].ready {
            Readiness::Node { .. } => {
                let args = if restart {
                    self.restart_args(i)
                } else {
                    self.bootstrap_args(i)
                };
                (args, vec![])
            }
            Readiness::Member { .. } => (vec![], self.member_env(i, restart)),
        }
    }

    /// A member's environment layer (its config file holds the rest): the real endpoints of
    /// its nodes, the earlier members' p2p addresses with their peer ids and, on a restart
    /// with ephemeral ports, the p2p and status addresses it had (so its peers redial it and
    /// `devnet.json` stays right).
    fn member_env(&self, i: usize, restart: bool) -> Vec<(String, String)> {
        let Readiness::Member {
            endpoints_file,
            p2p_addr,
            status_addr,
            main_node,
            side_node,
        } = &self.specs[i].ready
        else {
            return vec![];
        };
        let mut env = Vec::new();
        for (chain, node) in [("MAIN", main_node), ("SIDE", side_node)] {
            if let Some(e) = self.endpoints(*node) {
                env.push((format!("BRIDGE_{chain}_RPC"), e.rpc_http.clone()));
                env.push((format!("BRIDGE_{chain}_WS"), e.rpc_ws.clone()));
            }
        }
        let bootstrap = self.bootstrap_addrs(i);
        if !bootstrap.is_empty() {
            env.push(("BRIDGE_BOOTSTRAP".into(), bootstrap.join(",")));
        }
        if restart {
            let previous = self.slots[i]
                .member
                .clone()
                .or_else(|| health::read_member_endpoints(endpoints_file));
            if p2p_addr.port() == 0 {
                if let Some(port) = previous
                    .as_ref()
                    .and_then(|e| health::prefer_loopback(&e.p2p))
                    .and_then(|a| health::multiaddr_tcp_port(a))
                {
                    let listen = SocketAddr::new(p2p_addr.ip(), port);
                    env.push(("BRIDGE_P2P_LISTEN".into(), tcp_multiaddr(listen)));
                }
            }
            if status_addr.port() == 0 {
                if let Some(port) = previous
                    .as_ref()
                    .and_then(|e| e.status_http.strip_prefix("http://"))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .map(|a| a.port())
                {
                    let bind = SocketAddr::new(status_addr.ip(), port);
                    env.push(("BRIDGE_STATUS_ADDR".into(), bind.to_string()));
                }
            }
        }
        env
    }

    fn start(
        &mut self,
        i: usize,
        extra_args: &[OsString],
        extra_env: &[(String, String)],
    ) -> Result<()> {
        let spec = &self.specs[i];
        // A stale file from an earlier start is told apart by its pid anyway.
        let _ = std::fs::remove_file(spec.ready.endpoints_file());
        let mut child = process::spawn(spec, extra_args, extra_env)?;
        let pid = child.id().ok_or_else(|| Error::Child {
            name: spec.name.clone(),
            reason: "exited at once".into(),
            log_tail: process::log_tail(&spec.log, 20),
        })?;
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.pid = Some(pid);
        slot.started = Some(Instant::now());
        slot.ready = false;
        slot.exited = None;
        slot.reported = false;
        let (tx, generation) = (self.exits_tx.clone(), slot.generation);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown status ({e})"),
            };
            let _ = tx
                .send(Exit {
                    index: i,
                    generation,
                    status,
                })
                .await;
        });
        Ok(())
    }

    /// Records one exit report; returns the index if it is the current start's.
    fn record(&mut self, exit: Exit) -> Option<usize> {
        let slot = self.slots.get_mut(exit.index)?;
        if slot.generation != exit.generation || slot.exited.is_some() {
            return None;
        }
        slot.exited = Some(exit.status);
        slot.pid = None;
        Some(exit.index)
    }

    fn drain_exits(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        while let Ok(exit) = self.exits_rx.try_recv() {
            out.extend(self.record(exit));
        }
        out
    }

    /// Waits until process `i` is ready, failing if it exits or the deadline passes.
    async fn wait_ready(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + self.start_timeout;
        let fail = |s: &Self, reason: String| Error::Child {
            name: s.specs[i].name.clone(),
            reason,
            log_tail: process::log_tail(&s.specs[i].log, 20),
        };
        loop {
            self.drain_exits();
            if let Some(status) = &self.slots[i].exited {
                return Err(fail(self, format!("exited ({status}) before it was ready")));
            }
            match &self.specs[i].ready {
                Readiness::Node { endpoints_file, .. } => {
                    if let Some(e) = health::read_endpoints(endpoints_file) {
                        if Some(e.pid) == self.slots[i].pid
                            && health::health(&e.rpc_http, Duration::from_secs(2))
                                .await
                                .is_ok()
                        {
                            self.slots[i].endpoints = Some(e);
                            self.slots[i].ready = true;
                            return Ok(());
                        }
                    }
                }
                Readiness::Member { endpoints_file, .. } => {
                    if let Some(e) = health::read_member_endpoints(endpoints_file) {
                        if Some(e.pid) == self.slots[i].pid
                            && health::member_status(&e.status_http, Duration::from_secs(2))
                                .await
                                .is_ok()
                        {
                            self.slots[i].member = Some(e);
                            self.slots[i].ready = true;
                            return Ok(());
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(fail(
                    self,
                    format!("not ready after {} s", self.start_timeout.as_secs()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Watches the processes until shutdown is requested or all have exited. `on_change`
    /// runs after a process was restarted (its pid, perhaps its endpoints, changed).
    pub async fn supervise(
        &mut self,
        shutdown: &mut Shutdown,
        mut on_change: impl FnMut(&Supervisor),
    ) -> Outcome {
        loop {
            self.drain_exits();
            // Exits seen while waiting for readiness (of this or another process) count too.
            let pending: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].exited.is_some() && !self.slots[i].reported)
                .collect();
            if pending.is_empty() {
                if self.slots.iter().all(|s| s.pid.is_none()) {
                    return Outcome::AllExited;
                }
                tokio::select! {
                    _ = shutdown.requested() => return Outcome::Requested,
                    Some(exit) = self.exits_rx.recv() => {
                        self.record(exit);
                    }
                }
                continue;
            }
            for &i in &pending {
                self.report_exit(i);
            }
            if !self.restart {
                continue;
            }
            for i in pending {
                tokio::select! {
                    _ = shutdown.requested() => return Outcome::Requested,
                    restarted = self.restart(i) => {
                        if restarted {
                            on_change(self);
                        }
                    }
                }
            }
        }
    }

    fn report_exit(&mut self, i: usize) {
        self.slots[i].reported = true;
        let spec = &self.specs[i];
        let status = self.slots[i].exited.as_deref().unwrap_or("unknown status");
        let next = if self.restart {
            "restarting it (--restart)"
        } else {
            "NOT restarting it (start with --restart to have dead processes restarted); the rest keeps running"
        };
        eprintln!(
            "\n!!! devnet: {} exited unexpectedly ({status})\n!!! last lines of {}:\n{}\n!!! {next}\n",
            spec.name,
            spec.log.display(),
            process::log_tail(&spec.log, 20)
        );
    }

    /// Restarts process `i` with backoff; false when it gives up.
    async fn restart(&mut self, i: usize) -> bool {
        loop {
            let slot = &mut self.slots[i];
            let ran = slot.started.map(|s| s.elapsed()).unwrap_or_default();
            if ran >= STABLE_AFTER {
                slot.quick_restarts = 0;
            }
            if slot.quick_restarts >= MAX_QUICK_RESTARTS {
                slot.reported = true;
                eprintln!(
                    "!!! devnet: giving up on {} after {MAX_QUICK_RESTARTS} quick restarts; see its log",
                    self.specs[i].name
                );
                return false;
            }
            let delay = Duration::from_millis(500 << slot.quick_restarts.min(6));
            slot.quick_restarts += 1;
            tokio::time::sleep(delay).await;
            let (args, env) = self.start_extra(i, true);
            let ready = match self.start(i, &args, &env) {
                Ok(()) => self.wait_ready(i).await,
                Err(e) => Err(e),
            };
            match ready {
                Ok(()) => {
                    eprintln!(
                        "devnet: {} restarted (pid {})",
                        self.specs[i].name,
                        self.pid(i).unwrap_or_default()
                    );
                    return true;
                }
                Err(e) => {
                    eprintln!("!!! devnet: restarting failed: {e}");
                    self.kill_and_reap(i).await;
                }
            }
        }
    }

    /// Extra arguments for a node's restart: it keeps the RPC address it had (an ephemeral
    /// port stays the same, so `devnet.json` and clients stay valid) and, with an ephemeral p2p
    /// port, the p2p port it had (which its peers redial), and gets its bootstrap peers again.
    /// (A member's restart: [`Supervisor::member_env`].)
    fn restart_args(&self, i: usize) -> Vec<OsString> {
        match &self.specs[i].ready {
            Readiness::Node {
                endpoints_file,
                p2p_addr,
            } => {
                let previous = self.slots[i]
                    .endpoints
                    .clone()
                    .or_else(|| health::read_endpoints(endpoints_file));
                let mut args: Vec<OsString> = Vec::new();
                if let Some(a) = previous.as_ref().and_then(|e| {
                    e.rpc_http
                        .strip_prefix("http://")
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                }) {
                    args.extend(["--rpc-addr".into(), a.to_string().into()]);
                }
                if p2p_addr.port() == 0 {
                    if let Some(port) = previous
                        .as_ref()
                        .and_then(|e| e.p2p.first())
                        .and_then(|a| health::multiaddr_tcp_port(a))
                    {
                        let listen = SocketAddr::new(p2p_addr.ip(), port);
                        args.extend(["--p2p-listen".into(), tcp_multiaddr(listen).into()]);
                    }
                }
                args.extend(self.bootstrap_args(i));
                args
            }
            Readiness::Member { .. } => vec![],
        }
    }

    async fn kill_and_reap(&mut self, i: usize) {
        if let Some(pid) = self.slots[i].pid {
            process::signal(pid, Signal::SIGKILL);
        }
        let deadline = Instant::now() + KILL_WAIT;
        while self.slots[i].pid.is_some() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline.into(), self.exits_rx.recv()).await {
                Ok(Some(exit)) => {
                    self.record(exit);
                }
                _ => break,
            }
        }
    }

    /// Stops every running process: SIGTERM (last started first), up to `grace` for them to
    /// exit, then SIGKILL for the rest. Returns the names of those that needed SIGKILL.
    pub async fn stop_all(&mut self, grace: Duration) -> Vec<String> {
        self.drain_exits();
        for i in (0..self.slots.len()).rev() {
            if let Some(pid) = self.slots[i].pid {
                process::signal(pid, Signal::SIGTERM);
            }
        }
        self.wait_all_exited(grace).await;
        let mut killed = Vec::new();
        for i in 0..self.slots.len() {
            if let Some(pid) = self.slots[i].pid {
                process::signal(pid, Signal::SIGKILL);
                killed.push(self.specs[i].name.clone());
            }
        }
        if !killed.is_empty() {
            self.wait_all_exited(KILL_WAIT).await;
        }
        killed
    }

    async fn wait_all_exited(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.slots.iter().any(|s| s.pid.is_some()) {
            match tokio::time::timeout_at(deadline, self.exits_rx.recv()).await {
                Ok(Some(exit)) => {
                    self.record(exit);
                }
                _ => return,
            }
        }
    }
}
