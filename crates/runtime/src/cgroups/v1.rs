//! What is particular to cgroup v1 hierarchies.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{io, CgroupError, FREEZE_WAIT};

/// A new cpuset cgroup starts with no cpus and mems; tasks cannot join it until
/// they are filled in, so copy the parent's.
pub fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let target = dir.join(file);
        let current = fs::read_to_string(&target).map_err(io("read", &target))?;
        if current.trim().is_empty() {
            let src = parent.join(file);
            let value = fs::read_to_string(&src).map_err(io("read", &src))?;
            fs::write(&target, value.trim()).map_err(io("write", &target))?;
        }
    }
    Ok(())
}

pub fn is_frozen(dir: &Path) -> bool {
    fs::read_to_string(dir.join("freezer.state"))
        .map(|s| s.trim() == "FROZEN")
        .unwrap_or(false)
}

/// Freeze or thaw and wait until the kernel says it is done (FREEZING is transient).
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let file = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + FREEZE_WAIT;
    // FREEZING means some task has not stopped yet; writing again retries it.
    loop {
        fs::write(&file, want).map_err(io("write", &file))?;
        let now = fs::read_to_string(&file).map_err(io("read", &file))?;
        if now.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Not left half frozen: a container that did not pause stays running.
    if frozen {
        let _ = fs::write(&file, "THAWED");
    }
    Err(CgroupError::Freezer {
        path: dir.to_path_buf(),
        state: if frozen { "frozen" } else { "thawed" },
        waited: FREEZE_WAIT,
    })
}
