//! What the launcher tells its users: `devnet.json` for scripts and the wallet (its types are
//! [`primitives::devnet`], shared with its readers), and the same as one table for people.

use std::fmt::Write as _;
use std::path::Path;

use primitives::devnet::DevnetInfo;
use primitives::types::Amount;

use crate::{io_err, Error, Result};

/// Writes `info` as pretty JSON, atomically (scripts may be polling for the file).
pub fn write(info: &DevnetInfo, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(info).map_err(|e| Error::Format {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
    crate::setup::write(path, &(text + "\n"))
}

/// Reads a `devnet.json`.
pub fn read(path: &Path) -> Result<DevnetInfo> {
    let text =
        std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The table printed once everything is healthy.
pub fn table(info: &DevnetInfo) -> String {
    let mut t = String::new();
    let dir = info.dir.display();
    let _ = writeln!(t, "\nTwinpeg devnet is up ({dir})\n");
    for (chain, section) in [
        ("mainchain", &info.mainchain),
        ("sidechain", &info.sidechain),
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
    match &info.federation {
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
                f.terms.threshold,
                info.members.len(),
                f.terms.main_confirmations,
                f.terms.side_confirmations,
                f.terms.min_amount.to_coins_string(),
                f.terms.max_amount.to_coins_string(),
                f.terms.daily_limit_deposits.to_coins_string(),
                f.terms.daily_limit_withdrawals.to_coins_string(),
                f.terms.peg_out_fee.to_coins_string(),
                f.terms.fee_recipient,
                f.escrow
            );
            let _ = writeln!(
                t,
                "    {:<12} {:<42}  status (GET /health, /status, /metrics)",
                "member", "address"
            );
            for m in &info.members {
                let _ = writeln!(t, "    {:<12} {:<42}  {}", m.name, m.address, m.status_http);
            }
        }
    }
    let pegged = info.federation.is_some();
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
    for a in &info.accounts {
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
    let logs = info
        .nodes()
        .map(|(_, n)| &n.log)
        .chain(info.members.iter().map(|m| &m.log))
        .map(|l| {
            l.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join(", ");
    let log_dir = info
        .nodes()
        .next()
        .and_then(|(_, n)| n.log.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| info.dir.join("logs"));
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

/// Base units (decimal string) as coins, or the string itself if it does not parse.
fn coins(base_units: &str) -> String {
    base_units
        .parse::<Amount>()
        .map(|a| a.to_coins_string())
        .unwrap_or_else(|_| base_units.to_string())
}

#[cfg(test)]
mod tests {
    use primitives::testing::{devnet_info, devnet_node};

    use super::*;

    #[test]
    fn the_table_has_a_row_per_node_and_the_balances_in_coins() {
        let mut info = devnet_info();
        let t = table(&info);
        assert!(t.contains("http://127.0.0.1:8545"));
        assert!(t.contains("10000"));
        assert!(t.contains("1.5"));
        assert!(t.contains("/d/logs/"));

        // Every node of every chain has its row: name, role, HTTP and WebSocket.
        info.sidechain
            .nodes
            .push(devnet_node("sidechain-2", "follower", 9547, 43));
        let t = table(&info);
        let row = t
            .lines()
            .find(|l| l.contains("sidechain-2"))
            .expect("a row for sidechain-2");
        for part in ["follower", "http://127.0.0.1:9547", "ws://127.0.0.1:9547"] {
            assert!(row.contains(part), "{row}");
        }
        for name in ["mainchain-0 ", "sidechain-0 "] {
            assert_eq!(t.lines().filter(|l| l.contains(name)).count(), 1, "{t}");
        }
        assert!(t.contains("sidechain-2.log"));

        // Writing and reading back gives the same info.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(primitives::devnet::FILE);
        write(&info, &f).unwrap();
        assert_eq!(read(&f).unwrap(), info);
    }
}
