//! Applying transactions to state: nonces, balances, fees.

use crate::fee::{FeeCharge, FeeError, FeeRule};
use crate::state::{Overlay, StateDiff, StateRead, Undo};
use primitives::account::Totals;
use primitives::block::{FailureReason, PegEvent, Receipt};
use primitives::crypto::Signature;
use primitives::peg::{
    check_payout, check_source, escrow_address, peg_for, record_payout, record_source, resolve,
    totals_on, Direction, PegConfig, PegError, PegOp,
};
use primitives::tx::{RecoveredTx, TxKind};
use primitives::types::{Address, Amount, BlockNumber, ChainId, Hash, Nonce, Weight};

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
    /// The block's height (recorded with processed peg ids).
    pub number: BlockNumber,
    /// The block's timestamp (the peg's daily limits count by its UTC day).
    pub timestamp_ms: u64,
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
    peg: Option<&'a PegConfig>,
    env: BlockEnv,
    receipts: Vec<Receipt>,
    weight_used: Weight,
}

impl<'a> BlockExecutor<'a> {
    /// Starts a block on `state`.
    pub fn new(
        state: &'a dyn StateRead,
        fee_rule: &'a dyn FeeRule,
        peg: Option<&'a PegConfig>,
        env: BlockEnv,
    ) -> Self {
        let mut overlay = Overlay::new(state);
        overlay.totals = totals_on(overlay.totals, env.timestamp_ms);
        Self {
            overlay,
            fee_rule,
            peg,
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
        let weight = tx.weight() as Weight;
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
        let charge = if t.kind.is_fee_exempt() {
            FeeCharge::default()
        } else {
            self.fee_rule.charge(&t.fee, weight, self.env.base_fee)?
        };
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

        let kind = resolve(self.peg, &t.kind, sender);
        let outcome = match kind.as_ref() {
            TxKind::Transfer { to, amount } => {
                self.transfer(sender, *to, *amount).map_or(Ok(None), Err)
            }
            TxKind::Lock { amount, recipient } => self.source(
                Direction::MainToSide,
                sender,
                *amount,
                *recipient,
                tx.hash(),
            ),
            TxKind::Burn { amount, recipient } => self.source(
                Direction::SideToMain,
                sender,
                *amount,
                *recipient,
                tx.hash(),
            ),
            TxKind::Mint {
                id,
                recipient,
                amount,
                signatures,
            } => self.payout(Direction::MainToSide, *id, *recipient, *amount, signatures),
            TxKind::Release {
                id,
                recipient,
                amount,
                signatures,
            } => self.payout(Direction::SideToMain, *id, *recipient, *amount, signatures),
        };
        let (failure, peg_event) = match outcome {
            Ok(event) => (None, event),
            Err(f) => (Some(f), None),
        };
        self.weight_used += weight;
        self.receipts.push(Receipt {
            tx_hash: tx.hash(),
            failure,
            fee_paid: charge.total,
            fee_to_producer: charge.to_producer,
            fee_burned: charge.burned,
            weight,
            peg_event,
        });
        Ok(())
    }

    /// The peg `op` runs under on this chain, or the refusal.
    fn peg(&self, op: PegOp) -> Result<&'a PegConfig, FailureReason> {
        peg_for(self.peg, op).map_err(refused)
    }

    fn debit(&mut self, from: Address, amount: Amount) -> Result<(), FailureReason> {
        let mut src = self.overlay.account(&from);
        let left = src
            .balance
            .checked_sub(amount)
            .ok_or(FailureReason::InsufficientBalance {
                balance: src.balance,
                needed: amount,
            })?;
        src.balance = left;
        self.overlay.set(from, src);
        Ok(())
    }

    fn credit(&mut self, to: Address, amount: Amount) -> Result<(), FailureReason> {
        let mut dst = self.overlay.account(&to);
        dst.balance = dst
            .balance
            .checked_add(amount)
            .ok_or(FailureReason::Overflow)?;
        self.overlay.set(to, dst);
        Ok(())
    }

    /// Checks a whole operation before any coin moves, so a refusal changes nothing.
    fn precheck(&self, check: Result<(), PegError>) -> Result<(), FailureReason> {
        check.map_err(refused)
    }

    /// Moves coins leg by leg, then sets the totals `record` computes; on any failure every
    /// account already written is put back and the totals stay, so a failed operation moves
    /// and counts nothing.
    fn settle(
        &mut self,
        legs: &[Leg],
        record: impl FnOnce(&Totals) -> Option<Totals>,
    ) -> Result<(), FailureReason> {
        let mut written = Vec::with_capacity(legs.len());
        let mut moved = Ok(());
        for leg in legs {
            let (Leg::Debit(addr, _) | Leg::Credit(addr, _)) = *leg;
            let before = self.overlay.account(&addr);
            moved = match *leg {
                Leg::Debit(from, amount) => self.debit(from, amount),
                Leg::Credit(to, amount) => self.credit(to, amount),
            };
            if moved.is_err() {
                break;
            }
            written.push((addr, before));
        }
        let totals =
            moved.and_then(|()| record(&self.overlay.totals).ok_or(FailureReason::Overflow));
        match totals {
            Ok(t) => {
                self.overlay.totals = t;
                Ok(())
            }
            Err(e) => {
                for (addr, acct) in written.into_iter().rev() {
                    self.overlay.set(addr, acct);
                }
                Err(e)
            }
        }
    }

    /// A Lock or a Burn: the sender's coins leave this chain, into the escrow on main and
    /// destroyed on side, and count against today's limit of `direction`.
    fn source(
        &mut self,
        direction: Direction,
        sender: Address,
        amount: Amount,
        recipient: Address,
        id: Hash,
    ) -> Result<Option<PegEvent>, FailureReason> {
        let peg = self.peg(PegOp::source(direction))?;
        self.precheck(check_source(peg, &self.overlay.totals, direction, amount))?;
        let legs = [
            Leg::Debit(sender, amount),
            Leg::Credit(escrow_address(), amount),
        ];
        let legs = match direction {
            Direction::MainToSide => &legs[..],
            Direction::SideToMain => &legs[..1],
        };
        self.settle(legs, |t| record_source(t, direction, amount))?;
        Ok(Some(match direction {
            Direction::MainToSide => PegEvent::Deposit {
                id,
                amount,
                recipient,
            },
            Direction::SideToMain => PegEvent::Withdrawal {
                id,
                amount,
                recipient,
            },
        }))
    }

    /// A Mint or a Release: pays `recipient` an attested transfer of `direction`, once per
    /// id; a Release pays it and the peg-out fee out of the escrow.
    fn payout(
        &mut self,
        direction: Direction,
        id: Hash,
        recipient: Address,
        amount: Amount,
        signatures: &[Signature],
    ) -> Result<Option<PegEvent>, FailureReason> {
        let peg = self.peg(PegOp::payout(direction))?;
        let processed = self.overlay.processed(&id);
        self.precheck(check_payout(
            peg, direction, id, recipient, amount, signatures, processed,
        ))?;
        let fee = peg.payout_fee(direction);
        let record = |t: &Totals| record_payout(t, direction, amount, fee);
        match direction {
            Direction::MainToSide => self.settle(&[Leg::Credit(recipient, amount)], record)?,
            Direction::SideToMain => {
                let total = amount.checked_add(fee).ok_or(FailureReason::Overflow)?;
                let escrow = escrow_address();
                let held = self.overlay.account(&escrow).balance;
                if held < total {
                    return Err(refused(PegError::EscrowShort {
                        escrow: held,
                        needed: total,
                    }));
                }
                let legs = [
                    Leg::Debit(escrow, total),
                    Leg::Credit(recipient, amount),
                    Leg::Credit(peg.params.terms.fee_recipient, fee),
                ];
                self.settle(&legs, record)?
            }
        }
        self.overlay.mark_processed(id, self.env.number);
        Ok(Some(match direction {
            Direction::MainToSide => PegEvent::Minted {
                id,
                amount,
                recipient,
            },
            Direction::SideToMain => PegEvent::Released {
                id,
                amount,
                recipient,
                fee,
            },
        }))
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

/// One movement of a peg operation's coins.
#[derive(Clone, Copy)]
enum Leg {
    /// Take the amount from the account.
    Debit(Address, Amount),
    /// Pay the amount to the account.
    Credit(Address, Amount),
}

fn refused(e: PegError) -> FailureReason {
    FailureReason::PegRefused {
        code: e.code().to_string(),
        message: e.to_string(),
    }
}

/// Executes a received block's transactions; any non-includable transaction invalidates the block.
pub fn execute_block(
    state: &dyn StateRead,
    fee_rule: &dyn FeeRule,
    peg: Option<&PegConfig>,
    env: BlockEnv,
    txs: &[RecoveredTx],
) -> Result<Executed, (usize, TxInvalid)> {
    let mut ex = BlockExecutor::new(state, fee_rule, peg, env);
    for (i, tx) in txs.iter().enumerate() {
        ex.push(tx).map_err(|e| (i, e))?;
    }
    Ok(ex.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fee::{BaseFeeRule, FeeRateRule};
    use crate::state::State;
    use primitives::account::Account;
    use primitives::crypto::SecretKey;
    use primitives::tx::{Fee, Transaction};

    fn env(base_fee: Amount) -> BlockEnv {
        BlockEnv {
            chain_id: 1,
            base_fee,
            producer: Address([0xaa; 20]),
            max_weight: 1_000_000,
            number: 1,
            timestamp_ms: 0,
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
        let ex = execute_block(
            &state,
            &rule,
            None,
            env(Amount::ZERO),
            std::slice::from_ref(&tx),
        )
        .unwrap();
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
            execute_block(&state, &rule, None, env(Amount::ZERO), &[tx])
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
        let ex = execute_block(&state, &rule, None, env(Amount(10)), &[ok, too_much]).unwrap();
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

#[cfg(test)]
mod peg_tests {
    use super::*;
    use crate::fee::FeeRateRule;
    use crate::state::State;
    use primitives::account::Account;
    use primitives::crypto::SecretKey;
    use primitives::peg::{domain, withdrawal_address, PegMessage, PegParams, PegRole, PegTerms};
    use primitives::tx::{Fee, Transaction};

    struct Fixture {
        members: Vec<SecretKey>,
        main: PegConfig,
        side: PegConfig,
        user: SecretKey,
        fee_rule: FeeRateRule,
    }

    fn fixture() -> Fixture {
        let members: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
        let params = PegParams {
            members: members.iter().map(|k| k.address()).collect(),
            terms: PegTerms {
                threshold: 2,
                main_confirmations: 1,
                side_confirmations: 1,
                min_amount: Amount(100),
                max_amount: Amount(10_000),
                daily_limit_deposits: Amount(15_000),
                daily_limit_withdrawals: Amount(15_000),
                peg_out_fee: Amount(10),
                fee_recipient: Address([0xfe; 20]),
            },
            counterpart_genesis: Hash([1; 32]),
        };
        let d = domain(&Hash([1; 32]), &Hash([2; 32]));
        Fixture {
            main: PegConfig {
                role: PegRole::Main,
                params: params.clone(),
                domain: d,
            },
            side: PegConfig {
                role: PegRole::Side,
                params,
                domain: d,
            },
            members,
            user: SecretKey::random(),
            fee_rule: FeeRateRule {
                min_fee_rate: Amount(0),
            },
        }
    }

    fn env(number: u64, timestamp_ms: u64) -> BlockEnv {
        BlockEnv {
            chain_id: 1,
            base_fee: Amount::ZERO,
            producer: Address([0xaa; 20]),
            max_weight: 1_000_000,
            number,
            timestamp_ms,
        }
    }

    fn signed(key: &SecretKey, nonce: u64, kind: TxKind) -> RecoveredTx {
        Transaction {
            chain_id: 1,
            nonce,
            fee: Fee::Flat { fee: Amount(0) },
            kind,
        }
        .sign(key)
        .recover()
        .unwrap()
    }

    fn attest(f: &Fixture, signers: &[usize], msg: &PegMessage) -> Vec<Signature> {
        signers
            .iter()
            .map(|i| f.members[*i].sign_prehash(&msg.signing_hash()))
            .collect()
    }

    fn run(
        state: &mut State,
        peg: &PegConfig,
        f: &Fixture,
        e: BlockEnv,
        txs: &[RecoveredTx],
    ) -> Vec<Receipt> {
        let ex = execute_block(state, &f.fee_rule, Some(peg), e, txs).unwrap();
        state.apply_diff(&ex.diff);
        ex.receipts
    }

    fn refused_code(r: &Receipt) -> Option<&str> {
        match &r.failure {
            Some(FailureReason::PegRefused { code, .. }) => Some(code.as_str()),
            _ => None,
        }
    }

    #[test]
    fn a_plain_transfer_to_the_escrow_deposits_and_one_to_the_withdrawal_address_withdraws() {
        let f = fixture();
        let user = f.user.address();
        let rich = Account {
            balance: Amount(50_000),
            nonce: 0,
        };
        let to = |to, nonce, amount| {
            signed(
                &f.user,
                nonce,
                TxKind::Transfer {
                    to,
                    amount: Amount(amount),
                },
            )
        };
        // mainchain: a Lock for the sender; out of range is refused like a Lock.
        let mut main = State::default();
        main.insert(user, rich);
        let dep = to(escrow_address(), 0, 1000);
        let small = to(escrow_address(), 1, 99);
        let r = run(&mut main, &f.main, &f, env(1, 0), &[dep.clone(), small]);
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Deposit {
                id: dep.hash(),
                amount: Amount(1000),
                recipient: user
            })
        );
        assert_eq!(refused_code(&r[1]), Some("peg_amount_out_of_range"));
        assert_eq!(main.totals.locked, Amount(1000));
        assert_eq!(main.account(&escrow_address()).balance, Amount(1000));
        assert_eq!(main.account(&user).balance, Amount(49_000));
        // The withdrawal address means nothing on the mainchain: a plain transfer.
        let plain = to(withdrawal_address(), 2, 5);
        let r = run(&mut main, &f.main, &f, env(2, 0), &[plain]);
        assert!(r[0].success() && r[0].peg_event.is_none());

        // sidechain: a Burn to the sender.
        let mut side = State::default();
        side.insert(user, rich);
        side.totals.minted = Amount(50_000);
        let wd = to(withdrawal_address(), 0, 600);
        let r = run(&mut side, &f.side, &f, env(3, 0), std::slice::from_ref(&wd));
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Withdrawal {
                id: wd.hash(),
                amount: Amount(600),
                recipient: user
            })
        );
        assert_eq!(side.totals.burned_peg, Amount(600));
        assert_eq!(side.account(&withdrawal_address()).balance, Amount::ZERO);
    }

    #[test]
    fn deposit_then_mint_once_with_a_threshold_attestation() {
        let f = fixture();
        let mut main = State::default();
        main.insert(
            f.user.address(),
            Account {
                balance: Amount(50_000),
                nonce: 0,
            },
        );
        let recipient = Address([7; 20]);
        let lock = signed(
            &f.user,
            0,
            TxKind::Lock {
                amount: Amount(1000),
                recipient,
            },
        );
        let r = run(
            &mut main,
            &f.main,
            &f,
            env(1, 0),
            std::slice::from_ref(&lock),
        );
        assert!(r[0].success());
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Deposit {
                id: lock.hash(),
                amount: Amount(1000),
                recipient
            })
        );
        assert_eq!(main.account(&escrow_address()).balance, Amount(1000));
        assert_eq!(main.totals.locked, Amount(1000));

        // Mint on the sidechain: M-1 signatures fail, M succeed, a replay fails.
        let mut side = State::default();
        let msg = PegMessage {
            domain: f.side.domain,
            direction: Direction::MainToSide,
            id: lock.hash(),
            recipient,
            amount: Amount(1000),
        };
        let submitter = &f.members[2];
        let weak = signed(
            submitter,
            0,
            TxKind::Mint {
                id: lock.hash(),
                recipient,
                amount: Amount(1000),
                signatures: attest(&f, &[0], &msg),
            },
        );
        let good = signed(
            submitter,
            1,
            TxKind::Mint {
                id: lock.hash(),
                recipient,
                amount: Amount(1000),
                signatures: attest(&f, &[0, 1], &msg),
            },
        );
        let replay = signed(
            submitter,
            2,
            TxKind::Mint {
                id: lock.hash(),
                recipient,
                amount: Amount(1000),
                signatures: attest(&f, &[1, 2], &msg),
            },
        );
        let r = run(&mut side, &f.side, &f, env(5, 0), &[weak, good, replay]);
        assert_eq!(refused_code(&r[0]), Some("peg_bad_attestation"));
        assert!(r[1].success(), "{:?}", r[1]);
        assert_eq!(refused_code(&r[2]), Some("peg_id_used"));
        assert_eq!(side.account(&recipient).balance, Amount(1000));
        assert_eq!(side.totals.minted, Amount(1000));
        assert_eq!(side.processed(&lock.hash()), Some(5));
        // Payouts pay no fee: the submitter needs no sidechain coins.
        assert!(r.iter().all(|x| x.fee_paid == Amount::ZERO));
    }

    #[test]
    fn withdrawal_burns_then_releases_minus_the_fee_and_keeps_invariant_two() {
        let f = fixture();
        // Sidechain with 1000 minted to the user (as if deposited).
        let mut side = State::default();
        side.insert(
            f.user.address(),
            Account {
                balance: Amount(1000),
                nonce: 0,
            },
        );
        side.totals.minted = Amount(1000);
        let main_recipient = Address([8; 20]);
        let too_small = signed(
            &f.user,
            0,
            TxKind::Burn {
                amount: Amount(99),
                recipient: main_recipient,
            },
        );
        let burn = signed(
            &f.user,
            1,
            TxKind::Burn {
                amount: Amount(600),
                recipient: main_recipient,
            },
        );
        let r = run(
            &mut side,
            &f.side,
            &f,
            env(3, 0),
            &[too_small, burn.clone()],
        );
        assert_eq!(refused_code(&r[0]), Some("peg_amount_out_of_range"));
        assert!(r[1].success());
        // The too-small withdrawal burned nothing.
        assert_eq!(side.account(&f.user.address()).balance, Amount(400));
        assert_eq!(side.totals.burned_peg, Amount(600));

        let mut main = State::default();
        main.insert(
            escrow_address(),
            Account {
                balance: Amount(1000),
                nonce: 0,
            },
        );
        main.totals.locked = Amount(1000);
        let msg = PegMessage {
            domain: f.main.domain,
            direction: Direction::SideToMain,
            id: burn.hash(),
            recipient: main_recipient,
            amount: Amount(590),
        };
        let sigs = attest(&f, &[1, 2], &msg);
        // Signatures over a different amount are worthless.
        let greedy = signed(
            &f.members[0],
            0,
            TxKind::Release {
                id: burn.hash(),
                recipient: main_recipient,
                amount: Amount(600),
                signatures: sigs.clone(),
            },
        );
        let release = signed(
            &f.members[0],
            1,
            TxKind::Release {
                id: burn.hash(),
                recipient: main_recipient,
                amount: Amount(590),
                signatures: sigs,
            },
        );
        let r = run(&mut main, &f.main, &f, env(9, 0), &[greedy, release]);
        assert_eq!(refused_code(&r[0]), Some("peg_bad_attestation"));
        assert!(r[1].success(), "{:?}", r[1]);
        assert_eq!(main.account(&main_recipient).balance, Amount(590));
        assert_eq!(
            main.account(&f.main.params.terms.fee_recipient).balance,
            Amount(10)
        );
        // Invariant 2 at rest: escrow == side supply + burned fees + unreleased burns.
        let escrow = main.account(&escrow_address()).balance.0;
        let side_supply = side.total_balance().unwrap().0;
        let unreleased =
            side.totals.burned_peg.0 - (main.totals.released.0 + main.totals.peg_fees.0);
        assert_eq!(escrow, side_supply + side.totals.burned_fees.0 + unreleased);
    }

    #[test]
    fn daily_limit_and_wrong_chain_operations_are_refused_without_moving_coins() {
        let f = fixture();
        let mut main = State::default();
        main.insert(
            f.user.address(),
            Account {
                balance: Amount(100_000),
                nonce: 0,
            },
        );
        let to = Address([7; 20]);
        let locks: Vec<_> = (0..3)
            .map(|n| {
                signed(
                    &f.user,
                    n,
                    TxKind::Lock {
                        amount: Amount(6000),
                        recipient: to,
                    },
                )
            })
            .collect();
        let r = run(&mut main, &f.main, &f, env(1, 1000), &locks);
        assert!(r[0].success() && r[1].success());
        assert_eq!(refused_code(&r[2]), Some("peg_daily_limit"));
        assert_eq!(main.account(&escrow_address()).balance, Amount(12_000));
        // Next UTC day the counter starts over.
        let next = signed(
            &f.user,
            3,
            TxKind::Lock {
                amount: Amount(6000),
                recipient: to,
            },
        );
        let r = run(&mut main, &f.main, &f, env(2, 86_400_000 + 5), &[next]);
        assert!(r[0].success());
        assert_eq!(main.totals.day_deposits, Amount(6000));
        // A Burn on the mainchain is refused; nothing moves.
        let burn = signed(
            &f.user,
            4,
            TxKind::Burn {
                amount: Amount(500),
                recipient: to,
            },
        );
        let before = main.account(&f.user.address()).balance;
        let r = run(&mut main, &f.main, &f, env(3, 86_400_000 + 10), &[burn]);
        assert_eq!(refused_code(&r[0]), Some("peg_wrong_chain"));
        assert_eq!(main.account(&f.user.address()).balance, before);
    }

    /// Executes `txs` and returns the receipts, the touched addresses (sorted) and the totals
    /// after: what a fold of the four operations by direction must keep exactly.
    fn touched(
        state: &State,
        peg: &PegConfig,
        f: &Fixture,
        txs: &[RecoveredTx],
    ) -> (Vec<Receipt>, Vec<Address>, primitives::account::Totals) {
        let ex = execute_block(state, &f.fee_rule, Some(peg), env(4, 0), txs).unwrap();
        let addrs = ex.diff.accounts.iter().map(|(a, _)| *a).collect();
        (ex.receipts, addrs, ex.diff.totals)
    }

    #[test]
    fn each_operation_moves_only_its_own_accounts_and_counters() {
        let f = fixture();
        let producer = Address([0xaa; 20]);
        let recipient = Address([7; 20]);
        let fee_recipient = f.main.params.terms.fee_recipient;
        let escrow = escrow_address();
        let funded = |who: Address, balance: u128| {
            let mut s = State::default();
            s.insert(
                who,
                Account {
                    balance: Amount(balance),
                    nonce: 0,
                },
            );
            s
        };
        let sorted = |mut v: Vec<Address>| {
            v.sort();
            v
        };
        let user = f.user.address();
        let source = |kind: fn(Amount, Address) -> TxKind, amount: u128| {
            signed(&f.user, 0, kind(Amount(amount), recipient))
        };
        let lock = |amount, recipient| TxKind::Lock { amount, recipient };
        let burn = |amount, recipient| TxKind::Burn { amount, recipient };

        // Lock: the sender pays the escrow; only the deposit counters move.
        let tx = source(lock, 1000);
        let (r, addrs, t) = touched(&funded(user, 5000), &f.main, &f, std::slice::from_ref(&tx));
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Deposit {
                id: tx.hash(),
                amount: Amount(1000),
                recipient
            })
        );
        assert_eq!(addrs, sorted(vec![user, producer, escrow]));
        let want = primitives::account::Totals {
            locked: Amount(1000),
            day_deposits: Amount(1000),
            ..Default::default()
        };
        assert_eq!(t, want);

        // Burn: the coins are destroyed (no escrow on the sidechain); only withdrawal counters.
        let tx = source(burn, 1000);
        let (r, addrs, t) = touched(&funded(user, 5000), &f.side, &f, std::slice::from_ref(&tx));
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Withdrawal {
                id: tx.hash(),
                amount: Amount(1000),
                recipient
            })
        );
        assert_eq!(addrs, sorted(vec![user, producer]));
        let want = primitives::account::Totals {
            burned_peg: Amount(1000),
            day_withdrawals: Amount(1000),
            ..Default::default()
        };
        assert_eq!(t, want);

        // A Lock or Burn the sender cannot cover moves nothing and counts nothing.
        for (peg, kind) in [(&f.main, lock as fn(_, _) -> _), (&f.side, burn)] {
            let (r, addrs, t) = touched(&funded(user, 500), peg, &f, &[source(kind, 1000)]);
            assert!(matches!(
                r[0].failure,
                Some(FailureReason::InsufficientBalance { .. })
            ));
            assert_eq!(r[0].peg_event, None);
            assert_eq!(addrs, sorted(vec![user, producer]));
            assert_eq!(t, Default::default());
        }

        // Mint: only the recipient is paid; no escrow, no fee.
        let submitter = &f.members[0];
        let payout =
            |direction, amount: u128, kind: fn(Hash, Address, Amount, Vec<Signature>) -> TxKind| {
                let peg = match direction {
                    Direction::MainToSide => &f.side,
                    Direction::SideToMain => &f.main,
                };
                let msg = PegMessage {
                    domain: peg.domain,
                    direction,
                    id: Hash([3; 32]),
                    recipient,
                    amount: Amount(amount),
                };
                let sigs = attest(&f, &[0, 1], &msg);
                signed(submitter, 0, kind(msg.id, recipient, Amount(amount), sigs))
            };
        let mint = |id, recipient, amount, signatures| TxKind::Mint {
            id,
            recipient,
            amount,
            signatures,
        };
        let release = |id, recipient, amount, signatures| TxKind::Release {
            id,
            recipient,
            amount,
            signatures,
        };
        let tx = payout(Direction::MainToSide, 1000, mint);
        let (r, addrs, t) = touched(&State::default(), &f.side, &f, &[tx]);
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Minted {
                id: Hash([3; 32]),
                amount: Amount(1000),
                recipient
            })
        );
        assert_eq!(
            addrs,
            sorted(vec![submitter.address(), producer, recipient])
        );
        let want = primitives::account::Totals {
            minted: Amount(1000),
            ..Default::default()
        };
        assert_eq!(t, want);

        // Release: the escrow pays the recipient and the fee recipient.
        let tx = payout(Direction::SideToMain, 590, release);
        let (r, addrs, t) = touched(&funded(escrow, 600), &f.main, &f, std::slice::from_ref(&tx));
        assert_eq!(
            r[0].peg_event,
            Some(PegEvent::Released {
                id: Hash([3; 32]),
                amount: Amount(590),
                recipient,
                fee: Amount(10),
            })
        );
        assert_eq!(
            addrs,
            sorted(vec![
                submitter.address(),
                producer,
                escrow,
                recipient,
                fee_recipient
            ])
        );
        let want = primitives::account::Totals {
            released: Amount(590),
            peg_fees: Amount(10),
            ..Default::default()
        };
        assert_eq!(t, want);

        // An escrow one unit short moves nothing and marks nothing processed.
        let ex = execute_block(
            &funded(escrow, 599),
            &f.fee_rule,
            Some(&f.main),
            env(4, 0),
            &[tx],
        )
        .unwrap();
        assert_eq!(refused_code(&ex.receipts[0]), Some("peg_escrow_short"));
        let addrs: Vec<_> = ex.diff.accounts.iter().map(|(a, _)| *a).collect();
        assert_eq!(addrs, sorted(vec![submitter.address(), producer]));
        assert_eq!(ex.diff.totals, Default::default());
        assert!(ex.diff.processed.is_empty());
    }

    #[test]
    fn a_release_that_fails_midway_puts_every_coin_back() {
        let f = fixture();
        let recipient = Address([7; 20]);
        let escrow = escrow_address();
        let mut main = State::default();
        main.insert(
            escrow,
            Account {
                balance: Amount(600),
                nonce: 0,
            },
        );
        // The escrow pays and the recipient is paid before the fee credit overflows.
        let fee_recipient = f.main.params.terms.fee_recipient;
        let full = Account {
            balance: Amount(u128::MAX - 5),
            nonce: 0,
        };
        main.insert(fee_recipient, full);
        let msg = PegMessage {
            domain: f.main.domain,
            direction: Direction::SideToMain,
            id: Hash([4; 32]),
            recipient,
            amount: Amount(590),
        };
        let release = signed(
            &f.members[0],
            0,
            TxKind::Release {
                id: msg.id,
                recipient,
                amount: msg.amount,
                signatures: attest(&f, &[0, 1], &msg),
            },
        );
        let r = run(&mut main, &f.main, &f, env(2, 0), &[release]);
        assert_eq!(r[0].failure, Some(FailureReason::Overflow));
        assert_eq!(r[0].peg_event, None);
        assert_eq!(main.account(&escrow).balance, Amount(600));
        assert_eq!(main.account(&recipient).balance, Amount::ZERO);
        assert_eq!(main.account(&fee_recipient), full);
        assert_eq!(main.processed(&msg.id), None, "the id can still be paid");
        assert_eq!(
            (main.totals.released, main.totals.peg_fees),
            (Amount::ZERO, Amount::ZERO)
        );
    }
}
