//! The chat view of the interactive mode: a phone's chat API results and events shown the
//! way the SimpleX terminal shows them (`alice> hi`, `#team bob> see you`, the chat list
//! with unread counts, …), and the shortcuts a terminal needs (`/chats`, `/open @alice`,
//! `/tail`, `/search`, `/file`, `/json on|off`).
//!
//! # Why our own types, not `simploxide-api-types`
//!
//! That crate (0.12, edition 2024) would build with our toolchain, but it is generated for
//! one chat core release: its records have required fields, so a phone on an older or newer
//! release that leaves one out, or renames one, fails the whole response, and each new chat
//! core release is a breaking release of the crate. A linked phone can run any release. The
//! view needs a few dozen fields; [`types`] declares just those, every one with a default and
//! every union with a catch-all, so unknown responses, variants and fields degrade to a
//! summary line instead of an error (and there are no 22 000 generated lines to compile).
//!
//! Everything here is the phone's text: each rendered line is escaped for the terminal
//! ([`xrcp::display`]), and no result prints more than [`MAX_LINES`] lines.

mod types;

use std::collections::{HashMap, VecDeque};

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::Value;
use xrcp::display::escape;
use xrcp::session::{RRResult, RemoteFile};

use types::{AChat, AChatItem, ChatDir, ChatInfo, ChatItem, ChatMsg, FileStatus, ItemContent};

/// The most lines one result or event prints; the rest is counted in a last line.
pub(crate) const MAX_LINES: usize = 20;
/// How many chat files `/get remote file` can name by id (the most recently shown).
const MAX_FILES: usize = 256;
/// How many messages `/open` shows.
const OPEN_TAIL: u32 = 10;

/// The notes application's result types: those keep their own rendering.
pub(crate) const NOTES_TYPES: &[&str] = &[
    "notes",
    "files",
    "noteCreated",
    "noteDeleted",
    "fileDeleted",
    "fileStored",
    "help",
];

/// What the view remembers between lines: the open chat, `/json`, the active user, and the
/// files of the chat items it showed (for `/get remote file`).
#[derive(Debug)]
pub(crate) struct View {
    open: Option<String>,
    json: bool,
    user_id: Option<i64>,
    files: HashMap<i64, RemoteFile>,
    file_order: VecDeque<i64>,
    /// Where message times are shown: the phone sends UTC; people read their own clock.
    zone: TimeZone,
}

/// What a line typed in the interactive mode becomes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// Not a chat shortcut: the console handles it.
    Pass,
    /// Send this chat command to the host.
    Send(String),
    /// Answered here: print this.
    Say(String),
    /// `/open`: say this, then send the command that shows the chat's last messages.
    Open(String, String),
    /// `/file <chat> <path>`: upload `path`, then send it into `chat`.
    SendFile { chat: String, path: String },
}

/// The first character of a line the SimpleX CLI reads as a command of its own (a message
/// to a chat, an edit, a deletion, a reply, a reaction): such lines go as typed even when a
/// chat is open.
const CLI_PREFIXES: &[char] = &['/', '@', '#', '!', '\\', '>', '+', '-', '*'];

impl Default for View {
    /// A view that shows message times in UTC.
    fn default() -> View {
        View {
            open: None,
            json: false,
            user_id: None,
            files: HashMap::new(),
            file_order: VecDeque::new(),
            zone: TimeZone::UTC,
        }
    }
}

impl View {
    /// A view that shows message times on this machine's clock (its `TZ` or system zone;
    /// UTC where neither is known). `View::default()` shows them in UTC.
    pub(crate) fn local() -> View {
        View {
            zone: TimeZone::system(),
            ..View::default()
        }
    }

    /// The chat plain lines go to, as typed after `/open` (`@alice`, `#team`).
    #[cfg(test)]
    pub(crate) fn open_chat(&self) -> Option<&str> {
        self.open.as_deref()
    }

    /// Expands the chat shortcuts of a typed line (already trimmed at the end).
    pub(crate) fn line(&mut self, line: &str) -> Line {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let open = self.open.clone();
        match word {
            "/chats" if rest.is_empty() => {
                Line::Send(format!("/_get chats {} pcc=on", self.user_id.unwrap_or(1)))
            }
            "/open" if rest.is_empty() => Line::Say(match &open {
                Some(c) => format!("chat {} is open: plain lines go there", escape(c)),
                None => "no chat is open: /open @<contact> or /open #<group>".into(),
            }),
            "/open" => {
                if !(rest.starts_with('@') || rest.starts_with('#')) || rest.len() < 2 {
                    return Line::Say(format!(
                        "'{}' is not a chat: /open @<contact> or /open #<group>",
                        escape(rest)
                    ));
                }
                self.open = Some(rest.to_owned());
                Line::Open(
                    format!(
                        "chat {} is open: plain lines go there (/close to stop)",
                        escape(rest)
                    ),
                    format!("/tail {rest} {OPEN_TAIL}"),
                )
            }
            "/close" if rest.is_empty() => match self.open.take() {
                Some(c) => Line::Say(format!(
                    "chat {} closed: plain lines go to the host as typed",
                    escape(&c)
                )),
                None => Line::Say("no chat is open".into()),
            },
            // `/tail [n]` and `/search <text>` without a chat name: the open chat's.
            "/tail" => match (&open, rest) {
                (Some(c), n) if n.is_empty() || n.parse::<u32>().is_ok() => {
                    Line::Send(format!("/tail {c} {}", if n.is_empty() { "20" } else { n }))
                }
                _ => Line::Pass,
            },
            "/search" => match &open {
                _ if rest.is_empty() => Line::Say("usage: /search <text>".into()),
                Some(c) if !(rest.starts_with('@') || rest.starts_with('#')) => {
                    Line::Send(format!("/search {c} {rest}"))
                }
                _ => Line::Pass,
            },
            "/json" => match rest {
                "on" => {
                    self.json = true;
                    Line::Say("chat results are shown as JSON".into())
                }
                "off" => {
                    self.json = false;
                    Line::Say("chat results are shown as text".into())
                }
                _ => Line::Say("usage: /json on|off".into()),
            },
            "/file" => {
                let (chat, path) = match rest.split_once(' ') {
                    Some((c, p)) if c.starts_with('@') || c.starts_with('#') => {
                        (c.to_owned(), p.trim())
                    }
                    _ => match &open {
                        Some(c) if !rest.is_empty() => (c.clone(), rest),
                        _ => {
                            return Line::Say(
                                "usage: /file @<contact>|#<group> <path> (or /file <path> in \
                                 an open chat)"
                                    .into(),
                            )
                        }
                    },
                };
                if path.is_empty() {
                    return Line::Say("usage: /file @<contact>|#<group> <path>".into());
                }
                Line::SendFile {
                    chat,
                    path: path.to_owned(),
                }
            }
            _ => match &open {
                Some(c) if !line.starts_with(CLI_PREFIXES) => Line::Send(format!("{c} {line}")),
                _ => Line::Pass,
            },
        }
    }

    /// A chat file seen in a shown chat item, by its id.
    pub(crate) fn file(&self, file_id: i64) -> Option<RemoteFile> {
        self.files.get(&file_id).cloned()
    }

    /// Whether `r` is for this view (not a notes application result or error).
    pub(crate) fn wants(r: &RRResult) -> bool {
        match r {
            RRResult::Result(v) => !v
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| NOTES_TYPES.contains(&t)),
            // The notes application's errors carry their own message.
            RRResult::Error(e) => !e.get("message").is_some_and(Value::is_string),
        }
    }

    /// The lines for a result or event of host `host`, escaped, at most [`MAX_LINES`] + 1.
    pub(crate) fn render(&mut self, host: i64, r: &RRResult) -> String {
        let lines = match r {
            RRResult::Error(e) if self.json => vec![format!("error: {e}")],
            RRResult::Result(v) if self.json => vec![v.to_string()],
            RRResult::Error(e) => vec![error_line(e)],
            RRResult::Result(v) => self.result(host, v),
        };
        bounded(&lines)
    }

    /// The lines of a result, unescaped: a line may still hold the phone's line breaks.
    fn result(&mut self, host: i64, v: &Value) -> Vec<String> {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let msg = match ChatMsg::deserialize(v) {
            Ok(m) => m,
            Err(_) => return vec![summary(kind, "that this view cannot read")],
        };
        let user_id = v
            .get("user")
            .and_then(|u| u.get("userId"))
            .and_then(Value::as_i64);
        if user_id.is_some() {
            self.user_id = user_id;
        }
        let one = match msg {
            ChatMsg::ApiChats { chats } | ChatMsg::Chats { chats } => {
                return chat_list(&chats, &self.zone)
            }
            ChatMsg::ApiChat { chat } => {
                let info = &chat.chat_info;
                let items: Vec<_> = chat.chat_items.iter().map(|i| (info, i)).collect();
                return self.items(host, &items);
            }
            ChatMsg::ChatItems { chat_items } | ChatMsg::NewChatItems { chat_items } => {
                let items: Vec<_> = chat_items
                    .iter()
                    .map(|a| (&a.chat_info, &a.chat_item))
                    .collect();
                return self.items(host, &items);
            }
            ChatMsg::ChatItemUpdated { chat_item } => {
                self.remember(host, &chat_item);
                item_line(&chat_item.chat_info, &chat_item.chat_item, &self.zone)
            }
            ChatMsg::ChatItemNotChanged { chat_item } => format!(
                "message not changed: {}",
                item_line(&chat_item.chat_info, &chat_item.chat_item, &self.zone)
            ),
            ChatMsg::ChatItemsDeleted { deletions, by_user } => {
                return deletions
                    .iter()
                    .map(|d| {
                        let a = &d.deleted_chat_item;
                        let who = if by_user { "you deleted" } else { "deleted" };
                        format!(
                            "{} [{who}] {}",
                            prefix(&a.chat_info, &a.chat_item, &self.zone),
                            item_text(&a.chat_item)
                        )
                    })
                    .collect();
            }
            ChatMsg::ChatItemReaction { added, reaction } => {
                let r = &reaction.chat_reaction;
                let emoji = match &r.reaction {
                    types::Reaction::Emoji { emoji } => emoji.as_str(),
                    types::Reaction::Other => "a reaction",
                };
                let who = match (&r.chat_dir, &reaction.chat_info) {
                    (d, _) if d.sent() => "you".to_owned(),
                    (ChatDir::GroupRcv { member: Some(m) }, _) => m.local_display_name.clone(),
                    (_, info) => chat_name(info),
                };
                let (what, to) = if added {
                    ("reacted", "to")
                } else {
                    ("removed", "from")
                };
                // In a group, where: the members' names do not say it.
                let place = match &reaction.chat_info {
                    ChatInfo::Group { .. } => format!("{} ", chat_ref(&reaction.chat_info)),
                    _ => String::new(),
                };
                format!(
                    "{place}{who} {what} {emoji} {to}: {}",
                    item_text(&r.chat_item)
                )
            }
            ChatMsg::ReceivedContactRequest { request } => {
                let name = &request.local_display_name;
                format!(
                    "{} wants to connect to you: /accept {name} or /reject {name}",
                    with_full_name(name, &request.profile.full_name)
                )
            }
            ChatMsg::ContactConnected { contact } => format!(
                "{}: contact is connected",
                with_full_name(&contact.local_display_name, &contact.profile.full_name)
            ),
            ChatMsg::ContactConnecting { contact }
            | ChatMsg::AcceptingContactRequest { contact } => {
                format!("{}: contact is connecting", contact.local_display_name)
            }
            ChatMsg::ContactSndReady { contact } => {
                format!("{}: you can send messages", contact.local_display_name)
            }
            ChatMsg::ContactDeletedByContact { contact } => format!(
                "{} deleted the contact with you (the conversation is kept)",
                contact.local_display_name
            ),
            ChatMsg::RcvFileDescrReady { chat_item } => {
                self.file_event(host, &chat_item, "is ready to be received")
            }
            ChatMsg::RcvFileAccepted { chat_item } => {
                self.file_event(host, &chat_item, "was accepted by the phone")
            }
            ChatMsg::RcvFileStart { chat_item } => {
                self.file_event(host, &chat_item, "is being received by the phone")
            }
            ChatMsg::RcvFileProgress {
                chat_item,
                done,
                total,
            } => match chat_item {
                Some(a) => {
                    let how = format!("received {}", progress(done, total));
                    self.file_event(host, &a, &how)
                }
                None => format!("receiving a file: {}", progress(done, total)),
            },
            ChatMsg::RcvFileComplete { chat_item } => {
                let saved = match chat_item.chat_item.file.as_ref() {
                    Some(f) => format!(
                        "is on the phone: /get remote file {host} {} saves it here",
                        f.file_id
                    ),
                    None => "is on the phone".into(),
                };
                self.file_event(host, &chat_item, &saved)
            }
            ChatMsg::RcvFileSndCancelled { chat_item } => {
                self.file_event(host, &chat_item, "was cancelled by the sender")
            }
            ChatMsg::RcvFileError { chat_item, error } => {
                let why = error
                    .get("type")
                    .and_then(Value::as_str)
                    .map(|t| format!("could not be received ({})", words(t)))
                    .unwrap_or_else(|| "could not be received".into());
                match chat_item {
                    Some(a) => self.file_event(host, &a, &why),
                    None => format!("a file {why}"),
                }
            }
            ChatMsg::SndFileProgress {
                chat_item,
                done,
                total,
            } => match chat_item {
                Some(a) => self.file_event(host, &a, &format!("sent {}", progress(done, total))),
                None => format!("sending a file: {}", progress(done, total)),
            },
            ChatMsg::SndFileComplete { chat_item } => self.file_event(host, &chat_item, "was sent"),
            ChatMsg::SndFileError { chat_item, message } => {
                let why = format!("could not be sent: {message}");
                match chat_item {
                    Some(a) => self.file_event(host, &a, &why),
                    None => format!("a file {why}"),
                }
            }
            ChatMsg::ChatCmdError { error } | ChatMsg::ChatError { error } => error_line(&error),
            ChatMsg::CmdOk {} => "ok".into(),
            ChatMsg::Other => summary(kind, "that this view does not show"),
        };
        vec![one]
    }

    /// Message lines, the last [`MAX_LINES`] when there are more.
    fn items(&mut self, host: i64, items: &[(&ChatInfo, &ChatItem)]) -> Vec<String> {
        if items.is_empty() {
            return vec!["no messages".into()];
        }
        let skip = items.len().saturating_sub(MAX_LINES);
        let mut lines = Vec::new();
        if skip > 0 {
            lines.push(format!("… {skip} earlier messages not shown"));
        }
        for (info, item) in &items[skip..] {
            self.remember_item(host, info, item);
            lines.push(item_line(info, item, &self.zone));
        }
        lines
    }

    fn file_event(&mut self, host: i64, a: &AChatItem, what: &str) -> String {
        self.remember(host, a);
        let file = match a.chat_item.file.as_ref() {
            Some(f) => format!("file {} ({})", f.file_id, f.file_name),
            None => "a file".into(),
        };
        let from = match &a.chat_item.chat_dir {
            d if d.sent() => format!("to {}", chat_ref(&a.chat_info)),
            ChatDir::GroupRcv { member: Some(m) } => {
                format!(
                    "from {} in {}",
                    m.local_display_name,
                    chat_ref(&a.chat_info)
                )
            }
            _ => format!("from {}", chat_name(&a.chat_info)),
        };
        format!("{file} {from} {what}")
    }

    fn remember(&mut self, host: i64, a: &AChatItem) {
        self.remember_item(host, &a.chat_info, &a.chat_item);
    }

    /// Keeps a shown item's file (with its path on the phone) for `/get remote file`.
    fn remember_item(&mut self, _host: i64, _info: &ChatInfo, item: &ChatItem) {
        let Some(f) = &item.file else { return };
        let Some(source) = &f.file_source else { return };
        let file = RemoteFile {
            user_id: self.user_id.unwrap_or(1),
            file_id: f.file_id,
            sent: item.chat_dir.sent(),
            file_source: source.clone(),
        };
        if self.files.insert(f.file_id, file).is_none() {
            self.file_order.push_back(f.file_id);
            if self.file_order.len() > MAX_FILES {
                if let Some(old) = self.file_order.pop_front() {
                    self.files.remove(&old);
                }
            }
        }
    }
}

/// `name (Full Name)`, or the name when there is no other full name.
fn with_full_name(name: &str, full: &str) -> String {
    if full.is_empty() || full == name {
        name.to_owned()
    } else {
        format!("{name} ({full})")
    }
}

/// The chat list: one line per chat, at most [`MAX_LINES`], then how many more.
fn chat_list(chats: &[AChat], zone: &TimeZone) -> Vec<String> {
    if chats.is_empty() {
        return vec!["no chats".into()];
    }
    let mut lines: Vec<String> = chats
        .iter()
        .take(MAX_LINES)
        .map(|c| {
            let unread = match c.chat_stats.unread_count {
                0 => String::new(),
                n => format!(" ({n} unread)"),
            };
            let last = c
                .chat_items
                .last()
                .map(|i| {
                    let who = match &i.chat_dir {
                        d if d.sent() => "you: ".to_owned(),
                        ChatDir::GroupRcv { member: Some(m) } => {
                            format!("{}> ", m.local_display_name)
                        }
                        _ => String::new(),
                    };
                    format!(": {}{who}{}", time(&i.meta.item_ts, zone), item_text(i))
                })
                .unwrap_or_default();
            let what = match &c.chat_info {
                ChatInfo::ContactRequest { .. } => " (wants to connect: /accept or /reject)",
                ChatInfo::ContactConnection { .. } => " (pending connection)",
                ChatInfo::Local { .. } => " (your notes)",
                _ => "",
            };
            format!("{}{what}{unread}{last}", chat_ref(&c.chat_info))
        })
        .collect();
    if chats.len() > MAX_LINES {
        lines.push(format!("… {} more chats", chats.len() - MAX_LINES));
    }
    lines
}

/// `HH:MM ` of a chat API timestamp (RFC 3339 in UTC, as the phone sends it) on the clock of
/// `zone`; the text's own `HH:MM` if it does not parse as a timestamp; nothing if it has none.
fn time(ts: &str, zone: &TimeZone) -> String {
    if let Ok(t) = ts.parse::<jiff::Timestamp>() {
        return zone.to_datetime(t).strftime("%H:%M ").to_string();
    }
    match ts.get(11..16) {
        Some(t) if t.as_bytes().get(2) == Some(&b':') => format!("{t} "),
        _ => String::new(),
    }
}

/// How the chat is named in commands: `@alice`, `#team`, `*` (notes), `<@dave` (request).
fn chat_ref(info: &ChatInfo) -> String {
    match info {
        ChatInfo::Direct { contact } => format!("@{}", quoted(&contact.local_display_name)),
        ChatInfo::Group { group } => format!("#{}", quoted(&group.local_display_name)),
        ChatInfo::Local {} => "*".into(),
        ChatInfo::ContactRequest { request } => {
            format!("<@{}", quoted(&request.local_display_name))
        }
        ChatInfo::ContactConnection {} => ":connection".into(),
        ChatInfo::Other => "?".into(),
    }
}

/// A name with a space in it is quoted, as the CLI's commands take it.
fn quoted(name: &str) -> String {
    if name.contains(' ') {
        format!("'{name}'")
    } else {
        name.to_owned()
    }
}

fn chat_name(info: &ChatInfo) -> String {
    match info {
        ChatInfo::Direct { contact } => contact.local_display_name.clone(),
        ChatInfo::Group { group } => group.local_display_name.clone(),
        _ => chat_ref(info),
    }
}

/// The start of a message line: time and who wrote where (`10:15 alice>`, `10:16 @alice`,
/// `10:20 #team bob>`, `10:21 #team`).
fn prefix(info: &ChatInfo, item: &ChatItem, zone: &TimeZone) -> String {
    let t = time(&item.meta.item_ts, zone);
    let t = t.trim_end();
    let sep = if t.is_empty() { "" } else { " " };
    match (&item.chat_dir, info) {
        (ChatDir::DirectRcv, ChatInfo::Direct { contact }) => {
            format!("{t}{sep}{}>", contact.local_display_name)
        }
        (ChatDir::GroupRcv { member }, ChatInfo::Group { group }) => format!(
            "{t}{sep}#{} {}>",
            group.local_display_name,
            member
                .as_ref()
                .map(|m| m.local_display_name.as_str())
                .unwrap_or("?")
        ),
        (_, info) => format!("{t}{sep}{}", chat_ref(info)),
    }
}

/// A message's text, with its file and what happened to it.
fn item_text(item: &ChatItem) -> String {
    let mut text = match &item.content {
        ItemContent::SndMsgContent { msg } | ItemContent::RcvMsgContent { msg } => msg.text.clone(),
        ItemContent::SndDeleted {} | ItemContent::RcvDeleted {} => "[deleted]".into(),
        ItemContent::Other => item.meta.item_text.clone(),
    };
    if let Some(f) = &item.file {
        let sep = if text.is_empty() { "" } else { " " };
        let status = match &f.file_status {
            FileStatus::RcvInvitation => format!(", /freceive {} to accept", f.file_id),
            FileStatus::RcvTransfer { done, total } => format!(", {}", progress(*done, *total)),
            FileStatus::SndTransfer { done, total } => format!(", {}", progress(*done, *total)),
            FileStatus::RcvComplete => ", received".into(),
            FileStatus::SndComplete => ", sent".into(),
            FileStatus::RcvCancelled | FileStatus::SndCancelled => ", cancelled".into(),
            FileStatus::RcvError | FileStatus::SndError => ", failed".into(),
            _ => String::new(),
        };
        text.push_str(&format!(
            "{sep}[file {}: {}, {}{status}]",
            f.file_id,
            f.file_name,
            size(f.file_size)
        ));
    }
    if item.meta.item_edited {
        text.push_str(" [edited]");
    }
    if item.meta.item_deleted.is_some() && !text.ends_with("[deleted]") {
        text.push_str(" [deleted]");
    }
    text
}

fn item_line(info: &ChatInfo, item: &ChatItem, zone: &TimeZone) -> String {
    format!("{} {}", prefix(info, item, zone), item_text(item))
}

fn size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} bytes"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
    }
}

fn progress(done: u64, total: u64) -> String {
    if total == 0 {
        return size(done);
    }
    format!(
        "{} of {} ({}%)",
        size(done),
        size(total),
        done * 100 / total
    )
}

/// `camelCase` type names as words: `contactNotReady` → `contact not ready`.
fn words(tag: &str) -> String {
    let mut out = String::new();
    let upper = tag.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    if upper {
        return tag.replace('_', " ").to_lowercase();
    }
    for c in tag.chars() {
        if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A result the view does not show as such: its type, and how to see all of it.
fn summary(kind: &str, why: &str) -> String {
    let kind = if kind.is_empty() { "(no type)" } else { kind };
    format!("[{kind}] a response {why} (/json on shows it whole)")
}

/// One human line for a chat error (`ChatError`: `error`, `errorStore`, `errorAgent`, …).
pub(crate) fn error_line(e: &Value) -> String {
    let tag = |v: &Value| {
        v.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let what = match tag(e).as_str() {
        "error" => {
            let t = &e["errorType"];
            match tag(t).as_str() {
                "noActiveUser" => "the phone has no active chat profile".into(),
                "commandError" => format!("the phone did not understand: {}", s(t, "message")),
                "contactNotReady" => format!(
                    "{} is not connected yet: wait for the connection",
                    s(&t["contact"], "localDisplayName")
                ),
                "contactNotActive" | "contactDisabled" => format!(
                    "{} cannot receive messages now",
                    s(&t["contact"], "localDisplayName")
                ),
                "fileNotFound" | "fileNotReceived" => "the phone has no such file".into(),
                other => words(other),
            }
        }
        "errorStore" => {
            let t = &e["storeError"];
            match tag(t).as_str() {
                "contactNotFoundByName" => format!("no contact {}", s(t, "contactName")),
                "groupNotFoundByName" => format!("no group {}", s(t, "groupName")),
                "chatItemNotFound" | "chatItemNotFoundByText" => "no such message".into(),
                "fileNotFound" => "the phone has no such file".into(),
                other => words(other),
            }
        }
        "errorAgent" => {
            let t = &e["agentError"];
            match tag(t).as_str() {
                "BROKER" | "SMP" | "XFTP" | "PROXY" => format!(
                    "the phone's messaging server did not answer ({})",
                    words(&tag(&t["brokerErr"]).if_empty(&tag(t)))
                ),
                other => format!("the phone's messaging agent failed ({})", words(other)),
            }
        }
        "noteNotFound" => format!("no note {}", e["noteId"]),
        "fileNotFound" => format!("no file {}", e["fileId"]),
        // The notes application's own errors, and any other error with a message.
        _ if e.get("message").is_some_and(Value::is_string) => s(e, "message"),
        "" => "the phone refused the command".into(),
        other => words(other),
    };
    format!("error: {what}")
}

trait IfEmpty {
    fn if_empty(self, other: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: &str) -> String {
        if self.is_empty() {
            other.to_owned()
        } else {
            self
        }
    }
}

/// Escapes each line (a line break inside the phone's text cannot start a line of its own),
/// and cuts what is still too long (a single huge field) after [`MAX_LINES`] lines and 8 KiB.
fn bounded(lines: &[String]) -> String {
    const MAX_BYTES: usize = 8 << 10;
    let mut out = Vec::new();
    let mut bytes = 0;
    let total = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if i > MAX_LINES || bytes > MAX_BYTES {
            out.push(format!("… {} more lines", total - i));
            break;
        }
        let mut l = escape(line).into_owned();
        if l.len() > MAX_BYTES {
            let mut cut = MAX_BYTES;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            l.truncate(cut);
            l.push_str(" …");
        }
        bytes += l.len();
        out.push(l);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests;
