//! The two kinds of delta that change who belongs to a context: the genesis that creates it,
//! and membership changes after it.

use super::Role;
use crate::ids::{AuthorKey, ContextId};
use borsh::{BorshDeserialize, BorshSerialize};

/// Domain separation for context ids derived from a genesis.
const CONTEXT_ID_DOMAIN: &str = "rhizome 2026-12 context id v1";

/// Creates a context. Its author is the first admin; `members` are the others it starts with.
/// The context id is derived from the genesis (see [`genesis_context_id`]), so nobody can make
/// a second, different genesis for a context: the id names its creator and first members.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Genesis {
    /// Makes the id unique among the creator's contexts (the driver derives it from the app
    /// and a random draw).
    pub nonce: [u8; 32],
    /// Members besides the creator, sorted by key, unique, none of them the creator.
    pub members: Vec<(AuthorKey, Role)>,
}

/// One change to the member list.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum MemberOp {
    /// Adds `0` with a role, or changes the role of a current member.
    Add(AuthorKey, Role),
    /// Removes `0`.
    Remove(AuthorKey),
}

impl MemberOp {
    /// The member the op is about.
    pub fn subject(&self) -> &AuthorKey {
        match self {
            Self::Add(key, _) | Self::Remove(key) => key,
        }
    }
}

/// A membership delta's content: ops applied in order.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct MembershipChange {
    /// The ops, at least one.
    pub ops: Vec<MemberOp>,
}

/// The context id a genesis with these fields creates.
pub fn genesis_context_id(creator: &AuthorKey, hlc: &crate::hlc::Hlc, genesis: &Genesis) -> ContextId {
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT_ID_DOMAIN);
    // Writing into a hasher cannot fail; borsh only reports the writer's errors.
    borsh::to_writer(&mut hasher, &(creator, hlc, genesis)).expect("hashing never fails");
    ContextId::from_bytes(*hasher.finalize().as_bytes())
}
