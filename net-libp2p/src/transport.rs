//! `rhizome_node::Transport` over the swarm task: every call is a non-blocking hand-off, and
//! every event comes out of the shared event queue.

use crate::commands::Command;
use crate::events::EventQueue;
use crate::metrics::{bump, Counters};
use crate::subscriptions::Subscriptions;
use rhizome_core::{ContextId, InboundRequestId, PeerId, RequestFailure, RequestId};
use rhizome_node::{Transport, TransportEvent};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The real network as the node sees it.
#[derive(Debug)]
pub struct Libp2pTransport {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: Arc<EventQueue>,
    pub(crate) subscriptions: Arc<Subscriptions>,
    pub(crate) counters: Arc<Counters>,
}

impl Libp2pTransport {
    /// Hands a command to the swarm task without waiting; `false` (counted) if the queue is
    /// full or the task has stopped.
    fn hand_off(&self, command: Command) -> bool {
        if self.commands.try_send(command).is_ok() {
            return true;
        }
        bump(&self.counters.commands_dropped);
        false
    }
}

impl Drop for Libp2pTransport {
    /// Nobody will read events any more: stop queueing them (the swarm task keeps running for
    /// the handles).
    fn drop(&mut self) {
        self.events.close();
    }
}

impl Transport for Libp2pTransport {
    fn subscribe(&mut self, context: ContextId) {
        self.subscriptions.set(context, true);
    }

    fn unsubscribe(&mut self, context: ContextId) {
        self.subscriptions.set(context, false);
    }

    fn publish(&mut self, context: ContextId, bytes: Vec<u8>) {
        self.hand_off(Command::Publish { context, bytes });
    }

    fn request(&mut self, to: PeerId, id: RequestId, bytes: Vec<u8>, timeout: Duration) {
        if !self.hand_off(Command::Request { to, id, bytes, timeout }) {
            // The node still gets exactly one outcome for its request.
            bump(&self.counters.requests_failed_unreachable);
            let _ = self.events.push(TransportEvent::RequestFailed { id, reason: RequestFailure::Unreachable });
        }
    }

    fn respond(&mut self, to: PeerId, id: InboundRequestId, bytes: Vec<u8>) {
        // A response that cannot be handed off is counted; the requester times out.
        self.hand_off(Command::Respond { to, id, bytes });
    }

    // The swarm task accepts every well-formed message as it arrives for now; the verdict is
    // not yet used to hold messages back.
    fn report_gossip(&mut self, _token: rhizome_node::GossipToken, _verdict: rhizome_core::GossipVerdict) {}

    fn next_event(&mut self) -> impl Future<Output = Option<TransportEvent>> + Send {
        self.events.pop()
    }

    fn try_next_event(&mut self) -> Option<TransportEvent> {
        self.events.try_pop()
    }
}
