//! The `flotilla` command-line entry point: all logic lives in the library.

fn main() {
    let code = flotilla::cli::main();
    std::process::exit(code);
}
