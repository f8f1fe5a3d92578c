//! The node's HTTP API: health and metrics (open), JSON-RPC calls and queries, REST admin and
//! WebSocket event streams (bearer token, rate limited per client IP).
//!
//! Every REST failure is `{"error":{"code":"<stable_snake_case>","message":"..."}}` with its
//! HTTP status ([`error::ErrorCode`]); JSON-RPC failures are JSON-RPC error objects carrying the
//! same code in `data.code`, always with HTTP 200 once the request reached the JSON-RPC layer
//! (see `jsonrpc.rs`).
//!
//! Routes:
//! - `GET /health`, `GET /metrics`: no token, not rate limited.
//! - `POST /jsonrpc`: `call` and `query`.
//! - `POST|GET /admin/apps`, `POST|GET /admin/contexts`, `GET /admin/contexts/{id}`,
//!   `GET /admin/contexts/{id}/members`, `POST /admin/contexts/{id}/invite`,
//!   `POST /admin/contexts/{id}/remove`, `POST /admin/contexts/join`, `GET /admin/peers`,
//!   `GET /admin/status`.
//! - `GET /ws/contexts/{id}/events`: a WebSocket of the context's events.

mod admin;
mod connection;
pub mod error;
mod extract;
pub mod invitations;
mod jsonrpc;
mod listener;
mod public;
pub mod rate_limit;
mod server;
mod ws;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use error::{ErrorCode, HttpError};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::future::BoxFuture;
use rate_limit::{client_ip, Decision, RateLimiter};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tower::util::MapResponseLayer;

/// Highest `api.max_connections` accepted: far above what one process can hold open, and a
/// clear error for a setting meant as "unlimited".
pub const MAX_API_CONNECTIONS: usize = 1_000_000;

/// The API's settings (`[api]` in the daemon's TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Largest JSON body (JSON-RPC and admin requests), in bytes.
    pub max_json_body_bytes: usize,
    /// Largest WASM module upload, in bytes.
    pub max_wasm_body_bytes: usize,
    /// Events buffered per WebSocket client before it is closed as too slow.
    pub ws_client_buffer_events: usize,
    /// Most API connections open at once; past it the listener stops accepting until one
    /// closes. Keep the process's open-file limit (`ulimit -n`) above it.
    pub max_connections: usize,
    /// Milliseconds a connection has to send a complete request header, from connecting and again
    /// from the end of each response; then it is closed (idle keep-alive connections too).
    pub header_read_timeout_ms: u64,
    /// Milliseconds a write to a client may stay blocked (the client reads nothing) before the
    /// connection is closed. The clock restarts whenever a write makes progress.
    pub write_stall_timeout_ms: u64,
    /// Per-client rate limiting.
    pub rate_limit: RateLimitConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 2528)),
            max_json_body_bytes: 1024 * 1024,
            max_wasm_body_bytes: 16 * 1024 * 1024,
            ws_client_buffer_events: 256,
            max_connections: 2048,
            header_read_timeout_ms: 30_000,
            write_stall_timeout_ms: 30_000,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

impl HttpConfig {
    /// Checks the settings [`serve`] relies on; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_json_body_bytes == 0 || self.max_wasm_body_bytes == 0 {
            return Err("api.max_json_body_bytes and api.max_wasm_body_bytes must be above zero".into());
        }
        if self.ws_client_buffer_events == 0 {
            return Err("api.ws_client_buffer_events must be above zero".into());
        }
        if !(1..=MAX_API_CONNECTIONS).contains(&self.max_connections) {
            return Err(format!("api.max_connections must be 1..={MAX_API_CONNECTIONS}, got {}", self.max_connections));
        }
        if self.header_read_timeout_ms == 0 || self.write_stall_timeout_ms == 0 {
            return Err("api.header_read_timeout_ms and api.write_stall_timeout_ms must be above zero".into());
        }
        let limit = &self.rate_limit;
        for (name, per_s, burst) in [
            ("internal", limit.internal_per_s, limit.internal_burst),
            ("external", limit.external_per_s, limit.external_burst),
        ] {
            if !(per_s.is_finite() && per_s > 0.0) {
                return Err(format!("api.rate_limit.{name}_per_s must be a positive number, got {per_s}"));
            }
            if !(burst.is_finite() && burst >= 1.0) {
                return Err(format!("api.rate_limit.{name}_burst must be at least 1, got {burst}"));
            }
        }
        if limit.max_tracked_clients == 0 {
            return Err("api.rate_limit.max_tracked_clients must be above zero".into());
        }
        for network in &limit.internal_networks {
            network
                .parse::<rate_limit::Cidr>()
                .map_err(|error| format!("api.rate_limit.internal_networks: {error}"))?;
        }
        Ok(())
    }
}

/// Token buckets per client IP, with a roomier class for internal networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off: every authenticated request goes through.
    pub enabled: bool,
    /// Internal clients: tokens per second.
    pub internal_per_s: f64,
    /// Internal clients: bucket size.
    pub internal_burst: f64,
    /// External clients: tokens per second.
    pub external_per_s: f64,
    /// External clients: bucket size.
    pub external_burst: f64,
    /// CIDRs whose clients are internal.
    pub internal_networks: Vec<String>,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` name the real client. From anyone else
    /// those headers are ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most clients tracked at once (the bucket table's bound).
    pub max_tracked_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            internal_per_s: 50.0,
            internal_burst: 100.0,
            external_per_s: 10.0,
            external_burst: 20.0,
            internal_networks: ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"]
                .map(String::from)
                .to_vec(),
            trusted_proxies: Vec::new(),
            max_tracked_clients: 65_536,
        }
    }
}

/// What the API knows of the node's peers (the daemon answers it from the libp2p transport).
pub trait PeerDirectory: Send + Sync + 'static {
    /// Every known peer.
    fn peers(&self) -> BoxFuture<'_, Vec<PeerView>>;

    /// This node's listen addresses, each ending in `/p2p/<id>`: what an invitation carries.
    fn listen_addrs(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async { Vec::new() })
    }

    /// Starts dialling `address` (a multiaddr); `Ok` once the dial started.
    fn dial<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Err(format!("this node cannot dial {address}")) })
    }
}

/// One peer, as `GET /admin/peers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// The rhizome peer id (hex of its public key).
    pub peer_id: String,
    /// The libp2p peer id.
    pub libp2p_id: String,
    /// Known addresses.
    pub addrs: Vec<String>,
    /// A connection is open.
    pub connected: bool,
    /// The transport's health verdict.
    pub healthy: bool,
    /// Since the peer was last heard from, in milliseconds.
    pub last_seen_ms_ago: Option<u64>,
    /// Share of recent requests that succeeded, 0..=1.
    pub success_rate: f64,
}

/// Everything the API serves from.
pub struct ApiState {
    /// The node.
    pub node: rhizome_node::NodeHandle,
    /// Its peers.
    pub peers: Arc<dyn PeerDirectory>,
    /// The bearer token for everything but health and metrics. Empty refuses every request.
    pub admin_token: String,
    /// Metrics, shared with the apply timer.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Settings.
    pub config: HttpConfig,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("node", &self.node).field("config", &self.config).finish_non_exhaustive()
    }
}

/// The state handlers see.
pub(crate) struct Shared {
    pub(crate) api: ApiState,
    /// BLAKE3 of the token: comparing hashes is constant-time (`blake3::Hash`'s `==`) and
    /// leaks not even the token's length. `None` when the token is empty.
    token_hash: Option<blake3::Hash>,
    limiter: Option<RateLimiter>,
    /// Feeds context nonces.
    pub(crate) nonce_counter: AtomicU64,
    /// Set once the server is shutting down; WebSocket sessions close on it.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
}

type SharedState = State<Arc<Shared>>;

/// The API's routes over `state`. Requests need a `ConnectInfo<SocketAddr>` extension (as
/// [`serve`] adds, or `into_make_service_with_connect_info::<SocketAddr>()`): the rate limiter
/// keys on the TCP peer's address.
pub fn router(state: ApiState) -> Router {
    build(state).0
}

fn build(api: ApiState) -> (Router, Arc<Shared>) {
    let config = api.config.clone();
    let token_hash = (!api.admin_token.is_empty()).then(|| blake3::hash(api.admin_token.as_bytes()));
    let limiter = config.rate_limit.enabled.then(|| RateLimiter::new(&config.rate_limit));
    let shared = Arc::new(Shared {
        api,
        token_hash,
        limiter,
        nonce_counter: AtomicU64::new(0),
        shutdown: tokio::sync::watch::Sender::new(false),
    });
    let open = Router::new().route("/health", get(public::health)).route("/metrics", get(public::metrics));
    let guarded = Router::new()
        .route("/jsonrpc", post(jsonrpc::handle))
        .route(
            "/admin/apps",
            get(admin::list_apps)
                .merge(post(admin::install_app).layer(DefaultBodyLimit::max(config.max_wasm_body_bytes))),
        )
        .route("/admin/contexts", get(admin::list_contexts).post(admin::create_context))
        .route("/admin/contexts/join", post(invitations::join_context))
        .route("/admin/contexts/{id}", get(admin::get_context))
        .route("/admin/contexts/{id}/members", get(admin::members))
        .route("/admin/contexts/{id}/invite", post(invitations::invite))
        .route("/admin/contexts/{id}/remove", post(admin::remove_members))
        .route("/admin/peers", get(admin::peers))
        .route("/admin/status", get(admin::status))
        .route("/ws/contexts/{id}/events", get(ws::events))
        .route_layer(middleware::from_fn_with_state(shared.clone(), guard))
        .layer(DefaultBodyLimit::max(config.max_json_body_bytes));
    // A plain response map, not a `from_fn` middleware: it runs on every request, and a map
    // adds no boxed future.
    let counted = shared.clone();
    let count_responses = MapResponseLayer::new(move |response: Response| {
        counted.api.metrics.count_http_response(response.status().as_u16());
        response
    });
    let router = open
        .merge(guarded)
        .fallback(public::not_found)
        .method_not_allowed_fallback(public::method_not_allowed)
        .layer(count_responses)
        .with_state(shared.clone());
    (router, shared)
}

/// Serves the API on `listener` until `shutdown` resolves: then it stops accepting, lets
/// in-flight requests finish, and closes WebSocket sessions (close code 1001). Fails at once
/// if the settings do not validate.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.config.validate().map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let write_stall_timeout = Duration::from_millis(state.config.write_stall_timeout_ms);
    let listener = listener::BoundedListener::new(
        listener,
        state.config.max_connections,
        write_stall_timeout,
        state.metrics.clone(),
    );
    let header_read_timeout = Duration::from_millis(state.config.header_read_timeout_ms);
    let (router, shared) = build(state);
    let signal = async move {
        shutdown.await;
        shared.shutdown.send_replace(true);
    };
    server::run(listener, router, header_read_timeout, signal).await;
    Ok(())
}

/// The guarded routes' gate: the rate limit first, then the bearer token, so failed token
/// guesses spend the guesser's tokens. One middleware rather than two: each `from_fn` layer
/// costs a boxed future per request.
async fn guard(State(shared): SharedState, request: Request, next: Next) -> Response {
    if let Some(refusal) = shared.rate_limited(&request) {
        return refusal;
    }
    if let Err(refusal) = shared.check_token(&request) {
        return refusal.into_response();
    }
    next.run(request).await
}

/// The bearer token a request presents, if any.
fn presented_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

impl Shared {
    fn token_matches(&self, presented: &str) -> bool {
        self.token_hash.is_some_and(|expected| blake3::hash(presented.as_bytes()) == expected)
    }

    fn check_token(&self, request: &Request) -> Result<(), HttpError> {
        match presented_token(request.headers()) {
            Some(token) if self.token_matches(token) => Ok(()),
            Some(_) => Err(HttpError::new(ErrorCode::Unauthorized, "wrong bearer token")),
            None => Err(HttpError::new(ErrorCode::Unauthorized, "missing `Authorization: Bearer <token>`")),
        }
    }

    /// The 429 answer when the client is over its rate; `None` when it may go on.
    fn rate_limited(&self, request: &Request) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        // Without connect info (a router served without it) every client shares one bucket,
        // which fails safe: limited, not open.
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let client = client_ip(peer, request.headers(), &self.api.config.rate_limit.trusted_proxies);
        match limiter.check(client, tokio::time::Instant::now()) {
            Decision::Allowed => None,
            Decision::Limited { retry_after_secs } => {
                self.api.metrics.count_rate_limited();
                let mut error = HttpError::new(
                    ErrorCode::RateLimited,
                    format!("too many requests from {client}; retry in {retry_after_secs} s"),
                );
                error.retry_after_secs = Some(retry_after_secs);
                Some(error.into_response())
            }
        }
    }
}
