//! Entering the rootfs: `pivot_root` (or, with `--no-pivot`, a move and a chroot),
//! then the root's own propagation and read-only flag.

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::Spec;
use rt_sys::mount::{mount_setattr, MountAttr, MOUNT_ATTR_RDONLY};

use super::{root_propagation, RootfsError};

/// `pivot_root` needs the rootfs' parent mount to be private.
pub fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::io("read", "/proc/self/mountinfo", e))?;
    // The longest mount point that is a prefix of the rootfs holds it.
    let mut best: Option<&str> = None;
    for line in mountinfo.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        if rootfs.starts_with(mp) && best.is_none_or(|b| mp.len() > b.len()) {
            best = Some(mp);
        }
    }
    let mp = best.unwrap_or("/");
    mount(
        None::<&str>,
        mp,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("make parent mount private", mp, e))
}

/// How the init makes the rootfs its `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    PivotRoot,
    /// `--no-pivot`: move the rootfs mount over `/`, then chroot.
    Move,
    /// No mount namespace of its own: a chroot, changing nothing of the host's.
    Chroot,
}

/// Make the rootfs `/`. The old root is detached lazily and never visible again.
pub fn enter(rootfs: &Path, how: Entry, spec: &Spec) -> Result<(), RootfsError> {
    if how == Entry::Chroot {
        chroot(rootfs).map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
        return chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e));
    }
    if how == Entry::Move {
        chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("move rootfs to /", rootfs, e))?;
        chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
    } else {
        let new_root = open(
            rootfs,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootfsError::sys("open", rootfs, e))?;
        fchdir(new_root.as_fd()).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
        // Stacking the old root under the new one avoids needing a put_old directory.
        pivot_root(".", ".").map_err(|e| RootfsError::sys("pivot_root", rootfs, e))?;
        // The old root is now on top of "."; make sure unmounting it never
        // propagates to the host, then detach it.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("make old root a slave", "/", e))?;
        umount2(".", MntFlags::MNT_DETACH)
            .map_err(|e| RootfsError::sys("unmount old root", "/", e))?;
    }
    chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))?;
    if let Some(flags) = root_propagation(spec) {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .map_err(|e| RootfsError::sys("set rootfs propagation", "/", e))?;
    }
    Ok(())
}

/// `root.readonly`: the root mount only, so tmpfs and binds on top stay as configured.
pub fn finish_readonly(spec: &Spec) -> Result<(), RootfsError> {
    if !spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        return Ok(());
    }
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys("open", "/", e))?;
    let attr = MountAttr {
        set: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    match mount_setattr(root.as_fd(), false, &attr) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSYS) => mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("remount / read-only", "/", e)),
        Err(e) => Err(RootfsError::sys("make / read-only", "/", e)),
    }
}

/// Undo the mounts a container without a mount namespace left on the host: every
/// mount under its rootfs, innermost first.
pub fn unmount_host_mounts(rootfs: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| Path::new(mp).starts_with(rootfs))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = umount2(p, MntFlags::MNT_DETACH);
    }
}
