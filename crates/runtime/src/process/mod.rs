//! The container's init process: how the parent starts it and talks to it
//! (`channel`, `spawn`) and what it does until it becomes the user's process (`init`).

pub mod channel;
pub mod exec;
pub mod finalize;
pub mod init;
pub mod spawn;

pub use spawn::{spawn, SpawnArgs, Spawned};
