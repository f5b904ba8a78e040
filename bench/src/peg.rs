//! Peg latency and throughput: four authority nodes per chain (the devnet's topology, each its
//! own process) and three real members (threshold 2), with the devnet's peg terms: no depth on
//! top of finality (`confirmations` = 1). For each transfer, the time from inclusion on the
//! source chain to the payout on the other is split into what the protocol imposes (the source
//! block becoming final, then the next destination slot) and the bridge's own overhead (the
//! rest); and the time until the payout itself is final, the transfer's real end. Inclusion and
//! payout times are block timestamps (slot starts); finality times are when a sampler polling
//! `tp_finalityStatus` every 50 ms first saw the block final.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use parity_scale_codec::Encode;
use primitives::crypto::SecretKey;
use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
use primitives::tx::{Fee, Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes, Hash};
use rpc_api::TwinpegApiClient;
use serde::Serialize;
use twinpeg_e2e::Member;

use crate::node::{bin_dir, peak_rss_mib, start_authorities, BenchNode};

/// Latency figures of one direction.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Transfers measured.
    pub transfers: usize,
    /// Inclusion to payout, median, ms.
    pub total_p50_ms: f64,
    /// 99th percentile, ms.
    pub total_p99_ms: f64,
    /// What the protocol imposes, median, ms.
    pub protocol_p50_ms: f64,
    /// The bridge's own overhead, median, ms.
    pub overhead_p50_ms: f64,
    /// 99th percentile, ms.
    pub overhead_p99_ms: f64,
    /// Inclusion to the payout being final, median, ms.
    pub to_final_p50_ms: f64,
    /// 99th percentile, ms.
    pub to_final_p99_ms: f64,
}

/// When each block of a chain was first seen final: (final height, wall-clock ms), ascending.
#[derive(Debug, Default, Clone)]
struct FinalSeen(Vec<(u64, u64)>);

impl FinalSeen {
    /// When block `n` was first seen final.
    fn at(&self, n: u64) -> Option<u64> {
        self.0.iter().find(|(f, _)| *f >= n).map(|(_, t)| *t)
    }
}

/// Polls `c`'s finality every 50 ms until `stop`, recording each advance.
async fn sample_finality(
    c: HttpClient,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> FinalSeen {
    let mut seen = FinalSeen::default();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(s) = c.finality_status().await {
            let n = s.finalized.number;
            if seen.0.last().is_none_or(|(f, _)| n > *f) {
                seen.0.push((n, service::clock::now_ms()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// The peg section of the results.
#[derive(Debug, Clone, Serialize)]
pub struct PegResults {
    /// Mainchain block time used, ms.
    pub main_block_ms: u64,
    /// Sidechain block time used, ms.
    pub side_block_ms: u64,
    /// Deposits (main -> side).
    pub deposits: Latency,
    /// Withdrawals (side -> main).
    pub withdrawals: Latency,
    /// Deposits landing together for the burst.
    pub burst_deposits: usize,
    /// Sidechain blocks from the burst reaching depth until the last one was minted.
    pub burst_side_blocks_after_depth: u64,
    /// Deposits paid per second in the burst (from depth to the last payout).
    pub burst_paid_per_second: f64,
    /// Burst payouts in the 1st, 2nd, ... sidechain block after depth.
    pub burst_paid_per_block: Vec<u64>,
    /// Peak RSS of a member process, MiB.
    pub member_peak_rss_mib: Option<f64>,
}

/// Starts a member of `main` and `side` from the release binaries, logging at
/// `BENCH_MEMBER_LOG` (`warn` unless set).
fn start_member(
    key: &SecretKey,
    main: &BenchNode,
    side: &BenchNode,
    bootstrap: &[String],
) -> Result<Member> {
    let level = std::env::var("BENCH_MEMBER_LOG").unwrap_or_else(|_| "warn".into());
    let mut m = Member::with_prefix("twinpeg-bench-member", key.clone(), &main.http, &side.http)?
        .bin_dir(bin_dir())
        .config("log_level", level)
        .start_deadline(Duration::from_secs(60));
    m.spawn(bootstrap)?;
    Ok(m)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

async fn send(
    c: &HttpClient,
    chain_id: u64,
    key: &SecretKey,
    nonce: u64,
    fee: &Fee,
    kind: TxKind,
) -> Result<Hash> {
    let t = Transaction {
        chain_id,
        nonce,
        fee: fee.clone(),
        kind,
    }
    .sign(key);
    Ok(c.send_transaction(Bytes(t.encode())).await?)
}

/// One transfer from each of `users` (nonce 0), `kind` of its own address, ten at a time half a
/// block (`block_ms`) apart so they spread over a few blocks; their hashes.
async fn spread(
    c: &HttpClient,
    chain_id: u64,
    users: &[SecretKey],
    fee: &Fee,
    block_ms: u64,
    kind: impl Fn(Address) -> TxKind,
) -> Result<Vec<Hash>> {
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        ids.push(send(c, chain_id, u, 0, fee, kind(u.address())).await?);
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(block_ms / 2)).await;
        }
    }
    Ok(ids)
}

async fn block_ts(c: &HttpClient, n: u64) -> Result<u64> {
    Ok(c.block_by_number(n, None)
        .await?
        .context("block")?
        .summary
        .timestamp_ms)
}

/// Waits until every id is paid on `dst`; returns per id (source block, payout block).
async fn wait_paid(
    src: &HttpClient,
    dst: &HttpClient,
    ids: &[Hash],
    timeout: Duration,
) -> Result<Vec<(u64, u64)>> {
    let start = Instant::now();
    let mut out = vec![None; ids.len()];
    loop {
        for (i, id) in ids.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            let d = dst.peg_transfer(*id).await?;
            if let Some(p) = d.payout {
                let s = src.peg_transfer(*id).await?;
                if let Some(s) = s.source {
                    out[i] = Some((s.block_number, p.block_number));
                }
            }
        }
        if out.iter().all(Option::is_some) {
            return Ok(out.into_iter().flatten().collect());
        }
        if start.elapsed() > timeout {
            bail!(
                "{} of {} transfers paid in time",
                out.iter().filter(|x| x.is_some()).count(),
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn latency(
    src: &HttpClient,
    dst: &HttpClient,
    pairs: &[(u64, u64)],
    (src_final, dst_final): (&FinalSeen, &FinalSeen),
    confirmations: u64,
    dst_block_ms: u64,
) -> Result<Latency> {
    let (mut total, mut protocol, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    let mut to_final = Vec::new();
    for (sb, pb) in pairs {
        let t_src = block_ts(src, *sb).await? as f64;
        let t_depth = block_ts(src, sb + confirmations - 1).await? as f64;
        // What the protocol imposes: the source block final (and deep enough).
        let t_ready = src_final
            .at(*sb)
            .map_or(t_depth, |t| (t as f64).max(t_depth));
        let t_pay = block_ts(dst, *pb).await? as f64;
        let next_slot = ((t_ready / dst_block_ms as f64).floor() + 1.0) * dst_block_ms as f64;
        total.push(t_pay - t_src);
        protocol.push(next_slot - t_src);
        overhead.push((t_pay - next_slot).max(0.0));
        if let Some(t) = dst_final.at(*pb) {
            to_final.push(t as f64 - t_src);
        }
    }
    Ok(Latency {
        transfers: pairs.len(),
        total_p50_ms: pct(&mut total.clone(), 0.5),
        total_p99_ms: pct(&mut total, 0.99),
        protocol_p50_ms: pct(&mut protocol, 0.5),
        overhead_p50_ms: pct(&mut overhead.clone(), 0.5),
        overhead_p99_ms: pct(&mut overhead, 0.99),
        to_final_p50_ms: pct(&mut to_final.clone(), 0.5),
        to_final_p99_ms: pct(&mut to_final, 0.99),
    })
}

/// Runs the peg measurements: `n` deposits and `n` withdrawals, then a burst of `burst` deposits.
pub async fn run(n: usize, burst: usize) -> Result<PegResults> {
    let (main_ms, side_ms) = (1000u64, 500u64);
    let members: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
    let users: Vec<SecretKey> = crate::loadgen::sender_keys("peg", burst.max(n));
    let addrs: Vec<Address> = members.iter().map(SecretKey::address).collect();
    // The e2e tests' peg, with room in the daily limits for the burst.
    let mut peg = twinpeg_e2e::test_peg(&addrs, 2);
    // As the devnet: finality decides, no depth on top.
    peg.terms.main_confirmations = 1;
    peg.terms.side_confirmations = 1;
    peg.terms.daily_limit_deposits = Amount::coins(1_000_000);
    peg.terms.daily_limit_withdrawals = Amount::coins(1_000_000);
    let ma: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
    let sa: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
    let genesis = |chain_id, block_time_ms, authorities: Vec<Address>, fee, accounts| Genesis {
        chain_id,
        block_time_ms,
        timestamp_ms: 0,
        authorities,
        max_block_weight: 16_000_000,
        max_tx_size: 16_384,
        fee,
        accounts,
        peg: Some(peg.clone()),
    };
    let mut mg = genesis(
        298081,
        main_ms,
        ma.iter().map(SecretKey::address).collect(),
        FeeParams::FeeRate {
            min_fee_rate: Amount(1_000),
        },
        users
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: Amount::coins(1000),
            })
            .collect(),
    );
    let mut sg = genesis(
        298082,
        side_ms,
        sa.iter().map(SecretKey::address).collect(),
        FeeParams::BaseFee {
            initial_base_fee: Amount(1_000),
            min_base_fee: Amount(1_000),
        },
        vec![],
    );
    primitives::genesis::link_geneses(&mut mg, &mut sg);
    let big = "mempool_max_txs = 200000\nrpc_max_txs_per_call = 10000\n";
    let mains = start_authorities("mainchain", &mg, &ma, big)?;
    let sides = start_authorities("sidechain", &sg, &sa, big)?;
    let (main, side) = (&mains[0], &sides[0]);
    // Member i on node i of each chain, as in the devnet.
    let mut running = Vec::new();
    let first = start_member(&members[0], &mains[0], &sides[0], &[])?;
    let boot = first.p2p_addr().into_iter().collect::<Vec<_>>();
    running.push(first);
    for (i, k) in members.iter().enumerate().skip(1) {
        running.push(start_member(k, &mains[i], &sides[i], &boot)?);
    }
    let mc = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .build(&main.http)?;
    let sc = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .build(&side.http)?;
    let mfee = Fee::Flat {
        fee: Amount(1_000 * 400),
    };
    let sfee = Fee::Dynamic {
        max_fee: Amount(1_000_000),
        max_tip: Amount(1),
    };

    // Steady state: both chains finalising before the clock starts.
    let start = Instant::now();
    while mc.finality_status().await?.finalized.number < 2
        || sc.finality_status().await?.finalized.number < 2
    {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the four authorities of each chain did not finalise within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "peg: both chains finalising {:.1} s after the members started",
        start.elapsed().as_secs_f64()
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let main_final = tokio::spawn(sample_finality(mc.clone(), stop.clone()));
    let side_final = tokio::spawn(sample_finality(sc.clone(), stop.clone()));

    // Deposits: one per user, spread over a few blocks.
    eprintln!("peg: {n} deposits");
    let lock = |to| TxKind::Lock {
        amount: Amount::coins(10),
        recipient: to,
    };
    let ids = spread(&mc, mg.chain_id, &users[..n], &mfee, main_ms, lock).await?;
    let pairs = match wait_paid(&mc, &sc, &ids, Duration::from_secs(120)).await {
        Ok(p) => p,
        Err(e) => {
            for m in &running {
                let log = m.log();
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.contains("signed at depth") && !l.contains("peg event seen"))
                    .rev()
                    .take(25)
                    .collect();
                eprintln!(
                    "--- member log tail ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            return Err(e);
        }
    };

    // Withdrawals: each user sends back part of what was minted.
    eprintln!("peg: {n} withdrawals");
    let burn = |to| TxKind::Burn {
        amount: Amount::coins(5),
        recipient: to,
    };
    let wids = spread(&sc, sg.chain_id, &users[..n], &sfee, side_ms, burn).await?;
    let wpairs = wait_paid(&sc, &mc, &wids, Duration::from_secs(300)).await?;
    // Every payout final before the samplers stop.
    let last_mint = pairs.iter().map(|p| p.1).max().unwrap_or(0);
    let last_release = wpairs.iter().map(|p| p.1).max().unwrap_or(0);
    let start = Instant::now();
    while sc.finality_status().await?.finalized.number < last_mint
        || mc.finality_status().await?.finalized.number < last_release
    {
        if start.elapsed() > Duration::from_secs(120) {
            bail!("payouts not final within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (main_final, side_final) = (main_final.await?, side_final.await?);
    let deposits = latency(
        &mc,
        &sc,
        &pairs,
        (&main_final, &side_final),
        peg.terms.main_confirmations,
        side_ms,
    )
    .await?;
    let withdrawals = latency(
        &sc,
        &mc,
        &wpairs,
        (&side_final, &main_final),
        peg.terms.side_confirmations,
        main_ms,
    )
    .await?;

    // A burst: `burst` deposits submitted at once (one batch call), landing in a block or two.
    eprintln!("peg: a burst of {burst} deposits");
    let raws: Vec<Bytes> = users
        .iter()
        .take(burst)
        .enumerate()
        .map(|(i, u)| {
            let nonce = if i < n { 1 } else { 0 };
            Bytes(
                Transaction {
                    chain_id: mg.chain_id,
                    nonce,
                    fee: mfee.clone(),
                    kind: TxKind::Lock {
                        amount: Amount::coins(2),
                        recipient: u.address(),
                    },
                }
                .sign(u)
                .encode(),
            )
        })
        .collect();
    let res = mc.send_transactions(raws).await?;
    let bids: Vec<Hash> = res.iter().filter_map(|r| r.hash).collect();
    if bids.len() != burst {
        bail!("{} of {burst} burst deposits accepted", bids.len());
    }
    let bpairs = wait_paid(&mc, &sc, &bids, Duration::from_secs(600)).await?;
    let last_src = bpairs.iter().map(|p| p.0).max().unwrap_or(0);
    let last_pay = bpairs.iter().map(|p| p.1).max().unwrap_or(0);
    let t_depth = block_ts(&mc, last_src + peg.terms.main_confirmations - 1).await?;
    let t_last = block_ts(&sc, last_pay).await?;
    let side_blocks_after_depth = t_last.saturating_sub(t_depth).div_ceil(side_ms);
    // How the burst spread: payouts in the 1st, 2nd, ... sidechain block after depth.
    let mut per_block = vec![0u64; side_blocks_after_depth.max(1) as usize];
    let mut ts = std::collections::HashMap::new();
    for (_, pb) in &bpairs {
        if !ts.contains_key(pb) {
            ts.insert(*pb, block_ts(&sc, *pb).await?);
        }
        let k = ts[pb].saturating_sub(t_depth).div_ceil(side_ms).max(1) as usize;
        if let Some(slot) = per_block.get_mut(k - 1) {
            *slot += 1;
        }
    }
    let paid_per_second = if t_last > t_depth {
        burst as f64 / ((t_last - t_depth) as f64 / 1000.0)
    } else {
        f64::INFINITY
    };
    let member_peak_rss_mib = running
        .iter()
        .filter_map(|m| m.pid().and_then(peak_rss_mib))
        .reduce(f64::max);
    // Make sure nothing was paid twice.
    let info = sc.peg_info().await?;
    let expected = Amount::coins(10).0 * n as u128 + Amount::coins(2).0 * burst as u128;
    if info.totals.minted.0 != expected {
        bail!("minted {} != deposited {expected}", info.totals.minted);
    }
    Ok(PegResults {
        main_block_ms: main_ms,
        side_block_ms: side_ms,
        deposits,
        withdrawals,
        burst_deposits: burst,
        burst_side_blocks_after_depth: side_blocks_after_depth,
        burst_paid_per_second: paid_per_second,
        burst_paid_per_block: per_block,
        member_peak_rss_mib,
    })
}
