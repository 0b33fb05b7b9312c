//! `delete`: stop whatever is left (with `--force`, or for a container that never
//! started), remove the cgroup, run the poststop hooks, drop the state.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::hook_state;
use crate::state::{Access, State, StateError, Status, Store};
use crate::{hooks, id, procstat, Error};

pub fn delete(store: &Store, container: &str, force: bool) -> Result<(), Error> {
    id::validate(container)?;
    let dir = match store.open(container, Access::Write) {
        Ok(d) => d,
        // As runc: --force makes a container that is not there already deleted
        // (podman cleans up after a failed create that way).
        Err(StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let state = match dir.load() {
        Ok(s) => s,
        // A create killed before it wrote anything: only the directory is left.
        Err(StateError::NotFound(_)) if force => {
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match state.status(&dir) {
        Status::Stopped => {}
        // A container that never started is deleted as runc does: callers clean up
        // failed starts with a plain delete.
        Status::Created | Status::Creating => stop(&state)?,
        s if force => {
            let _ = s;
            stop(&state)?
        }
        s => {
            return Err(Error::Invalid(format!(
                "cannot delete container {container} that is not stopped: {s}"
            )))
        }
    }
    state.cgroup.destroy()?;
    if state.host_mounts {
        crate::rootfs::unmount_host_mounts(&state.rootfs);
    }
    if let Some(h) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().clone())
    {
        hooks::run_all_warn("poststop", &h, &hook_state(&state, "stopped"));
    }
    dir.remove()?;
    Ok(())
}

/// SIGKILL everything in the container and wait until the init is gone.
fn stop(state: &State) -> Result<(), Error> {
    let _ = state.cgroup.signal_all(libc::SIGKILL);
    let (Some(pid), Some(start)) = (state.pid, state.start_time) else {
        return Ok(());
    };
    let Ok(pidfd) = rt_sys::pidfd::open(Pid::from_raw(pid)) else {
        return Ok(());
    };
    if procstat::read(pid).map(|s| s.start_time) != Some(start) {
        return Ok(());
    }
    let _ = rt_sys::pidfd::kill(pidfd.as_fd(), Signal::SIGKILL);
    // A pidfd polls readable once the process has exited.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => break,
            _ => continue,
        }
    }
    Ok(())
}
