//! OCI hooks: order, state on stdin, env/args, timeout and failures.

use rt_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HOST_HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

/// A bundle whose hooks each save their stdin (the state) to
/// `DIR/NAME.json` and append NAME to `DIR/order`. DIR is a host dir that is
/// also bind-mounted at /hooks for the startContainer hook, which runs in
/// the container.
fn hooked_bundle(script: &str) -> (Bundle, PathBuf) {
    let mut b = Bundle::busybox();
    let dir = b.shared_dir("hooks", "/hooks");
    let d = dir.to_str().unwrap();
    for name in HOST_HOOKS {
        let cmd = format!("cat > {d}/{name}.json; echo {name} >> {d}/order");
        b.hook(name, "/bin/sh", &["sh", "-c", &cmd], None);
    }
    b.hook(
        "startContainer",
        "/bin/sh",
        &[
            "sh",
            "-c",
            "cat > /hooks/startContainer.json; echo startContainer >> /hooks/order",
        ],
        None,
    );
    b.sh(script);
    (b, dir)
}

fn order(dir: &Path) -> Vec<String> {
    read(dir.join("order"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn hook_state(dir: &Path, name: &str) -> Value {
    let s = read(dir.join(format!("{name}.json")));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{name} got no JSON state ({e}): {s:?}"))
}

/// The lifecycle order of the runtime spec: prestart, createRuntime and
/// createContainer during `create`; startContainer (before the user
/// process) and poststart (after it) during `start`; poststop on `delete`.
///
/// runc (up to 1.4) runs poststart hooks during `create`
/// (opencontainers/runc#4347), so this fails against runc.
#[test]
fn hooks_run_in_spec_order() {
    require_root!();
    let rt = Runtime::new();
    let (b, dir) = hooked_bundle("exit 0");
    let id = rt.id("hooks");

    rt.create(&id, &b).assert_ok();
    assert_eq!(
        order(&dir),
        ["prestart", "createRuntime", "createContainer"],
        "hooks run by create"
    );

    rt.start(&id).assert_ok();
    let want = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ];
    // both run before `start` returns
    assert_eq!(order(&dir), want, "hooks run by start");
    rt.wait_status(&id, "stopped");
    assert_eq!(order(&dir), want, "hooks run before delete");

    rt.delete(&id).assert_ok();
    let mut all = want.to_vec();
    all.push("poststop");
    assert_eq!(order(&dir), all, "hooks run by delete");
    assert_nothing_left(&rt, &id, &b);
}

/// Every hook runs once, gets the state on stdin (with the status of the
/// lifecycle step it runs in), and the order constraints that runc also
/// meets hold.
#[test]
fn hooks_receive_state() {
    require_root!();
    let rt = Runtime::new();
    // The process lives until poststart has run, so that "running" is the
    // only right status for poststart.
    let (b, dir) = hooked_bundle(
        "i=0; while [ ! -e /hooks/poststart.json ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done",
    );
    let id = rt.id("hookstate");

    rt.create(&id, &b).assert_ok();
    let pid = rt.pid(&id);
    let created = order(&dir);
    let pos = |name: &str, list: &[String]| list.iter().position(|n| n == name);
    for name in ["prestart", "createRuntime", "createContainer"] {
        assert!(
            pos(name, &created).is_some(),
            "{name} not run by create: {created:?}"
        );
    }
    assert!(pos("prestart", &created) < pos("createRuntime", &created));
    assert!(pos("createRuntime", &created) < pos("createContainer", &created));
    assert!(pos("startContainer", &created).is_none(), "{created:?}");

    rt.start(&id).assert_ok();
    assert!(
        wait_for(POLL_TIMEOUT, || order(&dir).len() >= 5),
        "{:?}",
        order(&dir)
    );
    rt.wait_status(&id, "stopped");
    assert!(pos("poststop", &order(&dir)).is_none());
    rt.delete(&id).assert_ok();
    let all = order(&dir);
    assert_eq!(all.len(), 6, "each hook once: {all:?}");
    assert_eq!(all.last().map(String::as_str), Some("poststop"), "{all:?}");
    assert_nothing_left(&rt, &id, &b);

    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let st = hook_state(&dir, name);
        assert_eq!(st["id"], id.as_str(), "{name}: {st}");
        assert!(
            st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
            "{name}: {st}"
        );
        assert_eq!(st["bundle"], b.path_str(), "{name}: {st}");
        let status = st["status"].as_str().unwrap_or("");
        // The runtime-spec lifecycle runs these hooks once the container
        // exists, i.e. in the created state, and rt reports "created";
        // runc reports "creating" for prestart, createRuntime and
        // createContainer (so this fails against runc).
        let want = match name {
            "prestart" | "createRuntime" | "createContainer" | "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(status, want, "{name}: {st}");
        match name {
            "poststop" => {}
            // runc passes the pid as seen in the container's pid namespace
            // to these two; hooks_in_container_get_host_pid checks them.
            "createContainer" | "startContainer" => {
                assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "{name}: {st}")
            }
            // the pid as seen from the host
            _ => assert_eq!(st["pid"].as_i64(), Some(pid), "{name}: {st}"),
        }
    }
}

/// The state's pid is "the ID of the container process, as seen by the
/// host" for every hook, also createContainer and startContainer, which run
/// in the container's namespaces.
///
/// runc 1.1 passes the pid inside the container's pid namespace (1) to
/// them, so this fails against runc.
#[test]
fn hooks_in_container_get_host_pid() {
    require_root!();
    let rt = Runtime::new();
    let (b, dir) = hooked_bundle("exit 0");
    let id = rt.id("hookpid");
    rt.create(&id, &b).assert_ok();
    let pid = rt.pid(&id);
    rt.start(&id).assert_ok();
    assert!(wait_for(POLL_TIMEOUT, || dir
        .join("startContainer.json")
        .exists()));
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    for name in ["createContainer", "startContainer"] {
        let st = hook_state(&dir, name);
        assert_eq!(st["pid"].as_i64(), Some(pid), "{name}: {st}");
    }
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn hook_args_and_env() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let dir = b.host_dir("out");
    let cmd = format!("echo \"$0|$1|$2|$FOO\" > {}/args", dir.display());
    b.sh("exit 0");
    b.set(
        "/hooks/createRuntime",
        serde_json::json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", cmd, "zero", "one", "two words"],
            "env": ["FOO=bar baz"]
        }]),
    );
    let id = rt.id("hookargs");
    rt.create(&id, &b).assert_ok();
    assert_eq!(read(dir.join("args")).trim(), "zero|one|two words|bar baz");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn hook_timeout_fails_create() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let timeout = 1u64;
    let sleep = 20u64;
    b.sh("exit 0").hook(
        "prestart",
        "/bin/sleep",
        &["sleep", &sleep.to_string()],
        Some(timeout),
    );
    let id = rt.id("hooktimeout");
    let t = Instant::now();
    rt.create(&id, &b).assert_err();
    assert!(
        t.elapsed() < Duration::from_secs(sleep / 2),
        "create took {:?}, the hook timeout was {timeout}s",
        t.elapsed()
    );
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn failing_prestart_fails_create() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("exit 0")
        .hook("prestart", "/bin/sh", &["sh", "-c", "exit 3"], None);
    let id = rt.id("hookfail");
    rt.create(&id, &b).assert_err();
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("exit 0")
        .hook("createRuntime", "/bin/false", &["false"], None);
    let id = rt.id("hookfail2");
    rt.create(&id, &b).assert_err();
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
}
