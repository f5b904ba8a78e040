//! Attestations: the gossip envelope, its verification against the federation, aggregation
//! of M matching signatures, and the designated submitter of each transfer.

use std::collections::HashSet;

use parity_scale_codec::{Decode, DecodeAll, Encode};
use primitives::crypto::{SecretKey, Signature};
use primitives::peg::{Direction, PegMessage, PegParams};
use primitives::types::{Address, Hash};

/// Most attestations in one gossip message (a bundle stays well under the gossip size
/// limit: about 170 bytes each).
pub const MAX_ATTESTATIONS_PER_GOSSIP: usize = 256;

/// One member's signature over one transfer's message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Attestation {
    /// The message signed, in full (receivers recompute its hash).
    pub message: PegMessage,
    /// The member's signature over `message.signing_hash()`.
    pub signature: Signature,
}

impl Attestation {
    /// What identifies this attestation by content, however it is bundled and whenever it is
    /// sent: keccak256(SCALE(member, message, signature)). A replay re-bundled with a new
    /// `sent_ms` has the same key; the gossip drops it before recovering anything.
    pub fn content_key(&self, member: &Address) -> Hash {
        primitives::crypto::keccak256(&(member, &self.message, &self.signature).encode())
    }
}

/// What members gossip on `/twinpeg-bridge/<domain>/attestations`: a bundle of one member's
/// attestations, so a burst of transfers costs a few gossip messages, not one each.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct AttestationGossip {
    /// The member who claims to have signed every attestation in it.
    pub member: Address,
    /// At least one, at most [`MAX_ATTESTATIONS_PER_GOSSIP`].
    pub attestations: Vec<Attestation>,
    /// When it was sent (unix ms): makes re-gossip of the same signatures a new gossip
    /// message, so a member that was down receives them.
    pub sent_ms: u64,
}

impl AttestationGossip {
    /// Decodes exactly `bytes`.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, AttestationError> {
        Self::decode_all(&mut &bytes[..]).map_err(|e| AttestationError::Malformed(e.to_string()))
    }

    /// Bundles `attestations` into as few gossip messages as the size limit allows.
    pub fn bundles(member: Address, attestations: Vec<Attestation>, sent_ms: u64) -> Vec<Self> {
        attestations
            .chunks(MAX_ATTESTATIONS_PER_GOSSIP)
            .map(|c| Self {
                member,
                attestations: c.to_vec(),
                sent_ms,
            })
            .collect()
    }
}

/// Why an attestation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// Undecodable gossip.
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// No attestation, or more than [`MAX_ATTESTATIONS_PER_GOSSIP`].
    #[error("{0} attestations in one gossip message (1 to {MAX_ATTESTATIONS_PER_GOSSIP})")]
    BadCount(usize),
    /// For another bridge or chain pair.
    #[error("attestation for domain {got}, ours is {ours}")]
    WrongDomain {
        /// Its domain.
        got: Hash,
        /// Ours.
        ours: Hash,
    },
    /// A zero id is never valid.
    #[error("attestation for the zero id")]
    ZeroId,
    /// The claimed signer is not a member.
    #[error("{0} is not a federation member")]
    NotMember(Address),
    /// The signature does not recover to the claimed member.
    #[error("signature does not recover to {claimed} over message {message}")]
    BadSignature {
        /// The claimed member.
        claimed: Address,
        /// The message hash.
        message: Hash,
    },
}

/// The federation as this member knows it from genesis (read from its nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    /// The peg domain every attestation binds.
    pub domain: Hash,
    /// Members in genesis order.
    pub members: Vec<Address>,
    /// Signatures needed.
    pub threshold: u32,
    /// Kept from each withdrawal.
    pub peg_out_fee: primitives::types::Amount,
    /// Depth on main before a deposit is signed.
    pub main_confirmations: u64,
    /// Depth on side before a withdrawal is signed.
    pub side_confirmations: u64,
}

impl Federation {
    /// From the peg parameters and domain a node reports.
    pub fn new(domain: Hash, p: &PegParams) -> Self {
        Self {
            domain,
            members: p.members.clone(),
            threshold: p.terms.threshold,
            peg_out_fee: p.terms.peg_out_fee,
            main_confirmations: p.terms.main_confirmations,
            side_confirmations: p.terms.side_confirmations,
        }
    }

    /// The depth a source event of `direction` must reach before it is signed.
    pub fn confirmations(&self, direction: Direction) -> u64 {
        match direction {
            Direction::MainToSide => self.main_confirmations,
            Direction::SideToMain => self.side_confirmations,
        }
    }

    /// The depth a payout of `direction` must reach on its destination chain before the
    /// transfer counts as paid: the destination chain's own confirmations (side for
    /// deposits, main for withdrawals).
    pub fn payout_confirmations(&self, direction: Direction) -> u64 {
        match direction {
            Direction::MainToSide => self.side_confirmations,
            Direction::SideToMain => self.main_confirmations,
        }
    }

    /// The member that submits the payout of `id` first: `members[be_u64(id[0..8]) % N]`.
    pub fn designated_submitter(&self, id: &Hash) -> Option<Address> {
        let n = self.members.len() as u64;
        if n == 0 {
            return None;
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&id.0[..8]);
        let i = u64::from_be_bytes(first) % n;
        self.members.get(i as usize).copied()
    }

    /// Checks a gossiped bundle: a member, and for every attestation our domain, a non-zero
    /// id and a signature that recovers to that member over the message it carries. One bad
    /// attestation refuses the whole bundle (an honest member never sends one). Returns the
    /// message hashes, in order.
    pub fn verify(&self, g: &AttestationGossip) -> Result<Vec<Hash>, AttestationError> {
        let n = g.attestations.len();
        if n == 0 || n > MAX_ATTESTATIONS_PER_GOSSIP {
            return Err(AttestationError::BadCount(n));
        }
        if !self.members.contains(&g.member) {
            return Err(AttestationError::NotMember(g.member));
        }
        g.attestations
            .iter()
            .map(|a| self.verify_one(g.member, a))
            .collect()
    }

    fn verify_one(&self, member: Address, a: &Attestation) -> Result<Hash, AttestationError> {
        if a.message.domain != self.domain {
            return Err(AttestationError::WrongDomain {
                got: a.message.domain,
                ours: self.domain,
            });
        }
        if a.message.id.is_zero() {
            return Err(AttestationError::ZeroId);
        }
        let message = a.message.signing_hash();
        match a.signature.recover(&message) {
            Ok(signer) if signer == member => Ok(message),
            _ => Err(AttestationError::BadSignature {
                claimed: member,
                message,
            }),
        }
    }

    /// M signatures of distinct members over exactly `message`, in member order, from those
    /// held; `None` while fewer are held. Every signature is re-verified here: a held one
    /// over another message, from a non-member or a duplicate never counts.
    pub fn aggregate(
        &self,
        message: &PegMessage,
        held: &[(Address, Signature)],
    ) -> Option<Vec<Signature>> {
        let prehash = message.signing_hash();
        let mut seen = HashSet::new();
        let mut valid: Vec<(usize, Signature)> = Vec::new();
        for (member, sig) in held {
            let Some(pos) = self.members.iter().position(|m| m == member) else {
                continue;
            };
            if sig.recover(&prehash).ok() != Some(*member) || !seen.insert(*member) {
                continue;
            }
            valid.push((pos, *sig));
        }
        if (valid.len() as u32) < self.threshold {
            return None;
        }
        valid.sort_by_key(|(pos, _)| *pos);
        Some(
            valid
                .into_iter()
                .take(self.threshold as usize)
                .map(|(_, s)| s)
                .collect(),
        )
    }

    /// Signs `message` with this member's key (the caller stores it durably first).
    pub fn sign(key: &SecretKey, message_hash: &Hash) -> Signature {
        key.sign_prehash(message_hash)
    }
}

#[cfg(test)]
impl Federation {
    /// The federation of `keys` with `threshold`, on a fixed test domain.
    pub(crate) fn for_tests(keys: &[SecretKey], threshold: u32) -> Self {
        Federation {
            domain: Hash([9; 32]),
            members: keys.iter().map(SecretKey::address).collect(),
            threshold,
            peg_out_fee: primitives::types::Amount(1),
            main_confirmations: 3,
            side_confirmations: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::types::Amount;

    fn fed(keys: &[SecretKey], threshold: u32) -> Federation {
        Federation::for_tests(keys, threshold)
    }

    fn msg(f: &Federation, amount: u128) -> PegMessage {
        PegMessage {
            domain: f.domain,
            direction: Direction::MainToSide,
            id: Hash([5; 32]),
            recipient: Address([4; 20]),
            amount: Amount(amount),
        }
    }

    fn gossip(k: &SecretKey, m: &PegMessage) -> AttestationGossip {
        AttestationGossip {
            member: k.address(),
            attestations: vec![Attestation {
                message: m.clone(),
                signature: k.sign_prehash(&m.signing_hash()),
            }],
            sent_ms: 1,
        }
    }

    #[test]
    fn verify_refuses_strangers_forgeries_and_other_domains() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let f = fed(&keys, 2);
        let m = msg(&f, 100);
        let g = gossip(&keys[0], &m);
        assert_eq!(f.verify(&g), Ok(vec![m.signing_hash()]));
        let round = AttestationGossip::decode_bytes(&g.encode()).expect("decodes");
        assert_eq!(round, g);
        assert!(AttestationGossip::decode_bytes(&[1, 2, 3]).is_err());

        let stranger = SecretKey::random();
        assert_eq!(
            f.verify(&gossip(&stranger, &m)),
            Err(AttestationError::NotMember(stranger.address()))
        );
        // A member's name on someone else's signature.
        let mut forged = gossip(&stranger, &m);
        forged.member = keys[1].address();
        assert!(matches!(
            f.verify(&forged),
            Err(AttestationError::BadSignature { .. })
        ));
        // A signature over another amount carried with this message.
        let mut swapped = gossip(&keys[0], &m);
        swapped.attestations[0].signature = keys[0].sign_prehash(&msg(&f, 101).signing_hash());
        assert!(matches!(
            f.verify(&swapped),
            Err(AttestationError::BadSignature { .. })
        ));
        let mut other = m.clone();
        other.domain = Hash([8; 32]);
        assert!(matches!(
            f.verify(&gossip(&keys[0], &other)),
            Err(AttestationError::WrongDomain { .. })
        ));
        let mut zero = m.clone();
        zero.id = Hash::ZERO;
        assert_eq!(
            f.verify(&gossip(&keys[0], &zero)),
            Err(AttestationError::ZeroId)
        );
        // One forged attestation refuses the whole bundle; empty and oversized bundles too.
        let mut mixed = gossip(&keys[0], &m);
        mixed.attestations.push(swapped.attestations[0].clone());
        assert!(matches!(
            f.verify(&mixed),
            Err(AttestationError::BadSignature { .. })
        ));
        let mut empty = gossip(&keys[0], &m);
        empty.attestations.clear();
        assert_eq!(f.verify(&empty), Err(AttestationError::BadCount(0)));
        let one = gossip(&keys[0], &m).attestations[0].clone();
        let big = vec![one; MAX_ATTESTATIONS_PER_GOSSIP + 1];
        let bundles = AttestationGossip::bundles(keys[0].address(), big.clone(), 1);
        assert_eq!(bundles.len(), 2);
        assert!(bundles.iter().all(|b| f.verify(b).is_ok()));
        let over = AttestationGossip {
            member: keys[0].address(),
            attestations: big,
            sent_ms: 1,
        };
        assert_eq!(
            f.verify(&over),
            Err(AttestationError::BadCount(MAX_ATTESTATIONS_PER_GOSSIP + 1))
        );
        assert!(
            bundles[0].encode().len() < crate::network::MAX_MESSAGE_BYTES,
            "a full bundle fits one gossip message"
        );
    }

    #[test]
    fn content_keys_ignore_the_bundle_and_its_time_but_not_the_signature_or_member() {
        let keys: Vec<SecretKey> = (0..2).map(|_| SecretKey::random()).collect();
        let f = fed(&keys, 2);
        let g = gossip(&keys[0], &msg(&f, 100));
        let key = |g: &AttestationGossip| g.attestations[0].content_key(&g.member);
        // A replay with a new sent_ms, or inside a bigger bundle, is the same attestation.
        let mut replay = g.clone();
        replay.sent_ms = 99;
        assert_eq!(key(&replay), key(&g));
        let mut bigger = gossip(&keys[0], &msg(&f, 7));
        bigger.attestations.push(g.attestations[0].clone());
        assert_eq!(bigger.attestations[1].content_key(&bigger.member), key(&g));
        // Another member's name, signature or message is another attestation.
        let mut renamed = g.clone();
        renamed.member = keys[1].address();
        assert_ne!(key(&renamed), key(&g));
        assert_ne!(key(&gossip(&keys[1], &msg(&f, 100))), key(&g));
        assert_ne!(key(&gossip(&keys[0], &msg(&f, 101))), key(&g));
    }

    #[test]
    fn aggregation_needs_threshold_distinct_members_over_our_message() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let f = fed(&keys, 2);
        let m = msg(&f, 100);
        let sig = |k: &SecretKey, m: &PegMessage| (k.address(), k.sign_prehash(&m.signing_hash()));
        // One member: not enough.
        assert!(f.aggregate(&m, &[sig(&keys[0], &m)]).is_none());
        // One member twice: still one.
        assert!(f
            .aggregate(&m, &[sig(&keys[0], &m), sig(&keys[0], &m)])
            .is_none());
        // A non-member does not count.
        let stranger = SecretKey::random();
        assert!(f
            .aggregate(&m, &[sig(&keys[0], &m), sig(&stranger, &m)])
            .is_none());
        // A member's signature over a different amount does not count.
        let other = msg(&f, 999);
        assert!(f
            .aggregate(&m, &[sig(&keys[0], &m), sig(&keys[1], &other)])
            .is_none());
        // A signature filed under the wrong member does not count.
        let (_, s2) = sig(&keys[2], &m);
        assert!(f
            .aggregate(&m, &[sig(&keys[0], &m), (keys[1].address(), s2)])
            .is_none());
        // Two distinct members: exactly M signatures, in member order, that the chain accepts.
        let got = f
            .aggregate(
                &m,
                &[sig(&keys[2], &m), sig(&keys[0], &m), sig(&keys[1], &m)],
            )
            .expect("threshold met");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].recover(&m.signing_hash()), Ok(keys[0].address()));
        assert_eq!(got[1].recover(&m.signing_hash()), Ok(keys[1].address()));
        let cfg = primitives::peg::PegConfig {
            role: primitives::peg::PegRole::Side,
            params: primitives::peg::PegParams {
                members: f.members.clone(),
                terms: primitives::peg::PegTerms {
                    threshold: 2,
                    main_confirmations: 3,
                    side_confirmations: 2,
                    min_amount: Amount(1),
                    max_amount: Amount(1000),
                    daily_limit_deposits: Amount(10_000),
                    daily_limit_withdrawals: Amount(10_000),
                    peg_out_fee: Amount(0),
                    fee_recipient: Address([7; 20]),
                },
                counterpart_genesis: Hash::ZERO,
            },
            domain: f.domain,
        };
        assert_eq!(cfg.verify_attestation(&m, &got), Ok(()));
    }

    #[test]
    fn designated_submitter_is_deterministic_and_spread() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let f = fed(&keys, 2);
        let mut id = [0u8; 32];
        id[7] = 4; // 4 % 3 == 1
        assert_eq!(f.designated_submitter(&Hash(id)), Some(keys[1].address()));
        id[7] = 3;
        assert_eq!(f.designated_submitter(&Hash(id)), Some(keys[0].address()));
        id[0] = 0xff; // the first eight bytes, big-endian
        let expect = (u64::from_be_bytes([0xff, 0, 0, 0, 0, 0, 0, 3]) % 3) as usize;
        assert_eq!(
            f.designated_submitter(&Hash(id)),
            Some(keys[expect].address())
        );
        let empty = Federation {
            members: vec![],
            ..f
        };
        assert_eq!(empty.designated_submitter(&Hash(id)), None);
    }
}
