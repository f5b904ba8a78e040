//! The members' p2p network (libp2p 0.57: TCP, noise, yamux): one gossipsub topic per bridge
//! domain, `/twinpeg-bridge/<domain>/attestations`, identify (a peer of another bridge is
//! dropped), the member-binding protocol ([`crate::binding`]), bootstrap peers redialed with
//! backoff, and a persistent identity key.
//!
//! Shaped like the nodes' network: [`start`] returns a cloneable [`NetHandle`], the event loop
//! and the gossip verifier to spawn; the Swarm never leaves the loop. Only members may publish
//! attestations: each peer must present a member's statement binding its peer id, and until
//! it is checked its gossip is held (a few messages), after which it is taken or refused. The
//! loop does only cheap checks (who sent it, decode, counts, membership, whether every
//! attestation was seen already); signature recoveries run on the bounded
//! [`crate::verifier`], and nothing is forwarded before it is verified. A peer that publishes
//! without being a member, presents a bad statement or sends invalid attestations is
//! penalised, disconnected, and banned once its score reaches the ban score
//! ([`p2p::PeerScores`], as the nodes do).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId};
use libp2p::request_response::{self, OutboundFailure, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId, StreamProtocol, Swarm};
use p2p::{Exchange, ListenAddrs, PeerScores, Redial};
use parity_scale_codec::Encode;
use primitives::crypto::SecretKey;
use primitives::types::{Address, Hash};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::attest::{AttestationGossip, Federation, MAX_ATTESTATIONS_PER_GOSSIP};
use crate::binding::{BindingAck, BindingCodec, PeerBinding};
use crate::dedup::Seen;
use crate::error::{BridgeError, Result};
use crate::metrics::Metrics;
use crate::verifier::{self, BundleJob, Verdict, Verifier, VerifierHandle};

/// Largest gossip message accepted: a full bundle of attestations with room to spare.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How long a connected peer has to get its member statement checked before it is dropped
/// (its held gossip refused). Generous: a loaded member answers within a second.
pub const BINDING_GRACE: Duration = Duration::from_secs(10);

/// Gossip messages held per peer while its statement is checked. An honest member sends its
/// statement first, so at most a message or two races it; a peer that sends more before
/// proving membership is treated as a stranger.
pub const HELD_PER_PEER: usize = 16;

/// Times our statement is sent to a peer again after a failure that may be transient.
const BINDING_RETRIES: u32 = 3;

/// Score changes on the members' network (a peer at [`p2p::BAN_SCORE`] is banned).
pub mod penalty {
    /// A message on the attestation topic from a peer that is not an authenticated member.
    pub const NOT_MEMBER: i32 = 25;
    /// A member statement that does not check out.
    pub const BAD_BINDING: i32 = 50;
    /// Undecodable gossip, or a bundle that does not verify.
    pub const INVALID: i32 = 50;
}

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
        /// Member statements, one each way per connection.
        pub binding: request_response::Behaviour<BindingCodec>,
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
    /// How long a misbehaving peer stays banned.
    pub ban_duration: Duration,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address.
    pub address: String,
    /// The member it proved it speaks for; `None` while unproven.
    #[serde(default)]
    pub member: Option<Address>,
}

/// A verified bundle of attestations received from the network, with their message hashes.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The gossip as received (only the attestations not seen before).
    pub gossip: AttestationGossip,
    /// `signing_hash()` of each attestation's message, in order.
    pub message_hashes: Vec<Hash>,
}

type PeerTable = Arc<Mutex<HashMap<PeerId, (Multiaddr, Option<Address>)>>>;

/// A cloneable handle to the network loop.
#[derive(Debug, Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Vec<u8>>,
    /// This member's peer id.
    pub peer_id: PeerId,
    listen: ListenAddrs,
    peers: PeerTable,
}

impl NetHandle {
    /// A handle to no network, for in-process tests of the workers: what they publish waits
    /// in the returned receiver.
    #[cfg(test)]
    pub(crate) fn detached() -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(1024);
        let handle = NetHandle {
            tx,
            peer_id: PeerId::random(),
            listen: ListenAddrs::default(),
            peers: Arc::new(Mutex::new(HashMap::new())),
        };
        (handle, rx)
    }

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
                    .map(|(id, (a, member))| PeerView {
                        peer_id: id.to_string(),
                        address: a.to_string(),
                        member: *member,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The swarm every member runs for `domain` (also what tests use to play a hostile peer).
pub fn build_swarm(keypair: libp2p::identity::Keypair, domain: &Hash) -> Result<Swarm<Behaviour>> {
    let net_error = |e: p2p::NetworkError| BridgeError::Network(e.to_string());
    let gossip_cfg = p2p::gossipsub_config(MAX_MESSAGE_BYTES).map_err(net_error)?;
    let version = protocol_version(domain);
    let binding_protocol = StreamProtocol::try_from_owned(crate::binding::protocol(domain))
        .map_err(|e| BridgeError::Network(e.to_string()))?;
    let mut swarm = p2p::build_tcp_swarm(keypair, |key| {
        Ok(Behaviour {
            gossipsub: gossipsub::Behaviour::new(
                MessageAuthenticity::Signed(key.clone()),
                gossip_cfg,
            )?,
            identify: identify::Behaviour::new(identify::Config::new(version, key.public())),
            binding: request_response::Behaviour::with_codec(
                crate::binding::binding_codec(),
                [(binding_protocol, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(BINDING_GRACE),
            ),
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

/// Creates the swarm, starts listening, and returns the handle, the event loop and the
/// gossip verifier (both to spawn). `member_key` signs this member's peer statement.
/// Verified attestations go to `inbound`.
pub fn start(
    cfg: NetConfig,
    federation: Federation,
    member_key: &SecretKey,
    inbound: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetHandle, impl std::future::Future<Output = ()>, Verifier)> {
    let keypair = p2p::load_or_create_keypair(&cfg.key_path)
        .map_err(|e| BridgeError::Network(e.to_string()))?;
    let peer_id = keypair.public().to_peer_id();
    let mut swarm = build_swarm(keypair, &federation.domain)?;
    swarm
        .listen_on(cfg.listen.clone())
        .map_err(|e| BridgeError::Network(format!("listening on {}: {e}", cfg.listen)))?;
    let (tx, rx) = mpsc::channel(1024);
    let listen = ListenAddrs::default();
    let peers: PeerTable = Arc::new(Mutex::new(HashMap::new()));
    let handle = NetHandle {
        tx,
        peer_id,
        listen: listen.clone(),
        peers: peers.clone(),
    };
    let federation = Arc::new(federation);
    let (verifier, verifier_task, verdicts) = verifier::new(federation.clone(), metrics.clone());
    let lp = EventLoop {
        topic: topic(&federation.domain),
        version: protocol_version(&federation.domain),
        statement: PeerBinding::sign(member_key, federation.domain, &peer_id),
        federation,
        swarm,
        rx,
        inbound,
        listen,
        peers,
        states: HashMap::new(),
        scores: PeerScores::new(cfg.ban_duration),
        seen: Seen::default(),
        verifier,
        verdicts,
        metrics,
        bootstrap: cfg
            .bootstrap
            .into_iter()
            .map(|addr| Redial::new(addr, Duration::from_millis(250), Duration::from_secs(10)))
            .collect(),
    };
    Ok((handle, lp.run(shutdown), verifier_task))
}

/// What a connected peer proved.
#[derive(Debug)]
enum Auth {
    /// Nothing yet; its statement is with the verifier if `verifying`. Its gossip is held.
    Pending {
        since: Instant,
        verifying: bool,
        held: Vec<(MessageId, gossipsub::Message)>,
    },
    /// It speaks for this member.
    Member(Address),
    /// Not a member: a refused statement, no member protocol, or no statement in time.
    Stranger,
}

#[derive(Debug)]
struct PeerState {
    auth: Auth,
    /// Our statement's failed deliveries to it.
    retries: u32,
}

struct EventLoop {
    federation: Arc<Federation>,
    topic: IdentTopic,
    version: String,
    statement: PeerBinding,
    swarm: Swarm<Behaviour>,
    rx: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
    listen: ListenAddrs,
    peers: PeerTable,
    states: HashMap<PeerId, PeerState>,
    scores: PeerScores,
    seen: Seen,
    verifier: VerifierHandle,
    verdicts: mpsc::Receiver<Verdict>,
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
                Some(v) = self.verdicts.recv() => self.on_verdict(v),
                _ = tick.tick() => self.on_tick(),
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
        self.states.keys().copied().collect()
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        p2p::lift_expired_bans(
            &mut self.scores,
            &mut self.swarm.behaviour_mut().gossipsub,
            now,
        );
        // The members' network is for members: a peer that has not proved it speaks for one
        // in time is dropped, and whatever it published meanwhile is refused.
        let late: Vec<PeerId> = self
            .states
            .iter()
            .filter(|(_, s)| {
                matches!(s.auth, Auth::Pending { since, .. } if now.saturating_duration_since(since) >= BINDING_GRACE)
            })
            .map(|(p, _)| *p)
            .collect();
        for peer in late {
            tracing::info!(%peer, "peer did not prove it speaks for a member in time; disconnecting");
            self.make_stranger(peer);
        }
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

    /// Keeps the status view and the gauges in step with `states`.
    fn update_peers(&mut self, peer: PeerId, addr: Option<Multiaddr>) {
        let member = match self.states.get(&peer).map(|s| &s.auth) {
            Some(Auth::Member(m)) => Some(*m),
            _ => None,
        };
        let connected = self.states.contains_key(&peer);
        if let Ok(mut p) = self.peers.lock() {
            if !connected {
                p.remove(&peer);
            } else if let Some(addr) = addr {
                p.insert(peer, (addr, member));
            } else if let Some(entry) = p.get_mut(&peer) {
                entry.1 = member;
            }
        }
        self.metrics.peers.set(self.states.len() as i64);
        let members = self
            .states
            .values()
            .filter(|s| matches!(s.auth, Auth::Member(_)))
            .count();
        self.metrics.member_peers.set(members as i64);
    }

    fn send_statement(&mut self, peer: PeerId) {
        let statement = self.statement.clone();
        self.swarm
            .behaviour_mut()
            .binding
            .send_request(&peer, statement);
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        let Some(ev) = p2p::common_event(
            &mut self.swarm,
            &self.scores,
            &self.listen,
            ev,
            "bridge p2p listening",
        ) else {
            return;
        };
        match ev {
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                if self.states.contains_key(&peer_id) {
                    return;
                }
                let addr = endpoint.get_remote_address().clone();
                tracing::info!(peer = %peer_id, %addr, "peer connected");
                self.states.insert(
                    peer_id,
                    PeerState {
                        auth: Auth::Pending {
                            since: Instant::now(),
                            verifying: false,
                            held: Vec::new(),
                        },
                        retries: 0,
                    },
                );
                self.update_peers(peer_id, Some(addr));
                self.send_statement(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                if let Some(state) = self.states.remove(&peer_id) {
                    tracing::info!(peer = %peer_id, "peer disconnected");
                    if let Auth::Pending { held, .. } = state.auth {
                        for (id, _) in held {
                            self.report(&id, &peer_id, MessageAcceptance::Ignore);
                        }
                    }
                }
                self.update_peers(peer_id, None);
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
            SwarmEvent::Behaviour(BehaviourEvent::Binding(ev)) => self.on_binding_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            _ => {}
        }
    }

    fn on_binding_event(&mut self, ev: request_response::Event<PeerBinding, BindingAck>) {
        match Exchange::from(ev) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .binding
                    .send_response(channel, BindingAck);
                // One statement per connection is checked: more would be recoveries for free.
                let Some(PeerState {
                    auth: Auth::Pending { verifying, .. },
                    ..
                }) = self.states.get_mut(&peer)
                else {
                    return;
                };
                if *verifying {
                    return;
                }
                if self.verifier.try_binding(peer, request) {
                    *verifying = true;
                } else {
                    // The grace runs out and a reconnection tries again.
                    tracing::debug!(%peer, "statement queue full");
                    self.metrics.dropped("verify_queue_full", 1);
                }
            }
            Exchange::OutboundFailure { peer, error } => {
                if matches!(error, OutboundFailure::UnsupportedProtocols) {
                    tracing::info!(%peer, "peer does not speak the member protocol; disconnecting");
                    self.make_stranger(peer);
                    return;
                }
                let Some(state) = self.states.get_mut(&peer) else {
                    return;
                };
                if state.retries < BINDING_RETRIES {
                    state.retries += 1;
                    tracing::debug!(%peer, %error, "our statement was not delivered; again");
                    self.send_statement(peer);
                } else {
                    tracing::debug!(%peer, %error, "our statement was not delivered; giving up");
                }
            }
            Exchange::InboundFailure { peer, error } => {
                tracing::debug!(%peer, %error, "inbound statement failed");
            }
            Exchange::Response { .. } | Exchange::ResponseSent => {}
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

    /// Lowers the peer's score; a peer that reaches the ban score is blacklisted and dropped.
    fn penalize(&mut self, peer: PeerId, points: i32, reason: &'static str) {
        let now = Instant::now();
        let was_banned = self.scores.is_banned(&peer, now);
        if self.scores.penalize(peer, points, now) {
            if !was_banned {
                tracing::warn!(%peer, reason, ban_secs = self.scores.ban_duration().as_secs(), "peer banned");
                self.metrics.peers_banned.inc();
            }
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        } else {
            tracing::debug!(%peer, score = self.scores.score(&peer), reason, "peer penalised");
        }
    }

    /// Refuses a message a peer published without being a member peer.
    fn refuse_stranger(&mut self, peer: PeerId, id: &MessageId) {
        self.report(id, &peer, MessageAcceptance::Reject);
        self.metrics.dropped("not_member_peer", 1);
        self.metrics.error("invalid_attestation");
        self.penalize(peer, penalty::NOT_MEMBER, "not_member_peer");
    }

    /// Marks the peer a stranger, drops what it published meanwhile (unforwarded), penalises it
    /// once and disconnects it. Once, not per held message: an honest member whose statement
    /// came late (a full verifier queue, a burst of relayed bundles right after connecting)
    /// is only disconnected and redials; a stranger that keeps coming back is banned after a
    /// few connections.
    fn make_stranger(&mut self, peer: PeerId) {
        let held = match self.states.get_mut(&peer) {
            Some(state) => match std::mem::replace(&mut state.auth, Auth::Stranger) {
                Auth::Pending { held, .. } => held,
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        self.metrics.dropped("not_member_peer", held.len() as u64);
        for (id, _) in held {
            self.report(&id, &peer, MessageAcceptance::Ignore);
        }
        self.metrics.error("invalid_attestation");
        self.penalize(peer, penalty::NOT_MEMBER, "not_member_peer");
        self.update_peers(peer, None);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Refuses invalid gossip from `source` (an honest member forwards only what it
    /// verified, so whoever sent it is hostile or broken): penalised and dropped (bootstrap
    /// redial brings a member back).
    fn refuse_invalid(&mut self, source: PeerId, id: &MessageId, error: &dyn std::fmt::Display) {
        tracing::warn!(peer = %source, %error, "invalid attestation gossip refused; disconnecting the peer");
        self.metrics.error("invalid_attestation");
        self.metrics.dropped("invalid", 1);
        self.report(id, &source, MessageAcceptance::Reject);
        self.penalize(source, penalty::INVALID, "invalid_attestation");
        let _ = self.swarm.disconnect_peer_id(source);
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        match self.states.get_mut(&source).map(|s| &mut s.auth) {
            Some(Auth::Member(_)) => self.on_member_gossip(source, id, message),
            Some(Auth::Pending { held, .. }) if held.len() < HELD_PER_PEER => {
                held.push((id, message));
            }
            Some(Auth::Pending { .. }) => {
                tracing::info!(peer = %source, "peer publishes before proving membership; disconnecting");
                self.report(&id, &source, MessageAcceptance::Ignore);
                self.metrics.dropped("not_member_peer", 1);
                self.make_stranger(source);
            }
            Some(Auth::Stranger) => {
                self.refuse_stranger(source, &id);
                let _ = self.swarm.disconnect_peer_id(source);
            }
            // Gone already: gossipsub forgets it.
            None => self.report(&id, &source, MessageAcceptance::Ignore),
        }
    }

    /// Gossip from a member peer: cheap checks here, recoveries on the verifier.
    fn on_member_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        // The author's bound member, when the author is connected to us; a message a member
        // forwards from a peer we do not know is taken on that member's word (it checked).
        let author = message.source.filter(|a| *a != source);
        let author_auth = message
            .source
            .and_then(|a| self.states.get(&a))
            .map(|s| &s.auth);
        let bound = match author_auth {
            Some(Auth::Member(m)) => Some(*m),
            Some(Auth::Stranger) => {
                // A stranger's message relayed by a member: refused, the relay not judged.
                self.report(&id, &source, MessageAcceptance::Reject);
                self.metrics.dropped("not_member_peer", 1);
                return;
            }
            _ => None,
        };
        let gossip = match AttestationGossip::decode_bytes(&message.data) {
            Ok(g) => g,
            Err(e) => return self.refuse_invalid(source, &id, &e),
        };
        let n = gossip.attestations.len();
        if n == 0 || n > MAX_ATTESTATIONS_PER_GOSSIP {
            let e = crate::attest::AttestationError::BadCount(n);
            return self.refuse_invalid(source, &id, &e);
        }
        if !self.federation.members.contains(&gossip.member) {
            let e = crate::attest::AttestationError::NotMember(gossip.member);
            return self.refuse_invalid(source, &id, &e);
        }
        // Members gossip only their own signatures, so a bundle names its author's member.
        if let Some(m) = bound.filter(|m| *m != gossip.member) {
            if author.is_some() {
                self.report(&id, &source, MessageAcceptance::Reject);
                self.metrics.dropped("wrong_author", 1);
                return;
            }
            let e = format!(
                "bundle names member {} but its author speaks for {m}",
                gossip.member
            );
            return self.refuse_invalid(source, &id, &e);
        }
        let now = Instant::now();
        let member = gossip.member;
        let (fresh, keys): (Vec<_>, Vec<_>) = gossip
            .attestations
            .into_iter()
            .map(|a| {
                let k = a.content_key(&member);
                (a, k)
            })
            .filter(|(_, k)| !self.seen.contains(k, now))
            .unzip();
        if fresh.is_empty() {
            // Verified a moment ago: not recovered again, not forwarded again.
            self.metrics.dropped("duplicate", 1);
            return self.report(&id, &source, MessageAcceptance::Ignore);
        }
        // Marked seen while queued, so copies arriving meanwhile are not queued too.
        for k in &keys {
            self.seen.insert(*k, now);
        }
        let job = BundleJob {
            id,
            source,
            gossip: AttestationGossip {
                member,
                attestations: fresh,
                sent_ms: gossip.sent_ms,
            },
            keys,
        };
        if let Err(job) = self.verifier.try_bundle(job) {
            // Dropped without judging anyone; the sender's re-gossip brings it again.
            for k in &job.keys {
                self.seen.remove(k);
            }
            self.metrics.dropped("verify_queue_full", 1);
            self.report(&job.id, &job.source, MessageAcceptance::Ignore);
        }
    }

    fn on_verdict(&mut self, v: Verdict) {
        match v {
            Verdict::Binding { peer, result } => self.on_binding_verdict(peer, result),
            Verdict::Bundle { job, result } => match result {
                Ok(message_hashes) => {
                    tracing::debug!(peer = %job.source, attestations = message_hashes.len(), member = %job.gossip.member, "attestations received");
                    let (id, source, keys) = (job.id, job.source, job.keys);
                    let accepted = self.inbound.try_send(Inbound {
                        gossip: job.gossip,
                        message_hashes,
                    });
                    if accepted.is_ok() {
                        self.report(&id, &source, MessageAcceptance::Accept);
                    } else {
                        // Full: drop it without judging the peer; re-gossip brings it again.
                        for k in &keys {
                            self.seen.remove(k);
                        }
                        self.metrics.dropped("intake_full", 1);
                        self.report(&id, &source, MessageAcceptance::Ignore);
                    }
                }
                Err(e) => {
                    for k in &job.keys {
                        self.seen.remove(k);
                    }
                    self.refuse_invalid(job.source, &job.id, &e);
                }
            },
        }
    }

    fn on_binding_verdict(
        &mut self,
        peer: PeerId,
        result: std::result::Result<Address, crate::binding::BindingError>,
    ) {
        let Some(state) = self.states.get_mut(&peer) else {
            return;
        };
        match result {
            Ok(member) => {
                let held = match std::mem::replace(&mut state.auth, Auth::Member(member)) {
                    Auth::Pending { held, .. } => held,
                    _ => Vec::new(),
                };
                tracing::info!(%peer, %member, "peer proved it speaks for a member");
                self.update_peers(peer, None);
                for (id, message) in held {
                    self.on_member_gossip(peer, id, message);
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "member statement refused; disconnecting");
                self.metrics.error("bad_peer_binding");
                self.make_stranger(peer);
                self.penalize(peer, penalty::BAD_BINDING, "bad_peer_binding");
            }
        }
    }
}
