//! One worker per direction: watch the source, sign at depth, gossip, aggregate the
//! members' signatures, and submit the payout (first the designated member, the others
//! after `submit_timeout`), until the destination shows it paid.
//!
//! Every decision is committed to the store before it is acted on: the signature before it
//! is gossiped, the submission attempt before the transaction is sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chain::crypto::SecretKey;
use chain::peg::{Direction, PegMessage};
use chain::rpc::types::PegPayout;
use chain::tx::{Fee, Transaction, TxKind};
use chain::types::{Address, Amount, Bytes, ChainId, Hash};
use parity_scale_codec::Encode;
use tokio::sync::{watch, Notify};

use crate::attest::{Attestation, AttestationGossip};
use crate::error::Result;
use crate::metrics::{direction_name, ChainLabel, Metrics};
use crate::nodes::{NodeClient, SourceChain, SubmitOutcome};
use crate::status::Shared;
use crate::store::{durably, EventRecord, EventState, SignOutcome, Submission};
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
    last_destination_head: u64,
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
            last_destination_head: 0,
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
        if w.new_events > 0 {
            self.shared.recorded.notify_one();
        }
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
        if !w.confirmed.is_empty() {
            self.sign_and_gossip(&w.confirmed, now)?;
        }
        let dest_head = self.destination.head().await?;
        self.shared.update_board(self.direction, |b| {
            b.destination_head = Some(dest_head.number)
        });
        let regossip =
            now.saturating_sub(self.last_regossip_ms) >= self.timing.regossip_interval_ms;
        let open: Vec<EventRecord> = self
            .shared
            .store
            .open_events(Some(self.direction))?
            .into_iter()
            .filter(|e| e.state == EventState::Signed)
            .collect();
        let new_destination_block = dest_head.number != self.last_destination_head;
        self.last_destination_head = dest_head.number;
        self.advance(open, now, regossip, new_destination_block)
            .await?;
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

    fn gossip(&self, attestations: Vec<Attestation>) {
        let now = chain::producer::now_ms();
        for g in AttestationGossip::bundles(self.shared.member, attestations, now) {
            self.shared.net.publish(&g);
        }
    }

    fn mark_paid(&self, paid: &[(EventRecord, PegPayout)], now: u64) -> Result<()> {
        if paid.is_empty() {
            return Ok(());
        }
        let txs: HashMap<Hash, Option<Hash>> =
            paid.iter().map(|(e, p)| (e.id, p.tx_hash)).collect();
        let ids: Vec<Hash> = paid.iter().map(|(e, _)| e.id).collect();
        let recs = durably(|| {
            self.shared.store.update_events(&ids, |r| {
                r.state = EventState::Paid;
                r.paid_ms = Some(now);
                r.payout_tx = txs.get(&r.id).copied().flatten();
            })
        })?;
        let label = Metrics::dir(self.direction);
        let m = &self.shared.metrics;
        m.events_paid
            .get_or_create(&label)
            .inc_by(recs.len() as u64);
        for signed in recs.iter().filter_map(|r| r.signed_ms) {
            m.confirmation_to_payout_seconds
                .get_or_create(&label)
                .observe(now.saturating_sub(signed) as f64 / 1000.0);
        }
        for (e, p) in paid {
            tracing::info!(direction = self.name(), peg_id = %e.id, payout_block = p.block_number, payout_tx = ?p.tx_hash, submitter = ?p.submitter, "transfer paid");
        }
        Ok(())
    }

    /// Signs every event that reached depth in one durable transaction, then gossips the
    /// signatures in bundles.
    fn sign_and_gossip(&self, events: &[EventRecord], now: u64) -> Result<()> {
        let messages: Vec<PegMessage> = events.iter().map(|e| self.message(e)).collect();
        let items: Vec<(Hash, Hash)> = events
            .iter()
            .zip(&messages)
            .map(|(e, m)| (e.id, m.signing_hash()))
            .collect();
        let key = &self.key;
        let outcomes = durably(|| {
            self.shared
                .store
                .sign_many(&self.shared.member, &items, now, |h| key.sign_prehash(h))
        })?;
        let mut signed = Vec::with_capacity(events.len());
        for ((e, message), (o, (_, asked))) in events
            .iter()
            .zip(messages)
            .zip(outcomes.into_iter().zip(&items))
        {
            match o {
                SignOutcome::Signed(signature) => {
                    tracing::info!(direction = self.name(), peg_id = %e.id, height = e.source_height, amount = %e.payout_amount, recipient = %e.recipient, "signed at depth");
                    signed.push(Attestation { message, signature });
                }
                SignOutcome::Refused { signed } => {
                    tracing::error!(direction = self.name(), peg_id = %e.id, %signed, %asked, "refusing to sign a second, different message for this id");
                    self.shared.metrics.error("equivocation_refused");
                }
            }
        }
        self.shared
            .metrics
            .events_signed
            .get_or_create(&Metrics::dir(self.direction))
            .inc_by(signed.len() as u64);
        self.gossip(signed);
        Ok(())
    }

    /// Walks the signed, unpaid transfers: re-gossips and looks for payouts now and then,
    /// notes when M signatures are held, and submits what is due in one batch. A step's cost
    /// follows what is due, not the backlog: the destination is asked about a transfer only
    /// on re-gossip or right before a resubmission.
    async fn advance(
        &self,
        open: Vec<EventRecord>,
        now: u64,
        regossip: bool,
        new_destination_block: bool,
    ) -> Result<()> {
        let store = &self.shared.store;
        let fed = &self.shared.federation;
        let timeout = self.timing.submit_timeout_ms;
        // Each transfer's last submission, read once for the whole step.
        let mut open = open
            .into_iter()
            .map(|e| Ok((store.submission(&e.id)?, e)))
            .collect::<Result<Vec<_>>>()?;
        // Everything open is looked up on re-gossip; what this member's node accepted a
        // payout for, as soon as the destination has a new block (it is likely in it).
        let ask = |last: &Option<Submission>| {
            regossip
                || (new_destination_block && last.as_ref().is_some_and(|s| s.tx_hash.is_some()))
        };
        if open.iter().any(|(last, _)| ask(last)) {
            let (asked, kept): (Vec<_>, Vec<_>) = open.into_iter().partition(|(last, _)| ask(last));
            open = kept;
            let ids: Vec<Hash> = asked.iter().map(|(_, e)| e.id).collect();
            let payouts = self.destination.payouts(&ids).await?;
            let mut paid = Vec::new();
            for ((last, e), p) in asked.into_iter().zip(payouts) {
                match p {
                    Some(p) => paid.push((e, p)),
                    None => open.push((last, e)),
                }
            }
            self.mark_paid(&paid, now)?;
        }
        let mut again = Vec::new();
        let mut newly_ready = Vec::new();
        let mut due = Vec::new();
        for (last, e) in open {
            let Some(own) = store.own_signature(&e.id)? else {
                continue;
            };
            let message = self.message(&e);
            if own.message_hash != message.signing_hash() {
                tracing::error!(direction = self.name(), peg_id = %e.id, "stored signature is over another message; not submitting");
                self.shared.metrics.error("message_mismatch");
                continue;
            }
            if regossip {
                again.push(Attestation {
                    message: message.clone(),
                    signature: own.signature,
                });
            }
            if last
                .as_ref()
                .is_some_and(|s| now.saturating_sub(s.at_ms) < timeout)
            {
                continue;
            }
            let designated = fed.designated_submitter(&e.id) == Some(self.shared.member);
            let held = store.attestations(&own.message_hash)?;
            if last.is_none() && !designated {
                match e.ready_ms {
                    Some(r) if now.saturating_sub(r) < timeout => continue,
                    Some(_) => {}
                    None => {
                        // Not ours to submit yet: counting is enough (each attestation was
                        // verified on arrival); the signatures are checked when submitting.
                        let members: HashSet<Address> = held
                            .iter()
                            .map(|(m, _)| *m)
                            .filter(|m| fed.members.contains(m))
                            .collect();
                        if members.len() >= fed.threshold as usize {
                            newly_ready.push(e.id);
                        }
                        continue;
                    }
                }
            }
            let Some(signatures) = fed.aggregate(&message, &held) else {
                continue;
            };
            if e.ready_ms.is_none() {
                newly_ready.push(e.id);
            }
            if last.is_some() || designated || e.ready_ms.is_some() {
                due.push(Due {
                    event: e,
                    signatures,
                    last,
                    designated,
                });
            }
        }
        if !newly_ready.is_empty() {
            durably(|| {
                store.update_events(&newly_ready, |r| {
                    r.ready_ms.get_or_insert(now);
                })
            })?;
            tracing::debug!(
                direction = self.name(),
                transfers = newly_ready.len(),
                "threshold of signatures held"
            );
        }
        if !again.is_empty() {
            self.gossip(again);
        }
        // Before submitting again, or in another member's place, look for the payout.
        let (check, mut send): (Vec<Due>, Vec<Due>) = due
            .into_iter()
            .partition(|d| d.last.is_some() || !d.designated);
        if !check.is_empty() {
            let ids: Vec<Hash> = check.iter().map(|d| d.event.id).collect();
            let payouts = self.destination.payouts(&ids).await?;
            let mut paid = Vec::new();
            for (d, p) in check.into_iter().zip(payouts) {
                match p {
                    Some(p) => paid.push((d.event, p)),
                    None => send.push(d),
                }
            }
            self.mark_paid(&paid, now)?;
        }
        if !send.is_empty() {
            self.submit(send, now).await?;
        }
        Ok(())
    }

    fn payout(&self, d: &Due, nonce: u64) -> Bytes {
        let e = &d.event;
        let (kind, fee) = match self.direction {
            Direction::MainToSide => (
                TxKind::Mint {
                    id: e.id,
                    recipient: e.recipient,
                    amount: e.payout_amount,
                    signatures: d.signatures.clone(),
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
                    signatures: d.signatures.clone(),
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
        Bytes(tx.encode())
    }

    /// Submits payouts in one batch with consecutive nonces. A payout the node refuses leaves
    /// a gap the ones behind it would wait on forever: those are re-issued from the gap (the
    /// pool lets a sender move its own pending payout to an earlier nonce).
    async fn submit(&self, due: Vec<Due>, now: u64) -> Result<()> {
        let store = &self.shared.store;
        let attempts: Vec<u32> = due
            .iter()
            .map(|d| d.last.as_ref().map_or(0, |s| s.attempts) + 1)
            .collect();
        // The attempts are durable before the transactions leave: after a crash the member
        // waits a timeout and tries again, and the chain refuses a second payout of an id.
        let sending: Vec<(Hash, Submission)> = due
            .iter()
            .zip(&attempts)
            .map(|(d, a)| {
                (
                    d.event.id,
                    Submission {
                        tx_hash: None,
                        at_ms: now,
                        attempts: *a,
                        outcome: "sending".into(),
                    },
                )
            })
            .collect();
        durably(|| store.put_submissions(&sending))?;
        let mut nonce = self
            .destination
            .account(self.shared.member)
            .await?
            .pending_nonce;
        let mut outcomes: Vec<Option<(SubmitOutcome, u64)>> = vec![None; due.len()];
        let mut pending: Vec<usize> = (0..due.len()).collect();
        while !pending.is_empty() {
            let raws = pending
                .iter()
                .enumerate()
                .map(|(j, &i)| self.payout(&due[i], nonce + j as u64))
                .collect();
            let results = self.destination.submit_many(raws).await?;
            let first_refused = results
                .iter()
                .position(|o| !matches!(o, SubmitOutcome::Accepted(_)));
            let mut behind = Vec::new();
            for (j, (&i, o)) in pending.iter().zip(results).enumerate() {
                let queued_behind_gap =
                    first_refused.is_some_and(|f| j > f) && matches!(o, SubmitOutcome::Accepted(_));
                if queued_behind_gap {
                    behind.push(i);
                }
                outcomes[i] = Some((o, nonce + j as u64));
            }
            if let Some(f) = first_refused {
                nonce += f as u64;
            }
            pending = behind;
        }
        let label = Metrics::dir(self.direction);
        let mut records = Vec::with_capacity(due.len());
        for ((d, a), o) in due.iter().zip(&attempts).zip(outcomes) {
            let Some((outcome, nonce)) = o else { continue };
            let id = d.event.id;
            match &outcome {
                SubmitOutcome::Accepted(h) => {
                    self.shared
                        .metrics
                        .events_submitted
                        .get_or_create(&label)
                        .inc();
                    tracing::info!(direction = self.name(), peg_id = %id, tx = %h, nonce, attempts = a, designated = d.designated, "payout submitted");
                }
                SubmitOutcome::IdUsed => {
                    tracing::info!(direction = self.name(), peg_id = %id, "already paid out");
                }
                SubmitOutcome::IdPending => {
                    tracing::info!(direction = self.name(), peg_id = %id, "a payout of this id still waits in the pool (an earlier one of ours, or another member's)");
                }
                SubmitOutcome::Refused { code, message } => {
                    tracing::warn!(direction = self.name(), peg_id = %id, code, %message, "payout refused by the destination node");
                    self.shared.metrics.error("payout_refused");
                }
            }
            let tx_hash = match &outcome {
                SubmitOutcome::Accepted(h) => Some(*h),
                // Keep following our earlier payout: it may be the one still pending.
                SubmitOutcome::IdPending => d.last.as_ref().and_then(|s| s.tx_hash),
                _ => None,
            };
            records.push((
                id,
                Submission {
                    tx_hash,
                    at_ms: now,
                    attempts: *a,
                    outcome: outcome.name(),
                },
            ));
        }
        durably(|| store.put_submissions(&records))?;
        Ok(())
    }
}

/// A payout due for submission.
#[derive(Debug)]
struct Due {
    event: EventRecord,
    signatures: Vec<chain::crypto::Signature>,
    last: Option<Submission>,
    designated: bool,
}
