//! What an operator sees: the status snapshot (per-direction backlog, each pending transfer
//! with its signatures and age, lag behind both heads, peers), served as `GET /status`,
//! `GET /health`, `GET /metrics` and the JSON-RPC method `bridge_status`, which
//! `bridge status` calls through the client jsonrpsee generates from [`BridgeApiClient`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use jsonrpsee::core::async_trait;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::{HttpResponse, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use primitives::peg::Direction;
use primitives::types::{Address, Amount, BlockNumber, Hash};
use serde::{Deserialize, Serialize};
use service::http::{json_response, metrics_response, response, GetRoutes, GetRoutesLayer};
use tokio::sync::Notify;

use crate::attest::Federation;
use crate::error::{BridgeError, Result};
use crate::metrics::{direction_name, Metrics};
use crate::network::{NetHandle, PeerView};
use crate::store::{EventState, Store, Submission};

/// The member's status API, namespace `bridge`.
#[rpc(server, client, namespace = "bridge")]
pub trait BridgeApi {
    /// The member's status snapshot (the same JSON as `GET /status`).
    #[method(name = "status")]
    async fn status(&self) -> std::result::Result<MemberStatus, ErrorObjectOwned>;
}

/// A payout this member saw in a destination block that is not final yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutProgress {
    /// The destination block holding the Mint or Release.
    pub block_number: BlockNumber,
    /// The payout transaction.
    pub tx_hash: Option<Hash>,
    /// Its depth when last looked at (the block itself counts).
    pub confirmations: u64,
    /// The depth at which it counts as paid (the destination chain's confirmations).
    pub required: u64,
}

/// One transfer this member has not seen paid (final) yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransfer {
    /// Transfer id (the Lock or Burn hash).
    pub id: Hash,
    /// `seen` (waiting for depth) or `signed`.
    pub state: EventState,
    /// Who is paid.
    pub recipient: Address,
    /// What the payout pays.
    pub payout_amount: Amount,
    /// Source block height.
    pub source_height: BlockNumber,
    /// Matching member signatures held (ours included).
    pub signatures: usize,
    /// Signatures needed.
    pub threshold: u32,
    /// Milliseconds since first seen.
    pub age_ms: u64,
    /// The member that submits first.
    pub designated_submitter: Option<Address>,
    /// This member's last submission, if any.
    pub submission: Option<Submission>,
    /// The payout, when a destination block holds it but it is not final yet.
    #[serde(default)]
    pub payout: Option<PayoutProgress>,
    /// What a `seen` transfer waits for, when it is finality ("waiting for finality: head
    /// 120, finalized 117"): no member signs before its block is final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// One direction's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStatus {
    /// `deposits` (main -> side) or `withdrawals` (side -> main).
    pub direction: String,
    /// The source chain's head, as last seen.
    pub source_head: Option<BlockNumber>,
    /// The source chain's last final block, as last seen.
    #[serde(default)]
    pub source_finalized: Option<BlockNumber>,
    /// The last scanned source block.
    pub cursor: Option<BlockNumber>,
    /// Source head minus cursor.
    pub lag_blocks: Option<u64>,
    /// The destination chain's head, as last seen.
    pub destination_head: Option<BlockNumber>,
    /// Unpaid transfers.
    pub backlog: usize,
    /// Each of them.
    pub pending: Vec<PendingTransfer>,
    /// The last error of this direction's worker, if its last step failed.
    pub last_error: Option<String>,
}

/// The member's status snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// This member's address.
    pub member: Address,
    /// The peg domain.
    pub domain: Hash,
    /// Members in genesis order.
    pub members: Vec<Address>,
    /// Signatures needed.
    pub threshold: u32,
    /// Deposits and withdrawals.
    pub directions: Vec<DirectionStatus>,
    /// This member's p2p peer id.
    pub peer_id: String,
    /// Connected members.
    pub peers: Vec<PeerView>,
}

/// Progress the workers report for status (kept in memory, held only briefly).
#[derive(Debug, Default, Clone)]
pub struct DirectionBoard {
    /// Source head.
    pub source_head: Option<BlockNumber>,
    /// The source chain's last final block.
    pub source_finalized: Option<BlockNumber>,
    /// Cursor height.
    pub cursor: Option<BlockNumber>,
    /// Destination head.
    pub destination_head: Option<BlockNumber>,
    /// Last error, cleared by a good step.
    pub last_error: Option<String>,
    /// Payouts seen in destination blocks, not final yet, by transfer id.
    pub payouts: HashMap<Hash, PayoutProgress>,
}

/// What the workers share with the status server.
#[derive(Debug)]
pub struct Shared {
    /// The member's store.
    pub store: Arc<Store>,
    /// The federation.
    pub federation: Federation,
    /// This member.
    pub member: Address,
    /// The network handle (peers).
    pub net: NetHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-direction progress: [deposits, withdrawals].
    pub board: Mutex<[DirectionBoard; 2]>,
    /// Signalled when a watcher records new transfers (early attestations may now be filed).
    pub recorded: Arc<Notify>,
}

/// Index of a direction in [`Shared::board`].
pub fn board_index(d: Direction) -> usize {
    match d {
        Direction::MainToSide => 0,
        Direction::SideToMain => 1,
    }
}

impl Shared {
    /// Updates one direction's board.
    pub fn update_board(&self, d: Direction, f: impl FnOnce(&mut DirectionBoard)) {
        if let Ok(mut b) = self.board.lock() {
            f(&mut b[board_index(d)]);
        }
    }

    /// The status snapshot, from the store and the boards.
    pub fn status(&self, now_ms: u64) -> Result<MemberStatus> {
        let boards = self.board.lock().map(|b| b.clone()).unwrap_or_default();
        let mut directions = Vec::new();
        for d in [Direction::MainToSide, Direction::SideToMain] {
            let b = &boards[board_index(d)];
            let mut pending = Vec::new();
            for e in self.store.open_events(Some(d))? {
                let signatures = match self.store.own_signature(&e.id)? {
                    Some(own) => self.store.attestations(&own.message_hash)?.len(),
                    None => 0,
                };
                pending.push(PendingTransfer {
                    id: e.id,
                    state: e.state,
                    recipient: e.recipient,
                    payout_amount: e.payout_amount,
                    source_height: e.source_height,
                    signatures,
                    threshold: self.federation.threshold,
                    age_ms: now_ms.saturating_sub(e.seen_ms),
                    designated_submitter: self.federation.designated_submitter(&e.id),
                    submission: self.store.submission(&e.id)?,
                    payout: b.payouts.get(&e.id).copied(),
                    waiting: waiting_for(e.state, e.source_height, b),
                });
            }
            directions.push(DirectionStatus {
                direction: direction_name(d).to_string(),
                source_head: b.source_head,
                source_finalized: b.source_finalized,
                cursor: b.cursor,
                lag_blocks: b
                    .source_head
                    .zip(b.cursor)
                    .map(|(h, c)| h.saturating_sub(c)),
                destination_head: b.destination_head,
                backlog: pending.len(),
                pending,
                last_error: b.last_error.clone(),
            });
        }
        Ok(MemberStatus {
            member: self.member,
            domain: self.federation.domain,
            members: self.federation.members.clone(),
            threshold: self.federation.threshold,
            directions,
            peer_id: self.net.peer_id.to_string(),
            peers: self.net.peers(),
        })
    }
}

/// Why a transfer seen at `height` is not signed yet, when the reason is finality.
fn waiting_for(state: EventState, height: BlockNumber, b: &DirectionBoard) -> Option<String> {
    if state != EventState::Seen {
        return None;
    }
    match (b.source_head, b.source_finalized) {
        (Some(head), Some(f)) if height > f => {
            Some(format!("waiting for finality: head {head}, finalized {f}"))
        }
        (Some(head), None) if height <= head => {
            Some("waiting for finality: the source node reports none".into())
        }
        _ => None,
    }
}

/// A readable multi-line rendering of a status snapshot.
pub fn render(s: &MemberStatus) -> String {
    let mut out = format!(
        "member {} ({} of {} members needed), peer id {}, {} peers\n",
        s.member,
        s.threshold,
        s.members.len(),
        s.peer_id,
        s.peers.len()
    );
    for d in &s.directions {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "{}: source head {} (finalized {}), cursor {} (lag {}), destination head {}, backlog {}\n",
            d.direction,
            opt(d.source_head),
            opt(d.source_finalized),
            opt(d.cursor),
            opt(d.lag_blocks),
            opt(d.destination_head),
            d.backlog
        ));
        if let Some(e) = &d.last_error {
            out.push_str(&format!("  last error: {e}\n"));
        }
        for p in &d.pending {
            out.push_str(&format!(
                "  {} {:?} {} -> {} signatures {}/{} age {:.1}s{}{}{}\n",
                p.id,
                p.state,
                p.payout_amount.to_coins_string(),
                p.recipient,
                p.signatures,
                p.threshold,
                p.age_ms as f64 / 1000.0,
                p.submission
                    .as_ref()
                    .map(|s| format!(" submitted x{} ({})", s.attempts, s.outcome))
                    .unwrap_or_default(),
                p.payout
                    .as_ref()
                    .map(|x| format!(
                        " payout in block {} ({}/{} confirmations)",
                        x.block_number, x.confirmations, x.required
                    ))
                    .unwrap_or_default(),
                p.waiting
                    .as_ref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
    }
    for p in &s.peers {
        match p.member {
            Some(m) => out.push_str(&format!(
                "peer {} at {} (member {m})\n",
                p.peer_id, p.address
            )),
            None => out.push_str(&format!(
                "peer {} at {} (not a proven member)\n",
                p.peer_id, p.address
            )),
        }
    }
    out
}

#[derive(Debug, Clone)]
struct StatusRpc {
    shared: Arc<Shared>,
}

#[async_trait]
impl BridgeApiServer for StatusRpc {
    async fn status(&self) -> std::result::Result<MemberStatus, ErrorObjectOwned> {
        self.shared
            .status(service::clock::now_ms())
            .map_err(|e| ErrorObjectOwned::owned(-32603, e.to_string(), None::<()>))
    }
}

/// The member's `GET /health`, `/metrics` and `/status`, served beside the JSON-RPC method.
#[derive(Debug, Clone)]
pub struct StatusRoutes {
    shared: Arc<Shared>,
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    member: Address,
    peers: usize,
    errors: Vec<String>,
}

impl GetRoutes for StatusRoutes {
    fn get(&self, path: &str) -> Option<HttpResponse> {
        match path {
            "/health" => {
                let errors: Vec<String> = self
                    .shared
                    .board
                    .lock()
                    .map(|b| b.iter().filter_map(|d| d.last_error.clone()).collect())
                    .unwrap_or_default();
                Some(json_response(&HealthBody {
                    status: if errors.is_empty() { "ok" } else { "degraded" },
                    member: self.shared.member,
                    peers: self.shared.net.peers().len(),
                    errors,
                }))
            }
            "/metrics" => Some(metrics_response(self.shared.metrics.encode())),
            "/status" => Some(match self.shared.status(service::clock::now_ms()) {
                Ok(s) => json_response(&s),
                Err(e) => response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    e.to_string(),
                ),
            }),
            _ => None,
        }
    }
}

/// Binds the status server; returns its address and handle.
pub async fn serve(addr: SocketAddr, shared: Arc<Shared>) -> Result<(SocketAddr, ServerHandle)> {
    let http = tower::ServiceBuilder::new().layer(GetRoutesLayer::new(StatusRoutes {
        shared: shared.clone(),
    }));
    let server = jsonrpsee::server::Server::builder()
        .set_http_middleware(http)
        .build(addr)
        .await
        .map_err(|error| BridgeError::Io {
            what: format!("binding the status server to {addr}"),
            error,
        })?;
    let bound = server.local_addr().map_err(|error| BridgeError::Io {
        what: "reading the status server address".into(),
        error,
    })?;
    let module = BridgeApiServer::into_rpc(StatusRpc { shared });
    Ok((bound, server.start(module)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seen_transfer_says_it_waits_for_finality() {
        let b = DirectionBoard {
            source_head: Some(120),
            source_finalized: Some(117),
            ..DirectionBoard::default()
        };
        assert_eq!(
            waiting_for(EventState::Seen, 118, &b).as_deref(),
            Some("waiting for finality: head 120, finalized 117")
        );
        assert_eq!(
            waiting_for(EventState::Seen, 117, &b),
            None,
            "final: not waiting on it"
        );
        assert_eq!(waiting_for(EventState::Signed, 118, &b), None);
    }
}
