//! The wallet's errors, each with a stable kind name (for `--json`) and an exit code.

use std::path::PathBuf;

use primitives::types::Amount;

use crate::amount::AmountError;
use crate::chains::ChainSel;
use keystore::KeystoreError;

/// Result of a wallet operation.
pub type Result<T, E = WalletError> = std::result::Result<T, E>;

/// Exit codes: documented in `docs/wallet.md`; clap itself exits 2 on a usage error.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Anything not listed below: bad input, I/O, config.
    pub const GENERAL: u8 = 1;
    /// Usage error (clap).
    pub const USAGE: u8 = 2;
    /// Key problems: unknown key, bad password, name taken, unreadable keystore file.
    pub const KEY: u8 = 3;
    /// A node could not be reached, or answered an unexpected error.
    pub const NODE: u8 = 4;
    /// The transaction was refused, by the wallet's own checks or by the node.
    pub const REJECTED: u8 = 5;
    /// The transaction was submitted but not included before the deadline.
    pub const TIMEOUT: u8 = 6;
    /// The transaction was included but failed (its fee was charged).
    pub const FAILED: u8 = 7;
}

/// Everything that can go wrong in a wallet command.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// No key file of that name in the keystore.
    #[error("unknown key {name:?}: no such key in {}", dir.display())]
    UnknownKey {
        /// The name asked for.
        name: String,
        /// The keystore searched.
        dir: PathBuf,
    },
    /// A key of that name already exists.
    #[error("a key named {name:?} already exists in {}", dir.display())]
    KeyExists {
        /// The name.
        name: String,
        /// The keystore.
        dir: PathBuf,
    },
    /// A key name with characters that do not belong in a file name.
    #[error(
        "invalid key name {0:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"
    )]
    BadKeyName(String),
    /// The keystore file could not be decrypted or parsed.
    #[error("key {name:?}: {source}")]
    Keystore {
        /// The key name (or file).
        name: String,
        /// What went wrong.
        #[source]
        source: KeystoreError,
    },
    /// No password source was available or they did not match.
    #[error("{0}")]
    Password(String),
    /// A private key given to `import` is not one.
    #[error("invalid private key: {0}")]
    BadPrivateKey(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    BadInput(String),
    /// An amount is invalid.
    #[error(transparent)]
    Amount(#[from] AmountError),
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is invalid.
    #[error("config file {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The node could not be reached.
    #[error("{chain} node at {url} is unreachable: {reason}")]
    NodeDown {
        /// Which chain.
        chain: ChainSel,
        /// The endpoint.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The node answered with an error to a read.
    #[error("{chain} node at {url} answered error {code}: {message}")]
    Rpc {
        /// Which chain.
        chain: ChainSel,
        /// The endpoint.
        url: String,
        /// The JSON-RPC error code.
        code: i32,
        /// The node's message.
        message: String,
    },
    /// The endpoint serves a different chain than the one asked for.
    #[error("{chain} endpoint {url} serves {actual:?}, not the {chain}")]
    WrongChain {
        /// The chain asked for.
        chain: ChainSel,
        /// The endpoint.
        url: String,
        /// The name the node reports.
        actual: String,
    },
    /// The node refused the transaction.
    #[error("{chain} node refused the transaction: {reason}: {message}")]
    Rejected {
        /// Which chain.
        chain: ChainSel,
        /// The JSON-RPC error code.
        code: i32,
        /// The node's stable reason, e.g. `nonce_too_low`.
        reason: String,
        /// The node's message.
        message: String,
    },
    /// The wallet refused to send: the balance does not cover amount + maximum fee.
    #[error("insufficient balance on the {chain}: {address} has {} but amount + maximum fee is {}", .balance.to_coins_string(), .needed.to_coins_string())]
    InsufficientBalance {
        /// Which chain.
        chain: ChainSel,
        /// The sender.
        address: primitives::types::Address,
        /// What it has.
        balance: Amount,
        /// What the transaction may cost.
        needed: Amount,
    },
    /// A fee override that does not fit this chain's rule, or fee arithmetic overflow.
    #[error("{0}")]
    Fee(String),
    /// The transaction was not included before the deadline.
    #[error("transaction {hash} was not included on the {chain} within {secs} s (it may still be; check with `wallet tx {hash}`)")]
    Timeout {
        /// Which chain.
        chain: ChainSel,
        /// The hash.
        hash: primitives::types::Hash,
        /// The deadline.
        secs: u64,
    },
    /// The peg would refuse this transfer; nothing was sent.
    #[error("the peg refuses this transfer ({reason}): {message}")]
    PegRefused {
        /// Stable reason, e.g. `peg_amount_out_of_range`.
        reason: String,
        /// Explanation with the values involved.
        message: String,
    },
    /// The transfer did not arrive on the other chain in time (it may still: see `wallet status ID`).
    #[error("transfer {id} not paid out within {secs} s (last state: {state}); follow it with `wallet status {id} --wait`")]
    PegTimeout {
        /// The transfer id.
        id: primitives::types::Hash,
        /// The deadline.
        secs: u64,
        /// Where it stood.
        state: String,
    },
    /// The transaction was included but failed.
    #[error("transaction {hash} was included in {chain} block {block} but failed: {reason}")]
    TxFailed {
        /// Which chain.
        chain: ChainSel,
        /// The hash.
        hash: primitives::types::Hash,
        /// The block height.
        block: u64,
        /// The failure reason.
        reason: String,
    },
    /// The transaction hash is not known to the nodes asked.
    #[error("transaction {hash} is not known to the {chains} node")]
    TxNotFound {
        /// The hash.
        hash: primitives::types::Hash,
        /// The chains asked, e.g. `mainchain or sidechain`.
        chains: String,
    },
    /// This wallet sent the transaction, but the node of its chain knows it no more.
    #[error("transaction {hash} was sent by this wallet, but the {chain} node at {url} does not know it (it is in no block and not in its pool): resend it with `wallet resend {hash}`")]
    TxUnknown {
        /// The hash.
        hash: primitives::types::Hash,
        /// The chain it was sent to.
        chain: ChainSel,
        /// The endpoint asked.
        url: String,
    },
    /// `resend` of a transaction this wallet has no record of.
    #[error("transaction {hash} is not in this wallet's record of sent transactions ({}): only what this wallet sent can be resent", path.display())]
    NotInRecord {
        /// The hash.
        hash: primitives::types::Hash,
        /// The record file.
        path: PathBuf,
    },
    /// The record of sent transactions could not be read or written.
    #[error("the record of sent transactions {}: {reason}", path.display())]
    Record {
        /// The record file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl WalletError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        use WalletError::*;
        match self {
            UnknownKey { .. }
            | KeyExists { .. }
            | BadKeyName(_)
            | Keystore { .. }
            | Password(_) => exit::KEY,
            NodeDown { .. } | Rpc { .. } | WrongChain { .. } => exit::NODE,
            Rejected { .. } | InsufficientBalance { .. } | PegRefused { .. } => exit::REJECTED,
            Timeout { .. } | PegTimeout { .. } => exit::TIMEOUT,
            TxFailed { .. } => exit::FAILED,
            BadPrivateKey(_)
            | BadInput(_)
            | Amount(_)
            | Io { .. }
            | Config { .. }
            | Fee(_)
            | TxNotFound { .. }
            | TxUnknown { .. }
            | NotInRecord { .. }
            | Record { .. } => exit::GENERAL,
        }
    }

    /// A stable machine-readable name for `--json` error output.
    pub fn kind(&self) -> &'static str {
        use WalletError::*;
        match self {
            UnknownKey { .. } => "unknown_key",
            KeyExists { .. } => "key_exists",
            BadKeyName(_) => "bad_key_name",
            Keystore {
                source: KeystoreError::BadPassword,
                ..
            } => "bad_password",
            Keystore { .. } => "bad_keystore",
            Password(_) => "password",
            BadPrivateKey(_) => "bad_private_key",
            BadInput(_) => "bad_input",
            Amount(_) => "bad_amount",
            Io { .. } => "io",
            Config { .. } => "config",
            NodeDown { .. } => "node_down",
            Rpc { .. } => "rpc",
            WrongChain { .. } => "wrong_chain",
            Rejected { .. } => "rejected",
            InsufficientBalance { .. } => "insufficient_balance",
            Fee(_) => "fee",
            Timeout { .. } => "timeout",
            PegRefused { .. } => "peg_refused",
            PegTimeout { .. } => "peg_timeout",
            TxFailed { .. } => "tx_failed",
            TxNotFound { .. } | NotInRecord { .. } => "tx_not_found",
            TxUnknown { .. } => "tx_unknown",
            Record { .. } => "record",
        }
    }

    /// The node's stable refusal reason, when the node refused a transaction.
    pub fn node_reason(&self) -> Option<&str> {
        match self {
            WalletError::Rejected { reason, .. } => Some(reason),
            WalletError::TxFailed { reason, .. } => Some(reason),
            WalletError::PegRefused { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// An I/O error with what was being done and the file.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalletError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
