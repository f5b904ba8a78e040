//! What authorities sign and send: proposals, prevotes and precommits, the commit that proves
//! a block final, and the signing domain that binds each of them to one chain.

use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use primitives::crypto::{domain, domain_hash, Signature};
use primitives::types::{Address, BlockNumber, ChainId, Hash};

/// The number of a decision: instance `k` decides the `k`-th final block after genesis.
pub type Instance = u64;
/// A voting round inside one instance.
pub type Round = u32;
/// An authority's position in the genesis authority list.
pub type AuthorityIndex = u16;

/// A block named by number and hash (the number lets a receiver ask for it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode, Serialize, Deserialize,
)]
pub struct BlockRef {
    /// Its height.
    pub number: BlockNumber,
    /// Its hash.
    pub hash: Hash,
}

/// The two votes of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum VoteKind {
    /// The first vote: for the round's proposal, or nil.
    Prevote,
    /// The second vote: for a block that got a quorum of prevotes in the round, or nil.
    Precommit,
}

/// A prevote or precommit; `block: None` is a vote for nil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Vote {
    /// The instance voted in.
    pub instance: Instance,
    /// The round voted in.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block voted for, or nil.
    pub block: Option<BlockRef>,
}

/// The round leader's proposal: the block to decide in this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Proposal {
    /// The instance.
    pub instance: Instance,
    /// The round.
    pub round: Round,
    /// The block proposed.
    pub block: BlockRef,
    /// The earlier round in which `block` got a quorum of prevotes, when it is re-proposed.
    pub valid_round: Option<Round>,
}

/// Anything an authority signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Statement {
    /// A proposal.
    Proposal(Proposal),
    /// A vote.
    Vote(Vote),
}

/// What binds a statement to one chain: its id and its genesis hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct SigningDomain {
    /// The chain id.
    pub chain_id: ChainId,
    /// The chain's genesis hash.
    pub genesis: Hash,
}

impl SigningDomain {
    /// The prehash an authority signs for `statement` on this chain.
    pub fn prehash(&self, statement: &Statement) -> Hash {
        domain_hash(domain::FINALITY, &(self, statement).encode())
    }
}

/// A signed vote.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Its author's signature over the vote's prehash.
    pub signature: Signature,
}

/// A signed proposal; a re-proposal (`valid_round` set) carries the prevotes that justify it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's signature over the proposal's prehash.
    pub signature: Signature,
    /// A quorum of prevotes for `proposal.block` in `proposal.valid_round` (empty otherwise).
    pub polka: Vec<Signature>,
}

/// The proof that a block is final: a quorum of precommits for it in one round of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Commit<S> {
    /// The instance it decided.
    pub instance: Instance,
    /// The round in which it was decided.
    pub round: Round,
    /// The final block.
    pub block: BlockRef,
    /// The precommits for `block`, one per authority, with who signed each.
    pub precommits: Vec<(AuthorityIndex, S)>,
}

impl<S> Commit<S> {
    /// The precommit each signature in it is over.
    pub fn vote(&self) -> Vote {
        Vote {
            instance: self.instance,
            round: self.round,
            kind: VoteKind::Precommit,
            block: Some(self.block),
        }
    }
}

/// A commit as it travels and is stored: the precommits' signatures (the signers are
/// recovered from them).
pub type Justification = Commit<Signature>;

/// A finality message as it travels between nodes (gossip), declared once for senders and
/// receivers.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Wire {
    /// A signed proposal.
    Proposal(SignedProposal),
    /// A signed vote.
    Vote(SignedVote),
    /// A justification.
    Commit(Justification),
}

impl Wire {
    /// The instance it is about.
    pub fn instance(&self) -> Instance {
        match self {
            Wire::Proposal(p) => p.proposal.instance,
            Wire::Vote(v) => v.vote.instance,
            Wire::Commit(c) => c.instance,
        }
    }
}

/// A [`Wire`] message with the sender's clock: what is sent again now and then must not look
/// like a duplicate to gossip, which drops messages it has seen by content. The time is not
/// signed and means nothing to the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Envelope {
    /// The message.
    pub wire: Wire,
    /// When it was sent, in unix milliseconds.
    pub sent_at_ms: u64,
}

/// Why a signed statement, polka or justification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The signature does not recover to a key.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The signer is not in the authority set.
    #[error("signed by {0}, which is not an authority")]
    NotAuthority(Address),
    /// One authority signed twice in the same set of votes.
    #[error("authority {0} appears twice")]
    Duplicate(Address),
    /// Fewer distinct authorities than the quorum.
    #[error("{got} distinct authorities signed, the quorum is {quorum}")]
    NoQuorum {
        /// Distinct valid signers.
        got: usize,
        /// What a quorum needs.
        quorum: usize,
    },
    /// A re-proposal without a quorum of prevotes in its valid round, or a polka on a fresh one.
    #[error("the proposal's polka does not match its valid round")]
    BadPolka,
    /// The proposal's signer does not lead its round.
    #[error(
        "proposal by {signer}, but authority {leader} leads round {round} of instance {instance}"
    )]
    NotLeader {
        /// Who signed.
        signer: Address,
        /// Who leads the round.
        leader: Address,
        /// The instance.
        instance: Instance,
        /// The round.
        round: Round,
    },
}

/// The authorities of a chain (from its genesis) and the domain their statements are signed in:
/// all that checking a statement or a justification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorities {
    /// The signing domain.
    pub domain: SigningDomain,
    /// The authorities, in genesis order.
    pub addresses: Vec<Address>,
}

impl Authorities {
    /// How many authorities there are.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Whether the set is empty (a chain without authorities cannot finalise).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The position of `address` in the set.
    pub fn index_of(&self, address: &Address) -> Option<AuthorityIndex> {
        self.addresses
            .iter()
            .position(|a| a == address)
            .and_then(|i| AuthorityIndex::try_from(i).ok())
    }

    /// The authority that signed `statement`.
    pub fn signer(
        &self,
        statement: &Statement,
        signature: &Signature,
    ) -> Result<AuthorityIndex, StatementError> {
        let address = signature
            .recover(&self.domain.prehash(statement))
            .map_err(|e| StatementError::BadSignature(e.to_string()))?;
        self.index_of(&address)
            .ok_or(StatementError::NotAuthority(address))
    }

    /// Checks that `signatures` are a quorum of distinct authorities' signatures of `vote`, and
    /// returns them with their signers.
    pub fn check_quorum(
        &self,
        vote: &Vote,
        signatures: &[Signature],
    ) -> Result<Vec<(AuthorityIndex, Signature)>, StatementError> {
        let statement = Statement::Vote(*vote);
        let mut seen = vec![false; self.len()];
        let mut out = Vec::with_capacity(signatures.len());
        for sig in signatures {
            let i = self.signer(&statement, sig)?;
            let slot = &mut seen[usize::from(i)];
            if *slot {
                return Err(StatementError::Duplicate(self.addresses[usize::from(i)]));
            }
            *slot = true;
            out.push((i, *sig));
        }
        let quorum = quorum(self.len());
        if out.len() < quorum {
            return Err(StatementError::NoQuorum {
                got: out.len(),
                quorum,
            });
        }
        Ok(out)
    }

    /// Checks a justification: a quorum of this set's precommits for its block. This is all a
    /// light client needs to trust that the block is final.
    pub fn verify_justification(
        &self,
        justification: &Justification,
    ) -> Result<Vec<(AuthorityIndex, Signature)>, StatementError> {
        let signatures: Vec<Signature> = justification.precommits.iter().map(|(_, s)| *s).collect();
        let checked = self.check_quorum(&justification.vote(), &signatures)?;
        Ok(checked)
    }

    /// Checks a signed proposal: its leader signed it, and a re-proposal carries a quorum of
    /// prevotes for its block in its valid round.
    pub fn verify_proposal(
        &self,
        signed: &SignedProposal,
    ) -> Result<(AuthorityIndex, Vec<(AuthorityIndex, Signature)>), StatementError> {
        let p = &signed.proposal;
        let signer = self.signer(&Statement::Proposal(*p), &signed.signature)?;
        let leader = proposer(p.instance, p.round, self.len());
        if signer != leader {
            return Err(StatementError::NotLeader {
                signer: self.addresses[usize::from(signer)],
                leader: self.addresses[usize::from(leader)],
                instance: p.instance,
                round: p.round,
            });
        }
        let polka = match p.valid_round {
            None if signed.polka.is_empty() => Vec::new(),
            Some(vr) if vr < p.round => {
                let prevote = Vote {
                    instance: p.instance,
                    round: vr,
                    kind: VoteKind::Prevote,
                    block: Some(p.block),
                };
                self.check_quorum(&prevote, &signed.polka)
                    .map_err(|_| StatementError::BadPolka)?
            }
            _ => return Err(StatementError::BadPolka),
        };
        Ok((signer, polka))
    }
}

impl Authorities {
    /// Checks every signature of a received message and returns it in the machine's form,
    /// with the authority it speaks for (for a commit: the first signer).
    pub fn verify_wire(
        &self,
        wire: Wire,
    ) -> Result<(AuthorityIndex, crate::machine::Message<Signature>), StatementError> {
        use crate::machine::Message;
        match wire {
            Wire::Proposal(signed) => {
                let (from, polka) = self.verify_proposal(&signed)?;
                Ok((
                    from,
                    Message::Proposal {
                        proposal: signed.proposal,
                        signature: signed.signature,
                        polka,
                    },
                ))
            }
            Wire::Vote(signed) => {
                let from = self.signer(&Statement::Vote(signed.vote), &signed.signature)?;
                Ok((
                    from,
                    Message::Vote {
                        vote: signed.vote,
                        signature: signed.signature,
                    },
                ))
            }
            Wire::Commit(commit) => {
                let precommits = self.verify_justification(&commit)?;
                let from = precommits.first().map(|(i, _)| *i).unwrap_or(0);
                Ok((
                    from,
                    Message::Commit(Commit {
                        precommits,
                        ..commit
                    }),
                ))
            }
        }
    }
}

impl From<crate::machine::Message<Signature>> for Wire {
    fn from(m: crate::machine::Message<Signature>) -> Self {
        use crate::machine::Message;
        match m {
            Message::Proposal {
                proposal,
                signature,
                polka,
            } => Wire::Proposal(SignedProposal {
                proposal,
                signature,
                polka: polka.into_iter().map(|(_, s)| s).collect(),
            }),
            Message::Vote { vote, signature } => Wire::Vote(SignedVote { vote, signature }),
            Message::Commit(c) => Wire::Commit(c),
        }
    }
}

/// The quorum of `n` authorities: ⌊2n/3⌋+1, so two quorums always share more than ⌊(n-1)/3⌋.
pub fn quorum(n: usize) -> usize {
    n * 2 / 3 + 1
}

/// The most faulty authorities the protocol tolerates among `n`: ⌊(n-1)/3⌋.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The authority that proposes in `round` of `instance`: rotating by both, so a silent
/// authority costs one round, not a whole instance.
pub fn proposer(instance: Instance, round: Round, n: usize) -> AuthorityIndex {
    if n == 0 {
        return 0;
    }
    let i = (instance.wrapping_add(u64::from(round))) % n as u64;
    AuthorityIndex::try_from(i).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::SecretKey;

    fn set(n: usize) -> (Vec<SecretKey>, Authorities) {
        let keys: Vec<SecretKey> = (1..=n as u8)
            .map(|i| SecretKey::from_bytes(&[i; 32]).expect("key"))
            .collect();
        let auth = Authorities {
            domain: SigningDomain {
                chain_id: 7,
                genesis: Hash([9; 32]),
            },
            addresses: keys.iter().map(|k| k.address()).collect(),
        };
        (keys, auth)
    }

    fn sign(auth: &Authorities, key: &SecretKey, s: &Statement) -> Signature {
        key.sign_prehash(&auth.domain.prehash(s))
    }

    fn block(n: u8) -> BlockRef {
        BlockRef {
            number: u64::from(n),
            hash: Hash([n; 32]),
        }
    }

    fn commit(auth: &Authorities, keys: &[SecretKey], b: BlockRef) -> Justification {
        let mut j = Commit {
            instance: 3,
            round: 1,
            block: b,
            precommits: Vec::new(),
        };
        let v = Statement::Vote(j.vote());
        j.precommits = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as AuthorityIndex, sign(auth, k, &v)))
            .collect();
        j
    }

    #[test]
    fn quorum_and_fault_bounds() {
        for (n, q, f) in [
            (1, 1, 0),
            (2, 2, 0),
            (3, 3, 0),
            (4, 3, 1),
            (5, 4, 1),
            (7, 5, 2),
        ] {
            assert_eq!(quorum(n), q, "quorum of {n}");
            assert_eq!(max_faulty(n), f, "faults of {n}");
            // Two quorums overlap in more than f authorities.
            assert!(2 * q > n + f, "{n}");
        }
    }

    #[test]
    fn a_quorum_of_precommits_verifies_and_anything_less_or_foreign_does_not() {
        let (keys, auth) = set(4);
        let j = commit(&auth, &keys[..3], block(5));
        assert_eq!(auth.verify_justification(&j).map(|v| v.len()), Ok(3));

        let two = commit(&auth, &keys[..2], block(5));
        assert_eq!(
            auth.verify_justification(&two),
            Err(StatementError::NoQuorum { got: 2, quorum: 3 })
        );

        let mut doubled = two.clone();
        doubled.precommits.push(doubled.precommits[0]);
        assert!(matches!(
            auth.verify_justification(&doubled),
            Err(StatementError::Duplicate(_))
        ));

        let (stranger, _) = set(5);
        let mut foreign = two.clone();
        let s = sign(&auth, &stranger[4], &Statement::Vote(two.vote()));
        foreign.precommits.push((3, s));
        assert!(matches!(
            auth.verify_justification(&foreign),
            Err(StatementError::NotAuthority(_))
        ));

        // The signatures are over this block: moving them to another block breaks them.
        let mut moved = j.clone();
        moved.block = block(6);
        assert!(auth.verify_justification(&moved).is_err());
    }

    #[test]
    fn statements_are_bound_to_their_chain() {
        let (keys, auth) = set(4);
        let j = commit(&auth, &keys[..3], block(5));
        let mut other = auth.clone();
        other.domain.chain_id = 8;
        assert!(other.verify_justification(&j).is_err());
        let mut other = auth.clone();
        other.domain.genesis = Hash([1; 32]);
        assert!(other.verify_justification(&j).is_err());
    }

    #[test]
    fn proposals_come_from_the_leader_and_reproposals_carry_their_polka() {
        let (keys, auth) = set(4);
        let p = Proposal {
            instance: 2,
            round: 3,
            block: block(4),
            valid_round: None,
        };
        let leader = usize::from(proposer(2, 3, 4));
        let signed = |p: Proposal, by: usize, polka: Vec<Signature>| SignedProposal {
            proposal: p,
            signature: sign(&auth, &keys[by], &Statement::Proposal(p)),
            polka,
        };
        assert!(auth.verify_proposal(&signed(p, leader, vec![])).is_ok());
        assert!(matches!(
            auth.verify_proposal(&signed(p, (leader + 1) % 4, vec![])),
            Err(StatementError::NotLeader { .. })
        ));
        let re = Proposal {
            valid_round: Some(1),
            ..p
        };
        assert_eq!(
            auth.verify_proposal(&signed(re, leader, vec![])),
            Err(StatementError::BadPolka)
        );
        let prevote = Statement::Vote(Vote {
            instance: 2,
            round: 1,
            kind: VoteKind::Prevote,
            block: Some(block(4)),
        });
        let polka: Vec<Signature> = keys[1..].iter().map(|k| sign(&auth, k, &prevote)).collect();
        let (_, checked) = auth
            .verify_proposal(&signed(re, leader, polka.clone()))
            .expect("re-proposal with its polka");
        assert_eq!(checked.len(), 3);
        // A polka from a later round than the proposal's own is no justification.
        let late = Proposal {
            valid_round: Some(3),
            ..p
        };
        assert_eq!(
            auth.verify_proposal(&signed(late, leader, polka)),
            Err(StatementError::BadPolka)
        );
    }
}
