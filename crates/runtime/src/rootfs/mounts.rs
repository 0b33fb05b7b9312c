//! One entry of `mounts`: make its destination inside the rootfs, mount it on the
//! resolved descriptor, then apply remount flags, propagation and recursive attributes.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::Mount;
use pathrs::flags::OpenFlags;
use pathrs::{Handle, Root};
use rt_sys::mount::{mount_setattr, MountAttr};

use super::error::is_not_found;
use super::options::MountOptions;
use super::{cgroupfs, fd_path, Context, RootfsError};

pub fn mount_one(
    root: &Root,
    m: &Mount,
    idmap: Option<BorrowedFd<'_>>,
    ctx: &Context<'_>,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.is_bind() || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return cgroupfs::mount_cgroups(root, dest, &opts, ctx);
    }
    if matches!(typ, "proc" | "sysfs") {
        refuse_symlink(root, dest)?;
    }
    let source = m.source().as_deref();
    if bind {
        let source = source.ok_or_else(|| RootfsError::Unsafe {
            path: dest.clone(),
            reason: "bind mount without a source".into(),
        })?;
        let target = make_target(root, dest, !is_dir(source))?;
        match idmap {
            Some(userns) => idmapped_bind(root, source, &target, dest, &opts, userns),
            None => bind_mount(root, source, &target, dest, &opts),
        }
    } else {
        let target = make_target(root, dest, false)?;
        let src = source
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(typ));
        let under = opts
            .tmpcopyup
            .then(|| target.try_clone())
            .transpose()
            .ok()
            .flatten();
        let mut data = opts.data_string();
        if !matches!(typ, "proc" | "sysfs") {
            // linux.mountLabel, for the filesystems rt creates (SELinux hosts only).
            if let Some(ctxopt) = crate::lsm::mount_label_option(ctx.spec) {
                data = Some(match data {
                    Some(d) => format!("{d},{ctxopt}"),
                    None => ctxopt,
                });
            }
        }
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        match mount(
            Some(&src),
            fd_path(&target).as_str(),
            Some(typ),
            flags,
            data.as_deref(),
        ) {
            Ok(()) => {}
            // A user namespace may not mount sysfs for a network namespace it does not
            // own, nor mqueue for an IPC namespace: bind the host's, as runc does.
            Err(Errno::EPERM) if ctx.user_ns && matches!(typ, "sysfs" | "mqueue") => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                let mut o = opts.clone();
                o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
                return bind_mount(root, Path::new(host), &target, dest, &o);
            }
            // A devpts `gid=5` naming a group the user namespace does not map: the
            // default group then, as rootless runc configs do.
            Err(Errno::EINVAL)
                if ctx.user_ns
                    && typ == "devpts"
                    && data.as_deref().is_some_and(|d| d.contains("gid=")) =>
            {
                let data: Vec<&str> = opts
                    .data
                    .iter()
                    .map(String::as_str)
                    .filter(|o| !o.starts_with("gid="))
                    .collect();
                let data = (!data.is_empty()).then(|| data.join(","));
                mount(
                    Some(&src),
                    fd_path(&target).as_str(),
                    Some(typ),
                    flags,
                    data.as_deref(),
                )
                .map_err(|e| RootfsError::sys("mount", dest, e))?;
            }
            Err(e) => return Err(RootfsError::sys("mount", dest, e)),
        }
        let mounted = resolve(root, dest)?;
        if let Some(under) = under {
            copy_up(&under, &mounted, dest)?;
        }
        finish(&mounted, dest, &opts)
    }
}

/// A bind mount, then the flags a bind ignores applied by a remount.
pub(super) fn bind_mount(
    root: &Root,
    source: &Path,
    target: &Handle,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let rec = if opts.is_recursive_bind() {
        MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    mount(
        Some(source),
        fd_path(target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("bind mount", dest, e))?;
    let mounted = resolve(root, dest)?;
    let flags = opts.remount_flags();
    if !flags.is_empty() {
        remount(&mounted, dest, flags)?;
    }
    finish(&mounted, dest, opts)
}

/// An id-mapped bind mount: a detached copy of the source, given the mapping's user
/// namespace, moved onto the target; then the usual flags.
fn idmapped_bind(
    root: &Root,
    source: &Path,
    target: &Handle,
    dest: &Path,
    opts: &MountOptions,
    userns: BorrowedFd<'_>,
) -> Result<(), RootfsError> {
    use super::options::Idmap;
    let tree = rt_sys::mount::open_tree(source, opts.is_recursive_bind())
        .map_err(|e| RootfsError::sys("open_tree", source, e))?;
    let attr = MountAttr {
        set: rt_sys::mount::MOUNT_ATTR_IDMAP,
        userns: Some(userns),
        ..Default::default()
    };
    let recursive = opts.idmap == Some(Idmap::Recursive);
    mount_setattr(tree.as_fd(), recursive, &attr)
        .map_err(|e| RootfsError::sys("id-map mount", dest, e))?;
    rt_sys::mount::move_mount_onto(tree.as_fd(), target.as_fd())
        .map_err(|e| RootfsError::sys("move mount", dest, e))?;
    let mounted = resolve(root, dest)?;
    let flags = opts.remount_flags();
    if !flags.is_empty() {
        remount(&mounted, dest, flags)?;
    }
    finish(&mounted, dest, opts)
}

/// Remount a bind mount with `flags`, keeping the flags the kernel locks in a user
/// namespace (nosuid, nodev, noexec, atime) when it refuses to drop them.
pub(super) fn remount(mounted: &Handle, dest: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    let path = fd_path(mounted);
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        path.as_str(),
        None::<&str>,
        base | flags,
        None::<&str>,
    ) {
        Err(Errno::EPERM) => {
            let locked = locked_flags(&path);
            mount(
                None::<&str>,
                path.as_str(),
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .map_err(|e| RootfsError::sys("remount", dest, e))
        }
        r => r.map_err(|e| RootfsError::sys("remount", dest, e)),
    }
}

fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Propagation changes and recursive attributes, on the new mount.
fn finish(mounted: &Handle, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(mounted).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("set propagation", dest, e))?;
    }
    if opts.rec_set != 0 || opts.rec_clear != 0 {
        let attr = MountAttr {
            set: opts.rec_set,
            clear: opts.rec_clear,
            ..Default::default()
        };
        mount_setattr(mounted.as_fd(), true, &attr)
            .map_err(|e| RootfsError::sys("set mount attributes", dest, e))?;
    }
    Ok(())
}

pub(super) fn resolve(root: &Root, path: &Path) -> Result<Handle, RootfsError> {
    root.resolve(path)
        .map_err(|e| RootfsError::resolve("resolve", path, e))
}

/// Create the mount point inside the rootfs (a file for a file bind mount).
pub(super) fn make_target(root: &Root, dest: &Path, file: bool) -> Result<Handle, RootfsError> {
    if !file {
        return mkdir_all(root, dest);
    }
    if let Some(h) = lookup(root, dest)? {
        return Ok(h);
    }
    if let Some(parent) = dest.parent() {
        mkdir_all(root, parent)?;
    }
    match root.create_file(
        dest,
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        // runc's mode for a mount point it makes (buildah leaves these in images).
        &fs::Permissions::from_mode(0o755),
    ) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                pathrs::error::ErrorKind::OsError(Some(libc::EEXIST))
            ) => {}
        Err(e) => return Err(RootfsError::resolve("create mount point", dest, e)),
    }
    resolve(root, dest)
}

/// Find `path` inside the rootfs, `None` when it does not exist. The kernel's
/// `RESOLVE_IN_ROOT` does the whole walk in one syscall; libpathrs (which also
/// covers kernels without openat2) is asked only if the kernel cannot.
pub(super) fn lookup(root: &Root, path: &Path) -> Result<Option<Handle>, RootfsError> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.as_fd(), path, how) {
        Ok(fd) => Ok(Some(Handle::from_fd(fd))),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ENOSYS) | Err(Errno::E2BIG) | Err(Errno::EAGAIN) => match root.resolve(path) {
            Ok(h) => Ok(Some(h)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RootfsError::resolve("resolve", path, e)),
        },
        Err(e) => Err(RootfsError::sys("resolve", path, e)),
    }
}

/// A directory inside the rootfs, made (with parents, mode 0755) when missing. Most
/// already exist: one `openat2` finds them, and libpathrs' careful creation, which
/// costs dozens of syscalls, runs only when something must be made.
pub(super) fn mkdir_all(root: &Root, dir: &Path) -> Result<Handle, RootfsError> {
    if let Some(h) = lookup(root, dir)? {
        let st = nix::sys::stat::fstat(h.as_fd()).map_err(|e| RootfsError::sys("stat", dir, e))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Ok(h);
        }
    }
    root.mkdir_all(dir, &fs::Permissions::from_mode(0o755))
        .map_err(|e| RootfsError::resolve("create directory", dir, e))
}

/// proc and sysfs must not be redirected by an image whose /proc is a symlink.
fn refuse_symlink(root: &Root, dest: &Path) -> Result<(), RootfsError> {
    match root.resolve_nofollow(dest) {
        Ok(h) => {
            // An O_PATH handle to a symlink reports S_IFLNK through fstat.
            let st =
                nix::sys::stat::fstat(h.as_fd()).map_err(|e| RootfsError::sys("stat", dest, e))?;
            if (st.st_mode & libc::S_IFMT) == libc::S_IFLNK {
                return Err(RootfsError::Unsafe {
                    path: dest.to_path_buf(),
                    reason: "mount destination is a symlink".into(),
                });
            }
            Ok(())
        }
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(RootfsError::resolve("resolve", dest, e)),
    }
}

fn is_dir(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_dir()).unwrap_or(true)
}

/// `tmpcopyup`: fill the new tmpfs with what the image had under it. Every entry
/// is opened from its parent's descriptor and never followed: a process swapping
/// image entries for symlinks meanwhile (another container sharing the volume)
/// cannot make us copy, chmod or chown anything outside the image.
fn copy_up(under: &Handle, mounted: &Handle, dest: &Path) -> Result<(), RootfsError> {
    let err = |e: nix::Error| RootfsError::sys("copy up", dest, e);
    let from = open_dir_at(under.as_fd(), ".").map_err(err)?;
    let to = open_dir_at(mounted.as_fd(), ".").map_err(err)?;
    copy_dir(&from, &to).map_err(err)
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &(impl nix::NixPath + ?Sized)) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir, name, flags, Mode::empty())
}

fn same_owner(st: &nix::sys::stat::FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn copy_dir(from: &OwnedFd, to: &OwnedFd) -> nix::Result<()> {
    let st = fstat(from)?;
    fchmod(to, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    let (uid, gid) = same_owner(&st);
    // Owners the container's user namespace cannot map stay root's, as with runc.
    let _ = fchown(to, uid, gid);
    let mut entries = nix::dir::Dir::from_fd(open_dir_at(from.as_fd(), ".")?)?;
    for entry in entries.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let (uid, gid) = same_owner(&st);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                // Opened before anything is made: a directory swapped for a
                // symlink since the fstatat fails here (ELOOP).
                let src = open_dir_at(from.as_fd(), name)?;
                mkdirat(to, name, Mode::from_bits_truncate(0o700))?;
                copy_dir(&src, &open_dir_at(to.as_fd(), name)?)?;
            }
            libc::S_IFLNK => {
                let target = readlinkat(from, name)?;
                symlinkat(target.as_os_str(), to, name)?;
                let _ = fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW);
            }
            libc::S_IFREG => {
                let src = nix::fcntl::openat(
                    from,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let sst = fstat(&src)?;
                if sst.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Err(Errno::ESTALE);
                }
                let dst = nix::fcntl::openat(
                    to,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                let (mut r, mut w) = (fs::File::from(src), fs::File::from(dst));
                std::io::copy(&mut r, &mut w)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                fchmod(&w, Mode::from_bits_truncate(sst.st_mode & 0o7777))?;
                let (uid, gid) = same_owner(&sst);
                let _ = fchown(&w, uid, gid);
            }
            // Devices, fifos and sockets are not copied (as runc).
            _ => {}
        }
    }
    Ok(())
}
