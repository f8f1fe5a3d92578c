//! The node's local API: what an application, the HTTP server or the simulator's workload asks
//! of a running node. Every method is a message to the node loop, answered after the commit
//! that makes its effect durable.

use crate::events::Subscription;
use rhizome_core::seal::{InvitationError, SignedInvitation};
use rhizome_core::{AuthorKey, ContextId, DeltaId, MemberOp, NodeMetrics, PeerId, Role, RootHash};
use rhizome_runtime::{AppId, CallError, RuntimeMetrics};
use tokio::sync::{mpsc, oneshot};

/// Why a local request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The node does not replicate this context.
    #[error("unknown context {0}")]
    UnknownContext(ContextId),
    /// No app with this id is installed.
    #[error("unknown app")]
    UnknownApp,
    /// The context is already joined.
    #[error("context {0} already joined")]
    AlreadyJoined(ContextId),
    /// The runtime refused the call or the app failed: [`CallError::label`] names the class.
    #[error("call failed: {0}")]
    Call(CallError),
    /// A query changed state; queries must be read-only.
    #[error("method {0} writes state; use call, not query")]
    QueryWrote(String),
    /// The core refused (not a member, limits...).
    #[error("refused: {0}")]
    Refused(String),
    /// An invitation was refused: [`InvitationError::label`] names why (forged, expired,
    /// replayed, addressed to another key, malformed...).
    #[error("invitation refused: {0}")]
    Invitation(InvitationError),
    /// The store of used invitation ids is at [`crate::NodeConfig::max_used_invitations`] with
    /// none of them expired: joining by another invitation would mean forgetting an id that can
    /// still be replayed.
    #[error("{max} used invitations are remembered and none has expired yet; try again later")]
    UsedInvitationsFull {
        /// The bound.
        max: usize,
    },
    /// The node stopped (shut down, or its storage failed) before answering.
    #[error("the node is not running")]
    Stopped,
    /// The node broke one of its own rules (a bug): nothing the caller did or can fix.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// The answer to a writing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReply {
    /// What the method returned.
    pub return_value: Vec<u8>,
    /// The delta that carries its writes, durable when this reply is sent; `None` if the call
    /// wrote nothing.
    pub delta: Option<DeltaId>,
}

/// One context's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextStatus {
    /// The context.
    pub context: ContextId,
    /// Its app.
    pub app: AppId,
    /// Its members at our heads, by key, as the context's membership deltas give them.
    pub members: Vec<AuthorKey>,
    /// Those of them who are admins.
    pub admins: Vec<AuthorKey>,
    /// Current heads.
    pub heads: Vec<DeltaId>,
    /// State root.
    pub root: RootHash,
    /// Applied deltas.
    pub applied: usize,
    /// Pending deltas.
    pub pending: usize,
    /// Gossip held for a running snapshot.
    pub snapshot_buffer: usize,
    /// Handler jobs waiting.
    pub handler_jobs: usize,
    /// When the last sync succeeded (node time, ms).
    pub last_sync_ms: Option<u64>,
}

/// The node's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's peer id.
    pub peer_id: PeerId,
    /// Connected peers.
    pub peers: Vec<PeerId>,
    /// Per context.
    pub contexts: Vec<ContextStatus>,
    /// Core counters.
    pub metrics: NodeMetrics,
    /// Runtime counters.
    pub runtime: RuntimeMetrics,
    /// The node loop's own counters.
    pub driver: crate::driver::DriverMetrics,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A request to the node loop.
#[derive(Debug)]
pub(crate) enum Command {
    InstallApp { module: Vec<u8>, reply: Reply<AppId> },
    CreateContext { app: AppId, members: Vec<AuthorKey>, nonce: [u8; 16], reply: Reply<ContextId> },
    JoinContext { context: ContextId, app: AppId, join: JoinWith, reply: Reply<()> },
    ChangeMembers { context: ContextId, ops: Vec<MemberOp>, reply: Reply<DeltaId> },
    AddMembers { context: ContextId, keys: Vec<AuthorKey>, reply: Reply<Vec<AuthorKey>> },
    Invite { context: ContextId, offer: InviteOffer, reply: Reply<Invited> },
    JoinByInvitation { invitation: Box<SignedInvitation>, reply: Reply<InvitationJoined> },
    Apps { reply: Reply<Vec<AppId>> },
    Call { context: ContextId, method: String, input: Vec<u8>, reply: Reply<CallReply> },
    Query { context: ContextId, method: String, input: Vec<u8>, reply: Reply<Vec<u8>> },
    Subscribe { context: ContextId, reply: Reply<Subscription> },
    Status { reply: Reply<NodeStatus> },
    CheckInvariants { depth: rhizome_core::InvariantDepth, reply: Reply<()> },
    Missing { context: ContextId, ids: Vec<DeltaId>, reply: Reply<Vec<DeltaId>> },
    AppDeltasAfter { context: ContextId, after: DeltaId, reply: Reply<Vec<rhizome_core::DeltaRef>> },
    ReadProbe { context: ContextId, deltas: Vec<rhizome_core::DeltaRef>, reply: Reply<ReadProbe> },
    Shutdown { reply: Reply<()> },
}

/// A cheap, cloneable handle on a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl NodeHandle {
    pub(crate) fn new(commands: mpsc::Sender<Command>, peer_id: PeerId) -> Self {
        Self { commands, peer_id }
    }

    /// The node's peer id (its author key's bytes).
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's author key.
    pub fn author_key(&self) -> AuthorKey {
        AuthorKey::from_bytes(*self.peer_id.as_bytes())
    }

    /// True once the node loop has ended.
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| ApiError::Stopped)?;
        answer.await.map_err(|_| ApiError::Stopped)?
    }

    /// Installs (compiles and stores) an app module.
    pub async fn install_app(&self, module: Vec<u8>) -> Result<AppId, ApiError> {
        self.ask(|reply| Command::InstallApp { module, reply }).await
    }

    /// Creates a context running `app`, with this node as its admin and `members` as members,
    /// by authoring its genesis; its id is derived from the genesis (this node's key, the app,
    /// `nonce`, the members and the time).
    pub async fn create_context(
        &self,
        app: AppId,
        members: Vec<AuthorKey>,
        nonce: [u8; 16],
    ) -> Result<ContextId, ApiError> {
        self.ask(|reply| Command::CreateContext { app, members, nonce, reply }).await
    }

    /// Joins an existing context (its app must be installed here). Its members come from its
    /// DAG; until that names this node, it syncs with `join.bootstrap` (whoever invited it).
    pub async fn join_context(&self, context: ContextId, app: AppId, join: JoinWith) -> Result<(), ApiError> {
        self.ask(|reply| Command::JoinContext { context, app, join, reply }).await
    }

    /// Changes a joined context's members by authoring a signed membership delta (durable and
    /// published when this returns). Only an admin may add or remove others.
    pub async fn change_members(&self, context: ContextId, ops: Vec<MemberOp>) -> Result<DeltaId, ApiError> {
        self.ask(|reply| Command::ChangeMembers { context, ops, reply }).await
    }

    /// Adds those of `keys` who are not members yet, as members, in one membership delta
    /// authored in one step of the loop (so two concurrent additions cannot drop each other's
    /// keys). Returns the whole member list after it, sorted. Durable when this returns.
    pub async fn add_members(&self, context: ContextId, keys: Vec<AuthorKey>) -> Result<Vec<AuthorKey>, ApiError> {
        self.ask(|reply| Command::AddMembers { context, keys, reply }).await
    }

    /// Invites `offer.invitee`: adds it with `offer.role` (one membership delta, in one step of
    /// the loop, as [`Self::add_members`]; nothing if it already has that role), then issues a
    /// token signed by this node carrying the context key a write on the current heads is
    /// sealed under, wrapped to the invitee. Durable when this returns.
    pub async fn invite(&self, context: ContextId, offer: InviteOffer) -> Result<Invited, ApiError> {
        self.ask(|reply| Command::Invite { context, offer, reply }).await
    }

    /// Accepts an invitation addressed to this node (checked at the node clock's wall time,
    /// against the ids already joined with) and joins its context: syncing with the inviter,
    /// with the key it carries. The id is recorded as used in the join's commit.
    pub async fn join_by_invitation(&self, invitation: SignedInvitation) -> Result<InvitationJoined, ApiError> {
        self.ask(|reply| Command::JoinByInvitation { invitation: Box::new(invitation), reply }).await
    }

    /// The installed apps, in id order.
    pub async fn apps(&self) -> Result<Vec<AppId>, ApiError> {
        self.ask(|reply| Command::Apps { reply }).await
    }

    /// Calls a method; its writes are durable and published when this returns.
    pub async fn call(&self, context: ContextId, method: &str, input: Vec<u8>) -> Result<CallReply, ApiError> {
        self.ask(|reply| Command::Call { context, method: method.to_owned(), input, reply }).await
    }

    /// Calls a read-only method.
    pub async fn query(&self, context: ContextId, method: &str, input: Vec<u8>) -> Result<Vec<u8>, ApiError> {
        self.ask(|reply| Command::Query { context, method: method.to_owned(), input, reply }).await
    }

    /// Subscribes to a context's events (bounded; a subscriber that falls behind is dropped).
    pub async fn subscribe(&self, context: ContextId) -> Result<Subscription, ApiError> {
        self.ask(|reply| Command::Subscribe { context, reply }).await
    }

    /// The node's figures.
    pub async fn status(&self) -> Result<NodeStatus, ApiError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Checks the core's invariants to `depth` (every deadline armed for exactly what it
    /// belongs to; with the DAGs, each consistent) and panics the node loop on a violation.
    /// For tests and the simulator, which runs it at every sample.
    pub async fn check_invariants(&self, depth: rhizome_core::InvariantDepth) -> Result<(), ApiError> {
        self.ask(|reply| Command::CheckInvariants { depth, reply }).await
    }

    /// Which of `ids` this node has not applied in `context`.
    pub async fn missing(&self, context: ContextId, ids: Vec<DeltaId>) -> Result<Vec<DeltaId>, ApiError> {
        self.ask(|reply| Command::Missing { context, ids, reply }).await
    }

    /// The applied application deltas (with bodies) whose causal past includes the membership
    /// delta `after`: what was written once `after` was known. For the simulator's checks that a
    /// removed member reads nothing written after its removal.
    pub async fn app_deltas_after(
        &self,
        context: ContextId,
        after: DeltaId,
    ) -> Result<Vec<rhizome_core::DeltaRef>, ApiError> {
        self.ask(|reply| Command::AppDeltasAfter { context, after, reply }).await
    }

    /// How many of `deltas`' payloads this node's keys for `context` open, and how many keys it
    /// holds: what it could read of them. For the simulator's checks on outsiders and removed
    /// members.
    pub async fn read_probe(
        &self,
        context: ContextId,
        deltas: Vec<rhizome_core::DeltaRef>,
    ) -> Result<ReadProbe, ApiError> {
        self.ask(|reply| Command::ReadProbe { context, deltas, reply }).await
    }

    /// Finishes in-flight commits and stops the node loop.
    pub async fn shutdown(&self) -> Result<(), ApiError> {
        self.ask(|reply| Command::Shutdown { reply }).await
    }
}

/// What a node could read of some deltas ([`NodeHandle::read_probe`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadProbe {
    /// Context keys it holds.
    pub keys: usize,
    /// Application deltas probed.
    pub probed: usize,
    /// Of them, those whose payload its keys open.
    pub opened: usize,
}

/// What an invitation offers, besides what the node fills in (context, app, key, expiry).
#[derive(Debug, Clone)]
pub struct InviteOffer {
    /// The only key that can accept it.
    pub invitee: AuthorKey,
    /// The role the invitee is added with.
    pub role: Role,
    /// Names the invitation, for the invitee's replay store: the embedder draws it at random
    /// (the node loop has no randomness of its own that a simulation would not repeat).
    pub invitation_id: [u8; 16],
    /// How long the token may be accepted, from the node clock's wall time, in milliseconds.
    pub ttl_ms: u64,
    /// Where the invitee can reach this node (multiaddrs ending in `/p2p/<id>`).
    pub bootstrap: Vec<String>,
}

/// An issued invitation.
#[derive(Debug, Clone)]
pub struct Invited {
    /// The token.
    pub invitation: SignedInvitation,
    /// The context's members after the invitee was added, sorted.
    pub members: Vec<AuthorKey>,
}

/// What joining by an invitation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationJoined {
    /// The context joined.
    pub context: ContextId,
    /// Its app.
    pub app: AppId,
    /// Who invited (the node synced with first).
    pub inviter: AuthorKey,
    /// The role the token names.
    pub role: Role,
    /// The addresses the token carries, for the embedder to dial.
    pub bootstrap: Vec<String>,
}

/// How to join a context created elsewhere.
#[derive(Debug, Clone, Default)]
pub struct JoinWith {
    /// Keys to sync with until the context's DAG names this node a member.
    pub bootstrap: Vec<AuthorKey>,
    /// The context's genesis, if the joiner has it (the simulator does); otherwise it comes
    /// with the first sync and is checked against the context id.
    pub genesis: Option<rhizome_core::DeltaRef>,
    /// Context keys that came with the invitation, so what is sealed under them opens before
    /// the membership delta that wraps them to this node has synced.
    pub keys: Vec<rhizome_core::seal::ContextKey>,
}

/// The genesis nonce of a context created for `app` with the caller's `nonce`: the app is
/// bound into the context id, so one nonce names different contexts for different apps.
pub fn genesis_nonce(app: &AppId, nonce: &[u8; 16]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("rhizome 2026-12 genesis nonce v1");
    hasher.update(&app.0);
    hasher.update(nonce);
    *hasher.finalize().as_bytes()
}
