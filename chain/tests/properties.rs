//! Property tests of block execution under both fee rules. Any sequence of blocks of random
//! transfers (valid or not: nonces off by one, balances too small, amounts and fees up to
//! `u128::MAX`, the wrong fee kind for the rule), applied and then undone newest first, gives
//! back exactly the state it started from. And execution never makes coins: under the
//! fee-rate rule (mainchain) the total of all balances never changes, under the base-fee rule
//! (sidechain) it falls by exactly the fees burned.

use chain::execution::{BlockEnv, BlockExecutor};
use chain::fee::{BaseFeeRule, FeeRateRule, FeeRule};
use chain::state::State;
use primitives::account::Account;
use primitives::crypto::SecretKey;
use primitives::tx::{Fee, Transaction, TxKind};
use primitives::types::{Address, Amount};
use proptest::prelude::*;

/// One transfer to try: from key `from` to key `to` (4: an address no key holds).
#[derive(Debug, Clone)]
struct Spec {
    from: usize,
    to: usize,
    /// Added to the sender's next nonce (0 valid; -1 and +1 invalid).
    nonce_offset: i64,
    amount: u128,
    fee: u128,
    tip: u128,
    dynamic: bool,
}

fn big() -> impl Strategy<Value = u128> {
    prop_oneof![
        0..10_000u128,
        0..10u128.pow(24),
        Just(u128::MAX),
        any::<u128>(),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..4usize,
        0..5usize,
        prop_oneof![3 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64)],
        big(),
        big(),
        0..1000u128,
        any::<bool>(),
    )
        .prop_map(|(from, to, nonce_offset, amount, fee, tip, dynamic)| Spec {
            from,
            to,
            nonce_offset,
            amount,
            fee,
            tip,
            dynamic,
        })
}

fn keys() -> Vec<SecretKey> {
    (1..=4u8)
        .map(|i| SecretKey::from_hex(&format!("0x{:064x}", u64::from(i) * 7919)).expect("key"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn blocks_undone_give_back_the_state_and_no_block_makes_coins(
        blocks in prop::collection::vec(prop::collection::vec(spec(), 0..6), 1..4),
        base_fee_rule in any::<bool>(),
    ) {
        let keys = keys();
        let stranger = Address([0x55; 20]);
        let producer = Address([0xaa; 20]);
        let mut state = State::default();
        for (i, k) in keys.iter().enumerate() {
            // One poor sender, so balances run out.
            let balance = if i == 3 { Amount(50_000) } else { Amount(10u128.pow(24)) };
            state.insert(k.address(), Account { balance, nonce: 0 });
        }
        let original = state.clone();
        let fee_rate = FeeRateRule { min_fee_rate: Amount(1) };
        let base_fee = BaseFeeRule { initial_base_fee: Amount(7), min_base_fee: Amount(1) };
        let rule: &dyn FeeRule = if base_fee_rule { &base_fee } else { &fee_rate };
        let mut undos = Vec::new();
        for (h, block) in blocks.iter().enumerate() {
            let env = BlockEnv {
                chain_id: 1,
                base_fee: if base_fee_rule { Amount(7) } else { Amount::ZERO },
                producer,
                max_weight: 1_000_000,
                number: h as u64 + 1,
                timestamp_ms: h as u64 * 1000,
            };
            let mut ex = BlockExecutor::new(&state, rule, None, env);
            let mut next_nonce: Vec<u64> =
                keys.iter().map(|k| state.account(&k.address()).nonce).collect();
            for s in block {
                let to = keys.get(s.to).map_or(stranger, SecretKey::address);
                let nonce = next_nonce[s.from].saturating_add_signed(s.nonce_offset);
                let fee = if s.dynamic {
                    Fee::Dynamic { max_fee: Amount(s.fee), max_tip: Amount(s.tip) }
                } else {
                    Fee::Flat { fee: Amount(s.fee) }
                };
                let tx = Transaction {
                    chain_id: 1,
                    nonce,
                    fee,
                    kind: TxKind::Transfer { to, amount: Amount(s.amount) },
                }
                .sign(&keys[s.from])
                .recover()
                .expect("our own signature recovers");
                if ex.push(&tx).is_ok() {
                    next_nonce[s.from] = nonce + 1;
                }
            }
            let done = ex.finish();
            let total_before = state.total_balance().expect("no overflow");
            let burned_before = state.totals.burned_fees;
            state.apply_diff(&done.diff);
            let total_after = state.total_balance().expect("no overflow");
            let burned = state.totals.burned_fees.0 - burned_before.0;
            prop_assert_eq!(
                total_after.0 + burned,
                total_before.0,
                "block {}: coins made or lost", h + 1
            );
            if !base_fee_rule {
                prop_assert_eq!(burned, 0, "the fee-rate rule burns nothing");
            }
            undos.push(done.undo);
        }
        for undo in undos.iter().rev() {
            state.apply_undo(undo);
        }
        prop_assert_eq!(state, original);
    }
}

fn fee() -> impl Strategy<Value = Fee> {
    prop_oneof![
        big().prop_map(|fee| Fee::Flat { fee: Amount(fee) }),
        (big(), big()).prop_map(|(max_fee, max_tip)| Fee::Dynamic {
            max_fee: Amount(max_fee),
            max_tip: Amount(max_tip),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Either rule, any fee, weight and base fee, extreme values included: the charge is an
    /// answer or a refusal, never a panic; what is taken is exactly what goes to the producer
    /// plus what is burned, never more than the most the transaction can be charged (when that
    /// bound itself fits in u128); and the next base fee is always defined and never below the
    /// rule's floor.
    #[test]
    fn a_fee_charge_splits_exactly_and_never_exceeds_its_bound(
        fee in fee(),
        weight in prop_oneof![0..100_000u64, Just(u64::MAX), any::<u64>()],
        base in big(),
        used in any::<u64>(),
        max_weight in 1..u64::MAX,
        base_fee_rule in any::<bool>(),
    ) {
        let fee_rate = FeeRateRule { min_fee_rate: Amount(1) };
        let base_rule = BaseFeeRule { initial_base_fee: Amount(7), min_base_fee: Amount(1) };
        let rule: &dyn FeeRule = if base_fee_rule { &base_rule } else { &fee_rate };
        if let Ok(c) = rule.charge(&fee, weight, Amount(base)) {
            prop_assert_eq!(Some(c.total.0), c.to_producer.0.checked_add(c.burned.0));
            // The bound can overflow where the charge does not (a huge max_fee at a low base
            // fee): admission then refuses what a block could still carry at a smaller cost.
            if let Ok(bound) = rule.max_charge(&fee, weight) {
                prop_assert!(c.total <= bound, "{c:?} above {bound}");
            }
            if !base_fee_rule {
                prop_assert_eq!(c.burned, Amount::ZERO);
            }
        }
        let next = rule.next_base_fee(Amount(base), used.min(max_weight), max_weight);
        if base_fee_rule {
            prop_assert!(next >= Amount(1), "below the floor: {next}");
        }
    }
}
