//! The Twinpeg mainchain node: the settlement chain: 6 s blocks, fee-rate fees, escrow (Lock/Release with the peg).

use chain::rules::{ChainRules, FeeRuleKind};
use primitives::peg::PegRole;

/// The mainchain's rules, handed to the shared engine.
pub fn rules() -> ChainRules {
    ChainRules {
        name: "mainchain",
        env_prefix: "MAINCHAIN",
        default_block_time_ms: 6000,
        default_rpc_port: 8545,
        default_p2p_port: 30333,
        fee_rule: FeeRuleKind::FeeRate,
        peg_role: PegRole::Main,
    }
}
