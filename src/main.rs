//! The `journey` binary: hands the process arguments to [`journey::cli`].

/// mimalloc rather than the system allocator: `journey simulate` at a
/// million customers holds about a gigabyte in small blocks, which glibc's
/// allocator faults in 4 KiB at a time, and mimalloc keeps in 2 MiB huge
/// pages; the runtime runs 15% faster on it (docs/performance.md).
/// Embedders choose their own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives back to the system the pages freed on the calling thread, at
/// once rather than after mimalloc's purge delay.
fn release_free_memory() {
    // SAFETY: `mi_collect` takes no pointer and has no precondition: it
    // walks mimalloc's own bookkeeping for the calling thread and the
    // process and returns unused pages, whatever the state of the heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() {
    journey::service::core::on_restored(release_free_memory);
    std::process::exit(journey::cli::main());
}
