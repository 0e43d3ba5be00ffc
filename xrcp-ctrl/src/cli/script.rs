//! Scripting mode (and the one-shot `link` / `connect` commands in text form).
//!
//! The JSON contract, one object per line on stdout:
//! - `{"event":"invitation","link":…,"address":…,"port":…}`
//! - `{"event":"session_code","code":…}`
//! - `{"event":"connected","host_id":…,"host_device_name":…,"compression":…}`
//! - `{"event":"response","command":…,"response":{"result":…}|{"error":…}}` for each stdin line
//! - `{"event":"file_stored","path":…}` / `{"event":"file_received","path":…}` for
//!   `/store remote file <path>` and `/get remote file <json>` lines
//! - `{"event":"host_event","data":{"result"|"error":…}}` with `--events`
//! - `{"event":"stopped","reason":"eof"|"disconnected"}`
//! - `{"event":"error","error":<KIND>,"message":…}` (then a non-zero exit)
//! - `{"event":"error","error":"SESSION","command":…,"message":…}` when one stdin line could
//!   not be carried out (a failed file transfer, a request that got no answer); the session
//!   goes on
//!
//! stdin EOF ends the session cleanly with exit status 0. `list --json` prints one
//! `{"host_id":…,"host_device_name":…}` per paired host (no `event` field).

use std::process::ExitCode;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use xrcp::session::{RRResult, RemoteFile};

use super::setup::{establish, Context, Progress, Target};
use super::{qr, ConnectArgs, LinkArgs, Listen};
use crate::error::RemoteHostError;
use crate::remote::RemoteHost;

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
        emit(json!({"event": "error", "error": e.kind(), "message": e.to_string()}));
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
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
            others,
            ..
        } => {
            if mode.json {
                emit(
                    json!({"event": "invitation", "link": link, "address": address.to_string(), "port": port}),
                );
            } else {
                println!("started on {address}:{port}");
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
        Progress::SessionCode(code) => {
            if mode.json {
                emit(json!({"event": "session_code", "code": code}));
            } else {
                println!("Compare session code with host:");
                println!("{code}");
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
    let (id, remote) = match establish(&ctx, target, listen, |p| report(&mode, p)).await {
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
    session_loop(id, remote, &mode).await
}

/// Sends each stdin line to the host until EOF or the host leaves.
async fn session_loop(id: i64, mut remote: RemoteHost, mode: &Mode) -> ExitCode {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let client = remote.client.clone();
    let mut events_open = true;
    let reason = loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    let line = line.trim_end().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    if let Err(e) = run_line(&remote, &line, mode).await {
                        if client.is_closed() {
                            break "disconnected";
                        }
                        report_error(mode, &line, &e);
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
                            println!("[remote: {id}] {}", rr_json(&r));
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
        }
    };
    // Say goodbye (GOAWAY, close_notify) before the process exits, so that the host can tell
    // a controller that stopped from a cut connection.
    drop(client);
    remote.close().await;
    stopped(mode, id, reason)
}

fn stopped(mode: &Mode, id: i64, reason: &str) -> ExitCode {
    if mode.json {
        emit(json!({"event": "stopped", "reason": reason}));
    } else {
        println!("remote host {id} stopped");
    }
    ExitCode::SUCCESS
}

fn report_error(mode: &Mode, line: &str, e: &str) {
    if mode.json {
        emit(json!({"event": "error", "error": "SESSION", "command": line, "message": e}));
    } else {
        eprintln!("error: {e}");
    }
}

/// One stdin line: a file transfer, or a command for the host.
async fn run_line(remote: &RemoteHost, line: &str, mode: &Mode) -> Result<(), String> {
    if let Some(rest) = line.strip_prefix("/store remote file ") {
        let path = rest.trim_start_matches("encrypt=off ").trim();
        let stored = remote
            .client
            .store_file_path(std::path::Path::new(path), &mut |_, _| {})
            .await
            .map_err(|e| format!("{e:?}"))?;
        if mode.json {
            emit(json!({"event": "file_stored", "path": stored}));
        } else {
            println!("file {stored} stored on remote host");
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
            .await
            .map_err(|e| format!("{e:?}"))?;
        if mode.json {
            emit(json!({"event": "file_received", "path": path.display().to_string()}));
        } else {
            println!("file received: {}", path.display());
        }
        return Ok(());
    }
    let r = remote
        .client
        .send_command(line, 0)
        .await
        .map_err(|e| format!("{e:?}"))?;
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
            println!("{}. {}", h.id, h.device_name);
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
