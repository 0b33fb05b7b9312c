//! Writing layers (for the builder): a tar, compressed or not, with its
//! blob digest and diff_id computed as it is written. Entries come from a
//! whole directory, from the difference between two directories (deletions
//! become whiteouts), or from an overlayfs upper directory (its whiteout
//! devices and opaque xattrs become `.wh.` entries).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::{Compression, LayerDigests};
use crate::digest::{Algorithm, HashWriter};
use crate::error::{Context, Error, Result};

enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(w) => w.write(buf),
            Compressor::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(w) => w.flush(),
            Compressor::Zstd(w) => w.flush(),
        }
    }
}

impl<W: Write> Compressor<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(w) => w.finish(),
            Compressor::Zstd(w) => w.finish(),
        }
    }
}

type Sink<W> = HashWriter<Compressor<HashWriter<W>>>;

/// A layer being written to `W`.
pub struct LayerWriter<W: Write> {
    tar: tar::Builder<Sink<W>>,
    compression: Compression,
    /// First path seen of each multiply-linked inode, for hardlink entries.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Timestamps later than this are written as this (SOURCE_DATE_EPOCH),
    /// so rebuilding the same content gives the same bytes.
    clamp_mtime: Option<u64>,
}

const OPAQUE: &[u8] = b"trusted.overlay.opaque";

impl<W: Write> LayerWriter<W> {
    pub fn new(out: W, compression: Compression) -> Result<Self> {
        Self::with_level(out, compression, None)
    }

    /// A writer compressing at `level` (gzip 0-9, zstd 1-22; `None`: the
    /// codec's default).
    pub fn with_level(out: W, compression: Compression, level: Option<u32>) -> Result<Self> {
        let blob = HashWriter::new(out, Algorithm::Sha256);
        let c = match compression {
            Compression::None => Compressor::None(blob),
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                blob,
                level.map_or(flate2::Compression::default(), |l| {
                    flate2::Compression::new(l.min(9))
                }),
            )),
            Compression::Zstd => Compressor::Zstd(
                zstd::stream::write::Encoder::new(blob, level.map_or(3, |l| l.clamp(1, 22) as i32))
                    .ctx(|| "start zstd encoder")?,
            ),
        };
        let mut tar = tar::Builder::new(HashWriter::new(c, Algorithm::Sha256));
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerWriter {
            tar,
            compression,
            links: HashMap::new(),
            clamp_mtime: None,
        })
    }

    /// Writes no timestamp later than `epoch` (seconds), as
    /// `SOURCE_DATE_EPOCH` asks of reproducible builds.
    pub fn clamp_mtime(&mut self, epoch: Option<u64>) {
        self.clamp_mtime = epoch;
    }

    fn mtime(&self, t: i64) -> u64 {
        let t = t.max(0) as u64;
        self.clamp_mtime.map_or(t, |c| t.min(c))
    }

    /// Appends an entry with a header of the caller's making.
    pub fn append(&mut self, header: &mut Header, path: &[u8], data: impl Read) -> Result<()> {
        let p = Path::new(std::ffi::OsStr::from_bytes(path));
        self.tar
            .append_data(header, p, data)
            .ctx(|| format!("add {} to layer", p.display()))
    }

    /// A whiteout hiding `rel` (a path relative to the root) of lower layers.
    pub fn add_whiteout(&mut self, rel: &Path) -> Result<()> {
        let name = rel
            .file_name()
            .ok_or_else(|| Error::Usage(format!("whiteout {}: no name", rel.display())))?;
        let mut wh = std::ffi::OsString::from(".wh.");
        wh.push(name);
        let p = rel.with_file_name(wh);
        self.marker(&p)
    }

    /// An opaque whiteout: `dir` hides everything lower layers have in it.
    pub fn add_opaque(&mut self, dir: &Path) -> Result<()> {
        self.marker(&dir.join(".wh..wh..opq"))
    }

    fn marker(&mut self, p: &Path) -> Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        // Empty numeric fields are not numbers to strict readers.
        h.set_uid(0);
        h.set_gid(0);
        self.append(&mut h, p.as_os_str().as_bytes(), io::empty())
    }

    /// Adds `root/rel` as it is on disk (not following a symlink), with its
    /// owner, mode, times, device numbers and xattrs; a second name of an
    /// inode already added becomes a hardlink entry.
    pub fn add_path(&mut self, root: &Path, rel: &Path) -> Result<()> {
        let full = root.join(rel);
        let md = fs::symlink_metadata(&full).ctx(|| format!("stat {}", full.display()))?;
        self.add_with_meta(&full, rel, &md, &[])
    }

    fn add_with_meta(
        &mut self,
        full: &Path,
        rel: &Path,
        md: &Metadata,
        skip_xattrs: &[&[u8]],
    ) -> Result<()> {
        let relb = rel.as_os_str().as_bytes().to_vec();
        let mut h = Header::new_ustar();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid().into());
        h.set_gid(md.gid().into());
        h.set_mtime(self.mtime(md.mtime()));
        h.set_size(0);
        let ft = md.file_type();
        // xattrs go in a PAX header just before the entry
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if let Ok(names) = xattr::list(full) {
            for n in names {
                let nb = n.as_bytes();
                if nb.starts_with(b"trusted.overlay.") || skip_xattrs.contains(&nb) {
                    continue;
                }
                if let Ok(Some(v)) = xattr::get(full, &n) {
                    pax.push((format!("SCHILY.xattr.{}", n.to_string_lossy()), v));
                }
            }
        }
        // listxattr's order is the filesystem's; sorted, the layer depends
        // only on the content.
        pax.sort();
        if !pax.is_empty() {
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .ctx(|| format!("add xattrs of {}", full.display()))?;
        }
        if ft.is_file() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                h.set_entry_type(EntryType::Link);
                let target = Path::new(std::ffi::OsStr::from_bytes(&first)).to_owned();
                return self
                    .tar
                    .append_link(&mut h, rel, &target)
                    .ctx(|| format!("add {} to layer", full.display()));
            }
            self.links.insert(key, relb.clone());
        }
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            let mut p = relb;
            p.push(b'/');
            self.append(&mut h, &p, io::empty())
        } else if ft.is_file() {
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            let f = File::open(full).ctx(|| format!("open {}", full.display()))?;
            self.append(&mut h, &relb, f.take(md.len()))
        } else if ft.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(full).ctx(|| format!("readlink {}", full.display()))?;
            self.tar
                .append_link(&mut h, rel, &target)
                .ctx(|| format!("add {} to layer", full.display()))
        } else {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else if ft.is_fifo() {
                EntryType::Fifo
            } else {
                // sockets have no tar form and no meaning in an image
                return Ok(());
            };
            h.set_entry_type(kind);
            let rdev = md.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .ctx(|| "device major")?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .ctx(|| "device minor")?;
            self.append(&mut h, &relb, io::empty())
        }
    }

    /// Adds everything under `root` (not `root` itself), sorted by name.
    pub fn add_tree(&mut self, root: &Path) -> Result<()> {
        self.walk(root, Path::new(""), &mut |_, _| Ok(Action::Add))
    }

    /// Adds what changed from `lower` to `upper`: new and changed entries
    /// (type, mode, owner, size, mtime, link target or content differ) and
    /// whiteouts for what `upper` no longer has.
    pub fn add_diff(&mut self, lower: &Path, upper: &Path) -> Result<()> {
        self.diff_dir(lower, upper, Path::new(""))
    }

    fn diff_dir(&mut self, lower: &Path, upper: &Path, rel: &Path) -> Result<()> {
        let names_l = list(&lower.join(rel))?;
        let names_u = list(&upper.join(rel))?;
        let all: BTreeSet<&Vec<u8>> = names_l.iter().chain(names_u.iter()).collect();
        for name in all {
            let r = rel.join(std::ffi::OsStr::from_bytes(name));
            let (l, u) = (lower.join(&r), upper.join(&r));
            let ml = fs::symlink_metadata(&l).ok();
            let Some(mu) = fs::symlink_metadata(&u).ok() else {
                self.add_whiteout(&r)?;
                continue;
            };
            match ml {
                Some(ml) if ml.is_dir() && mu.is_dir() => {
                    if changed(&ml, &mu, &l, &u) {
                        self.add_with_meta(&u, &r, &mu, &[])?;
                    }
                    self.diff_dir(lower, upper, &r)?;
                }
                Some(ml) if !changed(&ml, &mu, &l, &u) => {}
                _ => {
                    self.add_with_meta(&u, &r, &mu, &[])?;
                    if mu.is_dir() {
                        self.walk(upper, &r, &mut |_, _| Ok(Action::Add))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds an overlayfs upper directory as a layer: 0/0 character devices
    /// become whiteouts, directories with `trusted.overlay.opaque=y` get an
    /// opaque whiteout.
    pub fn add_overlay_upper(&mut self, upper: &Path) -> Result<()> {
        self.walk(upper, Path::new(""), &mut |full, md| {
            if md.file_type().is_char_device() && md.rdev() == 0 {
                return Ok(Action::Whiteout);
            }
            if md.is_dir()
                && xattr::get(full, std::ffi::OsStr::from_bytes(OPAQUE))
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(b"y")
            {
                return Ok(Action::Opaque);
            }
            Ok(Action::Add)
        })
    }

    fn walk(
        &mut self,
        root: &Path,
        rel: &Path,
        classify: &mut dyn FnMut(&Path, &Metadata) -> Result<Action>,
    ) -> Result<()> {
        for name in list(&root.join(rel))? {
            let r = rel.join(std::ffi::OsStr::from_bytes(&name));
            let full = root.join(&r);
            let md = fs::symlink_metadata(&full).ctx(|| format!("stat {}", full.display()))?;
            match classify(&full, &md)? {
                Action::Whiteout => self.add_whiteout(&r)?,
                Action::Opaque => {
                    self.add_with_meta(&full, &r, &md, &[OPAQUE])?;
                    self.add_opaque(&r)?;
                }
                Action::Add => self.add_with_meta(&full, &r, &md, &[])?,
            }
            if md.is_dir() {
                self.walk(root, &r, classify)?;
            }
        }
        Ok(())
    }

    /// Ends the tar and the compressed stream; returns the sink and what
    /// the layer's descriptor and the config's diff_id must say.
    pub fn finish(self) -> Result<(W, LayerDigests)> {
        let tar_hash = self.tar.into_inner().ctx(|| "finish layer tar")?;
        let (c, diff_id, tar_size) = tar_hash.finish();
        let blob = c.finish().ctx(|| "finish compressed layer")?;
        let (mut out, digest, size) = blob.finish();
        out.flush().ctx(|| "flush layer")?;
        Ok((
            out,
            LayerDigests {
                digest,
                size,
                diff_id,
                tar_size,
                compression: self.compression,
            },
        ))
    }
}

enum Action {
    Add,
    Whiteout,
    Opaque,
}

fn list(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut names: Vec<Vec<u8>> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<io::Result<_>>()
            .ctx(|| format!("read {}", dir.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Vec::new(),
        Err(e) => return Err(e).ctx(|| format!("read {}", dir.display())),
    };
    names.sort();
    Ok(names)
}

fn changed(a: &Metadata, b: &Metadata, pa: &Path, pb: &Path) -> bool {
    if a.file_type() != b.file_type()
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || a.rdev() != b.rdev()
    {
        return true;
    }
    if a.is_dir() {
        return a.mtime() != b.mtime();
    }
    if a.is_symlink() {
        return fs::read_link(pa).ok() != fs::read_link(pb).ok();
    }
    if a.len() != b.len() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec() {
        return true;
    }
    xattr_list(pa) != xattr_list(pb)
}

fn xattr_list(p: &Path) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut v: Vec<_> = xattr::list(p)
        .map(|it| {
            it.map(|n| (n.as_bytes().to_vec(), xattr::get(p, &n).ok().flatten()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Convenience for the common case: a layer of `dir`'s whole tree into a file.
pub fn write_tree_layer(dir: &Path, out: &Path, compression: Compression) -> Result<LayerDigests> {
    let f = File::create(out).ctx(|| format!("create {}", out.display()))?;
    let mut w = LayerWriter::new(io::BufWriter::new(f), compression)?;
    w.add_tree(dir)?;
    let (_, d) = w.finish()?;
    Ok(d)
}
