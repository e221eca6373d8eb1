//! Prefetch hints: start loading memory that is about to be read, so that
//! the load overlaps other work. They read nothing into the program and
//! change no result; on targets other than x86-64 they do nothing.

/// Starts loading the cache line of `value` (a hint: no effect on results).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_at(std::ptr::from_ref(value).cast());
}

/// Starts loading the cache line at `at` (a hint: no effect on results).
#[inline(always)]
fn prefetch_at(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing into the program
    // (any address is allowed), and SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Starts loading the cache lines `items` lies on, the first `lines` of
/// them at most.
pub(crate) fn prefetch_lines<T>(items: &[T], lines: usize) {
    let bytes = std::mem::size_of_val(items);
    if bytes == 0 {
        return;
    }
    let start = items.as_ptr().cast::<u8>();
    // From the line the first byte is on to the one the last byte is on.
    let first = start.wrapping_sub(start as usize % 64);
    let end = start.wrapping_add(bytes);
    let mut line = first;
    for _ in 0..lines {
        if line >= end {
            break;
        }
        prefetch_at(line);
        line = line.wrapping_add(64);
    }
}
