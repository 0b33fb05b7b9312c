//! The child of `rt exec`: it joins the container's namespaces through the init's
//! pidfd (one `setns` for all of them), takes the process settings and execs.
//!
//! Protocol: the parent sends `Go` once the child is in the container's cgroup; the
//! child answers nothing on success (its end closes at exec) or `Error(msg)`.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::fstat;
use nix::unistd::{chroot, execve};
use oci_spec::runtime::Process;

use super::channel::{Channel, Msg};
use super::finalize::{self, setgroups_allowed};
use super::init::InitError;
use crate::hooks::HookState;
use crate::seccomp::Prepared;
use crate::tty::{self, TtyError};

/// What the exec child needs from the parent's memory.
pub struct ExecArgs<'a> {
    pub process: &'a Process,
    /// The container init, whose namespaces are joined.
    pub init: &'a OwnedFd,
    /// Namespaces that differ from the runtime's (all but pid and time, which the
    /// parent entered for us).
    pub join: CloneFlags,
    /// The container has no mount namespace: enter its rootfs with chroot.
    pub chroot: Option<&'a Path>,
    pub console: Option<&'a UnixStream>,
    pub preserve_fds: u32,
    /// rt runs as root on the host (see `SpawnArgs::privileged`).
    pub privileged: bool,
    /// The container's seccomp filter (runc gives it to exec'd processes too), and
    /// the container's state for its agent.
    pub seccomp: Option<(&'a Prepared, HookState<'a>)>,
}

pub fn run(a: &ExecArgs<'_>, channel: Channel) -> ! {
    let e = match setup(a, &channel) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = channel.send(&Msg::Error(e.to_string()));
    rt_sys::clone::exit_child(127)
}

fn setup(a: &ExecArgs<'_>, channel: &Channel) -> Result<Infallible, InitError> {
    let sys = |op: &'static str| {
        move |source| InitError::Sys {
            op: op.into(),
            source,
        }
    };
    super::init::undumpable(a.privileged)?;
    let mut keep = vec![channel.0.as_raw_fd(), a.init.as_raw_fd()];
    if let Some(c) = a.console {
        keep.push(c.as_raw_fd());
    }
    if let Some(agent) = a.seccomp.as_ref().and_then(|(f, _)| f.agent.as_ref()) {
        keep.push(agent.as_raw_fd());
    }
    rt_sys::fd::close_from(3 + a.preserve_fds as i32, &keep)
        .map_err(sys("close inherited descriptors"))?;
    let Msg::Go(host_pid) = channel.expect(&Msg::Go(0))? else {
        unreachable!()
    };
    if !a.join.is_empty() {
        setns(a.init.as_fd(), a.join).map_err(sys("join the container's namespaces"))?;
    }
    if let Some(root) = a.chroot {
        chroot(root).map_err(sys("chroot into the container"))?;
        nix::unistd::chdir("/").map_err(sys("chdir /"))?;
    }
    if a.process.terminal().unwrap_or(false) {
        nix::unistd::setsid().map_err(sys("setsid"))?;
        let (master, slave) = open_pty()?;
        if let Some(sock) = a.console {
            tty::send_master(sock, &master)?;
        }
        drop(master);
        tty::become_stdio(&slave)?;
    }
    // Before any filter goes in (it may refuse or kill on close_range); what is
    // opened from here on is close-on-exec by construction.
    rt_sys::fd::cloexec_from(3 + a.preserve_fds as i32, &[])
        .map_err(sys("mark descriptors close-on-exec"))?;
    // As the init: before the capabilities go without no_new_privs, else last.
    let early = Prepared::loads_early(a.process.no_new_privileges().unwrap_or(false));
    if let Some((f, state)) = a.seccomp.as_ref().filter(|_| early) {
        f.install(host_pid, state)?;
    }
    let exe = finalize::become_process(
        a.process,
        setgroups_allowed(a.join.contains(CloneFlags::CLONE_NEWUSER) || !a.privileged),
    )?;
    let args: Vec<CString> = a
        .process
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|s| CString::new(s.as_bytes()).expect("validated: no NUL"))
        .collect();
    let env: Vec<CString> = a
        .process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| CString::new(s.as_bytes()).ok())
        .collect();
    rt_sys::signal::reset_all().map_err(sys("reset signals"))?;
    if let Some((f, state)) = a.seccomp.as_ref().filter(|_| !early) {
        f.install(host_pid, state)?;
    }
    let e = execve(&exe, &args, &env).unwrap_err();
    Err(InitError::NotExecutable {
        path: exe.to_string_lossy().into_owned(),
        reason: e.desc().to_string(),
    })
}

/// A pty of the container's devpts, opened without following any symlink the
/// container may have put in the way.
fn open_pty() -> Result<(OwnedFd, OwnedFd), InitError> {
    let sys = |op: &'static str| move |source| TtyError::Sys { op, source };
    let how = OpenHow::new()
        .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let master = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, "/dev/pts/ptmx", how)
        .map_err(sys("open /dev/pts/ptmx"))?;
    let st = fstat(master.as_fd()).map_err(sys("stat /dev/pts/ptmx"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR
        || libc::major(st.st_rdev) != 5
        || libc::minor(st.st_rdev) != 2
    {
        return Err(TtyError::NotPtmx("/dev/pts/ptmx").into());
    }
    rt_sys::tty::unlock_pty(master.as_fd()).map_err(sys("unlock pty"))?;
    let slave = rt_sys::tty::open_peer(
        master.as_fd(),
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
    )
    .map_err(sys("open pty peer"))?;
    Ok((master, slave))
}
