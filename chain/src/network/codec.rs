//! The sync protocol's messages, carried by the shared frame codec ([`p2p::codec::FrameCodec`]).

use p2p::codec::FrameCodec;
use parity_scale_codec::{Decode, Encode};

use primitives::block::Block;
use primitives::types::{BlockNumber, Hash};

/// Largest sync request accepted (a locator of a few dozen hashes).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// "Send me your canonical blocks after the first of these hashes you have."
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SyncRequest {
    /// Our canonical hashes at heights head, head-1, head-2, head-4, ... genesis.
    pub locator: Vec<Hash>,
    /// Most blocks wanted.
    pub max_blocks: u32,
}

/// The answer: the responder's head and the blocks following the fork point.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SyncResponse {
    /// The responder's head height.
    pub head: BlockNumber,
    /// Canonical blocks after the first locator hash the responder knows, in order.
    pub blocks: Vec<Block>,
}

/// The codec for [`SyncRequest`] / [`SyncResponse`].
pub type SyncCodec = FrameCodec<SyncRequest, SyncResponse>;
