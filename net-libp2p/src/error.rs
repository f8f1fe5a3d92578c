//! Why the network layer could not do what it was asked.

/// A failure of the network layer itself (never of a peer: peers' misbehaviour is counted in
/// [`crate::NetMetrics`], not returned).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// A setting is out of range or inconsistent.
    #[error("bad network config: {0}")]
    BadConfig(String),
    /// A multiaddr is not usable where it was given.
    #[error("bad multiaddr: {0}")]
    BadMultiaddr(String),
    /// The secret key bytes or a peer id do not make an ed25519 key.
    #[error("key error: {0}")]
    Key(String),
    /// The transport stack could not be built.
    #[error("transport setup: {0}")]
    Transport(String),
    /// A listen address could not be bound.
    #[error("listening on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A dial could not be started.
    #[error("dial failed: {0}")]
    Dial(String),
    /// The swarm task has stopped.
    #[error("the network task has stopped")]
    TaskGone,
}
