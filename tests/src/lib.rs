//! Helpers for end-to-end tests: start the real node binaries on free loopback ports with
//! temporary data dirs, wait on conditions (never fixed sleeps), and always clean up.

pub mod chaos;
pub mod member;
pub mod netns;
pub mod process;
pub mod proxy;

pub use member::Member;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use parity_scale_codec::Encode;
use primitives::block::Receipt;
use primitives::crypto::SecretKey;
use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
use primitives::peg::{PegParams, PegTerms};
use primitives::tx::{Fee, Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes};
use process::spawn_serving;
use rpc_api::types::FeeInfo;
use rpc_api::types::{BlockSummary, TxLookup, TxStatus, TxView};
use rpc_api::TwinpegApiClient;
use service::endpoints::NodeEndpoints;

/// Generous deadline for anything a loaded 2-core machine must eventually do.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Which node binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    /// `mainchain`: fee-rate fees.
    Main,
    /// `sidechain`: base fee + tip.
    Side,
}

impl ChainKind {
    /// The binary name.
    pub fn binary(self) -> &'static str {
        match self {
            ChainKind::Main => "mainchain",
            ChainKind::Side => "sidechain",
        }
    }
}

/// Directory holding the workspace's built binaries: `target/<profile>` next to this test
/// binary (in its `deps`) or this program (the `chaos` binary sits beside the others).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        dir
    }
}

/// Path to a workspace binary; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: run `cargo build --workspace --bins` first (`make test` does)",
        p.display()
    );
    p
}

/// A development account from the well-known mnemonic.
pub fn dev_key(index: usize) -> SecretKey {
    #[derive(serde::Deserialize)]
    struct File {
        accounts: Vec<Acct>,
    }
    #[derive(serde::Deserialize)]
    struct Acct {
        private_key: String,
    }
    let f: File = serde_json::from_str(include_str!("../testdata/dev-accounts.json"))
        .expect("bundled dev accounts parse");
    SecretKey::from_hex(&f.accounts[index].private_key).expect("bundled dev key is valid")
}

/// A genesis for tests: one authority, dev accounts 0..5 with 1,000 coins each.
pub fn test_genesis(kind: ChainKind, authority: Address, block_time_ms: u64) -> Genesis {
    Genesis {
        chain_id: match kind {
            ChainKind::Main => 298081,
            ChainKind::Side => 298082,
        },
        block_time_ms,
        timestamp_ms: 0,
        authorities: vec![authority],
        max_block_weight: 4_000_000,
        max_tx_size: 16_384,
        fee: match kind {
            ChainKind::Main => FeeParams::FeeRate {
                min_fee_rate: Amount(1_000_000),
            },
            ChainKind::Side => FeeParams::BaseFee {
                initial_base_fee: Amount(1_000_000_000),
                min_base_fee: Amount(1_000),
            },
        },
        accounts: (0..5)
            .map(|i| GenesisAccount {
                address: dev_key(i).address(),
                balance: Amount::coins(1000),
            })
            .collect(),
        peg: None,
    }
}

/// [`test_genesis`] with these authorities (leader order = key order).
pub fn test_genesis_of(kind: ChainKind, keys: &[&SecretKey], block_time_ms: u64) -> Genesis {
    let mut g = test_genesis(kind, keys[0].address(), block_time_ms);
    g.authorities = keys.iter().map(|k| k.address()).collect();
    g
}

/// Peg parameters for tests: small confirmations, limits in whole coins.
pub fn test_peg(members: &[Address], threshold: u32) -> PegParams {
    PegParams {
        members: members.to_vec(),
        terms: PegTerms {
            threshold,
            main_confirmations: 3,
            side_confirmations: 2,
            min_amount: Amount::coins(1),
            max_amount: Amount::coins(100),
            daily_limit_deposits: Amount::coins(1000),
            daily_limit_withdrawals: Amount::coins(1000),
            peg_out_fee: Amount(Amount::COIN / 10),
            fee_recipient: SecretKey::from_hex(
                "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
            )
            .map(|k| k.address())
            .unwrap_or_default(),
        },
        counterpart_genesis: primitives::types::Hash::ZERO,
    }
}

/// `bridge audit` of the chains at these node URLs: whether it passed, and what it printed.
pub fn bridge_audit(main_rpc: &str, side_rpc: &str) -> (bool, String) {
    let out = Command::new(bin("bridge"))
        .args(["audit", "--main-rpc", main_rpc, "--side-rpc", side_rpc])
        .output()
        .expect("bridge audit runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A linked pair of pegged genesis files: the mainchain prefunds dev accounts 0..5, the
/// sidechain starts with supply 0.
pub fn pegged_geneses(
    main_authority: Address,
    side_authority: Address,
    peg: PegParams,
    main_block_ms: u64,
    side_block_ms: u64,
) -> (Genesis, Genesis) {
    pegged_geneses_with(
        &[main_authority],
        &[side_authority],
        peg,
        main_block_ms,
        side_block_ms,
    )
}

/// [`pegged_geneses`] with these authority sets (leader order), e.g. four mainchain
/// authorities for finality tests.
pub fn pegged_geneses_with(
    main_authorities: &[Address],
    side_authorities: &[Address],
    peg: PegParams,
    main_block_ms: u64,
    side_block_ms: u64,
) -> (Genesis, Genesis) {
    let first = |a: &[Address]| a.first().copied().unwrap_or_default();
    let mut main = test_genesis(ChainKind::Main, first(main_authorities), main_block_ms);
    let mut side = test_genesis(ChainKind::Side, first(side_authorities), side_block_ms);
    main.authorities = main_authorities.to_vec();
    side.authorities = side_authorities.to_vec();
    side.accounts.clear();
    main.peg = Some(peg.clone());
    side.peg = Some(peg);
    primitives::genesis::link_geneses(&mut main, &mut side);
    (main, side)
}

/// A federation and the two chains it links, before anything starts: three fresh member keys
/// with threshold 2 ([`test_peg`]), each chain's authority key, and the linked geneses.
pub struct PegSetup {
    /// The members' keys, in member order.
    pub members: Vec<SecretKey>,
    /// The mainchain authority.
    pub main_authority: SecretKey,
    /// The sidechain authority.
    pub side_authority: SecretKey,
    /// The mainchain genesis.
    pub main: Genesis,
    /// The sidechain genesis.
    pub side: Genesis,
}

impl PegSetup {
    /// Blocks every `main_block_ms` on the mainchain and `side_block_ms` on the sidechain.
    pub fn new(main_block_ms: u64, side_block_ms: u64) -> Self {
        let members: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let addrs: Vec<Address> = members.iter().map(SecretKey::address).collect();
        let (main_authority, side_authority) = (SecretKey::random(), SecretKey::random());
        let (main, side) = pegged_geneses(
            main_authority.address(),
            side_authority.address(),
            test_peg(&addrs, 2),
            main_block_ms,
            side_block_ms,
        );
        Self {
            members,
            main_authority,
            side_authority,
            main,
            side,
        }
    }

    /// The peg domain the members sign under.
    pub fn domain(&self) -> primitives::types::Hash {
        primitives::peg::domain(&self.main.base_hash(), &self.side.base_hash())
    }
}

/// A node process with its own data dir; killed on drop.
pub struct TestNode {
    /// Which chain.
    pub kind: ChainKind,
    /// Holds the data dir, key and logs.
    pub dir: tempfile::TempDir,
    /// The authority key, if it produces.
    pub authority: Option<SecretKey>,
    /// `http://127.0.0.1:port`.
    pub http: String,
    /// `ws://127.0.0.1:port`.
    pub ws: String,
    /// The node's p2p multiaddrs (with `/p2p/<peer id>`), loopback first.
    pub p2p: Vec<String>,
    /// Bootstrap peers given at every start.
    pub bootstrap: Vec<String>,
    /// The network namespace host it runs on (loopback of the test's namespace if none).
    pub host: Option<netns::Host>,
    child: Option<Child>,
    /// How many times the process was started.
    pub starts: u32,
    /// Extra environment for every start (e.g. `SIDECHAIN_CHECKPOINT_INTERVAL`); tests may
    /// change it between restarts.
    pub env: Vec<(String, String)>,
    /// On a namespace host, restarts listen on the ports of the first start, so the node's
    /// URL and p2p address stay what its members and peers were given.
    pub stable_ports: bool,
}

impl TestNode {
    /// Writes genesis and key, runs `init`, then starts the node.
    pub fn start(kind: ChainKind, genesis: &Genesis, authority: Option<SecretKey>) -> Result<Self> {
        Self::start_with_peers(kind, genesis, authority, &[])
    }

    /// Like [`TestNode::start`], dialing `bootstrap` peers.
    pub fn start_with_peers(
        kind: ChainKind,
        genesis: &Genesis,
        authority: Option<SecretKey>,
        bootstrap: &[String],
    ) -> Result<Self> {
        Self::prepare(None, kind, genesis, authority, bootstrap)?.spawned()
    }

    /// Writes genesis and key and runs `init`, without starting the node, which will run on
    /// namespace host `host` (its address, its network) if one is given: set
    /// [`TestNode::env`] first if need be, then [`TestNode::spawn`] or [`TestNode::spawned`].
    pub fn prepare(
        host: Option<netns::Host>,
        kind: ChainKind,
        genesis: &Genesis,
        authority: Option<SecretKey>,
        bootstrap: &[String],
    ) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix(kind.binary()).tempdir()?;
        let genesis_path = dir.path().join("genesis.toml");
        std::fs::write(&genesis_path, toml::to_string(genesis)?)?;
        if let Some(k) = &authority {
            p2p::write_key_file(&dir.path().join("authority.key"), k)?;
        }
        let out = Command::new(bin(kind.binary()))
            .args(["init", "--genesis"])
            .arg(&genesis_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()?;
        if !out.status.success() {
            bail!("init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(TestNode {
            kind,
            dir,
            authority,
            http: String::new(),
            ws: String::new(),
            p2p: Vec::new(),
            bootstrap: bootstrap.to_vec(),
            host,
            child: None,
            starts: 0,
            env: Vec::new(),
            stable_ports: false,
        })
    }

    /// The node's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process (again) and waits until it wrote its endpoints.
    pub fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        let (rpc_port, p2p_port) = match (self.stable_ports, &self.host) {
            (true, Some(_)) => (
                port_of(&self.http).unwrap_or(0),
                self.p2p.first().and_then(|a| tcp_port_of(a)).unwrap_or(0),
            ),
            _ => (0, 0),
        };
        // In a namespace, `ip netns exec` enters it and execs the node: same pid.
        let (mut cmd, addr) = match &self.host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &h.netns])
                    .arg(bin(self.kind.binary()));
                (c, h.ip.as_str())
            }
            None => (Command::new(bin(self.kind.binary())), "127.0.0.1"),
        };
        cmd.arg("run")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--rpc-addr", &format!("{addr}:{rpc_port}")])
            .args(["--p2p-listen", &format!("/ip4/{addr}/tcp/{p2p_port}")])
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if self.authority.is_some() {
            cmd.arg("--authority-key")
                .arg(self.dir.path().join("authority.key"));
        }
        for b in &self.bootstrap {
            cmd.arg("--bootstrap").arg(b);
        }
        let (child, endpoints) = spawn_serving::<NodeEndpoints>(
            self.kind.binary(),
            &mut cmd,
            &self.data_dir(),
            &self.log_path(),
            DEADLINE,
        )?;
        self.child = Some(child);
        self.http = endpoints.rpc_http;
        self.ws = endpoints.rpc_ws;
        self.p2p = endpoints.p2p;
        Ok(())
    }

    /// [`TestNode::spawn`], returning the started node.
    pub fn spawned(mut self) -> Result<Self> {
        self.spawn()?;
        Ok(self)
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        crate::process::kill9(&mut self.child);
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The node's first p2p address, for others to bootstrap from.
    pub fn p2p_addr(&self) -> String {
        self.p2p.first().cloned().unwrap_or_default()
    }

    /// Where the node's stderr goes, across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// An HTTP JSON-RPC client.
    pub fn client(&self) -> HttpClient {
        HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .build(&self.http)
            .expect("valid URL")
    }

    /// A WebSocket JSON-RPC client.
    pub async fn ws_client(&self) -> Result<WsClient> {
        Ok(WsClientBuilder::default().build(&self.ws).await?)
    }

    /// Waits until the head is at least `height`.
    pub async fn wait_for_height(&self, height: u64) -> Result<u64> {
        let c = self.client();
        eventually(
            &format!("{} height {height}", self.kind.binary()),
            || async {
                c.head()
                    .await
                    .ok()
                    .filter(|h| h.number >= height)
                    .map(|h| h.number)
            },
        )
        .await
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The port of `http://host:port` (or `host:port`).
pub fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// The TCP port of a multiaddr such as `/ip4/10.0.0.2/tcp/30333/p2p/12D3...`.
pub fn tcp_port_of(multiaddr: &str) -> Option<u16> {
    let mut parts = multiaddr.split('/');
    parts.by_ref().find(|p| *p == "tcp")?;
    parts.next()?.parse().ok()
}

/// A fee the node's current rule accepts with room to spare (a peg transaction or a
/// transfer stays under 400 bytes; the base fee may rise 4x while it travels).
pub async fn fee_for(c: &HttpClient) -> Fee {
    try_fee_for(c).await.expect("fee info")
}

/// [`fee_for`], or `None` when the node does not answer (a harness that kills nodes).
pub async fn try_fee_for(c: &HttpClient) -> Option<Fee> {
    Some(match c.fee_info().await.ok()? {
        FeeInfo::FeeRate { min_fee_rate } => Fee::Flat {
            fee: Amount(min_fee_rate.0 * 400),
        },
        FeeInfo::BaseFee {
            suggested_max_fee,
            suggested_max_tip,
            ..
        } => Fee::Dynamic {
            max_fee: Amount(suggested_max_fee.0 * 4),
            max_tip: suggested_max_tip,
        },
    })
}

/// A signed, encoded transaction of any kind, ready for `send_transaction`.
pub fn signed_raw(key: &SecretKey, chain_id: u64, nonce: u64, fee: Fee, kind: TxKind) -> Bytes {
    Bytes(
        Transaction {
            chain_id,
            nonce,
            fee,
            kind,
        }
        .sign(key)
        .encode(),
    )
}

/// Waits until `h` is in a block (success or failure) and returns its lookup.
pub async fn wait_included(c: &HttpClient, h: primitives::types::Hash) -> Result<TxLookup> {
    eventually(&format!("inclusion of {h}"), || async {
        c.transaction(h)
            .await
            .ok()
            .flatten()
            .filter(|t| t.status != TxStatus::Pending)
    })
    .await
}

/// The balance of `a` at the head.
pub async fn balance(c: &HttpClient, a: Address) -> Amount {
    c.account(a).await.expect("account").balance
}

/// Waits until `h` is in a block and asserts it succeeded.
pub async fn wait_success(c: &HttpClient, h: primitives::types::Hash) {
    let t = wait_included(c, h).await.expect("included");
    assert_eq!(t.status, TxStatus::Success, "{h}");
}

/// Sends `kind` from `key` at `nonce` with a fee the node accepts ([`fee_for`]), waits until
/// it succeeded in a block, and returns its hash.
pub async fn send_success(
    c: &HttpClient,
    key: &SecretKey,
    chain_id: u64,
    nonce: u64,
    kind: TxKind,
) -> primitives::types::Hash {
    let raw = signed_raw(key, chain_id, nonce, fee_for(c).await, kind);
    let h = c.send_transaction(raw).await.expect("accepted");
    wait_success(c, h).await;
    h
}

/// The refusal ([`rpc_refusal`]) of sending `raw`; panics if the node accepts it.
pub async fn send_refused(c: &HttpClient, raw: Bytes) -> (i32, String) {
    rpc_refusal(c.send_transaction(raw).await.expect_err("refused"))
}

/// The JSON-RPC error code and `data.reason` of a refused call; panics on any other error.
pub fn rpc_refusal(e: jsonrpsee::core::client::Error) -> (i32, String) {
    match e {
        jsonrpsee::core::client::Error::Call(obj) => {
            let reason = obj
                .data()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                .and_then(|v| v["reason"].as_str().map(String::from))
                .unwrap_or_default();
            (obj.code(), reason)
        }
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

/// A signed, encoded transfer, ready for `send_transaction`.
pub fn transfer(
    key: &SecretKey,
    chain_id: u64,
    nonce: u64,
    to: Address,
    amount: Amount,
    fee: Fee,
) -> Bytes {
    signed_raw(key, chain_id, nonce, fee, TxKind::Transfer { to, amount })
}

/// Polls `f` until it yields `Some`, or fails after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, DEADLINE, f).await
}

/// Polls `f` until it yields `Some`, or fails after `deadline`.
pub async fn eventually_within<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every transaction in canonical blocks `1..=height`, in order, with its block's header and
/// its receipt.
pub async fn included_transactions(
    c: &HttpClient,
    height: u64,
) -> Result<Vec<(BlockSummary, TxView, Receipt)>> {
    let mut out = Vec::new();
    for n in 1..=height {
        let b = c
            .block_by_number(n, Some(true))
            .await?
            .with_context(|| format!("block {n}"))?;
        for t in b.transactions.unwrap_or_default() {
            let r = c
                .transaction(t.hash)
                .await?
                .with_context(|| format!("transaction {} of block {n}", t.hash))?
                .receipt
                .with_context(|| format!("receipt of {}", t.hash))?;
            out.push((b.summary.clone(), t, r));
        }
    }
    Ok(out)
}

/// A `wallet` command that ignores the caller's `WALLET_*` settings, so a developer's own
/// keystore, config or endpoints cannot leak into a test.
pub fn wallet_command() -> Command {
    let mut cmd = Command::new(bin("wallet"));
    for var in [
        "WALLET_PASSWORD",
        "WALLET_KEYSTORE",
        "WALLET_CONFIG",
        "WALLET_MAIN_RPC",
        "WALLET_SIDE_RPC",
        "WALLET_DEVNET_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}
