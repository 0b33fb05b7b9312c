use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RootfsError {
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("{op} {path}: {source}")]
    Resolve {
        op: &'static str,
        path: PathBuf,
        source: pathrs::error::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
}

impl RootfsError {
    pub fn sys(op: &'static str, path: impl AsRef<Path>, source: nix::Error) -> Self {
        RootfsError::Sys {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn resolve(op: &'static str, path: impl AsRef<Path>, source: pathrs::error::Error) -> Self {
        RootfsError::Resolve {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn io(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        RootfsError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// True when a pathrs error says the path does not exist.
pub fn is_not_found(e: &pathrs::error::Error) -> bool {
    matches!(
        e.kind(),
        pathrs::error::ErrorKind::OsError(Some(libc::ENOENT))
    )
}
