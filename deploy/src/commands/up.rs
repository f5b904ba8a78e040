//! `devnet up`: prepare, start, wait until healthy, print and write the endpoints, supervise.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use primitives::devnet::{
    AccountInfo, ChainSection, DevnetInfo, FederationInfo, MemberInfo, NodeInfo,
};

use crate::health;
use crate::info;
use crate::plan::Plan;
use crate::process::{ProcessSpec, Readiness};
use crate::setup::{self, Binaries, Prepared};
use crate::supervisor::{Outcome, Shutdown, Supervisor};
use crate::topology::Topology;
use crate::{Error, Result};

use super::{open_devnet, PidFile, UpArgs, BRIDGE};

/// Timeout of one RPC call while collecting what to print.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `devnet up` until the devnet is stopped.
pub async fn run(args: UpArgs) -> Result<ExitCode> {
    let (topology, plan, bins) = open_devnet(&args.topology, args.bin_dir.clone(), true)?;
    // Scripts wait for devnet.json: never let them read the previous run's.
    let _ = std::fs::remove_file(plan.info_file());
    let mut shutdown = Shutdown::listen()?;
    eprintln!(
        "devnet: {} {}",
        if args.fresh { "creating" } else { "preparing" },
        plan.dir.display()
    );
    let prepared = setup::prepare(&plan, &topology, &bins, args.fresh).await?;
    for w in &prepared.warnings {
        eprintln!("devnet: warning: {w}");
    }
    for c in &prepared.chains {
        eprintln!(
            "devnet: {} chain {} (genesis {}){}",
            c.kind.name(),
            c.genesis.chain_id,
            c.genesis_hash,
            if c.resumed { ", resumed" } else { ", new" }
        );
    }
    let _pid_file = PidFile::create(&plan.dir)?;
    let specs = process_specs(&plan, &bins)?;
    let grace = Duration::from_secs(args.stop_grace_secs);
    let start_timeout = Duration::from_secs(args.start_timeout_secs);
    let mut sup = Supervisor::new(specs, args.restart, start_timeout);

    let started = tokio::select! {
        r = async {
            sup.start_all().await?;
            eprintln!(
                "devnet: every {} is up; waiting until each has a peer",
                if plan.members.is_empty() { "node" } else { "node and member" }
            );
            wait_connected(&plan, &mut sup, start_timeout).await
        } => Ok(r),
        sig = shutdown.requested() => Err(sig),
    };
    let info = match started {
        Ok(Ok(())) => collect_info(&plan, &topology, &prepared, &sup).await,
        Ok(Err(e)) => Err(e),
        Err(sig) => {
            eprintln!("devnet: {sig} during start-up: stopping");
            stop(&mut sup, grace).await;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut info = match info {
        Ok(i) => i,
        Err(e) => {
            eprintln!("devnet: start-up failed; stopping what was started");
            stop(&mut sup, grace).await;
            return Err(e);
        }
    };
    // The table first: whoever waits for devnet.json may read the output next.
    println!("{}", info::table(&info));
    if let Err(e) = info::write(&info, &plan.info_file()) {
        stop(&mut sup, grace).await;
        return Err(e);
    }

    let info_file = plan.info_file();
    let outcome = sup
        .supervise(&mut shutdown, |s| {
            refresh_pids(&mut info, s);
            if let Err(e) = info::write(&info, &info_file) {
                eprintln!("devnet: warning: {e}");
            }
        })
        .await;
    match outcome {
        Outcome::Requested => eprintln!("devnet: stopping"),
        Outcome::AllExited => eprintln!("!!! devnet: every process has exited; stopping"),
    }
    stop(&mut sup, grace).await;
    Ok(match outcome {
        Outcome::Requested => ExitCode::SUCCESS,
        Outcome::AllExited => ExitCode::FAILURE,
    })
}

async fn stop(sup: &mut Supervisor, grace: Duration) {
    let killed = sup.stop_all(grace).await;
    if !killed.is_empty() {
        eprintln!(
            "devnet: {} did not stop within {} s of SIGTERM and got SIGKILL",
            killed.join(", "),
            grace.as_secs()
        );
    }
    eprintln!("devnet: stopped");
}

/// One process per node: `<chain> run --config <home>/node.toml`, in plan order. With
/// ephemeral p2p ports, each node of a chain after the first is started once the earlier ones
/// run and given their addresses (`--bootstrap`); with fixed ports its node.toml names them.
/// Then one process per federation member, `bridge run --config <home>/member.toml`, each
/// started once its two nodes are ready and the members before it run (it is given their
/// p2p addresses with peer ids, and its nodes' endpoints, through its environment).
fn process_specs(plan: &Plan, bins: &Binaries) -> Result<Vec<ProcessSpec>> {
    let mut specs = Vec::new();
    let mut first_of = Vec::new();
    for chain in &plan.chains {
        let first = specs.len();
        first_of.push(first);
        for (i, node) in chain.nodes.iter().enumerate() {
            specs.push(ProcessSpec {
                name: node.name.clone(),
                program: bins.node(node.chain)?,
                args: vec!["run".into(), "--config".into(), node.config_path().into()],
                log: node.log.clone(),
                ready: Readiness::Node {
                    endpoints_file: node.endpoints_file(),
                    p2p_addr: node.p2p_addr,
                },
                bootstrap_from: if chain.ephemeral_p2p() {
                    (first..first + i).collect()
                } else {
                    vec![]
                },
            });
        }
    }
    let first_member = specs.len();
    for (i, m) in plan.members.iter().enumerate() {
        specs.push(ProcessSpec {
            name: m.name.clone(),
            program: bins.get(BRIDGE)?,
            args: vec!["run".into(), "--config".into(), m.config_path().into()],
            log: m.log.clone(),
            ready: Readiness::Member {
                endpoints_file: m.endpoints_file(),
                p2p_addr: m.p2p_addr,
                status_addr: m.status_addr,
                main_node: first_of[0] + m.main_node,
                side_node: first_of[1] + m.side_node,
            },
            // Always in order, even with fixed ports: a member's bootstrap entries should
            // carry the peer id, which is known only once the member runs.
            bootstrap_from: (first_member..first_member + i).collect(),
        });
    }
    Ok(specs)
}

/// Waits until every node of a chain with several nodes has at least one peer (`tp_peers`),
/// and every member of a federation with several members has at least one other member
/// (`bridge_status` peers), so the network printed is connected; fails at `timeout` or when a
/// process exits.
async fn wait_connected(plan: &Plan, sup: &mut Supervisor, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut index = 0;
    let mut waiting = Vec::new();
    for chain in &plan.chains {
        for node in &chain.nodes {
            if chain.nodes.len() > 1 {
                waiting.push((index, node.name.clone(), false));
            }
            index += 1;
        }
    }
    for m in &plan.members {
        if plan.members.len() > 1 {
            waiting.push((index, m.name.clone(), true));
        }
        index += 1;
    }
    loop {
        sup.check_running()?;
        let mut still = Vec::new();
        for (i, name, member) in waiting {
            let peers = if member {
                match sup.member_endpoints(i) {
                    Some(e) => {
                        health::member_peer_count(&e.status_http, Duration::from_secs(2)).await
                    }
                    None => Ok(0),
                }
            } else {
                match sup.endpoints(i) {
                    Some(e) => health::peer_count(&e.rpc_http, Duration::from_secs(2)).await,
                    None => Ok(0),
                }
            };
            if !peers.is_ok_and(|n| n > 0) {
                still.push((i, name, member));
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = waiting.iter().map(|(_, n, _)| n.as_str()).collect();
            return Err(Error::Timeout(format!(
                "{} had no peer after {} s (see their logs in {})",
                names.join(", "),
                timeout.as_secs(),
                plan.log_dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A ready process the supervisor holds no endpoints of (it records them when it sees the
/// process ready, so this is a bug, reported rather than panicking).
fn no_endpoints(name: &str) -> Error {
    Error::Child {
        name: name.to_string(),
        reason: "has no endpoints".into(),
        log_tail: String::new(),
    }
}

/// Asks the running nodes for what `devnet.json` and the table show.
async fn collect_info(
    plan: &Plan,
    topology: &Topology,
    prepared: &Prepared,
    sup: &Supervisor,
) -> Result<DevnetInfo> {
    let mut sections = Vec::new();
    let mut index = 0;
    for (chain, p) in plan.chains.iter().zip(&prepared.chains) {
        let mut nodes = Vec::new();
        for node in &chain.nodes {
            let e = sup
                .endpoints(index)
                .ok_or_else(|| no_endpoints(&node.name))?;
            nodes.push(NodeInfo {
                name: node.name.clone(),
                role: node.role.as_str().into(),
                rpc_http: e.rpc_http.clone(),
                rpc_ws: e.rpc_ws.clone(),
                log: node.log.clone(),
                pid: e.pid,
            });
            index += 1;
        }
        let first = nodes
            .first()
            .map(|n| n.rpc_http.clone())
            .unwrap_or_default();
        let ci = health::chain_info(&first, RPC_TIMEOUT).await?;
        if ci.genesis_hash != p.genesis_hash {
            return Err(Error::Mismatch(format!(
                "{first} serves genesis {}, expected {}",
                ci.genesis_hash, p.genesis_hash
            )));
        }
        sections.push((
            ChainSection {
                chain_id: ci.chain_id,
                block_time_ms: ci.block_time_ms,
                genesis_hash: ci.genesis_hash.to_string(),
                nodes,
            },
            first,
        ));
    }
    let mut accounts = Vec::new();
    for i in 0..topology.accounts.count {
        let key = primitives::dev::dev_key(i)?;
        let mut balances = Vec::new();
        for (_, url) in &sections {
            balances.push(
                health::balance(url, key.address(), RPC_TIMEOUT)
                    .await?
                    .to_string(),
            );
        }
        let [balance_main, balance_side] = <[String; 2]>::try_from(balances)
            .map_err(|_| Error::Invalid("expected two chains".into()))?;
        accounts.push(AccountInfo {
            index: i,
            address: key.address().to_checksum(),
            private_key: key.to_hex(),
            balance_main,
            balance_side,
        });
    }
    let mut members = Vec::new();
    for (m, address) in plan.members.iter().zip(&prepared.members) {
        let e = sup
            .member_endpoints(index)
            .ok_or_else(|| no_endpoints(&m.name))?;
        members.push(MemberInfo {
            name: m.name.clone(),
            address: address.to_checksum(),
            status_http: e.status_http.clone(),
            log: m.log.clone(),
            pid: e.pid,
        });
        index += 1;
    }
    let federation = prepared
        .peg()
        .map(|p| FederationInfo::new(p, primitives::peg::escrow_address()));
    let mut sections = sections.into_iter().map(|(s, _)| s);
    let (Some(mainchain), Some(sidechain)) = (sections.next(), sections.next()) else {
        return Err(Error::Invalid("expected two chains".into()));
    };
    Ok(DevnetInfo {
        dir: plan.dir.clone(),
        mainchain,
        sidechain,
        federation,
        members,
        accounts,
    })
}

/// After a restart: the new pids (and endpoints, should they have changed).
fn refresh_pids(info: &mut DevnetInfo, sup: &Supervisor) {
    let by_name: HashMap<&str, usize> = sup
        .specs()
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    for node in info
        .mainchain
        .nodes
        .iter_mut()
        .chain(info.sidechain.nodes.iter_mut())
    {
        if let Some(e) = by_name
            .get(node.name.as_str())
            .and_then(|&i| sup.endpoints(i))
        {
            node.pid = e.pid;
            node.rpc_http = e.rpc_http.clone();
            node.rpc_ws = e.rpc_ws.clone();
        }
    }
    for m in &mut info.members {
        if let Some(e) = by_name
            .get(m.name.as_str())
            .and_then(|&i| sup.member_endpoints(i))
        {
            m.pid = e.pid;
            m.status_http = e.status_http.clone();
        }
    }
}
