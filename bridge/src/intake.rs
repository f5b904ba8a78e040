//! The attestation intake: files what the network verified into the store, one durable
//! transaction per batch received, and holds attestations of transfers this member has not
//! recorded yet (its node may be a block behind the signer's) in memory, bounded per member
//! and for a limited time, until the watcher records them. Disk only ever holds attestations
//! of transfers the member's own node showed it, so a member signing garbage cannot fill it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use primitives::types::Address;
use tokio::sync::{mpsc, Notify};

use crate::error::Result;
use crate::network::Inbound;
use crate::status::Shared;
use crate::store::{durably, HeldAttestation};

/// Most early attestations held per member; the oldest go first (re-gossip repeats them).
pub const EARLY_PER_MEMBER: usize = 20_000;
/// How long an early attestation is held before it is dropped (re-gossip repeats it).
pub const EARLY_TTL: Duration = Duration::from_secs(600);
/// How often held attestations are offered to the store again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Attestations that arrived before the transfer was recorded here.
#[derive(Debug, Default)]
pub struct Early {
    by_member: HashMap<Address, VecDeque<(Instant, HeldAttestation)>>,
}

impl Early {
    /// Holds `items`, each with the time it first arrived, dropping the oldest of a member
    /// beyond [`EARLY_PER_MEMBER`].
    pub fn hold(&mut self, items: Vec<(Instant, HeldAttestation)>) {
        for (at, a) in items {
            let q = self.by_member.entry(a.member).or_default();
            if q.len() >= EARLY_PER_MEMBER {
                q.pop_front();
            }
            q.push_back((at, a));
        }
    }

    /// Takes everything held for less than [`EARLY_TTL`] (with its first arrival time, so a
    /// retry does not extend its life), forgetting the rest.
    pub fn take(&mut self, now: Instant) -> Vec<(Instant, HeldAttestation)> {
        let mut out = Vec::new();
        for (_, q) in self.by_member.drain() {
            out.extend(
                q.into_iter()
                    .filter(|(at, _)| now.saturating_duration_since(*at) < EARLY_TTL),
            );
        }
        out
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.by_member.values().map(VecDeque::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_member.values().all(VecDeque::is_empty)
    }
}

fn file(
    shared: &Shared,
    early: &mut Early,
    items: Vec<(Instant, HeldAttestation)>,
    wakes: &[Arc<Notify>],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let plain: Vec<HeldAttestation> = items.iter().map(|(_, a)| *a).collect();
    let filed = durably(|| shared.store.put_attestations(&plain))?;
    for a in filed.conflicting.iter().filter_map(|i| plain.get(*i)) {
        // Honest members never sign two messages for one id (the id commits to the
        // transfer): this member equivocates, or its key is in other hands.
        tracing::error!(member = %a.member, peg_id = %a.id, message = %a.message_hash, "member attested a second, different message for this id; refused (its first one is kept)");
        shared.metrics.error("member_equivocation");
    }
    if filed.new > 0 {
        tracing::debug!(
            new = filed.new,
            early = filed.unknown.len(),
            "attestations stored"
        );
        wakes.iter().for_each(|w| w.notify_one());
    }
    early.hold(
        filed
            .unknown
            .iter()
            .filter_map(|i| items.get(*i).copied())
            .collect(),
    );
    Ok(())
}

/// Runs until the network's channel closes. Woken by arrivals, by the workers when they
/// record new transfers ([`Shared::recorded`]), and every [`RETRY_INTERVAL`] while anything
/// is held.
pub async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Inbound>,
    wakes: Vec<Arc<Notify>>,
) -> Result<()> {
    let recorded = shared.recorded.clone();
    let mut early = Early::default();
    let mut retry = tokio::time::interval(RETRY_INTERVAL);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some(first) = got else { return Ok(()) };
                // Everything that arrived together goes in one durable transaction: a burst
                // of transfers brings thousands of attestations.
                let mut batch = vec![first];
                while batch.len() < 64 {
                    match rx.try_recv() {
                        Ok(a) => batch.push(a),
                        Err(_) => break,
                    }
                }
                let now = Instant::now();
                let items = batch
                    .iter()
                    .flat_map(|a| {
                        a.message_hashes.iter().zip(&a.gossip.attestations).map(|(h, att)| {
                            (now, HeldAttestation {
                                id: att.message.id,
                                message_hash: *h,
                                member: a.gossip.member,
                                signature: att.signature,
                            })
                        })
                    })
                    .collect();
                file(&shared, &mut early, items, &wakes)?;
            }
            _ = recorded.notified(), if !early.is_empty() => {
                let held = early.take(Instant::now());
                file(&shared, &mut early, held, &wakes)?;
            }
            _ = retry.tick(), if !early.is_empty() => {
                let held = early.take(Instant::now());
                file(&shared, &mut early, held, &wakes)?;
            }
        }
        shared.metrics.early_attestations.set(early.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::Signature;
    use primitives::types::Hash;

    fn att(member: u8, id: u8) -> HeldAttestation {
        HeldAttestation {
            id: Hash([id; 32]),
            message_hash: Hash([id; 32]),
            member: Address([member; 20]),
            signature: Signature([member; 65]),
        }
    }

    #[test]
    fn a_members_second_message_for_an_id_is_refused_and_counted() {
        use crate::store::{Cursor, Store};
        use primitives::peg::Direction;
        use primitives::types::Amount;

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let event = crate::store::tests::event(7, 1);
        let at = Cursor {
            height: 1,
            hash: Hash([1; 32]),
        };
        store
            .commit_scan(Direction::MainToSide, at, &[event], 100)
            .expect("scan");
        let (net, _gossip) = crate::network::NetHandle::detached();
        let shared = Shared {
            store: Arc::new(store),
            federation: crate::attest::Federation {
                domain: Hash([9; 32]),
                members: vec![Address([2; 20])],
                threshold: 1,
                peg_out_fee: Amount(1),
                main_confirmations: 1,
                side_confirmations: 1,
            },
            member: Address([2; 20]),
            net,
            metrics: Arc::new(crate::metrics::Metrics::new()),
            board: std::sync::Mutex::default(),
            recorded: Arc::new(Notify::new()),
        };
        let now = Instant::now();
        let mut early = Early::default();
        let mut second = att(3, 7);
        second.message_hash = Hash([70; 32]);
        file(
            &shared,
            &mut early,
            vec![(now, att(3, 7)), (now, second)],
            &[],
        )
        .expect("filed");
        assert_eq!(
            shared
                .store
                .attestations(&Hash([7; 32]))
                .expect("get")
                .len(),
            1
        );
        assert!(shared
            .store
            .attestations(&Hash([70; 32]))
            .expect("get")
            .is_empty());
        assert!(early.is_empty(), "a refused attestation is not held either");
        let metrics = shared.metrics.encode();
        assert!(
            metrics.contains("bridge_errors_total{kind=\"member_equivocation\"} 1"),
            "{metrics}"
        );
    }

    #[test]
    fn early_attestations_are_bounded_per_member_and_expire() {
        let mut e = Early::default();
        let t0 = Instant::now();
        let at = |items: Vec<HeldAttestation>, t| items.into_iter().map(|a| (t, a)).collect();
        // A member flooding past its bound loses its oldest; another member keeps its own.
        e.hold(at(
            (0..EARLY_PER_MEMBER + 5).map(|i| att(1, i as u8)).collect(),
            t0,
        ));
        e.hold(at(vec![att(2, 9)], t0));
        assert_eq!(e.len(), EARLY_PER_MEMBER + 1);
        let taken = e.take(t0);
        assert_eq!(taken.len(), EARLY_PER_MEMBER + 1);
        assert!(e.is_empty(), "taking empties the buffer");
        assert!(taken.contains(&(t0, att(2, 9))));
        // Retried and held again, an attestation keeps its first arrival time: it expires
        // after the TTL however often it was offered to the store.
        e.hold(at(vec![att(3, 1)], t0));
        let again = e.take(t0 + EARLY_TTL / 2);
        assert_eq!(again, vec![(t0, att(3, 1))]);
        e.hold(again);
        assert!(e.take(t0 + EARLY_TTL + Duration::from_secs(1)).is_empty());
    }
}
