//! The systemd cgroup driver (`--systemd-cgroup`) and rootless containers.
//!
//! The driver needs systemd as PID 1: these tests run for real in hack/vm's systemd
//! guest (RTVM_FLAVOUR=systemd, where a missing systemd fails them) and are not
//! applicable on a host without systemd. The rootless tests need only a user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rt_tests::*;
use serde_json::json;

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

/// In the systemd guest systemd must be there; elsewhere the test does not apply.
macro_rules! require_systemd {
    () => {
        require_root!();
        if std::env::var("RTVM_FLAVOUR").as_deref() == Ok("systemd") {
            require!(systemd_running(), "systemd as PID 1 (systemd guest)");
        } else if !systemd_running() {
            eprintln!("note: not applicable: no systemd on this host (runs in `hack/vm test --flavour systemd`)");
            return;
        }
    };
}

fn systemctl_show(unit: &str, props: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut c = Command::new("systemctl");
    c.args(["show", unit]);
    for p in props {
        c.args(["-p", p]);
    }
    let out = c.output().expect("systemctl");
    kv_lines(&String::from_utf8_lossy(&out.stdout))
}

fn scope_dir(slice: &str, unit: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(slice).join(unit)
}

#[test]
fn scope_with_limits_lives_beyond_rt_and_goes_on_delete() {
    require_systemd!();
    let rt = Runtime::new();
    let id = rt.id("sdscope");
    let mut b = Bundle::busybox();
    b.set_cgroups_path(Some(&format!("system.slice:rttest:{id}")))
        .set("/linux/resources/memory", json!({"limit": 67108864}))
        .set("/linux/resources/pids", json!({"limit": 42}))
        .sh("cat /proc/self/cgroup > /tmp/cg; sleep 1000");
    // `run -d` returns: the container outlives the rt process in its unit.
    rt.run_detached(&id, &b, &["--systemd-cgroup"]).assert_ok();
    let unit = format!("rttest-{id}.scope");
    let show = systemctl_show(
        &unit,
        &["ActiveState", "Delegate", "MemoryMax", "TasksMax", "Slice"],
    );
    assert_eq!(show["ActiveState"], "active", "{show:?}");
    assert_eq!(show["Delegate"], "yes", "{show:?}");
    assert_eq!(show["Slice"], "system.slice", "{show:?}");
    assert_eq!(show["MemoryMax"], "67108864", "{show:?}");
    assert_eq!(show["TasksMax"], "42", "{show:?}");
    let dir = scope_dir("system.slice", &unit);
    let pid = rt.pid(&id);
    assert!(read(dir.join("cgroup.procs"))
        .lines()
        .any(|l| l.trim() == pid.to_string()));
    assert_eq!(read(dir.join("memory.max")).trim(), "67108864");
    assert_eq!(read(dir.join("pids.max")).trim(), "42");

    rt.exec(&["--systemd-cgroup", "update", "--memory", "128m", &id])
        .assert_ok();
    assert_eq!(read(dir.join("memory.max")).trim(), "134217728");
    assert_eq!(
        systemctl_show(&unit, &["MemoryMax"])["MemoryMax"],
        "134217728"
    );

    rt.exec(&["pause", &id]).assert_ok();
    assert_eq!(rt.status(&id), "paused");
    assert!(read(dir.join("cgroup.events")).contains("frozen 1"));
    rt.exec(&["resume", &id]).assert_ok();
    assert_eq!(rt.status(&id), "running");

    rt.delete_force(&id).assert_ok();
    // Gone by the time delete returns: clients list units right after it.
    assert_eq!(
        systemctl_show(&unit, &["LoadState"])["LoadState"],
        "not-found",
        "unit {unit} still loaded after delete"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_no_state(&rt, &id);
    assert_no_mounts(b.path());
}

/// A container's limits hold from its first instruction, in a slice systemd has not
/// made yet too. systemd enables a unit's controllers down its slices from its event
/// loop, after it answered SetUnitProperties: rt gives the limits in
/// StartTransientUnit (whose job ends with the cgroup made) and waits for the
/// controllers before writing. (That race, seen once in containerd's scenario under
/// load, is too narrow to reproduce on demand; this checks the path stays right.)
#[test]
fn cpu_limit_in_a_new_slice() {
    require_systemd!();
    let rt = Runtime::new();
    for i in 0..3 {
        let id = rt.id("sdcpu");
        let slice = format!("rtcpu{}x{i}.slice", std::process::id());
        let mut b = Bundle::busybox();
        b.set_cgroups_path(Some(&format!("{slice}:rttest:{id}")))
            .set("/linux/resources/cpu", json!({"shares": 512}))
            .sh("cat /sys/fs/cgroup/cpu.weight");
        b.save();
        let o = rt.exec(&["--systemd-cgroup", "run", "--bundle", b.path_str(), &id]);
        o.assert_ok();
        // The quadratic fit of runc and crun: 1024 shares -> 100, 512 -> 59.
        assert_eq!(o.stdout.trim(), "59", "round {i}: {o:?}");
        assert_no_state(&rt, &id);
        let unit = format!("rttest-{id}.scope");
        assert_eq!(
            systemctl_show(&unit, &["LoadState"])["LoadState"],
            "not-found"
        );
        let _ = Command::new("systemctl").args(["stop", &slice]).status();
    }
}

/// An init that fails its setup (here a bind source that does not exist) takes the
/// unit and its cgroup with it, maybe while rt is still writing the limits (seen in
/// containerd's scenario under CI load; too narrow to hit on demand): the error is
/// the init's, and nothing is left.
#[test]
fn failed_setup_reports_the_init_error() {
    require_systemd!();
    let rt = Runtime::new();
    let id = rt.id("sdbadmount");
    let mut b = Bundle::busybox();
    b.set_cgroups_path(Some(&format!("system.slice:rttest:{id}")))
        .set("/linux/resources/cpu", json!({"shares": 512}))
        .set("/linux/resources/pids", json!({"limit": 50}))
        .mount(
            "/mnt/missing",
            "bind",
            "/nonexistent/rt-test-source",
            &["rbind"],
        )
        .sh("true");
    b.save();
    let o = rt.exec(&["--systemd-cgroup", "create", "--bundle", b.path_str(), &id]);
    o.assert_failed();
    assert!(
        o.stderr.contains("/nonexistent/rt-test-source") || o.stderr.contains("/mnt/missing"),
        "not the mount's error: {o:?}"
    );
    let unit = format!("rttest-{id}.scope");
    assert_eq!(
        systemctl_show(&unit, &["LoadState"])["LoadState"],
        "not-found"
    );
    assert!(!scope_dir("system.slice", &unit).exists());
    assert_no_state(&rt, &id);
    assert_no_mounts(b.path());
}

/// The default config mounts the container's cgroup; under systemd the cgroup is
/// the unit's, which exists only once systemd started it.
#[test]
fn default_config_with_cgroup_mount() {
    require_systemd!();
    let rt = Runtime::new();
    let id = rt.id("sddefault");
    let mut b = Bundle::busybox();
    b.set_cgroups_path(None).sh(
        "echo cg=$(cat /proc/self/cgroup); test -f /sys/fs/cgroup/cgroup.procs && echo mounted=yes",
    );
    b.save();
    let o = rt.exec(&["--systemd-cgroup", "run", "--bundle", b.path_str(), &id]);
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    assert_eq!(kv["cg"], format!("0::/system.slice/rt-{id}.scope"), "{o:?}");
    assert_eq!(kv["mounted"], "yes", "{o:?}");
    assert!(!scope_dir("system.slice", &format!("rt-{id}.scope")).exists());
    assert_no_state(&rt, &id);
}

/// Without root and without a delegated cgroup, the container runs and its
/// limits are skipped with a warning (as rootless runc); nothing is left.
#[test]
fn rootless_without_delegation_skips_limits() {
    require_root!();
    let user = User::get();
    let mut b = Bundle::busybox();
    b.set_cgroups_path(None)
        .remove_namespace("network")
        .set("/linux/resources/memory", json!({"limit": 67108864}))
        .sh("echo uid=$(id -u); echo map=$(cat /proc/self/uid_map)");
    user.own(&mut b);
    let o = user.rt(&[], &["run", "--bundle", b.path_str(), "rl-nodeleg"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let kv = kv_lines(&stdout);
    assert_eq!(kv["uid"], "0", "{stdout}");
    assert_eq!(kv["map"], format!("0 {} 1", user.uid), "{stdout}");
    assert!(
        stderr.contains("linux.resources"),
        "no warning about the limits: {stderr}"
    );
    assert!(!user.dir.join("state/rl-nodeleg").exists());
    assert_no_mounts(b.path());
}

/// A user's own systemd manager delegates a subtree: with `--systemd-cgroup` the
/// container gets a scope there, with its memory and pids limits.
#[test]
fn rootless_limits_through_the_user_manager() {
    require_systemd!();
    let user = User::get();
    let ok = Command::new("loginctl")
        .args(["enable-linger", user.name])
        .status()
        .unwrap();
    assert!(ok.success(), "loginctl enable-linger");
    let run_dir = PathBuf::from(format!("/run/user/{}", user.uid));
    assert!(
        wait_for(Duration::from_secs(20), || run_dir.join("bus").exists()),
        "no user bus at {}",
        run_dir.display()
    );
    let env = [
        ("XDG_RUNTIME_DIR", run_dir.display().to_string()),
        (
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/bus", run_dir.display()),
        ),
    ];
    let id = format!("rl-user-{}", next_n());
    let mut b = Bundle::busybox();
    b.set_cgroups_path(None)
        .set("/linux/resources/memory", json!({"limit": 67108864}))
        .set("/linux/resources/pids", json!({"limit": 42}))
        .args(&["sleep", "1000"]);
    user.own(&mut b);
    let o = user.rt(
        &env,
        &[
            "--systemd-cgroup",
            "run",
            "-d",
            "--bundle",
            b.path_str(),
            &id,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{0}.slice/user@{0}.service/user.slice/rt-{id}.scope",
        user.uid
    ));
    let got = (read(dir.join("memory.max")), read(dir.join("pids.max")));
    let o2 = user.rt(&env, &["delete", "--force", &id]);
    assert!(
        o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(got.0.trim(), "67108864");
    assert_eq!(got.1.trim(), "42");
    assert!(
        wait_for(Duration::from_secs(5), || !dir.exists()),
        "{} left behind",
        dir.display()
    );
}
