//! What a delta made by an application carries: the CRDT actions its call recorded and the
//! events it emitted. This is the payload the core treats as opaque bytes.

#[cfg(doc)]
use crate::limits::RuntimeLimits;
use crate::path::Path;
use crate::stamp::Stamp;
use borsh::{BorshDeserialize, BorshSerialize};
use rhizome_core::{ApplyError, DeltaId};

/// One recorded CRDT operation. Its stamp is not stored: it is derived from the carrying
/// delta (HLC, author) and the action's index, identically on every replica.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Action {
    /// Last-writer-wins set of a register.
    RegisterSet {
        /// Where.
        path: Path,
        /// The new value.
        value: Vec<u8>,
    },
    /// The author's new counter totals (increments, decrements), both monotone.
    CounterTotals {
        /// Where.
        path: Path,
        /// Total increments by this author so far.
        increments: u64,
        /// Total decrements by this author so far.
        decrements: u64,
    },
    /// Adds an element to an add-wins set; the action's stamp is its new tag, and the element's
    /// tags the writer saw are retired (so re-adding does not pile up tags).
    SetAdd {
        /// Where.
        path: Path,
        /// The element.
        element: Vec<u8>,
        /// Tags of the element this add supersedes.
        replaces: Vec<Stamp>,
    },
    /// Removes the add tags of an element that the writer had seen.
    SetRemove {
        /// Where.
        path: Path,
        /// The element.
        element: Vec<u8>,
        /// The tags removed.
        observed: Vec<Stamp>,
    },
    /// Inserts into an ordered list after the node `after` (`None`: at the head); the action's
    /// stamp names the new node.
    ListInsert {
        /// Where.
        path: Path,
        /// The node to insert after.
        after: Option<Stamp>,
        /// The element.
        value: Vec<u8>,
    },
    /// Removes one node of an ordered list.
    ListRemove {
        /// Where.
        path: Path,
        /// The node removed.
        node: Stamp,
    },
    /// Removes whatever is at `path`, including a whole nested map: writes stamped before
    /// this action are hidden; later or concurrent-but-later writes stay visible.
    Remove {
        /// Where.
        path: Path,
    },
}

impl Action {
    /// The path the action writes.
    pub fn path(&self) -> &Path {
        match self {
            Self::RegisterSet { path, .. }
            | Self::CounterTotals { path, .. }
            | Self::SetAdd { path, .. }
            | Self::SetRemove { path, .. }
            | Self::ListInsert { path, .. }
            | Self::ListRemove { path, .. }
            | Self::Remove { path } => path,
        }
    }

    /// The stamps the action refers to: the set tags an add retires or a remove names, the
    /// list node an insert follows or a remove tombstones. Each names a write the writer had
    /// seen, so it must be earlier than the action's own stamp ([`crate::references::check_references`]).
    pub fn references(&self) -> &[Stamp] {
        match self {
            Self::SetAdd { replaces, .. } => replaces,
            Self::SetRemove { observed, .. } => observed,
            Self::ListInsert { after, .. } => after.as_slice(),
            Self::ListRemove { node, .. } => std::slice::from_ref(node),
            Self::RegisterSet { .. } | Self::CounterTotals { .. } | Self::Remove { .. } => &[],
        }
    }
}

/// An event an application emitted; delivered to local subscribers and to the app's handler
/// on every other replica.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AppEvent {
    /// The event's kind, such as `Inserted`.
    pub kind: String,
    /// The event's data, as the app encoded it.
    pub data: Vec<u8>,
}

/// The payload of an application delta.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AppPayload {
    /// Version 1.
    V1 {
        /// CRDT actions, applied in order.
        actions: Vec<Action>,
        /// Events emitted.
        events: Vec<AppEvent>,
        /// Set when an event handler wrote this delta: the event it handled. Applying the delta
        /// marks that handler job done, atomically with its writes.
        handled: Option<(DeltaId, u32)>,
    },
}

/// Bounds on a payload that every replica enforces identically when it merges a delta. They
/// are part of the protocol (they change only with a new payload version), never a node's
/// setting: if two nodes bounded payloads differently, one would apply a delta the other
/// quarantines, and their states would part. A node's call limits ([`RuntimeLimits`]) must fit
/// inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadBounds {
    /// Most actions.
    pub max_actions: usize,
    /// Most events.
    pub max_events: usize,
    /// Most segments in a path.
    pub max_path_depth: usize,
    /// Most bytes over a path's segments.
    pub max_path_bytes: usize,
    /// Largest register value or set element.
    pub max_value_bytes: usize,
    /// Largest event (kind and data).
    pub max_event_bytes: usize,
    /// Most tags a set add replaces or a set remove names.
    pub max_observed_tags: usize,
}

/// The bounds of payload version 1.
pub const PAYLOAD_BOUNDS_V1: PayloadBounds = PayloadBounds {
    max_actions: 4_096,
    max_events: 64,
    max_path_depth: 16,
    max_path_bytes: 1_024,
    max_value_bytes: 256 * 1024,
    max_event_bytes: 64 * 1024,
    max_observed_tags: 1_024,
};

impl AppPayload {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        rhizome_core::wire::encode(self)
    }

    /// Decodes a payload and checks it against the protocol bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, ApplyError> {
        let limits = &PAYLOAD_BOUNDS_V1;
        let payload: AppPayload = borsh::from_slice(bytes)
            .map_err(|error| ApplyError::InvalidPayload(format!("undecodable payload: {error}")))?;
        let AppPayload::V1 { actions, events, .. } = &payload;
        if actions.len() > limits.max_actions {
            return Err(ApplyError::InvalidPayload(format!("{} actions, over {}", actions.len(), limits.max_actions)));
        }
        if events.len() > limits.max_events {
            return Err(ApplyError::InvalidPayload(format!("{} events, over {}", events.len(), limits.max_events)));
        }
        for action in actions {
            check_path(action.path(), limits.max_path_depth, limits.max_path_bytes)
                .map_err(ApplyError::InvalidPayload)?;
            let (value_len, tags) = match action {
                Action::RegisterSet { value, .. } | Action::ListInsert { value, .. } => (value.len(), 0),
                Action::SetAdd { element, replaces, .. } => (element.len(), replaces.len()),
                Action::SetRemove { element, observed, .. } => (element.len(), observed.len()),
                _ => (0, 0),
            };
            if value_len > limits.max_value_bytes {
                return Err(ApplyError::InvalidPayload(format!(
                    "value of {value_len} bytes, over {}",
                    limits.max_value_bytes
                )));
            }
            if tags > limits.max_observed_tags {
                return Err(ApplyError::InvalidPayload(format!("{tags} tags, over {}", limits.max_observed_tags)));
            }
        }
        for event in events {
            if event.kind.len() + event.data.len() > limits.max_event_bytes {
                return Err(ApplyError::InvalidPayload("event over the size limit".to_owned()));
            }
        }
        Ok(payload)
    }
}

/// Checks a path: not empty, not deeper than `max_depth`, not longer than `max_bytes`.
pub fn check_path(path: &Path, max_depth: usize, max_bytes: usize) -> Result<(), String> {
    if path.depth() == 0 {
        return Err("empty path".to_owned());
    }
    if path.depth() > max_depth {
        return Err(format!("path of depth {}, over {max_depth}", path.depth()));
    }
    if path.byte_len() > max_bytes {
        return Err(format!("path of {} bytes, over {max_bytes}", path.byte_len()));
    }
    Ok(())
}
