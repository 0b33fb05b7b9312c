//! `rt-test-sd-notify MESSAGE`: send MESSAGE as one datagram to the unix
//! socket `$NOTIFY_SOCKET`, as sd_notify(3) does. The notify tests run it
//! inside containers (busybox has no unix datagram client).

use std::os::unix::net::UnixDatagram;
use std::process::exit;

fn main() {
    let Some(msg) = std::env::args().nth(1) else {
        eprintln!("usage: rt-test-sd-notify MESSAGE");
        exit(2);
    };
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        eprintln!("rt-test-sd-notify: NOTIFY_SOCKET is not set");
        exit(1);
    };
    let sent = UnixDatagram::unbound().and_then(|s| s.send_to(msg.as_bytes(), &path));
    if let Err(e) = sent {
        eprintln!("rt-test-sd-notify: send to {}: {e}", path.to_string_lossy());
        exit(1);
    }
}
