//! Applying a layer's tar to a root directory.
//!
//! Every path is resolved under the root's fd with `openat2(RESOLVE_IN_ROOT)`
//! (symlinks are followed as the container would follow them, so `/` and
//! `..` in a link stop at the root), and every change is an `*at` call on
//! the resulting directory fd with the entry's own name, which is never
//! followed. Nothing a layer contains can therefore create, change or delete
//! anything outside the root, whatever earlier entries or layers planted.
//! Directory fds are cached by path; the cache is dropped whenever a
//! directory or symlink is removed or replaced, the only changes that could
//! make a cached resolution stale.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat,
    FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;
use xattr::FileExt;

use crate::error::{Context, Error, Result};
use crate::fs::{self, clean_path, join, open_child, open_dir_in_root, show};

/// What whiteout entries become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete what they name from the root (the root holds all layers below).
    Apply,
    /// Record them as overlayfs does (a 0/0 character device, the
    /// `trusted.overlay.opaque` xattr), for a layer extracted alone to be an
    /// overlay lower directory.
    Overlay,
}

#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub whiteouts: Whiteouts,
    /// Set owners from the layer; off when not root (files stay the caller's).
    pub chown: bool,
    /// Nothing lies below this layer, so whiteouts have nothing to hide.
    pub first: bool,
}

impl ApplyOptions {
    pub fn new(whiteouts: Whiteouts, first: bool) -> Self {
        ApplyOptions {
            whiteouts,
            chown: nix::unistd::geteuid().is_root(),
            first,
        }
    }
}

/// What an apply did.
#[derive(Clone, Debug, Default)]
pub struct ApplyStats {
    pub entries: u64,
    pub bytes: u64,
    /// Things skipped that an unprivileged caller or the filesystem cannot
    /// do (device nodes, some xattrs); one line each.
    pub warnings: Vec<String>,
}

const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const DIR_CACHE_MAX: usize = 512;

/// Applies the tar in `tar` to the directory `root`. `lowers` are the layer
/// directories below this one, topmost first, in [`Whiteouts::Overlay`]
/// mode: a hardlink to a file of a lower layer becomes a copy of it, and a
/// directory the layer implies without an entry takes its lower metadata.
pub fn apply_layer(
    root: BorrowedFd<'_>,
    tar: &mut dyn Read,
    opts: &ApplyOptions,
    lowers: &[BorrowedFd<'_>],
    label: &str,
) -> Result<ApplyStats> {
    let root_fd = nix::unistd::dup(root).ctx(|| "dup root fd")?;
    let dev = fstat(root).ctx(|| "stat root")?.st_dev;
    let mut a = Applier {
        root: Rc::new(root_fd),
        dev,
        opts: opts.clone(),
        lowers,
        label,
        dirs: HashMap::new(),
        this_layer: HashSet::new(),
        dir_times: Vec::new(),
        touched: HashMap::new(),
        buf: vec![0; 1 << 20],
        stats: ApplyStats::default(),
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        warned: HashSet::new(),
        link_depth: 0,
        canon_cache: HashMap::new(),
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| Error::Image(format!("{label}: bad tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Image(format!("{label}: bad tar: {e}")))?;
        a.entry(&mut entry)?;
    }
    a.finish()?;
    Ok(a.stats)
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Applier<'a> {
    root: Rc<OwnedFd>,
    dev: u64,
    opts: ApplyOptions,
    lowers: &'a [BorrowedFd<'a>],
    label: &'a str,
    dirs: HashMap<Vec<u8>, Rc<OwnedFd>>,
    /// Paths this layer created: whiteouts only hide what lies below.
    this_layer: HashSet<Vec<u8>>,
    /// Directory times, set once the layer's entries are all in.
    dir_times: Vec<(Vec<u8>, TimeSpec, TimeSpec)>,
    /// Times of directories this layer changed, restored at the end unless
    /// the layer gives them new ones (as umoci does).
    touched: HashMap<Vec<u8>, (TimeSpec, TimeSpec)>,
    buf: Vec<u8>,
    stats: ApplyStats,
    euid: u32,
    egid: u32,
    warned: HashSet<String>,
    link_depth: u32,
    canon_cache: HashMap<Vec<u8>, Vec<u8>>,
}

fn parse_time(s: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(s).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        nanos = format!("{digits:0<9}").parse().ok()?;
        if secs < 0 && nanos > 0 {
            return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
        }
    }
    Some(TimeSpec::new(secs, nanos))
}

/// `target` read from a symlink in directory `dir`, as a root-relative path;
/// `..` stops at the root, as it does for the kernel under RESOLVE_IN_ROOT.
fn lexical(dir: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out: Vec<&[u8]> = Vec::new();
    if !target.starts_with(b"/") {
        out.extend(dir.split(|&b| b == b'/').filter(|c| !c.is_empty()));
    }
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    join(&out)
}

fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn child_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
        p.extend_from_slice(dir);
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }
}

fn file_type(mode: u32) -> SFlag {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits())
}

impl Applier<'_> {
    fn err(&self, path: &[u8], what: &str, e: impl std::fmt::Display) -> Error {
        Error::Image(format!("{}: {what} {}: {e}", self.label, show(path)))
    }

    fn io(&self, path: &[u8], what: &str, e: Errno) -> Error {
        Error::Io {
            context: format!("{}: {what} {}", self.label, show(path)),
            err: std::io::Error::from(e),
        }
    }

    fn warn(&mut self, msg: String) {
        if self.warned.insert(msg.clone()) {
            self.stats.warnings.push(msg);
        }
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, path: &[u8]) -> Result<Meta> {
        let h = e.header();
        let bad = |what: &str, err: std::io::Error| self.err(path, what, err);
        let mode = h.mode().map_err(|x| bad("mode of", x))? & 0o7777;
        let uid = h.uid().map_err(|x| bad("uid of", x))?;
        let gid = h.gid().map_err(|x| bad("gid of", x))?;
        let secs = h.mtime().map_err(|x| bad("mtime of", x))?;
        let mut mtime = TimeSpec::new(secs.min(i64::MAX as u64) as i64, 0);
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().map_err(|x| bad("PAX header of", x))? {
            for ext in pax {
                let ext = ext.map_err(|x| bad("PAX header of", x))?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(t) = parse_time(ext.value_bytes()) {
                        mtime = t;
                    }
                } else if key == b"atime" {
                    atime = parse_time(ext.value_bytes());
                }
            }
        }
        let to_u32 = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| self.err(path, what, format!("{v} is out of range")))
        };
        Ok(Meta {
            mode,
            uid: to_u32(uid, "uid of")?,
            gid: to_u32(gid, "gid of")?,
            atime: atime.unwrap_or(mtime),
            mtime,
            xattrs,
        })
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let kind = e.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let comps = clean_path(&raw).map_err(|why| {
            Error::Unsafe(format!(
                "{}: entry {:?}: {why}",
                self.label,
                String::from_utf8_lossy(&raw)
            ))
        })?;
        let path = join(&comps);
        self.stats.entries += 1;
        let meta = self.meta(e, &path)?;
        let Some((name, parent_comps)) = comps.split_last() else {
            if kind.is_dir() {
                self.dir_times.push((Vec::new(), meta.atime, meta.mtime));
                let root = self.root.clone();
                return self.set_meta_fd(root.as_fd(), &path, &meta, false);
            }
            return Err(Error::Unsafe(format!(
                "{}: entry {:?} would replace the root with a non-directory",
                self.label,
                String::from_utf8_lossy(&raw)
            )));
        };
        let parent_path = self.canonical(join(parent_comps))?;
        let path = child_path(&parent_path, name);
        if let Some(rest) = name.strip_prefix(b".wh.") {
            return self.whiteout(&parent_path, rest, &raw);
        }
        let parent = self.dir(&parent_path, true)?.expect("created");
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(&parent, name, &path, &meta, e)?
            }
            EntryType::Directory => self.directory(&parent, name, &path, &meta)?,
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| self.err(&path, "symlink", "no target"))?
                    .into_owned();
                self.create(&parent, name, &path, |p| {
                    symlinkat(fs::os(&target), p, *name)
                })?;
                self.forget();
                self.set_meta_at(&parent, name, &path, &meta, true)?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| self.err(&path, "hardlink", "no target"))?
                    .into_owned();
                self.hardlink(&parent, name, &path, &target)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (sflag, dev) = match kind {
                    EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    k => {
                        let h = e.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let f = if k == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (f, makedev(major.into(), minor.into()))
                    }
                };
                let perm = Mode::from_bits_truncate(meta.mode & 0o777);
                match self.create(&parent, name, &path, |p| {
                    mknodat(p, *name, sflag, perm, dev)
                }) {
                    Ok(()) => self.set_meta_at(&parent, name, &path, &meta, false)?,
                    Err(e) if sflag != SFlag::S_IFIFO && e.errno() == Some(libc::EPERM) => {
                        self.warn(format!(
                            "{}: device nodes skipped (creating them needs CAP_MKNOD), e.g. {}",
                            self.label,
                            show(&path)
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            other => {
                self.warn(format!(
                    "{}: entry {} of unsupported type {:?} skipped",
                    self.label,
                    show(&path),
                    other
                ));
                return Ok(());
            }
        }
        if !self.opts.first || self.opts.whiteouts == Whiteouts::Overlay {
            self.this_layer.insert(path);
        }
        Ok(())
    }

    /// The directory at `path` (resolved in the root), created with its
    /// missing parents when `create`; `None` if absent and not `create`.
    fn dir(&mut self, path: &[u8], create: bool) -> Result<Option<Rc<OwnedFd>>> {
        if path.is_empty() {
            self.touch(path, self.root.clone())?;
            return Ok(Some(self.root.clone()));
        }
        if let Some(fd) = self.dirs.get(path) {
            return Ok(Some(fd.clone()));
        }
        let fd = match open_dir_in_root(self.root.as_fd(), path) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                let (pp, name) = split_last(path);
                let parent = self.dir(pp, true)?.expect("created");
                let implied = self.implied_dir_meta(path);
                match mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        // A symlink to what does not exist yet: create its
                        // target (inside the root), as umoci and docker do.
                        if let Ok(target) = nix::fcntl::readlinkat(parent.as_fd(), name) {
                            self.link_depth += 1;
                            if self.link_depth > 40 {
                                return Err(self.err(
                                    path,
                                    "open directory",
                                    "too many levels of symbolic links",
                                ));
                            }
                            let t = lexical(
                                pp,
                                std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()),
                            );
                            let r = self.dir(&t, true);
                            self.link_depth -= 1;
                            r?;
                        }
                    }
                    Err(e) => return Err(self.io(path, "create directory", e)),
                }
                let fd = open_dir_in_root(self.root.as_fd(), path)
                    .map_err(|e| self.io(path, "open directory", e))?;
                if let Some(m) = implied {
                    self.set_meta_fd(fd.as_fd(), path, &m, true)?;
                    self.dir_times.push((path.to_vec(), m.atime, m.mtime));
                }
                fd
            }
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ENOTDIR) => {
                return Err(self.err(path, "open directory", "not a directory"));
            }
            Err(e) => return Err(self.io(path, "open directory", e)),
        };
        let fd = Rc::new(fd);
        self.touch(path, fd.clone())?;
        if self.dirs.len() >= DIR_CACHE_MAX {
            self.forget();
        }
        self.dirs.insert(path.to_vec(), fd.clone());
        Ok(Some(fd))
    }

    /// A directory or symlink went away or was replaced: cached resolutions may be stale.
    fn forget(&mut self) {
        self.dirs.clear();
        self.canon_cache.clear();
    }

    fn touch(&mut self, path: &[u8], fd: Rc<OwnedFd>) -> Result<()> {
        if self.opts.first || self.touched.contains_key(path) {
            return Ok(());
        }
        let st = fstat(fd.as_fd()).map_err(|e| self.io(path, "stat", e))?;
        let at = TimeSpec::new(st.st_atime, st.st_atime_nsec);
        let mt = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        self.touched.insert(path.to_vec(), (at, mt));
        Ok(())
    }

    /// In overlay mode a directory the layer implies without an entry must
    /// look as it does below, or it would hide the lower one's metadata.
    fn implied_dir_meta(&self, path: &[u8]) -> Option<Meta> {
        for lower in self.lowers {
            let Ok(fd) = open_child(*lower, path, OFlag::O_PATH) else {
                continue;
            };
            let st = fstat(fd.as_fd()).ok()?;
            if file_type(st.st_mode) != SFlag::S_IFDIR {
                return None;
            }
            return Some(Meta {
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                atime: TimeSpec::new(st.st_atime, st.st_atime_nsec),
                mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
                xattrs: Vec::new(),
            });
        }
        None
    }

    /// In overlay mode the layer directory alone does not show the symlinks
    /// of the layers below, which the merged tree will follow: resolve
    /// `path` (a directory path, every component followed) against this
    /// layer and the lowers, lexically, `..` and absolute links stopping at
    /// the root. Elsewhere the kernel does this (RESOLVE_IN_ROOT).
    fn canonical(&mut self, path: Vec<u8>) -> Result<Vec<u8>> {
        if self.opts.whiteouts != Whiteouts::Overlay || self.lowers.is_empty() || path.is_empty() {
            return Ok(path);
        }
        if let Some(c) = self.canon_cache.get(&path) {
            return Ok(c.clone());
        }
        let mut todo: std::collections::VecDeque<Vec<u8>> =
            path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let mut cand: Vec<&[u8]> = done.iter().map(Vec::as_slice).collect();
            cand.push(&c);
            let cand = join(&cand);
            match self.merged_symlink(&cand) {
                Some(target) => {
                    links += 1;
                    if links > 40 {
                        return Err(self.err(
                            &path,
                            "resolve",
                            "too many levels of symbolic links",
                        ));
                    }
                    if target.starts_with(b"/") {
                        done.clear();
                    }
                    for t in target.split(|&b| b == b'/').rev() {
                        todo.push_front(t.to_vec());
                    }
                }
                None => done.push(c),
            }
        }
        let out = join(&done.iter().map(Vec::as_slice).collect::<Vec<_>>());
        if self.canon_cache.len() > 4096 {
            self.canon_cache.clear();
        }
        self.canon_cache.insert(path, out.clone());
        Ok(out)
    }

    /// The target of `path` if the merged tree shows a symlink there (the
    /// topmost layer having the path decides).
    fn merged_symlink(&self, path: &[u8]) -> Option<Vec<u8>> {
        let root = self.root.clone();
        let layers = std::iter::once(root.as_fd()).chain(self.lowers.iter().copied());
        for layer in layers {
            let Ok(fd) = open_child(layer, path, OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
                continue;
            };
            let st = fstat(fd.as_fd()).ok()?;
            if file_type(st.st_mode) != SFlag::S_IFLNK {
                return None;
            }
            let t = nix::fcntl::readlinkat(fd.as_fd(), "").ok()?;
            return Some(std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str()).to_vec());
        }
        None
    }

    /// Whether a lower layer shows something at `path` (the topmost layer
    /// having it decides: a whiteout there means nothing is shown).
    fn below(&self, path: &[u8]) -> bool {
        for lower in self.lowers {
            if let Ok(fd) = open_child(*lower, path, OFlag::O_PATH) {
                return match fstat(fd.as_fd()) {
                    Ok(st) => !(file_type(st.st_mode) == SFlag::S_IFCHR && st.st_rdev == 0),
                    Err(_) => false,
                };
            }
        }
        false
    }

    /// Runs `make` to create `name`; if something is in the way, removes it
    /// (a whole tree for a directory) and runs `make` again.
    fn create(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[u8],
        mut make: impl FnMut(BorrowedFd<'_>) -> nix::Result<()>,
    ) -> Result<()> {
        match make(parent.as_fd()) {
            Ok(()) => return Ok(()),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.io(path, "create", e)),
        }
        self.make_room(parent, name, path, false)?;
        make(parent.as_fd()).map_err(|e| self.io(path, "create", e))
    }

    /// Removes what is at `name` unless it is a directory and `keep_dir`;
    /// returns whether a directory was kept.
    fn make_room(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[u8],
        keep_dir: bool,
    ) -> Result<bool> {
        let st = match fstatat(parent.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(self.io(path, "stat", e)),
        };
        match file_type(st.st_mode) {
            SFlag::S_IFDIR if keep_dir => return Ok(true),
            SFlag::S_IFDIR => {
                self.forget();
                fs::remove_all_at(parent.as_fd(), name)
                    .map_err(|e| self.err(path, "replace", e))?;
            }
            t => {
                if t == SFlag::S_IFLNK {
                    self.forget();
                }
                match unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(self.io(path, "replace", e)),
                }
            }
        }
        Ok(false)
    }

    fn regular<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[u8],
        meta: &Meta,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match nix::fcntl::openat(parent.as_fd(), name, flags, mode) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => {
                // Never write into what is there: it may be a hardlink
                // shared with another path.
                self.make_room(parent, name, path, false)?;
                nix::fcntl::openat(parent.as_fd(), name, flags, mode)
                    .map_err(|e| self.io(path, "create", e))?
            }
            Err(err) => return Err(self.io(path, "create", err)),
        };
        let mut file = File::from(fd);
        loop {
            let n = match e.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(Error::Image(format!(
                        "{}: read {}: {err}",
                        self.label,
                        show(path)
                    )))
                }
            };
            file.write_all(&self.buf[..n]).map_err(|err| Error::Io {
                context: format!("{}: write {}", self.label, show(path)),
                err,
            })?;
            self.stats.bytes += n as u64;
        }
        let fd = OwnedFd::from(file);
        self.set_meta_fd(fd.as_fd(), path, meta, true)
    }

    fn directory(&mut self, parent: &OwnedFd, name: &[u8], path: &[u8], meta: &Meta) -> Result<()> {
        match mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                if !self.make_room(parent, name, path, true)? {
                    mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.io(path, "create directory", e))?;
                }
            }
            Err(e) => return Err(self.io(path, "create directory", e)),
        }
        let fd = open_child(parent.as_fd(), name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .map_err(|e| self.io(path, "open directory", e))?;
        self.set_meta_fd(fd.as_fd(), path, meta, false)?;
        self.dir_times.push((path.to_vec(), meta.atime, meta.mtime));
        if self.dirs.len() >= DIR_CACHE_MAX {
            self.forget();
        }
        self.dirs.insert(path.to_vec(), Rc::new(fd));
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[u8],
        target_raw: &[u8],
    ) -> Result<()> {
        let tcomps = clean_path(target_raw).map_err(|why| {
            Error::Unsafe(format!(
                "{}: hardlink {} to {:?}: {why}",
                self.label,
                show(path),
                String::from_utf8_lossy(target_raw)
            ))
        })?;
        let Some((tname, tparent_comps)) = tcomps.split_last() else {
            return Err(Error::Unsafe(format!(
                "{}: hardlink {} to the root",
                self.label,
                show(path)
            )));
        };
        let tparent_path = self.canonical(join(tparent_comps))?;
        let target = child_path(&tparent_path, tname);
        if target == path {
            return Ok(());
        }
        let tparent = self.dir(&tparent_path, false)?;
        let link = |p: BorrowedFd<'_>| match &tparent {
            Some(tp) => linkat(tp.as_fd(), *tname, p, name, AtFlags::empty()),
            None => Err(Errno::ENOENT),
        };
        match self.create(parent, name, path, link) {
            Err(e)
                if e.errno() == Some(libc::ENOENT) && self.opts.whiteouts == Whiteouts::Overlay =>
            {
                self.copy_up(parent, name, path, &target)
            }
            Err(e) if e.errno() == Some(libc::ENOENT) => Err(self.err(
                path,
                "hardlink",
                format!("target {} does not exist", show(&target)),
            )),
            r => r,
        }
    }

    /// A hardlink into a lower layer cannot cross overlay layers: the link
    /// becomes a copy of the lower file (as Docker's overlay driver does).
    fn copy_up(&mut self, parent: &OwnedFd, name: &[u8], path: &[u8], target: &[u8]) -> Result<()> {
        for lower in self.lowers {
            let Ok(src) = open_child(*lower, target, OFlag::O_RDONLY | OFlag::O_NONBLOCK) else {
                continue;
            };
            let st = fstat(src.as_fd()).map_err(|e| self.io(target, "stat", e))?;
            if file_type(st.st_mode) != SFlag::S_IFREG {
                break;
            }
            let fd = nix::fcntl::openat(
                parent.as_fd(),
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| self.io(path, "create", e))?;
            let mut out = File::from(fd);
            std::io::copy(&mut File::from(src), &mut out).map_err(|e| Error::Io {
                context: format!("{}: copy {} to {}", self.label, show(target), show(path)),
                err: e,
            })?;
            let meta = Meta {
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                atime: TimeSpec::new(st.st_atime, st.st_atime_nsec),
                mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
                xattrs: Vec::new(),
            };
            let fd = OwnedFd::from(out);
            return self.set_meta_fd(fd.as_fd(), path, &meta, true);
        }
        Err(self.err(
            path,
            "hardlink",
            format!("target {} does not exist", show(target)),
        ))
    }

    fn chown_needed(&self, meta: &Meta) -> bool {
        self.opts.chown && (meta.uid != self.euid || meta.gid != self.egid)
    }

    fn xattr_failed(&mut self, path: &[u8], key: &[u8], e: std::io::Error) -> Result<()> {
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EPERM) | Some(libc::EACCES) => {
                self.warn(format!(
                    "{}: xattr {} not set ({e}), e.g. on {}",
                    self.label,
                    String::from_utf8_lossy(key),
                    show(path)
                ));
                Ok(())
            }
            _ => Err(Error::Io {
                context: format!(
                    "{}: set xattr {} on {}",
                    self.label,
                    String::from_utf8_lossy(key),
                    show(path)
                ),
                err: e,
            }),
        }
    }

    /// Owner, then mode (chown clears setuid), then xattrs (chown clears
    /// security.capability), then times (for files; directories wait).
    fn set_meta_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &[u8],
        meta: &Meta,
        times: bool,
    ) -> Result<()> {
        if self.chown_needed(meta) {
            fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| self.io(path, "chown", e))?;
        }
        fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| self.io(path, "chmod", e))?;
        if !meta.xattrs.is_empty() {
            let file = File::from(nix::unistd::dup(fd).map_err(|e| self.io(path, "dup", e))?);
            for (k, v) in &meta.xattrs {
                if k.starts_with(OVERLAY_XATTR_PREFIX) {
                    continue;
                }
                if let Err(e) = file.set_xattr(fs::os(k), v) {
                    self.xattr_failed(path, k, e)?;
                }
            }
        }
        if times {
            futimens(fd, &meta.atime, &meta.mtime).map_err(|e| self.io(path, "set times of", e))?;
        }
        Ok(())
    }

    /// The same for what cannot be opened: symlinks, devices, fifos.
    fn set_meta_at(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[u8],
        meta: &Meta,
        symlink: bool,
    ) -> Result<()> {
        if self.chown_needed(meta) {
            fchownat(
                parent.as_fd(),
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io(path, "chown", e))?;
        }
        if !symlink {
            // We just created this node and nothing else writes here, so the
            // name still refers to it (and it is not a symlink to follow).
            fchmodat(
                parent.as_fd(),
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| self.io(path, "chmod", e))?;
        }
        if !meta.xattrs.is_empty() {
            // lsetxattr through our own directory fd: the magic link leads
            // to the resolved parent, the final name is not followed.
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(name);
            for (k, v) in &meta.xattrs {
                if k.starts_with(OVERLAY_XATTR_PREFIX) {
                    continue;
                }
                if let Err(e) = xattr::set(fs::os(&p), fs::os(k), v) {
                    self.xattr_failed(path, k, e)?;
                }
            }
        }
        utimensat(
            parent.as_fd(),
            name,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.io(path, "set times of", e))
    }

    fn whiteout(&mut self, dir: &[u8], rest: &[u8], raw: &[u8]) -> Result<()> {
        let opaque = rest == b".wh..opq";
        if !opaque && (rest.starts_with(b".wh.") || rest.is_empty()) {
            // Other `.wh..wh.` names are aufs bookkeeping, not whiteouts.
            return Ok(());
        }
        if !opaque && (rest == b"." || rest == b"..") {
            return Err(Error::Unsafe(format!(
                "{}: whiteout {:?} names no file",
                self.label,
                String::from_utf8_lossy(raw)
            )));
        }
        match self.opts.whiteouts {
            Whiteouts::Overlay => {
                if !opaque && !self.below(&child_path(dir, rest)) {
                    // A whiteout device in a directory no lower layer has
                    // would show up in that (unmerged) directory's listing.
                    return Ok(());
                }
                let d = self.dir(dir, true)?.expect("created");
                if opaque {
                    let file = File::from(
                        nix::unistd::dup(d.as_fd()).map_err(|e| self.io(dir, "dup", e))?,
                    );
                    file.set_xattr(OPAQUE_XATTR, b"y").map_err(|e| Error::Io {
                        context: format!("{}: mark {} opaque", self.label, show(dir)),
                        err: e,
                    })?;
                } else {
                    let path = child_path(dir, rest);
                    if self.this_layer.contains(&path) {
                        return Ok(());
                    }
                    match mknodat(
                        d.as_fd(),
                        rest,
                        SFlag::S_IFCHR,
                        Mode::empty(),
                        makedev(0, 0),
                    ) {
                        Ok(()) => {}
                        Err(Errno::EEXIST) => {
                            // Replace what an earlier whiteout or implied
                            // directory put there; same-layer files were kept above.
                            self.make_room(&d, rest, &path, false)?;
                            mknodat(
                                d.as_fd(),
                                rest,
                                SFlag::S_IFCHR,
                                Mode::empty(),
                                makedev(0, 0),
                            )
                            .map_err(|e| self.io(&path, "create whiteout", e))?;
                        }
                        Err(e) => return Err(self.io(&path, "create whiteout", e)),
                    }
                    self.this_layer.insert(path);
                }
            }
            Whiteouts::Apply => {
                if self.opts.first {
                    return Ok(());
                }
                let Some(d) = self.dir(dir, false)? else {
                    return Ok(());
                };
                self.forget();
                if opaque {
                    let this_layer = &self.this_layer;
                    fs::remove_children(d.as_fd(), self.dev, &mut |child| {
                        this_layer.contains(&child_path(dir, child))
                    })
                    .map_err(|e| self.err(dir, "empty opaque directory", e))?;
                } else {
                    let path = child_path(dir, rest);
                    if !self.this_layer.contains(&path) {
                        fs::remove_all_at(d.as_fd(), rest)
                            .map_err(|e| self.err(&path, "remove whited-out", e))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let touched = std::mem::take(&mut self.touched);
        let mut times: Vec<(Vec<u8>, TimeSpec, TimeSpec)> =
            touched.into_iter().map(|(p, (a, m))| (p, a, m)).collect();
        times.append(&mut std::mem::take(&mut self.dir_times));
        // Later entries win over earlier ones and over restored times.
        for (path, at, mt) in times {
            if path.is_empty() {
                futimens(self.root.as_fd(), &at, &mt)
                    .map_err(|e| self.io(&path, "set times of", e))?;
                continue;
            }
            let (pp, name) = split_last(&path);
            let Some(parent) = self.dir(pp, false)? else {
                continue;
            };
            match utimensat(
                parent.as_fd(),
                name,
                &at,
                &mt,
                UtimensatFlags::NoFollowSymlink,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(self.io(&path, "set times of", e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_are_clamped_to_the_root() {
        assert_eq!(lexical(b"a/b", b"../c"), b"a/c");
        assert_eq!(lexical(b"a", b"../../../../etc"), b"etc");
        assert_eq!(lexical(b"a", b"/x/./y"), b"x/y");
        assert_eq!(lexical(b"", b".."), b"");
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_time(b"12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(parse_time(b"7"), Some(TimeSpec::new(7, 0)));
        assert_eq!(
            parse_time(b"1.123456789123"),
            Some(TimeSpec::new(1, 123_456_789))
        );
        assert_eq!(parse_time(b"x"), None);
    }
}
