//! Misbehaviour scores and bans by peer id.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{PeerId, Swarm};

/// A peer is banned once its score falls to this.
pub const BAN_SCORE: i32 = -100;

/// Misbehaviour scores and bans by peer id, shared by the nodes' and the bridge members'
/// networks: each offence lowers a peer's score, and a peer at or below [`BAN_SCORE`] is
/// banned for the ban duration (every further offence restarts it). Time is passed in, so
/// the rules are tested without a runtime.
#[derive(Debug, Clone)]
pub struct PeerScores {
    scores: HashMap<PeerId, i32>,
    banned: HashMap<PeerId, Instant>,
    ban_duration: Duration,
}

impl PeerScores {
    /// No scores yet; bans last `ban_duration`.
    pub fn new(ban_duration: Duration) -> Self {
        Self {
            scores: HashMap::new(),
            banned: HashMap::new(),
            ban_duration,
        }
    }

    /// Lowers `peer`'s score by `points`; returns whether it is banned from `now` on (the
    /// caller then disconnects it).
    pub fn penalize(&mut self, peer: PeerId, points: i32, now: Instant) -> bool {
        let score = self.scores.entry(peer).or_insert(0);
        *score = score.saturating_sub(points);
        if *score <= BAN_SCORE {
            self.banned.insert(peer, now + self.ban_duration);
            return true;
        }
        false
    }

    /// The peer's score (0 is neutral).
    pub fn score(&self, peer: &PeerId) -> i32 {
        self.scores.get(peer).copied().unwrap_or(0)
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Forgets the bans over by `now`, with those peers' scores (a fresh start); returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, u)| **u <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &expired {
            self.banned.remove(p);
            self.scores.remove(p);
        }
        expired
    }

    /// How long a ban lasts.
    pub fn ban_duration(&self) -> Duration {
        self.ban_duration
    }
}

/// Lifts the bans over by `now` in `scores` and in `gossip`'s blacklist, logging each peer.
pub fn lift_expired_bans(scores: &mut PeerScores, gossip: &mut gossipsub::Behaviour, now: Instant) {
    for p in scores.expire(now) {
        gossip.remove_blacklisted_peer(&p);
        tracing::info!(peer = %p, "peer ban expired");
    }
}

/// Tells `gossip` what the application made of message `id` from `source`: forward it, drop
/// it, or drop it and count it against the sender. A message gossipsub no longer holds is no
/// error: there is nothing left to decide.
pub fn report(
    gossip: &mut gossipsub::Behaviour,
    id: &MessageId,
    source: &PeerId,
    acceptance: MessageAcceptance,
) {
    let _ = gossip.report_message_validation_result(id, source, acceptance);
}

/// Refuses a connection from a banned peer: disconnects `peer` if it is banned at `now`, and
/// says whether it was (the caller then ignores the connection).
pub fn refuse_if_banned<B: NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    scores: &PeerScores,
    peer: PeerId,
    now: Instant,
) -> bool {
    if !scores.is_banned(&peer, now) {
        return false;
    }
    tracing::debug!(%peer, "banned peer reconnected; disconnecting");
    let _ = swarm.disconnect_peer_id(peer);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_scores_ban_repeat_offenders_for_the_ban_duration() {
        let mut s = PeerScores::new(Duration::from_secs(60));
        let (bad, good) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        // Four offences of 25 reach the ban score; the fourth bans.
        for _ in 0..3 {
            assert!(!s.penalize(bad, 25, t0));
        }
        assert!(!s.is_banned(&bad, t0));
        assert!(s.penalize(bad, 25, t0));
        assert_eq!(s.score(&bad), BAN_SCORE);
        assert!(s.is_banned(&bad, t0 + Duration::from_secs(59)));
        assert!(!s.is_banned(&good, t0));
        // Another offence while banned restarts the ban.
        assert!(s.penalize(bad, 1, t0 + Duration::from_secs(30)));
        assert!(s.expire(t0 + Duration::from_secs(60)).is_empty());
        assert!(s.is_banned(&bad, t0 + Duration::from_secs(89)));
        // Once over, the ban and the score are forgotten.
        assert_eq!(s.expire(t0 + Duration::from_secs(90)), vec![bad]);
        assert!(!s.is_banned(&bad, t0 + Duration::from_secs(90)));
        assert_eq!(s.score(&bad), 0);
        // Scores saturate instead of overflowing.
        assert!(s.penalize(good, i32::MAX, t0));
        assert!(s.penalize(good, i32::MAX, t0));
        assert_eq!(s.score(&good), i32::MIN);
    }
}
