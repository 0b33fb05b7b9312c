//! Path handling that never leaves a root: every lookup is an `openat2`
//! confined to a directory fd, every change is an `*at` call on the fd of a
//! directory so resolved, and removal walks by fd without following links
//! or crossing mounts.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

use crate::error::{Context, Error, Result};

/// The components of an archive path, relative to the root: leading `/` and
/// `./` dropped (tar's and umoci's reading of absolute names), `.` skipped.
/// `..` is refused: no layer producer writes it, and it has no meaning that
/// would keep an entry inside the root.
pub fn clean_path(raw: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("a \"..\" component would leave the root"),
            c => out.push(c),
        }
    }
    if raw.contains(&0) {
        return Err("NUL byte in name");
    }
    Ok(out)
}

/// `a/b/c` from components.
pub fn join(components: &[&[u8]]) -> Vec<u8> {
    components.join(&b'/')
}

pub fn show(path: &[u8]) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}", String::from_utf8_lossy(path))
    }
}

pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn how(flags: OFlag, resolve: ResolveFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve)
}

/// Opens `rel` under `root` as the container would see it: symlinks are
/// followed but `/` and `..` stop at `root`; magic links are refused.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    openat2(
        root,
        rel,
        how(
            flags,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        ),
    )
}

/// Opens the directory `rel` under `root` (see [`open_in_root`]).
pub fn open_dir_in_root(root: BorrowedFd<'_>, rel: &[u8]) -> nix::Result<OwnedFd> {
    open_in_root(root, rel, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
}

/// Opens the child `name` of `dir` without following any symlink.
pub fn open_child(dir: BorrowedFd<'_>, name: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(
        dir,
        name,
        how(
            flags | OFlag::O_NOFOLLOW,
            ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH,
        ),
    )
}

/// Opens a directory given by a host path, refusing a final symlink.
pub fn open_dir_nofollow(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open directory {}", path.display()))
}

fn is_dir(mode: u32) -> bool {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// Removes `name` in `dir`, a whole tree if it is a directory, never following
/// a symlink and never descending into another mount. Returns whether
/// anything was there.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<bool> {
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(true),
        Err(Errno::ENOENT) => return Ok(false),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e).ctx(|| format!("remove {}", String::from_utf8_lossy(name))),
    }
    let parent_dev = fstat(dir).ctx(|| "stat directory")?.st_dev;
    let child = match open_child(dir, name, OFlag::O_DIRECTORY | OFlag::O_RDONLY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(e).ctx(|| format!("open {}", String::from_utf8_lossy(name))),
    };
    remove_children(child.as_fd(), parent_dev, &mut |_| false)?;
    nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir)
        .ctx(|| format!("remove directory {}", String::from_utf8_lossy(name)))?;
    Ok(true)
}

/// Removes every child of `dir` for which `keep` is false; `dev` is the
/// device the tree must stay on (a mount point inside is an error, not
/// something to empty).
pub fn remove_children(
    dir: BorrowedFd<'_>,
    dev: u64,
    keep: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<()> {
    let st = fstat(dir).ctx(|| "stat directory")?;
    if st.st_dev != dev {
        return Err(Error::Unsafe(
            "refusing to remove a tree that holds a mount point".into(),
        ));
    }
    let fd = nix::unistd::dup(dir).ctx(|| "dup directory")?;
    let mut d = nix::dir::Dir::from_fd(fd).ctx(|| "read directory")?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e.ctx(|| "read directory")?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." && !keep(n) {
            names.push((n.to_vec(), e.file_type()));
        }
    }
    for (name, ty) in names {
        let is_subdir = match ty {
            Some(nix::dir::Type::Directory) => true,
            Some(_) => false,
            None => fstatat(
                dir,
                name.as_slice(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|s| is_dir(s.st_mode))
            .unwrap_or(false),
        };
        if is_subdir {
            let child = open_child(dir, &name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                .ctx(|| format!("open {}", String::from_utf8_lossy(&name)))?;
            remove_children(child.as_fd(), dev, &mut |_| false)?;
            nix::unistd::unlinkat(dir, name.as_slice(), UnlinkatFlags::RemoveDir)
                .ctx(|| format!("remove directory {}", String::from_utf8_lossy(&name)))?;
        } else {
            match nix::unistd::unlinkat(dir, name.as_slice(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    return Err(e).ctx(|| format!("remove {}", String::from_utf8_lossy(&name)))
                }
            }
        }
    }
    Ok(())
}

/// Removes the directory tree at `path` (not following a symlink there),
/// refusing to cross into mounts; missing is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (parent, name) = split(path)?;
    let parent_fd = open_dir_nofollow(parent)?;
    let dev = fstat(parent_fd.as_fd()).ctx(|| "stat")?.st_dev;
    match open_child(
        parent_fd.as_fd(),
        name,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
    ) {
        Ok(fd) => {
            remove_children(fd.as_fd(), dev, &mut |_| false)
                .map_err(|e| Error::Image(format!("remove {}: {e}", path.display())))?;
            nix::unistd::unlinkat(parent_fd.as_fd(), name, UnlinkatFlags::RemoveDir)
                .ctx(|| format!("remove {}", path.display()))
        }
        Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
            nix::unistd::unlinkat(parent_fd.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                .ctx(|| format!("remove {}", path.display()))
        }
        Err(e) => Err(e).ctx(|| format!("open {}", path.display())),
    }
}

/// A path's parent directory and final name (which must be a real name).
pub fn split(path: &Path) -> Result<(&Path, &[u8])> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name.as_bytes()))
}

/// Whether `path` is the root of a mount (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> Result<bool> {
    let (parent, name) = split(path)?;
    let pfd = open_dir_nofollow(parent)?;
    let pst = fstat(pfd.as_fd()).ctx(|| format!("stat {}", parent.display()))?;
    match fstatat(pfd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(st.st_dev != pst.st_dev || st.st_ino == pst.st_ino),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e).ctx(|| format!("stat {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        let c = |s: &str| clean_path(s.as_bytes()).map(|v| join(&v));
        assert_eq!(c("./a/b/").unwrap(), b"a/b");
        assert_eq!(c("/etc//passwd").unwrap(), b"etc/passwd");
        assert_eq!(c("./").unwrap(), b"");
        assert!(c("../x").is_err());
        assert!(c("a/../../x").is_err());
        assert!(c("a/..").is_err());
    }

    #[test]
    fn remove_all_at_does_not_follow_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("d/link")).unwrap();
        std::fs::write(root.path().join("d/f"), b"y").unwrap();
        let fd = open_dir_nofollow(root.path()).unwrap();
        assert!(remove_all_at(fd.as_fd(), b"d").unwrap());
        assert!(!root.path().join("d").exists());
        assert!(outside.path().join("keep").exists());
        assert!(!remove_all_at(fd.as_fd(), b"d").unwrap());
    }
}
