//! The devnet topology: what to run. Layered like the node config: defaults in code, then
//! `deploy/devnet.toml`, then `DEVNET_*` environment variables (`DEVNET_DIR`,
//! `DEVNET_SIDECHAIN__BLOCK_TIME_MS`: `__` separates a table from its key), then flags.
//! Every key is documented in `deploy/devnet.toml`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use primitives::peg::{PegParams, PegTerms};
use primitives::types::{Address, Amount, Hash};
use serde::{Deserialize, Serialize};
use service::config::LogFormat;

use crate::{Error, Result};

/// Peer-to-peer networking between nodes of one chain (issue 3): every node binary has it, so a
/// chain may run several authorities and followers. (Without it a chain could run exactly one
/// node: a second authority would fork off on its own, a follower would never hear of blocks.)
pub const P2P_AVAILABLE: bool = true;
/// The federation's bridge members (issue 4): the `bridge` binary runs one member per process.
pub const BRIDGE_AVAILABLE: bool = true;

/// The address of development account 9 (`m/44'/60'/0'/0/9`): the devnet's default
/// `federation.fee_recipient`, so the peg-out fees land on a key everyone has.
pub const DEV9_ADDRESS: &str = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";

/// The whole devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The devnet directory: every key, genesis, config, data dir and log lives under it.
    pub dir: PathBuf,
    /// The address node RPC servers bind (`127.0.0.1`; `0.0.0.0` to serve other hosts).
    pub rpc_host: IpAddr,
    /// Node log format, `text` or `json`.
    pub log_format: LogFormat,
    /// Node tracing filter, e.g. `info`.
    pub log_level: String,
    /// The main chain.
    pub mainchain: ChainTopology,
    /// The sidechain.
    pub sidechain: ChainTopology,
    /// The bridge federation.
    pub federation: FederationTopology,
    /// The prefunded development accounts.
    pub accounts: AccountsTopology,
}

/// One chain's nodes and consensus parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainTopology {
    /// The chain id every transaction carries.
    pub chain_id: u64,
    /// Slot length in milliseconds (at least 50).
    pub block_time_ms: u64,
    /// Authority nodes (block producers), at least 1.
    pub authorities: usize,
    /// Follower nodes (full nodes that do not produce).
    pub followers: usize,
    /// RPC port of the first node; node i takes `rpc_port + i`; 0 means ephemeral ports.
    pub rpc_port: u16,
    /// Peer-to-peer port of the first node; node i takes `p2p_port + i`; 0 means ephemeral
    /// (then each node after the first is started once the earlier ones run, and is given
    /// their bound addresses as `--bootstrap`).
    pub p2p_port: u16,
    /// Depth at which the bridge takes this chain's events as final (used by the members).
    pub confirmations: u64,
}

/// The bridge federation and the peg's parameters (written into both genesis files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationTopology {
    /// Number of members, each its own process with its own key; 0: no peg at all (both
    /// chains prefund the development accounts).
    pub members: usize,
    /// Signatures a payout needs; more than half of the members.
    pub threshold: usize,
    /// Status/metrics port of the first member; member i takes `status_port + i`; 0 means ephemeral.
    pub status_port: u16,
    /// Peer-to-peer (attestation gossip) port of the first member; member i takes
    /// `p2p_port + i`; 0 means ephemeral.
    pub p2p_port: u16,
    /// Smallest deposit or withdrawal, in coins.
    pub min_amount: String,
    /// Largest deposit or withdrawal, in coins.
    pub max_amount: String,
    /// Most that may be deposited per UTC day, in coins.
    pub daily_limit_deposits: String,
    /// Most that may be withdrawn per UTC day, in coins.
    pub daily_limit_withdrawals: String,
    /// Kept from each withdrawal (coins): the release pays `amount - peg_out_fee`.
    pub peg_out_fee: String,
    /// Who receives the peg-out fees on the mainchain (`0x` address).
    pub fee_recipient: String,
}

/// The prefunded development accounts of the well-known mnemonic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsTopology {
    /// How many: indices `0..count` of `m/44'/60'/0'/0/i`.
    pub count: u32,
    /// Balance of each on each chain, in coins (decimal, e.g. `"10000"`).
    pub balance: String,
}

impl Default for Topology {
    fn default() -> Self {
        let main = mainchain::rules();
        let side = sidechain::rules();
        Self {
            dir: PathBuf::from("devnet"),
            rpc_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            mainchain: ChainTopology {
                chain_id: 298081,
                block_time_ms: main.default_block_time_ms,
                authorities: 4,
                followers: 0,
                rpc_port: main.default_rpc_port,
                p2p_port: 30333,
                confirmations: 1,
            },
            sidechain: ChainTopology {
                chain_id: 298082,
                block_time_ms: side.default_block_time_ms,
                authorities: 4,
                followers: 0,
                rpc_port: side.default_rpc_port,
                p2p_port: 30433,
                confirmations: 1,
            },
            federation: FederationTopology {
                members: 3,
                threshold: 2,
                status_port: 7545,
                p2p_port: 31333,
                min_amount: "1".into(),
                max_amount: "1000".into(),
                daily_limit_deposits: "1000000".into(),
                daily_limit_withdrawals: "1000000".into(),
                peg_out_fee: "0.01".into(),
                fee_recipient: DEV9_ADDRESS.into(),
            },
            accounts: AccountsTopology {
                count: 10,
                balance: "10000".into(),
            },
        }
    }
}

/// Most members a devnet runs.
pub const MAX_MEMBERS: usize = 32;

/// Command-line overrides: the last layer. Each flag names the key it overrides.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// The devnet directory (`dir`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address the node RPC servers bind (`rpc_host`).
    #[arg(long)]
    pub rpc_host: Option<IpAddr>,
    /// Mainchain block time in ms (`mainchain.block_time_ms`; a new chain only).
    #[arg(long)]
    pub main_block_time_ms: Option<u64>,
    /// Sidechain block time in ms (`sidechain.block_time_ms`; a new chain only).
    #[arg(long)]
    pub side_block_time_ms: Option<u64>,
    /// First mainchain RPC port, 0 for ephemeral (`mainchain.rpc_port`).
    #[arg(long)]
    pub main_port: Option<u16>,
    /// First sidechain RPC port, 0 for ephemeral (`sidechain.rpc_port`).
    #[arg(long)]
    pub side_port: Option<u16>,
    /// First mainchain p2p port, 0 for ephemeral (`mainchain.p2p_port`).
    #[arg(long)]
    pub main_p2p_port: Option<u16>,
    /// First sidechain p2p port, 0 for ephemeral (`sidechain.p2p_port`).
    #[arg(long)]
    pub side_p2p_port: Option<u16>,
    /// Mainchain authority nodes (`mainchain.authorities`).
    #[arg(long)]
    pub main_authorities: Option<usize>,
    /// Mainchain follower nodes (`mainchain.followers`).
    #[arg(long)]
    pub main_followers: Option<usize>,
    /// Sidechain authority nodes (`sidechain.authorities`).
    #[arg(long)]
    pub side_authorities: Option<usize>,
    /// Sidechain follower nodes (`sidechain.followers`).
    #[arg(long)]
    pub side_followers: Option<usize>,
    /// Mainchain confirmations the bridge waits for (`mainchain.confirmations`).
    #[arg(long)]
    pub main_confirmations: Option<u64>,
    /// Sidechain confirmations the bridge waits for (`sidechain.confirmations`).
    #[arg(long)]
    pub side_confirmations: Option<u64>,
    /// Federation members (`federation.members`).
    #[arg(long)]
    pub members: Option<usize>,
    /// Federation threshold (`federation.threshold`).
    #[arg(long)]
    pub threshold: Option<usize>,
    /// First member's status port, 0 for ephemeral (`federation.status_port`).
    #[arg(long)]
    pub member_status_port: Option<u16>,
    /// First member's p2p port, 0 for ephemeral (`federation.p2p_port`).
    #[arg(long)]
    pub member_p2p_port: Option<u16>,
    /// Smallest peg transfer in coins (`federation.min_amount`).
    #[arg(long)]
    pub peg_min_amount: Option<String>,
    /// Largest peg transfer in coins (`federation.max_amount`).
    #[arg(long)]
    pub peg_max_amount: Option<String>,
    /// Fee kept from each withdrawal, in coins (`federation.peg_out_fee`).
    #[arg(long)]
    pub peg_out_fee: Option<String>,
    /// Receiver of the peg-out fees on the mainchain (`federation.fee_recipient`).
    #[arg(long)]
    pub peg_fee_recipient: Option<String>,
    /// Prefunded development accounts (`accounts.count`).
    #[arg(long)]
    pub accounts: Option<u32>,
}

impl Topology {
    /// Layers defaults, the TOML file and `DEVNET_*` environment variables. `file` is
    /// required when `required` (named on the command line), optional otherwise.
    pub fn load(file: Option<&Path>, required: bool) -> Result<Self> {
        Self::load_with_env(file, required, "DEVNET")
    }

    /// [`Topology::load`] with another environment prefix (for tests).
    pub fn load_with_env(file: Option<&Path>, required: bool, env_prefix: &str) -> Result<Self> {
        let defaults =
            config::Config::builder().add_source(config::Config::try_from(&Self::default())?);
        let b = service::config::with_toml_file(defaults, file, required).add_source(
            config::Environment::with_prefix(env_prefix)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        Ok(b.build()?.try_deserialize()?)
    }

    /// Applies command-line overrides.
    pub fn apply(&mut self, o: &Overrides) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut self.dir, &o.dir);
        set(&mut self.rpc_host, &o.rpc_host);
        set(&mut self.mainchain.block_time_ms, &o.main_block_time_ms);
        set(&mut self.sidechain.block_time_ms, &o.side_block_time_ms);
        set(&mut self.mainchain.rpc_port, &o.main_port);
        set(&mut self.sidechain.rpc_port, &o.side_port);
        set(&mut self.mainchain.p2p_port, &o.main_p2p_port);
        set(&mut self.sidechain.p2p_port, &o.side_p2p_port);
        set(&mut self.mainchain.authorities, &o.main_authorities);
        set(&mut self.mainchain.followers, &o.main_followers);
        set(&mut self.sidechain.authorities, &o.side_authorities);
        set(&mut self.sidechain.followers, &o.side_followers);
        set(&mut self.mainchain.confirmations, &o.main_confirmations);
        set(&mut self.sidechain.confirmations, &o.side_confirmations);
        set(&mut self.federation.members, &o.members);
        set(&mut self.federation.threshold, &o.threshold);
        set(&mut self.federation.status_port, &o.member_status_port);
        set(&mut self.federation.p2p_port, &o.member_p2p_port);
        set(&mut self.federation.min_amount, &o.peg_min_amount);
        set(&mut self.federation.max_amount, &o.peg_max_amount);
        set(&mut self.federation.peg_out_fee, &o.peg_out_fee);
        set(&mut self.federation.fee_recipient, &o.peg_fee_recipient);
        set(&mut self.accounts.count, &o.accounts);
    }

    /// Checks ranges and consistency (independent of what the workspace can run today).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        for (name, c) in [
            ("mainchain", &self.mainchain),
            ("sidechain", &self.sidechain),
        ] {
            if c.chain_id == 0 {
                return bad(format!("{name}.chain_id must not be 0"));
            }
            if c.block_time_ms < 50 {
                return bad(format!(
                    "{name}.block_time_ms {} is below 50",
                    c.block_time_ms
                ));
            }
            if c.authorities == 0 {
                return bad(format!("{name}.authorities must be at least 1"));
            }
        }
        if self.mainchain.chain_id == self.sidechain.chain_id {
            return bad("mainchain and sidechain need different chain ids".into());
        }
        // Port ranges [first, first + nodes) must fit and must not overlap (0: ephemeral).
        let mut ranges = Vec::new();
        for (name, c) in [
            ("mainchain", &self.mainchain),
            ("sidechain", &self.sidechain),
        ] {
            for (what, first) in [("rpc_port", c.rpc_port), ("p2p_port", c.p2p_port)] {
                if first == 0 {
                    continue;
                }
                let end = u32::from(first) + c.nodes() as u32;
                if end > 65536 {
                    return bad(format!(
                        "{name}.{what} {first} leaves no room for {} nodes",
                        c.nodes()
                    ));
                }
                ranges.push((format!("{name}.{what}"), u32::from(first), end));
            }
        }
        let f = &self.federation;
        if f.members > 0 {
            for (what, first) in [("status_port", f.status_port), ("p2p_port", f.p2p_port)] {
                if first == 0 {
                    continue;
                }
                let end = u32::from(first) + f.members as u32;
                if end > 65536 {
                    return bad(format!(
                        "federation.{what} {first} leaves no room for {} members",
                        f.members
                    ));
                }
                ranges.push((format!("federation.{what}"), u32::from(first), end));
            }
        }
        for (i, (a, a0, a1)) in ranges.iter().enumerate() {
            for (b, b0, b1) in &ranges[i + 1..] {
                if a0 < b1 && b0 < a1 {
                    return bad(format!(
                        "port ranges overlap: {a} {a0}..{a1} and {b} {b0}..{b1}"
                    ));
                }
            }
        }
        if f.members > MAX_MEMBERS {
            return bad(format!(
                "federation.members {} is above {MAX_MEMBERS}",
                f.members
            ));
        }
        if f.members > 0 && (f.threshold * 2 <= f.members || f.threshold > f.members) {
            return bad(format!(
                "federation.threshold {} must be more than half of the {} members and at most all of them",
                f.threshold, f.members
            ));
        }
        if f.members > 0 {
            // The chain's own federation rules (M > N/2, limits, fee below the minimum,
            // confirmations >= 1), on stand-in member addresses.
            let stand_ins = (0..f.members).map(|i| Address([i as u8 + 1; 20])).collect();
            self.peg_params(stand_ins)?
                .validate()
                .map_err(|e| Error::Invalid(format!("federation: {e}")))?;
        }
        if self.accounts.count > 1000 {
            return bad(format!(
                "accounts.count {} is above 1000",
                self.accounts.count
            ));
        }
        self.balance()?;
        Ok(())
    }

    /// Refuses what needs components that do not exist yet (see [`P2P_AVAILABLE`], [`BRIDGE_AVAILABLE`]).
    pub fn check_supported(&self) -> Result<()> {
        if !P2P_AVAILABLE {
            for (name, c) in [
                ("mainchain", &self.mainchain),
                ("sidechain", &self.sidechain),
            ] {
                if c.authorities != 1 || c.followers != 0 {
                    return Err(Error::Unsupported(format!(
                        "{name}: {} authorities and {} followers need peer-to-peer networking between \
                         nodes, which is not built yet; run one authority and no followers per chain \
                         ({name}.authorities = 1, {name}.followers = 0)",
                        c.authorities, c.followers
                    )));
                }
            }
        }
        if !BRIDGE_AVAILABLE && self.federation.members != 0 {
            return Err(Error::Unsupported(format!(
                "{} federation members need the bridge, which is not built yet; set federation.members = 0",
                self.federation.members
            )));
        }
        Ok(())
    }

    /// The peg parameters both genesis files carry, for these member addresses (in member
    /// order); `counterpart_genesis` is zero until [`primitives::genesis::link_geneses`] sets it.
    pub fn peg_params(&self, members: Vec<Address>) -> Result<PegParams> {
        let f = &self.federation;
        let coins = |key: &str, v: &str| {
            Amount::parse_coins(v)
                .map_err(|e| Error::Invalid(format!("federation.{key} {v:?}: {e}")))
        };
        let fee_recipient = f.fee_recipient.parse::<Address>().map_err(|e| {
            Error::Invalid(format!(
                "federation.fee_recipient {:?}: {e}",
                f.fee_recipient
            ))
        })?;
        Ok(PegParams {
            members,
            terms: PegTerms {
                threshold: u32::try_from(f.threshold)
                    .map_err(|_| Error::Invalid("federation.threshold is too large".into()))?,
                main_confirmations: self.mainchain.confirmations,
                side_confirmations: self.sidechain.confirmations,
                min_amount: coins("min_amount", &f.min_amount)?,
                max_amount: coins("max_amount", &f.max_amount)?,
                daily_limit_deposits: coins("daily_limit_deposits", &f.daily_limit_deposits)?,
                daily_limit_withdrawals: coins(
                    "daily_limit_withdrawals",
                    &f.daily_limit_withdrawals,
                )?,
                peg_out_fee: coins("peg_out_fee", &f.peg_out_fee)?,
                fee_recipient,
            },
            counterpart_genesis: Hash::ZERO,
        })
    }

    /// Whether the chains are pegged (the federation has members).
    pub fn pegged(&self) -> bool {
        self.federation.members > 0
    }

    /// The per-account balance in base units.
    pub fn balance(&self) -> Result<Amount> {
        Amount::parse_coins(&self.accounts.balance)
            .map_err(|e| Error::Invalid(format!("accounts.balance: {e}")))
    }
}

impl ChainTopology {
    /// Authorities plus followers.
    pub fn nodes(&self) -> usize {
        self.authorities + self.followers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_the_defaults_and_loads() {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("devnet.toml");
        let t = Topology::load_with_env(Some(&file), true, "DEVNET_TEST_EXAMPLE").unwrap();
        t.validate().unwrap();
        t.check_supported().unwrap();
        assert_eq!(t, Topology::default());
    }

    #[test]
    fn defaults_file_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("devnet.toml");
        std::fs::write(
            &f,
            "dir = \"/tmp/dn\"\n[sidechain]\nblock_time_ms = 300\n[mainchain]\nrpc_port = 0\n",
        )
        .unwrap();
        // The prefix is unique to this test.
        std::env::set_var("DEVNET_TEST_LAYERS_SIDECHAIN__BLOCK_TIME_MS", "200");
        let mut t = Topology::load_with_env(Some(&f), true, "DEVNET_TEST_LAYERS").unwrap();
        std::env::remove_var("DEVNET_TEST_LAYERS_SIDECHAIN__BLOCK_TIME_MS");
        assert_eq!(t.dir, PathBuf::from("/tmp/dn"));
        assert_eq!(t.sidechain.block_time_ms, 200);
        assert_eq!(
            t.sidechain.chain_id, 298082,
            "a table given in part keeps its other defaults"
        );
        assert_eq!(t.mainchain.rpc_port, 0);
        assert_eq!(t.mainchain.block_time_ms, 6000);
        assert_eq!((t.mainchain.authorities, t.mainchain.followers), (4, 0));
        t.apply(&Overrides {
            main_block_time_ms: Some(100),
            main_authorities: Some(2),
            main_followers: Some(0),
            side_authorities: Some(1),
            side_followers: Some(3),
            ..Overrides::default()
        });
        assert_eq!(t.mainchain.block_time_ms, 100);
        assert_eq!((t.mainchain.authorities, t.mainchain.followers), (2, 0));
        assert_eq!((t.sidechain.authorities, t.sidechain.followers), (1, 3));
        t.validate().unwrap();

        std::fs::write(&f, "[mainchain]\nblock_time = 300\n").unwrap();
        assert!(Topology::load_with_env(Some(&f), true, "DEVNET_TEST_LAYERS").is_err());
        let missing = dir.path().join("absent.toml");
        assert!(Topology::load_with_env(Some(&missing), true, "DEVNET_TEST_LAYERS").is_err());
        assert!(Topology::load_with_env(Some(&missing), false, "DEVNET_TEST_LAYERS").is_ok());
    }

    #[test]
    fn validation_and_what_is_not_supported_yet() {
        let ok = Topology::default();
        ok.validate().unwrap();
        let mut t = ok.clone();
        t.sidechain.block_time_ms = 10;
        assert!(t.validate().is_err());
        let mut t = ok.clone();
        t.sidechain.chain_id = t.mainchain.chain_id;
        assert!(t.validate().is_err());
        let mut t = ok.clone();
        t.sidechain.rpc_port = 8545;
        assert!(t.validate().is_err());
        // The federation: M > N/2 at load, the chain's own peg rules, port ranges.
        assert_eq!((ok.federation.members, ok.federation.threshold), (3, 2));
        ok.check_supported().unwrap();
        let mut t = ok.clone();
        t.federation.threshold = 1;
        assert!(t.validate().is_err(), "1 of 3 is not a majority");
        t.federation.members = 4;
        t.federation.threshold = 2;
        assert!(t.validate().is_err(), "2 of 4 is not a majority");
        t.federation.threshold = 5;
        assert!(t.validate().is_err(), "more than all");
        t.federation.threshold = 3;
        t.validate().unwrap();
        let mut t = ok.clone();
        t.federation.peg_out_fee = "1".into();
        assert!(t.validate().is_err(), "the fee must be below the minimum");
        let mut t = ok.clone();
        t.federation.min_amount = "2000".into();
        assert!(t.validate().is_err(), "min above max");
        let mut t = ok.clone();
        t.federation.fee_recipient = "0x12".into();
        assert!(t.validate().is_err());
        let mut t = ok.clone();
        t.mainchain.confirmations = 0;
        assert!(t.validate().is_err());
        let mut t = ok.clone();
        t.federation.p2p_port = 30334;
        assert!(t.validate().is_err(), "member p2p ports overlap the nodes'");
        let mut t = ok.clone();
        t.federation.members = 0;
        t.federation.threshold = 0;
        t.validate().unwrap();
        assert!(!t.pegged());
        let p = ok.peg_params(vec![Address([1; 20])]).unwrap();
        assert_eq!(p.terms.min_amount, Amount::coins(1));
        assert_eq!(p.terms.max_amount, Amount::coins(1000));
        assert_eq!(p.terms.peg_out_fee, Amount(Amount::COIN / 100));
        assert_eq!(p.terms.daily_limit_deposits, Amount::coins(1_000_000));
        assert_eq!(
            (p.terms.main_confirmations, p.terms.side_confirmations),
            (1, 1)
        );
        assert_eq!(p.terms.fee_recipient.to_checksum(), DEV9_ADDRESS);
        let mut t = ok.clone();
        t.mainchain.authorities = 3;
        t.mainchain.followers = 2;
        t.sidechain.authorities = 1;
        t.sidechain.followers = 0;
        t.validate().unwrap();
        t.check_supported().unwrap();
        t.mainchain.authorities = 0;
        assert!(t.validate().is_err());
        let mut t = ok.clone();
        // 4 nodes from 9545: 9545..9548 must not reach the sidechain's p2p range.
        t.sidechain.p2p_port = 9547;
        assert!(t.validate().is_err());
        let mut t = ok;
        t.accounts.balance = "lots".into();
        assert!(t.validate().is_err());
    }
}
