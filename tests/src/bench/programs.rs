//! §6 The real programs against OpenSSH on loopback (issue 16): `xrcp-ctrl` in JSON mode
//! (`/store remote file`, `/get remote file`, a command) against a real `xrcp-host connect`,
//! side by side with `scp` (chacha20-poly1305 and aes128-gcm) and `ssh HOST true` against a
//! throwaway sshd (`xrcp_tests::ssh::Sshd`), and with raw rustls and bare HTTP/2 in this process.
//!
//! Both sides keep their connection up between samples, as a user's session does: the
//! XRCP session is linked once; scp and ssh run over an OpenSSH master connection per cipher
//! (`ControlMaster`), so neither pays key exchange or authentication per sample. Files go
//! from and to disk (a temporary folder) on both sides; the file is in the page cache.
//!
//! CPU per GB: `utime + stime` (+ reaped children) from `/proc` of every process involved —
//! `xrcp-ctrl` and `xrcp-host`; the `scp` process with its children (reaped by this process),
//! the master `ssh`, and every process under the sshd listener (its session processes and
//! the sftp server inside it). scp uses its default SFTP protocol against the throwaway
//! sshd's `internal-sftp`, so no login shell starts per transfer (with `-O`, the classic
//! protocol, the server runs `scp -t` through the user's shell and its start-up files, which
//! on the measuring machine cost more than the transfer of a small file).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cpu::rtt_body_lengths;
use super::files::raw_transfer;
use super::fixtures::{loopback_listener, pattern, plain_pair, PlainTls, Res};
use super::h2base::H2Baseline;
use super::stats::{fmt_time, ratios, Row, Section, Unit};
use super::{Config, Results};
use xrcp_tests::cli::{run as run_cmd, Proc};
use xrcp_tests::ssh::{require, user_name, Sshd};

const STEP: Duration = Duration::from_secs(120);

/// `xrcp-ctrl` and `xrcp-host` beside this executable (`cargo build --release -p xrcp-ctrl
/// -p xrcp-host`), or in `XRCP_BIN_DIR`.
pub(crate) fn programs() -> Res<(PathBuf, PathBuf)> {
    let dir = match std::env::var_os("XRCP_BIN_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()?
            .parent()
            .ok_or("no executable folder")?
            .to_owned(),
    };
    let (c, h) = (dir.join("xrcp-ctrl"), dir.join("xrcp-host"));
    if !c.is_file() || !h.is_file() {
        return Err(format!(
            "no xrcp-ctrl / xrcp-host in {}: build them first (cargo build --release -p xrcp-ctrl \
             -p xrcp-host) or set XRCP_BIN_DIR",
            dir.display()
        )
        .into());
    }
    Ok((c, h))
}

/// The numeric fields of `/proc/PID/stat` after the command name (which may contain
/// spaces), so that index 11 is utime, 12 stime, 13 cutime, 14 cstime; empty if unreadable.
fn stat_fields(pid: u32) -> Vec<u64> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Vec::new();
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Vec::new();
    };
    rest.split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect()
}

/// Clock ticks of CPU (user + system, with reaped children when `children`) of `pid`.
fn proc_ticks(pid: u32, children: bool) -> u64 {
    let f = stat_fields(pid);
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    at(11) + at(12) + if children { at(13) + at(14) } else { 0 }
}

/// Clock ticks of user and of system CPU of `pid` (without children).
fn proc_user_sys(pid: u32) -> (u64, u64) {
    let f = stat_fields(pid);
    (
        f.get(11).copied().unwrap_or(0),
        f.get(12).copied().unwrap_or(0),
    )
}

fn parent_of(pid: u32) -> Option<u32> {
    // Field 1 after the name is the parent's pid.
    stat_fields(pid).get(1).and_then(|&p| u32::try_from(p).ok())
}

/// CPU ticks of `root` and every process under it (with their reaped children).
fn tree_ticks(root: u32) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let mut p = pid;
        let mut under = p == root;
        for _ in 0..16 {
            if under || p <= 1 {
                break;
            }
            match parent_of(p) {
                Some(q) => {
                    under = q == root;
                    p = q;
                }
                None => break,
            }
        }
        if under {
            total += proc_ticks(pid, true);
        }
    }
    total
}

fn self_children_ticks() -> u64 {
    proc_ticks(std::process::id(), true) - proc_ticks(std::process::id(), false)
}

fn ticks_per_sec() -> f64 {
    // Linux's USER_HZ is 100 on every architecture Rust targets here.
    100.0
}

/// `DIR/big.bin`: `len` bytes of the benchmark pattern, the file every transfer moves.
fn pattern_file(dir: &Path, len: u64) -> Res<PathBuf> {
    let src = dir.join("big.bin");
    let p = pattern();
    let mut data = Vec::with_capacity(len as usize);
    while (data.len() as u64) < len {
        let take = (len as usize - data.len()).min(p.len());
        data.extend_from_slice(&p[..take]);
    }
    std::fs::write(&src, &data)?;
    Ok(src)
}

/// A linked pair of the programs: the controller in `downloads`, the host with its files.
pub(crate) struct Programs {
    c: Proc,
    h: Proc,
    /// The host's data folder (its stored files are below it).
    hdir: PathBuf,
}

impl Programs {
    pub(crate) fn start(ctrl: &Path, host: &Path, tmp: &Path) -> Res<Programs> {
        let (cdir, hdir, downloads) = (tmp.join("ctrl"), tmp.join("host"), tmp.join("downloads"));
        std::fs::create_dir_all(&downloads)?;
        let mut cmd = Command::new(ctrl);
        cmd.arg("--data-dir").arg(&cdir).args([
            "--device-name",
            "desk",
            "link",
            "--addr",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
            "--json",
        ]);
        cmd.current_dir(&downloads);
        let mut c = Proc::spawn("xrcp-ctrl link", cmd, Duration::from_secs(24 * 3600));
        let link = c.expect("invitation", STEP)["link"]
            .as_str()
            .ok_or("no link")?
            .to_owned();
        let mut cmd = Command::new(host);
        cmd.arg("--data-dir").arg(&hdir).args([
            "--device-name",
            "phone",
            "connect",
            &link,
            "--json",
            "--yes",
        ]);
        let mut h = Proc::spawn("xrcp-host connect", cmd, Duration::from_secs(24 * 3600));
        h.expect("session_code", STEP);
        h.expect("connected", STEP);
        c.expect("session_code", STEP);
        c.expect("connected", STEP);
        Ok(Programs { c, h, hdir })
    }

    fn ticks(&self) -> u64 {
        proc_ticks(self.c.pid(), false) + proc_ticks(self.h.pid(), false)
    }

    /// `/store remote file SRC`: seconds and the stored name.
    fn store(&mut self, src: &Path) -> (f64, String) {
        let t = Instant::now();
        self.c
            .send(&format!("/store remote file {}", src.display()));
        let ev = self.c.expect("file_stored", STEP);
        let dt = t.elapsed().as_secs_f64();
        (dt, ev["path"].as_str().unwrap_or_default().to_owned())
    }

    /// Removes a stored file from the host's files folder (only the first stored file is read
    /// back), as the scp rounds remove theirs: otherwise every store takes page cache the
    /// previous ones still hold, and on a VM a page the guest never touched before costs a
    /// fault on the hypervisor's side, charged to whoever copies into it first. The next store
    /// then takes the freed name again and the notes app replaces the stale record (it needs
    /// the notes app's `INSERT OR REPLACE`; before it, that store failed with `internalError`).
    fn discard(&self, stored: &str) {
        if let Some(name) = Path::new(stored).file_name() {
            let _ = std::fs::remove_file(self.hdir.join("files").join(name));
        }
    }

    /// `/get remote file` of the first stored file; the download is removed afterwards.
    fn get(&mut self, name: &str) -> f64 {
        let line = format!(
            r#"/get remote file {{"userId":1,"fileId":1,"sent":false,"fileSource":{{"filePath":"{name}"}}}}"#
        );
        let t = Instant::now();
        self.c.send(&line);
        let ev = self.c.expect("file_received", STEP);
        let dt = t.elapsed().as_secs_f64();
        if let Some(p) = ev["path"].as_str() {
            let _ = std::fs::remove_file(p);
        }
        dt
    }

    fn command(&mut self) -> f64 {
        let t = Instant::now();
        self.c.send("/notes");
        self.c.expect("response", STEP);
        t.elapsed().as_secs_f64()
    }
}

/// An OpenSSH master connection with one cipher; scp and ssh reuse it.
struct Master {
    proc: Proc,
    socket: PathBuf,
    opts: Vec<String>,
    dest: String,
}

impl Master {
    fn start(sshd: &Sshd, cipher: &str, socket: PathBuf) -> Res<Master> {
        let mut opts = sshd.client_options();
        opts.push(format!("Ciphers={cipher}"));
        opts.push("Compression=no".into());
        opts.push(format!("ControlPath={}", socket.display()));
        let dest = format!("{}@127.0.0.1", user_name());
        let mut cmd = Command::new(require(&["ssh"], "openssh-client"));
        cmd.args(["-F", "/dev/null", "-M", "-N"]);
        for o in &opts {
            cmd.args(["-o", o]);
        }
        cmd.arg(&dest);
        let proc = Proc::spawn("ssh -M", cmd, Duration::from_secs(24 * 3600));
        let end = Instant::now() + STEP;
        while !socket.exists() {
            if Instant::now() > end {
                return Err(format!("ssh master did not start:\n{}", proc.stderr()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Master {
            proc,
            socket,
            opts,
            dest,
        })
    }

    fn args(&self, cmd: &mut Command) {
        cmd.args(["-F", "/dev/null"]);
        for o in &self.opts {
            cmd.args(["-o", o]);
        }
    }

    fn scp(&self, from: &str, to: &str) -> Res<f64> {
        let mut cmd = Command::new(require(&["scp"], "openssh-client"));
        // scp's default protocol (SFTP) against the throwaway sshd's internal-sftp: no shell
        // on the server side (see the module comment).
        cmd.arg("-q");
        self.args(&mut cmd);
        cmd.args([from, to]);
        let t = Instant::now();
        let out = run_cmd(cmd, STEP)?;
        let dt = t.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!("scp: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(dt)
    }

    /// `sftp -f` with one `put` or `get`: as scp, but the file is flushed to disk after the
    /// transfer (the client's `fsync` for a download, the server's `fsync@openssh.com` for an
    /// upload), as the programs do with every file they receive.
    fn sftp_fsync(&self, batch_dir: &Path, line: &str) -> Res<f64> {
        let batch = batch_dir.join("sftp-batch");
        std::fs::write(&batch, format!("{line}\n"))?;
        let mut cmd = Command::new(require(&["sftp"], "openssh-client"));
        cmd.args(["-q", "-f", "-b"]).arg(&batch);
        self.args(&mut cmd);
        cmd.arg(&self.dest);
        let t = Instant::now();
        let out = run_cmd(cmd, STEP)?;
        let dt = t.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!("sftp: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(dt)
    }

    fn ssh_true(&self) -> Res<f64> {
        let mut cmd = Command::new(require(&["ssh"], "openssh-client"));
        self.args(&mut cmd);
        cmd.args([&self.dest, "true"]);
        let t = Instant::now();
        let out = run_cmd(cmd, STEP)?;
        let dt = t.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!("ssh: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(dt)
    }

    fn ticks(&self) -> u64 {
        proc_ticks(self.proc.pid(), true)
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

pub(crate) fn run(cfg: &Config, r: &mut Results, rt: &tokio::runtime::Runtime) -> Res<Section> {
    let mib = cfg.file_mib;
    let len = u64::from(mib) << 20;
    let mut s = Section::new(format!(
        "6. The programs against OpenSSH on loopback ({mib} MiB files; commands)"
    ));
    let (ctrl, host) = programs()?;
    let tmp = TempDir::new()?;
    let src = pattern_file(tmp.path(), len)?;
    let sshd_dir = tmp.path().join("sshd");
    let sshd = Sshd::start(&sshd_dir);
    let sshd_pid = sshd_pid(&sshd_dir)?;
    let chacha = Master::start(
        &sshd,
        "chacha20-poly1305@openssh.com",
        tmp.path().join("cm-chacha"),
    )?;
    let aes = Master::start(&sshd, "aes128-gcm@openssh.com", tmp.path().join("cm-aes"))?;
    let scp_dir = tmp.path().join("scp");
    std::fs::create_dir_all(&scp_dir)?;
    let remote_src = format!("{}:{}", chacha.dest, src.display());
    let remote_dst = format!("{}:{}", chacha.dest, scp_dir.join("up.bin").display());
    let local_dst = scp_dir.join("down.bin");

    let mut p = Programs::start(&ctrl, &host, tmp.path())?;
    let (_, stored) = p.store(&src);

    // Raw rustls in this process, both directions, the same size (no disk).
    let tls = PlainTls::new()?;
    let pat = pattern();
    let (mut raw_srv, mut raw_cli) = rt.block_on(async {
        let (listener, addr) = loopback_listener().await?;
        let (srv, cli) = plain_pair(&listener, addr, &tls).await?;
        Res::Ok((Some(srv), Some(cli)))
    })?;
    let mut raw = |to_client: bool| -> Res<f64> {
        let (srv, cli) = (
            raw_srv.take().ok_or("no tls")?,
            raw_cli.take().ok_or("no tls")?,
        );
        let (secs, a, b) = rt.block_on(async {
            if to_client {
                let (secs, srv, cli, _) = raw_transfer(srv, cli, &pat, len).await?;
                Res::Ok((secs, srv, cli))
            } else {
                let (secs, cli, srv, _) = raw_transfer(cli, srv, &pat, len).await?;
                Res::Ok((secs, srv, cli))
            }
        })?;
        raw_srv = Some(a);
        raw_cli = Some(b);
        Ok(secs)
    };

    const NAMES: [&str; 10] = [
        "xrcp-ctrl /store remote file (controller → host)",
        "xrcp-ctrl /get remote file (host → controller)",
        "scp upload, chacha20-poly1305",
        "scp download, chacha20-poly1305",
        "scp upload, aes128-gcm",
        "scp download, aes128-gcm",
        "raw rustls stream, TLS server → client (store direction, no disk)",
        "raw rustls stream, TLS client → server (get direction, no disk)",
        "sftp -f upload, chacha20-poly1305 (flushed to disk, as the host does)",
        "sftp -f download, chacha20-poly1305 (flushed to disk, as the controller does)",
    ];
    let rounds = cfg.samples(5).max(3);
    let mut secs: [Vec<f64>; 10] = Default::default();
    // CPU per GB of every transfer but the raw rustls streams (6, 7).
    let mut cpu: [Vec<f64>; 10] = Default::default();
    let hz = ticks_per_sec();
    for round in 0..rounds + 1 {
        let keep = round >= 1;
        for k in 0..10 {
            let step = (k + round) % 10;
            let before = match step {
                0 | 1 => p.ticks(),
                2 | 3 | 8 | 9 => chacha.ticks() + tree_ticks(sshd_pid) + self_children_ticks(),
                4 | 5 => aes.ticks() + tree_ticks(sshd_pid) + self_children_ticks(),
                _ => 0,
            };
            let dt = match step {
                // The bytes are removed after the sample, as scp's are (`Programs::discard`);
                // the next store takes the freed name again.
                0 => {
                    let (dt, path) = p.store(&src);
                    if path != stored {
                        p.discard(&path);
                    }
                    dt
                }
                1 => p.get(&stored),
                2 => chacha.scp(&src.display().to_string(), &remote_dst)?,
                3 => chacha.scp(&remote_src, &local_dst.display().to_string())?,
                4 => aes.scp(&src.display().to_string(), &remote_dst)?,
                5 => aes.scp(&remote_src, &local_dst.display().to_string())?,
                6 => raw(true)?,
                7 => raw(false)?,
                8 => chacha.sftp_fsync(
                    tmp.path(),
                    &format!("put {} {}", src.display(), scp_dir.join("up.bin").display()),
                )?,
                _ => chacha.sftp_fsync(
                    tmp.path(),
                    &format!("get {} {}", src.display(), local_dst.display()),
                )?,
            };
            let after = match step {
                0 | 1 => p.ticks(),
                2 | 3 | 8 | 9 => chacha.ticks() + tree_ticks(sshd_pid) + self_children_ticks(),
                4 | 5 => aes.ticks() + tree_ticks(sshd_pid) + self_children_ticks(),
                _ => 0,
            };
            if matches!(step, 2..=5 | 8 | 9) {
                for f in [scp_dir.join("up.bin"), local_dst.clone()] {
                    if f.exists() && std::fs::metadata(&f)?.len() != len {
                        return Err(format!("scp wrote a short {}", f.display()).into());
                    }
                    let _ = std::fs::remove_file(f);
                }
            }
            if keep {
                secs[step].push(dt);
                if !matches!(step, 6 | 7) {
                    // CPU seconds per GB (10^9 bytes).
                    cpu[step].push((after.saturating_sub(before)) as f64 / hz / (len as f64 / 1e9));
                }
            }
        }
    }
    let rate = |v: &[f64]| -> Vec<f64> { v.iter().map(|t| len as f64 / t / 1e6).collect() };
    for (i, name) in NAMES.iter().enumerate() {
        let mut row = Row::new(*name, Unit::Rate, &rate(&secs[i]));
        let vs = |j: usize| ratios(&secs[j], &secs[i]);
        match i {
            0 => {
                row = row.with_ratio(
                    "scp upload, chacha20-poly1305 (speed-up; ≥ 1 meets issue 16)",
                    &vs(2),
                )
            }
            1 => {
                row = row.with_ratio(
                    "scp download, chacha20-poly1305 (speed-up; ≥ 1 meets issue 16)",
                    &vs(3),
                )
            }
            _ => {}
        }
        r.put(&format!("prog.files.{i}"), row.summary);
        s.row(row);
    }
    s.row(
        Row::new(
            "xrcp-ctrl /store ÷ raw rustls (store direction), per round",
            Unit::Count,
            &[],
        )
        .with_ratio("raw rustls", &ratios(&secs[6], &secs[0])),
    );
    s.row(
        Row::new(
            "xrcp-ctrl /get ÷ raw rustls (get direction), per round",
            Unit::Count,
            &[],
        )
        .with_ratio("raw rustls", &ratios(&secs[7], &secs[1])),
    );
    // The same durability on both sides: the programs flush every file they receive to disk
    // before reporting it; scp never does, and the bench removes its file before the kernel
    // writes it back, so scp's figures include no disk write at all.
    for (name, ours, theirs) in [
        (
            "xrcp-ctrl /store ÷ sftp -f upload (both flush to disk), per round",
            0,
            8,
        ),
        (
            "xrcp-ctrl /get ÷ sftp -f download (both flush to disk), per round",
            1,
            9,
        ),
    ] {
        s.row(Row::new(name, Unit::Count, &[]).with_ratio(
            "sftp -f, chacha20-poly1305",
            &ratios(&secs[theirs], &secs[ours]),
        ));
    }
    if let (Some(a), Some(b)) = (
        summarize_ratio(&secs[2], &secs[0]),
        summarize_ratio(&secs[3], &secs[1]),
    ) {
        r.put("prog.store.vs_scp", a);
        r.put("prog.get.vs_scp", b);
    }
    if let (Some(a), Some(b)) = (
        summarize_ratio(&secs[8], &secs[0]),
        summarize_ratio(&secs[9], &secs[1]),
    ) {
        r.put("prog.store.vs_sftp_fsync", a);
        r.put("prog.get.vs_sftp_fsync", b);
    }
    let cpu_names = [
        (0, "CPU s/GB: xrcp /store (xrcp-ctrl + xrcp-host)"),
        (1, "CPU s/GB: xrcp /get (xrcp-ctrl + xrcp-host)"),
        (
            2,
            "CPU s/GB: scp upload, chacha20-poly1305 (scp, ssh, sshd, remote scp)",
        ),
        (3, "CPU s/GB: scp download, chacha20-poly1305"),
        (4, "CPU s/GB: scp upload, aes128-gcm"),
        (5, "CPU s/GB: scp download, aes128-gcm"),
        (8, "CPU s/GB: sftp -f upload, chacha20-poly1305"),
        (9, "CPU s/GB: sftp -f download, chacha20-poly1305"),
    ];
    for (i, name) in cpu_names {
        let row = Row::new(name, Unit::Count, &[]);
        let sum = super::stats::summarize(&cpu[i]);
        r.put(&format!("prog.cpu.{i}"), sum);
        s.note(format!(
            "{}: {:.2} [{:.2}–{:.2}] (n = {})",
            row.name, sum.median, sum.p10, sum.p90, sum.n
        ));
    }
    s.note(format!(
        "Rounds: {rounds} after one warm-up round; in each round the ten transfers run in rotating \
         order. Rates are MB/s = 10^6 bytes/s of file data, from sending the line (or starting scp) to \
         the completion event (or scp's exit): the programs' stdin/stdout and their disk writes are \
         included, as for scp. XRCP: one session for the whole run; scp: over a master connection per \
         cipher (no key exchange per transfer). The host fsyncs a stored file before it reports it, \
         the controller a download before naming it; scp does not (and its file is removed before \
         the kernel writes it back), `sftp -f` does (the server's fsync@openssh.com on upload, the \
         client's fsync on download)."
    ));

    // Command round trip: xrcp-ctrl → host → response, vs `ssh HOST true` over the master,
    // vs bare HTTP/2 in this process; the floor adds the four Ed25519 operations.
    let n = cfg.samples(100);
    let warm = 10;
    let (req, resp) = rtt_body_lengths(true)?;
    let bare = rt.block_on(H2Baseline::connect(&tls, pattern()))?;
    let (mut x, mut sh, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + warm {
        let order = i % 3;
        let mut one = |which: usize| -> Res<()> {
            let dt = match which {
                0 => p.command(),
                1 => chacha.ssh_true()?,
                _ => {
                    let t = Instant::now();
                    rt.block_on(bare.echo(Bytes::from(vec![0xa5; req]), resp))?;
                    t.elapsed().as_secs_f64()
                }
            };
            if i >= warm {
                [&mut x, &mut sh, &mut b][which].push(dt);
            }
            Ok(())
        };
        for k in 0..3 {
            one((k + order) % 3)?;
        }
    }
    let ed = match (r.try_get("ed25519.sign"), r.try_get("ed25519.verify")) {
        (Some(sg), Some(v)) => Some(2.0 * sg.median + 2.0 * v.median),
        _ => None,
    };
    let floor: Vec<f64> = b.iter().map(|t| t + ed.unwrap_or(0.0)).collect();
    s.row(
        Row::new(
            "xrcp-ctrl command round trip (`/notes` line → response event, JSON mode)",
            Unit::Time,
            &x,
        )
        .with_ratio("ssh HOST true over the master connection", &ratios(&x, &sh)),
    );
    s.row(Row::new(
        "ssh HOST true over an existing master connection (chacha20-poly1305)",
        Unit::Time,
        &sh,
    ));
    s.row(Row::new(
        "bare HTTP/2 over rustls, XRCP's body sizes (in process)",
        Unit::Time,
        &b,
    ));
    if let Some(ed) = ed {
        s.row(Row::new(
            "protocol floor: bare HTTP/2 + 2 Ed25519 signs + 2 verifies (§2b medians)",
            Unit::Time,
            &floor,
        ));
        s.row(
            Row::new(
                "xrcp-ctrl command ÷ protocol floor, per round",
                Unit::Count,
                &[],
            )
            .with_ratio("floor", &ratios(&x, &floor)),
        );
        s.note(format!(
            "four Ed25519 operations (2 × sign + 2 × verify, §2b medians): {}",
            fmt_time(ed)
        ));
    } else {
        s.note("run with the `cpu` or `rtt` section for the floor's Ed25519 figures");
    }
    s.note(format!(
        "Command rounds: {n} after {warm} warm-up rounds, the three in rotating order. The xrcp-ctrl \
         figure includes writing the line to its stdin and reading its JSON event (two pipes, two \
         process wake-ups); `ssh true` includes starting the ssh client and the remote `true` (fork and \
         exec on both sides)."
    ));
    drop(p);
    Ok(s)
}

fn summarize_ratio(a: &[f64], b: &[f64]) -> Option<super::stats::Summary> {
    (!a.is_empty()).then(|| super::stats::summarize(&ratios(a, b)))
}

/// The pid the throwaway sshd wrote.
fn sshd_pid(dir: &Path) -> Res<u32> {
    let end = Instant::now() + STEP;
    loop {
        if let Ok(t) = std::fs::read_to_string(dir.join("sshd.pid")) {
            if let Ok(p) = t.trim().parse() {
                return Ok(p);
            }
        }
        if Instant::now() > end {
            return Err("sshd wrote no pid file".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private folder under the system's temporary folder, removed on drop (the harness is a
/// binary, without the tests' dev-dependencies).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Res<TempDir> {
        let p = std::env::temp_dir().join(format!("xrcp-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `xrcp-bench profile-programs store|get MIB COUNT`: only the programs' transfers, for a
/// profiler attached to `xrcp-ctrl`/`xrcp-host` (their pids are printed first). Prints each
/// transfer's seconds and the two processes' CPU seconds per GB.
pub(crate) fn profile_only(dir: &str, mib: u32, count: usize) -> Res<()> {
    let len = u64::from(mib) << 20;
    let (ctrl, host) = programs()?;
    let tmp = TempDir::new()?;
    let src = pattern_file(tmp.path(), len)?;
    let mut p = Programs::start(&ctrl, &host, tmp.path())?;
    println!("pids: xrcp-ctrl {} xrcp-host {}", p.c.pid(), p.h.pid());
    let (_, first) = p.store(&src);
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..count {
        let before = p.ticks();
        let parts = |p: &Programs| {
            let (cu, cs) = proc_user_sys(p.c.pid());
            let (hu, hs) = proc_user_sys(p.h.pid());
            [cu, cs, hu, hs]
        };
        let parts_before = parts(&p);
        let dt = match dir {
            "store" => {
                let (dt, stored) = p.store(&src);
                p.discard(&stored);
                dt
            }
            "get" => p.get(&first),
            _ => return Err("profile-programs store|get [MIB] [COUNT]".into()),
        };
        let cpu = (p.ticks() - before) as f64 / ticks_per_sec();
        let after = parts(&p);
        let d: Vec<f64> = (0..4)
            .map(|i| after[i].saturating_sub(parts_before[i]) as f64 / ticks_per_sec())
            .collect();
        println!(
            "{dir}: {:.3} s, {:.0} MB/s, {:.2} CPU s/GB (CPU s: controller user {:.2} system {:.2}, host user {:.2} system {:.2})",
            dt,
            len as f64 / dt / 1e6,
            cpu / (len as f64 / 1e9),
            d[0],
            d[1],
            d[2],
            d[3]
        );
    }
    Ok(())
}
