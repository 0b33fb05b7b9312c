//! `linux` settings: hostname, sysctl, namespaces (new, joined by path,
//! user namespace mappings) and cgroup placement.

use rt_tests::*;
use std::collections::BTreeMap;
use std::path::Path;

#[track_caller]
fn run_ok(rt: &Runtime, b: &Bundle, name: &str) -> String {
    let id = rt.id(name);
    let o = rt.run(&id, b);
    o.assert_ok();
    assert_nothing_left(rt, &id, b);
    o.stdout
}

/// Config namespace type -> name under /proc/self/ns.
const NS: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("user", "user"),
    ("cgroup", "cgroup"),
];

fn ns_script() -> String {
    let names: Vec<&str> = NS.iter().map(|(_, n)| *n).collect();
    format!(
        "for n in {}; do echo \"$n=$(readlink /proc/self/ns/$n)\"; done",
        names.join(" ")
    )
}

#[test]
fn hostname_in_uts_namespace() {
    require_root!();
    let rt = Runtime::new();
    let host_before = read("/proc/sys/kernel/hostname");
    let mut b = Bundle::busybox();
    let name = format!("rt-host-{}", std::process::id());
    b.hostname(&name)
        .sh("hostname; cat /proc/sys/kernel/hostname");
    let out = run_ok(&rt, &b, "hostname");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [name.as_str(), name.as_str()]);
    assert_eq!(read("/proc/sys/kernel/hostname"), host_before);
}

#[test]
fn sysctl_in_network_namespace() {
    require_root!();
    let rt = Runtime::new();
    let key = "net.ipv4.ip_forward";
    let proc_path = "/proc/sys/net/ipv4/ip_forward";
    let host = read(proc_path);
    let want = if host.trim() == "1" { "0" } else { "1" };
    let mut b = Bundle::busybox();
    assert!(b.has_namespace("network"));
    b.sysctl(key, want).args(&["cat", proc_path]);
    let out = run_ok(&rt, &b, "sysctlnet");
    assert_eq!(out.trim(), want);
    assert_eq!(read(proc_path), host, "host value changed");
}

#[test]
fn sysctl_in_ipc_namespace() {
    require_root!();
    let rt = Runtime::new();
    let key = "kernel.shmmax";
    let proc_path = "/proc/sys/kernel/shmmax";
    let host = read(proc_path);
    let want = if host.trim() == "123456789" {
        "987654321"
    } else {
        "123456789"
    };
    let mut b = Bundle::busybox();
    assert!(b.has_namespace("ipc"));
    b.sysctl(key, want).args(&["cat", proc_path]);
    let out = run_ok(&rt, &b, "sysctlipc");
    assert_eq!(out.trim(), want);
    assert_eq!(read(proc_path), host, "host value changed");
}

fn check_namespaces(b: &Bundle, out: &str) {
    let got = kv_lines(out);
    for (typ, name) in NS {
        let host = ns_id(format!("/proc/self/ns/{name}"));
        let inside = got
            .get(*name)
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
        assert!(!inside.is_empty(), "{name}: {out}");
        if b.has_namespace(typ) {
            assert_ne!(*inside, host, "{typ} namespace should be new");
        } else {
            assert_eq!(*inside, host, "{typ} namespace should be the host's");
        }
    }
}

#[test]
fn new_namespaces_default() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh(&ns_script());
    let out = run_ok(&rt, &b, "ns");
    check_namespaces(&b, &out);
}

#[test]
fn new_namespaces_with_cgroup_without_network() {
    require_root!();
    require!(
        Path::new("/proc/self/ns/cgroup").exists(),
        "cgroup namespaces"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.add_namespace("cgroup")
        .remove_namespace("network")
        .remove_namespace("ipc")
        .remove_mount("/dev/mqueue")
        .sh(&ns_script());
    let out = run_ok(&rt, &b, "ns2");
    check_namespaces(&b, &out);
}

#[test]
fn join_network_namespace_by_path() {
    require_root!();
    require!(
        std::process::Command::new("unshare")
            .arg("--help")
            .output()
            .is_ok(),
        "unshare(1)"
    );
    let rt = Runtime::new();
    let holder = NsHolder::new(&["--net"], "net");
    let path = holder.ns_path("net");
    let want = ns_id(&path);
    let mut b = Bundle::busybox();
    b.namespace_path("network", &path)
        .sh("readlink /proc/self/ns/net");
    let out = run_ok(&rt, &b, "joinnet");
    assert_eq!(out.trim(), want);
    assert_ne!(want, ns_id("/proc/self/ns/net"));
    // joining does not destroy the namespace
    assert_eq!(ns_id(&path), want);
}

#[test]
fn user_namespace_mappings() {
    require_root!();
    require!(Path::new("/proc/self/ns/user").exists(), "user namespaces");
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let (cid, hid, size) = (0u32, 100000u32, 65536u32);
    b.add_namespace("user")
        .uid_mappings(cid, hid, size)
        .gid_mappings(cid, hid + 1000, size)
        .sh(
            "echo uid_map=$(cat /proc/self/uid_map); echo gid_map=$(cat /proc/self/gid_map); \
             echo uid=$(id -u); echo gid=$(id -g); echo owner=$(stat -c %u /bin/busybox); \
             echo userns=$(readlink /proc/self/ns/user)",
        );
    let out = run_ok(&rt, &b, "userns");
    let kv = kv_lines(&out);
    assert_eq!(kv["uid_map"], format!("{cid} {hid} {size}"), "{out}");
    assert_eq!(
        kv["gid_map"],
        format!("{cid} {} {size}", hid + 1000),
        "{out}"
    );
    assert_eq!(kv["uid"], b.config["process"]["user"]["uid"].to_string());
    assert_eq!(kv["gid"], b.config["process"]["user"]["gid"].to_string());
    // busybox belongs to host root, which is not mapped
    assert_eq!(kv["owner"], read("/proc/sys/kernel/overflowuid").trim());
    assert_ne!(kv["userns"], ns_id("/proc/self/ns/user"));
}

/// `ctrls -> path` from /proc/PID/cgroup text.
fn parse_cgroup(s: &str) -> BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

#[test]
fn cgroup_placement() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    let cg = b.cgroups_path().expect("bundle has a cgroupsPath");
    b.sh("cat /proc/self/cgroup > /shared/cg.tmp && mv /shared/cg.tmp /shared/cg; exec sleep 1000");
    let id = rt.id("cgroup");
    rt.create_start(&id, &b);
    let pid = rt.pid(&id);
    assert!(wait_for(POLL_TIMEOUT, || shared.join("cg").exists()));
    let inside = parse_cgroup(&read(shared.join("cg")));

    if cgroup_v2() {
        assert_eq!(inside.len(), 1, "{inside:?}");
        assert_eq!(inside.get(""), Some(&cg), "{inside:?}");
        let dir = Path::new("/sys/fs/cgroup").join(cg.trim_start_matches('/'));
        let procs = read(dir.join("cgroup.procs"));
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "pid {pid} not in {}: {procs}",
            dir.display()
        );
    } else {
        let mounts: Vec<(std::path::PathBuf, String)> = cgroup_mounts()
            .into_iter()
            .filter(|(_, k)| !k.is_empty())
            .collect();
        assert!(!mounts.is_empty(), "no cgroup v1 hierarchy mounted");
        for (mp, key) in &mounts {
            // the same hierarchy, as named in /proc/self/cgroup
            let line = inside
                .iter()
                .find(|(k, _)| {
                    let mut a: Vec<&str> = k.split(',').collect();
                    let mut b: Vec<&str> = key.split(',').collect();
                    a.sort();
                    b.sort();
                    a == b
                })
                .unwrap_or_else(|| panic!("hierarchy {key} not in {inside:?}"));
            assert_eq!(line.1, &cg, "hierarchy {key}: {inside:?}");
            let dir = mp.join(cg.trim_start_matches('/'));
            let procs = read(dir.join("cgroup.procs"));
            assert!(
                procs.lines().any(|p| p == pid.to_string()),
                "pid {pid} not in {}: {procs:?}",
                dir.display()
            );
        }
    }
    assert!(!existing_cgroup_dirs(&cg).is_empty());

    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}
