//! A chain's node seen through the generated JSON-RPC client, with its errors mapped to
//! [`WalletError`]s that name the chain, the endpoint and the node's reason.

use std::time::Duration;

use jsonrpsee::core::client::Error as ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use primitives::types::{Address, BlockNumber, Bytes, Hash};
use rpc_api::types::FeeInfo;
use rpc_api::types::{AccountView, BlockView, ChainInfo, TxLookup};
use rpc_api::TwinpegApiClient;

use crate::chains::ChainSel;
use crate::error::{Result, WalletError};

/// A connection to one chain's node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Which chain.
    pub chain: ChainSel,
    /// The endpoint.
    pub url: String,
    /// What the node said about its chain.
    pub info: ChainInfo,
    client: HttpClient,
}

/// One line: transport errors can carry newlines.
fn one_line(s: impl ToString) -> String {
    s.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Node {
    /// Connects to `url` and checks that it serves `chain` (a swapped endpoint is an error).
    pub async fn open(chain: ChainSel, url: &str, timeout: Duration) -> Result<Node> {
        let client = HttpClientBuilder::default()
            .request_timeout(timeout)
            .build(url)
            .map_err(|e| WalletError::NodeDown {
                chain,
                url: url.to_string(),
                reason: format!("bad endpoint: {}", one_line(e)),
            })?;
        let mut node = Node {
            chain,
            url: url.to_string(),
            info: placeholder_info(),
            client,
        };
        let info = node
            .client
            .chain_info()
            .await
            .map_err(|e| node.read_error(e))?;
        if info.name != chain.node_name() {
            return Err(WalletError::WrongChain {
                chain,
                url: url.to_string(),
                actual: info.name,
            });
        }
        node.info = info;
        Ok(node)
    }

    /// Maps an error of a read call.
    fn read_error(&self, e: ClientError) -> WalletError {
        match e {
            ClientError::Call(obj) => WalletError::Rpc {
                chain: self.chain,
                url: self.url.clone(),
                code: obj.code(),
                message: one_line(obj.message()),
            },
            ClientError::RequestTimeout => WalletError::NodeDown {
                chain: self.chain,
                url: self.url.clone(),
                reason: "no answer before the request timeout".into(),
            },
            other => WalletError::NodeDown {
                chain: self.chain,
                url: self.url.clone(),
                reason: one_line(other),
            },
        }
    }

    /// Balance and nonces of `address`.
    pub async fn account(&self, address: Address) -> Result<AccountView> {
        self.client
            .account(address)
            .await
            .map_err(|e| self.read_error(e))
    }

    /// The fee rule's current parameters.
    pub async fn fee_info(&self) -> Result<FeeInfo> {
        self.client.fee_info().await.map_err(|e| self.read_error(e))
    }

    /// A transaction by hash, `None` if the node does not know it.
    pub async fn transaction(&self, hash: Hash) -> Result<Option<TxLookup>> {
        self.client
            .transaction(hash)
            .await
            .map_err(|e| self.read_error(e))
    }

    /// The peg as this chain sees it.
    pub async fn peg_info(&self) -> Result<rpc_api::types::PegInfo> {
        self.client.peg_info().await.map_err(|e| self.read_error(e))
    }

    /// What this chain knows of a peg transfer.
    pub async fn peg_transfer(&self, id: Hash) -> Result<rpc_api::types::PegTransferView> {
        self.client
            .peg_transfer(id)
            .await
            .map_err(|e| self.read_error(e))
    }

    /// The head's height.
    pub async fn head_number(&self) -> Result<BlockNumber> {
        self.client
            .head()
            .await
            .map(|h| h.number)
            .map_err(|e| self.read_error(e))
    }

    /// Where finality stands on this chain, and why it stalls if it does.
    pub async fn finality_status(&self) -> Result<rpc_api::types::FinalityStatusView> {
        self.client
            .finality_status()
            .await
            .map_err(|e| self.read_error(e))
    }

    /// A canonical block with its transactions.
    pub async fn full_block(&self, number: BlockNumber) -> Result<Option<BlockView>> {
        self.client
            .block_by_number(number, Some(true))
            .await
            .map_err(|e| self.read_error(e))
    }

    /// Submits a signed transaction; a refusal carries the node's code, reason and message.
    pub async fn send(&self, raw: Bytes) -> Result<Hash> {
        self.client
            .send_transaction(raw)
            .await
            .map_err(|e| match e {
                ClientError::Call(obj) => {
                    #[derive(serde::Deserialize)]
                    struct Data {
                        reason: String,
                    }
                    let reason = obj
                        .data()
                        .and_then(|d| serde_json::from_str::<Data>(d.get()).ok())
                        .map(|d| d.reason)
                        .unwrap_or_else(|| format!("error {}", obj.code()));
                    WalletError::Rejected {
                        chain: self.chain,
                        code: obj.code(),
                        reason,
                        message: one_line(obj.message()),
                    }
                }
                other => self.read_error(other),
            })
    }
}

fn placeholder_info() -> ChainInfo {
    ChainInfo {
        name: String::new(),
        chain_id: 0,
        genesis_hash: Hash::ZERO,
        block_time_ms: 0,
        fee_rule: String::new(),
        max_block_weight: 0,
        max_tx_size: 0,
        authorities: Vec::new(),
    }
}
