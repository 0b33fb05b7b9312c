//! Image to bundle: the rootfs (layers applied in place, or an overlay of
//! the layer store), then config.json, built in a temporary sibling of the
//! bundle and renamed into place, so a failure at any point (bad digest,
//! damaged data, full disk) leaves no bundle at all.
//!
//! No fsync by default (as umoci): the rename is atomic, but after a crash
//! a bundle's files may be incomplete. `fsync` syncs the filesystem once
//! before the rename.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::config::{runtime_spec, ConfigOptions};
use crate::error::{Context, Error, Result};
use crate::fs::{is_mount_point, open_dir_nofollow, remove_tree};
use crate::image::Image;
use crate::layer::apply::{apply_layer, ApplyOptions, ApplyStats, Whiteouts};
use crate::layer::{read_layer, LayerDigests};
use crate::store::{self, LayerStore, Stored};

/// Where a store bundle keeps its overlay's upper and work directories.
pub const OVERLAY_DIR: &str = "overlay";

/// Progress reports, called from the unpacking threads.
pub trait Progress: Send + Sync {
    /// Layer `index` of `total` starts (`cached`: already in the store).
    fn layer(&self, index: usize, total: usize, size: Option<u64>, cached: bool);
    /// `n` more bytes of the current layer's blob were read.
    fn bytes(&self, n: u64);
}

#[derive(Default)]
pub struct UnpackOptions {
    pub config: ConfigOptions,
    /// Build the rootfs as an overlay of this layer store.
    pub store: Option<PathBuf>,
    pub fsync: bool,
    pub progress: Option<Box<dyn Progress>>,
}

#[derive(Debug, Default)]
pub struct LayerReport {
    /// `None` for a layer found in the store.
    pub digests: Option<LayerDigests>,
    pub stats: ApplyStats,
}

#[derive(Debug, Default)]
pub struct UnpackReport {
    pub layers: Vec<LayerReport>,
    pub warnings: Vec<String>,
}

/// Drops the half-made bundle unless disarmed.
struct Partial {
    dir: PathBuf,
    mounted: bool,
    armed: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let rootfs = self.dir.join("rootfs");
        if self.mounted {
            let _ = store::unmount(&rootfs, true);
        }
        let _ = remove_tree(&self.dir);
    }
}

fn check_bundle(bundle: &Path) -> Result<()> {
    match std::fs::symlink_metadata(bundle) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("stat {}", bundle.display())),
        Ok(md) if md.is_dir() => {
            let mut it = std::fs::read_dir(bundle).ctx(|| format!("read {}", bundle.display()))?;
            if it.next().is_some() {
                Err(Error::Usage(format!(
                    "bundle {} exists and is not empty",
                    bundle.display()
                )))
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(Error::Usage(format!(
            "bundle {} exists and is not a directory",
            bundle.display()
        ))),
    }
}

/// Unpacks `image` into a new bundle at `bundle` (absent or an empty directory).
pub fn unpack(image: &Image, bundle: &Path, opts: &UnpackOptions) -> Result<UnpackReport> {
    check_bundle(bundle)?;
    let bundle = absolute(bundle)?;
    let (parent, name) = crate::fs::split(&bundle)?;
    std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.rt-unpack-{}",
        String::from_utf8_lossy(name),
        std::process::id()
    ));
    remove_tree(&tmp)?;
    std::fs::create_dir(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    let mut partial = Partial {
        dir: tmp.clone(),
        mounted: false,
        armed: true,
    };
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir(&rootfs).ctx(|| format!("create {}", rootfs.display()))?;

    let progress = opts.progress.as_deref();
    let bytes = |n: u64| {
        if let Some(p) = progress {
            p.bytes(n)
        }
    };
    let bytes_cb: Option<&(dyn Fn(u64) + Sync)> = progress.map(|_| &bytes as &(dyn Fn(u64) + Sync));
    let total = image.layers.len();
    let mut report = UnpackReport::default();

    match &opts.store {
        None => {
            let root = open_dir_nofollow(&rootfs)?;
            for (i, info) in image.layers.iter().enumerate() {
                if let Some(p) = progress {
                    p.layer(i, total, info.size, false);
                }
                let label = info.label(i);
                let aopts = ApplyOptions::new(Whiteouts::Apply, i == 0);
                let (stats, digests) =
                    read_layer(image.layer_blob(i)?, info, &label, bytes_cb, |tar| {
                        apply_layer(root.as_fd(), tar, &aopts, &[], &label)
                    })?;
                report.warnings.extend(stats.warnings.iter().cloned());
                report.layers.push(LayerReport {
                    digests: Some(digests),
                    stats,
                });
            }
        }
        Some(store_dir) => {
            let store = LayerStore::open(store_dir)?;
            let dirs = store.ensure(image, bytes_cb, |i, s| {
                if let Some(p) = progress {
                    p.layer(i, total, image.layers[i].size, matches!(s, Stored::Cached));
                }
                report.layers.push(match s {
                    Stored::Cached => LayerReport::default(),
                    Stored::Extracted(d, st) => {
                        report.warnings.extend(st.warnings.iter().cloned());
                        LayerReport {
                            digests: Some(d.clone()),
                            stats: st.clone(),
                        }
                    }
                });
            })?;
            let upper = tmp.join(OVERLAY_DIR).join("upper");
            let work = tmp.join(OVERLAY_DIR).join("work");
            std::fs::create_dir_all(&upper).ctx(|| format!("create {}", upper.display()))?;
            std::fs::create_dir_all(&work).ctx(|| format!("create {}", work.display()))?;
            if let Some(top) = dirs.last() {
                copy_root_meta(top, &upper)?;
            }
            store.mount(&dirs, &upper, &work, &rootfs)?;
            partial.mounted = true;
        }
    }

    let root = open_dir_nofollow(&rootfs)?;
    let spec = runtime_spec(&image.config, root.as_fd(), &opts.config)?;
    let config = tmp.join(rt_spec::CONFIG_FILE);
    std::fs::write(&config, rt_spec::to_json(&spec))
        .ctx(|| format!("write {}", config.display()))?;
    if opts.fsync {
        nix::unistd::syncfs(root.as_fd()).ctx(|| format!("sync {}", rootfs.display()))?;
        let b = open_dir_nofollow(&tmp)?;
        nix::unistd::syncfs(b.as_fd()).ctx(|| format!("sync {}", tmp.display()))?;
    }
    drop(root);
    std::fs::rename(&tmp, &bundle)
        .ctx(|| format!("rename {} to {}", tmp.display(), bundle.display()))?;
    partial.armed = false;
    Ok(report)
}

/// The merged root shows the upper directory's owner, mode and times; give
/// it the top layer's.
pub fn copy_root_meta(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(from).ctx(|| format!("stat {}", from.display()))?;
    let fd = open_dir_nofollow(to)?;
    nix::unistd::fchown(
        fd.as_fd(),
        Some(nix::unistd::Uid::from_raw(md.uid())),
        Some(nix::unistd::Gid::from_raw(md.gid())),
    )
    .ctx(|| format!("chown {}", to.display()))?;
    nix::sys::stat::fchmod(
        fd.as_fd(),
        nix::sys::stat::Mode::from_bits_truncate(md.mode() & 0o7777),
    )
    .ctx(|| format!("chmod {}", to.display()))?;
    let t = |s, ns| nix::sys::time::TimeSpec::new(s, ns);
    nix::sys::stat::futimens(
        fd.as_fd(),
        &t(md.atime(), md.atime_nsec()),
        &t(md.mtime(), md.mtime_nsec()),
    )
    .ctx(|| format!("set times of {}", to.display()))
}

/// Takes down a bundle made by [`unpack`]: unmounts its rootfs if it is an
/// overlay, then removes the bundle (never crossing into another mount).
pub fn cleanup(bundle: &Path) -> Result<()> {
    let bundle = absolute(bundle)?;
    let rootfs = bundle.join("rootfs");
    if is_mount_point(&rootfs)? {
        match store::unmount(&rootfs, false) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EBUSY as i32) => {
                return Err(Error::Usage(format!(
                    "{}: busy (is a container running from this bundle?)",
                    rootfs.display()
                )))
            }
            Err(e) => return Err(e),
        }
    }
    remove_tree(&bundle)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_owned());
    }
    Ok(std::env::current_dir().ctx(|| "current directory")?.join(p))
}
