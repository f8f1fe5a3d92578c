//! A bounded FIFO of gossip deltas held while a snapshot sync runs, replayed afterwards.
//!
//! Applying gossip during a snapshot would apply deltas to state the snapshot is about to
//! replace. Holding them keeps them; replaying them after adoption applies them on top.

use crate::delta::DeltaRef;
use crate::ids::PeerId;
use std::collections::VecDeque;

/// The buffer of one context.
#[derive(Debug, Default)]
pub struct GossipBuffer {
    queue: VecDeque<(PeerId, DeltaRef)>,
}

impl GossipBuffer {
    /// Holds a delta; refuses it (returns `false`) when `max_deltas` are already held, so the
    /// caller counts the drop. Periodic sync recovers dropped deltas later.
    pub fn push(&mut self, from: PeerId, delta: DeltaRef, max_deltas: usize) -> bool {
        if self.queue.len() >= max_deltas {
            return false;
        }
        self.queue.push_back((from, delta));
        true
    }

    /// Everything held, oldest first, leaving the buffer empty.
    pub fn drain(&mut self) -> Vec<(PeerId, DeltaRef)> {
        self.queue.drain(..).collect()
    }

    /// Deltas held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ContextId;
    use crate::testing::DeltaFactory;

    #[test]
    fn holds_in_order_up_to_the_bound() {
        let mut factory = DeltaFactory::unsigned(ContextId::hash_of(b"c"));
        let deltas = factory.chain(4);
        let mut buffer = GossipBuffer::default();
        let peer = PeerId::hash_of(b"p");
        let accepted: Vec<bool> = deltas.iter().map(|d| buffer.push(peer, d.clone(), 3)).collect();
        assert_eq!(accepted, vec![true, true, true, false]);
        let drained: Vec<_> = buffer.drain().into_iter().map(|(_, d)| d.id).collect();
        assert_eq!(drained, deltas[..3].iter().map(|d| d.id).collect::<Vec<_>>());
        assert!(buffer.is_empty());
    }
}
