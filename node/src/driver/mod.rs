//! The node loop: one task owns the core `Node`, the runtime (the application state, lent to
//! the core with every input), the store and the transport. It feeds in transport events, local commands and timer wake-ups, commits what
//! they changed in one write transaction, and only then answers callers and carries out the
//! core's outputs.

mod calls;
mod commands;
mod commit;
mod config;
mod handlers;
mod inspect;
mod invitations;
pub use invitations::MAX_INVITATION_TTL_MS;
mod persist;
mod used_invitations;

pub use config::NodeConfig;

use crate::api::{ApiError, Command, NodeHandle};
use crate::clock::Clock;
use crate::events::{NodeEvent, Subscribers};
use crate::observer::Observer;
use crate::store::{CommitBatch, Committer, ContextBackend, InlineCommitter, Store, StoreError};
use crate::transport::{Transport, TransportEvent};
use rhizome_core::node::RestoreError;
use rhizome_core::{Clocks, ContextId, GossipVerdict, Handled, Input, Keypair, Node, Output, Timestamp};
use rhizome_runtime::{CallError, ContextParts, Runtime, RuntimeOptions, WasmHost};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The core node as this crate runs it.
pub type CoreNode = Node;

/// The application runtime as this crate runs it: the one owner of the application state. The
/// loop calls it for app calls and handler jobs, and lends it to the core as its applier.
pub type AppRuntime = Runtime<ContextBackend>;

/// Test-only injected bug: every this many sync responses, one is dropped.
#[cfg(feature = "inject-drop-sync-response")]
const INJECTED_DROP_EVERY: u64 = 4;

/// The longest the loop sleeps without looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Why a node could not start. Each cause keeps its own typed error, so a caller (the daemon,
/// the simulator) can tell a bad disk from a bad module from a bad stored context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The database could not be read.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The runtime (its WASM engine) could not be built.
    #[error("runtime: {0}")]
    Runtime(CallError),
    /// A stored app module did not install (it no longer compiles or links here).
    #[error("installing a stored app: {0}")]
    StoredApp(CallError),
    /// A stored context could not be restored.
    #[error("restoring context {context}: {reason}")]
    Restore {
        /// The context.
        context: ContextId,
        /// Why.
        reason: RestoreFailure,
    },
}

impl StartError {
    /// A short stable snake_case label, for logs and the daemon's exit message.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Storage(_) => "storage",
            Self::Runtime(_) => "runtime",
            Self::StoredApp(_) => "stored_app",
            Self::Restore { .. } => "restore",
        }
    }
}

/// Which layer refused a stored context ([`StartError::Restore`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreFailure {
    /// The runtime could not bind the context's app and state.
    #[error(transparent)]
    Runtime(CallError),
    /// The core refused the stored members, DAG or pending deltas.
    #[error(transparent)]
    Core(RestoreError),
}

/// Why a running node stopped on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeFailure {
    /// A commit failed; memory is ahead of disk, so the node must restart from disk.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The transport closed.
    #[error("the transport closed")]
    TransportClosed,
}

/// The node loop's own counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverMetrics {
    /// Write transactions committed.
    pub commits: u64,
    /// Flushes whose received data stayed staged for a later commit (see
    /// [`NodeConfig::max_non_durable_ms`]).
    pub commits_deferred: u64,
    /// Inputs fed to the core.
    pub inputs: u64,
    /// Local calls acknowledged: with their delta durable, or (if they wrote nothing) at once.
    pub calls_committed: u64,
    /// Deltas made from batches of local calls: `calls_committed / call_deltas` is about the
    /// calls per delta.
    pub call_deltas: u64,
    /// Local calls that failed.
    pub calls_failed: u64,
    /// Event handler runs.
    pub handler_runs: u64,
    /// Event handler runs that failed.
    pub handler_errors: u64,
    /// Handler deltas the core refused (the job is abandoned).
    pub handler_jobs_abandoned: u64,
    /// Subscribers dropped because they fell behind.
    pub subscribers_dropped_slow: u64,
    /// Blob evictions asked for by the core (there is no blob store yet).
    pub blob_evictions_ignored: u64,
    /// Sync responses dropped by the test-only injected bug.
    pub injected_drops: u64,
}

/// What a node is made of.
pub struct NodeParts<T: Transport> {
    /// Settings.
    pub config: NodeConfig,
    /// Identity.
    pub keypair: Keypair,
    /// Seed of every random choice the core makes.
    pub rng_seed: u64,
    /// The network.
    pub transport: T,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The database (on disk, or on the simulator's disk).
    pub db: redb::Database,
    /// A shared WASM engine, if several nodes share a process; `None` builds one.
    pub wasm: Option<WasmHost<ContextBackend>>,
    /// A window on the loop (the simulator's trace); `None` on a real node.
    pub observer: Option<Box<dyn Observer>>,
    /// Where commits run; `None` runs them on the loop ([`InlineCommitter`]).
    pub committer: Option<Box<dyn Committer>>,
}

impl<T: Transport> std::fmt::Debug for NodeParts<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeParts").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A node ready to run: drive [`NodeTask::run`] on a task.
pub struct NodeTask<T: Transport> {
    config: NodeConfig,
    node: CoreNode,
    runtime: AppRuntime,
    store: Store,
    transport: T,
    clock: Arc<dyn Clock>,
    observer: Option<Box<dyn Observer>>,
    commands: mpsc::Receiver<Command>,
    subscribers: Subscribers,
    /// Rows for the next commit.
    batch: CommitBatch,
    /// Contexts whose DAG is rewritten at the next commit (a snapshot was adopted).
    rewrites: BTreeSet<ContextId>,
    /// Apps whose modules are stored.
    stored_apps: BTreeSet<rhizome_runtime::AppId>,
    /// Contexts with handler jobs to run.
    handler_due: BTreeSet<ContextId>,
    /// Contexts with handler jobs left over from this pass.
    handler_later: BTreeSet<ContextId>,
    /// The last handler pass ran at least one job. A pass that ran none (the host could not
    /// run them) waits for the next input instead of spinning.
    handler_progressed: bool,
    /// When the oldest data staged but not committed was staged.
    staged_since: Option<Timestamp>,
    /// Replies to send once the commit is durable.
    acks: Vec<commit::Ack>,
    /// Subscriber events to publish after the commit.
    events: Vec<(ContextId, NodeEvent)>,
    /// Outputs to carry out after the commit.
    outbox: Vec<Output>,
    /// Where commits run.
    committer: Box<dyn Committer>,
    /// The commit started and not landed yet.
    in_flight: Option<commit::InFlight>,
    /// Local calls whose delta is not made yet.
    open_calls: Option<calls::OpenCalls>,
    /// Context records (members, app), as stored.
    records: BTreeMap<ContextId, crate::store::ContextRecord>,
    metrics: DriverMetrics,
    /// This node's identity (the core holds it too): it signs invitations and opens the keys
    /// they carry.
    keypair: Keypair,
    /// Invitation ids joined with, as stored.
    used_invitations: used_invitations::UsedInvitations,
    #[cfg(feature = "inject-drop-sync-response")]
    responses_sent: u64,
}

impl<T: Transport> std::fmt::Debug for NodeTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTask").field("peer_id", &self.node.peer_id()).finish_non_exhaustive()
    }
}

/// Builds a node from its parts, restoring whatever its database holds. Returns the handle
/// callers use and the task to run.
pub fn start<T: Transport>(parts: NodeParts<T>) -> Result<(NodeHandle, NodeTask<T>), StartError> {
    let NodeParts { config, keypair, rng_seed, mut transport, clock, db, wasm, observer, committer } = parts;
    let store = Store::open(db)?;
    let restored = store.load()?;
    let options = RuntimeOptions {
        engine: config.engine,
        limits: config.runtime_limits.clone(),
        local_author: keypair.author_key(),
    };
    let host = match wasm {
        Some(host) => host,
        None => WasmHost::new(&options.engine).map_err(StartError::Runtime)?,
    };
    let mut runtime = Runtime::with_host(options, host).map_err(StartError::Runtime)?;
    let mut stored_apps = BTreeSet::new();
    for module in &restored.apps {
        let app = runtime.install_app(module).map_err(StartError::StoredApp)?;
        stored_apps.insert(app);
    }
    for context in &restored.contexts {
        let parts = ContextParts { app: context.record.app, backend: store.context_backend(context.id) };
        runtime
            .restore_context(context.id, parts)
            .map_err(|error| StartError::Restore { context: context.id, reason: RestoreFailure::Runtime(error) })?;
    }
    let peer_id = keypair.peer_id();
    let mut node = Node::new(config.core.clone(), keypair.clone(), rng_seed, clock.clocks());
    // The hedge for the keys this node makes: the seed is the daemon's OS draw at every start,
    // the simulator's seed there (see `rhizome_core::seal::rotation_key`).
    node.set_key_entropy(blake3::derive_key("rhizome 2026-12 node key entropy v1", &rng_seed.to_le_bytes()));
    if let Some(memo) = &config.signature_memo {
        node.set_signature_memo(memo.clone());
    }
    let (sender, commands) = mpsc::channel(config.command_queue_len.max(1));
    let mut task = NodeTask {
        config,
        node,
        runtime,
        store,
        transport: {
            for context in &restored.contexts {
                transport.subscribe(context.id);
            }
            transport
        },
        clock,
        observer,
        commands,
        subscribers: Subscribers::default(),
        batch: CommitBatch::default(),
        rewrites: BTreeSet::new(),
        stored_apps,
        handler_due: BTreeSet::new(),
        handler_later: BTreeSet::new(),
        handler_progressed: false,
        staged_since: None,
        acks: Vec::new(),
        events: Vec::new(),
        outbox: Vec::new(),
        committer: committer.unwrap_or_else(|| Box::new(InlineCommitter)),
        in_flight: None,
        open_calls: None,
        records: BTreeMap::new(),
        metrics: DriverMetrics::default(),
        keypair,
        used_invitations: used_invitations::UsedInvitations::restored(restored.used_invitations),
        #[cfg(feature = "inject-drop-sync-response")]
        responses_sent: 0,
    };
    for context in restored.contexts {
        task.records.insert(context.id, context.record.clone());
        task.node
            .restore_context(&mut task.runtime, context.id, context.record.bootstrap, context.applied, context.pending)
            .map_err(|error| StartError::Restore { context: context.id, reason: RestoreFailure::Core(error) })?;
        // Handler jobs left from before the restart run now.
        task.handler_due.insert(context.id);
    }
    let now = task.clock.clocks();
    task.collect_outputs(now.monotonic);
    task.run_handlers(now);
    Ok((NodeHandle::new(sender, peer_id), task))
}

impl<T: Transport> NodeTask<T> {
    /// Runs until shut down (every handle dropped, or `shutdown`), or until a failure.
    pub async fn run(mut self) -> Result<(), NodeFailure> {
        self.flush()?;
        loop {
            let now = self.clock.now();
            let wake = self.node.poll_timeout();
            let wait = Duration::from_nanos(wake.as_nanos().saturating_sub(now.as_nanos())).min(MAX_SLEEP);
            // Staging is bounded: past `max_staged_rows`, wait for the commit in flight first.
            if self.staged_rows() >= self.config.max_staged_rows {
                self.await_landing().await?;
            }
            // `biased`: the branch order is fixed, so a simulated run never depends on the
            // macro's own random pick.
            tokio::select! {
                biased;
                // A landed commit first: its replies have waited longest.
                result = commit::landed(&mut self.in_flight), if self.in_flight.is_some() => self.land(result)?,
                event = self.transport.next_event() => match event {
                    Some(event) => self.on_transport(event),
                    None => {
                        self.flush_final().await?;
                        return Err(NodeFailure::TransportClosed);
                    }
                },
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if self.on_command(command) {
                            self.flush_final().await?;
                            return Ok(());
                        }
                    }
                    None => {
                        self.flush_final().await?;
                        return Ok(());
                    }
                },
                () = tokio::time::sleep(wait) => {
                    self.feed(Input::Timeout);
                }
                // Handler jobs left over from the last pass run now rather than after the next
                // input: a quiet node would otherwise sit on them until its next timer.
                () = std::future::ready(()), if self.handlers_resumable() => {
                    let now = self.clock.clocks();
                    self.run_handlers(now);
                }
            }
            // Group commit: take what else is ready now into the same transaction.
            let mut stop = false;
            for _ in 0..self.config.max_inputs_per_commit {
                if let Some(event) = self.transport.try_next_event() {
                    self.on_transport(event);
                } else if let Ok(command) = self.commands.try_recv() {
                    if self.on_command(command) {
                        stop = true;
                        break;
                    }
                } else {
                    break;
                }
            }
            if self.node.poll_timeout() <= self.clock.now() {
                self.feed(Input::Timeout);
            }
            if stop {
                self.flush_final().await?;
                return Ok(());
            }
            self.flush()?;
        }
    }

    /// The core node (read-only), for tests and status.
    pub fn node(&self) -> &CoreNode {
        &self.node
    }

    fn on_transport(&mut self, event: TransportEvent) {
        let input = match event {
            TransportEvent::Gossip { from, context: _, bytes, token } => {
                // The verdict goes back at once: a relaying transport holds the message until
                // it has it.
                // The core answers every gossip input with a verdict; anything else would be a
                // core bug, and not relaying is the safe reading of it.
                let verdict = match self.feed(Input::Gossip { from, bytes }) {
                    Handled::Gossip(verdict) => verdict,
                    _ => GossipVerdict::Ignore,
                };
                self.transport.report_gossip(token, verdict);
                return;
            }
            TransportEvent::Request { from, id, bytes } => Input::Request { from, request_id: id, bytes },
            TransportEvent::Response { id, bytes } => Input::Response { request_id: id, bytes },
            TransportEvent::RequestFailed { id, reason } => Input::RequestFailed { request_id: id, reason },
            TransportEvent::PeerUp(peer) => Input::PeerUp { peer },
            TransportEvent::PeerDown(peer) => Input::PeerDown { peer },
        };
        self.feed(input);
    }

    /// Feeds one input from the network or the clock to the core and takes in everything it
    /// produced.
    fn feed(&mut self, input: Input) -> Handled {
        self.seal_calls();
        let now = self.clock.clocks();
        let handled = self.submit(now, input);
        self.collect_outputs(now.monotonic);
        self.run_handlers(now);
        handled
    }

    /// The one place an input reaches the core, a local command or not: the observer sees it
    /// first, so a trace holds every input. The caller collects the outputs.
    fn submit(&mut self, now: Clocks, input: Input) -> Handled {
        self.metrics.inputs += 1;
        if let Some(observer) = &mut self.observer {
            observer.on_input(now, &input);
        }
        self.node.handle_input(now, input, &mut self.runtime)
    }

    /// The wall-clock time (Unix milliseconds) at which the monotonic clock read `at`.
    fn wall_ms_at(&self, at: Timestamp) -> u64 {
        let now = self.clock.clocks();
        let ago_ms = u64::try_from(now.monotonic.saturating_since(at).as_millis()).unwrap_or(u64::MAX);
        now.wall_ms.saturating_sub(ago_ms)
    }

    /// Drains the core's outputs: events become rows and subscriber events now; the rest is
    /// carried out after the commit.
    fn collect_outputs(&mut self, now: Timestamp) {
        while let Some(output) = self.node.poll_output() {
            if let Some(observer) = &mut self.observer {
                observer.on_output(now, &output);
            }
            match output {
                Output::Event(event) => self.on_core_event(event),
                other => self.outbox.push(other),
            }
        }
    }

    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Broadcast { context, bytes } => self.transport.publish(context, bytes),
            Output::Request { to, request_id, bytes, deadline } => {
                // The core's deadline is the only one: the transport times out with it.
                let now = self.clock.now();
                let timeout = Duration::from_nanos(deadline.as_nanos().saturating_sub(now.as_nanos()));
                self.transport.request(to, request_id, bytes, timeout);
            }
            Output::Respond { to, request_id, bytes } => {
                #[cfg(feature = "inject-drop-sync-response")]
                {
                    self.responses_sent += 1;
                    if self.responses_sent.is_multiple_of(INJECTED_DROP_EVERY) {
                        self.metrics.injected_drops += 1;
                        return;
                    }
                }
                self.transport.respond(to, request_id, bytes);
            }
            Output::EvictBlobs { blobs } => self.metrics.blob_evictions_ignored += blobs.len() as u64,
            Output::Event(_) => {}
        }
    }

    /// Queues a reply for after the next commit.
    fn ack<V: Send + 'static>(&mut self, reply: crate::api::Reply<V>, result: Result<V, ApiError>) {
        self.acks.push(Box::new(move || {
            let _ = reply.send(result);
        }));
    }
}
