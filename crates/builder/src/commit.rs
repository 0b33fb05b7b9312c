//! A step's upper directory to a layer: the overlay's whiteouts and opaque
//! directories become `.wh.` entries (rt-image's layer writer), entries
//! sorted, times clamped to `SOURCE_DATE_EPOCH`; the blob goes to the store
//! and the directory itself becomes the layer's extracted form, so the next
//! step mounts it without extracting anything.

use rt_image::layer::write::LayerWriter;
use rt_image::layer::Compression;

use crate::error::{Error, Result};
use crate::image::{ImageState, Layer};
use crate::store::Store;
use crate::workspace::Workspace;

#[derive(Clone, Copy, Debug)]
pub struct CommitOptions {
    pub compression: Compression,
    /// `None`: gzip level 1 / zstd level 3, quick enough that committing a
    /// layer costs little next to writing its files.
    pub level: Option<u32>,
    pub source_date_epoch: Option<u64>,
}

/// Unmounts `ws` and appends its changes to `state` as a layer; returns
/// false (and adds nothing) when the step changed no files.
pub fn commit(
    store: &Store,
    mut ws: Workspace,
    state: &mut ImageState,
    opts: &CommitOptions,
) -> Result<bool> {
    ws.unmount()?;
    if ws.upper_is_empty()? {
        return Ok(false);
    }
    let w = store.layout().blob_writer()?;
    let level = opts.level.or(match opts.compression {
        Compression::Gzip => Some(1),
        _ => None,
    });
    let mut lw = LayerWriter::with_level(w, opts.compression, level)?;
    lw.clamp_mtime(opts.source_date_epoch);
    lw.add_overlay_upper(ws.upper())?;
    let (blob, digests) = lw.finish()?;
    let (digest, size) = blob.finish()?;
    if digest != digests.digest {
        return Err(Error::Usage(format!(
            "layer blob {digest} does not match what was written ({})",
            digests.digest
        )));
    }
    state.push_layer(Layer {
        digest,
        size,
        media_type: opts.compression.media_type().to_owned(),
        diff_id: digests.diff_id,
    });
    let chain = state.chain_ids().pop().expect("a layer was just added");
    store.layers().adopt(&chain, ws.upper())?;
    Ok(true)
}
