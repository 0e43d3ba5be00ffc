//! The line editor shared by the interactive modes of `xrcp-ctrl` and `xrcp-host`
//! (feature `console`): line editing with emacs keys and arrows, history kept in the data
//! directory, tab completion of the program's commands, and a printer for the lines that
//! background tasks print while the user types.
//!
//! The terminal is one per process, so this module keeps process-wide state: the printer
//! that [`say`] goes through while a line is being read.
//!
//! How reading works: [`start`] runs a blocking reader thread that hands each line to the
//! program's `sink` as soon as it is entered, and reads the next one: the user can type
//! while a command runs, as before line editing. While a line is being read, [`say`] prints
//! above the input line and the editor redraws what was typed. The thread stops reading
//! after one of the program's `quit` lines, Ctrl-C or Ctrl-D, which hands the terminal back
//! in its normal mode before the program ends. When stdin or stdout is not a terminal
//! (scripts, tests piping into the program), lines are read as they come, without editing,
//! and [`say`] is a plain `println!`.
//!
//! History: each entered line is recalled with the arrow keys during the session. The
//! history file (`history` in the data directory, mode 0600, the last [`HISTORY_LEN`]
//! lines) leaves out lines that start with one of the program's `private` prefixes — lines
//! that carry a secret, such as a session code or an invitation link — so that these are
//! never written to disk; they can still be recalled during the session that typed them.

use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::MemHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter, Helper};

/// How many lines the history file keeps (the oldest go first).
pub const HISTORY_LEN: usize = 500;

/// What the reader hands to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line, without its line end.
    Line(String),
    /// Ctrl-C at the prompt (the terminal's interrupt key does not raise SIGINT while the
    /// editor reads).
    Interrupt,
    /// Ctrl-D on an empty line, or the end of stdin.
    Eof,
}

/// What a program tells the editor about itself.
pub struct Options {
    /// The commands that Tab completes, as typed (a command that takes an argument ends with
    /// a space).
    pub commands: &'static [&'static str],
    /// Lines that start with one of these stay out of the history file.
    pub private: &'static [&'static str],
    /// Lines after which the program ends: the editor reads no more (and so leaves the
    /// terminal as it found it).
    pub quit: &'static [&'static str],
    /// The history file; `None` keeps history in memory only.
    pub history: Option<PathBuf>,
}

/// The printer of the editor while it runs on a terminal.
static PRINTER: Mutex<Option<Box<dyn ExternalPrinter + Send>>> = Mutex::new(None);

/// Prints `text` and a line end: above the input line while a line is being read, else
/// straight to stdout.
pub fn say(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let mut printer = PRINTER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = printer.as_mut() {
        if p.print(line.clone()).is_ok() {
            return;
        }
    }
    drop(printer);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Starts the reader thread: each line, Ctrl-C and the end of input go to `sink`. After
/// [`Input::Interrupt`] or [`Input::Eof`] the thread ends.
pub fn start(options: Options, sink: impl Fn(Input) + Send + 'static) {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    std::thread::spawn(move || {
        if terminal {
            match read_terminal(options, &sink) {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!("line editor: {e}");
                    // Not usable after all (an odd terminal): read plainly.
                    *PRINTER.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
            }
        }
        read_plain(sink);
    });
}

fn read_plain(sink: impl Fn(Input)) {
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(l) => sink(Input::Line(l)),
            Err(_) => break,
        }
    }
    sink(Input::Eof);
}

fn read_terminal(options: Options, sink: &impl Fn(Input)) -> Result<(), ReadlineError> {
    let config = Config::builder()
        .max_history_size(HISTORY_LEN)?
        .history_ignore_dups(true)?
        .completion_type(CompletionType::List)
        .build();
    let mut editor = Editor::with_history(config.clone(), MemHistory::with_config(&config))?;
    editor.set_helper(Some(Commands(options.commands)));
    let mut file = options.history.map(HistoryFile::open);
    if let Some(f) = &file {
        for l in &f.lines {
            editor.add_history_entry(l.as_str())?;
        }
    }
    *PRINTER.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(Box::new(editor.create_external_printer()?));
    let end = loop {
        match editor.readline("") {
            Ok(line) => {
                if !line.trim().is_empty() && !line.contains(['\n', '\r']) {
                    editor.add_history_entry(line.as_str())?;
                    if let Some(f) = file.as_mut() {
                        if !is_private(options.private, &line) {
                            f.push(&line);
                        }
                    }
                }
                let quit = options.quit.contains(&line.trim());
                sink(Input::Line(line));
                if quit {
                    break None;
                }
            }
            Err(ReadlineError::Interrupted) => break Some(Input::Interrupt),
            Err(ReadlineError::Eof) => break Some(Input::Eof),
            Err(e) => {
                tracing::debug!("line editor: {e}");
                break Some(Input::Eof);
            }
        }
    };
    // The editor no longer reads: whatever is printed from now on goes straight out.
    *PRINTER.lock().unwrap_or_else(PoisonError::into_inner) = None;
    if let Some(end) = end {
        sink(end);
    }
    Ok(())
}

/// Whether `line` stays out of the history file: it starts with one of the `private`
/// prefixes, or it looks like a session code typed at a prompt (only digits and spaces, at
/// least 8 digits: spec/xrcp.md's session code is shown as groups of digits).
fn is_private(private: &[&str], line: &str) -> bool {
    let line = line.trim();
    private.iter().any(|p| line.starts_with(p.trim_end()))
        || (line.bytes().all(|b| b.is_ascii_digit() || b == b' ')
            && line.bytes().filter(u8::is_ascii_digit).count() >= 8)
}

/// The history file: one line per entry, the last [`HISTORY_LEN`], private to the user.
struct HistoryFile {
    path: PathBuf,
    lines: VecDeque<String>,
}

impl HistoryFile {
    fn open(path: PathBuf) -> HistoryFile {
        let mut lines: VecDeque<String> = std::fs::read_to_string(&path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        while lines.len() > HISTORY_LEN {
            lines.pop_front();
        }
        let f = HistoryFile { path, lines };
        if f.path.exists() {
            // Also tightens the mode of a file made by hand.
            f.save();
        }
        f
    }

    fn push(&mut self, line: &str) {
        if self.lines.back().is_some_and(|l| l == line) {
            return;
        }
        self.lines.push_back(line.to_owned());
        while self.lines.len() > HISTORY_LEN {
            self.lines.pop_front();
        }
        self.save();
    }

    /// Rewrites the file (a temporary file renamed over it: a crash leaves the old or the
    /// new history, never half of one), created with mode 0600.
    fn save(&self) {
        let tmp = self.path.with_extension("tmp");
        let result = (|| {
            let mut f = create_private(&tmp)?;
            for l in &self.lines {
                f.write_all(l.as_bytes())?;
                f.write_all(b"\n")?;
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("history file {}: {e}", self.path.display());
        }
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a file created here: a leftover keeps its own mode.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

/// Tab completion of a program's commands: the commands that start with what is typed up to
/// the cursor.
struct Commands(&'static [&'static str]);

impl Commands {
    fn candidates(&self, typed: &str) -> Vec<String> {
        if !typed.starts_with('/') {
            return Vec::new();
        }
        let mut c: Vec<String> = self
            .0
            .iter()
            .filter(|c| c.starts_with(typed) && c.len() > typed.len())
            .map(|c| (*c).to_owned())
            .collect();
        c.sort();
        c.dedup();
        c
    }
}

impl Completer for Commands {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok((0, self.candidates(&line[..pos])))
    }
}

impl Hinter for Commands {
    type Hint = String;
}
impl Highlighter for Commands {}
impl Validator for Commands {}
impl Helper for Commands {}

/// Whether the program's command line asks for JSON output (looked at before it parses, so
/// that a command line the parser refuses is reported in the form the caller reads).
pub fn json_requested() -> bool {
    std::env::args_os().skip(1).any(|a| a == "--json")
}

/// The fields of the JSON `error` event (kind `BAD_OPTION`) for a command line `program`'s
/// parser refused: the parser's first line with where to look next as the message, and the
/// argument and value it is about.
pub fn usage_error(
    program: &str,
    e: &clap::Error,
) -> (String, serde_json::Map<String, serde_json::Value>) {
    use clap::error::{ContextKind, ContextValue};
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let mut details = serde_json::Map::new();
    if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
        details.insert("argument".into(), serde_json::Value::from(arg.clone()));
    }
    if let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue) {
        details.insert("value".into(), serde_json::Value::from(value.clone()));
    }
    (
        format!("{first} — see {program} help for the valid options"),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_offers_the_commands_that_start_with_the_text() {
        let c = Commands(&[
            "/list remote hosts",
            "/start remote host new",
            "/start remote host ",
            "/stop remote host ",
        ]);
        assert_eq!(c.candidates("/list re"), vec!["/list remote hosts"]);
        assert_eq!(
            c.candidates("/st"),
            vec![
                "/start remote host ",
                "/start remote host new",
                "/stop remote host "
            ]
        );
        assert!(c.candidates("/list remote hosts").is_empty());
        assert!(c.candidates("hello").is_empty());
    }

    #[test]
    fn secrets_stay_out_of_the_history_file() {
        let private = &["/verify remote ctrl ", "/crc "];
        assert!(is_private(private, "/verify remote ctrl 12345 67890"));
        assert!(is_private(private, "  /crc xrcp:/abc"));
        assert!(is_private(private, "12345 67890 12345"));
        assert!(!is_private(private, "/list remote ctrls"));
        assert!(!is_private(private, "/delete note 12"));
        assert!(!is_private(private, "1234"));
    }

    #[cfg(unix)]
    #[test]
    fn history_file_is_private_and_bounded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = HistoryFile::open(path.clone());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for i in 0..HISTORY_LEN + 10 {
            f.push(&format!("line {i}"));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), HISTORY_LEN);
        assert_eq!(lines[0], "line 10");
        let again = HistoryFile::open(path);
        assert_eq!(again.lines.len(), HISTORY_LEN);
    }
}
