//! Every RPC method, declared once. The node implements these traits; the wallet, bridge and
//! tests call the clients jsonrpsee generates from them.

// Only the server side of the `#[subscription]` names it; the client side rewrites it away.
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;

use crate::eth::{CallRequest, EthBlock, EthReceipt, EthTransaction, FeeHistory};
use crate::types::{
    AccountView, BlockReceipts, BlockSummary, BlockView, ChainInfo, FeeInfo, FinalityProof,
    FinalityStatusView, Health, PeerInfo, PegInfo, PegTransferView, StateDigest, SubmitResult,
    SyncStatus, TxLookup,
};
use primitives::types::{Address, BlockNumber, Bytes, Hash};

/// Result of an RPC method.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The Twinpeg API, namespace `tp`.
#[cfg_attr(
    all(feature = "server", feature = "client"),
    rpc(server, client, namespace = "tp")
)]
#[cfg_attr(
    all(feature = "server", not(feature = "client")),
    rpc(server, namespace = "tp")
)]
#[cfg_attr(
    all(feature = "client", not(feature = "server")),
    rpc(client, namespace = "tp")
)]
pub trait TwinpegApi {
    /// Chain id, genesis hash, block time, fee rule, limits, authorities.
    #[method(name = "chainInfo")]
    async fn chain_info(&self) -> RpcResult<ChainInfo>;

    /// Node health (also served as `GET /health`).
    #[method(name = "health")]
    async fn health(&self) -> RpcResult<Health>;

    /// Submits one SCALE-encoded signed transaction; returns its hash or a precise error.
    #[method(name = "sendTransaction")]
    async fn send_transaction(&self, raw: Bytes) -> RpcResult<Hash>;

    /// Submits many signed transactions at once (signatures recovered in parallel); one result per entry, in order.
    #[method(name = "sendTransactions")]
    async fn send_transactions(&self, raws: Vec<Bytes>) -> RpcResult<Vec<SubmitResult>>;

    /// The canonical head.
    #[method(name = "head")]
    async fn head(&self) -> RpcResult<BlockSummary>;

    /// A digest of the whole state at the head (accounts, processed peg ids, totals), in O(1):
    /// compare nodes, or a node before and after a restart.
    #[method(name = "stateDigest")]
    async fn state_digest(&self) -> RpcResult<StateDigest>;

    /// A canonical block by height; `full` includes the transactions.
    #[method(name = "getBlockByNumber")]
    async fn block_by_number(
        &self,
        number: BlockNumber,
        full: Option<bool>,
    ) -> RpcResult<Option<BlockView>>;

    /// A block by hash; `full` includes the transactions.
    #[method(name = "getBlockByHash")]
    async fn block_by_hash(&self, hash: Hash, full: Option<bool>) -> RpcResult<Option<BlockView>>;

    /// A transaction with its status and receipt; `null` if unknown.
    #[method(name = "getTransaction")]
    async fn transaction(&self, hash: Hash) -> RpcResult<Option<TxLookup>>;

    /// Balance and nonces of an account at the head.
    #[method(name = "getAccount")]
    async fn account(&self, address: Address) -> RpcResult<AccountView>;

    /// The peg as this chain sees it: federation, limits, escrow balance (main), supply,
    /// totals and today's usage.
    #[method(name = "pegInfo")]
    async fn peg_info(&self) -> RpcResult<PegInfo>;

    /// A peg transfer by id (the Lock or Burn transaction hash): its source event with
    /// confirmations where this chain is the source, its payout where it is the destination.
    #[method(name = "getPegTransfer")]
    async fn peg_transfer(&self, id: Hash) -> RpcResult<PegTransferView>;

    /// A canonical block's receipts with its hash and parent (what bridge watchers scan).
    #[method(name = "getBlockReceipts")]
    async fn block_receipts(&self, number: BlockNumber) -> RpcResult<Option<BlockReceipts>>;

    /// Connected peers with their scores and known heads.
    #[method(name = "peers")]
    async fn peers(&self) -> RpcResult<Vec<PeerInfo>>;

    /// Our head against the best head peers reported.
    #[method(name = "syncStatus")]
    async fn sync_status(&self) -> RpcResult<SyncStatus>;

    /// The fee rule and its current parameters (base fee or minimum fee rate).
    #[method(name = "feeInfo")]
    async fn fee_info(&self) -> RpcResult<FeeInfo>;

    /// The proof that canonical block `number` is final (null if it is not final yet).
    #[method(name = "getFinalityProof")]
    async fn finality_proof(&self, number: BlockNumber) -> RpcResult<Option<FinalityProof>>;

    /// Where finality stands: the final block, the instance and round being decided, who
    /// votes, and why it stalls when it does.
    #[method(name = "finalityStatus")]
    async fn finality_status(&self) -> RpcResult<FinalityStatusView>;

    /// New canonical heads as they are committed.
    #[subscription(name = "subscribeNewHeads" => "newHead", unsubscribe = "unsubscribeNewHeads", item = BlockSummary)]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;
}

/// The read-only Ethereum subset standard tools use, namespace `eth`.
#[cfg_attr(
    all(feature = "server", feature = "client"),
    rpc(server, client, namespace = "eth")
)]
#[cfg_attr(
    all(feature = "server", not(feature = "client")),
    rpc(server, namespace = "eth")
)]
#[cfg_attr(
    all(feature = "client", not(feature = "server")),
    rpc(client, namespace = "eth")
)]
pub trait EthApi {
    /// The chain id as a hex quantity.
    #[method(name = "chainId")]
    async fn chain_id(&self) -> RpcResult<String>;

    /// The head height as a hex quantity.
    #[method(name = "blockNumber")]
    async fn block_number(&self) -> RpcResult<String>;

    /// Balance in base units as a hex quantity; the block tag is accepted (latest state only).
    #[method(name = "getBalance")]
    async fn get_balance(&self, address: Address, block: Option<String>) -> RpcResult<String>;

    /// The account nonce as a hex quantity; at `pending`, past the sender's transactions in
    /// the pool.
    #[method(name = "getTransactionCount")]
    async fn get_transaction_count(
        &self,
        address: Address,
        block: Option<String>,
    ) -> RpcResult<String>;

    /// Submits a raw signed Ethereum transaction (legacy EIP-155 or EIP-1559 value transfer);
    /// returns keccak256 of the bytes. Refusals use code -32000 with geth's wording.
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<Hash>;

    /// A legacy gas price that the next block takes.
    #[method(name = "gasPrice")]
    async fn gas_price(&self) -> RpcResult<String>;

    /// The suggested tip per gas.
    #[method(name = "maxPriorityFeePerGas")]
    async fn max_priority_fee_per_gas(&self) -> RpcResult<String>;

    /// Base fees per gas and gas used ratios of up to 1024 recent blocks.
    #[method(name = "feeHistory")]
    async fn fee_history(
        &self,
        block_count: serde_json::Value,
        newest: String,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;

    /// 21000 for a value transfer; an error for calldata or a contract creation.
    #[method(name = "estimateGas")]
    async fn estimate_gas(&self, call: CallRequest, block: Option<String>) -> RpcResult<String>;

    /// A canonical block by tag or hex height.
    #[method(name = "getBlockByNumber")]
    async fn get_block_by_number(&self, block: String, full: bool) -> RpcResult<Option<EthBlock>>;

    /// A stored block by hash.
    #[method(name = "getBlockByHash")]
    async fn get_block_by_hash(&self, hash: Hash, full: bool) -> RpcResult<Option<EthBlock>>;

    /// A transaction by hash (pending ones with null block fields).
    #[method(name = "getTransactionByHash")]
    async fn get_transaction_by_hash(&self, hash: Hash) -> RpcResult<Option<EthTransaction>>;

    /// The receipt of an included transaction; null while pending or unknown.
    #[method(name = "getTransactionReceipt")]
    async fn get_transaction_receipt(&self, hash: Hash) -> RpcResult<Option<EthReceipt>>;

    /// Always `0x`: no contracts here.
    #[method(name = "getCode")]
    async fn get_code(&self, address: Address, block: Option<String>) -> RpcResult<Bytes>;

    /// Always `0x`: no contracts here.
    #[method(name = "call")]
    async fn call(&self, call: CallRequest, block: Option<String>) -> RpcResult<Bytes>;

    /// `false` when the node is at its peers' best head, else the geth-style progress object.
    #[method(name = "syncing")]
    async fn syncing(&self) -> RpcResult<serde_json::Value>;

    /// `eth_subscribe("newHeads")` over WebSocket: each new canonical head as an
    /// `eth_subscription` notification (the block without its transactions).
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = EthBlock)]
    async fn eth_subscribe(&self, kind: String) -> SubscriptionResult;
}

/// `web3_clientVersion`, namespace `web3`.
#[cfg_attr(
    all(feature = "server", feature = "client"),
    rpc(server, client, namespace = "web3")
)]
#[cfg_attr(
    all(feature = "server", not(feature = "client")),
    rpc(server, namespace = "web3")
)]
#[cfg_attr(
    all(feature = "client", not(feature = "server")),
    rpc(client, namespace = "web3")
)]
pub trait Web3Api {
    /// `twinpeg/<version>`.
    #[method(name = "clientVersion")]
    async fn client_version(&self) -> RpcResult<String>;
}

/// `net_version`, namespace `net`.
#[cfg_attr(
    all(feature = "server", feature = "client"),
    rpc(server, client, namespace = "net")
)]
#[cfg_attr(
    all(feature = "server", not(feature = "client")),
    rpc(server, namespace = "net")
)]
#[cfg_attr(
    all(feature = "client", not(feature = "server")),
    rpc(client, namespace = "net")
)]
pub trait NetApi {
    /// The chain id as a decimal string.
    #[method(name = "version")]
    async fn version(&self) -> RpcResult<String>;
}
