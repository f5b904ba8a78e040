//! The command line: `bridge run | keys new | status | audit | config validate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The Twinpeg federation member.
#[derive(Debug, Parser)]
#[command(
    name = "bridge",
    version,
    about = "The Twinpeg federation member: watch, sign, gossip, submit, audit"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the member (one process per member key).
    Run {
        /// The member config (see deploy/member.toml); `BRIDGE_*` variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Member keys.
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Shows a running member's status (backlog, pending transfers, lag, peers).
    Status {
        /// The member's status server, e.g. http://127.0.0.1:9500.
        #[arg(long)]
        status_url: Option<String>,
        /// Read `status_addr` from this member config instead.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Checks the peg's invariants 1, 2 and 3 on both chains; exits non-zero if one fails.
    Audit {
        /// A mainchain node's RPC URL.
        #[arg(long)]
        main_rpc: String,
        /// A sidechain node's RPC URL.
        #[arg(long)]
        side_rpc: String,
        /// First block to scan on both chains.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last block to scan on both chains (default: each head).
        #[arg(long)]
        to: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Configuration helpers.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `bridge keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a new member key file (mode 0600) and prints its address.
    New {
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `bridge config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Loads and checks a member config (and that its key loads), without starting.
    Validate {
        /// The member config.
        #[arg(long, short)]
        config: PathBuf,
    },
}
