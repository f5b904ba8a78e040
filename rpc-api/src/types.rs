//! The JSON shapes the RPC answers with.

use serde::{Deserialize, Serialize};

use primitives::account::Totals;
use primitives::block::{Header, PegEvent, Receipt};
use primitives::crypto::Signature;
use primitives::peg::PegParams;
use primitives::tx::Transaction;
use primitives::types::{Address, Amount, BlockNumber, ChainId, Hash, Nonce, Slot, Weight};

/// Static facts about the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// `mainchain` or `sidechain`.
    pub name: String,
    /// The chain id transactions must carry.
    pub chain_id: ChainId,
    /// Hash of block 0.
    pub genesis_hash: Hash,
    /// Slot length.
    pub block_time_ms: u64,
    /// `fee-rate` or `base-fee`.
    pub fee_rule: String,
    /// Weight limit per block.
    pub max_block_weight: Weight,
    /// Largest encoded transaction.
    pub max_tx_size: u32,
    /// Block producers in leader order.
    pub authorities: Vec<Address>,
}

/// A block header with its hash: what `tp_head` and new-head notifications carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// Block hash.
    pub hash: Hash,
    /// Height.
    pub number: BlockNumber,
    /// Parent hash.
    pub parent_hash: Hash,
    /// Slot.
    pub slot: Slot,
    /// Unix milliseconds.
    pub timestamp_ms: u64,
    /// Producer.
    pub author: Address,
    /// Transactions in the block.
    pub tx_count: u32,
    /// Weight used.
    pub weight_used: Weight,
    /// Base fee per unit of weight.
    pub base_fee: Amount,
    /// State commitment.
    pub state_root: Hash,
    /// The last final block when this was answered (`tp_head`; absent in new-head
    /// notifications and from nodes before finality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalized: Option<BlockId>,
}

/// A block named by height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockId {
    /// Height.
    pub number: BlockNumber,
    /// Hash.
    pub hash: Hash,
}

/// The proof that a block is final, checkable with the genesis authority keys alone: a
/// quorum of the authorities' precommits for `justified`, a block at or above `number` on the
/// same chain (the headers between them link `number` to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityProof {
    /// The block asked about.
    pub number: BlockNumber,
    /// Its hash on this node's canonical chain.
    pub hash: Hash,
    /// The final block the precommits are for.
    pub justified: BlockId,
    /// The finality instance that decided it.
    pub instance: u64,
    /// The round in which it was decided.
    pub round: u32,
    /// The precommits' signatures (each over the precommit for `justified`, in the
    /// `twinpeg/finality/v1` domain with the chain id and genesis hash).
    pub precommits: Vec<Signature>,
}

/// Where finality stands, and why it may not move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityStatusView {
    /// Head height.
    pub head: BlockNumber,
    /// The last final block.
    pub finalized: BlockId,
    /// Blocks between them.
    pub lag: u64,
    /// The instance being decided (the number of the next decision).
    pub instance: u64,
    /// Its current round (above 0: earlier rounds failed).
    pub round: u32,
    /// `propose`, `prevote` or `precommit`.
    pub step: String,
    /// How many authorities there are.
    pub authorities: usize,
    /// How many must vote for a block to become final.
    pub quorum: usize,
    /// The authorities heard from in the last 15 s (this node included while it votes).
    pub voting: Vec<Address>,
    /// Prevotes and precommits seen in the current round.
    pub prevotes: usize,
    /// Precommits seen in the current round.
    pub precommits: usize,
    /// Equivocations seen and kept as evidence.
    pub equivocations: u64,
    /// Why finality is not moving, when it is not ("2 of 4 authorities voting; needs 3").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<String>,
}

impl BlockSummary {
    /// From a header and its transaction count.
    pub fn new(header: &Header, tx_count: usize) -> Self {
        Self {
            hash: header.hash(),
            number: header.number,
            parent_hash: header.parent_hash,
            slot: header.slot,
            timestamp_ms: header.timestamp_ms,
            author: header.author,
            tx_count: tx_count as u32,
            weight_used: header.weight_used,
            base_fee: header.base_fee,
            state_root: header.state_root,
            finalized: None,
        }
    }
}

/// A transaction with its hash and sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// Transaction hash.
    pub hash: Hash,
    /// Recovered sender.
    pub from: Address,
    /// The signed content.
    #[serde(flatten)]
    pub tx: Transaction,
    /// The signature.
    pub signature: Signature,
}

/// A whole block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Header fields with the hash.
    #[serde(flatten)]
    pub summary: BlockSummary,
    /// Transactions-root commitment.
    pub tx_root: Hash,
    /// Receipts-root commitment.
    pub receipts_root: Hash,
    /// The author's seal.
    pub seal: Signature,
    /// Transaction hashes, in order.
    pub transaction_hashes: Vec<Hash>,
    /// Full transactions, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<TxView>>,
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// In a canonical block, operation succeeded.
    Success,
    /// In a canonical block, operation failed (fee charged).
    Failed,
}

/// A transaction looked up by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLookup {
    /// pending / success / failed.
    pub status: TxStatus,
    /// The transaction.
    pub transaction: TxView,
    /// Block hash, once included.
    pub block_hash: Option<Hash>,
    /// Block height, once included.
    pub block_number: Option<BlockNumber>,
    /// Position in the block.
    pub index: Option<u32>,
    /// The receipt, once included.
    pub receipt: Option<Receipt>,
}

impl TxLookup {
    /// A transaction known but not (visibly) included yet.
    pub fn pending(transaction: TxView) -> Self {
        Self {
            status: TxStatus::Pending,
            transaction,
            block_hash: None,
            block_number: None,
            index: None,
            receipt: None,
        }
    }
}

/// An account at the head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// Balance in base units.
    pub balance: Amount,
    /// Next nonce the chain expects.
    pub nonce: Nonce,
    /// Next nonce counting the sender's contiguous pending transactions.
    pub pending_nonce: Nonce,
    /// Height the answer reflects.
    pub block_number: BlockNumber,
}

/// A refused transaction, as `tp_sendTransactions` reports per entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxError {
    /// The JSON-RPC error code the single-transaction call would return.
    pub code: i32,
    /// Stable machine-readable reason, e.g. `nonce_too_low`.
    pub reason: String,
    /// Readable explanation with the values involved.
    pub message: String,
}

/// One entry of a batch submission: a hash, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResult {
    /// The accepted transaction's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    /// The refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TxError>,
}

/// Node health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok` when the node answers.
    pub status: String,
    /// Chain name.
    pub chain: String,
    /// Head height.
    pub head: BlockNumber,
    /// Milliseconds since the head's slot started.
    pub head_age_ms: u64,
    /// Transactions in the mempool.
    pub mempool: usize,
    /// Whether this node produces blocks.
    pub authority: bool,
    /// Height of the last final block.
    #[serde(default)]
    pub finalized: BlockNumber,
}

/// A digest of the node's whole state at its head: two nodes at the same head must report
/// the same digest, and a restarted node the one it had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest {
    /// Head height.
    pub number: BlockNumber,
    /// Head hash.
    pub hash: Hash,
    /// Over every account, every processed peg id and the totals (order-independent).
    pub digest: Hash,
    /// Accounts held.
    pub accounts: u64,
    /// Peg payout ids processed.
    pub processed_ids: u64,
}

/// The peg as one chain sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegInfo {
    /// `main` or `side`.
    pub role: String,
    /// The domain every attestation binds.
    pub domain: Hash,
    /// Federation and limits from genesis.
    pub params: PegParams,
    /// The escrow address (mainchain).
    pub escrow: Option<Address>,
    /// The escrow balance (mainchain).
    pub escrow_balance: Option<Amount>,
    /// Coins in circulation on this chain (genesis + minted - burned).
    pub supply: Amount,
    /// Every account's balance added up, counted from the accounts rather than the totals
    /// (`None` from older nodes): equal to `supply` unless a credit went unrecorded.
    #[serde(default)]
    pub balances: Option<Amount>,
    /// Running totals: locked, released, peg fees (main); minted, burned (side); burned fees.
    pub totals: Totals,
    /// Deposits counted against today's limit.
    pub today_deposits: Amount,
    /// Withdrawals counted against today's limit.
    pub today_withdrawals: Amount,
    /// The height these figures reflect.
    pub head: BlockNumber,
    /// Its hash.
    pub head_hash: Hash,
}

/// A source event of a peg transfer on this chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegSource {
    /// Block of the Lock or Burn.
    pub block_number: BlockNumber,
    /// Its hash.
    pub block_hash: Hash,
    /// Blocks from it to the head, itself included.
    pub confirmations: u64,
    /// The Deposit or Withdrawal event.
    pub event: PegEvent,
}

/// A payout of a peg transfer on this chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegPayout {
    /// Block of the Mint or Release.
    pub block_number: BlockNumber,
    /// Its hash.
    pub block_hash: Option<Hash>,
    /// The payout transaction.
    pub tx_hash: Option<Hash>,
    /// The Minted or Released event.
    pub event: Option<PegEvent>,
    /// Who submitted it.
    pub submitter: Option<Address>,
}

/// What this chain knows of a peg transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegTransferView {
    /// The transfer id.
    pub id: Hash,
    /// This chain's head height.
    pub head: BlockNumber,
    /// This chain's last final block (`None` from nodes older than finality): a source event
    /// is signed, and a payout counts, only at or below it.
    #[serde(default)]
    pub finalized: Option<BlockNumber>,
    /// The Lock or Burn, when this chain is the source.
    pub source: Option<PegSource>,
    /// The Mint or Release, when this chain is the destination and it was paid.
    pub payout: Option<PegPayout>,
}

/// A canonical block's receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockReceipts {
    /// Block hash.
    pub hash: Hash,
    /// Height.
    pub number: BlockNumber,
    /// Parent hash (watchers detect reorgs by it).
    pub parent_hash: Hash,
    /// Block time.
    pub timestamp_ms: u64,
    /// One per transaction.
    pub receipts: Vec<Receipt>,
}

/// Fee parameters and state a client needs to price a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum FeeInfo {
    /// mainchain: fee >= min_fee_rate x encoded size.
    FeeRate {
        /// Base units per byte.
        min_fee_rate: Amount,
    },
    /// sidechain: base fee per unit of weight (burned) + tip.
    BaseFee {
        /// Base fee per unit of weight the next block will charge.
        base_fee: Amount,
        /// The floor of the base fee.
        min_base_fee: Amount,
        /// Suggested max_fee per unit of weight (2 x base fee + suggested tip).
        suggested_max_fee: Amount,
        /// Suggested max_tip per unit of weight.
        suggested_max_tip: Amount,
    },
}

/// A connected peer, as `tp_peers` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address.
    pub address: String,
    /// Our score of it (0 is neutral; at -100 it is banned).
    pub score: i32,
    /// Its head height, when known.
    pub head: Option<BlockNumber>,
}

/// Sync status, as `tp_syncStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Our head height.
    pub head: BlockNumber,
    /// The highest head a peer reported.
    pub best_peer_head: Option<BlockNumber>,
    /// Whether we are behind a peer.
    pub syncing: bool,
    /// Connected peers.
    pub peers: usize,
}
