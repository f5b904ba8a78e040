//! A small LAN of network namespaces for tests that cross a real network: each "host" is a
//! namespace with its own address on a Linux bridge in the test's namespace, which keeps an
//! address on it too (the test talks to every host directly, no forwarding needed). Two hosts
//! can be partitioned from each other and healed while the test still reaches both. Needs root and iproute2; everything is removed on
//! drop.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One host of a [`Lan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The network namespace (`ip netns exec <netns> ...`).
    pub netns: String,
    /// Its IPv4 address on the LAN.
    pub ip: String,
    /// The host's link as seen from the test's namespace (cut and healed there).
    link: String,
}

/// Namespaces on one bridge; deleted on drop.
#[derive(Debug)]
pub struct Lan {
    bridge: String,
    /// The test's own address on the bridge, which every host reaches.
    pub gateway: String,
    /// The hosts, in creation order.
    pub hosts: Vec<Host>,
}

fn ip(args: &[&str]) -> Result<()> {
    iproute2("ip", args)
}

fn tc(args: &[&str]) -> Result<()> {
    iproute2("tc", args)
}

/// Runs an iproute2 `program`; its stderr is the error when it fails.
fn iproute2(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} (iproute2)"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Lan {
    /// Whether this process may create namespaces (root with iproute2).
    pub fn available() -> bool {
        // Unique per call: tests probing at once in one process must not see each other's.
        static PROBES: AtomicU32 = AtomicU32::new(0);
        let k = PROBES.fetch_add(1, Ordering::Relaxed);
        let probe = format!("tpprobe{}x{k}", std::process::id());
        let ok = ip(&["netns", "add", &probe]).is_ok();
        if ok {
            let _ = ip(&["netns", "del", &probe]);
        }
        ok
    }

    /// `n` hosts for a test, or `None` (saying so on stderr, so a skip is never silently
    /// green) where this process may not create namespaces.
    pub fn for_test(n: usize) -> Option<Self> {
        if !Self::available() {
            eprintln!("SKIPPED: creating network namespaces needs root and iproute2");
            return None;
        }
        Some(Self::new(n).expect("hosts on a bridge"))
    }

    /// Creates `n` hosts on a fresh bridge, on a /24 of their own.
    pub fn new(n: usize) -> Result<Self> {
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        // Names and subnet unique per process and per LAN, so parallel tests never collide;
        // interface names stay within Linux's 15 characters.
        let tag = format!("{}{}", pid % 100_000, k % 10);
        let subnet = format!("10.{}.{}", 100 + (pid / 250) % 100 + k % 50, pid % 250);
        let mut lan = Lan {
            gateway: format!("{subnet}.1"),
            bridge: format!("tpb{tag}"),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &lan.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", &lan.bridge])?;
        ip(&["link", "set", &lan.bridge, "up"])?;
        for i in 0..n {
            let host = Host {
                netns: format!("tpn{tag}h{i}"),
                ip: format!("{subnet}.{}", i + 2),
                link: format!("tpv{tag}h{i}"),
            };
            let inner = format!("tpi{tag}h{i}");
            ip(&["netns", "add", &host.netns])?;
            // Pushed before configuring, so drop removes a half-made host too.
            lan.hosts.push(host.clone());
            ip(&[
                "link", "add", &host.link, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &host.netns])?;
            ip(&["link", "set", &host.link, "master", &lan.bridge])?;
            ip(&["link", "set", &host.link, "up"])?;
            let ns = |args: &[&str]| {
                let mut all = vec!["netns", "exec", host.netns.as_str(), "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            ns(&["link", "set", "lo", "up"])?;
            ns(&["addr", "add", &format!("{}/24", host.ip), "dev", &inner])?;
            ns(&["link", "set", &inner, "up"])?;
        }
        Ok(lan)
    }

    fn in_host(&self, i: usize, args: &[&str]) -> Result<()> {
        let mut all = vec!["netns", "exec", self.hosts[i].netns.as_str(), "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Partitions hosts `i` and `j` from each other (each refuses to route to the other);
    /// the test still reaches both.
    pub fn cut(&self, i: usize, j: usize) -> Result<()> {
        self.in_host(
            i,
            &[
                "route",
                "add",
                "prohibit",
                &format!("{}/32", self.hosts[j].ip),
            ],
        )?;
        self.in_host(
            j,
            &[
                "route",
                "add",
                "prohibit",
                &format!("{}/32", self.hosts[i].ip),
            ],
        )
    }

    /// Ends the partition [`Lan::cut`] made.
    pub fn heal(&self, i: usize, j: usize) -> Result<()> {
        self.in_host(
            i,
            &[
                "route",
                "del",
                "prohibit",
                &format!("{}/32", self.hosts[j].ip),
            ],
        )?;
        self.in_host(
            j,
            &[
                "route",
                "del",
                "prohibit",
                &format!("{}/32", self.hosts[i].ip),
            ],
        )
    }
}

impl Lan {
    /// `tc netem` on the link into host `i` (e.g. `delay 50ms 10ms loss 2%`): what the host
    /// receives is delayed, lost, duplicated or reordered.
    pub fn netem(&self, i: usize, spec: &str) -> Result<()> {
        self.qdisc(i, "netem", spec)
    }

    /// A token-bucket filter on the link into host `i` (`tc qdisc ... tbf <spec>`): for
    /// kernels without netem.
    pub fn shape(&self, i: usize, spec: &str) -> Result<()> {
        self.qdisc(i, "tbf", spec)
    }

    /// Sets `kind` with `spec` as the root queueing discipline of host `i`'s link.
    fn qdisc(&self, i: usize, kind: &str, spec: &str) -> Result<()> {
        let mut args = vec![
            "qdisc",
            "replace",
            "dev",
            self.hosts[i].link.as_str(),
            "root",
            kind,
        ];
        args.extend(spec.split_whitespace());
        tc(&args)
    }

    /// Whether this kernel has `tc netem` (tried on the first host's link, then removed).
    pub fn netem_available(&self) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let ok = self.netem(0, "delay 1ms").is_ok();
        if ok {
            let _ = self.clear_netem(0);
        }
        ok
    }

    /// Removes what [`Lan::netem`] or [`Lan::shape`] set on host `i`'s link.
    pub fn clear_netem(&self, i: usize) -> Result<()> {
        tc(&["qdisc", "del", "dev", self.hosts[i].link.as_str(), "root"])
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.netns]);
            let _ = ip(&["link", "del", &h.link]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
