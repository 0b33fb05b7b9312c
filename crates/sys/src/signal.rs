//! Signal dispositions around the container init.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use crate::Result;

/// Signals whose default action ends the process (and so can be caught).
const TERMINATING: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGPIPE,
];

extern "C" fn exit_with_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe and ends the process without unwinding.
    unsafe { libc::_exit(128 + sig) }
}

/// An init that is pid 1 of its namespace ignores signals it has no handler for; while
/// it waits for `start`, give it handlers so `kill` can stop it as it would any process.
pub fn exit_on_terminating_signals() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(exit_with_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for &sig in TERMINATING {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Every signal back to its default action and nothing blocked, as a fresh process
/// expects (Rust ignores SIGPIPE, and ignored signals survive execve).
pub fn reset_all() -> Result<()> {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}
