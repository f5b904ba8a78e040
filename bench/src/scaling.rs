//! Scaling: block import and commit time with 10k, 100k and 1M existing accounts (the cost
//! must follow the block's changes, not the state's size), and how long a new follower takes
//! to sync 10,000 blocks.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chain::execution::{BlockEnv, BlockExecutor};
use chain::fee::FeeRateRule;
use chain::store::{CheckpointMark, CheckpointPatch, CommittedBlock, Store, StoredBlock};
use parity_scale_codec::Encode;
use primitives::account::Account;
use primitives::block::{next_state_root, receipts_root, tx_root, Block, Header};
use primitives::crypto::{keccak256, SecretKey};
use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
use primitives::tx::{Fee, RecoveredTx, Transaction, TxKind};
use primitives::types::{Address, Amount};
use rayon::prelude::*;
use serde::Serialize;

/// Figures at one state size.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePoint {
    /// Existing accounts.
    pub accounts: u64,
    /// Transfers in the block.
    pub block_txs: u64,
    /// Executing the block (senders already recovered, as on import), ms.
    pub execute_ms: f64,
    /// The block's durable commit (block, receipts, tx index, diff, undo, head), ms.
    pub commit_ms: f64,
    /// Writing the block's changed accounts into the account checkpoint table, ms.
    pub checkpoint_ms: f64,
}

/// The scaling results.
#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    /// One point per state size.
    pub points: Vec<ScalePoint>,
    /// commit time at the largest state / at the smallest (goal: at most 2).
    pub commit_ratio: f64,
    /// Seconds a fresh follower took to sync `sync_blocks` blocks.
    pub sync_seconds: Option<f64>,
    /// Blocks synced.
    pub sync_blocks: u64,
}

fn address_of(i: u64) -> Address {
    let h = keccak256(&i.to_le_bytes());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

fn small_genesis(authority: Address, block_time_ms: u64) -> Genesis {
    Genesis {
        chain_id: 4242,
        block_time_ms,
        timestamp_ms: 0,
        authorities: vec![authority],
        max_block_weight: 16_000_000,
        max_tx_size: 16_384,
        fee: FeeParams::FeeRate {
            min_fee_rate: Amount(1),
        },
        accounts: vec![GenesisAccount {
            address: authority,
            balance: Amount::coins(1),
        }],
        peg: None,
    }
}

/// Import and commit of one 10k-transfer block at a state of `accounts` accounts.
pub fn point(accounts: u64, block_txs: u64) -> Result<ScalePoint> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let producer = SecretKey::random();
    let g = small_genesis(producer.address(), 1000);
    let genesis_hash = store.init_genesis(&g)?;
    let senders: Vec<SecretKey> = (0..block_txs)
        .into_par_iter()
        .filter_map(|i| {
            SecretKey::from_bytes(&keccak256(format!("scale-sender-{i}").as_bytes()).0).ok()
        })
        .collect();
    let mut state = chain::state::State::from_genesis(&g);
    let funded = Account {
        balance: Amount::coins(1000),
        nonce: 0,
    };
    for i in 0..accounts {
        state.insert(address_of(i), funded);
    }
    for s in &senders {
        state.insert(s.address(), funded);
    }
    // The account table holds the whole state, as after a checkpoint.
    let all: Vec<_> = state.iter().map(|(a, v)| (*a, Some(*v))).collect();
    let mark = CheckpointMark {
        number: 0,
        hash: genesis_hash,
        totals: state.totals,
    };
    store.write_checkpoint(
        mark,
        &CheckpointPatch {
            accounts: all,
            replace_all: true,
            sum: Some(state.entry_sum()),
            ..Default::default()
        },
    )?;

    let txs: Vec<RecoveredTx> = senders
        .par_iter()
        .enumerate()
        .map(|(i, k)| {
            let to = address_of((i as u64).wrapping_mul(7919) % accounts.max(1));
            Transaction {
                chain_id: g.chain_id,
                nonce: 0,
                fee: Fee::Flat { fee: Amount(1000) },
                kind: TxKind::Transfer {
                    to,
                    amount: Amount(1),
                },
            }
            .sign(k)
        })
        .filter_map(|t| t.recover().ok())
        .collect();
    let rule = FeeRateRule {
        min_fee_rate: Amount(1),
    };
    let env = BlockEnv {
        chain_id: g.chain_id,
        base_fee: Amount::ZERO,
        producer: producer.address(),
        max_weight: 16_000_000,
        number: 1,
        timestamp_ms: 1000,
    };
    let started = Instant::now();
    let mut ex = BlockExecutor::new(&state, &rule, None, env);
    for t in &txs {
        if ex.push(t).is_err() {
            bail!("a benchmark transfer was not includable");
        }
    }
    let executed = ex.finish();
    let execute_ms = started.elapsed().as_secs_f64() * 1000.0;
    let header = Header {
        parent_hash: genesis_hash,
        number: 1,
        slot: 1,
        timestamp_ms: 1000,
        author: producer.address(),
        tx_root: tx_root(txs.iter().map(|t| t.hash())),
        receipts_root: receipts_root(&executed.receipts),
        state_root: next_state_root(&g.block().header.state_root, &executed.diff.encode()),
        base_fee: Amount::ZERO,
        weight_used: executed.weight_used,
    };
    let block = Block::seal(
        header,
        txs.iter().map(|t| t.signed().clone()).collect(),
        &producer,
    );
    let committed = CommittedBlock::new(block, &txs, executed);
    let started = Instant::now();
    store.commit_block(&committed)?;
    let commit_ms = started.elapsed().as_secs_f64() * 1000.0;
    state.apply_diff(&committed.diff);
    let dirty: Vec<_> = committed
        .diff
        .accounts
        .iter()
        .map(|(a, v)| (*a, Some(*v)))
        .collect();
    let started = Instant::now();
    store.write_checkpoint(
        CheckpointMark {
            number: 1,
            hash: committed.stored.block.hash(),
            totals: state.totals,
        },
        &CheckpointPatch {
            accounts: dirty,
            sum: Some(state.entry_sum()),
            ..Default::default()
        },
    )?;
    let checkpoint_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(ScalePoint {
        accounts,
        block_txs,
        execute_ms,
        commit_ms,
        checkpoint_ms,
    })
}

/// Median of three runs of [`point`] (by commit time).
pub fn median_point(accounts: u64, block_txs: u64) -> Result<ScalePoint> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(point(accounts, block_txs)?);
    }
    runs.sort_by(|a, b| a.commit_ms.total_cmp(&b.commit_ms));
    Ok(runs.swap_remove(1))
}

/// Builds `blocks` empty blocks offline into a node data dir, then times a fresh follower's sync.
pub async fn sync_time(blocks: u64) -> Result<f64> {
    use crate::node::Prepared;
    use rpc_api::TwinpegApiClient;

    let authority = SecretKey::random();
    let block_time_ms = 100u64;
    let mut g = small_genesis(authority.address(), block_time_ms);
    let now_slot = service::clock::now_ms() / block_time_ms;
    g.timestamp_ms = (now_slot - blocks - 10) * block_time_ms;
    let prepared = Prepared::new("mainchain", &g, Some(&authority))?;
    {
        let store = Store::open(&prepared.data_dir())?;
        let mut state = chain::state::State::from_genesis(&g);
        let mut parent = g.block().header;
        let rule = FeeRateRule {
            min_fee_rate: Amount(1),
        };
        for n in 1..=blocks {
            let slot = g.timestamp_ms / block_time_ms + n;
            let env = BlockEnv {
                chain_id: g.chain_id,
                base_fee: Amount::ZERO,
                producer: authority.address(),
                max_weight: g.max_block_weight,
                number: n,
                timestamp_ms: slot * block_time_ms,
            };
            let executed = BlockExecutor::new(&state, &rule, None, env).finish();
            let header = Header {
                parent_hash: parent.hash(),
                number: n,
                slot,
                timestamp_ms: slot * block_time_ms,
                author: authority.address(),
                tx_root: tx_root([]),
                receipts_root: receipts_root(&executed.receipts),
                state_root: next_state_root(&parent.state_root, &executed.diff.encode()),
                base_fee: Amount::ZERO,
                weight_used: 0,
            };
            let block = Block::seal(header.clone(), vec![], &authority);
            state.apply_diff(&executed.diff);
            store.commit_block(&CommittedBlock {
                stored: StoredBlock {
                    block,
                    senders: vec![],
                },
                tx_hashes: vec![],
                receipts: executed.receipts,
                diff: executed.diff,
                undo: executed.undo,
            })?;
            parent = header;
        }
    }
    let producer = prepared.run(&[])?;
    let follower = Prepared::new("mainchain", &g, None)?.run(&producer.p2p)?;
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(&follower.http)?;
    let started = Instant::now();
    loop {
        if let Ok(h) = client.head().await {
            if h.number >= blocks {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("follower did not sync {blocks} blocks in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed().as_secs_f64())
}
