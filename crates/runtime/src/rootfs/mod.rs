//! The container's root filesystem, built in the container's mount namespace before
//! `pivot_root`. Every path inside the rootfs is resolved with libpathrs, so no
//! symlink in the image can point an operation outside of it; mounts are made on the
//! resolved descriptors (`/proc/thread-self/fd/N`), never on re-walked paths.

mod cgroupfs;
mod devices;
mod error;
mod mounts;
pub mod options;
mod paths;
mod pivot;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use pathrs::Root;

use crate::cgroups::CgroupRecord;
pub use error::RootfsError;
pub use pivot::{enter, finish_readonly, unmount_host_mounts, Entry};

/// What the rootfs steps need to know besides the config.
pub struct Context<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    pub user_ns: bool,
    pub cgroup_ns: bool,
    /// The container has a mount namespace of its own (see `namespaces::Plan`).
    pub mount_ns: bool,
    pub cgroup: &'a CgroupRecord,
    /// The host's `/dev/null`, checked to be the real 1:3 device.
    pub dev_null: BorrowedFd<'a>,
    /// For each entry of `mounts`, the user namespace of its id mapping, if any.
    pub idmaps: &'a [Option<OwnedFd>],
}

/// `/proc/thread-self/fd/N`: the kernel follows it to exactly the object we hold.
pub(crate) fn fd_path(fd: &impl AsFd) -> String {
    format!("/proc/thread-self/fd/{}", fd.as_fd().as_raw_fd())
}

/// Make the rootfs a mount of its own, then mount everything in `mounts`, then the
/// devices. Returns the root handle for the steps that follow (hooks, masking).
pub fn prepare(ctx: &Context<'_>) -> Result<Root, RootfsError> {
    // In the host's own mount namespace nothing of the host may change: only the
    // configured mounts are made, under the rootfs.
    if ctx.mount_ns {
        set_root_propagation(ctx.spec)?;
        pivot::make_parent_private(ctx.rootfs)?;
        mount(
            Some(ctx.rootfs),
            ctx.rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("bind mount rootfs", ctx.rootfs, e))?;
    }
    // Opened after the bind, so every mount lands on the container's view.
    let root =
        Root::open(ctx.rootfs).map_err(|e| RootfsError::resolve("open rootfs", ctx.rootfs, e))?;
    let setup_dev = devices::needs_setup(ctx.spec);
    for (i, m) in ctx
        .spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let idmap = ctx
            .idmaps
            .get(i)
            .and_then(Option::as_ref)
            .map(|fd| fd.as_fd());
        mounts::mount_one(&root, m, idmap, ctx)?;
    }
    if setup_dev {
        devices::create_all(&root, ctx)?;
        devices::symlinks(&root)?;
    }
    Ok(root)
}

/// `maskedPaths` and `readonlyPaths`, still through the root handle.
pub fn protect_paths(root: &Root, ctx: &Context<'_>) -> Result<(), RootfsError> {
    let linux = ctx.spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        paths::mask(root, Path::new(p), ctx.dev_null)?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        paths::make_readonly(root, Path::new(p))?;
    }
    Ok(())
}

/// The whole tree is a slave of the host by default, so nothing the container mounts
/// reaches the host, while host mounts still reach the container.
fn set_root_propagation(spec: &Spec) -> Result<(), RootfsError> {
    let flags = root_propagation(spec).unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|e| RootfsError::sys("set propagation of /", Path::new("/"), e))
}

pub(crate) fn root_propagation(spec: &Spec) -> Option<MsFlags> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(options::parse_propagation)
}

/// Whether a mount asks to be id-mapped (`idmap`/`ridmap`, or mappings given).
pub fn wants_idmap(m: &oci_spec::runtime::Mount) -> bool {
    let opts = options::MountOptions::parse(m.options().as_deref().unwrap_or_default());
    opts.idmap.is_some() || m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
}
