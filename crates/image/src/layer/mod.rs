//! Layers: reading a blob (verify, decompress, hash the tar) on one thread
//! while the caller consumes the tar on its own, applying it safely, and
//! writing new layers.

pub mod apply;
pub mod write;

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::digest::{Algorithm, Digest, HashReader, Hasher};
use crate::error::{Error, Result};

/// How a layer's tar is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names; `None` for a media type
    /// that is not a layer this crate can read.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        Some(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// The OCI media type for a layer so compressed.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// What the data's first bytes say; a tar header never starts with
    /// either magic, so this is also right for blobs labelled wrongly
    /// (docker-archive layers carry no media type at all).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What a layer blob must turn out to be.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    /// The layer's media type (empty for docker-archive layers).
    pub media_type: String,
    /// The blob's digest and size from its descriptor, where there is one.
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    /// The uncompressed tar's digest, from the image config.
    pub diff_id: Digest,
}

impl LayerInfo {
    /// A name for messages: the blob digest, else the diff_id.
    pub fn label(&self, index: usize) -> String {
        match &self.digest {
            Some(d) => format!("layer {} ({d})", index + 1),
            None => format!("layer {} (diff_id {})", index + 1, self.diff_id),
        }
    }
}

/// What was actually read.
#[derive(Clone, Debug)]
pub struct LayerDigests {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub tar_size: u64,
    pub compression: Compression,
}

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// Streams `blob` through verification and decompression on a second thread
/// and hands `consume` the tar. Whatever `consume` leaves unread is drained,
/// so the diff_id covers the whole stream. Verification happens at the end:
/// a caller must treat what `consume` did as provisional until this returns
/// `Ok`.
pub fn read_layer<T>(
    blob: Box<dyn Read + Send + '_>,
    info: &LayerInfo,
    label: &str,
    progress: Option<&(dyn Fn(u64) + Sync)>,
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<(T, LayerDigests)> {
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    for _ in 0..IN_FLIGHT {
        let _ = empty_tx.send(Vec::with_capacity(CHUNK));
    }
    std::thread::scope(|s| {
        let producer = std::thread::Builder::new()
            .name("layer-read".into())
            .spawn_scoped(s, || {
                produce(blob, info, label, progress, full_tx, empty_rx)
            })
            .map_err(|e| Error::Io {
                context: "start layer reader thread".into(),
                err: e,
            })?;
        let mut reader = ChannelReader {
            rx: full_rx,
            back: empty_tx,
            cur: Vec::new(),
            pos: 0,
        };
        let consumed = consume(&mut reader);
        if consumed.is_ok() {
            if let Err(e) = io::copy(&mut reader, &mut io::sink()) {
                return Err(Error::Io {
                    context: format!("{label}: read"),
                    err: e,
                });
            }
        }
        drop(reader);
        let produced = producer
            .join()
            .map_err(|_| Error::Image(format!("{label}: reader thread panicked")))?;
        match (consumed, produced) {
            (Ok(t), Ok(d)) => Ok((t, d)),
            // The reader's failure (damaged data, wrong size) explains any
            // tar error that followed from it.
            (_, Err(Produce::Failed(e))) => Err(e),
            (Err(e), _) => Err(e),
            (Ok(_), Err(Produce::Hangup)) => {
                Err(Error::Image(format!("{label}: reader stopped early")))
            }
        }
    })
}

enum Produce {
    Failed(Error),
    /// The consumer went away; its own error says why.
    Hangup,
}

/// Calls the progress callback with each read's byte count.
struct Progress<'a, R> {
    inner: R,
    f: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(f) = self.f {
            f(n as u64);
        }
        Ok(n)
    }
}

fn produce(
    blob: Box<dyn Read + Send + '_>,
    info: &LayerInfo,
    label: &str,
    progress: Option<&(dyn Fn(u64) + Sync)>,
    tx: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
) -> std::result::Result<LayerDigests, Produce> {
    let failed = |e: Error| Produce::Failed(e);
    let io_err = |what: &str, e: io::Error| {
        Produce::Failed(Error::Io {
            context: format!("{label}: {what}"),
            err: e,
        })
    };
    let alg = info
        .digest
        .as_ref()
        .map_or(Algorithm::Sha256, |d| d.algorithm());
    // One byte past the declared size is enough to know it is too long.
    let limit = info.size.map_or(u64::MAX, |s| s.saturating_add(1));
    let hashed = HashReader::new(
        Progress {
            inner: blob.take(limit),
            f: progress,
        },
        alg,
    );
    let mut input = BufReader::with_capacity(CHUNK, hashed);
    let head = input.fill_buf().map_err(|e| io_err("read blob", e))?;
    let compression = Compression::sniff(head);
    let same_hash = compression == Compression::None && alg == info.diff_id.algorithm();
    let mut tar_hash = (!same_hash).then(|| Hasher::new(info.diff_id.algorithm()));
    let mut tar_size = 0u64;
    {
        let mut decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut input)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(&mut input)
                    .map_err(|e| io_err("start zstd decoder", e))?,
            ),
        };
        loop {
            let Ok(mut buf) = empty.recv() else {
                return Err(Produce::Hangup);
            };
            buf.resize(CHUNK, 0);
            let mut filled = 0;
            while filled < CHUNK {
                match decoder.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        drop(decoder);
                        return Err(damaged(label, compression, info, &e, input));
                    }
                }
            }
            buf.truncate(filled);
            if let Some(h) = tar_hash.as_mut() {
                h.update(&buf);
            }
            tar_size += filled as u64;
            if filled == 0 {
                break;
            }
            if tx.send(buf).is_err() {
                return Err(Produce::Hangup);
            }
        }
    }
    drop(tx);
    // Bytes after the compressed stream's end still belong to the blob.
    let trailing = io::copy(&mut input, &mut io::sink()).map_err(|e| io_err("read blob", e))?;
    let (_, digest, size) = input.into_inner().finish();
    if let Some(want) = info.size {
        if size != want {
            return Err(failed(Error::Verify(format!(
                "{label}: size mismatch: descriptor says {want} bytes, blob has {}",
                if size > want {
                    format!("more than {want}")
                } else {
                    size.to_string()
                }
            ))));
        }
    }
    if let Some(want) = &info.digest {
        if &digest != want {
            return Err(failed(Error::Verify(format!(
                "{label}: digest mismatch: descriptor says {want}, blob is {digest}"
            ))));
        }
    }
    if compression == Compression::None && trailing != 0 {
        return Err(failed(Error::Image(format!("{label}: read past end"))));
    }
    let diff_id = match tar_hash {
        Some(h) => h.finish(),
        None => digest.clone(),
    };
    if diff_id != info.diff_id {
        return Err(failed(Error::Verify(format!(
            "{label}: diff_id mismatch: config says {}, uncompressed layer is {diff_id}",
            info.diff_id
        ))));
    }
    Ok(LayerDigests {
        digest,
        size,
        diff_id,
        tar_size,
        compression,
    })
}

/// Decompression failed: read the rest of the blob to say whether it is
/// the blob that is wrong (then that is the error) or its content.
fn damaged<R: Read>(
    label: &str,
    c: Compression,
    info: &LayerInfo,
    e: &io::Error,
    mut input: BufReader<HashReader<R>>,
) -> Produce {
    let what = if e.kind() == io::ErrorKind::UnexpectedEof {
        "truncated".to_owned()
    } else {
        format!("damaged ({e})")
    };
    let damage = format!("{} data is {what}", c.name());
    if io::copy(&mut input, &mut io::sink()).is_ok() {
        let (_, digest, size) = input.into_inner().finish();
        if let Some(want) = info.size.filter(|s| *s != size) {
            return Produce::Failed(Error::Verify(format!(
                "{label}: size mismatch: descriptor says {want} bytes, blob has {} ({damage})",
                if size > want {
                    format!("more than {want}")
                } else {
                    size.to_string()
                }
            )));
        }
        if let Some(want) = info.digest.as_ref().filter(|d| **d != digest) {
            return Produce::Failed(Error::Verify(format!(
                "{label}: digest mismatch: descriptor says {want}, blob is {digest} ({damage})"
            )));
        }
    }
    let msg = format!("{label}: {damage}");
    Produce::Failed(Error::Image(msg))
}

/// The consuming end of the pipe: chunks in, empty buffers back.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            let Ok(next) = self.rx.recv() else {
                return Ok(0);
            };
            let old = std::mem::replace(&mut self.cur, next);
            let _ = self.back.try_send(old);
            self.pos = 0;
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn info_for(blob: &[u8], tar: &[u8], mt: &str) -> LayerInfo {
        LayerInfo {
            media_type: mt.into(),
            digest: Some(Digest::sha256(blob)),
            size: Some(blob.len() as u64),
            diff_id: Digest::sha256(tar),
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(blob: Vec<u8>, info: &LayerInfo) -> Result<Vec<u8>> {
        read_layer(
            Box::new(io::Cursor::new(blob)),
            info,
            "layer 1",
            None,
            |r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v).unwrap();
                Ok(v)
            },
        )
        .map(|(v, _)| v)
    }

    #[test]
    fn reads_and_verifies_all_compressions() {
        let tar: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let blobs = [
            (tar.clone(), Compression::None),
            (gz(&tar), Compression::Gzip),
            (zstd::encode_all(&tar[..], 1).unwrap(), Compression::Zstd),
        ];
        for (blob, c) in blobs {
            let info = info_for(&blob, &tar, c.media_type());
            assert_eq!(read_all(blob, &info).unwrap(), tar);
        }
    }

    #[test]
    fn detects_mismatches_and_damage() {
        let tar = vec![7u8; 100_000];
        let blob = gz(&tar);
        let mut info = info_for(&blob, &tar, "");
        info.diff_id = Digest::sha256(b"other");
        let e = read_all(blob.clone(), &info).unwrap_err().to_string();
        assert!(e.contains("diff_id mismatch"), "{e}");

        let info = info_for(&blob, &tar, "");
        let mut bad = blob.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let e = read_all(bad, &info).unwrap_err().to_string();
        assert!(
            e.contains("damaged") || e.contains("digest mismatch"),
            "{e}"
        );

        let cut = blob[..blob.len() / 2].to_vec();
        let e = read_all(cut, &info).unwrap_err().to_string();
        assert!(e.contains("gzip data is truncated"), "{e}");

        let mut long = blob.clone();
        long.extend_from_slice(&[0; 10]);
        let e = read_all(long, &info).unwrap_err().to_string();
        assert!(e.contains("layer 1"), "{e}");
    }
}
