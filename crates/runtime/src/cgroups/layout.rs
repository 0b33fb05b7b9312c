//! Reading the host's cgroup layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.

use std::fs;
use std::path::PathBuf;

use super::{io, CgroupError, Version};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub version: Version,
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point (`/` unless a sub-tree is mounted).
    pub mount_root: PathBuf,
    /// rt's own cgroup in this hierarchy, the base of relative cgroupsPaths.
    pub own_cgroup: PathBuf,
}

/// The hierarchies a container is placed in.
#[derive(Debug, Clone)]
pub struct Layout {
    hierarchies: Vec<Hierarchy>,
}

impl Layout {
    pub fn from_parts(hierarchies: Vec<Hierarchy>) -> Self {
        Layout { hierarchies }
    }

    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// True when `/sys/fs/cgroup` is a single cgroup2 hierarchy.
    pub fn is_unified(&self) -> bool {
        matches!(self.hierarchies.as_slice(), [h] if h.version == Version::V2)
    }

    /// Detect the layout of this host. On a hybrid host the v1 hierarchies carry the
    /// controllers and the container is also placed in the v2 one, as systemd expects.
    pub fn detect() -> Result<Self, CgroupError> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(io("read", "/proc/self/mountinfo".as_ref()))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(io("read", "/proc/self/cgroup".as_ref()))?;
        let mut hierarchies: Vec<Hierarchy> = vec![];
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (Some(root), Some(mount_point), Some(fstype)) =
                (pre.get(3), pre.get(4), post.first())
            else {
                continue;
            };
            let version = match *fstype {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => continue,
            };
            let controllers: Vec<String> = match version {
                Version::V1 => post
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .filter(|o| is_controller_option(o))
                    .map(str::to_string)
                    .collect(),
                Version::V2 => vec![],
            };
            // The same hierarchy may be mounted twice (bind mounts): keep the first.
            if hierarchies
                .iter()
                .any(|h| h.version == version && h.controllers == controllers)
            {
                continue;
            }
            let own_cgroup = own_cgroup(&own, version, &controllers);
            hierarchies.push(Hierarchy {
                version,
                controllers,
                mount_point: unescape(mount_point).into(),
                mount_root: unescape(root).into(),
                own_cgroup: own_cgroup.into(),
            });
        }
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        Ok(Layout { hierarchies })
    }
}

/// v1 mount options that name a controller (or a named hierarchy).
fn is_controller_option(o: &str) -> bool {
    if o.starts_with("name=") {
        return true;
    }
    matches!(
        o,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "blkio"
            | "perf_event"
            | "hugetlb"
            | "pids"
            | "rdma"
            | "misc"
    )
}

/// rt's own cgroup in a hierarchy, from `/proc/self/cgroup`.
fn own_cgroup(proc_cgroup: &str, version: Version, controllers: &[String]) -> String {
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(num), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let matches = match version {
            Version::V2 => num == "0" && ctrls.is_empty(),
            Version::V1 => {
                let mut a: Vec<&str> = ctrls.split(',').collect();
                let mut b: Vec<&str> = controllers.iter().map(String::as_str).collect();
                a.sort_unstable();
                b.sort_unstable();
                !ctrls.is_empty() && a == b
            }
        };
        if matches {
            return path.to_string();
        }
    }
    "/".to_string()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_matches_controller_sets() {
        let pc = "12:cpu,cpuacct:/a\n3:name=systemd:/s\n0::/u\n";
        assert_eq!(
            own_cgroup(pc, Version::V1, &["cpuacct".into(), "cpu".into()]),
            "/a"
        );
        assert_eq!(own_cgroup(pc, Version::V1, &["name=systemd".into()]), "/s");
        assert_eq!(own_cgroup(pc, Version::V2, &[]), "/u");
        assert_eq!(own_cgroup(pc, Version::V1, &["memory".into()]), "/");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }

    #[test]
    fn detects_this_host() {
        let l = Layout::detect().unwrap();
        assert!(!l.hierarchies().is_empty());
    }
}
