//! Copying files into a container rootfs for COPY and ADD. The source is a
//! directory fd (the build context or another stage's rootfs) and so is the
//! destination root: each destination directory is resolved with
//! `RESOLVE_IN_ROOT`, so a symlink an earlier RUN planted is followed as the
//! container would follow it and never out of the rootfs, and each entry is
//! created with `*at` calls on its own name, never followed.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::context::{join, kind, list, stat_at};
use crate::error::{Context, Error, Result};

#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// Owner for everything copied; `None` keeps the source's.
    pub owner: Option<(u32, u32)>,
    /// Mode for everything copied; `None` keeps the source's.
    pub chmod: Option<u32>,
}

/// What to do with a source entry, by its path relative to the source root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Copy,
    Skip,
    /// Excluded itself, but an exception may bring back something inside
    /// (`.dockerignore`'s `!`): a directory is entered, anything else skipped.
    Inside,
}

pub type Filter<'a> = &'a dyn Fn(&[Vec<u8>]) -> Pick;

fn show(p: &[Vec<u8>]) -> String {
    format!("/{}", String::from_utf8_lossy(&join(p)))
}

/// Opens directory `path` in `root`, creating missing components (mode
/// 0755, owned by `owner`) one at a time, each resolved inside `root`. A
/// dangling symlink on the way is followed as the container would follow
/// it (its target created), never out of `root`.
pub fn mkdir_p(root: BorrowedFd<'_>, path: &[Vec<u8>], owner: (u32, u32)) -> Result<OwnedFd> {
    let mut todo: Vec<Vec<u8>> = path.iter().rev().cloned().collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut fd = rt_image::fs::open_dir_in_root(root, b".").ctx(|| "open rootfs")?;
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                fd = rt_image::fs::open_dir_in_root(root, &join(&done))
                    .ctx(|| format!("open {}", show(&done)))?;
                continue;
            }
            _ => {}
        }
        let mut next = done.clone();
        next.push(c.clone());
        match rt_image::fs::open_dir_in_root(root, &join(&next)) {
            Ok(d) => {
                fd = d;
                done = next;
            }
            Err(Errno::ENOENT) => {
                match mkdirat(fd.as_fd(), c.as_slice(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        fchownat(
                            fd.as_fd(),
                            c.as_slice(),
                            Some(Uid::from_raw(owner.0)),
                            Some(Gid::from_raw(owner.1)),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .ctx(|| format!("chown {}", show(&next)))?;
                    }
                    Err(Errno::EEXIST) => {
                        // A dangling symlink: go where it points, inside root.
                        let target = nix::fcntl::readlinkat(fd.as_fd(), c.as_slice())
                            .ctx(|| format!("readlink {}", show(&next)))?;
                        hops += 1;
                        if hops > 40 {
                            return Err(Error::Usage(format!(
                                "{}: too many levels of symbolic links",
                                show(&next)
                            )));
                        }
                        let t = target.as_os_str().as_bytes();
                        if t.starts_with(b"/") {
                            done.clear();
                            fd =
                                rt_image::fs::open_dir_in_root(root, b".").ctx(|| "open rootfs")?;
                        }
                        for part in t.split(|&b| b == b'/').rev() {
                            todo.push(part.to_vec());
                        }
                        continue;
                    }
                    Err(e) => return Err(e).ctx(|| format!("mkdir {}", show(&next))),
                }
                fd = rt_image::fs::open_dir_in_root(root, &join(&next))
                    .ctx(|| format!("open {}", show(&next)))?;
                done = next;
            }
            Err(Errno::ENOTDIR) => {
                return Err(Error::Usage(format!(
                    "{}: not a directory in the container",
                    show(&next)
                )))
            }
            Err(e) => return Err(e).ctx(|| format!("open {}", show(&next))),
        }
    }
    Ok(fd)
}

/// Whether `name` in `dir` is a directory (not following a symlink).
pub fn is_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    stat_at(dir, name).is_ok_and(|s| kind(&s) == SFlag::S_IFDIR)
}

/// Removes a non-directory `name` in `dir` so something new can take it;
/// a directory there is an error unless `dir_ok`.
fn make_room(dir: BorrowedFd<'_>, name: &[u8], dir_ok: bool, shown: &str) -> Result<bool> {
    match stat_at(dir, name) {
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e).ctx(|| format!("stat {shown}")),
        Ok(st) if kind(&st) == SFlag::S_IFDIR => {
            if dir_ok {
                Ok(true)
            } else {
                Err(Error::Usage(format!(
                    "{shown}: cannot replace a directory with a file"
                )))
            }
        }
        Ok(_) => {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).ctx(|| format!("remove {shown}"))?;
            Ok(false)
        }
    }
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

/// Copies `name` of `src_dir` (at `rel` under the source root, for the
/// filter) to `dst_name` in `dst_dir`.
#[allow(clippy::too_many_arguments)]
pub fn copy_entry(
    src_dir: BorrowedFd<'_>,
    name: &[u8],
    rel: &[Vec<u8>],
    dst_dir: BorrowedFd<'_>,
    dst_name: &[u8],
    dst_shown: &str,
    opts: &CopyOptions,
    filter: Filter<'_>,
) -> Result<()> {
    let st = stat_at(src_dir, name).ctx(|| format!("stat {}", show(rel)))?;
    let k = kind(&st);
    let (uid, gid) = opts.owner.unwrap_or((st.st_uid, st.st_gid));
    let mode = opts.chmod.unwrap_or(st.st_mode & 0o7777);
    let (at, mt) = times(&st);
    if k == SFlag::S_IFDIR {
        let src = if name.is_empty() {
            nix::unistd::dup(src_dir).ctx(|| "dup")?
        } else {
            rt_image::fs::open_child(src_dir, name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                .ctx(|| format!("open {}", show(rel)))?
        };
        let dst = if dst_name.is_empty() {
            nix::unistd::dup(dst_dir).ctx(|| "dup")?
        } else {
            if !make_room(dst_dir, dst_name, true, dst_shown)? {
                mkdirat(dst_dir, dst_name, Mode::from_bits_truncate(0o700))
                    .ctx(|| format!("mkdir {dst_shown}"))?;
            }
            rt_image::fs::open_child(dst_dir, dst_name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                .ctx(|| format!("open {dst_shown}"))?
        };
        copy_children(src.as_fd(), rel, dst.as_fd(), dst_shown, opts, filter)?;
        if !dst_name.is_empty() {
            fchown(
                dst.as_fd(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
            )
            .ctx(|| format!("chown {dst_shown}"))?;
            fchmod(dst.as_fd(), Mode::from_bits_truncate(mode))
                .ctx(|| format!("chmod {dst_shown}"))?;
            futimens(dst.as_fd(), &at, &mt).ctx(|| format!("set times of {dst_shown}"))?;
        }
        return Ok(());
    }
    make_room(dst_dir, dst_name, false, dst_shown)?;
    if k == SFlag::S_IFREG {
        let src = rt_image::fs::open_child(src_dir, name, OFlag::O_RDONLY)
            .ctx(|| format!("open {}", show(rel)))?;
        let dst = nix::fcntl::openat(
            dst_dir,
            dst_name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .ctx(|| format!("create {dst_shown}"))?;
        let mut from = std::fs::File::from(src);
        let mut to = std::fs::File::from(dst);
        io::copy(&mut from, &mut to).ctx(|| format!("copy {} to {dst_shown}", show(rel)))?;
        fchown(
            to.as_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )
        .ctx(|| format!("chown {dst_shown}"))?;
        fchmod(to.as_fd(), Mode::from_bits_truncate(mode)).ctx(|| format!("chmod {dst_shown}"))?;
        futimens(to.as_fd(), &at, &mt).ctx(|| format!("set times of {dst_shown}"))?;
        return Ok(());
    }
    if k == SFlag::S_IFLNK {
        let target =
            nix::fcntl::readlinkat(src_dir, name).ctx(|| format!("readlink {}", show(rel)))?;
        symlinkat(target.as_os_str(), dst_dir, dst_name).ctx(|| format!("symlink {dst_shown}"))?;
    } else if k == SFlag::S_IFIFO || k == SFlag::S_IFCHR || k == SFlag::S_IFBLK {
        mknodat(
            dst_dir,
            dst_name,
            k,
            Mode::from_bits_truncate(mode),
            st.st_rdev,
        )
        .ctx(|| format!("mknod {dst_shown}"))?;
    } else {
        // Sockets have no place in an image.
        return Ok(());
    }
    fchownat(
        dst_dir,
        dst_name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {dst_shown}"))?;
    if k != SFlag::S_IFLNK {
        fchmodat(
            dst_dir,
            dst_name,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::FollowSymlink,
        )
        .ctx(|| format!("chmod {dst_shown}"))?;
    }
    utimensat(dst_dir, dst_name, &at, &mt, UtimensatFlags::NoFollowSymlink)
        .ctx(|| format!("set times of {dst_shown}"))
}

/// Copies what is inside `src` into `dst`.
pub fn copy_children(
    src: BorrowedFd<'_>,
    rel: &[Vec<u8>],
    dst: BorrowedFd<'_>,
    dst_shown: &str,
    opts: &CopyOptions,
    filter: Filter<'_>,
) -> Result<()> {
    for n in list(src)? {
        let mut r = rel.to_vec();
        r.push(n.clone());
        match filter(&r) {
            Pick::Copy => {}
            Pick::Skip => continue,
            Pick::Inside if is_dir_at(src, &n) => {}
            Pick::Inside => continue,
        }
        let shown = format!(
            "{}/{}",
            dst_shown.trim_end_matches('/'),
            String::from_utf8_lossy(&n)
        );
        copy_entry(src, &n, &r, dst, &n, &shown, opts, filter)?;
    }
    Ok(())
}

/// Writes a new file `name` in `dir` (a here-document's content).
pub fn write_file(
    dir: BorrowedFd<'_>,
    name: &[u8],
    shown: &str,
    data: &[u8],
    mode: u32,
    owner: (u32, u32),
) -> Result<()> {
    make_room(dir, name, false, shown)?;
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .ctx(|| format!("create {shown}"))?;
    let mut f = std::fs::File::from(fd);
    io::Write::write_all(&mut f, data).ctx(|| format!("write {shown}"))?;
    fchown(
        f.as_fd(),
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    )
    .ctx(|| format!("chown {shown}"))?;
    fchmod(f.as_fd(), Mode::from_bits_truncate(mode)).ctx(|| format!("chmod {shown}"))
}

pub fn name_of(p: &[Vec<u8>]) -> &[u8] {
    p.last().map(Vec::as_slice).unwrap_or(b"")
}

pub fn os(b: &[u8]) -> &std::ffi::OsStr {
    std::ffi::OsStr::from_bytes(b)
}
