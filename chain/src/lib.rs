//! The node engine both Twinpeg chains share: state, store, journal, mempool, execution, fee
//! rules, the driver (the single writer), the slot timer, the network event loop, the RPC
//! server, node start-up, config and CLI.
//!
//! Inside, edges point down: `node` (start-up) -> `rpc` -> `network` -> `finality` ->
//! `driver` -> `shared` (the [`shared::Chain`] every task reads) -> state, store, mempool, execution.
//!
//! `mainchain` and `sidechain` are each a short list of rules ([`rules::ChainRules`]) handed
//! to this engine; every mechanism lives here. Value types come from `primitives`, the RPC
//! interface from `rpc-api`, libp2p and process plumbing from `p2p` and `service`.

pub mod cli;
pub mod config;
pub mod driver;
pub mod execution;
pub mod fee;
pub mod finality;
pub mod journal;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod node;
pub mod producer;
pub mod rpc;
pub mod rules;
pub mod shared;
pub mod state;
pub mod store;
