//! The two fee rules behind one small trait: mainchain's fee rate, sidechain's base fee.

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
        let total = self.max_charge(fee, weight)?;
        Ok(FeeCharge {
            total,
            to_producer: total,
            burned: Amount::ZERO,
        })
    }

    fn max_charge(&self, fee: &Fee, weight: Weight) -> Result<Amount, FeeError> {
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
        let (max_fee, _) = dynamic(fee)?;
        max_fee
            .checked_mul(weight as u128)
            .ok_or(FeeError::Overflow)
    }

    fn priority(&self, fee: &Fee, _weight: Weight, base_fee: Amount) -> Amount {
        match fee {
            Fee::Dynamic { max_fee, max_tip } => {
                (*max_tip).min(max_fee.checked_sub(base_fee).unwrap_or(Amount::ZERO))
            }
            Fee::Flat { .. } => Amount::ZERO,
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
        Fee::Flat { .. } => Err(FeeError::WrongForm {
            expected: "base-fee",
        }),
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
