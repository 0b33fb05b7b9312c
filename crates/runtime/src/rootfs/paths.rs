//! `maskedPaths` (hidden behind /dev/null or an empty read-only tmpfs) and
//! `readonlyPaths` (bind-mounted read-only onto themselves).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use pathrs::Root;
use rt_sys::mount::{mount_setattr, MountAttr, MOUNT_ATTR_RDONLY};

use super::mounts::{lookup, remount, resolve};
use super::{fd_path, RootfsError};

pub fn mask(root: &Root, path: &Path, dev_null: BorrowedFd<'_>) -> Result<(), RootfsError> {
    let Some(target) = lookup(root, path)? else {
        return Ok(());
    };
    let st =
        nix::sys::stat::fstat(target.as_fd()).map_err(|e| RootfsError::sys("stat", path, e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount(
            Some("tmpfs"),
            fd_path(&target).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
    } else {
        // Our own descriptor of the real /dev/null: an image cannot swap it.
        mount(
            Some(fd_path(&dev_null).as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
    .map_err(|e| RootfsError::sys("mask", path, e))
}

pub fn make_readonly(root: &Root, path: &Path) -> Result<(), RootfsError> {
    let Some(target) = lookup(root, path)? else {
        return Ok(());
    };
    let p = fd_path(&target);
    mount(
        Some(p.as_str()),
        p.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("bind mount read-only path", path, e))?;
    let mounted = resolve(root, path)?;
    let attr = MountAttr {
        set: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    match mount_setattr(mounted.as_fd(), true, &attr) {
        Ok(()) => Ok(()),
        // Kernels before 5.12: the top mount only, as runc does there.
        Err(nix::errno::Errno::ENOSYS) => {
            remount(&mounted, path, MsFlags::MS_RDONLY | MsFlags::MS_REC)
        }
        Err(e) => Err(RootfsError::sys("make read-only", path, e)),
    }
}
