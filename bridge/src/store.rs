//! The member's own redb (`bridge.redb`): everything that decides a payout is committed with
//! `Durability::Immediate` before the member acts on it.
//!
//! Tables: per-direction scan cursor (height + hash) and recently scanned hashes (reorg
//! detection); peg events (id -> record) with an index of the unpaid ones; own signatures
//! (id -> message hash + signature, never two messages for one id); received attestations
//! keyed by (message hash, member), at most one message per (member, id); submissions (id ->
//! tx hash, time, outcome, nonce).

use std::collections::HashMap;
use std::path::Path;

use parity_scale_codec::{Decode, DecodeAll, Encode};
use primitives::crypto::Signature;
use primitives::peg::Direction;
use primitives::types::{Address, Amount, BlockNumber, Hash};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const CURSORS: TableDefinition<u8, &[u8]> = TableDefinition::new("cursors");
const SCANNED: TableDefinition<(u8, u64), [u8; 32]> = TableDefinition::new("scanned");
const EVENTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("events");
const OPEN: TableDefinition<[u8; 32], u8> = TableDefinition::new("open_events");
const OWN_SIGS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("own_signatures");
const ATTESTATIONS: TableDefinition<([u8; 32], [u8; 20]), &[u8]> =
    TableDefinition::new("attestations");
const SUBMISSIONS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("submissions");
/// (id, member) -> the message hash of the first attestation stored for them: one message per
/// member and id, so no member can make others store attestations without bound.
const ATTESTED: TableDefinition<([u8; 32], [u8; 20]), [u8; 32]> = TableDefinition::new("attested");

/// Errors from the member's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// Stored bytes do not decode.
    #[error("corrupt record in {table}: {detail}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// The decode error.
        detail: String,
    },
    /// A different message for an id this member already signed.
    #[error("peg id {id} already signed with message {signed}, refusing message {asked}")]
    AlreadySignedOther {
        /// Transfer id.
        id: Hash,
        /// Message hash signed before.
        signed: Hash,
        /// Message hash refused now.
        asked: Hash,
    },
    /// The data directory could not be created.
    #[error("creating {path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        error: std::io::Error,
    },
}

service::impl_from_redb_errors!(StoreError);

/// Result alias for the store.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// A scanned block: where a watcher stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Cursor {
    /// Height of the last scanned block.
    pub height: BlockNumber,
    /// Its hash, to notice when it is reorged away.
    pub hash: Hash,
}

/// Where a peg transfer stands for this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Seen on the source, not yet at depth: never signed in this state.
    Seen,
    /// At depth on our own node and signed by us.
    Signed,
    /// Paid on the destination (by anyone), at the destination's confirmation depth.
    Paid,
}

/// A peg event found on the source chain, and this member's progress on it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct EventRecord {
    /// Deposit or withdrawal.
    pub direction: Direction,
    /// The source transaction hash (the transfer id).
    pub id: Hash,
    /// Who is paid on the destination.
    pub recipient: Address,
    /// Base units locked or burned on the source.
    pub source_amount: Amount,
    /// Base units the payout pays (a withdrawal keeps the peg-out fee).
    pub payout_amount: Amount,
    /// Source block height.
    pub source_height: BlockNumber,
    /// Source block hash.
    pub source_block: Hash,
    /// Progress.
    pub state: EventState,
    /// When first seen (unix ms).
    pub seen_ms: u64,
    /// When signed at depth.
    pub signed_ms: Option<u64>,
    /// When M matching signatures were first held.
    pub ready_ms: Option<u64>,
    /// When seen paid on the destination.
    pub paid_ms: Option<u64>,
    /// The payout transaction, once known.
    pub payout_tx: Option<Hash>,
}

/// This member's signature over one transfer's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct OwnSignature {
    /// `PegMessage::signing_hash()` signed.
    pub message_hash: Hash,
    /// The signature.
    pub signature: Signature,
}

/// A verified attestation as the intake files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAttestation {
    /// The transfer id its message names.
    pub id: Hash,
    /// `PegMessage::signing_hash()` it signs.
    pub message_hash: Hash,
    /// The member whose signature it is (verified).
    pub member: Address,
    /// The signature.
    pub signature: Signature,
}

/// What [`Store::put_attestations`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filed {
    /// Attestations stored now.
    pub new: usize,
    /// Positions (in the items given) of attestations of transfers not recorded here yet.
    pub unknown: Vec<usize>,
    /// Positions of attestations refused because their member attested another message for
    /// the same id before (an equivocation: the first one is kept).
    pub conflicting: Vec<usize>,
}

/// What [`Store::sign_many`] did for one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutcome {
    /// Signed now, or the same message signed before: the signature.
    Signed(Signature),
    /// This member signed another message for the id before: refused.
    Refused {
        /// The message hash signed before.
        signed: Hash,
    },
}

/// A payout this member submitted.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Serialize, Deserialize)]
pub struct Submission {
    /// The Mint or Release transaction hash, when the node accepted it.
    pub tx_hash: Option<Hash>,
    /// When (unix ms) of the last attempt.
    pub at_ms: u64,
    /// How many attempts.
    pub attempts: u32,
    /// `accepted`, `id_used`, `id_pending` or `refused: <reason>`.
    pub outcome: String,
    /// The nonce of the transaction `tx_hash` names (kept last in the encoding: records
    /// written before it was kept decode with none).
    #[serde(default)]
    pub nonce: Option<u64>,
}

impl Decode for Submission {
    fn decode<I: parity_scale_codec::Input>(
        input: &mut I,
    ) -> Result<Self, parity_scale_codec::Error> {
        let tx_hash = Decode::decode(input)?;
        let at_ms = Decode::decode(input)?;
        let attempts = Decode::decode(input)?;
        let outcome = Decode::decode(input)?;
        // An older member's record ends here.
        let nonce = match input.remaining_len()? {
            Some(0) => None,
            _ => Decode::decode(input)?,
        };
        Ok(Self {
            tx_hash,
            at_ms,
            attempts,
            outcome,
            nonce,
        })
    }
}

fn dir_code(d: Direction) -> u8 {
    match d {
        Direction::MainToSide => 0,
        Direction::SideToMain => 1,
    }
}

fn decode<T: Decode>(table: &'static str, bytes: &[u8]) -> StoreResult<T> {
    T::decode_all(&mut &bytes[..]).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// The record under `key` in `table` (named `name` in errors), decoded.
fn get_decoded<'k, K: redb::Key + 'static, T: Decode>(
    table: &impl ReadableTable<K, &'static [u8]>,
    name: &'static str,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
) -> StoreResult<Option<T>> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(name, v.value())?)),
        None => Ok(None),
    }
}

/// Runs a durable store write (it waits on an fsync) so that the runtime's other tasks (the
/// network loop, the other worker) move to another thread meanwhile; called directly outside
/// a multi-threaded runtime (unit tests).
pub fn durably<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The member's database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) `<dir>/bridge.redb`.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Io {
            path: dir.display().to_string(),
            error,
        })?;
        let db = Database::create(dir.join("bridge.redb"))?;
        let mut wtx = db.begin_write()?;
        wtx.set_durability(Durability::Immediate)?;
        wtx.open_table(CURSORS)?;
        wtx.open_table(SCANNED)?;
        wtx.open_table(EVENTS)?;
        wtx.open_table(OPEN)?;
        wtx.open_table(OWN_SIGS)?;
        wtx.open_table(ATTESTATIONS)?;
        wtx.open_table(SUBMISSIONS)?;
        wtx.open_table(ATTESTED)?;
        wtx.commit()?;
        Ok(Self { db })
    }

    fn write(&self) -> StoreResult<redb::WriteTransaction> {
        let mut wtx = self.db.begin_write()?;
        wtx.set_durability(Durability::Immediate)?;
        Ok(wtx)
    }

    /// The record at `key` of `table` (called `name` in errors), in a read of its own.
    fn read_one<'k, K: redb::Key + 'static, T: Decode>(
        &self,
        table: TableDefinition<'static, K, &'static [u8]>,
        name: &'static str,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> StoreResult<Option<T>> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(table)?;
        get_decoded(&t, name, key)
    }

    /// The watcher's cursor for `direction` (source chain), if it scanned anything yet.
    pub fn cursor(&self, direction: Direction) -> StoreResult<Option<Cursor>> {
        self.read_one(CURSORS, "cursors", dir_code(direction))
    }

    /// The hash this member scanned at `height`, if still retained.
    pub fn scanned_hash(
        &self,
        direction: Direction,
        height: BlockNumber,
    ) -> StoreResult<Option<Hash>> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(SCANNED)?;
        Ok(t.get((dir_code(direction), height))?
            .map(|v| Hash(v.value())))
    }

    /// The oldest scanned height still retained.
    pub fn oldest_scanned(&self, direction: Direction) -> StoreResult<Option<BlockNumber>> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(SCANNED)?;
        let d = dir_code(direction);
        let first = t.range((d, 0)..=(d, u64::MAX))?.next();
        Ok(match first {
            Some(r) => Some(r?.0.value().1),
            None => None,
        })
    }

    /// Records one scanned block and the peg events in it, and moves the cursor to it, in one
    /// durable transaction. Events already known (a transaction reorged into another block)
    /// get their new location; their progress is kept. Keeps `history` scanned hashes.
    pub fn commit_scan(
        &self,
        direction: Direction,
        block: Cursor,
        events: &[EventRecord],
        history: u64,
    ) -> StoreResult<()> {
        self.commit_scans(direction, &[(block, events.to_vec())], history)
    }

    /// [`Store::commit_scan`] for consecutive blocks in one durable transaction (a member
    /// catching up scans many blocks a step); the cursor moves to the last one.
    pub fn commit_scans(
        &self,
        direction: Direction,
        blocks: &[(Cursor, Vec<EventRecord>)],
        history: u64,
    ) -> StoreResult<()> {
        let Some((last, _)) = blocks.last() else {
            return Ok(());
        };
        let d = dir_code(direction);
        let wtx = self.write()?;
        {
            let mut ev = wtx.open_table(EVENTS)?;
            let mut open = wtx.open_table(OPEN)?;
            let mut scanned = wtx.open_table(SCANNED)?;
            for (block, events) in blocks {
                for e in events {
                    let existing: Option<EventRecord> = get_decoded(&ev, "events", e.id.0)?;
                    let rec = match existing {
                        Some(mut old) => {
                            old.source_height = e.source_height;
                            old.source_block = e.source_block;
                            old
                        }
                        None => e.clone(),
                    };
                    ev.insert(e.id.0, rec.encode().as_slice())?;
                    if rec.state != EventState::Paid {
                        open.insert(e.id.0, d)?;
                    }
                }
                scanned.insert((d, block.height), block.hash.0)?;
            }
            if last.height > history {
                let cutoff = last.height - history;
                let old: Vec<u64> = scanned
                    .range((d, 0)..(d, cutoff))?
                    .map(|r| r.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                for h in old {
                    scanned.remove((d, h))?;
                }
            }
            wtx.open_table(CURSORS)?
                .insert(d, last.encode().as_slice())?;
        }
        wtx.commit()?;
        Ok(())
    }

    /// Rewinds a watcher to the fork point after a reorg: forgets scanned blocks above it and
    /// every not-yet-signed event from them (a deposit reorged out before depth is never
    /// signed). Returns the ids of events above the fork that were already signed (a reorg
    /// deeper than the confirmation depth: they are kept and reported).
    pub fn rewind(&self, direction: Direction, fork: Cursor) -> StoreResult<Vec<Hash>> {
        let d = dir_code(direction);
        let wtx = self.write()?;
        let mut signed_above = Vec::new();
        {
            let mut scanned = wtx.open_table(SCANNED)?;
            let above: Vec<u64> = scanned
                .range((d, fork.height + 1)..=(d, u64::MAX))?
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for h in above {
                scanned.remove((d, h))?;
            }
            let mut ev = wtx.open_table(EVENTS)?;
            let mut open = wtx.open_table(OPEN)?;
            let ids: Vec<[u8; 32]> = open
                .iter()?
                .map(|r| r.map(|(k, v)| (k.value(), v.value())))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|(_, dir)| *dir == d)
                .map(|(k, _)| k)
                .collect();
            for id in ids {
                let Some(rec) = get_decoded::<_, EventRecord>(&ev, "events", id)? else {
                    continue;
                };
                if rec.source_height <= fork.height {
                    continue;
                }
                if rec.state == EventState::Seen {
                    ev.remove(id)?;
                    open.remove(id)?;
                } else {
                    signed_above.push(rec.id);
                }
            }
            wtx.open_table(CURSORS)?
                .insert(d, fork.encode().as_slice())?;
        }
        wtx.commit()?;
        Ok(signed_above)
    }

    /// One event by id.
    pub fn event(&self, id: &Hash) -> StoreResult<Option<EventRecord>> {
        self.read_one(EVENTS, "events", id.0)
    }

    /// Every unpaid event of `direction` (all directions with `None`), oldest first.
    pub fn open_events(&self, direction: Option<Direction>) -> StoreResult<Vec<EventRecord>> {
        let rtx = self.db.begin_read()?;
        let open = rtx.open_table(OPEN)?;
        let ev = rtx.open_table(EVENTS)?;
        let mut out = Vec::new();
        for r in open.iter()? {
            let (k, v) = r?;
            if direction.is_some_and(|d| dir_code(d) != v.value()) {
                continue;
            }
            if let Some(rec) = ev.get(k.value())? {
                out.push(decode::<EventRecord>("events", rec.value())?);
            }
        }
        out.sort_by_key(|e| (e.source_height, e.seen_ms));
        Ok(out)
    }

    /// Every event ever recorded (for tests and status).
    pub fn all_events(&self) -> StoreResult<Vec<EventRecord>> {
        let rtx = self.db.begin_read()?;
        let ev = rtx.open_table(EVENTS)?;
        let mut out = Vec::new();
        for r in ev.iter()? {
            out.push(decode::<EventRecord>("events", r?.1.value())?);
        }
        Ok(out)
    }

    /// Signs `message_hash` for `id` unless this member already signed something for it:
    /// the same message returns the stored signature (idempotent after a restart); a
    /// different one is refused. The signature is durable, and the event marked signed,
    /// before it is returned (and so before it is gossiped).
    pub fn sign_once(
        &self,
        member: &Address,
        id: &Hash,
        message_hash: Hash,
        now_ms: u64,
        sign: impl Fn(&Hash) -> Signature,
    ) -> StoreResult<Signature> {
        match self
            .sign_many(member, &[(*id, message_hash)], now_ms, sign)?
            .pop()
        {
            Some(SignOutcome::Signed(sig)) => Ok(sig),
            Some(SignOutcome::Refused { signed }) => Err(StoreError::AlreadySignedOther {
                id: *id,
                signed,
                asked: message_hash,
            }),
            None => Err(StoreError::Corrupt {
                table: "own_signatures",
                detail: "no outcome for the signed id".into(),
            }),
        }
    }

    /// [`Store::sign_once`] for many `(id, message hash)` pairs in one durable transaction
    /// (a burst of transfers reaching depth together costs one fsync). Each signature is also
    /// filed as `member`'s attestation. One outcome per pair, in order.
    pub fn sign_many(
        &self,
        member: &Address,
        items: &[(Hash, Hash)],
        now_ms: u64,
        sign: impl Fn(&Hash) -> Signature,
    ) -> StoreResult<Vec<SignOutcome>> {
        let wtx = self.write()?;
        let mut out = Vec::with_capacity(items.len());
        {
            let mut own = wtx.open_table(OWN_SIGS)?;
            let mut ev = wtx.open_table(EVENTS)?;
            let mut att = wtx.open_table(ATTESTATIONS)?;
            let mut attested = wtx.open_table(ATTESTED)?;
            for (id, message_hash) in items {
                let existing: Option<OwnSignature> = get_decoded(&own, "own_signatures", id.0)?;
                let sig = match existing {
                    Some(o) if o.message_hash != *message_hash => {
                        out.push(SignOutcome::Refused {
                            signed: o.message_hash,
                        });
                        continue;
                    }
                    Some(o) => o.signature,
                    None => {
                        let sig = sign(message_hash);
                        let rec = OwnSignature {
                            message_hash: *message_hash,
                            signature: sig,
                        };
                        own.insert(id.0, rec.encode().as_slice())?;
                        sig
                    }
                };
                att.insert((message_hash.0, member.0), sig.0.as_slice())?;
                attested.insert((id.0, member.0), message_hash.0)?;
                let rec: Option<EventRecord> = get_decoded(&ev, "events", id.0)?;
                if let Some(mut rec) = rec {
                    if rec.state == EventState::Seen {
                        rec.state = EventState::Signed;
                        rec.signed_ms = Some(now_ms);
                        ev.insert(id.0, rec.encode().as_slice())?;
                    }
                }
                out.push(SignOutcome::Signed(sig));
            }
        }
        wtx.commit()?;
        Ok(out)
    }

    /// This member's signature for `id`, if any.
    pub fn own_signature(&self, id: &Hash) -> StoreResult<Option<OwnSignature>> {
        self.read_one(OWN_SIGS, "own_signatures", id.0)
    }

    /// Stores verified attestations of transfers this member has recorded and not yet seen
    /// paid, in one durable transaction. Those of paid transfers are dropped; those of
    /// transfers not recorded yet are handed back (the caller holds them, bounded, until the
    /// watcher records the transfer: a stranger to the store is never written to disk). A
    /// member's attestation over another message than the first one stored for it and the id
    /// is refused and reported (the first one stays): each member costs at most one stored
    /// attestation per transfer.
    pub fn put_attestations(&self, items: &[HeldAttestation]) -> StoreResult<Filed> {
        let mut keep = Vec::new();
        let mut unknown = Vec::new();
        let mut conflicting = Vec::new();
        {
            let rtx = self.db.begin_read()?;
            let ev = rtx.open_table(EVENTS)?;
            let attested = rtx.open_table(ATTESTED)?;
            // What this batch keeps, so two messages of a member in one batch are caught too.
            let mut first: HashMap<([u8; 32], [u8; 20]), Hash> = HashMap::new();
            for (i, item) in items.iter().enumerate() {
                let Some(v) = ev.get(item.id.0)? else {
                    unknown.push(i);
                    continue;
                };
                if decode::<EventRecord>("events", v.value())?.state == EventState::Paid {
                    continue;
                }
                let key = (item.id.0, item.member.0);
                let before = match first.get(&key) {
                    Some(h) => Some(*h),
                    None => attested.get(key)?.map(|h| Hash(h.value())),
                };
                match before {
                    None => {
                        first.insert(key, item.message_hash);
                        keep.push(*item);
                    }
                    // Held already (re-gossip): nothing to write.
                    Some(h) if h == item.message_hash => {}
                    Some(_) => conflicting.push(i),
                }
            }
        }
        let new = keep.len();
        if !keep.is_empty() {
            let wtx = self.write()?;
            {
                let mut t = wtx.open_table(ATTESTATIONS)?;
                let mut attested = wtx.open_table(ATTESTED)?;
                for item in &keep {
                    t.insert(
                        (item.message_hash.0, item.member.0),
                        item.signature.0.as_slice(),
                    )?;
                    attested.insert((item.id.0, item.member.0), item.message_hash.0)?;
                }
            }
            wtx.commit()?;
        }
        Ok(Filed {
            new,
            unknown,
            conflicting,
        })
    }

    /// The attestations held for exactly `message_hash`, by member.
    pub fn attestations(&self, message_hash: &Hash) -> StoreResult<Vec<(Address, Signature)>> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(ATTESTATIONS)?;
        let mut out = Vec::new();
        for r in t.range((message_hash.0, [0u8; 20])..=(message_hash.0, [0xffu8; 20]))? {
            let (k, v) = r?;
            let bytes: [u8; 65] = v.value().try_into().map_err(|_| StoreError::Corrupt {
                table: "attestations",
                detail: "signature is not 65 bytes".into(),
            })?;
            out.push((Address(k.value().1), Signature(bytes)));
        }
        Ok(out)
    }

    /// Updates an event in place (state, timestamps) if it exists; paid events leave the
    /// unpaid index.
    pub fn update_event(
        &self,
        id: &Hash,
        f: impl Fn(&mut EventRecord),
    ) -> StoreResult<Option<EventRecord>> {
        Ok(self.update_events(&[*id], f)?.pop())
    }

    /// [`Store::update_event`] for many ids in one durable transaction; returns the updated
    /// records (unknown ids are skipped).
    pub fn update_events(
        &self,
        ids: &[Hash],
        f: impl Fn(&mut EventRecord),
    ) -> StoreResult<Vec<EventRecord>> {
        let wtx = self.write()?;
        let mut out = Vec::with_capacity(ids.len());
        {
            let mut ev = wtx.open_table(EVENTS)?;
            let mut open = wtx.open_table(OPEN)?;
            let own = wtx.open_table(OWN_SIGS)?;
            let mut att = wtx.open_table(ATTESTATIONS)?;
            let mut attested = wtx.open_table(ATTESTED)?;
            for id in ids {
                let rec: Option<EventRecord> = get_decoded(&ev, "events", id.0)?;
                if let Some(mut rec) = rec {
                    f(&mut rec);
                    ev.insert(id.0, rec.encode().as_slice())?;
                    if rec.state == EventState::Paid {
                        open.remove(id.0)?;
                        // The signatures served their purpose: keep the table to what is open.
                        if let Some(own) = own.get(id.0)? {
                            let own: OwnSignature = decode("own_signatures", own.value())?;
                            let h = own.message_hash.0;
                            att.retain_in((h, [0u8; 20])..=(h, [0xffu8; 20]), |_, _| false)?;
                        }
                        // And whatever other message a member attested for the id.
                        let range = (id.0, [0u8; 20])..=(id.0, [0xffu8; 20]);
                        let held: Vec<([u8; 20], [u8; 32])> = attested
                            .range(range.clone())?
                            .map(|r| r.map(|(k, v)| (k.value().1, v.value())))
                            .collect::<Result<_, _>>()?;
                        for (member, h) in held {
                            att.remove((h, member))?;
                        }
                        attested.retain_in(range, |_, _| false)?;
                    }
                    out.push(rec);
                }
            }
        }
        wtx.commit()?;
        Ok(out)
    }

    /// Records submission attempts (before sending, then their outcomes) in one durable
    /// transaction.
    pub fn put_submissions(&self, items: &[(Hash, Submission)]) -> StoreResult<()> {
        let wtx = self.write()?;
        {
            let mut t = wtx.open_table(SUBMISSIONS)?;
            for (id, s) in items {
                t.insert(id.0, s.encode().as_slice())?;
            }
        }
        wtx.commit()?;
        Ok(())
    }

    /// The last submission attempt for `id`.
    pub fn submission(&self, id: &Hash) -> StoreResult<Option<Submission>> {
        self.read_one(SUBMISSIONS, "submissions", id.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use primitives::crypto::SecretKey;

    /// A deposit `[id; 32]` seen at `height`, not signed yet.
    /// The cursor at `height` whose block hash is `height`'s byte repeated.
    pub(crate) fn at(height: u64) -> Cursor {
        Cursor {
            height,
            hash: Hash([height as u8; 32]),
        }
    }

    pub(crate) fn event(id: u8, height: u64) -> EventRecord {
        EventRecord {
            direction: Direction::MainToSide,
            id: Hash([id; 32]),
            recipient: Address([1; 20]),
            source_amount: Amount(10),
            payout_amount: Amount(10),
            source_height: height,
            source_block: Hash([height as u8; 32]),
            state: EventState::Seen,
            seen_ms: 1,
            signed_ms: None,
            ready_ms: None,
            paid_ms: None,
            payout_tx: None,
        }
    }

    #[test]
    fn a_submission_written_before_nonces_were_kept_still_decodes() {
        let old = (Some(Hash([1; 32])), 5u64, 2u32, String::from("accepted")).encode();
        let s: Submission = decode("submissions", &old).expect("old record");
        assert_eq!((s.attempts, s.nonce), (2, None));
        let new = Submission {
            nonce: Some(7),
            ..s.clone()
        };
        let back: Submission = decode("submissions", &new.encode()).expect("new record");
        assert_eq!(back, new);
        let mut longer = old.clone();
        longer.extend([1, 7, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert!(
            decode::<Submission>("submissions", &longer).is_err(),
            "trailing bytes"
        );
    }

    /// A store `write` used, dropped without any shutdown and opened again (so only what it
    /// committed durably is left), with its directory and what `write` returned.
    fn reopened<R>(write: impl FnOnce(&Store) -> R) -> (tempfile::TempDir, Store, R) {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = write(&Store::open(dir.path()).expect("open"));
        let s = Store::open(dir.path()).expect("reopen");
        (dir, s, r)
    }

    #[test]
    fn scans_survive_reopen_and_rewind_forgets_unsigned() {
        let d = Direction::MainToSide;
        let (_dir, s, ()) = reopened(|s| {
            s.commit_scan(d, at(1), &[event(7, 1)], 100).expect("scan");
            s.commit_scan(d, at(2), &[event(8, 2)], 100).expect("scan");
            s.sign_once(&Address([1; 20]), &Hash([7; 32]), Hash([70; 32]), 5, |_| {
                Signature([1; 65])
            })
            .expect("sign");
        });
        assert_eq!(s.cursor(d).expect("cursor"), Some(at(2)));
        assert_eq!(s.open_events(Some(d)).expect("open").len(), 2);
        assert_eq!(
            s.open_events(Some(Direction::SideToMain))
                .expect("open")
                .len(),
            0
        );
        let signed = s
            .rewind(
                d,
                Cursor {
                    height: 0,
                    hash: Hash::ZERO,
                },
            )
            .expect("rewind");
        assert_eq!(
            signed,
            vec![Hash([7; 32])],
            "a signed event is kept and reported"
        );
        assert!(
            s.event(&Hash([8; 32])).expect("get").is_none(),
            "unsigned event forgotten"
        );
        assert_eq!(s.scanned_hash(d, 1).expect("get"), None);
        assert_eq!(s.cursor(d).expect("cursor").map(|c| c.height), Some(0));
    }

    #[test]
    fn never_signs_two_messages_for_one_id() {
        let key = SecretKey::random();
        let id = Hash([3; 32]);
        let m1 = Hash([10; 32]);
        let (_dir, s, first) = reopened(|s| {
            s.sign_once(&key.address(), &id, m1, 1, |h| key.sign_prehash(h))
                .expect("sign")
        });
        // The same message after a restart: the stored signature, no new signing.
        let again = s
            .sign_once(&key.address(), &id, m1, 2, |_| {
                panic!("must not sign again")
            })
            .expect("same message");
        assert_eq!(first, again);
        // A different message for the same id: refused, and the signer is never called.
        let err = s.sign_once(&key.address(), &id, Hash([11; 32]), 3, |_| {
            panic!("must not sign")
        });
        assert!(matches!(err, Err(StoreError::AlreadySignedOther { .. })));
        assert_eq!(
            s.own_signature(&id).expect("get").map(|o| o.message_hash),
            Some(m1)
        );
    }

    #[test]
    fn a_burst_is_signed_in_one_transaction_and_filed_as_own_attestations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let key = SecretKey::random();
        let me = key.address();
        let d = Direction::MainToSide;
        let events: Vec<EventRecord> = (1..=3).map(|i| event(i, 1)).collect();
        s.commit_scan(d, at(1), &events, 100).expect("scan");
        // Event 2 was signed before with another message: the batch refuses it, signs the rest.
        s.sign_once(&me, &Hash([2; 32]), Hash([99; 32]), 1, |h| {
            key.sign_prehash(h)
        })
        .expect("sign");
        let items: Vec<(Hash, Hash)> = (1..=3u8)
            .map(|i| (Hash([i; 32]), Hash([i + 10; 32])))
            .collect();
        let out = s
            .sign_many(&me, &items, 7, |h| key.sign_prehash(h))
            .expect("sign many");
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[1],
            SignOutcome::Refused {
                signed: Hash([99; 32])
            }
        );
        for i in [0usize, 2] {
            let SignOutcome::Signed(sig) = out[i] else {
                panic!("{i} not signed: {:?}", out[i]);
            };
            let (id, m) = items[i];
            assert_eq!(sig.recover(&m), Ok(me));
            assert_eq!(s.attestations(&m).expect("held"), vec![(me, sig)]);
            let rec = s.event(&id).expect("get").expect("known");
            assert_eq!((rec.state, rec.signed_ms), (EventState::Signed, Some(7)));
        }
        assert!(
            s.attestations(&Hash([12; 32])).expect("held").is_empty(),
            "nothing filed for the refused message"
        );
    }

    #[test]
    fn many_scanned_blocks_commit_together_and_the_cursor_moves_to_the_last() {
        let d = Direction::MainToSide;
        let (_dir, s, ()) = reopened(|s| {
            let blocks: Vec<(Cursor, Vec<EventRecord>)> = (1..=5u64)
                .map(|h| {
                    let c = at(h);
                    let events = if h % 2 == 0 {
                        vec![event(h as u8 + 100, h)]
                    } else {
                        vec![]
                    };
                    (c, events)
                })
                .collect();
            s.commit_scans(d, &blocks, 3).expect("scan");
            s.commit_scans(d, &[], 3).expect("nothing to commit");
        });
        assert_eq!(s.cursor(d).expect("cursor").map(|c| c.height), Some(5));
        assert_eq!(s.open_events(Some(d)).expect("open").len(), 2);
        assert_eq!(
            s.oldest_scanned(d).expect("oldest"),
            Some(2),
            "history of 3 kept"
        );
        assert_eq!(s.scanned_hash(d, 4).expect("get"), Some(Hash([4; 32])));
    }

    #[test]
    fn a_paid_transfer_drops_its_attestations_and_late_ones_are_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let key = SecretKey::random();
        let (id, m) = (Hash([5; 32]), Hash([50; 32]));
        s.commit_scan(Direction::MainToSide, at(1), &[event(5, 1)], 100)
            .expect("scan");
        s.sign_once(&key.address(), &id, m, 1, |h| key.sign_prehash(h))
            .expect("sign");
        let held = |a: u8| HeldAttestation {
            id,
            message_hash: m,
            member: Address([a; 20]),
            signature: Signature([a; 65]),
        };
        assert_eq!(s.put_attestations(&[held(2)]).expect("put").new, 1);
        assert_eq!(s.attestations(&m).expect("held").len(), 2);
        s.update_event(&id, |r| r.state = EventState::Paid)
            .expect("paid");
        assert!(s.attestations(&m).expect("held").is_empty());
        let filed = s.put_attestations(&[held(3)]).expect("put");
        assert_eq!((filed.new, filed.unknown.len()), (0, 0));
        assert!(s.attestations(&m).expect("held").is_empty());
        assert!(
            s.own_signature(&id).expect("own").is_some(),
            "own signature kept for good"
        );
    }

    #[test]
    fn attestations_keyed_by_message_and_member() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let m = Hash([1; 32]);
        s.commit_scan(Direction::MainToSide, at(1), &[event(7, 1)], 100)
            .expect("scan");
        let put = |h: Hash, a: u8, sig: u8| {
            s.put_attestations(&[HeldAttestation {
                id: Hash([7; 32]),
                message_hash: h,
                member: Address([a; 20]),
                signature: Signature([sig; 65]),
            }])
            .expect("put")
            .new
        };
        // A transfer not recorded yet: handed back, nothing written.
        let stranger = HeldAttestation {
            id: Hash([8; 32]),
            message_hash: Hash([80; 32]),
            member: Address([1; 20]),
            signature: Signature([1; 65]),
        };
        let filed = s.put_attestations(&[stranger]).expect("put");
        assert_eq!((filed.new, filed.unknown), (0, vec![0]));
        assert!(s.attestations(&Hash([80; 32])).expect("get").is_empty());
        assert_eq!(put(m, 1, 1), 1);
        assert_eq!(put(m, 1, 2), 0, "a second signature of a member is not new");
        assert_eq!(put(m, 2, 3), 1);
        assert_eq!(put(Hash([2; 32]), 3, 4), 1);
        let got = s.attestations(&m).expect("get");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            (Address([1; 20]), Signature([1; 65])),
            "the first one is kept"
        );
    }

    #[test]
    fn a_member_attests_one_message_per_id_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Hash([7; 32]);
        let att = |member: u8, message: u8| HeldAttestation {
            id,
            message_hash: Hash([message; 32]),
            member: Address([member; 20]),
            signature: Signature([message; 65]),
        };
        {
            let s = Store::open(dir.path()).expect("open");
            s.commit_scan(Direction::MainToSide, at(1), &[event(7, 1)], 100)
                .expect("scan");
            assert_eq!(s.put_attestations(&[att(2, 10)]).expect("put").new, 1);
            // Member 2 again for the same id, over another message: refused, not stored.
            let filed = s.put_attestations(&[att(2, 11)]).expect("put");
            assert_eq!(
                filed.new, 0,
                "a second message of member 2 for the id is not stored"
            );
            assert_eq!(filed.conflicting, vec![0], "and it is reported");
            assert!(s.attestations(&Hash([11; 32])).expect("get").is_empty());
            // The first one again (re-gossip) is neither new nor a conflict.
            let filed = s.put_attestations(&[att(2, 10)]).expect("put");
            assert_eq!((filed.new, filed.conflicting.len()), (0, 0));
            // Two messages of member 3 in one batch: the first is kept.
            let filed = s.put_attestations(&[att(3, 12), att(3, 13)]).expect("put");
            assert_eq!((filed.new, filed.conflicting), (1, vec![1]));
            assert!(s.attestations(&Hash([13; 32])).expect("get").is_empty());
            // Another member may attest any message once.
            assert_eq!(s.put_attestations(&[att(4, 11)]).expect("put").new, 1);
        }
        // After a restart the first message still holds.
        let s = Store::open(dir.path()).expect("reopen");
        for m in 20..120u8 {
            let filed = s.put_attestations(&[att(2, m)]).expect("put");
            assert_eq!((filed.new, filed.conflicting), (0, vec![0]));
        }
        assert_eq!(
            s.attestations(&Hash([10; 32])).expect("get"),
            vec![(Address([2; 20]), Signature([10; 65]))]
        );
        // Once paid, every attestation of the id goes, whatever message it was over.
        s.update_event(&id, |r| r.state = EventState::Paid)
            .expect("paid");
        for m in [10u8, 11, 12] {
            assert!(
                s.attestations(&Hash([m; 32])).expect("get").is_empty(),
                "{m}"
            );
        }
    }

    #[test]
    fn scanned_history_is_pruned_and_paid_events_leave_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let d = Direction::SideToMain;
        for h in 1..=40u64 {
            s.commit_scan(d, at(h), &[], 16).expect("scan");
        }
        assert_eq!(s.oldest_scanned(d).expect("oldest"), Some(24));
        let mut e = event(9, 40);
        e.direction = d;
        s.commit_scan(d, at(41), &[e], 16).expect("scan");
        s.update_event(&Hash([9; 32]), |r| r.state = EventState::Paid)
            .expect("update");
        assert!(s.open_events(None).expect("open").is_empty());
        assert_eq!(s.all_events().expect("all").len(), 1);
    }
}
