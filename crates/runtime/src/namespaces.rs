//! Namespaces: which ones `clone3` creates, which ones are joined by path, and the
//! user namespace's id mappings (written by the parent).
//!
//! Joined namespaces (other than user) are entered by the parent just around the
//! `clone3`, so the child is born in them: the kernel allows this for every type and
//! it keeps the child free of the privilege questions a new user namespace raises.
//! The parent returns to its own namespaces right after.

use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NamespaceError {
    #[error("open {kind} namespace {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("return to the runtime's {kind} namespace: {source}")]
    Restore {
        kind: &'static str,
        source: nix::Error,
    },
    #[error("create {kind} namespace: {source}")]
    Create {
        kind: &'static str,
        source: nix::Error,
    },
    #[error("write {path}: {source}")]
    Map {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The kernel's name for a namespace type (as in /proc/PID/ns).
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened before anything else happens.
#[derive(Debug)]
pub struct Joined {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// How the container's namespaces come to be.
#[derive(Debug)]
pub struct Plan {
    /// Created by `clone3` itself.
    pub clone_flags: CloneFlags,
    /// Created by the child after it is in its cgroup (cgroup namespace) or after it
    /// joined a user namespace (everything it then owns).
    pub unshare_flags: CloneFlags,
    /// Created by the parent for its children (time namespace, so offsets can be set).
    pub new_time: bool,
    /// Entered by the parent around the clone.
    pub joined: Vec<Joined>,
    /// A user namespace joined by the child itself, first of all.
    pub joined_user: Option<Joined>,
    pub new_user: bool,
    pub new_pid: bool,
    /// False when the container shares the runtime's mount namespace: its mounts are
    /// then made on the host, and it enters its rootfs with chroot.
    pub mount_ns: bool,
    /// A child that enters the namespaces and forks the init is needed (a joined
    /// user namespace with a new pid or time namespace): the kernel's demand.
    pub intermediate: bool,
}

impl Plan {
    pub fn new(spec: &Spec) -> Result<Self, NamespaceError> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            unshare_flags: CloneFlags::empty(),
            new_time: false,
            joined: vec![],
            joined_user: None,
            new_user: false,
            new_pid: false,
            mount_ns: false,
            intermediate: false,
        };
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        plan.mount_ns = namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Mount);
        for ns in &namespaces {
            let kind = ns.typ();
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let fd = open(
                        path.as_path(),
                        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|source| NamespaceError::Open {
                        kind: proc_name(kind),
                        path: path.clone(),
                        source,
                    })?;
                    let j = Joined {
                        kind,
                        path: path.clone(),
                        fd,
                    };
                    if kind == LinuxNamespaceType::User {
                        plan.joined_user = Some(j);
                    } else {
                        plan.joined.push(j);
                    }
                }
                _ => match kind {
                    LinuxNamespaceType::Cgroup => plan.unshare_flags |= CloneFlags::CLONE_NEWCGROUP,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    LinuxNamespaceType::User => {
                        plan.new_user = true;
                        plan.clone_flags |= CloneFlags::CLONE_NEWUSER;
                    }
                    LinuxNamespaceType::Pid => {
                        plan.new_pid = true;
                        plan.clone_flags |= CloneFlags::CLONE_NEWPID;
                    }
                    other => plan.clone_flags |= clone_flag(other),
                },
            }
        }
        if plan.joined_user.is_some() {
            // Namespaces the container creates must belong to the user namespace it
            // joins, so the child makes them after entering it. New pid and time
            // namespaces only take effect for children: then the child forks the init.
            plan.unshare_flags |= plan.clone_flags;
            plan.clone_flags = CloneFlags::empty();
            if plan.new_time {
                plan.unshare_flags |= clone_flag(LinuxNamespaceType::Time);
            }
            plan.intermediate = plan.new_pid || plan.new_time;
        }
        Ok(plan)
    }

    /// Whether the container runs in a user namespace, created or joined.
    pub fn has_user(&self) -> bool {
        self.new_user || self.joined_user.is_some()
    }

    /// Enter the joined namespaces (and a new time namespace) for the coming clone.
    /// The guard brings the parent back to its own namespaces.
    pub fn enter_for_clone(&self, spec: &Spec) -> Result<ParentGuard, NamespaceError> {
        let mut guard = ParentGuard::default();
        let time_here = self.new_time && self.joined_user.is_none();
        if self.joined.is_empty() && !time_here {
            return Ok(guard);
        }
        guard.cwd = open(
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok();
        for j in &self.joined {
            let own = own_ns(j.kind)?;
            setns(j.fd.as_fd(), clone_flag(j.kind)).map_err(|source| NamespaceError::Join {
                kind: proc_name(j.kind),
                path: j.path.clone(),
                source,
            })?;
            guard.saved.push((j.kind, own));
        }
        if time_here {
            let own = own_ns(LinuxNamespaceType::Time)?;
            unshare(clone_flag(LinuxNamespaceType::Time)).map_err(|source| {
                NamespaceError::Create {
                    kind: "time",
                    source,
                }
            })?;
            guard.saved.push((LinuxNamespaceType::Time, own));
            write_time_offsets(spec)?;
        }
        Ok(guard)
    }
}

/// The parent's own namespaces, re-entered on drop (or explicitly, to see errors).
#[derive(Debug, Default)]
pub struct ParentGuard {
    saved: Vec<(LinuxNamespaceType, OwnedFd)>,
    cwd: Option<OwnedFd>,
}

impl ParentGuard {
    /// Stay in the namespaces entered (the caller cannot come back: rootless, in
    /// the container's user namespace); only the working directory is restored.
    pub fn stay(&mut self) {
        self.saved.clear();
        let _ = self.restore();
    }

    pub fn restore(&mut self) -> Result<(), NamespaceError> {
        while let Some((kind, fd)) = self.saved.pop() {
            setns(fd.as_fd(), clone_flag(kind)).map_err(|source| NamespaceError::Restore {
                kind: proc_name(kind),
                source,
            })?;
        }
        if let Some(cwd) = self.cwd.take() {
            let _ = nix::unistd::fchdir(cwd.as_fd());
        }
        Ok(())
    }
}

impl Drop for ParentGuard {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

fn own_ns(kind: LinuxNamespaceType) -> Result<OwnedFd, NamespaceError> {
    let path = format!("/proc/thread-self/ns/{}", proc_name(kind));
    open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| NamespaceError::Open {
        kind: proc_name(kind),
        path: path.into(),
        source,
    })
}

/// `linux.timeOffsets` go into the new time namespace before any process enters it.
pub fn write_time_offsets(spec: &Spec) -> Result<(), NamespaceError> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else {
        return Ok(());
    };
    let mut lines = String::new();
    for (clock, off) in offsets {
        let clock = match clock.as_str() {
            "boottime" => "boottime",
            "monotonic" => "monotonic",
            _ => continue,
        };
        lines.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    let path = Path::new("/proc/self/timens_offsets");
    fs::write(path, lines).map_err(|source| NamespaceError::Map {
        path: path.into(),
        source,
    })
}

/// Write the uid and gid maps of a child's new user namespace.
pub fn write_id_maps(pid: Pid, spec: &Spec) -> Result<(), NamespaceError> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if nix::unistd::geteuid().is_root() {
        write_proc(pid, "uid_map", &format_map(&uid))?;
        return write_proc(pid, "gid_map", &format_map(&gid));
    }
    // Without privilege the kernel lets us map our own ids, one each, after giving up
    // setgroups; anything more (subordinate ids) goes through the setuid helpers of
    // shadow's uidmap, as runc and podman do.
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let only_own =
        |m: &[LinuxIdMapping], id: u32| m.len() == 1 && m[0].size() == 1 && m[0].host_id() == id;
    if only_own(&uid, euid) && only_own(&gid, egid) {
        write_proc(pid, "setgroups", "deny")?;
        write_proc(pid, "uid_map", &format_map(&uid))?;
        return write_proc(pid, "gid_map", &format_map(&gid));
    }
    id_map_helper("newuidmap", pid, &uid)?;
    id_map_helper("newgidmap", pid, &gid)
}

fn id_map_helper(
    helper: &'static str,
    pid: Pid,
    m: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for e in m {
        cmd.args([
            e.container_id().to_string(),
            e.host_id().to_string(),
            e.size().to_string(),
        ]);
    }
    let out = cmd.output().map_err(|source| NamespaceError::Map {
        path: helper.into(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(NamespaceError::Map {
        path: helper.into(),
        source: std::io::Error::other(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    })
}

fn format_map(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size()))
        .collect()
}

fn write_proc(pid: Pid, file: &str, data: &str) -> Result<(), NamespaceError> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    // One write: the kernel accepts a map only as a whole.
    let res = File::options()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, data.as_bytes()));
    res.map_err(|source| NamespaceError::Map { path, source })
}

/// The user namespace of an id-mapped mount. A mount mapping says files owned by
/// `hostID` on the source show as `containerID` in the container; the kernel reads a
/// mount's namespace the other way round (on-disk ids are its "inside" ids), and a
/// container id is a host id only after the container's own user namespace maps it.
/// So each range becomes `hostID -> host view of containerID`.
pub fn mount_userns(
    mount_uid: &[LinuxIdMapping],
    mount_gid: &[LinuxIdMapping],
    container_uid: &[LinuxIdMapping],
    container_gid: &[LinuxIdMapping],
) -> Result<OwnedFd, NamespaceError> {
    let flip = |m: &[LinuxIdMapping], container: &[LinuxIdMapping]| -> String {
        m.iter()
            .map(|e| {
                format!(
                    "{} {} {}\n",
                    e.host_id(),
                    to_host(e.container_id(), container),
                    e.size()
                )
            })
            .collect()
    };
    mapped_userns(
        &flip(mount_uid, container_uid),
        &flip(mount_gid, container_gid),
    )
}

/// A container id as the host sees it, through the container's mappings (if any).
fn to_host(id: u32, container: &[LinuxIdMapping]) -> u32 {
    if container.is_empty() {
        return id;
    }
    container
        .iter()
        .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
        .map(|m| m.host_id() + (id - m.container_id()))
        .unwrap_or(id)
}

/// A user namespace with the given maps: a child is forked into it only long enough
/// for us to write them and open the namespace.
fn mapped_userns(uid_map: &str, gid_map: &str) -> Result<OwnedFd, NamespaceError> {
    use rt_sys::clone::{clone3, exit_child, CloneArgs, Forked};
    let create = |source| NamespaceError::Create {
        kind: "user (id-mapped mount)",
        source,
    };
    let (r, w) = nix::unistd::pipe().map_err(create)?;
    let args = CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        ..Default::default()
    };
    match clone3(&args).map_err(create)? {
        Forked::Child => {
            drop(w);
            let _ = nix::unistd::read(&r, &mut [0u8; 1]);
            exit_child(0)
        }
        Forked::Parent { pid, .. } => {
            drop(r);
            let res = write_proc(pid, "uid_map", uid_map)
                .and_then(|_| write_proc(pid, "gid_map", gid_map))
                .and_then(|_| {
                    let path = format!("/proc/{pid}/ns/user");
                    open(
                        path.as_str(),
                        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|source| NamespaceError::Open {
                        kind: "user",
                        path: path.into(),
                        source,
                    })
                });
            drop(w);
            let _ = nix::sys::wait::waitpid(pid, None);
            res
        }
    }
}

/// The namespaces of process `pid` that differ from ours, as clone flags.
pub fn differing(pid: i32) -> CloneFlags {
    use std::os::unix::fs::MetadataExt;
    let kinds = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Time,
    ];
    let mut flags = CloneFlags::empty();
    for kind in kinds {
        let name = proc_name(kind);
        let theirs = fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = fs::metadata(format!("/proc/self/ns/{name}"));
        if let (Ok(t), Ok(o)) = (theirs, ours) {
            if (t.dev(), t.ino()) != (o.dev(), o.ino()) {
                flags |= clone_flag(kind);
            }
        }
    }
    flags
}

/// Join the user namespace of the process behind `pidfd`, for good: rootless, the
/// container's pid and time namespaces belong to it, and only a member has the
/// capabilities to enter them.
pub fn enter_user(pidfd: &OwnedFd) -> Result<(), NamespaceError> {
    setns(pidfd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|source| NamespaceError::Join {
        kind: "user",
        path: "the container init".into(),
        source,
    })
}

/// Enter the pid and time namespaces of the process behind `pidfd` for our next
/// child only (they apply to children); the guard brings us back.
pub fn enter_for_children(
    pidfd: &OwnedFd,
    flags: CloneFlags,
) -> Result<ParentGuard, NamespaceError> {
    let mut guard = ParentGuard::default();
    for kind in [LinuxNamespaceType::Pid, LinuxNamespaceType::Time] {
        if !flags.contains(clone_flag(kind)) {
            continue;
        }
        let own = own_ns(kind)?;
        setns(pidfd.as_fd(), clone_flag(kind)).map_err(|source| NamespaceError::Join {
            kind: proc_name(kind),
            path: "the container init".into(),
            source,
        })?;
        guard.saved.push((kind, own));
    }
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_format_one_line_per_range() {
        let m: LinuxIdMapping =
            serde_json::from_str(r#"{"containerID":0,"hostID":1000,"size":65536}"#).unwrap();
        assert_eq!(format_map(&[m]), "0 1000 65536\n");
    }
}
