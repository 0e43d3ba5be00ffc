//! First contact as a person meets it (issue 14, items 1 and 2), in real terminals (tmux):
//!
//! - the QR code of a real invitation is drawn only where it fits, and what is drawn decodes
//!   back to the link with an independent decoder (`rqrr`), as do the PNG and the text given to
//!   a pipe; at 80×24 the terminal is told what size the code needs and how to get an image,
//!   and the link, printed last, stays entirely on screen;
//! - the link works for minutes and says so, with reminders near its end; the host keeps its
//!   code prompt only while the controller waits, says so when the controller stopped waiting
//!   (typing the code then is harmless), and an empty or wrong code asks again.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xrcp_tests::cli::{binaries, ctrl_cmd, Proc, Tmux};

const STEP: Duration = Duration::from_secs(15);
const START: Duration = Duration::from_secs(30);
const CTRL: &str = "ctrl";
const HOST: &str = "host";

/// Types `line` and returns the mark after its echo.
fn enter(t: &Tmux, name: &str, line: &str) -> usize {
    let mark = t.mark(name);
    t.type_line(name, line);
    let (at, _) = t.wait_for(name, mark, line.get(..40).unwrap_or(line), STEP);
    at + 1
}

fn open_ctrl(t: &Tmux, dir: &Path, size: (u16, u16)) {
    let data = dir.join("ctrl");
    t.open_sized(
        CTRL,
        size,
        &binaries().ctrl,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--device-name",
            "desk",
        ],
    );
    t.wait_for(CTRL, 0, "xrcp-ctrl: /help for commands", START);
}

fn open_host(t: &Tmux, dir: &Path) {
    let data = dir.join("host");
    t.open(
        HOST,
        &binaries().host,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--device-name",
            "phone",
        ],
    );
    t.wait_for(HOST, 0, "xrcp-host: /help for commands", START);
}

/// `/start remote host new …` on the controller; returns the link (from the history, where
/// wrapped lines are joined) and the mark after it.
fn start_new(t: &Tmux, options: &str) -> (String, usize) {
    let m = enter(t, CTRL, &format!("/start remote host new {options}"));
    let (at, _) = t.wait_for(CTRL, m, "Remote session invitation:", STEP);
    let link = t.line_after(CTRL, at, STEP);
    assert!(link.starts_with("xrcp:/"), "{link:?}");
    (link, at + 2)
}

/// `/connect remote ctrl <link>` on the host; returns the code it shows and the mark after it.
fn connect(t: &Tmux, link: &str) -> (String, usize) {
    let m = enter(t, HOST, &format!("/connect remote ctrl {link}"));
    let (at, verify) = t.wait_for(HOST, m, "/verify remote ctrl ", STEP);
    let code = verify
        .strip_prefix("/verify remote ctrl ")
        .unwrap()
        .to_owned();
    (code, at + 1)
}

/// Decodes a greyscale image (`light(x, y)`) with rqrr; the image is padded with `pad`
/// modules of `pad_light` on each side and scaled up 4 times.
fn decode(
    width: usize,
    height: usize,
    light: impl Fn(usize, usize) -> bool,
    pad: usize,
    pad_light: bool,
) -> String {
    const SCALE: usize = 4;
    let (w, h) = ((width + 2 * pad) * SCALE, (height + 2 * pad) * SCALE);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let (mx, my) = (x / SCALE, y / SCALE);
        let inside = (pad..pad + width).contains(&mx) && (pad..pad + height).contains(&my);
        let l = if inside {
            light(mx - pad, my - pad)
        } else {
            pad_light
        };
        if l {
            255
        } else {
            0
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("the QR code decodes").1
}

/// Half-block text (a light module is drawn, a dark one is the background) back to modules,
/// then decoded. Around the text is the terminal's dark background, as a camera sees it.
fn decode_terminal_text(rows: &[String]) -> String {
    let rows: Vec<Vec<char>> = rows.iter().map(|r| r.chars().collect()).collect();
    let width = rows.iter().map(Vec::len).max().unwrap();
    let light = |x: usize, y: usize| {
        let c = rows[y / 2].get(x).copied().unwrap_or(' ');
        if y.is_multiple_of(2) {
            c == '█' || c == '▀'
        } else {
            c == '█' || c == '▄'
        }
    };
    decode(width, rows.len() * 2, light, 4, false)
}

fn decode_png(path: &Path) -> String {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    // The PNG has its own 4-module quiet zone: read it pixel for pixel, scaled by `decode`.
    decode(w, h, |x, y| buf[y * w + x] > 127, 0, true)
}

/// The rows of a QR code drawn in half blocks among `lines`.
fn code_rows(lines: &[String]) -> Vec<String> {
    let is_code = |l: &String| {
        l.chars().count() > 40 && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
    };
    let start = lines.iter().position(is_code).expect("a QR code on screen");
    lines[start..]
        .iter()
        .take_while(|l| is_code(l))
        .cloned()
        .collect()
}

/// In a terminal big enough for it, the code is drawn, decodes to the link, and the link comes
/// after it, entirely on screen.
#[test]
fn a_big_terminal_shows_a_code_that_decodes_to_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path(), (120, 60));
    let (link, _) = start_new(&t, "addr=127.0.0.1 iface=lo");
    assert!(link.len() > 600, "a real invitation: {} bytes", link.len());

    let screen = t.screen(CTRL);
    let code = code_rows(&screen);
    assert!(code.len() >= 40, "{} rows", code.len());
    assert_eq!(decode_terminal_text(&code), link);

    // Last on screen: the header, then the link (wrapped at 120 columns).
    let header = screen
        .iter()
        .rposition(|l| l == "Remote session invitation:")
        .expect("the header on screen");
    let shown: String = screen[header + 1..].iter().map(|l| l.trim_end()).collect();
    assert_eq!(shown, link, "the link is the last thing on screen, whole");
    let code_at = screen.iter().position(|l| *l == code[0]).unwrap();
    assert!(code_at < header, "the code comes before the link");
    assert!(
        screen[..code_at]
            .iter()
            .any(|l| l == "waiting for the host — the link works for 10 more minutes"),
        "the time the link works is said first:\n{}",
        screen.join("\n")
    );
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(CTRL, STEP), 0);
}

/// At 80×24 the code cannot fit: the terminal says which size it needs and how to get an
/// image; the link stays whole on screen. With `qr_png=` the image is written, its path said,
/// and it decodes to the link.
#[test]
fn an_80x24_terminal_keeps_the_link_and_says_how_to_get_the_code() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path(), (80, 24));
    let (link, _) = start_new(&t, "addr=127.0.0.1 iface=lo");

    let screen = t.screen(CTRL);
    let text = screen.join("\n");
    assert!(
        !screen.iter().any(|l| l.contains('▀') || l.contains('▄')),
        "no code drawn at 80×24:\n{text}"
    );
    // (The history joins the rows of a wrapped line.)
    let (_, needs) = t.wait_for(CTRL, 0, "The QR code needs a terminal of ", STEP);
    assert!(
        needs.ends_with(
            "(this one is 80×24): enlarge it and start again, or save the code as an image \
             with qr_png=<file> or qr_svg=<file>."
        ),
        "{needs}"
    );
    assert!(
        text.contains("The QR code needs a terminal of"),
        "the line is on screen:\n{text}"
    );
    let header = screen
        .iter()
        .rposition(|l| l == "Remote session invitation:")
        .expect("the header on screen");
    let shown: String = screen[header + 1..].iter().map(|l| l.trim_end()).collect();
    assert_eq!(shown, link, "the whole link is on the 80×24 screen, last");

    // Again with an image file: its path is said and it decodes to the (new) link.
    let m = enter(&t, CTRL, "/stop remote host new");
    t.wait_for(CTRL, m, "ok", STEP);
    let png = tmp.path().join("code.png");
    let (link2, _) = start_new(
        &t,
        &format!("addr=127.0.0.1 iface=lo qr_png={}", png.display()),
    );
    assert_ne!(link2, link);
    let screen = t.screen(CTRL).join("\n");
    assert!(
        screen.contains(&format!("QR code saved as PNG: {}", png.display())),
        "{screen}"
    );
    assert_eq!(decode_png(&png), link2);
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(CTRL, STEP), 0);
}

/// Scripts: text mode to a pipe (no terminal size) still gets the code as text, which decodes;
/// `--qr-png`/`--qr-svg` are written and said; JSON mode states how long the link works.
#[test]
fn scripts_get_the_code_as_text_and_images_and_the_link_lifetime() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, svg) = (tmp.path().join("q.png"), tmp.path().join("q.svg"));
    let mut c = Proc::spawn(
        "xrcp-ctrl link (text)",
        ctrl_cmd(
            &tmp.path().join("ctrl"),
            &[
                "link",
                "--addr",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
                "--qr-png",
                png.to_str().unwrap(),
                "--qr-svg",
                svg.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(60),
    );
    let mut lines = Vec::new();
    while lines
        .last()
        .is_none_or(|l: &String| !l.starts_with("xrcp:/"))
    {
        lines.push(c.line(STEP));
    }
    let link = lines.last().unwrap().clone();
    assert_eq!(lines[lines.len() - 2], "Remote session invitation:");
    assert!(lines.contains(&"waiting for the host — the link works for 10 more minutes".into()));
    assert!(lines.contains(&format!("QR code saved as PNG: {}", png.display())));
    assert!(lines.contains(&format!("QR code saved as SVG: {}", svg.display())));
    assert_eq!(decode_terminal_text(&code_rows(&lines)), link);
    assert_eq!(decode_png(&png), link);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    drop(c);

    let mut j = Proc::spawn(
        "xrcp-ctrl link --json",
        ctrl_cmd(
            &tmp.path().join("ctrl"),
            &[
                "link",
                "--json",
                "--addr",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
                "--timeout",
                "2m",
            ],
        ),
        Duration::from_secs(60),
    );
    let inv = j.expect("invitation", STEP);
    assert_eq!(inv["expires_in"], 120, "{inv}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = inv["expires_at"].as_u64().unwrap();
    assert!((now + 110..=now + 121).contains(&at), "{inv}");
}

/// The link says how long it works and reminds near its end; when the controller stops
/// waiting for the code, the host says so at once and drops its prompt; typing the code then
/// gives a plain answer (it used to print `BLOCK_SIZE`).
#[test]
fn the_host_is_told_when_the_controller_stopped_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path(), (250, 50));
    open_host(&t, tmp.path());
    let started = Instant::now();
    let (link, cm) = start_new(&t, "addr=127.0.0.1 iface=lo timeout=33");
    let all = t.lines(CTRL).join("\n");
    assert!(
        all.contains("waiting for the host — the link works for 33 more seconds"),
        "{all}"
    );
    // 30 s before the end, nobody comparing a code: a reminder.
    let (cm, line) = t.wait_for(CTRL, cm, "the link works for 30 more seconds", STEP);
    assert_eq!(
        line,
        "new remote host: waiting for the host — the link works for 30 more seconds"
    );

    let (code, hm) = connect(&t, &link);
    t.wait_for(CTRL, cm, "Compare session code with host:", STEP);
    // The person does not type the code; the controller gives up after the link's time.
    let (hm, _) = t.wait_for(
        HOST,
        hm,
        "remote controller stopped",
        Duration::from_secs(60),
    );
    let (_, line) = t.wait_for(HOST, hm, "controller stopped waiting", STEP);
    assert_eq!(
        line,
        "the controller stopped waiting — start a new link on the controller"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "not before its time"
    );

    // The code now: no prompt any more, a plain answer.
    let m = enter(&t, HOST, &format!("/verify remote ctrl {code}"));
    let (_, line) = t.wait_for(HOST, m, "no controller is waiting for a code", STEP);
    assert!(line.contains("/connect remote ctrl"), "{line}");
    let host = t.lines(HOST).join("\n");
    assert!(!host.contains("BLOCK_SIZE"), "{host}");

    t.type_line(HOST, "/quit");
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(HOST, STEP), 0);
    assert_eq!(t.exit_status(CTRL, STEP), 0);
}

/// An empty or wrong code asks again (saying how many tries remain) and the connection stays;
/// then the right code connects both sides.
#[test]
fn an_empty_or_wrong_code_asks_again() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path(), (250, 50));
    open_host(&t, tmp.path());
    let (link, cm) = start_new(&t, "addr=127.0.0.1 iface=lo");
    let (code, _) = connect(&t, &link);
    let (cm, _) = t.wait_for(CTRL, cm, "Compare session code with host:", STEP);

    let m = enter(&t, HOST, "/verify remote ctrl");
    t.wait_for(
        HOST,
        m,
        "type the code shown on the controller's screen",
        STEP,
    );
    let m = enter(&t, HOST, "/verify remote ctrl 12345 67890");
    let (_, line) = t.wait_for(HOST, m, "does not match", STEP);
    assert!(line.ends_with("(2 tries left)"), "{line}");
    let m = enter(&t, HOST, "/verify remote ctrl 1");
    let (_, line) = t.wait_for(HOST, m, "does not match", STEP);
    assert!(line.ends_with("(1 try left)"), "{line}");

    let m = enter(&t, HOST, &format!("/verify remote ctrl {code}"));
    t.wait_for(
        HOST,
        m,
        "remote controller 1 session started with desk",
        STEP,
    );
    t.wait_for(CTRL, cm, "remote host 1 connected", STEP);
    let ctrl = t.lines(CTRL).join("\n");
    assert!(
        !ctrl.contains("ignore its session code"),
        "the connection stayed:\n{ctrl}"
    );

    t.type_line(HOST, "/stop remote ctrl");
    t.type_line(HOST, "/quit");
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(HOST, STEP), 0);
    assert_eq!(t.exit_status(CTRL, STEP), 0);
}

/// `xrcp-host connect <link>` in text mode asks for the code on its own line: an empty or
/// wrong line asks again there too, and the right one connects.
#[test]
fn the_host_command_asks_again_for_the_code() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Proc::spawn(
        "xrcp-ctrl link --json",
        ctrl_cmd(
            &tmp.path().join("ctrl"),
            &[
                "link",
                "--json",
                "--addr",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
            ],
        ),
        Duration::from_secs(60),
    );
    let inv = c.expect("invitation", STEP);
    let link = inv["link"].as_str().unwrap().to_owned();
    let t = Tmux::new(tmp.path());
    let data = tmp.path().join("host");
    t.open(
        HOST,
        &binaries().host,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--device-name",
            "phone",
            "connect",
            &link,
        ],
    );
    let (at, _) = t.wait_for(HOST, 0, "Compare session code with controller:", START);
    let code = t.line_after(HOST, at, STEP);
    let (m, _) = t.wait_for(HOST, at, "Type the code shown on the controller:", STEP);
    t.type_line(HOST, "");
    let (m, _) = t.wait_for(HOST, m + 1, "Type the code shown on the controller:", STEP);
    t.type_line(HOST, "12345");
    let (_, line) = t.wait_for(HOST, m + 1, "does not match", STEP);
    assert!(line.ends_with("(2 tries left):"), "{line}");
    t.type_line(HOST, &code);
    t.wait_for(
        HOST,
        m,
        "remote controller 1 session started with desk",
        STEP,
    );
    let connected = c.expect("session_code", STEP);
    assert_eq!(connected["code"], code.as_str());
    c.expect("connected", STEP);
}

/// The code typed just as the controller gave up (before the host noticed): confirming says
/// that the controller stopped waiting, not `BLOCK_SIZE`; and a host that waits notices.
#[tokio::test]
async fn confirming_after_the_controller_gave_up_says_it_stopped_waiting() {
    use std::net::Ipv4Addr;
    use xrcp::message::SignedInvitation;
    use xrcp::pairing::HostPairing;
    use xrcp_ctrl::address::LocalAddress;
    use xrcp_ctrl::connect::ControllerOptions;
    use xrcp_host::{HostOptions, RemoteCtrlError};

    let options = ControllerOptions {
        app: serde_json::json!({"deviceName": "desk"}),
        bind: Ipv4Addr::LOCALHOST,
        candidates: Some(vec![LocalAddress {
            address: Ipv4Addr::LOCALHOST,
            interface: "lo".into(),
        }]),
        tls_timeout: Duration::from_millis(500),
        hello_timeout: Duration::from_millis(500),
        ..ControllerOptions::default()
    };
    for watch in [false, true] {
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), options.clone())
            .await
            .unwrap();
        let inv = SignedInvitation::parse(&listening.link()).unwrap();
        let ctrl = tokio::spawn(listening.connect(|_| {}));
        let host = HostOptions {
            app: serde_json::json!({"deviceName": "phone"}),
            ..HostOptions::default()
        };
        let mut pending = xrcp_host::connect(inv, None, host).await.unwrap();
        let code = pending.session_code().to_owned();
        // The controller gives up on the code and ends its wait.
        let gave_up = tokio::time::timeout(STEP, ctrl).await.unwrap().unwrap();
        assert!(gave_up.is_err());
        let err = if watch {
            tokio::time::timeout(STEP, pending.controller_left())
                .await
                .expect("the host notices")
        } else {
            pending.verify(&code).await.expect_err("no session")
        };
        assert!(
            matches!(err, RemoteCtrlError::ControllerStoppedWaiting),
            "{err:?}"
        );
        assert_eq!(err.kind(), "DISCONNECTED");
        assert_eq!(
            err.to_string(),
            "the controller stopped waiting — start a new link on the controller"
        );
    }
}
