//! systemd integration as runc does it: the `NOTIFY_SOCKET` proxy (the
//! container's READY=1 is passed on with MAINPID) and socket activation
//! (`LISTEN_FDS`/`LISTEN_PID` meant for rt hand fds 3.. to the container).

use rt_tests::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The helper binary that sends one datagram to `$NOTIFY_SOCKET`.
const SD_NOTIFY: &str = env!("CARGO_BIN_EXE_rt-test-sd-notify");

/// Wait up to `timeout` for one datagram on `sock`; returns its bytes and
/// the fds it carried.
fn recv_datagram(sock: &UnixDatagram, timeout: Duration) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    if r <= 0 {
        return None;
    }
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE((8 * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8) + 1];
    // SAFETY: all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg points to valid buffers that outlive the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return None;
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages recvmsg filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((buf[..n as usize].to_vec(), fds))
}

#[test]
fn notify_socket_passes_ready_with_mainpid() {
    require_root!();
    let mut rt = Runtime::new();
    let host_path = rt.scratch().join("notify.sock");
    let sock = UnixDatagram::bind(&host_path).unwrap();
    rt.env.push((
        "NOTIFY_SOCKET".to_string(),
        host_path.to_str().unwrap().to_string(),
    ));
    let mut b = Bundle::busybox();
    b.host_userland(SD_NOTIFY, "/sd-notify");
    b.sh(
        "echo ns=$NOTIFY_SOCKET; test -S \"$NOTIFY_SOCKET\" && echo sock=yes; \
         /sd-notify STATUS=starting && /sd-notify READY=1 && echo sent=yes; exec sleep 600",
    );
    let id = rt.id("notify");
    let created = rt.create(&id, &b);
    created.assert_ok();
    // `start` returns once READY=1 was passed on.
    let start = rt.spawn(&["start", &id]);
    let (msg, fds) = recv_datagram(&sock, Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "no message on NOTIFY_SOCKET; container said: {:?} {:?}",
            created.read_stdout(),
            created.read_stderr()
        )
    });
    assert!(fds.is_empty());
    let msg = String::from_utf8_lossy(&msg).into_owned();
    let pid = rt.pid(&id);
    assert!(pid > 0);
    assert_eq!(msg, format!("READY=1\nMAINPID={pid}\n"));
    // Then a barrier: a BARRIER=1 with an fd, closed to let `start` go.
    let (msg, fds) = recv_datagram(&sock, Duration::from_secs(20)).expect("no barrier message");
    assert_eq!(String::from_utf8_lossy(&msg), "BARRIER=1");
    assert_eq!(fds.len(), 1, "barrier without an fd");
    drop(fds);
    let o = start.wait(Duration::from_secs(20));
    o.assert_ok();
    assert!(
        o.elapsed < Duration::from_secs(20),
        "start took {:?}",
        o.elapsed
    );
    // Nothing else arrives (STATUS= is not passed on).
    assert!(recv_datagram(&sock, Duration::from_millis(200)).is_none());

    assert_eq!(rt.status(&id), "running");
    let kv = kv_lines(&created.read_stdout());
    assert_eq!(
        kv.get("ns").map(String::as_str),
        Some("/run/notify/notify.sock"),
        "{kv:?}"
    );
    assert_eq!(kv.get("sock").map(String::as_str), Some("yes"), "{kv:?}");
    assert_eq!(kv.get("sent").map(String::as_str), Some("yes"), "{kv:?}");
    rt.kill(&id, "KILL").assert_ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn notify_socket_without_ready_start_returns_when_the_container_exits() {
    require_root!();
    let mut rt = Runtime::new();
    let host_path = rt.scratch().join("notify.sock");
    let sock = UnixDatagram::bind(&host_path).unwrap();
    rt.env.push((
        "NOTIFY_SOCKET".to_string(),
        host_path.to_str().unwrap().to_string(),
    ));
    let mut b = Bundle::busybox();
    b.sh("echo ns=$NOTIFY_SOCKET; exit 0");
    let id = rt.id("notifynoready");
    let created = rt.create(&id, &b);
    created.assert_ok();
    let o = rt.spawn(&["start", &id]).wait(Duration::from_secs(30));
    assert!(o.elapsed < Duration::from_secs(20), "{o:?}");
    rt.wait_status(&id, "stopped");
    assert!(
        recv_datagram(&sock, Duration::from_millis(200)).is_none(),
        "a message was passed on though the container never sent READY"
    );
    assert_eq!(created.read_stdout(), "ns=/run/notify/notify.sock\n");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

/// Prints the socket-activation view of the container process.
const LISTEN_SCRIPT: &str = "echo fds=$LISTEN_FDS; echo pid=$LISTEN_PID; \
     printf 'fd3='; readlink /proc/self/fd/3 || echo none; \
     printf 'fd4='; readlink /proc/self/fd/4 || echo none";

/// `LISTEN_FDS=1 LISTEN_PID=<listen_pid> rt run ...` with `listener` at fd
/// 3; `None` for LISTEN_PID means the rt process's own pid.
fn run_with_listen_fds(
    rt: &Runtime,
    b: &Bundle,
    id: &str,
    listener: &UnixListener,
    listen_pid: Option<u32>,
) -> Out {
    b.save();
    // The shell's pid is the one `exec` gives rt.
    let pid = match listen_pid {
        Some(p) => p.to_string(),
        None => "$$".to_string(),
    };
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("LISTEN_PID={pid} exec \"$@\""))
        .arg("sh")
        .arg(rt.bin())
        .args(["--root", rt.root_str(), "run", "--bundle", b.path_str(), id])
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null());
    pass_fds(&mut c, &[listener.as_raw_fd()]);
    rt.spawn_command(c).wait(CMD_TIMEOUT)
}

#[test]
fn listen_fds_are_passed_to_the_container() {
    require_root!();
    let rt = Runtime::new();
    let listener = UnixListener::bind(rt.scratch().join("listen.sock")).unwrap();
    let ino = {
        // SAFETY: all-zero stat is valid; fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and out pointer.
        assert_eq!(unsafe { libc::fstat(listener.as_raw_fd(), &mut st) }, 0);
        st.st_ino
    };
    let mut b = Bundle::busybox();
    b.sh(LISTEN_SCRIPT);
    let id = rt.id("listenfds");
    let o = run_with_listen_fds(&rt, &b, &id, &listener, None);
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    assert_eq!(kv.get("fds").map(String::as_str), Some("1"), "{o:?}");
    assert_eq!(kv.get("pid").map(String::as_str), Some("1"), "{o:?}");
    assert_eq!(
        kv.get("fd3").map(String::as_str),
        Some(format!("socket:[{ino}]").as_str()),
        "{o:?}"
    );
    assert_eq!(kv.get("fd4").map(String::as_str), Some("none"), "{o:?}");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn listen_fds_for_another_process_are_ignored() {
    require_root!();
    let rt = Runtime::new();
    let listener = UnixListener::bind(rt.scratch().join("listen.sock")).unwrap();
    let mut b = Bundle::busybox();
    b.sh(LISTEN_SCRIPT);
    let id = rt.id("listenother");
    // LISTEN_PID is someone else (our own pid).
    let o = run_with_listen_fds(&rt, &b, &id, &listener, Some(std::process::id()));
    o.assert_ok();
    let kv = kv_lines(&o.stdout);
    assert_eq!(kv.get("fds").map(String::as_str), Some(""), "{o:?}");
    assert_eq!(kv.get("pid").map(String::as_str), Some(""), "{o:?}");
    assert_eq!(kv.get("fd3").map(String::as_str), Some("none"), "{o:?}");
    assert_nothing_left(&rt, &id, &b);
}
