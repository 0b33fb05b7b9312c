//! pidfds: signal and wait for a process without racing against pid reuse.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::Result;

/// `pidfd_open(2)`.
pub fn open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: integer arguments; a returned descriptor is owned by nobody else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just created this descriptor for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)` with a raw signal number (real-time signals included).
pub fn send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<()> {
    // SAFETY: a valid descriptor and a null siginfo, as the man page allows.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Convenience for the typed signal enum.
pub fn kill(pidfd: BorrowedFd<'_>, signal: Signal) -> Result<()> {
    send_signal(pidfd, signal as i32)
}
