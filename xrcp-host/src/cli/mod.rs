//! The `xrcp-host` command line: an interactive mode with the SimpleX host commands, a
//! scripting mode with one JSON object per line, and `inspect` for checking a link.

mod interactive;
mod script;
mod setup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// XRCP host: connect to a controller (a desktop) and let it drive this device's notes.
#[derive(Debug, Parser)]
#[command(name = "xrcp-host", version)]
struct Cli {
    /// Where pairings and notes are kept (default: $XDG_DATA_HOME/xrcp-host or
    /// ~/.local/share/xrcp-host).
    #[arg(long, global = true, env = "XRCP_HOST_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The name controllers see for this device.
    #[arg(long, global = true)]
    device_name: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to the controller of an `xrcp:/` link and serve it.
    Connect {
        /// The controller's `xrcp:/` link (quote it: it contains `&` and `#`).
        link: String,
        /// Print one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Accept the session code without comparing it (only for trusted setups).
        #[arg(long, conflicts_with = "verify")]
        yes: bool,
        /// The code shown by the controller; a different code ends the connection.
        #[arg(long, value_name = "CODE")]
        verify: Option<String>,
        /// Dial this address (e.g. an SSH tunnel) instead of the link's; every identity
        /// check of the link still applies.
        #[arg(long, value_name = "HOST:PORT")]
        connect_via: Option<SocketAddr>,
    },
    /// Find a paired controller announcing itself on the LAN, then connect.
    Find {
        /// Print one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Connect without comparing the session code (allowed for paired controllers).
        #[arg(long)]
        yes: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Verify a link and show what it contains.
    Inspect {
        /// The `xrcp:/` link.
        link: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List paired controllers.
    List {
        /// One JSON object per controller and line.
        #[arg(long)]
        json: bool,
    },
    /// Forget a paired controller.
    Delete { id: i64 },
}

/// Entry point of the binary.
pub(crate) fn main() -> ExitCode {
    // First of all: no core dump may carry this process's keys to disk.
    if let Err(e) = xrcp::hardening::disable_core_dumps() {
        eprintln!("warning: cannot turn off core dumps ({e}); a crash could write keys to disk");
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Scripts read stdout: in JSON mode a refused command line is an `error` event
            // there too (clap's usage text still goes to stderr, with its exit status).
            if e.use_stderr() && xrcp::console::json_requested() {
                script::emit(usage_error(&e));
            }
            e.exit();
        }
    };
    setup::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli));
    // A pending `tokio::io::stdin` read sits in a blocking thread that cannot be cancelled,
    // and dropping the runtime would wait for it: the program would only exit after one more
    // line (or EOF) on stdin. Give other blocking work a moment, then leave.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

/// The JSON `error` event for a command line clap refused (kind `BAD_OPTION`).
fn usage_error(e: &clap::Error) -> serde_json::Value {
    let (message, details) = xrcp::console::usage_error("xrcp-host", e);
    script::error_event("BAD_OPTION", &message, details)
}

async fn run(cli: Cli) -> ExitCode {
    if let Some(Command::Inspect { link, json }) = &cli.command {
        return script::inspect(link, *json);
    }
    let ctx = match setup::Context::open(cli.data_dir.clone(), cli.device_name.clone()) {
        Ok(c) => c,
        Err(e) => {
            let message = format!(
                "cannot open the data directory {e} — choose another with --data-dir (or \
                 XRCP_HOST_DATA_DIR), or fix its permissions"
            );
            if xrcp::console::json_requested() {
                script::emit(script::error_event("STORE", &message, Default::default()));
            } else {
                eprintln!("error: {message}");
            }
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        None => interactive::run(ctx).await,
        Some(Command::Connect {
            link,
            json,
            yes,
            verify,
            connect_via,
        }) => {
            let confirm = match (yes, verify) {
                (true, _) => script::Confirm::Yes,
                (false, Some(code)) => script::Confirm::Code(code),
                (false, None) => script::Confirm::Ask,
            };
            script::connect(ctx, &link, json, confirm, connect_via).await
        }
        Some(Command::Find { json, yes, timeout }) => {
            let confirm = if yes {
                script::Confirm::Yes
            } else {
                script::Confirm::Ask
            };
            script::find(ctx, json, confirm, std::time::Duration::from_secs(timeout)).await
        }
        Some(Command::Inspect { .. }) => unreachable!("handled above"),
        Some(Command::List { json }) => script::list(&ctx, json),
        Some(Command::Delete { id }) => script::delete(&ctx, id),
    }
}
