//! From a topology to a plan: every node's name, role, directory and address, before anything
//! touches the disk. The directory layout (all paths absolute):
//!
//! ```text
//! <dir>/devnet.json                 endpoints, accounts, pids (written once all are healthy)
//! <dir>/devnet.pid                  the running launcher's pid
//! <dir>/mainchain-genesis.toml      one genesis per chain
//! <dir>/mainchain-0/node.toml       the node's config (NodeConfig keys only)
//! <dir>/mainchain-0/authority.key   its authority key (0600), authorities only
//! <dir>/mainchain-0/data/           its redb data dir (and endpoints.json)
//! <dir>/logs/mainchain-0.log        its stdout and stderr
//! <dir>/member-0/member.toml        a bridge member's config (`bridge run --config ...`)
//! <dir>/member-0/member.key         its member key (0600)
//! <dir>/member-0/data/              its bridge.redb, p2p.key and endpoints.json
//! <dir>/logs/member-0.log           its stdout and stderr
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use chain::rules::ChainRules;
use serde::{Deserialize, Serialize};

use crate::topology::{ChainTopology, Topology};

/// Which chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainKind {
    /// The mainchain.
    Main,
    /// The sidechain.
    Side,
}

impl ChainKind {
    /// Both chains, main first.
    pub const ALL: [ChainKind; 2] = [ChainKind::Main, ChainKind::Side];

    /// The chain's rules (name, default block time, env prefix).
    pub fn rules(self) -> ChainRules {
        match self {
            ChainKind::Main => mainchain::rules(),
            ChainKind::Side => sidechain::rules(),
        }
    }

    /// `mainchain` or `sidechain`: also the binary's name.
    pub fn name(self) -> &'static str {
        self.rules().name
    }
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Produces blocks in its slots (its key is in the genesis authority set).
    Authority,
    /// Follows the chain without producing.
    Follower,
}

impl Role {
    /// `authority` or `follower`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Authority => "authority",
            Role::Follower => "follower",
        }
    }
}

/// One node process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// `mainchain-0`, `sidechain-2`, ...
    pub name: String,
    /// Its chain.
    pub chain: ChainKind,
    /// Authority or follower.
    pub role: Role,
    /// Its directory: `<dir>/<name>`.
    pub home: PathBuf,
    /// Where its RPC binds (port 0: ephemeral).
    pub rpc_addr: SocketAddr,
    /// Where its peer-to-peer networking listens (port 0: ephemeral).
    pub p2p_addr: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

impl NodeSpec {
    /// The redb data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data")
    }
    /// The node config file.
    pub fn config_path(&self) -> PathBuf {
        self.home.join("node.toml")
    }
    /// The authority key file (authorities only).
    pub fn key_path(&self) -> Option<PathBuf> {
        (self.role == Role::Authority).then(|| self.home.join("authority.key"))
    }
    /// The file the node writes once its RPC is bound.
    pub fn endpoints_file(&self) -> PathBuf {
        service::endpoints::path(&self.data_dir())
    }
}

/// One chain: its parameters and nodes (authorities first, in genesis leader order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPlan {
    /// Which chain.
    pub kind: ChainKind,
    /// Its topology section.
    pub topology: ChainTopology,
    /// Its genesis file.
    pub genesis_path: PathBuf,
    /// Its nodes.
    pub nodes: Vec<NodeSpec>,
}

/// One federation member process (`bridge run --config <home>/member.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// `member-0`, ...
    pub name: String,
    /// Its position in the federation (and in genesis `peg.members`).
    pub index: usize,
    /// Its directory: `<dir>/<name>`.
    pub home: PathBuf,
    /// Where its status server binds (port 0: ephemeral).
    pub status_addr: SocketAddr,
    /// Where its attestation gossip listens (port 0: ephemeral).
    pub p2p_addr: SocketAddr,
    /// Index of the mainchain node it uses, in that chain's `nodes` (`index mod nodes`).
    pub main_node: usize,
    /// Index of the sidechain node it uses (`index mod nodes`).
    pub side_node: usize,
    /// Its log file.
    pub log: PathBuf,
}

impl MemberSpec {
    /// Its data dir: `bridge.redb`, `p2p.key`, `endpoints.json`.
    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data")
    }
    /// Its config file.
    pub fn config_path(&self) -> PathBuf {
        self.home.join("member.toml")
    }
    /// Its member key (0600).
    pub fn key_path(&self) -> PathBuf {
        self.home.join("member.key")
    }
    /// The file the member writes once it runs (p2p addresses, status URL, pid).
    pub fn endpoints_file(&self) -> PathBuf {
        service::endpoints::path(&self.data_dir())
    }
}

impl ChainPlan {
    /// Whether its nodes bind ephemeral p2p ports: then a node's address is known only once
    /// it runs (from its `endpoints.json`), not when the configs are written.
    pub fn ephemeral_p2p(&self) -> bool {
        self.topology.p2p_port == 0
    }

    /// The `bootstrap` list of node `i` when the ports are fixed: every other node of the
    /// chain, as the multiaddr it listens on (`/ip4/127.0.0.1/tcp/30334`; no `/p2p/<peer id>`,
    /// which is not known before a node first runs). Empty with ephemeral ports.
    pub fn predicted_bootstrap(&self, i: usize) -> Vec<String> {
        if self.ephemeral_p2p() {
            return vec![];
        }
        self.nodes
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, n)| {
                tcp_multiaddr(SocketAddr::new(
                    client_host(n.p2p_addr.ip()),
                    n.p2p_addr.port(),
                ))
            })
            .collect()
    }
}

/// Everything the launcher will create and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The devnet directory (absolute).
    pub dir: PathBuf,
    /// Where the logs go.
    pub log_dir: PathBuf,
    /// Both chains, main first.
    pub chains: Vec<ChainPlan>,
    /// The federation's members (none when the chains are not pegged).
    pub members: Vec<MemberSpec>,
}

impl Plan {
    /// Lays out `topology` under its directory, made absolute against `cwd`.
    pub fn new(topology: &Topology, cwd: &Path) -> Self {
        let dir = cwd.join(&topology.dir);
        let log_dir = dir.join("logs");
        let chains = ChainKind::ALL
            .into_iter()
            .map(|kind| {
                let t = match kind {
                    ChainKind::Main => &topology.mainchain,
                    ChainKind::Side => &topology.sidechain,
                };
                let nodes = (0..t.nodes())
                    .map(|i| {
                        let name = format!("{}-{i}", kind.name());
                        NodeSpec {
                            chain: kind,
                            role: if i < t.authorities {
                                Role::Authority
                            } else {
                                Role::Follower
                            },
                            home: dir.join(&name),
                            rpc_addr: SocketAddr::new(topology.rpc_host, port(t.rpc_port, i)),
                            p2p_addr: SocketAddr::new(topology.rpc_host, port(t.p2p_port, i)),
                            log: log_dir.join(format!("{name}.log")),
                            name,
                        }
                    })
                    .collect();
                ChainPlan {
                    kind,
                    topology: t.clone(),
                    genesis_path: dir.join(format!("{}-genesis.toml", kind.name())),
                    nodes,
                }
            })
            .collect::<Vec<ChainPlan>>();
        let f = &topology.federation;
        let (main_nodes, side_nodes) = (chains[0].nodes.len().max(1), chains[1].nodes.len().max(1));
        let members = (0..f.members)
            .map(|i| {
                let name = format!("member-{i}");
                MemberSpec {
                    index: i,
                    home: dir.join(&name),
                    status_addr: SocketAddr::new(topology.rpc_host, port(f.status_port, i)),
                    p2p_addr: SocketAddr::new(topology.rpc_host, port(f.p2p_port, i)),
                    main_node: i % main_nodes,
                    side_node: i % side_nodes,
                    log: log_dir.join(format!("{name}.log")),
                    name,
                }
            })
            .collect();
        Plan {
            dir,
            log_dir,
            chains,
            members,
        }
    }

    /// The chain of `kind`.
    pub fn chain(&self, kind: ChainKind) -> &ChainPlan {
        match kind {
            ChainKind::Main => &self.chains[0],
            ChainKind::Side => &self.chains[1],
        }
    }

    /// Every node, mainchain first.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeSpec> {
        self.chains.iter().flat_map(|c| c.nodes.iter())
    }

    /// `devnet.json`.
    pub fn info_file(&self) -> PathBuf {
        self.dir.join(primitives::devnet::FILE)
    }

    /// `devnet.pid`.
    pub fn pid_file(&self) -> PathBuf {
        pid_file(&self.dir)
    }
}

/// The pid file of the launcher running `dir`.
pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("devnet.pid")
}

/// Port of node `i` when the first takes `first` (0 stays 0: ephemeral).
fn port(first: u16, i: usize) -> u16 {
    if first == 0 {
        0
    } else {
        // validate() checked that the range fits.
        first.saturating_add(i as u16)
    }
}

/// A socket address as a libp2p TCP multiaddr (`/ip4/127.0.0.1/tcp/30333`).
pub fn tcp_multiaddr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
    }
}

/// The address a client uses to reach a server bound to `host` (`0.0.0.0` -> loopback).
pub fn client_host(host: IpAddr) -> IpAddr {
    if host.is_unspecified() {
        match host {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roles_ports_and_paths() {
        let mut t = Topology::default();
        t.mainchain.authorities = 2;
        t.mainchain.followers = 1;
        t.sidechain.rpc_port = 0;
        t.sidechain.authorities = 2;
        t.sidechain.followers = 2;
        let p = Plan::new(&t, Path::new("/work"));
        assert_eq!(p.dir, PathBuf::from("/work/devnet"));
        let main = &p.chains[0].nodes;
        assert_eq!(main.len(), 3);
        assert_eq!(main[2].name, "mainchain-2");
        assert_eq!(main[1].role, Role::Authority);
        assert_eq!(main[2].role, Role::Follower);
        assert_eq!(main[2].rpc_addr.port(), 8547);
        assert_eq!(main[2].p2p_addr.port(), 30335);
        assert_eq!(main[2].key_path(), None);
        assert_eq!(
            main[0].config_path(),
            PathBuf::from("/work/devnet/mainchain-0/node.toml")
        );
        assert_eq!(
            main[0].log,
            PathBuf::from("/work/devnet/logs/mainchain-0.log")
        );
        let side = &p.chains[1].nodes;
        assert!(side.iter().all(|n| n.rpc_addr.port() == 0));
        assert_eq!(side[3].role, Role::Follower);
        assert_eq!(p.nodes().count(), 7);
        assert_eq!(
            p.chains[1].genesis_path,
            PathBuf::from("/work/devnet/sidechain-genesis.toml")
        );
    }

    #[test]
    fn the_default_topology_is_four_authorities_per_chain() {
        let p = Plan::new(&Topology::default(), Path::new("/w"));
        for chain in &p.chains {
            let roles: Vec<Role> = chain.nodes.iter().map(|n| n.role).collect();
            assert_eq!(roles, [Role::Authority; 4], "{:?}", chain.kind);
        }
        assert_eq!(p.nodes().count(), 8);
        // Three members, each on node i of each chain, fixed ports.
        assert_eq!(p.members.len(), 3);
        let m = &p.members[2];
        assert_eq!(m.name, "member-2");
        assert_eq!((m.main_node, m.side_node), (2, 2));
        assert_eq!(m.status_addr.port(), 7547);
        assert_eq!(m.p2p_addr.port(), 31335);
        assert_eq!(
            m.config_path(),
            PathBuf::from("/w/devnet/member-2/member.toml")
        );
        assert_eq!(m.key_path(), PathBuf::from("/w/devnet/member-2/member.key"));
        assert_eq!(
            m.endpoints_file(),
            PathBuf::from("/w/devnet/member-2/data/endpoints.json")
        );
        assert_eq!(m.log, PathBuf::from("/w/devnet/logs/member-2.log"));
        let mut t = Topology::default();
        t.federation.members = 4;
        t.federation.threshold = 3;
        t.mainchain.authorities = 2;
        t.sidechain.authorities = 3;
        let p = Plan::new(&t, Path::new("/w"));
        let on: Vec<(usize, usize)> = p
            .members
            .iter()
            .map(|m| (m.main_node, m.side_node))
            .collect();
        assert_eq!(on, [(0, 0), (1, 1), (0, 2), (1, 0)]);
    }

    #[test]
    fn bootstrap_is_every_other_node_of_the_chain_or_nothing_with_ephemeral_ports() {
        let mut t = Topology {
            rpc_host: "0.0.0.0".parse().unwrap(),
            ..Topology::default()
        };
        t.sidechain.p2p_port = 0;
        let p = Plan::new(&t, Path::new("/w"));
        let main = &p.chains[0];
        assert!(!main.ephemeral_p2p());
        assert_eq!(
            main.predicted_bootstrap(1),
            [
                "/ip4/127.0.0.1/tcp/30333",
                "/ip4/127.0.0.1/tcp/30335",
                "/ip4/127.0.0.1/tcp/30336"
            ],
            "other nodes only, reached on loopback when binding 0.0.0.0"
        );
        assert_eq!(main.predicted_bootstrap(0).len(), 3);
        let side = &p.chains[1];
        assert!(side.ephemeral_p2p());
        assert!(side.predicted_bootstrap(2).is_empty());
        assert_eq!(
            tcp_multiaddr("127.0.0.1:30333".parse().unwrap()),
            "/ip4/127.0.0.1/tcp/30333"
        );
        assert_eq!(tcp_multiaddr("[::1]:0".parse().unwrap()), "/ip6/::1/tcp/0");
    }
}
