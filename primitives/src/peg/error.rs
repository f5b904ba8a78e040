//! Why a peg operation is refused.

use crate::types::{Amount, BlockNumber, Hash};

/// Why a peg operation is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PegError {
    /// The chain has no peg section in its genesis.
    #[error("this chain has no peg configured")]
    NotConfigured,
    /// Lock/Release on the sidechain or Mint/Burn on the mainchain.
    #[error("{0} is not a {1} operation")]
    WrongChain(&'static str, &'static str),
    /// Outside [min, max].
    #[error("amount {amount} outside the peg limits [{min}, {max}]")]
    AmountOutOfRange {
        /// Offered.
        amount: Amount,
        /// Minimum.
        min: Amount,
        /// Maximum.
        max: Amount,
    },
    /// Today's total would pass the daily limit.
    #[error("daily limit: {used} already moved today, {amount} more would pass {limit}")]
    DailyLimit {
        /// Used today.
        used: Amount,
        /// Offered.
        amount: Amount,
        /// The limit.
        limit: Amount,
    },
    /// This id was paid out already.
    #[error("peg id {id} already processed at block {block}")]
    IdUsed {
        /// The transfer id.
        id: Hash,
        /// Where.
        block: BlockNumber,
    },
    /// Another payout of this id waits in the mempool.
    #[error("a payout of peg id {0} is already pending")]
    IdPending(Hash),
    /// The signatures do not prove M distinct current members signed exactly this message.
    #[error("attestation refused: {0}")]
    Signatures(String),
    /// The escrow cannot cover the release.
    #[error("escrow holds {escrow}, release needs {needed}")]
    EscrowShort {
        /// Escrow balance.
        escrow: Amount,
        /// Needed.
        needed: Amount,
    },
    /// A zero id is never valid proof.
    #[error("zero peg id")]
    ZeroId,
}

impl PegError {
    /// A stable snake_case name.
    pub fn code(&self) -> &'static str {
        match self {
            PegError::NotConfigured => "peg_not_configured",
            PegError::WrongChain(..) => "peg_wrong_chain",
            PegError::AmountOutOfRange { .. } => "peg_amount_out_of_range",
            PegError::DailyLimit { .. } => "peg_daily_limit",
            PegError::IdUsed { .. } => "peg_id_used",
            PegError::IdPending(_) => "peg_id_pending",
            PegError::Signatures(_) => "peg_bad_attestation",
            PegError::EscrowShort { .. } => "peg_escrow_short",
            PegError::ZeroId => "peg_zero_id",
        }
    }
}
