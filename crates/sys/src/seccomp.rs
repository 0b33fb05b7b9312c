//! seccomp(2): load a classic-BPF syscall filter into the calling thread, and ask the
//! kernel which filter flags it knows.
//!
//! Only the syscall lives here; the program is plain data built by the caller.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::Result;

/// One classic-BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

pub const FILTER_FLAG_TSYNC: u32 = 1;
pub const FILTER_FLAG_LOG: u32 = 1 << 1;
pub const FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub const FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
/// With TSYNC: fail with ESRCH instead of returning a thread id (lets TSYNC and
/// NEW_LISTENER go together).
pub const FILTER_FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub const FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

fn seccomp(op: libc::c_uint, flags: u32, arg: *const libc::c_void) -> Result<libc::c_long> {
    // SAFETY: `arg` is null or points to a live sock_fprog whose filter outlives the call;
    // the kernel copies what it needs before returning.
    let ret = unsafe { libc::syscall(libc::SYS_seccomp, op, flags, arg) };
    Errno::result(ret)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: every later syscall of this thread
/// (and, with TSYNC, of its siblings) goes through `prog`. Without `no_new_privs` the
/// caller needs CAP_SYS_ADMIN in its user namespace. With NEW_LISTENER, returns the
/// notification listener (close-on-exec).
pub fn set_mode_filter(prog: &[SockFilter], flags: u32) -> Result<Option<OwnedFd>> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(Errno::EINVAL);
    }
    let fprog = SockFprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr(),
    };
    let ret = seccomp(
        SECCOMP_SET_MODE_FILTER,
        flags,
        &fprog as *const SockFprog as *const libc::c_void,
    )?;
    if flags & FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a new descriptor that we now own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }));
    }
    if ret > 0 {
        // TSYNC without TSYNC_ESRCH: the id of a thread that could not be synchronised.
        return Err(Errno::ESRCH);
    }
    Ok(None)
}

/// Whether this kernel knows filter flag `flag`: it checks flags before it reads the
/// program, so a null program fails with EFAULT for a known flag and EINVAL otherwise.
pub fn filter_flag_supported(flag: u32) -> bool {
    seccomp(SECCOMP_SET_MODE_FILTER, flag, std::ptr::null()) == Err(Errno::EFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<SockFilter>(), 8);
        assert_eq!(std::mem::offset_of!(SockFilter, k), 4);
        assert_eq!(std::mem::offset_of!(SockFprog, filter), 8);
    }

    #[test]
    fn flags_known_to_every_kernel_we_run_on() {
        assert!(filter_flag_supported(FILTER_FLAG_TSYNC));
        assert!(filter_flag_supported(FILTER_FLAG_LOG));
        assert!(!filter_flag_supported(1 << 30));
    }

    #[test]
    fn refuses_empty_and_oversized_programs() {
        assert_eq!(set_mode_filter(&[], 0).unwrap_err(), Errno::EINVAL);
        let big = vec![
            SockFilter {
                code: 6,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000
            };
            MAX_INSNS + 1
        ];
        assert_eq!(set_mode_filter(&big, 0).unwrap_err(), Errno::EINVAL);
    }
}
