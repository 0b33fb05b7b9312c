//! COPY and ADD: sources from the build context (wildcards, .dockerignore)
//! or another stage or image, destinations resolved inside the rootfs,
//! `--chown` names looked up there, local archives extracted by rt-image.

use std::io::{Cursor, Read};
use std::os::fd::{AsFd, BorrowedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;

use super::{comps, resolve_path, StageState};
use crate::build::Builder;
use crate::context::{clean_rel, expand_glob, join, kind, open_parent, stat_at};
use crate::copy::{copy_children, copy_entry, mkdir_p, write_file, CopyOptions, Pick};
use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Copy, Step};
use crate::error::{Context as _, Error, Result};
use crate::image::ImageState;
use crate::workspace::Workspace;
/// `user[:group]` of `--chown`, names looked up in the rootfs; a user
/// alone gets its primary group (its own id when numeric).
fn resolve_chown(spec: &str, root: BorrowedFd<'_>) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => {
            let r = rt_image::config::resolve_user(u, root)?;
            (r.uid, Some(r.gid))
        }
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => rt_image::config::resolve_user(&format!("0:{g}"), root)?.gid,
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// A tar (plain, gzip, bzip2, xz or zstd) in `dir/name`, ready to read, or
/// `None` if the file is not one.
fn archive(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<Box<dyn Read>>> {
    let open = || -> Result<std::fs::File> {
        rt_image::fs::open_child(dir, name, OFlag::O_RDONLY)
            .map(std::fs::File::from)
            .ctx(|| format!("open {}", String::from_utf8_lossy(name)))
    };
    let mut head = [0u8; 6];
    let mut f = open()?;
    let n = f.read(&mut head).ctx(|| "read archive")?;
    let head = &head[..n];
    let f = open()?;
    let mut r: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(f))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(f).ctx(|| "start zstd decoder")?)
    } else {
        Box::new(f)
    };
    let mut block = Vec::with_capacity(512);
    if (&mut r).take(512).read_to_end(&mut block).is_err() || block.len() < 512 {
        return Ok(None);
    }
    if &block[257..262] != b"ustar" {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(block).chain(r))))
}

enum Sources {
    Context(Vec<Vec<Vec<u8>>>),
    Image(ImageState),
}

pub(super) fn copy(b: &mut Builder<'_>, st: &mut StageState, step: &Step, c: &Copy) -> Result<()> {
    let line = step.line;
    let kw = if c.add { "ADD" } else { "COPY" };
    let (srcs, dest, from, chown, chmod) = {
        let vars = |n: &str| st.lookup(n);
        let ex = Expander {
            escape: b.df.escape,
            vars: &vars,
        };
        let mut srcs = Vec::new();
        for s in &c.srcs {
            srcs.extend(ex.words(s).map_err(|e| b.err(line, e))?);
        }
        let dest = ex.word(&c.dest).map_err(|e| b.err(line, e))?;
        let from = match &c.from {
            Some(f) => Some(ex.word(f).map_err(|e| b.err(line, e))?),
            None => None,
        };
        let chown = match &c.chown {
            Some(f) => Some(ex.word(f).map_err(|e| b.err(line, e))?),
            None => None,
        };
        let chmod = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(&ex.word(m).map_err(|e| b.err(line, e))?, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| b.err(line, format!("{kw} --chmod={m}: not an octal mode")))?,
            ),
            None => None,
        };
        (srcs, dest, from, chown, chmod)
    };
    for s in &srcs {
        if s.contains("://") || s.starts_with("git@") {
            return Err(b.err(
                line,
                format!("{kw} {s}: remote sources are not supported (no network at build time)"),
            ));
        }
    }
    let dest_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.") || dest == "..";
    let dest_abs = resolve_path(&st.workdir(), &dest);
    let sources = match &from {
        None => {
            let mut all = Vec::new();
            for s in &srcs {
                let found = b.ctx.sources(s).map_err(|e| match e {
                    Error::Unsafe(r) => Error::Unsafe(format!("{}:{line}: {kw} {r}", b.df.file)),
                    e => b.err(line, format!("{kw}: {e}")),
                })?;
                all.extend(found);
            }
            Sources::Context(all)
        }
        Some(f) => Sources::Image(
            b.base(f, st.idx)
                .map_err(|e| b.err(line, format!("{kw} --from={f}: {e}")))?,
        ),
    };
    let count = match &sources {
        Sources::Context(v) => v.len(),
        Sources::Image(_) => srcs.len(),
    } + c.heredocs.len();
    if count > 1 && !dest_dir {
        return Err(b.err(
            line,
            format!("{kw} with more than one source needs a destination directory ending in /"),
        ));
    }
    let content = match &sources {
        Sources::Context(v) => format!("context {:?} {}", v, b.ctx.digest(v)?),
        Sources::Image(s) => format!("image {} {srcs:?}", s.id()),
    };
    let docs: Vec<(String, String)> = {
        let vars = |n: &str| st.lookup(n);
        let ex = Expander {
            escape: b.df.escape,
            vars: &vars,
        };
        let mut docs = Vec::new();
        for h in &c.heredocs {
            let content = if h.expand {
                ex.raw(&h.content).map_err(|e| b.err(line, e))?
            } else {
                h.content.clone()
            };
            docs.push((h.name.clone(), content));
        }
        docs
    };
    let key = format!(
        "copy add={}\n{content}\ndest={dest_abs} dir={dest_dir}\nchown={chown:?} chmod={chmod:?}\n{docs:?}",
        c.add
    );
    let created_by = format!(
        "/bin/sh -c #(nop) {kw} {} in {dest_abs}",
        if srcs.is_empty() {
            "heredoc".to_owned()
        } else {
            srcs.join(" ")
        }
    );
    let add = c.add;
    b.cached(st, &key, |b, st| {
        let ws = Workspace::mount(&b.store, &st.state)?;
        let root = ws.root_fd()?;
        let owner = match &chown {
            Some(spec) => Some(resolve_chown(spec, root.as_fd())?),
            None => None,
        };
        let dest_c = comps(&dest_abs);
        let into_dir = dest_dir
            || count > 1
            || rt_image::fs::open_dir_in_root(root.as_fd(), &join(&dest_c)).is_ok();
        let target = Target {
            root: root.as_fd(),
            dest: &dest_c,
            into_dir,
            add,
            parents: owner.unwrap_or((0, 0)),
        };
        match &sources {
            Sources::Context(paths) => {
                let opts = CopyOptions {
                    owner: Some(owner.unwrap_or((0, 0))),
                    chmod,
                };
                let ig = b.ctx.ignore();
                let filter = |r: &[Vec<u8>]| {
                    let c: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
                    match (ig.excluded(&c), ig.has_exceptions()) {
                        (false, _) => Pick::Copy,
                        (true, true) => Pick::Inside,
                        (true, false) => Pick::Skip,
                    }
                };
                for p in paths {
                    target.copy(b.ctx.fd(), p, &opts, &filter)?;
                }
            }
            Sources::Image(state) => {
                let sws = Workspace::mount(&b.store, state)?;
                let sroot = sws.root_fd()?;
                let opts = CopyOptions { owner, chmod };
                let none = |_: &[Vec<u8>]| Pick::Copy;
                for s in &srcs {
                    let mut n = 0;
                    let rel = clean_rel(s).map_err(Error::Unsafe)?;
                    for p in expand_glob(sroot.as_fd(), &rel)? {
                        let exists = open_parent(sroot.as_fd(), &p)
                            .is_ok_and(|(d, name)| stat_at(d.as_fd(), &name).is_ok());
                        if exists {
                            target.copy(sroot.as_fd(), &p, &opts, &none)?;
                            n += 1;
                        }
                    }
                    if n == 0 {
                        return Err(Error::Usage(format!(
                            "{}:{line}: {kw} --from: {s}: no such file or directory",
                            b.df.file
                        )));
                    }
                }
            }
        }
        for (name, data) in &docs {
            let (dir, fname) = if into_dir {
                (
                    mkdir_p(root.as_fd(), &dest_c, owner.unwrap_or((0, 0)))?,
                    name.as_bytes().to_vec(),
                )
            } else {
                let (last, parent) = dest_c
                    .split_last()
                    .ok_or_else(|| Error::Usage(format!("{kw}: cannot write a file at /")))?;
                (
                    mkdir_p(root.as_fd(), parent, owner.unwrap_or((0, 0)))?,
                    last.clone(),
                )
            };
            write_file(
                dir.as_fd(),
                &fname,
                &format!("{dest_abs}/{name}"),
                data.as_bytes(),
                chmod.unwrap_or(0o644),
                owner.unwrap_or((0, 0)),
            )?;
        }
        drop(root);
        b.finish_fs_step(st.state.clone(), ws, &created_by)
    })
}

struct Target<'a> {
    root: BorrowedFd<'a>,
    dest: &'a [Vec<u8>],
    into_dir: bool,
    add: bool,
    /// Owner of the directories the copy creates (buildah gives them the
    /// `--chown` owner).
    parents: (u32, u32),
}

impl Target<'_> {
    fn copy(
        &self,
        src_root: BorrowedFd<'_>,
        p: &[Vec<u8>],
        opts: &CopyOptions,
        filter: crate::copy::Filter<'_>,
    ) -> Result<()> {
        let shown_src = format!("/{}", String::from_utf8_lossy(&join(p)));
        let (sdir, sname) = open_parent(src_root, p).ctx(|| format!("open {shown_src}"))?;
        let st = stat_at(sdir.as_fd(), &sname).ctx(|| format!("stat {shown_src}"))?;
        let dest_shown = format!("/{}", String::from_utf8_lossy(&join(self.dest)));
        if kind(&st) == SFlag::S_IFDIR {
            let d = mkdir_p(self.root, self.dest, self.parents)?;
            let src = if sname.is_empty() {
                sdir
            } else {
                rt_image::fs::open_child(sdir.as_fd(), &sname, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                    .ctx(|| format!("open {shown_src}"))?
            };
            return copy_children(src.as_fd(), p, d.as_fd(), &dest_shown, opts, filter);
        }
        if self.add && kind(&st) == SFlag::S_IFREG {
            if let Some(mut tar) = archive(sdir.as_fd(), &sname)? {
                let d = mkdir_p(self.root, self.dest, self.parents)?;
                let aopts = rt_image::layer::apply::ApplyOptions::new(
                    rt_image::layer::apply::Whiteouts::Apply,
                    true,
                );
                rt_image::layer::apply::apply_layer(d.as_fd(), &mut tar, &aopts, &[], &shown_src)?;
                return Ok(());
            }
        }
        let (dir, name) = if self.into_dir {
            (mkdir_p(self.root, self.dest, self.parents)?, sname.clone())
        } else {
            let (last, parent) = self
                .dest
                .split_last()
                .ok_or_else(|| Error::Usage(format!("cannot copy {shown_src} over /")))?;
            (mkdir_p(self.root, parent, self.parents)?, last.clone())
        };
        let shown = format!(
            "{}/{}",
            dest_shown.trim_end_matches('/'),
            String::from_utf8_lossy(&name)
        );
        copy_entry(
            sdir.as_fd(),
            &sname,
            p,
            dir.as_fd(),
            &name,
            &shown,
            opts,
            filter,
        )
    }
}
