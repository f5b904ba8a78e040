//! The Twinpeg sidechain node: the scaling chain: 1 s blocks, EIP-1559 style base fee burned plus tip, Mint/Burn with the peg.

use chain::rules::{ChainRules, FeeRuleKind};
use primitives::peg::PegRole;

/// The sidechain's rules, handed to the shared engine.
pub fn rules() -> ChainRules {
    ChainRules {
        name: "sidechain",
        env_prefix: "SIDECHAIN",
        default_block_time_ms: 1000,
        default_rpc_port: 9545,
        default_p2p_port: 30334,
        fee_rule: FeeRuleKind::BaseFee,
        peg_role: PegRole::Side,
    }
}
