//! The local image store: one directory that is at once an OCI image layout
//! (blobs, index.json naming the tagged images, so `oci:STORE:NAME` works
//! for rt-unpack, skopeo and podman), rt-image's extracted-layer store
//! (`layers/`, `tmp/`), and the build cache (`cache/`, step key to the
//! manifest of the image after that step). Intermediate images are blobs
//! only: index.json lists what was tagged.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rt_image::image::REF_NAME;
use rt_image::layer::Compression;
use rt_image::layout::LayoutWriter;
use rt_image::oci::Descriptor;
use rt_image::store::LayerStore;
use rt_image::{Digest, Image, ImageRef, Platform, Transport};
use serde_json::{json, Value};

use crate::error::{Context, Error, Result};
use crate::image::{ImageState, Layer};

pub const DEFAULT_STORE: &str = "/var/lib/rt/store";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

pub struct Store {
    root: PathBuf,
    layout: LayoutWriter,
    layers: LayerStore,
}

/// A tagged image of the store.
#[derive(Clone, Debug)]
pub struct Tagged {
    pub name: String,
    pub manifest: Digest,
    pub size: u64,
}

/// `name` with `:latest` when it has no tag (a `:` after the last `/`).
pub fn normalize(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        let layers = LayerStore::open(root)?;
        let root = layers.path().to_owned();
        let layout = LayoutWriter::create(&root)?;
        fs::create_dir_all(root.join("cache"))
            .ctx(|| format!("create {}/cache", root.display()))?;
        Ok(Store {
            root,
            layout,
            layers,
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn layout(&self) -> &LayoutWriter {
        &self.layout
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// Takes down what builds killed outright (SIGKILL, a crash) left in
    /// `tmp/`: their mounts (deepest first, detached) and directories. A
    /// directory is another process's while that process lives.
    pub fn clean_stale(&self) -> Result<()> {
        let tmp = self.tmp();
        let Ok(rd) = fs::read_dir(&tmp) else {
            return Ok(());
        };
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.splitn(3, '-');
            let (Some(kind), Some(pid)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !matches!(kind, "build" | "export" | "layer") {
                continue;
            }
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let dir = e.path();
            // A container of the dead build may still run: the runtime
            // that rt-build runs by default knows its state.
            if let Ok(ids) = fs::read_dir(dir.join("state")) {
                for id in ids.flatten() {
                    let _ = std::process::Command::new(crate::run::default_runtime())
                        .arg("--root")
                        .arg(dir.join("state"))
                        .args(["delete", "--force"])
                        .arg(id.file_name())
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
            let prefix = format!("{}/", dir.display());
            let mut points: Vec<&str> = mountinfo
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = rt_image::store::unmount(Path::new(p), true);
            }
            let _ = rt_image::fs::remove_tree(&dir);
        }
        Ok(())
    }

    /// Where temporary trees live: on the store's filesystem, so upper
    /// directories can be renamed into `layers/`.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join(d.blob_path())
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let data = fs::read(&p).ctx(|| format!("read {}", p.display()))?;
        if &Digest::sha256(&data) != d {
            return Err(Error::Usage(format!(
                "{}: content does not match its digest",
                p.display()
            )));
        }
        Ok(data)
    }

    /// Writes `state`'s config and a manifest for it; returns the manifest's
    /// descriptor (not tagged).
    pub fn save(&self, state: &ImageState) -> Result<Descriptor> {
        let config = state.config_bytes();
        let (cd, csize) = self.layout.put_blob(&config)?;
        let layers: Vec<Value> = state
            .layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": cd.to_string(), "size": csize},
            "layers": layers,
        });
        let data = serde_json::to_vec(&manifest).expect("JSON serialises");
        let (md, msize) = self.layout.put_blob(&data)?;
        let desc = json!({
            "mediaType": MANIFEST_TYPE,
            "digest": md.to_string(),
            "size": msize,
            "platform": {
                "architecture": state.config.get("architecture").cloned().unwrap_or(Value::Null),
                "os": state.config.get("os").cloned().unwrap_or(Value::Null),
            },
        });
        serde_json::from_value(desc).map_err(|e| Error::Usage(format!("manifest descriptor: {e}")))
    }

    /// The image whose manifest is `manifest`.
    pub fn load(&self, manifest: &Digest) -> Result<ImageState> {
        let m: Value = serde_json::from_slice(&self.read_blob(manifest)?)
            .map_err(|e| Error::Usage(format!("manifest {manifest}: {e}")))?;
        let bad = |what: &str| Error::Usage(format!("manifest {manifest}: {what}"));
        let cd: Digest = m["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("no config"))?
            .parse()?;
        let config: Value = serde_json::from_slice(&self.read_blob(&cd)?)
            .map_err(|e| Error::Usage(format!("config {cd}: {e}")))?;
        let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
            .as_array()
            .ok_or_else(|| bad("config has no diff_ids"))?
            .iter()
            .map(|d| d.as_str().unwrap_or("").parse())
            .collect::<Result<_, _>>()?;
        let ls = m["layers"].as_array().ok_or_else(|| bad("no layers"))?;
        if ls.len() != diff_ids.len() {
            return Err(bad("layers and diff_ids differ in number"));
        }
        let mut layers = Vec::new();
        for (l, diff_id) in ls.iter().zip(diff_ids) {
            layers.push(Layer {
                digest: l["digest"].as_str().unwrap_or("").parse()?,
                size: l["size"].as_u64().unwrap_or(0),
                media_type: l["mediaType"].as_str().unwrap_or("").to_owned(),
                diff_id,
            });
        }
        Ok(ImageState { config, layers })
    }

    /// Names `manifest` `name` in index.json (replacing an older holder).
    pub fn tag(&self, desc: &Descriptor, name: &str) -> Result<()> {
        Ok(self.layout.tag(desc.clone(), Some(&normalize(name)))?)
    }

    pub fn images(&self) -> Result<Vec<Tagged>> {
        let index = self.layout.read_index()?;
        let mut out = Vec::new();
        for d in index.manifests() {
            let Some(name) = d.annotations().as_ref().and_then(|a| a.get(REF_NAME)) else {
                continue;
            };
            out.push(Tagged {
                name: name.clone(),
                manifest: Digest::try_from(d.digest())?,
                size: d.size(),
            });
        }
        Ok(out)
    }

    /// The tagged image `name` (`NAME[:TAG]`, or a manifest or image id prefix).
    pub fn find(&self, name: &str) -> Result<(Tagged, ImageState)> {
        let images = self.images()?;
        let full = normalize(name);
        let hit = images.iter().find(|t| t.name == full).or_else(|| {
            let hex = name.strip_prefix("sha256:").unwrap_or(name);
            (hex.len() >= 6)
                .then(|| {
                    images.iter().find(|t| {
                        t.manifest.hex().starts_with(hex)
                            || self
                                .load(&t.manifest)
                                .map(|s| s.id().hex().starts_with(hex))
                                .unwrap_or(false)
                    })
                })
                .flatten()
        });
        match hit {
            Some(t) => Ok((t.clone(), self.load(&t.manifest)?)),
            None => Err(Error::Usage(format!(
                "no image {full:?} in the store {}",
                self.root.display()
            ))),
        }
    }

    /// Removes the tag `name`.
    pub fn untag(&self, name: &str) -> Result<bool> {
        let full = normalize(name);
        let mut index = self.layout.read_index()?;
        let mut m = index.manifests().clone();
        let before = m.len();
        m.retain(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(String::as_str)
                != Some(full.as_str())
        });
        let removed = m.len() != before;
        index.set_manifests(m);
        self.layout.write_index(&index)?;
        Ok(removed)
    }

    /// Brings an image from outside (oci:, oci-archive:, docker-archive:)
    /// into the store: its layer blobs are copied (once) and its config kept.
    pub fn import(&self, r: &ImageRef) -> Result<ImageState> {
        let image = Image::open(r, &Platform::host())?;
        let mut layers = Vec::new();
        for (i, info) in image.layers.iter().enumerate() {
            let have = info.digest.as_ref().filter(|d| self.blob_path(d).is_file());
            let (digest, size) = match have {
                Some(d) => (d.clone(), info.size.unwrap_or(0)),
                None => {
                    let (d, size) = self.layout.put_blob_from(image.layer_blob(i)?)?;
                    if let Some(want) = &info.digest {
                        if want != &d {
                            let _ = fs::remove_file(self.blob_path(&d));
                            return Err(Error::Usage(format!(
                                "{r}: {} has digest {d}",
                                info.label(i)
                            )));
                        }
                    }
                    (d, size)
                }
            };
            // Docker's media types become the OCI ones: the manifests this
            // store writes are OCI manifests.
            let media_type = match Compression::from_media_type(&info.media_type) {
                Some(c) => c.media_type().to_owned(),
                None => {
                    let mut head = [0u8; 4];
                    let p = self.blob_path(&digest);
                    let mut f = fs::File::open(&p).ctx(|| format!("open {}", p.display()))?;
                    let n = f.read(&mut head).ctx(|| format!("read {}", p.display()))?;
                    Compression::sniff(&head[..n]).media_type().to_owned()
                }
            };
            layers.push(Layer {
                digest,
                size,
                media_type,
                diff_id: info.diff_id.clone(),
            });
        }
        let config: Value = serde_json::from_slice(&image.config_raw)
            .map_err(|e| Error::Usage(format!("{r}: config: {e}")))?;
        Ok(ImageState { config, layers })
    }

    /// The image `name` names: `scratch`, `oci:`, `oci-archive:` or
    /// `docker-archive:` (imported), or a tagged image of the store.
    pub fn image(&self, name: &str) -> Result<ImageState> {
        if name == "scratch" {
            return Ok(ImageState::scratch());
        }
        if ["oci:", "oci-archive:", "docker-archive:"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            return self.import(&name.parse()?);
        }
        Ok(self.find(name)?.1)
    }

    /// The names an image source gives its image, for `load` without `-t`
    /// (as `podman load`): a docker-archive's `RepoTags`, or an OCI
    /// layout's `NAME:TAG` ref name; none when it has none or several images.
    pub fn source_names(r: &ImageRef) -> Vec<String> {
        let read = |inner: &str| -> Option<Vec<u8>> {
            match r.transport {
                Transport::Oci => fs::read(r.path.join(inner)).ok(),
                _ => {
                    let f = fs::File::open(&r.path).ok()?;
                    let mut a = tar::Archive::new(f);
                    for e in a.entries().ok()? {
                        let mut e = e.ok()?;
                        let p = e.path().ok()?.to_string_lossy().into_owned();
                        if p.trim_start_matches("./") == inner {
                            let mut v = Vec::new();
                            e.read_to_end(&mut v).ok()?;
                            return Some(v);
                        }
                    }
                    None
                }
            }
        };
        let names = match r.transport {
            Transport::DockerArchive => {
                let Some(m) = read("manifest.json") else {
                    return Vec::new();
                };
                let v: Value = serde_json::from_slice(&m).unwrap_or(Value::Null);
                match v.as_array().map(Vec::as_slice) {
                    Some([one]) if r.reference.is_none() => one["RepoTags"]
                        .as_array()
                        .map(|t| {
                            t.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            Transport::Oci | Transport::OciArchive => {
                let Some(i) = read("index.json") else {
                    return Vec::new();
                };
                let v: Value = serde_json::from_slice(&i).unwrap_or(Value::Null);
                let refs: Vec<String> = v["manifests"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|d| d["annotations"][REF_NAME].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                match (&r.reference, refs.as_slice()) {
                    (Some(t), _) => vec![t.clone()],
                    (None, [one]) => vec![one.clone()],
                    _ => Vec::new(),
                }
            }
        };
        // A bare tag ("latest", as skopeo names) is no image name.
        names
            .into_iter()
            .filter(|n| n.contains(':') || n.contains('/'))
            .collect()
    }

    /// The cached result of the step with key `key`.
    pub fn cache_get(&self, key: &Digest) -> Option<Digest> {
        let p = self.root.join("cache").join(key.hex());
        let s = fs::read_to_string(p).ok()?;
        let d: Digest = s.trim().parse().ok()?;
        self.blob_path(&d).is_file().then_some(d)
    }

    pub fn cache_put(&self, key: &Digest, manifest: &Digest) -> Result<()> {
        let dir = self.root.join("cache");
        let tmp = dir.join(format!(".{}.{}", key.hex(), std::process::id()));
        let mut f = fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(manifest.to_string().as_bytes())
            .ctx(|| format!("write {}", tmp.display()))?;
        let p = dir.join(key.hex());
        fs::rename(&tmp, &p).ctx(|| format!("rename to {}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_latest() {
        assert_eq!(normalize("app"), "app:latest");
        assert_eq!(normalize("app:1"), "app:1");
        assert_eq!(normalize("reg:5000/app"), "reg:5000/app:latest");
        assert_eq!(normalize("reg:5000/app:2"), "reg:5000/app:2");
    }
}
