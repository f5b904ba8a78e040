//! The `eth_` methods standard Ethereum tools call, over the same chain, pool and store as the
//! `tp_` ones. Fees in gas: 125 gas per unit of weight, so an Ethereum-format transfer (weight
//! 168) uses 21000 gas and pays exactly gasUsed x effectiveGasPrice (`docs/rpc.md`).

use jsonrpsee::core::{async_trait, SubscriptionResult};
use jsonrpsee::server::PendingSubscriptionSink;
use jsonrpsee::types::ErrorObjectOwned;

use super::server::{forward_heads, internal, RpcImpl};
use crate::fee::FeeError;
use crate::mempool::Rejection;
use crate::store::StoredBlock;
use primitives::account::Account;
use primitives::block::{Header, Receipt};
use primitives::eth::{decode_raw, per_gas, EthTxError, GAS_PER_WEIGHT, TRANSFER_GAS};
use primitives::peg::{escrow_address, withdrawal_address};
use primitives::tx::{Fee, RecoveredTx, SignedTransaction, TxKind};
use primitives::types::{to_quantity, Address, Amount, BlockNumber, Bytes, Hash};
use rpc_api::api::{EthApiServer, RpcResult, Web3ApiServer};
use rpc_api::codes;
use rpc_api::eth::{
    CallRequest, EthBlock, EthBlockTransactions, EthReceipt, EthTransaction, FeeHistory,
};
use rpc_api::types::FeeInfo;

/// The code geth answers every refused transaction with; clients classify by the message.
const TX_REFUSED: i32 = -32000;

/// Blocks `eth_feeHistory` covers at most.
const MAX_FEE_HISTORY: u64 = 1024;

/// How far below the head account state is served (from the blocks' undo journals): MetaMask
/// asks at the height its tracker saw up to 20 s earlier.
pub const STATE_HISTORY_BLOCKS: u64 = 1024;

/// Historical state reads served at once; more wait their turn.
pub const HISTORY_READERS: usize = 2;

fn refused(message: impl Into<String>, reason: &str, detail: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        TX_REFUSED,
        message.into(),
        Some(serde_json::json!({ "reason": reason, "message": detail })),
    )
}

fn invalid_params(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        jsonrpsee::types::error::INVALID_PARAMS_CODE,
        message,
        None::<()>,
    )
}

/// A refusal in geth's words (what viem, ethers and MetaMask match on), ours in `data`.
fn eth_rejection(r: &Rejection, base_fee_chain: bool) -> ErrorObjectOwned {
    let message = match r {
        Rejection::NonceTooLow { .. } => "nonce too low".to_string(),
        Rejection::NonceTooFarAhead { .. } => "nonce too high".to_string(),
        Rejection::InsufficientBalance { .. } | Rejection::Overflow => {
            "insufficient funds for gas * price + value".to_string()
        }
        Rejection::FeeTooLow(FeeError::GasTooLow { .. }) => "intrinsic gas too low".to_string(),
        Rejection::FeeTooLow(FeeError::TipAboveMax { .. }) => {
            "max priority fee per gas higher than max fee per gas".to_string()
        }
        Rejection::FeeTooLow(_) if base_fee_chain => {
            "max fee per gas less than block base fee".to_string()
        }
        Rejection::FeeTooLow(_) => "transaction underpriced".to_string(),
        Rejection::AlreadyKnown(_) => "already known".to_string(),
        Rejection::ReplacementUnderpriced { .. } => {
            "replacement transaction underpriced".to_string()
        }
        Rejection::WrongChainId { .. } => "invalid chain id".to_string(),
        Rejection::PoolFull { .. } | Rejection::SenderFull { .. } => "txpool is full".to_string(),
        other => other.to_string(),
    };
    refused(message, r.code(), r.to_string())
}

fn decode_error(e: &EthTxError) -> ErrorObjectOwned {
    let message = match e {
        EthTxError::UnsupportedType(_) => "transaction type not supported".to_string(),
        EthTxError::NotReplayProtected => {
            "only replay-protected (EIP-155) transactions allowed over RPC".to_string()
        }
        other => other.to_string(),
    };
    refused(message, "malformed", e.to_string())
}

/// Size check, strict decode and sender recovery of one raw transaction, refused in the words
/// `eth_sendRawTransaction` answers with.
fn recover_raw(raw: &[u8], max: usize) -> Result<RecoveredTx, ErrorObjectOwned> {
    if raw.len() > max {
        let r = Rejection::Oversized {
            size: raw.len(),
            max,
        };
        return Err(refused("oversized data", r.code(), r.to_string()));
    }
    let signed = decode_raw(raw).map_err(|e| decode_error(&e))?;
    // No fee rule is involved in a decode refusal, so the chain's kind does not matter here.
    signed
        .recover()
        .map_err(|e| eth_rejection(&Rejection::from(e), false))
}

fn zero_bloom() -> Bytes {
    Bytes(vec![0u8; 256])
}

/// keccak256(rlp([])): the uncles hash of a block without uncles.
fn empty_uncles_hash() -> Hash {
    primitives::crypto::keccak256(&[0xc0])
}

/// Gas of a transaction: 125 per unit of weight (21000 for an Ethereum-format transfer).
fn gas_of(weight: u64) -> u64 {
    weight.saturating_mul(GAS_PER_WEIGHT)
}

fn quantity(v: impl Into<u128>) -> String {
    to_quantity(v.into())
}

fn split_signature(t: &SignedTransaction) -> (u8, String, String) {
    let sig = &t.signature.0;
    let hex_of = |b: &[u8]| {
        let trimmed: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        if trimmed.is_empty() {
            "0x0".to_string()
        } else {
            let h = hex::encode(trimmed);
            format!("0x{}", h.trim_start_matches('0'))
        }
    };
    (sig[64], hex_of(&sig[..32]), hex_of(&sig[32..64]))
}

/// Where an included transaction is.
struct Included<'a> {
    block_hash: Hash,
    number: BlockNumber,
    index: u32,
    receipt: &'a Receipt,
}

/// The Ethereum view of any transaction (a native one shows as legacy, priced per gas).
fn eth_tx(
    t: &SignedTransaction,
    hash: Hash,
    from: Address,
    weight: u64,
    at: Option<Included<'_>>,
) -> EthTransaction {
    let (parity, r, s) = split_signature(t);
    let tx = &t.tx;
    let gas_used = gas_of(weight).max(1);
    let paid_per_gas = at
        .as_ref()
        .map(|i| Amount(i.receipt.fee_paid.0 / gas_used as u128));
    let to = match &tx.kind {
        TxKind::Transfer { to, .. } => *to,
        TxKind::Lock { .. } => escrow_address(),
        TxKind::Burn { .. } => withdrawal_address(),
        TxKind::Mint { recipient, .. } | TxKind::Release { recipient, .. } => *recipient,
    };
    let legacy_v = tx
        .chain_id
        .saturating_mul(2)
        .saturating_add(35)
        .saturating_add(parity as u64);
    let (tx_type, gas, gas_price, max_fee, max_tip, v, y_parity, access_list) = match &tx.fee {
        Fee::EthDynamic {
            max_fee_per_gas,
            max_priority_fee_per_gas,
            gas_limit,
        } => (
            "0x2",
            *gas_limit,
            paid_per_gas.unwrap_or(*max_fee_per_gas),
            Some(quantity(max_fee_per_gas.0)),
            Some(quantity(max_priority_fee_per_gas.0)),
            quantity(parity),
            Some(quantity(parity)),
            Some(Vec::new()),
        ),
        Fee::EthLegacy {
            gas_price,
            gas_limit,
        } => (
            "0x0",
            *gas_limit,
            *gas_price,
            None,
            None,
            quantity(legacy_v),
            None,
            None,
        ),
        Fee::Flat { .. } | Fee::Dynamic { .. } => (
            "0x0",
            gas_used,
            paid_per_gas.unwrap_or(Amount::ZERO),
            None,
            None,
            quantity(legacy_v),
            None,
            None,
        ),
    };
    EthTransaction {
        hash,
        tx_type: tx_type.into(),
        chain_id: quantity(tx.chain_id),
        nonce: quantity(tx.nonce),
        from,
        to: Some(to),
        value: quantity(tx.kind.value().0),
        gas: quantity(gas),
        gas_price: quantity(gas_price.0),
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: max_tip,
        access_list,
        input: Bytes(Vec::new()),
        v,
        y_parity,
        r,
        s,
        block_hash: at.as_ref().map(|i| i.block_hash),
        block_number: at.as_ref().map(|i| quantity(i.number)),
        transaction_index: at.as_ref().map(|i| quantity(i.index)),
    }
}

fn tx_type(t: &SignedTransaction) -> &'static str {
    match t.tx.fee {
        Fee::EthDynamic { .. } => "0x2",
        _ => "0x0",
    }
}

/// The weight of a stored transaction, as its receipt says.
fn weight_of(r: &Receipt) -> u64 {
    r.weight
}

impl RpcImpl {
    fn base_fee_chain(&self) -> bool {
        matches!(self.fee_info_now(), FeeInfo::BaseFee { .. })
    }

    fn fee_info_now(&self) -> FeeInfo {
        let base = self.chain.base_fee_after(&self.chain.tip().head);
        self.chain.fee_rule.info(base)
    }

    /// The base fee per gas of a block (none on the mainchain, which looks pre-London).
    fn base_fee_per_gas(&self, header: &Header) -> Option<Amount> {
        self.base_fee_chain().then(|| per_gas(header.base_fee))
    }

    /// The tip per gas clients should offer.
    fn suggested_tip(&self) -> Amount {
        match self.fee_info_now() {
            FeeInfo::FeeRate { min_fee_rate } => per_gas(min_fee_rate),
            FeeInfo::BaseFee {
                suggested_max_tip, ..
            } => per_gas(suggested_max_tip),
        }
    }

    /// An account at a block tag or height: the head's state, walked back through the undo
    /// journals of the blocks above the height (at most [`STATE_HISTORY_BLOCKS`]); genesis
    /// from the genesis file.
    pub(super) async fn account_at(
        &self,
        address: &Address,
        tag: Option<&str>,
    ) -> RpcResult<Account> {
        let n = match tag {
            None => return Ok(self.chain.tip().state.account(address)),
            Some(t) => self.block_number_of(t)?,
        };
        let (account, head, cursor) = {
            let tip = self.chain.tip();
            (tip.state.account(address), tip.head.number, tip.head_hash)
        };
        if n > head {
            return Err(ErrorObjectOwned::owned(
                codes::STATE_UNAVAILABLE,
                format!("block {n} is above the head {head}"),
                None::<()>,
            ));
        }
        if n == 0 {
            let balance = self
                .chain
                .genesis
                .accounts
                .iter()
                .find(|a| a.address == *address)
                .map(|a| a.balance)
                .unwrap_or_default();
            return Ok(Account { balance, nonce: 0 });
        }
        if head - n > STATE_HISTORY_BLOCKS {
            return Err(ErrorObjectOwned::owned(
                codes::STATE_UNAVAILABLE,
                format!(
                    "state at block {n} is not served: only the last {STATE_HISTORY_BLOCKS} blocks below the head {head}"
                ),
                None::<()>,
            ));
        }
        // Up to 1,024 undo journals read and decoded: off the async workers, and only
        // HISTORY_READERS at a time, so a client asking far back again and again slows only
        // such reads, not the node's other answers.
        let _permit = self.history.acquire().await.map_err(internal)?;
        let chain = self.chain.clone();
        let address = *address;
        tokio::task::spawn_blocking(move || walk_back(&chain, &address, account, n, head, cursor))
            .await
            .map_err(internal)?
    }

    /// A block height from a tag or a hex number.
    fn block_number_of(&self, tag: &str) -> RpcResult<BlockNumber> {
        match tag {
            "latest" | "pending" => Ok(self.chain.tip().head.number),
            "earliest" => Ok(0),
            "safe" | "finalized" => Ok(self.chain.finality.final_block().number),
            other => other
                .strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    invalid_params(format!(
                        "invalid block {other:?}: expected latest, pending, earliest, safe, finalized or a hex number"
                    ))
                }),
        }
    }

    fn eth_block(&self, stored: StoredBlock, full: bool) -> RpcResult<EthBlock> {
        let hash = stored.block.hash();
        let h = &stored.block.header;
        let transactions = if full {
            let receipts = self
                .chain
                .store
                .receipts(&hash)
                .map_err(internal)?
                .unwrap_or_default();
            EthBlockTransactions::Full(
                stored
                    .block
                    .transactions
                    .iter()
                    .zip(&stored.senders)
                    .zip(&receipts)
                    .enumerate()
                    .map(|(i, ((t, from), r))| {
                        eth_tx(
                            t,
                            r.tx_hash,
                            *from,
                            weight_of(r),
                            Some(Included {
                                block_hash: hash,
                                number: h.number,
                                index: i as u32,
                                receipt: r,
                            }),
                        )
                    })
                    .collect(),
            )
        } else {
            EthBlockTransactions::Hashes(
                stored.block.transactions.iter().map(|t| t.hash()).collect(),
            )
        };
        let size = parity_scale_codec::Encode::encoded_size(&stored.block);
        Ok(EthBlock {
            hash,
            parent_hash: h.parent_hash,
            sha3_uncles: empty_uncles_hash(),
            miner: h.author,
            state_root: h.state_root,
            transactions_root: h.tx_root,
            receipts_root: h.receipts_root,
            logs_bloom: zero_bloom(),
            difficulty: "0x0".into(),
            number: quantity(h.number),
            gas_limit: quantity(gas_of(self.chain.genesis.max_block_weight)),
            gas_used: quantity(gas_of(h.weight_used)),
            timestamp: quantity(h.timestamp_ms / 1000),
            extra_data: Bytes(Vec::new()),
            mix_hash: Hash([0; 32]),
            nonce: Bytes(vec![0; 8]),
            base_fee_per_gas: self.base_fee_per_gas(h).map(|a| quantity(a.0)),
            size: quantity(size as u64),
            uncles: Vec::new(),
            transactions,
        })
    }

    /// An included transaction with its block and receipts, if the head has reached it.
    fn included(&self, hash: &Hash) -> RpcResult<Option<(StoredBlock, Vec<Receipt>, u32)>> {
        let store = &self.chain.store;
        let Some(loc) = store.tx_location(hash).map_err(internal)? else {
            return Ok(None);
        };
        // As tp_getTransaction: pending until the head (and the state reads) reach its block.
        if loc.block_number > self.chain.tip().head.number {
            return Ok(None);
        }
        let block = store.block(&loc.block_hash).map_err(internal)?;
        let receipts = store.receipts(&loc.block_hash).map_err(internal)?;
        Ok(block.zip(receipts).map(|(b, r)| (b, r, loc.index)))
    }
}

/// The account at height `n`, from its value `account` at the head `head` (hash `cursor`):
/// down the head's own ancestry (not the canonical index, which a reorg may move meanwhile),
/// the value before the lowest block above `n` that changed the account is its value at `n`.
fn walk_back(
    chain: &crate::shared::Chain,
    address: &Address,
    account: Account,
    n: BlockNumber,
    head: BlockNumber,
    mut cursor: Hash,
) -> RpcResult<Account> {
    let store = &chain.store;
    let mut value = account;
    for _ in n..head {
        let undo = store
            .undo(&cursor)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("no undo journal for block {cursor}")))?;
        if let Ok(i) = undo.accounts.binary_search_by(|(a, _)| a.cmp(address)) {
            value = undo.accounts[i].1.unwrap_or_default();
        }
        let header = store
            .header(&cursor)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("no header for block {cursor}")))?;
        cursor = header.parent_hash;
    }
    Ok(value)
}

/// The pool's copy of a transaction, in the Ethereum view.
fn pending_view(t: &RecoveredTx) -> EthTransaction {
    eth_tx(t.signed(), t.hash(), t.sender(), t.weight() as u64, None)
}

#[async_trait]
impl EthApiServer for RpcImpl {
    async fn chain_id(&self) -> RpcResult<String> {
        Ok(quantity(self.chain.genesis.chain_id))
    }

    async fn block_number(&self) -> RpcResult<String> {
        Ok(quantity(self.chain.tip().head.number))
    }

    async fn get_balance(&self, address: Address, block: Option<String>) -> RpcResult<String> {
        Ok(quantity(
            self.account_at(&address, block.as_deref()).await?.balance.0,
        ))
    }

    async fn get_transaction_count(
        &self,
        address: Address,
        block: Option<String>,
    ) -> RpcResult<String> {
        if block.as_deref() == Some("pending") {
            return Ok(quantity(self.chain.nonces(&address).1));
        }
        Ok(quantity(
            self.account_at(&address, block.as_deref()).await?.nonce,
        ))
    }

    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<Hash> {
        let decoded = recover_raw(&raw.0, self.chain.max_tx_size())?;
        let base_fee_chain = self.base_fee_chain();
        match self.submit(vec![Ok(decoded)]).await.pop() {
            Some(Ok(h)) => Ok(h),
            Some(Err(r)) => Err(eth_rejection(&r, base_fee_chain)),
            None => Err(internal("no submission result")),
        }
    }

    async fn gas_price(&self) -> RpcResult<String> {
        let price = match self.fee_info_now() {
            FeeInfo::FeeRate { min_fee_rate } => per_gas(min_fee_rate),
            // Room for one block of the base fee's rise (at most 1/8), plus the tip.
            FeeInfo::BaseFee {
                base_fee,
                suggested_max_tip,
                ..
            } => {
                let b = per_gas(base_fee).0;
                Amount(
                    b.saturating_add(b.div_ceil(8))
                        .saturating_add(per_gas(suggested_max_tip).0),
                )
            }
        };
        Ok(quantity(price.0))
    }

    async fn max_priority_fee_per_gas(&self) -> RpcResult<String> {
        Ok(quantity(self.suggested_tip().0))
    }

    async fn fee_history(
        &self,
        block_count: serde_json::Value,
        newest: String,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let count = match &block_count {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s
                .strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .or_else(|| s.parse().ok()),
            _ => None,
        }
        .ok_or_else(|| invalid_params(format!("invalid block count {block_count}")))?
        .min(MAX_FEE_HISTORY);
        if let Some(p) = &percentiles {
            if p.len() > 100 || p.iter().any(|x| !(0.0..=100.0).contains(x)) {
                return Err(invalid_params(
                    "reward percentiles must be at most 100 values in [0, 100]".into(),
                ));
            }
        }
        let head = self.chain.tip().head.clone();
        let newest = self.block_number_of(&newest)?.min(head.number);
        let oldest = newest.saturating_sub(count.saturating_sub(1));
        let max = self.chain.genesis.max_block_weight.max(1) as f64;
        let (mut base, mut ratio) = (Vec::new(), Vec::new());
        let mut last: Option<Header> = None;
        if count > 0 {
            for n in oldest..=newest {
                let Some(hash) = self.chain.store.canonical_hash(n).map_err(internal)? else {
                    break;
                };
                let Some(h) = self.chain.store.header(&hash).map_err(internal)? else {
                    break;
                };
                base.push(quantity(
                    self.base_fee_per_gas(&h).unwrap_or(Amount::ZERO).0,
                ));
                ratio.push(h.weight_used as f64 / max);
                last = Some(h);
            }
        }
        // And the block after the newest.
        let next = last
            .as_ref()
            .map(|h| self.chain.base_fee_after(h))
            .filter(|_| self.base_fee_chain())
            .map_or(Amount::ZERO, per_gas);
        base.push(quantity(next.0));
        let tip = quantity(self.suggested_tip().0);
        let reward = percentiles.map(|p| vec![vec![tip.clone(); p.len()]; ratio.len()]);
        Ok(FeeHistory {
            oldest_block: quantity(oldest),
            base_fee_per_gas: base,
            gas_used_ratio: ratio,
            reward,
        })
    }

    async fn estimate_gas(&self, call: CallRequest, _block: Option<String>) -> RpcResult<String> {
        if call.to.is_none() {
            return Err(refused(
                "contract creation is not supported",
                "unsupported",
                "this chain has value transfers only".into(),
            ));
        }
        let data = call.input.as_ref().or(call.data.as_ref());
        if data.is_some_and(|d| !d.0.is_empty()) {
            return Err(refused(
                "calldata is not supported: send a plain value transfer",
                "unsupported",
                "this chain has value transfers only".into(),
            ));
        }
        Ok(quantity(TRANSFER_GAS))
    }

    async fn get_block_by_number(&self, block: String, full: bool) -> RpcResult<Option<EthBlock>> {
        let n = self.block_number_of(&block)?;
        let Some(hash) = self.chain.store.canonical_hash(n).map_err(internal)? else {
            return Ok(None);
        };
        if n > self.chain.tip().head.number {
            return Ok(None);
        }
        match self.chain.store.block(&hash).map_err(internal)? {
            Some(b) => self.eth_block(b, full).map(Some),
            None => Ok(None),
        }
    }

    async fn get_block_by_hash(&self, hash: Hash, full: bool) -> RpcResult<Option<EthBlock>> {
        match self.chain.store.block(&hash).map_err(internal)? {
            Some(b) => self.eth_block(b, full).map(Some),
            None => Ok(None),
        }
    }

    async fn get_transaction_by_hash(&self, hash: Hash) -> RpcResult<Option<EthTransaction>> {
        if let Some((b, receipts, index)) = self.included(&hash)? {
            let i = index as usize;
            let block_hash = b.block.hash();
            if let (Some(t), Some(from), Some(r)) = (
                b.block.transactions.get(i),
                b.senders.get(i),
                receipts.get(i),
            ) {
                return Ok(Some(eth_tx(
                    t,
                    hash,
                    *from,
                    weight_of(r),
                    Some(Included {
                        block_hash,
                        number: b.block.header.number,
                        index,
                        receipt: r,
                    }),
                )));
            }
        }
        Ok(self.chain.mempool().get(&hash).as_ref().map(pending_view))
    }

    async fn get_transaction_receipt(&self, hash: Hash) -> RpcResult<Option<EthReceipt>> {
        let Some((b, receipts, index)) = self.included(&hash)? else {
            return Ok(None);
        };
        let i = index as usize;
        let (Some(t), Some(from), Some(r)) = (
            b.block.transactions.get(i),
            b.senders.get(i),
            receipts.get(i),
        ) else {
            return Ok(None);
        };
        let gas = gas_of(weight_of(r));
        let cumulative: u64 = receipts[..=i].iter().map(|r| gas_of(weight_of(r))).sum();
        let view = eth_tx(t, hash, *from, weight_of(r), None);
        Ok(Some(EthReceipt {
            transaction_hash: hash,
            transaction_index: quantity(index),
            block_hash: b.block.hash(),
            block_number: quantity(b.block.header.number),
            from: *from,
            to: view.to,
            status: if r.success() { "0x1" } else { "0x0" }.into(),
            gas_used: quantity(gas),
            cumulative_gas_used: quantity(cumulative),
            effective_gas_price: quantity(r.fee_paid.0 / gas.max(1) as u128),
            logs: Vec::new(),
            logs_bloom: zero_bloom(),
            tx_type: tx_type(t).into(),
            contract_address: None,
        }))
    }

    async fn get_code(&self, _address: Address, _block: Option<String>) -> RpcResult<Bytes> {
        Ok(Bytes(Vec::new()))
    }

    async fn call(&self, _call: CallRequest, _block: Option<String>) -> RpcResult<Bytes> {
        Ok(Bytes(Vec::new()))
    }

    async fn eth_subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
    ) -> SubscriptionResult {
        if kind != "newHeads" {
            pending
                .reject(invalid_params(format!(
                    "subscription {kind:?} is not supported: only \"newHeads\""
                )))
                .await;
            return Ok(());
        }
        forward_heads(&self.chain, pending, |head| {
            match self.chain.store.block(&head.hash).map_err(internal)? {
                Some(stored) => self.eth_block(stored, false).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn syncing(&self) -> RpcResult<serde_json::Value> {
        let head = self.chain.tip().head.number;
        match self.net.best_peer_head().await {
            Some(best) if best > head => Ok(serde_json::json!({
                "startingBlock": quantity(0u64),
                "currentBlock": quantity(head),
                "highestBlock": quantity(best),
            })),
            _ => Ok(serde_json::Value::Bool(false)),
        }
    }
}

#[async_trait]
impl Web3ApiServer for RpcImpl {
    async fn client_version(&self) -> RpcResult<String> {
        Ok(format!("twinpeg/v{}", env!("CARGO_PKG_VERSION")))
    }
}

/// Takes a JSON-RPC batch made only of `eth_sendRawTransaction` calls (how tools and loaders
/// send many transactions) in one step: every transaction decoded and recovered in parallel,
/// admitted with one durable journal write, and answered in order, as `tp_sendTransactions`
/// does. Without it each entry runs on its own, one after another, each with its own write.
/// Any other batch goes on unchanged.
#[derive(Debug, Clone)]
pub struct RawTxBatch<S> {
    /// The service it guards.
    pub inner: S,
    /// The methods' implementation.
    pub rpc: RpcImpl,
    /// Largest response in bytes.
    pub max_response_bytes: usize,
}

const SEND_RAW: &str = "eth_sendRawTransaction";

impl<S> jsonrpsee::server::middleware::rpc::RpcServiceT for RawTxBatch<S>
where
    S: jsonrpsee::server::middleware::rpc::RpcServiceT<
            MethodResponse = jsonrpsee::server::MethodResponse,
            BatchResponse = jsonrpsee::server::MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        req: jsonrpsee::types::Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(req)
    }

    fn batch<'a>(
        &self,
        batch: jsonrpsee::server::middleware::rpc::Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        use jsonrpsee::server::middleware::rpc::BatchEntry;
        let inner = self.inner.clone();
        let rpc = self.rpc.clone();
        let max_response = self.max_response_bytes;
        async move {
            let all_raw = batch.iter().count() > 1
                && batch
                    .iter()
                    .all(|e| matches!(e, Ok(BatchEntry::Call(r)) if r.method_name() == SEND_RAW));
            if !all_raw {
                return inner.batch(batch).await;
            }
            let mut ids = Vec::new();
            let mut raws = Vec::new();
            for entry in batch {
                if let Ok(BatchEntry::Call(req)) = entry {
                    let raw: Result<Bytes, _> = req.params().one::<Bytes>();
                    ids.push(req.id.into_owned());
                    raws.push(raw);
                }
            }
            rpc.send_raw_batch(ids, raws, max_response).await
        }
    }

    fn notification<'a>(
        &self,
        n: jsonrpsee::server::middleware::rpc::Notification<'a>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

impl RpcImpl {
    /// Decodes (in parallel), admits (one journal write) and answers a batch of raw
    /// transactions, each entry as `eth_sendRawTransaction` would alone.
    async fn send_raw_batch(
        &self,
        ids: Vec<jsonrpsee::types::Id<'static>>,
        raws: Vec<Result<Bytes, ErrorObjectOwned>>,
        max_response: usize,
    ) -> jsonrpsee::server::MethodResponse {
        use jsonrpsee::core::server::ResponsePayload;
        use jsonrpsee::server::MethodResponse;
        use rayon::prelude::*;
        let max = self.chain.max_tx_size();
        let decoded: Vec<Result<RecoveredTx, ErrorObjectOwned>> =
            match tokio::task::spawn_blocking(move || {
                raws.into_par_iter()
                    .map(|raw| recover_raw(&raw?.0, max))
                    .collect()
            })
            .await
            {
                Ok(d) => d,
                Err(e) => return MethodResponse::error(jsonrpsee::types::Id::Null, internal(e)),
            };
        let base_fee_chain = self.base_fee_chain();
        // One submission of everything that decoded, in order.
        let (ok, errors): (Vec<_>, Vec<_>) = decoded
            .into_iter()
            .enumerate()
            .partition(|(_, d)| d.is_ok());
        let positions: Vec<usize> = ok.iter().map(|(i, _)| *i).collect();
        let submitted = self
            .submit(ok.into_iter().filter_map(|(_, d)| d.ok()).map(Ok).collect())
            .await;
        let mut answers: Vec<Option<Result<Hash, ErrorObjectOwned>>> = vec![None; ids.len()];
        for (i, e) in errors {
            if let Err(e) = e {
                answers[i] = Some(Err(e));
            }
        }
        for (i, r) in positions.into_iter().zip(submitted) {
            answers[i] = Some(r.map_err(|r| eth_rejection(&r, base_fee_chain)));
        }
        let mut out = jsonrpsee::core::server::BatchResponseBuilder::new_with_limit(max_response);
        for (id, answer) in ids.into_iter().zip(answers) {
            let rp = match answer {
                Some(Ok(hash)) => {
                    MethodResponse::response(id, ResponsePayload::success(hash), max_response)
                }
                Some(Err(e)) => MethodResponse::error(id, e),
                None => MethodResponse::error(id, internal("no submission result")),
            };
            if let Err(too_big) = out.append(rp) {
                return too_big;
            }
        }
        MethodResponse::from_batch(out.finish())
    }
}
