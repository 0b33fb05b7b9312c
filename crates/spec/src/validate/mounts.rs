//! `mounts` (config.md "Mounts").

use oci_spec::runtime::Spec;

use super::require_absolute;
use crate::error::SpecError;

/// Runtime-spec 1.1 makes Linux mount destinations absolute; runc 1.1 already
/// refuses relative ones ("mount destination not absolute").
pub(super) fn check(spec: &Spec) -> Result<(), SpecError> {
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        require_absolute(format!("mounts[{i}].destination"), mount.destination())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::validate::tests::{check, refused};
    use serde_json::json;

    #[test]
    fn destination_must_be_absolute() {
        check(json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "relative/src", "options": ["rbind"]}
        ]}))
        .unwrap();
        let msg = refused(
            json!({"mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "data", "type": "bind", "source": "/src"}
            ]}),
            "mounts[1].destination",
            r#""data""#,
        );
        assert_eq!(
            msg,
            r#"mounts[1].destination: must be an absolute path: "data""#
        );
    }
}
