//! Interactive mode: the SimpleX host commands with the SimpleX texts (`/connect remote ctrl
//! <link>`, `/verify remote ctrl <code>`, `/find remote ctrl`, …). While a controller drives
//! this device the console is locked, as the phone's UI is, except for `/stop remote ctrl`;
//! otherwise notes commands (`/notes`, `/note <text>`, …) run locally.

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

use super::setup::{address_warning, ctrl_summary, host_options, known_pairing, serve, Context};
use crate::discover::{discover, DiscoverOptions, Discovered};
use crate::error::RemoteCtrlError;
use crate::PendingConfirmation;

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
Host commands:
  /connect remote ctrl <link> [via=<host>:<port>]   connect to a controller (alias /crc)
  /verify remote ctrl <code>                        confirm the session code shown by the controller
  /find remote ctrl                                 find a paired controller on the LAN
  /confirm remote ctrl <id>                         connect to a found controller
  /stop remote ctrl                                 end the remote session
  /list remote ctrls                                paired controllers
  /delete remote ctrl <id>                          forget a controller
  /set device name <name>                           the name controllers see
  /notes, /note <text>, /delete note <id>           the local notes
  /files, /delete file <id>                         the files that controllers stored here
  /help                                             this list
  /quit                                             end the session and leave (or Ctrl-D)
Up and Down recall earlier lines, Ctrl-R searches them, Tab completes a command.
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

enum UiEvent {
    Line(String),
    /// TLS is up: the session code waits for the user.
    Pending {
        id: Option<i64>,
        pending: Box<PendingConfirmation>,
    },
    Started {
        id: i64,
        name: String,
        compression: bool,
    },
    Found(Box<Discovered>),
    Failed(RemoteCtrlError),
    Stopped,
    Command(String),
    /// Ctrl-C at the prompt: quit.
    Interrupted,
}

enum State {
    Idle,
    /// Connecting, verifying or discovering: a task runs.
    Busy(JoinHandle<()>),
    WaitingCode {
        id: Option<i64>,
        pending: Box<PendingConfirmation>,
    },
    Found(Box<Discovered>),
    Connected(JoinHandle<()>),
}

struct Console {
    ctx: Context,
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
    let mut console = Console {
        ctx,
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

fn is_busy(state: &State) -> bool {
    !matches!(state, State::Idle | State::Found(_))
}

impl Console {
    fn reset(&mut self) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Busy(t) | State::Connected(t) => t.abort(),
            State::WaitingCode { pending, .. } => {
                tokio::spawn(pending.reject());
            }
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
                self.state = State::WaitingCode { id, pending };
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
                let (name, version) = ctrl_summary(&found.invitation);
                println!(
                    "remote controller {} found: {}, v{}",
                    found.id,
                    Escaped(&name),
                    Escaped(&version)
                );
                println!("use /confirm remote ctrl {} to connect", found.id);
                self.state = State::Found(found);
            }
            UiEvent::Failed(e) => {
                self.state = State::Idle;
                match e {
                    RemoteCtrlError::Protocol(xrcp::RcError::Identity) => println!(
                        "remote controller stopped: this link was used with another controller, please create a new link on the host"
                    ),
                    RemoteCtrlError::BadVerificationCode => {
                        println!("remote controller stopped");
                        println!("remote controller error: RCEProtocolError {{protocolError = PRESessionCode}}");
                    }
                    other => {
                        println!("remote controller stopped");
                        println!("remote controller error: {}", Escaped(&other));
                    }
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
                println!("remote controller error: RCEInactive");
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
        } else if let Some(code) = line.strip_prefix("/verify remote ctrl ") {
            self.verify(code.trim())
        } else if line == "/find remote ctrl" {
            self.find()
        } else if let Some(id) = line.strip_prefix("/confirm remote ctrl ") {
            self.confirm(id.trim())
        } else if line == "/list remote ctrls" {
            self.list()
        } else if let Some(id) = line.strip_prefix("/delete remote ctrl ") {
            self.delete(id.trim())
        } else if let Some(name) = line.strip_prefix("/set device name ") {
            self.ctx
                .settings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .device_name = name.trim().to_owned();
            println!("ok");
            Ok(())
        } else {
            println!("{}", render(&self.ctx.notes.run(line).await));
            Ok(())
        };
        if let Err(e) = result {
            // Errors may quote the controller's text.
            println!("{}", Escaped(&e));
        }
    }

    fn start_connect(
        &mut self,
        inv: SignedInvitation,
        via: Option<SocketAddr>,
        known: Option<(i64, xrcp::pairing::CtrlPairing)>,
    ) {
        let (name, version) = ctrl_summary(&inv);
        match &known {
            // The link's name and version: not verified by anything yet.
            Some((id, _)) => println!(
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
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let id = known.as_ref().map(|(id, _)| *id);
            let result = async {
                let options = host_options(&ctx, &inv, via)?;
                crate::connect(inv, known.map(|(_, p)| p), options).await
            }
            .await;
            let _ = tx.send(match result {
                Ok(pending) => UiEvent::Pending {
                    id,
                    pending: Box::new(pending),
                },
                Err(e) => UiEvent::Failed(e),
            });
        });
        self.state = State::Busy(task);
    }

    fn connect(&mut self, rest: &str) -> Result<(), String> {
        if is_busy(&self.state) {
            return Err("remote controller error: RCEBusy".into());
        }
        let (link, via) = match rest.trim().split_once(" via=") {
            Some((l, v)) => (
                l,
                Some(
                    v.trim()
                        .parse::<SocketAddr>()
                        .map_err(|_| format!("bad address {v}"))?,
                ),
            ),
            None => (rest.trim(), None),
        };
        let inv = SignedInvitation::parse_verified(link)
            .map_err(|e| format!("remote controller error: RCEBadInvitation ({e})"))?;
        if let Some(w) = address_warning(&inv, via) {
            println!("{w}");
        }
        let known = known_pairing(&self.ctx, &inv);
        self.start_connect(inv, via, known);
        Ok(())
    }

    fn verify(&mut self, code: &str) -> Result<(), String> {
        let State::WaitingCode { id, pending } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return Err("remote controller error: RCEBadState".into());
        };
        let _ = id;
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        let code = code.to_owned();
        let task = tokio::spawn(async move {
            let connected = match pending.verify(&code).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(UiEvent::Failed(e));
                    return;
                }
            };
            let started_tx = tx.clone();
            let command_tx = tx.clone();
            let result = serve(
                &ctx,
                connected,
                move |id, name, compression| {
                    let _ = started_tx.send(UiEvent::Started {
                        id,
                        name: name.to_owned(),
                        compression,
                    });
                },
                move |c| {
                    let _ = command_tx.send(UiEvent::Command(c.to_owned()));
                },
            )
            .await;
            if let Err(e) = result {
                tracing::debug!("session ended: {e}");
            }
            let _ = tx.send(UiEvent::Stopped);
        });
        self.state = State::Connected(task);
        Ok(())
    }

    fn find(&mut self) -> Result<(), String> {
        if is_busy(&self.state) {
            return Err("remote controller error: RCEBusy".into());
        }
        let known = self.ctx.store().known().map_err(|e| e.to_string())?;
        if known.is_empty() {
            return Err("remote controller error: RCENoKnownControllers".into());
        }
        println!("ok");
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let options = DiscoverOptions {
                timeout: Duration::from_secs(60),
                ..DiscoverOptions::default()
            };
            let _ = tx.send(match discover(known, &options).await {
                Ok(found) => UiEvent::Found(Box::new(found)),
                Err(e) => UiEvent::Failed(e),
            });
        });
        self.state = State::Busy(task);
        Ok(())
    }

    fn confirm(&mut self, id: &str) -> Result<(), String> {
        let id: i64 = id.parse().map_err(|_| format!("bad id {id}"))?;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Found(found) if found.id == id => {
                let found = *found;
                self.start_connect(found.invitation, None, Some((found.id, found.pairing)));
                Ok(())
            }
            other => {
                self.state = other;
                Err("remote controller error: RCEBadController".into())
            }
        }
    }

    fn list(&self) -> Result<(), String> {
        let ctrls = self.ctx.store().list().map_err(|e| e.to_string())?;
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
            return Err("remote controller error: RCEBusy".into());
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
    fn help_shows_every_command_that_tab_completes() {
        for c in COMMANDS {
            assert!(HELP.contains(c.trim_end()), "{c:?} is not in /help");
        }
    }
}
