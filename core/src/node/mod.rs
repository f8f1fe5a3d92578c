//! The node state machine: one door in ([`Node::handle_input`], for the network, the clock and
//! local commands alike), one door out ([`Node::poll_output`]), and [`Node::poll_timeout`] for
//! when to call again.
//!
//! After every input the caller drains `poll_output` before doing anything else. Nothing
//! changes between calls; the node never reads a clock, spawns or does IO. Time comes in with
//! every input as [`Clocks`]: a monotonic clock for timers and a wall clock for the HLC.

mod evidence;
mod ingest;
mod io;
mod key_requests;
mod keys;
mod replica;
mod requests;
mod serve;
mod session_driver;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod test_node;
mod timer_table;
mod timers;
mod vouching;

pub use io::{Event, GossipVerdict, Handled, InboundRequestId, Input, Output, RequestFailure, RequestId, WriteBasis};

use crate::applier::{Applier, ApplyError};
use crate::config::Config;
use crate::dag::{AddOutcome, DagStore, PendingStats};
use crate::delta::{CausalDelta, DeltaKind, DeltaRef};
use crate::eviction::BlobIndex;
use crate::hlc::HlcClock;
use crate::identity::Keypair;
use crate::ids::{AuthorKey, ContextId, DeltaId, PeerId};
use crate::metrics::NodeMetrics;
use crate::signature_memo::SignatureMemo;
use crate::sync::{SyncSession, TrackingPolicy};
use crate::time::{Clocks, Timestamp};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::Replica;
use requests::RequestTable;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use timer_table::{Deadline, TimerTable};

/// Why a local command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The node does not replicate this context.
    #[error("unknown context {0}")]
    UnknownContext(ContextId),
    /// The node already replicates this context.
    #[error("context {0} is already joined")]
    AlreadyJoined(ContextId),
    /// This node's key is not a member of the context, so it may not write. A node that has
    /// just joined becomes one once it has synced the membership delta that added it.
    #[error("this node is not a member of context {0} (a node that just joined is one once it has synced the change that added it)")]
    NotMember(ContextId),
    /// A membership change with no ops.
    #[error("a membership change needs at least one op")]
    NoMembershipOps,
    /// This node's role does not allow the membership change.
    #[error("this node may not make that membership change in context {0}")]
    NotPermitted(ContextId),
    /// The given genesis does not create the context, or does not verify.
    #[error("the genesis given for context {context} is not valid: {reason}")]
    BadGenesis {
        /// The context.
        context: ContextId,
        /// Why.
        reason: crate::reject::RejectReason,
    },
    /// Too many members.
    #[error("{count} members, over the limit of {max}")]
    TooManyMembers {
        /// Members given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The application code ran at another HLC than the one the delta would carry: its
    /// stamps would not match the delta's, so no delta is made.
    #[error("the local write ran at {ran_at:?} but its delta would carry {delta_at:?}")]
    HlcMismatch {
        /// The HLC the application code ran at.
        ran_at: crate::hlc::Hlc,
        /// The HLC the delta would carry.
        delta_at: crate::hlc::Hlc,
    },
    /// The application code read the state at other heads than the delta would name: its
    /// effects were computed from another state, so no delta is made.
    #[error("the local write ran on {} heads that are no longer the context's {} heads", ran_on.len(), heads.len())]
    HeadsMismatch {
        /// The heads the application code read.
        ran_on: Vec<DeltaId>,
        /// The context's heads now.
        heads: Vec<DeltaId>,
    },
    /// The node already replicates the maximum number of contexts.
    #[error("already at the limit of {max} contexts")]
    TooManyContexts {
        /// The limit.
        max: usize,
    },
    /// The payload is over the size bound.
    #[error("payload of {bytes} bytes, over the limit of {max}")]
    PayloadTooLarge {
        /// Payload size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A member's key is not one a context key can be wrapped to.
    #[error("a member of context {0} has a key no context key can be wrapped to")]
    BadMemberKey(ContextId),
    /// The context's key epochs are used up.
    #[error("context {0} has rotated its key as often as it can")]
    KeyEpochsExhausted(ContextId),
    /// No key every current member holds exists for this write: the key must be rotated
    /// first ([`Input::PrepareWrite`] does), which changes the heads the write was made on.
    #[error("context {0} needs a key rotation before this write (prepare the write first)")]
    KeyRotationNeeded(ContextId),
    /// The applier refused the local delta; nothing was stored or sent.
    #[error("applying the local delta failed: {0}")]
    ApplyFailed(ApplyError),
}

/// How much [`Node::check_invariants_to`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvariantDepth {
    /// The node's own bookkeeping (timers, requests, sessions): O(requests + contexts).
    Bookkeeping,
    /// That, and every context's DAG: O(history).
    WithDags,
}

/// Why a stored context could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// Joining failed (limits).
    #[error("joining the restored context failed: {0}")]
    Join(NodeError),
    /// The context already holds deltas (applied, pending or quarantined).
    #[error("context {0} already holds deltas")]
    AlreadyPopulated(ContextId),
    /// The stored DAG is inconsistent.
    #[error("stored DAG is inconsistent: {0}")]
    Dag(crate::dag::RestoreDagError),
}

/// One rhizome node: what spans contexts (identity, clock, connections, the request and timer
/// tables, shared budgets), and a [`Replica`] per context it replicates.
#[derive(Debug)]
pub struct Node {
    config: Config,
    keypair: Keypair,
    peer_id: PeerId,
    author: AuthorKey,
    rng: ChaCha8Rng,
    clock: HlcClock,
    /// The latest monotonic time given; never goes back.
    now: Timestamp,
    /// The wall-clock time of the input being handled, Unix milliseconds; may go back (the HLC
    /// does not).
    wall_ms: u64,
    /// `wall_ms − monotonic ms` at the last input: a jump in it is a wall-clock step.
    wall_offset_ms: i64,
    /// The highest heartbeat sequence sent in any context: a context joined (again) starts from
    /// it, so leaving and rejoining never repeats a sequence.
    heartbeat_high_water: u64,
    replicas: BTreeMap<ContextId, Replica>,
    connected: BTreeSet<PeerId>,
    tracking_policy: TrackingPolicy,
    requests: RequestTable,
    /// The last snapshot id handed out; ids are unique across contexts.
    last_snapshot_id: u64,
    /// The context whose session is out of its replica while a response to it is handled: it
    /// still runs, so nothing may start a second session for that context meanwhile.
    session_out: Option<ContextId>,
    blobs: BlobIndex,
    timers: TimerTable,
    outputs: VecDeque<Output>,
    metrics: NodeMetrics,
    /// Verified signatures shared with other nodes in this process, if any.
    signature_memo: Option<SignatureMemo>,
    /// The driver's hedge for the keys this node makes ([`Node::set_key_entropy`]).
    key_entropy: [u8; 32],
}

impl Node {
    /// A node with no contexts. `rng_seed` drives every random choice (peer choice, timer
    /// jitter), so the same seed and inputs give the same outputs.
    ///
    /// `now`'s wall clock must share its epoch with every other node's (Unix time on a real node,
    /// virtual time in the simulator): HLC values are compared across nodes.
    pub fn new(config: Config, keypair: Keypair, rng_seed: u64, now: impl Into<Clocks>) -> Self {
        let Clocks { monotonic: now, wall_ms } = now.into();
        let peer_id = keypair.peer_id();
        let author = keypair.author_key();
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let timers = TimerTable::new(&config, now, &mut rng);
        let tracking_policy = TrackingPolicy {
            min_interval_ms: config.min_sync_interval_ms,
            min_evidence_interval_ms: config.min_sync_evidence_interval_ms,
            backoff_base_ms: config.sync_backoff_base_ms,
            max_backoff_ms: config.max_sync_backoff_ms,
        };
        let mut node_tag = [0u8; 8];
        node_tag.copy_from_slice(&peer_id.as_bytes()[..8]);
        Self {
            config,
            keypair,
            peer_id,
            author,
            rng,
            clock: HlcClock::new(u64::from_le_bytes(node_tag)),
            now,
            wall_ms,
            wall_offset_ms: wall_offset_ms(now, wall_ms),
            heartbeat_high_water: 0,
            replicas: BTreeMap::new(),
            connected: BTreeSet::new(),
            tracking_policy,
            requests: RequestTable::default(),
            last_snapshot_id: 0,
            session_out: None,
            blobs: BlobIndex::default(),
            timers,
            outputs: VecDeque::new(),
            metrics: NodeMetrics::default(),
            signature_memo: None,
            key_entropy: [0; 32],
        }
    }

    /// Shares `memo` for signature checks (see [`SignatureMemo`]). Answers do not change, so
    /// neither do outputs or traces.
    pub fn set_signature_memo(&mut self, memo: SignatureMemo) {
        self.signature_memo = Some(memo);
    }

    /// Feeds one input. Afterwards, drain [`Node::poll_output`]. A local command's result is
    /// returned; every other input returns [`Handled::Taken`].
    ///
    /// `app` is the application state: the caller owns it and lends it for the input, and it
    /// must be the same state every time (the node's DAG says what has been applied to it).
    /// The core applies, imports and exports through it only here and in
    /// [`Node::restore_context`].
    pub fn handle_input(&mut self, now: impl Into<Clocks>, input: Input, app: &mut dyn Applier) -> Handled {
        self.advance(now.into());
        let done = |result: Result<Handled, NodeError>| result.unwrap_or_else(Handled::Refused);
        match input {
            Input::Gossip { from, bytes } => return Handled::Gossip(self.on_gossip(app, from, &bytes)),
            Input::Request { from, request_id, bytes } => self.on_request(app, from, request_id, &bytes),
            Input::Response { request_id, bytes } => self.on_response(app, request_id, &bytes),
            Input::RequestFailed { request_id, reason } => self.on_transport_failure(app, request_id, reason),
            Input::PeerUp { peer } => self.on_peer_up(app, peer),
            Input::PeerDown { peer } => self.on_peer_down(app, peer),
            Input::BlobCached { id, size_bytes } => {
                self.blobs.insert(id, size_bytes, self.now);
                if self.blobs.len() > self.config.limits.max_tracked_blobs {
                    self.evict_blobs();
                }
            }
            Input::BlobAccessed { id } => self.blobs.touch(&id, self.now),
            Input::BlobRemoved { id } => self.blobs.remove(&id),
            Input::Timeout => self.on_timeout(app),
            Input::Create { nonce, members } => return done(self.create(app, nonce, members).map(Handled::Created)),
            Input::Join { context, genesis, bootstrap, keys } => {
                return done(self.join(app, context, genesis, bootstrap, keys).map(|()| Handled::Joined))
            }
            Input::PrepareWrite { context } => return done(self.prepare_write(app, context)),
            Input::ChangeMembers { context, ops } => {
                return done(self.change_members(app, context, ops).map(Handled::Authored))
            }
            Input::Leave { context } => return done(self.leave(&context).map(|()| Handled::Left)),
            Input::LocalWrite { context, payload, basis } => {
                return done(self.make_local_delta(app, context, payload, basis).map(Handled::Authored))
            }
            Input::RetryQuarantined { context } => return done(self.retry(app, &context).map(Handled::Retried)),
        }
        Handled::Taken
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to feed [`Input::Timeout`] next.
    pub fn poll_timeout(&self) -> Timestamp {
        self.timers.next_wake()
    }

    /// Checks a list of keys against the member limit.
    fn check_member_count(&self, count: usize) -> Result<(), NodeError> {
        let max = self.config.limits.max_members_per_context;
        if count > max {
            return Err(NodeError::TooManyMembers { count, max });
        }
        Ok(())
    }

    /// Makes an empty replica of `context`.
    fn open_replica(&mut self, context: ContextId, bootstrap: Vec<AuthorKey>) -> Result<(), NodeError> {
        self.check_member_count(bootstrap.len())?;
        if self.replicas.contains_key(&context) {
            return Err(NodeError::AlreadyJoined(context));
        }
        if self.replicas.len() >= self.config.limits.max_contexts {
            return Err(NodeError::TooManyContexts { max: self.config.limits.max_contexts });
        }
        let mut replica = Replica::new(context, self.author, bootstrap.into_iter().collect(), &self.config.limits);
        replica.heartbeat_sequence = self.heartbeat_high_water;
        self.replicas.insert(context, replica);
        Ok(())
    }

    /// [`Input::Create`].
    fn create(
        &mut self,
        app: &mut dyn Applier,
        nonce: [u8; 32],
        members: Vec<(AuthorKey, crate::membership::Role)>,
    ) -> Result<ContextId, NodeError> {
        self.check_member_count(members.len() + 1)?;
        let mut recipients: Vec<AuthorKey> = members.iter().map(|(key, _)| *key).chain([self.author]).collect();
        recipients.sort_unstable();
        recipients.dedup();
        let key = crate::seal::genesis_key(&self.keypair, &self.key_entropy, &nonce, &recipients);
        let hlc = self.clock.tick(self.wall_ms);
        let genesis = CausalDelta::genesis(&self.keypair, hlc, nonce, members, &key)
            .map_err(|_| NodeError::BadMemberKey(crate::ids::ContextId::default()))?;
        let genesis = Arc::new(genesis);
        let context = genesis.context;
        self.open_replica(context, Vec::new())?;
        self.join_with_genesis(app, genesis)?;
        Ok(context)
    }

    /// [`Input::Join`].
    fn join(
        &mut self,
        app: &mut dyn Applier,
        context: ContextId,
        genesis: Option<DeltaRef>,
        bootstrap: Vec<AuthorKey>,
        keys: Vec<crate::seal::ContextKey>,
    ) -> Result<(), NodeError> {
        if let Some(genesis) = &genesis {
            let bad = |reason| NodeError::BadGenesis { context, reason };
            genesis.verify_with(&self.config.limits, self.signature_memo.as_ref()).map_err(bad)?;
            let DeltaKind::Genesis(fields) = &genesis.kind else {
                return Err(bad(crate::reject::RejectReason::BadGenesis));
            };
            if genesis.context != context
                || crate::membership::genesis_context_id(&genesis.author, &genesis.hlc, fields) != context
            {
                return Err(bad(crate::reject::RejectReason::BadGenesis));
            }
        }
        self.open_replica(context, bootstrap)?;
        for key in keys {
            self.insert_key(&context, key);
        }
        if let Some(genesis) = genesis {
            self.join_with_genesis(app, genesis)?;
        }
        // The whole history is still to come: ask a connected member (or bootstrap key) now
        // rather than at the next periodic sync.
        if let Some(peer) = self.choose_peer(&context, &[]) {
            self.start_sync(context, peer, crate::sync::SyncReason::FreshContext, crate::sync::SyncMode::Deltas);
        }
        Ok(())
    }

    /// Applies a verified genesis to a replica just opened for it.
    fn join_with_genesis(&mut self, app: &mut dyn Applier, genesis: DeltaRef) -> Result<(), NodeError> {
        let context = genesis.context;
        self.learn_keys(&context, &genesis.author, &genesis.kind);
        let replica = self.replicas.get_mut(&context).expect("opened by the caller");
        match replica.dag.add(self.now, genesis.clone(), app) {
            AddOutcome::Applied { .. } => {
                self.emit_applied(context, genesis.id, genesis.author, genesis.author == self.author);
                Ok(())
            }
            other => {
                self.replicas.remove(&context);
                let reason = match other {
                    AddOutcome::Rejected(reason) => reason,
                    _ => crate::reject::RejectReason::BadGenesis,
                };
                Err(NodeError::BadGenesis { context, reason })
            }
        }
    }

    /// [`Input::ChangeMembers`]: authors a membership delta on top of the current heads.
    fn change_members(
        &mut self,
        app: &mut dyn Applier,
        context: ContextId,
        ops: Vec<crate::membership::MemberOp>,
    ) -> Result<DeltaId, NodeError> {
        if ops.is_empty() {
            return Err(NodeError::NoMembershipOps);
        }
        self.check_member_count(ops.len())?;
        let replica = self.replicas.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let members = replica.dag.members();
        if !members.contains(&self.author) {
            return Err(NodeError::NotMember(context));
        }
        if !members.allows_all(&self.author, &ops) {
            return Err(NodeError::NotPermitted(context));
        }
        let parents = self.write_parents(&replica.dag);
        let change = self.key_shares(&context, &parents, ops, false)?;
        self.author_delta(app, context, DeltaKind::Membership(change), Vec::new())
    }

    /// [`Input::PrepareWrite`]: rotates the key if a write on the current heads needs it.
    fn prepare_write(&mut self, app: &mut dyn Applier, context: ContextId) -> Result<Handled, NodeError> {
        let replica = self.replicas.get(&context).ok_or(NodeError::UnknownContext(context))?;
        if !replica.dag.members().contains(&self.author) {
            return Err(NodeError::NotMember(context));
        }
        if self.needs_rotation(&context) {
            return self.rotate_for_write(app, context).map(Handled::Authored);
        }
        Ok(Handled::Ready)
    }

    /// The parents a delta authored now names: the heads, up to the per-delta bound.
    fn write_parents(&self, dag: &DagStore) -> Vec<DeltaId> {
        dag.heads().iter().take(self.config.limits.max_parents_per_delta).copied().collect()
    }

    /// [`Input::Leave`]: drops the context's replica, disarms its timers and abandons its
    /// requests.
    fn leave(&mut self, context: &ContextId) -> Result<(), NodeError> {
        if self.replicas.remove(context).is_none() {
            return Err(NodeError::UnknownContext(*context));
        }
        self.timers.disarm_context(context);
        self.abandon_requests_of(context);
        Ok(())
    }

    /// Rebuilds a context from storage after a restart: joins it, reinstates the applied DAG
    /// (parents before children, without applying anything: the applier's state was stored
    /// with it), then adds the stored pending deltas again. The clock observes every restored
    /// delta's HLC, so the node's next delta is later than all of them.
    ///
    /// Not a command: it replays what this node already took in, before any input. `app` holds
    /// the restored state (pending deltas whose parents are all restored apply to it).
    pub fn restore_context(
        &mut self,
        app: &mut dyn Applier,
        context: ContextId,
        bootstrap: impl IntoIterator<Item = AuthorKey>,
        applied: Vec<crate::dag::RestoredEntry>,
        pending: Vec<Arc<CausalDelta>>,
    ) -> Result<(), RestoreError> {
        let bootstrap = bootstrap.into_iter().collect();
        match self.open_replica(context, bootstrap) {
            Ok(()) => {}
            Err(NodeError::AlreadyJoined(context)) => return Err(RestoreError::AlreadyPopulated(context)),
            Err(error) => return Err(RestoreError::Join(error)),
        }
        for entry in &applied {
            // Keys are not stored apart: the membership deltas that wrapped them to this node
            // are, so a restart learns them again.
            match entry {
                crate::dag::RestoredEntry::Body(delta) => {
                    self.clock.restore_high_water(delta.hlc);
                    self.learn_keys(&context, &delta.author, &delta.kind);
                }
                crate::dag::RestoredEntry::Structure(header) => {
                    self.learn_keys(&context, &header.author, &header.kind);
                }
            }
        }
        let replica = self.replicas.get_mut(&context).expect("joined above");
        if let Err(error) = replica.dag.restore_applied(applied) {
            self.replicas.remove(&context);
            return Err(RestoreError::Dag(error));
        }
        // Each pending delta is judged against its causal past when its parents are all
        // applied, as on every other path; a refused one's row goes with its event.
        for delta in pending {
            self.clock.restore_high_water(delta.hlc);
            let id = delta.id;
            if self.add_verified(app, None, delta).is_some() {
                let cause = crate::dag::EvictionCause::NotMember;
                self.outputs.push_back(Output::Event(Event::PendingEvicted { context, ids: vec![id], cause }));
            }
        }
        Ok(())
    }

    /// [`Input::LocalWrite`]: authors a delta on top of the current heads, applies it and
    /// publishes it. The delta is acknowledged (returned) only once applied. With a `basis`, it
    /// is made only if the code that made `payload` ran at exactly the HLC the delta gets and
    /// on exactly the current heads; a mismatch makes nothing and is counted.
    fn make_local_delta(
        &mut self,
        app: &mut dyn Applier,
        context: ContextId,
        payload: Vec<u8>,
        basis: Option<WriteBasis>,
    ) -> Result<DeltaId, NodeError> {
        // The payload goes out sealed, which adds a fixed overhead.
        let max_payload = self.config.limits.max_payload_bytes.saturating_sub(crate::seal::SealedPayload::OVERHEAD);
        if payload.len() > max_payload {
            return Err(NodeError::PayloadTooLarge { bytes: payload.len(), max: max_payload });
        }
        let replica = self.replicas.get_mut(&context).ok_or(NodeError::UnknownContext(context))?;
        if !replica.dag.members().contains(&self.author) {
            return Err(NodeError::NotMember(context));
        }
        if let Some(basis) = basis {
            let delta_at = self.clock.peek(self.wall_ms);
            if delta_at != basis.hlc {
                self.metrics.local_hlc_mismatches += 1;
                return Err(NodeError::HlcMismatch { ran_at: basis.hlc, delta_at });
            }
            if !replica.dag.heads().iter().eq(basis.heads.iter()) {
                self.metrics.local_heads_mismatches += 1;
                return Err(NodeError::HeadsMismatch { ran_on: basis.heads, heads: replica.dag.heads_vec() });
            }
            // The code ran on these heads: a rotation now would put the write on others.
            if self.needs_rotation(&context) {
                return Err(NodeError::KeyRotationNeeded(context));
            }
        } else if self.needs_rotation(&context) {
            self.rotate_for_write(app, context)?;
        }
        self.author_delta(app, context, DeltaKind::App, payload)
    }

    /// Authors a delta of `kind` on top of the current heads, applies it and publishes it.
    fn author_delta(
        &mut self,
        app: &mut dyn Applier,
        context: ContextId,
        kind: DeltaKind,
        payload: Vec<u8>,
    ) -> Result<DeltaId, NodeError> {
        let replica = self.replicas.get(&context).ok_or(NodeError::UnknownContext(context))?;
        // With more heads than a delta may name, merge the first ones; the rest stay heads
        // and the next local delta merges them. Heads are sorted, as parents must be.
        let parents = self.write_parents(&replica.dag);
        let hlc = self.clock.peek(self.wall_ms);
        let payload = match kind {
            DeltaKind::App => self.seal_write(&context, &parents, &hlc, &payload)?,
            _ => payload,
        };
        let ticked = self.clock.tick(self.wall_ms);
        debug_assert_eq!(ticked, hlc, "peek names the next tick");
        let delta = Arc::new(CausalDelta::new_signed_kind(&self.keypair, context, parents, hlc, kind, payload));
        self.learn_keys(&context, &delta.author, &delta.kind);
        let replica = self.replicas.get_mut(&context).ok_or(NodeError::UnknownContext(context))?;
        match replica.dag.add(self.now, delta.clone(), app) {
            AddOutcome::Applied { .. } => {}
            AddOutcome::Quarantined(error) => {
                replica.dag.discard_quarantined(&delta.id);
                return Err(NodeError::ApplyFailed(error));
            }
            // The heads' view allowed it, but the parents named (at most the first
            // `max_parents_per_delta` heads) may not hold every membership change.
            AddOutcome::Rejected(_) => return Err(NodeError::NotMember(context)),
            other => unreachable!("a delta on top of applied heads is applied or fails: {other:?}"),
        }
        self.metrics.local_deltas += 1;
        self.emit_applied(context, delta.id, self.author, true);
        self.broadcast(context, crate::wire::GossipV1::Delta(delta.clone()));
        Ok(delta.id)
    }

    /// The HLC the next local write at `now` will carry. Application code runs before its
    /// delta exists and must see the delta's time (and derive stamps from it); pass it back in
    /// the write's [`WriteBasis`].
    pub fn next_local_hlc(&self, now: impl Into<Clocks>) -> crate::hlc::Hlc {
        self.clock.peek(now.into().wall_ms)
    }

    /// [`Input::RetryQuarantined`]: tries the context's quarantined deltas again. Returns the
    /// ids applied.
    fn retry(&mut self, app: &mut dyn Applier, context: &ContextId) -> Result<Vec<DeltaId>, NodeError> {
        let replica = self.replicas.get_mut(context).ok_or(NodeError::UnknownContext(*context))?;
        let crate::dag::Retried { applied, quarantined } = replica.dag.retry_quarantined(self.now, app);
        // The cascades among them came out of the pending queue, those that failed too.
        self.report_released(*context, applied.iter().chain(&quarantined).copied().collect());
        for id in quarantined {
            self.report_quarantined(*context, id);
        }
        let replica = self.replicas.get_mut(context).ok_or(NodeError::UnknownContext(*context))?;
        for id in &applied {
            let author = replica.dag.get(id).map(|delta| delta.author).unwrap_or_default();
            self.metrics.deltas_applied += 1;
            self.outputs.push_back(Output::Event(Event::DeltaApplied {
                context: *context,
                id: *id,
                author,
                local: false,
            }));
        }
        Ok(applied)
    }

    /// This node's network id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// This node's author key.
    pub fn author_key(&self) -> AuthorKey {
        self.author
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest monotonic time the node was given.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Contexts replicated, sorted.
    pub fn context_ids(&self) -> Vec<ContextId> {
        self.replicas.keys().copied().collect()
    }

    /// A context's DAG.
    pub fn dag(&self, context: &ContextId) -> Option<&DagStore> {
        self.replicas.get(context).map(|replica| &replica.dag)
    }

    /// A context's pending-queue figures now.
    pub fn pending_stats(&self, context: &ContextId) -> Option<PendingStats> {
        self.dag(context).map(|dag| dag.pending_stats(self.now))
    }

    /// Gossip deltas held for a running snapshot sync.
    pub fn snapshot_buffer_len(&self, context: &ContextId) -> usize {
        self.replicas.get(context).map_or(0, |replica| replica.buffer.len())
    }

    /// The running sync session of a context, if any.
    pub fn sync_session(&self, context: &ContextId) -> Option<&SyncSession> {
        self.replicas.get(context).and_then(|replica| replica.session.as_ref())
    }

    /// When a context last synced successfully.
    pub fn last_sync_success(&self, context: &ContextId) -> Option<Timestamp> {
        self.replicas.get(context).and_then(|replica| replica.track.last_success_at())
    }

    /// Consecutive failed syncs of a context.
    pub fn sync_failures(&self, context: &ContextId) -> u32 {
        self.replicas.get(context).map_or(0, |replica| replica.track.consecutive_failures())
    }

    /// Connected peers, sorted.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.connected.iter().copied().collect()
    }

    /// Requests in flight.
    pub fn outstanding_requests(&self) -> usize {
        self.requests.len()
    }

    /// Counters, including the DAG stores' eviction and quarantine totals.
    pub fn metrics(&self) -> NodeMetrics {
        let mut metrics = self.metrics.clone();
        for replica in self.replicas.values() {
            let counters = replica.dag.counters();
            metrics.pending_evicted_capacity += counters.pending_evicted_capacity;
            metrics.pending_evicted_stale += counters.pending_evicted_stale;
        }
        metrics
    }

    /// A new connection is evidence that the peer may hold what we lack (after a partition
    /// heals, every cross-group link comes up): sync each shared context at once unless a
    /// session runs. The minimum interval does not apply, since a link comes up only once.
    ///
    /// We also announce our heads (a signed heartbeat, rate-limited per context) to a member
    /// that connects: a joiner needs other members' attestations to adopt a snapshot, and
    /// would otherwise wait for the periodic heartbeat.
    fn on_peer_up(&mut self, app: &dyn Applier, peer: PeerId) {
        if peer == self.peer_id || !self.connected.insert(peer) {
            return;
        }
        let announce: Vec<ContextId> = self
            .replicas
            .iter()
            .filter(|(_, replica)| replica.is_member_peer(&peer) && !replica.dag.is_empty())
            .map(|(context, _)| *context)
            .collect();
        for context in announce {
            self.announce_heads(app, context);
        }
        let shared: Vec<ContextId> = self
            .replicas
            .iter()
            .filter(|(_, replica)| replica.is_member_peer(&peer) && replica.track.may_force())
            .map(|(context, _)| *context)
            .collect();
        for context in shared {
            if let Some(replica) = self.replicas.get_mut(&context) {
                replica.follow_ups = 0;
            }
            self.start_sync(context, peer, crate::sync::SyncReason::PeerConnected, crate::sync::SyncMode::Deltas);
        }
    }

    /// Checks the node's invariants: every request, session and deferred evidence has exactly
    /// its deadline armed, the fetch bookkeeping matches the requests, and (with
    /// [`InvariantDepth::WithDags`]) each context's DAG is consistent. Panics on a violation.
    /// The DAG walk costs O(history), so the node loop never runs it on its own: tests, the test
    /// cluster and the simulator's sampler call it.
    pub fn check_invariants_to(&self, depth: InvariantDepth) {
        self.requests.check_invariants(|id| self.timers.armed_at(&Deadline::Request(*id)).is_some());
        let mut armed = self.requests.len();
        for (context, replica) in &self.replicas {
            if let Some(session) = &replica.session {
                let deadline = session.started_at.add_millis(self.config.max_sync_session_ms);
                assert_eq!(self.timers.armed_at(&Deadline::Session(*context)), Some(deadline), "session deadline");
                armed += 1;
            }
            assert_eq!(self.timers.armed_at(&Deadline::Evidence(*context)), replica.evidence_due, "evidence deadline");
            armed += usize::from(replica.evidence_due.is_some());
            if depth == InvariantDepth::WithDags {
                replica.dag.check_invariants();
            }
        }
        assert_eq!(self.timers.armed_len(), armed, "a deadline is armed for nothing");
    }

    /// Every invariant, DAGs included (see [`Node::check_invariants_to`]).
    pub fn check_invariants(&self) {
        self.check_invariants_to(InvariantDepth::WithDags);
    }

    /// Ends `context`'s session, if one runs: takes it out of its replica and its deadline out
    /// of the timers. Callers finish it or put it back with [`Node::put_session`].
    fn take_session(&mut self, context: &ContextId) -> Option<SyncSession> {
        let session = self.replicas.get_mut(context)?.session.take()?;
        self.timers.disarm(Deadline::Session(*context));
        Some(session)
    }

    /// Installs a running session in its replica and arms its deadline.
    fn put_session(&mut self, session: SyncSession) {
        let Some(replica) = self.replicas.get_mut(&session.context) else { return };
        let deadline = session.started_at.add_millis(self.config.max_sync_session_ms);
        self.timers.arm(Deadline::Session(session.context), deadline);
        replica.session = Some(session);
    }

    /// True if a sync session runs for `context`.
    fn session_running(&self, context: &ContextId) -> bool {
        self.session_out == Some(*context)
            || self.replicas.get(context).is_some_and(|replica| replica.session.is_some())
    }

    /// Sessions running, over every context (they share `max_concurrent_syncs`), the one out
    /// of its replica while its response is handled included.
    fn sessions_running(&self) -> usize {
        let installed = self.replicas.values().filter(|replica| replica.session.is_some()).count();
        installed + usize::from(self.session_out.is_some())
    }

    fn advance(&mut self, now: Clocks) {
        // Monotonic time never goes backwards inside the core, whatever the caller passes. The
        // wall clock is taken as given: it may step back, and the HLC copes with that itself.
        self.now = self.now.max(now.monotonic);
        self.wall_ms = now.wall_ms;
        // The two clocks drift apart slowly; a jump beyond the drift bound is a step (an
        // operator, NTP, a skew fault). Timers do not care, but the HLC and the drift check do:
        // a step back makes honest peers' deltas look early, a step forward makes ours look
        // early to them. Count it so an operator can see why.
        let offset = wall_offset_ms(now.monotonic, now.wall_ms);
        if offset.abs_diff(self.wall_offset_ms) > self.config.limits.max_hlc_drift_ms {
            self.metrics.wall_clock_steps += 1;
            tracing::warn!(step_ms = offset - self.wall_offset_ms, "the wall clock stepped");
        }
        self.wall_offset_ms = offset;
    }

    fn random_index(&mut self, len: usize) -> usize {
        debug_assert!(len > 0);
        (self.rng.next_u64() % len as u64) as usize
    }

    fn emit_applied(&mut self, context: ContextId, id: DeltaId, author: AuthorKey, local: bool) {
        self.metrics.deltas_applied += 1;
        self.outputs.push_back(Output::Event(Event::DeltaApplied { context, id, author, local }));
    }

    fn broadcast(&mut self, context: ContextId, message: crate::wire::GossipV1) {
        self.metrics.gossip_sent += 1;
        self.outputs.push_back(Output::Broadcast { context, bytes: crate::wire::GossipMessage::encode_v1(message) });
    }

    /// Heads to put in a message: all of them, up to the per-message bound.
    fn capped_heads(&self, dag: &DagStore) -> Vec<DeltaId> {
        dag.heads().iter().take(self.config.limits.max_heads_per_message).copied().collect()
    }

    /// Picks a random connected member peer for `context`, preferring peers seen in it.
    fn choose_peer(&mut self, context: &ContextId, exclude: &[PeerId]) -> Option<PeerId> {
        let replica = self.replicas.get(context)?;
        let usable = |peer: &PeerId| !exclude.contains(peer) && replica.is_member_peer(peer);
        let mut candidates: Vec<PeerId> =
            replica.peers.keys().filter(|peer| self.connected.contains(*peer) && usable(peer)).copied().collect();
        if candidates.is_empty() {
            candidates = self.connected.iter().filter(|peer| usable(peer)).copied().collect();
        }
        if candidates.is_empty() {
            return None;
        }
        let index = self.random_index(candidates.len());
        Some(candidates[index])
    }
}

/// How far the wall clock is ahead of the monotonic one, in milliseconds.
fn wall_offset_ms(monotonic: Timestamp, wall_ms: u64) -> i64 {
    i64::try_from(wall_ms).unwrap_or(i64::MAX).saturating_sub(i64::try_from(monotonic.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
