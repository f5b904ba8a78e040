//! The supervisor of `bridge run`: checks the member's nodes describe one peg with this key
//! in it, opens the store, starts the network, the status server, the head subscriptions,
//! the attestation intake and one worker per direction, and stops them all on a signal or
//! when one fails for good.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonrpsee::ws_client::WsClientBuilder;
use primitives::peg::Direction;
use rpc_api::TwinpegApiClient;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use crate::attest::Federation;
use crate::config::MemberConfig;
use crate::error::{BridgeError, Result};
use crate::metrics::Metrics;
use crate::network::{self, NetConfig};
use crate::nodes::NodeClient;
use crate::status::{self, DirectionBoard, Shared};
use crate::store::Store;
use crate::watcher::Watcher;
use crate::worker::{Worker, WorkerTiming};

/// Waits until both nodes answer and describe the same peg; returns the federation and
/// the two chain ids (main, side).
pub async fn check_nodes(
    main: &NodeClient,
    side: &NodeClient,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(Federation, u64, u64)> {
    let mut delay = Duration::from_millis(200);
    let (mi, si, mc, sc) = loop {
        let r = async {
            Ok::<_, BridgeError>((
                main.peg_info().await?,
                side.peg_info().await?,
                main.chain_info().await?,
                side.chain_info().await?,
            ))
        }
        .await;
        match r {
            Ok(v) => break v,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "waiting for the member's nodes");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Err(BridgeError::Config("stopped while waiting for the nodes".into())),
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    };
    if mi.role != "main" || si.role != "side" {
        return Err(BridgeError::Peg(format!(
            "main_rpc serves the {} end and side_rpc the {} end of the peg",
            mi.role, si.role
        )));
    }
    if mi.domain != si.domain {
        return Err(BridgeError::Peg(format!(
            "main domain {} differs from side domain {}",
            mi.domain, si.domain
        )));
    }
    let (mut a, mut b) = (mi.params.clone(), si.params.clone());
    a.counterpart_genesis = Default::default();
    b.counterpart_genesis = Default::default();
    if a != b {
        return Err(BridgeError::Peg(
            "the two genesis files carry different peg parameters".into(),
        ));
    }
    if let Err(e) = mi.params.validate() {
        return Err(BridgeError::Peg(format!("federation refused: {e}")));
    }
    check_chain_pair(&mc, &sc, mi.params.terms.threshold)?;
    Ok((
        Federation::new(mi.domain, &mi.params),
        mc.chain_id,
        sc.chain_id,
    ))
}

/// The two chains of a peg must be told apart (a transaction signed for one must be invalid
/// on the other, so their chain ids differ), and each must carry a payout with the threshold's
/// signatures.
pub fn check_chain_pair(
    main: &rpc_api::types::ChainInfo,
    side: &rpc_api::types::ChainInfo,
    threshold: u32,
) -> Result<()> {
    if main.chain_id == side.chain_id {
        return Err(BridgeError::Peg(format!(
            "both chains have chain id {}: a transaction for one would be valid on the other",
            main.chain_id
        )));
    }
    let payout = primitives::peg::largest_payout_size(threshold);
    for info in [main, side] {
        if (info.max_tx_size as usize) < payout {
            return Err(BridgeError::Peg(format!(
                "{} (chain id {}) has max_tx_size {}, too small for a payout with {threshold} signatures ({payout} bytes)",
                info.name, info.chain_id, info.max_tx_size
            )));
        }
    }
    Ok(())
}

async fn follow_heads(
    name: &'static str,
    url: String,
    wakes: Vec<Arc<Notify>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match WsClientBuilder::default().build(&url).await {
            Ok(client) => match client.subscribe_new_heads().await {
                Ok(mut sub) => {
                    tracing::info!(chain = name, %url, "following new heads");
                    loop {
                        tokio::select! {
                            item = sub.next() => match item {
                                Some(Ok(_)) => wakes.iter().for_each(|w| w.notify_one()),
                                _ => break,
                            },
                            _ = shutdown.changed() => return,
                        }
                    }
                    tracing::warn!(
                        chain = name,
                        "head subscription ended; polling until it is back"
                    );
                }
                Err(e) => {
                    tracing::warn!(chain = name, error = %e, "head subscription refused; polling")
                }
            },
            Err(e) => {
                tracing::debug!(chain = name, error = %e, "WebSocket connect failed; polling")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn write_endpoints(
    dir: &Path,
    p2p: &[String],
    status: std::net::SocketAddr,
    member: primitives::types::Address,
) -> Result<()> {
    let body = service::endpoints::MemberEndpoints {
        p2p: p2p.to_vec(),
        status_http: format!("http://{status}"),
        pid: std::process::id(),
        member: member.to_string(),
    };
    service::endpoints::write(dir, &body).map_err(|(file, error)| BridgeError::Io {
        what: format!("writing {}", file.display()),
        error,
    })
}

/// Runs the member until a signal or a fatal error.
pub async fn run(cfg: MemberConfig) -> Result<()> {
    let key = crate::keys::load_member_key(&cfg)?;
    let member = key.address();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut sd = shutdown_rx.clone();
    let main = NodeClient::new("main", &cfg.main_rpc)?;
    let side = NodeClient::new("side", &cfg.side_rpc)?;
    let (federation, main_id, side_id) = check_nodes(&main, &side, &mut sd).await?;
    if !federation.members.contains(&member) {
        return Err(BridgeError::Peg(format!(
            "key {member} is not a member of this federation"
        )));
    }
    let store = Arc::new(Store::open(&cfg.data_dir)?);
    let metrics = Arc::new(Metrics::new());
    let (att_tx, att_rx) = mpsc::channel(1024);
    let bootstrap = cfg
        .bootstrap
        .iter()
        .map(|b| {
            b.parse()
                .map_err(|_| BridgeError::Config(format!("bootstrap {b:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let listen = cfg
        .p2p_listen
        .parse()
        .map_err(|_| BridgeError::Config(format!("p2p_listen {:?}", cfg.p2p_listen)))?;
    let (net, net_loop, verifier) = network::start(
        NetConfig {
            listen,
            bootstrap,
            key_path: cfg.data_dir.join("p2p.key"),
            ban_duration: Duration::from_secs(cfg.peer_ban_seconds),
        },
        federation.clone(),
        &key,
        att_tx,
        metrics.clone(),
        shutdown_rx.clone(),
    )?;
    let shared = Arc::new(Shared {
        store,
        federation: federation.clone(),
        member,
        net: net.clone(),
        metrics,
        board: Mutex::new([DirectionBoard::default(), DirectionBoard::default()]),
        recorded: Arc::new(Notify::new()),
    });
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    tasks.spawn(async move {
        net_loop.await;
        Ok(())
    });
    // Ends when the network loop drops its queues.
    tasks.spawn(async move {
        verifier.run().await;
        Ok(())
    });
    let (status_addr, status_handle) = status::serve(cfg.status_addr, shared.clone()).await?;
    let p2p: Vec<String> = net
        .wait_listen_addrs()
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    write_endpoints(&cfg.data_dir, &p2p, status_addr, member)?;
    let wakes = [Arc::new(Notify::new()), Arc::new(Notify::new())];
    tasks.spawn(crate::intake::run(shared.clone(), att_rx, wakes.to_vec()));
    for (name, url) in [("main", cfg.main_ws_url()), ("side", cfg.side_ws_url())] {
        let w = wakes.to_vec();
        let sd = shutdown_rx.clone();
        tasks.spawn(async move {
            follow_heads(name, url, w, sd).await;
            Ok(())
        });
    }
    let timing = WorkerTiming {
        poll_interval: cfg.poll_interval(),
        submit_timeout_ms: cfg.submit_timeout_ms,
        regossip_interval_ms: cfg.regossip_interval_ms,
    };
    for (i, direction) in [Direction::MainToSide, Direction::SideToMain]
        .into_iter()
        .enumerate()
    {
        let (source, destination, dest_id) = match direction {
            Direction::MainToSide => (main.clone(), side.clone(), side_id),
            Direction::SideToMain => (side.clone(), main.clone(), main_id),
        };
        let watcher = Watcher {
            direction,
            confirmations: federation.confirmations(direction),
            peg_out_fee: federation.peg_out_fee,
            history: cfg.scan_history,
        };
        let worker = Worker::new(
            direction,
            watcher,
            source,
            destination,
            dest_id,
            key.clone(),
            shared.clone(),
            timing,
        );
        tasks.spawn(worker.run(wakes[i].clone(), shutdown_rx.clone()));
    }
    tracing::info!(%member, domain = %federation.domain, threshold = federation.threshold, members = federation.members.len(), status = %status_addr, p2p = ?p2p, peer_id = %net.peer_id, "bridge member started");
    let result = tokio::select! {
        _ = service::signal::shutdown_signal() => {
            tracing::info!("signal received; stopping");
            Ok(())
        }
        Some(done) = tasks.join_next() => match done {
            Ok(Ok(())) => Err(BridgeError::Config("a bridge task ended unexpectedly".into())),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(BridgeError::Config(format!("a bridge task panicked: {e}"))),
        },
    };
    let _ = shutdown_tx.send(true);
    let _ = status_handle.stop();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc_api::types::ChainInfo;

    fn info(name: &str, chain_id: u64, max_tx_size: u32) -> ChainInfo {
        ChainInfo {
            name: name.into(),
            chain_id,
            genesis_hash: Default::default(),
            block_time_ms: 1000,
            fee_rule: "fee-rate".into(),
            max_block_weight: 1_000_000,
            max_tx_size,
            authorities: vec![],
        }
    }

    #[test]
    fn a_peg_between_chains_sharing_an_id_or_too_small_for_a_payout_is_refused() {
        let (main, side) = (info("mainchain", 1, 16_384), info("sidechain", 2, 16_384));
        assert!(check_chain_pair(&main, &side, 2).is_ok());
        let same = info("sidechain", 1, 16_384);
        let e = check_chain_pair(&main, &same, 2).expect_err("same chain id");
        assert!(e.to_string().contains("chain id 1"), "{e}");
        let small = info("sidechain", 2, 300);
        let e = check_chain_pair(&main, &small, 5).expect_err("too small");
        assert!(e.to_string().contains("max_tx_size 300"), "{e}");
    }
}
