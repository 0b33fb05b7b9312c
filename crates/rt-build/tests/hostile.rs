//! Builder attacks: nothing a Dockerfile, its context or an earlier step
//! plants may read or write outside the context and the image.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const BASE: &str = "FROM scratch\nADD rootfs.tar /\n";

fn fails_with(e: &Env, want: &str) {
    let out = e.build(&["-t", "x"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "build should fail");
    assert!(err.contains(want), "expected {want:?} in: {err}");
}

#[test]
fn copy_sources_stay_in_the_context() {
    if !ready("copy_sources_stay_in_the_context") {
        return;
    }
    let e = Env::new();
    let outside = e.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "host secret\n").unwrap();
    e.dockerfile(&format!("{BASE}COPY ../outside/secret /s\n"));
    fails_with(&e, "outside the build context");

    // a symlink to a host directory resolves inside the context
    symlink(&outside, e.ctx.join("esc")).unwrap();
    e.dockerfile(&format!("{BASE}COPY esc/secret /s\n"));
    fails_with(&e, "esc/secret");

    // a context symlink is copied as a link, not as what it points to
    symlink(outside.join("secret"), e.ctx.join("abs-link")).unwrap();
    symlink("../outside/secret", e.ctx.join("rel-link")).unwrap();
    e.dockerfile(&format!("{BASE}COPY abs-link rel-link esc /links/\n"));
    e.build_ok(&["-t", "l"]);
    let (_d, root) = e.tree("l");
    let t = list_tree(&root);
    assert!(t["links/abs-link"].starts_with(&format!("link->{}", outside.join("secret").display())));
    assert!(t["links/rel-link"].starts_with("link->../outside/secret"));
    assert!(t["links/esc"].starts_with("link->"));
    assert!(!t.values().any(|v| v.contains("host secret")), "{t:?}");
}

#[test]
fn planted_symlinks_cannot_redirect_copy_destinations() {
    if !ready("planted_symlinks_cannot_redirect_copy_destinations") {
        return;
    }
    let e = Env::new();
    let host = e.dir.path().join("host-target");
    fs::create_dir(&host).unwrap();
    e.write("f.txt", "payload\n");
    e.write("t.tar", "");
    e.dockerfile(&format!(
        "{BASE}RUN ln -s {h} /app && ln -s ../../../../../../../../{h} /rel && ln -s {h}/file /etc/dest-file\n\
         COPY f.txt /app/\nCOPY f.txt /rel/sub/\nCOPY f.txt /etc/dest-file\nWORKDIR /app/w\n",
        h = host.display()
    ));
    e.build_ok(&["-t", "p"]);
    e.assert_clean();
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        0,
        "nothing written on the host"
    );
    let (_d, root) = e.tree("p");
    let inside = root.join(host.strip_prefix("/").unwrap());
    assert_eq!(read(&inside, "f.txt"), "payload\n");
    assert_eq!(read(&inside, "sub/f.txt"), "payload\n");
    // the final name is replaced, not followed
    assert_eq!(read(&root, "etc/dest-file"), "payload\n");
    assert!(inside.join("w").is_dir());
}

#[test]
fn mount_sources_and_cache_ids_cannot_climb_out() {
    if !ready("mount_sources_and_cache_ids_cannot_climb_out") {
        return;
    }
    let e = Env::new();
    let outside = e.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "host secret\n").unwrap();
    e.dockerfile(&format!(
        "{BASE}RUN --mount=type=bind,source=../outside,target=/m cat /m/secret\n"
    ));
    fails_with(&e, "outside the build context");

    symlink(&outside, e.ctx.join("esc")).unwrap();
    e.dockerfile(&format!(
        "{BASE}RUN --mount=type=bind,source=esc,target=/m cat /m/secret > /got\n"
    ));
    fails_with(&e, "--mount source=esc");

    // from= a stage: a symlink in that stage's rootfs stays in it
    e.dockerfile(&format!(
        "{BASE}RUN ln -s {o} /link\nFROM 0\nRUN --mount=type=bind,from=0,source=/link,target=/m cat /m/secret > /got\n",
        o = outside.display()
    ));
    fails_with(&e, "--mount source=/link");

    let victim = e.dir.path().join("victim");
    e.dockerfile(&format!(
        "{BASE}RUN --mount=type=cache,id=../../../../../../../..{v},target=/c touch /c/pwned\n",
        v = victim.display()
    ));
    e.build_ok(&["-t", "c"]);
    assert!(!victim.exists(), "a cache id named a host path");
    let caches: Vec<_> = fs::read_dir(e.store.join("cache-mounts"))
        .unwrap()
        .collect();
    assert_eq!(caches.len(), 1);
    e.assert_clean();
}

fn hostile_tar(path: &std::path::Path, host: &std::path::Path) {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |kind: tar::EntryType, name: &str, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        let raw = &mut h.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            let raw = &mut h.as_old_mut().linkname;
            raw.fill(0);
            raw[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    let h = host.display().to_string();
    add(tar::EntryType::Symlink, "escape", Some(&h), b"");
    add(
        tar::EntryType::Regular,
        "escape/through-link",
        None,
        b"evil\n",
    );
    add(tar::EntryType::Regular, "ok", None, b"fine\n");
    let data = b.into_inner().unwrap();
    let f = fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    gz.finish().unwrap();
}

#[test]
fn add_archives_are_extracted_inside_the_rootfs() {
    if !ready("add_archives_are_extracted_inside_the_rootfs") {
        return;
    }
    let e = Env::new();
    let host = e.dir.path().join("host-dir");
    fs::create_dir(&host).unwrap();
    hostile_tar(&e.ctx.join("evil.tar.gz"), &host);
    e.dockerfile(&format!("{BASE}ADD evil.tar.gz /x/\n"));
    let out = e.build(&["-t", "a"]);
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        0,
        "the archive wrote on the host"
    );
    if out.status.success() {
        let (_d, root) = e.tree("a");
        assert_eq!(read(&root, "x/ok"), "fine\n");
    }
    e.assert_clean();
}

#[test]
fn no_host_descriptor_reaches_a_run_step() {
    if !ready("no_host_descriptor_reaches_a_run_step") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!("{BASE}RUN ls /proc/self/fd > /fds\n"));
    // an inheritable descriptor in the builder's caller
    let f = fs::File::open("/etc/hostname").unwrap();
    let fd = nix::unistd::dup(&f).unwrap();
    let out = e
        .cmd()
        .args(["build", "-q", "-t", "fd"])
        .arg(&e.ctx)
        .output()
        .unwrap();
    drop(fd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_d, root) = e.tree("fd");
    assert_eq!(
        read(&root, "fds"),
        "0\n1\n2\n3\n",
        "only stdio (and ls's own directory fd)"
    );
}

/// Reads the build's stderr until the RUN step says it started.
fn wait_for_started(mut err: impl std::io::Read + Send + 'static) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("started") {
        let n = err.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the build ended first: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // keep draining, so the build never blocks on a full pipe
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
}

#[test]
fn ctrl_c_leaves_nothing_behind() {
    if !ready("ctrl_c_leaves_nothing_behind") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!("{BASE}RUN echo started > /dev/stderr; sleep 60\n"));
    let mut child = e
        .cmd()
        .args(["build", "--progress=plain"])
        .arg(&e.ctx)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_started(child.stderr.take().unwrap());
    let t0 = Instant::now();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the step was not stopped"
    );
    e.assert_clean();
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 60"));
}

#[test]
fn planted_symlinks_cannot_redirect_mount_targets() {
    if !ready("planted_symlinks_cannot_redirect_mount_targets") {
        return;
    }
    let e = Env::new();
    let host = e.dir.path().join("host-target");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("keep"), "keep\n").unwrap();
    e.write("src/in", "in\n");
    e.dockerfile(&format!(
        "{BASE}RUN ln -s {h}/a /m1 && ln -s ../../../../../../..{h}/b /m2 && ln -s {h}/c /m3\n\
         RUN --mount=type=tmpfs,target=/m1 --mount=type=bind,source=src,target=/m2,rw --mount=type=cache,target=/m3/c \
         ls /m1 > /seen-m1 ; touch /m1/x /m2/y /m3/c/z ; cat /m2/in > /seen-m2\n",
        h = host.display()
    ));
    e.build_ok(&["-t", "mt"]);
    e.assert_clean();
    let names: Vec<_> = fs::read_dir(&host)
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("keep")],
        "the host directory was touched"
    );
    let (_d, root) = e.tree("mt");
    assert_eq!(
        read(&root, "seen-m1"),
        "",
        "the tmpfs hid the in-rootfs target, not the host"
    );
    assert_eq!(read(&root, "seen-m2"), "in\n");
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(host.to_str().unwrap()));
}

#[test]
fn a_killed_build_is_cleaned_up_by_the_next() {
    if !ready("a_killed_build_is_cleaned_up_by_the_next") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!("{BASE}RUN echo started > /dev/stderr; sleep 61\n"));
    let mut child = e
        .cmd()
        .args(["build", "--progress=plain"])
        .arg(&e.ctx)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_started(child.stderr.take().unwrap());
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    e.dockerfile(&format!("{BASE}RUN true\n"));
    e.build_ok(&[]);
    e.assert_clean();
    std::thread::sleep(Duration::from_millis(200));
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 61"));
}
