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
use xrcp::session::{RRResult, RemoteProtocolError};

use super::setup::{
    contested_line, establish, started_lines, waiting_line, withdrawn_line, Context, Progress,
    QrChoice, Target,
};
use super::{parse_advertise, parse_bind, parse_seconds, Listen, DEFAULT_TIMEOUT};
use crate::chat::{self, Line};
use xrcp_ctrl::Binding;
use xrcp_ctrl::RemoteHostClient;
use xrcp_ctrl::RemoteHostError;

/// How to ask for the QR code as an image in this mode.
const QR_FILES_HINT: &str = "qr_png=<file> or qr_svg=<file>";

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
Link a host:
  /start remote host new          show a link and QR code for a new host
      options: addr=<ip> iface=<name> port=<n> timeout=<seconds>|<n>m
               qr_png=<file> qr_svg=<file> advertise=<host>[:<port>] bind=<ip>
  /start remote host <id>         connect a paired host again [multicast=on]
  /list remote hosts              paired hosts and their state
  /switch remote host local|<id>  where other input goes
  /stop remote host new|<id>      end a session
  /delete remote host <id>        forget a host
Files:
  /store remote file <id> <path>  upload a file to host <id>
  /get remote file <id> <fileId>  download a file (ids: /files); never replaces
Chats on a phone (other lines go as typed: @alice hi, #team hi, /accept bob):
  /chats                          the chat list with unread counts
  /open @<contact>|#<group>       plain lines go to that chat; /close ends it
  /tail [n], /search <text>       the open chat's last messages, or a search
  /file [@<contact>] <path>       send a file into a chat (via the host)
  /json on, /json off             chat results as JSON, or as text
Also: /set device name <name>, /help, /quit (or Ctrl-D: end all sessions).
Any other line goes to the current host; its notes app knows /notes,
/note <text>, /delete note <id>, /files and /delete file <id>.
Up/Down recall lines, Ctrl-R searches them, Tab completes a command.";

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
    "/chats",
    "/open ",
    "/close",
    "/tail",
    "/search ",
    "/file ",
    "/json on",
    "/json off",
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
        // Boxed: a session is much larger than the other events.
        session: Box<xrcp_ctrl::Session>,
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
    /// `qr_png=`/`qr_svg=` of a session being started, used when its link is shown.
    qr_files: HashMap<Key, QrChoice>,
    /// The last results this console printed, as rendered: a host's event that repeats one
    /// of them (the note a command of ours added, say) is not shown a second time.
    shown: std::sync::Mutex<std::collections::VecDeque<(i64, String)>>,
    /// The chat view: a phone's chat results and events as text, the open chat.
    chat: std::sync::Mutex<chat::View>,
}

/// The options of `/start remote host new`, as the error for a wrong one lists them.
const NEW_HOST_OPTIONS: &[&str] = &[
    "addr=<ip>",
    "iface=<name>",
    "port=<n>",
    "bind=<ip>[:<port>]",
    "advertise=<host>[:<port>]",
    "timeout=<seconds>|<n>m",
    "qr_png=<file>",
    "qr_svg=<file>",
];
/// The options of `/start remote host <id>`.
const KNOWN_HOST_OPTIONS: &[&str] = &[
    "multicast=on|off",
    "addr=<ip>",
    "iface=<name>",
    "port=<n>",
    "bind=<ip>[:<port>]",
    "advertise=<host>[:<port>]",
    "timeout=<seconds>|<n>m",
    "qr_png=<file>",
    "qr_svg=<file>",
];

/// What follows an option error: the options `command` takes.
fn valid_options(command: &str, valid: &[&str]) -> String {
    format!("the options of {command} are: {}", valid.join(" "))
}

/// Splits `key=value` options (values may be double-quoted) from a command's tail. A key
/// that is not in `valid` (`name=<placeholder>` entries) or text that is not `key=value` is
/// an error listing the valid options: a wrong option is never silently ignored.
fn options(tail: &str, command: &str, valid: &[&str]) -> Result<HashMap<String, String>, String> {
    let known = |key: &str| valid.iter().any(|v| v.split('=').next() == Some(key));
    let mut out = HashMap::new();
    let mut rest = tail.trim();
    while !rest.is_empty() {
        let word = rest.split(' ').next().unwrap_or(rest);
        let Some((key, after)) = rest.split_once('=').filter(|(k, _)| !k.contains(' ')) else {
            return Err(format!(
                "'{word}' is not an option (key=value) — {}",
                valid_options(command, valid)
            ));
        };
        let key = key.trim();
        if !known(key) {
            return Err(format!(
                "unknown option '{word}' — {}",
                valid_options(command, valid)
            ));
        }
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').ok_or_else(|| {
                format!("the value of {key}= has no closing quote — write {key}=\"…\"")
            })?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(' ') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        out.insert(key.to_owned(), value.to_owned());
        rest = next.trim_start();
    }
    Ok(out)
}

/// The listen options of `/start remote host`; a malformed value is an error naming the
/// option and listing the valid ones.
fn listen_from(
    opts: &HashMap<String, String>,
    command: &str,
    valid: &[&str],
) -> Result<Listen, String> {
    let bad = |option: &str, value: &str, why: String| {
        format!(
            "bad value for {option}=: '{value}' {why} — {}",
            valid_options(command, valid)
        )
    };
    Ok(Listen {
        addr: opts
            .get("addr")
            .map(|a| {
                a.parse()
                    .map_err(|_| bad("addr", a, "is not an IPv4 address".into()))
            })
            .transpose()?,
        iface: opts.get("iface").cloned(),
        port: opts
            .get("port")
            .map(|p| {
                p.parse()
                    .map_err(|_| bad("port", p, "is not a port number (0 to 65535)".into()))
            })
            .transpose()?
            .unwrap_or(0),
        bind: opts
            .get("bind")
            .map(|b| parse_bind(b).map_err(|e| bad("bind", b, format!("({e})"))))
            .transpose()?,
        advertise: opts
            .get("advertise")
            .map(|a| parse_advertise(a).map_err(|e| bad("advertise", a, format!("({e})"))))
            .transpose()?,
        timeout: opts
            .get("timeout")
            .map(|t| parse_seconds(t).map_err(|e| bad("timeout", t, format!("({e})"))))
            .transpose()?
            .unwrap_or(DEFAULT_TIMEOUT),
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
        qr_files: HashMap::new(),
        shown: Default::default(),
        chat: std::sync::Mutex::new(chat::View::local()),
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

/// `new` or the id, as commands take it.
fn key_word(key: Key) -> String {
    match key {
        Key::New => "new".into(),
        Key::Id(id) => id.to_string(),
    }
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
                Progress::Started(started) => {
                    let qr = QrChoice {
                        // As before: the code of a new host's link (a known host has its
                        // pairing and needs no QR code).
                        terminal: key == Key::New,
                        ..self.qr_files.remove(&key).unwrap_or(QrChoice {
                            terminal: false,
                            png: None,
                            svg: None,
                            files_hint: QR_FILES_HINT,
                        })
                    };
                    let first = format!(
                        "{} started on {}:{}",
                        key_name(key),
                        started.address,
                        started.port
                    );
                    for line in started_lines(first, &started, &qr) {
                        println!("{line}");
                    }
                }
                Progress::TimeLeft(left) => println!("{}: {}", key_name(key), waiting_line(left)),
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
                mut session,
            } => {
                let name = session.host_info().device_name.clone();
                let compression = session.compression();
                let client = session.client().clone();
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
                            ev = session.next_event() => match ev {
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
                self.qr_files.remove(&key);
                match e {
                    RemoteHostError::Protocol(rc) => {
                        println!("{} error: {}", key_name(key), Escaped(&rc))
                    }
                    other => println!("{} error: {}", key_name(key), Escaped(&other)),
                }
            }
            UiEvent::HostEvent(id, r) => {
                let text = self.text(id, &r);
                if !self.repeats_shown(id, &text) {
                    if chat::View::wants(&r) {
                        // Chat lines name their chat (`alice> hi`, `#team bob> hi`).
                        println!("{text}");
                    } else {
                        println!("[remote: {id}] {text}");
                    }
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
            self.ctx.set_device_name(name).map(|()| println!("ok"))
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
            // The chat view's shortcuts; the lock is not held across the command.
            let expanded = self.chat_view().line(line);
            match expanded {
                Line::Pass => self.forward(line).await,
                Line::Send(command) => self.forward(&command).await,
                Line::Say(text) => {
                    println!("{text}");
                    Ok(())
                }
                Line::Open(text, command) => {
                    println!("{text}");
                    self.forward(&command).await
                }
                Line::SendFile { chat, path } => self.send_file(&chat, &path).await,
            }
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
        let (command, valid) = if which == "new" {
            ("/start remote host new", NEW_HOST_OPTIONS)
        } else {
            ("/start remote host <id>", KNOWN_HOST_OPTIONS)
        };
        let opts = options(tail, command, valid)?;
        let listen = listen_from(&opts, command, valid)?;
        let (key, target) = if which == "new" {
            (Key::New, Target::New)
        } else {
            let id: i64 = which.parse().map_err(|_| {
                format!(
                    "'{which}' is not a host id — use /start remote host new, or an id from \
                     /list remote hosts"
                )
            })?;
            let multicast = match opts.get("multicast").map(String::as_str) {
                None | Some("off") => false,
                Some("on") => true,
                Some(other) => {
                    return Err(format!(
                        "bad value for multicast=: '{other}' is not on or off — {}",
                        valid_options(command, valid)
                    ))
                }
            };
            (Key::Id(id), Target::Known { id, multicast })
        };
        if self.sessions.contains_key(&key) {
            return Err(format!(
                "{} error: a session is already running or starting — end it first with \
                 /stop remote host {}",
                key_name(key),
                key_word(key)
            ));
        }
        self.qr_files.insert(
            key,
            QrChoice {
                terminal: false,
                png: opts.get("qr_png").map(Into::into),
                svg: opts.get("qr_svg").map(Into::into),
                files_hint: QR_FILES_HINT,
            },
        );
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let ptx = tx.clone();
            let result = establish(&ctx, target, &listen, move |p| {
                let _ = ptx.send(UiEvent::Progress(key, p));
            })
            .await;
            let _ = match result {
                Ok((id, session)) => tx.send(UiEvent::Connected {
                    key,
                    id,
                    session: Box::new(session),
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
            None => {
                return Err(format!(
                    "{} error: no session is running — see /list remote hosts",
                    key_name(key)
                ))
            }
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
            return Err(format!(
                "remote host {id} error: it is in a session — end it first with /stop remote \
                 host {id}"
            ));
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
                Ok(Some(_)) => Err(format!(
                    "remote host {id} error: not connected — connect it with /start remote \
                     host {id}"
                )),
                _ => Err(format!("no remote host {id}")),
            },
        }
    }

    fn client(&self, id: i64) -> Result<RemoteHostClient, String> {
        match self.sessions.get(&Key::Id(id)) {
            Some(Session::Connected { client, .. }) => Ok(client.clone()),
            _ => Err(format!(
                "remote host {id} error: not connected — connect it with /start remote host {id}"
            )),
        }
    }

    async fn store_file(&self, rest: &str) -> Result<(), String> {
        self.upload(rest).await.map(drop)
    }

    /// `/file <chat> <path>`: the file goes to the current host first, then the chat API's
    /// `/file` command sends it from there (a relative path is in the phone's files folder).
    async fn send_file(&self, chat: &str, path: &str) -> Result<(), String> {
        let Some(id) = self.current else {
            return Err(
                "no remote host selected: /start remote host new, or /switch remote host <id>"
                    .into(),
            );
        };
        let stored = self.upload(&format!("{id} {path}")).await?;
        self.forward(&format!("/file {chat} {stored}")).await
    }

    /// Uploads a file for `/store remote file <id> <path>` and gives its name on the host.
    async fn upload(&self, rest: &str) -> Result<String, String> {
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
        let mut bar = TransferBar::default();
        let mut progress = |done, _| bar.update(done, size);
        let upload = client.store_file_path(Path::new(path), &mut progress);
        let result = self.interruptible(upload).await;
        bar.finish();
        let stored = match result {
            Ok(s) => s,
            Err(e) => {
                let outcome = "the host did not keep the file";
                return Err(transfer_error(id, &client, "upload", outcome, e).await);
            }
        };
        println!("file {} stored on remote host {id}", Escaped(&stored));
        // The host also announces the file as an event: said once is enough.
        let event = serde_json::json!({"type": "fileStored", "file": {"fileName": stored}});
        self.show(id, render(&RRResult::Result(event)));
        Ok(stored)
    }

    async fn get_file(&self, rest: &str) -> Result<(), String> {
        let (id, which) = rest
            .trim()
            .split_once(' ')
            .ok_or("usage: /get remote file <id> <fileId> (from /files), or <id> <file JSON>")?;
        let id: i64 = id.parse().map_err(|_| format!("bad host id {id}"))?;
        let client = self.client(id)?;
        // A chat message's file (its id as the chat view showed it), else the notes app's.
        let shown = which
            .trim()
            .parse()
            .ok()
            .and_then(|f| self.chat_view().file(f));
        let file = match shown {
            Some(f) => f,
            None => super::script::remote_file(&client, which)
                .await
                .map_err(|e| format!("remote host {id} error: {e}"))?,
        };
        let dir = std::env::current_dir().map_err(|e| e.to_string())?;
        // No `ok` here: the download can still fail, and `ok` then an error reads as both.
        let mut bar = TransferBar::default();
        let mut progress = |done, total| bar.update(done, total);
        let download = client.get_file_to_dir(&file, &dir, &mut progress);
        let result = self.interruptible(download).await;
        bar.finish();
        let path = match result {
            Ok(p) => p,
            Err(e) => {
                let outcome = "nothing was saved";
                return Err(transfer_error(id, &client, "download", outcome, e).await);
            }
        };
        println!("{}", super::script::received_line(&file, &path));
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
            .map_err(|e| format!("remote host {id} error: {e}"))?;
        let text = self.text(id, &r);
        println!("{text}");
        self.show(id, text);
        Ok(())
    }

    fn chat_view(&self) -> std::sync::MutexGuard<'_, chat::View> {
        self.chat.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A host's result or event as text: the notes app's as before, the chat API's by the
    /// chat view.
    fn text(&self, id: i64, r: &RRResult) -> String {
        if chat::View::wants(r) {
            self.chat_view().render(id, r)
        } else {
            render(r)
        }
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

/// The progress bar of one transfer of [`PROGRESS_BAR_MIN`] bytes or more. It appears with
/// the first bytes that move (not while the host is still opening the file, which would
/// show as a stall) and shows the average rate since then, once there is enough of it to
/// mean something: a rate estimated from the first chunk, or across a wait for the host,
/// swings wildly. Drawn on stderr, and only on a terminal (indicatif hides it otherwise).
#[derive(Default)]
struct TransferBar {
    bar: Option<indicatif::ProgressBar>,
    /// When the first bytes moved, and how many.
    first: Option<(std::time::Instant, u64)>,
    /// When the rate was last shown.
    shown: Option<std::time::Instant>,
}

impl TransferBar {
    /// `done` of `total` bytes have moved.
    fn update(&mut self, done: u64, total: u64) {
        use std::time::{Duration, Instant};
        if total < PROGRESS_BAR_MIN || done == 0 {
            return;
        }
        let now = Instant::now();
        let (since, base) = *self.first.get_or_insert((now, done));
        let bar = self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {percent:>3}% {elapsed} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            // The first drawing already shows the first bytes (later positions are drawn at
            // most 20 times a second). Redrawn every second even while no data arrives, so a
            // stall shows as time passing rather than as a frozen line.
            b.set_position(done);
            b.enable_steady_tick(Duration::from_secs(1));
            b
        });
        bar.set_position(done);
        let elapsed = now.duration_since(since);
        if elapsed >= RATE_AFTER
            && self
                .shown
                .is_none_or(|t| now.duration_since(t) >= RATE_EVERY)
        {
            let rate = (done - base) as f64 / elapsed.as_secs_f64();
            bar.set_message(format!("{}/s", indicatif::HumanBytes(rate as u64)));
            self.shown = Some(now);
        }
    }

    /// Removes the bar (the result line follows).
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// How long data must have moved before a rate is shown, and how often it is updated.
const RATE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
const RATE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn option_parsing_handles_quotes() {
        let o = opts(r#"addr=127.0.0.1 iface="my lo" port=52230"#).unwrap();
        assert_eq!(o["addr"], "127.0.0.1");
        assert_eq!(o["iface"], "my lo");
        assert_eq!(o["port"], "52230");
        assert!(opts("addr").is_err());
        assert!(opts(r#"iface="x"#).is_err());
        let l = listen(&o).unwrap();
        assert_eq!(l.port, 52230);
    }

    fn opts(tail: &str) -> Result<HashMap<String, String>, String> {
        options(tail, "/start remote host new", NEW_HOST_OPTIONS)
    }

    fn listen(o: &HashMap<String, String>) -> Result<Listen, String> {
        listen_from(o, "/start remote host new", NEW_HOST_OPTIONS)
    }

    #[test]
    fn wrong_options_are_refused_with_the_valid_ones() {
        let list = "the options of /start remote host new are: addr=<ip> iface=<name> \
                    port=<n> bind=<ip>[:<port>] advertise=<host>[:<port>] \
                    timeout=<seconds>|<n>m qr_png=<file> qr_svg=<file>";
        assert_eq!(
            opts("bogus=1").unwrap_err(),
            format!("unknown option 'bogus=1' — {list}")
        );
        // multicast= is for a paired host only.
        assert!(opts("multicast=on")
            .unwrap_err()
            .starts_with("unknown option"));
        assert!(options(
            "multicast=on",
            "/start remote host <id>",
            KNOWN_HOST_OPTIONS
        )
        .is_ok());
        assert_eq!(
            opts("port").unwrap_err(),
            format!("'port' is not an option (key=value) — {list}")
        );
        assert_eq!(
            listen(&opts("port=abc").unwrap()).unwrap_err(),
            format!("bad value for port=: 'abc' is not a port number (0 to 65535) — {list}")
        );
        assert!(listen(&opts("addr=1.2.3").unwrap())
            .unwrap_err()
            .ends_with(list));
    }

    #[test]
    fn advertise_and_bind_options() {
        let o = opts("advertise=relay.example.com:5225 bind=127.0.0.1:41000").unwrap();
        let l = listen(&o).unwrap();
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
            assert!(listen(&opts(bad).unwrap()).is_err(), "{bad}");
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
        // It is read at 80×24: no line may wrap, and it fits one screen with the input line.
        for l in HELP.lines() {
            assert!(l.chars().count() <= 80, "/help line wider than 80: {l:?}");
        }
        assert!(
            HELP.lines().count() <= 23,
            "/help is taller than one 80×24 screen"
        );
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
