//! What the launcher tells its users: `devnet.json` for scripts and the wallet, and the same as
//! one table for people. The JSON shape is a contract (documented in `docs/deploy.md`):
//! change it only together with its readers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use primitives::types::Amount;
use serde::{Deserialize, Serialize};

use crate::{io_err, Error, Result};

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

/// The peg as both genesis files define it. Amounts are base units, decimal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationInfo {
    /// Member signatures a payout needs.
    pub threshold: u32,
    /// Depth a deposit (Lock) reaches on the mainchain before the members sign it.
    pub main_confirmations: u64,
    /// Depth a withdrawal (Burn) reaches on the sidechain before the members sign it.
    pub side_confirmations: u64,
    /// Smallest transfer.
    pub min_amount: String,
    /// Largest transfer.
    pub max_amount: String,
    /// Deposits per UTC day.
    pub daily_limit_deposits: String,
    /// Withdrawals per UTC day.
    pub daily_limit_withdrawals: String,
    /// Kept from each withdrawal.
    pub peg_out_fee: String,
    /// Receives the peg-out fees on the mainchain.
    pub fee_recipient: String,
    /// The mainchain escrow that holds the locked coins.
    pub escrow: String,
}

/// One federation member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// `member-0`, ...
    pub name: String,
    /// Its member address (in both genesis files' `peg.members`).
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
    /// Writes it as pretty JSON, atomically (scripts may be polling for the file).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Format {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        crate::setup::write(path, &(text + "\n"))
    }

    /// Reads a `devnet.json`.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Error::Format {
            what: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Every node, mainchain first, with its chain's name.
    pub fn nodes(&self) -> impl Iterator<Item = (&'static str, &NodeInfo)> {
        self.mainchain
            .nodes
            .iter()
            .map(|n| ("mainchain", n))
            .chain(self.sidechain.nodes.iter().map(|n| ("sidechain", n)))
    }

    /// The table printed once everything is healthy.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let dir = self.dir.display();
        let _ = writeln!(t, "\nTwinpeg devnet is up ({dir})\n");
        for (chain, section) in [
            ("mainchain", &self.mainchain),
            ("sidechain", &self.sidechain),
        ] {
            let _ = writeln!(
                t,
                "  {chain}: chain id {}, block time {} ms, genesis {}",
                section.chain_id, section.block_time_ms, section.genesis_hash
            );
            let _ = writeln!(
                t,
                "    {:<12} {:<10} {:<28} WebSocket",
                "node", "role", "JSON-RPC (HTTP)"
            );
            for n in &section.nodes {
                let _ = writeln!(
                    t,
                    "    {:<12} {:<10} {:<28} {}",
                    n.name, n.role, n.rpc_http, n.rpc_ws
                );
            }
            let _ = writeln!(t);
        }
        let _ = writeln!(
            t,
            "  Every node also serves GET /health and GET /metrics on its HTTP port. Authorities\n  \
             produce blocks in turn (leader order = node order); followers only follow."
        );
        match &self.federation {
            None => {
                let _ = writeln!(
                    t,
                    "\nFederation: none (federation.members = 0): the chains are not pegged."
                );
            }
            Some(f) => {
                let _ = writeln!(
                    t,
                    "\nFederation: {} of {} members sign each transfer; deposits final at {} mainchain\n  \
                     blocks, withdrawals at {} sidechain blocks. Per transfer {} to {} coins, per day {} in\n  \
                     and {} out; each withdrawal pays a {} coin fee to {}.\n  \
                     Escrow (mainchain): {}",
                    f.threshold,
                    self.members.len(),
                    f.main_confirmations,
                    f.side_confirmations,
                    coins(&f.min_amount),
                    coins(&f.max_amount),
                    coins(&f.daily_limit_deposits),
                    coins(&f.daily_limit_withdrawals),
                    coins(&f.peg_out_fee),
                    f.fee_recipient,
                    f.escrow
                );
                let _ = writeln!(
                    t,
                    "    {:<12} {:<42}  status (GET /health, /status, /metrics)",
                    "member", "address"
                );
                for m in &self.members {
                    let _ = writeln!(t, "    {:<12} {:<42}  {}", m.name, m.address, m.status_http);
                }
            }
        }
        let pegged = self.federation.is_some();
        let _ = writeln!(
            t,
            "\nDevelopment accounts: mnemonic \"{}\", m/44'/60'/0'/0/i.\n\
             These keys are public: never use them for real funds. Balances in coins{}",
            primitives::dev::DEV_MNEMONIC,
            if pegged {
                " (the sidechain\nstarts empty: its coins come only from deposits)."
            } else {
                "."
            }
        );
        let _ = writeln!(
            t,
            "  {:>3}  {:<42}  {:<66}  {:>10}  {:>10}",
            "#", "address", "private key", "mainchain", "sidechain"
        );
        for a in &self.accounts {
            let _ = writeln!(
                t,
                "  {:>3}  {:<42}  {:<66}  {:>10}  {:>10}",
                a.index,
                a.address,
                a.private_key,
                coins(&a.balance_main),
                coins(&a.balance_side)
            );
        }
        if pegged {
            let _ = writeln!(
                t,
                "  `wallet import-dev dev0 0`, then `wallet deposit --from dev0 10` moves coins to the sidechain\n  \
                 (`wallet withdraw --from dev0 5` moves them back)."
            );
        }
        let logs = self
            .nodes()
            .map(|(_, n)| &n.log)
            .chain(self.members.iter().map(|m| &m.log))
            .map(|l| {
                l.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect::<Vec<_>>()
            .join(", ");
        let log_dir = self
            .nodes()
            .next()
            .and_then(|(_, n)| n.log.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| self.dir.join("logs"));
        let _ = writeln!(t, "\nLogs:  {}/  ({logs})", log_dir.display());
        let _ = writeln!(
            t,
            "Data:  {dir}/<node>/data, {dir}/<member>/data    For scripts: {dir}/devnet.json"
        );
        let _ = writeln!(
            t,
            "Ctrl-C or `devnet down --dir {dir}` stops it; starting again resumes the same chains (--fresh starts over)."
        );
        t
    }
}

/// Base units (decimal string) as coins, or the string itself if it does not parse.
fn coins(base_units: &str) -> String {
    base_units
        .parse::<Amount>()
        .map(|a| a.to_coins_string())
        .unwrap_or_else(|_| base_units.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_shape_is_the_documented_one() {
        let node = NodeInfo {
            name: "mainchain-0".into(),
            role: "authority".into(),
            rpc_http: "http://127.0.0.1:8545".into(),
            rpc_ws: "ws://127.0.0.1:8545".into(),
            log: "/d/logs/mainchain-0.log".into(),
            pid: 42,
        };
        let section = ChainSection {
            chain_id: 1001,
            block_time_ms: 6000,
            genesis_hash: "0x00".into(),
            nodes: vec![node.clone()],
        };
        let follower = NodeInfo {
            name: "sidechain-2".into(),
            role: "follower".into(),
            rpc_http: "http://127.0.0.1:9547".into(),
            rpc_ws: "ws://127.0.0.1:9547".into(),
            log: "/d/logs/sidechain-2.log".into(),
            pid: 43,
        };
        let mut info = DevnetInfo {
            dir: "/d".into(),
            mainchain: section.clone(),
            sidechain: section,
            federation: None,
            members: vec![],
            accounts: vec![AccountInfo {
                index: 0,
                address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".into(),
                private_key: "0xac".into(),
                balance_main: "10000000000000000000000".into(),
                balance_side: "1500000000000000000".into(),
            }],
        };
        let v = serde_json::to_value(&info).unwrap();
        let expected = serde_json::json!({
            "dir": "/d",
            "mainchain": {"chain_id": 1001, "block_time_ms": 6000, "genesis_hash": "0x00",
                "nodes": [{"name": "mainchain-0", "role": "authority", "rpc_http": "http://127.0.0.1:8545",
                    "rpc_ws": "ws://127.0.0.1:8545", "log": "/d/logs/mainchain-0.log", "pid": 42}]},
            "sidechain": {"chain_id": 1001, "block_time_ms": 6000, "genesis_hash": "0x00",
                "nodes": [{"name": "mainchain-0", "role": "authority", "rpc_http": "http://127.0.0.1:8545",
                    "rpc_ws": "ws://127.0.0.1:8545", "log": "/d/logs/mainchain-0.log", "pid": 42}]},
            "members": [],
            "accounts": [{"index": 0, "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "private_key": "0xac", "balance_main": "10000000000000000000000",
                "balance_side": "1500000000000000000"}]
        });
        assert_eq!(v, expected);
        let table = info.table();
        assert!(table.contains("http://127.0.0.1:8545"));
        assert!(table.contains("10000"));
        assert!(table.contains("1.5"));
        assert!(table.contains("/d/logs/"));

        // Every node of every chain has its row: name, role, HTTP and WebSocket.
        info.sidechain.nodes.push(follower);
        let table = info.table();
        let row = table
            .lines()
            .find(|l| l.contains("sidechain-2"))
            .expect("a row for sidechain-2");
        for part in ["follower", "http://127.0.0.1:9547", "ws://127.0.0.1:9547"] {
            assert!(row.contains(part), "{row}");
        }
        assert_eq!(
            table.lines().filter(|l| l.contains("mainchain-0 ")).count(),
            2,
            "{table}"
        );
        assert!(table.contains("sidechain-2.log"));
    }
}
