//! Loading and validating OCI runtime `config.json` files.
//!
//! Pure parsing and rule checking: nothing here makes a syscall, so every
//! check that needs the host (namespace files, rootfs existence, cgroups)
//! belongs to the runtime crate.
//!
//! Errors name the offending field as a config.json path
//! (`linux.namespaces[1].type`) and show the offending value as JSON.

#![forbid(unsafe_code)]

mod defaults;
mod error;
mod json;
mod load;
mod validate;
mod version;

#[cfg(test)]
mod testutil;

use std::path::Path;

pub use defaults::{default_spec, rootless_spec};
pub use error::SpecError;
pub use json::to_json;
pub use load::load;
pub use validate::{validate, Purpose};

/// The oci-spec types, so callers need not depend on oci-spec themselves
/// and cannot end up with a second, incompatible version of it.
pub use oci_spec::runtime;
pub use oci_spec::runtime::Spec;

/// The file name the runtime spec fixes for a bundle's configuration.
pub const CONFIG_FILE: &str = "config.json";

/// Parses config.json text (as [`load`] does a file's) without judging its
/// content; errors name the file `config.json`. For fuzzing and callers that
/// hold the text already.
pub fn parse(bytes: &[u8]) -> Result<Spec, SpecError> {
    load::parse(bytes, Path::new(CONFIG_FILE))
}

/// Loads `bundle/config.json` and validates it for `create`/`run`.
pub fn load_bundle(bundle: &Path) -> Result<Spec, SpecError> {
    let spec = load(&bundle.join(CONFIG_FILE))?;
    validate(&spec, Purpose::Create)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use testutil::TempDir;

    #[test]
    fn parse_reads_text() {
        let text = to_json(&default_spec(false));
        assert_eq!(parse(text.as_bytes()).unwrap(), default_spec(false));
        let err = parse(b"[]").unwrap_err();
        assert!(err.to_string().starts_with("config.json"), "{err}");
    }

    #[test]
    fn load_bundle_parses_and_validates() {
        let dir = TempDir::new();
        std::fs::write(dir.path().join(CONFIG_FILE), to_json(&default_spec(false))).unwrap();
        let spec = load_bundle(dir.path()).unwrap();
        assert_eq!(spec, default_spec(false));
    }

    #[test]
    fn load_bundle_refuses_invalid_config() {
        let dir = TempDir::new();
        let text = to_json(&default_spec(false)).replace(r#""cwd": "/""#, r#""cwd": "home""#);
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        let err = load_bundle(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"process.cwd: must be an absolute path: "home""#
        );
    }

    #[test]
    fn load_bundle_without_config_names_the_file() {
        let dir = TempDir::new();
        let err = load_bundle(dir.path()).unwrap_err();
        let path = dir.path().join(CONFIG_FILE);
        assert_eq!(
            err.to_string(),
            format!(
                "open {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    /// Configs shaped like what containerd (CRI) and rootless podman send;
    /// none of the rules may refuse them.
    #[test]
    fn real_world_configs_are_accepted() {
        for name in ["containerd-pod-container.json", "podman-rootless.json"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata")
                .join(name);
            let spec = load(&path).unwrap_or_else(|e| panic!("{e}"));
            validate(&spec, Purpose::Create).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn errors_are_one_line() {
        let dir = TempDir::new();
        std::fs::write(dir.path().join(CONFIG_FILE), "{\n\"ociVersion\": 1\n}").unwrap();
        let err = load_bundle(dir.path()).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.ends_with("ociVersion: invalid type: integer `1`, expected a string"),
            "{err}"
        );
    }
}
