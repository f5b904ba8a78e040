//! The command line: `devnet up | down | status | init`, one file per subcommand.

mod down;
mod init;
mod status;
mod up;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::plan::{pid_file, ChainKind, Plan};
use crate::process;
use crate::setup::Binaries;
use crate::topology::{Overrides, Topology};
use crate::{io_err, Error, Result};

/// The bridge member binary.
const BRIDGE: &str = "bridge";

/// The topology file read when `--topology` is not given (if it exists).
pub const DEFAULT_TOPOLOGY: &str = "deploy/devnet.toml";

/// The Twinpeg devnet launcher: a whole local two-chain network with one command.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create (or resume) the devnet, start every process, print the endpoints, and supervise
    /// until Ctrl-C or `devnet down`.
    Up(UpArgs),
    /// Stop the devnet a running `devnet up` supervises.
    Down(DirArgs),
    /// Show each node's health from `devnet.json`.
    Status(StatusArgs),
    /// Only write keys, genesis files and node configs and initialize the data dirs (what
    /// `up` does before starting anything; the container setup uses it).
    Init(InitArgs),
    /// Internal: set the parent-death signal, then exec the given program (Linux).
    #[command(name = "exec-child", hide = true)]
    ExecChild {
        /// The launcher's pid.
        #[arg(long)]
        parent: u32,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

/// Where the topology comes from.
#[derive(Debug, Clone, Args)]
pub struct TopologyArgs {
    /// Topology file (default: deploy/devnet.toml when it exists). Then DEVNET_* environment
    /// variables, then the flags below.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Flags overriding single topology keys.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// `devnet up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The topology.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Wipe the devnet directory and start new chains.
    #[arg(long)]
    pub fresh: bool,
    /// Restart a process that dies (with backoff) instead of only reporting it.
    #[arg(long)]
    pub restart: bool,
    /// Directory holding the `mainchain` and `sidechain` binaries (default: next to `devnet`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Seconds each process gets to become healthy.
    #[arg(long, default_value_t = 60)]
    pub start_timeout_secs: u64,
    /// Seconds each process gets to exit after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub stop_grace_secs: u64,
}

/// `devnet init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The topology.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Wipe the devnet directory first.
    #[arg(long)]
    pub fresh: bool,
    /// Directory holding the `mainchain` and `sidechain` binaries (default: next to `devnet`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

/// Which devnet: its directory, from `--dir` or the topology.
#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// The devnet directory (default: `dir` of the topology, `devnet`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Topology file to take `dir` from (default: deploy/devnet.toml when it exists).
    #[arg(long)]
    pub topology: Option<PathBuf>,
}

/// `devnet status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Which devnet.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command line; the whole of `main` but printing the error.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::ExecChild { parent, command } = &cli.command {
        return Err(process::exec_child(*parent, command));
    }
    // One thread: children are spawned from the main thread, which is what their
    // parent-death signal is tied to (see `process`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the async runtime"))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Down(args) => down::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Init(args) => init::run(args).await,
            Command::ExecChild { .. } => Ok(ExitCode::FAILURE),
        }
    })
}

/// Loads the topology: defaults, the file, `DEVNET_*`, then flags; validated.
fn load_topology(args: &TopologyArgs) -> Result<Topology> {
    let mut t = match &args.topology {
        Some(f) => Topology::load(Some(f), true)?,
        None => Topology::load(Some(Path::new(DEFAULT_TOPOLOGY)), false)?,
    };
    t.apply(&args.overrides);
    t.validate()?;
    Ok(t)
}

/// What `init` and `up` start from, checked before anything is written: the topology, its plan
/// and the binaries (every node's, and the bridge's if `bridge` and there are members), with no
/// launcher already running the devnet directory.
fn open_devnet(
    args: &TopologyArgs,
    bin_dir: Option<PathBuf>,
    bridge: bool,
) -> Result<(Topology, Plan, Binaries)> {
    let topology = load_topology(args)?;
    topology.check_supported()?;
    let plan = Plan::new(&topology, &current_dir()?);
    let bins = Binaries::resolve(bin_dir)?;
    for kind in ChainKind::ALL {
        bins.node(kind)?;
    }
    if bridge && !plan.members.is_empty() {
        bins.get(BRIDGE)?;
    }
    if let Some(pid) = running_launcher(&plan.dir) {
        return Err(Error::AlreadyRunning {
            pid,
            dir: plan.dir.clone(),
        });
    }
    Ok((topology, plan, bins))
}

/// The devnet directory `down` and `status` act on (absolute).
fn resolve_dir(args: &DirArgs) -> Result<PathBuf> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            load_topology(&TopologyArgs {
                topology: args.topology.clone(),
                overrides: Overrides::default(),
            })?
            .dir
        }
    };
    Ok(current_dir()?.join(dir))
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(io_err("reading the current directory"))
}

/// The pid of the launcher running `dir`, if one is alive.
pub fn running_launcher(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pid_file(dir)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (process::is_alive(pid) && looks_like_devnet(pid)).then_some(pid)
}

/// Guards against a stale pid file naming a reused pid: on Linux the process must be `devnet`.
fn looks_like_devnet(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .and_then(|c| {
                let argv0 = c.split(|b| *b == 0).next()?.to_vec();
                let argv0 = PathBuf::from(String::from_utf8_lossy(&argv0).into_owned());
                Some(argv0.file_name()?.to_string_lossy().starts_with("devnet"))
            })
            .unwrap_or(false)
    } else {
        true
    }
}

/// The launcher's pid file; removed on drop if it is still ours.
#[derive(Debug)]
struct PidFile(PathBuf);

impl PidFile {
    fn create(dir: &Path) -> Result<Self> {
        if let Some(pid) = running_launcher(dir) {
            return Err(Error::AlreadyRunning {
                pid,
                dir: dir.to_path_buf(),
            });
        }
        let path = pid_file(dir);
        crate::setup::write(&path, &format!("{}\n", std::process::id()))?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .map(|t| t.trim() == std::process::id().to_string())
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
