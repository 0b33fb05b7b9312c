//! Handing a `SCMP_ACT_NOTIFY` filter's listener to the seccomp agent at
//! `linux.seccomp.listenerPath`, as the runtime spec's "container process state".
//!
//! The process that loads the filter (the init, or the child of `exec`) sends the
//! listener itself, right after loading it. By then it may be past `pivot_root`, where
//! `listenerPath` (a host path) is out of reach, so the parent (`create`, `exec`)
//! connects beforehand and the child inherits the connected socket, as it does the
//! console socket. That also makes an absent agent a `create` error, before anything
//! was set up. One connection carries one state, then closes (runtime spec): the child
//! shuts it down after sending, and the parent closes its copy once the child exists.

use std::io::IoSlice;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::LinuxSeccomp;
use serde::Serialize;

use super::SeccompError;
use crate::hooks::HookState;

/// The runtime spec's name for the listener in `fds`.
const SECCOMP_FD_NAME: &str = "seccompFd";

/// A connection to the seccomp agent.
#[derive(Debug)]
pub struct Agent {
    socket: UnixStream,
    path: PathBuf,
    metadata: Option<String>,
}

/// runtime-spec config-linux.md, "The Container Process State".
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerProcessState<'a> {
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: &'a HookState<'a>,
}

impl Agent {
    /// Connect to `listenerPath` (a `SOCK_STREAM` socket, as the spec demands).
    pub fn connect(seccomp: &LinuxSeccomp) -> Result<Agent, SeccompError> {
        let path = seccomp
            .listener_path()
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or(SeccompError::NotifyWithoutListener)?;
        let socket = UnixStream::connect(&path).map_err(|source| SeccompError::Connect {
            path: path.clone(),
            source,
        })?;
        Ok(Agent {
            socket,
            path,
            metadata: seccomp.listener_metadata().clone(),
        })
    }

    /// The socket, which the child must keep when it closes what it inherited.
    pub fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The message for process `pid` of the container in `state`. Made before the
    /// filter is loaded, so nothing is allocated after it.
    pub(super) fn payload(&self, pid: i32, state: &HookState<'_>) -> Vec<u8> {
        serde_json::to_vec(&ContainerProcessState {
            oci_version: crate::OCI_VERSION,
            fds: [SECCOMP_FD_NAME],
            pid,
            metadata: self.metadata.as_deref(),
            state,
        })
        .expect("the state serializes")
    }

    /// Send `payload` with `listener` in one message, then end the connection.
    pub(super) fn send(&self, payload: &[u8], listener: &OwnedFd) -> Result<(), SeccompError> {
        let fds = [listener.as_raw_fd()];
        let sent = sendmsg::<()>(
            self.socket.as_raw_fd(),
            &[IoSlice::new(payload)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        let send_error = |source| SeccompError::Send {
            path: self.path.clone(),
            source,
        };
        let n = sent.map_err(send_error)?;
        if n < payload.len() {
            // A stream socket may take part of a large message: the rest goes without fds.
            use std::io::Write;
            (&self.socket)
                .write_all(&payload[n..])
                .map_err(|e| send_error(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        }
        let _ = self.socket.shutdown(Shutdown::Both);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    #[test]
    fn sends_the_state_and_the_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let seccomp: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": path,
            "listenerMetadata": "meta",
        }))
        .unwrap();
        let agent = Agent::connect(&seccomp).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let annotations = [("a".to_string(), "b".to_string())].into_iter().collect();
        let state = HookState {
            oci_version: "1.0.2",
            id: "c1",
            status: "creating",
            pid: Some(42),
            bundle: "/b",
            annotations: Some(&annotations),
        };
        let payload = agent.payload(43, &state);
        // Any descriptor does: the agent gets its own copy.
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        agent.send(&payload, &fd).unwrap();

        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fds: Vec<RawFd> = msg
            .cmsgs()
            .unwrap()
            .flat_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(f) => f,
                _ => vec![],
            })
            .collect();
        let n = msg.bytes;
        assert_eq!(fds.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ociVersion": crate::OCI_VERSION,
                "fds": ["seccompFd"],
                "pid": 43,
                "metadata": "meta",
                "state": {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 42,
                          "bundle": "/b", "annotations": {"a": "b"}},
            })
        );
        // Then the connection ends.
        let mut rest = vec![];
        assert_eq!(conn.read_to_end(&mut rest).unwrap(), 0);
        for fd in fds {
            nix::unistd::close(fd).unwrap();
        }
    }

    #[test]
    fn connect_names_the_path_when_no_agent_listens() {
        let seccomp: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/nonexistent/agent.sock",
        }))
        .unwrap();
        let e = Agent::connect(&seccomp).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/agent.sock"), "{e}");
    }
}
