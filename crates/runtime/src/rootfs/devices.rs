//! Device nodes in the container's `/dev`: the six every container gets, the ones in
//! `linux.devices`, and the standard symlinks. In a user namespace, where `mknod` is
//! not allowed, the host's nodes are bind-mounted instead.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};
use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};

use super::mounts::{bind_mount, make_target, mkdir_all};
use super::options::MountOptions;
use super::{Context, RootfsError};

struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The container gets rt's /dev unless it bind-mounts a /dev of its own.
pub fn needs_setup(spec: &Spec) -> bool {
    !spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| {
            let bind = m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind");
            bind && m.destination() == Path::new("/dev")
        })
}

pub fn create_all(root: &Root, ctx: &Context<'_>) -> Result<(), RootfsError> {
    let mut nodes: Vec<Node> = DEFAULTS
        .iter()
        .map(|&(p, major, minor)| Node {
            path: p.into(),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    let configured = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for d in &configured {
        let node = from_config(d);
        // A configured device replaces a default one at the same path.
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    for n in &nodes {
        if ctx.user_ns {
            bind_host_node(root, n)?;
        } else {
            mknod(root, n)?;
        }
    }
    Ok(())
}

fn from_config(d: &LinuxDevice) -> Node {
    let kind = match d.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

fn mknod(root: &Root, n: &Node) -> Result<(), RootfsError> {
    let (parent, name) = split(&n.path)?;
    let dir = mkdir_all(root, parent)?;
    // Whatever the image has there (a file, a symlink planted to redirect us) goes.
    match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(RootfsError::sys("remove", &n.path, e)),
    }
    let dev = makedev(n.major, n.minor);
    // The dir handle is O_PATH; mknodat needs a real directory descriptor.
    let dirfd = reopen_dir(&dir, parent)?;
    mknodat(
        dirfd.as_fd(),
        name,
        n.kind,
        Mode::from_bits_truncate(n.mode),
        dev,
    )
    .map_err(|e| RootfsError::sys("mknod", &n.path, e))?;
    fchownat(
        dirfd.as_fd(),
        name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| RootfsError::sys("chown", &n.path, e))
}

fn bind_host_node(root: &Root, n: &Node) -> Result<(), RootfsError> {
    let target = make_target(root, &n.path, true)?;
    let opts = MountOptions::parse(&["bind"]);
    bind_mount(root, &n.path, &target, &n.path, &opts)
}

fn reopen_dir(h: &pathrs::Handle, path: &Path) -> Result<fs::File, RootfsError> {
    h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY | OpenFlags::O_CLOEXEC)
        .map_err(|e| RootfsError::resolve("open", path, e))
}

fn split(p: &Path) -> Result<(&Path, &std::ffi::OsStr), RootfsError> {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(RootfsError::Unsafe {
            path: p.to_path_buf(),
            reason: "not a device path".into(),
        }),
    }
}

/// `/dev/fd`, `/dev/std*`, `/dev/core` and `/dev/ptmx` pointing into devpts.
pub fn symlinks(root: &Root) -> Result<(), RootfsError> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        match root.create(link, &InodeType::Symlink(target.into())) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    pathrs::error::ErrorKind::OsError(Some(libc::EEXIST))
                ) => {}
            Err(e) => return Err(RootfsError::resolve("create symlink", link, e)),
        }
    }
    // /dev/ptmx must reach the container's own devpts instance.
    let dev = root
        .resolve("/dev")
        .map_err(|e| RootfsError::resolve("resolve", "/dev", e))?;
    let dirfd = reopen_dir(&dev, Path::new("/dev"))?;
    match unlinkat(dirfd.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(RootfsError::sys("remove", "/dev/ptmx", e)),
    }
    nix::unistd::symlinkat("pts/ptmx", dirfd.as_fd(), "ptmx")
        .map_err(|e| RootfsError::sys("symlink", "/dev/ptmx", e))?;
    let _ = dirfd.as_raw_fd();
    Ok(())
}
