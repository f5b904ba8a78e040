//! End-to-end: several nodes per chain over libp2p on loopback: agreement, catch-up after a
//! crash, sync from empty, a reorg after a partition heals, and a hostile peer.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jsonrpsee::http_client::HttpClient;
use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use parity_scale_codec::Encode;
use primitives::block::{receipts_root, tx_root, Block, Header};
use primitives::crypto::SecretKey;
use primitives::genesis::Genesis;
use primitives::types::{Address, Amount, Hash};
use rpc_api::types::TxStatus;
use rpc_api::TwinpegApiClient;
use twinpeg_e2e::{
    dev_key, eventually, fee_for, included_transactions, test_genesis_of, transfer, ChainKind,
    TestNode,
};

/// Waits until every node has a block at `height` and they all agree on its hash.
async fn agree_at(nodes: &[&TestNode], height: u64) -> Hash {
    eventually(&format!("agreement at height {height}"), || async {
        let mut hashes = Vec::new();
        for n in nodes {
            let b = n
                .client()
                .block_by_number(height, None)
                .await
                .ok()
                .flatten()?;
            hashes.push(b.summary.hash);
        }
        hashes.windows(2).all(|w| w[0] == w[1]).then(|| hashes[0])
    })
    .await
    .expect("nodes agree")
}

async fn head(n: &TestNode) -> u64 {
    n.client().head().await.expect("head").number
}

async fn included(c: &HttpClient, hash: Hash) -> u64 {
    eventually(&format!("inclusion of {hash}"), || async {
        c.transaction(hash)
            .await
            .ok()
            .flatten()
            .filter(|t| t.status == TxStatus::Success)
            .and_then(|t| t.block_number)
    })
    .await
    .expect("included")
}

async fn three_nodes_agree(kind: ChainKind) {
    let (a, b) = (SecretKey::random(), SecretKey::random());
    let g = test_genesis_of(kind, &[&a, &b], 300);
    let na = TestNode::start(kind, &g, Some(a)).expect("a starts");
    let nb = TestNode::start_with_peers(kind, &g, Some(b), &[na.p2p_addr()]).expect("b starts");
    let nf = TestNode::start_with_peers(kind, &g, None, &[na.p2p_addr(), nb.p2p_addr()])
        .expect("follower starts");
    let nodes = [&na, &nb, &nf];
    eventually("peers connected", || async {
        let p = nf.client().peers().await.ok()?;
        (p.len() >= 2).then_some(())
    })
    .await
    .expect("follower sees both authorities");

    // Transactions submitted to any node are included.
    let fee = fee_for(&nf.client()).await;
    let to = SecretKey::random().address();
    let mut hashes = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let key = dev_key(i);
        let h = n
            .client()
            .send_transaction(transfer(
                &key,
                g.chain_id,
                0,
                to,
                Amount(1000 + i as u128),
                fee.clone(),
            ))
            .await
            .expect("accepted");
        hashes.push(h);
    }
    let mut last = 0;
    for h in hashes {
        last = last.max(included(&nf.client(), h).await);
    }
    // Both authorities produced, and all agree on the chain and the state.
    let top = last + 2;
    agree_at(&nodes, top).await;
    let mut authors = std::collections::HashSet::new();
    for n in 1..=top {
        let blk = na
            .client()
            .block_by_number(n, None)
            .await
            .expect("call")
            .expect("block");
        authors.insert(blk.summary.author);
    }
    assert_eq!(authors.len(), 2, "both authorities produced blocks");
    for n in nodes {
        let acct = n.client().account(to).await.expect("account");
        assert_eq!(
            acct.balance,
            Amount(1000 + 1001 + 1002),
            "balance on every node"
        );
    }
    let status = nf.client().sync_status().await.expect("sync status");
    assert!(status.peers >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_mainchain_nodes_agree_and_include_transactions_from_any_node() {
    three_nodes_agree(ChainKind::Main).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sidechain_nodes_agree_and_include_transactions_from_any_node() {
    three_nodes_agree(ChainKind::Side).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_follower_catches_up_and_an_empty_node_syncs_hundreds_of_blocks() {
    let kind = ChainKind::Side;
    let a = SecretKey::random();
    let g = test_genesis_of(kind, &[&a], 50);
    let na = TestNode::start(kind, &g, Some(a)).expect("authority starts");
    let mut nf =
        TestNode::start_with_peers(kind, &g, None, &[na.p2p_addr()]).expect("follower starts");
    nf.wait_for_height(5).await.expect("follower follows");
    nf.kill9();
    let at_kill = head(&na).await;
    na.wait_for_height(at_kill + 40)
        .await
        .expect("authority goes on");
    nf.spawn().expect("follower restarts");
    let target = head(&na).await;
    nf.wait_for_height(target)
        .await
        .expect("follower caught up");
    agree_at(&[&na, &nf], target).await;

    // A node that starts empty syncs a chain of several hundred blocks.
    na.wait_for_height(300).await.expect("300 blocks");
    let fresh =
        TestNode::start_with_peers(kind, &g, None, &[na.p2p_addr()]).expect("fresh node starts");
    fresh.wait_for_height(300).await.expect("fresh node synced");
    agree_at(&[&na, &fresh], 300).await;
    // The synced state equals the producer's.
    let producer_balance = |n: &TestNode| {
        let c = n.client();
        let addr = g.authorities[0];
        async move { c.account(addr).await.expect("account").balance }
    };
    assert_eq!(producer_balance(&fresh).await, Amount::ZERO);
    assert_eq!(
        fresh
            .client()
            .account(dev_key(0).address())
            .await
            .expect("account")
            .balance,
        Amount::coins(1000)
    );
}

/// Expected balances from replaying the canonical chain up to `height` from its receipts.
async fn replay(c: &HttpClient, g: &Genesis, height: u64) -> BTreeMap<Address, u128> {
    let mut bal: BTreeMap<Address, u128> = g
        .accounts
        .iter()
        .map(|a| (a.address, a.balance.0))
        .collect();
    let txs = included_transactions(c, height)
        .await
        .expect("included transactions");
    for (block, t, r) in txs {
        *bal.entry(t.from).or_default() -= r.fee_paid.0;
        *bal.entry(block.author).or_default() += r.fee_to_producer.0;
        if r.failure.is_none() {
            let (to, amount) = t.tx.kind.recipient_and_amount();
            *bal.entry(t.from).or_default() -= amount.0;
            *bal.entry(to).or_default() += amount.0;
        }
    }
    bal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_partition_reorgs_everyone_onto_the_longer_branch() {
    let kind = ChainKind::Main;
    let (a, b, c) = (
        SecretKey::random(),
        SecretKey::random(),
        SecretKey::random(),
    );
    let g = test_genesis_of(kind, &[&a, &b, &c], 200);
    // Partition: {a, b, follower} and {c}. The first group leads 2 slots of 3, so its branch grows faster.
    let na = TestNode::start(kind, &g, Some(a)).expect("a");
    let nb = TestNode::start_with_peers(kind, &g, Some(b), &[na.p2p_addr()]).expect("b");
    let nf =
        TestNode::start_with_peers(kind, &g, None, &[na.p2p_addr(), nb.p2p_addr()]).expect("f");
    let mut nc = TestNode::start(kind, &g, Some(c)).expect("c");
    let fee = fee_for(&nc.client()).await;

    // A transfer only the small side sees.
    let lonely = SecretKey::random().address();
    let t1 = nc
        .client()
        .send_transaction(transfer(
            &dev_key(1),
            g.chain_id,
            0,
            lonely,
            Amount(777),
            fee.clone(),
        ))
        .await
        .expect("accepted by c");
    let on_c = included(&nc.client(), t1).await;
    // And one the big side sees.
    let t2 = na
        .client()
        .send_transaction(transfer(
            &dev_key(2),
            g.chain_id,
            0,
            lonely,
            Amount(5),
            fee.clone(),
        ))
        .await
        .expect("accepted by a");
    included(&na.client(), t2).await;
    na.wait_for_height(on_c + 12).await.expect("big side grows");
    let c_head_before = head(&nc).await;
    let fork_hash_c = nc
        .client()
        .block_by_number(on_c, None)
        .await
        .expect("call")
        .expect("block")
        .summary
        .hash;
    assert!(
        na.client()
            .block_by_hash(fork_hash_c, None)
            .await
            .expect("call")
            .is_none(),
        "the two sides really diverged"
    );
    assert!(head(&na).await > c_head_before, "the big side is longer");

    // Heal: c restarts knowing the others.
    nc.kill9();
    nc.bootstrap = vec![na.p2p_addr(), nb.p2p_addr()];
    nc.spawn().expect("c restarts");
    let target = head(&na).await + 2;
    nc.wait_for_height(target)
        .await
        .expect("c follows the big side");
    let nodes = [&na, &nb, &nf, &nc];
    agree_at(&nodes, target).await;
    // c's block holding t1 is no longer canonical anywhere.
    let at = nc
        .client()
        .block_by_number(on_c, None)
        .await
        .expect("call")
        .expect("block");
    assert_ne!(at.summary.hash, fork_hash_c);
    let metrics = nc.client().sync_status().await.expect("status");
    assert!(metrics.peers >= 1);
    // The dropped transaction comes back: re-included on the common chain.
    let again = included(&na.client(), t1).await;
    agree_at(&nodes, again + 1).await;
    assert_eq!(
        nc.client()
            .transaction(t1)
            .await
            .expect("call")
            .expect("known")
            .block_number,
        Some(again)
    );
    // Every node's balances equal a replay of the common branch.
    let mut replays: HashMap<u64, BTreeMap<Address, u128>> = HashMap::new();
    for n in nodes {
        let cl = n.client();
        for addr in [
            lonely,
            dev_key(1).address(),
            dev_key(2).address(),
            g.authorities[0],
            g.authorities[1],
            g.authorities[2],
        ] {
            let acct = cl.account(addr).await.expect("account");
            let h = acct.block_number;
            // Replayed from the node that reported `h`: another node may not hold block `h` yet.
            if let std::collections::hash_map::Entry::Vacant(e) = replays.entry(h) {
                e.insert(replay(&cl, &g, h).await);
            }
            let expected = replays[&h].get(&addr).copied().unwrap_or(0);
            assert_eq!(acct.balance.0, expected, "{addr} at height {h}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_is_disconnected_and_banned_while_the_network_keeps_producing() {
    let kind = ChainKind::Side;
    let (g, a, na) = lone_producer(kind, 200).await;
    let genesis_hash = g.block().hash();
    let (me, mut swarm) = hostile_swarm(&na, &genesis_hash);
    let topic = libp2p::gossipsub::IdentTopic::new(format!("/twinpeg/{genesis_hash}/blocks"));

    // Blocks with a known parent (genesis) but sealed by a stranger: invalid, not orphans.
    let stranger = SecretKey::random();
    let mut junk: Vec<Vec<u8>> = Vec::new();
    for i in 0..3u64 {
        let slot = g.block().header.slot + 1 + i;
        let header = Header {
            parent_hash: genesis_hash,
            number: 1,
            slot,
            timestamp_ms: slot * g.block_time_ms,
            author: a.address(),
            tx_root: tx_root([]),
            receipts_root: receipts_root(&[]),
            state_root: Hash::ZERO,
            base_fee: Amount(1_000_000_000),
            weight_used: 0,
        };
        junk.push(Block::seal(header, vec![], &stranger).encode());
        junk.push(format!("garbage {i} \u{1f4a9}").into_bytes());
    }
    let mut sent = 0;
    let mut disconnected = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while tokio::time::Instant::now() < deadline && !disconnected {
        tokio::select! {
            ev = swarm.select_next_some() => {
                if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = ev {
                    disconnected = true;
                }
            }
            _ = tick.tick() => {
                if sent < junk.len() {
                    // Publishing fails until the node's subscription reached us; retry.
                    if swarm.behaviour_mut().gossipsub.publish(topic.clone(), junk[sent].clone()).is_ok() {
                        sent += 1;
                    }
                }
            }
        }
    }
    assert!(
        disconnected,
        "the node disconnected the hostile peer (sent {sent} messages)"
    );
    // The node drops it from its peer list too (its side of the close may land a moment later).
    eventually("the hostile peer gone from tp_peers", || async {
        let peers = na.client().peers().await.ok()?;
        peers
            .iter()
            .all(|p| p.peer_id != me.to_string())
            .then_some(())
    })
    .await
    .expect("hostile peer dropped");
    // Banned: a new connection is dropped at once.
    swarm
        .dial(
            na.p2p_addr()
                .parse::<libp2p::Multiaddr>()
                .expect("multiaddr"),
        )
        .expect("redial");
    let mut reconnected_and_dropped = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::ConnectionClosed { .. } | SwarmEvent::OutgoingConnectionError { .. } => {
                    reconnected_and_dropped = true;
                    break;
                }
                _ => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    assert!(
        reconnected_and_dropped,
        "the banned peer cannot stay connected"
    );
    // The node never stalled.
    let h = head(&na).await;
    na.wait_for_height(h + 3).await.expect("still producing");
    let metrics = reqwest_metrics(&na.http);
    assert!(metrics.contains("peer_rejections"), "{metrics}");
}

fn reqwest_metrics(http: &str) -> String {
    use std::io::{Read, Write};
    let host = http.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_named_by_host_name_is_dialed_through_dns() {
    let authority = SecretKey::random();
    let g = test_genesis_of(ChainKind::Main, &[&authority], 300);
    let leader = TestNode::start(ChainKind::Main, &g, Some(authority)).expect("authority");
    // `/ip4/127.0.0.1/tcp/P/p2p/ID` -> `/dns4/localhost/tcp/P/p2p/ID`.
    let by_name = leader
        .p2p_addr()
        .replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    assert!(by_name.starts_with("/dns4/localhost/tcp/"), "{by_name}");
    let follower =
        TestNode::start_with_peers(ChainKind::Main, &g, None, &[by_name]).expect("follower");
    let h = head(&leader).await + 3;
    agree_at(&[&leader, &follower], h).await;
    let peers = follower.client().peers().await.expect("peers");
    assert_eq!(peers.len(), 1, "{peers:?}");
}

/// How many blocks the node refused as invalid from gossip, by its metrics.
fn invalid_blocks(http: &str) -> u64 {
    reqwest_metrics(http)
        .lines()
        .filter(|l| l.contains("peer_rejections") && l.contains("reason=\"invalid_block\""))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// A fresh libp2p identity's swarm for the chain of `genesis_hash`, dialing `node`.
fn hostile_swarm(
    node: &TestNode,
    genesis_hash: &Hash,
) -> (libp2p::PeerId, libp2p::Swarm<chain::network::Behaviour>) {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let me = key.public().to_peer_id();
    let mut swarm = chain::network::build_swarm(key, genesis_hash, 1 << 20).expect("swarm");
    swarm
        .dial(
            node.p2p_addr()
                .parse::<libp2p::Multiaddr>()
                .expect("multiaddr"),
        )
        .expect("dial");
    (me, swarm)
}

/// A one-authority chain with `block_ms` blocks: its genesis, its key and its running
/// producer, past block 1.
async fn lone_producer(kind: ChainKind, block_ms: u64) -> (Genesis, SecretKey, TestNode) {
    let a = SecretKey::random();
    let g = test_genesis_of(kind, &[&a], block_ms);
    let na = TestNode::start(kind, &g, Some(a.clone())).expect("producer starts");
    na.wait_for_height(1).await.expect("producing");
    (g, a, na)
}

/// Publishes `data` on `node`'s blocks topic from a fresh libp2p identity, driving the swarm
/// until `done` holds.
async fn gossip_block_until<F, Fut>(
    what: &str,
    node: &TestNode,
    genesis_hash: &Hash,
    data: Vec<u8>,
    mut done: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (_, mut swarm) = hostile_swarm(node, genesis_hash);
    let topic = libp2p::gossipsub::IdentTopic::new(format!("/twinpeg/{genesis_hash}/blocks"));
    let mut published = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} (published: {published})"
        );
        tokio::select! {
            _ = swarm.select_next_some() => {}
            _ = tick.tick() => {
                if !published {
                    // Publishing fails until the node's subscription reached us; retry.
                    published = swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(topic.clone(), data.clone())
                        .is_ok();
                } else if done().await {
                    return;
                }
            }
        }
    }
}

/// The block hash is the header hash; the seal and the transaction list are outside it. A
/// forged copy (junk seal, or another transaction list) is refused, but must not keep the
/// honest block with the same header out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_copies_of_an_honest_block_do_not_keep_it_out() {
    let kind = ChainKind::Side;
    let (g, _, na) = lone_producer(kind, 200).await;
    let genesis_hash = g.block().hash();
    let view = na
        .client()
        .block_by_number(1, None)
        .await
        .expect("rpc")
        .expect("block 1");
    assert_eq!(view.summary.tx_count, 0);
    let s = &view.summary;
    let honest = Block {
        header: Header {
            parent_hash: s.parent_hash,
            number: s.number,
            slot: s.slot,
            timestamp_ms: s.timestamp_ms,
            author: s.author,
            tx_root: view.tx_root,
            receipts_root: view.receipts_root,
            state_root: s.state_root,
            base_fee: s.base_fee,
            weight_used: s.weight_used,
        },
        seal: view.seal,
        transactions: vec![],
    };
    assert_eq!(honest.hash(), s.hash);
    let mut junk_seal = honest.clone();
    junk_seal.seal = SecretKey::random().sign_prehash(&honest.header.seal_hash());
    let mut other_body = honest.clone();
    other_body.transactions = vec![primitives::tx::Transaction {
        chain_id: g.chain_id,
        nonce: 0,
        fee: fee_for(&na.client()).await,
        kind: primitives::tx::TxKind::Transfer {
            to: Address::default(),
            amount: Amount(1),
        },
    }
    .sign(&dev_key(0))];

    // A follower that hears of block 1 only from the test's peers.
    let mut nb = TestNode::start(kind, &g, None).expect("follower starts");
    // Each forged copy from its own peer (two invalid blocks get one peer banned), each
    // waited on until the follower refused it, then the honest block.
    for (i, forged) in [junk_seal, other_body].into_iter().enumerate() {
        assert_eq!(forged.hash(), honest.hash());
        gossip_block_until(
            "the forged copy refused",
            &nb,
            &genesis_hash,
            forged.encode(),
            || async { invalid_blocks(&nb.http) > i as u64 },
        )
        .await;
    }
    let c = nb.client();
    gossip_block_until(
        "the honest block imported",
        &nb,
        &genesis_hash,
        honest.encode(),
        || async { c.head().await.is_ok_and(|h| h.hash == honest.hash()) },
    )
    .await;

    // Joined to the producer, the follower keeps one head with it.
    nb.kill9();
    nb.bootstrap = vec![na.p2p_addr()];
    nb.spawn().expect("follower restarts");
    let h = head(&na).await;
    agree_at(&[&na, &nb], h + 2).await;
}

/// How many times the node refused a peer's message for `reason`, by its metrics.
fn peer_rejections(http: &str, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    reqwest_metrics(http)
        .lines()
        .filter(|l| l.contains("peer_rejections") && l.contains(&label))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// Transaction gossip that the pool refuses entirely (well signed, but for another chain) is
/// useless work: the node penalises its sender and does not forward it; gossip with a
/// transaction it takes is forwarded as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_gossip_the_pool_refuses_is_penalised_and_not_forwarded() {
    use primitives::tx::SignedTransaction;
    let kind = ChainKind::Main;
    let a = SecretKey::random();
    // Long blocks: the valid transfers below stay pooled (so each is new to the node).
    let g = test_genesis_of(kind, &[&a], 5_000);
    let genesis_hash = g.block().hash();
    let na = TestNode::start(kind, &g, Some(a)).expect("node starts");
    let topic = libp2p::gossipsub::IdentTopic::new(format!("/twinpeg/{genesis_hash}/txs"));
    let (_, mut sender) = hostile_swarm(&na, &genesis_hash);
    let (_, mut watcher) = hostile_swarm(&na, &genesis_hash);
    watcher
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .expect("subscribe");
    let fee = fee_for(&na.client()).await;
    let signed = |chain_id: u64, nonce: u64| {
        primitives::tx::Transaction {
            chain_id,
            nonce,
            fee: fee.clone(),
            kind: primitives::tx::TxKind::Transfer {
                to: Address::default(),
                amount: Amount(1),
            },
        }
        .sign(&dev_key(0))
    };
    let junk: Vec<SignedTransaction> = (0..3).map(|n| signed(g.chain_id + 1, n)).collect();
    let junk_bytes = junk.encode();
    let before = peer_rejections(&na.http, "refused_transactions");

    // 1. The refused batch: penalised.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut published = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut seen_junk = false;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out (published {published})"
        );
        tokio::select! {
            _ = sender.select_next_some() => {}
            ev = watcher.select_next_some() => {
                seen_junk |= heard(ev).is_some_and(|d| d == junk_bytes);
            }
            _ = tick.tick() => {
                if !published {
                    published = sender
                        .behaviour_mut()
                        .gossipsub
                        .publish(topic.clone(), junk_bytes.clone())
                        .is_ok();
                } else if peer_rejections(&na.http, "refused_transactions") > before {
                    break;
                }
            }
        }
    }
    // 2. Valid transfers after it (one new one each round until the watcher hears one): the
    // forwarding path works, and the refused batch, decided before, never came through.
    let mut nonce = 0;
    let mut seen_valid = false;
    while !seen_valid {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no valid gossip forwarded"
        );
        tokio::select! {
            _ = sender.select_next_some() => {}
            ev = watcher.select_next_some() => {
                if let Some(data) = heard(ev) {
                    seen_junk |= data == junk_bytes;
                    seen_valid |= data != junk_bytes;
                }
            }
            _ = tick.tick() => {
                let batch = vec![signed(g.chain_id, nonce)].encode();
                if sender.behaviour_mut().gossipsub.publish(topic.clone(), batch).is_ok() {
                    nonce += 1;
                }
            }
        }
    }
    assert!(!seen_junk, "the refused batch was forwarded");
}

/// The payload of a gossip message a swarm heard, if `ev` is one.
fn heard(ev: SwarmEvent<chain::network::BehaviourEvent>) -> Option<Vec<u8>> {
    match ev {
        SwarmEvent::Behaviour(chain::network::BehaviourEvent::Gossipsub(
            libp2p::gossipsub::Event::Message { message, .. },
        )) => Some(message.data),
        _ => None,
    }
}

/// A transaction a node accepts while no peer is connected still reaches the producer once
/// one is: the pool's transactions are announced again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_accepted_with_no_peer_connected_reaches_the_producer_later() {
    let kind = ChainKind::Main;
    let a = SecretKey::random();
    let g = test_genesis_of(kind, &[&a], 500);
    // The follower never restarts; the producer dials it, so they meet again after its restart.
    let follower = TestNode::start(kind, &g, None).expect("follower starts");
    let mut producer = TestNode::start_with_peers(kind, &g, Some(a), &[follower.p2p_addr()])
        .expect("producer starts");
    agree_at(&[&producer, &follower], 2).await;
    producer.kill9();
    let fc = follower.client();
    eventually("the follower sees no peer", || async {
        fc.peers().await.ok().filter(|p| p.is_empty()).map(|_| ())
    })
    .await
    .expect("alone");
    let tx = fc
        .send_transaction(transfer(
            &dev_key(1),
            g.chain_id,
            0,
            SecretKey::random().address(),
            Amount::coins(1),
            fee_for(&fc).await,
        ))
        .await
        .expect("accepted while alone");
    producer.spawn().expect("producer restarts");
    let at = included(&producer.client(), tx).await;
    assert!(at > 0);
}
