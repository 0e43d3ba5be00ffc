//! Scenarios against an IUT **controller**: the runner is the host. It runs
//! `CTRL --data-dir D link --json --addr 127.0.0.1` (or `connect ID`), reads the link from the
//! `invitation` event, and connects as a host built from the library's pieces: honest
//! (serving the notes app over HTTP/2) or broken at one precise point.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use xrcp::codec::Version;
use xrcp::crypto::{KemKeyPair, Nonce, X25519SecretKey};
use xrcp::handshake::io::read_block;
use xrcp::handshake::HostHandshake;
use xrcp::message::{decode_block, encode_block, HostEncHello, HostHello, SignedInvitation};
use xrcp::pairing::CtrlPairing;
use xrcp::tls::{self, TlsError};

use super::host::race;
use super::iut::{error_of, kind_of, Iut};
use super::peer::{
    host_app, host_dial, host_hello, peek, serve_notes, within, HostDial, LOCALHOST,
    RUNNER_HOST_NAME,
};
use super::{bail, scenario, Cx, Note, Res, Role, Scenario, ScenarioFuture};

pub(crate) fn scenarios() -> Vec<Scenario> {
    fn s(name: &'static str, secs: u64, run: fn(Cx) -> ScenarioFuture) -> Scenario {
        scenario(name, Role::Ctrl, secs, run)
    }
    vec![
        s("ctrl-honest-pairing", 30, |cx| Box::pin(honest_pairing(cx))),
        s("ctrl-honest-reconnect", 40, |cx| {
            Box::pin(honest_reconnect(cx))
        }),
        s("ctrl-exit-after-disconnect", 30, |cx| {
            Box::pin(exit_after_disconnect(cx))
        }),
        s("ctrl-known-pairing-unknown-ca", 40, |cx| {
            Box::pin(unknown_ca(cx))
        }),
        s("ctrl-hello-oversize-block", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::Oversize))
        }),
        s("ctrl-hello-short-block", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::Short))
        }),
        s("ctrl-hello-bad-padding", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::BadPadding))
        }),
        s("ctrl-hello-ca-mismatch", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::CaMismatch))
        }),
        s("ctrl-hello-bad-box", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::BadBox))
        }),
        s("ctrl-hello-version", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::Version))
        }),
        s("ctrl-hello-stop-mid-block", 20, |cx| {
            Box::pin(raw_hello(cx, Raw::StopMidBlock))
        }),
        s("ctrl-garbage-after-hello", 30, |cx| {
            Box::pin(garbage_after_hello(cx))
        }),
        s("ctrl-slow-hello", 60, |cx| Box::pin(slow_hello(cx))),
    ]
}

fn path_arg(p: &Path) -> Res<&str> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()).into())
}

/// A started IUT controller and its verified invitation.
struct CtrlRun {
    iut: Iut,
    inv: SignedInvitation,
}

/// `CTRL --data-dir DATA <command...> --json --addr 127.0.0.1`, up to its `invitation`.
async fn start(cx: &Cx, data: &Path, command: &[&str]) -> Res<CtrlRun> {
    let mut args = vec!["--data-dir", path_arg(data)?];
    args.extend_from_slice(command);
    args.extend_from_slice(&["--json", "--addr", "127.0.0.1"]);
    let mut iut = Iut::spawn(cx.ctrl_cmd()?, &args)?;
    let ev = iut.expect("invitation", cx.within(15)).await?;
    let link = ev["link"]
        .as_str()
        .ok_or_else(|| format!("`invitation` without a link: {ev}"))?;
    let inv = SignedInvitation::parse_verified(link)
        .map_err(|e| format!("the IUT's link does not verify ({e}): {link}"))?;
    if inv.invitation.host.ipv4() != Some(LOCALHOST) || ev["address"] != "127.0.0.1" {
        bail!("the IUT advertises {ev} (asked for --addr 127.0.0.1)");
    }
    if ev["port"] != inv.invitation.port {
        bail!(
            "`invitation` port {} differs from the link's {}",
            ev["port"],
            inv.invitation.port
        );
    }
    Ok(CtrlRun { iut, inv })
}

/// An honest session with the IUT controller, up to its `connected`.
struct CtrlSession {
    iut: Iut,
    pairing: CtrlPairing,
    host_id: Value,
    serving: JoinHandle<()>,
}

/// Connects as an honest host (with the stored `pairing` for a known controller) and
/// serves the notes app from `notes`.
async fn open(
    cx: &Cx,
    run: CtrlRun,
    pairing: Option<CtrlPairing>,
    notes: &Path,
) -> Res<CtrlSession> {
    let until = cx.until;
    let CtrlRun { mut iut, inv } = run;
    let mut dial = race(&mut iut, host_dial(inv, pairing, until)).await?;
    race(&mut iut, peek(&mut dial)).await?;
    let shown = iut.expect("session_code", until).await?;
    if shown["code"] != dial.code.as_str() {
        bail!(
            "the IUT shows session code {} but the TLS channel binding gives {:?}",
            shown["code"],
            dial.code
        );
    }
    let connected = race(&mut iut, host_hello(dial, until)).await?;
    let (serving, pairing) = serve_notes(connected, notes)?;
    let ev = iut.expect("connected", until).await?;
    if ev["host_device_name"] != RUNNER_HOST_NAME {
        bail!("`connected` names host {ev} (expected {RUNNER_HOST_NAME:?})");
    }
    Ok(CtrlSession {
        iut,
        pairing,
        host_id: ev["host_id"].clone(),
        serving,
    })
}

/// One stdin line, answered by a `response` event for it.
async fn command(s: &mut CtrlSession, line: &str, until: Instant) -> Res<Value> {
    s.iut.send_line(line).await?;
    let ev = s.iut.expect("response", until).await?;
    if ev["command"] != line {
        bail!("`response` for {} (sent {line:?})", ev["command"]);
    }
    if ev["response"].get("result").is_none() {
        bail!("the honest host's notes app answered {line:?}, but the IUT printed {ev}");
    }
    Ok(ev)
}

/// Ends the session with stdin EOF: `stopped` (reason `eof`), exit status 0.
async fn close(mut s: CtrlSession, until: Instant) -> Res<Iut> {
    s.iut.close_stdin();
    let ev = s.iut.expect("stopped", until).await?;
    let status = s.iut.end(until).await?;
    s.serving.abort();
    if ev["reason"] != "eof" {
        bail!("`stopped` after stdin EOF says {ev} (expected reason eof)");
    }
    if !status.success() {
        bail!("exit status {status} after stdin EOF (expected 0)");
    }
    Ok(s.iut)
}

async fn honest_pairing(cx: Cx) -> Res<Note> {
    let data = cx.dir("ctrl")?;
    let run = start(&cx, &data, &["link"]).await?;
    let mut s = open(&cx, run, None, &cx.dir("notes")?).await?;
    command(&mut s, "/notes", cx.until).await?;
    let iut = close(s, cx.until).await?;
    if !iut.noise().is_empty() {
        bail!("non-JSON lines on stdout in --json mode: {:?}", iut.noise());
    }
    Ok(None)
}

/// The host leaves; the IUT controller must say `stopped` (reason `disconnected`) and exit
/// on its own, even though the runner keeps its stdin open.
async fn exit_after_disconnect(cx: Cx) -> Res<Note> {
    let data = cx.dir("ctrl")?;
    let run = start(&cx, &data, &["link"]).await?;
    let mut s = open(&cx, run, None, &cx.dir("notes")?).await?;
    command(&mut s, "/notes", cx.until).await?;
    // The serving task owns the TLS stream: aborting it closes the connection.
    s.serving.abort();
    let ev = s.iut.expect("stopped", cx.within(15)).await?;
    if ev["reason"] != "disconnected" {
        bail!("`stopped` after the host left says {ev} (expected reason disconnected)");
    }
    let status = s.iut.check_exits_with_stdin_open(cx.until).await?;
    if !status.success() {
        bail!("exit status {status} after the host left (expected 0)");
    }
    Ok(None)
}

/// A first honest session; returns the host id and the runner's pairing.
async fn first_session(cx: &Cx, data: &Path, notes: &Path) -> Res<(Value, CtrlPairing)> {
    let run = start(cx, data, &["link"]).await?;
    let mut s = open(cx, run, None, notes).await?;
    command(&mut s, "/notes", cx.until).await?;
    let (id, pairing) = (s.host_id.clone(), s.pairing.clone());
    close(s, cx.until).await?;
    if !id.is_i64() {
        bail!("`connected` host_id {id} is not a number");
    }
    Ok((id, pairing))
}

async fn honest_reconnect(cx: Cx) -> Res<Note> {
    let data = cx.dir("ctrl")?;
    let notes = cx.dir("notes")?;
    let (id, pairing) = first_session(&cx, &data, &notes).await?;
    let id_arg = id.to_string();
    let run = start(&cx, &data, &["connect", &id_arg]).await?;
    // The runner host checks the new invitation against its pairing (same CA and identity
    // key, or `IDENTITY`), presents its paired CA, and the IUT must pin it.
    let mut s = open(&cx, run, Some(pairing), &notes).await?;
    if s.host_id != id {
        bail!(
            "the reconnected host has id {} (first session: {id})",
            s.host_id
        );
    }
    command(&mut s, "/notes", cx.until).await?;
    close(s, cx.until).await?;
    Ok(None)
}

async fn unknown_ca(cx: Cx) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("ctrl")?;
    let notes = cx.dir("notes")?;
    let (id, pairing) = first_session(&cx, &data, &notes).await?;
    let id_arg = id.to_string();
    let mut run = start(&cx, &data, &["connect", &id_arg]).await?;

    // A host with a fresh CA (another device, or this one after losing its pairing).
    let stranger = HostHandshake::new(run.inv.clone(), None)
        .map_err(|e| format!("the IUT's invitation: {e}"))?;
    let config = tls::client_config(stranger.credentials(), stranger.tls_pin())
        .map_err(|e| format!("{e}"))?;
    let addr = (run.inv.invitation.host.to_string(), run.inv.invitation.port);
    let tcp = within(until, "the TCP connection", TcpStream::connect(addr))
        .await?
        .map_err(|e| format!("connecting to the IUT: {e}"))?;
    let verdict = match within(until, "the TLS handshake", tls::connect(tcp, &config)).await? {
        Err(e) => Err(e),
        Ok((mut stream, _)) => stream
            .peek_alert(Duration::from_secs(3))
            .await
            .map(|()| stream),
    };
    match verdict {
        Err(TlsError::CertificateRejected) => {}
        Ok(_) => {
            bail!("the IUT accepted a host CA other than the paired one (no alert within 3 s)")
        }
        Err(e) => bail!("expected an unknown_ca alert, got: {e}"),
    }

    // The reference drops the failed handshake and keeps listening.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if run.iut.saw("connected") {
        bail!("the IUT reported `connected` for a refused host");
    }
    if run.iut.exited().is_some() {
        let (kind, _) = run.iut.expect_error(cx.within(5)).await?;
        run.iut.end(until).await?;
        return Ok(Some(format!("the IUT ended cleanly with {kind}")));
    }
    let mut s = open(&cx, run, Some(pairing), &notes)
        .await
        .map_err(|e| match e {
            super::Stop::Fail(why) => super::Stop::Fail(format!(
                "after refusing the stranger, the paired host could not connect: {why}"
            )),
            other => other,
        })?;
    command(&mut s, "/notes", until).await?;
    close(s, until).await?;
    Ok(Some(
        "refused with unknown_ca, kept waiting, then served the paired host".into(),
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    /// 20000 bytes whose length prefix (19998) claims more than a block holds.
    Oversize,
    /// 1000 bytes of a HELLO block, then TLS close_notify.
    Short,
    /// A block whose length prefix (16383) is larger than the block's content can be.
    BadPadding,
    /// TLS with one CA, a HELLO naming another.
    CaMismatch,
    /// One bit of the HELLO box flipped.
    BadBox,
    /// A well-formed HELLO with `"v":2`.
    Version,
    /// Half a block, then the TCP connection closes without close_notify.
    StopMidBlock,
}

/// What the runner host does with the connection after its bytes.
enum After {
    KeepOpen,
    CloseNotify,
    Abrupt,
}

async fn raw_hello(cx: Cx, raw: Raw) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("ctrl")?;
    let CtrlRun { mut iut, inv } = start(&cx, &data, &["link"]).await?;
    let mut dial = race(&mut iut, host_dial(inv.clone(), None, until)).await?;
    race(&mut iut, peek(&mut dial)).await?;
    let app = host_app(&inv.invitation.app)?;
    let honest = dial
        .handshake
        .hello_block(app.clone())
        .map_err(|e| format!("making the HELLO: {e}"))?;
    let content = decode_block(&honest).map_err(|e| format!("{e}"))?.to_vec();
    let (bytes, after, expected): (Vec<u8>, After, &[&str]) = match raw {
        Raw::Oversize => {
            let mut b = 19998u16.to_be_bytes().to_vec();
            b.extend_from_slice(&content);
            b.resize(20000, b'#');
            (b, After::KeepOpen, &["BLOCK_SIZE"])
        }
        Raw::BadPadding => {
            let mut b = honest.clone();
            b[..2].copy_from_slice(&16383u16.to_be_bytes());
            (b, After::KeepOpen, &["BLOCK_SIZE"])
        }
        Raw::Short => (honest[..1000].to_vec(), After::CloseNotify, &["BLOCK_SIZE"]),
        Raw::StopMidBlock => (
            honest[..8192].to_vec(),
            After::Abrupt,
            &["BLOCK_SIZE", "EXCEPTION"],
        ),
        Raw::CaMismatch => {
            let other = HostHandshake::new(inv.clone(), None).map_err(|e| format!("{e}"))?;
            let b = other.hello_block(app).map_err(|e| format!("{e}"))?;
            (b, After::KeepOpen, &["IDENTITY"])
        }
        Raw::BadBox => {
            let mut c = content.clone();
            let last = c.len() - 1;
            c[last] ^= 0x01;
            (
                encode_block(&c).map_err(|e| format!("{e}"))?,
                After::KeepOpen,
                &["DECRYPT"],
            )
        }
        Raw::Version => {
            let dh = X25519SecretKey::generate();
            let key = dh
                .dh(&inv.invitation.dh)
                .map_err(|e| format!("DH with the invitation key: {e:?}"))?;
            let hello = HostHello {
                version: Version(2),
                ca: dial.handshake.ca_fingerprint(),
                app,
                kem: KemKeyPair::generate().public().clone(),
            };
            let enc = HostEncHello::seal(&hello, &key, dh.public(), Nonce::random())
                .map_err(|e| format!("{e}"))?;
            (
                encode_block(&enc.encode()).map_err(|e| format!("{e}"))?,
                After::KeepOpen,
                &["VERSION"],
            )
        }
    };
    let HostDial { mut stream, .. } = dial;
    within(until, "sending the HELLO bytes", async {
        stream.write_all(&bytes).await?;
        stream.flush().await
    })
    .await?
    .map_err(|e| format!("sending the HELLO bytes: {e}"))?;
    let held = match after {
        After::KeepOpen => Some(stream),
        After::CloseNotify => {
            let _ = within(until, "closing", stream.shutdown()).await;
            Some(stream)
        }
        After::Abrupt => {
            drop(stream);
            None
        }
    };
    // A HELLO that does not decrypt under the link's key proves nothing about its sender.
    // The reference ends the attempt with an error; a controller that keeps the link open for
    // the host that holds it (ours: spec/xrcp.md §6.4) withdraws that connection's code
    // instead. Either passes; a HELLO that decrypts must still end in an error.
    let provable = matches!(raw, Raw::CaMismatch | Raw::Version);
    let refusal = loop {
        match iut.next(until).await {
            Ok(Some(v)) if kind_of(&v) == "error" => break Ok((error_of(&v), v)),
            Ok(Some(v)) if kind_of(&v) == "session_code_withdrawn" && !provable => break Err(v),
            Ok(Some(v)) if kind_of(&v) == "connected" => {
                bail!("the IUT connected ({v}) where it must refuse")
            }
            Ok(Some(_)) => continue,
            Ok(None) => bail!(
                "the IUT ended without an `error` event{}",
                iut.stderr_tail()
            ),
            Err(_) => bail!("no `error` event in time{}", iut.stderr_tail()),
        }
    };
    let (kind, ev) = match refusal {
        Ok(error) => error,
        Err(withdrawn) => {
            drop(held);
            // Still waiting for the real host: give it a moment to go wrong, then stop it.
            if let Some(status) = iut.exits_within(Duration::from_millis(500)).await {
                bail!("the IUT exited ({status}) after withdrawing the code");
            }
            if iut.saw("connected") {
                bail!("the IUT reported `connected`");
            }
            let reason = withdrawn
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Ok(Some(format!(
                "code withdrawn ({reason}), the link stays open for its host"
            )));
        }
    };
    drop(held);
    let status = iut.end(until).await?;
    if iut.saw("connected") {
        bail!("the IUT reported `connected`");
    }
    if status.success() {
        bail!("exit status 0 after an error");
    }
    if !expected.contains(&kind.as_str()) {
        bail!("expected {}, the IUT reported {ev}", expected.join(" or "));
    }
    Ok((expected.len() > 1).then(|| format!("the IUT reported {kind}")))
}

async fn garbage_after_hello(cx: Cx) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("ctrl")?;
    let CtrlRun { mut iut, inv } = start(&cx, &data, &["link"]).await?;
    let mut dial = race(&mut iut, host_dial(inv.clone(), None, until)).await?;
    race(&mut iut, peek(&mut dial)).await?;
    let HostDial {
        handshake,
        mut stream,
        session,
        ..
    } = dial;
    let mut bytes = handshake
        .hello_block(host_app(&inv.invitation.app)?)
        .map_err(|e| format!("making the HELLO: {e}"))?;
    // Not an HTTP/2 server preface (a SETTINGS frame): 64 bytes of 0xab.
    bytes.extend_from_slice(&[0xab; 64]);
    within(until, "sending the HELLO", async {
        stream.write_all(&bytes).await?;
        stream.flush().await
    })
    .await?
    .map_err(|e| format!("sending the HELLO: {e}"))?;
    let reply = race(&mut iut, async {
        within(until, "the IUT's controller HELLO", read_block(&mut stream))
            .await?
            .map_err(|e| format!("reading the controller HELLO: {e}").into())
    })
    .await?;
    handshake
        .handle_ctrl_hello(&reply, &session.tls_unique)
        .map_err(|e| format!("the IUT's controller HELLO is refused: {e}"))?;
    // The runner keeps the connection open and silent: the IUT must end the session by
    // itself, with an error, and not crash (stdin stays open, so EOF is not the reason).
    let ev = iut.expect_end(cx.within(15)).await?;
    let status = iut.end(until).await?;
    drop(stream);
    if kind_of(&ev) == "stopped" && ev["reason"] == "eof" {
        bail!("the IUT reports stdin EOF although stdin is open");
    }
    Ok(Some(format!("ended with {ev} ({status})")))
}

async fn slow_hello(cx: Cx) -> Res<Note> {
    let until = cx.until;
    let secs = cx.config.slow_secs;
    let data = cx.dir("ctrl")?;
    let CtrlRun { mut iut, inv } = start(&cx, &data, &["link"]).await?;
    let mut dial = race(&mut iut, host_dial(inv.clone(), None, until)).await?;
    race(&mut iut, peek(&mut dial)).await?;
    let hello = dial
        .handshake
        .hello_block(host_app(&inv.invitation.app)?)
        .map_err(|e| format!("making the HELLO: {e}"))?;
    let HostDial { mut stream, .. } = dial;
    // One byte per second. The reference waits 60 s for the HELLO; here the IUT only has to
    // stay up and silent for `secs` seconds.
    for (i, byte) in hello.iter().take(secs as usize).enumerate() {
        within(until, "sending a byte", async {
            stream.write_all(&[*byte]).await?;
            stream.flush().await
        })
        .await?
        .map_err(|e| format!("the IUT closed the connection after {i} s: {e}"))?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        iut.drain_ready();
        if iut.saw("error") || iut.exited().is_some() {
            bail!(
                "the IUT gave up on a slow peer after {} s (the reference waits 60 s){}",
                i + 1,
                iut.stderr_tail()
            );
        }
    }
    let _ = within(until, "closing", stream.shutdown()).await;
    drop(stream);
    // The cut-off HELLO proves nothing: an error (the reference) or a withdrawn code and a
    // link still open (ours, spec/xrcp.md §6.4).
    let until_end = cx.within(10);
    loop {
        match iut.next(until_end).await {
            Ok(Some(v)) if kind_of(&v) == "session_code_withdrawn" => {
                if iut.exits_within(Duration::from_millis(500)).await.is_some() {
                    bail!("the IUT exited after withdrawing the code");
                }
                let reason = v.get("reason").and_then(Value::as_str).unwrap_or("?");
                return Ok(Some(format!(
                    "still waiting after {secs} s; after the disconnect: code withdrawn ({reason})"
                )));
            }
            Ok(Some(v)) if kind_of(&v) == "error" => {
                let status = iut.end(cx.within(10)).await?;
                if status.success() {
                    bail!("exit status 0 after an error");
                }
                return Ok(Some(format!(
                    "still waiting after {secs} s; after the disconnect: {}",
                    error_of(&v)
                )));
            }
            Ok(Some(v)) if kind_of(&v) == "connected" => bail!("the IUT connected ({v})"),
            Ok(Some(_)) => continue,
            Ok(None) => bail!("the IUT ended without an event{}", iut.stderr_tail()),
            Err(_) => bail!("no `error` event in time{}", iut.stderr_tail()),
        }
    }
}
