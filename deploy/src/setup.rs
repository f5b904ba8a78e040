//! Writes the files an operator would write by hand (authority keys, one genesis per chain, one
//! `node.toml` per node) and initializes each data dir with the node's own `init` command.
//! A second run resumes: existing keys, genesis files and data dirs are kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chain::crypto::SecretKey;
use chain::genesis::{FeeParams, Genesis, GenesisAccount};
use chain::store::Store;
use chain::types::{Address, Amount, Hash};
use serde::Serialize;

use crate::plan::{tcp_multiaddr, ChainKind, ChainPlan, NodeSpec, Plan};
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
    /// Things the user should know (e.g. a topology change ignored because the chain exists).
    pub warnings: Vec<String>,
}

/// Creates (or, with `fresh`, recreates) the devnet directory and everything in it.
pub async fn prepare(
    plan: &Plan,
    topology: &Topology,
    bins: &Binaries,
    fresh: bool,
) -> Result<Prepared> {
    ensure_dir(&plan.dir, fresh)?;
    mkdir(&plan.log_dir)?;
    let mut prepared = Prepared {
        chains: vec![],
        warnings: vec![],
    };
    for chain in &plan.chains {
        let bin = bins.node(chain.kind)?;
        let p = prepare_chain(chain, topology, &bin, &mut prepared.warnings).await?;
        prepared.chains.push(p);
    }
    Ok(prepared)
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
    topology: &Topology,
    bin: &Path,
    warnings: &mut Vec<String>,
) -> Result<PreparedChain> {
    let name = chain.kind.name();
    let mut authorities = Vec::new();
    for node in &chain.nodes {
        mkdir(&node.home)?;
        if let Some(key_path) = node.key_path() {
            authorities.push(load_or_create_key(&key_path)?);
        }
    }
    let wanted = genesis(chain, topology, authorities)?;
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

/// The genesis the topology asks for, with these authorities.
pub fn genesis(
    chain: &ChainPlan,
    topology: &Topology,
    authorities: Vec<Address>,
) -> Result<Genesis> {
    let balance = topology.balance()?;
    let accounts = (0..topology.accounts.count)
        .map(|i| {
            Ok(GenesisAccount {
                address: chain::dev::dev_key(i)?.address(),
                // Sidechain coins will come from the peg (genesis supply 0) once the bridge
                // exists; until then both chains prefund the development accounts.
                balance,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let g = Genesis {
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
        // The federation (issue 4) goes here once the launcher runs members.
        peg: None,
    };
    g.validate()?;
    Ok(g)
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
        return Ok(chain::node::load_key_file(path)?.address());
    }
    let key = SecretKey::random();
    chain::node::write_key_file(path, &key)
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(key.address())
}

/// The keys of `NodeConfig` the launcher sets; the node takes its defaults for the rest.
#[derive(Debug, Serialize)]
struct NodeFile<'a> {
    data_dir: &'a Path,
    rpc_addr: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    authority_key_file: Option<PathBuf>,
    log_format: &'a str,
    log_level: &'a str,
    p2p_listen: String,
    bootstrap: Vec<String>,
}

/// Writes the `node.toml` of node `i` of `chain` (rewritten on every start, so port and log
/// flags apply on resume). Its `bootstrap` lists the chain's other nodes when their ports are
/// fixed; with ephemeral ports it is empty and the launcher passes `--bootstrap` at start.
pub fn write_node_config(chain: &ChainPlan, i: usize, topology: &Topology) -> Result<()> {
    let node = &chain.nodes[i];
    let data_dir = node.data_dir();
    let file = NodeFile {
        data_dir: &data_dir,
        rpc_addr: node.rpc_addr,
        authority_key_file: node.key_path(),
        log_format: &topology.log_format,
        log_level: &topology.log_level,
        p2p_listen: tcp_multiaddr(node.p2p_addr),
        bootstrap: chain.predicted_bootstrap(i),
    };
    let path = node.config_path();
    let text = toml::to_string(&file).map_err(|e| Error::Format {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
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
            assert_eq!(chain.nodes.len(), 3);
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
                        ["/ip4/127.0.0.1/tcp/30333", "/ip4/127.0.0.1/tcp/30334"]
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
            let g = genesis(chain, &t, keys.clone()).unwrap();
            assert_eq!(g.authorities, keys);
            assert_eq!(g.authorities.len(), 2);
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
            &genesis(&plan.chains[0], &t, vec![Address([1; 20])]).unwrap(),
            &genesis(&plan.chains[0], &t, vec![Address([1; 20])]).unwrap()
        )
        .is_empty());
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
