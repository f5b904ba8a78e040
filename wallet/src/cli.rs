//! The command line: global options and one subcommand each (see `docs/wallet.md`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::chains::ChainSel;
use keystore::DEFAULT_SCRYPT_LOG_N;

/// The Twinpeg wallet: keys, balances and transfers on the mainchain and the sidechain.
#[derive(Debug, Parser)]
#[command(name = "wallet", version, about, long_about = None)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Print the result as JSON on stdout (shapes in docs/wallet.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// The keystore directory [default: <wallet home>/keystore].
    #[arg(long, global = true, env = "WALLET_KEYSTORE", value_name = "DIR")]
    pub keystore: Option<PathBuf>,
    /// The wallet config file (TOML) [default: <wallet home>/config.toml if present].
    #[arg(long, global = true, env = "WALLET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The mainchain's JSON-RPC endpoint [default: config, devnet/devnet.json, http://127.0.0.1:8545].
    #[arg(long, global = true, env = "WALLET_MAIN_RPC", value_name = "URL")]
    pub main_rpc: Option<String>,
    /// The sidechain's JSON-RPC endpoint [default: config, devnet/devnet.json, http://127.0.0.1:9545].
    #[arg(long, global = true, env = "WALLET_SIDE_RPC", value_name = "URL")]
    pub side_rpc: Option<String>,
    /// Read the key's password from the first line of this file (else WALLET_PASSWORD, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for any one node request.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS")]
    pub rpc_timeout: u64,
}

/// How strongly a new key file is encrypted.
#[derive(Debug, Clone, Args)]
pub struct KdfArgs {
    /// scrypt cost as log2(n): 18 is the standard (n = 262144); lower is faster and weaker (min 10).
    #[arg(long, env = "WALLET_SCRYPT_LOG_N", default_value_t = DEFAULT_SCRYPT_LOG_N, value_name = "LOG_N")]
    pub scrypt_log_n: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new random key and store it encrypted under NAME.
    New {
        /// The key's name in the keystore.
        name: String,
        /// Encryption strength.
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Store an existing private key under NAME: read from --private-key-file, else stdin.
    Import {
        /// The key's name in the keystore.
        name: String,
        /// File holding the private key as hex (`-` for stdin). Never pass a key as an argument.
        #[arg(long, value_name = "FILE")]
        private_key_file: Option<PathBuf>,
        /// Encryption strength.
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Store the devnet's prefunded development key INDEX (public keys: never for real funds).
    ImportDev {
        /// The key's name in the keystore.
        name: String,
        /// Index of the development account (0-9 are prefunded on the devnet).
        index: u32,
        /// Encryption strength.
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// List the keys in the keystore.
    List,
    /// Print the address of key NAME.
    Address {
        /// The key's name.
        name: String,
    },
    /// Balance and nonce of a key or address, on both chains unless --chain.
    Balance {
        /// A key name or a 0x address.
        who: String,
        /// Only this chain.
        #[arg(long, value_enum)]
        chain: Option<ChainSel>,
    },
    /// Look up a transaction by hash, on both chains unless --chain.
    Tx {
        /// The transaction hash.
        hash: String,
        /// Only this chain.
        #[arg(long, value_enum)]
        chain: Option<ChainSel>,
    },
    /// Recent transfers from or to a key or address, found by scanning the last blocks.
    History {
        /// A key name or a 0x address.
        who: String,
        /// Only this chain.
        #[arg(long, value_enum)]
        chain: Option<ChainSel>,
        /// How many of the latest blocks to scan on each chain.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        blocks: u64,
    },
    /// Send coins on one chain, then wait for inclusion (unless --async).
    Transfer(TransferArgs),
    /// Move coins from the mainchain to the sidechain (Lock), then follow them until minted.
    Deposit(PegArgs),
    /// Move coins from the sidechain back to the mainchain (Burn), then follow them until released.
    Withdraw(PegArgs),
    /// Where a deposit or withdrawal stands: included, confirmations, paid.
    Status {
        /// The transfer id (the Lock or Burn transaction hash).
        id: String,
        /// Follow it until paid.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        timeout: u64,
    },
    /// Send a transaction this wallet sent before again, byte for byte (same hash): for one
    /// no node knows any more. Already known or already included is success.
    Resend {
        /// The transaction hash (for a deposit or withdrawal: its id).
        hash: String,
    },
    /// Show the resolved endpoints, keystore and files read.
    Config,
}

/// `wallet deposit` / `wallet withdraw`.
#[derive(Debug, Clone, Args)]
pub struct PegArgs {
    /// The sending key's name.
    #[arg(long, value_name = "NAME")]
    pub from: String,
    /// Who receives on the other chain: a 0x address or a key name [default: the sender's address].
    #[arg(long, value_name = "ADDRESS")]
    pub to: Option<String>,
    /// Decimal coins (`1.5`), or base units with --raw.
    #[arg(allow_hyphen_values = true)]
    pub amount: String,
    /// AMOUNT is in base units (1 coin = 10^18).
    #[arg(long)]
    pub raw: bool,
    /// Fee overrides for the source transaction, in base units.
    #[command(flatten)]
    pub fee: FeeArgs,
    /// Return the transfer id once the node accepts the transaction.
    #[arg(long = "async")]
    pub no_wait: bool,
    /// Seconds to wait for the coins to arrive.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

/// `wallet transfer`.
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    /// The chain to transfer on.
    #[arg(long, value_enum)]
    pub chain: ChainSel,
    /// The sending key's name.
    #[arg(long, value_name = "NAME")]
    pub from: String,
    /// The recipient: a 0x address (or a key name).
    #[arg(long, value_name = "ADDRESS")]
    pub to: String,
    /// Decimal coins (`1.5`), or base units with --raw.
    #[arg(allow_hyphen_values = true)]
    pub amount: String,
    /// AMOUNT is in base units (1 coin = 10^18).
    #[arg(long)]
    pub raw: bool,
    /// Fee overrides, in base units.
    #[command(flatten)]
    pub fee: FeeArgs,
    /// Use this nonce instead of the node's pending nonce.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Print the hash as soon as the node accepts the transaction; do not wait for inclusion.
    #[arg(long = "async")]
    pub no_wait: bool,
    /// Seconds to wait for inclusion.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
}

/// Fee overrides for a transaction (base units).
#[derive(Debug, Clone, Default, Args)]
pub struct FeeArgs {
    /// mainchain: the total fee [default: min_fee_rate x size].
    #[arg(long, value_name = "BASE_UNITS")]
    pub fee: Option<String>,
    /// sidechain: max fee per unit of weight [default: the node's suggestion].
    #[arg(long, value_name = "BASE_UNITS")]
    pub max_fee: Option<String>,
    /// sidechain: max tip per unit of weight [default: the node's suggestion].
    #[arg(long, value_name = "BASE_UNITS")]
    pub max_tip: Option<String>,
}
