//! Scripting mode and the one-shot commands.
//!
//! The JSON contract of `connect` and `find`, one object per line on stdout:
//! - `{"event":"found","controller_id":…,"controller_device_name":…,"app_version":…}` (`find`)
//! - `{"event":"session_code","code":…,"peer":…}` (`peer`: the address dialed)
//! - `{"event":"connected","controller_id":…,"controller_device_name":…,"compression":…}`
//! - `{"event":"command","command":…}` for each command the controller sends
//! - `{"event":"stopped","reason":"disconnected"|"stopped"}`
//! - `{"event":"error","error":<KIND>,"message":…}` (then a non-zero exit)
//!
//! Without `--yes` or `--verify`, the first stdin line is taken as the code the user read on
//! the controller. After connecting, a stdin line `/stop remote ctrl` ends the session.
//!
//! `inspect --json` prints `{"event":"invitation","invitation":{…}}` or the `error` event;
//! `list --json` prints one `{"controller_id":…,"controller_device_name":…}` per paired
//! controller (no `event` field).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use xrcp::crypto::KeyHash;
use xrcp::display::Escaped;
use xrcp::message::SignedInvitation;
use xrcp::session::CtrlAppInfo;
use xrcp::tls::fingerprint;

use super::setup::{address_warning, serve, Context};
use xrcp_host::{CodeCheck, Host, PendingSession, RemoteCtrlError, Session};

/// How the session code is confirmed.
pub(crate) enum Confirm {
    Yes,
    Code(String),
    Ask,
}

pub(crate) fn emit(v: Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = emit_to(&mut out, &v);
    let _ = out.flush();
}

/// One event as one line (what [`emit`] writes), into any writer.
fn emit_to(out: &mut impl std::io::Write, v: &Value) -> std::io::Result<()> {
    writeln!(out, "{v}")
}

/// `{"event":"error","error":<kind>,"message":…}` with structured facts beside the kind;
/// they never replace the contract's fields.
pub(crate) fn error_event(
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

fn fail(json: bool, e: &RemoteCtrlError) -> ExitCode {
    if json {
        emit(error_event(e.kind(), &e.to_string(), e.details()));
    } else {
        // The error may quote the controller's text.
        eprintln!("error: {}", Escaped(e));
    }
    ExitCode::FAILURE
}

pub(crate) fn inspect(link: &str, json: bool) -> ExitCode {
    let inv = match SignedInvitation::parse_verified(link.trim()) {
        Ok(i) => i,
        Err(e) => return fail(json, &RemoteCtrlError::Protocol(e)),
    };
    let i = &inv.invitation;
    let app = CtrlAppInfo::from_json(&i.app).ok();
    let key_fp = |raw: &[u8]| KeyHash(fingerprint(raw)).to_text();
    let v = json!({
        "controller_device_name": app.as_ref().map(|a| a.device_name.clone()),
        "app_version_range": app.as_ref().map(|a| json!({
            "min": a.app_version_range.min_version().to_string(),
            "max": a.app_version_range.max_version().to_string()})),
        "address": i.host.to_string(),
        "port": i.port,
        "protocol_versions": i.version.to_string(),
        "ca_fingerprint": i.ca.to_text(),
        "timestamp": i.ts,
        "date": utc_date(i.ts, "T", "Z"),
        "session_key_fingerprint": key_fp(i.skey.as_raw()),
        "identity_key_fingerprint": key_fp(i.idkey.as_raw()),
        "dh_key_fingerprint": key_fp(i.dh.as_raw()),
        "app": i.app,
    });
    if json {
        emit(json!({"event": "invitation", "invitation": v}));
    } else {
        println!("valid invitation, signatures verified");
        for (k, val) in v.as_object().into_iter().flatten() {
            if k == "timestamp" {
                // When the link was made, as a person reads it (and how long ago).
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                println!(
                    "{k}: {} ({})",
                    utc_date(i.ts, " ", " UTC"),
                    age(now.saturating_sub(i.ts))
                );
            } else if k != "app" && k != "date" {
                // The link's contents: anyone could have made it.
                println!(
                    "{k}: {}",
                    Escaped(val.as_str().map(str::to_owned).unwrap_or(val.to_string()))
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// `ts` (seconds since 1970, UTC) as `YYYY-MM-DD<sep>hh:mm:ss<suffix>` (ISO 8601 with
/// `"T"`/`"Z"`), by the proleptic Gregorian calendar; out-of-range values are clamped to
/// years 0 to 9999 (a link may carry any number).
pub(crate) fn utc_date(ts: i64, sep: &str, suffix: &str) -> String {
    // 0000-01-01 to 9999-12-31 23:59:59.
    let ts = ts.clamp(-62_167_219_200, 253_402_300_799);
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (the "days from civil" inverse, with eras of
    // 400 years so that the arithmetic stays exact).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}{sep}{:02}:{:02}:{:02}{suffix}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// How long ago, in the largest whole unit: `just now`, `5 minutes ago`, `in 2 hours` (a
/// clock ahead of this one).
pub(crate) fn age(secs: i64) -> String {
    let (n, ago) = (secs.unsigned_abs(), secs >= 0);
    let (count, unit) = match n {
        0..60 => return "just now".into(),
        60..3600 => (n / 60, "minute"),
        3600..86_400 => (n / 3600, "hour"),
        _ => (n / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if ago {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

/// The host of `connect` and `find`: each command the controller sends is reported.
fn host(ctx: &Context, json: bool) -> Host {
    ctx.host(move |c: &str| {
        if json {
            emit(json!({"event": "command", "command": c}));
        } else {
            println!("> {}", Escaped(c));
        }
    })
}

/// Session code, confirmation and serving, common to `connect` and `find`.
async fn finish(ctx: Context, pending: PendingSession, json: bool, confirm: Confirm) -> ExitCode {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let code = pending.session_code().to_owned();
    let peer = pending.peer();
    if json {
        emit(json!({"event": "session_code", "code": code, "peer": peer.to_string()}));
    } else {
        let host = &pending.invitation().invitation.host;
        if host.ipv4().is_none() {
            println!("connected to {host} at {peer}");
        }
        println!("Compare session code with controller:");
        println!("{code}");
        println!(
            "(the code on the controller's screen must be the same; never type it anywhere else)"
        );
    }
    let session = match confirm {
        Confirm::Yes => pending.confirm().await,
        Confirm::Code(c) => pending.verify(&c).await,
        Confirm::Ask => ask_code(pending, &mut lines, json).await,
    };
    let session = match session {
        Ok(s) => s,
        // The session layer could not start after the HELLO: as a session cut short.
        Err(RemoteCtrlError::Session(e)) => {
            tracing::debug!("session ended: {e:?}");
            return stopped(json, "disconnected");
        }
        Err(e) => return fail(json, &e),
    };
    let served = serve(&ctx, session, |id, name, compression| {
        if json {
            emit(json!({"event": "connected", "controller_id": id,
                            "controller_device_name": name, "compression": compression}));
        } else {
            let how = if compression { "with" } else { "no" };
            println!(
                "remote controller {id} session started with {} ({how} compression)",
                Escaped(name)
            );
        }
    });
    let stop = async {
        loop {
            match lines.next_line().await {
                Ok(Some(l)) if l.trim() == "/stop remote ctrl" => return,
                Ok(Some(_)) => continue,
                // Without stdin the session runs until the controller leaves.
                _ => std::future::pending::<()>().await,
            }
        }
    };
    let reason = tokio::select! {
        r = served => match r {
            Ok(()) => "disconnected",
            Err(RemoteCtrlError::Session(e)) => {
                tracing::debug!("session ended: {e:?}");
                "disconnected"
            }
            Err(e) => return fail(json, &e),
        },
        () = stop => "stopped",
    };
    stopped(json, reason)
}

fn stopped(json: bool, reason: &str) -> ExitCode {
    if json {
        emit(json!({"event": "stopped", "reason": reason}));
    } else {
        println!("remote controller stopped");
    }
    ExitCode::SUCCESS
}

/// Reads the code the user saw on the controller from stdin, while watching for the
/// controller to stop waiting. In text mode an empty or wrong line asks again (a limited number
/// of times); in JSON mode the first line is the answer, as the scripting contract says.
async fn ask_code(
    mut pending: PendingSession,
    lines: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>,
    json: bool,
) -> Result<Session, RemoteCtrlError> {
    if !json {
        println!("Type the code shown on the controller:");
    }
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.ok().flatten(),
            gone = pending.controller_left() => return Err(gone),
        };
        let Some(line) = line else {
            pending.reject().await;
            return Err(RemoteCtrlError::BadVerificationCode);
        };
        if json {
            return pending.verify(&line).await;
        }
        match pending.check_code(&line) {
            CodeCheck::Matches => return pending.confirm().await,
            CodeCheck::NoTriesLeft => {
                pending.reject().await;
                return Err(RemoteCtrlError::BadVerificationCode);
            }
            CodeCheck::Empty => println!("Type the code shown on the controller:"),
            CodeCheck::Mismatch { tries_left } => {
                let tries = if tries_left == 1 { "try" } else { "tries" };
                println!(
                    "That code does not match this connection's: compare it with the controller's \
                     screen and type it again ({tries_left} {tries} left):"
                );
            }
        }
    }
}

pub(crate) async fn connect(
    ctx: Context,
    link: &str,
    json: bool,
    confirm: Confirm,
    via: Option<SocketAddr>,
) -> ExitCode {
    let inv = match SignedInvitation::parse_verified(link.trim()) {
        Ok(i) => i,
        Err(e) => return fail(json, &RemoteCtrlError::Protocol(e)),
    };
    if let Some(w) = address_warning(&inv, via) {
        eprintln!("{w}");
    }
    let pending = match host(&ctx, json).connect_invitation_via(inv, via).await {
        Ok(p) => p,
        Err(e) => return fail(json, &e),
    };
    finish(ctx, pending, json, confirm).await
}

pub(crate) async fn find(
    ctx: Context,
    json: bool,
    confirm: Confirm,
    timeout: Duration,
) -> ExitCode {
    // The summaries only (no key decoded): `listen` reads the pairings themselves.
    let none_paired = match ctx.store().summaries() {
        Ok(k) => k.is_empty(),
        Err(e) => return fail(json, &RemoteCtrlError::Store(e.into())),
    };
    if none_paired {
        let message = "no paired controllers to look for — connect with a link first \
                       (xrcp-host connect '<link>')";
        if json {
            emit(error_event(
                "NO_PAIRED_CONTROLLERS",
                message,
                Default::default(),
            ));
        } else {
            eprintln!("error: {message}");
        }
        return ExitCode::FAILURE;
    }
    let listening = match host(&ctx, json).listen(Some(timeout)) {
        Ok(l) => l,
        Err(e) => return fail(json, &e),
    };
    if !json {
        println!(
            "listening for paired controllers on {}:{} ({}) for {} s",
            listening.group().ip(),
            listening.group().port(),
            super::interactive::listening_on(listening.interface_address()),
            timeout.as_secs()
        );
    }
    let found = match listening.found().await {
        Ok(f) => f,
        Err(e) => return fail(json, &e),
    };
    let (name, version) = super::setup::ctrl_summary(found.invitation());
    if json {
        emit(
            json!({"event": "found", "controller_id": found.controller_id(),
                    "controller_device_name": name, "app_version": version}),
        );
    } else {
        println!(
            "remote controller {} found: {}, v{}",
            found.controller_id(),
            Escaped(&name),
            Escaped(&version)
        );
    }
    let pending = match found.connect().await {
        Ok(p) => p,
        Err(e) => return fail(json, &e),
    };
    finish(ctx, pending, json, confirm).await
}

pub(crate) fn list(ctx: &Context, json: bool) -> ExitCode {
    let ctrls = match ctx.store().summaries() {
        Ok(c) => c,
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
        ctrls.iter().try_for_each(|c| {
            emit_to(
                &mut out,
                &json!({"controller_id": c.id, "controller_device_name": c.device_name}),
            )
        })
    } else if ctrls.is_empty() {
        writeln!(out, "No remote controllers")
    } else {
        writeln!(out, "Remote controllers: ").and_then(|()| {
            ctrls
                .iter()
                .try_for_each(|c| writeln!(out, "{}. {}", c.id, Escaped(&c.device_name)))
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

pub(crate) fn delete(ctx: &Context, id: i64) -> ExitCode {
    match ctx.store().delete(id) {
        Ok(true) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("no remote controller {id}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ages() {
        assert_eq!(utc_date(0, "T", "Z"), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc_date(1_700_000_000, " ", " UTC"),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(utc_date(951_825_600, "T", "Z"), "2000-02-29T12:00:00Z");
        assert_eq!(utc_date(-1, "T", "Z"), "1969-12-31T23:59:59Z");
        assert_eq!(utc_date(i64::MAX, "T", "Z"), "9999-12-31T23:59:59Z");
        assert_eq!(utc_date(i64::MIN, "T", "Z"), "0000-01-01T00:00:00Z");
        assert_eq!(age(5), "just now");
        assert_eq!(age(60), "1 minute ago");
        assert_eq!(age(7_300), "2 hours ago");
        assert_eq!(age(-90_000), "in 1 day");
    }
}
