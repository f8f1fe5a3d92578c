//! Checking a peer's snapshot state entry by entry before it may replace ours: every key names
//! a record, every value is the canonical encoding of that record, and no stamp is later than
//! the clock bound. A root match alone proves only that the sender hashed what it sent; these
//! checks make sure what it sent is state that deltas could have made.

use crate::crdt::Slot;
use crate::path::Path;
use crate::stamp::Stamp;
use rhizome_core::{ApplyError, SnapshotEntryFault, StateRecord};

/// Checks every `(key, value)` of a snapshot's state. `max_stamp_ms` is the latest physical
/// time (Unix milliseconds) a stamp may carry. The first bad entry is reported.
pub fn check_snapshot_entries(entries: &[(Vec<u8>, Vec<u8>)], max_stamp_ms: u64) -> Result<(), ApplyError> {
    for (index, (key, value)) in entries.iter().enumerate() {
        check_entry(key, value, max_stamp_ms).map_err(|fault| ApplyError::InvalidSnapshotEntry { index, fault })?;
    }
    Ok(())
}

fn check_entry(key: &[u8], value: &[u8], max_stamp_ms: u64) -> Result<(), SnapshotEntryFault> {
    let (record, latest) = if Path::from_value_key(key).is_some() {
        let slot: Slot = decode_canonical(value, StateRecord::Slot)?;
        (StateRecord::Slot, slot.latest_stamp_within())
    } else if Path::from_removal_key(key).is_some() {
        let stamp: Stamp = decode_canonical(value, StateRecord::RemovalMarker)?;
        (StateRecord::RemovalMarker, stamp)
    } else {
        return Err(SnapshotEntryFault::BadKey);
    };
    let ahead_ms = latest.hlc.physical_ms.saturating_sub(max_stamp_ms);
    if ahead_ms > 0 {
        return Err(SnapshotEntryFault::StampAhead { record, ahead_ms });
    }
    Ok(())
}

/// Decodes `bytes` as a `T` whose encoding must be exactly `bytes` again.
fn decode_canonical<T: borsh::BorshDeserialize + borsh::BorshSerialize>(
    bytes: &[u8],
    record: StateRecord,
) -> Result<T, SnapshotEntryFault> {
    let decoded: T = borsh::from_slice(bytes).map_err(|_| SnapshotEntryFault::Undecodable(record))?;
    if rhizome_core::wire::encode(&decoded) != bytes {
        return Err(SnapshotEntryFault::NonCanonical(record));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{AwSet, ListNode, LwwRegister, RgaList};
    use rhizome_core::Hlc;
    use std::collections::{BTreeMap, BTreeSet};

    const BOUND_MS: u64 = 1_000_000;

    fn stamp(physical_ms: u64) -> Stamp {
        Stamp { hlc: Hlc { physical_ms, logical: 0, node: 1 }, ..Stamp::default() }
    }

    fn path() -> Path {
        Path::new([b"kv".to_vec(), b"k".to_vec()])
    }

    fn register(at_ms: u64) -> Slot {
        Slot { register: Some(LwwRegister { value: Some(b"v".to_vec()), stamp: stamp(at_ms) }), ..Slot::default() }
    }

    fn fault(entries: &[(Vec<u8>, Vec<u8>)]) -> Option<(usize, SnapshotEntryFault)> {
        match check_snapshot_entries(entries, BOUND_MS) {
            Ok(()) => None,
            Err(ApplyError::InvalidSnapshotEntry { index, fault }) => Some((index, fault)),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn state_that_deltas_could_make_passes() {
        let entries = vec![
            (path().value_key(), register(BOUND_MS).encode()),
            (path().removal_key(), rhizome_core::wire::encode(&stamp(BOUND_MS - 1))),
        ];
        assert_eq!(fault(&entries), None);
    }

    #[test]
    fn a_key_that_names_no_record_is_refused() {
        let good = (path().value_key(), register(1).encode());
        let meta_key = (vec![b'm', 1, 2], register(1).encode());
        let truncated_segment = (vec![b'v', 0, 0, 0, 9, b'x'], register(1).encode());
        assert_eq!(fault(&[good.clone(), meta_key]), Some((1, SnapshotEntryFault::BadKey)));
        assert_eq!(fault(&[good, truncated_segment]), Some((1, SnapshotEntryFault::BadKey)));
    }

    #[test]
    fn values_must_decode_and_be_canonical() {
        let mut trailing = register(1).encode();
        trailing.push(0);
        assert_eq!(
            fault(&[(path().value_key(), vec![7, 7, 7])]),
            Some((0, SnapshotEntryFault::Undecodable(StateRecord::Slot)))
        );
        assert_eq!(
            fault(&[(path().value_key(), trailing)]),
            Some((0, SnapshotEntryFault::Undecodable(StateRecord::Slot)))
        );
        assert_eq!(
            fault(&[(path().removal_key(), vec![1])]),
            Some((0, SnapshotEntryFault::Undecodable(StateRecord::RemovalMarker)))
        );
        // A set whose elements are written out of order decodes (borsh sorts them into the
        // map) but is not what the application writes: merging would re-encode it.
        #[derive(borsh::BorshSerialize)]
        struct UnsortedSet {
            adds: Vec<(Vec<u8>, BTreeSet<Stamp>)>,
            removed: BTreeSet<Stamp>,
            stamp: Stamp,
        }
        #[derive(borsh::BorshSerialize)]
        struct SlotWithUnsortedSet {
            register: Option<LwwRegister>,
            counter: Option<crate::crdt::PnCounter>,
            set: Option<UnsortedSet>,
            list: Option<RgaList>,
        }
        let tags = BTreeSet::from([stamp(1)]);
        let unsorted = SlotWithUnsortedSet {
            register: None,
            counter: None,
            set: Some(UnsortedSet {
                adds: vec![(b"b".to_vec(), tags.clone()), (b"a".to_vec(), tags)],
                removed: BTreeSet::new(),
                stamp: stamp(1),
            }),
            list: None,
        };
        assert_eq!(
            fault(&[(path().value_key(), rhizome_core::wire::encode(&unsorted))]),
            Some((0, SnapshotEntryFault::NonCanonical(StateRecord::Slot)))
        );
    }

    #[test]
    fn a_stamp_beyond_the_bound_is_refused_wherever_it_hides() {
        let ahead = |ms| SnapshotEntryFault::StampAhead { record: StateRecord::Slot, ahead_ms: ms };
        assert_eq!(fault(&[(path().value_key(), register(BOUND_MS + 5).encode())]), Some((0, ahead(5))));
        // An honest-looking component stamp over a set tag from the far future.
        let set = Slot {
            set: Some(AwSet {
                adds: BTreeMap::from([(b"e".to_vec(), BTreeSet::from([stamp(u64::MAX)]))]),
                removed: BTreeSet::new(),
                stamp: stamp(1),
            }),
            ..Slot::default()
        };
        assert_eq!(fault(&[(path().value_key(), set.encode())]), Some((0, ahead(u64::MAX - BOUND_MS))));
        // A list tombstone and a list anchor.
        let tombstone = Slot {
            list: Some(RgaList {
                nodes: BTreeMap::new(),
                removed: BTreeSet::from([stamp(BOUND_MS + 7)]),
                stamp: stamp(1),
            }),
            ..Slot::default()
        };
        assert_eq!(fault(&[(path().value_key(), tombstone.encode())]), Some((0, ahead(7))));
        let anchor = Slot {
            list: Some(RgaList {
                nodes: BTreeMap::from([(stamp(1), ListNode { after: Some(stamp(BOUND_MS + 9)), value: vec![] })]),
                removed: BTreeSet::new(),
                stamp: stamp(1),
            }),
            ..Slot::default()
        };
        assert_eq!(fault(&[(path().value_key(), anchor.encode())]), Some((0, ahead(9))));
        let marker = (path().removal_key(), rhizome_core::wire::encode(&stamp(BOUND_MS + 3)));
        assert_eq!(
            fault(&[marker]),
            Some((0, SnapshotEntryFault::StampAhead { record: StateRecord::RemovalMarker, ahead_ms: 3 }))
        );
    }
}
