//! A bump allocator over a static arena, the SDK's global allocator.
//!
//! Every call runs in a fresh instance that is thrown away afterwards, so memory never needs to
//! be reused: bumping a pointer is enough, and the arena is part of the module's initial memory,
//! so a typical call never executes `memory.grow` (which costs the host more than the call).
//! Freeing the most recent allocation rolls it back, and growing it grows in place; anything
//! that does not fit falls through to the standard allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

const ARENA_BYTES: usize = 64 * 1024;

#[repr(C, align(16))]
struct Arena {
    bytes: UnsafeCell<[u8; ARENA_BYTES]>,
    next: UnsafeCell<usize>,
}

// SAFETY: wasm32-unknown-unknown without the atomics feature has a single thread.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena { bytes: UnsafeCell::new([0; ARENA_BYTES]), next: UnsafeCell::new(0) };

/// The SDK's allocator: bump in the arena, fall back to the standard allocator.
pub struct BumpAllocator;

impl BumpAllocator {
    fn base() -> usize {
        ARENA.bytes.get() as usize
    }

    fn owns(ptr: *mut u8) -> bool {
        let address = ptr as usize;
        address >= Self::base() && address < Self::base() + ARENA_BYTES
    }
}

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = unsafe { &mut *ARENA.next.get() };
        let start = (Self::base() + *next).next_multiple_of(layout.align()) - Self::base();
        match start.checked_add(layout.size()) {
            Some(end) if end <= ARENA_BYTES => {
                *next = end;
                (Self::base() + start) as *mut u8
            }
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !Self::owns(ptr) {
            return unsafe { System.dealloc(ptr, layout) };
        }
        let next = unsafe { &mut *ARENA.next.get() };
        if ptr as usize + layout.size() == Self::base() + *next {
            *next = ptr as usize - Self::base();
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::owns(ptr) {
            let next = unsafe { &mut *ARENA.next.get() };
            let end = ptr as usize - Self::base() + layout.size();
            let new_end = ptr as usize - Self::base() + new_size;
            if end == *next && new_end <= ARENA_BYTES {
                *next = new_end;
                return ptr;
            }
        }
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            unsafe { std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size)) };
            unsafe { self.dealloc(ptr, layout) };
        }
        new_ptr
    }
}
