//! The Twinpeg federation member: watches both chains, signs and gossips peg attestations,
//! submits payouts, and audits the peg.
//!
//! One process per member and one member key. A supervisor ([`run`]) starts one worker per
//! direction (watcher, signer, aggregator and submitter for deposits or for withdrawals),
//! the libp2p network task (attestation gossip), head subscriptions of both chains, and the
//! status server. Everything that decides a payout goes into the member's own redb
//! ([`store`]) before the member acts on it.

pub mod attest;
pub mod audit;
pub mod binding;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod error;
pub mod intake;
pub mod keys;
pub mod metrics;
pub mod network;
pub mod nodes;
pub mod run;
pub mod status;
pub mod store;
pub mod verifier;
pub mod watcher;
pub mod worker;

pub use error::{BridgeError, Result};
