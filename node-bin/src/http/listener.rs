//! The API's listener, with a bound on open connections.
//!
//! Every connection holds a file descriptor and hyper's buffers for as long as the client keeps
//! it open, and the rate limiter only sees requests: idle connections cost it nothing. So the
//! listener holds a permit per open connection (`api.max_connections`) and stops accepting
//! while none is free. Clients past the bound wait in the kernel's accept queue rather than
//! taking descriptors the database and the peer-to-peer transport need. Each time the bound is
//! reached is counted (`rhizome_http_connection_limit_reached`).

use super::connection::Connection;
use crate::metrics::Metrics;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pause after an accept error that is not about one connection (out of descriptors, say), so
/// a persistent one does not spin the loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A TCP listener that keeps at most a fixed number of connections open.
pub(super) struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    /// Given to each connection: see [`Connection`].
    write_stall_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl BoundedListener {
    /// `max_connections` must be at most [`Semaphore::MAX_PERMITS`] (the API's settings check
    /// a far lower bound).
    pub(super) fn new(
        inner: TcpListener,
        max_connections: usize,
        write_stall_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS)));
        Self { inner, permits, write_stall_timeout, metrics }
    }

    async fn permit(&self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return permit;
        }
        self.metrics.count_connection_limit_reached();
        tracing::debug!("API connection limit reached; waiting for a connection to close");
        match self.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed; if it were, accept nothing more.
            Err(_) => std::future::pending().await,
        }
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let permit = self.permit().await;
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => return (Connection::new(stream, permit, self.write_stall_timeout), peer),
                // One connection's trouble: go on with the next.
                Err(error) if is_connection_error(&error) => {}
                Err(error) => {
                    tracing::warn!(%error, "accepting an API connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}
