use std::io;
use std::path::PathBuf;

/// Why a config could not be loaded or was refused.
///
/// Every variant displays as a single line without a trailing newline, so the
/// CLI can print it after a prefix the way runc does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be opened or read, e.g.
    /// `open /b/config.json: No such file or directory (os error 2)`.
    ///
    /// `error` is deliberately not exposed as `source()`: its text is already
    /// part of this message and error-chain printers would repeat it.
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },

    /// The file is not JSON at all, e.g.
    /// `/b/config.json: expected value at line 1 column 1`.
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },

    /// The file is JSON but does not fit the OCI schema, e.g.
    /// ``/b/config.json: process.capabilities.bounding[0]: unknown capability `CAP_FOO` ``.
    /// `field` is empty when the whole document is at fault.
    #[error("{}: {}{message}", path.display(), field_prefix(field))]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },

    /// The config parsed but breaks a rule of the runtime spec (or one runc
    /// enforces), e.g. `process.cwd: must be an absolute path: "tmp"`.
    /// `value` is the offending value as JSON text, when there is one.
    #[error("{field}: {reason}{}", value_suffix(value))]
    Invalid {
        field: String,
        value: Option<String>,
        reason: String,
    },
}

impl SpecError {
    /// The JSON path of the offending field (`process.env[2]`), if the error
    /// is about a field rather than the file as a whole.
    pub fn field(&self) -> Option<&str> {
        match self {
            SpecError::Parse { field, .. } | SpecError::Invalid { field, .. }
                if !field.is_empty() =>
            {
                Some(field)
            }
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            value: None,
            reason: reason.into(),
        }
    }

    /// `value` must already be JSON text (see [`json_str`]) so that strings
    /// are quoted and numbers are not, as they appear in config.json.
    pub(crate) fn invalid_value(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        SpecError::Invalid {
            field: field.into(),
            value: Some(value.into()),
            reason: reason.into(),
        }
    }
}

/// A string as it would be written in config.json, quotes and escapes
/// included, so empty strings and odd characters stay visible in messages.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The config.json spelling of an oci-spec enum value (`"RLIMIT_NOFILE"`,
/// `"network"`), which differs from its Rust and Display spellings.
pub(crate) fn json_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".to_owned())
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

fn value_suffix(value: &Option<String>) -> String {
    match value {
        Some(v) => format!(": {v}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_names_operation_and_path() {
        let err = SpecError::Io {
            op: "open",
            path: "/b/config.json".into(),
            error: io::Error::from_raw_os_error(2),
        };
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(
            err.to_string(),
            "open /b/config.json: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn parse_error_without_field_has_no_empty_segment() {
        let err = SpecError::Parse {
            path: "config.json".into(),
            field: String::new(),
            message: "invalid type: sequence, expected struct Spec".into(),
        };
        assert_eq!(
            err.to_string(),
            "config.json: invalid type: sequence, expected struct Spec"
        );
        assert_eq!(err.field(), None);
    }

    #[test]
    fn invalid_error_shows_field_reason_and_value() {
        let err =
            SpecError::invalid_value("process.cwd", json_str("tmp"), "must be an absolute path");
        assert_eq!(
            err.to_string(),
            r#"process.cwd: must be an absolute path: "tmp""#
        );
        assert_eq!(err.field(), Some("process.cwd"));

        let err = SpecError::invalid("process", "required to create a container");
        assert_eq!(err.to_string(), "process: required to create a container");
    }

    #[test]
    fn json_str_escapes() {
        assert_eq!(json_str(""), r#""""#);
        assert_eq!(json_str("a\0b"), r#""a\u0000b""#);
    }
}
