//! Driving sync sessions through their phases (see [`crate::sync::session`]).

use super::ingest::Via;
use super::requests::Purpose;
use super::{Event, Node, Output};
use crate::applier::Applier;
use crate::dag::{AddOutcome, SinceCursor};
use crate::delta::DeltaHeader;
use crate::delta::DeltaRef;
use crate::ids::{ContextId, DeltaId, PeerId, RootHash};
use crate::sync::session::SessionPhase;
use crate::sync::snapshot::{AssemblyLimits, SnapshotAssembly};
use crate::sync::{SyncFailure, SyncMode, SyncReason, SyncSession};
use crate::wire::{SnapshotCheckpoint, SnapshotPage, SyncErrorCode, SyncRequestV1, SyncResponseV1};

/// One page of a deltas answer, as the session reads it.
struct DeltasPage {
    /// The first page of the session's fetch: its gap total may send the session to a snapshot.
    first: bool,
    deltas: Vec<DeltaRef>,
    next: Option<SinceCursor>,
    gap_total: u64,
}

/// What a response did to a session.
enum Step {
    /// The next request is out; keep the session.
    Continue,
    /// Finished successfully.
    Done,
    /// Failed, with the reason.
    Fail(SyncFailure),
}

impl Node {
    /// Starts a session unless one runs for `context` or the concurrency limit is reached.
    pub(super) fn start_sync(&mut self, context: ContextId, peer: PeerId, reason: SyncReason, mode: SyncMode) -> bool {
        if self.session_running(&context) || !self.replicas.contains_key(&context) {
            return false;
        }
        // The one door to a session: whatever asked for it (a relayed delta, a heartbeat, a
        // connection), we sync only with a member, or a bootstrap key until we are one. An
        // outsider that relays a member's delta to a fresh node must not become its source.
        if !self.replicas.get(&context).is_some_and(|replica| replica.is_member_peer(&peer)) {
            self.metrics.syncs_refused_non_member += 1;
            return false;
        }
        if self.sessions_running() >= self.config.limits.max_concurrent_syncs {
            self.metrics.syncs_deferred += 1;
            return false;
        }
        let now = self.now;
        if let Some(replica) = self.replicas.get_mut(&context) {
            replica.track.on_start(now);
        }
        self.metrics.syncs_started += 1;
        let mut session = SyncSession {
            context,
            peer,
            reason,
            mode,
            phase: SessionPhase::AwaitingHeads,
            started_at: self.now,
            deltas_received: 0,
            deltas_target: None,
            snapshot_declined: false,
        };
        match mode {
            SyncMode::Deltas if reason.fetches_directly() && self.holds_history(&context) => {
                // We already expect the peer to hold more: ask for it in the first round trip
                // ("your heads"), skipping the heads exchange. Heals spread twice as fast.
                self.request_deltas_page(&mut session, Vec::new(), None);
            }
            SyncMode::Deltas => {
                self.send_request(peer, SyncRequestV1::Heads { context }, Purpose::Sync { context });
            }
            SyncMode::Snapshot => self.begin_snapshot(&mut session),
        }
        self.outputs.push_back(Output::Event(Event::SyncStarted { context, peer, reason, mode }));
        self.put_session(session);
        true
    }

    pub(super) fn on_sync_response(
        &mut self,
        app: &mut dyn Applier,
        context: ContextId,
        peer: PeerId,
        response: SyncResponseV1,
    ) {
        let Some(mut session) = self.take_session(&context) else {
            self.metrics.stale_responses += 1;
            return;
        };
        // Handling the response may ingest deltas, which may want a session for this context:
        // the one out of its replica still runs.
        self.session_out = Some(context);
        let phase = std::mem::replace(&mut session.phase, SessionPhase::AwaitingHeads);
        let phase_name = phase.name();
        let step = match (phase, response) {
            (SessionPhase::AwaitingHeads, SyncResponseV1::Heads { context: answered, heads, root, .. })
                if answered == context =>
            {
                self.after_heads(&mut session, heads, root)
            }
            (
                SessionPhase::FetchingDeltas { target, after },
                SyncResponseV1::Deltas { context: answered, deltas, next, gap_total },
            ) if answered == context => {
                let page = DeltasPage { first: after.is_none(), deltas, next, gap_total };
                self.after_deltas_page(app, &mut session, target, page)
            }
            (
                SessionPhase::AwaitingHeads | SessionPhase::FetchingDeltas { .. },
                SyncResponseV1::Error(code @ (SyncErrorCode::SnapshotRequired | SyncErrorCode::GapTooLarge)),
            ) => self.on_snapshot_demanded(&mut session, code),
            (SessionPhase::AwaitingCheckpoint, SyncResponseV1::SnapshotCheckpoint(checkpoint)) => {
                self.after_checkpoint(&mut session, checkpoint)
            }
            (SessionPhase::FetchingSnapshot(assembly), SyncResponseV1::SnapshotPage(page)) => {
                self.after_snapshot_page(app, &mut session, *assembly, page)
            }
            (_, SyncResponseV1::Error(code)) => Step::Fail(SyncFailure::PeerError(code)),
            (_, _) => Step::Fail(SyncFailure::UnexpectedResponse { phase: phase_name }),
        };
        let _ = peer;
        self.session_out = None;
        match step {
            Step::Continue => self.put_session(session),
            Step::Done => self.finish_session(app, session, Ok(())),
            Step::Fail(reason) => self.finish_session(app, session, Err(reason)),
        }
    }

    fn after_heads(&mut self, session: &mut SyncSession, heads: Vec<DeltaId>, root: RootHash) -> Step {
        let context = session.context;
        let now = self.now;
        let max_peers = self.config.limits.max_peers_per_context;
        let Some(replica) = self.replicas.get_mut(&context) else {
            return Step::Fail(SyncFailure::ContextLeft);
        };
        let view = replica.note_peer(session.peer, now, max_peers);
        view.heads.clone_from(&heads);
        view.root = Some(root);
        let lacking = heads.iter().any(|head| !replica.dag.is_applied(head) && replica.dag.quarantined(head).is_none());
        if !lacking {
            return Step::Done;
        }
        // A fresh context asks for deltas too: the first page's gap total sends it to a
        // snapshot only when the history is over the threshold. Deltas run the app's event
        // handlers and a snapshot cannot, so a node joining a young context must not skip
        // them (crash-restart, seed 24: a node that joined 4 deltas late never handled one).
        self.request_deltas_page(session, heads, None);
        Step::Continue
    }

    fn after_deltas_page(
        &mut self,
        app: &mut dyn Applier,
        session: &mut SyncSession,
        target: Vec<DeltaId>,
        page: DeltasPage,
    ) -> Step {
        let DeltasPage { first: first_page, deltas, next, gap_total } = page;
        if first_page && self.far_behind_by_own_view(session, Some(gap_total)) {
            tracing::debug!(context = %session.context, gap_total, "gap over threshold: snapshot instead");
            // The peer offered deltas: fetch them after all if too few members vouch for its
            // snapshot.
            session.deltas_target = Some(target);
            self.begin_snapshot(session);
            return Step::Continue;
        }
        if deltas.is_empty() && next.is_some() {
            return Step::Fail(SyncFailure::EmptyPage);
        }
        let verdicts = self.verify_together(&deltas);
        for (delta, verified) in deltas.into_iter().zip(verdicts) {
            if delta.context != session.context {
                return Step::Fail(SyncFailure::ForeignDelta);
            }
            session.deltas_received += 1;
            self.ingest_checked(app, session.peer, delta, Via::Fetch, verified);
        }
        match next {
            Some(cursor) => {
                self.request_deltas_page(session, target, Some(cursor));
                Step::Continue
            }
            None => Step::Done,
        }
    }

    /// Whether our own view says a snapshot may replace our state: it would not erase history
    /// held only as snapshot state (that could not be re-applied), no snapshot of this session
    /// was declined already, and we are far behind: the gap we know of is over
    /// [`crate::Config::snapshot_gap_threshold_deltas`], or, when no gap is known, the
    /// context holds nothing yet (a young context's joiner still learns the gap from a first
    /// page, whose deltas run the app's event handlers, which a snapshot cannot).
    fn far_behind_by_own_view(&self, session: &SyncSession, known_gap: Option<u64>) -> bool {
        let Some(replica) = self.replicas.get(&session.context) else { return false };
        if session.snapshot_declined || replica.dag.structure_only_len() != 0 {
            return false;
        }
        match known_gap {
            Some(gap) => gap > self.config.snapshot_gap_threshold_deltas,
            None => replica.dag.is_fresh(),
        }
    }

    /// The peer answered `SnapshotRequired` or `GapTooLarge`: its word alone would let any
    /// member send a replica holding acknowledged writes to a snapshot of its choosing (the
    /// fake-head attack), so we follow it only when our own view agrees. The peer told us no
    /// gap, and a first page over the threshold would have sent us to a snapshot already, so
    /// here that is a context that holds nothing yet.
    fn on_snapshot_demanded(&mut self, session: &mut SyncSession, code: SyncErrorCode) -> Step {
        if self.far_behind_by_own_view(session, None) {
            self.begin_snapshot(session);
            return Step::Continue;
        }
        tracing::debug!(context = %session.context, peer = %session.peer, %code, "snapshot demand not warranted");
        *self.metrics.snapshot_demands_refused.entry(code.label()).or_default() += 1;
        Step::Fail(SyncFailure::SnapshotNotWarranted(code))
    }

    /// True if `context` holds deltas, so a gap can be described by our heads (a fresh
    /// context starts with the heads exchange, to learn whether there is anything at all).
    fn holds_history(&self, context: &ContextId) -> bool {
        self.replicas.get(context).is_some_and(|replica| !replica.dag.is_fresh())
    }

    fn request_deltas_page(&mut self, session: &mut SyncSession, target: Vec<DeltaId>, after: Option<SinceCursor>) {
        let context = session.context;
        let max_known = self.config.limits.max_heads_per_message;
        let known = self.replicas.get(&context).map(|replica| replica.dag.known_sample(max_known)).unwrap_or_default();
        let request = SyncRequestV1::DeltasSince {
            context,
            known,
            wanted: target.clone(),
            after,
            max_deltas: self.config.limits.max_deltas_per_page as u32,
        };
        self.send_request(session.peer, request, Purpose::Sync { context });
        session.phase = SessionPhase::FetchingDeltas { target, after };
    }

    /// Switches the session to snapshot mode; gossip for the context is buffered from now on.
    fn begin_snapshot(&mut self, session: &mut SyncSession) {
        let context = session.context;
        session.mode = SyncMode::Snapshot;
        session.phase = SessionPhase::AwaitingCheckpoint;
        self.send_request(session.peer, SyncRequestV1::SnapshotBegin { context }, Purpose::Sync { context });
    }

    fn after_checkpoint(&mut self, session: &mut SyncSession, checkpoint: SnapshotCheckpoint) -> Step {
        // Before a byte of state is fetched: who vouches for exactly this (heads, root)?
        let count =
            self.count_vouchers(&session.context, session.peer, session.reason, &checkpoint.heads, &checkpoint.root);
        if !count.is_enough() {
            self.metrics.snapshots_unvouched += 1;
            tracing::debug!(context = %session.context, peer = %session.peer, ?count, "snapshot not vouched for");
            if let Some(target) = session.deltas_target.take() {
                // The peer can serve the gap as deltas, which need nobody's word: read them.
                session.snapshot_declined = true;
                session.mode = SyncMode::Deltas;
                self.request_deltas_page(session, target, None);
                return Step::Continue;
            }
            return Step::Fail(SyncFailure::SnapshotUnvouched { vouchers: count.vouchers, required: count.required });
        }
        let limits = AssemblyLimits {
            max_state_bytes: self.config.limits.max_snapshot_bytes,
            max_entries: self.config.limits.max_snapshot_ids,
        };
        match SnapshotAssembly::new(checkpoint, &session.context, limits) {
            Ok(assembly) => {
                self.request_snapshot_page(session, assembly);
                Step::Continue
            }
            Err(error) => {
                self.metrics.snapshots_refused += 1;
                Step::Fail(SyncFailure::SnapshotAssembly(error))
            }
        }
    }

    fn after_snapshot_page(
        &mut self,
        app: &mut dyn Applier,
        session: &mut SyncSession,
        mut assembly: SnapshotAssembly,
        page: SnapshotPage,
    ) -> Step {
        if let Err(error) = assembly.accept(page) {
            self.metrics.snapshots_refused += 1;
            return Step::Fail(SyncFailure::SnapshotAssembly(error));
        }
        if !assembly.is_complete() {
            self.request_snapshot_page(session, assembly);
            return Step::Continue;
        }
        match self.adopt_snapshot(app, session, assembly) {
            Ok(()) => Step::Done,
            Err(reason) => {
                self.metrics.snapshots_refused += 1;
                Step::Fail(reason)
            }
        }
    }

    fn request_snapshot_page(&mut self, session: &mut SyncSession, assembly: SnapshotAssembly) {
        let context = session.context;
        let request = SyncRequestV1::SnapshotPage {
            context,
            snapshot_id: assembly.checkpoint().snapshot_id,
            page: assembly.next_page(),
        };
        self.send_request(session.peer, request, Purpose::Sync { context });
        session.phase = SessionPhase::FetchingSnapshot(Box::new(assembly));
    }

    /// Verifies and adopts an assembled snapshot: the DAG checkpoint is checked first, the
    /// state is imported only if it hashes to the announced root, and then our own deltas that
    /// the snapshot lacks are applied on top so that none is lost.
    fn adopt_snapshot(
        &mut self,
        app: &mut dyn Applier,
        session: &SyncSession,
        assembly: SnapshotAssembly,
    ) -> Result<(), SyncFailure> {
        let context = session.context;
        let (checkpoint, state_bytes, entries): (SnapshotCheckpoint, Vec<u8>, Vec<DeltaHeader>) = assembly.into_parts();
        // Counted again: membership or attestations may have changed while pages came in.
        let count = self.count_vouchers(&context, session.peer, session.reason, &checkpoint.heads, &checkpoint.root);
        if !count.is_enough() {
            self.metrics.snapshots_unvouched += 1;
            return Err(SyncFailure::SnapshotUnvouched { vouchers: count.vouchers, required: count.required });
        }
        let replica = self.replicas.get_mut(&context).ok_or(SyncFailure::ContextLeft)?;
        let prepared = replica
            .dag
            .prepare_checkpoint(&entries, &checkpoint.heads, &self.config.limits, self.signature_memo.as_ref())
            .map_err(SyncFailure::SnapshotCheckpoint)?;
        // Counted before the DAG changes: the application deltas we take in as state, never
        // applied here one by one, so their events never reach this node (see docs/ABI.md).
        let unhandled = entries
            .iter()
            .filter(|entry| matches!(entry.kind, crate::delta::DeltaKind::App) && !replica.dag.is_applied(&entry.id))
            .count();
        // No stamp may be later than a delta's HLC could be (the drift check on ingest).
        let (wall_ms, max_drift_ms) = (self.wall_ms, self.config.limits.max_hlc_drift_ms);
        let max_stamp_ms = wall_ms.saturating_add(max_drift_ms);
        let latest = app
            .import_state(&context, &state_bytes, &checkpoint.root, max_stamp_ms)
            .map_err(SyncFailure::SnapshotState)?;
        // Our next write must order after everything imported: a local write stamped below an
        // imported register would lose to it, and one that names an imported tag or list node
        // would refer to a stamp later than its own (refused everywhere). The applier checked
        // every stamp against the same bound, so the drift check cannot refuse an honest one.
        if let Some(latest) = latest {
            if let Err(error) = self.clock.observe(latest, wall_ms, max_drift_ms) {
                tracing::error!(%context, %error, "applier imported a stamp beyond the clock bound");
            }
        }
        let actual = app.root_hash(&context);
        if actual != checkpoint.root {
            // The applier broke its contract; report instead of adopting a DAG that does not
            // match the state.
            tracing::error!(%context, %actual, expected = %checkpoint.root, "applier root differs after import");
            return Err(SyncFailure::SnapshotRootMismatch);
        }
        let replay = replica.dag.install_checkpoint(prepared);
        // The history the snapshot covers holds the keys its later deltas are sealed under.
        for entry in &entries {
            self.learn_keys(&context, &entry.author, &entry.kind);
        }
        let replayed = replay.reapply.len();
        for delta in replay.reapply {
            // Already applied here before and re-applied on the new state: no new event for
            // it. Its parents are in the snapshot or re-applied before it, so it applies,
            // unless the applier now refuses it, in which case it is quarantined and reported.
            let id = delta.id;
            let replica = self.replicas.get_mut(&context).expect("context checked above");
            match replica.dag.add(self.now, delta, app) {
                AddOutcome::Applied { .. } => {}
                AddOutcome::Quarantined(error) => {
                    self.metrics.quarantined += 1;
                    self.outputs.push_back(Output::Event(Event::DeltaQuarantined { context, id, error }));
                }
                other => tracing::error!(%context, %id, ?other, "re-applying a local delta after a snapshot"),
            }
        }
        // The queue was taken in; what still waits is reported pending again as it is re-added.
        self.report_released(context, replay.requeue.iter().map(|delta| delta.id).collect());
        for delta in replay.requeue {
            self.add_verified(app, None, delta);
        }
        self.metrics.snapshots_adopted += 1;
        self.metrics.snapshot_deltas_without_events += unhandled as u64;
        self.note_adoption(context, session.peer, session.reason, checkpoint.heads.clone(), checkpoint.root, count);
        tracing::info!(%context, root = %checkpoint.root, entries = checkpoint.entry_count, replayed, "adopted snapshot");
        self.outputs.push_back(Output::Event(Event::SnapshotAdopted {
            context,
            root: checkpoint.root,
            entries: checkpoint.entry_count,
            replayed,
        }));
        Ok(())
    }

    /// Ends a session, records the result with the tracker, and replays buffered gossip.
    pub(super) fn finish_session(
        &mut self,
        app: &mut dyn Applier,
        session: SyncSession,
        result: Result<(), SyncFailure>,
    ) {
        let context = session.context;
        let mut follow_up = None;
        match result {
            Ok(()) => {
                // Only a backlog is news: announcing routine repairs of one or two lost
                // messages sent peers after deltas that were still in flight to them, whose
                // syncs announced in turn (a 10-minute run held four sessions per node-second).
                if session.deltas_received >= self.config.min_sync_follow_up_deltas {
                    self.announce_heads(app, context);
                }
                follow_up = self.follow_up_peer(&session);
                let now = self.now;
                if let Some(replica) = self.replicas.get_mut(&context) {
                    replica.track.on_success(now);
                }
                self.metrics.syncs_succeeded += 1;
                self.outputs.push_back(Output::Event(Event::SyncCompleted {
                    context,
                    peer: session.peer,
                    mode: session.mode,
                    deltas_received: session.deltas_received,
                }));
            }
            Err(reason) => {
                let (policy, now) = (self.tracking_policy, self.now);
                let backoff_ms =
                    self.replicas.get_mut(&context).map_or(0, |replica| replica.track.on_failure(&policy, now));
                self.metrics.syncs_failed += 1;
                *self.metrics.sync_failures.entry(reason.label()).or_default() += 1;
                tracing::debug!(%context, peer = %session.peer, %reason, backoff_ms, "sync failed");
                self.outputs.push_back(Output::Event(Event::SyncFailed {
                    context,
                    peer: session.peer,
                    reason,
                    backoff_ms,
                }));
            }
        }
        let buffered = self.replicas.get_mut(&context).map(|replica| replica.buffer.drain()).unwrap_or_default();
        let deltas: Vec<DeltaRef> = buffered.iter().map(|(_, delta)| delta.clone()).collect();
        let verdicts = self.verify_together(&deltas);
        for ((from, delta), verified) in buffered.into_iter().zip(verdicts) {
            self.ingest_checked(app, from, delta, Via::Replay, verified);
        }
        self.drop_undelivered_claim(&context, &session.peer);
        let followed = follow_up.is_some_and(|peer| {
            self.metrics.sync_follow_ups += 1;
            self.start_sync(context, peer, SyncReason::FollowUp, SyncMode::Deltas)
        });
        if !followed && !self.connected_peers_ahead(&context).is_empty() {
            self.defer_evidence(context);
        }
    }

    /// After a session that brought deltas, another peer may hold yet more (a heal joins
    /// several groups at once): ask more peers at once, up to the configured chain length.
    /// A peer known to hold heads we lack (it said so in a heartbeat or a heads answer) comes
    /// first; otherwise a random one. A chain starts from a session that brought a backlog (at
    /// least [`crate::Config::min_sync_follow_up_deltas`]), or from any session while such
    /// evidence is at hand (it arrived while the session ran).
    /// Inside a chain, an empty session does not end it: the peer picked may have been from
    /// our own side of the heal.
    fn follow_up_peer(&mut self, session: &SyncSession) -> Option<PeerId> {
        let context = session.context;
        let max_follow_ups = self.config.max_sync_follow_ups;
        let brought_a_backlog = session.deltas_received >= self.config.min_sync_follow_up_deltas;
        let ahead = self.connected_peers_ahead(&context);
        let replica = self.replicas.get_mut(&context)?;
        if session.mode != SyncMode::Deltas {
            replica.follow_ups = 0;
            return None;
        }
        let in_chain = session.reason == SyncReason::FollowUp;
        if !brought_a_backlog && !in_chain && ahead.is_empty() {
            replica.follow_ups = 0;
            return None;
        }
        if replica.follow_ups >= max_follow_ups {
            replica.follow_ups = 0;
            return None;
        }
        replica.follow_ups += 1;
        if !ahead.is_empty() {
            let index = self.random_index(ahead.len());
            return Some(ahead[index]);
        }
        self.choose_peer(&context, &[session.peer])
    }

    /// Broadcasts our heads for `context` now, unless we did so within the configured
    /// interval. Called when a sync brought deltas (peers still behind learn whom to pull
    /// from) and when a member connects (a joiner learns our attestation).
    pub(super) fn announce_heads(&mut self, app: &dyn Applier, context: ContextId) {
        let now = self.now;
        let interval_ms = self.config.min_sync_announce_interval_ms;
        let Some(replica) = self.replicas.get_mut(&context) else { return };
        if replica.last_announced_at.is_some_and(|at| now < at.add_millis(interval_ms)) {
            return;
        }
        replica.last_announced_at = Some(now);
        self.metrics.heads_announced += 1;
        self.broadcast_heartbeat(app, context);
    }
}
