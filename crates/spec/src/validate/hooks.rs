//! `hooks` (config.md "POSIX-platform Hooks").

use oci_spec::runtime::{Hook, Spec};

use super::require_absolute;
use crate::error::SpecError;

pub(super) fn check(spec: &Spec) -> Result<(), SpecError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    // `prestart` is deprecated in the spec but still sent by older callers
    // and still run by runc, so it is validated like the others.
    #[allow(deprecated)]
    let prestart = hooks.prestart();
    let phases = [
        ("prestart", prestart),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (phase, list) in phases {
        for (i, hook) in list.iter().flatten().enumerate() {
            check_hook(&format!("hooks.{phase}[{i}]"), hook)?;
        }
    }
    Ok(())
}

fn check_hook(field: &str, hook: &Hook) -> Result<(), SpecError> {
    // config.md extends execv's path: it MUST be absolute (no $PATH lookup).
    require_absolute(format!("{field}.path"), hook.path())?;
    // config.md: if set, timeout MUST be greater than zero.
    if let Some(timeout) = hook.timeout() {
        if timeout <= 0 {
            return Err(SpecError::invalid_value(
                format!("{field}.timeout"),
                timeout.to_string(),
                "must be greater than zero",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::validate::tests::{check, refused};
    use serde_json::json;

    #[test]
    fn hooks_with_absolute_paths_and_positive_timeouts_pass() {
        check(json!({"hooks": {
            "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"]}],
            "createRuntime": [{"path": "/usr/bin/setup-network"}],
            "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
            "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}]
        }}))
        .unwrap();
    }

    #[test]
    fn hook_path_must_be_absolute() {
        let msg = refused(
            json!({"hooks": {"createContainer": [
                {"path": "/bin/ok"},
                {"path": "notify"}
            ]}}),
            "hooks.createContainer[1].path",
            r#""notify""#,
        );
        assert_eq!(
            msg,
            r#"hooks.createContainer[1].path: must be an absolute path: "notify""#
        );
        refused(
            json!({"hooks": {"prestart": [{"path": "x"}]}}),
            "hooks.prestart[0].path",
            r#""x""#,
        );
    }

    #[test]
    fn hook_timeout_must_be_positive() {
        let msg = refused(
            json!({"hooks": {"startContainer": [{"path": "/bin/true", "timeout": 0}]}}),
            "hooks.startContainer[0].timeout",
            "0",
        );
        assert_eq!(
            msg,
            "hooks.startContainer[0].timeout: must be greater than zero: 0"
        );
        refused(
            json!({"hooks": {"poststop": [{"path": "/bin/true", "timeout": -3}]}}),
            "hooks.poststop[0].timeout",
            "-3",
        );
    }
}
