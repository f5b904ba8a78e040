//! Node composition: start-up and shutdown of the long-lived tasks (driver, network, slot
//! timer, journal sweep, RPC) around the shared [`Chain`].
//!
//! Start-up creates the driver's mailbox first and hands its handle to the network and the
//! slot timer, and the network's handle to the driver and the RPC server: nothing is patched
//! in after construction. [`spawn`] is the in-process test tier (as anvil's `spawn(config)`):
//! a node on a fresh data dir with a dev genesis, stopped when its handle drops.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::driver::DriverHandle;
use crate::journal::JournalError;
use crate::network::NetworkHandle;
use crate::rules::{ChainRules, FeeRuleKind};
use crate::shared::{Chain, OpenError};
use crate::store::{Store, StoreError};
use primitives::genesis::{FeeParams, Genesis, GenesisAccount, GenesisError};
use primitives::peg::PegRole;
use primitives::types::Amount;

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data dir could not be opened (storage, journal or genesis).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The authority key could not be loaded.
    #[error("authority key: {0}")]
    Key(#[from] p2p::KeyFileError),
    /// The development key could not be derived.
    #[error("dev key: {0}")]
    DevKey(#[from] primitives::dev::DeriveError),
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
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] crate::rpc::server::ServerError),
}

// What start-up does beside opening the chain (initialising a dev data dir) fails the same
// ways opening does.
impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        Self::Open(e.into())
    }
}

impl From<JournalError> for NodeError {
    fn from(e: JournalError) -> Self {
        Self::Open(e.into())
    }
}

impl From<GenesisError> for NodeError {
    fn from(e: GenesisError) -> Self {
        Self::Open(e.into())
    }
}

/// How long [`NodeHandle::stop`] waits for stragglers (a sync answer, an RPC connection) to
/// let go of the chain, so the store is closed when it returns.
const STOP_RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running node. [`NodeHandle::stop`] stops it and waits; dropping the handle only signals
/// the tasks to stop (a `Drop` cannot wait) and they end on their own.
#[derive(Debug)]
pub struct NodeHandle {
    /// The bound RPC address.
    pub rpc_addr: SocketAddr,
    /// The shared chain.
    pub chain: Arc<Chain>,
    net: NetworkHandle,
    client: HttpClient,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    rpc: jsonrpsee::server::ServerHandle,
    /// The driver's last handle once the tasks that hold clones ended: dropping it ends the
    /// driver thread.
    driver: Option<DriverHandle>,
    driver_thread: Option<std::thread::JoinHandle<()>>,
    finality_thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeHandle {
    /// A JSON-RPC client of this node (HTTP).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The RPC URL, `http://127.0.0.1:<port>`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// The p2p addresses this node listens on, with its peer id: what another node bootstraps from.
    pub fn p2p_addrs(&self) -> Vec<libp2p::Multiaddr> {
        self.net.listen_addrs()
    }

    /// Stops every task and waits for them; the driver finishes the block it is on. Returns
    /// once the store is closed, so the data dir can be opened again (a restart in process).
    pub async fn stop(mut self) {
        self.signal_stop();
        self.rpc.clone().stopped().await;
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        // The tasks that held clones have ended; imports still in flight hold theirs until
        // the driver answers them.
        // The finality thread sees the stop signal within a second; it holds a driver handle.
        if let Some(t) = self.finality_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.driver.take();
        if let Some(t) = self.driver_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let chain = Arc::downgrade(&self.chain);
        drop(self);
        let deadline = Instant::now() + STOP_RELEASE_TIMEOUT;
        while chain.strong_count() > 0 {
            if Instant::now() > deadline {
                tracing::warn!("node stopped, but something still holds the chain open");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn signal_stop(&self) {
        let _ = self.shutdown.send(true);
        let _ = self.rpc.stop();
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        // Every loop watches `shutdown`; the driver thread ends once their handles and ours
        // are gone. Nothing here waits: a drop may run on a runtime worker.
        self.signal_stop();
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
    // The driver's mailbox first: the network is built with its handle, the driver with the
    // network's.
    let (finality, finality_inbox) = crate::finality::mailbox();
    let (driver, inbox) = crate::driver::mailbox();
    let (net, net_loop) = crate::network::start(
        chain.clone(),
        driver.clone(),
        finality.clone(),
        keypair,
        net_config,
        shutdown_rx.clone(),
    )?;
    let driver_thread = crate::driver::spawn(
        inbox,
        chain.clone(),
        key.clone(),
        crate::driver::DriverConfig {
            checkpoint_interval: config.checkpoint_interval,
            max_reorg_depth: config.max_reorg_depth,
            max_clock_drift_ms: config.max_clock_drift_ms,
        },
        Box::new(net.clone()),
        Some(Box::new(finality)),
        since_checkpoint,
    );
    if key.is_some() && !config.finality_voting {
        tracing::warn!(
            "finality_voting = false: this authority produces blocks but does not vote on finality"
        );
    }
    let finality_thread = crate::finality::spawn(
        finality_inbox,
        chain.clone(),
        key.clone().filter(|_| config.finality_voting),
        Box::new(net.clone()),
        driver.clone(),
        shutdown_rx.clone(),
    )
    .map_err(|error| NodeError::Io {
        what: "starting the finality thread".into(),
        error,
    })?;
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
    let (rpc_addr, rpc) = crate::rpc::server::start(chain.clone(), net.clone(), &config).await?;
    // The p2p address is known once the listener is up.
    let p2p = net.wait_listen_addrs().await;
    write_endpoints(&config.data_dir, rpc_addr, &p2p)?;
    let client = HttpClientBuilder::default()
        .build(format!("http://{rpc_addr}"))
        .map_err(|e| NodeError::Io {
            what: "building the RPC client".into(),
            error: std::io::Error::other(e.to_string()),
        })?;
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
        net,
        client,
        shutdown,
        tasks,
        rpc,
        driver: Some(driver),
        driver_thread: Some(driver_thread),
        finality_thread: Some(finality_thread),
    })
}

/// Starts a node in this process, as anvil's `spawn(config)` does, for tests and tools
/// (pair it with [`NodeConfig::test`]). A data dir without a genesis gets [`dev_genesis`];
/// an authority key file that does not exist yet gets the dev key 0, its single authority.
/// A data dir that holds a chain already is started as it is (a restart).
pub async fn spawn(rules: ChainRules, config: NodeConfig) -> Result<NodeHandle, NodeError> {
    {
        let store = Store::open(&config.data_dir)?;
        if store.genesis()?.is_none() {
            store.init_genesis(&dev_genesis(&rules)?)?;
        }
    }
    if let Some(path) = &config.authority_key_file {
        if !path.exists() {
            p2p::write_key_file(path, &primitives::dev::dev_key(0)?).map_err(|error| {
                NodeError::Io {
                    what: format!("writing {}", path.display()),
                    error,
                }
            })?;
        }
    }
    start(rules, config).await
}

/// Chain id of a [`dev_genesis`] for a chain at the main end of the peg.
pub const DEV_MAIN_CHAIN_ID: u64 = 298081;
/// Chain id of a [`dev_genesis`] for a chain at the side end of the peg.
pub const DEV_SIDE_CHAIN_ID: u64 = 298082;

/// A development genesis for `rules`: the dev key 0 as the single authority, dev accounts
/// 0..5 with 1,000 coins each, the chain's default block time, no peg.
pub fn dev_genesis(rules: &ChainRules) -> Result<Genesis, NodeError> {
    let accounts = (0..5)
        .map(|i| {
            Ok(GenesisAccount {
                address: primitives::dev::dev_key(i)?.address(),
                balance: Amount::coins(1000),
            })
        })
        .collect::<Result<Vec<_>, primitives::dev::DeriveError>>()?;
    Ok(Genesis {
        chain_id: match rules.peg_role {
            PegRole::Main => DEV_MAIN_CHAIN_ID,
            PegRole::Side => DEV_SIDE_CHAIN_ID,
        },
        block_time_ms: rules.default_block_time_ms,
        timestamp_ms: 0,
        authorities: vec![primitives::dev::dev_key(0)?.address()],
        max_block_weight: 4_000_000,
        max_tx_size: 16_384,
        fee: match rules.fee_rule {
            FeeRuleKind::FeeRate => FeeParams::FeeRate {
                min_fee_rate: Amount(1_000_000),
            },
            FeeRuleKind::BaseFee => FeeParams::BaseFee {
                initial_base_fee: Amount(1_000_000_000),
                min_base_fee: Amount(1_000),
            },
        },
        accounts,
        peg: None,
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
