//! In-process nodes for the API's tests: a network with nobody on it, a fixed clock, an
//! in-memory database, and requests that carry the TCP peer the rate limiter keys on.

use super::{ApiState, HttpConfig, PeerDirectory, PeerView};
use crate::metrics::Metrics;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use futures::future::BoxFuture;
use rhizome_core::{ContextId, InboundRequestId, Keypair, PeerId, RequestId, Timestamp};
use rhizome_node::{Clock, NodeConfig, NodeHandle, NodeParts, Transport, TransportEvent};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

/// The admin token of every test API.
pub(crate) const TOKEN: &str = "test-token-0123456789";

/// A network with nobody on it.
pub(crate) struct NullTransport;

impl Transport for NullTransport {
    fn subscribe(&mut self, _context: ContextId) {}
    fn unsubscribe(&mut self, _context: ContextId) {}
    fn publish(&mut self, _context: ContextId, _bytes: Vec<u8>) {}
    fn request(&mut self, _to: PeerId, _id: RequestId, _bytes: Vec<u8>, _timeout: Duration) {}
    fn respond(&mut self, _to: PeerId, _id: InboundRequestId, _bytes: Vec<u8>) {}
    fn report_gossip(&mut self, _token: rhizome_node::GossipToken, _verdict: rhizome_core::GossipVerdict) {}
    async fn next_event(&mut self) -> Option<TransportEvent> {
        std::future::pending().await
    }
    fn try_next_event(&mut self) -> Option<TransportEvent> {
        None
    }
}

/// A clock that never moves: no timer fires during a test.
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(1_000)
    }
    fn wall_ms(&self) -> u64 {
        1_000_000
    }
}

/// A fixed list of peers.
pub(crate) struct StaticPeers(pub(crate) Vec<PeerView>);

impl PeerDirectory for StaticPeers {
    fn peers(&self) -> BoxFuture<'_, Vec<PeerView>> {
        Box::pin(async move { self.0.clone() })
    }
}

/// The kv-store app module.
pub(crate) fn kv_store() -> Vec<u8> {
    app_module("kv_store")
}

/// The hostile app module: every way an app can misbehave.
pub(crate) fn hostile() -> Vec<u8> {
    app_module("hostile")
}

/// A module `cargo xtask apps` built into `target/wasm`.
fn app_module(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/wasm/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}; run `cargo xtask apps` first", path.display()))
}

/// Starts a node with its own key (from `seed`) and an in-memory database.
pub(crate) fn start_node(seed: u8) -> NodeHandle {
    let db = redb::Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .expect("in-memory database");
    let parts = NodeParts {
        config: NodeConfig::default(),
        keypair: Keypair::from_secret_bytes([seed; 32]),
        rng_seed: u64::from(seed),
        transport: NullTransport,
        clock: Arc::new(FixedClock),
        db,
        wasm: None,
        observer: None,
        committer: None,
    };
    let (handle, task) = rhizome_node::start(parts).expect("start node");
    tokio::spawn(async move {
        let _ = task.run().await;
    });
    handle
}

/// Settings for tests: no rate limit unless a test turns it on.
pub(crate) fn config() -> HttpConfig {
    let mut config = HttpConfig::default();
    config.rate_limit.enabled = false;
    config
}

/// The API state over `node`.
pub(crate) fn state(node: NodeHandle, config: HttpConfig) -> ApiState {
    ApiState {
        node,
        peers: Arc::new(StaticPeers(Vec::new())),
        admin_token: TOKEN.to_owned(),
        metrics: Arc::new(Metrics::new()),
        config,
    }
}

/// A request from `peer`, with the admin token unless `token` says otherwise.
pub(crate) fn request_from(
    peer: SocketAddr,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = builder.body(body.into()).expect("request");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// A request from a loopback client with the admin token.
pub(crate) fn request(method: Method, uri: &str, body: impl Into<Body>) -> Request<Body> {
    request_from(SocketAddr::from(([127, 0, 0, 1], 40_000)), method, uri, Some(TOKEN), body)
}

/// A JSON request from a loopback client with the admin token.
pub(crate) fn json_request(method: Method, uri: &str, body: &Value) -> Request<Body> {
    let mut request = request(method, uri, body.to_string());
    request.headers_mut().insert("content-type", "application/json".parse().expect("header"));
    request
}

/// Sends `request` through `router`: status, headers and the body as JSON (a string if it is
/// not JSON).
pub(crate) async fn send(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

/// A JSON-RPC request body.
pub(crate) fn rpc(method: &str, params: Value) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}
