//! rt's runtime library: Linux process setup and the container lifecycle.
//!
//! Reading order: `lifecycle` (the commands) → `process` (the init and how it is
//! started) → one module per kernel concept (`namespaces`, `rootfs`, `cgroups`,
//! `capabilities`, `rlimits`, `user`, `sysctl`, `tty`, `hooks`) → `state`.

pub mod capabilities;
pub mod cgroups;
mod error;
pub mod exeseal;
pub mod hooks;
pub mod id;
pub mod lifecycle;
pub mod lsm;
pub mod namespaces;
pub mod notify;
pub mod process;
pub mod procstat;
pub mod rlimits;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod signal;
pub mod state;
pub mod sysctl;
pub mod tty;
pub mod user;

pub use error::Error;
pub use state::{Status, Store};

/// The runtime-spec version rt implements and reports in `state`.
pub const OCI_VERSION: &str = "1.2.1";
