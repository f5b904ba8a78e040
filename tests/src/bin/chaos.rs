//! `chaos`: the fault-injection run behind `make chaos` (see `twinpeg_e2e::chaos`). Needs root
//! (network namespaces) and the workspace's binaries built beside it.

use anyhow::Result;
use clap::{Parser, ValueEnum};
use twinpeg_e2e::chaos::{run, Profile};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Size {
    /// A few minutes (what `make test` runs).
    Short,
    /// 1,000 peg-ins and peg-outs, 100 kills, 50 partitions (about 40 minutes).
    Full,
}

/// Faults, partitions and kills against the devnet topology, checked against the peg's promise.
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Args {
    /// Which profile.
    #[arg(long, value_enum, default_value_t = Size::Full)]
    profile: Size,
    /// Seed of the schedule, the accounts and the amounts (printed by every run: replay it).
    #[arg(long, env = "SEED")]
    seed: Option<u64>,
    /// Peg-ins to send (the profile's if unset).
    #[arg(long)]
    peg_ins: Option<usize>,
    /// Peg-outs to send.
    #[arg(long)]
    peg_outs: Option<usize>,
    /// Plain transfers to send.
    #[arg(long)]
    transfers: Option<usize>,
    /// Concurrent accounts.
    #[arg(long)]
    users: Option<usize>,
    /// `kill -9`s.
    #[arg(long)]
    kills: Option<usize>,
    /// Partitions.
    #[arg(long)]
    partitions: Option<usize>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let mut p = match a.profile {
        Size::Short => Profile::short(seed),
        Size::Full => Profile::full(seed),
    };
    let set = |v: &mut usize, o: Option<usize>| {
        if let Some(o) = o {
            *v = o;
        }
    };
    set(&mut p.peg_ins, a.peg_ins);
    set(&mut p.peg_outs, a.peg_outs);
    set(&mut p.transfers, a.transfers);
    set(&mut p.users, a.users);
    set(&mut p.kills, a.kills);
    set(&mut p.partitions, a.partitions);
    p.recovery_kills = p.recovery_kills.min(p.kills);
    let started = std::time::Instant::now();
    // Ctrl-C drops the run: its processes are killed and its namespaces deleted.
    let report = tokio::select! {
        r = run(&p) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted (seed {})", p.seed),
    };
    println!("{}", report.table());
    println!(
        "chaos: seed {}, {:.0} s",
        p.seed,
        started.elapsed().as_secs_f64()
    );
    if !report.ok() {
        anyhow::bail!("the peg's promise did not hold (seed {})", p.seed);
    }
    Ok(())
}
