//! Local commands: apps, contexts, calls, queries, subscriptions, status.

use super::NodeTask;
use crate::api::{derive_context_id, ApiError, Command, ContextStatus, NodeStatus};
use crate::store::ContextRecord;
use crate::transport::Transport;
use rhizome_core::{Applier, AuthorKey, Clocks, ContextId, Handled, Input};
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
                let context = derive_context_id(&app, &self.node.author_key(), &nonce);
                let result = self.join(context, app, members).map(|()| context);
                self.ack(reply, result);
            }
            Command::JoinContext { context, app, members, reply } => {
                let result = self.join(context, app, members);
                self.ack(reply, result);
            }
            Command::SetMembers { context, members, reply } => {
                let result = self.set_members(context, members);
                self.ack(reply, result);
            }
            Command::AddMembers { context, keys, reply } => {
                let result = self.add_members(context, keys);
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

    fn join(&mut self, context: ContextId, app: AppId, members: Vec<AuthorKey>) -> Result<(), ApiError> {
        if self.node.dag(&context).is_some() {
            return Err(ApiError::AlreadyJoined(context));
        }
        if self.runtime.app(&app).is_none() {
            return Err(ApiError::UnknownApp);
        }
        // The core checks the member list and context limits first, so a refusal leaves the
        // runtime untouched.
        let now = self.clock.clocks();
        refused(self.submit(now, Input::Join { context, members: members.clone() }))?;
        let parts = ContextParts { app, backend: self.store.context_backend(context) };
        if let Err(error) = self.runtime.restore_context(context, parts) {
            self.submit(now, Input::Leave { context });
            return Err(ApiError::Call(error));
        }
        let record = ContextRecord { app, members };
        self.records.insert(context, record.clone());
        self.batch.contexts.push((context, record));
        self.transport.subscribe(context);
        Ok(())
    }

    /// Replaces a joined context's member list: the core first (it checks the list), then the
    /// stored record, in the next commit, as a join does.
    fn set_members(&mut self, context: ContextId, members: Vec<AuthorKey>) -> Result<(), ApiError> {
        let app = match (self.node.dag(&context), self.records.get(&context)) {
            (Some(_), Some(record)) => record.app,
            _ => return Err(ApiError::UnknownContext(context)),
        };
        let now = self.clock.clocks();
        refused(self.submit(now, Input::SetMembers { context, members: members.clone() }))?;
        let record = ContextRecord { app, members };
        self.records.insert(context, record.clone());
        self.batch.contexts.push((context, record));
        Ok(())
    }

    /// Adds `keys` (and this node) to a joined context's stored members, as one step of the
    /// loop: read, extend and write cannot interleave with another command.
    fn add_members(&mut self, context: ContextId, keys: Vec<AuthorKey>) -> Result<Vec<AuthorKey>, ApiError> {
        let current = self.records.get(&context).ok_or(ApiError::UnknownContext(context))?;
        let mut members: std::collections::BTreeSet<AuthorKey> = current.members.iter().copied().collect();
        let before = members.len();
        members.extend(keys);
        members.insert(self.node.author_key());
        let members: Vec<AuthorKey> = members.into_iter().collect();
        if members.len() != before {
            self.set_members(context, members.clone())?;
        }
        Ok(members)
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
                    members: record.members.clone(),
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
fn refused(handled: Handled) -> Result<(), ApiError> {
    match handled {
        Handled::Refused(error) => Err(ApiError::Refused(error.to_string())),
        _ => Ok(()),
    }
}
