//! The two kinds of delta that change who belongs to a context: the genesis that creates it,
//! and membership changes after it.

use super::{KeyShare, Role};
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
    /// The epoch-0 context key, wrapped to exactly the creator and `members` (bound to
    /// [`super::genesis_wrap_context`], as the context id is not known before the genesis is).
    pub keys: KeyShare,
}

impl Genesis {
    /// Every initial member's key, sorted: the creator's and `members`'.
    pub fn all_members(&self, creator: &AuthorKey) -> Vec<AuthorKey> {
        let mut all: Vec<AuthorKey> = self.members.iter().map(|(key, _)| *key).collect();
        all.push(*creator);
        all.sort_unstable();
        all.dedup();
        all
    }
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

/// A membership delta's content: ops applied in order, and the keys it hands out.
///
/// A change has at least one op, a rotation or a grant. Any removal needs a rotation (the
/// removed member holds every key so far), and a rotation's key goes to exactly the members
/// after the ops; anyone may rotate without ops, which is how a writer heals a key that some
/// current member lacks (see docs/SECURITY.md, "Key rotation").
#[derive(Clone, PartialEq, Eq, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct MembershipChange {
    /// The ops, in order.
    pub ops: Vec<MemberOp>,
    /// A new key, of the epoch after the one of the change's causal past.
    pub rotation: Option<KeyShare>,
    /// Keys that exist already, to members (after the ops) who lack them.
    pub grants: Vec<KeyShare>,
}

impl MembershipChange {
    /// True if an op removes a member.
    pub fn removes(&self) -> bool {
        self.ops.iter().any(|op| matches!(op, MemberOp::Remove(_)))
    }

    /// Every key share the change carries: the rotation first, then the grants.
    pub fn shares(&self) -> impl Iterator<Item = &KeyShare> {
        self.rotation.iter().chain(&self.grants)
    }

    /// Wraps over every share.
    pub fn wrap_count(&self) -> usize {
        self.shares().map(|share| share.wraps.len()).sum()
    }
}

/// The context id a genesis with these fields creates.
pub fn genesis_context_id(creator: &AuthorKey, hlc: &crate::hlc::Hlc, genesis: &Genesis) -> ContextId {
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT_ID_DOMAIN);
    // Writing into a hasher cannot fail; borsh only reports the writer's errors.
    borsh::to_writer(&mut hasher, &(creator, hlc, genesis)).expect("hashing never fails");
    ContextId::from_bytes(*hasher.finalize().as_bytes())
}
