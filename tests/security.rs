//! Attacks and faults: hostile images, hostile configs, hostile callers and
//! hostile processes in the container. Each case must be refused or made
//! harmless, and the HOST is checked for damage: canary files and dirs that
//! hostile symlinks point at (by absolute host path and by `../` escapes)
//! keep their content, mtimes and inodes, and nothing of the container is
//! left (state, cgroup, mounts, processes).

use rt_tests::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Host canaries
// ---------------------------------------------------------------------------

/// What a snapshot remembers of one entry (never the atime).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

fn entry(p: &Path) -> Option<Entry> {
    let m = fs::symlink_metadata(p).ok()?;
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else {
        "other"
    };
    Some(Entry {
        kind,
        ino: m.ino(),
        mode: m.mode(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        content: ft.is_file().then(|| fs::read(p).unwrap_or_default()),
        link: ft.is_symlink().then(|| fs::read_link(p).unwrap()),
    })
}

/// Every entry under `dir` (and `dir` itself) by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let Some(e) = entry(p) else { return };
        let is_dir = e.kind == "dir";
        out.insert(p.strip_prefix(base).unwrap().to_path_buf(), e);
        if is_dir {
            let mut names: Vec<_> = fs::read_dir(p)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            names.sort();
            for n in names {
                walk(base, &n, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A host directory outside every bundle, with world-writable files and
/// dirs, that hostile symlinks and mounts aim at: `/tmp/rt-canary-*`.
struct Canary {
    dir: PathBuf,
    snap: BTreeMap<PathBuf, Entry>,
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rt-canary-{}-{}-", std::process::id(), next_n()))
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        for d in ["x", "sub", "dev", "proc"] {
            fs::create_dir_all(dir.join(d)).unwrap();
            fs::set_permissions(dir.join(d), fs::Permissions::from_mode(0o777)).unwrap();
        }
        for f in ["file", "sub/file", "x/file", "null", "console"] {
            fs::write(dir.join(f), format!("canary {f}\n")).unwrap();
            fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o666)).unwrap();
        }
        // Let the clock move on, so that a write in the same tick as the
        // creation still changes an mtime.
        std::thread::sleep(Duration::from_millis(20));
        let snap = snapshot(&dir);
        Canary { dir, snap }
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    fn join(&self, rel: &str) -> String {
        self.dir.join(rel).to_str().unwrap().to_string()
    }

    /// A relative symlink target that climbs out of any rootfs path below
    /// `/tmp` and lands here when followed on the host: `../../…/tmp/NAME/rel`.
    fn escape(&self, rel: &str) -> String {
        let mut s = "../".repeat(16);
        s.push_str(self.dir.strip_prefix("/").unwrap().to_str().unwrap());
        if !rel.is_empty() {
            s.push('/');
            s.push_str(rel);
        }
        s
    }

    /// Nothing under the canary changed, appeared or disappeared, and
    /// nothing is mounted on it.
    #[track_caller]
    fn assert_untouched(&self) {
        let now = snapshot(&self.dir);
        let mut diffs = Vec::new();
        for (p, e) in &self.snap {
            match now.get(p) {
                None => diffs.push(format!("{}: removed", p.display())),
                Some(n) if n != e => diffs.push(format!(
                    "{}: changed\n  was {e:?}\n  now {n:?}",
                    p.display()
                )),
                _ => {}
            }
        }
        for p in now.keys() {
            if !self.snap.contains_key(p) {
                diffs.push(format!("{}: created", p.display()));
            }
        }
        assert!(
            diffs.is_empty(),
            "host canary {} was touched:\n{}",
            self.dir.display(),
            diffs.join("\n")
        );
        assert_no_mounts(&self.dir);
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        for m in mounts_under(&self.dir).into_iter().rev() {
            let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        if mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The rt binary as it is now, held open: an in-place write (the only kind
/// a container could do) changes the inode we hold; a rebuild by cargo
/// replaces the file and leaves our inode alone.
struct BinaryGuard {
    file: fs::File,
    meta: (u64, u64, (i64, i64), (i64, i64)),
    sha: String,
}

impl BinaryGuard {
    fn new() -> BinaryGuard {
        let file = fs::File::open(fs::canonicalize(rt_bin()).unwrap()).unwrap();
        let meta = Self::meta_of(&file);
        let sha = Self::sha_of(&file);
        BinaryGuard { file, meta, sha }
    }

    fn meta_of(f: &fs::File) -> (u64, u64, (i64, i64), (i64, i64)) {
        let m = f.metadata().unwrap();
        (
            m.ino(),
            m.size(),
            (m.mtime(), m.mtime_nsec()),
            (m.ctime(), m.ctime_nsec()),
        )
    }

    fn sha_of(f: &fs::File) -> String {
        let p = format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd());
        let o = Command::new("sha256sum").arg(&p).output().unwrap();
        assert!(o.status.success(), "sha256sum {p}");
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    #[track_caller]
    fn assert_unchanged(&self) {
        assert_eq!(
            Self::meta_of(&self.file),
            self.meta,
            "the host's rt binary {} was modified (inode, size, mtime, ctime)",
            rt_bin().display()
        );
        assert_eq!(
            Self::sha_of(&self.file),
            self.sha,
            "the host's rt binary {} was modified (sha256)",
            rt_bin().display()
        );
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A busybox bundle whose busybox is a copy, not a hard link of the host's:
/// processes in it try to write the executables they can see.
fn own_busybox(b: &Bundle) {
    let bb = b.rootfs().join("bin/busybox");
    fs::remove_file(&bb).unwrap();
    fs::copy(host_busybox(), &bb).unwrap();
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Replace whatever is at `rel` in the rootfs by a symlink to `target`.
fn plant_symlink(b: &Bundle, rel: &str, target: &str) {
    let p = b.rootfs().join(rel.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    if let Ok(m) = fs::symlink_metadata(&p) {
        if m.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    std::os::unix::fs::symlink(target, &p).unwrap();
}

/// `run` that either fails cleanly (one-line error) or succeeds: the
/// output if it ran, the error if not. Nothing may be left either way.
#[track_caller]
fn run_or_refuse(rt: &Runtime, b: &Bundle, name: &str) -> Result<String, String> {
    let id = rt.id(name);
    let o = rt.run(&id, b);
    let res = if o.success() {
        Ok(o.stdout.clone())
    } else {
        o.assert_err();
        Err(o.stderr.trim().to_string())
    };
    assert_nothing_left(rt, &id, b);
    res
}

/// `kill -9` of one process we started (never a group).
fn sigkill(pid: i32) {
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// The container's `/dev/null` must be the real device, and so must the
/// masked files (bind mounts of /dev/null): prints `name=TYPE:MAJ:MIN`.
const DEV_SCRIPT: &str = "for f in /dev/null /proc/kcore /proc/keys /proc/timer_list; do \
     [ -e $f ] && echo \"$f=$(stat -c '%F:%t:%T' $f)\"; done; \
     echo probe > /dev/null && echo devnull-write=ok";

#[track_caller]
fn assert_real_dev_null(out: &str) {
    let kv = kv_lines(out);
    assert_eq!(
        kv.get("/dev/null").map(String::as_str),
        Some("character special file:1:3"),
        "container's /dev/null is not the 1:3 device:\n{out}"
    );
    for m in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        if let Some(v) = kv.get(m) {
            assert_eq!(
                v, "character special file:1:3",
                "masked {m} is not /dev/null:\n{out}"
            );
        }
    }
    assert!(
        kv.contains_key("/proc/kcore") || !Path::new("/proc/kcore").exists(),
        "/proc/kcore not checked:\n{out}"
    );
    assert_eq!(
        kv.get("devnull-write").map(String::as_str),
        Some("ok"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: the rt binary is out of the container's reach
// ---------------------------------------------------------------------------

/// Tries to write every executable (and mapped file) of `$targets`; prints
/// `WROTE p` / `OPENED-RW p` for a success, `denied p` otherwise.
const WRITE_EXE: &str = r#"
try() {
  p=$1
  if { printf '#rt-sec' >> "$p"; } 2>/dev/null; then echo "WROTE $p"; else echo "denied $p"; fi
  if ( exec 3<> "$p" ) 2>/dev/null; then echo "OPENED-RW $p"; fi
}
"#;

/// A container in the "created" state: its init is still rt, waiting for
/// `start`. A process `exec`'d into it goes for `/proc/1/exe` (and the same
/// file by other paths, and the init's mapped files).
#[test]
fn exe_of_created_init_is_not_writable() {
    require_root!();
    let guard = BinaryGuard::new();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    own_busybox(&b);
    b.args(&["sleep", "1000"]);
    let id = rt.id("seal-created");
    rt.create(&id, &b).assert_ok();
    let init = rt.pid(&id);
    let script = format!(
        "{WRITE_EXE}
echo exe=$(readlink /proc/1/exe)
for p in /proc/1/exe /proc/self/../1/exe /proc/thread-self/../../1/exe /proc/self/root/proc/1/exe \
         /proc/1/task/1/exe /proc/1/map_files/*; do try $p; done"
    );
    let o = rt.exec(&["exec", &id, "sh", "-c", &script]);
    o.assert_ok();
    let out = &o.stdout;
    assert!(
        out.contains("denied /proc/1/exe"),
        "no attempt made:\n{out}"
    );
    assert!(
        !out.contains("WROTE") && !out.contains("OPENED-RW"),
        "the created init's executable was writable:\n{out}"
    );
    // Still the same waiting init, and it still works.
    assert_eq!(rt.status(&id), "created");
    assert_eq!(rt.pid(&id), init);
    guard.assert_unchanged();
    rt.start(&id).assert_ok();
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
    guard.assert_unchanged();
}

/// Processes that are rt for a while (the init of a `run` until it execs,
/// a process `exec`'d until it execs) are watched by a container sharing their pid
/// namespace that tries to write every executable it sees.
#[test]
fn exe_of_run_and_exec_processes_is_not_writable() {
    require_root!();
    let guard = BinaryGuard::new();
    let rt = Runtime::new();
    let mut a = Bundle::busybox();
    own_busybox(&a);
    let shared = a.shared_dir("shared", "/shared");
    let script = format!(
        "{WRITE_EXE}
n=0
while [ ! -e /shared/stop ]; do
  n=$((n+1))
  for d in /proc/[0-9]*; do
    case $d in /proc/1|/proc/$$) continue;; esac
    l=$(readlink $d/exe 2>/dev/null) || continue
    case $l in */busybox) ;; *) echo \"seen $d $l\" >> /shared/seen;; esac
    r=$(try $d/exe)
    case $r in *WROTE*|*OPENED-RW*) echo \"$r ($l)\" >> /shared/wrote;; esac
  done
done
echo rounds=$n > /shared/done"
    );
    a.sh(&script);
    let ida = rt.id("seal-watcher");
    rt.run_detached(&ida, &a, &[]).assert_ok();
    let pid_ns = format!("/proc/{}/ns/pid", rt.pid(&ida));

    // Containers in the watcher's pid namespace: each init is rt until it
    // execs. (`/proc/self/exe` as the process is refused, as by runc: the
    // init resolves it in the container before it mounts /proc.)
    let mut b = Bundle::busybox();
    own_busybox(&b);
    b.namespace_path("pid", &pid_ns);
    b.args(&["true"]);
    // Until the watcher has seen rt at least once (it usually sees it in
    // every round), within bounds.
    for i in 0..40 {
        if i >= 6 && !read(shared.join("seen")).is_empty() {
            break;
        }
        let idb = rt.id(&format!("seal-run{i}"));
        rt.run(&idb, &b).assert_ok();
        // A process exec'd into the watcher: rt until it execs.
        rt.exec(&["exec", &ida, "true"]).assert_ok();
    }
    fs::write(shared.join("stop"), "").unwrap();
    assert!(
        wait_for(POLL_TIMEOUT, || shared.join("done").exists()),
        "watcher did not stop"
    );
    let wrote = read(shared.join("wrote"));
    assert!(wrote.is_empty(), "executables written:\n{wrote}");
    let seen = read(shared.join("seen"));
    eprintln!(
        "watcher: {}, saw {} non-busybox executables",
        read(shared.join("done")).trim(),
        seen.lines().count()
    );
    if seen.is_empty() {
        eprintln!("note: the watcher never saw rt: the race was not run");
    }
    rt.delete_force(&ida).assert_ok();
    assert_nothing_left(&rt, &ida, &a);
    assert_nothing_left(&rt, "none", &b);
    guard.assert_unchanged();
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: no descriptor of the host reaches the container
// ---------------------------------------------------------------------------

/// Prints `fdN=LINK` for each open fd of the shell itself (no pipe or
/// directory of its own is open meanwhile), then becomes `sleep`.
const FD_LIST: &str = "n=0; while [ $n -lt 64 ]; do \
     if [ -L /proc/$$/fd/$n ]; then printf 'fd%s=' $n; readlink /proc/$$/fd/$n; fi; n=$((n+1)); done; \
     echo listed=1; exec sleep 1000";

/// `(dev, ino)` of what an fd link of another process leads to.
fn fd_target(link: &Path) -> Option<(u64, u64, bool)> {
    fs::metadata(link)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.is_dir()))
}

fn is_procfs(p: &Path) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C string and out pointer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) }) == 0 && st.f_type == libc::PROC_SUPER_MAGIC
}

/// The fds of `pid` beyond stdio and `allowed`, with what they are, if they
/// are directories (other than a procfs of the container's own) or any of
/// the caller's `host` files.
fn suspicious_fds(pid: i64, allowed: &[&str], host: &[(u64, u64)]) -> Vec<String> {
    let host_proc = fs::metadata("/proc").unwrap().dev();
    let mut bad = Vec::new();
    let dir = format!("/proc/{pid}/fd");
    for e in fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let link = fs::read_link(e.path()).unwrap_or_default();
        let Some((dev, ino, is_dir)) = fd_target(&e.path()) else {
            continue;
        };
        if allowed.contains(&name.as_str()) {
            continue;
        }
        if host.contains(&(dev, ino)) {
            bad.push(format!("fd {name} -> {} (a caller's fd)", link.display()));
        } else if is_dir && !(is_procfs(&e.path()) && dev != host_proc) {
            bad.push(format!("fd {name} -> {} (a directory)", link.display()));
        }
    }
    bad
}

/// The caller hands rt a directory of the host, the host's `/` and a file
/// (not close-on-exec): neither the waiting init nor the container's
/// process gets them, or any other directory of the host; with
/// `--preserve-fds 1` exactly fd 3 more.
#[test]
fn no_host_fd_reaches_the_container() {
    require_root!();
    let canary = Canary::new();
    for preserve in [None, Some(1)] {
        let rt = Runtime::new();
        let mut b = Bundle::busybox();
        b.sh(FD_LIST);
        b.save();
        let dir = fs::File::open(canary.path()).unwrap();
        let root = fs::File::open("/").unwrap();
        let file = fs::File::open(canary.join("file")).unwrap();
        let ids: Vec<(u64, u64)> = [&dir, &root, &file]
            .iter()
            .map(|f| {
                let m = f.metadata().unwrap();
                (m.dev(), m.ino())
            })
            .collect();
        let id = rt.id("fdleak");
        let mut args = vec!["create", "--bundle", b.path_str()];
        if preserve.is_some() {
            args.extend(["--preserve-fds", "1"]);
        }
        args.push(&id);
        let o = rt
            .spawn_with_fds(
                &args,
                &[dir.as_raw_fd(), root.as_raw_fd(), file.as_raw_fd()],
            )
            .wait(CMD_TIMEOUT);
        o.assert_ok();
        let init = rt.pid(&id);
        let allowed: &[&str] = if preserve.is_some() { &["3"] } else { &[] };
        // fd 3 is preserved on purpose: it may be the caller's directory.
        let host: Vec<(u64, u64)> = if preserve.is_some() {
            ids[1..].to_vec()
        } else {
            ids.clone()
        };
        let bad = suspicious_fds(init, allowed, &host);
        assert!(bad.is_empty(), "the created init holds: {bad:?}");

        rt.start(&id).assert_ok();
        let ok = wait_for(POLL_TIMEOUT, || o.read_stdout().contains("listed=1"));
        let out = o.read_stdout();
        assert!(ok, "no fd list: {out}");
        let fds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|k| k.starts_with("fd"))
            .collect();
        let want: &[&str] = if preserve.is_some() {
            &["fd0", "fd1", "fd2", "fd3"]
        } else {
            &["fd0", "fd1", "fd2"]
        };
        assert_eq!(fds, want, "fds of the container's process:\n{out}");
        // And from the host, the process (now sleep) holds just those.
        let pid = rt.pid(&id);
        let mut held: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        held.sort();
        let want: Vec<String> = want.iter().map(|f| f[2..].to_string()).collect();
        assert_eq!(
            held, want,
            "fds of the container's process seen from the host"
        );
        rt.delete_force(&id).assert_ok();
        assert_nothing_left(&rt, &id, &b);
    }
    canary.assert_untouched();
}

/// For each fd of `$P` (a pid, in the container) that is a directory other
/// than a procfs: walks `..` from it as far as it goes and prints
/// `ESCAPED fd N -> LINK` unless that ends at the container's `/`.
const FD_DIR_WALK: &str = r#"for f in /proc/$P/fd/*; do
  [ -d "$f" ] || continue
  [ "$(stat -f -c %T $f/ 2>/dev/null)" = proc ] && continue
  top=$(cd "$f" 2>/dev/null && i=0 && while [ $i -lt 64 ]; do cd -P .. || break; i=$((i+1)); done && stat -c %d:%i .) || continue
  [ "$top" = "$(stat -c %d:%i /)" ] || echo "ESCAPED $f -> $(readlink $f): $(ls $f/../../.. | head -5 | tr '\n' ' ')"
done; echo walked=1"#;

/// `--preserve-fds N` with fewer than N fds passed: whatever rt itself has
/// open in 3..3+N must not reach the container. A process exec'd into the
/// created container looks for a host directory among the waiting init's
/// fds (and walks `..` out of it), the container's process among its own.
#[test]
fn preserve_fds_beyond_the_passed_ones_leak_nothing() {
    require_root!();
    let rt = Runtime::new();
    for n in [1, 10] {
        let mut b = Bundle::busybox();
        b.sh(&format!("P=$$; {FD_DIR_WALK}; exec sleep 1000"));
        let id = rt.id(&format!("preserve{n}"));
        let o = rt.create_with(&id, &b, &["--preserve-fds", &n.to_string()]);
        if !o.success() {
            o.assert_err();
            eprintln!(
                "--preserve-fds {n} with no fds passed: refused: {}",
                o.stderr.trim()
            );
            assert_nothing_left(&rt, &id, &b);
            continue;
        }
        let init = rt.pid(&id);
        let held = suspicious_fds(init, &[], &[]);
        let walk = rt.exec(&["exec", &id, "sh", "-c", &format!("P=1; {FD_DIR_WALK}")]);
        // The same fds as an exec's cwd: refused, or inside.
        for fd in 3..3 + n + 8 {
            for cwd in [
                format!("/proc/1/fd/{fd}"),
                format!("/proc/1/fd/{fd}/../../.."),
            ] {
                let o = rt.exec(&["exec", "--cwd", &cwd, &id, "sh", "-c", CWD_CHECK]);
                if o.success() {
                    assert!(
                        o.stdout.contains("cwd=inside"),
                        "exec --cwd {cwd}: {}",
                        o.stdout
                    );
                }
            }
        }
        rt.start(&id).assert_ok();
        let ok = wait_for(POLL_TIMEOUT, || o.read_stdout().contains("walked=1"));
        let out = o.read_stdout();
        rt.delete_force(&id).assert_ok();
        assert_nothing_left(&rt, &id, &b);
        assert!(
            ok && walk.stdout.contains("walked=1"),
            "{out}\n{}",
            walk.stdout
        );
        assert!(
            held.is_empty() && !walk.stdout.contains("ESCAPED") && !out.contains("ESCAPED"),
            "--preserve-fds {n}: the created init holds {held:?}\n\
             from an exec'd process: {}\nthe container's process: {out}",
            walk.stdout
        );
    }
}

/// Walks `..` from the cwd as far as it goes: inside the container it ends
/// at the container's `/`; from a directory of the host it never meets it.
const CWD_CHECK: &str = "i=0; while [ $i -lt 64 ]; do cd -P .. 2>/dev/null || break; i=$((i+1)); done; \
     if [ \"$(stat -c %d:%i .)\" = \"$(stat -c %d:%i /)\" ]; then echo cwd=inside; \
     else echo \"cwd=ESCAPED top=$(stat -c %d:%i .) fs=$(stat -f -c %T .) ls=$(ls | head -8 | tr '\\n' ' ')\"; fi";

/// `process.cwd` = `/proc/self/fd/N`: whatever fd N of the init is when it
/// changes directory, the process must not start in a directory of the
/// host.
#[test]
fn cwd_through_proc_self_fd_is_refused_or_inside() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh(CWD_CHECK);
    let mut ran = Vec::new();
    for n in 3..20 {
        b.cwd(&format!("/proc/self/fd/{n}"));
        if let Ok(out) = run_or_refuse(&rt, &b, &format!("cwdfd{n}")) {
            assert!(out.contains("cwd=inside"), "cwd /proc/self/fd/{n}: {out}");
            ran.push(n);
        }
    }
    eprintln!("cwd /proc/self/fd/N ran (inside the container) for N in {ran:?}");
}

/// `exec --cwd /proc/self/fd/N`: the same for a process exec'd into a
/// running container.
#[test]
fn exec_cwd_through_proc_self_fd_is_refused_or_inside() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let id = rt.id("execcwdfd");
    rt.run_detached(&id, &b, &[]).assert_ok();
    let mut ran = Vec::new();
    for n in 3..20 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = rt.exec(&["exec", "--cwd", &cwd, &id, "sh", "-c", CWD_CHECK]);
        if o.success() {
            assert!(
                o.stdout.contains("cwd=inside"),
                "exec --cwd {cwd}: {}",
                o.stdout
            );
            ran.push(n);
        } else {
            o.assert_err();
        }
    }
    eprintln!("exec --cwd /proc/self/fd/N ran (inside the container) for N in {ran:?}");
    assert_eq!(rt.status(&id), "running");
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

// ---------------------------------------------------------------------------
// CVE-2021-30465 and kin: mount destinations through symlinks
// ---------------------------------------------------------------------------

/// A host directory with a file `payload`, to be bind-mounted.
fn payload_dir(b: &Bundle) -> String {
    let src = b.host_dir("src");
    fs::write(src.join("payload"), "payload\n").unwrap();
    src.to_str().unwrap().to_string()
}

/// Prints `PATH=found` for each path whose `payload` file is readable.
fn find_payload(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("if [ -e {p}/payload ]; then echo {p}=found; else echo {p}=missing; fi; "))
        .collect()
}

/// One container: its name, symlinks planted in the image (`(path,
/// target)`), mounts (`(destination, "bind" | "tmpfs")`, binds of a payload
/// dir) and where the payload must be found in the container.
type MountCase<'a> = (
    &'a str,
    Vec<(&'a str, String)>,
    Vec<(String, &'a str)>,
    Vec<String>,
);

/// Runs one container per case; a case is refused or its mounts are found
/// where the symlinks lead *inside* the rootfs. Returns how many cases ran.
fn mount_cases(canary: &Canary, cases: &[MountCase<'_>], prepare: impl Fn(&mut Bundle)) -> usize {
    let rt = Runtime::new();
    let mut ran = 0;
    for (name, links, mounts, inside) in cases {
        let mut b = Bundle::busybox();
        prepare(&mut b);
        let src = payload_dir(&b);
        for (link, target) in links {
            plant_symlink(&b, link, target);
        }
        for (dest, typ) in mounts {
            if *typ == "tmpfs" {
                b.mount(dest, "tmpfs", "tmpfs", &["size=64k"]);
            } else {
                b.bind(&src, dest, &["rbind", "ro"]);
            }
        }
        b.sh(&find_payload(inside));
        match run_or_refuse(&rt, &b, name) {
            Ok(out) => {
                ran += 1;
                let kv = kv_lines(&out);
                for p in inside {
                    assert_eq!(
                        kv.get(p).map(String::as_str),
                        Some("found"),
                        "{name}: {p}:\n{out}"
                    );
                }
            }
            Err(e) => eprintln!("mount case {name}: refused: {e}"),
        }
        canary.assert_untouched();
        assert_no_mounts(b.path());
    }
    ran
}

/// Symlinks in the image on the way to a mount destination: to `/`, to the
/// canary by absolute host path and by a `../` escape (with the directory
/// they name inside the rootfs there and missing), and dangling. Each mount
/// lands where the symlink leads *inside* the rootfs, or is refused.
#[test]
fn mount_destinations_through_symlinks_stay_inside() {
    require_root!();
    let canary = Canary::new();
    let uniq = format!("rt-sec-{}-{}", std::process::id(), next_n());
    let cname = canary
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let abs = canary.path().to_str().unwrap().to_string();
    let rel = canary.escape("");
    let cases = vec![
        (
            "to-root",
            vec![("/mnt/link", "/".to_string())],
            vec![(format!("/mnt/link/{uniq}"), "bind")],
            vec![format!("/{uniq}")],
        ),
        (
            "abs",
            vec![("/mnt/link", abs.clone())],
            vec![("/mnt/link/x".to_string(), "bind")],
            vec![format!("/tmp/{cname}/x")],
        ),
        (
            "rel",
            vec![("/mnt/link", rel.clone())],
            vec![("/mnt/link/sub".to_string(), "bind")],
            vec![format!("/tmp/{cname}/sub")],
        ),
        (
            "rel-tmpfs",
            vec![("/mnt/link", rel.clone())],
            vec![("/mnt/link/proc".to_string(), "tmpfs")],
            vec![],
        ),
        (
            "abs-file",
            vec![("/mnt/file", canary.join("file"))],
            vec![("/mnt/file".to_string(), "bind")],
            vec![format!("/tmp/{cname}/file")],
        ),
        (
            "dangling",
            vec![("/mnt/link", format!("/{uniq}-dangling/deeper"))],
            vec![("/mnt/link/x".to_string(), "bind")],
            vec![format!("/{uniq}-dangling/deeper/x")],
        ),
    ];
    // With the directories the links name missing from the rootfs (so rt
    // would have to create them), then present.
    let ran_missing = mount_cases(&canary, &cases, |_| {});
    let ran_present = mount_cases(&canary, &cases, |b| {
        for d in [
            format!("tmp/{cname}/x"),
            format!("tmp/{cname}/sub"),
            format!("{uniq}-dangling/deeper/x"),
        ] {
            fs::create_dir_all(b.rootfs().join(d)).unwrap();
        }
        fs::write(b.rootfs().join(format!("tmp/{cname}/file")), "").unwrap();
    });
    eprintln!("mount through symlinks: ran {ran_missing} (targets missing), {ran_present} (present) of {}", cases.len());
    assert!(ran_present >= 3, "almost everything refused");
    canary.assert_untouched();
    for p in [format!("/{uniq}"), format!("/{uniq}-dangling")] {
        assert!(!Path::new(&p).exists(), "{p} created on the host");
    }
}

/// Symlinks that only appear once an earlier mount is made: a host
/// directory bind-mounted into the container holds symlinks out (absolute
/// and `../`), and later mounts go through them; another mount goes under
/// an earlier tmpfs.
#[test]
fn mount_destinations_through_earlier_mounts_stay_inside() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let cname = canary
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let cases = [
        ("abs", "/mnt/h/abs/x", format!("/tmp/{cname}/x")),
        ("rel", "/mnt/h/rel/y", format!("/tmp/{cname}/sub/y")),
        ("up", "/mnt/h/up/up/z", "/mnt/up/z".to_string()),
        ("tmpfs", "/mnt/t/a/b", "/mnt/t/a/b".to_string()),
    ];
    let mut ran = 0;
    for present in [false, true] {
        for (name, dest, inside) in &cases {
            let mut b = Bundle::busybox();
            let src = payload_dir(&b);
            let h = b.host_dir("links");
            std::os::unix::fs::symlink(canary.path(), h.join("abs")).unwrap();
            std::os::unix::fs::symlink(canary.escape("sub"), h.join("rel")).unwrap();
            std::os::unix::fs::symlink("..", h.join("up")).unwrap();
            if present {
                fs::create_dir_all(b.rootfs().join(format!("tmp/{cname}/sub"))).unwrap();
            }
            let h_before = snapshot(&h);
            b.bind(h.to_str().unwrap(), "/mnt/h", &["rbind", "rw"])
                .mount("/mnt/t", "tmpfs", "tmpfs", &["size=64k"])
                .bind(&src, dest, &["rbind", "ro"])
                .sh(&find_payload(std::slice::from_ref(inside)));
            match run_or_refuse(&rt, &b, &format!("early-{name}-{present}")) {
                Ok(out) => {
                    ran += 1;
                    assert!(out.contains(&format!("{inside}=found")), "{dest}:\n{out}");
                }
                Err(e) => eprintln!("mount {dest} (present {present}): refused: {e}"),
            }
            canary.assert_untouched();
            assert_eq!(snapshot(&h), h_before, "the bind-mounted host dir changed");
            assert_no_mounts(b.path());
        }
    }
    eprintln!(
        "mounts through earlier mounts: ran {ran} of {}",
        2 * cases.len()
    );
    assert!(ran >= 4, "almost everything refused");
    assert!(!Path::new("/z").exists(), "/z created on the host");
}

/// `renameat2(RENAME_EXCHANGE)`: swap two names atomically.
fn exchange(a: &Path, b: &Path) -> bool {
    let ca = std::ffi::CString::new(a.as_os_str().as_encoded_bytes()).unwrap();
    let cb = std::ffi::CString::new(b.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings.
    unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        ) == 0
    }
}

/// A host process flips a directory of the rootfs with a symlink to the
/// canary (absolute, then by `../`) in a tight loop while containers with a
/// mount through it are run again and again: the canary never gets a mount
/// or a write, and each mount is found inside the container.
#[test]
fn mount_destination_swapped_during_setup_stays_inside() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = payload_dir(&b);
    let cname = canary
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mnt = b.rootfs().join("mnt");
    fs::create_dir_all(mnt.join("flip/flipx")).unwrap();
    b.bind(&src, "/mnt/flip/flipx", &["rbind", "ro"]);
    // The mount may be on the directory (under either name) or, through the
    // symlink, on /tmp/<canary>/flipx of the rootfs.
    b.sh(&format!(
        "i=0; while [ $i -lt 50 ]; do \
           for p in /mnt/flip/flipx /mnt/alt/flipx /tmp/{cname}/flipx; do \
             [ -e $p/payload ] && {{ echo found=$p; exit 0; }}; done; i=$((i+1)); done; echo found=MISSING"
    ));
    let (mut ran, mut refused) = (0, 0);
    for target in [
        canary.path().to_str().unwrap().to_string(),
        canary.escape(""),
    ] {
        let _ = fs::remove_file(mnt.join("alt"));
        std::os::unix::fs::symlink(&target, mnt.join("alt")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flipper = {
            let stop = stop.clone();
            let (a, b) = (mnt.join("flip"), mnt.join("alt"));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += exchange(&a, &b) as u64;
                }
                n
            })
        };
        for i in 0..25 {
            match run_or_refuse(&rt, &b, &format!("flip{i}")) {
                Ok(out) => {
                    ran += 1;
                    assert!(
                        out.contains("found=/") && !out.contains("MISSING"),
                        "round {i} ({target}): mount not in the container:\n{out}"
                    );
                }
                Err(e) => {
                    refused += 1;
                    eprintln!("round {i}: {e}");
                }
            }
            canary.assert_untouched();
        }
        stop.store(true, Ordering::Relaxed);
        let flips = flipper.join().unwrap();
        assert!(flips > 100, "only {flips} flips");
        // Leave the directory at its own name for the next round.
        if fs::symlink_metadata(mnt.join("flip")).unwrap().is_symlink() {
            exchange(&mnt.join("flip"), &mnt.join("alt"));
        }
    }
    eprintln!("swapped mount destination: {ran} runs, {refused} refused");
    canary.assert_untouched();
    assert_no_mounts(b.path());
}

// ---------------------------------------------------------------------------
// Hostile /proc, /dev, /dev/null, /dev/console in the image
// ---------------------------------------------------------------------------

/// The image's `/proc` is a symlink (to `/`, `/tmp`, the canary by absolute
/// path and by `../`): refused, or proc mounted inside the rootfs.
#[test]
fn proc_symlink_in_image() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    for (i, target) in [
        "/".to_string(),
        "/tmp".to_string(),
        canary.join("proc"),
        canary.escape("proc"),
    ]
    .iter()
    .enumerate()
    {
        let mut b = Bundle::busybox();
        plant_symlink(&b, "/proc", target);
        b.sh("echo fs=$(stat -f -c %T /proc/); echo self=$(readlink /proc/self); echo kcore=$(stat -c %t:%T /proc/kcore)");
        match run_or_refuse(&rt, &b, &format!("procsym{i}")) {
            Ok(out) => {
                let kv = kv_lines(&out);
                assert_eq!(
                    kv.get("fs").map(String::as_str),
                    Some("proc"),
                    "{target}: {out}"
                );
                assert_eq!(
                    kv.get("self").map(String::as_str),
                    Some("1"),
                    "{target}: {out}"
                );
                eprintln!("/proc -> {target}: ran, proc inside");
            }
            Err(e) => eprintln!("/proc -> {target}: refused: {e}"),
        }
        canary.assert_untouched();
    }
}

/// The image's `/dev` is a symlink (to `/etc` inside, to the canary by
/// absolute path and by `../`), with rt's /dev tmpfs and without (rt makes
/// the devices in the image's /dev): nothing of the host changes.
#[test]
fn dev_symlink_in_image() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let cname = canary.path().file_name().unwrap().to_str().unwrap();
    let mut ran = 0;
    for (i, target) in ["/etc".to_string(), canary.join("dev"), canary.escape("dev")]
        .iter()
        .enumerate()
    {
        // With what the link names inside the rootfs missing, then there.
        for (tmpfs, present) in [(true, false), (false, false), (true, true), (false, true)] {
            let mut b = Bundle::busybox();
            plant_symlink(&b, "/dev", target);
            if present {
                fs::create_dir_all(b.rootfs().join(format!("tmp/{cname}/dev"))).unwrap();
            }
            if !tmpfs {
                b.remove_mount("/dev");
            }
            b.sh(DEV_SCRIPT);
            match run_or_refuse(&rt, &b, &format!("devsym{i}{tmpfs}")) {
                Ok(out) => {
                    ran += 1;
                    assert_real_dev_null(&out);
                }
                Err(e) => {
                    eprintln!("/dev -> {target} (tmpfs {tmpfs}, present {present}): refused: {e}")
                }
            }
            canary.assert_untouched();
        }
    }
    assert!(ran >= 4, "only {ran} of 12 ran");
}

/// CVE-2025-31133: the image's `/dev/null` is a symlink to the canary (by
/// absolute path and by `../`) or a regular file, with rt's /dev tmpfs,
/// without (rt makes the devices in the image's /dev) and, without it, in
/// a user namespace (rt bind-mounts the host's devices): the container's
/// /dev/null and the masked paths are the real 1:3 device, and the canary
/// is untouched.
#[test]
fn dev_null_hostile_in_image() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let targets = [
        Some(canary.join("null")),
        Some(canary.escape("null")),
        None, // a regular file
    ];
    for (i, target) in targets.iter().enumerate() {
        for (tmpfs, userns) in [(true, false), (false, false), (false, true)] {
            let mut b = Bundle::busybox();
            match target {
                Some(t) => plant_symlink(&b, "/dev/null", t),
                None => {
                    b.write_rootfs_file("/dev/null", "not a device\n");
                }
            }
            if !tmpfs {
                b.remove_mount("/dev");
            }
            if userns {
                own_busybox(&b);
                b.add_namespace("user")
                    .uid_mappings(0, 100000, 65536)
                    .gid_mappings(0, 100000, 65536);
                let ok = Command::new("chown")
                    .args(["-R", "100000:100000"])
                    .arg(b.rootfs())
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
            b.sh(DEV_SCRIPT);
            let what = format!("/dev/null = {target:?}, /dev tmpfs {tmpfs}, userns {userns}");
            match run_or_refuse(&rt, &b, &format!("devnull{i}")) {
                Ok(out) => {
                    assert_real_dev_null(&out);
                    eprintln!("{what}: ran");
                }
                Err(e) => eprintln!("{what}: refused: {e}"),
            }
            canary.assert_untouched();
        }
    }
}

/// CVE-2025-52565: the image's `/dev/console` is a symlink to the canary
/// (absolute, `../`), with `terminal: true`: the pty is bind-mounted at the
/// container's /dev/console, and the host canary stays as it was. With and
/// without rt's /dev tmpfs.
#[test]
fn dev_console_symlink_in_image() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    for (i, target) in [canary.join("console"), canary.escape("console")]
        .iter()
        .enumerate()
    {
        for tmpfs in [true, false] {
            let mut b = Bundle::busybox();
            plant_symlink(&b, "/dev/console", target);
            if !tmpfs {
                b.remove_mount("/dev");
            }
            b.terminal(true).sh(
                "echo tty=$(tty); echo console=$(stat -c %F:%t:%T /dev/console); \
                 echo pty=$(stat -c %F:%t:%T $(tty)); echo hi > /dev/console && echo write=ok",
            );
            let sock = ConsoleSocket::bind(b.path().join("console.sock"));
            let id = rt.id(&format!("console{i}{tmpfs}"));
            let o = rt.create_with(&id, &b, &["--console-socket", sock.path_str()]);
            let what = format!("/dev/console -> {target}, /dev tmpfs {tmpfs}");
            if !o.success() {
                o.assert_err();
                eprintln!("{what}: refused: {}", o.stderr.trim());
                assert_nothing_left(&rt, &id, &b);
                canary.assert_untouched();
                continue;
            }
            let (master, _) = sock
                .recv_master(Duration::from_secs(10))
                .expect("no pty master");
            rt.start(&id).assert_ok();
            let out = String::from_utf8_lossy(&read_fd_to_end(
                master.as_raw_fd(),
                Duration::from_secs(10),
            ))
            .replace('\r', "");
            rt.wait_status(&id, "stopped");
            rt.delete(&id).assert_ok();
            let kv = kv_lines(&out);
            assert!(
                kv.get("tty").is_some_and(|t| t.starts_with("/dev/pts/")),
                "{what}: {out}"
            );
            let pty = kv.get("pty").cloned().unwrap_or_default();
            assert!(
                pty.starts_with("character special file:88:"),
                "{what}: {out}"
            );
            assert_eq!(
                kv.get("console"),
                Some(&pty),
                "{what}: /dev/console is not the pty: {out}"
            );
            assert_eq!(
                kv.get("write").map(String::as_str),
                Some("ok"),
                "{what}: {out}"
            );
            assert_nothing_left(&rt, &id, &b);
            canary.assert_untouched();
        }
    }
}

// ---------------------------------------------------------------------------
// CVE-2025-52881: rt's own writes to /proc cannot be redirected
// ---------------------------------------------------------------------------

/// `(pid, netns value of ip_forward)` of a created container, read from a
/// real procfs in its network namespace.
fn ip_forward_in(pid: i64) -> String {
    let o = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["cat", "/proc/sys/net/ipv4/ip_forward"])
        .output()
        .expect("nsenter");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A config bind-mounts a host directory (a fake "proc" with the files rt
/// writes) over `/proc/sys` or over `/proc`, with `linux.sysctl` and
/// `oomScoreAdj`: nothing lands in the host directory, and the sysctl and
/// the score are really set (seen through a real procfs), or the config is
/// refused.
#[test]
fn proc_covered_by_a_bind_mount() {
    require_root!();
    require!(
        Command::new("nsenter").arg("--version").output().is_ok(),
        "nsenter(1)"
    );
    let host_forward = read("/proc/sys/net/ipv4/ip_forward");
    let rt = Runtime::new();
    for over in ["/proc/sys", "/proc"] {
        let mut canary = Canary::new();
        let fake = canary.path().to_path_buf();
        // What rt might write to through the container's /proc.
        for (f, v) in [
            ("sys/net/ipv4/ip_forward", "0\n"),
            ("sys/kernel/domainname", "fake\n"),
            ("net/ipv4/ip_forward", "0\n"),
            ("self/oom_score_adj", "0\n"),
            ("self/attr/exec", ""),
            ("self/attr/keycreate", ""),
            ("self/setgroups", "allow\n"),
            ("self/uid_map", ""),
            ("self/gid_map", ""),
            ("thread-self/attr/exec", ""),
            ("1/oom_score_adj", "0\n"),
        ] {
            let base = if over == "/proc/sys" {
                match f.strip_prefix("sys/") {
                    Some(r) => r.to_string(),
                    None => continue,
                }
            } else {
                f.to_string()
            };
            let p = fake.join(base);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, v).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        canary.snap = snapshot(&fake);
        let mut b = Bundle::busybox();
        b.bind(fake.to_str().unwrap(), over, &["rbind", "rw"])
            .sysctl("net.ipv4.ip_forward", "1")
            .oom_score_adj(500)
            .args(&["sleep", "1000"]);
        let id = rt.id("procbind");
        let o = rt.create(&id, &b);
        if o.success() {
            let pid = rt.pid(&id);
            assert_eq!(ip_forward_in(pid), "1", "bind over {over}: sysctl not set");
            assert_eq!(
                read(format!("/proc/{pid}/oom_score_adj")).trim(),
                "500",
                "bind over {over}: oomScoreAdj not set"
            );
            rt.start(&id).assert_ok();
            rt.delete_force(&id).assert_ok();
        } else {
            o.assert_err();
            eprintln!("bind over {over}: refused: {}", o.stderr.trim());
        }
        assert_nothing_left(&rt, &id, &b);
        canary.assert_untouched();
        assert_eq!(read("/proc/sys/net/ipv4/ip_forward"), host_forward);
    }
}

// ---------------------------------------------------------------------------
// Hostile callers and faults: CLI paths, kills, hooks, cgroupsPath
// ---------------------------------------------------------------------------

/// `--pid-file` is a symlink to the canary (an existing file, a file not
/// there yet): rt does not write through it; the pid file ends up a regular
/// file with the pid, or create fails with nothing left. Also for
/// `exec --pid-file`.
#[test]
fn pid_file_symlink_is_not_followed() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let new_in_canary = canary.path().join("newpid");
    for (i, target) in [
        canary.join("file"),
        new_in_canary.to_str().unwrap().to_string(),
    ]
    .iter()
    .enumerate()
    {
        let link = rt.scratch().join(format!("pid{i}"));
        std::os::unix::fs::symlink(target, &link).unwrap();
        let id = rt.id(&format!("pidlink{i}"));
        let o = rt.create_with(&id, &b, &["--pid-file", link.to_str().unwrap()]);
        if o.success() {
            let m = fs::symlink_metadata(&link).unwrap();
            assert!(m.is_file(), "pid file is not a regular file: {m:?}");
            assert_eq!(read(&link).trim(), rt.pid(&id).to_string());
            let exec_link = rt.scratch().join(format!("execpid{i}"));
            std::os::unix::fs::symlink(target, &exec_link).unwrap();
            rt.start(&id).assert_ok();
            let o = rt.exec(&[
                "exec",
                "-d",
                "--pid-file",
                exec_link.to_str().unwrap(),
                &id,
                "sleep",
                "100",
            ]);
            if o.success() {
                assert!(fs::symlink_metadata(&exec_link).unwrap().is_file());
            } else {
                o.assert_err();
            }
            rt.delete_force(&id).assert_ok();
        } else {
            o.assert_err();
        }
        assert_nothing_left(&rt, &id, &b);
        assert!(
            !new_in_canary.exists(),
            "pid file written through the symlink"
        );
        canary.assert_untouched();
    }
}

/// `--console-socket` names a symlink to a socket, a symlink to the canary,
/// a regular file, a directory, nothing, a datagram socket, a socket whose
/// listener is gone, and a socket nobody accepts on: create fails cleanly
/// (in bounded time, nothing left) or works without harm.
#[test]
fn console_socket_paths() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true).args(&["sleep", "1000"]);
    let dir = rt.scratch().join("sockets");
    fs::create_dir(&dir).unwrap();
    let good = ConsoleSocket::bind(dir.join("good.sock"));
    let _dgram = std::os::unix::net::UnixDatagram::bind(dir.join("dgram.sock")).unwrap();
    let _silent = std::os::unix::net::UnixListener::bind(dir.join("silent.sock")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(dir.join("dead.sock")).unwrap());
    std::os::unix::fs::symlink(dir.join("good.sock"), dir.join("link-to-good")).unwrap();
    std::os::unix::fs::symlink(canary.join("file"), dir.join("link-to-canary")).unwrap();
    std::os::unix::fs::symlink(canary.escape("file"), dir.join("rel-to-canary")).unwrap();
    let cases = [
        ("link-to-good", dir.join("link-to-good")),
        ("link-to-canary", dir.join("link-to-canary")),
        ("rel-to-canary", dir.join("rel-to-canary")),
        ("regular file", PathBuf::from(canary.join("file"))),
        ("directory", canary.path().to_path_buf()),
        ("missing", dir.join("missing.sock")),
        ("datagram socket", dir.join("dgram.sock")),
        ("dead listener", dir.join("dead.sock")),
        ("nobody accepts", dir.join("silent.sock")),
    ];
    for (what, path) in cases {
        let id = rt.id("consock");
        let t = Instant::now();
        let o = rt.create_with(&id, &b, &["--console-socket", path.to_str().unwrap()]);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: create took {:?}",
            t.elapsed()
        );
        if o.success() {
            eprintln!("console socket {what}: create succeeded");
            if what == "link-to-good" {
                let (m, _) = good.recv_master(Duration::from_secs(5)).expect("no master");
                assert!(is_pty_master(m.as_raw_fd()));
            }
            rt.delete_force(&id).assert_ok();
        } else {
            o.assert_err();
            eprintln!("console socket {what}: refused: {}", o.stderr.trim());
        }
        assert_nothing_left(&rt, &id, &b);
        canary.assert_untouched();
    }
}

/// `rt create` SIGKILLed at delays from 0 to 50 ms after it was spawned,
/// then `delete --force`: nothing is left each time (no state, cgroup,
/// mount, process), however far create got.
#[test]
fn create_killed_at_random_points_then_delete_force() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    b.save();
    let mut outcomes = BTreeMap::<String, usize>::new();
    for i in 0..20u64 {
        let id = rt.id(&format!("killed{i}"));
        let create = rt.spawn(&["create", "--bundle", b.path_str(), &id]);
        std::thread::sleep(Duration::from_micros(i * 2500));
        sigkill(create.pid() as i32);
        let o = create.wait(CMD_TIMEOUT);
        let how = if o.success() {
            "finished".to_string()
        } else {
            match std::os::unix::process::ExitStatusExt::signal(&o.status) {
                Some(9) => "killed".to_string(),
                _ => format!("failed: {}", o.stderr.trim()),
            }
        };
        *outcomes.entry(how).or_default() += 1;
        let d = rt.delete_force(&id);
        d.assert_ok();
        assert!(rt.try_state(&id).is_err(), "{id} still exists");
        assert_nothing_left(&rt, &id, &b);
    }
    eprintln!("create killed at 0..50 ms: {outcomes:?}");
}

/// `rt create` SIGKILLed while a createRuntime hook sleeps (the init is
/// made and in its cgroup, the state is saved as "creating"): `delete
/// --force` cleans up everything. (errors.rs kills it during prestart.)
#[test]
fn create_killed_in_create_runtime_hook_then_delete_force() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let dir = b.host_dir("hook");
    let d = dir.display();
    b.hook(
        "createRuntime",
        "/bin/sh",
        &["sh", "-c", &format!("echo $$ > {d}/pid; exec sleep 30")],
        None,
    );
    b.save();
    let id = rt.id("killedhook");
    let create = rt.spawn(&["create", "--bundle", b.path_str(), &id]);
    assert!(
        wait_for(POLL_TIMEOUT, || !read(dir.join("pid")).trim().is_empty()),
        "hook did not run"
    );
    sigkill(create.pid() as i32);
    create.wait(CMD_TIMEOUT);
    rt.delete_force(&id).assert_ok();
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
    // The orphaned hook is a host process, not the container's: tidy up.
    let hook: i32 = read(dir.join("pid")).trim().parse().unwrap();
    if read(format!("/proc/{hook}/cmdline")).starts_with("sleep\0") {
        sigkill(hook);
    }
}

/// A hook that hangs past its `timeout` is killed, create fails within
/// timeout + slack and leaves nothing; a hook that exits at once but leaves
/// a child holding its stdout and stderr does not hold create up.
#[test]
fn hanging_hooks() {
    require_root!();
    let rt = Runtime::new();
    for kind in ["createRuntime", "createContainer"] {
        let mut b = Bundle::busybox();
        b.args(&["true"]);
        let dir = b.host_dir("hook");
        b.hook(
            kind,
            "/bin/sh",
            &[
                "sh",
                "-c",
                &format!("echo $$ > {}/pid; exec sleep 60", dir.display()),
            ],
            Some(1),
        );
        let id = rt.id("hookhang");
        let t = Instant::now();
        rt.create(&id, &b).assert_err();
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "{kind}: create took {:?} with a 1 s hook timeout",
            t.elapsed()
        );
        assert_nothing_left(&rt, &id, &b);
        let hook: i64 = read(dir.join("pid")).trim().parse().unwrap_or(0);
        assert!(
            wait_for(Duration::from_secs(3), || !pid_alive(hook)
                || !read(format!("/proc/{hook}/cmdline")).starts_with("sleep\0")),
            "{kind}: the timed-out hook {hook} is still running"
        );
    }
    // Exits at once, its child keeps the pipes: create must not wait for it.
    let mut b = Bundle::busybox();
    b.args(&["true"]);
    let dir = b.host_dir("hook");
    b.hook(
        "prestart",
        "/bin/sh",
        &[
            "sh",
            "-c",
            &format!("sleep 30 & echo $! > {}/pid; exit 0", dir.display()),
        ],
        None,
    );
    let id = rt.id("hookbg");
    let t = Instant::now();
    let o = rt.create(&id, &b);
    let took = t.elapsed();
    let child: i32 = read(dir.join("pid")).trim().parse().unwrap_or(0);
    if child > 0 {
        sigkill(child);
    }
    o.assert_ok();
    assert!(
        took < Duration::from_secs(10),
        "create waited {took:?} for the hook's child"
    );
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
}

/// Failing poststart and poststop hooks: the container still runs, and
/// `delete` still deletes it (the spec: warnings only).
#[test]
fn failing_poststart_and_poststop_hooks() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"])
        .hook("poststart", "/bin/sh", &["sh", "-c", "exit 1"], None)
        .hook("poststop", "/bin/sh", &["sh", "-c", "exit 1"], None);
    let id = rt.id("hookpost");
    rt.create(&id, &b).assert_ok();
    let o = rt.start(&id);
    eprintln!(
        "start with a failing poststart hook: {:?} {}",
        o.code(),
        o.stderr.trim()
    );
    rt.delete_force(&id).assert_ok();
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
    // And a plain delete of a stopped container.
    let mut b = Bundle::busybox();
    b.args(&["true"])
        .hook("poststop", "/bin/false", &["false"], None);
    let id = rt.id("hookpoststop");
    rt.create_start(&id, &b);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).assert_ok();
    assert!(rt.try_state(&id).is_err());
    assert_nothing_left(&rt, &id, &b);
}

/// Cgroup dirs on the host whose name is `name`, outside the hierarchies:
/// in /tmp, in the parent of the hierarchies (a tmpfs on v1 hosts) and its
/// parent.
fn stray_cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut places = vec![PathBuf::from("/tmp"), PathBuf::from("/")];
    for (mp, _) in cgroup_mounts() {
        let mut p = mp.as_path();
        while let Some(parent) = p.parent() {
            places.push(parent.to_path_buf());
            p = parent;
        }
    }
    places.sort();
    places.dedup();
    places
        .into_iter()
        .map(|p| p.join(name))
        .filter(|p| p.exists())
        .collect()
}

/// `cgroupsPath` climbing out with `..`: no directory appears outside the
/// cgroup hierarchies, the container's cgroup is inside them, and delete
/// removes it.
#[test]
fn cgroups_path_climbing_out() {
    require_root!();
    let rt = Runtime::new();
    let n = format!("rtsec{}x{}", std::process::id(), next_n());
    for path in [
        format!("/../../../../tmp/{n}"),
        format!("../../{n}"),
        format!("../../../../../../{n}"),
        format!("/a/../../../{n}/b"),
    ] {
        let mut b = Bundle::busybox();
        b.set_cgroups_path(Some(&path)).args(&["sleep", "1000"]);
        let id = rt.id("cgclimb");
        let o = rt.create(&id, &b);
        assert!(
            stray_cgroup_dirs(&n).is_empty(),
            "cgroupsPath {path}: made {:?}",
            stray_cgroup_dirs(&n)
        );
        if o.success() {
            let pid = rt.pid(&id);
            let cg = read(format!("/proc/{pid}/cgroup"));
            let mut dirs = Vec::new();
            for (mp, key) in cgroup_mounts() {
                let line = cg
                    .lines()
                    .find(|l| l.split(':').nth(1) == Some(key.as_str()))
                    .unwrap_or_else(|| panic!("no line for {key:?} in\n{cg}"));
                let rel = line.splitn(3, ':').nth(2).unwrap();
                let dir = mp.join(rel.trim_start_matches('/'));
                let canon = fs::canonicalize(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
                assert!(canon.starts_with(&mp), "cgroup {canon:?} outside {mp:?}");
                if rel.contains(&n) {
                    dirs.push(canon);
                }
            }
            assert!(
                !dirs.is_empty(),
                "cgroupsPath {path}: container's cgroups:\n{cg}"
            );
            rt.delete_force(&id).assert_ok();
            for d in dirs {
                assert!(
                    wait_for(Duration::from_secs(3), || !d.exists()),
                    "{d:?} left"
                );
            }
        } else {
            o.assert_err();
            eprintln!("cgroupsPath {path}: refused: {}", o.stderr.trim());
        }
        assert_no_state(&rt, &id);
        assert_no_mounts(b.path());
        assert_no_processes(&b.rootfs(), None);
        assert!(stray_cgroup_dirs(&n).is_empty());
        b.set_cgroups_path(None);
    }
}

// ---------------------------------------------------------------------------
// Rootless
// ---------------------------------------------------------------------------

/// A busybox bundle with the config of `rt spec --rootless` run as `user`
/// (not yet handed over: see [`User::own`]).
fn rootless_bundle(user: &User) -> Bundle {
    let spec_dir = user.dir.join(format!("spec{}", next_n()));
    fs::create_dir(&spec_dir).unwrap();
    chown_r(&spec_dir, user.uid, user.gid);
    let o = user.rt_raw(
        &[],
        &["spec", "--rootless", "--bundle", spec_dir.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut b = Bundle::busybox();
    b.config = serde_json::from_str(&read(spec_dir.join("config.json"))).unwrap();
    assert_eq!(
        b.config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}]),
        "rt spec --rootless as the user"
    );
    b.terminal(false);
    b
}

/// A rootless rt cannot mount the overlay that seals its binary and runs
/// from a sealed memfd copy instead: the created init's executable cannot
/// be written, by the user itself on the host (who owns the memfd and the
/// container's user namespace: at least as strong as the container's root)
/// nor from inside the container (an `exec`'d process).
fn rootless_seal(from_inside: bool) {
    let user = User::get();
    let guard = BinaryGuard::new();
    let mut b = rootless_bundle(&user);
    b.args(&["sleep", "1000"]);
    user.own(&mut b);
    let id = format!("rtsec-rlseal-{}", next_n());
    let o = user.rt(&[], &["create", "--bundle", b.path_str(), &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = user.rt(&[], &["state", &id]);
    let pid = serde_json::from_slice::<serde_json::Value>(&st.stdout).unwrap()["pid"]
        .as_i64()
        .unwrap();
    let e = if from_inside {
        let script = format!(
            "{WRITE_EXE}
echo exe=$(readlink /proc/1/exe)
for p in /proc/1/exe /proc/self/../1/exe /proc/1/map_files/*; do try $p; done"
        );
        user.rt(&[], &["exec", &id, "sh", "-c", &script])
    } else {
        let script = format!(
            "{WRITE_EXE}
echo exe=$(readlink /proc/{pid}/exe)
for p in /proc/{pid}/exe /proc/{pid}/map_files/*; do try $p; done"
        );
        user.run(
            &[],
            host_busybox().to_str().unwrap(),
            &["sh", "-c", &script],
        )
    };
    let d = user.rt(&[], &["delete", "--force", &id]);
    let out = String::from_utf8_lossy(&e.stdout);
    assert!(
        e.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&e.stderr)
    );
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(out.contains("denied /proc/"), "no attempt made:\n{out}");
    assert!(
        !out.contains("WROTE") && !out.contains("OPENED-RW"),
        "the rootless created init's executable was writable:\n{out}"
    );
    assert_no_mounts(b.path());
    assert_no_processes(&b.rootfs(), None);
    guard.assert_unchanged();
}

#[test]
fn rootless_created_init_exe_is_not_writable() {
    require_root!();
    rootless_seal(false);
}

#[test]
fn rootless_created_init_exe_is_not_writable_from_inside() {
    require_root!();
    rootless_seal(true);
}

/// An unprivileged user runs a container from `rt spec --rootless`'s
/// config: it runs as uid 0 of a one-line uid map (the user), cannot write
/// root's host files through a read-only bind mount (even world-writable
/// ones, nor by remounting) or root's 0644 files through a read-write one,
/// and its state is under `$XDG_RUNTIME_DIR/rt` when no `--root` is given.
#[test]
fn rootless_container_stays_in_its_bounds() {
    require_root!();
    require!(
        Command::new("runuser").arg("--help").output().is_ok(),
        "runuser(1)"
    );
    let user = User::get();
    let host_bb = fs::metadata(host_busybox()).unwrap();

    // Root's host files: world-writable and private, in a root-owned dir.
    let mut canary = Canary::new();
    for d in [canary.path().to_path_buf(), canary.path().join("sub")] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(canary.path().join("private"), "root only\n").unwrap();
    fs::set_permissions(
        canary.path().join("private"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    canary.snap = snapshot(canary.path());

    let mut b = rootless_bundle(&user);
    let out = user.dir.join("out");
    fs::create_dir(&out).unwrap();
    let xdg = user.dir.join("xdg");
    fs::create_dir(&xdg).unwrap();
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    chown_r(&out, user.uid, user.gid);
    chown_r(&xdg, user.uid, user.gid);
    let c = canary.path().to_str().unwrap();
    b.bind(c, "/ro", &["rbind", "ro"])
        .bind(c, "/rw", &["rbind", "rw"])
        .bind(out.to_str().unwrap(), "/out", &["rbind", "rw"])
        .sh(
            "{ echo uid=$(id -u); echo maplines=$(wc -l < /proc/self/uid_map); \
               echo map=$(cat /proc/self/uid_map); \
               for f in /ro/file /ro/private /ro/sub/file /ro/x/file /rw/private; do \
                 if { echo x >> $f; } 2>/dev/null; then echo \"WROTE $f\"; fi; done; \
               for f in /ro/new /rw/new /ro/x/new; do touch $f 2>/dev/null && echo \"WROTE $f\"; done; \
               mount -o remount,rw,bind /ro 2>/dev/null && echo REMOUNTED; \
               mount -o remount,rw /ro 2>/dev/null && echo REMOUNTED; \
               echo done=1; } > /out/result; exec sleep 1000",
        );
    user.own(&mut b);

    let env = [("XDG_RUNTIME_DIR", xdg.display().to_string())];
    let id = format!("rtsec-rootless-{}", next_n());
    let bundle = b.path_str().to_string();
    let o = user.rt_raw(&env, &["run", "-d", "--bundle", &bundle, &id]);
    let cleanup = |user: &User| {
        user.rt_raw(&env, &["delete", "--force", &id]);
    };
    if !o.status.success() {
        cleanup(&user);
        panic!("rootless run: {}", String::from_utf8_lossy(&o.stderr));
    }
    let state_dir = xdg.join("rt").join(&id);
    let in_state = state_dir.is_dir();
    let st = user.rt_raw(&env, &["state", &id]);
    let done = wait_for(POLL_TIMEOUT, || read(out.join("result")).contains("done=1"));
    let result = read(out.join("result"));
    let d = user.rt_raw(&env, &["delete", "--force", &id]);
    assert!(
        d.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&d.stderr)
    );
    assert!(in_state, "no state at {}", state_dir.display());
    assert!(!Path::new("/run/rt").join(&id).exists(), "state in /run/rt");
    assert!(
        st.status.success(),
        "state: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(!state_dir.exists(), "state left at {}", state_dir.display());
    assert!(done, "no result: {result}");
    let kv = kv_lines(&result);
    assert_eq!(kv["uid"], "0", "{result}");
    assert_eq!(kv["maplines"], "1", "{result}");
    assert_eq!(kv["map"], format!("0 {} 1", user.uid), "{result}");
    assert!(
        !result.contains("WROTE") && !result.contains("REMOUNTED"),
        "root's files written:\n{result}"
    );
    assert_no_mounts(b.path());
    assert_no_processes(&b.rootfs(), None);
    canary.assert_untouched();
    let bb = fs::metadata(host_busybox()).unwrap();
    assert_eq!(
        (bb.uid(), bb.gid(), bb.mode()),
        (host_bb.uid(), host_bb.gid(), host_bb.mode())
    );
}

// ---------------------------------------------------------------------------
// tmpcopyup, cwd and sysctl keys
// ---------------------------------------------------------------------------

/// An image whose `/data` holds symlinks to the canary (absolute, `../`, a
/// file and a directory), and a file and a directory that a racer swaps
/// with such symlinks (`swapf`/`swapf.alt`, `swapd`/`swapd.alt`); a tmpfs
/// with `tmpcopyup` on `/data`. The container prints what of the canary it
/// can read there.
fn copyup_bundle(canary: &Canary) -> Bundle {
    let mut b = Bundle::busybox();
    let data = b.rootfs().join("data");
    fs::create_dir_all(data.join("d")).unwrap();
    fs::write(data.join("own"), "image file\n").unwrap();
    fs::write(data.join("d/own"), "image file\n").unwrap();
    std::os::unix::fs::symlink(canary.join("file"), data.join("abs")).unwrap();
    std::os::unix::fs::symlink(canary.escape("file"), data.join("rel")).unwrap();
    std::os::unix::fs::symlink(canary.path(), data.join("absdir")).unwrap();
    std::os::unix::fs::symlink(canary.escape(""), data.join("reldir")).unwrap();
    fs::write(data.join("swapf"), "image file\n").unwrap();
    std::os::unix::fs::symlink(canary.join("file"), data.join("swapf.alt")).unwrap();
    fs::create_dir(data.join("swapd")).unwrap();
    fs::write(data.join("swapd/own"), "image file\n").unwrap();
    std::os::unix::fs::symlink(canary.path(), data.join("swapd.alt")).unwrap();
    // With DAC_OVERRIDE: rt leaves the tmpfs's root at mode 000 (see
    // tmpcopyup_keeps_the_mode_of_the_image_dir).
    b.all_caps(&["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"])
        .mount("/data", "tmpfs", "tmpfs", &["tmpcopyup", "size=1m"])
        .sh("cat /data/own /data/d/own; grep -rs canary /data/ /data/*/ /data/*/*/ | head -5; echo checked=1");
    b
}

#[track_caller]
fn check_copyup(out: &str, what: &str) {
    assert!(out.contains("checked=1"), "{what}: {out}");
    assert!(out.contains("image file"), "{what}: no copy up: {out}");
    assert!(
        !out.contains("canary"),
        "{what}: host files copied into the container:\n{out}"
    );
}

/// `tmpcopyup` copies symlinks of the image that lead out (absolute, `../`,
/// to a file or a directory) as symlinks: nothing of the host is copied.
#[test]
fn tmpcopyup_does_not_follow_symlinks_out() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let b = copyup_bundle(&canary);
    match run_or_refuse(&rt, &b, "copyup") {
        Ok(out) => check_copyup(&out, "static"),
        Err(e) => panic!("tmpcopyup refused: {e}"),
    }
    canary.assert_untouched();
}

/// The same while a host process (think: another container sharing the
/// volume) swaps a file and a directory of the image with symlinks to the
/// canary in a tight loop: no host file may be copied into the container.
#[test]
fn tmpcopyup_race_does_not_copy_host_files() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let b = copyup_bundle(&canary);
    let data = b.rootfs().join("data");
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                exchange(&data.join("swapf"), &data.join("swapf.alt"));
                exchange(&data.join("swapd"), &data.join("swapd.alt"));
            }
        })
    };
    let mut result = Ok(());
    for i in 0..100 {
        if let Ok(out) = run_or_refuse(&rt, &b, &format!("copyup{i}")) {
            result = std::panic::catch_unwind(|| check_copyup(&out, &format!("race round {i}")));
            if result.is_err() {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    canary.assert_untouched();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// `tmpcopyup` gives the tmpfs the mode of the image's directory, so a
/// container without CAP_DAC_OVERRIDE can use it (as with runc).
#[test]
fn tmpcopyup_keeps_the_mode_of_the_image_dir() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.write_rootfs_file("/data/own", "image file\n");
    fs::set_permissions(b.rootfs().join("data"), fs::Permissions::from_mode(0o755)).unwrap();
    b.mount("/data", "tmpfs", "tmpfs", &["tmpcopyup", "size=1m"])
        .sh("echo mode=$(stat -c %a /data); cat /data/own; exit 0");
    let id = rt.id("copyupmode");
    let o = rt.run(&id, &b);
    o.assert_ok();
    assert!(o.stdout.contains("mode=755"), "{}", o.stdout);
    assert!(o.stdout.contains("image file"), "{}", o.stdout);
    assert_nothing_left(&rt, &id, &b);
}

/// `process.cwd` through a symlink of the image that leads out (absolute,
/// `../`), to a directory that does not exist yet: created inside the
/// rootfs or refused, never on the host.
#[test]
fn cwd_through_symlinks_stays_inside() {
    require_root!();
    let canary = Canary::new();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.root_readonly(false);
    plant_symlink(&b, "/mnt/abs", canary.path().to_str().unwrap());
    plant_symlink(&b, "/mnt/rel", &canary.escape(""));
    // What the links name inside the rootfs: x and sub are there, newdir not.
    let cname = canary.path().file_name().unwrap().to_str().unwrap();
    for d in ["x", "sub"] {
        fs::create_dir_all(b.rootfs().join(format!("tmp/{cname}/{d}"))).unwrap();
    }
    b.sh(CWD_CHECK);
    let mut ran = 0;
    for cwd in [
        "/mnt/abs/newdir",
        "/mnt/rel/newdir",
        "/mnt/abs/x",
        "/mnt/rel/sub",
    ] {
        b.cwd(cwd);
        match run_or_refuse(&rt, &b, "cwdlink") {
            Ok(out) => {
                ran += 1;
                assert!(out.contains("cwd=inside"), "cwd {cwd}: {out}");
            }
            Err(e) => eprintln!("cwd {cwd}: refused: {e}"),
        }
        canary.assert_untouched();
    }
    assert!(ran >= 2, "cwds through symlinks to existing dirs refused");
}

/// Sysctl keys that try to climb out of the network namespace's tree with
/// `..` are refused or harmless: the host's value does not change.
#[test]
fn sysctl_keys_cannot_climb_out() {
    require_root!();
    let rt = Runtime::new();
    let path = "/proc/sys/vm/swappiness";
    let before = read(path);
    let other = if before.trim() == "33" { "34" } else { "33" };
    for key in [
        "net/../vm/swappiness",
        "net/ipv4/../../vm/swappiness",
        "net.ipv4.ip_forward/../../../vm/swappiness",
        "net/./../vm/swappiness",
    ] {
        let mut b = Bundle::busybox();
        b.sysctl(key, other).args(&["true"]);
        let res = run_or_refuse(&rt, &b, "sysctlclimb");
        let now = read(path);
        if now != before {
            fs::write(path, &before).unwrap();
        }
        assert_eq!(now, before, "sysctl {key:?} changed the host's {path}");
        eprintln!("sysctl {key:?}: {res:?}");
    }
}

// ---------------------------------------------------------------------------
// What rt's own processes in the container show of the host
// ---------------------------------------------------------------------------

/// For every process of the container that is rt (not busybox): can its
/// environment be read (and does it hold `$MARKER`)? Does it hold a
/// directory outside the container (other than a procfs)? Loops until
/// /shared/stop appears.
const RT_PROCESS_WATCH: &str = r#"
n=0
while [ ! -e /shared/stop ]; do
  n=$((n+1))
  for d in /proc/[0-9]*; do
    case $d in /proc/$$) continue;; esac
    l=$(readlink $d/exe 2>/dev/null) || continue
    case $l in */busybox) continue;; esac
    echo "seen $d $l" >> /shared/seen
    if tr '\0' '\n' < $d/environ 2>/dev/null | grep -q "$MARKER"; then echo "ENVIRON $d $l" >> /shared/leak; fi
    for f in $d/fd/*; do
      [ -d "$f" ] || continue
      # A procfs (rt's handle on the container's own): not the host's tree.
      [ "$(stat -f -c %T $f/ 2>/dev/null)" = proc ] && continue
      top=$(cd "$f" 2>/dev/null && i=0 && while [ $i -lt 64 ]; do cd -P .. || break; i=$((i+1)); done && stat -c %d:%i .) || continue
      [ "$top" = "$(stat -c %d:%i /)" ] || echo "DIR $f -> $(readlink $f) ($l): $(stat -f -c %T $f/) $(ls $f/ | head -12 | tr '\n' ' ')" >> /shared/leak
    done
  done
done
echo rounds=$n > /shared/done
"#;

/// rt's processes in the container (the init waiting in the "created"
/// state, a process `exec`'d until it execs) are clones of rt: neither
/// their environment, which is the caller's on the host (secrets
/// included), nor a directory of the host may be reachable from the
/// container through /proc. A container process reads the created init's;
/// a watcher sharing a pid namespace reads those of `run` inits and `exec`
/// processes.
#[test]
fn caller_environment_is_not_readable_from_the_container() {
    require_root!();
    let marker = format!("rt-sec-marker-{}", std::process::id());
    let mut rt = Runtime::new();
    rt.env.push(("RT_SEC_SECRET".into(), marker.clone()));

    // The created init, from a process exec'd into the container.
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let id = rt.id("envcreated");
    rt.create(&id, &b).assert_ok();
    let o = rt.exec(&[
        "exec",
        &id,
        "sh",
        "-c",
        "tr '\\0' '\\n' < /proc/1/environ 2>/dev/null | grep RT_SEC_SECRET; echo read=done",
    ]);
    rt.delete_force(&id).assert_ok();
    assert_nothing_left(&rt, &id, &b);
    assert!(o.stdout.contains("read=done"), "{}", o.stdout);
    let created_leak = o.stdout.contains(&marker);

    // rt processes seen by a watcher in their pid namespace.
    let mut a = Bundle::busybox();
    let shared = a.shared_dir("shared", "/shared");
    a.add_env(&format!("MARKER={marker}")).sh(RT_PROCESS_WATCH);
    let ida = rt.id("envwatcher");
    rt.run_detached(&ida, &a, &[]).assert_ok();
    let mut b = Bundle::busybox();
    b.namespace_path("pid", &format!("/proc/{}/ns/pid", rt.pid(&ida)))
        .args(&["true"]);
    for i in 0..40 {
        if i >= 6 && !read(shared.join("seen")).is_empty() {
            break;
        }
        let idb = rt.id(&format!("envrun{i}"));
        rt.run(&idb, &b).assert_ok();
        rt.exec(&["exec", &ida, "true"]).assert_ok();
    }
    fs::write(shared.join("stop"), "").unwrap();
    assert!(wait_for(POLL_TIMEOUT, || shared.join("done").exists()));
    let leak = read(shared.join("leak"));
    let seen = read(shared.join("seen")).lines().count();
    rt.delete_force(&ida).assert_ok();
    assert_nothing_left(&rt, &ida, &a);
    assert!(
        !created_leak && leak.is_empty(),
        "the created init's environment (the caller's) is readable in the container: \
         {created_leak}\n{}\nrt processes seen by the watcher ({seen}) leak:\n{leak}",
        o.stdout
    );
}

/// A refused config is refused with its reason: the init's error message
/// reaches the caller however fast the init fails.
#[test]
fn setup_errors_reach_the_caller() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    plant_symlink(&b, "/proc", "/tmp");
    b.args(&["true"]);
    let mut lost = Vec::new();
    for i in 0..10 {
        let e = run_or_refuse(&rt, &b, &format!("lostmsg{i}")).expect_err("/proc symlink accepted");
        if !e.contains("/proc") {
            lost.push(e);
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 10 refusals without their reason: {lost:?}",
        lost.len()
    );
}
