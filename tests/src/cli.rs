//! Helpers for the tests that run the `xrcp-ctrl` and `xrcp-host` programs
//! (`tests/tests/cli_*.rs`).
//!
//! # Where the binaries come from
//!
//! Cargo only gives an integration test the paths of its *own* package's binaries
//! (`CARGO_BIN_EXE_<name>`), and `xrcp-ctrl`/`xrcp-host` belong to other packages. Wrapping
//! them in `[[bin]]` targets of this package would produce a second `xrcp-ctrl` in the same
//! output directory (a file name collision) and test a different artifact. So [`binaries`]
//! runs `cargo build --workspace --bins --tests` once per test process, with the cargo that
//! runs the tests (`$CARGO`), from the workspace root, with the profile of the running test
//! (`debug` → dev, `release` → `--release`, other → `--profile`) and without the variables
//! cargo set for this crate, and takes the executables' paths from cargo's JSON messages.
//! After `cargo test --workspace` every unit of that build is already there, with the same
//! features, except the two programs: it only links them (seconds), and then finds them
//! fresh. It shares the target directory and its lock (`cargo test` has released it by the
//! time tests run). If another member does not compile, it falls back to
//! `cargo build -p xrcp-ctrl -p xrcp-host --bins`. `XRCP_BIN_DIR=<dir>` skips the build and
//! uses `<dir>/xrcp-ctrl` and `<dir>/xrcp-host` (e.g. installed programs).
//!
//! # Processes
//!
//! [`Proc`] owns one child: stdin piped, stdout read line by line by a thread, stderr
//! collected. A watchdog kills the child at its deadline; every wait has its own timeout;
//! dropping the guard kills and reaps the child. When a test fails, each guard prints its
//! program's whole transcript. [`Tmux`] runs the interactive programs on a private tmux
//! server (real terminals), killed with them on drop. [`run`] runs a short command to
//! completion with a time limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Paths of the two programs under test.
#[derive(Debug)]
pub struct Binaries {
    pub ctrl: PathBuf,
    pub host: PathBuf,
}

/// The programs, built on first use (see the module docs).
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| locate().unwrap_or_else(|e| panic!("cannot get the CLI binaries: {e}")))
}

fn locate() -> Result<Binaries, String> {
    if let Some(dir) = std::env::var_os("XRCP_BIN_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let bins = Binaries {
            ctrl: dir.join("xrcp-ctrl"),
            host: dir.join("xrcp-host"),
        };
        for p in [&bins.ctrl, &bins.host] {
            if !p.is_file() {
                return Err(format!("XRCP_BIN_DIR: {} does not exist", p.display()));
            }
        }
        return Ok(bins);
    }
    // `cargo test` sets CARGO_MANIFEST_DIR for the running test too (this package's
    // folder); the compile-time value is the fallback for a test binary run by hand.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = manifest_dir.parent().ok_or("no workspace root")?;
    let started = Instant::now();
    // The whole workspace's binaries and tests: the same units, with the same unified
    // features, as `cargo test --workspace` (CI) built, so only the two programs are linked.
    // Building just the two packages would resolve features differently and compile most of
    // the dependency graph a second time. If another member does not compile, fall back to
    // the two packages alone.
    let bins = cargo_build(root, &["--workspace", "--bins", "--tests"]).or_else(|first| {
        cargo_build(root, &["-p", "xrcp-ctrl", "-p", "xrcp-host", "--bins"])
            .map_err(|second| format!("{first}\n{second}"))
    })?;
    eprintln!("cli binaries ready in {:?}", started.elapsed());
    Ok(bins)
}

/// `cargo build <args>` in the workspace with the running test's profile; the paths of the
/// `xrcp-ctrl` and `xrcp-host` executables it reports.
fn cargo_build(root: &Path, args: &[&str]) -> Result<Binaries, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics");
    match test_profile_dir().as_deref() {
        None | Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    // `cargo test` gives this process the variables it sets for a crate (CARGO_MANIFEST_DIR,
    // CARGO_PKG_NAME, …). Build scripts that track them (ring's does) would see them change
    // and rebuild, here and in every later build: the inner cargo must not inherit them.
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str() {
            if is_cargo_crate_variable(k) {
                cmd.env_remove(k);
            }
        }
    }
    let out = run(cmd, Duration::from_secs(900))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (mut ctrl, mut host) = (None, None);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        // The programs themselves, not their unit-test harnesses.
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != false {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        match msg["target"]["name"].as_str() {
            Some("xrcp-ctrl") => ctrl = Some(PathBuf::from(exe)),
            Some("xrcp-host") => host = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok(Binaries {
        ctrl: ctrl.ok_or("cargo reported no xrcp-ctrl executable")?,
        host: host.ok_or("cargo reported no xrcp-host executable")?,
    })
}

/// Whether cargo sets `key` for the crate it builds or runs (not a user's setting).
fn is_cargo_crate_variable(key: &str) -> bool {
    matches!(
        key,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_MANIFEST_LINKS"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
            | "CARGO_TARGET_TMPDIR"
            | "CARGO_RUSTC_CURRENT_DIR"
            | "OUT_DIR"
    ) || [
        "CARGO_PKG_",
        "CARGO_BIN_EXE_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// The name of the profile directory the running test was built into
/// (`target/<profile>/deps/<test>`).
fn test_profile_dir() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.file_name()?.to_str()?.to_owned())
}

/// Runs a command to completion with a time limit; its stdin is empty.
pub fn run(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: still running after {limit:?}; killed"));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The stdout lines of a finished program as JSON objects.
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

/// A running program; killed and reaped when dropped, or when its deadline passes.
pub struct Proc {
    name: String,
    child: Arc<Mutex<Child>>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stop_watchdog: Option<mpsc::Sender<()>>,
    deadline: Instant,
}

impl Proc {
    /// Starts `cmd` (stdin, stdout and stderr are taken over); it is killed after `limit`.
    pub fn spawn(name: &str, mut cmd: Command, limit: Duration) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                let mut r = BufReader::new(out);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                            if tx.send(line).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let child = Arc::new(Mutex::new(child));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let watched = Arc::clone(&child);
        let watchdog_name = name.to_owned();
        thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(limit) {
                let mut c = watched.lock().unwrap_or_else(PoisonError::into_inner);
                if let Ok(None) = c.try_wait() {
                    eprintln!("{watchdog_name}: still running after {limit:?}; killed");
                    let _ = c.kill();
                }
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
            stop_watchdog: Some(stop_tx),
            deadline: Instant::now() + limit,
        }
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id()
    }

    /// Everything the program printed so far, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            self.seen.join("\n"),
            self.name,
            self.stderr()
        )
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes one line to the program's stdin.
    pub fn send(&mut self, line: &str) {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!("{name}: writing {line:?}: {e}");
        }
    }

    /// Sends the program a signal by name (`"KILL"`, `"INT"`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("{}: kill -{signal}: {e}", self.name));
        assert!(status.success(), "{}: kill -{signal}: {status}", self.name);
    }

    /// Closes stdin (EOF for the program).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn bounded(&self, timeout: Duration) -> Duration {
        timeout.min(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// The next stdout line, or `None` at EOF or after `timeout`.
    pub fn try_line(&mut self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(self.bounded(timeout)) {
            Ok(l) => {
                self.seen.push(l.clone());
                Some(l)
            }
            Err(_) => None,
        }
    }

    /// The next stdout line; fails the test at EOF or after `timeout`.
    pub fn line(&mut self, timeout: Duration) -> String {
        match self.try_line(timeout) {
            Some(l) => l,
            None => panic!("{}: no more output within {timeout:?}", self.name),
        }
    }

    /// The next stdout line as JSON.
    pub fn json(&mut self, timeout: Duration) -> Value {
        let line = self.line(timeout);
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {line:?}", self.name))
    }

    /// The next stdout line, which must be the JSON event `event`.
    pub fn expect(&mut self, event: &str, timeout: Duration) -> Value {
        let v = self.json(timeout);
        if v["event"] != event {
            panic!("{}: expected the {event:?} event, got {v}", self.name);
        }
        v
    }

    /// Waits for the program to exit (the rest of stdout is read into the transcript).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + self.bounded(timeout);
        loop {
            let status = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait();
            match status {
                Ok(Some(s)) => {
                    while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                        self.seen.push(l);
                    }
                    return s;
                }
                Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
                Ok(None) => panic!("{}: still running after {timeout:?}", self.name),
                Err(e) => panic!("{}: {e}", self.name),
            }
        }
    }

    /// Lines printed after the last one read (for checking that nothing more came).
    pub fn rest(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l.clone());
            out.push(l);
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        self.stop_watchdog = None;
        let mut c = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(None) = c.try_wait() {
            let _ = c.kill();
        }
        let _ = c.wait();
        drop(c);
        if thread::panicking() {
            // The test failed: show what this program said.
            while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l);
            }
            eprintln!("{}", self.transcript());
        }
    }
}

/// A private tmux server (socket in a test directory) whose sessions run the interactive
/// programs in real terminals. Killed, with everything it runs, on drop.
pub struct Tmux {
    socket: PathBuf,
    config: PathBuf,
}

/// Each tmux client call's limit.
const TMUX_STEP: Duration = Duration::from_secs(10);

impl Tmux {
    /// A server with its socket and configuration in `dir`. Fails the test with a clear
    /// message when tmux is not installed.
    pub fn new(dir: &Path) -> Tmux {
        let config = dir.join("tmux.conf");
        std::fs::write(
            &config,
            "set -g history-limit 20000\nset -g remain-on-exit on\nset -g status off\n",
        )
        .expect("tmux config");
        let t = Tmux {
            socket: dir.join("tmux.sock"),
            config,
        };
        let out = run(t.command(&["-V"]), TMUX_STEP).unwrap_or_else(|e| {
            panic!("tmux is needed for this test (Debian: apt-get install tmux): {e}")
        });
        assert!(out.status.success(), "tmux -V failed");
        t
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .env("TERM", "xterm-256color");
        cmd
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = run(self.command(args), TMUX_STEP).unwrap_or_else(|e| panic!("tmux: {e}"));
        if !out.status.success() {
            panic!(
                "tmux {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `program args…` in a new 250×50 terminal named `name`. A shell around it
    /// prints its exit status when it ends (tmux's own `pane_dead_status` is unreliable: tmux
    /// sometimes leaves an exited program unreaped for seconds).
    pub fn open(&self, name: &str, program: &Path, args: &[&str]) {
        self.open_sized(name, (250, 50), program, args);
    }

    /// [`Tmux::open`] in a terminal of `size` (columns, rows).
    pub fn open_sized(&self, name: &str, size: (u16, u16), program: &Path, args: &[&str]) {
        let program = program.to_str().expect("UTF-8 path");
        let (columns, rows) = (size.0.to_string(), size.1.to_string());
        let script = format!(r#""$0" "$@"; echo "{EXIT_MARK}$?]""#);
        let mut a = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &columns,
            "-y",
            &rows,
            "--",
            "sh",
            "-c",
            &script,
            program,
        ];
        a.extend_from_slice(args);
        self.tmux(&a);
    }

    /// Types `text` and Enter.
    pub fn type_line(&self, name: &str, text: &str) {
        self.tmux(&["send-keys", "-t", name, "-l", "--", text]);
        self.tmux(&["send-keys", "-t", name, "Enter"]);
    }

    /// Types `text` without Enter.
    pub fn type_text(&self, name: &str, text: &str) {
        self.tmux(&["send-keys", "-t", name, "-l", "--", text]);
    }

    /// Presses keys by their tmux names (`Up`, `Left`, `Tab`, `Enter`, `C-c`…).
    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", name];
        a.extend_from_slice(keys);
        self.tmux(&a);
    }

    /// Presses Ctrl-D (EOF on the terminal).
    pub fn ctrl_d(&self, name: &str) {
        self.tmux(&["send-keys", "-t", name, "C-d"]);
    }

    /// Every line of the terminal, history included, with wrapped lines joined.
    pub fn lines(&self, name: &str) -> Vec<String> {
        let text = self.tmux(&["capture-pane", "-p", "-J", "-t", name, "-S", "-", "-E", "-"]);
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// What the terminal shows now (no history), one string per screen row, not joined.
    pub fn screen(&self, name: &str) -> Vec<String> {
        let text = self.tmux(&["capture-pane", "-p", "-t", name]);
        text.lines().map(str::to_owned).collect()
    }

    /// A position in the terminal's output: later waits look only at lines after it.
    pub fn mark(&self, name: &str) -> usize {
        self.lines(name).len()
    }

    /// Waits for a line after `mark` that contains `needle`; returns it and its position.
    pub fn wait_for(
        &self,
        name: &str,
        mark: usize,
        needle: &str,
        timeout: Duration,
    ) -> (usize, String) {
        let end = Instant::now() + timeout;
        loop {
            let lines = self.lines(name);
            if let Some((i, l)) = lines
                .iter()
                .enumerate()
                .skip(mark)
                .find(|(_, l)| l.contains(needle))
            {
                return (i, l.clone());
            }
            if Instant::now() >= end {
                panic!(
                    "terminal {name}: no line containing {needle:?} after line {mark} within {timeout:?}\n--- screen ---\n{}",
                    lines.join("\n")
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The line right after line `at` (waits for it).
    pub fn line_after(&self, name: &str, at: usize, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let lines = self.lines(name);
            if let Some(l) = lines.get(at + 1) {
                return l.clone();
            }
            if Instant::now() >= end {
                panic!(
                    "terminal {name}: nothing after line {at}\n{}",
                    lines.join("\n")
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status of the program in `name`, once it ended.
    pub fn exit_status(&self, name: &str, timeout: Duration) -> i32 {
        let (_, line) = self.wait_for(name, 0, EXIT_MARK, timeout);
        line.trim_start_matches(EXIT_MARK)
            .trim_end_matches(']')
            .parse()
            .unwrap_or_else(|_| panic!("terminal {name}: {line:?}"))
    }
}

/// What the shell around a program in a [`Tmux`] terminal prints before its exit status.
const EXIT_MARK: &str = "[xrcp-test: exit status ";

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = run(self.command(&["kill-server"]), TMUX_STEP);
    }
}

/// `xrcp-ctrl --data-dir DATA --device-name desk ARGS`: the controller as the CLI tests run it.
pub fn ctrl_cmd(data: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(&binaries().ctrl);
    c.arg("--data-dir")
        .arg(data)
        .args(["--device-name", "desk"])
        .args(args);
    c
}

/// `xrcp-host --data-dir DATA --device-name phone ARGS`: the host as the CLI tests run it.
pub fn host_cmd(data: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(&binaries().host);
    c.arg("--data-dir")
        .arg(data)
        .args(["--device-name", "phone"])
        .args(args);
    c
}
