//! The swarm every Twinpeg process builds: TCP (+ DNS), noise, yamux, and the gossipsub
//! settings all share; where it listens; redialing bootstrap peers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::gossipsub::{self, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};

use crate::NetworkError;

/// Gossipsub settings every Twinpeg swarm uses: strict signing, messages held until the
/// application validates them, and ids by content hash so one payload relayed by several
/// peers is one message.
pub fn gossipsub_config(max_transmit_size: usize) -> Result<gossipsub::Config, NetworkError> {
    gossipsub::ConfigBuilder::default()
        .max_transmit_size(max_transmit_size)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .heartbeat_interval(Duration::from_millis(500))
        .message_id_fn(|m: &gossipsub::Message| {
            MessageId::from(primitives::crypto::keccak256(&m.data).0.to_vec())
        })
        .build()
        .map_err(|e| NetworkError::Build(e.to_string()))
}

/// Builds a tokio swarm over TCP (no Nagle delay), noise and yamux, with DNS resolution of
/// `/dns4`, `/dns6` and `/dns` addresses through the system resolver (so peers can be named
/// by host name, e.g. a compose service), running the behaviour `behaviour` makes from the
/// identity key.
pub fn build_tcp_swarm<B: NetworkBehaviour>(
    keypair: Keypair,
    behaviour: impl FnOnce(&Keypair) -> Result<B, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<Swarm<B>, NetworkError> {
    let build = |e: String| NetworkError::Build(e);
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build(e.to_string()))?
        .with_dns()
        .map_err(|e| build(format!("reading the system DNS configuration: {e}")))?
        .with_behaviour(behaviour)
        .map_err(|e| build(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build())
}

/// The addresses a swarm listens on: recorded by its event loop, read through its handle.
#[derive(Debug, Clone, Default)]
pub struct ListenAddrs(Arc<Mutex<Vec<Multiaddr>>>);

impl ListenAddrs {
    /// Records an address the swarm reported listening on.
    pub fn push(&self, address: Multiaddr) {
        if let Ok(mut l) = self.0.lock() {
            l.push(address);
        }
    }

    /// The addresses so far, each with `/p2p/<peer_id>` appended so others can dial it as is.
    pub fn with_peer_id(&self, peer_id: PeerId) -> Vec<Multiaddr> {
        let addrs = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        addrs
            .into_iter()
            .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(peer_id)))
            .collect()
    }

    /// [`Self::with_peer_id`] once there is one: an address is known only after the listener
    /// is up, which takes a moment after start. Empty if none comes within 5 s.
    pub async fn wait_with_peer_id(&self, peer_id: PeerId) -> Vec<Multiaddr> {
        for _ in 0..200 {
            let addrs = self.with_peer_id(peer_id);
            if !addrs.is_empty() {
                return addrs;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Vec::new()
    }
}

/// A bootstrap address, redialed with exponential backoff while it is not connected.
#[derive(Debug, Clone)]
pub struct Redial {
    /// The address.
    pub addr: Multiaddr,
    next: Instant,
    delay: Duration,
    first_delay: Duration,
    max_delay: Duration,
}

impl Redial {
    /// Due at once; then waits `first_delay`, doubling each time up to `max_delay`.
    pub fn new(addr: Multiaddr, first_delay: Duration, max_delay: Duration) -> Self {
        Self {
            addr,
            next: Instant::now(),
            delay: first_delay,
            first_delay,
            max_delay,
        }
    }

    /// The peer the address names (`/p2p/<id>`), if it names one.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.addr.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        })
    }

    /// Whether to dial now, given whether the peer is `connected`. A dial moves the next one
    /// back by the current delay and doubles it; a connection resets the delay.
    pub fn due(&mut self, connected: bool, now: Instant) -> bool {
        if connected {
            self.delay = self.first_delay;
            return false;
        }
        if self.next > now {
            return false;
        }
        self.next = now + self.delay;
        self.delay = (self.delay * 2).min(self.max_delay);
        true
    }
}

/// What every Twinpeg event loop does alike with a swarm event: records a new listen address
/// (logged as `what`), and refuses a connection from a banned peer. Returns the event when the
/// caller has more to do with it (a connection it let in included).
pub fn common_event<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut libp2p::Swarm<B>,
    scores: &crate::PeerScores,
    listen: &ListenAddrs,
    ev: libp2p::swarm::SwarmEvent<B::ToSwarm>,
    what: &'static str,
) -> Option<libp2p::swarm::SwarmEvent<B::ToSwarm>> {
    use libp2p::swarm::SwarmEvent;
    match ev {
        SwarmEvent::NewListenAddr { address, .. } => {
            tracing::info!(%address, peer_id = %swarm.local_peer_id(), "{what}");
            listen.push(address);
            None
        }
        SwarmEvent::ConnectionEstablished { peer_id, .. }
            if crate::refuse_if_banned(swarm, scores, peer_id, std::time::Instant::now()) =>
        {
            None
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redial_backs_off_and_resets_on_connection() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("multiaddr");
        let mut r = Redial::new(addr, Duration::from_millis(100), Duration::from_millis(300));
        let t0 = Instant::now();
        assert!(r.due(false, t0));
        assert!(!r.due(false, t0 + Duration::from_millis(99)));
        assert!(r.due(false, t0 + Duration::from_millis(100)));
        // The delay doubled to 200 ms, so the next dial is due at 300 ms.
        assert!(!r.due(false, t0 + Duration::from_millis(299)));
        assert!(r.due(false, t0 + Duration::from_millis(300)));
        // Capped at 300 ms from here on; a connection brings it back to 100 ms.
        assert!(!r.due(true, t0 + Duration::from_millis(2000)));
        assert!(r.due(false, t0 + Duration::from_millis(2000)));
        assert!(r.due(false, t0 + Duration::from_millis(2100)));
        assert_eq!(r.peer_id(), None);
    }
}
