//! What a person notices in the first sessions (issue 14, items 6 and 7), with the real
//! programs, in real terminals (tmux) where it is about the terminal:
//! - `/get remote file` never replaces a file in the current folder: it picks `name (1).ext`
//!   and says so; it takes the id `/files` shows as well as the file's JSON (both modes);
//! - `/quit` ends `xrcp-ctrl link` (the host sees the controller leave, nothing is sent);
//! - device names default to the machine's host name, and `/set device name` is kept;
//! - `/find remote ctrl` says where it listens and says so when nothing was found;
//! - `xrcp-host inspect` shows when the link was made as a date;
//! - a large download shows its progress bar from the first bytes, without a rate guessed
//!   from them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use xrcp::message::SignedInvitation;
use xrcp_tests::cli::{binaries, ctrl_cmd, host_cmd, run, Proc, Tmux};
use xrcp_tests::fault_proxy::{Action, Direction, FaultProxy};

const STEP: Duration = Duration::from_secs(15);
/// A program's start (a loaded machine may take a while to load a debug binary).
const START: Duration = Duration::from_secs(30);
const LIFE: Duration = Duration::from_secs(120);

/// This machine's host name, as `uname -n` says.
fn machine_name() -> String {
    let out = run(
        {
            let mut c = Command::new("uname");
            c.arg("-n");
            c
        },
        STEP,
    )
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `program --data-dir DATA ARGS` without `--device-name`.
fn bare(program: &Path, data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.arg("--data-dir").arg(data).args(args);
    c
}

/// Runs `program args…` in terminal `name`, in folder `cwd`.
fn open_in(t: &Tmux, name: &str, cwd: &Path, program: &Path, args: &[&str]) {
    let mut a = vec![
        "-c",
        "cd \"$1\" && shift && exec \"$@\"",
        "sh",
        cwd.to_str().unwrap(),
        program.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    t.open(name, Path::new("/bin/sh"), &a);
}

/// Types `line` and returns the mark after its echo.
fn enter(t: &Tmux, name: &str, line: &str) -> usize {
    let mark = t.mark(name);
    t.type_line(name, line);
    let (at, _) = t.wait_for(name, mark, line.get(..40).unwrap_or(line), STEP);
    at + 1
}

/// The controller's invitation event (`link --json`) and its link.
fn link_of(ctrl: &mut Proc) -> String {
    let inv = ctrl.expect("invitation", STEP);
    inv["link"].as_str().unwrap().to_owned()
}

/// The controller's device name in a link (verified).
fn name_in(link: &str) -> Value {
    let inv = SignedInvitation::parse_verified(link).unwrap().invitation;
    inv.app["deviceName"].clone()
}

/// The host linked with `link` by script, accepting the code.
fn host_connects(data: &Path, link: &str) -> Proc {
    let mut h = Proc::spawn(
        "xrcp-host connect",
        host_cmd(data, &["connect", link, "--json", "--yes"]),
        LIFE,
    );
    h.expect("session_code", STEP);
    h.expect("connected", STEP);
    h
}

/// `/start remote host new` in the controller's terminal; the link.
fn start_new(t: &Tmux) -> String {
    let m = enter(t, "ctrl", "/start remote host new addr=127.0.0.1 iface=lo");
    let (at, _) = t.wait_for("ctrl", m, "Remote session invitation:", STEP);
    t.line_after("ctrl", at, STEP)
}

fn noise(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn get_never_replaces_a_file_and_takes_a_file_id() {
    let tmp = tempfile::tempdir().unwrap();
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let src = tmp.path().join("report.bin");
    let data = noise(100_000);
    std::fs::write(&src, &data).unwrap();
    // The user's own file of the same name, in the folder the controller runs in.
    std::fs::write(downloads.join("report.bin"), b"my own report").unwrap();

    let t = Tmux::new(tmp.path());
    open_in(
        &t,
        "ctrl",
        &downloads,
        &binaries().ctrl,
        &[
            "--data-dir",
            ctrl_dir.to_str().unwrap(),
            "--device-name",
            "desk",
        ],
    );
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", START);
    let link = start_new(&t);
    let mut h = host_connects(&host_dir, &link);
    t.wait_for("ctrl", 0, "remote host 1 connected", STEP);
    let m = enter(
        &t,
        "ctrl",
        &format!("/store remote file 1 {}", src.display()),
    );
    t.wait_for("ctrl", m, "file report.bin stored on remote host 1", STEP);
    let m = enter(&t, "ctrl", "/files");
    let (_, line) = t.wait_for("ctrl", m, "report.bin (", STEP);
    let file_id: i64 = line.split('.').next().unwrap().parse().unwrap();

    // By id: the name is taken, so the download gets the next free one and says so.
    let m = enter(&t, "ctrl", &format!("/get remote file 1 {file_id}"));
    let (_, line) = t.wait_for("ctrl", m, "file received: ", STEP);
    let first = downloads.join("report (1).bin");
    assert_eq!(
        line,
        format!(
            "file received: {} (report.bin already exists here; nothing was replaced)",
            first.display()
        )
    );
    assert_eq!(std::fs::read(&first).unwrap(), data);
    assert_eq!(
        std::fs::read(downloads.join("report.bin")).unwrap(),
        b"my own report",
        "the user's file is untouched"
    );

    // By JSON, as before: the next free name.
    let json = json!({"userId": 1, "fileId": file_id, "sent": false,
                      "fileSource": {"filePath": "report.bin"}});
    let m = enter(&t, "ctrl", &format!("/get remote file 1 {json}"));
    let (_, line) = t.wait_for("ctrl", m, "file received: ", STEP);
    let second = downloads.join("report (2).bin");
    assert!(
        line.starts_with(&format!("file received: {} (", second.display())),
        "{line}"
    );
    assert_eq!(std::fs::read(&second).unwrap(), data);

    // An id the host does not have: a plain error, nothing written.
    let m = enter(&t, "ctrl", "/get remote file 1 99");
    let (_, line) = t.wait_for("ctrl", m, "error", STEP);
    assert_eq!(
        line,
        "remote host 1 error: the host has no file 99: /files lists the ids"
    );
    let mut names: Vec<String> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["report (1).bin", "report (2).bin", "report.bin"]);
    t.type_line("ctrl", "/quit");
    assert_eq!(t.exit_status("ctrl", STEP), 0);
    h.wait(STEP);

    // The scripting mode: the id form too, and the same free-name rule.
    let mut c = Proc::spawn(
        "xrcp-ctrl connect",
        {
            let mut c = ctrl_cmd(
                &ctrl_dir,
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
            c.current_dir(&downloads);
            c
        },
        LIFE,
    );
    let link = link_of(&mut c);
    let _h = host_connects(&host_dir, &link);
    c.expect("session_code", STEP);
    c.expect("connected", STEP);
    c.send(&format!("/get remote file {file_id}"));
    let got = c.expect("file_received", STEP);
    let third = downloads.join("report (3).bin");
    assert_eq!(got["path"], third.to_str().unwrap());
    assert_eq!(std::fs::read(&third).unwrap(), data);
    c.close_stdin();
    assert_eq!(c.expect("stopped", STEP)["reason"], "eof");
    assert!(c.wait(STEP).success());
}

#[test]
fn quit_ends_link_mode_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let t = Tmux::new(tmp.path());
    t.open(
        "ctrl",
        &binaries().ctrl,
        &[
            "--data-dir",
            ctrl_dir.to_str().unwrap(),
            "--device-name",
            "desk",
            "link",
            "--no-qr",
            "--addr",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
        ],
    );
    let (at, _) = t.wait_for("ctrl", 0, "Remote session invitation:", START);
    let link = t.line_after("ctrl", at, STEP);
    let mut h = host_connects(&host_dir, &link);
    t.wait_for("ctrl", at, "remote host 1 connected", STEP);
    let m = enter(&t, "ctrl", "/notes");
    t.wait_for("ctrl", m, "no notes", STEP);
    assert_eq!(h.expect("command", STEP)["command"], "/notes");

    let m = enter(&t, "ctrl", "/quit");
    t.wait_for("ctrl", m, "remote host 1 stopped", STEP);
    assert_eq!(t.exit_status("ctrl", STEP), 0);
    // The host sees the controller leave (not a cut, and no `/quit` command).
    let ev = h.json(STEP);
    assert_eq!(ev["event"], "stopped", "{ev}");
    assert_eq!(ev["reason"], "disconnected", "{ev}");
    assert!(h.wait(STEP).success());

    // The JSON mode: `stopped` with reason `quit`, exit 0.
    let mut c = Proc::spawn(
        "xrcp-ctrl connect",
        ctrl_cmd(
            &ctrl_dir,
            &[
                "connect",
                "1",
                "--json",
                "--addr",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
            ],
        ),
        LIFE,
    );
    let link = link_of(&mut c);
    let mut h = host_connects(&host_dir, &link);
    c.expect("session_code", STEP);
    c.expect("connected", STEP);
    c.send("/quit");
    assert_eq!(c.expect("stopped", STEP)["reason"], "quit");
    assert!(c.wait(STEP).success());
    assert_eq!(h.expect("stopped", STEP)["reason"], "disconnected");
    assert!(h.wait(STEP).success());
}

#[test]
fn device_names_default_to_the_host_name_and_set_names_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let machine = machine_name();
    assert!(!machine.is_empty());
    let link_args = [
        "link",
        "--json",
        "--addr",
        "127.0.0.1",
        "--bind",
        "127.0.0.1",
    ];
    let ctrl_link = |extra: &[&str]| {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend_from_slice(&link_args);
        Proc::spawn(
            "xrcp-ctrl link",
            bare(&binaries().ctrl, &ctrl_dir, &args),
            LIFE,
        )
    };

    // No name given: both programs call themselves after the machine.
    let mut c = ctrl_link(&[]);
    let link = link_of(&mut c);
    assert_eq!(name_in(&link), machine.as_str());
    let mut h = Proc::spawn(
        "xrcp-host connect",
        bare(
            &binaries().host,
            &host_dir,
            &["connect", &link, "--json", "--yes"],
        ),
        LIFE,
    );
    h.expect("session_code", STEP);
    let connected = h.expect("connected", STEP);
    assert_eq!(connected["controller_device_name"], machine.as_str());
    c.expect("session_code", STEP);
    let connected = c.expect("connected", STEP);
    assert_eq!(connected["host_device_name"], machine.as_str());
    c.close_stdin();
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());

    // `/set device name` in each interactive mode, then quit.
    let t = Tmux::new(tmp.path());
    for (name, program, dir, new) in [
        ("ctrl", &binaries().ctrl, &ctrl_dir, "studio"),
        ("host", &binaries().host, &host_dir, "pocket"),
    ] {
        t.open(name, program, &["--data-dir", dir.to_str().unwrap()]);
        t.wait_for(name, 0, "/help for commands", START);
        let m = enter(&t, name, &format!("/set device name {new}"));
        let (_, line) = t.wait_for(name, m, "ok", STEP);
        assert_eq!(line, "ok");
        t.type_line(name, "/quit");
        assert_eq!(t.exit_status(name, STEP), 0);
        let settings = dir.join("settings.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&settings).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", settings.display());
        }
    }

    // The next starts use the names set; the host's shows on the controller.
    let mut c = ctrl_link(&[]);
    let link = link_of(&mut c);
    assert_eq!(name_in(&link), "studio");
    let mut h = Proc::spawn(
        "xrcp-host connect",
        bare(
            &binaries().host,
            &host_dir,
            &["connect", &link, "--json", "--yes"],
        ),
        LIFE,
    );
    h.expect("session_code", STEP);
    h.expect("connected", STEP);
    c.expect("session_code", STEP);
    assert_eq!(c.expect("connected", STEP)["host_device_name"], "pocket");
    c.close_stdin();
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());

    // `--device-name` still wins, for that run only.
    let mut c = ctrl_link(&["--device-name", "desk"]);
    assert_eq!(name_in(&link_of(&mut c)), "desk");
    drop(c);
    let mut c = ctrl_link(&[]);
    assert_eq!(name_in(&link_of(&mut c)), "studio");
}

/// A host paired with a controller (then both stopped), for `/find`.
fn paired_host(tmp: &Path) -> PathBuf {
    let (ctrl_dir, host_dir) = (tmp.join("ctrl"), tmp.join("host"));
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl_cmd(
            &ctrl_dir,
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
    let link = link_of(&mut c);
    let mut h = host_connects(&host_dir, &link);
    c.close_stdin();
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());
    host_dir
}

#[test]
fn find_says_where_it_listens_and_when_it_gives_up() {
    let tmp = tempfile::tempdir().unwrap();
    let host_dir = paired_host(tmp.path());
    let t = Tmux::new(tmp.path());
    t.open(
        "host",
        &binaries().host,
        &[
            "--data-dir",
            host_dir.to_str().unwrap(),
            "--device-name",
            "phone",
        ],
    );
    t.wait_for("host", 0, "xrcp-host: /help for commands", START);
    let m = enter(&t, "host", "/find remote ctrl timeout=2");
    // Needs a route for multicast (a default route will do), as finding controllers does.
    let (at, line) = t.wait_for("host", m, "listening for paired controllers on ", STEP);
    assert!(
        line.starts_with("listening for paired controllers on 224.0.0.251:5227 (")
            && line.ends_with(") for 2 s"),
        "{line}"
    );
    assert!(line.contains("interface "), "{line}");
    let (_, line) = t.wait_for("host", at + 1, "no paired controller found", STEP);
    assert!(
        line.starts_with("no paired controller found within 2 s.")
            && line.contains("/start remote host <id> multicast=on")
            && line.contains("/connect remote ctrl <link>"),
        "{line}"
    );
    assert!(
        t.lines("host")[m..].iter().all(|l| l != "ok"),
        "no `ok` before the search's outcome"
    );
    // The console is free again.
    let m = enter(&t, "host", "/list remote ctrls");
    t.wait_for("host", m, "1. desk", STEP);
    t.type_line("host", "/quit");
    assert_eq!(t.exit_status("host", STEP), 0);

    // `xrcp-host find` (text) says where it listens too.
    let out = run(host_cmd(&host_dir, &["find", "--timeout", "1"]), STEP).unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("listening for paired controllers on 224.0.0.251:5227 (interface ")
            && text.trim_end().ends_with(") for 1 s"),
        "{text}"
    );
}

/// `date -u` (an independent calendar) of `ts` in `format`.
fn date_of(ts: i64, format: &str) -> String {
    let mut c = Command::new("date");
    c.args(["-u", "-d", &format!("@{ts}"), &format!("+{format}")]);
    let out = run(c, STEP).unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn inspect_shows_the_timestamp_as_a_date() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl_cmd(
            &tmp.path().join("ctrl"),
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
    let link = link_of(&mut c);
    drop(c);
    let ts = SignedInvitation::parse_verified(&link)
        .unwrap()
        .invitation
        .ts;
    let inspect = |json: bool| {
        let mut cmd = Command::new(&binaries().host);
        cmd.arg("--data-dir")
            .arg(tmp.path().join("host"))
            .args(["inspect", &link]);
        if json {
            cmd.arg("--json");
        }
        let out = run(cmd, STEP).unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = inspect(false);
    let want = format!(
        "timestamp: {} UTC (just now)",
        date_of(ts, "%Y-%m-%d %H:%M:%S")
    );
    assert!(text.lines().any(|l| l == want), "{want:?} in\n{text}");
    let v: Value = serde_json::from_str(inspect(true).trim()).unwrap();
    assert_eq!(v["invitation"]["timestamp"], ts, "the number stays");
    assert_eq!(
        v["invitation"]["date"],
        date_of(ts, "%Y-%m-%dT%H:%M:%SZ").as_str()
    );
}

#[test]
fn the_progress_bar_shows_from_the_first_bytes() {
    const SIZE: usize = 16 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, noise(SIZE)).unwrap();
    let t = Tmux::new(tmp.path());
    open_in(
        &t,
        "ctrl",
        &downloads,
        &binaries().ctrl,
        &[
            "--data-dir",
            ctrl_dir.to_str().unwrap(),
            "--device-name",
            "desk",
        ],
    );
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", START);
    let m = enter(&t, "ctrl", "/start remote host new addr=127.0.0.1 iface=lo");
    let (at, line) = t.wait_for("ctrl", m, "started on 127.0.0.1:", STEP);
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    let link = t.line_after(
        "ctrl",
        t.wait_for("ctrl", at, "Remote session invitation:", STEP).0,
        STEP,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt
        .block_on(FaultProxy::start(([127, 0, 0, 1], port).into(), None))
        .unwrap();
    let via = proxy.addr().to_string();
    let mut h = Proc::spawn(
        "xrcp-host connect",
        host_cmd(
            &host_dir,
            &["connect", &link, "--json", "--yes", "--connect-via", &via],
        ),
        LIFE,
    );
    h.expect("session_code", STEP);
    h.expect("connected", STEP);
    t.wait_for("ctrl", at, "remote host 1 connected", STEP);
    let m = enter(
        &t,
        "ctrl",
        &format!("/store remote file 1 {}", big.display()),
    );
    t.wait_for("ctrl", m, "file big.bin stored on remote host 1", STEP);

    // The host's data stops after its first bytes: the bar is there, with what came and the
    // share of the whole, and no rate worked out from a fraction of a second.
    proxy.arm(Direction::ToServer, 512 << 10, Action::Stall);
    let get = r#"/get remote file 1 {"userId":1,"fileId":1,"sent":false,"fileSource":{"filePath":"big.bin"}}"#;
    let m = enter(&t, "ctrl", get);
    let end = std::time::Instant::now() + STEP;
    while proxy.fired().is_none() {
        assert!(
            std::time::Instant::now() < end,
            "the download did not stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, bar) = t.wait_for("ctrl", m, "/16.00 MiB", STEP);
    let shown = bar.split_whitespace().collect::<Vec<_>>();
    assert!(
        shown.iter().any(|w| w.ends_with('%')) && !bar.contains("/s") && !bar.contains(" 0 B/"),
        "{bar:?}"
    );
    rt.block_on(proxy.shutdown(Duration::from_secs(5))).unwrap();
    t.wait_for("ctrl", m, "remote host 1 error:", STEP);
}
