//! Local commands: apps, contexts, calls, queries, subscriptions, status.

use super::NodeTask;
use crate::api::{genesis_nonce, ApiError, Command, ContextStatus, JoinWith, NodeStatus};
use crate::store::ContextRecord;
use crate::transport::Transport;
use rhizome_core::{Applier, AuthorKey, Clocks, ContextId, DeltaId, Handled, Input, MemberOp, Role};
use rhizome_runtime::{AppId, ContextParts};

impl<T: Transport> NodeTask<T> {
    /// Handles one command. Returns true when the loop must stop after the commit.
    pub(super) fn on_command(&mut self, command: Command) -> bool {
        let now = self.clock.clocks();
        if !matches!(command, Command::Call { .. }) {
            self.seal_calls();
        }
        match command {
            Command::InstallApp { module, reply } => {
                let result = self.install_app(module);
                self.ack(reply, result);
            }
            Command::CreateContext { app, members, nonce, reply } => {
                let result = self.create(app, members, nonce);
                self.ack(reply, result);
            }
            Command::JoinContext { context, app, join, reply } => {
                let result = self.join(context, app, join);
                self.ack(reply, result);
            }
            Command::ChangeMembers { context, ops, reply } => {
                let result = self.change_members(context, ops);
                self.ack(reply, result);
            }
            Command::AddMembers { context, keys, reply } => {
                let result = self.add_members(context, keys);
                self.ack(reply, result);
            }
            Command::Invite { context, offer, reply } => {
                let result = self.invite(context, offer);
                self.ack(reply, result);
            }
            Command::JoinByInvitation { invitation, reply } => {
                let result = self.join_by_invitation(&invitation);
                self.ack(reply, result);
            }
            Command::Apps { reply } => {
                let _ = reply.send(Ok(self.stored_apps.iter().copied().collect()));
            }
            Command::Call { context, method, input, reply } => self.on_call(now, context, &method, input, reply),
            Command::Query { context, method, input, reply } => {
                let _ = reply.send(self.query(now, context, &method, input));
            }
            Command::Subscribe { context, reply } => {
                let result = if self.node.dag(&context).is_none() {
                    Err(ApiError::UnknownContext(context))
                } else if self.subscribers.len() >= self.config.max_subscribers {
                    Err(ApiError::Refused(format!("at the limit of {} subscribers", self.config.max_subscribers)))
                } else {
                    Ok(self.subscribers.add(context, self.config.subscriber_queue_events))
                };
                let _ = reply.send(result);
            }
            Command::Status { reply } => {
                let _ = reply.send(Ok(self.status()));
            }
            Command::CheckInvariants { depth, reply } => {
                self.node.check_invariants_to(depth);
                let _ = reply.send(Ok(()));
            }
            Command::Missing { context, ids, reply } => {
                let result = match self.node.dag(&context) {
                    Some(dag) => Ok(ids.into_iter().filter(|id| !dag.is_applied(id)).collect()),
                    None => Err(ApiError::UnknownContext(context)),
                };
                let _ = reply.send(result);
            }
            Command::AppDeltasAfter { context, after, reply } => {
                let _ = reply.send(self.app_deltas_after(&context, &after));
            }
            Command::ReadProbe { context, deltas, reply } => {
                let _ = reply.send(self.read_probe(&context, &deltas));
            }
            Command::Shutdown { reply } => {
                self.ack(reply, Ok(()));
                return true;
            }
        }
        false
    }

    fn install_app(&mut self, module: Vec<u8>) -> Result<AppId, ApiError> {
        let app = self.runtime.install_app(&module).map_err(ApiError::Call)?;
        if self.stored_apps.insert(app) {
            self.batch.apps.push((app, module));
        }
        Ok(app)
    }

    /// Creates a context: the core authors its genesis (this node its admin), then the
    /// runtime opens its state, as a join does.
    fn create(&mut self, app: AppId, members: Vec<AuthorKey>, nonce: [u8; 16]) -> Result<ContextId, ApiError> {
        if self.runtime.app(&app).is_none() {
            return Err(ApiError::UnknownApp);
        }
        let now = self.clock.clocks();
        let members = members.into_iter().map(|key| (key, Role::Member)).collect();
        let handled = self.submit(now, Input::Create { nonce: genesis_nonce(&app, &nonce), members });
        // The genesis is a row of this commit, and the reply waits for it.
        self.collect_outputs(now.monotonic);
        let context = match handled {
            Handled::Created(context) => context,
            Handled::Refused(rhizome_core::NodeError::AlreadyJoined(context)) => {
                return Err(ApiError::AlreadyJoined(context))
            }
            other => return Err(unexpected(other)),
        };
        self.open_context(now, context, app, Vec::new())?;
        Ok(context)
    }

    pub(super) fn join(&mut self, context: ContextId, app: AppId, join: JoinWith) -> Result<(), ApiError> {
        if self.node.dag(&context).is_some() {
            return Err(ApiError::AlreadyJoined(context));
        }
        if self.runtime.app(&app).is_none() {
            return Err(ApiError::UnknownApp);
        }
        // The core checks the genesis and context limits first, so a refusal leaves the
        // runtime untouched.
        let now = self.clock.clocks();
        let JoinWith { bootstrap, genesis, keys } = join;
        let handled = self.submit(now, Input::Join { context, genesis, bootstrap: bootstrap.clone(), keys });
        self.collect_outputs(now.monotonic);
        refused(handled)?;
        self.open_context(now, context, app, bootstrap)
    }

    /// Opens a context the core has just joined: its state in the runtime, its record, its
    /// topic. Leaves the context in the core again if the runtime refuses.
    fn open_context(
        &mut self,
        now: Clocks,
        context: ContextId,
        app: AppId,
        bootstrap: Vec<AuthorKey>,
    ) -> Result<(), ApiError> {
        let parts = ContextParts { app, backend: self.store.context_backend(context) };
        if let Err(error) = self.runtime.restore_context(context, parts) {
            self.submit(now, Input::Leave { context });
            return Err(ApiError::Call(error));
        }
        let record = ContextRecord { app, bootstrap };
        self.records.insert(context, record.clone());
        self.batch.contexts.push((context, record));
        self.transport.subscribe(context);
        Ok(())
    }

    /// Authors a membership delta; durable and published with the next commit, as a call's.
    pub(super) fn change_members(&mut self, context: ContextId, ops: Vec<MemberOp>) -> Result<DeltaId, ApiError> {
        if self.node.dag(&context).is_none() {
            return Err(ApiError::UnknownContext(context));
        }
        let now = self.clock.clocks();
        let handled = self.submit(now, Input::ChangeMembers { context, ops });
        // The delta is a row of this commit and goes out with it; the reply waits for it.
        self.collect_outputs(now.monotonic);
        match handled {
            Handled::Authored(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    /// Adds those of `keys` who are not members yet, in one membership delta, as one step of
    /// the loop: reading the members and writing the change cannot interleave with another
    /// command.
    fn add_members(&mut self, context: ContextId, keys: Vec<AuthorKey>) -> Result<Vec<AuthorKey>, ApiError> {
        let dag = self.node.dag(&context).ok_or(ApiError::UnknownContext(context))?;
        let members = dag.members().clone();
        let mut new: Vec<AuthorKey> = keys.into_iter().filter(|key| !members.contains(key)).collect();
        new.sort_unstable();
        new.dedup();
        if !new.is_empty() {
            let ops = new.into_iter().map(|key| MemberOp::Add(key, Role::Member)).collect();
            self.change_members(context, ops)?;
        }
        let dag = self.node.dag(&context).ok_or(ApiError::UnknownContext(context))?;
        Ok(dag.members().members().keys().copied().collect())
    }

    /// Runs an app method at the HLC its delta would carry (the same `now` is then used for
    /// the delta, so the stamps match).
    pub(super) fn run_method(
        &mut self,
        now: Clocks,
        context: ContextId,
        method: &str,
        input: Vec<u8>,
    ) -> Result<rhizome_runtime::CallOutcome, ApiError> {
        if self.node.dag(&context).is_none() {
            return Err(ApiError::UnknownContext(context));
        }
        let hlc = self.node.next_local_hlc(now);
        self.runtime.call(context, method, input, hlc).map_err(ApiError::Call)
    }

    fn query(&mut self, now: Clocks, context: ContextId, method: &str, input: Vec<u8>) -> Result<Vec<u8>, ApiError> {
        let outcome = self.run_method(now, context, method, input)?;
        if outcome.needs_delta() {
            self.runtime.discard_uncommitted();
            return Err(ApiError::QueryWrote(method.to_owned()));
        }
        Ok(outcome.return_value)
    }

    fn status(&self) -> NodeStatus {
        let contexts = self
            .node
            .context_ids()
            .into_iter()
            .filter_map(|context| {
                let dag = self.node.dag(&context)?;
                let record = self.records.get(&context)?;
                Some(ContextStatus {
                    context,
                    app: record.app,
                    members: dag.members().members().keys().copied().collect(),
                    admins: dag
                        .members()
                        .members()
                        .iter()
                        .filter(|(_, role)| **role == Role::Admin)
                        .map(|(key, _)| *key)
                        .collect(),
                    heads: dag.heads_vec(),
                    root: self.runtime.root_hash(&context),
                    applied: dag.applied_len(),
                    pending: dag.pending_len(),
                    snapshot_buffer: self.node.snapshot_buffer_len(&context),
                    handler_jobs: self.runtime.pending_handler_jobs(&context),
                    last_sync_ms: self.node.last_sync_success(&context).map(|at| self.wall_ms_at(at)),
                })
            })
            .collect();
        NodeStatus {
            peer_id: self.node.peer_id(),
            peers: self.node.connected_peers(),
            contexts,
            metrics: self.node.metrics(),
            runtime: self.runtime.metrics().clone(),
            driver: self.metrics.clone(),
        }
    }
}

/// A core refusal as the API's error.
/// A command's answer that is not the one it should have: the refusal it carries, or (a core
/// bug) the answer itself.
fn unexpected(handled: Handled) -> ApiError {
    match handled {
        Handled::Refused(error) => ApiError::Refused(error.to_string()),
        other => ApiError::Refused(format!("unexpected answer {other:?}")),
    }
}

fn refused(handled: Handled) -> Result<(), ApiError> {
    match handled {
        Handled::Refused(error) => Err(ApiError::Refused(error.to_string())),
        _ => Ok(()),
    }
}
