//! Process-wide protection of the secrets both programs hold in memory.
//!
//! Chain keys, message keys and private keys are wiped when dropped (see
//! `crypto::chain`), but while a session runs they are in memory. A core dump written at that
//! moment (a crash, `kill -QUIT`, `gcore`) would put them on disk, where they outlive the
//! session. Both binaries therefore turn core dumps off before anything else.

use std::io;

/// Turns off core dumps for this process: the core size limit goes to 0 (soft and hard, so
/// the process cannot raise it again) and, on Linux, the process is marked not dumpable
/// (`PR_SET_DUMPABLE` 0), which also stops other processes of the same user from attaching
/// a debugger or reading `/proc/<pid>/mem`.
///
/// Errors are returned, not fatal: the caller decides whether to go on without this.
pub fn disable_core_dumps() -> io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::process::{setrlimit, Resource, Rlimit};
        setrlimit(
            Resource::Core,
            Rlimit {
                current: Some(0),
                maximum: Some(0),
            },
        )?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    }
    Ok(())
}

// Checked on the real binaries (tests/tests/hardening_memory.rs): calling it in a unit test
// would make the test process itself undumpable.
