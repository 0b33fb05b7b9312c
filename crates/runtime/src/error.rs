use thiserror::Error;

use crate::cgroups::CgroupError;
use crate::hooks::HookError;
use crate::id::IdError;
use crate::namespaces::NamespaceError;
use crate::process::channel::ChannelError;
use crate::process::spawn::SpawnError;
use crate::signal::SignalError;
use crate::state::StateError;

/// Why a lifecycle command failed. Each variant's message already says what failed
/// on which path; callers print it as one line.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Spec(#[from] rt_spec::SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The init reported a failure while setting the container up.
    #[error("container init: {0}")]
    Init(String),
    /// The process of `exec` failed before it could exec (the message says so).
    #[error("{0}")]
    Exec(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> Error {
        move |source| Error::Sys { op, source }
    }
}
