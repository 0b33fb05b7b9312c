//! `run`: create and start in one process, then (unless detached) forward signals to
//! the container, wait for it and delete it. A terminal container without a
//! `--console-socket` gets its pty proxied to our own stdin and stdout, as runc does.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::create::create_inner;
use super::{delete, start, CreateOptions};
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
    let foreground = !opts.detach;
    if foreground {
        // An init forked by an intermediate child is orphaned at once: adopting it
        // lets us wait for its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(Error::sys("become child subreaper"))?;
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), Some(&mut old))
            .map_err(Error::sys("block signals"))?;
    }
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
    if let Err(e) = start(store, id) {
        let _ = delete(store, id, true);
        let _ = waitpid(created.pid, None);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let _raw = master.as_ref().and_then(RawTerminal::enter);
    let sfd =
        SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC).map_err(Error::sys("signalfd"))?;
    let mut stdin_open = master.is_some();
    let mut pty_open = master.is_some();
    let code = loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(created.pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = master.as_ref().filter(|_| pty_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
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
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (exited, signalled, from_pty, from_stdin) = (ready(0), ready(1), ready(2), ready(3));
        drop(fds);
        if signalled {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        let _ = rt_sys::tty::copy_window_size(std::io::stdin().as_fd(), m.as_fd());
                    }
                } else if sig != libc::SIGCHLD {
                    let _ = rt_sys::pidfd::send_signal(created.pidfd.as_fd(), sig);
                }
            }
        }
        if let Some(m) = &master {
            if from_pty && !copy_once(m, &mut std::io::stdout()) {
                // Every slave is closed: nothing more will come until the exit.
                pty_open = false;
            }
            if from_stdin && !copy_stdin(m) {
                stdin_open = false;
            }
        }
        if exited {
            if let Some(m) = &master {
                // What the process wrote just before exiting is still in the pty.
                while copy_once(m, &mut std::io::stdout()) {}
            }
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

/// Copy what the pty has now to `out`; false at EOF (EIO once the slave is closed).
fn copy_once(mut master: &File, out: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
    if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
        return false;
    }
    match master.read(&mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            true
        }
    }
}

/// Copy our stdin to the pty; false once stdin is at EOF.
fn copy_stdin(mut master: &File) -> bool {
    let mut buf = [0u8; 8192];
    match std::io::stdin().lock().read(&mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => master.write_all(&buf[..n]).is_ok(),
    }
}

/// Our terminal in raw mode while it is the container's, restored on drop.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter(master: &File) -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let _ = rt_sys::tty::copy_window_size(stdin.as_fd(), master.as_fd());
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
