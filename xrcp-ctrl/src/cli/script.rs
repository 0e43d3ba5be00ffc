//! Scripting mode (and the one-shot `link` / `connect` commands in text form).
//!
//! The JSON contract, one object per line on stdout:
//! - `{"event":"invitation","link":…,"address":…,"port":…,"bound":…}`
//! - `{"event":"session_code","code":…,"peer":…}` for each connection past TLS, and
//!   `{"event":"session_code_withdrawn","peer":…,"reason":…}` when one fails before its HELLO
//! - `{"event":"session_contested","peer":…,"others":[…],"message":…}` when other connections
//!   were waiting with the same link as the host (someone else may have it)
//! - `{"event":"connected","host_id":…,"host_device_name":…,"compression":…}`
//! - `{"event":"response","command":…,"response":{"result":…}|{"error":…}}` for each stdin line
//! - `{"event":"file_stored","path":…}` / `{"event":"file_received","path":…}` for
//!   `/store remote file <path>` and `/get remote file <json>` lines
//! - `{"event":"host_event","data":{"result"|"error":…}}` with `--events`
//! - `{"event":"stopped","reason":"eof"|"disconnected"|"interrupted"}` (`interrupted`: Ctrl-C,
//!   exit status 130)
//! - `{"event":"error","error":<KIND>,"message":…}` (then a non-zero exit)
//! - `{"event":"error","error":"SESSION","command":…,"message":…}` when one stdin line could
//!   not be carried out (a failed file transfer, a request that got no answer); the session
//!   goes on; when the line was cut off by the end of the session (the host left or the
//!   connection was cut mid-transfer, or Ctrl-C), `stopped` follows and the exit status is
//!   non-zero
//!
//! stdin EOF ends the session cleanly with exit status 0. `list --json` prints one
//! `{"host_id":…,"host_device_name":…}` per paired host (no `event` field).

use std::process::ExitCode;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use xrcp::display::Escaped;
use xrcp::session::{RRResult, RemoteFile};

use super::setup::{
    contested_line, establish, relayed_lines, withdrawn_line, Context, Progress, Target,
};
use super::{qr, ConnectArgs, LinkArgs, Listen};
use crate::error::RemoteHostError;
use crate::remote::RemoteHost;
use crate::session::RemoteHostClient;

/// Prints one JSON line and flushes it.
pub(super) fn emit(v: Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn rr_json(r: &RRResult) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

fn fail(json: bool, e: &RemoteHostError) -> ExitCode {
    if json {
        emit(error_event(e.kind(), &e.to_string(), e.details()));
    } else {
        // The error may quote the host's text.
        eprintln!("error: {}", Escaped(e));
    }
    ExitCode::FAILURE
}

/// `{"event":"error","error":<kind>,"message":…}` with structured facts beside the kind
/// (`port`, `addr`, `response_type`, …); they never replace the contract's fields.
pub(super) fn error_event(
    kind: &str,
    message: &str,
    details: serde_json::Map<String, Value>,
) -> Value {
    let mut o = details;
    o.insert("event".into(), Value::from("error"));
    o.insert("error".into(), Value::from(kind));
    o.insert("message".into(), Value::from(message));
    Value::Object(o)
}

struct Mode {
    json: bool,
    no_qr: bool,
    events: bool,
    qr_png: Option<std::path::PathBuf>,
    qr_svg: Option<std::path::PathBuf>,
}

fn report(mode: &Mode, p: Progress) {
    match p {
        Progress::Started {
            link,
            address,
            port,
            bound,
            relayed,
            others,
        } => {
            if mode.json {
                emit(json!({
                    "event": "invitation",
                    "link": link,
                    "address": address.to_string(),
                    "port": port,
                    "bound": bound.to_string(),
                }));
            } else {
                println!("started on {address}:{port}");
                if relayed {
                    for line in relayed_lines(&address, port, bound) {
                        println!("{line}");
                    }
                }
                if !others.is_empty() {
                    let o: Vec<String> = others.iter().map(|a| a.to_string()).collect();
                    println!("other addresses: {}", o.join(" "));
                }
                println!("Remote session invitation:");
                println!("{link}");
                if !mode.no_qr {
                    match qr::terminal(&link) {
                        Ok(code) => println!("{code}"),
                        Err(e) => eprintln!("cannot render the QR code: {e}"),
                    }
                }
            }
            if let Some(p) = &mode.qr_png {
                if let Err(e) = qr::write_png(&link, p) {
                    eprintln!("error: {e}");
                }
            }
            if let Some(p) = &mode.qr_svg {
                if let Err(e) = qr::write_svg(&link, p) {
                    eprintln!("error: {e}");
                }
            }
        }
        Progress::Connecting(peer) => {
            if !mode.json {
                println!("host connecting from {peer}");
            }
        }
        Progress::SessionCode { peer, code } => {
            if mode.json {
                emit(json!({"event": "session_code", "code": code, "peer": peer.to_string()}));
            } else {
                println!("Compare session code with host:");
                println!("{code}");
            }
        }
        Progress::Contested { peer, others } => {
            if mode.json {
                let listed: Vec<String> = others.iter().map(|a| a.to_string()).collect();
                emit(json!({
                    "event": "session_contested",
                    "peer": peer.to_string(),
                    "others": listed,
                    "message": contested_line(peer, &others),
                }));
            } else {
                println!("{}", contested_line(peer, &others));
            }
        }
        Progress::Withdrawn { peer, reason } => {
            if mode.json {
                emit(json!({
                    "event": "session_code_withdrawn",
                    "peer": peer.to_string(),
                    "reason": reason.name(),
                }));
            } else {
                println!("{}", withdrawn_line(peer, reason));
            }
        }
    }
}

pub(super) async fn link(ctx: Context, args: LinkArgs) -> ExitCode {
    let mode = Mode {
        json: args.json,
        no_qr: args.no_qr || args.json,
        events: args.events,
        qr_png: args.qr_png,
        qr_svg: args.qr_svg,
    };
    drive(ctx, Target::New, &args.listen, mode).await
}

pub(super) async fn connect(ctx: Context, args: ConnectArgs) -> ExitCode {
    let mode = Mode {
        json: args.json,
        no_qr: args.no_qr || args.json,
        events: args.events,
        qr_png: None,
        qr_svg: None,
    };
    let target = Target::Known {
        id: args.id,
        multicast: args.multicast,
    };
    drive(ctx, target, &args.listen, mode).await
}

async fn drive(ctx: Context, target: Target, listen: &Listen, mode: Mode) -> ExitCode {
    let (id, remote, relay) = match establish(&ctx, target, listen, |p| report(&mode, p)).await {
        Ok(r) => r,
        Err(e) => return fail(mode.json, &e),
    };
    let compression = remote.compression;
    if mode.json {
        emit(json!({"event": "connected", "host_id": id,
                    "host_device_name": remote.host_info.device_name, "compression": compression}));
    } else {
        let how = if compression { "with" } else { "no" };
        println!("remote host {id} connected ({how} compression)");
    }
    let code = session_loop(id, remote, &mode).await;
    if let Some(relay) = relay {
        relay.stop().await;
    }
    code
}

/// Sends each stdin line to the host until EOF, the host leaves, or the user interrupts
/// (Ctrl-C). A line cut off by the end of the session (a file transfer, a command waiting for
/// its answer) is reported as an `error` event and makes the exit status non-zero: a script
/// must never take an interrupted `/store` or `/get` for a finished one.
async fn session_loop(id: i64, mut remote: RemoteHost, mode: &Mode) -> ExitCode {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let client = remote.client.clone();
    let mut events_open = true;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut code = ExitCode::SUCCESS;
    let reason = loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    let line = line.trim_end().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    let done = tokio::select! {
                        r = run_line(&remote, &line, mode) => Some(r),
                        _ = &mut interrupt => None,
                    };
                    match done {
                        Some(Ok(())) => {}
                        Some(Err(e)) if ended_with(&client).await => {
                            report_error(mode, &line, &format!(
                                "{}: the connection to the host ended ({e})",
                                cut_off(&line)
                            ), e.details);
                            code = ExitCode::FAILURE;
                            break "disconnected";
                        }
                        Some(Err(e)) => report_error(mode, &line, &e.message, e.details),
                        None => {
                            // Dropping the line's future stopped it: a download's `.part`
                            // file is removed, and the host discards a partial upload when
                            // the session closes below.
                            report_error(mode, &line, &format!(
                                "{}: interrupted by the user", cut_off(&line)
                            ), Default::default());
                            code = ExitCode::from(INTERRUPTED);
                            break "interrupted";
                        }
                    }
                }
                Ok(None) | Err(_) => break "eof",
            },
            ev = remote.events.recv(), if events_open => match ev {
                Some(Ok(r)) => {
                    if mode.events {
                        if mode.json {
                            emit(json!({"event": "host_event", "data": rr_json(&r)}));
                        } else {
                            println!("[remote: {id}] {}", Escaped(rr_json(&r)));
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!("event poll ended: {e:?}");
                    events_open = false;
                }
                None => events_open = false,
            },
            _ = client.closed() => break "disconnected",
            _ = &mut interrupt => {
                code = ExitCode::from(INTERRUPTED);
                break "interrupted";
            }
        }
    };
    // Say goodbye (GOAWAY, close_notify) before the process exits, so that the host can tell
    // a controller that stopped from a cut connection.
    drop(client);
    remote.close().await;
    stopped(mode, id, reason);
    code
}

/// The exit status after Ctrl-C (128 + SIGINT, what a shell reports for a program it killed).
const INTERRUPTED: u8 = 130;

/// How long a failed line waits to learn whether the connection ended with it: the request
/// and the connection task see a cut at the same moment, but in either order.
const CUT_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// Whether the session's connection has ended (or ends within [`CUT_GRACE`]): called after a
/// line failed, to tell a cut-off transfer from a refusal by the host.
pub(super) async fn ended_with(client: &RemoteHostClient) -> bool {
    client.is_closed()
        || tokio::time::timeout(CUT_GRACE, client.closed())
            .await
            .is_ok()
}

/// What was cut off, for the error message of a stdin line that could not finish.
fn cut_off(line: &str) -> &'static str {
    if line.starts_with("/store remote file ") {
        "the upload did not finish and the host did not keep the file"
    } else if line.starts_with("/get remote file ") {
        "the download did not finish and nothing was saved"
    } else {
        "the command got no answer (the host may or may not have run it)"
    }
}

fn stopped(mode: &Mode, id: i64, reason: &str) {
    if mode.json {
        emit(json!({"event": "stopped", "reason": reason}));
    } else {
        println!("remote host {id} stopped");
    }
}

/// Why one stdin line could not be carried out: a message for people and, for JSON mode,
/// structured facts (e.g. `response_type` when the host's answer did not fit the command).
struct LineError {
    message: String,
    details: serde_json::Map<String, Value>,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for LineError {
    fn from(message: String) -> Self {
        LineError {
            message,
            details: Default::default(),
        }
    }
}

impl From<xrcp::session::RemoteProtocolError> for LineError {
    fn from(e: xrcp::session::RemoteProtocolError) -> Self {
        let details = match crate::error::session_details(&e) {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        LineError {
            message: e.to_string(),
            details,
        }
    }
}

fn report_error(mode: &Mode, line: &str, e: &str, details: serde_json::Map<String, Value>) {
    if mode.json {
        let mut event = error_event("SESSION", e, details);
        event["command"] = Value::from(line);
        emit(event);
    } else {
        eprintln!("error: {}", Escaped(e));
    }
}

/// One stdin line: a file transfer, or a command for the host.
async fn run_line(remote: &RemoteHost, line: &str, mode: &Mode) -> Result<(), LineError> {
    if let Some(rest) = line.strip_prefix("/store remote file ") {
        let path = rest.trim_start_matches("encrypt=off ").trim();
        let stored = remote
            .client
            .store_file_path(std::path::Path::new(path), &mut |_, _| {})
            .await?;
        if mode.json {
            emit(json!({"event": "file_stored", "path": stored}));
        } else {
            println!("file {} stored on remote host", Escaped(&stored));
        }
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix("/get remote file ") {
        let file: RemoteFile =
            serde_json::from_str(rest.trim()).map_err(|e| format!("bad file JSON: {e}"))?;
        let dir = std::env::current_dir().map_err(|e| e.to_string())?;
        let path = remote
            .client
            .get_file_to_dir(&file, &dir, &mut |_, _| {})
            .await?;
        if mode.json {
            emit(json!({"event": "file_received", "path": path.display().to_string()}));
        } else {
            println!("file received: {}", Escaped(path.display()));
        }
        return Ok(());
    }
    let r = remote.client.send_command(line, 0).await?;
    if mode.json {
        emit(json!({"event": "response", "command": line, "response": rr_json(&r)}));
    } else {
        println!("{}", super::interactive::render(&r));
    }
    Ok(())
}

pub(super) fn list(ctx: &Context, json: bool) -> ExitCode {
    let hosts = match ctx.store().list() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        for h in hosts {
            emit(json!({"host_id": h.id, "host_device_name": h.device_name}));
        }
    } else if hosts.is_empty() {
        println!("No remote hosts");
    } else {
        println!("Remote hosts: ");
        for h in hosts {
            println!("{}. {}", h.id, Escaped(&h.device_name));
        }
    }
    ExitCode::SUCCESS
}

pub(super) fn delete(ctx: &Context, id: i64) -> ExitCode {
    match ctx.store().delete(id) {
        Ok(true) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("no remote host {id}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
