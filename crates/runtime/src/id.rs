//! Container IDs: they name a directory under the state root, so they are checked
//! before anything touches the disk.

use thiserror::Error;

/// runc's limit; longer names cannot be a single path component anyway.
const MAX_LEN: usize = 1024;

#[derive(Debug, Error)]
pub enum IdError {
    #[error("container id must not be empty")]
    Empty,
    #[error("container id is {0} bytes long, the limit is {MAX_LEN}")]
    TooLong(usize),
    #[error("invalid container id {0:?}: only letters, digits and _ + - . are allowed, and it must not be . or ..")]
    Invalid(String),
}

/// Accept what runc accepts: `^[\w+-\.]+$`, never `.` or `..`.
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_LEN {
        return Err(IdError::TooLong(id.len()));
    }
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if !ok || id == "." || id == ".." {
        return Err(IdError::Invalid(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "my-container_1.2+x", &"x".repeat(1024)] {
            validate(id).unwrap();
        }
    }

    #[test]
    fn refuses_paths_controls_and_long_ids() {
        for id in [
            "", ".", "..", "a/b", "../x", "a\nb", "a\0b", "tab\t", "sp ace", "é",
        ] {
            assert!(validate(id).is_err(), "{id:?} accepted");
        }
        assert!(matches!(
            validate(&"x".repeat(1025)),
            Err(IdError::TooLong(1025))
        ));
    }
}
