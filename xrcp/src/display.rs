//! Showing a peer's text on a terminal without letting it drive the terminal.
//!
//! Device names, app versions, file names, error texts and notes come from the other side of
//! the link, some before the session code was compared. Printed raw, an escape sequence in
//! them could retitle the window, clear the screen or move the cursor, a carriage return or
//! line break could fake a line of our own output, and a bidi override could make text read
//! differently from its bytes. Everything a peer supplied goes through [`Escaped`] (or
//! [`escape`]) before it reaches a terminal in text mode; JSON output is escaped by
//! `serde_json` instead (docs/security/terminal-and-secrets.md).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` must not reach a terminal as is: C0 and C1 control characters, DEL, the
/// Unicode line and paragraph separators, bidi controls, and invisible format characters
/// that can hide or reorder text. Joiners (U+200C, U+200D), variation selectors and emoji
/// tag characters stay: emoji and several scripts need them and they cannot move text.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // soft hyphen, Arabic letter mark, Mongolian vowel separator
        | '\u{ad}' | '\u{61c}' | '\u{180e}'
        // zero-width space, LRM/RLM, line/paragraph separators, bidi embeddings/overrides
        | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}'
        // word joiner, invisible operators, bidi isolates, deprecated format controls
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
        // zero-width no-break space (BOM), interlinear annotation controls
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        // language tag
        | '\u{e0001}'
    )
}

/// The visible form of one unsafe character (`\n`, `\r`, `\t`, else `\u{…}`).
fn write_escaped(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\\' => out.write_str("\\\\"),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// Writes `s` with every unsafe character (see [`is_unsafe_char`]) and the backslash in
/// visible escaped form, so that the output cannot be mistaken for our own escapes either.
fn write_str_escaped(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut rest = s;
    while let Some((at, c)) = rest
        .char_indices()
        .find(|&(_, c)| c == '\\' || is_unsafe_char(c))
    {
        out.write_str(&rest[..at])?;
        write_escaped(out, c)?;
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// `s` safe to print on a terminal: unchanged (borrowed) unless it holds a backslash or an
/// unsafe character.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Writing to a String cannot fail.
    let _ = write_str_escaped(&mut out, s);
    Cow::Owned(out)
}

/// Displays a value (a peer's string, or an error whose text may quote one) with the
/// escaping of [`escape`], without an intermediate allocation.
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Sink<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Sink<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                write_str_escaped(self.0, s)
            }
        }
        write!(Sink(f), "{}", self.0)
    }
}

impl<T: fmt::Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// An [`std::io::Write`] for log lines (the programs' `tracing` output on stderr): each write
/// is one formatted event, whose text may quote a peer (an error, an address, a name). Every
/// unsafe character is escaped except the event's final line break, so a log line cannot
/// drive the terminal or fake another log line. Colours must be off (`with_ansi(false)`):
/// their escape sequences would be shown escaped too.
pub struct EscapingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        let mut out = String::with_capacity(buf.len() + 8);
        // Writing to a String cannot fail.
        let _ = write_str_escaped(&mut out, body);
        out.push_str(end);
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_not_sent() {
        let cases = [
            ("\u{1b}]0;owned\u{7}", "\\u{1b}]0;owned\\u{7}"),
            ("\u{1b}[2Jclear", "\\u{1b}[2Jclear"),
            ("name\rok: fake", "name\\rok: fake"),
            ("a\nremote host 9 connected", "a\\nremote host 9 connected"),
            ("tab\there", "tab\\there"),
            ("c1 \u{9b}31m csi", "c1 \\u{9b}31m csi"),
            ("del\u{7f}", "del\\u{7f}"),
            ("nul\u{0}", "nul\\u{0}"),
            ("\u{202e}txt.exe", "\\u{202e}txt.exe"),
            ("\u{2066}iso\u{2069}", "\\u{2066}iso\\u{2069}"),
            ("\u{200e}\u{200f}\u{61c}", "\\u{200e}\\u{200f}\\u{61c}"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}",
            ),
            ("zero\u{200b}width\u{feff}", "zero\\u{200b}width\\u{feff}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("back\\slash", "back\\\\slash"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape(raw), shown, "{raw:?}");
            assert_eq!(Escaped(raw).to_string(), shown, "{raw:?}");
            assert!(!escape(raw).chars().any(is_unsafe_char), "{raw:?}");
        }
    }

    #[test]
    fn ordinary_text_is_kept_as_is() {
        for s in [
            "Alice's phone",
            "Пётр — телефон",
            "张伟的手机",
            "هاتف أحمد",
            "📱 phone 👨\u{200d}👩\u{200d}👧 ❤\u{fe0f}",
            "क्‍ष", // a ZWJ inside Devanagari
            "",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s:?}");
            assert_eq!(Escaped(s).to_string(), s);
        }
    }

    #[test]
    fn log_lines_keep_only_their_own_line_break() {
        use std::io::Write;
        let mut w = EscapingWriter(Vec::new());
        w.write_all(b"WARN peer=\x1b[2J\rfake\nline\n").unwrap();
        w.write_all("ok \u{202e}\n".as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "WARN peer=\\u{1b}[2J\\rfake\\nline\nok \\u{202e}\n"
        );
    }

    #[test]
    fn escaped_wraps_any_display() {
        let e = std::io::Error::other("peer said \u{1b}[2J");
        assert_eq!(Escaped(&e).to_string(), "peer said \\u{1b}[2J");
        assert_eq!(format!("[{:?}]", Escaped("a\u{7}")), "[\"a\\u{7}\"]");
    }
}
