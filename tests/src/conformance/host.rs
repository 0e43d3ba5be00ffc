//! Scenarios against an IUT **host**: the runner is the controller. It makes invitations
//! with the library (honest or broken), runs `HOST --data-dir D connect LINK --json --yes`
//! (or `--verify CODE`), and plays the TLS server, the controller HELLO and the HTTP/2
//! client with hand-made request bodies.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use xrcp::codec::{Version, VersionRange};
use xrcp::crypto::{Ed25519SecretKey, KeyHash};
use xrcp::handshake::io::{read_block_or_close, BlockIoError};
use xrcp::message::{decode_block, encode_block, Invitation};
use xrcp::pairing::HostPairing;
use xrcp::tls::{self, CaRole, Pin, TlsIdentity};

use super::iut::{kind_of, Iut};
use super::peer::{
    ctrl_hello, expect_chat_response, expect_protocol_error, read_host_hello, within, CtrlListen,
    RawClient, Tamper, RUNNER_CTRL_NAME,
};
use super::{bail, scenario, Cx, Note, Res, Role, Scenario, ScenarioFuture};

pub(crate) fn scenarios() -> Vec<Scenario> {
    fn s(name: &'static str, secs: u64, run: fn(Cx) -> ScenarioFuture) -> Scenario {
        scenario(name, Role::Host, secs, run)
    }
    vec![
        s("host-honest-pairing", 30, |cx| Box::pin(honest_pairing(cx))),
        s("host-honest-reconnect", 40, |cx| {
            Box::pin(honest_reconnect(cx))
        }),
        s("host-exit-after-disconnect", 30, |cx| {
            Box::pin(exit_after_disconnect(cx))
        }),
        s("host-link-tampered-ssig", 20, |cx| {
            Box::pin(tampered_link(cx, Part::Ssig))
        }),
        s("host-link-tampered-idsig", 20, |cx| {
            Box::pin(tampered_link(cx, Part::Idsig))
        }),
        s("host-link-tampered-ca", 20, |cx| {
            Box::pin(tampered_link(cx, Part::Ca))
        }),
        s("host-link-version-2", 20, |cx| Box::pin(version_2(cx))),
        s("host-tls-wrong-ca", 20, |cx| Box::pin(tls_wrong_ca(cx))),
        s("host-wrong-session-code", 20, |cx| {
            Box::pin(wrong_session_code(cx))
        }),
        s("host-ctrl-hello-bad-box", 20, |cx| {
            Box::pin(reply_with(cx, Reply::BadBox))
        }),
        s("host-ctrl-error-block", 20, |cx| {
            Box::pin(reply_with(cx, Reply::ErrorBlock))
        }),
        s("host-ctrl-hello-stall", 45, |cx| {
            Box::pin(reply_with(cx, Reply::Stall))
        }),
        s("host-garbage-after-hello", 25, |cx| {
            Box::pin(reply_with(cx, Reply::Garbage))
        }),
        s("host-session-duplicate-id", 30, |cx| {
            Box::pin(attack(cx, Attack::Duplicate))
        }),
        s("host-session-earlier-id", 30, |cx| {
            Box::pin(attack(cx, Attack::Earlier))
        }),
        s("host-session-far-future-id", 30, |cx| {
            Box::pin(attack(cx, Attack::FarFuture))
        }),
        s("host-session-bad-ssig", 30, |cx| {
            Box::pin(attack(cx, Attack::Sig(Tamper::Ssig)))
        }),
        s("host-session-bad-idsig", 30, |cx| {
            Box::pin(attack(cx, Attack::Sig(Tamper::Idsig)))
        }),
        s("host-session-wrong-tls-unique", 30, |cx| {
            Box::pin(attack(cx, Attack::TlsUnique))
        }),
    ]
}

/// Runs `step` while watching the IUT: if the IUT reports an error or exits first, that is
/// the failure reported.
pub(crate) async fn race<T>(iut: &mut Iut, step: impl Future<Output = Res<T>>) -> Res<T> {
    tokio::select! {
        biased;
        r = step => r,
        why = iut.watch() => bail!("{why}"),
    }
}

fn path_arg(p: &Path) -> Res<&str> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()).into())
}

/// `HOST --data-dir DATA connect LINK --json` plus `confirm` (`--yes` or `--verify CODE`).
pub(crate) fn spawn_connect(cx: &Cx, data: &Path, link: &str, confirm: &[&str]) -> Res<Iut> {
    let mut args = vec!["--data-dir", path_arg(data)?, "connect", link, "--json"];
    args.extend_from_slice(confirm);
    Iut::spawn(cx.host_cmd()?, &args)
}

/// An honest session with the IUT host up to `connected`, with the runner's HTTP/2 client
/// started.
pub(crate) struct HostSession {
    pub(crate) iut: Iut,
    pub(crate) client: RawClient,
    /// The runner's pairing after this session (host CA and DH key recorded).
    pub(crate) pairing: HostPairing,
    pub(crate) controller_id: Value,
}

/// Everything up to the IUT's `connected`: invitation, TLS, session code, HELLOs.
pub(crate) async fn open_session(
    cx: &Cx,
    data: &Path,
    listen: CtrlListen,
    confirm: &[&str],
) -> Res<HostSession> {
    let until = cx.until;
    let mut iut = spawn_connect(cx, data, &listen.link(), confirm)?;
    let (stream, session) = race(&mut iut, listen.accept_tls(until)).await?;
    let CtrlListen { handshake, .. } = listen;
    let est = race(&mut iut, ctrl_hello(handshake, stream, session, until)).await?;
    let shown = iut.expect("session_code", until).await?;
    if shown["code"] != est.code.as_str() {
        bail!(
            "the IUT shows session code {} but the TLS channel binding gives {:?}",
            shown["code"],
            est.code
        );
    }
    let connected = iut.expect("connected", until).await?;
    if connected["controller_device_name"] != RUNNER_CTRL_NAME {
        bail!("`connected` names controller {connected} (expected {RUNNER_CTRL_NAME:?})");
    }
    let pairing = est.pairing.clone();
    let client = RawClient::start(est, until).await?;
    Ok(HostSession {
        iut,
        client,
        pairing,
        controller_id: connected["controller_id"].clone(),
    })
}

/// The commands the IUT host reported running, in order.
pub(crate) fn commands(iut: &Iut) -> Vec<String> {
    iut.log()
        .iter()
        .filter(|v| kind_of(v) == "command")
        .map(|v| v["command"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Closes the session from the controller side; the IUT host must end without crashing.
async fn close(s: HostSession, until: Instant) -> Res<(Iut, std::process::ExitStatus)> {
    let HostSession {
        mut iut, client, ..
    } = s;
    client.close();
    let status = iut.end(until).await?;
    Ok((iut, status))
}

async fn honest_pairing(cx: Cx) -> Res<Note> {
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let mut s = open_session(&cx, &data, listen, &["--yes"]).await?;
    s.client.command(1, "/notes", cx.until).await?;
    let (iut, status) = close(s, cx.until).await?;
    if commands(&iut) != ["/notes"] {
        bail!(
            "the IUT reported commands {:?} (expected [\"/notes\"])",
            commands(&iut)
        );
    }
    if !iut.saw("stopped") {
        bail!("no `stopped` event after the controller left");
    }
    if !status.success() {
        bail!("exit status {status} after the controller left (expected 0)");
    }
    if !iut.noise().is_empty() {
        bail!("non-JSON lines on stdout in --json mode: {:?}", iut.noise());
    }
    Ok(None)
}

/// The controller leaves; the IUT host must say `stopped` and exit on its own, even though
/// the runner keeps its stdin open.
async fn exit_after_disconnect(cx: Cx) -> Res<Note> {
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let s = open_session(&cx, &data, listen, &["--yes"]).await?;
    let HostSession {
        mut iut, client, ..
    } = s;
    client.close();
    let ev = iut.expect("stopped", cx.within(10)).await?;
    if ev["reason"] != "disconnected" {
        bail!("`stopped` after the controller left says {ev} (expected reason disconnected)");
    }
    let status = iut.check_exits_with_stdin_open(cx.until).await?;
    if !status.success() {
        bail!("exit status {status} after the controller left (expected 0)");
    }
    Ok(None)
}

async fn honest_reconnect(cx: Cx) -> Res<Note> {
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let s = open_session(&cx, &data, listen, &["--yes"]).await?;
    let first_id = s.controller_id.clone();
    let pairing = s.pairing.clone();
    close(s, cx.until).await?;

    // Same data directory, same controller identity, a new session: the runner now pins the
    // host CA it learned, so the IUT must present the same one.
    let listen = CtrlListen::new(pairing).await?;
    let mut s = open_session(&cx, &data, listen, &["--yes"])
        .await
        .map_err(|e| match e {
            super::Stop::Fail(why) => super::Stop::Fail(format!("second session: {why}")),
            other => other,
        })?;
    if s.controller_id != first_id {
        bail!(
            "second session reports controller_id {} (first session: {first_id}): the stored pairing was not reused",
            s.controller_id
        );
    }
    s.client.command(1, "/notes", cx.until).await?;
    let (_, status) = close(s, cx.until).await?;
    if !status.success() {
        bail!("exit status {status} after the second session (expected 0)");
    }
    Ok(None)
}

#[derive(Clone, Copy)]
enum Part {
    Ssig,
    Idsig,
    Ca,
}

/// A link that must be refused before any connection: the IUT must report one of
/// `expected`, exit non-zero, and never open a TCP connection to the link's address.
async fn refused(cx: &Cx, listen: CtrlListen, link: String, expected: &[&str]) -> Res<Note> {
    let data = cx.dir("host")?;
    let listener = listen.listener;
    let connections = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
    let mut iut = spawn_connect(cx, &data, &link, &["--yes"])?;
    let (kind, ev) = iut.expect_error(cx.until).await?;
    let status = iut.end(cx.until).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connected = connections.is_finished();
    connections.abort();
    if connected {
        bail!("the IUT opened a TCP connection to the link's address (it reported {kind})");
    }
    if !expected.contains(&kind.as_str()) {
        bail!(
            "expected error {}, the IUT reported {ev}",
            expected.join(" or ")
        );
    }
    if status.success() {
        bail!("exit status 0 after an error");
    }
    Ok(None)
}

async fn tampered_link(cx: Cx, part: Part) -> Res<Note> {
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let mut inv = listen.handshake.invitation().clone();
    match part {
        Part::Ssig => inv.ssig.0[10] ^= 0x01,
        Part::Idsig => inv.idsig.0[10] ^= 0x01,
        // The signatures stay those of the real CA fingerprint.
        Part::Ca => inv.invitation.ca.0[0] ^= 0x01,
    }
    let link = inv.to_uri();
    refused(&cx, listen, link, &["INVITATION"]).await
}

async fn version_2(cx: Cx) -> Res<Note> {
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let base = listen.handshake.invitation().invitation.clone();
    let (skey, idkey) = (Ed25519SecretKey::generate(), Ed25519SecretKey::generate());
    let link = Invitation {
        version: VersionRange::single(Version(2)),
        skey: skey.public(),
        idkey: idkey.public(),
        ..base
    }
    .sign(&skey, &idkey)
    .map_err(|e| format!("signing: {e}"))?
    .to_uri();
    refused(&cx, listen, link, &["VERSION"]).await
}

async fn tls_wrong_ca(cx: Cx) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let impostor = TlsIdentity::generate(CaRole::Controller).map_err(|e| format!("{e}"))?;
    let creds = impostor.session_credentials().map_err(|e| format!("{e}"))?;
    let config = tls::server_config(&creds, Pin::Any).map_err(|e| format!("{e}"))?;
    let mut iut = spawn_connect(&cx, &data, &listen.link(), &["--yes"])?;
    let accepted = race(&mut iut, async {
        within(until, "the IUT's TCP connection", listen.listener.accept())
            .await?
            .map_err(|e| format!("accept: {e}").into())
    })
    .await?;
    let tls_result = within(until, "the TLS handshake", tls::accept(accepted.0, &config)).await?;
    if tls_result.is_ok() {
        bail!("the IUT completed TLS with a server presenting a CA other than the link's");
    }
    let (kind, ev) = iut.expect_error(until).await?;
    let status = iut.end(until).await?;
    if status.success() {
        bail!("exit status 0 after an error");
    }
    match kind.as_str() {
        "IDENTITY" | "EXCEPTION" => Ok(Some(format!("the IUT reported {kind}"))),
        _ => bail!("expected IDENTITY or EXCEPTION, the IUT reported {ev}"),
    }
}

async fn wrong_session_code(cx: Cx) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let mut iut = spawn_connect(&cx, &data, &listen.link(), &["--verify", "12345 67890"])?;
    let (mut stream, _session) = race(&mut iut, listen.accept_tls(until)).await?;
    let note = match within(until, "the IUT to close", read_block_or_close(&mut stream)).await? {
        Ok(None) => "closed without a block".to_owned(),
        Ok(Some(_)) => bail!("the IUT sent a HELLO block although the session code did not match"),
        Err(BlockIoError::BlockSize) => bail!("the IUT sent part of a block, then closed"),
        Err(e) => format!("connection ended: {e}"),
    };
    let (kind, _) = iut.expect_error(until).await?;
    let status = iut.end(until).await?;
    if status.success() {
        bail!("exit status 0 after refusing the code");
    }
    Ok(Some(format!("the IUT reported {kind}, {note}")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// A controller HELLO whose box has one flipped bit: `DECRYPT`.
    BadBox,
    /// An ERROR block (the reference defines it): `CTRL_ERROR`.
    ErrorBlock,
    /// 5000 bytes of the controller HELLO, then silence: the IUT's step timeout.
    Stall,
    /// An honest controller HELLO followed by bytes that are no HTTP/2 preface.
    Garbage,
}

async fn reply_with(cx: Cx, reply: Reply) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let mut iut = spawn_connect(&cx, &data, &listen.link(), &["--yes"])?;
    let (mut stream, session) = race(&mut iut, listen.accept_tls(until)).await?;
    let CtrlListen { handshake, .. } = listen;
    let block = race(&mut iut, read_host_hello(&mut stream, until)).await?;
    let tls_ca = KeyHash(session.peer_ca_fingerprint);
    let bytes = match reply {
        Reply::ErrorBlock => {
            // A HELLO "from another CA" makes the library refuse it and produce the ERROR
            // block the reference defines (`ERROR ‖ nonce ‖ box(text)`).
            let rejected = handshake
                .handle_host_hello(&block, KeyHash([9; 32]), &session.tls_unique)
                .err()
                .ok_or("the library accepted a HELLO with a foreign CA")?;
            rejected.reply.ok_or("the library made no ERROR block")?
        }
        _ => {
            let out = handshake
                .handle_host_hello(&block, tls_ca, &session.tls_unique)
                .map_err(|r| format!("the IUT's HELLO was refused by the runner: {}", r.error))?;
            match reply {
                Reply::BadBox => {
                    let mut content = decode_block(&out.reply)
                        .map_err(|e| format!("{e}"))?
                        .to_vec();
                    let last = content.len() - 1;
                    content[last] ^= 0x01;
                    encode_block(&content).map_err(|e| format!("{e}"))?
                }
                Reply::Stall => out.reply[..5000].to_vec(),
                Reply::Garbage => {
                    let mut b = out.reply;
                    b.extend_from_slice(&[0xab; 64]);
                    b
                }
                Reply::ErrorBlock => unreachable!(),
            }
        }
    };
    let sent_at = Instant::now();
    within(until, "sending the controller reply", async {
        stream.write_all(&bytes).await?;
        stream.flush().await
    })
    .await?
    .map_err(|e| format!("sending the controller reply: {e}"))?;

    if reply == Reply::Garbage {
        // The HELLO exchange succeeded; HTTP/2 cannot start. The IUT must end the session
        // by itself (the runner keeps the connection open) and not crash.
        let ev = iut.expect_end(cx.within(15)).await?;
        let status = iut.end(until).await?;
        drop(stream);
        return Ok(Some(format!("ended with {ev} ({status})")));
    }

    let (kind, ev) = iut.expect_error(until).await?;
    let elapsed = sent_at.elapsed();
    drop(stream);
    let status = iut.end(until).await?;
    if status.success() {
        bail!("exit status 0 after an error");
    }
    match reply {
        Reply::BadBox if kind == "DECRYPT" => Ok(None),
        Reply::ErrorBlock if kind == "CTRL_ERROR" => Ok(None),
        Reply::Stall => {
            // The reference host gives each step 15 s (spec/xrcp.md §12).
            if elapsed > Duration::from_secs(25) {
                bail!(
                    "the IUT gave up only after {:.1} s (reference: 15 s)",
                    elapsed.as_secs_f64()
                );
            }
            Ok(Some(format!("{kind} after {:.1} s", elapsed.as_secs_f64())))
        }
        _ => bail!("unexpected error from the IUT: {ev}"),
    }
}

#[derive(Clone, Copy)]
enum Attack {
    Duplicate,
    Earlier,
    FarFuture,
    Sig(Tamper),
    TlsUnique,
}

const REJECTED: &str = "/note conformance rejected";

async fn attack(cx: Cx, attack: Attack) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("host")?;
    let listen = CtrlListen::new(HostPairing::new()?).await?;
    let mut s = open_session(&cx, &data, listen, &["--yes"]).await?;
    let c = &mut s.client;
    let (one, two, three, four) = (
        "/note conformance one",
        "/note conformance two",
        "/note conformance three",
        "/note conformance four",
    );
    let expected: Vec<&str> = match attack {
        Attack::Duplicate => {
            let b1 = c.body(1, one, Tamper::None)?;
            expect_chat_response(&c.post(b1.clone(), until).await?, one)?;
            expect_protocol_error(&c.post(b1, until).await?, "pREDuplicateId", None)?;
            c.command(2, two, until).await?;
            vec![one, two]
        }
        Attack::Earlier => {
            c.command(1, one, until).await?;
            c.command(3, three, until).await?;
            // Id 2 was skipped: its stored key must still open it (out of order is fine).
            let b2 = c.body(2, two, Tamper::None)?;
            expect_chat_response(&c.post(b2.clone(), until).await?, two)?;
            // Now its key is used up: an earlier id without a key.
            expect_protocol_error(&c.post(b2, until).await?, "pREEarlierId", None)?;
            c.command(4, four, until).await?;
            vec![one, three, two, four]
        }
        Attack::FarFuture => {
            c.command(1, one, until).await?;
            let far = c.body(1 + 300, REJECTED, Tamper::None)?;
            expect_protocol_error(&c.post(far, until).await?, "manySkippedIds", None)?;
            c.command(2, two, until).await?;
            vec![one, two]
        }
        Attack::Sig(t) => {
            let bad = c.body(1, REJECTED, t)?;
            expect_protocol_error(
                &c.post(bad, until).await?,
                "pRERemoteControl",
                Some("ctrlAuth"),
            )?;
            // Signatures are checked before the id window: the rejected body must not have
            // used up id 1.
            c.command(1, one, until).await.map_err(|e| match e {
                super::Stop::Fail(why) => super::Stop::Fail(format!(
                    "{why} (a request with a bad signature must not use up its id)"
                )),
                other => other,
            })?;
            vec![one]
        }
        Attack::TlsUnique => {
            let bad = c.body(1, REJECTED, Tamper::TlsUnique)?;
            expect_protocol_error(&c.post(bad, until).await?, "pRESessionCode", None)?;
            c.command(2, one, until).await?;
            vec![one]
        }
    };
    let (iut, _status) = close(s, until).await?;
    let got = commands(&iut);
    if got != expected {
        bail!("the IUT reported commands {got:?}; expected exactly {expected:?} (rejected requests must not run)");
    }
    Ok(None)
}
