//! Account state in memory, with per-block diffs and undo journals.

use std::collections::HashMap;

use parity_scale_codec::{Decode, Encode};

use primitives::account::{Account, Totals};
use primitives::crypto::{domain, keccak256_parts};
use primitives::genesis::Genesis;
use primitives::types::{Address, Amount, BlockNumber, Hash};

/// A running sum of one hash per account and per processed peg id, updated in O(changes):
/// two nodes (or a node and its checkpoint) with the same entries have the same sum, whatever
/// order the entries arrived in. It is a consistency check between honest copies (a checkpoint
/// that lost an account, two nodes that diverged), not a commitment an adversary cannot forge:
/// an additive hash admits crafted collisions, and nothing in consensus rests on it.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EntrySum([u64; 4]);

impl EntrySum {
    fn add(&mut self, h: &Hash) {
        self.combine(h, u64::overflowing_add);
    }

    fn sub(&mut self, h: &Hash) {
        self.combine(h, u64::overflowing_sub);
    }

    /// Applies `op` limb by limb from the lowest, passing its carry (or borrow) up.
    fn combine(&mut self, h: &Hash, op: fn(u64, u64) -> (u64, bool)) {
        let mut carry = false;
        for (limb, chunk) in self.0.iter_mut().zip(h.0.chunks_exact(8)) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            let (v, c1) = op(*limb, x);
            let (v, c2) = op(v, carry as u64);
            *limb = v;
            carry = c1 || c2;
        }
    }

    /// The sum as 32 bytes (little-endian limbs).
    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }
}

fn account_entry(addr: &Address, a: &Account) -> Hash {
    keccak256_parts(&[domain::STATE_ACCOUNT, &addr.0, &a.encode()])
}

fn processed_entry(id: &Hash, block: BlockNumber) -> Hash {
    keccak256_parts(&[domain::STATE_PEG_ID, &id.0, &block.to_le_bytes()])
}

/// The whole account state.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct State {
    accounts: HashMap<Address, Account>,
    /// Peg payout ids already processed (Mint on side, Release on main), with their block.
    processed: HashMap<Hash, BlockNumber>,
    /// Running totals.
    pub totals: Totals,
    /// The sum of every entry above, kept current by each mutation.
    sum: EntrySum,
}

/// What a block changed: every touched account's new value, sorted by address.
#[derive(Clone, Default, PartialEq, Eq, Debug, Encode, Decode)]
pub struct StateDiff {
    /// New values, sorted by address.
    pub accounts: Vec<(Address, Account)>,
    /// Totals after the block.
    pub totals: Totals,
    /// Peg ids the block processed.
    pub processed: Vec<(Hash, BlockNumber)>,
}

/// How to undo a block: every touched account's previous value (`None`: did not exist).
#[derive(Clone, Default, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Undo {
    /// Previous values, sorted by address.
    pub accounts: Vec<(Address, Option<Account>)>,
    /// Totals before the block.
    pub totals: Totals,
    /// Peg ids the block processed, forgotten on undo.
    pub processed: Vec<Hash>,
}

impl State {
    /// The initial account state a genesis names.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut s = State::default();
        for a in &genesis.accounts {
            s.insert(
                a.address,
                Account {
                    balance: a.balance,
                    nonce: 0,
                },
            );
        }
        s
    }

    /// The account, or an empty one.
    pub fn account(&self, addr: &Address) -> Account {
        self.accounts.get(addr).copied().unwrap_or_default()
    }

    /// The account if it exists.
    pub fn get(&self, addr: &Address) -> Option<Account> {
        self.accounts.get(addr).copied()
    }

    /// Sets an account outright (genesis and checkpoint loading).
    pub fn insert(&mut self, addr: Address, account: Account) {
        self.sum.add(&account_entry(&addr, &account));
        if let Some(old) = self.accounts.insert(addr, account) {
            self.sum.sub(&account_entry(&addr, &old));
        }
    }

    fn remove(&mut self, addr: &Address) {
        if let Some(old) = self.accounts.remove(addr) {
            self.sum.sub(&account_entry(addr, &old));
        }
    }

    fn forget_processed(&mut self, id: &Hash) {
        if let Some(old) = self.processed.remove(id) {
            self.sum.sub(&processed_entry(id, old));
        }
    }

    /// A digest of the whole state (every account, every processed peg id, the totals), in
    /// O(1): equal states give equal digests, and a restart must reproduce it exactly.
    pub fn digest(&self) -> Hash {
        keccak256_parts(&[
            domain::STATE_DIGEST,
            &self.sum.to_bytes(),
            &self.totals.encode(),
        ])
    }

    /// The running sum over accounts and processed ids alone (what a checkpoint holds).
    pub fn entry_sum(&self) -> EntrySum {
        self.sum
    }

    /// Number of processed peg ids.
    pub fn processed_len(&self) -> usize {
        self.processed.len()
    }

    /// All processed peg ids with their block (unordered).
    pub fn iter_processed(&self) -> impl Iterator<Item = (&Hash, &BlockNumber)> {
        self.processed.iter()
    }

    /// Where a peg id was processed, if it was.
    pub fn processed(&self, id: &Hash) -> Option<BlockNumber> {
        self.processed.get(id).copied()
    }

    /// Records a processed peg id outright (checkpoint loading).
    pub fn insert_processed(&mut self, id: Hash, block: BlockNumber) {
        self.sum.add(&processed_entry(&id, block));
        if let Some(old) = self.processed.insert(id, block) {
            self.sum.sub(&processed_entry(&id, old));
        }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// All accounts (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// Sum of all balances, or `None` if it overflows (it never should).
    pub fn total_balance(&self) -> Option<Amount> {
        self.accounts
            .values()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a.balance))
    }

    /// Applies a block's diff.
    pub fn apply_diff(&mut self, diff: &StateDiff) {
        for (addr, acct) in &diff.accounts {
            self.insert(*addr, *acct);
        }
        for (id, block) in &diff.processed {
            self.insert_processed(*id, *block);
        }
        self.totals = diff.totals;
    }

    /// Rolls a block back.
    pub fn apply_undo(&mut self, undo: &Undo) {
        for (addr, prev) in &undo.accounts {
            match prev {
                Some(a) => self.insert(*addr, *a),
                None => self.remove(addr),
            }
        }
        for id in &undo.processed {
            self.forget_processed(id);
        }
        self.totals = undo.totals;
    }
}

/// Read access to account state: the live [`State`], or a view of it at an earlier block.
pub trait StateRead: Sync {
    /// The account if it exists.
    fn get(&self, addr: &Address) -> Option<Account>;
    /// The running totals.
    fn totals(&self) -> Totals;
    /// Where a peg id was processed, if it was.
    fn processed(&self, id: &Hash) -> Option<BlockNumber>;
    /// The account, or an empty one.
    fn account(&self, addr: &Address) -> Account {
        self.get(addr).unwrap_or_default()
    }
}

impl StateRead for State {
    fn get(&self, addr: &Address) -> Option<Account> {
        self.accounts.get(addr).copied()
    }
    fn totals(&self) -> Totals {
        self.totals
    }
    fn processed(&self, id: &Hash) -> Option<BlockNumber> {
        self.processed.get(id).copied()
    }
}

/// The live state seen through a layer of replacements: the state at a fork point (the
/// undo journals of the blocks above it) plus the blocks of a new branch executed so far.
#[derive(Debug)]
pub struct LayeredState<'a> {
    base: &'a State,
    /// Replacement values; `None` means the account does not exist in this view.
    pub layer: HashMap<Address, Option<Account>>,
    /// Peg ids whose status differs from the live state's.
    pub processed: HashMap<Hash, Option<BlockNumber>>,
    /// Totals in this view.
    pub totals: Totals,
}

impl<'a> LayeredState<'a> {
    /// The live state rolled back through `undos`, given newest block first.
    pub fn rolled_back(base: &'a State, undos_newest_first: &[Undo]) -> Self {
        let mut layer = HashMap::new();
        let mut processed = HashMap::new();
        let mut totals = base.totals;
        for undo in undos_newest_first {
            for (addr, prev) in &undo.accounts {
                layer.insert(*addr, *prev);
            }
            for id in &undo.processed {
                processed.insert(*id, None);
            }
            totals = undo.totals;
        }
        Self {
            base,
            layer,
            processed,
            totals,
        }
    }

    /// Moves the view forward by one block's diff.
    pub fn apply_diff(&mut self, diff: &StateDiff) {
        for (addr, acct) in &diff.accounts {
            self.layer.insert(*addr, Some(*acct));
        }
        for (id, block) in &diff.processed {
            self.processed.insert(*id, Some(*block));
        }
        self.totals = diff.totals;
    }
}

impl StateRead for LayeredState<'_> {
    fn get(&self, addr: &Address) -> Option<Account> {
        match self.layer.get(addr) {
            Some(v) => *v,
            None => self.base.accounts.get(addr).copied(),
        }
    }
    fn totals(&self) -> Totals {
        self.totals
    }
    fn processed(&self, id: &Hash) -> Option<BlockNumber> {
        match self.processed.get(id) {
            Some(v) => *v,
            None => self.base.processed.get(id).copied(),
        }
    }
}

/// Pending changes on top of a state, as a block executes; the base is never touched.
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    changed: HashMap<Address, Account>,
    processed: Vec<(Hash, BlockNumber)>,
    /// Totals as of the last applied transaction.
    pub totals: Totals,
}

impl<'a> Overlay<'a> {
    /// An empty overlay on `base`.
    pub fn new(base: &'a dyn StateRead) -> Self {
        Self {
            base,
            changed: HashMap::new(),
            processed: Vec::new(),
            totals: base.totals(),
        }
    }

    /// Where a peg id was processed (earlier in this block or before).
    pub fn processed(&self, id: &Hash) -> Option<BlockNumber> {
        self.processed
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, b)| *b)
            .or_else(|| self.base.processed(id))
    }

    /// Marks a peg id processed in block `block`.
    pub fn mark_processed(&mut self, id: Hash, block: BlockNumber) {
        self.processed.push((id, block));
    }

    /// The current value of an account.
    pub fn account(&self, addr: &Address) -> Account {
        self.changed
            .get(addr)
            .copied()
            .unwrap_or_else(|| self.base.account(addr))
    }

    /// Writes an account.
    pub fn set(&mut self, addr: Address, account: Account) {
        self.changed.insert(addr, account);
    }

    /// The diff and undo journal of everything written.
    pub fn finish(self) -> (StateDiff, Undo) {
        let mut accounts: Vec<(Address, Account)> = self.changed.into_iter().collect();
        accounts.sort_unstable_by_key(|(a, _)| *a);
        let undo = Undo {
            accounts: accounts
                .iter()
                .map(|(a, _)| (*a, self.base.get(a)))
                .collect(),
            totals: self.base.totals(),
            processed: self.processed.iter().map(|(id, _)| *id).collect(),
        };
        (
            StateDiff {
                accounts,
                totals: self.totals,
                processed: self.processed,
            },
            undo,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_restores_the_exact_previous_state() {
        let mut state = State::default();
        let a = Address([1; 20]);
        let b = Address([2; 20]);
        state.insert(
            a,
            Account {
                balance: Amount(100),
                nonce: 4,
            },
        );
        state.totals.burned_fees = Amount(9);
        let before = state.clone();

        let mut ov = Overlay::new(&state);
        ov.set(
            a,
            Account {
                balance: Amount(40),
                nonce: 5,
            },
        );
        ov.set(
            b,
            Account {
                balance: Amount(50),
                nonce: 0,
            },
        );
        ov.totals.burned_fees = Amount(19);
        let (diff, undo) = ov.finish();
        assert_eq!(diff.accounts.len(), 2);
        assert!(diff.accounts.windows(2).all(|w| w[0].0 < w[1].0));

        state.apply_diff(&diff);
        assert_eq!(state.account(&b).balance, Amount(50));
        assert_eq!(state.totals.burned_fees, Amount(19));
        assert_ne!(state, before);

        state.apply_undo(&undo);
        assert_eq!(state, before);
        // The account created by the block is gone, not left as a zero entry.
        assert_eq!(state.get(&b), None);
    }

    #[test]
    fn layered_view_at_a_fork_point_matches_the_rolled_back_state() {
        let mut state = State::default();
        let a = Address([1; 20]);
        state.insert(
            a,
            Account {
                balance: Amount(10),
                nonce: 0,
            },
        );
        let at_fork = state.clone();
        let mut undos = Vec::new();
        for i in 1..=3u128 {
            let mut ov = Overlay::new(&state);
            ov.set(
                a,
                Account {
                    balance: Amount(10 + i),
                    nonce: i as u64,
                },
            );
            ov.set(
                Address([i as u8 + 1; 20]),
                Account {
                    balance: Amount(i),
                    nonce: 0,
                },
            );
            ov.totals.burned_fees = Amount(i);
            let (diff, undo) = ov.finish();
            state.apply_diff(&diff);
            undos.push(undo);
        }
        undos.reverse();
        let view = LayeredState::rolled_back(&state, &undos);
        for addr in [a, Address([2; 20]), Address([3; 20]), Address([4; 20])] {
            assert_eq!(view.get(&addr), at_fork.get(&addr), "{addr}");
        }
        assert_eq!(view.totals(), at_fork.totals);
    }
}
