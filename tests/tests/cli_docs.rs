//! The screens that README.md and docs/cli.md show are the programs' screens: this test
//! runs both walk-throughs in 80×24 terminals and finds every block marked
//! `<!-- screen: NAME -->` in the terminal NAME, in order.
//!
//! In a block, `…` stands for text that differs per run (ports, keys, codes); everything
//! else must be on the screen as written. A line the line editor wrapped at the terminal's
//! width (a long typed command) counts as one line. Both programs run in network
//! namespaces of their own, so the addresses they print do not depend on this machine.

use std::path::Path;
use std::time::Duration;

use xrcp_tests::cli::{binaries, Tmux};
use xrcp_tests::netns::{skip_or_panic, Namespaces};

const START: Duration = Duration::from_secs(15);
const STEP: Duration = Duration::from_secs(20);
const SIZE: (u16, u16) = (80, 24);

/// `(terminal name, lines)` of each marked block of `file`, in order.
fn screens(file: &str) -> Vec<(String, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- screen: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```text"),
            "{file}: a screen block opens with ```text"
        );
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .map(str::to_owned)
            .collect();
        assert!(!block.is_empty(), "{file}: empty screen block {name}");
        out.push((name.to_owned(), block));
    }
    out
}

/// Whether `shown` is `doc` with each `…` standing for any text.
fn fits(doc: &str, shown: &str) -> bool {
    let pieces: Vec<&str> = doc.split('…').collect();
    if pieces.len() == 1 {
        return doc == shown;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !shown.starts_with(first) || !shown.ends_with(last) || shown.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &shown[first.len()..shown.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Where `block` ends on `screen`, if it is there as consecutive lines from line `from` on.
fn find(screen: &[String], from: usize, block: &[String]) -> Option<usize> {
    (from..screen.len()).find_map(|start| find_at(screen, start, block))
}

/// Where `block` ends if it starts at line `at`. A screen line that fills the terminal's
/// width may be a line the line editor wrapped (a long typed command): it is also tried
/// joined with the lines after it, longest first (tmux drops the trailing spaces of a line,
/// so a line is padded back to the width before the next is appended).
fn find_at(screen: &[String], at: usize, block: &[String]) -> Option<usize> {
    let Some((doc, rest)) = block.split_first() else {
        return Some(at);
    };
    let width = usize::from(SIZE.0);
    let mut joins = vec![(screen.get(at)?.clone(), at + 1)];
    while let Some((last, next)) = joins.last().cloned() {
        let Some(more) = screen.get(next) else { break };
        let n = last.chars().count();
        if n < width - 1 || (n % width != 0 && n % width != width - 1) {
            break;
        }
        let pad = (width - n % width) % width;
        joins.push((format!("{last}{}{more}", " ".repeat(pad)), next + 1));
    }
    joins
        .into_iter()
        .rev()
        .filter(|(line, _)| fits(doc, line))
        .find_map(|(_, next)| find_at(screen, next, rest))
}

/// Checks that every block of `file` for a terminal of `t` is on its screen, in order.
fn check(t: &Tmux, file: &str, terminals: &[&str]) {
    let blocks = screens(file);
    for name in terminals {
        let screen = t.lines(name);
        let mut from = 0;
        let mine: Vec<_> = blocks.iter().filter(|(n, _)| n == name).collect();
        assert!(!mine.is_empty(), "{file}: no screen blocks for {name}");
        for (_, block) in mine {
            match find(&screen, from, block) {
                Some(end) => from = end,
                None => panic!(
                    "{file}: this {name} block is not on the screen (after line {from}):\n{}\n--- screen ---\n{}",
                    block.join("\n"),
                    screen.join("\n")
                ),
            }
        }
    }
}

/// Two machines: `desk` (10.9.0.1) and `phone` (10.9.0.2) on one link.
fn machines(test: &str) -> Option<Namespaces> {
    let ns = match Namespaces::create(&["desk", "phone"]) {
        Ok(ns) => ns,
        Err(e) => return skip_or_panic(test, e),
    };
    match ns.link("desk", "10.9.0.1/24", "phone", "10.9.0.2/24") {
        Ok(()) => Some(ns),
        Err(e) => skip_or_panic(test, e),
    }
}

fn ip_program() -> &'static Path {
    for p in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] {
        if Path::new(p).exists() {
            return Path::new(p);
        }
    }
    panic!("iproute2's ip is needed for this test")
}

/// The one line after `needle`'s line (the code, the link).
fn after(t: &Tmux, name: &str, needle: &str) -> String {
    let (at, _) = t.wait_for(name, 0, needle, STEP);
    t.line_after(name, at, STEP)
}

fn typed(t: &Tmux, name: &str, line: &str, answer: &str) {
    let m = t.mark(name);
    t.type_line(name, line);
    t.wait_for(name, m, answer, STEP);
}

#[test]
fn readme_screens_are_the_programs_screens() {
    let Some(ns) = machines("readme_screens_are_the_programs_screens") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::new(dir.path());
    let (c, h) = (dir.path().join("c"), dir.path().join("h"));
    let ip = ip_program().to_str().unwrap();
    let run = |role: &str, program: &Path, args: &[&str]| {
        let mut all = vec!["netns", "exec", ns.name(role), program.to_str().unwrap()];
        all.extend_from_slice(args);
        t.open_sized(role, SIZE, Path::new(ip), &all);
    };
    run(
        "desk",
        &binaries().ctrl,
        &[
            "--data-dir",
            c.to_str().unwrap(),
            "--device-name",
            "desk",
            "link",
        ],
    );
    let (at, _) = t.wait_for("desk", 0, "Remote session invitation:", START);
    let link = t.line_after("desk", at, STEP);
    run(
        "phone",
        &binaries().host,
        &[
            "--data-dir",
            h.to_str().unwrap(),
            "--device-name",
            "phone",
            "connect",
            &link,
        ],
    );
    let code = after(&t, "phone", "Compare session code with controller:");
    typed(&t, "phone", &code, "session started");
    t.wait_for("desk", 0, "connected (with compression)", STEP);
    typed(&t, "desk", "/note buy milk", "note 1 added");
    typed(&t, "desk", "/notes", "1. buy milk");
    typed(&t, "desk", "/quit", "stopped");
    t.wait_for("phone", 0, "remote controller stopped", STEP);
    check(&t, "README.md", &["desk", "phone"]);
}

#[test]
fn walk_through_screens_are_the_programs_screens() {
    let Some(ns) = machines("walk_through_screens_are_the_programs_screens") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::new(dir.path());
    let (c, h) = (dir.path().join("c"), dir.path().join("h"));
    // Both programs on one machine (the desk), as the walk-through runs them.
    let ip = ip_program().to_str().unwrap();
    for (name, program, data, device) in [
        ("ctrl", &binaries().ctrl, &c, "desk"),
        ("host", &binaries().host, &h, "phone"),
    ] {
        t.open_sized(
            name,
            SIZE,
            Path::new(ip),
            &[
                "netns",
                "exec",
                ns.name("desk"),
                program.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--device-name",
                device,
            ],
        );
    }
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", START);
    t.wait_for("host", 0, "xrcp-host: /help for commands", START);
    typed(
        &t,
        "ctrl",
        "/start remote host new addr=127.0.0.1 iface=lo",
        "Remote session invitation:",
    );
    let link = after(&t, "ctrl", "Remote session invitation:");
    typed(
        &t,
        "host",
        &format!("/connect remote ctrl {link}"),
        "Compare session code with controller and use:",
    );
    let code = after(&t, "ctrl", "Compare session code with host:");
    typed(
        &t,
        "host",
        &format!("/verify remote ctrl {code}"),
        "session started",
    );
    t.wait_for("ctrl", 0, "remote host 1 connected", STEP);
    for (line, answer) in [
        ("/note buy milk", "note 1 added"),
        ("/notes", "1. buy milk"),
        ("/files", "no files"),
        ("/launch rockets", "unknown command"),
        ("/list remote hosts", "1. phone"),
    ] {
        typed(&t, "ctrl", line, answer);
    }
    typed(&t, "host", "/stop remote ctrl", "ok");
    t.wait_for("ctrl", 0, "remote host 1 stopped", STEP);
    typed(&t, "host", "/list remote ctrls", "1. desk");
    check(&t, "docs/cli.md", &["ctrl", "host"]);
}

#[test]
fn the_matcher_tells_screens_apart() {
    let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(fits("started on 127.0.0.1:…", "started on 127.0.0.1:4242"));
    assert!(!fits("started on 127.0.0.1:…", "started on 10.0.0.1:4242"));
    assert!(fits("a…b…c", "a-x-b-y-c"));
    assert!(!fits("a…b…c", "a-x-c-y-b"));
    assert!(!fits("note 1 added", "note 1 added!"));
    let screen = s(&["x", "one", "two", "three"]);
    assert_eq!(find(&screen, 0, &s(&["one", "two"])), Some(3));
    assert_eq!(find(&screen, 0, &s(&["one", "three"])), None);
    assert_eq!(find(&screen, 2, &s(&["one"])), None);
    // A typed line the editor wrapped at 80 columns.
    let long = format!("/verify {} 2", "1".repeat(71));
    let wrapped = s(&[long[..79].trim_end(), &long[80..]]);
    assert_eq!(find(&wrapped, 0, &s(&[&long])), Some(2));
    assert_eq!(find(&wrapped, 0, &s(&["/verify …"])), Some(2));
    assert_eq!(find(&wrapped, 0, &s(&["/verify …", "2"])), Some(2));
}
