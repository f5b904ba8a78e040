//! The transaction pool: per-sender nonce order, fee priority, limits, replacement, and a
//! precise reason for every refusal.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::Deserialize;

use crate::fee::{FeeError, FeeRule};
use primitives::account::{Account, Totals};
use primitives::peg::{check_tx, resolve, PegConfig, PegError};
use primitives::tx::{DecodeTxError, RecoveredTx, SignedTransaction};
use primitives::types::{Address, Amount, BlockNumber, ChainId, Hash, Nonce, Weight};

/// Pool limits.
#[derive(Debug, Clone, Deserialize)]
pub struct MempoolConfig {
    /// Most transactions held in all.
    pub max_txs: usize,
    /// Most transactions held per sender.
    pub max_per_sender: usize,
    /// How far past the account nonce a transaction may be queued.
    pub max_nonce_gap: u64,
    /// A replacement must raise the priority by at least this many percent.
    pub replace_bump_percent: u64,
    /// Most transactions one sender may park (queue behind a nonce gap, so not includable).
    pub max_parked_per_sender: usize,
    /// Most transactions parked in all, whoever sent them.
    pub max_parked: usize,
    /// A parked transaction older than this is dropped, in milliseconds.
    pub parked_ttl_ms: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 200_000,
            max_per_sender: 50_000,
            max_nonce_gap: 50_000,
            replace_bump_percent: 10,
            max_parked_per_sender: 1024,
            max_parked: 20_000,
            parked_ttl_ms: 300_000,
        }
    }
}

/// Why a transaction was refused; `code()` is a stable machine-readable name.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    /// Not a decodable signed transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Larger than the chain's limit.
    #[error("oversized transaction: {size} bytes, limit {max}")]
    Oversized {
        /// Bytes given.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// The signature does not recover to a sender.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// Signed for another chain.
    #[error("wrong chain id: this chain is {expected}, transaction is for {got}")]
    WrongChainId {
        /// This chain.
        expected: ChainId,
        /// The transaction's.
        got: ChainId,
    },
    /// Nonce already used.
    #[error("nonce too low: account nonce is {account}, transaction has {got}")]
    NonceTooLow {
        /// The account's next nonce.
        account: Nonce,
        /// The transaction's.
        got: Nonce,
    },
    /// Nonce too far beyond the account's.
    #[error("nonce too far ahead: account nonce is {account}, transaction has {got}, at most {max_gap} ahead is queued")]
    NonceTooFarAhead {
        /// The account's next nonce.
        account: Nonce,
        /// The transaction's.
        got: Nonce,
        /// The limit.
        max_gap: u64,
    },
    /// Balance below amount + maximum fee.
    #[error("insufficient balance: have {balance}, need {needed} (amount + maximum fee)")]
    InsufficientBalance {
        /// The account balance.
        balance: Amount,
        /// Amount plus the most the fee can be.
        needed: Amount,
    },
    /// Amount + fee does not fit in u128.
    #[error("amount plus fee overflows")]
    Overflow,
    /// The fee does not meet the chain's rule.
    #[error("fee too low: {0}")]
    FeeTooLow(FeeError),
    /// The fee is in the other chain's form.
    #[error("wrong fee form: {0}")]
    WrongFeeForm(FeeError),
    /// Already in the pool.
    #[error("already known: {0}")]
    AlreadyKnown(Hash),
    /// Same sender and nonce in the pool with a fee not sufficiently lower.
    #[error(
        "replacement underpriced: priority {offered} must exceed {existing} by {bump_percent}%"
    )]
    ReplacementUnderpriced {
        /// Existing priority.
        existing: Amount,
        /// Offered priority.
        offered: Amount,
        /// Required bump.
        bump_percent: u64,
    },
    /// The pool is full.
    #[error("mempool full ({max} transactions)")]
    PoolFull {
        /// Limit.
        max: usize,
    },
    /// This sender has too many queued.
    #[error("sender has {max} transactions queued, the limit")]
    SenderFull {
        /// Limit.
        max: usize,
    },
    /// The pool holds its limit of parked transactions (behind nonce gaps), whoever sent them.
    #[error("mempool holds {max} transactions parked behind nonce gaps, the limit; an includable transaction is still taken")]
    ParkedFull {
        /// Limit.
        max: usize,
    },
    /// This sender has too many parked behind a nonce gap.
    #[error("sender has {max} transactions parked behind a nonce gap, the limit; send the missing nonce first")]
    TooManyParked {
        /// Limit.
        max: usize,
    },
    /// The peg refuses the operation.
    #[error("{0}")]
    Peg(PegError),
    /// The journal of RPC-accepted transactions is full (RPC submissions only).
    #[error("transaction journal full ({max} transactions waiting for inclusion)")]
    JournalFull {
        /// Limit (`journal_max_txs`).
        max: usize,
    },
    /// The transaction entered the pool but could not be journaled: the node may lose it in
    /// a crash, so it is not reported accepted (RPC submissions only).
    #[error("accepted into the pool but not journaled: {0}")]
    JournalFailed(String),
}

impl Rejection {
    /// A stable snake_case name for clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::Oversized { .. } => "oversized",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::WrongChainId { .. } => "wrong_chain_id",
            Rejection::NonceTooLow { .. } => "nonce_too_low",
            Rejection::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
            Rejection::InsufficientBalance { .. } => "insufficient_balance",
            Rejection::Overflow => "overflow",
            Rejection::FeeTooLow(_) => "fee_too_low",
            Rejection::WrongFeeForm(_) => "wrong_fee_form",
            Rejection::AlreadyKnown(_) => "already_known",
            Rejection::ReplacementUnderpriced { .. } => "replacement_underpriced",
            Rejection::PoolFull { .. } => "pool_full",
            Rejection::SenderFull { .. } => "sender_full",
            Rejection::TooManyParked { .. } => "too_many_parked",
            Rejection::ParkedFull { .. } => "parked_full",
            Rejection::Peg(e) => e.code(),
            Rejection::JournalFull { .. } => "journal_full",
            Rejection::JournalFailed(_) => "journal_failed",
        }
    }
}

impl Rejection {
    /// Whether the transaction is refused whatever the chain's state: a peer that passes it
    /// on could have known (malformed, oversized, badly signed, for another chain, the other
    /// chain's fee form, a payout without valid attestations).
    pub fn is_stateless(&self) -> bool {
        match self {
            Rejection::Malformed(_)
            | Rejection::Oversized { .. }
            | Rejection::BadSignature(_)
            | Rejection::WrongChainId { .. }
            | Rejection::WrongFeeForm(_) => true,
            Rejection::Peg(e) => matches!(
                e,
                PegError::Signatures(_)
                    | PegError::ZeroId
                    | PegError::NotConfigured
                    | PegError::WrongChain(..)
            ),
            _ => false,
        }
    }
}

impl From<DecodeTxError> for Rejection {
    fn from(e: DecodeTxError) -> Self {
        match e {
            DecodeTxError::Oversized { size, max } => Rejection::Oversized { size, max },
            DecodeTxError::Malformed(m) => Rejection::Malformed(m),
            DecodeTxError::BadSignature(c) => Rejection::BadSignature(c.to_string()),
            e @ (DecodeTxError::EthereumNotTransfer | DecodeTxError::Ethereum(_)) => {
                Rejection::Malformed(e.to_string())
            }
        }
    }
}

impl From<FeeError> for Rejection {
    fn from(e: FeeError) -> Self {
        match e {
            FeeError::WrongForm { .. } => Rejection::WrongFeeForm(e),
            FeeError::Overflow => Rejection::Overflow,
            FeeError::TooLow { .. } | FeeError::TipAboveMax { .. } | FeeError::GasTooLow { .. } => {
                Rejection::FeeTooLow(e)
            }
        }
    }
}

/// What admission needs to know about the chain right now.
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    /// This chain's id.
    pub chain_id: ChainId,
    /// The fee rule.
    pub fee_rule: &'a dyn FeeRule,
    /// The base fee the next block will charge.
    pub base_fee: Amount,
    /// The peg, if this chain is pegged.
    pub peg: Option<&'a PegConfig>,
    /// Today's peg counters at the head.
    pub totals: Totals,
    /// Now, unix milliseconds (when a parked transaction arrived).
    pub now_ms: u64,
}

/// What admission knows about a payout's id at the head.
#[derive(Debug, Clone, Copy, Default)]
pub struct PegFacts {
    /// Where the payout's id was processed, if it was.
    pub processed: Option<BlockNumber>,
}

/// A sender's account nonce as last seen (at its last admission or prune) and the first
/// nonce at or after it that the pool does not hold: entries in `base..end` are includable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    base: Nonce,
    end: Nonce,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: RecoveredTx,
    priority: Amount,
    seq: u64,
    /// Arrival, unix milliseconds.
    arrived_ms: u64,
}

/// The pool. Not internally locked: the node wraps it in one mutex and inserts in batches.
#[derive(Debug, Default)]
pub struct Mempool {
    cfg: MempoolConfig,
    by_sender: HashMap<Address, BTreeMap<Nonce, Entry>>,
    by_hash: HashMap<Hash, (Address, Nonce)>,
    /// Pending payouts by peg id: one payout per id in the pool.
    payouts: HashMap<Hash, Hash>,
    /// Each pooled sender's includable run: what tells an includable entry from a parked one,
    /// kept current by every mutation so admission never walks a long queue.
    runs: HashMap<Address, Run>,
    /// Entries inside the runs (the rest of the pool is parked).
    in_runs: usize,
    seq: u64,
    last_sweep_ms: u64,
    /// Where the next announcement starts among the senders.
    announce_from: usize,
}

impl Mempool {
    /// An empty pool with these limits.
    pub fn new(cfg: MempoolConfig) -> Self {
        Self {
            cfg,
            ..Default::default()
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &Hash) -> Option<RecoveredTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce).map(|e| e.tx.clone())
    }

    /// Whether a transaction is pooled.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Up to `limit` includable pooled transactions to announce to peers again, payouts first,
    /// then by priority. Parked ones are not announced: no producer could include them.
    pub fn announce_candidates(&mut self, limit: usize) -> Vec<SignedTransaction> {
        // Bounded work under the pool lock: a sender's first few nonces are the ones a
        // producer needs, and a large pool is covered over several announcements (each starts
        // where the last one stopped).
        const PER_SENDER: usize = 16;
        let scan = limit.saturating_mul(4);
        let senders = self.by_sender.len().max(1);
        let start = self.announce_from % senders;
        let mut out: Vec<&Entry> = Vec::new();
        let mut visited = 0;
        for (sender, q) in self.by_sender.iter().cycle().skip(start).take(senders) {
            if out.len() >= scan {
                break;
            }
            visited += 1;
            let Some(run) = self.runs.get(sender) else {
                continue;
            };
            out.extend(q.range(run.base..run.end).take(PER_SENDER).map(|(_, e)| e));
        }
        out.sort_unstable_by_key(|e| (Reverse(e.priority), e.seq));
        out.truncate(limit);
        let txs = out.into_iter().map(|e| e.tx.signed().clone()).collect();
        self.announce_from = start + visited;
        txs
    }

    /// The nonce after the sender's last contiguous pooled transaction (`account_nonce` if none).
    pub fn pending_nonce(&self, sender: &Address, account_nonce: Nonce) -> Nonce {
        match self.runs.get(sender) {
            Some(run) if run.base == account_nonce => run.end,
            _ => self.walk_run(sender, account_nonce),
        }
    }

    /// [`Self::pending_nonce`] the slow way: walks the queue from `account_nonce`.
    fn walk_run(&self, sender: &Address, account_nonce: Nonce) -> Nonce {
        let mut next = account_nonce;
        if let Some(q) = self.by_sender.get(sender) {
            for n in q.range(account_nonce..).map(|(n, _)| *n) {
                if n != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Whether `sender`'s pooled transaction at `nonce` could be included now: no gap between
    /// the account nonce and it.
    fn includable(&self, sender: &Address, nonce: Nonce) -> bool {
        self.runs
            .get(sender)
            .is_some_and(|run| run.base <= nonce && nonce < run.end)
    }

    /// Replaces `sender`'s run, keeping the count of includable entries.
    fn set_run(&mut self, sender: Address, run: Option<Run>) {
        let old = match run {
            Some(r) => self.runs.insert(sender, r),
            None => self.runs.remove(&sender),
        };
        let len = |r: Run| (r.end - r.base) as usize;
        self.in_runs = self
            .in_runs
            .saturating_sub(old.map_or(0, len))
            .saturating_add(run.map_or(0, len));
    }

    /// Transactions held behind a nonce gap, in all.
    pub fn parked_len(&self) -> usize {
        self.by_hash.len().saturating_sub(self.in_runs)
    }

    /// `sender`'s run from `base` (its account nonce now): the cached one if it starts there.
    fn run_at(&self, sender: &Address, base: Nonce) -> Run {
        Run {
            base,
            end: self.pending_nonce(sender, base),
        }
    }

    /// The transaction a payout may push out of a full pool: among the last queued entry of
    /// each sender (so no one else's run is cut), a parked one before an includable one, then
    /// the lowest priority; never another payout. O(senders), and only when the pool is full.
    /// (Not `payer`'s own: cutting its run could park the payout it makes room for.)
    fn eviction_candidate(&self, payer: &Address) -> Option<Hash> {
        self.by_sender
            .iter()
            .filter(|(sender, _)| *sender != payer)
            .filter_map(|(sender, q)| {
                let (nonce, e) = q.last_key_value()?;
                let parked = !self.includable(sender, *nonce);
                (!e.tx.tx().kind.is_fee_exempt()).then_some((!parked, e.priority, e.tx.hash()))
            })
            .min_by_key(|(includable, priority, _)| (*includable, *priority))
            .map(|(_, _, h)| h)
    }

    /// Drops parked transactions older than the TTL (at most one sweep a second); returns how
    /// many went.
    pub fn expire_parked(&mut self, now_ms: u64) -> usize {
        if now_ms < self.last_sweep_ms.saturating_add(1000) {
            return 0;
        }
        self.last_sweep_ms = now_ms;
        let ttl = self.cfg.parked_ttl_ms;
        let mut expired = Vec::new();
        for (sender, q) in &self.by_sender {
            let Some(run) = self.runs.get(sender) else {
                continue;
            };
            for e in q.range(run.end..).map(|(_, e)| e) {
                if now_ms.saturating_sub(e.arrived_ms) > ttl {
                    expired.push(e.tx.hash());
                }
            }
        }
        self.remove_all(&expired);
        expired.len()
    }

    /// Admits a transaction against the sender's current account, or says precisely why not.
    pub fn insert(
        &mut self,
        tx: RecoveredTx,
        account: Account,
        facts: PegFacts,
        ctx: &Admission<'_>,
    ) -> Result<Hash, Rejection> {
        let t = tx.tx();
        if t.chain_id != ctx.chain_id {
            return Err(Rejection::WrongChainId {
                expected: ctx.chain_id,
                got: t.chain_id,
            });
        }
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(Rejection::AlreadyKnown(hash));
        }
        let weight = tx.weight() as Weight;
        let exempt = t.kind.is_fee_exempt();
        let max_fee = if exempt {
            Amount::ZERO
        } else {
            let max = ctx.fee_rule.max_charge(&t.fee, weight)?;
            // Refuse what the next block could not include at today's base fee.
            ctx.fee_rule.charge(&t.fee, weight, ctx.base_fee)?;
            max
        };
        let sender = tx.sender();
        check_tx(
            ctx.peg,
            &resolve(ctx.peg, &t.kind, sender),
            &ctx.totals,
            facts.processed,
        )
        .map_err(Rejection::Peg)?;
        // The account was read from the tip before the pool lock was taken; a block committed
        // in between has pruned the pool to the newer nonce, which is the one that counts.
        let account = Account {
            nonce: self
                .runs
                .get(&sender)
                .map_or(account.nonce, |r| r.base.max(account.nonce)),
            ..account
        };
        let payout = t.kind.payout_id();
        // Includable now: nothing missing between the account nonce and this one.
        // (Only an admitted transaction stores its sender's run: refusals leave nothing behind.)
        let run = self.run_at(&sender, account.nonce);
        let includable = t.nonce >= run.base && t.nonce <= run.end;
        // One payout per id waits in the pool. Its own sender may move it to an earlier nonce:
        // a member whose batch of payouts had one refused re-issues the ones queued behind the
        // gap, which could otherwise never be included. And an includable payout replaces a
        // parked one, whoever sent either: the signatures are public, so a stranger could
        // otherwise park a copy far past its nonce and freeze the transfer.
        let mut moved = None;
        if let Some(id) = payout {
            if let Some(pending) = self.payouts.get(&id).filter(|h| **h != hash) {
                match self.by_hash.get(pending) {
                    Some((s, n)) if *s == sender && t.nonce < *n => moved = Some(*pending),
                    Some((s, n)) if includable && !self.includable(s, *n) => moved = Some(*pending),
                    _ => return Err(Rejection::Peg(PegError::IdPending(id))),
                }
            }
        }
        if t.nonce < account.nonce {
            return Err(Rejection::NonceTooLow {
                account: account.nonce,
                got: t.nonce,
            });
        }
        if t.nonce > account.nonce.saturating_add(self.cfg.max_nonce_gap) {
            return Err(Rejection::NonceTooFarAhead {
                account: account.nonce,
                got: t.nonce,
                max_gap: self.cfg.max_nonce_gap,
            });
        }
        let needed = t
            .kind
            .value()
            .checked_add(max_fee)
            .ok_or(Rejection::Overflow)?;
        if account.balance < needed {
            return Err(Rejection::InsufficientBalance {
                balance: account.balance,
                needed,
            });
        }
        // Payouts go first: they carry coins users are waiting for, and pay no fee.
        let priority = if exempt {
            Amount(u128::MAX)
        } else {
            ctx.fee_rule.priority(&t.fee, weight, ctx.base_fee)
        };
        let queue_len = self.by_sender.get(&sender).map_or(0, |q| q.len());
        let mut evict = None;
        if let Some(existing) = self.by_sender.get(&sender).and_then(|q| q.get(&t.nonce)) {
            let required = existing
                .priority
                .0
                .saturating_mul(100 + u128::from(self.cfg.replace_bump_percent))
                / 100;
            if priority.0 <= existing.priority.0 || priority.0 < required {
                return Err(Rejection::ReplacementUnderpriced {
                    existing: existing.priority,
                    offered: priority,
                    bump_percent: self.cfg.replace_bump_percent,
                });
            }
            let old = existing.tx.hash();
            let old_payout = existing.tx.tx().kind.payout_id();
            self.by_hash.remove(&old);
            if let Some(id) = old_payout {
                self.payouts.remove(&id);
            }
        } else {
            // (A payout moved or replacing a parked copy frees the slot of the one it replaces.)
            if self.by_hash.len() - usize::from(moved.is_some()) >= self.cfg.max_txs {
                // An includable payout still gets in: whatever others fill the pool with, the
                // transfer it completes must not wait for them (invariant 7). It takes the
                // place of the cheapest last-queued transaction, a parked one first.
                evict = if exempt && payout.is_some() && includable {
                    self.eviction_candidate(&sender)
                } else {
                    None
                };
                if evict.is_none() {
                    return Err(Rejection::PoolFull {
                        max: self.cfg.max_txs,
                    });
                }
            }
            if queue_len >= self.cfg.max_per_sender {
                return Err(Rejection::SenderFull {
                    max: self.cfg.max_per_sender,
                });
            }
            if !includable && self.parked_len() >= self.cfg.max_parked {
                return Err(Rejection::ParkedFull {
                    max: self.cfg.max_parked,
                });
            }
            if !includable {
                // Everything of the sender's queue outside its run is parked.
                let parked = queue_len.saturating_sub((run.end - run.base) as usize);
                if parked >= self.cfg.max_parked_per_sender {
                    return Err(Rejection::TooManyParked {
                        max: self.cfg.max_parked_per_sender,
                    });
                }
            }
        }
        // Every check passed: only now does anything leave the pool.
        if let Some(old) = moved {
            self.remove(&old);
        }
        if let Some(v) = evict {
            self.remove(&v);
        }
        self.seq += 1;
        let nonce = t.nonce;
        self.by_hash.insert(hash, (sender, nonce));
        if let Some(id) = payout {
            self.payouts.insert(id, hash);
        }
        self.by_sender.entry(sender).or_default().insert(
            nonce,
            Entry {
                tx,
                priority,
                seq: self.seq,
                arrived_ms: ctx.now_ms,
            },
        );
        // The run may have moved (the entry a move left), so read it again; an entry at its
        // end extends it over whatever already follows.
        let mut run = self.run_at(&sender, account.nonce);
        if nonce == run.end {
            let q = self.by_sender.get(&sender);
            while q.is_some_and(|q| q.contains_key(&run.end)) {
                run.end += 1;
            }
        }
        self.set_run(sender, Some(run));
        Ok(hash)
    }

    /// Candidates for the next block, best first: each sender's transactions in nonce order
    /// starting at its account nonce, senders interleaved by priority, up to `max_weight`.
    pub fn select(
        &self,
        account_nonce: impl Fn(&Address) -> Nonce,
        max_weight: Weight,
    ) -> Vec<RecoveredTx> {
        // (priority, earliest arrival first, sender, nonce)
        let mut heap: BinaryHeap<(Amount, Reverse<u64>, Address, Nonce)> = BinaryHeap::new();
        for (sender, q) in &self.by_sender {
            let n = account_nonce(sender);
            if let Some(e) = q.get(&n) {
                heap.push((e.priority, Reverse(e.seq), *sender, n));
            }
        }
        let mut out = Vec::new();
        let mut weight: Weight = 0;
        while let Some((_, _, sender, nonce)) = heap.pop() {
            let Some(q) = self.by_sender.get(&sender) else {
                continue;
            };
            let Some(e) = q.get(&nonce) else { continue };
            let w = e.tx.weight() as Weight;
            if weight + w > max_weight {
                // Smaller transactions of other senders may still fit.
                continue;
            }
            weight += w;
            out.push(e.tx.clone());
            if let Some(next) = q.get(&(nonce + 1)) {
                heap.push((next.priority, Reverse(next.seq), sender, nonce + 1));
            }
        }
        out
    }

    /// Drops every transaction of `sender` below its new account nonce.
    pub fn prune_sender(&mut self, sender: &Address, account_nonce: Nonce) {
        let Some(q) = self.by_sender.get_mut(sender) else {
            return;
        };
        let keep = q.split_off(&account_nonce);
        for e in q.values() {
            self.by_hash.remove(&e.tx.hash());
            if let Some(id) = e.tx.tx().kind.payout_id() {
                self.payouts.remove(&id);
            }
        }
        if keep.is_empty() {
            self.by_sender.remove(sender);
            self.set_run(*sender, None);
        } else {
            *q = keep;
            // Within the run, its end stands (what is left of it is still contiguous);
            // otherwise it is found again from the new base.
            let run = match self.runs.get(sender) {
                Some(r) if r.base <= account_nonce && account_nonce <= r.end => Run {
                    base: account_nonce,
                    end: r.end,
                },
                _ => Run {
                    base: account_nonce,
                    end: self.walk_run(sender, account_nonce),
                },
            };
            self.set_run(*sender, Some(run));
        }
    }

    /// Drops the pooled payouts of `ids`, which a committed block just paid: they can never be
    /// included. Producers drop theirs when they try them, but a node that does not produce
    /// would keep them, and one held at its sender's account nonce would hide the sender's
    /// nonce gap (its pending nonce counts it) and keep the sender's later payouts waiting.
    /// Returns how many went.
    pub fn drop_paid(&mut self, ids: impl IntoIterator<Item = Hash>) -> usize {
        let hashes: Vec<Hash> = ids
            .into_iter()
            .filter_map(|id| self.payouts.get(&id).copied())
            .collect();
        self.remove_all(&hashes);
        hashes.len()
    }

    /// Removes several transactions.
    pub fn remove_all(&mut self, hashes: &[Hash]) {
        for h in hashes {
            self.remove(h);
        }
    }

    /// Removes one transaction (e.g. one that can no longer be included).
    pub fn remove(&mut self, hash: &Hash) -> Option<RecoveredTx> {
        let (sender, nonce) = self.by_hash.remove(hash)?;
        let q = self.by_sender.get_mut(&sender)?;
        let e = q.remove(&nonce);
        if q.is_empty() {
            self.by_sender.remove(&sender);
            self.set_run(sender, None);
        } else if let Some(run) = self.runs.get(&sender).copied() {
            // What followed it is now behind a gap.
            if run.base <= nonce && nonce < run.end {
                self.set_run(sender, Some(Run { end: nonce, ..run }));
            }
        }
        if let Some(id) = e.as_ref().and_then(|e| e.tx.tx().kind.payout_id()) {
            self.payouts.remove(&id);
        }
        e.map(|e| e.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fee::{BaseFeeRule, FeeRateRule};
    use primitives::crypto::SecretKey;
    use primitives::peg::{Direction, PegRole};
    use primitives::tx::{Fee, Transaction, TxKind};

    const CHAIN: ChainId = 5;

    /// The fee-rate rule the tests admit under.
    static RULE: FeeRateRule = FeeRateRule {
        min_fee_rate: Amount(10),
    };

    fn ctx(rule: &dyn FeeRule) -> Admission<'_> {
        Admission {
            chain_id: CHAIN,
            fee_rule: rule,
            base_fee: Amount::ZERO,
            peg: None,
            totals: Totals::default(),
            now_ms: 0,
        }
    }

    fn tx(
        key: &SecretKey,
        chain_id: ChainId,
        nonce: Nonce,
        amount: u128,
        fee: u128,
    ) -> RecoveredTx {
        transfer(key, chain_id, nonce, amount, Fee::Flat { fee: Amount(fee) })
    }

    /// A signed transfer of `amount` to `[7; 20]` paying `fee`.
    fn transfer(
        key: &SecretKey,
        chain_id: ChainId,
        nonce: Nonce,
        amount: u128,
        fee: Fee,
    ) -> RecoveredTx {
        Transaction {
            chain_id,
            nonce,
            fee,
            kind: TxKind::Transfer {
                to: Address([7; 20]),
                amount: Amount(amount),
            },
        }
        .sign(key)
        .recover()
        .unwrap()
    }

    /// A default pool holding `k`'s transfers at `nonces`.
    fn pool_with(
        k: &SecretKey,
        nonces: impl IntoIterator<Item = Nonce>,
        c: &Admission<'_>,
    ) -> Mempool {
        let mut pool = Mempool::new(MempoolConfig::default());
        for n in nonces {
            offer(&mut pool, tx(k, CHAIN, n, 1, 10_000), c).unwrap();
        }
        pool
    }

    /// Offers `t` from a rich sender with no peg facts.
    fn offer(pool: &mut Mempool, t: RecoveredTx, c: &Admission<'_>) -> Result<Hash, Rejection> {
        pool.insert(t, rich(), PegFacts::default(), c)
    }

    fn rich() -> Account {
        Account {
            balance: Amount(1_000_000_000),
            nonce: 3,
        }
    }

    #[test]
    fn every_rejection_reason() {
        let k = SecretKey::random();
        let c = ctx(&RULE);
        let mut pool = Mempool::new(MempoolConfig {
            max_txs: 3,
            max_per_sender: 2,
            max_nonce_gap: 5,
            replace_bump_percent: 10,
            ..Default::default()
        });
        let code = |res: Result<Hash, Rejection>| res.err().map(|e| e.code());

        assert_eq!(
            code(offer(&mut pool, tx(&k, 99, 3, 1, 10_000), &c)),
            Some("wrong_chain_id")
        );
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 2, 1, 10_000), &c)),
            Some("nonce_too_low")
        );
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 9, 1, 10_000), &c)),
            Some("nonce_too_far_ahead")
        );
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 3, 1, 10), &c)),
            Some("fee_too_low")
        );
        assert_eq!(
            code(offer(
                &mut pool,
                tx(&k, CHAIN, 3, 1_000_000_000, 10_000),
                &c
            )),
            Some("insufficient_balance")
        );
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 3, u128::MAX, 10_000), &c)),
            Some("overflow")
        );
        let dynamic = transfer(
            &k,
            CHAIN,
            3,
            1,
            Fee::Dynamic {
                max_fee: Amount(1),
                max_tip: Amount(1),
            },
        );
        assert_eq!(code(offer(&mut pool, dynamic, &c)), Some("wrong_fee_form"));

        let first = tx(&k, CHAIN, 3, 1, 10_000);
        assert!(offer(&mut pool, first.clone(), &c).is_ok());
        assert_eq!(code(offer(&mut pool, first, &c)), Some("already_known"));
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 3, 2, 10_500), &c)),
            Some("replacement_underpriced")
        );
        let replacement = tx(&k, CHAIN, 3, 2, 20_000);
        assert!(offer(&mut pool, replacement.clone(), &c).is_ok());
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.get(&replacement.hash()), Some(replacement));

        assert!(offer(&mut pool, tx(&k, CHAIN, 4, 1, 10_000), &c).is_ok());
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 5, 1, 10_000), &c)),
            Some("sender_full")
        );
        let k2 = SecretKey::random();
        assert!(offer(&mut pool, tx(&k2, CHAIN, 3, 1, 10_000), &c).is_ok());
        let k3 = SecretKey::random();
        assert_eq!(
            code(offer(&mut pool, tx(&k3, CHAIN, 3, 1, 10_000), &c)),
            Some("pool_full")
        );

        // Decode-level refusals map onto their own reasons.
        assert_eq!(
            Rejection::from(DecodeTxError::Malformed("x".into())).code(),
            "malformed"
        );
        assert_eq!(
            Rejection::from(DecodeTxError::Oversized { size: 2, max: 1 }).code(),
            "oversized"
        );
        assert_eq!(
            Rejection::from(DecodeTxError::BadSignature(
                primitives::crypto::CryptoError::HighS
            ))
            .code(),
            "bad_signature"
        );
    }

    #[test]
    fn base_fee_below_current_is_refused() {
        let k = SecretKey::random();
        let r = BaseFeeRule {
            initial_base_fee: Amount(100),
            min_base_fee: Amount(1),
        };
        let c = Admission {
            chain_id: CHAIN,
            fee_rule: &r,
            base_fee: Amount(100),
            peg: None,
            totals: Totals::default(),
            now_ms: 0,
        };
        let t = transfer(
            &k,
            CHAIN,
            3,
            1,
            Fee::Dynamic {
                max_fee: Amount(99),
                max_tip: Amount(1),
            },
        );
        let mut pool = Mempool::new(MempoolConfig::default());
        assert_eq!(
            offer(&mut pool, t, &c).err().map(|e| e.code()),
            Some("fee_too_low")
        );
    }

    #[test]
    fn select_orders_by_priority_and_nonce_and_prune_drops_included() {
        let c = ctx(&RULE);
        let mut pool = Mempool::new(MempoolConfig::default());
        let cheap = SecretKey::random();
        let dear = SecretKey::random();
        for n in 3..6 {
            offer(&mut pool, tx(&cheap, CHAIN, n, 1, 10_000), &c).unwrap();
            offer(&mut pool, tx(&dear, CHAIN, n, 1, 50_000), &c).unwrap();
        }
        // A gap: nonce 7 without 6 is held but not selected.
        offer(&mut pool, tx(&dear, CHAIN, 7, 1, 90_000), &c).unwrap();
        let picked = pool.select(|_| 3, u64::MAX);
        assert_eq!(picked.len(), 6);
        assert!(picked[..3].iter().all(|t| t.sender() == dear.address()));
        assert_eq!(
            picked
                .iter()
                .filter(|t| t.sender() == cheap.address())
                .map(|t| t.nonce())
                .collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(pool.pending_nonce(&dear.address(), 3), 6);

        // Weight limit.
        let one = picked[0].size() as u64;
        assert_eq!(pool.select(|_| 3, one * 2).len(), 2);

        pool.prune_sender(&dear.address(), 6);
        assert_eq!(pool.len(), 4);
        pool.prune_sender(&cheap.address(), 6);
        assert_eq!(pool.len(), 1);
    }
    /// A sidechain peg of `members` with threshold 1, for payout tests.
    fn side_peg(members: &[&SecretKey]) -> PegConfig {
        PegConfig {
            role: PegRole::Side,
            params: primitives::testing::peg_params(
                members.iter().map(|k| k.address()).collect(),
                1,
            ),
            domain: Hash([3; 32]),
        }
    }

    /// A Mint of id `[id; 32]` attested by `member`, sent by `sender` at `nonce`.
    fn mint_tx(
        peg: &PegConfig,
        member: &SecretKey,
        sender: &SecretKey,
        nonce: Nonce,
        id: u8,
    ) -> RecoveredTx {
        let msg = primitives::peg::PegMessage {
            domain: peg.domain,
            direction: Direction::MainToSide,
            id: Hash([id; 32]),
            recipient: Address([4; 20]),
            amount: Amount(10),
        };
        Transaction {
            chain_id: CHAIN,
            nonce,
            fee: Fee::Flat { fee: Amount(0) },
            kind: TxKind::Mint {
                id: msg.id,
                recipient: msg.recipient,
                amount: msg.amount,
                signatures: vec![member.sign_prehash(&msg.signing_hash())],
            },
        }
        .sign(sender)
        .recover()
        .unwrap()
    }

    #[test]
    fn a_member_moves_its_own_pending_payout_to_an_earlier_nonce_only() {
        let member = SecretKey::random();
        let other = SecretKey::random();
        let peg = side_peg(&[&member, &other]);
        let c = Admission {
            peg: Some(&peg),
            ..ctx(&RULE)
        };
        let mint = |key: &SecretKey, nonce: Nonce, id: u8| mint_tx(&peg, &member, key, nonce, id);
        let mut pool = Mempool::new(MempoolConfig::default());
        // Payouts 1 and 2 at nonces 4 and 5 behind a gap at 3 (its payout was refused).
        offer(&mut pool, mint(&member, 4, 1), &c).unwrap();
        let stuck = offer(&mut pool, mint(&member, 5, 2), &c).unwrap();
        assert_eq!(pool.pending_nonce(&member.address(), 3), 3);
        // Another sender's parked copy cannot take over a pending id, and the sender cannot
        // queue it later.
        let e = offer(&mut pool, mint(&other, 10, 1), &c).unwrap_err();
        assert_eq!(e.code(), "peg_id_pending");
        let e = offer(&mut pool, mint(&member, 6, 1), &c).unwrap_err();
        assert_eq!(e.code(), "peg_id_pending");
        // Re-issued from the gap, both move down and the queue is contiguous again.
        offer(&mut pool, mint(&member, 3, 1), &c).unwrap();
        offer(&mut pool, mint(&member, 4, 2), &c).unwrap();
        assert!(pool.get(&stuck).is_none(), "the old copy left the pool");
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.pending_nonce(&member.address(), 3), 5);
        assert_eq!(pool.select(|_| 3, u64::MAX).len(), 2);

        // A payout that can be included now replaces a parked one of the same id, whoever
        // sent either (the stranger's copy below is parked 1,000 nonces ahead).
        let stranger = SecretKey::random();
        let zero = Account::default();
        let parked = pool
            .insert(mint(&stranger, 1000, 7), zero, PegFacts::default(), &c)
            .unwrap();
        let e = offer(&mut pool, mint(&other, 9, 7), &c).unwrap_err();
        assert_eq!(e.code(), "peg_id_pending", "parked does not replace parked");
        let ready = offer(&mut pool, mint(&other, 3, 7), &c).unwrap();
        assert!(pool.get(&parked).is_none(), "the parked copy is gone");
        assert!(pool.get(&ready).is_some());
        // But an includable payout is not pushed out by another includable one.
        let e = pool
            .insert(mint(&stranger, 0, 7), zero, PegFacts::default(), &c)
            .unwrap_err();
        assert_eq!(e.code(), "peg_id_pending");

        // Another sender's payout of id 1 is committed: the member's own, at its account
        // nonce, can never be included and leaves; the gap it hid shows in the pending nonce.
        let before = pool.len();
        assert_eq!(pool.drop_paid([Hash([1; 32]), Hash([42; 32])]), 1);
        assert_eq!(pool.len(), before - 1);
        assert_eq!(pool.pending_nonce(&member.address(), 3), 3);
        assert_eq!(pool.drop_paid([Hash([1; 32])]), 0, "nothing left of it");
    }

    /// The cached runs always equal a walk of the queue, whatever mix of admissions,
    /// removals and prunes (a seeded random sequence over a few senders).
    #[test]
    fn the_cached_includable_run_always_matches_a_walk() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let c = ctx(&RULE);
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut base = [0u64; 3];
        let mut hashes: Vec<Hash> = Vec::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..600 {
            let who = (next() % 3) as usize;
            match next() % 10 {
                0..=5 => {
                    let nonce = base[who] + next() % 8;
                    let account = Account {
                        balance: Amount(1_000_000_000),
                        nonce: base[who],
                    };
                    if let Ok(h) = pool.insert(
                        tx(&keys[who], CHAIN, nonce, 1, 10_000 + next() as u128 % 5_000),
                        account,
                        PegFacts::default(),
                        &c,
                    ) {
                        hashes.push(h);
                    }
                }
                6..=7 if !hashes.is_empty() => {
                    let h = hashes.swap_remove((next() as usize) % hashes.len());
                    pool.remove(&h);
                }
                _ => {
                    base[who] += next() % 3;
                    pool.prune_sender(&keys[who].address(), base[who]);
                }
            }
            for (i, k) in keys.iter().enumerate() {
                let a = k.address();
                if let Some(run) = pool.runs.get(&a) {
                    assert_eq!(run.base, base[i]);
                    assert_eq!(run.end, pool.walk_run(&a, base[i]), "sender {i}");
                }
                assert_eq!(pool.runs.contains_key(&a), pool.by_sender.contains_key(&a));
            }
            let in_runs: u64 = pool.runs.values().map(|r| r.end - r.base).sum();
            assert_eq!(pool.in_runs as u64, in_runs);
            let parked: usize = pool
                .by_sender
                .iter()
                .map(|(a, q)| q.range(pool.runs[a].end..).count())
                .sum();
            assert_eq!(pool.parked_len(), parked);
        }
    }

    #[test]
    fn an_account_read_before_a_block_pruned_the_pool_does_not_park_the_sender() {
        let k = SecretKey::random();
        let c = ctx(&RULE);
        let mut pool = pool_with(&k, 3..=6, &c);
        // A block took nonces 3 and 4 while the next admission still held account nonce 3.
        pool.prune_sender(&k.address(), 5);
        offer(&mut pool, tx(&k, CHAIN, 7, 1, 10_000), &c).unwrap();
        assert_eq!(pool.pending_nonce(&k.address(), 5), 8);
        assert_eq!(pool.parked_len(), 0);
        // And that stale nonce does not let a used one in.
        let e = offer(&mut pool, tx(&k, CHAIN, 4, 2, 10_000), &c).unwrap_err();
        assert_eq!(e.code(), "nonce_too_low");
    }

    #[test]
    fn announcements_rotate_over_the_senders() {
        let c = ctx(&RULE);
        let mut pool = Mempool::new(MempoolConfig::default());
        for _ in 0..10 {
            offer(&mut pool, tx(&SecretKey::random(), CHAIN, 3, 1, 10_000), &c).unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            for t in pool.announce_candidates(1) {
                seen.insert(t.hash());
            }
        }
        assert!(seen.len() >= 3, "{} distinct", seen.len());
    }

    #[test]
    fn announcements_carry_includable_transactions_only() {
        let k = SecretKey::random();
        let c = ctx(&RULE);
        let mut pool = pool_with(&k, [3, 4, 6], &c);
        let nonces: Vec<Nonce> = pool
            .announce_candidates(10)
            .iter()
            .map(|t| t.tx.nonce)
            .collect();
        assert_eq!(nonces.len(), 2, "nonce 6 is parked behind 5");
        assert!(nonces.contains(&3) && nonces.contains(&4));
        assert_eq!(pool.announce_candidates(1).len(), 1);
    }

    #[test]
    fn a_payout_pushes_the_cheapest_transaction_out_of_a_full_pool() {
        let member = SecretKey::random();
        let peg = side_peg(&[&member]);
        let c = Admission {
            peg: Some(&peg),
            ..ctx(&RULE)
        };
        let mint = |id: u8, nonce: Nonce| mint_tx(&peg, &member, &member, nonce, id);
        let mut pool = Mempool::new(MempoolConfig {
            max_txs: 3,
            ..Default::default()
        });
        let (a, b) = (SecretKey::random(), SecretKey::random());
        let cheap = offer(&mut pool, tx(&a, CHAIN, 3, 1, 10_000), &c).unwrap();
        let parked = offer(&mut pool, tx(&a, CHAIN, 9, 1, 90_000), &c).unwrap();
        let dear = offer(&mut pool, tx(&b, CHAIN, 3, 1, 50_000), &c).unwrap();
        // A transfer does not get into the full pool, nor a parked payout; an includable
        // payout does, in place of the parked transfer.
        let e = offer(&mut pool, tx(&SecretKey::random(), CHAIN, 3, 1, 99_000), &c).unwrap_err();
        assert_eq!(e.code(), "pool_full");
        let e = offer(&mut pool, mint(1, 30), &c).unwrap_err();
        assert_eq!(e.code(), "pool_full");
        offer(&mut pool, mint(1, 3), &c).unwrap();
        assert!(pool.get(&parked).is_none());
        // Then the cheapest includable tail; never another payout.
        offer(&mut pool, mint(2, 4), &c).unwrap();
        assert!(pool.get(&cheap).is_none());
        assert!(pool.get(&dear).is_some());
        offer(&mut pool, mint(3, 5), &c).unwrap();
        assert!(pool.get(&dear).is_none());
        let e = offer(&mut pool, mint(4, 6), &c).unwrap_err();
        assert_eq!(e.code(), "pool_full", "payouts do not push each other out");
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn parked_transactions_are_bounded_per_sender_and_expire() {
        let k = SecretKey::random();
        let mut c = ctx(&RULE);
        let code = |res: Result<Hash, Rejection>| res.err().map(|e| e.code());
        let mut pool = Mempool::new(MempoolConfig {
            max_parked_per_sender: 2,
            max_parked: 3,
            parked_ttl_ms: 10_000,
            ..Default::default()
        });
        // Account nonce 3: after 3, nonces 5 and 6 are parked behind the gap at 4.
        c.now_ms = 1_000;
        let ready = offer(&mut pool, tx(&k, CHAIN, 3, 1, 10_000), &c).unwrap();
        for n in [5, 6] {
            offer(&mut pool, tx(&k, CHAIN, n, 1, 10_000), &c).unwrap();
        }
        assert_eq!(
            code(offer(&mut pool, tx(&k, CHAIN, 7, 1, 10_000), &c)),
            Some("too_many_parked")
        );
        // All senders together park at most 3: a second sender gets one more, then none.
        let k2 = SecretKey::random();
        let other = offer(&mut pool, tx(&k2, CHAIN, 9, 1, 10_000), &c).unwrap();
        assert_eq!(
            code(offer(&mut pool, tx(&k2, CHAIN, 10, 1, 10_000), &c)),
            Some("parked_full")
        );
        assert_eq!(pool.parked_len(), 3);
        pool.remove(&other);
        assert_eq!(pool.parked_len(), 2);
        // Includable ones are not limited by it.
        offer(&mut pool, tx(&k, CHAIN, 4, 1, 10_000), &c).unwrap();
        offer(&mut pool, tx(&k, CHAIN, 8, 1, 10_000), &c).unwrap();
        assert_eq!(pool.len(), 5);
        // Nonce 8 is parked (7 is missing); past the TTL it goes, the contiguous 3..=6 stay.
        assert_eq!(pool.expire_parked(5_000), 0, "not yet");
        assert_eq!(pool.expire_parked(20_000), 1);
        assert_eq!(pool.len(), 4);
        assert!(pool.get(&ready).is_some());
        assert_eq!(pool.pending_nonce(&k.address(), 3), 7);
    }
}
