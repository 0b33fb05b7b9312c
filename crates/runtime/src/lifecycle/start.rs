//! `start`: knock on the init's start socket; it execs the user's process, which
//! closes the connection. Then the poststart hooks.

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

use super::hook_state;
use crate::process::channel::{Channel, ChannelError, Msg};
use crate::state::{Access, Status, Store};
use crate::{hooks, id, Error};

pub fn start(store: &Store, container: &str) -> Result<(), Error> {
    start_inner(store, container, None)
}

/// `start`; with `NOTIFY_SOCKET`, waits for the container's READY and passes it on
/// with `MAINPID` = `main_pid` (the init's pid unless given: `run` names itself).
pub(crate) fn start_inner(
    store: &Store,
    container: &str,
    main_pid: Option<i32>,
) -> Result<(), Error> {
    id::validate(container)?;
    let dir = store.open(container, Access::Write)?;
    let state = dir.load()?;
    match state.status(&dir) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::Invalid(
                "cannot start a container that has stopped".into(),
            ))
        }
        s => {
            return Err(Error::Invalid(format!(
                "cannot start a container in the {s} state"
            )))
        }
    }
    // Listen before the process runs, so its first READY is not lost.
    let proxy = match crate::notify::host_socket() {
        Some(host) if dir.path.join(crate::notify::DIR).is_dir() => {
            Some(crate::notify::Proxy::bind(&dir, host)?)
        }
        _ => None,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(Error::sys("create socket"))?;
    let addr = UnixAddr::new(&dir.start_socket()).map_err(Error::sys("start socket address"))?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)
        .map_err(Error::sys("connect to the container init"))?;
    // From here on the container counts as running, whatever happens to this process.
    dir.remove_start_socket();
    let conn = Channel(fd);
    conn.send(&Msg::Start)?;
    match conn.recv() {
        Err(ChannelError::Closed) => {}
        Ok(Msg::Error(m)) => return Err(Error::Init(m)),
        Ok(other) => return Err(ChannelError::Unexpected(other).into()),
        Err(e) => return Err(e.into()),
    }
    if let Some(h) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
    {
        hooks::run_all_warn("poststart", &h, &hook_state(&state, "running"));
    }
    if let (Some(proxy), Some(pid)) = (proxy, state.pid) {
        // Other commands on this container need not wait for the process to be ready.
        drop(dir);
        if let Ok(init) = rt_sys::pidfd::open(nix::unistd::Pid::from_raw(pid)) {
            proxy.forward(&init, main_pid.unwrap_or(pid))?;
        }
    }
    Ok(())
}
