//! The federation and its limits as genesis states them, and the peg as one chain sees it.

use std::collections::HashSet;

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use super::error::PegError;
use super::message::{domain, Direction, PegMessage};
use crate::crypto::Signature;
use crate::types::{Address, Amount, Hash};

/// Which end of the peg a chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PegRole {
    /// Holds the escrow: `Lock` and `Release`.
    Main,
    /// Mints and burns: `Mint` and `Burn`.
    Side,
}

/// The federation and the bridge parameters; identical in both genesis files except
/// `counterpart_genesis`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct PegParams {
    /// Member addresses (each member's secp256k1 key), in a fixed order.
    pub members: Vec<Address>,
    /// The threshold, confirmations, limits and fee (flat in the file; their SCALE encoding is
    /// the fields' own, in order).
    #[serde(flatten)]
    pub terms: PegTerms,
    /// The other chain's base genesis hash (its genesis with this field zeroed).
    #[serde(default)]
    pub counterpart_genesis: Hash,
}

/// The terms of the peg: what a payout needs and what a transfer may be. Part of
/// [`PegParams`], and what `devnet.json` shows of the peg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct PegTerms {
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
        if self.terms.threshold > n || self.terms.threshold * 2 <= n {
            return Err(format!(
                "threshold {} of {n} members: it must be more than half and at most all",
                self.terms.threshold
            ));
        }
        if self.terms.min_amount.0 == 0 || self.terms.min_amount > self.terms.max_amount {
            return Err(format!(
                "peg limits [{}, {}] must satisfy 0 < min <= max",
                self.terms.min_amount, self.terms.max_amount
            ));
        }
        if self.terms.peg_out_fee >= self.terms.min_amount {
            return Err(format!(
                "peg_out_fee {} must be below min_amount {}",
                self.terms.peg_out_fee, self.terms.min_amount
            ));
        }
        if self.terms.main_confirmations == 0 || self.terms.side_confirmations == 0 {
            return Err("confirmations must be at least 1".into());
        }
        Ok(())
    }

    /// Refuses a `max_tx_size` below [`largest_payout_size`] for the threshold: such a chain
    /// could never carry the federation's payouts.
    pub fn check_payout_fits(&self, max_tx_size: u32) -> Result<(), String> {
        let payout = largest_payout_size(self.terms.threshold);
        if (max_tx_size as usize) < payout {
            return Err(format!(
                "max_tx_size {max_tx_size} cannot hold a payout with the threshold's {} member signatures ({payout} bytes)",
                self.terms.threshold
            ));
        }
        Ok(())
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
    /// The peg as the `role` end sees it, from facts of its genesis: its base hash, its
    /// `max_tx_size` and the sum of its prefunded balances. Refuses a chain whose
    /// transactions cannot hold a payout, and a sidechain that starts with coins the peg
    /// did not mint.
    pub fn for_chain(
        role: PegRole,
        params: &PegParams,
        own_base_genesis: Hash,
        max_tx_size: u32,
        genesis_supply: Amount,
    ) -> Result<Self, String> {
        params.check_payout_fits(max_tx_size)?;
        let other = params.counterpart_genesis;
        let domain = match role {
            PegRole::Main => domain(&own_base_genesis, &other),
            PegRole::Side => {
                if genesis_supply.0 > 0 {
                    return Err(
                        "a pegged sidechain starts with supply 0: its coins are minted only by the peg".into(),
                    );
                }
                domain(&other, &own_base_genesis)
            }
        };
        Ok(PegConfig {
            role,
            params: params.clone(),
            domain,
        })
    }

    /// What a payout in `direction` keeps back: the peg-out fee on a Release, nothing on a
    /// Mint.
    pub fn payout_fee(&self, direction: Direction) -> Amount {
        match direction {
            Direction::MainToSide => Amount::ZERO,
            Direction::SideToMain => self.params.terms.peg_out_fee,
        }
    }

    /// Checks `amount` against [min, max].
    pub fn check_amount(&self, amount: Amount) -> Result<(), PegError> {
        let p = &self.params;
        if amount < p.terms.min_amount || amount > p.terms.max_amount || amount.0 == 0 {
            return Err(PegError::AmountOutOfRange {
                amount,
                min: p.terms.min_amount,
                max: p.terms.max_amount,
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
        if (seen.len() as u32) < self.params.terms.threshold {
            return bad(format!(
                "{} member signatures, {} needed",
                seen.len(),
                self.params.terms.threshold
            ));
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    #[test]
    fn the_terms_are_flat_in_the_file_and_an_unknown_key_is_refused() {
        let p = crate::testing::peg_params(vec![Address([1; 20])], 1);
        let text = toml::to_string(&p).unwrap();
        assert!(text.contains("\nthreshold = 1\n"), "{text}");
        assert!(!text.contains("terms"), "{text}");
        assert_eq!(toml::from_str::<PegParams>(&text).unwrap(), p);
        let typo = text.replace("threshold", "treshold");
        assert!(toml::from_str::<PegParams>(&typo).is_err());
        let extra = format!("{text}unknown_key = 1\n");
        assert!(toml::from_str::<PegParams>(&extra).is_err());
        // The SCALE encoding is the fields' own, in order, as before the terms had a name.
        let mut flat = p.members.encode();
        flat.extend(p.terms.threshold.encode());
        flat.extend(p.terms.main_confirmations.encode());
        assert!(p.encode().starts_with(&flat));
    }

    /// A sidechain peg of `keys` with limits [10, 1000] and a daily limit of 5000 each way.
    pub(in crate::peg) fn config(keys: &[SecretKey], threshold: u32) -> PegConfig {
        PegConfig {
            role: PegRole::Side,
            params: PegParams {
                members: keys.iter().map(|k| k.address()).collect(),
                terms: PegTerms {
                    threshold,
                    main_confirmations: 6,
                    side_confirmations: 2,
                    min_amount: Amount(10),
                    max_amount: Amount(1000),
                    daily_limit_deposits: Amount(5000),
                    daily_limit_withdrawals: Amount(5000),
                    peg_out_fee: Amount(1),
                    fee_recipient: Address([9; 20]),
                },
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
        p.terms.threshold = 2; // 2 of 4 is not a majority
        assert!(p.validate().is_err());
        p.terms.threshold = 5;
        assert!(p.validate().is_err());
        let mut p = config(&keys, 3).params;
        p.terms.peg_out_fee = p.terms.min_amount;
        assert!(p.validate().is_err());
        // M = 0, a member twice, a zero member, no members.
        let mut p = config(&keys, 3).params;
        p.terms.threshold = 0;
        assert!(p.validate().unwrap_err().contains("threshold 0"));
        let mut p = config(&keys, 3).params;
        p.members[1] = p.members[0];
        assert!(p.validate().unwrap_err().contains("listed twice"));
        let mut p = config(&keys, 3).params;
        p.members[2] = Address::ZERO;
        assert!(p.validate().unwrap_err().contains("zero"));
        let mut p = config(&keys, 3).params;
        p.members.clear();
        assert!(p.validate().unwrap_err().contains("needs members"));
        let cfg = config(&keys, 3);
        assert!(cfg.check_amount(Amount(9)).is_err());
        assert!(cfg.check_amount(Amount(1001)).is_err());
        assert!(cfg.check_amount(Amount(10)).is_ok());
    }

    #[test]
    fn each_end_binds_the_domain_in_main_side_order_and_the_side_starts_empty() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let mut params = config(&keys, 2).params;
        let (main_base, side_base) = (Hash([1; 32]), Hash([2; 32]));
        let fits = largest_payout_size(params.terms.threshold) as u32;
        params.counterpart_genesis = side_base;
        let main = PegConfig::for_chain(PegRole::Main, &params, main_base, fits, Amount(5));
        let main = main.expect("a prefunded mainchain is fine");
        params.counterpart_genesis = main_base;
        let side = PegConfig::for_chain(PegRole::Side, &params, side_base, fits, Amount::ZERO);
        let side = side.expect("an empty sidechain");
        assert_eq!(main.domain, side.domain);
        assert_eq!(main.domain, domain(&main_base, &side_base));
        assert_eq!((main.role, side.role), (PegRole::Main, PegRole::Side));
        let prefunded = PegConfig::for_chain(PegRole::Side, &params, side_base, fits, Amount(1));
        assert!(prefunded.unwrap_err().contains("supply 0"));
        let small = PegConfig::for_chain(PegRole::Main, &params, main_base, fits - 1, Amount(5));
        assert!(small.unwrap_err().contains("cannot hold a payout"));
    }
}
