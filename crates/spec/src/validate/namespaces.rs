//! `linux.namespaces` and the fields that only make sense inside one of
//! them: `hostname`/`domainname` (uts) and the id mappings (user).

use std::collections::HashMap;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::require_absolute;
use crate::error::{json_of, json_str, SpecError};

/// The namespaces a config asks for, indexed by type. Built once (after the
/// duplicate check) because several rules ask "is X listed?".
pub(super) struct Namespaces {
    by_type: HashMap<LinuxNamespaceType, Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    index: usize,
    /// Joins an existing namespace (`path` set) rather than creating one.
    joins: bool,
}

impl Namespaces {
    pub(super) fn of(spec: &Spec) -> Result<Self, SpecError> {
        let mut by_type = HashMap::new();
        let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for (index, ns) in list.into_iter().flatten().enumerate() {
            // runc (Go) cannot tell `"path": ""` from no path; neither do we.
            let path = ns.path().as_deref().filter(|p| !p.as_os_str().is_empty());
            if let Some(path) = path {
                // config-linux.md: path MUST be absolute in the runtime mount ns.
                require_absolute(format!("linux.namespaces[{index}].path"), path)?;
            }
            let entry = Entry {
                index,
                joins: path.is_some(),
            };
            // config-linux.md: duplicated namespace types MUST be an error.
            if let Some(first) = by_type.insert(ns.typ(), entry) {
                return Err(SpecError::invalid_value(
                    format!("linux.namespaces[{index}].type"),
                    json_of(&ns.typ()),
                    format!(
                        "duplicate namespace (also at linux.namespaces[{}])",
                        first.index
                    ),
                ));
            }
        }
        Ok(Namespaces { by_type })
    }

    /// Listed at all, whether new or joined: the container is not in the
    /// runtime's namespace of that type.
    pub(super) fn contains(&self, typ: LinuxNamespaceType) -> bool {
        self.by_type.contains_key(&typ)
    }

    /// Index of the entry if the container gets a fresh namespace of `typ`.
    fn creates(&self, typ: LinuxNamespaceType) -> Option<usize> {
        self.by_type.get(&typ).filter(|e| !e.joins).map(|e| e.index)
    }
}

/// Setting the name of the runtime's own UTS namespace would rename the
/// host; runc: "unable to set hostname without a private UTS namespace".
pub(super) fn check_uts(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    if ns.contains(LinuxNamespaceType::Uts) {
        return Ok(());
    }
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        // runc ignores an empty name, and some callers always send the field.
        if let Some(name) = value.as_deref().filter(|n| !n.is_empty()) {
            return Err(SpecError::invalid_value(
                field,
                json_str(name),
                "requires a uts namespace in linux.namespaces",
            ));
        }
    }
    Ok(())
}

pub(super) fn check_user(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    let linux = spec.linux().as_ref();
    // Empty lists are what Go's zero value looks like; runc treats them as unset.
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    let maps = [
        ("linux.uidMappings", uid_maps),
        ("linux.gidMappings", gid_maps),
    ];

    if !ns.contains(LinuxNamespaceType::User) {
        // runc: "user namespace mappings specified, but USER namespace isn't enabled".
        if let Some((field, _)) = maps.iter().find(|(_, m)| !m.is_empty()) {
            return Err(SpecError::invalid(
                *field,
                "requires a user namespace in linux.namespaces",
            ));
        }
        return Ok(());
    }

    for (field, list) in maps {
        for (i, m) in list.iter().enumerate() {
            if m.size() == 0 {
                return Err(SpecError::invalid_value(
                    format!("{field}[{i}].size"),
                    "0",
                    "must be greater than zero",
                ));
            }
        }
    }

    // Joining an existing user namespace inherits its mappings.
    let Some(index) = ns.creates(LinuxNamespaceType::User) else {
        return Ok(());
    };
    // runc: "User namespaces enabled, but no uid mappings found."
    for (field, list) in maps {
        if list.is_empty() {
            return Err(SpecError::invalid(
                field,
                format!("required by the new user namespace at linux.namespaces[{index}]"),
            ));
        }
    }

    // setuid/setgid to an id outside the mappings fails with EINVAL inside
    // the new namespace; runc reports "cannot set uid to unmapped user".
    if let Some(process) = spec.process() {
        let user = process.user();
        let ids = [
            ("process.user.uid", user.uid(), maps[0]),
            ("process.user.gid", user.gid(), maps[1]),
        ];
        for (field, id, (maps_field, list)) in ids {
            if !list.iter().any(|m| maps_container_id(m, id)) {
                return Err(SpecError::invalid_value(
                    field,
                    id.to_string(),
                    format!("not mapped by {maps_field}"),
                ));
            }
        }
    }
    Ok(())
}

fn maps_container_id(m: &LinuxIdMapping, id: u32) -> bool {
    let start = u64::from(m.container_id());
    (start..start + u64::from(m.size())).contains(&u64::from(id))
}

#[cfg(test)]
mod tests {
    use crate::validate::tests::{check, refused};
    use serde_json::{json, Value};

    fn with_namespaces(list: Value) -> Value {
        json!({"linux": {"namespaces": list}})
    }

    #[test]
    fn each_type_at_most_once() {
        check(with_namespaces(json!([
            {"type": "pid"}, {"type": "network", "path": "/var/run/netns/a"}, {"type": "mount"},
            {"type": "ipc"}, {"type": "uts"}, {"type": "cgroup"}, {"type": "time"}
        ])))
        .unwrap();
        let msg = refused(
            with_namespaces(
                json!([{"type": "pid"}, {"type": "mount"}, {"type": "pid", "path": "/proc/1/ns/pid"}]),
            ),
            "linux.namespaces[2].type",
            r#""pid""#,
        );
        assert_eq!(
            msg,
            r#"linux.namespaces[2].type: duplicate namespace (also at linux.namespaces[0]): "pid""#
        );
    }

    #[test]
    fn namespace_path_must_be_absolute() {
        refused(
            with_namespaces(json!([{"type": "network", "path": "netns/a"}])),
            "linux.namespaces[0].path",
            r#""netns/a""#,
        );
        // Empty path means "create", as in runc.
        check(with_namespaces(json!([{"type": "network", "path": ""}]))).unwrap();
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        check(json!({"hostname": "box", "linux": {"namespaces": [{"type": "uts"}]}})).unwrap();
        check(json!({"hostname": "box", "linux": {"namespaces": [{"type": "uts", "path": "/proc/7/ns/uts"}]}}))
            .unwrap();
        check(json!({"hostname": ""})).unwrap();
        let msg = refused(json!({"hostname": "box"}), "hostname", r#""box""#);
        assert_eq!(
            msg,
            r#"hostname: requires a uts namespace in linux.namespaces: "box""#
        );
    }

    #[test]
    fn domainname_needs_uts_namespace() {
        check(json!({"domainname": "example.org", "linux": {"namespaces": [{"type": "uts"}]}}))
            .unwrap();
        refused(
            json!({"domainname": "example.org"}),
            "domainname",
            r#""example.org""#,
        );
    }

    #[test]
    fn mappings_need_user_namespace() {
        let msg = refused(
            json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "linux.uidMappings",
            "linux.namespaces",
        );
        assert_eq!(
            msg,
            "linux.uidMappings: requires a user namespace in linux.namespaces"
        );
        refused(
            json!({"linux": {"gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "linux.gidMappings",
            "linux.namespaces",
        );
        // Empty lists count as absent.
        check(json!({"linux": {"uidMappings": [], "gidMappings": []}})).unwrap();
    }

    fn userns(extra: Value) -> Value {
        let mut doc = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}]}});
        for (k, v) in extra.as_object().unwrap() {
            doc["linux"][k] = v.clone();
        }
        doc
    }

    #[test]
    fn new_user_namespace_needs_both_mappings() {
        let one = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        check(userns(json!({"uidMappings": one, "gidMappings": one}))).unwrap();
        let msg = refused(
            userns(json!({"gidMappings": one})),
            "linux.uidMappings",
            "[2]",
        );
        assert_eq!(
            msg,
            "linux.uidMappings: required by the new user namespace at linux.namespaces[2]"
        );
        refused(
            userns(json!({"uidMappings": one})),
            "linux.gidMappings",
            "[2]",
        );
        refused(userns(json!({})), "linux.uidMappings", "[2]");
    }

    #[test]
    fn joined_user_namespace_needs_no_mappings() {
        check(with_namespaces(
            json!([{"type": "user", "path": "/proc/42/ns/user"}, {"type": "mount"}]),
        ))
        .unwrap();
    }

    #[test]
    fn mapping_size_must_be_positive() {
        let good = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let bad = json!([{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 5000, "size": 0}]);
        let msg = refused(
            userns(json!({"uidMappings": good, "gidMappings": bad})),
            "linux.gidMappings[1].size",
            "0",
        );
        assert_eq!(
            msg,
            "linux.gidMappings[1].size: must be greater than zero: 0"
        );
    }

    #[test]
    fn process_user_must_be_mapped() {
        let maps = json!([{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65535}]);
        let mut ok = userns(json!({"uidMappings": maps, "gidMappings": maps}));
        ok["process"] = json!({"user": {"uid": 65535, "gid": 0}});
        check(ok).unwrap();

        let mut bad = userns(json!({"uidMappings": maps, "gidMappings": maps}));
        bad["process"] = json!({"user": {"uid": 65536, "gid": 0}});
        let msg = refused(bad, "process.user.uid", "65536");
        assert_eq!(
            msg,
            "process.user.uid: not mapped by linux.uidMappings: 65536"
        );

        let small = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let mut bad = userns(json!({"uidMappings": small, "gidMappings": small}));
        bad["process"] = json!({"user": {"uid": 0, "gid": 5}});
        refused(bad, "process.user.gid", "5");
    }
}
