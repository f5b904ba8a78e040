//! End-to-end: foundry's `cast` and viem (from npm) and web3.py (from PyPI), installed by
//! `tests/tools/install.sh`, which `make test` runs, send, confirm, deposit and withdraw on the
//! real devnet, with no Twinpeg code on the client side: legacy transactions on the mainchain
//! (it looks pre-London), EIP-1559 on the sidechain, back-to-back sends from one key, every
//! refusal in the words clients match on, and the exact balance equation.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use primitives::peg::{escrow_address, withdrawal_address};
use serde_json::Value;
use twinpeg_e2e::{bin, bin_dir, wallet_command};

/// Deadline for the devnet to come up, or a transfer to be paid, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(180);
/// One coin in base units.
const COIN: u128 = 1_000_000_000_000_000_000;
/// A recipient no test key controls.
const RECEIVER: &str = "0x0707070707070707070707070707070707070707";

/// `cast`, as the install script put it (or `TWINPEG_CAST`).
fn cast_path() -> PathBuf {
    let p = std::env::var_os("TWINPEG_CAST").map_or_else(
        || {
            bin_dir()
                .parent()
                .map(|t| t.join("tools/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"))
                .unwrap_or_default()
        },
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} not found: run `tests/tools/install.sh` (`make test` does)",
        p.display()
    );
    p
}

/// `<target>/tools`, where the install script put the clients.
fn tools_dir() -> PathBuf {
    bin_dir()
        .parent()
        .map(|t| t.join("tools"))
        .unwrap_or_default()
}

/// The clients' scripts, in this crate.
fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join(name)
}

/// Runs one of the client scripts (web3.py or viem) for `count` back-to-back transfers of
/// `value` to `to`, and checks what it reports: every receipt a success of 21000 gas of the
/// expected type, and `before - after == count x value + sum of gasUsed x effectiveGasPrice`.
fn client_sends(
    client: &str,
    rpc: &str,
    key: &str,
    value: u128,
    count: usize,
    legacy: bool,
) -> Result<()> {
    let args = [
        rpc.to_string(),
        key.to_string(),
        RECEIVER.into(),
        value.to_string(),
        count.to_string(),
    ];
    let out = match client {
        "web3.py" => Command::new(tools_dir().join("venv/bin/python"))
            .arg(script("web3_send.py"))
            .args(&args)
            .stdin(Stdio::null())
            .output()?,
        "viem" => {
            // Run as a module from <target>/tools so `import "viem"` finds its node_modules.
            let mut child = Command::new("node")
                .args(["--input-type=module", "-"])
                .args(&args)
                .current_dir(tools_dir())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("node (Node.js) is needed for the viem test")?;
            let source = std::fs::read(script("viem_send.mjs"))?;
            std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, &source)?;
            drop(child.stdin.take());
            child.wait_with_output()?
        }
        other => bail!("no client {other}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{client} on {rpc} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).with_context(|| stdout.to_string())?;
    assert_eq!(v["legacy"], legacy, "{client}: {v}");
    let receipts = v["receipts"].as_array().context("receipts")?;
    assert_eq!(receipts.len(), count, "{client}: {v}");
    let mut fees = 0u128;
    for r in receipts {
        assert_eq!(r["status"], 1, "{client}: {r}");
        assert_eq!(r["gasUsed"], 21_000, "{client}: {r}");
        let t = &r["type"];
        let expected_legacy = [Value::from(0), Value::from("legacy")].contains(t);
        assert_eq!(expected_legacy, legacy, "{client}: type {t}");
        let price: u128 = r["effectiveGasPrice"].as_str().context("price")?.parse()?;
        fees += 21_000 * price;
    }
    let before: u128 = v["before"].as_str().context("before")?.parse()?;
    let after: u128 = v["after"].as_str().context("after")?.parse()?;
    assert_eq!(
        before - after,
        count as u128 * value + fees,
        "{client}: {v}"
    );
    Ok(())
}

/// What one `cast` run did.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn cast(args: &[&str]) -> Result<Out> {
    let o = Command::new(cast_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running cast")?;
    Ok(Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
    })
}

/// `cast` that must succeed; its stdout.
fn cast_ok(args: &[&str]) -> Result<String> {
    let o = cast(args)?;
    if !o.ok {
        bail!("cast {args:?} failed: {}\n{}", o.stderr, o.stdout);
    }
    Ok(o.stdout)
}

/// `cast` that must fail with `needle` in what it printed.
fn cast_refused(args: &[&str], needle: &str) -> Result<()> {
    let o = cast(args)?;
    assert!(!o.ok, "cast {args:?} should fail; printed {}", o.stdout);
    assert!(
        o.stderr.contains(needle),
        "cast {args:?}: expected {needle:?} in {}",
        o.stderr
    );
    Ok(())
}

fn balance(rpc: &str, who: &str) -> Result<u128> {
    Ok(cast_ok(&["balance", "--rpc-url", rpc, who])?.parse()?)
}

fn quantity(v: &Value) -> Result<u128> {
    let s = v.as_str().context("quantity is a string")?;
    Ok(u128::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

/// Polls `f` until it returns `Some` or the deadline passes.
fn until<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() > DEADLINE {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A `devnet up` with the tests' short blocks on ephemeral ports; `devnet down` on drop.
struct Devnet {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    child: Child,
    info: Value,
}

impl Devnet {
    fn start() -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("devnet");
        let child = Command::new(bin("devnet"))
            .arg("up")
            .arg("--dir")
            .arg(&dir)
            .args(["--main-block-time-ms", "300", "--side-block-time-ms", "200"])
            .args(["--main-port", "0", "--side-port", "0"])
            .args(["--main-p2p-port", "0", "--side-p2p-port", "0"])
            .args(["--member-status-port", "0", "--member-p2p-port", "0"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(tmp.path().join("devnet.out"))?)
            .stderr(std::fs::File::create(tmp.path().join("devnet.err"))?)
            .spawn()?;
        let file = dir.join("devnet.json");
        let mut net = Self {
            _tmp: tmp,
            dir,
            child,
            info: Value::Null,
        };
        net.info = until("devnet.json", || {
            if let Some(status) = net.child.try_wait()? {
                bail!("devnet up exited early: {status}");
            }
            Ok(std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok()))
        })?;
        Ok(net)
    }

    fn rpc(&self, chain: &str) -> Result<String> {
        Ok(self.info[chain]["nodes"][0]["rpc_http"]
            .as_str()
            .context("rpc_http")?
            .to_string())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new(bin("devnet"))
            .arg("down")
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends with `cast send --json` and checks the balance equation of its receipt:
/// `before - after == value + gasUsed x effectiveGasPrice`.
fn send_checked(
    rpc: &str,
    key: &str,
    from: &str,
    extra: &[&str],
    to: &str,
    value: u128,
) -> Result<Value> {
    let before = balance(rpc, from)?;
    let v = value.to_string();
    let mut args = vec!["send", "--json", "--rpc-url", rpc, "--private-key", key];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[to, "--value", &v]);
    let receipt: Value = serde_json::from_str(&cast_ok(&args)?)?;
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let after = balance(rpc, from)?;
    let gas = quantity(&receipt["gasUsed"])?;
    let price = quantity(&receipt["effectiveGasPrice"])?;
    assert_eq!(gas, 21_000, "{receipt}");
    assert_eq!(before - after, value + gas * price, "{receipt}");
    // The receipt is also found by hash, as every tool polls it.
    let hash = receipt["transactionHash"].as_str().context("hash")?;
    let again: Value =
        serde_json::from_str(&cast_ok(&["receipt", "--json", "--rpc-url", rpc, hash])?)?;
    assert_eq!(again["blockHash"], receipt["blockHash"]);
    Ok(receipt)
}

fn wallet_state(main: &str, side: &str, id: &str) -> Result<Value> {
    let home = tempfile::tempdir()?;
    let out = wallet_command()
        .env("HOME", home.path())
        .args([
            "status",
            "--json",
            "--main-rpc",
            main,
            "--side-rpc",
            side,
            id,
        ])
        .output()?;
    serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn cast_sends_deposits_and_withdraws_on_both_chains_and_is_refused_in_geth_words() -> Result<()> {
    let net = Devnet::start()?;
    let (main, side) = (net.rpc("mainchain")?, net.rpc("sidechain")?);
    let dev = &net.info["accounts"][0];
    let key = dev["private_key"].as_str().context("key")?.to_string();
    let from = dev["address"].as_str().context("address")?.to_string();
    until("both chains past block 2", || {
        let m: u64 = cast_ok(&["block-number", "--rpc-url", &main])?.parse()?;
        let s: u64 = cast_ok(&["block-number", "--rpc-url", &side])?.parse()?;
        Ok((m > 2 && s > 2).then_some(()))
    })?;
    // The sidechain height before anything moved: asked about again 500 blocks later.
    let first_side: u64 = cast_ok(&["block-number", "--rpc-url", &side])?.parse()?;
    assert_eq!(
        cast_ok(&["chain-id", "--rpc-url", &main])?,
        net.info["mainchain"]["chain_id"].to_string()
    );
    // The mainchain looks pre-London: no baseFeePerGas in its blocks; the sidechain has one.
    let main_block: Value = serde_json::from_str(&cast_ok(&[
        "block",
        "--json",
        "--rpc-url",
        &main,
        "latest",
    ])?)?;
    assert!(main_block.get("baseFeePerGas").is_none(), "{main_block}");
    let side_block: Value = serde_json::from_str(&cast_ok(&[
        "block",
        "--json",
        "--rpc-url",
        &side,
        "latest",
    ])?)?;
    assert!(quantity(&side_block["baseFeePerGas"])? > 0, "{side_block}");
    assert!(cast_ok(&["gas-price", "--rpc-url", &main])?.parse::<u128>()? > 0);

    // A legacy transfer on the mainchain; the recipient gets exactly the value.
    let got = balance(&main, RECEIVER)?;
    let r = send_checked(&main, &key, &from, &["--legacy"], RECEIVER, COIN)?;
    assert_eq!(r["type"], "0x0");
    assert_eq!(balance(&main, RECEIVER)?, got + COIN);

    // A deposit: a plain send to the escrow, paid on the sidechain to the sender.
    let escrow = escrow_address().to_string();
    let dep = send_checked(&main, &key, &from, &["--legacy"], &escrow, 5 * COIN)?;
    let dep_id = dep["transactionHash"].as_str().context("hash")?.to_string();
    until("the deposit minted", || {
        Ok((balance(&side, &from)? == 5 * COIN).then_some(()))
    })?;
    until("wallet status to say paid", || {
        Ok((wallet_state(&main, &side, &dep_id)?["state"] == "paid").then_some(()))
    })?;

    // An EIP-1559 transfer on the sidechain (cast's default there).
    let r = send_checked(&side, &key, &from, &[], RECEIVER, COIN)?;
    assert_eq!(r["type"], "0x2");

    // A withdrawal: a plain send to the withdrawal address, released on the mainchain.
    let fee = {
        let v: Value = serde_json::from_str(&cast_ok(&["rpc", "--rpc-url", &main, "tp_pegInfo"])?)?;
        v["params"]["peg_out_fee"]
            .as_str()
            .context("peg_out_fee")?
            .parse::<u128>()?
    };
    let main_before = balance(&main, &from)?;
    let wd = send_checked(
        &side,
        &key,
        &from,
        &[],
        &withdrawal_address().to_string(),
        2 * COIN,
    )?;
    let wd_id = wd["transactionHash"].as_str().context("hash")?.to_string();
    until("the withdrawal released", || {
        Ok((balance(&main, &from)? == main_before + 2 * COIN - fee).then_some(()))
    })?;
    assert_eq!(wallet_state(&main, &side, &wd_id)?["state"], "paid");

    // web3.py and viem, three transfers back to back from one key on each chain (their nonces
    // come from the pool-aware `pending` count); each picks legacy or EIP-1559 by itself.
    for client in ["web3.py", "viem"] {
        client_sends(client, &main, &key, 1000, 3, true)?;
        client_sends(client, &side, &key, 1000, 3, false)?;
    }

    // Refusals, in the words clients classify by (code -32000), with our reason in `data`.
    let base = ["send", "--rpc-url", &side, "--private-key", &key];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let refused = |extra: &[&str], needle: &str| -> Result<()> {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cast_refused(&args, needle)
    };
    refused(&["--nonce", "0", RECEIVER, "--value", "1"], "nonce too low")?;
    refused(
        &[RECEIVER, "--value", &(1_000_000 * COIN).to_string()],
        "insufficient funds for gas * price + value",
    )?;
    refused(
        &["--gas-limit", "20000", RECEIVER, "--value", "1"],
        "intrinsic gas too low",
    )?;
    refused(
        &[
            "--gas-price",
            "1",
            "--priority-gas-price",
            "1",
            RECEIVER,
            "--value",
            "1",
        ],
        "max fee per gas less than block base fee",
    )?;
    // Peg limits before anything moves: below the minimum deposit, with the wallet's reason.
    let small = [
        "send",
        "--legacy",
        "--rpc-url",
        &main,
        "--private-key",
        &key,
        &escrow,
        "--value",
        "1",
    ];
    cast_refused(&small, "peg_amount_out_of_range")?;
    // Calldata is not a value transfer.
    cast_refused(
        &[
            "send",
            "--rpc-url",
            &side,
            "--private-key",
            &key,
            RECEIVER,
            "transfer(address,uint256)",
            RECEIVER,
            "1",
        ],
        "calldata is not supported",
    )?;
    // The same signed bytes twice. Behind a nonce gap it waits in the pool (parked) rather
    // than being included between the two sends, so the second meets it there.
    let pending: u64 =
        cast_ok(&["nonce", "--block", "pending", "--rpc-url", &side, &from])?.parse()?;
    let ahead = (pending + 5).to_string();
    let raw = cast_ok(&[
        "mktx",
        "--rpc-url",
        &side,
        "--private-key",
        &key,
        "--nonce",
        &ahead,
        RECEIVER,
        "--value",
        "1",
    ])?;
    let hash = cast_ok(&["publish", "--async", "--rpc-url", &side, &raw])?;
    assert_eq!(
        hash.trim_matches('"'),
        cast_ok(&["keccak", &raw])?,
        "the hash is keccak256 of the raw bytes"
    );
    cast_refused(
        &["publish", "--async", "--rpc-url", &side, &raw],
        "already known",
    )?;

    // History, as MetaMask asks it (at the height its tracker saw, not `latest`): 500 blocks
    // after `first_side`, the account still reads as it was then, empty, while it holds coins
    // now.
    until("500 sidechain blocks more", || {
        let n: u64 = cast_ok(&["block-number", "--rpc-url", &side])?.parse()?;
        Ok((n >= first_side + 500).then_some(()))
    })?;
    let then = first_side.to_string();
    assert_eq!(
        cast_ok(&["balance", "--block", &then, "--rpc-url", &side, &from])?,
        "0"
    );
    assert_eq!(
        cast_ok(&["nonce", "--block", &then, "--rpc-url", &side, &from])?,
        "0"
    );
    assert!(balance(&side, &from)? > 0);
    Ok(())
}
