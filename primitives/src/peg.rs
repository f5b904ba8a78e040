//! The federated two-way peg's on-chain rules: the peg message members sign, its domain,
//! the federation and its limits, and the checks every Mint and Release passes.
//!
//! A peg message can only move coins: nothing here can change members, threshold or limits.

use std::collections::HashSet;

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::account::Totals;
use crate::crypto::{domain as prefix, keccak256, keccak256_parts, Signature};
use crate::types::{Address, Amount, BlockNumber, Hash};

/// Which way coins cross.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Deposit: locked on main, minted on side.
    #[codec(index = 0)]
    MainToSide,
    /// Withdrawal: burned on side, released on main.
    #[codec(index = 1)]
    SideToMain,
}

/// Which end of the peg a chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PegRole {
    /// Holds the escrow: `Lock` and `Release`.
    Main,
    /// Mints and burns: `Mint` and `Burn`.
    Side,
}

/// What members sign: `keccak256(SCALE(self))` is the attestation prehash.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct PegMessage {
    /// Binds both chains' genesis: see [`domain`].
    pub domain: Hash,
    /// Deposit or withdrawal.
    pub direction: Direction,
    /// The source transaction's hash (the Lock or Burn).
    pub id: Hash,
    /// Who is paid on the destination chain.
    pub recipient: Address,
    /// Base units paid to the recipient.
    pub amount: Amount,
}

impl PegMessage {
    /// The prehash members sign.
    pub fn signing_hash(&self) -> Hash {
        keccak256(&self.encode())
    }
}

/// The peg domain: keccak256([`prefix::PEG`] || main base genesis hash || side base genesis
/// hash). A signature for one bridge or chain pair is worthless for any other.
pub fn domain(main_base_genesis: &Hash, side_base_genesis: &Hash) -> Hash {
    keccak256_parts(&[prefix::PEG, &main_base_genesis.0, &side_base_genesis.0])
}

/// The mainchain escrow: an address no key controls (no known preimage of its key hash).
pub fn escrow_address() -> Address {
    let h = keccak256(prefix::ESCROW);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

/// The federation and the bridge parameters; identical in both genesis files except
/// `counterpart_genesis`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct PegParams {
    /// Member addresses (each member's secp256k1 key), in a fixed order.
    pub members: Vec<Address>,
    /// Signatures needed; must be more than half of the members.
    pub threshold: u32,
    /// Depth a Lock must reach on main before members sign it.
    pub main_confirmations: u64,
    /// Depth a Burn must reach on side before members sign it.
    pub side_confirmations: u64,
    /// Smallest amount per transfer (base units).
    pub min_amount: Amount,
    /// Largest amount per transfer.
    pub max_amount: Amount,
    /// Most that may be locked per UTC day (by block time).
    pub daily_limit_deposits: Amount,
    /// Most that may be burned for withdrawal per UTC day.
    pub daily_limit_withdrawals: Amount,
    /// Kept from each withdrawal: Release pays `burned - peg_out_fee`.
    pub peg_out_fee: Amount,
    /// Receives the peg-out fees on main.
    pub fee_recipient: Address,
    /// The other chain's base genesis hash (its genesis with this field zeroed).
    #[serde(default)]
    pub counterpart_genesis: Hash,
}

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

/// The peg as one chain sees it: its role, parameters and domain.
#[derive(Debug, Clone)]
pub struct PegConfig {
    /// This chain's end of the peg.
    pub role: PegRole,
    /// Parameters from genesis.
    pub params: PegParams,
    /// The domain every attestation binds.
    pub domain: Hash,
}

impl PegConfig {
    /// Checks `amount` against [min, max].
    pub fn check_amount(&self, amount: Amount) -> Result<(), PegError> {
        let p = &self.params;
        if amount < p.min_amount || amount > p.max_amount || amount.0 == 0 {
            return Err(PegError::AmountOutOfRange {
                amount,
                min: p.min_amount,
                max: p.max_amount,
            });
        }
        Ok(())
    }

    /// Checks that M distinct current members signed `message`, and nothing else signed.
    /// Verified on every payout path itself, never trusted from a cache.
    pub fn verify_attestation(
        &self,
        message: &PegMessage,
        signatures: &[Signature],
    ) -> Result<(), PegError> {
        let bad = |m: String| Err(PegError::Signatures(m));
        if message.id.is_zero() {
            return Err(PegError::ZeroId);
        }
        let members = &self.params.members;
        if signatures.len() > members.len() {
            return bad(format!(
                "{} signatures for {} members",
                signatures.len(),
                members.len()
            ));
        }
        let prehash = message.signing_hash();
        let mut seen = HashSet::new();
        for s in signatures {
            let signer = s
                .recover(&prehash)
                .map_err(|e| PegError::Signatures(e.to_string()))?;
            if !members.contains(&signer) {
                return bad(format!(
                    "{signer} is not a federation member (or signed another message)"
                ));
            }
            if !seen.insert(signer) {
                return bad(format!("member {signer} signed twice"));
            }
        }
        if (seen.len() as u32) < self.params.threshold {
            return bad(format!(
                "{} member signatures, {} needed",
                seen.len(),
                self.params.threshold
            ));
        }
        Ok(())
    }
}

impl PegParams {
    /// Checks the federation rules: M > N/2, distinct non-zero members, sane limits.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.members.len() as u32;
        if n == 0 {
            return Err("the federation needs members".into());
        }
        let mut seen = HashSet::new();
        for m in &self.members {
            if *m == Address::ZERO || !seen.insert(*m) {
                return Err(format!("member {m} is zero or listed twice"));
            }
        }
        if self.threshold > n || self.threshold * 2 <= n {
            return Err(format!(
                "threshold {} of {n} members: it must be more than half and at most all",
                self.threshold
            ));
        }
        if self.min_amount.0 == 0 || self.min_amount > self.max_amount {
            return Err(format!(
                "peg limits [{}, {}] must satisfy 0 < min <= max",
                self.min_amount, self.max_amount
            ));
        }
        if self.peg_out_fee >= self.min_amount {
            return Err(format!(
                "peg_out_fee {} must be below min_amount {}",
                self.peg_out_fee, self.min_amount
            ));
        }
        if self.main_confirmations == 0 || self.side_confirmations == 0 {
            return Err("confirmations must be at least 1".into());
        }
        Ok(())
    }
}

/// The encoded size of the largest payout transaction with `signatures` member signatures
/// (a Mint or a Release with every field at its widest): a chain whose `max_tx_size` is below
/// it could never carry the federation's payouts.
pub fn largest_payout_size(signatures: u32) -> usize {
    use crate::crypto::SecretKey;
    use crate::tx::{Fee, Transaction, TxKind};
    let key = SecretKey::from_bytes(&[1u8; 32]).unwrap_or_else(|_| SecretKey::random());
    let sig = key.sign_prehash(&Hash([2; 32]));
    let sigs = vec![sig; signatures as usize];
    let max = crate::types::Amount(u128::MAX);
    let widest = |kind: TxKind, fee: Fee| {
        Transaction {
            chain_id: u64::MAX,
            nonce: u64::MAX,
            fee,
            kind,
        }
        .sign(&key)
        .encoded_size()
    };
    let mint = widest(
        TxKind::Mint {
            id: Hash([3; 32]),
            recipient: Address([4; 20]),
            amount: max,
            signatures: sigs.clone(),
        },
        Fee::Dynamic {
            max_fee: max,
            max_tip: max,
        },
    );
    let release = widest(
        TxKind::Release {
            id: Hash([3; 32]),
            recipient: Address([4; 20]),
            amount: max,
            signatures: sigs,
        },
        Fee::Dynamic {
            max_fee: max,
            max_tip: max,
        },
    );
    mint.max(release)
}

/// The UTC day of a block timestamp.
pub fn day_of(timestamp_ms: u64) -> u64 {
    timestamp_ms / 86_400_000
}

/// Starts a new UTC day's limit counters when the block is on a later day.
pub fn roll_day(totals: &mut Totals, timestamp_ms: u64) {
    let day = day_of(timestamp_ms);
    if totals.day != day {
        totals.day = day;
        totals.day_deposits = Amount::ZERO;
        totals.day_withdrawals = Amount::ZERO;
    }
}

/// The limits a Lock (deposit) or Burn (withdrawal) must respect, given today's usage.
pub fn check_source(
    peg: &PegConfig,
    totals: &Totals,
    direction: Direction,
    amount: Amount,
) -> Result<(), PegError> {
    peg.check_amount(amount)?;
    let (used, limit) = match direction {
        Direction::MainToSide => (totals.day_deposits, peg.params.daily_limit_deposits),
        Direction::SideToMain => (totals.day_withdrawals, peg.params.daily_limit_withdrawals),
    };
    if used.checked_add(amount).is_none_or(|t| t > limit) {
        return Err(PegError::DailyLimit {
            used,
            amount,
            limit,
        });
    }
    Ok(())
}

/// Everything a Mint or Release must prove: limits, an unused id, and M distinct current
/// members' signatures over exactly this payout.
pub fn check_payout(
    peg: &PegConfig,
    direction: Direction,
    id: Hash,
    recipient: Address,
    amount: Amount,
    signatures: &[Signature],
    processed: Option<BlockNumber>,
) -> Result<(), PegError> {
    if id.is_zero() {
        return Err(PegError::ZeroId);
    }
    let gross = match direction {
        Direction::MainToSide => amount,
        Direction::SideToMain => amount
            .checked_add(peg.params.peg_out_fee)
            .unwrap_or(Amount(u128::MAX)),
    };
    peg.check_amount(gross)?;
    if let Some(block) = processed {
        return Err(PegError::IdUsed { id, block });
    }
    let message = PegMessage {
        domain: peg.domain,
        direction,
        id,
        recipient,
        amount,
    };
    peg.verify_attestation(&message, signatures)
}

/// The day counters as of a block at `timestamp_ms`.
pub fn totals_on(totals: Totals, timestamp_ms: u64) -> Totals {
    let mut t = totals;
    roll_day(&mut t, timestamp_ms);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn config(keys: &[SecretKey], threshold: u32) -> PegConfig {
        PegConfig {
            role: PegRole::Side,
            params: PegParams {
                members: keys.iter().map(|k| k.address()).collect(),
                threshold,
                main_confirmations: 6,
                side_confirmations: 2,
                min_amount: Amount(10),
                max_amount: Amount(1000),
                daily_limit_deposits: Amount(5000),
                daily_limit_withdrawals: Amount(5000),
                peg_out_fee: Amount(1),
                fee_recipient: Address([9; 20]),
                counterpart_genesis: Hash::ZERO,
            },
            domain: domain(&Hash([1; 32]), &Hash([2; 32])),
        }
    }

    fn message(cfg: &PegConfig) -> PegMessage {
        PegMessage {
            domain: cfg.domain,
            direction: Direction::MainToSide,
            id: Hash([7; 32]),
            recipient: Address([5; 20]),
            amount: Amount(100),
        }
    }

    #[test]
    fn threshold_of_distinct_members_over_the_exact_message() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let cfg = config(&keys, 2);
        let msg = message(&cfg);
        let sign = |k: &SecretKey, m: &PegMessage| k.sign_prehash(&m.signing_hash());
        let two = [sign(&keys[0], &msg), sign(&keys[1], &msg)];
        assert_eq!(cfg.verify_attestation(&msg, &two), Ok(()));
        // M-1 members.
        assert!(matches!(
            cfg.verify_attestation(&msg, &two[..1]),
            Err(PegError::Signatures(_))
        ));
        // A duplicated member signature.
        let dup = [two[0], two[0]];
        assert!(matches!(
            cfg.verify_attestation(&msg, &dup),
            Err(PegError::Signatures(_))
        ));
        // A non-member.
        let stranger = SecretKey::random();
        let with_stranger = [two[0], sign(&stranger, &msg)];
        assert!(matches!(
            cfg.verify_attestation(&msg, &with_stranger),
            Err(PegError::Signatures(_))
        ));
        // Signatures over a different amount, recipient, direction or domain are worthless here.
        let mut variants = Vec::new();
        let mut m = msg.clone();
        m.amount = Amount(101);
        variants.push(m);
        let mut m = msg.clone();
        m.recipient = Address([6; 20]);
        variants.push(m);
        let mut m = msg.clone();
        m.direction = Direction::SideToMain;
        variants.push(m);
        let mut m = msg.clone();
        m.domain = domain(&Hash([2; 32]), &Hash([1; 32]));
        variants.push(m);
        for other in variants {
            let sigs = [sign(&keys[0], &other), sign(&keys[1], &other)];
            assert!(cfg.verify_attestation(&msg, &sigs).is_err(), "{other:?}");
        }
        // A zero id is never valid.
        let mut zero = msg.clone();
        zero.id = Hash::ZERO;
        assert_eq!(cfg.verify_attestation(&zero, &two), Err(PegError::ZeroId));
    }

    #[test]
    fn federation_rules() {
        let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
        let mut p = config(&keys, 3).params;
        assert!(p.validate().is_ok());
        p.threshold = 2; // 2 of 4 is not a majority
        assert!(p.validate().is_err());
        p.threshold = 5;
        assert!(p.validate().is_err());
        let mut p = config(&keys, 3).params;
        p.peg_out_fee = p.min_amount;
        assert!(p.validate().is_err());
        let cfg = config(&keys, 3);
        assert!(cfg.check_amount(Amount(9)).is_err());
        assert!(cfg.check_amount(Amount(1001)).is_err());
        assert!(cfg.check_amount(Amount(10)).is_ok());
        assert_ne!(escrow_address(), Address::ZERO);
    }
}
