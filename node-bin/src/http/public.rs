//! The open endpoints (health, metrics) and the JSON answers for unknown routes and methods.

use super::{ErrorCode, HttpError, SharedState};
use crate::metrics::Detail;
use axum::extract::Request;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a scrape waits for the node's figures before rendering the last ones it has.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /health`: no node round trip, so it stays cheap under load and answers even when the
/// node loop is busy.
pub(super) async fn health(State(shared): SharedState) -> Response {
    let (status, body) = if shared.api.node.is_stopped() {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"stopping"}"#)
    } else {
        (StatusCode::OK, r#"{"status":"ok"}"#)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /metrics`: Prometheus (OpenMetrics) text. Open without a token, with the per-context
/// gauges as totals; series that name a context need the API token. A scrape that presents a
/// token goes through the guarded routes' gate (the rate limit, then the token: a wrong one is
/// 401), so `/metrics` is no unlimited oracle for guessing the token.
pub(super) async fn metrics(State(shared): SharedState, request: Request) -> Response {
    let detail = if request.headers().contains_key(header::AUTHORIZATION) {
        if let Some(refusal) = shared.rate_limited(&request) {
            return refusal;
        }
        if let Err(refusal) = shared.check_token(&request) {
            return refusal.into_response();
        }
        Detail::PerContext
    } else {
        Detail::Totals
    };
    let status = tokio::time::timeout(STATUS_TIMEOUT, shared.api.node.status()).await.ok().and_then(Result::ok);
    let text = shared.api.metrics.render(status.as_ref(), detail);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// Any unknown route.
pub(super) async fn not_found() -> HttpError {
    HttpError::new(ErrorCode::NotFound, "no such route")
}

/// A known route with the wrong method.
pub(super) async fn method_not_allowed() -> HttpError {
    HttpError::new(ErrorCode::MethodNotAllowed, "this route does not take that method")
}
