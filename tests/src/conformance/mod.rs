//! The conformance runner: plays an honest or a deliberately broken controller or host
//! against an implementation under test (IUT), driven only through the IUT's scripting
//! interface (documented CLI flags, JSON lines on stdout). See `docs/conformance.md` for
//! every scenario, what it sends and expects, and which reference behaviour it mirrors.
//!
//! Output: one line per scenario, `PASS name`, `PASS name: note`, `FAIL name: why` or
//! `SKIP name: why`, in registry order, then exactly `N passed, M failed` (SKIPs count in
//! neither). The exit status is non-zero when anything failed.

mod ctrl;
mod host;
mod iut;
mod mcast;
mod peer;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Why a scenario did not pass.
#[derive(Debug)]
pub(crate) enum Stop {
    Fail(String),
    Skip(String),
}

impl From<String> for Stop {
    fn from(s: String) -> Stop {
        Stop::Fail(s)
    }
}

impl From<xrcp::RcError> for Stop {
    fn from(e: xrcp::RcError) -> Stop {
        Stop::Fail(format!("runner: {e}"))
    }
}

impl From<&str> for Stop {
    fn from(s: &str) -> Stop {
        Stop::Fail(s.to_owned())
    }
}

/// A scenario step's result; `?` turns any `String` error into a failure.
pub(crate) type Res<T> = Result<T, Stop>;

/// Fails the scenario with a formatted reason.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::conformance::Stop::Fail(format!($($t)*)))
    };
}
pub(crate) use bail;

/// A passed scenario's optional note (e.g. which of two accepted errors the IUT chose).
pub(crate) type Note = Option<String>;

/// What a scenario ended with.
#[derive(Debug)]
pub(crate) enum Outcome {
    Pass(Note),
    Fail(String),
    Skip(String),
}

impl Outcome {
    fn from_result(r: Res<Note>) -> Outcome {
        match r {
            Ok(n) => Outcome::Pass(n),
            Err(Stop::Fail(why)) => Outcome::Fail(why),
            Err(Stop::Skip(why)) => Outcome::Skip(why),
        }
    }

    fn line(&self, name: &str) -> String {
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        match self {
            Outcome::Pass(None) => format!("PASS {name}"),
            Outcome::Pass(Some(n)) => format!("PASS {name}: {}", one_line(n)),
            Outcome::Fail(why) => format!("FAIL {name}: {}", one_line(why)),
            Outcome::Skip(why) => format!("SKIP {name}: {}", one_line(why)),
        }
    }
}

/// Which side the IUT plays in a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The IUT is the host (`--host-cmd`); the runner is the controller.
    Host,
    /// The IUT is the controller (`--ctrl-cmd`); the runner is the host.
    Ctrl,
    /// The IUT is the host discovering announcements; runs inside a network namespace.
    Mcast,
}

pub(crate) type ScenarioFuture = Pin<Box<dyn Future<Output = Res<Note>> + Send>>;

/// One scenario: a name, the role under test, a deadline, and the steps.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) role: Role,
    pub(crate) deadline: Duration,
    pub(crate) run: fn(Cx) -> ScenarioFuture,
}

/// Shorthand for registering a scenario.
pub(crate) fn scenario(
    name: &'static str,
    role: Role,
    deadline_secs: u64,
    run: fn(Cx) -> ScenarioFuture,
) -> Scenario {
    Scenario {
        name,
        role,
        deadline: Duration::from_secs(deadline_secs),
        run,
    }
}

/// The command line.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) ctrl_cmd: Option<String>,
    pub(crate) host_cmd: Option<String>,
    pub(crate) only: Vec<String>,
    pub(crate) jobs: usize,
    /// `find --timeout` for the multicast scenarios, in seconds.
    pub(crate) find_timeout: u64,
    /// Seconds the slow peer trickles its HELLO before disconnecting.
    pub(crate) slow_secs: u64,
    /// Set on the copy of the runner started inside the multicast network namespace.
    pub(crate) netns_child: bool,
    pub(crate) list: bool,
    pub(crate) scratch: Option<PathBuf>,
}

const USAGE: &str = "\
usage: xrcp-conformance [--ctrl-cmd CMD] [--host-cmd CMD] [--only PATTERN[,PATTERN...]]...
                        [--jobs N] [--find-timeout SECS] [--slow-secs SECS] [--scratch DIR] [--list]

  --ctrl-cmd CMD   the controller under test, e.g. \"target/debug/xrcp-ctrl\" (run through
                   `sh -c 'exec CMD \"$@\"'`, so CMD may carry its own arguments)
  --host-cmd CMD   the host under test, e.g. \"target/debug/xrcp-host\"
  --only PATTERN   run only scenarios whose name contains PATTERN (repeatable, or commas)
  --jobs N         scenarios run at once (default 4)
  --find-timeout   `find --timeout` of the multicast scenarios (default 5)
  --slow-secs      how long the slow peer trickles its HELLO (default 5)
  --scratch DIR    where data directories are made (default: the system temp dir)
  --list           print the scenario names and exit

Scenarios for a role whose command is not given are reported as SKIP.";

fn parse_args(args: Vec<String>) -> Result<Config, String> {
    let mut c = Config {
        ctrl_cmd: None,
        host_cmd: None,
        only: Vec::new(),
        jobs: 4,
        find_timeout: 5,
        slow_secs: 5,
        netns_child: false,
        list: false,
        scratch: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--ctrl-cmd" => c.ctrl_cmd = Some(value("--ctrl-cmd")?),
            "--host-cmd" => c.host_cmd = Some(value("--host-cmd")?),
            "--only" => c.only.extend(
                value("--only")?
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            ),
            "--jobs" => {
                c.jobs = value("--jobs")?
                    .parse()
                    .map_err(|_| "--jobs needs a number".to_owned())?
            }
            "--find-timeout" => {
                c.find_timeout = value("--find-timeout")?
                    .parse()
                    .map_err(|_| "--find-timeout needs a number".to_owned())?
            }
            "--slow-secs" => {
                c.slow_secs = value("--slow-secs")?
                    .parse()
                    .map_err(|_| "--slow-secs needs a number".to_owned())?
            }
            "--scratch" => c.scratch = Some(PathBuf::from(value("--scratch")?)),
            "--netns-child" => c.netns_child = true,
            "--list" => c.list = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    c.jobs = c.jobs.max(1);
    Ok(c)
}

/// A scratch directory, removed on drop.
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(base: &Path) -> Result<Scratch, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = base.join(format!(
            "xrcp-conformance-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Scratch { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a running scenario gets: the configuration, its own scratch directory and its
/// deadline.
#[derive(Clone)]
pub(crate) struct Cx {
    pub(crate) config: Arc<Config>,
    pub(crate) scratch: Arc<Scratch>,
    pub(crate) until: Instant,
}

impl Cx {
    /// A (created) subdirectory of the scenario's scratch directory, e.g. an IUT data dir.
    pub(crate) fn dir(&self, name: &str) -> Res<PathBuf> {
        let p = self.scratch.path().join(name);
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    pub(crate) fn host_cmd(&self) -> Res<&str> {
        self.config
            .host_cmd
            .as_deref()
            .ok_or_else(|| Stop::Skip("no --host-cmd given".into()))
    }

    pub(crate) fn ctrl_cmd(&self) -> Res<&str> {
        self.config
            .ctrl_cmd
            .as_deref()
            .ok_or_else(|| Stop::Skip("no --ctrl-cmd given".into()))
    }

    /// A deadline `secs` from now, but never after the scenario's own.
    pub(crate) fn within(&self, secs: u64) -> Instant {
        (Instant::now() + Duration::from_secs(secs)).min(self.until)
    }
}

fn registry() -> Vec<Scenario> {
    let mut all = host::scenarios();
    all.extend(ctrl::scenarios());
    all.extend(mcast::scenarios());
    all
}

fn selected(config: &Config, name: &str) -> bool {
    config.only.is_empty() || config.only.iter().any(|p| name.contains(p.as_str()))
}

/// Runs one scenario with its deadline; on timeout the scenario's future is dropped, which
/// kills its IUT processes (they are spawned with `kill_on_drop`).
async fn run_one(config: Arc<Config>, base: PathBuf, s: &Scenario) -> Outcome {
    let scratch = match Scratch::create(&base) {
        Ok(s) => Arc::new(s),
        Err(e) => return Outcome::Fail(format!("cannot create a scratch directory: {e}")),
    };
    let until = Instant::now() + s.deadline;
    let secs = s.deadline.as_secs();
    let cx = Cx {
        config,
        scratch,
        until,
    };
    let fut = (s.run)(cx);
    // A panic in a scenario is the runner's bug; report it as a failure, not a crash.
    let handle = tokio::spawn(async move {
        match tokio::time::timeout_at(until, fut).await {
            Ok(r) => Outcome::from_result(r),
            Err(_) => Outcome::Fail(format!(
                "no result within the scenario deadline of {secs} s (the IUT was killed)"
            )),
        }
    });
    match handle.await {
        Ok(o) => o,
        Err(e) => Outcome::Fail(format!("the runner itself failed: {e}")),
    }
}

/// Entry point of the `xrcp-conformance` binary.
pub(crate) fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let all = registry();
    if config.list {
        for s in &all {
            println!("{}", s.name);
        }
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(config, all))
}

async fn run(config: Config, all: Vec<Scenario>) -> ExitCode {
    let config = Arc::new(config);
    let base = config.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|s| selected(&config, s.name))
        // The namespace child runs only the multicast scenarios; the parent delegates them.
        .filter(|s| !config.netns_child || s.role == Role::Mcast)
        .collect();
    if chosen.is_empty() {
        eprintln!("error: no scenario matches {:?}", config.only);
        return ExitCode::from(2);
    }
    let chosen = Arc::new(chosen);
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Outcome)>();
    let jobs = Arc::new(Semaphore::new(config.jobs));

    // Scenarios skipped for a missing command are reported at once; the multicast ones go to
    // one child runner inside a network namespace (unless this is that child), started
    // first because it takes longest; the others start longest deadline first.
    let mut mcast = Vec::new();
    let mut others = Vec::new();
    for (i, s) in chosen.iter().enumerate() {
        let missing = match s.role {
            Role::Host | Role::Mcast if config.host_cmd.is_none() => Some("no --host-cmd given"),
            Role::Ctrl if config.ctrl_cmd.is_none() => Some("no --ctrl-cmd given"),
            _ => None,
        };
        if let Some(why) = missing {
            let _ = tx.send((i, Outcome::Skip(why.into())));
        } else if s.role == Role::Mcast {
            mcast.push(i);
        } else {
            others.push(i);
        }
    }
    others.sort_by_key(|&i| std::cmp::Reverse(chosen[i].deadline));
    if !mcast.is_empty() {
        let (config, base, chosen, tx, jobs) = (
            config.clone(),
            base.clone(),
            chosen.clone(),
            tx.clone(),
            jobs.clone(),
        );
        tokio::spawn(async move {
            let _permit = jobs.acquire().await;
            let outcomes = if config.netns_child {
                mcast::run_inside(config.clone(), base, chosen.clone(), &mcast).await
            } else {
                let names: Vec<&'static str> = mcast.iter().map(|&i| chosen[i].name).collect();
                let outcomes = mcast::run_in_netns(&config, &base, &names).await;
                mcast.iter().copied().zip(outcomes).collect()
            };
            for (i, o) in outcomes {
                let _ = tx.send((i, o));
            }
        });
        // Let the multicast job take its permit before the others queue up.
        tokio::task::yield_now().await;
    }
    for i in others {
        let (config, base, chosen, tx, jobs) = (
            config.clone(),
            base.clone(),
            chosen.clone(),
            tx.clone(),
            jobs.clone(),
        );
        tokio::spawn(async move {
            let _permit = jobs.acquire().await;
            let outcome = run_one(config, base, &chosen[i]).await;
            let _ = tx.send((i, outcome));
        });
    }
    drop(tx);

    // Print in registry order as soon as every earlier scenario is done.
    let mut done: Vec<Option<Outcome>> = (0..chosen.len()).map(|_| None).collect();
    let mut next = 0;
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut print_ready = |done: &mut Vec<Option<Outcome>>, next: &mut usize| {
        use std::io::Write;
        while *next < done.len() {
            let Some(o) = done[*next].take() else { break };
            match o {
                Outcome::Pass(_) => passed += 1,
                Outcome::Fail(_) => failed += 1,
                Outcome::Skip(_) => {}
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", o.line(chosen[*next].name));
            let _ = out.flush();
            *next += 1;
        }
    };
    while let Some((i, o)) = rx.recv().await {
        done[i] = Some(o);
        print_ready(&mut done, &mut next);
    }
    // A scenario task that vanished without reporting (cannot happen unless the runtime
    // shut down) is a failure, not a silent omission.
    for slot in done.iter_mut().skip(next) {
        if slot.is_none() {
            *slot = Some(Outcome::Fail("no result reported".into()));
        }
    }
    print_ready(&mut done, &mut next);
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
