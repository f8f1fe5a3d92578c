//! The queue of events from the swarm task to the node.
//!
//! Backpressure choice: the swarm task never waits on the node. Blocking it would stall every
//! connection (pings, gossip relaying, other peers' requests) behind one slow consumer, and the
//! node itself calls into the transport, so a blocking hand-off risks a cycle. Instead events
//! are split by whether losing one is recoverable:
//!
//! - Gossip messages and peer requests are *lossy*: at most `event_queue_len` of them wait; more
//!   are dropped and counted. A lost gossip message is repaired by sync; a dropped request's
//!   stream is closed, so the requester fails fast and retries elsewhere.
//! - Responses, request failures and peer up/down are *reliable*: always queued. Their number
//!   is bounded by the node itself: each request it sends yields exactly one response or
//!   failure (and the node bounds its requests in flight, as does `max_outbound_requests`), and
//!   peer up/down alternate per peer, at most one pair per connection the limits admitted.
//!
//! One queue keeps all events in arrival order (a peer's `PeerUp` comes before its requests).
//! It is a mutex-guarded deque with a `Notify`, so `pop` is cancel-safe: an event is removed
//! only by the poll that returns it.

use crate::metrics::{bump, Counters};
use rhizome_node::TransportEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    events: VecDeque<TransportEvent>,
    lossy_len: usize,
    closed: bool,
}

/// The swarm-to-node event queue (shared by the swarm task, which pushes, and the transport,
/// which pops and may push failures it synthesises itself).
#[derive(Debug)]
pub(crate) struct EventQueue {
    state: Mutex<State>,
    ready: Notify,
    max_lossy: usize,
    counters: Arc<Counters>,
}

/// Events that may be dropped when the node falls behind.
fn is_lossy(event: &TransportEvent) -> bool {
    matches!(event, TransportEvent::Gossip { .. } | TransportEvent::Request { .. })
}

impl EventQueue {
    pub(crate) fn new(max_lossy: usize, counters: Arc<Counters>) -> Self {
        Self { state: Mutex::new(State::default()), ready: Notify::new(), max_lossy, counters }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the deque half-updated in a way that
        // matters, so a poisoned lock is still used rather than spreading the panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an event. A lossy event over the bound is handed back (and counted) so the
    /// caller can release what it holds for it; reliable events are always queued. After
    /// `close` everything is discarded.
    pub(crate) fn push(&self, event: TransportEvent) -> Result<(), TransportEvent> {
        let mut state = self.lock();
        if state.closed {
            return Ok(());
        }
        if is_lossy(&event) {
            if state.lossy_len >= self.max_lossy {
                bump(&self.counters.events_dropped_queue_full);
                return Err(event);
            }
            state.lossy_len += 1;
        }
        state.events.push_back(event);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next event, if one is ready.
    pub(crate) fn try_pop(&self) -> Option<TransportEvent> {
        let mut state = self.lock();
        let event = state.events.pop_front()?;
        if is_lossy(&event) {
            state.lossy_len -= 1;
        }
        Some(event)
    }

    /// The next event; `None` once the queue is closed and drained. Cancel-safe.
    pub(crate) async fn pop(&self) -> Option<TransportEvent> {
        loop {
            if let Some(event) = self.try_pop() {
                return Some(event);
            }
            if self.lock().closed {
                return None;
            }
            // `notify_one` leaves a permit when nobody waits, so a push between the check
            // above and this await is not missed.
            self.ready.notified().await;
        }
    }

    /// No more events will come: what is queued is still delivered, then `pop` gives `None`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhizome_core::{ContextId, PeerId, RequestFailure, RequestId};

    fn gossip(n: u8) -> TransportEvent {
        TransportEvent::Gossip {
            from: PeerId::from_bytes([n; 32]),
            context: ContextId::default(),
            bytes: vec![n],
            token: rhizome_node::GossipToken::default(),
        }
    }

    fn failure(n: u64) -> TransportEvent {
        TransportEvent::RequestFailed { id: RequestId(n), reason: RequestFailure::Timeout }
    }

    #[test]
    fn lossy_events_are_bounded_and_counted_but_reliable_ones_always_fit() {
        let counters = Arc::new(Counters::default());
        let queue = EventQueue::new(2, counters.clone());
        assert!(queue.push(gossip(1)).is_ok());
        assert!(queue.push(gossip(2)).is_ok());
        assert_eq!(queue.push(gossip(3)), Err(gossip(3)));
        for n in 0..10 {
            assert!(queue.push(failure(n)).is_ok());
        }
        assert_eq!(counters.snapshot().events_dropped_queue_full, 1);
        assert_eq!(queue.try_pop(), Some(gossip(1)));
        assert!(queue.push(gossip(4)).is_ok(), "popping a lossy event frees its slot");
    }

    #[tokio::test]
    async fn pop_survives_cancellation_and_drains_before_closing() {
        let queue = Arc::new(EventQueue::new(4, Arc::new(Counters::default())));
        // A pop that is cancelled while waiting loses nothing.
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(10), queue.pop()).await;
        assert!(cancelled.is_err());
        queue.push(failure(1)).unwrap();
        queue.close();
        queue.push(failure(2)).unwrap();
        assert_eq!(queue.pop().await, Some(failure(1)));
        assert_eq!(queue.pop().await, None);
    }

    #[tokio::test]
    async fn waiting_pop_wakes_on_push_from_another_task() {
        let queue = Arc::new(EventQueue::new(4, Arc::new(Counters::default())));
        let pusher = queue.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            pusher.push(gossip(7)).unwrap();
        });
        assert_eq!(queue.pop().await, Some(gossip(7)));
        task.await.unwrap();
    }
}
