//! The rule every replica applies to the stamps a payload refers to: each must be earlier than
//! the stamp of the action that carries it.
//!
//! A reference names a write the writer had seen when it wrote: a set tag it retires or
//! removes, a list node it inserts after or removes. A write it had seen is in its causal past
//! (whose HLCs its clock had passed, so they are below the delta's HLC) or an earlier action of
//! the same delta (the same HLC and author, a lower index). Either way it is earlier than the
//! action's own stamp `(delta HLC, author, index)`. A payload that names a later stamp claims
//! a write that does not exist yet: a tombstone waiting for a tag another member will write, or
//! a node anchored to one. It is refused when applied, the same on every replica, because the
//! rule reads nothing but the delta.

use crate::payload::Action;
use crate::stamp::Stamp;
use rhizome_core::{ApplyError, AuthorKey, Hlc};

/// Checks that every stamp each action refers to is earlier than the action's own stamp. The
/// first action that breaks the rule is reported.
pub fn check_references(actions: &[Action], hlc: Hlc, author: AuthorKey) -> Result<(), ApplyError> {
    for (index, action) in actions.iter().enumerate() {
        let own = Stamp { hlc, author, index: index as u32 };
        if action.references().iter().any(|reference| *reference >= own) {
            return Err(ApplyError::ReferenceNotEarlier { action: index as u32 });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Path;

    const AUTHOR: AuthorKey = AuthorKey([7; 32]);

    fn hlc(physical_ms: u64, logical: u32) -> Hlc {
        Hlc { physical_ms, logical, node: 1 }
    }

    fn stamp(hlc: Hlc, index: u32) -> Stamp {
        Stamp { hlc, author: AUTHOR, index }
    }

    fn path() -> Path {
        Path::new([b"p".to_vec()])
    }

    fn remove(observed: Stamp) -> Action {
        Action::SetRemove { path: path(), element: b"e".to_vec(), observed: vec![observed] }
    }

    #[test]
    fn references_to_the_causal_past_and_to_earlier_actions_of_the_delta_pass() {
        let delta = hlc(1_000, 3);
        let actions = vec![
            Action::ListInsert { path: path(), after: Some(stamp(hlc(999, 9), 0)), value: vec![] },
            // After the node action 0 made, then removing the node action 1 made.
            Action::ListInsert { path: path(), after: Some(stamp(delta, 0)), value: vec![] },
            Action::ListRemove { path: path(), node: stamp(delta, 1) },
            Action::SetAdd { path: path(), element: b"e".to_vec(), replaces: vec![stamp(hlc(1_000, 2), 40)] },
            Action::RegisterSet { path: path(), value: vec![] },
        ];
        assert_eq!(check_references(&actions, delta, AUTHOR), Ok(()));
    }

    #[test]
    fn a_reference_at_or_after_its_own_stamp_is_refused() {
        let delta = hlc(1_000, 3);
        let refused = |action: Action| check_references(&[action], delta, AUTHOR);
        let not_earlier = Err(ApplyError::ReferenceNotEarlier { action: 0 });
        // Later than the delta: a tombstone waiting for a tag that does not exist yet.
        assert_eq!(refused(remove(stamp(hlc(u64::MAX, 0), 0))), not_earlier);
        assert_eq!(refused(remove(stamp(hlc(1_000, 4), 0))), not_earlier);
        // Its own stamp, and a later action of the same delta.
        assert_eq!(refused(remove(stamp(delta, 0))), not_earlier);
        assert_eq!(refused(Action::ListRemove { path: path(), node: stamp(delta, 1) }), not_earlier);
        let anchored = Action::ListInsert { path: path(), after: Some(stamp(hlc(2_000, 0), 0)), value: vec![] };
        assert_eq!(refused(anchored), not_earlier);
        // The first offending action is named.
        let actions = [remove(stamp(hlc(1, 0), 0)), Action::Remove { path: path() }, remove(stamp(delta, 5))];
        assert_eq!(check_references(&actions, delta, AUTHOR), Err(ApplyError::ReferenceNotEarlier { action: 2 }));
    }
}
