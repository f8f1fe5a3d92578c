//! Several calls, one delta. A node under load has many calls queued for the same context at
//! once; signing, hashing, gossiping, storing and verifying a delta per call would cost more than
//! the calls themselves. So the calls that arrive together run one after another into one open
//! delta, each reading the writes of those before it, and the delta is made once, from the
//! sealed payload.
//!
//! Every replica sees exactly what the calls saw: the delta carries all their actions in call
//! order, stamped with the delta's HLC and their position in it, and the view each call read
//! was built with those same stamps.

use super::calls::{CallOutcome, Ran};
use super::Runtime;
use crate::payload::{Action, AppEvent, AppPayload, PAYLOAD_BOUNDS_V1};
use crate::state::{KvBackend, StagedWrites};
use crate::wasm::call::{CallBase, CallInput};
use crate::wasm::error::CallError;
use rhizome_core::{ContextId, Hlc};

/// Bytes an encoded payload adds around its actions and events: the version tag, two vector
/// lengths and the `handled` option (10), rounded up.
const PAYLOAD_ENVELOPE_BYTES: usize = 16;

/// The writing calls whose delta is not applied yet.
#[derive(Debug)]
pub(super) struct OpenDelta {
    pub(super) context: ContextId,
    /// The HLC every call in it ran at, and the delta will carry.
    pub(super) hlc: Hlc,
    /// What the calls wrote, for the next call to read (empty once sealed).
    writes: StagedWrites,
    actions: Vec<Action>,
    events: Vec<AppEvent>,
    /// The calls' payload bytes, as they counted them.
    payload_bytes: usize,
    calls: u32,
    /// The payload was taken: no call may join any more.
    sealed: bool,
}

impl OpenDelta {
    /// The delta a first writing call opens.
    pub(super) fn first(
        context: ContextId,
        hlc: Hlc,
        writes: StagedWrites,
        payload: &AppPayload,
        payload_bytes: usize,
    ) -> Self {
        let AppPayload::V1 { actions, events, .. } = payload;
        Self {
            context,
            hlc,
            writes,
            actions: actions.clone(),
            events: events.clone(),
            payload_bytes,
            calls: 1,
            sealed: false,
        }
    }

    /// Why a call that wrote `actions` and `events` in `payload_bytes` cannot be added, if it
    /// cannot: the delta would break a bound every replica checks.
    fn refuses(
        &self,
        actions: &[Action],
        events: &[AppEvent],
        payload_bytes: usize,
        max_payload_bytes: usize,
    ) -> Option<String> {
        let bounds = &PAYLOAD_BOUNDS_V1;
        if self.actions.len() + actions.len() > bounds.max_actions {
            return Some(format!("the delta would hold over {} actions", bounds.max_actions));
        }
        if self.events.len() + events.len() > bounds.max_events {
            return Some(format!("the delta would hold over {} events", bounds.max_events));
        }
        let total = self.payload_bytes.saturating_add(payload_bytes).saturating_add(PAYLOAD_ENVELOPE_BYTES);
        if total > max_payload_bytes {
            return Some(format!("the delta's payload would pass {max_payload_bytes} bytes"));
        }
        None
    }
}

/// A sealed open delta: make one local delta of `payload` at `hlc`, and applying it commits
/// every call in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCalls {
    /// The context.
    pub context: ContextId,
    /// The HLC the calls ran at: the delta must carry it.
    pub hlc: Hlc,
    /// How many calls it holds.
    pub calls: u32,
    /// Their actions and events, in call order.
    pub payload: AppPayload,
}

impl<B: KvBackend + Default + 'static> Runtime<B> {
    /// Runs `method` as one more call of the open delta, the one the last writing call of
    /// `context` started: at its HLC, reading what the calls before it wrote.
    ///
    /// A call that fails, or writes nothing, leaves the open delta as it was. A call that
    /// wrote, but would push the delta past a bound every replica checks, is refused with
    /// [`CallError::NotJoinable`] and leaves it as it was too: seal it, and run the call again
    /// on its own.
    pub fn call_joining(&mut self, context: ContextId, method: &str, input: Vec<u8>) -> Result<CallOutcome, CallError> {
        let mut open = match self.open.take() {
            Some(open) if open.sealed || open.context != context => {
                let reason =
                    if open.sealed { "the open delta is sealed" } else { "the open delta is another context's" };
                self.open = Some(open);
                return Err(CallError::NotJoinable(reason.to_owned()));
            }
            Some(open) => open,
            None => return Err(CallError::NotJoinable("no delta is open".to_owned())),
        };
        let call = CallInput { context, caller: self.options.local_author, hlc: open.hlc, input, position: open.calls };
        let base = CallBase { writes: std::mem::take(&mut open.writes), actions: open.actions.len() as u32 };
        let Ran { result, base, writes, payload_bytes, fuel_used } = self.run(&call, method, base);
        open.writes = base;
        let result = result.and_then(|outcome| {
            if !outcome.needs_delta() {
                return Ok(outcome);
            }
            let AppPayload::V1 { actions, events, .. } = &outcome.payload;
            if let Some(reason) = open.refuses(actions, events, payload_bytes, self.options.limits.max_payload_bytes) {
                return Err(CallError::NotJoinable(reason));
            }
            open.writes.extend(writes);
            open.actions.extend(actions.iter().cloned());
            open.events.extend(events.iter().cloned());
            open.payload_bytes += payload_bytes;
            open.calls += 1;
            Ok(outcome)
        });
        self.open = Some(open);
        self.count(&result, fuel_used);
        result
    }

    /// Takes the open delta's payload, if a delta is open and not sealed yet. Until the delta
    /// is applied (or discarded) no call runs.
    pub fn seal_open_delta(&mut self) -> Option<SealedCalls> {
        let open = self.open.as_mut().filter(|open| !open.sealed)?;
        open.sealed = true;
        open.writes = StagedWrites::new();
        let payload = AppPayload::V1 {
            actions: std::mem::take(&mut open.actions),
            events: std::mem::take(&mut open.events),
            handled: None,
        };
        Some(SealedCalls { context: open.context, hlc: open.hlc, calls: open.calls, payload })
    }
}
