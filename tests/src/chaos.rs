//! `make chaos`: the devnet topology with every node and member in its own network namespace,
//! a stream of peg-ins, peg-outs and plain transfers from many accounts, and meanwhile a
//! seeded schedule of faults (kill -9, kills during recovery, crashes aimed at named steps,
//! SIGSTOP pauses, partitions, `tc netem` on links). After each fault and at the end it checks
//! the peg's promise: `bridge audit` exact, every transfer paid exactly once, each chain's
//! nodes on one chain, no process wedged. One table at the end; any violation fails the run.
//!
//! The schedule is drawn from one seed and printed before it runs; `--seed` replays it (the
//! instants a process is at when a signal lands still vary with the machine).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use parity_scale_codec::Encode;
use primitives::block::PegEvent;
use primitives::crypto::SecretKey;
use primitives::genesis::GenesisAccount;
use primitives::tx::{Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes, Hash};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rpc_api::types::TxStatus;
use rpc_api::TwinpegApiClient;

use crate::netns::Lan;
use crate::proxy::{Mode, Proxy};
use crate::{
    bridge_audit, pegged_geneses_with, test_peg, try_fee_for, ChainKind, Member, TestNode,
};

/// How much traffic and how many faults.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Seeds the schedule, the accounts and the amounts.
    pub seed: u64,
    /// Peg-ins (Locks on the mainchain) to send.
    pub peg_ins: usize,
    /// Peg-outs (Burns on the sidechain) to send.
    pub peg_outs: usize,
    /// Plain transfers to send, on either chain.
    pub transfers: usize,
    /// Accounts sending concurrently.
    pub users: usize,
    /// `kill -9` then restart, of a random node or member.
    pub kills: usize,
    /// Of those, how many are killed again within 2 s of their restart.
    pub recovery_kills: usize,
    /// Crashes aimed at a named step (a block committed, a payout signed or submitted).
    pub aimed: usize,
    /// SIGSTOP/SIGCONT pauses.
    pub pauses: usize,
    /// Pause length, milliseconds (min, max).
    pub pause_ms: (u64, u64),
    /// Partitions of the federation or of a chain's authorities, each healed.
    pub partitions: usize,
    /// How long a partition lasts, milliseconds (min, max).
    pub partition_ms: (u64, u64),
    /// `tc netem` episodes on a host's link.
    pub netems: usize,
    /// Episodes of a process running with its clock off by up to 3 s either way.
    pub skews: usize,
    /// Episodes of a node and of a member running on a full disk.
    pub full_disks: usize,
    /// Episodes of a member's node RPC stalling or serving a stale head.
    pub bad_rpcs: usize,
    /// Quiet time between two faults, milliseconds (min, max).
    pub gap_ms: (u64, u64),
    /// Mainchain block time.
    pub main_block_ms: u64,
    /// Sidechain block time.
    pub side_block_ms: u64,
    /// How long every transfer may take to be paid once the faults are over.
    pub drain: Duration,
}

impl Profile {
    /// A few minutes: what `make test` runs.
    pub fn short(seed: u64) -> Self {
        Self {
            seed,
            peg_ins: 24,
            peg_outs: 12,
            transfers: 24,
            users: 6,
            kills: 6,
            recovery_kills: 2,
            aimed: 3,
            pauses: 1,
            pause_ms: (5_000, 8_000),
            partitions: 3,
            partition_ms: (4_000, 8_000),
            netems: 1,
            skews: 1,
            full_disks: 1,
            bad_rpcs: 2,
            gap_ms: (1_000, 3_000),
            main_block_ms: 400,
            side_block_ms: 250,
            drain: Duration::from_secs(240),
        }
    }

    /// The documented full run: 1,000 peg-ins and 1,000 peg-outs, 100 kills (12 during
    /// recovery), 50 partitions.
    pub fn full(seed: u64) -> Self {
        Self {
            seed,
            peg_ins: 1_000,
            peg_outs: 1_000,
            transfers: 1_000,
            users: 24,
            kills: 100,
            recovery_kills: 12,
            aimed: 12,
            pauses: 10,
            pause_ms: (5_000, 60_000),
            partitions: 50,
            partition_ms: (5_000, 30_000),
            netems: 20,
            skews: 10,
            full_disks: 4,
            bad_rpcs: 10,
            gap_ms: (2_000, 6_000),
            main_block_ms: 500,
            side_block_ms: 300,
            drain: Duration::from_secs(600),
        }
    }
}

/// A process of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proc {
    /// Mainchain authority `i`.
    Main(usize),
    /// Sidechain authority `i`.
    Side(usize),
    /// Federation member `i`.
    Member(usize),
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proc::Main(i) => write!(f, "mainchain-{i}"),
            Proc::Side(i) => write!(f, "sidechain-{i}"),
            Proc::Member(i) => write!(f, "member-{i}"),
        }
    }
}

/// Which group a partition splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// One member cut off from the other members (a minority of the federation).
    FederationMinority(usize),
    /// A chain's authorities split 2/2 (`Main` or `Side` by `chain`).
    Halves(ChainKind, usize),
    /// One authority of a chain cut off from the other three.
    One(ChainKind, usize),
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `kill -9`, down for `down_ms`, restarted; with `again_ms`, killed once more that long
    /// after the restart (inside its recovery) and restarted again.
    Kill {
        /// The victim.
        target: Proc,
        /// How long it stays down.
        down_ms: u64,
        /// Kill again this long after the restart.
        again_ms: Option<u64>,
    },
    /// Restarted with `TWINPEG_CRASH_AT=point:pass`: it aborts at that step.
    Aimed {
        /// The victim.
        target: Proc,
        /// The crash point.
        point: &'static str,
        /// Which pass of it.
        pass: u32,
    },
    /// SIGSTOP, then SIGCONT after `ms`.
    Pause {
        /// The victim.
        target: Proc,
        /// How long.
        ms: u64,
    },
    /// A partition, healed after `ms`.
    Partition {
        /// Who is cut from whom.
        split: Split,
        /// How long.
        ms: u64,
    },
    /// Restarted on a disk with almost no room left (its data dir copied onto a small tmpfs)
    /// for `ms`, then moved back to a roomy one and restarted.
    FullDisk {
        /// The victim.
        target: Proc,
        /// How long.
        ms: u64,
    },
    /// Member `member`'s RPC to its node of `chain` stalls (or, with `stale`, answers reads
    /// with what it answered before) for `ms`.
    BadRpc {
        /// Which member.
        member: usize,
        /// Which of its nodes.
        chain: ChainKind,
        /// Stale answers rather than none.
        stale: bool,
        /// How long.
        ms: u64,
    },
    /// Restarted with its wall clock `skew_ms` off, for `ms`, then restarted right.
    Skew {
        /// The victim.
        target: Proc,
        /// How far off (negative: behind).
        skew_ms: i64,
        /// How long.
        ms: u64,
    },
    /// Delay, loss, duplication and reordering on a host's link for `ms`.
    Netem {
        /// The process whose host it is.
        target: Proc,
        /// `tc netem` arguments.
        spec: String,
        /// How long.
        ms: u64,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Kill {
                target,
                down_ms,
                again_ms: None,
            } => write!(f, "kill -9 {target}, down {down_ms} ms"),
            Fault::Kill {
                target,
                down_ms,
                again_ms: Some(a),
            } => write!(
                f,
                "kill -9 {target}, down {down_ms} ms, killed again {a} ms into its recovery"
            ),
            Fault::Aimed {
                target,
                point,
                pass,
            } => write!(f, "crash {target} at {point} (pass {pass})"),
            Fault::Pause { target, ms } => write!(f, "SIGSTOP {target} for {ms} ms"),
            Fault::Partition { split, ms } => write!(f, "partition {split:?} for {ms} ms"),
            Fault::Netem { target, spec, ms } => write!(f, "netem on {target}: {spec} for {ms} ms"),
            Fault::Skew {
                target,
                skew_ms,
                ms,
            } => write!(f, "clock of {target} off by {skew_ms} ms for {ms} ms"),
            Fault::FullDisk { target, ms } => write!(f, "full disk under {target} for {ms} ms"),
            Fault::BadRpc {
                member,
                chain,
                stale,
                ms,
            } => write!(
                f,
                "member-{member}'s {} RPC {} for {ms} ms",
                chain.binary(),
                if *stale {
                    "serves a stale head"
                } else {
                    "stalls"
                }
            ),
        }
    }
}

impl Fault {
    /// About how long running it and the checks after it take, milliseconds (to pace the load).
    fn expected_ms(&self) -> u64 {
        let checks = 3_000;
        checks
            + match self {
                Fault::Kill {
                    down_ms, again_ms, ..
                } => down_ms + again_ms.map_or(0, |a| a + 1_500) + 1_000,
                Fault::Aimed { .. } => 5_000,
                Fault::Pause { ms, .. } | Fault::Partition { ms, .. } | Fault::Netem { ms, .. } => {
                    *ms
                }
                Fault::Skew { ms, .. } | Fault::FullDisk { ms, .. } => ms + 2_000,
                Fault::BadRpc { ms, .. } => *ms,
            }
    }
}

const AUTHORITIES: usize = 4;
const MEMBERS: usize = 3;

fn any_proc(rng: &mut StdRng) -> Proc {
    match rng.gen_range(0..3) {
        0 => Proc::Main(rng.gen_range(0..AUTHORITIES)),
        1 => Proc::Side(rng.gen_range(0..AUTHORITIES)),
        _ => Proc::Member(rng.gen_range(0..MEMBERS)),
    }
}

fn any_chain(rng: &mut StdRng) -> ChainKind {
    if rng.gen_bool(0.5) {
        ChainKind::Main
    } else {
        ChainKind::Side
    }
}

/// The fault schedule of `p`, in the order it runs, with the quiet gap before each.
pub fn schedule(p: &Profile) -> Vec<(u64, Fault)> {
    let mut rng = StdRng::seed_from_u64(p.seed);
    let mut faults = Vec::new();
    let span = |rng: &mut StdRng, (lo, hi): (u64, u64)| rng.gen_range(lo..=hi.max(lo));
    for k in 0..p.kills {
        let again_ms = (k < p.recovery_kills).then(|| rng.gen_range(100..=2_000));
        faults.push(Fault::Kill {
            target: any_proc(&mut rng),
            down_ms: rng.gen_range(200..=3_000),
            again_ms,
        });
    }
    for k in 0..p.aimed {
        let (target, point) = match k % 3 {
            0 => (
                if rng.gen_bool(0.5) {
                    Proc::Main(rng.gen_range(0..AUTHORITIES))
                } else {
                    Proc::Side(rng.gen_range(0..AUTHORITIES))
                },
                "block-committed",
            ),
            1 => (Proc::Member(rng.gen_range(0..MEMBERS)), "member-signed"),
            _ => (Proc::Member(rng.gen_range(0..MEMBERS)), "member-submitted"),
        };
        faults.push(Fault::Aimed {
            target,
            point,
            // Blocks commit several times a second; a member signs or submits only when
            // traffic asks it to.
            pass: if point == "block-committed" {
                rng.gen_range(1..=5)
            } else {
                1
            },
        });
    }
    for _ in 0..p.pauses {
        faults.push(Fault::Pause {
            target: any_proc(&mut rng),
            ms: span(&mut rng, p.pause_ms),
        });
    }
    for k in 0..p.partitions {
        let split = match k % 3 {
            0 => Split::FederationMinority(rng.gen_range(0..MEMBERS)),
            1 => Split::Halves(any_chain(&mut rng), rng.gen_range(1..AUTHORITIES)),
            _ => Split::One(any_chain(&mut rng), rng.gen_range(0..AUTHORITIES)),
        };
        faults.push(Fault::Partition {
            split,
            ms: span(&mut rng, p.partition_ms),
        });
    }
    for _ in 0..p.netems {
        let spec = format!(
            "delay {}ms {}ms loss {}% duplicate {}% reorder {}% 50%",
            rng.gen_range(20..=200),
            rng.gen_range(5..=50),
            rng.gen_range(1..=10),
            rng.gen_range(1..=5),
            rng.gen_range(5..=25),
        );
        faults.push(Fault::Netem {
            target: any_proc(&mut rng),
            spec,
            ms: rng.gen_range(5_000..=15_000),
        });
    }
    for k in 0..p.full_disks {
        // A node and a member alternately: both write redb under load.
        let target = if k % 2 == 0 {
            if rng.gen_bool(0.5) {
                Proc::Main(rng.gen_range(0..AUTHORITIES))
            } else {
                Proc::Side(rng.gen_range(0..AUTHORITIES))
            }
        } else {
            Proc::Member(rng.gen_range(0..MEMBERS))
        };
        faults.push(Fault::FullDisk {
            target,
            ms: rng.gen_range(5_000..=15_000),
        });
    }
    for k in 0..p.bad_rpcs {
        faults.push(Fault::BadRpc {
            member: rng.gen_range(0..MEMBERS),
            chain: any_chain(&mut rng),
            stale: k % 2 == 0,
            ms: rng.gen_range(5_000..=20_000),
        });
    }
    for _ in 0..p.skews {
        let off = rng.gen_range(200..=3_000);
        faults.push(Fault::Skew {
            target: any_proc(&mut rng),
            skew_ms: if rng.gen_bool(0.5) { off } else { -off },
            ms: rng.gen_range(5_000..=15_000),
        });
    }
    faults.shuffle(&mut rng);
    faults
        .into_iter()
        .map(|f| (span(&mut rng, p.gap_ms), f))
        .collect()
}

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    In,
    Out,
}

/// A transfer the load sent and saw succeed on its source chain.
#[derive(Debug, Clone)]
struct Transfer {
    way: Way,
    sent: Instant,
    paid: Option<Instant>,
}

/// What the run counted, printed as the table.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Faults run, by kind.
    pub faults: HashMap<&'static str, usize>,
    /// Kills that landed within 2 s of the victim's restart.
    pub recovery_kills: usize,
    /// Aimed crashes whose step was reached (the process aborted there).
    pub aimed_reached: usize,
    /// Partitions healed.
    pub healed: usize,
    /// Peg-ins and peg-outs that succeeded on their source chain.
    pub transfers: (usize, usize),
    /// Plain transfers included.
    pub plain: usize,
    /// Transfers whose source event is not on the final source chain at the end.
    pub lost: usize,
    /// Transfers paid more than once.
    pub duplicated: usize,
    /// Transfers not paid by the end.
    pub unpaid: usize,
    /// `bridge audit` runs, and how many failed.
    pub audits: (usize, usize),
    /// Each chain's nodes on one chain at the end.
    pub converged: bool,
    /// Processes that did not answer after a fault or at the end.
    pub wedged: Vec<String>,
    /// The longest time from a heal until every transfer sent before it was paid.
    pub longest_drain: Duration,
    /// Peg latency (source sent to payout final), p50 and p99.
    pub latency: (Duration, Duration),
    /// The audit failures' texts.
    pub problems: Vec<String>,
}

impl Report {
    /// Whether the promise held.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.unpaid == 0
            && self.audits.1 == 0
            && self.converged
            && self.wedged.is_empty()
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut kinds: Vec<_> = self.faults.iter().collect();
        kinds.sort();
        let mut s = String::from("chaos results\n");
        let mut row = |k: &str, v: String| s.push_str(&format!("  {k:<40} {v}\n"));
        for (k, n) in kinds {
            row(&format!("faults: {k}"), n.to_string());
        }
        row(
            "kills during recovery (<2 s)",
            self.recovery_kills.to_string(),
        );
        row(
            "aimed crashes that hit their step",
            self.aimed_reached.to_string(),
        );
        row("partitions healed", self.healed.to_string());
        row(
            "peg-ins / peg-outs / transfers done",
            format!(
                "{} / {} / {}",
                self.transfers.0, self.transfers.1, self.plain
            ),
        );
        row("transfers lost (must be 0)", self.lost.to_string());
        row(
            "transfers duplicated (must be 0)",
            self.duplicated.to_string(),
        );
        row("transfers unpaid (must be 0)", self.unpaid.to_string());
        row(
            "bridge audits / failed (must be 0)",
            format!("{} / {}", self.audits.0, self.audits.1),
        );
        row("chains converged", self.converged.to_string());
        row(
            "processes wedged (must be none)",
            if self.wedged.is_empty() {
                "none".into()
            } else {
                self.wedged.join(", ")
            },
        );
        row(
            "longest heal to drained backlog",
            format!("{:.1} s", self.longest_drain.as_secs_f64()),
        );
        row(
            "peg latency p50 / p99 under faults",
            format!(
                "{:.1} s / {:.1} s",
                self.latency.0.as_secs_f64(),
                self.latency.1.as_secs_f64()
            ),
        );
        row("verdict", if self.ok() { "PASS" } else { "FAIL" }.into());
        s
    }
}

/// The running topology: one namespace host per process.
struct Net {
    lan: Lan,
    /// Whether the kernel has `tc netem`.
    netem: bool,
    mains: Vec<TestNode>,
    sides: Vec<TestNode>,
    members: Vec<Member>,
    /// Member i's proxies to its mainchain and sidechain node.
    proxies: Vec<[Proxy; 2]>,
}

impl Net {
    fn host_of(p: Proc) -> usize {
        match p {
            Proc::Main(i) => i,
            Proc::Side(i) => AUTHORITIES + i,
            Proc::Member(i) => 2 * AUTHORITIES + i,
        }
    }

    fn pid(&self, p: Proc) -> Option<u32> {
        match p {
            Proc::Main(i) => self.mains[i].pid(),
            Proc::Side(i) => self.sides[i].pid(),
            Proc::Member(i) => self.members[i].pid(),
        }
    }

    fn running(&mut self, p: Proc) -> bool {
        match p {
            Proc::Main(i) => self.mains[i].is_running(),
            Proc::Side(i) => self.sides[i].is_running(),
            Proc::Member(i) => self.members[i].is_running(),
        }
    }

    fn kill(&mut self, p: Proc) {
        match p {
            Proc::Main(i) => self.mains[i].kill9(),
            Proc::Side(i) => self.sides[i].kill9(),
            Proc::Member(i) => self.members[i].kill9(),
        }
    }

    /// Restarts `p` (after a kill), with `crash_at` armed if given.
    fn restart(&mut self, p: Proc, crash_at: Option<String>) -> Result<()> {
        match crash_at {
            Some(c) => self.restart_with(p, &[(service::fault::ENV, c)]),
            None => self.restart_with(p, &[]),
        }
    }

    /// Restarts `p` (after a kill) with these fault hooks in its environment, and no others.
    fn restart_with(&mut self, p: Proc, hooks: &[(&str, String)]) -> Result<()> {
        let env_of = |env: &mut Vec<(String, String)>| {
            env.retain(|(k, _)| k != service::fault::ENV && k != service::clock::SKEW_ENV);
            env.extend(hooks.iter().map(|(k, v)| (k.to_string(), v.clone())));
        };
        // A start blocks until the process writes its endpoints.
        tokio::task::block_in_place(|| match p {
            Proc::Main(i) => {
                env_of(&mut self.mains[i].env);
                self.mains[i].spawn()
            }
            Proc::Side(i) => {
                env_of(&mut self.sides[i].env);
                self.sides[i].spawn()
            }
            Proc::Member(i) => {
                env_of(&mut self.members[i].env);
                let boot: Vec<String> = self
                    .members
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, m)| m.p2p_addr())
                    .collect();
                self.members[i].spawn(&boot)
            }
        })
        .with_context(|| format!("restarting {p}"))
    }

    fn data_dir(&self, p: Proc) -> std::path::PathBuf {
        match p {
            Proc::Main(i) => self.mains[i].data_dir(),
            Proc::Side(i) => self.sides[i].data_dir(),
            Proc::Member(i) => self.members[i].data_dir(),
        }
    }

    fn signal(&self, p: Proc, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid(p) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }

    /// The host pairs a split cuts.
    fn pairs(split: Split) -> Vec<(usize, usize)> {
        let chain = |k: ChainKind, i: usize| match k {
            ChainKind::Main => Net::host_of(Proc::Main(i)),
            ChainKind::Side => Net::host_of(Proc::Side(i)),
        };
        match split {
            Split::FederationMinority(m) => (0..MEMBERS)
                .filter(|j| *j != m)
                .map(|j| (Net::host_of(Proc::Member(m)), Net::host_of(Proc::Member(j))))
                .collect(),
            Split::Halves(k, with) => {
                // Authority 0 and `with` on one side, the other two on the other.
                let a: Vec<usize> = vec![0, with];
                let b: Vec<usize> = (0..AUTHORITIES).filter(|i| !a.contains(i)).collect();
                a.iter()
                    .flat_map(|x| b.iter().map(move |y| (chain(k, *x), chain(k, *y))))
                    .collect()
            }
            Split::One(k, i) => (0..AUTHORITIES)
                .filter(|j| *j != i)
                .map(|j| (chain(k, i), chain(k, j)))
                .collect(),
        }
    }
}

/// A data dir moved onto a tmpfs only a little larger than what it holds.
struct FullDisk {
    dir: std::path::PathBuf,
    saved: std::path::PathBuf,
}

/// Room left on the small disk: a few blocks' or signatures' worth.
const FULL_DISK_ROOM: u64 = 2 << 20;

fn sh(cmd: &mut std::process::Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn size_of(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += size_of(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl FullDisk {
    /// Moves `dir` aside, mounts a tmpfs there with [`FULL_DISK_ROOM`] to spare, copies the
    /// data in.
    fn mount(dir: &std::path::Path) -> Result<Self> {
        let saved = dir.with_extension("roomy");
        std::fs::rename(dir, &saved).context("moving the data dir aside")?;
        std::fs::create_dir(dir)?;
        let size = size_of(&saved) + FULL_DISK_ROOM;
        let mounted = sh(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir));
        if let Err(e) = mounted {
            // Where mounting is not allowed (a container), put everything back as it was.
            std::fs::remove_dir(dir)?;
            std::fs::rename(&saved, dir)?;
            return Err(e);
        }
        let disk = Self {
            dir: dir.to_path_buf(),
            saved,
        };
        sh(std::process::Command::new("cp")
            .arg("-a")
            .arg(disk.saved.join("."))
            .arg(&disk.dir))?;
        Ok(disk)
    }

    /// Copies what the full disk holds back to a roomy one, where the process will restart.
    fn unmount(self) -> Result<()> {
        sh(std::process::Command::new("cp")
            .arg("-a")
            .arg(self.dir.join("."))
            .arg(&self.saved))?;
        sh(std::process::Command::new("umount").arg(&self.dir))?;
        std::fs::remove_dir(&self.dir)?;
        std::fs::rename(&self.saved, &self.dir)?;
        Ok(())
    }
}

/// Clients of every node of one chain; a call goes to the first that answers.
#[derive(Clone)]
struct Chain {
    chain_id: u64,
    clients: Arc<Vec<HttpClient>>,
    urls: Arc<Vec<String>>,
}

impl Chain {
    fn new(chain_id: u64, urls: Vec<String>) -> Result<Self> {
        let clients = urls
            .iter()
            .map(|u| {
                HttpClientBuilder::default()
                    .request_timeout(Duration::from_secs(5))
                    .build(u)
                    .context("client")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            chain_id,
            clients: Arc::new(clients),
            urls: Arc::new(urls),
        })
    }

    /// A client to start from, chosen by `k` (callers spread their load).
    fn client(&self, k: usize) -> &HttpClient {
        &self.clients[k % self.clients.len()]
    }
}

/// Sends `raw` until it is in a block on the chain (resending the same bytes to another node
/// while it is not: the node it went to may have died before passing it on). Returns whether
/// it succeeded, or `None` if it was never included within `deadline`.
async fn send_until_included(
    chain: &Chain,
    raw: Bytes,
    hash: Hash,
    start: usize,
    deadline: Duration,
) -> Option<bool> {
    let until = Instant::now() + deadline;
    let mut k = start;
    let mut last_send: Option<Instant> = None;
    while Instant::now() < until {
        if last_send.is_none_or(|t| t.elapsed() > Duration::from_secs(8)) {
            let _ = chain.client(k).send_transaction(raw.clone()).await;
            last_send = Some(Instant::now());
            k += 1;
        }
        for j in 0..chain.clients.len() {
            if let Ok(Some(t)) = chain.client(k + j).transaction(hash).await {
                match t.status {
                    TxStatus::Success => return Some(true),
                    TxStatus::Failed => return Some(false),
                    TxStatus::Pending => {}
                }
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

/// Counters shared by the load's tasks.
#[derive(Default)]
struct Load {
    /// Each account's pause between two sends.
    pace: Duration,
    ins: AtomicUsize,
    outs: AtomicUsize,
    plain: AtomicUsize,
    stuck: AtomicUsize,
    stop: AtomicBool,
    transfers: Mutex<HashMap<Hash, Transfer>>,
}

impl Load {
    fn claim(counter: &AtomicUsize, target: usize) -> bool {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < target).then_some(n + 1)
            })
            .is_ok()
    }

    fn record(&self, id: Hash, way: Way, sent: Instant) {
        if let Ok(mut t) = self.transfers.lock() {
            t.insert(
                id,
                Transfer {
                    way,
                    sent,
                    paid: None,
                },
            );
        }
    }
}

/// One account's traffic: Locks first, Burns once it holds minted coins, transfers between.
async fn user(
    k: usize,
    key: SecretKey,
    peer: Address,
    main: Chain,
    side: Chain,
    p: Profile,
    load: Arc<Load>,
) {
    let pace = load.pace;
    let mut rng = StdRng::seed_from_u64(p.seed ^ (0x5eed_0000 + k as u64));
    let me = key.address();
    let (mut main_nonce, mut side_nonce) = (0u64, 0u64);
    let coin = Amount::COIN;
    while !load.stop.load(Ordering::Relaxed) {
        let side_balance = match side.client(k).account(me).await {
            Ok(a) => a.balance,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Room for a 1-coin burn and its fee.
        let can_burn = side_balance.0 >= 2 * coin;
        let pick = rng.gen_range(0..3);
        let (chain, nonce, kind, way) = if pick == 0 && Load::claim(&load.ins, p.peg_ins) {
            let amount = Amount(rng.gen_range(2..=4) * coin);
            (
                &main,
                &mut main_nonce,
                TxKind::Lock {
                    amount,
                    recipient: me,
                },
                Some(Way::In),
            )
        } else if pick == 1 && can_burn && Load::claim(&load.outs, p.peg_outs) {
            (
                &side,
                &mut side_nonce,
                TxKind::Burn {
                    amount: Amount(coin),
                    recipient: me,
                },
                Some(Way::Out),
            )
        } else if pick == 2 && Load::claim(&load.plain, p.transfers) {
            let amount = Amount(coin / 100);
            if can_burn && rng.gen_bool(0.5) {
                (
                    &side,
                    &mut side_nonce,
                    TxKind::Transfer { to: peer, amount },
                    None,
                )
            } else {
                (
                    &main,
                    &mut main_nonce,
                    TxKind::Transfer { to: peer, amount },
                    None,
                )
            }
        } else {
            let done = load.ins.load(Ordering::Relaxed) >= p.peg_ins
                && load.outs.load(Ordering::Relaxed) >= p.peg_outs
                && load.plain.load(Ordering::Relaxed) >= p.transfers;
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let fee = match try_fee_for(chain.client(k + rng.gen_range(0..AUTHORITIES))).await {
            Some(f) => f,
            None => {
                // Give the claim back: nothing was sent.
                let c = match way {
                    Some(Way::In) => &load.ins,
                    Some(Way::Out) => &load.outs,
                    None => &load.plain,
                };
                c.fetch_sub(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let signed = Transaction {
            chain_id: chain.chain_id,
            nonce: *nonce,
            fee,
            kind,
        }
        .sign(&key);
        let (raw, hash) = (Bytes(signed.encode()), signed.hash());
        let sent = Instant::now();
        match send_until_included(
            chain,
            raw,
            hash,
            k + rng.gen_range(0..AUTHORITIES),
            Duration::from_secs(180),
        )
        .await
        {
            Some(ok) => {
                *nonce += 1;
                // Spread over the fault schedule, so faults land on traffic in flight.
                let ms = pace.as_millis() as u64;
                tokio::time::sleep(Duration::from_millis(rng.gen_range(ms / 2..=ms + ms / 2)))
                    .await;
                match (ok, way) {
                    (true, Some(w)) => load.record(hash, w, sent),
                    (true, None) => {}
                    (false, _) => {
                        eprintln!("chaos: {me} nonce {} failed in its block", *nonce - 1);
                    }
                }
            }
            None => {
                load.stuck.fetch_add(1, Ordering::Relaxed);
                eprintln!("chaos: {hash} from {me} never included; this account stops");
                return;
            }
        }
    }
}

/// Marks transfers paid once their payout is final on the destination; runs until stopped.
async fn tracker(main: Chain, side: Chain, load: Arc<Load>) {
    let mut k = 0usize;
    while !load.stop.load(Ordering::Relaxed) {
        let unpaid: Vec<(Hash, Way)> = load
            .transfers
            .lock()
            .map(|t| {
                t.iter()
                    .filter(|(_, t)| t.paid.is_none())
                    .map(|(h, t)| (*h, t.way))
                    .take(40)
                    .collect()
            })
            .unwrap_or_default();
        for (id, way) in unpaid {
            k += 1;
            let dest = match way {
                Way::In => &side,
                Way::Out => &main,
            };
            let Ok(v) = dest.client(k).peg_transfer(id).await else {
                continue;
            };
            let final_paid = v
                .payout
                .as_ref()
                .zip(v.finalized)
                .is_some_and(|(p, f)| p.block_number <= f);
            if final_paid {
                if let Ok(mut t) = load.transfers.lock() {
                    if let Some(t) = t.get_mut(&id) {
                        t.paid.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `p`; returns the report (its verdict in [`Report::ok`]).
pub async fn run(p: &Profile) -> Result<Report> {
    if !Lan::available() {
        bail!("chaos needs root and iproute2 (network namespaces, one host per process)");
    }
    let plan = schedule(p);
    println!(
        "chaos: seed {} ({} faults); replay with --seed {}",
        p.seed,
        plan.len(),
        p.seed
    );
    for (i, (gap, f)) in plan.iter().enumerate() {
        println!("  {i:>3}. after {gap:>5} ms: {f}");
    }

    let mut rng = StdRng::seed_from_u64(p.seed ^ 0xacc0_u64);
    let key = |rng: &mut StdRng| loop {
        let b: [u8; 32] = rng.gen();
        if let Ok(k) = SecretKey::from_bytes(&b) {
            break k;
        }
    };
    let mains_keys: Vec<SecretKey> = (0..AUTHORITIES).map(|_| key(&mut rng)).collect();
    let sides_keys: Vec<SecretKey> = (0..AUTHORITIES).map(|_| key(&mut rng)).collect();
    let member_keys: Vec<SecretKey> = (0..MEMBERS).map(|_| key(&mut rng)).collect();
    let users: Vec<SecretKey> = (0..p.users).map(|_| key(&mut rng)).collect();
    let addrs = |ks: &[SecretKey]| ks.iter().map(SecretKey::address).collect::<Vec<_>>();
    let mut peg = test_peg(&addrs(&member_keys), 2);
    peg.terms.max_amount = Amount::coins(1_000);
    peg.terms.daily_limit_deposits = Amount::coins(10_000_000);
    peg.terms.daily_limit_withdrawals = Amount::coins(10_000_000);
    let (mut mg, sg) = pegged_geneses_with(
        &addrs(&mains_keys),
        &addrs(&sides_keys),
        peg,
        p.main_block_ms,
        p.side_block_ms,
    );
    mg.accounts.extend(users.iter().map(|u| GenesisAccount {
        address: u.address(),
        balance: Amount::coins(100_000),
    }));
    // The sidechain genesis commits to the mainchain's: link again after changing it.
    let mut sg = sg;
    primitives::genesis::link_geneses(&mut mg, &mut sg);

    let lan = Lan::new(2 * AUTHORITIES + MEMBERS)?;
    let start_chain =
        |kind: ChainKind, keys: &[SecretKey], offset: usize, g| -> Result<Vec<TestNode>> {
            let mut nodes: Vec<TestNode> = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                let boot: Vec<String> = nodes.iter().map(TestNode::p2p_addr).collect();
                let mut n = TestNode::prepare(
                    Some(lan.hosts[offset + i].clone()),
                    kind,
                    g,
                    Some(k.clone()),
                    &boot,
                )?;
                n.stable_ports = true;
                n.spawn()
                    .with_context(|| format!("starting {}-{i}", kind.binary()))?;
                nodes.push(n);
            }
            Ok(nodes)
        };
    let mains = tokio::task::block_in_place(|| start_chain(ChainKind::Main, &mains_keys, 0, &mg))?;
    let sides = tokio::task::block_in_place(|| {
        start_chain(ChainKind::Side, &sides_keys, AUTHORITIES, &sg)
    })?;
    let mut members: Vec<Member> = Vec::new();
    let mut proxies = Vec::new();
    for (i, k) in member_keys.iter().enumerate() {
        let boot: Vec<String> = members.iter().filter_map(Member::p2p_addr).collect();
        // Member i reads its nodes through proxies the run can stall or make stale.
        let pm = Proxy::start(&lan.gateway, &mains[i].http).await?;
        let ps = Proxy::start(&lan.gateway, &sides[i].http).await?;
        let mut m = Member::new(k.clone(), &pm.url, &ps.url)?
            .on_host(lan.hosts[2 * AUTHORITIES + i].clone())
            .stable_ports()
            .config("regossip_interval_ms", 1_000);
        tokio::task::block_in_place(|| m.spawn(&boot))
            .with_context(|| format!("starting member-{i}"))?;
        members.push(m);
        proxies.push([pm, ps]);
    }
    let netem = lan.netem_available();
    if !netem {
        println!(
            "chaos: this kernel has no tc netem (sch_netem): link faults use a tbf token bucket"
        );
    }
    let mut net = Net {
        netem,
        lan,
        mains,
        sides,
        members,
        proxies,
    };
    let main = Chain::new(
        mg.chain_id,
        net.mains.iter().map(|n| n.http.clone()).collect(),
    )?;
    let side = Chain::new(
        sg.chain_id,
        net.sides.iter().map(|n| n.http.clone()).collect(),
    )?;

    let ops = (p.peg_ins + p.peg_outs + p.transfers).max(1) as u64;
    let pace = Duration::from_millis(
        (plan
            .iter()
            .map(|(gap, f)| gap + f.expected_ms())
            .sum::<u64>()
            * p.users as u64
            / ops)
            .min(20_000),
    );
    let load = Arc::new(Load {
        pace,
        ..Load::default()
    });
    let mut tasks = Vec::new();
    for (k, u) in users.iter().enumerate() {
        let peer = users[(k + 1) % users.len()].address();
        tasks.push(tokio::spawn(user(
            k,
            u.clone(),
            peer,
            main.clone(),
            side.clone(),
            p.clone(),
            load.clone(),
        )));
    }
    let track = tokio::spawn(tracker(main.clone(), side.clone(), load.clone()));

    let mut report = Report::default();
    let drains: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut drain_tasks = Vec::new();
    for (i, (gap, fault)) in plan.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*gap)).await;
        println!("chaos: fault {i}: {fault}");
        run_fault(
            &mut net,
            fault,
            &mut report,
            &load,
            &drains,
            &mut drain_tasks,
        )
        .await?;
        check(&mut net, &main, &side, &mut report, false).await;
    }
    println!("chaos: faults over; waiting for the load to finish and every transfer to be paid");
    let until = Instant::now() + p.drain;
    for t in tasks {
        let left = until.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, t).await;
    }
    let all_paid = || {
        load.transfers
            .lock()
            .map(|t| t.values().all(|t| t.paid.is_some()))
            .unwrap_or(false)
    };
    while !all_paid() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for d in drain_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), d).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    let _ = track.await;

    check(&mut net, &main, &side, &mut report, true).await;
    count_payouts(&main, &side, &load, &mut report).await?;
    report.longest_drain = drains
        .lock()
        .map(|d| d.iter().copied().max().unwrap_or_default())
        .unwrap_or_default();
    let transfers = load.transfers.lock().map(|t| t.clone()).unwrap_or_default();
    report.transfers = (
        transfers.values().filter(|t| t.way == Way::In).count(),
        transfers.values().filter(|t| t.way == Way::Out).count(),
    );
    report.plain = load.plain.load(Ordering::Relaxed);
    report.unpaid = transfers.values().filter(|t| t.paid.is_none()).count()
        + load.stuck.load(Ordering::Relaxed);
    let mut lat: Vec<Duration> = transfers
        .values()
        .filter_map(|t| Some(t.paid?.saturating_duration_since(t.sent)))
        .collect();
    lat.sort();
    report.latency = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    drop(net);
    Ok(report)
}

async fn run_fault(
    net: &mut Net,
    fault: &Fault,
    report: &mut Report,
    load: &Arc<Load>,
    drains: &Arc<Mutex<Vec<Duration>>>,
    drain_tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<()> {
    let sleep = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    let kind = match fault {
        Fault::Kill {
            target,
            down_ms,
            again_ms,
        } => {
            net.kill(*target);
            sleep(*down_ms).await;
            net.restart(*target, None)?;
            if let Some(a) = again_ms {
                sleep(*a).await;
                net.kill(*target);
                report.recovery_kills += 1;
                sleep(500).await;
                net.restart(*target, None)?;
            }
            "kill -9"
        }
        Fault::Aimed {
            target,
            point,
            pass,
        } => {
            net.kill(*target);
            net.restart(*target, Some(format!("{point}:{pass}")))?;
            let until = Instant::now() + Duration::from_secs(60);
            while net.running(*target) && Instant::now() < until {
                sleep(100).await;
            }
            if net.running(*target) {
                println!("chaos: {target} did not reach {point} in 60 s; killing it there");
                net.kill(*target);
            } else {
                report.aimed_reached += 1;
            }
            net.kill(*target);
            net.restart(*target, None)?;
            "aimed crash"
        }
        Fault::Pause { target, ms } => {
            net.signal(*target, nix::sys::signal::Signal::SIGSTOP);
            sleep(*ms).await;
            net.signal(*target, nix::sys::signal::Signal::SIGCONT);
            "SIGSTOP pause"
        }
        Fault::Partition { split, ms } => {
            let pairs = Net::pairs(*split);
            for (a, b) in &pairs {
                net.lan.cut(*a, *b)?;
            }
            sleep(*ms).await;
            for (a, b) in &pairs {
                net.lan.heal(*a, *b)?;
            }
            report.healed += 1;
            // Time until everything sent before the heal is paid.
            let healed = Instant::now();
            let backlog: Vec<Hash> = load
                .transfers
                .lock()
                .map(|t| {
                    t.iter()
                        .filter(|(_, t)| t.paid.is_none())
                        .map(|(h, _)| *h)
                        .collect()
                })
                .unwrap_or_default();
            let (load, drains) = (load.clone(), drains.clone());
            drain_tasks.push(tokio::spawn(async move {
                loop {
                    let left = load
                        .transfers
                        .lock()
                        .map(|t| {
                            backlog
                                .iter()
                                .any(|h| t.get(h).is_some_and(|t| t.paid.is_none()))
                        })
                        .unwrap_or(false);
                    if !left || load.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                if !backlog.is_empty() {
                    println!(
                        "chaos: {} transfers in flight at a heal were paid {:.1} s after it",
                        backlog.len(),
                        healed.elapsed().as_secs_f64()
                    );
                }
                if let Ok(mut d) = drains.lock() {
                    d.push(healed.elapsed());
                }
            }));
            match split {
                Split::FederationMinority(_) => "partition: federation minority",
                Split::Halves(..) => "partition: authorities 2/2",
                Split::One(..) => "partition: one authority",
            }
        }
        Fault::Skew {
            target,
            skew_ms,
            ms,
        } => {
            net.kill(*target);
            net.restart_with(*target, &[(service::clock::SKEW_ENV, skew_ms.to_string())])?;
            sleep(*ms).await;
            net.kill(*target);
            net.restart(*target, None)?;
            "clock skew"
        }
        Fault::BadRpc {
            member,
            chain,
            stale,
            ms,
        } => {
            let proxy = &net.proxies[*member][usize::from(*chain == ChainKind::Side)];
            proxy.set(if *stale { Mode::Stale } else { Mode::Stall });
            sleep(*ms).await;
            proxy.set(Mode::Pass);
            if *stale {
                "member RPC stale"
            } else {
                "member RPC stalled"
            }
        }
        Fault::FullDisk { target, ms } => {
            net.kill(*target);
            let dir = net.data_dir(*target);
            match FullDisk::mount(&dir) {
                Ok(disk) => {
                    // On a full disk a start may fail; what counts is a clear exit, no damage.
                    if let Err(e) = net.restart(*target, None) {
                        println!("chaos: {target} did not start on a full disk: {e:#}");
                    }
                    sleep(*ms).await;
                    net.kill(*target);
                    disk.unmount()?;
                    net.restart(*target, None)
                        .with_context(|| format!("{target} after its disk had room again"))?;
                    "full disk"
                }
                Err(e) => {
                    println!(
                        "chaos: no tmpfs for a full disk here ({e:#}); {target} restarts as it was"
                    );
                    net.restart(*target, None)?;
                    "full disk (skipped: mount refused)"
                }
            }
        }
        Fault::Netem { target, spec, ms } => {
            let h = Net::host_of(*target);
            let set = if net.netem {
                net.lan.netem(h, spec).map(|()| "netem")
            } else {
                // This kernel has no sch_netem: a token bucket this small delays what queues
                // behind it and drops the rest, which is the closest it offers.
                net.lan
                    .shape(h, "rate 96kbit burst 4kb latency 80ms")
                    .map(|()| "netem (tbf fallback, no sch_netem)")
            };
            match set {
                Ok(kind) => {
                    sleep(*ms).await;
                    net.lan.clear_netem(h)?;
                    kind
                }
                Err(e) => {
                    println!("chaos: no traffic control here ({e:#})");
                    "netem (skipped: tc refused)"
                }
            }
        }
    };
    *report.faults.entry(kind).or_default() += 1;
    Ok(())
}

/// After a fault (and at the end, `last`): the audit, and every process answering. At the
/// end also: each chain's nodes on one chain.
async fn check(net: &mut Net, main: &Chain, side: &Chain, report: &mut Report, last: bool) {
    let deadline = if last {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(60)
    };
    let until = Instant::now() + deadline;
    // Every node answers and moves on.
    for (chain, name) in [(main, "mainchain"), (side, "sidechain")] {
        for (i, c) in chain.clients.iter().enumerate() {
            let first = c.head().await.ok().map(|h| h.number);
            let mut alive = false;
            while Instant::now() < until {
                match c.head().await {
                    Ok(h) if first.is_none_or(|f| h.number > f) => {
                        alive = true;
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            if !alive {
                let who = format!("{name}-{i}");
                println!("chaos: {who} does not answer or does not move");
                if !report.wedged.contains(&who) {
                    report.wedged.push(who);
                }
            }
        }
    }
    for (i, m) in net.members.iter_mut().enumerate() {
        let mut up = false;
        while Instant::now() < until {
            if m.is_running() && tokio::task::block_in_place(|| m.status()).is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if !up {
            let who = format!("member-{i}");
            println!("chaos: {who} does not answer");
            if !report.wedged.contains(&who) {
                report.wedged.push(who);
            }
        }
    }
    let (ok, text) = tokio::task::block_in_place(|| bridge_audit(&main.urls[0], &side.urls[0]));
    report.audits.0 += 1;
    if !ok {
        report.audits.1 += 1;
        println!("chaos: AUDIT FAILED:\n{text}");
        report.problems.push(text);
    }
    if last {
        report.converged = converged(main, until).await && converged(side, until).await;
    }
}

/// Whether every node of `chain` holds the same block at the lowest head's height (a block
/// hash commits to its state root) and the same final block at the lowest final height.
async fn converged(chain: &Chain, until: Instant) -> bool {
    while Instant::now() < until {
        let mut heads = Vec::new();
        for c in chain.clients.iter() {
            match c.finality_status().await {
                Ok(s) => heads.push((s.head, s.finalized.number)),
                Err(_) => break,
            }
        }
        if heads.len() == chain.clients.len() {
            let low = heads.iter().map(|h| h.0).min().unwrap_or(0);
            let low_final = heads.iter().map(|h| h.1).min().unwrap_or(0);
            let mut at = Vec::new();
            for c in chain.clients.iter() {
                let a = c
                    .block_by_number(low, None)
                    .await
                    .ok()
                    .flatten()
                    .map(|b| b.summary.hash);
                let f = c
                    .block_by_number(low_final, None)
                    .await
                    .ok()
                    .flatten()
                    .map(|b| b.summary.hash);
                at.push((a, f));
            }
            if at.iter().all(|x| x.0.is_some() && *x == at[0]) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Counts payouts per id on each destination's final chain, and source events still on the
/// source's final chain.
async fn count_payouts(
    main: &Chain,
    side: &Chain,
    load: &Arc<Load>,
    report: &mut Report,
) -> Result<()> {
    let transfers = load.transfers.lock().map(|t| t.clone()).unwrap_or_default();
    let mut payouts: HashMap<Hash, usize> = HashMap::new();
    let mut sources: HashMap<Hash, usize> = HashMap::new();
    for chain in [main, side] {
        let c = chain.client(0);
        let top = c
            .finality_status()
            .await
            .context("finality status")?
            .finalized
            .number;
        for n in 1..=top {
            let Some(b) = c
                .block_receipts(n)
                .await
                .with_context(|| format!("receipts of block {n}"))?
            else {
                continue;
            };
            for r in b.receipts.iter().filter(|r| r.success()) {
                match &r.peg_event {
                    Some(PegEvent::Minted { id, .. }) | Some(PegEvent::Released { id, .. }) => {
                        *payouts.entry(*id).or_default() += 1;
                    }
                    Some(PegEvent::Deposit { id, .. }) | Some(PegEvent::Withdrawal { id, .. }) => {
                        *sources.entry(*id).or_default() += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    for (id, t) in &transfers {
        let paid = payouts.get(id).copied().unwrap_or(0);
        if paid > 1 {
            report.duplicated += 1;
            println!("chaos: {id} paid {paid} times");
        }
        if t.paid.is_some() && paid == 0 {
            println!(
                "chaos: {id} was seen paid and final, and its payout is not on the final chain"
            );
            report.lost += 1;
        }
        if sources.get(id).copied().unwrap_or(0) != 1 {
            println!("chaos: the source event of {id} is not on its final chain once");
            report.lost += 1;
        }
    }
    Ok(())
}
