//! A `cgroup` mount inside the container: the container's own cgroup, never the
//! host's tree. With a cgroup namespace the kernel roots a fresh mount there; without
//! one, the container's directories are bind-mounted.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use pathrs::{InodeType, Root};

use super::mounts::{bind_mount, make_target, remount, resolve};
use super::options::MountOptions;
use super::{fd_path, Context, RootfsError};
use crate::cgroups::Version;

pub fn mount_cgroups(
    root: &Root,
    dest: &Path,
    opts: &MountOptions,
    ctx: &Context<'_>,
) -> Result<(), RootfsError> {
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let dirs = &ctx.cgroup.dirs;
    if let [only] = dirs.as_slice() {
        if only.version == Version::V2 {
            let target = make_target(root, dest, false)?;
            return mount_hierarchy(root, &target, dest, &only.path, None, flags, ctx);
        }
    }
    // v1 (or hybrid): a tmpfs holding one directory per hierarchy, as on the host.
    let target = make_target(root, dest, false)?;
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        (flags & !MsFlags::MS_RDONLY) | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(|e| RootfsError::sys("mount cgroup tmpfs", dest, e))?;
    for dir in dirs {
        let name = match dir.version {
            Version::V2 => "unified".to_string(),
            Version::V1 => dir
                .controllers
                .iter()
                .map(|c| c.strip_prefix("name=").unwrap_or(c))
                .collect::<Vec<_>>()
                .join(","),
        };
        let sub = dest.join(&name);
        let sub_target = mkdir_in_fresh(root, dest, &name)?;
        let v1_opts = (dir.version == Version::V1).then(|| dir.controllers.join(","));
        mount_hierarchy(
            root,
            &sub_target,
            &sub,
            &dir.path,
            v1_opts.as_deref(),
            flags,
            ctx,
        )?;
        // Co-mounted controllers (cpu,cpuacct) are reachable by each name, as on hosts.
        if name.contains(',') {
            for c in name.split(',') {
                let _ = root.create(dest.join(c), &InodeType::Symlink(name.clone().into()));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = resolve(root, dest)?;
        remount(
            &top,
            dest,
            flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    Ok(())
}

/// Mount one hierarchy at `target`: a fresh cgroupfs inside a cgroup namespace, else a
/// bind of the container's directory.
fn mount_hierarchy(
    root: &Root,
    target: &pathrs::Handle,
    dest: &Path,
    host_dir: &Path,
    v1_controllers: Option<&str>,
    flags: MsFlags,
    ctx: &Context<'_>,
) -> Result<(), RootfsError> {
    if ctx.cgroup_ns {
        let (fstype, data) = match v1_controllers {
            Some(c) => ("cgroup", Some(c)),
            None => ("cgroup2", None),
        };
        return mount(
            Some("cgroup"),
            fd_path(target).as_str(),
            Some(fstype),
            flags,
            data,
        )
        .map_err(|e| RootfsError::sys("mount cgroup", dest, e));
    }
    let opts = MountOptions {
        flags: MsFlags::MS_BIND | MsFlags::MS_REC | flags,
        ..Default::default()
    };
    bind_mount(root, host_dir, target, dest, &opts)
}

/// A directory in the tmpfs rt just mounted: nothing else can reach it yet, so a
/// plain `mkdirat` is safe and spares libpathrs' checks.
fn mkdir_in_fresh(root: &Root, tmpfs: &Path, name: &str) -> Result<pathrs::Handle, RootfsError> {
    use std::os::fd::AsFd;

    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    let top = resolve(root, tmpfs)?;
    let dir = openat(
        top.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys("open", tmpfs, e))?;
    let path = tmpfs.join(name);
    mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
        .map_err(|e| RootfsError::sys("mkdir", &path, e))?;
    let fd = openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys("open", &path, e))?;
    Ok(pathrs::Handle::from_fd(fd))
}
