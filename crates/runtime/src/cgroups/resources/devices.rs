//! The device allowlist (`linux.resources.devices`): which device nodes the
//! container may open or create.
//!
//! The rules are the config's, in order, followed by the devices runc always allows
//! (so a config written for runc works unchanged), and everything else is refused.
//! v1 writes them to `devices.deny`/`devices.allow`, after a first `a` to
//! `devices.deny`; v2 has no files for this and attaches an eBPF program instead.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::ebpf;
use super::Write;
use crate::cgroups::{io, v2 as cgv2, CgroupError};

pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
/// The accesses a request may combine (`BPF_DEVCG_ACC_*`, the order they are checked).
pub const ACCESS_BITS: [u8; 3] = [ACC_READ, ACC_WRITE, ACC_MKNOD];
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The name rt's device programs are loaded with, so an update finds and replaces
/// them and leaves programs others attached (systemd's) alone.
const PROG_NAME: &str = "rt_devices";
const LICENSE: &CStr = c"Apache";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Every device, whatever the numbers say (`a`), as the v1 kernel reads it.
    All,
    Char,
    Block,
}

/// One allow or deny rule; `None` numbers are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u8,
}

impl Rule {
    const fn char(major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow: true,
            kind: Kind::Char,
            major,
            minor,
            access,
        }
    }

    /// The line v1's `devices.allow`/`devices.deny` take: `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let kind = match self.kind {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        format!(
            "{kind} {}:{} {}",
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

fn access_string(access: u8) -> String {
    [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|&(_, c)| c)
        .collect()
}

/// What runc's specconv appends to every container's rules (its `AllowedDevices`):
/// mknod of anything, the standard character devices, ptys, and /dev/net/tun.
pub fn default_rules() -> Vec<Rule> {
    const ALL: u8 = ACC_ALL;
    let block_mknod = Rule {
        kind: Kind::Block,
        ..Rule::char(None, None, ACC_MKNOD)
    };
    vec![
        Rule::char(None, None, ACC_MKNOD),
        block_mknod,
        Rule::char(Some(1), Some(3), ALL),    // /dev/null
        Rule::char(Some(1), Some(8), ALL),    // /dev/random
        Rule::char(Some(1), Some(7), ALL),    // /dev/full
        Rule::char(Some(5), Some(0), ALL),    // /dev/tty
        Rule::char(Some(1), Some(5), ALL),    // /dev/zero
        Rule::char(Some(1), Some(9), ALL),    // /dev/urandom
        Rule::char(Some(136), None, ALL),     // /dev/pts/*
        Rule::char(Some(5), Some(2), ALL),    // /dev/ptmx
        Rule::char(Some(10), Some(200), ALL), // /dev/net/tun
    ]
}

/// The config's rules followed by the defaults.
pub fn rules(r: &LinuxResources) -> Result<Vec<Rule>, CgroupError> {
    let configured = r.devices().as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(configured.len() + 11);
    for (i, d) in configured.iter().enumerate() {
        out.push(parse(i, d)?);
    }
    out.extend(default_rules());
    Ok(out)
}

fn parse(i: usize, d: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
    let bad = |what: &str, reason: String| CgroupError::InvalidResource {
        field: format!("devices[{i}].{what}"),
        reason,
    };
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => Kind::All,
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Kind::Char,
        Some(LinuxDeviceType::B) => Kind::Block,
        Some(LinuxDeviceType::P) => {
            return Err(bad(
                "type",
                "the device cgroup has no rules for fifos".into(),
            ))
        }
    };
    // Negative numbers are how runc spells "any"; device numbers fit in 20 bits, and
    // the eBPF program compares them as signed 32-bit immediates.
    let number = |what: &str, n: Option<i64>| match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) if n <= i32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(bad(what, format!("{n} is not a device number"))),
    };
    let major = number("major", d.major())?;
    let minor = number("minor", d.minor())?;
    let text = d.access().as_deref().unwrap_or_default();
    if text.is_empty() {
        return Err(bad("access", "must not be empty (use \"rwm\")".into()));
    }
    let mut access = 0;
    for c in text.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(bad("access", format!("{text:?} is not made of r, w and m"))),
        };
    }
    Ok(Rule {
        allow: d.allow(),
        kind,
        major,
        minor,
        access,
    })
}

/// Whether `rules` let a process do `access` (`ACC_*` bits) on a device: every
/// requested access must be allowed by the last rule that names it and matches.
/// This is what the eBPF program computes; it is here as the reference for tests.
pub fn allows(rules: &[Rule], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
    ACCESS_BITS
        .iter()
        .filter(|&&bit| access & bit != 0)
        .all(|&bit| {
            rules
                .iter()
                .rev()
                .find(|r| {
                    r.kind == Kind::All
                        || (r.kind == kind
                            && r.access & bit != 0
                            && r.major.is_none_or(|m| m == major)
                            && r.minor.is_none_or(|m| m == minor))
                })
                .is_some_and(|r| r.allow)
        })
}

/// v1: deny everything, then each rule in order. Returns no writes when the
/// cgroup already holds exactly this list, so an update of a running container
/// never passes through "deny everything".
pub(crate) fn v1_plan(rules: &[Rule], current_list: Option<&str>) -> Vec<Write> {
    let target = V1List::after(rules);
    if !target.default_allow && current_list.and_then(V1List::parse).as_ref() == Some(&target) {
        return vec![];
    }
    let deny_all = Rule {
        allow: false,
        kind: Kind::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    };
    std::iter::once(&deny_all)
        .chain(rules)
        .map(|r| {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            Write::new(file, r.v1_line(), "devices")
        })
        .collect()
}

/// v1 keeps exceptions by exact key: a deny inside an earlier wildcard allow (allow
/// `c 60:*`, then deny `c 60:0`) would be dropped without a word. Refuse it, as runc
/// does, rather than run the container with the device open.
pub(crate) fn v1_check(rules: &[Rule]) -> Result<(), CgroupError> {
    let mut default_allow = false;
    let mut wildcards: Vec<Rule> = vec![];
    for r in rules {
        if r.kind == Kind::All {
            default_allow = r.allow;
            wildcards.clear();
            continue;
        }
        if r.allow && !default_allow && (r.major.is_none() || r.minor.is_none()) {
            wildcards.push(*r);
        }
        if !r.allow && !default_allow {
            let covers = |w: &Rule| {
                w.kind == r.kind
                    && (w.major.is_none() || w.major == r.major)
                    && (w.minor.is_none() || w.minor == r.minor)
                    && (w.major, w.minor) != (r.major, r.minor)
                    && w.access & r.access != 0
            };
            if let Some(w) = wildcards.iter().find(|w| covers(w)) {
                return Err(CgroupError::InvalidResource {
                    field: "devices".into(),
                    reason: format!(
                        "cgroup v1 cannot deny {} inside the earlier allow {} (cannot punch a hole in a wildcard rule)",
                        r.v1_line(),
                        w.v1_line()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// What a v1 devices cgroup holds: a default and the exceptions to it, keyed by
/// (type, major, minor) exactly as the kernel keys them.
#[derive(Debug, PartialEq, Eq)]
struct V1List {
    default_allow: bool,
    exceptions: BTreeMap<(Kind, Option<u32>, Option<u32>), u8>,
}

impl V1List {
    /// The kernel's bookkeeping for "deny a" followed by `rules`: an "a" rule resets
    /// the default; a rule against the default adds access to its exact-match
    /// exception, one with it takes access away from that exception.
    fn after(rules: &[Rule]) -> V1List {
        let mut l = V1List {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for r in rules {
            if r.kind == Kind::All {
                l.default_allow = r.allow;
                l.exceptions.clear();
                continue;
            }
            let key = (r.kind, r.major, r.minor);
            if r.allow != l.default_allow {
                *l.exceptions.entry(key).or_default() |= r.access;
            } else if let Some(a) = l.exceptions.get_mut(&key) {
                *a &= !r.access;
                if *a == 0 {
                    l.exceptions.remove(&key);
                }
            }
        }
        l
    }

    /// `devices.list`: `a *:* rwm` alone when the default is allow (the kernel shows
    /// no exceptions then), otherwise one line per allowed exception.
    fn parse(list: &str) -> Option<V1List> {
        let mut l = V1List {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for line in list.lines() {
            let mut f = line.split_whitespace();
            let (kind, nums, access) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = nums.split_once(':')?;
            let num = |s: &str| {
                if s == "*" {
                    Some(None)
                } else {
                    s.parse().ok().map(Some)
                }
            };
            let kind = match kind {
                "a" => {
                    l.default_allow = true;
                    continue;
                }
                "c" => Kind::Char,
                "b" => Kind::Block,
                _ => return None,
            };
            let mut bits = 0;
            for c in access.chars() {
                bits |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => return None,
                };
            }
            l.exceptions.insert((kind, num(major)?, num(minor)?), bits);
        }
        Some(l)
    }
}

/// v2: load the program for `rules`, attach it to `dir`, then detach the rt
/// programs that were there. Several attached programs must all allow an access, so
/// the container never has more than either rule set allows while both are in place.
pub fn apply_v2(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let bpf_err = |op, source, log: String| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        source,
        log,
    };
    let insns = ebpf::program(rules);
    let prog = match rt_sys::bpf::load_cgroup_device(&insns, LICENSE, PROG_NAME, &mut []) {
        Ok(fd) => fd,
        Err(e) => {
            // Load again to get the verifier's reason (it costs nothing when all is well).
            let mut log = vec![0u8; 64 * 1024];
            let _ = rt_sys::bpf::load_cgroup_device(&insns, LICENSE, PROG_NAME, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            let text = if text.is_empty() {
                text
            } else {
                format!(" (verifier: {text})")
            };
            return Err(bpf_err("load", e, text));
        }
    };
    let cgroup = cgv2::open_dir(dir).map_err(|e| io("open", dir)(e.into()))?;
    let old = rt_programs(&cgroup).map_err(|e| bpf_err("query", e, String::new()))?;
    rt_sys::bpf::attach_cgroup_device(cgroup.as_fd(), prog.as_fd())
        .map_err(|e| bpf_err("attach", e, String::new()))?;
    for old in old {
        match rt_sys::bpf::detach_cgroup_device(cgroup.as_fd(), old.as_fd()) {
            // Another update raced us to it.
            Ok(()) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(bpf_err("detach old", e, String::new())),
        }
    }
    Ok(())
}

/// The device programs rt attached to this cgroup directory before.
fn rt_programs(cgroup: &std::os::fd::OwnedFd) -> nix::Result<Vec<std::os::fd::OwnedFd>> {
    let mut out = vec![];
    for id in rt_sys::bpf::query_cgroup_device(cgroup.as_fd())? {
        let fd = match rt_sys::bpf::prog_fd_by_id(id) {
            Ok(fd) => fd,
            // Detached and freed since the query.
            Err(nix::Error::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if rt_sys::bpf::prog_name(fd.as_fd())? == PROG_NAME {
            out.push(fd);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn dev(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        access: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(access)
            .build()
            .unwrap()
    }

    fn resources(devs: Vec<LinuxDeviceCgroup>) -> LinuxResources {
        let mut r = LinuxResources::default();
        r.set_devices(Some(devs));
        r
    }

    #[test]
    fn parses_runc_style_rules() {
        let r = resources(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            dev(true, LinuxDeviceType::C, 4, -1, "rw"),
            dev(true, LinuxDeviceType::U, 1, 3, "m"),
        ]);
        let rules = rules(&r).unwrap();
        assert_eq!(rules.len(), 3 + default_rules().len());
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].v1_line(), "c 4:* rw");
        assert_eq!(rules[2].v1_line(), "c 1:3 m");
        assert_eq!(rules[3].v1_line(), "c *:* m");
        assert_eq!(rules.last().unwrap().v1_line(), "c 10:200 rwm");
    }

    #[test]
    fn refuses_bad_rules() {
        for (d, field) in [
            (dev(true, LinuxDeviceType::P, 1, 3, "rw"), "devices[0].type"),
            (dev(true, LinuxDeviceType::C, 1, 3, ""), "devices[0].access"),
            (
                dev(true, LinuxDeviceType::C, 1, 3, "rx"),
                "devices[0].access",
            ),
            (
                dev(true, LinuxDeviceType::C, 1 << 40, 3, "r"),
                "devices[0].major",
            ),
        ] {
            match rules(&resources(vec![d])) {
                Err(CgroupError::InvalidResource { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn v1_plan_denies_all_first() {
        let rules = rules(&resources(vec![dev(true, LinuxDeviceType::B, 8, 0, "r")])).unwrap();
        let plan = v1_plan(&rules, None);
        assert_eq!(plan[0].file, "devices.deny");
        assert_eq!(plan[0].value, "a *:* rwm");
        assert_eq!(plan[1].file, "devices.allow");
        assert_eq!(plan[1].value, "b 8:0 r");
        assert_eq!(plan.len(), 2 + default_rules().len());
    }

    #[test]
    fn v1_plan_skips_an_identical_list() {
        let rules = rules(&resources(vec![
            dev(true, LinuxDeviceType::C, 1, 3, "r"),
            dev(true, LinuxDeviceType::C, 1, 3, "w"),
        ]))
        .unwrap();
        // What the kernel shows after the writes: merged exceptions, in its own order.
        let list = "c 10:200 rwm\nc 5:2 rwm\nc 136:* rwm\nc 1:9 rwm\nc 1:5 rwm\nc 5:0 rwm\n\
                    c 1:7 rwm\nc 1:8 rwm\nc 1:3 rwm\nb *:* m\nc *:* m\n";
        assert!(v1_plan(&rules, Some(list)).is_empty());
        // Anything different (here: /dev/null lacking m) rewrites all.
        let other = list.replace("c 1:3 rwm", "c 1:3 rw");
        assert!(!v1_plan(&rules, Some(&other)).is_empty());
        // An allow-all cgroup shows only "a *:* rwm": never taken as a match.
        assert!(!v1_plan(&rules, Some("a *:* rwm\n")).is_empty());
    }

    #[test]
    fn reference_semantics() {
        let rules = rules(&resources(vec![])).unwrap();
        assert!(allows(&rules, Kind::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(allows(&rules, Kind::Block, 7, 7, ACC_MKNOD));
        assert!(!allows(&rules, Kind::Block, 7, 7, ACC_READ));
        assert!(!allows(&rules, Kind::Char, 1, 1, ACC_READ));
    }

    // ---- For real, on a cgroup2 hierarchy (this host's hybrid /sys/fs/cgroup/unified
    // will do: device programs need no controller).

    fn cgroup2_mount() -> Option<std::path::PathBuf> {
        let layout = crate::cgroups::Layout::detect().ok()?;
        let h = layout
            .hierarchies()
            .iter()
            .find(|h| h.version == crate::cgroups::Version::V2)?;
        Some(h.mount_point.clone())
    }

    fn attached_names(dir: &Path) -> Vec<String> {
        let fd = cgv2::open_dir(dir).unwrap();
        rt_sys::bpf::query_cgroup_device(fd.as_fd())
            .unwrap()
            .into_iter()
            .map(|id| {
                let p = rt_sys::bpf::prog_fd_by_id(id).unwrap();
                rt_sys::bpf::prog_name(p.as_fd()).unwrap()
            })
            .collect()
    }

    #[test]
    fn v2_program_loads_attaches_and_replaces() {
        use super::super::testing::{kmsg_node, may_run, try_in, Scratch};
        if !may_run("v2_program_loads_attaches_and_replaces") {
            return;
        }
        let mount = cgroup2_mount().expect("a cgroup2 hierarchy is mounted");
        let dir = Scratch::new(&mount, "bpf").unwrap();
        let d = &dir.0;
        let default = rules(&resources(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap()]))
        .unwrap();
        apply_v2(d, &default).unwrap();
        assert_eq!(attached_names(d), [PROG_NAME]);
        let (_nodes, kmsg) = kmsg_node("bpf-nodes");
        let kmsg = kmsg.display();
        let checks = [
            "true < /dev/null".to_string(),
            "true > /dev/zero".to_string(),
            format!("true < {kmsg}"),
            format!("true > {kmsg}"),
        ];
        assert_eq!(try_in(&[d], &checks), [true, true, false, false]);

        // An update replaces rt's program (never two of them), here allowing the node
        // for reading only.
        let mut more = default.clone();
        more.insert(
            1,
            parse(0, &dev(true, LinuxDeviceType::C, 1, 11, "r")).unwrap(),
        );
        apply_v2(d, &more).unwrap();
        assert_eq!(attached_names(d), [PROG_NAME]);
        assert_eq!(try_in(&[d], &checks), [true, true, true, false]);
    }
}
