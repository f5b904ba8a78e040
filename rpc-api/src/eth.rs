//! The JSON shapes of the `eth_` methods, as the execution-apis spec and the clients (alloy,
//! viem, web3.py, MetaMask) read them. Quantities are `0x` hex strings without leading zeros.

use serde::{Deserialize, Serialize};

use primitives::types::{Address, Bytes, Hash};

/// A block, as `eth_getBlockByNumber` / `eth_getBlockByHash` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EthBlock {
    /// The block hash.
    pub hash: Hash,
    /// The parent's hash.
    pub parent_hash: Hash,
    /// keccak256 of the RLP of an empty list: no uncles here.
    pub sha3_uncles: Hash,
    /// The producer.
    pub miner: Address,
    /// The state root.
    pub state_root: Hash,
    /// The transaction root.
    pub transactions_root: Hash,
    /// The receipts root.
    pub receipts_root: Hash,
    /// 256 zero bytes: no logs here.
    pub logs_bloom: Bytes,
    /// Always 0 (no proof of work).
    pub difficulty: String,
    /// The height.
    pub number: String,
    /// The block's weight limit, in gas.
    pub gas_limit: String,
    /// The weight used, in gas.
    pub gas_used: String,
    /// The slot start, in seconds.
    pub timestamp: String,
    /// Empty.
    pub extra_data: Bytes,
    /// Zero.
    pub mix_hash: Hash,
    /// Zero (8 bytes).
    pub nonce: Bytes,
    /// The base fee per gas (sidechain only: the mainchain looks pre-London and omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_fee_per_gas: Option<String>,
    /// The SCALE size of the block in bytes.
    pub size: String,
    /// No uncles.
    pub uncles: Vec<Hash>,
    /// Hashes, or full transactions with `full = true`.
    pub transactions: EthBlockTransactions,
}

/// A block's transactions: hashes or full objects.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EthBlockTransactions {
    /// `full = true`.
    Full(Vec<EthTransaction>),
    /// `full = false`.
    Hashes(Vec<Hash>),
}

/// A transaction, as `eth_getTransactionByHash` answers (block fields null while pending).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EthTransaction {
    /// The transaction hash.
    pub hash: Hash,
    /// `0x0` legacy, `0x2` EIP-1559 (a native transaction shows as legacy).
    #[serde(rename = "type")]
    pub tx_type: String,
    /// The chain id.
    pub chain_id: String,
    /// The sender's nonce.
    pub nonce: String,
    /// The sender.
    pub from: Address,
    /// The recipient (for a peg payout, who is paid).
    pub to: Option<Address>,
    /// Base units moved.
    pub value: String,
    /// The gas limit.
    pub gas: String,
    /// Legacy: the price; type 2: the effective price once included, else the max fee.
    pub gas_price: String,
    /// Type 2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fee_per_gas: Option<String>,
    /// Type 2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_priority_fee_per_gas: Option<String>,
    /// Type 2 only: empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_list: Option<Vec<serde_json::Value>>,
    /// Always empty.
    pub input: Bytes,
    /// Legacy: `chain_id * 2 + 35 + parity`; type 2: the parity.
    pub v: String,
    /// Type 2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_parity: Option<String>,
    /// Signature r.
    pub r: String,
    /// Signature s.
    pub s: String,
    /// Null while pending.
    pub block_hash: Option<Hash>,
    /// Null while pending.
    pub block_number: Option<String>,
    /// Null while pending.
    pub transaction_index: Option<String>,
}

/// A receipt, as `eth_getTransactionReceipt` answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EthReceipt {
    /// The transaction hash.
    pub transaction_hash: Hash,
    /// Its index in the block.
    pub transaction_index: String,
    /// The block hash.
    pub block_hash: Hash,
    /// The block height.
    pub block_number: String,
    /// The sender.
    pub from: Address,
    /// The recipient.
    pub to: Option<Address>,
    /// `0x1` success, `0x0` failed (the fee was still charged).
    pub status: String,
    /// Gas of the transaction (21000 for an Ethereum-format transfer).
    pub gas_used: String,
    /// Gas of the block's transactions up to this one.
    pub cumulative_gas_used: String,
    /// What the sender paid per gas: fee paid / gas used.
    pub effective_gas_price: String,
    /// Always empty.
    pub logs: Vec<serde_json::Value>,
    /// 256 zero bytes.
    pub logs_bloom: Bytes,
    /// `0x0` or `0x2`.
    #[serde(rename = "type")]
    pub tx_type: String,
    /// Always null.
    pub contract_address: Option<Address>,
}

/// `eth_feeHistory`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeeHistory {
    /// The oldest block covered.
    pub oldest_block: String,
    /// Base fee per gas of each block covered, and of the next one (zeros on the mainchain).
    pub base_fee_per_gas: Vec<String>,
    /// Gas used / gas limit of each block covered.
    pub gas_used_ratio: Vec<f64>,
    /// Per block, the tip at each percentile asked (the chain's suggested tip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<Vec<Vec<String>>>,
}

/// The call object of `eth_estimateGas` / `eth_call`: only what decides the answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallRequest {
    /// The sender.
    #[serde(default)]
    pub from: Option<Address>,
    /// The recipient (none: a contract creation).
    #[serde(default)]
    pub to: Option<Address>,
    /// Calldata (`data` or `input`): none for a transfer.
    #[serde(default)]
    pub data: Option<Bytes>,
    /// Calldata, the newer name.
    #[serde(default)]
    pub input: Option<Bytes>,
}
