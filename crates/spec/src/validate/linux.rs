//! The rest of `linux` (config-linux.md): devices, masked and read-only
//! paths, rootfs propagation, seccomp and resources.

use oci_spec::runtime::{Linux, LinuxDeviceType, LinuxNamespaceType, Spec};

use super::namespaces::Namespaces;
use super::require_absolute;
use crate::error::{json_of, json_str, SpecError};

/// runc's accepted set; "" is Go's zero value and means "leave as is".
const PROPAGATIONS: &[&str] = &[
    "",
    "shared",
    "slave",
    "private",
    "unbindable",
    "rshared",
    "rslave",
    "rprivate",
    "runbindable",
];

pub(super) fn check(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    check_devices(linux)?;
    check_restricted_paths(linux, ns)?;
    check_propagation(linux)?;
    check_seccomp(linux)?;
    check_resources(linux)
}

/// Presence of major/minor is checked at load time, see `load.rs`.
fn check_devices(linux: &Linux) -> Result<(), SpecError> {
    for (i, dev) in linux.devices().iter().flatten().enumerate() {
        require_absolute(format!("linux.devices[{i}].path"), dev.path())?;
        // oci-spec shares the enum with cgroup rules, where "a" (all) is
        // legal; a device node cannot be of type "a".
        if dev.typ() == LinuxDeviceType::A {
            return Err(SpecError::invalid_value(
                format!("linux.devices[{i}].type"),
                json_of(&dev.typ()),
                "must be one of c, b, u, p",
            ));
        }
    }
    Ok(())
}

fn check_restricted_paths(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let lists = [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ];
    for (field, list) in lists {
        let list = list.as_deref().unwrap_or_default();
        for (i, path) in list.iter().enumerate() {
            // config-linux.md: values MUST be absolute paths.
            require_absolute(format!("{field}[{i}]"), path.as_ref())?;
        }
        // Masking in the runtime's own mount namespace would mask the
        // host's /proc; runc: "unable to restrict sys entries without a
        // private MNT namespace".
        if !list.is_empty() && !ns.contains(LinuxNamespaceType::Mount) {
            return Err(SpecError::invalid(
                field,
                "requires a mount namespace in linux.namespaces",
            ));
        }
    }
    Ok(())
}

fn check_propagation(linux: &Linux) -> Result<(), SpecError> {
    match linux.rootfs_propagation() {
        Some(p) if !PROPAGATIONS.contains(&p.as_str()) => Err(SpecError::invalid_value(
            "linux.rootfsPropagation",
            json_str(p),
            "must be one of shared, slave, private, unbindable (or rshared, rslave, rprivate, runbindable)",
        )),
        _ => Ok(()),
    }
}

fn check_seccomp(linux: &Linux) -> Result<(), SpecError> {
    let Some(seccomp) = linux.seccomp() else {
        return Ok(());
    };
    for (i, syscall) in seccomp.syscalls().iter().flatten().enumerate() {
        // config-linux.md: `names` MUST contain at least one entry.
        if syscall.names().is_empty() {
            return Err(SpecError::invalid(
                format!("linux.seccomp.syscalls[{i}].names"),
                "must contain at least one entry",
            ));
        }
    }
    // config-linux.md: listenerMetadata MUST NOT be set without listenerPath.
    let has_path = seccomp
        .listener_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    if let Some(meta) = seccomp.listener_metadata() {
        if !meta.is_empty() && !has_path {
            return Err(SpecError::invalid_value(
                "linux.seccomp.listenerMetadata",
                json_str(meta),
                "requires linux.seccomp.listenerPath",
            ));
        }
    }
    Ok(())
}

fn check_resources(linux: &Linux) -> Result<(), SpecError> {
    let Some(resources) = linux.resources() else {
        return Ok(());
    };
    // config-linux.md: each weightDevice entry MUST set weight or leafWeight.
    let weight_devices = resources
        .block_io()
        .as_ref()
        .and_then(|b| b.weight_device().as_deref())
        .unwrap_or_default();
    for (i, dev) in weight_devices.iter().enumerate() {
        if dev.weight().is_none() && dev.leaf_weight().is_none() {
            return Err(SpecError::invalid(
                format!("linux.resources.blockIO.weightDevice[{i}]"),
                "must set weight or leafWeight",
            ));
        }
    }
    // config-linux.md: each rdma entry MUST set hcaHandles or hcaObjects.
    if let Some(rdma) = resources.rdma() {
        let mut names: Vec<&String> = rdma.keys().collect();
        names.sort();
        for name in names {
            let limit = &rdma[name];
            if limit.hca_handles().is_none() && limit.hca_objects().is_none() {
                return Err(SpecError::invalid_value(
                    "linux.resources.rdma",
                    json_str(name),
                    "entry must set hcaHandles or hcaObjects",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::validate::tests::{check, refused};
    use serde_json::json;

    #[test]
    fn device_path_must_be_absolute() {
        check(json!({"linux": {"devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438},
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
            {"path": "/dev/u", "type": "u", "major": 1, "minor": 1},
            {"path": "/srv/fifo", "type": "p"}
        ]}}))
        .unwrap();
        refused(
            json!({"linux": {"devices": [{"path": "dev/fuse", "type": "c", "major": 10, "minor": 229}]}}),
            "linux.devices[0].path",
            r#""dev/fuse""#,
        );
    }

    #[test]
    fn device_type_a_is_refused() {
        let msg = refused(
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "a", "major": 1, "minor": 1}]}}),
            "linux.devices[0].type",
            r#""a""#,
        );
        assert_eq!(
            msg,
            r#"linux.devices[0].type: must be one of c, b, u, p: "a""#
        );
    }

    #[test]
    fn masked_and_readonly_paths_must_be_absolute() {
        check(json!({"linux": {
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys"]
        }}))
        .unwrap();
        refused(
            json!({"linux": {"maskedPaths": ["/proc/kcore", "proc/keys"]}}),
            "linux.maskedPaths[1]",
            r#""proc/keys""#,
        );
        refused(
            json!({"linux": {"readonlyPaths": ["sys"]}}),
            "linux.readonlyPaths[0]",
            r#""sys""#,
        );
    }

    #[test]
    fn masked_paths_need_mount_namespace() {
        let msg = refused(
            json!({"linux": {"namespaces": [{"type": "pid"}], "maskedPaths": ["/proc/kcore"]}}),
            "linux.maskedPaths",
            "linux.namespaces",
        );
        assert_eq!(
            msg,
            "linux.maskedPaths: requires a mount namespace in linux.namespaces"
        );
        check(json!({"linux": {"namespaces": [{"type": "pid"}], "maskedPaths": []}})).unwrap();
    }

    #[test]
    fn rootfs_propagation_values() {
        for p in [
            "",
            "shared",
            "slave",
            "private",
            "unbindable",
            "rshared",
            "rslave",
            "rprivate",
            "runbindable",
        ] {
            check(json!({"linux": {"rootfsPropagation": p}})).unwrap();
        }
        let msg = refused(
            json!({"linux": {"rootfsPropagation": "recursive"}}),
            "linux.rootfsPropagation",
            r#""recursive""#,
        );
        assert!(
            msg.starts_with("linux.rootfsPropagation: must be one of shared, slave"),
            "{msg}"
        );
    }

    #[test]
    fn seccomp_syscall_names_must_not_be_empty() {
        check(json!({"linux": {"seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        }}}))
        .unwrap();
        let msg = refused(
            json!({"linux": {"seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": [], "action": "SCMP_ACT_ERRNO"}]
            }}}),
            "linux.seccomp.syscalls[1].names",
            "entry",
        );
        assert_eq!(
            msg,
            "linux.seccomp.syscalls[1].names: must contain at least one entry"
        );
    }

    #[test]
    fn seccomp_listener_metadata_needs_path() {
        check(json!({"linux": {"seccomp": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "x"
        }}}))
        .unwrap();
        refused(
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}}}),
            "linux.seccomp.listenerMetadata",
            r#""x""#,
        );
    }

    #[test]
    fn weight_device_needs_a_weight() {
        check(json!({"linux": {"resources": {"blockIO": {"weightDevice": [
            {"major": 8, "minor": 0, "weight": 500},
            {"major": 8, "minor": 16, "leafWeight": 300}
        ]}}}}))
        .unwrap();
        refused(
            json!({"linux": {"resources": {"blockIO": {"weightDevice": [
                {"major": 8, "minor": 0, "weight": 500},
                {"major": 8, "minor": 16}
            ]}}}}),
            "linux.resources.blockIO.weightDevice[1]",
            "leafWeight",
        );
    }

    #[test]
    fn rdma_entry_needs_a_limit() {
        check(json!({"linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": 3}, "rxe3": {"hcaObjects": 1}}}}}))
            .unwrap();
        refused(
            json!({"linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": 3}, "mlx4_0": {}}}}}),
            "linux.resources.rdma",
            r#""mlx4_0""#,
        );
    }
}
