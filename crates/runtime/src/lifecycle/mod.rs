//! The commands of the container lifecycle, each a short sequence of calls into the
//! modules that own the concepts. `create` is the long one; `start`, `state`, `kill`
//! and `delete` never enter the container and stay cheap.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod pause;
mod query;
mod run;
mod start;
mod supervise;
mod update;

pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use events::events;
pub use exec::{exec, ExecFlags, ExecOptions, ExecProcess};
pub use kill::kill;
pub use pause::{pause, pids, resume};
pub use query::{list, state, ContainerState};
pub use run::{run, RunOptions};
pub use start::start;
pub use update::{memory, parse_bytes, update};

use crate::hooks::HookState;
use crate::state::State;

/// The state hooks see, from what rt recorded.
pub(crate) fn hook_state<'a>(s: &'a State, status: &'a str) -> HookState<'a> {
    HookState {
        oci_version: s.config.version(),
        id: &s.id,
        status,
        pid: s.pid,
        bundle: s.bundle.to_str().unwrap_or_default(),
        annotations: s.config.annotations().as_ref(),
    }
}
