//! The two fee rules behind one small trait: mainchain's fee rate, sidechain's base fee.

use primitives::eth::{per_gas, TRANSFER_GAS};
use primitives::tx::Fee;
use primitives::types::{Amount, Weight};
use rpc_api::types::FeeInfo;

/// Why a fee is not acceptable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FeeError {
    /// The transaction uses the other chain's fee form.
    #[error("wrong fee form: this chain uses the {expected} rule")]
    WrongForm {
        /// The rule this chain uses.
        expected: &'static str,
    },
    /// Below what the rule requires right now.
    #[error("fee too low: offered {offered}, required at least {required}")]
    TooLow {
        /// What the sender offers (total, or per unit of weight).
        offered: Amount,
        /// The minimum (same unit as `offered`).
        required: Amount,
    },
    /// max_tip above max_fee.
    #[error("max_tip {max_tip} exceeds max_fee {max_fee}")]
    TipAboveMax {
        /// Tip limit.
        max_tip: Amount,
        /// Fee limit.
        max_fee: Amount,
    },
    /// The fee arithmetic overflows u128.
    #[error("fee overflows")]
    Overflow,
    /// An Ethereum-format transfer allowing less gas than a transfer uses.
    #[error("gas limit {limit} below the {required} a transfer uses")]
    GasTooLow {
        /// The transaction's gas limit.
        limit: u64,
        /// Gas a transfer uses.
        required: u64,
    },
}

/// An Ethereum fee form in gas: the most it pays per gas, the most it tips per gas (all above
/// the base fee, for a legacy price), and its gas limit; `None` for a native form.
fn eth_limits(fee: &Fee) -> Option<Result<(Amount, Amount, u64), FeeError>> {
    let (max, tip, limit) = match fee {
        Fee::EthLegacy {
            gas_price,
            gas_limit,
        } => (*gas_price, *gas_price, *gas_limit),
        Fee::EthDynamic {
            max_fee_per_gas,
            max_priority_fee_per_gas,
            gas_limit,
        } => (*max_fee_per_gas, *max_priority_fee_per_gas, *gas_limit),
        Fee::Flat { .. } | Fee::Dynamic { .. } => return None,
    };
    Some(if tip > max {
        Err(FeeError::TipAboveMax {
            max_tip: tip,
            max_fee: max,
        })
    } else if limit < TRANSFER_GAS {
        Err(FeeError::GasTooLow {
            limit,
            required: TRANSFER_GAS,
        })
    } else {
        Ok((max, tip, limit))
    })
}

/// What an Ethereum-format transfer pays: 21000 gas at `min(max, base + tip)` per gas, the
/// base part burned. `floor` is the lowest price per gas the chain takes.
fn eth_charge(
    (max, tip, _): (Amount, Amount, u64),
    base_per_gas: Amount,
    floor: Amount,
) -> Result<FeeCharge, FeeError> {
    let required = base_per_gas.max(floor);
    let price = max.min(base_per_gas.checked_add(tip).ok_or(FeeError::Overflow)?);
    if max < base_per_gas || price < required {
        return Err(FeeError::TooLow {
            offered: price,
            required,
        });
    }
    let gas = TRANSFER_GAS as u128;
    let total = price.checked_mul(gas).ok_or(FeeError::Overflow)?;
    let burned = base_per_gas.checked_mul(gas).ok_or(FeeError::Overflow)?;
    let to_producer = total.checked_sub(burned).ok_or(FeeError::Overflow)?;
    Ok(FeeCharge {
        total,
        to_producer,
        burned,
    })
}

/// The most an Ethereum-format transfer can be charged: its gas limit at its highest price (what
/// Ethereum checks the balance against).
fn eth_max_charge((max, _, limit): (Amount, Amount, u64)) -> Result<Amount, FeeError> {
    max.checked_mul(limit as u128).ok_or(FeeError::Overflow)
}

/// The producer's share of an Ethereum-format transfer per unit of weight.
fn eth_priority(fee: &Fee, weight: Weight, base_per_gas: Amount, floor: Amount) -> Amount {
    match eth_limits(fee).map(|l| l.and_then(|l| eth_charge(l, base_per_gas, floor))) {
        Some(Ok(c)) => Amount(c.to_producer.0 / (weight.max(1) as u128)),
        _ => Amount::ZERO,
    }
}

/// How one transaction's fee splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeeCharge {
    /// Taken from the sender.
    pub total: Amount,
    /// Paid to the block producer.
    pub to_producer: Amount,
    /// Destroyed.
    pub burned: Amount,
}

/// A chain's fee rule. Weight is the transaction's encoded size in bytes.
pub trait FeeRule: Send + Sync + std::fmt::Debug {
    /// The rule's name, as `FeeInfo` tags it.
    fn name(&self) -> &'static str;

    /// What the transaction pays in a block whose base fee is `base_fee`, or why it can't be included.
    fn charge(&self, fee: &Fee, weight: Weight, base_fee: Amount) -> Result<FeeCharge, FeeError>;

    /// The most the transaction can ever be charged (for balance checks at admission).
    fn max_charge(&self, fee: &Fee, weight: Weight) -> Result<Amount, FeeError>;

    /// What the producer earns per unit of weight: mempool and block building order by it.
    fn priority(&self, fee: &Fee, weight: Weight, base_fee: Amount) -> Amount;

    /// The base fee of the child of a block with `parent_base_fee` that used `weight_used` of `max_weight`.
    fn next_base_fee(
        &self,
        parent_base_fee: Amount,
        weight_used: Weight,
        max_weight: Weight,
    ) -> Amount;

    /// The base fee of block 1.
    fn initial_base_fee(&self) -> Amount;

    /// What clients need to price a transaction now.
    fn info(&self, next_base_fee: Amount) -> FeeInfo;
}

/// mainchain: the sender names a total fee of at least `min_fee_rate` x encoded size; all of it goes to the producer.
#[derive(Debug, Clone)]
pub struct FeeRateRule {
    /// Base units per byte.
    pub min_fee_rate: Amount,
}

impl FeeRule for FeeRateRule {
    fn name(&self) -> &'static str {
        "fee-rate"
    }

    fn charge(&self, fee: &Fee, weight: Weight, _base_fee: Amount) -> Result<FeeCharge, FeeError> {
        if let Some(limits) = eth_limits(fee) {
            return eth_charge(limits?, Amount::ZERO, per_gas(self.min_fee_rate));
        }
        let total = self.max_charge(fee, weight)?;
        Ok(FeeCharge {
            total,
            to_producer: total,
            burned: Amount::ZERO,
        })
    }

    fn max_charge(&self, fee: &Fee, weight: Weight) -> Result<Amount, FeeError> {
        if let Some(limits) = eth_limits(fee) {
            return eth_max_charge(limits?);
        }
        let Fee::Flat { fee } = fee else {
            return Err(FeeError::WrongForm {
                expected: "fee-rate",
            });
        };
        let required = self
            .min_fee_rate
            .checked_mul(weight as u128)
            .ok_or(FeeError::Overflow)?;
        if *fee < required {
            return Err(FeeError::TooLow {
                offered: *fee,
                required,
            });
        }
        Ok(*fee)
    }

    fn priority(&self, fee: &Fee, weight: Weight, _base_fee: Amount) -> Amount {
        match fee {
            Fee::Flat { fee } => Amount(fee.0 / (weight.max(1) as u128)),
            Fee::Dynamic { .. } => Amount::ZERO,
            Fee::EthLegacy { .. } | Fee::EthDynamic { .. } => {
                eth_priority(fee, weight, Amount::ZERO, per_gas(self.min_fee_rate))
            }
        }
    }

    fn next_base_fee(&self, _parent: Amount, _used: Weight, _max: Weight) -> Amount {
        Amount::ZERO
    }

    fn initial_base_fee(&self) -> Amount {
        Amount::ZERO
    }

    fn info(&self, _next_base_fee: Amount) -> FeeInfo {
        FeeInfo::FeeRate {
            min_fee_rate: self.min_fee_rate,
        }
    }
}

/// sidechain: EIP-1559 style. The base fee per unit of weight targets half-full blocks,
/// moves at most 1/8 per block, and is burned; the tip goes to the producer.
#[derive(Debug, Clone)]
pub struct BaseFeeRule {
    /// The base fee of block 1.
    pub initial_base_fee: Amount,
    /// The base fee never falls below this.
    pub min_base_fee: Amount,
}

/// The base fee moves at most 1/8 per block.
pub const BASE_FEE_CHANGE_DENOMINATOR: u128 = 8;

impl FeeRule for BaseFeeRule {
    fn name(&self) -> &'static str {
        "base-fee"
    }

    fn charge(&self, fee: &Fee, weight: Weight, base_fee: Amount) -> Result<FeeCharge, FeeError> {
        if let Some(limits) = eth_limits(fee) {
            return eth_charge(limits?, per_gas(base_fee), Amount::ZERO);
        }
        let (max_fee, max_tip) = dynamic(fee)?;
        if max_fee < base_fee {
            return Err(FeeError::TooLow {
                offered: max_fee,
                required: base_fee,
            });
        }
        let per_unit = max_fee.min(base_fee.checked_add(max_tip).ok_or(FeeError::Overflow)?);
        let w = weight as u128;
        let total = per_unit.checked_mul(w).ok_or(FeeError::Overflow)?;
        let burned = base_fee.checked_mul(w).ok_or(FeeError::Overflow)?;
        let to_producer = total.checked_sub(burned).ok_or(FeeError::Overflow)?;
        Ok(FeeCharge {
            total,
            to_producer,
            burned,
        })
    }

    fn max_charge(&self, fee: &Fee, weight: Weight) -> Result<Amount, FeeError> {
        if let Some(limits) = eth_limits(fee) {
            return eth_max_charge(limits?);
        }
        let (max_fee, _) = dynamic(fee)?;
        max_fee
            .checked_mul(weight as u128)
            .ok_or(FeeError::Overflow)
    }

    fn priority(&self, fee: &Fee, weight: Weight, base_fee: Amount) -> Amount {
        match fee {
            Fee::Dynamic { max_fee, max_tip } => {
                (*max_tip).min(max_fee.checked_sub(base_fee).unwrap_or(Amount::ZERO))
            }
            Fee::Flat { .. } => Amount::ZERO,
            Fee::EthLegacy { .. } | Fee::EthDynamic { .. } => {
                eth_priority(fee, weight, per_gas(base_fee), Amount::ZERO)
            }
        }
    }

    fn next_base_fee(&self, parent: Amount, used: Weight, max_weight: Weight) -> Amount {
        let target = (max_weight / 2).max(1) as u128;
        let used = used as u128;
        let base = parent.0;
        let next = if used > target {
            let delta =
                (base.saturating_mul(used - target) / target / BASE_FEE_CHANGE_DENOMINATOR).max(1);
            base.saturating_add(delta)
        } else if used < target {
            let delta = base.saturating_mul(target - used) / target / BASE_FEE_CHANGE_DENOMINATOR;
            base.saturating_sub(delta)
        } else {
            base
        };
        Amount(next.max(self.min_base_fee.0))
    }

    fn initial_base_fee(&self) -> Amount {
        self.initial_base_fee.max(self.min_base_fee)
    }

    fn info(&self, next_base_fee: Amount) -> FeeInfo {
        let tip = Amount(1);
        FeeInfo::BaseFee {
            base_fee: next_base_fee,
            min_base_fee: self.min_base_fee,
            suggested_max_fee: Amount(next_base_fee.0.saturating_mul(2).saturating_add(tip.0)),
            suggested_max_tip: tip,
        }
    }
}

fn dynamic(fee: &Fee) -> Result<(Amount, Amount), FeeError> {
    match fee {
        Fee::Dynamic { max_fee, max_tip } => {
            if max_tip > max_fee {
                return Err(FeeError::TipAboveMax {
                    max_tip: *max_tip,
                    max_fee: *max_fee,
                });
            }
            Ok((*max_fee, *max_tip))
        }
        Fee::Flat { .. } | Fee::EthLegacy { .. } | Fee::EthDynamic { .. } => {
            Err(FeeError::WrongForm {
                expected: "base-fee",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rate_rule() {
        let r = FeeRateRule {
            min_fee_rate: Amount(10),
        };
        let ok = Fee::Flat { fee: Amount(1500) };
        let c = r.charge(&ok, 150, Amount::ZERO).unwrap();
        assert_eq!(c.total, Amount(1500));
        assert_eq!(c.to_producer, Amount(1500));
        assert_eq!(c.burned, Amount::ZERO);
        assert_eq!(
            r.charge(&Fee::Flat { fee: Amount(1499) }, 150, Amount::ZERO),
            Err(FeeError::TooLow {
                offered: Amount(1499),
                required: Amount(1500)
            })
        );
        assert_eq!(r.priority(&ok, 150, Amount::ZERO), Amount(10));
        let dynamic = Fee::Dynamic {
            max_fee: Amount(1),
            max_tip: Amount(1),
        };
        assert!(matches!(
            r.charge(&dynamic, 1, Amount::ZERO),
            Err(FeeError::WrongForm { .. })
        ));
        let huge = FeeRateRule {
            min_fee_rate: Amount(u128::MAX),
        };
        assert_eq!(huge.charge(&ok, 2, Amount::ZERO), Err(FeeError::Overflow));
    }

    #[test]
    fn base_fee_charge_splits_burn_and_tip() {
        let r = BaseFeeRule {
            initial_base_fee: Amount(100),
            min_base_fee: Amount(7),
        };
        let fee = Fee::Dynamic {
            max_fee: Amount(150),
            max_tip: Amount(20),
        };
        let c = r.charge(&fee, 10, Amount(100)).unwrap();
        assert_eq!(c.total, Amount(1200));
        assert_eq!(c.burned, Amount(1000));
        assert_eq!(c.to_producer, Amount(200));
        // Tip capped by max_fee - base_fee.
        let c = r.charge(&fee, 10, Amount(140)).unwrap();
        assert_eq!(c.total, Amount(1500));
        assert_eq!(c.burned, Amount(1400));
        assert_eq!(c.to_producer, Amount(100));
        assert_eq!(r.priority(&fee, 10, Amount(140)), Amount(10));
        assert!(matches!(
            r.charge(&fee, 10, Amount(151)),
            Err(FeeError::TooLow { .. })
        ));
        let bad = Fee::Dynamic {
            max_fee: Amount(1),
            max_tip: Amount(2),
        };
        assert!(matches!(
            r.charge(&bad, 1, Amount(1)),
            Err(FeeError::TipAboveMax { .. })
        ));
        assert_eq!(r.max_charge(&fee, 10).unwrap(), Amount(1500));
        assert!(matches!(
            r.charge(&Fee::Flat { fee: Amount(1) }, 1, Amount(1)),
            Err(FeeError::WrongForm { .. })
        ));
    }

    #[test]
    fn ethereum_forms_pay_21000_gas_at_the_effective_price_on_both_rules() {
        let gas = TRANSFER_GAS as u128;
        let legacy = |p: u128, limit: u64| Fee::EthLegacy {
            gas_price: Amount(p),
            gas_limit: limit,
        };
        let dynamic = |max: u128, tip: u128| Fee::EthDynamic {
            max_fee_per_gas: Amount(max),
            max_priority_fee_per_gas: Amount(tip),
            gas_limit: 31_500,
        };
        // mainchain: no base fee; the price is at least the fee rate per gas, all to the producer.
        let main = FeeRateRule {
            min_fee_rate: Amount(1_000_000_000),
        };
        let floor = per_gas(main.min_fee_rate).0;
        let c = main
            .charge(&legacy(floor, 21_000), 110, Amount::ZERO)
            .unwrap();
        assert_eq!(c.total, Amount(floor * gas));
        assert_eq!((c.to_producer, c.burned), (c.total, Amount::ZERO));
        // Never below what a native transaction of its weight pays.
        assert!(c.total.0 >= main.min_fee_rate.0 * primitives::eth::TRANSFER_WEIGHT as u128);
        assert_eq!(
            main.charge(&legacy(floor - 1, 21_000), 110, Amount::ZERO),
            Err(FeeError::TooLow {
                offered: Amount(floor - 1),
                required: Amount(floor)
            })
        );
        // Type 2 on the mainchain: the tip is the price.
        let c = main
            .charge(&dynamic(floor * 3, floor), 110, Amount::ZERO)
            .unwrap();
        assert_eq!(c.total, Amount(floor * gas));
        assert_eq!(
            main.max_charge(&legacy(floor, 30_000), 110).unwrap(),
            Amount(floor * 30_000)
        );
        // sidechain: base fee per gas burned, the rest of min(max, base + tip) to the producer.
        let side = BaseFeeRule {
            initial_base_fee: Amount(1_000_000_000),
            min_base_fee: Amount(1),
        };
        let base = Amount(1_000_000_000);
        let bpg = per_gas(base).0;
        let c = side.charge(&dynamic(bpg * 2, 5), 110, base).unwrap();
        assert_eq!(c.total, Amount((bpg + 5) * gas));
        assert_eq!(c.burned, Amount(bpg * gas));
        assert_eq!(c.to_producer, Amount(5 * gas));
        let c = side.charge(&dynamic(bpg + 2, 5), 110, base).unwrap();
        assert_eq!(c.total, Amount((bpg + 2) * gas));
        let c = side.charge(&legacy(bpg + 9, 21_000), 110, base).unwrap();
        assert_eq!(
            (c.burned, c.to_producer),
            (Amount(bpg * gas), Amount(9 * gas))
        );
        assert_eq!(
            side.charge(&dynamic(bpg - 1, 0), 110, base),
            Err(FeeError::TooLow {
                offered: Amount(bpg - 1),
                required: Amount(bpg)
            })
        );
        assert_eq!(side.priority(&dynamic(bpg * 2, 5), 105, base), Amount(1000));
        // Refused on both: too little gas, a tip above the cap.
        for rule in [&main as &dyn FeeRule, &side] {
            assert_eq!(
                rule.charge(&legacy(floor.max(bpg), 20_999), 110, base),
                Err(FeeError::GasTooLow {
                    limit: 20_999,
                    required: 21_000
                })
            );
            assert!(matches!(
                rule.charge(&dynamic(1, 2), 110, base),
                Err(FeeError::TipAboveMax { .. })
            ));
        }
    }

    #[test]
    fn base_fee_moves_at_most_one_eighth_towards_half_full() {
        let r = BaseFeeRule {
            initial_base_fee: Amount(800),
            min_base_fee: Amount(1),
        };
        let max = 1000;
        assert_eq!(r.next_base_fee(Amount(800), 500, max), Amount(800));
        assert_eq!(r.next_base_fee(Amount(800), 1000, max), Amount(900));
        assert_eq!(r.next_base_fee(Amount(800), 0, max), Amount(700));
        assert_eq!(r.next_base_fee(Amount(800), 750, max), Amount(850));
        assert_eq!(r.next_base_fee(Amount(800), 250, max), Amount(750));
        // Always rises by at least 1 when over target; never below the floor.
        assert_eq!(r.next_base_fee(Amount(1), 501, max), Amount(2));
        assert_eq!(r.next_base_fee(Amount(1), 0, max), Amount(1));
        let floor = BaseFeeRule {
            initial_base_fee: Amount(5),
            min_base_fee: Amount(10),
        };
        assert_eq!(floor.initial_base_fee(), Amount(10));
        assert_eq!(floor.next_base_fee(Amount(10), 0, max), Amount(10));
    }
}
