//! The library's error type: each variant says what failed, on which path
//! or at which Dockerfile line, in one line.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed or unsupported Dockerfile line: `FILE:LINE: reason`.
    #[error("{file}:{line}: {reason}")]
    Dockerfile {
        file: String,
        line: usize,
        reason: String,
    },
    /// From the image crate (layouts, blobs, layers, the layer store).
    #[error(transparent)]
    Image(#[from] rt_image::Error),
    /// A system call failed; `context` names the operation and path.
    #[error("{context}: {err}")]
    Io { context: String, err: io::Error },
    /// A path or mount source would leave the build context or the rootfs.
    #[error("{0}")]
    Unsafe(String),
    /// A bad argument or reference from the caller.
    #[error("{0}")]
    Usage(String),
    /// A RUN step's command exited unsuccessfully.
    #[error("step {step}: {instruction}: {command:?} exited with {status}")]
    StepFailed {
        step: String,
        instruction: String,
        command: Vec<String>,
        status: String,
    },
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches "what on which path" to an I/O or nix error.
#[allow(dead_code)]
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
