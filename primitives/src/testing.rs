//! Fixtures for other crates' tests (feature `testing`): one definition of the small peg and
//! devnet file that unit tests across the workspace build on.

use crate::devnet::{AccountInfo, ChainSection, DevnetInfo, NodeInfo};
use crate::peg::{PegParams, PegTerms};
use crate::types::{Address, Amount, Hash};

/// A peg of `members` needing `threshold` signatures, with one confirmation on each chain,
/// transfers of 1 to 1,000 base units, 10,000 a day each way, no peg-out fee.
pub fn peg_params(members: Vec<Address>, threshold: u32) -> PegParams {
    PegParams {
        members,
        terms: PegTerms {
            threshold,
            main_confirmations: 1,
            side_confirmations: 1,
            min_amount: Amount(1),
            max_amount: Amount(1_000),
            daily_limit_deposits: Amount(10_000),
            daily_limit_withdrawals: Amount(10_000),
            peg_out_fee: Amount(0),
            fee_recipient: Address([9; 20]),
        },
        counterpart_genesis: Hash::ZERO,
    }
}

/// A `devnet.json` node entry serving HTTP and WebSocket on `port`, logging under `/d/logs`.
pub fn devnet_node(name: &str, role: &str, port: u16, pid: u32) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        role: role.into(),
        rpc_http: format!("http://127.0.0.1:{port}"),
        rpc_ws: format!("ws://127.0.0.1:{port}"),
        log: format!("/d/logs/{name}.log").into(),
        pid,
    }
}

/// A `devnet.json` of devnet `/d`: one authority per chain (`mainchain-0` on 8545,
/// `sidechain-0` on 9545), no federation, dev account 0 with 10,000 and 1.5 coins.
pub fn devnet_info() -> DevnetInfo {
    let section = |id, name: &str, port| ChainSection {
        chain_id: id,
        block_time_ms: 6000,
        genesis_hash: "0x00".into(),
        nodes: vec![devnet_node(name, "authority", port, 42)],
    };
    DevnetInfo {
        dir: "/d".into(),
        mainchain: section(298081, "mainchain-0", 8545),
        sidechain: section(298082, "sidechain-0", 9545),
        federation: None,
        members: vec![],
        accounts: vec![AccountInfo {
            index: 0,
            address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".into(),
            private_key: "0xac".into(),
            balance_main: "10000000000000000000000".into(),
            balance_side: "1500000000000000000".into(),
        }],
    }
}
