//! End-to-end: the `devnet` launcher starts both chains (4 authorities each, over
//! libp2p on loopback) and the federation (3 `bridge` members, threshold 2) as its child
//! processes, reports their endpoints in `devnet.json` and a table, resumes the same chains and
//! members without `--fresh`, restarts a dead node or member with `--restart`, moves coins
//! both ways with the real `wallet`, and never leaves a child process behind.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use primitives::devnet::DevnetInfo;
use primitives::types::Address;
use rpc_api::TwinpegApiClient;
use serde_json::Value;
use twinpeg_e2e::{bin, eventually_within, wallet_command};

/// Deadline for the launcher to bring a devnet up or down on a loaded 2-core machine.
const LAUNCH_DEADLINE: Duration = Duration::from_secs(180);
/// Deadline for a running devnet to reach a condition (agreement, a height, peers): eight debug
/// nodes share two loaded cores.
const DEADLINE: Duration = Duration::from_secs(120);
/// The nodes of each chain in the default topology, in order.
const NODES: [(&str, &str); 4] = [
    ("0", "authority"),
    ("1", "authority"),
    ("2", "authority"),
    ("3", "authority"),
];
/// Development account 0, which the tests move coins with.
const DEV0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// Development account 9: the devnet's default receiver of the peg-out fees.
const DEV9: &str = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";
/// One coin in base units.
const COIN: u128 = 1_000_000_000_000_000_000;

/// A running `devnet up`; on drop (also when a test fails) it is stopped, and every node pid it
/// listed is killed if still alive.
struct Launcher {
    dir: PathBuf,
    out: PathBuf,
    err: PathBuf,
    child: Option<Child>,
    pids: Vec<u32>,
}

impl Launcher {
    /// `devnet up --dir <dir>` with short block times and ephemeral ports (nodes and members),
    /// plus `extra`.
    fn start(dir: &Path, name: &str, extra: &[&str]) -> Result<Self> {
        // A previous run's devnet.json must not be taken for this run's.
        let _ = std::fs::remove_file(dir.join("devnet.json"));
        let parent = dir.parent().context("devnet dir has a parent")?;
        let out = parent.join(format!("{name}.out"));
        let err = parent.join(format!("{name}.err"));
        let child = Command::new(bin("devnet"))
            .arg("up")
            .arg("--dir")
            .arg(dir)
            .args(["--main-block-time-ms", "300", "--side-block-time-ms", "200"])
            .args(["--main-port", "0", "--side-port", "0"])
            .args(["--main-p2p-port", "0", "--side-p2p-port", "0"])
            .args(["--member-status-port", "0", "--member-p2p-port", "0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?)
            .spawn()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            out,
            err,
            child: Some(child),
            pids: vec![],
        })
    }

    fn pid(&self) -> Result<Pid> {
        let c = self.child.as_ref().context("launcher not running")?;
        Ok(Pid::from_raw(i32::try_from(c.id())?))
    }

    /// What the launcher printed so far (for failure messages).
    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits until `devnet.json` is written; fails early if the launcher exits.
    fn wait_info(&mut self) -> Result<Value> {
        let file = self.dir.join("devnet.json");
        let start = Instant::now();
        loop {
            if let Some(v) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                self.pids = child_pids(&v);
                // The file is exactly the declared type (the wallet reads it through it): it
                // parses, and nothing is lost or added on the way back. The assertions on the
                // raw JSON below pin the documented shape independently of that type.
                let typed: DevnetInfo = serde_json::from_value(v.clone())
                    .with_context(|| format!("devnet.json as primitives::devnet: {v}"))?;
                assert_eq!(serde_json::to_value(&typed)?, v, "devnet.json round trip");
                return Ok(v);
            }
            if let Some(status) = self.child.as_mut().context("no launcher")?.try_wait()? {
                bail!(
                    "the launcher exited ({status}) before writing devnet.json\n{}",
                    self.output()
                );
            }
            if start.elapsed() > LAUNCH_DEADLINE {
                bail!(
                    "no devnet.json after {LAUNCH_DEADLINE:?}\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the launcher has exited.
    fn wait_exit(&mut self) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("no launcher")?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if start.elapsed() > LAUNCH_DEADLINE {
                bail!("the launcher did not exit in time\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let start = Instant::now();
            while matches!(c.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for &pid in &self.pids {
            if !gone(pid) {
                if let Ok(p) = i32::try_from(pid) {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
        }
    }
}

/// Every child pid in a `devnet.json`: the nodes of both chains and the members.
fn child_pids(info: &Value) -> Vec<u32> {
    ["mainchain", "sidechain"]
        .iter()
        .flat_map(|c| info[c]["nodes"].as_array().cloned().unwrap_or_default())
        .chain(info["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect()
}

/// Whether no live process has this pid (a zombie nobody reaped yet counts as gone).
fn gone(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return true;
    };
    if kill(Pid::from_raw(p), None) == Err(nix::errno::Errno::ESRCH) {
        return true;
    }
    // /proc/<pid>/stat: "pid (comm) S ...": state Z is a zombie.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn client(url: &str) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .build(url)
        .expect("valid URL")
}

/// Polls `f` until it yields `Some`, or fails after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, DEADLINE, f).await
}

/// The first node's HTTP URL of `chain` in a `devnet.json`.
fn url(info: &Value, chain: &str) -> String {
    node_url(info, chain, 0)
}

/// Node `i`'s HTTP URL of `chain` in a `devnet.json`.
fn node_url(info: &Value, chain: &str, i: usize) -> String {
    info[chain]["nodes"][i]["rpc_http"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every node's HTTP URL of `chain`.
fn urls(info: &Value, chain: &str) -> Vec<String> {
    (0..info[chain]["nodes"].as_array().map_or(0, Vec::len))
        .map(|i| node_url(info, chain, i))
        .collect()
}

async fn head(url: &str) -> u64 {
    client(url).head().await.map(|h| h.number).unwrap_or(0)
}

async fn wait_head_above(url: &str, height: u64) -> Result<u64> {
    let c = client(url);
    until(&format!("{url} above height {height}"), || async {
        c.head()
            .await
            .ok()
            .map(|h| h.number)
            .filter(|&n| n > height)
    })
    .await
}

/// Waits until every node has a block at `height` and all agree on its hash.
async fn agree_at(urls: &[String], height: u64) -> Result<String> {
    let clients: Vec<HttpClient> = urls.iter().map(|u| client(u)).collect();
    let agreed = until(&format!("{urls:?} to agree at height {height}"), || async {
        let mut hashes = Vec::new();
        for c in &clients {
            let b = c.block_by_number(height, None).await.ok().flatten()?;
            hashes.push(b.summary.hash.to_string());
        }
        hashes
            .windows(2)
            .all(|w| w[0] == w[1])
            .then(|| hashes[0].clone())
    })
    .await;
    if agreed.is_err() {
        // What each node thinks, for the failure message.
        let mut seen = Vec::new();
        for c in &clients {
            let at = c.block_by_number(height, None).await.ok().flatten();
            let f = c.finality_status().await.ok();
            seen.push(format!(
                "{:?} final {:?}",
                at.map(|b| b.summary.hash),
                f.map(|f| (f.head, f.finalized.number, f.instance, f.round, f.stalled))
            ));
        }
        return agreed.with_context(|| seen.join("\n"));
    }
    agreed
}

/// Waits until the node at `url` has at least one peer.
async fn wait_peers(url: &str) -> Result<usize> {
    let c = client(url);
    until(&format!("{url} to have a peer"), || async {
        c.peers().await.ok().map(|p| p.len()).filter(|&n| n > 0)
    })
    .await
}

fn devnet(args: &[&str], dir: &Path) -> Result<std::process::Output> {
    Ok(Command::new(bin("devnet"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .output()?)
}

/// A temporary directory (removed on drop) and the devnet directory inside it.
fn devnet_dir() -> Result<(tempfile::TempDir, PathBuf)> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("devnet");
    Ok((tmp, dir))
}

/// Whether `v` is a string starting with `prefix`.
fn starts_with(v: &Value, prefix: &str) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(prefix))
}

/// A process entry of `devnet.json`: named `name`, serving HTTP on loopback at `url_key`,
/// logging to a file that exists, with a pid.
fn check_process(p: &Value, name: &str, url_key: &str) {
    assert_eq!(p["name"].as_str(), Some(name));
    assert!(starts_with(&p[url_key], "http://127.0.0.1:"), "{name}: {p}");
    assert!(
        Path::new(p["log"].as_str().unwrap_or("")).is_file(),
        "{name}: {p}"
    );
    assert!(p["pid"].as_u64().is_some(), "{name}: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_up_serves_both_chains_and_stops_without_leaving_children() -> Result<()> {
    let (_tmp, dir) = devnet_dir()?;
    let mut launcher = Launcher::start(&dir, "up", &["--fresh"])?;
    let info = launcher.wait_info()?;

    // The documented shape.
    assert_eq!(info["dir"].as_str(), dir.to_str());
    let members = info["members"].as_array().context("members")?;
    assert_eq!(members.len(), 3, "3 members by default");
    for (i, m) in members.iter().enumerate() {
        check_process(m, &format!("member-{i}"), "status_http");
        assert!(starts_with(&m["address"], "0x"));
    }
    let fed = &info["federation"];
    assert_eq!(fed["threshold"].as_u64(), Some(2));
    assert_eq!(fed["main_confirmations"].as_u64(), Some(1));
    assert_eq!(fed["side_confirmations"].as_u64(), Some(1));
    assert_eq!(fed["peg_out_fee"].as_str(), Some("10000000000000000"));
    assert_eq!(fed["fee_recipient"].as_str(), Some(DEV9));
    for (chain, id, block_ms) in [("mainchain", 298081, 300), ("sidechain", 298082, 200)] {
        let c = &info[chain];
        assert_eq!(c["chain_id"].as_u64(), Some(id), "{chain}");
        assert_eq!(c["block_time_ms"].as_u64(), Some(block_ms), "{chain}");
        assert!(starts_with(&c["genesis_hash"], "0x"));
        let nodes = c["nodes"].as_array().context("nodes")?;
        assert_eq!(nodes.len(), 4, "{chain}: 4 authorities");
        for (node, (i, role)) in nodes.iter().zip(NODES) {
            check_process(node, &format!("{chain}-{i}"), "rpc_http");
            assert_eq!(node["role"].as_str(), Some(role), "{chain}-{i}");
            assert!(starts_with(&node["rpc_ws"], "ws://127.0.0.1:"));
        }
    }
    let accounts = info["accounts"].as_array().context("accounts")?;
    assert_eq!(accounts.len(), 10);
    assert_eq!(
        accounts[0]["address"].as_str(),
        Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
    assert_eq!(
        accounts[0]["private_key"].as_str(),
        Some("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    );
    // Pegged: the sidechain starts with supply 0.
    assert_eq!(
        accounts[0]["balance_main"].as_str(),
        Some("10000000000000000000000")
    );
    assert_eq!(accounts[0]["balance_side"].as_str(), Some("0"));

    // Both chains produce, all four nodes of each agree on the chain, the last is
    // connected, and the balances shown are the chains' own.
    for chain in ["mainchain", "sidechain"] {
        let u = url(&info, chain);
        let all = urls(&info, chain);
        let h = head(&u).await;
        let target = wait_head_above(&u, h + 2).await?;
        agree_at(&all, target).await?;
        assert!(wait_peers(&all[3]).await? >= 1, "{chain}-3 has peers");
        let acct = client(&u)
            .account("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>()?)
            .await?;
        let key = if chain == "mainchain" {
            "balance_main"
        } else {
            "balance_side"
        };
        assert_eq!(
            Some(acct.balance.to_string().as_str()),
            accounts[0][key].as_str()
        );
    }

    // The table went to stdout once everything was healthy.
    let printed = std::fs::read_to_string(&launcher.out)?;
    assert!(
        printed.contains("Twinpeg devnet is up"),
        "{}",
        launcher.output()
    );
    for chain in ["mainchain", "sidechain"] {
        for (i, (n, role)) in NODES.iter().enumerate() {
            let row = printed
                .lines()
                .find(|l| l.contains(&format!("{chain}-{n} ")))
                .with_context(|| format!("a row for {chain}-{n}\n{printed}"))?;
            assert!(row.contains(role), "{row}");
            assert!(row.contains(&node_url(&info, chain, i)), "{row}");
            let ws = info[chain]["nodes"][i]["rpc_ws"].as_str().unwrap_or("?");
            assert!(row.contains(ws), "{row}");
        }
    }
    assert!(printed.contains("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"));
    assert!(printed.contains("2 of 3 members"), "{printed}");
    for m in members {
        let name = m["name"].as_str().unwrap_or("?");
        let row = printed
            .lines()
            .find(|l| l.contains(&format!("{name} ")))
            .with_context(|| format!("a row for {name}\n{printed}"))?;
        assert!(row.contains(m["address"].as_str().unwrap_or("?")), "{row}");
        assert!(
            row.contains(m["status_http"].as_str().unwrap_or("?")),
            "{row}"
        );
    }
    assert!(
        printed.contains("wallet deposit --from dev0 10"),
        "{printed}"
    );

    // `devnet status --json` sees the launcher and healthy nodes.
    let status = devnet(&["status", "--json"], &dir)?;
    assert!(status.status.success(), "{status:?}");
    let s: Value = serde_json::from_slice(&status.stdout)?;
    assert_eq!(
        s["launcher_pid"].as_u64(),
        Some(u64::from(launcher.pid()?.as_raw() as u32))
    );
    assert!(s["nodes"]
        .as_array()
        .is_some_and(|n| n.len() == 8 && n.iter().all(|n| n["healthy"] == Value::Bool(true))));
    assert!(
        s["members"].as_array().is_some_and(|m| m.len() == 3
            && m.iter().all(|m| m["healthy"] == Value::Bool(true)
                && m["peers"].as_u64().is_some_and(|p| p >= 1))),
        "{s}"
    );

    // Ctrl-C: the launcher stops every child, then exits.
    kill(launcher.pid()?, Signal::SIGINT)?;
    let status = launcher.wait_exit()?;
    assert!(status.success(), "{status}\n{}", launcher.output());
    for &pid in &launcher.pids {
        assert!(gone(pid), "child pid {pid} outlived the launcher");
    }
    assert!(!dir.join("devnet.pid").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_resumes_the_same_chains_without_fresh() -> Result<()> {
    let (_tmp, dir) = devnet_dir()?;
    let mut first = Launcher::start(&dir, "first", &["--fresh"])?;
    let info1 = first.wait_info()?;
    let (main1, side1) = (url(&info1, "mainchain"), url(&info1, "sidechain"));
    let main_before = wait_head_above(&main1, 2).await?;
    let side_before = wait_head_above(&side1, 2).await?;

    // `devnet down` stops the launcher, which stops its children.
    let down = devnet(&["down"], &dir)?;
    assert!(down.status.success(), "{down:?}\n{}", first.output());
    let status = first.wait_exit()?;
    assert!(status.success(), "{status}\n{}", first.output());
    for &pid in &first.pids {
        assert!(gone(pid), "child pid {pid} outlived the launcher");
    }
    // Started again without --fresh: the same chains, continuing from their data.
    let mut second = Launcher::start(&dir, "second", &[])?;
    let info2 = second.wait_info()?;
    for chain in ["mainchain", "sidechain"] {
        assert_eq!(
            info2[chain]["genesis_hash"], info1[chain]["genesis_hash"],
            "{chain} is the same chain"
        );
    }
    // The same federation: the member keys (and their stores) are kept.
    let addresses = |info: &Value| -> Vec<String> {
        info["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["address"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(addresses(&info2), addresses(&info1));
    assert_eq!(addresses(&info2).len(), 3);
    let (main2, side2) = (url(&info2, "mainchain"), url(&info2, "sidechain"));
    let (m, s) = (head(&main2).await, head(&side2).await);
    assert!(
        m >= main_before && s >= side_before,
        "resumed at heights {m}, {s}, below {main_before}, {side_before}"
    );
    wait_head_above(&main2, main_before).await?;
    wait_head_above(&side2, side_before).await?;
    // Node 0 of each chain bound new ephemeral ports; the others found it again (same peer
    // ids: the p2p keys live in the data dirs) and follow the same chain.
    for chain in ["mainchain", "sidechain"] {
        let all = urls(&info2, chain);
        assert_eq!(all.len(), 4, "{chain}");
        let last_head = wait_head_above(&all[3], head(&all[0]).await).await?;
        agree_at(&all, last_head).await?;
    }

    kill(second.pid()?, Signal::SIGTERM)?;
    let status = second.wait_exit()?;
    assert!(status.success(), "{status}\n{}", second.output());
    for &pid in &second.pids {
        assert!(gone(pid), "child pid {pid} outlived the launcher");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_restart_brings_a_killed_node_back() -> Result<()> {
    let (_tmp, dir) = devnet_dir()?;
    let mut launcher = Launcher::start(&dir, "restart", &["--fresh", "--restart"])?;
    let info = launcher.wait_info()?;
    let old_pid = info["mainchain"]["nodes"][0]["pid"]
        .as_u64()
        .context("pid")?;
    let main = url(&info, "mainchain");
    let h = wait_head_above(&main, 1).await?;

    kill(Pid::from_raw(i32::try_from(old_pid)?), Signal::SIGKILL)?;
    // The launcher reports it, restarts it on the same address and rewrites devnet.json.
    let file = dir.join("devnet.json");
    let new_pid = until("a new mainchain-0 pid in devnet.json", || async {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["mainchain"]["nodes"][0]["pid"].as_u64())
            .filter(|&p| p != old_pid)
    })
    .await?;
    launcher.pids.extend(u32::try_from(new_pid).ok());
    wait_head_above(&main, h).await?;
    // It kept its p2p port: its peers redial it, and the chain is one chain again.
    wait_peers(&main).await?;
    let all = urls(&info, "mainchain");
    let top = wait_head_above(&all[3], head(&main).await).await?;
    agree_at(&all, top).await?;
    let err = std::fs::read_to_string(&launcher.err)?;
    assert!(
        err.contains("mainchain-0 exited unexpectedly"),
        "{}",
        launcher.output()
    );

    // A member, too: restarted on the same status address, back among its peers.
    let old_member = info["members"][1]["pid"].as_u64().context("member pid")?;
    let status_url = info["members"][1]["status_http"]
        .as_str()
        .context("status_http")?
        .to_string();
    kill(Pid::from_raw(i32::try_from(old_member)?), Signal::SIGKILL)?;
    let new_member = until("a new member-1 pid in devnet.json", || async {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|v| v["members"][1]["status_http"].as_str() == Some(status_url.as_str()))
            .and_then(|v| v["members"][1]["pid"].as_u64())
            .filter(|&p| p != old_member)
    })
    .await?;
    launcher.pids.extend(u32::try_from(new_member).ok());
    let status = devnet(&["status", "--json"], &dir)?;
    assert!(status.status.success(), "{status:?}\n{}", launcher.output());

    kill(launcher.pid()?, Signal::SIGTERM)?;
    assert!(launcher.wait_exit()?.success(), "{}", launcher.output());
    for &pid in &launcher.pids {
        assert!(gone(pid), "child pid {pid} outlived the launcher");
    }
    Ok(())
}

/// `devnet.json` as it is now; `None` while it is missing or half-written.
fn read_info(file: &Path) -> Option<Value> {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
}

/// The pid at a JSON pointer of a `devnet.json` (`/members/1/pid`).
fn pid_at(info: &Value, pointer: &str) -> Result<u32> {
    let pid = info
        .pointer(pointer)
        .and_then(Value::as_u64)
        .with_context(|| format!("{pointer} in {info}"))?;
    Ok(u32::try_from(pid)?)
}

/// SIGKILL for one child of the devnet.
fn kill9(pid: u32) -> Result<()> {
    kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGKILL)?;
    Ok(())
}

/// Waits until `devnet.json` lists a new, live pid at each pointer of `old` (the launcher
/// rewrites it once a restarted child is ready); returns that `devnet.json`.
async fn wait_restarted(launcher: &mut Launcher, old: &[(&str, u32)]) -> Result<Value> {
    let file = launcher.dir.join("devnet.json");
    let names: Vec<&str> = old.iter().map(|(p, _)| *p).collect();
    let info = until(&format!("new pids at {names:?} in devnet.json"), || async {
        let v = read_info(&file)?;
        old.iter()
            .all(|&(p, before)| pid_at(&v, p).is_ok_and(|now| now != before && !gone(now)))
            .then_some(v)
    })
    .await
    .with_context(|| launcher.output())?;
    // The drop guard kills whatever is left of these too.
    launcher.pids.extend(child_pids(&info));
    Ok(info)
}

/// Waits until `devnet status --json` sees the launcher, every node healthy and every member
/// healthy with at least one other member connected.
async fn wait_all_healthy(launcher: &Launcher) -> Result<Value> {
    until(
        "every node and member healthy in `devnet status`",
        || async {
            let out = devnet(&["status", "--json"], &launcher.dir).ok()?;
            let s: Value = serde_json::from_slice(&out.stdout).ok()?;
            let nodes_ok = s["nodes"].as_array().is_some_and(|n| {
                n.len() == 8 && n.iter().all(|n| n["healthy"] == Value::Bool(true))
            });
            let members_ok = s["members"].as_array().is_some_and(|m| {
                m.len() == 3
                    && m.iter().all(|m| {
                        m["healthy"] == Value::Bool(true)
                            && m["peers"].as_u64().is_some_and(|p| p >= 1)
                    })
            });
            (s["launcher_pid"].is_u64() && nodes_ok && members_ok).then_some(s)
        },
    )
    .await
    .with_context(|| launcher.output())
}

/// Stops the launcher with SIGTERM; it must exit cleanly and leave no child behind.
fn stop_cleanly(mut launcher: Launcher) -> Result<()> {
    kill(launcher.pid()?, Signal::SIGTERM)?;
    assert!(launcher.wait_exit()?.success(), "{}", launcher.output());
    for &pid in &launcher.pids {
        assert!(gone(pid), "child pid {pid} outlived the launcher");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_restart_brings_back_a_member_and_its_node_killed_one_after_the_other() -> Result<()>
{
    let (_tmp, dir) = devnet_dir()?;
    let mut launcher = Launcher::start(&dir, "double-kill", &["--fresh", "--restart"])?;
    let info = launcher.wait_info()?;
    let member = pid_at(&info, "/members/1/pid")?;
    let node = pid_at(&info, "/mainchain/nodes/1/pid")?;

    // member-1 uses mainchain-1. The member dies first, its node 0.2 s later: the launcher
    // is then (re)starting the member when the node it waits for dies. This pause is the
    // scenario itself, not a wait for a condition.
    kill9(member)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill9(node)?;

    let info = wait_restarted(
        &mut launcher,
        &[("/members/1/pid", member), ("/mainchain/nodes/1/pid", node)],
    )
    .await?;
    // Nodes before the members that use them. (Should this test have stalled so long that
    // the member was back before its node died, there is no order to check.)
    let err = std::fs::read_to_string(&launcher.err)?;
    let at = |line: &str| {
        err.find(line)
            .with_context(|| format!("{line:?} in the log"))
    };
    let node_died = at("mainchain-1 exited unexpectedly")?;
    let node_back = at("devnet: mainchain-1 restarted")?;
    let member_back = at("devnet: member-1 restarted")?;
    assert!(
        member_back < node_died || node_back < member_back,
        "mainchain-1 is restarted before member-1\n{}",
        launcher.output()
    );
    // The node is back on its address and follows the chain again; the devnet works.
    let node1 = node_url(&info, "mainchain", 1);
    wait_head_above(&node1, head(&url(&info, "mainchain")).await).await?;
    wait_all_healthy(&launcher).await?;
    stop_cleanly(launcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_restart_brings_back_every_member_killed_at_once() -> Result<()> {
    let (_tmp, dir) = devnet_dir()?;
    let mut launcher = Launcher::start(&dir, "kill-members", &["--fresh", "--restart"])?;
    let info = launcher.wait_info()?;
    let pointers = ["/members/0/pid", "/members/1/pid", "/members/2/pid"];
    let mut old = Vec::new();
    for p in pointers {
        old.push((p, pid_at(&info, p)?));
    }
    for &(_, pid) in &old {
        kill9(pid)?;
    }

    wait_restarted(&mut launcher, &old).await?;
    // The federation is whole again: each member answers and sees another member.
    wait_all_healthy(&launcher).await?;
    let err = std::fs::read_to_string(&launcher.err)?;
    for i in 0..3 {
        assert!(
            err.contains(&format!("devnet: member-{i} restarted")),
            "{}",
            launcher.output()
        );
    }
    stop_cleanly(launcher)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_launcher_takes_its_children_with_it() -> Result<()> {
    let (_tmp, dir) = devnet_dir()?;
    let mut launcher = Launcher::start(&dir, "crash", &["--fresh"])?;
    launcher.wait_info()?;
    // SIGKILL: the launcher gets no chance to stop anything; the kernel's parent-death
    // signal (SIGTERM) stops the nodes.
    kill(launcher.pid()?, Signal::SIGKILL)?;
    launcher.wait_exit()?;
    let pids = launcher.pids.clone();
    until("every node to exit after the launcher died", || async {
        pids.iter().all(|&p| gone(p)).then_some(())
    })
    .await
}

/// The real `wallet` binary with its own home, keystore and password file, pointed at the
/// devnet through `WALLET_DEVNET_FILE` (the endpoints of `devnet.json`).
struct Wallet {
    home: PathBuf,
    devnet_file: PathBuf,
}

impl Wallet {
    fn new(parent: &Path, devnet_dir: &Path) -> Result<Self> {
        let home = parent.join("wallet");
        std::fs::create_dir_all(&home)?;
        std::fs::write(home.join("password"), "devnet test password\n")?;
        Ok(Self {
            home,
            devnet_file: devnet_dir.join("devnet.json"),
        })
    }

    /// Runs `wallet <args> --json`; the parsed stdout on success, else an error with both
    /// streams.
    fn json(&self, args: &[&str]) -> Result<Value> {
        let out = wallet_command()
            .current_dir(&self.home)
            .env("WALLET_HOME", &self.home)
            .env("WALLET_DEVNET_FILE", &self.devnet_file)
            // Light key encryption: a public development key, and debug-build scrypt is slow.
            .env("WALLET_SCRYPT_LOG_N", "10")
            .arg("--keystore")
            .arg(self.home.join("keystore"))
            .arg("--password-file")
            .arg(self.home.join("password"))
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wallet {args:?} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_str(&stdout).with_context(|| format!("wallet {args:?} printed {stdout}"))
    }
}

async fn balance_of(url: &str, address: &str) -> Result<u128> {
    Ok(client(url)
        .account(address.parse::<Address>()?)
        .await?
        .balance
        .0)
}

/// Base units in a JSON string field.
fn units(v: &Value) -> Result<u128> {
    v.as_str()
        .with_context(|| format!("{v} is not a string"))?
        .parse()
        .with_context(|| format!("{v} is not base units"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_deposit_and_withdrawal() -> Result<()> {
    let (tmp, dir) = devnet_dir()?;
    let mut launcher = Launcher::start(
        &dir,
        "peg",
        &[
            "--fresh",
            "--main-confirmations",
            "3",
            "--side-confirmations",
            "2",
        ],
    )?;
    let info = launcher.wait_info()?;
    assert_eq!(info["federation"]["main_confirmations"].as_u64(), Some(3));
    assert_eq!(info["members"].as_array().map(Vec::len), Some(3));
    // Each member.toml the launcher wrote is what `bridge` reads, with a private key file.
    for i in 0..3 {
        let config = dir.join(format!("member-{i}/member.toml"));
        let out = Command::new(bin("bridge"))
            .args(["config", "validate", "--config"])
            .arg(&config)
            .env_remove("BRIDGE_MAIN_RPC")
            .output()?;
        assert!(out.status.success(), "member-{i}: {out:?}");
        let expected = info["members"][i]["address"].as_str().unwrap_or("?");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expected),
            "member-{i}: {out:?}"
        );
    }
    let (main, side) = (url(&info, "mainchain"), url(&info, "sidechain"));
    assert_eq!(
        balance_of(&side, DEV0).await?,
        0,
        "the sidechain starts empty"
    );

    let wallet = Wallet::new(tmp.path(), &dir)?;
    let key = wallet.json(&["import-dev", "dev0", "0"])?;
    assert_eq!(key["address"].as_str(), Some(DEV0));

    // Deposit: Lock on main, 3 confirmations and final, 2 of 3 signatures, Mint on side, final.
    let main_before = balance_of(&main, DEV0).await?;
    let d = wallet.json(&["deposit", "--from", "dev0", "5", "--timeout", "180"])?;
    assert_eq!(d["direction"].as_str(), Some("deposit"), "{d}");
    assert_eq!(d["state"].as_str(), Some("paid"), "{d}");
    assert_eq!(units(&d["amount"])?, 5 * COIN, "{d}");
    assert_eq!(d["payout"]["chain"].as_str(), Some("side"), "{d}");
    assert_eq!(units(&d["payout"]["amount"])?, 5 * COIN, "{d}");
    assert!(d["source"]["confirmations"].as_u64() >= Some(3), "{d}");
    // Paid means final at both ends.
    for end in ["source", "payout"] {
        assert_eq!(d[end]["final"].as_bool(), Some(true), "{end}: {d}");
        assert!(
            d[end]["finalized"].as_u64() >= d[end]["block_number"].as_u64(),
            "{end}: {d}"
        );
    }
    assert_eq!(balance_of(&side, DEV0).await?, 5 * COIN);
    let main_after_deposit = balance_of(&main, DEV0).await?;
    assert!(
        main_after_deposit < main_before - 5 * COIN,
        "5 coins and the Lock's fee left the mainchain account"
    );

    // Withdrawal: Burn on side, 2 confirmations, Release on main minus the 0.01 coin fee.
    let fee = COIN / 100;
    let dev9_before = balance_of(&main, DEV9).await?;
    let w = wallet.json(&["withdraw", "--from", "dev0", "2", "--timeout", "180"])?;
    assert_eq!(w["direction"].as_str(), Some("withdrawal"), "{w}");
    assert_eq!(w["state"].as_str(), Some("paid"), "{w}");
    assert_eq!(units(&w["payout_amount"])?, 2 * COIN - fee, "{w}");
    assert_eq!(w["payout"]["chain"].as_str(), Some("main"), "{w}");
    assert_eq!(w["source"]["final"].as_bool(), Some(true), "{w}");
    assert_eq!(w["payout"]["final"].as_bool(), Some(true), "{w}");
    assert_eq!(
        balance_of(&main, DEV0).await?,
        main_after_deposit + 2 * COIN - fee,
        "the release paid 2 coins minus the peg-out fee"
    );
    assert_eq!(
        balance_of(&main, DEV9).await?,
        dev9_before + fee,
        "the fee went to the fee recipient"
    );
    let side_left = balance_of(&side, DEV0).await?;
    assert!(
        side_left < 3 * COIN && side_left > 3 * COIN - COIN / 1000,
        "3 coins minus the Burn's small fee stay on the sidechain: {side_left}"
    );
    // `wallet status` sees the same transfer paid.
    let id = w["id"].as_str().context("id")?;
    let st = wallet.json(&["status", id])?;
    assert_eq!(st["state"].as_str(), Some("paid"), "{st}");

    // The peg's invariants hold on the live network.
    let audit = Command::new(bin("bridge"))
        .args(["audit", "--main-rpc", &main, "--side-rpc", &side])
        .output()?;
    assert!(audit.status.success(), "bridge audit: {audit:?}");

    // Stopping the launcher stops every node and every member.
    kill(launcher.pid()?, Signal::SIGTERM)?;
    let status = launcher.wait_exit()?;
    assert!(status.success(), "{status}\n{}", launcher.output());
    assert_eq!(launcher.pids.len(), 11, "8 nodes and 3 members");
    for &pid in &launcher.pids {
        assert!(gone(pid), "child pid {pid} outlived the launcher");
    }
    Ok(())
}
