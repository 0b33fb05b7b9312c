//! A foreground process of ours (`run`, `exec`): signals sent to rt go to it, its
//! pty (when rt holds the master) is proxied to rt's own terminal, and its exit
//! status becomes rt's.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::Error;

/// Signals are held from before the process exists, so none is lost or kills rt
/// while it starts; `Supervisor::wait` forwards them once it runs.
pub struct SignalsHeld {
    set: SigSet,
    old: SigSet,
}

impl SignalsHeld {
    pub fn hold() -> Result<Self, Error> {
        let mut set = SigSet::all();
        for s in [
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
        ] {
            set.remove(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(Error::sys("block signals"))?;
        Ok(SignalsHeld { set, old })
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Wait for `pid` (our child) to exit, forwarding signals and proxying `master`.
/// Returns its exit code, or 128+N for signal N.
pub fn wait(
    pid: Pid,
    pidfd: &OwnedFd,
    master: Option<File>,
    held: &SignalsHeld,
) -> Result<i32, Error> {
    let _raw = master.as_ref().and_then(RawTerminal::enter);
    let sfd =
        SignalFd::with_flags(&held.set, SfdFlags::SFD_CLOEXEC).map_err(Error::sys("signalfd"))?;
    let mut stdin_open = master.is_some();
    let mut pty_open = master.is_some();
    let failed = |source| Error::Sys {
        op: "wait for the container process",
        source,
    };
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
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
            Err(e) => return Err(failed(e)),
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
                    let _ = rt_sys::pidfd::send_signal(pidfd.as_fd(), sig);
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
            match waitpid(pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Ok(_) => continue,
                Err(e) => return Err(failed(e)),
            }
        }
    }
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
