//! Finality figures. Lag (how far the last final block is behind the head) on four authorities
//! per chain, each its own release process, idle and while the chain takes a transfer load; and
//! what finality costs in throughput: one authority with finality voting on and off
//! (`finality_voting`), alternated in the same run, medians of three each.
//!
//! Lag is sampled every 100 ms from `tp_finalityStatus`: in blocks, head minus final at each
//! sample; in ms, per block, from the first sample that saw it as the head to the first that
//! saw it final (so a block produced late under load does not count its production delay as
//! finality's).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use primitives::crypto::SecretKey;
use primitives::types::Address;
use rpc_api::TwinpegApiClient;
use serde::Serialize;

use crate::loadgen::{self, LoadConfig};
use crate::node::{start_authorities, BenchNode};
use primitives::genesis::Genesis;

/// Lag percentiles over one sampling window.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    /// Samples taken.
    pub samples: usize,
    /// Median lag in blocks.
    pub p50_blocks: u64,
    /// 99th percentile in blocks.
    pub p99_blocks: u64,
    /// Median time from a block being seen as the head to it being seen final, ms.
    pub p50_ms: u64,
    /// 99th percentile, ms.
    pub p99_ms: u64,
    /// Blocks the ms figures cover.
    pub blocks: usize,
    /// Samples that found the current instance past round 0 (a round was lost).
    pub samples_past_round_0: usize,
}

/// One chain's lag, idle and loaded.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLag {
    /// `mainchain` or `sidechain`.
    pub chain: String,
    /// Block time, ms.
    pub block_time_ms: u64,
    /// Authorities (each its own process).
    pub authorities: usize,
    /// With no transactions.
    pub idle: Lag,
    /// While `load_txs` transfers are submitted and committed.
    pub loaded: Lag,
    /// Transfers in the load.
    pub load_txs: u64,
    /// Their committed rate, per second.
    pub load_tps: f64,
}

/// Throughput with finality voting on and off, same node setup, same run.
#[derive(Debug, Clone, Serialize)]
pub struct OnOff {
    /// Transfers per run.
    pub txs: u64,
    /// Committed transfers/s of each run with voting on.
    pub on_tps: Vec<f64>,
    /// Committed transfers/s of each run with voting off.
    pub off_tps: Vec<f64>,
    /// Median on / median off.
    pub ratio: f64,
}

/// The finality section of the results.
#[derive(Debug, Clone, Serialize)]
pub struct FinalityResults {
    /// Per chain.
    pub lag: Vec<ChainLag>,
    /// The sidechain's throughput with finality on and off.
    pub on_off: OnOff,
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

fn now_ms() -> u64 {
    service::clock::now_ms()
}

/// Samples the lag of `c` every 100 ms until `stop` says so (checked between samples).
async fn sample(c: &HttpClient, until: impl Fn() -> bool) -> Result<Lag> {
    let (mut blocks, mut ms) = (Vec::new(), Vec::new());
    let mut past_round_0 = 0;
    let first = c.finality_status().await?;
    let (mut last_head, mut last_final) = (first.head, first.finalized.number);
    // When each block above the final one was first seen as (below) the head.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    while !until() {
        let s = c.finality_status().await?;
        let (now, f) = (now_ms(), s.finalized.number);
        blocks.push(s.head.saturating_sub(f));
        past_round_0 += usize::from(s.round > 0);
        for n in last_head + 1..=s.head {
            seen.insert(n, now);
        }
        for n in last_final + 1..=f {
            if let Some(t) = seen.remove(&n) {
                ms.push(now - t);
            }
        }
        last_head = last_head.max(s.head);
        last_final = last_final.max(f);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Lag {
        samples: blocks.len(),
        p50_blocks: percentile(&mut blocks.clone(), 0.5),
        p99_blocks: percentile(&mut blocks, 0.99),
        blocks: ms.len(),
        samples_past_round_0: past_round_0,
        p50_ms: percentile(&mut ms.clone(), 0.5),
        p99_ms: percentile(&mut ms, 0.99),
    })
}

/// Four authorities of `chain`, each dialing the ones before it, and their genesis.
fn four(
    chain: &str,
    block_time_ms: u64,
    senders: &[SecretKey],
) -> Result<(Genesis, Vec<BenchNode>)> {
    let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
    let mut g = crate::suite::genesis(chain, keys[0].address(), senders, block_time_ms);
    g.authorities = keys.iter().map(SecretKey::address).collect();
    let nodes = start_authorities(chain, &g, &keys, crate::suite::BIG_POOL)?;
    Ok((g, nodes))
}

async fn chain_lag(chain: &str, block_time_ms: u64, idle_s: u64, txs: u64) -> Result<ChainLag> {
    let senders = loadgen::sender_keys(chain, 50);
    let (g, nodes) = four(chain, block_time_ms, &senders)?;
    let c = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .build(&nodes[0].http)?;
    // Finality under way before measuring.
    let start = Instant::now();
    while c.finality_status().await?.finalized.number < 2 {
        if start.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("{chain}: four authorities did not finalise within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{chain}: finality lag, idle for {idle_s} s (4 authorities)");
    let t0 = Instant::now();
    let idle = sample(&c, || t0.elapsed() > Duration::from_secs(idle_s)).await?;
    let fee = loadgen::generous_fee(&c.fee_info().await?);
    let per = txs.div_ceil(senders.len() as u64);
    let load = loadgen::presign(&senders, per, g.chain_id, &fee, Address([0x42; 20]));
    eprintln!(
        "{chain}: finality lag under a load of {} transfers",
        per * senders.len() as u64
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let cfg = LoadConfig {
        http: nodes[0].http.clone(),
        ws: nodes[0].ws.clone(),
        batch: 1000,
        connections: 4,
        timeout: Duration::from_secs(300),
    };
    let (result, loaded) = tokio::join!(
        async {
            let r = loadgen::run(&cfg, load).await;
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        },
        sample(&c, || done.load(std::sync::atomic::Ordering::Relaxed))
    );
    let result = result?;
    Ok(ChainLag {
        chain: chain.to_string(),
        block_time_ms,
        authorities: nodes.len(),
        idle,
        loaded: loaded?,
        load_txs: result.committed,
        load_tps: result.tps,
    })
}

async fn one_run(voting: bool, txs: u64) -> Result<f64> {
    let authority = SecretKey::random();
    let senders = loadgen::sender_keys("sidechain", 50);
    let g = crate::suite::genesis("sidechain", authority.address(), &senders, 1000);
    let extra = format!("{}finality_voting = {voting}\n", crate::suite::BIG_POOL);
    let node = BenchNode::start("sidechain", &g, &authority, &extra)?;
    let c = HttpClientBuilder::default().build(&node.http)?;
    let fee = loadgen::generous_fee(&c.fee_info().await?);
    let per = txs.div_ceil(senders.len() as u64);
    let load = loadgen::presign(&senders, per, g.chain_id, &fee, Address([0x42; 20]));
    let r = loadgen::run(
        &LoadConfig {
            http: node.http.clone(),
            ws: node.ws.clone(),
            batch: 1000,
            connections: 4,
            timeout: Duration::from_secs(300),
        },
        load,
    )
    .await?;
    let final_now = c.finality_status().await?.finalized.number;
    if voting && final_now == 0 {
        anyhow::bail!("finality on, yet nothing became final");
    }
    if !voting && final_now != 0 {
        anyhow::bail!("finality off, yet block {final_now} became final");
    }
    Ok(r.tps)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the finality measurements.
pub async fn run(idle_s: u64, load_txs: u64, on_off_txs: u64) -> Result<FinalityResults> {
    let lag = vec![
        chain_lag("sidechain", 1000, idle_s, load_txs).await?,
        chain_lag("mainchain", 2000, idle_s, load_txs / 2).await?,
    ];
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for i in 0..3 {
        eprintln!(
            "finality on/off: run {} of 3, {on_off_txs} transfers each",
            i + 1
        );
        off.push(one_run(false, on_off_txs).await?);
        on.push(one_run(true, on_off_txs).await?);
    }
    let ratio = if median(&off) > 0.0 {
        median(&on) / median(&off)
    } else {
        0.0
    };
    Ok(FinalityResults {
        lag,
        on_off: OnOff {
            txs: on_off_txs,
            on_tps: on,
            off_tps: off,
            ratio,
        },
    })
}
