//! Checks a parsed config against the MUSTs of the OCI runtime spec
//! (config.md, config-linux.md) and the few extra rules runc enforces
//! before touching the system. Nothing here makes a syscall, so rules that
//! need the host (does the namespace path exist, is the netns the host's)
//! are left to the runtime.

mod hooks;
mod linux;
mod mounts;
mod namespaces;
mod process;
mod sysctl;

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{json_str, SpecError};
use crate::version;
use namespaces::Namespaces;

/// What the config is about to be used for; decides which optional fields
/// become required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `create` / `run`: `process` is REQUIRED because `start` runs it.
    Create,
    /// Any other use (e.g. re-reading a stored config for `state`, `delete`):
    /// `process` may be absent, everything present is still checked.
    Any,
}

/// Checks `spec`; returns the first rule broken, naming the field.
pub fn validate(spec: &Spec, purpose: Purpose) -> Result<(), SpecError> {
    version::check(spec.version())?;
    check_root(spec)?;
    let ns = Namespaces::of(spec)?;
    check_readonly_root(spec, &ns)?;
    match spec.process() {
        Some(p) => process::check(p)?,
        None if purpose == Purpose::Create => {
            return Err(SpecError::invalid(
                "process",
                "required to create a container",
            ));
        }
        None => {}
    }
    mounts::check(spec)?;
    hooks::check(spec)?;
    namespaces::check_uts(spec, &ns)?;
    namespaces::check_user(spec, &ns)?;
    sysctl::check(spec, &ns)?;
    linux::check(spec, &ns)?;
    check_annotations(spec)
}

/// A read-only root is a remount of the container's root mount; in the runtime's own
/// mount namespace there is none to remount without touching the host.
fn check_readonly_root(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    let readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if readonly && !ns.contains(oci_spec::runtime::LinuxNamespaceType::Mount) {
        return Err(SpecError::invalid(
            "root.readonly",
            "requires a mount namespace in linux.namespaces",
        ));
    }
    Ok(())
}

fn check_root(spec: &Spec) -> Result<(), SpecError> {
    let Some(root) = spec.root() else {
        return Err(SpecError::invalid("root", "required"));
    };
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::invalid_value(
            "root.path",
            json_str(""),
            "must not be empty",
        ));
    }
    Ok(())
}

/// config.md: annotation keys MUST NOT be an empty string.
fn check_annotations(spec: &Spec) -> Result<(), SpecError> {
    match spec.annotations() {
        Some(a) if a.contains_key("") => Err(SpecError::invalid_value(
            "annotations",
            json_str(""),
            "keys must not be empty",
        )),
        _ => Ok(()),
    }
}

/// Every path rule in the spec is "MUST be absolute".
pub(super) fn require_absolute(field: impl Into<String>, path: &Path) -> Result<(), SpecError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(SpecError::invalid_value(
            field,
            json_str(&path.to_string_lossy()),
            "must be an absolute path",
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The smallest config `create` accepts; tests patch it with JSON
    /// fragments so each case reads like the config.json a caller sends.
    pub(crate) fn base() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    /// Merges `patch` into `base()` (objects recursively, anything else
    /// replaced) and validates the result for `create`.
    pub(crate) fn check(patch: Value) -> Result<(), SpecError> {
        check_for(patch, Purpose::Create)
    }

    pub(crate) fn check_for(patch: Value, purpose: Purpose) -> Result<(), SpecError> {
        let mut doc = base();
        merge(&mut doc, patch);
        let spec: Spec = serde_json::from_value(doc).expect("test config must parse");
        validate(&spec, purpose)
    }

    /// Asserts that `patch` is refused for `field`, with `value` in the message.
    #[track_caller]
    pub(crate) fn refused(patch: Value, field: &str, value: &str) -> String {
        let err = check(patch).expect_err("config should be refused");
        assert_eq!(err.field(), Some(field), "{err}");
        let msg = err.to_string();
        assert!(msg.ends_with(value), "{msg:?} should end with {value:?}");
        msg
    }

    fn merge(doc: &mut Value, patch: Value) {
        match (doc, patch) {
            (Value::Object(d), Value::Object(p)) => {
                for (k, v) in p {
                    match d.get_mut(&k) {
                        Some(slot) if v.is_object() => merge(slot, v),
                        _ => {
                            d.insert(k, v);
                        }
                    }
                }
            }
            (d, p) => *d = p,
        }
    }

    #[test]
    fn base_config_is_valid() {
        check(json!({})).unwrap();
    }

    #[test]
    fn readonly_root_needs_mount_namespace() {
        check(json!({"root": {"path": "rootfs", "readonly": true}})).unwrap();
        let no_mnt = json!({"namespaces": [{"type": "pid"}]});
        check(json!({"linux": no_mnt.clone()})).unwrap();
        let msg = refused(
            json!({"root": {"path": "rootfs", "readonly": true}, "linux": no_mnt}),
            "root.readonly",
            "linux.namespaces",
        );
        assert_eq!(
            msg,
            "root.readonly: requires a mount namespace in linux.namespaces"
        );
    }

    #[test]
    fn version_is_checked() {
        refused(json!({"ociVersion": "2.0.0"}), "ociVersion", r#""2.0.0""#);
        refused(json!({"ociVersion": ""}), "ociVersion", r#""""#);
        check(json!({"ociVersion": "1.0.2-dev"})).unwrap();
    }

    #[test]
    fn root_is_required() {
        let mut doc = base();
        doc.as_object_mut().unwrap().remove("root");
        let spec: Spec = serde_json::from_value(doc).unwrap();
        let err = validate(&spec, Purpose::Create).unwrap_err();
        assert_eq!(err.to_string(), "root: required");
    }

    #[test]
    fn root_path_must_not_be_empty() {
        let msg = refused(json!({"root": {"path": ""}}), "root.path", r#""""#);
        assert_eq!(msg, r#"root.path: must not be empty: """#);
        check(json!({"root": {"path": "/abs/rootfs", "readonly": true}})).unwrap();
    }

    #[test]
    fn process_required_only_for_create() {
        let mut doc = base();
        doc.as_object_mut().unwrap().remove("process");
        let spec: Spec = serde_json::from_value(doc).unwrap();
        let err = validate(&spec, Purpose::Create).unwrap_err();
        assert_eq!(err.to_string(), "process: required to create a container");
        validate(&spec, Purpose::Any).unwrap();
    }

    #[test]
    fn purpose_any_still_checks_present_process() {
        let err = check_for(json!({"process": {"cwd": "rel"}}), Purpose::Any).unwrap_err();
        assert_eq!(err.field(), Some("process.cwd"));
    }

    #[test]
    fn annotation_keys_must_not_be_empty() {
        check(json!({"annotations": {"org.example.key": "", "k": "v"}})).unwrap();
        refused(json!({"annotations": {"": "v"}}), "annotations", r#""""#);
    }
}
