//! Container lifecycle: create / state / start / kill / delete, run, list,
//! pid files.

use rt_tests::*;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    b
}

#[test]
fn create_state_start_kill_delete() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("life");

    rt.create(&id, &b).assert_ok();
    let st = rt.state(&id);
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion: {st}"
    );
    assert_eq!(st["id"], id.as_str(), "{st}");
    assert_eq!(st["status"], "created", "{st}");
    let bundle = st["bundle"].as_str().expect("bundle string");
    assert!(Path::new(bundle).is_absolute(), "bundle not absolute: {st}");
    assert_eq!(
        fs::canonicalize(bundle).unwrap(),
        b.path(),
        "bundle path in state: {st}"
    );
    let pid = st["pid"].as_i64().expect("pid number");
    assert!(pid > 0, "{st}");
    assert!(
        pid_alive(pid),
        "pid {pid} of created container does not exist"
    );

    rt.start(&id).assert_ok();
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "pid changed on start: {st}");
    assert!(pid_alive(pid));
    // the process is our sleep
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x001000\x00", "cmdline of container pid");

    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    assert!(wait_for(POLL_TIMEOUT, || !pid_alive(pid)));

    rt.delete(&id).assert_ok();
    rt.exec(&["state", &id]).assert_err();
    assert_nothing_left(&rt, &id, &b);
}

fn kill_with(sig: &str) {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("kill");
    rt.run_detached(&id, &b, &[]).assert_ok();
    rt.wait_status(&id, "running");
    rt.kill(&id, sig).assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

fn term_with(sig: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    // pid 1 ignores signals it has no handler for, so install one and say
    // when it is in place.
    b.sh(
        "trap 'echo got-term > /shared/term; exit 0' TERM; touch /shared/ready; sleep 1000 & wait",
    );
    let id = rt.id("term");
    rt.run_detached(&id, &b, &[]).assert_ok();
    assert!(wait_for(POLL_TIMEOUT, || shared.join("ready").exists()));
    rt.kill(&id, sig).assert_ok();
    rt.wait_status(&id, "stopped");
    assert_eq!(read(shared.join("term")).trim(), "got-term");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn kill_name_kill() {
    require_root!();
    kill_with("KILL");
}

#[test]
fn kill_number_9() {
    require_root!();
    kill_with(&libc::SIGKILL.to_string());
}

#[test]
fn kill_sigkill() {
    require_root!();
    kill_with("SIGKILL");
}

#[test]
fn kill_term_is_delivered() {
    require_root!();
    term_with("TERM");
}

#[test]
fn kill_sigterm_and_15() {
    require_root!();
    term_with("SIGTERM");
    term_with(&libc::SIGTERM.to_string());
}

#[test]
fn kill_default_signal_is_term() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    b.sh(
        "trap 'echo got-term > /shared/term; exit 0' TERM; touch /shared/ready; sleep 1000 & wait",
    );
    let id = rt.id("killdef");
    rt.run_detached(&id, &b, &[]).assert_ok();
    assert!(wait_for(POLL_TIMEOUT, || shared.join("ready").exists()));
    rt.exec(&["kill", &id]).assert_ok();
    rt.wait_status(&id, "stopped");
    assert_eq!(read(shared.join("term")).trim(), "got-term");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_exit_code_passthrough() {
    require_root!();
    let rt = Runtime::new();
    for code in [0, 3, 42, 255] {
        let mut b = Bundle::busybox();
        b.sh(&format!("exit {code}"));
        let id = rt.id("exit");
        let o = rt.run(&id, &b);
        assert_eq!(o.code(), Some(code), "{o:?}");
        // a foreground run deletes the container afterwards
        assert!(
            rt.try_state(&id).is_err(),
            "container {id} still exists after run"
        );
        assert_nothing_left(&rt, &id, &b);
    }
}

#[test]
fn run_output_reaches_stdout_and_stderr() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let word = format!("hello-{}", std::process::id());
    b.sh(&format!("echo {word}; echo err-{word} >&2"));
    let id = rt.id("out");
    let o = rt.run(&id, &b);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), word);
    assert!(o.stderr.contains(&format!("err-{word}")), "{o:?}");
}

#[test]
fn run_killed_by_signal_from_outside() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("sigout");
    let running = rt.spawn_run(&id, &b, &[]);
    rt.wait_status(&id, "running");
    rt.kill(&id, "KILL").assert_ok();
    let o = running.wait(Duration::from_secs(30));
    assert_eq!(o.code(), Some(128 + libc::SIGKILL), "{o:?}");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_killed_by_own_signal_without_pid_namespace() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // Without a pid namespace the shell is not a pid 1 and can kill itself.
    b.remove_namespace("pid");
    b.sh(&format!("kill -{} $$", libc::SIGKILL));
    let id = rt.id("sigself");
    let o = rt.run(&id, &b);
    assert_eq!(o.code(), Some(128 + libc::SIGKILL), "{o:?}");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_detached() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("detach");
    let t = Instant::now();
    rt.run_detached(&id, &b, &[]).assert_ok();
    assert!(t.elapsed() < Duration::from_secs(30));
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid_alive(pid));
    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_keep_keeps_stopped_container() {
    require_root!();
    let rt = Runtime::new();
    let help = rt.exec_raw(&["run", "--help"]);
    let text = format!("{}{}", help.stdout, help.stderr);
    if !text.contains("--keep") {
        eprintln!("note: runtime has no run --keep, skipped");
        return;
    }
    let mut b = Bundle::busybox();
    b.sh("exit 7");
    let id = rt.id("keep");
    let o = rt.run_with(&id, &b, &["--keep"]);
    assert_eq!(o.code(), Some(7), "{o:?}");
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["id"], id.as_str());
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn list_table_json_quiet() {
    require_root!();
    let rt = Runtime::new();
    let b1 = sleeper();
    let b2 = sleeper();
    let created = rt.id("lc");
    let running = rt.id("lr");
    rt.create(&created, &b1).assert_ok();
    rt.create_start(&running, &b2);

    // table
    let o = rt.exec(&["list"]);
    o.assert_ok();
    let mut lines = o.stdout.lines();
    let header = lines.next().expect("header line");
    for col in ["ID", "PID", "STATUS", "BUNDLE"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{}", o.stdout);
    for (id, status, bundle) in [(&created, "created", &b1), (&running, "running", &b2)] {
        let row = rows
            .iter()
            .find(|r| r.first() == Some(&id.as_str()))
            .unwrap_or_else(|| panic!("{id} not in list:\n{}", o.stdout));
        let pid = rt.pid(id).to_string();
        assert_eq!(row.get(1), Some(&pid.as_str()), "{row:?}");
        assert_eq!(row.get(2), Some(&status), "{row:?}");
        assert_eq!(row.get(3), Some(&bundle.path_str()), "{row:?}");
    }

    // json
    let o = rt.exec(&["list", "--format", "json"]);
    o.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("list json");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2, "{v}");
    for (id, status, bundle) in [(&created, "created", &b1), (&running, "running", &b2)] {
        let e = arr
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not in {v}"));
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["pid"].as_i64(), Some(rt.pid(id)), "{e}");
        assert_eq!(e["bundle"], bundle.path_str(), "{e}");
    }

    // quiet
    let o = rt.exec(&["list", "-q"]);
    o.assert_ok();
    let mut ids: Vec<&str> = o.stdout.lines().collect();
    ids.sort();
    let mut want = vec![created.as_str(), running.as_str()];
    want.sort();
    assert_eq!(ids, want);

    for id in [&created, &running] {
        rt.delete_force(id).assert_ok();
    }
    assert_nothing_left(&rt, &created, &b1);
    assert_nothing_left(&rt, &running, &b2);
    let o = rt.exec(&["list", "-q"]);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), "");
}

#[test]
fn pid_file_matches_state() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("pidf");
    let pf = rt.scratch().join("create.pid");
    rt.create_with(&id, &b, &["--pid-file", pf.to_str().unwrap()])
        .assert_ok();
    let pid = rt.pid(&id);
    assert_eq!(read(&pf).trim(), pid.to_string());
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);

    let b = sleeper();
    let id = rt.id("pidr");
    let pf = rt.scratch().join("run.pid");
    rt.run_detached(&id, &b, &["--pid-file", pf.to_str().unwrap()])
        .assert_ok();
    assert_eq!(read(&pf).trim(), rt.pid(&id).to_string());
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn create_does_not_start_user_process() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let shared = b.shared_dir("shared", "/shared");
    b.args(&["touch", "/shared/started"]);
    let id = rt.id("nostart");
    rt.create(&id, &b).assert_ok();
    assert_eq!(rt.status(&id), "created");
    // give a misbehaving runtime a chance to run the process
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !shared.join("started").exists(),
        "user process ran before start"
    );
    assert_eq!(rt.status(&id), "created");
    rt.start(&id).assert_ok();
    assert!(wait_for(POLL_TIMEOUT, || shared.join("started").exists()));
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn delete_created_container() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("delc");
    rt.create(&id, &b).assert_ok();
    let pid = rt.pid(&id);
    rt.delete(&id).assert_ok();
    assert!(wait_for(POLL_TIMEOUT, || !pid_alive(pid)));
    rt.exec(&["state", &id]).assert_err();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn stopped_after_process_exits() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("exit 0");
    let id = rt.id("exits");
    rt.create_start(&id, &b);
    rt.wait_status(&id, "stopped");
    let st = rt.state(&id);
    assert_eq!(st["id"], id.as_str());
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

/// The "nothing left behind" checks do see a live container.
#[test]
fn leak_checks_see_a_live_container() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.id("leakcheck");
    rt.create_start(&id, &b);
    let cg = b.cgroups_path().unwrap();
    assert!(rt.root().join(&id).exists(), "no state dir under --root");
    assert!(!existing_cgroup_dirs(&cg).is_empty(), "no cgroup dir found");
    let procs = leftover_processes(&b.rootfs(), Some(&cg));
    assert!(procs.contains(&rt.pid(&id)), "{procs:?}");
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}
