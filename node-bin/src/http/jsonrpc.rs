//! `POST /jsonrpc`: JSON-RPC 2.0, one request per HTTP request.
//!
//! Methods `call` (writes; answered once its delta is durable) and `query` (read-only), with
//! params `{"context":"<64 hex>","method":"<app method>","args":[...]}` (arguments converted by
//! [`crate::borsh_json`]) or `"input_hex":"..."` (raw borsh input), and an optional
//! `"returns"` shape for the output (`bytes` by default). Result:
//! `{"output": <decoded>, "output_hex": "...", "delta": "<hex>"|null}` (`delta` only for
//! `call`). If the output does not decode as `returns`, `output` is null and `output_error`
//! says why: the call itself happened.
//!
//! HTTP statuses: once a request is past the transport layer (token, rate limit, body size:
//! those are REST errors with their own statuses), the answer is always HTTP 200, errors
//! included, as JSON-RPC over HTTP has it: a body that is not JSON gets a -32700 error object
//! with `id: null`. A batch (a JSON array) is refused with -32600. A notification (no `id`)
//! is carried out and answered `204 No Content`. Every error object carries the stable code in
//! `data.code`.

use super::extract::{body_error, parse_hex, parse_id};
use super::{ErrorCode, HttpError, SharedState};
use crate::borsh_json::{decode_output, encode_args, Returns};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rhizome_core::ContextId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// JSON-RPC's own code for a request object that is not a valid request.
const INVALID_REQUEST: i64 = -32600;

/// Longest app method name accepted.
const MAX_METHOD_NAME_BYTES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams<'a> {
    #[serde(borrow)]
    context: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default, borrow)]
    input_hex: Option<Cow<'a, str>>,
    #[serde(default)]
    returns: Returns,
}

/// A well-formed request, read straight into its fields without first building a
/// `serde_json::Value` tree: the common case, and what a busy node spends its time on.
/// Anything it does not take (a wrong type, a missing member, a duplicate, a bad `id`) goes
/// the general way ([`dispatch`]), which names the problem. Both ways accept the same
/// well-formed requests and answer them alike.
#[derive(Deserialize)]
struct WellFormed<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    /// `None` when absent (a notification); `Some(Value::Null)` for `"id": null`.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: CallParams<'a>,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl<'a> WellFormed<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        // serde reads a struct from a JSON array too (its fields by position); a request must
        // be an object, and an array is a batch, which the general way refuses.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let request: Self = serde_json::from_slice(bytes).ok()?;
        let valid_id = matches!(request.id, None | Some(Value::Null | Value::Number(_) | Value::String(_)));
        (request.jsonrpc == "2.0" && valid_id).then_some(request)
    }
}

/// A call's or query's result. Members are in the order a `serde_json::Map` keeps them
/// (sorted), so answers read the same whichever way the request came.
#[derive(Serialize)]
struct CallResult {
    /// Only for `call`: the delta's id, or null when the call wrote nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Option<String>>,
    output: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_error: Option<String>,
    output_hex: String,
}

/// A successful answer, members sorted as `json!` sorts them.
#[derive(Serialize)]
struct Success<'a> {
    id: &'a Value,
    jsonrpc: &'static str,
    result: CallResult,
}

/// A JSON-RPC error on its way out.
struct RpcError {
    code: i64,
    stable: ErrorCode,
    message: String,
}

impl RpcError {
    fn new(stable: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: stable.jsonrpc_code(), stable, message: message.into() }
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        Self { code: INVALID_REQUEST, stable: ErrorCode::BadRequest, message: message.into() }
    }
}

impl From<HttpError> for RpcError {
    fn from(error: HttpError) -> Self {
        Self::new(error.code, error.message)
    }
}

impl From<rhizome_node::ApiError> for RpcError {
    fn from(error: rhizome_node::ApiError) -> Self {
        HttpError::from(error).into()
    }
}

fn answer(id: Value, outcome: Result<CallResult, RpcError>) -> Response {
    match outcome {
        Ok(result) => (StatusCode::OK, Json(Success { id: &id, jsonrpc: "2.0", result })).into_response(),
        Err(error) => {
            let body = json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": error.code, "message": error.message, "data": {"code": error.stable.as_str()}},
            });
            (StatusCode::OK, Json(body)).into_response()
        }
    }
}

/// The handler.
pub(super) async fn handle(State(shared): SharedState, body: Result<Bytes, BytesRejection>) -> Response {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => return body_error(rejection).into_response(),
    };
    if let Some(request) = WellFormed::parse(&bytes) {
        let outcome = run(&shared, &request.method, request.params).await;
        return match request.id {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(id) => answer(id, outcome),
        };
    }
    let request: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(error) => {
            return answer(Value::Null, Err(RpcError::new(ErrorCode::BadJson, format!("parse error: {error}"))))
        }
    };
    let request = match request {
        Value::Object(object) => object,
        Value::Array(_) => {
            let error =
                RpcError::invalid_request("batch requests are not supported: send one request per HTTP request");
            return answer(Value::Null, Err(error));
        }
        _ => return answer(Value::Null, Err(RpcError::invalid_request("a request must be a JSON object"))),
    };
    let notification = !request.contains_key("id");
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::Number(_) | Value::String(_)) {
        return answer(Value::Null, Err(RpcError::invalid_request("id must be a string, a number or null")));
    }
    let outcome = dispatch(&shared, &request).await;
    if notification {
        return StatusCode::NO_CONTENT.into_response();
    }
    answer(id, outcome)
}

/// The general way: checks each member of `request` and names the first that is wrong.
async fn dispatch(shared: &super::Shared, request: &Map<String, Value>) -> Result<CallResult, RpcError> {
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::invalid_request(r#"jsonrpc must be "2.0""#));
    }
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_request("method must be a string"))?;
    is_write(method)?;
    let params = CallParams::deserialize(request.get("params").unwrap_or(&Value::Null))
        .map_err(|error| RpcError::new(ErrorCode::BadRequest, format!("invalid params: {error}")))?;
    run(shared, method, params).await
}

/// True for `call`, false for `query`, an error for any other method.
fn is_write(method: &str) -> Result<bool, RpcError> {
    match method {
        "call" => Ok(true),
        "query" => Ok(false),
        other => {
            let shown: String = other.chars().take(64).collect();
            Err(RpcError::new(ErrorCode::NotFound, format!("method {shown:?} not found; use call or query")))
        }
    }
}

/// Carries out a request whose params have been read.
async fn run(shared: &super::Shared, method: &str, params: CallParams<'_>) -> Result<CallResult, RpcError> {
    let writes = is_write(method)?;
    let context = ContextId::from_bytes(parse_id("params.context", &params.context)?);
    if params.method.is_empty() || params.method.len() > MAX_METHOD_NAME_BYTES {
        return Err(RpcError::new(
            ErrorCode::BadRequest,
            format!("invalid params: method must be 1..={MAX_METHOD_NAME_BYTES} bytes"),
        ));
    }
    let input = match (&params.args, &params.input_hex) {
        (Some(_), Some(_)) => {
            return Err(RpcError::new(ErrorCode::BadRequest, "invalid params: give args or input_hex, not both"))
        }
        (Some(args), None) => {
            encode_args(args).map_err(|error| RpcError::new(ErrorCode::BadArgs, format!("invalid params: {error}")))?
        }
        (None, Some(text)) => parse_hex("params.input_hex", text)?,
        (None, None) => Vec::new(),
    };
    let node = &shared.api.node;
    let (output, delta) = if writes {
        let reply = node.call(context, &params.method, input).await?;
        (reply.return_value, Some(reply.delta.map(|delta| delta.to_string())))
    } else {
        (node.query(context, &params.method, input).await?, None)
    };
    let (decoded, output_error) = match decode_output(params.returns, &output) {
        Ok(decoded) => (decoded, None),
        Err(error) => (Value::Null, Some(error.to_string())),
    };
    Ok(CallResult { delta, output: decoded, output_error, output_hex: hex::encode(&output) })
}
