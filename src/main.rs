//! The `journey` binary: hands the process arguments to [`journey::cli`].

/// mimalloc rather than the system allocator: `journey simulate` at a
/// million customers holds about a gigabyte in small blocks, which glibc's
/// allocator faults in 4 KiB at a time, and mimalloc keeps in 2 MiB huge
/// pages; the runtime runs 15% faster on it (docs/performance.md).
/// Embedders choose their own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(journey::cli::main());
}
