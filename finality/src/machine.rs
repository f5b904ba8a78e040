//! The voting state machine of one authority (or of an observer that only follows), free of
//! I/O: it takes messages, timeouts and "the block tree changed", and answers with actions in
//! the order they must happen (persist, then broadcast). The rules are Tendermint's ("The latest
//! gossip on BFT consensus", Buchman, Kwon and Milosevic, 2018, Algorithm 1) with the value
//! being a block that strictly extends the last final one; `docs/consensus.md` states them and
//! argues why they are safe.

use std::collections::BTreeMap;

use parity_scale_codec::{Decode, Encode};

use crate::statement::{
    max_faulty, proposer, quorum, AuthorityIndex, BlockRef, Commit, Instance, Proposal, Round,
    Statement, Vote, VoteKind,
};

/// How far behind and ahead of the current round votes are kept: enough to finish a round that
/// just ended and to start the next ones, bounded against an authority flooding round numbers.
const ROUND_WINDOW: Round = 4;
/// Messages for the next instance kept per authority until this one is decided.
const AHEAD_PER_AUTHORITY: usize = 8;

/// What the node's block tree says of a block, relative to the last final block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Known, valid and a strict descendant of the final block.
    Valid,
    /// Known, and invalid or not a strict descendant of the final block.
    Invalid,
    /// Not (yet) known: wait for it.
    Unknown,
}

/// The node's view of its blocks, as the machine needs it.
pub trait BlockTree {
    /// What `block` is relative to `final_block`.
    fn validity(&self, block: &BlockRef, final_block: &BlockRef) -> Validity;
    /// The head this node's fork choice picks among the descendants of the final block.
    fn best(&self) -> BlockRef;
}

/// Signs this authority's statements (the node: its key under the chain's domain).
pub trait Signer<S> {
    /// The signature of `statement`.
    fn sign(&self, statement: &Statement) -> S;
}

/// The three steps of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub enum Step {
    /// Waiting for the round's proposal.
    Propose,
    /// Prevoted; waiting for a quorum of prevotes.
    Prevote,
    /// Precommitted; waiting for a quorum of precommits or the round's end.
    Precommit,
}

/// A block that got a quorum of prevotes in a round, with those prevotes.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Polka<S> {
    /// The round.
    pub round: Round,
    /// The block.
    pub block: BlockRef,
    /// The prevotes, with their signers.
    pub prevotes: Vec<(AuthorityIndex, S)>,
}

/// A message between authorities (signatures already checked by whoever hands it in).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Message<S> {
    /// A round leader's proposal; a re-proposal carries its polka's prevotes.
    Proposal {
        /// The proposal.
        proposal: Proposal,
        /// The proposer's signature.
        signature: S,
        /// The prevotes for the block in `proposal.valid_round` (empty for a fresh proposal).
        polka: Vec<(AuthorityIndex, S)>,
    },
    /// A prevote or precommit.
    Vote {
        /// The vote.
        vote: Vote,
        /// Its author's signature.
        signature: S,
    },
    /// A decision with its precommits.
    Commit(Commit<S>),
}

/// The statement an authority makes with a proposal or vote, in one line: what, where and
/// for which block (`prevote/5/0/0xab…`, `precommit/5/1/nil`). Logs show what was sent in this
/// form and tests compare it with what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Said {
    /// `proposal`, `prevote` or `precommit`.
    pub kind: &'static str,
    /// The instance.
    pub instance: Instance,
    /// The round.
    pub round: Round,
    /// The block, or `None` for a nil vote.
    pub block: Option<primitives::types::Hash>,
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}/", self.kind, self.instance, self.round)?;
        match self.block {
            Some(h) => write!(f, "{h}"),
            None => write!(f, "nil"),
        }
    }
}

impl<S> Message<S> {
    /// The statement this message makes as its author's own (a commit carries others' votes).
    pub fn said(&self) -> Option<Said> {
        match self {
            Message::Proposal { proposal, .. } => Some(Said {
                kind: "proposal",
                instance: proposal.instance,
                round: proposal.round,
                block: Some(proposal.block.hash),
            }),
            Message::Vote { vote, .. } => Some(Said {
                kind: match vote.kind {
                    VoteKind::Prevote => "prevote",
                    VoteKind::Precommit => "precommit",
                },
                instance: vote.instance,
                round: vote.round,
                block: vote.block.map(|b| b.hash),
            }),
            Message::Commit(_) => None,
        }
    }
}

/// What survives a restart, written durably before any message it leads to is sent: an
/// authority that restarts from it never signs a statement against one it signed before.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Durable<S> {
    /// The instance being decided.
    pub instance: Instance,
    /// The last final block (genesis before the first decision).
    pub final_block: BlockRef,
    /// Its justification (none for genesis).
    pub last_commit: Option<Commit<S>>,
    /// The current round.
    pub round: Round,
    /// The step in it.
    pub step: Step,
    /// The block this authority precommitted last in this instance, and the round.
    pub locked: Option<(Round, BlockRef)>,
    /// The latest block seen with a quorum of prevotes in this instance.
    pub valid: Option<Polka<S>>,
    /// What this authority proposed in the current round.
    pub proposal: Option<Message<S>>,
    /// What it prevoted in the current round.
    pub prevote: Option<Message<S>>,
    /// What it precommitted in the current round.
    pub precommit: Option<Message<S>>,
    /// Its votes in the round it left last: sent again too, since authorities still in that
    /// round may have lost them and cannot leave it without a quorum of its precommits.
    pub previous: Vec<Message<S>>,
}

impl<S> Durable<S> {
    /// The state before any decision: genesis is final.
    pub fn genesis(genesis: BlockRef) -> Self {
        Self {
            instance: 1,
            final_block: genesis,
            last_commit: None,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            proposal: None,
            prevote: None,
            precommit: None,
            previous: Vec::new(),
        }
    }
}

/// When to call [`Machine::on_timeout`] back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// The instance it belongs to.
    pub instance: Instance,
    /// The round it belongs to.
    pub round: Round,
    /// The step it ends.
    pub step: Step,
    /// After how long, in milliseconds.
    pub after_ms: u64,
}

/// Two different statements one authority signed for the same place: proof it is faulty.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Equivocation<S> {
    /// Who signed both.
    pub authority: AuthorityIndex,
    /// The statement seen first, with its signature.
    pub first: (Statement, S),
    /// The conflicting one.
    pub second: (Statement, S),
}

/// What the machine asks its host to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<S> {
    /// Write this state durably; the actions after it may assume it is written.
    Persist(Box<Durable<S>>),
    /// Send this message to every authority.
    Broadcast(Message<S>),
    /// Call [`Machine::on_timeout`] with this after its delay.
    Schedule(Timeout),
    /// A block became final (the `Persist` before this holds its commit).
    Finalized(Commit<S>),
    /// An authority signed two conflicting statements.
    Equivocation(Equivocation<S>),
    /// A commit arrived for a block that conflicts with the final chain: more authorities
    /// are faulty than the protocol tolerates. Refused; an operator must look.
    Conflict(Commit<S>),
}

/// Settings of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// How many authorities there are.
    pub authorities: usize,
    /// This node's position among them (`None`: it follows without voting).
    pub me: Option<AuthorityIndex>,
    /// A step's timeout in round 0, in milliseconds.
    pub timeout_base_ms: u64,
    /// What each later round adds to it, so rounds eventually outlast any delay.
    pub timeout_step_ms: u64,
}

/// A round's proposal as received (the polka only matters when it was checked on the way in).
#[derive(Debug)]
struct ReceivedProposal<S> {
    proposal: Proposal,
    signature: S,
}

/// The votes of one round.
#[derive(Debug)]
struct RoundVotes<S> {
    proposal: Option<ReceivedProposal<S>>,
    prevotes: Vec<Option<(Option<BlockRef>, S)>>,
    precommits: Vec<Option<(Option<BlockRef>, S)>>,
    prevote_timer: bool,
    precommit_timer: bool,
    polka_done: bool,
}

impl<S: Clone> RoundVotes<S> {
    fn new(n: usize) -> Self {
        Self {
            proposal: None,
            prevotes: vec![None; n],
            precommits: vec![None; n],
            prevote_timer: false,
            precommit_timer: false,
            polka_done: false,
        }
    }

    fn of(&self, kind: VoteKind) -> &[Option<(Option<BlockRef>, S)>] {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    fn count_any(&self, kind: VoteKind) -> usize {
        self.of(kind).iter().filter(|v| v.is_some()).count()
    }

    fn count(&self, kind: VoteKind, target: Option<BlockRef>) -> usize {
        self.of(kind)
            .iter()
            .filter(|v| matches!(v, Some((t, _)) if *t == target))
            .count()
    }

    /// The block (not nil) that has at least `q` votes of `kind`, with those votes.
    fn quorum_for(&self, kind: VoteKind, q: usize) -> Option<(BlockRef, Vec<(AuthorityIndex, S)>)> {
        let votes = self.of(kind);
        for (t, _) in votes.iter().flatten() {
            let Some(block) = t else { continue };
            if self.count(kind, Some(*block)) >= q {
                let sigs = votes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| match v {
                        Some((Some(b), s)) if b == block => {
                            Some((AuthorityIndex::try_from(i).ok()?, s.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                return Some((*block, sigs));
            }
        }
        None
    }
}

/// One authority's (or observer's) finality state machine.
pub struct Machine<S> {
    config: MachineConfig,
    signer: Option<Box<dyn Signer<S> + Send>>,
    state: Durable<S>,
    rounds: BTreeMap<Round, RoundVotes<S>>,
    /// The highest round each authority was heard in during this instance.
    highest: Vec<Option<Round>>,
    /// Messages for the next instance, per authority, until this one is decided.
    ahead: Vec<Vec<Message<S>>>,
    /// The round-0 timer waits until there is a block to decide.
    timer_waits_for_block: bool,
}

impl<S: Clone + PartialEq + std::fmt::Debug> Machine<S> {
    /// A machine resuming from `state` (what it last persisted, or [`Durable::genesis`]).
    /// `signer` is this authority's key; without it (or `me`) the machine only follows.
    pub fn new(
        config: MachineConfig,
        signer: Option<Box<dyn Signer<S> + Send>>,
        state: Durable<S>,
    ) -> Self {
        let n = config.authorities;
        Self {
            config,
            signer,
            state,
            rounds: BTreeMap::new(),
            highest: vec![None; n],
            ahead: vec![Vec::new(); n],
            timer_waits_for_block: true,
        }
    }

    /// The durable state as it stands.
    pub fn state(&self) -> &Durable<S> {
        &self.state
    }

    /// The last final block.
    pub fn final_block(&self) -> BlockRef {
        self.state.final_block
    }

    /// This node's authority index, when it votes (an authority with its signing key).
    pub fn me(&self) -> Option<AuthorityIndex> {
        self.config.me.filter(|_| self.voting())
    }

    /// The authorities heard from in this instance (any round).
    pub fn heard(&self) -> Vec<AuthorityIndex> {
        self.highest
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .filter_map(|(i, _)| AuthorityIndex::try_from(i).ok())
            .collect()
    }

    /// The block proposed in the current round, if a proposal arrived.
    pub fn current_proposal(&self) -> Option<BlockRef> {
        self.rounds
            .get(&self.state.round)
            .and_then(|r| r.proposal.as_ref())
            .map(|p| p.proposal.block)
    }

    /// The current round's proposal when it is a re-proposal carrying a polka (a quorum of
    /// prevotes for its block in an earlier round): a block at least f+1 correct authorities
    /// prevoted, and that those locked on it will vote for and nothing else. Fork choice should
    /// take its branch even if shorter, or an unlocked authority whose chain left that block
    /// never votes for it, and the locked ones never for anything else.
    pub fn current_polka_proposal(&self) -> Option<BlockRef> {
        self.rounds
            .get(&self.state.round)
            .and_then(|r| r.proposal.as_ref())
            .filter(|p| p.proposal.valid_round.is_some())
            .map(|p| p.proposal.block)
    }

    /// How many prevotes and precommits the current round has.
    pub fn round_votes(&self) -> (usize, usize) {
        self.rounds
            .get(&self.state.round)
            .map(|r| {
                (
                    r.count_any(VoteKind::Prevote),
                    r.count_any(VoteKind::Precommit),
                )
            })
            .unwrap_or((0, 0))
    }

    fn n(&self) -> usize {
        self.config.authorities
    }

    fn voting(&self) -> bool {
        self.config.me.is_some() && self.signer.is_some()
    }

    fn timeout(&self, step: Step) -> Timeout {
        let s = &self.state;
        Timeout {
            instance: s.instance,
            round: s.round,
            step,
            after_ms: self.config.timeout_base_ms.saturating_add(
                self.config
                    .timeout_step_ms
                    .saturating_mul(u64::from(s.round)),
            ),
        }
    }

    /// At start (fresh or after a restart): re-arm the current round and send again what this
    /// authority already said in it (a crash may have cut the sending short).
    pub fn start(&mut self, tree: &dyn BlockTree) -> Vec<Action<S>> {
        let mut out = Vec::new();
        for m in self.rebroadcast() {
            out.push(Action::Broadcast(m));
        }
        let own: Vec<(AuthorityIndex, Message<S>)> = match self.config.me {
            Some(me) => [
                &self.state.proposal,
                &self.state.prevote,
                &self.state.precommit,
            ]
            .into_iter()
            .flatten()
            .map(|m| (me, m.clone()))
            .collect(),
            None => Vec::new(),
        };
        for (me, m) in own {
            self.record(me, m, &mut out);
        }
        self.arm_propose_timer(tree, &mut out);
        self.propose_if_ready(tree, &mut out);
        self.progress(tree, &mut out);
        out
    }

    /// What to send again now and then, so lost messages are made good: this authority's
    /// statements in the current round and the last commit.
    pub fn rebroadcast(&self) -> Vec<Message<S>> {
        let s = &self.state;
        let mut out: Vec<Message<S>> = s.previous.clone();
        out.extend(
            [&s.proposal, &s.prevote, &s.precommit]
                .into_iter()
                .flatten()
                .cloned(),
        );
        if let Some(c) = &s.last_commit {
            out.push(Message::Commit(c.clone()));
        }
        out
    }

    /// The block tree changed (a block was imported): a proposal may be decidable now, or
    /// this authority may have something to propose.
    pub fn on_blocks_changed(&mut self, tree: &dyn BlockTree) -> Vec<Action<S>> {
        let mut out = Vec::new();
        self.arm_propose_timer(tree, &mut out);
        self.propose_if_ready(tree, &mut out);
        self.progress(tree, &mut out);
        out
    }

    /// A timeout scheduled earlier fired.
    pub fn on_timeout(&mut self, t: Timeout, tree: &dyn BlockTree) -> Vec<Action<S>> {
        let mut out = Vec::new();
        if t.instance == self.state.instance && t.round == self.state.round {
            match t.step {
                Step::Propose if self.state.step == Step::Propose => {
                    self.vote(VoteKind::Prevote, None, &mut out);
                }
                Step::Prevote if self.state.step == Step::Prevote => {
                    self.vote(VoteKind::Precommit, None, &mut out);
                }
                Step::Precommit => {
                    let next = self.state.round.saturating_add(1);
                    self.start_round(next, tree, &mut out);
                }
                _ => {}
            }
        }
        self.progress(tree, &mut out);
        out
    }

    /// A message from authority `from` (for a commit: from whoever relayed it), whose
    /// signatures the host has checked. Malformed or stale messages are dropped.
    pub fn on_message(
        &mut self,
        from: AuthorityIndex,
        message: Message<S>,
        tree: &dyn BlockTree,
    ) -> Vec<Action<S>> {
        let mut out = Vec::new();
        match message {
            Message::Commit(c) => {
                if c.instance >= self.state.instance
                    && distinct(&c.precommits, self.n()) >= quorum(self.n())
                {
                    self.decide(c, tree, &mut out);
                }
            }
            m => self.record(from, m, &mut out),
        }
        self.progress(tree, &mut out);
        out
    }

    fn message_place(m: &Message<S>) -> (Instance, Round) {
        match m {
            Message::Proposal { proposal, .. } => (proposal.instance, proposal.round),
            Message::Vote { vote, .. } => (vote.instance, vote.round),
            Message::Commit(c) => (c.instance, c.round),
        }
    }

    /// Stores a proposal or vote in the round tallies; no rule runs here.
    fn record(&mut self, from: AuthorityIndex, message: Message<S>, out: &mut Vec<Action<S>>) {
        let n = self.n();
        if usize::from(from) >= n {
            return;
        }
        let instance = self.state.instance;
        let (mi, round) = Self::message_place(&message);
        if mi == instance.saturating_add(1) {
            let q = &mut self.ahead[usize::from(from)];
            if q.len() >= AHEAD_PER_AUTHORITY {
                q.remove(0);
            }
            q.push(message);
            return;
        }
        if mi != instance {
            return;
        }
        let h = &mut self.highest[usize::from(from)];
        if h.is_none_or(|r| r < round) {
            *h = Some(round);
        }
        let current = self.state.round;
        if round.saturating_add(ROUND_WINDOW) < current
            || round > current.saturating_add(ROUND_WINDOW)
        {
            return;
        }
        let q = quorum(n);
        let votes = self
            .rounds
            .entry(round)
            .or_insert_with(|| RoundVotes::new(n));
        match message {
            Message::Proposal {
                proposal,
                signature,
                polka,
            } => {
                if from != proposer(instance, round, n) {
                    return;
                }
                let polka_ok = match proposal.valid_round {
                    None => polka.is_empty(),
                    Some(vr) => vr < round && distinct(&polka, n) >= q,
                };
                if !polka_ok {
                    return;
                }
                match &votes.proposal {
                    None => {
                        votes.proposal = Some(ReceivedProposal {
                            proposal,
                            signature,
                        })
                    }
                    Some(first) if first.proposal != proposal => {
                        out.push(Action::Equivocation(Equivocation {
                            authority: from,
                            first: (Statement::Proposal(first.proposal), first.signature.clone()),
                            second: (Statement::Proposal(proposal), signature),
                        }));
                    }
                    Some(_) => {}
                }
            }
            Message::Vote { vote, signature } => {
                let slot = match vote.kind {
                    VoteKind::Prevote => &mut votes.prevotes[usize::from(from)],
                    VoteKind::Precommit => &mut votes.precommits[usize::from(from)],
                };
                match slot {
                    None => *slot = Some((vote.block, signature)),
                    Some((t, s)) if *t != vote.block => {
                        let first = Vote { block: *t, ..vote };
                        out.push(Action::Equivocation(Equivocation {
                            authority: from,
                            first: (Statement::Vote(first), s.clone()),
                            second: (Statement::Vote(vote), signature),
                        }));
                    }
                    Some(_) => {}
                }
            }
            Message::Commit(_) => {}
        }
    }

    /// Makes `commit`'s block final and starts the next instance. Returns false (and reports
    /// a conflict) if the block is known not to extend the final chain.
    fn decide(
        &mut self,
        commit: Commit<S>,
        tree: &dyn BlockTree,
        out: &mut Vec<Action<S>>,
    ) -> bool {
        if tree.validity(&commit.block, &self.state.final_block) == Validity::Invalid {
            out.push(Action::Conflict(commit));
            return false;
        }
        let n = self.n();
        self.state = Durable {
            instance: commit.instance.saturating_add(1),
            final_block: commit.block,
            last_commit: Some(commit.clone()),
            ..Durable::genesis(commit.block)
        };
        self.rounds.clear();
        self.highest = vec![None; n];
        let ahead = std::mem::replace(&mut self.ahead, vec![Vec::new(); n]);
        out.push(Action::Persist(Box::new(self.state.clone())));
        out.push(Action::Finalized(commit.clone()));
        out.push(Action::Broadcast(Message::Commit(commit)));
        for (from, messages) in ahead.into_iter().enumerate() {
            let Ok(from) = AuthorityIndex::try_from(from) else {
                continue;
            };
            for m in messages {
                self.record(from, m, out);
            }
        }
        self.enter_round(tree, out);
        true
    }

    /// Applies the rules until none fires.
    fn progress(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) {
        loop {
            if self.skip_round(tree, out)
                || self.decide_on_precommits(tree, out)
                || self.prevote_on_proposal(tree, out)
                || self.precommit_on_polka(tree, out)
                || self.precommit_nil(out)
            {
                continue;
            }
            self.vote_timers(out);
            return;
        }
    }

    /// A quorum voted in this step, but not (yet) for one block: give the round a while
    /// longer, then move on. Waiting for a quorum before the clock runs is what keeps the
    /// authorities' rounds together: none leaves a round that a quorum has not reached.
    fn vote_timers(&mut self, out: &mut Vec<Action<S>>) {
        let q = quorum(self.n());
        let step = self.state.step;
        let prevote = self.timeout(Step::Prevote);
        let precommit = self.timeout(Step::Precommit);
        let Some(votes) = self.rounds.get_mut(&self.state.round) else {
            return;
        };
        if step == Step::Prevote && !votes.prevote_timer && votes.count_any(VoteKind::Prevote) >= q
        {
            votes.prevote_timer = true;
            out.push(Action::Schedule(prevote));
        }
        if !votes.precommit_timer && votes.count_any(VoteKind::Precommit) >= q {
            votes.precommit_timer = true;
            out.push(Action::Schedule(precommit));
        }
    }

    /// More than f authorities are in a later round: at least one correct one is, so follow.
    fn skip_round(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) -> bool {
        let mut rounds: Vec<Round> = self.highest.iter().flatten().copied().collect();
        let f = max_faulty(self.n());
        if rounds.len() <= f {
            return false;
        }
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let target = rounds[f];
        if target > self.state.round {
            self.start_round(target, tree, out);
            return true;
        }
        false
    }

    /// A quorum of precommits for one block in any kept round decides it.
    fn decide_on_precommits(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) -> bool {
        let q = quorum(self.n());
        let found = self.rounds.iter().find_map(|(r, votes)| {
            votes
                .quorum_for(VoteKind::Precommit, q)
                .map(|(block, precommits)| (*r, block, precommits))
        });
        let Some((round, block, precommits)) = found else {
            return false;
        };
        let commit = Commit {
            instance: self.state.instance,
            round,
            block,
            precommits,
        };
        if self.decide(commit, tree, out) {
            return true;
        }
        // Known to conflict with the final chain (more faults than tolerated): drop those
        // precommits rather than try again forever.
        if let Some(votes) = self.rounds.get_mut(&round) {
            votes.precommits = vec![None; self.config.authorities];
        }
        false
    }

    /// The round's proposal arrived and its block is known: prevote it, or nil if it is
    /// invalid or conflicts with this authority's lock.
    fn prevote_on_proposal(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) -> bool {
        if self.state.step != Step::Propose {
            return false;
        }
        let Some(p) = self
            .rounds
            .get(&self.state.round)
            .and_then(|v| v.proposal.as_ref())
            .map(|r| r.proposal)
        else {
            return false;
        };
        let validity = tree.validity(&p.block, &self.state.final_block);
        if validity == Validity::Unknown {
            return false;
        }
        let lock_allows = match (self.state.locked, p.valid_round) {
            (None, _) => true,
            (Some((_, locked)), None) => locked == p.block,
            (Some((lr, locked)), Some(vr)) => lr <= vr || locked == p.block,
        };
        let target = (validity == Validity::Valid && lock_allows).then_some(p.block);
        self.vote(VoteKind::Prevote, target, out);
        true
    }

    /// A quorum of prevotes for a valid block in this round: remember it as valid, and if
    /// still at the prevote step, lock on it and precommit it.
    fn precommit_on_polka(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) -> bool {
        if self.state.step < Step::Prevote {
            return false;
        }
        let q = quorum(self.n());
        let round = self.state.round;
        let Some(votes) = self.rounds.get(&round) else {
            return false;
        };
        if votes.polka_done {
            return false;
        }
        let Some((block, prevotes)) = votes.quorum_for(VoteKind::Prevote, q) else {
            return false;
        };
        if tree.validity(&block, &self.state.final_block) != Validity::Valid {
            return false;
        }
        if let Some(votes) = self.rounds.get_mut(&round) {
            votes.polka_done = true;
        }
        self.state.valid = Some(Polka {
            round,
            block,
            prevotes,
        });
        if self.state.step == Step::Prevote {
            self.state.locked = Some((round, block));
            self.vote(VoteKind::Precommit, Some(block), out);
        } else if self.voting() {
            out.push(Action::Persist(Box::new(self.state.clone())));
        }
        true
    }

    /// A quorum prevoted nil: precommit nil.
    fn precommit_nil(&mut self, out: &mut Vec<Action<S>>) -> bool {
        if self.state.step != Step::Prevote {
            return false;
        }
        let q = quorum(self.n());
        let nil = self
            .rounds
            .get(&self.state.round)
            .is_some_and(|v| v.count(VoteKind::Prevote, None) >= q);
        if nil {
            self.vote(VoteKind::Precommit, None, out);
        }
        nil
    }

    fn start_round(&mut self, round: Round, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) {
        let s = &mut self.state;
        s.round = round;
        s.step = Step::Propose;
        s.proposal = None;
        let left: Vec<Message<S>> = [s.prevote.take(), s.precommit.take()]
            .into_iter()
            .flatten()
            .collect();
        if !left.is_empty() {
            s.previous = left;
        }
        self.rounds.retain(|r, _| {
            r.saturating_add(ROUND_WINDOW) >= round && *r <= round.saturating_add(ROUND_WINDOW)
        });
        if self.voting() {
            out.push(Action::Persist(Box::new(self.state.clone())));
        }
        self.enter_round(tree, out);
    }

    fn enter_round(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) {
        self.timer_waits_for_block = true;
        self.arm_propose_timer(tree, out);
        self.propose_if_ready(tree, out);
    }

    /// The propose timer runs only while there is a block to decide: an idle chain does not
    /// spin through empty rounds.
    fn arm_propose_timer(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) {
        if self.timer_waits_for_block
            && tree.validity(&tree.best(), &self.state.final_block) == Validity::Valid
        {
            self.timer_waits_for_block = false;
            out.push(Action::Schedule(self.timeout(Step::Propose)));
        }
    }

    /// The round's leader proposes its valid block if it has one, else its best head.
    fn propose_if_ready(&mut self, tree: &dyn BlockTree, out: &mut Vec<Action<S>>) {
        let Some(me) = self.config.me else {
            return;
        };
        let s = &self.state;
        if proposer(s.instance, s.round, self.n()) != me
            || s.step != Step::Propose
            || s.proposal.is_some()
        {
            return;
        }
        let (block, valid_round, polka) = match &s.valid {
            Some(v) if v.round < s.round => (v.block, Some(v.round), v.prevotes.clone()),
            _ => {
                let best = tree.best();
                if tree.validity(&best, &s.final_block) != Validity::Valid {
                    return;
                }
                (best, None, Vec::new())
            }
        };
        let proposal = Proposal {
            instance: s.instance,
            round: s.round,
            block,
            valid_round,
        };
        let Some(signer) = &self.signer else {
            return;
        };
        let signature = signer.sign(&Statement::Proposal(proposal));
        let message = Message::Proposal {
            proposal,
            signature,
            polka,
        };
        self.state.proposal = Some(message.clone());
        out.push(Action::Persist(Box::new(self.state.clone())));
        out.push(Action::Broadcast(message.clone()));
        self.record(me, message, out);
    }

    /// Moves to the vote's step and, as an authority, signs, persists and sends it.
    fn vote(&mut self, kind: VoteKind, block: Option<BlockRef>, out: &mut Vec<Action<S>>) {
        let step = match kind {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        };
        self.state.step = step;
        let (Some(me), Some(signer)) = (self.config.me, &self.signer) else {
            return;
        };
        let vote = Vote {
            instance: self.state.instance,
            round: self.state.round,
            kind,
            block,
        };
        let signature = signer.sign(&Statement::Vote(vote));
        let message = Message::Vote { vote, signature };
        match kind {
            VoteKind::Prevote => self.state.prevote = Some(message.clone()),
            VoteKind::Precommit => self.state.precommit = Some(message.clone()),
        }
        out.push(Action::Persist(Box::new(self.state.clone())));
        out.push(Action::Broadcast(message.clone()));
        self.record(me, message, out);
    }
}

/// How many distinct authorities (below `n`) appear in `votes`.
fn distinct<S>(votes: &[(AuthorityIndex, S)], n: usize) -> usize {
    let mut seen = vec![false; n];
    for (i, _) in votes {
        if let Some(s) = seen.get_mut(usize::from(*i)) {
            *s = true;
        }
    }
    seen.iter().filter(|s| **s).count()
}
