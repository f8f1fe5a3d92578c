//! Native merge: applying an action to state, and reading state as the application sees it.
//! No WASM runs here; a remote delta is merged by these functions alone.

use crate::crdt::{AwSet, ListNode, LwwRegister, PnCounter, RgaList, Slot};
use crate::path::Path;
use crate::payload::Action;
use crate::stamp::Stamp;
use crate::state::{KvBackend, Txn};
use rhizome_core::{ApplyError, AuthorKey, StateRecord};
use std::collections::BTreeMap;

/// Joins one action, stamped, into the transaction. Returns the bytes it wrote (the encoded
/// slot or marker), which calls pay for in fuel.
pub fn apply_action<B: KvBackend>(txn: &mut Txn<'_, B>, action: &Action, stamp: Stamp) -> Result<usize, ApplyError> {
    let (path, slot) = match action {
        Action::RegisterSet { path, value } => {
            (path, Slot { register: Some(LwwRegister { value: Some(value.clone()), stamp }), ..Slot::default() })
        }
        Action::CounterTotals { path, increments, decrements } => {
            let totals = BTreeMap::from([(stamp.author, (*increments, *decrements))]);
            (path, Slot { counter: Some(PnCounter { totals, stamp }), ..Slot::default() })
        }
        Action::SetAdd { path, element, replaces } => {
            let adds = BTreeMap::from([(element.clone(), [stamp].into_iter().collect())]);
            let removed = replaces.iter().copied().collect();
            (path, Slot { set: Some(AwSet { adds, removed, stamp }), ..Slot::default() })
        }
        Action::SetRemove { path, observed, .. } => {
            let removed = observed.iter().copied().collect();
            (path, Slot { set: Some(AwSet { adds: Default::default(), removed, stamp }), ..Slot::default() })
        }
        Action::ListInsert { path, after, value } => {
            let nodes = BTreeMap::from([(stamp, ListNode { after: *after, value: value.clone() })]);
            (path, Slot { list: Some(RgaList { nodes, removed: Default::default(), stamp }), ..Slot::default() })
        }
        Action::ListRemove { path, node } => {
            let removed = [*node].into_iter().collect();
            (path, Slot { list: Some(RgaList { nodes: Default::default(), removed, stamp }), ..Slot::default() })
        }
        Action::Remove { path } => {
            let key = path.removal_key();
            let existing = read_stamp(txn, &key)?;
            let encoded = rhizome_core::wire::encode(&stamp);
            let written = encoded.len();
            if existing.is_none_or(|existing| stamp > existing) {
                txn.put(key, encoded);
            }
            return Ok(written);
        }
    };
    let key = path.value_key();
    let merged = match read_slot(txn, &key)? {
        Some(mut existing) => {
            existing.join(&slot);
            existing
        }
        None => slot,
    };
    let encoded = merged.encode();
    let written = encoded.len();
    txn.put(key, encoded);
    Ok(written)
}

fn read_slot<B: KvBackend>(txn: &Txn<'_, B>, key: &[u8]) -> Result<Option<Slot>, ApplyError> {
    txn.get(key)
        .map(|bytes| borsh::from_slice(&bytes).map_err(|_| ApplyError::CorruptState(StateRecord::Slot)))
        .transpose()
}

fn read_stamp<B: KvBackend>(txn: &Txn<'_, B>, key: &[u8]) -> Result<Option<Stamp>, ApplyError> {
    txn.get(key)
        .map(|bytes| borsh::from_slice(&bytes).map_err(|_| ApplyError::CorruptState(StateRecord::RemovalMarker)))
        .transpose()
}

/// The latest removal of `path` or any map above it: writes stamped earlier are hidden.
fn removal_cutoff<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<Option<Stamp>, ApplyError> {
    let mut cutoff = None;
    for key in path.prefix_removal_keys() {
        if let Some(stamp) = read_stamp(txn, &key)? {
            cutoff = cutoff.max(Some(stamp));
        }
    }
    Ok(cutoff)
}

fn visible_slot<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<Option<(Slot, Option<Stamp>)>, ApplyError> {
    let Some(slot) = read_slot(txn, &path.value_key())? else { return Ok(None) };
    let cutoff = removal_cutoff(txn, path)?;
    Ok(Some((slot, cutoff)))
}

/// The register at `path`, if set and not removed.
pub fn read_register<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<Option<Vec<u8>>, ApplyError> {
    Ok(match visible_slot(txn, path)? {
        Some((Slot { register: Some(register), .. }, cutoff))
            if cutoff.is_none_or(|cutoff| register.stamp > cutoff) =>
        {
            register.value
        }
        _ => None,
    })
}

/// The counter at `path` (zero if absent or removed).
pub fn read_counter<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<i64, ApplyError> {
    Ok(match visible_slot(txn, path)? {
        Some((Slot { counter: Some(counter), .. }, cutoff)) if cutoff.is_none_or(|cutoff| counter.stamp > cutoff) => {
            counter.value()
        }
        _ => 0,
    })
}

/// `author`'s totals in the counter at `path`, removed or not: the base of its next write.
pub fn read_counter_totals<B: KvBackend>(
    txn: &Txn<'_, B>,
    path: &Path,
    author: &AuthorKey,
) -> Result<(u64, u64), ApplyError> {
    Ok(match read_slot(txn, &path.value_key())? {
        Some(Slot { counter: Some(counter), .. }) => counter.totals.get(author).copied().unwrap_or_default(),
        _ => (0, 0),
    })
}

/// The set at `path`: its live elements, sorted.
pub fn read_set_members<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<Vec<Vec<u8>>, ApplyError> {
    Ok(match visible_slot(txn, path)? {
        Some((Slot { set: Some(set), .. }, cutoff)) => set.members_after(cutoff),
        _ => Vec::new(),
    })
}

/// The live add tags of `element` in the set at `path`: what a remove must name.
pub fn read_set_tags<B: KvBackend>(txn: &Txn<'_, B>, path: &Path, element: &[u8]) -> Result<Vec<Stamp>, ApplyError> {
    Ok(match visible_slot(txn, path)? {
        Some((Slot { set: Some(set), .. }, cutoff)) => set.live_tags_after(element, cutoff),
        _ => Vec::new(),
    })
}

/// The ordered list at `path`: visible elements with their node ids, in list order.
pub fn read_list<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<Vec<(Stamp, Vec<u8>)>, ApplyError> {
    Ok(match visible_slot(txn, path)? {
        Some((Slot { list: Some(list), .. }, cutoff)) => {
            list.visible(cutoff).into_iter().map(|(id, value)| (id, value.to_vec())).collect()
        }
        _ => Vec::new(),
    })
}

/// The keys of the map at `path` (empty path: the root map) that hold something visible.
pub fn read_map_keys<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<Vec<Vec<u8>>, ApplyError> {
    let depth = path.depth();
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for (key, _) in txn.scan_prefix(&path.value_key()) {
        let Some(full) = Path::from_value_key(&key) else { continue };
        if full.depth() <= depth || keys.last() == Some(&full.0[depth]) {
            continue;
        }
        if is_visible(txn, &full)? {
            keys.push(full.0[depth].clone());
        }
    }
    // Store order is by encoded segment (length first); the ABI promises byte order.
    keys.sort();
    keys.dedup();
    Ok(keys)
}

fn is_visible<B: KvBackend>(txn: &Txn<'_, B>, path: &Path) -> Result<bool, ApplyError> {
    let Some((slot, cutoff)) = visible_slot(txn, path)? else { return Ok(false) };
    let after = |stamp: Stamp| cutoff.is_none_or(|cutoff| stamp > cutoff);
    let register = slot.register.as_ref().is_some_and(|register| register.value.is_some() && after(register.stamp));
    let counter = slot.counter.as_ref().is_some_and(|counter| after(counter.stamp));
    let set = slot.set.as_ref().is_some_and(|set| !set.members_after(cutoff).is_empty());
    let list = slot.list.as_ref().is_some_and(|list| !list.visible(cutoff).is_empty());
    Ok(register || counter || set || list)
}

/// The store key of the value slot at `path` (for tools and benchmarks that fill a store).
pub fn value_key_of(path: &Path) -> Vec<u8> {
    path.value_key()
}
