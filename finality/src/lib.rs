//! Twinpeg's finality protocol, free of I/O: what authorities sign (`statement`), how a
//! justification proves a block final with the authority keys alone, and the voting state
//! machine (`machine`) a node drives with messages, timeouts and its block tree. The rules and
//! the argument for their safety are in `docs/consensus.md`.

pub mod machine;
pub mod statement;

pub use machine::{
    Action, BlockTree, Durable, Equivocation, Machine, MachineConfig, Message, Polka, Said, Signer,
    Step, Timeout, Validity,
};
pub use statement::{
    max_faulty, proposer, quorum, Authorities, AuthorityIndex, BlockRef, Commit, Envelope,
    Instance, Justification, Proposal, Round, SignedProposal, SignedVote, SigningDomain, Statement,
    StatementError, Vote, VoteKind, Wire,
};
