//! kv-store: a replicated string map. `set` emits `Inserted` or `Updated`, `remove` emits
//! `Removed`, `clear` emits `Cleared`. Inputs and outputs are borsh.

use rhizome_sdk::{emit, entry, input_as, state};

const MAP: &[u8] = b"kv";

#[no_mangle]
pub extern "C" fn set() {
    entry(|| {
        let (key, value): (String, String) = input_as()?;
        let kind = if state::get(&[MAP, key.as_bytes()]).is_some() { "Updated" } else { "Inserted" };
        state::set(&[MAP, key.as_bytes()], value.as_bytes());
        emit(kind, key.as_bytes());
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn get() {
    entry(|| {
        let key: String = input_as()?;
        Ok(state::get(&[MAP, key.as_bytes()]).map(|value| String::from_utf8_lossy(&value).into_owned()))
    })
}

#[no_mangle]
pub extern "C" fn remove() {
    entry(|| {
        let key: String = input_as()?;
        let present = state::get(&[MAP, key.as_bytes()]).is_some();
        if present {
            state::remove(&[MAP, key.as_bytes()]);
            emit("Removed", key.as_bytes());
        }
        Ok(present)
    })
}

#[no_mangle]
pub extern "C" fn list() {
    entry(|| {
        let entries: Vec<(String, String)> = state::keys(&[MAP])
            .into_iter()
            .filter_map(|key| {
                let value = state::get(&[MAP, &key])?;
                Some((String::from_utf8_lossy(&key).into_owned(), String::from_utf8_lossy(&value).into_owned()))
            })
            .collect();
        Ok(entries)
    })
}

#[no_mangle]
pub extern "C" fn clear() {
    entry(|| {
        let count = state::keys(&[MAP]).len() as u64;
        if count > 0 {
            state::remove(&[MAP]);
            emit("Cleared", &count.to_le_bytes());
        }
        Ok(count)
    })
}
