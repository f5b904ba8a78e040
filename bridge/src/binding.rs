//! Which libp2p peer speaks for which member. Each member keeps an ed25519 libp2p identity
//! (`p2p.key`) and binds it to its member key with a signed statement, [`PeerBinding`],
//! under the signing domain [`primitives::crypto::domain::BRIDGE_PEER`]. Members send theirs to
//! every peer they connect to over a small request-response protocol
//! (`/twinpeg-bridge/<domain>/member/1`); a receiver checks it against the current
//! federation and the peer id noise authenticated for the connection. Only a peer whose
//! statement checked out may publish on the attestation topic.

use libp2p::PeerId;
use p2p::codec::FrameCodec;
use parity_scale_codec::{Decode, Encode};
use primitives::crypto::{domain_hash, SecretKey, Signature};
use primitives::types::{Address, Hash};

use crate::attest::Federation;

/// Largest statement accepted on the wire (one is about 160 bytes).
pub const MAX_BINDING_BYTES: usize = 1024;

/// The binding protocol of a bridge domain.
pub fn protocol(domain: &Hash) -> String {
    format!("/twinpeg-bridge/{domain}/member/1")
}

/// A member's signed statement: "libp2p peer `peer_id` speaks for member `member` in the
/// bridge of `domain`".
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct PeerBinding {
    /// The bridge domain (both chains' genesis hashes) the statement is for.
    pub domain: Hash,
    /// The member.
    pub member: Address,
    /// The libp2p peer id, as its multihash bytes.
    pub peer_id: Vec<u8>,
    /// The member key's signature over [`PeerBinding::signing_hash`].
    pub signature: Signature,
}

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// It names another peer than the one on the connection (a copy of another member's).
    #[error("statement names peer {named}, the connection is with {connected}")]
    WrongPeer {
        /// The peer id it names (hex if it is not a valid peer id).
        named: String,
        /// The authenticated remote of the connection.
        connected: PeerId,
    },
    /// For another bridge or chain pair.
    #[error("statement for domain {got}, ours is {ours}")]
    WrongDomain {
        /// Its domain.
        got: Hash,
        /// Ours.
        ours: Hash,
    },
    /// The claimed member is not in the current federation.
    #[error("{0} is not a federation member")]
    NotMember(Address),
    /// The signature does not recover to the claimed member.
    #[error("statement signature does not recover to {0}")]
    BadSignature(Address),
}

/// The prehash a member signs to bind `peer_id` (multihash bytes) in bridge `domain`:
/// keccak256(BRIDGE_PEER || SCALE(domain, member, peer_id)). The domain prefix keeps it apart
/// from peg messages, transactions and block seals.
fn signing_hash(domain: &Hash, member: &Address, peer_id: &[u8]) -> Hash {
    domain_hash(
        primitives::crypto::domain::BRIDGE_PEER,
        &(domain, member, peer_id).encode(),
    )
}

impl PeerBinding {
    /// The statement that `peer` speaks for the holder of `key` in bridge `domain`.
    pub fn sign(key: &SecretKey, domain: Hash, peer: &PeerId) -> Self {
        let member = key.address();
        let peer_id = peer.to_bytes();
        let signature = key.sign_prehash(&signing_hash(&domain, &member, &peer_id));
        Self {
            domain,
            member,
            peer_id,
            signature,
        }
    }

    /// What the member signed.
    pub fn signing_hash(&self) -> Hash {
        signing_hash(&self.domain, &self.member, &self.peer_id)
    }

    /// Checks the statement came over a connection with `connected`, is for our domain, names
    /// a current member and carries that member's signature; returns the member. The cheap
    /// checks go first: a refused statement costs a recovery only when it is well-aimed.
    pub fn verify(
        &self,
        federation: &Federation,
        connected: &PeerId,
    ) -> Result<Address, BindingError> {
        if self.peer_id != connected.to_bytes() {
            return Err(BindingError::WrongPeer {
                named: PeerId::from_bytes(&self.peer_id)
                    .map(|p| p.to_string())
                    .unwrap_or_else(|_| hex::encode(&self.peer_id)),
                connected: *connected,
            });
        }
        if self.domain != federation.domain {
            return Err(BindingError::WrongDomain {
                got: self.domain,
                ours: federation.domain,
            });
        }
        if !federation.members.contains(&self.member) {
            return Err(BindingError::NotMember(self.member));
        }
        match self.signature.recover(&self.signing_hash()) {
            Ok(signer) if signer == self.member => Ok(self.member),
            _ => Err(BindingError::BadSignature(self.member)),
        }
    }
}

/// The answer to a statement: received (whether it checked out is the receiver's business;
/// it shows in whether the receiver takes the sender's gossip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct BindingAck;

/// The codec of the binding protocol: one length-prefixed SCALE frame each way.
pub type BindingCodec = FrameCodec<PeerBinding, BindingAck>;

/// The binding protocol's codec with its size limits.
pub fn binding_codec() -> BindingCodec {
    FrameCodec::new(MAX_BINDING_BYTES, MAX_BINDING_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(keys: &[SecretKey]) -> Federation {
        Federation::for_tests(keys, 2)
    }

    #[test]
    fn a_members_statement_binds_its_peer_and_nothing_else() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let f = fed(&keys);
        let peer = PeerId::random();
        let b = PeerBinding::sign(&keys[1], f.domain, &peer);
        assert_eq!(b.verify(&f, &peer), Ok(keys[1].address()));
        // It survives the wire.
        let round = PeerBinding::decode(&mut &b.encode()[..]).expect("decodes");
        assert_eq!(round.verify(&f, &peer), Ok(keys[1].address()));

        // A stranger's statement, however well-formed.
        let stranger = SecretKey::random();
        assert_eq!(
            PeerBinding::sign(&stranger, f.domain, &peer).verify(&f, &peer),
            Err(BindingError::NotMember(stranger.address()))
        );
        // A member's real statement replayed by another peer (noise authenticated that one).
        let thief = PeerId::random();
        assert!(matches!(
            b.verify(&f, &thief),
            Err(BindingError::WrongPeer { connected, .. }) if connected == thief
        ));
        // Garbage where the peer id goes is refused the same way.
        let mut junk = b.clone();
        junk.peer_id = vec![1, 2, 3];
        assert!(matches!(
            junk.verify(&f, &peer),
            Err(BindingError::WrongPeer { named, .. }) if named == "010203"
        ));
        // Signed for another bridge: refused, and relabelling it breaks the signature.
        let other = PeerBinding::sign(&keys[1], Hash([8; 32]), &peer);
        assert_eq!(
            other.verify(&f, &peer),
            Err(BindingError::WrongDomain {
                got: Hash([8; 32]),
                ours: f.domain
            })
        );
        let mut relabelled = other;
        relabelled.domain = f.domain;
        assert_eq!(
            relabelled.verify(&f, &peer),
            Err(BindingError::BadSignature(keys[1].address()))
        );
        // A member's name on a stranger's signature; another member's name on a real one.
        let mut forged = PeerBinding::sign(&stranger, f.domain, &peer);
        forged.member = keys[0].address();
        assert_eq!(
            forged.verify(&f, &peer),
            Err(BindingError::BadSignature(keys[0].address()))
        );
        let mut renamed = b.clone();
        renamed.member = keys[2].address();
        assert_eq!(
            renamed.verify(&f, &peer),
            Err(BindingError::BadSignature(keys[2].address()))
        );
        // A key removed from the federation no longer binds anything.
        let smaller = Federation {
            members: vec![keys[0].address(), keys[2].address()],
            ..f.clone()
        };
        assert_eq!(
            b.verify(&smaller, &peer),
            Err(BindingError::NotMember(keys[1].address()))
        );
    }

    #[test]
    fn the_statement_hash_is_domain_separated() {
        let key = SecretKey::random();
        let peer = PeerId::random();
        let b = PeerBinding::sign(&key, Hash([9; 32]), &peer);
        let plain =
            primitives::crypto::keccak256(&(b.domain, b.member, b.peer_id.clone()).encode());
        assert_ne!(
            b.signing_hash(),
            plain,
            "the BRIDGE_PEER prefix is in the hash"
        );
        assert_eq!(
            b.signing_hash(),
            primitives::crypto::keccak256_parts(&[
                primitives::crypto::domain::BRIDGE_PEER,
                &(b.domain, b.member, b.peer_id.clone()).encode()
            ])
        );
    }
}
