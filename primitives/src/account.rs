//! Account values and the chain-wide totals, as the state holds them and RPC shows them.

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::types::{Amount, Nonce};

/// One account: its balance and the nonce its next transaction must carry.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
pub struct Account {
    /// Base units held.
    pub balance: Amount,
    /// Transactions sent so far.
    pub nonce: Nonce,
}

/// Chain-wide running totals that are not account balances.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
pub struct Totals {
    /// Fees destroyed so far (the base-fee part under the base-fee rule).
    pub burned_fees: Amount,
    /// mainchain: coins ever locked into the escrow.
    pub locked: Amount,
    /// mainchain: coins ever paid out of escrow to recipients.
    pub released: Amount,
    /// mainchain: peg-out fees ever paid out of escrow.
    pub peg_fees: Amount,
    /// sidechain: coins ever minted by the peg.
    pub minted: Amount,
    /// sidechain: coins ever burned for withdrawal.
    pub burned_peg: Amount,
    /// The UTC day the two counters below refer to.
    pub day: u64,
    /// Deposits (Locks) counted against today's limit.
    pub day_deposits: Amount,
    /// Withdrawals (Burns) counted against today's limit.
    pub day_withdrawals: Amount,
}
