//! Lifecycle error cases: each must exit non-zero with a one-line message on
//! stderr and leave the host as it was.

use rt_tests::*;
use std::fs;

fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    b
}

#[test]
fn start_twice_fails() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("start2");
    rt.create_start(&id, &b);
    let pid = rt.pid(&id);
    rt.start(&id).assert_err();
    // the running container is unaffected
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.pid(&id), pid);
    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    // starting a stopped container fails too
    rt.start(&id).assert_err();
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn delete_running_needs_force() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("delrun");
    rt.run_detached(&id, &b, &[]).assert_ok();
    let pid = rt.pid(&id);
    rt.delete(&id).assert_err();
    assert_eq!(rt.status(&id), "running");
    assert!(pid_alive(pid));
    rt.delete_force(&id).assert_ok();
    assert!(wait_for(POLL_TIMEOUT, || !pid_alive(pid)));
    rt.exec(&["state", &id]).assert_err();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn unknown_container_id() {
    require_root!();
    let rt = Runtime::new();
    let id = rt.id("ghost");
    rt.exec(&["state", &id]).assert_err();
    rt.exec(&["start", &id]).assert_err();
    rt.exec(&["kill", &id, "KILL"]).assert_err();
    rt.exec(&["delete", &id]).assert_err();
    assert_no_state(&rt, &id);
}

#[test]
fn bad_signal_refused() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("badsig");
    rt.run_detached(&id, &b, &[]).assert_ok();
    let pid = rt.pid(&id);
    for sig in ["FOO", "SIGFOO", "999", "-1", "65", "KILLL"] {
        let o = rt.kill(&id, sig);
        o.assert_err();
        assert_eq!(rt.status(&id), "running", "after kill {sig:?}");
        assert!(pid_alive(pid), "after kill {sig:?}");
    }
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

/// `create` with an invalid id must fail before doing anything.
fn refuse_id(id: &str) {
    let rt = Runtime::new();
    // register so that a runtime accepting it still gets cleaned up
    rt.track(id);
    let b = sleeper();
    rt.create(id, &b).assert_err();
    let left: Vec<_> = fs::read_dir(rt.root())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left under --root: {left:?}");
    assert_no_mounts(b.path());
    assert_no_processes(&b.rootfs(), b.cgroups_path().as_deref());
    assert_no_cgroup(&b.cgroups_path().unwrap());
    let o = rt.exec(&["list", "-q"]);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), "", "list shows a container");
}

#[test]
fn id_with_slash_refused() {
    require_root!();
    refuse_id("a/b");
}

#[test]
fn id_dotdot_refused() {
    require_root!();
    refuse_id("..");
}

#[test]
fn id_dot_refused() {
    require_root!();
    refuse_id(".");
}

#[test]
fn id_with_newline_refused() {
    require_root!();
    refuse_id("a\nb");
}

#[test]
fn id_with_control_char_refused() {
    require_root!();
    refuse_id("a\u{1}b");
    refuse_id("a\u{7f}b");
}

#[test]
fn id_too_long_refused() {
    require_root!();
    refuse_id(&"a".repeat(1025));
}

#[test]
fn empty_id_refused() {
    require_root!();
    refuse_id("");
}

#[test]
fn duplicate_id_fails_and_keeps_first() {
    require_root!();
    let rt = Runtime::new();
    let b1 = sleeper();
    let b2 = sleeper();
    let id = rt.id("dup");
    rt.create(&id, &b1).assert_ok();
    let st1 = rt.state(&id);
    rt.create(&id, &b2).assert_err();
    let st2 = rt.state(&id);
    assert_eq!(st2["status"], "created", "{st2}");
    assert_eq!(st2["pid"], st1["pid"], "{st2}");
    assert_eq!(st2["bundle"], b1.path_str(), "{st2}");
    assert!(pid_alive(st1["pid"].as_i64().unwrap()));
    // nothing of the second attempt is around
    assert_no_processes(&b2.rootfs(), b2.cgroups_path().as_deref());
    assert_no_cgroup(&b2.cgroups_path().unwrap());
    assert_no_mounts(b2.path());
    // the first one still works
    rt.start(&id).assert_ok();
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b1);
}

/// `rt create` SIGKILLed while a prestart hook runs (the init exists, the
/// container is half made): `delete --force` must clean up everything, and
/// the orphaned init must not survive.
#[test]
fn create_killed_midway_then_delete_force() {
    require_root!();
    let rt = Runtime::new();
    let mut b = sleeper();
    let dir = b.host_dir("hook");
    let d = dir.display();
    // The hook saves the state (with the init's pid) and then keeps
    // create busy.
    b.hook(
        "prestart",
        "/bin/sh",
        &[
            "sh",
            "-c",
            &format!(
                "echo $$ > {d}/hook.pid; cat > {d}/state.tmp && mv {d}/state.tmp {d}/state.json; \
                 exec sleep 5"
            ),
        ],
        None,
    );
    b.save();
    let id = rt.id("killedcreate");
    let create = rt.spawn(&["create", "--bundle", b.path_str(), &id]);
    let rt_pid = create.pid() as i32;
    assert!(
        wait_for(POLL_TIMEOUT, || dir.join("state.json").exists()),
        "prestart hook did not run"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: plain kill(2) of our own child (only rt, not its group).
    assert_eq!(unsafe { libc::kill(rt_pid, libc::SIGKILL) }, 0);
    let o = create.wait(CMD_TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(libc::SIGKILL),
        "create was not killed: {o:?}"
    );
    let st: serde_json::Value = serde_json::from_str(&read(dir.join("state.json"))).unwrap();
    let init = st["pid"].as_i64().expect("pid in hook state");
    assert!(init > 0 && init != rt_pid as i64, "{st}");

    rt.delete_force(&id).assert_ok();
    assert!(
        wait_for(POLL_TIMEOUT, || !pid_alive(init)),
        "init {init} of the half-made container is still alive"
    );
    assert!(rt.try_state(&id).is_err(), "container still exists");
    assert_nothing_left(&rt, &id, &b);

    // Tidy up the orphaned hook (a host process, not part of the container).
    let hook: i32 = read(dir.join("hook.pid")).trim().parse().unwrap();
    if read(format!("/proc/{hook}/cmdline")).starts_with("sleep\0") {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(hook, libc::SIGKILL) };
    }
}

/// Two `create`s of the same ID at once: exactly one wins, the other fails
/// with a one-line message and does not damage the winner.
#[test]
fn racing_creates_of_one_id() {
    require_root!();
    let rt = Runtime::new();
    for round in 0..5 {
        let b1 = sleeper();
        let b2 = sleeper();
        b1.save();
        b2.save();
        let id = rt.id(&format!("race{round}"));
        let s1 = rt.spawn(&["create", "--bundle", b1.path_str(), &id]);
        let s2 = rt.spawn(&["create", "--bundle", b2.path_str(), &id]);
        let o1 = s1.wait(CMD_TIMEOUT);
        let o2 = s2.wait(CMD_TIMEOUT);
        assert!(
            o1.success() != o2.success(),
            "round {round}: exactly one create must succeed\n{o1:?}\n{o2:?}"
        );
        let (winner, loser, wb, lb) = if o1.success() {
            (o1, o2, &b1, &b2)
        } else {
            (o2, o1, &b2, &b1)
        };
        assert!(winner.stderr.trim().is_empty(), "{winner:?}");
        loser.assert_err();
        let st = rt.state(&id);
        assert_eq!(st["status"], "created", "round {round}: {st}");
        assert_eq!(st["bundle"], wb.path_str(), "round {round}: {st}");
        let pid = st["pid"].as_i64().unwrap();
        assert!(pid_alive(pid), "round {round}: winner's init {pid} gone");
        // nothing of the loser is around
        assert_no_processes(&lb.rootfs(), lb.cgroups_path().as_deref());
        assert_no_cgroup(&lb.cgroups_path().unwrap());
        assert_no_mounts(lb.path());
        // the winner still works
        rt.start(&id).assert_ok();
        assert_eq!(rt.status(&id), "running");
        assert_eq!(rt.pid(&id), pid);
        rt.delete_force(&id).assert_ok();
        assert_nothing_left(&rt, &id, wb);
        assert_nothing_left(&rt, &id, lb);
    }
}
