//! One run of the implementation under test: a child process whose stdout carries one JSON
//! event per line (the scripting contract of `xrcp-ctrl` / `xrcp-host`).
//!
//! The command is run as `sh -c 'exec CMD "$@"' iut ARGS...`, so `CMD` may be a path or a
//! path with its own leading arguments, and the process we hold (and kill) is the IUT
//! itself. Every wait takes a deadline; a child still running when its [`Iut`] is dropped is
//! killed.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{bail, Res};

/// Lines of stderr kept for failure messages.
const STDERR_KEPT: usize = 20;

pub(crate) struct Iut {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::UnboundedReceiver<Value>,
    /// Events read by [`Iut::watch`] and not yet handed out by [`Iut::next`].
    pending: VecDeque<Value>,
    /// Every event received, in order.
    log: Vec<Value>,
    eof: bool,
    status: Option<ExitStatus>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Lines on stdout that are not JSON objects (a contract violation worth reporting).
    noise: Arc<Mutex<Vec<String>>>,
}

/// The `event` member of an event line.
pub(crate) fn kind_of(v: &Value) -> &str {
    v.get("event").and_then(Value::as_str).unwrap_or("")
}

/// The `error` member of an `error` event.
pub(crate) fn error_of(v: &Value) -> String {
    match v.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".into(),
    }
}

/// Whether an exit status is a crash: killed by a signal, or Rust's panic status.
pub(crate) fn crash(status: &ExitStatus) -> Option<String> {
    if let Some(sig) = status.signal() {
        return Some(format!("killed by signal {sig}"));
    }
    match status.code() {
        Some(101) => Some("panicked (exit status 101)".into()),
        Some(c) if c >= 128 => Some(format!("exit status {c} (a crash)")),
        _ => None,
    }
}

impl Iut {
    /// Starts `cmd args...` with piped stdin, stdout and stderr.
    pub(crate) fn spawn(cmd: &str, args: &[&str]) -> Res<Iut> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("exec {cmd} \"$@\""))
            .arg("iut")
            .args(args)
            .env_remove("XRCP_CTRL_DATA_DIR")
            .env_remove("XRCP_HOST_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {cmd}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;

        // XRCP_CONFORMANCE_DEBUG=1 echoes the IUT's output on the runner's stderr.
        let debug = std::env::var_os("XRCP_CONFORMANCE_DEBUG").is_some_and(|v| v != "0");
        let pid = child.id().unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        let noise = Arc::new(Mutex::new(Vec::new()));
        let noise_w = noise.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if debug {
                    eprintln!("[iut {pid} stdout] {line}");
                }
                let trimmed = line.trim();
                if trimmed.is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(v) if v.is_object() => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    _ => noise_w
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line),
                }
            }
        });
        let kept = Arc::new(Mutex::new(VecDeque::new()));
        let kept_w = kept.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if debug {
                    eprintln!("[iut {pid} stderr] {line}");
                }
                let mut k = kept_w.lock().unwrap_or_else(PoisonError::into_inner);
                if k.len() == STDERR_KEPT {
                    k.pop_front();
                }
                k.push_back(line);
            }
        });
        Ok(Iut {
            child,
            stdin,
            rx,
            pending: VecDeque::new(),
            log: Vec::new(),
            eof: false,
            status: None,
            stderr: kept,
            noise,
        })
    }

    /// Every event received so far.
    pub(crate) fn log(&self) -> &[Value] {
        &self.log
    }

    /// Whether an event of this kind was received.
    pub(crate) fn saw(&self, kind: &str) -> bool {
        self.log.iter().any(|v| kind_of(v) == kind)
    }

    /// The last stderr line, for failure messages (empty if none).
    pub(crate) fn stderr_tail(&self) -> String {
        let k = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        match k.back() {
            Some(l) => {
                let l: String = l.chars().take(300).collect();
                format!(" [IUT stderr: {l}]")
            }
            None => String::new(),
        }
    }

    /// Non-JSON stdout lines (the contract allows none in `--json` mode).
    pub(crate) fn noise(&self) -> Vec<String> {
        self.noise
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn recv(&mut self) -> Option<Value> {
        if self.eof {
            return None;
        }
        match self.rx.recv().await {
            Some(v) => {
                self.log.push(v.clone());
                Some(v)
            }
            None => {
                self.eof = true;
                None
            }
        }
    }

    /// Takes the events already received without waiting (they stay queued for
    /// [`Iut::next`] and are visible to [`Iut::saw`]).
    pub(crate) fn drain_ready(&mut self) {
        while !self.eof {
            match self.rx.try_recv() {
                Ok(v) => {
                    self.log.push(v.clone());
                    self.pending.push_back(v);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.eof = true,
            }
        }
    }

    /// The next event; `None` once stdout has ended. Fails at the deadline.
    pub(crate) async fn next(&mut self, until: Instant) -> Res<Option<Value>> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(Some(v));
        }
        match tokio::time::timeout_at(until, self.recv()).await {
            Ok(v) => Ok(v),
            Err(_) => bail!(
                "timed out waiting for the IUT's next event{}",
                self.stderr_tail()
            ),
        }
    }

    /// Waits (without deadline: race it against the step it guards) until the IUT reports
    /// an error or its output ends, and says which. Other events are kept for [`Iut::next`].
    pub(crate) async fn watch(&mut self) -> String {
        loop {
            match self.recv().await {
                Some(v) => {
                    let is_error = kind_of(&v) == "error";
                    let text = format!(
                        "the IUT reported error {} ({})",
                        error_of(&v),
                        v.get("message").and_then(Value::as_str).unwrap_or("")
                    );
                    self.pending.push_back(v);
                    if is_error {
                        return text;
                    }
                }
                None => {
                    let status = match self.child.try_wait() {
                        Ok(Some(s)) => format!(" ({s})"),
                        _ => String::new(),
                    };
                    return format!("the IUT's output ended{status}{}", self.stderr_tail());
                }
            }
        }
    }

    /// Waits for an event of `kind`; an `error` event or the end of output first is a
    /// failure.
    pub(crate) async fn expect(&mut self, kind: &str, until: Instant) -> Res<Value> {
        loop {
            match self.next(until).await {
                Ok(Some(v)) if kind_of(&v) == kind => return Ok(v),
                Ok(Some(v)) if kind_of(&v) == "error" => bail!(
                    "the IUT reported error {} ({}) while the runner waited for `{kind}`{}",
                    error_of(&v),
                    v.get("message").and_then(Value::as_str).unwrap_or(""),
                    self.stderr_tail()
                ),
                Ok(Some(_)) => continue,
                Ok(None) => bail!(
                    "the IUT's output ended before `{kind}`{}",
                    self.stderr_tail()
                ),
                Err(_) => bail!("no `{kind}` event in time{}", self.stderr_tail()),
            }
        }
    }

    /// Waits for an `error` event and returns its kind; a `connected` event first, or the
    /// end of output, is a failure.
    pub(crate) async fn expect_error(&mut self, until: Instant) -> Res<(String, Value)> {
        loop {
            match self.next(until).await {
                Ok(Some(v)) if kind_of(&v) == "error" => return Ok((error_of(&v), v)),
                Ok(Some(v)) if kind_of(&v) == "connected" => {
                    bail!("the IUT connected ({v}) where it must refuse")
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    let status = self.wait_exit(until).await.ok();
                    bail!(
                        "the IUT ended without an `error` event (exit: {}){}",
                        status.map(|s| s.to_string()).unwrap_or("?".into()),
                        self.stderr_tail()
                    )
                }
                Err(_) => bail!("no `error` event in time{}", self.stderr_tail()),
            }
        }
    }

    /// Waits for the event that ends a session, `stopped` or `error`.
    pub(crate) async fn expect_end(&mut self, until: Instant) -> Res<Value> {
        loop {
            match self.next(until).await {
                Ok(Some(v)) if matches!(kind_of(&v), "stopped" | "error") => return Ok(v),
                Ok(Some(_)) => continue,
                Ok(None) => bail!(
                    "the IUT's output ended without `stopped` or `error`{}",
                    self.stderr_tail()
                ),
                Err(_) => bail!(
                    "the session did not end: no `stopped` or `error` event in time{}",
                    self.stderr_tail()
                ),
            }
        }
    }

    /// Writes one line to the IUT's stdin.
    pub(crate) async fn send_line(&mut self, line: &str) -> Res<()> {
        let stdin = self.stdin.as_mut().ok_or("the IUT's stdin is closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("writing to the IUT's stdin: {e}"))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the IUT's stdin: {e}"))?;
        Ok(())
    }

    /// Ends the IUT's stdin (EOF).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the process has exited (non-blocking).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for the process to exit and reads the rest of its output; kills it at the
    /// deadline (a hang is a failure).
    pub(crate) async fn wait_exit(&mut self, until: Instant) -> Res<ExitStatus> {
        let status = match self.status {
            Some(s) => s,
            None => match tokio::time::timeout_at(until, self.child.wait()).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => bail!("waiting for the IUT: {e}"),
                Err(_) => {
                    let _ = self.child.kill().await;
                    bail!(
                        "the IUT did not exit in time (killed){}",
                        self.stderr_tail()
                    )
                }
            },
        };
        self.status = Some(status);
        // The stdout reader ends right after the process; collect what it still holds.
        let drain_until = Instant::now() + Duration::from_secs(2);
        while !self.eof {
            match tokio::time::timeout_at(drain_until, self.recv()).await {
                Ok(Some(v)) => self.pending.push_back(v),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(status)
    }

    /// Waits for the exit and checks it was not a crash.
    pub(crate) async fn exit_no_crash(&mut self, until: Instant) -> Res<ExitStatus> {
        let status = self.wait_exit(until).await?;
        if let Some(c) = crash(&status) {
            bail!("the IUT crashed: {c}{}", self.stderr_tail());
        }
        Ok(status)
    }

    /// Waits up to `grace` for the process to exit by itself (stdin still open).
    pub(crate) async fn exits_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            if let Ok(Ok(s)) = tokio::time::timeout(grace, self.child.wait()).await {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Waits for the exit of an IUT whose session is over; a crash or a hang is a failure.
    /// Its stdin is closed after 500 ms: whether it exits without that is checked only by
    /// the `*-exit-after-disconnect` scenarios, so other scenarios do not fail for it.
    pub(crate) async fn end(&mut self, until: Instant) -> Res<ExitStatus> {
        if self
            .exits_within(Duration::from_millis(500))
            .await
            .is_none()
        {
            self.close_stdin();
        }
        self.exit_no_crash(until).await
    }

    /// After `stopped`: the process must exit by itself within 5 s while its stdin stays
    /// open (a driver may keep it open, e.g. for `/stop remote ctrl`).
    pub(crate) async fn check_exits_with_stdin_open(&mut self, until: Instant) -> Res<ExitStatus> {
        if let Some(s) = self.exits_within(Duration::from_secs(5)).await {
            if let Some(c) = crash(&s) {
                bail!("the IUT crashed: {c}{}", self.stderr_tail());
            }
            return Ok(s);
        }
        self.close_stdin();
        match self.exits_within(Duration::from_secs(5)).await {
            Some(s) => bail!(
                "the IUT printed `stopped` but stayed alive while its stdin was open; it exited ({s}) only once stdin was closed"
            ),
            None => {
                let _ = self.wait_exit(until.min(Instant::now())).await;
                bail!("the IUT printed `stopped` but never exited (killed)")
            }
        }
    }
}
