//! Helpers for rt-build's tests: a busybox base made in the test, rt-build
//! runs against a private store, the built image unpacked and run with rt,
//! trees listed for comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether a requirement holds; without it the test is skipped, except
/// with CI=true, where it fails.
pub fn requirement(ok: bool, test: &str, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: requirement not met: {what} (CI=true, so this is a failure)");
    }
    eprintln!("note: {test} skipped: {what}");
    false
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rt-build"))
}

/// A binary of the workspace built beside rt-build (`cargo build -p rt -p rt-unpack`).
pub fn sibling(name: &str) -> PathBuf {
    bin().parent().unwrap().join(name)
}

/// Root, and the rt and rt-unpack binaries, which every build test needs.
pub fn ready(test: &str) -> bool {
    requirement(nix::unistd::geteuid().is_root(), test, "needs root")
        && requirement(
            sibling("rt").is_file() && sibling("rt-unpack").is_file(),
            test,
            "needs rt and rt-unpack built beside rt-build (cargo build -p rt -p rt-unpack)",
        )
}

pub fn tool(test: &str, name: &str) -> Option<PathBuf> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    requirement(false, test, &format!("needs {name}"));
    None
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub ctx: PathBuf,
}

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "mkdir", "rm", "touch", "id", "chmod", "chown", "ln", "mv", "stat",
    "wc", "env", "true", "false", "sleep", "head", "test", "printf", "readlink", "cp", "find",
    "grep", "whoami", "pwd", "mount", "tr", "sort",
];

/// A busybox-static root filesystem tar: the base image of every test.
pub fn rootfs_tar(dest: &Path) {
    let root = dest.with_extension("d");
    fs::create_dir_all(&root).unwrap();
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/bob",
        "opt/dir",
        "var/empty",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nbob:x:1000:\nstaff:x:50:bob\n",
    )
    .unwrap();
    fs::write(root.join("etc/base.txt"), "base\n").unwrap();
    fs::write(root.join("opt/dir/a"), "a\n").unwrap();
    fs::write(root.join("opt/dir/b"), "b\n").unwrap();
    nix::unistd::chown(
        &root.join("home/bob"),
        Some(nix::unistd::Uid::from_raw(1000)),
        Some(nix::unistd::Gid::from_raw(1000)),
    )
    .unwrap();
    fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let f = fs::File::create(dest).unwrap();
    let mut b = tar::Builder::new(f);
    b.follow_symlinks(false);
    b.append_dir_all(".", &root).unwrap();
    b.finish().unwrap();
    fs::remove_dir_all(&root).unwrap();
}

impl Env {
    pub fn new() -> Env {
        // The store on the same filesystem as the context keeps things
        // simple; overlayfs needs paths without ',' and ':'.
        let dir = tempfile::Builder::new()
            .prefix("rt-build-test")
            .tempdir()
            .unwrap();
        let store = dir.path().join("store");
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        rootfs_tar(&ctx.join("rootfs.tar"));
        Env { dir, store, ctx }
    }

    pub fn write(&self, rel: &str, data: &str) {
        let p = self.ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    pub fn dockerfile(&self, text: &str) {
        self.write("Dockerfile", text);
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--store").arg(&self.store);
        c
    }

    /// `rt-build build` with `args` on the context.
    pub fn build(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.arg("build")
            .arg("--progress=plain")
            .args(args)
            .arg(&self.ctx);
        c.output().unwrap()
    }

    pub fn build_ok(&self, args: &[&str]) -> String {
        let out = self.build(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "build failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.cmd().args(["inspect", image]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Unpacks `image` with rt-unpack into a bundle; runs `args` in it with rt.
    pub fn run(&self, image: &str, args: &[&str]) -> (i32, String, String) {
        let bundle = self.dir.path().join(format!("bundle-{}", rand_name()));
        let out = Command::new(sibling("rt-unpack"))
            .arg(format!("oci:{}:{}", self.store.display(), normalize(image)))
            .arg(&bundle)
            .arg("--")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rt-unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(sibling("rt"))
            .args(["run", "-b"])
            .arg(&bundle)
            .arg(rand_name())
            .output()
            .unwrap();
        fs::remove_dir_all(&bundle).unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The image's root filesystem, unpacked by rt-unpack.
    pub fn tree(&self, image: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let bundle = d.path().join("b");
        let out = Command::new(sibling("rt-unpack"))
            .arg(format!("oci:{}:{}", self.store.display(), normalize(image)))
            .arg(&bundle)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rt-unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (d, bundle.join("rootfs"))
    }

    /// Nothing of a build is left: no mounts of the store, no temp dirs.
    pub fn assert_clean(&self) {
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let store = self.store.canonicalize().unwrap_or(self.store.clone());
        assert!(
            !mi.contains(store.to_str().unwrap()),
            "mounts left behind:\n{mi}"
        );
        let tmp: Vec<_> = fs::read_dir(self.store.join("tmp"))
            .map(|r| r.collect())
            .unwrap_or_default();
        assert!(tmp.is_empty(), "temp dirs left behind: {tmp:?}");
    }
}

pub fn normalize(n: &str) -> String {
    if n.rsplit('/').next().unwrap().contains(':') {
        n.to_owned()
    } else {
        format!("{n}:latest")
    }
}

pub fn rand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every entry under `root`: type, mode, owner and content (or link target).
pub fn list_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = md.file_type();
        let what = if ft.is_dir() {
            "dir".to_owned()
        } else if ft.is_symlink() {
            format!("link->{}", fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let data = fs::read(&p).unwrap();
            if data.len() > 4096 {
                format!("file {} bytes", data.len())
            } else {
                format!("file {:?}", String::from_utf8_lossy(&data))
            }
        } else if ft.is_char_device() {
            format!("char {}", md.rdev())
        } else {
            "other".to_owned()
        };
        out.insert(
            rel,
            format!("{what} {:o} {}:{}", md.mode() & 0o7777, md.uid(), md.gid()),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

pub fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn exists(root: &Path, rel: &str) -> bool {
    fs::symlink_metadata(root.join(rel)).is_ok()
}

pub fn name_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}
