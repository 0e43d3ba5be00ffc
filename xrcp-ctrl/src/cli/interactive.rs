//! Interactive mode: the SimpleX controller commands with the SimpleX texts
//! (`/start remote host new`, `/list remote hosts`, `/switch remote host 1`, …). Any other
//! line goes to the current remote host as a command.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xrcp::console::{self, Input};
use xrcp::display::{escape, Escaped};
use xrcp::session::{RRResult, RemoteFile, RemoteProtocolError};

use super::setup::{
    contested_line, establish, relayed_lines, withdrawn_line, Context, Progress, Target,
};
use super::{parse_advertise, parse_bind};
use super::{qr, Listen};
use crate::error::RemoteHostError;
use crate::session::RemoteHostClient;
use crate::store::Binding;

// Every line of this mode goes through the line editor's printer ([`xrcp::console::say`]):
// a line printed while the user types (a host's event, a session's progress) appears above
// the input line, and what was typed stays intact.
macro_rules! println {
    () => {
        console::say("")
    };
    ($($arg:tt)*) => {
        console::say(&format!($($arg)*))
    };
}

/// Files larger than this get a progress bar.
const PROGRESS_BAR_MIN: u64 = 4 << 20;

const HELP: &str = "\
Controller commands:
  /start remote host new [addr=<ip> iface=<name>] [port=<n>]   link a new host (shows a link and QR code)
      [advertise=<host>[:<port>]] [bind=<ip>[:<port>]]       link through a relay or port forward
  /start remote host <id> [multicast=on|off] [addr=…] [port=…]  connect a paired host again
  /list remote hosts                                          paired hosts and their state
  /switch remote host local|<id>                              where other input goes
  /stop remote host new|<id>                                  end a session
  /delete remote host <id>                                    forget a host
  /store remote file <id> [encrypt=on|off] <path>             upload a file to a host
  /get remote file <id> <json>                                download a host's file
  /set device name <name>                                     the name hosts see
  /help                                                       this list
  /quit                                                       end all sessions and leave (or Ctrl-D)
Any other input is sent to the current remote host, whose notes app knows
/notes, /note <text>, /delete note <id>, /files and /delete file <id>.
Up and Down recall earlier lines, Ctrl-R searches them, Tab completes a command.";

/// What Tab completes: this program's commands and the notes app's (sent to the host).
const COMMANDS: &[&str] = &[
    "/start remote host new",
    "/start remote host ",
    "/list remote hosts",
    "/switch remote host local",
    "/switch remote host ",
    "/stop remote host new",
    "/stop remote host ",
    "/delete remote host ",
    "/store remote file ",
    "/get remote file ",
    "/set device name ",
    "/help",
    "/quit",
    "/notes",
    "/note ",
    "/delete note ",
    "/files",
    "/delete file ",
];

/// A human rendering of a host's response: the notes app's results as lines, anything else
/// as compact JSON. All of it is the host's text: each line is escaped for the terminal
/// ([`xrcp::display`]); a line break inside a note cannot start a line of its own.
pub(crate) fn render(r: &RRResult) -> String {
    let line = |s: String| escape(&s).into_owned();
    match r {
        RRResult::Error(e) => match e.get("message").and_then(Value::as_str) {
            Some(m) => line(format!("error: {m}")),
            None => line(format!("error: {e}")),
        },
        RRResult::Result(v) => match v.get("type").and_then(Value::as_str) {
            Some("notes") => lines(
                v.get("notes"),
                |n| {
                    format!(
                        "{}. {}",
                        n["noteId"],
                        n["text"].as_str().unwrap_or_default()
                    )
                },
                "no notes",
            ),
            Some("files") => lines(
                v.get("files"),
                |f| {
                    format!(
                        "{}. {} ({} bytes)",
                        f["fileId"],
                        f["fileName"].as_str().unwrap_or_default(),
                        f["fileSize"]
                    )
                },
                "no files",
            ),
            Some("noteCreated") => line(format!("note {} added", v["note"]["noteId"])),
            Some("noteDeleted") => line(format!("note {} deleted", v["noteId"])),
            Some("fileDeleted") => line(format!("file {} deleted", v["fileId"])),
            Some("fileStored") => line(format!(
                "file {} stored",
                v["file"]["fileName"].as_str().unwrap_or_default()
            )),
            Some("help") => lines(
                v.get("commands"),
                |c| c.as_str().unwrap_or_default().to_owned(),
                "",
            ),
            _ => line(v.to_string()),
        },
    }
}

/// One escaped line per item (the items are the host's text).
fn lines(items: Option<&Value>, f: impl Fn(&Value) -> String, empty: &str) -> String {
    match items.and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|i| escape(&f(i)).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => empty.to_owned(),
    }
}

/// Which session a command names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    New,
    Id(i64),
}

/// What background tasks tell the console.
enum UiEvent {
    Progress(Key, Progress),
    Connected {
        key: Key,
        id: i64,
        client: RemoteHostClient,
        events: mpsc::Receiver<crate::session::HostEvent>,
        name: String,
        compression: bool,
    },
    Failed(Key, RemoteHostError),
    HostEvent(i64, RRResult),
    Stopped(i64),
    Line(String),
    /// Ctrl-C: a transfer in progress was told to stop (see [`Console::interrupt`]); quit.
    Interrupted,
}

enum Session {
    Starting(JoinHandle<()>),
    Connected {
        client: RemoteHostClient,
        name: String,
        forwarder: JoinHandle<()>,
    },
}

struct Console {
    ctx: Context,
    sessions: HashMap<Key, Session>,
    current: Option<i64>,
    tx: mpsc::UnboundedSender<UiEvent>,
    /// Woken on Ctrl-C: a file transfer in progress stops with an error line (a download
    /// leaves no `.part` file; the host discards a partial upload), then the program quits.
    interrupt: std::sync::Arc<tokio::sync::Notify>,
    /// The last results this console printed, as rendered: a host's event that repeats one
    /// of them (the note a command of ours added, say) is not shown a second time.
    shown: std::sync::Mutex<std::collections::VecDeque<(i64, String)>>,
}

/// Splits `key=value` options (values may be double-quoted) from a command's tail.
fn options(tail: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut rest = tail.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("expected key=value: {rest}"))?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').ok_or("unterminated quote")?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(' ') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        out.insert(key.trim().to_owned(), value.to_owned());
        rest = next.trim_start();
    }
    Ok(out)
}

fn listen_from(opts: &HashMap<String, String>) -> Result<Listen, String> {
    Ok(Listen {
        addr: opts
            .get("addr")
            .map(|a| a.parse().map_err(|_| format!("bad address {a}")))
            .transpose()?,
        iface: opts.get("iface").cloned(),
        port: opts
            .get("port")
            .map(|p| p.parse().map_err(|_| format!("bad port {p}")))
            .transpose()?
            .unwrap_or(0),
        bind: opts.get("bind").map(|b| parse_bind(b)).transpose()?,
        advertise: opts
            .get("advertise")
            .map(|a| parse_advertise(a))
            .transpose()?,
        timeout: 60,
        ssh_relay: None,
        relay_port: 0,
        ssh_options: Vec::new(),
    })
}

pub(super) async fn run(ctx: Context) -> ExitCode {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let interrupt = std::sync::Arc::new(tokio::sync::Notify::new());
    let (input_tx, notify) = (tx.clone(), std::sync::Arc::clone(&interrupt));
    let options = console::Options {
        commands: COMMANDS,
        private: &[],
        quit: &["/quit", "/q"],
        history: ctx.store().path().parent().map(|d| d.join("history")),
    };
    console::start(options, move |input| {
        let _ = match input {
            Input::Line(line) => input_tx.send(UiEvent::Line(line)),
            Input::Eof => input_tx.send(UiEvent::Line("/quit".into())),
            // Ctrl-C at the prompt: as SIGINT below.
            Input::Interrupt => {
                notify.notify_waiters();
                input_tx.send(UiEvent::Interrupted)
            }
        };
    });
    let (signal_tx, notify) = (tx.clone(), std::sync::Arc::clone(&interrupt));
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            notify.notify_waiters();
            let _ = signal_tx.send(UiEvent::Interrupted);
        }
    });
    let mut console = Console {
        ctx,
        sessions: HashMap::new(),
        current: None,
        tx,
        interrupt,
        shown: Default::default(),
    };
    println!("xrcp-ctrl: /help for commands");
    let mut code = ExitCode::SUCCESS;
    while let Some(ev) = rx.recv().await {
        match &ev {
            UiEvent::Line(line) if matches!(line.trim(), "/quit" | "/q") => break,
            UiEvent::Interrupted => {
                code = ExitCode::from(130);
                break;
            }
            _ => {}
        }
        console.handle(ev).await;
    }
    for (_, s) in console.sessions.drain() {
        match s {
            Session::Starting(t) => t.abort(),
            Session::Connected {
                forwarder, client, ..
            } => {
                // The forwarder holds a clone of the client: let it go first, then say
                // goodbye so that the host sees a controller that left, not a cut.
                forwarder.abort();
                let _ = forwarder.await;
                client.close().await;
            }
        }
    }
    code
}

fn key_name(key: Key) -> String {
    match key {
        Key::New => "new remote host".into(),
        Key::Id(id) => format!("remote host {id}"),
    }
}

impl Console {
    async fn handle(&mut self, ev: UiEvent) {
        match ev {
            UiEvent::Line(line) => self.command(line.trim_end()).await,
            UiEvent::Progress(key, p) => match p {
                Progress::Started {
                    link,
                    address,
                    port,
                    bound,
                    relayed,
                    others,
                } => {
                    println!("{} started on {address}:{port}", key_name(key));
                    if relayed {
                        for line in relayed_lines(&address, port, bound) {
                            println!("{line}");
                        }
                    }
                    if !others.is_empty() {
                        let o: Vec<String> = others.iter().map(|a| a.to_string()).collect();
                        println!("other addresses: {}", o.join(" "));
                    }
                    println!("Remote session invitation:");
                    println!("{link}");
                    if key == Key::New {
                        if let Ok(code) = qr::terminal(&link) {
                            println!("{code}");
                        }
                    }
                }
                Progress::Connecting(peer) => {
                    println!("{} connecting from {peer}", key_name(key))
                }
                Progress::SessionCode { code, .. } => {
                    println!("Compare session code with host:");
                    println!("{code}");
                }
                Progress::Contested { peer, others } => {
                    println!("{}: {}", key_name(key), contested_line(peer, &others))
                }
                Progress::Withdrawn { peer, reason } => {
                    println!("{}: {}", key_name(key), withdrawn_line(peer, reason))
                }
            },
            UiEvent::Connected {
                key,
                id,
                client,
                mut events,
                name,
                compression,
            } => {
                if key == Key::New {
                    println!("new remote host {id} added: {}", Escaped(&name));
                }
                let how = if compression { "with" } else { "no" };
                println!("remote host {id} connected ({how} compression)");
                let tx = self.tx.clone();
                let watch = client.clone();
                let forwarder = tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            ev = events.recv() => match ev {
                                Some(Ok(r)) => { let _ = tx.send(UiEvent::HostEvent(id, r)); }
                                Some(Err(_)) | None => { watch.closed().await; break; }
                            },
                            _ = watch.closed() => break,
                        }
                    }
                    let _ = tx.send(UiEvent::Stopped(id));
                });
                self.sessions.remove(&key);
                self.sessions.insert(
                    Key::Id(id),
                    Session::Connected {
                        client,
                        name,
                        forwarder,
                    },
                );
                self.current = Some(id);
            }
            UiEvent::Failed(key, e) => {
                self.sessions.remove(&key);
                match e {
                    RemoteHostError::Protocol(rc) => {
                        println!("{} error: {}", key_name(key), Escaped(&rc))
                    }
                    other => println!("{} error: {}", key_name(key), Escaped(&other)),
                }
            }
            UiEvent::HostEvent(id, r) => {
                let text = render(&r);
                if !self.repeats_shown(id, &text) {
                    println!("[remote: {id}] {text}");
                }
            }
            UiEvent::Interrupted => {}
            UiEvent::Stopped(id) => {
                if self.sessions.remove(&Key::Id(id)).is_some() {
                    println!("remote host {id} stopped");
                    if self.current == Some(id) {
                        self.current = None;
                    }
                }
            }
        }
    }

    async fn command(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        let result = if line == "/help" || line == "/h" || line == "/help remote" || line == "/hr" {
            println!("{HELP}");
            Ok(())
        } else if let Some(name) = line.strip_prefix("/set device name ") {
            self.ctx
                .app
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .device_name = name.trim().to_owned();
            println!("ok");
            Ok(())
        } else if line == "/list remote hosts" {
            self.list()
        } else if let Some(rest) = line.strip_prefix("/start remote host ") {
            self.start(rest)
        } else if let Some(rest) = line.strip_prefix("/stop remote host ") {
            self.stop(rest.trim())
        } else if let Some(rest) = line.strip_prefix("/delete remote host ") {
            self.delete(rest.trim())
        } else if let Some(rest) = line.strip_prefix("/switch remote host ") {
            self.switch(rest.trim())
        } else if let Some(rest) = line.strip_prefix("/store remote file ") {
            self.store_file(rest).await
        } else if let Some(rest) = line.strip_prefix("/get remote file ") {
            self.get_file(rest).await
        } else {
            self.forward(line).await
        };
        if let Err(e) = result {
            // Errors may quote the host's text.
            println!("{}", Escaped(&e));
        }
    }

    fn list(&self) -> Result<(), String> {
        let hosts = self.ctx.store().list().map_err(|e| e.to_string())?;
        if hosts.is_empty() && !self.sessions.contains_key(&Key::New) {
            println!("No remote hosts");
            return Ok(());
        }
        println!("Remote hosts: ");
        for h in hosts {
            let state = match self.sessions.get(&Key::Id(h.id)) {
                Some(Session::Starting(_)) => " (starting)",
                Some(Session::Connected { .. }) => " (connected)",
                None => "",
            };
            println!(
                "{}. {}{state}{}",
                h.id,
                Escaped(&h.device_name),
                binding_text(&h.binding)
            );
        }
        Ok(())
    }

    fn start(&mut self, rest: &str) -> Result<(), String> {
        let (which, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let opts = options(tail)?;
        let listen = listen_from(&opts)?;
        let (key, target) = if which == "new" {
            (Key::New, Target::New)
        } else {
            let id: i64 = which.parse().map_err(|_| format!("bad host id {which}"))?;
            let multicast = match opts.get("multicast").map(String::as_str) {
                None | Some("off") => false,
                Some("on") => true,
                Some(other) => return Err(format!("multicast must be on or off, not {other}")),
            };
            (Key::Id(id), Target::Known { id, multicast })
        };
        if self.sessions.contains_key(&key) {
            return Err(format!("{} error: RHEBusy", key_name(key)));
        }
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let ptx = tx.clone();
            let result = establish(&ctx, target, &listen, move |p| {
                let _ = ptx.send(UiEvent::Progress(key, p));
            })
            .await;
            let _ = match result {
                // No relay in the interactive mode (`ssh_relay` is always `None` here).
                Ok((id, remote, _relay)) => tx.send(UiEvent::Connected {
                    key,
                    id,
                    name: remote.host_info.device_name.clone(),
                    compression: remote.compression,
                    client: remote.client,
                    events: remote.events,
                }),
                Err(e) => tx.send(UiEvent::Failed(key, e)),
            };
        });
        self.sessions.insert(key, Session::Starting(task));
        Ok(())
    }

    fn stop(&mut self, which: &str) -> Result<(), String> {
        let key = if which == "new" {
            Key::New
        } else {
            Key::Id(which.parse().map_err(|_| format!("bad host id {which}"))?)
        };
        match self.sessions.remove(&key) {
            Some(Session::Starting(task)) => task.abort(),
            Some(Session::Connected { forwarder, .. }) => forwarder.abort(),
            None => return Err(format!("{} error: RHEInactive", key_name(key))),
        }
        if let Key::Id(id) = key {
            if self.current == Some(id) {
                self.current = None;
            }
        }
        println!("ok");
        Ok(())
    }

    fn delete(&mut self, which: &str) -> Result<(), String> {
        let id: i64 = which.parse().map_err(|_| format!("bad host id {which}"))?;
        if self.sessions.contains_key(&Key::Id(id)) {
            return Err(format!("remote host {id} error: RHEBusy"));
        }
        match self.ctx.store().delete(id) {
            Ok(true) => {
                println!("ok");
                Ok(())
            }
            Ok(false) => Err(format!("no remote host {id}")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn switch(&mut self, which: &str) -> Result<(), String> {
        if which == "local" {
            self.current = None;
            println!("Using local profile");
            return Ok(());
        }
        let id: i64 = which.parse().map_err(|_| format!("bad host id {which}"))?;
        match self.sessions.get(&Key::Id(id)) {
            Some(Session::Connected { name, .. }) => {
                self.current = Some(id);
                println!("Using remote host {id} ({})", Escaped(name));
                Ok(())
            }
            _ => match self.ctx.store().get(id) {
                Ok(Some(_)) => Err(format!("remote host {id} error: RHEInactive")),
                _ => Err(format!("no remote host {id}")),
            },
        }
    }

    fn client(&self, id: i64) -> Result<RemoteHostClient, String> {
        match self.sessions.get(&Key::Id(id)) {
            Some(Session::Connected { client, .. }) => Ok(client.clone()),
            _ => Err(format!("remote host {id} error: RHEInactive")),
        }
    }

    async fn store_file(&self, rest: &str) -> Result<(), String> {
        let (id, tail) = rest
            .trim()
            .split_once(' ')
            .ok_or("usage: /store remote file <id> <path>")?;
        let id: i64 = id.parse().map_err(|_| format!("bad host id {id}"))?;
        let path = tail
            .trim()
            .strip_prefix("encrypt=off ")
            .or_else(|| tail.trim().strip_prefix("encrypt=on "))
            .unwrap_or(tail.trim());
        let client = self.client(id)?;
        let size = std::fs::metadata(path)
            .map_err(|e| format!("{path}: {e}"))?
            .len();
        let bar = progress_bar(size);
        let mut progress = |done, _| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        };
        let upload = client.store_file_path(Path::new(path), &mut progress);
        let stored = match self.interruptible(upload).await {
            Ok(s) => s,
            Err(e) => {
                let outcome = "the host did not keep the file";
                return Err(transfer_error(id, &client, "upload", outcome, e).await);
            }
        };
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        println!("file {} stored on remote host {id}", Escaped(&stored));
        // The host also announces the file as an event: said once is enough.
        let event = serde_json::json!({"type": "fileStored", "file": {"fileName": stored}});
        self.show(id, render(&RRResult::Result(event)));
        Ok(())
    }

    async fn get_file(&self, rest: &str) -> Result<(), String> {
        let (id, json) = rest
            .trim()
            .split_once(' ')
            .ok_or("usage: /get remote file <id> <json>")?;
        let id: i64 = id.parse().map_err(|_| format!("bad host id {id}"))?;
        let file: RemoteFile =
            serde_json::from_str(json).map_err(|e| format!("bad file JSON: {e}"))?;
        let client = self.client(id)?;
        let dir = std::env::current_dir().map_err(|e| e.to_string())?;
        println!("ok");
        let mut bar: Option<indicatif::ProgressBar> = None;
        let mut progress = |done, total| {
            if bar.is_none() {
                bar = progress_bar(total);
            }
            if let Some(b) = bar.as_ref() {
                b.set_position(done);
            }
        };
        let download = client.get_file_to_dir(&file, &dir, &mut progress);
        let path = match self.interruptible(download).await {
            Ok(p) => p,
            Err(e) => {
                let outcome = "nothing was saved";
                return Err(transfer_error(id, &client, "download", outcome, e).await);
            }
        };
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        println!("file received: {}", Escaped(path.display()));
        Ok(())
    }

    /// Runs a file transfer until it ends or the user presses Ctrl-C (`None`).
    async fn interruptible<T>(
        &self,
        transfer: impl std::future::Future<Output = Result<T, RemoteProtocolError>>,
    ) -> Result<T, Option<RemoteProtocolError>> {
        tokio::select! {
            r = transfer => r.map_err(Some),
            _ = self.interrupt.notified() => Err(None),
        }
    }

    async fn forward(&self, line: &str) -> Result<(), String> {
        let Some(id) = self.current else {
            return Err(
                "no remote host selected: /start remote host new, or /switch remote host <id>"
                    .into(),
            );
        };
        let client = self.client(id)?;
        let r = client
            .send_command(line, 0)
            .await
            .map_err(|e| format!("remote host {id} error: {e:?}"))?;
        let text = render(&r);
        println!("{text}");
        self.show(id, text);
        Ok(())
    }

    /// Remembers a result printed for host `id` (the last few).
    fn show(&self, id: i64, text: String) {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        if shown.len() >= 32 {
            shown.pop_front();
        }
        shown.push_back((id, text));
    }

    /// Whether a host's event says what a result printed for it said (the host emits an
    /// event for each change, also for the changes this console asked for); each printed
    /// result stands for one event.
    fn repeats_shown(&self, id: i64, text: &str) -> bool {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        match shown.iter().position(|(i, t)| *i == id && t == text) {
            Some(at) => {
                shown.remove(at);
                true
            }
            None => false,
        }
    }
}

/// The error line of a transfer that did not finish: `e` is `None` when the user interrupted
/// it; the connection's end is said in plain words.
async fn transfer_error(
    id: i64,
    client: &RemoteHostClient,
    what: &str,
    outcome: &str,
    e: Option<RemoteProtocolError>,
) -> String {
    match e {
        None => format!("remote host {id} error: the {what} was interrupted, {outcome}"),
        Some(e) if super::script::ended_with(client).await => format!(
            "remote host {id} error: the {what} did not finish, {outcome}: \
             the connection to the host ended ({e})"
        ),
        Some(e) => format!("remote host {id} error: the {what} failed, {outcome}: {e}"),
    }
}

/// A stored binding as `/list remote hosts` shows it: ` [<iface> <addr>:<port>]`, leaving out
/// what was not given (the port when it was chosen by the system: it changes every session).
fn binding_text(b: &Binding) -> String {
    let mut parts = Vec::new();
    if let Some(i) = &b.interface {
        parts.push(i.clone());
    }
    match (b.address, b.port) {
        (Some(a), Some(p)) => parts.push(format!("{a}:{p}")),
        (Some(a), None) => parts.push(a.to_string()),
        (None, Some(p)) => parts.push(format!("port {p}")),
        (None, None) => {}
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(" "))
    }
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    (total >= PROGRESS_BAR_MIN).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn option_parsing_handles_quotes() {
        let o = options(r#"addr=127.0.0.1 iface="my lo" port=52230"#).unwrap();
        assert_eq!(o["addr"], "127.0.0.1");
        assert_eq!(o["iface"], "my lo");
        assert_eq!(o["port"], "52230");
        assert!(options("addr").is_err());
        assert!(options(r#"iface="x"#).is_err());
        let l = listen_from(&o).unwrap();
        assert_eq!(l.port, 52230);
    }

    #[test]
    fn advertise_and_bind_options() {
        let o = options("advertise=relay.example.com:5225 bind=127.0.0.1:41000").unwrap();
        let l = listen_from(&o).unwrap();
        let (host, port) = l.advertise.unwrap();
        assert_eq!(
            (host.to_string(), port),
            ("relay.example.com".into(), Some(5225))
        );
        assert_eq!(l.bind, Some((std::net::Ipv4Addr::LOCALHOST, Some(41000))));
        for bad in [
            "advertise=bad_name.example",
            "advertise=x.onion",
            "bind=relay:1",
        ] {
            assert!(listen_from(&options(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn bindings_leave_out_what_was_not_given() {
        let b = |address: Option<&str>, interface: Option<&str>, port| Binding {
            address: address.map(|a| a.parse().unwrap()),
            interface: interface.map(str::to_owned),
            port,
        };
        assert_eq!(
            binding_text(&b(Some("127.0.0.1"), Some("lo"), Some(52230))),
            " [lo 127.0.0.1:52230]"
        );
        assert_eq!(
            binding_text(&b(Some("127.0.0.1"), Some("lo"), None)),
            " [lo 127.0.0.1]"
        );
        assert_eq!(binding_text(&b(None, Some("eth0"), None)), " [eth0]");
        assert_eq!(binding_text(&b(None, None, Some(5))), " [port 5]");
        assert_eq!(binding_text(&b(None, None, None)), "");
    }

    #[test]
    fn help_shows_every_command_that_tab_completes() {
        for c in COMMANDS {
            assert!(HELP.contains(c.trim_end()), "{c:?} is not in /help");
        }
        // How to end a session, and the file commands.
        for c in [
            "/stop remote host",
            "/quit",
            "/store remote file",
            "/get remote file",
        ] {
            assert!(HELP.contains(c), "{c}");
        }
    }

    #[test]
    fn rendering_of_notes_results() {
        let r = RRResult::Result(json!({"type":"notes","notes":[{"noteId":1,"text":"hi"}]}));
        assert_eq!(render(&r), "1. hi");
        let e = RRResult::Error(json!({"type":"commandError","message":"unknown command: /x"}));
        assert_eq!(render(&e), "error: unknown command: /x");
    }
}
