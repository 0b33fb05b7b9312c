//! UTS names nix leaves out.

use nix::errno::Errno;

use crate::Result;

/// `setdomainname(2)`.
pub fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: pointer and length describe a live byte slice.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}
