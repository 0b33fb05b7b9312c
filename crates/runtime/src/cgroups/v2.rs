//! What is particular to the cgroup v2 (unified) hierarchy.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{io, CgroupError, FREEZE_WAIT};

pub fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn events_field(dir: &Path, key: &str) -> Option<String> {
    let events = fs::read_to_string(dir.join("cgroup.events")).ok()?;
    events.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|v| v.strip_prefix(' '))
            .map(str::to_string)
    })
}

pub fn is_frozen(dir: &Path) -> bool {
    events_field(dir, "frozen").as_deref() == Some("1")
}

/// Freeze or thaw, then wait for `cgroup.events` to confirm. A freeze that does not
/// take is undone: the container must not be left half frozen and called running.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.freeze");
    fs::write(&file, if frozen { "1" } else { "0" }).map_err(io("write", &file))?;
    let deadline = Instant::now() + FREEZE_WAIT;
    while is_frozen(dir) != frozen && Instant::now() < deadline {
        wait_event(dir, deadline);
    }
    if is_frozen(dir) == frozen {
        return Ok(());
    }
    if frozen {
        let _ = fs::write(&file, "0");
    }
    Err(CgroupError::Freezer {
        path: dir.to_path_buf(),
        state: if frozen { "frozen" } else { "thawed" },
        waited: FREEZE_WAIT,
    })
}

/// SIGKILL every process in one write; false when the kernel predates `cgroup.kill`.
pub fn kill(dir: &Path) -> Result<bool, CgroupError> {
    let file = dir.join("cgroup.kill");
    match fs::write(&file, "1") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("write", &file)(e)),
    }
}

/// Block until `populated 0` shows in `cgroup.events` or the deadline passes.
pub fn wait_unpopulated(dir: &Path, deadline: Instant) {
    while events_field(dir, "populated").as_deref() == Some("1") && Instant::now() < deadline {
        wait_event(dir, deadline);
    }
}

/// `cgroup.events` signals changes as POLLPRI on an open descriptor.
fn wait_event(dir: &Path, deadline: Instant) {
    let Ok(f) = fs::File::open(dir.join("cgroup.events")) else {
        return;
    };
    let _ = std::io::Read::read(&mut &f, &mut [0u8; 256]);
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .min(100) as u16;
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
    let _ = poll(&mut fds, PollTimeout::from(left));
}
