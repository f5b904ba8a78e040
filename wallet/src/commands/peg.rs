//! `wallet deposit`, `wallet withdraw` and `wallet status`: move coins across the peg and
//! follow them: included -> confirmations k/N -> awaiting the federation -> payout
//! confirmations k/N -> paid (the payout is final on the destination chain).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chain::block::PegEvent;
use chain::execution::check_source;
use chain::peg::{Direction, PegConfig, PegRole};
use chain::rpc::types::{PegInfo, TxStatus};
use chain::tx::TxKind;
use chain::types::{Address, Amount, BlockNumber, Hash};
use serde::Serialize;

use crate::amount::{coins, parse_amount};
use crate::cli::PegArgs;
use crate::error::{Result, WalletError};
use crate::node::Node;
use crate::send::{self, Request};
use crate::settings::ChainSel;
use crate::{Ctx, Report};

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PegState {
    /// Submitted, not yet in a block.
    Pending,
    /// In a block on the source chain, not yet deep enough.
    Confirming,
    /// Deep enough: the federation signs and submits the payout.
    AwaitingFederation,
    /// The payout is in a destination block, not yet as deep as the peg's rules ask: a
    /// reorg could still take it away (the members then pay it again).
    PayoutConfirming,
    /// Paid out on the destination chain, at its confirmation depth: final.
    Paid,
}

/// The source-chain side of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceView {
    /// `main` for a deposit, `side` for a withdrawal.
    pub chain: ChainSel,
    /// The block of the Lock or Burn.
    pub block_number: Option<BlockNumber>,
    /// Confirmations so far (the block itself counts).
    pub confirmations: u64,
    /// Confirmations the federation waits for.
    pub required: u64,
}

/// The destination-chain side of a transfer, once paid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayoutView {
    /// `side` for a deposit, `main` for a withdrawal.
    pub chain: ChainSel,
    /// The block of the Mint or Release.
    pub block_number: BlockNumber,
    /// The payout transaction.
    pub tx_hash: Option<Hash>,
    /// Base units paid to the recipient.
    pub amount: Option<Amount>,
    /// Seconds from the source block's inclusion to the payout block (by block times).
    pub seconds: Option<f64>,
    /// Confirmations of the payout block so far (the block itself counts).
    pub confirmations: u64,
    /// Confirmations at which the payout is final (the destination chain's).
    pub required: u64,
}

/// `deposit`, `withdraw` and `status`: one shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferStatus {
    /// The transfer id: the Lock or Burn transaction hash.
    pub id: Hash,
    /// `deposit` (main -> side) or `withdrawal` (side -> main).
    pub direction: &'static str,
    /// Where it stands.
    pub state: PegState,
    /// Who receives on the destination chain.
    pub recipient: Option<Address>,
    /// Base units taken on the source chain.
    pub amount: Option<Amount>,
    /// Base units the recipient gets (a withdrawal pays the amount minus the peg-out fee).
    pub payout_amount: Option<Amount>,
    /// The source chain's view.
    pub source: SourceView,
    /// The payout, once made.
    pub payout: Option<PayoutView>,
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::MainToSide => "deposit",
        Direction::SideToMain => "withdrawal",
    }
}

fn chains(d: Direction) -> (ChainSel, ChainSel) {
    match d {
        Direction::MainToSide => (ChainSel::Main, ChainSel::Side),
        Direction::SideToMain => (ChainSel::Side, ChainSel::Main),
    }
}

fn required(info: &PegInfo, d: Direction) -> u64 {
    match d {
        Direction::MainToSide => info.params.main_confirmations,
        Direction::SideToMain => info.params.side_confirmations,
    }
}

/// The depth a payout of `d` needs on its destination chain to be final.
fn payout_required(info: &PegInfo, d: Direction) -> u64 {
    match d {
        Direction::MainToSide => info.params.side_confirmations,
        Direction::SideToMain => info.params.main_confirmations,
    }
}

/// Where a transfer stands, from what the two chains show.
fn state_of(
    included: bool,
    confirmations: u64,
    need: u64,
    payout: Option<&PayoutView>,
) -> PegState {
    match payout {
        Some(p) if p.confirmations >= p.required => PegState::Paid,
        Some(_) => PegState::PayoutConfirming,
        None if !included => PegState::Pending,
        None if confirmations < need => PegState::Confirming,
        None => PegState::AwaitingFederation,
    }
}

/// Refuses what the chain would refuse, before anything is signed.
fn precheck(info: &PegInfo, d: Direction, amount: Amount) -> Result<()> {
    let role = match d {
        Direction::MainToSide => PegRole::Main,
        Direction::SideToMain => PegRole::Side,
    };
    let cfg = PegConfig {
        role,
        params: info.params.clone(),
        domain: info.domain,
    };
    let mut totals = info.totals;
    totals.day_deposits = info.today_deposits;
    totals.day_withdrawals = info.today_withdrawals;
    check_source(&cfg, &totals, d, amount).map_err(|e| WalletError::PegRefused {
        reason: e.code().to_string(),
        message: e.to_string(),
    })
}

/// One look at both chains.
async fn observe(
    src: &Node,
    dst: &Node,
    d: Direction,
    id: Hash,
    info: &PegInfo,
) -> Result<TransferStatus> {
    let (src_chain, dst_chain) = chains(d);
    let s = src.peg_transfer(id).await?;
    let p = dst.peg_transfer(id).await?;
    let (recipient, amount) = match s.source.as_ref().map(|x| &x.event) {
        Some(PegEvent::Deposit {
            amount, recipient, ..
        })
        | Some(PegEvent::Withdrawal {
            amount, recipient, ..
        }) => (Some(*recipient), Some(*amount)),
        _ => (None, None),
    };
    let payout_amount = amount.map(|a| match d {
        Direction::MainToSide => a,
        Direction::SideToMain => Amount(a.0.saturating_sub(info.params.peg_out_fee.0)),
    });
    let confirmations = s.source.as_ref().map_or(0, |x| x.confirmations);
    let need = required(info, d);
    let payout = match &p.payout {
        Some(po) => {
            let paid_amount = match &po.event {
                Some(PegEvent::Minted { amount, .. }) | Some(PegEvent::Released { amount, .. }) => {
                    Some(*amount)
                }
                _ => None,
            };
            let mut seconds = None;
            if let (Some(src_block), Some(dst_block)) = (
                s.source.as_ref().map(|x| x.block_number),
                dst.full_block(po.block_number).await.ok().flatten(),
            ) {
                if let Some(sb) = src.full_block(src_block).await.ok().flatten() {
                    seconds = Some(
                        dst_block
                            .summary
                            .timestamp_ms
                            .saturating_sub(sb.summary.timestamp_ms) as f64
                            / 1000.0,
                    );
                }
            }
            Some(PayoutView {
                chain: dst_chain,
                block_number: po.block_number,
                tx_hash: po.tx_hash,
                amount: paid_amount,
                seconds,
                confirmations: (p.head + 1).saturating_sub(po.block_number),
                required: payout_required(info, d),
            })
        }
        None => None,
    };
    let state = state_of(s.source.is_some(), confirmations, need, payout.as_ref());
    Ok(TransferStatus {
        id,
        direction: dir_name(d),
        state,
        recipient,
        amount,
        payout_amount,
        source: SourceView {
            chain: src_chain,
            block_number: s.source.as_ref().map(|x| x.block_number),
            confirmations,
            required: need,
        },
        payout,
    })
}

fn progress_line(s: &TransferStatus, threshold: u32, members: usize) -> String {
    match s.state {
        PegState::Pending => format!("{} {}: submitted, waiting for inclusion", s.direction, s.id),
        PegState::Confirming => format!(
            "{} {}: included -> confirmations {}/{}",
            s.direction, s.id, s.source.confirmations, s.source.required
        ),
        PegState::AwaitingFederation => format!(
            "{} {}: confirmations {}/{} -> signatures (needs {threshold} of {members} members)",
            s.direction, s.id, s.source.confirmations, s.source.required
        ),
        PegState::PayoutConfirming => match &s.payout {
            Some(p) => format!(
                "{} {}: paid in {} block {} -> confirmations {}/{}",
                s.direction, s.id, p.chain, p.block_number, p.confirmations, p.required
            ),
            None => format!("{} {}: payout confirming", s.direction, s.id),
        },
        PegState::Paid => format!("{} {}: paid", s.direction, s.id),
    }
}

/// Follows a transfer until paid (or the deadline), printing each new stage on stderr.
async fn follow(
    src: &Node,
    dst: &Node,
    d: Direction,
    id: Hash,
    info: &PegInfo,
    timeout: Duration,
) -> Result<TransferStatus> {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut err = std::io::stderr();
    let mut last = String::new();
    let poll = Duration::from_millis((src.info.block_time_ms / 2).clamp(100, 1000));
    loop {
        let s = match observe(src, dst, d, id, info).await {
            Ok(s) => s,
            // A node restarting while we follow gets until the deadline to come back.
            Err(WalletError::NodeDown { .. }) if start.elapsed() < timeout => {
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let line = progress_line(&s, info.params.threshold, info.params.members.len());
        if line != last {
            if tty {
                let _ = write!(err, "\r\x1b[2K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            last = line;
        }
        if s.state == PegState::Paid {
            if tty {
                let _ = writeln!(err);
            }
            return Ok(s);
        }
        if start.elapsed() >= timeout {
            if tty {
                let _ = writeln!(err);
            }
            return Err(WalletError::PegTimeout {
                id,
                secs: timeout.as_secs(),
                state: format!("{:?}", s.state),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

fn human(s: &TransferStatus) -> String {
    let mut out = format!("{} {}\nstate      {:?}", s.direction, s.id, s.state);
    if let (Some(a), Some(p)) = (s.amount, s.payout_amount) {
        out.push_str(&format!(
            "\namount     {} coins (recipient gets {} coins)",
            coins(a),
            coins(p)
        ));
    }
    if let Some(r) = s.recipient {
        out.push_str(&format!("\nrecipient  {r}"));
    }
    out.push_str(&format!(
        "\nsource     {} block {} ({}/{} confirmations)",
        s.source.chain,
        s.source.block_number.map_or("-".into(), |n| n.to_string()),
        s.source.confirmations,
        s.source.required
    ));
    if let Some(p) = &s.payout {
        out.push_str(&format!(
            "\npaid       {} block {} ({}/{} confirmations)",
            p.chain, p.block_number, p.confirmations, p.required
        ));
        if let Some(secs) = p.seconds {
            out.push_str(&format!(", {secs:.1} s after inclusion"));
        }
    }
    out
}

async fn send_peg(ctx: &Ctx, args: &PegArgs, d: Direction) -> Result<Report> {
    let amount = parse_amount(&args.amount, args.raw)?;
    ctx.keystore
        .find(&args.from)
        .map_err(|e| ctx.dir_error(&args.from, e))?;
    let (src_chain, dst_chain) = chains(d);
    let src = ctx.node(src_chain).await?;
    let dst = ctx.node(dst_chain).await?;
    let info = src.peg_info().await?;
    precheck(&info, d, amount)?;
    let key = ctx.unlock(&args.from)?;
    let recipient = match &args.to {
        Some(to) if to.starts_with("0x") || to.starts_with("0X") => to
            .parse()
            .map_err(|e| WalletError::BadInput(format!("--to: {e}")))?,
        Some(name) => ctx.resolve_address(name)?.0,
        None => key.address(),
    };
    let kind = match d {
        Direction::MainToSide => TxKind::Lock { amount, recipient },
        Direction::SideToMain => TxKind::Burn { amount, recipient },
    };
    let req = Request {
        kind,
        value: amount,
        fee: args.fee.clone(),
        nonce: None,
    };
    let sent = send::submit(&src, &key, &req).await?;
    let id = sent.hash;
    if args.no_wait {
        let s = observe(&src, &dst, d, id, &info).await?;
        return Report::new(
            &s,
            format!(
                "{} submitted; id {id}\nfollow it with `wallet status {id} --wait`",
                s.direction
            ),
        );
    }
    let t = send::wait_included(&src, id, Duration::from_secs(args.timeout)).await?;
    if t.status == TxStatus::Failed {
        let reason = t
            .receipt
            .and_then(|r| r.failure)
            .and_then(|f| serde_json::to_value(f).ok())
            .and_then(|v| {
                v.get("code")
                    .or(v.get("reason"))
                    .and_then(|r| r.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into());
        return Err(WalletError::TxFailed {
            chain: src_chain,
            hash: id,
            block: t.block_number.unwrap_or_default(),
            reason,
        });
    }
    let s = follow(&src, &dst, d, id, &info, Duration::from_secs(args.timeout)).await?;
    Report::new(&s, human(&s))
}

/// Runs `deposit`.
pub async fn deposit(ctx: &Ctx, args: &PegArgs) -> Result<Report> {
    send_peg(ctx, args, Direction::MainToSide).await
}

/// Runs `withdraw`.
pub async fn withdraw(ctx: &Ctx, args: &PegArgs) -> Result<Report> {
    send_peg(ctx, args, Direction::SideToMain).await
}

/// Runs `status`: finds which chain the id started on, then reports (or follows) it.
pub async fn status(ctx: &Ctx, id: &str, wait: bool, timeout: u64) -> Result<Report> {
    let id: Hash = id
        .parse()
        .map_err(|e| WalletError::BadInput(format!("transfer id: {e}")))?;
    let main = ctx.node(ChainSel::Main).await?;
    let side = ctx.node(ChainSel::Side).await?;
    let on_main = main.peg_transfer(id).await?;
    let on_side = side.peg_transfer(id).await?;
    let d = match (
        on_main.source.as_ref().map(|s| &s.event),
        on_side.source.as_ref().map(|s| &s.event),
    ) {
        (Some(PegEvent::Deposit { .. }), _) => Direction::MainToSide,
        (_, Some(PegEvent::Withdrawal { .. })) => Direction::SideToMain,
        _ => {
            // Maybe still in a mempool.
            if main.transaction(id).await?.is_some() {
                Direction::MainToSide
            } else if side.transaction(id).await?.is_some() {
                Direction::SideToMain
            } else {
                return Err(WalletError::TxNotFound {
                    hash: id,
                    chains: "mainchain or sidechain".into(),
                });
            }
        }
    };
    let (src, dst) = match d {
        Direction::MainToSide => (&main, &side),
        Direction::SideToMain => (&side, &main),
    };
    let info = src.peg_info().await?;
    let s = if wait {
        follow(src, dst, d, id, &info, Duration::from_secs(timeout)).await?
    } else {
        observe(src, dst, d, id, &info).await?
    };
    Report::new(&s, human(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payout(confirmations: u64) -> PayoutView {
        PayoutView {
            chain: ChainSel::Side,
            block_number: 9,
            tx_hash: None,
            amount: None,
            seconds: None,
            confirmations,
            required: 2,
        }
    }

    #[test]
    fn a_transfer_is_paid_only_once_its_payout_is_final() {
        assert_eq!(state_of(false, 0, 3, None), PegState::Pending);
        assert_eq!(state_of(true, 2, 3, None), PegState::Confirming);
        assert_eq!(state_of(true, 3, 3, None), PegState::AwaitingFederation);
        assert_eq!(
            state_of(true, 5, 3, Some(&payout(1))),
            PegState::PayoutConfirming,
            "a payout 1 block deep of 2 can still be reorged away"
        );
        assert_eq!(state_of(true, 5, 3, Some(&payout(2))), PegState::Paid);
    }
}
