//! The allocator the `journey` binary uses (mimalloc), counting the change
//! in live bytes while counting is on ([`start`] to [`stop`]). Elsewhere
//! it only forwards: an atomic add on every allocation and free is a cost
//! the binary does not pay, and a throughput pass must not pay it either.
//! A bench installs it with `#[global_allocator] static GLOBAL: Counting =
//! Counting;`.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

pub struct Counting;

static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `INNER` unchanged; only a counter is
// updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is passed on to `INNER`.
        unsafe { INNER.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { INNER.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: as above.
        unsafe { INNER.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

/// Counting from now on.
pub fn start() {
    COUNTING.store(true, Ordering::Relaxed);
}

/// Counting no more.
pub fn stop() {
    COUNTING.store(false, Ordering::Relaxed);
}

/// The change in live bytes while counting. Only differences of two
/// readings taken while counting mean anything: memory allocated before
/// and freed since counts negative, as it should.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}
