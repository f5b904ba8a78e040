//! `devnet init`: write every key, genesis file and node config and initialize the data dirs,
//! without starting anything. The container setup runs it once on a shared volume; an operator
//! can read the files it writes as examples.

use std::process::ExitCode;

use crate::setup;
use crate::Result;

use super::{open_devnet, InitArgs};

/// Runs `devnet init`.
pub async fn run(args: InitArgs) -> Result<ExitCode> {
    let (topology, plan, bins) = open_devnet(&args.topology, args.bin_dir.clone(), false)?;
    let prepared = setup::prepare(&plan, &topology, &bins, args.fresh).await?;
    for w in &prepared.warnings {
        eprintln!("devnet: warning: {w}");
    }
    println!("devnet: {} is ready", plan.dir.display());
    for (chain, p) in plan.chains.iter().zip(&prepared.chains) {
        println!(
            "  {} chain {}: genesis {} ({})",
            chain.kind.name(),
            p.genesis.chain_id,
            p.genesis_hash,
            chain.genesis_path.display()
        );
        for node in &chain.nodes {
            println!(
                "    {} ({}): {} run --config {}",
                node.name,
                node.role.as_str(),
                chain.kind.name(),
                node.config_path().display()
            );
        }
    }
    if !plan.members.is_empty() {
        println!(
            "  federation: {} members, threshold {}",
            plan.members.len(),
            topology.federation.threshold
        );
        for (m, address) in plan.members.iter().zip(&prepared.members) {
            println!(
                "    {} ({}): bridge run --config {}",
                m.name,
                address.to_checksum(),
                m.config_path().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
