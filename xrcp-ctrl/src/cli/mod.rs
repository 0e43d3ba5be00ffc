//! The `xrcp-ctrl` command line: an interactive mode with the SimpleX controller commands,
//! and a scripting mode with one JSON object per line (README "Scripting").

mod interactive;
mod qr;
mod script;
mod setup;

use std::net::Ipv4Addr;

use xrcp::message::TransportHost;

use std::path::PathBuf;
use std::process::ExitCode;
use xrcp_ctrl::SshRelayOptions;

use clap::{Args, Parser, Subcommand};

/// XRCP controller: link a host (a phone, or a CLI on another machine) and drive it remotely.
#[derive(Debug, Parser)]
#[command(name = "xrcp-ctrl", version)]
struct Cli {
    /// Where pairings are kept (default: $XDG_DATA_HOME/xrcp-ctrl or ~/.local/share/xrcp-ctrl).
    #[arg(long, global = true, env = "XRCP_CTRL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The name hosts see for this controller.
    #[arg(long, global = true)]
    device_name: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Link a new host: show the invitation, wait for the host, then send stdin lines to it.
    Link(LinkArgs),
    /// Connect to a paired host again (by id, see `list`).
    Connect(ConnectArgs),
    /// List paired hosts.
    List {
        /// One JSON object per host and line.
        #[arg(long)]
        json: bool,
    },
    /// Forget a paired host.
    Delete { id: i64 },
}

#[derive(Debug, Args)]
struct Listen {
    /// The local address to put in the invitation (must be one of this machine's).
    #[arg(long)]
    addr: Option<Ipv4Addr>,
    /// Prefer the address of this interface.
    #[arg(long)]
    iface: Option<String>,
    /// TCP port to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The address (and port) the listener binds (default: the address put in the link;
    /// loopback with --advertise or --ssh-relay). 0.0.0.0 listens on every interface.
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = parse_bind)]
    bind: Option<(Ipv4Addr, Option<u16>)>,
    /// Put this host name or address (and port) into the link instead of one of this
    /// machine's addresses: a relay or port forward through which the host reaches this
    /// listener. The host still checks this controller's identity from the link.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_advertise)]
    advertise: Option<(TransportHost, Option<u16>)>,
    /// Reach this controller through an SSH server: runs `ssh -N -R` to it for the session
    /// and puts the server (or --advertise's host) and the opened port into the link. Needs
    /// key-based login and `GatewayPorts clientspecified` (or `yes`) on the server.
    #[arg(long, value_name = "[USER@]SERVER[:PORT]", value_parser = SshRelayOptions::parse)]
    ssh_relay: Option<SshRelayOptions>,
    /// The port to open on the SSH relay (default: one the server picks).
    #[arg(long, value_name = "PORT", default_value_t = 0, requires = "ssh_relay")]
    relay_port: u16,
    /// An extra ssh option for the relay tunnel, as ssh -o takes it (repeatable).
    #[arg(long = "ssh-option", value_name = "KEY=VALUE", requires = "ssh_relay")]
    ssh_options: Vec<String>,
    /// How long the link takes new connections, in seconds or as `<n>m` (a host that
    /// connected in time has as long again to confirm the session code).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT, value_parser = parse_seconds)]
    timeout: u64,
}

/// How long a link works by default: a person reads the link or scans the code, starts the
/// host, and compares a 76-digit code — minutes, not seconds.
pub(super) const DEFAULT_TIMEOUT: u64 = 600;

/// Seconds for `--timeout`/`timeout=`: `90`, `90s` or `10m`, from 1 s to a day.
pub(super) fn parse_seconds(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.strip_suffix('m') {
        Some(d) => (d, 60),
        None => (t.strip_suffix('s').unwrap_or(t), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|s| (1..=86_400).contains(s))
        .ok_or_else(|| {
            format!("'{text}' is not a time: give seconds (90) or minutes (10m), at most a day")
        })
}

/// `ADDR` or `ADDR:PORT` for `--bind`.
pub(super) fn parse_bind(text: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    let (addr, port) = split_port(text)?;
    let addr = addr
        .parse()
        .map_err(|_| format!("'{addr}' is not an IPv4 address"))?;
    Ok((addr, port))
}

/// `HOST` or `HOST:PORT` for `--advertise`.
pub(super) fn parse_advertise(text: &str) -> Result<(TransportHost, Option<u16>), String> {
    let (host, port) = split_port(text)?;
    let host = TransportHost::for_advertising(host).map_err(|e| match e {
        xrcp::RcError::Syntax(why) => format!("'{host}': {why}"),
        other => other.to_string(),
    })?;
    if port == Some(0) {
        return Err("the advertised port cannot be 0".into());
    }
    Ok((host, port))
}

fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    match text.rsplit_once(':') {
        None => Ok((text, None)),
        Some((host, port)) => {
            let port = port
                .parse()
                .map_err(|_| format!("'{port}' is not a port number (1 to 65535)"))?;
            Ok((host, Some(port)))
        }
    }
}

#[derive(Debug, Args)]
struct LinkArgs {
    #[command(flatten)]
    listen: Listen,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Do not print the QR code in the terminal.
    #[arg(long)]
    no_qr: bool,
    /// Also write the QR code as a PNG image.
    #[arg(long, value_name = "FILE")]
    qr_png: Option<PathBuf>,
    /// Also write the QR code as an SVG image.
    #[arg(long, value_name = "FILE")]
    qr_svg: Option<PathBuf>,
    /// Print the host's events (JSON mode: `{"event":"host_event",...}` lines).
    #[arg(long)]
    events: bool,
}

#[derive(Debug, Args)]
struct ConnectArgs {
    /// The host's id (see `list`).
    id: i64,
    #[command(flatten)]
    listen: Listen,
    /// Announce the session to the host by LAN multicast (no link needed).
    #[arg(long)]
    multicast: bool,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Do not print the QR code in the terminal.
    #[arg(long)]
    no_qr: bool,
    /// Also write the QR code as a PNG image.
    #[arg(long, value_name = "FILE")]
    qr_png: Option<PathBuf>,
    /// Also write the QR code as an SVG image.
    #[arg(long, value_name = "FILE")]
    qr_svg: Option<PathBuf>,
    /// Print the host's events (JSON mode: `{"event":"host_event",...}` lines).
    #[arg(long)]
    events: bool,
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
    let (message, details) = xrcp::console::usage_error("xrcp-ctrl", e);
    script::error_event("BAD_OPTION", &message, details)
}

async fn run(cli: Cli) -> ExitCode {
    let ctx = match setup::Context::open(cli.data_dir.clone(), cli.device_name.clone()) {
        Ok(c) => c,
        Err(e) => {
            let message = format!(
                "cannot open the data directory {e} — choose another with --data-dir (or \
                 XRCP_CTRL_DATA_DIR), or fix its permissions"
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
        Some(Command::Link(args)) => script::link(ctx, args).await,
        Some(Command::Connect(args)) => script::connect(ctx, args).await,
        Some(Command::List { json }) => script::list(&ctx, json),
        Some(Command::Delete { id }) => script::delete(&ctx, id),
    }
}
