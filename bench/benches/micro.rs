//! Criterion micro-benchmarks of the node's hot paths, through the same public `chain`
//! functions the node calls, so a regression in any of them shows up as a change here:
//!
//! - `tx_ingress`: SCALE-decode one signed transfer and recover its sender
//!   (`SignedTransaction::decode_and_recover`, as `tp_sendTransaction` does);
//! - `tx_ingress_batch_1000`: a batch of 1,000 done as the RPC server's `decode_all` does
//!   (rayon `par_iter` from 8 transactions up), beside a sequential loop for scale;
//! - `block_execute_1000`: 1,000 pre-recovered transfers on a state of 6,000 accounts, as the
//!   driver's `build_block` (a `BlockExecutor`, `push` per transaction, `finish`) and its import
//!   path (`execute_block`, then the receipts and state roots) do;
//! - `block_commit_1000`: the durable redb commit of such a block (`Store::commit_canonical`,
//!   the call the driver's `adopt` makes), one new block on top of the last each iteration.
//!
//! Key generation, signing and block assembly are set up outside the timed sections.
//! Run with `make microbench` or `cargo bench -p twinpeg-bench --bench micro [-- FILTER]`;
//! criterion keeps the last run under `target/criterion` and reports the change against it.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use chain::execution::{execute_block, BlockEnv, BlockExecutor, Executed};
use chain::fee::FeeRateRule;
use chain::mempool::Rejection;
use chain::state::State;
use chain::store::{CommittedBlock, Store, StoredBlock};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use parity_scale_codec::Encode;
use primitives::block::{next_state_root, receipts_root, tx_root, Block, Header};
use primitives::crypto::{keccak256, SecretKey};
use primitives::genesis::{FeeParams, Genesis, GenesisAccount};
use primitives::tx::{Fee, RecoveredTx, SignedTransaction, Transaction, TxKind};
use primitives::types::{Address, Amount, Bytes, Hash};
use rayon::prelude::*;

/// Transfers per block (and per ingress batch); one distinct sender each, nonce 0.
const BLOCK_TXS: usize = 1_000;
/// Funded accounts besides the senders; the transfers pay into them.
const ACCOUNTS: u64 = 5_000;
const CHAIN_ID: u64 = 4242;
/// As in deploy/*-genesis.toml.
const MAX_TX_SIZE: u32 = 16_384;
const MAX_BLOCK_WEIGHT: u64 = 8_000_000;
const MIN_FEE_RATE: Amount = Amount(1);
const BLOCK_TIME_MS: u64 = 1_000;

/// Everything the benchmarks share, built once and not timed.
struct Fixture {
    producer: SecretKey,
    genesis: Genesis,
    state: State,
    /// The transfers as they arrive over RPC or gossip: SCALE bytes of signed transactions.
    raws: Vec<Bytes>,
    /// The same transfers with their senders recovered, as the mempool hands them to the driver.
    txs: Vec<RecoveredTx>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);

fn key(label: &str, i: u64) -> SecretKey {
    SecretKey::from_bytes(&keccak256(format!("twinpeg-micro/{label}/{i}").as_bytes()).0)
        .expect("a keccak digest is a valid secp256k1 secret key")
}

fn account(i: u64) -> Address {
    let h = keccak256(&i.to_le_bytes());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

impl Fixture {
    fn new() -> Self {
        let producer = key("producer", 0);
        let senders: Vec<SecretKey> = (0..BLOCK_TXS as u64)
            .into_par_iter()
            .map(|i| key("sender", i))
            .collect();
        let funded = Amount::coins(1_000);
        let accounts = (0..ACCOUNTS)
            .map(account)
            .chain(senders.iter().map(|k| k.address()))
            .map(|address| GenesisAccount {
                address,
                balance: funded,
            })
            .collect();
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            block_time_ms: BLOCK_TIME_MS,
            timestamp_ms: 0,
            authorities: vec![producer.address()],
            max_block_weight: MAX_BLOCK_WEIGHT,
            max_tx_size: MAX_TX_SIZE,
            fee: FeeParams::FeeRate {
                min_fee_rate: MIN_FEE_RATE,
            },
            accounts,
            peg: None,
        };
        genesis.validate().expect("the benchmark genesis is valid");
        let signed: Vec<SignedTransaction> = senders
            .par_iter()
            .enumerate()
            .map(|(i, k)| {
                Transaction {
                    chain_id: CHAIN_ID,
                    nonce: 0,
                    fee: Fee::Flat { fee: Amount(1_000) },
                    kind: TxKind::Transfer {
                        to: account((i as u64).wrapping_mul(7_919) % ACCOUNTS),
                        amount: Amount(1),
                    },
                }
                .sign(k)
            })
            .collect();
        let raws: Vec<Bytes> = signed.iter().map(|t| Bytes(t.encode())).collect();
        let txs: Vec<RecoveredTx> = signed
            .into_par_iter()
            .map(|t| t.recover().expect("a freshly signed transfer recovers"))
            .collect();
        Fixture {
            state: chain::state::State::from_genesis(&genesis),
            producer,
            genesis,
            raws,
            txs,
        }
    }

    fn rule(&self) -> FeeRateRule {
        FeeRateRule {
            min_fee_rate: MIN_FEE_RATE,
        }
    }

    /// The context of block `number`, as `build_block` sets it.
    fn env(&self, number: u64) -> BlockEnv {
        BlockEnv {
            chain_id: CHAIN_ID,
            base_fee: Amount::ZERO,
            producer: self.producer.address(),
            max_weight: MAX_BLOCK_WEIGHT,
            number,
            timestamp_ms: number * BLOCK_TIME_MS,
        }
    }

    /// Executes the block as the producer does; every transfer must be included.
    fn produce(&self, rule: &FeeRateRule) -> Executed {
        let mut ex = BlockExecutor::new(&self.state, rule, None, self.env(1));
        for tx in &self.txs {
            ex.push(tx).expect("every benchmark transfer is includable");
        }
        ex.finish()
    }
}

/// One transaction from bytes to a sender-recovered transaction.
fn tx_ingress(c: &mut Criterion) {
    let fx = &*FIXTURE;
    let raw = &fx.raws[0].0;
    let max = MAX_TX_SIZE as usize;
    let mut g = c.benchmark_group("tx_ingress");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.bench_function("decode", |b| {
        b.iter(|| SignedTransaction::decode_bytes(black_box(raw), max).expect("decodes"))
    });
    g.bench_function("decode_and_recover", |b| {
        b.iter(|| SignedTransaction::decode_and_recover(black_box(raw), max).expect("recovers"))
    });
    g.finish();
}

/// A batch of transactions from bytes to sender-recovered transactions, as the RPC server's
/// `decode_all` does it (rayon from 8 transactions up) and, for scale, on one core.
fn tx_ingress_batch(c: &mut Criterion) {
    let fx = &*FIXTURE;
    let raws = &fx.raws;
    let max = MAX_TX_SIZE as usize;
    let one = |b: &Bytes| SignedTransaction::decode_and_recover(&b.0, max).map_err(Rejection::from);
    assert!(raws.par_iter().map(one).all(|r| r.is_ok()));
    let mut g = c.benchmark_group(format!("tx_ingress_batch_{BLOCK_TXS}"));
    g.throughput(Throughput::Elements(raws.len() as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("rayon", |b| {
        b.iter(|| black_box(raws).par_iter().map(one).collect::<Vec<_>>())
    });
    g.bench_function("sequential", |b| {
        b.iter(|| black_box(raws).iter().map(one).collect::<Vec<_>>())
    });
    g.finish();
}

/// A block of pre-recovered transfers executed on the in-memory state.
fn block_execute(c: &mut Criterion) {
    let fx = &*FIXTURE;
    let rule = fx.rule();
    let parent_root = fx.genesis.block().header.state_root;
    let mut g = c.benchmark_group(format!("block_execute_{BLOCK_TXS}"));
    g.throughput(Throughput::Elements(fx.txs.len() as u64));
    g.sample_size(20);
    // The producer's path (driver::build_block): push each transaction, then finish.
    g.bench_function("produce", |b| b.iter(|| fx.produce(&rule)));
    // The import path (the driver's execute_checked): execute_block, then the roots it checks.
    g.bench_function("import_with_roots", |b| {
        b.iter(|| {
            let executed = execute_block(&fx.state, &rule, None, fx.env(1), black_box(&fx.txs))
                .expect("every benchmark transfer is includable");
            let receipts = receipts_root(&executed.receipts);
            let state = next_state_root(&parent_root, &executed.diff.encode());
            (executed, receipts, state)
        })
    });
    g.finish();
}

/// The durable commit of one executed block into a fresh store, each iteration a new block
/// on top of the last. Every block carries the same transfers and execution results (the
/// commit writes the same bytes a real block of this size would); only the header (number,
/// parent, roots, seal) differs, so the transaction index entries are overwritten rather
/// than added and the index does not grow.
fn block_commit(c: &mut Criterion) {
    let fx = &*FIXTURE;
    let executed = fx.produce(&fx.rule());
    let dir = tempfile::Builder::new()
        .prefix("micro-commit-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a temporary data directory");
    let store = Store::open(dir.path()).expect("the store opens");
    let genesis_hash = store
        .init_genesis(&fx.genesis)
        .expect("the genesis is written");
    let transactions: Vec<SignedTransaction> = fx.txs.iter().map(|t| t.signed().clone()).collect();
    let senders: Vec<Address> = fx.txs.iter().map(|t| t.sender()).collect();
    let tx_hashes: Vec<Hash> = fx.txs.iter().map(|t| t.hash()).collect();
    let tx_root = tx_root(tx_hashes.iter().copied());
    let receipts_root = receipts_root(&executed.receipts);
    let diff = executed.diff.encode();
    let mut parent = (genesis_hash, fx.genesis.block().header);
    // The next block on top of the last one committed, sealed as the producer does.
    let mut next_block = || {
        let (parent_hash, parent_header) = &parent;
        let number = parent_header.number + 1;
        let header = Header {
            parent_hash: *parent_hash,
            number,
            slot: number,
            timestamp_ms: number * BLOCK_TIME_MS,
            author: fx.producer.address(),
            tx_root,
            receipts_root,
            state_root: next_state_root(&parent_header.state_root, &diff),
            base_fee: Amount::ZERO,
            weight_used: executed.weight_used,
        };
        parent = (header.hash(), header.clone());
        CommittedBlock {
            stored: StoredBlock {
                block: Block::seal(header, transactions.clone(), &fx.producer),
                senders: senders.clone(),
            },
            tx_hashes: tx_hashes.clone(),
            receipts: executed.receipts.clone(),
            diff: executed.diff.clone(),
            undo: executed.undo.clone(),
        }
    };
    let mut g = c.benchmark_group(format!("block_commit_{BLOCK_TXS}"));
    g.throughput(Throughput::Elements(fx.txs.len() as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("commit_canonical", |b| {
        b.iter_batched_ref(
            &mut next_block,
            |block| {
                store
                    .commit_canonical(&[], std::slice::from_ref(block))
                    .expect("the block commits")
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let head = store.head().expect("the head reads back");
    assert_eq!(head, parent.0, "every block was committed in order");
}

/// Short runs: the whole suite stays around a minute on a 2-core machine.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = micro;
    config = config();
    targets = tx_ingress, tx_ingress_batch, block_execute, block_commit
}
criterion_main!(micro);
