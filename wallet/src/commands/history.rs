//! `wallet history NAME|ADDRESS`: transfers from or to an account in the latest blocks.
//!
//! The nodes keep no per-address index, so this scans the last `--blocks` blocks of each chain
//! (full blocks, a few requests at a time) and looks up the status of each match.

use primitives::types::{Address, Amount, BlockNumber, Hash, Nonce};
use rpc_api::types::{BlockView, TxStatus};
use serde::Serialize;

use crate::amount::coins;
use crate::chains::ChainSel;
use crate::error::Result;
use crate::node::Node;
use crate::{Ctx, Report};

/// Blocks fetched concurrently from one node.
const PARALLEL_FETCHES: usize = 8;

/// The blocks scanned on one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scanned {
    /// `main` or `side`.
    pub chain: ChainSel,
    /// First block scanned.
    pub from_block: BlockNumber,
    /// Last block scanned (the head when the scan started).
    pub to_block: BlockNumber,
}

/// Which way the coins went, seen from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by the account.
    Out,
    /// Received by the account.
    In,
    /// Sent to itself.
    SelfTransfer,
}

/// One transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// `main` or `side`.
    pub chain: ChainSel,
    /// The block it is in.
    pub block_number: BlockNumber,
    /// The transaction hash.
    pub hash: Hash,
    /// `success` or `failed`.
    pub status: TxStatus,
    /// `out`, `in` or `self_transfer`.
    pub direction: Direction,
    /// The sender.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// Base units, as a decimal string.
    pub amount: Amount,
    /// The same in coins.
    pub amount_coins: String,
    /// The sender's nonce.
    pub nonce: Nonce,
    /// The fee charged, base units (`null` if the receipt was not found).
    pub fee_paid: Option<Amount>,
}

/// `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryOut {
    /// The account.
    pub address: Address,
    /// The key's name, when one was given.
    pub name: Option<String>,
    /// The ranges scanned.
    pub scanned: Vec<Scanned>,
    /// Oldest first, main then side.
    pub transfers: Vec<HistoryEntry>,
}

async fn fetch_blocks(node: &Node, from: BlockNumber, to: BlockNumber) -> Result<Vec<BlockView>> {
    let mut out = Vec::new();
    let mut next = from;
    while next <= to {
        let end = to.min(next + PARALLEL_FETCHES as u64 - 1);
        let mut set = tokio::task::JoinSet::new();
        for n in next..=end {
            let node = node.clone();
            set.spawn(async move { node.full_block(n).await });
        }
        while let Some(joined) = set.join_next().await {
            if let Ok(block) = joined {
                out.extend(block?);
            }
        }
        next = end + 1;
    }
    out.sort_by_key(|b| b.summary.number);
    Ok(out)
}

/// Runs `history`.
pub async fn run(ctx: &Ctx, who: &str, chain: Option<ChainSel>, blocks: u64) -> Result<Report> {
    let (address, name) = ctx.resolve_address(who)?;
    let mut scanned = Vec::new();
    let mut transfers = Vec::new();
    for c in ChainSel::selected(chain) {
        let node = ctx.node(c).await?;
        let head = node.head_number().await?;
        let from = head.saturating_sub(blocks.saturating_sub(1));
        if blocks > 0 {
            for block in fetch_blocks(&node, from, head).await? {
                for t in block.transactions.unwrap_or_default() {
                    let (to, amount) = t.tx.kind.recipient_and_amount();
                    let direction = match (t.from == address, to == address) {
                        (true, true) => Direction::SelfTransfer,
                        (true, false) => Direction::Out,
                        (false, true) => Direction::In,
                        (false, false) => continue,
                    };
                    let lookup = node.transaction(t.hash).await?;
                    let receipt = lookup.as_ref().and_then(|l| l.receipt.as_ref());
                    transfers.push(HistoryEntry {
                        chain: c,
                        block_number: block.summary.number,
                        hash: t.hash,
                        status: lookup.as_ref().map_or(TxStatus::Success, |l| l.status),
                        direction,
                        from: t.from,
                        to,
                        amount,
                        amount_coins: coins(amount),
                        nonce: t.tx.nonce,
                        fee_paid: receipt.map(|r| r.fee_paid),
                    });
                }
            }
        }
        scanned.push(Scanned {
            chain: c,
            from_block: from,
            to_block: head,
        });
    }
    let out = HistoryOut {
        address,
        name,
        scanned,
        transfers,
    };
    let mut human: Vec<String> = out
        .scanned
        .iter()
        .map(|s| {
            format!(
                "{}: blocks {}..={} scanned",
                s.chain, s.from_block, s.to_block
            )
        })
        .collect();
    if out.transfers.is_empty() {
        human.push("no transfers found".into());
    }
    for t in &out.transfers {
        let (arrow, other) = match t.direction {
            Direction::Out => ("to  ", t.to),
            Direction::In => ("from", t.from),
            Direction::SelfTransfer => ("self", t.to),
        };
        let status = if t.status == TxStatus::Failed {
            "  FAILED"
        } else {
            ""
        };
        human.push(format!(
            "{} #{:<7} {:>24} coins {arrow} {other}  {}{status}",
            t.chain.short(),
            t.block_number,
            t.amount_coins,
            t.hash
        ));
    }
    Report::new(&out, human.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let [a, b] = crate::commands::test_addresses();
        let out = HistoryOut {
            address: a,
            name: None,
            scanned: vec![Scanned {
                chain: ChainSel::Side,
                from_block: 0,
                to_block: 9,
            }],
            transfers: vec![HistoryEntry {
                chain: ChainSel::Side,
                block_number: 7,
                hash: Hash([1; 32]),
                status: TxStatus::Success,
                direction: Direction::Out,
                from: a,
                to: b,
                amount: Amount(5),
                amount_coins: "0.000000000000000005".into(),
                nonce: 0,
                fee_paid: Some(Amount(100)),
            }],
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({
                "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "name": null,
                "scanned": [{"chain": "side", "from_block": 0, "to_block": 9}],
                "transfers": [{
                    "chain": "side", "block_number": 7, "hash": format!("0x{}", "01".repeat(32)),
                    "status": "success", "direction": "out",
                    "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                    "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "amount": "5", "amount_coins": "0.000000000000000005", "nonce": 0, "fee_paid": "100"
                }]
            })
        );
    }
}
