//! Writing OCI image layouts: blobs by digest, manifests, configs and
//! index.json tags (what the builder produces and the tests feed umoci).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageConfiguration, ImageIndex, ImageIndexBuilder,
    ImageManifestBuilder, MediaType,
};

use crate::digest::{Algorithm, Digest, HashWriter};
use crate::error::{Context, Error, Result};
use crate::image::REF_NAME;

/// An OCI image layout directory being written.
pub struct LayoutWriter {
    dir: PathBuf,
}

/// A blob being streamed into a layout; named by its digest on `finish`.
pub struct BlobWriter {
    inner: HashWriter<io::BufWriter<File>>,
    tmp: PathBuf,
    dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWriter {
    /// Moves the blob to `blobs/sha256/<hex>` and returns its digest and size.
    pub fn finish(self) -> Result<(Digest, u64)> {
        let (w, digest, size) = self.inner.finish();
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| format!("write {}", self.tmp.display()))?;
        drop(f);
        let dest = self.dir.join(digest.blob_path());
        fs::rename(&self.tmp, &dest).ctx(|| format!("rename to {}", dest.display()))?;
        Ok((digest, size))
    }
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Result<Descriptor> {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(oci_spec::image::Digest::from(digest))
        .size(size)
        .build()
        .map_err(|e| Error::Image(format!("descriptor: {e}")))
}

impl LayoutWriter {
    /// Opens `dir` as a layout, creating it (and an empty index) if needed.
    pub fn create(dir: &Path) -> Result<LayoutWriter> {
        fs::create_dir_all(dir.join("blobs/sha256")).ctx(|| format!("create {}", dir.display()))?;
        let layout = dir.join("oci-layout");
        if !layout.exists() {
            fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .ctx(|| format!("write {}", layout.display()))?;
        }
        let w = LayoutWriter {
            dir: dir.to_owned(),
        };
        if !dir.join("index.json").exists() {
            w.write_index(&empty_index()?)?;
        }
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A writer for a new blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = self.dir.join(format!(
            "blobs/sha256/.tmp-{}-{}",
            std::process::id(),
            next_serial()
        ));
        let f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        Ok(BlobWriter {
            inner: HashWriter::new(io::BufWriter::with_capacity(1 << 20, f), Algorithm::Sha256),
            tmp,
            dir: self.dir.clone(),
        })
    }

    pub fn put_blob(&self, data: &[u8]) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        w.write_all(data).ctx(|| "write blob")?;
        w.finish()
    }

    pub fn put_blob_from(&self, mut r: impl Read) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        io::copy(&mut r, &mut w).ctx(|| "write blob")?;
        w.finish()
    }

    /// Stores `value` as JSON and returns its descriptor.
    pub fn put_json(&self, media_type: &str, value: &impl serde::Serialize) -> Result<Descriptor> {
        let data =
            serde_json::to_vec(value).map_err(|e| Error::Image(format!("serialise: {e}")))?;
        let (d, size) = self.put_blob(&data)?;
        descriptor(media_type, &d, size)
    }

    /// Writes a config and manifest for `layers` (descriptors as returned by
    /// [`crate::layer::write::LayerWriter::finish`] plus a media type) and
    /// tags the manifest `tag` in index.json (replacing an older holder of
    /// the tag). The config's `rootfs.diff_ids` must already list the layers.
    pub fn add_image(
        &self,
        config: &ImageConfiguration,
        layers: Vec<Descriptor>,
        tag: Option<&str>,
    ) -> Result<Descriptor> {
        let config_desc = self.put_json("application/vnd.oci.image.config.v1+json", config)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_desc)
            .layers(layers)
            .build()
            .map_err(|e| Error::Image(format!("manifest: {e}")))?;
        let mut desc = self.put_json("application/vnd.oci.image.manifest.v1+json", &manifest)?;
        let mut platform = oci_spec::image::Platform::default();
        platform.set_architecture(config.architecture().clone());
        platform.set_os(config.os().clone());
        platform.set_variant(config.variant().clone());
        desc.set_platform(Some(platform));
        self.tag(desc.clone(), tag)?;
        Ok(desc)
    }

    /// Adds `desc` to index.json, named `tag` if given.
    pub fn tag(&self, mut desc: Descriptor, tag: Option<&str>) -> Result<()> {
        let mut index = self.read_index()?;
        let mut manifests = index.manifests().clone();
        if let Some(tag) = tag {
            manifests.retain(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .map(String::as_str)
                    != Some(tag)
            });
            let mut ann = desc.annotations().clone().unwrap_or_default();
            ann.insert(REF_NAME.to_owned(), tag.to_owned());
            desc.set_annotations(Some(ann));
        }
        manifests.push(desc);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    pub fn read_index(&self) -> Result<ImageIndex> {
        let p = self.dir.join("index.json");
        let data = fs::read(&p).ctx(|| format!("read {}", p.display()))?;
        serde_json::from_slice(&data).map_err(|e| Error::Image(format!("{}: {e}", p.display())))
    }

    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let p = self.dir.join("index.json");
        let tmp = self.dir.join(".index.json.tmp");
        let data = serde_json::to_vec(index).map_err(|e| Error::Image(format!("index: {e}")))?;
        fs::write(&tmp, data).ctx(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, &p).ctx(|| format!("rename {}", p.display()))
    }

    /// Packs the layout into an oci-archive tar at `out`.
    pub fn write_archive(&self, out: &Path) -> Result<()> {
        let f = File::create(out).ctx(|| format!("create {}", out.display()))?;
        let mut b = tar::Builder::new(io::BufWriter::new(f));
        b.follow_symlinks(false);
        for name in ["oci-layout", "index.json"] {
            b.append_path_with_name(self.dir.join(name), name)
                .ctx(|| format!("archive {name}"))?;
        }
        b.append_dir_all("blobs", self.dir.join("blobs"))
            .ctx(|| "archive blobs")?;
        b.into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .ctx(|| format!("write {}", out.display()))?;
        Ok(())
    }
}

fn empty_index() -> Result<ImageIndex> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .annotations(HashMap::<String, String>::new())
        .build()
        .map_err(|e| Error::Image(format!("index: {e}")))
}

fn next_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A layer descriptor for a blob written with a [`crate::layer::write::LayerWriter`].
pub fn layer_descriptor(
    compression: crate::layer::Compression,
    digest: &Digest,
    size: u64,
) -> Result<Descriptor> {
    descriptor(compression.media_type(), digest, size)
}
