//! Writing a built image elsewhere: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`
//! or `docker-archive:FILE[:NAME[:TAG]]` (what `podman load` and
//! `docker load` read: uncompressed layer tars and a manifest.json).

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::PathBuf;
use std::str::FromStr;

use rt_image::layer::Compression;
use rt_image::layout::LayoutWriter;
use rt_image::Digest;
use serde_json::{json, Value};

use crate::error::{Context, Error, Result};
use crate::image::ImageState;
use crate::store::{normalize, Store};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Oci { dir: PathBuf, tag: Option<String> },
    OciArchive { file: PathBuf, tag: Option<String> },
    DockerArchive { file: PathBuf, name: Option<String> },
}

impl FromStr for Output {
    type Err = Error;
    fn from_str(s: &str) -> Result<Output> {
        let bad = || {
            Error::Usage(format!(
                "output {s:?}: expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME[:TAG]]"
            ))
        };
        let (t, rest) = s.split_once(':').ok_or_else(bad)?;
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) if !t.is_empty() => (p, Some(t.to_owned())),
            Some((p, _)) => (p, None),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad());
        }
        let path = PathBuf::from(path);
        Ok(match t {
            "oci" => Output::Oci { dir: path, tag },
            "oci-archive" => Output::OciArchive { file: path, tag },
            "docker-archive" => Output::DockerArchive {
                file: path,
                name: tag,
            },
            _ => return Err(bad()),
        })
    }
}

fn copy_to_layout(
    store: &Store,
    state: &ImageState,
    out: &LayoutWriter,
    tag: Option<&str>,
) -> Result<()> {
    for l in &state.layers {
        let p = store.blob_path(&l.digest);
        let f = File::open(&p).ctx(|| format!("open {}", p.display()))?;
        out.put_blob_from(f)?;
    }
    // The same bytes give the same digests: the manifest written here is
    // the store's.
    let config = state.config_bytes();
    out.put_blob(&config)?;
    let desc = {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256(&config).to_string(), "size": config.len()},
            "layers": state.layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size})).collect::<Vec<Value>>(),
        });
        let data = serde_json::to_vec(&manifest).expect("JSON serialises");
        let (d, size) = out.put_blob(&data)?;
        serde_json::from_value(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": d.to_string(),
            "size": size,
            "platform": {"architecture": state.config["architecture"], "os": state.config["os"]},
        }))
        .map_err(|e| Error::Usage(format!("descriptor: {e}")))?
    };
    out.tag(desc, tag)?;
    Ok(())
}

/// Writes `state` (an image of `store`) to `out`; `name` is the image's
/// name for formats that record one when the destination gives none.
pub fn write(store: &Store, state: &ImageState, out: &Output, name: Option<&str>) -> Result<()> {
    match out {
        Output::Oci { dir, tag } => {
            let l = LayoutWriter::create(dir)?;
            copy_to_layout(store, state, &l, tag.as_deref())
        }
        Output::OciArchive { file, tag } => {
            let tmp = store.tmp().join(crate::workspace::unique("export"));
            let result = (|| {
                let l = LayoutWriter::create(&tmp)?;
                let named = name.map(normalize);
                copy_to_layout(store, state, &l, tag.as_deref().or(named.as_deref()))?;
                l.write_archive(file)?;
                Ok(())
            })();
            let _ = rt_image::fs::remove_tree(&tmp);
            result
        }
        Output::DockerArchive { file, name: n } => {
            docker_archive(store, state, file, n.as_deref().or(name))
        }
    }
}

fn docker_archive(
    store: &Store,
    state: &ImageState,
    file: &PathBuf,
    name: Option<&str>,
) -> Result<()> {
    let f = File::create(file).ctx(|| format!("create {}", file.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(f));
    let mut layers = Vec::new();
    for l in &state.layers {
        let p = store.blob_path(&l.digest);
        let compression = Compression::from_media_type(&l.media_type).unwrap_or(Compression::Gzip);
        // Tar headers need the size first: decompress to a scratch file.
        let scratch = store.tmp().join(crate::workspace::unique("layer"));
        let size = {
            let blob = File::open(&p).ctx(|| format!("open {}", p.display()))?;
            let mut r: Box<dyn Read> = match compression {
                Compression::None => Box::new(blob),
                Compression::Gzip => Box::new(flate2::read::GzDecoder::new(blob)),
                Compression::Zstd => {
                    Box::new(zstd::stream::read::Decoder::new(blob).ctx(|| "zstd")?)
                }
            };
            let mut w = File::create(&scratch).ctx(|| format!("create {}", scratch.display()))?;
            io::copy(&mut r, &mut w).ctx(|| format!("decompress {}", p.display()))?
        };
        let path = format!("{}/layer.tar", l.diff_id.hex());
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let r = File::open(&scratch).ctx(|| format!("open {}", scratch.display()));
        let _ = std::fs::remove_file(&scratch);
        tar.append_data(&mut h, &path, r?)
            .ctx(|| format!("write {}", file.display()))?;
        layers.push(path);
    }
    let config = state.config_bytes();
    let config_name = format!("{}.json", Digest::sha256(&config).hex());
    let mut put = |path: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, data)
            .ctx(|| format!("write {}", file.display()))
    };
    put(&config_name, &config)?;
    let tags: Vec<String> = name.map(normalize).into_iter().collect();
    let manifest = json!([{"Config": config_name, "RepoTags": tags, "Layers": layers}]);
    put(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("JSON serialises"),
    )?;
    tar.into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .ctx(|| format!("write {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_destinations() {
        let o: Output = "oci:/tmp/l:v1".parse().unwrap();
        assert_eq!(
            o,
            Output::Oci {
                dir: "/tmp/l".into(),
                tag: Some("v1".into())
            }
        );
        let o: Output = "docker-archive:/x.tar:img:2".parse().unwrap();
        assert_eq!(
            o,
            Output::DockerArchive {
                file: "/x.tar".into(),
                name: Some("img:2".into())
            }
        );
        assert!(matches!(
            "oci-archive:a.tar".parse::<Output>().unwrap(),
            Output::OciArchive { tag: None, .. }
        ));
        for bad in ["docker://x", "oci:", "dir"] {
            assert!(bad.parse::<Output>().is_err(), "{bad}");
        }
    }
}
