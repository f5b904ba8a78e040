//! Peer-to-peer networking over libp2p (TCP, noise, yamux): gossipsub for blocks and
//! transactions, request-response for catching up, identify to refuse other chains, and
//! peer scores that disconnect and ban peers sending invalid data.
//!
//! Shaped like rust-libp2p's file-sharing example: [`start`] returns a cloneable
//! [`NetworkHandle`]; the Swarm never leaves its event loop; work that takes time (block
//! import, signature recovery, reading blocks from the store) runs elsewhere and reports
//! back through an internal channel, so the loop never blocks. Each kind of such work holds
//! a permit of its own bounded semaphore while it runs; when none is free the message or
//! request is dropped (counted in `peer_rejections{reason="busy_*"}`), never queued without
//! bound. The driver's handle is given at construction ([`start`]).

pub mod codec;

use p2p::{
    build_tcp_swarm, gossipsub_config, Exchange, ListenAddrs, NetworkError, PeerScores, Redial,
};

use std::collections::{HashMap, HashSet};

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId, StreamProtocol, Swarm};
use parity_scale_codec::{Decode, DecodeAll, Encode};
use rayon::prelude::*;

use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{DriverHandle, ImportOutcome, Publisher};
use crate::mempool::Rejection;
use crate::shared::Chain;
use codec::{SyncCodec, SyncRequest, SyncResponse};
use primitives::block::Block;
use primitives::tx::{RecoveredTx, SignedTransaction};
use primitives::types::{BlockNumber, Hash};
use rpc_api::types::PeerInfo;

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Where to listen.
    pub listen: Multiaddr,
    /// Peers to dial and keep dialing (with backoff) when disconnected.
    pub bootstrap: Vec<Multiaddr>,
    /// How long a misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Largest gossip message (a whole block must fit).
    pub max_message_bytes: usize,
}

/// Score changes; a peer at or below [`BAN_SCORE`] is disconnected and banned.
pub mod penalty {
    /// Undecodable gossip or requests.
    pub const JUNK: i32 = 20;
    /// A block that breaks a rule.
    pub const INVALID_BLOCK: i32 = 50;
    /// A transaction whose signature does not recover.
    pub const BAD_TX: i32 = 10;
    /// Transaction gossip of which the pool took nothing and refused some whatever its state
    /// (for another chain, malformed, ...): useless work the sender could have known.
    pub const REFUSED_TXS: i32 = 10;
    /// A peer of another chain.
    pub const WRONG_CHAIN: i32 = 1000;
    /// A finality message with a bad signature, a non-authority signer or a broken polka.
    pub const BAD_FINALITY: i32 = 20;
}

/// Blocks per sync response.
pub const SYNC_BATCH: u32 = 128;

/// The libp2p protocol string of this chain: peers of another chain or genesis never match.
pub fn protocol_version(genesis: &Hash) -> String {
    format!("/twinpeg/{genesis}/1")
}

fn topic(genesis: &Hash, what: &str) -> IdentTopic {
    IdentTopic::new(format!("/twinpeg/{genesis}/{what}"))
}

pub use behaviour::{Behaviour, BehaviourEvent};

mod behaviour {
    // The derive generates an event enum without doc comments.
    #![allow(missing_docs)]
    use super::*;

    /// The behaviour every Twinpeg node runs.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Blocks and transactions.
        pub gossipsub: gossipsub::Behaviour,
        /// Catching up.
        pub sync: request_response::Behaviour<SyncCodec>,
        /// Protocol version exchange (chain check).
        pub identify: identify::Behaviour,
    }
}

/// Builds a swarm for the chain with genesis `genesis` (also used by tests that play a hostile peer).
pub fn build_swarm(
    keypair: Keypair,
    genesis: &Hash,
    max_message_bytes: usize,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let build = |e: String| NetworkError::Build(e);
    let version = protocol_version(genesis);
    let sync_protocol = StreamProtocol::try_from_owned(format!("/twinpeg/{genesis}/sync/1"))
        .map_err(|e| build(e.to_string()))?;
    let gossip_cfg = gossipsub_config(max_message_bytes)?;
    let mut swarm = build_tcp_swarm(keypair, |key| {
        Ok(Behaviour {
            gossipsub: gossipsub::Behaviour::new(
                MessageAuthenticity::Signed(key.clone()),
                gossip_cfg,
            )?,
            sync: request_response::Behaviour::with_codec(
                SyncCodec::new(
                    codec::MAX_REQUEST_BYTES,
                    max_message_bytes.saturating_mul(4),
                ),
                [(sync_protocol, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            ),
            identify: identify::Behaviour::new(identify::Config::new(version, key.public())),
        })
    })?;
    for t in ["blocks", "txs", "finality"] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic(genesis, t))
            .map_err(|e| build(e.to_string()))?;
    }
    Ok(swarm)
}

enum Command {
    PublishBlock(Vec<u8>),
    PublishFinality(Vec<u8>),
    PublishTxs(Vec<SignedTransaction>),
    AnnounceWhenConnected(Vec<SignedTransaction>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    BestPeerHead(oneshot::Sender<Option<BlockNumber>>),
}

/// What the pool made of one gossiped batch of transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxGossipVerdict {
    /// It took at least one: forward the batch.
    Useful,
    /// Signatures that do not recover: reject and penalise per transaction.
    BadSignatures(usize),
    /// It took none and refused some whatever its state: reject and penalise.
    Refused,
    /// It took none for reasons of state (already known, nonce used, pool full): do not forward.
    Stale,
    /// The check did not complete (a panic, or no capacity): neither forward nor penalise.
    Unchecked,
}

/// Gossiped batches checked at once; more are dropped unforwarded until one finishes, so a
/// flood costs the node a bounded amount of work instead of a task each.
const MAX_TX_GOSSIP_CHECKS: usize = 8;
/// Gossiped blocks waiting for the driver at once.
const MAX_BLOCK_GOSSIP_IMPORTS: usize = 64;
/// Inbound sync requests being answered at once (each reads up to a batch from the store);
/// more are dropped unanswered and the peer asks again.
const MAX_SYNC_ANSWERS: usize = 8;
/// Gossiped finality messages being checked at once (signature recovery); more are dropped
/// unforwarded, and their authors send them again.
const MAX_FINALITY_CHECKS: usize = 16;
/// Sync responses waiting for the driver at once; more are dropped and asked for again.
const MAX_SYNC_IMPORTS: usize = 8;
/// Transactions accepted while no peer is connected, kept to be gossiped on the next flush
/// with a peer (older ones go first when full; re-announcement covers them).
const MAX_UNSENT_TXS: usize = 10_000;
/// Every this many ticks (seconds), includable pooled transactions are announced again, so one
/// whose first gossip was lost (no peer yet, a producer restarting) still reaches a producer.
const REANNOUNCE_TICKS: u64 = 5;
/// Most transactions one re-announcement carries.
const REANNOUNCE_MAX_TXS: usize = 2_000;

enum Internal {
    GossipBlock {
        id: MessageId,
        source: PeerId,
        outcome: Option<ImportOutcome>,
    },
    GossipTxs {
        id: MessageId,
        source: PeerId,
        verdict: TxGossipVerdict,
    },
    GossipFinality {
        id: MessageId,
        source: PeerId,
        verdict: Option<Result<bool, String>>,
    },
    Synced {
        peer: PeerId,
        outcomes: Option<Vec<ImportOutcome>>,
        full: bool,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
}

/// A cloneable handle to the network loop.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    tx: mpsc::Sender<Command>,
    last_finality_send: Arc<std::sync::atomic::AtomicU64>,
    /// This node's peer id.
    pub peer_id: PeerId,
    listen: ListenAddrs,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl NetworkHandle {
    /// Connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Peers(tx)).await.is_err() {
            return vec![];
        }
        rx.await.unwrap_or_default()
    }

    /// The highest head any peer reported.
    pub async fn best_peer_head(&self) -> Option<BlockNumber> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::BestPeerHead(tx)).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Gossips transactions accepted over RPC (batched by the loop).
    pub fn publish_txs(&self, txs: Vec<SignedTransaction>) {
        if !txs.is_empty() {
            let _ = self.tx.try_send(Command::PublishTxs(txs));
        }
    }

    /// Gossips transactions once a peer subscribes to the transaction topic: what a restart
    /// re-admitted from the journal, which no peer may have heard of (gossip with no peer
    /// listening is dropped).
    pub fn announce_when_connected(&self, txs: Vec<SignedTransaction>) {
        if !txs.is_empty() {
            let _ = self.tx.try_send(Command::AnnounceWhenConnected(txs));
        }
    }

    /// Addresses we listen on, with our peer id appended.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen.with_peer_id(self.peer_id)
    }

    /// [`Self::listen_addrs`], waiting up to 5 s for the listener to come up.
    pub async fn wait_listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen.wait_with_peer_id(self.peer_id).await
    }
}

impl crate::finality::FinalityPublisher for NetworkHandle {
    fn publish_finality(&self, wire: finality::Wire) {
        // Strictly increasing, so two sends of one statement in the same millisecond still
        // differ to gossip's duplicate filter.
        let now = service::clock::now_ms();
        let next = |last: u64| now.max(last.saturating_add(1));
        let prev = match self.last_finality_send.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |last| Some(next(last)),
        ) {
            Ok(p) | Err(p) => p,
        };
        let sent_at_ms = next(prev);
        let envelope = finality::Envelope { wire, sent_at_ms };
        let _ = self
            .tx
            .try_send(Command::PublishFinality(envelope.encode()));
    }
}

impl Publisher for NetworkHandle {
    fn publish_block(&self, block: &Block) {
        let _ = self.tx.try_send(Command::PublishBlock(block.encode()));
    }
    fn publish_txs(&self, txs: Vec<SignedTransaction>) {
        NetworkHandle::publish_txs(self, txs);
    }
}

/// Creates the swarm, starts listening and returns the handle and the loop to spawn.
pub fn start(
    chain: Arc<Chain>,
    driver: DriverHandle,
    finality: crate::finality::FinalityHandle,
    keypair: Keypair,
    config: NetworkConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetworkHandle, impl std::future::Future<Output = ()>), NetworkError> {
    let peer_id = keypair.public().to_peer_id();
    let mut swarm = build_swarm(keypair, &chain.genesis_hash, config.max_message_bytes)?;
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| NetworkError::Listen {
            addr: config.listen.to_string(),
            reason: e.to_string(),
        })?;
    let (tx, rx) = mpsc::channel(1024);
    let (itx, irx) = mpsc::channel(1024);
    let listen = ListenAddrs::default();
    let handle = NetworkHandle {
        tx,
        last_finality_send: Arc::default(),
        peer_id,
        listen: listen.clone(),
    };
    let bootstrap = config
        .bootstrap
        .iter()
        .map(|a| {
            Redial::new(
                a.clone(),
                Duration::from_millis(500),
                Duration::from_secs(30),
            )
        })
        .collect();
    let event_loop = EventLoop {
        blocks_topic: topic(&chain.genesis_hash, "blocks"),
        txs_topic: topic(&chain.genesis_hash, "txs"),
        finality_topic: topic(&chain.genesis_hash, "finality"),
        finality,
        finality_checks: Arc::new(tokio::sync::Semaphore::new(MAX_FINALITY_CHECKS)),
        version: protocol_version(&chain.genesis_hash),
        chain,
        driver,
        swarm,
        rx,
        itx,
        irx,
        listen,
        scores: PeerScores::new(config.ban_duration),
        config,
        connected: HashMap::new(),
        heads: HashMap::new(),
        syncing: HashMap::new(),
        tx_buffer: Vec::new(),
        announce: Vec::new(),
        bootstrap,
        tx_checks: Arc::new(tokio::sync::Semaphore::new(MAX_TX_GOSSIP_CHECKS)),
        block_imports: Arc::new(tokio::sync::Semaphore::new(MAX_BLOCK_GOSSIP_IMPORTS)),
        sync_answers: Arc::new(tokio::sync::Semaphore::new(MAX_SYNC_ANSWERS)),
        sync_imports: Arc::new(tokio::sync::Semaphore::new(MAX_SYNC_IMPORTS)),
        ticks: 0,
    };
    Ok((handle, event_loop.run(shutdown)))
}

/// The two kinds of gossip a node checks, each with its own queue of checks.
#[derive(Debug, Clone, Copy)]
enum Gossip {
    /// Blocks, imported by the driver.
    Blocks,
    /// Transaction batches, checked against the pool.
    Txs,
    /// Finality statements, whose signatures are checked.
    Finality,
}

struct EventLoop {
    chain: Arc<Chain>,
    driver: DriverHandle,
    swarm: Swarm<Behaviour>,
    rx: mpsc::Receiver<Command>,
    itx: mpsc::Sender<Internal>,
    irx: mpsc::Receiver<Internal>,
    listen: ListenAddrs,
    config: NetworkConfig,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    finality_topic: IdentTopic,
    finality: crate::finality::FinalityHandle,
    finality_checks: Arc<tokio::sync::Semaphore>,
    version: String,
    scores: PeerScores,
    connected: HashMap<PeerId, Multiaddr>,
    heads: HashMap<PeerId, BlockNumber>,
    syncing: HashMap<PeerId, OutboundRequestId>,
    tx_buffer: Vec<SignedTransaction>,
    /// Waiting for the first peer that subscribes to the transaction topic.
    announce: Vec<SignedTransaction>,
    bootstrap: Vec<Redial>,
    tx_checks: Arc<tokio::sync::Semaphore>,
    block_imports: Arc<tokio::sync::Semaphore>,
    sync_answers: Arc<tokio::sync::Semaphore>,
    sync_imports: Arc<tokio::sync::Semaphore>,
    ticks: u64,
}

impl EventLoop {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(1000));
        let mut flush = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                Some(cmd) = self.rx.recv() => self.on_command(cmd),
                Some(msg) = self.irx.recv() => self.on_internal(msg),
                _ = flush.tick() => self.flush_txs(),
                _ = tick.tick() => self.on_tick(),
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("network stopped");
    }

    fn penalize(&mut self, peer: PeerId, points: i32, reason: &'static str) {
        self.chain.metrics.peer_rejected(reason);
        let banned = self.scores.penalize(peer, points, Instant::now());
        tracing::debug!(%peer, score = self.scores.score(&peer), reason, "peer penalised");
        if banned {
            tracing::warn!(%peer, reason, ban_secs = self.config.ban_duration.as_secs(), "peer banned");
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            self.connected.remove(&peer);
            self.heads.remove(&peer);
            self.syncing.remove(&peer);
            self.chain.metrics.peers.set(self.connected.len() as i64);
        }
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        p2p::report(
            &mut self.swarm.behaviour_mut().gossipsub,
            id,
            source,
            acceptance,
        );
    }

    fn is_banned(&self, peer: &PeerId) -> bool {
        self.scores.is_banned(peer, Instant::now())
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.ticks += 1;
        if self.ticks.is_multiple_of(REANNOUNCE_TICKS) && !self.connected.is_empty() {
            let txs = self.chain.mempool().announce_candidates(REANNOUNCE_MAX_TXS);
            if !txs.is_empty() {
                tracing::debug!(txs = txs.len(), "announcing pooled transactions again");
                self.tx_buffer.extend(txs);
            }
        }
        p2p::lift_expired_bans(
            &mut self.scores,
            &mut self.swarm.behaviour_mut().gossipsub,
            now,
        );
        // Keep dialing bootstrap peers we are not connected to, with backoff.
        let connected_addrs: HashSet<String> =
            self.connected.values().map(|a| a.to_string()).collect();
        let connected_peers: HashSet<PeerId> = self.connected.keys().copied().collect();
        for r in &mut self.bootstrap {
            let up = match r.peer_id() {
                Some(id) => connected_peers.contains(&id),
                None => connected_addrs.contains(&r.addr.to_string()),
            };
            if r.due(up, now) {
                tracing::debug!(addr = %r.addr, "dialing bootstrap peer");
                let _ = self.swarm.dial(r.addr.clone());
            }
        }
        // Periodic catch-up with a peer that is ahead, or any peer.
        let head = self.chain.tip().head.number;
        let best = self.heads.values().max().copied();
        self.chain
            .metrics
            .sync_lag
            .set(best.map_or(0, |b| b.saturating_sub(head)) as i64);
        let target = self
            .heads
            .iter()
            .filter(|(p, h)| **h > head && self.connected.contains_key(p))
            .max_by_key(|(_, h)| **h)
            .map(|(p, _)| *p)
            .or_else(|| self.connected.keys().next().copied());
        if let Some(peer) = target {
            self.request_sync(peer);
        }
    }

    fn locator(&self) -> Vec<Hash> {
        let head = self.chain.tip().head.number;
        let mut out = Vec::new();
        let mut step = 1u64;
        let mut n = head;
        loop {
            if let Ok(Some(h)) = self.chain.store.canonical_hash(n) {
                out.push(h);
            }
            if n == 0 {
                break;
            }
            n = n.saturating_sub(step);
            if out.len() > 8 {
                step *= 2;
            }
        }
        out
    }

    fn request_sync(&mut self, peer: PeerId) {
        if self.syncing.contains_key(&peer) || self.is_banned(&peer) {
            return;
        }
        let req = SyncRequest {
            locator: self.locator(),
            max_blocks: SYNC_BATCH,
        };
        tracing::debug!(%peer, locator = req.locator.len(), "sync request");
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
        self.syncing.insert(peer, id);
    }

    fn flush_txs(&mut self) {
        if self.tx_buffer.is_empty() {
            return;
        }
        if self.connected.is_empty() {
            let excess = self.tx_buffer.len().saturating_sub(MAX_UNSENT_TXS);
            self.tx_buffer.drain(..excess);
            return;
        }
        // Keep each message well under the transmit limit.
        let limit = (self.config.max_message_bytes / 2).max(1024);
        let mut batch: Vec<SignedTransaction> = Vec::new();
        let mut size = 0usize;
        let txs = std::mem::take(&mut self.tx_buffer);
        for t in txs {
            let s = t.encoded_size();
            if size + s > limit && !batch.is_empty() {
                self.publish(self.txs_topic.clone(), std::mem::take(&mut batch).encode());
                size = 0;
            }
            size += s;
            batch.push(t);
        }
        if !batch.is_empty() {
            self.publish(self.txs_topic.clone(), batch.encode());
        }
    }

    fn publish(&mut self, topic: IdentTopic, data: Vec<u8>) {
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            // No peers yet, or a duplicate: gossip is best effort; sync covers the rest.
            tracing::debug!(error = %e, "gossip publish skipped");
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::PublishBlock(bytes) => self.publish(self.blocks_topic.clone(), bytes),
            Command::PublishFinality(bytes) => self.publish(self.finality_topic.clone(), bytes),
            Command::PublishTxs(txs) => self.tx_buffer.extend(txs),
            Command::AnnounceWhenConnected(txs) => self.announce.extend(txs),
            Command::Peers(reply) => {
                let peers = self
                    .connected
                    .iter()
                    .map(|(p, a)| PeerInfo {
                        peer_id: p.to_string(),
                        address: a.to_string(),
                        score: self.scores.score(p),
                        head: self.heads.get(p).copied(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::BestPeerHead(reply) => {
                let _ = reply.send(self.heads.values().max().copied());
            }
        }
    }

    fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::GossipBlock {
                id,
                source,
                outcome,
            } => {
                tracing::debug!(peer = %source, ?outcome, "gossiped block");
                let acceptance = match &outcome {
                    Some(o) if o.is_valid() => MessageAcceptance::Accept,
                    Some(ImportOutcome::Invalid(_)) => MessageAcceptance::Reject,
                    _ => MessageAcceptance::Ignore,
                };
                self.report(&id, &source, acceptance);
                match outcome {
                    Some(ImportOutcome::Invalid(_)) => {
                        self.penalize(source, penalty::INVALID_BLOCK, "invalid_block")
                    }
                    Some(ImportOutcome::Orphan) => self.request_sync(source),
                    _ => {}
                }
            }
            Internal::GossipTxs {
                id,
                source,
                verdict,
            } => {
                let acceptance = tx_gossip_acceptance(verdict);
                self.report(&id, &source, acceptance);
                match verdict {
                    TxGossipVerdict::BadSignatures(bad) => self.penalize(
                        source,
                        penalty::BAD_TX * bad.min(10) as i32,
                        "bad_transaction",
                    ),
                    TxGossipVerdict::Refused => {
                        self.penalize(source, penalty::REFUSED_TXS, "refused_transactions")
                    }
                    _ => {}
                }
            }
            Internal::GossipFinality {
                id,
                source,
                verdict,
            } => {
                let acceptance = match &verdict {
                    Some(Ok(true)) => MessageAcceptance::Accept,
                    Some(Err(_)) => MessageAcceptance::Reject,
                    _ => MessageAcceptance::Ignore,
                };
                self.report(&id, &source, acceptance);
                if let Some(Err(reason)) = verdict {
                    tracing::debug!(peer = %source, reason, "bad finality message");
                    self.penalize(source, penalty::BAD_FINALITY, "bad_finality");
                }
            }
            Internal::Synced {
                peer,
                outcomes,
                full,
            } => {
                tracing::debug!(%peer, ?outcomes, full, "synced blocks");
                let Some(outcomes) = outcomes else { return };
                if outcomes
                    .iter()
                    .any(|o| matches!(o, ImportOutcome::Invalid(_)))
                {
                    self.penalize(peer, penalty::INVALID_BLOCK, "invalid_sync_block");
                    return;
                }
                let progressed = outcomes
                    .iter()
                    .any(|o| matches!(o, ImportOutcome::Imported { .. } | ImportOutcome::Side));
                let behind = self
                    .heads
                    .get(&peer)
                    .is_some_and(|h| *h > self.chain.tip().head.number);
                if (full || behind) && progressed {
                    self.request_sync(peer);
                }
            }
            Internal::Respond { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        let Some(ev) = p2p::common_event(
            &mut self.swarm,
            &self.scores,
            &self.listen,
            ev,
            "p2p listening",
        ) else {
            return;
        };
        match ev {
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                tracing::info!(peer = %peer_id, %addr, "peer connected");
                self.connected.insert(peer_id, addr);
                self.chain.metrics.peers.set(self.connected.len() as i64);
                self.request_sync(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::info!(peer = %peer_id, "peer disconnected");
                self.connected.remove(&peer_id);
                self.heads.remove(&peer_id);
                self.syncing.remove(&peer_id);
                self.chain.metrics.peers.set(self.connected.len() as i64);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version != self.version => {
                tracing::warn!(peer = %peer_id, theirs = %info.protocol_version, ours = %self.version, "peer of another chain");
                self.penalize(peer_id, penalty::WRONG_CHAIN, "wrong_chain");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                topic,
                ..
            })) if topic == self.txs_topic.hash() && !self.announce.is_empty() => {
                // Only what is still pooled: the rest was included or dropped meanwhile.
                let pool = self.chain.mempool();
                let txs: Vec<SignedTransaction> = std::mem::take(&mut self.announce)
                    .into_iter()
                    .filter(|t| pool.contains(&t.hash()))
                    .collect();
                drop(pool);
                tracing::info!(
                    txs = txs.len(),
                    "announcing re-admitted journaled transactions"
                );
                self.tx_buffer.extend(txs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            _ => {}
        }
    }

    /// A finality message: decoded here, its signatures checked off the loop (bounded), and
    /// handed to the finality thread if they hold.
    fn on_finality_gossip(&mut self, source: PeerId, id: MessageId, data: &[u8]) {
        let Some((envelope, permit)) =
            self.admit::<finality::Envelope>(&source, &id, data, Gossip::Finality)
        else {
            return;
        };
        let chain = self.chain.clone();
        let finality = self.finality.clone();
        let itx = self.itx.clone();
        tokio::spawn(async move {
            let checked = tokio::task::spawn_blocking(move || {
                match crate::finality::check_wire(&chain.finality, envelope.wire) {
                    // Stale: not worth passing on.
                    Ok(None) => Ok(false),
                    Ok(Some((from, message))) => {
                        if !finality.message(from, message) {
                            chain.metrics.finality_dropped_total.inc();
                        }
                        Ok(true)
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
            drop(permit);
            let verdict = match checked {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(peer = %source, error = %e, "checking a finality message failed");
                    None
                }
            };
            let _ = itx
                .send(Internal::GossipFinality {
                    id,
                    source,
                    verdict,
                })
                .await;
        });
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        if message.topic == self.blocks_topic.hash() {
            // With no slot the driver is that far behind: dropped unforwarded, sync fetches it.
            let Some((block, permit)) = self.admit(&source, &id, &message.data, Gossip::Blocks)
            else {
                return;
            };
            let driver = self.driver.clone();
            let itx = self.itx.clone();
            tokio::spawn(async move {
                let outcome = driver.import(vec![block]).await.and_then(|mut o| o.pop());
                drop(permit);
                let _ = itx
                    .send(Internal::GossipBlock {
                        id,
                        source,
                        outcome,
                    })
                    .await;
            });
        } else if message.topic == self.finality_topic.hash() {
            self.on_finality_gossip(source, id, &message.data);
        } else if message.topic == self.txs_topic.hash() {
            let Some((txs, permit)) = self.admit(&source, &id, &message.data, Gossip::Txs) else {
                return;
            };
            let chain = self.chain.clone();
            let itx = self.itx.clone();
            tokio::spawn(async move {
                let metrics_chain = chain.clone();
                let checked = tokio::task::spawn_blocking(move || check_gossiped_txs(&chain, txs))
                    .await
                    .map_err(CheckFailed::from);
                drop(permit);
                if let Err(e) = &checked {
                    // Our bug, not the peer's fault for sure: not accepted, not penalised.
                    metrics_chain.metrics.peer_rejected("tx_check_failed");
                    tracing::error!(peer = %source, error = %e, "checking gossiped transactions failed");
                }
                let verdict = tx_gossip_verdict(&checked);
                let _ = itx
                    .send(Internal::GossipTxs {
                        id,
                        source,
                        verdict,
                    })
                    .await;
            });
        }
    }

    /// A gossiped `T` of `kind` and a slot to check it in, or `None` once the message is
    /// reported: what does not decode is rejected and the peer penalised, and with no slot free
    /// it is dropped unforwarded.
    fn admit<T: Decode>(
        &mut self,
        source: &PeerId,
        id: &MessageId,
        data: &[u8],
        kind: Gossip,
    ) -> Option<(T, tokio::sync::OwnedSemaphorePermit)> {
        let (slots, junk, busy) = match kind {
            Gossip::Blocks => (&self.block_imports, "junk_block", "busy_block_gossip"),
            Gossip::Txs => (&self.tx_checks, "junk_transactions", "busy_tx_gossip"),
            Gossip::Finality => (
                &self.finality_checks,
                "junk_finality",
                "busy_finality_gossip",
            ),
        };
        let slots = slots.clone();
        let Ok(value) = T::decode_all(&mut &data[..]) else {
            self.report(id, source, MessageAcceptance::Reject);
            self.penalize(*source, penalty::JUNK, junk);
            return None;
        };
        let Some(permit) = self.slot(&slots, busy) else {
            self.report(id, source, MessageAcceptance::Ignore);
            return None;
        };
        Some((value, permit))
    }

    /// A free slot of `slots`; with none, the refusal is counted as `busy`.
    fn slot(
        &self,
        slots: &Arc<tokio::sync::Semaphore>,
        busy: &'static str,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.chain.metrics.peer_rejected(busy);
        }
        permit
    }

    fn on_sync_event(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        match Exchange::from(ev) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let Some(permit) = self.slot(&self.sync_answers, "busy_sync_request") else {
                    // Dropping the channel tells the peer we did not answer; it asks again.
                    tracing::debug!(%peer, "sync request dropped: answering as many as we may");
                    return;
                };
                let chain = self.chain.clone();
                let itx = self.itx.clone();
                let max_bytes = self.config.max_message_bytes;
                tokio::spawn(async move {
                    let answered = tokio::task::spawn_blocking(move || {
                        answer_sync(&chain, &request, max_bytes)
                    })
                    .await;
                    drop(permit);
                    match answered {
                        Ok(Some(response)) => {
                            let _ = itx.send(Internal::Respond { channel, response }).await;
                        }
                        Ok(None) => tracing::debug!(%peer, "could not answer a sync request"),
                        Err(e) => {
                            tracing::error!(%peer, error = %e, "answering a sync request failed")
                        }
                    }
                });
            }
            Exchange::Response { peer, response } => {
                self.syncing.remove(&peer);
                tracing::debug!(%peer, head = response.head, blocks = response.blocks.len(), "sync response");
                self.heads.insert(peer, response.head);
                if response.blocks.is_empty() {
                    return;
                }
                let full = response.blocks.len() as u32 >= SYNC_BATCH;
                let Some(permit) = self.slot(&self.sync_imports, "busy_sync_response") else {
                    // The driver is behind already; the next tick asks again from our new head.
                    tracing::debug!(%peer, "sync response dropped: the driver is busy");
                    return;
                };
                let driver = self.driver.clone();
                let itx = self.itx.clone();
                tokio::spawn(async move {
                    let outcomes = driver.import(response.blocks).await;
                    drop(permit);
                    let _ = itx
                        .send(Internal::Synced {
                            peer,
                            outcomes,
                            full,
                        })
                        .await;
                });
            }
            Exchange::OutboundFailure { peer, error } => {
                self.syncing.remove(&peer);
                tracing::debug!(%peer, %error, "sync request failed");
            }
            Exchange::InboundFailure { peer, error } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    self.penalize(peer, penalty::JUNK, "junk_sync_request");
                }
            }
            Exchange::ResponseSent => {}
        }
    }
}

/// Builds the answer to a sync request from the store.
fn answer_sync(chain: &Chain, req: &SyncRequest, max_bytes: usize) -> Option<SyncResponse> {
    let head = chain.tip().head.number;
    let mut from = None;
    for h in req.locator.iter().take(64) {
        if let Ok(Some(header)) = chain.store.header(h) {
            if chain.store.is_canonical(h, header.number).ok()? {
                from = Some(header.number + 1);
                break;
            }
        }
    }
    let Some(from) = from else {
        return Some(SyncResponse {
            head,
            blocks: vec![],
        });
    };
    let count = req.max_blocks.min(SYNC_BATCH) as usize;
    let blocks = chain.store.canonical_range(from, count, max_bytes).ok()?;
    Some(SyncResponse { head, blocks })
}

/// What checking one gossiped batch found.
#[derive(Debug)]
struct TxCheck {
    /// Transactions whose signature did not recover.
    bad: usize,
    /// The pool's answer for every transaction not already pooled (the bad ones included).
    results: Vec<Result<Hash, Rejection>>,
}

/// A check that did not run to its end: its task panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("the check's task failed: {0}")]
struct CheckFailed(#[from] tokio::task::JoinError);

/// Recovers and admits a gossiped batch (blocking: signature recovery is CPU work).
fn check_gossiped_txs(chain: &Chain, txs: Vec<SignedTransaction>) -> TxCheck {
    let max = chain.max_tx_size();
    // Re-announcements are mostly what the pool holds: no recovery for those.
    let txs: Vec<SignedTransaction> = {
        let pool = chain.mempool();
        txs.into_iter()
            .filter(|t| !pool.contains(&t.hash()))
            .collect()
    };
    let recovered: Vec<Result<RecoveredTx, Rejection>> = txs
        .into_par_iter()
        .map(|t| {
            if t.encoded_size() > max {
                return Err(Rejection::Oversized {
                    size: t.encoded_size(),
                    max,
                });
            }
            t.recover().map_err(Rejection::from)
        })
        .collect();
    let bad = recovered.iter().filter(|r| r.is_err()).count();
    let results = chain.admit(recovered);
    TxCheck { bad, results }
}

/// What a gossiped batch was worth. A check that failed says nothing of the batch, so it is
/// [`TxGossipVerdict::Unchecked`]: never forwarded, never taken for "nothing bad".
fn tx_gossip_verdict(checked: &Result<TxCheck, CheckFailed>) -> TxGossipVerdict {
    let Ok(TxCheck { bad, results }) = checked else {
        return TxGossipVerdict::Unchecked;
    };
    if *bad > 0 {
        TxGossipVerdict::BadSignatures(*bad)
    } else if results.iter().any(|r| r.is_ok()) {
        TxGossipVerdict::Useful
    } else if results
        .iter()
        .any(|r| r.as_ref().is_err_and(Rejection::is_stateless))
    {
        TxGossipVerdict::Refused
    } else {
        TxGossipVerdict::Stale
    }
}

/// What gossipsub is told of a batch with this verdict (only `Accept` forwards it).
fn tx_gossip_acceptance(verdict: TxGossipVerdict) -> MessageAcceptance {
    match verdict {
        TxGossipVerdict::Useful => MessageAcceptance::Accept,
        TxGossipVerdict::BadSignatures(_) | TxGossipVerdict::Refused => MessageAcceptance::Reject,
        TxGossipVerdict::Stale | TxGossipVerdict::Unchecked => MessageAcceptance::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(bad: usize, results: &[Result<Hash, Rejection>]) -> TxGossipVerdict {
        tx_gossip_verdict(&Ok(TxCheck {
            bad,
            results: results.to_vec(),
        }))
    }

    #[test]
    fn tx_gossip_is_forwarded_only_if_the_pool_took_something() {
        let ok: Result<Hash, Rejection> = Ok(Hash::ZERO);
        let known = Err(Rejection::AlreadyKnown(Hash::ZERO));
        let other_chain = Err(Rejection::WrongChainId {
            expected: 1,
            got: 2,
        });
        let low = Err(Rejection::NonceTooLow { account: 3, got: 1 });
        use TxGossipVerdict::*;
        assert_eq!(checked(0, &[known.clone(), ok.clone()]), Useful);
        assert_eq!(
            checked(0, &[other_chain.clone(), other_chain.clone()]),
            Refused
        );
        assert_eq!(checked(0, &[known.clone(), other_chain]), Refused);
        // Duplicates and races with a block are nobody's fault: dropped, not penalised.
        assert_eq!(checked(0, &[known, low]), Stale);
        assert_eq!(checked(0, &[]), Stale);
        assert_eq!(checked(2, &[ok]), BadSignatures(2));
        assert_eq!(tx_gossip_acceptance(Useful), MessageAcceptance::Accept);
        assert_eq!(tx_gossip_acceptance(Refused), MessageAcceptance::Reject);
        assert_eq!(
            tx_gossip_acceptance(BadSignatures(1)),
            MessageAcceptance::Reject
        );
        assert_eq!(tx_gossip_acceptance(Stale), MessageAcceptance::Ignore);
    }

    #[tokio::test]
    async fn a_check_that_panicked_is_not_taken_for_a_clean_batch() {
        let joined = tokio::task::spawn_blocking(|| -> TxCheck { panic!("check blew up") }).await;
        let failed = joined.map_err(CheckFailed::from);
        assert!(failed.is_err(), "the panic surfaces as an error");
        let verdict = tx_gossip_verdict(&failed);
        assert_eq!(verdict, TxGossipVerdict::Unchecked);
        assert_ne!(
            tx_gossip_acceptance(verdict),
            MessageAcceptance::Accept,
            "a batch nobody checked is never forwarded"
        );
    }
}
