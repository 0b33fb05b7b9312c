//! `process.terminal`: a pty from the container's own devpts, the master sent to the
//! caller's `--console-socket`, the slave as stdio and `/dev/console`.

use std::fs;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::fstat;
use pathrs::flags::OpenFlags;
use pathrs::Root;
use thiserror::Error;

use crate::rootfs::fd_path;

#[derive(Debug, Error)]
pub enum TtyError {
    #[error("{op} {path}: {source}")]
    Resolve {
        op: &'static str,
        path: &'static str,
        source: pathrs::error::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("{0} is not the devpts ptmx device (5:2)")]
    NotPtmx(&'static str),
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> TtyError {
    move |source| TtyError::Sys { op, source }
}

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a pty in the container's devpts instance (mounted at /dev/pts).
pub fn open(root: &Root) -> Result<Pty, TtyError> {
    const PTMX: &str = "/dev/pts/ptmx";
    let h = root
        .resolve_nofollow(PTMX)
        .map_err(|source| TtyError::Resolve {
            op: "resolve",
            path: PTMX,
            source,
        })?;
    let st = fstat(h.as_fd()).map_err(sys("stat /dev/pts/ptmx"))?;
    let dev = st.st_rdev;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || libc::major(dev) != 5 || libc::minor(dev) != 2
    {
        return Err(TtyError::NotPtmx(PTMX));
    }
    let master: OwnedFd = h
        .reopen(OpenFlags::O_RDWR | OpenFlags::O_NOCTTY | OpenFlags::O_CLOEXEC)
        .map_err(|source| TtyError::Resolve {
            op: "open",
            path: PTMX,
            source,
        })?
        .into();
    rt_sys::tty::unlock_pty(master.as_fd()).map_err(sys("unlock pty"))?;
    let slave = rt_sys::tty::open_peer(
        master.as_fd(),
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
    )
    .map_err(sys("open pty peer"))?;
    Ok(Pty { master, slave })
}

/// Bind the pty slave over `/dev/console`, replacing whatever the image put there.
pub fn mount_console(root: &Root, slave: &OwnedFd) -> Result<(), TtyError> {
    const CONSOLE: &str = "/dev/console";
    match root.resolve_nofollow(CONSOLE) {
        Ok(h) => {
            let st = fstat(h.as_fd()).map_err(sys("stat /dev/console"))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                // A symlink or device planted by the image must not become the target.
                root.remove_file(CONSOLE)
                    .map_err(|source| TtyError::Resolve {
                        op: "remove",
                        path: CONSOLE,
                        source,
                    })?;
                create_console(root)?;
            }
        }
        Err(_) => create_console(root)?,
    }
    let target = root
        .resolve_nofollow(CONSOLE)
        .map_err(|source| TtyError::Resolve {
            op: "resolve",
            path: CONSOLE,
            source,
        })?;
    mount(
        Some(fd_path(slave).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys("bind pty over /dev/console"))
}

fn create_console(root: &Root) -> Result<(), TtyError> {
    root.create_file(
        "/dev/console",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        &fs::Permissions::from_mode(0o666),
    )
    .map(drop)
    .map_err(|source| TtyError::Resolve {
        op: "create",
        path: "/dev/console",
        source,
    })
}

/// Hand the master to the caller over its console socket (SCM_RIGHTS).
pub fn send_master(socket: &UnixStream, master: &OwnedFd) -> Result<(), TtyError> {
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(sys("send pty master to console socket"))
}

/// Make the slave the controlling terminal and stdin, stdout and stderr.
pub fn become_stdio(slave: &OwnedFd) -> Result<(), TtyError> {
    rt_sys::tty::set_controlling_terminal(slave.as_fd())
        .map_err(sys("set controlling terminal"))?;
    nix::unistd::dup2_stdin(slave).map_err(sys("dup pty to stdin"))?;
    nix::unistd::dup2_stdout(slave).map_err(sys("dup pty to stdout"))?;
    nix::unistd::dup2_stderr(slave).map_err(sys("dup pty to stderr"))
}
