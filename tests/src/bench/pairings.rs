//! §7 Pairings at scale through the programs (issue 16, item 3): `xrcp-host list`,
//! `xrcp-ctrl list` and the start-up of `xrcp-host find` (until it listens for announcements)
//! with 10,000 pairings, each against the same command with one pairing.
//!
//! One real pairing is made by linking the two programs (as the programs section does); the
//! stores are then filled with copies of that row under random fingerprints and keys in one
//! SQL statement, so every row is well-formed and none of them is decoded until used.
//! Each figure is the wall time of the whole process (start, open the store, work, exit),
//! which is what a person or a script waits for.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::programs::{programs, Programs, TempDir};
use super::stats::{ratios, Row, Section, Unit};
use super::{fixtures::Res, Config, Results};

/// The pairings in the large stores.
pub(crate) const PAIRINGS: usize = 10_000;

pub(crate) fn run(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new(format!(
        "7. Pairings at scale: the programs with 1 and with {PAIRINGS} pairings"
    ));
    let (ctrl, host) = programs()?;
    let tmp = TempDir::new()?;
    // One real pairing, made by the programs themselves; dropping them ends both.
    drop(Programs::start(&ctrl, &host, tmp.path())?);
    let (one_c, one_h) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let (many_c, many_h) = (tmp.path().join("ctrl-many"), tmp.path().join("host-many"));
    copy_dir(&one_c, &many_c)?;
    copy_dir(&one_h, &many_h)?;
    fill(
        &many_h.join(xrcp_host::store::DB_FILE),
        "INSERT INTO remote_controllers (ctrl_device_name, ca_key, ca_cert, ctrl_fingerprint,
           id_pub, dh_priv_key, prev_dh_priv_key)
         SELECT 'desk ' || i, c.ca_key, c.ca_cert, randomblob(32), c.id_pub, randomblob(32),
           randomblob(32)
         FROM k, (SELECT * FROM remote_controllers LIMIT 1) c",
    )?;
    fill(
        &many_c.join(xrcp_ctrl::store::DB_FILE),
        "INSERT INTO remote_hosts (host_device_name, store_path, ca_key, ca_cert, id_key,
           host_fingerprint, host_dh_pub)
         SELECT 'phone ' || i, c.store_path || '-' || i, c.ca_key, c.ca_cert, c.id_key,
           randomblob(32), randomblob(32)
         FROM k, (SELECT * FROM remote_hosts LIMIT 1) c",
    )?;

    let n = cfg.samples(21);
    type Measure<'a> = Box<dyn Fn(&Path) -> Res<f64> + 'a>;
    let measures: [(&str, &str, &Path, &Path, Measure); 3] = [
        (
            "xrcp-host list --json",
            "host.list",
            &one_h,
            &many_h,
            Box::new(|d: &Path| list(&host, d, 1)),
        ),
        (
            "xrcp-ctrl list --json",
            "ctrl.list",
            &one_c,
            &many_c,
            Box::new(|d: &Path| list(&ctrl, d, 1)),
        ),
        (
            "xrcp-host find: start until it listens",
            "host.find",
            &one_h,
            &many_h,
            Box::new(|d: &Path| find_start(&host, d)),
        ),
    ];
    // Check the stores first: `list` must show every pairing.
    for (program, dir, want) in [(&host, &many_h, PAIRINGS), (&ctrl, &many_c, PAIRINGS)] {
        list(program, dir, want)?;
    }
    for (name, key, one, many, measure) in &measures {
        // Interleaved, after one warm-up of each (the page cache holds the store then).
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..=n {
            let x = measure(one)?;
            let y = measure(many)?;
            if i > 0 {
                a.push(x);
                b.push(y);
            }
        }
        s.row(Row::new(format!("{name}, 1 pairing"), Unit::Time, &a));
        let row = Row::new(format!("{name}, {PAIRINGS} pairings"), Unit::Time, &b)
            .with_ratio("1 pairing (the time at 10,000 ÷ at 1)", &ratios(&b, &a));
        r.put(&format!("pairings.{key}"), row.summary);
        s.row(row);
    }
    s.note(format!(
        "Wall time of the whole process, medians of {n} after one warm-up, the two stores \
         alternating. `find` is timed from the start to its line `listening for paired \
         controllers` (the store read, the key table built, the multicast socket joined), \
         then stopped. The stores were filled by copying one real pairing's row under random \
         fingerprints and keys."
    ));
    Ok(s)
}

/// Copies the files of a data directory (no subfolders are needed for `list` and `find`).
fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Adds `PAIRINGS - 1` rows with `insert`, which selects from `k(i)`.
fn fill(db: &Path, insert: &str) -> Res<()> {
    let conn = rusqlite::Connection::open(db)?;
    conn.execute(
        &format!(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) {insert}"
        ),
        [PAIRINGS as i64 - 1],
    )?;
    Ok(())
}

/// `PROGRAM --data-dir DIR list --json`: seconds; at least `want` pairings listed.
fn list(program: &Path, dir: &Path, want: usize) -> Res<f64> {
    let t = Instant::now();
    // A blocking wait for the exit (the tests' `run` polls every 10 ms, too coarse here),
    // with a watchdog as its deadline.
    let child = Command::new(program)
        .arg("--data-dir")
        .arg(dir)
        .args(["list", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let guard = Watchdog::start(child.id(), Duration::from_secs(60));
    let out = child.wait_with_output()?;
    let dt = t.elapsed().as_secs_f64();
    guard.finish()?;
    let lines = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    if !out.status.success() || lines < want {
        return Err(format!(
            "{} list: {} pairings listed, {want} expected ({})",
            program.display(),
            lines,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(dt)
}

/// `xrcp-host --data-dir DIR find`: seconds until it says it listens; then it is stopped.
fn find_start(host: &Path, dir: &Path) -> Res<f64> {
    use std::io::BufRead;
    let t = Instant::now();
    let mut child = Command::new(host)
        .arg("--data-dir")
        .arg(dir)
        .args(["find", "--timeout", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    // The deadline: a find that never listens is killed, which ends the read below.
    let guard = Watchdog::start(child.id(), Duration::from_secs(30));
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let result = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("listening for paired controllers") => {
                break Ok(t.elapsed().as_secs_f64())
            }
            Some(Ok(_)) => {}
            _ => break Err("xrcp-host find ended before listening".into()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    guard.finish()?;
    result
}

/// Kills a child process that outlives its deadline (SIGKILL through `kill`).
struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fired: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: u32, limit: Duration) -> Watchdog {
        use std::sync::atomic::Ordering;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&done);
        let fired = std::thread::spawn(move || {
            let end = Instant::now() + limit;
            while Instant::now() < end {
                if flag.load(Ordering::Acquire) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            true
        });
        Watchdog { done, fired }
    }

    /// Stops the watchdog; an error if it had to kill the process.
    fn finish(self) -> Res<()> {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        if self.fired.join().unwrap_or(true) {
            return Err("a program outlived its deadline and was killed".into());
        }
        Ok(())
    }
}
