//! The async rhizome node: one loop that owns a core [`rhizome_core::Node`], the WASM runtime
//! and a redb store, and talks to the network through a [`Transport`]. The same code runs on
//! tokio with libp2p and inside the madsim simulator (tokio comes through madsim-tokio).

pub mod api;
pub mod clock;
pub mod driver;
pub mod events;
pub mod observer;
pub mod store;
pub mod transport;

pub use api::{
    genesis_nonce, ApiError, CallReply, ContextStatus, InvitationJoined, InviteOffer, Invited, JoinWith, NodeHandle,
    NodeStatus, ReadProbe,
};
pub use clock::Clock;
pub use driver::{
    start, AppRuntime, CoreNode, DriverMetrics, NodeConfig, NodeFailure, NodeParts, NodeTask, RestoreFailure,
    StartError, MAX_INVITATION_TTL_MS,
};
pub use events::{NodeEvent, Subscription};
pub use observer::Observer;
pub use store::{ContextBackend, Store, StoreError};
pub use transport::{GossipToken, Transport, TransportEvent};
