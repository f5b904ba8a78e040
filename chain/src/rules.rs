//! What makes each chain itself: its name, defaults and fee rule.

use crate::fee::{BaseFeeRule, FeeRateRule, FeeRule};
use primitives::genesis::{FeeParams, Genesis, GenesisError};
use primitives::peg::{PegConfig, PegRole};

/// Which fee rule a chain uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeRuleKind {
    /// Sender-named fee, at least `min_fee_rate` x size, to the producer.
    FeeRate,
    /// EIP-1559 style base fee (burned) plus tip.
    BaseFee,
}

/// The short list of rules a chain hands to the engine.
#[derive(Debug, Clone)]
pub struct ChainRules {
    /// Binary and log name, e.g. `mainchain`.
    pub name: &'static str,
    /// Prefix of environment overrides, e.g. `MAINCHAIN` for `MAINCHAIN_RPC_ADDR`.
    pub env_prefix: &'static str,
    /// Block time a new genesis gets when it names none.
    pub default_block_time_ms: u64,
    /// The RPC port when the config names none.
    pub default_rpc_port: u16,
    /// The p2p port when the config names none.
    pub default_p2p_port: u16,
    /// The fee rule this chain accepts.
    pub fee_rule: FeeRuleKind,
    /// This chain's end of the peg.
    pub peg_role: PegRole,
}

impl ChainRules {
    /// The peg as this chain sees it, if its genesis has a peg section.
    pub fn peg_config(&self, genesis: &Genesis) -> Result<Option<PegConfig>, GenesisError> {
        genesis.peg_config(self.peg_role)
    }

    /// Builds the fee rule from genesis, refusing the other chain's parameters.
    pub fn fee_rule(&self, genesis: &Genesis) -> Result<Box<dyn FeeRule>, GenesisError> {
        match (self.fee_rule, &genesis.fee) {
            (FeeRuleKind::FeeRate, FeeParams::FeeRate { min_fee_rate }) => {
                Ok(Box::new(FeeRateRule {
                    min_fee_rate: *min_fee_rate,
                }))
            }
            (
                FeeRuleKind::BaseFee,
                FeeParams::BaseFee {
                    initial_base_fee,
                    min_base_fee,
                },
            ) => Ok(Box::new(BaseFeeRule {
                initial_base_fee: *initial_base_fee,
                min_base_fee: *min_base_fee,
            })),
            (kind, _) => Err(GenesisError::Invalid(format!(
                "{} uses the {} fee rule; the genesis [fee] section names another",
                self.name,
                match kind {
                    FeeRuleKind::FeeRate => "fee-rate",
                    FeeRuleKind::BaseFee => "base-fee",
                }
            ))),
        }
    }
}
