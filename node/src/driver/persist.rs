//! Turning the core's events into rows of the next commit and into subscriber events.

use super::NodeTask;
use crate::events::NodeEvent;
use crate::store::StoredEntry;
use crate::transport::Transport;
use rhizome_core::delta::DeltaHeader;
use rhizome_core::{ContextId, Event};
use rhizome_runtime::AppPayload;

impl<T: Transport> NodeTask<T> {
    pub(super) fn on_core_event(&mut self, event: Event) {
        match event {
            Event::DeltaApplied { context, id, author, local } => {
                let Some(body) = self.node.dag(&context).and_then(|dag| dag.get(&id)).cloned() else {
                    return;
                };
                if !self.rewrites.contains(&context) {
                    self.batch.dag_appends.push((context, StoredEntry::Body(body.as_ref().clone())));
                }
                if local {
                    self.batch.durable = true;
                } else {
                    self.handler_due.insert(context);
                }
                if self.subscribers.has_any(&context) {
                    // The body is stored sealed; its events are read from the plaintext.
                    let plaintext = self.node.open_payload(&context, &body).unwrap_or_default();
                    let events = match AppPayload::decode(&plaintext) {
                        Ok(AppPayload::V1 { events, .. }) => {
                            events.into_iter().map(|event| (event.kind, event.data)).collect()
                        }
                        Err(_) => Vec::new(),
                    };
                    self.events.push((context, NodeEvent::Applied { context, delta: id, author, local, events }));
                }
            }
            // The pending rows follow the core's queue events: no mirror of the queue here.
            Event::DeltaPending { context, id } => {
                let body = self.node.dag(&context).and_then(|dag| dag.pending_delta(&id)).cloned();
                if let Some(body) = body {
                    self.batch.pending.insert((context, id), Some(body));
                }
            }
            Event::PendingEvicted { context, ids, .. } | Event::PendingReleased { context, ids } => {
                for id in ids {
                    self.batch.pending.insert((context, id), None);
                }
            }
            Event::SnapshotAdopted { context, entries, .. } => {
                // The applied set was replaced: rewrite the context's DAG rows from memory at
                // the commit (appends staged before it are covered by the rewrite).
                self.rewrites.insert(context);
                self.batch.dag_appends.retain(|(owner, _)| *owner != context);
                self.handler_due.insert(context);
                if self.subscribers.has_any(&context) {
                    self.events.push((context, NodeEvent::SnapshotAdopted { context, entries }));
                }
            }
            Event::DeltaQuarantined { context, id, error } => {
                tracing::warn!(%context, %id, %error, "delta quarantined");
            }
            Event::Divergence { context, peer, .. } => {
                tracing::warn!(%context, %peer, "divergence detected");
            }
            Event::SyncStarted { .. } | Event::SyncCompleted { .. } => {}
            Event::SyncFailed { context, peer, reason, .. } => {
                tracing::debug!(%context, %peer, %reason, "sync failed");
            }
        }
    }

    /// A context's whole applied DAG, parents first, with bodies where held.
    pub(super) fn dag_image(&self, context: &ContextId) -> Vec<StoredEntry> {
        let Some(dag) = self.node.dag(context) else { return Vec::new() };
        dag.checkpoint()
            .into_iter()
            .map(|entry: DeltaHeader| match dag.get(&entry.id) {
                Some(body) => StoredEntry::Body(body.as_ref().clone()),
                None => StoredEntry::Structure(entry),
            })
            .collect()
    }
}
