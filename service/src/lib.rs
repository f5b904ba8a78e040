//! What every long-running Twinpeg process (node, bridge member) shares around its own work:
//! layered config, tracing, the endpoints file, metrics, the `GET` routes beside JSON-RPC,
//! stop signals, the clock, redb error plumbing, and crash points for tests.
//!
//! Nothing here knows about chains or the peg.

pub mod clock;
pub mod config;
pub mod db;
pub mod endpoints;
pub mod fault;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod signal;
