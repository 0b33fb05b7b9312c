//! Command line: flag forms, logging, `features`, `spec`.

use rt_tests::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    b
}

#[test]
fn bundle_flag_forms() {
    require_root!();
    let rt = Runtime::new();
    for form in ["--bundle=", "--bundle", "-b"] {
        let b = sleeper();
        b.save();
        let id = rt.id("bundleform");
        let o = if form.ends_with('=') {
            rt.exec(&["create", &format!("{form}{}", b.path_str()), &id])
        } else {
            rt.exec(&["create", form, b.path_str(), &id])
        };
        o.assert_ok();
        let st = rt.state(&id);
        assert_eq!(st["bundle"], b.path_str(), "{form}: {st}");
        rt.delete(&id).assert_ok();
        assert_nothing_left(&rt, &id, &b);
    }
}

#[test]
fn bundle_defaults_to_current_directory() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    b.save();
    let id = rt.id("cwdbundle");
    let mut c = rt.command();
    let st = c
        .current_dir(b.path())
        .args(["--root", rt.root_str(), "create", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(rt.state(&id)["bundle"], b.path_str());
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn root_flag_forms() {
    require_root!();
    let rt = Runtime::new();
    let b = sleeper();
    b.save();
    let root = rt.scratch().join("other-root");
    let r = root.to_str().unwrap();
    let id = rt.id("rootform");
    rt.exec_raw(&[
        &format!("--root={r}"),
        "create",
        "--bundle",
        b.path_str(),
        &id,
    ])
    .assert_ok();
    assert!(root.join(&id).exists(), "no state under --root={r}");
    assert!(!rt.root().join(&id).exists());
    let o = rt.exec_raw(&["--root", r, "state", &id]);
    o.assert_ok();
    let st: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(st["id"], id.as_str());
    // not visible under another root
    rt.exec(&["state", &id]).assert_err();
    rt.exec_raw(&[&format!("--root={r}"), "delete", "--force", &id])
        .assert_ok();
    assert!(!root.join(&id).exists());
    assert_no_cgroup(&b.cgroups_path().unwrap());
    assert_no_processes(&b.rootfs(), b.cgroups_path().as_deref());
}

#[test]
fn log_flag_forms() {
    require_root!();
    let rt = Runtime::new();
    let ghost = rt.id("ghost");
    for (i, eq) in [true, false].into_iter().enumerate() {
        let log = rt.scratch().join(format!("log{i}.txt"));
        let l = log.to_str().unwrap();
        let o = if eq {
            rt.exec(&[&format!("--log={l}"), "state", &ghost])
        } else {
            rt.exec(&["--log", l, "state", &ghost])
        };
        o.assert_failed();
        let text = read(&log);
        assert!(
            !text.trim().is_empty(),
            "--log{} wrote nothing",
            if eq { "=" } else { " " }
        );
        assert!(text.contains("error"), "{text}");
    }
}

#[test]
fn log_format_json() {
    require_root!();
    let rt = Runtime::new();
    let ghost = rt.id("ghost");
    // the message as printed without --log
    let plain = rt.exec(&["state", &ghost]);
    plain.assert_err();
    for (i, args) in [vec!["--log-format", "json"], vec!["--log-format=json"]]
        .into_iter()
        .enumerate()
    {
        let log = rt.scratch().join(format!("log{i}.json"));
        let mut a = vec!["--log", log.to_str().unwrap()];
        a.extend(args);
        a.extend(["state", ghost.as_str()]);
        rt.exec(&a).assert_failed();
        let text = read(&log);
        assert!(!text.trim().is_empty(), "no log written");
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect();
        for v in &lines {
            for k in ["level", "msg", "time"] {
                assert!(v[k].is_string(), "{k} missing: {v}");
            }
        }
        let err = lines
            .iter()
            .rev()
            .find(|v| v["level"] == "error")
            .unwrap_or_else(|| panic!("no error line in {text}"));
        let msg = err["msg"].as_str().unwrap();
        assert!(!msg.is_empty());
        assert!(
            plain.stderr.contains(msg),
            "last error {msg:?} is not the message {:?}",
            plain.stderr
        );
    }
}

#[test]
fn features_json() {
    require_root!();
    let rt = Runtime::new();
    let o = rt.exec_raw(&["features"]);
    o.assert_ok();
    let v: Value = serde_json::from_str(&o.stdout).expect("features prints JSON");
    let ver = |k: &str| -> Vec<u64> {
        let s = v[k].as_str().unwrap_or_else(|| panic!("{k} missing: {v}"));
        s.split(['-', '+'])
            .next()
            .unwrap()
            .split('.')
            .map(|p| p.parse().unwrap_or_else(|_| panic!("{k}={s}")))
            .collect()
    };
    let (min, max) = (ver("ociVersionMin"), ver("ociVersionMax"));
    assert!(min <= max, "{v}");
    assert_eq!(min[0], 1, "{v}");
    if let Some(hooks) = v["hooks"].as_array() {
        for h in [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ] {
            assert!(hooks.contains(&Value::from(h)), "{h} not in {v}");
        }
    }
}

fn spec_in(rt: &Runtime, dir: &Path, extra: &[&str]) -> Value {
    let mut a = vec!["spec"];
    a.extend_from_slice(extra);
    a.extend(["--bundle", dir.to_str().unwrap()]);
    rt.exec_raw(&a).assert_ok();
    serde_json::from_str(&read(dir.join("config.json"))).expect("config.json is JSON")
}

#[test]
fn spec_writes_a_runnable_config() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let p = b.path().join("config.json");
    let _ = fs::remove_file(&p);
    let v = spec_in(&rt, b.path(), &[]);
    assert!(v["ociVersion"].is_string(), "{v}");
    assert_eq!(v["root"]["path"], "rootfs", "{v}");
    assert!(v["process"]["args"].is_array(), "{v}");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"mount") && ns.contains(&"pid"), "{ns:?}");
    assert!(!ns.contains(&"user"), "{ns:?}");

    // refuses to overwrite it
    rt.exec_raw(&["spec", "--bundle", b.path_str()])
        .assert_err();

    // and the generated config runs
    b.config = v;
    b.terminal(false).sh("echo ran");
    let id = rt.id("spec");
    let o = rt.run(&id, &b);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), "ran");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn spec_rootless_has_user_namespace() {
    require_root!();
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let v = spec_in(&rt, dir.path(), &["--rootless"]);
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user"), "{ns:?}");
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let um = &v["linux"]["uidMappings"][0];
    let gm = &v["linux"]["gidMappings"][0];
    assert_eq!(um["hostID"].as_u64(), Some(uid as u64), "{v}");
    assert_eq!(gm["hostID"].as_u64(), Some(gid as u64), "{v}");
    assert!(um["size"].as_u64().is_some_and(|s| s >= 1), "{v}");
}

#[test]
fn version_flag() {
    require_root!();
    let rt = Runtime::new();
    let o = rt.exec_raw(&["--version"]);
    o.assert_ok();
    assert!(o.stdout.to_lowercase().contains("version"), "{o:?}");
}

#[test]
fn unknown_command_fails() {
    require_root!();
    let rt = Runtime::new();
    rt.exec_raw(&["frobnicate-this"]).assert_failed();
    rt.exec(&["state"]).assert_failed();
}
