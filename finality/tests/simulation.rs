//! A deterministic, seeded simulation of the finality protocol: four authorities (one of them
//! faulty in a way the seed picks) on a simulated network with delays, drops, duplicates,
//! partitions, crashes at any point of the persist-then-send sequence, and restarts from what
//! was persisted. Slot leaders produce blocks on their fork choice (longest descendant of the
//! final block), so honest nodes do reorg. For every seed: no two conflicting blocks are ever
//! final, every decision carries a quorum of precommits, honest authorities never equivocate,
//! and after the network heals finality moves on at every honest node.
//!
//! `SEEDS=10000 cargo test --release -p twinpeg-finality --test simulation` runs 10,000 seeds;
//! `SEED=1234` replays one (and prints its schedule).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use finality::{
    proposer, quorum, Action, AuthorityIndex, BlockRef, BlockTree, Commit, Durable, Machine,
    MachineConfig, Message, Proposal, Signer, Statement, Timeout, Validity, Vote,
};
use primitives::types::Hash;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 4;
const BLOCK_TIME_MS: u64 = 1_000;
const REBROADCAST_MS: u64 = 1_000;
const SYNC_MS: u64 = 2_000;

type Sig = ();
type Msg = Message<Sig>;

/// How the faulty authority misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// It behaves (the seed has no faulty authority).
    None,
    /// Crashed from the start, never back.
    Silent,
    /// Signs conflicting statements: each peer gets a vote or proposal for a random block.
    Equivocate,
    /// Keeps its blocks and most of its votes to itself, publishing them late.
    Withhold,
    /// Agrees with everyone: answers each peer's vote with the same vote, and as a leader
    /// proposes each peer's own head to it.
    Mirror,
}

#[derive(Debug, Clone, Copy)]
struct SimBlock {
    parent: usize,
    number: u64,
}

fn block_ref(blocks: &[SimBlock], id: usize) -> BlockRef {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&(id as u64).to_be_bytes());
    BlockRef {
        number: blocks[id].number,
        hash: Hash(h),
    }
}

fn id_of(b: &BlockRef) -> usize {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b.hash.0[..8]);
    u64::from_be_bytes(x) as usize
}

/// Whether `a` is `b` or one of its ancestors.
fn ancestor_or_self(blocks: &[SimBlock], a: usize, mut b: usize) -> bool {
    while blocks[b].number > blocks[a].number {
        b = blocks[b].parent;
    }
    a == b
}

/// One node's view of the block tree.
struct View<'a> {
    blocks: &'a [SimBlock],
    known: &'a [bool],
    final_id: usize,
    /// A re-proposed block with a polka the node's fork choice takes, as the node's driver does
    /// (`prefer_polka`): its branch even if shorter.
    preferred: Option<usize>,
}

impl BlockTree for View<'_> {
    fn validity(&self, block: &BlockRef, final_block: &BlockRef) -> Validity {
        let id = id_of(block);
        if id >= self.blocks.len() || !self.known.get(id).copied().unwrap_or(false) {
            return Validity::Unknown;
        }
        let f = id_of(final_block);
        if id == f || f >= self.blocks.len() || !ancestor_or_self(self.blocks, f, id) {
            return Validity::Invalid;
        }
        // As a node: valid only on its own best chain (executed there); a block it holds on
        // another branch is waited for, since its fork choice may still switch to it.
        if ancestor_or_self(self.blocks, id, id_of(&self.best())) {
            Validity::Valid
        } else {
            Validity::Unknown
        }
    }

    fn best(&self) -> BlockRef {
        // Fork choice among the descendants of the final block, or of the preferred block.
        let root = self
            .preferred
            .filter(|p| {
                self.known.get(*p).copied().unwrap_or(false)
                    && *p != self.final_id
                    && ancestor_or_self(self.blocks, self.final_id, *p)
            })
            .unwrap_or(self.final_id);
        let mut best = root;
        for (id, known) in self.known.iter().enumerate() {
            if *known
                && self.blocks[id].number > self.blocks[best].number
                && ancestor_or_self(self.blocks, root, id)
            {
                best = id;
            }
        }
        block_ref(self.blocks, best)
    }
}

struct NoSig;
impl Signer<Sig> for NoSig {
    fn sign(&self, _: &Statement) -> Sig {}
}

struct Node {
    machine: Machine<Sig>,
    persisted: Durable<Sig>,
    known: Vec<bool>,
    up: bool,
    /// Bumped at each restart, so timers of a previous life are ignored.
    life: u32,
    fault: Fault,
    /// Blocks a withholding authority has not published yet.
    withheld: Vec<usize>,
    /// The polka block fork choice follows (see [`View::preferred`]).
    preferred: Option<usize>,
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        msg: Msg,
    },
    Blocks {
        to: usize,
        tip: usize,
    },
    Timer {
        node: usize,
        life: u32,
        timeout: Timeout,
    },
    Slot(u64),
    Rebroadcast(usize),
    Sync(usize),
    Crash(usize),
    Restart(usize),
}

/// The seed's fault schedule, printed on failure (and with `SEED=`).
#[derive(Debug)]
struct Schedule {
    faulty: usize,
    fault: Fault,
    drop: f64,
    duplicate: f64,
    max_delay_ms: u64,
    /// (from, until, group of each node): nodes in different groups cannot talk.
    partitions: Vec<(u64, u64, [u8; N])>,
    /// (from, until, a, b): the one link between a and b is down.
    cuts: Vec<(u64, u64, usize, usize)>,
    /// (node, at, down for)
    crashes: Vec<(usize, u64, u64)>,
    /// Probability that a crash cuts a node's action list short.
    crash_mid_actions: f64,
    chaos_until: u64,
    end: u64,
}

impl Schedule {
    fn random(rng: &mut StdRng) -> Self {
        let faulty = rng.gen_range(0..N);
        let fault = match rng.gen_range(0..5) {
            0 => Fault::None,
            1 => Fault::Silent,
            2 => Fault::Equivocate,
            3 => Fault::Withhold,
            _ => Fault::Mirror,
        };
        let chaos_until: u64 = rng.gen_range(20_000..60_000);
        let mut partitions = Vec::new();
        for _ in 0..rng.gen_range(0..4) {
            let from = rng.gen_range(0..chaos_until);
            let until = (from + rng.gen_range(2_000..20_000)).min(chaos_until);
            let mut groups = [0u8; N];
            for g in &mut groups {
                *g = rng.gen_range(0..3);
            }
            partitions.push((from, until, groups));
        }
        let mut crashes = Vec::new();
        for _ in 0..rng.gen_range(0..8) {
            let node = rng.gen_range(0..N);
            let at = rng.gen_range(0..chaos_until);
            let down = rng
                .gen_range(10..8_000)
                .min(chaos_until.saturating_sub(at) + 10);
            crashes.push((node, at, down));
        }
        Self {
            faulty,
            fault,
            drop: rng.gen_range(0.0..0.3),
            duplicate: rng.gen_range(0.0..0.1),
            max_delay_ms: rng.gen_range(5..600),
            partitions,
            cuts: Vec::new(),
            crashes,
            crash_mid_actions: rng.gen_range(0.0..0.5),
            chaos_until,
            end: chaos_until + 40_000,
        }
    }

    fn connected(&self, a: usize, b: usize, now: u64) -> bool {
        let during = |from: u64, until: u64| from <= now && now < until;
        !self
            .partitions
            .iter()
            .any(|(from, until, g)| during(*from, *until) && g[a] != g[b])
            && !self.cuts.iter().any(|(from, until, x, y)| {
                during(*from, *until) && ((*x, *y) == (a, b) || (*x, *y) == (b, a))
            })
    }
}

struct Sim {
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: HashMap<usize, Event>,
    next_event: usize,
    blocks: Vec<SimBlock>,
    nodes: Vec<Node>,
    s: Schedule,
    /// The highest block final at any honest node (all of them must lie on its chain).
    highest_final: usize,
    /// instance -> block decided by honest nodes.
    decided: HashMap<u64, usize>,
    finalized_events: usize,
    failure: Option<String>,
}

fn machine(me: usize, state: Durable<Sig>) -> Machine<Sig> {
    Machine::new(
        MachineConfig {
            authorities: N,
            me: AuthorityIndex::try_from(me).ok(),
            timeout_base_ms: 300,
            timeout_step_ms: 150,
        },
        Some(Box::new(NoSig)),
        state,
    )
}

impl Sim {
    fn new(seed: u64, schedule: Option<Schedule>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let s = schedule.unwrap_or_else(|| Schedule::random(&mut rng));
        let blocks = vec![SimBlock {
            parent: 0,
            number: 0,
        }];
        let genesis = block_ref(&blocks, 0);
        let nodes = (0..N)
            .map(|i| {
                let fault = if i == s.faulty { s.fault } else { Fault::None };
                Node {
                    machine: machine(i, Durable::genesis(genesis)),
                    persisted: Durable::genesis(genesis),
                    known: vec![true],
                    up: fault != Fault::Silent,
                    life: 0,
                    fault,
                    withheld: Vec::new(),
                    preferred: None,
                }
            })
            .collect();
        let mut sim = Self {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            blocks,
            nodes,
            s,
            highest_final: 0,
            decided: HashMap::new(),
            finalized_events: 0,
            failure: None,
        };
        sim.at(BLOCK_TIME_MS, Event::Slot(1));
        for i in 0..N {
            sim.at(REBROADCAST_MS + i as u64 * 7, Event::Rebroadcast(i));
            sim.at(SYNC_MS + i as u64 * 11, Event::Sync(i));
        }
        let crashes = sim.s.crashes.clone();
        for (node, at, down) in crashes {
            sim.at(at, Event::Crash(node));
            sim.at(at + down, Event::Restart(node));
        }
        for i in 0..N {
            sim.with_machine(i, |m, v| m.start(v));
        }
        sim
    }

    fn honest(&self, i: usize) -> bool {
        self.nodes[i].fault == Fault::None
    }

    fn at(&mut self, time: u64, e: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.insert(id, e);
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, id)));
    }

    fn chaos(&self) -> bool {
        self.now < self.s.chaos_until
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if from == to || !self.s.connected(from, to, self.now) {
            return;
        }
        let (drop, dup, max_delay) = if self.chaos() {
            (self.s.drop, self.s.duplicate, self.s.max_delay_ms)
        } else {
            (0.0, 0.0, 50)
        };
        if self.rng.gen_bool(drop) {
            return;
        }
        let copies = if self.rng.gen_bool(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.rng.gen_range(1..=max_delay);
            self.at(
                self.now + delay,
                Event::Deliver {
                    to,
                    from,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn send_blocks(&mut self, from: usize, to: usize, tip: usize) {
        if from == to || !self.s.connected(from, to, self.now) {
            return;
        }
        let (drop, max_delay) = if self.chaos() {
            (self.s.drop, self.s.max_delay_ms)
        } else {
            (0.0, 50)
        };
        if self.rng.gen_bool(drop) {
            return;
        }
        let delay = self.rng.gen_range(1..=max_delay);
        self.at(self.now + delay, Event::Blocks { to, tip });
    }

    /// What faulty node `from` sends to `to` in place of the honest `msg`.
    fn corrupt(&mut self, from: usize, to: usize, msg: Msg) -> Option<Msg> {
        let random_block = |sim: &mut Self| {
            let id = sim.rng.gen_range(0..sim.blocks.len());
            block_ref(&sim.blocks, id)
        };
        match self.nodes[from].fault {
            Fault::None | Fault::Silent => Some(msg),
            // It only ever says what it is told (see `mirror`).
            Fault::Mirror => None,
            Fault::Withhold => self.rng.gen_bool(0.3).then_some(msg),
            Fault::Equivocate => Some(match msg {
                Msg::Vote { mut vote, .. } => {
                    vote.block = if self.rng.gen_bool(0.3) {
                        None
                    } else {
                        Some(random_block(self))
                    };
                    let _ = to;
                    Msg::Vote {
                        vote,
                        signature: (),
                    }
                }
                Msg::Proposal { mut proposal, .. } => {
                    proposal.block = random_block(self);
                    proposal.valid_round = None;
                    Msg::Proposal {
                        proposal,
                        signature: (),
                        polka: Vec::new(),
                    }
                }
                commit => commit,
            }),
        }
    }

    fn broadcast(&mut self, from: usize, msg: Msg) {
        for to in 0..N {
            if to == from {
                continue;
            }
            if let Some(m) = self.corrupt(from, to, msg.clone()) {
                self.send(from, to, m);
            }
        }
    }

    fn run_actions(&mut self, i: usize, actions: Vec<Action<Sig>>) {
        let cut =
            if self.chaos() && self.honest(i) && self.rng.gen_bool(self.s.crash_mid_actions / 20.0)
            {
                Some(self.rng.gen_range(0..=actions.len()))
            } else {
                None
            };
        for (k, a) in actions.into_iter().enumerate() {
            if std::env::var("TRACE").is_ok() && !matches!(a, Action::Persist(_)) {
                let st = self.nodes[i].machine.state();
                println!(
                    "{} n{i} i{} r{} {:?}: {a:?}",
                    self.now, st.instance, st.round, st.step
                );
            }
            if cut == Some(k) {
                // Killed in the middle: what was persisted stays, the rest never happens.
                self.crash(i);
                let down = self.rng.gen_range(10..3_000);
                self.at(self.now + down, Event::Restart(i));
                return;
            }
            match a {
                Action::Persist(d) => self.nodes[i].persisted = *d,
                Action::Broadcast(m) => self.broadcast(i, m),
                Action::Schedule(t) => {
                    let life = self.nodes[i].life;
                    self.at(
                        self.now + t.after_ms,
                        Event::Timer {
                            node: i,
                            life,
                            timeout: t,
                        },
                    );
                }
                Action::Finalized(c) => self.finalized(i, &c),
                Action::Equivocation(e) => {
                    if self.honest(usize::from(e.authority)) {
                        self.fail(format!(
                            "honest authority {} equivocated: {:?}",
                            e.authority, e
                        ));
                    }
                }
                Action::Conflict(c) => {
                    if self.honest(i) {
                        self.fail(format!("node {i} saw a conflicting commit {c:?}"));
                    }
                }
            }
        }
    }

    fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(format!("at {} ms: {why}", self.now));
        }
    }

    fn finalized(&mut self, i: usize, c: &Commit<Sig>) {
        if !self.honest(i) {
            return;
        }
        self.finalized_events += 1;
        let mut signers: Vec<AuthorityIndex> = c.precommits.iter().map(|(a, _)| *a).collect();
        signers.sort_unstable();
        signers.dedup();
        if signers.len() < quorum(N) {
            self.fail(format!("node {i} finalised without a quorum: {c:?}"));
        }
        let b = id_of(&c.block);
        if let Some(prev) = self.decided.insert(c.instance, b) {
            if prev != b {
                self.fail(format!(
                    "instance {} decided both block {prev} and block {b}",
                    c.instance
                ));
            }
        }
        let h = self.highest_final;
        let consistent = if self.blocks[b].number <= self.blocks[h].number {
            ancestor_or_self(&self.blocks, b, h)
        } else {
            ancestor_or_self(&self.blocks, h, b)
        };
        if !consistent {
            self.fail(format!(
                "conflicting final blocks: {b} (height {}) at node {i} and {h} (height {})",
                self.blocks[b].number, self.blocks[h].number
            ));
        } else if self.blocks[b].number > self.blocks[h].number {
            self.highest_final = b;
        }
    }

    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.up = false;
        n.life += 1;
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].up || self.nodes[i].fault == Fault::Silent {
            return;
        }
        let n = &mut self.nodes[i];
        n.up = true;
        n.machine = machine(i, n.persisted.clone());
        self.with_machine(i, |m, v| m.start(v));
    }

    fn with_machine(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Machine<Sig>, &View) -> Vec<Action<Sig>>,
    ) {
        if !self.nodes[i].up {
            return;
        }
        let acts = {
            let n = &mut self.nodes[i];
            let view = View {
                blocks: &self.blocks,
                known: &n.known,
                final_id: id_of(&n.machine.final_block()),
                preferred: n.preferred,
            };
            f(&mut n.machine, &view)
        };
        self.run_actions(i, acts);
        self.follow_polka(i);
    }

    /// The node's driver takes a polka re-proposal's branch; the machine then sees the tree
    /// changed (as the node's finality thread does after the reorg).
    fn follow_polka(&mut self, i: usize) {
        loop {
            let n = &mut self.nodes[i];
            let polka = n.machine.current_polka_proposal().map(|b| id_of(&b));
            if !n.up
                || polka.is_none()
                || polka == n.preferred
                || !polka.is_some_and(|p| n.known.get(p).copied().unwrap_or(false))
            {
                return;
            }
            n.preferred = polka;
            let view = View {
                blocks: &self.blocks,
                known: &n.known,
                final_id: id_of(&n.machine.final_block()),
                preferred: n.preferred,
            };
            let acts = n.machine.on_blocks_changed(&view);
            self.run_actions(i, acts);
        }
    }

    fn learn(&mut self, i: usize, tip: usize) {
        let n = &mut self.nodes[i];
        n.known.resize(self.blocks.len(), false);
        let mut b = tip;
        while !n.known[b] {
            n.known[b] = true;
            b = self.blocks[b].parent;
        }
    }

    fn best_of(&self, i: usize) -> usize {
        let n = &self.nodes[i];
        let view = View {
            blocks: &self.blocks,
            known: &n.known,
            final_id: id_of(&n.machine.final_block()),
            preferred: n.preferred,
        };
        id_of(&view.best())
    }

    fn produce(&mut self, slot: u64) {
        let leader = (slot % N as u64) as usize;
        if !self.nodes[leader].up || self.nodes[leader].fault == Fault::Mirror {
            return;
        }
        let forks = if self.nodes[leader].fault == Fault::Equivocate {
            2
        } else {
            1
        };
        let parent = self.best_of(leader);
        for k in 0..forks {
            let id = self.blocks.len();
            self.blocks.push(SimBlock {
                parent,
                number: self.blocks[parent].number + 1,
            });
            self.learn(leader, id);
            if self.nodes[leader].fault == Fault::Withhold && self.rng.gen_bool(0.8) {
                self.nodes[leader].withheld.push(id);
                continue;
            }
            for to in 0..N {
                if forks == 1 || to % 2 == k {
                    self.send_blocks(leader, to, id);
                }
            }
        }
        if self.nodes[leader].fault == Fault::Withhold && self.rng.gen_bool(0.2) {
            for id in std::mem::take(&mut self.nodes[leader].withheld) {
                for to in 0..N {
                    self.send_blocks(leader, to, id);
                }
            }
        }
        self.with_machine(leader, |m, v| m.on_blocks_changed(v));
    }

    /// A mirroring faulty node answers `from`'s statement with the same statement as its own.
    fn mirror(&mut self, me: usize, from: usize, msg: &Msg) {
        let Msg::Vote { vote, .. } = msg else {
            return;
        };
        let reply = Msg::Vote {
            vote: Vote { ..*vote },
            signature: (),
        };
        self.send(me, from, reply);
        let leader = usize::from(proposer(vote.instance, vote.round, N));
        if leader == me {
            let best = self.best_of(from);
            let proposal = Msg::Proposal {
                proposal: Proposal {
                    instance: vote.instance,
                    round: vote.round,
                    block: block_ref(&self.blocks, best),
                    valid_round: None,
                },
                signature: (),
                polka: Vec::new(),
            };
            self.send(me, from, proposal);
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((time, _, id))) = self.queue.pop() else {
            return false;
        };
        if time > self.s.end {
            return false;
        }
        self.now = time;
        let Some(event) = self.events.remove(&id) else {
            return true;
        };
        match event {
            Event::Deliver { to, from, msg } => {
                if !self.nodes[to].up {
                    return true;
                }
                if self.nodes[to].fault == Fault::Mirror {
                    self.mirror(to, from, &msg);
                }
                let Ok(from) = AuthorityIndex::try_from(from) else {
                    return true;
                };
                self.with_machine(to, |m, v| m.on_message(from, msg, v));
            }
            Event::Blocks { to, tip } => {
                if self.nodes[to].up {
                    self.learn(to, tip);
                    self.with_machine(to, |m, v| m.on_blocks_changed(v));
                }
            }
            Event::Timer {
                node,
                life,
                timeout,
            } => {
                if self.nodes[node].life == life {
                    self.with_machine(node, |m, v| m.on_timeout(timeout, v));
                }
            }
            Event::Slot(slot) => {
                self.produce(slot);
                self.at(self.now + BLOCK_TIME_MS, Event::Slot(slot + 1));
            }
            Event::Rebroadcast(i) => {
                if self.nodes[i].up {
                    for m in self.nodes[i].machine.rebroadcast() {
                        self.broadcast(i, m);
                    }
                }
                self.at(self.now + REBROADCAST_MS, Event::Rebroadcast(i));
            }
            Event::Sync(i) => {
                let peer = self.rng.gen_range(0..N);
                if self.nodes[i].up
                    && self.nodes[peer].up
                    && peer != i
                    && self.s.connected(i, peer, self.now)
                    && !matches!(self.nodes[peer].fault, Fault::Withhold | Fault::Mirror)
                {
                    let theirs = self.nodes[peer].known.clone();
                    for (b, k) in theirs.iter().enumerate() {
                        if *k {
                            self.learn(i, b);
                        }
                    }
                    self.with_machine(i, |m, v| m.on_blocks_changed(v));
                }
                self.at(self.now + SYNC_MS, Event::Sync(i));
            }
            Event::Crash(i) => {
                if self.honest(i) || self.nodes[i].fault != Fault::Silent {
                    self.crash(i);
                }
            }
            Event::Restart(i) => self.restart(i),
        }
        true
    }

    fn final_number(&self, i: usize) -> u64 {
        self.nodes[i].machine.final_block().number
    }
}

/// Runs one seed; `Err` says what broke, with the schedule.
fn run(seed: u64, schedule: Option<Schedule>) -> Result<Sim, String> {
    let mut sim = Sim::new(seed, schedule);
    let mut at_heal: Option<u64> = None;
    while sim.step() {
        if at_heal.is_none() && sim.now >= sim.s.chaos_until + 2_000 {
            // Everyone honest is back by now (restarts are scheduled before the chaos ends).
            at_heal = Some(
                (0..N)
                    .filter(|i| sim.honest(*i))
                    .map(|i| sim.final_number(i))
                    .max()
                    .unwrap_or(0),
            );
        }
        if sim.failure.is_some() {
            break;
        }
    }
    if let Some(f) = sim.failure.take() {
        return Err(format!("seed {seed}: {f}\nschedule: {:?}", sim.s));
    }
    let heal = at_heal.unwrap_or(0);
    for i in (0..N).filter(|i| sim.honest(*i)) {
        let got = sim.final_number(i);
        if got < heal + 10 {
            let states: Vec<String> = (0..N)
                .map(|j| {
                    let st = sim.nodes[j].machine.state();
                    format!(
                        "node {j}: up {} instance {} round {} step {:?} final {} locked {:?} valid {:?} votes {:?} best {}",
                        sim.nodes[j].up,
                        st.instance,
                        st.round,
                        st.step,
                        st.final_block.number,
                        st.locked.map(|(r, b)| (r, id_of(&b))),
                        st.valid.as_ref().map(|v| (v.round, id_of(&v.block))),
                        sim.nodes[j].machine.round_votes(),
                        sim.best_of(j),
                    )
                })
                .collect();
            return Err(format!(
                "seed {seed}: finality did not resume after the heal at node {i}: final {got}, \
                 {heal} at heal time, head {}\n{}\nschedule: {:?}",
                sim.blocks[sim.best_of(i)].number,
                states.join("\n"),
                sim.s
            ));
        }
    }
    Ok(sim)
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("SEED") {
        return vec![s.parse().expect("SEED is a number")];
    }
    let n: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    (0..n).collect()
}

#[test]
fn no_two_conflicting_blocks_are_final_and_finality_resumes_after_heal() {
    let seeds = seeds();
    let mut failures = Vec::new();
    let mut decisions = 0;
    for seed in &seeds {
        match run(*seed, None) {
            Ok(sim) => {
                decisions += sim.finalized_events;
                if seeds.len() == 1 {
                    println!("schedule: {:?}", sim.s);
                    println!(
                        "final heights: {:?}",
                        (0..N).map(|i| sim.final_number(i)).collect::<Vec<_>>()
                    );
                }
            }
            Err(e) => failures.push(e),
        }
    }
    println!(
        "{} seeds, {decisions} decisions at honest nodes",
        seeds.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed; first: {}",
        failures.len(),
        seeds.len(),
        failures[0]
    );
}

/// The checker itself: with two faulty authorities of four (more than the protocol
/// tolerates) mirroring two honest ones kept apart, both honest ones finalise their own
/// branch, and the simulation must say so.
#[test]
fn two_faulty_of_four_break_safety_and_the_simulation_sees_it() {
    let mut broken = 0;
    for seed in 0..20 {
        let schedule = Schedule {
            faulty: 2,
            fault: Fault::Mirror,
            drop: 0.0,
            duplicate: 0.0,
            max_delay_ms: 20,
            partitions: Vec::new(),
            cuts: vec![(0, 30_000, 0, 1)],
            crashes: Vec::new(),
            crash_mid_actions: 0.0,
            chaos_until: 30_000,
            end: 40_000,
        };
        let mut sim = Sim::new(seed, Some(schedule));
        // A second mirroring authority: 3 of 4 faulty-or-mirrored votes make a quorum.
        sim.nodes[3].fault = Fault::Mirror;
        while sim.step() && sim.failure.is_none() {}
        if sim
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("conflicting final blocks") || f.contains("decided both"))
        {
            broken += 1;
        }
    }
    assert!(
        broken > 0,
        "the simulation never caught the double finality"
    );
}
