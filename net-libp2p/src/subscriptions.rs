//! The contexts the node wants to hear, shared as state rather than sent as commands.
//!
//! Subscribing must never be lost (a lost subscribe would silence a context for good) and
//! must never block the node, so it is not a message in the bounded command queue: the
//! transport edits the wanted set and raises a flag, and the swarm task brings gossipsub in line
//! before it handles its next command, so a publish that follows a subscribe sees it.

use rhizome_core::ContextId;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// The wanted subscriptions and a change flag.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    wanted: Mutex<BTreeSet<ContextId>>,
    changed: AtomicBool,
    pub(crate) notify: Notify,
}

impl Subscriptions {
    /// Adds or removes a context from the wanted set.
    pub(crate) fn set(&self, context: ContextId, subscribed: bool) {
        {
            let mut wanted = self.wanted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if subscribed {
                wanted.insert(context);
            } else {
                wanted.remove(&context);
            }
        }
        self.changed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// The wanted set, if it changed since the last call.
    pub(crate) fn take_changed(&self) -> Option<BTreeSet<ContextId>> {
        if !self.changed.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(self.wanted.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_reported_once_as_the_whole_wanted_set() {
        let subscriptions = Subscriptions::default();
        assert_eq!(subscriptions.take_changed(), None);
        subscriptions.set(ContextId::from_bytes([1; 32]), true);
        subscriptions.set(ContextId::from_bytes([2; 32]), true);
        subscriptions.set(ContextId::from_bytes([1; 32]), false);
        assert_eq!(subscriptions.take_changed(), Some(BTreeSet::from([ContextId::from_bytes([2; 32])])));
        assert_eq!(subscriptions.take_changed(), None);
    }
}
