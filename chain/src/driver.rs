//! The chain driver: the single writer of the chain. It runs on its own OS thread (the work
//! is CPU and fsync bound) and takes messages from a bounded mailbox: produce a block for a
//! slot, or import blocks from peers (validate, fork choice, reorg). Whatever it adopts is
//! committed durably to redb before the in-memory tip, the mempool and subscribers see it.

use std::collections::HashSet;
use std::sync::Arc;

use parity_scale_codec::Encode;
use rayon::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::execution::{execute_block, BlockEnv, BlockExecutor, Executed, TxInvalid};
use crate::shared::Chain;
use crate::state::{LayeredState, StateRead, Undo};
use crate::store::{
    CheckpointMark, CheckpointPatch, CommittedBlock, SinceCheckpoint, StoreError, StoredBlock,
};
use finality::BlockRef;
use primitives::block::{next_state_root, receipts_root, tx_root, Block, Header};
use primitives::crypto::SecretKey;
use primitives::tx::{RecoveredTx, SignedTransaction};
use primitives::types::{BlockNumber, Hash, Slot};
use rpc_api::types::BlockSummary;
use service::clock::now_ms;

/// What the driver is asked to do.
#[derive(Debug)]
pub enum DriverMsg {
    /// Produce the block of `slot` if this node leads it.
    Produce {
        /// The slot that just started.
        slot: Slot,
    },
    /// A block became final: fork choice stays among its descendants from now on.
    Finalized(BlockRef),
    /// The finality round proposes this block: on a tie (or if its branch is longer), take
    /// its branch, so the authorities' fork choices meet where the votes are.
    Prefer(BlockRef),
    /// A block a quorum prevoted, re-proposed: take its branch even if it is shorter.
    PreferPolka(BlockRef),
    /// Import blocks received from a peer, in order.
    Import {
        /// The blocks.
        blocks: Vec<Block>,
        /// One outcome per block.
        reply: oneshot::Sender<Vec<ImportOutcome>>,
    },
}

/// What became of an imported block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It is on the canonical chain now (`reorg`: the chain switched branches to take it).
    Imported {
        /// Whether a reorg happened.
        reorg: bool,
    },
    /// Valid, stored on a branch that is not the longest.
    Side,
    /// Already known.
    Known,
    /// Its parent is unknown: the sender is ahead of us or on another branch.
    Orphan,
    /// Its slot lies in the future beyond the allowed drift.
    Future,
    /// Its branch does not contain the final block: never taken, whatever its length.
    ConflictsWithFinal,
    /// Taking it would roll back more than the maximum reorg depth.
    TooDeep {
        /// Blocks that would be rolled back.
        depth: u64,
    },
    /// It breaks a rule; the peer that sent it is penalised.
    Invalid(String),
}

impl ImportOutcome {
    /// Whether the block was valid (whatever the fork choice made of it).
    pub fn is_valid(&self) -> bool {
        matches!(
            self,
            ImportOutcome::Imported { .. } | ImportOutcome::Side | ImportOutcome::Known
        )
    }
}

/// A mailbox handle to the driver.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    tx: mpsc::Sender<DriverMsg>,
}

impl DriverHandle {
    /// Asks the driver to produce for `slot`; dropped if the driver is busy.
    pub fn produce(&self, slot: Slot) {
        let _ = self.tx.try_send(DriverMsg::Produce { slot });
    }

    /// Tells the driver a block is final (from the finality thread, which may block here).
    pub fn finalized(&self, block: BlockRef) {
        if self.tx.blocking_send(DriverMsg::Finalized(block)).is_err() {
            tracing::debug!("driver stopped; finality not handed over");
        }
    }

    /// Hints that finality proposes `block` (dropped if the driver is busy: a hint).
    pub fn prefer(&self, block: BlockRef) {
        let _ = self.tx.try_send(DriverMsg::Prefer(block));
    }

    /// Takes the branch of a block a quorum prevoted, even if shorter than the canonical one
    /// (finality cannot go on otherwise when the locked authorities' block left this chain).
    pub fn prefer_polka(&self, block: BlockRef) {
        let _ = self.tx.try_send(DriverMsg::PreferPolka(block));
    }

    /// Imports blocks and waits for the outcomes (`None` if the driver stopped).
    pub async fn import(&self, blocks: Vec<Block>) -> Option<Vec<ImportOutcome>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(DriverMsg::Import { blocks, reply })
            .await
            .ok()?;
        rx.await.ok()
    }
}

/// What the driver tells the network.
pub trait Publisher: Send + 'static {
    /// A block this node produced.
    fn publish_block(&self, block: &Block);
    /// Transactions that went back to the mempool after a reorg.
    fn publish_txs(&self, txs: Vec<SignedTransaction>);
}

/// Who wants to know the block tree changed (the finality thread).
pub trait TreeWatcher: Send + 'static {
    /// A block was committed (produced, imported, or a reorg).
    fn blocks_changed(&self);
}

impl TreeWatcher for crate::finality::FinalityHandle {
    fn blocks_changed(&self) {
        crate::finality::FinalityHandle::blocks_changed(self);
    }
}

/// No network (a single node, or tests).
#[derive(Debug, Default)]
pub struct NoPublisher;

impl Publisher for NoPublisher {
    fn publish_block(&self, _block: &Block) {}
    fn publish_txs(&self, _txs: Vec<SignedTransaction>) {}
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Write an account checkpoint every this many blocks.
    pub checkpoint_interval: u64,
    /// Never roll back more blocks than this.
    pub max_reorg_depth: u64,
    /// How far in the future a block's slot may start, in milliseconds.
    pub max_clock_drift_ms: u64,
}

/// The receiving end of the driver's mailbox, until [`spawn`] hands it to the driver thread.
#[derive(Debug)]
pub struct DriverInbox(mpsc::Receiver<DriverMsg>);

/// Creates the driver's mailbox. It comes first at start-up, so whatever talks to the driver
/// (the network, the slot timer) is handed its handle when it is built.
pub fn mailbox() -> (DriverHandle, DriverInbox) {
    let (tx, rx) = mpsc::channel(64);
    (DriverHandle { tx }, DriverInbox(rx))
}

/// Starts the driver thread on `inbox`; it stops when every handle is dropped.
/// `since_checkpoint` is what the blocks after the durable checkpoint changed (from
/// [`crate::store::LoadedState`]): the next checkpoint writes it along with what the driver
/// commits.
pub fn spawn(
    inbox: DriverInbox,
    chain: Arc<Chain>,
    key: Option<SecretKey>,
    config: DriverConfig,
    publisher: Box<dyn Publisher>,
    watcher: Option<Box<dyn TreeWatcher>>,
    since_checkpoint: SinceCheckpoint,
) -> std::thread::JoinHandle<()> {
    let mut driver = Driver::new(chain, key, config, publisher, since_checkpoint);
    driver.watcher = watcher;
    std::thread::Builder::new()
        .name("chain-driver".into())
        .spawn(move || driver.run(inbox.0))
        .unwrap_or_else(|e| panic!("cannot start the chain driver thread: {e}"))
}

struct Driver {
    chain: Arc<Chain>,
    key: Option<SecretKey>,
    config: DriverConfig,
    publisher: Box<dyn Publisher>,
    /// Blocks found invalid: never re-validated.
    bad: HashSet<Hash>,
    /// What changed since the last durable checkpoint (or the one being written, until it
    /// is known to have succeeded: a failed write gives its changes back).
    since: SinceCheckpoint,
    /// The checkpoint being written; on failure it returns what it was to write.
    checkpoint: Option<std::thread::JoinHandle<Result<(), SinceCheckpoint>>>,
    /// The last final block: no branch without it is ever taken.
    final_block: BlockRef,
    /// A final block not yet stored here: taken as soon as it arrives.
    pending_final: Option<BlockRef>,
    /// The last block a quorum prevoted that this node took: fork choice stays among its
    /// descendants until it (or a block above it) is final or another polka replaces it, so
    /// a longer branch cannot pull the node away before it votes (fork choice follows votes).
    anchor: Option<BlockRef>,
    watcher: Option<Box<dyn TreeWatcher>>,
}

impl Driver {
    fn new(
        chain: Arc<Chain>,
        key: Option<SecretKey>,
        config: DriverConfig,
        publisher: Box<dyn Publisher>,
        since: SinceCheckpoint,
    ) -> Self {
        let final_block = chain.finality.final_block();
        let mut d = Self {
            chain,
            key,
            config,
            publisher,
            bad: HashSet::new(),
            since,
            checkpoint: None,
            final_block,
            pending_final: None,
            anchor: None,
            watcher: None,
        };
        // A restart after a decision whose block was not stored yet (or a store rolled back by
        // hand): take it as soon as it is here.
        if !d.is_canonical(&final_block) {
            d.pending_final = Some(final_block);
        }
        d
    }

    fn run(mut self, mut rx: mpsc::Receiver<DriverMsg>) {
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                DriverMsg::Produce { slot } => {
                    if let Err(e) = self.produce(slot) {
                        tracing::error!(slot, error = %e, "block production failed");
                    }
                }
                DriverMsg::Finalized(block) => {
                    if let Err(e) = self.finalize(block) {
                        tracing::error!(height = block.number, hash = %block.hash, error = %e, "storage error taking the final block");
                    }
                }
                DriverMsg::Prefer(block) | DriverMsg::PreferPolka(block) => {
                    let shorter_ok = matches!(msg, DriverMsg::PreferPolka(_));
                    if let Err(e) = self.prefer(block, shorter_ok) {
                        tracing::error!(height = block.number, error = %e, "storage error taking a proposed block");
                    }
                }
                DriverMsg::Import { blocks, reply } => {
                    let mut outcomes = Vec::with_capacity(blocks.len());
                    for b in blocks {
                        let hash = b.hash();
                        let number = b.header.number;
                        let outcome = match self.import(b) {
                            Ok(o) => o,
                            Err(e) => {
                                tracing::error!(height = number, hash = %hash, error = %e, "storage error importing block");
                                ImportOutcome::Invalid(format!("storage error: {e}"))
                            }
                        };
                        if let ImportOutcome::Invalid(reason) = &outcome {
                            tracing::warn!(height = number, hash = %hash, reason, "invalid block refused");
                        }
                        outcomes.push(outcome);
                    }
                    let _ = reply.send(outcomes);
                }
            }
        }
        self.join_checkpoint();
        tracing::info!("chain driver stopped");
    }

    fn is_canonical(&self, b: &BlockRef) -> bool {
        self.chain
            .store
            .is_canonical(&b.hash, b.number)
            .unwrap_or(false)
    }

    /// A block became final. If it is not on the canonical chain, switch to its branch (it
    /// descends from the previous final block, so the roll-back stays in the unfinalised
    /// tail); if it is not stored yet, take it when it arrives.
    fn finalize(&mut self, block: BlockRef) -> Result<(), StoreError> {
        if block.number < self.final_block.number {
            return Ok(());
        }
        self.final_block = block;
        self.pending_final = None;
        if let Some(a) = self.anchor {
            if a.number <= block.number || !self.descends_from(a.hash, a.number, &block)? {
                self.anchor = None;
            }
        }
        if self.is_canonical(&block) {
            return Ok(());
        }
        match self.chain.store.header(&block.hash)? {
            Some(header) => {
                tracing::warn!(height = block.number, hash = %block.hash, "the final block is on another branch: switching to it");
                let outcome = self.reorg_to(header, block.hash)?;
                if !matches!(outcome, ImportOutcome::Imported { .. }) {
                    tracing::error!(
                        height = block.number,
                        ?outcome,
                        "cannot switch to the final block's branch"
                    );
                    self.pending_final = Some(block);
                }
            }
            None => {
                tracing::warn!(height = block.number, hash = %block.hash, "the final block is not here yet: waiting for it from peers");
                self.pending_final = Some(block);
            }
        }
        Ok(())
    }

    /// Takes the branch of a stored block that finality proposes when it is at least as long
    /// as the canonical chain (the tie goes to the proposal instead of the first seen).
    fn prefer(&mut self, block: BlockRef, shorter_ok: bool) -> Result<(), StoreError> {
        let polka = shorter_ok;
        if !polka {
            if let Some(a) = self.active_anchor() {
                if !self.descends_from(block.hash, block.number, &a)? {
                    return Ok(());
                }
            }
        }
        if !self.is_canonical(&block) {
            if !polka && block.number < self.chain.tip().head.number {
                return Ok(());
            }
            let Some(header) = self.chain.store.header(&block.hash)? else {
                return Ok(());
            };
            let outcome = self.reorg_to(header, block.hash)?;
            tracing::debug!(height = block.number, hash = %block.hash, ?outcome, "took the proposed block's branch");
        }
        if polka && self.is_canonical(&block) && block.number > self.final_block.number {
            self.anchor = Some(block);
        }
        Ok(())
    }

    /// The polka block fork choice follows, while it is above the final block.
    fn active_anchor(&self) -> Option<BlockRef> {
        self.anchor.filter(|a| a.number > self.final_block.number)
    }

    /// Whether the stored block `hash` at `number` is `ancestor` or one of its descendants.
    fn descends_from(
        &self,
        mut hash: Hash,
        mut number: BlockNumber,
        ancestor: &BlockRef,
    ) -> Result<bool, StoreError> {
        while number > ancestor.number {
            let Some(h) = self.chain.store.header(&hash)? else {
                return Ok(false);
            };
            hash = h.parent_hash;
            number = number.saturating_sub(1);
        }
        Ok(number == ancestor.number && hash == ancestor.hash)
    }

    fn produce(&mut self, slot: Slot) -> Result<(), StoreError> {
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        if self.chain.leader(slot) != key.address() || slot <= self.chain.tip().head.slot {
            return Ok(());
        }
        let (committed, drop_hashes) = build_block(&self.chain, &key, slot);
        self.chain.mempool().remove_all(&drop_hashes);
        let block = committed.stored.block.clone();
        self.adopt(&[], Vec::new(), vec![committed])?;
        self.publisher.publish_block(&block);
        tracing::info!(
            height = block.header.number,
            hash = %block.hash(),
            slot,
            txs = block.transactions.len(),
            weight = block.header.weight_used,
            base_fee = %block.header.base_fee,
            "block produced"
        );
        Ok(())
    }

    /// What the block hash does not commit to: the seal (by the slot's leader, the header's
    /// author) and the transaction list (against the header's root). A block failing here may
    /// be a forged copy of an honest header, so it is refused without tainting the hash.
    fn check_envelope(&self, block: &Block) -> Result<(), String> {
        let h = &block.header;
        let leader = self.chain.leader(h.slot);
        if h.author != leader {
            return Err(format!(
                "author {} is not the leader {leader} of slot {}",
                h.author, h.slot
            ));
        }
        match block.seal_signer() {
            Ok(a) if a == h.author => {}
            Ok(a) => return Err(format!("sealed by {a}, not by the author {}", h.author)),
            Err(e) => return Err(format!("bad seal: {e}")),
        }
        let root = tx_root(block.transactions.iter().map(|t| t.hash()));
        if root != h.tx_root {
            return Err("transaction root mismatch".into());
        }
        Ok(())
    }

    /// Header rules that need only the parent and the clock (the hash commits to all of them).
    fn check_header(&self, parent: &Header, block: &Block) -> Result<(), ImportOutcome> {
        let h = &block.header;
        let g = &self.chain.genesis;
        let invalid = |m: String| Err(ImportOutcome::Invalid(m));
        if h.number != parent.number + 1 {
            return invalid(format!(
                "number {} does not follow parent {}",
                h.number, parent.number
            ));
        }
        if h.slot <= parent.slot {
            return invalid(format!(
                "slot {} not after parent slot {}",
                h.slot, parent.slot
            ));
        }
        if h.timestamp_ms != h.slot.saturating_mul(g.block_time_ms) {
            return invalid(format!(
                "timestamp {} is not the start of slot {}",
                h.timestamp_ms, h.slot
            ));
        }
        if h.timestamp_ms > now_ms() + self.config.max_clock_drift_ms {
            return Err(ImportOutcome::Future);
        }
        let expected_base_fee = self.chain.base_fee_after(parent);
        if h.base_fee != expected_base_fee {
            return invalid(format!(
                "base fee {} != expected {expected_base_fee}",
                h.base_fee
            ));
        }
        if h.weight_used > g.max_block_weight {
            return invalid(format!(
                "weight {} over the limit {}",
                h.weight_used, g.max_block_weight
            ));
        }
        Ok(())
    }

    /// Recovers senders, reusing what the mempool already recovered.
    fn recover(&self, block: &Block) -> Result<Vec<RecoveredTx>, ImportOutcome> {
        let max = self.chain.max_tx_size();
        let pooled: Vec<Option<RecoveredTx>> = {
            let pool = self.chain.mempool();
            block
                .transactions
                .iter()
                .map(|t| pool.get(&t.hash()))
                .collect()
        };
        block
            .transactions
            .par_iter()
            .zip(pooled)
            .map(|(t, known)| match known {
                Some(r) if r.signed() == t => Ok(r),
                _ => {
                    let size = t.encoded_size();
                    if size > max {
                        return Err(ImportOutcome::Invalid(format!(
                            "transaction of {size} bytes over the limit {max}"
                        )));
                    }
                    t.clone().recover().map_err(|e| {
                        ImportOutcome::Invalid(format!("transaction {}: {e}", t.hash()))
                    })
                }
            })
            .collect()
    }

    fn execute_checked(
        &self,
        state: &dyn StateRead,
        parent: &Header,
        block: &Block,
        txs: &[RecoveredTx],
    ) -> Result<Executed, ImportOutcome> {
        let env = BlockEnv {
            chain_id: self.chain.genesis.chain_id,
            base_fee: block.header.base_fee,
            producer: block.header.author,
            max_weight: self.chain.genesis.max_block_weight,
            number: block.header.number,
            timestamp_ms: block.header.timestamp_ms,
        };
        let executed = execute_block(
            state,
            self.chain.fee_rule.as_ref(),
            self.chain.peg.as_ref(),
            env,
            txs,
        )
        .map_err(|(i, e)| {
            ImportOutcome::Invalid(format!("transaction {i} cannot be included: {e}"))
        })?;
        let h = &block.header;
        if executed.weight_used != h.weight_used {
            return Err(ImportOutcome::Invalid(format!(
                "weight used {} != header {}",
                executed.weight_used, h.weight_used
            )));
        }
        if receipts_root(&executed.receipts) != h.receipts_root {
            return Err(ImportOutcome::Invalid("receipts root mismatch".into()));
        }
        if next_state_root(&parent.state_root, &executed.diff.encode()) != h.state_root {
            return Err(ImportOutcome::Invalid("state root mismatch".into()));
        }
        Ok(executed)
    }

    fn import(&mut self, block: Block) -> Result<ImportOutcome, StoreError> {
        let hash = block.hash();
        // Before anything is remembered about the hash: a forged seal or body says nothing
        // about the honest block with the same header. (So only a block its slot's leader
        // sealed can ever enter `bad`.)
        if let Err(reason) = self.check_envelope(&block) {
            return Ok(ImportOutcome::Invalid(reason));
        }
        if self.bad.contains(&hash) || self.bad.contains(&block.header.parent_hash) {
            self.bad.insert(hash);
            return Ok(ImportOutcome::Invalid(
                "block or its ancestor was found invalid before".into(),
            ));
        }
        let store = &self.chain.store;
        if store.header(&hash)?.is_some() {
            return Ok(ImportOutcome::Known);
        }
        let Some(parent) = store.header(&block.header.parent_hash)? else {
            return Ok(ImportOutcome::Orphan);
        };
        if let Err(outcome) = self.check_header(&parent, &block) {
            if matches!(outcome, ImportOutcome::Invalid(_)) {
                self.bad.insert(hash);
            }
            return Ok(outcome);
        }
        let recovered = match self.recover(&block) {
            Ok(r) => r,
            Err(outcome) => {
                self.bad.insert(hash);
                return Ok(outcome);
            }
        };
        let (head_hash, head_number) = {
            let tip = self.chain.tip();
            (tip.head_hash, tip.head.number)
        };
        if block.header.parent_hash == head_hash {
            let executed = {
                let tip = self.chain.tip();
                self.execute_checked(&tip.state, &parent, &block, &recovered)
            };
            let executed = match executed {
                Ok(e) => e,
                Err(outcome) => {
                    self.bad.insert(hash);
                    return Ok(outcome);
                }
            };
            let committed = CommittedBlock::new(block, &recovered, executed);
            self.adopt(&[], Vec::new(), vec![committed])?;
            return Ok(ImportOutcome::Imported { reorg: false });
        }
        // A block on another branch: keep it; switch only if its branch is now the longest.
        let stored = StoredBlock {
            senders: recovered.iter().map(|t| t.sender()).collect(),
            block,
        };
        store.store_side_block(&stored)?;
        // Finality may be waiting for this block to decide on a proposal.
        if let Some(w) = &self.watcher {
            w.blocks_changed();
        }
        if self.pending_final.is_some_and(|f| f.hash == hash) {
            // The final block arrived: its branch is taken whatever its length.
            self.pending_final = None;
            return self.reorg_to(stored.block.header.clone(), hash);
        }
        // Longest chain; on a tie the lower head hash, the same choice on every node. (First
        // seen would keep two authorities that lead alternate slots on their own branches for
        // good once a late block splits them: each branch grows as fast as the other.)
        let n = stored.block.header.number;
        if n < head_number || (n == head_number && hash >= head_hash) {
            return Ok(ImportOutcome::Side);
        }
        if let Some(a) = self.active_anchor() {
            if !self.descends_from(hash, n, &a)? {
                tracing::debug!(height = n, hash = %hash, polka = a.number, "longer branch kept aside: it leaves the block a quorum prevoted");
                return Ok(ImportOutcome::Side);
            }
        }
        self.reorg_to(stored.block.header.clone(), hash)
    }

    /// Switches to the branch ending at `new_head` (stored, longer than the canonical chain).
    fn reorg_to(&mut self, new_head: Header, new_hash: Hash) -> Result<ImportOutcome, StoreError> {
        let store = &self.chain.store;
        let (head_number, head_hash) = {
            let tip = self.chain.tip();
            (tip.head.number, tip.head_hash)
        };
        // A fork point within `max_reorg_depth` of the head lies at most this many blocks below
        // the new head; a walk that goes further has not met the canonical chain in reach, and
        // its last block is no fork point.
        let reach = new_head
            .number
            .saturating_sub(head_number)
            .saturating_add(self.config.max_reorg_depth);
        // Walk the new branch back to the canonical chain.
        let mut branch: Vec<(Hash, Header)> = vec![(new_hash, new_head)];
        loop {
            let Some((_, header)) = branch.last() else {
                return Ok(ImportOutcome::Orphan);
            };
            let (parent_hash, number) = (header.parent_hash, header.number);
            if store.is_canonical(&parent_hash, number.saturating_sub(1))? {
                break;
            }
            if branch.len() as u64 >= reach {
                tracing::error!(
                    max = self.config.max_reorg_depth,
                    new_head = %new_hash,
                    "REFUSING REORG: the branch meets the canonical chain deeper than max_reorg_depth; operator attention needed"
                );
                return Ok(ImportOutcome::TooDeep {
                    depth: self.config.max_reorg_depth.saturating_add(1),
                });
            }
            let Some(parent) = store.header(&parent_hash)? else {
                return Ok(ImportOutcome::Orphan);
            };
            branch.push((parent_hash, parent));
        }
        branch.reverse();
        let fork_number = branch[0].1.number.saturating_sub(1);
        // The branch conflicts with the final block if it leaves the canonical chain below it
        // and reaches its height without it. (One that ends below it may still lead to it: a
        // node that learnt of a final block before having it syncs towards it this way.)
        let f = self.final_block;
        let branch_top = branch.last().map_or(0, |(_, h)| h.number);
        if f.number > fork_number
            && f.number <= branch_top
            && !branch.iter().any(|(h, _)| *h == f.hash)
        {
            tracing::warn!(
                final_height = f.number,
                fork = fork_number,
                new_head = %new_hash,
                "branch refused: it does not contain the final block"
            );
            return Ok(ImportOutcome::ConflictsWithFinal);
        }
        // The fork point is a canonical block, so it is at or below the head.
        let depth = head_number.saturating_sub(fork_number);
        if depth > self.config.max_reorg_depth {
            tracing::error!(
                depth,
                max = self.config.max_reorg_depth,
                fork = fork_number,
                new_head = %new_hash,
                "REFUSING REORG deeper than max_reorg_depth: this node stays on its branch; operator attention needed"
            );
            return Ok(ImportOutcome::TooDeep { depth });
        }
        // The canonical blocks that would be abandoned, newest first.
        let mut abandoned: Vec<(Hash, BlockNumber, Vec<Hash>)> = Vec::new();
        let mut undos: Vec<Undo> = Vec::new();
        let mut abandoned_txs: Vec<RecoveredTx> = Vec::new();
        let mut cursor = head_hash;
        for number in (fork_number + 1..=head_number).rev() {
            let stored = store.block(&cursor)?.ok_or(StoreError::Corrupt {
                what: "canonical block",
                detail: format!("missing block {number}"),
            })?;
            let undo = store.undo(&cursor)?.ok_or(StoreError::Corrupt {
                what: "undo",
                detail: format!("missing undo of block {number}"),
            })?;
            let txs: Vec<Hash> = stored.block.transactions.iter().map(|t| t.hash()).collect();
            for (t, s) in stored.block.transactions.iter().zip(&stored.senders) {
                abandoned_txs.push(RecoveredTx::from_parts(t.clone(), *s));
            }
            abandoned.push((cursor, number, txs));
            undos.push(undo);
            cursor = stored.block.header.parent_hash;
        }
        // Execute the new branch on the state as of the fork point.
        let mut adopted: Vec<CommittedBlock> = Vec::new();
        {
            let tip = self.chain.tip();
            let mut view = LayeredState::rolled_back(&tip.state, &undos);
            let mut parent =
                store
                    .header(&branch[0].1.parent_hash)?
                    .ok_or(StoreError::Corrupt {
                        what: "fork point",
                        detail: "missing header".into(),
                    })?;
            for (hash, _) in &branch {
                let stored = store.block(hash)?.ok_or(StoreError::Corrupt {
                    what: "side block",
                    detail: format!("missing {hash}"),
                })?;
                let recovered: Vec<RecoveredTx> = stored
                    .block
                    .transactions
                    .iter()
                    .zip(&stored.senders)
                    .map(|(t, s)| RecoveredTx::from_parts(t.clone(), *s))
                    .collect();
                let executed = match self.execute_checked(&view, &parent, &stored.block, &recovered)
                {
                    Ok(e) => e,
                    Err(outcome) => {
                        drop(tip);
                        self.bad.insert(*hash);
                        self.bad.insert(new_hash);
                        return Ok(outcome);
                    }
                };
                view.apply_diff(&executed.diff);
                parent = stored.block.header.clone();
                adopted.push(CommittedBlock::new(stored.block, &recovered, executed));
            }
        }
        tracing::warn!(
            depth,
            fork = fork_number,
            old_head = %head_hash,
            new_head = %new_hash,
            new_height = adopted.last().map(|c| c.stored.block.header.number).unwrap_or_default(),
            "reorg: switching to a longer branch"
        );
        self.chain.metrics.reorgs_total.inc();
        self.adopt_reorg(abandoned, undos, abandoned_txs, adopted)?;
        Ok(ImportOutcome::Imported { reorg: true })
    }

    fn adopt_reorg(
        &mut self,
        abandoned: Vec<(Hash, BlockNumber, Vec<Hash>)>,
        undos: Vec<Undo>,
        abandoned_txs: Vec<RecoveredTx>,
        adopted: Vec<CommittedBlock>,
    ) -> Result<(), StoreError> {
        for u in &undos {
            self.since.note_undo(u);
        }
        let readopted: HashSet<Hash> = adopted
            .iter()
            .flat_map(|c| c.tx_hashes.iter().copied())
            .collect();
        let dropped: Vec<RecoveredTx> = abandoned_txs
            .into_iter()
            .filter(|t| !readopted.contains(&t.hash()))
            .collect();
        let undone: Vec<_> = undos
            .iter()
            .flat_map(|u| u.accounts.iter().map(|(a, _)| *a))
            .collect();
        self.adopt(&abandoned, undos, adopted)?;
        {
            // A rolled-back account's nonce may have gone down: its pooled run starts there now.
            let tip = self.chain.tip();
            let nonces: Vec<_> = undone
                .iter()
                .map(|a| (*a, tip.state.account(a).nonce))
                .collect();
            drop(tip);
            let mut pool = self.chain.mempool();
            for (a, nonce) in nonces {
                pool.prune_sender(&a, nonce);
            }
        }
        if !dropped.is_empty() {
            // Transactions of the abandoned branch go back to the mempool (those still valid).
            let signed: Vec<SignedTransaction> =
                dropped.iter().map(|t| t.signed().clone()).collect();
            let results = self.chain.admit(dropped.into_iter().map(Ok).collect());
            let back = results.iter().filter(|r| r.is_ok()).count();
            tracing::info!(
                returned = back,
                "transactions of the abandoned branch returned to the mempool"
            );
            self.publisher.publish_txs(signed);
        }
        Ok(())
    }

    /// Commits `adopted` (and the abandonment of `abandoned`) durably, then applies it in memory.
    fn adopt(
        &mut self,
        abandoned: &[(Hash, BlockNumber, Vec<Hash>)],
        undos_newest_first: Vec<Undo>,
        committed: Vec<CommittedBlock>,
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.chain.store.commit_canonical(abandoned, &committed)?;
        service::fault::point("block-committed");
        self.chain
            .metrics
            .block_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        let Some(last) = committed.last() else {
            return Ok(());
        };
        let head = last.stored.block.header.clone();
        let head_hash = head.hash();
        {
            let mut tip = self.chain.tip_mut();
            for u in &undos_newest_first {
                tip.state.apply_undo(u);
            }
            for c in &committed {
                tip.state.apply_diff(&c.diff);
            }
            tip.head = head.clone();
            tip.head_hash = head_hash;
            tip.head_tx_count = last.tx_hashes.len();
        }
        {
            let mut pool = self.chain.mempool();
            for c in &committed {
                for (addr, acct) in &c.diff.accounts {
                    pool.prune_sender(addr, acct.nonce);
                }
            }
            // Other payouts of the ids just paid can never be included (a node that does not
            // produce would otherwise keep them, at nonces that hide their senders' gaps).
            let paid = pool.drop_paid(
                committed
                    .iter()
                    .flat_map(|c| c.diff.processed.iter().map(|(id, _)| *id)),
            );
            if paid > 0 {
                tracing::debug!(
                    dropped = paid,
                    "pooled payouts of ids paid in the new blocks dropped"
                );
            }
            let expired = pool.expire_parked(now_ms());
            if expired > 0 {
                tracing::info!(expired, "parked transactions expired from the mempool");
            }
            self.chain.metrics.mempool_txs.set(pool.len() as i64);
        }
        // Committed: what this node's clients sent is no longer at risk. (A reorg returns the
        // abandoned blocks' transactions to the pool, not to the journal.)
        if !self.chain.journal.is_idle() {
            let included = committed
                .iter()
                .flat_map(|c| {
                    let s = &c.stored;
                    s.block
                        .transactions
                        .iter()
                        .zip(&s.senders)
                        .zip(&c.tx_hashes)
                        .map(|((t, from), h)| crate::journal::key(from, t.tx.nonce, h))
                })
                .collect();
            self.chain.journal.remove(included);
        }
        let m = &self.chain.metrics;
        m.head_height.set(head.number as i64);
        for c in &committed {
            m.blocks_total.inc();
            m.txs_included_total.inc_by(c.tx_hashes.len() as u64);
            self.since.note_diff(&c.diff);
            let _ = self
                .chain
                .heads
                .send(BlockSummary::new(&c.stored.block.header, c.tx_hashes.len()));
        }
        if let Some(f) = self.pending_final {
            if committed.iter().any(|c| c.stored.block.hash() == f.hash) {
                self.pending_final = None;
            }
        }
        if let Some(w) = &self.watcher {
            w.blocks_changed();
        }
        self.chain.update_finality_metrics();
        let interval = self.config.checkpoint_interval.max(1);
        if committed
            .iter()
            .any(|c| c.stored.block.header.number % interval == 0)
        {
            self.spawn_checkpoint();
        }
        Ok(())
    }

    /// Waits for the checkpoint being written; if it failed, its changes are owed again.
    fn join_checkpoint(&mut self) {
        let Some(prev) = self.checkpoint.take() else {
            return;
        };
        match prev.join() {
            Ok(Ok(())) => {}
            Ok(Err(owed)) => self.since.merge(owed),
            // The writer panicked: what it held is unknown, so the next checkpoint rewrites all.
            Err(_) => self.since.rewrite = true,
        }
    }

    /// Writes what changed since the last checkpoint, off the driver thread.
    fn spawn_checkpoint(&mut self) {
        self.join_checkpoint();
        let since = std::mem::take(&mut self.since);
        let (mark, patch) = {
            let tip = self.chain.tip();
            let patch = if since.rewrite {
                CheckpointPatch {
                    accounts: tip.state.iter().map(|(a, v)| (*a, Some(*v))).collect(),
                    ids: tip
                        .state
                        .iter_processed()
                        .map(|(id, b)| (*id, Some(*b)))
                        .collect(),
                    replace_all: true,
                    sum: Some(tip.state.entry_sum()),
                }
            } else {
                CheckpointPatch {
                    accounts: since
                        .accounts
                        .iter()
                        .map(|a| (*a, tip.state.get(a)))
                        .collect(),
                    ids: since
                        .ids
                        .iter()
                        .map(|id| (*id, tip.state.processed(id)))
                        .collect(),
                    replace_all: false,
                    sum: Some(tip.state.entry_sum()),
                }
            };
            (
                CheckpointMark {
                    number: tip.head.number,
                    hash: tip.head_hash,
                    totals: tip.state.totals,
                },
                patch,
            )
        };
        let chain = self.chain.clone();
        let write = move || {
            let started = std::time::Instant::now();
            match chain.store.write_checkpoint(mark, &patch) {
                Ok(()) => {
                    tracing::debug!(
                        height = mark.number,
                        accounts = patch.accounts.len(),
                        ids = patch.ids.len(),
                        full = patch.replace_all,
                        ms = started.elapsed().as_millis() as u64,
                        "checkpoint written"
                    );
                    Ok(())
                }
                Err(e) => {
                    chain.metrics.checkpoint_failures_total.inc();
                    tracing::error!(height = mark.number, error = %e, "checkpoint failed; its changes go into the next one");
                    Err(since)
                }
            }
        };
        // `write` moves into the thread; if the thread cannot start, `spawn` drops it, so
        // the fallback rebuilds the owed changes as a full rewrite.
        match std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(write)
        {
            Ok(handle) => self.checkpoint = Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the checkpoint thread; the next checkpoint rewrites every entry");
                self.since.rewrite = true;
            }
        }
    }
}

/// Builds and seals the block of `slot` on the current head from the mempool's best
/// transactions; returns it with the hashes of transactions that can never be included.
pub fn build_block(chain: &Chain, key: &SecretKey, slot: Slot) -> (CommittedBlock, Vec<Hash>) {
    let max_weight = chain.genesis.max_block_weight;
    let candidates = {
        let pool = chain.mempool();
        let tip = chain.tip();
        pool.select(|a| tip.state.account(a).nonce, max_weight)
    };
    let tip = chain.tip();
    let parent = &tip.head;
    let env = BlockEnv {
        chain_id: chain.genesis.chain_id,
        base_fee: chain.base_fee_after(parent),
        producer: key.address(),
        max_weight,
        number: parent.number + 1,
        timestamp_ms: slot * chain.genesis.block_time_ms,
    };
    let mut ex = BlockExecutor::new(&tip.state, chain.fee_rule.as_ref(), chain.peg.as_ref(), env);
    let mut included = Vec::with_capacity(candidates.len());
    let mut drop_hashes: Vec<Hash> = Vec::new();
    for tx in candidates {
        match ex.push(&tx) {
            Ok(()) => included.push(tx),
            // An earlier transaction of the sender was skipped, or no room: it waits.
            Err(TxInvalid::NonceMismatch { .. }) | Err(TxInvalid::BlockFull) => {}
            Err(e) => {
                tracing::debug!(hash = %tx.hash(), error = %e, "dropping transaction that cannot be included");
                drop_hashes.push(tx.hash());
            }
        }
    }
    let executed = ex.finish();
    let header = Header {
        parent_hash: tip.head_hash,
        number: parent.number + 1,
        slot,
        timestamp_ms: slot * chain.genesis.block_time_ms,
        author: key.address(),
        tx_root: tx_root(included.iter().map(|t| t.hash())),
        receipts_root: receipts_root(&executed.receipts),
        state_root: next_state_root(&parent.state_root, &executed.diff.encode()),
        base_fee: env.base_fee,
        weight_used: executed.weight_used,
    };
    let transactions = included.iter().map(|t| t.signed().clone()).collect();
    let block = Block::seal(header, transactions, key);
    (CommittedBlock::new(block, &included, executed), drop_hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use crate::rules::{ChainRules, FeeRuleKind};
    use crate::state::State;
    use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
    use primitives::tx::{Fee, Transaction, TxKind};
    use primitives::types::Amount;

    fn rules() -> ChainRules {
        ChainRules {
            name: "testchain",
            env_prefix: "DRIVER_TEST_CFG",
            default_block_time_ms: 1000,
            default_rpc_port: 7777,
            default_p2p_port: 7778,
            fee_rule: FeeRuleKind::FeeRate,
            peg_role: primitives::peg::PegRole::Main,
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        authority: SecretKey,
        user: SecretKey,
        genesis: Genesis,
    }

    impl Fixture {
        fn new() -> Self {
            let (authority, user) = (SecretKey::random(), SecretKey::random());
            let genesis = Genesis {
                chain_id: 9,
                block_time_ms: 1000,
                timestamp_ms: 0,
                authorities: vec![authority.address()],
                max_block_weight: 1_000_000,
                max_tx_size: 4096,
                fee: FeeParams::FeeRate {
                    min_fee_rate: Amount(1),
                },
                accounts: vec![GenesisAccount {
                    address: user.address(),
                    balance: Amount::coins(1000),
                }],
                peg: None,
            };
            Self::init(authority, user, genesis)
        }

        fn init(authority: SecretKey, user: SecretKey, genesis: Genesis) -> Self {
            let fx = Self {
                dir: tempfile::tempdir().expect("temp dir"),
                authority,
                user,
                genesis,
            };
            crate::store::Store::open(&fx.data_dir())
                .and_then(|s| s.init_genesis(&fx.genesis))
                .expect("init");
            fx
        }

        /// Another node of the same chain, with its own data dir.
        fn peer(&self) -> Self {
            Self::init(
                self.authority.clone(),
                self.user.clone(),
                self.genesis.clone(),
            )
        }

        fn data_dir(&self) -> std::path::PathBuf {
            self.dir.path().join("data")
        }

        /// Opens the data dir as a restarted node does.
        fn start(&self, checkpoint_interval: u64) -> Driver {
            self.start_with(checkpoint_interval, Box::new(NoPublisher))
        }

        /// The durable state after a node with `checkpoint_interval` produced `blocks` blocks
        /// of one transfer each and was killed.
        fn killed_after(&self, checkpoint_interval: u64, blocks: usize) -> State {
            let mut d = self.start(checkpoint_interval);
            for _ in 0..blocks {
                block_with_transfer(&mut d, &self.user);
            }
            kill(d)
        }

        /// [`Self::start`], telling `publisher` what it would tell the network.
        fn start_with(&self, checkpoint_interval: u64, publisher: Box<dyn Publisher>) -> Driver {
            let mut config = NodeConfig::load(&rules(), None).expect("config");
            config.data_dir = self.data_dir();
            let (chain, since) =
                Chain::open(rules(), &config, Some(self.authority.address())).expect("open");
            Driver::new(
                Arc::new(chain),
                Some(self.authority.clone()),
                DriverConfig {
                    checkpoint_interval,
                    max_reorg_depth: 100,
                    max_clock_drift_ms: u64::MAX / 2,
                },
                publisher,
                since,
            )
        }
    }

    /// Produces the next block with one transfer to a fresh address.
    fn block_with_transfer(d: &mut Driver, user: &SecretKey) {
        let (nonce, slot) = {
            let tip = d.chain.tip();
            (tip.state.account(&user.address()).nonce, tip.head.slot + 1)
        };
        let tx = Transaction {
            chain_id: 9,
            nonce,
            fee: Fee::Flat { fee: Amount(1000) },
            kind: TxKind::Transfer {
                to: SecretKey::random().address(),
                amount: Amount(1 + nonce as u128),
            },
        }
        .sign(user)
        .recover()
        .expect("recover");
        let admitted = d.chain.admit(vec![Ok(tx)]);
        assert!(admitted[0].is_ok(), "{admitted:?}");
        d.produce(slot).expect("produce");
        assert_eq!(d.chain.tip().head.slot, slot);
    }

    /// What `kill -9` leaves: whatever is durable (the checkpoint thread is let finish, as a
    /// kill after it committed; a kill before is the case of a failed write).
    fn kill(mut d: Driver) -> State {
        d.join_checkpoint();
        let state = d.chain.tip().state.clone();
        drop(d);
        state
    }

    #[test]
    fn restarts_across_checkpoints_and_a_failed_checkpoint_equal_a_replay_from_genesis() {
        let fx = Fixture::new();
        let before = fx.killed_after(4, 5);

        // Restart 1 replays block 5; the checkpoint at 8 fails, the one at 12 must make up.
        let mut d = fx.start(4);
        assert_eq!(d.chain.tip().state, before);
        d.chain
            .store
            .fail_checkpoints
            .store(1, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..8 {
            block_with_transfer(&mut d, &fx.user);
        }
        d.join_checkpoint();
        assert_eq!(d.chain.metrics.checkpoint_failures_total.get(), 1);
        block_with_transfer(&mut d, &fx.user);
        let before = kill(d);

        // Restart 2 loads the checkpoint at 12 and replays 13.
        let d = fx.start(4);
        let loaded = d.chain.tip().state.clone();
        assert_eq!(d.chain.tip().head.number, 14);
        assert_eq!(loaded, before, "restart equals the state before the kill");
        assert_eq!(
            loaded,
            d.chain.store.replay_from_genesis().expect("replay"),
            "restart equals a replay from genesis"
        );
        assert_eq!(loaded.len(), 2 + 14, "user, producer and 14 recipients");
        assert_eq!(loaded.digest(), before.digest());
        // And it got there from its checkpoint, not by the fallback that replays everything.
        let reloaded = d.chain.store.load_state().expect("load");
        assert!(
            !reloaded.since_checkpoint.rewrite,
            "the checkpoint at 12 was complete"
        );
    }

    #[test]
    fn a_checkpoint_that_does_not_add_up_is_replaced_by_a_replay() {
        let fx = Fixture::new();
        let before = fx.killed_after(2, 4);
        // Lose one account from the checkpoint behind the node's back.
        let store = crate::store::Store::open(&fx.data_dir()).expect("store");
        let (mark, mut patch) = {
            let state = store.replay_from_genesis().expect("replay");
            let lost = state
                .iter()
                .map(|(a, _)| *a)
                .find(|a| *a != fx.user.address())
                .expect("an account");
            let head = store.head().expect("head");
            let header = store.header(&head).expect("header").expect("head header");
            (
                CheckpointMark {
                    number: header.number,
                    hash: head,
                    totals: state.totals,
                },
                CheckpointPatch {
                    accounts: vec![(lost, None::<primitives::account::Account>)],
                    sum: Some(state.entry_sum()),
                    ..Default::default()
                },
            )
        };
        patch.replace_all = false;
        store.write_checkpoint(mark, &patch).expect("write");
        drop(store);
        let d = fx.start(2);
        assert_eq!(d.chain.tip().state, before);
        let reloaded = d.chain.store.load_state().expect("load");
        assert!(
            reloaded.since_checkpoint.rewrite,
            "the next checkpoint rewrites every entry"
        );
        assert!(d.since.rewrite, "the driver was told so");
    }

    /// A block with a transfer by `user`, produced by `d`.
    fn transfer_block(d: &mut Driver, user: &SecretKey) -> Block {
        block_with_transfer(d, user);
        head_block(d)
    }

    fn head_block(d: &Driver) -> Block {
        let hash = d.chain.tip().head_hash;
        d.chain
            .store
            .block(&hash)
            .expect("store")
            .expect("head block")
            .block
    }

    #[test]
    fn forged_copies_of_an_honest_block_do_not_poison_it() {
        let fx = Fixture::new();
        let mut producer = fx.start(256);
        let honest = transfer_block(&mut producer, &fx.user);
        let child = transfer_block(&mut producer, &fx.user);
        let peer = fx.peer();
        let mut follower = peer.start(256);

        // The honest header with a junk seal (a stranger's signature over it).
        let mut junk_seal = honest.clone();
        junk_seal.seal = SecretKey::random().sign_prehash(&honest.header.seal_hash());
        // The honest header and seal with another transaction list.
        let mut other_body = honest.clone();
        other_body.transactions.clear();
        for forged in [junk_seal, other_body] {
            assert_eq!(forged.hash(), honest.hash(), "same header, same hash");
            let outcome = follower.import(forged).expect("import");
            assert!(matches!(outcome, ImportOutcome::Invalid(_)), "{outcome:?}");
        }
        assert_eq!(
            follower.import(honest.clone()).expect("import"),
            ImportOutcome::Imported { reorg: false },
            "the honest block imports after its forged copies"
        );
        assert_eq!(
            follower.import(child.clone()).expect("import"),
            ImportOutcome::Imported { reorg: false },
            "and so does its child"
        );
        assert_eq!(follower.chain.tip().head_hash, child.hash());
        assert_eq!(
            follower.chain.tip().state.digest(),
            producer.chain.tip().state.digest()
        );
        // A forged copy of a block it already holds is refused too (not passed on as known).
        let mut junk_seal = child.clone();
        junk_seal.seal = SecretKey::random().sign_prehash(&child.header.seal_hash());
        assert!(matches!(
            follower.import(junk_seal).expect("import"),
            ImportOutcome::Invalid(_)
        ));
    }

    /// Produces an empty block at `slot`.
    fn empty_block(d: &mut Driver, slot: Slot) -> Block {
        d.produce(slot).expect("produce");
        head_block(d)
    }

    #[test]
    fn a_branch_longer_than_the_reorg_reach_is_refused_and_leaves_the_chain_whole() {
        let fx = Fixture::new();
        let peer = fx.peer();
        let (mut a, mut b) = (fx.start(256), peer.start(256));
        b.config.max_reorg_depth = 2;
        let theirs: Vec<Block> = (1..=12).map(|slot| empty_block(&mut a, slot)).collect();
        let ours: Vec<Hash> = (1001..=1004)
            .map(|slot| empty_block(&mut b, slot).hash())
            .collect();
        for block in theirs {
            let number = block.header.number;
            let outcome = b.import(block).expect("import");
            assert!(
                matches!(outcome, ImportOutcome::Side | ImportOutcome::TooDeep { .. }),
                "block {number}: {outcome:?}"
            );
        }
        // The fork is at genesis, 4 blocks deep: the node keeps its own chain, whole.
        assert_eq!(b.chain.tip().head_hash, ours[3]);
        for (i, h) in ours.iter().enumerate() {
            assert_eq!(
                b.chain.store.canonical_hash(i as u64 + 1).expect("store"),
                Some(*h)
            );
        }
    }

    /// `block` with its header edited and sealed again by `key`.
    fn resealed(block: &Block, key: &SecretKey, edit: impl FnOnce(&mut Header)) -> Block {
        let mut header = block.header.clone();
        edit(&mut header);
        Block::seal(header, block.transactions.clone(), key)
    }

    fn invalid_reason(outcome: ImportOutcome) -> String {
        match outcome {
            ImportOutcome::Invalid(reason) => reason,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn header_checks_refuse_each_broken_rule_with_its_reason() {
        let fx = Fixture::new();
        let mut producer = fx.start(256);
        let good = transfer_block(&mut producer, &fx.user);
        let peer = fx.peer();
        let mut follower = peer.start(256);
        let stranger = SecretKey::random();
        let key = &fx.authority;

        // A parent nobody has: not invalid, just not placeable yet.
        let orphan = resealed(&good, key, |h| h.parent_hash = Hash([7; 32]));
        assert_eq!(
            follower.import(orphan).expect("import"),
            ImportOutcome::Orphan
        );
        // A known parent, but the number does not follow it.
        let skipped = resealed(&good, key, |h| h.number = 2);
        let reason = invalid_reason(follower.import(skipped).expect("import"));
        assert!(reason.contains("does not follow parent"), "{reason}");
        // Authored and sealed by someone who does not lead the slot.
        let usurper = resealed(&good, &stranger, |h| h.author = stranger.address());
        let reason = invalid_reason(follower.import(usurper).expect("import"));
        assert!(reason.contains("is not the leader"), "{reason}");
        // The leader named as author, sealed by someone else.
        let forged = resealed(&good, &stranger, |_| {});
        let reason = invalid_reason(follower.import(forged).expect("import"));
        assert!(reason.contains("not by the author"), "{reason}");
        // A timestamp that is not its slot's start.
        let skewed = resealed(&good, key, |h| h.timestamp_ms += 1);
        let reason = invalid_reason(follower.import(skewed).expect("import"));
        assert!(reason.contains("is not the start of slot"), "{reason}");

        // A slot that starts beyond the allowed clock drift waits; it is not invalid.
        follower.config.max_clock_drift_ms = 500;
        let far = now_ms() / 1000 + 3600;
        let future = resealed(&good, key, |h| {
            h.slot = far;
            h.timestamp_ms = far * 1000;
        });
        assert_eq!(
            follower.import(future).expect("import"),
            ImportOutcome::Future
        );
        // None of that tainted the honest block.
        assert_eq!(
            follower.import(good.clone()).expect("import"),
            ImportOutcome::Imported { reorg: false }
        );
        assert_eq!(follower.chain.tip().head_hash, good.hash());
        assert_eq!(follower.import(good).expect("import"), ImportOutcome::Known);
    }

    #[test]
    fn fork_choice_takes_the_longer_branch_and_the_lower_hash_on_a_tie() {
        let fx = Fixture::new();
        let (peer_b, peer_c, peer_d) = (fx.peer(), fx.peer(), fx.peer());
        let (mut a, mut b) = (fx.start(256), peer_b.start(256));
        let (mut c, mut d) = (peer_c.start(256), peer_d.start(256));
        let ours: Vec<Block> = (1..=2).map(|slot| empty_block(&mut a, slot)).collect();
        let theirs: Vec<Block> = (101..=103).map(|slot| empty_block(&mut b, slot)).collect();
        let lower = |x: &Block, y: &Block| {
            if x.hash() < y.hash() {
                x.hash()
            } else {
                y.hash()
            }
        };

        // Two nodes that see the same two blocks of one height in opposite orders end on the
        // same one, the lower hash, whichever came first.
        for h in 0..2 {
            c.import(ours[h].clone()).expect("import");
            c.import(theirs[h].clone()).expect("import");
            d.import(theirs[h].clone()).expect("import");
            d.import(ours[h].clone()).expect("import");
            assert_eq!(c.chain.tip().head_hash, lower(&ours[h], &theirs[h]));
            assert_eq!(d.chain.tip().head_hash, c.chain.tip().head_hash);
        }
        // Longer: the chain switches, whatever the hashes.
        assert!(matches!(
            c.import(theirs[2].clone()).expect("import"),
            ImportOutcome::Imported { .. }
        ));
        assert_eq!(c.chain.tip().head_hash, theirs[2].hash());
        for (i, blk) in theirs.iter().enumerate() {
            assert_eq!(
                c.chain.store.canonical_hash(i as u64 + 1).expect("store"),
                Some(blk.hash())
            );
        }
    }

    fn block_ref(b: &Block) -> BlockRef {
        BlockRef {
            number: b.header.number,
            hash: b.hash(),
        }
    }

    /// Three nodes on one genesis: `a` made two blocks (`ours`), `b` four on another branch
    /// (`theirs`), and `c` imported all six, so it is on the longer, `b`'s. The fixtures keep
    /// the data dirs.
    struct Forked {
        _dirs: (Fixture, Fixture, Fixture),
        a: Driver,
        b: Driver,
        c: Driver,
        ours: Vec<Block>,
        theirs: Vec<Block>,
    }

    fn forked() -> Forked {
        let fx = Fixture::new();
        let (peer_b, peer_c) = (fx.peer(), fx.peer());
        let (mut a, mut b, mut c) = (fx.start(256), peer_b.start(256), peer_c.start(256));
        let ours: Vec<Block> = (1..=2).map(|slot| empty_block(&mut a, slot)).collect();
        let theirs: Vec<Block> = (101..=104).map(|slot| empty_block(&mut b, slot)).collect();
        for blk in theirs.iter().chain(&ours) {
            c.import(blk.clone()).expect("import");
        }
        Forked {
            _dirs: (fx, peer_b, peer_c),
            a,
            b,
            c,
            ours,
            theirs,
        }
    }

    #[test]
    fn a_plain_proposal_never_shortens_the_chain_but_a_polka_re_proposal_does() {
        // Bound whole first: the fixtures must outlive the drivers using their data dirs.
        let f = forked();
        let (_dirs, _a, _b) = (f._dirs, f.a, f.b);
        let (mut c, ours, theirs) = (f.c, f.ours, f.theirs);
        assert_eq!(
            c.chain.tip().head_hash,
            theirs[3].hash(),
            "the longer branch"
        );
        // A proposal of ours[1], lower than the head: not taken...
        c.prefer(block_ref(&ours[1]), false).expect("prefer");
        assert_eq!(c.chain.tip().head_hash, theirs[3].hash());
        // ...unless it carries a polka: then its branch is, shorter or not.
        c.prefer(block_ref(&ours[1]), true).expect("prefer");
        assert_eq!(c.chain.tip().head_hash, ours[1].hash());
        assert_eq!(
            c.chain.store.canonical_hash(1).expect("store"),
            Some(ours[0].hash())
        );
    }

    #[test]
    fn after_a_polka_fork_choice_stays_on_its_descendants_until_another_polka() {
        let f = forked();
        let _dirs = f._dirs;
        let (mut a, mut b, mut c, ours) = (f.a, f.b, f.c, f.ours);
        c.prefer(block_ref(&ours[1]), true).expect("prefer");
        assert_eq!(c.chain.tip().head_hash, ours[1].hash());
        // A longer block on the other branch no longer pulls the node back before it votes:
        // fork choice follows the votes, as in the simulation.
        let longer = empty_block(&mut b, 105);
        assert_eq!(
            c.import(longer.clone()).expect("import"),
            ImportOutcome::Side
        );
        assert_eq!(c.chain.tip().head_hash, ours[1].hash());
        // A plain proposal off the polka block's branch is not taken either.
        c.prefer(block_ref(&longer), false).expect("prefer");
        assert_eq!(c.chain.tip().head_hash, ours[1].hash());
        // Its own branch still grows.
        let next = empty_block(&mut a, 3);
        assert!(matches!(
            c.import(next.clone()).expect("import"),
            ImportOutcome::Imported { .. }
        ));
        assert_eq!(c.chain.tip().head_hash, next.hash());
        // A later polka elsewhere releases it.
        c.prefer(block_ref(&longer), true).expect("prefer");
        assert_eq!(c.chain.tip().head_hash, longer.hash());
        let longest = empty_block(&mut b, 106);
        assert!(matches!(
            c.import(longest.clone()).expect("import"),
            ImportOutcome::Imported { .. }
        ));
        // Once the polka block is final the anchor is spent: fork choice is back to the
        // descendants of the final block.
        c.finalize(block_ref(&longer)).expect("finalize");
        assert_eq!(c.anchor, None);
    }

    #[test]
    fn no_branch_without_the_final_block_is_taken_and_a_final_block_elsewhere_is_switched_to() {
        let fx = Fixture::new();
        let (peer_b, peer_c) = (fx.peer(), fx.peer());
        let (mut a, mut b, mut c) = (fx.start(256), peer_b.start(256), peer_c.start(256));
        let ours: Vec<Block> = (1..=2).map(|slot| empty_block(&mut a, slot)).collect();
        let theirs: Vec<Block> = (101..=105).map(|slot| empty_block(&mut b, slot)).collect();
        for blk in &ours {
            c.import(blk.clone()).expect("import");
        }
        // Block 2 of ours is final: their longer branch, which forks below it, is refused.
        c.finalize(block_ref(&ours[1])).expect("finalize");
        let mut outcomes = Vec::new();
        for blk in &theirs {
            outcomes.push(c.import(blk.clone()).expect("import"));
        }
        assert_eq!(outcomes[0], ImportOutcome::Side);
        // At height 2 their block ties ours: it loses (a higher hash) or is refused.
        assert!(
            matches!(
                outcomes[1],
                ImportOutcome::Side | ImportOutcome::ConflictsWithFinal
            ),
            "{outcomes:?}"
        );
        assert!(
            outcomes[2..]
                .iter()
                .all(|o| *o == ImportOutcome::ConflictsWithFinal),
            "{outcomes:?}"
        );
        assert_eq!(c.chain.tip().head_hash, ours[1].hash());
        assert_eq!(c.chain.metrics.reorgs_total.get(), 0);

        // On a node where their block 1 is final instead, fork choice goes there even though
        // the branch it is on was longer.
        let peer_d = fx.peer();
        let mut d = peer_d.start(256);
        for blk in &ours {
            d.import(blk.clone()).expect("import");
        }
        d.import(theirs[0].clone()).expect("import");
        assert_eq!(d.chain.tip().head_hash, ours[1].hash());
        d.finalize(block_ref(&theirs[0])).expect("finalize");
        assert_eq!(d.chain.tip().head_hash, theirs[0].hash());
        // A final block not here yet is taken as soon as it arrives, whatever its length.
        let peer_e = fx.peer();
        let mut e = peer_e.start(256);
        for blk in &ours {
            e.import(blk.clone()).expect("import");
        }
        e.finalize(block_ref(&theirs[1])).expect("finalize");
        assert_eq!(
            e.chain.tip().head_hash,
            ours[1].hash(),
            "nothing to switch to yet"
        );
        e.import(theirs[0].clone()).expect("import");
        assert_eq!(
            e.import(theirs[1].clone()).expect("import"),
            ImportOutcome::Imported { reorg: true }
        );
        assert_eq!(e.chain.tip().head_hash, theirs[1].hash());
    }

    /// Keeps what the driver would have told the network.
    #[derive(Default, Clone)]
    struct Recorder(Arc<std::sync::Mutex<Vec<SignedTransaction>>>);

    impl Publisher for Recorder {
        fn publish_block(&self, _block: &Block) {}
        fn publish_txs(&self, txs: Vec<SignedTransaction>) {
            self.0.lock().expect("recorder").extend(txs);
        }
    }

    #[test]
    fn a_reorg_restores_the_fork_state_and_returns_the_dropped_transactions() {
        let fx = Fixture::new();
        let (peer_b, peer_c) = (fx.peer(), fx.peer());
        let (mut a, mut b) = (fx.start(256), peer_b.start(256));
        let recorder = Recorder::default();
        let mut c = peer_c.start_with(256, Box::new(recorder.clone()));

        // Branch A carries a transfer; branch B, one block longer, does not.
        block_with_transfer(&mut a, &fx.user);
        let ours = head_block(&a);
        let dropped = ours.transactions[0].clone();
        let theirs: Vec<Block> = (101..=102).map(|slot| empty_block(&mut b, slot)).collect();

        assert_eq!(
            c.import(ours).expect("import"),
            ImportOutcome::Imported { reorg: false }
        );
        assert_eq!(c.chain.tip().state.account(&fx.user.address()).nonce, 1);
        assert!(!c.chain.mempool().contains(&dropped.hash()));
        // The tie at height 1 may go either way (the lower hash); the longer branch wins.
        assert!(c.import(theirs[0].clone()).expect("import").is_valid());
        assert!(matches!(
            c.import(theirs[1].clone()).expect("import"),
            ImportOutcome::Imported { .. }
        ));

        // The state is branch B's, as a replay of the new canonical chain gives it.
        let state = c.chain.tip().state.clone();
        assert_eq!(state.digest(), b.chain.tip().state.digest());
        assert_eq!(
            state,
            c.chain.store.replay_from_genesis().expect("replay"),
            "the state after the reorg equals a replay from genesis"
        );
        assert_eq!(state.account(&fx.user.address()).nonce, 0);
        assert_eq!(
            state.account(&fx.user.address()).balance,
            Amount::coins(1000),
            "the transfer and its fee are undone"
        );
        // The dropped transfer is pooled again and passed on to peers.
        assert!(c.chain.mempool().contains(&dropped.hash()));
        assert_eq!(*recorder.0.lock().expect("recorder"), vec![dropped]);
        // And a block built on the new head includes it.
        let next = b.chain.tip().head.slot + 1;
        c.produce(next).expect("produce");
        let included = head_block(&c);
        assert_eq!(included.header.parent_hash, theirs[1].hash());
        assert_eq!(included.transactions.len(), 1);
    }
}
