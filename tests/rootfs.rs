//! Root filesystem: mounts, masked and read-only paths, root.readonly,
//! devices, pivot_root and --no-pivot.

use rt_tests::*;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::path::Path;

const MI_MARK: &str = "--mountinfo--";

/// Run the bundle (must exit 0) and return its stdout.
#[track_caller]
fn run_ok(rt: &Runtime, b: &Bundle, name: &str) -> String {
    run_ok_with(rt, b, name, &[])
}

#[track_caller]
fn run_ok_with(rt: &Runtime, b: &Bundle, name: &str, extra: &[&str]) -> String {
    let id = rt.id(name);
    let o = rt.run_with(&id, b, extra);
    o.assert_ok();
    assert_nothing_left(rt, &id, b);
    o.stdout
}

/// Split output into `key=value` lines (before the mountinfo marker) and
/// the parsed mountinfo printed after it.
fn split_output(out: &str) -> (BTreeMap<String, String>, Vec<MountInfo>) {
    let (pre, mi) = out.split_once(MI_MARK).unwrap_or((out, ""));
    (kv_lines(pre), parse_mountinfo(mi))
}

fn with_mountinfo(script: &str) -> String {
    format!("{script}; echo {MI_MARK}; cat /proc/self/mountinfo")
}

#[test]
fn tmpfs_mount_with_options() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let (dest, size, mode) = ("/mnt/scratch", "1024k", "1770");
    let size_opt = format!("size={size}");
    let mode_opt = format!("mode={mode}");
    b.mount(
        dest,
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", &size_opt, &mode_opt],
    )
    .sh(&with_mountinfo(&format!(
        "echo mode=$(stat -c %a {dest}); touch {dest}/f && echo write=ok"
    )));
    let out = run_ok(&rt, &b, "tmpfs");
    let (kv, mi) = split_output(&out);
    assert_eq!(kv["mode"], mode);
    assert_eq!(kv["write"], "ok");
    let m = find_mount(&mi, dest).unwrap_or_else(|| panic!("{dest} not mounted:\n{out}"));
    assert_eq!(m.fstype, "tmpfs", "{m:?}");
    for o in ["nosuid", "nodev", "noexec", "rw"] {
        assert!(m.opts().contains(&o), "{o} missing: {m:?}");
    }
    assert!(m.super_opts().contains(&size_opt.as_str()), "{m:?}");
    assert!(m.super_opts().contains(&mode_opt.as_str()), "{m:?}");
}

#[test]
fn bind_mount_read_only() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("ro-src");
    let content = format!("data-{}", std::process::id());
    fs::write(src.join("data"), &content).unwrap();
    let dest = "/mnt/ro";
    b.bind(src.to_str().unwrap(), dest, &["bind", "ro"])
        .sh(&with_mountinfo(&format!(
            "echo content=$(cat {dest}/data); \
             if touch {dest}/new 2>/dev/null; then echo write=ok; else echo write=denied; fi"
        )));
    let out = run_ok(&rt, &b, "bindro");
    let (kv, mi) = split_output(&out);
    assert_eq!(kv["content"], content);
    assert_eq!(kv["write"], "denied");
    assert!(!src.join("new").exists());
    let m = find_mount(&mi, dest).unwrap_or_else(|| panic!("{dest} not mounted:\n{out}"));
    assert!(m.opts().contains(&"ro"), "{m:?}");
}

/// Mounts a tmpfs on the host for the duration of a test.
struct HostMount(CString);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        let c = CString::new(at.to_str().unwrap()).unwrap();
        let t = CString::new("tmpfs").unwrap();
        // SAFETY: valid C strings, no data.
        let rc = unsafe { libc::mount(t.as_ptr(), c.as_ptr(), t.as_ptr(), 0, std::ptr::null()) };
        assert_eq!(rc, 0, "mount tmpfs on {}", at.display());
        HostMount(c)
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        // SAFETY: valid C string.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn rbind_includes_submounts_and_bind_does_not() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("tree");
    fs::write(src.join("top"), "top").unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    let sub = HostMount::tmpfs(&src.join("sub"));
    fs::write(src.join("sub/inner"), "inner").unwrap();
    b.bind(src.to_str().unwrap(), "/mnt/rbind", &["rbind"])
        .bind(src.to_str().unwrap(), "/mnt/bind", &["bind"])
        .sh("for d in rbind bind; do \
               echo $d.top=$(cat /mnt/$d/top); \
               if [ -e /mnt/$d/sub/inner ]; then echo $d.inner=yes; else echo $d.inner=no; fi; \
             done");
    let id = rt.id("rbind");
    let o = rt.run(&id, &b);
    assert!(!mounts_under(b.path()).is_empty(), "mount check blind");
    drop(sub);
    o.assert_ok();
    let out = o.stdout;
    assert_nothing_left(&rt, &id, &b);
    let kv = kv_lines(&out);
    assert_eq!(kv["rbind.top"], "top");
    assert_eq!(kv["bind.top"], "top");
    assert_eq!(kv["rbind.inner"], "yes", "rbind must carry submounts");
    assert_eq!(kv["bind.inner"], "no", "bind must not carry submounts");
    assert_no_mounts(b.path());
}

#[test]
fn bind_mount_writes_reach_the_host() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    let word = format!("w{}", std::process::id());
    b.sh(&format!("echo {word} > /shared/out"));
    run_ok(&rt, &b, "bindrw");
    assert_eq!(read(shared.join("out")).trim(), word);
}

#[test]
fn proc_is_mounted_for_the_pid_namespace() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let script = "echo \"cmdline=$(tr '\\0' '|' < /proc/1/cmdline)\"; cat /proc/self/mountinfo";
    let args = ["sh", "-c", script];
    b.args(&args);
    let out = run_ok(&rt, &b, "proc");
    let (first, rest) = out.split_once('\n').unwrap();
    let kv = kv_lines(first);
    let mi = parse_mountinfo(rest);
    // pid 1 of the container's pid namespace is our process
    assert_eq!(kv["cmdline"], format!("{}|", args.join("|")));
    let m = find_mount(&mi, "/proc").expect("/proc mounted");
    assert_eq!(m.fstype, "proc");
    // the template's /sys mount is there too
    let m = find_mount(&mi, "/sys").expect("/sys mounted");
    assert_eq!(m.fstype, "sysfs");
    assert!(m.opts().contains(&"ro"), "{m:?}");
}

#[test]
fn masked_paths_are_empty() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.write_rootfs_file("/etc/secret", "top secret");
    b.write_rootfs_file("/etc/secretdir/file", "more secrets");
    b.write_rootfs_file("/etc/public", "public");
    b.masked_paths(&["/etc/secret", "/etc/secretdir", "/does/not/exist"])
        .sh("echo secret=$(cat /etc/secret | wc -c); \
             echo secretdir=$(ls -A /etc/secretdir | wc -l); \
             echo public=$(cat /etc/public); \
             echo kcore=$(cat /proc/kcore | wc -c)");
    let out = run_ok(&rt, &b, "masked");
    let kv = kv_lines(&out);
    assert_eq!(kv["secret"], "0", "{out}");
    assert_eq!(kv["secretdir"], "0", "{out}");
    assert_eq!(kv["public"], "public");
    // /proc/kcore is in the template's maskedPaths
    assert!(b.config["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("/proc/kcore")));
    assert_eq!(kv["kcore"], "0", "{out}");
    // the rootfs itself is untouched
    assert_eq!(read(b.rootfs().join("etc/secret")), "top secret");
}

#[test]
fn readonly_paths_refuse_writes() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.write_rootfs_file("/data/file", "x");
    b.write_rootfs_file("/etc/ro-file", "x");
    b.root_readonly(false)
        .readonly_paths(&["/data", "/etc/ro-file"])
        .sh(&with_mountinfo(
            "w() { if sh -c \"$2\" 2>/dev/null; then echo $1=ok; else echo $1=denied; fi; }; \
             w data 'touch /data/new'; \
             w rofile 'echo y > /etc/ro-file'; \
             w rwfile 'touch /etc/rw-file'; \
             w procsys 'echo 1 > /proc/sys/kernel/ns_last_pid'",
        ));
    let out = run_ok(&rt, &b, "ropaths");
    let (kv, mi) = split_output(&out);
    assert_eq!(kv["data"], "denied", "{out}");
    assert_eq!(kv["rofile"], "denied", "{out}");
    assert_eq!(kv["rwfile"], "ok", "{out}");
    // /proc/sys is in the template's readonlyPaths
    assert_eq!(kv["procsys"], "denied", "{out}");
    let m = find_mount(&mi, "/data").expect("/data is a mount");
    assert!(m.opts().contains(&"ro"), "{m:?}");
    assert_eq!(read(b.rootfs().join("etc/ro-file")), "x");
    assert!(!b.rootfs().join("data/new").exists());
    assert!(b.rootfs().join("etc/rw-file").exists());
}

#[test]
fn root_readonly() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(true)
        .mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"])
        .sh(&with_mountinfo(
            "if touch /rootfile 2>/dev/null; then echo root=ok; else echo root=denied; fi; \
             if touch /tmp/file; then echo tmp=ok; else echo tmp=denied; fi",
        ));
    let out = run_ok(&rt, &b, "rootro");
    let (kv, mi) = split_output(&out);
    assert_eq!(kv["root"], "denied", "{out}");
    assert_eq!(kv["tmp"], "ok", "{out}");
    let m = find_mount(&mi, "/").expect("/ in mountinfo");
    assert!(m.opts().contains(&"ro"), "{m:?}");
    assert!(!b.rootfs().join("rootfile").exists());
}

#[test]
fn root_writable() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false).sh("echo hi > /rootfile");
    run_ok(&rt, &b, "rootrw");
    assert_eq!(read(b.rootfs().join("rootfile")).trim(), "hi");
}

fn stat_line(dev: &serde_json::Value) -> String {
    let kind = match dev["type"].as_str().unwrap() {
        "c" | "u" => "character special file",
        "b" => "block special file",
        "p" => "fifo",
        t => panic!("type {t}"),
    };
    let maj = dev["major"].as_u64().unwrap_or(0);
    let min = dev["minor"].as_u64().unwrap_or(0);
    format!(
        "{} {kind} {maj:x} {min:x} {:o} {} {}",
        dev["path"].as_str().unwrap(),
        dev["fileMode"].as_u64().unwrap() & 0o7777,
        dev["uid"].as_u64().unwrap_or(0),
        dev["gid"].as_u64().unwrap_or(0)
    )
}

#[test]
fn linux_devices_are_created() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let devs = [
        serde_json::json!({"path": "/dev/rt-full", "type": "c", "major": 1, "minor": 7,
                           "fileMode": 0o640, "uid": 1000, "gid": 1000}),
        serde_json::json!({"path": "/dev/sub/rt-zero", "type": "c", "major": 1, "minor": 5,
                           "fileMode": 0o604, "uid": 0, "gid": 1000}),
        serde_json::json!({"path": "/dev/rt-fifo", "type": "p", "major": 0, "minor": 0,
                           "fileMode": 0o600, "uid": 1000, "gid": 0}),
    ];
    for d in &devs {
        b.device(d.clone());
    }
    // allow access to 1:5 in the device cgroup (root, the owner, may read
    // /dev/sub/rt-zero by its mode; the template has no CAP_DAC_OVERRIDE)
    b.config["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}));
    let paths: Vec<&str> = devs.iter().map(|d| d["path"].as_str().unwrap()).collect();
    b.sh(&format!(
        "stat -c '%n %F %t %T %a %u %g' {}; echo read=$(head -c 4 /dev/sub/rt-zero | wc -c)",
        paths.join(" ")
    ));
    let out = run_ok(&rt, &b, "devices");
    let lines: Vec<&str> = out.lines().collect();
    for (i, d) in devs.iter().enumerate() {
        assert_eq!(lines[i], stat_line(d), "device {d}");
    }
    assert_eq!(kv_lines(&out)["read"], "4");
}

#[test]
fn default_devices_exist() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // the default devices of the runtime spec
    let chars = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    let names: Vec<&str> = chars.iter().map(|c| c.0).collect();
    let lnames: Vec<&str> = links.iter().map(|c| c.0).collect();
    b.sh(&format!(
        "stat -c '%n|%F|%t|%T' {}; for l in {}; do echo \"$l|$(readlink $l)\"; done; \
         if [ -e /dev/ptmx ]; then echo 'ptmx|yes'; fi; \
         echo \"blockdevs|$(find /dev -type b | wc -l)\"; \
         echo \"null|$(echo x > /dev/null && echo ok)\"; \
         echo \"zero|$(head -c 3 /dev/zero | wc -c)\"; \
         echo \"urandom|$(head -c 5 /dev/urandom | wc -c)\"",
        names.join(" "),
        lnames.join(" ")
    ));
    let out = run_ok(&rt, &b, "defdev");
    let got: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('|')).collect();
    let full: BTreeMap<&str, Vec<&str>> = out
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split('|').collect();
            (v[0], v[1..].to_vec())
        })
        .collect();
    for (p, maj, min) in chars {
        let want = [
            "character special file".to_string(),
            format!("{maj:x}"),
            format!("{min:x}"),
        ];
        assert_eq!(
            full.get(p).map(|v| v.to_vec()),
            Some(want.iter().map(|s| s.as_str()).collect()),
            "{p}\n{out}"
        );
    }
    for (l, target) in links {
        assert_eq!(got.get(l), Some(&target), "{l}\n{out}");
    }
    assert_eq!(got.get("ptmx"), Some(&"yes"), "{out}");
    // the config has no block devices; none of the host's must show up
    assert_eq!(got.get("blockdevs"), Some(&"0"), "{out}");
    assert_eq!(got.get("null"), Some(&"ok"), "{out}");
    assert_eq!(got.get("zero"), Some(&"3"), "{out}");
    assert_eq!(got.get("urandom"), Some(&"5"), "{out}");
}

fn pivot_check(extra: &[&str]) {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let marker = format!("marker-{}", std::process::id());
    b.write_rootfs_file("/marker", &marker);
    // a host path that the rootfs does not have
    let host_only = workspace_root();
    assert!(host_only.exists());
    assert!(!b
        .rootfs()
        .join(host_only.strip_prefix("/").unwrap())
        .exists());
    b.sh(&format!(
        "echo marker=$(cat /marker); \
         if [ -e {h} ]; then echo host=visible; else echo host=hidden; fi; \
         echo root=$(cd / && pwd)",
        h = host_only.display()
    ));
    let out = run_ok_with(&rt, &b, "pivot", extra);
    let kv = kv_lines(&out);
    assert_eq!(kv["marker"], marker, "{extra:?}");
    assert_eq!(kv["host"], "hidden", "{extra:?}");
    assert_eq!(kv["root"], "/", "{extra:?}");
}

#[test]
fn pivot_root_default() {
    require_root!();
    pivot_check(&[]);
}

#[test]
fn no_pivot() {
    require_root!();
    pivot_check(&["--no-pivot"]);
}
