//! What an invited member may do in a context.

use borsh::{BorshDeserialize, BorshSerialize};

/// A member's role, as an invitation grants it. Encoded as one byte in declaration order
/// (`Admin` = 0, `Member` = 1): new roles go at the end.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub enum Role {
    /// May invite and remove members and rotate the context key, as well as write.
    Admin,
    /// May read and write the context's state.
    Member,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_pinned() {
        assert_eq!(borsh::to_vec(&Role::Admin).unwrap(), [0]);
        assert_eq!(borsh::to_vec(&Role::Member).unwrap(), [1]);
        assert!(borsh::from_slice::<Role>(&[2]).is_err());
    }
}
