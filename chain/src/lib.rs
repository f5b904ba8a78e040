//! The engine both Twinpeg chains share: types, crypto, state, store, mempool, block production and RPC.
//!
//! `mainchain` and `sidechain` are each a short list of rules ([`rules::ChainRules`]) handed
//! to this engine; every mechanism lives here.

pub mod block;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod driver;
pub mod execution;
pub mod fee;
pub mod genesis;
pub mod journal;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod node;
pub mod peg;
pub mod producer;
pub mod rpc;
pub mod rules;
pub mod state;
pub mod store;
pub mod tx;
pub mod types;

pub use types::{Address, Amount, BlockNumber, Bytes, ChainId, Hash, Nonce, Slot, Weight};
