//! `run`: create and start in one process, then (unless detached) forward signals to
//! the container, wait for it and delete it.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::{create, delete, start, CreateOptions};
use crate::state::Store;
use crate::Error;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    pub keep: bool,
}

/// Returns the exit code for `rt run`: the container's, or 128+N for signal N.
pub fn run(store: &Store, opts: &RunOptions) -> Result<i32, Error> {
    // Signals are held from before the container exists, so none is lost or kills
    // us while it starts; they are forwarded once it runs.
    let mut forwarded = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        forwarded.remove(s);
    }
    let mut old = SigSet::empty();
    if !opts.detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), Some(&mut old))
            .map_err(Error::sys("block signals"))?;
    }
    let id = &opts.create.id;
    let created = create(store, &opts.create)?;
    if let Err(e) = start(store, id) {
        let _ = delete(store, id, true);
        let _ = waitpid(created.pid, None);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let sfd =
        SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC).map_err(Error::sys("signalfd"))?;
    let code = loop {
        let mut fds = [
            PollFd::new(created.pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(Error::Sys {
                    op: "wait for the container",
                    source: e,
                })
            }
            Ok(_) => {}
        }
        if fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD {
                    let _ = rt_sys::pidfd::send_signal(created.pidfd.as_fd(), sig);
                }
            }
        }
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            match waitpid(created.pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(_, c)) => break c,
                Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
                Ok(_) => continue,
                Err(e) => {
                    return Err(Error::Sys {
                        op: "wait for the container",
                        source: e,
                    })
                }
            }
        }
    };
    drop(sfd);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    if !opts.keep {
        delete(store, id, true)?;
    }
    Ok(code)
}
