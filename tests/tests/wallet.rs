//! End-to-end: the `wallet` binary against real `mainchain` and `sidechain` processes, through
//! its `--json` output and exit codes. Each test has its own keystore, home and working directory.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use primitives::crypto::SecretKey;
use primitives::types::{Address, Amount};
use rpc_api::TwinpegApiClient;
use serde_json::Value;
use twinpeg_e2e::{
    dev_key, pegged_geneses, test_genesis, test_peg, wait_included, wallet_command, ChainKind,
    TestNode,
};

const PASSWORD: &str = "correct horse battery staple";

/// The string `field` of every object in the array `array` of a `--json` answer.
fn fields<'a>(json: &'a serde_json::Value, array: &str, field: &str) -> Vec<&'a str> {
    json[array]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o[field].as_str()).collect())
        .unwrap_or_default()
}

/// A wallet with its own directory, keystore and password file, pointed at two endpoints.
struct Wallet {
    dir: tempfile::TempDir,
    main: String,
    side: String,
}

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts a failure with `code` and one stderr line `error: ...` containing `needle`.
    fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "exit code; stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{:?}", lines[0]);
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
    }
}

impl Wallet {
    fn new(main: &str, side: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("wallet")
            .tempdir()
            .expect("tempdir");
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).expect("write");
        Wallet {
            dir,
            main: main.to_string(),
            side: side.to_string(),
        }
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = wallet_command();
        cmd.current_dir(self.dir.path())
            .env("WALLET_HOME", self.dir.path().join("home"))
            // Light key encryption: these are test keys, and debug-build scrypt is slow.
            .env("WALLET_SCRYPT_LOG_N", "10")
            .args(["--keystore", &self.path("keystore")])
            .args(["--main-rpc", &self.main, "--side-rpc", &self.side])
            .args(args)
            .stdin(Stdio::null());
        if !args.contains(&"--password-file") {
            cmd.args(["--password-file", &self.path("password")]);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Self::finish(self.command(args).output().expect("wallet runs"))
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wallet runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Self::finish(child.wait_with_output().expect("wallet exits"))
    }

    fn finish(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs with `--json`, asserts success, returns the parsed output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let r = self.run(&all);
        assert_eq!(r.code, 0, "wallet {args:?} failed: {}", r.stderr);
        r.json()
    }
}

fn addr(v: &Value) -> Address {
    v.as_str()
        .expect("address string")
        .parse()
        .expect("address")
}

fn amount(v: &Value) -> Amount {
    v.as_str().expect("amount string").parse().expect("amount")
}

fn start(kind: ChainKind, block_ms: u64) -> TestNode {
    let authority = SecretKey::random();
    let genesis = test_genesis(kind, authority.address(), block_ms);
    TestNode::start(kind, &genesis, Some(authority)).expect("node starts")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_on_each_chain_through_the_cli() {
    let main = start(ChainKind::Main, 400);
    let side = start(ChainKind::Side, 250);
    let w = Wallet::new(&main.http, &side.http);

    // Keys: a dev key, a fresh key, listed and addressed.
    let dev = w.json(&["import-dev", "dev0", "0"]);
    assert_eq!(addr(&dev["address"]), dev_key(0).address());
    assert_eq!(dev["name"], "dev0");
    let keyfile = dev["path"].as_str().expect("path");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keyfile)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let bob = addr(&w.json(&["new", "bob"])["address"]);
    let list = w.json(&["list"]);
    let names = fields(&list, "keys", "name");
    assert_eq!(names, ["bob", "dev0"]);
    assert_eq!(addr(&w.json(&["address", "bob"])["address"]), bob);
    let plain = w.run(&["address", "dev0"]);
    assert_eq!(plain.stdout.trim(), dev_key(0).address().to_checksum());

    // Balances on both chains by default.
    let bal = w.json(&["balance", "dev0"]);
    let chains = fields(&bal, "balances", "chain");
    assert_eq!(chains, ["main", "side"]);
    for b in bal["balances"].as_array().expect("balances") {
        assert_eq!(amount(&b["balance"]), Amount::coins(1000));
        assert_eq!(b["balance_coins"], "1000");
    }

    let bob_hex = bob.to_checksum();
    let send = |chain: &str, rest: &[&str]| {
        let mut args = vec![
            "transfer", "--chain", chain, "--from", "dev0", "--to", &bob_hex,
        ];
        args.extend_from_slice(rest);
        w.json(&args)
    };
    // Mainchain: 1.5 coins, fee from the fee-rate rule, waits for inclusion.
    let t = send("main", &["1.5"]);
    assert_eq!(t["status"], "success", "{t}");
    assert_eq!(t["chain"], "main");
    assert_eq!(amount(&t["amount"]), Amount(1_500_000_000_000_000_000));
    assert_eq!(t["fee"]["rule"], "flat");
    assert!(t["block_number"].as_u64().expect("block") >= 1);
    let main_fee = amount(&t["fee_paid"]);
    assert_eq!(main_fee, amount(&t["fee"]["fee"]));
    let mc = main.client();
    assert_eq!(
        mc.account(bob).await.expect("account").balance,
        Amount(1_500_000_000_000_000_000)
    );
    assert_eq!(
        mc.account(dev_key(0).address())
            .await
            .expect("account")
            .balance,
        Amount(Amount::coins(1000).0 - 1_500_000_000_000_000_000 - main_fee.0)
    );

    // Sidechain: base units with --raw, fee from the base-fee rule.
    let t = send("side", &["--raw", "12345"]);
    assert_eq!(t["status"], "success", "{t}");
    assert_eq!(t["chain"], "side");
    assert_eq!(t["fee"]["rule"], "dynamic");
    assert_eq!(amount(&t["amount"]), Amount(12345));
    let side_hash = t["hash"].as_str().expect("hash").to_string();
    let sc = side.client();
    assert_eq!(
        sc.account(bob).await.expect("account").balance,
        Amount(12345)
    );

    // `tx` finds it on the sidechain without being told which chain.
    let tx = w.json(&["tx", &side_hash]);
    assert_eq!(tx["chain"], "side");
    assert_eq!(tx["status"], "success");
    assert_eq!(tx["transaction"]["hash"], side_hash.as_str());
    assert_eq!(tx["receipt"]["fee_paid"], t["fee_paid"]);

    // --async returns at once; the next transfer takes the following nonce.
    let a = send("side", &["--async", "2"]);
    assert_eq!(a["status"], "pending");
    assert_eq!(a["nonce"], 1);
    let b = w.json(&[
        "transfer", "--chain", "side", "--from", "dev0", "--to", "bob", "0.25",
    ]);
    assert_eq!(b["nonce"], 2);
    assert_eq!(b["status"], "success");
    let async_hash: primitives::types::Hash =
        a["hash"].as_str().expect("hash").parse().expect("hash");
    wait_included(&sc, async_hash).await.expect("included");

    // History from the nodes: out for the sender, in for the recipient, on both chains.
    let h = w.json(&["history", "dev0"]);
    let out: Vec<(&str, &str)> = h["transfers"]
        .as_array()
        .expect("transfers")
        .iter()
        .map(|t| {
            (
                t["chain"].as_str().unwrap_or(""),
                t["direction"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        out,
        [
            ("main", "out"),
            ("side", "out"),
            ("side", "out"),
            ("side", "out")
        ]
    );
    let h = w.json(&["history", &bob.to_checksum(), "--chain", "side"]);
    let transfers = h["transfers"].as_array().expect("transfers");
    assert_eq!(transfers.len(), 3);
    assert!(transfers.iter().all(|t| t["direction"] == "in"));
    assert_eq!(h["scanned"][0]["chain"], "side");

    // Human output by default.
    let human = w.run(&["balance", "bob", "--chain", "main"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("1.5 coins"), "{}", human.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_path_gives_its_reason_and_a_nonzero_exit() {
    let main = start(ChainKind::Main, 300);
    let side = start(ChainKind::Side, 250);
    let w = Wallet::new(&main.http, &side.http);
    w.json(&["import-dev", "dev1", "1"]);
    let bob = addr(&w.json(&["new", "bob"])["address"]).to_checksum();
    let send = |extra: &[&str]| {
        let mut args = vec![
            "transfer", "--chain", "main", "--from", "dev1", "--to", &bob,
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };

    // Bad password, in text and in JSON.
    std::fs::write(w.dir.path().join("wrong"), "not it\n").expect("write");
    let wrong = w.path("wrong");
    let r = send(&["1", "--password-file", &wrong]);
    r.fails(3, "bad password");
    let r = send(&["1", "--password-file", &wrong, "--json"]);
    r.fails(3, "bad password");
    let e = r.json();
    assert_eq!(e["error"]["kind"], "bad_password");
    assert_eq!(e["error"]["exit_code"], 3);
    // WALLET_PASSWORD is a password source too.
    let r = Wallet::finish(
        w.command(&["address", "bob"])
            .env("WALLET_PASSWORD", "x")
            .output()
            .expect("runs"),
    );
    assert_eq!(r.code, 0, "address needs no password: {}", r.stderr);

    // Unknown key, existing key, bad key name.
    w.run(&[
        "transfer", "--chain", "main", "--from", "nobody", "--to", &bob, "1",
    ])
    .fails(3, "unknown key \"nobody\"");
    w.run(&["balance", "nobody"]).fails(3, "unknown key");
    w.run(&["import-dev", "dev1", "1"])
        .fails(3, "already exists");
    w.run(&["new", "../evil"]).fails(3, "invalid key name");

    // Node down: nothing listens on the port.
    let down = format!("http://127.0.0.1:{}", closed_port());
    w.run(&["balance", "bob", "--chain", "main", "--main-rpc", &down])
        .fails(4, "unreachable");
    send(&["1", "--main-rpc", &down]).fails(4, "mainchain node at");
    let r = w.run(&["balance", "bob", "--side-rpc", &down, "--json"]);
    r.fails(4, "sidechain node");
    assert_eq!(r.json()["error"]["kind"], "node_down");
    // An endpoint of the other chain.
    w.run(&[
        "balance",
        "bob",
        "--chain",
        "main",
        "--main-rpc",
        &side.http,
    ])
    .fails(4, "serves \"sidechain\"");

    // Refused by the wallet before sending: the balance does not cover amount + fee.
    w.run(&[
        "transfer", "--chain", "main", "--from", "bob", "--to", &bob, "1",
    ])
    .fails(5, "insufficient balance");
    send(&["5000"]).fails(5, "insufficient balance");

    // Refused by the node, with the node's reason.
    let ok = w.json(&[
        "transfer", "--chain", "main", "--from", "dev1", "--to", &bob, "1",
    ]);
    assert_eq!(ok["nonce"], 0);
    let r = send(&["1", "--nonce", "0", "--json"]);
    r.fails(5, "nonce_too_low");
    assert_eq!(r.json()["error"]["reason"], "nonce_too_low");
    send(&["1", "--fee", "1"]).fails(5, "fee_too_low");
    w.run(&[
        "transfer",
        "--chain",
        "side",
        "--from",
        "dev1",
        "--to",
        &bob,
        "1",
        "--max-fee",
        "1",
    ])
    .fails(5, "fee_too_low");

    // Bad amounts and fee options.
    send(&["-1"]).fails(1, "negative");
    send(&["0.0000000000000000001"]).fails(1, "at most 18 decimal places");
    send(&["340282366920938463464"]).fails(1, "too large");
    send(&["1.5", "--raw"]).fails(1, "whole base units");
    send(&["1", "--max-tip", "5"]).fails(1, "--max-tip apply to the sidechain");
    w.run(&[
        "transfer", "--chain", "main", "--from", "dev1", "--to", "0x1234", "1",
    ])
    .fails(1, "--to");

    // Amounts in other notations, and an address whose EIP-55 checksum is mistyped (one
    // letter's case flipped): refused, not read as something else.
    send(&["1e3"]).fails(1, "expected a decimal number");
    send(&["1,5"]).fails(1, "expected a decimal number");
    let flip = bob
        .char_indices()
        .skip(2)
        .find(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .expect("a letter in the address");
    let mut mistyped: Vec<char> = bob.chars().collect();
    mistyped[flip] = if mistyped[flip].is_ascii_uppercase() {
        mistyped[flip].to_ascii_lowercase()
    } else {
        mistyped[flip].to_ascii_uppercase()
    };
    let mistyped: String = mistyped.into_iter().collect();
    w.run(&[
        "transfer", "--chain", "main", "--from", "dev1", "--to", &mistyped, "1",
    ])
    .fails(1, "checksum");

    // A key file asking for scrypt with n = 2^40 (128 TiB of memory): refused at once.
    let bob_file = w.dir.path().join("keystore").join("bob.json");
    let mut huge: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bob_file).expect("bob's key file"))
            .expect("json");
    huge["crypto"]["kdfparams"]["n"] = (1u64 << 40).into();
    std::fs::write(
        w.dir.path().join("keystore").join("huge.json"),
        huge.to_string(),
    )
    .expect("write");
    let r = w.run(&[
        "transfer", "--chain", "main", "--from", "huge", "--to", &bob, "1",
    ]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("scrypt"), "{}", r.stderr);

    // Closed stdin where a password would be prompted for, or a key read from.
    let r = Wallet::finish(
        wallet_command()
            .current_dir(w.dir.path())
            .env("WALLET_HOME", w.dir.path().join("home"))
            .args(["--keystore", &w.path("keystore"), "new", "carol"])
            .stdin(Stdio::null())
            .output()
            .expect("runs"),
    );
    r.fails(3, "no password given");
    w.run(&["import", "empty"]).fails(1, "invalid private key");

    // Unknown transaction, bad hash.
    let unknown = format!("0x{}", "ab".repeat(32));
    w.run(&["tx", &unknown])
        .fails(1, "not known to the mainchain or sidechain node");
    w.run(&["tx", "0x12"]).fails(1, "transaction hash");

    // A private key that is not one, from stdin; the input is not echoed.
    let r = w.run_with_stdin(&["import", "junk"], "0xnot-a-key\n");
    r.fails(1, "invalid private key");
    assert!(!r.stderr.contains("not-a-key"));
    // A good one from stdin works and lands at the expected address.
    let r = w.run_with_stdin(
        &["import", "dev2", "--json"],
        &format!("{}\n", dev_key(2).to_hex()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(addr(&r.json()["address"]), dev_key(2).address());

    // A config file with a typo is an error, not a silent default.
    let cfg = w.dir.path().join("config.toml");
    std::fs::write(&cfg, "main_rcp = \"http://x\"\n").expect("write");
    w.run(&["balance", "bob", "--config", &cfg.display().to_string()])
        .fails(1, "config file");

    assert!(Path::new(&w.path("keystore")).is_dir());
}

/// A pegged mainchain/sidechain genesis pair whose federation never signs (no member runs).
fn pegged(
    main_authority: Address,
    side_authority: Address,
    main_ms: u64,
) -> (primitives::genesis::Genesis, primitives::genesis::Genesis) {
    let members: Vec<Address> = (0..3).map(|_| SecretKey::random().address()).collect();
    pegged_geneses(
        main_authority,
        side_authority,
        test_peg(&members, 2),
        main_ms,
        500,
    )
}

/// `deposit --async` only sends the Lock on the mainchain: the sidechain's node is not needed,
/// and here none runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_with_async_needs_no_sidechain_node() {
    let ma = SecretKey::random();
    let (mg, _) = pegged(ma.address(), SecretKey::random().address(), 300);
    let main = TestNode::start(ChainKind::Main, &mg, Some(ma)).expect("main starts");
    let down = format!("http://127.0.0.1:{}", closed_port());
    let w = Wallet::new(&main.http, &down);
    w.json(&["import-dev", "dev0", "0"]);
    let d = w.json(&["deposit", "--from", "dev0", "2", "--async"]);
    assert_eq!(d["direction"], "deposit", "{d}");
    assert_eq!(d["state"], "pending", "{d}");
    let id: primitives::types::Hash = d["id"].as_str().expect("id").parse().expect("hash");
    let mc = main.client();
    wait_included(&mc, id).await.expect("included");
}

/// The wallet said "submitted", then the node lost the transaction (here: killed before its
/// next block, with its journal removed, as a node that died before writing it would be).
/// `wallet status` must say no node knows it and how to resend it; `wallet resend` sends the
/// same bytes again (twice is fine), and `status --wait` resends on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_no_node_knows_is_reported_unknown_and_resent() {
    let (ma, sa) = (SecretKey::random(), SecretKey::random());
    // Long mainchain slots, so the two deposits are still pooled when the node dies.
    let (mg, sg) = pegged(ma.address(), sa.address(), 10_000);
    let mut main = TestNode::start(ChainKind::Main, &mg, Some(ma)).expect("main starts");
    let side = TestNode::start(ChainKind::Side, &sg, Some(sa)).expect("side starts");
    let mut w = Wallet::new(&main.http, &side.http);
    w.json(&["import-dev", "dev0", "0"]);
    let mc = main.client();
    // Right after a block of a slot boundary (not the one a start produces at once, mid-slot),
    // so a whole 10 s slot remains for the two deposits.
    let first = main.wait_for_height(1).await.expect("first block");
    main.wait_for_height(first + 1).await.expect("a block");
    let a = w.json(&["deposit", "--from", "dev0", "2", "--async"]);
    let b = w.json(&["deposit", "--from", "dev0", "3", "--async"]);
    let (a, b) = (
        a["id"].as_str().expect("id").to_string(),
        b["id"].as_str().expect("id").to_string(),
    );
    for id in [&a, &b] {
        let h: primitives::types::Hash = id.parse().expect("hash");
        let t = mc.transaction(h).await.expect("lookup").expect("known");
        assert!(
            t.block_number.is_none(),
            "the slot ended too early for this test: {id} is already in a block"
        );
    }
    main.kill9();
    match std::fs::remove_file(main.data_dir().join("txjournal.redb")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("removing the journal: {e}"),
    }
    main.spawn().expect("main restarts");
    w.main = main.http.clone();
    let mc = main.client();

    // No node knows it: status says so, names the node and gives the exact command.
    let st = w.json(&["status", &a]);
    assert_eq!(st["state"], "unknown", "{st}");
    let resend = format!("wallet resend {a}");
    assert_eq!(st["resend"], resend.as_str(), "{st}");
    let text = w.run(&["status", &a]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("not known to the mainchain node") && text.stdout.contains(&resend),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains("Pending") && !text.stdout.contains("submitted"),
        "{}",
        text.stdout
    );
    w.run(&["tx", &a]).fails(1, &resend);

    // `wallet resend` sends the same bytes: same hash; a second time is already known.
    let r = w.json(&["resend", &a]);
    assert_eq!(r["hash"], a.as_str(), "{r}");
    assert_eq!(r["chain"], "main", "{r}");
    assert_eq!(r["result"], "accepted", "{r}");
    let r = w.json(&["resend", &a]);
    assert_eq!(r["result"], "already_known", "{r}");
    let ah: primitives::types::Hash = a.parse().expect("hash");
    wait_included(&mc, ah).await.expect("included");
    let st = w.json(&["status", &a]);
    assert_ne!(st["state"], "unknown", "{st}");
    assert_ne!(st["state"], "pending", "{st}");

    // `status --wait` resends what no node knows by itself, then follows it: it is included,
    // and with no federation running it times out waiting for the payout.
    let r = w.run(&["status", &b, "--wait", "--timeout", "25", "--json"]);
    assert_eq!(r.code, 6, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.json()["error"]["kind"], "peg_timeout", "{}", r.stdout);
    assert!(r.stderr.contains("resent"), "{}", r.stderr);
    let bh: primitives::types::Hash = b.parse().expect("hash");
    let t = mc.transaction(bh).await.expect("lookup").expect("known");
    assert!(t.block_number.is_some(), "{t:?}");

    // A hash this wallet never sent is still simply not found.
    let unknown = format!("0x{}", "cd".repeat(32));
    w.run(&["status", &unknown]).fails(1, "not known");
}
