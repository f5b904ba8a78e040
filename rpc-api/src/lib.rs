//! The JSON-RPC interface of a Twinpeg node, declared once: the method traits, the JSON shapes
//! they answer with and the error codes of every refusal.
//!
//! The node implements the traits (feature `server`); the wallet, the bridge, the launcher
//! and the tests call the clients jsonrpsee generates from them (feature `client`).

#[cfg(not(any(feature = "client", feature = "server")))]
compile_error!("twinpeg-rpc-api needs the `client` or the `server` feature (or both)");

pub mod api;
pub mod error;
pub mod eth;
pub mod types;

#[cfg(feature = "client")]
pub use api::{EthApiClient, NetApiClient, TwinpegApiClient, Web3ApiClient};
#[cfg(feature = "server")]
pub use api::{EthApiServer, NetApiServer, TwinpegApiServer, Web3ApiServer};
pub use error::codes;
