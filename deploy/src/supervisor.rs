//! The supervisor: starts every process, waits until each is ready, reports (and with
//! `--restart`, restarts) the ones that die, and stops them all: SIGTERM, a grace period,
//! then SIGKILL. One task per child waits on it and reports its exit through a bounded
//! channel; the supervisor alone starts, signals and restarts.
//!
//! Restarts never wait on one child alone: each turn of the supervision loop records every
//! exit, checks every restart in progress for readiness, and starts each dead process whose
//! backoff has passed and whose dependencies are back ([`plan_restarts`]). So children that
//! die together, in any order, all come back, nodes before the members that use them.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use service::endpoints::{self, MemberEndpoints, NodeEndpoints};
use tokio::sync::{mpsc, watch};

use crate::health;
use crate::plan::tcp_multiaddr;
use crate::process::{self, ProcessSpec, Readiness};
use crate::{Error, Result};

/// Restarts of one process in a row, each after a start that never became ready or died within
/// [`STABLE_AFTER`] of becoming ready, before giving up.
const MAX_QUICK_RESTARTS: u32 = 5;
/// How long a readiness probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A process that was ready this long is considered to have been healthy.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long a child gets between SIGKILL and being reaped.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How often the supervision loop looks again while a restart is pending or in progress.
const TICK: Duration = Duration::from_millis(100);

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
    /// Whether the current start was seen ready.
    ready: bool,
    /// When the current start was seen ready (tells a healthy run from a quick failure).
    ready_at: Option<Instant>,
    /// A node's endpoints at its last ready start (kept across restarts: a restart reuses them).
    endpoints: Option<NodeEndpoints>,
    /// A member's endpoints at its last ready start (likewise).
    member: Option<MemberEndpoints>,
    exited: Option<String>,
    /// Whether its exit was reported.
    reported: bool,
    quick_restarts: u32,
    /// Dead and to be restarted no earlier than this (`--restart`).
    restart_due: Option<Instant>,
    /// A restart in progress: it must be ready by then (pushed back while a process it needs
    /// is itself being restarted).
    ready_by: Option<Instant>,
    /// This start was killed for not becoming ready in time: its exit is no surprise.
    killed: bool,
    /// Given up on: not restarted again.
    given_up: bool,
    /// The dependency its restart was last said to wait for (said once, not every turn).
    held_by: Option<usize>,
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
    pub fn endpoints(&self, i: usize) -> Option<&NodeEndpoints> {
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
                .or_else(|| endpoints::read::<MemberEndpoints>(endpoints_file));
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
        slot.ready = false;
        slot.ready_at = None;
        slot.exited = None;
        slot.reported = false;
        slot.killed = false;
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
        loop {
            self.drain_exits();
            if let Some(status) = &self.slots[i].exited {
                let reason = format!("exited ({status}) before it was ready");
                return Err(self.child_error(i, reason));
            }
            if self.poll_ready(i).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.not_ready_error(i));
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// An error about process `i`, with the end of its log.
    fn child_error(&self, i: usize, reason: String) -> Error {
        Error::Child {
            name: self.specs[i].name.clone(),
            reason,
            log_tail: process::log_tail(&self.specs[i].log, 20),
        }
    }

    /// Process `i` did not become ready within the start timeout.
    fn not_ready_error(&self, i: usize) -> Error {
        let reason = format!("not ready after {} s", self.start_timeout.as_secs());
        self.child_error(i, reason)
    }

    /// Checks once whether the current start of process `i` is ready (its endpoints file
    /// names its pid and it answers); records its endpoints if so.
    async fn poll_ready(&mut self, i: usize) -> bool {
        let Some(pid) = self.slots[i].pid else {
            return false;
        };
        // Only endpoints written by this start count: the file may be the previous one's.
        let ready = match &self.specs[i].ready {
            Readiness::Node { endpoints_file, .. } => {
                let e = endpoints::read::<NodeEndpoints>(endpoints_file).filter(|e| e.pid == pid);
                match e {
                    Some(e) if health::health(&e.rpc_http, PROBE_TIMEOUT).await.is_ok() => {
                        self.slots[i].endpoints = Some(e);
                        true
                    }
                    _ => false,
                }
            }
            Readiness::Member { endpoints_file, .. } => {
                let e = endpoints::read::<MemberEndpoints>(endpoints_file).filter(|e| e.pid == pid);
                match e {
                    Some(e)
                        if health::member_status(&e.status_http, PROBE_TIMEOUT)
                            .await
                            .is_ok() =>
                    {
                        self.slots[i].member = Some(e);
                        true
                    }
                    _ => false,
                }
            }
        };
        if ready {
            self.slots[i].ready = true;
            self.slots[i].ready_at = Some(Instant::now());
        }
        ready
    }

    /// Watches the processes until shutdown is requested or all have exited. `on_change`
    /// runs after a process was restarted (its pid, perhaps its endpoints, changed).
    pub async fn supervise(
        &mut self,
        shutdown: &mut Shutdown,
        mut on_change: impl FnMut(&Supervisor),
    ) -> Outcome {
        let deps = self.restart_deps();
        loop {
            // One turn never waits on a single child: exits of any process are seen on the
            // next turn at the latest.
            tokio::select! {
                _ = shutdown.requested() => return Outcome::Requested,
                () = self.turn(&deps, &mut on_change) => {}
            }
            let busy = self
                .slots
                .iter()
                .any(|s| s.restart_due.is_some() || (s.pid.is_some() && s.ready_by.is_some()));
            if !busy && self.slots.iter().all(|s| s.pid.is_none()) {
                return Outcome::AllExited;
            }
            tokio::select! {
                _ = shutdown.requested() => return Outcome::Requested,
                Some(exit) = self.exits_rx.recv() => {
                    self.record(exit);
                }
                _ = tokio::time::sleep(TICK), if busy => {}
            }
        }
    }

    /// Each process's dependencies for a restart (see [`Deps`]).
    fn restart_deps(&self) -> Vec<Deps> {
        self.specs
            .iter()
            .map(|spec| Deps {
                needs: match &spec.ready {
                    Readiness::Member {
                        main_node,
                        side_node,
                        ..
                    } => vec![*main_node, *side_node],
                    Readiness::Node { .. } => vec![],
                },
                after: spec.bootstrap_from.clone(),
            })
            .collect()
    }

    /// One turn of supervision: handles every exit recorded so far, checks each restart in
    /// progress, and starts each dead process that is due and whose dependencies are back.
    async fn turn(&mut self, deps: &[Deps], on_change: &mut impl FnMut(&Supervisor)) {
        self.drain_exits();
        // Exits seen while waiting for readiness (of this or another process) count too.
        for i in 0..self.slots.len() {
            if self.slots[i].exited.is_some() && !self.slots[i].reported {
                self.on_exit(i);
            }
        }
        if !self.restart {
            return;
        }
        for (i, d) in deps.iter().enumerate() {
            let slot = &self.slots[i];
            let Some(ready_by) = slot.ready_by else {
                continue;
            };
            if slot.pid.is_none() || slot.killed {
                continue;
            }
            if self.poll_ready(i).await {
                self.slots[i].ready_by = None;
                eprintln!(
                    "devnet: {} restarted (pid {})",
                    self.specs[i].name,
                    self.pid(i).unwrap_or_default()
                );
                on_change(self);
                continue;
            }
            let now = Instant::now();
            // A member waits for its nodes: while one of them is itself being restarted, the
            // member's clock does not run.
            let waits = d
                .needs
                .iter()
                .any(|&n| matches!(self.slots[n].state(), State::Down { .. } | State::Starting));
            if waits {
                self.slots[i].ready_by = Some(ready_by.max(now + self.start_timeout));
            } else if now >= ready_by {
                eprintln!("!!! devnet: restarting failed: {}", self.not_ready_error(i));
                if let Some(pid) = self.slots[i].pid {
                    process::signal(pid, Signal::SIGKILL);
                }
                // Its exit arrives through the channel; then it is scheduled again.
                self.slots[i].killed = true;
            }
        }
        let now = Instant::now();
        let states: Vec<State> = self.slots.iter().map(Slot::state).collect();
        for step in plan_restarts(&states, deps, now) {
            match step {
                Step::Start(i) => self.restart_now(i, now),
                Step::Wait { index, on } => {
                    if self.slots[index].held_by != Some(on) {
                        self.slots[index].held_by = Some(on);
                        eprintln!(
                            "devnet: restarting {} once {} is back",
                            self.specs[index].name, self.specs[on].name
                        );
                    }
                }
                Step::Abandon { index, on } => {
                    let slot = &mut self.slots[index];
                    slot.given_up = true;
                    slot.restart_due = None;
                    eprintln!(
                        "!!! devnet: not restarting {}: it needs {}, which was given up",
                        self.specs[index].name, self.specs[on].name
                    );
                }
            }
        }
    }

    /// Handles the recorded exit of process `i`: reports it and, with `--restart`, schedules
    /// its restart (or gives up on it).
    fn on_exit(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.reported = true;
        let was_restarting = slot.ready_by.take().is_some();
        if was_restarting && slot.killed {
            // Already reported: it was killed for not becoming ready.
        } else if was_restarting {
            let status = slot.exited.clone().unwrap_or_default();
            let e = self.child_error(i, format!("exited ({status}) before it was ready"));
            eprintln!("!!! devnet: restarting failed: {e}");
        } else {
            self.report_exit(i);
        }
        if self.restart {
            self.schedule(i, Instant::now());
        }
    }

    /// Schedules the restart of dead process `i` with backoff, or gives up on it after
    /// [`MAX_QUICK_RESTARTS`] quick restarts in a row.
    fn schedule(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        slot.held_by = None;
        // Only a start that was ready for a while resets the count: one that never became
        // ready is a quick failure however long it took.
        if slot
            .ready_at
            .is_some_and(|t| now.saturating_duration_since(t) >= STABLE_AFTER)
        {
            slot.quick_restarts = 0;
        }
        if slot.quick_restarts >= MAX_QUICK_RESTARTS {
            slot.given_up = true;
            slot.restart_due = None;
            eprintln!(
                "!!! devnet: giving up on {} after {MAX_QUICK_RESTARTS} quick restarts; see its log",
                self.specs[i].name
            );
            return;
        }
        let delay = Duration::from_millis(500 << slot.quick_restarts.min(6));
        slot.quick_restarts += 1;
        slot.restart_due = Some(now + delay);
    }

    /// Starts dead process `i` again (its dependencies are back); schedules another try if
    /// it cannot be started.
    fn restart_now(&mut self, i: usize, now: Instant) {
        let (args, env) = self.start_extra(i, true);
        match self.start(i, &args, &env) {
            Ok(()) => {
                let slot = &mut self.slots[i];
                slot.restart_due = None;
                slot.held_by = None;
                slot.ready_by = Some(now + self.start_timeout);
            }
            Err(e) => {
                eprintln!("!!! devnet: restarting failed: {e}");
                self.schedule(i, now);
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
                    .or_else(|| endpoints::read::<NodeEndpoints>(endpoints_file));
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

impl Slot {
    /// What the restart planner needs to know about this process.
    fn state(&self) -> State {
        match (self.pid, self.restart_due) {
            (Some(_), _) if self.ready => State::Ready,
            (Some(_), _) => State::Starting,
            (None, Some(due)) if !self.given_up => State::Down { due },
            (None, _) => State::Gone,
        }
    }
}

/// What a restart depends on, as indices into the supervisor's list (always lower ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Deps {
    /// Processes it cannot become ready without (a member's two nodes): it is restarted only
    /// once they are ready, and not at all if they were given up.
    needs: Vec<usize>,
    /// Processes it is restarted after when they are being restarted too (those it bootstraps
    /// from, as at start-up); one given up does not hold it back (its last address is passed).
    after: Vec<usize>,
}

/// A process as the restart planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running and seen ready.
    Ready,
    /// Running, not seen ready yet.
    Starting,
    /// Dead; to be restarted once `due` has come (backoff) and its dependencies are back.
    Down {
        /// The earliest restart.
        due: Instant,
    },
    /// Dead for good: given up on, or not restarted at all (no `--restart`).
    Gone,
}

/// What the planner decides about one dead process that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Start it now.
    Start(usize),
    /// Not yet: dependency `on` is not back.
    Wait {
        /// The dead process.
        index: usize,
        /// The dependency it waits for.
        on: usize,
    },
    /// Never: dependency `on`, which it needs, was given up.
    Abandon {
        /// The dead process.
        index: usize,
        /// The dependency that is gone.
        on: usize,
    },
}

/// Which dead processes to restart now, given every process's state and dependencies at
/// `now`. A process is started once its backoff has passed, every process it needs is ready
/// and none it comes after is dead or starting. Dependencies are decided on the states as
/// given, so a node and a member that uses it are never started in the same turn: the node
/// first, the member once the node is ready, whatever order they died in.
fn plan_restarts(states: &[State], deps: &[Deps], now: Instant) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let State::Down { due } = *state else {
            continue;
        };
        let Some(d) = deps.get(i) else {
            continue;
        };
        let state_of = |j: usize| states.get(j).copied().unwrap_or(State::Gone);
        if let Some(&on) = d.needs.iter().find(|&&j| state_of(j) == State::Gone) {
            steps.push(Step::Abandon { index: i, on });
            continue;
        }
        if due > now {
            continue;
        }
        let missing = d.needs.iter().find(|&&j| state_of(j) != State::Ready);
        let pending = d
            .after
            .iter()
            .find(|&&j| matches!(state_of(j), State::Down { .. } | State::Starting));
        match missing.or(pending) {
            Some(&on) => steps.push(Step::Wait { index: i, on }),
            None => steps.push(Step::Start(i)),
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default devnet's shape in miniature: nodes 0, 1 of a chain (1 bootstraps from 0),
    /// nodes 2, 3 of the other chain, members 4 (on nodes 0, 2) and 5 (on 1, 3, after 4).
    fn deps() -> Vec<Deps> {
        let d = |needs: &[usize], after: &[usize]| Deps {
            needs: needs.to_vec(),
            after: after.to_vec(),
        };
        vec![
            d(&[], &[]),
            d(&[], &[0]),
            d(&[], &[]),
            d(&[], &[2]),
            d(&[0, 2], &[]),
            d(&[1, 3], &[4]),
        ]
    }

    #[test]
    fn a_member_waits_for_its_node_whatever_died_first() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let down = |at: u64| State::Down { due: t0 + ms(at) };
        use State::{Ready, Starting};
        // Member 5 died first (due earlier) and its node 1 0.2 s later.
        let mut states = vec![Ready, down(700), Ready, Ready, Ready, down(500)];
        // Before either is due: nothing.
        assert_eq!(plan_restarts(&states, &deps(), t0), vec![]);
        // The member is due first but its node is dead: it waits, the node is not due yet.
        assert_eq!(
            plan_restarts(&states, &deps(), t0 + ms(600)),
            vec![Step::Wait { index: 5, on: 1 }]
        );
        // The node is due: it starts; the member still waits.
        assert_eq!(
            plan_restarts(&states, &deps(), t0 + ms(700)),
            vec![Step::Start(1), Step::Wait { index: 5, on: 1 }]
        );
        // While the node starts, the member waits; once it is ready, the member starts.
        states[1] = Starting;
        assert_eq!(
            plan_restarts(&states, &deps(), t0 + ms(800)),
            vec![Step::Wait { index: 5, on: 1 }]
        );
        states[1] = Ready;
        assert_eq!(
            plan_restarts(&states, &deps(), t0 + ms(900)),
            vec![Step::Start(5)]
        );
    }

    #[test]
    fn members_killed_together_come_back_in_order() {
        let t0 = Instant::now();
        let due = State::Down { due: t0 };
        use State::{Ready, Starting};
        let mut states = vec![Ready, Ready, Ready, Ready, due, due];
        // Member 5 bootstraps from member 4: 4 first, then 5 once 4 is ready.
        assert_eq!(
            plan_restarts(&states, &deps(), t0),
            vec![Step::Start(4), Step::Wait { index: 5, on: 4 }]
        );
        states[4] = Starting;
        assert_eq!(
            plan_restarts(&states, &deps(), t0),
            vec![Step::Wait { index: 5, on: 4 }]
        );
        states[4] = Ready;
        assert_eq!(plan_restarts(&states, &deps(), t0), vec![Step::Start(5)]);
    }

    #[test]
    fn everything_dead_restarts_nodes_first_and_independent_ones_together() {
        let t0 = Instant::now();
        let due = State::Down { due: t0 };
        let states = vec![due; 6];
        assert_eq!(
            plan_restarts(&states, &deps(), t0),
            vec![
                Step::Start(0),
                Step::Wait { index: 1, on: 0 },
                Step::Start(2),
                Step::Wait { index: 3, on: 2 },
                Step::Wait { index: 4, on: 0 },
                Step::Wait { index: 5, on: 1 },
            ]
        );
    }

    #[test]
    fn a_given_up_node_abandons_its_member_but_not_its_bootstrap_followers() {
        let t0 = Instant::now();
        let due = State::Down { due: t0 };
        use State::{Gone, Ready};
        let states = vec![Gone, due, Ready, Ready, due, Ready];
        assert_eq!(
            plan_restarts(&states, &deps(), t0),
            vec![Step::Start(1), Step::Abandon { index: 4, on: 0 }]
        );
        // A member abandoned even before its backoff has passed: it could never be ready.
        let later = State::Down {
            due: t0 + Duration::from_secs(5),
        };
        let states = vec![Gone, Ready, Ready, Ready, later, Ready];
        assert_eq!(
            plan_restarts(&states, &deps(), t0),
            vec![Step::Abandon { index: 4, on: 0 }]
        );
    }

    #[test]
    fn slot_states() {
        let t = Instant::now();
        let mut s = Slot::default();
        assert_eq!(s.state(), State::Gone);
        s.restart_due = Some(t);
        assert_eq!(s.state(), State::Down { due: t });
        s.given_up = true;
        assert_eq!(s.state(), State::Gone);
        s.given_up = false;
        s.pid = Some(1);
        assert_eq!(s.state(), State::Starting);
        s.ready = true;
        assert_eq!(s.state(), State::Ready);
    }
}
