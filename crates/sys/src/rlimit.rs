//! `prlimit(2)` for any resource number (nix's enum lacks a few of them).

use nix::errno::Errno;

use crate::Result;

/// Set the soft and hard limit of `resource` for this process.
pub fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: pid 0 is this process; `new` lives across the call; old is not requested.
    let ret = unsafe { libc::prlimit64(0, resource, &new, std::ptr::null_mut()) };
    Errno::result(ret).map(drop)
}
