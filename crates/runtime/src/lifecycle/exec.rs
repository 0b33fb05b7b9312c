//! `exec`: run another process in a running container. The child joins every
//! namespace of the init through its pidfd, lands in the container's cgroup and takes
//! the process settings (by default the container's own, with the flags on top).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, Process, User};
use rt_sys::clone::{clone3, CloneArgs, Forked};

use super::create::write_pid_file;
use super::supervise::{self, SignalsHeld};
use crate::process::channel::{Channel, ChannelError, Msg};
use crate::process::exec::ExecArgs;
use crate::state::{Access, Status, Store};
use crate::{id, namespaces, procstat, Error};

/// The process to run: a `process.json` (`-p`), or arguments and flags applied on
/// top of the container's own process.
#[derive(Debug, Clone)]
pub enum ExecProcess {
    File(PathBuf),
    Args(ExecFlags),
}

#[derive(Debug, Clone, Default)]
pub struct ExecFlags {
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `UID[:GID]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    pub process: ExecProcess,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Returns the process's exit code (0 at once with `detach`).
pub fn exec(store: &Store, opts: &ExecOptions) -> Result<i32, Error> {
    id::validate(&opts.id)?;
    let dir = store.open(&opts.id, Access::Read)?;
    let state = dir.load()?;
    match state.status(&dir) {
        Status::Created | Status::Running => {}
        Status::Paused => return Err(Error::Invalid("cannot exec in a paused container".into())),
        s => return Err(Error::Invalid(format!("cannot exec in a {s} container"))),
    }
    let base = state.config.process().clone().unwrap_or_default();
    let process = match &opts.process {
        ExecProcess::File(path) => read_process(path)?,
        ExecProcess::Args(flags) => apply_flags(base, flags)?,
    };
    crate::lsm::check(Some(&process))?;
    let mut check = (*state.config).clone();
    check.set_process(Some(process.clone()));
    rt_spec::validate(&check, rt_spec::Purpose::Create)?;

    let (Some(pid), Some(start)) = (state.pid, state.start_time) else {
        return Err(Error::Invalid("container not running".into()));
    };
    let init = rt_sys::pidfd::open(Pid::from_raw(pid))
        .map_err(|_| Error::Invalid("container not running".into()))?;
    if procstat::read(pid).map(|s| s.start_time) != Some(start) {
        return Err(Error::Invalid("container not running".into()));
    }
    // The container's seccomp profile applies to exec'd processes too (as runc does).
    let seccomp = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::prepare)
        .transpose()?;
    // Nothing else waits on this container while the process runs.
    drop(dir);

    let terminal = process.terminal().unwrap_or(false);
    let (console, ours) = match (terminal, &opts.console_socket, opts.detach) {
        (true, Some(path), _) => (
            Some(UnixStream::connect(path).map_err(Error::io("connect to console socket", path))?),
            None,
        ),
        (true, None, false) => {
            let (a, b) = UnixStream::pair().map_err(Error::io("socketpair", "console"))?;
            (Some(b), Some(a))
        }
        (true, None, true) => {
            return Err(Error::Invalid(
                "a detached exec with a terminal needs --console-socket".into(),
            ))
        }
        (false, Some(_), _) => {
            return Err(Error::Invalid(
                "--console-socket given but the process has no terminal".into(),
            ))
        }
        (false, None, _) => (None, None),
    };
    let held = if opts.detach {
        None
    } else {
        Some(SignalsHeld::hold()?)
    };

    let differ = namespaces::differing(pid);
    let for_children =
        differ & (CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));
    let privileged = nix::unistd::geteuid().is_root();
    let mut join = differ - for_children;
    // Rootless, entering the container's pid namespace takes its user namespace
    // first; exec's parent only supervises from then on, and never needs to leave.
    let in_user =
        !for_children.is_empty() && join.contains(CloneFlags::CLONE_NEWUSER) && !privileged;
    if in_user {
        namespaces::enter_user(&init)?;
        join.remove(CloneFlags::CLONE_NEWUSER);
    }
    let (parent_end, child_end) = Channel::pair()?;
    let mut guard = namespaces::enter_for_children(&init, for_children)?;
    let cgroup_dir = state.cgroup.open_v2_dir();
    let args = CloneArgs {
        flags: 0,
        cgroup: cgroup_dir.as_ref().map(|d| d.as_fd()),
        pidfd: true,
    };
    let chroot = state.host_mounts.then_some(state.rootfs.as_path());
    match clone3(&args).map_err(|e| Error::Sys {
        op: "clone the exec process",
        source: e,
    })? {
        Forked::Child => {
            std::mem::forget(guard);
            drop(parent_end);
            crate::process::exec::run(
                &ExecArgs {
                    process: &process,
                    init: &init,
                    join,
                    chroot,
                    console: console.as_ref(),
                    preserve_fds: opts.preserve_fds,
                    privileged,
                    seccomp: seccomp
                        .as_ref()
                        .map(|f| (f, super::hook_state(&state, "running"))),
                },
                child_end,
            )
        }
        Forked::Parent { pid: child, pidfd } => {
            drop(child_end);
            drop(console);
            // The child has its own copy of the agent's connection.
            drop(seccomp);
            let pidfd = pidfd.expect("clone3 asked for a pidfd");
            let started = (|| -> Result<(), Error> {
                if in_user {
                    guard.stay();
                } else {
                    guard.restore()?;
                }
                if args.cgroup.is_none() {
                    state.cgroup.add(child.as_raw())?;
                }
                parent_end.send(&Msg::Go(child.as_raw()))?;
                match parent_end.recv() {
                    Err(ChannelError::Closed) => Ok(()),
                    Ok(Msg::Error(m)) => Err(Error::Exec(m)),
                    Ok(other) => Err(ChannelError::Unexpected(other).into()),
                    Err(e) => Err(e.into()),
                }
            })();
            if let Err(e) = started {
                let _ = rt_sys::pidfd::kill(pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(e);
            }
            if let Some(p) = &opts.pid_file {
                write_pid_file(p, child.as_raw())?;
            }
            if opts.detach {
                return Ok(0);
            }
            let master = match &ours {
                Some(sock) => Some(File::from(rt_sys::fd::recv_fd(sock.as_fd()).map_err(
                    |e| Error::Sys {
                        op: "receive the process's pty",
                        source: e,
                    },
                )?)),
                None => None,
            };
            let held = held.expect("held in the foreground");
            supervise::wait(child, &pidfd, master, &held)
        }
    }
}

fn read_process(path: &std::path::Path) -> Result<Process, Error> {
    let data = std::fs::read(path).map_err(Error::io("read process file", path))?;
    serde_json::from_slice(&data).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// The container's process, changed as the exec flags say (runc's rules).
fn apply_flags(mut p: Process, f: &ExecFlags) -> Result<Process, Error> {
    if f.args.is_empty() {
        return Err(Error::Invalid("exec needs a command (or --process)".into()));
    }
    p.set_args(Some(f.args.clone()));
    if let Some(cwd) = &f.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &f.env {
        let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
        env.retain(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) != key);
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &f.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let bad = || Error::Invalid(format!("invalid --user {u:?}: want UID[:GID]"));
        let mut user = User::default();
        user.set_uid(uid.parse().map_err(|_| bad())?);
        user.set_gid(match gid {
            Some(g) => g.parse().map_err(|_| bad())?,
            None => 0,
        });
        user.set_umask(p.user().umask());
        p.set_user(user);
    }
    if !f.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(f.additional_gids.clone()));
        p.set_user(user);
    }
    if !f.caps.is_empty() {
        // Not oci-spec's default (which grants a few caps in every set): none.
        let mut caps = p.capabilities().clone().unwrap_or_else(|| {
            serde_json::from_str("{}").expect("all capability sets are optional")
        });
        for c in &f.caps {
            let name = if c.starts_with("CAP_") {
                c.clone()
            } else {
                format!("CAP_{c}")
            };
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| Error::Invalid(format!("unknown capability {name:?}")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            // As runc since CVE-2022-29162: never inheritable (a program the process
            // execs must not inherit it); ambient only where the config already made
            // inheritable capabilities, without which ambient ones cannot be held.
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            if caps.inheritable().is_some() {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    p.set_terminal(Some(f.tty));
    if f.apparmor.is_some() {
        p.set_apparmor_profile(f.apparmor.clone());
    }
    if f.process_label.is_some() {
        p.set_selinux_label(f.process_label.clone());
    }
    Ok(p)
}
