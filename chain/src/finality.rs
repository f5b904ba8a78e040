//! The node's finality service: the `finality` crate's state machine on its own OS thread,
//! fed with verified votes from the network, the driver's "blocks changed" and its timers; what
//! it decides is written to `finality.redb` (state, justification and the decision in one
//! durable write) before any statement it leads to leaves the node, and only then handed to
//! the driver (fork choice below the final block stops) and shown in RPC and metrics.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use parity_scale_codec::{DecodeAll, Encode};
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

use crate::driver::DriverHandle;
use crate::shared::Chain;
use finality::{
    quorum, Action, Authorities, AuthorityIndex, BlockRef, BlockTree, Durable, Equivocation,
    Justification, Machine, MachineConfig, Message, Signer, SigningDomain, Statement, Step,
    Timeout, Validity, Wire,
};
use primitives::crypto::{SecretKey, Signature};
use primitives::genesis::Genesis;
use primitives::types::{BlockNumber, Hash};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const JUSTIFICATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("justifications");
const EVIDENCE: TableDefinition<u64, &[u8]> = TableDefinition::new("evidence");
const KEY_STATE: &str = "state";

/// Statements are sent again this often, so lost ones are made good. Not more often: every
/// resend is new gossip every peer checks and forwards, and at once a second per node it
/// crowded blocks out of gossip and sync on a loaded devnet.
const REBROADCAST: Duration = Duration::from_secs(10);
/// The thread looks at the tree (and the stop signal) at least this often.
const TICK: Duration = Duration::from_secs(1);
/// An authority heard from within this long counts as voting in the status. Longer than
/// [`REBROADCAST`]: an authority stuck in a round that cannot end says nothing new until then.
const HEARD_WINDOW: Duration = Duration::from_secs(15);
/// Messages waiting for the finality thread; more are dropped (and sent again by their
/// authors), never queued without bound.
const INBOX: usize = 1024;

/// Errors of the finality store.
#[derive(Debug, thiserror::Error)]
pub enum FinalityError {
    /// redb failed.
    #[error("finality database: {0}")]
    Db(#[from] redb::Error),
    /// Stored bytes do not decode.
    #[error("corrupt finality record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// The decode error.
        detail: String,
    },
}

service::impl_from_redb_errors!(FinalityError);

fn decode<T: parity_scale_codec::Decode>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, FinalityError> {
    T::decode_all(&mut &bytes[..]).map_err(|e| FinalityError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// `finality.redb`: the voting state, every justification by the height of its block, and
/// evidence of equivocations. Its own file, so its writes never wait for a block commit.
#[derive(Debug)]
pub struct FinalityStore {
    db: Database,
}

impl FinalityStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, FinalityError> {
        let db = Database::create(dir.join("finality.redb"))?;
        let w = db.begin_write()?;
        w.open_table(META)?;
        w.open_table(JUSTIFICATIONS)?;
        w.open_table(EVIDENCE)?;
        w.commit()?;
        Ok(Self { db })
    }

    /// The state last persisted, if any.
    pub fn load(&self) -> Result<Option<Durable<Signature>>, FinalityError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        let Some(v) = t.get(KEY_STATE)? else {
            return Ok(None);
        };
        decode("state", v.value()).map(Some)
    }

    /// Writes the state durably; the justifications of the decisions that led to it (and its
    /// own last one) go into the same write.
    pub fn persist(
        &self,
        state: &Durable<Signature>,
        decided: &[Justification],
    ) -> Result<(), FinalityError> {
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(META)?;
            t.insert(KEY_STATE, state.encode().as_slice())?;
            let mut j = w.open_table(JUSTIFICATIONS)?;
            for c in decided.iter().chain(state.last_commit.as_ref()) {
                j.insert(c.block.number, c.encode().as_slice())?;
            }
        }
        w.commit()?;
        Ok(())
    }

    /// The justification of the lowest final block at or above `number`: it proves `number`
    /// final too, with the headers between them.
    pub fn justification_covering(
        &self,
        number: BlockNumber,
    ) -> Result<Option<Justification>, FinalityError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(JUSTIFICATIONS)?;
        let Some(entry) = t.range(number..)?.next() else {
            return Ok(None);
        };
        let (_, v) = entry?;
        decode("justification", v.value()).map(Some)
    }

    /// Keeps the evidence of an equivocation; returns how many are kept.
    pub fn add_evidence(&self, e: &Equivocation<Signature>) -> Result<u64, FinalityError> {
        let w = self.db.begin_write()?;
        let n = {
            let mut t = w.open_table(EVIDENCE)?;
            let n = t.len()?;
            t.insert(n, e.encode().as_slice())?;
            n + 1
        };
        w.commit()?;
        Ok(n)
    }

    /// How many equivocations are kept.
    pub fn evidence_count(&self) -> Result<u64, FinalityError> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(EVIDENCE)?.len()?)
    }
}

/// What the node shows of finality (RPC, metrics, status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalityStatus {
    /// The last final block.
    pub final_block: BlockRef,
    /// The instance being decided.
    pub instance: u64,
    /// Its current round.
    pub round: u32,
    /// The step in it.
    pub step: Step,
    /// Authorities heard from within the last [`HEARD_WINDOW`] (and this node's own
    /// authority while it votes).
    pub heard: Vec<AuthorityIndex>,
    /// Prevotes and precommits of the current round.
    pub votes: (usize, usize),
    /// Equivocations kept as evidence.
    pub equivocations: u64,
}

/// The finality part of the shared chain: the store, the authority set and the status.
#[derive(Debug)]
pub struct Finality {
    /// `finality.redb`.
    pub store: FinalityStore,
    /// The genesis authorities and the signing domain.
    pub authorities: Authorities,
    status: RwLock<FinalityStatus>,
}

impl Finality {
    /// Opens the finality store of `dir` for the chain of `genesis`.
    pub fn open(dir: &Path, genesis: &Genesis, genesis_hash: Hash) -> Result<Self, FinalityError> {
        let store = FinalityStore::open(dir)?;
        let state = store.load()?.unwrap_or_else(|| {
            Durable::genesis(BlockRef {
                number: 0,
                hash: genesis_hash,
            })
        });
        let equivocations = store.evidence_count()?;
        Ok(Self {
            store,
            authorities: Authorities {
                domain: SigningDomain {
                    chain_id: genesis.chain_id,
                    genesis: genesis_hash,
                },
                addresses: genesis.authorities.clone(),
            },
            status: RwLock::new(FinalityStatus {
                final_block: state.final_block,
                instance: state.instance,
                round: state.round,
                step: state.step,
                heard: Vec::new(),
                votes: (0, 0),
                equivocations,
            }),
        })
    }

    /// The status as it stands.
    pub fn status(&self) -> FinalityStatus {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last final block.
    pub fn final_block(&self) -> BlockRef {
        self.status().final_block
    }

    fn set_status(&self, s: FinalityStatus) {
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// The quorum of this chain's authority set.
    pub fn quorum(&self) -> usize {
        quorum(self.authorities.len())
    }
}

/// Where statements go: the network gossips them.
pub trait FinalityPublisher: Send + 'static {
    /// Sends `wire` to the other nodes.
    fn publish_finality(&self, wire: Wire);
}

/// No network.
#[derive(Debug, Default)]
pub struct NoFinalityPublisher;

impl FinalityPublisher for NoFinalityPublisher {
    fn publish_finality(&self, _wire: Wire) {}
}

enum Input {
    Message(AuthorityIndex, Message<Signature>),
    BlocksChanged,
}

/// A handle to the finality thread.
#[derive(Debug, Clone)]
pub struct FinalityHandle {
    tx: SyncSender<Input>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

impl FinalityHandle {
    /// Hands over a message whose signatures were checked; false if the thread is busy (the
    /// message is dropped; its author sends it again).
    pub fn message(&self, from: AuthorityIndex, message: Message<Signature>) -> bool {
        self.tx.try_send(Input::Message(from, message)).is_ok()
    }

    /// The block tree changed. Dropped when the thread is busy: it looks at the tree again
    /// when it gets to its queue, and at least every second.
    pub fn blocks_changed(&self) {
        if let Err(TrySendError::Disconnected(_)) = self.tx.try_send(Input::BlocksChanged) {
            tracing::debug!("finality thread stopped");
        }
    }
}

/// The receiving end, until [`spawn`] hands it to the thread.
#[derive(Debug)]
pub struct FinalityInbox(Receiver<Input>);

/// Creates the finality thread's mailbox (before the network and the driver, which send to it).
pub fn mailbox() -> (FinalityHandle, FinalityInbox) {
    let (tx, rx) = sync_channel(INBOX);
    (FinalityHandle { tx }, FinalityInbox(rx))
}

/// The step timeouts for a chain with this block time: about a block time, at least a second
/// (a loaded node's votes take that long to be signed, written and checked; a timeout that
/// fires first only costs a round), longer each round.
pub fn timeouts(block_time_ms: u64) -> (u64, u64) {
    let base = block_time_ms.clamp(1_000, 3_000);
    (base, base / 2)
}

struct KeySigner {
    key: SecretKey,
    domain: SigningDomain,
}

impl Signer<Signature> for KeySigner {
    fn sign(&self, statement: &Statement) -> Signature {
        self.key.sign_prehash(&self.domain.prehash(statement))
    }
}

/// The block tree as finality sees it: a block is valid when it is on this node's canonical
/// chain (so it passed every rule and was executed) above a canonical final block. Anything
/// else known or not is waited for, since fork choice may still switch to it.
struct StoreTree<'a> {
    chain: &'a Chain,
}

impl BlockTree for StoreTree<'_> {
    fn validity(&self, block: &BlockRef, final_block: &BlockRef) -> Validity {
        if block.number <= final_block.number {
            return Validity::Invalid;
        }
        let store = &self.chain.store;
        let canonical = |b: &BlockRef| store.is_canonical(&b.hash, b.number).unwrap_or(false);
        if canonical(block) && canonical(final_block) {
            Validity::Valid
        } else {
            Validity::Unknown
        }
    }

    fn best(&self) -> BlockRef {
        let tip = self.chain.tip();
        BlockRef {
            number: tip.head.number,
            hash: tip.head_hash,
        }
    }
}

/// Starts the finality thread; it stops when every [`FinalityHandle`] is dropped.
pub fn spawn(
    inbox: FinalityInbox,
    chain: Arc<Chain>,
    key: Option<SecretKey>,
    publisher: Box<dyn FinalityPublisher>,
    driver: DriverHandle,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let state = match chain.finality.store.load() {
        Ok(Some(s)) => s,
        Ok(None) => Durable::genesis(chain.finality.final_block()),
        Err(e) => {
            return Err(std::io::Error::other(format!(
                "cannot load the finality state: {e}"
            )))
        }
    };
    let me = key
        .as_ref()
        .and_then(|k| chain.finality.authorities.index_of(&k.address()));
    let signer = match (&key, me) {
        (Some(k), Some(_)) => Some(Box::new(KeySigner {
            key: k.clone(),
            domain: chain.finality.authorities.domain,
        }) as Box<dyn Signer<Signature> + Send>),
        _ => None,
    };
    let (timeout_base_ms, timeout_step_ms) = timeouts(chain.genesis.block_time_ms);
    let machine = Machine::new(
        MachineConfig {
            authorities: chain.finality.authorities.len(),
            me,
            timeout_base_ms,
            timeout_step_ms,
        },
        signer,
        state,
    );
    let service = Service {
        chain,
        machine,
        publisher,
        driver,
        timers: BinaryHeap::new(),
        seq: 0,
        broken: false,
        preferred: None,
        last_heard: Vec::new(),
    };
    std::thread::Builder::new()
        .name("finality".into())
        .spawn(move || service.run(inbox.0, shutdown))
}

struct Service {
    chain: Arc<Chain>,
    machine: Machine<Signature>,
    publisher: Box<dyn FinalityPublisher>,
    driver: DriverHandle,
    timers: BinaryHeap<Reverse<(Instant, u64, TimerKey)>>,
    seq: u64,
    /// A persist failed: this node stops voting (it must not send what it could not store).
    broken: bool,
    /// The last proposed block the driver was asked to take, and in which round.
    preferred: Option<(u32, Hash)>,
    /// When each authority was last heard from (by index).
    last_heard: Vec<Option<Instant>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey {
    instance: u64,
    round: u32,
    step: u8,
}

fn step_code(s: Step) -> u8 {
    match s {
        Step::Propose => 0,
        Step::Prevote => 1,
        Step::Precommit => 2,
    }
}

fn code_step(c: u8) -> Step {
    match c {
        0 => Step::Propose,
        1 => Step::Prevote,
        _ => Step::Precommit,
    }
}

impl Service {
    fn run(mut self, rx: Receiver<Input>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let start = {
            let tree = StoreTree { chain: &self.chain };
            self.machine.start(&tree)
        };
        self.execute(start);
        let mut next_rebroadcast = Instant::now() + REBROADCAST;
        let mut next_tick = Instant::now() + TICK;
        // The driver holds a handle to this thread and this thread one to the driver: the stop
        // signal, seen at least every second, ends the pair.
        while !*shutdown.borrow() {
            let now = Instant::now();
            let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let wake = next_timer.map_or(next_tick, |t| t.min(next_tick));
            let input = rx.recv_timeout(wake.saturating_duration_since(now));
            let actions = {
                let tree = StoreTree { chain: &self.chain };
                match input {
                    Ok(Input::Message(from, m)) => {
                        let i = usize::from(from);
                        if self.last_heard.len() <= i {
                            self.last_heard.resize(i + 1, None);
                        }
                        self.last_heard[i] = Some(now);
                        self.machine.on_message(from, m, &tree)
                    }
                    Ok(Input::BlocksChanged) => self.machine.on_blocks_changed(&tree),
                    Err(RecvTimeoutError::Timeout) => Vec::new(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            self.execute(actions);
            self.prefer_proposal();
            let now = Instant::now();
            while let Some(Reverse((at, _, key))) = self.timers.peek().copied() {
                if at > now {
                    break;
                }
                self.timers.pop();
                let t = Timeout {
                    instance: key.instance,
                    round: key.round,
                    step: code_step(key.step),
                    after_ms: 0,
                };
                let actions = {
                    let tree = StoreTree { chain: &self.chain };
                    self.machine.on_timeout(t, &tree)
                };
                self.execute(actions);
            }
            if now >= next_rebroadcast {
                next_rebroadcast = now + REBROADCAST;
                if !self.broken {
                    for m in self.machine.rebroadcast() {
                        self.publisher.publish_finality(m.into());
                    }
                }
            }
            if now >= next_tick {
                next_tick = now + TICK;
                // The tree may have changed while the inbox was full.
                let actions = {
                    let tree = StoreTree { chain: &self.chain };
                    self.machine.on_blocks_changed(&tree)
                };
                self.execute(actions);
            }
        }
        tracing::info!("finality stopped");
    }

    /// The round's proposal is a block this node holds on a side branch: ask the driver to
    /// take that branch if it is as long as ours, so this authority can vote for it (it votes
    /// only for executed, canonical blocks).
    /// Asked once per block and round, and only when the driver would act on it: a hint per
    /// message would fill the driver's mailbox and crowd out its slot ticks. Again in a later
    /// round: the longer branch may have taken the node back before it could vote.
    /// A re-proposal with a polka is taken even from a shorter branch (see
    /// [`Machine::current_polka_proposal`]): without that, authorities locked on a block that an
    /// unlocked one's chain has left wait for each other for good.
    fn prefer_proposal(&mut self) {
        let polka = self.machine.current_polka_proposal();
        let Some(p) = polka.or_else(|| self.machine.current_proposal()) else {
            return;
        };
        let shorter_ok = polka.is_some();
        let asked = (self.machine.state().round, p.hash);
        if self.preferred == Some(asked) || (!shorter_ok && p.number < self.chain.tip().head.number)
        {
            return;
        }
        let tree = StoreTree { chain: &self.chain };
        if tree.validity(&p, &self.machine.final_block()) == Validity::Unknown
            && self.chain.store.header(&p.hash).ok().flatten().is_some()
        {
            self.preferred = Some(asked);
            if shorter_ok {
                self.driver.prefer_polka(p);
            } else {
                self.driver.prefer(p);
            }
        }
    }

    /// Who counts as voting: heard lately, or this node itself. Not "heard in this instance":
    /// an authority that voted in it and then died would count for as long as it stalls.
    fn heard(&self) -> Vec<AuthorityIndex> {
        let now = Instant::now();
        let mut heard = Vec::new();
        for (i, at) in self.last_heard.iter().enumerate() {
            if at.is_some_and(|t| now.duration_since(t) < HEARD_WINDOW) {
                heard.extend(AuthorityIndex::try_from(i).ok());
            }
        }
        if !self.broken {
            heard.extend(self.machine.me());
        }
        heard.sort_unstable();
        heard.dedup();
        heard
    }

    /// Carries out the machine's actions. Every state it asks to persist is superseded by the
    /// last one, so one durable write of that (with every decision's justification) comes
    /// first, and everything else after it: nothing leaves the node before the state that led
    /// to it is on disk, at one fsync per batch instead of one per statement.
    fn execute(&mut self, actions: Vec<Action<Signature>>) {
        let last = actions.iter().rev().find_map(|a| match a {
            Action::Persist(s) => Some(s.as_ref().clone()),
            _ => None,
        });
        if let Some(state) = last {
            service::fault::point("finality-before-persist");
            let decided: Vec<Justification> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Finalized(c) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            if let Err(e) = self.chain.finality.store.persist(&state, &decided) {
                // Sending what is not stored could make this authority contradict itself after
                // a restart: stop here, say so loudly.
                tracing::error!(error = %e, "FINALITY STATE NOT WRITTEN: this node stops voting until restarted");
                self.broken = true;
                return;
            }
            service::fault::point("finality-persisted");
        }
        for a in actions {
            match a {
                Action::Persist(_) => {}
                Action::Broadcast(m) => {
                    if !self.broken {
                        if let Some(said) = m.said() {
                            tracing::debug!(statement = %said, "finality statement sent");
                        }
                        self.publisher.publish_finality(m.into());
                        service::fault::point("finality-sent");
                    }
                }
                Action::Schedule(t) => {
                    self.seq += 1;
                    let key = TimerKey {
                        instance: t.instance,
                        round: t.round,
                        step: step_code(t.step),
                    };
                    self.timers.push(Reverse((
                        Instant::now() + Duration::from_millis(t.after_ms),
                        self.seq,
                        key,
                    )));
                }
                Action::Finalized(c) => {
                    tracing::info!(
                        height = c.block.number,
                        hash = %c.block.hash,
                        instance = c.instance,
                        round = c.round,
                        signers = c.precommits.len(),
                        "block final"
                    );
                    self.chain.update_finality_metrics();
                    self.driver.finalized(c.block);
                }
                Action::Equivocation(e) => {
                    let who = self
                        .chain
                        .finality
                        .authorities
                        .addresses
                        .get(usize::from(e.authority))
                        .copied();
                    tracing::error!(authority = ?who, first = ?e.first.0, second = ?e.second.0, "EQUIVOCATION: an authority signed two conflicting statements; evidence kept");
                    self.chain.metrics.finality_equivocations_total.inc();
                    if let Err(err) = self.chain.finality.store.add_evidence(&e) {
                        tracing::error!(error = %err, "cannot keep equivocation evidence");
                    }
                }
                Action::Conflict(c) => {
                    tracing::error!(height = c.block.number, hash = %c.block.hash, instance = c.instance, "CONFLICTING COMMIT refused: more authorities are faulty than finality tolerates; operator attention needed");
                    self.chain.metrics.finality_conflicts_total.inc();
                }
            }
        }
        let s = self.machine.state();
        let equivocations = self
            .chain
            .finality
            .store
            .evidence_count()
            .unwrap_or_default();
        self.chain.finality.set_status(FinalityStatus {
            final_block: s.final_block,
            instance: s.instance,
            round: s.round,
            step: s.step,
            heard: self.heard(),
            votes: self.machine.round_votes(),
            equivocations,
        });
        self.chain.metrics.finality_round.set(i64::from(s.round));
    }
}

/// Checks a gossiped finality message against the authority set: signatures, signers, the
/// proposal's leader and polka. Stale messages (instances already decided here) are not worth
/// the check and come back as `Ok(None)`.
pub fn check_wire(
    finality: &Finality,
    wire: Wire,
) -> Result<Option<(AuthorityIndex, Message<Signature>)>, finality::StatementError> {
    let current = finality.status().instance;
    if wire.instance() < current {
        return Ok(None);
    }
    finality.authorities.verify_wire(wire).map(Some)
}
