//! Writes the files an operator would write by hand (authority keys, one genesis per chain, one
//! `node.toml` per node) and initializes each data dir with the node's own `init` command.
//! A second run resumes: existing keys, genesis files and data dirs are kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bridge::config::MemberConfig;
use chain::config::NodeConfig;
use chain::store::Store;
use primitives::crypto::SecretKey;
use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
use primitives::peg::PegParams;
use primitives::types::{Address, Amount, Hash};

use crate::plan::{client_host, tcp_multiaddr, ChainKind, ChainPlan, NodeSpec, Plan};
use crate::topology::Topology;
use crate::{io_err, Error, Result};

/// Marks a directory as created by the launcher, so `--fresh` never wipes anything else.
const MARKER: &str = ".twinpeg-devnet";

/// Where the node binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The directory holding `mainchain` and `sidechain`.
    pub dir: PathBuf,
}

impl Binaries {
    /// `dir`, or the directory of the running `devnet` executable.
    pub fn resolve(dir: Option<PathBuf>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d,
            None => std::env::current_exe()
                .map_err(io_err("finding the devnet executable"))?
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        Ok(Self { dir })
    }

    /// A binary by name, checked to exist.
    pub fn get(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::MissingBinary { path })
        }
    }

    /// The node binary of `kind`.
    pub fn node(&self, kind: ChainKind) -> Result<PathBuf> {
        self.get(kind.name())
    }
}

/// A chain ready to run.
#[derive(Debug, Clone)]
pub struct PreparedChain {
    /// Which chain.
    pub kind: ChainKind,
    /// Its genesis (as stored in its genesis file).
    pub genesis: Genesis,
    /// The genesis block hash.
    pub genesis_hash: Hash,
    /// Whether the data dirs already held the chain.
    pub resumed: bool,
}

/// The result of [`prepare`].
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Both chains, main first.
    pub chains: Vec<PreparedChain>,
    /// The federation members' addresses, in member order (empty without a peg).
    pub members: Vec<Address>,
    /// Things the user should know (e.g. a topology change ignored because the chain exists).
    pub warnings: Vec<String>,
}

impl Prepared {
    /// The peg both geneses carry (the mainchain's copy), if the chains are pegged.
    pub fn peg(&self) -> Option<&PegParams> {
        self.chains.first().and_then(|c| c.genesis.peg.as_ref())
    }
}

/// Creates (or, with `fresh`, recreates) the devnet directory and everything in it: the
/// authority and member keys, both genesis files (pegged to each other when the federation
/// has members), every `node.toml` and `member.toml`, and the nodes' data dirs.
pub async fn prepare(
    plan: &Plan,
    topology: &Topology,
    bins: &Binaries,
    fresh: bool,
) -> Result<Prepared> {
    ensure_dir(&plan.dir, fresh)?;
    mkdir(&plan.log_dir)?;
    let mut authorities = Vec::new();
    for chain in &plan.chains {
        let mut keys = Vec::new();
        for node in &chain.nodes {
            mkdir(&node.home)?;
            if let Some(key_path) = node.key_path() {
                keys.push(load_or_create_key(&key_path)?);
            }
        }
        authorities.push(keys);
    }
    let mut members = Vec::new();
    for m in &plan.members {
        mkdir(&m.home)?;
        members.push(load_or_create_key(&m.key_path())?);
    }
    let side_authorities = authorities.pop().unwrap_or_default();
    let main_authorities = authorities.pop().unwrap_or_default();
    let (main, side) = geneses(
        plan,
        topology,
        main_authorities,
        side_authorities,
        members.clone(),
    )?;
    let mut prepared = Prepared {
        chains: vec![],
        members,
        warnings: vec![],
    };
    for (chain, wanted) in plan.chains.iter().zip([main, side]) {
        let bin = bins.node(chain.kind)?;
        let p = prepare_chain(chain, wanted, topology, &bin, &mut prepared.warnings).await?;
        prepared.chains.push(p);
    }
    check_linked(&prepared.chains)?;
    for i in 0..plan.members.len() {
        write_member_config(plan, i, topology)?;
    }
    Ok(prepared)
}

/// Both genesis files the topology asks for. With a federation, both carry the same peg
/// parameters and name each other (`peg.counterpart_genesis`, [`primitives::genesis::link_geneses`]);
/// the sidechain then starts with supply 0 (its coins come only from deposits).
pub fn geneses(
    plan: &Plan,
    topology: &Topology,
    main_authorities: Vec<Address>,
    side_authorities: Vec<Address>,
    members: Vec<Address>,
) -> Result<(Genesis, Genesis)> {
    let peg = if topology.pegged() {
        Some(topology.peg_params(members)?)
    } else {
        None
    };
    let mut main = genesis(
        plan.chain(ChainKind::Main),
        topology,
        main_authorities,
        peg.clone(),
    )?;
    let mut side = genesis(plan.chain(ChainKind::Side), topology, side_authorities, peg)?;
    primitives::genesis::link_geneses(&mut main, &mut side);
    main.validate()?;
    side.validate()?;
    Ok((main, side))
}

/// Pegged geneses must name each other: a genesis kept from an earlier run next to a newly
/// written one (or two from different runs) would give the members two different domains.
fn check_linked(chains: &[PreparedChain]) -> Result<()> {
    let [main, side] = chains else {
        return Err(Error::Invalid("expected two chains".into()));
    };
    let (mg, sg) = (&main.genesis, &side.genesis);
    let linked = match (&mg.peg, &sg.peg) {
        (None, None) => true,
        (Some(mp), Some(sp)) => {
            mp.counterpart_genesis == sg.base_hash() && sp.counterpart_genesis == mg.base_hash()
        }
        _ => false,
    };
    if linked {
        Ok(())
    } else {
        Err(Error::Mismatch(
            "the mainchain and sidechain genesis files do not describe one peg (one is pegged \
             and the other not, or they do not name each other): use --fresh to start over"
                .into(),
        ))
    }
}

/// Makes sure `dir` exists and is ours; with `fresh`, wipes it first.
fn ensure_dir(dir: &Path, fresh: bool) -> Result<()> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir)
            .map_err(io_err(format!("reading {}", dir.display())))?
            .next()
            .is_none();
        if !ours && !empty {
            return Err(Error::Mismatch(format!(
                "{} exists and was not created by the devnet launcher; choose another --dir",
                dir.display()
            )));
        }
        if fresh {
            std::fs::remove_dir_all(dir).map_err(io_err(format!("wiping {}", dir.display())))?;
        }
    }
    mkdir(dir)?;
    write(
        &dir.join(MARKER),
        "This directory belongs to the Twinpeg devnet launcher; `devnet up --fresh` wipes it.\n",
    )
}

async fn prepare_chain(
    chain: &ChainPlan,
    wanted: Genesis,
    topology: &Topology,
    bin: &Path,
    warnings: &mut Vec<String>,
) -> Result<PreparedChain> {
    let name = chain.kind.name();
    let genesis = if chain.genesis_path.exists() {
        let existing = Genesis::load(
            &chain.genesis_path,
            chain.kind.rules().default_block_time_ms,
        )?;
        if existing.authorities != wanted.authorities {
            return Err(Error::Mismatch(format!(
                "{name}: the genesis in {} names {} authorities, the topology and keys give {}; \
                 the authority count of an existing chain cannot change (followers can): use --fresh to start over",
                chain.genesis_path.display(),
                existing.authorities.len(),
                wanted.authorities.len()
            )));
        }
        if federation(&existing) != federation(&wanted) {
            return Err(Error::Mismatch(format!(
                "{name}: the genesis in {} has {}, the topology and member keys give {}; the \
                 federation of an existing chain cannot change: use --fresh to start over",
                chain.genesis_path.display(),
                describe_federation(&existing),
                describe_federation(&wanted)
            )));
        }
        let differences = differences(&existing, &wanted);
        if !differences.is_empty() {
            warnings.push(format!(
                "{name}: resuming the chain of {} ({}); use --fresh to start a new one",
                chain.genesis_path.display(),
                differences.join(", ")
            ));
        }
        existing
    } else {
        let text = toml::to_string(&wanted).map_err(|e| Error::Format {
            what: chain.genesis_path.display().to_string(),
            reason: e.to_string(),
        })?;
        write(
            &chain.genesis_path,
            &format!(
                "# {name} genesis, written by the devnet launcher: the same file an operator writes\n\
                 # by hand (every key is documented in deploy/{name}-genesis.toml). Every node of the\n\
                 # chain must use it; its hash is the chain's identity.\n{text}"
            ),
        )?;
        wanted
    };
    let genesis_hash = genesis.block().hash();
    let mut resumed = true;
    for (i, node) in chain.nodes.iter().enumerate() {
        write_node_config(chain, i, topology)?;
        match stored_genesis_hash(&node.data_dir())? {
            Some(h) if h == genesis_hash => {}
            Some(h) => {
                return Err(Error::Mismatch(format!(
                    "{}: its data dir {} holds the chain with genesis {h}, but {} has genesis {genesis_hash}; use --fresh",
                    node.name,
                    node.data_dir().display(),
                    chain.genesis_path.display()
                )))
            }
            None => {
                resumed = false;
                init_data_dir(bin, node, &chain.genesis_path).await?;
            }
        }
    }
    Ok(PreparedChain {
        kind: chain.kind,
        genesis,
        genesis_hash,
        resumed,
    })
}

/// The genesis of one chain the topology asks for, with these authorities and this peg
/// (not yet linked to the other chain: see [`geneses`]). A pegged sidechain prefunds nothing.
pub fn genesis(
    chain: &ChainPlan,
    topology: &Topology,
    authorities: Vec<Address>,
    peg: Option<PegParams>,
) -> Result<Genesis> {
    let balance = topology.balance()?;
    let prefunded = chain.kind == ChainKind::Main || peg.is_none();
    let accounts = if prefunded {
        (0..topology.accounts.count)
            .map(|i| {
                Ok(GenesisAccount {
                    address: primitives::dev::dev_key(i)?.address(),
                    balance,
                })
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        // A pegged sidechain starts with supply 0: its coins are minted only by deposits
        // (the node refuses a pegged sidechain genesis with accounts).
        Vec::new()
    };
    Ok(Genesis {
        chain_id: chain.topology.chain_id,
        block_time_ms: chain.topology.block_time_ms,
        timestamp_ms: 0,
        authorities,
        max_block_weight: 8_000_000,
        max_tx_size: 16_384,
        fee: match chain.kind {
            ChainKind::Main => FeeParams::FeeRate {
                min_fee_rate: Amount(1_000_000_000),
            },
            ChainKind::Side => FeeParams::BaseFee {
                initial_base_fee: Amount(1_000_000_000),
                min_base_fee: Amount(1_000_000),
            },
        },
        accounts,
        peg,
    })
}

/// The federation a genesis names: members and threshold.
fn federation(g: &Genesis) -> Option<(Vec<Address>, u32)> {
    g.peg
        .as_ref()
        .map(|p| (p.members.clone(), p.terms.threshold))
}

fn describe_federation(g: &Genesis) -> String {
    match &g.peg {
        None => "no peg (no federation)".into(),
        Some(p) => format!(
            "a federation of {} members with threshold {} ({})",
            p.members.len(),
            p.terms.threshold,
            p.members
                .iter()
                .map(|m| m.to_checksum())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What differs between the stored genesis and the wanted one, for a warning.
fn differences(existing: &Genesis, wanted: &Genesis) -> Vec<String> {
    let mut d = Vec::new();
    if existing.chain_id != wanted.chain_id {
        d.push(format!(
            "it has chain id {}, the topology says {}",
            existing.chain_id, wanted.chain_id
        ));
    }
    if existing.block_time_ms != wanted.block_time_ms {
        d.push(format!(
            "it has block time {} ms, the topology says {} ms",
            existing.block_time_ms, wanted.block_time_ms
        ));
    }
    let params = |g: &Genesis| {
        g.peg.clone().map(|mut p| {
            p.counterpart_genesis = Hash::ZERO;
            p
        })
    };
    if params(existing) != params(wanted) {
        d.push("it has other peg parameters (confirmations, limits or fees)".into());
    }
    if existing.accounts != wanted.accounts {
        d.push(format!(
            "it has {} prefunded accounts, the topology says {} (or another balance)",
            existing.accounts.len(),
            wanted.accounts.len()
        ));
    }
    if d.is_empty() && existing != wanted {
        d.push("other genesis parameters differ".into());
    }
    d
}

fn load_or_create_key(path: &Path) -> Result<Address> {
    if path.exists() {
        return Ok(p2p::load_key_file(path)?.address());
    }
    let key = SecretKey::random();
    p2p::write_key_file(path, &key).map_err(io_err(format!("writing {}", path.display())))?;
    Ok(key.address())
}

/// Writes the `node.toml` of node `i` of `chain` (rewritten on every start, so port and log
/// flags apply on resume). Its `bootstrap` lists the chain's other nodes when their ports are
/// fixed; with ephemeral ports it is empty and the launcher passes `--bootstrap` at start.
pub fn write_node_config(chain: &ChainPlan, i: usize, topology: &Topology) -> Result<()> {
    let node = &chain.nodes[i];
    let path = node.config_path();
    let format_err = |reason: String| Error::Format {
        what: path.display().to_string(),
        reason,
    };
    let mut config =
        NodeConfig::with_defaults(node.data_dir(), node.rpc_addr, tcp_multiaddr(node.p2p_addr))
            .map_err(|e| format_err(e.to_string()))?;
    config.authority_key_file = node.key_path();
    config.log_format = topology.log_format;
    config.log_level = topology.log_level.clone();
    config.bootstrap = chain.predicted_bootstrap(i);
    // Browser wallets and dapps on any local page may talk to a devnet node.
    config.rpc_cors_origins = vec!["*".into()];
    let text = toml::to_string(&config).map_err(|e| format_err(e.to_string()))?;
    let name = chain.kind.name();
    let peers = if chain.ephemeral_p2p() && chain.nodes.len() > 1 {
        "\n# Ephemeral p2p ports: `bootstrap` is empty here; the launcher starts the nodes in order and\n\
         # passes each the bound addresses of the ones before it (`--bootstrap`, from their\n\
         # <data_dir>/endpoints.json). Without the launcher, list them here or pass --bootstrap."
    } else {
        ""
    };
    write(
        &path,
        &format!(
            "# {} ({}), written by the devnet launcher: `{name} run --config {}`.\n\
             # Every key is documented in deploy/{name}-node.toml; a port of 0 is ephemeral (the\n\
             # bound addresses are in <data_dir>/endpoints.json).{peers}\n{text}",
            node.name,
            node.role.as_str(),
            path.display()
        ),
    )
}

/// The HTTP and WebSocket URLs of a node as a client on this host reaches it (`None` while
/// its RPC port is ephemeral: known only once it runs).
fn node_urls(node: &NodeSpec) -> Option<(String, String)> {
    if node.rpc_addr.port() == 0 {
        return None;
    }
    let a = SocketAddr::new(client_host(node.rpc_addr.ip()), node.rpc_addr.port());
    Some((format!("http://{a}"), format!("ws://{a}")))
}

/// Writes the `member.toml` of member `i` (rewritten on every start, like `node.toml`): its
/// own key and data dir, the RPC endpoints of its nodes (mainchain node `i mod n`, sidechain
/// node `i mod n`), its p2p and status addresses. `bootstrap` stays empty: the launcher starts
/// the members in order and passes each the addresses of the ones before it, with their peer
/// ids, as `BRIDGE_BOOTSTRAP` (read from their `endpoints.json`); with ephemeral RPC ports it
/// also passes the nodes' real endpoints (`BRIDGE_MAIN_RPC`, ...).
pub fn write_member_config(plan: &Plan, i: usize, topology: &Topology) -> Result<()> {
    let m = &plan.members[i];
    let main = &plan.chain(ChainKind::Main).nodes[m.main_node];
    let side = &plan.chain(ChainKind::Side).nodes[m.side_node];
    let placeholder = || {
        (
            "http://127.0.0.1:0".to_string(),
            "ws://127.0.0.1:0".to_string(),
        )
    };
    let (main_rpc, main_ws) = node_urls(main).unwrap_or_else(placeholder);
    let (side_rpc, side_ws) = node_urls(side).unwrap_or_else(placeholder);
    let path = m.config_path();
    let format_err = |reason: String| Error::Format {
        what: path.display().to_string(),
        reason,
    };
    let mut config = MemberConfig::with_defaults(m.data_dir(), m.key_path(), main_rpc, side_rpc)
        .map_err(|e| format_err(e.to_string()))?;
    config.main_ws = Some(main_ws);
    config.side_ws = Some(side_ws);
    config.p2p_listen = tcp_multiaddr(m.p2p_addr);
    config.status_addr = m.status_addr;
    config.submit_timeout_ms = 3_000;
    config.poll_interval_ms = 500;
    config.regossip_interval_ms = 2_000;
    config.log_format = topology.log_format;
    config.log_level = topology.log_level.clone();
    let text = toml::to_string(&config).map_err(|e| format_err(e.to_string()))?;
    let ephemeral = if node_urls(main).is_none() || node_urls(side).is_none() {
        format!(
            "\n# Ephemeral node RPC ports: the launcher passes the real endpoints of {} and {}\n\
             # at start (BRIDGE_MAIN_RPC, BRIDGE_MAIN_WS, BRIDGE_SIDE_RPC, BRIDGE_SIDE_WS, from their\n\
             # <data_dir>/endpoints.json); the 127.0.0.1:0 URLs below are placeholders.",
            main.name, side.name
        )
    } else {
        String::new()
    };
    write(
        &path,
        &format!(
            "# {} (federation member {i} of {}), written by the devnet launcher:\n\
             # `bridge run --config {}`.\n\
             # Every key is documented in deploy/member.toml. Its nodes: {} and {}.\n\
             # `bootstrap` is empty: the launcher starts the members in order and passes each the\n\
             # p2p addresses of the ones before it, with their peer ids (BRIDGE_BOOTSTRAP, from their\n\
             # <data_dir>/endpoints.json). Without the launcher, list the other members here.{ephemeral}\n{text}",
            m.name,
            plan.members.len(),
            path.display(),
            main.name,
            side.name
        ),
    )
}

/// The genesis hash stored in `data_dir`, or `None` when it holds no chain yet.
pub fn stored_genesis_hash(data_dir: &Path) -> Result<Option<Hash>> {
    if !data_dir.join("chain.redb").exists() {
        return Ok(None);
    }
    let store_err = |source| Error::Store {
        path: data_dir.to_path_buf(),
        source,
    };
    let store = Store::open(data_dir).map_err(store_err)?;
    Ok(store
        .genesis()
        .map_err(store_err)?
        .map(|g| g.block().hash()))
}

async fn init_data_dir(bin: &Path, node: &NodeSpec, genesis: &Path) -> Result<()> {
    let out = tokio::process::Command::new(bin)
        .arg("init")
        .arg("--genesis")
        .arg(genesis)
        .arg("--data-dir")
        .arg(node.data_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(io_err(format!("running {} init", bin.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Child {
            name: node.name.clone(),
            reason: format!("`init` failed ({})", out.status),
            log_tail: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))
}

/// Writes a file through a temporary file and a rename, so readers never see half of it.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(io_err(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain::config::NodeConfig;
    use chain::rules::ChainRules;

    #[test]
    fn node_configs_are_what_the_node_reads_and_genesis_prefunds_the_dev_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Topology::default();
        t.sidechain.rpc_port = 0;
        t.sidechain.p2p_port = 0;
        let plan = Plan::new(&t, dir.path());
        ensure_dir(&plan.dir, false).unwrap();
        for chain in &plan.chains {
            assert_eq!(chain.nodes.len(), 4);
            let mut keys = Vec::new();
            for (i, node) in chain.nodes.iter().enumerate() {
                mkdir(&node.home).unwrap();
                write_node_config(chain, i, &t).unwrap();
                let cfg = NodeConfig::load(&chain.kind.rules(), Some(&node.config_path())).unwrap();
                assert_eq!(cfg.data_dir, node.data_dir());
                assert_eq!(cfg.rpc_addr, node.rpc_addr);
                assert_eq!(cfg.authority_key_file, node.key_path());
                assert_eq!(cfg.p2p_listen, tcp_multiaddr(node.p2p_addr));
                assert_eq!(cfg.bootstrap, chain.predicted_bootstrap(i));
                assert_eq!(
                    cfg.p2p_key_file, None,
                    "the node's default: <data_dir>/p2p.key"
                );
                if let Some(key_path) = node.key_path() {
                    let key = load_or_create_key(&key_path).unwrap();
                    assert_eq!(load_or_create_key(&key_path).unwrap(), key);
                    keys.push(key);
                }
            }
            match chain.kind {
                ChainKind::Main => {
                    let cfg =
                        NodeConfig::load(&chain.kind.rules(), Some(&chain.nodes[2].config_path()))
                            .unwrap();
                    assert_eq!(cfg.p2p_listen, "/ip4/127.0.0.1/tcp/30335");
                    assert_eq!(
                        cfg.bootstrap,
                        [
                            "/ip4/127.0.0.1/tcp/30333",
                            "/ip4/127.0.0.1/tcp/30334",
                            "/ip4/127.0.0.1/tcp/30336"
                        ]
                    );
                }
                ChainKind::Side => {
                    let text = std::fs::read_to_string(chain.nodes[1].config_path()).unwrap();
                    assert!(text.contains("p2p_listen = \"/ip4/127.0.0.1/tcp/0\""));
                    assert!(text.contains("bootstrap = []"));
                    assert!(
                        text.contains("--bootstrap"),
                        "says where the peers come from"
                    );
                }
            }
            // Leader order = node order.
            let g = genesis(chain, &t, keys.clone(), None).unwrap();
            g.validate().unwrap();
            assert_eq!(g.authorities, keys);
            assert_eq!(g.authorities.len(), 4);
            assert_eq!(g.accounts.len(), 10);
            assert_eq!(
                g.accounts[0].address.to_checksum(),
                "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            );
            assert_eq!(g.accounts[0].balance, Amount::coins(10_000));
            chain.kind.rules().fee_rule(&g).unwrap();
            let text = toml::to_string(&g).unwrap();
            assert_eq!(toml::from_str::<Genesis>(&text).unwrap(), g);
            assert_eq!(
                stored_genesis_hash(&chain.nodes[0].data_dir()).unwrap(),
                None
            );
        }
        assert!(differences(
            &genesis(&plan.chains[0], &t, vec![Address([1; 20])], None).unwrap(),
            &genesis(&plan.chains[0], &t, vec![Address([1; 20])], None).unwrap()
        )
        .is_empty());
    }

    #[test]
    fn pegged_geneses_name_each_other_and_the_sidechain_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let t = Topology::default();
        let plan = Plan::new(&t, dir.path());
        let members: Vec<Address> = (1..=3).map(|i| Address([i; 20])).collect();
        let (main, side) = geneses(
            &plan,
            &t,
            vec![Address([7; 20])],
            vec![Address([8; 20])],
            members.clone(),
        )
        .unwrap();
        let (mp, sp) = (main.peg.clone().unwrap(), side.peg.clone().unwrap());
        assert_eq!(mp.members, members);
        assert_eq!(mp.terms.threshold, 2);
        assert_eq!(mp.counterpart_genesis, side.base_hash());
        assert_eq!(sp.counterpart_genesis, main.base_hash());
        assert_eq!(
            main.accounts.len(),
            10,
            "the mainchain prefunds the dev accounts"
        );
        assert!(
            side.accounts.is_empty(),
            "a pegged sidechain starts with supply 0"
        );
        // Both nodes accept them, and see one domain.
        let mc = ChainKind::Main.rules().peg_config(&main).unwrap().unwrap();
        let sc = ChainKind::Side.rules().peg_config(&side).unwrap().unwrap();
        assert_eq!(mc.domain, sc.domain);
        check_linked(&[
            prepared(ChainKind::Main, main.clone()),
            prepared(ChainKind::Side, side.clone()),
        ])
        .unwrap();
        // A genesis of another pair (other members) does not link.
        let (_, other_side) = geneses(
            &plan,
            &t,
            vec![Address([7; 20])],
            vec![Address([8; 20])],
            vec![Address([4; 20]), Address([5; 20]), Address([6; 20])],
        )
        .unwrap();
        assert!(check_linked(&[
            prepared(ChainKind::Main, main.clone()),
            prepared(ChainKind::Side, other_side)
        ])
        .is_err());
        assert_ne!(federation(&main), None);
        // Without members: no peg, both chains prefunded.
        let mut t0 = t.clone();
        t0.federation.members = 0;
        let plan0 = Plan::new(&t0, dir.path());
        let (m0, s0) = geneses(
            &plan0,
            &t0,
            vec![Address([7; 20])],
            vec![Address([8; 20])],
            vec![],
        )
        .unwrap();
        assert!(m0.peg.is_none() && s0.peg.is_none());
        assert_eq!(s0.accounts.len(), 10);
        assert!(describe_federation(&m0).contains("no peg"));
    }

    fn prepared(kind: ChainKind, genesis: Genesis) -> PreparedChain {
        PreparedChain {
            kind,
            genesis_hash: genesis.block().hash(),
            genesis,
            resumed: false,
        }
    }

    #[test]
    fn member_configs_name_their_own_nodes_key_and_ports() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Topology::default();
        t.sidechain.rpc_port = 0;
        let plan = Plan::new(&t, dir.path());
        ensure_dir(&plan.dir, false).unwrap();
        for i in 0..3 {
            mkdir(&plan.members[i].home).unwrap();
            write_member_config(&plan, i, &t).unwrap();
        }
        let m = &plan.members[1];
        let text = std::fs::read_to_string(m.config_path()).unwrap();
        let v: toml::Table = toml::from_str(&text).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        assert_eq!(s("main_rpc"), "http://127.0.0.1:8546", "mainchain-1");
        assert_eq!(s("main_ws"), "ws://127.0.0.1:8546");
        assert_eq!(
            s("side_rpc"),
            "http://127.0.0.1:0",
            "ephemeral: a placeholder"
        );
        assert!(text.contains("BRIDGE_SIDE_RPC"), "says where it comes from");
        assert_eq!(s("key_file"), m.key_path().display().to_string());
        assert_eq!(s("data_dir"), m.data_dir().display().to_string());
        assert_eq!(s("p2p_listen"), "/ip4/127.0.0.1/tcp/31334");
        assert_eq!(s("status_addr"), "127.0.0.1:7546");
        assert_eq!(v["bootstrap"].as_array().map(Vec::len), Some(0));
        assert!(text.contains("BRIDGE_BOOTSTRAP"));
        let key = load_or_create_key(&m.key_path()).unwrap();
        assert_eq!(load_or_create_key(&m.key_path()).unwrap(), key, "kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(m.key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the member key is private");
        }
    }

    #[test]
    fn the_environment_replaces_the_bootstrap_list_as_compose_yaml_does() {
        // compose.yaml sets MAINCHAIN_BOOTSTRAP per container over what `devnet init` wrote.
        let dir = tempfile::tempdir().unwrap();
        let t = Topology {
            rpc_host: "0.0.0.0".parse().unwrap(),
            ..Topology::default()
        };
        let plan = Plan::new(&t, dir.path());
        ensure_dir(&plan.dir, false).unwrap();
        let chain = &plan.chains[0];
        mkdir(&chain.nodes[1].home).unwrap();
        write_node_config(chain, 1, &t).unwrap();
        // The prefix is unique to this test.
        let rules = ChainRules {
            env_prefix: "DEVNET_TEST_COMPOSE",
            ..chain.kind.rules()
        };
        let path = chain.nodes[1].config_path();
        let cfg = NodeConfig::load(&rules, Some(&path)).unwrap();
        assert_eq!(cfg.p2p_listen, "/ip4/0.0.0.0/tcp/30334");
        assert_eq!(cfg.bootstrap[0], "/ip4/127.0.0.1/tcp/30333");
        std::env::set_var(
            "DEVNET_TEST_COMPOSE_BOOTSTRAP",
            "/ip4/172.30.77.10/tcp/30333,/ip4/172.30.77.12/tcp/30335",
        );
        let cfg = NodeConfig::load(&rules, Some(&path));
        std::env::remove_var("DEVNET_TEST_COMPOSE_BOOTSTRAP");
        assert_eq!(
            cfg.unwrap().bootstrap,
            ["/ip4/172.30.77.10/tcp/30333", "/ip4/172.30.77.12/tcp/30335"]
        );
    }

    #[test]
    fn fresh_never_wipes_a_directory_that_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign");
        mkdir(&foreign).unwrap();
        write(&foreign.join("precious.txt"), "keep me").unwrap();
        assert!(matches!(
            ensure_dir(&foreign, true),
            Err(Error::Mismatch(_))
        ));
        assert!(foreign.join("precious.txt").exists());
        let ours = dir.path().join("ours");
        ensure_dir(&ours, false).unwrap();
        write(&ours.join("old.txt"), "old").unwrap();
        ensure_dir(&ours, false).unwrap();
        assert!(ours.join("old.txt").exists());
        ensure_dir(&ours, true).unwrap();
        assert!(!ours.join("old.txt").exists());
    }
}
