//! The RPC server: implements the API traits over the shared [`Chain`], and passes what its
//! clients submit on to peers through the [`NetworkHandle`].

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::{async_trait, SubscriptionResult};
use jsonrpsee::server::{
    BatchRequestConfig, HttpResponse, PendingSubscriptionSink, ServerConfig, ServerHandle,
};
use jsonrpsee::types::ErrorObjectOwned;
use rayon::prelude::*;
use tokio::sync::broadcast::error::RecvError;

use crate::config::NodeConfig;
use crate::mempool::Rejection;
use crate::network::NetworkHandle;
use crate::shared::Chain;
use crate::store::{StoreError, StoredBlock};
use primitives::block::PegEvent;
use primitives::peg::PegError;
use primitives::tx::{RecoveredTx, SignedTransaction};
use primitives::types::Amount;
use primitives::types::{Address, BlockNumber, Bytes, Hash};
use rpc_api::api::{EthApiServer, NetApiServer, RpcResult, TwinpegApiServer, Web3ApiServer};
use rpc_api::codes;
use rpc_api::types::FeeInfo;
use rpc_api::types::{
    AccountView, BlockReceipts, BlockSummary, BlockView, ChainInfo, Health, PegInfo, PegPayout,
    PegSource, PegTransferView, StateDigest, SubmitResult, TxError, TxLookup, TxStatus, TxView,
};
use rpc_api::types::{BlockId, FinalityProof, FinalityStatusView, PeerInfo, SyncStatus};
use service::http::{json_response, metrics_response, GetRoutes, GetRoutesLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};

use http::{header, HeaderValue, Method};

/// The JSON-RPC error code for a refusal.
pub fn rejection_code(r: &Rejection) -> i32 {
    use codes::*;
    match r {
        Rejection::Malformed(_) | Rejection::Oversized { .. } => MALFORMED_TX,
        Rejection::BadSignature(_) => BAD_SIGNATURE,
        Rejection::WrongChainId { .. } => WRONG_CHAIN,
        Rejection::NonceTooLow { .. } => NONCE_TOO_LOW,
        Rejection::NonceTooFarAhead { .. } => NONCE_TOO_HIGH,
        Rejection::InsufficientBalance { .. } | Rejection::Overflow => INSUFFICIENT_FUNDS,
        Rejection::FeeTooLow(_) | Rejection::WrongFeeForm(_) => FEE_TOO_LOW,
        Rejection::AlreadyKnown(_) | Rejection::ReplacementUnderpriced { .. } => ALREADY_KNOWN,
        Rejection::PoolFull { .. }
        | Rejection::SenderFull { .. }
        | Rejection::TooManyParked { .. }
        | Rejection::ParkedFull { .. }
        | Rejection::JournalFull { .. } => BUSY,
        Rejection::JournalFailed(_) => INTERNAL,
        Rejection::Peg(PegError::IdUsed { .. }) => PEG_ID_USED,
        Rejection::Peg(PegError::IdPending(_)) => ALREADY_KNOWN,
        Rejection::Peg(PegError::Signatures(_)) | Rejection::Peg(PegError::ZeroId) => {
            BAD_ATTESTATION
        }
        Rejection::Peg(_) => PEG_REFUSED,
    }
}

fn tx_error(r: &Rejection) -> TxError {
    TxError {
        code: rejection_code(r),
        reason: r.code().to_string(),
        message: r.to_string(),
    }
}

fn rejection_error(r: &Rejection) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        rejection_code(r),
        r.to_string(),
        Some(serde_json::json!({ "reason": r.code() })),
    )
}

pub(super) fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::error!(error = %e, "storage error serving RPC");
    ErrorObjectOwned::owned(codes::INTERNAL, format!("internal error: {e}"), None::<()>)
}

/// CORS for browser wallets and dapps (answers OPTIONS preflights too); `None` without origins.
fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, ServerError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o).map_err(|e| ServerError {
                    what: format!("rpc_cors_origins entry {o:?}"),
                    error: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE]),
    ))
}

/// The RPC server could not start.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {error}")]
pub struct ServerError {
    /// What was being done.
    pub what: String,
    /// The error.
    pub error: std::io::Error,
}

/// The RPC implementation.
#[derive(Debug, Clone)]
pub struct RpcImpl {
    pub(super) chain: Arc<Chain>,
    pub(super) net: NetworkHandle,
    max_txs_per_call: usize,
    /// Historical state reads running at once (see `eth::HISTORY_READERS`).
    pub(super) history: Arc<tokio::sync::Semaphore>,
}

impl RpcImpl {
    /// Submits decoded transactions and gossips what the pool took.
    pub(super) async fn submit(
        &self,
        txs: Vec<Result<RecoveredTx, Rejection>>,
    ) -> Vec<Result<Hash, Rejection>> {
        let submitted = self.chain.submit_local(txs).await;
        self.net.publish_txs(submitted.admitted);
        submitted.results
    }

    fn block_view(&self, stored: StoredBlock, full: bool) -> BlockView {
        let b = stored.block;
        let hashes: Vec<Hash> = b.transactions.iter().map(|t| t.hash()).collect();
        let transactions = full.then(|| {
            b.transactions
                .iter()
                .zip(&stored.senders)
                .zip(&hashes)
                .map(|((t, from), hash)| TxView {
                    hash: *hash,
                    from: *from,
                    tx: t.tx.clone(),
                    signature: t.signature,
                })
                .collect()
        });
        BlockView {
            summary: BlockSummary::new(&b.header, b.transactions.len()),
            tx_root: b.header.tx_root,
            receipts_root: b.header.receipts_root,
            seal: b.seal,
            transaction_hashes: hashes,
            transactions,
        }
    }
}

fn decode_all(raws: Vec<Bytes>, max_size: usize) -> Vec<Result<RecoveredTx, Rejection>> {
    let one =
        |b: &Bytes| SignedTransaction::decode_and_recover(&b.0, max_size).map_err(Rejection::from);
    if raws.len() < 8 {
        raws.iter().map(one).collect()
    } else {
        raws.par_iter().map(one).collect()
    }
}

#[async_trait]
impl TwinpegApiServer for RpcImpl {
    async fn chain_info(&self) -> RpcResult<ChainInfo> {
        let g = &self.chain.genesis;
        Ok(ChainInfo {
            name: self.chain.rules.name.to_string(),
            chain_id: g.chain_id,
            genesis_hash: self.chain.genesis_hash,
            block_time_ms: g.block_time_ms,
            fee_rule: self.chain.fee_rule.name().to_string(),
            max_block_weight: g.max_block_weight,
            max_tx_size: g.max_tx_size,
            authorities: g.authorities.clone(),
        })
    }

    async fn health(&self) -> RpcResult<Health> {
        Ok(health(&self.chain))
    }

    async fn send_transaction(&self, raw: Bytes) -> RpcResult<Hash> {
        let decoded = decode_all(vec![raw], self.chain.max_tx_size());
        // Answered only once the journal holds it: an accepted transaction survives a crash.
        match self.submit(decoded).await.pop() {
            Some(Ok(h)) => Ok(h),
            Some(Err(r)) => Err(rejection_error(&r)),
            None => Err(internal(StoreError::NotInitialized)),
        }
    }

    async fn send_transactions(&self, raws: Vec<Bytes>) -> RpcResult<Vec<SubmitResult>> {
        if raws.len() > self.max_txs_per_call {
            return Err(ErrorObjectOwned::owned(
                codes::TOO_MANY,
                format!(
                    "{} transactions in one call; the limit is {}",
                    raws.len(),
                    self.max_txs_per_call
                ),
                None::<()>,
            ));
        }
        let max = self.chain.max_tx_size();
        // Recovery is CPU work: run it on the rayon pool, off the I/O workers.
        let decoded = tokio::task::spawn_blocking(move || decode_all(raws, max))
            .await
            .map_err(|e| ErrorObjectOwned::owned(codes::INTERNAL, e.to_string(), None::<()>))?;
        // One durable journal write for the whole call, before answering.
        let results = self.submit(decoded).await;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(h) => SubmitResult {
                    hash: Some(h),
                    error: None,
                },
                Err(e) => SubmitResult {
                    hash: None,
                    error: Some(tx_error(&e)),
                },
            })
            .collect())
    }

    async fn head(&self) -> RpcResult<BlockSummary> {
        let f = self.chain.finality.final_block();
        let tip = self.chain.tip();
        let mut summary = BlockSummary::new(&tip.head, tip.head_tx_count);
        summary.finalized = Some(BlockId {
            number: f.number,
            hash: f.hash,
        });
        Ok(summary)
    }

    async fn finality_proof(&self, number: BlockNumber) -> RpcResult<Option<FinalityProof>> {
        let f = self.chain.finality.final_block();
        if number > f.number {
            return Ok(None);
        }
        let Some(hash) = self.chain.store.canonical_hash(number).map_err(internal)? else {
            return Ok(None);
        };
        let Some(j) = self
            .chain
            .finality
            .store
            .justification_covering(number)
            .map_err(internal)?
        else {
            // Genesis is final by definition and has no justification.
            return Ok(None);
        };
        Ok(Some(FinalityProof {
            number,
            hash,
            justified: BlockId {
                number: j.block.number,
                hash: j.block.hash,
            },
            instance: j.instance,
            round: j.round,
            precommits: j.precommits.iter().map(|(_, s)| *s).collect(),
        }))
    }

    async fn finality_status(&self) -> RpcResult<FinalityStatusView> {
        Ok(finality_status(&self.chain))
    }

    async fn block_by_number(
        &self,
        number: BlockNumber,
        full: Option<bool>,
    ) -> RpcResult<Option<BlockView>> {
        let Some(hash) = self.chain.store.canonical_hash(number).map_err(internal)? else {
            return Ok(None);
        };
        let stored = self.chain.store.block(&hash).map_err(internal)?;
        Ok(stored.map(|s| self.block_view(s, full.unwrap_or(false))))
    }

    async fn block_by_hash(&self, hash: Hash, full: Option<bool>) -> RpcResult<Option<BlockView>> {
        let stored = self.chain.store.block(&hash).map_err(internal)?;
        Ok(stored.map(|s| self.block_view(s, full.unwrap_or(false))))
    }

    async fn transaction(&self, hash: Hash) -> RpcResult<Option<TxLookup>> {
        let store = &self.chain.store;
        if let Some(loc) = store.tx_location(&hash).map_err(internal)? {
            let block = store.block(&loc.block_hash).map_err(internal)?;
            let receipts = store.receipts(&loc.block_hash).map_err(internal)?;
            let i = loc.index as usize;
            if let (Some(b), Some(rs)) = (block, receipts) {
                if let (Some(t), Some(from), Some(r)) =
                    (b.block.transactions.get(i), b.senders.get(i), rs.get(i))
                {
                    let transaction = TxView {
                        hash,
                        from: *from,
                        tx: t.tx.clone(),
                        signature: t.signature,
                    };
                    // The block is written before the head (and the state reads) move to it:
                    // until then the transaction reads as pending, so a client that sees it
                    // included also sees its effect in tp_getAccount.
                    if loc.block_number > self.chain.tip().head.number {
                        return Ok(Some(TxLookup::pending(transaction)));
                    }
                    return Ok(Some(TxLookup {
                        status: if r.success() {
                            TxStatus::Success
                        } else {
                            TxStatus::Failed
                        },
                        transaction,
                        block_hash: Some(loc.block_hash),
                        block_number: Some(loc.block_number),
                        index: Some(loc.index),
                        receipt: Some(r.clone()),
                    }));
                }
            }
        }
        let pending = self.chain.mempool().get(&hash);
        Ok(pending.map(|t| {
            TxLookup::pending(TxView {
                hash,
                from: t.sender(),
                tx: t.tx().clone(),
                signature: t.signed().signature,
            })
        }))
    }

    async fn account(&self, address: Address) -> RpcResult<AccountView> {
        let (nonce, pending_nonce) = self.chain.nonces(&address);
        // Balance and height from the tip the nonce was read at (or a later one).
        let (acct, number) = {
            let tip = self.chain.tip();
            (tip.state.account(&address), tip.head.number)
        };
        Ok(AccountView {
            address,
            balance: acct.balance,
            nonce: acct.nonce.max(nonce),
            pending_nonce: pending_nonce.max(acct.nonce),
            block_number: number,
        })
    }

    async fn peg_info(&self) -> RpcResult<PegInfo> {
        let peg = self.chain.peg.as_ref().ok_or_else(|| {
            ErrorObjectOwned::owned(
                codes::PEG_REFUSED,
                "this chain has no peg configured",
                None::<()>,
            )
        })?;
        let genesis_supply = self
            .chain
            .genesis
            .accounts
            .iter()
            .fold(0u128, |a, x| a.saturating_add(x.balance.0));
        let tip = self.chain.tip();
        let t = tip.state.totals;
        let escrow = primitives::peg::escrow_address();
        let (escrow, escrow_balance) = match peg.role {
            primitives::peg::PegRole::Main => {
                (Some(escrow), Some(tip.state.account(&escrow).balance))
            }
            primitives::peg::PegRole::Side => (None, None),
        };
        let supply = Amount(
            genesis_supply
                .saturating_add(t.minted.0)
                .saturating_sub(t.burned_peg.0)
                .saturating_sub(t.burned_fees.0),
        );
        let today = primitives::peg::totals_on(t, service::clock::now_ms());
        Ok(PegInfo {
            role: match peg.role {
                primitives::peg::PegRole::Main => "main".into(),
                primitives::peg::PegRole::Side => "side".into(),
            },
            domain: peg.domain,
            params: peg.params.clone(),
            escrow,
            escrow_balance,
            supply,
            // O(accounts), under the read lock: an audit's call, not a hot path.
            balances: tip.state.total_balance(),
            totals: t,
            today_deposits: today.day_deposits,
            today_withdrawals: today.day_withdrawals,
            head: tip.head.number,
            head_hash: tip.head_hash,
        })
    }

    async fn peg_transfer(&self, id: Hash) -> RpcResult<PegTransferView> {
        let store = &self.chain.store;
        let (head, processed) = {
            let tip = self.chain.tip();
            (tip.head.number, tip.state.processed(&id))
        };
        let mut source = None;
        if let Some(loc) = store.tx_location(&id).map_err(internal)? {
            let receipts = store
                .receipts(&loc.block_hash)
                .map_err(internal)?
                .unwrap_or_default();
            if let Some(event) = receipts
                .get(loc.index as usize)
                .and_then(|r| r.peg_event.clone())
            {
                source = Some(PegSource {
                    block_number: loc.block_number,
                    block_hash: loc.block_hash,
                    confirmations: head.saturating_sub(loc.block_number) + 1,
                    event,
                });
            }
        }
        let mut payout = None;
        if let Some(block_number) = processed {
            let hash = store.canonical_hash(block_number).map_err(internal)?;
            let mut found = None;
            if let Some(h) = hash {
                let stored = store.block(&h).map_err(internal)?;
                let receipts = store.receipts(&h).map_err(internal)?.unwrap_or_default();
                for (i, r) in receipts.iter().enumerate() {
                    let hit = matches!(&r.peg_event,
                        Some(PegEvent::Minted { id: x, .. }) | Some(PegEvent::Released { id: x, .. }) if *x == id);
                    if hit {
                        found = Some((
                            r.tx_hash,
                            r.peg_event.clone(),
                            stored.as_ref().and_then(|b| b.senders.get(i).copied()),
                        ));
                    }
                }
            }
            payout = Some(PegPayout {
                block_number,
                block_hash: hash,
                tx_hash: found.as_ref().map(|f| f.0),
                event: found.as_ref().and_then(|f| f.1.clone()),
                submitter: found.and_then(|f| f.2),
            });
        }
        Ok(PegTransferView {
            id,
            head,
            finalized: Some(self.chain.finality.final_block().number),
            source,
            payout,
        })
    }

    async fn block_receipts(&self, number: BlockNumber) -> RpcResult<Option<BlockReceipts>> {
        let store = &self.chain.store;
        let Some(hash) = store.canonical_hash(number).map_err(internal)? else {
            return Ok(None);
        };
        let Some(header) = store.header(&hash).map_err(internal)? else {
            return Ok(None);
        };
        let receipts = store.receipts(&hash).map_err(internal)?.unwrap_or_default();
        Ok(Some(BlockReceipts {
            hash,
            number,
            parent_hash: header.parent_hash,
            timestamp_ms: header.timestamp_ms,
            receipts,
        }))
    }

    async fn peers(&self) -> RpcResult<Vec<PeerInfo>> {
        Ok(self.net.peers().await)
    }

    async fn state_digest(&self) -> RpcResult<StateDigest> {
        let tip = self.chain.tip();
        Ok(StateDigest {
            number: tip.head.number,
            hash: tip.head_hash,
            digest: tip.state.digest(),
            accounts: tip.state.len() as u64,
            processed_ids: tip.state.processed_len() as u64,
        })
    }

    async fn sync_status(&self) -> RpcResult<SyncStatus> {
        let head = self.chain.tip().head.number;
        let (best, peers) = (
            self.net.best_peer_head().await,
            self.net.peers().await.len(),
        );
        Ok(SyncStatus {
            head,
            best_peer_head: best,
            syncing: best.is_some_and(|b| b > head),
            peers,
        })
    }

    async fn fee_info(&self) -> RpcResult<FeeInfo> {
        let base = self.chain.base_fee_after(&self.chain.tip().head);
        Ok(self.chain.fee_rule.info(base))
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        forward_heads(&self.chain, pending, |head| Ok(Some(head))).await
    }
}

/// Sends every new canonical head, in the shape `shape` gives it (`None` skips one), until the
/// subscriber leaves; a slow subscriber skips heads rather than holding the node back.
pub(super) async fn forward_heads<T: serde::Serialize>(
    chain: &Chain,
    pending: PendingSubscriptionSink,
    shape: impl Fn(BlockSummary) -> RpcResult<Option<T>>,
) -> SubscriptionResult {
    let mut rx = chain.heads.subscribe();
    let sink = pending.accept().await?;
    loop {
        tokio::select! {
            _ = sink.closed() => break,
            msg = rx.recv() => match msg {
                Ok(head) => {
                    let Some(item) = shape(head)? else {
                        continue;
                    };
                    let raw = serde_json::value::to_raw_value(&item)?;
                    if sink.send(raw).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::debug!(skipped = n, "head subscriber lagged"),
                Err(RecvError::Closed) => break,
            },
        }
    }
    Ok(())
}

#[async_trait]
impl NetApiServer for RpcImpl {
    async fn version(&self) -> RpcResult<String> {
        Ok(self.chain.genesis.chain_id.to_string())
    }
}

/// The health report.
pub fn health(chain: &Chain) -> Health {
    let (head, ts) = {
        let tip = chain.tip();
        (tip.head.number, tip.head.timestamp_ms)
    };
    Health {
        status: "ok".into(),
        chain: chain.rules.name.to_string(),
        head,
        head_age_ms: service::clock::now_ms().saturating_sub(ts),
        mempool: chain.mempool().len(),
        authority: chain.authority.is_some(),
        finalized: chain.finality.final_block().number,
    }
}

/// Where finality stands, and why it stalls when it does.
pub fn finality_status(chain: &Chain) -> FinalityStatusView {
    let s = chain.finality.status();
    let head = chain.tip().head.number;
    let auth = &chain.finality.authorities;
    let quorum = chain.finality.quorum();
    let voting: Vec<_> = s
        .heard
        .iter()
        .filter_map(|i| auth.addresses.get(usize::from(*i)).copied())
        .collect();
    let lag = head.saturating_sub(s.final_block.number);
    // A lag of a few blocks is finality at work; beyond that, say what is missing.
    let stalled = (lag > 3).then(|| {
        if voting.len() < quorum {
            format!(
                "{} of {} authorities voting; needs {quorum}",
                voting.len(),
                auth.len()
            )
        } else {
            format!(
                "round {} of instance {}: {} prevotes, {} precommits; needs {quorum}",
                s.round, s.instance, s.votes.0, s.votes.1
            )
        }
    });
    FinalityStatusView {
        head,
        finalized: BlockId {
            number: s.final_block.number,
            hash: s.final_block.hash,
        },
        lag,
        instance: s.instance,
        round: s.round,
        step: match s.step {
            finality::Step::Propose => "propose",
            finality::Step::Prevote => "prevote",
            finality::Step::Precommit => "precommit",
        }
        .into(),
        authorities: auth.len(),
        quorum,
        voting,
        prevotes: s.votes.0,
        precommits: s.votes.1,
        equivocations: s.equivocations,
        stalled,
    }
}

/// Binds and starts the server; returns the bound address.
pub async fn start(
    chain: Arc<Chain>,
    net: NetworkHandle,
    config: &NodeConfig,
) -> Result<(SocketAddr, ServerHandle), ServerError> {
    let server_cfg = ServerConfig::builder()
        .max_connections(config.rpc_max_connections)
        .max_request_body_size(config.rpc_max_request_bytes)
        .max_response_body_size(config.rpc_max_response_bytes)
        .set_batch_request_config(BatchRequestConfig::Limit(config.rpc_max_batch_len))
        .build();
    let rpc = RpcImpl {
        chain: chain.clone(),
        net,
        max_txs_per_call: config.rpc_max_txs_per_call,
        history: Arc::new(tokio::sync::Semaphore::new(super::eth::HISTORY_READERS)),
    };
    let batch_rpc = rpc.clone();
    let max_response_bytes = config.rpc_max_response_bytes as usize;
    let http = tower::ServiceBuilder::new()
        .option_layer(cors_layer(&config.rpc_cors_origins)?)
        .layer(GetRoutesLayer::new(NodeRoutes::new(chain.clone())));
    let server = jsonrpsee::server::Server::builder()
        .set_config(server_cfg)
        .set_http_middleware(http)
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                .layer_fn(|inner| super::params::ParamsShape { inner })
                .layer_fn(move |inner| super::eth::RawTxBatch {
                    inner,
                    rpc: batch_rpc.clone(),
                    max_response_bytes,
                }),
        )
        .build(config.rpc_addr)
        .await
        .map_err(|error| ServerError {
            what: format!("binding RPC to {}", config.rpc_addr),
            error,
        })?;
    let addr = server.local_addr().map_err(|error| ServerError {
        what: "reading RPC address".into(),
        error,
    })?;
    let mut module = TwinpegApiServer::into_rpc(rpc.clone());
    let merge_err = |e: jsonrpsee::core::RegisterMethodError| ServerError {
        what: "registering RPC methods".into(),
        error: std::io::Error::other(e.to_string()),
    };
    module
        .merge(EthApiServer::into_rpc(rpc.clone()))
        .map_err(merge_err)?;
    module
        .merge(NetApiServer::into_rpc(rpc.clone()))
        .map_err(merge_err)?;
    module
        .merge(Web3ApiServer::into_rpc(rpc))
        .map_err(merge_err)?;
    Ok((addr, server.start(module)))
}

/// A node's `GET /health` and `GET /metrics`.
#[derive(Debug, Clone)]
pub struct NodeRoutes {
    chain: Arc<Chain>,
}

impl NodeRoutes {
    /// For this chain.
    pub fn new(chain: Arc<Chain>) -> Self {
        Self { chain }
    }
}

impl GetRoutes for NodeRoutes {
    fn get(&self, path: &str) -> Option<HttpResponse> {
        match path {
            "/health" => Some(json_response(&health(&self.chain))),
            "/metrics" => Some(metrics_response(self.chain.metrics.encode())),
            _ => None,
        }
    }
}
