//! The config `rt spec` writes: runc 1.1's `runc spec` output with our
//! hostname, so tooling and tests written against runc see the same file.

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, Mount, Spec,
};
use serde_json::json;

/// `rt spec` (`rootless == false`) or `rt spec --rootless`.
///
/// For rootless, the id mappings map container root to host id 0, which is
/// what runc writes when run as root. runc writes the caller's euid/egid
/// instead; as this crate makes no syscalls, use [`rootless_spec`] to get
/// that.
pub fn default_spec(rootless: bool) -> Spec {
    if rootless {
        rootless_spec(0, 0)
    } else {
        base()
    }
}

/// `rt spec --rootless` for a caller whose effective ids are `host_uid` and
/// `host_gid`: the same transformation as runc's `specconv.ToRootless`.
pub fn rootless_spec(host_uid: u32, host_gid: u32) -> Spec {
    let mut spec = base();

    if let Some(mounts) = spec.mounts_mut() {
        for mount in mounts.iter_mut() {
            to_rootless_mount(mount);
        }
    }

    if let Some(linux) = spec.linux_mut() {
        // An unprivileged user cannot configure networking for a new netns,
        // and cannot own a cgroup to apply resources to.
        let mut namespaces: Vec<LinuxNamespace> = linux
            .namespaces()
            .iter()
            .flatten()
            .filter(|ns| {
                !matches!(
                    ns.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::User
                )
            })
            .cloned()
            .collect();
        let mut user = LinuxNamespace::default();
        user.set_typ(LinuxNamespaceType::User);
        namespaces.push(user);
        linux.set_namespaces(Some(namespaces));
        linux.set_uid_mappings(Some(vec![single_mapping(host_uid)]));
        linux.set_gid_mappings(Some(vec![single_mapping(host_gid)]));
        linux.set_resources(None);
    }
    spec
}

fn to_rootless_mount(mount: &mut Mount) {
    // sysfs cannot be mounted without owning the netns; bind the host's.
    if mount.destination().as_os_str() == "/sys" {
        mount.set_typ(Some("none".to_owned()));
        mount.set_source(Some("/sys".into()));
        mount.set_options(Some(
            ["rbind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        ));
        return;
    }
    // Only id 0 is mapped, so uid=/gid= options (devpts gid=5) would fail.
    if let Some(options) = mount.options_mut() {
        options.retain(|o| !o.starts_with("uid=") && !o.starts_with("gid="));
        if options.is_empty() {
            mount.set_options(None);
        }
    }
}

fn single_mapping(host_id: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(host_id)
        .size(1u32)
        .build()
        // The builder only fails on custom validation, which this type lacks.
        .expect("LinuxIdMappingBuilder cannot fail")
}

/// Spelled as JSON because that is what it must match field for field:
/// runc 1.1.5's `runc spec` (see testdata/).
fn base() -> Spec {
    let doc = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rt",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    });
    // A literal checked by the tests below; it cannot fail at run time.
    serde_json::from_value(doc).expect("built-in default spec matches the oci-spec schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{to_json, validate, Purpose};

    /// `runc spec` output captured from runc 1.1.5, hostname swapped.
    fn runc_output(name: &str) -> String {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        text.replace(r#""hostname": "runc""#, r#""hostname": "rt""#)
    }

    #[test]
    fn default_spec_matches_runc_spec_byte_for_byte() {
        assert_eq!(
            to_json(&default_spec(false)),
            runc_output("runc-1.1.5-spec.json")
        );
    }

    #[test]
    fn rootless_spec_matches_runc_spec_rootless_byte_for_byte() {
        assert_eq!(
            to_json(&default_spec(true)),
            runc_output("runc-1.1.5-spec-rootless.json")
        );
    }

    #[test]
    fn default_specs_validate() {
        validate(&default_spec(false), Purpose::Create).unwrap();
        validate(&default_spec(true), Purpose::Create).unwrap();
        validate(&rootless_spec(1000, 1000), Purpose::Create).unwrap();
    }

    #[test]
    fn rootless_spec_maps_caller_ids() {
        let spec = rootless_spec(1000, 1001);
        let linux = spec.linux().as_ref().unwrap();
        let uid = linux.uid_mappings().as_ref().unwrap();
        let gid = linux.gid_mappings().as_ref().unwrap();
        assert_eq!(
            (
                uid.len(),
                uid[0].container_id(),
                uid[0].host_id(),
                uid[0].size()
            ),
            (1, 0, 1000, 1)
        );
        assert_eq!(
            (
                gid.len(),
                gid[0].container_id(),
                gid[0].host_id(),
                gid[0].size()
            ),
            (1, 0, 1001, 1)
        );
        let types: Vec<_> = linux
            .namespaces()
            .iter()
            .flatten()
            .map(|n| n.typ())
            .collect();
        assert!(!types.contains(&LinuxNamespaceType::Network));
        assert_eq!(types.last(), Some(&LinuxNamespaceType::User));
        assert!(linux.resources().is_none());
    }

    #[test]
    fn rootless_mount_without_remaining_options_drops_the_list() {
        let mut m = Mount::default();
        m.set_destination("/x".into());
        m.set_options(Some(vec!["gid=5".into(), "uid=0".into()]));
        to_rootless_mount(&mut m);
        assert_eq!(m.options(), &None);
    }
}
