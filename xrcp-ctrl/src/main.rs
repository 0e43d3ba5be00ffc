//! `xrcp-ctrl`: the controller (desktop) program. See `xrcp-ctrl --help` and the README.

fn main() -> std::process::ExitCode {
    xrcp_ctrl::cli::main()
}
