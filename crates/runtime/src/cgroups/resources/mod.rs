//! Resource limits (`linux.resources`) written into the container's cgroup.
//!
//! Each hierarchy version has a module that turns the config into a *plan*: the
//! files to write, in order, with what to do when one is missing or refuses a
//! value. A plan is a pure function of the config and of what the directory already
//! holds (read through a [`Probe`]), so it is unit-tested without a cgroup; the
//! writer that carries it out is a few lines. Devices are the exception on v2, where
//! they are an eBPF program (`devices`, `ebpf`).
//!
//! Where the kernel or the config leaves a choice, rt does what runc does.

pub mod devices;
mod ebpf;
mod v1;
pub(crate) mod v2;

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{systemd, CgroupError, CgroupRecord, Version};

/// Apply every resource of the config, at `create`: fields left out keep the
/// kernel's defaults, and the device rules are always installed (the config's, then
/// the defaults runc allows; with no `devices` at all, only the defaults). Pass
/// `LinuxResources::default()` when the config has no `resources`.
pub fn apply(record: &CgroupRecord, r: &LinuxResources) -> Result<(), CgroupError> {
    apply_mode(record, r, Mode::Create)
}

/// `rt update`: change only what `r` sets. Device rules are replaced only when
/// `r.devices` is present.
pub fn apply_update(record: &CgroupRecord, r: &LinuxResources) -> Result<(), CgroupError> {
    apply_mode(record, r, Mode::Update)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// How long systemd may take to enable the controllers of a unit's new properties.
const CONTROLLER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn apply_mode(record: &CgroupRecord, r: &LinuxResources, mode: Mode) -> Result<(), CgroupError> {
    warn_ignored(r);
    if let Some(unit) = &record.systemd {
        // Tell systemd too, so a reload of the unit does not undo the files below.
        systemd::set_properties(unit, systemd::systemd_properties(r))?;
        if let Some(dir) = record.dirs.iter().find(|d| d.version == Version::V2) {
            v2::await_controllers(&dir.path, r, CONTROLLER_WAIT);
        }
    }
    let v1_dirs: Vec<_> = record
        .dirs
        .iter()
        .filter(|d| d.version == Version::V1)
        .collect();
    if !v1_dirs.is_empty() {
        // On a hybrid host v1 carries the controllers; the v2 hierarchy only those
        // no v1 hierarchy took (hugetlb, typically).
        let unified = record
            .dirs
            .iter()
            .find(|d| d.version == Version::V2)
            .map(|d| d.path.as_path());
        return v1::apply(&v1_dirs, unified, &record.path, r, mode);
    }
    match record.dirs.iter().find(|d| d.version == Version::V2) {
        Some(dir) => v2::apply(&dir.path, r, mode),
        None => Ok(()),
    }
}

fn warn_ignored(r: &LinuxResources) {
    if r.memory().as_ref().is_some_and(|m| m.kernel().is_some()) {
        log::warn!(
            "linux.resources.memory.kernel is ignored: kernel memory is not limited separately since Linux 5.4"
        );
    }
}

/// What the plan may look at in the directory it is for.
pub(crate) trait Probe {
    fn exists(&self, file: &str) -> bool;
    fn read(&self, file: &str) -> Option<String>;
    /// For error messages.
    fn path(&self) -> &Path;

    fn read_u64(&self, file: &str) -> Option<u64> {
        self.read(file)?.trim().parse().ok()
    }
}

/// The real thing: files of a cgroup directory.
pub(crate) struct Dir<'a>(pub &'a Path);

impl Probe for Dir<'_> {
    fn exists(&self, file: &str) -> bool {
        self.0.join(file).exists()
    }
    fn read(&self, file: &str) -> Option<String> {
        fs::read_to_string(self.0.join(file)).ok()
    }
    fn path(&self) -> &Path {
        self.0
    }
}

/// What to do when the file of a write does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Fail,
    Skip,
    Warn,
}

/// What to do when the kernel answers EINVAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    Fail,
    /// Ordering: a later write in the plan makes this one valid and repeats it.
    Retried,
    Warn,
}

/// One write of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// Relative to the cgroup directory.
    pub file: String,
    pub value: String,
    /// The config field it comes from (below `linux.resources.`), for errors.
    pub field: &'static str,
    pub missing: Missing,
    pub invalid: Invalid,
    /// Read the value back: the kernel clamps some (cpu.shares) instead of refusing.
    pub read_back: bool,
}

impl Write {
    pub fn new(file: impl Into<String>, value: impl ToString, field: &'static str) -> Write {
        Write {
            file: file.into(),
            value: value.to_string(),
            field,
            missing: Missing::Fail,
            invalid: Invalid::Fail,
            read_back: false,
        }
    }

    pub fn missing(mut self, m: Missing) -> Write {
        self.missing = m;
        self
    }

    pub fn invalid(mut self, i: Invalid) -> Write {
        self.invalid = i;
        self
    }

    /// The first of two writes of the same value, around the write that makes it
    /// valid: whatever goes wrong here is reported by the second.
    pub fn tried_first(self) -> Write {
        self.invalid(Invalid::Retried).missing(Missing::Skip)
    }
}

/// Carry out `plan` in `dir`. A missing file that must exist is reported by
/// `missing`, which knows what the hierarchy calls a missing controller.
pub(crate) fn write_plan(
    dir: &Path,
    plan: &[Write],
    missing: impl Fn(&Write, std::io::Error) -> CgroupError,
) -> Result<(), CgroupError> {
    for w in plan {
        let path = dir.join(&w.file);
        match write_file(&path, &w.value) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => match w.missing {
                Missing::Fail => return Err(missing(w, e)),
                Missing::Skip => log::debug!("{} does not exist, skipped", path.display()),
                Missing::Warn => log::warn!(
                    "linux.resources.{}: {} does not exist on this kernel, not set",
                    w.field,
                    path.display()
                ),
            },
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && w.invalid != Invalid::Fail => {
                if w.invalid == Invalid::Warn {
                    log::warn!(
                        "linux.resources.{}: the kernel refuses {:?} in {}, not set",
                        w.field,
                        w.value,
                        path.display()
                    );
                }
            }
            Err(source) => {
                return Err(CgroupError::Write {
                    path,
                    value: w.value.clone(),
                    source,
                })
            }
        }
        if w.read_back {
            let now = fs::read_to_string(&path).map_err(super::io("read", &path))?;
            if now.trim() != w.value {
                return Err(CgroupError::InvalidResource {
                    field: w.field.to_string(),
                    reason: format!(
                        "{} became {} (the kernel's limit) instead of {}",
                        path.display(),
                        now.trim(),
                        w.value
                    ),
                });
            }
        }
    }
    Ok(())
}

/// One write(2) of the whole value, as cgroup files want; the file must exist.
fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    // Truncation is meaningless to cgroupfs but keeps a test directory readable.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(value.as_bytes())
}

/// The error for a write whose file is missing on v1 (no such knob on this kernel).
fn missing_file(dir: &Path) -> impl Fn(&Write, std::io::Error) -> CgroupError + '_ {
    move |w, source| CgroupError::Write {
        path: dir.join(&w.file),
        value: w.value.clone(),
        source,
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `checkBeforeUpdate`: refuse a limit below what the cgroup already uses.
fn check_usage(p: &dyn Probe, usage_file: &str, limit: Option<i64>) -> Result<(), CgroupError> {
    let Some(limit) = limit.filter(|&l| l > 0) else {
        return Ok(());
    };
    match p.read_u64(usage_file) {
        Some(usage) if (limit as u64) < usage => Err(CgroupError::MemoryInUse {
            path: p.path().to_path_buf(),
            limit,
            usage,
        }),
        _ => Ok(()),
    }
}

/// Hugepage sizes name files (`hugetlb.2MB.max`): nothing that could leave the directory.
fn page_size(size: &str) -> Result<&str, CgroupError> {
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(
            "hugepageLimits.pageSize",
            format!("{size:?} is not a page size like 2MB"),
        ));
    }
    Ok(size)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fake probe, a scratch directory, and the root/CI rule for tests that need
    //! the real cgroup filesystem.

    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    #[derive(Default)]
    pub struct Fake(pub HashMap<&'static str, &'static str>);

    impl Fake {
        pub fn with(files: &[(&'static str, &'static str)]) -> Fake {
            Fake(files.iter().copied().collect())
        }
    }

    impl Probe for Fake {
        fn exists(&self, file: &str) -> bool {
            self.0.contains_key(file)
        }
        fn read(&self, file: &str) -> Option<String> {
            self.0.get(file).map(|s| s.to_string())
        }
        fn path(&self) -> &Path {
            Path::new("/fake")
        }
    }

    pub fn pairs(plan: &[Write]) -> Vec<(&str, &str)> {
        plan.iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect()
    }

    /// A fresh directory that is removed (with its subdirectories) when dropped.
    pub struct Scratch(pub PathBuf);

    impl Scratch {
        pub fn new(parent: &Path, name: &str) -> std::io::Result<Scratch> {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = parent.join(format!(
                "rt-test-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&p)?;
            Ok(Scratch(p))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            // cgroup directories go with rmdir (their files are not removable).
            fn rm(p: &Path) {
                if let Ok(entries) = fs::read_dir(p) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            rm(&e.path());
                        }
                    }
                }
                if fs::remove_dir(p).is_err() {
                    let _ = fs::remove_dir_all(p);
                }
            }
            rm(&self.0);
        }
    }

    /// A cgroup of the test's own, removed at the end: a directory under every v1
    /// hierarchy on a v1 host, or one v2 directory (controllers enabled) on a v2 host.
    pub struct TestCgroup {
        pub record: CgroupRecord,
        _dirs: Vec<Scratch>,
    }

    pub fn test_cgroup(name: &str) -> Option<TestCgroup> {
        use crate::cgroups::{CgroupDir, Layout};
        let layout = Layout::detect().ok()?;
        let mut dirs = vec![];
        let mut keep = vec![];
        if layout.is_unified() {
            let parent = Scratch::new(&layout.hierarchies()[0].mount_point, name).ok()?;
            let path = parent.0.join("c");
            fs::create_dir(&path).ok()?;
            v2::enable_controllers(&path);
            dirs.push(CgroupDir {
                version: Version::V2,
                controllers: vec![],
                path,
                created_from: None,
            });
            keep.push(parent);
        }
        for h in layout.hierarchies() {
            if h.version != Version::V1 || h.controllers.iter().any(|c| c.starts_with("name=")) {
                continue;
            }
            let s = Scratch::new(&h.mount_point, name).ok()?;
            if h.controllers.iter().any(|c| c == "cpuset") {
                crate::cgroups::v1::inherit_cpuset(&s.0).ok()?;
            }
            dirs.push(CgroupDir {
                version: Version::V1,
                controllers: h.controllers.clone(),
                path: s.0.clone(),
                created_from: None,
            });
            keep.push(s);
        }
        (!dirs.is_empty()).then(|| TestCgroup {
            record: CgroupRecord {
                path: format!("/{name}"),
                dirs,
                systemd: None,
            },
            _dirs: keep,
        })
    }

    /// A block device the kernel knows (throttles are refused for others).
    pub fn some_disk() -> (u32, u32) {
        let mut names: Vec<_> = fs::read_dir("/sys/block").unwrap().flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            if e.file_name().to_string_lossy().starts_with("loop") {
                continue;
            }
            if let Ok(dev) = fs::read_to_string(e.path().join("dev")) {
                let (a, b) = dev.trim().split_once(':').unwrap();
                return (a.parse().unwrap(), b.parse().unwrap());
            }
        }
        panic!("no block device in /sys/block");
    }

    /// A character device node `name` (1:11, the kernel log, which no default rule
    /// allows) in a scratch directory, for opening from inside a test cgroup.
    pub fn kmsg_node(name: &str) -> (Scratch, PathBuf) {
        let dir = Scratch::new(&std::env::temp_dir(), name).unwrap();
        let node = dir.0.join("kmsg");
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 11),
        )
        .unwrap();
        (dir, node)
    }

    /// Run `checks` (shell conditions) in a shell that first joins `cgroup_dirs`;
    /// which of them held.
    pub fn try_in(cgroup_dirs: &[&Path], checks: &[String]) -> Vec<bool> {
        let join: Vec<String> = cgroup_dirs
            .iter()
            .map(|d| format!("echo $$ > {}/cgroup.procs || exit 9; ", d.display()))
            .collect();
        // `true`, not `:`: a failed redirection of a special builtin ends the shell.
        let script: Vec<String> = checks
            .iter()
            .map(|c| format!("if {c} 2>/dev/null; then echo yes; else echo no; fi"))
            .collect();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{}{}", join.concat(), script.join("; ")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l == "yes")
            .collect()
    }

    /// Tests that need root and this host's cgroups: they skip with a note, or fail
    /// when `CI=true` (as the container tests do).
    pub fn may_run(what: &str) -> bool {
        let root = nix::unistd::geteuid().is_root();
        if root {
            return true;
        }
        let ci = matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"));
        assert!(!ci, "{what}: needs root (CI=true, so this is a failure)");
        eprintln!("note: {what} skipped: needs root");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Scratch;
    use super::*;

    #[test]
    fn writer_follows_the_plan() {
        let dir = Scratch::new(&std::env::temp_dir(), "writer").unwrap();
        let d = &dir.0;
        fs::write(d.join("a"), "old").unwrap();
        let plan = vec![
            Write::new("a", "1", "x"),
            Write::new("gone", "2", "x").missing(Missing::Skip),
            Write::new("gone", "2", "x").missing(Missing::Warn),
        ];
        write_plan(d, &plan, missing_file(d)).unwrap();
        assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "1");
        assert!(!d.join("gone").exists(), "never creates files");
        let err = write_plan(d, &[Write::new("gone", "3", "x")], missing_file(d)).unwrap_err();
        assert!(err.to_string().starts_with("write \"3\" to "), "{err}");
        assert!(err.to_string().contains("/gone: "), "{err}");
    }

    #[test]
    fn page_sizes_are_file_name_parts() {
        assert_eq!(page_size("2MB").unwrap(), "2MB");
        assert!(page_size("../x").is_err());
        assert!(page_size("").is_err());
    }
}
