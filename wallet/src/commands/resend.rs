//! `wallet resend HASH`: sends a transaction this wallet sent before again, byte for byte,
//! from its record (`crate::record`), for one no node knows any more.

use primitives::types::{Address, BlockNumber, Hash, Nonce};
use rpc_api::types::TxStatus;
use serde::Serialize;

use crate::chains::ChainSel;
use crate::error::{Result, WalletError};
use crate::send::{self, Resent};
use crate::{Ctx, Report};

/// What the node made of the resent transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResendResult {
    /// It accepted it anew (it did not know it).
    Accepted,
    /// It already held it in its pool: nothing changed.
    AlreadyKnown,
    /// It is in a block already: nothing was sent.
    AlreadyIncluded,
}

/// `resend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResendOut {
    /// `main` or `side`.
    pub chain: ChainSel,
    /// The transaction hash: the same as the first time.
    pub hash: Hash,
    /// The sender.
    pub from: Address,
    /// Its nonce.
    pub nonce: Nonce,
    /// `transfer`, `lock`, `burn`, ...
    pub kind: String,
    /// `accepted`, `already_known` or `already_included`.
    pub result: ResendResult,
    /// The block it is in, when `already_included`.
    pub block_number: Option<BlockNumber>,
}

/// Runs `resend`.
pub async fn run(ctx: &Ctx, hash: &str) -> Result<Report> {
    let hash: Hash = hash
        .parse()
        .map_err(|e| WalletError::BadInput(format!("transaction hash: {e}")))?;
    let sent = ctx
        .record
        .get(&hash)?
        .ok_or_else(|| WalletError::NotInRecord {
            hash,
            path: ctx.record.path.clone(),
        })?;
    let node = ctx.node(sent.chain).await?;
    let mut out = ResendOut {
        chain: sent.chain,
        hash,
        from: sent.from,
        nonce: sent.nonce,
        kind: sent.kind.clone(),
        result: ResendResult::Accepted,
        block_number: None,
    };
    let included = node
        .transaction(hash)
        .await?
        .filter(|t| t.status != TxStatus::Pending);
    if let Some(t) = included {
        out.result = ResendResult::AlreadyIncluded;
        out.block_number = t.block_number;
    } else {
        // Even a node that holds it takes it again (already known): it then journals it.
        out.result = match send::resend(&node, hash, &sent.raw).await? {
            Resent::Accepted => ResendResult::Accepted,
            Resent::AlreadyKnown => ResendResult::AlreadyKnown,
        };
    }
    let what = match out.result {
        ResendResult::Accepted => format!("resent to the {} node, which accepted it", out.chain),
        ResendResult::AlreadyKnown => format!("the {} node already has it in its pool", out.chain),
        ResendResult::AlreadyIncluded => format!(
            "already in {} block {}; nothing sent",
            out.chain,
            out.block_number.map_or("?".into(), |n| n.to_string())
        ),
    };
    let human = format!(
        "{} {hash} (nonce {} from {})\n{what}\nfollow it with `wallet tx {hash}` (a deposit or withdrawal: `wallet status {hash} --wait`)",
        out.kind, out.nonce, out.from
    );
    Report::new(&out, human)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let out = ResendOut {
            chain: ChainSel::Main,
            hash: Hash([7; 32]),
            from: Address::default(),
            nonce: 2,
            kind: "lock".into(),
            result: ResendResult::AlreadyKnown,
            block_number: None,
        };
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["result"], "already_known");
        assert_eq!(v["chain"], "main");
        assert_eq!(v["hash"], format!("0x{}", "07".repeat(32)));
        assert_eq!(v["block_number"], serde_json::Value::Null);
    }
}
