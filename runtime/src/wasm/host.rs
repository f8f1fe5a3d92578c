//! The host ABI: the functions an application imports from module `rhizome`.
//! docs/ABI.md is the reference for application authors; this file is the implementation.
//!
//! Conventions: byte strings are passed as (pointer, length) into the guest's memory. A read
//! whose result has variable length puts it in the call's *register* and returns its length
//! (or -1 for "absent"); the guest then copies it with `register_read(ptr)`. Paths are the
//! borsh encoding of `Vec<Vec<u8>>`. Any misuse traps the call with a typed error.

use super::call::CallState;
use super::error::CallError;
use crate::merge;
use crate::path::Path;
use crate::payload::{check_path, Action, AppEvent};
use crate::state::KvBackend;
use rand_chacha::rand_core::RngCore;
use wasmtime::{Caller, Engine, Linker, Memory};

type Ctx<'a, B> = Caller<'a, CallState<B>>;

fn fail(error: CallError) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

fn bad_abi(message: &str) -> wasmtime::Error {
    fail(CallError::BadAbi(message.to_owned()))
}

/// Fuel every host call costs, on top of one unit per byte it moves: host work is real work
/// (a state read, a join, a hash), and a guest must not get it for free.
const HOST_CALL_FUEL: u64 = 200;
/// Fuel per entry a listing read returns.
const LISTED_ENTRY_FUEL: u64 = 50;

/// Takes `units` of fuel from the call, failing it with `OutOfFuel` if there is not enough.
fn charge<B: KvBackend>(caller: &mut Ctx<'_, B>, units: u64) -> wasmtime::Result<()> {
    let fuel = caller.get_fuel()?;
    if fuel < units {
        caller.set_fuel(0)?;
        return Err(fail(CallError::OutOfFuel));
    }
    caller.set_fuel(fuel - units)
}

fn memory<B: KvBackend>(caller: &mut Ctx<'_, B>) -> wasmtime::Result<Memory> {
    caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
        .ok_or_else(|| bad_abi("module exports no memory"))
}

fn read_bytes<B: KvBackend>(
    caller: &mut Ctx<'_, B>,
    ptr: i32,
    len: i32,
    max: usize,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| bad_abi("negative length"))?;
    if len > max {
        return Err(fail(CallError::LimitExceeded(format!("{what} of {len} bytes, over {max}"))));
    }
    charge(caller, HOST_CALL_FUEL + len as u64)?;
    let memory = memory(caller)?;
    let mut buffer = vec![0u8; len];
    memory.read(&*caller, ptr as u32 as usize, &mut buffer).map_err(|_| bad_abi("pointer outside memory"))?;
    Ok(buffer)
}

fn write_bytes<B: KvBackend>(caller: &mut Ctx<'_, B>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    charge(caller, HOST_CALL_FUEL + bytes.len() as u64)?;
    let memory = memory(caller)?;
    memory.write(&mut *caller, ptr as u32 as usize, bytes).map_err(|_| bad_abi("pointer outside memory"))
}

fn read_path<B: KvBackend>(caller: &mut Ctx<'_, B>, ptr: i32, len: i32) -> wasmtime::Result<Path> {
    let limits = &caller.data().limits;
    // Encoded size: a 4-byte count, then 4 bytes of length per segment plus its bytes.
    let max_encoded = 4 + 4 * limits.max_path_depth + limits.max_path_bytes;
    let bytes = read_bytes(caller, ptr, len, max_encoded, "path")?;
    let path: Path = borsh::from_slice(&bytes).map_err(|_| bad_abi("path is not a borsh Vec<Vec<u8>>"))?;
    let limits = &caller.data().limits;
    check_path(&path, limits.max_path_depth, limits.max_path_bytes)
        .map_err(|message| fail(CallError::LimitExceeded(message)))?;
    Ok(path)
}

fn read_value<B: KvBackend>(caller: &mut Ctx<'_, B>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let max = caller.data().limits.max_value_bytes;
    read_bytes(caller, ptr, len, max, "value")
}

fn state_error(error: rhizome_core::ApplyError) -> wasmtime::Error {
    fail(CallError::State(error))
}

/// Reads through the call's view of state (committed state plus the call's own writes).
fn view<B: KvBackend, T>(
    caller: &mut Ctx<'_, B>,
    read: impl FnOnce(&mut crate::state::Txn<'_, B>) -> Result<T, rhizome_core::ApplyError>,
) -> wasmtime::Result<T> {
    caller.data_mut().with_txn(read).map_err(state_error)
}

/// Puts `bytes` in the register and returns its length.
fn to_register<B: KvBackend>(caller: &mut Ctx<'_, B>, bytes: Vec<u8>) -> i64 {
    let len = bytes.len() as i64;
    caller.data_mut().register = bytes;
    len
}

/// Reads a set's path and an element, with the element's live tags in that set.
fn read_set_element<B: KvBackend>(
    caller: &mut Ctx<'_, B>,
    path: (i32, i32),
    element: (i32, i32),
) -> wasmtime::Result<(Path, Vec<u8>, Vec<crate::stamp::Stamp>)> {
    let path = read_path(caller, path.0, path.1)?;
    let element = read_value(caller, element.0, element.1)?;
    let tags = view(caller, |txn| merge::read_set_tags(txn, &path, &element))?;
    Ok((path, element, tags))
}

/// Records an action and charges the state bytes it wrote.
fn record<B: KvBackend>(caller: &mut Ctx<'_, B>, action: Action) -> wasmtime::Result<()> {
    let written = caller.data_mut().record(action).map_err(fail)?;
    charge(caller, written as u64)
}

/// Puts a listing in the register, charging per entry.
fn list_to_register<B: KvBackend>(caller: &mut Ctx<'_, B>, entries: Vec<Vec<u8>>) -> wasmtime::Result<i64> {
    charge(caller, LISTED_ENTRY_FUEL.saturating_mul(entries.len() as u64))?;
    Ok(to_register(caller, rhizome_core::wire::encode(&entries)))
}

/// The linker with every host function of the ABI.
pub(crate) fn linker<B: KvBackend + 'static>(engine: &Engine) -> wasmtime::Result<Linker<CallState<B>>> {
    let mut linker = Linker::new(engine);
    let m = "rhizome";

    linker.func_wrap(m, "input_len", |caller: Ctx<'_, B>| -> i32 { caller.data().input.len() as i32 })?;
    linker.func_wrap(m, "input_read", |mut caller: Ctx<'_, B>, ptr: i32| -> wasmtime::Result<()> {
        let input = caller.data().input.clone();
        write_bytes(&mut caller, ptr, &input)
    })?;
    linker.func_wrap(m, "return_value", |mut caller: Ctx<'_, B>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let max = caller.data().limits.max_return_bytes;
        let value = read_bytes(&mut caller, ptr, len, max, "return value")?;
        caller.data_mut().output = value;
        Ok(())
    })?;
    linker.func_wrap(m, "register_read", |mut caller: Ctx<'_, B>, ptr: i32| -> wasmtime::Result<()> {
        let register = std::mem::take(&mut caller.data_mut().register);
        write_bytes(&mut caller, ptr, &register)
    })?;

    linker.func_wrap(
        m,
        "register_set",
        |mut caller: Ctx<'_, B>,
         path_ptr: i32,
         path_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> wasmtime::Result<()> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let value = read_value(&mut caller, value_ptr, value_len)?;
            record(&mut caller, Action::RegisterSet { path, value })
        },
    )?;
    linker.func_wrap(
        m,
        "register_get",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32| -> wasmtime::Result<i64> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let value = view(&mut caller, |txn| merge::read_register(txn, &path))?;
            Ok(match value {
                Some(value) => to_register(&mut caller, value),
                None => -1,
            })
        },
    )?;
    linker.func_wrap(
        m,
        "counter_add",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32, amount: i64| -> wasmtime::Result<()> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let author = caller.data().caller;
            let (mut increments, mut decrements) =
                view(&mut caller, |txn| merge::read_counter_totals(txn, &path, &author))?;
            if amount >= 0 {
                increments = increments.saturating_add(amount.unsigned_abs());
            } else {
                decrements = decrements.saturating_add(amount.unsigned_abs());
            }
            record(&mut caller, Action::CounterTotals { path, increments, decrements })
        },
    )?;
    linker.func_wrap(
        m,
        "counter_get",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32| -> wasmtime::Result<i64> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            view(&mut caller, |txn| merge::read_counter(txn, &path))
        },
    )?;
    linker.func_wrap(
        m,
        "set_add",
        |mut caller: Ctx<'_, B>,
         path_ptr: i32,
         path_len: i32,
         element_ptr: i32,
         element_len: i32|
         -> wasmtime::Result<()> {
            let (path, element, replaces) =
                read_set_element(&mut caller, (path_ptr, path_len), (element_ptr, element_len))?;
            record(&mut caller, Action::SetAdd { path, element, replaces })
        },
    )?;
    linker.func_wrap(
        m,
        "set_remove",
        |mut caller: Ctx<'_, B>,
         path_ptr: i32,
         path_len: i32,
         element_ptr: i32,
         element_len: i32|
         -> wasmtime::Result<i32> {
            let (path, element, observed) =
                read_set_element(&mut caller, (path_ptr, path_len), (element_ptr, element_len))?;
            if observed.is_empty() {
                return Ok(0);
            }
            record(&mut caller, Action::SetRemove { path, element, observed })?;
            Ok(1)
        },
    )?;
    linker.func_wrap(
        m,
        "set_contains",
        |mut caller: Ctx<'_, B>,
         path_ptr: i32,
         path_len: i32,
         element_ptr: i32,
         element_len: i32|
         -> wasmtime::Result<i32> {
            let (_, _, tags) = read_set_element(&mut caller, (path_ptr, path_len), (element_ptr, element_len))?;
            Ok(i32::from(!tags.is_empty()))
        },
    )?;
    linker.func_wrap(
        m,
        "set_members",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32| -> wasmtime::Result<i64> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let members = view(&mut caller, |txn| merge::read_set_members(txn, &path))?;
            list_to_register(&mut caller, members)
        },
    )?;
    linker.func_wrap(
        m,
        "map_keys",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32| -> wasmtime::Result<i64> {
            // The root map has the empty path, which `read_path` refuses for writes.
            let max = caller.data().limits.max_path_bytes + 4 + 4 * caller.data().limits.max_path_depth;
            let bytes = read_bytes(&mut caller, path_ptr, path_len, max, "path")?;
            let path: Path = borsh::from_slice(&bytes).map_err(|_| bad_abi("path is not a borsh Vec<Vec<u8>>"))?;
            let keys = view(&mut caller, |txn| merge::read_map_keys(txn, &path))?;
            list_to_register(&mut caller, keys)
        },
    )?;
    linker.func_wrap(
        m,
        "list_insert",
        |mut caller: Ctx<'_, B>,
         path_ptr: i32,
         path_len: i32,
         index: i32,
         value_ptr: i32,
         value_len: i32|
         -> wasmtime::Result<()> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let value = read_value(&mut caller, value_ptr, value_len)?;
            let visible = view(&mut caller, |txn| merge::read_list(txn, &path))?;
            let index = usize::try_from(index).map_err(|_| bad_abi("negative list index"))?;
            if index > visible.len() {
                return Err(bad_abi("list index past the end"));
            }
            let after = index.checked_sub(1).map(|previous| visible[previous].0);
            record(&mut caller, Action::ListInsert { path, after, value })
        },
    )?;
    linker.func_wrap(
        m,
        "list_remove",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32, index: i32| -> wasmtime::Result<i32> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let visible = view(&mut caller, |txn| merge::read_list(txn, &path))?;
            let Some((node, _)) = usize::try_from(index).ok().and_then(|index| visible.get(index)) else {
                return Ok(0);
            };
            let node = *node;
            record(&mut caller, Action::ListRemove { path, node })?;
            Ok(1)
        },
    )?;
    linker.func_wrap(
        m,
        "list_get",
        |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32| -> wasmtime::Result<i64> {
            let path = read_path(&mut caller, path_ptr, path_len)?;
            let visible = view(&mut caller, |txn| merge::read_list(txn, &path))?;
            list_to_register(&mut caller, visible.into_iter().map(|(_, value)| value).collect())
        },
    )?;
    linker.func_wrap(m, "remove", |mut caller: Ctx<'_, B>, path_ptr: i32, path_len: i32| -> wasmtime::Result<()> {
        let path = read_path(&mut caller, path_ptr, path_len)?;
        record(&mut caller, Action::Remove { path })
    })?;

    linker.func_wrap(
        m,
        "emit",
        |mut caller: Ctx<'_, B>, kind_ptr: i32, kind_len: i32, data_ptr: i32, data_len: i32| -> wasmtime::Result<()> {
            let (max_events, max_bytes) =
                (caller.data().limits.max_events_per_call, caller.data().limits.max_event_bytes);
            if caller.data().events.len() >= max_events {
                return Err(fail(CallError::LimitExceeded(format!("more than {max_events} events"))));
            }
            let kind = read_bytes(&mut caller, kind_ptr, kind_len, max_bytes, "event kind")?;
            let kind = String::from_utf8(kind).map_err(|_| bad_abi("event kind is not UTF-8"))?;
            let data = read_bytes(&mut caller, data_ptr, data_len, max_bytes.saturating_sub(kind.len()), "event")?;
            let event = AppEvent { kind, data };
            caller.data_mut().grow_payload(borsh::object_length(&event).unwrap_or(usize::MAX)).map_err(fail)?;
            caller.data_mut().events.push(event);
            Ok(())
        },
    )?;
    linker.func_wrap(m, "log", |mut caller: Ctx<'_, B>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let state = caller.data();
        let room = state.limits.max_log_bytes_per_call.saturating_sub(state.log_bytes);
        if usize::try_from(len).unwrap_or(usize::MAX) > room {
            caller.data_mut().logs_dropped += 1;
            return Ok(());
        }
        let bytes = read_bytes(&mut caller, ptr, len, room, "log line")?;
        let line = String::from_utf8_lossy(&bytes).into_owned();
        let state = caller.data_mut();
        state.log_bytes += line.len();
        state.logs.push(line);
        Ok(())
    })?;
    linker.func_wrap(m, "context_id", |mut caller: Ctx<'_, B>, ptr: i32| -> wasmtime::Result<()> {
        let id = *caller.data().context.as_bytes();
        write_bytes(&mut caller, ptr, &id)
    })?;
    linker.func_wrap(m, "caller_id", |mut caller: Ctx<'_, B>, ptr: i32| -> wasmtime::Result<()> {
        let id = *caller.data().caller.as_bytes();
        write_bytes(&mut caller, ptr, &id)
    })?;
    linker.func_wrap(m, "time_ms", |caller: Ctx<'_, B>| -> i64 { caller.data().hlc.physical_ms as i64 })?;
    linker.func_wrap(m, "hlc", |mut caller: Ctx<'_, B>, ptr: i32| -> wasmtime::Result<()> {
        let hlc = rhizome_core::wire::encode(&caller.data().hlc);
        write_bytes(&mut caller, ptr, &hlc)
    })?;
    linker.func_wrap(m, "random", |mut caller: Ctx<'_, B>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        const MAX_RANDOM_BYTES: usize = 64 * 1024;
        let len = usize::try_from(len).map_err(|_| bad_abi("negative length"))?;
        if len > MAX_RANDOM_BYTES {
            return Err(fail(CallError::LimitExceeded(format!("{len} random bytes, over {MAX_RANDOM_BYTES}"))));
        }
        charge(&mut caller, len as u64)?;
        let mut bytes = vec![0u8; len];
        caller.data_mut().rng.fill_bytes(&mut bytes);
        write_bytes(&mut caller, ptr, &bytes)
    })?;
    linker.func_wrap(m, "abort", |mut caller: Ctx<'_, B>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let message = read_bytes(&mut caller, ptr, len, 4096, "abort message")
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|_| "(unreadable message)".to_owned());
        Err(fail(CallError::Aborted(message)))
    })?;
    // The caller's input does not decode as the method's arguments: the caller's fault, told
    // apart from the app's own `abort` so the API can answer `bad_args`.
    linker.func_wrap(m, "bad_input", |mut caller: Ctx<'_, B>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let message = read_bytes(&mut caller, ptr, len, 4096, "bad input message")
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|_| "(unreadable message)".to_owned());
        Err(fail(CallError::BadArgs(message)))
    })?;
    Ok(linker)
}
