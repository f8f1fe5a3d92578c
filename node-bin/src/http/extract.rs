//! Extractors whose failures are our JSON errors rather than axum's plain-text rejections, and
//! hex id parsing.

use super::{ErrorCode, HttpError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use rhizome_core::ContextId;
use serde::de::DeserializeOwned;

/// A JSON body: `bad_json` if it does not parse, `bad_request` if it parses but has the wrong
/// shape, `body_too_large` over the route's limit.
#[derive(Debug)]
pub(super) struct JsonBody<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, HttpError> {
        let bytes = Bytes::from_request(request, state).await.map_err(body_error)?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => HttpError::bad_request(format!("unexpected JSON: {error}")),
            _ => HttpError::new(ErrorCode::BadJson, format!("the body is not valid JSON: {error}")),
        })
    }
}

/// A body that could not be read.
pub(super) fn body_error(rejection: BytesRejection) -> HttpError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        HttpError::new(ErrorCode::BodyTooLarge, "the request body is over this route's size limit")
    } else {
        HttpError::bad_request(format!("reading the body: {}", rejection.body_text()))
    }
}

/// The `{id}` of a `/…/contexts/{id}/…` route.
#[derive(Debug, Clone, Copy)]
pub(super) struct ContextPath(pub(super) ContextId);

impl<S: Send + Sync> FromRequestParts<S> for ContextPath {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| HttpError::bad_request(rejection.body_text()))?;
        Ok(Self(ContextId::from_bytes(parse_id("context", &id)?)))
    }
}

/// 32 bytes from 64 hex characters.
pub(super) fn parse_id(what: &str, text: &str) -> Result<[u8; 32], HttpError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
        let shown: String = text.chars().take(80).collect();
        HttpError::bad_request(format!("{what} must be 64 hex characters, got {shown:?}"))
    })?;
    Ok(bytes)
}

/// Arbitrary bytes from hex.
pub(super) fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, HttpError> {
    hex::decode(text.trim()).map_err(|error| HttpError::bad_request(format!("{what} is not hex: {error}")))
}
