//! CRDT state, addressed by paths: `&[b"todos", id, b"title"]` names a value inside nested maps.
//!
//! - registers (last writer wins): [`set`], [`get`];
//! - counters (increments and decrements from every replica add up): [`counter_add`], [`counter`];
//! - add-wins sets: [`set_add`], [`set_remove`], [`set_contains`], [`set_members`];
//! - ordered lists (concurrent inserts interleave the same way everywhere): [`list_insert`],
//!   [`list_remove`], [`list`];
//! - maps: [`keys`] lists a map's keys, [`remove`] removes a value or a whole nested map.

use crate::sys;

fn encode_path(path: &[&[u8]]) -> Vec<u8> {
    let segments: Vec<Vec<u8>> = path.iter().map(|segment| segment.to_vec()).collect();
    borsh::to_vec(&segments).expect("encoding into a Vec never fails")
}

fn read_register(len: i64) -> Option<Vec<u8>> {
    let len = usize::try_from(len).ok()?;
    let mut buffer = vec![0u8; len];
    unsafe { sys::register_read(buffer.as_mut_ptr() as i32) };
    Some(buffer)
}

fn read_list(len: i64) -> Vec<Vec<u8>> {
    read_register(len).and_then(|bytes| borsh::from_slice(&bytes).ok()).unwrap_or_default()
}

/// Sets the register at `path`.
pub fn set(path: &[&[u8]], value: &[u8]) {
    let path = encode_path(path);
    unsafe { sys::register_set(path.as_ptr() as i32, path.len() as i32, value.as_ptr() as i32, value.len() as i32) };
}

/// The register at `path`, if set.
pub fn get(path: &[&[u8]]) -> Option<Vec<u8>> {
    let path = encode_path(path);
    read_register(unsafe { sys::register_get(path.as_ptr() as i32, path.len() as i32) })
}

/// Adds `amount` (negative to subtract) to the counter at `path`.
pub fn counter_add(path: &[&[u8]], amount: i64) {
    let path = encode_path(path);
    unsafe { sys::counter_add(path.as_ptr() as i32, path.len() as i32, amount) };
}

/// The counter at `path` (zero if never written).
pub fn counter(path: &[&[u8]]) -> i64 {
    let path = encode_path(path);
    unsafe { sys::counter_get(path.as_ptr() as i32, path.len() as i32) }
}

/// Adds `element` to the set at `path`.
pub fn set_add(path: &[&[u8]], element: &[u8]) {
    let path = encode_path(path);
    unsafe { sys::set_add(path.as_ptr() as i32, path.len() as i32, element.as_ptr() as i32, element.len() as i32) };
}

/// Removes `element` from the set at `path`; true if it was there. A concurrent add elsewhere
/// wins over this remove.
pub fn set_remove(path: &[&[u8]], element: &[u8]) -> bool {
    let path = encode_path(path);
    unsafe {
        sys::set_remove(path.as_ptr() as i32, path.len() as i32, element.as_ptr() as i32, element.len() as i32) == 1
    }
}

/// True if `element` is in the set at `path`.
pub fn set_contains(path: &[&[u8]], element: &[u8]) -> bool {
    let path = encode_path(path);
    unsafe {
        sys::set_contains(path.as_ptr() as i32, path.len() as i32, element.as_ptr() as i32, element.len() as i32) == 1
    }
}

/// The elements of the set at `path`, sorted.
pub fn set_members(path: &[&[u8]]) -> Vec<Vec<u8>> {
    let path = encode_path(path);
    read_list(unsafe { sys::set_members(path.as_ptr() as i32, path.len() as i32) })
}

/// The keys of the map at `path` (`&[]` for the root map), sorted.
pub fn keys(path: &[&[u8]]) -> Vec<Vec<u8>> {
    let path = encode_path(path);
    read_list(unsafe { sys::map_keys(path.as_ptr() as i32, path.len() as i32) })
}

/// Removes whatever is at `path`, a whole nested map included.
pub fn remove(path: &[&[u8]]) {
    let path = encode_path(path);
    unsafe { sys::remove(path.as_ptr() as i32, path.len() as i32) };
}

/// Inserts `value` at position `index` of the list at `path` (0 is the front, `len` the end).
pub fn list_insert(path: &[&[u8]], index: usize, value: &[u8]) {
    let path = encode_path(path);
    unsafe {
        sys::list_insert(
            path.as_ptr() as i32,
            path.len() as i32,
            index as i32,
            value.as_ptr() as i32,
            value.len() as i32,
        )
    };
}

/// Removes the element at position `index` of the list at `path`; false if there is none.
pub fn list_remove(path: &[&[u8]], index: usize) -> bool {
    let path = encode_path(path);
    unsafe { sys::list_remove(path.as_ptr() as i32, path.len() as i32, index as i32) == 1 }
}

/// The elements of the list at `path`, in order.
pub fn list(path: &[&[u8]]) -> Vec<Vec<u8>> {
    let path = encode_path(path);
    read_list(unsafe { sys::list_get(path.as_ptr() as i32, path.len() as i32) })
}
