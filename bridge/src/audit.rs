//! `bridge audit`: checks invariants 1, 2 and 3 of DESIGN.md against both chains, from any
//! host that can reach a mainchain and a sidechain node.
//!
//! 1. Minted <= locked and released + peg fees <= burned; every Minted/Released payout has a
//!    Deposit/Withdrawal on the source with the same id, recipient and amount, at depth.
//! 2. escrow == side supply + side burned fees + (burned - released - peg fees)
//!    + deposits still in flight (exactly the at-rest equation when none are).
//! 3. No id is paid twice.
//!
//! And on each chain, the accounts' balances add up to the supply its totals imply: the totals
//! are what the other checks read, so an execution that credited coins it did not count would
//! otherwise pass them all.

use std::collections::HashMap;

use primitives::block::PegEvent;
use primitives::types::{Address, Amount, BlockNumber, Hash};
use rpc_api::types::PegInfo;
use serde::{Deserialize, Serialize};

use crate::error::{BridgeError, Result};
use crate::nodes::{NodeClient, SourceChain};

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// A mainchain node.
    pub main_rpc: String,
    /// A sidechain node.
    pub side_rpc: String,
    /// First block scanned on both chains (1 = everything).
    pub from: BlockNumber,
    /// Last block scanned on both chains (default: each node's head at the start).
    pub to: Option<BlockNumber>,
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Which invariant and what.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// The values involved.
    pub detail: String,
}

/// The audit's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Every check passed.
    pub ok: bool,
    /// Each check.
    pub checks: Vec<Check>,
    /// Main blocks scanned (inclusive range).
    pub main_blocks: (BlockNumber, BlockNumber),
    /// Side blocks scanned.
    pub side_blocks: (BlockNumber, BlockNumber),
    /// Deposits found on main.
    pub deposits: usize,
    /// Withdrawals found on side.
    pub withdrawals: usize,
    /// Mints found on side.
    pub mints: usize,
    /// Releases found on main.
    pub releases: usize,
    /// Deposits without a mint yet.
    pub deposits_in_flight: usize,
    /// Withdrawals without a release yet.
    pub withdrawals_in_flight: usize,
}

impl AuditReport {
    /// A readable report, one line per check.
    pub fn render(&self) -> String {
        let mut out = format!(
            "audit {}: main blocks {}..={}, side blocks {}..={}; {} deposits ({} in flight), {} mints, {} withdrawals ({} in flight), {} releases\n",
            if self.ok { "PASSED" } else { "FAILED" },
            self.main_blocks.0,
            self.main_blocks.1,
            self.side_blocks.0,
            self.side_blocks.1,
            self.deposits,
            self.deposits_in_flight,
            self.mints,
            self.withdrawals,
            self.withdrawals_in_flight,
            self.releases
        );
        for c in &self.checks {
            out.push_str(&format!(
                "{} {}: {}\n",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    amount: Amount,
    recipient: Address,
    height: BlockNumber,
}

#[derive(Debug, Clone, Copy)]
struct Payout {
    id: Hash,
    amount: Amount,
    recipient: Address,
    fee: Amount,
    height: BlockNumber,
}

#[derive(Default)]
struct Scan {
    sources: HashMap<Hash, Source>,
    payouts: Vec<Payout>,
}

async fn scan(node: &NodeClient, from: BlockNumber, to: BlockNumber) -> Result<Scan> {
    let mut s = Scan::default();
    for n in from..=to {
        let Some(b) = node.block(n).await? else {
            return Err(BridgeError::Rpc {
                chain: node.name,
                reason: format!("block {n} is not canonical on the node (reorg during the audit?)"),
            });
        };
        for r in b.receipts.iter().filter(|r| r.failure.is_none()) {
            match &r.peg_event {
                Some(PegEvent::Deposit {
                    id,
                    amount,
                    recipient,
                })
                | Some(PegEvent::Withdrawal {
                    id,
                    amount,
                    recipient,
                }) => {
                    s.sources.insert(
                        *id,
                        Source {
                            amount: *amount,
                            recipient: *recipient,
                            height: n,
                        },
                    );
                }
                Some(PegEvent::Minted {
                    id,
                    amount,
                    recipient,
                }) => s.payouts.push(Payout {
                    id: *id,
                    amount: *amount,
                    recipient: *recipient,
                    fee: Amount::ZERO,
                    height: n,
                }),
                Some(PegEvent::Released {
                    id,
                    amount,
                    recipient,
                    fee,
                }) => s.payouts.push(Payout {
                    id: *id,
                    amount: *amount,
                    recipient: *recipient,
                    fee: *fee,
                    height: n,
                }),
                None => {}
            }
        }
    }
    Ok(s)
}

fn check(name: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.to_string(),
        ok,
        detail,
    }
}

/// Whether a chain's balances add up to its supply (skipped, and said so, for nodes that do
/// not count them).
fn balances_check(role: &str, balances: Option<Amount>, supply: Amount) -> Check {
    let name = format!("{role} balances == supply");
    match balances {
        Some(b) => check(
            &name,
            b == supply,
            format!("accounts hold {b}, totals imply {supply}"),
        ),
        None => check(
            &name,
            true,
            "not counted by this node (older version)".into(),
        ),
    }
}

/// Matches payouts against their sources; returns problems and the ids in flight.
fn match_payouts(
    what: &str,
    sources: &HashMap<Hash, Source>,
    payouts: &[Payout],
    source_head: BlockNumber,
    confirmations: u64,
    with_fee: bool,
) -> (Vec<String>, Vec<Hash>, Vec<String>) {
    let mut problems = Vec::new();
    let mut count: HashMap<Hash, u32> = HashMap::new();
    for p in payouts {
        *count.entry(p.id).or_default() += 1;
        let Some(s) = sources.get(&p.id) else {
            problems.push(format!(
                "{what} payout of id {} at block {} has no source event",
                p.id, p.height
            ));
            continue;
        };
        let paid_gross = p.amount.checked_add(p.fee);
        let amount_ok = if with_fee {
            paid_gross == Some(s.amount)
        } else {
            p.amount == s.amount
        };
        if !amount_ok || p.recipient != s.recipient {
            problems.push(format!(
                "{what} payout of id {} pays {} (+ fee {}) to {}, the source moved {} for {}",
                p.id, p.amount, p.fee, p.recipient, s.amount, s.recipient
            ));
        }
        if source_head + 1 < s.height + confirmations {
            problems.push(format!(
                "{what} id {} was paid but its source at block {} is not {} deep (source head {})",
                p.id, s.height, confirmations, source_head
            ));
        }
    }
    let twice = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| format!("{what} id {id} paid {n} times"))
        .collect();
    let in_flight = sources
        .keys()
        .filter(|id| !count.contains_key(*id))
        .copied()
        .collect();
    (problems, in_flight, twice)
}

fn sub(a: Amount, b: Amount) -> Option<Amount> {
    a.checked_sub(b)
}

/// Runs the audit.
pub async fn audit(opts: &AuditOptions) -> Result<AuditReport> {
    let main = NodeClient::new("main", &opts.main_rpc)?;
    let side = NodeClient::new("side", &opts.side_rpc)?;
    let mi: PegInfo = main.peg_info().await?;
    let si: PegInfo = side.peg_info().await?;
    let mut checks = Vec::new();
    checks.push(check(
        "peg domain",
        mi.domain == si.domain && mi.role == "main" && si.role == "side",
        format!(
            "main {} ({}), side {} ({})",
            mi.domain, mi.role, si.domain, si.role
        ),
    ));
    let from = opts.from.max(1);
    let main_to = opts.to.map_or(mi.head, |t| t.min(mi.head));
    let side_to = opts.to.map_or(si.head, |t| t.min(si.head));
    let ms = scan(&main, from, main_to).await?;
    let ss = scan(&side, from, side_to).await?;
    let (mt, st) = (&mi.totals, &si.totals);

    // Invariant 1.
    checks.push(check(
        "1 minted <= locked",
        st.minted <= mt.locked,
        format!("side minted {}, main locked {}", st.minted, mt.locked),
    ));
    let out = mt.released.checked_add(mt.peg_fees);
    checks.push(check(
        "1 released + peg fees <= burned",
        out.is_some_and(|o| o <= st.burned_peg),
        format!(
            "main released {} + peg fees {}, side burned {}",
            mt.released, mt.peg_fees, st.burned_peg
        ),
    ));
    let (mint_problems, deposits_in_flight, mint_twice) = match_payouts(
        "deposit",
        &ms.sources,
        &ss.payouts,
        mi.head,
        mi.params.terms.main_confirmations,
        false,
    );
    let (release_problems, withdrawals_in_flight, release_twice) = match_payouts(
        "withdrawal",
        &ss.sources,
        &ms.payouts,
        si.head,
        si.params.terms.side_confirmations,
        true,
    );
    let partial = from > 1 || opts.to.is_some();
    let mut problems: Vec<String> = mint_problems.into_iter().chain(release_problems).collect();
    if partial {
        // A payout in range may have its source outside it.
        problems.retain(|p| !p.contains("has no source event"));
    }
    checks.push(check(
        "1 every payout has its source event",
        problems.is_empty(),
        if problems.is_empty() {
            format!(
                "{} mints and {} releases matched",
                ss.payouts.len(),
                ms.payouts.len()
            )
        } else {
            problems.join("; ")
        },
    ));

    // Invariant 2.
    let in_flight_amount = deposits_in_flight
        .iter()
        .filter_map(|id| ms.sources.get(id))
        .try_fold(Amount::ZERO, |a, s| a.checked_add(s.amount));
    let unreleased = sub(st.burned_peg, mt.released).and_then(|x| sub(x, mt.peg_fees));
    let expected = si
        .supply
        .checked_add(st.burned_fees)
        .zip(unreleased)
        .and_then(|(a, b)| a.checked_add(b));
    let escrow = mi.escrow_balance.unwrap_or_default();
    if partial {
        checks.push(check(
            "2 escrow covers the side",
            expected.is_some_and(|e| e <= escrow),
            format!(
                "escrow {escrow}, side supply {} + burned fees {} + unreleased {} (a bounded scan cannot count deposits in flight)",
                si.supply,
                st.burned_fees,
                unreleased.map_or("overflow".into(), |u| u.to_string())
            ),
        ));
    } else {
        let with_flight = expected
            .zip(in_flight_amount)
            .and_then(|(e, f)| e.checked_add(f));
        checks.push(check(
            "2 escrow == supply + burned fees + unreleased + in flight",
            with_flight == Some(escrow),
            format!(
                "escrow {escrow}; side supply {} + burned fees {} + (burned {} - released {} - peg fees {}) + deposits in flight {} = {}{}",
                si.supply,
                st.burned_fees,
                st.burned_peg,
                mt.released,
                mt.peg_fees,
                in_flight_amount.map_or("overflow".into(), |f| f.to_string()),
                with_flight.map_or("overflow".into(), |w| w.to_string()),
                if deposits_in_flight.is_empty() { " (at rest)" } else { "" }
            ),
        ));
    }

    checks.extend([
        balances_check(&mi.role, mi.balances, mi.supply),
        balances_check(&si.role, si.balances, si.supply),
    ]);

    // Invariant 3.
    let twice: Vec<String> = mint_twice.into_iter().chain(release_twice).collect();
    checks.push(check(
        "3 no id paid twice",
        twice.is_empty(),
        if twice.is_empty() {
            format!(
                "{} payouts, all distinct ids",
                ss.payouts.len() + ms.payouts.len()
            )
        } else {
            twice.join("; ")
        },
    ));
    Ok(AuditReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
        main_blocks: (from, main_to),
        side_blocks: (from, side_to),
        deposits: ms.sources.len(),
        withdrawals: ss.sources.len(),
        mints: ss.payouts.len(),
        releases: ms.payouts.len(),
        deposits_in_flight: deposits_in_flight.len(),
        withdrawals_in_flight: withdrawals_in_flight.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_that_do_not_add_up_to_the_supply_fail_the_audit() {
        assert!(balances_check("side", Some(Amount(10)), Amount(10)).ok);
        let c = balances_check("side", Some(Amount(11)), Amount(10));
        assert!(!c.ok, "a credit the totals never counted: {}", c.detail);
        assert!(balances_check("side", None, Amount(10)).ok, "older nodes");
    }

    fn src(amount: u128, height: u64) -> Source {
        Source {
            amount: Amount(amount),
            recipient: Address([1; 20]),
            height,
        }
    }

    fn pay(id: u8, amount: u128, fee: u128) -> Payout {
        Payout {
            id: Hash([id; 32]),
            amount: Amount(amount),
            recipient: Address([1; 20]),
            fee: Amount(fee),
            height: 50,
        }
    }

    #[test]
    fn payouts_without_source_wrong_amounts_and_doubles_are_reported() {
        let mut sources = HashMap::new();
        sources.insert(Hash([1; 32]), src(100, 10));
        sources.insert(Hash([2; 32]), src(100, 10));
        sources.insert(Hash([3; 32]), src(100, 10));
        // id 1 fine, id 2 paid twice, id 3 in flight, id 4 has no source.
        let payouts = [pay(1, 90, 10), pay(2, 90, 10), pay(2, 90, 10), pay(4, 5, 0)];
        let (problems, in_flight, twice) =
            match_payouts("withdrawal", &sources, &payouts, 20, 2, true);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("no source"));
        assert_eq!(in_flight, vec![Hash([3; 32])]);
        assert_eq!(twice.len(), 1);
        // A wrong amount, and a payout of a source not yet at depth.
        let (problems, _, _) = match_payouts("deposit", &sources, &[pay(1, 99, 0)], 20, 2, false);
        assert_eq!(problems.len(), 1);
        let (problems, _, _) = match_payouts("deposit", &sources, &[pay(1, 100, 0)], 10, 3, false);
        assert!(problems[0].contains("not 3 deep"), "{problems:?}");
    }
}
