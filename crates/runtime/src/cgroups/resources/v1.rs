//! Resources on cgroup v1: one plan per controller, written into the directory of
//! the hierarchy that has that controller.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{
    check_usage, devices, invalid, missing_file, page_size, write_plan, Dir, Invalid, Missing,
    Mode, Probe, Write,
};
use crate::cgroups::{CgroupDir, CgroupError};

/// Controllers in the order runc sets them (cpuset first: tasks need cpus and mems).
pub(super) fn apply(
    dirs: &[&CgroupDir],
    unified: Option<&Path>,
    cgroup_path: &str,
    r: &LinuxResources,
    mode: Mode,
) -> Result<(), CgroupError> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(invalid(
            "unified",
            "needs cgroup v2, and this host's controllers are on cgroup v1",
        ));
    }
    let dir_of = |controller: &str| -> Option<&Path> {
        dirs.iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    };
    let none = Absent(PathBuf::from(cgroup_path));
    type PlanFn<'a> = Box<dyn Fn(&dyn Probe) -> Result<Vec<Write>, CgroupError> + 'a>;
    let plans: Vec<(&str, &str, PlanFn)> = vec![
        (
            "cpuset",
            "cpu.cpus",
            Box::new(|_| Ok(cpuset(r.cpu().as_ref()))),
        ),
        ("devices", "devices", Box::new(|p| devices_plan(r, mode, p))),
        (
            "memory",
            "memory",
            Box::new(|p| r.memory().as_ref().map_or(Ok(vec![]), |m| memory(m, p))),
        ),
        ("cpu", "cpu", Box::new(|_| Ok(cpu(r.cpu().as_ref())))),
        ("pids", "pids", Box::new(|_| Ok(pids(r)))),
        (
            "blkio",
            "blockIO",
            Box::new(|p| Ok(r.block_io().as_ref().map_or(vec![], |b| blkio(b, p)))),
        ),
        ("hugetlb", "hugepageLimits", Box::new(|_| hugetlb(r))),
        ("net_cls", "network.classID", Box::new(|_| Ok(net_cls(r)))),
        (
            "net_prio",
            "network.priorities",
            Box::new(|_| Ok(net_prio(r))),
        ),
        ("rdma", "rdma", Box::new(|_| Ok(super::v2::rdma(r)))),
    ];
    for (controller, field, plan) in plans {
        match dir_of(controller) {
            Some(dir) => write_plan(dir, &plan(&Dir(dir))?, missing_file(dir))?,
            None => {
                if plan(&none)?.is_empty() {
                    continue;
                }
                if let Some(u) =
                    unified.filter(|u| controller == "hugetlb" && unified_offers(u, controller))
                {
                    super::v2::enable_controllers(u);
                    write_plan(u, &super::v2::hugetlb(r)?, missing_file(u))?;
                    continue;
                }
                if controller.starts_with("net_") {
                    log::warn!(
                        "linux.resources.{field} not set: no {controller} hierarchy is mounted"
                    );
                    continue;
                }
                return Err(CgroupError::NoController {
                    field: field.to_string(),
                    controller: controller.to_string(),
                    path: none.0,
                });
            }
        }
    }
    Ok(())
}

/// Whether the v2 hierarchy of a hybrid host has `controller` (its root lists it).
fn unified_offers(dir: &Path, controller: &str) -> bool {
    let root = dir
        .ancestors()
        .take_while(|a| a.join("cgroup.controllers").exists())
        .last();
    root.and_then(|r| std::fs::read_to_string(r.join("cgroup.controllers")).ok())
        .is_some_and(|c| c.split_whitespace().any(|x| x == controller))
}

/// The probe for a hierarchy that is not mounted: nothing exists.
struct Absent(PathBuf);

impl Probe for Absent {
    fn exists(&self, _: &str) -> bool {
        false
    }
    fn read(&self, _: &str) -> Option<String> {
        None
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

fn devices_plan(r: &LinuxResources, mode: Mode, p: &dyn Probe) -> Result<Vec<Write>, CgroupError> {
    if mode == Mode::Update && r.devices().is_none() {
        return Ok(vec![]);
    }
    let rules = devices::rules(r)?;
    devices::v1_check(&rules)?;
    Ok(devices::v1_plan(&rules, p.read("devices.list").as_deref()))
}

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// Memory. 0 means "not set" for the limits, as in runc; -1 is unlimited.
pub(super) fn memory(m: &LinuxMemory, p: &dyn Probe) -> Result<Vec<Write>, CgroupError> {
    let mut w = vec![];
    let limit = m.limit().filter(|&v| v != 0);
    let mut swap = m.swap().filter(|&v| v != 0);
    if m.check_before_update() == Some(true) {
        check_usage(p, "memory.usage_in_bytes", limit)?;
    }
    // Unlimited memory with swap left out means unlimited swap too; otherwise the
    // kernel refuses a limit above the memsw one.
    if limit == Some(-1) && swap.is_none() && p.exists(MEMSW) {
        swap = Some(-1);
    }
    let limit_w = limit.map(|l| Write::new(LIMIT, l, "memory.limit"));
    let swap_w = swap.map(|s| {
        // Without swap accounting there is no memsw file: "unlimited" needs no write.
        let missing = if s == -1 {
            Missing::Skip
        } else {
            Missing::Fail
        };
        Write::new(MEMSW, s, "memory.swap").missing(missing)
    });
    // The kernel keeps limit <= memsw at every step: when memsw grows past the
    // current limit it goes first, when it shrinks the limit goes first.
    let swap_first = match (limit, swap) {
        (Some(_), Some(s)) => s == -1 || p.read_u64(LIMIT).is_some_and(|cur| cur < s as u64),
        _ => false,
    };
    if swap_first {
        w.extend(swap_w);
        w.extend(limit_w);
    } else {
        w.extend(limit_w);
        w.extend(swap_w);
    }
    if let Some(v) = m.reservation().filter(|&v| v != 0) {
        w.push(Write::new(
            "memory.soft_limit_in_bytes",
            v,
            "memory.reservation",
        ));
    }
    if let Some(v) = m.kernel_tcp() {
        w.push(
            Write::new("memory.kmem.tcp.limit_in_bytes", v, "memory.kernelTCP")
                .missing(Missing::Warn),
        );
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(invalid(
                "memory.swappiness",
                format!("{v} is not in 0..=100"),
            ));
        }
        w.push(Write::new("memory.swappiness", v, "memory.swappiness"));
    }
    if let Some(off) = m.disable_oom_killer() {
        w.push(Write::new(
            "memory.oom_control",
            u8::from(off),
            "memory.disableOOMKiller",
        ));
    }
    if let Some(h) = m.use_hierarchy() {
        // Kernels since 5.17 are always hierarchical and refuse 0.
        w.push(
            Write::new("memory.use_hierarchy", u8::from(h), "memory.useHierarchy")
                .missing(Missing::Skip)
                .invalid(Invalid::Warn),
        );
    }
    Ok(w)
}

/// The cpu controller. Values of 0 mean "not set", as in runc.
pub(super) fn cpu(c: Option<&LinuxCpu>) -> Vec<Write> {
    let Some(c) = c else {
        return vec![];
    };
    let mut w = vec![];
    if let Some(shares) = c.shares().filter(|&v| v != 0) {
        let mut s = Write::new("cpu.shares", shares, "cpu.shares");
        s.read_back = true;
        w.push(s);
    }
    // The kernel checks period and burst against the quota (and the parent's
    // bandwidth) as each is written: both may be refused before the new quota is in,
    // so they are tried first and written again after it.
    let quota = c.quota().filter(|&v| v != 0);
    let period_w = c
        .period()
        .filter(|&v| v != 0)
        .map(|p| Write::new("cpu.cfs_period_us", p, "cpu.period"));
    let burst_w = c
        .burst()
        .map(|b| Write::new("cpu.cfs_burst_us", b, "cpu.burst").missing(Missing::Warn));
    match quota {
        Some(q) => {
            w.extend(period_w.clone().map(Write::tried_first));
            w.extend(burst_w.clone().map(Write::tried_first));
            w.push(Write::new("cpu.cfs_quota_us", q, "cpu.quota"));
            w.extend(period_w);
            w.extend(burst_w);
        }
        None => w.extend(period_w.into_iter().chain(burst_w)),
    }
    // The same dance for the real-time budget: runtime must fit in the period.
    let rt_period = c
        .realtime_period()
        .filter(|&v| v != 0)
        .map(|p| Write::new("cpu.rt_period_us", p, "cpu.realtimePeriod"));
    match c.realtime_runtime().filter(|&v| v != 0) {
        Some(rt) => {
            w.extend(rt_period.clone().map(Write::tried_first));
            w.push(Write::new("cpu.rt_runtime_us", rt, "cpu.realtimeRuntime"));
            w.extend(rt_period);
        }
        None => w.extend(rt_period),
    }
    if let Some(idle) = c.idle() {
        w.push(Write::new("cpu.idle", idle, "cpu.idle"));
    }
    w
}

pub(super) fn cpuset(c: Option<&LinuxCpu>) -> Vec<Write> {
    let Some(c) = c else {
        return vec![];
    };
    let mut w = vec![];
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        w.push(Write::new("cpuset.cpus", cpus, "cpu.cpus"));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        w.push(Write::new("cpuset.mems", mems, "cpu.mems"));
    }
    w
}

/// `pids.max`: a positive limit, or "max" for a negative one. oci-spec reads an
/// absent limit as 0, so 0 leaves the limit alone (runc before 1.4 did the same).
pub(super) fn pids(r: &LinuxResources) -> Vec<Write> {
    match r.pids().map(|p| p.limit()) {
        Some(l) if l > 0 => vec![Write::new("pids.max", l, "pids.limit")],
        Some(l) if l < 0 => vec![Write::new("pids.max", "max", "pids.limit")],
        _ => vec![],
    }
}

/// blkio. Weights go to CFQ's files or BFQ's, whichever the kernel has, and are
/// skipped when it has neither (no proportional scheduler); throttles must exist.
pub(super) fn blkio(b: &LinuxBlockIo, p: &dyn Probe) -> Vec<Write> {
    let mut w = vec![];
    let (weight, weight_device) = if p.exists("blkio.weight") {
        (Some("blkio.weight"), Some("blkio.weight_device"))
    } else if p.exists("blkio.bfq.weight") {
        (Some("blkio.bfq.weight"), Some("blkio.bfq.weight_device"))
    } else {
        (None, None)
    };
    let skipped = |what: &str| log::debug!("blockIO.{what} not set: no CFQ or BFQ weight files");
    if let Some(v) = b.weight().filter(|&v| v != 0) {
        match weight {
            Some(f) => w.push(Write::new(f, v, "blockIO.weight")),
            None => skipped("weight"),
        }
    }
    if let Some(v) = b.leaf_weight().filter(|&v| v != 0) {
        w.push(Write::new("blkio.leaf_weight", v, "blockIO.leafWeight").missing(Missing::Skip));
    }
    for d in b.weight_device().as_deref().unwrap_or_default() {
        if let Some(v) = d.weight().filter(|&v| v != 0) {
            match weight_device {
                Some(f) => w.push(Write::new(
                    f,
                    format!("{}:{} {v}", d.major(), d.minor()),
                    "blockIO.weightDevice",
                )),
                None => skipped("weightDevice"),
            }
        }
        if let Some(v) = d.leaf_weight().filter(|&v| v != 0) {
            w.push(
                Write::new(
                    "blkio.leaf_weight_device",
                    format!("{}:{} {v}", d.major(), d.minor()),
                    "blockIO.weightDevice",
                )
                .missing(Missing::Skip),
            );
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
            "blockIO.throttleReadBpsDevice",
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
            "blockIO.throttleWriteIOPSDevice",
        ),
    ];
    for (file, list, field) in throttles {
        for d in list.as_deref().unwrap_or_default() {
            w.push(Write::new(
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                field,
            ));
        }
    }
    w
}

/// `hugetlb.<size>.limit_in_bytes`, and the reservation limit where the kernel has it.
pub(super) fn hugetlb(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut w = vec![];
    for l in r.hugepage_limits().as_deref().unwrap_or_default() {
        let size = page_size(l.page_size())?;
        let field = "hugepageLimits";
        w.push(Write::new(
            format!("hugetlb.{size}.limit_in_bytes"),
            l.limit(),
            field,
        ));
        w.push(
            Write::new(
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                l.limit(),
                field,
            )
            .missing(Missing::Skip),
        );
    }
    Ok(w)
}

fn net_cls(r: &LinuxResources) -> Vec<Write> {
    let class = r.network().as_ref().and_then(|n| n.class_id());
    class
        .filter(|&c| c != 0)
        .map(|c| Write::new("net_cls.classid", c, "network.classID"))
        .into_iter()
        .collect()
}

fn net_prio(r: &LinuxResources) -> Vec<Write> {
    let prios = r.network().as_ref().and_then(|n| n.priorities().clone());
    prios
        .unwrap_or_default()
        .iter()
        .map(|p| {
            Write::new(
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                "network.priorities",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        kmsg_node, may_run, pairs, some_disk, test_cgroup, try_in, Fake, TestCgroup,
    };
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
    };
    use std::fs;

    fn mem(limit: i64, swap: Option<i64>) -> LinuxMemory {
        let mut m = LinuxMemoryBuilder::default().limit(limit).build().unwrap();
        m.set_swap(swap);
        m
    }

    #[test]
    fn memory_swap_order_follows_the_direction() {
        let cur = Fake::with(&[(LIMIT, "1000"), (MEMSW, "2000")]);
        // Growing: memsw first.
        let plan = memory(&mem(3000, Some(4000)), &cur).unwrap();
        assert_eq!(pairs(&plan), [(MEMSW, "4000"), (LIMIT, "3000")]);
        // Shrinking below the current limit: limit first.
        let plan = memory(&mem(100, Some(200)), &cur).unwrap();
        assert_eq!(pairs(&plan), [(LIMIT, "100"), (MEMSW, "200")]);
        // Unlimited swap always first.
        let plan = memory(&mem(100, Some(-1)), &cur).unwrap();
        assert_eq!(pairs(&plan), [(MEMSW, "-1"), (LIMIT, "100")]);
        // Unlimited memory takes swap along when it can.
        let plan = memory(&mem(-1, None), &cur).unwrap();
        assert_eq!(pairs(&plan), [(MEMSW, "-1"), (LIMIT, "-1")]);
        let plan = memory(&mem(-1, None), &Fake::with(&[(LIMIT, "1")])).unwrap();
        assert_eq!(pairs(&plan), [(LIMIT, "-1")]);
        // 0 is "not set".
        assert!(memory(&mem(0, Some(0)), &cur).unwrap().is_empty());
    }

    #[test]
    fn memory_knobs() {
        let m = LinuxMemoryBuilder::default()
            .reservation(10i64)
            .kernel_tcp(20i64)
            .swappiness(60u64)
            .disable_oom_killer(true)
            .use_hierarchy(true)
            .build()
            .unwrap();
        let plan = memory(&m, &Fake::default()).unwrap();
        assert_eq!(
            pairs(&plan),
            [
                ("memory.soft_limit_in_bytes", "10"),
                ("memory.kmem.tcp.limit_in_bytes", "20"),
                ("memory.swappiness", "60"),
                ("memory.oom_control", "1"),
                ("memory.use_hierarchy", "1"),
            ]
        );
        assert_eq!(plan[1].missing, Missing::Warn);
        let bad = LinuxMemoryBuilder::default()
            .swappiness(101u64)
            .build()
            .unwrap();
        assert!(memory(&bad, &Fake::default()).is_err());
    }

    #[test]
    fn check_before_update_refuses_limits_below_usage() {
        let m = LinuxMemoryBuilder::default()
            .limit(100i64)
            .check_before_update(true)
            .build()
            .unwrap();
        let busy = Fake::with(&[("memory.usage_in_bytes", "4096")]);
        assert!(matches!(
            memory(&m, &busy),
            Err(CgroupError::MemoryInUse { usage: 4096, .. })
        ));
        let idle = Fake::with(&[("memory.usage_in_bytes", "50")]);
        assert_eq!(pairs(&memory(&m, &idle).unwrap()), [(LIMIT, "100")]);
    }

    #[test]
    fn cpu_quota_period_and_burst_order() {
        let c = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50000i64)
            .period(100000u64)
            .burst(1000u64)
            .realtime_period(1000000u64)
            .realtime_runtime(950000i64)
            .idle(1i64)
            .build()
            .unwrap();
        let plan = cpu(Some(&c));
        assert_eq!(
            pairs(&plan),
            [
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_burst_us", "1000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_burst_us", "1000"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.rt_runtime_us", "950000"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.idle", "1"),
            ]
        );
        assert!(plan[0].read_back);
        assert_eq!(plan[1].invalid, Invalid::Retried);
        assert_eq!(plan[4].invalid, Invalid::Fail);
        // A period alone must succeed on its own.
        let c = LinuxCpuBuilder::default().period(20000u64).build().unwrap();
        let plan = cpu(Some(&c));
        assert_eq!(pairs(&plan), [("cpu.cfs_period_us", "20000")]);
        assert_eq!(plan[0].invalid, Invalid::Fail);
    }

    #[test]
    fn cpuset_and_pids() {
        let c = LinuxCpuBuilder::default()
            .cpus("0-1")
            .mems("")
            .build()
            .unwrap();
        assert_eq!(pairs(&cpuset(Some(&c))), [("cpuset.cpus", "0-1")]);
        let mut r = LinuxResources::default();
        for (limit, want) in [(5, Some("5")), (-1, Some("max")), (0, None)] {
            r.set_pids(Some(
                LinuxPidsBuilder::default().limit(limit).build().unwrap(),
            ));
            let plan = pids(&r);
            assert_eq!(plan.first().map(|w| w.value.as_str()), want);
        }
    }

    fn throttle(major: i64, minor: i64, rate: u64) -> oci_spec::runtime::LinuxThrottleDevice {
        LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(rate)
            .build()
            .unwrap()
    }

    #[test]
    fn blkio_weights_follow_the_scheduler() {
        let b = LinuxBlockIoBuilder::default()
            .weight(300u16)
            .leaf_weight(200u16)
            .weight_device(vec![LinuxWeightDeviceBuilder::default()
                .major(8)
                .minor(0)
                .weight(400u16)
                .build()
                .unwrap()])
            .throttle_read_bps_device(vec![throttle(8, 0, 1048576)])
            .throttle_write_iops_device(vec![throttle(8, 16, 100)])
            .build()
            .unwrap();
        let cfq = Fake::with(&[("blkio.weight", "500")]);
        assert_eq!(
            pairs(&blkio(&b, &cfq)),
            [
                ("blkio.weight", "300"),
                ("blkio.leaf_weight", "200"),
                ("blkio.weight_device", "8:0 400"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio.throttle.write_iops_device", "8:16 100"),
            ]
        );
        let bfq = Fake::with(&[("blkio.bfq.weight", "100")]);
        let plan = blkio(&b, &bfq);
        assert_eq!(plan[0].file, "blkio.bfq.weight");
        assert_eq!(plan[2].file, "blkio.bfq.weight_device");
        // Neither: weights are dropped, throttles stay and must exist.
        let plan = blkio(&b, &Fake::default());
        assert_eq!(
            pairs(&plan),
            [
                ("blkio.leaf_weight", "200"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio.throttle.write_iops_device", "8:16 100"),
            ]
        );
        assert_eq!(plan[0].missing, Missing::Skip);
        assert_eq!(plan[1].missing, Missing::Fail);
    }

    fn resources(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hugetlb_network_rdma() {
        let r = resources(serde_json::json!({
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 100}}
        }));
        let plan = hugetlb(&r).unwrap();
        assert_eq!(
            pairs(&plan),
            [
                ("hugetlb.2MB.limit_in_bytes", "4194304"),
                ("hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
            ]
        );
        assert_eq!(pairs(&net_cls(&r)), [("net_cls.classid", "1048577")]);
        assert_eq!(pairs(&net_prio(&r)), [("net_prio.ifpriomap", "eth0 5")]);
        let bad =
            resources(serde_json::json!({"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]}));
        assert!(hugetlb(&bad).is_err());
    }

    // ---- On this host's v1 hierarchies, as root.

    fn dir<'a>(c: &'a TestCgroup, controller: &str) -> &'a Path {
        &c.record
            .dirs
            .iter()
            .find(|d| d.controllers.iter().any(|x| x == controller))
            .unwrap_or_else(|| panic!("no {controller} hierarchy"))
            .path
    }

    fn read(dir: &Path, file: &str) -> String {
        fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_string()
    }

    fn host_is_v1() -> bool {
        let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
        if !v1 {
            eprintln!("note: skipped: this host has no v1 memory hierarchy");
        }
        v1
    }

    #[test]
    fn applies_on_this_hosts_v1() {
        if !may_run("applies_on_this_hosts_v1") || !host_is_v1() {
            return;
        }
        let c = test_cgroup("apply").expect("v1 hierarchies");
        let disk = some_disk();
        let r = resources(serde_json::json!({
            "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432,
                       "swappiness": 10, "disableOOMKiller": false},
            "cpu": {"shares": 512, "quota": 20000, "period": 50000, "burst": 1000,
                    "cpus": "0", "mems": "0", "idle": 0},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500,
                        "throttleReadBpsDevice": [{"major": disk.0, "minor": disk.1, "rate": 1048576}]},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}],
            "network": {"classID": 1}
        }));
        super::super::apply(&c.record, &r).unwrap();
        let m = dir(&c, "memory");
        assert_eq!(read(m, LIMIT), "67108864");
        assert_eq!(read(m, MEMSW), "134217728");
        assert_eq!(read(m, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(m, "memory.swappiness"), "10");
        let cpu_dir = dir(&c, "cpu");
        assert_eq!(read(cpu_dir, "cpu.shares"), "512");
        assert_eq!(read(cpu_dir, "cpu.cfs_quota_us"), "20000");
        assert_eq!(read(cpu_dir, "cpu.cfs_period_us"), "50000");
        assert_eq!(read(cpu_dir, "cpu.cfs_burst_us"), "1000");
        assert_eq!(read(dir(&c, "cpuset"), "cpuset.cpus"), "0");
        assert_eq!(read(dir(&c, "pids"), "pids.max"), "42");
        assert_eq!(
            read(dir(&c, "blkio"), "blkio.throttle.read_bps_device"),
            format!("{}:{} 1048576", disk.0, disk.1)
        );
        let list = read(dir(&c, "devices"), "devices.list");
        assert!(list.lines().any(|l| l == "b 7:0 r"), "{list}");
        assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
        assert!(!list.contains("a *:*"), "{list}");

        // Shrinking memory and swap together: limit first, or the kernel refuses.
        let update = resources(serde_json::json!({
            "memory": {"limit": 33554432, "swap": 50331648},
            "cpu": {"quota": -1},
            "pids": {"limit": -1}
        }));
        super::super::apply_update(&c.record, &update).unwrap();
        assert_eq!(read(m, LIMIT), "33554432");
        assert_eq!(read(m, MEMSW), "50331648");
        assert_eq!(read(cpu_dir, "cpu.cfs_quota_us"), "-1");
        assert_eq!(read(dir(&c, "pids"), "pids.max"), "max");
        // And growing them: memsw first.
        let update =
            resources(serde_json::json!({"memory": {"limit": 268435456, "swap": 536870912}}));
        super::super::apply_update(&c.record, &update).unwrap();
        assert_eq!(read(m, LIMIT), "268435456");
        assert_eq!(read(m, MEMSW), "536870912");
        // Unchanged by the updates.
        assert_eq!(read(cpu_dir, "cpu.shares"), "512");
        assert!(read(dir(&c, "devices"), "devices.list").contains("b 7:0 r"));
    }

    #[test]
    fn v1_refusals_are_clear() {
        if !may_run("v1_refusals_are_clear") || !host_is_v1() {
            return;
        }
        let c = test_cgroup("refuse").expect("v1 hierarchies");
        let r = resources(serde_json::json!({"unified": {"memory.high": "1"}}));
        let err = super::super::apply(&c.record, &r).unwrap_err();
        assert!(
            err.to_string().starts_with("linux.resources.unified: "),
            "{err}"
        );
        // The kernel clamps cpu.shares; that is an error, not a silent change.
        let r = resources(serde_json::json!({"cpu": {"shares": 1}}));
        let err = super::super::apply_update(&c.record, &r).unwrap_err();
        assert!(err.to_string().contains("cpu.shares"), "{err}");
        // A throttle for a device the kernel does not know.
        let r = resources(serde_json::json!({"blockIO": {
            "throttleReadBpsDevice": [{"major": 4000, "minor": 0, "rate": 1}]}}));
        let err = super::super::apply_update(&c.record, &r).unwrap_err();
        assert!(
            err.to_string().contains("blkio.throttle.read_bps_device"),
            "{err}"
        );
        // No hugetlb hierarchy here: a limit must fail, naming the controller.
        if !c
            .record
            .dirs
            .iter()
            .any(|d| d.controllers.iter().any(|x| x == "hugetlb"))
        {
            let r =
                resources(serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}));
            let err = super::super::apply_update(&c.record, &r).unwrap_err();
            assert!(matches!(err, CgroupError::NoController { .. }), "{err}");
        }
    }

    #[test]
    fn v1_devices_really_deny() {
        if !may_run("v1_devices_really_deny") || !host_is_v1() {
            return;
        }
        let c = test_cgroup("devices").expect("v1 hierarchies");
        let devices_dir = dir(&c, "devices").to_path_buf();
        let (_nodes, kmsg) = kmsg_node("v1-nodes");
        let kmsg = kmsg.display();
        let checks = [
            "true < /dev/null".to_string(),
            format!("true < {kmsg}"),
            format!("true > {kmsg}"),
        ];
        super::super::apply(&c.record, &LinuxResources::default()).unwrap();
        assert_eq!(try_in(&[&devices_dir], &checks), [true, false, false]);
        // The same rules again: nothing is rewritten (no moment of "deny all").
        let r = resources(serde_json::json!({"devices": []}));
        let before = read(&devices_dir, "devices.list");
        super::super::apply_update(&c.record, &r).unwrap();
        assert_eq!(read(&devices_dir, "devices.list"), before);
        let r = resources(serde_json::json!({"devices": [
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}));
        super::super::apply_update(&c.record, &r).unwrap();
        assert_eq!(try_in(&[&devices_dir], &checks), [true, true, false]);
    }
}
