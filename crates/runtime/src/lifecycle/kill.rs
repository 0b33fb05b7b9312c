//! `kill`: signal the init through a pidfd opened and checked against the recorded
//! start time, so a recycled pid is never hit; `--all` signals the whole cgroup.

use std::os::fd::AsFd;

use nix::unistd::Pid;

use crate::state::{Access, Status, Store};
use crate::{id, procstat, signal, Error};

pub fn kill(store: &Store, container: &str, sig: &str, all: bool) -> Result<(), Error> {
    id::validate(container)?;
    let signo = signal::parse(sig)?;
    let dir = store.open(container, Access::Read)?;
    let state = dir.load()?;
    let status = state.status(&dir);
    if matches!(status, Status::Stopped) {
        return Err(Error::Invalid("container not running".into()));
    }
    if all {
        state.cgroup.signal_all(signo)?;
    }
    let (Some(pid), Some(start)) = (state.pid, state.start_time) else {
        return Err(Error::Invalid("container not running".into()));
    };
    let pidfd = match rt_sys::pidfd::open(Pid::from_raw(pid)) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) if all => return Ok(()),
        Err(_) => return Err(Error::Invalid("container not running".into())),
    };
    // The pidfd pins the process; checking its start time now proves it is ours.
    match procstat::read(pid) {
        Some(st) if st.start_time == start => {}
        _ if all => return Ok(()),
        _ => return Err(Error::Invalid("container not running".into())),
    }
    match rt_sys::pidfd::send_signal(pidfd.as_fd(), signo) {
        Ok(()) => {
            // A frozen v1 task does not die until thawed: SIGKILL means stop now.
            if signo == libc::SIGKILL && status == Status::Paused {
                state.cgroup.set_frozen(false)?;
            }
            Ok(())
        }
        Err(nix::errno::Errno::ESRCH) if all => Ok(()),
        Err(e) => Err(Error::Sys {
            op: "send signal to the container init",
            source: e,
        }),
    }
}
