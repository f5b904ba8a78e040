//! Where the wallet finds things: the two chains' endpoints, the keystore, the config file.
//!
//! Endpoint precedence: flag > environment (`WALLET_MAIN_RPC`, `WALLET_SIDE_RPC`, read by clap
//! together with the flag) > config file > the devnet's `devnet.json` > the defaults.

use std::path::{Path, PathBuf};

use primitives::devnet::{ChainSection, DevnetInfo};
use serde::{Deserialize, Serialize};

use crate::chains::ChainSel;
use crate::error::{Result, WalletError};

/// The mainchain endpoint when nothing else names one.
pub const DEFAULT_MAIN_RPC: &str = "http://127.0.0.1:8545";
/// The sidechain endpoint when nothing else names one.
pub const DEFAULT_SIDE_RPC: &str = "http://127.0.0.1:9545";
/// The devnet launcher's endpoints file, relative to the working directory.
pub const DEVNET_FILE: &str = "devnet/devnet.json";

/// The wallet config file (TOML). Every key is optional; unknown keys are an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The mainchain's JSON-RPC endpoint.
    pub main_rpc: Option<String>,
    /// The sidechain's JSON-RPC endpoint.
    pub side_rpc: Option<String>,
    /// The keystore directory.
    pub keystore: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an error only when `required`.
    pub fn load(path: &Path, required: bool) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => return Err(WalletError::io("reading the config file", path, e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| WalletError::Config {
                path: path.to_path_buf(),
                reason: e.message().to_string(),
            })
    }
}

/// The first node's HTTP endpoint of each chain in the devnet launcher's `devnet.json`
/// (`mainchain.nodes[0].rpc_http`, `sidechain.nodes[0].rpc_http`), read through the type the
/// launcher writes it with. Fields the wallet does not know are ignored; a missing or unreadable
/// file gives nothing.
pub fn devnet_endpoints(path: &Path) -> (Option<String>, Option<String>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    let Ok(info) = serde_json::from_str::<DevnetInfo>(&text) else {
        return (None, None);
    };
    let first = |c: &ChainSection| c.first_rpc_http().map(str::to_string);
    (first(&info.mainchain), first(&info.sidechain))
}

/// Where an endpoint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `--main-rpc` / `--side-rpc` or `WALLET_MAIN_RPC` / `WALLET_SIDE_RPC`.
    FlagOrEnv,
    /// The config file.
    Config,
    /// The devnet's `devnet.json`.
    Devnet,
    /// The built-in default.
    Default,
}

/// An endpoint and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// The URL.
    pub url: String,
    /// Its origin.
    pub source: Source,
}

/// Everything resolved from flags, environment and files.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The mainchain endpoint.
    pub main: Endpoint,
    /// The sidechain endpoint.
    pub side: Endpoint,
    /// The keystore directory.
    pub keystore: PathBuf,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The devnet file read, if it gave an endpoint.
    pub devnet_file: Option<PathBuf>,
    /// The record of sent transactions: `<wallet home>/sent.redb`.
    pub sent_record: PathBuf,
}

/// What the command line said (flags already merged with their environment variables by clap).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--main-rpc` / `WALLET_MAIN_RPC`.
    pub main_rpc: Option<String>,
    /// `--side-rpc` / `WALLET_SIDE_RPC`.
    pub side_rpc: Option<String>,
    /// `--keystore` / `WALLET_KEYSTORE`.
    pub keystore: Option<PathBuf>,
    /// `--config` / `WALLET_CONFIG`: must exist when given.
    pub config: Option<PathBuf>,
    /// `WALLET_HOME`: the wallet's home directory instead of the platform default.
    pub home: Option<PathBuf>,
    /// `WALLET_DEVNET_FILE`: the devnet endpoints file instead of `./devnet/devnet.json`.
    pub devnet_file: Option<PathBuf>,
}

/// The wallet's home: `WALLET_HOME`, else `<platform data dir>/twinpeg-wallet`
/// (`~/.local/share/twinpeg-wallet` on Linux, `~/Library/Application Support/twinpeg-wallet` on macOS).
pub fn default_home() -> PathBuf {
    dirs::data_dir()
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("twinpeg-wallet")
}

impl Settings {
    /// Resolves every setting by precedence.
    pub fn resolve(o: &Overrides) -> Result<Self> {
        let home = o.home.clone().unwrap_or_else(default_home);
        let (config, config_file) = match &o.config {
            Some(p) => (ConfigFile::load(p, true)?, Some(p.clone())),
            None => {
                let p = home.join("config.toml");
                let c = ConfigFile::load(&p, false)?;
                let read = c.as_ref().map(|_| p);
                (c, read)
            }
        };
        let config = config.unwrap_or_default();
        let devnet_path = o
            .devnet_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEVNET_FILE));
        let (dev_main, dev_side) = devnet_endpoints(&devnet_path);
        let devnet_file = (dev_main.is_some() || dev_side.is_some()).then_some(devnet_path);
        let pick =
            |flag: &Option<String>, conf: &Option<String>, dev: Option<String>, default: &str| {
                if let Some(u) = flag {
                    Endpoint {
                        url: u.clone(),
                        source: Source::FlagOrEnv,
                    }
                } else if let Some(u) = conf {
                    Endpoint {
                        url: u.clone(),
                        source: Source::Config,
                    }
                } else if let Some(u) = dev {
                    Endpoint {
                        url: u,
                        source: Source::Devnet,
                    }
                } else {
                    Endpoint {
                        url: default.to_string(),
                        source: Source::Default,
                    }
                }
            };
        Ok(Settings {
            main: pick(&o.main_rpc, &config.main_rpc, dev_main, DEFAULT_MAIN_RPC),
            side: pick(&o.side_rpc, &config.side_rpc, dev_side, DEFAULT_SIDE_RPC),
            keystore: o
                .keystore
                .clone()
                .or(config.keystore)
                .unwrap_or_else(|| home.join("keystore")),
            config_file,
            devnet_file,
            sent_record: home.join(crate::record::FILE),
        })
    }

    /// The endpoint of `chain`.
    pub fn endpoint(&self, chain: ChainSel) -> &Endpoint {
        match chain {
            ChainSel::Main => &self.main,
            ChainSel::Side => &self.side,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_config_devnet_default() {
        let dir = tempfile::tempdir().unwrap();
        let devnet = dir.path().join("devnet.json");
        // As the launcher writes it, plus a field this wallet does not know.
        let node = |port: u16| {
            serde_json::json!({"name": "n", "role": "authority",
                "rpc_http": format!("http://127.0.0.1:{port}"), "rpc_ws": "ws://x",
                "log": "/l", "pid": 1})
        };
        let chain = |port| {
            serde_json::json!({"chain_id": 1001, "block_time_ms": 1000, "genesis_hash": "0x00",
                "nodes": [node(port)]})
        };
        let file = serde_json::json!({"dir": "/d", "mainchain": chain(1111),
            "sidechain": chain(2222), "members": [], "accounts": [], "added_later": true});
        std::fs::write(&devnet, file.to_string()).unwrap();
        let mut o = Overrides {
            home: Some(dir.path().join("home")),
            devnet_file: Some(devnet.clone()),
            ..Default::default()
        };
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.main.url, "http://127.0.0.1:1111");
        assert_eq!(s.main.source, Source::Devnet);
        assert_eq!(s.side.url, "http://127.0.0.1:2222");
        assert_eq!(s.keystore, dir.path().join("home/keystore"));
        assert_eq!(s.sent_record, dir.path().join("home/sent.redb"));
        assert_eq!(s.devnet_file.as_deref(), Some(devnet.as_path()));

        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(
            dir.path().join("home/config.toml"),
            "main_rpc = \"http://10.0.0.1:1\"\nkeystore = \"/k\"\n",
        )
        .unwrap();
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.main.url, "http://10.0.0.1:1");
        assert_eq!(s.main.source, Source::Config);
        assert_eq!(s.side.source, Source::Devnet);
        assert_eq!(s.keystore, PathBuf::from("/k"));

        o.main_rpc = Some("http://flag".into());
        o.keystore = Some("/flag-keys".into());
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.main.url, "http://flag");
        assert_eq!(s.main.source, Source::FlagOrEnv);
        assert_eq!(s.keystore, PathBuf::from("/flag-keys"));

        o.devnet_file = Some(dir.path().join("absent.json"));
        o.home = Some(dir.path().join("nowhere"));
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.side.url, DEFAULT_SIDE_RPC);
        assert_eq!(s.side.source, Source::Default);
        assert!(s.config_file.is_none() && s.devnet_file.is_none());
    }

    #[test]
    fn config_typos_and_missing_explicit_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "main_rcp = \"http://x\"\n").unwrap();
        let o = Overrides {
            config: Some(p),
            ..Default::default()
        };
        assert!(matches!(
            Settings::resolve(&o),
            Err(WalletError::Config { .. })
        ));
        let o = Overrides {
            config: Some(dir.path().join("absent.toml")),
            ..Default::default()
        };
        assert!(matches!(Settings::resolve(&o), Err(WalletError::Io { .. })));
    }
}
