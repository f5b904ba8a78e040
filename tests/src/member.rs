//! A bridge member process for tests and benchmarks: its own data dir, key file and config,
//! the `bridge` binary started (and restarted) on it, and where it serves. What callers differ
//! in (a namespace host, config keys of their own, the environment, where the binaries are) is
//! set with the builder methods before the first [`Member::spawn`].

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Result};
use primitives::crypto::SecretKey;
use service::endpoints::MemberEndpoints;

use crate::netns::Host;
use crate::process::{member_config, spawn_serving};
use crate::{bin_dir, DEADLINE};

/// One member process with its own data dir and key; killed on drop.
pub struct Member {
    /// The member's key (its address is its identity in the federation).
    pub key: SecretKey,
    /// Holds the key file, config, data dir and log.
    pub dir: tempfile::TempDir,
    /// Config keys of this member's own, over the harness's; read at every start.
    pub extra: toml::Table,
    /// Extra environment for every start.
    pub env: Vec<(String, String)>,
    /// Its gossip multiaddrs (with `/p2p/<peer id>`) from the last start.
    pub p2p: Vec<String>,
    /// `http://host:port` of its status server from the last start.
    pub status_url: String,
    main_rpc: String,
    side_rpc: String,
    host: Option<Host>,
    bin_dir: PathBuf,
    deadline: Duration,
    child: Option<Child>,
    stable_ports: bool,
}

impl Member {
    /// A member of the nodes at `main_rpc` and `side_rpc`, not yet started: writes its key
    /// file into a fresh temporary dir. Debug binaries next to the test, on loopback.
    pub fn new(key: SecretKey, main_rpc: &str, side_rpc: &str) -> Result<Self> {
        Self::with_prefix("bridge", key, main_rpc, side_rpc)
    }

    /// Like [`Member::new`], with the temporary dir's name starting with `prefix`.
    pub fn with_prefix(
        prefix: &str,
        key: SecretKey,
        main_rpc: &str,
        side_rpc: &str,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        p2p::write_key_file(&dir.path().join("member.key"), &key)?;
        Ok(Self {
            key,
            dir,
            extra: toml::Table::new(),
            env: Vec::new(),
            p2p: Vec::new(),
            status_url: String::new(),
            main_rpc: main_rpc.to_string(),
            side_rpc: side_rpc.to_string(),
            host: None,
            bin_dir: bin_dir(),
            deadline: DEADLINE,
            child: None,
            stable_ports: false,
        })
    }

    /// Runs on a namespace host: listens and serves on its address, inside its network.
    pub fn on_host(mut self, host: Host) -> Self {
        self.host = Some(host);
        self
    }

    /// On a namespace host, restarts listen on the ports of the first start, so the other
    /// members' bootstrap addresses stay valid.
    pub fn stable_ports(mut self) -> Self {
        self.stable_ports = true;
        self
    }

    /// Sets a config key of this member's own, over the harness's.
    pub fn config(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// Adds an environment variable to every start.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts `bridge` from `dir` (e.g. release builds) instead of the test's own build dir.
    pub fn bin_dir(mut self, dir: PathBuf) -> Self {
        self.bin_dir = dir;
        self
    }

    /// How long a start may take to write its endpoints ([`DEADLINE`] unless set).
    pub fn start_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The member's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the member's stderr goes, across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("member.log")
    }

    /// The member's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn binary(&self) -> Result<PathBuf> {
        let p = self.bin_dir.join("bridge");
        if !p.exists() {
            bail!(
                "{} not found: build the binaries first (`cargo build --workspace --bins`, \
                 with `--release` for the benchmarks)",
                p.display()
            );
        }
        Ok(p)
    }

    /// Writes the config with `bootstrap` and starts the process (again); waits for its
    /// endpoints.
    pub fn spawn(&mut self, bootstrap: &[String]) -> Result<()> {
        let key_file = self.dir.path().join("member.key");
        let mut t = member_config(
            &self.data_dir(),
            &key_file,
            &self.main_rpc,
            &self.side_rpc,
            bootstrap,
        );
        if let Some(h) = &self.host {
            let (status, p2p) = if self.stable_ports {
                (
                    crate::port_of(&self.status_url).unwrap_or(0),
                    self.p2p_addr()
                        .and_then(|a| crate::tcp_port_of(&a))
                        .unwrap_or(0),
                )
            } else {
                (0, 0)
            };
            let s = |v: String| toml::Value::String(v);
            t.insert("p2p_listen".into(), s(format!("/ip4/{}/tcp/{p2p}", h.ip)));
            t.insert("status_addr".into(), s(format!("{}:{status}", h.ip)));
        }
        t.extend(self.extra.clone());
        let cfg = self.dir.path().join("member.toml");
        std::fs::write(&cfg, toml::to_string(&t)?)?;
        // In a namespace, `ip netns exec` enters it and execs the member: same pid.
        let binary = self.binary()?;
        let mut cmd = match &self.host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &h.netns]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (child, endpoints) = spawn_serving::<MemberEndpoints>(
            "bridge member",
            &mut cmd,
            &self.data_dir(),
            &self.log_path(),
            self.deadline,
        )?;
        self.child = Some(child);
        self.status_url = endpoints.status_http;
        self.p2p = endpoints.p2p;
        Ok(())
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        crate::process::kill9(&mut self.child);
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its first gossip address, for others to bootstrap from.
    pub fn p2p_addr(&self) -> Option<String> {
        self.p2p.first().cloned()
    }

    /// `bridge status --json` against the running member.
    pub fn status(&self) -> Result<serde_json::Value> {
        let out = Command::new(self.binary()?)
            .args(["status", "--json", "--status-url", &self.status_url])
            .output()?;
        if !out.status.success() {
            bail!(
                "bridge status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}
