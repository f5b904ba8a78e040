//! The node's JSON-RPC 2.0 server over HTTP and WebSocket (the API itself is declared once in
//! `rpc-api`), with `GET /health` and `GET /metrics` beside it.

mod eth;
mod params;
pub mod server;

pub use eth::STATE_HISTORY_BLOCKS;
