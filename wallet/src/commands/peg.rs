//! `wallet deposit`, `wallet withdraw` and `wallet status`: move coins across the peg and
//! follow them: included -> confirmations k/N -> waiting for finality -> awaiting the
//! federation -> payout confirmations and finality -> paid (the payout's block is final on the
//! destination chain).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use primitives::block::PegEvent;
use primitives::peg::check_source;
use primitives::peg::{Direction, PegConfig, PegOp};
use primitives::tx::TxKind;
use primitives::types::{Address, Amount, BlockNumber, Hash};
use rpc_api::types::{PegInfo, TxStatus};
use serde::Serialize;

use crate::amount::{coins, parse_amount};
use crate::chains::ChainSel;
use crate::cli::PegArgs;
use crate::error::{Result, WalletError};
use crate::node::Node;
use crate::record::SentTx;
use crate::send::{self, Request};
use crate::{Ctx, Report};

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PegState {
    /// Not known to the source chain's node: in no block and not in its pool (it lost it, or
    /// never got it). `resend` says how to send it again.
    Unknown,
    /// Submitted, not yet in a block.
    Pending,
    /// In a block on the source chain, not yet deep enough.
    Confirming,
    /// Deep enough, but its block is not final yet: no member signs before it is.
    AwaitingFinality,
    /// Final and deep enough: the federation signs and submits the payout.
    AwaitingFederation,
    /// The payout is in a destination block that is not yet final (or not yet as deep as the
    /// peg's rules ask): a reorg could still take it away (the members then pay it again).
    PayoutConfirming,
    /// Paid out on the destination chain in a final block, at its confirmation depth.
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
    /// The Lock or Burn's block against the source chain's finality.
    #[serde(flatten)]
    pub finality: BlockFinality,
    /// Why the source chain's finality is not moving, when it is not (from its node's
    /// `tp_finalityStatus`: "2 of 4 authorities voting; needs 3").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finality_stalled: Option<String>,
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
    /// Confirmations the peg asks of the payout (the destination chain's).
    pub required: u64,
    /// The payout's block against the destination chain's finality.
    #[serde(flatten)]
    pub finality: BlockFinality,
}

/// A block against its chain's finality (in the JSON beside the block's other fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlockFinality {
    /// The chain's head.
    pub head: BlockNumber,
    /// The chain's last final block (`null` from a node older than finality).
    pub finalized: Option<BlockNumber>,
    /// Whether the block is final.
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl BlockFinality {
    /// Block `n` (if any) on a chain at `head` whose last final block is `finalized`; a node
    /// from before finality counts its blocks as final at depth, as it did then.
    fn of(n: Option<BlockNumber>, head: BlockNumber, finalized: Option<BlockNumber>) -> Self {
        Self {
            head,
            finalized,
            is_final: n.is_some_and(|n| finalized.is_none_or(|f| n <= f)),
        }
    }

    /// "waiting for finality: head 120, finalized 117".
    fn waiting(&self) -> String {
        match self.finalized {
            Some(f) => format!("waiting for finality: head {}, finalized {f}", self.head),
            None => "waiting for finality".to_string(),
        }
    }
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
    /// With `state` `unknown` and a Lock/Burn this wallet sent: the command that sends it
    /// again (`wallet resend ID`); else `null`.
    pub resend: Option<String>,
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
        Direction::MainToSide => info.params.terms.main_confirmations,
        Direction::SideToMain => info.params.terms.side_confirmations,
    }
}

/// The depth a payout of `d` needs on its destination chain to be final.
fn payout_required(info: &PegInfo, d: Direction) -> u64 {
    match d {
        Direction::MainToSide => info.params.terms.side_confirmations,
        Direction::SideToMain => info.params.terms.main_confirmations,
    }
}

/// Where a transfer stands, from what the two chains show.
fn state_of(included: bool, source: &SourceView, payout: Option<&PayoutView>) -> PegState {
    match payout {
        Some(p) if p.confirmations >= p.required && p.finality.is_final => PegState::Paid,
        Some(_) => PegState::PayoutConfirming,
        None if !included => PegState::Pending,
        None if source.confirmations < source.required => PegState::Confirming,
        None if !source.finality.is_final => PegState::AwaitingFinality,
        None => PegState::AwaitingFederation,
    }
}

/// What the source waits for, with the stall reason if there is one.
fn source_wait(s: &SourceView) -> String {
    let mut out = s.finality.waiting();
    if let Some(r) = &s.finality_stalled {
        out.push_str(&format!("; finality stalled: {r}"));
    }
    out
}

/// Refuses what the chain would refuse, before anything is signed.
fn precheck(info: &PegInfo, d: Direction, amount: Amount) -> Result<()> {
    let cfg = PegConfig {
        role: PegOp::source(d).role(),
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

/// The two ends of a transfer: the source chain's node, and the destination's, opened only
/// when needed (nothing can be paid before the source chain holds the Lock or Burn, and
/// `--async` never needs it).
struct Ends<'a> {
    ctx: &'a Ctx,
    d: Direction,
    src: Node,
    dst: Option<Node>,
}

impl<'a> Ends<'a> {
    fn new(ctx: &'a Ctx, d: Direction, src: Node) -> Self {
        Ends {
            ctx,
            d,
            src,
            dst: None,
        }
    }

    /// Opens the destination chain's node if it is not yet.
    async fn open_dst(&mut self) -> Result<()> {
        if self.dst.is_none() {
            self.dst = Some(self.ctx.node(chains(self.d).1).await?);
        }
        Ok(())
    }
}

/// Recipient, amount and the amount paid out of a Lock or Burn.
fn terms(
    kind: Option<&TxKind>,
    d: Direction,
    info: &PegInfo,
) -> (Option<Address>, Option<Amount>, Option<Amount>) {
    let (recipient, amount) = match kind {
        Some(TxKind::Lock { amount, recipient }) | Some(TxKind::Burn { amount, recipient }) => {
            (Some(*recipient), Some(*amount))
        }
        _ => (None, None),
    };
    (recipient, amount, amount.map(|a| payout_of(a, d, info)))
}

fn payout_of(a: Amount, d: Direction, info: &PegInfo) -> Amount {
    match d {
        Direction::MainToSide => a,
        Direction::SideToMain => Amount(a.0.saturating_sub(info.params.terms.peg_out_fee.0)),
    }
}

fn resend_command(id: Hash) -> String {
    format!("wallet resend {id}")
}

/// One look at the chains; `sent` is the wallet's record of the Lock or Burn, if it sent it.
async fn observe(
    ends: &mut Ends<'_>,
    id: Hash,
    info: &PegInfo,
    sent: Option<&SentTx>,
) -> Result<TransferStatus> {
    let d = ends.d;
    let (src_chain, dst_chain) = chains(d);
    let s = ends.src.peg_transfer(id).await?;
    let confirmations = s.source.as_ref().map_or(0, |x| x.confirmations);
    let need = required(info, d);
    let source_view = |s: &rpc_api::types::PegTransferView, block: BlockNumber| SourceView {
        chain: src_chain,
        block_number: s.source.as_ref().map(|x| x.block_number),
        confirmations,
        required: need,
        finality: BlockFinality::of(s.source.as_ref().map(|_| block), s.head, s.finalized),
        finality_stalled: None,
    };
    let (mut recipient, mut amount, mut payout_amount) =
        terms(sent.and_then(SentTx::tx_kind).as_ref(), d, info);
    let mut payout = None;
    let state = match &s.source {
        None => {
            if ends.src.transaction(id).await?.is_some() {
                PegState::Pending
            } else {
                PegState::Unknown
            }
        }
        Some(source) => {
            if let PegEvent::Deposit {
                amount: a,
                recipient: r,
                ..
            }
            | PegEvent::Withdrawal {
                amount: a,
                recipient: r,
                ..
            } = &source.event
            {
                (recipient, amount) = (Some(*r), Some(*a));
                payout_amount = Some(payout_of(*a, d, info));
            }
            ends.open_dst().await?;
            let Some(dst) = ends.dst.as_ref() else {
                return Err(WalletError::BadInput(format!(
                    "the {dst_chain} node is not open"
                )));
            };
            let p = dst.peg_transfer(id).await?;
            if let Some(po) = &p.payout {
                let paid_amount = match &po.event {
                    Some(PegEvent::Minted { amount, .. })
                    | Some(PegEvent::Released { amount, .. }) => Some(*amount),
                    _ => None,
                };
                let mut seconds = None;
                if let (Some(dst_block), Some(src_block)) = (
                    dst.full_block(po.block_number).await.ok().flatten(),
                    ends.src
                        .full_block(source.block_number)
                        .await
                        .ok()
                        .flatten(),
                ) {
                    seconds = Some(
                        dst_block
                            .summary
                            .timestamp_ms
                            .saturating_sub(src_block.summary.timestamp_ms)
                            as f64
                            / 1000.0,
                    );
                }
                payout = Some(PayoutView {
                    chain: dst_chain,
                    block_number: po.block_number,
                    tx_hash: po.tx_hash,
                    amount: paid_amount,
                    seconds,
                    confirmations: (p.head + 1).saturating_sub(po.block_number),
                    required: payout_required(info, d),
                    finality: BlockFinality::of(Some(po.block_number), p.head, p.finalized),
                });
            }
            state_of(true, &source_view(&s, source.block_number), payout.as_ref())
        }
    };
    let mut source = source_view(&s, s.source.as_ref().map_or(0, |x| x.block_number));
    if state == PegState::AwaitingFinality {
        // Only worth a call when it is what the transfer waits for.
        source.finality_stalled = ends
            .src
            .finality_status()
            .await
            .ok()
            .and_then(|f| f.stalled);
    }
    Ok(TransferStatus {
        id,
        direction: dir_name(d),
        state,
        recipient,
        amount,
        payout_amount,
        source,
        payout,
        resend: (state == PegState::Unknown && sent.is_some()).then(|| resend_command(id)),
    })
}

fn progress_line(s: &TransferStatus, threshold: u32, members: usize) -> String {
    match s.state {
        PegState::Unknown => format!(
            "{} {}: not known to the {} node",
            s.direction, s.id, s.source.chain
        ),
        PegState::Pending => format!("{} {}: submitted, waiting for inclusion", s.direction, s.id),
        PegState::Confirming => format!(
            "{} {}: included -> confirmations {}/{}",
            s.direction, s.id, s.source.confirmations, s.source.required
        ),
        PegState::AwaitingFinality => format!(
            "{} {}: confirmations {}/{} -> {}",
            s.direction,
            s.id,
            s.source.confirmations,
            s.source.required,
            source_wait(&s.source)
        ),
        PegState::AwaitingFederation => format!(
            "{} {}: confirmations {}/{} -> signatures (needs {threshold} of {members} members)",
            s.direction, s.id, s.source.confirmations, s.source.required
        ),
        PegState::PayoutConfirming => match &s.payout {
            Some(p) if p.confirmations < p.required => format!(
                "{} {}: paid in {} block {} -> confirmations {}/{}",
                s.direction, s.id, p.chain, p.block_number, p.confirmations, p.required
            ),
            Some(p) => format!(
                "{} {}: paid in {} block {} -> {}",
                s.direction,
                s.id,
                p.chain,
                p.block_number,
                p.finality.waiting()
            ),
            None => format!("{} {}: payout confirming", s.direction, s.id),
        },
        PegState::Paid => format!("{} {}: paid", s.direction, s.id),
    }
}

/// Follows a transfer until paid (or the deadline), printing each new stage on stderr. A
/// Lock or Burn no node knows is resent from `sent`, the wallet's record of it.
async fn follow(
    ends: &mut Ends<'_>,
    id: Hash,
    info: &PegInfo,
    timeout: Duration,
    sent: Option<&SentTx>,
) -> Result<TransferStatus> {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut err = std::io::stderr();
    let mut last = String::new();
    let poll = Duration::from_millis((ends.src.info.block_time_ms / 2).clamp(100, 1000));
    loop {
        let s = match observe(ends, id, info, sent).await {
            Ok(s) => s,
            // A node restarting while we follow gets until the deadline to come back.
            Err(WalletError::NodeDown { .. }) if start.elapsed() < timeout => {
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let line = progress_line(&s, info.params.terms.threshold, info.params.members.len());
        if line != last {
            if tty {
                let _ = write!(err, "\r\x1b[2K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            last = line;
        }
        if s.state == PegState::Unknown {
            if let Some(sent) = sent {
                // The same bytes again are the same transfer: it can never be paid twice.
                match send::resend(&ends.src, id, &sent.raw).await {
                    Ok(_) => {
                        let _ = writeln!(
                            err,
                            "{}{} {id}: resent the wallet's signed copy to the {} node",
                            if tty { "\r\x1b[2K" } else { "" },
                            s.direction,
                            ends.src.chain
                        );
                        last.clear();
                    }
                    Err(WalletError::NodeDown { .. }) => {}
                    // Refused, e.g. included meanwhile: the next look tells.
                    Err(e) if start.elapsed() < timeout => {
                        let _ = writeln!(err, "{} {id}: resending refused: {e}", s.direction);
                    }
                    Err(e) => return Err(e),
                }
            }
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

fn human(s: &TransferStatus, src_url: &str) -> String {
    let mut out = format!("{} {}", s.direction, s.id);
    if s.state == PegState::Unknown {
        out.push_str(&format!(
            "\nstate      unknown: not known to the {} node at {src_url} (in no block, not in its pool)",
            s.source.chain
        ));
    } else {
        out.push_str(&format!("\nstate      {:?}", s.state));
    }
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
    let fin = |f: &BlockFinality| match f.is_final {
        true => ", final".to_string(),
        false => format!(", {}", f.waiting()),
    };
    out.push_str(&format!(
        "\nsource     {} block {} ({}/{} confirmations{})",
        s.source.chain,
        s.source.block_number.map_or("-".into(), |n| n.to_string()),
        s.source.confirmations,
        s.source.required,
        if s.source.block_number.is_some() {
            fin(&s.source.finality)
        } else {
            String::new()
        }
    ));
    if let Some(r) = &s.source.finality_stalled {
        out.push_str(&format!("\nstalled    {} finality: {r}", s.source.chain));
    }
    if let Some(p) = &s.payout {
        out.push_str(&format!(
            "\npaid       {} block {} ({}/{} confirmations{})",
            p.chain,
            p.block_number,
            p.confirmations,
            p.required,
            fin(&p.finality)
        ));
        if let Some(secs) = p.seconds {
            out.push_str(&format!(", {secs:.1} s after inclusion"));
        }
    }
    match &s.resend {
        Some(cmd) => out.push_str(&format!(
            "\nresend it  {cmd}    (the same signed bytes: it cannot be paid twice)"
        )),
        None if s.state == PegState::Unknown => {
            out.push_str("\nthis wallet did not send it, so it has no copy to resend")
        }
        None => {}
    }
    out
}

async fn send_peg(ctx: &Ctx, args: &PegArgs, d: Direction) -> Result<Report> {
    let amount = parse_amount(&args.amount, args.raw)?;
    ctx.keystore
        .find(&args.from)
        .map_err(|e| ctx.dir_error(&args.from, e))?;
    let (src_chain, _) = chains(d);
    let src = ctx.node(src_chain).await?;
    let mut ends = Ends::new(ctx, d, src);
    // Following the transfer needs the destination too: fail before anything is sent. With
    // --async only the source chain is involved.
    if !args.no_wait {
        ends.open_dst().await?;
    }
    let info = ends.src.peg_info().await?;
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
    let sent = send::submit(&ends.src, &key, &req, &ctx.record).await?;
    let id = sent.hash;
    if args.no_wait {
        let (recipient, amount, payout_amount) = terms(Some(&req.kind), d, &info);
        let s = TransferStatus {
            id,
            direction: dir_name(d),
            state: PegState::Pending,
            recipient,
            amount,
            payout_amount,
            source: SourceView {
                chain: src_chain,
                block_number: None,
                confirmations: 0,
                required: required(&info, d),
                finality: BlockFinality::of(None, 0, None),
                finality_stalled: None,
            },
            payout: None,
            resend: None,
        };
        return Report::new(
            &s,
            format!(
                "{} accepted by the {} node; id {id}\nfollow it with `wallet status {id} --wait`",
                s.direction, src_chain
            ),
        );
    }
    let t =
        send::wait_included(&ends.src, id, &sent.raw, Duration::from_secs(args.timeout)).await?;
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
    let record = SentTx::new(src_chain, &sent.signed, key.address());
    let s = follow(
        &mut ends,
        id,
        &info,
        Duration::from_secs(args.timeout),
        Some(&record),
    )
    .await?;
    Report::new(&s, human(&s, &ends.src.url))
}

/// Runs `deposit`.
pub async fn deposit(ctx: &Ctx, args: &PegArgs) -> Result<Report> {
    send_peg(ctx, args, Direction::MainToSide).await
}

/// Runs `withdraw`.
pub async fn withdraw(ctx: &Ctx, args: &PegArgs) -> Result<Report> {
    send_peg(ctx, args, Direction::SideToMain).await
}

/// Finds which chain an id this wallet did not send started on; opens both nodes.
async fn probe<'a>(ctx: &'a Ctx, id: Hash) -> Result<Ends<'a>> {
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
        Direction::MainToSide => (main, side),
        Direction::SideToMain => (side, main),
    };
    Ok(Ends {
        ctx,
        d,
        src,
        dst: Some(dst),
    })
}

/// Runs `status`: what the wallet sent it knows the chain of (and can resend); anything else
/// is looked up on both chains. Then it reports (or follows) the transfer.
pub async fn status(ctx: &Ctx, id: &str, wait: bool, timeout: u64) -> Result<Report> {
    let id: Hash = id
        .parse()
        .map_err(|e| WalletError::BadInput(format!("transfer id: {e}")))?;
    let sent = ctx.record.get(&id)?;
    let mut ends = match &sent {
        Some(s) => {
            let d = match s.tx_kind() {
                Some(TxKind::Lock { .. }) => Direction::MainToSide,
                Some(TxKind::Burn { .. }) => Direction::SideToMain,
                _ => {
                    return Err(WalletError::BadInput(format!(
                        "{id} is a {} this wallet sent on the {}, not a deposit or withdrawal: see `wallet tx {id}`",
                        s.kind, s.chain
                    )))
                }
            };
            Ends::new(ctx, d, ctx.node(chains(d).0).await?)
        }
        None => probe(ctx, id).await?,
    };
    let info = ends.src.peg_info().await?;
    let s = if wait {
        follow(
            &mut ends,
            id,
            &info,
            Duration::from_secs(timeout),
            sent.as_ref(),
        )
        .await?
    } else {
        observe(&mut ends, id, &info, sent.as_ref()).await?
    };
    Report::new(&s, human(&s, &ends.src.url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payout(confirmations: u64, finalized: Option<BlockNumber>) -> PayoutView {
        PayoutView {
            chain: ChainSel::Side,
            block_number: 9,
            tx_hash: None,
            amount: None,
            seconds: None,
            confirmations,
            required: 2,
            finality: BlockFinality::of(Some(9), 8 + confirmations, finalized),
        }
    }

    fn source(confirmations: u64, finalized: Option<BlockNumber>) -> SourceView {
        SourceView {
            chain: ChainSel::Main,
            block_number: Some(10),
            confirmations,
            required: 3,
            finality: BlockFinality::of(Some(10), 9 + confirmations, finalized),
            finality_stalled: None,
        }
    }

    #[test]
    fn a_transfer_is_paid_only_once_its_payout_is_final() {
        assert_eq!(
            state_of(false, &source(0, Some(0)), None),
            PegState::Pending
        );
        assert_eq!(
            state_of(true, &source(2, Some(11)), None),
            PegState::Confirming
        );
        assert_eq!(
            state_of(true, &source(3, Some(9)), None),
            PegState::AwaitingFinality,
            "deep enough but not final: no member signs it yet"
        );
        assert_eq!(
            state_of(true, &source(3, Some(10)), None),
            PegState::AwaitingFederation
        );
        let paid = |c, f| state_of(true, &source(5, Some(12)), Some(&payout(c, f)));
        assert_eq!(
            paid(1, Some(9)),
            PegState::PayoutConfirming,
            "a payout 1 block deep of 2 can still be reorged away"
        );
        assert_eq!(
            paid(3, Some(8)),
            PegState::PayoutConfirming,
            "deep but not final: a reorg could still take it"
        );
        assert_eq!(paid(2, Some(9)), PegState::Paid);
        assert_eq!(paid(2, None), PegState::Paid, "a node from before finality");
    }

    #[test]
    fn the_progress_line_says_what_finality_waits_for() {
        let mut s = TransferStatus {
            id: Hash::ZERO,
            direction: "deposit",
            state: PegState::AwaitingFinality,
            recipient: None,
            amount: None,
            payout_amount: None,
            source: source(3, Some(7)),
            payout: None,
            resend: None,
        };
        s.source.finality = BlockFinality::of(Some(118), 120, Some(117));
        let line = progress_line(&s, 2, 3);
        assert!(
            line.contains("waiting for finality: head 120, finalized 117"),
            "{line}"
        );
        s.source.finality_stalled = Some("2 of 4 authorities voting; needs 3".into());
        let line = progress_line(&s, 2, 3);
        assert!(
            line.contains("finality stalled: 2 of 4 authorities voting; needs 3"),
            "{line}"
        );
    }
}
