//! Applying transactions to state: nonces, balances, fees.

use crate::block::{FailureReason, Receipt};
use crate::fee::{FeeError, FeeRule};
use crate::state::{Overlay, StateDiff, StateRead, Undo};
use crate::tx::{RecoveredTx, TxKind};
use crate::types::{Address, Amount, ChainId, Nonce, Weight};

/// Why a transaction cannot be included in a block at all (as opposed to failing inside one).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TxInvalid {
    /// Signed for another chain.
    #[error("wrong chain id: expected {expected}, got {got}")]
    WrongChainId {
        /// This chain's id.
        expected: ChainId,
        /// The transaction's.
        got: ChainId,
    },
    /// Not the sender's next nonce.
    #[error("nonce mismatch: account expects {expected}, transaction has {got}")]
    NonceMismatch {
        /// The account's nonce.
        expected: Nonce,
        /// The transaction's.
        got: Nonce,
    },
    /// The fee is not acceptable under this chain's rule.
    #[error("{0}")]
    Fee(#[from] FeeError),
    /// The sender cannot pay the fee.
    #[error("cannot pay the fee: balance {balance}, fee {fee}")]
    CannotPayFee {
        /// Sender balance.
        balance: Amount,
        /// Fee due.
        fee: Amount,
    },
    /// Would push the block past its weight limit.
    #[error("block full")]
    BlockFull,
}

/// What a block's execution needs to know about its context.
#[derive(Debug, Clone, Copy)]
pub struct BlockEnv {
    /// This chain's id.
    pub chain_id: ChainId,
    /// The block's base fee per unit of weight.
    pub base_fee: Amount,
    /// Who receives the producer's share of fees.
    pub producer: Address,
    /// The block's weight limit.
    pub max_weight: Weight,
}

/// The result of executing a whole block.
#[derive(Debug, Clone)]
pub struct Executed {
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// New values of touched accounts.
    pub diff: StateDiff,
    /// Previous values of touched accounts.
    pub undo: Undo,
    /// Total weight used.
    pub weight_used: Weight,
}

/// Executes transactions one at a time on an overlay of the state.
pub struct BlockExecutor<'a> {
    overlay: Overlay<'a>,
    fee_rule: &'a dyn FeeRule,
    env: BlockEnv,
    receipts: Vec<Receipt>,
    weight_used: Weight,
}

impl<'a> BlockExecutor<'a> {
    /// Starts a block on `state`.
    pub fn new(state: &'a dyn StateRead, fee_rule: &'a dyn FeeRule, env: BlockEnv) -> Self {
        Self {
            overlay: Overlay::new(state),
            fee_rule,
            env,
            receipts: Vec::new(),
            weight_used: 0,
        }
    }

    /// Weight used so far.
    pub fn weight_used(&self) -> Weight {
        self.weight_used
    }

    /// Applies one transaction; on `Err` nothing changed and the transaction is not in the block.
    pub fn push(&mut self, tx: &RecoveredTx) -> Result<(), TxInvalid> {
        let weight = tx.size() as Weight;
        if self.weight_used + weight > self.env.max_weight {
            return Err(TxInvalid::BlockFull);
        }
        let t = tx.tx();
        if t.chain_id != self.env.chain_id {
            return Err(TxInvalid::WrongChainId {
                expected: self.env.chain_id,
                got: t.chain_id,
            });
        }
        let sender = tx.sender();
        let mut acct = self.overlay.account(&sender);
        if acct.nonce != t.nonce {
            return Err(TxInvalid::NonceMismatch {
                expected: acct.nonce,
                got: t.nonce,
            });
        }
        let charge = self.fee_rule.charge(&t.fee, weight, self.env.base_fee)?;
        let Some(after_fee) = acct.balance.checked_sub(charge.total) else {
            return Err(TxInvalid::CannotPayFee {
                balance: acct.balance,
                fee: charge.total,
            });
        };
        // The totals cannot overflow while supply fits in u128; check anyway, before writing.
        let burned = self
            .overlay
            .totals
            .burned_fees
            .checked_add(charge.burned)
            .ok_or(TxInvalid::Fee(FeeError::Overflow))?;

        let before = acct;
        acct.balance = after_fee;
        acct.nonce += 1;
        self.overlay.set(sender, acct);
        let mut producer = self.overlay.account(&self.env.producer);
        let Some(credited) = producer.balance.checked_add(charge.to_producer) else {
            self.overlay.set(sender, before);
            return Err(TxInvalid::Fee(FeeError::Overflow));
        };
        producer.balance = credited;
        self.overlay.set(self.env.producer, producer);
        self.overlay.totals.burned_fees = burned;

        let failure = match &t.kind {
            TxKind::Transfer { to, amount } => self.transfer(sender, *to, *amount),
        };
        self.weight_used += weight;
        self.receipts.push(Receipt {
            tx_hash: tx.hash(),
            failure,
            fee_paid: charge.total,
            fee_to_producer: charge.to_producer,
            fee_burned: charge.burned,
            weight,
            peg_event: None,
        });
        Ok(())
    }

    fn transfer(&mut self, from: Address, to: Address, amount: Amount) -> Option<FailureReason> {
        let mut src = self.overlay.account(&from);
        let Some(left) = src.balance.checked_sub(amount) else {
            return Some(FailureReason::InsufficientBalance {
                balance: src.balance,
                needed: amount,
            });
        };
        if from == to {
            return None;
        }
        let mut dst = self.overlay.account(&to);
        let Some(credited) = dst.balance.checked_add(amount) else {
            return Some(FailureReason::Overflow);
        };
        src.balance = left;
        dst.balance = credited;
        self.overlay.set(from, src);
        self.overlay.set(to, dst);
        None
    }

    /// The block's receipts, diff and undo journal.
    pub fn finish(self) -> Executed {
        let (diff, undo) = self.overlay.finish();
        Executed {
            receipts: self.receipts,
            diff,
            undo,
            weight_used: self.weight_used,
        }
    }
}

/// Executes a received block's transactions; any non-includable transaction invalidates the block.
pub fn execute_block(
    state: &dyn StateRead,
    fee_rule: &dyn FeeRule,
    env: BlockEnv,
    txs: &[RecoveredTx],
) -> Result<Executed, (usize, TxInvalid)> {
    let mut ex = BlockExecutor::new(state, fee_rule, env);
    for (i, tx) in txs.iter().enumerate() {
        ex.push(tx).map_err(|e| (i, e))?;
    }
    Ok(ex.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::fee::{BaseFeeRule, FeeRateRule};
    use crate::state::{Account, State};
    use crate::tx::{Fee, Transaction};

    fn env(base_fee: Amount) -> BlockEnv {
        BlockEnv {
            chain_id: 1,
            base_fee,
            producer: Address([0xaa; 20]),
            max_weight: 1_000_000,
        }
    }

    fn transfer(key: &SecretKey, nonce: u64, to: Address, amount: u128, fee: Fee) -> RecoveredTx {
        Transaction {
            chain_id: 1,
            nonce,
            fee,
            kind: TxKind::Transfer {
                to,
                amount: Amount(amount),
            },
        }
        .sign(key)
        .recover()
        .unwrap()
    }

    #[test]
    fn fee_rate_transfer_moves_coins_and_pays_producer() {
        let k = SecretKey::random();
        let mut state = State::default();
        state.insert(
            k.address(),
            Account {
                balance: Amount(1_000_000),
                nonce: 0,
            },
        );
        let rule = FeeRateRule {
            min_fee_rate: Amount(1),
        };
        let to = Address([5; 20]);
        let tx = transfer(&k, 0, to, 1000, Fee::Flat { fee: Amount(500) });
        let ex =
            execute_block(&state, &rule, env(Amount::ZERO), std::slice::from_ref(&tx)).unwrap();
        assert!(ex.receipts[0].success());
        state.apply_diff(&ex.diff);
        assert_eq!(
            state.account(&k.address()).balance,
            Amount(1_000_000 - 1500)
        );
        assert_eq!(state.account(&k.address()).nonce, 1);
        assert_eq!(state.account(&to).balance, Amount(1000));
        assert_eq!(state.account(&Address([0xaa; 20])).balance, Amount(500));
        // Replaying the same transaction is a nonce mismatch.
        assert_eq!(
            execute_block(&state, &rule, env(Amount::ZERO), &[tx])
                .err()
                .map(|e| e.1),
            Some(TxInvalid::NonceMismatch {
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn base_fee_transfer_burns_and_tips_and_failed_transfer_still_pays() {
        let k = SecretKey::random();
        let mut state = State::default();
        state.insert(
            k.address(),
            Account {
                balance: Amount(10_000_000),
                nonce: 0,
            },
        );
        let rule = BaseFeeRule {
            initial_base_fee: Amount(10),
            min_base_fee: Amount(1),
        };
        let fee = Fee::Dynamic {
            max_fee: Amount(100),
            max_tip: Amount(2),
        };
        let to = Address([6; 20]);
        let ok = transfer(&k, 0, to, 1000, fee.clone());
        let too_much = transfer(&k, 1, to, 100_000_000, fee);
        let w0 = ok.size() as u128;
        let w1 = too_much.size() as u128;
        let ex = execute_block(&state, &rule, env(Amount(10)), &[ok, too_much]).unwrap();
        assert!(ex.receipts[0].success());
        assert!(matches!(
            ex.receipts[1].failure,
            Some(FailureReason::InsufficientBalance { .. })
        ));
        state.apply_diff(&ex.diff);
        assert_eq!(state.totals.burned_fees, Amount(10 * (w0 + w1)));
        assert_eq!(
            state.account(&Address([0xaa; 20])).balance,
            Amount(2 * (w0 + w1))
        );
        assert_eq!(
            state.account(&k.address()).balance,
            Amount(10_000_000 - 1000 - 12 * (w0 + w1))
        );
        assert_eq!(state.account(&k.address()).nonce, 2);
        // Conservation: balances + burned equal the starting supply.
        assert_eq!(
            state
                .total_balance()
                .unwrap()
                .checked_add(state.totals.burned_fees),
            Some(Amount(10_000_000))
        );
    }
}
