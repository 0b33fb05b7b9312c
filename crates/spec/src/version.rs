//! `ociVersion`: SemVer 2.0.0, and a major version this runtime implements.

use crate::error::{json_str, SpecError};

/// The runtime spec promises compatibility within a major version only.
const SUPPORTED_MAJOR: u64 = 1;

pub(crate) fn check(version: &str) -> Result<(), SpecError> {
    let Some(major) = semver_major(version) else {
        return Err(SpecError::invalid_value(
            "ociVersion",
            json_str(version),
            "must be a SemVer 2.0.0 version",
        ));
    };
    if major != SUPPORTED_MAJOR {
        return Err(SpecError::invalid_value(
            "ociVersion",
            json_str(version),
            format!("unsupported major version (only {SUPPORTED_MAJOR}.x is supported)"),
        ));
    }
    Ok(())
}

/// Returns the major version if `v` follows the semver.org 2.0.0 grammar.
/// Hand-written because the grammar is tiny and a dependency is not worth it.
fn semver_major(v: &str) -> Option<u64> {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    // The first '-' starts the pre-release; later ones belong to it.
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };

    let parts: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return None;
    };
    if ![major, minor, patch]
        .iter()
        .all(|n| is_numeric_identifier(n))
    {
        return None;
    }
    if let Some(pre) = pre {
        let ok = pre.split('.').all(|id| {
            is_alphanumeric_identifier(id)
                && (!id.bytes().all(|b| b.is_ascii_digit()) || is_numeric_identifier(id))
        });
        if !ok {
            return None;
        }
    }
    if let Some(build) = build {
        if !build.split('.').all(is_alphanumeric_identifier) {
            return None;
        }
    }
    major.parse().ok()
}

/// Digits only, no leading zero (except "0" itself).
fn is_numeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn is_alphanumeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_1_x_versions() {
        for v in [
            "1.0.0",
            "1.0.2-dev",
            "1.2.1",
            "1.1.0-rc.1",
            "1.0.0-alpha-1.x.7",
            "1.0.0+build.5",
            "1.0.0-rc.1+sha.abc-def",
            "1.10.100",
        ] {
            check(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
    }

    #[test]
    fn refuses_other_majors() {
        let err = check("2.0.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"ociVersion: unsupported major version (only 1.x is supported): "2.0.0""#
        );
        assert!(check("0.5.0-dev").is_err());
    }

    #[test]
    fn refuses_non_semver() {
        for v in [
            "",
            "1.0",
            "1",
            "abc",
            "1.0.0.0",
            "v1.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0-a..b",
            "1.0.0+",
            "1.0.0+a_b",
            " 1.0.0",
            "1.0.x",
        ] {
            let err = check(v).expect_err(v);
            assert_eq!(
                err.to_string(),
                format!(
                    "ociVersion: must be a SemVer 2.0.0 version: {}",
                    json_str(v)
                )
            );
        }
    }

    #[test]
    fn build_metadata_may_have_leading_zeros() {
        check("1.0.0+001").unwrap();
    }
}
