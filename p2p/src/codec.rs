//! The SCALE frame codec for request-response protocols: one length-prefixed, size-limited
//! frame each way. The node's sync protocol and the bridge's member statements use it.

use std::io;
use std::marker::PhantomData;

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use parity_scale_codec::{Decode, DecodeAll, Encode};

/// A request-response codec carrying one SCALE value in one length-prefixed frame each way,
/// with a size limit per direction (a frame over it is refused before it is allocated). The
/// sync protocol and the bridge's member statements both use it.
pub struct FrameCodec<Req, Resp> {
    /// Largest request accepted.
    pub max_request_bytes: usize,
    /// Largest response accepted.
    pub max_response_bytes: usize,
    _messages: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> FrameCodec<Req, Resp> {
    /// A codec with these limits.
    pub fn new(max_request_bytes: usize, max_response_bytes: usize) -> Self {
        Self {
            max_request_bytes,
            max_response_bytes,
            _messages: PhantomData,
        }
    }
}

// By hand: a derive would require `Req: Clone` and `Resp: Clone`, which the codec never needs.
impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.max_request_bytes, self.max_response_bytes)
    }
}

impl<Req, Resp> std::fmt::Debug for FrameCodec<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCodec")
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
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

impl<Req, Resp> libp2p::request_response::Codec for FrameCodec<Req, Resp>
where
    Req: Encode + Decode + Send + 'static,
    Resp: Encode + Decode + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Req> {
        decode(&read_frame(io, self.max_request_bytes).await?)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Resp> {
        decode(&read_frame(io, self.max_response_bytes).await?)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Req,
    ) -> io::Result<()> {
        write_frame(io, &req.encode()).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()> {
        write_frame(io, &res.encode()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::executor::block_on;
    use libp2p::futures::io::Cursor;

    fn frame(len: u32, body: &[u8]) -> Cursor<Vec<u8>> {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(body);
        Cursor::new(v)
    }

    #[test]
    fn a_length_prefix_over_the_limit_is_refused_before_anything_is_allocated_or_read() {
        // 2^32 - 1 announced, nothing behind it: refused as invalid from the prefix alone
        // (reading or allocating first would end in an early EOF instead).
        let e = block_on(read_frame(&mut frame(u32::MAX, &[]), 1 << 20)).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("over the limit"), "{e}");
        // One byte over the limit, with the bytes there: still refused.
        let max = 64;
        let e =
            block_on(read_frame(&mut frame(max as u32 + 1, &[0; 65]), max)).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // At the limit: read.
        let got =
            block_on(read_frame(&mut frame(max as u32, &[7; 64]), max)).expect("at the limit");
        assert_eq!(got, vec![7; 64]);
        // A frame shorter than its prefix says is an error, not a hang.
        let e = block_on(read_frame(&mut frame(10, &[1, 2]), max)).expect_err("short");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_frame_that_is_not_exactly_one_value_is_invalid_data() {
        // A vector claiming 2^30 entries with none behind it: refused without allocating them.
        let mut huge = Vec::new();
        parity_scale_codec::Compact(1u32 << 30).encode_to(&mut huge);
        let e = decode::<Vec<[u8; 32]>>(&huge).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // Trailing bytes after one value.
        let e = decode::<u32>(&[1, 0, 0, 0, 9]).expect_err("trailing");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
