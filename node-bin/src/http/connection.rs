//! One accepted API connection: its TCP stream, its place under `api.max_connections`, and a
//! bound on how long a write may make no progress.
//!
//! The header read timeout only runs while hyper waits for a request. A client that sends
//! requests and never reads the answers parks hyper in a write instead: once the socket
//! buffers are full nothing moves, and without a bound the connection (and its place) would be
//! held forever. So a write, or a flush, that stays blocked for `api.write_stall_timeout_ms`
//! fails with `TimedOut`, and the connection closes. The clock restarts whenever a write makes
//! progress, so a slow but reading client is not cut. WebSocket sessions write through here too.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

/// An accepted connection; its permit goes back when it is dropped.
pub(super) struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    write_stall_timeout: Duration,
    /// Armed when a write or flush returns `Pending`; cleared when one completes.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Connection {
    pub(super) fn new(stream: TcpStream, permit: OwnedSemaphorePermit, write_stall_timeout: Duration) -> Self {
        Self { stream, _permit: permit, write_stall_timeout, stalled: None }
    }

    /// Turns Nagle's algorithm off. With it, each small response waits until the previous one
    /// is acknowledged: a keep-alive client then gets a few thousand answers a second, not
    /// tens of thousands.
    pub(super) fn set_nodelay(&self) {
        if let Err(error) = self.stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on an API connection");
        }
    }

    /// Passes a write's outcome through, timing how long writes have been blocked.
    fn watch_write<T>(&mut self, cx: &mut Context<'_>, outcome: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.stalled = None;
            return outcome;
        }
        let timeout = self.write_stall_timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                let message = format!("the client read nothing for {} ms", timeout.as_millis());
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch_write(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch_write(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch_write(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
