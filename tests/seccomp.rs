//! `linux.seccomp`: real profiles loaded into busybox containers and checked from
//! inside: podman's default profile (containers-common), a profile denying one
//! syscall with a chosen errno, the ENOSYS answer for syscalls newer than the
//! profile, SCMP_ACT_NOTIFY with an agent on `listenerPath`, flags, unknown names,
//! and `exec`'d processes.
//!
//! Syscalls busybox has no applet for are made by the `rt-test-syscall` helper (run
//! with the host's /usr and /lib bind-mounted read-only); their numbers are
//! x86_64's, so those tests need an x86_64 host.
//!
//! Against runc 1.1.5 all pass but three, where rt differs on purpose:
//! `notify_hands_the_listener_to_the_agent` (runc loads the filter at `create`, so
//! the agent sees "creating"; rt loads it at `start`, right before the exec, when
//! noNewPrivileges is set), `flags_are_accepted_and_features_list_seccomp` (runc
//! 1.1's `features` has no `supportedFlags`) and `bad_profiles_fail_create_with_a_message`
//! (runc accepts an `errnoRet` on actions without one, which the runtime spec
//! forbids, and words its errors otherwise).

use rt_tests::*;
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// The helper binary: `rt-test-syscall NR [ARG...]` prints `ret=N` or `errno=N`.
const SYSCALL: &str = env!("CARGO_BIN_EXE_rt-test-syscall");
/// containers-common's profile, which podman (and buildah, CRI-O) apply by default.
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

const EPERM: i32 = 1;
const ENOSYS: i32 = 38;

/// The message busybox prints for errno 42 (ENOMSG), our "chosen errno".
const ENOMSG_TEXT: &str = "No message of desired type";

/// A profile allowing everything but `mkdir`, which fails with errno 42.
fn deny_mkdir() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]
    })
}

/// podman's translation of containers-common's profile (Docker's format, with
/// `includes`/`excludes`) into `linux.seccomp` for an amd64 container whose bounding
/// set is `caps` (containers/common, pkg/seccomp).
fn podman_profile(caps: &[&str]) -> Value {
    let text = std::fs::read_to_string(PODMAN_PROFILE).unwrap();
    let p: Value = serde_json::from_str(&text).unwrap();
    let has_all = |list: &Value, of: &[&str]| {
        list.as_array()
            .unwrap()
            .iter()
            .all(|v| of.contains(&v.as_str().unwrap()))
    };
    let has_any = |list: &Value, of: &[&str]| {
        list.as_array()
            .unwrap()
            .iter()
            .any(|v| of.contains(&v.as_str().unwrap()))
    };
    let arches = ["amd64"];
    let mut syscalls = vec![];
    for s in p["syscalls"].as_array().unwrap() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if exc.get("arches").is_some_and(|a| has_any(a, &arches))
            || exc.get("caps").is_some_and(|c| has_any(c, caps))
            || inc.get("arches").is_some_and(|a| !has_any(a, &arches))
            || inc.get("caps").is_some_and(|c| !has_all(c, caps))
        {
            continue;
        }
        assert!(
            inc.get("minKernel").is_none() && exc.get("minKernel").is_none(),
            "minKernel is not handled here: {s}"
        );
        let mut e = json!({"names": s["names"], "action": s["action"]});
        if let Some(r) = s.get("errnoRet") {
            e["errnoRet"] = r.clone();
        }
        if let Some(args) = s["args"].as_array().filter(|a| !a.is_empty()) {
            e["args"] = args
                .iter()
                .map(|a| json!({"index": a["index"], "value": a["value"], "valueTwo": a["valueTwo"], "op": a["op"]}))
                .collect();
        }
        syscalls.push(e);
    }
    let mut archs = vec![];
    for m in p["archMap"].as_array().unwrap() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            archs.push(m["architecture"].clone());
            archs.extend(m["subArchitectures"].as_array().unwrap().iter().cloned());
        }
    }
    let mut out = json!({
        "defaultAction": p["defaultAction"],
        "architectures": archs,
        "syscalls": syscalls,
    });
    if let Some(r) = p.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = r.clone();
    }
    out
}

fn require_podman_profile() -> bool {
    requirement(
        Path::new(PODMAN_PROFILE).exists(),
        module_path!(),
        "containers-common's seccomp profile (apt-get install golang-github-containers-common)",
    )
}

/// `errno=N` or `ret=N` lines of the helper, in order.
fn helper_results(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("errno=") || l.starts_with("ret="))
        .map(str::to_string)
        .collect()
}

/// Run `b` in the foreground and return what the container printed (stdout then
/// stderr); the container must exit 0.
#[track_caller]
fn run_ok(rt: &Runtime, b: &Bundle, name: &str) -> String {
    let id = rt.id(name);
    let o = rt.run(&id, b);
    o.assert_ok();
    assert_no_state(rt, &id);
    format!("{}{}", o.stdout, o.stderr)
}

#[test]
fn podman_default_profile() {
    require_root!();
    require!(
        cfg!(target_arch = "x86_64"),
        "an x86_64 host (syscall numbers)"
    );
    if !require_podman_profile() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.host_userland(SYSCALL, "/syscall");
    // As podman: no no_new_privs, so the filter is loaded while the init still has
    // CAP_SYS_ADMIN, before it drops its capabilities.
    b.no_new_privileges(false);
    // sysfs(2) (139) is on the profile's EPERM list; add_key(2) (248) is not in it at
    // all, so it gets the default action, ENOSYS.
    b.sh("grep ^Seccomp /proc/self/status; \
          echo data > /dev/shm/f && cat /dev/shm/f && mkdir /dev/shm/d && ls -d /dev/shm/d && \
          ps >/dev/null && id -u && hostname && echo fine; \
          /syscall 139 3; /syscall 248 0 0 0 0 0");
    let bare = {
        let mut c = Bundle::busybox();
        c.host_userland(SYSCALL, "/syscall");
        c.config = b.config.clone();
        run_ok(&rt, &c, "noseccomp")
    };
    b.set(
        "/linux/seccomp",
        podman_profile(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
    );
    let out = run_ok(&rt, &b, "podman");

    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");
    for want in ["data\n", "/dev/shm/d\n", "0\nrunc\nfine\n"] {
        assert!(out.contains(want), "{want:?} missing from\n{out}");
    }
    assert_eq!(
        helper_results(&out),
        [format!("errno={EPERM}"), format!("errno={ENOSYS}")],
        "{out}"
    );
    // Without the profile the same calls get through to the kernel.
    assert!(bare.contains("Seccomp:\t0\n"), "{bare}");
    let r = helper_results(&bare);
    assert!(r[0].starts_with("ret="), "sysfs without seccomp: {bare}");
    assert_ne!(
        r[1],
        format!("errno={ENOSYS}"),
        "add_key without seccomp: {bare}"
    );
}

#[test]
fn deny_one_syscall_with_a_chosen_errno() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/linux/seccomp", deny_mkdir());
    b.sh(
        "grep ^Seccomp: /proc/self/status; mkdir /dev/shm/x; echo mkdir=$?; \
          touch /dev/shm/y; ls /dev/shm; echo end",
    );
    let out = run_ok(&rt, &b, "denyone");
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(
        out.contains(&format!(
            "mkdir: can't create directory '/dev/shm/x': {ENOMSG_TEXT}"
        )),
        "{out}"
    );
    assert!(out.contains("mkdir=1\n"), "{out}");
    assert!(out.contains("y\nend\n"), "other syscalls work: {out}");
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    require_root!();
    require!(
        cfg!(target_arch = "x86_64"),
        "an x86_64 host (syscall numbers)"
    );
    if !require_podman_profile() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.host_userland(SYSCALL, "/syscall");
    // podman's allow-list as if written for Linux 5.3: nothing after clone3 (435),
    // and EPERM for what it does not list.
    let newer = [
        "close_range",
        "openat2",
        "pidfd_getfd",
        "faccessat2",
        "process_madvise",
        "epoll_pwait2",
        "mount_setattr",
        "quotactl_fd",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "memfd_secret",
        "process_mrelease",
        "futex_waitv",
        "set_mempolicy_home_node",
        "cachestat",
        "fchmodat2",
        "map_shadow_stack",
        "futex_wake",
        "futex_wait",
        "futex_requeue",
        "statmount",
        "listmount",
        "lsm_get_self_attr",
        "lsm_set_self_attr",
        "lsm_list_modules",
        "mseal",
        "setxattrat",
        "getxattrat",
        "listxattrat",
        "removexattrat",
        "open_tree_attr",
        "file_getattr",
        "file_setattr",
    ];
    let mut p = podman_profile(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    p["defaultErrnoRet"] = json!(EPERM);
    for s in p["syscalls"].as_array_mut().unwrap() {
        let names: Vec<Value> = s["names"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| !newer.contains(&n.as_str().unwrap()))
            .cloned()
            .collect();
        s["names"] = json!(names);
    }
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .retain(|s| !s["names"].as_array().unwrap().is_empty());
    b.set("/linux/seccomp", p);
    // close_range (436), newer than the profile: ENOSYS, so a libc falls back. add_key
    // (248), older but not listed: the default, EPERM. getpid (39): allowed.
    b.sh("/syscall 436 0xffffffff 0xffffffff 0; /syscall 248 0 0 0 0 0; /syscall 39");
    let out = run_ok(&rt, &b, "enosys");
    let r = helper_results(&out);
    assert_eq!(r.len(), 3, "{out}");
    assert_eq!(
        r[..2],
        [format!("errno={ENOSYS}"), format!("errno={EPERM}")],
        "{out}"
    );
    assert!(r[2].starts_with("ret="), "{out}");
}

/// seccomp_notif and seccomp_notif_resp (linux/seccomp.h).
#[repr(C)]
#[derive(Default, Debug)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const SECCOMP_IOCTL_NOTIF_RECV: u64 = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: u64 = 0xc018_2101;

fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) > 0 }
}

/// Accept the runtime's connection and read the container process state and the
/// listener it carries; then the runtime closes the connection.
#[track_caller]
fn accept_state(listener: &UnixListener) -> (Value, OwnedFd) {
    assert!(
        readable(listener.as_raw_fd(), Duration::from_secs(30)),
        "the runtime did not connect to listenerPath"
    );
    let (conn, _) = listener.accept().unwrap();
    assert!(
        readable(conn.as_raw_fd(), Duration::from_secs(30)),
        "no state sent"
    );
    let (data, mut fds) = recv_with_fds(&conn);
    assert_eq!(fds.len(), 1, "one fd with the state");
    // The rest of the state, if the runtime split it, then EOF.
    let mut all = data;
    std::io::Read::read_to_end(&mut &conn, &mut all).unwrap();
    let v: Value = serde_json::from_slice(&all)
        .unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", String::from_utf8_lossy(&all)));
    (v, fds.remove(0))
}

fn recv_with_fds(sock: &UnixStream) -> (Vec<u8>, Vec<OwnedFd>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE((4 * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8) + 1];
    // SAFETY: all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg points to valid buffers that outlive the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    let mut fds = Vec::new();
    // SAFETY: walking the control messages recvmsg filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    buf.truncate(n as usize);
    (buf, fds)
}

/// Wait for one notification on `listener` and answer it with `-errno`.
#[track_caller]
fn answer(listener: &OwnedFd, errno: i32) -> Notif {
    assert!(
        readable(listener.as_raw_fd(), Duration::from_secs(30)),
        "no notification came"
    );
    let mut n = Notif::default();
    // SAFETY: n is a zeroed seccomp_notif, as the kernel wants.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let resp = NotifResp {
        id: n.id,
        error: -errno,
        ..Default::default()
    };
    // SAFETY: resp is a valid seccomp_notif_resp.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND as _, &resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    n
}

/// mkdir or mkdirat, as libc picks.
fn is_mkdir(nr: i32) -> bool {
    if cfg!(target_arch = "x86_64") {
        nr == 83 || nr == 258
    } else {
        nr == 34
    }
}

#[test]
fn notify_hands_the_listener_to_the_agent() {
    require_root!();
    let rt = Runtime::new();
    let sock = rt.scratch().join("agent.sock");
    let agent = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::busybox();
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "from-the-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    b.set("/annotations", json!({"org.example": "yes"}));
    b.sh("mkdir /dev/shm/x; echo mkdir=$?; echo ready; exec sleep 600");
    let id = rt.id("notify");
    let created = rt.create(&id, &b);
    created.assert_ok();
    // noNewPrivileges: the filter is loaded at start, right before the exec.
    let start = rt.spawn(&["start", &id]);
    let (state, listener) = accept_state(&agent);
    let pid = rt.pid(&id);
    assert!(
        state["ociVersion"].as_str().unwrap().starts_with("1."),
        "{state}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["pid"], json!(pid), "{state}");
    assert_eq!(state["metadata"], "from-the-test", "{state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    assert_eq!(state["state"]["status"], "created", "{state}");
    assert_eq!(state["state"]["pid"], json!(pid), "{state}");
    assert_eq!(state["state"]["bundle"], json!(b.path_str()), "{state}");
    assert_eq!(
        state["state"]["annotations"]["org.example"], "yes",
        "{state}"
    );
    start.wait(CMD_TIMEOUT).assert_ok();

    let n = answer(&listener, libc::ETXTBSY);
    assert!(is_mkdir(n.nr), "notified for syscall {}", n.nr);
    assert!(
        wait_for(POLL_TIMEOUT, || created.read_stdout().contains("ready")),
        "{}",
        created.read_stderr()
    );
    assert!(created.read_stdout().contains("mkdir=1\n"));
    assert!(
        created
            .read_stderr()
            .contains("mkdir: can't create directory '/dev/shm/x': Text file busy"),
        "{}",
        created.read_stderr()
    );

    // An exec'd process has the filter too, and its own listener: a new connection
    // whose pid is the new process's and whose state is the running container's.
    let exec = rt.spawn(&["exec", &id, "mkdir", "/dev/shm/z"]);
    let (state, listener2) = accept_state(&agent);
    assert_eq!(state["state"]["status"], "running", "{state}");
    assert_eq!(state["state"]["pid"], json!(pid), "{state}");
    assert_ne!(state["pid"], json!(pid), "{state}");
    let n = answer(&listener2, libc::EXDEV);
    assert!(is_mkdir(n.nr), "notified for syscall {}", n.nr);
    assert_eq!(i64::from(n.pid), state["pid"].as_i64().unwrap());
    let o = exec.wait(CMD_TIMEOUT);
    assert_eq!(o.code(), Some(1), "{o:?}");
    assert!(
        o.stderr.contains("Invalid cross-device link"),
        "{}",
        o.stderr
    );

    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn notify_without_no_new_privs_hands_over_at_create() {
    require_root!();
    let rt = Runtime::new();
    let sock = rt.scratch().join("agent.sock");
    let agent = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::busybox();
    b.no_new_privileges(false);
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    b.sh("mkdir /dev/shm/x; echo mkdir=$?");
    let id = rt.id("notifycreate");
    rt.create(&id, &b).assert_ok();
    let (state, listener) = accept_state(&agent);
    assert_eq!(state["state"]["status"], "creating", "{state}");
    assert!(state.get("metadata").is_none(), "{state}");
    let run = rt.spawn(&["start", &id]);
    answer(&listener, libc::EACCES);
    run.wait(CMD_TIMEOUT).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn flags_are_accepted_and_features_list_seccomp() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let mut p = deny_mkdir();
    p["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]);
    b.set("/linux/seccomp", p);
    b.sh("mkdir /dev/shm/x; echo mkdir=$?");
    let out = run_ok(&rt, &b, "flags");
    assert!(
        out.contains(ENOMSG_TEXT) && out.contains("mkdir=1"),
        "{out}"
    );

    let f = rt.exec(&["features"]);
    f.assert_ok();
    let f: Value = serde_json::from_str(&f.stdout).unwrap();
    let s = &f["linux"]["seccomp"];
    assert_eq!(s["enabled"], true, "{s}");
    for (key, want) in [
        ("actions", "SCMP_ACT_NOTIFY"),
        ("actions", "SCMP_ACT_KILL_PROCESS"),
        ("operators", "SCMP_CMP_MASKED_EQ"),
        ("knownFlags", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
        ("supportedFlags", "SECCOMP_FILTER_FLAG_LOG"),
    ] {
        assert!(
            s[key].as_array().unwrap().contains(&json!(want)),
            "{key} lacks {want}: {s}"
        );
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            s["archs"],
            json!(["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"])
        );
    }
}

#[test]
fn unknown_syscall_names_are_skipped() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["rt_no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
                {"names": ["another_unknown_one"], "action": "SCMP_ACT_KILL"}
            ]
        }),
    );
    b.sh("mkdir /dev/shm/x; echo mkdir=$?");
    let out = run_ok(&rt, &b, "unknown");
    assert!(
        out.contains(ENOMSG_TEXT) && out.contains("mkdir=1"),
        "{out}"
    );
}

#[test]
fn kill_and_trap_end_the_process_with_sigsys() {
    require_root!();
    let rt = Runtime::new();
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
        let mut b = Bundle::busybox();
        b.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]}),
        );
        // No core file for the signal.
        b.rlimit("RLIMIT_CORE", 0, 0);
        // A path, so the shell forks and execs mkdir rather than running it itself.
        b.sh("/bin/mkdir /dev/shm/x; echo status=$?");
        let out = run_ok(&rt, &b, "sigsys");
        // 128 + SIGSYS
        assert!(out.contains("status=159\n"), "{action}: {out}");
    }
}

/// A profile need not allow what rt does after loading it early (without
/// no_new_privs, before the capabilities go): close_range here, refused and
/// then fatal. The runtime-tools suite's profile is such a one.
#[test]
fn early_filter_need_not_allow_the_runtime_s_own_syscalls() {
    require_root!();
    let rt = Runtime::new();
    for action in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"] {
        let mut b = Bundle::busybox();
        b.no_new_privileges(false);
        b.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["close_range"], "action": action}]
            }),
        );
        b.args(&["sleep", "600"]);
        let id = rt.id("closerange");
        rt.create_start(&id, &b);
        let o = rt.exec(&["exec", &id, "echo", "exec-ran"]);
        o.assert_ok();
        assert_eq!(o.stdout, "exec-ran\n", "{action}");
        rt.kill(&id, "KILL").assert_ok();
        rt.wait_status(&id, "stopped");
        rt.delete(&id).assert_ok();
        assert_nothing_left(&rt, &id, &b);
    }
}

/// The check that the working directory lies inside the container uses
/// getcwd; a profile loaded before it (no no_new_privs) may refuse getcwd,
/// as the runtime-tools suite's does: the check then walks `..` instead.
#[test]
fn early_filter_refusing_getcwd() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.no_new_privileges(false);
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
        }),
    );
    b.set("/process/cwd", json!("/tmp"));
    b.sh("echo in=$(stat -c %i .) tmp=$(stat -c %i /tmp)");
    let out = run_ok(&rt, &b, "nogetcwd");
    let line = out
        .lines()
        .find(|l| l.starts_with("in="))
        .unwrap_or_default();
    let (here, tmp) = line.split_once(' ').unwrap_or_default();
    assert_eq!(
        here.trim_start_matches("in="),
        tmp.trim_start_matches("tmp="),
        "{out}"
    );
}

#[test]
fn exec_gets_the_filter() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // Without no_new_privs the exec'd process loads it before dropping capabilities.
    b.no_new_privileges(false);
    b.set("/linux/seccomp", deny_mkdir());
    b.args(&["sleep", "600"]);
    let id = rt.id("exec");
    rt.create_start(&id, &b);
    let o = rt.exec(&["exec", &id, "mkdir", "/dev/shm/y"]);
    assert_eq!(o.code(), Some(1), "{o:?}");
    assert!(o.stderr.contains(ENOMSG_TEXT), "{}", o.stderr);
    let o = rt.exec(&["exec", &id, "grep", "^Seccomp", "/proc/self/status"]);
    o.assert_ok();
    assert!(o.stdout.contains("Seccomp:\t2\n"), "{}", o.stdout);
    // With no_new_privs (the late load) too.
    let o = rt.exec(&[
        "exec",
        "--no-new-privs",
        &id,
        "sh",
        "-c",
        "mkdir /dev/shm/y; touch /dev/shm/t && echo ok",
    ]);
    o.assert_ok();
    assert!(o.stderr.contains(ENOMSG_TEXT), "{}", o.stderr);
    assert_eq!(o.stdout, "ok\n");
    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn bad_profiles_fail_create_with_a_message() {
    require_root!();
    let rt = Runtime::new();
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]}),
            "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_ALLOW returns no errno",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": rt.scratch().join("nobody.sock"),
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "connect to the seccomp agent at",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index: 9",
        ),
    ];
    for (profile, want) in cases {
        let mut b = Bundle::busybox();
        b.set("/linux/seccomp", profile);
        let id = rt.id("bad");
        let o = rt.create(&id, &b);
        o.assert_err();
        assert!(o.stderr.contains(want), "want {want:?}: {}", o.stderr);
        assert_nothing_left(&rt, &id, &b);
    }
}
