//! The example files under `deploy/` are what the binaries accept: every documented key parses.

use std::path::PathBuf;

use chain::config::NodeConfig;
use primitives::genesis::Genesis;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

#[test]
fn example_node_configs_and_genesis_files_load() {
    for (rules, name) in [
        (mainchain::rules(), "mainchain"),
        (sidechain::rules(), "sidechain"),
    ] {
        let cfg = NodeConfig::load(&rules, Some(&deploy(&format!("{name}-node.toml"))))
            .unwrap_or_else(|e| panic!("{name}-node.toml: {e}"));
        assert_eq!(cfg.rpc_addr.port(), rules.default_rpc_port);
        let g = Genesis::load(
            &deploy(&format!("{name}-genesis.toml")),
            rules.default_block_time_ms,
        )
        .unwrap_or_else(|e| panic!("{name}-genesis.toml: {e}"));
        assert_eq!(g.block_time_ms, rules.default_block_time_ms);
        rules
            .fee_rule(&g)
            .unwrap_or_else(|e| panic!("{name} fee rule: {e}"));
    }
    // Each chain refuses the other's fee rule.
    let side = Genesis::load(&deploy("sidechain-genesis.toml"), 1000).unwrap();
    assert!(mainchain::rules().fee_rule(&side).is_err());
}
