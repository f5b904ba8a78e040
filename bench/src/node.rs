//! A node process for benchmarks: release binaries next to the bench binary, a temporary
//! data dir, ephemeral ports; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chain::crypto::SecretKey;
use chain::genesis::Genesis;

/// A running node.
pub struct BenchNode {
    /// Holds data dir, key and log.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:port`.
    pub http: String,
    /// `ws://127.0.0.1:port`.
    pub ws: String,
    child: Child,
}

/// The directory of the running executable (where `cargo build --release` put the binaries).
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

impl BenchNode {
    /// Initializes a data dir from `genesis` and starts `binary` with `extra_config` TOML lines.
    pub fn start(
        binary: &str,
        genesis: &Genesis,
        authority: &SecretKey,
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
        let key = dir.path().join("authority.key");
        chain::node::write_key_file(&key, authority)?;
        let data = dir.path().join("data");
        let cfg = dir.path().join("node.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = {:?}\nrpc_addr = \"127.0.0.1:0\"\np2p_listen = \"/ip4/127.0.0.1/tcp/0\"\nauthority_key_file = {:?}\nlog_level = \"warn\"\n{extra_config}\n",
                data.display().to_string(),
                key.display().to_string()
            ),
        )?;
        let out = Command::new(&bin)
            .args(["init", "--genesis"])
            .arg(&g)
            .arg("--data-dir")
            .arg(&data)
            .output()?;
        if !out.status.success() {
            bail!("init: {}", String::from_utf8_lossy(&out.stderr));
        }
        let log = std::fs::File::create(dir.path().join("node.log"))?;
        let mut child = Command::new(&bin)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let endpoints = data.join("endpoints.json");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&endpoints) {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                if v["pid"].as_u64() == Some(u64::from(child.id())) {
                    let http = v["rpc_http"].as_str().context("rpc_http")?.to_string();
                    let ws = v["rpc_ws"].as_str().context("rpc_ws")?.to_string();
                    return Ok(Self {
                        dir,
                        http,
                        ws,
                        child,
                    });
                }
            }
            if let Some(s) = child.try_wait()? {
                bail!(
                    "{binary} exited with {s}: {}",
                    std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default()
                );
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                bail!("{binary} did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
