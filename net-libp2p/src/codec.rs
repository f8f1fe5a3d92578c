//! The `/rhizome/sync/1` wire framing: a big-endian u32 length, then that many opaque bytes.
//!
//! The node hands over bytes it already encoded (borsh), so the codec only frames and bounds
//! them. The length is checked before anything is allocated, so a peer announcing a huge frame
//! costs four bytes of reading, not memory.
//!
//! The codec counts what it refuses itself: libp2p does not report a request that failed to
//! read to the behaviour, so the swarm task would never see it.

use crate::metrics::{bump, Counters};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::Codec;
use libp2p::StreamProtocol;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The request/response protocol name.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/rhizome/sync/1");

/// A frame longer than the bound. Carried inside an `io::Error` so the swarm task can tell a
/// refused frame from a broken stream and count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len_bytes} bytes exceeds the bound of {max_bytes}")]
pub(crate) struct FrameTooLarge {
    /// The announced or offered length.
    pub(crate) len_bytes: u64,
    /// The bound.
    pub(crate) max_bytes: usize,
}

/// True if `error` is a refused oversized frame.
#[cfg(test)]
pub(crate) fn is_frame_too_large(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<FrameTooLarge>())
}

/// Length-prefixed opaque bytes, bounded each way.
#[derive(Debug, Clone)]
pub(crate) struct SyncCodec {
    max_request_bytes: usize,
    max_response_bytes: usize,
    counters: Arc<Counters>,
}

impl SyncCodec {
    pub(crate) fn new(max_request_bytes: usize, max_response_bytes: usize, counters: Arc<Counters>) -> Self {
        Self { max_request_bytes, max_response_bytes, counters }
    }
}

fn too_large(len_bytes: u64, max_bytes: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, FrameTooLarge { len_bytes, max_bytes })
}

/// Reads one frame. An oversized frame bumps `too_large_counter`; a frame cut short after its
/// length bumps `decode_errors`. (A stream closed before any byte is a refusal, not an error.)
async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max_bytes: usize,
    too_large_counter: &AtomicU64,
    decode_errors: &AtomicU64,
) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix);
    if u64::from(len) > max_bytes as u64 {
        bump(too_large_counter);
        return Err(too_large(u64::from(len), max_bytes));
    }
    let mut bytes = vec![0u8; len as usize];
    if let Err(error) = io.read_exact(&mut bytes).await {
        bump(decode_errors);
        return Err(error);
    }
    Ok(bytes)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8], max_bytes: usize) -> io::Result<()> {
    let len = match u32::try_from(bytes.len()) {
        Ok(len) if bytes.len() <= max_bytes => len,
        _ => return Err(too_large(bytes.len() as u64, max_bytes)),
    };
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

impl Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request_bytes, &self.counters.inbound_requests_too_large, &self.counters.decode_errors)
            .await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response_bytes, &self.counters.responses_too_large, &self.counters.decode_errors).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, request: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.max_request_bytes).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, response: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.max_response_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn framed(bytes: &[u8]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        block_on(write_frame(&mut out, bytes, usize::MAX)).unwrap();
        out.into_inner()
    }

    fn codec(max_request_bytes: usize, max_response_bytes: usize) -> SyncCodec {
        SyncCodec::new(max_request_bytes, max_response_bytes, Arc::new(Counters::default()))
    }

    #[test]
    fn request_round_trips() {
        let mut codec = codec(16, 16);
        let mut stream = Cursor::new(Vec::new());
        block_on(codec.write_request(&SYNC_PROTOCOL, &mut stream, b"hello".to_vec())).unwrap();
        let mut stream = Cursor::new(stream.into_inner());
        assert_eq!(block_on(codec.read_request(&SYNC_PROTOCOL, &mut stream)).unwrap(), b"hello");
    }

    #[test]
    fn oversized_announced_length_is_refused_before_reading_the_body() {
        let mut codec = codec(4, 4);
        // Announces 4 GiB but carries nothing: refused on the prefix alone.
        let mut stream = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let error = block_on(codec.read_request(&SYNC_PROTOCOL, &mut stream)).unwrap_err();
        assert!(is_frame_too_large(&error));
        assert_eq!(codec.counters.snapshot().inbound_requests_too_large, 1);
    }

    #[test]
    fn oversized_write_is_refused() {
        let mut codec = codec(4, 2);
        let mut stream = Cursor::new(Vec::new());
        let error = block_on(codec.write_response(&SYNC_PROTOCOL, &mut stream, vec![0; 3])).unwrap_err();
        assert!(is_frame_too_large(&error));
        assert!(stream.into_inner().is_empty());
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_panic() {
        let mut codec = codec(16, 16);
        let mut bytes = framed(b"abcdef");
        bytes.truncate(7);
        let error = block_on(codec.read_response(&SYNC_PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!is_frame_too_large(&error));
        assert_eq!(codec.counters.snapshot().decode_errors, 1);
    }

    #[test]
    fn frame_at_the_bound_is_accepted() {
        let mut codec = codec(3, 3);
        let bytes = framed(b"abc");
        assert_eq!(block_on(codec.read_response(&SYNC_PROTOCOL, &mut Cursor::new(bytes))).unwrap(), b"abc");
    }
}
