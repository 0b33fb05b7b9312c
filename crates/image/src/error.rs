//! One error type for the crate: every variant says what failed on which
//! path, blob or entry, in one line.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or read failed; `context` names the operation and path.
    // The io::Error is shown, not chained as a source: printing the chain
    // (anyhow's {:#}) would repeat it.
    #[error("{context}: {err}")]
    Io { context: String, err: io::Error },
    /// The image is malformed: bad JSON, a missing blob, an unknown media type.
    #[error("{0}")]
    Image(String),
    /// Content does not match its descriptor or the config's diff_id.
    #[error("{0}")]
    Verify(String),
    /// A layer tried to reach outside the root filesystem.
    #[error("{0}")]
    Unsafe(String),
    /// A bad argument from the caller (source reference, platform, bundle).
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches "what on which path" to an I/O or nix error.
pub(crate) trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|err| Error::Io {
            context: what().into(),
            err,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|errno| Error::Io {
            context: what().into(),
            err: io::Error::from(errno),
        })
    }
}

impl Error {
    /// The errno behind an I/O failure, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }
}
