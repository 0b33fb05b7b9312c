//! Digests (`sha256:<hex>`) and the readers and writers that compute them
//! while data streams through.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// The hash algorithms the image spec registers (sha384 is not used in practice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest: known algorithm, lowercase hex of the right length, so
/// it is safe to use as a file name (`blobs/sha256/<hex>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The sha256 of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// `blobs/<alg>/<hex>`, the blob's path inside an OCI layout.
    pub fn blob_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm.name(), self.hex)
    }

    /// The chain id of a layer stack (the image spec's ChainID), used to key
    /// extracted layers: it names a layer together with everything below it.
    pub fn chain(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(p) => Digest::sha256(format!("{p} {diff_id}").as_bytes()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Digest> {
        let bad = |why: &str| Error::Image(format!("invalid digest {s:?}: {why}"));
        let (alg, hex) = s.split_once(':').ok_or_else(|| bad("no algorithm"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad("unsupported algorithm")),
        };
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad("not lowercase hex of the algorithm's length"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        // A validated digest is always acceptable to oci-spec's own parser.
        d.to_string().parse().expect("validated digest")
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = Error;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Digest> {
        d.to_string().parse()
    }
}

/// A running hash of either algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// Hashes and counts what is read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashReader {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes and counts what is written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashWriter {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
        }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a whole blob (at most `limit` bytes) and checks it against `digest`
/// and, when known, `size`.
pub fn read_verified(
    mut r: impl Read,
    what: &str,
    digest: Option<&Digest>,
    size: Option<u64>,
    limit: u64,
) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let cap = size.map_or(limit, |s| s.min(limit)) + 1;
    (&mut r)
        .take(cap)
        .read_to_end(&mut data)
        .map_err(|e| Error::Io {
            context: format!("read {what}"),
            err: e,
        })?;
    if data.len() as u64 > limit {
        return Err(Error::Image(format!("{what}: larger than {limit} bytes")));
    }
    if let Some(size) = size {
        if data.len() as u64 != size {
            return Err(Error::Verify(format!(
                "{what}: size mismatch: descriptor says {size} bytes, blob has {}{}",
                data.len().min(size as usize + 1),
                if data.len() as u64 > size {
                    " or more"
                } else {
                    ""
                }
            )));
        }
    }
    if let Some(digest) = digest {
        let mut h = Hasher::new(digest.algorithm());
        h.update(&data);
        let got = h.finish();
        if &got != digest {
            return Err(Error::Verify(format!(
                "{what}: digest mismatch: expected {digest}, got {got}"
            )));
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(d, Digest::sha256(b""));
        assert_eq!(
            d.blob_path(),
            "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "e3b0c442",
            "sha256:abc",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn read_verified_checks_size_and_digest() {
        let d = Digest::sha256(b"hello");
        assert_eq!(
            read_verified(&b"hello"[..], "x", Some(&d), Some(5), 100).unwrap(),
            b"hello"
        );
        let e = read_verified(&b"hello!"[..], "x", Some(&d), Some(5), 100).unwrap_err();
        assert!(e.to_string().contains("size mismatch"), "{e}");
        let e = read_verified(&b"hellO"[..], "x", Some(&d), Some(5), 100).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        let e = read_verified(&b"hello"[..], "x", None, None, 3).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn chain_id_matches_the_spec() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        assert_eq!(Digest::chain(None, &a), a);
        let c = Digest::chain(Some(&a), &b);
        assert_eq!(c, Digest::sha256(format!("{a} {b}").as_bytes()));
    }
}
