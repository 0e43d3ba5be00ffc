//! `xrcp-host`: the host program (the side that holds the data). See `xrcp-host --help`.
//!
//! Its command line is part of the binary, not of the library: it can only use the library's
//! public API (the `Host` facade), as any other program embedding a host would.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
