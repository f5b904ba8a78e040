//! The member's own chain nodes, over the jsonrpsee clients generated from `rpc_api::api`,
//! behind the small traits the watcher and worker need (so tests drive them with fakes).

use std::future::Future;
use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use primitives::types::{Address, BlockNumber, Bytes, Hash};
use rpc_api::types::{
    AccountView, BlockReceipts, ChainInfo, PegInfo, PegPayout, PegTransferView, SubmitResult,
};
use rpc_api::{codes, TwinpegApiClient};
use serde::{Deserialize, Serialize};

use crate::error::{BridgeError, Result};

/// Ids asked in one JSON-RPC batch (the node's default batch limit is 1,000).
pub const PAYOUT_QUERY_BATCH: usize = 500;

/// Payouts sent in one `tp_sendTransactions` call (the node's default limit is 5,000).
pub const SUBMIT_BATCH: usize = 1_000;

/// A block's height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Height.
    pub number: BlockNumber,
    /// Hash.
    pub hash: Hash,
}

/// A payout a destination node shows, with its depth there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutSeen {
    /// The Mint or Release: block, transaction, submitter.
    pub payout: PegPayout,
    /// `head - block + 1` on the node's canonical chain: the depth the watcher uses too.
    pub confirmations: u64,
    /// Whether its block is final on that node (never to be reorged away).
    pub finalized: bool,
}

/// What a watcher reads from its source chain.
pub trait SourceChain: Send + Sync {
    /// The canonical head.
    fn head(&self) -> impl Future<Output = Result<BlockRef>> + Send;
    /// The canonical block at `number` with its receipts; `None` above the head.
    fn block(
        &self,
        number: BlockNumber,
    ) -> impl Future<Output = Result<Option<BlockReceipts>>> + Send;
    /// The height of the last final block (`None`: the node reports no finality).
    fn finalized(&self) -> impl Future<Output = Result<Option<BlockNumber>>> + Send;
}

/// What a worker asks of its destination chain (a trait so tests drive the worker with a fake).
pub trait DestinationChain: Send + Sync {
    /// `main` or `side`, for labels and logs.
    fn name(&self) -> &'static str;
    /// The canonical head.
    fn head(&self) -> impl Future<Output = Result<BlockRef>> + Send;
    /// An account at the head.
    fn account(&self, address: Address) -> impl Future<Output = Result<AccountView>> + Send;
    /// The payout of each id, if the canonical chain holds one, with its depth.
    fn payouts(&self, ids: &[Hash])
        -> impl Future<Output = Result<Vec<Option<PayoutSeen>>>> + Send;
    /// Submits signed payouts in order; one outcome each.
    fn submit_many(
        &self,
        raws: Vec<Bytes>,
    ) -> impl Future<Output = Result<Vec<SubmitOutcome>>> + Send;
}

/// How a destination node answered a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Accepted into the mempool.
    Accepted(Hash),
    /// The id was paid out already (`peg_id_used`).
    IdUsed,
    /// Another payout of the id is pending (`peg_id_pending`).
    IdPending,
    /// Refused for another reason.
    Refused {
        /// JSON-RPC code.
        code: i32,
        /// Readable message.
        message: String,
    },
}

impl SubmitOutcome {
    /// Classifies a node's refusal by JSON-RPC code and stable reason: `PEG_ID_USED` is a payout
    /// already made; `ALREADY_KNOWN` with reason `peg_id_pending` is another payout of the id
    /// waiting in the pool.
    pub fn from_refusal(code: i32, reason: Option<&str>, message: &str) -> Self {
        match (code, reason) {
            (codes::PEG_ID_USED, _) => SubmitOutcome::IdUsed,
            (codes::ALREADY_KNOWN, Some("peg_id_pending")) => SubmitOutcome::IdPending,
            (code, _) => SubmitOutcome::Refused {
                code,
                message: message.to_string(),
            },
        }
    }

    /// One entry of a batch submission.
    pub fn from_result(r: SubmitResult) -> Self {
        match (r.hash, r.error) {
            (Some(h), _) => SubmitOutcome::Accepted(h),
            (None, Some(e)) => Self::from_refusal(e.code, Some(&e.reason), &e.message),
            (None, None) => SubmitOutcome::Refused {
                code: 0,
                message: "the node gave neither a hash nor an error".into(),
            },
        }
    }

    /// The stable name stored with the submission.
    pub fn name(&self) -> String {
        match self {
            SubmitOutcome::Accepted(_) => "accepted".into(),
            SubmitOutcome::IdUsed => "id_used".into(),
            SubmitOutcome::IdPending => "id_pending".into(),
            SubmitOutcome::Refused { code, message } => format!("refused {code}: {message}"),
        }
    }
}

/// One of the member's nodes.
#[derive(Debug, Clone)]
pub struct NodeClient {
    /// `main` or `side`.
    pub name: &'static str,
    /// The HTTP JSON-RPC client.
    pub http: HttpClient,
}

impl NodeClient {
    /// A client for `url` (http).
    pub fn new(name: &'static str, url: &str) -> Result<Self> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(15))
            .build(url)
            .map_err(|e| BridgeError::Config(format!("{name} RPC URL {url}: {e}")))?;
        Ok(Self { name, http })
    }

    fn err(&self, e: ClientError) -> BridgeError {
        BridgeError::Rpc {
            chain: self.name,
            reason: e.to_string(),
        }
    }

    /// Chain id and genesis.
    pub async fn chain_info(&self) -> Result<ChainInfo> {
        self.http.chain_info().await.map_err(|e| self.err(e))
    }

    /// The peg as this node sees it.
    pub async fn peg_info(&self) -> Result<PegInfo> {
        self.http.peg_info().await.map_err(|e| self.err(e))
    }

    /// A transfer by id.
    pub async fn peg_transfer(&self, id: Hash) -> Result<PegTransferView> {
        self.http.peg_transfer(id).await.map_err(|e| self.err(e))
    }

    /// An account at the head.
    pub async fn account(&self, address: Address) -> Result<AccountView> {
        self.http.account(address).await.map_err(|e| self.err(e))
    }

    /// The canonical head (here as well as in the traits, so a call on a `NodeClient` is
    /// never ambiguous between them).
    pub async fn head(&self) -> Result<BlockRef> {
        let h = self.http.head().await.map_err(|e| self.err(e))?;
        Ok(BlockRef {
            number: h.number,
            hash: h.hash,
        })
    }

    /// The payout of each id on this (destination) chain, if paid, with its depth (from the
    /// head the same answer reports): one JSON-RPC batch per [`PAYOUT_QUERY_BATCH`] ids
    /// instead of a round trip each.
    pub async fn payouts(&self, ids: &[Hash]) -> Result<Vec<Option<PayoutSeen>>> {
        // Asked first: a block final then is final when the payouts are read after it.
        let finalized = self
            .http
            .head()
            .await
            .map_err(|e| self.err(e))?
            .finalized
            .map(|f| f.number);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PAYOUT_QUERY_BATCH) {
            let mut batch = BatchRequestBuilder::new();
            for id in chunk {
                batch
                    .insert("tp_getPegTransfer", jsonrpsee::rpc_params![id])
                    .map_err(|e| self.err(ClientError::ParseError(e)))?;
            }
            let answers = self
                .http
                .batch_request::<PegTransferView>(batch)
                .await
                .map_err(|e| self.err(e))?;
            for a in answers {
                let view = a.map_err(|e| self.err(ClientError::Call(e.into_owned())))?;
                out.push(view.payout.map(|payout| PayoutSeen {
                    confirmations: (view.head + 1).saturating_sub(payout.block_number),
                    finalized: finalized.is_some_and(|f| payout.block_number <= f),
                    payout,
                }));
            }
        }
        if out.len() != ids.len() {
            return Err(BridgeError::Rpc {
                chain: self.name,
                reason: format!("{} answers for {} ids", out.len(), ids.len()),
            });
        }
        Ok(out)
    }

    /// Submits a signed payout; peg refusals are outcomes, transport failures errors.
    pub async fn submit(&self, raw: Bytes) -> Result<SubmitOutcome> {
        match self.http.send_transaction(raw).await {
            Ok(h) => Ok(SubmitOutcome::Accepted(h)),
            Err(ClientError::Call(obj)) => {
                let reason = obj
                    .data()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                    .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(String::from));
                Ok(SubmitOutcome::from_refusal(
                    obj.code(),
                    reason.as_deref(),
                    obj.message(),
                ))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    /// Submits signed payouts in order (one `tp_sendTransactions` call per [`SUBMIT_BATCH`]);
    /// one outcome each.
    pub async fn submit_many(&self, raws: Vec<Bytes>) -> Result<Vec<SubmitOutcome>> {
        let n = raws.len();
        let mut out = Vec::with_capacity(n);
        for chunk in raws.chunks(SUBMIT_BATCH) {
            let results = self
                .http
                .send_transactions(chunk.to_vec())
                .await
                .map_err(|e| self.err(e))?;
            out.extend(results.into_iter().map(SubmitOutcome::from_result));
        }
        if out.len() != n {
            return Err(BridgeError::Rpc {
                chain: self.name,
                reason: format!("{} outcomes for {n} payouts", out.len()),
            });
        }
        Ok(out)
    }
}

impl SourceChain for NodeClient {
    async fn head(&self) -> Result<BlockRef> {
        NodeClient::head(self).await
    }

    async fn finalized(&self) -> Result<Option<BlockNumber>> {
        let h = self.http.head().await.map_err(|e| self.err(e))?;
        Ok(h.finalized.map(|f| f.number))
    }

    async fn block(&self, number: BlockNumber) -> Result<Option<BlockReceipts>> {
        self.http
            .block_receipts(number)
            .await
            .map_err(|e| self.err(e))
    }
}

impl DestinationChain for NodeClient {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn head(&self) -> Result<BlockRef> {
        NodeClient::head(self).await
    }

    async fn account(&self, address: Address) -> Result<AccountView> {
        NodeClient::account(self, address).await
    }

    async fn payouts(&self, ids: &[Hash]) -> Result<Vec<Option<PayoutSeen>>> {
        NodeClient::payouts(self, ids).await
    }

    async fn submit_many(&self, raws: Vec<Bytes>) -> Result<Vec<SubmitOutcome>> {
        NodeClient::submit_many(self, raws).await
    }
}
