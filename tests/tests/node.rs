//! End-to-end: real `mainchain` and `sidechain` processes on loopback, driven over JSON-RPC.

use std::io::{Read, Write};
use std::net::TcpStream;

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use primitives::crypto::SecretKey;
use primitives::tx::Fee;
use primitives::types::{Amount, Bytes, Hash};
use rpc_api::types::{SubmitResult, TxStatus};
use rpc_api::{codes, EthApiClient, NetApiClient, TwinpegApiClient};
use twinpeg_e2e::{
    dev_key, eventually, fee_for, included_transactions, test_genesis, transfer, wait_included,
    wait_success, ChainKind, TestNode,
};

fn rpc_code(e: ClientError) -> i32 {
    match e {
        ClientError::Call(obj) => obj.code(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

async fn transfers_follow_the_fee_rule(kind: ChainKind, block_time_ms: u64) {
    let authority = SecretKey::random();
    let genesis = test_genesis(kind, authority.address(), block_time_ms);
    let node = TestNode::start(kind, &genesis, Some(authority.clone())).expect("node starts");
    let c = node.client();
    let info = c.chain_info().await.expect("chain info");
    assert_eq!(info.chain_id, genesis.chain_id);
    assert_eq!(
        c.chain_id().await.expect("eth_chainId"),
        format!("0x{:x}", genesis.chain_id)
    );
    assert_eq!(
        c.version().await.expect("net_version"),
        genesis.chain_id.to_string()
    );

    // Watch heads over WebSocket while transfers happen.
    let ws = node.ws_client().await.expect("ws connects");
    let mut heads = ws.subscribe_new_heads().await.expect("subscribe");

    let sender = dev_key(0);
    let recipient = SecretKey::random().address();
    let fee = fee_for(&c).await;
    let amounts = [Amount::coins(1), Amount::coins(2), Amount(12345)];
    // One single submission, then a batch of two.
    let first = c
        .send_transaction(transfer(
            &sender,
            genesis.chain_id,
            0,
            recipient,
            amounts[0],
            fee.clone(),
        ))
        .await
        .expect("first accepted");
    let batch = c
        .send_transactions(vec![
            transfer(
                &sender,
                genesis.chain_id,
                1,
                recipient,
                amounts[1],
                fee.clone(),
            ),
            transfer(
                &sender,
                genesis.chain_id,
                2,
                recipient,
                amounts[2],
                fee.clone(),
            ),
        ])
        .await
        .expect("batch call");
    let mut hashes = vec![first];
    for r in batch {
        hashes.push(
            r.hash
                .unwrap_or_else(|| panic!("batch entry refused: {:?}", r.error)),
        );
    }

    let mut fees = Amount::ZERO;
    let mut burned = Amount::ZERO;
    let mut to_producer = Amount::ZERO;
    for h in &hashes {
        let t = wait_included(&c, *h).await.expect("included");
        assert_eq!(t.status, TxStatus::Success, "{t:?}");
        let r = t.receipt.expect("receipt");
        assert_eq!(t.transaction.from, sender.address());
        // Each rule's arithmetic, checked against the block the transaction landed in.
        let block = c
            .block_by_number(t.block_number.expect("number"), Some(true))
            .await
            .expect("block call")
            .expect("block exists");
        assert!(block.transaction_hashes.contains(h));
        match kind {
            ChainKind::Main => {
                let Fee::Flat { fee } = &fee else {
                    unreachable!()
                };
                assert_eq!(r.fee_paid, *fee);
                assert_eq!(r.fee_to_producer, *fee);
                assert_eq!(r.fee_burned, Amount::ZERO);
            }
            ChainKind::Side => {
                let Fee::Dynamic { max_fee, max_tip } = &fee else {
                    unreachable!()
                };
                let base = block.summary.base_fee;
                let per_unit = (*max_fee).min(Amount(base.0 + max_tip.0));
                assert_eq!(r.fee_paid, Amount(per_unit.0 * r.weight as u128));
                assert_eq!(r.fee_burned, Amount(base.0 * r.weight as u128));
                assert_eq!(
                    r.fee_to_producer,
                    Amount((per_unit.0 - base.0) * r.weight as u128)
                );
                assert!(r.fee_burned.0 > 0);
            }
        }
        fees = Amount(fees.0 + r.fee_paid.0);
        burned = Amount(burned.0 + r.fee_burned.0);
        to_producer = Amount(to_producer.0 + r.fee_to_producer.0);
    }
    let sent: u128 = amounts.iter().map(|a| a.0).sum();
    let s = c.account(sender.address()).await.expect("account");
    assert_eq!(s.nonce, 3);
    assert_eq!(s.balance, Amount(Amount::coins(1000).0 - sent - fees.0));
    let r = c.account(recipient).await.expect("account");
    assert_eq!(r.balance, Amount(sent));
    let p = c.account(authority.address()).await.expect("account");
    assert_eq!(p.balance, to_producer);
    // Standard Ethereum reads agree, with lowercase addresses and a block tag.
    let bal: String = c
        .request(
            "eth_getBalance",
            jsonrpsee::rpc_params![format!("{recipient:?}").to_lowercase(), "latest"],
        )
        .await
        .expect("eth_getBalance");
    assert_eq!(bal, format!("0x{sent:x}"));
    assert_eq!(
        c.get_transaction_count(sender.address(), Some("pending".into()))
            .await
            .expect("nonce"),
        "0x3"
    );
    let head_number = c.block_number().await.expect("eth_blockNumber");
    assert!(u64::from_str_radix(head_number.trim_start_matches("0x"), 16).expect("hex") >= 1);

    let first_head = heads.next().await.expect("a head").expect("decodes");
    let second_head = heads.next().await.expect("a head").expect("decodes");
    assert_eq!(second_head.parent_hash, first_head.hash);
    if kind == ChainKind::Side {
        let supply = Amount::coins(1000).0 * 5;
        let mut total = burned.0;
        for a in [sender.address(), recipient, authority.address()] {
            total += c.account(a).await.expect("account").balance.0;
        }
        for i in 1..5 {
            total += c
                .account(dev_key(i).address())
                .await
                .expect("account")
                .balance
                .0;
        }
        assert_eq!(total, supply, "balances plus burned fees equal the supply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainchain_transfers_pay_the_fee_rate_to_the_producer() {
    transfers_follow_the_fee_rule(ChainKind::Main, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidechain_transfers_burn_the_base_fee_and_tip_the_producer() {
    transfers_follow_the_fee_rule(ChainKind::Side, 250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_committed_block() {
    let kind = ChainKind::Side;
    let authority = SecretKey::random();
    let genesis = test_genesis(kind, authority.address(), 200);
    let mut node = TestNode::start(kind, &genesis, Some(authority.clone())).expect("node starts");
    let c = node.client();
    let fee = fee_for(&c).await;
    let sender = dev_key(1);
    let to = dev_key(2).address();

    // Keep a stream of transfers going, and kill the node while it is busy.
    let mut nonce = 0u64;
    let mut last_included = 0u64;
    while last_included < 40 {
        let batch: Vec<Bytes> = (0..5)
            .map(|i| {
                transfer(
                    &sender,
                    genesis.chain_id,
                    nonce + i,
                    to,
                    Amount(1000),
                    fee.clone(),
                )
            })
            .collect();
        let res = c.send_transactions(batch).await.expect("batch call");
        assert!(res.iter().all(|r| r.hash.is_some()), "{res:?}");
        nonce += 5;
        last_included = c.account(sender.address()).await.expect("account").nonce;
    }
    let before = c.head().await.expect("head");
    let mut hashes = Vec::new();
    for n in 0..=before.number {
        hashes.push(
            c.block_by_number(n, None)
                .await
                .expect("call")
                .expect("block")
                .summary
                .hash,
        );
    }
    node.kill9();
    node.spawn().expect("restarts");
    let c = node.client();
    let after = c.head().await.expect("head");
    assert!(after.number >= before.number);
    for (n, h) in hashes.iter().enumerate() {
        let b = c
            .block_by_number(n as u64, None)
            .await
            .expect("call")
            .expect("block survived");
        assert_eq!(b.summary.hash, *h, "block {n} changed across kill -9");
    }
    // What the node had answered "accepted" for but not yet included comes back from its
    // journal and is included now: wait for that before comparing state and blocks.
    eventually("the re-admitted transfers included", || async {
        (c.health().await.ok()?.mempool == 0).then_some(())
    })
    .await
    .expect("pool drained");
    // State is exactly what the committed blocks say: nonce = transfers included.
    let head = c.head().await.expect("head");
    let txs = included_transactions(&c, head.number)
        .await
        .expect("included transactions");
    let included = txs.len() as u64;
    let burned: u128 = txs.iter().map(|(_, _, r)| r.fee_burned.0).sum();
    let s = c.account(sender.address()).await.expect("account");
    assert_eq!(s.nonce, included);
    assert_eq!(
        s.nonce, nonce,
        "every transfer the node accepted was included"
    );
    let r = c.account(to).await.expect("account");
    assert_eq!(
        r.balance.0,
        Amount::coins(1000).0 + 1000 * u128::from(included)
    );
    let p = c.account(authority.address()).await.expect("account");
    assert_eq!(
        s.balance.0 + r.balance.0 + p.balance.0 + burned,
        Amount::coins(2000).0,
        "no coin created or lost across the crash"
    );
    // And the node carries on: the next nonce is accepted and included.
    let h = c
        .send_transaction(transfer(
            &sender,
            genesis.chain_id,
            s.nonce,
            to,
            Amount(1),
            fee,
        ))
        .await
        .expect("accepted after restart");
    wait_success(&c, h).await;
    assert_eq!(node.starts, 2);
}

fn raw_http(addr: &str, payload: &[u8]) -> String {
    let host = addr.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(payload);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rpc_input_gets_errors_and_the_node_keeps_serving() {
    let authority = SecretKey::random();
    let genesis = test_genesis(ChainKind::Main, authority.address(), 300);
    let mut node =
        TestNode::start(ChainKind::Main, &genesis, Some(authority)).expect("node starts");
    let c = node.client();
    let fee = fee_for(&c).await;
    let k = dev_key(3);
    let to = dev_key(4).address();
    let id = genesis.chain_id;

    // Garbage on the socket, and a body that is not JSON-RPC.
    let _ = raw_http(&node.http, b"\x00\x01\x02 not http at all\r\n\r\n");
    let body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":";
    let reply = raw_http(
        &node.http,
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert!(reply.contains("-32700"), "parse error expected: {reply}");
    // Unknown method.
    let e = c
        .request::<String, _>("tp_noSuchMethod", jsonrpsee::rpc_params![])
        .await
        .expect_err("unknown");
    assert_eq!(rpc_code(e), -32601);

    // Undecodable transaction bytes.
    let e = c
        .send_transaction(Bytes(vec![0xde, 0xad, 0xbe, 0xef]))
        .await
        .expect_err("malformed");
    assert_eq!(rpc_code(e), codes::MALFORMED_TX);
    // Not hex at all: invalid params.
    let e = c
        .request::<Hash, _>("tp_sendTransaction", jsonrpsee::rpc_params!["zz"])
        .await
        .expect_err("bad hex");
    assert_eq!(rpc_code(e), -32602);
    // Oversized.
    let e = c
        .send_transaction(Bytes(vec![0u8; 20_000]))
        .await
        .expect_err("oversized");
    assert_eq!(rpc_code(e), codes::MALFORMED_TX);
    // Bad signature: recovery id out of range.
    let mut bad = transfer(&k, id, 0, to, Amount(1), fee.clone());
    let last = bad.0.len() - 1;
    bad.0[last] = 7;
    let e = c.send_transaction(bad).await.expect_err("bad signature");
    assert_eq!(rpc_code(e), codes::BAD_SIGNATURE);
    // Overflowing amount.
    let e = c
        .send_transaction(transfer(&k, id, 0, to, Amount(u128::MAX), fee.clone()))
        .await
        .expect_err("overflow");
    assert_eq!(rpc_code(e), codes::INSUFFICIENT_FUNDS);
    // Wrong chain id: a sidechain transaction sent to the mainchain.
    let e = c
        .send_transaction(transfer(&k, 298082, 0, to, Amount(1), fee.clone()))
        .await
        .expect_err("wrong chain");
    assert_eq!(rpc_code(e), codes::WRONG_CHAIN);
    // Fee too low.
    let e = c
        .send_transaction(transfer(
            &k,
            id,
            0,
            to,
            Amount(1),
            Fee::Flat { fee: Amount(1) },
        ))
        .await
        .expect_err("fee too low");
    assert_eq!(rpc_code(e), codes::FEE_TOO_LOW);
    // Replays: the same transaction while pending, and after inclusion.
    let good = transfer(&k, id, 0, to, Amount(1), fee.clone());
    let h = c.send_transaction(good.clone()).await.expect("accepted");
    let e = c
        .send_transaction(good.clone())
        .await
        .expect_err("already known");
    assert_eq!(rpc_code(e), codes::ALREADY_KNOWN);
    wait_included(&c, h).await.expect("included");
    let e = c.send_transaction(good).await.expect_err("replayed nonce");
    assert_eq!(rpc_code(e), codes::NONCE_TOO_LOW);
    // A batch reports each entry on its own.
    let res: Vec<SubmitResult> = c
        .send_transactions(vec![
            Bytes(vec![1, 2, 3]),
            transfer(&k, id, 1, to, Amount(1), fee.clone()),
        ])
        .await
        .expect("batch call");
    assert_eq!(
        res[0].error.as_ref().map(|e| e.reason.as_str()),
        Some("malformed")
    );
    assert!(res[1].hash.is_some());

    // Still alive and producing; the refusals are counted.
    assert!(node.is_running());
    let now = c.head().await.expect("head").number;
    node.wait_for_height(now + 2)
        .await
        .expect("still producing");
    let metrics = raw_http(
        &node.http,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(metrics.contains("reason=\"nonce_too_low\""), "{metrics}");
    let health = raw_http(
        &node.http,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(health.contains("\"status\":\"ok\""), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mainchain_signature_is_refused_by_the_sidechain() {
    let authority = SecretKey::random();
    let genesis = test_genesis(ChainKind::Side, authority.address(), 300);
    let node = TestNode::start(ChainKind::Side, &genesis, Some(authority)).expect("node starts");
    let c = node.client();
    // One transfer with a mainchain fee form, signed for a chain id.
    let flat_fee_transfer = |chain_id| {
        transfer(
            &dev_key(0),
            chain_id,
            0,
            dev_key(1).address(),
            Amount(1),
            Fee::Flat {
                fee: Amount(10u128.pow(12)),
            },
        )
    };
    let main_tx = flat_fee_transfer(298081);
    let e = c.send_transaction(main_tx).await.expect_err("refused");
    assert_eq!(rpc_code(e), codes::WRONG_CHAIN);
    // Same content re-signed for the sidechain but with a mainchain fee form: refused too.
    let wrong_form = flat_fee_transfer(298082);
    assert_eq!(
        rpc_code(c.send_transaction(wrong_form).await.expect_err("refused")),
        codes::FEE_TOO_LOW
    );
}

/// `eth_subscribe("newHeads")` over WebSocket, as viem's `watchBlocks` and ethers' `on("block")`
/// use it: each notification is an `eth_subscription` carrying the new head in Ethereum shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eth_subscribe_new_heads_streams_each_head_in_ethereum_shape() {
    use jsonrpsee::core::client::SubscriptionClientT;
    let authority = SecretKey::random();
    let genesis = test_genesis(ChainKind::Side, authority.address(), 200);
    let node = TestNode::start(ChainKind::Side, &genesis, Some(authority)).expect("node starts");
    let ws = node.ws_client().await.expect("ws connects");
    // Through the raw method names a generic client uses.
    let mut sub: jsonrpsee::core::client::Subscription<serde_json::Value> = ws
        .subscribe(
            "eth_subscribe",
            jsonrpsee::rpc_params!["newHeads"],
            "eth_unsubscribe",
        )
        .await
        .expect("subscribe");
    let mut last: Option<u64> = None;
    for _ in 0..3 {
        let head = tokio::time::timeout(std::time::Duration::from_secs(60), sub.next())
            .await
            .expect("a head within a minute")
            .expect("stream open")
            .expect("a head");
        let number = u64::from_str_radix(
            head["number"]
                .as_str()
                .expect("number")
                .trim_start_matches("0x"),
            16,
        )
        .expect("hex number");
        assert!(
            head["hash"].as_str().is_some_and(|h| h.len() == 66),
            "{head}"
        );
        assert!(head["baseFeePerGas"].as_str().is_some(), "{head}");
        assert!(
            last.is_none_or(|l| number > l),
            "heads move forward: {head}"
        );
        // The head is the block the node serves at that height.
        let block = node
            .client()
            .get_block_by_number(format!("0x{number:x}"), false)
            .await
            .expect("block call")
            .expect("block");
        assert_eq!(
            serde_json::to_value(block.hash).expect("json"),
            head["hash"]
        );
        last = Some(number);
    }
    // Anything but newHeads is refused with a reason.
    let refused = ws
        .subscribe::<serde_json::Value, _>(
            "eth_subscribe",
            jsonrpsee::rpc_params!["logs"],
            "eth_unsubscribe",
        )
        .await
        .expect_err("logs are not supported");
    assert!(refused.to_string().contains("newHeads"), "{refused}");
}
