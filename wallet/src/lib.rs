//! The Twinpeg wallet CLI: keys, transfers on either chain, deposits and withdrawals with live status.
//!
//! `main.rs` only parses the command line and calls [`run`]; every command lives in
//! [`commands`], one module each, and returns a [`Report`] that is printed as text or JSON.
//! Signing, pricing, submitting and waiting are in [`send`], shared by every command that
//! sends a transaction: transfers, deposits (Lock) and withdrawals (Burn).

pub mod amount;
pub mod chains;
pub mod cli;
pub mod commands;
pub mod error;
pub mod node;
pub mod password;
pub mod record;
pub mod send;
pub mod settings;

use std::path::PathBuf;
use std::time::Duration;

use primitives::crypto::SecretKey;
use primitives::types::Address;
use serde::Serialize;

pub use error::{Result, WalletError};

use crate::chains::ChainSel;
use crate::cli::{Cli, Command};
use crate::node::Node;
use crate::password::PasswordSource;
use crate::record::SentRecord;
use crate::settings::{Overrides, Settings};
use keystore::{DirError, Keystore};

/// What a command produced: its `--json` value and its human-readable text.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The `--json` output.
    pub json: serde_json::Value,
    /// The default output.
    pub human: String,
}

impl Report {
    /// A report from a serializable shape and its text.
    pub fn new<T: Serialize>(shape: &T, human: String) -> Result<Self> {
        let json = serde_json::to_value(shape)
            .map_err(|e| WalletError::BadInput(format!("encoding the output: {e}")))?;
        Ok(Report { json, human })
    }

    /// The text to print on stdout.
    pub fn render(&self, json: bool) -> String {
        if json {
            serde_json::to_string_pretty(&self.json).unwrap_or_else(|_| "null".into())
        } else {
            self.human.clone()
        }
    }
}

/// The `--json` shape of an error: `{"error": {"kind", "message", "exit_code", "reason"?}}`.
#[derive(Debug, Serialize)]
pub struct ErrorOut {
    /// The error.
    pub error: ErrorBody,
}

/// The body of [`ErrorOut`].
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// A stable name, e.g. `bad_password`, `node_down`, `rejected`.
    pub kind: &'static str,
    /// The one-line reason printed on stderr.
    pub message: String,
    /// The process exit code.
    pub exit_code: u8,
    /// The node's stable reason, for a refused or failed transaction (e.g. `nonce_too_low`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorOut {
    /// The JSON form of `e`.
    pub fn new(e: &WalletError) -> Self {
        ErrorOut {
            error: ErrorBody {
                kind: e.kind(),
                message: one_line(&e.to_string()),
                exit_code: e.exit_code(),
                reason: e.node_reason().map(str::to_string),
            },
        }
    }
}

/// Collapses whitespace so a message is one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What every command can use: settings, keystore, password sources.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Endpoints, keystore dir, files read.
    pub settings: Settings,
    /// The keystore.
    pub keystore: Keystore,
    /// Where passwords come from.
    pub password: PasswordSource,
    /// The per-request timeout.
    pub rpc_timeout: Duration,
    /// Whether `--json` was given (progress lines still go to stderr).
    pub json: bool,
    /// What this wallet sent, kept to resend.
    pub record: SentRecord,
}

impl Ctx {
    /// Connects to `chain`'s node.
    pub async fn node(&self, chain: ChainSel) -> Result<Node> {
        Node::open(chain, &self.settings.endpoint(chain).url, self.rpc_timeout).await
    }

    /// Maps a keystore directory error for key `name`.
    pub fn dir_error(&self, name: &str, e: DirError) -> WalletError {
        match e {
            DirError::NotFound(_) => WalletError::UnknownKey {
                name: name.to_string(),
                dir: self.keystore.dir.clone(),
            },
            DirError::Exists(_) => WalletError::KeyExists {
                name: name.to_string(),
                dir: self.keystore.dir.clone(),
            },
            DirError::Io { what, path, source } => WalletError::Io { what, path, source },
            DirError::Bad { source, .. } => WalletError::Keystore {
                name: name.to_string(),
                source,
            },
        }
    }

    /// Decrypts key `name` (asks for its password).
    pub fn unlock(&self, name: &str) -> Result<SecretKey> {
        let file = self
            .keystore
            .load(name)
            .map_err(|e| self.dir_error(name, e))?;
        let password = self.password.read(name, false)?;
        file.decrypt(&password)
            .map_err(|source| WalletError::Keystore {
                name: name.to_string(),
                source,
            })
    }

    /// A 0x address as is, or the address of key `who` (decrypting only if the file omits it).
    pub fn resolve_address(&self, who: &str) -> Result<(Address, Option<String>)> {
        if who.starts_with("0x") || who.starts_with("0X") {
            let a = who
                .parse::<Address>()
                .map_err(|e| WalletError::BadInput(e.to_string()))?;
            return Ok((a, None));
        }
        let file = self
            .keystore
            .load(who)
            .map_err(|e| self.dir_error(who, e))?;
        let address = match file.claimed_address() {
            Some(a) => a,
            None => self.unlock(who)?.address(),
        };
        Ok((address, Some(who.to_string())))
    }
}

/// The environment the library reads besides the flags (clap reads the flags' own variables).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `WALLET_PASSWORD`.
    pub password: Option<String>,
    /// `WALLET_HOME`.
    pub home: Option<PathBuf>,
    /// `WALLET_DEVNET_FILE`.
    pub devnet_file: Option<PathBuf>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let var = |k| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            password: std::env::var("WALLET_PASSWORD").ok(),
            home: var("WALLET_HOME").map(PathBuf::from),
            devnet_file: var("WALLET_DEVNET_FILE").map(PathBuf::from),
        }
    }
}

/// Runs one command.
pub async fn run(cli: Cli, env: Env) -> Result<Report> {
    let g = &cli.global;
    let settings = Settings::resolve(&Overrides {
        main_rpc: g.main_rpc.clone(),
        side_rpc: g.side_rpc.clone(),
        keystore: g.keystore.clone(),
        config: g.config.clone(),
        home: env.home,
        devnet_file: env.devnet_file,
    })?;
    let ctx = Ctx {
        keystore: Keystore::new(settings.keystore.clone()),
        record: SentRecord::new(settings.sent_record.clone()),
        settings,
        password: PasswordSource {
            file: g.password_file.clone(),
            env: env.password,
        },
        rpc_timeout: Duration::from_secs(g.rpc_timeout.max(1)),
        json: g.json,
    };
    use commands::*;
    match cli.command {
        Command::New { name, kdf } => keys::new(&ctx, &name, kdf.scrypt_log_n),
        Command::Import {
            name,
            private_key_file,
            kdf,
        } => keys::import(&ctx, &name, private_key_file.as_deref(), kdf.scrypt_log_n),
        Command::ImportDev { name, index, kdf } => {
            keys::import_dev(&ctx, &name, index, kdf.scrypt_log_n)
        }
        Command::List => keys::list(&ctx),
        Command::Address { name } => keys::address(&ctx, &name),
        Command::Balance { who, chain } => balance::run(&ctx, &who, chain).await,
        Command::Tx { hash, chain } => tx::run(&ctx, &hash, chain).await,
        Command::History { who, chain, blocks } => history::run(&ctx, &who, chain, blocks).await,
        Command::Transfer(args) => transfer::run(&ctx, &args).await,
        Command::Deposit(args) => peg::deposit(&ctx, &args).await,
        Command::Withdraw(args) => peg::withdraw(&ctx, &args).await,
        Command::Status { id, wait, timeout } => peg::status(&ctx, &id, wait, timeout).await,
        Command::Resend { hash } => resend::run(&ctx, &hash).await,
        Command::Config => config::run(&ctx),
    }
}
