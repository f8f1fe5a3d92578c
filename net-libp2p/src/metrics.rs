//! The network layer's counters: atomics the swarm task and the transport bump, read as a plain
//! snapshot by [`crate::NetHandle::metrics`] without waiting on the task.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of the network counters. Every bound hit is counted here.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct NetMetrics {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The live counters behind [`NetMetrics`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            /// Reads every counter (each individually; the set is not one atomic snapshot).
            pub(crate) fn snapshot(&self) -> NetMetrics {
                NetMetrics { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Gossip messages handed to gossipsub (first try or retry).
    gossip_published,
    /// Gossip messages delivered to the node.
    gossip_received,
    /// Gossip messages refused because their payload exceeds `max_gossip_message_bytes`.
    gossip_too_large,
    /// Gossip messages dropped because their source key is missing or not ed25519.
    gossip_bad_source,
    /// Gossip messages on a topic that is not a context topic.
    gossip_unknown_topic,
    /// Publishes that found no subscribed peer (or only full peer queues).
    publish_no_peers,
    /// Publishes put in the retry queue.
    publish_queued,
    /// Held publishes that went out on a retry.
    publish_retried,
    /// Held publishes evicted because the retry queue was full.
    publish_dropped_queue_full,
    /// Held publishes dropped for age.
    publish_dropped_too_old,
    /// Publishes refused because the payload exceeds `max_gossip_message_bytes`.
    publish_dropped_too_large,
    /// Publishes gossipsub had already seen (same bytes, same content id): not sent again.
    publish_duplicate,
    /// Publishes that failed for another reason (signing).
    publish_failed,
    /// Publishes, requests or responses dropped because the command queue to the swarm task was
    /// full or the task had stopped (a request so dropped still gets its `RequestFailed`).
    commands_dropped,
    /// Requests handed to libp2p.
    requests_sent,
    /// Responses delivered to the node.
    responses_received,
    /// Responses that arrived after their request timed out (ignored).
    responses_late,
    /// Requests that failed with `Timeout`.
    requests_failed_timeout,
    /// Requests that failed with `Unreachable`.
    requests_failed_unreachable,
    /// Our requests refused before sending because they exceed `max_request_bytes`.
    requests_too_large,
    /// Our requests refused because `max_outbound_requests` were in flight.
    requests_refused_over_limit,
    /// Peer requests delivered to the node.
    requests_received,
    /// Peer requests refused because the peer or everyone had too many waiting.
    inbound_refused_over_limit,
    /// Peer requests refused by the codec because they exceed `max_request_bytes`.
    inbound_requests_too_large,
    /// Responses refused (ours before sending, or a peer's by the codec) for exceeding
    /// `max_response_bytes`.
    responses_too_large,
    /// Responses handed to libp2p.
    responses_sent,
    /// `respond` calls for a request that is gone (timed out, connection closed).
    responses_unknown_request,
    /// Frames that could not be read (broken or garbage streams).
    decode_errors,
    /// Gossip messages or peer requests dropped because the event queue to the node was full.
    events_dropped_queue_full,
    /// Events about peers whose key is not ed25519 (they cannot be named to the core).
    events_dropped_non_ed25519,
    /// Connections established.
    connections_established,
    /// Connections closed.
    connections_closed,
    /// Connections refused by the connection limits.
    connections_denied,
    /// Dials that failed.
    dials_failed,
    /// Bootstrap rounds run because the node had fewer than `min_peers` peers.
    bootstrap_runs,
    /// Kademlia random walks run.
    peer_exchanges,
    /// Health checks run.
    health_checks,
    /// Peers dropped from the health table to stay within `max_tracked_peers`.
    peers_evicted,
    /// Gauge: tracked peers failing the health rule at the last check.
    unhealthy_peers,
    /// Gauge: peers with at least one open connection.
    connected_peers,
}

/// Adds one.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n`.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Sets a gauge.
pub(crate) fn set(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}
