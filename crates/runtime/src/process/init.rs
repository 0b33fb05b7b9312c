//! The container init: what the cloned child does, step by step, until it becomes
//! the user's process. Each step is one call into the module that owns the concept.
//!
//! Two phases. `prepare` builds the container and reports errors on the channel to
//! the `rt create` that is waiting for it; `wait_and_exec` waits for `rt start` and
//! reports errors on that connection instead.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode};
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{execve, setresgid, setresuid, setsid, Gid, Uid};
use oci_spec::runtime::Spec;
use thiserror::Error;

use super::channel::{Channel, ChannelError, Msg};
use super::finalize::{self, setgroups_allowed};
use super::spawn::SpawnArgs;
use crate::capabilities::CapError;
use crate::hooks::{self, HookError, HookState};
use crate::rlimits::RlimitError;
use crate::rootfs::{self, RootfsError};
use crate::sched;
use crate::sysctl::{Proc, SysctlError};
use crate::tty::{self, TtyError};
use crate::user::UserError;
use rt_sys::clone::Forked;

#[derive(Debug, Error)]
pub enum InitError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Tty(#[from] TtyError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    #[error(transparent)]
    Sched(#[from] crate::sched::SchedError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Capabilities(#[from] CapError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error("{op}: {source}")]
    Sys { op: String, source: nix::Error },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {path:?}: {reason}")]
    NotExecutable { path: String, reason: String },
    #[error("chdir to cwd ({path:?}) set in config.json failed: {source}")]
    Cwd { path: PathBuf, source: nix::Error },
}

fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let op = op.into();
    move |source| InitError::Sys { op, source }
}

/// Entry point of the cloned child. Never returns: it becomes the user's process or exits.
/// `forked` says an intermediate child already entered the namespaces and forked us.
pub fn run(args: &SpawnArgs<'_>, channel: Channel, forked: bool) -> ! {
    let ready = match prepare(args, &channel, forked) {
        Ok(r) => r,
        Err(e) => {
            let _ = channel.send(&Msg::Error(e.to_string()));
            std::process::exit(1);
        }
    };
    drop(channel);
    match wait_and_exec(args, ready) {
        Ok(never) => match never {},
        Err((conn, e)) => {
            if let Some(conn) = conn {
                let _ = conn.send(&Msg::Error(e.to_string()));
            }
            std::process::exit(127);
        }
    }
}

/// What the prepared init carries into the wait for `start`.
struct Ready {
    exe: CString,
    host_pid: i32,
}

/// The child between `rt create` and the init when the kernel demands one (see
/// `namespaces::Plan::intermediate`): it enters the namespaces, forks the init into
/// them, reports the init's pid and exits.
pub fn intermediate(args: &SpawnArgs<'_>, channel: Channel) -> ! {
    match enter_and_fork(args, &channel) {
        Ok(Forked::Child) => run(args, channel, true),
        Ok(Forked::Parent { pid, .. }) => {
            let _ = channel.send(&Msg::InitPid(pid.as_raw()));
            std::process::exit(0);
        }
        Err(e) => {
            let _ = channel.send(&Msg::Error(e.to_string()));
            std::process::exit(1);
        }
    }
}

fn enter_and_fork(a: &SpawnArgs<'_>, channel: &Channel) -> Result<Forked, InitError> {
    undumpable(a.privileged)?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(sys("set parent-death signal"))?;
    keep_only_needed_fds(a, channel)?;
    channel.expect(&Msg::Go(0))?;
    enter_namespaces(a, true)?;
    if a.plan.new_time {
        crate::namespaces::write_time_offsets(a.spec)?;
    }
    rt_sys::clone::fork().map_err(sys("fork the container init"))
}

/// Until it execs, a child of rt is a copy of rt: its `/proc/PID/environ` is the
/// caller's environment on the host, its memory rt's. Not dumpable, no process of
/// the container (even root in it) may read or trace it; the exec makes the
/// container's process dumpable again. Rootless, the caller's own uid must still
/// reach the child's /proc files (uid_map), and the container runs as that uid
/// anyway: left as it is.
pub(crate) fn undumpable(privileged: bool) -> Result<(), InitError> {
    if privileged {
        nix::sys::prctl::set_dumpable(false).map_err(sys("make the process not dumpable"))?;
    }
    Ok(())
}

fn prepare(a: &SpawnArgs<'_>, channel: &Channel, forked: bool) -> Result<Ready, InitError> {
    let spec = a.spec;
    let process = spec.process().as_ref().expect("validated: process present");
    undumpable(a.privileged)?;
    if !forked {
        // Die with `rt create` until the container is ready. (A forked init's parent
        // is the intermediate, which exits at once: it watches the channel instead.)
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(sys("set parent-death signal"))?;
    }
    keep_only_needed_fds(a, channel)?;

    let Msg::Go(host_pid) = channel.expect(&Msg::Go(0))? else {
        unreachable!()
    };
    if !forked {
        enter_namespaces(a, false)?;
    }
    let cgroup_ns = a.plan.unshare_flags.contains(CloneFlags::CLONE_NEWCGROUP);
    if cgroup_ns {
        // The namespace is rooted at the cgroup we are in when we make it.
        channel.expect(&Msg::Joined)?;
        if !forked {
            unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare cgroup namespace"))?;
        }
    }
    setsid().map_err(sys("setsid"))?;
    if !a.no_new_keyring {
        // Kernels or user namespaces without keyrings: carry on as runc does.
        let _ = rt_sys::keyring::join_session_keyring(&format!("_ses.{}", a.id));
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let dev_null = open_dev_null()?;

    let ctx = rootfs::Context {
        spec,
        rootfs: a.rootfs,
        user_ns: a.plan.has_user(),
        cgroup_ns: a.plan.unshare_flags.contains(CloneFlags::CLONE_NEWCGROUP),
        mount_ns: a.plan.mount_ns,
        cgroup: a.cgroup,
        dev_null: dev_null.as_fd(),
        idmaps: &a.idmaps,
    };
    let root = rootfs::prepare(&ctx)?;
    if !cgroup_ns {
        // Hooks and the user's process must start inside the cgroup.
        channel.expect(&Msg::Joined)?;
    }
    let state = |status| HookState {
        oci_version: spec.version(),
        id: a.id,
        status,
        pid: Some(host_pid),
        bundle: a.bundle.to_str().unwrap_or_default(),
        annotations: spec.annotations().as_ref(),
    };
    if needs_runtime_hooks(spec) {
        channel.send(&Msg::RuntimeHooks)?;
        channel.expect(&Msg::HooksDone)?;
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        hooks::run_all("createContainer", h, &state("created"))?;
    }
    rootfs::protect_paths(&root, &ctx)?;
    if process.terminal().unwrap_or(false) {
        let pty = tty::open(&root)?;
        tty::mount_console(&root, &pty.slave)?;
        if let Some(sock) = &a.console {
            tty::send_master(sock, &pty.master)?;
        }
        tty::become_stdio(&pty.slave)?;
    }
    drop(root);
    drop(dev_null);
    let entry = match (a.plan.mount_ns, a.no_pivot) {
        (false, _) => rootfs::Entry::Chroot,
        (true, true) => rootfs::Entry::Move,
        (true, false) => rootfs::Entry::PivotRoot,
    };
    rootfs::enter(a.rootfs, entry, spec)?;
    if a.plan.mount_ns {
        rootfs::finish_readonly(spec)?;
    }

    set_names(spec)?;
    let sysctls = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .filter(|s| !s.is_empty());
    if let Some(s) = sysctls {
        Proc::open()?.apply_sysctls(s)?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        sched::apply_personality(p)?;
    }
    if let Some(f) = a.seccomp.as_ref().filter(|_| early_seccomp(process)) {
        // The profile may not allow close_range: mark our descriptors first
        // (what is opened from here on is close-on-exec by construction).
        rt_sys::fd::cloexec_from(3 + a.preserve_fds as i32, &[])
            .map_err(sys("mark descriptors close-on-exec"))?;
        f.install(host_pid, &state("creating"))?;
    }
    let exe = finalize::become_process(process, setgroups_allowed(a.plan.has_user()))?;

    rt_sys::signal::exit_on_terminating_signals().map_err(sys("install signal handlers"))?;
    nix::sys::prctl::set_pdeathsig(None).map_err(sys("clear parent-death signal"))?;
    channel.send(&Msg::Ready)?;
    Ok(Ready { exe, host_pid })
}

type WaitError = (Option<Channel>, InitError);

fn wait_and_exec(a: &SpawnArgs<'_>, ready: Ready) -> Result<Infallible, WaitError> {
    let spec = a.spec;
    let process = spec.process().as_ref().expect("validated: process present");
    let conn = loop {
        match rt_sys::fd::accept(a.listener.as_fd()) {
            Ok(fd) => {
                let c = Channel(fd);
                match c.recv() {
                    Ok(Msg::Start) => break c,
                    _ => continue,
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err((
                    None,
                    InitError::Sys {
                        op: "accept start".into(),
                        source: e,
                    },
                ))
            }
        }
    };
    let fail = |c: Channel, e: InitError| -> WaitError { (Some(c), e) };
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let st = HookState {
            oci_version: spec.version(),
            id: a.id,
            status: "created",
            pid: Some(ready.host_pid),
            bundle: a.bundle.to_str().unwrap_or_default(),
            annotations: spec.annotations().as_ref(),
        };
        if let Err(e) = hooks::run_all("startContainer", h, &st) {
            return Err(fail(conn, e.into()));
        }
    }
    let args: Vec<CString> = process
        .args()
        .as_ref()
        .expect("validated: args")
        .iter()
        .map(|s| CString::new(s.as_bytes()).expect("validated: no NUL"))
        .collect();
    let env: Vec<CString> = process
        .env()
        .as_ref()
        .map(|e| {
            e.iter()
                .filter_map(|s| CString::new(s.as_bytes()).ok())
                .collect()
        })
        .unwrap_or_default();
    let first = 3 + a.preserve_fds as i32;
    // With the filter in already, this was done before it (which may refuse or
    // kill on close_range now).
    let filtered = a.seccomp.is_some() && early_seccomp(process);
    let marked = if filtered {
        Ok(())
    } else {
        rt_sys::fd::cloexec_from(first, &[])
    };
    if let Err(e) = marked {
        return Err(fail(
            conn,
            InitError::Sys {
                op: "mark descriptors close-on-exec".into(),
                source: e,
            },
        ));
    }
    if let Err(e) = rt_sys::signal::reset_all() {
        return Err(fail(
            conn,
            InitError::Sys {
                op: "reset signals".into(),
                source: e,
            },
        ));
    }
    if let Some(f) = a.seccomp.as_ref().filter(|_| !early_seccomp(process)) {
        let st = HookState {
            oci_version: spec.version(),
            id: a.id,
            status: "created",
            pid: Some(ready.host_pid),
            bundle: a.bundle.to_str().unwrap_or_default(),
            annotations: spec.annotations().as_ref(),
        };
        if let Err(e) = f.install(ready.host_pid, &st) {
            return Err(fail(conn, e.into()));
        }
    }
    let e = execve(&ready.exe, &args, &env).unwrap_err();
    Err(fail(
        conn,
        InitError::NotExecutable {
            path: ready.exe.to_string_lossy().into_owned(),
            reason: e.desc().to_string(),
        },
    ))
}

/// Close everything of the caller's and ours the container must not hold, keeping
/// stdio, `--preserve-fds` and the descriptors the init still needs.
fn keep_only_needed_fds(a: &SpawnArgs<'_>, channel: &Channel) -> Result<(), InitError> {
    let mut keep = vec![channel.0.as_raw_fd(), a.listener.as_raw_fd()];
    if let Some(c) = &a.console {
        keep.push(c.as_raw_fd());
    }
    if let Some(j) = &a.plan.joined_user {
        keep.push(j.fd.as_raw_fd());
    }
    keep.extend(a.idmaps.iter().flatten().map(|fd| fd.as_raw_fd()));
    if let Some(agent) = a.seccomp.as_ref().and_then(|f| f.agent.as_ref()) {
        keep.push(agent.as_raw_fd());
    }
    rt_sys::fd::close_from(3 + a.preserve_fds as i32, &keep)
        .map_err(sys("close inherited descriptors"))
}

/// Join and create the namespaces the clone did not; the cgroup namespace only when
/// `with_cgroup` (the init waits to be in its cgroup first).
fn enter_namespaces(a: &SpawnArgs<'_>, with_cgroup: bool) -> Result<(), InitError> {
    if let Some(j) = &a.plan.joined_user {
        setns(j.fd.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(sys(format!("join user namespace {}", j.path.display())))?;
    }
    let mut flags = a.plan.unshare_flags;
    if !with_cgroup {
        flags.remove(CloneFlags::CLONE_NEWCGROUP);
    }
    if !flags.is_empty() {
        unshare(flags).map_err(sys("unshare namespaces"))?;
    }
    if a.plan.has_user() {
        // Become root of the new user namespace (when 0 is mapped).
        let _ = setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
        let _ = setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
    }
    Ok(())
}

/// Load the seccomp filter before the capabilities go (see `Prepared::loads_early`),
/// or right before execve, after the startContainer hooks.
fn early_seccomp(process: &oci_spec::runtime::Process) -> bool {
    crate::seccomp::Prepared::loads_early(process.no_new_privileges().unwrap_or(false))
}

fn needs_runtime_hooks(spec: &Spec) -> bool {
    let Some(h) = spec.hooks().as_ref() else {
        return false;
    };
    #[allow(deprecated)]
    let prestart = h.prestart().as_ref().is_some_and(|v| !v.is_empty());
    prestart || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
}

fn set_names(spec: &Spec) -> Result<(), InitError> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(sys(format!("set hostname {h:?}")))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        rt_sys::uts::set_domainname(d).map_err(sys(format!("set domainname {d:?}")))?;
    }
    Ok(())
}

/// The host's /dev/null, opened in our own mount namespace (a bind source must be
/// there) and checked to be the 1:3 device, so masked paths never get an impostor.
fn open_dev_null() -> Result<OwnedFd, InitError> {
    let fd = open("/dev/null", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open /dev/null"))?;
    let st = fstat(fd.as_fd()).map_err(sys("stat /dev/null"))?;
    let dev = st.st_rdev;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || libc::major(dev) != 1 || libc::minor(dev) != 3
    {
        return Err(InitError::Sys {
            op: "/dev/null is not the null device".into(),
            source: nix::errno::Errno::EINVAL,
        });
    }
    Ok(fd)
}
