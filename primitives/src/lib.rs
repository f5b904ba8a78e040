//! Twinpeg's value types, shared by every other crate: what a chain holds and what is signed.
//!
//! Pure data and pure rules: no async runtime, no networking, no storage. A type here has one
//! encoding (SCALE on the wire and on disk, one JSON form for RPC and files).

pub mod account;
pub mod block;
pub mod crypto;
pub mod dev;
pub mod devnet;
pub mod eth;
pub mod genesis;
pub mod peg;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tx;
pub mod types;

pub use types::{Address, Amount, BlockNumber, Bytes, ChainId, Hash, Nonce, Slot, Weight};
