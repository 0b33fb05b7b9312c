//! What the container's cgroup has counted (`events --stats`), in the JSON shape of
//! runc's `types.Stats`, read from v1's per-controller files or v2's single directory;
//! and the OOM-kill counter `events` watches.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{io, CgroupDir, CgroupError, CgroupRecord, Version};

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// runc's `types.Stats`; field names and omissions as its JSON tags say.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT is not supported: always `{}`, as runc prints without it.
    pub intel_rdt: IntelRdt,
    /// Not collected (runc reads them from the network namespace): `null`.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct IntelRdt {}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct NetworkInterface {}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Cpu {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: CpuUsage,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: MemoryEntry,
    /// Memory plus swap, as v1's memsw counts it (on v2 too, like runc).
    #[serde(skip_serializing_if = "is_zero")]
    pub swap: MemoryEntry,
    #[serde(skip_serializing_if = "is_zero")]
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP", skip_serializing_if = "is_zero")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as it is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Pressure stall information (v2's `*.pressure`).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Psi {
    #[serde(skip_serializing_if = "is_zero")]
    pub some: PsiData,
    #[serde(skip_serializing_if = "is_zero")]
    pub full: PsiData,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

/// Read everything the container's cgroup counts.
pub fn stats(record: &CgroupRecord) -> Result<Stats, CgroupError> {
    let v1: Vec<&CgroupDir> = record
        .dirs
        .iter()
        .filter(|d| d.version == Version::V1)
        .collect();
    if !v1.is_empty() {
        return v1_stats(&v1);
    }
    match record.dirs.iter().find(|d| d.version == Version::V2) {
        Some(d) => v2_stats(&d.path),
        None => Ok(Stats::default()),
    }
}

/// How many processes the kernel's OOM killer has killed in the container's cgroup
/// (`oom_kill` of v1's memory.oom_control or v2's memory.events); None without a
/// memory controller. `events` reports an OOM each time this grows.
pub fn oom_count(record: &CgroupRecord) -> Option<u64> {
    let (dir, file) = match record
        .dirs
        .iter()
        .find(|d| d.version == Version::V1 && has(d, "memory"))
    {
        Some(d) => (&d.path, "memory.oom_control"),
        None => (
            &record.dirs.iter().find(|d| d.version == Version::V2)?.path,
            "memory.events",
        ),
    };
    let text = fs::read_to_string(dir.join(file)).ok()?;
    let count = keyed(&text).find(|(k, _)| *k == "oom_kill").map(|(_, v)| v);
    count
}

fn has(d: &CgroupDir, controller: &str) -> bool {
    d.controllers.iter().any(|c| c == controller)
}

/// Reads with the error naming the file; a missing file is `None` (a controller or
/// knob this kernel lacks counts as zero, as runc does).
struct Files<'a>(&'a Path);

impl Files<'_> {
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn text(&self, file: &str) -> Result<Option<String>, CgroupError> {
        let path = self.path(file);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            // Some knobs exist but cannot be read on every kernel.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// A single number; `max` is u64::MAX.
    fn num(&self, file: &str) -> Result<u64, CgroupError> {
        let Some(text) = self.text(file)? else {
            return Ok(0);
        };
        parse_num(text.trim()).ok_or_else(|| bad(&self.path(file), text.trim()))
    }

    /// A flat-keyed file ("key value" lines).
    fn keyed(&self, file: &str) -> Result<BTreeMap<String, u64>, CgroupError> {
        let Some(text) = self.text(file)? else {
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let (Some(k), Some(v), None) = (f.next(), f.next(), f.next()) else {
                return Err(bad(&self.path(file), line));
            };
            let v = parse_num(v).ok_or_else(|| bad(&self.path(file), line))?;
            out.insert(k.to_string(), v);
        }
        Ok(out)
    }

    fn list(&self, file: &str) -> Result<Vec<u64>, CgroupError> {
        let Some(text) = self.text(file)? else {
            return Ok(vec![]);
        };
        text.split_whitespace()
            .map(|v| parse_num(v).ok_or_else(|| bad(&self.path(file), v)))
            .collect()
    }

    fn psi(&self, file: &str) -> Result<Option<Psi>, CgroupError> {
        let Some(text) = self.text(file)? else {
            return Ok(None);
        };
        parse_psi(&text)
            .map(Some)
            .ok_or_else(|| bad(&self.path(file), text.trim()))
    }
}

fn bad(path: &Path, text: &str) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        text: text.to_string(),
    }
}

fn parse_num(s: &str) -> Option<u64> {
    match s {
        "max" => Some(u64::MAX),
        // v1 writes -1 for "unlimited" in a few signed files.
        "-1" => Some(u64::MAX),
        _ => s.parse().ok(),
    }
}

fn keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

/// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and a "full" line.
fn parse_psi(text: &str) -> Option<Psi> {
    let mut psi = Psi::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split_whitespace();
        let target = match f.next()? {
            "some" => &mut psi.some,
            "full" => &mut psi.full,
            _ => continue,
        };
        for kv in f {
            let (k, v) = kv.split_once('=')?;
            match k {
                "avg10" => target.avg10 = v.parse().ok()?,
                "avg60" => target.avg60 = v.parse().ok()?,
                "avg300" => target.avg300 = v.parse().ok()?,
                "total" => target.total = v.parse().ok()?,
                _ => {}
            }
        }
    }
    Some(psi)
}

/// A cpu or node list ("0-2,5") as its members.
fn parse_cpu_list(text: &str) -> Option<Vec<u16>> {
    let mut out = vec![];
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u16>().ok()?..=b.parse::<u16>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The page sizes the kernel offers, named as cgroup files name them (2MB, 1GB).
fn huge_page_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return vec![];
    };
    let mut sizes: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, page_size_name(kb)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, n)| n).collect()
}

fn page_size_name(kb: u64) -> String {
    match kb {
        kb if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}GB", kb >> 20),
        kb if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}MB", kb >> 10),
        kb => format!("{kb}KB"),
    }
}

// ---- v1

/// USER_HZ: cpuacct.stat counts in these ticks.
const CLOCK_TICKS: u64 = 100;

fn v1_stats(dirs: &[&CgroupDir]) -> Result<Stats, CgroupError> {
    let dir = |c: &str| dirs.iter().find(|d| has(d, c)).map(|d| Files(&d.path));
    let mut s = Stats::default();
    for d in dirs {
        // A container whose cgroup is gone has nothing to report.
        if !d.path.exists() {
            return Err(io("read", &d.path)(ErrorKind::NotFound.into()));
        }
    }
    if let Some(f) = dir("cpuacct") {
        let u = &mut s.cpu.usage;
        u.total = f.num("cpuacct.usage")?;
        u.percpu = f.list("cpuacct.usage_percpu")?;
        u.percpu_kernel = f.list("cpuacct.usage_percpu_sys")?;
        u.percpu_user = f.list("cpuacct.usage_percpu_user")?;
        let stat = f.keyed("cpuacct.stat")?;
        let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / CLOCK_TICKS;
        u.user = ns(stat.get("user").copied().unwrap_or(0));
        u.kernel = ns(stat.get("system").copied().unwrap_or(0));
    }
    if let Some(f) = dir("cpu") {
        let stat = f.keyed("cpu.stat")?;
        s.cpu.throttling = Throttling {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: stat.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(f) = dir("cpuset") {
        s.cpuset = v1_cpuset(&f)?;
    }
    if let Some(f) = dir("memory") {
        s.memory = v1_memory(&f)?;
    }
    if let Some(f) = dir("pids") {
        s.pids = pids(&f)?;
    }
    if let Some(f) = dir("blkio") {
        s.blkio = v1_blkio(&f)?;
    }
    if let Some(f) = dir("hugetlb") {
        for size in huge_page_sizes() {
            let p = format!("hugetlb.{size}");
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage: f.num(&format!("{p}.usage_in_bytes"))?,
                    max: f.num(&format!("{p}.max_usage_in_bytes"))?,
                    failcnt: f.num(&format!("{p}.failcnt"))?,
                },
            );
        }
    }
    Ok(s)
}

fn v1_cpuset(f: &Files) -> Result<CpuSet, CgroupError> {
    let list = |file: &str| -> Result<Vec<u16>, CgroupError> {
        let text = f.text(file)?.unwrap_or_default();
        parse_cpu_list(&text).ok_or_else(|| bad(&f.path(file), text.trim()))
    };
    let signed = |file: &str| -> Result<i64, CgroupError> {
        let text = f.text(file)?.unwrap_or_else(|| "0".into());
        text.trim()
            .parse()
            .map_err(|_| bad(&f.path(file), text.trim()))
    };
    Ok(CpuSet {
        cpus: list("cpuset.cpus")?,
        cpu_exclusive: f.num("cpuset.cpu_exclusive")?,
        mems: list("cpuset.mems")?,
        mem_hardwall: f.num("cpuset.mem_hardwall")?,
        mem_exclusive: f.num("cpuset.mem_exclusive")?,
        memory_migrate: f.num("cpuset.memory_migrate")?,
        memory_spread_page: f.num("cpuset.memory_spread_page")?,
        memory_spread_slab: f.num("cpuset.memory_spread_slab")?,
        memory_pressure: f.num("cpuset.memory_pressure")?,
        sched_load_balance: f.num("cpuset.sched_load_balance")?,
        sched_relax_domain_level: signed("cpuset.sched_relax_domain_level")?,
    })
}

fn v1_memory(f: &Files) -> Result<Memory, CgroupError> {
    let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
        Ok(MemoryEntry {
            usage: f.num(&format!("{prefix}.usage_in_bytes"))?,
            max: f.num(&format!("{prefix}.max_usage_in_bytes"))?,
            failcnt: f.num(&format!("{prefix}.failcnt"))?,
            limit: f.num(&format!("{prefix}.limit_in_bytes"))?,
        })
    };
    let raw = f.keyed("memory.stat")?;
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: entry("memory")?,
        swap: entry("memory.memsw")?,
        kernel: entry("memory.kmem")?,
        kernel_tcp: entry("memory.kmem.tcp")?,
        raw,
        psi: None,
    })
}

fn pids(f: &Files) -> Result<Pids, CgroupError> {
    let limit = f.num("pids.max")?;
    Ok(Pids {
        current: f.num("pids.current")?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// blkio: the first family of files this kernel has, in runc's order (BFQ with
/// debug counters, BFQ, CFQ, the throttle layer's recursive, then its own).
fn v1_blkio(f: &Files) -> Result<Blkio, CgroupError> {
    type Target = fn(&mut Blkio) -> &mut Vec<BlkioEntry>;
    let bytes: Target = |b| &mut b.io_service_bytes_recursive;
    let serviced: Target = |b| &mut b.io_serviced_recursive;
    let families: [&[(&str, Target)]; 5] = [
        &[
            ("blkio.bfq.sectors_recursive", |b| &mut b.sectors_recursive),
            ("blkio.bfq.io_service_time_recursive", |b| {
                &mut b.io_service_time_recursive
            }),
            ("blkio.bfq.io_wait_time_recursive", |b| {
                &mut b.io_wait_time_recursive
            }),
            ("blkio.bfq.io_merged_recursive", |b| {
                &mut b.io_merged_recursive
            }),
            ("blkio.bfq.io_queued_recursive", |b| {
                &mut b.io_queued_recursive
            }),
            ("blkio.bfq.time_recursive", |b| &mut b.io_time_recursive),
            ("blkio.bfq.io_serviced_recursive", serviced),
            ("blkio.bfq.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.bfq.io_serviced_recursive", serviced),
            ("blkio.bfq.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.sectors_recursive", |b| &mut b.sectors_recursive),
            ("blkio.io_service_time_recursive", |b| {
                &mut b.io_service_time_recursive
            }),
            ("blkio.io_wait_time_recursive", |b| {
                &mut b.io_wait_time_recursive
            }),
            ("blkio.io_merged_recursive", |b| &mut b.io_merged_recursive),
            ("blkio.io_queued_recursive", |b| &mut b.io_queued_recursive),
            ("blkio.time_recursive", |b| &mut b.io_time_recursive),
            ("blkio.io_serviced_recursive", serviced),
            ("blkio.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.throttle.io_serviced_recursive", serviced),
            ("blkio.throttle.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.throttle.io_serviced", serviced),
            ("blkio.throttle.io_service_bytes", bytes),
        ],
    ];
    for family in families {
        if f.text(family[0].0)?.is_none() {
            continue;
        }
        let mut b = Blkio::default();
        for (file, target) in family {
            let text = f.text(file)?.unwrap_or_default();
            *target(&mut b) = blkio_entries(&text).ok_or_else(|| bad(&f.path(file), &text))?;
        }
        return Ok(b);
    }
    Ok(Blkio::default())
}

/// "8:0 Read 1282048" (or "8:0 6792"), and a "Total N" line that is skipped.
fn blkio_entries(text: &str) -> Option<Vec<BlkioEntry>> {
    let mut out = vec![];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match f.as_slice() {
            ["Total", _] => continue,
            [dev, value] => (dev, "", value),
            [dev, op, value] => (dev, *op, value),
            _ => return None,
        };
        let (major, minor) = dev.split_once(':')?;
        out.push(BlkioEntry {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
            op: op.to_string(),
            value: value.parse().ok()?,
        });
    }
    Some(out)
}

// ---- v2

fn v2_stats(dir: &Path) -> Result<Stats, CgroupError> {
    if !dir.exists() {
        return Err(io("read", dir)(ErrorKind::NotFound.into()));
    }
    let f = Files(dir);
    let mut s = Stats::default();
    // cpu.stat exists even without the cpu controller (usage only).
    let cpu = f.keyed("cpu.stat")?;
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
    s.cpu.usage.user = get(&cpu, "user_usec") * 1000;
    s.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
    s.cpu.throttling = Throttling {
        periods: get(&cpu, "nr_periods"),
        throttled_periods: get(&cpu, "nr_throttled"),
        throttled_time: get(&cpu, "throttled_usec") * 1000,
    };
    s.cpu.psi = f.psi("cpu.pressure")?;
    s.memory = v2_memory(&f)?;
    s.memory.psi = f.psi("memory.pressure")?;
    s.pids = pids(&f)?;
    if f.text("pids.current")?.is_none() {
        // No pids controller: count the processes (runc does the same).
        let procs = f.text("cgroup.procs")?.unwrap_or_default();
        s.pids.current = procs.lines().count() as u64;
    }
    s.blkio = v2_io(&f)?;
    s.blkio.psi = f.psi("io.pressure")?;
    for size in huge_page_sizes() {
        let p = format!("hugetlb.{size}");
        // Without the hugetlb controller there are no such files.
        let Some(current) = f.text(&format!("{p}.current"))? else {
            continue;
        };
        // The reservation counter, where the kernel has it, is what runc reports.
        let usage = match f.text(&format!("{p}.rsvd.current"))? {
            Some(rsvd) => parse_num(rsvd.trim()),
            None => parse_num(current.trim()),
        }
        .ok_or_else(|| bad(&f.path(&format!("{p}.current")), current.trim()))?;
        let events = f.keyed(&format!("{p}.events"))?;
        s.hugetlb.insert(
            size,
            Hugetlb {
                usage,
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(s)
}

fn v2_memory(f: &Files) -> Result<Memory, CgroupError> {
    let raw = f.keyed("memory.stat")?;
    let usage = MemoryEntry {
        usage: f.num("memory.current")?,
        limit: f.num("memory.max")?,
        max: f.num("memory.peak")?,
        failcnt: 0,
    };
    // runc reports memory+swap here, as v1's memsw would.
    let swap_only_usage = f.num("memory.swap.current")?;
    let swap_only_limit = f.num("memory.swap.max")?;
    let swap = MemoryEntry {
        usage: swap_only_usage + usage.usage,
        limit: if swap_only_limit == u64::MAX {
            u64::MAX
        } else {
            swap_only_limit.saturating_add(usage.limit)
        },
        max: 0,
        failcnt: 0,
    };
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..Memory::default()
    })
}

/// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
fn v2_io(f: &Files) -> Result<Blkio, CgroupError> {
    let mut b = Blkio::default();
    let Some(text) = f.text("io.stat")? else {
        return Ok(b);
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = io_stat_line(line).ok_or_else(|| bad(&f.path("io.stat"), line))?;
        for (target, op, major, minor, value) in parsed {
            let list = match target {
                IoTarget::Bytes => &mut b.io_service_bytes_recursive,
                IoTarget::Serviced => &mut b.io_serviced_recursive,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    Ok(b)
}

enum IoTarget {
    Bytes,
    Serviced,
}

type IoStat = (IoTarget, &'static str, u64, u64, u64);

fn io_stat_line(line: &str) -> Option<Vec<IoStat>> {
    let mut f = line.split_whitespace();
    let (major, minor) = f.next()?.split_once(':')?;
    let (major, minor) = (major.parse().ok()?, minor.parse().ok()?);
    let mut out = vec![];
    for kv in f {
        let (k, v) = kv.split_once('=')?;
        let (target, op) = match k {
            "rbytes" => (IoTarget::Bytes, "Read"),
            "wbytes" => (IoTarget::Bytes, "Write"),
            "rios" => (IoTarget::Serviced, "Read"),
            "wios" => (IoTarget::Serviced, "Write"),
            _ => continue,
        };
        out.push((target, op, major, minor, v.parse().ok()?));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::resources::testing::{may_run, test_cgroup, try_in, Scratch};
    use super::*;

    #[test]
    fn empty_stats_serialise_like_runc() {
        let json = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cpu": {},
                "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                           "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                           "memory_pressure": 0, "sched_load_balance": 0,
                           "sched_relax_domain_level": 0},
                "memory": {},
                "pids": {},
                "blkio": {},
                "hugetlb": {},
                "intel_rdt": {},
                "network_interfaces": null
            })
        );
    }

    #[test]
    fn field_names_follow_runc() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.throttling.throttled_periods = 2;
        s.memory.kernel_tcp.limit = 1;
        s.memory.usage = MemoryEntry {
            limit: 10,
            usage: 3,
            max: 4,
            failcnt: 0,
        };
        s.blkio.io_queued_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 1,
        });
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["cpu"],
            serde_json::json!({"usage": {"total": 5, "kernel": 0, "user": 0},
                               "throttling": {"throttledPeriods": 2}})
        );
        assert_eq!(
            json["memory"]["kernelTCP"],
            serde_json::json!({"limit": 1, "failcnt": 0})
        );
        assert_eq!(
            json["memory"]["usage"],
            serde_json::json!({"limit": 10, "usage": 3, "max": 4, "failcnt": 0})
        );
        assert_eq!(
            json["blkio"]["ioQueueRecursive"],
            serde_json::json!([{"major": 8, "op": "Read", "value": 1}])
        );
        assert_eq!(json["hugetlb"]["2MB"], serde_json::json!({"failcnt": 0}));
    }

    #[test]
    fn parsers() {
        assert_eq!(
            blkio_entries("8:0 Read 10\n8:0 Write 5\nTotal 15\n").unwrap(),
            vec![
                BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: "Read".into(),
                    value: 10
                },
                BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: "Write".into(),
                    value: 5
                },
            ]
        );
        assert_eq!(blkio_entries("8:16 7\n").unwrap()[0].value, 7);
        assert!(blkio_entries("nonsense here now too\n").is_none());
        let psi = parse_psi("some avg10=1.50 avg60=0.00 avg300=0.00 total=42\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!(
            (psi.some.avg10, psi.some.total, psi.full.total),
            (1.5, 42, 7)
        );
        assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1 << 20), "1GB");
        assert_eq!(page_size_name(64), "64KB");
        let line =
            io_stat_line("254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0").unwrap();
        assert_eq!(line.len(), 4);
        assert_eq!((line[0].1, line[0].4), ("Read", 4096));
    }

    #[test]
    fn v2_files_in_a_scratch_dir() {
        let dir = Scratch::new(&std::env::temp_dir(), "stats-v2").unwrap();
        let w = |f: &str, v: &str| fs::write(dir.0.join(f), v).unwrap();
        w("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 2\n");
        w("memory.stat", "anon 100\nfile 200\n");
        w("memory.current", "300\n");
        w("memory.max", "max\n");
        w("memory.swap.current", "5\n");
        w("memory.swap.max", "1000\n");
        w("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w(
            "io.stat",
            "8:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n",
        );
        let s = v2_stats(&dir.0).unwrap();
        assert_eq!(
            (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
            (10000, 6000, 4000)
        );
        assert_eq!(s.cpu.throttling.throttled_time, 2000);
        assert_eq!(s.memory.cache, 200);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.swap.usage, 305);
        assert_eq!(s.memory.swap.limit, u64::MAX);
        assert_eq!(
            s.pids,
            Pids {
                current: 3,
                limit: 0
            }
        );
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
        let record = CgroupRecord {
            path: "/x".into(),
            dirs: vec![CgroupDir {
                version: Version::V2,
                controllers: vec![],
                path: dir.0.clone(),
                created_from: None,
            }],
            systemd: None,
        };
        assert_eq!(oom_count(&record), Some(1));
        w("memory.stat", "anon x\n");
        assert!(matches!(v2_stats(&dir.0), Err(CgroupError::Parse { .. })));
    }

    /// A shell in the cgroup burns a little cpu; the counters show it.
    #[test]
    fn reads_a_real_cgroup() {
        if !may_run("reads_a_real_cgroup") {
            return;
        }
        let c = test_cgroup("stats").expect("a cgroup");
        let dirs: Vec<&Path> = c.record.dirs.iter().map(|d| d.path.as_path()).collect();
        let busy = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; true".to_string();
        assert_eq!(try_in(&dirs, &[busy]), [true]);
        let s = stats(&c.record).unwrap();
        assert!(s.cpu.usage.total > 0, "{s:?}");
        assert!(s.cpu.usage.user + s.cpu.usage.kernel > 0, "{s:?}");
        assert!(
            s.memory.usage.max > 0 || c.record.dirs[0].version == Version::V2,
            "{s:?}"
        );
        assert!(!s.memory.raw.is_empty());
        assert_eq!(s.pids.current, 0);
        if c.record.dirs[0].version == Version::V1 {
            assert!(!s.cpu.usage.percpu.is_empty());
            assert!(!s.cpuset.cpus.is_empty());
            assert!(s.memory.raw.contains_key("cache"));
        } else {
            assert!(s.memory.raw.contains_key("file"));
            assert!(s.cpu.psi.is_some());
        }
        assert_eq!(oom_count(&c.record), Some(0));
        serde_json::to_string(&s).unwrap();
    }

    /// A shell that outgrows its memory limit is killed, and the count says so.
    #[test]
    fn oom_kills_are_counted() {
        if !may_run("oom_kills_are_counted") {
            return;
        }
        let c = test_cgroup("oom").expect("a cgroup");
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 8388608, "swap": 8388608}
        }))
        .unwrap();
        crate::cgroups::resources::apply(&c.record, &r).unwrap();
        let dirs: Vec<String> = c
            .record
            .dirs
            .iter()
            .map(|d| format!("echo $$ > {}/cgroup.procs", d.path.display()))
            .collect();
        // The command substitution keeps 64 MiB in the shell itself.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} && x=$(head -c 67108864 /dev/zero | tr '\\0' a)",
                dirs.join(" && ")
            ))
            .status()
            .unwrap();
        assert!(!status.success());
        assert!(oom_count(&c.record).is_some_and(|n| n >= 1), "{status:?}");
        let s = stats(&c.record).unwrap();
        assert_eq!(s.memory.usage.limit, 8388608);
    }
}
