//! The bridge library's errors: one enum, messages that carry the values involved.

use primitives::types::Hash;

/// Why a bridge operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The member's own database failed: fatal, the member stops rather than guess.
    #[error("bridge store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A node answered with an error or could not be reached: retried.
    #[error("{chain} node RPC: {reason}")]
    Rpc {
        /// `main` or `side`.
        chain: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The member key could not be loaded.
    #[error("member key: {0}")]
    Key(String),
    /// The two nodes do not describe the same peg, or this key is not a member.
    #[error("peg mismatch: {0}")]
    Peg(String),
    /// A second, different message for an id we already signed: refused.
    #[error(
        "refusing to sign peg id {id}: already signed message {signed}, now asked for {asked}"
    )]
    Equivocation {
        /// The transfer id.
        id: Hash,
        /// The message hash signed before.
        signed: Hash,
        /// The message hash asked for now.
        asked: Hash,
    },
    /// The p2p network could not start.
    #[error("p2p network: {0}")]
    Network(String),
    /// A local I/O failure (files, sockets).
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// A reorg deeper than the scanned history the member keeps.
    #[error("{direction}: reorg below the oldest retained scanned block {oldest}; operator action needed")]
    ReorgTooDeep {
        /// Which watcher.
        direction: &'static str,
        /// The oldest height still retained.
        oldest: u64,
    },
}

impl BridgeError {
    /// Whether the error is worth retrying (a node hiccup) rather than stopping for.
    pub fn is_transient(&self) -> bool {
        matches!(self, BridgeError::Rpc { .. })
    }
}

/// Result alias for the bridge library.
pub type Result<T> = std::result::Result<T, BridgeError>;
