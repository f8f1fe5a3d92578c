//! todo: a replicated to-do list, kept in order in an RGA list, whose event handler writes state. Every node counts, in a
//! per-node counter, the to-dos other nodes added that it has seen. The handler's write is a
//! new delta of the handling node, so the counts replicate too.

use rhizome_sdk::{caller_id, emit, entry, input_as, random_bytes, state, HandlerInput};

const TODOS: &[u8] = b"todos";
const OPEN: &[u8] = b"open";
const SEEN: &[u8] = b"seen";
const ORDER: &[u8] = b"order";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[no_mangle]
pub extern "C" fn add() {
    entry(|| {
        let title: String = input_as()?;
        let id = hex(&random_bytes(8));
        state::set(&[TODOS, id.as_bytes(), b"title"], title.as_bytes());
        state::set_add(&[OPEN], id.as_bytes());
        let end = state::list(&[ORDER]).len();
        state::list_insert(&[ORDER], end, id.as_bytes());
        emit("Added", id.as_bytes());
        Ok(id)
    })
}

#[no_mangle]
pub extern "C" fn complete() {
    entry(|| {
        let id: String = input_as()?;
        if state::get(&[TODOS, id.as_bytes(), b"title"]).is_none() {
            return Err(format!("no to-do {id}").into());
        }
        state::set_remove(&[OPEN], id.as_bytes());
        state::set(&[TODOS, id.as_bytes(), b"done"], b"1");
        emit("Completed", id.as_bytes());
        Ok(())
    })
}

/// (id, title, done) for every to-do, in the order they were added (concurrent additions
/// interleave the same way on every replica).
#[no_mangle]
pub extern "C" fn list() {
    entry(|| {
        let todos: Vec<(String, String, bool)> = state::list(&[ORDER])
            .into_iter()
            .map(|id| {
                let title = state::get(&[TODOS, &id, b"title"]).unwrap_or_default();
                let done = state::get(&[TODOS, &id, b"done"]).is_some();
                (String::from_utf8_lossy(&id).into_owned(), String::from_utf8_lossy(&title).into_owned(), done)
            })
            .collect();
        Ok(todos)
    })
}

/// Open to-do ids.
#[no_mangle]
pub extern "C" fn open() {
    entry(|| {
        Ok(state::set_members(&[OPEN])
            .into_iter()
            .map(|id| String::from_utf8_lossy(&id).into_owned())
            .collect::<Vec<_>>())
    })
}

/// How many to-dos added elsewhere the node with this author key has seen.
#[no_mangle]
pub extern "C" fn seen_count() {
    entry(|| {
        let node: [u8; 32] = input_as()?;
        Ok(state::counter(&[SEEN, hex(&node).as_bytes()]))
    })
}

#[no_mangle]
pub extern "C" fn __rhizome_on_event() {
    entry(|| {
        let event: HandlerInput = input_as()?;
        if event.kind == "Added" {
            state::counter_add(&[SEEN, hex(&caller_id()).as_bytes()], 1);
        }
        Ok(())
    })
}
