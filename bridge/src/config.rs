//! The member's configuration: defaults in code, then a TOML file, then `BRIDGE_*`
//! environment variables (every key is documented in `deploy/member.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use service::config::LogFormat;

use crate::error::{BridgeError, Result};

/// Everything `bridge run` reads at start; the devnet launcher writes its `member.toml` files
/// through this type too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Where `bridge.redb`, `p2p.key` and `endpoints.json` live.
    pub data_dir: PathBuf,
    /// The member key as a hex file with mode 0600 (or use `keystore_file`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The member key as a Web3 v3 keystore (encrypted), unlocked with `password_file`.
    #[serde(default)]
    pub keystore_file: Option<PathBuf>,
    /// File holding the keystore password (mode 0600).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The member's own mainchain node, `http://host:port`.
    pub main_rpc: String,
    /// The member's own sidechain node, `http://host:port`.
    pub side_rpc: String,
    /// WebSocket URL of the mainchain node; derived from `main_rpc` when absent.
    #[serde(default)]
    pub main_ws: Option<String>,
    /// WebSocket URL of the sidechain node; derived from `side_rpc` when absent.
    #[serde(default)]
    pub side_ws: Option<String>,
    /// libp2p listen address for the members' gossip.
    #[serde(default = "default_p2p_listen")]
    pub p2p_listen: String,
    /// Other members' p2p addresses, dialed at start and redialed with backoff.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// `GET /health`, `/metrics`, `/status` and the `bridge_status` JSON-RPC method.
    #[serde(default = "default_status_addr")]
    pub status_addr: SocketAddr,
    /// How long a non-designated member waits, once M signatures are held, before it
    /// submits the payout itself; also the wait between resubmissions.
    #[serde(default = "default_submit_timeout_ms")]
    pub submit_timeout_ms: u64,
    /// Polling interval when no head notification arrives.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often own attestations of unpaid transfers are gossiped again.
    #[serde(default = "default_regossip_interval_ms")]
    pub regossip_interval_ms: u64,
    /// How long a peer that misbehaves on the members' network (publishes attestations
    /// without being a member, presents a bad member statement, sends invalid gossip) stays
    /// banned, in seconds.
    #[serde(default = "default_peer_ban_seconds")]
    pub peer_ban_seconds: u64,
    /// Scanned block hashes kept per chain for reorg detection.
    #[serde(default = "default_scan_history")]
    pub scan_history: u64,
    /// `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info` or `bridge=debug,info`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

fn default_p2p_listen() -> String {
    "/ip4/0.0.0.0/tcp/30500".into()
}
fn default_status_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9500))
}
fn default_submit_timeout_ms() -> u64 {
    10_000
}
fn default_poll_interval_ms() -> u64 {
    1_000
}
fn default_regossip_interval_ms() -> u64 {
    5_000
}
fn default_peer_ban_seconds() -> u64 {
    300
}
fn default_scan_history() -> u64 {
    1_024
}
fn default_log_level() -> String {
    "info".into()
}

/// `ws://` for `http://`, `wss://` for `https://`.
pub fn ws_url(http: &str) -> String {
    if let Some(rest) = http.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http.to_string()
    }
}

impl MemberConfig {
    /// A member with a key file and its two nodes, every other key at its default: what a file
    /// naming only these four gives (built through serde, so the defaults are the ones above).
    pub fn with_defaults(
        data_dir: PathBuf,
        key_file: PathBuf,
        main_rpc: String,
        side_rpc: String,
    ) -> Result<Self> {
        #[derive(Serialize)]
        struct Required {
            data_dir: PathBuf,
            key_file: PathBuf,
            main_rpc: String,
            side_rpc: String,
        }
        let required = Required {
            data_dir,
            key_file,
            main_rpc,
            side_rpc,
        };
        serde_json::to_value(required)
            .and_then(serde_json::from_value)
            .map_err(|e| BridgeError::Config(e.to_string()))
    }

    /// Loads the file (if any), then the environment (`BRIDGE_MAIN_RPC`, ...), and validates.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let cfg: MemberConfig =
            service::config::load_layered(config::Config::builder(), file, "BRIDGE")
                .map_err(|e| BridgeError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges and that exactly one key source is named.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(BridgeError::Config(m));
        match (&self.key_file, &self.keystore_file, &self.password_file) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            _ => return bad("name either key_file, or keystore_file with password_file".into()),
        }
        for (name, url) in [("main_rpc", &self.main_rpc), ("side_rpc", &self.side_rpc)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("{name} {url:?} must be an http:// or https:// URL"));
            }
        }
        if let Err(e) = p2p::check_p2p_addrs(&self.p2p_listen, &self.bootstrap) {
            return bad(e.to_string());
        }
        if self.poll_interval_ms == 0
            || self.submit_timeout_ms == 0
            || self.regossip_interval_ms == 0
        {
            return bad(
                "poll_interval_ms, submit_timeout_ms and regossip_interval_ms must be positive"
                    .into(),
            );
        }
        if self.scan_history < 16 {
            return bad(format!(
                "scan_history {} must be at least 16",
                self.scan_history
            ));
        }
        Ok(())
    }

    /// The mainchain WebSocket URL.
    pub fn main_ws_url(&self) -> String {
        self.main_ws
            .clone()
            .unwrap_or_else(|| ws_url(&self.main_rpc))
    }

    /// The sidechain WebSocket URL.
    pub fn side_ws_url(&self) -> String {
        self.side_ws
            .clone()
            .unwrap_or_else(|| ws_url(&self.side_rpc))
    }

    /// `submit_timeout_ms` as a duration.
    pub fn submit_timeout(&self) -> Duration {
        Duration::from_millis(self.submit_timeout_ms)
    }

    /// `poll_interval_ms` as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_defaults_and_typos() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("member.toml");
        std::fs::write(
            &f,
            "data_dir = \"/tmp/m\"\nkey_file = \"/tmp/k\"\nmain_rpc = \"http://127.0.0.1:1\"\nside_rpc = \"http://127.0.0.1:2\"\n",
        )
        .expect("write");
        let c = MemberConfig::load(Some(&f)).expect("loads");
        assert_eq!(c.submit_timeout_ms, 10_000);
        assert_eq!(c.main_ws_url(), "ws://127.0.0.1:1");
        std::fs::write(&f, "data_dirr = \"/tmp/m\"\n").expect("write");
        assert!(MemberConfig::load(Some(&f)).is_err());
        std::fs::write(
            &f,
            "data_dir = \"/tmp/m\"\nmain_rpc = \"http://127.0.0.1:1\"\nside_rpc = \"http://127.0.0.1:2\"\n",
        )
        .expect("write");
        assert!(MemberConfig::load(Some(&f)).is_err(), "no key source");
    }

    #[test]
    fn a_written_config_reads_back_as_itself() {
        let mut c = MemberConfig::with_defaults(
            "/tmp/m".into(),
            "/tmp/k".into(),
            "http://127.0.0.1:1".into(),
            "http://127.0.0.1:2".into(),
        )
        .expect("defaults");
        assert_eq!(c.submit_timeout_ms, 10_000);
        c.main_ws = Some("ws://127.0.0.1:3".into());
        c.bootstrap = vec!["/ip4/127.0.0.1/tcp/4".into()];
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("member.toml");
        std::fs::write(&f, toml::to_string(&c).expect("toml")).expect("write");
        assert_eq!(MemberConfig::load(Some(&f)).expect("loads"), c);
    }

    #[test]
    fn the_example_in_deploy_parses() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/member.toml");
        let c = MemberConfig::load(Some(&example)).expect("deploy/member.toml is valid");
        assert_eq!(c.status_addr.port(), 9500);
        assert!(c.key_file.is_some());
    }
}
