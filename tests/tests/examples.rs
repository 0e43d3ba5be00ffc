//! The examples of the role crates run against each other: `xrcp-ctrl/examples/send_command`
//! (an embedded controller) and `xrcp-host/examples/kv_host` (an embedded host with an
//! application of its own), first over a link on loopback, then — paired once — with the
//! host finding the controller by multicast in two network namespaces (spec/xrcp.md §5).
//!
//! The examples are built the way `tests/src/cli.rs` builds the programs: `cargo build
//! --workspace --examples` once per test process, with the cargo and profile of the running
//! test (after `cargo test --workspace`, which builds the examples too, this only finds them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use xrcp_tests::cli::{run, Proc};
use xrcp_tests::netns::{skip_or_panic, Namespaces};

const STEP: Duration = Duration::from_secs(60);

struct Examples {
    controller: PathBuf,
    host: PathBuf,
}

fn examples() -> &'static Examples {
    static EXAMPLES: OnceLock<Examples> = OnceLock::new();
    EXAMPLES.get_or_init(|| build().unwrap_or_else(|e| panic!("cannot build the examples: {e}")))
}

fn build() -> Result<Examples, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "build",
        "--workspace",
        "--examples",
        "--message-format=json-render-diagnostics",
    ]);
    let profile = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.file_name()?.to_str()?.to_owned()));
    match profile.as_deref() {
        None | Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    // Variables cargo set for this test crate would make build scripts that track them
    // rebuild (see tests/src/cli.rs).
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str() {
            if k == "CARGO_MANIFEST_DIR"
                || k == "CARGO_MANIFEST_PATH"
                || k == "CARGO_CRATE_NAME"
                || k == "CARGO_PRIMARY_PACKAGE"
                || k == "CARGO_TARGET_TMPDIR"
                || k == "CARGO_RUSTC_CURRENT_DIR"
                || k == "OUT_DIR"
                || k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_EXE_")
            {
                cmd.env_remove(k);
            }
        }
    }
    let out = run(cmd, Duration::from_secs(900))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let (mut controller, mut host) = (None, None);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        match msg["target"]["name"].as_str() {
            Some("send_command") => controller = Some(PathBuf::from(exe)),
            Some("kv_host") => host = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok(Examples {
        controller: controller.ok_or("cargo reported no send_command example")?,
        host: host.ok_or("cargo reported no kv_host example")?,
    })
}

/// The value of the next line, which must start with `word `.
fn expect(p: &mut Proc, word: &str) -> String {
    let line = p.line(STEP);
    match line.strip_prefix(word).and_then(|l| l.strip_prefix(' ')) {
        Some(rest) => rest.to_owned(),
        None => panic!("expected a `{word}` line, got {line:?}\n{}", p.transcript()),
    }
}

/// One session of the two examples: the controller sends `set`, the file (if any) and
/// `get`; the host serves them. `ns` runs each in its namespace; `find` reconnects by
/// multicast instead of a link.
fn session(
    dirs: (&Path, &Path),
    ns: Option<&Namespaces>,
    ctrl_args: &[&str],
    file: Option<&Path>,
    find: bool,
) {
    let ex = examples();
    let command = |role: &str, exe: &Path| match ns {
        Some(ns) => ns.command(role, exe),
        None => Command::new(exe),
    };
    let mut c = command("ctrl", &ex.controller);
    c.arg(dirs.0).args(ctrl_args);
    if let Some(file) = file {
        c.arg("--file").arg(file);
    }
    let mut ctrl = Proc::spawn("send_command", c, Duration::from_secs(120));
    let link = expect(&mut ctrl, "link");
    assert!(link.starts_with("xrcp:/"), "{link}");
    let mut h = command("host", &ex.host);
    h.arg(dirs.1).arg(if find { "--find" } else { &link });
    let mut host = Proc::spawn("kv_host", h, Duration::from_secs(120));
    let host_code = expect(&mut host, "code");
    let ctrl_code = expect(&mut ctrl, "code");
    assert_eq!(
        host_code, ctrl_code,
        "both sides show the same session code"
    );
    if !find {
        // The person reads the controller's code and types it on the host.
        host.send(&ctrl_code);
    }
    assert_eq!(expect(&mut ctrl, "connected"), "1 kv example");
    assert_eq!(expect(&mut host, "connected"), "1 example controller");
    assert_eq!(expect(&mut host, "command"), "set greeting hello");
    let set: Value = serde_json::from_str(&expect(&mut ctrl, "result")).unwrap();
    assert_eq!(set["type"], "set");
    if let Some(file) = file {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(expect(&mut ctrl, "stored"), name);
        assert_eq!(
            std::fs::read(dirs.1.join("files").join(name)).unwrap(),
            std::fs::read(file).unwrap(),
            "the host keeps the file the controller sent"
        );
    }
    assert_eq!(expect(&mut host, "command"), "get greeting");
    let get: Value = serde_json::from_str(&expect(&mut ctrl, "result")).unwrap();
    assert_eq!(get["value"], "hello");
    assert!(ctrl.wait(STEP).success(), "{}", ctrl.transcript());
    // The controller ended the session on purpose: the host's serve() returns Ok.
    assert_eq!(host.line(STEP), "stopped", "{}", host.transcript());
    assert!(host.wait(STEP).success(), "{}", host.transcript());
}

#[test]
fn embedded_controller_and_host_over_a_link() {
    let (ctrl_dir, host_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = ctrl_dir.path().join("report.txt");
    std::fs::write(&file, b"a file from the embedded controller\n").unwrap();
    session(
        (ctrl_dir.path(), host_dir.path()),
        None,
        &["--addr", "127.0.0.1"],
        Some(&file),
        false,
    );
}

#[test]
fn embedded_host_finds_the_paired_controller_by_multicast() {
    let started = Instant::now();
    let setup = || -> Result<Namespaces, String> {
        let ns = Namespaces::create(&["ctrl", "host"])?;
        ns.link("ctrl", "10.79.0.1/24", "host", "10.79.0.2/24")?;
        ns.ip("ctrl", &["route", "add", "224.0.0.0/4", "dev", "v-host"])?;
        ns.ip("host", &["route", "add", "224.0.0.0/4", "dev", "v-ctrl"])?;
        Ok(ns)
    };
    let ns = match setup() {
        Ok(ns) => ns,
        Err(e) => {
            // Skips (returns `None`) unless CI requires namespaces, then it fails.
            let _ = skip_or_panic("embedded_host_finds_the_paired_controller_by_multicast", e);
            return;
        }
    };
    let (ctrl_dir, host_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dirs = (ctrl_dir.path(), host_dir.path());
    // Pair once with the link, then reconnect: the controller announces host 1's session,
    // the host finds it among its pairings and connects without a link.
    session(dirs, Some(&ns), &["--addr", "10.79.0.1"], None, false);
    session(
        dirs,
        Some(&ns),
        &["--addr", "10.79.0.1", "--announce", "1"],
        None,
        true,
    );
    eprintln!("multicast example round trip in {:?}", started.elapsed());
}

/// A program embedding a role builds none of the programs' crates (issue 13): without the
/// default `cli` feature, neither role crate depends on the command line, terminal, progress
/// bar, QR or image crates.
#[test]
fn the_libraries_build_without_the_programs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for package in ["xrcp-ctrl", "xrcp-host"] {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root).args([
            "tree",
            "--offline",
            "-p",
            package,
            "--no-default-features",
            "--prefix",
            "none",
        ]);
        let out = run(cmd, Duration::from_secs(120)).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        for program_only in [
            "clap ",
            "indicatif ",
            "qrcode ",
            "png ",
            "rustyline ",
            "tracing-subscriber ",
            // the programs' SHA-512 of attachments (feature `openssl-sha512`, which `cli` turns on)
            "openssl ",
            "openssl-sys ",
        ] {
            assert!(
                !tree.lines().any(|l| l.starts_with(program_only)),
                "{package} without `cli` depends on {program_only}"
            );
        }
        // The check itself works: with the default features the programs' crates are there.
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root)
            .args(["tree", "--offline", "-p", package, "--prefix", "none"]);
        let out = run(cmd, Duration::from_secs(120)).unwrap();
        assert!(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("clap ")));
    }
}
