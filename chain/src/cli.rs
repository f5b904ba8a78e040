//! The command line both node binaries share: `init`, `run`, `keygen`. This is the binary
//! edge, so errors are `anyhow` with context.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::NodeConfig;
use crate::node;
use crate::rules::ChainRules;
use crate::store::Store;
use primitives::crypto::SecretKey;
use primitives::genesis::Genesis;
use service::config::LogFormat;

/// A Twinpeg chain node.
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
    /// Create a data directory from a genesis TOML file.
    Init {
        /// The genesis file (chain id, authorities, fee parameters, prefunded accounts).
        #[arg(long)]
        genesis: PathBuf,
        /// Node config to take `data_dir` from.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run the node.
    Run {
        /// Node config TOML (defaults, then this file, then environment variables, then flags).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// RPC listen address (overrides the config).
        #[arg(long)]
        rpc_addr: Option<std::net::SocketAddr>,
        /// Authority key file (overrides the config).
        #[arg(long)]
        authority_key: Option<PathBuf>,
        /// Log format (overrides the config).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        /// libp2p listen multiaddr (overrides the config).
        #[arg(long)]
        p2p_listen: Option<String>,
        /// Bootstrap peer multiaddr; repeat for several (replaces the config's list).
        #[arg(long)]
        bootstrap: Vec<String>,
    },
    /// Create a new authority key file (mode 0600) and print its address.
    Keygen {
        /// Where to write the key; refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Parses arguments and runs; the whole of each node binary's `main`.
pub fn main(rules: ChainRules) -> ExitCode {
    let cli = Cli::parse();
    match run(rules, cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(rules: ChainRules, cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            genesis,
            config,
            data_dir,
        } => {
            let g = Genesis::load(&genesis, rules.default_block_time_ms)
                .with_context(|| format!("loading {}", genesis.display()))?;
            rules.fee_rule(&g)?;
            let dir = match data_dir {
                Some(d) => d,
                None => NodeConfig::load(&rules, config.as_deref())?.data_dir,
            };
            let store = Store::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
            let hash = store.init_genesis(&g)?;
            println!(
                "initialized {} chain {} in {}: genesis {hash}",
                rules.name,
                g.chain_id,
                dir.display()
            );
            Ok(())
        }
        Command::Keygen { out } => {
            let key = SecretKey::random();
            p2p::write_key_file(&out, &key)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", key.address());
            Ok(())
        }
        Command::Run {
            config,
            data_dir,
            rpc_addr,
            authority_key,
            log_format,
            p2p_listen,
            bootstrap,
        } => {
            let mut cfg = NodeConfig::load(&rules, config.as_deref())?;
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            if let Some(a) = rpc_addr {
                cfg.rpc_addr = a;
            }
            if let Some(k) = authority_key {
                cfg.authority_key_file = Some(k);
            }
            if let Some(f) = log_format {
                cfg.log_format = f;
            }
            if let Some(l) = p2p_listen {
                cfg.p2p_listen = l;
            }
            if !bootstrap.is_empty() {
                cfg.bootstrap = bootstrap;
            }
            cfg.validate()?;
            service::logging::init_tracing(cfg.log_format, &cfg.log_level);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name(rules.name)
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async move {
                let handle = node::start(rules, cfg).await?;
                service::signal::shutdown_signal().await;
                tracing::info!("shutting down");
                handle.stop().await;
                Ok(())
            })
        }
    }
}
