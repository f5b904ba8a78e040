//! The Ethereum-format throughput run (`make bench`): pre-signed transfers sent as JSON-RPC
//! batches of `eth_sendRawTransaction` and followed with `eth_subscribe("newHeads")`
//! ([`loadgen::run_ethereum`]), on the sidechain (EIP-1559) and the mainchain (legacy), beside
//! the sidechain's native path with the same number of transfers, and the same client and
//! kind of transactions against anvil (foundry's devnet node, from npm) in the same run.
//!
//! anvil runs as a 1 s-block chain like the sidechain, with no block gas limit
//! (`--disable-block-gas-limit`), so it is bound by its own speed, not by a cap ours lacks.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use primitives::crypto::SecretKey;
use primitives::tx::Fee;
use primitives::types::{Address, Amount};
use rpc_api::TwinpegApiClient;
use serde::Serialize;

use crate::loadgen::{self, LoadConfig, LoadResult};
use crate::node::BenchNode;
use crate::suite::{genesis, BIG_POOL};

/// anvil's chain id.
const ANVIL_CHAIN_ID: u64 = 31337;
/// The sidechain's and anvil's block time in these runs.
const BLOCK_MS: u64 = 1000;

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct EthRun {
    /// `sidechain`, `mainchain` or `anvil`.
    pub target: String,
    /// `native` (tp_sendTransactions), `eip1559` or `legacy`.
    pub form: String,
    /// The load's measurements.
    pub load: LoadResult,
}

/// The Ethereum-format figures.
#[derive(Debug, Clone, Serialize)]
pub struct EthResults {
    /// Transfers per run (the mainchain run takes half).
    pub txs: u64,
    /// Rounds: each runs every target once, in turn, so load and noise fall on all alike.
    pub rounds: usize,
    /// Every run, in the order made.
    pub runs: Vec<EthRun>,
    /// Median committed transfers/s per target and form over the rounds.
    pub median_tps: Vec<(String, String, f64)>,
    /// anvil's version line, if it ran.
    pub anvil_version: Option<String>,
    /// Median sidechain Ethereum-format transfers/s over anvil's (goal >= 2).
    pub ratio_to_anvil: Option<f64>,
    /// Median sidechain Ethereum-format transfers/s over its native path's (goal >= 0.9).
    pub ratio_to_native: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn load_config(http: &str, ws: &str, batch: usize, connections: usize) -> LoadConfig {
    LoadConfig {
        http: http.to_string(),
        ws: ws.to_string(),
        batch,
        connections,
        timeout: Duration::from_secs(600),
    }
}

/// A price per gas no run's base fee reaches (balances cover 21000 x it many times over).
const PRICE: Amount = Amount(1_000_000_000_000);

/// One of our chains, fresh, with one authority: native or Ethereum-format load.
async fn ours(
    chain: &str,
    form: &str,
    senders: usize,
    txs: u64,
    batch: usize,
    connections: usize,
) -> Result<EthRun> {
    let authority = SecretKey::random();
    let keys = loadgen::sender_keys(chain, senders);
    let block_ms = if chain == "mainchain" { 2000 } else { BLOCK_MS };
    let g = genesis(chain, authority.address(), &keys, block_ms);
    let node = BenchNode::start(chain, &g, &authority, BIG_POOL)?;
    let per = txs.div_ceil(senders as u64);
    let to = Address([0x42; 20]);
    let cfg = load_config(&node.http, &node.ws, batch, connections);
    eprintln!("{chain}: {} {form} transfers", per * senders as u64);
    let load = match form {
        "native" => {
            let c = HttpClientBuilder::default().build(&node.http)?;
            let fee = loadgen::generous_fee(&c.fee_info().await?);
            loadgen::run(&cfg, loadgen::presign(&keys, per, g.chain_id, &fee, to)).await?
        }
        _ => {
            let fee = eth_fee(form);
            loadgen::run_ethereum(
                &cfg,
                loadgen::presign_ethereum(&keys, per, g.chain_id, &fee, to),
            )
            .await?
        }
    };
    eprintln!(
        "{chain} {form}: {} committed in {:.1} s = {:.0}/s",
        load.committed, load.seconds, load.tps
    );
    Ok(EthRun {
        target: chain.to_string(),
        form: form.to_string(),
        load,
    })
}

fn eth_fee(form: &str) -> Fee {
    if form == "legacy" {
        Fee::EthLegacy {
            gas_price: PRICE,
            gas_limit: 21_000,
        }
    } else {
        Fee::EthDynamic {
            max_fee_per_gas: PRICE,
            max_priority_fee_per_gas: Amount(1_000_000_000),
            gas_limit: 21_000,
        }
    }
}

/// A running anvil, killed on drop.
struct Anvil(Child);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// anvil with `senders` funded dev accounts (the standard mnemonic, as our dev keys).
async fn anvil_run(
    bin: &Path,
    senders: usize,
    txs: u64,
    batch: usize,
    connections: usize,
) -> Result<EthRun> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args(["--port", &port.to_string()])
        .args(["--block-time", &(BLOCK_MS / 1000).to_string()])
        .args([
            "--accounts",
            &senders.to_string(),
            "--balance",
            "1000000000",
        ])
        .arg("--disable-block-gas-limit")
        .arg("--silent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let _anvil = Anvil(child);
    let http = format!("http://127.0.0.1:{port}");
    let c = HttpClientBuilder::default().build(&http)?;
    let start = Instant::now();
    loop {
        if c.request::<String, _>("eth_chainId", rpc_params![])
            .await
            .is_ok()
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("anvil did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys: Vec<SecretKey> = (0..senders as u32)
        .map(primitives::dev::dev_key)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("dev key: {e}"))?;
    let per = txs.div_ceil(senders as u64);
    eprintln!("anvil: {} eip1559 transfers", per * senders as u64);
    let load = loadgen::run_ethereum(
        &load_config(&http, &format!("ws://127.0.0.1:{port}"), batch, connections),
        loadgen::presign_ethereum(
            &keys,
            per,
            ANVIL_CHAIN_ID,
            &eth_fee("eip1559"),
            Address([0x42; 20]),
        ),
    )
    .await?;
    eprintln!(
        "anvil: {} committed in {:.1} s = {:.0}/s",
        load.committed, load.seconds, load.tps
    );
    Ok(EthRun {
        target: "anvil".into(),
        form: "eip1559".into(),
        load,
    })
}

/// Where the test tools' install script puts anvil, relative to the workspace.
pub fn default_anvil() -> PathBuf {
    PathBuf::from("target/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// `rounds` times in turn: the sidechain native, sidechain EIP-1559, mainchain legacy (half the
/// transfers), then anvil if `anvil` exists; medians over the rounds.
pub async fn run(
    txs: u64,
    rounds: usize,
    senders: usize,
    batch: usize,
    connections: usize,
    anvil: &Path,
) -> Result<EthResults> {
    let anvil_version = if anvil.exists() {
        Command::new(anvil)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_string))
    } else {
        eprintln!(
            "{} not found: no anvil run (`tests/tools/install.sh` installs it)",
            anvil.display()
        );
        None
    };
    let mut runs = Vec::new();
    for round in 1..=rounds.max(1) {
        eprintln!("ethereum: round {round} of {rounds}");
        runs.push(ours("sidechain", "native", senders, txs, batch, connections).await?);
        runs.push(ours("sidechain", "eip1559", senders, txs, batch, connections).await?);
        runs.push(ours("mainchain", "legacy", senders, txs / 2, batch, connections).await?);
        if anvil_version.is_some() {
            runs.push(anvil_run(anvil, senders, txs, batch, connections).await?);
        }
    }
    let tps = |t: &str, f: &str| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.target == t && r.form == f)
            .map(|r| r.load.tps)
            .collect();
        (!v.is_empty()).then(|| median(v))
    };
    let median_tps: Vec<(String, String, f64)> = [
        ("sidechain", "native"),
        ("sidechain", "eip1559"),
        ("mainchain", "legacy"),
        ("anvil", "eip1559"),
    ]
    .iter()
    .filter_map(|(t, f)| tps(t, f).map(|m| (t.to_string(), f.to_string(), m)))
    .collect();
    let side = tps("sidechain", "eip1559").unwrap_or(0.0);
    let native = tps("sidechain", "native").unwrap_or(0.0);
    Ok(EthResults {
        txs,
        rounds,
        ratio_to_anvil: tps("anvil", "eip1559")
            .filter(|a| *a > 0.0)
            .map(|a| side / a),
        ratio_to_native: if native > 0.0 { side / native } else { 0.0 },
        anvil_version,
        median_tps,
        runs,
    })
}
