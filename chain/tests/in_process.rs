//! The in-process tier: a whole node (driver, network, RPC) started with `node::spawn` on a
//! temp data dir and ports 0, driven over its own JSON-RPC client. Faster than the process
//! tests in `tests/`, and a panic shows its stack here.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use chain::config::NodeConfig;
use chain::node::{self, NodeHandle};
use chain::rules::{ChainRules, FeeRuleKind};
use parity_scale_codec::Encode;
use primitives::crypto::SecretKey;
use primitives::dev::dev_key;
use primitives::peg::PegRole;
use primitives::tx::{Fee, Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes};
use rpc_api::api::{EthApiClient, TwinpegApiClient};
use rpc_api::types::TxStatus;

/// Generous: the machine may be loaded; every wait ends as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(60);

fn rules() -> ChainRules {
    ChainRules {
        name: "inprocess",
        env_prefix: "INPROCESS_TEST",
        default_block_time_ms: 200,
        default_rpc_port: 0,
        default_p2p_port: 0,
        fee_rule: FeeRuleKind::FeeRate,
        peg_role: PegRole::Main,
    }
}

/// Polls `probe` until it yields a value or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node on the data dir `dir`, started (or restarted) in process.
async fn spawn(dir: &Path) -> NodeHandle {
    node::spawn(rules(), NodeConfig::test(dir))
        .await
        .expect("node starts")
}

/// A node started on a fresh temp data dir, with the dir (removed on drop).
async fn fresh() -> (tempfile::TempDir, NodeHandle) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = spawn(dir.path()).await;
    (dir, node)
}

async fn head(node: &NodeHandle) -> u64 {
    node.client().head().await.expect("head").number
}

async fn wait_for_height(node: &NodeHandle, height: u64) {
    eventually(&format!("height {height}"), || async {
        (head(node).await >= height).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_sent_over_rpc_is_included_and_moves_the_balance() {
    let (_dir, node) = fresh().await;
    assert_ne!(node.rpc_addr.port(), 0, "the RPC bound a real port");
    assert!(!node.p2p_addrs().is_empty(), "the p2p listener is up");
    let client = node.client();
    let info = client.chain_info().await.expect("chain info");
    assert_eq!(info.authorities, vec![dev_key(0).expect("key").address()]);

    let sender = dev_key(1).expect("key");
    let to = SecretKey::random().address();
    let before = client.account(sender.address()).await.expect("account");
    let amount = Amount::coins(3);
    let fee = Amount(1_000_000_000);
    let tx = Transaction {
        chain_id: info.chain_id,
        nonce: before.nonce,
        fee: Fee::Flat { fee },
        kind: TxKind::Transfer { to, amount },
    }
    .sign(&sender);
    let hash = client
        .send_transaction(Bytes(tx.encode()))
        .await
        .expect("accepted");
    assert_eq!(hash, tx.hash());

    let lookup = eventually("the transfer's inclusion", || async {
        client
            .transaction(hash)
            .await
            .expect("lookup")
            .filter(|l| l.status != TxStatus::Pending)
    })
    .await;
    assert_eq!(lookup.status, TxStatus::Success, "{lookup:?}");
    assert!(lookup.block_number.is_some_and(|n| n >= 1));

    let received = client.account(to).await.expect("account");
    assert_eq!(received.balance, amount);
    let after = client.account(sender.address()).await.expect("account");
    assert_eq!(after.nonce, before.nonce + 1);
    assert_eq!(
        after.balance.0,
        before.balance.0 - amount.0 - fee.0,
        "the sender paid the amount and the fee"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_in_process_keeps_its_head() {
    let (dir, node) = fresh().await;
    wait_for_height(&node, 3).await;
    node.stop().await;
    // Read after the stop: the driver may have produced one more block while stopping.
    let (height, hash) = {
        let store = chain::store::Store::open(dir.path()).expect("the stop closed the store");
        let head = store.head().expect("head");
        let header = store.header(&head).expect("store").expect("head header");
        (header.number, head)
    };
    assert!(height >= 3);

    let node = spawn(dir.path()).await;
    let (restarted_height, restarted_hash) = {
        let tip = node.chain.tip();
        (tip.head.number, tip.head_hash)
    };
    assert!(restarted_height >= height, "the restart kept its head");
    let same = node
        .client()
        .block_by_number(height, None)
        .await
        .expect("block")
        .expect("the old head is still canonical");
    assert_eq!(same.summary.hash, hash);
    if restarted_height == height {
        assert_eq!(restarted_hash, hash);
    }
    // And it goes on producing from there.
    wait_for_height(&node, height + 2).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_node_and_closes_its_store() {
    let (dir, node) = fresh().await;
    wait_for_height(&node, 1).await;
    let client = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(node.rpc_url())
        .expect("client");
    drop(node);
    // The RPC stops serving, and every task and the driver thread let go of the store: only
    // then can the data dir be opened again.
    eventually("the RPC to stop", || async {
        client.head().await.is_err().then_some(())
    })
    .await;
    eventually("the store to close", || async {
        chain::store::Store::open(dir.path()).ok()
    })
    .await;
}

/// A lone authority is a quorum of one: its blocks become final, each with a justification
/// that checks against the genesis authority key alone, and a restart resumes from the stored
/// final block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_become_final_with_a_checkable_proof_and_stay_final_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = node::spawn(rules(), NodeConfig::test(dir.path()))
        .await
        .expect("spawn");
    let client = node.client();
    let finalized = eventually("a final block above 3", || async {
        let f = client.head().await.ok()?.finalized?;
        (f.number >= 3).then_some(f)
    })
    .await;
    let proof = client
        .finality_proof(2)
        .await
        .expect("rpc")
        .expect("block 2 is final");
    assert!(proof.justified.number >= 2);
    let info = client.chain_info().await.expect("chain info");
    let authorities = finality::Authorities {
        domain: finality::SigningDomain {
            chain_id: info.chain_id,
            genesis: info.genesis_hash,
        },
        addresses: info.authorities.clone(),
    };
    let justification = finality::Justification {
        instance: proof.instance,
        round: proof.round,
        block: finality::BlockRef {
            number: proof.justified.number,
            hash: proof.justified.hash,
        },
        precommits: proof.precommits.iter().map(|s| (0, *s)).collect(),
    };
    authorities
        .verify_justification(&justification)
        .expect("the proof checks with the authority keys");
    // Moved to another block, the same signatures prove nothing.
    let mut forged = justification.clone();
    forged.block.hash = proof.hash;
    forged.block.number = proof.number;
    if forged.block != justification.block {
        assert!(authorities.verify_justification(&forged).is_err());
    }
    let status = client.finality_status().await.expect("status");
    assert_eq!(status.quorum, 1);
    assert!(status.finalized.number >= finalized.number);
    assert!(client.finality_proof(10_000).await.expect("rpc").is_none());

    node.stop().await;
    let node = node::spawn(rules(), NodeConfig::test(dir.path()))
        .await
        .expect("restart");
    let after = node.client().head().await.expect("head");
    let f = after.finalized.expect("finalized");
    assert!(
        f.number >= finalized.number,
        "final {} after restart, {} before",
        f.number,
        finalized.number
    );
    node.stop().await;
}

/// An Ethereum-format legacy transfer, as `cast send --legacy` would sign it.
fn eth_transfer(key: &SecretKey, chain_id: u64, nonce: u64, to: Address, amount: Amount) -> Bytes {
    let signed = Transaction {
        chain_id,
        nonce,
        fee: Fee::EthLegacy {
            // The dev genesis's fee rate, per gas.
            gas_price: primitives::eth::per_gas(Amount(1_000_000)),
            gas_limit: 21_000,
        },
        kind: TxKind::Transfer { to, amount },
    }
    .sign(key);
    Bytes(primitives::eth::encode_signed(&signed).expect("an Ethereum-format transfer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_and_nonces_answer_at_heights_500_blocks_back_and_not_past_the_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fast = ChainRules {
        default_block_time_ms: 10,
        ..rules()
    };
    let node = node::spawn(fast, NodeConfig::test(dir.path()))
        .await
        .expect("node starts");
    let client = node.client();
    let chain_id = client.chain_info().await.expect("info").chain_id;
    let sender = dev_key(1).expect("key");
    let me = sender.address();
    let at = |n: u64| Some(format!("0x{n:x}"));
    // Three transfers, each in its own block: (block, balance after, nonce after).
    let mut points = Vec::new();
    for nonce in 0..3u64 {
        let raw = eth_transfer(&sender, chain_id, nonce, Address([9; 20]), Amount::coins(1));
        let hash = client.send_raw_transaction(raw).await.expect("accepted");
        let block = eventually("the transfer's receipt", || async {
            client
                .get_transaction_receipt(hash)
                .await
                .expect("receipt")
                .map(|r| u64::from_str_radix(r.block_number.trim_start_matches("0x"), 16))
        })
        .await
        .expect("hex block number");
        let balance = client.get_balance(me, at(block)).await.expect("balance");
        points.push((block, balance, nonce + 1));
    }
    let first = points[0].0;
    let before = client
        .get_balance(me, at(first - 1))
        .await
        .expect("balance before");
    wait_for_height(&node, points[2].0 + 500).await;
    // 500 blocks later every height still answers as it did.
    assert_eq!(
        client
            .get_balance(me, at(first - 1))
            .await
            .expect("balance"),
        before
    );
    assert_eq!(
        client
            .get_transaction_count(me, at(first - 1))
            .await
            .expect("nonce"),
        "0x0"
    );
    for (block, balance, nonce) in &points {
        assert_eq!(
            &client.get_balance(me, at(*block)).await.expect("balance"),
            balance,
            "balance at {block}"
        );
        assert_eq!(
            client
                .get_transaction_count(me, at(*block))
                .await
                .expect("nonce"),
            format!("0x{nonce:x}")
        );
    }
    assert_ne!(points[0].1, points[2].1, "the transfers moved the balance");
    // Above the head, and further back than the window, is refused, not guessed.
    let top = head(&node).await;
    let err = client
        .get_balance(me, at(top + 1000))
        .await
        .expect_err("above the head");
    assert!(err.to_string().contains("-32021"), "{err}");
    let window = chain::rpc::STATE_HISTORY_BLOCKS;
    wait_for_height(&node, window + 2).await;
    let err = client
        .get_balance(me, at(head(&node).await - window - 1))
        .await
        .expect_err("past the window");
    assert!(err.to_string().contains("-32021"), "{err}");
    node.stop().await;
}

/// One raw HTTP/1.1 exchange with the node's RPC port: what a browser or a hand-written
/// client sends, headers and all. Returns the whole response, lower-cased.
async fn raw_http(node: &NodeHandle, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(node.rpc_addr)
        .await
        .expect("connect");
    // A server that refuses early (a body over its limit) may close before all is written:
    // what it answered is still there to read.
    let _ = s.write_all(request.as_bytes()).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).to_lowercase()
}

fn post(origin: Option<&str>, body: &str) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_cors_where_configured_and_params_must_be_an_array_or_object() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = NodeConfig::test(dir.path());
    cfg.rpc_cors_origins = vec!["*".into()];
    let open = node::spawn(rules(), cfg).await.expect("node starts");
    let (_closed_dir, closed) = fresh().await;
    let preflight = "OPTIONS / HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n".to_string();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;

    // With origins configured: the preflight is answered and calls carry the header.
    let answer = raw_http(&open, preflight.clone()).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains("access-control-allow-origin: *"),
        "{answer}"
    );
    assert!(
        answer.contains("access-control-allow-headers: content-type"),
        "{answer}"
    );
    let answer = raw_http(&open, post(Some("http://localhost:3000"), call)).await;
    assert!(
        answer.contains("access-control-allow-origin: *"),
        "{answer}"
    );
    assert!(answer.contains("\"result\""), "{answer}");
    // Without: no CORS headers at all (the default for a node that is not a devnet's).
    let answer = raw_http(&closed, post(Some("http://localhost:3000"), call)).await;
    assert!(!answer.contains("access-control-allow-origin"), "{answer}");
    assert!(answer.contains("\"result\""), "{answer}");

    // `params` that is neither an array nor an object is refused, not served.
    for params in ["5", "\"0x1\"", "true"] {
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{params}}}"#);
        let answer = raw_http(&closed, post(None, &body)).await;
        assert!(answer.contains("\"error\""), "params {params}: {answer}");
        assert!(!answer.contains("\"result\""), "params {params}: {answer}");
    }
    // In a batch too: the bad entry gets an error, the good one its result.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":7},{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}]"#;
    let answer = raw_http(&closed, post(None, batch)).await;
    assert!(
        answer.contains("params must be an array or an object"),
        "{answer}"
    );
    assert!(answer.contains("\"result\""), "{answer}");
    // Absent params are fine for a method without any.
    let answer = raw_http(
        &closed,
        post(None, r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#),
    )
    .await;
    assert!(answer.contains("\"result\""), "{answer}");
    open.stop().await;
    closed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_raw_transactions_is_answered_entry_by_entry_in_order() {
    let (_dir, node) = fresh().await;
    let client = node.client();
    let chain_id = client.chain_info().await.expect("info").chain_id;
    let sender = dev_key(1).expect("key");
    let raws: Vec<Bytes> = (0..3)
        .map(|n| eth_transfer(&sender, chain_id, n, Address([9; 20]), Amount::coins(1)))
        .collect();
    let hex = |b: &Bytes| format!("\"0x{}\"", hex_string(&b.0));
    // Valid, malformed, valid, the first again, valid: answered in this order, each as alone.
    let entries = [
        hex(&raws[0]),
        "\"0x1234\"".to_string(),
        hex(&raws[1]),
        hex(&raws[0]),
        hex(&raws[2]),
    ];
    let body = format!(
        "[{}]",
        entries
            .iter()
            .enumerate()
            .map(|(i, p)| format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_sendRawTransaction","params":[{p}]}}"#
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let answer = raw_http(&node, post(None, &body)).await;
    let json = answer.split("\r\n\r\n").nth(1).expect("a body");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    let by_id = |i: u64| {
        v.as_array()
            .expect("an array")
            .iter()
            .find(|e| e["id"] == i)
            .cloned()
            .expect("an answer per id")
    };
    let keccak = |b: &Bytes| format!("0x{}", hex_string(&primitives::crypto::keccak256(&b.0).0));
    assert_eq!(by_id(0)["result"], keccak(&raws[0]), "{v}");
    assert_eq!(by_id(1)["error"]["code"], -32000, "{v}");
    assert_eq!(by_id(2)["result"], keccak(&raws[1]), "{v}");
    assert_eq!(by_id(3)["error"]["message"], "already known", "{v}");
    assert_eq!(by_id(4)["result"], keccak(&raws[2]), "{v}");
    for raw in &raws {
        let hash = primitives::crypto::keccak256(&raw.0);
        eventually("inclusion", || async {
            client.get_transaction_receipt(hash).await.expect("receipt")
        })
        .await;
    }
    node.stop().await;
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_do_not_keep_a_client_out() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = NodeConfig::test(dir.path());
    cfg.rpc_max_connections = 16;
    let node = node::spawn(rules(), cfg).await.expect("node starts");
    // Twice the connection limit, each stuck half-way through its headers.
    let mut stalled = Vec::new();
    for _ in 0..32 {
        let mut s = tokio::net::TcpStream::connect(node.rpc_addr)
            .await
            .expect("connect");
        s.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Le")
            .await
            .expect("write");
        stalled.push(s);
    }
    let client = node.client();
    let start = Instant::now();
    eventually(
        "a real client served while slow ones hold connections",
        || async { client.head().await.ok() },
    )
    .await;
    eprintln!("served after {:?}", start.elapsed());
    drop(stalled);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_bombs_huge_batches_and_oversized_bodies_get_errors_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = NodeConfig::test(dir.path());
    cfg.rpc_max_request_bytes = 8 << 20;
    let node = node::spawn(rules(), cfg).await.expect("node starts");
    let client = node.client();
    let still_serving = || async {
        client.head().await.expect("the node keeps serving");
    };
    // 100,000 levels of nesting in params.
    let depth = 100_000;
    let bomb = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let answer = raw_http(&node, post(None, &bomb)).await;
    assert!(
        answer.contains("\"error\""),
        "{}",
        &answer[..answer.len().min(400)]
    );
    assert!(!answer.contains("\"result\""));
    still_serving().await;
    // A batch of 100,000 entries: over rpc_max_batch_len, refused as a whole.
    let entry = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let batch = format!("[{}]", vec![entry; 100_000].join(","));
    assert!(batch.len() < 8 << 20);
    let answer = raw_http(&node, post(None, &batch)).await;
    assert!(
        !answer.contains("\"result\""),
        "{}",
        &answer[..answer.len().min(400)]
    );
    assert!(
        answer.contains("the batch request was too large"),
        "{}",
        &answer[..answer.len().min(400)]
    );
    still_serving().await;
    // A body over rpc_max_request_bytes: refused, not read into memory whole.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["{}"]}}"#,
        "a".repeat(9 << 20)
    );
    let answer = raw_http(&node, post(None, &big)).await;
    assert!(!answer.contains("\"result\""));
    assert!(
        answer.starts_with("http/1.1 413") && answer.contains("request is too big"),
        "{}",
        &answer[..answer.len().min(400)]
    );
    still_serving().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transaction_sent_on_50_connections_at_once_is_taken_once_and_included_once() {
    let (_dir, node) = fresh().await;
    let client = node.client();
    let chain_id = client.chain_info().await.expect("info").chain_id;
    let raw = eth_transfer(
        &dev_key(2).expect("key"),
        chain_id,
        0,
        Address([9; 20]),
        Amount::coins(1),
    );
    let hash = primitives::crypto::keccak256(&raw.0);
    let url = format!("http://{}", node.rpc_addr);
    let sends: Vec<_> = (0..50)
        .map(|_| {
            let (url, raw) = (url.clone(), raw.clone());
            tokio::spawn(async move {
                let c = jsonrpsee::http_client::HttpClientBuilder::default()
                    .build(url)
                    .expect("client");
                c.send_raw_transaction(raw).await
            })
        })
        .collect();
    let mut accepted = 0;
    for s in sends {
        match s.await.expect("task") {
            Ok(h) => {
                assert_eq!(h, hash);
                accepted += 1;
            }
            // Pooled already, or (on a loaded machine, a block later) included already.
            Err(e) => assert!(
                e.to_string().contains("already known") || e.to_string().contains("nonce too low"),
                "{e}"
            ),
        }
    }
    assert_eq!(accepted, 1, "exactly one submission takes it");
    let receipt = eventually("inclusion", || async {
        client.get_transaction_receipt(hash).await.expect("receipt")
    })
    .await;
    // Included once: its block carries it once, and the sender's nonce moved by one.
    let number =
        u64::from_str_radix(receipt.block_number.trim_start_matches("0x"), 16).expect("hex");
    let block = client
        .block_by_number(number, None)
        .await
        .expect("block")
        .expect("exists");
    assert_eq!(
        block
            .transaction_hashes
            .iter()
            .filter(|h| **h == hash)
            .count(),
        1
    );
    let nonce = client
        .get_transaction_count(dev_key(2).expect("key").address(), None)
        .await
        .expect("nonce");
    assert_eq!(nonce, "0x1");
    node.stop().await;
}
