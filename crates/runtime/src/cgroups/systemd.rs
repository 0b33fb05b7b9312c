//! The systemd cgroup driver (`--systemd-cgroup`): systemd owns the container's
//! cgroup as a transient scope (or slice) unit, created over D-Bus with the init's
//! pid in it and `Delegate=yes`, and stopped on delete. `cgroupsPath` takes runc's
//! `slice:prefix:name` form.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedObjectPath, Value};

use super::CgroupError;

/// A unit systemd runs the container in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `runc-ID.scope`, or a `.slice` when the name says so.
    pub name: String,
    /// The slice it goes into (`system.slice`); empty for a slice unit.
    pub slice: String,
    /// On the user's own manager (rootless) instead of the system's.
    #[serde(default)]
    pub user: bool,
}

impl Unit {
    /// runc's `slice:prefix:name` (every part optional but the name); the default is
    /// `system.slice:rt:<id>`.
    pub fn parse(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<Unit, CgroupError> {
        let bad = || CgroupError::InvalidPath(cgroups_path.unwrap_or_default().to_string());
        let default_slice = if user { "user.slice" } else { "system.slice" };
        let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
            None => (default_slice.to_string(), "rt".to_string(), id.to_string()),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                let [slice, prefix, name] = parts.as_slice() else {
                    return Err(bad());
                };
                let slice = if slice.is_empty() {
                    default_slice
                } else {
                    slice
                };
                (
                    slice.to_string(),
                    prefix.to_string(),
                    if name.is_empty() {
                        id.to_string()
                    } else {
                        name.to_string()
                    },
                )
            }
        };
        if !slice.ends_with(".slice") || [&slice, &prefix, &name].iter().any(|s| s.contains('/')) {
            return Err(bad());
        }
        if name.ends_with(".slice") {
            // A slice unit of its own, inside the given slice.
            return Ok(Unit { name, slice, user });
        }
        let name = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(Unit { name, slice, user })
    }

    /// Where systemd puts the unit's cgroup, below the v2 mount.
    pub fn cgroup_path(&self) -> PathBuf {
        let mut p = slice_path(&self.slice);
        if self.name.ends_with(".slice") {
            // A slice nests by its name, not under the parent given.
            return slice_path(&self.name);
        }
        p.push(&self.name);
        p
    }
}

/// `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn slice_path(slice: &str) -> PathBuf {
    let mut p = PathBuf::from("/");
    let Some(stem) = slice.strip_suffix(".slice") else {
        return p;
    };
    if stem.is_empty() || stem == "-" {
        return p;
    }
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        p.push(format!("{acc}.slice"));
    }
    p
}

fn dbus(e: zbus::Error) -> CgroupError {
    CgroupError::Systemd(e.to_string())
}

fn manager(user: bool) -> Result<zbus::blocking::Proxy<'static>, CgroupError> {
    if !Path::new("/run/systemd/system").exists() && !user {
        return Err(CgroupError::Systemd(
            "systemd is not running on this host (no /run/systemd/system)".into(),
        ));
    }
    let conn = if user {
        zbus::blocking::Connection::session()
    } else {
        zbus::blocking::Connection::system()
    }
    .map_err(dbus)?;
    zbus::blocking::Proxy::new_owned(
        conn,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )
    .map_err(dbus)
}

/// Start the transient unit with `pid` in it, and wait until the pid is in its cgroup.
pub fn start(
    unit: &Unit,
    pid: i32,
    description: &str,
    cgroup_dir: &Path,
) -> Result<(), CgroupError> {
    let m = manager(unit.user)?;
    let mut props: Vec<(&str, Value<'_>)> = vec![
        ("Description", Value::from(description)),
        ("Delegate", Value::from(true)),
        ("PIDs", Value::from(vec![pid as u32])),
        ("DefaultDependencies", Value::from(false)),
        ("MemoryAccounting", Value::from(true)),
        ("CPUAccounting", Value::from(true)),
        ("IOAccounting", Value::from(true)),
        ("TasksAccounting", Value::from(true)),
    ];
    if unit.name.ends_with(".scope") {
        props.push(("Slice", Value::from(unit.slice.as_str())));
    }
    let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = vec![];
    let _job: OwnedObjectPath = m
        .call(
            "StartTransientUnit",
            &(unit.name.as_str(), "replace", props, aux),
        )
        .map_err(dbus)?;
    // The job is done when the pid shows up in the unit's cgroup.
    let procs = cgroup_dir.join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(&procs) {
            if s.lines().any(|l| l.trim() == pid.to_string()) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(CgroupError::Systemd(format!(
                "unit {} did not take pid {pid} within 30s",
                unit.name
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Stop the unit; a unit systemd already forgot is not an error.
pub fn stop(unit: &Unit) -> Result<(), CgroupError> {
    let m = manager(unit.user)?;
    match m.call::<_, _, OwnedObjectPath>("StopUnit", &(unit.name.as_str(), "replace")) {
        Ok(_) => Ok(()),
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            Ok(())
        }
        Err(e) => Err(dbus(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_style_paths() {
        let u = Unit::parse(Some("system.slice:docker:abc"), "x", false).unwrap();
        assert_eq!(u.name, "docker-abc.scope");
        assert_eq!(
            u.cgroup_path(),
            PathBuf::from("/system.slice/docker-abc.scope")
        );
        let u = Unit::parse(None, "c1", false).unwrap();
        assert_eq!(u.name, "rt-c1.scope");
        let u = Unit::parse(Some("machine-pod.slice:libpod:c"), "x", false).unwrap();
        assert_eq!(
            u.cgroup_path(),
            PathBuf::from("/machine.slice/machine-pod.slice/libpod-c.scope")
        );
        let u = Unit::parse(Some(":foo:bar.slice"), "x", false).unwrap();
        assert_eq!(u.cgroup_path(), PathBuf::from("/bar.slice"));
        for bad in ["nocolon", "a:b", "notaslice:x:y", "a.slice:x/y:z"] {
            assert!(Unit::parse(Some(bad), "x", false).is_err(), "{bad}");
        }
    }

    #[test]
    fn slice_paths_nest_by_dashes() {
        assert_eq!(slice_path("-.slice"), PathBuf::from("/"));
        assert_eq!(
            slice_path("a-b-c.slice"),
            PathBuf::from("/a.slice/a-b.slice/a-b-c.slice")
        );
    }
}
