//! The build context: a directory whose paths COPY and ADD name. Every
//! lookup goes through a directory fd of the context with
//! `RESOLVE_IN_ROOT`, so neither `..` nor a symlink reaches outside it;
//! `.dockerignore` (or `<Dockerfile>.dockerignore`) hides paths as Docker
//! does (last matching pattern wins, `!` re-includes, `**` spans
//! directories, a match on a directory covers what is inside).

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, SFlag};
use sha2::{Digest as _, Sha256};

use crate::error::{Context as _, Error, Result};

pub struct BuildContext {
    pub dir: PathBuf,
    fd: OwnedFd,
    ignore: Ignore,
}

#[derive(Default)]
pub struct Ignore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, p) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let comps: Vec<String> = p
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_owned)
                .collect();
            if !comps.is_empty() {
                patterns.push((neg, comps));
            }
        }
        Ignore { patterns }
    }

    /// Whether `rel` (components relative to the context) is excluded.
    pub fn excluded(&self, rel: &[&[u8]]) -> bool {
        let mut out = false;
        for (neg, p) in &self.patterns {
            let hit = (1..=rel.len()).any(|n| match_path(p, &rel[..n]));
            if hit {
                out = !neg;
            }
        }
        out
    }

    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(n, _)| *n)
    }
}

fn match_path(pat: &[String], path: &[&[u8]]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_path(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((c, prest)) => glob(first.as_bytes(), c) && match_path(rest, prest),
            None => false,
        },
    }
}

/// Go's filepath.Match on one path component: `*`, `?`, `[...]` (with
/// ranges and `^`/`!` negation), `\` escapes.
pub fn glob(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some((&c, nrest)) = name.split_first() else {
                return false;
            };
            let (neg, mut r) = match rest.first() {
                Some(b'^' | b'!') => (true, &rest[1..]),
                _ => (false, rest),
            };
            let mut matched = false;
            let mut first = true;
            loop {
                match r.first() {
                    None => return false,
                    Some(b']') if !first => {
                        r = &r[1..];
                        break;
                    }
                    _ => {}
                }
                first = false;
                let mut lo = r[0];
                r = &r[1..];
                if lo == b'\\' && !r.is_empty() {
                    lo = r[0];
                    r = &r[1..];
                }
                let mut hi = lo;
                if r.len() >= 2 && r[0] == b'-' && r[1] != b']' {
                    hi = r[1];
                    r = &r[2..];
                }
                if lo <= c && c <= hi {
                    matched = true;
                }
            }
            matched != neg && glob(r, nrest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob(&rest[1..], &name[1..])
        }
        Some((p, rest)) => name.first() == Some(p) && glob(rest, &name[1..]),
    }
}

pub fn has_glob(s: &[u8]) -> bool {
    s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// A source path's components relative to a root; `..` that would climb
/// above the root is refused, as Docker refuses `COPY ../x`.
pub fn clean_rel(path: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(format!("{path}: outside the build context"));
                }
            }
            c => out.push(c.as_bytes().to_vec()),
        }
    }
    Ok(out)
}

pub fn join(c: &[Vec<u8>]) -> Vec<u8> {
    c.join(&b'/')
}

pub fn stat_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<FileStat> {
    let name: &[u8] = if name.is_empty() { b"." } else { name };
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Paths under `root` matching `pattern` (components, glob characters per
/// component), in sorted order; symlinks are not followed while matching
/// (except inside the root, by `RESOLVE_IN_ROOT`).
pub fn expand_glob(root: BorrowedFd<'_>, pattern: &[Vec<u8>]) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut found: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    for comp in pattern {
        let mut next = Vec::new();
        for base in found {
            if !has_glob(comp) {
                let mut p = base.clone();
                p.push(comp.clone());
                next.push(p);
                continue;
            }
            let dir = match rt_image::fs::open_dir_in_root(root, &join(&base)) {
                Ok(d) => d,
                Err(_) => continue,
            };
            let mut names = list(dir.as_fd())?;
            names.sort();
            for n in names {
                if glob(comp, &n) {
                    let mut p = base.clone();
                    p.push(n);
                    next.push(p);
                }
            }
        }
        found = next;
    }
    Ok(found)
}

pub fn list(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>> {
    let fd = nix::unistd::dup(dir).ctx(|| "dup directory")?;
    let mut d = nix::dir::Dir::from_fd(fd).ctx(|| "read directory")?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.ctx(|| "read directory")?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    out.sort();
    Ok(out)
}

impl BuildContext {
    /// Opens the context `dir`; the ignore file is `<dockerfile>.dockerignore`
    /// beside the Dockerfile if there is one, else `dir/.dockerignore`.
    pub fn open(dir: &Path, dockerfile: &Path) -> Result<BuildContext> {
        let dir = dir
            .canonicalize()
            .ctx(|| format!("build context {}", dir.display()))?;
        let fd = nix::fcntl::open(
            &dir,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open build context {}", dir.display()))?;
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        // The context's own file is read inside the context, like every
        // other path of it: a symlink there cannot name a host file.
        let text = std::fs::read_to_string(&specific)
            .ok()
            .or_else(|| {
                let f = rt_image::fs::open_in_root(fd.as_fd(), b".dockerignore", OFlag::O_RDONLY)
                    .ok()?;
                std::io::read_to_string(std::fs::File::from(f)).ok()
            })
            .unwrap_or_default();
        Ok(BuildContext {
            dir,
            fd,
            ignore: Ignore::parse(&text),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// The context paths a COPY source names (wildcards expanded, ignored
    /// paths dropped); an error if nothing matches.
    pub fn sources(&self, src: &str) -> Result<Vec<Vec<Vec<u8>>>> {
        let rel = clean_rel(src).map_err(Error::Unsafe)?;
        let mut out = Vec::new();
        for p in expand_glob(self.fd(), &rel)? {
            let comps: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
            if !p.is_empty() && self.ignore.excluded(&comps) {
                // An excluded directory may still hold an exception.
                let dir_with_exceptions = self.ignore.has_exceptions()
                    && open_parent(self.fd(), &p).is_ok_and(|(d, n)| {
                        stat_at(d.as_fd(), &n).is_ok_and(|s| kind(&s) == SFlag::S_IFDIR)
                    });
                if !dir_with_exceptions {
                    continue;
                }
            }
            match open_parent(self.fd(), &p) {
                Ok((dir, name)) if stat_at(dir.as_fd(), &name).is_ok() => out.push(p),
                _ => {}
            }
        }
        if out.is_empty() {
            return Err(Error::Usage(format!(
                "{src}: no such file or directory in the build context {}",
                self.dir.display()
            )));
        }
        Ok(out)
    }

    /// A digest of the content of `paths` (names, types, modes, link
    /// targets and file data; not times or owners, which COPY does not
    /// keep from the context), for cache keys.
    pub fn digest(&self, paths: &[Vec<Vec<u8>>]) -> Result<String> {
        let mut h = Sha256::new();
        for p in paths {
            let (dir, name) = open_parent(self.fd(), p)
                .ctx(|| format!("open {}", String::from_utf8_lossy(&join(p))))?;
            self.hash_entry(&mut h, dir.as_fd(), &name, p.clone())?;
        }
        Ok(hex::encode(h.finalize()))
    }

    fn hash_entry(
        &self,
        h: &mut Sha256,
        dir: BorrowedFd<'_>,
        name: &[u8],
        rel: Vec<Vec<u8>>,
    ) -> Result<()> {
        let shown = || String::from_utf8_lossy(&join(&rel)).into_owned();
        let st = stat_at(dir, name).ctx(|| format!("stat {}", shown()))?;
        h.update(join(&rel));
        h.update([0]);
        h.update(st.st_mode.to_le_bytes());
        let k = kind(&st);
        if k == SFlag::S_IFREG {
            let fd = rt_image::fs::open_child(dir, name, OFlag::O_RDONLY)
                .ctx(|| format!("open {}", shown()))?;
            let mut f = std::fs::File::from(fd);
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).ctx(|| format!("read {}", shown()))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if k == SFlag::S_IFLNK {
            let t = nix::fcntl::readlinkat(dir, name).ctx(|| format!("readlink {}", shown()))?;
            h.update(std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str()));
        } else if k == SFlag::S_IFDIR {
            let sub = if name.is_empty() || name == b"." {
                nix::unistd::dup(dir).ctx(|| "dup")?
            } else {
                rt_image::fs::open_child(dir, name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                    .ctx(|| format!("open {}", shown()))?
            };
            for n in list(sub.as_fd())? {
                let mut r = rel.clone();
                r.push(n.clone());
                let comps: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
                if self.ignore.excluded(&comps)
                    && !(self.ignore.has_exceptions()
                        && stat_at(sub.as_fd(), &n).is_ok_and(|s| kind(&s) == SFlag::S_IFDIR))
                {
                    continue;
                }
                self.hash_entry(h, sub.as_fd(), &n, r)?;
            }
        }
        h.update([1]);
        Ok(())
    }
}

/// The directory holding `p` (resolved in `root`) and `p`'s last name
/// (empty for the root itself).
pub fn open_parent(root: BorrowedFd<'_>, p: &[Vec<u8>]) -> nix::Result<(OwnedFd, Vec<u8>)> {
    match p.split_last() {
        None => Ok((rt_image::fs::open_dir_in_root(root, b".")?, Vec::new())),
        Some((name, parent)) => Ok((
            rt_image::fs::open_dir_in_root(root, &join(parent))?,
            name.clone(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert!(glob(b"*.rs", b"main.rs"));
        assert!(!glob(b"*.rs", b"main.rc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[^a-c]x", b"bx"));
        assert!(glob(b"\\*", b"*"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn dockerignore_rules() {
        let ig = Ignore::parse("# c\n*.log\n!keep.log\nbuild/\n**/*.tmp\n/secret\n");
        let ex = |p: &str| {
            let c: Vec<&[u8]> = p.split('/').map(str::as_bytes).collect();
            ig.excluded(&c)
        };
        assert!(ex("a.log"));
        assert!(!ex("keep.log"));
        assert!(ex("build"));
        assert!(ex("build/x/y"));
        assert!(ex("d/e/f.tmp"));
        assert!(ex("x.tmp"));
        assert!(ex("secret"));
        assert!(!ex("src/a.log"));
        assert!(!ex("main.rs"));
    }

    #[test]
    fn sources_stay_in_the_context() {
        assert!(clean_rel("../x").is_err());
        assert!(clean_rel("a/../../x").is_err());
        assert_eq!(
            clean_rel("/a/./b/../c").unwrap(),
            vec![b"a".to_vec(), b"c".to_vec()]
        );
    }
}
