//! Publishes waiting for a peer, sans-IO.
//!
//! Gossipsub refuses a publish when no connected peer is subscribed to the topic (a fresh node,
//! a partition). The node must not lose that message silently, so it waits here, bounded by
//! count, bytes and age, and is retried when a peer subscribes to the topic or on a periodic
//! tick. When full, the oldest message goes: a newer delta or heartbeat carries the newer heads,
//! and a receiver that lacks an older parent pulls it from the publisher.

use rhizome_core::ContextId;
use std::collections::VecDeque;

/// One held publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldPublish {
    pub(crate) context: ContextId,
    pub(crate) bytes: Vec<u8>,
    pub(crate) queued_at_ms: u64,
}

/// What happened to a message offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushOutcome {
    /// The message was held.
    pub(crate) queued: bool,
    /// Older messages evicted to make room.
    pub(crate) evicted: usize,
}

/// The bounded queue of publishes waiting for peers.
#[derive(Debug)]
pub(crate) struct RetryQueue {
    held: VecDeque<HeldPublish>,
    held_bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    max_age_ms: u64,
}

impl RetryQueue {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, max_age_ms: u64) -> Self {
        Self { held: VecDeque::new(), held_bytes: 0, max_messages, max_bytes, max_age_ms }
    }

    /// Holds a message, evicting the oldest ones if a bound is hit. A message larger than the
    /// whole byte bound is not held at all.
    pub(crate) fn push(&mut self, context: ContextId, bytes: Vec<u8>, now_ms: u64) -> PushOutcome {
        if self.max_messages == 0 || bytes.len() > self.max_bytes {
            return PushOutcome { queued: false, evicted: 0 };
        }
        let mut evicted = 0;
        while self.held.len() >= self.max_messages || self.held_bytes + bytes.len() > self.max_bytes {
            match self.held.pop_front() {
                Some(old) => {
                    self.held_bytes -= old.bytes.len();
                    evicted += 1;
                }
                None => break,
            }
        }
        self.held_bytes += bytes.len();
        self.held.push_back(HeldPublish { context, bytes, queued_at_ms: now_ms });
        PushOutcome { queued: true, evicted }
    }

    /// Drops messages older than the age bound; returns how many.
    pub(crate) fn expire(&mut self, now_ms: u64) -> usize {
        let max_age_ms = self.max_age_ms;
        let before = self.held.len();
        self.held.retain(|held| now_ms.saturating_sub(held.queued_at_ms) <= max_age_ms);
        self.held_bytes = self.held.iter().map(|held| held.bytes.len()).sum();
        before - self.held.len()
    }

    /// Takes out every held message of `context` (all contexts if `None`), oldest first, for a
    /// retry. The caller puts back, with [`Self::restore`], the ones that still found no peer.
    pub(crate) fn take(&mut self, context: Option<ContextId>) -> Vec<HeldPublish> {
        let (taken, kept): (Vec<_>, Vec<_>) =
            self.held.drain(..).partition(|held| context.is_none_or(|wanted| held.context == wanted));
        self.held = kept.into();
        self.held_bytes = self.held.iter().map(|held| held.bytes.len()).sum();
        taken
    }

    /// Puts back messages taken for a retry that failed again, keeping their original age and
    /// order ahead of anything queued since.
    pub(crate) fn restore(&mut self, messages: Vec<HeldPublish>) {
        for held in messages.into_iter().rev() {
            self.held_bytes += held.bytes.len();
            self.held.push_front(held);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn has_context(&self, context: &ContextId) -> bool {
        self.held.iter().any(|held| held.context == *context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(n: u8) -> ContextId {
        ContextId::from_bytes([n; 32])
    }

    #[test]
    fn full_queue_evicts_the_oldest() {
        let mut queue = RetryQueue::new(2, 1_000, 1_000);
        assert_eq!(queue.push(ctx(1), vec![1], 0), PushOutcome { queued: true, evicted: 0 });
        queue.push(ctx(1), vec![2], 1);
        assert_eq!(queue.push(ctx(1), vec![3], 2), PushOutcome { queued: true, evicted: 1 });
        let bytes: Vec<Vec<u8>> = queue.take(None).into_iter().map(|held| held.bytes).collect();
        assert_eq!(bytes, [vec![2], vec![3]]);
    }

    #[test]
    fn byte_bound_evicts_and_refuses_a_message_larger_than_the_bound() {
        let mut queue = RetryQueue::new(10, 4, 1_000);
        queue.push(ctx(1), vec![0; 3], 0);
        assert_eq!(queue.push(ctx(1), vec![0; 2], 0), PushOutcome { queued: true, evicted: 1 });
        assert_eq!(queue.push(ctx(1), vec![0; 5], 0), PushOutcome { queued: false, evicted: 0 });
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn old_messages_expire() {
        let mut queue = RetryQueue::new(10, 100, 30);
        queue.push(ctx(1), vec![1], 0);
        queue.push(ctx(1), vec![2], 20);
        assert_eq!(queue.expire(30), 0);
        assert_eq!(queue.expire(31), 1);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn take_by_context_leaves_the_others_and_restore_keeps_order() {
        let mut queue = RetryQueue::new(10, 100, 1_000);
        queue.push(ctx(1), vec![1], 0);
        queue.push(ctx(2), vec![2], 0);
        queue.push(ctx(1), vec![3], 0);
        let taken = queue.take(Some(ctx(1)));
        assert_eq!(taken.len(), 2);
        assert!(!queue.has_context(&ctx(1)));
        queue.push(ctx(1), vec![4], 1);
        queue.restore(taken);
        let bytes: Vec<Vec<u8>> = queue.take(None).into_iter().map(|held| held.bytes).collect();
        assert_eq!(bytes, [vec![1], vec![3], vec![2], vec![4]]);
    }
}
