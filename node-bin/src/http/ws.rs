//! `GET /ws/contexts/{id}/events`: a context's events as JSON text frames.
//!
//! A task drains the node's subscription into a bounded per-client buffer
//! (`ws_client_buffer_events`); the session writes from that buffer to the socket. A client that
//! reads too slowly fills the buffer (or, if it stalls the writer long enough, the node drops
//! its subscription as slow): either way the session closes the socket with code 1008 and a
//! reason starting `slow consumer:`, and counts it. Memory per client stays bounded.
//!
//! Frames: `{"type":"applied","context":hex,"delta":hex,"author":hex,"local":bool,
//! "events":[{"kind":"Inserted","data_hex":"...","data_utf8":"..."}]}` (`data_utf8` only when
//! the data is UTF-8) and `{"type":"snapshot_adopted","context":hex,"entries":n}`.

use super::extract::ContextPath;
use super::{HttpError, SharedState};
use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use rhizome_node::{NodeEvent, Subscription};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Close code for a client closed as too slow (RFC 6455 "policy violation").
pub(super) const CLOSE_SLOW: u16 = 1008;
/// Close code when the node or the server goes away.
pub(super) const CLOSE_GOING_AWAY: u16 = 1001;
/// How long a close frame (and the events flushed before it) may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest close reason RFC 6455 allows, in bytes.
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// The upgrade. The subscription is taken before upgrading, so an unknown context is a 404
/// and no event between the answer and the first frame is missed.
pub(super) async fn events(
    State(shared): SharedState,
    ContextPath(context): ContextPath,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let subscription = match shared.api.node.subscribe(context).await {
        Ok(subscription) => subscription,
        Err(error) => return HttpError::from(error).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return HttpError::bad_request(format!("not a WebSocket upgrade: {}", rejection.body_text()))
                .into_response()
        }
    };
    let capacity = shared.api.config.ws_client_buffer_events;
    let metrics = shared.api.metrics.clone();
    let shutdown = shared.shutdown.subscribe();
    upgrade.on_upgrade(move |socket| async move {
        let (sink, stream) = socket.split();
        run_session(sink, stream, subscription, capacity, shutdown, &metrics).await;
    })
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SessionEnd {
    /// The client closed or the connection broke.
    ClientGone,
    /// Closed as too slow, with this reason.
    Slow(String),
    /// The node ended the subscription (it stopped).
    NodeEnded,
    /// The server is shutting down.
    ServerShutdown,
}

/// Why the forwarding task stopped.
#[derive(Debug)]
enum ForwardEnd {
    /// The client's buffer was full.
    BufferFull,
    /// The node dropped the subscription, with its reason.
    NodeDroppedSlow(String),
    /// The subscription ended without a reason: the node stopped.
    NodeEnded,
    /// The session went away.
    SessionGone,
}

async fn forward(mut subscription: Subscription, buffer: mpsc::Sender<NodeEvent>) -> ForwardEnd {
    loop {
        let Some(event) = subscription.next().await else {
            return match subscription.close_reason() {
                Some(reason) => ForwardEnd::NodeDroppedSlow(reason.to_owned()),
                None => ForwardEnd::NodeEnded,
            };
        };
        match buffer.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return ForwardEnd::BufferFull,
            Err(mpsc::error::TrySendError::Closed(_)) => return ForwardEnd::SessionGone,
        }
    }
}

/// Resolves once the server is shutting down (never if it cannot tell).
async fn shutting_down(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

enum Stop {
    Forward(ForwardEnd),
    ClientGone,
    Shutdown,
}

/// Runs one client's session to its end, counting it in `metrics`.
pub(super) async fn run_session<W, R, E>(
    mut sink: W,
    mut incoming: R,
    subscription: Subscription,
    capacity: usize,
    mut shutdown: watch::Receiver<bool>,
    metrics: &Metrics,
) -> SessionEnd
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    metrics.ws_client_connected();
    let (buffer_in, mut buffer) = mpsc::channel(capacity.max(1));
    let mut forwarder = tokio::spawn(forward(subscription, buffer_in));
    let stop = loop {
        tokio::select! {
            biased;
            ended = &mut forwarder => break Stop::Forward(ended.unwrap_or(ForwardEnd::NodeEnded)),
            () = shutting_down(&mut shutdown) => break Stop::Shutdown,
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break Stop::ClientGone,
                Some(Ok(_)) => {}
            },
            event = buffer.recv() => {
                // `None` only once the forwarder has ended: its arm reports why next time round.
                let Some(event) = event else { continue };
                // While a frame waits on a slow socket, the forwarder keeps filling the buffer;
                // if it overflows, stop waiting.
                tokio::select! {
                    biased;
                    ended = &mut forwarder => break Stop::Forward(ended.unwrap_or(ForwardEnd::NodeEnded)),
                    sent = sink.send(frame(&event)) => if sent.is_err() { break Stop::ClientGone },
                }
            }
        }
    };
    forwarder.abort();
    let end = match stop {
        Stop::Forward(ForwardEnd::BufferFull) => {
            SessionEnd::Slow(format!("slow consumer: more than {capacity} events waiting"))
        }
        Stop::Forward(ForwardEnd::NodeDroppedSlow(reason)) => SessionEnd::Slow(format!("slow consumer: {reason}")),
        Stop::Forward(ForwardEnd::NodeEnded) => {
            // What was buffered before the node stopped still goes out, within the timeout.
            let flush = async {
                while let Ok(event) = buffer.try_recv() {
                    if sink.send(frame(&event)).await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, flush).await;
            SessionEnd::NodeEnded
        }
        Stop::Forward(ForwardEnd::SessionGone) | Stop::ClientGone => SessionEnd::ClientGone,
        Stop::Shutdown => SessionEnd::ServerShutdown,
    };
    let close = match &end {
        SessionEnd::Slow(reason) => Some((CLOSE_SLOW, reason.as_str())),
        SessionEnd::NodeEnded => Some((CLOSE_GOING_AWAY, "node stopped")),
        SessionEnd::ServerShutdown => Some((CLOSE_GOING_AWAY, "server shutting down")),
        SessionEnd::ClientGone => None,
    };
    let goodbye = async {
        if let Some((code, reason)) = close {
            let reason = truncate(reason, MAX_CLOSE_REASON_BYTES).to_owned();
            let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, goodbye).await;
    metrics.ws_client_disconnected(matches!(end, SessionEnd::Slow(_)));
    end
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn frame(event: &NodeEvent) -> Message {
    Message::Text(event_json(event).to_string().into())
}

/// An event as its JSON frame.
pub(super) fn event_json(event: &NodeEvent) -> Value {
    match event {
        NodeEvent::Applied { context, delta, author, local, events } => {
            let events: Vec<Value> = events
                .iter()
                .map(|(kind, data)| {
                    let mut entry = json!({"kind": kind, "data_hex": hex::encode(data)});
                    if let Ok(text) = std::str::from_utf8(data) {
                        entry["data_utf8"] = Value::String(text.to_owned());
                    }
                    entry
                })
                .collect();
            json!({
                "type": "applied",
                "context": context.to_string(),
                "delta": delta.to_string(),
                "author": author.to_string(),
                "local": local,
                "events": events,
            })
        }
        NodeEvent::SnapshotAdopted { context, entries } => {
            json!({"type": "snapshot_adopted", "context": context.to_string(), "entries": entries})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = truncate(&long, MAX_CLOSE_REASON_BYTES);
        assert!(cut.len() <= MAX_CLOSE_REASON_BYTES && cut.len() >= MAX_CLOSE_REASON_BYTES - 1);
        assert_eq!(truncate("short", MAX_CLOSE_REASON_BYTES), "short");
    }

    #[test]
    fn event_frames_carry_utf8_only_when_it_is_utf8() {
        let event = NodeEvent::Applied {
            context: rhizome_core::ContextId::hash_of(b"c"),
            delta: rhizome_core::DeltaId::hash_of(b"d"),
            author: rhizome_core::AuthorKey::from_bytes([3; 32]),
            local: true,
            events: vec![("Inserted".into(), b"key".to_vec()), ("Cleared".into(), vec![0xff, 0])],
        };
        let json = event_json(&event);
        assert_eq!(json["type"], "applied");
        assert_eq!(json["events"][0]["data_utf8"], "key");
        assert_eq!(json["events"][1]["data_hex"], "ff00");
        assert!(json["events"][1].get("data_utf8").is_none());
    }
}
