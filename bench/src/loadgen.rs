//! The load generator: pre-signs transfers from many senders (not timed), submits them with
//! `tp_sendTransactions` in batches over several connections, and measures committed
//! transfers per second and inclusion latency from new-head notifications.
//!
//! The Ethereum form of the same run ([`presign_ethereum`], [`run_ethereum`]) sends
//! Ethereum-signed transfers as JSON-RPC batches of `eth_sendRawTransaction` and follows
//! `eth_subscribe("newHeads")` and `eth_getBlockByNumber`: standard methods only, so the same
//! client and transactions run against anvil for a like-for-like ratio.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, Subscription, SubscriptionClientT};
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClient;
use jsonrpsee::ws_client::WsClientBuilder;
use parity_scale_codec::Encode;
use primitives::crypto::{keccak256, SecretKey};
use primitives::tx::{Fee, SignedTransaction, Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes, ChainId, Hash};
use rayon::prelude::*;
use rpc_api::types::BlockSummary;
use rpc_api::types::FeeInfo;
use rpc_api::TwinpegApiClient;
use serde::Serialize;

/// Deterministic sender keys, so a genesis can prefund them: key i = keccak256(seed || i).
pub fn sender_keys(seed: &str, count: usize) -> Vec<SecretKey> {
    (0..count)
        .filter_map(|i| {
            let h = keccak256(format!("twinpeg-loadgen/{seed}/{i}").as_bytes());
            SecretKey::from_bytes(&h.0).ok()
        })
        .collect()
}

/// A fee generous enough for the whole run under the node's rule.
pub fn generous_fee(info: &FeeInfo) -> Fee {
    match info {
        FeeInfo::FeeRate { min_fee_rate } => Fee::Flat {
            fee: Amount(min_fee_rate.0.saturating_mul(400)),
        },
        FeeInfo::BaseFee { base_fee, .. } => Fee::Dynamic {
            // Room for the base fee to climb while blocks run more than half full.
            max_fee: Amount(base_fee.0.saturating_mul(1000).max(1_000_000)),
            max_tip: Amount(1),
        },
    }
}

/// One sender's pre-signed transfers, in nonce order: (hash, raw bytes).
pub type Presigned = Vec<(Hash, Bytes)>;

/// Signs `per_sender` transfers for every sender (in parallel); not part of the measurement.
pub fn presign(
    senders: &[SecretKey],
    per_sender: u64,
    chain_id: ChainId,
    fee: &Fee,
    to: Address,
) -> Vec<Presigned> {
    presign_as(senders, per_sender, chain_id, fee, to, |signed| {
        Some((signed.hash(), Bytes(signed.encode())))
    })
}

/// [`presign`], each signed transfer put in the form `wire` gives (`None` leaves it out).
fn presign_as(
    senders: &[SecretKey],
    per_sender: u64,
    chain_id: ChainId,
    fee: &Fee,
    to: Address,
    wire: impl Fn(&SignedTransaction) -> Option<(Hash, Bytes)> + Sync,
) -> Vec<Presigned> {
    senders
        .par_iter()
        .map(|k| {
            (0..per_sender)
                .filter_map(|nonce| {
                    let signed = Transaction {
                        chain_id,
                        nonce,
                        fee: fee.clone(),
                        kind: TxKind::Transfer {
                            to,
                            amount: Amount(1),
                        },
                    }
                    .sign(k);
                    wire(&signed)
                })
                .collect()
        })
        .collect()
}

/// Signs `per_sender` Ethereum-format transfers (EIP-1559 or legacy, by `fee`'s form) for every
/// sender (in parallel): (keccak256 of the raw bytes, the raw bytes).
pub fn presign_ethereum(
    senders: &[SecretKey],
    per_sender: u64,
    chain_id: ChainId,
    fee: &Fee,
    to: Address,
) -> Vec<Presigned> {
    presign_as(senders, per_sender, chain_id, fee, to, |signed| {
        let raw = primitives::eth::encode_signed(signed)?;
        Some((keccak256(&raw), Bytes(raw)))
    })
}

/// Which RPC a load speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `tp_sendTransactions`, `tp_subscribeNewHeads`, `tp_getBlockByNumber`.
    Native,
    /// Batches of `eth_sendRawTransaction`, `eth_subscribe("newHeads")`, `eth_getBlockByNumber`.
    Ethereum,
}

/// New heads, in either protocol's shape.
enum Heads {
    Native(Subscription<BlockSummary>),
    Ethereum(Subscription<serde_json::Value>),
}

impl Heads {
    async fn open(ws: &WsClient, protocol: Protocol) -> anyhow::Result<Self> {
        Ok(match protocol {
            Protocol::Native => Heads::Native(ws.subscribe_new_heads().await?),
            Protocol::Ethereum => Heads::Ethereum(
                ws.subscribe("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe")
                    .await?,
            ),
        })
    }

    /// The next head's number and whether it may carry transactions; `None` when the stream ended.
    async fn next(&mut self) -> Option<(u64, bool)> {
        match self {
            Heads::Native(s) => match s.next().await? {
                Ok(h) => Some((h.number, h.tx_count > 0)),
                Err(_) => None,
            },
            Heads::Ethereum(s) => match s.next().await? {
                Ok(h) => Some((quantity(&h["number"])?, true)),
                Err(_) => None,
            },
        }
    }
}

fn quantity(v: &serde_json::Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// Submits `raws`; per entry, `None` if accepted, else the refusal's reason.
async fn submit(
    client: &HttpClient,
    protocol: Protocol,
    raws: Vec<Bytes>,
) -> anyhow::Result<Vec<Option<String>>> {
    match protocol {
        Protocol::Native => Ok(client
            .send_transactions(raws)
            .await?
            .into_iter()
            .map(|r| r.error.map(|e| e.reason))
            .collect()),
        Protocol::Ethereum => {
            let mut batch = BatchRequestBuilder::new();
            for raw in &raws {
                batch.insert("eth_sendRawTransaction", rpc_params![raw])?;
            }
            let answers = client.batch_request::<serde_json::Value>(batch).await?;
            Ok(answers
                .into_iter()
                .map(|r| {
                    r.err().map(|e| {
                        // Ours carries a stable reason; another node only its message.
                        e.data()
                            .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                            .and_then(|d| d["reason"].as_str().map(str::to_string))
                            .unwrap_or_else(|| e.message().to_string())
                    })
                })
                .collect())
        }
    }
}

/// Whether a refusal means "busy: send again".
fn is_busy(reason: &str) -> bool {
    matches!(reason, "pool_full" | "sender_full" | "txpool is full")
}

/// The transaction hashes of block `number`.
async fn block_hashes(
    client: &HttpClient,
    protocol: Protocol,
    number: u64,
) -> anyhow::Result<Option<Vec<Hash>>> {
    match protocol {
        Protocol::Native => Ok(client
            .block_by_number(number, None)
            .await?
            .map(|b| b.transaction_hashes)),
        Protocol::Ethereum => {
            let block: Option<serde_json::Value> = client
                .request(
                    "eth_getBlockByNumber",
                    rpc_params![format!("0x{number:x}"), false],
                )
                .await?;
            Ok(block.map(|b| {
                b["transactions"]
                    .as_array()
                    .map(|txs| {
                        txs.iter()
                            .filter_map(|t| t.as_str()?.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default()
            }))
        }
    }
}

/// How to submit.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The node's HTTP JSON-RPC URL.
    pub http: String,
    /// Its WebSocket URL (for new heads).
    pub ws: String,
    /// Transactions per `tp_sendTransactions` call.
    pub batch: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Give up waiting for inclusion after this long.
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// Transactions sent.
    pub submitted: u64,
    /// Accepted by the node.
    pub accepted: u64,
    /// Refused by the node (after retries of "busy").
    pub refused: u64,
    /// Seen in committed blocks.
    pub committed: u64,
    /// Blocks that carried them.
    pub blocks: u64,
    /// Seconds from the first submission to the last inclusion.
    pub seconds: f64,
    /// Committed transfers per second.
    pub tps: f64,
    /// Inclusion latency (submitted -> seen in a committed block), median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Refusal reasons seen, with counts.
    pub refusals: HashMap<String, u64>,
}

/// A JSON-RPC client for batches of a whole load (hundreds of MiB either way, minutes to answer).
fn http_client(url: &str) -> anyhow::Result<HttpClient> {
    Ok(HttpClientBuilder::default()
        .max_request_size(256 << 20)
        .max_response_size(256 << 20)
        .request_timeout(Duration::from_secs(120))
        .build(url)?)
}

/// Submits everything with `tp_sendTransactions` and waits until it is committed (or the timeout).
pub async fn run(cfg: &LoadConfig, load: Vec<Presigned>) -> anyhow::Result<LoadResult> {
    run_over(cfg, load, Protocol::Native).await
}

/// [`run`] over the standard Ethereum methods (`cfg.batch` is the JSON-RPC batch length).
pub async fn run_ethereum(cfg: &LoadConfig, load: Vec<Presigned>) -> anyhow::Result<LoadResult> {
    run_over(cfg, load, Protocol::Ethereum).await
}

async fn run_over(
    cfg: &LoadConfig,
    load: Vec<Presigned>,
    protocol: Protocol,
) -> anyhow::Result<LoadResult> {
    let total: usize = load.iter().map(Vec::len).sum();
    let submitted_at: Arc<Mutex<HashMap<Hash, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let ws = WsClientBuilder::default()
        .max_response_size(256 << 20)
        .build(&cfg.ws)
        .await?;
    let mut heads = Heads::open(&ws, protocol).await?;
    let http = http_client(&cfg.http)?;

    // Each connection owns a slice of the senders, so each sender's nonces stay in order.
    let connections = cfg.connections.max(1);
    let mut per_conn: Vec<Vec<Presigned>> = vec![Vec::new(); connections];
    for (i, s) in load.into_iter().enumerate() {
        per_conn[i % connections].push(s);
    }
    let start = Instant::now();
    let refusals: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for senders in per_conn {
        let client = http_client(&cfg.http)?;
        let batch = cfg.batch.max(1);
        let submitted_at = submitted_at.clone();
        let refusals = refusals.clone();
        tasks.push(tokio::spawn(async move {
            // Interleave senders by nonce: lowest nonces of every sender first.
            let depth = senders.iter().map(Vec::len).max().unwrap_or(0);
            let mut order: Vec<(Hash, Bytes)> = Vec::new();
            for n in 0..depth {
                for s in &senders {
                    if let Some(t) = s.get(n) {
                        order.push(t.clone());
                    }
                }
            }
            let (mut accepted, mut refused) = (0u64, 0u64);
            for chunk in order.chunks(batch) {
                let mut pending: Vec<(Hash, Bytes)> = chunk.to_vec();
                for _attempt in 0..200 {
                    let now = Instant::now();
                    if let Ok(mut m) = submitted_at.lock() {
                        for (h, _) in &pending {
                            m.entry(*h).or_insert(now);
                        }
                    }
                    let raws: Vec<Bytes> = pending.iter().map(|(_, b)| b.clone()).collect();
                    let results = match submit(&client, protocol, raws).await {
                        Ok(r) => r,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let mut retry = Vec::new();
                    for (r, t) in results.into_iter().zip(pending) {
                        match r {
                            None => accepted += 1,
                            Some(reason) if is_busy(&reason) => retry.push(t),
                            Some(reason) => {
                                refused += 1;
                                if let Ok(mut m) = refusals.lock() {
                                    *m.entry(reason).or_default() += 1;
                                }
                            }
                        }
                    }
                    if retry.is_empty() {
                        break;
                    }
                    pending = retry;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (accepted, refused)
        }));
    }

    // Follow committed blocks until everything accepted is in, or the timeout.
    let mut latencies: Vec<f64> = Vec::with_capacity(total);
    let mut blocks = 0u64;
    let mut last_inclusion = start;
    let mut done_submitting = false;
    let mut accepted_total = 0u64;
    let mut refused_total = 0u64;
    let deadline = start + cfg.timeout;
    loop {
        if !done_submitting && tasks.iter().all(|t| t.is_finished()) {
            for t in tasks.drain(..) {
                let (a, r) = t.await?;
                accepted_total += a;
                refused_total += r;
            }
            done_submitting = true;
        }
        if done_submitting && latencies.len() as u64 >= accepted_total {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        let (number, may_carry) =
            match tokio::time::timeout(Duration::from_secs(5), heads.next()).await {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(_) => continue,
            };
        if !may_carry {
            continue;
        }
        let seen = Instant::now();
        let Some(hashes) = block_hashes(&http, protocol, number).await? else {
            continue;
        };
        let mut hit = 0;
        if let Ok(m) = submitted_at.lock() {
            for h in &hashes {
                if let Some(t) = m.get(h) {
                    latencies.push(seen.duration_since(*t).as_secs_f64() * 1000.0);
                    hit += 1;
                }
            }
        }
        if hit > 0 {
            blocks += 1;
            last_inclusion = seen;
        }
    }
    for t in tasks {
        let (a, r) = t.await?;
        accepted_total += a;
        refused_total += r;
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i.min(latencies.len() - 1)]
    };
    let seconds = last_inclusion.duration_since(start).as_secs_f64();
    let committed = latencies.len() as u64;
    Ok(LoadResult {
        submitted: total as u64,
        accepted: accepted_total,
        refused: refused_total,
        committed,
        blocks,
        seconds,
        tps: if seconds > 0.0 {
            committed as f64 / seconds
        } else {
            0.0
        },
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        refusals: refusals.lock().map(|m| m.clone()).unwrap_or_default(),
    })
}
