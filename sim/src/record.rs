//! What the simulator records while a world runs: the trace hash over every core input and
//! output in order, a readable trace on request, delta propagation times and state samples.

use rhizome_core::{ContextId, DeltaId, Event, Input, Output, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One sample of the world's state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Simulated seconds.
    pub t_s: f64,
    /// Share of live nodes in the largest group with equal root and heads.
    pub agreement: f64,
    /// Largest pending queue of any node.
    pub max_pending: usize,
    /// Pending deltas summed over nodes.
    pub total_pending: usize,
    /// Largest snapshot buffer of any node.
    pub max_snapshot_buffer: usize,
    /// Live nodes.
    pub live: usize,
}

/// An acknowledged write: its delta must be on every live node by the end.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    /// The node that acknowledged it.
    pub(crate) node: usize,
    /// The delta it went into.
    pub(crate) delta: DeltaId,
}

/// The run's shared recorder.
pub(crate) struct Recorder {
    trace: blake3::Hasher,
    pub(crate) trace_lines: Option<Vec<String>>,
    /// Local deltas: when they were committed (simulated time).
    pub(crate) authored: BTreeMap<DeltaId, Duration>,
    /// Remote applications: (delta, node) → delay after authoring.
    pub(crate) arrivals: BTreeMap<DeltaId, Vec<(usize, Duration)>>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) events: u64,
    /// The first time a node's pending queue, followed event by event, went over its limit.
    pub(crate) pending_breach: Option<String>,
    /// Every snapshot sync that completed: (node, the peer that served it).
    pub(crate) snapshot_syncs: Vec<(usize, rhizome_core::PeerId)>,
}

/// A cheap-clone handle.
#[derive(Clone)]
pub(crate) struct SharedRecorder(Arc<Mutex<Recorder>>);

impl SharedRecorder {
    pub(crate) fn new(trace_lines: bool) -> Self {
        Self(Arc::new(Mutex::new(Recorder {
            trace: blake3::Hasher::new(),
            trace_lines: trace_lines.then(Vec::new),
            authored: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            samples: Vec::new(),
            events: 0,
            pending_breach: None,
            snapshot_syncs: Vec::new(),
        })))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Recorder> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a line in the readable trace (faults, calls) and in the hash.
    pub(crate) fn note(&self, at: Duration, line: String) {
        let mut recorder = self.lock();
        recorder.trace.update(b"note");
        recorder.trace.update(line.as_bytes());
        if let Some(lines) = &mut recorder.trace_lines {
            lines.push(format!("{:>10.3}s {line}", at.as_secs_f64()));
        }
    }

    /// Adds a line to the readable trace only: the hash must not depend on whether a trace
    /// is printed.
    pub(crate) fn trace_only(&self, at: Duration, line: String) {
        if let Some(lines) = &mut self.lock().trace_lines {
            lines.push(format!("{:>10.3}s {line}", at.as_secs_f64()));
        }
    }

    pub(crate) fn trace_hash(&self) -> String {
        self.lock().trace.finalize().to_hex().to_string()
    }
}

/// The node loop's observer in the simulator.
pub(crate) struct NodeObserver {
    pub(crate) index: usize,
    pub(crate) recorder: SharedRecorder,
    pub(crate) start: tokio::time::Instant,
    /// The node's pending queues, rebuilt from the core's queue events as they happen (a
    /// restarted node gets a new observer and reports its restored queue again).
    pub(crate) pending: PendingTracker,
}

/// Follows a node's pending queues through the core's events and holds them to their limit
/// on every output, not only when the sampler looks.
#[derive(Debug)]
pub(crate) struct PendingTracker {
    max_pending_deltas: usize,
    queues: BTreeMap<ContextId, BTreeSet<DeltaId>>,
}

impl PendingTracker {
    /// An empty tracker for a node whose queues are capped at `max_pending_deltas` each.
    pub(crate) fn new(max_pending_deltas: usize) -> Self {
        Self { max_pending_deltas, queues: BTreeMap::new() }
    }

    /// Takes in one output; returns the queue's size if it is now over the limit.
    fn observe(&mut self, output: &Output) -> Option<(ContextId, usize)> {
        let Output::Event(event) = output else { return None };
        match event {
            Event::DeltaPending { context, id } => {
                let queue = self.queues.entry(*context).or_default();
                queue.insert(*id);
                (queue.len() > self.max_pending_deltas).then_some((*context, queue.len()))
            }
            Event::PendingEvicted { context, ids, .. } | Event::PendingReleased { context, ids } => {
                if let Some(queue) = self.queues.get_mut(context) {
                    for id in ids {
                        queue.remove(id);
                    }
                }
                None
            }
            _ => None,
        }
    }
}

fn short(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..8].to_owned()
}

impl NodeObserver {
    fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().duration_since(self.start)
    }
}

impl rhizome_node::Observer for NodeObserver {
    fn on_input(&mut self, now: rhizome_core::Clocks, input: &Input) {
        let at = self.elapsed();
        let mut recorder = self.recorder.lock();
        recorder.events += 1;
        let tracing = recorder.trace_lines.is_some();
        let hasher = &mut recorder.trace;
        hasher.update(&(self.index as u64).to_le_bytes());
        hasher.update(&now.monotonic.as_nanos().to_le_bytes());
        // The wall clock drives the HLC and drift checks, so a skew is part of the trace.
        hasher.update(&now.wall_ms.to_le_bytes());
        let line = match input {
            Input::Gossip { from, bytes } => {
                hasher.update(b"gossip").update(from.as_bytes()).update(bytes);
                tracing.then(|| format!("gossip from {} {} B #{}", from, bytes.len(), short(bytes)))
            }
            Input::Request { from, request_id, bytes } => {
                hasher.update(b"request").update(from.as_bytes()).update(&request_id.0.to_le_bytes()).update(bytes);
                tracing.then(|| format!("request from {} {} B #{}", from, bytes.len(), short(bytes)))
            }
            Input::Response { request_id, bytes } => {
                hasher.update(b"response").update(&request_id.0.to_le_bytes()).update(bytes);
                tracing.then(|| format!("response to r{} {} B #{}", request_id.0, bytes.len(), short(bytes)))
            }
            Input::RequestFailed { request_id, reason } => {
                hasher.update(b"failed").update(&request_id.0.to_le_bytes()).update(format!("{reason:?}").as_bytes());
                tracing.then(|| format!("request r{} failed: {reason:?}", request_id.0))
            }
            Input::PeerUp { peer } => {
                hasher.update(b"up").update(peer.as_bytes());
                tracing.then(|| format!("peer up {peer}"))
            }
            Input::PeerDown { peer } => {
                hasher.update(b"down").update(peer.as_bytes());
                tracing.then(|| format!("peer down {peer}"))
            }
            Input::Timeout => {
                hasher.update(b"timeout");
                tracing.then(|| "timeout".to_owned())
            }
            // Local commands enter the trace like everything else.
            Input::LocalWrite { context, payload, basis } => {
                hasher.update(b"write").update(context.as_bytes()).update(payload);
                if let Some(basis) = basis {
                    let hlc = basis.hlc;
                    hasher
                        .update(&hlc.physical_ms.to_le_bytes())
                        .update(&hlc.logical.to_le_bytes())
                        .update(&hlc.node.to_le_bytes());
                    basis.heads.iter().for_each(|head| {
                        hasher.update(&head.0);
                    });
                }
                tracing.then(|| format!("local write {} B #{}", payload.len(), short(payload)))
            }
            Input::Join { context, genesis, bootstrap, keys: _ } => {
                hasher.update(b"join").update(context.as_bytes());
                if let Some(genesis) = genesis {
                    hasher.update(genesis.id.as_bytes());
                }
                bootstrap.iter().for_each(|key| {
                    hasher.update(key.as_bytes());
                });
                tracing.then(|| format!("join {context} ({} bootstrap keys)", bootstrap.len()))
            }
            Input::ChangeMembers { context, ops } => {
                hasher.update(b"members").update(context.as_bytes());
                // Borsh of a list of ops cannot fail.
                hasher.update(&borsh::to_vec(ops).unwrap_or_default());
                tracing.then(|| format!("members {context} ({} ops)", ops.len()))
            }
            other => {
                let text = format!("{other:?}");
                hasher.update(text.as_bytes());
                Some(text)
            }
        };
        if let (Some(lines), Some(line)) = (&mut recorder.trace_lines, line) {
            lines.push(format!("{:>10.3}s n{} <- {line}", at.as_secs_f64(), self.index));
        }
    }

    fn on_output(&mut self, now: Timestamp, output: &Output) {
        let at = self.elapsed();
        let mut recorder = self.recorder.lock();
        let tracing = recorder.trace_lines.is_some();
        let hasher = &mut recorder.trace;
        hasher.update(&(self.index as u64).to_le_bytes());
        hasher.update(&now.as_nanos().to_le_bytes());
        let line = match output {
            Output::Broadcast { context, bytes } => {
                hasher.update(b"broadcast").update(context.as_bytes()).update(bytes);
                tracing.then(|| format!("broadcast {} B #{}", bytes.len(), short(bytes)))
            }
            Output::Request { to, request_id, bytes, deadline } => {
                hasher.update(b"send-request").update(to.as_bytes()).update(&request_id.0.to_le_bytes()).update(bytes);
                hasher.update(&deadline.as_nanos().to_le_bytes());
                tracing.then(|| format!("request r{} to {} {} B #{}", request_id.0, to, bytes.len(), short(bytes)))
            }
            Output::Respond { to, request_id, bytes } => {
                hasher.update(b"respond").update(to.as_bytes()).update(&request_id.0.to_le_bytes()).update(bytes);
                tracing.then(|| format!("respond to {} {} B #{}", to, bytes.len(), short(bytes)))
            }
            // The most frequent event is hashed from its fields; the rest from their text.
            Output::Event(Event::DeltaApplied { id, author, local, .. }) => {
                hasher.update(b"applied").update(id.as_bytes()).update(author.as_bytes()).update(&[u8::from(*local)]);
                tracing.then(|| format!("applied {id} by {author}{}", if *local { " (local)" } else { "" }))
            }
            Output::Event(other) => {
                let text = format!("{other:?}");
                hasher.update(text.as_bytes());
                Some(text)
            }
            other => {
                let text = format!("{other:?}");
                hasher.update(text.as_bytes());
                Some(text)
            }
        };
        if let (Some(lines), Some(line)) = (&mut recorder.trace_lines, line) {
            lines.push(format!("{:>10.3}s n{} -> {line}", at.as_secs_f64(), self.index));
        }
        if let Some((context, held)) = self.pending.observe(output) {
            if recorder.pending_breach.is_none() {
                recorder.pending_breach = Some(format!(
                    "n{} held {held} pending deltas of {context} at {:.3} s (limit {})",
                    self.index,
                    at.as_secs_f64(),
                    self.pending.max_pending_deltas
                ));
            }
        }
        if let Output::Event(Event::SyncCompleted { peer, mode: rhizome_core::sync::SyncMode::Snapshot, .. }) = output {
            recorder.snapshot_syncs.push((self.index, *peer));
        }
        if let Output::Event(Event::DeltaApplied { id, local, .. }) = output {
            if *local {
                recorder.authored.insert(*id, at);
            } else if let Some(authored) = recorder.authored.get(id).copied() {
                let delay = at.saturating_sub(authored);
                recorder.arrivals.entry(*id).or_default().push((self.index, delay));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhizome_core::dag::EvictionCause;

    fn pending(context: ContextId, n: u8) -> Output {
        Output::Event(Event::DeltaPending { context, id: DeltaId::hash_of(&[n]) })
    }

    #[test]
    fn the_pending_tracker_follows_the_queue_events_and_flags_a_breach_at_once() {
        let context = ContextId::hash_of(b"c");
        let mut tracker = PendingTracker::new(2);
        assert_eq!(tracker.observe(&pending(context, 1)), None);
        assert_eq!(tracker.observe(&pending(context, 2)), None);
        let released = Event::PendingReleased { context, ids: vec![DeltaId::hash_of(&[1])] };
        assert_eq!(tracker.observe(&Output::Event(released)), None);
        assert_eq!(tracker.observe(&pending(context, 3)), None);
        let evicted =
            Event::PendingEvicted { context, ids: vec![DeltaId::hash_of(&[2])], cause: EvictionCause::Capacity };
        assert_eq!(tracker.observe(&Output::Event(evicted)), None);
        assert_eq!(tracker.observe(&pending(context, 4)), None);
        assert_eq!(tracker.observe(&pending(context, 5)), Some((context, 3)));
    }
}
