//! Building images inside the tests (layers written entry by entry, hostile
//! names included), running rt-unpack and umoci, and comparing trees.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rt_image::digest::Digest;
use rt_image::layer::Compression;
use rt_image::layout::{layer_descriptor, LayoutWriter};
use serde_json::json;

pub const MTIME: u64 = 1_600_000_000;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rt-unpack")
}

/// Whether the test can go on: root is needed; with CI=true, its absence fails.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root (CI=true)");
    }
    eprintln!("{test}: skipped, needs root");
    false
}

/// A program the test needs: with CI=true its absence fails.
pub fn tool_or_skip(test: &str, tool: &str) -> Option<PathBuf> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return Some(p);
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs {tool} (CI=true)");
    }
    eprintln!("{test}: skipped, needs {tool}");
    None
}

/// One layer's tar, entries written with raw names so that tests can say
/// anything a hostile layer could.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        let n = name.as_bytes();
        assert!(n.len() <= 100, "test names fit the plain header");
        let raw = &mut h.as_old_mut().name;
        raw.fill(0);
        raw[..n.len()].copy_from_slice(n);
        h
    }

    fn put(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn link_header(kind: tar::EntryType, name: &str, target: &str) -> tar::Header {
        let mut h = Self::header(kind, name, 0o777, 0);
        let t = target.as_bytes();
        let raw = &mut h.as_old_mut().linkname;
        raw.fill(0);
        raw[..t.len()].copy_from_slice(t);
        h
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = Self::header(tar::EntryType::Directory, name, mode, 0);
        self.put(h, b"")
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let h = Self::header(tar::EntryType::Regular, name, mode, data.len() as u64);
        self.put(h, data)
    }

    pub fn file_owned(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, name, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        self.put(h, data)
    }

    pub fn dir_owned(&mut self, name: &str, mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, name, mode, 0);
        h.set_uid(uid);
        h.set_gid(gid);
        self.put(h, b"")
    }

    /// A file with xattrs in a PAX header.
    pub fn file_xattrs(
        &mut self,
        name: &str,
        mode: u32,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> &mut Self {
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self.file(name, mode, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::link_header(tar::EntryType::Symlink, name, target);
        self.put(h, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::link_header(tar::EntryType::Link, name, target);
        self.put(h, b"")
    }

    pub fn device(&mut self, name: &str, char: bool, major: u32, minor: u32) -> &mut Self {
        let kind = if char {
            tar::EntryType::Char
        } else {
            tar::EntryType::Block
        };
        let mut h = Self::header(kind, name, 0o640, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.put(h, b"")
    }

    pub fn fifo(&mut self, name: &str) -> &mut Self {
        let h = Self::header(tar::EntryType::Fifo, name, 0o600, 0);
        self.put(h, b"")
    }

    /// `.wh.NAME` beside `path`.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{name}"), 0o644, b"")
    }

    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, b"")
    }

    pub fn tar(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn compress(tar: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 1).unwrap(),
    }
}

pub fn host_arch() -> String {
    rt_image::Platform::host().architecture
}

/// An image under construction: layers (already compressed blobs), config.
pub struct ImageSpec {
    pub layers: Vec<(Vec<u8>, Vec<u8>, Compression)>,
    pub config: serde_json::Value,
    pub arch: String,
}

impl ImageSpec {
    pub fn new() -> ImageSpec {
        ImageSpec {
            layers: Vec::new(),
            config: json!({}),
            arch: host_arch(),
        }
    }

    pub fn layer(mut self, l: &mut Layer, c: Compression) -> Self {
        let tar = l.tar();
        let blob = compress(&tar, c);
        self.layers.push((tar, blob, c));
        self
    }

    pub fn config(mut self, c: serde_json::Value) -> Self {
        self.config = c;
        self
    }

    pub fn config_json(&self) -> serde_json::Value {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|(t, _, _)| Digest::sha256(t).to_string())
            .collect();
        json!({
            "architecture": self.arch,
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
    }

    /// Writes the image into the OCI layout `dir` under `tag`; returns the
    /// manifest descriptor.
    pub fn write(&self, dir: &Path, tag: &str) -> rt_image::oci::Descriptor {
        let w = LayoutWriter::create(dir).unwrap();
        let mut descs = Vec::new();
        for (_, blob, c) in &self.layers {
            let (d, size) = w.put_blob(blob).unwrap();
            descs.push(layer_descriptor(*c, &d, size).unwrap());
        }
        let config: rt_image::oci::ImageConfiguration =
            serde_json::from_value(self.config_json()).unwrap();
        w.add_image(&config, descs, Some(tag)).unwrap()
    }
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self::new()
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

pub fn unpack(args: &[&str]) -> Output {
    run(Command::new(bin()).args(args))
}

pub fn must(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything about a tree that an unpacker decides: one line per path.
pub fn snapshot(root: &Path, with_dir_mtimes: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), BTreeSet<String>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes, with_dir_mtimes);
    for (_, paths) in inodes {
        if paths.len() > 1 {
            let v: Vec<String> = paths.into_iter().collect();
            out.insert(format!("{} (links)", v[0]), v.join(" "));
        }
    }
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, String>,
    inodes: &mut BTreeMap<(u64, u64), BTreeSet<String>>,
    dir_mtimes: bool,
) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir".to_owned()
        } else if ft.is_symlink() {
            format!("symlink->{}", fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            format!(
                "file {}",
                Digest::sha256(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            let c = if ft.is_char_device() { "char" } else { "block" };
            format!(
                "{c} {}:{}",
                nix::sys::stat::major(md.rdev()),
                nix::sys::stat::minor(md.rdev())
            )
        } else if ft.is_fifo() {
            "fifo".to_owned()
        } else {
            "other".to_owned()
        };
        let mut xattrs: Vec<String> = xattr::list(&p)
            .map(|l| {
                l.map(|n| {
                    let v = xattr::get(&p, &n).ok().flatten().unwrap_or_default();
                    format!("{}={}", n.to_string_lossy(), String::from_utf8_lossy(&v))
                })
                .collect()
            })
            .unwrap_or_default();
        xattrs.sort();
        let mode = if ft.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        };
        let mtime = if (ft.is_dir() || ft.is_symlink()) && !dir_mtimes {
            String::new()
        } else {
            format!(" mtime={}", md.mtime())
        };
        out.insert(
            rel.clone(),
            format!(
                "{kind} mode={mode:o} owner={}:{}{mtime} xattrs=[{}]",
                md.uid(),
                md.gid(),
                xattrs.join(",")
            ),
        );
        if !ft.is_dir() && md.nlink() > 1 {
            inodes.entry((md.dev(), md.ino())).or_default().insert(rel);
        }
        if ft.is_dir() {
            walk(root, &p, out, inodes, dir_mtimes);
        }
    }
}

pub fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut d = Vec::new();
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => d.push(format!("{k}:\n   ours:  {x:?}\n   umoci: {y:?}")),
        }
    }
    d
}

/// A host directory that hostile layers aim at; `check` says it is as it was.
pub struct Victim {
    pub dir: tempfile::TempDir,
    before: BTreeMap<String, String>,
    mode: u32,
}

impl Victim {
    pub fn new() -> Victim {
        let dir = tempfile::Builder::new()
            .prefix("rt-unpack-victim")
            .tempdir()
            .unwrap();
        fs::write(dir.path().join("secret"), b"host data").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/file"), b"more host data").unwrap();
        let before = snapshot(dir.path(), true);
        let mode = fs::metadata(dir.path()).unwrap().mode();
        Victim { dir, before, mode }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn s(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn check(&self) {
        let now = snapshot(self.dir.path(), true);
        assert_eq!(now, self.before, "the host directory {} changed", self.s());
        let md = fs::metadata(self.dir.path()).unwrap();
        assert_eq!(md.mode(), self.mode, "victim dir mode changed");
    }
}

impl Default for Victim {
    fn default() -> Self {
        Self::new()
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| String::from_utf8_lossy(e.unwrap().file_name().as_bytes()).into_owned())
        .collect();
    v.sort();
    v
}
