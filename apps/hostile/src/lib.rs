//! hostile: every way an app can misbehave, for the runtime's limit tests. Each method must
//! fail with its own typed error and leave state as it was.

use rhizome_sdk::{emit, entry, state};
use std::hint::black_box;

/// Writes, then never returns: out of fuel, and the write must not survive.
#[no_mangle]
pub extern "C" fn spin() {
    entry(|| {
        state::set(&[b"spun"], b"yes");
        let mut x: u64 = 0;
        loop {
            x = black_box(x.wrapping_add(1));
        }
        #[allow(unreachable_code)]
        Ok(x)
    })
}

/// Allocates without bound: past the bump arena, into `memory.grow`, into the memory limit.
#[no_mangle]
pub extern "C" fn bomb() {
    entry(|| {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Reserve 4 MiB without filling it: memory, not fuel, must run out first.
            let mut chunk = Vec::with_capacity(4 << 20);
            chunk.push(1u8);
            hoard.push(black_box(chunk));
        }
        #[allow(unreachable_code)]
        Ok(hoard.len())
    })
}

/// Emits far more events than a call may.
#[no_mangle]
pub extern "C" fn spam() {
    entry(|| {
        for i in 0..10_000u32 {
            emit("Spam", &i.to_le_bytes());
        }
        Ok(())
    })
}

/// Writes a value larger than any value may be.
#[no_mangle]
pub extern "C" fn oversized() {
    entry(|| {
        state::set(&[b"big"], &vec![7u8; 16 << 20]);
        Ok(())
    })
}

/// Panics: the SDK turns the panic into an abort carrying its message.
#[no_mangle]
pub extern "C" fn panics() {
    entry(|| -> Result<(), rhizome_sdk::Failure> { panic!("deliberate panic") })
}

/// A well-behaved write, to show the runtime still works after all of the above.
#[no_mangle]
pub extern "C" fn behave() {
    entry(|| {
        state::counter_add(&[b"ok"], 1);
        Ok(state::counter(&[b"ok"]))
    })
}
