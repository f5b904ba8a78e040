//! The JSON-RPC error codes of every refusal, as the node answers and clients match them.

/// JSON-RPC error codes beyond the standard ones; each refusal has its own.
pub mod codes {
    /// Undecodable or oversized transaction.
    pub const MALFORMED_TX: i32 = -32010;
    /// Signature does not recover.
    pub const BAD_SIGNATURE: i32 = -32011;
    /// Transaction for another chain.
    pub const WRONG_CHAIN: i32 = -32012;
    /// Nonce already used.
    pub const NONCE_TOO_LOW: i32 = -32013;
    /// Nonce too far ahead.
    pub const NONCE_TOO_HIGH: i32 = -32014;
    /// Balance below amount + fee, or the sum overflows.
    pub const INSUFFICIENT_FUNDS: i32 = -32015;
    /// Fee below the rule, or in the wrong form.
    pub const FEE_TOO_LOW: i32 = -32016;
    /// Already pooled, or an underpriced replacement.
    pub const ALREADY_KNOWN: i32 = -32017;
    /// The pool or the sender's queue is full: retry later.
    pub const BUSY: i32 = -32005;
    /// Too many transactions in one call.
    pub const TOO_MANY: i32 = -32020;
    /// A block tag or height whose state this node does not keep.
    pub const STATE_UNAVAILABLE: i32 = -32021;
    /// Storage failure inside the node.
    pub const INTERNAL: i32 = -32603;
    /// A payout whose signatures do not prove M distinct current members signed it.
    pub const BAD_ATTESTATION: i32 = -32030;
    /// A peg operation outside the limits, on the wrong chain, or on a chain without a peg.
    pub const PEG_REFUSED: i32 = -32031;
    /// A payout of an id that was paid out already (a replay).
    pub const PEG_ID_USED: i32 = -32032;
}
