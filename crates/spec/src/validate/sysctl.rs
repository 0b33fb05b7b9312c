//! `linux.sysctl`: only keys that live in a namespace the container owns,
//! otherwise writing them would change the host. Mirrors runc 1.1's
//! libcontainer/configs/validate sysctl rules (minus the host-netns probe
//! for joined network namespaces, which needs syscalls).

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::namespaces::Namespaces;
use crate::error::{json_str, SpecError};

/// IPC-namespaced sysctls outside the `fs.mqueue.` prefix.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

pub(super) fn check(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    // Sorted so the same config always reports the same key first.
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        if let Err(reason) = allowed(key, ns) {
            return Err(SpecError::invalid_value(
                "linux.sysctl",
                json_str(key),
                reason,
            ));
        }
    }
    Ok(())
}

fn allowed(key: &str, ns: &Namespaces) -> Result<(), &'static str> {
    // sysctl(8) accepts both spellings (net/ipv4/ip_forward).
    let key = key.replace('/', ".");
    let need = |typ, reason| {
        if ns.contains(typ) {
            Ok(())
        } else {
            Err(reason)
        }
    };

    if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
        return need(
            LinuxNamespaceType::Ipc,
            "not allowed in the host's ipc namespace",
        );
    }
    if key.starts_with("net.") {
        return need(
            LinuxNamespaceType::Network,
            "not allowed in the host's network namespace",
        );
    }
    match key.as_str() {
        // runc refuses this even with a uts namespace: the `hostname` field
        // owns it and the two would race.
        "kernel.hostname" if ns.contains(LinuxNamespaceType::Uts) => {
            Err("conflicts with the hostname field")
        }
        "kernel.domainname" | "kernel.hostname" => need(
            LinuxNamespaceType::Uts,
            "not allowed in the host's uts namespace",
        ),
        _ => Err("not in a separate kernel namespace"),
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::tests::{check, refused};
    use serde_json::{json, Value};

    fn with(namespaces: &[&str], sysctl: Value) -> Value {
        let ns: Vec<Value> = namespaces.iter().map(|t| json!({"type": t})).collect();
        json!({"linux": {"namespaces": ns, "sysctl": sysctl}})
    }

    #[test]
    fn ipc_sysctls_need_ipc_namespace() {
        for key in [
            "kernel.msgmax",
            "kernel.shm_rmid_forced",
            "fs.mqueue.queues_max",
            "kernel/sem",
        ] {
            check(with(&["ipc"], json!({key: "1"}))).unwrap();
            let msg = refused(
                with(&["pid"], json!({key: "1"})),
                "linux.sysctl",
                &format!("{key:?}"),
            );
            assert!(msg.contains("host's ipc namespace"), "{msg}");
        }
    }

    #[test]
    fn net_sysctls_need_network_namespace() {
        check(with(
            &["network"],
            json!({"net.ipv4.ip_forward": "1", "net/core/somaxconn": "256"}),
        ))
        .unwrap();
        let msg = refused(
            with(&["ipc"], json!({"net.ipv4.ip_forward": "1"})),
            "linux.sysctl",
            r#""net.ipv4.ip_forward""#,
        );
        assert_eq!(
            msg,
            r#"linux.sysctl: not allowed in the host's network namespace: "net.ipv4.ip_forward""#
        );
        // A joined netns passes here; whether it is the host's is a runtime check.
        check(json!({"linux": {
            "namespaces": [{"type": "network", "path": "/run/netns/x"}],
            "sysctl": {"net.core.somaxconn": "1"}
        }}))
        .unwrap();
    }

    #[test]
    fn uts_sysctls() {
        check(with(&["uts"], json!({"kernel.domainname": "example.org"}))).unwrap();
        refused(
            with(&["pid"], json!({"kernel.domainname": "example.org"})),
            "linux.sysctl",
            r#""kernel.domainname""#,
        );
        refused(
            with(&["pid"], json!({"kernel.hostname": "x"})),
            "linux.sysctl",
            r#""kernel.hostname""#,
        );
        let msg = refused(
            with(&["uts"], json!({"kernel.hostname": "x"})),
            "linux.sysctl",
            r#""kernel.hostname""#,
        );
        assert!(msg.contains("conflicts with the hostname field"), "{msg}");
    }

    #[test]
    fn host_wide_sysctls_are_refused() {
        let all = ["pid", "network", "ipc", "uts", "mount", "cgroup"];
        for key in ["kernel.core_pattern", "vm.swappiness", "kernel/panic"] {
            let msg = refused(
                with(&all, json!({key: "1"})),
                "linux.sysctl",
                &format!("{key:?}"),
            );
            assert!(msg.contains("not in a separate kernel namespace"), "{msg}");
        }
    }

    #[test]
    fn first_bad_key_is_deterministic() {
        let sysctl = json!({"vm.b": "1", "vm.a": "1", "vm.c": "1"});
        refused(with(&["ipc"], sysctl), "linux.sysctl", r#""vm.a""#);
    }
}
