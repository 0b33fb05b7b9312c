//! `terminal: true` with `--console-socket`: the pty master is sent over the
//! socket, and the container's stdio is the pty slave.

use rt_tests::*;
use std::os::fd::AsRawFd;
use std::time::Duration;

fn clean(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "")
}

#[test]
fn console_socket_receives_pty_master() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true).sh(
        "echo tty=$(tty); for f in 0 1 2; do if [ -t $f ]; then echo fd$f=tty; else echo fd$f=notty; fi; done",
    );
    let sock = ConsoleSocket::bind(b.path().join("console.sock"));
    let id = rt.id("console");
    rt.create_with(&id, &b, &["--console-socket", sock.path_str()])
        .assert_ok();
    let (master, _) = sock
        .recv_master(Duration::from_secs(10))
        .expect("no pty master received on the console socket");
    assert!(
        is_pty_master(master.as_raw_fd()),
        "received fd is not a pty master"
    );
    assert_eq!(rt.status(&id), "created");
    rt.start(&id).assert_ok();
    let out = clean(&read_fd_to_end(master.as_raw_fd(), Duration::from_secs(10)));
    let kv = kv_lines(&out);
    assert!(
        kv.get("tty").is_some_and(|t| t.starts_with("/dev/pts/")),
        "{out:?}"
    );
    for f in ["fd0", "fd1", "fd2"] {
        assert_eq!(kv.get(f).map(String::as_str), Some("tty"), "{f}: {out:?}");
    }
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn console_is_interactive() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true)
        .sh("read line; echo \"got:$line\"; read a b; echo $((a * b))");
    let sock = ConsoleSocket::bind(b.path().join("console.sock"));
    let id = rt.id("interactive");
    b.save();
    rt.run_detached(&id, &b, &["--console-socket", sock.path_str()])
        .assert_ok();
    let (master, _) = sock
        .recv_master(Duration::from_secs(10))
        .expect("no pty master received on the console socket");
    let (x, y) = (6, 7);
    write_fd(
        master.as_raw_fd(),
        format!("hello pty\n{x} {y}\n").as_bytes(),
    );
    let out = clean(&read_fd_to_end(master.as_raw_fd(), Duration::from_secs(10)));
    assert!(out.lines().any(|l| l == "got:hello pty"), "{out:?}");
    let product = (x * y).to_string();
    assert!(out.lines().any(|l| l == product), "{out:?}");
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn terminal_without_console_socket_fails() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true).sh("exit 0");
    let id = rt.id("noconsole");
    rt.create(&id, &b).assert_err();
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
}

/// A foreground `run` of a terminal container without `--console-socket`:
/// rt makes the pty itself and proxies it to its own stdin/stdout, which
/// here are the pty of script(1).
#[test]
fn foreground_run_proxies_terminal() {
    require_root!();
    require!(
        std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "script(1) from util-linux"
    );
    use std::io::Write;
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true).args(&["sh"]);
    b.save();
    let id = rt.id("fgtty");
    let cmd = format!(
        "{} --root {} run --bundle {} {}",
        sh_quote(rt.bin().to_str().unwrap()),
        sh_quote(rt.root_str()),
        sh_quote(b.path_str()),
        sh_quote(&id)
    );
    let out_path = rt.scratch().join("script.out");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn script");
    // `res=$((6*7))` is echoed as typed; only the shell prints `res=42`.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"tty; echo res=$((6*7)); exit 5\n")
        .unwrap();
    let mut status = None;
    wait_for(CMD_TIMEOUT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("script did not finish: {:?}", read(&out_path));
    };
    let out = read(&out_path).replace('\r', "");
    assert!(
        out.lines().any(|l| l
            .rsplit_once("/dev/pts/")
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))),
        "tty is not a pty: {out:?}"
    );
    assert!(out.lines().any(|l| l.ends_with("res=42")), "{out:?}");
    assert_eq!(status.code(), Some(5), "{out:?}");
    assert!(rt.try_state(&id).is_err(), "container left after run");
    assert_nothing_left(&rt, &id, &b);
}
