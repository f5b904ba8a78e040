//! The gossip verifier: signature recoveries for the members' network, off its event loop.
//! One task takes jobs from two bounded queues (peer statements first: they are few, one per
//! connection, and gossip from a peer waits on its statement), runs each job's recoveries on
//! one blocking thread at a time, and reports back on a bounded channel. The event loop
//! never waits for it: when a queue is full the job is dropped and counted, and re-gossip
//! brings what was honest again.

use std::sync::Arc;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use primitives::types::{Address, Hash};
use tokio::sync::mpsc;

use crate::attest::{AttestationError, AttestationGossip, Federation};
use crate::binding::{BindingError, PeerBinding};
use crate::metrics::Metrics;

/// Bundles waiting for verification: at most 64 x 256 attestations (a few seconds of
/// recoveries on one core) queue behind each other; beyond that gossip is dropped.
pub const BUNDLE_QUEUE: usize = 64;
/// Peer statements waiting for verification.
pub const BINDING_QUEUE: usize = 64;

/// A gossiped bundle from an authenticated member peer, reduced to the attestations not
/// seen before.
#[derive(Debug, Clone)]
pub struct BundleJob {
    /// The gossip message, to report its validation result.
    pub id: MessageId,
    /// The peer it came from.
    pub source: PeerId,
    /// The claimed member and the new attestations.
    pub gossip: AttestationGossip,
    /// The content keys of those attestations (marked seen while they are verified).
    pub keys: Vec<Hash>,
}

/// What the verifier found.
#[derive(Debug)]
pub enum Verdict {
    /// A peer's statement.
    Binding {
        /// The peer that sent it.
        peer: PeerId,
        /// The member it speaks for, or why not.
        result: Result<Address, BindingError>,
    },
    /// A bundle.
    Bundle {
        /// The job as queued.
        job: BundleJob,
        /// The message hashes of its attestations, in order, or why it is refused.
        result: Result<Vec<Hash>, AttestationError>,
    },
}

/// The event loop's side of the verifier's queues.
#[derive(Debug, Clone)]
pub struct VerifierHandle {
    bindings: mpsc::Sender<(PeerId, PeerBinding)>,
    bundles: mpsc::Sender<BundleJob>,
}

impl VerifierHandle {
    /// Queues a peer's statement; false if the queue is full.
    pub fn try_binding(&self, peer: PeerId, binding: PeerBinding) -> bool {
        self.bindings.try_send((peer, binding)).is_ok()
    }

    /// Queues a bundle; gives it back if the queue is full (boxed: the refusal is rare).
    pub fn try_bundle(&self, job: BundleJob) -> Result<(), Box<BundleJob>> {
        self.bundles
            .try_send(job)
            .map_err(|e| Box::new(e.into_inner()))
    }
}

/// The verifier task, not yet running.
pub struct Verifier {
    federation: Arc<Federation>,
    bindings: mpsc::Receiver<(PeerId, PeerBinding)>,
    bundles: mpsc::Receiver<BundleJob>,
    verdicts: mpsc::Sender<Verdict>,
    metrics: Arc<Metrics>,
}

/// The verifier's queues, the task, and the channel its verdicts arrive on.
pub fn new(
    federation: Arc<Federation>,
    metrics: Arc<Metrics>,
) -> (VerifierHandle, Verifier, mpsc::Receiver<Verdict>) {
    let (btx, brx) = mpsc::channel(BINDING_QUEUE);
    let (jtx, jrx) = mpsc::channel(BUNDLE_QUEUE);
    let (vtx, vrx) = mpsc::channel(BUNDLE_QUEUE + BINDING_QUEUE);
    (
        VerifierHandle {
            bindings: btx,
            bundles: jtx,
        },
        Verifier {
            federation,
            bindings: brx,
            bundles: jrx,
            verdicts: vtx,
            metrics,
        },
        vrx,
    )
}

impl Verifier {
    /// Runs until the event loop drops its handle or its verdict channel.
    pub async fn run(mut self) {
        loop {
            // Statements first: a member's gossip is held until its statement is checked.
            let verdict = tokio::select! {
                biased;
                Some((peer, binding)) = self.bindings.recv() => {
                    let fed = self.federation.clone();
                    self.metrics.gossip_recoveries.inc();
                    let result = tokio::task::spawn_blocking(move || binding.verify(&fed, &peer)).await;
                    match result {
                        Ok(result) => Verdict::Binding { peer, result },
                        Err(e) => {
                            tracing::error!(error = %e, "statement verification panicked");
                            continue;
                        }
                    }
                }
                Some(job) = self.bundles.recv() => {
                    let fed = self.federation.clone();
                    self.metrics.gossip_recoveries.inc_by(job.gossip.attestations.len() as u64);
                    let result = tokio::task::spawn_blocking(move || {
                        let result = fed.verify(&job.gossip);
                        (job, result)
                    })
                    .await;
                    match result {
                        Ok((job, result)) => Verdict::Bundle { job, result },
                        Err(e) => {
                            // Nothing to report for the message: gossipsub forgets it unvalidated.
                            tracing::error!(error = %e, "bundle verification panicked");
                            continue;
                        }
                    }
                }
                else => return,
            };
            if self.verdicts.send(verdict).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::Attestation;
    use primitives::crypto::SecretKey;
    use primitives::peg::{Direction, PegMessage};
    use primitives::types::Amount;

    fn setup() -> (Vec<SecretKey>, Arc<Federation>) {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let fed = Federation::for_tests(&keys, 2);
        (keys, Arc::new(fed))
    }

    fn job(key: &SecretKey, fed: &Federation, n: usize) -> BundleJob {
        let attestations = (0..n)
            .map(|i| {
                let message = PegMessage {
                    domain: fed.domain,
                    direction: Direction::MainToSide,
                    id: Hash([i as u8 + 1; 32]),
                    recipient: key.address(),
                    amount: Amount(5),
                };
                Attestation {
                    signature: key.sign_prehash(&message.signing_hash()),
                    message,
                }
            })
            .collect();
        BundleJob {
            id: MessageId::from(vec![n as u8]),
            source: PeerId::random(),
            gossip: AttestationGossip {
                member: key.address(),
                attestations,
                sent_ms: 1,
            },
            keys: vec![],
        }
    }

    #[tokio::test]
    async fn verifies_off_the_caller_and_refuses_beyond_its_queues() {
        let (keys, fed) = setup();
        let metrics = Arc::new(Metrics::new());
        let (handle, verifier, mut verdicts) = new(fed.clone(), metrics.clone());
        // Not running yet: the queues fill, and the job beyond them comes back at once.
        for _ in 0..BUNDLE_QUEUE {
            assert!(handle.try_bundle(job(&keys[0], &fed, 1)).is_ok());
        }
        assert!(handle.try_bundle(job(&keys[0], &fed, 1)).is_err());
        let peer = PeerId::random();
        assert!(handle.try_binding(peer, PeerBinding::sign(&keys[1], fed.domain, &peer)));
        let task = tokio::spawn(verifier.run());
        // The statement jumps the queue of bundles.
        match verdicts.recv().await {
            Some(Verdict::Binding { peer: p, result }) => {
                assert_eq!(p, peer);
                assert_eq!(result, Ok(keys[1].address()));
            }
            other => panic!("expected the statement first, got {other:?}"),
        }
        for _ in 0..BUNDLE_QUEUE {
            match verdicts.recv().await {
                Some(Verdict::Bundle { result, .. }) => assert!(result.is_ok()),
                other => panic!("expected a bundle, got {other:?}"),
            }
        }
        // A forged bundle is refused; every recovery is counted.
        let mut forged = job(&keys[0], &fed, 2);
        forged.gossip.member = keys[2].address();
        assert!(handle.try_bundle(forged).is_ok());
        match verdicts.recv().await {
            Some(Verdict::Bundle { result, .. }) => {
                assert!(matches!(result, Err(AttestationError::BadSignature { .. })))
            }
            other => panic!("expected a bundle, got {other:?}"),
        }
        assert_eq!(metrics.gossip_recoveries.get(), 1 + BUNDLE_QUEUE as u64 + 2);
        drop(handle);
        task.await
            .expect("the verifier stops when its handle is dropped");
    }
}
