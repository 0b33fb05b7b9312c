//! `ps`, `pause` and `resume`: the processes of a container, frozen and
//! thawed through the freezer cgroup.

use rt_tests::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Kill the container, delete it and check nothing is left.
#[track_caller]
fn stop_and_delete(rt: &Runtime, id: &str, b: &Bundle) {
    rt.kill(id, "KILL").assert_ok();
    rt.wait_status(id, "stopped");
    rt.delete(id).assert_ok();
    assert_nothing_left(rt, id, b);
}

/// `ps --format json ID` as a set of pids.
#[track_caller]
fn ps_json(rt: &Runtime, id: &str) -> BTreeSet<i64> {
    let o = rt.exec(&["ps", "--format", "json", id]);
    o.assert_ok();
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("ps json: {e}: {o:?}"))
}

#[test]
fn ps_lists_the_container_processes() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "600"]);
    let id = rt.id("ps");
    rt.create_start(&id, &b);
    let init = rt.pid(&id);
    assert_eq!(ps_json(&rt, &id), BTreeSet::from([init]));

    let pid_file = rt.scratch().join("exec.pid");
    rt.exec(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "500",
    ])
    .assert_ok();
    let pid: i64 = read(&pid_file).trim().parse().unwrap();
    assert_eq!(ps_json(&rt, &id), BTreeSet::from([init, pid]));

    // The default table: ps -ef lines of those pids under ps's header.
    let o = rt.exec(&["ps", &id]);
    o.assert_ok();
    let mut lines = o.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{o:?}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let pids: BTreeSet<i64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    assert_eq!(pids, BTreeSet::from([init, pid]), "{o:?}");
    for r in &rows {
        assert_eq!(r[0], "root", "{o:?}");
        let cmd = r[7..].join(" ");
        let want = if r[1] == init.to_string() {
            "sleep 600"
        } else {
            "sleep 500"
        };
        assert_eq!(cmd, want, "{o:?}");
    }
    // `--format table` is the same thing; extra arguments go to ps(1).
    let o2 = rt.exec(&["ps", "--format", "table", &id]);
    o2.assert_ok();
    assert_eq!(o2.stdout.lines().count(), 3, "{o2:?}");
    let o = rt.exec(&["ps", &id, "-o", "pid,comm"]);
    o.assert_ok();
    let lines: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["PID", "COMMAND"], "{o:?}");
    assert_eq!(lines.len(), 3, "{o:?}");
    assert!(lines[1..].iter().all(|l| l[1] == "sleep"), "{o:?}");

    // A process that exits leaves the list.
    // SAFETY: plain kill(2) of the exec'd process.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let mut last = BTreeSet::new();
    let ok = wait_for(POLL_TIMEOUT, || {
        last = ps_json(&rt, &id);
        last == BTreeSet::from([init])
    });
    assert!(ok, "ps still lists {last:?}");
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn ps_of_missing_container_fails() {
    require_root!();
    let rt = Runtime::new();
    rt.exec(&["ps", "no-such-container"]).assert_err();
}

/// The number a counting container last wrote to `count` (None while the
/// file is being rewritten).
fn count(p: &Path) -> Option<u64> {
    read(p).trim().parse().ok()
}

/// Wait until the counter has advanced past `from` (by at least 2, so the
/// process is really running).
#[track_caller]
fn assert_counting(p: &Path, from: u64) -> u64 {
    let mut last = None;
    let ok = wait_for(POLL_TIMEOUT, || {
        last = count(p);
        last.is_some_and(|c| c >= from + 2)
    });
    assert!(ok, "counter does not advance (from {from}, last {last:?})");
    last.unwrap()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    // A child process too, to check all of them are frozen.
    b.sh("sleep 600 & i=0; while :; do i=$((i+1)); echo $i > /shared/count; usleep 20000; done");
    let id = rt.id("pause");
    rt.create_start(&id, &b);
    let cg = b.cgroups_path().unwrap();
    let counter = shared.join("count");
    let c = assert_counting(&counter, 0);

    rt.exec(&["pause", &id]).assert_ok();
    assert_eq!(rt.status(&id), "paused");
    assert_eq!(rt.state(&id)["pid"].as_i64(), Some(rt.pid(&id)));
    assert!(cgroup_frozen(&cg), "cgroup {cg} not frozen after pause");
    let frozen_at = count(&counter);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        count(&counter),
        frozen_at,
        "the counter advanced while paused"
    );
    // `ps` still lists the init and its `sleep` (and maybe a `usleep`).
    let pids = ps_json(&rt, &id);
    assert!(pids.contains(&rt.pid(&id)) && pids.len() >= 2, "{pids:?}");
    // No exec into a paused container.
    let o = rt.exec(&["exec", &id, "true"]);
    o.assert_err();
    assert!(o.stderr.contains("paused"), "{o:?}");
    rt.exec(&["resume", &id]).assert_ok();
    assert_eq!(rt.status(&id), "running");
    assert!(!cgroup_frozen(&cg), "cgroup {cg} still frozen after resume");
    assert_counting(&counter, frozen_at.unwrap_or(c));
    rt.exec(&["exec", &id, "true"]).assert_ok();
    stop_and_delete(&rt, &id, &b);
}

#[test]
fn resume_of_running_and_pause_of_stopped_fail() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "600"]);
    let id = rt.id("pausefail");
    rt.create_start(&id, &b);
    rt.exec(&["resume", &id]).assert_err();
    assert_eq!(rt.status(&id), "running");
    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.exec(&["pause", &id]).assert_err();
    assert_eq!(rt.status(&id), "stopped");
    rt.exec(&["resume", &id]).assert_err();
    assert_eq!(rt.status(&id), "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
    rt.exec(&["pause", "no-such-container"]).assert_err();
    rt.exec(&["resume", "no-such-container"]).assert_err();
}

#[test]
fn delete_force_of_a_paused_container() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("sleep 600 & sleep 600");
    let id = rt.id("pausedelete");
    rt.create_start(&id, &b);
    rt.exec(&["pause", &id]).assert_ok();
    assert_eq!(rt.status(&id), "paused");
    rt.delete(&id).assert_err();
    assert_eq!(rt.status(&id), "paused");
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

/// runc: "container not running" (pause wants a running or created
/// container).
#[test]
fn pause_of_a_paused_container_fails() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "600"]);
    let id = rt.id("pausepaused");
    rt.create_start(&id, &b);
    rt.exec(&["pause", &id]).assert_ok();
    rt.exec(&["pause", &id]).assert_err();
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

/// runc thaws the cgroup after sending SIGKILL (on v1 a frozen task does
/// not die before it is thawed), so the container stops.
#[test]
fn sigkill_stops_a_paused_container() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "600"]);
    let id = rt.id("killpaused");
    rt.create_start(&id, &b);
    let pid = rt.pid(&id);
    rt.exec(&["pause", &id]).assert_ok();
    rt.kill(&id, "KILL").assert_ok();
    assert!(
        wait_for(POLL_TIMEOUT, || !pid_alive(pid)),
        "init {pid} survived SIGKILL while paused (status {})",
        rt.status(&id)
    );
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}
