//! The sync protocol's messages and their SCALE codec (length-prefixed, size-limited).

use std::io;

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::block::Block;
use crate::types::{BlockNumber, Hash};

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

/// The SCALE codec for [`SyncRequest`] / [`SyncResponse`].
#[derive(Debug, Clone)]
pub struct SyncCodec {
    /// Largest response accepted.
    pub max_response_bytes: usize,
}

/// Reads one length-prefixed frame (u32 little-endian length, then the bytes), refusing one
/// over `max` bytes before allocating it.
pub async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the limit {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes `bytes` as one length-prefixed frame and closes the stream.
pub async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

/// Decodes exactly `bytes` as SCALE, as an I/O error if they are not one `T`.
pub fn decode<T: Decode>(bytes: &[u8]) -> io::Result<T> {
    T::decode_all(&mut &bytes[..])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncRequest> {
        decode(&read_frame(io, MAX_REQUEST_BYTES).await?)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncResponse> {
        decode(&read_frame(io, self.max_response_bytes).await?)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()> {
        write_frame(io, &req.encode()).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()> {
        write_frame(io, &res.encode()).await
    }
}
