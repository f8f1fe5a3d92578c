//! What a member may do.

use borsh::{BorshDeserialize, BorshSerialize};

/// A member's role in a context.
///
/// An admin may add members (as admins or members), remove anyone and change roles. A member
/// may write application deltas and remove itself. Everyone in the member list may read.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, BorshSerialize, BorshDeserialize)]
pub enum Role {
    /// May change the member list.
    Admin,
    /// May write.
    Member,
}

impl Role {
    /// A short stable label for logs and the API.
    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            other => Err(format!("unknown role {other:?}: expected \"admin\" or \"member\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_encode_as_one_pinned_byte() {
        // Membership deltas and invitations carry roles: a change here breaks both.
        assert_eq!(borsh::to_vec(&Role::Admin).unwrap(), [0]);
        assert_eq!(borsh::to_vec(&Role::Member).unwrap(), [1]);
        assert!(borsh::from_slice::<Role>(&[2]).is_err());
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("owner".parse::<Role>().is_err());
    }
}
