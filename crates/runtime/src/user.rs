//! `process.user`: supplementary groups, gid, uid, umask.

use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UserError {
    #[error("setgroups {groups:?}: {source}")]
    Groups {
        groups: Vec<u32>,
        source: nix::Error,
    },
    #[error("setresgid {gid}: {source}")]
    Gid { gid: u32, source: nix::Error },
    #[error("setresuid {uid}: {source}")]
    Uid { uid: u32, source: nix::Error },
}

/// Switch to the configured user. `setgroups_allowed` is false in a user namespace
/// whose creator had to deny setgroups (rootless).
pub fn switch(user: &User, setgroups_allowed: bool) -> Result<(), UserError> {
    let groups: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    if setgroups_allowed {
        let g: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
        setgroups(&g).map_err(|source| UserError::Groups { groups, source })?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(|source| UserError::Gid {
        gid: user.gid(),
        source,
    })?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(|source| UserError::Uid {
        uid: user.uid(),
        source,
    })
}

/// The process umask, 0022 unless configured, as runc.
pub fn set_umask(user: &User) {
    umask(Mode::from_bits_truncate(user.umask().unwrap_or(0o022)));
}
