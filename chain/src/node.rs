//! Node composition: the shared chain state and the long-lived tasks (block production, RPC).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use primitives::block::Header;

use crate::driver::DriverHandle;
use crate::fee::FeeRule;
use crate::journal::{Journal, JournalEntry, JournalError};
use crate::mempool::{Admission, Mempool, PegFacts, Rejection};
use crate::metrics::Metrics;
use crate::rules::ChainRules;
use crate::state::State;
use crate::store::{LoadedState, SinceCheckpoint, Store, StoreError};
use primitives::genesis::{Genesis, GenesisError};
use primitives::tx::{RecoveredTx, SignedTransaction};
use primitives::types::{Address, Amount, Hash, Slot};
use rpc_api::types::BlockSummary;

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal of RPC-accepted transactions failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Genesis is unusable for this chain.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The authority key could not be loaded.
    #[error("authority key: {0}")]
    Key(#[from] p2p::KeyFileError),
    /// A socket could not be bound or a file written.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// The p2p network could not start.
    #[error(transparent)]
    Network(#[from] p2p::NetworkError),
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
    /// The network, once started.
    pub net: OnceLock<crate::network::NetworkHandle>,
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
    ) -> Result<(Self, SinceCheckpoint), NodeError> {
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
        let chain = Self {
            genesis_hash: genesis.block().hash(),
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
            net: OnceLock::new(),
        };
        Ok((chain, since_checkpoint))
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
    /// ones the pool already held: the client's copy is then journaled too), passes the
    /// accepted ones on to peers, and returns once the journal holds them durably: an answer
    /// of "accepted" survives a crash. One journal write per call, outside the mempool lock;
    /// what does not fit in the journal is refused before admission (`journal_full`).
    pub async fn submit_local(
        &self,
        mut txs: Vec<Result<RecoveredTx, Rejection>>,
    ) -> Vec<Result<Hash, Rejection>> {
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
        let entries: Vec<Option<JournalEntry>> = txs
            .iter()
            .map(|t| t.as_ref().ok().map(JournalEntry::of))
            .collect();
        let mut results = self.admit_and_gossip(txs);
        let journaled: Vec<JournalEntry> = results
            .iter()
            .zip(entries)
            .filter_map(|(r, e)| match r {
                Ok(_) | Err(Rejection::AlreadyKnown(_)) => e,
                Err(_) => None,
            })
            .collect();
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
        results
    }

    /// Re-admits what the journal holds (at start, before the RPC serves) and drops the
    /// entries the pool refuses now (included meanwhile, or no longer valid); returns the
    /// re-admitted transactions, to be announced to peers.
    pub fn readmit_journal(&self) -> Result<Vec<SignedTransaction>, NodeError> {
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
    fn sweep_journal(self: &Arc<Self>) {
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

    /// Admits recovered transactions into the mempool, in order, under one lock; with
    /// `gossip`, the accepted ones are passed on to peers.
    pub fn admit_and_gossip(
        &self,
        txs: Vec<Result<RecoveredTx, Rejection>>,
    ) -> Vec<Result<Hash, Rejection>> {
        let signed: Vec<_> = txs
            .iter()
            .map(|t| t.as_ref().ok().map(|t| t.signed().clone()))
            .collect();
        let results = self.admit(txs);
        if let Some(net) = self.net.get() {
            let accepted = results
                .iter()
                .zip(signed)
                .filter_map(|(r, s)| r.as_ref().ok().and(s))
                .collect();
            net.publish_txs(accepted);
        }
        results
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

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    /// The bound RPC address.
    pub rpc_addr: SocketAddr,
    /// The shared chain.
    pub chain: Arc<Chain>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    rpc: jsonrpsee::server::ServerHandle,
    driver_slot: Arc<Mutex<Option<DriverHandle>>>,
    driver_thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeHandle {
    /// Stops every task and waits for them; the driver finishes the block it is on.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Ok(mut d) = self.driver_slot.lock() {
            d.take();
        }
        if let Some(t) = self.driver_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// Starts a node from an initialized data dir: driver, network, RPC server and, for an
/// authority, the slot timer.
pub async fn start(rules: ChainRules, config: NodeConfig) -> Result<NodeHandle, NodeError> {
    let key = match &config.authority_key_file {
        Some(p) => Some(p2p::load_key_file(p)?),
        None => None,
    };
    let (chain, since_checkpoint) = Chain::open(rules, &config, key.as_ref().map(|k| k.address()))?;
    let chain = Arc::new(chain);
    // Before the RPC serves, so a client asking right after the restart sees them pooled.
    let restored = chain.readmit_journal()?;
    let key = match key {
        Some(k) if chain.genesis.authorities.contains(&k.address()) => Some(k),
        Some(k) => {
            tracing::warn!(address = %k.address(), "authority key is not in the genesis authority set; following only");
            None
        }
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);

    let key_file = config
        .p2p_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("p2p.key"));
    let keypair = p2p::load_or_create_keypair(&key_file)?;
    let parse = |s: &str| {
        s.parse::<libp2p::Multiaddr>().map_err(|e| NodeError::Io {
            what: format!("multiaddr {s:?}"),
            error: std::io::Error::other(e.to_string()),
        })
    };
    let net_config = crate::network::NetworkConfig {
        listen: parse(&config.p2p_listen)?,
        bootstrap: config
            .bootstrap
            .iter()
            .map(|b| parse(b))
            .collect::<Result<_, _>>()?,
        ban_duration: Duration::from_secs(config.peer_ban_seconds),
        max_message_bytes: config.p2p_max_message_bytes,
    };
    let driver_slot = Arc::new(Mutex::new(None));
    let (net, net_loop) = crate::network::start(
        chain.clone(),
        driver_slot.clone(),
        keypair,
        net_config,
        shutdown_rx.clone(),
    )?;
    let (driver, driver_thread) = crate::driver::spawn(
        chain.clone(),
        key.clone(),
        crate::driver::DriverConfig {
            checkpoint_interval: config.checkpoint_interval,
            max_reorg_depth: config.max_reorg_depth,
            max_clock_drift_ms: config.max_clock_drift_ms,
        },
        Box::new(net.clone()),
        since_checkpoint,
    );
    if let Ok(mut d) = driver_slot.lock() {
        *d = Some(driver.clone());
    }
    let _ = chain.net.set(net.clone());
    net.announce_when_connected(restored);
    let mut tasks = vec![
        tokio::spawn(net_loop),
        tokio::spawn(sweep_journal(chain.clone(), shutdown_rx.clone())),
    ];
    if key.is_some() {
        tasks.push(tokio::spawn(crate::producer::run(
            driver.clone(),
            chain.genesis.block_time_ms,
            shutdown_rx.clone(),
        )));
    }
    drop(driver);
    let (rpc_addr, rpc) = crate::rpc::server::start(chain.clone(), &config).await?;
    // The p2p address is known once the listener is up.
    let p2p = net.wait_listen_addrs().await;
    write_endpoints(&config.data_dir, rpc_addr, &p2p)?;
    {
        let tip = chain.tip();
        tracing::info!(
            chain = chain.rules.name,
            chain_id = chain.genesis.chain_id,
            genesis = %chain.genesis_hash,
            height = tip.head.number,
            hash = %tip.head_hash,
            rpc = %rpc_addr,
            peer_id = %net.peer_id,
            authority = ?chain.authority,
            "node started"
        );
    }
    Ok(NodeHandle {
        rpc_addr,
        chain,
        shutdown,
        tasks,
        rpc,
        driver_slot,
        driver_thread: Some(driver_thread),
    })
}

/// Sweeps the journal every [`crate::journal::SWEEP_INTERVAL`] until shutdown.
async fn sweep_journal(chain: Arc<Chain>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(crate::journal::SWEEP_INTERVAL);
    // The first tick is immediate; the start's re-admission has just cleaned up.
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => chain.sweep_journal(),
            _ = shutdown.changed() => break,
        }
    }
}

/// Writes `<data_dir>/endpoints.json` so scripts and tests find a node that bound port 0.
fn write_endpoints(
    dir: &Path,
    rpc: SocketAddr,
    p2p: &[libp2p::Multiaddr],
) -> Result<(), NodeError> {
    let body = service::endpoints::NodeEndpoints {
        rpc_http: format!("http://{rpc}"),
        rpc_ws: format!("ws://{rpc}"),
        p2p: p2p.iter().map(|a| a.to_string()).collect(),
        pid: std::process::id(),
    };
    service::endpoints::write(dir, &body).map_err(|(file, error)| NodeError::Io {
        what: format!("writing {}", file.display()),
        error,
    })
}
