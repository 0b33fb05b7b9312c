//! `clone3(2)`: one call that creates the container's namespaces, places the child
//! in its cgroup and hands back a pidfd.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::Result;

/// What `clone3` should do. `flags` are `CLONE_*` bits (namespaces and friends);
/// the pidfd and cgroup flags are added from the other fields.
#[derive(Debug, Default)]
pub struct CloneArgs<'a> {
    pub flags: u64,
    /// Start the child directly in this cgroup v2 directory (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Return a pidfd for the child (`CLONE_PIDFD`).
    pub pidfd: bool,
}

/// Which side of the clone we are on.
#[derive(Debug)]
pub enum Forked {
    Parent { pid: Pid, pidfd: Option<OwnedFd> },
    Child,
}

#[repr(C)]
#[derive(Default)]
struct RawCloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Like `fork(2)`, with namespaces, a pidfd and a target cgroup.
///
/// The child runs on a copy of the parent's address space, so this is only sound
/// while the process has a single thread: it refuses to run otherwise.
pub fn clone3(args: &CloneArgs<'_>) -> Result<Forked> {
    if thread_count() != Some(1) {
        return Err(Errno::EDEADLK);
    }
    let mut pidfd: libc::c_int = -1;
    let mut raw = RawCloneArgs {
        flags: args.flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if args.pidfd {
        raw.flags |= libc::CLONE_PIDFD as u64;
        raw.pidfd = &mut pidfd as *mut libc::c_int as u64;
    }
    if let Some(cg) = args.cgroup {
        raw.flags |= CLONE_INTO_CGROUP;
        raw.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: `raw` is a valid clone_args of the size we pass; without CLONE_VM the
    // child gets its own copy of memory and the process is single-threaded (checked).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw as *const RawCloneArgs,
            std::mem::size_of::<RawCloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: Pid::from_raw(pid as i32),
            // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
            pidfd: args.pidfd.then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// `CLONE_INTO_CGROUP`, not exported by every libc version.
pub const CLONE_INTO_CGROUP: u64 = 0x200000000;

/// Plain `fork(2)`, with the same single-thread guard as [`clone3`].
pub fn fork() -> Result<Forked> {
    clone3(&CloneArgs::default())
}

fn thread_count() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Field 20 (num_threads); fields after the command name, which may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(17)?.parse().ok()
}

/// End a forked child at once: no atexit handlers, no flushing of buffers it shares
/// with its parent's copy.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}
