//! The thin syscall layer of rt: every `unsafe` block of the project lives here.
//!
//! Each function wraps one kernel interface that `nix` does not cover (or covers
//! unsoundly for our use) and exposes a safe signature. Callers never see raw
//! pointers; file descriptors are `OwnedFd`/`BorrowedFd`.

pub mod bpf;
pub mod clone;
pub mod fd;
pub mod keyring;
pub mod mount;
pub mod pidfd;
pub mod rlimit;
pub mod sched;
pub mod seccomp;
pub mod signal;
pub mod tty;
pub mod uts;

pub use nix::Error as Errno;
pub type Result<T> = std::result::Result<T, Errno>;
