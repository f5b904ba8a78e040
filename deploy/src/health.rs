//! Talking to a running node: its `endpoints.json`, and JSON-RPC through the client jsonrpsee
//! generates from `chain::rpc::api` (no hand-built requests).

use std::path::Path;
use std::time::Duration;

use chain::rpc::types::{ChainInfo, Health};
use chain::rpc::TwinpegApiClient;
use chain::types::{Address, Amount};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde::Deserialize;

use crate::{Error, Result};

/// What a node writes to `<data_dir>/endpoints.json` once its RPC server is bound.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoints {
    /// `http://host:port`.
    pub rpc_http: String,
    /// `ws://host:port`.
    pub rpc_ws: String,
    /// The node's pid: tells this start's file from a stale one.
    pub pid: u32,
}

/// Reads an endpoints file; `None` while it is missing or half-written.
pub fn read_endpoints(path: &Path) -> Option<Endpoints> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// An HTTP JSON-RPC client for `url` with a per-request timeout.
pub fn client(url: &str, timeout: Duration) -> Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(timeout)
        .build(url)
        .map_err(|e| rpc_err(url, e))
}

fn rpc_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Rpc {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

/// `tp_health`.
pub async fn health(url: &str, timeout: Duration) -> Result<Health> {
    client(url, timeout)?
        .health()
        .await
        .map_err(|e| rpc_err(url, e))
}

/// `tp_chainInfo`.
pub async fn chain_info(url: &str, timeout: Duration) -> Result<ChainInfo> {
    client(url, timeout)?
        .chain_info()
        .await
        .map_err(|e| rpc_err(url, e))
}

/// The balance of `address` at the head (`tp_getAccount`).
pub async fn balance(url: &str, address: Address, timeout: Duration) -> Result<Amount> {
    client(url, timeout)?
        .account(address)
        .await
        .map(|a| a.balance)
        .map_err(|e| rpc_err(url, e))
}
