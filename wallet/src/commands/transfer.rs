//! `wallet transfer --chain main|side --from NAME --to ADDRESS AMOUNT`.

use std::time::Duration;

use primitives::tx::{Fee, TxKind};
use primitives::types::{Address, Amount, BlockNumber, ChainId, Hash, Nonce};
use rpc_api::types::TxStatus;
use serde::Serialize;

use crate::amount::{coins, parse_amount};
use crate::chains::ChainSel;
use crate::cli::TransferArgs;
use crate::error::{Result, WalletError};
use crate::send::{self, Request};
use crate::{Ctx, Report};

/// `transfer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferOut {
    /// `main` or `side`.
    pub chain: ChainSel,
    /// The transaction hash.
    pub hash: Hash,
    /// `pending` (with `--async`), `success`.
    pub status: TxStatus,
    /// The sender.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// Base units, as a decimal string.
    pub amount: Amount,
    /// The same in coins.
    pub amount_coins: String,
    /// The nonce used.
    pub nonce: Nonce,
    /// The chain id signed for.
    pub chain_id: ChainId,
    /// The fee offered: `{"rule": "flat", "fee"}` or `{"rule": "dynamic", "max_fee", "max_tip"}`.
    pub fee: Fee,
    /// The block it was included in (`null` with `--async`).
    pub block_number: Option<BlockNumber>,
    /// That block's hash.
    pub block_hash: Option<Hash>,
    /// The fee charged, base units (`null` with `--async`).
    pub fee_paid: Option<Amount>,
}

/// Resolves `--to`: a 0x address, or the name of a key in the keystore.
fn recipient(ctx: &Ctx, to: &str) -> Result<Address> {
    if to.starts_with("0x") || to.starts_with("0X") {
        return to
            .parse()
            .map_err(|e| WalletError::BadInput(format!("--to: {e}")));
    }
    ctx.resolve_address(to).map(|(a, _)| a)
}

/// Runs `transfer`.
pub async fn run(ctx: &Ctx, args: &TransferArgs) -> Result<Report> {
    let amount = parse_amount(&args.amount, args.raw)?;
    let to = recipient(ctx, &args.to)?;
    // The key exists before we ask for its password; the node is up before we decrypt.
    ctx.keystore
        .find(&args.from)
        .map_err(|e| ctx.dir_error(&args.from, e))?;
    let node = ctx.node(args.chain).await?;
    let key = ctx.unlock(&args.from)?;
    let req = Request {
        kind: TxKind::Transfer { to, amount },
        value: amount,
        fee: args.fee.clone(),
        nonce: args.nonce,
    };
    let sent = send::submit(&node, &key, &req, &ctx.record).await?;
    let mut out = TransferOut {
        chain: args.chain,
        hash: sent.hash,
        status: TxStatus::Pending,
        from: key.address(),
        to,
        amount,
        amount_coins: coins(amount),
        nonce: sent.signed.tx.nonce,
        chain_id: sent.signed.tx.chain_id,
        fee: sent.signed.tx.fee.clone(),
        block_number: None,
        block_hash: None,
        fee_paid: None,
    };
    if !args.no_wait {
        let t = send::wait_included(
            &node,
            sent.hash,
            &sent.raw,
            Duration::from_secs(args.timeout),
        )
        .await?;
        out.status = t.status;
        out.block_number = t.block_number;
        out.block_hash = t.block_hash;
        out.fee_paid = t.receipt.as_ref().map(|r| r.fee_paid);
        if t.status == TxStatus::Failed {
            let reason = t
                .receipt
                .and_then(|r| r.failure)
                .and_then(|f| serde_json::to_value(f).ok())
                .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            return Err(WalletError::TxFailed {
                chain: args.chain,
                hash: sent.hash,
                block: t.block_number.unwrap_or_default(),
                reason,
            });
        }
    }
    let mut human = format!(
        "Sent {} coins from {} ({}) to {} on the {}\nhash {}",
        out.amount_coins, args.from, out.from, out.to, out.chain, out.hash
    );
    match (out.block_number, out.fee_paid) {
        (Some(n), Some(f)) => {
            human.push_str(&format!("\nincluded in block {n}, fee {} coins", coins(f)))
        }
        _ => human.push_str("\npending (follow it with `wallet tx HASH`)"),
    }
    Report::new(&out, human)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let [a, b] = crate::commands::test_addresses();
        let out = TransferOut {
            chain: ChainSel::Side,
            hash: Hash([2; 32]),
            status: TxStatus::Success,
            from: a,
            to: b,
            amount: Amount(1_500_000_000_000_000_000),
            amount_coins: "1.5".into(),
            nonce: 4,
            chain_id: 2002,
            fee: Fee::Dynamic {
                max_fee: Amount(21),
                max_tip: Amount(1),
            },
            block_number: Some(12),
            block_hash: Some(Hash([3; 32])),
            fee_paid: Some(Amount(1540)),
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({
                "chain": "side", "hash": format!("0x{}", "02".repeat(32)), "status": "success",
                "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                "amount": "1500000000000000000", "amount_coins": "1.5", "nonce": 4, "chain_id": 2002,
                "fee": {"rule": "dynamic", "max_fee": "21", "max_tip": "1"},
                "block_number": 12, "block_hash": format!("0x{}", "03".repeat(32)), "fee_paid": "1540"
            })
        );
        let pending = TransferOut {
            status: TxStatus::Pending,
            block_number: None,
            block_hash: None,
            fee_paid: None,
            fee: Fee::Flat { fee: Amount(9) },
            chain: ChainSel::Main,
            ..out
        };
        let v = serde_json::to_value(&pending).unwrap();
        assert_eq!(v["status"], "pending");
        assert_eq!(v["block_number"], serde_json::Value::Null);
        assert_eq!(v["fee"], serde_json::json!({"rule": "flat", "fee": "9"}));
    }
}
