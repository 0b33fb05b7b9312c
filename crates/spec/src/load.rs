use std::fs::File;
use std::io::Read;
use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::Value;

use crate::error::SpecError;

/// oci-spec lists every variant of an enum in its "unknown variant" message
/// (41 capabilities, 16 rlimits); beyond this length the list is cut.
const MAX_MESSAGE: usize = 100;

/// Reads and parses a config.json without judging its content.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let io_err = |op| {
        move |error| SpecError::Io {
            op,
            path: path.to_path_buf(),
            error,
        }
    };
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(io_err("open"))?
        .read_to_end(&mut bytes)
        .map_err(io_err("read"))?;
    parse(&bytes, path)
}

/// Parses config.json text; `origin` only labels error messages.
pub(crate) fn parse(bytes: &[u8], origin: &Path) -> Result<Spec, SpecError> {
    // Two stages: syntax errors need serde_json's line/column, schema errors
    // need serde_path_to_error's field path (line/column are noise there).
    let raw: Value = serde_json::from_slice(bytes).map_err(|e| SpecError::Syntax {
        path: origin.to_path_buf(),
        message: e.to_string(),
    })?;
    // serde would also accept a top-level array, filling Spec's fields by
    // position; config.json is an object by definition.
    if !raw.is_object() {
        return Err(SpecError::Parse {
            path: origin.to_path_buf(),
            field: String::new(),
            message: format!("expected a JSON object, found {}", kind(&raw)),
        });
    }
    let spec: Spec = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let field = field_path(e.path());
        let message = e.into_inner().to_string();
        SpecError::Parse {
            path: origin.to_path_buf(),
            message: reword_capability(&field, &message).unwrap_or_else(|| shorten(message)),
            field,
        }
    })?;
    check_device_numbers(&raw, origin)?;
    Ok(spec)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field_path(path: &serde_path_to_error::Path) -> String {
    // serde_path_to_error prints the document root as ".".
    match path.to_string() {
        root if root == "." => String::new(),
        p => p,
    }
}

/// oci-spec's capability parser reports "no variant for CAP_FOO (converted
/// to FOO)", which reads like an internal error to someone editing
/// config.json.
fn reword_capability(field: &str, message: &str) -> Option<String> {
    if !field.starts_with("process.capabilities.") {
        return None;
    }
    let name = message
        .strip_prefix("no variant for ")?
        .rsplit_once(" (converted to ")?
        .0;
    Some(format!("unknown capability `{name}`"))
}

/// Cuts an "expected one of `A`, `B`, ..." list so the message stays one
/// readable line; the offending value, which comes first, is always kept.
fn shorten(message: String) -> String {
    const MARKER: &str = ", expected one of ";
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let Some(at) = message.find(MARKER) else {
        return message;
    };
    let (head, list) = message.split_at(at + MARKER.len());
    let mut out = head.to_owned();
    for (i, item) in list.split(", ").enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        if out.len() + sep.len() + item.len() + ", ...".len() > MAX_MESSAGE {
            out.push_str(sep);
            out.push_str("...");
            break;
        }
        out.push_str(sep);
        out.push_str(item);
    }
    out
}

/// oci-spec defaults a missing device `major`/`minor` to 0, which is a real
/// device number, so absence is only visible in the raw document. The spec
/// requires both unless the type is `p`.
fn check_device_numbers(raw: &Value, origin: &Path) -> Result<(), SpecError> {
    let Some(devices) = raw.pointer("/linux/devices").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, device) in devices.iter().enumerate() {
        let typ = device.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(typ, "c" | "b" | "u") {
            continue;
        }
        for key in ["major", "minor"] {
            if device.get(key).is_none() {
                return Err(SpecError::Parse {
                    path: origin.to_path_buf(),
                    field: format!("linux.devices[{i}]"),
                    message: format!("missing field `{key}` (required for type \"{typ}\")"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn parse_str(json: &str) -> Result<Spec, SpecError> {
        parse(json.as_bytes(), Path::new("config.json"))
    }

    const MINIMAL: &str = r#"{
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"}
    }"#;

    #[test]
    fn missing_file_names_path() {
        let dir = TempDir::new();
        let path = dir.path().join("config.json");
        let err = load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "open {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn directory_is_a_read_error() {
        let dir = TempDir::new();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("read {}: ", dir.path().display())),
            "{err}"
        );
    }

    #[test]
    fn loads_file() {
        let dir = TempDir::new();
        let path = dir.path().join("config.json");
        std::fs::write(&path, MINIMAL).unwrap();
        let spec = load(&path).unwrap();
        assert_eq!(spec.version(), "1.0.2");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse_str("{\n  \"ociVersion\": \n}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.json: expected value at line 3 column 1"
        );
    }

    #[test]
    fn unknown_capability_names_field() {
        let json = MINIMAL.replace(
            r#""cwd": "/""#,
            r#""cwd": "/", "capabilities": {"bounding": ["CAP_KILL", "CAP_FOO"]}"#,
        );
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.field(), Some("process.capabilities.bounding[1]"));
        assert_eq!(
            err.to_string(),
            "config.json: process.capabilities.bounding[1]: unknown capability `CAP_FOO`"
        );
    }

    #[test]
    fn unknown_rlimit_names_field_and_is_short() {
        let json = MINIMAL.replace(
            r#""cwd": "/""#,
            r#""cwd": "/", "rlimits": [{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]"#,
        );
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.field(), Some("process.rlimits[0].type"));
        let msg = err.to_string();
        assert!(
            msg.starts_with("config.json: process.rlimits[0].type: unknown variant `RLIMIT_FOO`, expected one of `RLIMIT_CPU`"),
            "{msg}"
        );
        assert!(msg.ends_with(", ..."), "{msg}");
        assert!(!msg.contains("RLIMIT_RTTIME"), "{msg}");
    }

    #[test]
    fn unknown_namespace_type_names_field() {
        let json = MINIMAL.replace(
            r#""ociVersion": "1.0.2","#,
            r#""ociVersion": "1.0.2", "linux": {"namespaces": [{"type": "pid"}, {"type": "bogus"}]},"#,
        );
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.field(), Some("linux.namespaces[1].type"));
    }

    #[test]
    fn wrong_type_names_field() {
        let json = MINIMAL.replace(r#""args": ["sh"]"#, r#""args": "sh""#);
        let err = parse_str(&json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.json: process.args: invalid type: string \"sh\", expected a sequence"
        );
    }

    #[test]
    fn missing_required_field_names_parent() {
        let json = MINIMAL.replace(r#", "cwd": "/""#, "");
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.to_string(), "config.json: process: missing field `cwd`");
    }

    #[test]
    fn whole_document_of_wrong_type() {
        let err = parse_str("[]").unwrap_err();
        assert_eq!(err.field(), None);
        assert_eq!(
            err.to_string(),
            "config.json: expected a JSON object, found an array"
        );
        let err = parse_str("null").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.json: expected a JSON object, found null"
        );
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let json = r#"{
            "ociVersion": "1.0.2",
            "someFutureField": {"x": [1, 2]},
            "root": {"path": "rootfs", "whatever": true},
            "process": {"user": {"uid": 0, "gid": 0, "extra": 1}, "args": ["sh"], "cwd": "/", "newThing": "x"},
            "linux": {"namespaces": [{"type": "pid", "flags": 3}], "futureLinux": null},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "shiny": []}]
        }"#;
        let spec = parse_str(json).unwrap();
        crate::validate(&spec, crate::Purpose::Create).unwrap();
    }

    #[test]
    fn device_numbers_required_unless_fifo() {
        let with = |dev: &str| {
            MINIMAL.replace(
                r#""ociVersion": "1.0.2","#,
                &format!(r#""ociVersion": "1.0.2", "linux": {{"devices": [{dev}]}},"#),
            )
        };
        parse_str(&with(
            r#"{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}"#,
        ))
        .unwrap();
        parse_str(&with(r#"{"path": "/dev/p", "type": "p"}"#)).unwrap();

        let err =
            parse_str(&with(r#"{"path": "/dev/fuse", "type": "c", "minor": 229}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"config.json: linux.devices[0]: missing field `major` (required for type "c")"#
        );
        let err = parse_str(&with(r#"{"path": "/dev/sda", "type": "b", "major": 8}"#)).unwrap_err();
        assert_eq!(err.field(), Some("linux.devices[0]"));
    }

    #[test]
    fn shorten_keeps_short_messages() {
        let m = "unknown variant `x`, expected one of `a`, `b`".to_owned();
        assert_eq!(shorten(m.clone()), m);
        let long = format!("{} {}", "x".repeat(120), "no list here");
        assert_eq!(shorten(long.clone()), long);
    }

    #[test]
    fn shorten_cuts_long_lists() {
        let list: Vec<String> = (0..40).map(|i| format!("`VARIANT_{i}`")).collect();
        let m = format!(
            "unknown variant `NOPE`, expected one of {}",
            list.join(", ")
        );
        let s = shorten(m);
        assert!(s.len() <= MAX_MESSAGE, "{s}");
        assert!(s.starts_with("unknown variant `NOPE`, expected one of `VARIANT_0`, "));
        assert!(s.ends_with(", ..."));
    }
}
