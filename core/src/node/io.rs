//! What goes into and comes out of a [`crate::Node`].

use crate::applier::ApplyError;
use crate::eviction::EvictionPhase;
use crate::ids::{AuthorKey, BlobId, ContextId, DeltaId, PeerId, RootHash};
use crate::sync::{SyncMode, SyncReason};

/// Names an outgoing request; the driver echoes it back with the response or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Names an incoming request; chosen by the driver, echoed in [`Output::Respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundRequestId(pub u64);

/// Why an outgoing request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFailure {
    /// The transport gave up waiting.
    Timeout,
    /// The peer could not be reached or the stream broke.
    Unreachable,
}

/// What a local write's application code ran against: the HLC the node gave it and the heads
/// of the state it read. The core makes the delta only if both still hold, so core and runtime
/// cannot silently disagree on the delta's stamps or on the state its effects were computed
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBasis {
    /// The HLC the code ran at ([`crate::Node::next_local_hlc`]).
    pub hlc: crate::hlc::Hlc,
    /// The context's heads when the code ran ([`crate::DagStore::heads_vec`]).
    pub heads: Vec<DeltaId>,
}

/// An input: from the network, the blob store, the clock, or a local command. Local commands
/// enter through the same door as everything else, so a trace or an observer of
/// [`crate::Node::handle_input`] sees every input the core sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message published on a context topic, as received from `from`.
    Gossip {
        /// The peer that delivered it.
        from: PeerId,
        /// The encoded [`crate::wire::GossipMessage`].
        bytes: Vec<u8>,
    },
    /// A peer's request; answer with [`Output::Respond`].
    Request {
        /// The requesting peer.
        from: PeerId,
        /// The driver's handle for the response.
        request_id: InboundRequestId,
        /// The encoded [`crate::wire::SyncRequest`].
        bytes: Vec<u8>,
    },
    /// The response to one of our [`Output::Request`]s.
    Response {
        /// The request answered.
        request_id: RequestId,
        /// The encoded [`crate::wire::SyncResponse`].
        bytes: Vec<u8>,
    },
    /// One of our requests failed in the transport.
    RequestFailed {
        /// The request.
        request_id: RequestId,
        /// Why.
        reason: RequestFailure,
    },
    /// A peer connected.
    PeerUp {
        /// The peer.
        peer: PeerId,
    },
    /// A peer disconnected.
    PeerDown {
        /// The peer.
        peer: PeerId,
    },
    /// A blob was put into the local blob cache.
    BlobCached {
        /// The blob.
        id: BlobId,
        /// Its size.
        size_bytes: u64,
    },
    /// A cached blob was read.
    BlobAccessed {
        /// The blob.
        id: BlobId,
    },
    /// A blob left the cache for another reason (deleted by the user).
    BlobRemoved {
        /// The blob.
        id: BlobId,
    },
    /// The time returned by [`crate::Node::poll_timeout`] was reached.
    Timeout,
    /// Local command: create a context, with this node as its first admin and `members`
    /// besides, by authoring its genesis ([`Handled::Created`]).
    Create {
        /// Makes the context id unique among this node's contexts.
        nonce: [u8; 32],
        /// The other first members and their roles.
        members: Vec<(AuthorKey, crate::membership::Role)>,
    },
    /// Local command: start replicating `context`, created elsewhere ([`Handled::Joined`]).
    /// Who its members are comes from its DAG; until this node's DAG shows it as a member,
    /// it also syncs with the `bootstrap` keys (the member who invited it).
    Join {
        /// The context.
        context: ContextId,
        /// The context's genesis, if known already; otherwise it comes with the first sync.
        genesis: Option<crate::delta::DeltaRef>,
        /// Keys to sync with before the DAG names this node a member.
        bootstrap: Vec<AuthorKey>,
        /// Context keys obtained with the invitation, so deltas sealed under them open before
        /// the membership delta that grants them arrives.
        keys: Vec<crate::seal::ContextKey>,
    },
    /// Local command: make sure a write on the current heads can be sealed under a key every
    /// current member holds, rotating the key first if none is ([`Handled::Ready`], or
    /// [`Handled::Authored`] with the rotation). A driver that runs application code before
    /// its write (and passes a [`WriteBasis`]) sends this first, as the rotation moves the
    /// heads.
    PrepareWrite {
        /// The context.
        context: ContextId,
    },
    /// Local command: change the member list by authoring a signed membership delta on top
    /// of the current heads ([`Handled::Authored`] once applied). Only an admin may add or
    /// remove others; anyone may remove itself.
    ChangeMembers {
        /// The context.
        context: ContextId,
        /// The changes, in order.
        ops: Vec<crate::membership::MemberOp>,
    },
    /// Local command: stop replicating `context` and forget everything about it
    /// ([`Handled::Left`]).
    Leave {
        /// The context.
        context: ContextId,
    },
    /// Local command: author a delta with `payload` on top of the current heads, apply it and
    /// publish it ([`Handled::Authored`] once applied).
    LocalWrite {
        /// The context.
        context: ContextId,
        /// The application payload.
        payload: Vec<u8>,
        /// What the application code that made `payload` ran against; `None` for a payload
        /// that depends on neither (a test's, or a native applier's).
        basis: Option<WriteBasis>,
    },
    /// Local command: try the context's quarantined deltas again ([`Handled::Retried`]).
    RetryQuarantined {
        /// The context.
        context: ContextId,
    },
}

impl Input {
    /// True for a local command (as opposed to the network, blob store or clock).
    pub fn is_local_command(&self) -> bool {
        matches!(
            self,
            Self::Create { .. }
                | Self::Join { .. }
                | Self::ChangeMembers { .. }
                | Self::Leave { .. }
                | Self::LocalWrite { .. }
                | Self::PrepareWrite { .. }
                | Self::RetryQuarantined { .. }
        )
    }
}

/// What [`crate::Node::handle_input`] did with an input. Only local commands have a result of
/// their own; what goes wrong with a peer's message is counted in the metrics, never returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A network, blob or timer input was taken in.
    Taken,
    /// [`Input::Gossip`]: what the node made of the message, for the transport's relay
    /// decision and its scoring of the peer that delivered it.
    Gossip(GossipVerdict),
    /// [`Input::Create`]: the context exists, with this id.
    Created(ContextId),
    /// [`Input::Join`]: the context is replicated now.
    Joined,
    /// [`Input::PrepareWrite`]: a write on the current heads can be sealed as they are.
    Ready,
    /// [`Input::Leave`]: the context is forgotten.
    Left,
    /// [`Input::LocalWrite`] or [`Input::ChangeMembers`]: the delta was made, applied and
    /// published.
    Authored(DeltaId),
    /// [`Input::RetryQuarantined`]: these quarantined deltas applied.
    Retried(Vec<DeltaId>),
    /// A local command was refused; nothing changed.
    Refused(super::NodeError),
}

/// What the node made of one gossip message. A transport that relays gossip (gossipsub) must
/// hold each message until it has this verdict: only accepted messages travel on, so junk
/// stops at the first honest node that sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid and new to us: relay it.
    Accept,
    /// Not relayed, but no evidence of misbehaviour: we know it already, we do not replicate
    /// its context, or we cannot judge it yet (a clock ahead of ours, a queue that is full).
    /// Honest peers send such messages too, so they are not penalised.
    Ignore,
    /// No honest node sends this (malformed, forged, from a non-member, refused at its causal
    /// point): not relayed, and the peer that delivered it is penalised. `reason` is the label
    /// the node counts it under.
    Reject {
        /// The metrics label of the refusal.
        reason: &'static str,
    },
}

impl GossipVerdict {
    /// The verdict for a delta the node refused for `reason`.
    pub fn of_refusal(reason: &crate::reject::RejectReason) -> Self {
        use crate::reject::RejectReason as R;
        match reason {
            // Not the sender's fault, or not provably: the context is not ours, the sender's
            // clock may be right and ours behind.
            R::UnknownContext | R::Clock(_) => Self::Ignore,
            other => Self::Reject { reason: other.label() },
        }
    }

    /// Whether the message should travel on.
    pub fn relays(&self) -> bool {
        matches!(self, Self::Accept)
    }
}

impl Handled {
    /// The refusal, if the command was refused.
    pub fn refusal(&self) -> Option<&super::NodeError> {
        match self {
            Self::Refused(error) => Some(error),
            _ => None,
        }
    }
}

/// Something the driver must do or report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Publish on a context's topic.
    Broadcast {
        /// The topic.
        context: ContextId,
        /// The encoded [`crate::wire::GossipMessage`].
        bytes: Vec<u8>,
    },
    /// Send a request to a peer; report the response or failure with `request_id`. The
    /// transport gives up at `deadline` (reporting [`RequestFailure::Timeout`]) and keeps no
    /// timeout of its own; the node fails the request at the same time in any case.
    Request {
        /// The peer.
        to: PeerId,
        /// Our handle.
        request_id: RequestId,
        /// The encoded [`crate::wire::SyncRequest`].
        bytes: Vec<u8>,
        /// When the node stops waiting for the answer, on the clock of `handle_input`'s `now`.
        deadline: crate::time::Timestamp,
    },
    /// Answer a peer's request.
    Respond {
        /// The peer.
        to: PeerId,
        /// The driver's handle from [`Input::Request`].
        request_id: InboundRequestId,
        /// The encoded [`crate::wire::SyncResponse`].
        bytes: Vec<u8>,
    },
    /// Remove these blobs from the cache.
    EvictBlobs {
        /// The blobs, each with the policy phase that chose it.
        blobs: Vec<(BlobId, EvictionPhase)>,
    },
    /// Something happened that the application or operator may care about.
    Event(Event),
}

/// A notable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A delta's changes are now in the application state.
    DeltaApplied {
        /// Its context.
        context: ContextId,
        /// The delta.
        id: DeltaId,
        /// Its author.
        author: AuthorKey,
        /// True if this node authored it.
        local: bool,
    },
    /// A delta is held in the pending queue until its parents arrive (a driver that persists
    /// the queue stores it).
    DeltaPending {
        /// Its context.
        context: ContextId,
        /// The delta.
        id: DeltaId,
    },
    /// A delta's application failed; it is held for a retry.
    DeltaQuarantined {
        /// Its context.
        context: ContextId,
        /// The delta.
        id: DeltaId,
        /// The application error.
        error: ApplyError,
    },
    /// Pending deltas left the queue unapplied: evicted at the queue's cap (oldest first) or
    /// by the periodic cleanup (too old). A driver that persists the queue forgets them.
    PendingEvicted {
        /// The context.
        context: ContextId,
        /// The deltas, oldest first.
        ids: Vec<DeltaId>,
        /// Why.
        cause: crate::dag::EvictionCause,
    },
    /// Pending (or quarantined) deltas left the queue because their parents arrived (they are
    /// applied, or quarantined if the applier failed), or because an adopted snapshot took the
    /// queue in (those still waiting are reported pending again). A driver that persists the
    /// queue forgets them.
    PendingReleased {
        /// The context.
        context: ContextId,
        /// The deltas.
        ids: Vec<DeltaId>,
    },
    /// A peer's heartbeat showed the same heads but a different root.
    Divergence {
        /// The context.
        context: ContextId,
        /// The peer.
        peer: PeerId,
        /// Our root.
        our_root: RootHash,
        /// The peer's root.
        peer_root: RootHash,
    },
    /// A sync session started.
    SyncStarted {
        /// The context.
        context: ContextId,
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: SyncReason,
        /// How it began.
        mode: SyncMode,
    },
    /// A sync session completed.
    SyncCompleted {
        /// The context.
        context: ContextId,
        /// The peer.
        peer: PeerId,
        /// How it ended.
        mode: SyncMode,
        /// Deltas received during the session.
        deltas_received: u64,
    },
    /// A sync session failed; the context backs off.
    SyncFailed {
        /// The context.
        context: ContextId,
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        reason: crate::sync::SyncFailure,
        /// Backoff before the next routine sync, in milliseconds.
        backoff_ms: u64,
    },
    /// A snapshot was verified and adopted.
    SnapshotAdopted {
        /// The context.
        context: ContextId,
        /// The adopted root.
        root: RootHash,
        /// Deltas in the snapshot.
        entries: u64,
        /// Our own deltas re-applied on top because the snapshot lacked them.
        replayed: usize,
    },
}
