//! `wallet balance NAME|ADDRESS`: balance and nonces on both chains, or one with `--chain`.

use primitives::types::{Address, Amount, BlockNumber, Nonce};
use serde::Serialize;

use crate::chains::ChainSel;
use crate::error::Result;
use crate::{Ctx, Report};

/// One chain's view of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBalance {
    /// `main` or `side`.
    pub chain: ChainSel,
    /// Base units, as a decimal string.
    pub balance: Amount,
    /// The same in coins, e.g. `"1.5"`.
    pub balance_coins: String,
    /// The next nonce the chain expects.
    pub nonce: Nonce,
    /// The next nonce counting the account's pending transactions.
    pub pending_nonce: Nonce,
    /// The height the answer reflects.
    pub block_number: BlockNumber,
}

/// `balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceOut {
    /// The account.
    pub address: Address,
    /// The key's name, when one was given.
    pub name: Option<String>,
    /// One entry per chain asked, main first.
    pub balances: Vec<ChainBalance>,
}

/// Runs `balance`.
pub async fn run(ctx: &Ctx, who: &str, chain: Option<ChainSel>) -> Result<Report> {
    let (address, name) = ctx.resolve_address(who)?;
    let mut balances = Vec::new();
    for c in ChainSel::selected(chain) {
        let node = ctx.node(c).await?;
        let a = node.account(address).await?;
        balances.push(ChainBalance {
            chain: c,
            balance: a.balance,
            balance_coins: a.balance.to_coins_string(),
            nonce: a.nonce,
            pending_nonce: a.pending_nonce,
            block_number: a.block_number,
        });
    }
    let out = BalanceOut {
        address,
        name,
        balances,
    };
    let mut human = match &out.name {
        Some(n) => format!("{n} ({})", out.address),
        None => out.address.to_string(),
    };
    for b in &out.balances {
        human.push_str(&format!(
            "\n  {}  {} coins  (nonce {}, block {})",
            b.chain, b.balance_coins, b.nonce, b.block_number
        ));
    }
    Report::new(&out, human)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let out = BalanceOut {
            address: crate::commands::test_addresses()[0],
            name: Some("dev0".into()),
            balances: vec![ChainBalance {
                chain: ChainSel::Main,
                balance: Amount(1_500_000_000_000_000_000),
                balance_coins: "1.5".into(),
                nonce: 2,
                pending_nonce: 3,
                block_number: 40,
            }],
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({
                "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "name": "dev0",
                "balances": [{"chain": "main", "balance": "1500000000000000000", "balance_coins": "1.5",
                              "nonce": 2, "pending_nonce": 3, "block_number": 40}]
            })
        );
    }
}
