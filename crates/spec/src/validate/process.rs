//! `process` (config.md "Process").

use std::collections::HashMap;
use std::ops::RangeInclusive;

use oci_spec::runtime::Process;

use super::require_absolute;
use crate::error::{json_of, json_str, SpecError};

/// The kernel's OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX; anything else makes
/// the write to /proc/<pid>/oom_score_adj fail after the container exists.
const OOM_SCORE_ADJ: RangeInclusive<i32> = -1000..=1000;

pub(super) fn check(process: &Process) -> Result<(), SpecError> {
    check_args(process)?;
    // config.md: cwd MUST be an absolute path.
    require_absolute("process.cwd", process.cwd())?;
    check_env(process)?;
    check_rlimits(process)?;
    if let Some(adj) = process.oom_score_adj() {
        if !OOM_SCORE_ADJ.contains(&adj) {
            return Err(SpecError::invalid_value(
                "process.oomScoreAdj",
                adj.to_string(),
                format!(
                    "must be within {}..{}",
                    OOM_SCORE_ADJ.start(),
                    OOM_SCORE_ADJ.end()
                ),
            ));
        }
    }
    Ok(())
}

fn check_args(process: &Process) -> Result<(), SpecError> {
    // config.md: args REQUIRED on POSIX; runc: "args must not be empty".
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(SpecError::invalid(
            "process.args",
            "must contain at least one entry",
        ));
    }
    for (i, arg) in args.iter().enumerate() {
        // execve cannot carry a NUL; refusing here beats a late exec failure.
        if arg.contains('\0') {
            return Err(SpecError::invalid_value(
                format!("process.args[{i}]"),
                json_str(arg),
                "must not contain a NUL byte",
            ));
        }
    }
    Ok(())
}

/// Same rules as runc's environment handling, which refuses these at exec.
fn check_env(process: &Process) -> Result<(), SpecError> {
    for (i, entry) in process.env().iter().flatten().enumerate() {
        let reason = match entry.split_once('=') {
            None => "must have the form KEY=VALUE",
            Some(("", _)) => "variable name must not be empty",
            Some(_) if entry.contains('\0') => "must not contain a NUL byte",
            Some(_) => continue,
        };
        return Err(SpecError::invalid_value(
            format!("process.env[{i}]"),
            json_str(entry),
            reason,
        ));
    }
    Ok(())
}

/// config.md: duplicated rlimit types MUST generate an error.
fn check_rlimits(process: &Process) -> Result<(), SpecError> {
    let mut seen = HashMap::new();
    for (i, rlimit) in process.rlimits().iter().flatten().enumerate() {
        let name = json_of(&rlimit.typ());
        if let Some(first) = seen.insert(name.clone(), i) {
            return Err(SpecError::invalid_value(
                format!("process.rlimits[{i}].type"),
                name,
                format!("duplicate rlimit type (also at process.rlimits[{first}])"),
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
    fn args_must_not_be_empty() {
        let msg = refused(json!({"process": {"args": []}}), "process.args", "entry");
        assert_eq!(msg, "process.args: must contain at least one entry");
        check(json!({"process": {"args": ["/bin/true", "x"]}})).unwrap();
    }

    #[test]
    fn args_may_be_absent_only_in_parse_not_in_validation() {
        let mut doc = crate::validate::tests::base();
        doc["process"].as_object_mut().unwrap().remove("args");
        let spec: oci_spec::runtime::Spec = serde_json::from_value(doc).unwrap();
        let err = crate::validate(&spec, crate::Purpose::Create).unwrap_err();
        assert_eq!(err.field(), Some("process.args"));
    }

    #[test]
    fn args_must_not_contain_nul() {
        refused(
            json!({"process": {"args": ["sh", "a\u{0}b"]}}),
            "process.args[1]",
            r#""a\u0000b""#,
        );
    }

    #[test]
    fn cwd_must_be_absolute() {
        let msg = refused(
            json!({"process": {"cwd": "tmp"}}),
            "process.cwd",
            r#""tmp""#,
        );
        assert_eq!(msg, r#"process.cwd: must be an absolute path: "tmp""#);
        refused(json!({"process": {"cwd": ""}}), "process.cwd", r#""""#);
        check(json!({"process": {"cwd": "/var/lib"}})).unwrap();
    }

    #[test]
    fn env_entries_need_key_and_equals() {
        check(json!({"process": {"env": ["A=1", "B=", "C==x", "PATH=/bin:/usr/bin"]}})).unwrap();
        let msg = refused(
            json!({"process": {"env": ["A=1", "NOEQUALS"]}}),
            "process.env[1]",
            r#""NOEQUALS""#,
        );
        assert_eq!(
            msg,
            r#"process.env[1]: must have the form KEY=VALUE: "NOEQUALS""#
        );
        refused(
            json!({"process": {"env": ["=x"]}}),
            "process.env[0]",
            r#""=x""#,
        );
        refused(
            json!({"process": {"env": ["A=b\u{0}c"]}}),
            "process.env[0]",
            r#""A=b\u0000c""#,
        );
    }

    #[test]
    fn rlimit_types_must_be_unique() {
        check(json!({"process": {"rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
            {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}
        ]}}))
        .unwrap();
        let msg = refused(
            json!({"process": {"rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
                {"type": "RLIMIT_NOFILE", "hard": 10, "soft": 10}
            ]}}),
            "process.rlimits[2].type",
            r#""RLIMIT_NOFILE""#,
        );
        assert_eq!(
            msg,
            r#"process.rlimits[2].type: duplicate rlimit type (also at process.rlimits[0]): "RLIMIT_NOFILE""#
        );
    }

    #[test]
    fn oom_score_adj_range() {
        for ok in [-1000, 0, 500, 1000] {
            check(json!({"process": {"oomScoreAdj": ok}})).unwrap();
        }
        let msg = refused(
            json!({"process": {"oomScoreAdj": 1001}}),
            "process.oomScoreAdj",
            "1001",
        );
        assert_eq!(msg, "process.oomScoreAdj: must be within -1000..1000: 1001");
        refused(
            json!({"process": {"oomScoreAdj": -1001}}),
            "process.oomScoreAdj",
            "-1001",
        );
    }

    #[test]
    fn capabilities_and_umask_need_no_extra_checks() {
        check(json!({"process": {
            "user": {"uid": 0, "gid": 0, "umask": 18},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "ambient": ["CAP_CHOWN"]}
        }}))
        .unwrap();
    }
}
