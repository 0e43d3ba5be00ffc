//! `xrcp-host`: the host program (the side that holds the data). See `xrcp-host --help`.

fn main() -> std::process::ExitCode {
    xrcp_host::cli::main()
}
