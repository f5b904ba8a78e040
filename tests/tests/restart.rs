//! End-to-end: a node restarted any number of times, at any instant, holds exactly the state a
//! replay from genesis gives, balances and processed peg ids alike, so a paid deposit can never
//! be paid twice.

use jsonrpsee::http_client::HttpClient;
use primitives::crypto::{SecretKey, Signature};
use primitives::peg::{Direction, PegMessage};
use primitives::tx::{Fee, TxKind};
use primitives::types::Address;
use primitives::types::Amount;
use rpc_api::types::TxStatus;
use rpc_api::TwinpegApiClient;
use twinpeg_e2e::{
    dev_key, eventually, fee_for, rpc_refusal, signed_raw, test_genesis, transfer, wait_included,
    ChainKind, PegSetup, TestNode,
};

async fn balance(c: &HttpClient, a: Address) -> Amount {
    c.account(a).await.expect("account").balance
}

fn interval(n: u64) -> Vec<(String, String)> {
    vec![("SIDECHAIN_CHECKPOINT_INTERVAL".into(), n.to_string())]
}

/// The sidechain producer is killed twice: once with only the genesis checkpoint behind it
/// (so its restart replays the Mint and a transfer), then after checkpoints were written on
/// top of that replay. It must still know the deposit is paid and the balances, and refuse
/// the same Mint sent again from a fresh key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_across_checkpoints_keeps_paid_ids_and_balances() {
    let p = PegSetup::new(300, 200);
    let (members, mg, sg, sa) = (&p.members, &p.main, &p.side, p.side_authority.clone());
    let domain = p.domain();
    let main =
        TestNode::start(ChainKind::Main, mg, Some(p.main_authority.clone())).expect("main starts");
    // The follower never restarts; the producer dials it, so they meet again after each
    // restart (the producer's ports change).
    let follower = TestNode::start(ChainKind::Side, sg, None).expect("follower starts");
    let mut side = TestNode::prepare(None, ChainKind::Side, sg, Some(sa), &[follower.p2p_addr()])
        .expect("side prepared");
    // Only the genesis checkpoint before the first kill.
    side.env = interval(1_000_000);
    side.spawn().expect("side starts");
    let (mc, fc) = (main.client(), follower.client());

    // A deposit, paid by a Mint, then a plain transfer by its recipient.
    let user = SecretKey::random();
    let other = SecretKey::random().address();
    let amount = Amount::coins(5);
    let lock = mc
        .send_transaction(signed_raw(
            &dev_key(0),
            mg.chain_id,
            0,
            fee_for(&mc).await,
            TxKind::Lock {
                amount,
                recipient: user.address(),
            },
        ))
        .await
        .expect("lock accepted");
    assert_eq!(
        wait_included(&mc, lock).await.expect("included").status,
        TxStatus::Success
    );
    let msg = PegMessage {
        domain,
        direction: Direction::MainToSide,
        id: lock,
        recipient: user.address(),
        amount,
    };
    let signatures: Vec<Signature> = members[..2]
        .iter()
        .map(|k| k.sign_prehash(&msg.signing_hash()))
        .collect();
    let mint = |sender: &SecretKey| {
        signed_raw(
            sender,
            sg.chain_id,
            0,
            Fee::Dynamic {
                max_fee: Amount(0),
                max_tip: Amount(0),
            },
            TxKind::Mint {
                id: lock,
                recipient: user.address(),
                amount,
                signatures: signatures.clone(),
            },
        )
    };
    let sc = side.client();
    let h = sc.send_transaction(mint(&members[2])).await.expect("mint");
    assert_eq!(
        wait_included(&sc, h).await.expect("included").status,
        TxStatus::Success
    );
    let sent = Amount::coins(1);
    let t = sc
        .send_transaction(transfer(
            &user,
            sg.chain_id,
            0,
            other,
            sent,
            fee_for(&sc).await,
        ))
        .await
        .expect("transfer");
    assert_eq!(
        wait_included(&sc, t).await.expect("included").status,
        TxStatus::Success
    );
    eventually("the follower sees the transfer", || async {
        (balance(&fc, other).await == sent).then_some(())
    })
    .await
    .expect("follower");
    let user_balance = balance(&fc, user.address()).await;

    // Restart 1 replays the Mint and the transfer; then a checkpoint every block.
    side.kill9();
    side.env = interval(1);
    side.spawn().expect("first restart");
    let at = side.wait_for_height(0).await.expect("head");
    side.wait_for_height(at + 4)
        .await
        .expect("checkpoints written");
    // Restart 2 starts from one of those checkpoints.
    side.kill9();
    side.spawn().expect("second restart");
    let sc = side.client();

    // The same signatures from a fresh, zero-balance key: a second payout must be refused.
    let e = sc
        .send_transaction(mint(&SecretKey::random()))
        .await
        .expect_err("a paid deposit must not be paid again");
    assert_eq!(rpc_refusal(e).1, "peg_id_used");
    let paid = sc.peg_transfer(lock).await.expect("lookup");
    assert_eq!(
        paid.payout.and_then(|p| p.tx_hash),
        Some(h),
        "the deposit is paid"
    );
    assert_eq!(balance(&sc, other).await, sent, "recipient of the transfer");
    assert_eq!(
        balance(&sc, user.address()).await,
        user_balance,
        "its sender"
    );
    assert_eq!(sc.peg_info().await.expect("peg info").totals.minted, amount);

    // The whole state, against the follower that never restarted and a new node that replays
    // every block from genesis (it syncs from the follower).
    let fresh = TestNode::start_with_peers(ChainKind::Side, sg, None, &[follower.p2p_addr()])
        .expect("fresh follower starts");
    let clients = [sc, fc, fresh.client()];
    let digests = eventually("the three nodes at one head", || async {
        let mut ds = Vec::new();
        for c in &clients {
            ds.push(c.state_digest().await.ok()?);
        }
        ds.iter()
            .all(|d| (d.number, d.hash) == (ds[0].number, ds[0].hash))
            .then_some(ds)
    })
    .await
    .expect("one head");
    assert_eq!(digests[0], digests[1], "restarted vs never restarted");
    assert_eq!(digests[0], digests[2], "restarted vs replayed from genesis");
    assert_eq!(digests[0].processed_ids, 1);
}

/// The hole: a transfer a node accepted over RPC lived only in its memory, so a node killed
/// before its next block lost it for good. A long slot keeps the transfer pooled when the
/// node dies; after the restart it must be pending again, then included, and a restart after
/// that must not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_accepted_over_rpc_survives_kill_9_and_is_included() {
    let kind = ChainKind::Main;
    let authority = SecretKey::random();
    let genesis = test_genesis(kind, authority.address(), 8_000);
    let mut node = TestNode::start(kind, &genesis, Some(authority)).expect("node starts");
    let c = node.client();
    let fee = fee_for(&c).await;
    let (sender, to) = (dev_key(1), dev_key(2).address());
    // Submit right after a block of a slot boundary (not the one a start produces at once,
    // mid-slot), so a whole 8 s slot remains before the next one.
    let first = node.wait_for_height(1).await.expect("first block");
    node.wait_for_height(first + 1).await.expect("a block");
    let h = c
        .send_transaction(transfer(&sender, genesis.chain_id, 0, to, Amount(777), fee))
        .await
        .expect("accepted");
    let before = c.transaction(h).await.expect("lookup").expect("known");
    assert_eq!(
        before.status,
        TxStatus::Pending,
        "the slot ended too early for this test: the transfer is already in a block"
    );
    node.kill9();

    node.spawn().expect("restarts");
    let c = node.client();
    let again = c.transaction(h).await.expect("lookup");
    assert!(
        again.is_some(),
        "the transfer the node accepted is gone after kill -9 and restart"
    );
    assert_eq!(c.health().await.expect("health").mempool, 1);
    assert_eq!(
        wait_included(&c, h).await.expect("included").status,
        TxStatus::Success
    );
    assert_eq!(balance(&c, to).await, Amount(Amount::coins(1000).0 + 777));

    // Once included it has left the journal: another restart re-admits nothing.
    node.kill9();
    node.spawn().expect("restarts again");
    let c = node.client();
    assert_eq!(c.health().await.expect("health").mempool, 0);
    assert_eq!(c.account(sender.address()).await.expect("account").nonce, 1);
    assert_eq!(
        c.transaction(h).await.expect("lookup").map(|t| t.status),
        Some(TxStatus::Success)
    );
}

/// A follower accepts a transfer while it has no peer, so it cannot pass it on, and dies.
/// Restarted with a producer to talk to, it re-admits the transfer from its journal and
/// announces it once a peer listens; the producer includes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_transaction_is_announced_to_peers_after_a_restart() {
    let kind = ChainKind::Side;
    let authority = SecretKey::random();
    let genesis = test_genesis(kind, authority.address(), 300);
    let mut follower = TestNode::start(kind, &genesis, None).expect("follower starts");
    let fc = follower.client();
    let fee = fee_for(&fc).await;
    let to = SecretKey::random().address();
    let h = fc
        .send_transaction(transfer(
            &dev_key(3),
            genesis.chain_id,
            0,
            to,
            Amount(4242),
            fee,
        ))
        .await
        .expect("accepted");
    follower.kill9();

    let producer = TestNode::start(kind, &genesis, Some(authority)).expect("producer starts");
    follower.bootstrap = vec![producer.p2p_addr()];
    follower.spawn().expect("follower restarts");
    let fc = follower.client();
    assert!(
        fc.transaction(h).await.expect("lookup").is_some(),
        "the follower lost the transfer it accepted"
    );
    let pc = producer.client();
    assert_eq!(
        wait_included(&pc, h).await.expect("included").status,
        TxStatus::Success
    );
    assert_eq!(balance(&pc, to).await, Amount(4242));
    assert_eq!(
        wait_included(&fc, h).await.expect("included").block_number,
        pc.transaction(h)
            .await
            .expect("lookup")
            .and_then(|t| t.block_number),
        "the follower follows the producer's block"
    );
}
