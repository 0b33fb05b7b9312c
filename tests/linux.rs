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

/// Without a mount namespace the container shares the host's; its mounts
/// (proc, dev...) are made on the host and must all be gone after delete.
/// rt refuses maskedPaths and readonlyPaths without a mount namespace, so
/// the test drops them.
#[test]
fn no_mount_namespace() {
    require_root!();
    let rt = Runtime::new();
    let host_mnt = ns_id("/proc/self/ns/mnt");

    // foreground: the container runs and sees a working /proc
    let mut b = Bundle::busybox();
    b.remove_namespace("mount")
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths")
        .root_readonly(false)
        .sh("echo hello; echo mounts=$(cat /proc/self/mountinfo | wc -l); echo mnt=$(readlink /proc/self/ns/mnt)");
    let id = rt.id("nomntns");
    let o = rt.run(&id, &b);
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    assert!(o.stdout.lines().any(|l| l == "hello"), "{o:?}");
    assert!(
        kv.get("mounts")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0),
        "{o:?}"
    );
    assert_eq!(kv.get("mnt"), Some(&host_mnt), "{o:?}");
    assert_nothing_left(&rt, &id, &b);

    // detached: look at it from the host while it runs
    let mut b = Bundle::busybox();
    b.remove_namespace("mount")
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths")
        .root_readonly(false)
        .args(&["sleep", "1000"]);
    let id = rt.id("nomntnsd");
    rt.run_detached(&id, &b, &[]).assert_ok();
    let pid = rt.pid(&id);
    assert_eq!(ns_id(format!("/proc/{pid}/ns/mnt")), host_mnt);
    // its /proc is a mount of the host's namespace, so the leak check below
    // does look at the container's mounts
    let proc_dir = b.rootfs().join("proc");
    assert!(
        mounts_under(b.path()).contains(&proc_dir),
        "{} is not mounted on the host: {:?}",
        proc_dir.display(),
        mounts_under(b.path())
    );
    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
    // nothing the container did left the host's view of its rootfs read-only
    std::fs::write(b.rootfs().join("tmp/after"), "x").expect("rootfs writable on the host");
}

/// `root.readonly` without a mount namespace cannot be honoured without making
/// a host mount read-only: rt refuses the config (and must leave nothing).
#[test]
fn no_mount_namespace_readonly_root() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.remove_namespace("mount")
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths")
        .root_readonly(true)
        .sh("touch /written; echo rc=$?");
    let id = rt.id("nomntnsro");
    let o = rt.run(&id, &b);
    o.assert_err();
    assert!(o.stderr.contains("root.readonly"), "{o:?}");
    assert!(!b.rootfs().join("written").exists(), "the container ran");
    assert_nothing_left(&rt, &id, &b);
}

/// Joining an existing user namespace by path while creating new pid,
/// mount, ipc, uts and network namespaces (owned by that user namespace).
#[test]
fn join_user_namespace_with_new_pid_namespace() {
    require_root!();
    require!(Path::new("/proc/self/ns/user").exists(), "user namespaces");
    let rt = Runtime::new();
    let holder = NsHolder::new(&["--user", "--map-root-user"], "user");
    let path = holder.ns_path("user");
    let want = ns_id(&path);
    let mut b = Bundle::busybox();
    b.namespace_path("user", &path)
        .remove("/linux/uidMappings")
        .remove("/linux/gidMappings")
        .sh("echo pid=$$; echo userns=$(readlink /proc/self/ns/user); \
             echo pidns=$(readlink /proc/self/ns/pid); exit 7");
    for ns in ["pid", "mount", "ipc", "uts", "network"] {
        assert!(b.has_namespace(ns), "{ns}");
    }
    let id = rt.id("joinuser");
    let o = rt.run(&id, &b);
    assert_eq!(o.code(), Some(7), "{o:?}");
    let kv = kv_lines(&o.stdout);
    assert_eq!(kv.get("pid").map(String::as_str), Some("1"), "{o:?}");
    assert_eq!(kv.get("userns"), Some(&want), "{o:?}");
    assert_ne!(want, ns_id("/proc/self/ns/user"));
    assert!(
        kv.get("pidns")
            .is_some_and(|p| *p != ns_id("/proc/self/ns/pid")),
        "{o:?}"
    );
    assert_nothing_left(&rt, &id, &b);
    // the holder and its namespace are untouched
    assert_eq!(ns_id(&path), want);
    drop(holder);
}

/// `linux.timeOffsets` in a new time namespace.
#[test]
fn time_namespace_offsets() {
    require_root!();
    require!(Path::new("/proc/self/ns/time").exists(), "time namespaces");
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.add_namespace("time")
        .set(
            "/linux/timeOffsets",
            serde_json::json!({"monotonic": {"secs": 86400, "nanosecs": 0}}),
        )
        .sh("cat /proc/self/timens_offsets; echo timens=$(readlink /proc/self/ns/time)");
    let out = run_ok(&rt, &b, "timens");
    let offsets: BTreeMap<&str, (&str, &str)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [clock, secs, nsecs] => Some((clock, (secs, nsecs))),
                _ => None,
            }
        })
        .collect();
    assert_eq!(offsets.get("monotonic"), Some(&("86400", "0")), "{out}");
    assert_eq!(offsets.get("boottime"), Some(&("0", "0")), "{out}");
    let kv = kv_lines(&out);
    assert!(
        kv.get("timens")
            .is_some_and(|t| *t != ns_id("/proc/self/ns/time")),
        "{out}"
    );
}

/// Sorted controller list of a hierarchy key (`cpu,cpuacct`).
fn norm_key(k: &str) -> String {
    let mut v: Vec<&str> = k.split(',').collect();
    v.sort();
    v.join(",")
}

/// The lines of `/proc/self/cgroup` text (printed by a container) for the
/// hierarchies mounted on the host (`ctrls -> path`).
fn mounted_cgroup_lines(out: &str) -> BTreeMap<String, String> {
    let mounted: Vec<String> = cgroup_mounts().iter().map(|(_, k)| norm_key(k)).collect();
    parse_cgroup(out)
        .into_iter()
        .filter(|(k, _)| mounted.contains(&norm_key(k)))
        .collect()
}

/// With a cgroup namespace the container's cgroups are its namespace roots.
#[test]
fn cgroup_namespace_hides_cgroup_path() {
    require_root!();
    require!(
        Path::new("/proc/self/ns/cgroup").exists(),
        "cgroup namespaces"
    );
    let rt = Runtime::new();
    let cg_script = "cat /proc/self/cgroup";

    let mut b = Bundle::busybox();
    b.add_namespace("cgroup").sh(cg_script);
    let out = run_ok(&rt, &b, "cgns");
    let lines = parse_cgroup(&out);
    assert!(!lines.is_empty(), "{out}");
    for (k, p) in &lines {
        assert_eq!(p, "/", "hierarchy {k:?} in a cgroup namespace:\n{out}");
    }

    let mut b = Bundle::busybox();
    assert!(!b.has_namespace("cgroup"));
    let cg = b.cgroups_path().unwrap();
    b.sh(cg_script);
    let out = run_ok(&rt, &b, "nocgns");
    let lines = mounted_cgroup_lines(&out);
    assert_eq!(lines.len(), cgroup_mounts().len(), "{out}");
    for (k, p) in &lines {
        assert_eq!(*p, cg, "hierarchy {k:?} without a cgroup namespace:\n{out}");
    }
}
