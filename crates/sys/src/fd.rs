//! File descriptor hygiene: nothing of the caller may reach the container.

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::Result;

const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

fn close_range(first: libc::c_uint, last: libc::c_uint, flags: libc::c_uint) -> Result<()> {
    // SAFETY: close_range takes plain integers; closing descriptors we own is the intent.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(ret).map(drop)
}

/// Mark every descriptor from `first` up as close-on-exec, except those in `keep`.
pub fn cloexec_from(first: RawFd, keep: &[RawFd]) -> Result<()> {
    each_gap(first, keep, |lo, hi| {
        close_range(lo, hi, CLOSE_RANGE_CLOEXEC)
    })
}

/// Close every descriptor from `first` up, except those in `keep`.
///
/// Any `OwnedFd` in the closed range must be forgotten by the caller.
pub fn close_from(first: RawFd, keep: &[RawFd]) -> Result<()> {
    each_gap(first, keep, |lo, hi| close_range(lo, hi, 0))
}

fn each_gap(first: RawFd, keep: &[RawFd], mut f: impl FnMut(u32, u32) -> Result<()>) -> Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&k| k >= first)
        .map(|&k| k as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first as u32;
    for k in keep {
        if k > lo {
            f(lo, k - 1)?;
        }
        lo = k + 1;
    }
    f(lo, u32::MAX)
}

/// Occupies every descriptor number in `first..first + count` that is not open
/// with a close-on-exec `/dev/null`. The caller's `--preserve-fds` range is handed
/// to the container as is: a number the caller left free must not be taken by a
/// descriptor of rt's own (a host directory, say) and then passed in.
pub fn reserve_unopened(first: RawFd, count: u32) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::{AsRawFd, BorrowedFd};
    for fd in first..first.saturating_add(count as RawFd) {
        // SAFETY: the descriptor is only probed with F_GETFD, never used or closed.
        let probe = unsafe { BorrowedFd::borrow_raw(fd) };
        match fcntl(probe, FcntlArg::F_GETFD) {
            Err(Errno::EBADF) => {}
            _ => continue,
        }
        let null = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        if null.as_raw_fd() != fd {
            // SAFETY: dup3 onto a number that is not open (checked above); the new
            // descriptor is deliberately leaked as a placeholder until exec closes it.
            Errno::result(unsafe { libc::dup3(null.as_raw_fd(), fd, libc::O_CLOEXEC) })?;
        } else {
            std::mem::forget(null);
        }
    }
    Ok(())
}

/// `accept4(2)` with close-on-exec, returning an owned connection.
pub fn accept(listener: std::os::fd::BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: null address pointers are allowed when the peer address is not wanted.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just created this descriptor for us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Receive one descriptor sent with SCM_RIGHTS over a unix socket.
pub fn recv_fd(sock: std::os::fd::BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this descriptor in our table.
                return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Errno::EBADMSG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_skip_kept_descriptors() {
        let mut seen = vec![];
        each_gap(3, &[5, 4, 9, 1], |lo, hi| {
            seen.push((lo, hi));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(3, 3), (6, 8), (10, u32::MAX)]);
    }
}
