//! A node process for benchmarks: release binaries next to the bench binary, a temporary
//! data dir, ephemeral ports; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Result};
use primitives::crypto::SecretKey;
use primitives::genesis::Genesis;
use service::endpoints::NodeEndpoints;
use twinpeg_e2e::process::spawn_serving;

/// A running node.
pub struct BenchNode {
    /// Holds data dir, key and log.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:port`.
    pub http: String,
    /// `ws://127.0.0.1:port`.
    pub ws: String,
    /// Its p2p multiaddrs.
    pub p2p: Vec<String>,
    child: Child,
}

/// The directory of the running executable (where `cargo build --release` put the binaries).
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// A data dir initialized from a genesis, not yet running.
pub struct Prepared {
    dir: tempfile::TempDir,
    binary: String,
    config: PathBuf,
}

impl Prepared {
    /// Writes genesis, key and config, and runs `init`.
    pub fn new(binary: &str, genesis: &Genesis, authority: Option<&SecretKey>) -> Result<Self> {
        Self::with_config(binary, genesis, authority, "")
    }

    /// Like [`Prepared::new`] with extra node config TOML lines.
    pub fn with_config(
        binary: &str,
        genesis: &Genesis,
        authority: Option<&SecretKey>,
        extra_config: &str,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("twinpeg-bench").tempdir()?;
        let bin = bin_dir().join(binary);
        if !bin.exists() {
            bail!(
                "{} not found: run `cargo build --release --bins` first (`make bench` does)",
                bin.display()
            );
        }
        let g = dir.path().join("genesis.toml");
        std::fs::write(&g, toml::to_string(genesis)?)?;
        let data = dir.path().join("data");
        let mut cfg_text = format!(
            "data_dir = {:?}\nrpc_addr = \"127.0.0.1:0\"\np2p_listen = \"/ip4/127.0.0.1/tcp/0\"\nlog_level = \"warn\"\n{extra_config}\n",
            data.display().to_string()
        );
        if let Some(k) = authority {
            let key = dir.path().join("authority.key");
            p2p::write_key_file(&key, k)?;
            cfg_text.push_str(&format!(
                "authority_key_file = {:?}\n",
                key.display().to_string()
            ));
        }
        let config = dir.path().join("node.toml");
        std::fs::write(&config, cfg_text)?;
        let out = Command::new(&bin)
            .args(["init", "--genesis"])
            .arg(&g)
            .arg("--data-dir")
            .arg(&data)
            .output()?;
        if !out.status.success() {
            bail!("init: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Self {
            dir,
            binary: binary.to_string(),
            config,
        })
    }

    /// The node's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the node, dialing `bootstrap`, and waits until it serves.
    pub fn run(self, bootstrap: &[String]) -> Result<BenchNode> {
        let mut cmd = Command::new(bin_dir().join(&self.binary));
        cmd.arg("run").arg("--config").arg(&self.config);
        for b in bootstrap {
            cmd.arg("--bootstrap").arg(b);
        }
        let (child, endpoints) = spawn_serving::<NodeEndpoints>(
            &self.binary,
            &mut cmd,
            &self.data_dir(),
            &self.dir.path().join("node.log"),
            Duration::from_secs(120),
        )?;
        Ok(BenchNode {
            dir: self.dir,
            http: endpoints.rpc_http,
            ws: endpoints.rpc_ws,
            p2p: endpoints.p2p,
            child,
        })
    }
}

impl BenchNode {
    /// Initializes a data dir from `genesis` and starts `binary` as its authority.
    pub fn start(
        binary: &str,
        genesis: &Genesis,
        authority: &SecretKey,
        extra_config: &str,
    ) -> Result<Self> {
        Prepared::with_config(binary, genesis, Some(authority), extra_config)?.run(&[])
    }

    /// Peak resident memory of the process so far, in MiB (Linux `VmHWM`).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        peak_rss_mib(self.child.id())
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// One authority node per key (from the release binaries), each dialing the ones before it.
pub fn start_authorities(
    binary: &str,
    genesis: &Genesis,
    keys: &[SecretKey],
    config: &str,
) -> Result<Vec<BenchNode>> {
    let mut nodes: Vec<BenchNode> = Vec::new();
    for k in keys {
        let boot: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.p2p.first().cloned())
            .collect();
        nodes.push(Prepared::with_config(binary, genesis, Some(k), config)?.run(&boot)?);
    }
    Ok(nodes)
}

/// Peak resident memory of a process, in MiB (Linux `VmHWM`).
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds (user + system) a process has used (Linux `/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
