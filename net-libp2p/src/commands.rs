//! What the transport and the handle ask of the swarm task.

use crate::error::NetError;
use crate::handle::PeerInfo;
use libp2p::Multiaddr;
use rhizome_core::{ContextId, InboundRequestId, PeerId, RequestId};
use std::time::Duration;
use tokio::sync::oneshot;

/// One request to the swarm task. Subscriptions are not here: they are shared state (see
/// `subscriptions.rs`).
#[derive(Debug)]
pub(crate) enum Command {
    /// Publish on a context's topic (or hold it until a peer subscribes).
    Publish { context: ContextId, bytes: Vec<u8> },
    /// Send a request; exactly one `Response` or `RequestFailed` with `id` follows.
    Request { to: PeerId, id: RequestId, bytes: Vec<u8>, timeout: Duration },
    /// Answer a peer's request.
    Respond { to: PeerId, id: InboundRequestId, bytes: Vec<u8> },
    /// Dial an address.
    Dial { addr: Multiaddr, reply: oneshot::Sender<Result<(), NetError>> },
    /// Every known peer.
    Peers { reply: oneshot::Sender<Vec<PeerInfo>> },
    /// Our listen addresses, once every listener is up.
    ListenAddrs { reply: oneshot::Sender<Vec<Multiaddr>> },
    /// Close connections and stop.
    Shutdown { reply: oneshot::Sender<()> },
}
