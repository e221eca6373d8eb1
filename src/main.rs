//! The `journey` binary: hands the process arguments to [`journey::cli`].

fn main() {
    std::process::exit(journey::cli::main());
}
