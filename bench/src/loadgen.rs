//! The load generator: pre-signs transfers from many senders (not timed), submits them with
//! `tp_sendTransactions` in batches over several connections, and measures committed
//! transfers per second and inclusion latency from new-head notifications.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::Subscription;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::WsClientBuilder;
use parity_scale_codec::Encode;
use primitives::crypto::{keccak256, SecretKey};
use primitives::tx::{Fee, Transaction, TxKind};
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
    senders
        .par_iter()
        .map(|k| {
            (0..per_sender)
                .map(|nonce| {
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
                    (signed.hash(), Bytes(signed.encode()))
                })
                .collect()
        })
        .collect()
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

/// Submits everything and waits until it is committed (or the timeout).
pub async fn run(cfg: &LoadConfig, load: Vec<Presigned>) -> anyhow::Result<LoadResult> {
    let total: usize = load.iter().map(Vec::len).sum();
    let submitted_at: Arc<Mutex<HashMap<Hash, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let ws = WsClientBuilder::default()
        .max_response_size(256 << 20)
        .build(&cfg.ws)
        .await?;
    let mut heads: Subscription<BlockSummary> = ws.subscribe_new_heads().await?;
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
                    let results = match client.send_transactions(raws).await {
                        Ok(r) => r,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let mut retry = Vec::new();
                    for (r, t) in results.into_iter().zip(pending) {
                        match r.error {
                            None => accepted += 1,
                            Some(e) if e.reason == "pool_full" || e.reason == "sender_full" => {
                                retry.push(t)
                            }
                            Some(e) => {
                                refused += 1;
                                if let Ok(mut m) = refusals.lock() {
                                    *m.entry(e.reason).or_default() += 1;
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
        let head = match tokio::time::timeout(Duration::from_secs(5), heads.next()).await {
            Ok(Some(Ok(h))) => h,
            Ok(_) => break,
            Err(_) => continue,
        };
        if head.tx_count == 0 {
            continue;
        }
        let seen = Instant::now();
        let Some(block) = http.block_by_number(head.number, None).await? else {
            continue;
        };
        let mut hit = 0;
        if let Ok(m) = submitted_at.lock() {
            for h in &block.transaction_hashes {
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
