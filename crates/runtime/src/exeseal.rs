//! The host's rt binary is never reachable from a container (CVE-2019-5736).
//!
//! The container's init and `exec`'d processes are clones of rt until they exec the
//! user's program, so `/proc/PID/exe` names rt's own binary; since Linux 6.11 a
//! running binary may be opened for writing, and a process in the container could
//! then overwrite the host's rt. `create`, `run` and `exec` therefore first re-exec rt
//! from a copy that cannot be written: zero-copy, the binary seen through a detached
//! read-only overlayfs mount (the mount exists in no mount namespace); where overlayfs
//! is not allowed (no privilege), a sealed memfd copy. `start`, `state`, `kill` and
//! `delete` never enter a container and skip this.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, openat, FcntlArg, OFlag, SealFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, OVERLAYFS_SUPER_MAGIC};
use rt_sys::mount::{FsContext, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SealError {
    #[error("{op}: {source}")]
    Sys { op: String, source: nix::Error },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> SealError {
    let op = op.into();
    move |source| SealError::Sys { op, source }
}

/// Make sure this process runs from a sealed copy of rt: returns at once if it does,
/// else re-executes itself from one with the same arguments, environment and
/// descriptors (and so never returns on success).
pub fn ensure_sealed() -> Result<(), SealError> {
    let exe = File::open("/proc/self/exe").map_err(|source| SealError::Io {
        op: "open",
        path: "/proc/self/exe".into(),
        source,
    })?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let sealed = match overlay_copy() {
        Ok(fd) => fd,
        // Unprivileged, or a kernel without the new mount API: pay for a copy.
        Err(_) => memfd_copy(&exe)?,
    };
    drop(exe);
    reexec(&sealed)
}

/// Read-only overlayfs, or a memfd sealed against writes.
fn is_sealed(exe: &File) -> bool {
    if let Ok(st) = fstatfs(exe.as_fd()) {
        if st.filesystem_type() == OVERLAYFS_SUPER_MAGIC
            && nix::sys::statvfs::fstatvfs(exe.as_fd())
                .map(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                .unwrap_or(false)
        {
            return true;
        }
    }
    fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS)
        .map(|s| SealFlag::from_bits_truncate(s).contains(SealFlag::F_SEAL_WRITE))
        .unwrap_or(false)
}

/// The binary through a detached, read-only overlay of its directory (and an empty
/// detached tmpfs: overlayfs wants two lower layers without an upper one).
fn overlay_copy() -> Result<OwnedFd, SealError> {
    let path = std::fs::read_link("/proc/self/exe").map_err(|source| SealError::Io {
        op: "readlink",
        path: "/proc/self/exe".into(),
        source,
    })?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(SealError::Sys {
            op: format!("locate rt's binary ({})", path.display()),
            source: nix::errno::Errno::ENOENT,
        });
    };
    let empty = FsContext::open("tmpfs")
        .and_then(|c| c.mount(MOUNT_ATTR_RDONLY))
        .map_err(sys("mount an empty tmpfs"))?;
    let overlay = FsContext::open("overlay").map_err(sys("fsopen overlay"))?;
    let lower = format!(
        "{}:/proc/self/fd/{}",
        escape_lowerdir(dir),
        empty.as_raw_fd()
    );
    overlay
        .set("lowerdir", &lower)
        .map_err(sys(format!("overlayfs lowerdir={lower}")))?;
    let _ = overlay.set("xino", "off");
    let mnt = overlay
        .mount(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)
        .map_err(sys("mount the overlay of rt's directory"))?;
    openat(
        mnt.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(format!(
        "open {} in the overlay",
        name.to_string_lossy()
    )))
}

/// overlayfs separates lower layers with `:` and escapes with `\`.
fn escape_lowerdir(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
}

/// A memfd holding a copy of the binary, sealed so nobody can change it.
fn memfd_copy(exe: &File) -> Result<OwnedFd, SealError> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(c"rt", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(sys("memfd_create"))?;
    let mut dst = File::from(fd);
    let mut src = exe;
    std::io::copy(&mut src, &mut dst).map_err(|source| SealError::Io {
        op: "copy rt's binary to",
        path: "memfd:rt".into(),
        source,
    })?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(dst.as_fd(), FcntlArg::F_ADD_SEALS(seals)).map_err(sys("seal memfd"))?;
    Ok(dst.into())
}

/// Run the sealed binary in our place, keeping pid, descriptors and environment.
fn reexec(fd: &OwnedFd) -> Result<(), SealError> {
    let args: Vec<CString> = std::env::args_os().map(cstring).collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(kv)
        })
        .collect();
    let e = nix::unistd::execveat(
        fd.as_fd(),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(SealError::Sys {
        op: "re-execute rt from its sealed copy".into(),
        source: e,
    })
}

fn cstring(s: OsString) -> CString {
    CString::new(s.as_bytes()).unwrap_or_default()
}
