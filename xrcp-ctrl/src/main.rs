//! `xrcp-ctrl`: the controller (desktop) program. See `xrcp-ctrl --help` and the README.
//!
//! The program is compiled here, in the binary, so that it can use nothing of the library
//! but its public API (the facade and the types at the crate root).

mod chat;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
