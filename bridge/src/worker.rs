//! One worker per direction: watch the source, sign at depth, gossip, aggregate the
//! members' signatures, and submit the payout (first the designated member, the others
//! after `submit_timeout`), until the destination shows it paid.
//!
//! Every decision is committed to the store before it is acted on: the signature before it
//! is gossiped, the submission attempt before the transaction is sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parity_scale_codec::Encode;
use primitives::crypto::SecretKey;
use primitives::peg::{Direction, PegMessage};
use primitives::tx::{Fee, Transaction, TxKind};
use primitives::types::{Address, Amount, BlockNumber, Bytes, ChainId, Hash};
use rpc_api::types::PegPayout;
use tokio::sync::{watch, Notify};

use crate::attest::{Attestation, AttestationGossip};
use crate::error::Result;
use crate::metrics::{direction_name, ChainLabel, Metrics};
use crate::nodes::{DestinationChain, NodeClient, PayoutSeen, SourceChain, SubmitOutcome};
use crate::status::{PayoutProgress, Shared};
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

/// One direction's worker, over its source and destination nodes (fakes in tests).
#[derive(Debug)]
pub struct Worker<S = NodeClient, D = NodeClient> {
    /// Deposits or withdrawals.
    pub direction: Direction,
    /// Scans the source.
    pub watcher: Watcher,
    /// The member's node of the source chain.
    pub source: S,
    /// The member's node of the destination chain.
    pub destination: D,
    /// The destination's chain id (payouts are signed for it).
    pub destination_chain_id: ChainId,
    /// The member key.
    pub key: SecretKey,
    /// Store, federation, network, metrics, status board.
    pub shared: Arc<Shared>,
    /// Timing.
    pub timing: WorkerTiming,
    /// Depth a payout must reach on the destination before the transfer counts as paid.
    pub payout_confirmations: u64,
    last_regossip_ms: u64,
    last_destination_head: u64,
    /// Payouts seen in destination blocks that are not final yet, by transfer id. They are
    /// looked at again on every new destination block and not resubmitted while there. In
    /// memory only: nothing is decided on it, and a restart asks about everything open at
    /// its first step.
    included: HashMap<Hash, PayoutSeen>,
    /// A nonce gap of this member's own on the destination, first seen: (account nonce,
    /// destination head then).
    gap_seen: Option<(u64, BlockNumber)>,
    /// When this member last re-signed its payouts to close a gap (unix ms).
    last_gap_close_ms: u64,
}

/// What a look at the destination showed for one open transfer.
enum Observed {
    /// Paid, at the destination's confirmation depth: done.
    Final(PegPayout),
    /// In a canonical block, not deep enough yet: wait, do not resubmit.
    Confirming,
    /// Not on the destination's canonical chain.
    Absent,
}

impl<S: SourceChain, D: DestinationChain> Worker<S, D> {
    /// A worker that has not stepped yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        direction: Direction,
        watcher: Watcher,
        source: S,
        destination: D,
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
            payout_confirmations: shared.federation.payout_confirmations(direction),
            shared,
            timing,
            last_regossip_ms: 0,
            last_destination_head: 0,
            included: HashMap::new(),
            gap_seen: None,
            last_gap_close_ms: 0,
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
        self.step_at(service::clock::now_ms()).await
    }

    /// [`Worker::step`] at `now` (unix ms): tests pass the time in.
    pub async fn step_at(&mut self, now: u64) -> Result<()> {
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
            b.source_finalized = w.finalized;
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
        self.advance(open, now, regossip, new_destination_block, dest_head.number)
            .await?;
        let required = self.payout_confirmations;
        let progress = self
            .included
            .iter()
            .map(|(id, p)| {
                let view = PayoutProgress {
                    block_number: p.payout.block_number,
                    tx_hash: p.payout.tx_hash,
                    confirmations: p.confirmations,
                    required,
                };
                (*id, view)
            })
            .collect();
        self.shared
            .update_board(self.direction, |b| b.payouts = progress);
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
                chain: self.destination.name().to_string(),
            })
            .set(coins);
        Ok(())
    }

    fn gossip(&self, attestations: Vec<Attestation>) {
        let now = service::clock::now_ms();
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
        service::fault::point("member-signed");
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

    /// What `seen` (the destination's answer for `e`) means, keeping [`Worker::included`] in
    /// step: a payout counts only at the destination's confirmation depth; one that a
    /// block held and the canonical chain no longer does was reorged out.
    fn observe(&mut self, e: &EventRecord, seen: Option<PayoutSeen>) -> Observed {
        match seen {
            Some(s) if s.confirmations >= self.payout_confirmations && s.finalized => {
                self.included.remove(&e.id);
                Observed::Final(s.payout)
            }
            Some(s) => {
                if !self.included.contains_key(&e.id) {
                    tracing::info!(direction = self.name(), peg_id = %e.id, payout_block = s.payout.block_number, confirmations = s.confirmations, required = self.payout_confirmations, "payout included; waiting until it is final");
                }
                self.included.insert(e.id, s);
                Observed::Confirming
            }
            None => {
                if let Some(was) = self.included.remove(&e.id) {
                    tracing::warn!(direction = self.name(), peg_id = %e.id, payout_block = was.payout.block_number, confirmations = was.confirmations, "payout left the destination's canonical chain before it was final (reorg): following the transfer again");
                    self.shared.metrics.error("payout_reorged");
                }
                Observed::Absent
            }
        }
    }

    /// Walks the signed, unpaid transfers: re-gossips and looks for payouts now and then,
    /// notes when M signatures are held, and submits what is due in one batch. A step's cost
    /// follows what is due, not the backlog: the destination is asked about a transfer only
    /// on re-gossip, right before a resubmission, or while a payout of it is on its way to
    /// the confirmation depth. A transfer is done only when its payout is final there.
    async fn advance(
        &mut self,
        open: Vec<EventRecord>,
        now: u64,
        regossip: bool,
        new_destination_block: bool,
        dest_head: BlockNumber,
    ) -> Result<()> {
        let shared = self.shared.clone();
        let store = &shared.store;
        let fed = &shared.federation;
        let timeout = self.timing.submit_timeout_ms;
        // Each transfer's last submission, read once for the whole step.
        let mut open = open
            .into_iter()
            .map(|e| Ok((store.submission(&e.id)?, e)))
            .collect::<Result<Vec<_>>>()?;
        // Everything open is looked up on re-gossip. On a new destination block: what this
        // member's node accepted a payout for (it is likely in it), and every payout seen
        // short of the depth (it deepens, or a reorg takes it away).
        let included = &self.included;
        let ask = |last: &Option<Submission>, id: &Hash| {
            regossip
                || (new_destination_block
                    && (last.as_ref().is_some_and(|s| s.tx_hash.is_some())
                        || included.contains_key(id)))
        };
        if open.iter().any(|(last, e)| ask(last, &e.id)) {
            let (asked, kept): (Vec<_>, Vec<_>) =
                open.into_iter().partition(|(last, e)| ask(last, &e.id));
            open = kept;
            let ids: Vec<Hash> = asked.iter().map(|(_, e)| e.id).collect();
            let payouts = self.destination.payouts(&ids).await?;
            let mut paid = Vec::new();
            for ((last, e), p) in asked.into_iter().zip(payouts) {
                match self.observe(&e, p) {
                    Observed::Final(p) => paid.push((e, p)),
                    Observed::Confirming | Observed::Absent => open.push((last, e)),
                }
            }
            self.mark_paid(&paid, now)?;
        }
        // Our accepted payouts that no block holds (all of them were just asked about, if
        // the destination has a new block): stuck behind a nonce gap of ours?
        let waiting = open
            .iter()
            .filter(|(last, e)| {
                last.as_ref().is_some_and(|s| s.tx_hash.is_some())
                    && !self.included.contains_key(&e.id)
            })
            .count();
        let close_gap = new_destination_block && self.nonce_gap(waiting, dest_head, now).await?;
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
            // A payout of it is in a block: wait for the depth (or for a reorg to drop it).
            if self.included.contains_key(&e.id) {
                continue;
            }
            // Closing a gap re-signs every payout of ours the node accepted, whenever it did.
            let forced = close_gap && last.as_ref().is_some_and(|s| s.tx_hash.is_some());
            if !forced
                && last
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
                    forced,
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
        // Before submitting again, or in another member's place, look for the payout (the
        // payouts re-signed to close a gap were asked about a moment ago).
        let (check, mut send): (Vec<Due>, Vec<Due>) = due
            .into_iter()
            .partition(|d| !d.forced && (d.last.is_some() || !d.designated));
        if !check.is_empty() {
            let ids: Vec<Hash> = check.iter().map(|d| d.event.id).collect();
            let payouts = self.destination.payouts(&ids).await?;
            let mut paid = Vec::new();
            for (d, p) in check.into_iter().zip(payouts) {
                match self.observe(&d.event, p) {
                    Observed::Final(p) => paid.push((d.event, p)),
                    Observed::Confirming => {}
                    Observed::Absent => send.push(d),
                }
            }
            self.mark_paid(&paid, now)?;
        }
        if !send.is_empty() {
            // Payouts re-signed to close a gap go first, in the order of their old nonces:
            // each then moves to an earlier nonce than it held, which the pool allows.
            send.sort_by_key(|d| {
                (
                    !d.forced,
                    d.last.as_ref().and_then(|s| s.nonce).unwrap_or(u64::MAX),
                )
            });
            self.submit(send, now).await?;
        }
        Ok(())
    }

    /// Whether this member's accepted payouts are stuck behind a nonce gap of its own on the
    /// destination: `waiting` of them are in no block, yet its node holds nothing of the
    /// member's it could include (pending nonce == account nonce: what held the nonces below
    /// them was dropped, expired, or paid by someone else first), at two destination heads
    /// in a row. They are then re-signed from the account nonce at once (at most once a
    /// submit timeout), rather than waiting out each one's timeout.
    async fn nonce_gap(&mut self, waiting: usize, head: BlockNumber, now: u64) -> Result<bool> {
        if waiting == 0 {
            self.gap_seen = None;
            return Ok(false);
        }
        let acct = self.destination.account(self.shared.member).await?;
        if acct.pending_nonce != acct.nonce {
            self.gap_seen = None;
            return Ok(false);
        }
        match self.gap_seen {
            Some((nonce, since)) if nonce == acct.nonce && since < head => {
                let recent = self.last_gap_close_ms != 0
                    && now.saturating_sub(self.last_gap_close_ms) < self.timing.submit_timeout_ms;
                if recent {
                    return Ok(false);
                }
                self.gap_seen = None;
                self.last_gap_close_ms = now;
                tracing::warn!(direction = self.name(), account_nonce = acct.nonce, waiting, "own payouts wait behind a nonce gap on the destination: re-signing them from the account nonce");
                self.shared
                    .metrics
                    .nonce_gaps
                    .get_or_create(&Metrics::dir(self.direction))
                    .inc();
                Ok(true)
            }
            Some((nonce, _)) if nonce == acct.nonce => Ok(false),
            _ => {
                self.gap_seen = Some((acct.nonce, head));
                Ok(false)
            }
        }
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
                        nonce: None,
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
            service::fault::point("member-submitted");
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
            let earlier = d
                .last
                .as_ref()
                .map_or((None, None), |s| (s.tx_hash, s.nonce));
            let (tx_hash, nonce) = match &outcome {
                SubmitOutcome::Accepted(h) => (Some(*h), Some(nonce)),
                // Keep following our earlier payout: it may be the one still pending (a
                // payout re-signed to close a gap and refused leaves the earlier one parked).
                SubmitOutcome::IdPending => earlier,
                SubmitOutcome::Refused { .. } if d.forced => earlier,
                _ => (None, None),
            };
            records.push((
                id,
                Submission {
                    tx_hash,
                    at_ms: now,
                    attempts: *a,
                    outcome: outcome.name(),
                    nonce,
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
    signatures: Vec<primitives::crypto::Signature>,
    last: Option<Submission>,
    designated: bool,
    /// Re-signed to close a nonce gap of ours.
    forced: bool,
}

#[cfg(test)]
pub mod fake {
    //! A fake destination chain for in-process tests of the worker: a pool with the nonce and
    //! peg-id rules of the real one that matter to a member, and canonical blocks that tests
    //! mine, reorg and pay into at will, and make unreachable.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use primitives::crypto::keccak256_parts;
    use primitives::tx::SignedTransaction;
    use primitives::types::{Address, Amount, Bytes, Hash};
    use rpc_api::codes;
    use rpc_api::types::{AccountView, PegPayout};

    use crate::error::{BridgeError, Result};
    use crate::nodes::{BlockRef, DestinationChain, PayoutSeen, SubmitOutcome};

    /// A payout in a canonical block.
    #[derive(Debug, Clone, Copy)]
    struct Paid {
        id: Hash,
        tx: Hash,
        sender: Address,
    }

    /// A payout waiting in the pool.
    #[derive(Debug, Clone, Copy)]
    struct Pooled {
        id: Hash,
        tx: Hash,
    }

    #[derive(Debug, Default)]
    struct State {
        /// Canonical blocks above genesis (index 0 is height 1) and the payouts in each.
        blocks: Vec<Vec<Paid>>,
        /// Bumped by every reorg, so a replaced height gets another hash.
        salt: u8,
        /// Pending payouts by (sender, nonce).
        pool: BTreeMap<(Address, u64), Pooled>,
        /// Every payout accepted into the pool, in order: (id, sender, nonce).
        accepted: Vec<(Hash, Address, u64)>,
        /// Every call fails as if the node could not be reached.
        down: bool,
        /// The next this many batch submissions fail the same way, accepting nothing.
        failing_submits: u32,
        /// The last final height (`None`: every block is final).
        finalized: Option<u64>,
    }

    /// What the real client makes of a node it cannot reach: a transient error.
    fn unreachable() -> BridgeError {
        BridgeError::Rpc {
            chain: "side",
            reason: "connection refused".into(),
        }
    }

    impl State {
        fn paid_at(&self, id: &Hash) -> Option<(u64, Paid)> {
            self.blocks
                .iter()
                .enumerate()
                .find_map(|(i, b)| b.iter().find(|p| p.id == *id).map(|p| (i as u64 + 1, *p)))
        }

        fn nonce(&self, sender: &Address) -> u64 {
            self.blocks
                .iter()
                .flatten()
                .filter(|p| p.sender == *sender)
                .count() as u64
        }

        fn pending_nonce(&self, sender: &Address) -> u64 {
            let mut n = self.nonce(sender);
            while self.pool.contains_key(&(*sender, n)) {
                n += 1;
            }
            n
        }

        /// Drops pooled payouts of ids a canonical block paid, as a node does on committing
        /// the block (they can never be included).
        fn evict_paid(&mut self) {
            let dead: Vec<(Address, u64)> = self
                .pool
                .iter()
                .filter(|(_, p)| self.paid_at(&p.id).is_some())
                .map(|(k, _)| *k)
                .collect();
            for k in dead {
                self.pool.remove(&k);
            }
        }
    }

    /// The fake destination.
    #[derive(Debug, Default)]
    pub struct FakeDestination {
        s: Mutex<State>,
    }

    impl FakeDestination {
        /// A chain at genesis with an empty pool.
        pub fn new() -> Self {
            Self::default()
        }

        /// Produces a block with every payout a producer could include now (each sender's
        /// contiguous run from its account nonce); returns how many it holds.
        pub fn mine(&self) -> usize {
            let mut s = self.s.lock().expect("lock");
            let senders: Vec<Address> = s.pool.keys().map(|(a, _)| *a).collect();
            let mut block = Vec::new();
            for sender in senders {
                let mut n = s.nonce(&sender);
                while let Some(p) = s.pool.remove(&(sender, n)) {
                    block.push(Paid {
                        id: p.id,
                        tx: p.tx,
                        sender,
                    });
                    n += 1;
                }
            }
            let count = block.len();
            s.blocks.push(block);
            count
        }

        /// Produces a block without payouts.
        pub fn empty_block(&self) {
            self.s.lock().expect("lock").blocks.push(Vec::new());
        }

        /// Produces a block in which `sender` (not this member) pays `id` first.
        pub fn pay_by_other(&self, id: Hash, sender: Address) {
            let mut s = self.s.lock().expect("lock");
            let tx = keccak256_parts(&[&id.0, &sender.0]);
            s.blocks.push(vec![Paid { id, tx, sender }]);
            s.evict_paid();
        }

        /// A reorg to a branch that forks after `height` and holds nothing: the payouts of
        /// the blocks above are gone from the chain and not returned to the pool.
        pub fn reorg_to(&self, height: u64) {
            let mut s = self.s.lock().expect("lock");
            s.blocks.truncate(height as usize);
            s.salt = s.salt.wrapping_add(1);
        }

        /// Every payout accepted into the pool so far: (id, sender, nonce).
        pub fn accepted(&self) -> Vec<(Hash, Address, u64)> {
            self.s.lock().expect("lock").accepted.clone()
        }

        /// The pool forgets every pending payout (expired, or evicted for others) without
        /// a block holding them.
        pub fn drop_pool(&self) {
            self.s.lock().expect("lock").pool.clear();
        }

        /// From now on blocks up to `height` are final (`None`: every block is).
        pub fn set_finalized(&self, height: Option<u64>) {
            self.s.lock().expect("lock").finalized = height;
        }

        /// Makes every call fail (`true`) as an unreachable node does, or answer again.
        pub fn set_down(&self, down: bool) {
            self.s.lock().expect("lock").down = down;
        }

        /// Makes the next `n` batch submissions fail as an unreachable node does.
        pub fn fail_submits(&self, n: u32) {
            self.s.lock().expect("lock").failing_submits = n;
        }

        /// The state, unless the node is down.
        fn reach(&self) -> Result<std::sync::MutexGuard<'_, State>> {
            let s = self.s.lock().expect("lock");
            if s.down {
                return Err(unreachable());
            }
            Ok(s)
        }
    }

    impl DestinationChain for FakeDestination {
        fn name(&self) -> &'static str {
            "side"
        }

        async fn head(&self) -> Result<BlockRef> {
            let s = self.reach()?;
            let number = s.blocks.len() as u64;
            Ok(BlockRef {
                number,
                hash: keccak256_parts(&[&number.to_le_bytes(), &[s.salt]]),
            })
        }

        async fn account(&self, address: Address) -> Result<AccountView> {
            let s = self.reach()?;
            Ok(AccountView {
                address,
                balance: Amount::ZERO,
                nonce: s.nonce(&address),
                pending_nonce: s.pending_nonce(&address),
                block_number: s.blocks.len() as u64,
            })
        }

        async fn payouts(&self, ids: &[Hash]) -> Result<Vec<Option<PayoutSeen>>> {
            let s = self.reach()?;
            let head = s.blocks.len() as u64;
            Ok(ids
                .iter()
                .map(|id| {
                    s.paid_at(id).map(|(h, p)| PayoutSeen {
                        payout: PegPayout {
                            block_number: h,
                            block_hash: Some(keccak256_parts(&[&h.to_le_bytes(), &[s.salt]])),
                            tx_hash: Some(p.tx),
                            event: None,
                            submitter: Some(p.sender),
                        },
                        confirmations: head + 1 - h,
                        finalized: s.finalized.is_none_or(|f| h <= f),
                    })
                })
                .collect())
        }

        async fn submit_many(&self, raws: Vec<Bytes>) -> Result<Vec<SubmitOutcome>> {
            let mut s = self.reach()?;
            if s.failing_submits > 0 {
                s.failing_submits -= 1;
                return Err(unreachable());
            }
            let refused = |code, message: &str| SubmitOutcome::Refused {
                code,
                message: message.into(),
            };
            let mut out = Vec::with_capacity(raws.len());
            for raw in raws {
                let Ok(tx) = SignedTransaction::decode_and_recover(&raw.0, 1 << 20) else {
                    out.push(refused(codes::MALFORMED_TX, "malformed"));
                    continue;
                };
                let (sender, nonce, hash) = (tx.sender(), tx.nonce(), tx.hash());
                let Some(id) = tx.tx().kind.payout_id() else {
                    out.push(refused(codes::MALFORMED_TX, "not a payout"));
                    continue;
                };
                if s.paid_at(&id).is_some() {
                    out.push(SubmitOutcome::IdUsed);
                    continue;
                }
                if nonce < s.nonce(&sender) {
                    out.push(refused(codes::NONCE_TOO_LOW, "nonce too low"));
                    continue;
                }
                // One payout per id; its own sender may move it to an earlier nonce.
                let pending = s
                    .pool
                    .iter()
                    .find(|(_, p)| p.id == id)
                    .map(|(k, p)| (*k, *p));
                match pending {
                    Some((_, p)) if p.tx == hash => {
                        out.push(refused(codes::ALREADY_KNOWN, "already known"));
                        continue;
                    }
                    Some(((from, n), _)) if from == sender && nonce < n => {
                        s.pool.remove(&(from, n));
                    }
                    Some(_) => {
                        out.push(SubmitOutcome::IdPending);
                        continue;
                    }
                    None => {}
                }
                if s.pool.contains_key(&(sender, nonce)) {
                    out.push(refused(codes::ALREADY_KNOWN, "replacement underpriced"));
                    continue;
                }
                s.pool.insert((sender, nonce), Pooled { id, tx: hash });
                s.accepted.push((id, sender, nonce));
                out.push(SubmitOutcome::Accepted(hash));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use primitives::crypto::SecretKey;
    use primitives::types::{Amount, Hash};
    use tokio::sync::mpsc;

    use super::fake::FakeDestination;
    use super::*;
    use crate::attest::Federation;
    use crate::metrics::Metrics;
    use crate::network::NetHandle;
    use crate::status::Shared;
    use crate::store::{HeldAttestation, Store};
    use crate::watcher::fake::{deposit, FakeChain};

    /// Start of the simulated clock (unix ms).
    const T0: u64 = 1_000_000;

    /// One member's deposit worker between a fake main chain and a fake sidechain, in a
    /// federation of three (threshold 2) whose other keys the test holds.
    struct Rig {
        _dir: tempfile::TempDir,
        _gossip: mpsc::Receiver<Vec<u8>>,
        keys: Vec<SecretKey>,
        worker: Worker<FakeChain, FakeDestination>,
    }

    impl Rig {
        /// A rig with one deposit this member submits first, locked and signed by it at `T0`.
        async fn signing_one(submit_timeout_ms: u64) -> (Self, Hash) {
            let mut rig = Self::new(submit_timeout_ms);
            let id = rig.own_ids(1)[0];
            rig.lock(&[id]);
            rig.step(T0).await;
            (rig, id)
        }

        /// A step at `now` that fails (`why`) with an error the member retries.
        async fn transient_failure(&mut self, now: u64, why: &str) {
            let e = self.worker.step_at(now).await.expect_err(why);
            assert!(e.is_transient(), "{why}: {e}");
        }

        /// Locks `ids`, lets this member sign them at `at`, and files a second member's
        /// signature: the threshold is met and the next step may submit.
        async fn signed_by_two(&mut self, ids: &[Hash], at: u64) {
            self.lock(ids);
            self.step(at).await;
            self.second_signature(ids);
        }

        /// How many payouts the destination accepted so far.
        fn submitted(&self) -> usize {
            self.worker.destination.accepted().len()
        }

        /// Asserts the worker's metrics hold `line` exactly.
        fn assert_metric(&self, line: &str) {
            let metrics = self.worker.shared.metrics.encode();
            assert!(metrics.contains(line), "{line} not in {metrics}");
        }

        fn new(submit_timeout_ms: u64) -> Self {
            let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
            let federation = Federation {
                domain: Hash([9; 32]),
                members: keys.iter().map(SecretKey::address).collect(),
                threshold: 2,
                peg_out_fee: Amount(1),
                main_confirmations: 3,
                side_confirmations: 3,
            };
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("open");
            let (net, gossip) = NetHandle::detached();
            let shared = Arc::new(Shared {
                store: Arc::new(store),
                federation,
                member: keys[0].address(),
                net,
                metrics: Arc::new(Metrics::new()),
                board: Mutex::default(),
                recorded: Arc::new(Notify::new()),
            });
            let watcher = Watcher {
                direction: Direction::MainToSide,
                confirmations: 3,
                peg_out_fee: Amount(1),
                history: 64,
            };
            let worker = Worker::new(
                Direction::MainToSide,
                watcher,
                FakeChain::new(),
                FakeDestination::new(),
                7,
                keys[0].clone(),
                shared,
                WorkerTiming {
                    poll_interval: Duration::from_secs(1),
                    submit_timeout_ms,
                    regossip_interval_ms: 3_600_000,
                },
            );
            Self {
                _dir: dir,
                _gossip: gossip,
                keys,
                worker,
            }
        }

        fn store(&self) -> &Store {
            &self.worker.shared.store
        }

        /// `n` deposit ids this member is the designated submitter of.
        fn own_ids(&self, n: usize) -> Vec<Hash> {
            self.ids_designated_to(0, n)
        }

        /// `n` deposit ids member `i` is the designated submitter of.
        fn ids_designated_to(&self, i: usize, n: usize) -> Vec<Hash> {
            let fed = &self.worker.shared.federation;
            (1..=u8::MAX)
                .map(|b| Hash([b; 32]))
                .filter(|id| fed.designated_submitter(id) == Some(self.keys[i].address()))
                .take(n)
                .collect()
        }

        fn submission(&self, id: &Hash) -> Option<Submission> {
            self.store().submission(id).expect("get")
        }

        fn state(&self, id: &Hash) -> Option<EventState> {
            self.store().event(id).expect("get").map(|e| e.state)
        }

        /// Deposits of `ids` in one source block, buried at the signing depth.
        fn lock(&self, ids: &[Hash]) {
            let src = &self.worker.source;
            src.push(ids.iter().map(|id| deposit(*id, 50)).collect(), 0);
            src.push(vec![], 0);
            src.push(vec![], 0);
        }

        /// Files the second member's attestation of each recorded transfer: with ours, the
        /// threshold.
        fn second_signature(&self, ids: &[Hash]) {
            let held: Vec<HeldAttestation> = ids
                .iter()
                .map(|id| {
                    let e = self.store().event(id).expect("get").expect("recorded");
                    let message_hash = self.worker.message(&e).signing_hash();
                    HeldAttestation {
                        id: *id,
                        message_hash,
                        member: self.keys[1].address(),
                        signature: self.keys[1].sign_prehash(&message_hash),
                    }
                })
                .collect();
            self.store().put_attestations(&held).expect("filed");
        }

        async fn step(&mut self, now: u64) {
            self.worker.step_at(now).await.expect("step");
        }

        fn is_open(&self, id: &Hash) -> bool {
            self.store()
                .open_events(None)
                .expect("open")
                .iter()
                .any(|e| e.id == *id)
        }
    }

    /// Depth on the destination is not enough either: a payout deep in blocks that are not
    /// final stays open until its block is.
    #[tokio::test]
    async fn a_payout_at_depth_counts_as_paid_only_once_its_block_is_final() {
        let mut rig = Rig::new(2_000);
        let id = rig.own_ids(1)[0];
        rig.lock(&[id]);
        rig.step(T0).await;
        rig.second_signature(&[id]);
        rig.step(T0 + 100).await;
        rig.worker.destination.set_finalized(Some(0));
        assert_eq!(rig.worker.destination.mine(), 1);
        let mut t = T0 + 200;
        for _ in 0..5 {
            rig.worker.destination.empty_block();
            rig.step(t).await;
            t += 1;
        }
        assert!(rig.is_open(&id), "6 blocks deep, not final: still open");
        rig.worker.destination.set_finalized(Some(1));
        rig.worker.destination.empty_block();
        rig.step(t).await;
        let rec = rig.store().event(&id).expect("get").expect("known");
        assert_eq!(rec.state, EventState::Paid, "final now: paid");
    }

    #[tokio::test]
    async fn a_payout_counts_as_paid_only_once_final_and_is_resubmitted_when_a_reorg_drops_it() {
        let timeout = 2_000;
        let (mut rig, id) = Rig::signing_one(timeout).await;
        let me = rig.keys[0].address();
        assert_eq!(
            rig.store().event(&id).expect("get").map(|e| e.state),
            Some(EventState::Signed)
        );
        rig.second_signature(&[id]);
        rig.step(T0 + 100).await;
        assert_eq!(rig.worker.destination.accepted(), vec![(id, me, 0)]);

        // The payout lands: 1 block deep of the 3 the sidechain's depth asks for.
        assert_eq!(rig.worker.destination.mine(), 1);
        rig.step(T0 + 200).await;
        assert!(
            rig.is_open(&id),
            "a payout 1 block deep (of 3) is not final: the transfer stays open"
        );
        let status = rig.worker.shared.status(T0 + 200).expect("status");
        let pending = &status.directions[0].pending;
        assert_eq!(
            pending.len(),
            1,
            "bridge status still lists it: {pending:?}"
        );
        let progress = pending[0]
            .payout
            .as_ref()
            .expect("the payout seen is shown");
        assert_eq!(
            (
                progress.block_number,
                progress.confirmations,
                progress.required
            ),
            (1, 1, 3)
        );

        // A reorg drops the block, and the payout with it (it does not come back to the pool).
        rig.worker.destination.reorg_to(0);
        rig.worker.destination.empty_block();
        rig.worker.destination.empty_block();
        rig.step(T0 + 300).await;
        assert!(rig.is_open(&id), "still open after the reorg");
        assert_eq!(
            rig.submitted(),
            1,
            "not resubmitted before the submit timeout"
        );
        // After the timeout the member submits it again.
        rig.step(T0 + 100 + timeout + 1).await;
        assert_eq!(
            rig.worker.destination.accepted(),
            vec![(id, me, 0), (id, me, 0)],
            "resubmitted once the reorg dropped it"
        );
        assert_eq!(rig.worker.destination.mine(), 1);
        let mut t = T0 + 100 + timeout + 2;
        rig.step(t).await;
        assert!(rig.is_open(&id), "1 block deep again");
        for _ in 0..2 {
            rig.worker.destination.empty_block();
            t += 1;
            rig.step(t).await;
        }
        let rec = rig.store().event(&id).expect("get").expect("known");
        assert_eq!(rec.state, EventState::Paid, "3 blocks deep: final, paid");
        assert!(rec.payout_tx.is_some());
        assert!(!rig.is_open(&id));
        rig.assert_metric("bridge_errors_total{kind=\"payout_reorged\"} 1");
        rig.assert_metric("bridge_events_paid_total{direction=\"deposits\"} 1");
    }

    #[tokio::test]
    async fn payouts_behind_a_gap_left_by_dropped_ones_are_re_signed_from_the_account_nonce() {
        // A long submit timeout: the gap must be closed when it is seen, not a timeout later.
        let timeout = 600_000;
        let mut rig = Rig::new(timeout);
        let me = rig.keys[0].address();
        let ids = rig.own_ids(4);
        rig.signed_by_two(&ids, T0).await;
        rig.step(T0 + 100).await;
        let sent: Vec<(Hash, Address, u64)> =
            ids.iter().zip(0..).map(|(id, n)| (*id, me, n)).collect();
        assert_eq!(
            rig.worker.destination.accepted(),
            sent,
            "one batch, nonces 0..=3"
        );
        // Another party gets its payouts of the first two in first: ours at nonces 0 and 1 can
        // never be included and leave the pool; ours at 2 and 3 wait behind the gap.
        let other = SecretKey::random().address();
        rig.worker.destination.pay_by_other(ids[0], other);
        rig.worker.destination.pay_by_other(ids[1], other);
        let mut t = T0 + 200;
        for _ in 0..3 {
            rig.step(t).await;
            t += 1_000;
            if rig.submitted() > 4 {
                break;
            }
            let mined = rig.worker.destination.mine();
            assert_eq!(mined, 0, "nothing of ours can be included behind the gap");
        }
        let accepted = rig.worker.destination.accepted();
        assert_eq!(
            accepted[4..],
            [(ids[2], me, 0), (ids[3], me, 1)],
            "within a few blocks of the gap, not after the {timeout} ms submit timeout, the \
             payouts behind it are re-signed from the account nonce: {accepted:?}"
        );
        for _ in 0..3 {
            rig.worker.destination.mine();
            rig.step(t).await;
            t += 1_000;
        }
        for id in &ids {
            assert!(!rig.is_open(id), "{id} paid");
        }
        rig.assert_metric("bridge_nonce_gaps_total{direction=\"deposits\"} 1");
        assert_eq!(
            rig.store()
                .submission(&ids[3])
                .expect("get")
                .and_then(|s| s.nonce),
            Some(1)
        );
    }

    #[tokio::test]
    async fn a_transfer_is_submitted_once_when_the_threshold_of_signatures_is_held() {
        let timeout = 2_000;
        let (mut rig, id) = Rig::signing_one(timeout).await;
        let me = rig.keys[0].address();
        assert_eq!(rig.state(&id), Some(EventState::Signed));
        rig.step(T0 + 50).await;
        assert!(
            rig.worker.destination.accepted().is_empty(),
            "one signature of the two needed: nothing to submit"
        );
        rig.second_signature(&[id]);
        rig.step(T0 + 100).await;
        assert_eq!(rig.worker.destination.accepted(), vec![(id, me, 0)]);
        let sub = rig.submission(&id).expect("recorded");
        assert_eq!(
            (sub.attempts, sub.outcome.as_str(), sub.nonce, sub.at_ms),
            (1, "accepted", Some(0), T0 + 100)
        );
        assert!(sub.tx_hash.is_some());
        assert_eq!(
            rig.store()
                .event(&id)
                .expect("get")
                .and_then(|e| e.ready_ms),
            Some(T0 + 100)
        );
        // Stepping on (new attestations, polls, a new destination block without it) until
        // just before the submit timeout sends nothing more.
        for t in [T0 + 200, T0 + 1_000] {
            rig.step(t).await;
        }
        rig.worker.destination.empty_block();
        rig.step(T0 + 100 + timeout - 1).await;
        assert_eq!(
            rig.submitted(),
            1,
            "submitted once: {:?}",
            rig.worker.destination.accepted()
        );
        rig.assert_metric("bridge_events_submitted_total{direction=\"deposits\"} 1");
    }

    #[tokio::test]
    async fn a_transfer_designated_to_another_member_is_submitted_here_only_after_the_timeout() {
        let timeout = 2_000;
        let mut rig = Rig::new(timeout);
        let id = rig.ids_designated_to(1, 1)[0];
        let me = rig.keys[0].address();
        rig.signed_by_two(&[id], T0).await;
        rig.step(T0 + 100).await;
        assert!(
            rig.worker.destination.accepted().is_empty(),
            "the designated member submits first"
        );
        assert_eq!(
            rig.store()
                .event(&id)
                .expect("get")
                .and_then(|e| e.ready_ms),
            Some(T0 + 100),
            "the threshold is noted"
        );
        rig.step(T0 + 100 + timeout - 1).await;
        assert!(rig.worker.destination.accepted().is_empty());
        // The designated member did not pay it: this one steps in, once.
        rig.step(T0 + 100 + timeout).await;
        assert_eq!(rig.worker.destination.accepted(), vec![(id, me, 0)]);
        rig.step(T0 + 100 + timeout + 1).await;
        assert_eq!(rig.submitted(), 1);
    }

    #[tokio::test]
    async fn a_destination_answering_peg_id_used_gets_the_transfer_marked_paid_unresubmitted() {
        let timeout = 2_000;
        let (mut rig, id) = Rig::signing_one(timeout).await;
        // Someone else's payout of it is in a block already (1 deep of 3) when ours goes out.
        let other = SecretKey::random().address();
        rig.worker.destination.pay_by_other(id, other);
        rig.second_signature(&[id]);
        rig.step(T0 + 100).await;
        assert!(rig.worker.destination.accepted().is_empty());
        let sub = rig.submission(&id).expect("recorded");
        assert_eq!((sub.outcome.as_str(), sub.tx_hash), ("id_used", None));
        assert!(rig.is_open(&id), "open until the payout is seen final");
        // At the timeout it looks instead of resubmitting: the payout is there, not final.
        rig.step(T0 + 100 + timeout + 1).await;
        assert!(rig.is_open(&id));
        for t in 2..4 {
            rig.worker.destination.empty_block();
            rig.step(T0 + 100 + timeout + t).await;
        }
        let rec = rig.store().event(&id).expect("get").expect("known");
        assert_eq!(rec.state, EventState::Paid, "3 blocks deep: final, paid");
        let theirs = rig
            .worker
            .destination
            .payouts(&[id])
            .await
            .expect("payouts")[0]
            .clone()
            .expect("paid");
        assert_eq!(rec.payout_tx, theirs.payout.tx_hash, "paid by their payout");
        assert!(
            rig.worker.destination.accepted().is_empty(),
            "never resubmitted"
        );
        assert_eq!(rig.submission(&id).expect("recorded").attempts, 1);
    }

    #[tokio::test]
    async fn a_payout_that_leaves_the_pool_unmined_is_submitted_again_after_the_timeout() {
        let timeout = 2_000;
        let mut rig = Rig::new(timeout);
        let id = rig.own_ids(1)[0];
        let me = rig.keys[0].address();
        rig.signed_by_two(&[id], T0).await;
        rig.step(T0 + 100).await;
        assert_eq!(rig.worker.destination.accepted(), vec![(id, me, 0)]);
        // Gone from the pool (expired, evicted), no block holds it; no new destination
        // block either, so only the timeout can bring it back.
        rig.worker.destination.drop_pool();
        rig.step(T0 + 100 + timeout - 1).await;
        assert_eq!(rig.submitted(), 1, "not before the timeout");
        rig.step(T0 + 100 + timeout).await;
        assert_eq!(
            rig.worker.destination.accepted(),
            vec![(id, me, 0), (id, me, 0)],
            "submitted again, at the nonce the first one left free"
        );
        assert_eq!(rig.submission(&id).expect("recorded").attempts, 2);
        assert_eq!(rig.worker.destination.mine(), 1);
        let mut t = T0 + 100 + timeout + 1;
        rig.step(t).await;
        for _ in 0..2 {
            rig.worker.destination.empty_block();
            t += 1;
            rig.step(t).await;
        }
        assert_eq!(rig.state(&id), Some(EventState::Paid));
        assert_eq!(rig.submitted(), 2);
    }

    #[tokio::test]
    async fn a_destination_that_cannot_be_reached_is_tried_again_on_a_later_step() {
        let timeout = 2_000;
        let mut rig = Rig::new(timeout);
        let me = rig.keys[0].address();
        let ids = rig.own_ids(2);
        rig.signed_by_two(&ids[..1], T0).await;
        // The node is down at the step that would submit: the step fails, transiently, before
        // anything is recorded, and the next one submits at once.
        rig.worker.destination.set_down(true);
        rig.transient_failure(T0 + 100, "the node is down").await;
        assert!(rig.worker.destination.accepted().is_empty());
        assert!(rig.submission(&ids[0]).is_none());
        rig.worker.destination.set_down(false);
        rig.step(T0 + 200).await;
        assert_eq!(rig.worker.destination.accepted(), vec![(ids[0], me, 0)]);
        assert_eq!(rig.worker.destination.mine(), 1);
        for _ in 0..2 {
            rig.worker.destination.empty_block();
        }
        rig.step(T0 + 250).await;
        assert_eq!(rig.state(&ids[0]), Some(EventState::Paid));

        // The submission itself fails: the attempt was recorded before it left, so the
        // member cannot tell whether it arrived and waits out the timeout, then looks and
        // submits again.
        rig.signed_by_two(&ids[1..], T0 + 300).await;
        rig.worker.destination.fail_submits(1);
        rig.transient_failure(T0 + 400, "the submission fails")
            .await;
        let sub = rig.submission(&ids[1]).expect("the attempt is recorded");
        assert_eq!((sub.attempts, sub.outcome.as_str()), (1, "sending"));
        rig.step(T0 + 400 + timeout - 1).await;
        assert_eq!(rig.submitted(), 1, "not before the timeout");
        rig.step(T0 + 400 + timeout).await;
        assert_eq!(
            rig.worker.destination.accepted(),
            vec![(ids[0], me, 0), (ids[1], me, 1)]
        );
        let sub = rig.submission(&ids[1]).expect("recorded");
        assert_eq!((sub.attempts, sub.outcome.as_str()), (2, "accepted"));
    }
}
