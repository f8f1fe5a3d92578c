//! The raw imports of the host ABI (module `rhizome`); see docs/ABI.md.

#[link(wasm_import_module = "rhizome")]
extern "C" {
    pub(crate) fn input_len() -> i32;
    pub(crate) fn input_read(ptr: i32);
    pub(crate) fn return_value(ptr: i32, len: i32);
    pub(crate) fn register_read(ptr: i32);
    pub(crate) fn register_set(path_ptr: i32, path_len: i32, value_ptr: i32, value_len: i32);
    pub(crate) fn register_get(path_ptr: i32, path_len: i32) -> i64;
    pub(crate) fn counter_add(path_ptr: i32, path_len: i32, amount: i64);
    pub(crate) fn counter_get(path_ptr: i32, path_len: i32) -> i64;
    pub(crate) fn set_add(path_ptr: i32, path_len: i32, element_ptr: i32, element_len: i32);
    pub(crate) fn set_remove(path_ptr: i32, path_len: i32, element_ptr: i32, element_len: i32) -> i32;
    pub(crate) fn set_contains(path_ptr: i32, path_len: i32, element_ptr: i32, element_len: i32) -> i32;
    pub(crate) fn set_members(path_ptr: i32, path_len: i32) -> i64;
    pub(crate) fn map_keys(path_ptr: i32, path_len: i32) -> i64;
    pub(crate) fn remove(path_ptr: i32, path_len: i32);
    pub(crate) fn list_insert(path_ptr: i32, path_len: i32, index: i32, value_ptr: i32, value_len: i32);
    pub(crate) fn list_remove(path_ptr: i32, path_len: i32, index: i32) -> i32;
    pub(crate) fn list_get(path_ptr: i32, path_len: i32) -> i64;
    pub(crate) fn emit(kind_ptr: i32, kind_len: i32, data_ptr: i32, data_len: i32);
    pub(crate) fn log(ptr: i32, len: i32);
    pub(crate) fn context_id(ptr: i32);
    pub(crate) fn caller_id(ptr: i32);
    pub(crate) fn time_ms() -> i64;
    pub(crate) fn random(ptr: i32, len: i32);
    pub(crate) fn abort(ptr: i32, len: i32);
    pub(crate) fn bad_input(ptr: i32, len: i32);
}
