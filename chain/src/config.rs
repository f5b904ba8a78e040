//! Node configuration: defaults in code, then a TOML file, then environment variables
//! (`MAINCHAIN_RPC_ADDR`-style), then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use service::config::{load_layered, LogFormat};

use crate::mempool::MempoolConfig;
use crate::rules::ChainRules;

/// Errors loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layered sources do not form a valid configuration.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Everything a node reads at start. Every key is documented in `deploy/*-node.toml`; the
/// devnet launcher writes its `node.toml` files through this type too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the chain's redb files live (created by `init`).
    pub data_dir: PathBuf,
    /// JSON-RPC (HTTP and WebSocket), `/health` and `/metrics` listen here.
    pub rpc_addr: SocketAddr,
    /// Authority key file (hex secret, mode 0600). Without one the node only follows.
    #[serde(default)]
    pub authority_key_file: Option<PathBuf>,
    /// `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info` or `chain=debug,info`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Most concurrent RPC connections.
    #[serde(default = "default_rpc_max_connections")]
    pub rpc_max_connections: u32,
    /// Largest RPC request body in bytes.
    #[serde(default = "default_rpc_max_request_bytes")]
    pub rpc_max_request_bytes: u32,
    /// Largest RPC response body in bytes.
    #[serde(default = "default_rpc_max_response_bytes")]
    pub rpc_max_response_bytes: u32,
    /// Most entries in one JSON-RPC batch.
    #[serde(default = "default_rpc_max_batch_len")]
    pub rpc_max_batch_len: u32,
    /// Browser origins allowed to call the RPC (CORS): `["*"]` for any, empty for none (no
    /// CORS headers: only non-browser clients).
    #[serde(default)]
    pub rpc_cors_origins: Vec<String>,
    /// Most transactions in one `tp_sendTransactions` call.
    #[serde(default = "default_rpc_max_txs_per_call")]
    pub rpc_max_txs_per_call: usize,
    /// Most transactions in the mempool.
    #[serde(default = "default_mempool_max_txs")]
    pub mempool_max_txs: usize,
    /// Most transactions one sender may have queued.
    #[serde(default = "default_mempool_max_per_sender")]
    pub mempool_max_per_sender: usize,
    /// How far ahead of the account nonce a transaction may be queued.
    #[serde(default = "default_mempool_max_nonce_gap")]
    pub mempool_max_nonce_gap: u64,
    /// Percent by which a replacement must raise the fee priority.
    #[serde(default = "default_mempool_replace_bump_percent")]
    pub mempool_replace_bump_percent: u64,
    /// Most transactions one sender may park behind a nonce gap.
    #[serde(default = "default_mempool_max_parked_per_sender")]
    pub mempool_max_parked_per_sender: usize,
    /// Most transactions parked behind nonce gaps in all.
    #[serde(default = "default_mempool_max_parked")]
    pub mempool_max_parked: usize,
    /// Seconds a parked transaction (behind a nonce gap) is kept.
    #[serde(default = "default_mempool_parked_ttl_seconds")]
    pub mempool_parked_ttl_seconds: u64,
    /// Most transactions the journal of RPC-accepted transactions holds (`txjournal.redb`);
    /// a submission past it is refused with `journal_full`. Default: `mempool_max_txs` (read
    /// it through [`NodeConfig::journal_max_txs`]).
    #[serde(default)]
    pub journal_max_txs: Option<usize>,
    /// Write an account checkpoint every this many blocks.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: u64,
    /// Whether this node's authority key votes on finality. Off, it still produces blocks and
    /// follows finality as an observer: safe (not voting never makes anything final), but one
    /// vote short of the quorum. For measuring what finality costs, or to keep a suspect
    /// authority out of finality without stopping its blocks.
    #[serde(default = "default_finality_voting")]
    pub finality_voting: bool,
    /// libp2p listen address (multiaddr).
    pub p2p_listen: String,
    /// Peers to dial at start and redial with backoff, as multiaddrs (`/ip4/1.2.3.4/tcp/30333[/p2p/<peer id>]`).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// The node's libp2p identity key (created on first run); default `<data_dir>/p2p.key`.
    #[serde(default)]
    pub p2p_key_file: Option<PathBuf>,
    /// Largest gossip message in bytes (a whole block must fit).
    #[serde(default = "default_p2p_max_message_bytes")]
    pub p2p_max_message_bytes: usize,
    /// How long a misbehaving peer stays banned, in seconds.
    #[serde(default = "default_peer_ban_seconds")]
    pub peer_ban_seconds: u64,
    /// Never roll back more blocks than this; a longer competing branch is refused loudly.
    #[serde(default = "default_max_reorg_depth")]
    pub max_reorg_depth: u64,
    /// How far in the future (ms) a received block's slot may start.
    #[serde(default = "default_max_clock_drift_ms")]
    pub max_clock_drift_ms: u64,
}

fn default_p2p_max_message_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_peer_ban_seconds() -> u64 {
    300
}
fn default_max_reorg_depth() -> u64 {
    64
}
fn default_max_clock_drift_ms() -> u64 {
    500
}

fn default_log_level() -> String {
    "info".into()
}
fn default_rpc_max_connections() -> u32 {
    256
}
fn default_rpc_max_request_bytes() -> u32 {
    16 * 1024 * 1024
}
fn default_rpc_max_response_bytes() -> u32 {
    16 * 1024 * 1024
}
fn default_rpc_max_batch_len() -> u32 {
    1000
}
fn default_rpc_max_txs_per_call() -> usize {
    5000
}

/// `fn name() -> T` giving the [`MempoolConfig`] default of `field`, for `#[serde(default)]`:
/// the pool's own defaults stay the one source.
macro_rules! mempool_defaults {
    ($($name:ident: $ty:ty = $field:ident),* $(,)?) => {
        $(fn $name() -> $ty {
            MempoolConfig::default().$field
        })*
    };
}
mempool_defaults! {
    default_mempool_max_txs: usize = max_txs,
    default_mempool_max_per_sender: usize = max_per_sender,
    default_mempool_max_nonce_gap: u64 = max_nonce_gap,
    default_mempool_replace_bump_percent: u64 = replace_bump_percent,
    default_mempool_max_parked_per_sender: usize = max_parked_per_sender,
    default_mempool_max_parked: usize = max_parked,
}
fn default_mempool_parked_ttl_seconds() -> u64 {
    MempoolConfig::default().parked_ttl_ms / 1000
}
fn default_checkpoint_interval() -> u64 {
    256
}
fn default_finality_voting() -> bool {
    true
}

impl NodeConfig {
    /// The keys without a default set to these, every other key at its default: what a file
    /// naming only these three gives (built through serde, so the defaults are the ones above).
    pub fn with_defaults(
        data_dir: PathBuf,
        rpc_addr: SocketAddr,
        p2p_listen: String,
    ) -> Result<Self, ConfigError> {
        #[derive(Serialize)]
        struct Required {
            data_dir: PathBuf,
            rpc_addr: SocketAddr,
            p2p_listen: String,
        }
        let required = Required {
            data_dir,
            rpc_addr,
            p2p_listen,
        };
        serde_json::to_value(required)
            .and_then(serde_json::from_value)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Layers defaults, the optional TOML file and `<PREFIX>_*` environment variables.
    pub fn load(rules: &ChainRules, file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = config::Config::builder()
            .set_default("data_dir", format!("./{}-data", rules.name))?
            .set_default("rpc_addr", format!("127.0.0.1:{}", rules.default_rpc_port))?
            .set_default(
                "p2p_listen",
                format!("/ip4/0.0.0.0/tcp/{}", rules.default_p2p_port),
            )?;
        let cfg: NodeConfig = load_layered(defaults, file, rules.env_prefix)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A node for tests on `data_dir`: RPC on `127.0.0.1:0`, p2p on `/ip4/127.0.0.1/tcp/0`,
    /// the authority key at `<data_dir>/authority.key` (see [`crate::node::spawn`], which
    /// puts the dev key there), every other key at its default. Reads no file and no
    /// environment, so two such nodes in one process never collide.
    pub fn test(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let key = data_dir.join("authority.key");
        let mut c = Self::with_defaults(
            data_dir,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "/ip4/127.0.0.1/tcp/0".into(),
        )
        // Only the three required keys are given and every other has a default: this cannot
        // fail (the_test_config_binds_port_0_and_is_valid checks it).
        .expect("the defaults deserialize");
        c.authority_key_file = Some(key);
        c
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.checkpoint_interval == 0 {
            return Err(ConfigError::Invalid(
                "checkpoint_interval must be at least 1".into(),
            ));
        }
        p2p::check_p2p_addrs(&self.p2p_listen, &self.bootstrap)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.rpc_max_txs_per_call == 0
            || self.mempool_max_txs == 0
            || self.journal_max_txs() == 0
        {
            return Err(ConfigError::Invalid(
                "rpc_max_txs_per_call, mempool_max_txs and journal_max_txs must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The journal's bound: `journal_max_txs`, else as many as the pool holds (the journal
    /// never holds what the pool does not, so a larger pool must not meet a smaller journal).
    pub fn journal_max_txs(&self) -> usize {
        self.journal_max_txs.unwrap_or(self.mempool_max_txs)
    }

    /// The mempool limits.
    pub fn mempool(&self) -> MempoolConfig {
        MempoolConfig {
            max_txs: self.mempool_max_txs,
            max_per_sender: self.mempool_max_per_sender,
            max_nonce_gap: self.mempool_max_nonce_gap,
            replace_bump_percent: self.mempool_replace_bump_percent,
            max_parked_per_sender: self.mempool_max_parked_per_sender,
            max_parked: self.mempool_max_parked,
            parked_ttl_ms: self.mempool_parked_ttl_seconds.saturating_mul(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::FeeRuleKind;

    fn rules() -> ChainRules {
        ChainRules {
            name: "testchain",
            env_prefix: "TESTCHAIN_CFG",
            default_block_time_ms: 1000,
            default_rpc_port: 7777,
            default_p2p_port: 7778,
            fee_rule: FeeRuleKind::FeeRate,
            peg_role: primitives::peg::PegRole::Main,
        }
    }

    #[test]
    fn defaults_file_then_environment() {
        // Its own prefix: the variables it sets must not reach the other tests, which run at
        // the same time in this process and read `TESTCHAIN_CFG_*`.
        let rules = ChainRules {
            env_prefix: "TESTENV_CFG",
            ..rules()
        };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("node.toml");
        std::fs::write(&f, "data_dir = \"/tmp/x\"\nmempool_max_txs = 10\n").unwrap();
        let c = NodeConfig::load(&rules, Some(&f)).unwrap();
        assert_eq!(c.rpc_addr.port(), 7777);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.mempool_max_txs, 10);
        assert_eq!(c.checkpoint_interval, 256);
        assert_eq!(c.journal_max_txs(), 10, "as many as the pool holds");
        // Safe while no other test reads `TESTENV_CFG_*`.
        std::env::set_var("TESTENV_CFG_RPC_ADDR", "127.0.0.1:9999");
        std::env::set_var(
            "TESTENV_CFG_BOOTSTRAP",
            "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2",
        );
        let c = NodeConfig::load(&rules, Some(&f)).unwrap();
        std::env::remove_var("TESTENV_CFG_RPC_ADDR");
        std::env::remove_var("TESTENV_CFG_BOOTSTRAP");
        assert_eq!(c.rpc_addr.port(), 9999);
        assert_eq!(c.bootstrap.len(), 2);
        assert_eq!(c.p2p_listen, "/ip4/0.0.0.0/tcp/7778");
        std::fs::write(&f, "data_dirr = \"/tmp/x\"\n").unwrap();
        assert!(NodeConfig::load(&rules, Some(&f)).is_err());
    }

    #[test]
    fn the_test_config_binds_port_0_and_is_valid() {
        let c = NodeConfig::test("/tmp/t");
        c.validate().expect("valid");
        assert_eq!(c.rpc_addr.port(), 0);
        assert_eq!(c.p2p_listen, "/ip4/127.0.0.1/tcp/0");
        assert_eq!(
            c.authority_key_file,
            Some(PathBuf::from("/tmp/t/authority.key"))
        );
        // The same defaults as a config file that names only the required keys.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("node.toml");
        std::fs::write(&f, "data_dir = \"/tmp/t\"\n").unwrap();
        let loaded = NodeConfig::load(&rules(), Some(&f)).unwrap();
        assert_eq!(
            format!("{:?}", c.mempool()),
            format!("{:?}", loaded.mempool())
        );
        assert_eq!(c.checkpoint_interval, loaded.checkpoint_interval);
        assert_eq!(c.max_reorg_depth, loaded.max_reorg_depth);
        assert_eq!(c.journal_max_txs(), loaded.journal_max_txs());
    }

    #[test]
    fn a_written_config_reads_back_as_itself() {
        let mut c = NodeConfig::with_defaults(
            "/tmp/x".into(),
            "127.0.0.1:1".parse().unwrap(),
            "/ip4/127.0.0.1/tcp/2".into(),
        )
        .unwrap();
        assert_eq!(c.checkpoint_interval, 256);
        assert_eq!(c.mempool_max_txs, MempoolConfig::default().max_txs);
        c.authority_key_file = Some("/tmp/k".into());
        c.log_format = LogFormat::Json;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("node.toml");
        std::fs::write(&f, toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(NodeConfig::load(&rules(), Some(&f)).unwrap(), c);
    }
}
