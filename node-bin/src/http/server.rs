//! The API's connection loop: HTTP/1.1 over the bounded listener, with a timeout on reading a
//! request's header, and a graceful shutdown.
//!
//! `axum::serve` sets no timer on its connections, so a client could hold one open forever
//! without finishing a request (slowloris), and with `api.max_connections` a few hundred such
//! clients would lock everyone else out. Here each connection gets `api.header_read_timeout_ms`:
//! from connecting, and again from the end of each response, the client has that long to send a
//! complete request header, or the connection is closed. A request being answered, and a
//! WebSocket once upgraded, are not limited by it.

use super::listener::BoundedListener;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener as _;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until `shutdown` resolves. Then it stops accepting, asks every
/// connection to close once its request in flight is answered, and returns when all have.
pub(super) async fn run(
    mut listener: BoundedListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    // Dropped to ask the connections to close; `closed()` then waits for the last of them.
    let (stop_connections, connection_stopped) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (connection, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        connection.set_nodelay();
        // The rate limiter keys on the TCP peer, as `into_make_service_with_connect_info` would
        // give it.
        let service = router.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection =
            builder.serve_connection(TokioIo::new(connection), TowerToHyperService::new(service)).with_upgrades();
        let mut stop = connection_stopped.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "API connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed() => connection.as_mut().graceful_shutdown(),
            }
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "API connection ended with an error while closing");
            }
        });
    }
    drop(listener);
    drop(connection_stopped);
    stop_connections.send_replace(());
    // `changed()` in each connection task sees the value sent above; `closed()` resolves once
    // every task has dropped its receiver.
    stop_connections.closed().await;
}
