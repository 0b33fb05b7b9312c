//! Opening an image by a skopeo-style reference: find its manifest (picking
//! this machine's platform from an index), verify and parse its config, and
//! list its layers with everything they must be checked against.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::digest::{read_verified, Digest};
use crate::error::{Error, Result};
use crate::layer::{Compression, LayerInfo};
use crate::platform::Platform;
use crate::tree::{BlobReader, DirTree, TarTree, Tree};

/// The annotation an OCI layout's index.json names images by.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const JSON_LIMIT: u64 = 16 << 20;
const CONFIG_LIMIT: u64 = 64 << 20;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `oci:DIR[:REF]`, an OCI image layout directory.
    Oci,
    /// `oci-archive:FILE[:REF]`, a tar of an OCI image layout.
    OciArchive,
    /// `docker-archive:FILE[:REF]`, what `docker save` writes.
    DockerArchive,
}

/// An image source as skopeo and podman spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub transport: Transport,
    pub path: PathBuf,
    /// A tag (`org.opencontainers.image.ref.name`, or for docker-archive a
    /// `RepoTags` entry or `@N`), or a digest; `None` for the default.
    pub reference: Option<String>,
}

impl FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<ImageRef> {
        let (t, rest) = s.split_once(':').ok_or_else(|| {
            Error::Usage(format!(
                "image {s:?}: expected oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:REF]"
            ))
        })?;
        let transport = match t {
            "oci" => Transport::Oci,
            "oci-archive" => Transport::OciArchive,
            "docker-archive" => Transport::DockerArchive,
            _ => {
                return Err(Error::Usage(format!(
                    "image {s:?}: unknown transport {t:?} (oci, oci-archive, docker-archive)"
                )))
            }
        };
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) if !r.is_empty() => (p, Some(r.to_owned())),
            Some((p, _)) => (p, None),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(Error::Usage(format!("image {s:?}: no path")));
        }
        Ok(ImageRef {
            transport,
            path: PathBuf::from(path),
            reference,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.transport {
            Transport::Oci => "oci",
            Transport::OciArchive => "oci-archive",
            Transport::DockerArchive => "docker-archive",
        };
        write!(f, "{t}:{}", self.path.display())?;
        if let Some(r) = &self.reference {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

/// An opened image: its verified config and its layers, ready to be read.
pub struct Image {
    /// The manifest's digest (`None` for docker-archive, which has none).
    pub manifest_digest: Option<Digest>,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// The config blob as stored, for copying it unchanged.
    pub config_raw: Vec<u8>,
    pub layers: Vec<LayerInfo>,
    layer_paths: Vec<String>,
    tree: Box<dyn Tree>,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("source", &self.tree.name())
            .field("config_digest", &self.config_digest)
            .field("layers", &self.layers)
            .finish()
    }
}

impl Image {
    /// Opens `r`, picking `platform`'s manifest where the reference names an
    /// index. The manifest and config are verified here; layers when read.
    pub fn open(r: &ImageRef, platform: &Platform) -> Result<Image> {
        match r.transport {
            Transport::Oci => open_layout(Box::new(DirTree::open(&r.path)?), r, platform),
            Transport::OciArchive => open_layout(Box::new(TarTree::open(&r.path)?), r, platform),
            Transport::DockerArchive => open_docker(Box::new(TarTree::open(&r.path)?), r),
        }
    }

    /// The blob of layer `i`, unverified: pass it to [`crate::layer::read_layer`].
    pub fn layer_blob(&self, i: usize) -> Result<BlobReader<'_>> {
        let path = &self.layer_paths[i];
        match self.tree.open(path)? {
            Some((r, _)) => Ok(r),
            None => Err(Error::Image(format!(
                "{}: {} is missing ({})",
                self.tree.name().display(),
                self.layers[i].label(i),
                path
            ))),
        }
    }

    /// The chain id of each layer (the id of the stack up to it).
    pub fn chain_ids(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let c = Digest::chain(out.last(), &l.diff_id);
            out.push(c);
        }
        out
    }
}

fn read_json_file(tree: &dyn Tree, path: &str) -> Result<Vec<u8>> {
    let (r, _) = tree
        .open(path)?
        .ok_or_else(|| Error::Image(format!("{}: no {path}", tree.name().display())))?;
    read_verified(
        r,
        &format!("{}: {path}", tree.name().display()),
        None,
        None,
        JSON_LIMIT,
    )
}

fn read_blob(
    tree: &dyn Tree,
    digest: &Digest,
    size: Option<u64>,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let path = digest.blob_path();
    let (r, _) = tree.open(&path)?.ok_or_else(|| {
        Error::Image(format!(
            "{}: {what} {digest} is missing",
            tree.name().display()
        ))
    })?;
    read_verified(r, &format!("{what} {digest}"), Some(digest), size, limit)
}

fn parse<T: serde::de::DeserializeOwned>(data: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(data).map_err(|e| Error::Image(format!("{what}: invalid: {e}")))
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Digest::try_from(d.digest())
}

fn open_layout(tree: Box<dyn Tree>, r: &ImageRef, platform: &Platform) -> Result<Image> {
    let name = tree.name().display().to_string();
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout = {
        let (r, _) = tree.open("oci-layout")?.ok_or_else(|| {
            Error::Image(format!(
                "{name}: not an OCI image layout (no oci-layout file)"
            ))
        })?;
        read_verified(r, &format!("{name}: oci-layout"), None, None, 4096)?
    };
    let layout: Layout = parse(&layout, &format!("{name}: oci-layout"))?;
    if !layout.version.starts_with("1.") {
        return Err(Error::Image(format!(
            "{name}: unsupported image layout version {:?}",
            layout.version
        )));
    }
    let index: ImageIndex = parse(
        &read_json_file(&*tree, "index.json")?,
        &format!("{name}: index.json"),
    )?;

    let wanted = r.reference.as_deref();
    let desc: Descriptor = match wanted.map(Digest::from_str) {
        Some(Ok(digest)) => match index
            .manifests()
            .iter()
            .find(|d| descriptor_digest(d).ok().as_ref() == Some(&digest))
        {
            Some(d) => d.clone(),
            None => {
                // A digest need not be tagged: take the blob, typed by its content.
                let data = read_blob(&*tree, &digest, None, "manifest", JSON_LIMIT)?;
                let v: serde_json::Value = parse(&data, &format!("manifest {digest}"))?;
                let mt = v
                    .get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        if v.get("manifests").is_some() {
                            INDEX_TYPES[0].to_owned()
                        } else {
                            MANIFEST_TYPES[0].to_owned()
                        }
                    });
                oci_spec::image::DescriptorBuilder::default()
                    .media_type(mt.as_str())
                    .digest(oci_spec::image::Digest::from(&digest))
                    .size(data.len() as u64)
                    .build()
                    .map_err(|e| Error::Image(format!("manifest {digest}: {e}")))?
            }
        },
        _ => {
            let tag = wanted.unwrap_or("latest");
            let with_tag = |t: &str| -> Vec<Descriptor> {
                index
                    .manifests()
                    .iter()
                    .filter(|d| {
                        d.annotations()
                            .as_ref()
                            .and_then(|a| a.get(REF_NAME))
                            .map(String::as_str)
                            == Some(t)
                    })
                    .cloned()
                    .collect()
            };
            let mut tagged = with_tag(tag);
            // Layouts that name images NAME:TAG (rt-build's store, buildah's
            // pushes) take a bare NAME as NAME:latest, as image tools do.
            if tagged.is_empty() && wanted.is_some() && !tag.contains(':') {
                tagged = with_tag(&format!("{tag}:latest"));
            }
            let candidates = if !tagged.is_empty() {
                tagged
            } else if wanted.is_none() && index.manifests().len() == 1 {
                // skopeo's reading of a layout holding a single image
                index.manifests().clone()
            } else {
                let tags: Vec<&str> = index
                    .manifests()
                    .iter()
                    .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME).map(String::as_str))
                    .collect();
                return Err(Error::Image(format!(
                    "{name}: no image tagged {tag:?} (tags: {})",
                    if tags.is_empty() {
                        "none".to_owned()
                    } else {
                        tags.join(", ")
                    }
                )));
            };
            pick_platform(&candidates, platform, &format!("{name}:{tag}"))?
        }
    };
    let (manifest_digest, manifest) = resolve_manifest(&*tree, desc, platform, 0)?;
    let config_desc = manifest.config();
    let config_digest = descriptor_digest(config_desc)?;
    let config_raw = read_blob(
        &*tree,
        &config_digest,
        Some(config_desc.size()),
        "config",
        CONFIG_LIMIT,
    )?;
    let config: ImageConfiguration = parse(&config_raw, &format!("config {config_digest}"))?;
    let diff_ids = diff_ids(&config, &config_digest)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::Image(format!(
            "manifest {manifest_digest} lists {} layers but its config has {} diff_ids",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    let mut layer_paths = Vec::new();
    for (l, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let mt = l.media_type().to_string();
        if Compression::from_media_type(&mt).is_none() {
            return Err(Error::Image(format!(
                "layer {}: unsupported media type {mt}",
                l.digest()
            )));
        }
        let digest = descriptor_digest(l)?;
        layer_paths.push(digest.blob_path());
        layers.push(LayerInfo {
            media_type: mt,
            digest: Some(digest),
            size: Some(l.size()),
            diff_id,
        });
    }
    Ok(Image {
        manifest_digest: Some(manifest_digest),
        config_digest,
        config,
        config_raw,
        layers,
        layer_paths,
        tree,
    })
}

fn diff_ids(config: &ImageConfiguration, digest: &Digest) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|e| Error::Image(format!("config {digest}: diff_ids: {e}")))
        })
        .collect()
}

fn pick_platform(candidates: &[Descriptor], platform: &Platform, what: &str) -> Result<Descriptor> {
    if candidates.len() == 1 {
        let d = &candidates[0];
        if let Some(p) = d.platform() {
            let (os, arch) = (p.os().to_string(), p.architecture().to_string());
            if platform.score(&os, &arch, p.variant().as_deref()).is_none() {
                return Err(Error::Image(format!(
                    "{what}: image is for {os}/{arch}, not {platform}"
                )));
            }
        }
        return Ok(d.clone());
    }
    let mut best: Option<(u8, &Descriptor)> = None;
    let mut seen = Vec::new();
    for d in candidates {
        let Some(p) = d.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        seen.push(match p.variant() {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
        if let Some(s) = platform.score(&os, &arch, p.variant().as_deref()) {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, d));
            }
        }
    }
    match best {
        Some((_, d)) => Ok(d.clone()),
        None => Err(Error::Image(format!(
            "{what}: no manifest for {platform} (has: {})",
            if seen.is_empty() {
                "no platforms".to_owned()
            } else {
                seen.join(", ")
            }
        ))),
    }
}

fn resolve_manifest(
    tree: &dyn Tree,
    desc: Descriptor,
    platform: &Platform,
    depth: u32,
) -> Result<(Digest, ImageManifest)> {
    let digest = descriptor_digest(&desc)?;
    let mt = desc.media_type().to_string();
    if depth > 4 {
        return Err(Error::Image(format!("index {digest}: nested too deeply")));
    }
    let data = read_blob(tree, &digest, Some(desc.size()), "manifest", JSON_LIMIT)?;
    if INDEX_TYPES.contains(&mt.as_str()) {
        let index: ImageIndex = parse(&data, &format!("index {digest}"))?;
        let d = pick_platform(index.manifests(), platform, &format!("index {digest}"))?;
        return resolve_manifest(tree, d, platform, depth + 1);
    }
    if !MANIFEST_TYPES.contains(&mt.as_str()) {
        return Err(Error::Image(format!(
            "{digest}: unsupported manifest media type {mt}"
        )));
    }
    let m: ImageManifest = parse(&data, &format!("manifest {digest}"))?;
    Ok((digest, m))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// `blobs/<alg>/<hex>` or `<hex>.json` (docker's config name is its digest).
fn digest_in_name(path: &str) -> Option<Digest> {
    if let Some(rest) = path.strip_prefix("blobs/") {
        let (alg, hex) = rest.split_once('/')?;
        return format!("{alg}:{hex}").parse().ok();
    }
    let hex = path.strip_suffix(".json")?;
    format!("sha256:{hex}").parse().ok()
}

fn open_docker(tree: Box<dyn Tree>, r: &ImageRef) -> Result<Image> {
    let name = tree.name().display().to_string();
    let entries: Vec<DockerEntry> = parse(
        &read_json_file(&*tree, "manifest.json")?,
        &format!("{name}: manifest.json"),
    )?;
    let tags = |e: &DockerEntry| e.repo_tags.clone().unwrap_or_default();
    let entry = match r.reference.as_deref() {
        None if entries.len() == 1 => &entries[0],
        None => {
            return Err(Error::Usage(format!(
                "{name} holds {} images: name one as docker-archive:FILE:TAG or :@N",
                entries.len()
            )))
        }
        Some(n) if n.starts_with('@') => n[1..]
            .parse::<usize>()
            .ok()
            .and_then(|i| entries.get(i))
            .ok_or_else(|| Error::Usage(format!("{name}: no image {n}")))?,
        Some(t) => {
            let with_latest = format!("{t}:latest");
            entries
                .iter()
                .find(|e| tags(e).iter().any(|x| x == t || *x == with_latest))
                .ok_or_else(|| {
                    let all: Vec<String> = entries.iter().flat_map(tags).collect();
                    Error::Usage(format!(
                        "{name}: no image tagged {t:?} (tags: {})",
                        all.join(", ")
                    ))
                })?
        }
    };
    let cfg_path = entry.config.clone();
    let expected = digest_in_name(&cfg_path);
    let (cr, _) = tree
        .open(&cfg_path)?
        .ok_or_else(|| Error::Image(format!("{name}: config {cfg_path} is missing")))?;
    let config_raw = read_verified(
        cr,
        &format!("{name}: config {cfg_path}"),
        expected.as_ref(),
        None,
        CONFIG_LIMIT,
    )?;
    let config_digest = expected.unwrap_or_else(|| Digest::sha256(&config_raw));
    let config: ImageConfiguration = parse(&config_raw, &format!("config {config_digest}"))?;
    let diff_ids = diff_ids(&config, &config_digest)?;
    if diff_ids.len() != entry.layers.len() {
        return Err(Error::Image(format!(
            "{name}: manifest.json lists {} layers but the config has {} diff_ids",
            entry.layers.len(),
            diff_ids.len()
        )));
    }
    let mut sizes = HashMap::new();
    for p in &entry.layers {
        if let Some((_, size)) = tree.open(p)? {
            sizes.insert(p.clone(), size);
        }
    }
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(p, diff_id)| {
            let digest = digest_in_name(p).filter(|_| p.starts_with("blobs/"));
            LayerInfo {
                media_type: String::new(),
                size: digest.as_ref().and_then(|_| sizes.get(p).copied()),
                digest,
                diff_id,
            }
        })
        .collect();
    Ok(Image {
        manifest_digest: None,
        config_digest,
        config,
        config_raw,
        layers,
        layer_paths: entry.layers.clone(),
        tree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_references() {
        let r: ImageRef = "oci:/tmp/img:v1".parse().unwrap();
        assert_eq!(r.transport, Transport::Oci);
        assert_eq!(r.path, Path::new("/tmp/img"));
        assert_eq!(r.reference.as_deref(), Some("v1"));
        let r: ImageRef = "oci-archive:x.tar".parse().unwrap();
        assert_eq!((r.transport, r.reference), (Transport::OciArchive, None));
        let r: ImageRef = "docker-archive:/a/b.tar:busybox:latest".parse().unwrap();
        assert_eq!(r.reference.as_deref(), Some("busybox:latest"));
        let r: ImageRef = "oci:dir:sha256:abc".parse().unwrap();
        assert_eq!(r.reference.as_deref(), Some("sha256:abc"));
        assert!("docker://busybox".parse::<ImageRef>().is_err());
        assert!("oci:".parse::<ImageRef>().is_err());
        assert!("busybox".parse::<ImageRef>().is_err());
    }

    #[test]
    fn docker_names_carry_digests() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(digest_in_name(&format!("{hex}.json")).unwrap().hex(), hex);
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex
        );
        assert!(digest_in_name("abc/layer.tar").is_none());
    }
}
