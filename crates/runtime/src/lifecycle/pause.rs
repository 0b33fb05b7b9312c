//! `pause` and `resume`: freeze and thaw every process of the container through its
//! cgroup (the v1 freezer, or v2's `cgroup.freeze`).

use crate::state::{Access, Status, Store};
use crate::{id, Error};

pub fn pause(store: &Store, container: &str) -> Result<(), Error> {
    id::validate(container)?;
    let dir = store.open(container, Access::Write)?;
    let state = dir.load()?;
    match state.status(&dir) {
        Status::Running | Status::Created => Ok(state.cgroup.set_frozen(true)?),
        _ => Err(Error::Invalid("container not running".into())),
    }
}

pub fn resume(store: &Store, container: &str) -> Result<(), Error> {
    id::validate(container)?;
    let dir = store.open(container, Access::Write)?;
    let state = dir.load()?;
    match state.status(&dir) {
        Status::Paused => Ok(state.cgroup.set_frozen(false)?),
        _ => Err(Error::Invalid("container not paused".into())),
    }
}

/// Host pids of every process in the container.
pub fn pids(store: &Store, container: &str) -> Result<Vec<i32>, Error> {
    id::validate(container)?;
    let dir = store.open(container, Access::Read)?;
    let state = dir.load()?;
    if state.status(&dir) == Status::Stopped {
        return Ok(vec![]);
    }
    let mut pids = state.cgroup.pids()?;
    if pids.is_empty() {
        // No cgroup of its own (rootless): at least the init.
        pids.extend(state.pid);
    }
    Ok(pids)
}
