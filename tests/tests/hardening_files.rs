//! Crash leftovers, file modes and interrupted transfers (issue #12, findings 7–9), with the
//! two programs run as processes on loopback:
//!
//! - a host killed with SIGKILL mid-upload leaves no file under the upload's name, and its
//!   temporary file is removed at the next start; the controller reports the cut upload as
//!   an `error` event and exits non-zero;
//! - a download interrupted by Ctrl-C, or cut by the host's death, leaves no `.part` file and
//!   ends with an `error` event (JSON) or an error line (text), and a non-zero exit;
//! - under umask 000, everything both programs keep in their data directories is `0700`
//!   (folders) or `0600` (files, SQLite's `-wal`/`-shm` included), and an existing `0755`
//!   data directory is tightened;
//! - a paired host that lost its pairing is reported as such, with the way out.
//!
//! The host dials the controller through a [`FaultProxy`] that stalls the connection at a
//! chosen byte: the transfer is then provably in progress when the host is killed or the
//! user interrupts. Every program runs under a [`Proc`] guard (deadline, killed on drop).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use xrcp_tests::cli::{binaries, run, Proc};
use xrcp_tests::fault_proxy::{Action, Direction, FaultProxy};

/// Bound on each expected output line.
const STEP: Duration = Duration::from_secs(20);
/// Bound on each program's whole life.
const LIFE: Duration = Duration::from_secs(120);
/// Size of the file transferred: large enough that a stall after [`STALL_AFTER`] bytes
/// catches it mid-way.
const BIG: usize = 16 << 20;
const STALL_AFTER: u64 = 2 << 20;

use xrcp_tests::cli::ctrl_cmd as ctrl;

use xrcp_tests::cli::host_cmd as host;

/// `cmd` run with umask 000 (through `sh`, which sets it and then execs the program).
fn with_umask_000(cmd: &Command) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    c
}

/// Incompressible content (xorshift), so that the transfer really is `BIG` bytes on the wire.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Polls `what` until it holds, failing the test after `limit`.
fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A controller (`link --json`, in `downloads`) and a host (`connect --json --yes`) paired
/// and connected through a fault proxy.
struct Pair {
    rt: tokio::runtime::Runtime,
    proxy: Option<FaultProxy>,
    c: Proc,
    h: Proc,
    host_dir: PathBuf,
    downloads: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Pair {
    fn start(json: bool) -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
        let downloads = tmp.path().join("downloads");
        std::fs::create_dir(&downloads).unwrap();
        let mut args = vec!["link", "--addr", "127.0.0.1", "--bind", "127.0.0.1"];
        if json {
            args.push("--json");
        } else {
            args.push("--no-qr");
        }
        let mut cmd = ctrl(&ctrl_dir, &args);
        cmd.current_dir(&downloads);
        let mut c = Proc::spawn("xrcp-ctrl link", cmd, LIFE);
        let link = if json {
            c.expect("invitation", STEP)["link"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            loop {
                let l = c.line(STEP);
                if l.starts_with("xrcp:/") {
                    break l;
                }
            }
        };
        let port: u16 = link
            .split("@127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('#').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {link}"));
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
            host(
                &host_dir,
                &["connect", &link, "--json", "--yes", "--connect-via", &via],
            ),
            LIFE,
        );
        h.expect("session_code", STEP);
        h.expect("connected", STEP);
        if json {
            c.expect("session_code", STEP);
            c.expect("connected", STEP);
        } else {
            loop {
                if c.line(STEP).contains("connected") {
                    break;
                }
            }
        }
        Pair {
            rt,
            proxy: Some(proxy),
            c,
            h,
            host_dir,
            downloads,
            _tmp: tmp,
        }
    }

    fn proxy(&self) -> &FaultProxy {
        self.proxy.as_ref().unwrap()
    }

    /// Stalls the connection after `STALL_AFTER` more bytes in `direction`, runs `line`, and
    /// waits until the stall hit it.
    fn stall_during(&mut self, direction: Direction, line: &str) {
        self.proxy().arm(direction, STALL_AFTER, Action::Stall);
        self.c.send(line);
        wait_until(STEP, "the transfer reached the stall", || {
            self.proxy().fired().is_some()
        });
    }

    /// Ends every connection of the proxy (the controller sees its connection cut).
    fn cut(&mut self) {
        let proxy = self.proxy.take().unwrap();
        self.rt
            .block_on(proxy.shutdown(Duration::from_secs(5)))
            .unwrap();
    }

    fn files_dir(&self) -> PathBuf {
        self.host_dir.join("files")
    }
}

fn assert_cut_line_event(ev: &Value, line: &str, words: &str) {
    assert_eq!(ev["event"], "error", "{ev}");
    assert_eq!(ev["error"], "SESSION", "{ev}");
    assert_eq!(ev["command"], line, "{ev}");
    let msg = ev["message"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "{ev}");
}

/// Finding 7 (uploads) and 9 (`/store`): SIGKILL of the host mid-upload.
#[test]
fn host_killed_mid_upload_leaves_no_orphan_and_the_controller_reports_it() {
    let mut p = Pair::start(true);
    let big = p.downloads.join("big.bin");
    std::fs::write(&big, noise(BIG)).unwrap();
    let line = format!("/store remote file {}", big.display());
    p.stall_during(Direction::ToClient, &line);
    // The host has written part of the upload somewhere in its files folder.
    let files = p.files_dir();
    wait_until(STEP, "the host wrote part of the upload", || {
        std::fs::read_dir(&files)
            .unwrap()
            .any(|e| e.unwrap().metadata().unwrap().len() > 0)
    });
    p.h.signal("KILL");
    p.h.wait(STEP);
    let left = names(&files);
    assert!(
        !left.iter().any(|n| n == "big.bin"),
        "a killed upload left a file under its final name: {left:?}"
    );
    assert!(
        left.iter()
            .all(|n| n.starts_with(".upload-") && n.ends_with(".part")),
        "{left:?}"
    );

    // The controller sees its connection end mid-upload: an error event for the line, then
    // `stopped`, and a non-zero exit.
    p.cut();
    let ev = p.c.json(STEP);
    assert_cut_line_event(&ev, &line, "upload did not finish");
    let stopped = p.c.expect("stopped", STEP);
    assert_eq!(stopped["reason"], "disconnected");
    let status = p.c.wait(STEP);
    assert_eq!(status.code(), Some(1), "{status}");

    // The next start of the host removes the temporary file; the name is free again.
    let out = run(host(&p.host_dir, &["list", "--json"]), STEP).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(names(&files), Vec::<String>::new());
}

/// Findings 7 (`.part`) and 9 (`/get`, Ctrl-C): the user interrupts a download.
#[test]
fn ctrl_c_during_download_leaves_no_part_file_and_reports_it() {
    let mut p = Pair::start(true);
    let big = p.host_dir.join("big.bin");
    std::fs::write(&big, noise(BIG)).unwrap();
    p.c.send(&format!("/store remote file {}", big.display()));
    let stored = p.c.expect("file_stored", STEP);
    assert_eq!(stored["path"], "big.bin");
    let line = r#"/get remote file {"userId":1,"fileId":1,"sent":false,"fileSource":{"filePath":"big.bin"}}"#;
    p.stall_during(Direction::ToServer, line);
    let part = p.downloads.join("big.bin.part");
    wait_until(STEP, "the download's .part file exists", || part.exists());

    p.c.signal("INT");
    let ev = p.c.json(STEP);
    assert_cut_line_event(&ev, line, "interrupted by the user");
    let stopped = p.c.expect("stopped", STEP);
    assert_eq!(stopped["reason"], "interrupted");
    let status = p.c.wait(STEP);
    assert_eq!(status.code(), Some(130), "{status}");
    assert_eq!(names(&p.downloads), Vec::<String>::new());
}

/// Findings 7 (`.part`) and 9 (`/get`, text mode): the host dies mid-download.
#[test]
fn host_killed_mid_download_is_an_error_line_in_text_mode() {
    let mut p = Pair::start(false);
    let big = p.host_dir.join("big.bin");
    std::fs::write(&big, noise(BIG)).unwrap();
    p.c.send(&format!("/store remote file {}", big.display()));
    let l = p.c.line(STEP);
    assert!(l.contains("stored on remote host"), "{l}");
    let line = r#"/get remote file {"userId":1,"fileId":1,"sent":false,"fileSource":{"filePath":"big.bin"}}"#;
    p.stall_during(Direction::ToServer, line);
    let part = p.downloads.join("big.bin.part");
    wait_until(STEP, "the download's .part file exists", || part.exists());
    p.h.signal("KILL");
    p.h.wait(STEP);
    p.cut();
    let status = p.c.wait(STEP);
    assert_eq!(status.code(), Some(1), "{status}");
    let err = p.c.stderr();
    assert!(
        err.lines().any(|l| l.starts_with("error: ")
            && l.contains("download did not finish")
            && l.contains("connection to the host ended")),
        "{err}"
    );
    assert_eq!(names(&p.downloads), Vec::<String>::new());
}

/// Every entry under `dir` (recursively) with a mode other than 0700 (folders) or 0600.
fn loose_modes(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut bad = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
        if mode != 0o700 {
            bad.push(format!("{} {mode:o}", d.display()));
        }
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let mode = meta.permissions().mode() & 0o7777;
                if mode != 0o600 {
                    bad.push(format!("{} {mode:o}", e.path().display()));
                }
            }
        }
    }
    bad
}

/// Finding 8: under umask 000, with data directories an older build left `0755` (and a
/// `0644` notes database and stored file), everything is private once the programs run —
/// while they run (SQLite's `-wal`/`-shm` files exist then) and after they exit.
#[test]
fn data_directories_are_private_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let work = tmp.path().join("work");
    for d in [&ctrl_dir, &host_dir, &host_dir.join("files"), &work] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in [host_dir.join("notes.db"), host_dir.join("files/old.txt")] {
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let small = work.join("small.txt");
    std::fs::write(&small, b"hello").unwrap();

    let mut cmd = ctrl(
        &ctrl_dir,
        &[
            "link",
            "--json",
            "--addr",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
        ],
    );
    cmd.current_dir(&work);
    let mut c = Proc::spawn("xrcp-ctrl link", with_umask_000(&cmd), LIFE);
    let link = c.expect("invitation", STEP)["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut h = Proc::spawn(
        "xrcp-host connect",
        with_umask_000(&host(&host_dir, &["connect", &link, "--json", "--yes"])),
        LIFE,
    );
    h.expect("session_code", STEP);
    h.expect("connected", STEP);
    c.expect("session_code", STEP);
    c.expect("connected", STEP);
    c.send(&format!("/store remote file {}", small.display()));
    assert_eq!(c.expect("file_stored", STEP)["path"], "small.txt");
    c.send("/note written under umask 000");
    c.expect("response", STEP);

    // While both run: the WAL files of every database exist, and nothing is loose.
    for f in [
        ctrl_dir.join("xrcp-ctrl-pairings.db-wal"),
        host_dir.join("xrcp-host-pairings.db-wal"),
        host_dir.join("notes.db-wal"),
        host_dir.join("notes.db-shm"),
        host_dir.join("files/small.txt"),
    ] {
        assert!(f.exists(), "{} is missing", f.display());
    }
    let mut loose = loose_modes(&ctrl_dir);
    loose.extend(loose_modes(&host_dir));
    assert_eq!(
        loose,
        Vec::<String>::new(),
        "entries not private while running"
    );

    c.close_stdin();
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());
    let mut loose = loose_modes(&ctrl_dir);
    loose.extend(loose_modes(&host_dir));
    assert_eq!(
        loose,
        Vec::<String>::new(),
        "entries not private after exit"
    );
}

/// Finding 7 (pairing asymmetry): the host lost the pairing the controller keeps (reset, or
/// killed before saving it): `connect <id>` says so, with the commands that fix it.
#[test]
fn connect_to_a_host_that_lost_the_pairing_says_how_to_pair_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let listen = ["--addr", "127.0.0.1", "--bind", "127.0.0.1", "--json"];
    let session = |args: &[&str], host_dir: &Path| {
        let mut c = Proc::spawn("xrcp-ctrl", ctrl(&ctrl_dir, args), LIFE);
        let link = c.expect("invitation", STEP)["link"]
            .as_str()
            .unwrap()
            .to_owned();
        let h = Proc::spawn(
            "xrcp-host connect",
            host(host_dir, &["connect", &link, "--json", "--yes"]),
            LIFE,
        );
        (c, h)
    };

    // Pair, then end the session.
    let (mut c, mut h) = session(&[&["link"][..], &listen[..]].concat(), &host_dir);
    c.expect("session_code", STEP);
    c.expect("connected", STEP);
    h.expect("session_code", STEP);
    h.expect("connected", STEP);
    c.close_stdin();
    assert!(c.wait(STEP).success());
    h.wait(STEP);

    // The host forgets the controller; the controller still knows host 1.
    let out = run(host(&host_dir, &["delete", "1"]), STEP).unwrap();
    assert!(out.status.success(), "{out:?}");
    let (mut c, mut h) = session(
        &[&["connect", "1", "--timeout", "15"][..], &listen[..]].concat(),
        &host_dir,
    );
    // The host answers the link as a new controller's, with a new identity, which the
    // controller's TLS refuses (the host reports `IDENTITY`). The controller keeps waiting for
    // the paired host until its link's lifetime (here 15 s) ends, then says what happened.
    assert_eq!(h.expect("error", STEP)["error"], "IDENTITY");
    let ev = c.expect("error", Duration::from_secs(40));
    assert_eq!(ev["error"], "PAIRING_LOST", "{ev}");
    let msg = ev["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("host 1 no longer has this pairing")
            && msg.contains("xrcp-ctrl delete 1")
            && msg.contains("xrcp-ctrl link"),
        "{msg}"
    );
    assert!(!c.wait(STEP).success());
}

/// The program running in tmux terminal `name` (the child of the shell that tmux started).
fn pane_program_pid(t_socket: &Path, name: &str) -> u32 {
    let out = run(
        {
            let mut c = Command::new("tmux");
            c.arg("-S")
                .arg(t_socket)
                .args(["display-message", "-p", "-t", name, "#{pane_pid}"]);
            c
        },
        STEP,
    )
    .unwrap();
    let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    children
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no program under the shell of terminal {name}"))
        .parse()
        .unwrap()
}

/// Finding 9 in interactive mode: a download cut by the host's death is an error line in
/// plain words; a download interrupted by Ctrl-C is one too, then the program quits (130).
/// Neither leaves a `.part` file.
#[test]
fn interrupted_downloads_in_the_interactive_controller() {
    use xrcp_tests::cli::Tmux;
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    let (ctrl_dir, host_dir) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, noise(BIG)).unwrap();
    // The controller runs in `downloads` (through a shell that changes there first).
    t.open(
        "ctrl",
        Path::new("/bin/sh"),
        &[
            "-c",
            "cd \"$1\" && shift && exec \"$@\"",
            "sh",
            downloads.to_str().unwrap(),
            binaries().ctrl.to_str().unwrap(),
            "--data-dir",
            ctrl_dir.to_str().unwrap(),
        ],
    );
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", STEP);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let get = r#"/get remote file 1 {"userId":1,"fileId":1,"sent":false,"fileSource":{"filePath":"big.bin"}}"#;

    for round in 0..2 {
        let mark = t.mark("ctrl");
        let start = if round == 0 {
            "/start remote host new addr=127.0.0.1"
        } else {
            "/start remote host 1 addr=127.0.0.1"
        };
        t.type_line("ctrl", start);
        let (at, line) = t.wait_for("ctrl", mark, "started on 127.0.0.1:", STEP);
        let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
        let (at, _) = t.wait_for("ctrl", at, "Remote session invitation:", STEP);
        let link = t.line_after("ctrl", at, STEP);
        let proxy = rt
            .block_on(FaultProxy::start(([127, 0, 0, 1], port).into(), None))
            .unwrap();
        let via = proxy.addr().to_string();
        let mut h = Proc::spawn(
            "xrcp-host connect",
            host(
                &host_dir,
                &["connect", &link, "--json", "--yes", "--connect-via", &via],
            ),
            LIFE,
        );
        h.expect("session_code", STEP);
        h.expect("connected", STEP);
        let (at, _) = t.wait_for("ctrl", at, "remote host 1 connected", STEP);
        if round == 0 {
            t.type_line("ctrl", &format!("/store remote file 1 {}", big.display()));
            t.wait_for("ctrl", at, "file big.bin stored on remote host 1", STEP);
        }
        let mark = t.mark("ctrl");
        proxy.arm(Direction::ToServer, STALL_AFTER, Action::Stall);
        t.type_line("ctrl", get);
        wait_until(STEP, "the download reached the stall", || {
            proxy.fired().is_some()
        });
        let part = downloads.join("big.bin.part");
        wait_until(STEP, "the download's .part file exists", || part.exists());
        if round == 0 {
            // The host dies; the connection is cut.
            h.signal("KILL");
            h.wait(STEP);
            rt.block_on(proxy.shutdown(Duration::from_secs(5))).unwrap();
            let (_, line) = t.wait_for("ctrl", mark, "remote host 1 error:", STEP);
            assert!(
                line.contains("the download did not finish, nothing was saved")
                    && line.contains("the connection to the host ended"),
                "{line}"
            );
            t.wait_for("ctrl", mark, "remote host 1 stopped", STEP);
        } else {
            // The user presses Ctrl-C (SIGINT to the controller alone: the shell around it
            // in the terminal would die of it and take the exit status with it).
            let pid = pane_program_pid(&tmp.path().join("tmux.sock"), "ctrl");
            let status = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let (_, line) = t.wait_for("ctrl", mark, "remote host 1 error:", STEP);
            assert!(
                line.contains("the download was interrupted, nothing was saved"),
                "{line}"
            );
            assert_eq!(t.exit_status("ctrl", STEP), 130);
            rt.block_on(proxy.shutdown(Duration::from_secs(5))).unwrap();
        }
        assert_eq!(names(&downloads), Vec::<String>::new());
    }
}

/// Issue 16: a `/get` sends the digest the host recorded when the upload was verified, and
/// does not hash the file again. A stored file damaged on disk (same size, one byte changed)
/// therefore reaches the controller with the digest of what was uploaded, and the controller
/// refuses it (`RPEFileDigest`) and keeps nothing. A host that re-hashed the file for every
/// download would announce the damaged bytes' digest and the download would succeed.
#[test]
fn a_stored_file_damaged_on_disk_is_refused_on_download() {
    let mut p = Pair::start(true);
    let src = p.host_dir.join("small.bin");
    let data = noise(200_000);
    std::fs::write(&src, &data).unwrap();
    p.c.send(&format!("/store remote file {}", src.display()));
    let stored = p.c.expect("file_stored", STEP);
    assert_eq!(stored["path"], "small.bin");
    let on_disk = p.files_dir().join("small.bin");
    assert_eq!(std::fs::read(&on_disk).unwrap(), data);

    // A download of the intact file works (and gives the same bytes).
    let line = r#"/get remote file {"userId":1,"fileId":1,"sent":false,"fileSource":{"filePath":"small.bin"}}"#;
    p.c.send(line);
    let got = p.c.expect("file_received", STEP);
    let path = PathBuf::from(got["path"].as_str().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), data);
    std::fs::remove_file(&path).unwrap();

    let mut damaged = data.clone();
    damaged[100_000] ^= 0x20;
    std::fs::write(&on_disk, &damaged).unwrap();
    p.c.send(line);
    let ev = p.c.json(STEP);
    assert_eq!(ev["event"], "error", "{ev}");
    assert_eq!(ev["command"], line, "{ev}");
    assert!(ev.to_string().contains("fileDigest"), "{ev}");
    assert_eq!(names(&p.downloads), Vec::<String>::new());
}
