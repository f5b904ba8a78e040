//! End-to-end: the peg's on-chain rules on real pegged nodes, with the test holding the
//! federation's keys (the member processes are exercised in bridge.rs).

use primitives::crypto::{SecretKey, Signature};
use primitives::peg::{Direction, PegMessage};
use primitives::tx::{Fee, TxKind};
use primitives::types::{Address, Amount, Bytes, Hash};
use rpc_api::{codes, TwinpegApiClient};
use twinpeg_e2e::{
    balance, dev_key, fee_for, send_refused, send_success, signed_raw, transfer, wait_success,
    ChainKind, PegSetup, TestNode,
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
    let p = PegSetup::new(300, 200);
    let main = TestNode::start(ChainKind::Main, &p.main, Some(p.main_authority.clone()))
        .expect("main starts");
    let side = TestNode::start(ChainKind::Side, &p.side, Some(p.side_authority.clone()))
        .expect("side starts");
    Net {
        main,
        side,
        domain: p.domain(),
        main_id: p.main.chain_id,
        side_id: p.side.chain_id,
        members: p.members,
    }
}

impl Net {
    /// What the members sign to pay transfer `id` of `amount` to `recipient`.
    fn message(
        &self,
        direction: Direction,
        id: Hash,
        recipient: Address,
        amount: Amount,
    ) -> PegMessage {
        PegMessage {
            domain: self.domain,
            direction,
            id,
            recipient,
            amount,
        }
    }

    /// Member `by`, at its first nonce on the destination chain, pays `msg` with the
    /// signatures of the members `signers`, and waits until the payout succeeded.
    async fn pay(&self, by: usize, msg: &PegMessage, signers: &[usize]) -> Hash {
        let (node, chain_id) = match msg.direction {
            Direction::MainToSide => (&self.side, self.side_id),
            Direction::SideToMain => (&self.main, self.main_id),
        };
        let keys: Vec<&SecretKey> = signers.iter().map(|i| &self.members[*i]).collect();
        let raw = payout(&self.members[by], chain_id, 0, msg, sign(&keys, msg));
        let c = node.client();
        let h = c.send_transaction(raw).await.expect("payout accepted");
        wait_success(&c, h).await;
        h
    }
}

fn sign(keys: &[&SecretKey], msg: &PegMessage) -> Vec<Signature> {
    keys.iter()
        .map(|k| k.sign_prehash(&msg.signing_hash()))
        .collect()
}

/// The fee-free payout of `msg` (a Mint on the sidechain, a Release on the mainchain) carrying
/// `signatures`, sent by `key` at `nonce` on chain `chain_id`.
fn payout(
    key: &SecretKey,
    chain_id: u64,
    nonce: u64,
    msg: &PegMessage,
    signatures: Vec<Signature>,
) -> Bytes {
    let (id, recipient, amount) = (msg.id, msg.recipient, msg.amount);
    let (fee, kind) = match msg.direction {
        Direction::MainToSide => (
            Fee::Dynamic {
                max_fee: Amount(0),
                max_tip: Amount(0),
            },
            TxKind::Mint {
                id,
                recipient,
                amount,
                signatures,
            },
        ),
        Direction::SideToMain => (
            Fee::Flat { fee: Amount(0) },
            TxKind::Release {
                id,
                recipient,
                amount,
                signatures,
            },
        ),
    };
    signed_raw(key, chain_id, nonce, fee, kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_attestations_and_replays_are_refused_on_chain() {
    let net = start();
    let (mc, sc) = (net.main.client(), net.side.client());
    let user = dev_key(0);
    let recipient = SecretKey::random().address();
    let amount = Amount::coins(5);
    let lock = send_success(
        &mc,
        &user,
        net.main_id,
        0,
        TxKind::Lock { amount, recipient },
    )
    .await;
    let seen = mc.peg_transfer(lock).await.expect("lookup");
    assert!(seen.source.is_some_and(|s| s.confirmations >= 1));

    let msg = net.message(Direction::MainToSide, lock, recipient, amount);
    let [m0, m1, m2] = [&net.members[0], &net.members[1], &net.members[2]];
    let mint =
        |nonce: u64, signatures: Vec<Signature>| payout(m2, net.side_id, nonce, &msg, signatures);
    // A non-member key.
    let stranger = SecretKey::random();
    assert_eq!(
        send_refused(&sc, mint(0, sign(&[m0, &stranger], &msg))).await,
        (codes::BAD_ATTESTATION, "peg_bad_attestation".into())
    );
    // A duplicated member signature, and M-1 members.
    for signers in [&[m0, m0][..], &[m0]] {
        let e = send_refused(&sc, mint(0, sign(signers, &msg))).await;
        assert_eq!(e.1, "peg_bad_attestation");
    }
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
        let e = send_refused(&sc, mint(0, sign(&[m0, m1], &other))).await;
        assert_eq!(e.1, "peg_bad_attestation", "{other:?}");
    }
    // The real attestation pays once.
    let h = sc
        .send_transaction(mint(0, sign(&[m0, m1], &msg)))
        .await
        .expect("valid mint");
    // A second payout of the same id while the first is pending, and after it is paid.
    let e = send_refused(&sc, mint(1, sign(&[m1, m2], &msg))).await;
    assert_eq!(e.1, "peg_id_pending");
    wait_success(&sc, h).await;
    assert_eq!(
        send_refused(&sc, mint(1, sign(&[m1, m2], &msg))).await,
        (codes::PEG_ID_USED, "peg_id_used".into())
    );
    assert_eq!(balance(&sc, recipient).await, amount);
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
    let (mfee, sfee) = (fee_for(&mc).await, fee_for(&sc).await);
    // `kind` from the user at nonce 0, on the mainchain or the sidechain.
    let on_main = |kind| signed_raw(&user, net.main_id, 0, mfee.clone(), kind);
    let on_side = |kind| signed_raw(&user, net.side_id, 0, sfee.clone(), kind);
    let lock = |amount| TxKind::Lock {
        amount,
        recipient: to,
    };
    let burn = |amount| TxKind::Burn {
        amount,
        recipient: to,
    };
    assert_eq!(
        send_refused(&mc, on_main(lock(Amount(Amount::COIN / 2)))).await,
        (codes::PEG_REFUSED, "peg_amount_out_of_range".into())
    );
    let e = send_refused(&mc, on_main(lock(Amount::coins(101)))).await;
    assert_eq!(e.1, "peg_amount_out_of_range", "above max");
    // A Burn on the mainchain is not a mainchain operation.
    let e = send_refused(&mc, on_main(burn(Amount::coins(2)))).await;
    assert_eq!(e.1, "peg_wrong_chain");
    assert_eq!(balance(&mc, to).await, Amount::coins(1000), "nothing moved");

    // Deposit 10 and mint it (the test plays the federation), then withdraw 4.
    let id = send_success(&mc, &user, net.main_id, 0, lock(Amount::coins(10))).await;
    let msg = net.message(Direction::MainToSide, id, to, Amount::coins(10));
    net.pay(0, &msg, &[1, 2]).await;
    // Too small to withdraw: refused before burning.
    let e = send_refused(&sc, on_side(burn(Amount(Amount::COIN / 2)))).await;
    assert_eq!(e.1, "peg_amount_out_of_range");
    assert_eq!(balance(&sc, to).await, Amount::coins(10), "nothing burned");
    let burn = sc
        .send_transaction(on_side(burn(Amount::coins(4))))
        .await
        .expect("burn");
    wait_success(&sc, burn).await;
    let fee = Amount(Amount::COIN / 10);
    let rmsg = net.message(
        Direction::SideToMain,
        burn,
        to,
        Amount(Amount::coins(4).0 - fee.0),
    );
    net.pay(2, &rmsg, &[0, 2]).await;

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
        wait_success(&mc, *id).await;
    }
    let member = &net.members[0];
    let mint = |nonce: u64, id: Hash, signers: &[&SecretKey]| {
        let msg = net.message(Direction::MainToSide, id, recipient, amount);
        payout(member, net.side_id, nonce, &msg, sign(signers, &msg))
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
    wait_success(&sc, first).await;
    let acct = sc.account(member.address()).await.expect("account");
    assert_eq!((acct.nonce, acct.pending_nonce), (1, 1), "nonce 1 is a gap");
    // Another payout of that id at a later nonce is still refused; from the gap it moves.
    let e = send_refused(&sc, mint(3, ids[2], &good)).await;
    assert_eq!(e.1, "peg_id_pending", "later nonce");
    let moved = sc
        .send_transaction(mint(1, ids[2], &good))
        .await
        .expect("re-issued from the gap");
    wait_success(&sc, moved).await;
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
    let lock = send_success(
        &mc,
        &dev_key(1),
        net.main_id,
        0,
        TxKind::Lock { amount, recipient },
    )
    .await;
    let msg = net.message(Direction::MainToSide, lock, recipient, amount);
    let signatures = sign(&[&net.members[0], &net.members[1]], &msg);
    let mint =
        |key: &SecretKey, nonce: u64| payout(key, net.side_id, nonce, &msg, signatures.clone());
    let stranger = SecretKey::random();
    // Parked: 1,000 nonces ahead of the stranger's account, it can never be included. The pool
    // may hold it, or refuse it; it must not matter to the member below.
    let _ = sc.send_transaction(mint(&stranger, 1000)).await;
    let member = &net.members[2];
    let h = sc
        .send_transaction(mint(member, 0))
        .await
        .expect("the member's includable payout is accepted");
    wait_success(&sc, h).await;
    assert_eq!(balance(&sc, recipient).await, amount);
    // The stranger's copy is gone with it: the id is paid.
    let e = send_refused(&sc, mint(&stranger, 1000)).await;
    assert_eq!(e.1, "peg_id_used");
}

/// Whatever others fill the pool with, an includable payout still gets in (invariant 7): it
/// takes the place of the cheapest last-queued transaction, a parked one first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_gets_into_a_pool_others_filled() {
    let p = PegSetup::new(300, 200);
    let (mg, members) = (&p.main, &p.members);
    let mut main = TestNode::prepare(
        None,
        ChainKind::Main,
        mg,
        Some(p.main_authority.clone()),
        &[],
    )
    .expect("prepared");
    // The journal of local transactions as small as the pool (its default bound).
    main.env = vec![
        ("MAINCHAIN_MEMPOOL_MAX_TXS".into(), "4".into()),
        ("MAINCHAIN_JOURNAL_MAX_TXS".into(), "4".into()),
    ];
    main.spawn().expect("main starts");
    let mc = main.client();
    let fee = fee_for(&mc).await;
    send_success(
        &mc,
        &dev_key(0),
        mg.chain_id,
        0,
        TxKind::Lock {
            amount: Amount::coins(5),
            recipient: SecretKey::random().address(),
        },
    )
    .await;
    // Fill the pool with transfers parked far past their senders' nonces.
    let parked = |i| {
        transfer(
            &dev_key(i),
            mg.chain_id,
            100,
            Address::default(),
            Amount(1),
            fee.clone(),
        )
    };
    for i in 1..=4 {
        mc.send_transaction(parked(i))
            .await
            .expect("filler accepted");
    }
    let full = send_refused(&mc, parked(0)).await.1;
    assert!(full == "pool_full" || full == "journal_full", "{full}");
    let recipient = SecretKey::random().address();
    let amount = Amount::coins(2);
    let msg = PegMessage {
        domain: p.domain(),
        direction: Direction::SideToMain,
        id: primitives::crypto::keccak256(b"a burn on the sidechain"),
        recipient,
        amount,
    };
    let release = mc
        .send_transaction(payout(
            &members[2],
            mg.chain_id,
            0,
            &msg,
            sign(&[&members[0], &members[1]], &msg),
        ))
        .await
        .expect("the payout gets into the full pool");
    wait_success(&mc, release).await;
    assert_eq!(balance(&mc, recipient).await, amount);
}
