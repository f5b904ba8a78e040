//! JSON-RPC 2.0 over HTTP and WebSocket: the API declared once, its server, and `/health` + `/metrics`.

pub mod api;
pub mod http;
pub mod server;
pub mod types;

pub use api::{EthApiClient, NetApiClient, TwinpegApiClient};
