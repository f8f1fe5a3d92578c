//! What a delta made by an application carries: the CRDT actions its call recorded and the
//! events it emitted. This is the payload the core treats as opaque bytes.

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
    /// Adds an element to an add-wins set; the action's stamp is its tag.
    SetAdd {
        /// Where.
        path: Path,
        /// The element.
        element: Vec<u8>,
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
            | Self::Remove { path } => path,
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

impl AppPayload {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding into a Vec never fails")
    }

    /// Decodes a payload and checks every bound.
    pub fn decode(bytes: &[u8], limits: &RuntimeLimits) -> Result<Self, ApplyError> {
        let payload: AppPayload = borsh::from_slice(bytes)
            .map_err(|error| ApplyError::InvalidPayload(format!("undecodable payload: {error}")))?;
        let AppPayload::V1 { actions, events, .. } = &payload;
        if actions.len() > limits.max_actions_per_call {
            return Err(ApplyError::InvalidPayload(format!(
                "{} actions, over {}",
                actions.len(),
                limits.max_actions_per_call
            )));
        }
        if events.len() > limits.max_events_per_call {
            return Err(ApplyError::InvalidPayload(format!(
                "{} events, over {}",
                events.len(),
                limits.max_events_per_call
            )));
        }
        for action in actions {
            check_path(action.path(), limits).map_err(ApplyError::InvalidPayload)?;
            let value_len = match action {
                Action::RegisterSet { value, .. } => value.len(),
                Action::SetAdd { element, .. } | Action::SetRemove { element, .. } => element.len(),
                _ => 0,
            };
            if value_len > limits.max_value_bytes {
                return Err(ApplyError::InvalidPayload(format!(
                    "value of {value_len} bytes, over {}",
                    limits.max_value_bytes
                )));
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

/// Checks a path against the bounds: not empty, not too deep, not too long.
pub fn check_path(path: &Path, limits: &RuntimeLimits) -> Result<(), String> {
    if path.depth() == 0 {
        return Err("empty path".to_owned());
    }
    if path.depth() > limits.max_path_depth {
        return Err(format!("path of depth {}, over {}", path.depth(), limits.max_path_depth));
    }
    if path.byte_len() > limits.max_path_bytes {
        return Err(format!("path of {} bytes, over {}", path.byte_len(), limits.max_path_bytes));
    }
    Ok(())
}
