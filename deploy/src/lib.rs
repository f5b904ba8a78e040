//! The Twinpeg devnet launcher: one command for a whole local two-chain network.
//!
//! The flow is a pipeline of plain data: a [`topology::Topology`] (defaults, `devnet.toml`,
//! `DEVNET_*` environment, flags) becomes a [`plan::Plan`] (one [`plan::NodeSpec`] per node,
//! with its directory, ports and role); [`setup`] writes the files an operator would write by
//! hand (keys, genesis, `node.toml`) and initializes the data dirs; [`supervisor`] runs one
//! process per node, waits until each is healthy, restarts or reports the ones that die, and
//! stops them all on Ctrl-C; [`info`] is what it prints and writes as `devnet.json`.

pub mod commands;
pub mod health;
pub mod info;
pub mod plan;
pub mod process;
pub mod setup;
pub mod supervisor;
pub mod topology;

use std::path::PathBuf;

/// Everything that can go wrong in the launcher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology sources do not form a valid configuration.
    #[error("topology: {0}")]
    Config(#[from] config::ConfigError),
    /// A topology value is out of range or inconsistent.
    #[error("invalid topology: {0}")]
    Invalid(String),
    /// The topology asks for something the workspace cannot run yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A genesis file is unusable.
    #[error(transparent)]
    Genesis(#[from] primitives::genesis::GenesisError),
    /// A node's data dir could not be read.
    #[error("reading the data dir {path}: {source}")]
    Store {
        /// The data dir.
        path: PathBuf,
        /// The error.
        #[source]
        source: chain::store::StoreError,
    },
    /// A key file is unusable.
    #[error(transparent)]
    Key(#[from] p2p::KeyFileError),
    /// A development key could not be derived.
    #[error(transparent)]
    Derive(#[from] primitives::dev::DeriveError),
    /// A file we wrote could not be encoded or a file we read could not be decoded.
    #[error("{what}: {reason}")]
    Format {
        /// The file.
        what: String,
        /// The encoder's or parser's message.
        reason: String,
    },
    /// The existing devnet directory does not match what was asked for.
    #[error("{0}")]
    Mismatch(String),
    /// A node binary is missing.
    #[error(
        "{path} not found: build the binaries (`cargo build --workspace --bins`) or pass --bin-dir"
    )]
    MissingBinary {
        /// The expected path.
        path: PathBuf,
    },
    /// A child process failed to start, initialize or become healthy.
    #[error("{name}: {reason}{}", tail_suffix(.log_tail))]
    Child {
        /// The process name, e.g. `mainchain-0`.
        name: String,
        /// What happened.
        reason: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// A JSON-RPC call to a node failed.
    #[error("{url}: {reason}")]
    Rpc {
        /// The node's URL.
        url: String,
        /// The client error.
        reason: String,
    },
    /// Another launcher already runs this devnet directory.
    #[error(
        "a devnet launcher (pid {pid}) already runs {dir}; stop it with `devnet down --dir {dir}`"
    )]
    AlreadyRunning {
        /// The running launcher.
        pid: u32,
        /// The devnet directory.
        dir: PathBuf,
    },
    /// The launcher did not stop in time.
    #[error("{0}")]
    Timeout(String),
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- last lines of its log ---\n{}", tail.trim_end())
    }
}

/// The launcher's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
