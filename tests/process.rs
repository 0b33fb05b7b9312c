//! `process` settings checked from inside the container: args, env, cwd,
//! user, groups, umask, capabilities, rlimits, noNewPrivileges, oomScoreAdj.

use rt_tests::*;
use std::collections::BTreeSet;

/// `run` the bundle in the foreground and return its stdout (must exit 0).
#[track_caller]
fn run_ok(rt: &Runtime, b: &Bundle, name: &str) -> String {
    let id = rt.id(name);
    let o = rt.run(&id, b);
    o.assert_ok();
    assert_nothing_left(rt, &id, b);
    o.stdout
}

#[test]
fn args_passed_verbatim() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let args = [
        "sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "argv0",
        "a b",
        "",
        "c'd",
        "*",
        "$HOME",
    ];
    b.args(&args);
    let out = run_ok(&rt, &b, "args");
    let want: Vec<String> = args[4..].iter().map(|a| format!("[{a}]")).collect();
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, want);
}

#[test]
fn env_is_as_configured() {
    require_root!();
    let mut rt = Runtime::new();
    // must not leak from the runtime's environment into the container
    rt.env
        .push(("RT_TEST_LEAK".to_string(), "leaked".to_string()));
    let mut b = Bundle::busybox();
    let env = [
        "PATH=/bin:/usr/bin",
        "FOO=bar baz",
        "EMPTY=",
        "WITH_EQ=a=b",
        "HOME=/home/somewhere",
    ];
    b.env(&env).args(&["env"]);
    let out = run_ok(&rt, &b, "env");
    let got: BTreeSet<&str> = out.lines().collect();
    for e in env {
        assert!(got.contains(e), "{e:?} missing from env:\n{out}");
    }
    let extra: Vec<&&str> = got.iter().filter(|l| !env.contains(l)).collect();
    assert!(extra.is_empty(), "unexpected env vars: {extra:?}");
}

#[test]
fn cwd_is_as_configured() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.write_rootfs_file("/srv/app/marker", "x");
    let cwd = "/srv/app";
    b.cwd(cwd).sh("pwd; ls");
    let out = run_ok(&rt, &b, "cwd");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [cwd, "marker"]);
}

#[test]
fn user_group_and_additional_gids() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let (uid, gid, extra) = (1000u32, 1000u32, [2000u32, 3000]);
    b.user(uid, gid)
        .additional_gids(&extra)
        .sh("id -u; id -g; id -G; cat /proc/self/status | grep -E '^(Uid|Gid|Groups):'");
    let out = run_ok(&rt, &b, "user");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], uid.to_string());
    assert_eq!(lines[1], gid.to_string());
    let groups: BTreeSet<u32> = lines[2]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    let want: BTreeSet<u32> = extra.iter().copied().chain([gid]).collect();
    assert_eq!(groups, want, "id -G");
    let status = kv_status(&out);
    // real, effective, saved, fs
    assert_eq!(status["Uid"], vec![uid; 4]);
    assert_eq!(status["Gid"], vec![gid; 4]);
    let supp: BTreeSet<u32> = status["Groups"].iter().copied().collect();
    assert_eq!(
        supp,
        extra.iter().copied().collect::<BTreeSet<_>>(),
        "Groups"
    );
}

fn kv_status(s: &str) -> std::collections::BTreeMap<String, Vec<u32>> {
    s.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let out = run_ok(&rt, &b, "rootgrp");
    let st = kv_status(&out);
    assert_eq!(st["Uid"], vec![0; 4]);
    assert_eq!(st["Gid"], vec![0; 4]);
    assert!(st["Groups"].iter().all(|g| *g == 0), "{out}");
}

#[test]
fn umask_is_applied() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let umask = 0o027u32;
    b.umask(umask)
        .mount("/tmp", "tmpfs", "tmpfs", &["mode=1777"])
        .sh("umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d");
    let out = run_ok(&rt, &b, "umask");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{umask:04o}"));
    assert_eq!(lines[1], format!("{:o}", 0o666 & !umask));
    assert_eq!(lines[2], format!("{:o}", 0o777 & !umask));
}

fn check_caps(b: &Bundle, out: &str, expect: &[(&str, u64)]) {
    let got = parse_cap_status(out);
    for (k, want) in expect {
        let g = *got
            .get(*k)
            .unwrap_or_else(|| panic!("{k} missing in:\n{out}"));
        assert_eq!(
            g, *want,
            "{k}: got {g:#x}, want {want:#x}\ncapabilities: {}",
            b.config["process"]["capabilities"]
        );
    }
}

fn caps_list(b: &Bundle, set: &str) -> Vec<String> {
    b.config["process"]["capabilities"][set]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn capabilities_of_non_root_user() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.user(1000, 1000)
        .caps(
            "bounding",
            &[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_SETUID",
                "CAP_SETGID",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_AUDIT_WRITE",
            ],
        )
        .caps(
            "effective",
            &[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
            ],
        )
        .caps(
            "permitted",
            &[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
            ],
        )
        .caps(
            "inheritable",
            &["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        )
        .caps("ambient", &["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"])
        .args(&["cat", "/proc/self/status"]);
    let out = run_ok(&rt, &b, "capsuser");
    let bnd = cap_mask(&caps_list(&b, "bounding"));
    let inh = cap_mask(&caps_list(&b, "inheritable"));
    let amb = cap_mask(&caps_list(&b, "ambient"));
    // execve of a file without file capabilities by a non-root user:
    // P'(permitted) = P'(effective) = P(ambient); inheritable, bounding and
    // ambient are kept.
    check_caps(
        &b,
        &out,
        &[
            ("CapBnd", bnd),
            ("CapInh", inh),
            ("CapAmb", amb),
            ("CapPrm", amb),
            ("CapEff", amb),
        ],
    );
}

#[test]
fn capabilities_of_root_user() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // For uid 0 the kernel recomputes permitted as bounding|inheritable on
    // execve, so use a consistent set: bounding == permitted == effective.
    let full = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_NET_BIND_SERVICE",
        "CAP_AUDIT_WRITE",
    ];
    b.caps("bounding", &full)
        .caps("effective", &full)
        .caps("permitted", &full)
        .caps(
            "inheritable",
            &["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"],
        )
        .caps("ambient", &["CAP_NET_BIND_SERVICE"])
        .args(&["cat", "/proc/self/status"]);
    let out = run_ok(&rt, &b, "capsroot");
    check_caps(
        &b,
        &out,
        &[
            ("CapBnd", cap_mask(&caps_list(&b, "bounding"))),
            ("CapPrm", cap_mask(&caps_list(&b, "permitted"))),
            ("CapEff", cap_mask(&caps_list(&b, "effective"))),
            ("CapInh", cap_mask(&caps_list(&b, "inheritable"))),
            ("CapAmb", cap_mask(&caps_list(&b, "ambient"))),
        ],
    );
}

#[test]
fn capabilities_all_dropped() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.all_caps(&[]).args(&["cat", "/proc/self/status"]);
    let out = run_ok(&rt, &b, "capsnone");
    check_caps(
        &b,
        &out,
        &[
            ("CapBnd", 0),
            ("CapPrm", 0),
            ("CapEff", 0),
            ("CapInh", 0),
            ("CapAmb", 0),
        ],
    );
}

#[test]
fn capabilities_template_default() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["cat", "/proc/self/status"]);
    let out = run_ok(&rt, &b, "capsdef");
    // The template (like `runc spec`) lists ambient capabilities but no
    // inheritable ones; the kernel only allows ambient capabilities that
    // are both permitted and inheritable, so the ambient set ends up empty
    // (and the runtime must not fail because of that).
    let inh = cap_mask(&caps_list(&b, "inheritable"));
    let prm = cap_mask(&caps_list(&b, "permitted"));
    let amb = cap_mask(&caps_list(&b, "ambient")) & inh & prm;
    check_caps(
        &b,
        &out,
        &[
            ("CapBnd", cap_mask(&caps_list(&b, "bounding"))),
            ("CapPrm", prm),
            ("CapEff", cap_mask(&caps_list(&b, "effective"))),
            ("CapInh", inh),
            ("CapAmb", amb),
        ],
    );
}

#[test]
fn rlimits_are_applied() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // root cannot raise a hard limit here: stay below our own.
    let (_, nofile_max) = getrlimit(libc::RLIMIT_NOFILE);
    let nofile_hard = nofile_max.min(4096) - 3;
    let nofile_soft = nofile_hard / 2;
    let (_, nproc_max) = getrlimit(libc::RLIMIT_NPROC);
    let nproc_hard = nproc_max.min(10000) - 11;
    let nproc_soft = nproc_hard / 2;
    b.rlimit("RLIMIT_NOFILE", nofile_soft, nofile_hard)
        .rlimit("RLIMIT_NPROC", nproc_soft, nproc_hard)
        .sh("ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu");
    let out = run_ok(&rt, &b, "rlimit");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            nofile_soft.to_string(),
            nofile_hard.to_string(),
            nproc_soft.to_string(),
            nproc_hard.to_string()
        ]
    );
}

#[test]
fn rlimit_from_template() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("ulimit -n; ulimit -Hn");
    let r = b.config["process"]["rlimits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "RLIMIT_NOFILE")
        .cloned()
        .expect("template has RLIMIT_NOFILE");
    let out = run_ok(&rt, &b, "rlimdef");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [r["soft"].to_string(), r["hard"].to_string()]);
}

#[test]
fn no_new_privileges() {
    require_root!();
    let rt = Runtime::new();
    for on in [true, false] {
        let mut b = Bundle::busybox();
        b.no_new_privileges(on)
            .args(&["grep", "NoNewPrivs", "/proc/self/status"]);
        let out = run_ok(&rt, &b, "nnp");
        let v = out.split(':').nth(1).map(str::trim).unwrap_or("");
        assert_eq!(v, if on { "1" } else { "0" }, "noNewPrivileges={on}: {out}");
    }
}

#[test]
fn oom_score_adj() {
    require_root!();
    let rt = Runtime::new();
    let cur: i32 = read("/proc/self/oom_score_adj").trim().parse().unwrap();
    // raising is always allowed; lowering needs CAP_SYS_RESOURCE
    let want = (cur + 123).min(1000);
    let mut b = Bundle::busybox();
    b.oom_score_adj(want)
        .args(&["cat", "/proc/self/oom_score_adj"]);
    let out = run_ok(&rt, &b, "oom");
    assert_eq!(out.trim(), want.to_string());
}

/// In a user namespace the container's root has no say over the host's scores:
/// the runtime must still set the configured value (runc writes it from outside).
#[test]
fn oom_score_adj_in_user_namespace() {
    require_root!();
    let rt = Runtime::new();
    let cur: i32 = read("/proc/self/oom_score_adj").trim().parse().unwrap();
    let want = (cur + 77).min(1000);
    let mut b = Bundle::busybox();
    b.add_namespace("user")
        .uid_mappings(0, 100000, 65536)
        .gid_mappings(0, 100000, 65536)
        .oom_score_adj(want)
        .args(&["cat", "/proc/self/oom_score_adj"]);
    let out = run_ok(&rt, &b, "oomuserns");
    assert_eq!(out.trim(), want.to_string());
}

#[test]
fn stdin_is_dev_null_like_the_callers() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // the runtime passes its own stdin (here /dev/null) to the process
    b.sh("cat; echo rc=$?");
    let out = run_ok(&rt, &b, "stdin");
    assert_eq!(out.trim(), "rc=0");
}

/// Files the test opens and hands to `rt create` as fds 3, 4, 5.
struct ExtraFds {
    files: Vec<std::fs::File>,
    paths: Vec<std::path::PathBuf>,
}

impl ExtraFds {
    fn new(rt: &Runtime) -> ExtraFds {
        let mut files = Vec::new();
        let mut paths = Vec::new();
        for tag in ["a", "b", "c"] {
            let p = rt.scratch().join(format!("extra-fd-{tag}"));
            std::fs::write(&p, format!("content-{tag}\n")).unwrap();
            files.push(std::fs::File::open(&p).unwrap());
            paths.push(p);
        }
        ExtraFds { files, paths }
    }

    /// Our files that `pid` holds open: fd number -> file name (compared
    /// by device and inode, whatever path the link shows).
    fn held_by(&self, pid: i64) -> std::collections::BTreeMap<String, String> {
        use std::os::unix::fs::MetadataExt;
        let ids: Vec<(u64, u64)> = self
            .paths
            .iter()
            .map(|p| {
                let m = std::fs::metadata(p).unwrap();
                (m.dev(), m.ino())
            })
            .collect();
        let mut out = std::collections::BTreeMap::new();
        let dir = format!("/proc/{pid}/fd");
        for e in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .flatten()
        {
            let Ok(m) = std::fs::metadata(e.path()) else {
                continue;
            };
            if let Some(i) = ids.iter().position(|id| *id == (m.dev(), m.ino())) {
                out.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    self.paths[i]
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        out
    }
}

/// `rt --root R create --bundle B [--preserve-fds N] ID` with the files of
/// `extra` at fds 3, 4, 5 of the rt process. Stdout/stderr go to files in
/// the scratch dir (the container keeps them); returns (status, stdout
/// path, stderr text).
fn create_with_extra_fds(
    rt: &Runtime,
    b: &Bundle,
    id: &str,
    preserve: Option<u32>,
    extra: &ExtraFds,
) -> (std::process::ExitStatus, std::path::PathBuf, String) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    b.save();
    let out_path = rt.scratch().join(format!("{id}.out"));
    let err_path = rt.scratch().join(format!("{id}.err"));
    let mut c = rt.command();
    c.args(["--root", rt.root_str(), "create", "--bundle", b.path_str()]);
    if let Some(n) = preserve {
        c.args(["--preserve-fds", &n.to_string()]);
    }
    c.arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let src: [i32; 3] = [
        extra.files[0].as_raw_fd(),
        extra.files[1].as_raw_fd(),
        extra.files[2].as_raw_fd(),
    ];
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close), no
    // allocation.
    unsafe {
        c.pre_exec(move || {
            // First move the sources out of the way (one may sit on 3..5),
            // then dup2 them to 3, 4, 5 (dup2 clears FD_CLOEXEC).
            let mut high = [0i32; 3];
            for (h, s) in high.iter_mut().zip(src) {
                *h = libc::fcntl(s, libc::F_DUPFD_CLOEXEC, 100);
                if *h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, h) in high.into_iter().enumerate() {
                if libc::dup2(h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(h);
            }
            Ok(())
        });
    }
    let mut child = c.spawn().expect("spawn rt create");
    let mut status = None;
    wait_for(CMD_TIMEOUT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("rt create timed out");
    };
    (status, out_path, read(&err_path))
}

/// Prints `fdN=<link>` (or `fdN=none`) for 3, 4, 5 and the content of fd 3.
const FD_SCRIPT: &str =
    "for n in 3 4 5; do printf 'fd%s=' $n; readlink /proc/self/fd/$n || echo none; done; \
     echo data=$(cat /proc/self/fd/3 2>/dev/null)";

#[test]
fn preserve_fds_passes_only_the_first_n() {
    require_root!();
    let rt = Runtime::new();
    let extra = ExtraFds::new(&rt);
    let mut b = Bundle::busybox();
    b.sh(FD_SCRIPT);
    let id = rt.id("preservefds");
    let (status, out_path, err) = create_with_extra_fds(&rt, &b, &id, Some(1), &extra);
    assert!(status.success(), "create failed: {status}: {err}");

    // The waiting init holds fd 3 (to hand it to the process) but not the
    // caller's fds 4 and 5.
    let pid = rt.pid(&id);
    let held = extra.held_by(pid);
    assert_eq!(
        held.get("3").map(String::as_str),
        Some("extra-fd-a"),
        "created init's fds: {held:?}"
    );
    assert_eq!(held.len(), 1, "created init holds: {held:?}");

    rt.start(&id).assert_ok();
    rt.wait_status(&id, "stopped");
    let out = read(&out_path);
    let kv = kv_lines(&out);
    assert!(
        kv.get("fd3").is_some_and(|l| l.ends_with("/extra-fd-a")),
        "fd 3 is not the first file:\n{out}"
    );
    assert_eq!(
        kv.get("data").map(String::as_str),
        Some("content-a"),
        "{out}"
    );
    assert_eq!(kv.get("fd4").map(String::as_str), Some("none"), "{out}");
    assert_eq!(kv.get("fd5").map(String::as_str), Some("none"), "{out}");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn without_preserve_fds_no_extra_fd_reaches_the_container() {
    require_root!();
    let rt = Runtime::new();
    let extra = ExtraFds::new(&rt);
    let mut b = Bundle::busybox();
    b.sh(FD_SCRIPT);
    let id = rt.id("nopreservefds");
    let (status, out_path, err) = create_with_extra_fds(&rt, &b, &id, None, &extra);
    assert!(status.success(), "create failed: {status}: {err}");

    let pid = rt.pid(&id);
    let held = extra.held_by(pid);
    assert!(held.is_empty(), "created init holds caller's fds: {held:?}");

    rt.start(&id).assert_ok();
    rt.wait_status(&id, "stopped");
    let out = read(&out_path);
    let kv = kv_lines(&out);
    for fd in ["fd3", "fd4", "fd5"] {
        assert_eq!(kv.get(fd).map(String::as_str), Some("none"), "{fd}:\n{out}");
    }
    assert_eq!(kv.get("data").map(String::as_str), Some(""), "{out}");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}
