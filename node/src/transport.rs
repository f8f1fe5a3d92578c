//! The node's only door to the network. The simulator implements it over its link model; the
//! real node over libp2p. Calls are non-blocking hand-offs; everything that comes back
//! (messages, responses, failures, peers coming and going) arrives through `next_event`.

use rhizome_core::{ContextId, GossipVerdict, InboundRequestId, PeerId, RequestFailure, RequestId};
use std::future::Future;
use std::time::Duration;

/// Something the network delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A message published on a context topic we subscribe to.
    Gossip {
        /// The peer that published it (gossipsub's "source"), not the mesh neighbour that
        /// relayed it: a heartbeat describes its publisher's state, and a delta's publisher
        /// holds its parents, so both evidence and parent fetches must go to the publisher.
        from: PeerId,
        /// The topic.
        context: ContextId,
        /// The encoded gossip message.
        bytes: Vec<u8>,
        /// The transport's handle for the verdict: the node hands it back with
        /// [`Transport::report_gossip`] once it has judged the message.
        token: GossipToken,
    },
    /// A peer's request; answer it with [`Transport::respond`].
    Request {
        /// The peer.
        from: PeerId,
        /// The transport's handle for the answer.
        id: InboundRequestId,
        /// The encoded request.
        bytes: Vec<u8>,
    },
    /// The answer to one of our requests.
    Response {
        /// Our request.
        id: RequestId,
        /// The encoded response.
        bytes: Vec<u8>,
    },
    /// One of our requests got no answer.
    RequestFailed {
        /// Our request.
        id: RequestId,
        /// Why.
        reason: RequestFailure,
    },
    /// A connection to a peer came up.
    PeerUp(PeerId),
    /// A connection to a peer went down.
    PeerDown(PeerId),
}

/// A transport's name for one received gossip message, so the node's verdict on it can be
/// matched to the message (a relaying transport holds the message until then). Transports
/// that do not relay may give every message the default token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GossipToken(pub u64);

/// A network the node can use. Implementations must be cancel-safe in `next_event`: the node
/// polls it inside `select!` and may drop the future.
pub trait Transport: Send + 'static {
    /// Starts receiving a context's topic.
    fn subscribe(&mut self, context: ContextId);
    /// Stops receiving a context's topic.
    fn unsubscribe(&mut self, context: ContextId);
    /// Publishes on a context's topic. Never blocks; a transport that must drop a message
    /// counts it.
    fn publish(&mut self, context: ContextId, bytes: Vec<u8>);
    /// Sends a request; its answer or failure comes back as an event with `id`, within
    /// `timeout` (the time left to the core's deadline: a transport keeps no timeout of its own
    /// beyond it).
    fn request(&mut self, to: PeerId, id: RequestId, bytes: Vec<u8>, timeout: Duration);
    /// Answers a peer's request.
    fn respond(&mut self, to: PeerId, id: InboundRequestId, bytes: Vec<u8>);
    /// The node's verdict on the gossip message `token` names: a relaying transport passes the
    /// message on only if it was accepted, and scores the peer that delivered it. Called once
    /// per [`TransportEvent::Gossip`], soon after it is taken from the transport.
    fn report_gossip(&mut self, token: GossipToken, verdict: GossipVerdict);
    /// The next event; `None` once the transport is closed for good.
    fn next_event(&mut self) -> impl Future<Output = Option<TransportEvent>> + Send;
    /// An event that is ready now, without waiting (the node batches work between commits).
    fn try_next_event(&mut self) -> Option<TransportEvent>;
}
