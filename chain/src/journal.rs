//! The journal of transactions this node accepted from its own RPC clients
//! (`<data_dir>/txjournal.redb`).
//!
//! The mempool lives in memory, so without the journal a transaction the node had answered
//! "accepted" for vanished with a crash before the next block, and nobody sent it again (geth
//! keeps its local transactions in `transactions.rlp` for the same reason). The RPC answers
//! only once the journal holds the transaction durably; a restart re-admits what it holds and
//! announces it to the first peer that listens. Entries leave when their transaction is
//! included in a committed block, or when the mempool no longer holds it (invalid, dropped,
//! replaced, expired): a sweep compares the two every [`SWEEP_INTERVAL`]. So the journal
//! never holds more than the pool, and is bounded on its own by `journal_max_txs`.
//!
//! One writer thread owns the write side. Everything queued while it commits goes into its
//! next write transaction, so concurrent RPC calls share one durable commit (group commit) and
//! a call of any size costs one, never one per transaction; nothing here runs under the
//! mempool lock.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use parity_scale_codec::Encode;
use prometheus_client::metrics::gauge::Gauge;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use primitives::tx::RecoveredTx;
use primitives::types::{Address, Hash, Nonce};

/// The journal's file name in the data directory.
pub const FILE: &str = "txjournal.redb";

/// How often entries whose transaction left the mempool are swept out.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A journal key: sender (20 bytes) ‖ nonce (8, big-endian) ‖ transaction hash (32).
pub type Key = [u8; 60];

/// Key -> the SCALE-encoded signed transaction. Keys sort by sender, then nonce, so a restart
/// re-admits each sender's transactions in nonce order (out of order they would park, and
/// past `mempool_max_parked_per_sender` be refused).
const TXS: TableDefinition<Key, &[u8]> = TableDefinition::new("txs");

/// Most queued operations one write transaction takes.
const MAX_GROUP: usize = 256;

/// Pool membership is checked this many hashes per call (one mempool lock each).
const SWEEP_CHUNK: usize = 4096;

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// redb failed.
    #[error("transaction journal: {0}")]
    Db(#[from] redb::Error),
    /// The data directory could not be created.
    #[error("transaction journal: {0}")]
    Io(#[from] std::io::Error),
    /// The writer thread is gone (the node is stopping) or could not start.
    #[error("transaction journal writer stopped")]
    Stopped,
    /// A write failed; the message is the writer's error.
    #[error("transaction journal write failed: {0}")]
    Write(String),
}
service::impl_from_redb_errors!(JournalError);

/// The journal key of `sender`'s transaction `hash` at `nonce`.
pub fn key(sender: &Address, nonce: Nonce, hash: &Hash) -> Key {
    let mut k = [0u8; 60];
    k[..20].copy_from_slice(&sender.0);
    k[20..28].copy_from_slice(&nonce.to_be_bytes());
    k[28..].copy_from_slice(&hash.0);
    k
}

/// The transaction hash inside a key.
fn key_hash(k: &Key) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(&k[28..]);
    Hash(h)
}

/// One transaction to journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Where it sorts.
    pub key: Key,
    /// The SCALE-encoded signed transaction, exactly as it will be re-admitted.
    pub raw: Vec<u8>,
}

impl JournalEntry {
    /// The entry of a recovered transaction.
    pub fn of(tx: &RecoveredTx) -> Self {
        JournalEntry {
            key: key(&tx.sender(), tx.tx().nonce, &tx.hash()),
            raw: tx.signed().encode(),
        }
    }
}

/// Which of these hashes the mempool still holds, one answer per hash, in order.
pub type PoolCheck = Box<dyn Fn(&[Hash]) -> Vec<bool> + Send>;

enum Op {
    Append(Vec<JournalEntry>, oneshot::Sender<Result<(), String>>),
    Remove(Vec<Key>),
    Sweep(PoolCheck),
}

/// The journal: a handle to its writer thread plus the counts the RPC path reads.
pub struct Journal {
    ops: Mutex<Option<mpsc::Sender<Op>>>,
    db: Arc<Database>,
    /// Entries the table holds, as of the writer's last commit.
    stored: Arc<AtomicUsize>,
    /// Slots granted to RPC calls whose append has not returned yet.
    reserved: AtomicUsize,
    max: usize,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("stored", &self.len())
            .field("max", &self.max)
            .finish()
    }
}

impl Journal {
    /// Opens (creating if needed) `<dir>/txjournal.redb`, holding at most `max` transactions,
    /// and starts its writer; `gauge` follows the number held.
    pub fn open(dir: &Path, max: usize, gauge: Gauge) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join(FILE))?;
        let wtx = db.begin_write()?;
        // Created up front so readers never meet a missing table.
        let len = wtx.open_table(TXS)?.len()?;
        wtx.commit()?;
        let db = Arc::new(db);
        let stored = Arc::new(AtomicUsize::new(len as usize));
        gauge.set(len as i64);
        let (tx, rx) = mpsc::channel();
        let writer = {
            let (db, stored) = (db.clone(), stored.clone());
            std::thread::Builder::new()
                .name("txjournal".into())
                .spawn(move || run(&db, &rx, &stored, &gauge))?
        };
        Ok(Journal {
            ops: Mutex::new(Some(tx)),
            db,
            stored,
            reserved: AtomicUsize::new(0),
            max,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Every journaled transaction, in key order (sender, then nonce).
    pub fn load(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(TXS)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(JournalEntry {
                key: k.value(),
                raw: v.value().to_vec(),
            });
        }
        Ok(out)
    }

    /// Transactions held, as of the last commit.
    pub fn len(&self) -> usize {
        self.stored.load(Ordering::Acquire)
    }

    /// Whether it holds nothing and no call is about to add anything.
    pub fn is_idle(&self) -> bool {
        self.is_empty() && self.reserved.load(Ordering::Acquire) == 0
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most transactions it holds (`journal_max_txs`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Grants up to `n` slots for transactions about to be admitted and appended; the caller
    /// gives them back with [`Journal::release`] once its append returned. Reserving before
    /// admission keeps the bound hard without refusing anything the pool already took.
    pub fn reserve(&self, n: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                let used = self.len().saturating_add(r);
                granted = n.min(self.max.saturating_sub(used));
                Some(r + granted)
            });
        granted
    }

    /// Gives back slots from [`Journal::reserve`].
    pub fn release(&self, n: usize) {
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(n))
            });
    }

    fn send(&self, op: Op) -> Result<(), JournalError> {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.as_ref()
            .ok_or(JournalError::Stopped)?
            .send(op)
            .map_err(|_| JournalError::Stopped)
    }

    /// Writes `entries` and returns once they are durable (committed with
    /// `Durability::Immediate`, redb's default). An entry already held is written again,
    /// unchanged.
    pub async fn append(&self, entries: Vec<JournalEntry>) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.send(Op::Append(entries, tx))?;
        rx.await
            .map_err(|_| JournalError::Stopped)?
            .map_err(JournalError::Write)
    }

    /// Drops these entries (included in a block, or refused at re-admission); returns at
    /// once. Losing a removal to a crash is harmless: the restart's re-admission refuses the
    /// transaction and removes it then.
    pub fn remove(&self, keys: Vec<Key>) {
        if !keys.is_empty() && self.send(Op::Remove(keys)).is_err() {
            tracing::debug!("journal writer stopped; removal skipped");
        }
    }

    /// Queues a sweep: every entry whose hash `in_pool` says the mempool no longer holds is
    /// dropped. It runs on the writer, after every append queued before it, so an append of a
    /// transaction re-admitted meanwhile is never swept away.
    pub fn sweep(&self, in_pool: PoolCheck) {
        if self.send(Op::Sweep(in_pool)).is_err() {
            tracing::debug!("journal writer stopped; sweep skipped");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Closing the channel ends the writer after what is queued.
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // A sweep's closure may hold the last reference to what owns the journal, so the
            // drop can run on the writer itself: it then ends on its own once the channel is
            // closed, and joining it from itself would never return.
            if w.thread().id() != std::thread::current().id() {
                let _ = w.join();
            }
        }
    }
}

/// The writer: takes everything queued, applies it in order in one write transaction, commits
/// once, then answers every append of the group.
fn run(db: &Database, rx: &mpsc::Receiver<Op>, stored: &AtomicUsize, gauge: &Gauge) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let mut replies = Vec::new();
        let result = apply(db, group, &mut replies);
        match &result {
            Ok(len) => {
                stored.store(*len, Ordering::Release);
                gauge.set(*len as i64);
            }
            Err(e) => tracing::error!(error = %e, "transaction journal write failed"),
        }
        let answer = result.map(|_| ()).map_err(|e| e.to_string());
        for r in replies {
            let _ = r.send(answer.clone());
        }
    }
}

/// Applies one group; returns the table's length after it.
fn apply(
    db: &Database,
    group: Vec<Op>,
    replies: &mut Vec<oneshot::Sender<Result<(), String>>>,
) -> Result<usize, JournalError> {
    let wtx = db.begin_write()?;
    let mut changed = false;
    let len = {
        let mut t = wtx.open_table(TXS)?;
        for op in group {
            match op {
                Op::Append(entries, reply) => {
                    replies.push(reply);
                    for e in &entries {
                        t.insert(e.key, e.raw.as_slice())?;
                    }
                    changed = true;
                }
                Op::Remove(keys) => {
                    for k in &keys {
                        changed |= t.remove(k)?.is_some();
                    }
                }
                Op::Sweep(in_pool) => {
                    let mut keys = Vec::with_capacity(t.len()? as usize);
                    for row in t.iter()? {
                        keys.push(row?.0.value());
                    }
                    let mut gone = Vec::new();
                    for chunk in keys.chunks(SWEEP_CHUNK) {
                        let hashes: Vec<Hash> = chunk.iter().map(key_hash).collect();
                        let held = in_pool(&hashes);
                        // A hash the check did not answer for is kept: only a clear "not
                        // pooled" removes an entry.
                        gone.extend(
                            chunk
                                .iter()
                                .zip(held.iter().chain(std::iter::repeat(&true)))
                                .filter(|(_, held)| !**held)
                                .map(|(k, _)| *k),
                        );
                    }
                    if !gone.is_empty() {
                        tracing::debug!(
                            swept = gone.len(),
                            "journaled transactions no longer pooled"
                        );
                    }
                    for k in &gone {
                        t.remove(k)?;
                    }
                    changed |= !gone.is_empty();
                }
            }
        }
        t.len()? as usize
    };
    if changed {
        wtx.commit()?;
    } else {
        // Nothing to make durable: spare the disk a sync.
        wtx.abort()?;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::SecretKey;
    use primitives::tx::{Fee, Transaction, TxKind};
    use primitives::types::Amount;

    fn tx(key: &SecretKey, nonce: Nonce) -> RecoveredTx {
        Transaction {
            chain_id: 7,
            nonce,
            fee: Fee::Flat { fee: Amount(1) },
            kind: TxKind::Transfer {
                to: Address::default(),
                amount: Amount(nonce as u128),
            },
        }
        .sign(key)
        .recover()
        .expect("recovers")
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn appends_survive_reopen_in_nonce_order_and_leave_when_removed_or_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (SecretKey::random(), SecretKey::random());
        let txs: Vec<RecoveredTx> = [(&a, 2), (&b, 0), (&a, 0), (&a, 1)]
            .into_iter()
            .map(|(k, n)| tx(k, n))
            .collect();
        {
            let j = Journal::open(dir.path(), 100, Gauge::default()).unwrap();
            rt().block_on(j.append(txs.iter().map(JournalEntry::of).collect()))
                .unwrap();
            // The same entry again is no new entry.
            rt().block_on(j.append(vec![JournalEntry::of(&txs[0])]))
                .unwrap();
            assert_eq!(j.len(), 4);
        }
        let j = Journal::open(dir.path(), 100, Gauge::default()).unwrap();
        let loaded = j.load().unwrap();
        assert_eq!(loaded.len(), 4);
        // Per sender, in nonce order.
        for s in [a.address(), b.address()] {
            let nonces: Vec<Nonce> = loaded
                .iter()
                .filter(|e| e.key[..20] == s.0)
                .map(|e| u64::from_be_bytes(e.key[20..28].try_into().unwrap()))
                .collect();
            let mut sorted = nonces.clone();
            sorted.sort_unstable();
            assert_eq!(nonces, sorted);
        }
        for e in &loaded {
            let back =
                primitives::tx::SignedTransaction::decode_and_recover(&e.raw, 1 << 16).unwrap();
            assert_eq!(JournalEntry::of(&back), *e);
        }

        // Included: removed.
        j.remove(vec![JournalEntry::of(&txs[2]).key]);
        // Swept: only what the pool still holds stays.
        let keep = txs[3].hash();
        j.sweep(Box::new(move |hs: &[Hash]| {
            hs.iter().map(|h| *h == keep).collect()
        }));
        // An append after the sweep is not swept away.
        rt().block_on(j.append(vec![JournalEntry::of(&txs[1])]))
            .unwrap();
        let left: Vec<Hash> = j.load().unwrap().iter().map(|e| key_hash(&e.key)).collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&keep) && left.contains(&txs[1].hash()));
        assert_eq!(j.len(), 2);
    }

    #[test]
    fn reservations_bound_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), 5, Gauge::default()).unwrap();
        let k = SecretKey::random();
        assert_eq!(j.reserve(3), 3);
        assert_eq!(j.reserve(3), 2, "only the room left");
        assert_eq!(j.reserve(1), 0);
        rt().block_on(j.append((0..3).map(|n| JournalEntry::of(&tx(&k, n))).collect()))
            .unwrap();
        j.release(3);
        j.release(2);
        assert_eq!(j.len(), 3);
        assert!(!j.is_idle());
        assert_eq!(j.reserve(10), 2, "what is stored counts");
        j.release(2);
    }
}
