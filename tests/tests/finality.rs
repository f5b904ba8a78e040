//! End-to-end finality on real processes: four authority nodes of a chain, each its own OS
//! process with its own redb, voting over libp2p. One authority down: finality goes on. Two
//! down: blocks go on, finality stops and `tp_finalityStatus` says why. One back: finality
//! resumes, and every block final before is still final. And an authority crashed at each
//! step of voting never contradicts itself after its restart.

use std::time::Duration;

use primitives::crypto::SecretKey;
use primitives::genesis::Genesis;
use rpc_api::types::{BlockId, FinalityStatusView};
use rpc_api::TwinpegApiClient;
use twinpeg_e2e::{eventually_within, test_genesis_of, ChainKind, TestNode};

/// Long enough for a loaded 2-core machine; the status counts an authority as gone only once
/// it has been silent for 15 s.
const DEADLINE: Duration = Duration::from_secs(120);

/// A genesis whose authorities are `keys`, in leader order.
fn genesis_of(kind: ChainKind, keys: &[SecretKey], block_time_ms: u64) -> Genesis {
    test_genesis_of(kind, &keys.iter().collect::<Vec<_>>(), block_time_ms)
}

/// One node per key, each dialing every node started before it.
fn start_authorities(kind: ChainKind, g: &Genesis, keys: &[SecretKey]) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for k in keys {
        let boot: Vec<String> = nodes.iter().map(TestNode::p2p_addr).collect();
        nodes.push(
            TestNode::start_with_peers(kind, g, Some(k.clone()), &boot).expect("node starts"),
        );
    }
    nodes
}

async fn status(n: &TestNode) -> Option<FinalityStatusView> {
    n.client().finality_status().await.ok()
}

/// Waits until every node in `nodes` has a final block above `height`; returns the lowest.
async fn final_above(nodes: &[TestNode], height: u64) -> BlockId {
    eventually_within(
        &format!("finality above {height} on {} nodes", nodes.len()),
        DEADLINE,
        || async {
            let mut lowest: Option<BlockId> = None;
            for n in nodes {
                let f = status(n).await?.finalized;
                if f.number <= height {
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
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(nodes)))
}

/// Each node's block at `f.number` is `f.hash`.
async fn still_final(nodes: &[TestNode], f: BlockId) {
    for n in nodes {
        let b = n
            .client()
            .block_by_number(f.number, None)
            .await
            .expect("call")
            .expect("block");
        assert_eq!(
            b.summary.hash, f.hash,
            "final block {} reverted on {}",
            f.number, n.http
        );
        let s = status(n).await.expect("status");
        assert!(s.finalized.number >= f.number, "{s:?}");
        assert_eq!(s.equivocations, 0, "no authority equivocated: {s:?}");
    }
}

fn logs(nodes: &[TestNode]) -> String {
    nodes
        .iter()
        .map(|n| {
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            format!(
                "--- {}\n{}",
                n.http,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finality_goes_on_with_one_authority_down_stops_with_two_says_why_and_resumes() {
    one_down_two_down_one_back(ChainKind::Main, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidechain_finality_goes_on_with_one_authority_down_stops_with_two_and_resumes() {
    one_down_two_down_one_back(ChainKind::Side, 200).await;
}

/// Four authorities of `kind`: one killed, then a second, then one restarted.
async fn one_down_two_down_one_back(kind: ChainKind, block_ms: u64) {
    let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
    let g = genesis_of(kind, &keys, block_ms);
    let mut nodes = start_authorities(kind, &g, &keys);
    let before = final_above(&nodes, 3).await;

    // One of four down: three still make the quorum of 3.
    nodes[3].kill9();
    let one_down = final_above(&nodes[..3], before.number + 5).await;
    still_final(&nodes[..3], before).await;

    // Two of four down: the two left keep producing in their slots, but nothing becomes final,
    // and the status says why.
    nodes[2].kill9();
    let stalled = eventually_within("a status that says finality stalled", DEADLINE, || async {
        let s = status(&nodes[0]).await?;
        s.stalled
            .as_deref()
            .is_some_and(|r| r.contains("2 of 4 authorities voting; needs 3"))
            .then_some(s)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&nodes[..2])));
    assert_eq!(stalled.voting.len(), 2, "{stalled:?}");
    let frozen: Vec<BlockId> = {
        let mut v = Vec::new();
        for n in &nodes[..2] {
            v.push(status(n).await.expect("status").finalized);
        }
        v
    };
    nodes[0]
        .wait_for_height(stalled.head + 5)
        .await
        .expect("blocks go on without finality");
    for (n, f) in nodes[..2].iter().zip(&frozen) {
        let s = status(n).await.expect("status");
        assert_eq!(
            s.finalized, *f,
            "a block became final with 2 of 4 authorities"
        );
        assert!(s.lag >= 5, "{s:?}");
        assert!(s.stalled.is_some(), "{s:?}");
    }

    // One comes back (same data dir, a new process): finality resumes on all three, and
    // nothing final before was reverted.
    nodes[2].spawn().expect("restarts");
    let top = frozen.iter().map(|f| f.number).max().unwrap_or(0);
    let resumed = final_above(&nodes[..3], top + 3).await;
    for f in [before, one_down, frozen[0], frozen[1], resumed] {
        still_final(&nodes[..3], f).await;
    }
    eventually_within("the stall reported over", DEADLINE, || async {
        status(&nodes[0]).await.filter(|s| s.stalled.is_none())
    })
    .await
    .expect("finality caught up with the head");
}

type Msg = finality::Message<primitives::crypto::Signature>;

/// What an authority wrote in `finality.redb`: its instance and round, what it said there,
/// and everything it would send again (this round's statements and the last round's votes).
type Spoken = (u64, u32, Option<Msg>, Option<Msg>, Option<Msg>, Vec<String>);

fn spoken(n: &TestNode) -> Spoken {
    let store = chain::finality::FinalityStore::open(&n.data_dir()).expect("finality.redb");
    let s = store.load().expect("readable").expect("written");
    let all: Vec<String> = [&s.proposal, &s.prevote, &s.precommit]
        .into_iter()
        .flatten()
        .chain(&s.previous)
        .filter_map(|m| m.said().map(|x| x.to_string()))
        .collect();
    (s.instance, s.round, s.proposal, s.prevote, s.precommit, all)
}

/// The last statement the log says was sent (`statement=...` of "finality statement sent").
fn last_sent(log: &str) -> Option<String> {
    log.lines()
        .filter(|l| l.contains("finality statement sent"))
        .filter_map(|l| l.split("statement=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .next_back()
}

/// Waits (without holding anything across awaits) until the node's process has exited.
async fn exited(n: &mut TestNode) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < DEADLINE {
        if !n.is_running() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `kill -9` of an authority at the instants that matter, through the crash points the node
/// exposes: just before its finality state is written, right after it is written (its votes not
/// yet sent), and right after a vote was handed to the network. After each restart it resumes
/// from what it wrote: in a round it already spoke in, what it wrote later is what it wrote
/// before, no authority ever sees it equivocate, and finality goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authority_crashed_while_it_votes_never_contradicts_itself_after_a_restart() {
    let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::random()).collect();
    let g = genesis_of(ChainKind::Main, &keys, 300);
    let mut nodes = start_authorities(ChainKind::Main, &g, &keys);
    final_above(&nodes, 2).await;
    let mut before = spoken_after_kill(&mut nodes[3]);
    // The sends are aimed past the first few, which after a restart are the statements it
    // already wrote and sends again.
    let crashes = [
        "finality-persisted:4",
        "finality-sent:15",
        "finality-before-persist:6",
        "finality-sent:30",
        "finality-persisted:13",
        "finality-sent:22",
        "finality-before-persist:17",
    ];
    for (i, at) in crashes.iter().enumerate() {
        let victim = &mut nodes[3];
        victim.env = vec![
            (service::fault::ENV.to_string(), (*at).to_string()),
            (
                "RUST_LOG".to_string(),
                "info,chain::finality=debug".to_string(),
            ),
        ];
        // It may crash before it has even written its endpoints: that is a start too.
        let _ = victim.spawn();
        assert!(
            exited(victim).await,
            "{at}: the crash point was never reached"
        );
        let log = victim.log();
        assert_eq!(
            log.matches("crash point").count(),
            i + 1,
            "{at}: it stopped for another reason:\n{log}"
        );
        let after = spoken(victim);
        if at.starts_with("finality-sent") {
            // Its last words went out: they must be in what it wrote before sending them.
            // This run's log: after the previous crash message, up to this one.
            let run = log.rsplit("crash point").nth(1).unwrap_or(&log);
            let sent = last_sent(run).expect("a statement sent before the crash");
            // `kind/instance/round/block`: a statement of an instance decided in the same
            // write is covered by that decision, which was written with it.
            let instance: u64 = sent
                .split('/')
                .nth(1)
                .and_then(|i| i.parse().ok())
                .expect("an instance in the statement");
            assert!(
                after.5.contains(&sent) || instance < after.0,
                "{at}: sent {sent} but wrote only {:?} in instance {}",
                after.5,
                after.0
            );
        }
        let (bi, br) = (before.0, before.1);
        assert!(
            (after.0, after.1) >= (bi, br),
            "{at}: went back from instance {bi} round {br} to {} {}",
            after.0,
            after.1
        );
        if (after.0, after.1) == (bi, br) {
            for (what, b, a) in [
                ("proposal", &before.2, &after.2),
                ("prevote", &before.3, &after.3),
                ("precommit", &before.4, &after.4),
            ] {
                if b.is_some() {
                    assert_eq!(a, b, "{at}: its {what} in instance {bi} round {br} changed");
                }
            }
        }
        before = after;
    }
    nodes[3].env.clear();
    nodes[3].spawn().expect("restarts for good");
    let top = status(&nodes[0]).await.expect("status").finalized.number;
    let f = final_above(&nodes, top + 3).await;
    still_final(&nodes, f).await;
}

/// Stops the node with `kill -9` and reads what it wrote.
fn spoken_after_kill(n: &mut TestNode) -> Spoken {
    n.kill9();
    spoken(n)
}
