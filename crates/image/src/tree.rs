//! The files of an image source: an OCI layout directory, or a tar archive
//! (oci-archive, docker-archive) read in place through an index of its
//! entries, with no temporary copy.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::{Context, Error, Result};
use crate::fs;

pub type BlobReader<'a> = Box<dyn Read + Send + 'a>;

pub(crate) trait Tree: Send + Sync {
    /// The file at `path` (relative, `/`-separated) and its size, or `None`.
    fn open(&self, path: &str) -> Result<Option<(BlobReader<'_>, u64)>>;
    fn name(&self) -> &Path;
}

pub(crate) struct DirTree {
    root: OwnedFd,
    path: PathBuf,
}

impl DirTree {
    pub fn open(path: &Path) -> Result<DirTree> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open image layout {}", path.display()))?;
        Ok(DirTree {
            root,
            path: path.to_owned(),
        })
    }
}

impl Tree for DirTree {
    fn open(&self, rel: &str) -> Result<Option<(BlobReader<'_>, u64)>> {
        // Confined to the layout: a blob symlinked elsewhere resolves inside.
        match fs::open_in_root(self.root.as_fd(), rel.as_bytes(), OFlag::O_RDONLY) {
            Ok(fd) => {
                let f = File::from(fd);
                let meta = f
                    .metadata()
                    .ctx(|| format!("stat {}", self.path.join(rel).display()))?;
                if !meta.is_file() {
                    return Err(Error::Image(format!(
                        "{}: not a regular file",
                        self.path.join(rel).display()
                    )));
                }
                Ok(Some((
                    Box::new(io::BufReader::with_capacity(1 << 20, f)),
                    meta.len(),
                )))
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e).ctx(|| format!("open {}", self.path.join(rel).display())),
        }
    }

    fn name(&self) -> &Path {
        &self.path
    }
}

pub(crate) struct TarTree {
    file: File,
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

fn normalize(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    let parts: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

impl TarTree {
    pub fn open(path: &Path) -> Result<TarTree> {
        let file = File::open(path).ctx(|| format!("open archive {}", path.display()))?;
        let bad = |e: io::Error| Error::Image(format!("{}: bad tar archive: {e}", path.display()));
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        {
            let mut archive = tar::Archive::new(&file);
            for entry in archive.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                let Some(name) = normalize(&entry.path_bytes()) else {
                    continue;
                };
                let kind = entry.header().entry_type();
                if kind.is_file() {
                    entries.insert(name, (entry.raw_file_position(), entry.size()));
                } else if kind.is_symlink() || kind.is_hard_link() {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = if kind.is_symlink() && !target.starts_with(b"/") {
                            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                            let mut t = dir.as_bytes().to_vec();
                            t.push(b'/');
                            t.extend_from_slice(&target);
                            t
                        } else {
                            target.into_owned()
                        };
                        links.push((name, target));
                    }
                }
            }
        }
        // docker save links a layer it already wrote; follow such links once.
        for (name, target) in links {
            let resolved = resolve_dots(&target).and_then(|t| entries.get(&t).copied());
            if let Some(e) = resolved {
                entries.insert(name, e);
            }
        }
        Ok(TarTree {
            file,
            path: path.to_owned(),
            entries,
        })
    }
}

fn resolve_dots(p: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(p).ok()?;
    let mut out: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive shorter than its entry",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Tree for TarTree {
    fn open(&self, rel: &str) -> Result<Option<(BlobReader<'_>, u64)>> {
        let Some(rel) = normalize(rel.as_bytes()) else {
            return Ok(None);
        };
        Ok(self.entries.get(&rel).map(|&(pos, size)| {
            let r: BlobReader<'_> = Box::new(io::BufReader::with_capacity(
                1 << 20,
                At {
                    file: &self.file,
                    pos,
                    end: pos + size,
                },
            ));
            (r, size)
        }))
    }

    fn name(&self) -> &Path {
        &self.path
    }
}
