//! The API's errors: one enum of stable codes, each with its HTTP status and JSON-RPC code, and
//! the JSON body every failed REST request gets: `{"error":{"code":"...","message":"..."}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rhizome_node::ApiError;
use serde_json::json;

/// A stable, machine-readable error code. The strings never change meaning; clients match on
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not the JSON the endpoint expects.
    BadJson,
    /// The body is over the endpoint's size limit.
    BodyTooLarge,
    /// No valid `Authorization: Bearer <token>`.
    Unauthorized,
    /// The client's token bucket is empty.
    RateLimited,
    /// The node does not replicate this context.
    UnknownContext,
    /// No app with this id is installed here.
    UnknownApp,
    /// The context is already joined.
    AlreadyJoined,
    /// The app refused the call or failed.
    CallFailed,
    /// A query tried to write.
    QueryWrote,
    /// The node refused (not a member, a limit...).
    Refused,
    /// No such route or method.
    NotFound,
    /// The route exists, not with this HTTP method.
    MethodNotAllowed,
    /// The node loop has stopped.
    NodeStopped,
    /// The request is well-formed JSON but asks for something invalid.
    BadRequest,
    /// A bug or an unexpected failure on our side.
    Internal,
}

impl ErrorCode {
    /// The stable snake_case string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::BodyTooLarge => "body_too_large",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::UnknownContext => "unknown_context",
            Self::UnknownApp => "unknown_app",
            Self::AlreadyJoined => "already_joined",
            Self::CallFailed => "call_failed",
            Self::QueryWrote => "query_wrote",
            Self::Refused => "refused",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NodeStopped => "node_stopped",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status a REST request failing this way gets.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadJson | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::UnknownContext | Self::UnknownApp | Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyJoined | Self::QueryWrote => StatusCode::CONFLICT,
            Self::CallFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Refused => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NodeStopped => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC error code: the reserved codes for protocol errors, the server range
    /// (-32000 and below) for the node's own refusals.
    pub const fn jsonrpc_code(self) -> i64 {
        match self {
            Self::BadJson => -32700,
            Self::BadRequest => -32602,
            Self::NotFound => -32601,
            Self::Internal => -32603,
            Self::UnknownContext => -32001,
            Self::UnknownApp => -32002,
            Self::AlreadyJoined => -32003,
            Self::CallFailed => -32004,
            Self::QueryWrote => -32005,
            Self::Refused => -32006,
            Self::NodeStopped => -32007,
            Self::BodyTooLarge => -32008,
            Self::Unauthorized => -32009,
            Self::RateLimited => -32010,
            Self::MethodNotAllowed => -32011,
        }
    }
}

/// A failed request: a code and a human-readable message, plus the seconds to wait for
/// [`ErrorCode::RateLimited`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// `Retry-After`, in whole seconds.
    pub retry_after_secs: Option<u64>,
}

impl HttpError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after_secs: None }
    }

    /// [`ErrorCode::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code.as_str(), "message": self.message}})
    }
}

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        let code = match &error {
            ApiError::UnknownContext(_) => ErrorCode::UnknownContext,
            ApiError::UnknownApp => ErrorCode::UnknownApp,
            ApiError::AlreadyJoined(_) => ErrorCode::AlreadyJoined,
            ApiError::Call(_) => ErrorCode::CallFailed,
            ApiError::QueryWrote(_) => ErrorCode::QueryWrote,
            ApiError::Refused(_) => ErrorCode::Refused,
            ApiError::Stopped => ErrorCode::NodeStopped,
        };
        Self::new(code, error.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.code.status(), axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_in_all_three_spaces() {
        let all = [
            ErrorCode::BadJson,
            ErrorCode::BodyTooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::RateLimited,
            ErrorCode::UnknownContext,
            ErrorCode::UnknownApp,
            ErrorCode::AlreadyJoined,
            ErrorCode::CallFailed,
            ErrorCode::QueryWrote,
            ErrorCode::Refused,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::NodeStopped,
            ErrorCode::BadRequest,
            ErrorCode::Internal,
        ];
        let names: std::collections::BTreeSet<_> = all.iter().map(|code| code.as_str()).collect();
        let rpc: std::collections::BTreeSet<_> = all.iter().map(|code| code.jsonrpc_code()).collect();
        assert_eq!((names.len(), rpc.len()), (all.len(), all.len()));
        assert!(names.iter().all(|name| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
