//! The scripting mode of both programs, run as processes on loopback (README "Scripting",
//! the contracts at the top of `xrcp-ctrl/src/cli/script.rs` and `xrcp-host/src/cli/script.rs`):
//! linking, the session code, commands and responses, file store and get, clean stops, a
//! rejected session code, a second session over the stored pairing, and `list --json`.
//!
//! Every program runs with its own temporary data directory, on 127.0.0.1 and an OS-chosen
//! port, under a [`Proc`] guard (deadline, killed on drop).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use xrcp_tests::cli::{json_lines, run, Proc};

/// Bound on each expected output line.
const STEP: Duration = Duration::from_secs(15);
/// Bound on each program's whole life.
const LIFE: Duration = Duration::from_secs(60);

use xrcp_tests::cli::ctrl_cmd as ctrl;

use xrcp_tests::cli::host_cmd as host;

/// The controller's invitation event: checks its fields, returns the link.
fn invitation(ctrl: &mut Proc) -> String {
    let inv = ctrl.expect("invitation", STEP);
    assert_eq!(inv["address"], "127.0.0.1", "{inv}");
    let port = inv["port"].as_u64().expect("port");
    assert!(port > 0, "{inv}");
    let link = inv["link"].as_str().expect("link").to_owned();
    assert!(
        link.starts_with("xrcp:/") && link.contains(&format!("@127.0.0.1:{port}#/?")),
        "{link}"
    );
    link
}

fn result(response: &Value) -> &Value {
    let r = &response["response"]["result"];
    assert!(r.is_object(), "expected a result: {response}");
    r
}

fn sha512_file(p: &Path) -> Vec<u8> {
    Sha512::digest(std::fs::read(p).unwrap()).to_vec()
}

fn list(cmd: Command) -> Vec<Value> {
    let out = run(cmd, STEP).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out)
}

/// Pair, drive, transfer files, stop on EOF; then a second session over the stored pairing
/// (the host types the code it read on the controller), stopped by the host; then both
/// `list --json`.
#[test]
fn link_drive_files_stop_and_reconnect() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();

    // --- First session: a new link, the host accepts the code without asking (--yes).
    let mut c = ctrl(
        &d1,
        &[
            "link",
            "--json",
            "--addr",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
        ],
    );
    c.current_dir(&downloads);
    let mut c = Proc::spawn("xrcp-ctrl link", c, LIFE);
    let link = invitation(&mut c);
    let mut h = Proc::spawn(
        "xrcp-host connect",
        host(&d2, &["connect", &link, "--json", "--yes"]),
        LIFE,
    );

    let host_code = h.expect("session_code", STEP)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctrl_code = c.expect("session_code", STEP)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        host_code, ctrl_code,
        "both programs show the same session code"
    );
    // Decimal groups of 5 digits (the last may be shorter), as SimpleX shows them.
    let groups: Vec<&str> = host_code.split(' ').collect();
    assert!(groups.len() > 10, "{host_code}");
    assert!(groups
        .iter()
        .all(|g| !g.is_empty() && g.len() <= 5 && g.bytes().all(|b| b.is_ascii_digit())));

    let hc = h.expect("connected", STEP);
    assert_eq!(
        hc,
        json!({"event": "connected", "controller_id": 1,
                          "controller_device_name": "desk", "compression": true})
    );
    let cc = c.expect("connected", STEP);
    assert_eq!(
        cc,
        json!({"event": "connected", "host_id": 1,
                          "host_device_name": "phone", "compression": true})
    );

    // Commands: each stdin line is one command; the host reports each one it runs.
    c.send("/note hello from the desk");
    let r = c.expect("response", STEP);
    assert_eq!(r["command"], "/note hello from the desk");
    assert_eq!(result(&r)["type"], "noteCreated");
    assert_eq!(result(&r)["note"]["text"], "hello from the desk");
    assert_eq!(
        h.expect("command", STEP)["command"],
        "/note hello from the desk"
    );

    c.send("/notes");
    let r = c.expect("response", STEP);
    assert_eq!(result(&r)["notes"][0]["text"], "hello from the desk");
    assert_eq!(h.expect("command", STEP)["command"], "/notes");

    // An unknown command is an error *response*; the session goes on.
    c.send("/launch rockets");
    let r = c.expect("response", STEP);
    assert_eq!(r["command"], "/launch rockets");
    assert_eq!(r["response"]["error"]["type"], "commandError", "{r}");
    assert_eq!(h.expect("command", STEP)["command"], "/launch rockets");

    // Files: store a local file on the host, find its id with /files, get it back.
    let src = tmp.path().join("report.bin");
    let data: Vec<u8> = (0..(3u32 << 20) + 12345)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    c.send(&format!("/store remote file {}", src.display()));
    assert_eq!(c.expect("file_stored", STEP)["path"], "report.bin");
    let on_host = d2.join("files").join("report.bin");
    assert_eq!(
        sha512_file(&on_host),
        Sha512::digest(&data).to_vec(),
        "stored intact"
    );

    c.send("/files");
    let r = c.expect("response", STEP);
    let file = &result(&r)["files"][0];
    assert_eq!(file["fileName"], "report.bin");
    assert_eq!(file["fileSize"], data.len());
    let id = file["fileId"].as_i64().unwrap();
    assert_eq!(h.expect("command", STEP)["command"], "/files");

    let remote_file = json!({"userId": 1, "fileId": id, "sent": false,
                             "fileSource": {"filePath": "report.bin"}});
    c.send(&format!("/get remote file {remote_file}"));
    let got = c.expect("file_received", STEP);
    let got = Path::new(got["path"].as_str().unwrap()).to_owned();
    assert!(
        got.starts_with(&downloads),
        "saved in the working directory: {}",
        got.display()
    );
    assert_eq!(
        sha512_file(&got),
        Sha512::digest(&data).to_vec(),
        "fetched intact"
    );

    // A file the host does not have: an error event for that line, the session goes on.
    let missing = json!({"userId": 1, "fileId": id + 100, "sent": false,
                         "fileSource": {"filePath": "nothing.bin"}});
    c.send(&format!("/get remote file {missing}"));
    let e = c.expect("error", STEP);
    assert_eq!(e["error"], "SESSION", "{e}");
    assert!(
        e["command"]
            .as_str()
            .unwrap()
            .starts_with("/get remote file "),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("fileNotFound"),
        "{e}"
    );
    c.send("/notes");
    assert_eq!(c.expect("response", STEP)["command"], "/notes");
    assert_eq!(h.expect("command", STEP)["command"], "/notes");

    // Clean stop: EOF on the controller's stdin ends both programs with status 0.
    c.close_stdin();
    assert_eq!(c.expect("stopped", STEP)["reason"], "eof");
    assert!(c.wait(STEP).success());
    assert_eq!(h.expect("stopped", STEP)["reason"], "disconnected");
    assert!(h.wait(STEP).success());
    assert!(c.rest().is_empty() && h.rest().is_empty());

    // --- Second session: `connect <id>` over the stored pairing, with a new link.
    let mut c2 = ctrl(
        &d1,
        &[
            "connect",
            "1",
            "--json",
            "--addr",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
        ],
    );
    c2.current_dir(&downloads);
    let mut c = Proc::spawn("xrcp-ctrl connect 1", c2, LIFE);
    let link2 = invitation(&mut c);
    assert_ne!(link2, link, "every session has a new invitation");
    // Without --yes/--verify the host reads the code from its first stdin line: the user
    // types what the controller shows.
    let mut h = Proc::spawn(
        "xrcp-host connect (ask)",
        host(&d2, &["connect", &link2, "--json"]),
        LIFE,
    );
    let host_code = h.expect("session_code", STEP)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctrl_code = c.expect("session_code", STEP)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(host_code, ctrl_code);
    assert_ne!(host_code, groups.join(" "), "a new session has a new code");
    h.send(&ctrl_code.replace(' ', ""));
    let hc = h.expect("connected", STEP);
    assert_eq!(
        hc["controller_id"], 1,
        "the host recognises the controller: {hc}"
    );
    assert_eq!(hc["controller_device_name"], "desk");
    let cc = c.expect("connected", STEP);
    assert_eq!(cc["host_id"], 1, "{cc}");

    // The notes of the first session are still on the host.
    c.send("/notes");
    let r = c.expect("response", STEP);
    assert_eq!(result(&r)["notes"][0]["text"], "hello from the desk");
    assert_eq!(h.expect("command", STEP)["command"], "/notes");

    // The host's user ends this one.
    h.send("/stop remote ctrl");
    assert_eq!(h.expect("stopped", STEP)["reason"], "stopped");
    assert!(h.wait(STEP).success());
    assert_eq!(c.expect("stopped", STEP)["reason"], "disconnected");
    assert!(c.wait(STEP).success());

    // One pairing on each side, under the same ids.
    assert_eq!(
        list(ctrl(&d1, &["list", "--json"])),
        vec![json!({"host_id": 1, "host_device_name": "phone"})]
    );
    assert_eq!(
        list(host(&d2, &["list", "--json"])),
        vec![json!({"controller_id": 1, "controller_device_name": "desk"})]
    );
}

/// `--verify` with a code that is not the session's: the host refuses before sending its
/// HELLO, so the controller sees the connection close with no HELLO. On a new link that
/// does not end the wait (anyone who reaches the port could do it): the code is withdrawn,
/// and when the link expires (`--timeout`) the controller ends with `DISCONNECTED`; both
/// exit non-zero and neither stores a pairing.
#[test]
fn wrong_verification_code_ends_both_without_pairing() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl(
            &d1,
            &[
                "link",
                "--json",
                "--addr",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
                "--timeout",
                "3",
            ],
        ),
        LIFE,
    );
    let link = invitation(&mut c);
    let mut h = Proc::spawn(
        "xrcp-host connect --verify",
        host(
            &d2,
            &["connect", &link, "--json", "--verify", "12345 67890 12345"],
        ),
        LIFE,
    );
    h.expect("session_code", STEP);
    let e = h.expect("error", STEP);
    assert_eq!(e["error"], "BAD_VERIFICATION_CODE", "{e}");
    assert!(!h.wait(STEP).success(), "a rejected code is a failure");

    let code = c.expect("session_code", STEP);
    assert!(
        code["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{code}"
    );
    let w = c.expect("session_code_withdrawn", STEP);
    assert_eq!(w["reason"], "left", "{w}");
    assert_eq!(w["peer"], code["peer"], "{w}");
    let e = c.expect("error", STEP);
    assert_eq!(
        e["error"], "DISCONNECTED",
        "the host left before its HELLO: {e}"
    );
    assert!(!c.wait(STEP).success());
    assert!(c.rest().is_empty() && h.rest().is_empty());

    assert!(
        list(ctrl(&d1, &["list", "--json"])).is_empty(),
        "no host stored"
    );
    assert!(
        list(host(&d2, &["list", "--json"])).is_empty(),
        "no controller stored"
    );
}

/// `list` writes its whole output in one go: a write that fails (a full disk, here
/// `/dev/full`) is an error with a message and a failing exit; a reader that went away (a
/// closed pipe, as after `| head`) is not.
#[test]
fn list_fails_on_a_failed_write_but_not_on_a_closed_reader() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, mut cmd) in [
        ("xrcp-ctrl", ctrl(tmp.path(), &["list"])),
        ("xrcp-host", host(tmp.path(), &["list"])),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = cmd
            .stdin(std::process::Stdio::null())
            .stdout(full)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{name} list into /dev/full succeeded"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("writing the list failed"), "{name}: {err}");

        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = cmd.stdout(writer).output().unwrap();
        assert!(
            out.status.success(),
            "{name} list into a closed pipe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `connect <id>` for an id that was never paired, and a garbage link for the host.
#[test]
fn unknown_host_and_bad_link_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(ctrl(tmp.path(), &["connect", "7", "--json"]), STEP).unwrap();
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["error"], "UNKNOWN_HOST");

    let out = run(
        host(
            tmp.path(),
            &["connect", "xrcp:/nonsense", "--json", "--yes"],
        ),
        STEP,
    )
    .unwrap();
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["error"], "SYNTAX");
}

/// Someone who reaches the port but never saw the link completes TLS with a certificate of
/// their own and sends a HELLO block of garbage before the real host dials. The controller
/// shows that connection's code with its address, withdraws it, and links the real host with
/// the same invitation. (Before, the first TLS connection used the invitation up and the
/// program ended with `DECRYPT`.)
#[test]
fn a_stranger_on_the_port_does_not_use_up_the_link() {
    use xrcp::tls::{self, CaRole, Pin, TlsIdentity};
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl(
            &d1,
            &[
                "link",
                "--json",
                "--addr",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
            ],
        ),
        LIFE,
    );
    let link = invitation(&mut c);
    let port = link
        .split("@127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('#').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("port in the link");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _stranger = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.9:0".parse().unwrap()).unwrap();
        let tcp = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        let identity = TlsIdentity::generate(CaRole::Host).unwrap();
        let config =
            tls::client_config(&identity.session_credentials().unwrap(), Pin::Any).unwrap();
        let (mut stream, _) = tls::connect(tcp, &config).await.expect("TLS completes");
        let junk = vec![b'x'; xrcp::message::BLOCK_SIZE];
        xrcp::handshake::io::write_block(&mut stream, &junk)
            .await
            .unwrap();
        stream
    });
    let code = c.expect("session_code", STEP);
    assert!(
        code["peer"].as_str().unwrap().starts_with("127.0.0.9:"),
        "{code}"
    );
    let w = c.expect("session_code_withdrawn", STEP);
    assert_eq!(w["reason"], "not_invited", "{w}");
    assert_eq!(w["peer"], code["peer"], "{w}");

    let mut h = Proc::spawn(
        "xrcp-host connect",
        host(&d2, &["connect", &link, "--json", "--yes"]),
        LIFE,
    );
    let host_code = h.expect("session_code", STEP)["code"].clone();
    let ctrl_code = c.expect("session_code", STEP);
    assert_eq!(ctrl_code["code"], host_code);
    assert!(ctrl_code["peer"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    h.expect("connected", STEP);
    c.expect("connected", STEP);
    c.close_stdin();
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());
}
