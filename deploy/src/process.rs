//! Child processes: how one is started so that it never outlives the launcher, and the signals
//! the launcher sends.
//!
//! Each child runs in its own process group, so a Ctrl-C at the terminal reaches only the
//! launcher, which then stops the children in order (instead of every process racing to exit
//! and the launcher taking the exits for crashes). On Linux each child is started through
//! `devnet exec-child`, which sets the parent-death signal (`PR_SET_PDEATHSIG` = SIGTERM) and
//! then `exec`s the real program under the same pid: if the launcher is killed with SIGKILL or
//! crashes, the kernel stops its children. (This needs no `unsafe` `pre_exec` hook; the
//! workspace forbids unsafe code.) The parent-death signal fires when the *thread* that forked
//! the child exits, so the launcher spawns children from a single-threaded runtime, on the
//! main thread.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::{io_err, Error, Result};

/// A process the supervisor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Its name, e.g. `mainchain-0`.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
    /// How the supervisor knows it is ready.
    pub ready: Readiness,
    /// Earlier processes (indices into the supervisor's list) this one is started after, each
    /// passed as `--bootstrap <its first p2p address>` (a member: `BRIDGE_BOOTSTRAP`): with
    /// ephemeral p2p ports a node's address is known only once it runs. Empty when its
    /// `node.toml` already names its peers.
    pub bootstrap_from: Vec<usize>,
}

/// How to tell that a started process is ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// A chain node: it writes this `endpoints.json` with its pid, then answers `tp_health`.
    Node {
        /// `<data_dir>/endpoints.json`.
        endpoints_file: PathBuf,
        /// Where its p2p networking listens, as configured (port 0: ephemeral; a restart then
        /// keeps the port it bound, which its peers redial).
        p2p_addr: SocketAddr,
    },
    /// A bridge member: it writes this `endpoints.json` with its pid (once its nodes answer
    /// and its status server is bound), then answers `bridge_status`. It is started once its
    /// two nodes are ready and gets their real endpoints through its environment
    /// (`BRIDGE_MAIN_RPC`, `BRIDGE_MAIN_WS`, `BRIDGE_SIDE_RPC`, `BRIDGE_SIDE_WS`).
    Member {
        /// `<data_dir>/endpoints.json`.
        endpoints_file: PathBuf,
        /// Where its gossip listens, as configured (port 0: a restart keeps the bound port).
        p2p_addr: SocketAddr,
        /// Where its status server binds, as configured (port 0: a restart keeps the bound port).
        status_addr: SocketAddr,
        /// Its mainchain node (index into the supervisor's list).
        main_node: usize,
        /// Its sidechain node (index into the supervisor's list).
        side_node: usize,
    },
}

impl Readiness {
    /// The `endpoints.json` the process writes once it runs.
    pub fn endpoints_file(&self) -> &Path {
        match self {
            Readiness::Node { endpoints_file, .. } | Readiness::Member { endpoints_file, .. } => {
                endpoints_file
            }
        }
    }
}

/// Starts `spec` (plus `extra_args` and `extra_env`), its output appended to its log, in its
/// own process group, stopped by the kernel if the launcher dies (Linux).
pub fn spawn(
    spec: &ProcessSpec,
    extra_args: &[OsString],
    extra_env: &[(String, String)],
) -> Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(io_err(format!("opening {}", spec.log.display())))?;
    let log_err = log
        .try_clone()
        .map_err(io_err(format!("opening {}", spec.log.display())))?;
    let mut cmd = command(&spec.program)?;
    cmd.args(&spec.args)
        .args(extra_args)
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(io_err(format!(
        "starting {} ({} through {EXEC_CHILD})",
        spec.name,
        spec.program.display()
    )))
}

#[cfg(target_os = "linux")]
fn command(program: &Path) -> Result<tokio::process::Command> {
    // /proc/self/exe, not current_exe(): it still runs when `cargo build` has replaced the
    // launcher's file meanwhile (then current_exe() names a deleted file).
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg0("devnet")
        .arg(EXEC_CHILD)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(program);
    Ok(cmd)
}

#[cfg(not(target_os = "linux"))]
fn command(program: &Path) -> Result<tokio::process::Command> {
    Ok(tokio::process::Command::new(program))
}

/// The hidden subcommand that sets the parent-death signal, then becomes the program.
pub const EXEC_CHILD: &str = "exec-child";

/// Runs in the child: asks for SIGTERM when `parent` dies, then `exec`s `command` (same pid).
/// Returns only on failure.
pub fn exec_child(parent: u32, command: &[OsString]) -> Error {
    let Some((program, args)) = command.split_first() else {
        return Error::Invalid("exec-child: no program given".into());
    };
    #[cfg(target_os = "linux")]
    {
        if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
            return Error::Io {
                what: "setting the parent-death signal".into(),
                source: e.into(),
            };
        }
        // The launcher may have died before the signal was set: then nobody would stop us.
        if nix::unistd::getppid().as_raw() as u32 != parent {
            return Error::Invalid(format!(
                "exec-child: the launcher (pid {parent}) is gone; not starting {}",
                Path::new(program).display()
            ));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(program).args(args).exec();
    Error::Io {
        what: format!("executing {}", Path::new(program).display()),
        source: e,
    }
}

/// Sends `signal` to `pid`; false if there is no such process.
pub fn signal(pid: u32, signal: Signal) -> bool {
    match i32::try_from(pid) {
        Ok(p) if p > 0 => nix::sys::signal::kill(Pid::from_raw(p), signal).is_ok(),
        _ => false,
    }
}

/// Whether a process with this pid exists (a zombie counts until it is reaped).
pub fn is_alive(pid: u32) -> bool {
    match i32::try_from(pid) {
        Ok(p) if p > 0 => !matches!(
            nix::sys::signal::kill(Pid::from_raw(p), None),
            Err(nix::errno::Errno::ESRCH)
        ),
        _ => false,
    }
}

/// The last `lines` lines of a log file (empty if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
