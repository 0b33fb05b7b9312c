//! The parent <-> init protocol: fixed binary messages over a `SOCK_SEQPACKET`
//! socketpair (message boundaries kept, EOF when the other side dies).
//!
//! | step | direction     | message              | meaning                                        |
//! |------|---------------|----------------------|------------------------------------------------|
//! | 1    | parent → init | `Go(host pid)`       | id maps written: set up                        |
//! | 1b   | parent → init | `Joined`             | in the cgroup now (sent while the init mounts) |
//! | 2    | init → parent | `RuntimeHooks`       | mounts done: run prestart/createRuntime hooks  |
//! | 3    | parent → init | `HooksDone`          | go on (createContainer hooks, pivot_root...)   |
//! | 4    | init → parent | `Ready`              | waiting for `start` on the start socket        |
//! | any  | init → parent | `Error(msg)`         | setup failed; the init exits                   |
//!
//! With an intermediate child (see `namespaces::Plan::intermediate`), the first `Go`
//! goes to it; it enters the namespaces, forks the init, answers `InitPid(host pid)`
//! and exits; the parent then sends the init its own `Go`.
//!
//! The same framing runs over the start socket: `rt start` sends `Start`; the init
//! execs (the socket closes: EOF means success) or answers `Error(msg)`.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Go(i32),
    RuntimeHooks,
    HooksDone,
    Ready,
    Start,
    Error(String),
    /// From an intermediate child: the host pid of the init it forked.
    InitPid(i32),
    /// The init is in its cgroup now.
    Joined,
}

#[derive(Debug, Error)]
pub enum ChannelError {
    #[error("{op} on the init channel: {source}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("the other end closed the init channel")]
    Closed,
    #[error("malformed message on the init channel (tag {0})")]
    Malformed(u8),
    #[error("unexpected message on the init channel: {0:?}")]
    Unexpected(Msg),
}

const MAX: usize = 64 * 1024;

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go(pid) => {
                let mut v = vec![1];
                v.extend_from_slice(&pid.to_le_bytes());
                v
            }
            Msg::RuntimeHooks => vec![2],
            Msg::HooksDone => vec![3],
            Msg::Ready => vec![4],
            Msg::Start => vec![5],
            Msg::Error(s) => {
                let mut v = vec![6];
                v.extend_from_slice(&s.as_bytes()[..s.len().min(MAX - 1)]);
                v
            }
            Msg::InitPid(pid) => {
                let mut v = vec![7];
                v.extend_from_slice(&pid.to_le_bytes());
                v
            }
            Msg::Joined => vec![8],
        }
    }

    fn decode(b: &[u8]) -> Result<Self, ChannelError> {
        let (&tag, rest) = b.split_first().ok_or(ChannelError::Closed)?;
        Ok(match tag {
            1 => Msg::Go(i32::from_le_bytes(
                rest.try_into().map_err(|_| ChannelError::Malformed(tag))?,
            )),
            2 => Msg::RuntimeHooks,
            3 => Msg::HooksDone,
            4 => Msg::Ready,
            5 => Msg::Start,
            6 => Msg::Error(String::from_utf8_lossy(rest).into_owned()),
            8 => Msg::Joined,
            7 => Msg::InitPid(i32::from_le_bytes(
                rest.try_into().map_err(|_| ChannelError::Malformed(tag))?,
            )),
            t => return Err(ChannelError::Malformed(t)),
        })
    }
}

/// One end of a seqpacket connection.
#[derive(Debug)]
pub struct Channel(pub OwnedFd);

impl Channel {
    /// A connected pair: (parent end, child end), both close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|source| ChannelError::Sys {
            op: "socketpair",
            source,
        })?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send(&self, m: &Msg) -> Result<(), ChannelError> {
        loop {
            match send(self.0.as_raw_fd(), &m.encode(), MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                Err(source) => return Err(ChannelError::Sys { op: "send", source }),
            }
        }
    }

    /// The next message; `Closed` on EOF.
    pub fn recv(&self) -> Result<Msg, ChannelError> {
        let mut buf = vec![0u8; MAX];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Err(ChannelError::Closed),
                Ok(n) => return Msg::decode(&buf[..n]),
                // A peer that exits with a message of ours unread resets the
                // connection, and the kernel reports that before the messages it
                // sent first (an init's Error): the reset is reported once, so read on.
                Err(Errno::EINTR) | Err(Errno::ECONNRESET) => continue,
                Err(source) => return Err(ChannelError::Sys { op: "recv", source }),
            }
        }
    }

    /// A message already waiting, if any, without blocking.
    pub fn pending(&self) -> Option<Msg> {
        let mut buf = vec![0u8; MAX];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) if n > 0 => return Msg::decode(&buf[..n]).ok(),
                Err(Errno::EINTR) | Err(Errno::ECONNRESET) => continue,
                _ => return None,
            }
        }
    }

    /// The error the peer reported before it went, if that is what is waiting: the
    /// cause to report when what failed on our side was only its consequence.
    pub fn pending_error(&self) -> Option<String> {
        match self.pending()? {
            Msg::Error(m) => Some(m),
            _ => None,
        }
    }

    /// Receive and insist on one particular message.
    pub fn expect(&self, want: &Msg) -> Result<Msg, ChannelError> {
        let got = self.recv()?;
        let same = std::mem::discriminant(&got) == std::mem::discriminant(want);
        if same {
            Ok(got)
        } else {
            Err(ChannelError::Unexpected(got))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_message() {
        let (a, b) = Channel::pair().unwrap();
        for m in [
            Msg::Go(4242),
            Msg::RuntimeHooks,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Start,
            Msg::Error("boom: ünïcode".into()),
            Msg::InitPid(77),
            Msg::Joined,
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), m);
        }
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_message_outlives_the_reset_of_a_peer_that_left_one_unread() {
        let (parent, init) = Channel::pair().unwrap();
        parent.send(&Msg::Joined).unwrap();
        init.send(&Msg::Error("the reason".into())).unwrap();
        drop(init);
        assert_eq!(parent.recv().unwrap(), Msg::Error("the reason".into()));
        assert!(matches!(parent.recv(), Err(ChannelError::Closed)));
    }
}
