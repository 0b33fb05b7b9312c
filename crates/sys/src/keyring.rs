//! Session keyrings: each container gets its own, so it cannot read the host's keys.

use std::ffi::CString;

use nix::errno::Errno;

use crate::Result;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
/// Possessor: all; user: view, read, write, search, link... as runc sets it.
const KEY_PERM: libc::c_long = 0x3f3f0000;

/// Join a new anonymous-named session keyring `name` and make it private to possessors.
pub fn join_session_keyring(name: &str) -> Result<()> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: keyctl with a valid NUL-terminated string pointer.
    let serial =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    let serial = Errno::result(serial)?;
    // SAFETY: keyctl with integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, KEY_PERM) };
    Errno::result(ret).map(drop)
}
