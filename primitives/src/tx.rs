//! Transactions: what a sender signs, how it is encoded, hashed and recovered.

use std::sync::Arc;

use parity_scale_codec::{Decode, DecodeAll, Encode};
use serde::{Deserialize, Serialize};

use crate::crypto::{domain, domain_hash, keccak256, CryptoError, SecretKey, Signature};
use crate::types::{Address, Amount, ChainId, Hash, Nonce};

/// How the sender pays; each chain's fee rule accepts one form.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Fee {
    /// mainchain: a total fee, at least `min_fee_rate` x encoded size, paid to the producer.
    #[codec(index = 0)]
    Flat {
        /// The whole fee in base units.
        fee: Amount,
    },
    /// sidechain: EIP-1559 style limits per unit of weight.
    #[codec(index = 1)]
    Dynamic {
        /// The most the sender pays per unit of weight (base fee + tip).
        max_fee: Amount,
        /// The most the sender tips the producer per unit of weight.
        max_tip: Amount,
    },
    /// An Ethereum legacy (EIP-155) transfer: a price per gas; see [`crate::eth`].
    #[codec(index = 2)]
    EthLegacy {
        /// Base units per gas.
        gas_price: Amount,
        /// The most gas the sender allows (a transfer uses 21000).
        gas_limit: u64,
    },
    /// An Ethereum EIP-1559 (type 2) transfer: limits per gas; see [`crate::eth`].
    #[codec(index = 3)]
    EthDynamic {
        /// The most the sender pays per gas (base fee + tip).
        max_fee_per_gas: Amount,
        /// The most the sender tips the producer per gas.
        max_priority_fee_per_gas: Amount,
        /// The most gas the sender allows (a transfer uses 21000).
        gas_limit: u64,
    },
}

impl Fee {
    /// Whether this is an Ethereum form: the transaction is signed and hashed as Ethereum's.
    pub fn is_ethereum(&self) -> bool {
        matches!(self, Fee::EthLegacy { .. } | Fee::EthDynamic { .. })
    }
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxKind {
    /// Move `amount` from the sender to `to`.
    #[codec(index = 0)]
    Transfer {
        /// The recipient.
        to: Address,
        /// Base units moved.
        amount: Amount,
    },
    /// mainchain: move `amount` into the escrow for `recipient` on the sidechain (a deposit;
    /// its id is this transaction's hash).
    #[codec(index = 1)]
    Lock {
        /// Base units locked.
        amount: Amount,
        /// Who receives on the sidechain.
        recipient: Address,
    },
    /// mainchain: pay a withdrawal out of escrow, with M member signatures.
    #[codec(index = 2)]
    Release {
        /// The Burn transaction's hash.
        id: Hash,
        /// Who is paid.
        recipient: Address,
        /// Base units paid (the burned amount minus the peg-out fee).
        amount: Amount,
        /// Member signatures over the peg message.
        signatures: Vec<Signature>,
    },
    /// sidechain: create coins for a deposit, with M member signatures.
    #[codec(index = 3)]
    Mint {
        /// The Lock transaction's hash.
        id: Hash,
        /// Who is paid.
        recipient: Address,
        /// Base units minted.
        amount: Amount,
        /// Member signatures over the peg message.
        signatures: Vec<Signature>,
    },
    /// sidechain: destroy `amount` to be released to `recipient` on the mainchain (a
    /// withdrawal; its id is this transaction's hash).
    #[codec(index = 4)]
    Burn {
        /// Base units burned.
        amount: Amount,
        /// Who receives on the mainchain.
        recipient: Address,
    },
}

impl TxKind {
    /// The operation's name, as JSON tags it.
    pub fn name(&self) -> &'static str {
        match self {
            TxKind::Transfer { .. } => "transfer",
            TxKind::Lock { .. } => "lock",
            TxKind::Release { .. } => "release",
            TxKind::Mint { .. } => "mint",
            TxKind::Burn { .. } => "burn",
        }
    }

    /// Who the operation pays and how much (for Lock and Burn: the recipient on the other chain).
    pub fn recipient_and_amount(&self) -> (Address, Amount) {
        match self {
            TxKind::Transfer { to, amount } => (*to, *amount),
            TxKind::Lock { amount, recipient }
            | TxKind::Burn { amount, recipient }
            | TxKind::Release {
                recipient, amount, ..
            }
            | TxKind::Mint {
                recipient, amount, ..
            } => (*recipient, *amount),
        }
    }

    /// Coins the operation takes from the sender (besides the fee).
    pub fn value(&self) -> Amount {
        match self {
            TxKind::Transfer { amount, .. }
            | TxKind::Lock { amount, .. }
            | TxKind::Burn { amount, .. } => *amount,
            TxKind::Release { .. } | TxKind::Mint { .. } => Amount::ZERO,
        }
    }

    /// The peg id of a payout (Mint or Release).
    pub fn payout_id(&self) -> Option<Hash> {
        match self {
            TxKind::Release { id, .. } | TxKind::Mint { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Federation payouts pay no fee: members hold no sidechain coins at first, and a
    /// payout is admitted only with a valid attestation for an unused id.
    pub fn is_fee_exempt(&self) -> bool {
        self.payout_id().is_some()
    }
}

/// The unsigned transaction: the signature covers its SCALE encoding, chain id included.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is valid on; any other chain refuses it.
    pub chain_id: ChainId,
    /// The sender's nonce; transactions apply in nonce order.
    pub nonce: Nonce,
    /// The fee the sender offers.
    pub fee: Fee,
    /// The operation.
    pub kind: TxKind,
}

impl Transaction {
    /// keccak256(TRANSACTION domain || SCALE(self)); for an Ethereum-format transfer, its
    /// EIP-155 / EIP-1559 signing hash.
    pub fn signing_hash(&self) -> Hash {
        crate::eth::signing_hash(self)
            .unwrap_or_else(|| domain_hash(domain::TRANSACTION, &self.encode()))
    }

    /// Signs with `key`.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign_prehash(&self.signing_hash());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its signature: the form that travels and is stored.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedTransaction {
    /// The signed content.
    pub tx: Transaction,
    /// The sender's recoverable signature over [`Transaction::signing_hash`].
    pub signature: Signature,
}

/// Why bytes could not become a sender-recovered transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeTxError {
    /// Larger than the chain's limit; nothing was decoded.
    #[error("transaction of {size} bytes exceeds the limit of {max}")]
    Oversized {
        /// Bytes given.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a SCALE-encoded signed transaction (or trailing bytes).
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The signature does not recover.
    #[error("bad signature: {0}")]
    BadSignature(#[from] CryptoError),
    /// An Ethereum fee form on something other than a value transfer.
    #[error("an Ethereum-format transaction can only be a value transfer")]
    EthereumNotTransfer,
    /// Not an Ethereum value transfer this chain takes.
    #[error(transparent)]
    Ethereum(#[from] crate::eth::EthTxError),
}

impl SignedTransaction {
    /// The transaction hash: keccak256 of the signed SCALE encoding; for an Ethereum-format
    /// transfer, keccak256 of its raw signed RLP (the hash every Ethereum tool computes).
    pub fn hash(&self) -> Hash {
        hash_of(self, &self.encode())
    }

    /// Decodes exactly `bytes` (no trailing data) after checking the size limit.
    pub fn decode_bytes(bytes: &[u8], max_size: usize) -> Result<Self, DecodeTxError> {
        if bytes.len() > max_size {
            return Err(DecodeTxError::Oversized {
                size: bytes.len(),
                max: max_size,
            });
        }
        SignedTransaction::decode_all(&mut &bytes[..])
            .map_err(|e| DecodeTxError::Malformed(e.to_string()))
    }

    /// Recovers the sender once; the result is carried everywhere after.
    pub fn recover(self) -> Result<RecoveredTx, DecodeTxError> {
        if self.tx.fee.is_ethereum() && !matches!(self.tx.kind, TxKind::Transfer { .. }) {
            return Err(DecodeTxError::EthereumNotTransfer);
        }
        let encoded = self.encode();
        let sender = self.signature.recover(&self.tx.signing_hash())?;
        Ok(RecoveredTx(Arc::new(RecoveredInner {
            hash: hash_of(&self, &encoded),
            size: encoded.len() as u32,
            sender,
            signed: self,
        })))
    }

    /// Decode and recover in one step, as ingress does.
    pub fn decode_and_recover(bytes: &[u8], max_size: usize) -> Result<RecoveredTx, DecodeTxError> {
        Self::decode_bytes(bytes, max_size)?.recover()
    }
}

/// The hash of `signed`, whose SCALE encoding is `encoded`.
fn hash_of(signed: &SignedTransaction, encoded: &[u8]) -> Hash {
    crate::eth::tx_hash(signed).unwrap_or_else(|| keccak256(encoded))
}

/// A transaction whose sender was recovered at ingress; cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredTx(Arc<RecoveredInner>);

#[derive(Debug, PartialEq, Eq)]
struct RecoveredInner {
    signed: SignedTransaction,
    sender: Address,
    hash: Hash,
    size: u32,
}

impl RecoveredTx {
    /// Trusts a sender recovered earlier (e.g. stored beside the block).
    pub fn from_parts(signed: SignedTransaction, sender: Address) -> Self {
        let encoded = signed.encode();
        RecoveredTx(Arc::new(RecoveredInner {
            hash: hash_of(&signed, &encoded),
            size: encoded.len() as u32,
            sender,
            signed,
        }))
    }
    /// The signed transaction.
    pub fn signed(&self) -> &SignedTransaction {
        &self.0.signed
    }
    /// The unsigned content.
    pub fn tx(&self) -> &Transaction {
        &self.0.signed.tx
    }
    /// The recovered sender.
    pub fn sender(&self) -> Address {
        self.0.sender
    }
    /// The transaction hash.
    pub fn hash(&self) -> Hash {
        self.0.hash
    }
    /// Encoded size in bytes.
    pub fn size(&self) -> u32 {
        self.0.size
    }
    /// The block space and fee weight: the encoded size, or for an Ethereum-format transfer
    /// [`crate::eth::TRANSFER_WEIGHT`] (at least its size; 21000 gas at 125 gas per unit).
    pub fn weight(&self) -> u32 {
        if self.0.signed.tx.fee.is_ethereum() {
            crate::eth::TRANSFER_WEIGHT as u32
        } else {
            self.0.size
        }
    }
    /// The nonce.
    pub fn nonce(&self) -> Nonce {
        self.0.signed.tx.nonce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
            .unwrap()
    }

    fn sample() -> Transaction {
        Transaction {
            chain_id: 7,
            nonce: 3,
            fee: Fee::Flat { fee: Amount(1000) },
            kind: TxKind::Transfer {
                to: Address([9; 20]),
                amount: Amount(u128::MAX),
            },
        }
    }

    #[test]
    fn encoding_round_trip_and_recovery() {
        let signed = sample().sign(&key());
        let bytes = signed.encode();
        let back = SignedTransaction::decode_bytes(&bytes, 4096).unwrap();
        assert_eq!(back, signed);
        let rec = back.recover().unwrap();
        assert_eq!(rec.sender(), key().address());
        assert_eq!(rec.hash(), keccak256(&bytes));
        assert_eq!(rec.size() as usize, bytes.len());
        let json = serde_json::to_value(rec.tx()).unwrap();
        assert_eq!(json["kind"]["type"], "transfer");
        assert_eq!(
            serde_json::from_value::<Transaction>(json).unwrap(),
            sample()
        );
    }

    #[test]
    fn malformed_oversized_and_trailing_bytes_refused() {
        let signed = sample().sign(&key());
        let mut bytes = signed.encode();
        assert!(matches!(
            SignedTransaction::decode_bytes(&bytes, 10),
            Err(DecodeTxError::Oversized { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            SignedTransaction::decode_bytes(&bytes, 4096),
            Err(DecodeTxError::Malformed(_))
        ));
        assert!(matches!(
            SignedTransaction::decode_bytes(&[0xff, 0x00, 0x13], 4096),
            Err(DecodeTxError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_fee_and_kind_tags_are_malformed() {
        let bytes = sample().sign(&key()).encode();
        // chain_id (8) and nonce (8), then the fee's tag; the kind's tag follows the fee.
        let fee_len = Fee::Flat { fee: Amount(1000) }.encoded_size();
        for (at, tag) in [
            (16, 4u8),
            (16, 0xff),
            (16 + fee_len, 5),
            (16 + fee_len, 0xff),
        ] {
            let mut b = bytes.clone();
            b[at] = tag;
            assert!(
                matches!(
                    SignedTransaction::decode_bytes(&b, 4096),
                    Err(DecodeTxError::Malformed(_))
                ),
                "tag {tag} at {at}"
            );
        }
    }

    #[test]
    fn tampering_changes_the_sender() {
        let mut signed = sample().sign(&key());
        signed.tx.nonce += 1;
        let rec = signed.recover();
        assert!(rec.map(|r| r.sender() != key().address()).unwrap_or(true));
    }

    #[test]
    fn signature_commits_to_chain_id() {
        let main = sample().sign(&key());
        let mut moved = main.clone();
        moved.tx.chain_id = 8;
        assert_ne!(main.tx.signing_hash(), moved.tx.signing_hash());
        let rec = moved.recover();
        assert!(rec.map(|r| r.sender() != key().address()).unwrap_or(true));
    }
}
