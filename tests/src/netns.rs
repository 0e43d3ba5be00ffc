//! Network namespaces made by a test, deleted on drop: separate machines on one box, so
//! tests can show what reaches what without sending anything off this machine.
//!
//! Needs root and iproute2. Where namespaces cannot be made, [`skip_or_panic`] decides:
//! CI sets `XRCP_REQUIRE_NETNS=1` so such tests cannot pass by skipping.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A set of namespaces with unique names; all deleted on drop, with their veths and the
/// `/etc/netns/<name>` files given to them.
pub struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// One namespace per role, named `xr-<role>-<pid>-<n>`, each with `lo` up.
    pub fn create(roles: &[&str]) -> Result<Namespaces, String> {
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut ns = Namespaces { names: Vec::new() };
        for role in roles {
            let name = format!("xr-{role}-{id}");
            ip(&["netns", "add", &name])?;
            ns.names.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    /// The namespace's name for `role`.
    pub fn name(&self, role: &str) -> &str {
        self.names
            .iter()
            .find(|n| n.starts_with(&format!("xr-{role}-")))
            .unwrap_or_else(|| panic!("no namespace for {role}"))
    }

    /// A veth between two roles, with an address (`a.b.c.d/len`) on each end, both up.
    pub fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) -> Result<(), String> {
        let (na, nb) = (self.name(a), self.name(b));
        let (da, db) = (format!("v-{b}"), format!("v-{a}"));
        ip(&[
            "-n", na, "link", "add", &da, "type", "veth", "peer", "name", &db, "netns", nb,
        ])?;
        ip(&["-n", na, "addr", "add", a_addr, "dev", &da])?;
        ip(&["-n", nb, "addr", "add", b_addr, "dev", &db])?;
        ip(&["-n", na, "link", "set", &da, "up"])?;
        ip(&["-n", nb, "link", "set", &db, "up"])
    }

    /// Runs `ip -n <role's namespace> ARGS`.
    pub fn ip(&self, role: &str, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name(role)];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The namespace's own `/etc/hosts` (`ip netns exec` mounts `/etc/netns/<name>/hosts`
    /// over `/etc/hosts` for the programs it runs).
    pub fn hosts_file(&self, role: &str, content: &str) -> Result<(), String> {
        let dir = format!("/etc/netns/{}", self.name(role));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir}: {e}"))?;
        std::fs::write(format!("{dir}/hosts"), content).map_err(|e| format!("{dir}/hosts: {e}"))
    }

    /// A command that runs `program` inside the role's namespace.
    pub fn command(&self, role: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name(role)]).arg(program);
        c
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
            if let Err(e) = ip(&["netns", "del", name]) {
                let _ = writeln!(std::io::stderr(), "cleaning up: {e}");
            }
        }
    }
}

/// `None` after saying why when namespaces cannot be made here, unless CI requires them.
pub fn skip_or_panic(test: &str, error: String) -> Option<Namespaces> {
    if std::env::var("XRCP_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        panic!("{test}: cannot create network namespaces: {error}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: cannot create network namespaces ({error}); needs root and iproute2 (`ip`)"
    );
    None
}
