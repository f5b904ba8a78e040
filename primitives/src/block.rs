//! Headers, blocks and receipts.

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::crypto::{
    domain, domain_hash, keccak256, keccak256_parts, CryptoError, SecretKey, Signature,
};
use crate::tx::SignedTransaction;
use crate::types::{Address, Amount, BlockNumber, Hash, Slot, Weight};

/// A block header; its keccak256 is the block hash.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Header {
    /// Hash of the parent header (zero for genesis).
    pub parent_hash: Hash,
    /// Height; genesis is 0.
    pub number: BlockNumber,
    /// The slot this block was produced in.
    pub slot: Slot,
    /// Start of the slot, unix milliseconds.
    pub timestamp_ms: u64,
    /// The authority that produced (sealed) it.
    pub author: Address,
    /// keccak256 over the transaction hashes in order.
    pub tx_root: Hash,
    /// keccak256 over the SCALE-encoded receipts.
    pub receipts_root: Hash,
    /// Chained commitment over state diffs: keccak256(parent state_root || keccak256(SCALE(sorted diff))).
    pub state_root: Hash,
    /// Base fee per unit of weight in force for this block (0 under the fee-rate rule).
    pub base_fee: Amount,
    /// Weight the block's transactions use.
    pub weight_used: Weight,
}

impl Header {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        keccak256(&self.encode())
    }

    /// The prehash the author signs.
    pub fn seal_hash(&self) -> Hash {
        domain_hash(domain::BLOCK_SEAL, &self.hash().0)
    }
}

/// A sealed block with its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The author's signature over [`Header::seal_hash`] (zero for genesis).
    pub seal: Signature,
    /// The transactions in execution order.
    pub transactions: Vec<SignedTransaction>,
}

impl Block {
    /// Seals `header` with the author's key.
    pub fn seal(header: Header, transactions: Vec<SignedTransaction>, key: &SecretKey) -> Block {
        let seal = key.sign_prehash(&header.seal_hash());
        Block {
            header,
            seal,
            transactions,
        }
    }

    /// The signer of the seal.
    pub fn seal_signer(&self) -> Result<Address, CryptoError> {
        self.seal.recover(&self.header.seal_hash())
    }

    /// The block hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

/// The commitment over a list of transaction hashes.
pub fn tx_root(hashes: impl IntoIterator<Item = Hash>) -> Hash {
    let mut buf = Vec::new();
    for h in hashes {
        buf.extend_from_slice(&h.0);
    }
    keccak256(&buf)
}

/// The commitment over receipts.
pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    keccak256(&receipts.encode())
}

/// The next state root from the parent's and this block's encoded, sorted diff.
pub fn next_state_root(parent: &Hash, encoded_diff: &[u8]) -> Hash {
    keccak256_parts(&[&parent.0, &keccak256(encoded_diff).0])
}

/// Why an included transaction's operation failed (its fee is still charged).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum FailureReason {
    /// The balance after the fee did not cover the amount.
    #[error("insufficient balance: have {balance}, need {needed}")]
    #[codec(index = 0)]
    InsufficientBalance {
        /// Balance after the fee.
        balance: Amount,
        /// Amount needed.
        needed: Amount,
    },
    /// Crediting the recipient would overflow.
    #[error("recipient balance would overflow")]
    #[codec(index = 1)]
    Overflow,
    /// The peg refused the operation (limits, a used id, a bad attestation, ...).
    #[error("peg refused ({code}): {message}")]
    #[codec(index = 2)]
    PegRefused {
        /// Stable name, e.g. `peg_id_used`.
        code: String,
        /// Explanation with the values involved.
        message: String,
    },
}

/// A coin movement across the peg, emitted by a peg transaction.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PegEvent {
    /// Coins locked on main for a recipient on side; the id is the lock transaction hash.
    #[codec(index = 0)]
    Deposit {
        /// Transfer id.
        id: Hash,
        /// Base units locked.
        amount: Amount,
        /// Who receives on the sidechain.
        recipient: Address,
    },
    /// Coins burned on side for a recipient on main; the id is the burn transaction hash.
    #[codec(index = 1)]
    Withdrawal {
        /// Transfer id.
        id: Hash,
        /// Base units burned.
        amount: Amount,
        /// Who receives on the mainchain.
        recipient: Address,
    },
    /// A deposit paid out on the sidechain.
    #[codec(index = 2)]
    Minted {
        /// Transfer id (the Lock's hash).
        id: Hash,
        /// Base units minted.
        amount: Amount,
        /// Who was paid.
        recipient: Address,
    },
    /// A withdrawal paid out of escrow on the mainchain.
    #[codec(index = 3)]
    Released {
        /// Transfer id (the Burn's hash).
        id: Hash,
        /// Base units paid to the recipient.
        amount: Amount,
        /// Who was paid.
        recipient: Address,
        /// The peg-out fee kept.
        fee: Amount,
    },
}

/// The outcome of one included transaction.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_hash: Hash,
    /// `None` on success, the reason otherwise.
    pub failure: Option<FailureReason>,
    /// Total fee charged to the sender.
    pub fee_paid: Amount,
    /// Part of the fee paid to the producer.
    pub fee_to_producer: Amount,
    /// Part of the fee burned.
    pub fee_burned: Amount,
    /// Weight used.
    pub weight: Weight,
    /// Peg event, if the transaction was a peg operation.
    pub peg_event: Option<PegEvent>,
}

impl Receipt {
    /// Whether the operation succeeded.
    pub fn success(&self) -> bool {
        self.failure.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parity_scale_codec::DecodeAll;

    #[test]
    fn block_round_trip_and_seal() {
        let key = SecretKey::random();
        let header = Header {
            parent_hash: keccak256(b"p"),
            number: 5,
            slot: 99,
            timestamp_ms: 99_000,
            author: key.address(),
            tx_root: tx_root([]),
            receipts_root: receipts_root(&[]),
            state_root: Hash::ZERO,
            base_fee: Amount(7),
            weight_used: 0,
        };
        let block = Block::seal(header, vec![], &key);
        let bytes = block.encode();
        let back = Block::decode_all(&mut &bytes[..]).unwrap();
        assert_eq!(back, block);
        assert_eq!(back.seal_signer().unwrap(), key.address());
        let r = Receipt {
            tx_hash: Hash([1; 32]),
            failure: Some(FailureReason::Overflow),
            fee_paid: Amount(3),
            fee_to_producer: Amount(1),
            fee_burned: Amount(2),
            weight: 100,
            peg_event: None,
        };
        assert_eq!(Receipt::decode_all(&mut &r.encode()[..]).unwrap(), r);
    }
}
