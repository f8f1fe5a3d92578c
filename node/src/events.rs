//! Event subscriptions: each subscriber has a bounded queue; one that falls behind is dropped
//! with a reason rather than allowed to grow the node's memory.

use rhizome_core::{AuthorKey, ContextId, DeltaId};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// What a subscriber sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A delta was applied to the context's state.
    Applied {
        /// The context.
        context: ContextId,
        /// The delta.
        delta: DeltaId,
        /// Its author.
        author: AuthorKey,
        /// True if this node wrote it.
        local: bool,
        /// The app events it carries: (kind, data).
        events: Vec<(String, Vec<u8>)>,
    },
    /// The context adopted a snapshot (deltas inside it produce no `Applied`).
    SnapshotAdopted {
        /// The context.
        context: ContextId,
        /// Deltas in the snapshot.
        entries: u64,
    },
}

/// The receiving end of a subscription.
#[derive(Debug)]
pub struct Subscription {
    receiver: mpsc::Receiver<NodeEvent>,
    closed_reason: Arc<OnceLock<String>>,
}

impl Subscription {
    /// The next event; `None` once the subscription ended (see [`Subscription::close_reason`]).
    pub async fn next(&mut self) -> Option<NodeEvent> {
        self.receiver.recv().await
    }

    /// An event ready now.
    pub fn try_next(&mut self) -> Option<NodeEvent> {
        self.receiver.try_recv().ok()
    }

    /// Why the node ended the subscription, if it did.
    pub fn close_reason(&self) -> Option<&str> {
        self.closed_reason.get().map(String::as_str)
    }
}

struct Subscriber {
    context: ContextId,
    sender: mpsc::Sender<NodeEvent>,
    closed_reason: Arc<OnceLock<String>>,
}

/// Every live subscription of a node.
#[derive(Default)]
pub(crate) struct Subscribers {
    live: Vec<Subscriber>,
    /// Subscribers dropped because their queue was full.
    pub(crate) dropped_slow: u64,
}

impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers").field("live", &self.live.len()).finish()
    }
}

impl Subscribers {
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn add(&mut self, context: ContextId, queue_events: usize) -> Subscription {
        let (sender, receiver) = mpsc::channel(queue_events.max(1));
        let closed_reason = Arc::new(OnceLock::new());
        self.live.push(Subscriber { context, sender, closed_reason: closed_reason.clone() });
        Subscription { receiver, closed_reason }
    }

    pub(crate) fn has_any(&self, context: &ContextId) -> bool {
        self.live.iter().any(|subscriber| subscriber.context == *context)
    }

    pub(crate) fn publish(&mut self, context: &ContextId, event: &NodeEvent) {
        let mut dropped = 0;
        self.live.retain(|subscriber| {
            if subscriber.context != *context {
                return !subscriber.sender.is_closed();
            }
            match subscriber.sender.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let _ = subscriber.closed_reason.set("subscriber too slow: event queue full".to_owned());
                    dropped += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.dropped_slow += dropped;
    }
}
