//! Block production on a slot timer: the slot's leader builds, seals, commits durably, then
//! publishes the new head.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parity_scale_codec::Encode;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::block::{next_state_root, receipts_root, tx_root, Block, Header};
use crate::crypto::SecretKey;
use crate::execution::{BlockEnv, BlockExecutor, TxInvalid};
use crate::node::Chain;
use crate::rpc::types::BlockSummary;
use crate::state::Account;
use crate::store::{CheckpointMark, CommittedBlock, StoreError, StoredBlock};
use crate::types::{Address, Hash, Slot};

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The production loop of an authority: wakes at each slot boundary and produces when it leads.
pub async fn run(
    chain: Arc<Chain>,
    key: SecretKey,
    checkpoint_interval: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let block_time = chain.genesis.block_time_ms.max(1);
    let mut dirty: HashSet<Address> = HashSet::new();
    let mut checkpoint: Option<JoinHandle<()>> = None;
    loop {
        let now = now_ms();
        let slot = now / block_time;
        let head_slot = chain.tip().head.slot;
        if slot > head_slot && chain.leader(slot) == key.address() {
            match produce(&chain, &key, slot).await {
                Ok((summary, touched)) => {
                    dirty.extend(touched);
                    if summary.number % checkpoint_interval == 0 {
                        if let Some(prev) = checkpoint.take() {
                            let _ = prev.await;
                        }
                        checkpoint = Some(spawn_checkpoint(&chain, std::mem::take(&mut dirty)));
                    }
                }
                Err(e) => tracing::error!(slot, error = %e, "block production failed"),
            }
        }
        let next = (now / block_time + 1) * block_time;
        let wait = Duration::from_millis(next.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Some(prev) = checkpoint.take() {
        let _ = prev.await;
    }
    tracing::info!("block production stopped");
}

/// Writes the accounts changed since the last checkpoint, off the production path.
fn spawn_checkpoint(chain: &Arc<Chain>, dirty: HashSet<Address>) -> JoinHandle<()> {
    let (mark, accounts) = {
        let tip = chain.tip();
        let accounts: Vec<(Address, Account)> =
            dirty.iter().map(|a| (*a, tip.state.account(a))).collect();
        (
            CheckpointMark {
                number: tip.head.number,
                hash: tip.head_hash,
                totals: tip.state.totals,
            },
            accounts,
        )
    };
    let chain = chain.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        match chain.store.write_checkpoint(mark, &accounts) {
            Ok(()) => tracing::debug!(
                height = mark.number,
                accounts = accounts.len(),
                ms = started.elapsed().as_millis() as u64,
                "checkpoint written"
            ),
            Err(e) => tracing::error!(height = mark.number, error = %e, "checkpoint failed"),
        }
    })
}

/// Builds, seals, commits and publishes one block for `slot`.
async fn produce(
    chain: &Arc<Chain>,
    key: &SecretKey,
    slot: Slot,
) -> Result<(BlockSummary, Vec<Address>), StoreError> {
    let max_weight = chain.genesis.max_block_weight;
    // Select under the mempool lock, then execute holding only the state read lock.
    let candidates = {
        let pool = chain.mempool();
        let tip = chain.tip();
        pool.select(|a| tip.state.account(a).nonce, max_weight)
    };
    let (committed, drop_hashes) = {
        let tip = chain.tip();
        let parent = &tip.head;
        let env = BlockEnv {
            chain_id: chain.genesis.chain_id,
            base_fee: chain.base_fee_after(parent),
            producer: key.address(),
            max_weight,
        };
        let mut ex = BlockExecutor::new(&tip.state, chain.fee_rule.as_ref(), env);
        let mut included = Vec::with_capacity(candidates.len());
        let mut drop_hashes: Vec<Hash> = Vec::new();
        for tx in candidates {
            match ex.push(&tx) {
                Ok(()) => included.push(tx),
                // An earlier transaction of the sender was skipped; this one waits.
                Err(TxInvalid::NonceMismatch { .. }) | Err(TxInvalid::BlockFull) => {}
                Err(e) => {
                    tracing::debug!(hash = %tx.hash(), error = %e, "dropping transaction that cannot be included");
                    drop_hashes.push(tx.hash());
                }
            }
        }
        let executed = ex.finish();
        let header = Header {
            parent_hash: tip.head_hash,
            number: parent.number + 1,
            slot,
            timestamp_ms: slot * chain.genesis.block_time_ms,
            author: key.address(),
            tx_root: tx_root(included.iter().map(|t| t.hash())),
            receipts_root: receipts_root(&executed.receipts),
            state_root: next_state_root(&parent.state_root, &executed.diff.encode()),
            base_fee: env.base_fee,
            weight_used: executed.weight_used,
        };
        let tx_hashes: Vec<Hash> = included.iter().map(|t| t.hash()).collect();
        let senders = included.iter().map(|t| t.sender()).collect();
        let transactions = included.iter().map(|t| t.signed().clone()).collect();
        let block = Block::seal(header, transactions, key);
        (
            CommittedBlock {
                stored: StoredBlock { block, senders },
                tx_hashes,
                receipts: executed.receipts,
                diff: executed.diff,
                undo: executed.undo,
            },
            drop_hashes,
        )
    };

    // Durable before visible: nothing is announced that redb does not hold.
    let started = std::time::Instant::now();
    let committed = {
        let chain = chain.clone();
        tokio::task::spawn_blocking(move || {
            chain.store.commit_block(&committed).map(|()| committed)
        })
        .await
        .map_err(|e| StoreError::Corrupt {
            what: "commit task",
            detail: e.to_string(),
        })??
    };
    chain
        .metrics
        .block_commit_seconds
        .observe(started.elapsed().as_secs_f64());

    let header = committed.stored.block.header.clone();
    let hash = header.hash();
    let tx_count = committed.tx_hashes.len();
    {
        let mut tip = chain.tip_mut();
        tip.state.apply_diff(&committed.diff);
        tip.head = header.clone();
        tip.head_hash = hash;
        tip.head_tx_count = tx_count;
    }
    let touched: Vec<Address> = committed.diff.accounts.iter().map(|(a, _)| *a).collect();
    {
        let mut pool = chain.mempool();
        for (addr, acct) in &committed.diff.accounts {
            pool.prune_sender(addr, acct.nonce);
        }
        for h in &drop_hashes {
            pool.remove(h);
        }
        chain.metrics.mempool_txs.set(pool.len() as i64);
    }
    chain.metrics.head_height.set(header.number as i64);
    chain.metrics.blocks_total.inc();
    chain.metrics.txs_included_total.inc_by(tx_count as u64);
    let summary = BlockSummary::new(&header, tx_count);
    tracing::info!(
        height = header.number,
        hash = %hash,
        slot,
        txs = tx_count,
        weight = header.weight_used,
        base_fee = %header.base_fee,
        "block produced"
    );
    let _ = chain.heads.send(summary.clone());
    Ok((summary, touched))
}
