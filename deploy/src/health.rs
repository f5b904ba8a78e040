//! Talking to a running node or member: JSON-RPC through the clients jsonrpsee generates from
//! `rpc_api::api` and the bridge's status trait (no hand-built requests). Their `endpoints.json`
//! is declared in `service::endpoints`.

use std::future::Future;
use std::time::Duration;

use bridge::status::{BridgeApiClient, MemberStatus};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use primitives::types::{Address, Amount};
use rpc_api::types::{ChainInfo, Health};
use rpc_api::TwinpegApiClient;

use crate::{Error, Result};

/// The loopback entry of a list of multiaddrs if there is one, else the first.
pub fn prefer_loopback(addrs: &[String]) -> Option<&String> {
    addrs
        .iter()
        .find(|a| a.starts_with("/ip4/127.") || a.starts_with("/ip6/::1/"))
        .or_else(|| addrs.first())
}

/// A member's status snapshot (`bridge_status`, the JSON `bridge status --json` prints), through
/// the client generated from the bridge's own [`BridgeApi`](bridge::status::BridgeApiClient).
pub async fn member_status(url: &str, timeout: Duration) -> Result<MemberStatus> {
    call(url, timeout, |c| async move { c.status().await }).await
}

/// How many other members a member is connected to (`peers` of `bridge_status`).
pub async fn member_peer_count(url: &str, timeout: Duration) -> Result<usize> {
    Ok(member_status(url, timeout).await?.peers.len())
}

/// An HTTP JSON-RPC client for `url` with a per-request timeout.
pub fn client(url: &str, timeout: Duration) -> Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(timeout)
        .build(url)
        .map_err(|e| rpc_err(url, e))
}

/// What `f` gets from a client for `url`; a failure names the URL.
async fn call<T, F, Fut>(url: &str, timeout: Duration, f: F) -> Result<T>
where
    F: FnOnce(HttpClient) -> Fut,
    Fut: Future<Output = std::result::Result<T, jsonrpsee::core::client::Error>>,
{
    f(client(url, timeout)?).await.map_err(|e| rpc_err(url, e))
}

fn rpc_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Rpc {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

/// `tp_health`.
pub async fn health(url: &str, timeout: Duration) -> Result<Health> {
    call(url, timeout, |c| async move { c.health().await }).await
}

/// `tp_chainInfo`.
pub async fn chain_info(url: &str, timeout: Duration) -> Result<ChainInfo> {
    call(url, timeout, |c| async move { c.chain_info().await }).await
}

/// How many peers the node is connected to (`tp_peers`).
pub async fn peer_count(url: &str, timeout: Duration) -> Result<usize> {
    call(
        url,
        timeout,
        |c| async move { c.peers().await.map(|p| p.len()) },
    )
    .await
}

/// The port of a TCP multiaddr (`/ip4/127.0.0.1/tcp/30333/p2p/...` -> 30333).
pub fn multiaddr_tcp_port(addr: &str) -> Option<u16> {
    let mut parts = addr.split('/');
    parts.find(|p| *p == "tcp")?;
    parts.next()?.parse().ok()
}

/// The balance of `address` at the head (`tp_getAccount`).
pub async fn balance(url: &str, address: Address, timeout: Duration) -> Result<Amount> {
    call(url, timeout, |c| async move {
        c.account(address).await.map(|a| a.balance)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_files_and_multiaddr_ports() {
        use service::endpoints::{read, NodeEndpoints};
        let dir = tempfile::tempdir().unwrap();
        let f = service::endpoints::path(dir.path());
        assert_eq!(read::<NodeEndpoints>(&f), None);
        std::fs::write(
            &f,
            r#"{"rpc_http":"http://127.0.0.1:1","rpc_ws":"ws://127.0.0.1:1","p2p":["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW"],"pid":7}"#,
        )
        .unwrap();
        let e = read::<NodeEndpoints>(&f).unwrap();
        assert_eq!(e.pid, 7);
        assert_eq!(multiaddr_tcp_port(&e.p2p[0]), Some(4001));
        assert_eq!(multiaddr_tcp_port("/ip6/::1/tcp/0"), Some(0));
        assert_eq!(multiaddr_tcp_port("/ip4/1.2.3.4/udp/9"), None);
        std::fs::write(&f, "{\"rpc_http\":").unwrap();
        assert_eq!(read::<NodeEndpoints>(&f), None, "half-written");
    }
}
