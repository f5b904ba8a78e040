//! Durable storage in redb: one write transaction per block in `chain.redb`, account
//! checkpoints in `state.redb`.
//!
//! Account state is authoritative in memory. Each block's commit writes the block, its
//! senders, receipts, transaction index, state diff and undo journal, the canonical index and
//! the head, atomically and durably. Every `checkpoint_interval` blocks the accounts changed
//! since the last checkpoint are written to `state.redb`; a restart loads the checkpoint and
//! replays the diffs of the blocks after it. Whatever is not in a committed block did not happen.

use std::collections::HashSet;
use std::path::Path;

use parity_scale_codec::{Decode, DecodeAll, Encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::execution::Executed;
use crate::state::{EntrySum, State, StateDiff, Undo};
use primitives::account::{Account, Totals};
use primitives::block::{Block, Header, Receipt};
use primitives::genesis::Genesis;
use primitives::tx::RecoveredTx;
use primitives::types::{Address, BlockNumber, Hash};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("blocks");
const HEADERS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("headers");
const CANONICAL: TableDefinition<u64, [u8; 32]> = TableDefinition::new("canonical");
const TX_INDEX: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("tx_index");
const RECEIPTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("receipts");
const DIFFS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("diffs");
const UNDO: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("undo");

const ACCOUNTS: TableDefinition<[u8; 20], &[u8]> = TableDefinition::new("accounts");
const CHECKPOINT: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoint");
const PEG_IDS: TableDefinition<[u8; 32], u64> = TableDefinition::new("peg_ids");

const KEY_GENESIS: &str = "genesis";
const KEY_HEAD: &str = "head";
const KEY_CHECKPOINT: &str = "at";
/// The checkpoint's [`EntrySum`]: what its accounts and peg ids must add up to when loaded.
const KEY_CHECKPOINT_SUM: &str = "sum";

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// Stored bytes do not decode.
    #[error("corrupt record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// The decode error.
        detail: String,
    },
    /// The data dir has no genesis yet.
    #[error("data directory is not initialized: run `init` first")]
    NotInitialized,
    /// `init` on a data dir that already holds a chain.
    #[error("data directory already holds a chain with genesis {0}")]
    AlreadyInitialized(Hash),
    /// The data dir could not be created.
    #[error("creating data directory: {0}")]
    Io(#[from] std::io::Error),
}

service::impl_from_redb_errors!(StoreError);

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, StoreError>;

fn decode<T: Decode>(what: &'static str, bytes: &[u8]) -> Result<T> {
    T::decode_all(&mut &bytes[..]).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// A block as stored: with the senders recovered at ingress, so nothing is recovered twice.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StoredBlock {
    /// The block.
    pub block: Block,
    /// One sender per transaction.
    pub senders: Vec<Address>,
}

/// Where a transaction sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TxLocation {
    /// The block's hash.
    pub block_hash: Hash,
    /// The block's height.
    pub block_number: BlockNumber,
    /// Position in the block.
    pub index: u32,
}

/// Everything one block commit writes.
#[derive(Clone, Debug)]
pub struct CommittedBlock {
    /// The block with its senders.
    pub stored: StoredBlock,
    /// Transaction hashes, in order.
    pub tx_hashes: Vec<Hash>,
    /// Receipts, in order.
    pub receipts: Vec<Receipt>,
    /// New values of touched accounts.
    pub diff: StateDiff,
    /// Previous values of touched accounts.
    pub undo: Undo,
}

impl CommittedBlock {
    /// What committing `block` writes, from its recovered transactions and their execution.
    pub fn new(block: Block, recovered: &[RecoveredTx], executed: Executed) -> Self {
        Self {
            tx_hashes: recovered.iter().map(|t| t.hash()).collect(),
            stored: StoredBlock {
                senders: recovered.iter().map(|t| t.sender()).collect(),
                block,
            },
            receipts: executed.receipts,
            diff: executed.diff,
            undo: executed.undo,
        }
    }
}

/// Where the last account checkpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CheckpointMark {
    /// Height the checkpoint reflects.
    pub number: BlockNumber,
    /// Hash of that block.
    pub hash: Hash,
    /// Totals at that block.
    pub totals: Totals,
}

/// What changed since the durable checkpoint: the next checkpoint must write it. Rebuilt at
/// every start from the blocks replayed after the checkpoint, so a restart forgets nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinceCheckpoint {
    /// Accounts changed (or removed by a reorg).
    pub accounts: HashSet<Address>,
    /// Peg ids processed (or unprocessed by a reorg).
    pub ids: HashSet<Hash>,
    /// The checkpoint cannot be patched (there is none, it lies on an abandoned branch, or its
    /// entries do not add up): the next one rewrites every entry.
    pub rewrite: bool,
}

impl SinceCheckpoint {
    /// Notes what a block committed on top of the checkpoint changed.
    pub fn note_diff(&mut self, diff: &StateDiff) {
        self.accounts.extend(diff.accounts.iter().map(|(a, _)| *a));
        self.ids.extend(diff.processed.iter().map(|(id, _)| *id));
    }

    /// Notes what rolling a block back changed.
    pub fn note_undo(&mut self, undo: &Undo) {
        self.accounts.extend(undo.accounts.iter().map(|(a, _)| *a));
        self.ids.extend(undo.processed.iter().copied());
    }

    /// Adds what `other` holds (a checkpoint that failed gives its changes back).
    pub fn merge(&mut self, other: SinceCheckpoint) {
        self.accounts.extend(other.accounts);
        self.ids.extend(other.ids);
        self.rewrite |= other.rewrite;
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.ids.is_empty() && !self.rewrite
    }
}

/// One checkpoint write: the entries to patch (or, with `replace_all`, the whole state).
#[derive(Clone, Debug, Default)]
pub struct CheckpointPatch {
    /// New account values; `None` removes an account (one a reorg undid).
    pub accounts: Vec<(Address, Option<Account>)>,
    /// Processed peg ids; `None` forgets one (a reorg undid its payout).
    pub ids: Vec<(Hash, Option<BlockNumber>)>,
    /// Clear every entry first: `accounts` and `ids` are then the whole state.
    pub replace_all: bool,
    /// What the checkpoint's entries add up to after the write, checked when it is loaded.
    pub sum: Option<EntrySum>,
}

/// The state rebuilt at start.
#[derive(Debug)]
pub struct LoadedState {
    /// Accounts and peg ids at the head.
    pub state: State,
    /// The canonical head.
    pub head: StoredBlock,
    /// What the blocks after the checkpoint changed.
    pub since_checkpoint: SinceCheckpoint,
}

/// The node's durable storage.
#[derive(Debug)]
pub struct Store {
    chain: Database,
    state: Database,
    /// Tests: this many checkpoint writes fail before touching the database.
    #[cfg(test)]
    pub(crate) fail_checkpoints: std::sync::atomic::AtomicU32,
}

impl Store {
    /// Opens (creating if needed) the two database files in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let chain = Database::create(dir.join("chain.redb"))?;
        let state = Database::create(dir.join("state.redb"))?;
        Ok(Self {
            chain,
            state,
            #[cfg(test)]
            fail_checkpoints: Default::default(),
        })
    }

    /// The stored genesis specification, if initialized.
    pub fn genesis(&self) -> Result<Option<Genesis>> {
        let rtx = self.chain.begin_read()?;
        let meta = match rtx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match meta.get(KEY_GENESIS)? {
            Some(v) => Ok(Some(decode("genesis", v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes the genesis block, the genesis state and the head. Refuses an initialized dir.
    pub fn init_genesis(&self, genesis: &Genesis) -> Result<Hash> {
        if let Some(existing) = self.genesis()? {
            return Err(StoreError::AlreadyInitialized(existing.block().hash()));
        }
        let block = genesis.block();
        let hash = block.hash();
        let stored = StoredBlock {
            block,
            senders: vec![],
        };
        let wtx = self.chain.begin_write()?;
        {
            let mut meta = wtx.open_table(META)?;
            meta.insert(KEY_GENESIS, genesis.encode().as_slice())?;
            meta.insert(KEY_HEAD, hash.0.as_slice())?;
            wtx.open_table(BLOCKS)?
                .insert(hash.0, stored.encode().as_slice())?;
            wtx.open_table(HEADERS)?
                .insert(hash.0, stored.block.header.encode().as_slice())?;
            wtx.open_table(CANONICAL)?.insert(0u64, hash.0)?;
            wtx.open_table(RECEIPTS)?
                .insert(hash.0, Vec::<Receipt>::new().encode().as_slice())?;
            // Create every table so readers never meet a missing one.
            wtx.open_table(TX_INDEX)?;
            wtx.open_table(HEADERS)?;
            wtx.open_table(DIFFS)?;
            wtx.open_table(UNDO)?;
        }
        wtx.commit()?;
        let state = crate::state::State::from_genesis(genesis);
        self.write_checkpoint(
            CheckpointMark {
                number: 0,
                hash,
                totals: Totals::default(),
            },
            &CheckpointPatch {
                accounts: state.iter().map(|(a, v)| (*a, Some(*v))).collect(),
                ids: vec![],
                replace_all: true,
                sum: Some(state.entry_sum()),
            },
        )?;
        Ok(hash)
    }

    /// The canonical head's hash.
    pub fn head(&self) -> Result<Hash> {
        let rtx = self.chain.begin_read()?;
        let meta = rtx
            .open_table(META)
            .map_err(|_| StoreError::NotInitialized)?;
        let v = meta.get(KEY_HEAD)?.ok_or(StoreError::NotInitialized)?;
        let arr: [u8; 32] = v.value().try_into().map_err(|_| StoreError::Corrupt {
            what: "head",
            detail: "not 32 bytes".into(),
        })?;
        Ok(Hash(arr))
    }

    /// Commits one block extending the canonical head, in a single durable write transaction.
    pub fn commit_block(&self, c: &CommittedBlock) -> Result<()> {
        self.commit_canonical(&[], std::slice::from_ref(c))
    }

    /// Stores a valid block that is not (yet) on the canonical chain; it is executed only if
    /// its branch becomes the longest.
    pub fn store_side_block(&self, stored: &StoredBlock) -> Result<()> {
        let hash = stored.block.hash();
        let wtx = self.chain.begin_write()?;
        {
            wtx.open_table(BLOCKS)?
                .insert(hash.0, stored.encode().as_slice())?;
            wtx.open_table(HEADERS)?
                .insert(hash.0, stored.block.header.encode().as_slice())?;
        }
        wtx.commit()?;
        Ok(())
    }

    /// Moves the canonical chain in one durable write transaction: the blocks of `abandoned`
    /// (hash and transaction hashes, any order) leave it, the `adopted` blocks (in order,
    /// the first one's parent canonical) join it, and the last adopted becomes the head.
    pub fn commit_canonical(
        &self,
        abandoned: &[(Hash, BlockNumber, Vec<Hash>)],
        adopted: &[CommittedBlock],
    ) -> Result<()> {
        let Some(last) = adopted.last() else {
            return Ok(());
        };
        let head = last.stored.block.header.hash();
        let head_number = last.stored.block.header.number;
        let encoded: Vec<_> = adopted
            .iter()
            .map(|c| {
                (
                    c.stored.block.header.hash(),
                    c.stored.encode(),
                    c.stored.block.header.encode(),
                    c.receipts.encode(),
                    c.diff.encode(),
                    c.undo.encode(),
                )
            })
            .collect();
        let wtx = self.chain.begin_write()?;
        {
            let mut idx = wtx.open_table(TX_INDEX)?;
            let mut canonical = wtx.open_table(CANONICAL)?;
            for (_, number, txs) in abandoned {
                for h in txs {
                    idx.remove(h.0)?;
                }
                if *number > head_number {
                    canonical.remove(*number)?;
                }
            }
            let mut blocks = wtx.open_table(BLOCKS)?;
            let mut headers = wtx.open_table(HEADERS)?;
            let mut receipts = wtx.open_table(RECEIPTS)?;
            let mut diffs = wtx.open_table(DIFFS)?;
            let mut undos = wtx.open_table(UNDO)?;
            for (c, (hash, block, header, rcpts, diff, undo)) in adopted.iter().zip(&encoded) {
                let number = c.stored.block.header.number;
                blocks.insert(hash.0, block.as_slice())?;
                headers.insert(hash.0, header.as_slice())?;
                receipts.insert(hash.0, rcpts.as_slice())?;
                diffs.insert(hash.0, diff.as_slice())?;
                undos.insert(hash.0, undo.as_slice())?;
                for (i, h) in c.tx_hashes.iter().enumerate() {
                    let loc = TxLocation {
                        block_hash: *hash,
                        block_number: number,
                        index: i as u32,
                    };
                    idx.insert(h.0, loc.encode().as_slice())?;
                }
                canonical.insert(number, hash.0)?;
            }
            wtx.open_table(META)?.insert(KEY_HEAD, head.0.as_slice())?;
        }
        wtx.commit()?;
        Ok(())
    }

    /// A header by hash (canonical or not).
    pub fn header(&self, hash: &Hash) -> Result<Option<Header>> {
        let rtx = self.chain.begin_read()?;
        let t = rtx.open_table(HEADERS)?;
        let v = t.get(hash.0)?;
        v.map(|v| decode("header", v.value())).transpose()
    }

    /// Whether `hash` is the canonical block at `number`.
    pub fn is_canonical(&self, hash: &Hash, number: BlockNumber) -> Result<bool> {
        Ok(self.canonical_hash(number)? == Some(*hash))
    }

    /// Canonical blocks from `from` on, at most `max_count` and about `max_bytes` in all.
    pub fn canonical_range(
        &self,
        from: BlockNumber,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Block>> {
        let rtx = self.chain.begin_read()?;
        let canonical = rtx.open_table(CANONICAL)?;
        let blocks = rtx.open_table(BLOCKS)?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for entry in canonical.range(from..)? {
            let (_, hash) = entry?;
            let Some(v) = blocks.get(hash.value())? else {
                break;
            };
            let stored: StoredBlock = decode("block", v.value())?;
            bytes += v.value().len();
            out.push(stored.block);
            if out.len() >= max_count || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// A block by hash.
    pub fn block(&self, hash: &Hash) -> Result<Option<StoredBlock>> {
        let rtx = self.chain.begin_read()?;
        let t = rtx.open_table(BLOCKS)?;
        let v = t.get(hash.0)?;
        v.map(|v| decode("block", v.value())).transpose()
    }

    /// The canonical block hash at `number`.
    pub fn canonical_hash(&self, number: BlockNumber) -> Result<Option<Hash>> {
        let rtx = self.chain.begin_read()?;
        let t = rtx.open_table(CANONICAL)?;
        let v = t.get(number)?;
        Ok(v.map(|v| Hash(v.value())))
    }

    /// A block's receipts.
    pub fn receipts(&self, block_hash: &Hash) -> Result<Option<Vec<Receipt>>> {
        let rtx = self.chain.begin_read()?;
        let t = rtx.open_table(RECEIPTS)?;
        let v = t.get(block_hash.0)?;
        v.map(|v| decode("receipts", v.value())).transpose()
    }

    /// Where a transaction was included, if it was.
    pub fn tx_location(&self, tx_hash: &Hash) -> Result<Option<TxLocation>> {
        let rtx = self.chain.begin_read()?;
        let t = rtx.open_table(TX_INDEX)?;
        let v = t.get(tx_hash.0)?;
        v.map(|v| decode("tx index", v.value())).transpose()
    }

    /// A block's undo journal.
    pub fn undo(&self, block_hash: &Hash) -> Result<Option<Undo>> {
        let rtx = self.chain.begin_read()?;
        let t = rtx.open_table(UNDO)?;
        let v = t.get(block_hash.0)?;
        v.map(|v| decode("undo", v.value())).transpose()
    }

    /// Writes the entries changed since the last checkpoint (or, with `replace_all`, all of
    /// them) and moves the mark, atomically.
    pub fn write_checkpoint(&self, mark: CheckpointMark, patch: &CheckpointPatch) -> Result<()> {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            if self
                .fail_checkpoints
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StoreError::Io(std::io::Error::other(
                    "injected checkpoint failure",
                )));
            }
        }
        let wtx = self.state.begin_write()?;
        {
            if patch.replace_all {
                wtx.delete_table(PEG_IDS)?;
                wtx.delete_table(ACCOUNTS)?;
            }
            let mut ids = wtx.open_table(PEG_IDS)?;
            for (id, block) in &patch.ids {
                match block {
                    Some(b) => {
                        ids.insert(id.0, *b)?;
                    }
                    None => {
                        ids.remove(id.0)?;
                    }
                }
            }
            let mut t = wtx.open_table(ACCOUNTS)?;
            for (addr, acct) in &patch.accounts {
                match acct {
                    Some(acct) => {
                        t.insert(addr.0, acct.encode().as_slice())?;
                    }
                    None => {
                        t.remove(addr.0)?;
                    }
                }
            }
            let mut meta = wtx.open_table(CHECKPOINT)?;
            meta.insert(KEY_CHECKPOINT, mark.encode().as_slice())?;
            match patch.sum {
                Some(sum) => {
                    meta.insert(KEY_CHECKPOINT_SUM, sum.to_bytes().as_slice())?;
                }
                None => {
                    meta.remove(KEY_CHECKPOINT_SUM)?;
                }
            }
        }
        wtx.commit()?;
        Ok(())
    }

    /// The checkpoint: its mark, its state and whether its entries add up to the sum written
    /// with them (`None`: written before sums were kept).
    fn checkpoint(&self) -> Result<Option<(CheckpointMark, State, Option<bool>)>> {
        let rtx = self.state.begin_read()?;
        let marks = match rtx.open_table(CHECKPOINT) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(mark) = marks.get(KEY_CHECKPOINT)? else {
            return Ok(None);
        };
        let mark: CheckpointMark = decode("checkpoint", mark.value())?;
        let sum: Option<[u8; 32]> = match marks.get(KEY_CHECKPOINT_SUM)? {
            Some(v) => Some(v.value().try_into().map_err(|_| StoreError::Corrupt {
                what: "checkpoint sum",
                detail: "not 32 bytes".into(),
            })?),
            None => None,
        };
        let mut state = State::default();
        match rtx.open_table(ACCOUNTS) {
            Ok(t) => {
                for entry in t.iter()? {
                    let (k, v) = entry?;
                    state.insert(Address(k.value()), decode("account", v.value())?);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        match rtx.open_table(PEG_IDS) {
            Ok(t) => {
                for entry in t.iter()? {
                    let (k, v) = entry?;
                    state.insert_processed(Hash(k.value()), v.value());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        state.totals = mark.totals;
        let consistent = sum.map(|s| s == state.entry_sum().to_bytes());
        Ok(Some((mark, state, consistent)))
    }

    /// Applies the canonical diffs of blocks `from + 1 ..= to` to `state`, noting what they
    /// change in `since`.
    fn replay(
        &self,
        state: &mut State,
        from: BlockNumber,
        to: BlockNumber,
        since: &mut SinceCheckpoint,
    ) -> Result<()> {
        let rtx = self.chain.begin_read()?;
        let canonical = rtx.open_table(CANONICAL)?;
        let diffs = rtx.open_table(DIFFS)?;
        for n in from + 1..=to {
            let hash = canonical.get(n)?.ok_or(StoreError::Corrupt {
                what: "canonical",
                detail: format!("no block at height {n}"),
            })?;
            let diff = diffs.get(hash.value())?.ok_or(StoreError::Corrupt {
                what: "diff",
                detail: format!("no diff for block {n}"),
            })?;
            let diff: StateDiff = decode("diff", diff.value())?;
            state.apply_diff(&diff);
            since.note_diff(&diff);
        }
        Ok(())
    }

    fn head_block(&self) -> Result<StoredBlock> {
        let head_hash = self.head()?;
        self.block(&head_hash)?.ok_or(StoreError::Corrupt {
            what: "head",
            detail: format!("head block {head_hash} missing"),
        })
    }

    /// Rebuilds the in-memory state at the canonical head: the checkpoint, then the diffs
    /// after it. A checkpoint off the canonical chain, or whose entries do not add up to the
    /// sum written with them, is not trusted: the state is replayed from genesis instead and
    /// the next checkpoint rewrites every entry.
    pub fn load_state(&self) -> Result<LoadedState> {
        let genesis = self.genesis()?.ok_or(StoreError::NotInitialized)?;
        let head = self.head_block()?;
        let head_number = head.block.header.number;
        let mut since = SinceCheckpoint::default();
        let (from, mut state) = match self.checkpoint()? {
            Some((mark, state, consistent))
                if mark.number <= head_number
                    && self.canonical_hash(mark.number)? == Some(mark.hash) =>
            {
                match consistent {
                    Some(true) => (mark.number, state),
                    Some(false) => {
                        tracing::error!(
                            height = mark.number,
                            hash = %mark.hash,
                            "the account checkpoint does not add up to what was written: replaying from genesis and rewriting it"
                        );
                        since.rewrite = true;
                        (0, crate::state::State::from_genesis(&genesis))
                    }
                    // Written by a version that could lose entries: replay once, rewrite it.
                    None => {
                        tracing::info!(
                            height = mark.number,
                            "account checkpoint without a sum: replaying from genesis once and rewriting it"
                        );
                        since.rewrite = true;
                        (0, crate::state::State::from_genesis(&genesis))
                    }
                }
            }
            _ => {
                since.rewrite = true;
                (0, crate::state::State::from_genesis(&genesis))
            }
        };
        self.replay(&mut state, from, head_number, &mut since)?;
        Ok(LoadedState {
            state,
            head,
            since_checkpoint: since,
        })
    }

    /// The state at the canonical head replayed from genesis, ignoring the checkpoint: what a
    /// restart must reproduce exactly.
    pub fn replay_from_genesis(&self) -> Result<State> {
        let genesis = self.genesis()?.ok_or(StoreError::NotInitialized)?;
        let head = self.head_block()?;
        let mut state = crate::state::State::from_genesis(&genesis);
        self.replay(
            &mut state,
            0,
            head.block.header.number,
            &mut SinceCheckpoint::default(),
        )?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::block::{receipts_root, tx_root, Header};
    use primitives::crypto::SecretKey;
    use primitives::genesis::{FeeParams, GenesisAccount};
    use primitives::types::Amount;

    fn genesis(key: &SecretKey) -> Genesis {
        Genesis {
            chain_id: 9,
            block_time_ms: 1000,
            timestamp_ms: 0,
            authorities: vec![key.address()],
            max_block_weight: 1_000_000,
            max_tx_size: 4096,
            fee: FeeParams::FeeRate {
                min_fee_rate: Amount(1),
            },
            accounts: vec![GenesisAccount {
                address: Address([1; 20]),
                balance: Amount(1000),
            }],
            peg: None,
        }
    }

    fn child(parent: &Block, key: &SecretKey) -> Block {
        Block::seal(
            Header {
                parent_hash: parent.hash(),
                number: parent.header.number + 1,
                slot: parent.header.slot + 1,
                timestamp_ms: 0,
                author: key.address(),
                tx_root: tx_root([]),
                receipts_root: receipts_root(&[]),
                state_root: Hash::ZERO,
                base_fee: Amount::ZERO,
                weight_used: 0,
            },
            vec![],
            key,
        )
    }

    #[test]
    fn commits_survive_reopen_with_and_without_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::random();
        let g = genesis(&key);
        let mut parent = g.block();
        {
            let store = Store::open(dir.path()).unwrap();
            let gh = store.init_genesis(&g).unwrap();
            assert!(
                matches!(store.init_genesis(&g), Err(StoreError::AlreadyInitialized(h)) if h == gh)
            );
            for i in 1..=5u128 {
                let b = child(&parent, &key);
                let diff = StateDiff {
                    accounts: vec![(
                        Address([2; 20]),
                        Account {
                            balance: Amount(i),
                            nonce: 0,
                        },
                    )],
                    totals: Totals {
                        burned_fees: Amount(i),
                        ..Default::default()
                    },
                    processed: vec![],
                };
                store
                    .commit_block(&CommittedBlock {
                        stored: StoredBlock {
                            block: b.clone(),
                            senders: vec![],
                        },
                        tx_hashes: vec![],
                        receipts: vec![],
                        diff: diff.clone(),
                        undo: Undo::default(),
                    })
                    .unwrap();
                if i == 2 {
                    let mut st = crate::state::State::from_genesis(&g);
                    st.apply_diff(&diff);
                    store
                        .write_checkpoint(
                            CheckpointMark {
                                number: 2,
                                hash: b.hash(),
                                totals: diff.totals,
                            },
                            &CheckpointPatch {
                                accounts: vec![(Address([2; 20]), st.get(&Address([2; 20])))],
                                sum: Some(st.entry_sum()),
                                ..Default::default()
                            },
                        )
                        .unwrap();
                }
                parent = b;
            }
        }
        let store = Store::open(dir.path()).unwrap();
        let LoadedState {
            state,
            head,
            since_checkpoint,
        } = store.load_state().unwrap();
        assert!(!since_checkpoint.rewrite);
        assert_eq!(
            since_checkpoint.accounts,
            HashSet::from([Address([2; 20])]),
            "what the replayed blocks 3..=5 changed"
        );
        assert_eq!(state, store.replay_from_genesis().unwrap());
        assert_eq!(head.block, parent);
        assert_eq!(state.account(&Address([2; 20])).balance, Amount(5));
        assert_eq!(state.account(&Address([1; 20])).balance, Amount(1000));
        assert_eq!(state.totals.burned_fees, Amount(5));
        assert_eq!(store.canonical_hash(5).unwrap(), Some(parent.hash()));
        assert_eq!(store.canonical_hash(6).unwrap(), None);
    }
}
