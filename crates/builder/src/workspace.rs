//! A writable root filesystem over an image: the store's extracted layers
//! as overlay lower directories and a fresh upper directory, all under one
//! temporary directory in the store. Whatever happens (success, an error,
//! Ctrl-C), dropping it unmounts and removes everything.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rt_image::fs::{open_dir_nofollow, remove_tree};
use rt_image::store;

use crate::error::{Context, Result};
use crate::image::ImageState;
use crate::store::Store;

/// Directory renames become copies and no file is a metadata-only copy, so
/// the upper directory always holds whole files and directories: a layer.
const OVERLAY_OPTIONS: &str = ",redirect_dir=off,metacopy=off,index=off";

pub struct Workspace {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
    /// Staging mounts for RUN --mount sources, taken down with the workspace.
    extra: Vec<PathBuf>,
    persistent: bool,
}

/// A name unique in this process and among concurrent builds.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Workspace {
    /// Mounts `state`'s layers (extracting those the store lacks) with an
    /// empty upper directory at `<dir>/bundle/rootfs`, all removed on drop.
    pub fn mount(store: &Store, state: &ImageState) -> Result<Workspace> {
        let dir = store.tmp().join(unique("build"));
        std::fs::create_dir(&dir).ctx(|| format!("create {}", dir.display()))?;
        Self::mount_in(store, state, dir, false)
    }

    /// A workspace that outlives this process (a working container of the
    /// imperative verbs): `dir` keeps its upper directory, mounted again
    /// if it is not mounted now; dropping it changes nothing.
    pub fn attach(store: &Store, state: &ImageState, dir: PathBuf) -> Result<Workspace> {
        Self::mount_in(store, state, dir, true)
    }

    fn mount_in(
        store: &Store,
        state: &ImageState,
        dir: PathBuf,
        persistent: bool,
    ) -> Result<Workspace> {
        let mut ws = Workspace {
            bundle: dir.join("bundle"),
            rootfs: dir.join("bundle/rootfs"),
            upper: dir.join("upper"),
            dir,
            mounted: false,
            extra: Vec::new(),
            persistent,
        };
        let work = ws.dir.join("work");
        let fresh = !ws.upper.exists();
        for d in [&ws.upper, &work, &ws.bundle, &ws.rootfs] {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        if persistent && rt_image::fs::is_mount_point(&ws.rootfs)? {
            return Ok(ws);
        }
        let infos = state.layer_infos();
        let blob = |i: usize| -> rt_image::Result<rt_image::BlobReader<'static>> {
            let p = store.blob_path(&state.layers[i].digest);
            let f = std::fs::File::open(&p).map_err(|err| rt_image::Error::Io {
                context: format!("open {}", p.display()),
                err,
            })?;
            Ok(Box::new(f))
        };
        let dirs = store
            .layers()
            .ensure_layers(&infos, &blob, None, |_, _| {})?;
        if let (Some(top), true) = (dirs.last(), fresh || !persistent) {
            rt_image::unpack::copy_root_meta(top, &ws.upper)?;
        }
        mount_overlay(store, &dirs, &ws.upper, &work, &ws.rootfs)?;
        ws.mounted = true;
        Ok(ws)
    }

    pub fn root_fd(&self) -> Result<OwnedFd> {
        Ok(open_dir_nofollow(&self.rootfs)?)
    }

    /// Remembers a mount made under the workspace directory.
    pub fn track_mount(&mut self, p: PathBuf) {
        self.extra.push(p);
    }

    pub fn unmount(&mut self) -> Result<()> {
        for p in self.extra.drain(..).rev() {
            store::unmount(&p, true)?;
        }
        if self.mounted || (self.persistent && rt_image::fs::is_mount_point(&self.rootfs)?) {
            store::unmount(&self.rootfs, false)?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Whether the step wrote nothing.
    pub fn upper_is_empty(&self) -> Result<bool> {
        let mut it =
            std::fs::read_dir(&self.upper).ctx(|| format!("read {}", self.upper.display()))?;
        Ok(it.next().is_none())
    }

    pub fn upper(&self) -> &Path {
        &self.upper
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for p in self.extra.drain(..).rev() {
            let _ = store::unmount(&p, true);
        }
        if self.persistent {
            return;
        }
        if self.mounted {
            let _ = store::unmount(&self.rootfs, true);
        }
        let _ = remove_tree(&self.dir);
    }
}

/// The overlay of `layers` (bottom first): through `fsconfig` with one
/// `lowerdir+` per layer where the kernel has it (6.8), so no layer count
/// runs into mount(2)'s one page of options; else the classic mount.
fn mount_overlay(
    store: &Store,
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    if !layers.is_empty() && mount_fsconfig(layers, upper, work, target).is_ok() {
        return Ok(());
    }
    Ok(store
        .layers()
        .mount_with(layers, upper, work, target, OVERLAY_OPTIONS)?)
}

fn mount_fsconfig(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> rt_sys::Result<()> {
    use nix::fcntl::OFlag;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let fc = rt_sys::mount::FsContext::open("overlay")?;
    // The first lower given is the topmost.
    for l in layers.iter().rev() {
        fc.set("lowerdir+", &s(l))?;
    }
    fc.set("upperdir", &s(upper))?;
    fc.set("workdir", &s(work))?;
    for opt in OVERLAY_OPTIONS.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        fc.set(k, v)?;
    }
    let m = fc.mount(0)?;
    let t = nix::fcntl::open(
        target,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    rt_sys::mount::move_mount_onto(m.as_fd(), t.as_fd())
}

pub fn is_mounted(p: &Path) -> bool {
    rt_image::fs::is_mount_point(p).unwrap_or(false)
}

pub fn unmount(p: &Path) -> Result<()> {
    Ok(store::unmount(p, false)?)
}
