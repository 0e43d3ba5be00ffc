//! `xrcp-host inspect <link>`: a link made by the real `xrcp-ctrl` is accepted and its fields
//! shown (exit 0); the same link with any one field changed, signatures kept, is refused with
//! `INVITATION`, and text that is not a link with `SYNTAX` (exit non-zero). `inspect` opens no
//! data directory and connects to nothing.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::json;
use xrcp::crypto::{Ed25519SecretKey, X25519SecretKey};
use xrcp::message::SignedInvitation;
use xrcp_tests::cli::{binaries, json_lines, run, Proc};

const STEP: Duration = Duration::from_secs(15);

/// A fresh invitation from the real controller program (which is then stopped).
fn real_link(data: &Path) -> String {
    let mut cmd = Command::new(&binaries().ctrl);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--device-name", "inspect desk"])
        .args([
            "link",
            "--json",
            "--addr",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
        ]);
    let mut ctrl = Proc::spawn("xrcp-ctrl link", cmd, Duration::from_secs(30));
    let inv = ctrl.expect("invitation", STEP);
    inv["link"].as_str().unwrap().to_owned()
}

fn inspect(data: &Path, link: &str, json: bool) -> Output {
    let mut cmd = Command::new(&binaries().host);
    cmd.arg("--data-dir").arg(data).args(["inspect", link]);
    if json {
        cmd.arg("--json");
    }
    run(cmd, STEP).unwrap()
}

/// The refusal of `link`: non-zero exit, one JSON error event of `kind`, and the same kind
/// in the text form.
fn assert_refused(data: &Path, what: &str, link: &str, kind: &str) {
    let out = inspect(data, link, true);
    assert!(!out.status.success(), "{what}: accepted");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{what}: {lines:?}");
    assert_eq!(lines[0]["event"], "error", "{what}: {lines:?}");
    assert_eq!(lines[0]["error"], kind, "{what}: {lines:?}");
    // The message is for people: the code stays in `error`, not in the words.
    let message = lines[0]["message"].as_str().unwrap().to_owned();
    assert!(
        !message.contains(kind) && message.contains(" — "),
        "{what}: {lines:?}"
    );

    let out = inspect(data, link, false);
    assert!(!out.status.success(), "{what}: accepted (text mode)");
    assert!(
        out.stdout.is_empty(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("error: {message}")),
        "{what}: {err}"
    );
}

#[test]
fn a_real_link_is_shown_and_every_tampered_field_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // The controller is already stopped: inspect never connects.
    let link = real_link(&tmp.path().join("ctrl"));
    // inspect must not create the host's data directory.
    let data = tmp.path().join("host-never-created");

    let out = inspect(&data, &link, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "invitation");
    let i = &lines[0]["invitation"];
    let parsed = SignedInvitation::parse_verified(&link).unwrap().invitation;
    assert_eq!(i["controller_device_name"], "inspect desk");
    assert_eq!(i["address"], "127.0.0.1");
    assert_eq!(i["port"], parsed.port);
    assert_eq!(i["protocol_versions"], "1");
    assert_eq!(i["ca_fingerprint"], parsed.ca.to_text());
    assert_eq!(i["timestamp"], parsed.ts);
    assert_eq!(i["app"], parsed.app);
    let range = &i["app_version_range"];
    assert!(
        range["min"].is_string() && range["max"].is_string(),
        "{range}"
    );
    for k in [
        "session_key_fingerprint",
        "identity_key_fingerprint",
        "dh_key_fingerprint",
    ] {
        assert!(i[k].as_str().is_some_and(|s| !s.is_empty()), "{k}: {i}");
    }

    let out = inspect(&data, &link, false);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("valid invitation, signatures verified\n"),
        "{text}"
    );
    assert!(text.contains("address: 127.0.0.1\n"), "{text}");
    assert!(text.contains(&format!("port: {}\n", parsed.port)), "{text}");
    assert!(
        text.contains("controller_device_name: inspect desk\n"),
        "{text}"
    );

    // Each field changed in turn; the link is re-serialized with the *old* signatures.
    let inv = SignedInvitation::parse(&link).unwrap();
    let other = Ed25519SecretKey::generate();
    let mut cases: Vec<(&str, SignedInvitation)> = Vec::new();
    let mut t = inv.clone();
    t.ssig = other.sign(b"something else");
    cases.push(("ssig", t));
    let mut t = inv.clone();
    t.idsig = other.sign(b"something else");
    cases.push(("idsig", t));
    let mut t = inv.clone();
    t.invitation.ca.0[0] ^= 1;
    cases.push(("ca", t));
    let mut t = inv.clone();
    t.invitation.host = "127.0.0.2".parse().unwrap();
    cases.push(("host", t));
    let mut t = inv.clone();
    t.invitation.port = t.invitation.port.wrapping_add(1).max(1);
    cases.push(("port", t));
    let mut t = inv.clone();
    t.invitation.ts += 1;
    cases.push(("ts", t));
    let mut t = inv.clone();
    t.invitation.app["deviceName"] = json!("evil desk");
    cases.push(("app", t));
    let mut t = inv.clone();
    t.invitation.skey = other.public();
    cases.push(("skey", t));
    let mut t = inv.clone();
    t.invitation.idkey = other.public();
    cases.push(("idkey", t));
    let mut t = inv.clone();
    t.invitation.dh = X25519SecretKey::generate().public();
    cases.push(("dh", t));
    for (field, t) in cases {
        let tampered = t.to_uri();
        assert_ne!(tampered, link, "{field} changed");
        assert!(
            SignedInvitation::parse(&tampered).is_ok(),
            "{field}: still parses"
        );
        assert_refused(&data, field, &tampered, "INVITATION");
    }

    // Text edits of the link itself (the way a swapped QR code would differ).
    let edits: [(&str, String); 3] = [
        ("version range", link.replacen("v=1&", "v=1-2&", 1)),
        (
            "deviceName text",
            link.replacen("inspect%20desk", "inspect%20dusk", 1),
        ),
        ("port text", {
            let p = parsed.port.to_string();
            let q = if parsed.port == 65535 {
                1
            } else {
                parsed.port + 1
            };
            link.replacen(&format!(":{p}#"), &format!(":{q}#"), 1)
        }),
    ];
    for (what, t) in edits {
        assert_ne!(t, link, "{what} changed");
        assert_refused(&data, what, &t, "INVITATION");
    }

    // Not links at all.
    let syntax: [(&str, String); 6] = [
        ("garbage", "hello".into()),
        ("wrong scheme", link.replacen("xrcp:/", "xrcp://", 1)),
        ("truncated", link[..link.len() / 2].to_owned()),
        (
            "no signatures",
            link[..link.find("&ssig=").unwrap()].to_owned(),
        ),
        // A name is a valid host (the reference's parser takes domain names), but text
        // after a complete IPv4 address is not.
        ("bad host", link.replacen("@127.0.0.1:", "@127.0.0.1.5:", 1)),
        ("trailing text", format!("{link} extra")),
    ];
    for (what, t) in syntax {
        assert_refused(&data, what, &t, "SYNTAX");
    }
    // A host name where the signed link had an address: parsed, then refused by the
    // signatures.
    let renamed = link.replacen("@127.0.0.1:", "@localhost:", 1);
    assert_refused(&data, "host replaced by a name", &renamed, "INVITATION");
    assert!(!data.exists(), "inspect created {}", data.display());
}
