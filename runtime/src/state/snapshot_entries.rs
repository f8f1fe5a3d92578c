//! Checking a peer's snapshot state entry by entry before it may replace ours: every key names
//! a record at a path within the payload bounds, every value is the canonical encoding of that
//! record, and no stamp in it is later than the clock bound: neither one a write put there nor
//! one a write refers to (which deltas keep below their own stamps, `crate::references`). A
//! root match alone proves only that the sender hashed what it sent; these checks make sure
//! each entry is one that deltas could have written. (They do not prove the state is complete:
//! see SECURITY.md.)

use crate::crdt::Slot;
use crate::path::Path;
use crate::payload::{check_path, PAYLOAD_BOUNDS_V1};
use crate::stamp::Stamp;
use rhizome_core::{ApplyError, SnapshotEntryFault, StateRecord};

/// Checks every `(key, value)` of a snapshot's state. `max_stamp_ms` is the latest physical
/// time (Unix milliseconds) a stamp may carry. The first bad entry is reported. Returns the
/// latest stamp in the state (`None` if it is empty), for the importer's clock to observe.
pub fn check_snapshot_entries(entries: &[(Vec<u8>, Vec<u8>)], max_stamp_ms: u64) -> Result<Option<Stamp>, ApplyError> {
    let mut latest = None;
    for (index, (key, value)) in entries.iter().enumerate() {
        let stamp =
            check_entry(key, value, max_stamp_ms).map_err(|fault| ApplyError::InvalidSnapshotEntry { index, fault })?;
        latest = latest.max(Some(stamp));
    }
    Ok(latest)
}

/// Checks one entry; returns the latest stamp in it.
fn check_entry(key: &[u8], value: &[u8], max_stamp_ms: u64) -> Result<Stamp, SnapshotEntryFault> {
    let bounds = PAYLOAD_BOUNDS_V1;
    let within_bounds = |path: &Path| check_path(path, bounds.max_path_depth, bounds.max_path_bytes).is_ok();
    let (record, latest) = if let Some(path) = Path::from_value_key(key) {
        if !within_bounds(&path) {
            return Err(SnapshotEntryFault::BadKey);
        }
        let slot: Slot = decode_canonical(value, StateRecord::Slot)?;
        (StateRecord::Slot, slot.latest_written_stamp().max(slot.latest_referenced_stamp()))
    } else if let Some(path) = Path::from_removal_key(key) {
        if !within_bounds(&path) {
            return Err(SnapshotEntryFault::BadKey);
        }
        let stamp: Stamp = decode_canonical(value, StateRecord::RemovalMarker)?;
        (StateRecord::RemovalMarker, stamp)
    } else {
        return Err(SnapshotEntryFault::BadKey);
    };
    let ahead_ms = latest.hlc.physical_ms.saturating_sub(max_stamp_ms);
    if ahead_ms > 0 {
        return Err(SnapshotEntryFault::StampAhead { record, ahead_ms });
    }
    Ok(latest)
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
            Ok(_) => None,
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
    fn the_latest_stamp_of_the_state_is_returned_for_the_clock() {
        let tombstone = AwSet { adds: BTreeMap::new(), removed: BTreeSet::from([stamp(70)]), stamp: stamp(60) };
        let entries = vec![
            (path().value_key(), register(40).encode()),
            (Path::new([b"s".to_vec()]).value_key(), Slot { set: Some(tombstone), ..Slot::default() }.encode()),
            (path().removal_key(), rhizome_core::wire::encode(&stamp(50))),
        ];
        assert_eq!(check_snapshot_entries(&entries, BOUND_MS), Ok(Some(stamp(70))));
        assert_eq!(check_snapshot_entries(&[], BOUND_MS), Ok(None));
    }

    #[test]
    fn a_key_that_names_no_record_is_refused() {
        let good = (path().value_key(), register(1).encode());
        let meta_key = (vec![b'm', 1, 2], register(1).encode());
        let truncated_segment = (vec![b'v', 0, 0, 0, 9, b'x'], register(1).encode());
        assert_eq!(fault(&[good.clone(), meta_key]), Some((1, SnapshotEntryFault::BadKey)));
        assert_eq!(fault(&[good.clone(), truncated_segment]), Some((1, SnapshotEntryFault::BadKey)));
        let empty_path = (vec![b'v'], register(1).encode());
        assert_eq!(fault(&[empty_path]), Some((0, SnapshotEntryFault::BadKey)));
        let too_deep = Path::new((0..17).map(|_| b"x".to_vec()));
        assert_eq!(fault(&[(too_deep.value_key(), register(1).encode())]), Some((0, SnapshotEntryFault::BadKey)));
        let too_long = Path::new([vec![b'x'; 1_025]]);
        assert_eq!(
            fault(&[(too_long.removal_key(), rhizome_core::wire::encode(&stamp(1)))]),
            Some((0, SnapshotEntryFault::BadKey))
        );
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
        // A list node from the far future, beside an honest component stamp.
        let node = Slot {
            list: Some(RgaList {
                nodes: BTreeMap::from([(stamp(BOUND_MS + 7), ListNode { after: None, value: vec![] })]),
                removed: BTreeSet::new(),
                stamp: stamp(1),
            }),
            ..Slot::default()
        };
        assert_eq!(fault(&[(path().value_key(), node.encode())]), Some((0, ahead(7))));
        // References too: deltas keep them below their own stamps, so a tombstone or an anchor
        // from the far future is one no delta made (it would pre-empt a write not made yet).
        let tombstone =
            AwSet { adds: BTreeMap::new(), removed: BTreeSet::from([stamp(BOUND_MS + 2)]), stamp: stamp(1) };
        let set_tombstone = Slot { set: Some(tombstone), ..Slot::default() };
        assert_eq!(fault(&[(path().value_key(), set_tombstone.encode())]), Some((0, ahead(2))));
        let anchor = RgaList {
            nodes: BTreeMap::from([(stamp(1), ListNode { after: Some(stamp(u64::MAX)), value: vec![] })]),
            removed: BTreeSet::new(),
            stamp: stamp(1),
        };
        let anchored = Slot { list: Some(anchor), ..Slot::default() };
        assert_eq!(fault(&[(path().value_key(), anchored.encode())]), Some((0, ahead(u64::MAX - BOUND_MS))));
        let list_tombstone =
            RgaList { nodes: BTreeMap::new(), removed: BTreeSet::from([stamp(BOUND_MS + 4)]), stamp: stamp(1) };
        let removed_node = Slot { list: Some(list_tombstone), ..Slot::default() };
        assert_eq!(fault(&[(path().value_key(), removed_node.encode())]), Some((0, ahead(4))));
        let marker = (path().removal_key(), rhizome_core::wire::encode(&stamp(BOUND_MS + 3)));
        assert_eq!(
            fault(&[marker]),
            Some((0, SnapshotEntryFault::StampAhead { record: StateRecord::RemovalMarker, ahead_ms: 3 }))
        );
    }
}
