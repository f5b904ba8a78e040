//! `make bench`: throughput of each chain against the machine's signature-recovery limit,
//! with latency and memory, printed as a table and written to `target/bench/results.json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use jsonrpsee::http_client::HttpClientBuilder;
use primitives::crypto::SecretKey;
use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
use primitives::types::{Address, Amount};
use rpc_api::TwinpegApiClient;
use serde::Serialize;

use crate::loadgen::{self, LoadConfig, LoadResult};
use crate::node::{cpu_seconds, BenchNode};
use crate::reference::recoveries_per_second;

/// Suite settings.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Distinct senders.
    pub senders: usize,
    /// Transfers per chain (the sidechain run).
    pub side_txs: u64,
    /// Transfers for the mainchain run.
    pub main_txs: u64,
    /// Transactions per `tp_sendTransactions` call.
    pub batch: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Where results.json goes.
    pub out_dir: PathBuf,
    /// Run the transfer-throughput measurements of both chains.
    pub throughput: bool,
    /// Run the state-size scaling and sync measurements.
    pub scaling: bool,
    /// Blocks for the sync measurement.
    pub sync_blocks: u64,
    /// Run the peg measurements.
    pub peg: bool,
    /// Where criterion keeps the micro-benchmarks' latest results.
    pub criterion_dir: PathBuf,
    /// Deposits and withdrawals measured for latency.
    pub peg_transfers: usize,
    /// Deposits in the burst.
    pub peg_burst: usize,
    /// Run the finality measurements (lag, throughput with voting on and off).
    pub finality: bool,
    /// Seconds of idle lag sampling per chain.
    pub finality_idle_seconds: u64,
    /// Transfers in the load the lag is measured under (the sidechain; half on the mainchain).
    pub finality_load_txs: u64,
    /// Transfers per run of the on/off comparison.
    pub finality_on_off_txs: u64,
    /// Run the Ethereum-format throughput measurements (and anvil's).
    pub ethereum: bool,
    /// Transfers per Ethereum-format run.
    pub eth_txs: u64,
    /// Rounds of the Ethereum-format runs (medians over them).
    pub eth_rounds: usize,
    /// The anvil binary to compare with.
    pub anvil: PathBuf,
}

/// Node config lines for benchmark loads: pools and RPC limits big enough for them.
pub const BIG_POOL: &str = "mempool_max_txs = 2000000\nmempool_max_per_sender = 200000\nmempool_max_nonce_gap = 200000\nrpc_max_txs_per_call = 10000\nrpc_max_request_bytes = 67108864\nrpc_max_response_bytes = 67108864\n";

/// One chain's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ChainRun {
    /// `mainchain` or `sidechain`.
    pub chain: String,
    /// Block time used.
    pub block_time_ms: u64,
    /// The load's measurements.
    pub load: LoadResult,
    /// Throughput as a fraction of the machine's recovery rate.
    pub fraction_of_recovery_limit: f64,
    /// The goal (committed transfers per second).
    pub goal_tps: f64,
    /// Whether the goal was reached.
    pub goal_met: bool,
    /// Node CPU seconds per 1,000 committed transfers.
    pub node_cpu_ms_per_tx: Option<f64>,
    /// Peak RSS of the node, MiB.
    pub node_peak_rss_mib: Option<f64>,
}

/// The whole suite's results.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// Recoveries per second on all cores, measured in this run.
    pub recoveries_per_second: f64,
    /// Cores.
    pub cores: usize,
    /// Per chain.
    pub chains: Vec<ChainRun>,
    /// Import/commit time against state size, and sync time.
    pub scaling: Option<crate::scaling::Scaling>,
    /// Peg latency and burst throughput.
    pub peg: Option<crate::peg::PegResults>,
    /// Finality lag and cost.
    pub finality: Option<crate::finality::FinalityResults>,
    /// Ethereum-format throughput, against the native path and anvil.
    pub ethereum: Option<crate::ethereum::EthResults>,
    /// The criterion micro-benchmarks' latest figures.
    pub micro: Vec<crate::micro::Micro>,
    /// Every goal of the issue with the figure reached, in one list.
    pub goals: Vec<Goal>,
    /// What this suite does not measure yet.
    pub not_measured: Vec<String>,
}

/// A benchmark genesis of `chain` with one authority and `senders` prefunded.
pub fn genesis(
    chain: &str,
    authority: Address,
    senders: &[SecretKey],
    block_time_ms: u64,
) -> Genesis {
    Genesis {
        chain_id: if chain == "mainchain" { 298081 } else { 298082 },
        block_time_ms,
        timestamp_ms: 0,
        authorities: vec![authority],
        max_block_weight: 16_000_000,
        max_tx_size: 16_384,
        fee: if chain == "mainchain" {
            FeeParams::FeeRate {
                min_fee_rate: Amount(1_000),
            }
        } else {
            FeeParams::BaseFee {
                initial_base_fee: Amount(1_000),
                min_base_fee: Amount(1_000),
            }
        },
        accounts: senders
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: Amount::coins(1_000_000),
            })
            .collect(),
        peg: None,
    }
}

async fn run_chain(
    cfg: &SuiteConfig,
    chain: &str,
    block_time_ms: u64,
    txs: u64,
    goal: f64,
    limit: f64,
) -> Result<ChainRun> {
    let authority = SecretKey::random();
    let senders = loadgen::sender_keys(chain, cfg.senders);
    let g = genesis(chain, authority.address(), &senders, block_time_ms);
    let node = BenchNode::start(chain, &g, &authority, BIG_POOL)?;
    let client = HttpClientBuilder::default().build(&node.http)?;
    let fee = loadgen::generous_fee(&client.fee_info().await?);
    let per_sender = txs.div_ceil(cfg.senders as u64);
    eprintln!(
        "{chain}: pre-signing {} transfers from {} senders (not timed)",
        per_sender * cfg.senders as u64,
        cfg.senders
    );
    let load = loadgen::presign(&senders, per_sender, g.chain_id, &fee, Address([0x42; 20]));
    let cpu_before = cpu_seconds(node.pid());
    eprintln!("{chain}: submitting");
    let result = loadgen::run(
        &LoadConfig {
            http: node.http.clone(),
            ws: node.ws.clone(),
            batch: cfg.batch,
            connections: cfg.connections,
            timeout: Duration::from_secs(300),
        },
        load,
    )
    .await?;
    let cpu_after = cpu_seconds(node.pid());
    let node_cpu_ms_per_tx = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if result.committed > 0 => {
            Some((b - a) * 1000.0 / result.committed as f64)
        }
        _ => None,
    };
    eprintln!(
        "{chain}: {} committed in {:.1} s = {:.0}/s (p50 {:.0} ms, p99 {:.0} ms)",
        result.committed, result.seconds, result.tps, result.p50_ms, result.p99_ms
    );
    Ok(ChainRun {
        chain: chain.to_string(),
        block_time_ms,
        fraction_of_recovery_limit: if limit > 0.0 { result.tps / limit } else { 0.0 },
        goal_tps: goal,
        goal_met: result.tps >= goal,
        node_cpu_ms_per_tx,
        node_peak_rss_mib: node.peak_rss_mib(),
        load: result,
    })
}

/// One goal and what this run reached.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What is measured.
    pub what: String,
    /// The goal, as a readable bound.
    pub goal: String,
    /// The figure reached.
    pub reached: f64,
    /// Whether the goal is met.
    pub met: bool,
}

fn goals(r: &Results) -> Vec<Goal> {
    let mut out = Vec::new();
    let mut goal = |what: &str, bound: &str, reached: f64, met: bool| {
        out.push(Goal {
            what: what.to_string(),
            goal: bound.to_string(),
            reached,
            met,
        })
    };
    for c in &r.chains {
        goal(
            &format!("{} committed transfers/s", c.chain),
            &format!(">= {:.0}", c.goal_tps),
            c.load.tps,
            c.goal_met,
        );
    }
    if let Some(s) = &r.scaling {
        goal(
            "commit time at 1M accounts / at 10k accounts",
            "<= 2",
            s.commit_ratio,
            s.commit_ratio <= 2.0,
        );
    }
    if let Some(p) = &r.peg {
        for (name, l) in [("deposit", &p.deposits), ("withdrawal", &p.withdrawals)] {
            goal(
                &format!("{name} bridge overhead p50, ms"),
                "< 100",
                l.overhead_p50_ms,
                l.overhead_p50_ms < 100.0,
            );
            goal(
                &format!("{name} bridge overhead p99, ms"),
                "< 500",
                l.overhead_p99_ms,
                l.overhead_p99_ms < 500.0,
            );
        }
        let bound = 3 * p.main_block_ms + 2 * p.side_block_ms;
        goal(
            "deposit: Lock inclusion to Mint final p50, ms",
            &format!("<= {bound} (3 mainchain + 2 sidechain blocks)"),
            p.deposits.to_final_p50_ms,
            p.deposits.to_final_p50_ms <= bound as f64,
        );
        goal(
            &format!(
                "sidechain blocks from depth until {} burst deposits are paid",
                p.burst_deposits
            ),
            "<= 3",
            p.burst_side_blocks_after_depth as f64,
            p.burst_side_blocks_after_depth <= 3,
        );
    }
    if let Some(f) = &r.finality {
        for c in &f.lag {
            for (when, l) in [("idle", &c.idle), ("under load", &c.loaded)] {
                goal(
                    &format!("{} finality lag p99 {when}, blocks", c.chain),
                    "<= 2",
                    l.p99_blocks as f64,
                    l.p99_blocks <= 2,
                );
            }
        }
        goal(
            "sidechain throughput with finality on / off",
            ">= 0.95",
            f.on_off.ratio,
            f.on_off.ratio >= 0.95,
        );
    }
    if let Some(e) = &r.ethereum {
        if let Some(a) = e.ratio_to_anvil {
            goal(
                "sidechain Ethereum-format transfers/s / anvil's",
                ">= 2",
                a,
                a >= 2.0,
            );
        }
        goal(
            "sidechain Ethereum-format / native transfers/s",
            ">= 0.9",
            e.ratio_to_native,
            e.ratio_to_native >= 0.9,
        );
    }
    out
}

/// Runs the suite and prints the table.
pub async fn run(cfg: SuiteConfig) -> Result<Results> {
    eprintln!("measuring this machine's signature-recovery rate (all cores, 3 s)");
    let limit =
        tokio::task::spawn_blocking(|| recoveries_per_second(Duration::from_secs(3))).await?;
    eprintln!("recoveries/s: {limit:.0}");
    let mut chains = Vec::new();
    if cfg.throughput {
        chains.push(run_chain(&cfg, "sidechain", 1000, cfg.side_txs, 15_000.0, limit).await?);
        chains.push(run_chain(&cfg, "mainchain", 2000, cfg.main_txs, 5_000.0, limit).await?);
    }
    let scaling = if cfg.scaling {
        let mut points = Vec::new();
        for n in [10_000u64, 100_000, 1_000_000] {
            eprintln!("scaling: a 10,000-transfer block at {n} accounts (median of 3)");
            points.push(
                tokio::task::spawn_blocking(move || crate::scaling::median_point(n, 10_000))
                    .await??,
            );
        }
        eprintln!(
            "scaling: a fresh follower syncing {} blocks",
            cfg.sync_blocks
        );
        let sync_seconds = crate::scaling::sync_time(cfg.sync_blocks).await?;
        let commit_ratio = match (points.first(), points.last()) {
            (Some(a), Some(b)) if a.commit_ms > 0.0 => b.commit_ms / a.commit_ms,
            _ => 0.0,
        };
        Some(crate::scaling::Scaling {
            points,
            commit_ratio,
            sync_seconds: Some(sync_seconds),
            sync_blocks: cfg.sync_blocks,
        })
    } else {
        None
    };
    let peg = if cfg.peg {
        Some(crate::peg::run(cfg.peg_transfers, cfg.peg_burst).await?)
    } else {
        None
    };
    let finality = if cfg.finality {
        Some(
            crate::finality::run(
                cfg.finality_idle_seconds,
                cfg.finality_load_txs,
                cfg.finality_on_off_txs,
            )
            .await?,
        )
    } else {
        None
    };
    let ethereum = if cfg.ethereum {
        Some(
            crate::ethereum::run(
                cfg.eth_txs,
                cfg.eth_rounds,
                cfg.senders,
                cfg.batch,
                cfg.connections,
                &cfg.anvil,
            )
            .await?,
        )
    } else {
        None
    };
    let mut results = Results {
        recoveries_per_second: limit,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        chains,
        scaling,
        peg,
        finality,
        ethereum,
        micro: crate::micro::read(&cfg.criterion_dir),
        goals: vec![],
        not_measured: vec![],
    };
    results.goals = goals(&results);
    if results.micro.is_empty() {
        results.not_measured.push(format!(
            "micro-benchmarks (nothing under {}: run `make microbench`)",
            cfg.criterion_dir.display()
        ));
    }
    print_table(&results);
    std::fs::create_dir_all(&cfg.out_dir)?;
    let path = cfg.out_dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("\nwritten to {}", path.display());
    Ok(results)
}

fn print_table(r: &Results) {
    println!();
    println!(
        "reference: {:.0} k256 recoveries/s on {} cores (measured in this run)",
        r.recoveries_per_second, r.cores
    );
    println!();
    println!(
        "{:<10} {:>6} {:>9} {:>9} {:>10} {:>7} {:>9} {:>9} {:>12} {:>9} {:>10}",
        "chain",
        "block",
        "committed",
        "tx/s",
        "of limit",
        "goal",
        "met",
        "p50 ms",
        "p99 ms",
        "cpu ms/tx",
        "node RSS"
    );
    for c in &r.chains {
        println!(
            "{:<10} {:>5}s {:>9} {:>9.0} {:>9.1}% {:>7.0} {:>9} {:>9.0} {:>12.0} {:>9.3} {:>8.0}MB",
            c.chain,
            c.block_time_ms / 1000,
            c.load.committed,
            c.load.tps,
            c.fraction_of_recovery_limit * 100.0,
            c.goal_tps,
            if c.goal_met { "yes" } else { "NO" },
            c.load.p50_ms,
            c.load.p99_ms,
            c.node_cpu_ms_per_tx.unwrap_or(f64::NAN),
            c.node_peak_rss_mib.unwrap_or(f64::NAN),
        );
    }
    if let Some(s) = &r.scaling {
        println!();
        println!(
            "{:>10} {:>10} {:>12} {:>11} {:>15}",
            "accounts", "block txs", "execute ms", "commit ms", "checkpoint ms"
        );
        for p in &s.points {
            println!(
                "{:>10} {:>10} {:>12.1} {:>11.1} {:>15.1}",
                p.accounts, p.block_txs, p.execute_ms, p.commit_ms, p.checkpoint_ms
            );
        }
        println!(
            "commit time at 1M vs 10k accounts: {:.2}x (goal <= 2x: {})",
            s.commit_ratio,
            if s.commit_ratio <= 2.0 {
                "met"
            } else {
                "NOT met"
            }
        );
        if let Some(t) = s.sync_seconds {
            println!(
                "a new follower synced {} blocks in {t:.1} s ({:.0} blocks/s)",
                s.sync_blocks,
                s.sync_blocks as f64 / t
            );
        }
    }
    if let Some(p) = &r.peg {
        println!();
        println!(
            "peg (main {} ms, side {} ms blocks, 4 authorities each; 3 members, threshold 2): inclusion -> payout, ms",
            p.main_block_ms, p.side_block_ms
        );
        println!(
            "{:<12} {:>6} {:>10} {:>10} {:>14} {:>14} {:>14} {:>13} {:>13}",
            "direction",
            "n",
            "total p50",
            "total p99",
            "protocol p50",
            "overhead p50",
            "overhead p99",
            "final p50",
            "final p99"
        );
        for (name, l) in [("deposit", &p.deposits), ("withdrawal", &p.withdrawals)] {
            println!(
                "{:<12} {:>6} {:>10.0} {:>10.0} {:>14.0} {:>14.0} {:>14.0} {:>13.0} {:>13.0}",
                name,
                l.transfers,
                l.total_p50_ms,
                l.total_p99_ms,
                l.protocol_p50_ms,
                l.overhead_p50_ms,
                l.overhead_p99_ms,
                l.to_final_p50_ms,
                l.to_final_p99_ms
            );
        }
        println!(
            "protocol = until the source block is final, then the next destination slot; final = inclusion to the payout final (goal for deposits: p50 <= {} ms)",
            3 * p.main_block_ms + 2 * p.side_block_ms
        );
        println!(
            "bridge overhead goal: p50 < 100 ms and p99 < 500 ms (resolved to the destination block time)"
        );
        println!(
            "burst: {} deposits paid {} sidechain blocks after depth ({:.0}/s; goal: within 3 blocks: {})",
            p.burst_deposits,
            p.burst_side_blocks_after_depth,
            p.burst_paid_per_second,
            if p.burst_side_blocks_after_depth <= 3 { "met" } else { "NOT met" }
        );
        println!(
            "burst payouts per sidechain block after depth: {:?}",
            p.burst_paid_per_block
        );
        if let Some(m) = p.member_peak_rss_mib {
            println!("bridge member peak RSS: {m:.0} MB");
        }
    }
    if let Some(f) = &r.finality {
        println!();
        println!("finality lag (final block behind head; sampled every 100 ms)");
        println!(
            "{:<10} {:>6} {:>5} {:<11} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "chain", "block", "auth", "when", "p50 blk", "p99 blk", "p50 ms", "p99 ms", "load tx/s"
        );
        for c in &f.lag {
            for (when, l, tps) in [
                ("idle", &c.idle, None),
                ("under load", &c.loaded, Some(c.load_tps)),
            ] {
                println!(
                    "{:<10} {:>5}s {:>5} {:<11} {:>8} {:>8} {:>8} {:>8} {:>9}",
                    c.chain,
                    c.block_time_ms as f64 / 1000.0,
                    c.authorities,
                    when,
                    l.p50_blocks,
                    l.p99_blocks,
                    l.p50_ms,
                    l.p99_ms,
                    tps.map(|t| format!("{t:.0}")).unwrap_or_default()
                );
            }
        }
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|t| format!("{t:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "sidechain, 1 authority, {} transfers per run: finality on {} tx/s, off {} tx/s; median on/off = {:.3} (goal >= 0.95)",
            f.on_off.txs,
            fmt(&f.on_off.on_tps),
            fmt(&f.on_off.off_tps),
            f.on_off.ratio
        );
    }
    if let Some(e) = &r.ethereum {
        println!();
        println!(
            "Ethereum-format throughput: {} transfers per run ({} on the mainchain), {} rounds, JSON-RPC batches of eth_sendRawTransaction; {}",
            e.txs,
            e.txs / 2,
            e.rounds,
            e.anvil_version.as_deref().unwrap_or("anvil not run")
        );
        println!(
            "{:<10} {:<8} {:>12} {:>24}",
            "target", "form", "median tx/s", "each round"
        );
        for (t, f, m) in &e.median_tps {
            let each: Vec<String> = e
                .runs
                .iter()
                .filter(|r| &r.target == t && &r.form == f)
                .map(|r| format!("{:.0}", r.load.tps))
                .collect();
            println!("{t:<10} {f:<8} {m:>12.0} {:>24}", each.join(", "));
        }
        println!(
            "sidechain EIP-1559 / anvil = {} (goal >= 2); EIP-1559 / native = {:.2} (goal >= 0.9)",
            e.ratio_to_anvil
                .map(|a| format!("{a:.2}"))
                .unwrap_or_else(|| "n/a".into()),
            e.ratio_to_native
        );
    }
    if !r.micro.is_empty() {
        println!();
        println!(
            "{:<40} {:>12} {:>14} {:>10}",
            "micro-benchmark (criterion median)", "time", "per element", "age"
        );
        for m in &r.micro {
            let per = m
                .elements
                .filter(|n| *n > 1)
                .map(|n| crate::micro::human(m.median_ns / n as f64))
                .unwrap_or_default();
            println!(
                "{:<40} {:>12} {:>14} {:>9}s",
                m.name,
                crate::micro::human(m.median_ns),
                per,
                m.age_seconds
            );
        }
    }
    if !r.goals.is_empty() {
        let met = r.goals.iter().filter(|g| g.met).count();
        println!();
        println!("goals met: {met} of {}", r.goals.len());
        for g in r.goals.iter().filter(|g| !g.met) {
            println!("NOT met: {} = {:.1} (goal {})", g.what, g.reached, g.goal);
        }
    }
    for n in &r.not_measured {
        println!("not measured yet: {n}");
    }
}
