//! The chain state every task of a node shares: the canonical head and its accounts, the
//! mempool, the store, the journal of RPC-accepted transactions, metrics and the head feed.
//! It knows nothing of the tasks (driver, network, RPC) that use it, so they all point down
//! to it and never at each other through it.

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use tokio::sync::broadcast;

use crate::config::NodeConfig;
use crate::fee::FeeRule;
use crate::journal::{Journal, JournalEntry, JournalError};
use crate::mempool::{Admission, Mempool, PegFacts, Rejection};
use crate::metrics::Metrics;
use crate::rules::ChainRules;
use crate::state::State;
use crate::store::{LoadedState, SinceCheckpoint, Store, StoreError};
use primitives::block::Header;
use primitives::genesis::{Genesis, GenesisError};
use primitives::tx::{RecoveredTx, SignedTransaction};
use primitives::types::{Address, Amount, Hash, Nonce, Slot};
use rpc_api::types::BlockSummary;

/// Errors opening the shared chain from a data dir.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal of RPC-accepted transactions failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Genesis is unusable for this chain.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The finality store failed.
    #[error(transparent)]
    Finality(#[from] crate::finality::FinalityError),
}

/// The canonical head and the account state after it, always read together.
#[derive(Debug)]
pub struct Tip {
    /// Accounts after the head.
    pub state: State,
    /// The head header.
    pub head: Header,
    /// Its hash.
    pub head_hash: Hash,
    /// Transactions in the head block.
    pub head_tx_count: usize,
}

/// What [`Chain::submit_local`] made of a submission.
#[derive(Debug)]
pub struct Submitted {
    /// One answer per submitted transaction, in order.
    pub results: Vec<Result<Hash, Rejection>>,
    /// What the pool took, to be passed on to peers. It includes any whose journal write
    /// failed: the pool holds them all the same, so peers should hear of them.
    pub admitted: Vec<SignedTransaction>,
}

/// Everything the node's tasks share. Locks are held briefly and never across `.await`.
pub struct Chain {
    /// This chain's rules.
    pub rules: ChainRules,
    /// The genesis specification.
    pub genesis: Genesis,
    /// Hash of block 0.
    pub genesis_hash: Hash,
    /// The fee rule.
    pub fee_rule: Box<dyn FeeRule>,
    /// The peg, if this chain is pegged.
    pub peg: Option<primitives::peg::PegConfig>,
    /// Durable storage.
    pub store: Store,
    /// The transactions accepted from this node's RPC clients, until included.
    pub journal: Journal,
    tip: RwLock<Tip>,
    mempool: Mutex<Mempool>,
    /// Metrics.
    pub metrics: Metrics,
    /// New canonical heads.
    pub heads: broadcast::Sender<BlockSummary>,
    /// This node's authority address, if it produces.
    pub authority: Option<Address>,
    /// Finality: its store, the authority set, the status.
    pub finality: crate::finality::Finality,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("name", &self.rules.name)
            .finish()
    }
}

impl Chain {
    /// Opens the store and rebuilds the state from it; also returns what the blocks after the
    /// durable checkpoint changed, for the driver's next checkpoint.
    pub fn open(
        rules: ChainRules,
        config: &NodeConfig,
        authority: Option<Address>,
    ) -> Result<(Self, SinceCheckpoint), OpenError> {
        let store = Store::open(&config.data_dir)?;
        let genesis = store.genesis()?.ok_or(StoreError::NotInitialized)?;
        let fee_rule = rules.fee_rule(&genesis)?;
        let peg = rules.peg_config(&genesis)?;
        let LoadedState {
            state,
            head,
            since_checkpoint,
        } = store.load_state()?;
        let metrics = Metrics::new(rules.name);
        metrics.head_height.set(head.block.header.number as i64);
        let journal = Journal::open(
            &config.data_dir,
            config.journal_max_txs(),
            metrics.journal_txs.clone(),
        )?;
        let (heads, _) = broadcast::channel(256);
        let genesis_hash = genesis.block().hash();
        let finality = crate::finality::Finality::open(&config.data_dir, &genesis, genesis_hash)?;
        let chain = Self {
            genesis_hash,
            finality,
            tip: RwLock::new(Tip {
                state,
                head_hash: head.block.hash(),
                head_tx_count: head.block.transactions.len(),
                head: head.block.header,
            }),
            mempool: Mutex::new(Mempool::new(config.mempool())),
            rules,
            genesis,
            fee_rule,
            peg,
            store,
            journal,
            metrics,
            heads,
            authority,
        };
        Ok((chain, since_checkpoint))
    }

    /// Sets the finality gauges from the head and the last final block.
    pub fn update_finality_metrics(&self) {
        let f = self.finality.final_block();
        let (head_number, head_ms) = {
            let tip = self.tip();
            (tip.head.number, tip.head.timestamp_ms)
        };
        let final_ms = self
            .store
            .header(&f.hash)
            .ok()
            .flatten()
            .map_or(head_ms, |h| h.timestamp_ms);
        let m = &self.metrics;
        m.finalized_height.set(f.number as i64);
        m.finality_lag_blocks
            .set(head_number.saturating_sub(f.number) as i64);
        m.finality_lag_ms
            .set(head_ms.saturating_sub(final_ms) as i64);
    }

    /// Read access to the head and state.
    pub fn tip(&self) -> RwLockReadGuard<'_, Tip> {
        // A poisoned lock means a task panicked mid-update; the data is still the last consistent write.
        self.tip.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the head and state (block production only).
    pub fn tip_mut(&self) -> RwLockWriteGuard<'_, Tip> {
        self.tip.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The mempool.
    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `address`'s account nonce at the tip and its pending nonce: past its contiguous pooled
    /// transactions. The tip and the pool are locked one after the other, never together, and a
    /// committed block moves the tip before it prunes the pool: a tip read that went stale
    /// while the pool lock was awaited would see its transactions already pruned and answer a
    /// nonce the chain has used (a wallet that asked `pending` then sent "nonce too low"). So
    /// the tip is read again after the pool, until the two agree.
    pub fn nonces(&self, address: &Address) -> (Nonce, Nonce) {
        let mut nonce = self.tip().state.account(address).nonce;
        for _ in 0..8 {
            let pending = self.mempool().pending_nonce(address, nonce);
            let now = self.tip().state.account(address).nonce;
            if now == nonce {
                return (nonce, pending);
            }
            nonce = now;
        }
        // Blocks landing faster than three lock round trips: the tip's nonce is still a
        // nonce the chain has not used.
        let pending = self.mempool().pending_nonce(address, nonce);
        (nonce, pending.max(nonce))
    }

    /// The base fee the child of `head` charges.
    pub fn base_fee_after(&self, head: &Header) -> Amount {
        if head.number == 0 {
            self.fee_rule.initial_base_fee()
        } else {
            self.fee_rule.next_base_fee(
                head.base_fee,
                head.weight_used,
                self.genesis.max_block_weight,
            )
        }
    }

    /// The leader of `slot`.
    pub fn leader(&self, slot: Slot) -> Address {
        let a = &self.genesis.authorities;
        a[(slot % a.len() as u64) as usize]
    }

    /// Largest accepted encoded transaction.
    pub fn max_tx_size(&self) -> usize {
        self.genesis.max_tx_size as usize
    }

    /// Admits transactions this node's RPC clients sent, journals the accepted ones (and the
    /// ones the pool already held: the client's copy is then journaled too), and returns once
    /// the journal holds them durably: an answer of "accepted" survives a crash. One journal
    /// write per call, outside the mempool lock; what does not fit in the journal is refused
    /// before admission (`journal_full`). Passing the admitted ones on to peers is the
    /// caller's part ([`Submitted::admitted`]).
    pub async fn submit_local(&self, mut txs: Vec<Result<RecoveredTx, Rejection>>) -> Submitted {
        // Payouts are journaled beyond the bound: whatever others filled the journal with, the
        // federation's payout still gets in (invariant 7); the pool bounds them (one per id).
        let limited = |t: &Result<RecoveredTx, Rejection>| {
            t.as_ref().is_ok_and(|t| t.tx().kind.payout_id().is_none())
        };
        let wanted = txs.iter().filter(|t| limited(t)).count();
        let granted = self.journal.reserve(wanted);
        if granted < wanted {
            let max = self.journal.max();
            for t in txs.iter_mut().filter(|t| limited(t)).skip(granted) {
                *t = Err(Rejection::JournalFull { max });
            }
        }
        let entries: Vec<Option<(JournalEntry, SignedTransaction)>> = txs
            .iter()
            .map(|t| {
                t.as_ref()
                    .ok()
                    .map(|t| (JournalEntry::of(t), t.signed().clone()))
            })
            .collect();
        let mut results = self.admit(txs);
        let mut admitted = Vec::new();
        let mut journaled = Vec::new();
        for (r, e) in results.iter().zip(entries) {
            match (r, e) {
                (Ok(_), Some((entry, signed))) => {
                    admitted.push(signed);
                    journaled.push(entry);
                }
                (Err(Rejection::AlreadyKnown(_)), Some((entry, _))) => journaled.push(entry),
                _ => {}
            }
        }
        let written = self.journal.append(journaled).await;
        self.journal.release(granted);
        if let Err(e) = written {
            tracing::error!(error = %e, "accepted transactions could not be journaled");
            let reason = e.to_string();
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                self.metrics.rejected("journal_failed");
                *r = Err(Rejection::JournalFailed(reason.clone()));
            }
        }
        Submitted { results, admitted }
    }

    /// Re-admits what the journal holds (at start, before the RPC serves) and drops the
    /// entries the pool refuses now (included meanwhile, or no longer valid); returns the
    /// re-admitted transactions, to be announced to peers.
    pub fn readmit_journal(&self) -> Result<Vec<SignedTransaction>, JournalError> {
        use rayon::prelude::*;
        let stored = self.journal.load()?;
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let max = self.max_tx_size();
        let decoded: Vec<Result<RecoveredTx, Rejection>> = stored
            .par_iter()
            .map(|e| SignedTransaction::decode_and_recover(&e.raw, max).map_err(Rejection::from))
            .collect();
        let signed: Vec<Option<SignedTransaction>> = decoded
            .iter()
            .map(|t| t.as_ref().ok().map(|t| t.signed().clone()))
            .collect();
        let results = self.admit(decoded);
        let mut back = Vec::new();
        let mut gone = Vec::new();
        for ((entry, signed), result) in stored.iter().zip(signed).zip(&results) {
            match (result, signed) {
                (Ok(_), Some(s)) => back.push(s),
                _ => gone.push(entry.key),
            }
        }
        tracing::info!(
            readmitted = back.len(),
            dropped = gone.len(),
            "journaled transactions re-admitted (dropped: included or no longer valid)"
        );
        self.journal.remove(gone);
        Ok(back)
    }

    /// Queues a journal sweep: entries whose transaction the mempool no longer holds leave.
    pub(crate) fn sweep_journal(self: &Arc<Self>) {
        if self.journal.is_empty() {
            return;
        }
        // Weak: the sweep runs on the journal's writer, which must never hold the last
        // reference to the chain (dropping it there would join the writer from itself).
        let chain: Weak<Chain> = Arc::downgrade(self);
        self.journal
            .sweep(Box::new(move |hashes| match chain.upgrade() {
                Some(c) => {
                    let pool = c.mempool();
                    hashes.iter().map(|h| pool.contains(h)).collect()
                }
                None => vec![true; hashes.len()],
            }));
    }

    /// Admits recovered transactions into the mempool, in order, under one lock.
    pub fn admit(&self, txs: Vec<Result<RecoveredTx, Rejection>>) -> Vec<Result<Hash, Rejection>> {
        let now_ms = service::clock::now_ms();
        // Read the accounts first, then take the mempool lock: never both at once here.
        let (accounts, base_fee, totals) = {
            let tip = self.tip();
            let accounts: Vec<_> = txs
                .iter()
                .map(|t| {
                    t.as_ref().ok().map(|t| {
                        let facts = PegFacts {
                            processed: t
                                .tx()
                                .kind
                                .payout_id()
                                .and_then(|id| tip.state.processed(&id)),
                        };
                        (tip.state.account(&t.sender()), facts)
                    })
                })
                .collect();
            let totals = primitives::peg::totals_on(tip.state.totals, now_ms);
            (accounts, self.base_fee_after(&tip.head), totals)
        };
        let ctx = Admission {
            chain_id: self.genesis.chain_id,
            fee_rule: self.fee_rule.as_ref(),
            base_fee,
            peg: self.peg.as_ref(),
            totals,
            now_ms,
        };
        let mut pool = self.mempool();
        let results: Vec<_> = txs
            .into_iter()
            .zip(accounts)
            .map(|(t, acct)| match (t, acct) {
                (Ok(tx), Some((acct, facts))) => pool.insert(tx, acct, facts, &ctx),
                (Err(e), _) => Err(e),
                (Ok(tx), None) => Err(Rejection::Malformed(format!(
                    "no account for {}",
                    tx.hash()
                ))),
            })
            .collect();
        self.metrics.mempool_txs.set(pool.len() as i64);
        drop(pool);
        for r in &results {
            match r {
                Ok(hash) => {
                    self.metrics.txs_accepted_total.inc();
                    tracing::debug!(%hash, "transaction accepted");
                }
                Err(e) => {
                    self.metrics.rejected(e.code());
                    tracing::debug!(reason = e.code(), error = %e, "transaction refused");
                }
            }
        }
        results
    }
}
