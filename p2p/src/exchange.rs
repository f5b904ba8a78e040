//! A request-response event flattened to what a protocol's handler acts on, so each network
//! matches on four cases instead of libp2p's nested event and message enums.

use libp2p::request_response::{self, InboundFailure, OutboundFailure, ResponseChannel};
use libp2p::PeerId;

/// One request-response event, as a handler sees it.
#[derive(Debug)]
pub enum Exchange<Req, Resp> {
    /// A peer asks; answer through `channel` (dropping it tells the peer there is no answer).
    Request {
        /// Who asks.
        peer: PeerId,
        /// What it asks.
        request: Req,
        /// Where the answer goes.
        channel: ResponseChannel<Resp>,
    },
    /// A peer answered one of our requests.
    Response {
        /// Who answered.
        peer: PeerId,
        /// Its answer.
        response: Resp,
    },
    /// One of our requests failed (no answer, refused protocol, connection lost).
    OutboundFailure {
        /// To whom.
        peer: PeerId,
        /// Why.
        error: OutboundFailure,
    },
    /// A peer's request failed on our side (undecodable, over the limit, connection lost).
    InboundFailure {
        /// From whom.
        peer: PeerId,
        /// Why.
        error: InboundFailure,
    },
    /// Our answer went out: nothing to do.
    ResponseSent,
}

impl<Req, Resp> From<request_response::Event<Req, Resp>> for Exchange<Req, Resp> {
    fn from(ev: request_response::Event<Req, Resp>) -> Self {
        use request_response::{Event, Message};
        match ev {
            Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => Exchange::Request {
                    peer,
                    request,
                    channel,
                },
                Message::Response { response, .. } => Exchange::Response { peer, response },
            },
            Event::OutboundFailure { peer, error, .. } => Exchange::OutboundFailure { peer, error },
            Event::InboundFailure { peer, error, .. } => Exchange::InboundFailure { peer, error },
            Event::ResponseSent { .. } => Exchange::ResponseSent,
        }
    }
}
