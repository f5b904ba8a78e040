//! Helpers for end-to-end tests: start the real node binaries on free loopback ports with
//! temporary data dirs, wait on conditions (never fixed sleeps), and always clean up.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chain::crypto::SecretKey;
use chain::fee::FeeInfo;
use chain::genesis::{FeeParams, Genesis, GenesisAccount};
use chain::peg::PegParams;
use chain::rpc::TwinpegApiClient;
use chain::tx::Fee;
use chain::types::{Address, Amount};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

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

/// Directory holding the workspace's built binaries (`target/debug` next to this test binary).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
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
            ChainKind::Main => 1001,
            ChainKind::Side => 2002,
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

/// Peg parameters for tests: small confirmations, limits in whole coins.
pub fn test_peg(members: &[Address], threshold: u32) -> PegParams {
    PegParams {
        members: members.to_vec(),
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
        counterpart_genesis: chain::types::Hash::ZERO,
    }
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
    let mut main = test_genesis(ChainKind::Main, main_authority, main_block_ms);
    let mut side = test_genesis(ChainKind::Side, side_authority, side_block_ms);
    side.accounts.clear();
    main.peg = Some(peg.clone());
    side.peg = Some(peg);
    chain::peg::link_geneses(&mut main, &mut side);
    (main, side)
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
    child: Option<Child>,
    /// How many times the process was started.
    pub starts: u32,
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
        let dir = tempfile::Builder::new().prefix(kind.binary()).tempdir()?;
        let genesis_path = dir.path().join("genesis.toml");
        std::fs::write(&genesis_path, toml::to_string(genesis)?)?;
        if let Some(k) = &authority {
            chain::node::write_key_file(&dir.path().join("authority.key"), k)?;
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
        let mut node = TestNode {
            kind,
            dir,
            authority,
            http: String::new(),
            ws: String::new(),
            p2p: Vec::new(),
            bootstrap: bootstrap.to_vec(),
            child: None,
            starts: 0,
        };
        node.spawn()?;
        Ok(node)
    }

    /// The node's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process (again) and waits until it wrote its endpoints.
    pub fn spawn(&mut self) -> Result<()> {
        let endpoints = self.data_dir().join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("node.log"))?;
        let mut cmd = Command::new(bin(self.kind.binary()));
        cmd.arg("run")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--rpc-addr", "127.0.0.1:0"])
            .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if self.authority.is_some() {
            cmd.arg("--authority-key")
                .arg(self.dir.path().join("authority.key"));
        }
        for b in &self.bootstrap {
            cmd.arg("--bootstrap").arg(b);
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&endpoints) {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                if v["pid"].as_u64() == Some(pid as u64) {
                    self.http = v["rpc_http"].as_str().context("rpc_http")?.to_string();
                    self.ws = v["rpc_ws"].as_str().context("rpc_ws")?.to_string();
                    self.p2p = v["p2p"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "node exited with {status} before serving; log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                bail!("node did not start in time; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
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

/// A fee the node's current rule accepts with room to spare (a peg transaction or a
/// transfer stays under 400 bytes; the base fee may rise 4x while it travels).
pub async fn fee_for(c: &HttpClient) -> Fee {
    match c.fee_info().await.expect("fee info") {
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
    }
}

/// Polls `f` until it yields `Some`, or fails after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > DEADLINE {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
