//! The members' p2p network (libp2p 0.57: TCP, noise, yamux): one gossipsub topic per bridge
//! domain, `/twinpeg-bridge/<domain>/attestations`, identify (a peer of another bridge is
//! dropped), bootstrap peers redialed with backoff, and a persistent identity key.
//!
//! Shaped like the nodes' network: [`start`] returns a cloneable [`NetHandle`] and the event
//! loop to spawn; the Swarm never leaves the loop. Gossip is validated in the loop (decode,
//! domain, membership, signature) before it is accepted and forwarded to other members.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chain::network::{ListenAddrs, Redial};
use chain::types::Hash;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId, Swarm};
use parity_scale_codec::Encode;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::attest::{AttestationGossip, Federation};
use crate::error::{BridgeError, Result};
use crate::metrics::Metrics;

/// Largest gossip message accepted: a full bundle of attestations with room to spare.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The gossip topic of a bridge domain.
pub fn topic(domain: &Hash) -> IdentTopic {
    IdentTopic::new(format!("/twinpeg-bridge/{domain}/attestations"))
}

/// The identify protocol version: members of another bridge never match.
pub fn protocol_version(domain: &Hash) -> String {
    format!("/twinpeg-bridge/{domain}/1")
}

mod behaviour {
    // The derive generates an event enum without doc comments.
    #![allow(missing_docs)]
    use super::*;

    /// The behaviour every member runs.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Attestation gossip.
        pub gossipsub: gossipsub::Behaviour,
        /// Protocol version exchange (bridge check).
        pub identify: identify::Behaviour,
    }
}
pub use behaviour::{Behaviour, BehaviourEvent};

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Where to listen.
    pub listen: Multiaddr,
    /// Peers to dial and keep dialing.
    pub bootstrap: Vec<Multiaddr>,
    /// The persistent p2p identity (created on first run, mode 0600).
    pub key_path: PathBuf,
}

/// A connected member process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address.
    pub address: String,
}

/// A verified bundle of attestations received from the network, with their message hashes.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The gossip as received.
    pub gossip: AttestationGossip,
    /// `signing_hash()` of each attestation's message, in order.
    pub message_hashes: Vec<Hash>,
}

/// A cloneable handle to the network loop.
#[derive(Debug, Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Vec<u8>>,
    /// This member's peer id.
    pub peer_id: PeerId,
    listen: ListenAddrs,
    peers: Arc<Mutex<HashMap<PeerId, Multiaddr>>>,
}

impl NetHandle {
    /// Gossips a bundle of attestations (best effort: re-gossip covers losses).
    pub fn publish(&self, g: &AttestationGossip) {
        if self.tx.try_send(g.encode()).is_err() {
            tracing::debug!(
                attestations = g.attestations.len(),
                "gossip queue full; the next re-gossip sends it"
            );
        }
    }

    /// Listen addresses with our peer id appended.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen.with_peer_id(self.peer_id)
    }

    /// [`Self::listen_addrs`], waiting up to 5 s for the listener to come up.
    pub async fn wait_listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen.wait_with_peer_id(self.peer_id).await
    }

    /// Connected peers.
    pub fn peers(&self) -> Vec<PeerView> {
        self.peers
            .lock()
            .map(|p| {
                p.iter()
                    .map(|(id, a)| PeerView {
                        peer_id: id.to_string(),
                        address: a.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The swarm every member runs for `domain` (also what tests use to play a hostile peer).
pub fn build_swarm(keypair: libp2p::identity::Keypair, domain: &Hash) -> Result<Swarm<Behaviour>> {
    let net_error = |e: chain::network::NetworkError| BridgeError::Network(e.to_string());
    let gossip_cfg = chain::network::gossipsub_config(MAX_MESSAGE_BYTES).map_err(net_error)?;
    let version = protocol_version(domain);
    let mut swarm = chain::network::build_tcp_swarm(keypair, |key| {
        Ok(Behaviour {
            gossipsub: gossipsub::Behaviour::new(
                MessageAuthenticity::Signed(key.clone()),
                gossip_cfg,
            )?,
            identify: identify::Behaviour::new(identify::Config::new(version, key.public())),
        })
    })
    .map_err(net_error)?;
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic(domain))
        .map_err(|e| BridgeError::Network(e.to_string()))?;
    Ok(swarm)
}

/// Creates the swarm, starts listening, and returns the handle and the loop to spawn.
/// Verified attestations go to `inbound`.
pub fn start(
    cfg: NetConfig,
    federation: Federation,
    inbound: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetHandle, impl std::future::Future<Output = ()>)> {
    let keypair = chain::network::load_or_create_keypair(&cfg.key_path)
        .map_err(|e| BridgeError::Network(e.to_string()))?;
    let peer_id = keypair.public().to_peer_id();
    let mut swarm = build_swarm(keypair, &federation.domain)?;
    swarm
        .listen_on(cfg.listen.clone())
        .map_err(|e| BridgeError::Network(format!("listening on {}: {e}", cfg.listen)))?;
    let (tx, rx) = mpsc::channel(1024);
    let listen = ListenAddrs::default();
    let peers = Arc::new(Mutex::new(HashMap::new()));
    let handle = NetHandle {
        tx,
        peer_id,
        listen: listen.clone(),
        peers: peers.clone(),
    };
    let lp = EventLoop {
        topic: topic(&federation.domain),
        version: protocol_version(&federation.domain),
        federation,
        swarm,
        rx,
        inbound,
        listen,
        peers,
        metrics,
        bootstrap: cfg
            .bootstrap
            .into_iter()
            .map(|addr| Redial::new(addr, Duration::from_millis(250), Duration::from_secs(10)))
            .collect(),
    };
    Ok((handle, lp.run(shutdown)))
}

struct EventLoop {
    federation: Federation,
    topic: IdentTopic,
    version: String,
    swarm: Swarm<Behaviour>,
    rx: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
    listen: ListenAddrs,
    peers: Arc<Mutex<HashMap<PeerId, Multiaddr>>>,
    metrics: Arc<Metrics>,
    bootstrap: Vec<Redial>,
}

impl EventLoop {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                Some(bytes) = self.rx.recv() => self.publish(bytes),
                _ = tick.tick() => self.redial(),
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("bridge network stopped");
    }

    fn publish(&mut self, bytes: Vec<u8>) {
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            tracing::debug!(error = %e, "attestation gossip skipped (no peers yet?)");
        }
    }

    fn connected(&self) -> Vec<PeerId> {
        self.peers
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default()
    }

    fn redial(&mut self) {
        let now = Instant::now();
        let connected = self.connected();
        for r in &mut self.bootstrap {
            // Without a peer id in the address the member cannot tell it is up: keep dialing.
            let up = r.peer_id().is_some_and(|p| connected.contains(&p));
            if r.due(up, now) {
                tracing::debug!(addr = %r.addr, "dialing bootstrap member");
                let _ = self.swarm.dial(r.addr.clone());
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer_id = %self.swarm.local_peer_id(), "bridge p2p listening");
                self.listen.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                tracing::info!(peer = %peer_id, %addr, "member connected");
                let n = self.peers.lock().map(|mut p| {
                    p.insert(peer_id, addr);
                    p.len()
                });
                self.metrics.peers.set(n.unwrap_or(0) as i64);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::info!(peer = %peer_id, "member disconnected");
                let n = self.peers.lock().map(|mut p| {
                    p.remove(&peer_id);
                    p.len()
                });
                self.metrics.peers.set(n.unwrap_or(0) as i64);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version != self.version => {
                tracing::warn!(peer = %peer_id, theirs = %info.protocol_version, ours = %self.version, "peer of another bridge; disconnecting");
                self.metrics.error("wrong_bridge_peer");
                let _ = self.swarm.disconnect_peer_id(peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, &message.data),
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, data: &[u8]) {
        let verdict = AttestationGossip::decode_bytes(data)
            .and_then(|g| self.federation.verify(&g).map(|h| (g, h)));
        let acceptance = match verdict {
            Ok((gossip, message_hashes)) => {
                tracing::debug!(peer = %source, attestations = message_hashes.len(), member = %gossip.member, "attestations received");
                match self.inbound.try_send(Inbound {
                    gossip,
                    message_hashes,
                }) {
                    Ok(()) => MessageAcceptance::Accept,
                    // Full: drop it without judging the peer; re-gossip brings it again.
                    Err(_) => MessageAcceptance::Ignore,
                }
            }
            Err(e) => {
                // An honest member forwards only what it verified, so whoever sent this is
                // hostile or broken: drop the connection (bootstrap redial brings a member back).
                tracing::warn!(peer = %source, error = %e, "invalid attestation gossip refused; disconnecting the peer");
                self.metrics.error("invalid_attestation");
                let _ = self.swarm.disconnect_peer_id(source);
                MessageAcceptance::Reject
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }
}
