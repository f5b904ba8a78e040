//! One worker per direction: watch the source, sign at depth, gossip, aggregate the
//! members' signatures, and submit the payout (first the designated member, the others
//! after `submit_timeout`), until the destination shows it paid.
//!
//! Every decision is committed to the store before it is acted on: the signature before it
//! is gossiped, the submission attempt before the transaction is sent.

use std::sync::Arc;
use std::time::Duration;

use chain::crypto::SecretKey;
use chain::peg::{Direction, PegMessage};
use chain::rpc::types::PegPayout;
use chain::tx::{Fee, Transaction, TxKind};
use chain::types::{Amount, Bytes, ChainId};
use parity_scale_codec::Encode;
use tokio::sync::{watch, Notify};

use crate::attest::AttestationGossip;
use crate::error::Result;
use crate::metrics::{direction_name, ChainLabel, Metrics};
use crate::nodes::{NodeClient, SourceChain, SubmitOutcome};
use crate::status::Shared;
use crate::store::{EventRecord, EventState, StoreError, Submission};
use crate::watcher::Watcher;

/// Timing of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerTiming {
    /// Step at least this often without a head notification.
    pub poll_interval: Duration,
    /// Wait before a non-designated member submits, and between resubmissions (ms).
    pub submit_timeout_ms: u64,
    /// Re-gossip own attestations of unpaid transfers this often (ms).
    pub regossip_interval_ms: u64,
}

/// One direction's worker.
#[derive(Debug)]
pub struct Worker {
    /// Deposits or withdrawals.
    pub direction: Direction,
    /// Scans the source.
    pub watcher: Watcher,
    /// The member's node of the source chain.
    pub source: NodeClient,
    /// The member's node of the destination chain.
    pub destination: NodeClient,
    /// The destination's chain id (payouts are signed for it).
    pub destination_chain_id: ChainId,
    /// The member key.
    pub key: SecretKey,
    /// Store, federation, network, metrics, status board.
    pub shared: Arc<Shared>,
    /// Timing.
    pub timing: WorkerTiming,
    last_regossip_ms: u64,
}

impl Worker {
    /// A worker that has not stepped yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        direction: Direction,
        watcher: Watcher,
        source: NodeClient,
        destination: NodeClient,
        destination_chain_id: ChainId,
        key: SecretKey,
        shared: Arc<Shared>,
        timing: WorkerTiming,
    ) -> Self {
        Self {
            direction,
            watcher,
            source,
            destination,
            destination_chain_id,
            key,
            shared,
            timing,
            last_regossip_ms: 0,
        }
    }

    fn name(&self) -> &'static str {
        direction_name(self.direction)
    }

    /// Steps on every wake-up (new head, new attestation) or poll tick until shutdown. Node
    /// errors are retried; a store failure stops the worker (and the member).
    pub async fn run(
        mut self,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(self.timing.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => return Ok(()),
            }
            match self.step().await {
                Ok(()) => self
                    .shared
                    .update_board(self.direction, |b| b.last_error = None),
                Err(e) if e.is_transient() => {
                    tracing::warn!(direction = self.name(), error = %e, "worker step failed; retrying");
                    self.shared.metrics.error("rpc");
                    let msg = e.to_string();
                    self.shared
                        .update_board(self.direction, |b| b.last_error = Some(msg));
                }
                Err(e) => {
                    tracing::error!(direction = self.name(), error = %e, "worker stopped");
                    self.shared.metrics.error("fatal");
                    return Err(e);
                }
            }
        }
    }

    /// The message this member signs for an event, computed from its own node's view.
    pub fn message(&self, e: &EventRecord) -> PegMessage {
        PegMessage {
            domain: self.shared.federation.domain,
            direction: self.direction,
            id: e.id,
            recipient: e.recipient,
            amount: e.payout_amount,
        }
    }

    /// One pass over the pipeline.
    pub async fn step(&mut self) -> Result<()> {
        let now = chain::producer::now_ms();
        let label = Metrics::dir(self.direction);
        let w = self
            .watcher
            .step(&self.shared.store, &self.source, now)
            .await?;
        let m = &self.shared.metrics;
        m.events_seen.get_or_create(&label).inc_by(w.new_events);
        if w.rewound_to.is_some() {
            m.reorgs.get_or_create(&label).inc();
        }
        if !w.signed_reorged.is_empty() {
            m.error("signed_event_reorged");
        }
        m.scan_lag_blocks
            .get_or_create(&label)
            .set(w.head.number.saturating_sub(w.cursor.height) as i64);
        self.shared.update_board(self.direction, |b| {
            b.source_head = Some(w.head.number);
            b.cursor = Some(w.cursor.height);
        });
        for e in w.confirmed {
            self.sign_and_gossip(e, now).await?;
        }
        let dest_head = self.destination.head().await?;
        self.shared.update_board(self.direction, |b| {
            b.destination_head = Some(dest_head.number)
        });
        let regossip =
            now.saturating_sub(self.last_regossip_ms) >= self.timing.regossip_interval_ms;
        let open = self.shared.store.open_events(Some(self.direction))?;
        for e in open.into_iter().filter(|e| e.state == EventState::Signed) {
            self.advance(e, now, regossip).await?;
        }
        if regossip {
            self.last_regossip_ms = now;
            self.update_balance().await?;
        }
        let backlog = self.shared.store.open_events(Some(self.direction))?.len();
        self.shared
            .metrics
            .backlog
            .get_or_create(&label)
            .set(backlog as i64);
        Ok(())
    }

    async fn update_balance(&self) -> Result<()> {
        let acct = self.destination.account(self.shared.member).await?;
        let coins = acct.balance.0 as f64 / Amount::COIN as f64;
        self.shared
            .metrics
            .member_balance_coins
            .get_or_create(&ChainLabel {
                chain: self.destination.name.to_string(),
            })
            .set(coins);
        Ok(())
    }

    fn gossip(&self, message: PegMessage, signature: chain::crypto::Signature) {
        self.shared.net.publish(&AttestationGossip {
            message,
            member: self.shared.member,
            signature,
            sent_ms: chain::producer::now_ms(),
        });
    }

    fn mark_paid(&self, e: &EventRecord, payout: &PegPayout, now: u64) -> Result<()> {
        let rec = self.shared.store.update_event(&e.id, |r| {
            r.state = EventState::Paid;
            r.paid_ms = Some(now);
            r.payout_tx = payout.tx_hash;
        })?;
        let label = Metrics::dir(self.direction);
        self.shared.metrics.events_paid.get_or_create(&label).inc();
        if let Some(signed) = rec.and_then(|r| r.signed_ms) {
            self.shared
                .metrics
                .confirmation_to_payout_seconds
                .get_or_create(&label)
                .observe(now.saturating_sub(signed) as f64 / 1000.0);
        }
        tracing::info!(direction = self.name(), peg_id = %e.id, payout_block = payout.block_number, payout_tx = ?payout.tx_hash, submitter = ?payout.submitter, "transfer paid");
        Ok(())
    }

    async fn sign_and_gossip(&self, e: EventRecord, now: u64) -> Result<()> {
        // A member that lags behind the others may find the transfer paid already.
        if let Some(p) = self.destination.peg_transfer(e.id).await?.payout {
            return self.mark_paid(&e, &p, now);
        }
        let message = self.message(&e);
        let hash = message.signing_hash();
        let key = &self.key;
        match self
            .shared
            .store
            .sign_once(&e.id, hash, now, |h| key.sign_prehash(h))
        {
            Ok(sig) => {
                self.shared
                    .store
                    .put_attestation(&hash, &self.shared.member, &sig)?;
                self.shared
                    .metrics
                    .events_signed
                    .get_or_create(&Metrics::dir(self.direction))
                    .inc();
                tracing::info!(direction = self.name(), peg_id = %e.id, height = e.source_height, amount = %e.payout_amount, recipient = %e.recipient, "signed at depth");
                self.gossip(message, sig);
                Ok(())
            }
            Err(StoreError::AlreadySignedOther { id, signed, asked }) => {
                tracing::error!(direction = self.name(), peg_id = %id, %signed, %asked, "refusing to sign a second, different message for this id");
                self.shared.metrics.error("equivocation_refused");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn advance(&self, e: EventRecord, now: u64, regossip: bool) -> Result<()> {
        let store = &self.shared.store;
        let Some(own) = store.own_signature(&e.id)? else {
            return Ok(());
        };
        let message = self.message(&e);
        if own.message_hash != message.signing_hash() {
            tracing::error!(direction = self.name(), peg_id = %e.id, "stored signature is over another message; not submitting");
            self.shared.metrics.error("message_mismatch");
            return Ok(());
        }
        // The destination is asked about this transfer only now and then (re-gossip) or
        // right before submitting: a step's cost follows what is due, not the backlog.
        if regossip {
            if let Some(p) = self.destination.peg_transfer(e.id).await?.payout {
                return self.mark_paid(&e, &p, now);
            }
            self.gossip(message.clone(), own.signature);
        }
        let timeout = self.timing.submit_timeout_ms;
        let last = store.submission(&e.id)?;
        if last
            .as_ref()
            .is_some_and(|s| now.saturating_sub(s.at_ms) < timeout)
        {
            return Ok(());
        }
        let designated =
            self.shared.federation.designated_submitter(&e.id) == Some(self.shared.member);
        if last.is_none() && !designated {
            if let Some(r) = e.ready_ms {
                if now.saturating_sub(r) < timeout {
                    return Ok(());
                }
            }
        }
        let held = store.attestations(&own.message_hash)?;
        let Some(signatures) = self.shared.federation.aggregate(&message, &held) else {
            return Ok(());
        };
        let ready = match e.ready_ms {
            Some(r) => r,
            None => {
                store.update_event(&e.id, |r| r.ready_ms = Some(now))?;
                tracing::info!(direction = self.name(), peg_id = %e.id, signatures = held.len(), "threshold of signatures held");
                now
            }
        };
        let due = match &last {
            Some(_) => true,
            None => designated || now.saturating_sub(ready) >= timeout,
        };
        if due {
            if let Some(p) = self.destination.peg_transfer(e.id).await?.payout {
                return self.mark_paid(&e, &p, now);
            }
            self.submit(&e, signatures, last, designated, now).await?;
        }
        Ok(())
    }

    async fn submit(
        &self,
        e: &EventRecord,
        signatures: Vec<chain::crypto::Signature>,
        last: Option<Submission>,
        designated: bool,
        now: u64,
    ) -> Result<()> {
        let store = &self.shared.store;
        let attempts = last.as_ref().map_or(0, |s| s.attempts) + 1;
        // The attempt is durable before the transaction leaves: after a crash the member
        // waits a timeout and tries again, and the chain refuses a second payout of the id.
        store.put_submission(
            &e.id,
            &Submission {
                tx_hash: None,
                at_ms: now,
                attempts,
                outcome: "sending".into(),
            },
        )?;
        let nonce = self
            .destination
            .account(self.shared.member)
            .await?
            .pending_nonce;
        let (kind, fee) = match self.direction {
            Direction::MainToSide => (
                TxKind::Mint {
                    id: e.id,
                    recipient: e.recipient,
                    amount: e.payout_amount,
                    signatures,
                },
                Fee::Dynamic {
                    max_fee: Amount::ZERO,
                    max_tip: Amount::ZERO,
                },
            ),
            Direction::SideToMain => (
                TxKind::Release {
                    id: e.id,
                    recipient: e.recipient,
                    amount: e.payout_amount,
                    signatures,
                },
                Fee::Flat { fee: Amount::ZERO },
            ),
        };
        let tx = Transaction {
            chain_id: self.destination_chain_id,
            nonce,
            fee,
            kind,
        }
        .sign(&self.key);
        let outcome = self.destination.submit(Bytes(tx.encode())).await?;
        let tx_hash = match &outcome {
            SubmitOutcome::Accepted(h) => Some(*h),
            _ => None,
        };
        store.put_submission(
            &e.id,
            &Submission {
                tx_hash,
                at_ms: now,
                attempts,
                outcome: outcome.name(),
            },
        )?;
        match &outcome {
            SubmitOutcome::Accepted(h) => {
                self.shared
                    .metrics
                    .events_submitted
                    .get_or_create(&Metrics::dir(self.direction))
                    .inc();
                tracing::info!(direction = self.name(), peg_id = %e.id, tx = %h, nonce, attempts, designated, "payout submitted");
            }
            SubmitOutcome::IdUsed | SubmitOutcome::IdPending => {
                tracing::info!(direction = self.name(), peg_id = %e.id, outcome = %outcome.name(), "another member's payout got there first");
            }
            SubmitOutcome::Refused { code, message } => {
                tracing::warn!(direction = self.name(), peg_id = %e.id, code, %message, "payout refused by the destination node");
                self.shared.metrics.error("payout_refused");
            }
        }
        Ok(())
    }
}
