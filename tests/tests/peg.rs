//! End-to-end: the peg's on-chain rules on real pegged nodes, with the test holding the
//! federation's keys (the member processes are exercised in bridge.rs).

use primitives::crypto::{SecretKey, Signature};
use primitives::peg::{Direction, PegMessage};
use primitives::tx::{Fee, TxKind};
use primitives::types::{Address, Amount, Hash};
use rpc_api::types::TxStatus;
use rpc_api::{codes, TwinpegApiClient};
use twinpeg_e2e::{
    dev_key, fee_for, pegged_geneses, rpc_refusal, signed_raw, test_peg, transfer, wait_included,
    ChainKind, TestNode,
};

struct Net {
    main: TestNode,
    side: TestNode,
    members: Vec<SecretKey>,
    domain: Hash,
    main_id: u64,
    side_id: u64,
}

fn start() -> Net {
    let members: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
    let addrs: Vec<Address> = members.iter().map(|k| k.address()).collect();
    let (ma, sa) = (SecretKey::random(), SecretKey::random());
    let (mg, sg) = pegged_geneses(ma.address(), sa.address(), test_peg(&addrs, 2), 300, 200);
    let main = TestNode::start(ChainKind::Main, &mg, Some(ma)).expect("main starts");
    let side = TestNode::start(ChainKind::Side, &sg, Some(sa)).expect("side starts");
    let domain = primitives::peg::domain(&mg.base_hash(), &sg.base_hash());
    Net {
        main,
        side,
        members,
        domain,
        main_id: mg.chain_id,
        side_id: sg.chain_id,
    }
}

fn sign(keys: &[&SecretKey], msg: &PegMessage) -> Vec<Signature> {
    keys.iter()
        .map(|k| k.sign_prehash(&msg.signing_hash()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_attestations_and_replays_are_refused_on_chain() {
    let net = start();
    let (mc, sc) = (net.main.client(), net.side.client());
    let user = dev_key(0);
    let recipient = SecretKey::random().address();
    let amount = Amount::coins(5);
    let lock = mc
        .send_transaction(signed_raw(
            &user,
            net.main_id,
            0,
            fee_for(&mc).await,
            TxKind::Lock { amount, recipient },
        ))
        .await
        .expect("lock accepted");
    let t = wait_included(&mc, lock).await.expect("included");
    assert_eq!(t.status, TxStatus::Success);
    let seen = mc.peg_transfer(lock).await.expect("lookup");
    assert!(seen.source.is_some_and(|s| s.confirmations >= 1));

    let msg = PegMessage {
        domain: net.domain,
        direction: Direction::MainToSide,
        id: lock,
        recipient,
        amount,
    };
    let [m0, m1, m2] = [&net.members[0], &net.members[1], &net.members[2]];
    let submitter = m2;
    let mint = |nonce: u64, signatures: Vec<Signature>, recipient: Address, amount: Amount| {
        signed_raw(
            submitter,
            net.side_id,
            nonce,
            Fee::Dynamic {
                max_fee: Amount(0),
                max_tip: Amount(0),
            },
            TxKind::Mint {
                id: lock,
                recipient,
                amount,
                signatures,
            },
        )
    };
    // A non-member key.
    let stranger = SecretKey::random();
    let e = sc
        .send_transaction(mint(0, sign(&[m0, &stranger], &msg), recipient, amount))
        .await
        .expect_err("stranger");
    assert_eq!(
        rpc_refusal(e),
        (codes::BAD_ATTESTATION, "peg_bad_attestation".into())
    );
    // A duplicated member signature.
    let e = sc
        .send_transaction(mint(0, sign(&[m0, m0], &msg), recipient, amount))
        .await
        .expect_err("dup");
    assert_eq!(rpc_refusal(e).1, "peg_bad_attestation");
    // M-1 members.
    let e = sc
        .send_transaction(mint(0, sign(&[m0], &msg), recipient, amount))
        .await
        .expect_err("too few");
    assert_eq!(rpc_refusal(e).1, "peg_bad_attestation");
    // Signatures over another amount, recipient, direction or domain do not pay this transfer.
    let mut others = Vec::new();
    let mut m = msg.clone();
    m.amount = Amount::coins(50);
    others.push(m);
    let mut m = msg.clone();
    m.recipient = SecretKey::random().address();
    others.push(m);
    let mut m = msg.clone();
    m.direction = Direction::SideToMain;
    others.push(m);
    let mut m = msg.clone();
    m.domain = primitives::crypto::keccak256(b"another bridge");
    others.push(m);
    for other in others {
        let e = sc
            .send_transaction(mint(0, sign(&[m0, m1], &other), recipient, amount))
            .await
            .expect_err("forged");
        assert_eq!(rpc_refusal(e).1, "peg_bad_attestation", "{other:?}");
    }
    // The real attestation pays once.
    let h = sc
        .send_transaction(mint(0, sign(&[m0, m1], &msg), recipient, amount))
        .await
        .expect("valid mint");
    // A second payout of the same id while the first is pending, and after it is paid.
    let e = sc
        .send_transaction(mint(1, sign(&[m1, m2], &msg), recipient, amount))
        .await
        .expect_err("pending");
    assert_eq!(rpc_refusal(e).1, "peg_id_pending");
    assert_eq!(
        wait_included(&sc, h).await.expect("included").status,
        TxStatus::Success
    );
    let e = sc
        .send_transaction(mint(1, sign(&[m1, m2], &msg), recipient, amount))
        .await
        .expect_err("replay");
    assert_eq!(rpc_refusal(e), (codes::PEG_ID_USED, "peg_id_used".into()));
    assert_eq!(
        sc.account(recipient).await.expect("account").balance,
        amount
    );
    let paid = sc.peg_transfer(lock).await.expect("lookup");
    assert_eq!(paid.payout.and_then(|p| p.tx_hash), Some(h));
    let info = sc.peg_info().await.expect("peg info");
    assert_eq!(info.totals.minted, amount);
    assert_eq!(info.supply, amount);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_enforced_before_any_coin_moves_and_a_release_keeps_the_escrow_balanced() {
    let net = start();
    let (mc, sc) = (net.main.client(), net.side.client());
    let user = dev_key(1);
    let to = user.address();
    let mfee = fee_for(&mc).await;
    let lock = |nonce, amount| {
        signed_raw(
            &user,
            net.main_id,
            nonce,
            mfee.clone(),
            TxKind::Lock {
                amount,
                recipient: to,
            },
        )
    };
    let e = mc
        .send_transaction(lock(0, Amount(Amount::COIN / 2)))
        .await
        .expect_err("below min");
    assert_eq!(
        rpc_refusal(e),
        (codes::PEG_REFUSED, "peg_amount_out_of_range".into())
    );
    let e = mc
        .send_transaction(lock(0, Amount::coins(101)))
        .await
        .expect_err("above max");
    assert_eq!(rpc_refusal(e).1, "peg_amount_out_of_range");
    // A Burn on the mainchain is not a mainchain operation.
    let e = mc
        .send_transaction(signed_raw(
            &user,
            net.main_id,
            0,
            mfee.clone(),
            TxKind::Burn {
                amount: Amount::coins(2),
                recipient: to,
            },
        ))
        .await
        .expect_err("wrong chain");
    assert_eq!(rpc_refusal(e).1, "peg_wrong_chain");
    assert_eq!(
        mc.account(to).await.expect("account").balance,
        Amount::coins(1000),
        "nothing moved"
    );

    // Deposit 10 and mint it (the test plays the federation), then withdraw 4.
    let id = mc
        .send_transaction(lock(0, Amount::coins(10)))
        .await
        .expect("lock");
    wait_included(&mc, id).await.expect("included");
    let msg = PegMessage {
        domain: net.domain,
        direction: Direction::MainToSide,
        id,
        recipient: to,
        amount: Amount::coins(10),
    };
    let zero = Fee::Dynamic {
        max_fee: Amount(0),
        max_tip: Amount(0),
    };
    let m = sc
        .send_transaction(signed_raw(
            &net.members[0],
            net.side_id,
            0,
            zero.clone(),
            TxKind::Mint {
                id,
                recipient: to,
                amount: Amount::coins(10),
                signatures: sign(&[&net.members[1], &net.members[2]], &msg),
            },
        ))
        .await
        .expect("mint");
    wait_included(&sc, m).await.expect("included");
    let sfee = fee_for(&sc).await;
    // Too small to withdraw: refused before burning.
    let e = sc
        .send_transaction(signed_raw(
            &user,
            net.side_id,
            0,
            sfee.clone(),
            TxKind::Burn {
                amount: Amount(Amount::COIN / 2),
                recipient: to,
            },
        ))
        .await
        .expect_err("below min");
    assert_eq!(rpc_refusal(e).1, "peg_amount_out_of_range");
    assert_eq!(
        sc.account(to).await.expect("account").balance,
        Amount::coins(10),
        "nothing burned"
    );
    let burn = sc
        .send_transaction(signed_raw(
            &user,
            net.side_id,
            0,
            sfee,
            TxKind::Burn {
                amount: Amount::coins(4),
                recipient: to,
            },
        ))
        .await
        .expect("burn");
    let b = wait_included(&sc, burn).await.expect("included");
    assert_eq!(b.status, TxStatus::Success);
    let fee = Amount(Amount::COIN / 10);
    let payout = Amount(Amount::coins(4).0 - fee.0);
    let rmsg = PegMessage {
        domain: net.domain,
        direction: Direction::SideToMain,
        id: burn,
        recipient: to,
        amount: payout,
    };
    let r = mc
        .send_transaction(signed_raw(
            &net.members[2],
            net.main_id,
            0,
            Fee::Flat { fee: Amount(0) },
            TxKind::Release {
                id: burn,
                recipient: to,
                amount: payout,
                signatures: sign(&[&net.members[0], &net.members[2]], &rmsg),
            },
        ))
        .await
        .expect("release");
    assert_eq!(
        wait_included(&mc, r).await.expect("included").status,
        TxStatus::Success
    );

    // Invariant 2 at rest: escrow == side supply + side burned fees + burns not yet released.
    let main_info = mc.peg_info().await.expect("main peg info");
    let side_info = sc.peg_info().await.expect("side peg info");
    let escrow = main_info.escrow_balance.expect("escrow").0;
    let unreleased =
        side_info.totals.burned_peg.0 - main_info.totals.released.0 - main_info.totals.peg_fees.0;
    assert_eq!(unreleased, 0);
    assert_eq!(
        escrow,
        side_info.supply.0 + side_info.totals.burned_fees.0 + unreleased
    );
    assert_eq!(escrow, Amount::coins(6).0);
    // Invariant 1.
    assert!(side_info.totals.minted <= main_info.totals.locked);
    assert!(
        main_info.totals.released.0 + main_info.totals.peg_fees.0 <= side_info.totals.burned_peg.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_queued_behind_a_refused_one_is_reissued_from_the_gap() {
    let net = start();
    let (mc, sc) = (net.main.client(), net.side.client());
    let user = dev_key(0);
    let fee = fee_for(&mc).await;
    let recipient = SecretKey::random().address();
    let amount = Amount::coins(2);
    let mut ids = Vec::new();
    for nonce in 0..3 {
        let lock = signed_raw(
            &user,
            net.main_id,
            nonce,
            fee.clone(),
            TxKind::Lock { amount, recipient },
        );
        ids.push(mc.send_transaction(lock).await.expect("lock accepted"));
    }
    for id in &ids {
        assert_eq!(
            wait_included(&mc, *id).await.expect("included").status,
            TxStatus::Success
        );
    }
    let member = &net.members[0];
    let mint = |nonce: u64, id: Hash, signers: &[&SecretKey]| {
        let msg = PegMessage {
            domain: net.domain,
            direction: Direction::MainToSide,
            id,
            recipient,
            amount,
        };
        signed_raw(
            member,
            net.side_id,
            nonce,
            Fee::Dynamic {
                max_fee: Amount(0),
                max_tip: Amount(0),
            },
            TxKind::Mint {
                id,
                recipient,
                amount,
                signatures: sign(signers, &msg),
            },
        )
    };
    let good = [&net.members[0], &net.members[1]];
    let stranger = SecretKey::random();
    // One batch, as a member sends it: the middle payout is refused, so the third one waits
    // on nonce 1, which nothing fills.
    let results = sc
        .send_transactions(vec![
            mint(0, ids[0], &good),
            mint(1, ids[1], &[&net.members[0], &stranger]),
            mint(2, ids[2], &good),
        ])
        .await
        .expect("batch");
    assert!(results[0].hash.is_some(), "{results:?}");
    assert_eq!(
        results[1].error.as_ref().map(|e| e.reason.as_str()),
        Some("peg_bad_attestation")
    );
    let stuck = results[2].hash.expect("queued behind the gap");
    let first = results[0].hash.expect("accepted");
    assert_eq!(
        wait_included(&sc, first).await.expect("included").status,
        TxStatus::Success
    );
    let acct = sc.account(member.address()).await.expect("account");
    assert_eq!((acct.nonce, acct.pending_nonce), (1, 1), "nonce 1 is a gap");
    // Another payout of that id at a later nonce is still refused; from the gap it moves.
    let e = sc
        .send_transaction(mint(3, ids[2], &good))
        .await
        .expect_err("later nonce");
    assert_eq!(rpc_refusal(e).1, "peg_id_pending");
    let moved = sc
        .send_transaction(mint(1, ids[2], &good))
        .await
        .expect("re-issued from the gap");
    assert_eq!(
        wait_included(&sc, moved).await.expect("included").status,
        TxStatus::Success
    );
    assert!(
        sc.transaction(stuck).await.expect("lookup").is_none(),
        "the copy queued behind the gap left the pool"
    );
    let paid = sc.peg_transfer(ids[2]).await.expect("lookup");
    assert_eq!(paid.payout.and_then(|p| p.tx_hash), Some(moved));
    assert_eq!(
        sc.peg_info().await.expect("peg info").totals.minted,
        Amount(amount.0 * 2)
    );
}

/// The M signatures are public (gossip, every submitted payout). A stranger who copies them
/// into a payout parked far past its own nonce (never includable, fee-free, needs no balance)
/// must not keep the members' includable payout out of the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_parked_by_a_stranger_does_not_freeze_the_members_payout() {
    let net = start();
    let (mc, sc) = (net.main.client(), net.side.client());
    let recipient = SecretKey::random().address();
    let amount = Amount::coins(3);
    let lock = mc
        .send_transaction(signed_raw(
            &dev_key(1),
            net.main_id,
            0,
            fee_for(&mc).await,
            TxKind::Lock { amount, recipient },
        ))
        .await
        .expect("lock accepted");
    assert_eq!(
        wait_included(&mc, lock).await.expect("included").status,
        TxStatus::Success
    );
    let msg = PegMessage {
        domain: net.domain,
        direction: Direction::MainToSide,
        id: lock,
        recipient,
        amount,
    };
    let signatures = sign(&[&net.members[0], &net.members[1]], &msg);
    let mint = |key: &SecretKey, nonce: u64| {
        signed_raw(
            key,
            net.side_id,
            nonce,
            Fee::Dynamic {
                max_fee: Amount(0),
                max_tip: Amount(0),
            },
            TxKind::Mint {
                id: lock,
                recipient,
                amount,
                signatures: signatures.clone(),
            },
        )
    };
    let stranger = SecretKey::random();
    // Parked: 1,000 nonces ahead of the stranger's account, it can never be included. The pool
    // may hold it, or refuse it; it must not matter to the member below.
    let _ = sc.send_transaction(mint(&stranger, 1000)).await;
    let member = &net.members[2];
    let h = sc
        .send_transaction(mint(member, 0))
        .await
        .expect("the member's includable payout is accepted");
    assert_eq!(
        wait_included(&sc, h).await.expect("included").status,
        TxStatus::Success
    );
    assert_eq!(
        sc.account(recipient).await.expect("account").balance,
        amount
    );
    // The stranger's copy is gone with it: the id is paid.
    let e = sc
        .send_transaction(mint(&stranger, 1000))
        .await
        .expect_err("paid");
    assert_eq!(rpc_refusal(e).1, "peg_id_used");
}

/// Whatever others fill the pool with, an includable payout still gets in (invariant 7): it
/// takes the place of the cheapest last-queued transaction, a parked one first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_gets_into_a_pool_others_filled() {
    let members: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
    let addrs: Vec<Address> = members.iter().map(|k| k.address()).collect();
    let (ma, sa) = (SecretKey::random(), SecretKey::random());
    let (mg, sg) = pegged_geneses(ma.address(), sa.address(), test_peg(&addrs, 2), 300, 200);
    let mut main = TestNode::prepare(ChainKind::Main, &mg, Some(ma), &[]).expect("prepared");
    // The journal of local transactions as small as the pool (its default bound).
    main.env = vec![
        ("MAINCHAIN_MEMPOOL_MAX_TXS".into(), "4".into()),
        ("MAINCHAIN_JOURNAL_MAX_TXS".into(), "4".into()),
    ];
    main.spawn().expect("main starts");
    let mc = main.client();
    let fee = fee_for(&mc).await;
    let lock = mc
        .send_transaction(signed_raw(
            &dev_key(0),
            mg.chain_id,
            0,
            fee.clone(),
            TxKind::Lock {
                amount: Amount::coins(5),
                recipient: SecretKey::random().address(),
            },
        ))
        .await
        .expect("lock");
    wait_included(&mc, lock).await.expect("lock included");
    // Fill the pool with transfers parked far past their senders' nonces.
    for i in 1..=4 {
        mc.send_transaction(transfer(
            &dev_key(i),
            mg.chain_id,
            100,
            Address::default(),
            Amount(1),
            fee.clone(),
        ))
        .await
        .expect("filler accepted");
    }
    let e = mc
        .send_transaction(transfer(
            &dev_key(0),
            mg.chain_id,
            100,
            Address::default(),
            Amount(1),
            fee.clone(),
        ))
        .await
        .expect_err("the pool is full");
    let full = rpc_refusal(e).1;
    assert!(full == "pool_full" || full == "journal_full", "{full}");
    let recipient = SecretKey::random().address();
    let amount = Amount::coins(2);
    let msg = PegMessage {
        domain: primitives::peg::domain(&mg.base_hash(), &sg.base_hash()),
        direction: Direction::SideToMain,
        id: primitives::crypto::keccak256(b"a burn on the sidechain"),
        recipient,
        amount,
    };
    let release = mc
        .send_transaction(signed_raw(
            &members[2],
            mg.chain_id,
            0,
            Fee::Flat { fee: Amount(0) },
            TxKind::Release {
                id: msg.id,
                recipient,
                amount,
                signatures: sign(&[&members[0], &members[1]], &msg),
            },
        ))
        .await
        .expect("the payout gets into the full pool");
    assert_eq!(
        wait_included(&mc, release).await.expect("included").status,
        TxStatus::Success
    );
    assert_eq!(
        mc.account(recipient).await.expect("account").balance,
        amount
    );
}
