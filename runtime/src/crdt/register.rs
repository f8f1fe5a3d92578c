//! Last-writer-wins register: the write with the greatest stamp wins; `None` is a tombstone.

use crate::stamp::Stamp;
use borsh::{BorshDeserialize, BorshSerialize};

/// A last-writer-wins register.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LwwRegister {
    /// The value; `None` once deleted.
    pub value: Option<Vec<u8>>,
    /// The winning write.
    pub stamp: Stamp,
}

impl LwwRegister {
    /// Keeps whichever write has the greater stamp. Stamps are meant to be unique per action,
    /// but nothing can force a faulty or hostile author never to reuse one, so a tie breaks on
    /// the value: the join stays a total order and every replica keeps the same write.
    pub fn join(&mut self, other: &LwwRegister) {
        if (other.stamp, &other.value) > (self.stamp, &self.value) {
            *self = other.clone();
        }
    }
}
