//! `wallet tx HASH`: a transaction with its status and receipt, looked up on both chains.

use primitives::types::Hash;
use rpc_api::types::TxLookup;
use serde::Serialize;

use crate::amount::coins;
use crate::chains::ChainSel;
use crate::error::{Result, WalletError};
use crate::{Ctx, Report};

/// `tx`: the chain it was found on, then the node's `tp_getTransaction` answer (docs/rpc.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxOut {
    /// `main` or `side`.
    pub chain: ChainSel,
    /// `status`, `transaction`, `block_hash`, `block_number`, `index`, `receipt`.
    #[serde(flatten)]
    pub lookup: TxLookup,
}

/// Runs `tx`. Without `--chain`, a node that is down is skipped if the other one knows the hash.
pub async fn run(ctx: &Ctx, hash: &str, chain: Option<ChainSel>) -> Result<Report> {
    let hash: Hash = hash
        .parse()
        .map_err(|e| WalletError::BadInput(format!("transaction hash: {e}")))?;
    let chains = ChainSel::selected(chain);
    let mut unreachable = None;
    for &c in &chains {
        let found = async { ctx.node(c).await?.transaction(hash).await }.await;
        match found {
            Ok(Some(lookup)) => {
                let out = TxOut { chain: c, lookup };
                let human = human(&out);
                return Report::new(&out, human);
            }
            Ok(None) => {}
            Err(e) if chains.len() > 1 && unreachable.is_none() => unreachable = Some(e),
            Err(e) => return Err(e),
        }
    }
    if let Some(e) = unreachable {
        return Err(e);
    }
    // Sent by this wallet, yet unknown: say so, and how to send it again.
    if let Some(sent) = ctx.record.get(&hash)? {
        if chains.contains(&sent.chain) {
            return Err(WalletError::TxUnknown {
                hash,
                chain: sent.chain,
                url: ctx.settings.endpoint(sent.chain).url.clone(),
            });
        }
    }
    let names: Vec<&str> = chains.iter().map(|c| c.node_name()).collect();
    Err(WalletError::TxNotFound {
        hash,
        chains: names.join(" or "),
    })
}

fn human(out: &TxOut) -> String {
    let t = &out.lookup;
    let mut lines = vec![
        format!("hash      {}", t.transaction.hash),
        format!("chain     {}", out.chain),
        format!(
            "status    {}",
            serde_json::to_value(t.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
        format!("from      {}", t.transaction.from),
        format!("nonce     {}", t.transaction.tx.nonce),
    ];
    let kind = &t.transaction.tx.kind;
    let (to, amount) = kind.recipient_and_amount();
    lines.push(format!("kind      {}", kind.name()));
    lines.push(format!("to        {to}"));
    lines.push(format!("amount    {} coins", coins(amount)));
    if let (Some(n), Some(h)) = (t.block_number, t.block_hash) {
        lines.push(format!("block     {n} ({h})"));
    }
    if let Some(r) = &t.receipt {
        lines.push(format!("fee paid  {} coins", coins(r.fee_paid)));
        if let Some(f) = &r.failure {
            lines.push(format!(
                "failure   {}",
                serde_json::to_string(f).unwrap_or_default()
            ));
        }
    }
    lines.join("\n")
}
