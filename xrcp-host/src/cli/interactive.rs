//! Interactive mode: the SimpleX host commands with the SimpleX texts
//! (`/connect remote ctrl <link>`, `/verify remote ctrl <code>`, `/find remote ctrl`, …).
//! While a controller drives this device the console is locked, as the phone's UI is, except
//! for `/stop remote ctrl`; otherwise notes commands (`/notes`, `/note <text>`, …) run
//! locally.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xrcp::console::{self, Input};
use xrcp::display::{escape, Escaped};
use xrcp::message::SignedInvitation;
use xrcp::session::RRResult;

use super::setup::{address_warning, ctrl_summary, serve, Context};
use xrcp_host::{CodeCheck, Found, Host, PendingSession, RemoteCtrlError};

// Every line of this mode goes through the line editor's printer ([`xrcp::console::say`]):
// a line printed while the user types (a controller's command, the end of a session)
// appears above the input line, and what was typed stays intact.
macro_rules! println {
    () => {
        console::say("")
    };
    ($($arg:tt)*) => {
        console::say(&format!($($arg)*))
    };
}

const HELP: &str = "\
Link to a controller:
  /connect remote ctrl <link>     connect with the controller's link (/crc)
                                  [via=<host>:<port>] through an SSH tunnel
  /verify remote ctrl <code>      confirm the code the controller shows
  /find remote ctrl               find a paired controller on the LAN
                                  [timeout=<seconds>]
  /confirm remote ctrl <id>       connect to a found controller
  /stop remote ctrl               end the remote session
  /list remote ctrls              paired controllers
  /delete remote ctrl <id>        forget a controller
Local notes and files:
  /notes, /note <text>, /delete note <id>
  /files, /delete file <id>       files that controllers stored here
Other:
  /set device name <name>         the name controllers see
  /help                           this list
  /quit                           end the session and leave (or Ctrl-D)
Up/Down recall lines, Ctrl-R searches them, Tab completes a command.
Session codes and links are not kept in the history file.";

/// What Tab completes.
const COMMANDS: &[&str] = &[
    "/connect remote ctrl ",
    "/verify remote ctrl ",
    "/find remote ctrl",
    "/confirm remote ctrl ",
    "/stop remote ctrl",
    "/list remote ctrls",
    "/delete remote ctrl ",
    "/set device name ",
    "/notes",
    "/note ",
    "/delete note ",
    "/files",
    "/delete file ",
    "/help",
    "/quit",
];

/// Lines that stay out of the history file: a session code, an invitation link (a link can
/// still be used while its controller waits).
const PRIVATE: &[&str] = &["/verify remote ctrl ", "/connect remote ctrl ", "/crc "];

/// How long `/find remote ctrl` listens unless told (`timeout=`).
const FIND_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a discovery listens (`Listening::interface_address`), for a person: the interface
/// and its address.
pub(crate) fn listening_on(address: Option<std::net::Ipv4Addr>) -> String {
    let Some(addr) = address else {
        return "on the interface the system chooses".into();
    };
    let name = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .find(|i| i.ip() == std::net::IpAddr::V4(addr))
        .map(|i| i.name);
    match name {
        Some(n) => format!("interface {n}, {addr}"),
        None => format!("the interface of {addr}"),
    }
}

/// Said when a command needs the console that a connection in progress holds.
const BUSY: &str = "remote controller error: a connection is already in progress — end it \
                    with /stop remote ctrl first";

/// The option `/connect remote ctrl <link>` takes, as the error for a wrong one lists it.
const CONNECT_OPTIONS: &str = "via=<host>:<port>";

/// `<link> [via=<host>:<port>]`: any other word after the link is an error listing the
/// valid option (a stray word is never ignored, nor taken as part of the link).
fn connect_args(rest: &str) -> Result<(&str, Option<SocketAddr>), String> {
    let mut words = rest.split_whitespace();
    let link = words.next().ok_or_else(|| {
        "usage: /connect remote ctrl <link> [via=<host>:<port>] — paste the link the \
         controller shows"
            .to_owned()
    })?;
    let mut via = None;
    for w in words {
        match w.split_once('=') {
            Some(("via", v)) => {
                via = Some(v.parse::<SocketAddr>().map_err(|_| {
                    format!(
                        "bad value for via=: '{v}' is not <ip>:<port> — the option of \
                         /connect remote ctrl is: {CONNECT_OPTIONS}"
                    )
                })?)
            }
            _ => {
                return Err(format!(
                    "unknown option '{w}' — the option of /connect remote ctrl is: \
                     {CONNECT_OPTIONS} (if it is part of the link, the link was split: copy \
                     all of it)"
                ))
            }
        }
    }
    Ok((link, via))
}

enum UiEvent {
    Line(String),
    /// TLS is up: the session code waits for the user.
    Pending {
        id: Option<i64>,
        pending: Box<PendingSession>,
    },
    Started {
        id: i64,
        name: String,
        compression: bool,
    },
    Found(Box<Found>),
    /// `/find remote ctrl` heard no paired controller within this time.
    NotFound(Duration),
    Failed(RemoteCtrlError),
    /// The typed code was empty or wrong; the connection still waits for the right one.
    CodeAgain(CodeCheck),
    /// The code matched: the HELLOs are being exchanged.
    CodeAccepted,
    Stopped,
    Command(String),
    /// Ctrl-C at the prompt: quit.
    Interrupted,
}

enum State {
    Idle,
    /// Connecting, verifying or discovering: a task runs.
    Busy(JoinHandle<()>),
    /// The session code waits for the user; the task holds the connection, watches for the
    /// controller leaving, and takes the codes typed.
    WaitingCode {
        codes: mpsc::UnboundedSender<String>,
        task: JoinHandle<()>,
    },
    Found(Box<Found>),
    Connected(JoinHandle<()>),
}

/// What `/connect remote ctrl` or `/confirm remote ctrl` connects to.
enum Target {
    /// A link, dialed directly or `via` a tunnel.
    Link(Box<SignedInvitation>, Option<SocketAddr>),
    /// A paired controller `/find remote ctrl` found.
    Found(Box<Found>),
}

struct Console {
    ctx: Context,
    /// Every connection and `/find` goes through it (it remembers where controllers were
    /// found).
    host: Host,
    state: State,
    tx: mpsc::UnboundedSender<UiEvent>,
}

/// The notes app's results as lines (as the controller shows them), anything else as JSON.
/// Notes and file names may have come from the controller: each line is escaped for the
/// terminal ([`xrcp::display`]).
fn render(r: &RRResult) -> String {
    let line = |s: String| escape(&s).into_owned();
    let lines = |items: Option<&Value>, f: &dyn Fn(&Value) -> String, empty: &str| match items
        .and_then(Value::as_array)
    {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|i| escape(&f(i)).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => empty.to_owned(),
    };
    match r {
        RRResult::Error(e) => match e.get("message").and_then(Value::as_str) {
            Some(m) => line(format!("error: {m}")),
            None => line(format!("error: {e}")),
        },
        RRResult::Result(v) => match v.get("type").and_then(Value::as_str) {
            Some("notes") => lines(
                v.get("notes"),
                &|n| {
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
                &|f| {
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
            Some("help") => lines(
                v.get("commands"),
                &|c| c.as_str().unwrap_or_default().to_owned(),
                "",
            ),
            _ => line(v.to_string()),
        },
    }
}

pub(crate) async fn run(ctx: Context) -> ExitCode {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let input_tx = tx.clone();
    let options = console::Options {
        commands: COMMANDS,
        private: PRIVATE,
        quit: &["/quit", "/q"],
        history: ctx.store().path().parent().map(|d| d.join("history")),
    };
    console::start(options, move |input| {
        let _ = input_tx.send(match input {
            Input::Line(line) => UiEvent::Line(line),
            Input::Eof => UiEvent::Line("/quit".into()),
            Input::Interrupt => UiEvent::Interrupted,
        });
    });
    let command_tx = tx.clone();
    let host = ctx.host(move |c| {
        let _ = command_tx.send(UiEvent::Command(c.to_owned()));
    });
    let mut console = Console {
        ctx,
        host,
        state: State::Idle,
        tx,
    };
    println!("xrcp-host: /help for commands");
    let mut code = ExitCode::SUCCESS;
    while let Some(ev) = rx.recv().await {
        match &ev {
            UiEvent::Line(l) if matches!(l.trim(), "/quit" | "/q") => break,
            UiEvent::Interrupted => {
                // As the terminal's SIGINT would have ended the program.
                code = ExitCode::from(130);
                break;
            }
            _ => {}
        }
        console.handle(ev).await;
    }
    console.reset();
    code
}

/// Holds a connection while its session code waits for the user: takes the codes typed
/// (an empty or wrong one asks again, a limited number of times), and notices when the
/// controller stops waiting, so the prompt does not outlive the controller. A matching code
/// sends the HELLO and serves the session.
async fn wait_for_code(
    ctx: Context,
    mut pending: PendingSession,
    mut typed: mpsc::UnboundedReceiver<String>,
    tx: mpsc::UnboundedSender<UiEvent>,
) {
    loop {
        let code = tokio::select! {
            code = typed.recv() => code,
            gone = pending.controller_left() => {
                let _ = tx.send(UiEvent::Failed(gone));
                return;
            }
        };
        let Some(code) = code else {
            // The user stopped (or quit): close without a HELLO.
            pending.reject().await;
            return;
        };
        match pending.check_code(&code) {
            CodeCheck::Matches => break,
            CodeCheck::NoTriesLeft => {
                pending.reject().await;
                let _ = tx.send(UiEvent::Failed(RemoteCtrlError::BadVerificationCode));
                return;
            }
            again => {
                let _ = tx.send(UiEvent::CodeAgain(again));
            }
        }
    }
    drop(typed);
    let _ = tx.send(UiEvent::CodeAccepted);
    let result = match pending.confirm().await {
        Ok(session) => {
            serve(&ctx, session, |id, name, compression| {
                let _ = tx.send(UiEvent::Started {
                    id,
                    name: name.to_owned(),
                    compression,
                });
            })
            .await
        }
        // The session layer could not start after the HELLO: as a session cut short.
        Err(e @ RemoteCtrlError::Session(_)) => Err(e),
        Err(e) => {
            let _ = tx.send(UiEvent::Failed(e));
            return;
        }
    };
    if let Err(e) = result {
        tracing::debug!("session ended: {e}");
    }
    let _ = tx.send(UiEvent::Stopped);
}

fn is_busy(state: &State) -> bool {
    !matches!(state, State::Idle | State::Found(_))
}

impl Console {
    fn reset(&mut self) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Busy(t) | State::Connected(t) => t.abort(),
            // Without its sender the task rejects the code and closes the connection.
            State::WaitingCode { codes, .. } => drop(codes),
            State::Idle | State::Found(_) => {}
        }
    }

    async fn handle(&mut self, ev: UiEvent) {
        match ev {
            UiEvent::Line(line) => self.command(line.trim_end()).await,
            UiEvent::Pending { id, pending } => {
                match id {
                    Some(id) => println!("remote controller {id} connected"),
                    None => println!("new remote controller connected"),
                }
                println!("Compare session code with controller and use:");
                println!("/verify remote ctrl {}", pending.session_code());
                println!("(only type the code you see on the controller's screen; never enter it anywhere else)");
                let (codes, typed) = mpsc::unbounded_channel();
                let task = tokio::spawn(wait_for_code(
                    self.ctx.clone(),
                    *pending,
                    typed,
                    self.tx.clone(),
                ));
                self.state = State::WaitingCode { codes, task };
            }
            UiEvent::CodeAgain(check) => match check {
                CodeCheck::Empty => println!(
                    "type the code shown on the controller's screen: /verify remote ctrl <code>"
                ),
                CodeCheck::Mismatch { tries_left } => {
                    let tries = if tries_left == 1 { "try" } else { "tries" };
                    println!(
                        "that code does not match this connection's: compare it with the controller's \
                         screen and type /verify remote ctrl <code> again ({tries_left} {tries} left)"
                    )
                }
                CodeCheck::Matches | CodeCheck::NoTriesLeft => {}
            },
            UiEvent::CodeAccepted => {
                if let State::WaitingCode { task, .. } =
                    std::mem::replace(&mut self.state, State::Idle)
                {
                    self.state = State::Connected(task);
                }
            }
            UiEvent::Started {
                id,
                name,
                compression,
            } => {
                let how = if compression { "with" } else { "no" };
                println!(
                    "remote controller {id} session started with {} ({how} compression)",
                    Escaped(&name)
                );
            }
            UiEvent::Found(found) => {
                let (name, version) = ctrl_summary(found.invitation());
                println!(
                    "remote controller {} found: {}, v{}",
                    found.controller_id(),
                    Escaped(&name),
                    Escaped(&version)
                );
                println!(
                    "use /confirm remote ctrl {} to connect",
                    found.controller_id()
                );
                self.state = State::Found(found);
            }
            UiEvent::NotFound(after) => {
                self.state = State::Idle;
                println!(
                    "no paired controller found within {} s. On the controller, run /start remote \
                     host <id> multicast=on, on the same local network as this device (multicast \
                     does not pass routers, VPNs or SSH tunnels); then /find remote ctrl again. \
                     Or connect with a new link: /connect remote ctrl <link>",
                    after.as_secs()
                );
            }
            UiEvent::Failed(e) => {
                self.state = State::Idle;
                println!("remote controller stopped");
                match e {
                    // Not a failure of this device: the controller's link ran out or its user
                    // stopped it; the line says what to do.
                    RemoteCtrlError::ControllerStoppedWaiting => {
                        println!("{}", RemoteCtrlError::ControllerStoppedWaiting)
                    }
                    // The message may quote the controller's text.
                    other => println!("remote controller error: {}", Escaped(&other)),
                }
            }
            UiEvent::Stopped => {
                if !matches!(self.state, State::Idle) {
                    self.state = State::Idle;
                    println!("remote controller stopped");
                }
            }
            UiEvent::Command(c) => println!("[controller] {}", Escaped(&c)),
            UiEvent::Interrupted => {}
        }
    }

    async fn command(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        if line == "/stop remote ctrl" {
            let was_idle = matches!(self.state, State::Idle);
            self.reset();
            if was_idle {
                println!(
                    "remote controller error: no remote session to stop — connect with \
                     /connect remote ctrl <link> or /find remote ctrl"
                );
            } else {
                println!("ok");
            }
            return;
        }
        if matches!(self.state, State::Connected(_)) {
            println!("a remote controller is using this device; /stop remote ctrl to take it back");
            return;
        }
        let result = if line == "/help" || line == "/h" || line == "/hr" || line == "/help remote" {
            println!("{HELP}");
            Ok(())
        } else if let Some(rest) = line
            .strip_prefix("/connect remote ctrl ")
            .or_else(|| line.strip_prefix("/crc "))
        {
            self.connect(rest)
        } else if let Some(code) = line
            .strip_prefix("/verify remote ctrl ")
            .or_else(|| (line == "/verify remote ctrl").then_some(""))
        {
            self.verify(code.trim())
        } else if let Some(tail) = (line == "/find remote ctrl")
            .then_some("")
            .or_else(|| line.strip_prefix("/find remote ctrl "))
        {
            self.find(tail)
        } else if let Some(id) = line.strip_prefix("/confirm remote ctrl ") {
            self.confirm(id.trim())
        } else if line == "/list remote ctrls" {
            self.list()
        } else if let Some(id) = line.strip_prefix("/delete remote ctrl ") {
            self.delete(id.trim())
        } else if let Some(name) = line.strip_prefix("/set device name ") {
            self.ctx
                .set_device_name(&self.host, name)
                .map(|()| println!("ok"))
        } else {
            println!("{}", render(&self.ctx.notes.run(line).await));
            Ok(())
        };
        if let Err(e) = result {
            // Errors may quote the controller's text.
            println!("{}", Escaped(&e));
        }
    }

    fn start_connect(&mut self, target: Target, known: Option<i64>) {
        let invitation = match &target {
            Target::Link(inv, _) => inv,
            Target::Found(found) => found.invitation(),
        };
        let (name, version) = ctrl_summary(invitation);
        match known {
            // The link's name and version: not verified by anything yet.
            Some(id) => println!(
                "connecting remote controller {id}: {}, v{}",
                Escaped(&name),
                Escaped(&version)
            ),
            None => println!(
                "connecting new remote controller: {}, v{}",
                Escaped(&name),
                Escaped(&version)
            ),
        }
        let host = self.host.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let result = match target {
                Target::Link(inv, via) => host.connect_invitation_via(*inv, via).await,
                Target::Found(found) => found.connect().await,
            };
            let _ = tx.send(match result {
                Ok(pending) => UiEvent::Pending {
                    id: known,
                    pending: Box::new(pending),
                },
                Err(e) => UiEvent::Failed(e),
            });
        });
        self.state = State::Busy(task);
    }

    fn connect(&mut self, rest: &str) -> Result<(), String> {
        if is_busy(&self.state) {
            return Err(BUSY.into());
        }
        let (link, via) = connect_args(rest)?;
        let inv = SignedInvitation::parse_verified(link)
            .map_err(|e| format!("remote controller error: {e}"))?;
        if let Some(w) = address_warning(&inv, via) {
            println!("{w}");
        }
        // A store that cannot be read shows as a new controller here; connecting reports it.
        let known = self.host.known_id(&inv).ok().flatten();
        self.start_connect(Target::Link(Box::new(inv), via), known);
        Ok(())
    }

    fn verify(&mut self, code: &str) -> Result<(), String> {
        match &self.state {
            State::WaitingCode { codes, .. } if codes.send(code.to_owned()).is_ok() => Ok(()),
            _ => Err(
                "remote controller error: no controller is waiting for a code — connect first with /connect remote ctrl <link>"
                    .into(),
            ),
        }
    }

    /// `/find remote ctrl [timeout=<seconds>]`: listens for a paired controller's
    /// announcement, saying where it listens, and says so when none came in time.
    fn find(&mut self, tail: &str) -> Result<(), String> {
        if is_busy(&self.state) {
            return Err(BUSY.into());
        }
        let timeout = match tail.trim() {
            "" => FIND_TIMEOUT,
            t => t
                .strip_prefix("timeout=")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| (1..=3600).contains(n))
                .map(Duration::from_secs)
                .ok_or("usage: /find remote ctrl [timeout=<seconds, 1 to 3600>]")?,
        };
        let known = self.ctx.store().known().map_err(|e| e.to_string())?;
        if known.is_empty() {
            return Err(
                "remote controller error: no paired controllers to look for — connect with a \
                 link first (/connect remote ctrl <link>)"
                    .into(),
            );
        }
        let listening = self.host.listen(Some(timeout)).map_err(|e| {
            format!(
                "cannot listen for controllers on the local network: {}",
                Escaped(&e)
            )
        })?;
        println!(
            "listening for paired controllers on {}:{} ({}) for {} s",
            listening.group().ip(),
            listening.group().port(),
            listening_on(listening.interface_address()),
            timeout.as_secs()
        );
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let _ = tx.send(match listening.found().await {
                Ok(found) => UiEvent::Found(Box::new(found)),
                Err(RemoteCtrlError::Protocol(xrcp::RcError::NotDiscovered)) => {
                    UiEvent::NotFound(timeout)
                }
                Err(e) => UiEvent::Failed(e),
            });
        });
        self.state = State::Busy(task);
        Ok(())
    }

    fn confirm(&mut self, id: &str) -> Result<(), String> {
        let id: i64 = id
            .parse()
            .map_err(|_| format!("'{id}' is not a controller id — see /list remote ctrls"))?;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Found(found) if found.controller_id() == id => {
                self.start_connect(Target::Found(found), Some(id));
                Ok(())
            }
            other => {
                self.state = other;
                Err(format!(
                    "remote controller error: controller {id} was not found on the network — \
                     search with /find remote ctrl, then confirm the id it shows"
                ))
            }
        }
    }

    fn list(&self) -> Result<(), String> {
        let ctrls = self.ctx.store().summaries().map_err(|e| e.to_string())?;
        if ctrls.is_empty() {
            println!("No remote controllers");
            return Ok(());
        }
        println!("Remote controllers: ");
        let state = match &self.state {
            State::Connected(_) => " (connected)",
            State::WaitingCode { .. } => " (pending confirmation)",
            State::Busy(_) => " (connecting)",
            _ => "",
        };
        for c in ctrls {
            println!("{}. {}{state}", c.id, Escaped(&c.device_name));
        }
        Ok(())
    }

    fn delete(&mut self, id: &str) -> Result<(), String> {
        let id: i64 = id.parse().map_err(|_| format!("bad id {id}"))?;
        if is_busy(&self.state) {
            return Err(BUSY.into());
        }
        match self.ctx.store().delete(id) {
            Ok(true) => {
                println!("ok");
                Ok(())
            }
            Ok(false) => Err(format!("no remote controller {id}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_options_are_checked() {
        assert_eq!(connect_args(" xrcp:/a ").unwrap(), ("xrcp:/a", None));
        let (_, via) = connect_args("xrcp:/a via=127.0.0.1:5").unwrap();
        assert_eq!(via, Some("127.0.0.1:5".parse().unwrap()));
        let e = connect_args("xrcp:/a bogus=1").unwrap_err();
        assert!(e.starts_with("unknown option 'bogus=1'"), "{e}");
        assert!(e.contains("via=<host>:<port>"), "{e}");
        let e = connect_args("xrcp:/a via=abc").unwrap_err();
        assert!(
            e.contains("'abc'") && e.contains("via=<host>:<port>"),
            "{e}"
        );
    }

    #[test]
    fn help_shows_every_command_that_tab_completes() {
        // It is read at 80×24: no line may wrap.
        for l in HELP.lines() {
            assert!(l.chars().count() <= 80, "/help line wider than 80: {l:?}");
        }
        for c in COMMANDS {
            assert!(HELP.contains(c.trim_end()), "{c:?} is not in /help");
        }
    }
}
