//! The extracted-layer store: each layer unpacked once, alone, in overlayfs
//! form (whiteouts as 0/0 devices, opaque directories by xattr), under
//! `DIR/layers/<chain id>`; a bundle's rootfs is then an overlay mount of
//! them with a private upper directory, so another bundle of the same image
//! costs a mount.
//!
//! Layers are keyed by chain id, not diff_id: a layer dir's implied
//! directories take their metadata from the layers below it, so its content
//! depends on the whole stack. A layer is extracted into `DIR/tmp/` and
//! renamed into place once verified, so a present layer dir is complete.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::fs::{open_dir_nofollow, remove_tree};
use crate::image::Image;
use crate::layer::apply::{apply_layer, ApplyOptions, ApplyStats, Whiteouts};
use crate::layer::LayerInfo;
use crate::layer::{read_layer, LayerDigests};
use crate::tree::BlobReader;

pub struct LayerStore {
    root: PathBuf,
}

/// How one layer got into the store.
#[derive(Debug)]
pub enum Stored {
    Cached,
    Extracted(LayerDigests, ApplyStats),
}

impl LayerStore {
    /// Opens (creating) the store at `root`, which must be an absolute path
    /// without `,` or `:` (overlayfs option syntax).
    pub fn open(root: &Path) -> Result<LayerStore> {
        std::fs::create_dir_all(root.join("layers"))
            .ctx(|| format!("create {}", root.display()))?;
        std::fs::create_dir_all(root.join("tmp")).ctx(|| format!("create {}", root.display()))?;
        let root = root
            .canonicalize()
            .ctx(|| format!("resolve {}", root.display()))?;
        check_option_path(&root)?;
        Ok(LayerStore { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory holding the layer whose chain id is `chain`.
    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        let name = match chain.algorithm() {
            crate::digest::Algorithm::Sha256 => chain.hex().to_owned(),
            a => format!("{}-{}", a.name(), chain.hex()),
        };
        self.root.join("layers").join(name)
    }

    /// Makes sure every layer of `image` is in the store, extracting those
    /// that are not; returns the layer directories bottom first.
    pub fn ensure(
        &self,
        image: &Image,
        progress: Option<&(dyn Fn(u64) + Sync)>,
        each: impl FnMut(usize, &Stored),
    ) -> Result<Vec<PathBuf>> {
        self.ensure_layers(&image.layers, &|i| image.layer_blob(i), progress, each)
    }

    /// [`LayerStore::ensure`] for layers that belong to no opened image (the
    /// builder's intermediate images): `blob(i)` opens layer `i`'s blob.
    pub fn ensure_layers<'b>(
        &self,
        layers: &[LayerInfo],
        blob: &dyn Fn(usize) -> Result<BlobReader<'b>>,
        progress: Option<&(dyn Fn(u64) + Sync)>,
        mut each: impl FnMut(usize, &Stored),
    ) -> Result<Vec<PathBuf>> {
        let mut chains: Vec<Digest> = Vec::with_capacity(layers.len());
        for l in layers {
            chains.push(Digest::chain(chains.last(), &l.diff_id));
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (i, chain) in chains.iter().enumerate() {
            let dir = self.layer_dir(chain);
            if dir.is_dir() {
                each(i, &Stored::Cached);
                dirs.push(dir);
                continue;
            }
            let tmp = self
                .root
                .join("tmp")
                .join(format!("{}.{}", chain.hex(), std::process::id()));
            remove_tree(&tmp)?;
            std::fs::create_dir(&tmp).ctx(|| format!("create {}", tmp.display()))?;
            let result = self.extract(layers, blob, i, &tmp, &dirs, progress);
            let stored = match result {
                Ok(s) => s,
                Err(e) => {
                    let _ = remove_tree(&tmp);
                    return Err(e);
                }
            };
            match std::fs::rename(&tmp, &dir) {
                Ok(()) => {}
                // Another rt-unpack stored it meanwhile: theirs is as good.
                Err(e) if dir.is_dir() => {
                    let _ = e;
                    remove_tree(&tmp)?;
                }
                Err(e) => {
                    let _ = remove_tree(&tmp);
                    return Err(e).ctx(|| format!("rename to {}", dir.display()));
                }
            }
            each(i, &stored);
            dirs.push(dir);
        }
        Ok(dirs)
    }

    fn extract<'b>(
        &self,
        layers: &[LayerInfo],
        blob: &dyn Fn(usize) -> Result<BlobReader<'b>>,
        i: usize,
        tmp: &Path,
        below: &[PathBuf],
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Stored> {
        let root = open_dir_nofollow(tmp)?;
        let lowers: Vec<OwnedFd> = below
            .iter()
            .rev()
            .map(|p| open_dir_nofollow(p))
            .collect::<Result<_>>()?;
        let lower_fds: Vec<BorrowedFd<'_>> = lowers.iter().map(|f| f.as_fd()).collect();
        let info = &layers[i];
        let label = info.label(i);
        let opts = ApplyOptions::new(Whiteouts::Overlay, true);
        let (stats, digests) = read_layer(blob(i)?, info, &label, progress, |tar| {
            apply_layer(root.as_fd(), tar, &opts, &lower_fds, &label)
        })?;
        Ok(Stored::Extracted(digests, stats))
    }

    /// Puts `dir`, a directory in overlayfs layer form on the store's
    /// filesystem (an overlay's upper directory, say), in place as the layer
    /// whose chain id is `chain`. A layer already there is kept and `dir`
    /// removed: both hold the same content.
    pub fn adopt(&self, chain: &Digest, dir: &Path) -> Result<PathBuf> {
        let dest = self.layer_dir(chain);
        if dest.is_dir() {
            remove_tree(dir)?;
            return Ok(dest);
        }
        match std::fs::rename(dir, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if dest.is_dir() => {
                remove_tree(dir)?;
                Ok(dest)
            }
            Err(e) => Err(e).ctx(|| format!("rename {} to {}", dir.display(), dest.display())),
        }
    }

    /// Mounts the overlay of `layers` (bottom first) at `target`, writes
    /// going to `upper` (with `work` beside it, same filesystem).
    pub fn mount(
        &self,
        layers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<()> {
        self.mount_with(layers, upper, work, target, "")
    }

    /// [`LayerStore::mount`] with more overlayfs options (`,opt=value...`).
    pub fn mount_with(
        &self,
        layers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        extra: &str,
    ) -> Result<()> {
        let empty;
        let mut lowers: Vec<&Path> = layers.iter().rev().map(PathBuf::as_path).collect();
        if lowers.is_empty() {
            empty = self.root.join("empty");
            std::fs::create_dir_all(&empty).ctx(|| format!("create {}", empty.display()))?;
            lowers.push(&empty);
        }
        for p in lowers.iter().chain([&upper, &work]) {
            check_option_path(p)?;
        }
        let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}{extra}",
            lowerdir.join(":"),
            upper.display(),
            work.display()
        );
        // mount(2) takes one page of options.
        if data.len() >= 4096 {
            return Err(Error::Usage(format!(
                "{} layers are too many for one overlay mount here (options of {} bytes, at most 4095): use a store path shorter than {}",
                layers.len(),
                data.len(),
                self.root.display()
            )));
        }
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .ctx(|| format!("mount overlay on {}", target.display()))
    }
}

fn check_option_path(p: &Path) -> Result<()> {
    let s = p.to_string_lossy();
    if !p.is_absolute() || s.contains([',', ':', '\\']) {
        return Err(Error::Usage(format!(
            "{}: overlay paths must be absolute and free of ',', ':' and '\\'",
            p.display()
        )));
    }
    Ok(())
}

/// Unmounts a store bundle's rootfs (lazily if asked).
pub fn unmount(target: &Path, lazy: bool) -> Result<()> {
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    umount2(target, flags).ctx(|| format!("unmount {}", target.display()))
}
