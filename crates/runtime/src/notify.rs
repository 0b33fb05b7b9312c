//! The sd_notify proxy (`NOTIFY_SOCKET`), as runc does it: `create` bind-mounts a
//! directory of the container's state dir at `/run/notify` and points the process's
//! `NOTIFY_SOCKET` there; `start` listens on `notify.sock` in it, waits for the
//! container's `READY=` and passes it on to the caller's socket with `MAINPID`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Mount, Spec};

use crate::state::ContainerDir;
use crate::Error;

pub const DIR: &str = "notify";
const SOCKET: &str = "notify.sock";
const IN_CONTAINER: &str = "/run/notify";

/// The caller's notify socket, if it asked for one.
pub fn host_socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// Give the container the proxy's directory and tell its process where it is.
pub fn setup_spec(spec: &mut Spec, state_dir: &Path) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let mut m = Mount::default();
    m.set_destination(IN_CONTAINER.into());
    m.set_source(Some(state_dir.join(DIR)));
    m.set_typ(Some("bind".into()));
    m.set_options(Some(
        ["bind", "nosuid", "noexec", "nodev", "ro"]
            .map(String::from)
            .to_vec(),
    ));
    mounts.push(m);
    spec.set_mounts(Some(mounts));
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER}/{SOCKET}"));
        p.set_env(Some(env));
    }
}

/// The listening end, bound by `start` before the process runs.
pub struct Proxy {
    sock: UnixDatagram,
    host: PathBuf,
}

impl Proxy {
    pub fn bind(dir: &ContainerDir, host: PathBuf) -> Result<Self, Error> {
        let path = dir.short_path(&format!("{DIR}/{SOCKET}"));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).map_err(Error::io("bind notify socket", &path))?;
        // The container's user, whoever it is, must be able to send.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .map_err(Error::io("chmod notify socket", &path))?;
        Ok(Proxy { sock, host })
    }

    /// Wait for `READY=` from the container (or its init's exit), then tell the host.
    pub fn forward(&self, init: &OwnedFd, main_pid: i32) -> Result<(), Error> {
        let mut buf = [0u8; 4096];
        let ready = loop {
            let mut fds = [
                PollFd::new(self.sock.as_fd(), PollFlags::POLLIN),
                PollFd::new(init.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(Error::Sys {
                        op: "wait for READY",
                        source: e,
                    })
                }
                Ok(_) => {}
            }
            if fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                let n = self
                    .sock
                    .recv(&mut buf)
                    .map_err(Error::io("read notify socket", "notify.sock"))?;
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Some(line) = msg.lines().find(|l| l.starts_with("READY=")) {
                    break line.to_string();
                }
                continue;
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                // The container died before it was ready: nothing to pass on.
                return Ok(());
            }
        };
        let client = UnixDatagram::unbound().map_err(Error::io("socket", &self.host))?;
        client
            .connect(&self.host)
            .map_err(Error::io("connect to NOTIFY_SOCKET", &self.host))?;
        client
            .send(format!("{ready}\nMAINPID={main_pid}\n").as_bytes())
            .map_err(Error::io("write NOTIFY_SOCKET", &self.host))?;
        barrier(&client);
        Ok(())
    }
}

/// sd_notify's BARRIER=1: hand systemd a pipe and wait until it closes it, so our
/// messages are processed before we go; a manager without barriers times out.
fn barrier(client: &UnixDatagram) {
    let Ok((r, w)) = nix::unistd::pipe() else {
        return;
    };
    let fds = [w.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"BARRIER=1")];
    if nix::sys::socket::sendmsg::<()>(
        client.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .is_err()
    {
        return;
    }
    drop(w);
    let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(Duration::from_secs(30)).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, timeout);
}
