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
use primitives::types::{Amount, Bytes};
use rpc_api::api::TwinpegApiClient;
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
