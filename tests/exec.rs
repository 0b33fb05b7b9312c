//! `exec`: a process run in a running container, with flags or a
//! process.json; it joins every namespace, the cgroup and the rootfs of the
//! container, and `exec` returns its exit status.

use rt_tests::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// Create and start `b` running `sleep 600`; returns the id.
#[track_caller]
fn start_sleeper(rt: &Runtime, b: &mut Bundle, name: &str) -> String {
    b.args(&["sleep", "600"]);
    let id = rt.id(name);
    rt.create_start(&id, b);
    assert_eq!(rt.status(&id), "running");
    id
}

/// Kill the container, delete it and check nothing is left.
#[track_caller]
fn stop_and_delete(rt: &Runtime, id: &str, b: &Bundle) {
    rt.kill(id, "KILL").assert_ok();
    rt.wait_status(id, "stopped");
    rt.delete(id).assert_ok();
    assert_nothing_left(rt, id, b);
}

/// `exec ID args...`
#[track_caller]
fn exec(rt: &Runtime, id: &str, flags: &[&str], cmd: &[&str]) -> Out {
    let mut a = vec!["exec"];
    a.extend_from_slice(flags);
    a.push(id);
    a.extend_from_slice(cmd);
    rt.exec(&a)
}

/// `/proc/PID/ns/*` links by name.
fn namespaces_of(pid: i64) -> BTreeMap<String, String> {
    std::fs::read_dir(format!("/proc/{pid}/ns"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns: {e}"))
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                ns_id(e.path()),
            )
        })
        .collect()
}

/// Read a pid file, waiting for it to appear.
#[track_caller]
fn read_pid_file(p: &std::path::Path) -> i64 {
    let mut s = String::new();
    wait_for(POLL_TIMEOUT, || {
        s = read(p);
        !s.trim().is_empty()
    });
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file {} holds {s:?}", p.display()))
}

#[test]
fn exec_joins_namespaces_cgroup_and_rootfs() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.write_rootfs_file("/marker", "in-the-rootfs\n");
    let id = start_sleeper(&rt, &mut b, "execns");
    let init = rt.pid(&id);

    let pid_file = rt.scratch().join("exec.pid");
    let o = exec(
        &rt,
        &id,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "600"],
    );
    o.assert_ok();
    let pid = read_pid_file(&pid_file);
    assert_ne!(pid, init);
    assert!(pid_alive(pid), "exec'd process {pid} is not running");

    // Every namespace of the init, seen from the host.
    let want = namespaces_of(init);
    let got = namespaces_of(pid);
    assert_eq!(got, want, "namespaces of exec'd process vs init");
    assert_ne!(
        want["net"],
        ns_id("/proc/self/ns/net"),
        "the container should have its own net namespace"
    );
    // Same cgroup in every hierarchy.
    assert_eq!(
        read(format!("/proc/{pid}/cgroup")),
        read(format!("/proc/{init}/cgroup")),
        "cgroup of exec'd process vs init"
    );
    let cg = b.cgroups_path().unwrap();
    assert!(
        read(format!("/proc/{pid}/cgroup"))
            .lines()
            .any(|l| l.ends_with(&format!(":{cg}"))),
        "exec'd process not in {cg}: {}",
        read(format!("/proc/{pid}/cgroup"))
    );
    // Same root directory.
    let root = |p: i64| {
        let m = std::fs::metadata(format!("/proc/{p}/root")).unwrap();
        (m.dev(), m.ino())
    };
    assert_eq!(root(pid), root(init), "root of exec'd process vs init");

    // From inside: the rootfs, the hostname, and the namespaces.
    let o = exec(
        &rt,
        &id,
        &[],
        &[
            "sh",
            "-c",
            "cat /marker; hostname; for f in /proc/self/ns/*; do echo \"${f##*/}=$(readlink $f)\"; done",
        ],
    );
    o.assert_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "in-the-rootfs", "{}", o.stdout);
    assert_eq!(lines[1], "runc", "{}", o.stdout);
    let inside = kv_lines(&o.stdout);
    for (ns, link) in &want {
        assert_eq!(inside.get(ns), Some(link), "{ns} inside:\n{}", o.stdout);
    }
    stop_and_delete(&rt, &id, &b);
    assert!(!pid_alive(pid), "exec'd process survived the container");
}

/// A container with every namespace type (user with mappings, cgroup and,
/// where the kernel has it, time with an offset): exec joins them all.
#[test]
fn exec_joins_user_cgroup_and_time_namespaces() {
    require_root!();
    require!(
        std::path::Path::new("/proc/self/ns/user").exists(),
        "user namespaces"
    );
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.add_namespace("user")
        .uid_mappings(0, 100000, 65536)
        .gid_mappings(0, 100000, 65536)
        .add_namespace("cgroup");
    let timens = std::path::Path::new("/proc/self/ns/time").exists();
    if timens {
        b.add_namespace("time").set(
            "/linux/timeOffsets",
            json!({"monotonic": {"secs": 86400, "nanosecs": 0}}),
        );
    }
    let id = start_sleeper(&rt, &mut b, "execuserns");
    let init = rt.pid(&id);
    let pid_file = rt.scratch().join("exec.pid");
    exec(
        &rt,
        &id,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "600"],
    )
    .assert_ok();
    let pid = read_pid_file(&pid_file);
    let want = namespaces_of(init);
    assert_eq!(namespaces_of(pid), want);
    for ns in ["user", "cgroup", "mnt", "pid", "net"] {
        assert_ne!(
            want[ns],
            ns_id(format!("/proc/self/ns/{ns}")),
            "{ns} not new"
        );
    }
    let o = exec(
        &rt,
        &id,
        &[],
        &[
            "sh",
            "-c",
            "echo uid=$(id -u); echo uid_map=$(cat /proc/self/uid_map); \
             echo cgroup=$(grep '^0::' /proc/self/cgroup); \
             echo monotonic=$(grep monotonic /proc/self/timens_offsets 2>/dev/null)",
        ],
    );
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    assert_eq!(kv["uid"], "0", "{o:?}");
    assert_eq!(kv["uid_map"], "0 100000 65536", "{o:?}");
    // the cgroup namespace root is the container's cgroup
    assert_eq!(kv["cgroup"], "0::/", "{o:?}");
    if timens {
        let offs: Vec<&str> = kv["monotonic"].split_whitespace().collect();
        assert_eq!(offs, ["monotonic", "86400", "0"], "{o:?}");
    }
    stop_and_delete(&rt, &id, &b);
}

/// `exec` passes its stdin to the process and forwards the signals it gets.
#[test]
fn exec_passes_stdin_and_forwards_signals() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = start_sleeper(&rt, &mut b, "execsignals");
    let input = rt.scratch().join("input");
    std::fs::write(&input, "line one\nline two\n").unwrap();
    let o = rt
        .spawn_raw_with(
            &[
                "--root",
                rt.root_str(),
                "exec",
                &id,
                "sh",
                "-c",
                "cat; echo end",
            ],
            std::fs::File::open(&input).unwrap().into(),
        )
        .wait(CMD_TIMEOUT);
    o.assert_ok();
    assert_eq!(o.stdout, "line one\nline two\nend\n");

    let running = rt.spawn(&[
        "exec",
        &id,
        "sh",
        "-c",
        "trap 'echo got-term; exit 9' TERM; echo ready; while :; do usleep 10000; done",
    ]);
    let out = running.stdout_path();
    assert!(
        wait_for(POLL_TIMEOUT, || read(&out).contains("ready")),
        "exec'd shell did not start"
    );
    // SAFETY: plain kill(2) of the rt exec process we started.
    unsafe { libc::kill(running.pid() as i32, libc::SIGTERM) };
    let o = running.wait(CMD_TIMEOUT);
    assert_eq!(o.code(), Some(9), "{o:?}");
    assert_eq!(o.stdout, "ready\ngot-term\n");
    // Only the init is left.
    let o = rt.exec(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(pids, [rt.pid(&id)]);
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn exec_gets_container_env_and_returns_exit_status() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.env(&["PATH=/bin:/usr/bin", "FOO=from-config", "KEEP=kept"]);
    let id = start_sleeper(&rt, &mut b, "execenv");

    let o = exec(&rt, &id, &[], &["env"]);
    o.assert_ok();
    let env: BTreeSet<&str> = o.stdout.lines().collect();
    for e in ["PATH=/bin:/usr/bin", "FOO=from-config", "KEEP=kept"] {
        assert!(env.contains(e), "{e} missing from exec env:\n{}", o.stdout);
    }

    // -e overrides a variable of the config and adds new ones.
    let o = exec(&rt, &id, &["-e", "FOO=overridden", "-e", "NEW=1"], &["env"]);
    o.assert_ok();
    let env: Vec<&str> = o.stdout.lines().collect();
    assert!(env.contains(&"FOO=overridden"), "{}", o.stdout);
    assert!(!env.contains(&"FOO=from-config"), "{}", o.stdout);
    assert_eq!(
        env.iter().filter(|l| l.starts_with("FOO=")).count(),
        1,
        "{}",
        o.stdout
    );
    assert!(env.contains(&"NEW=1"), "{}", o.stdout);
    assert!(env.contains(&"KEEP=kept"), "{}", o.stdout);

    for (script, code) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ] {
        let o = exec(&rt, &id, &[], &["sh", "-c", script]);
        assert_eq!(o.code(), Some(code), "{script}: {o:?}");
    }
    // stdout and stderr of the process are exec's.
    let o = exec(&rt, &id, &[], &["sh", "-c", "echo out; echo err >&2"]);
    o.assert_ok();
    assert_eq!(o.stdout, "out\n");
    assert_eq!(o.stderr, "err\n");
    // exec returns when its process exits, even if a child it left behind
    // still holds stdout.
    let o = exec(&rt, &id, &[], &["sh", "-c", "sleep 600 & echo started"]);
    o.assert_ok();
    assert_eq!(o.stdout, "started\n");
    assert!(o.elapsed < Duration::from_secs(10), "{:?}", o.elapsed);
    // The container is unaffected.
    assert_eq!(rt.status(&id), "running");
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn exec_cwd_user_and_groups() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.write_rootfs_file("/srv/work/here", "");
    let id = start_sleeper(&rt, &mut b, "execuser");

    let o = exec(
        &rt,
        &id,
        &[
            "--cwd",
            "/srv/work",
            "-u",
            "1000:1000",
            "-g",
            "2000",
            "-g",
            "3000",
        ],
        &[
            "sh",
            "-c",
            "pwd; ls; id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
        ],
    );
    o.assert_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["/srv/work", "here", "1000", "1000"],
        "{}",
        o.stdout
    );
    let status: BTreeMap<&str, Vec<u32>> = lines[4..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            (
                k,
                v.split_whitespace().map(|x| x.parse().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(status["Uid"], [1000; 4], "{}", o.stdout);
    assert_eq!(status["Gid"], [1000; 4], "{}", o.stdout);
    let groups: BTreeSet<u32> = status["Groups"].iter().copied().collect();
    assert_eq!(groups, BTreeSet::from([2000, 3000]), "{}", o.stdout);

    // -u UID alone: gid 0; the default cwd is the config's.
    let o = exec(
        &rt,
        &id,
        &["--user", "1234"],
        &["sh", "-c", "id -u; id -g; pwd"],
    );
    o.assert_ok();
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), ["1234", "0", "/"]);
    stop_and_delete(&rt, &id, &b);
}

/// With inheritable capabilities in the config, `--cap` also raises ambient
/// ones, which the kernel grants only for caps both permitted and
/// inheritable: a non-root user keeps those across its exec, and no
/// capability is ever made inheritable by `--cap`.
#[test]
fn exec_cap_ambient_only_with_inheritable_caps_in_the_config() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.no_new_privileges(false)
        .all_caps(&["CAP_NET_RAW", "CAP_KILL"]);
    b.caps("bounding", &["CAP_NET_RAW", "CAP_KILL", "CAP_CHOWN"])
        .caps("permitted", &["CAP_NET_RAW", "CAP_KILL", "CAP_CHOWN"]);
    let id = start_sleeper(&rt, &mut b, "execcapamb");
    let show = ["grep", "-E", "^Cap", "/proc/self/status"];
    let o = exec(&rt, &id, &["--cap", "CAP_SYS_ADMIN", "-u", "1000"], &show);
    o.assert_ok();
    let caps = parse_cap_status(&o.stdout);
    let config = cap_mask(&["CAP_NET_RAW", "CAP_KILL"]);
    let added = cap_mask(&["CAP_SYS_ADMIN"]);
    assert_eq!(caps["CapInh"], config, "inheritable: {}", o.stdout);
    assert_eq!(caps["CapAmb"], config, "ambient: {}", o.stdout);
    assert_eq!(caps["CapBnd"] & added, added, "bounding: {}", o.stdout);
    assert_eq!(caps["CapEff"], config, "effective after exec: {}", o.stdout);
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn exec_cap_and_no_new_privs() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.no_new_privileges(false);
    let id = start_sleeper(&rt, &mut b, "execcap");
    let init = rt.pid(&id);
    let init_caps = parse_cap_status(&read(format!("/proc/{init}/status")));
    let show = ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"];

    let o = exec(&rt, &id, &[], &show);
    o.assert_ok();
    let caps = parse_cap_status(&o.stdout);
    let sys_admin = cap_mask(&["CAP_SYS_ADMIN"]);
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(caps[set], init_caps[set], "{set} of exec vs init");
        assert_eq!(caps[set] & sys_admin, 0, "{set}: {}", o.stdout);
    }
    assert_eq!(kv_status(&o.stdout)["NoNewPrivs"], "0", "{}", o.stdout);

    // --cap adds to the bounding, permitted and effective sets, never to the
    // inheritable one (CVE-2022-29162), nor to ambient without inheritable caps
    // in the config; a non-root user's permitted caps go at its exec (no ambient).
    let added = cap_mask(&["CAP_SYS_ADMIN", "CAP_NET_RAW"]);
    for user in ["0", "1000"] {
        let o = exec(
            &rt,
            &id,
            &["--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_RAW", "-u", user],
            &show,
        );
        o.assert_ok();
        let caps = parse_cap_status(&o.stdout);
        let sets: &[&str] = if user == "0" {
            &["CapBnd", "CapPrm", "CapEff"]
        } else {
            &["CapBnd"]
        };
        for set in sets {
            assert_eq!(
                caps[*set] & added,
                added,
                "user {user}: {set} lacks the added caps:\n{}",
                o.stdout
            );
        }
        for set in ["CapInh", "CapAmb"] {
            assert_eq!(caps[set] & added, 0, "user {user}: {set}:\n{}", o.stdout);
        }
        assert_eq!(
            caps["CapBnd"],
            init_caps["CapBnd"] | added,
            "user {user}: bounding set"
        );
    }

    let o = exec(&rt, &id, &["--no-new-privs"], &show);
    o.assert_ok();
    assert_eq!(kv_status(&o.stdout)["NoNewPrivs"], "1", "{}", o.stdout);
    // The init is not affected.
    assert_eq!(
        kv_status(&read(format!("/proc/{init}/status")))["NoNewPrivs"],
        "0"
    );
    stop_and_delete(&rt, &id, &b);
}

fn kv_status(s: &str) -> BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn exec_with_process_json() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.add_env("FROM_CONFIG=1");
    let id = start_sleeper(&rt, &mut b, "execjson");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [4000]},
        "args": ["sh", "-c", "id -u; id -g; id -G; pwd; echo FOO=$FOO; echo FROM_CONFIG=$FROM_CONFIG; exit 4"],
        "env": ["PATH=/bin", "FOO=from-json"],
        "cwd": "/tmp",
        "capabilities": {
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"]
        },
        "noNewPrivileges": true
    });
    let p = rt.scratch().join("process.json");
    std::fs::write(&p, serde_json::to_vec(&process).unwrap()).unwrap();
    let o = exec(&rt, &id, &["-p", p.to_str().unwrap()], &[]);
    assert_eq!(o.code(), Some(4), "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "1000",
            "1000",
            "1000 4000",
            "/tmp",
            "FOO=from-json",
            "FROM_CONFIG="
        ],
        "{o:?}"
    );
    // --process=FILE works too.
    let o = exec(&rt, &id, &[&format!("--process={}", p.display())], &[]);
    assert_eq!(o.code(), Some(4), "{o:?}");
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn exec_detached_writes_pid_file_and_returns() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    let id = start_sleeper(&rt, &mut b, "execdetach");
    let init = rt.pid(&id);
    let pid_file = rt.scratch().join("detached.pid");
    let o = exec(
        &rt,
        &id,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sh", "-c", "echo $$ > /shared/inner-pid; exec sleep 600"],
    );
    o.assert_ok();
    assert!(
        o.elapsed < Duration::from_secs(10),
        "exec -d did not return at once: {:?}",
        o.elapsed
    );
    assert!(o.stdout.is_empty(), "{o:?}");
    // The pid file holds the host pid of the process, written before exec
    // returned.
    let content = read(&pid_file);
    let pid: i64 = content
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file holds {content:?}"));
    assert!(pid_alive(pid), "pid {pid} from the pid file is not running");
    assert_ne!(pid, init);
    let ok = wait_for(POLL_TIMEOUT, || {
        read(format!("/proc/{pid}/cmdline")).starts_with("sleep\x00600\x00")
    });
    assert!(
        ok,
        "pid {pid} is not the exec'd process: {:?}",
        read(format!("/proc/{pid}/cmdline"))
    );
    // Its pid in the container's pid namespace is another one.
    let inner: i64 = read(shared.join("inner-pid")).trim().parse().unwrap();
    assert_ne!(inner, pid);
    let nspid = read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:").map(str::to_string))
        .unwrap();
    assert_eq!(
        nspid.split_whitespace().collect::<Vec<_>>(),
        [pid.to_string(), inner.to_string()]
    );
    // The container's processes now include it.
    let o = rt.exec(&["ps", "--format", "json", &id]);
    o.assert_ok();
    let pids: BTreeSet<i64> = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(pids, BTreeSet::from([init, pid]));

    stop_and_delete(&rt, &id, &b);
    assert!(!pid_alive(pid));
}

fn clean(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "")
}

/// `exec -d -t --console-socket`: the pty master goes to the socket, the
/// process's stdio is the slave, and it is interactive.
#[test]
fn exec_detached_tty() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = start_sleeper(&rt, &mut b, "exectty");
    let sock = ConsoleSocket::bind(rt.scratch().join("console.sock"));
    let pid_file = rt.scratch().join("tty.pid");
    let o = exec(
        &rt,
        &id,
        &[
            "-d",
            "--tty",
            "--console-socket",
            sock.path_str(),
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &[
            "sh",
            "-c",
            "read line; echo \"got:$line\"; echo tty=$(tty); \
             for f in 0 1 2; do if [ -t $f ]; then echo fd$f=tty; else echo fd$f=notty; fi; done; \
             read a b; echo res=$((a * b))",
        ],
    );
    o.assert_ok();
    let (master, _) = sock
        .recv_master(Duration::from_secs(10))
        .expect("no pty master received on the console socket");
    assert!(is_pty_master(master.as_raw_fd()));
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid));
    write_fd(master.as_raw_fd(), b"hello exec\n6 7\n");
    let out = clean(&read_fd_to_end(master.as_raw_fd(), Duration::from_secs(10)));
    assert!(out.lines().any(|l| l == "got:hello exec"), "{out:?}");
    assert!(out.lines().any(|l| l == "res=42"), "{out:?}");
    let kv = kv_lines(&out);
    assert!(
        kv.get("tty").is_some_and(|t| t.starts_with("/dev/pts/")),
        "{out:?}"
    );
    for f in ["fd0", "fd1", "fd2"] {
        assert_eq!(kv.get(f).map(String::as_str), Some("tty"), "{f}: {out:?}");
    }
    assert!(wait_for(POLL_TIMEOUT, || !pid_alive(pid)));
    assert_eq!(rt.status(&id), "running");
    stop_and_delete(&rt, &id, &b);
}

/// Files the test hands to `rt exec` as fds 3, 4, 5.
fn extra_files(rt: &Runtime) -> Vec<std::fs::File> {
    ["a", "b", "c"]
        .iter()
        .map(|tag| {
            let p = rt.scratch().join(format!("extra-fd-{tag}"));
            std::fs::write(&p, format!("content-{tag}\n")).unwrap();
            std::fs::File::open(&p).unwrap()
        })
        .collect()
}

/// Prints `fdN=<link>` (or `fdN=none`) for 3, 4, 5 and what fd 3 holds.
const FD_SCRIPT: &str =
    "for n in 3 4 5; do printf 'fd%s=' $n; readlink /proc/self/fd/$n || echo none; done; \
     echo data=$(cat /proc/self/fd/3 2>/dev/null)";

#[test]
fn exec_preserve_fds() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = start_sleeper(&rt, &mut b, "execfds");
    let files = extra_files(&rt);
    let fds: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();

    // Without --preserve-fds none of the caller's extra fds gets in.
    let o = rt
        .spawn_with_fds(&["exec", &id, "sh", "-c", FD_SCRIPT], &fds)
        .wait(CMD_TIMEOUT);
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    for fd in ["fd3", "fd4", "fd5"] {
        assert_eq!(kv.get(fd).map(String::as_str), Some("none"), "{o:?}");
    }

    // --preserve-fds 2: fds 3 and 4, not 5.
    let o = rt
        .spawn_with_fds(
            &["exec", "--preserve-fds", "2", &id, "sh", "-c", FD_SCRIPT],
            &fds,
        )
        .wait(CMD_TIMEOUT);
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    assert!(
        kv.get("fd3").is_some_and(|l| l.ends_with("/extra-fd-a")),
        "{o:?}"
    );
    assert!(
        kv.get("fd4").is_some_and(|l| l.ends_with("/extra-fd-b")),
        "{o:?}"
    );
    assert_eq!(kv.get("fd5").map(String::as_str), Some("none"), "{o:?}");
    assert_eq!(
        kv.get("data").map(String::as_str),
        Some("content-a"),
        "{o:?}"
    );

    // The init did not get them.
    let init = rt.pid(&id);
    let held: Vec<String> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .filter(|l| l.contains("extra-fd-"))
        .collect();
    assert!(held.is_empty(), "init holds {held:?}");
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn exec_into_created_container_runs() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "600"]);
    let id = rt.id("execcreated");
    rt.create(&id, &b).assert_ok();
    let o = exec(&rt, &id, &[], &["echo", "in-created"]);
    o.assert_ok();
    assert_eq!(o.stdout, "in-created\n");
    assert_eq!(rt.status(&id), "created");
    rt.start(&id).assert_ok();
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn exec_into_stopped_or_missing_container_fails() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("exit 0");
    let id = rt.id("execstopped");
    rt.create_start(&id, &b);
    rt.wait_status(&id, "stopped");
    let o = exec(&rt, &id, &[], &["true"]);
    o.assert_err();
    assert!(
        o.stderr.contains("stopped") || o.stderr.contains("not running"),
        "{o:?}"
    );
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);

    let o = exec(&rt, "no-such-container", &[], &["true"]);
    o.assert_err();
}

#[test]
fn exec_of_missing_binary_or_cwd_fails() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = start_sleeper(&rt, &mut b, "execmissing");
    let o = exec(&rt, &id, &[], &["/no/such/binary"]);
    o.assert_err();
    let o = exec(&rt, &id, &["--cwd", "/no/such/dir"], &["true"]);
    o.assert_err();
    // No leftover process from the failed execs.
    let o = rt.exec(&["ps", "--format", "json", &id]);
    o.assert_ok();
    let pids: Vec<i64> = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(pids, [rt.pid(&id)]);
    assert_eq!(rt.status(&id), "running");
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn many_execs_in_parallel() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = start_sleeper(&rt, &mut b, "execmany");
    let spawned: Vec<_> = (0..6)
        .map(|i| rt.spawn(&["exec", &id, "sh", "-c", &format!("echo n={i}; exit {i}")]))
        .collect();
    for (i, s) in spawned.into_iter().enumerate() {
        let o = s.wait(CMD_TIMEOUT);
        assert_eq!(o.code(), Some(i as i32), "{o:?}");
        assert_eq!(o.stdout, format!("n={i}\n"));
    }
    stop_and_delete(&rt, &id, &b);
}
