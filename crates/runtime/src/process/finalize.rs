//! The last steps before a container process execs, shared by the init and by
//! `exec`: limits, scheduling, the identity (capabilities, uid, gid, groups), the
//! working directory, and the executable found the way execvp would.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::chdir;
use oci_spec::runtime::Process;

use super::init::InitError;
use crate::{capabilities, rlimits, sched, user};

/// Apply `process`'s settings to this process; returns the executable to exec.
pub fn become_process(process: &Process, setgroups_allowed: bool) -> Result<CString, InitError> {
    let sys = |op: &'static str| {
        move |source| InitError::Sys {
            op: op.into(),
            source,
        }
    };
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    if let Some(s) = process.scheduler() {
        sched::apply_scheduler(s)?;
    }
    if let Some(p) = process.io_priority() {
        sched::apply_io_priority(p)?;
    }
    if let Some(c) = process.capabilities() {
        capabilities::drop_bounding(c)?;
    }
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(sys("set no_new_privs"))?;
    }
    // Keep the permitted set across the uid change, then cut it to the config's.
    nix::sys::prctl::set_keepcaps(true).map_err(sys("set keepcaps"))?;
    user::switch(process.user(), setgroups_allowed)?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys("clear keepcaps"))?;
    if let Some(c) = process.capabilities() {
        capabilities::apply(c)?;
    }
    let cwd = process.cwd();
    chdir(cwd.as_path()).map_err(|source| InitError::Cwd {
        path: cwd.clone(),
        source,
    })?;
    // A cwd reached through a descriptor of the host (`/proc/self/fd/N`) lies outside
    // our root, and getcwd says so: never run a container process there.
    let inside = match nix::unistd::getcwd() {
        Ok(p) => p.is_absolute(),
        Err(nix::errno::Errno::ENOENT) => false,
        // A seccomp profile loaded already may refuse getcwd: walk up instead.
        Err(_) => cwd_reaches_root(),
    };
    if !inside {
        return Err(InitError::Cwd {
            path: cwd.clone(),
            source: nix::errno::Errno::EXDEV,
        });
    }
    let args = process.args().as_deref().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| InitError::NotFound(String::new()))?;
    let exe = find_executable(arg0, process.env())?;
    crate::lsm::set_exec_labels(process)?;
    user::set_umask(process.user());
    Ok(exe)
}

/// Whether walking `..` up from the working directory meets our root: from a
/// directory outside it, the walk ends at the top of another tree first.
fn cwd_reaches_root() -> bool {
    use nix::fcntl::{open, openat, OFlag};
    use nix::sys::stat::{fstat, stat, Mode};
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let id = |st: nix::sys::stat::FileStat| (st.st_dev, st.st_ino);
    let Ok(root) = stat("/").map(id) else {
        return false;
    };
    let Ok(mut dir) = open(".", flags, Mode::empty()) else {
        return false;
    };
    for _ in 0..4096 {
        let Ok(here) = fstat(&dir).map(id) else {
            return false;
        };
        if here == root {
            return true;
        }
        let Ok(up) = openat(&dir, "..", flags, Mode::empty()) else {
            return false;
        };
        if fstat(&up).map(id).ok() == Some(here) {
            return false;
        }
        dir = up;
    }
    false
}

/// setgroups is denied in user namespaces an unprivileged user made.
pub fn setgroups_allowed(in_user_ns: bool) -> bool {
    if !in_user_ns {
        return true;
    }
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// Look `arg0` up the way execvp would, in the container and with its PATH.
pub fn find_executable(arg0: &str, env: &Option<Vec<String>>) -> Result<CString, InitError> {
    let check = |p: &Path| -> Result<CString, InitError> {
        let meta = std::fs::metadata(p).map_err(|e| InitError::NotExecutable {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(InitError::NotExecutable {
                path: p.display().to_string(),
                reason: "permission denied".into(),
            });
        }
        Ok(CString::new(p.as_os_str().as_encoded_bytes()).expect("validated: no NUL"))
    };
    if arg0.contains('/') {
        return check(Path::new(arg0));
    }
    let path = env
        .iter()
        .flatten()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if let Ok(c) = check(&cand) {
            return Ok(c);
        }
    }
    Err(InitError::NotFound(arg0.to_string()))
}
