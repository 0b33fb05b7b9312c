//! Resources on cgroup v2: one directory whose files are named `controller.knob`,
//! and the conversions from the config's v1-shaped values that runc and crun make.
//! Also the enabling of controllers down to the container's cgroup.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{
    check_usage, devices, invalid, page_size, v1, write_plan, Dir, Missing, Mode, Probe, Write,
};
use crate::cgroups::CgroupError;

pub(super) fn apply(dir: &Path, r: &LinuxResources, mode: Mode) -> Result<(), CgroupError> {
    let plan = plan(r, &Dir(dir))?;
    write_plan(dir, &plan, |w, source| missing(dir, w, source))?;
    if mode == Mode::Create || r.devices().is_some() {
        match devices::apply_v2(dir, &devices::rules(r)?) {
            // Without root, device programs cannot be loaded; the user namespace a
            // rootless container needs keeps it from host devices anyway (runc and
            // crun go on likewise).
            Err(CgroupError::Bpf {
                source: nix::Error::EPERM,
                ..
            }) if !nix::unistd::geteuid().is_root() => {
                log::warn!("device rules not applied: loading eBPF programs needs root");
            }
            res => res?,
        }
    }
    Ok(())
}

/// systemd enables a unit's controllers down its slices a little after it answers
/// SetUnitProperties: wait (up to `within`) until the ones `r` needs show in `dir`,
/// for those its parent has and systemd may still enable. A controller that does not
/// come is reported by [`apply`].
pub(super) fn await_controllers(dir: &Path, r: &LinuxResources, within: Duration) {
    let Ok(plan) = plan(r, &Dir(dir)) else {
        return;
    };
    let controllers = |d: &Path| fs::read_to_string(d.join("cgroup.controllers"));
    let parent = dir
        .parent()
        .and_then(|p| controllers(p).ok())
        .unwrap_or_default();
    let mut wanted: Vec<&str> = plan
        .iter()
        .filter_map(|w| w.file.split('.').next())
        .filter(|c| *c != "cgroup" && parent.split_whitespace().any(|p| p == *c))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let deadline = Instant::now() + within;
    loop {
        // Gone (the unit stopped with its process): nothing to wait for.
        let Ok(have) = controllers(dir) else {
            return;
        };
        if wanted
            .iter()
            .all(|c| have.split_whitespace().any(|h| h == *c))
            || Instant::now() > deadline
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Everything but devices, in runc's order; `unified` last, so it has the final word.
pub(super) fn plan(r: &LinuxResources, p: &dyn Probe) -> Result<Vec<Write>, CgroupError> {
    let mut w = v1::pids(r);
    if let Some(m) = r.memory() {
        w.extend(memory(m, p)?);
    }
    if let Some(b) = r.block_io() {
        w.extend(io(b, p)?);
    }
    if let Some(c) = r.cpu() {
        w.extend(cpu(c, p));
    }
    // cpuset.cpus and cpuset.mems are named as on v1.
    w.extend(v1::cpuset(r.cpu().as_ref()));
    w.extend(hugetlb(r)?);
    w.extend(rdma(r));
    if r.network().is_some() {
        log::warn!("linux.resources.network is ignored: cgroup v2 has no net_cls or net_prio");
    }
    w.extend(unified(r)?);
    Ok(w)
}

/// A missing file on v2 usually means its controller is not enabled for this cgroup.
fn missing(dir: &Path, w: &Write, source: std::io::Error) -> CgroupError {
    let controller = w.file.split('.').next().unwrap_or_default();
    let enabled = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    if controller != "cgroup" && !enabled.split_whitespace().any(|c| c == controller) {
        return CgroupError::NoController {
            field: w.field.to_string(),
            controller: controller.to_string(),
            path: dir.to_path_buf(),
        };
    }
    CgroupError::Write {
        path: dir.join(&w.file),
        value: w.value.clone(),
        source,
    }
}

/// runc's numToStr: 0 is "not set", -1 is "max".
fn limit_value(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// The config's `swap` is memory+swap (v1's memsw); v2's `memory.swap.max` is swap
/// alone. runc's ConvertMemorySwapToCgroupV2Value: 0 is "not set", -1 "max".
pub fn swap_v2(swap: i64, memory: i64) -> Result<i64, String> {
    match (swap, memory) {
        // Unlimited memory with swap left out: unlimited swap too, as on v1.
        (0, -1) => Ok(-1),
        (-1 | 0, _) => Ok(swap),
        (_, -1) => Ok(swap),
        (_, 0) => Err("a swap limit needs a memory limit".into()),
        (_, m) if m < 0 => Err(format!("invalid memory limit {m}")),
        (s, m) if s < m => Err(format!(
            "swap {s} is below the memory limit {m} (swap is memory+swap)"
        )),
        (s, m) => Ok(s - m),
    }
}

fn memory(m: &LinuxMemory, p: &dyn Probe) -> Result<Vec<Write>, CgroupError> {
    let mut w = vec![];
    let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
    let reservation = m.reservation().unwrap_or(0);
    if limit != 0 || swap != 0 || reservation != 0 {
        if m.check_before_update() == Some(true) {
            check_usage(p, "memory.current", Some(limit))?;
        }
        let v2 = swap_v2(swap, limit).map_err(|e| invalid("memory.swap", e))?;
        // An explicit swap equal to the limit means "no swap", which is "0" here.
        let value = limit_value(v2).or_else(|| (swap > 0).then(|| "0".into()));
        if let Some(value) = value {
            // Without swap accounting there is no file, and nothing to do for "no
            // limit" or "no swap".
            let missing = if value == "max" || value == "0" {
                Missing::Skip
            } else {
                Missing::Fail
            };
            w.push(Write::new("memory.swap.max", value, "memory.swap").missing(missing));
        }
        if let Some(v) = limit_value(limit) {
            w.push(Write::new("memory.max", v, "memory.limit"));
        }
        if let Some(v) = limit_value(reservation) {
            w.push(Write::new("memory.low", v, "memory.reservation"));
        }
    }
    // No v2 counterparts, as with runc.
    let unsupported = [
        ("swappiness", m.swappiness().is_some()),
        ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
        ("kernelTCP", m.kernel_tcp().is_some()),
    ];
    for (field, set) in unsupported {
        if set {
            log::warn!("linux.resources.memory.{field} is ignored: cgroup v2 has no such limit");
        }
    }
    Ok(w)
}

/// cpu.shares (2..262144, default 1024) to cpu.weight (1..10000, default 100): the
/// quadratic fit runc and crun use, which maps the defaults onto each other.
pub fn cpu_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        s if s <= 2 => 1,
        s if s >= 262144 => 10000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// blkio.weight (10..1000) to io.weight (1..10000), linearly, as runc does.
pub fn io_weight(weight: u16) -> Option<u64> {
    (10..=1000)
        .contains(&weight)
        .then(|| 1 + (weight as u64 - 10) * 9999 / 990)
}

fn cpu(c: &LinuxCpu, p: &dyn Probe) -> Vec<Write> {
    let mut w = vec![];
    if let Some(idle) = c.idle() {
        w.push(Write::new("cpu.idle", idle, "cpu.idle"));
    }
    if let Some(shares) = c.shares().filter(|&s| s != 0) {
        w.push(Write::new("cpu.weight", cpu_weight(shares), "cpu.shares"));
    }
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    let max = (quota.is_some() || period.is_some()).then(|| {
        // cpu.max takes both at once: what the config leaves out stays as it is
        // (at create: "max 100000").
        let current = p.read("cpu.max").unwrap_or_default();
        let mut current = current.split_whitespace();
        let (cur_quota, cur_period) = (current.next(), current.next());
        let quota = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            None => cur_quota.unwrap_or("max").to_string(),
        };
        let period = period
            .or_else(|| cur_period.and_then(|p| p.parse().ok()))
            .unwrap_or(100_000);
        Write::new("cpu.max", format!("{quota} {period}"), "cpu.quota")
    });
    // The burst must fit the quota: tried first, written again after cpu.max.
    let burst = c
        .burst()
        .map(|b| Write::new("cpu.max.burst", b, "cpu.burst").missing(Missing::Warn));
    match max {
        Some(max) => {
            w.extend(burst.clone().map(Write::tried_first));
            w.push(max);
            w.extend(burst);
        }
        None => w.extend(burst),
    }
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        log::warn!("linux.resources.cpu.realtime* is ignored: cgroup v2 has no real-time budget");
    }
    w
}

/// io: weights to BFQ's file when the kernel has BFQ (same range as blkio), else
/// to io.weight converted; throttles to io.max.
fn io(b: &LinuxBlockIo, p: &dyn Probe) -> Result<Vec<Write>, CgroupError> {
    let mut w = vec![];
    let bfq = p.read("io.bfq.weight");
    let iocost = p.exists("io.weight");
    // BFQ takes per-device weights when its file reads "default N" (kernel 5.4+).
    let bfq_devices = bfq.as_deref().is_some_and(|s| s.starts_with("default"));
    if let Some(weight) = b.weight().filter(|&v| v != 0) {
        let converted = io_weight(weight)
            .ok_or_else(|| invalid("blockIO.weight", format!("{weight} is not in 10..=1000")))?;
        if bfq.is_some() {
            w.push(Write::new("io.bfq.weight", weight, "blockIO.weight"));
        } else if iocost {
            w.push(Write::new("io.weight", converted, "blockIO.weight"));
        } else {
            log::warn!("linux.resources.blockIO.weight not set: no io.weight or io.bfq.weight");
        }
    }
    for d in b.weight_device().as_deref().unwrap_or_default() {
        let Some(weight) = d.weight().filter(|&v| v != 0) else {
            continue;
        };
        let dev = format!("{}:{}", d.major(), d.minor());
        if bfq_devices {
            w.push(Write::new(
                "io.bfq.weight",
                format!("{dev} {weight}"),
                "blockIO.weightDevice",
            ));
        } else if iocost {
            let converted = io_weight(weight).ok_or_else(|| {
                invalid(
                    "blockIO.weightDevice",
                    format!("{weight} is not in 10..=1000"),
                )
            })?;
            w.push(Write::new(
                "io.weight",
                format!("{dev} {converted}"),
                "blockIO.weightDevice",
            ));
        } else {
            log::warn!(
                "linux.resources.blockIO.weightDevice not set for {dev}: no per-device io weights"
            );
        }
    }
    let throttles = [
        (
            "rbps",
            b.throttle_read_bps_device(),
            "blockIO.throttleReadBpsDevice",
        ),
        (
            "wbps",
            b.throttle_write_bps_device(),
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            "riops",
            b.throttle_read_iops_device(),
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            "wiops",
            b.throttle_write_iops_device(),
            "blockIO.throttleWriteIOPSDevice",
        ),
    ];
    for (key, list, field) in throttles {
        for d in list.as_deref().unwrap_or_default() {
            let value = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            w.push(Write::new("io.max", value, field));
        }
    }
    Ok(w)
}

pub(super) fn hugetlb(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut w = vec![];
    for l in r.hugepage_limits().as_deref().unwrap_or_default() {
        let size = page_size(l.page_size())?;
        let value = limit_value(l.limit()).unwrap_or_else(|| "0".into());
        w.push(Write::new(
            format!("hugetlb.{size}.max"),
            &value,
            "hugepageLimits",
        ));
        w.push(
            Write::new(format!("hugetlb.{size}.rsvd.max"), value, "hugepageLimits")
                .missing(Missing::Skip),
        );
    }
    Ok(w)
}

/// `rdma.max` lines, the same on v1 and v2; devices sorted for a stable order.
pub(super) fn rdma(r: &LinuxResources) -> Vec<Write> {
    let Some(map) = r.rdma() else {
        return vec![];
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|dev| {
            let l = &map[dev];
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line += &format!(" hca_handle={h}");
            }
            if let Some(o) = l.hca_objects() {
                line += &format!(" hca_object={o}");
            }
            (line.len() > dev.len()).then(|| Write::new("rdma.max", line, "rdma"))
        })
        .collect()
}

/// `unified`: file names to values, written as given, one line per write (files
/// like io.max take one entry per write).
fn unified(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let Some(map) = r.unified() else {
        return Ok(vec![]);
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut w = vec![];
    for k in keys {
        if k.contains('/') || !k.contains('.') || k.starts_with('.') {
            return Err(invalid(
                format!("unified[{k:?}]"),
                "must name a file of the cgroup, like memory.high",
            ));
        }
        let lines: Vec<&str> = map[k].lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            w.push(Write::new(k.as_str(), &map[k], "unified"));
        }
        for line in lines {
            w.push(Write::new(k.as_str(), line, "unified"));
        }
    }
    Ok(w)
}

/// The controllers rt's limits use.
const CONTROLLERS: [&str; 8] = [
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "misc", "rdma",
];

/// Enable, in `cgroup.subtree_control` of each ancestor from the mount root down to
/// the parent, the controllers above that the ancestor has. A cgroup that holds
/// processes cannot (EBUSY, "no internal processes"): that is a warning, and the
/// limits that need the controller then fail, naming it, when they are applied.
pub(crate) fn enable_controllers(dir: &Path) {
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.join("cgroup.controllers").exists())
        .collect();
    chain.reverse();
    for anc in chain {
        let read = |f: &str| fs::read_to_string(anc.join(f)).unwrap_or_default();
        let (available, enabled) = (read("cgroup.controllers"), read("cgroup.subtree_control"));
        let has = |list: &str, c: &str| list.split_whitespace().any(|x| x == c);
        let want: Vec<String> = CONTROLLERS
            .iter()
            .filter(|c| has(&available, c) && !has(&enabled, c))
            .map(|c| format!("+{c}"))
            .collect();
        if want.is_empty() {
            continue;
        }
        let file = anc.join("cgroup.subtree_control");
        if let Err(e) = fs::write(&file, want.join(" ")) {
            if e.raw_os_error() == Some(libc::EBUSY) {
                log::warn!(
                    "cannot enable {} in {}: that cgroup holds processes",
                    want.join(" "),
                    file.display()
                );
                continue;
            }
            // One may be refused on its own (cpu with real-time tasks): try each.
            for c in &want {
                if let Err(e) = fs::write(&file, c) {
                    log::warn!("cannot enable {c} in {}: {e}", file.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        kmsg_node, may_run, pairs, some_disk, test_cgroup, try_in, Fake, Scratch,
    };
    use super::super::Invalid;
    use super::*;

    fn resources(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn shares_to_weight() {
        for (shares, weight) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (512, 59),
            (1024, 100),
            (2048, 174),
        ] {
            assert_eq!(cpu_weight(shares), weight, "shares {shares}");
        }
        assert_eq!(cpu_weight(262143), 10000);
        assert_eq!(cpu_weight(1 << 20), 10000);
    }

    #[test]
    fn blkio_weight_to_io_weight() {
        assert_eq!(io_weight(10), Some(1));
        assert_eq!(io_weight(500), Some(4950));
        assert_eq!(io_weight(1000), Some(10000));
        assert_eq!(io_weight(9), None);
        assert_eq!(io_weight(1001), None);
    }

    #[test]
    fn swap_conversion_matches_runc() {
        assert_eq!(swap_v2(0, -1), Ok(-1));
        assert_eq!(swap_v2(0, 100), Ok(0));
        assert_eq!(swap_v2(-1, 100), Ok(-1));
        assert_eq!(swap_v2(300, -1), Ok(300));
        assert_eq!(swap_v2(300, 100), Ok(200));
        assert_eq!(swap_v2(100, 100), Ok(0));
        assert!(swap_v2(300, 0).is_err());
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(300, -5).is_err());
    }

    #[test]
    fn memory_plan() {
        let r = resources(
            serde_json::json!({"memory": {"limit": 1000, "swap": 3000, "reservation": 500}}),
        );
        let plan = plan(&r, &Fake::default()).unwrap();
        assert_eq!(
            pairs(&plan),
            [
                ("memory.swap.max", "2000"),
                ("memory.max", "1000"),
                ("memory.low", "500")
            ]
        );
        assert_eq!(plan[0].missing, Missing::Fail);
        let r = resources(serde_json::json!({"memory": {"limit": 1000, "swap": 1000}}));
        let plan = super::plan(&r, &Fake::default()).unwrap();
        assert_eq!(
            pairs(&plan),
            [("memory.swap.max", "0"), ("memory.max", "1000")]
        );
        assert_eq!(plan[0].missing, Missing::Skip);
        let r = resources(serde_json::json!({"memory": {"limit": -1}}));
        let plan = super::plan(&r, &Fake::default()).unwrap();
        assert_eq!(
            pairs(&plan),
            [("memory.swap.max", "max"), ("memory.max", "max")]
        );
        let r = resources(serde_json::json!({"memory": {"swap": 1000}}));
        assert!(super::plan(&r, &Fake::default()).is_err());
        // Ignored on v2 (with a warning), like runc.
        let r = resources(serde_json::json!({"memory": {"swappiness": 10, "kernelTCP": 5}}));
        assert!(super::plan(&r, &Fake::default()).unwrap().is_empty());
    }

    #[test]
    fn cpu_plan() {
        let fresh = Fake::with(&[("cpu.max", "max 100000\n")]);
        let r = resources(
            serde_json::json!({"cpu": {"shares": 1024, "quota": 50000, "burst": 100, "idle": 0}}),
        );
        let plan = plan(&r, &fresh).unwrap();
        assert_eq!(
            pairs(&plan),
            [
                ("cpu.idle", "0"),
                ("cpu.weight", "100"),
                ("cpu.max.burst", "100"),
                ("cpu.max", "50000 100000"),
                ("cpu.max.burst", "100"),
            ]
        );
        assert_eq!(plan[2].invalid, Invalid::Retried);
        let r = resources(serde_json::json!({"cpu": {"quota": -1, "period": 20000}}));
        assert_eq!(
            pairs(&super::plan(&r, &fresh).unwrap()),
            [("cpu.max", "max 20000")]
        );
        // An update of the period alone keeps the quota in force.
        let limited = Fake::with(&[("cpu.max", "30000 100000\n")]);
        let r = resources(serde_json::json!({"cpu": {"period": 50000}}));
        assert_eq!(
            pairs(&super::plan(&r, &limited).unwrap()),
            [("cpu.max", "30000 50000")]
        );
        let r = resources(serde_json::json!({"cpu": {"cpus": "0-3", "mems": "0"}}));
        assert_eq!(
            pairs(&super::plan(&r, &fresh).unwrap()),
            [("cpuset.cpus", "0-3"), ("cpuset.mems", "0")]
        );
    }

    #[test]
    fn io_plan() {
        let r = resources(serde_json::json!({"blockIO": {
            "weight": 500,
            "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}]
        }}));
        let throttles = [
            ("io.max", "8:0 rbps=1048576"),
            ("io.max", "8:0 wbps=2097152"),
            ("io.max", "8:16 riops=100"),
            ("io.max", "8:16 wiops=200"),
        ];
        let iocost = Fake::with(&[("io.weight", "default 100\n")]);
        let plan = plan(&r, &iocost).unwrap();
        let mut want = vec![("io.weight", "4950"), ("io.weight", "8:0 910")];
        want.extend(throttles);
        assert_eq!(pairs(&plan), want);
        let bfq = Fake::with(&[
            ("io.bfq.weight", "default 100\n"),
            ("io.weight", "default 100\n"),
        ]);
        let plan = super::plan(&r, &bfq).unwrap();
        assert_eq!(
            pairs(&plan)[..2],
            [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 100")]
        );
        // Old BFQ (a bare number): no per-device weights there, io.weight takes them.
        let old_bfq = Fake::with(&[("io.bfq.weight", "100\n"), ("io.weight", "default 100\n")]);
        let plan = super::plan(&r, &old_bfq).unwrap();
        assert_eq!(
            pairs(&plan)[..2],
            [("io.bfq.weight", "500"), ("io.weight", "8:0 910")]
        );
        // Neither: only the throttles, which must exist.
        assert_eq!(
            pairs(&super::plan(&r, &Fake::default()).unwrap()),
            throttles
        );
        let r = resources(serde_json::json!({"blockIO": {"weight": 5}}));
        assert!(super::plan(&r, &iocost).is_err());
    }

    #[test]
    fn pids_hugetlb_rdma_unified() {
        let r = resources(serde_json::json!({
            "pids": {"limit": 10},
            "hugepageLimits": [{"pageSize": "1GB", "limit": -1}, {"pageSize": "2MB", "limit": 2097152}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}, "mlx4_0": {"hcaHandles": 1, "hcaObjects": 9}},
            "unified": {"memory.high": "5000", "io.max": "8:0 rbps=1\n8:16 wbps=2\n"}
        }));
        let plan = plan(&r, &Fake::default()).unwrap();
        assert_eq!(
            pairs(&plan),
            [
                ("pids.max", "10"),
                ("hugetlb.1GB.max", "max"),
                ("hugetlb.1GB.rsvd.max", "max"),
                ("hugetlb.2MB.max", "2097152"),
                ("hugetlb.2MB.rsvd.max", "2097152"),
                ("rdma.max", "mlx4_0 hca_handle=1 hca_object=9"),
                ("rdma.max", "mlx5_1 hca_handle=3"),
                ("io.max", "8:0 rbps=1"),
                ("io.max", "8:16 wbps=2"),
                ("memory.high", "5000"),
            ]
        );
        for bad in ["../memory.high", "memory", ".x"] {
            let r = resources(serde_json::json!({"unified": {bad: "1"}}));
            assert!(super::plan(&r, &Fake::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_files_name_the_controller() {
        let dir = Scratch::new(&std::env::temp_dir(), "v2-missing").unwrap();
        fs::write(dir.0.join("cgroup.controllers"), "cpu pids\n").unwrap();
        let w = Write::new("memory.max", "1", "memory.limit");
        let e = missing(&dir.0, &w, std::io::ErrorKind::NotFound.into());
        assert!(
            e.to_string()
                .starts_with("linux.resources.memory.limit needs the memory controller"),
            "{e}"
        );
        let w = Write::new("pids.nonsense", "1", "unified");
        let e = missing(&dir.0, &w, std::io::ErrorKind::NotFound.into());
        assert!(matches!(e, CgroupError::Write { .. }), "{e}");
    }

    /// On a v2 host (or the hack/vm v2 guest): limits land in the files, devices
    /// are filtered, and an update changes only what it names.
    #[test]
    fn applies_on_a_v2_host() {
        if !Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists() {
            eprintln!("note: applies_on_a_v2_host skipped: /sys/fs/cgroup is not cgroup v2");
            return;
        }
        if !may_run("applies_on_a_v2_host") {
            return;
        }
        let c = test_cgroup("v2").expect("a v2 cgroup");
        let d = c.record.dirs[0].path.clone();
        let controllers = fs::read_to_string(d.join("cgroup.controllers")).unwrap();
        for want in ["memory", "pids", "cpu", "io", "cpuset"] {
            assert!(
                controllers.contains(want),
                "{want} not enabled: {controllers}"
            );
        }
        let (major, minor) = some_disk();
        let r = resources(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 1048576, "swap": 100663296},
            "cpu": {"shares": 2048, "quota": 20000, "period": 50000, "burst": 1000,
                    "cpus": "0", "mems": "0", "idle": 0},
            "pids": {"limit": 7},
            "blockIO": {"weight": 500,
                        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]},
            "devices": [{"allow": false, "access": "rwm"}],
            "unified": {"memory.high": "33554432"}
        }));
        super::super::apply(&c.record, &r).unwrap();
        let read = |f: &str| fs::read_to_string(d.join(f)).unwrap().trim().to_string();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.low"), "1048576");
        if d.join("memory.swap.max").exists() {
            assert_eq!(read("memory.swap.max"), "33554432");
        }
        assert_eq!(read("memory.high"), "33554432");
        assert_eq!(read("cpu.weight"), "174");
        assert_eq!(read("cpu.max"), "20000 50000");
        if d.join("cpu.max.burst").exists() {
            assert_eq!(read("cpu.max.burst"), "1000");
        }
        assert_eq!(read("cpuset.cpus"), "0");
        assert_eq!(read("pids.max"), "7");
        let io_max = read("io.max");
        assert!(
            io_max.starts_with(&format!("{major}:{minor} rbps=1048576 ")),
            "{io_max}"
        );
        assert!(io_max.ends_with("wiops=100"), "{io_max}");
        let (_nodes, kmsg) = kmsg_node("v2-nodes");
        let checks = [
            "true > /dev/null".to_string(),
            format!("true < {}", kmsg.display()),
        ];
        assert_eq!(try_in(&[d.as_path()], &checks), [true, false]);

        let r = resources(serde_json::json!({"cpu": {"period": 100000}}));
        super::super::apply_update(&c.record, &r).unwrap();
        assert_eq!(read("cpu.max"), "20000 100000");
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(try_in(&[d.as_path()], &checks), [true, false]);
        // A controller the cgroup lacks is named in the error.
        let r = resources(serde_json::json!({"unified": {"nonesuch.max": "1"}}));
        let err = super::super::apply_update(&c.record, &r).unwrap_err();
        assert!(matches!(err, CgroupError::NoController { .. }), "{err}");
    }

    /// A parent holding processes cannot give its children controllers: create goes
    /// on, and the limit that needed one fails naming it.
    #[test]
    fn busy_parent_leaves_limits_to_fail_clearly() {
        if !Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists() {
            eprintln!("note: skipped: /sys/fs/cgroup is not cgroup v2");
            return;
        }
        if !may_run("busy_parent_leaves_limits_to_fail_clearly") {
            return;
        }
        let parent = Scratch::new(Path::new("/sys/fs/cgroup"), "busy").unwrap();
        let mut sleeper = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec sleep 30",
                parent.0.display()
            ))
            .spawn()
            .unwrap();
        let procs = parent.0.join("cgroup.procs");
        while fs::read_to_string(&procs).unwrap().trim().is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let c = parent.0.join("c");
        fs::create_dir(&c).unwrap();
        enable_controllers(&c);
        let record = crate::cgroups::CgroupRecord {
            path: "/busy/c".into(),
            dirs: vec![crate::cgroups::CgroupDir {
                version: crate::cgroups::Version::V2,
                controllers: vec![],
                path: c.clone(),
                created_from: None,
            }],
            systemd: None,
        };
        let r = resources(serde_json::json!({"memory": {"limit": 67108864}}));
        let res = super::super::apply_update(&record, &r);
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        match res {
            Err(CgroupError::NoController { controller, .. }) => assert_eq!(controller, "memory"),
            other => panic!("{other:?}"),
        }
    }
}
