//! The parts of the new mount API that nix does not wrap.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use crate::Result;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x100000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

/// Attributes to set and clear on a mount (tree), with an optional user namespace
/// for an id-mapped mount.
#[derive(Debug, Default, Clone, Copy)]
pub struct MountAttr<'a> {
    pub set: u64,
    pub clear: u64,
    pub propagation: u64,
    pub userns: Option<BorrowedFd<'a>>,
}

#[repr(C)]
struct RawMountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` on the mount at `fd` itself (`AT_EMPTY_PATH`), recursively if asked.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr<'_>) -> Result<()> {
    let raw = RawMountAttr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: attr.propagation,
        userns_fd: attr.userns.map(|f| f.as_raw_fd() as u64).unwrap_or(0),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let empty = CString::default();
    // SAFETY: valid descriptor, a NUL-terminated empty path and a mount_attr of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &raw as *const RawMountAttr,
            std::mem::size_of::<RawMountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

pub const OPEN_TREE_CLONE: u32 = 1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// `open_tree(2)`: a detached copy of the mount (tree, with `recursive`) at `path`.
pub fn open_tree(path: &std::path::Path, recursive: bool) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: a NUL-terminated path and integer flags; a returned descriptor is new.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just created this descriptor for us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// `move_mount(2)` of a detached tree onto the object `target` refers to.
pub fn move_mount_onto(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<()> {
    let empty = CString::default();
    // SAFETY: two valid descriptors with empty paths, as the EMPTY_PATH flags require.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// A filesystem context being configured (`fsopen(2)`), closed on drop.
pub struct FsContext(std::os::fd::OwnedFd);

const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

impl FsContext {
    /// `fsopen(2)` of filesystem type `fstype`.
    pub fn open(fstype: &str) -> Result<FsContext> {
        use std::os::fd::FromRawFd;
        let name = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
        // SAFETY: a NUL-terminated name and a flag; a returned descriptor is new.
        let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
        let fd = Errno::result(fd)?;
        // SAFETY: the kernel just created this descriptor for us.
        Ok(FsContext(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd as i32)
        }))
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (
            CString::new(key).map_err(|_| Errno::EINVAL)?,
            CString::new(value).map_err(|_| Errno::EINVAL)?,
        );
        // SAFETY: a valid context descriptor and two NUL-terminated strings.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        Errno::result(ret).map(drop)
    }

    /// Create the superblock and return a detached mount of it (`fsmount(2)`),
    /// attached nowhere, with `attrs` (`MOUNT_ATTR_*`).
    pub fn mount(&self, attrs: u64) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: a valid context descriptor; null key and value as CMD_CREATE requires.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        Errno::result(ret)?;
        // SAFETY: a valid context descriptor and integer flags; a returned descriptor is new.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.0.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                attrs,
            )
        };
        let fd = Errno::result(fd)?;
        // SAFETY: the kernel just created this descriptor for us.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
    }
}
