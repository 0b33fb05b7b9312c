//! `run`: create and start in one process, then (unless detached) forward signals to
//! the container, wait for it and delete it. A terminal container without a
//! `--console-socket` gets its pty proxied to our own stdin and stdout, as runc does.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::sys::wait::waitpid;

use super::create::create_inner;
use super::start::start_inner;
use super::supervise::{self, SignalsHeld};
use super::{delete, CreateOptions};
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
    let foreground = !opts.detach;
    let held = if foreground {
        // An init forked by an intermediate child is orphaned at once: adopting it
        // lets us wait for its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(Error::sys("become child subreaper"))?;
        Some(SignalsHeld::hold()?)
    } else {
        None
    };
    let (ours, theirs) = if foreground && opts.create.console_socket.is_none() {
        let (a, b) = UnixStream::pair().map_err(Error::io("socketpair", "console"))?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let id = &opts.create.id;
    let created = create_inner(store, &opts.create, theirs)?;
    let master = match (&ours, created.terminal) {
        (Some(sock), true) => match rt_sys::fd::recv_fd(sock.as_fd()) {
            Ok(fd) => Some(File::from(fd)),
            Err(e) => {
                let _ = delete(store, id, true);
                let _ = waitpid(created.pid, None);
                return Err(Error::Sys {
                    op: "receive the container's pty",
                    source: e,
                });
            }
        },
        _ => None,
    };
    drop(ours);
    let main_pid = foreground.then(|| std::process::id() as i32);
    if let Err(e) = start_inner(store, id, main_pid) {
        let _ = delete(store, id, true);
        let _ = waitpid(created.pid, None);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let held = held.expect("held in the foreground");
    let code = supervise::wait(created.pid, &created.pidfd, master, &held)?;
    drop(held);
    if !opts.keep {
        delete(store, id, true)?;
    }
    Ok(code)
}
