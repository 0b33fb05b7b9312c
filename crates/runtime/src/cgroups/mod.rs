//! cgroups: where a container's cgroup lives on this host, and its life cycle
//! (create, place the init, freeze, signal everything, remove).
//!
//! The one place that knows the host layout: pure v2 (`/sys/fs/cgroup` is cgroup2),
//! v1, or the hybrid of both. `v1` and `v2` hold what differs between hierarchies.

mod layout;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::fs;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use layout::{Hierarchy, Layout};

#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy is mounted (read /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("invalid cgroupsPath {0:?}")]
    InvalidPath(String),
    #[error("systemd: {0}")]
    Systemd(String),
    #[error("the systemd cgroup driver needs a cgroup v2 host")]
    SystemdNeedsV2,
    #[error("cgroup {path} still has processes after {waited:?}")]
    Busy { path: PathBuf, waited: Duration },
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("linux.resources.{field}: {reason}")]
    InvalidResource { field: String, reason: String },
    #[error("linux.resources.{field} needs the {controller} controller, which is not available to {path}")]
    NoController {
        field: String,
        controller: String,
        path: PathBuf,
    },
    #[error(
        "memory limit {limit} is below the current usage {usage} of {path} (checkBeforeUpdate)"
    )]
    MemoryInUse {
        path: PathBuf,
        limit: i64,
        usage: u64,
    },
    #[error("{op} device program for {path}: {source}{log}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
        /// The verifier's explanation, when loading failed.
        log: String,
    },
    #[error("parse {path}: unexpected {text:?}")]
    Parse { path: PathBuf, text: String },
    #[error("cgroup {path} was not {state} after {waited:?}")]
    Freezer {
        path: PathBuf,
        state: &'static str,
        waited: Duration,
    },
}

/// How long a freeze or thaw may take (runc gives the kernel about as long).
pub(crate) const FREEZE_WAIT: Duration = Duration::from_secs(10);

impl CgroupError {
    /// A limit needs a controller the container's cgroup does not have.
    pub fn is_missing_controller(&self) -> bool {
        matches!(self, CgroupError::NoController { .. })
    }

    /// The cgroup tree refused us (not root, nothing delegated).
    pub fn is_permission(&self) -> bool {
        let denied = |e: &std::io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            )
        };
        match self {
            CgroupError::Io { source, .. } | CgroupError::Write { source, .. } => denied(source),
            _ => false,
        }
    }
}

pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { op, path, source }
}

/// Which kind of hierarchy a directory belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// One directory of the container's cgroup, in one hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupDir {
    pub version: Version,
    /// Controllers of this v1 hierarchy (`cpu`, `name=systemd`...); empty for v2.
    #[serde(default)]
    pub controllers: Vec<String>,
    pub path: PathBuf,
    /// The first ancestor rt created: removal stops there, so parents the host made stay.
    pub created_from: Option<PathBuf>,
}

/// Everything rt needs to find the container's cgroup again; stored in the state
/// before the cgroup is created, so `delete --force` can clean up after any crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupRecord {
    /// The container's path below each hierarchy's root, as resolved at create.
    pub path: String,
    pub dirs: Vec<CgroupDir>,
    /// Set when systemd owns the cgroup (`--systemd-cgroup`).
    #[serde(default)]
    pub systemd: Option<systemd::Unit>,
}

impl CgroupRecord {
    /// Work out the directories for `cgroups_path` (runc semantics: absolute from the
    /// hierarchy root, relative to rt's own cgroup, on a pure v2 host to its parent;
    /// default: relative `<id>`).
    pub fn resolve(
        layout: &Layout,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Self, CgroupError> {
        let requested = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
        let clean = clean(requested)?;
        let absolute = requested.starts_with('/');
        let mut dirs = vec![];
        for h in layout.hierarchies() {
            let base = if absolute {
                PathBuf::from("/")
            } else if layout.is_unified() {
                // Our own v2 cgroup most likely holds processes (a service's, a
                // shell's session scope): "no internal processes" would leave its
                // children without controllers. Its parent, as runc's fs2 driver.
                let own = Path::new(&h.own_cgroup);
                own.parent().unwrap_or(own).to_path_buf()
            } else {
                PathBuf::from(&h.own_cgroup)
            };
            let rel = base.join(&clean);
            // Paths in /proc/self/cgroup are relative to the hierarchy's root, which is
            // what is mounted unless the mount shows a sub-tree (cgroup namespace, bind).
            let below_mount = rel
                .strip_prefix(&h.mount_root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| rel.strip_prefix("/").unwrap_or(&rel).to_path_buf());
            dirs.push(CgroupDir {
                version: h.version,
                controllers: h.controllers.clone(),
                path: h.mount_point.join(below_mount),
                created_from: None,
            });
        }
        if dirs.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        Ok(CgroupRecord {
            path: if absolute {
                format!("/{}", clean.display())
            } else {
                clean.display().to_string()
            },
            dirs,
            systemd: None,
        })
    }

    /// The cgroup of a systemd unit (`slice:prefix:name`), on a v2 host.
    pub fn resolve_systemd(
        layout: &Layout,
        cgroups_path: Option<&str>,
        id: &str,
        user: bool,
    ) -> Result<Self, CgroupError> {
        if !layout.is_unified() {
            return Err(CgroupError::SystemdNeedsV2);
        }
        let unit = systemd::Unit::parse(cgroups_path, id, user)?;
        let h = &layout.hierarchies()[0];
        let rel = unit.cgroup_path();
        let path = h.mount_point.join(rel.strip_prefix("/").unwrap_or(&rel));
        Ok(CgroupRecord {
            path: rel.display().to_string(),
            dirs: vec![CgroupDir {
                version: Version::V2,
                controllers: vec![],
                path,
                created_from: None,
            }],
            systemd: Some(unit),
        })
    }

    /// Put the init in its cgroup after the clone: systemd's unit is started with it
    /// (the pid must exist), other cgroups are joined by writing `cgroup.procs` unless
    /// `CLONE_INTO_CGROUP` already did it.
    /// `resources` go into the unit's properties from the start: systemd enables the
    /// controllers they need while it makes the cgroup, where a later
    /// SetUnitProperties would enable them only some time after its reply.
    pub fn attach(
        &self,
        pid: i32,
        cloned_into: bool,
        id: &str,
        resources: &LinuxResources,
    ) -> Result<(), CgroupError> {
        match &self.systemd {
            Some(unit) => {
                let dir = &self.dirs[0].path;
                let props = systemd::systemd_properties(resources);
                systemd::start(unit, pid, &format!("rt container {id}"), dir, props)
            }
            None if cloned_into => Ok(()),
            None => self.add(pid),
        }
    }

    /// Make every directory (and missing parents), remembering which rt made.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        if self.systemd.is_some() {
            // systemd makes the cgroup when it starts the unit.
            return Ok(());
        }
        for dir in &mut self.dirs {
            let mut first_new = None;
            for anc in ancestors_top_down(&dir.path) {
                match fs::create_dir(&anc) {
                    Ok(()) => {
                        first_new.get_or_insert(anc.clone());
                        if dir.version == Version::V1
                            && dir.controllers.iter().any(|c| c == "cpuset")
                        {
                            v1::inherit_cpuset(&anc)?;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io("create cgroup", &anc)(e)),
                }
            }
            dir.created_from = first_new;
        }
        if let [dir] = self.dirs.as_slice() {
            if dir.version == Version::V2 {
                // Pure v2: controllers reach a cgroup only through its ancestors.
                resources::v2::enable_controllers(&dir.path);
            }
        }
        Ok(())
    }

    /// The v2 directory for `CLONE_INTO_CGROUP`, when the host is pure v2.
    pub fn open_v2_dir(&self) -> Option<OwnedFd> {
        if self.systemd.is_some() {
            return None;
        }
        let dirs: Vec<_> = self
            .dirs
            .iter()
            .filter(|d| d.version == Version::V2)
            .collect();
        if dirs.len() != 1 || self.dirs.len() != 1 {
            return None;
        }
        v2::open_dir(&dirs[0].path).ok()
    }

    /// Move `pid` into every hierarchy (the v1 way; v2 uses `CLONE_INTO_CGROUP`).
    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            let procs = dir.path.join("cgroup.procs");
            fs::write(&procs, pid.to_string()).map_err(io("write", &procs))?;
        }
        Ok(())
    }

    /// Every pid in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.primary() else {
            return Ok(vec![]);
        };
        let procs = dir.path.join("cgroup.procs");
        match fs::read_to_string(&procs) {
            Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(io("read", &procs)(e)),
        }
    }

    /// The directory that holds every process: the freezer's on v1, the only one on v2.
    fn primary(&self) -> Option<&CgroupDir> {
        self.freezer()
            .or_else(|| self.dirs.iter().find(|d| d.version == Version::V2))
            .or(self.dirs.first())
    }

    fn freezer(&self) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|d| d.version == Version::V1 && d.controllers.iter().any(|c| c == "freezer"))
            .or_else(|| self.v2_only())
    }

    fn v2_only(&self) -> Option<&CgroupDir> {
        match self.dirs.as_slice() {
            [d] if d.version == Version::V2 => Some(d),
            _ => None,
        }
    }

    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Some(d) if d.version == Version::V1 => v1::is_frozen(&d.path),
            Some(d) => v2::is_frozen(&d.path),
            None => false,
        }
    }

    /// Freeze or thaw every process of the container.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match self.freezer() {
            Some(d) if d.version == Version::V1 => v1::set_frozen(&d.path, frozen),
            Some(d) => v2::set_frozen(&d.path, frozen),
            None => Ok(()),
        }
    }

    /// Send `signal` to every process in the cgroup, frozen first so none can fork
    /// away from the signal; SIGKILL on v2 goes through `cgroup.kill` in one write.
    pub fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        if signal == libc::SIGKILL {
            if let Some(d) = self.v2_only() {
                if v2::kill(&d.path)? {
                    return Ok(());
                }
            }
        }
        let was_frozen = self.is_frozen();
        // A freeze that does not take (a task stuck in the kernel) must not stop the
        // signal: it is sent unfrozen then, as runc does.
        let freeze = self.freezer().is_some() && !was_frozen && self.set_frozen(true).is_ok();
        for pid in self.pids()? {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(signal).ok(),
            );
        }
        // Thaw what we froze; a paused container stays paused, unless it must die.
        if freeze || (was_frozen && signal == libc::SIGKILL) {
            self.set_frozen(false)?;
        }
        Ok(())
    }

    /// Remove every directory rt created, waiting (not sleeping blindly) for the
    /// kernel to finish taking exiting processes out of the cgroup.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(unit) = &self.systemd {
            systemd::stop(unit)?;
        }
        for dir in &self.dirs {
            if self.is_frozen() {
                let _ = self.set_frozen(false);
            }
            remove_dir_waiting(dir, deadline)?;
            if let Some(top) = &dir.created_from {
                // Parents rt made for this container alone; a sibling keeps them busy.
                let mut p = dir.path.parent();
                while let Some(parent) = p {
                    if !parent.starts_with(top) || fs::remove_dir(parent).is_err() {
                        break;
                    }
                    p = parent.parent();
                }
            }
        }
        Ok(())
    }
}

fn remove_dir_waiting(dir: &CgroupDir, deadline: Instant) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        match fs::remove_dir(&dir.path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // Child cgroups made inside the container keep it busy too.
                remove_children(&dir.path);
                if Instant::now() > deadline {
                    return Err(CgroupError::Busy {
                        path: dir.path.clone(),
                        waited: start.elapsed(),
                    });
                }
                match dir.version {
                    Version::V2 => v2::wait_unpopulated(&dir.path, deadline),
                    Version::V1 => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            Err(e) => return Err(io("remove cgroup", &dir.path)(e)),
        }
    }
}

fn remove_children(path: &Path) {
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_children(&e.path());
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

/// `path` and its ancestors, outermost first, stopping at the hierarchy's mount.
fn ancestors_top_down(path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = path.ancestors().map(Path::to_path_buf).collect();
    v.reverse();
    v.into_iter().filter(|p| !p.exists() || p == path).collect()
}

/// Normalise a cgroupsPath lexically, so `..` can never climb above the base it is
/// resolved against (as runc's CleanPath does).
fn clean(p: &str) -> Result<PathBuf, CgroupError> {
    if p.contains('\0') || p.contains('\n') {
        return Err(CgroupError::InvalidPath(p.to_string()));
    }
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        return Err(CgroupError::InvalidPath(p.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_climbs() {
        assert_eq!(clean("/a/../../b").unwrap(), PathBuf::from("b"));
        assert_eq!(clean("../../x/y").unwrap(), PathBuf::from("x/y"));
        assert!(clean("/..").is_err());
        assert!(clean("a\nb").is_err());
    }

    fn layout() -> Layout {
        Layout::from_parts(vec![
            Hierarchy {
                version: Version::V1,
                controllers: vec!["memory".into()],
                mount_point: "/sys/fs/cgroup/memory".into(),
                mount_root: "/".into(),
                own_cgroup: "/user/1".into(),
            },
            Hierarchy {
                version: Version::V2,
                controllers: vec![],
                mount_point: "/sys/fs/cgroup/unified".into(),
                mount_root: "/".into(),
                own_cgroup: "/".into(),
            },
        ])
    }

    #[test]
    fn absolute_and_relative_paths() {
        let r = CgroupRecord::resolve(&layout(), Some("/x/y"), "id").unwrap();
        assert_eq!(r.dirs[0].path, PathBuf::from("/sys/fs/cgroup/memory/x/y"));
        assert_eq!(r.dirs[1].path, PathBuf::from("/sys/fs/cgroup/unified/x/y"));
        let r = CgroupRecord::resolve(&layout(), Some("x"), "id").unwrap();
        assert_eq!(
            r.dirs[0].path,
            PathBuf::from("/sys/fs/cgroup/memory/user/1/x")
        );
        let r = CgroupRecord::resolve(&layout(), None, "c1").unwrap();
        assert_eq!(r.dirs[1].path, PathBuf::from("/sys/fs/cgroup/unified/c1"));
    }
}
