//! Positive-negative counter: per author, monotone totals of increments and decrements.
//!
//! An action carries its author's new totals (not an amount), so joining is a pointwise max and
//! stays idempotent: applying a delta twice, or merging two states that both contain it, counts
//! it once. An author's own writes are totally ordered (each local delta descends from the
//! previous one), so its totals only grow.

use crate::stamp::Stamp;
use borsh::{BorshDeserialize, BorshSerialize};
use rhizome_core::AuthorKey;
use std::collections::BTreeMap;

/// A PN-counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PnCounter {
    /// author → (total increments, total decrements).
    pub totals: BTreeMap<AuthorKey, (u64, u64)>,
    /// The latest write.
    pub stamp: Stamp,
}

impl PnCounter {
    /// Pointwise max of every author's totals.
    pub fn join(&mut self, other: &PnCounter) {
        for (author, (increments, decrements)) in &other.totals {
            let mine = self.totals.entry(*author).or_default();
            mine.0 = mine.0.max(*increments);
            mine.1 = mine.1.max(*decrements);
        }
        self.stamp = self.stamp.max(other.stamp);
    }

    /// The counter's value: all increments minus all decrements, clamped to `i64`.
    pub fn value(&self) -> i64 {
        let sum: i128 = self
            .totals
            .values()
            .map(|(increments, decrements)| i128::from(*increments) - i128::from(*decrements))
            .sum();
        sum.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}
