//! The wallet's own record of what it sent (`<wallet home>/sent.redb`): each signed
//! transaction, byte for byte, written durably before it goes to a node.
//!
//! A node may lose a transaction it accepted (it died before journaling it, or its data
//! went), and then no node knows it. With the signed bytes kept here, `wallet status` can say
//! so and `wallet resend` (or a wait that notices) can send the very same transaction again:
//! same bytes, same hash, so it can never be paid twice. The database is opened only for the
//! moment of a read or write, so several wallet processes can share it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use primitives::tx::{SignedTransaction, TxKind};
use primitives::types::{Address, Bytes, Hash, Nonce};
use redb::{Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::chains::ChainSel;
use crate::error::{Result, WalletError};

/// The record's file name in the wallet home.
pub const FILE: &str = "sent.redb";

/// Transaction hash -> [`SentTx`] as JSON (readable with any redb tool).
const SENT: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("sent");

/// How long to wait for another wallet process to let go of the file.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// One transaction the wallet signed and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentTx {
    /// The chain it was sent to.
    pub chain: ChainSel,
    /// Its hash.
    pub hash: Hash,
    /// The signed transaction's SCALE encoding, exactly as sent.
    pub raw: Bytes,
    /// The sender.
    pub from: Address,
    /// Its nonce.
    pub nonce: Nonce,
    /// `transfer`, `lock`, `burn`, ...
    pub kind: String,
    /// When it was first sent, unix milliseconds.
    pub sent_ms: u64,
}

impl SentTx {
    /// The record of `signed`, about to be sent to `chain`.
    pub fn new(chain: ChainSel, signed: &SignedTransaction, from: Address) -> Self {
        let sent_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        SentTx {
            chain,
            hash: signed.hash(),
            raw: Bytes(signed.encode()),
            from,
            nonce: signed.tx.nonce,
            kind: signed.tx.kind.name().to_string(),
            sent_ms,
        }
    }

    /// The operation, decoded from the stored bytes (`None` if they do not decode).
    pub fn tx_kind(&self) -> Option<TxKind> {
        use parity_scale_codec::DecodeAll;
        SignedTransaction::decode_all(&mut &self.raw.0[..])
            .ok()
            .map(|s| s.tx.kind)
    }
}

/// The record file.
#[derive(Debug, Clone)]
pub struct SentRecord {
    /// `<wallet home>/sent.redb`.
    pub path: PathBuf,
}

impl SentRecord {
    /// The record at `path`.
    pub fn new(path: PathBuf) -> Self {
        SentRecord { path }
    }

    fn error(&self, e: impl std::fmt::Display) -> WalletError {
        WalletError::Record {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Opens `open(path)`, waiting while another wallet process holds the file.
    fn with_lock<D>(
        &self,
        open: impl Fn(&Path) -> std::result::Result<D, DatabaseError>,
    ) -> Result<D> {
        let start = Instant::now();
        loop {
            match open(&self.path) {
                Ok(db) => return Ok(db),
                Err(DatabaseError::DatabaseAlreadyOpen) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(self.error(e)),
            }
        }
    }

    fn writable(&self) -> Result<Database> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| WalletError::io("creating the wallet home", dir, e))?;
        }
        self.with_lock(|p| Database::create(p))
    }

    /// Records `tx` durably (redb's default `Durability::Immediate`): call before sending.
    pub fn put(&self, tx: &SentTx) -> Result<()> {
        let body = serde_json::to_vec(tx).map_err(|e| self.error(e))?;
        let db = self.writable()?;
        let write = || -> std::result::Result<(), redb::Error> {
            let wtx = db.begin_write()?;
            wtx.open_table(SENT)?.insert(tx.hash.0, body.as_slice())?;
            wtx.commit()?;
            Ok(())
        };
        write().map_err(|e| self.error(e))
    }

    /// Forgets `hash` (the node refused it: there is nothing to resend).
    pub fn remove(&self, hash: &Hash) -> Result<()> {
        let db = self.writable()?;
        let write = || -> std::result::Result<(), redb::Error> {
            let wtx = db.begin_write()?;
            wtx.open_table(SENT)?.remove(hash.0)?;
            wtx.commit()?;
            Ok(())
        };
        write().map_err(|e| self.error(e))
    }

    /// What the wallet sent as `hash`, if it did. No record file means nothing was sent.
    pub fn get(&self, hash: &Hash) -> Result<Option<SentTx>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let db = self.with_lock(|p| ReadOnlyDatabase::open(p))?;
        let read = || -> std::result::Result<Option<Vec<u8>>, redb::Error> {
            let rtx = db.begin_read()?;
            let t = match rtx.open_table(SENT) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(t.get(hash.0)?.map(|v| v.value().to_vec()))
        };
        match read().map_err(|e| self.error(e))? {
            Some(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| self.error(format!("entry {hash}: {e}"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::SecretKey;
    use primitives::tx::{Fee, Transaction};
    use primitives::types::Amount;

    #[test]
    fn what_was_put_is_read_back_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let rec = SentRecord::new(dir.path().join("home").join(FILE));
        let key = SecretKey::random();
        let signed = Transaction {
            chain_id: 1001,
            nonce: 3,
            fee: Fee::Flat { fee: Amount(9) },
            kind: TxKind::Lock {
                amount: Amount(5),
                recipient: key.address(),
            },
        }
        .sign(&key);
        let sent = SentTx::new(ChainSel::Main, &signed, key.address());
        assert_eq!(rec.get(&sent.hash).unwrap(), None, "no file yet");
        rec.put(&sent).unwrap();
        let back = rec.get(&sent.hash).unwrap().expect("recorded");
        assert_eq!(back, sent);
        assert_eq!(back.kind, "lock");
        assert_eq!(back.tx_kind(), Some(signed.tx.kind.clone()));
        assert_eq!(back.raw.0, signed.encode(), "the very bytes");
        assert_eq!(rec.get(&Hash([1; 32])).unwrap(), None);
        rec.remove(&sent.hash).unwrap();
        assert_eq!(rec.get(&sent.hash).unwrap(), None);
    }
}
