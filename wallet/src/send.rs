//! Sending any transaction: fee from the chain's rule (or overrides), nonce from the node (or
//! given), a balance check before submitting, the signed bytes recorded durably (see
//! [`crate::record`]) before they go out, then waiting for inclusion with a progress line,
//! resending the recorded bytes if the node forgets them. Transfers, deposits (`Lock`) and
//! withdrawals (`Burn`) all pass through here with their own `TxKind`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use primitives::crypto::SecretKey;
use primitives::tx::{Fee, SignedTransaction, Transaction, TxKind};
use primitives::types::{Amount, Bytes, Hash, Nonce};
use rpc_api::types::FeeInfo;
use rpc_api::types::{TxLookup, TxStatus};

use crate::amount::parse_base_units;
use crate::cli::FeeArgs;
use crate::error::{Result, WalletError};
use crate::node::Node;
use crate::record::{SentRecord, SentTx};

/// What to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation.
    pub kind: TxKind,
    /// Coins the operation moves out of the sender (checked with the fee against the balance).
    pub value: Amount,
    /// Fee overrides.
    pub fee: FeeArgs,
    /// A nonce instead of the node's pending nonce.
    pub nonce: Option<Nonce>,
}

/// A submitted transaction.
#[derive(Debug, Clone)]
pub struct Sent {
    /// What was signed.
    pub signed: SignedTransaction,
    /// Its hash.
    pub hash: Hash,
    /// Its SCALE encoding, as sent (and recorded).
    pub raw: Bytes,
}

/// The fee for a transaction of `weight` under the node's current rule, with overrides applied.
pub fn choose_fee(info: &FeeInfo, args: &FeeArgs, weight: u64) -> Result<Fee> {
    let units = |s: &Option<String>| s.as_deref().map(parse_base_units).transpose();
    match info {
        FeeInfo::FeeRate { min_fee_rate } => {
            if args.max_fee.is_some() || args.max_tip.is_some() {
                return Err(WalletError::Fee(
                    "--max-fee and --max-tip apply to the sidechain's base-fee rule; the mainchain takes --fee".into(),
                ));
            }
            let fee = match units(&args.fee)? {
                Some(f) => f,
                None => min_fee_rate
                    .checked_mul(u128::from(weight))
                    .ok_or_else(|| WalletError::Fee("fee overflows".into()))?,
            };
            Ok(Fee::Flat { fee })
        }
        FeeInfo::BaseFee {
            suggested_max_fee,
            suggested_max_tip,
            ..
        } => {
            if args.fee.is_some() {
                return Err(WalletError::Fee(
                    "--fee applies to the mainchain's fee-rate rule; the sidechain takes --max-fee and --max-tip".into(),
                ));
            }
            let max_tip = units(&args.max_tip)?.unwrap_or(*suggested_max_tip);
            let max_fee = units(&args.max_fee)?.unwrap_or(*suggested_max_fee);
            Ok(Fee::Dynamic { max_fee, max_tip })
        }
    }
}

/// The most a fee can cost for a transaction of `weight`.
pub fn max_fee_cost(fee: &Fee, weight: u64) -> Option<Amount> {
    match fee {
        Fee::Flat { fee } => Some(*fee),
        Fee::Dynamic { max_fee, .. } => max_fee.checked_mul(u128::from(weight)),
        Fee::EthLegacy {
            gas_price: price,
            gas_limit,
        }
        | Fee::EthDynamic {
            max_fee_per_gas: price,
            gas_limit,
            ..
        } => price.checked_mul(u128::from(*gas_limit)),
    }
}

/// Signs `req` with `key` for `node`'s chain, records it in `record`, and submits it.
pub async fn submit(
    node: &Node,
    key: &SecretKey,
    req: &Request,
    record: &SentRecord,
) -> Result<Sent> {
    let account = node.account(key.address()).await?;
    let nonce = req.nonce.unwrap_or(account.pending_nonce);
    let info = node.fee_info().await?;
    let build = |fee: Fee| Transaction {
        chain_id: node.info.chain_id,
        nonce,
        fee,
        kind: req.kind.clone(),
    };
    // Every field is fixed width, so the size depends only on the fee's form: sign once to measure.
    let probe = choose_fee(&info, &FeeArgs::default(), 0)?;
    let weight = build(probe).sign(key).encode().len() as u64;
    let fee = choose_fee(&info, &req.fee, weight)?;
    let needed = max_fee_cost(&fee, weight)
        .and_then(|f| f.checked_add(req.value))
        .ok_or_else(|| WalletError::Fee("amount + fee overflows".into()))?;
    if needed > account.balance {
        return Err(WalletError::InsufficientBalance {
            chain: node.chain,
            address: key.address(),
            balance: account.balance,
            needed,
        });
    }
    let signed = build(fee).sign(key);
    let hash = signed.hash();
    // Recorded before it leaves: if the node loses it, or this process dies before the
    // answer, the signed bytes are still here to resend.
    let sent = SentTx::new(node.chain, &signed, key.address());
    record.put(&sent)?;
    match node.send(sent.raw.clone()).await {
        Ok(_) => {}
        Err(WalletError::Rejected { reason, .. }) if reason == "already_known" => {}
        Err(e @ WalletError::Rejected { .. }) => {
            // Refused: nothing to resend later.
            record.remove(&hash)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    Ok(Sent {
        signed,
        hash,
        raw: sent.raw,
    })
}

/// Whether the node took `raw` again (accepted, or it already held it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// The node accepted it anew.
    Accepted,
    /// The node already had it.
    AlreadyKnown,
}

/// Sends the recorded bytes of `hash` again; already known is success.
pub async fn resend(node: &Node, hash: Hash, raw: &Bytes) -> Result<Resent> {
    match node.send(raw.clone()).await {
        Ok(h) if h == hash => Ok(Resent::Accepted),
        Ok(h) => Err(WalletError::BadInput(format!(
            "the recorded bytes of {hash} hash to {h} on the {}: the record is damaged",
            node.chain
        ))),
        Err(WalletError::Rejected { reason, .. }) if reason == "already_known" => {
            Ok(Resent::AlreadyKnown)
        }
        Err(e) => Err(e),
    }
}

/// Polls the node until `hash` leaves the mempool, with a progress line on stderr. A node
/// that no longer knows the transaction (it lost its pool) is sent `raw` again.
pub async fn wait_included(
    node: &Node,
    hash: Hash,
    raw: &Bytes,
    timeout: Duration,
) -> Result<TxLookup> {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let interval = Duration::from_millis((node.info.block_time_ms / 4).clamp(100, 1000));
    let mut err = std::io::stderr();
    if !tty {
        let _ = writeln!(
            err,
            "submitted {hash}; waiting for inclusion on the {}",
            node.chain
        );
    }
    let result = loop {
        match node.transaction(hash).await {
            Ok(Some(t)) if t.status != TxStatus::Pending => break Ok(t),
            Ok(Some(_)) => {}
            Ok(None) => {
                // Not in a block, not in the pool: the node lost it. The same bytes again
                // are the same transaction, so this can never make it count twice.
                match resend(node, hash, raw).await {
                    Ok(_) => {
                        let _ = writeln!(
                            err,
                            "{}the {} node no longer knew {hash}; resent the wallet's signed copy",
                            if tty { "\r\x1b[2K" } else { "" },
                            node.chain
                        );
                    }
                    // Back up and forgot it? Keep asking until the deadline.
                    Err(WalletError::NodeDown { .. }) => {}
                    // Refused: maybe because it was included meanwhile; else that is the answer.
                    Err(e) => match node.transaction(hash).await {
                        Ok(Some(t)) if t.status != TxStatus::Pending => break Ok(t),
                        _ => break Err(e),
                    },
                }
            }
            // A node that restarts while we wait is given until the deadline to come back.
            Err(WalletError::NodeDown { .. }) => {}
            Err(e) => break Err(e),
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            break Err(WalletError::Timeout {
                chain: node.chain,
                hash,
                secs: timeout.as_secs(),
            });
        }
        if tty {
            let _ = write!(
                err,
                "\r\x1b[2Kwaiting for {hash} on the {}: {} s",
                node.chain,
                elapsed.as_secs()
            );
            let _ = err.flush();
        }
        tokio::time::sleep(interval).await;
    };
    if tty {
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rules_and_overrides() {
        // Overrides of the total fee and of the tip.
        let args = |fee: Option<&str>, max_tip: Option<&str>| FeeArgs {
            fee: fee.map(Into::into),
            max_tip: max_tip.map(Into::into),
            ..Default::default()
        };
        let rate = FeeInfo::FeeRate {
            min_fee_rate: Amount(1000),
        };
        assert_eq!(
            choose_fee(&rate, &FeeArgs::default(), 150).unwrap(),
            Fee::Flat {
                fee: Amount(150_000)
            }
        );
        let over = args(Some("7"), None);
        assert_eq!(
            choose_fee(&rate, &over, 150).unwrap(),
            Fee::Flat { fee: Amount(7) }
        );
        let side_args = args(None, Some("3"));
        assert!(matches!(
            choose_fee(&rate, &side_args, 150),
            Err(WalletError::Fee(_))
        ));
        let base = FeeInfo::BaseFee {
            base_fee: Amount(10),
            min_base_fee: Amount(1),
            suggested_max_fee: Amount(21),
            suggested_max_tip: Amount(1),
        };
        assert_eq!(
            choose_fee(&base, &FeeArgs::default(), 150).unwrap(),
            Fee::Dynamic {
                max_fee: Amount(21),
                max_tip: Amount(1)
            }
        );
        assert_eq!(
            choose_fee(&base, &side_args, 150).unwrap(),
            Fee::Dynamic {
                max_fee: Amount(21),
                max_tip: Amount(3)
            }
        );
        assert!(matches!(
            choose_fee(&base, &over, 150),
            Err(WalletError::Fee(_))
        ));
        let bad = args(Some("1.5"), None);
        assert!(matches!(
            choose_fee(&rate, &bad, 1),
            Err(WalletError::Amount(_))
        ));
        assert_eq!(
            max_fee_cost(
                &Fee::Dynamic {
                    max_fee: Amount(21),
                    max_tip: Amount(1)
                },
                10
            ),
            Some(Amount(210))
        );
    }

    #[test]
    fn size_does_not_depend_on_values() {
        let key = SecretKey::random();
        let tx = |fee, amount, nonce| {
            Transaction {
                chain_id: 1,
                nonce,
                fee,
                kind: TxKind::Transfer {
                    to: key.address(),
                    amount: Amount(amount),
                },
            }
            .sign(&key)
            .encode()
            .len()
        };
        assert_eq!(
            tx(Fee::Flat { fee: Amount(0) }, 0, 0),
            tx(
                Fee::Flat {
                    fee: Amount(u128::MAX)
                },
                u128::MAX,
                u64::MAX
            )
        );
        let d = |v| Fee::Dynamic {
            max_fee: Amount(v),
            max_tip: Amount(v),
        };
        assert_eq!(tx(d(0), 0, 0), tx(d(u128::MAX), 5, 9));
    }
}
