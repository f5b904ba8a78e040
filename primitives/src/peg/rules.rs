//! The checks every peg operation passes, and what each records in the totals. Pure
//! functions of the facts the caller reads (today's totals, where an id was processed): the
//! mempool asks them before admitting, the executor before moving a coin.

use std::borrow::Cow;

use super::error::PegError;
use super::message::{escrow_address, withdrawal_address, Direction, PegMessage};
use super::params::{PegConfig, PegRole};
use crate::account::Totals;
use crate::crypto::Signature;
use crate::tx::TxKind;
use crate::types::{Address, Amount, BlockNumber, Hash};

/// The four peg operations: per direction, a source that takes coins in and a payout that
/// pays them out on the other chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PegOp {
    /// A deposit's source, on main: coins into the escrow.
    Lock,
    /// A withdrawal's source, on side: coins destroyed.
    Burn,
    /// A deposit's payout, on side: coins created.
    Mint,
    /// A withdrawal's payout, on main: coins out of the escrow.
    Release,
}

impl PegOp {
    /// The operation that takes coins in for `direction`.
    pub fn source(direction: Direction) -> Self {
        match direction {
            Direction::MainToSide => PegOp::Lock,
            Direction::SideToMain => PegOp::Burn,
        }
    }

    /// The operation that pays `direction` out.
    pub fn payout(direction: Direction) -> Self {
        match direction {
            Direction::MainToSide => PegOp::Mint,
            Direction::SideToMain => PegOp::Release,
        }
    }

    /// The peg operation a transaction performs, if any.
    pub fn of(kind: &TxKind) -> Option<Self> {
        match kind {
            TxKind::Transfer { .. } => None,
            TxKind::Lock { .. } => Some(PegOp::Lock),
            TxKind::Burn { .. } => Some(PegOp::Burn),
            TxKind::Mint { .. } => Some(PegOp::Mint),
            TxKind::Release { .. } => Some(PegOp::Release),
        }
    }

    /// The transfer direction this operation belongs to.
    pub fn direction(self) -> Direction {
        match self {
            PegOp::Lock | PegOp::Mint => Direction::MainToSide,
            PegOp::Burn | PegOp::Release => Direction::SideToMain,
        }
    }

    /// The end of the peg that runs it: the escrow's side for Lock and Release.
    pub fn role(self) -> PegRole {
        match self {
            PegOp::Lock | PegOp::Release => PegRole::Main,
            PegOp::Burn | PegOp::Mint => PegRole::Side,
        }
    }

    /// The lower-case name refusals use.
    pub fn name(self) -> &'static str {
        match self {
            PegOp::Lock => "lock",
            PegOp::Burn => "burn",
            PegOp::Mint => "mint",
            PegOp::Release => "release",
        }
    }
}

/// Which peg applies to `op` on a chain configured with `peg`, or why none does (no peg
/// section, or the other end's operation).
pub fn peg_for(peg: Option<&PegConfig>, op: PegOp) -> Result<&PegConfig, PegError> {
    let peg = peg.ok_or(PegError::NotConfigured)?;
    let role = op.role();
    if peg.role != role {
        // Names the chain the operation belongs to; receipts carry this text, and their
        // root is in block headers, so it stays as it is.
        let chain = match role {
            PegRole::Main => "mainchain",
            PegRole::Side => "sidechain",
        };
        return Err(PegError::WrongChain(op.name(), chain));
    }
    Ok(peg)
}

/// Every peg rule a transaction must pass, given today's `totals` and where its payout id
/// What `kind` does on a chain with `peg`: a value transfer to the escrow on the mainchain is a
/// Lock for its sender, one to the withdrawal address on the sidechain a Burn to its sender,
/// so a standard wallet pegs with a plain send; anything else is what it says.
pub fn resolve<'a>(peg: Option<&PegConfig>, kind: &'a TxKind, sender: Address) -> Cow<'a, TxKind> {
    let (TxKind::Transfer { to, amount }, Some(peg)) = (kind, peg) else {
        return Cow::Borrowed(kind);
    };
    let (amount, recipient) = (*amount, sender);
    match peg.role {
        PegRole::Main if *to == escrow_address() => Cow::Owned(TxKind::Lock { amount, recipient }),
        PegRole::Side if *to == withdrawal_address() => {
            Cow::Owned(TxKind::Burn { amount, recipient })
        }
        _ => Cow::Borrowed(kind),
    }
}

/// was `processed`: limits before any coin moves, attestations before a payout. A Transfer
/// passes.
pub fn check_tx(
    peg: Option<&PegConfig>,
    kind: &TxKind,
    totals: &Totals,
    processed: Option<BlockNumber>,
) -> Result<(), PegError> {
    let Some(op) = PegOp::of(kind) else {
        return Ok(());
    };
    let peg = peg_for(peg, op)?;
    match kind {
        TxKind::Transfer { .. } => Ok(()),
        TxKind::Lock { amount, .. } | TxKind::Burn { amount, .. } => {
            check_source(peg, totals, op.direction(), *amount)
        }
        TxKind::Mint {
            id,
            recipient,
            amount,
            signatures,
        }
        | TxKind::Release {
            id,
            recipient,
            amount,
            signatures,
        } => check_payout(
            peg,
            op.direction(),
            *id,
            *recipient,
            *amount,
            signatures,
            processed,
        ),
    }
}

/// The limits a Lock (deposit) or Burn (withdrawal) must respect, given today's usage.
pub fn check_source(
    peg: &PegConfig,
    totals: &Totals,
    direction: Direction,
    amount: Amount,
) -> Result<(), PegError> {
    peg.check_amount(amount)?;
    let (used, limit) = match direction {
        Direction::MainToSide => (totals.day_deposits, peg.params.terms.daily_limit_deposits),
        Direction::SideToMain => (
            totals.day_withdrawals,
            peg.params.terms.daily_limit_withdrawals,
        ),
    };
    if used.checked_add(amount).is_none_or(|t| t > limit) {
        return Err(PegError::DailyLimit {
            used,
            amount,
            limit,
        });
    }
    Ok(())
}

/// Everything a Mint or Release must prove: limits, an unused id, and M distinct current
/// members' signatures over exactly this payout.
pub fn check_payout(
    peg: &PegConfig,
    direction: Direction,
    id: Hash,
    recipient: Address,
    amount: Amount,
    signatures: &[Signature],
    processed: Option<BlockNumber>,
) -> Result<(), PegError> {
    if id.is_zero() {
        return Err(PegError::ZeroId);
    }
    let gross = amount
        .checked_add(peg.payout_fee(direction))
        .unwrap_or(Amount(u128::MAX));
    peg.check_amount(gross)?;
    if let Some(block) = processed {
        return Err(PegError::IdUsed { id, block });
    }
    let message = PegMessage {
        domain: peg.domain,
        direction,
        id,
        recipient,
        amount,
    };
    peg.verify_attestation(&message, signatures)
}

/// The totals after a Lock or Burn of `amount`: coins ever taken in and today's usage, on
/// the counters of `direction`. `None` on overflow.
pub fn record_source(totals: &Totals, direction: Direction, amount: Amount) -> Option<Totals> {
    let mut t = *totals;
    match direction {
        Direction::MainToSide => {
            t.locked = t.locked.checked_add(amount)?;
            t.day_deposits = t.day_deposits.checked_add(amount)?;
        }
        Direction::SideToMain => {
            t.burned_peg = t.burned_peg.checked_add(amount)?;
            t.day_withdrawals = t.day_withdrawals.checked_add(amount)?;
        }
    }
    Some(t)
}

/// The totals after a payout of `amount` that kept `fee`: minted on side, released and fees
/// on main. `None` on overflow.
pub fn record_payout(
    totals: &Totals,
    direction: Direction,
    amount: Amount,
    fee: Amount,
) -> Option<Totals> {
    let mut t = *totals;
    match direction {
        Direction::MainToSide => t.minted = t.minted.checked_add(amount)?,
        Direction::SideToMain => {
            t.released = t.released.checked_add(amount)?;
            t.peg_fees = t.peg_fees.checked_add(fee)?;
        }
    }
    Some(t)
}

/// The UTC day of a block timestamp.
pub fn day_of(timestamp_ms: u64) -> u64 {
    timestamp_ms / 86_400_000
}

/// Starts a new UTC day's limit counters when the block is on a later day.
pub fn roll_day(totals: &mut Totals, timestamp_ms: u64) {
    let day = day_of(timestamp_ms);
    if totals.day != day {
        totals.day = day;
        totals.day_deposits = Amount::ZERO;
        totals.day_withdrawals = Amount::ZERO;
    }
}

/// The day counters as of a block at `timestamp_ms`.
pub fn totals_on(totals: Totals, timestamp_ms: u64) -> Totals {
    let mut t = totals;
    roll_day(&mut t, timestamp_ms);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::peg::params::tests::config;

    const OPS: [PegOp; 4] = [PegOp::Lock, PegOp::Burn, PegOp::Mint, PegOp::Release];

    #[test]
    fn each_operation_runs_on_one_end_only() {
        let keys = [SecretKey::random()];
        let side = config(&keys, 1);
        let main = PegConfig {
            role: PegRole::Main,
            ..side.clone()
        };
        for op in OPS {
            assert_eq!(peg_for(None, op).unwrap_err(), PegError::NotConfigured);
            let (own, other) = match op.role() {
                PegRole::Main => (&main, &side),
                PegRole::Side => (&side, &main),
            };
            assert_eq!(peg_for(Some(own), op).map(|p| p.role), Ok(op.role()));
            let e = peg_for(Some(other), op).unwrap_err();
            assert_eq!(e.code(), "peg_wrong_chain");
            assert!(e.to_string().starts_with(op.name()), "{e}");
        }
        for d in [Direction::MainToSide, Direction::SideToMain] {
            assert_eq!(PegOp::source(d).direction(), d);
            assert_eq!(PegOp::payout(d).direction(), d);
            // The two ends of one direction run on different chains.
            assert_ne!(PegOp::source(d).role(), PegOp::payout(d).role());
        }
    }

    #[test]
    fn a_source_counts_against_its_own_direction_only() {
        let keys = [SecretKey::random()];
        let peg = config(&keys, 1);
        let today = Totals {
            day_deposits: Amount(4950),
            ..Default::default()
        };
        let lock = TxKind::Lock {
            amount: Amount(100),
            recipient: Address([1; 20]),
        };
        let burn = TxKind::Burn {
            amount: Amount(100),
            recipient: Address([1; 20]),
        };
        let main = PegConfig {
            role: PegRole::Main,
            ..peg.clone()
        };
        assert_eq!(
            check_tx(Some(&main), &lock, &today, None).map_err(|e| e.code()),
            Err("peg_daily_limit")
        );
        assert_eq!(check_tx(Some(&peg), &burn, &today, None), Ok(()));
        let t = record_source(&today, Direction::SideToMain, Amount(100)).unwrap();
        assert_eq!(
            (t.burned_peg, t.day_withdrawals),
            (Amount(100), Amount(100))
        );
        assert_eq!((t.locked, t.day_deposits), (Amount::ZERO, Amount(4950)));
        let t = record_source(&today, Direction::MainToSide, Amount(50)).unwrap();
        assert_eq!((t.locked, t.day_deposits), (Amount(50), Amount(5000)));
        assert_eq!(
            record_source(&t, Direction::MainToSide, Amount(u128::MAX)),
            None
        );
    }

    #[test]
    fn a_payout_records_what_it_paid_and_kept() {
        let t = record_payout(
            &Totals::default(),
            Direction::SideToMain,
            Amount(90),
            Amount(10),
        );
        let t = t.unwrap();
        assert_eq!(
            (t.released, t.peg_fees, t.minted),
            (Amount(90), Amount(10), Amount::ZERO)
        );
        let t = record_payout(&t, Direction::MainToSide, Amount(7), Amount::ZERO).unwrap();
        assert_eq!(
            (t.released, t.peg_fees, t.minted),
            (Amount(90), Amount(10), Amount(7))
        );
    }
}
