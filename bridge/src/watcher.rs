//! The watcher of one source chain: scans canonical blocks in order, records peg events
//! durably with the block they came in, notices reorgs by block hash and rescans from the
//! fork point, and reports events that reached the confirmation depth on the member's own
//! node (re-checking that the block at that height still has the scanned hash).
//!
//! The cursor never passes the head the node reports.

use std::collections::{HashMap, HashSet};

use primitives::block::PegEvent;
use primitives::peg::Direction;
use primitives::types::{Amount, BlockNumber, Hash};
use rpc_api::types::BlockReceipts;

use crate::error::{BridgeError, Result};
use crate::nodes::{BlockRef, SourceChain};
use crate::store::{durably, Cursor, EventRecord, EventState, Store};

/// Most blocks scanned in one step (the rest in the next).
pub const MAX_BLOCKS_PER_STEP: u64 = 256;

/// What one watcher step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStep {
    /// The node's head this step saw.
    pub head: BlockRef,
    /// The node's last final block, as this step saw it (`None`: no finality reported).
    pub finalized: Option<BlockNumber>,
    /// Where the cursor stands after the step.
    pub cursor: Cursor,
    /// Blocks scanned.
    pub scanned: u64,
    /// New peg events recorded.
    pub new_events: u64,
    /// The fork point, when scanned blocks were reorged away.
    pub rewound_to: Option<BlockNumber>,
    /// Signed events whose block was reorged away (a reorg deeper than the depth).
    pub signed_reorged: Vec<primitives::types::Hash>,
    /// Events at depth on the node, re-checked, not yet signed: to sign now.
    pub confirmed: Vec<EventRecord>,
}

/// The watcher for one direction (its source chain).
#[derive(Debug, Clone)]
pub struct Watcher {
    /// Which transfers: deposits watch main, withdrawals watch side.
    pub direction: Direction,
    /// Depth before an event is reported confirmed.
    pub confirmations: u64,
    /// Peg-out fee kept from withdrawals.
    pub peg_out_fee: Amount,
    /// Scanned hashes kept for reorg detection.
    pub history: u64,
}

impl Watcher {
    fn name(&self) -> &'static str {
        match self.direction {
            Direction::MainToSide => "deposits",
            Direction::SideToMain => "withdrawals",
        }
    }

    /// The peg events of interest in one block, as records.
    pub fn events_in(&self, b: &BlockReceipts, now_ms: u64) -> Vec<EventRecord> {
        let mut out = Vec::new();
        for r in b.receipts.iter().filter(|r| r.failure.is_none()) {
            let (id, amount, recipient) = match (&r.peg_event, self.direction) {
                (
                    Some(PegEvent::Deposit {
                        id,
                        amount,
                        recipient,
                    }),
                    Direction::MainToSide,
                )
                | (
                    Some(PegEvent::Withdrawal {
                        id,
                        amount,
                        recipient,
                    }),
                    Direction::SideToMain,
                ) => (*id, *amount, *recipient),
                _ => continue,
            };
            let payout_amount = match self.direction {
                Direction::MainToSide => amount,
                Direction::SideToMain => match amount.checked_sub(self.peg_out_fee) {
                    Some(a) => a,
                    None => {
                        tracing::error!(withdrawal_id = %id, %amount, fee = %self.peg_out_fee, "withdrawal below the peg-out fee: not attested");
                        continue;
                    }
                },
            };
            out.push(EventRecord {
                direction: self.direction,
                id,
                recipient,
                source_amount: amount,
                payout_amount,
                source_height: b.number,
                source_block: b.hash,
                state: EventState::Seen,
                seen_ms: now_ms,
                signed_ms: None,
                ready_ms: None,
                paid_ms: None,
                payout_tx: None,
            });
        }
        out
    }

    /// Finds the highest scanned height whose hash the node still has, and rewinds there.
    async fn rewind<C: SourceChain>(
        &self,
        store: &Store,
        chain: &C,
        from: BlockNumber,
    ) -> Result<(Cursor, Vec<primitives::types::Hash>)> {
        let mut h = from;
        loop {
            let Some(ours) = store.scanned_hash(self.direction, h)? else {
                let oldest = store.oldest_scanned(self.direction)?.unwrap_or(0);
                return Err(BridgeError::ReorgTooDeep {
                    direction: self.name(),
                    oldest,
                });
            };
            let theirs = chain.block(h).await?.map(|b| b.hash);
            if theirs == Some(ours) {
                let fork = Cursor {
                    height: h,
                    hash: ours,
                };
                let signed = durably(|| store.rewind(self.direction, fork))?;
                tracing::warn!(
                    direction = self.name(),
                    fork_height = h,
                    "reorg of scanned blocks: rescanning from the fork point"
                );
                for id in &signed {
                    tracing::error!(direction = self.name(), peg_id = %id, fork_height = h, "an event already signed was reorged away (reorg deeper than the confirmation depth)");
                }
                return Ok((fork, signed));
            }
            if h == 0 {
                return Err(BridgeError::Peg(format!(
                    "{}: the node's genesis differs from the one scanned",
                    self.name()
                )));
            }
            h -= 1;
        }
    }

    /// One pass: reorg check, scan forward (at most [`MAX_BLOCKS_PER_STEP`]), confirm.
    pub async fn step<C: SourceChain>(
        &self,
        store: &Store,
        chain: &C,
        now_ms: u64,
    ) -> Result<WatchStep> {
        let head = chain.head().await?;
        // Asked after the head: a final height never runs ahead of the head we then scan to.
        let finalized = chain.finalized().await?;
        let mut cursor = match store.cursor(self.direction)? {
            Some(c) => c,
            None => {
                let genesis = chain.block(0).await?.ok_or_else(|| BridgeError::Rpc {
                    chain: "source",
                    reason: "the node has no block 0".into(),
                })?;
                let c = Cursor {
                    height: 0,
                    hash: genesis.hash,
                };
                durably(|| store.commit_scan(self.direction, c, &[], self.history))?;
                c
            }
        };
        let mut step = WatchStep {
            head,
            finalized,
            cursor,
            scanned: 0,
            new_events: 0,
            rewound_to: None,
            signed_reorged: Vec::new(),
            confirmed: Vec::new(),
        };
        // Is the block under the cursor still canonical on our node?
        let at_cursor = chain.block(cursor.height).await?.map(|b| b.hash);
        if at_cursor != Some(cursor.hash) {
            let (fork, signed) = self
                .rewind(store, chain, cursor.height.saturating_sub(1))
                .await?;
            cursor = fork;
            step.rewound_to = Some(fork.height);
            step.signed_reorged = signed;
        }
        // Scan forward, never past the head the node reported; what a step scans is committed
        // in one durable write at the end (a crash before it rescans the same blocks).
        let last = head.number.min(cursor.height + MAX_BLOCKS_PER_STEP);
        let mut scanned = Vec::new();
        while cursor.height < last {
            let n = cursor.height + 1;
            let Some(b) = chain.block(n).await? else {
                break;
            };
            if b.parent_hash != cursor.hash {
                // The chain moved under us between calls: the next step finds the fork.
                tracing::debug!(
                    direction = self.name(),
                    height = n,
                    "parent mismatch while scanning; rechecking next step"
                );
                break;
            }
            let events = self.events_in(&b, now_ms);
            for e in &events {
                tracing::info!(direction = self.name(), peg_id = %e.id, height = n, amount = %e.source_amount, recipient = %e.recipient, "peg event seen");
            }
            let next = Cursor {
                height: n,
                hash: b.hash,
            };
            step.new_events += events.len() as u64;
            step.scanned += 1;
            scanned.push((next, events));
            cursor = next;
        }
        durably(|| store.commit_scans(self.direction, &scanned, self.history))?;
        step.cursor = cursor;
        // Confirm: deep enough on our node, and the block at that height still the one scanned.
        // Each block is fetched again once per step, however many events it holds.
        let mut refetched: HashMap<BlockNumber, Option<(Hash, HashSet<Hash>)>> = HashMap::new();
        for e in store.open_events(Some(self.direction))? {
            if e.state != EventState::Seen || e.source_height > cursor.height {
                continue;
            }
            let depth = head.number.saturating_sub(e.source_height) + 1;
            if head.number < e.source_height || depth < self.confirmations {
                continue;
            }
            // Only a final block can never be reorged away: no signature before that.
            if finalized.is_none_or(|f| e.source_height > f) {
                tracing::debug!(direction = self.name(), peg_id = %e.id, height = e.source_height, finalized = ?finalized, "deep enough, waiting for finality");
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) =
                refetched.entry(e.source_height)
            {
                let again = chain.block(e.source_height).await?.map(|b| {
                    let ids = self.events_in(&b, now_ms).iter().map(|x| x.id).collect();
                    (b.hash, ids)
                });
                slot.insert(again);
            }
            let still = refetched
                .get(&e.source_height)
                .and_then(Option::as_ref)
                .is_some_and(|(hash, ids)| *hash == e.source_block && ids.contains(&e.id));
            if still {
                step.confirmed.push(e);
            } else {
                tracing::warn!(direction = self.name(), peg_id = %e.id, height = e.source_height, "event's block changed before signing; waiting for the rescan");
            }
        }
        Ok(step)
    }
}

#[cfg(test)]
pub mod fake {
    //! A fake source chain whose blocks tests append and reorg at will.

    use std::sync::Mutex;

    use primitives::block::{PegEvent, Receipt};
    use primitives::crypto::keccak256_parts;
    use primitives::types::{Address, Amount, BlockNumber, Hash};
    use rpc_api::types::BlockReceipts;

    use crate::error::Result;
    use crate::nodes::{BlockRef, SourceChain};

    /// Canonical blocks, index = height.
    #[derive(Debug)]
    pub struct FakeChain {
        blocks: Mutex<Vec<BlockReceipts>>,
        /// The final height it reports; `None` in the cell: every block is final.
        finalized: Mutex<Option<Option<BlockNumber>>>,
    }

    /// A successful deposit receipt.
    pub fn deposit(id: Hash, amount: u128) -> Receipt {
        Receipt {
            tx_hash: id,
            failure: None,
            fee_paid: Amount(0),
            fee_to_producer: Amount(0),
            fee_burned: Amount(0),
            weight: 100,
            peg_event: Some(PegEvent::Deposit {
                id,
                amount: Amount(amount),
                recipient: Address([1; 20]),
            }),
        }
    }

    impl Default for FakeChain {
        fn default() -> Self {
            Self::new()
        }
    }

    impl FakeChain {
        /// Just a genesis block.
        pub fn new() -> Self {
            let g = BlockReceipts {
                hash: Hash([0xee; 32]),
                number: 0,
                parent_hash: Hash::ZERO,
                timestamp_ms: 0,
                receipts: vec![],
            };
            Self {
                blocks: Mutex::new(vec![g]),
                finalized: Mutex::new(None),
            }
        }

        /// From now on the chain reports `height` as its last final block (`None`: no
        /// finality reported at all, as a node before finality).
        pub fn set_finalized(&self, height: Option<BlockNumber>) {
            *self.finalized.lock().expect("lock") = Some(height);
        }

        /// Appends a block (`fork` salts its hash so branches differ).
        pub fn push(&self, receipts: Vec<Receipt>, fork: u8) -> Hash {
            let mut b = self.blocks.lock().expect("lock");
            let parent = b.last().map(|x| x.hash).unwrap_or_default();
            let number = b.len() as BlockNumber;
            let hash = keccak256_parts(&[&parent.0, &number.to_le_bytes(), &[fork]]);
            b.push(BlockReceipts {
                hash,
                number,
                parent_hash: parent,
                timestamp_ms: number,
                receipts,
            });
            hash
        }

        /// Drops every block above `height`.
        pub fn truncate(&self, height: BlockNumber) {
            self.blocks
                .lock()
                .expect("lock")
                .truncate(height as usize + 1);
        }

        /// The head height.
        pub fn height(&self) -> BlockNumber {
            self.blocks.lock().expect("lock").len() as BlockNumber - 1
        }
    }

    impl SourceChain for FakeChain {
        async fn head(&self) -> Result<BlockRef> {
            let b = self.blocks.lock().expect("lock");
            let last = b.last().expect("genesis");
            Ok(BlockRef {
                number: last.number,
                hash: last.hash,
            })
        }
        async fn block(&self, number: BlockNumber) -> Result<Option<BlockReceipts>> {
            Ok(self
                .blocks
                .lock()
                .expect("lock")
                .get(number as usize)
                .cloned())
        }
        async fn finalized(&self) -> Result<Option<BlockNumber>> {
            let set = *self.finalized.lock().expect("lock");
            Ok(set.unwrap_or_else(|| Some(self.height())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{deposit, FakeChain};
    use super::*;
    use primitives::types::Hash;

    /// A store in a temp dir (kept while the guard lives), a fake chain, the watcher.
    fn setup() -> (tempfile::TempDir, Store, FakeChain, Watcher) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store, FakeChain::new(), watcher())
    }

    fn watcher() -> Watcher {
        Watcher {
            direction: Direction::MainToSide,
            confirmations: 3,
            peg_out_fee: Amount(1),
            history: 64,
        }
    }

    #[tokio::test]
    async fn confirms_only_at_depth_and_resumes_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = FakeChain::new();
        let w = watcher();
        let id = Hash([7; 32]);
        chain.push(vec![deposit(id, 50)], 0); // height 1
        {
            let store = Store::open(dir.path()).expect("open");
            let s = w.step(&store, &chain, 1).await.expect("step");
            assert_eq!((s.scanned, s.new_events), (1, 1));
            assert!(s.confirmed.is_empty(), "depth 1 of 3");
            chain.push(vec![], 0); // depth 2
            assert!(w
                .step(&store, &chain, 2)
                .await
                .expect("step")
                .confirmed
                .is_empty());
        }
        // A restart in between: the cursor and the event were durable.
        let store = Store::open(dir.path()).expect("reopen");
        chain.push(vec![], 0); // depth 3
        let s = w.step(&store, &chain, 3).await.expect("step");
        assert_eq!(s.scanned, 1, "resumes after the last scanned block");
        assert_eq!(s.confirmed.len(), 1);
        assert_eq!(s.confirmed[0].id, id);
        assert_eq!(s.cursor.height, 3);
    }

    /// Depth is not enough: a deposit deep in a branch that is not final (a partition, a
    /// withholding authority) is never signed until its block is final, and a node that
    /// reports no finality at all gets nothing signed.
    #[tokio::test]
    async fn an_event_at_depth_is_signed_only_once_its_block_is_final() {
        let (_dir, store, chain, w) = setup();
        let id = Hash([9; 32]);
        chain.push(vec![], 0); // 1
        chain.push(vec![deposit(id, 50)], 0); // 2
        for _ in 0..10 {
            chain.push(vec![], 0);
        }
        chain.set_finalized(Some(1));
        let s = w.step(&store, &chain, 1).await.expect("step");
        assert_eq!(s.new_events, 1);
        assert!(
            s.confirmed.is_empty(),
            "11 blocks deep, but only block 1 is final"
        );
        chain.set_finalized(None);
        assert!(w
            .step(&store, &chain, 2)
            .await
            .expect("step")
            .confirmed
            .is_empty());
        chain.set_finalized(Some(2));
        let s = w.step(&store, &chain, 3).await.expect("step");
        assert_eq!(s.confirmed.len(), 1, "final now");
        assert_eq!(s.confirmed[0].id, id);
    }

    #[tokio::test]
    async fn reorg_of_scanned_blocks_rescans_from_the_fork_point() {
        let (_dir, store, chain, w) = setup();
        chain.push(vec![], 0); // 1
        chain.push(vec![], 0); // 2
        chain.push(vec![deposit(Hash([1; 32]), 10)], 0); // 3
        chain.push(vec![], 0); // 4
        let s = w.step(&store, &chain, 1).await.expect("step");
        assert_eq!(s.cursor.height, 4);
        // Blocks 3 and 4 are replaced by a longer branch carrying a different deposit at 4.
        chain.truncate(2);
        chain.push(vec![], 1); // 3'
        chain.push(vec![deposit(Hash([2; 32]), 20)], 1); // 4'
        chain.push(vec![], 1); // 5'
        let s = w.step(&store, &chain, 2).await.expect("step");
        assert_eq!(s.rewound_to, Some(2), "fork point is the last common block");
        assert_eq!(s.scanned, 3, "3', 4', 5' rescanned");
        assert_eq!(s.cursor.height, 5);
        assert!(
            store.event(&Hash([1; 32])).expect("get").is_none(),
            "reorged-out deposit forgotten"
        );
        assert!(store.event(&Hash([2; 32])).expect("get").is_some());
        for h in 1..=5 {
            let theirs = chain.block(h).await.expect("block").map(|b| b.hash);
            assert_eq!(
                store.scanned_hash(Direction::MainToSide, h).expect("get"),
                theirs,
                "height {h}"
            );
        }
    }

    #[tokio::test]
    async fn deposit_reorged_out_before_depth_is_never_confirmed() {
        let (_dir, store, chain, w) = setup();
        let id = Hash([9; 32]);
        chain.push(vec![], 0); // 1
        chain.push(vec![deposit(id, 10)], 0); // 2
        chain.push(vec![], 0); // 3: depth 2 of 3
        let s = w.step(&store, &chain, 1).await.expect("step");
        assert_eq!(s.new_events, 1);
        assert!(s.confirmed.is_empty());
        // The branch without the deposit wins, and grows well past the depth.
        chain.truncate(1);
        for _ in 0..6 {
            chain.push(vec![], 1);
        }
        let mut confirmed = Vec::new();
        for t in 0..3 {
            let s = w.step(&store, &chain, 10 + t).await.expect("step");
            confirmed.extend(s.confirmed);
        }
        assert!(confirmed.is_empty(), "never confirmed: {confirmed:?}");
        assert!(store.event(&id).expect("get").is_none());
        assert!(store.open_events(None).expect("open").is_empty());
    }

    #[tokio::test]
    async fn reorg_between_head_and_confirm_is_caught_by_the_hash_recheck() {
        // The head says depth is reached, but our cursor's block was replaced after the scan
        // and before the confirmation pass of a later step: the re-check refuses it and the
        // next step rewinds.
        let (_dir, store, chain, w) = setup();
        let id = Hash([4; 32]);
        chain.push(vec![deposit(id, 10)], 0); // 1
        chain.push(vec![], 0); // 2
        assert!(w
            .step(&store, &chain, 1)
            .await
            .expect("step")
            .confirmed
            .is_empty());
        // Replace block 1 with a same-height block without the deposit, then grow.
        chain.truncate(0);
        chain.push(vec![], 2);
        chain.push(vec![], 2);
        chain.push(vec![], 2);
        let s = w.step(&store, &chain, 2).await.expect("step");
        assert_eq!(s.rewound_to, Some(0));
        assert!(s.confirmed.is_empty());
        assert!(store.event(&id).expect("get").is_none());
    }

    #[tokio::test]
    async fn never_passes_the_head_and_node_going_backwards_rewinds() {
        let (_dir, store, chain, w) = setup();
        for _ in 0..5 {
            chain.push(vec![], 0);
        }
        let s = w.step(&store, &chain, 1).await.expect("step");
        assert_eq!(s.cursor.height, 5);
        // The node now reports a shorter canonical chain (it switched to a shorter branch
        // after a restart): the cursor comes back to what the node has.
        chain.truncate(3);
        let s = w.step(&store, &chain, 2).await.expect("step");
        assert_eq!(s.rewound_to, Some(3));
        assert_eq!(s.cursor.height, 3);
        assert!(s.cursor.height <= chain.height());
    }
}
