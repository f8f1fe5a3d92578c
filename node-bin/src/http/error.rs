//! The API's errors: one enum of stable codes, each with its HTTP status and JSON-RPC code, and
//! the JSON body every failed REST request gets: `{"error":{"code":"...","message":"..."}}`.
//! A failed call gets the code of its class ([`ErrorCode::of_call`]), so a client can tell a
//! missing method from a call that ran out of fuel.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rhizome_node::ApiError;
use rhizome_runtime::CallError;
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
    /// The app has no such method.
    NoSuchMethod,
    /// The call's arguments have no borsh form (the API converts them before any app runs), or
    /// the app could not decode its input as the method's arguments.
    BadArgs,
    /// The call used all its fuel.
    OutOfFuel,
    /// The call tried to grow its memory past the limit.
    OutOfMemory,
    /// The call broke a bound (input, return, value, path, actions, events).
    LimitExceeded,
    /// The app aborted the call (an `Err` or a panic in the guest; the message says why).
    Aborted,
    /// The app trapped (unreachable, division by zero, stack overflow...).
    Trap,
    /// The app passed the host a pointer outside its memory, or malformed ABI data.
    BadAbi,
    /// The module is larger than the node installs.
    ModuleTooLarge,
    /// The module does not compile, does not link against the rhizome ABI, or traps when
    /// instantiated.
    InvalidModule,
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
    /// The invitation's signature does not verify under the inviter it names (tampered with,
    /// or not signed by that inviter).
    InvitationForged,
    /// The invitation's expiry has passed.
    InvitationExpired,
    /// This node already joined with this invitation.
    InvitationReplayed,
    /// The invitation is addressed to another node's key.
    InvitationNotForThisNode,
    /// The text is no invitation this build reads (not one, damaged, too large, another
    /// version, or a key that does not open).
    InvitationMalformed,
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
            Self::NoSuchMethod => "no_such_method",
            Self::BadArgs => "bad_args",
            Self::OutOfFuel => "out_of_fuel",
            Self::OutOfMemory => "out_of_memory",
            Self::LimitExceeded => "limit_exceeded",
            Self::Aborted => "aborted",
            Self::Trap => "trap",
            Self::BadAbi => "bad_abi",
            Self::ModuleTooLarge => "module_too_large",
            Self::InvalidModule => "invalid_module",
            Self::QueryWrote => "query_wrote",
            Self::Refused => "refused",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NodeStopped => "node_stopped",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal",
            Self::InvitationForged => "invitation_forged",
            Self::InvitationExpired => "invitation_expired",
            Self::InvitationReplayed => "invitation_replayed",
            Self::InvitationNotForThisNode => "invitation_not_for_this_node",
            Self::InvitationMalformed => "invitation_malformed",
        }
    }

    /// The HTTP status a REST request failing this way gets.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadJson | Self::BadRequest | Self::BadArgs | Self::InvitationMalformed => StatusCode::BAD_REQUEST,
            Self::InvitationForged | Self::InvitationNotForThisNode => StatusCode::FORBIDDEN,
            Self::InvitationExpired => StatusCode::GONE,
            Self::InvitationReplayed => StatusCode::CONFLICT,
            Self::BodyTooLarge | Self::ModuleTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::UnknownContext | Self::UnknownApp | Self::NotFound | Self::NoSuchMethod => StatusCode::NOT_FOUND,
            Self::AlreadyJoined | Self::QueryWrote => StatusCode::CONFLICT,
            Self::OutOfFuel
            | Self::OutOfMemory
            | Self::LimitExceeded
            | Self::Aborted
            | Self::Trap
            | Self::BadAbi
            | Self::InvalidModule => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Refused => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NodeStopped => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC error code: the reserved codes for protocol errors, the server range
    /// (-32000 and below) for the node's own refusals. -32004 (once `call_failed`, for every
    /// failed call) is retired rather than reused, so an old client never misreads it.
    pub const fn jsonrpc_code(self) -> i64 {
        match self {
            Self::BadJson => -32700,
            Self::BadRequest => -32602,
            Self::NotFound => -32601,
            Self::Internal => -32603,
            Self::UnknownContext => -32001,
            Self::UnknownApp => -32002,
            Self::AlreadyJoined => -32003,
            Self::QueryWrote => -32005,
            Self::Refused => -32006,
            Self::NodeStopped => -32007,
            Self::BodyTooLarge => -32008,
            Self::Unauthorized => -32009,
            Self::RateLimited => -32010,
            Self::MethodNotAllowed => -32011,
            Self::NoSuchMethod => -32012,
            Self::BadArgs => -32013,
            Self::OutOfFuel => -32014,
            Self::OutOfMemory => -32015,
            Self::LimitExceeded => -32016,
            Self::Aborted => -32017,
            Self::Trap => -32018,
            Self::BadAbi => -32019,
            Self::ModuleTooLarge => -32020,
            Self::InvalidModule => -32021,
            Self::InvitationForged => -32022,
            Self::InvitationExpired => -32023,
            Self::InvitationReplayed => -32024,
            Self::InvitationNotForThisNode => -32025,
            Self::InvitationMalformed => -32026,
        }
    }
}

impl ErrorCode {
    /// The code of a failed call: one per class of [`CallError`] the caller can act on, named
    /// as its [`CallError::label`]. A failure on the host's side (its state store, its
    /// configuration, the node breaking its own call order) is `internal`: nothing about the
    /// request or the app caused it.
    pub fn of_call(error: &CallError) -> Self {
        match error {
            CallError::UnknownContext => Self::UnknownContext,
            CallError::UnknownApp => Self::UnknownApp,
            CallError::ModuleTooLarge { .. } => Self::ModuleTooLarge,
            CallError::InvalidModule(_) => Self::InvalidModule,
            CallError::NoSuchMethod(_) => Self::NoSuchMethod,
            CallError::OutOfFuel => Self::OutOfFuel,
            CallError::OutOfMemory { .. } => Self::OutOfMemory,
            CallError::Aborted(_) => Self::Aborted,
            CallError::BadArgs(_) => Self::BadArgs,
            CallError::LimitExceeded(_) => Self::LimitExceeded,
            CallError::BadAbi(_) => Self::BadAbi,
            CallError::Trap(_) => Self::Trap,
            CallError::State(_) | CallError::Config(_) | CallError::Uncommitted | CallError::NotJoinable(_) => {
                Self::Internal
            }
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
            ApiError::Call(call) => ErrorCode::of_call(call),
            ApiError::QueryWrote(_) => ErrorCode::QueryWrote,
            ApiError::Refused(_) | ApiError::UsedInvitationsFull { .. } => ErrorCode::Refused,
            ApiError::Invitation(invitation) => super::invitations::invitation_code(invitation),
            ApiError::Stopped => ErrorCode::NodeStopped,
            ApiError::Internal(_) => ErrorCode::Internal,
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

    /// Every code, for the tests that check them all.
    const ALL: [ErrorCode; 29] = [
        ErrorCode::BadJson,
        ErrorCode::BodyTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::UnknownContext,
        ErrorCode::UnknownApp,
        ErrorCode::AlreadyJoined,
        ErrorCode::NoSuchMethod,
        ErrorCode::BadArgs,
        ErrorCode::OutOfFuel,
        ErrorCode::OutOfMemory,
        ErrorCode::LimitExceeded,
        ErrorCode::Aborted,
        ErrorCode::Trap,
        ErrorCode::BadAbi,
        ErrorCode::ModuleTooLarge,
        ErrorCode::InvalidModule,
        ErrorCode::QueryWrote,
        ErrorCode::Refused,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::NodeStopped,
        ErrorCode::BadRequest,
        ErrorCode::Internal,
        ErrorCode::InvitationForged,
        ErrorCode::InvitationExpired,
        ErrorCode::InvitationReplayed,
        ErrorCode::InvitationNotForThisNode,
        ErrorCode::InvitationMalformed,
    ];

    #[test]
    fn every_code_is_distinct_in_all_three_spaces() {
        let all = ALL;
        let names: std::collections::BTreeSet<_> = all.iter().map(|code| code.as_str()).collect();
        let rpc: std::collections::BTreeSet<_> = all.iter().map(|code| code.jsonrpc_code()).collect();
        assert_eq!((names.len(), rpc.len()), (all.len(), all.len()));
        assert!(names.iter().all(|name| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert!(!rpc.contains(&-32004), "-32004 was call_failed: retired, never reused");
    }

    /// One of each [`CallError`] variant.
    fn one_of_each_call_error() -> Vec<CallError> {
        vec![
            CallError::UnknownContext,
            CallError::UnknownApp,
            CallError::ModuleTooLarge { bytes: 2, max: 1 },
            CallError::InvalidModule("not wasm".to_owned()),
            CallError::NoSuchMethod("nope".to_owned()),
            CallError::OutOfFuel,
            CallError::OutOfMemory { requested_bytes: 2, max_bytes: 1 },
            CallError::Aborted("bad input".to_owned()),
            CallError::BadArgs("not a (String, String)".to_owned()),
            CallError::LimitExceeded("value".to_owned()),
            CallError::BadAbi("pointer".to_owned()),
            CallError::Trap("unreachable".to_owned()),
            CallError::State(rhizome_core::ApplyError::Storage("disk".to_owned())),
            CallError::Config("limits".to_owned()),
            CallError::Uncommitted,
            CallError::NotJoinable("sealed".to_owned()),
        ]
    }

    #[test]
    fn each_call_failure_a_client_can_act_on_has_its_own_code_named_by_its_label() {
        let mut seen = std::collections::BTreeSet::new();
        for error in one_of_each_call_error() {
            let code = ErrorCode::of_call(&error);
            if code == ErrorCode::Internal {
                assert!(!error.is_guest_fault(), "{error}: the guest's own failure must have its own code");
                continue;
            }
            assert_eq!(code.as_str(), error.label(), "{error}");
            assert!(seen.insert(code.as_str()), "{error}: its code is shared with another failure");
            assert!(code.status().is_client_error(), "{error}: a failed call is not the server's fault");
        }
    }

    #[test]
    fn a_failed_call_reaches_http_with_its_class_not_one_catch_all() {
        let no_method = HttpError::from(ApiError::Call(CallError::NoSuchMethod("nope".to_owned())));
        let out_of_fuel = HttpError::from(ApiError::Call(CallError::OutOfFuel));
        assert_eq!((no_method.code, no_method.code.status()), (ErrorCode::NoSuchMethod, StatusCode::NOT_FOUND));
        assert_eq!(
            (out_of_fuel.code, out_of_fuel.code.status()),
            (ErrorCode::OutOfFuel, StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(no_method.body()["error"]["code"], "no_such_method");
        assert_eq!(HttpError::from(ApiError::Internal("a broken rule")).code, ErrorCode::Internal);
    }
}
