//! The `flotilla` command-line entry point: all logic lives in the library.

// Planning a large fleet makes millions of small allocations; mimalloc is markedly
// faster at that than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = flotilla::cli::main();
    std::process::exit(code);
}
