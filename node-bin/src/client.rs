//! The client side of rhizomed's API, used by the client subcommands (`app install`, `call`,
//! `watch`, ...). Blocking HTTP for request/response, a WebSocket for `watch`.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The API's port when nothing else is known.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:2528";
/// How long one API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// What went wrong.
        message: String,
    },
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable {
        /// The API URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node's answer was not what the API promises.
    #[error("unexpected answer from the node: {0}")]
    BadResponse(String),
}

/// A connection to one node's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:2528`), with the admin token.
    pub fn new(base: &str, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Self { agent, base: base.trim_end_matches('/').to_owned(), token }
    }

    /// A client for the node whose data directory is `data_dir`, unless `api`/`token` say
    /// otherwise: the API URL from its runtime file, the token from its token file.
    pub fn for_data_dir(data_dir: &Path, api: Option<String>, token: Option<String>) -> Self {
        let api = api.or_else(|| crate::daemon::read_runtime_info(data_dir).ok().map(|info| info.api));
        let token = token.or_else(|| {
            std::fs::read_to_string(data_dir.join(crate::identity::TOKEN_FILE)).ok().map(|text| text.trim().to_owned())
        });
        Self::new(api.as_deref().unwrap_or(DEFAULT_API_URL), token)
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.finish(request.call())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.finish(request.send_json(body))
    }

    /// `POST path` with raw bytes.
    pub fn post_bytes(&self, path: &str, bytes: &[u8], content_type: &str) -> Result<Value, ClientError> {
        let mut request = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", content_type);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.finish(request.send(bytes))
    }

    /// A JSON-RPC call; returns its `result`.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let answer =
            self.post_json("/jsonrpc", &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))?;
        if let Some(error) = answer.get("error") {
            let code = error.pointer("/data/code").and_then(Value::as_str).unwrap_or("rpc_error").to_owned();
            let message = error.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
            return Err(ClientError::Api { status: 200, code, message });
        }
        answer.get("result").cloned().ok_or_else(|| ClientError::BadResponse(answer.to_string()))
    }

    fn finish(&self, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, ClientError> {
        let mut response =
            result.map_err(|error| ClientError::Unreachable { url: self.base.clone(), reason: error.to_string() })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|error| ClientError::BadResponse(format!("reading the body: {error}")))?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = value.pointer("/error/code").and_then(Value::as_str).unwrap_or("http_error").to_owned();
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        Err(ClientError::Api { status, code, message })
    }

    /// Streams a context's events to `on_event` until the node closes the socket, `on_event`
    /// returns false, or the connection fails. Returns the close reason the node gave, if any.
    pub async fn watch(
        &self,
        context: &str,
        mut on_event: impl FnMut(Value) -> bool,
    ) -> Result<Option<String>, ClientError> {
        use futures::StreamExt as _;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        use tokio_tungstenite::tungstenite::Message;
        let ws_base = self.base.replacen("http://", "ws://", 1).replacen("https://", "wss://", 1);
        let url = format!("{ws_base}/ws/contexts/{context}/events");
        let unreachable = |reason: String| ClientError::Unreachable { url: url.clone(), reason };
        let mut request = url.as_str().into_client_request().map_err(|error| unreachable(error.to_string()))?;
        if let Some(token) = &self.token {
            let header =
                format!("Bearer {token}").parse().map_err(|_| unreachable("token is not a valid header".into()))?;
            request.headers_mut().insert("Authorization", header);
        }
        let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(connected) => connected,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let code = value.pointer("/error/code").and_then(Value::as_str).unwrap_or("http_error").to_owned();
                return Err(ClientError::Api { status, code, message: body });
            }
            Err(error) => return Err(unreachable(error.to_string())),
        };
        while let Some(message) = socket.next().await {
            match message.map_err(|error| unreachable(error.to_string()))? {
                Message::Text(text) => {
                    let event: Value = serde_json::from_str(text.as_str())
                        .map_err(|error| ClientError::BadResponse(error.to_string()))?;
                    if !on_event(event) {
                        let _ = socket.close(None).await;
                        return Ok(None);
                    }
                }
                Message::Close(frame) => {
                    return Ok(frame.map(|frame| format!("{} {}", u16::from(frame.code), frame.reason)))
                }
                _ => {}
            }
        }
        Ok(None)
    }
}
