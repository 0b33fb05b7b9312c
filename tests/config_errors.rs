//! Malformed configs: `create` must exit non-zero with a one-line message
//! on stderr and leave nothing behind (no state dir, cgroup, mount or
//! process).
//!
//! runc 1.1.5 accepts some of these (see the comments); rt must refuse all.

use rt_tests::*;
use serde_json::json;

/// `create` must fail cleanly.
#[track_caller]
fn refused(b: &Bundle, name: &str) {
    let rt = Runtime::new();
    let id = rt.id(name);
    let o = rt.create(&id, b);
    o.assert_err();
    assert!(
        rt.try_state(&id).is_err(),
        "state exists after failed create"
    );
    assert_nothing_left(&rt, &id, b);
    let l = rt.exec(&["list", "-q"]);
    l.assert_ok();
    assert_eq!(l.stdout.trim(), "", "list shows a container");
}

/// The untouched template must work, so that each test below fails for the
/// one thing it changes.
#[test]
fn template_is_accepted() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("exit 0");
    let id = rt.id("template");
    rt.run(&id, &b).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn invalid_json() {
    require_root!();
    let mut b = Bundle::busybox();
    b.raw_config(Some("{\"ociVersion\": \"1.0.2\", \"process\": {"));
    refused(&b, "badjson");
}

#[test]
fn missing_config_json() {
    require_root!();
    let mut b = Bundle::busybox();
    b.raw_config(None);
    refused(&b, "noconfig");
}

#[test]
fn config_is_not_an_object() {
    require_root!();
    let mut b = Bundle::busybox();
    b.raw_config(Some("[1, 2, 3]"));
    refused(&b, "notobject");
}

/// runc 1.1.5 does not check ociVersion and accepts this.
#[test]
fn unsupported_oci_version() {
    require_root!();
    let mut b = Bundle::busybox();
    b.set("/ociVersion", json!("2.0.0")).sh("exit 0");
    refused(&b, "ociversion");
}

#[test]
fn relative_cwd() {
    require_root!();
    let mut b = Bundle::busybox();
    b.cwd("tmp").sh("exit 0");
    refused(&b, "relcwd");
}

#[test]
fn missing_process() {
    require_root!();
    let mut b = Bundle::busybox();
    b.remove("/process");
    refused(&b, "noprocess");
}

#[test]
fn empty_args() {
    require_root!();
    let mut b = Bundle::busybox();
    b.args(&[]);
    refused(&b, "emptyargs");
}

/// runc 1.1.5 only warns about unknown capabilities and accepts this.
#[test]
fn unknown_capability() {
    require_root!();
    let mut b = Bundle::busybox();
    b.all_caps(&["CAP_KILL", "CAP_NOT_A_CAPABILITY"])
        .sh("exit 0");
    refused(&b, "badcap");
}

#[test]
fn unknown_rlimit() {
    require_root!();
    let mut b = Bundle::busybox();
    b.rlimit("RLIMIT_BOGUS", 1, 1).sh("exit 0");
    refused(&b, "badrlimit");
}

#[test]
fn duplicate_namespace() {
    require_root!();
    let mut b = Bundle::busybox();
    b.sh("exit 0");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "pid"}));
    refused(&b, "dupns");
}

#[test]
fn unknown_namespace_type() {
    require_root!();
    let mut b = Bundle::busybox();
    b.sh("exit 0");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    refused(&b, "badns");
}

/// runc 1.1.5 ignores the mappings and accepts this.
#[test]
fn uid_mappings_without_user_namespace() {
    require_root!();
    let mut b = Bundle::busybox();
    assert!(!b.has_namespace("user"));
    b.uid_mappings(0, 100000, 65536)
        .gid_mappings(0, 100000, 65536)
        .sh("exit 0");
    refused(&b, "mapnouserns");
}

#[test]
fn hostname_without_uts_namespace() {
    require_root!();
    let mut b = Bundle::busybox();
    b.remove_namespace("uts").hostname("rt-no-uts").sh("exit 0");
    refused(&b, "hostnouts");
}

#[test]
fn sysctl_not_namespaced() {
    require_root!();
    let mut b = Bundle::busybox();
    b.sysctl("kernel.core_pattern", "core").sh("exit 0");
    refused(&b, "sysctlcore");
}

#[test]
fn net_sysctl_without_network_namespace() {
    require_root!();
    let mut b = Bundle::busybox();
    b.remove_namespace("network")
        .sysctl("net.ipv4.ip_forward", "1")
        .sh("exit 0");
    refused(&b, "sysctlhostnet");
}

#[test]
fn nonexistent_executable() {
    require_root!();
    let mut b = Bundle::busybox();
    b.args(&["/bin/does-not-exist"]);
    refused(&b, "noexec");
}

#[test]
fn nonexistent_executable_in_path() {
    require_root!();
    let mut b = Bundle::busybox();
    b.args(&["does-not-exist-anywhere"]);
    refused(&b, "noexecpath");
}

/// runc 1.1.5 treats a relative destination as relative to the rootfs and
/// accepts this.
#[test]
fn relative_mount_destination() {
    require_root!();
    let mut b = Bundle::busybox();
    b.mount("mnt/relative", "tmpfs", "tmpfs", &[]).sh("exit 0");
    refused(&b, "relmount");
}

#[test]
fn missing_rootfs() {
    require_root!();
    let mut b = Bundle::busybox();
    b.set("/root/path", json!("no-such-rootfs")).sh("exit 0");
    refused(&b, "norootfs");
}

fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// As runc: a profile the host cannot apply is an error, never a silently
/// unconfined container.
#[test]
fn apparmor_profile_without_apparmor_is_refused() {
    require_root!();
    if apparmor_enabled() {
        eprintln!("note: not applicable: this host has AppArmor");
        return;
    }
    let mut b = Bundle::busybox();
    b.set(
        "/process/apparmorProfile",
        serde_json::json!("rt-test-profile"),
    );
    refused(&b, "apparmor");
}

#[test]
fn selinux_label_without_selinux_is_refused() {
    require_root!();
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("note: not applicable: this host has SELinux");
        return;
    }
    let mut b = Bundle::busybox();
    b.set(
        "/process/selinuxLabel",
        serde_json::json!("system_u:system_r:container_t:s0"),
    );
    refused(&b, "selinux");
}

/// A mount label means nothing without SELinux: runc ignores it, and so does rt.
#[test]
fn mount_label_without_selinux_is_ignored() {
    require_root!();
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("note: not applicable: this host has SELinux");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set(
        "/linux/mountLabel",
        serde_json::json!("system_u:object_r:container_file_t:s0"),
    )
    .sh("echo ok");
    let id = rt.id("mountlabel");
    let o = rt.run(&id, &b);
    o.assert_ok();
    assert_eq!(o.stdout.trim(), "ok");
    assert_nothing_left(&rt, &id, &b);
}
