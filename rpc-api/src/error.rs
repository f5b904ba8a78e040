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

#[cfg(test)]
mod tests {
    use super::codes::*;

    /// Clients script against these numbers and every other crate names them through the
    /// constants, so this table is the one place a renumbering shows up as a failure.
    #[test]
    fn codes_keep_their_published_values() {
        let published = [
            (MALFORMED_TX, -32010),
            (BAD_SIGNATURE, -32011),
            (WRONG_CHAIN, -32012),
            (NONCE_TOO_LOW, -32013),
            (NONCE_TOO_HIGH, -32014),
            (INSUFFICIENT_FUNDS, -32015),
            (FEE_TOO_LOW, -32016),
            (ALREADY_KNOWN, -32017),
            (BUSY, -32005),
            (TOO_MANY, -32020),
            (STATE_UNAVAILABLE, -32021),
            (INTERNAL, -32603),
            (BAD_ATTESTATION, -32030),
            (PEG_REFUSED, -32031),
            (PEG_ID_USED, -32032),
        ];
        for (code, value) in published {
            assert_eq!(code, value);
        }
    }
}
