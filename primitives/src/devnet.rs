//! `devnet.json`: what the devnet launcher tells scripts and the wallet about a running devnet.
//! Declared once here; the launcher writes it, the wallet and the end-to-end tests read it. The
//! shape is a contract (documented in `docs/deploy.md`): readers ignore fields they do not know,
//! so a field may be added, never renamed or removed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::peg::{PegParams, PegTerms};
use crate::types::Address;

/// The file's name inside a devnet directory.
pub const FILE: &str = "devnet.json";

/// The whole of `devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetInfo {
    /// The devnet directory.
    pub dir: PathBuf,
    /// The mainchain.
    pub mainchain: ChainSection,
    /// The sidechain.
    pub sidechain: ChainSection,
    /// The peg's parameters, when the chains are pegged (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationInfo>,
    /// The bridge federation's members, in member order (empty without a peg).
    pub members: Vec<MemberInfo>,
    /// The prefunded development accounts.
    pub accounts: Vec<AccountInfo>,
}

/// One chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSection {
    /// The chain id transactions carry.
    pub chain_id: u64,
    /// Slot length.
    pub block_time_ms: u64,
    /// Hash of block 0, `0x`-hex.
    pub genesis_hash: String,
    /// Its nodes.
    pub nodes: Vec<NodeInfo>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `mainchain-0`, ...
    pub name: String,
    /// `authority` or `follower`.
    pub role: String,
    /// JSON-RPC over HTTP (also `GET /health`, `GET /metrics`).
    pub rpc_http: String,
    /// JSON-RPC over WebSocket.
    pub rpc_ws: String,
    /// Its log file.
    pub log: PathBuf,
    /// Its process id.
    pub pid: u32,
}

/// The peg as both genesis files define it ([`PegParams`] without the member list, which
/// `members` carries, and without the genesis link), plus the escrow. Amounts are base units,
/// written as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationInfo {
    /// The threshold, confirmations, limits and fee.
    #[serde(flatten)]
    pub terms: PegTerms,
    /// The mainchain escrow that holds the locked coins.
    pub escrow: Address,
}

impl FederationInfo {
    /// The view of `p` that `devnet.json` shows, with the mainchain escrow.
    pub fn new(p: &PegParams, escrow: Address) -> Self {
        Self {
            terms: p.terms.clone(),
            escrow,
        }
    }
}

/// One federation member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// `member-0`, ...
    pub name: String,
    /// Its member address (in both genesis files' `peg.members`); files written before it was
    /// listed lack it.
    #[serde(default)]
    pub address: String,
    /// Its status endpoint (`GET /status`, `/metrics`).
    pub status_http: String,
    /// Its log file.
    pub log: PathBuf,
    /// Its process id.
    pub pid: u32,
}

/// One development account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Its index `i` in `m/44'/60'/0'/0/i`.
    pub index: u32,
    /// EIP-55 address.
    pub address: String,
    /// `0x`-hex secret key (public knowledge: never for real funds).
    pub private_key: String,
    /// Balance on the mainchain in base units, decimal.
    pub balance_main: String,
    /// Balance on the sidechain in base units, decimal.
    pub balance_side: String,
}

impl DevnetInfo {
    /// Every node, mainchain first, with its chain's name.
    pub fn nodes(&self) -> impl Iterator<Item = (&'static str, &NodeInfo)> {
        self.mainchain
            .nodes
            .iter()
            .map(|n| ("mainchain", n))
            .chain(self.sidechain.nodes.iter().map(|n| ("sidechain", n)))
    }
}

impl ChainSection {
    /// The first node's HTTP endpoint (the one the wallet uses).
    pub fn first_rpc_http(&self) -> Option<&str> {
        self.nodes.first().map(|n| n.rpc_http.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::devnet_info as sample;
    use crate::types::{Amount, Hash};

    #[test]
    fn the_json_shape_is_the_documented_one() {
        let mut info = sample();
        let expected = serde_json::json!({
            "dir": "/d",
            "mainchain": {"chain_id": 298081, "block_time_ms": 6000, "genesis_hash": "0x00",
                "nodes": [{"name": "mainchain-0", "role": "authority", "rpc_http": "http://127.0.0.1:8545",
                    "rpc_ws": "ws://127.0.0.1:8545", "log": "/d/logs/mainchain-0.log", "pid": 42}]},
            "sidechain": {"chain_id": 298082, "block_time_ms": 6000, "genesis_hash": "0x00",
                "nodes": [{"name": "sidechain-0", "role": "authority", "rpc_http": "http://127.0.0.1:9545",
                    "rpc_ws": "ws://127.0.0.1:9545", "log": "/d/logs/sidechain-0.log", "pid": 42}]},
            "members": [],
            "accounts": [{"index": 0, "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "private_key": "0xac", "balance_main": "10000000000000000000000",
                "balance_side": "1500000000000000000"}]
        });
        assert_eq!(serde_json::to_value(&info).unwrap(), expected);

        // The federation: amounts as decimal base units, addresses EIP-55, no member list.
        let peg = PegParams {
            members: vec![Address([1; 20])],
            terms: PegTerms {
                threshold: 1,
                main_confirmations: 6,
                side_confirmations: 2,
                min_amount: Amount(Amount::COIN),
                max_amount: Amount(1000 * Amount::COIN),
                daily_limit_deposits: Amount(1_000_000 * Amount::COIN),
                daily_limit_withdrawals: Amount(1_000_000 * Amount::COIN),
                peg_out_fee: Amount(Amount::COIN / 100),
                fee_recipient: "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
                    .parse()
                    .unwrap(),
            },
            counterpart_genesis: Hash::ZERO,
        };
        let escrow = "0x9e2F47779bA3A7b42D056C2605a4d7908C6c37E4"
            .parse()
            .unwrap();
        info.federation = Some(FederationInfo::new(&peg, escrow));
        // Byte for byte, in the documented field order.
        assert_eq!(
            serde_json::to_string(&info.federation).unwrap(),
            concat!(
                r#"{"threshold":1,"main_confirmations":6,"side_confirmations":2,"#,
                r#""min_amount":"1000000000000000000","max_amount":"1000000000000000000000","#,
                r#""daily_limit_deposits":"1000000000000000000000000","#,
                r#""daily_limit_withdrawals":"1000000000000000000000000","#,
                r#""peg_out_fee":"10000000000000000","#,
                r#""fee_recipient":"0xa0Ee7A142d267C1f36714E4a8F75612F20a79720","#,
                r#""escrow":"0x9e2F47779bA3A7b42D056C2605a4d7908C6c37E4"}"#
            )
        );
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(
            v["federation"],
            serde_json::json!({"threshold": 1, "main_confirmations": 6, "side_confirmations": 2,
                "min_amount": "1000000000000000000", "max_amount": "1000000000000000000000",
                "daily_limit_deposits": "1000000000000000000000000",
                "daily_limit_withdrawals": "1000000000000000000000000",
                "peg_out_fee": "10000000000000000",
                "fee_recipient": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
                "escrow": "0x9e2F47779bA3A7b42D056C2605a4d7908C6c37E4"})
        );
        assert_eq!(serde_json::from_value::<DevnetInfo>(v).unwrap(), info);
    }

    #[test]
    fn readers_ignore_fields_they_do_not_know() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["added_later"] = serde_json::json!({"anything": [1, 2]});
        v["mainchain"]["nodes"][0]["p2p"] = serde_json::json!(["/ip4/127.0.0.1/tcp/1"]);
        let info: DevnetInfo = serde_json::from_value(v).unwrap();
        assert_eq!(info, sample());
        assert_eq!(
            info.mainchain.first_rpc_http(),
            Some("http://127.0.0.1:8545")
        );
        let names: Vec<_> = info.nodes().map(|(c, n)| (c, n.name.as_str())).collect();
        assert_eq!(
            names,
            [("mainchain", "mainchain-0"), ("sidechain", "sidechain-0")]
        );
    }
}
