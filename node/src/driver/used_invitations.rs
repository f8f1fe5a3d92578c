//! The replay store: invitation ids this node has joined with, each with its token's expiry,
//! mirrored in the `used_invitations` table (written with the join that used the id).
//!
//! Bounded by [`crate::NodeConfig::max_used_invitations`]. At the bound, the ids whose token
//! has expired are forgotten: `accept` refuses an expired token before it looks up its id, so
//! forgetting one opens no replay. If none has expired, a new join by invitation is refused
//! ([`crate::ApiError::UsedInvitationsFull`]) rather than forgetting an id that still could be
//! replayed.

use crate::store::CommitBatch;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(super) struct UsedInvitations {
    /// Id → the token's expiry, Unix milliseconds.
    used: BTreeMap<[u8; 16], u64>,
}

/// The store is at its bound and nothing in it has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Full;

impl UsedInvitations {
    pub(super) fn restored(rows: Vec<([u8; 16], u64)>) -> Self {
        Self { used: rows.into_iter().collect() }
    }

    pub(super) fn contains(&self, id: &[u8; 16]) -> bool {
        self.used.contains_key(id)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.used.len()
    }

    /// Makes room for one more id under `max`: at the bound, forgets (here and, with `batch`,
    /// on disk) every id expired at `now_ms`.
    pub(super) fn make_room(&mut self, max: usize, now_ms: u64, batch: &mut CommitBatch) -> Result<(), Full> {
        if self.used.len() < max {
            return Ok(());
        }
        let expired: Vec<[u8; 16]> =
            self.used.iter().filter(|(_, expires_at_ms)| now_ms >= **expires_at_ms).map(|(id, _)| *id).collect();
        for id in expired {
            self.used.remove(&id);
            batch.used_invitations.insert(id, None);
        }
        if self.used.len() < max {
            Ok(())
        } else {
            Err(Full)
        }
    }

    /// Records `id` as used, in memory and in the next commit.
    pub(super) fn record(&mut self, id: [u8; 16], expires_at_ms: u64, batch: &mut CommitBatch) {
        self.used.insert(id, expires_at_ms);
        batch.used_invitations.insert(id, Some(expires_at_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_bound_expired_ids_are_forgotten_and_live_ones_kept() {
        let mut batch = CommitBatch::default();
        let mut used = UsedInvitations::default();
        used.record([1; 16], 100, &mut batch);
        used.record([2; 16], 300, &mut batch);
        assert_eq!(used.make_room(3, 200, &mut batch), Ok(()), "under the bound nothing is pruned");
        assert_eq!(used.len(), 2);
        assert_eq!(used.make_room(2, 200, &mut batch), Ok(()));
        assert!(!used.contains(&[1; 16]) && used.contains(&[2; 16]));
        assert_eq!(batch.used_invitations.get(&[1; 16]), Some(&None), "the pruning is stored");
        used.record([3; 16], 400, &mut batch);
        assert_eq!(used.make_room(2, 250, &mut batch), Err(Full), "nothing expired: refuse, forget nothing");
        assert_eq!(used.len(), 2);
    }
}
