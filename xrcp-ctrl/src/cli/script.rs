//! Scripting mode (and the one-shot `link` / `connect` commands in text form).
//!
//! The JSON contract, one object per line on stdout:
//! - `{"event":"invitation","link":…,"address":…,"port":…,"bound":…,"expires_in":…,
//!   "expires_at":…}` (the link takes new connections for `expires_in` seconds, until the
//!   Unix time `expires_at`)
//! - `{"event":"session_code","code":…,"peer":…}` for each connection past TLS, and
//!   `{"event":"session_code_withdrawn","peer":…,"reason":…}` when one fails before its HELLO
//! - `{"event":"session_contested","peer":…,"others":[…],"message":…}` when other connections
//!   were waiting with the same link as the host (someone else may have it)
//! - `{"event":"connected","host_id":…,"host_device_name":…,"compression":…}`
//! - `{"event":"response","command":…,"response":{"result":…}|{"error":…}}` for each stdin line
//! - `{"event":"file_stored","path":…}` / `{"event":"file_received","path":…}` for
//!   `/store remote file <path>` and `/get remote file <json>|<fileId>` lines (`path`: where
//!   the file went; an existing file is never replaced, a taken name gets ` (1)` …)
//! - `{"event":"host_event","data":{"result"|"error":…}}` with `--events`
//! - `{"event":"stopped","reason":"eof"|"quit"|"disconnected"|"interrupted"}` (`quit`: a
//!   stdin line `/quit`; `interrupted`: Ctrl-C, exit status 130)
//! - `{"event":"error","error":<KIND>,"message":…}` (then a non-zero exit)
//! - `{"event":"error","error":"SESSION","command":…,"message":…}` when one stdin line could
//!   not be carried out (a failed file transfer, a request that got no answer); the session
//!   goes on; when the line was cut off by the end of the session (the host left or the
//!   connection was cut mid-transfer, or Ctrl-C), `stopped` follows and the exit status is
//!   non-zero
//!
//! stdin EOF or a `/quit` line ends the session cleanly with exit status 0. `list --json` prints one
//! `{"host_id":…,"host_device_name":…}` per paired host (no `event` field).

use std::process::ExitCode;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use xrcp::display::Escaped;
use xrcp::session::{RRResult, RemoteFile};

use super::setup::{
    contested_line, establish, started_lines, waiting_line, withdrawn_line, Context, Progress,
    QrChoice, Target,
};
use super::{qr, ConnectArgs, LinkArgs, Listen};
use xrcp_ctrl::RemoteHostClient;
use xrcp_ctrl::RemoteHostError;
use xrcp_ctrl::Session;

/// Prints one JSON line and flushes it.
pub(super) fn emit(v: Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = emit_to(&mut out, &v);
    let _ = out.flush();
}

/// One event as one line (what [`emit`] writes), into any writer.
fn emit_to(out: &mut impl std::io::Write, v: &Value) -> std::io::Result<()> {
    writeln!(out, "{v}")
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
        Progress::Started(started) => {
            if mode.json {
                let expires_at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    + started.lifetime;
                emit(json!({
                    "event": "invitation",
                    "link": started.link,
                    "address": started.address.to_string(),
                    "port": started.port,
                    "bound": started.bound.to_string(),
                    "expires_in": started.lifetime.as_secs(),
                    "expires_at": expires_at.as_secs(),
                }));
                for (path, write) in [
                    (
                        &mode.qr_png,
                        qr::write_png as fn(&str, &std::path::Path) -> _,
                    ),
                    (&mode.qr_svg, qr::write_svg),
                ] {
                    if let Some(p) = path {
                        if let Err(e) = write(&started.link, p) {
                            eprintln!("error: {e}");
                        }
                    }
                }
            } else {
                let choice = QrChoice {
                    terminal: !mode.no_qr,
                    png: mode.qr_png.clone(),
                    svg: mode.qr_svg.clone(),
                    files_hint: "--qr-png FILE or --qr-svg FILE",
                };
                let first = format!("started on {}:{}", started.address, started.port);
                for line in started_lines(first, &started, &choice) {
                    println!("{line}");
                }
            }
        }
        Progress::TimeLeft(left) => {
            if !mode.json {
                println!("{}", waiting_line(left));
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
        qr_png: args.qr_png,
        qr_svg: args.qr_svg,
    };
    let target = Target::Known {
        id: args.id,
        multicast: args.multicast,
    };
    drive(ctx, target, &args.listen, mode).await
}

async fn drive(ctx: Context, target: Target, listen: &Listen, mode: Mode) -> ExitCode {
    let (id, session) = match establish(&ctx, target, listen, |p| report(&mode, p)).await {
        Ok(r) => r,
        Err(e) => return fail(mode.json, &e),
    };
    let compression = session.compression();
    if mode.json {
        emit(json!({"event": "connected", "host_id": id,
                    "host_device_name": session.host_info().device_name, "compression": compression}));
    } else {
        let how = if compression { "with" } else { "no" };
        println!("remote host {id} connected ({how} compression)");
    }
    // Closing the session also stops the SSH tunnel it ran through.
    session_loop(id, session, &mode).await
}

/// Sends each stdin line to the host until EOF or `/quit`, the host leaves, or the user interrupts
/// (Ctrl-C). A line cut off by the end of the session (a file transfer, a command waiting for
/// its answer) is reported as an `error` event and makes the exit status non-zero: a script
/// must never take an interrupted `/store` or `/get` for a finished one.
async fn session_loop(id: i64, mut session: Session, mode: &Mode) -> ExitCode {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let client = session.client().clone();
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
                    // Ends the session here, as in the interactive mode; the host has no
                    // use for it (it would answer "unknown command").
                    if matches!(line.trim(), "/quit" | "/q") {
                        break "quit";
                    }
                    let done = tokio::select! {
                        r = run_line(&session, &line, mode) => Some(r),
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
            ev = session.next_event(), if events_open => match ev {
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
    session.close().await;
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

/// The facade's requests fail with the session layer's errors only; anything else is said
/// as it is.
impl From<RemoteHostError> for LineError {
    fn from(e: RemoteHostError) -> Self {
        match e {
            RemoteHostError::Session(e) => e.into(),
            other => other.to_string().into(),
        }
    }
}

impl From<xrcp::session::RemoteProtocolError> for LineError {
    fn from(e: xrcp::session::RemoteProtocolError) -> Self {
        let message = e.to_string();
        let details = xrcp_ctrl::RemoteHostError::from(e).details();
        LineError { message, details }
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
async fn run_line(session: &Session, line: &str, mode: &Mode) -> Result<(), LineError> {
    if let Some(rest) = line.strip_prefix("/store remote file ") {
        let path = rest.trim_start_matches("encrypt=off ").trim();
        let stored = session.send_file(std::path::Path::new(path)).await?;
        if mode.json {
            emit(json!({"event": "file_stored", "path": stored}));
        } else {
            println!("file {} stored on remote host", Escaped(&stored));
        }
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix("/get remote file ") {
        let file = remote_file(session.client(), rest).await?;
        let dir = std::env::current_dir().map_err(|e| e.to_string())?;
        let path = session.get_file(&file, &dir).await?;
        if mode.json {
            emit(json!({"event": "file_received", "path": path.display().to_string()}));
        } else {
            println!("{}", received_line(&file, &path));
        }
        return Ok(());
    }
    let r = session.command(line).await?;
    if mode.json {
        emit(json!({"event": "response", "command": line, "response": rr_json(&r)}));
    } else {
        println!("{}", super::interactive::render(&r));
    }
    Ok(())
}

/// The user whose files a host's `/files` lists: the built-in notes application has one
/// user, id 1 (a SimpleX host has no `/files`, and its files are given as JSON).
const LISTED_FILES_USER: i64 = 1;

/// The file a `/get remote file` argument names: the host's `RemoteFile` JSON as it prints
/// it, or the `fileId` its `/files` lists (looked up there for the file's name, which the
/// host checks against the id).
pub(super) async fn remote_file(
    client: &RemoteHostClient,
    arg: &str,
) -> Result<RemoteFile, String> {
    let arg = arg.trim();
    if arg.starts_with('{') {
        return serde_json::from_str(arg).map_err(|e| {
            format!(
                "this is not a file's JSON ({e}): copy it whole, or give the file's id from /files"
            )
        });
    }
    let id: i64 = arg.parse().map_err(|_| {
        format!("'{arg}' is not a file id: give the number /files shows, or the file's JSON")
    })?;
    let listed = client
        .send_command("/files", 0)
        .await
        .map_err(|e| format!("cannot list the host's files to find file {id}: {e}"))?;
    let files = match &listed {
        RRResult::Result(v) if v["type"] == "files" => v["files"].as_array(),
        _ => None,
    }
    .ok_or_else(|| {
        "the host does not list its files by id (/files): give the file's JSON instead".to_owned()
    })?;
    let name = files
        .iter()
        .find(|f| f["fileId"].as_i64() == Some(id))
        .and_then(|f| f["fileName"].as_str())
        .ok_or_else(|| format!("the host has no file {id}: /files lists the ids"))?;
    Ok(RemoteFile {
        user_id: LISTED_FILES_USER,
        file_id: id,
        sent: false,
        file_source: xrcp::session::CryptoFile {
            file_path: name.to_owned(),
            crypto_args: None,
        },
    })
}

/// The line saying where a download went, and under which name when the file's own name
/// was taken in that folder.
pub(super) fn received_line(file: &RemoteFile, path: &std::path::Path) -> String {
    let wanted = std::path::Path::new(&file.file_source.file_path).file_name();
    if path.file_name() == wanted || wanted.is_none() {
        format!("file received: {}", Escaped(path.display()))
    } else {
        format!(
            "file received: {} ({} already exists here; nothing was replaced)",
            Escaped(path.display()),
            Escaped(wanted.unwrap_or_default().to_string_lossy())
        )
    }
}

pub(super) fn list(ctx: &Context, json: bool) -> ExitCode {
    let hosts = match ctx.store().summaries() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One buffered write for the whole list (stdout flushes every line otherwise: 10,000
    // pairings were 10,000 writes).
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if json {
        hosts.iter().try_for_each(|h| {
            emit_to(
                &mut out,
                &json!({"host_id": h.id, "host_device_name": h.device_name}),
            )
        })
    } else if hosts.is_empty() {
        writeln!(out, "No remote hosts")
    } else {
        writeln!(out, "Remote hosts: ").and_then(|()| {
            hosts
                .iter()
                .try_for_each(|h| writeln!(out, "{}. {}", h.id, Escaped(&h.device_name)))
        })
    };
    match written.and_then(|()| out.flush()) {
        // A reader that went away (`| head`) is not an error of ours.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            drop(out);
            eprintln!("error: writing the list failed: {e} — check where the output goes (a full disk?) and run it again");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
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
