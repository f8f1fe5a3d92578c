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
    /// Keeps whichever write has the greater stamp. Stamps are unique per action, so two
    /// different writes never tie.
    pub fn join(&mut self, other: &LwwRegister) {
        if other.stamp > self.stamp {
            *self = other.clone();
        }
    }
}
