//! `bench`: the `make bench` suite.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Runs the Twinpeg benchmark suite against release binaries on loopback.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Distinct senders.
    #[arg(long, default_value_t = 200)]
    senders: usize,
    /// Transfers for the sidechain run.
    #[arg(long, default_value_t = 300_000)]
    side_txs: u64,
    /// Transfers for the mainchain run.
    #[arg(long, default_value_t = 200_000)]
    main_txs: u64,
    /// Transactions per tp_sendTransactions call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Where results.json goes.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// Skip the transfer-throughput measurements.
    #[arg(long)]
    no_throughput: bool,
    /// Skip the state-size scaling and sync measurements.
    #[arg(long)]
    no_scaling: bool,
    /// Blocks for the sync measurement.
    #[arg(long, default_value_t = 10_000)]
    sync_blocks: u64,
    /// Skip the peg measurements.
    #[arg(long)]
    no_peg: bool,
    /// Deposits and withdrawals measured for latency.
    #[arg(long, default_value_t = 50)]
    peg_transfers: usize,
    /// Where criterion keeps the micro-benchmarks' results (`make microbench`).
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
    /// Deposits landing together in the burst.
    #[arg(long, default_value_t = 1000)]
    peg_burst: usize,
    /// Skip the finality measurements.
    #[arg(long)]
    no_finality: bool,
    /// Seconds of idle finality-lag sampling per chain.
    #[arg(long, default_value_t = 20)]
    finality_idle_seconds: u64,
    /// Transfers in the load finality lag is measured under (sidechain; half on the mainchain).
    #[arg(long, default_value_t = 60_000)]
    finality_load_txs: u64,
    /// Transfers per run of the finality on/off throughput comparison (three runs each).
    #[arg(long, default_value_t = 100_000)]
    finality_on_off_txs: u64,
    /// Skip the Ethereum-format throughput measurements (and anvil's).
    #[arg(long)]
    no_ethereum: bool,
    /// Transfers per Ethereum-format run (sidechain native, sidechain EIP-1559, anvil; half
    /// for the mainchain's legacy run).
    #[arg(long, default_value_t = 100_000)]
    eth_txs: u64,
    /// Rounds of the Ethereum-format runs; the figures are medians over them.
    #[arg(long, default_value_t = 3)]
    eth_rounds: usize,
    /// The anvil binary to compare with (`tests/tools/install.sh` installs it from npm).
    #[arg(long, default_value_os_t = bench::ethereum::default_anvil())]
    anvil: PathBuf,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let cfg = bench::suite::SuiteConfig {
        senders: a.senders,
        side_txs: a.side_txs,
        main_txs: a.main_txs,
        batch: a.batch,
        connections: a.connections,
        out_dir: a.out_dir,
        throughput: !a.no_throughput,
        scaling: !a.no_scaling,
        sync_blocks: a.sync_blocks,
        peg: !a.no_peg,
        peg_transfers: a.peg_transfers,
        peg_burst: a.peg_burst,
        criterion_dir: a.criterion_dir,
        finality: !a.no_finality,
        finality_idle_seconds: a.finality_idle_seconds,
        finality_load_txs: a.finality_load_txs,
        finality_on_off_txs: a.finality_on_off_txs,
        ethereum: !a.no_ethereum,
        eth_txs: a.eth_txs,
        eth_rounds: a.eth_rounds,
        anvil: a.anvil,
    };
    bench::block_on(bench::suite::run(cfg))
}
