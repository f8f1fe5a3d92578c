//! counter: a replicated counter. Increments from every replica add up.

use rhizome_sdk::{entry, input_as, state};

const COUNT: &[u8] = b"count";

#[no_mangle]
pub extern "C" fn increment() {
    entry(|| {
        let amount: i64 = input_as()?;
        state::counter_add(&[COUNT], amount);
        Ok(state::counter(&[COUNT]))
    })
}

#[no_mangle]
pub extern "C" fn get() {
    entry(|| Ok(state::counter(&[COUNT])))
}
