//! End-to-end across a real network: nodes in separate network namespaces ("hosts" on a
//! bridge, each with its own address), not loopback. A follower on another host syncs and
//! follows the authority, is cut off the network while the chain grows, and catches up when
//! the link comes back; and a federation whose members each run on their own host with their
//! own nodes keeps paying while one host is partitioned away; and four mainchain authorities
//! split 2/2 finalise nothing and mint nothing from a Lock grown deep on one side. Needs root
//! and iproute2 (as CI and this machine have).

use jsonrpsee::http_client::HttpClient;
use parity_scale_codec::Encode;
use primitives::crypto::SecretKey;
use primitives::tx::{Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes, Hash};
use rpc_api::types::TxStatus;
use rpc_api::TwinpegApiClient;
use std::time::Duration;

use rpc_api::types::BlockId;
use twinpeg_e2e::netns::{Host, Lan};
use twinpeg_e2e::{
    bridge_audit, dev_key, eventually, eventually_within, fee_for, pegged_geneses_with,
    test_genesis, test_peg, transfer, ChainKind, Member, PegSetup, TestNode,
};

/// The follower's block at `height`, once it has it and it matches the authority's.
async fn same_block(a: &TestNode, b: &TestNode, height: u64) -> Hash {
    eventually(&format!("both hosts at height {height}"), || async {
        let x = a.client().block_by_number(height, None).await.ok()??;
        let y = b.client().block_by_number(height, None).await.ok()??;
        (x.summary.hash == y.summary.hash).then_some(x.summary.hash)
    })
    .await
    .expect("the hosts agree")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_on_another_host_follows_is_partitioned_and_catches_up() {
    // Declared first so it is dropped last, after the nodes inside it.
    let Some(lan) = Lan::for_test(2) else { return };
    let authority = SecretKey::random();
    let g = test_genesis(ChainKind::Main, authority.address(), 300);
    let on = |h: usize, key, boot: &[String]| {
        TestNode::prepare(Some(lan.hosts[h].clone()), ChainKind::Main, &g, key, boot)
            .and_then(TestNode::spawned)
    };
    let leader = on(0, Some(authority), &[]).expect("authority starts on host 0");
    assert!(
        leader.http.contains(&lan.hosts[0].ip) && leader.p2p_addr().contains(&lan.hosts[0].ip),
        "the authority serves on its host's address: {} {}",
        leader.http,
        leader.p2p_addr()
    );
    let follower = on(1, None, &[leader.p2p_addr()]).expect("follower starts on host 1");

    // Transfers sent to the authority reach the follower's chain across the LAN.
    let lc = leader.client();
    let fee = fee_for(&lc).await;
    let to = SecretKey::random().address();
    let mut hashes = Vec::new();
    for nonce in 0..5 {
        let raw = transfer(
            &dev_key(0),
            g.chain_id,
            nonce,
            to,
            Amount::coins(1),
            fee.clone(),
        );
        hashes.push(lc.send_transaction(raw).await.expect("accepted"));
    }
    let fc = follower.client();
    for h in &hashes {
        let t = eventually(&format!("{h} on the follower"), || async {
            fc.transaction(*h)
                .await
                .ok()
                .flatten()
                .filter(|t| t.status == TxStatus::Success)
        })
        .await
        .expect("included and synced");
        let n = t.block_number.expect("in a block");
        same_block(&leader, &follower, n).await;
    }

    // Partition: hosts 0 and 1 cannot reach each other; the authority keeps producing.
    lan.cut(0, 1).expect("partition");
    let at_cut = lc.head().await.expect("head").number;
    leader
        .wait_for_height(at_cut + 10)
        .await
        .expect("the authority keeps producing");
    let behind = fc.head().await.expect("follower head").number;
    assert!(
        behind < at_cut + 10,
        "the follower kept up with no network: {behind} vs {}",
        at_cut + 10
    );
    // Healed: it catches up to where the authority is now, with the same blocks.
    lan.heal(0, 1).expect("heal");
    let target = lc.head().await.expect("head").number;
    same_block(&leader, &follower, target).await;
    assert_eq!(
        fc.account(to).await.expect("account").balance,
        Amount::coins(5)
    );
}

/// Starts a member on `host` of that host's nodes, gossip repeated every second.
fn start_member(
    key: &SecretKey,
    host: &Host,
    main: &TestNode,
    side: &TestNode,
    boot: &[String],
) -> Member {
    let mut m = Member::new(key.clone(), &main.http, &side.http)
        .expect("member dir")
        .on_host(host.clone())
        .config("regossip_interval_ms", 1_000);
    m.spawn(boot).expect("member starts");
    let p2p = m.p2p_addr().unwrap_or_default();
    assert!(p2p.contains(&host.ip), "member listens on its host: {p2p}");
    m
}

async fn deposit(c: &HttpClient, chain_id: u64, user: &SecretKey, nonce: u64, to: Address) -> Hash {
    let raw = Transaction {
        chain_id,
        nonce,
        fee: fee_for(c).await,
        kind: TxKind::Lock {
            amount: Amount::coins(3),
            recipient: to,
        },
    }
    .sign(user)
    .encode();
    c.send_transaction(Bytes(raw)).await.expect("lock accepted")
}

async fn paid(side: &TestNode, id: Hash, members: &[Member]) {
    let c = side.client();
    let r = eventually(&format!("payout of {id} on {}", side.http), || async {
        c.peg_transfer(id).await.ok()?.payout
    })
    .await;
    if r.is_err() {
        let logs: Vec<String> = members.iter().map(Member::log).collect();
        panic!("{id} not paid; member logs:\n{}", logs.join("\n---\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_three_hosts_keep_paying_with_one_host_partitioned_away() {
    let Some(lan) = Lan::for_test(3) else { return };
    let p = PegSetup::new(300, 200);
    let (keys, mg, sg) = (&p.members, &p.main, &p.side);
    let (ma, sa) = (p.main_authority.clone(), p.side_authority.clone());
    // Host 0 holds the mainchain authority, host 1 the sidechain's; every host runs a node
    // of each chain and its member, which talks only to its own host's nodes.
    let on = |h: usize, kind, g, key, boot: &[String]| {
        TestNode::prepare(Some(lan.hosts[h].clone()), kind, g, key, boot)
            .and_then(TestNode::spawned)
            .expect("node starts")
    };
    let main0 = on(0, ChainKind::Main, mg, Some(ma), &[]);
    let side1 = on(1, ChainKind::Side, sg, Some(sa), &[]);
    let (mb, sb) = (vec![main0.p2p_addr()], vec![side1.p2p_addr()]);
    let mains = [
        main0,
        on(1, ChainKind::Main, mg, None, &mb),
        on(2, ChainKind::Main, mg, None, &mb),
    ];
    let sides = [
        on(0, ChainKind::Side, sg, None, &sb),
        side1,
        on(2, ChainKind::Side, sg, None, &sb),
    ];
    let mut members: Vec<Member> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let boot: Vec<String> = members.iter().filter_map(Member::p2p_addr).collect();
        members.push(start_member(
            key,
            &lan.hosts[i],
            &mains[i],
            &sides[i],
            &boot,
        ));
    }

    // A deposit sent on host 2 is paid; host 2's own sidechain node shows it.
    let user = dev_key(1);
    let to = SecretKey::random().address();
    let first = deposit(&mains[2].client(), mg.chain_id, &user, 0, to).await;
    paid(&sides[2], first, &members).await;

    // Host 2 (member 2 and its nodes) is cut off from the others: members 0 and 1 are still
    // the threshold, and pay a deposit sent on host 0.
    lan.cut(2, 0).expect("partition");
    lan.cut(2, 1).expect("partition");
    let second = deposit(&mains[0].client(), mg.chain_id, &user, 1, to).await;
    paid(&sides[0], second, &members).await;
    let cut_off = sides[2]
        .client()
        .peg_transfer(second)
        .await
        .expect("lookup");
    assert!(
        cut_off.payout.is_none(),
        "host 2 saw the payout through the partition"
    );
    // Healed: host 2's nodes learn the payout; nothing was paid twice.
    lan.heal(2, 0).expect("heal");
    lan.heal(2, 1).expect("heal");
    paid(&sides[2], second, &members).await;
    let s2 = sides[2].client();
    let info = eventually("host 2's view of the peg", || async {
        let i = s2.peg_info().await.ok()?;
        (i.totals.minted == Amount::coins(6)).then_some(i)
    })
    .await
    .expect("both deposits minted once");
    assert_eq!(info.supply, Amount::coins(6));
    assert_eq!(
        s2.account(to).await.expect("account").balance,
        Amount::coins(6)
    );
}

/// Whether `f` is the block at its height on every node.
async fn on_every_chain(nodes: &[TestNode], f: BlockId) -> bool {
    for n in nodes {
        let b = n.client().block_by_number(f.number, None).await;
        if !matches!(b, Ok(Some(b)) if b.summary.hash == f.hash) {
            return false;
        }
    }
    true
}

async fn finalized(n: &TestNode) -> BlockId {
    n.client()
        .finality_status()
        .await
        .expect("finality status")
        .finalized
}

fn audit(main: &TestNode, side: &TestNode) -> (bool, String) {
    bridge_audit(&main.http, &side.http)
}

/// The attack finality exists for: the four mainchain authorities (one per host) are split 2/2,
/// a Lock is included on one side and grows deep there, past the peg's confirmations. Neither
/// side can finalise (3 of 4 votes needed), so no member signs and nothing is minted, however
/// deep the Lock. After the heal there is one chain, finality resumes, every block final
/// before is still final, and the Lock is paid exactly once; `bridge audit` holds throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_deep_on_one_side_of_a_two_two_partition_is_never_minted_until_final() {
    let Some(lan) = Lan::for_test(4) else { return };
    let members: Vec<SecretKey> = (0..3).map(|_| SecretKey::random()).collect();
    let authorities: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
    let side_authority = SecretKey::random();
    let addrs: Vec<Address> = members.iter().map(SecretKey::address).collect();
    let main_addrs: Vec<Address> = authorities.iter().map(SecretKey::address).collect();
    let peg = test_peg(&addrs, 2);
    let confirmations = peg.terms.main_confirmations;
    let (mg, sg) = pegged_geneses_with(&main_addrs, &[side_authority.address()], peg, 300, 200);
    let mut mains: Vec<TestNode> = Vec::new();
    for (h, k) in authorities.iter().enumerate() {
        let boot: Vec<String> = mains.iter().map(TestNode::p2p_addr).collect();
        let n = TestNode::prepare(
            Some(lan.hosts[h].clone()),
            ChainKind::Main,
            &mg,
            Some(k.clone()),
            &boot,
        )
        .and_then(TestNode::spawned)
        .expect("mainchain authority starts on its host");
        mains.push(n);
    }
    // The sidechain and the members stay in the test's own namespace, which reaches every
    // host: the partition is the mainchain authorities' alone. Member i watches mainchain-i,
    // so members 0 and 1 sit with the Lock's side and member 2 with the other.
    let side = TestNode::start(ChainKind::Side, &sg, Some(side_authority)).expect("sidechain");
    let mut fed: Vec<Member> = Vec::new();
    for (i, key) in members.iter().enumerate() {
        let boot: Vec<String> = fed.iter().filter_map(Member::p2p_addr).collect();
        let mut m = Member::new(key.clone(), &mains[i].http, &side.http)
            .expect("member dir")
            .config("regossip_interval_ms", 1_000);
        m.spawn(&boot).expect("member starts");
        fed.push(m);
    }
    let mut finals: Vec<BlockId> = Vec::new();
    for n in &mains {
        let f = eventually("finality before the partition", || async {
            let f = n.client().finality_status().await.ok()?.finalized;
            (f.number >= 3).then_some(f)
        })
        .await
        .expect("the four finalise");
        finals.push(f);
    }

    // 2/2: hosts 0 and 1 on one side, 2 and 3 on the other.
    for a in [0, 1] {
        for b in [2, 3] {
            lan.cut(a, b).expect("partition");
        }
    }
    // Both sides keep producing in their slots; what was in flight at the cut settles.
    for n in [&mains[0], &mains[2]] {
        let h = n.client().head().await.expect("head").number;
        n.wait_for_height(h + 4).await.expect("each side produces");
    }
    let frozen: Vec<BlockId> = {
        let mut v = Vec::new();
        for n in &mains {
            v.push(finalized(n).await);
        }
        v
    };

    let user = dev_key(1);
    let to = SecretKey::random().address();
    let id = deposit(&mains[0].client(), mg.chain_id, &user, 0, to).await;
    let included = eventually("the Lock included on its side", || async {
        let t = mains[0].client().transaction(id).await.ok()??;
        (t.status == TxStatus::Success).then_some(t.block_number?)
    })
    .await
    .expect("included");
    // Deep on its side: well past the peg's confirmations.
    mains[0]
        .wait_for_height(included + confirmations + 8)
        .await
        .expect("the Lock's side grows");
    let sc = side.client();
    let t = sc.peg_transfer(id).await.expect("lookup");
    assert!(
        t.payout.is_none(),
        "minted from a Lock that is not final: {t:?}"
    );
    let info = sc.peg_info().await.expect("peg info");
    assert_eq!(
        info.supply,
        Amount::ZERO,
        "nothing minted during the partition"
    );
    for (n, f) in mains.iter().zip(&frozen) {
        assert_eq!(
            finalized(n).await,
            *f,
            "a block became final with 2 of 4 authorities on {}",
            n.http
        );
    }
    let (ok, text) = audit(&mains[0], &side);
    assert!(ok, "audit during the partition: {text}");

    // Healed: one chain, finality resumes, nothing final before is reverted, paid once.
    for a in [0, 1] {
        for b in [2, 3] {
            lan.heal(a, b).expect("heal");
        }
    }
    let top = frozen.iter().map(|f| f.number).max().unwrap_or(0);
    let resumed = eventually_within(
        "finality after the heal",
        Duration::from_secs(120),
        || async {
            let mut lowest: Option<BlockId> = None;
            for n in &mains {
                let f = n.client().finality_status().await.ok()?.finalized;
                if f.number <= top + 3 {
                    return None;
                }
                if lowest.is_none_or(|l| f.number < l.number) {
                    lowest = Some(f);
                }
            }
            lowest
        },
    )
    .await
    .expect("finality resumes on all four");
    finals.extend(frozen);
    finals.push(resumed);
    for f in finals {
        assert!(
            on_every_chain(&mains, f).await,
            "final block {} {} is not on every node's chain",
            f.number,
            f.hash
        );
    }
    paid(&side, id, &fed).await;
    let info = eventually("the mint counted", || async {
        let i = sc.peg_info().await.ok()?;
        (i.totals.minted == Amount::coins(3)).then_some(i)
    })
    .await
    .expect("minted exactly once");
    assert_eq!(info.supply, Amount::coins(3));
    assert_eq!(
        sc.account(to).await.expect("account").balance,
        Amount::coins(3)
    );
    let (ok, text) = audit(&mains[0], &side);
    assert!(ok, "audit after the heal: {text}");
}
