//! Which manifest of an index fits this machine.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// `os/architecture[/variant]` with Go's names (GOOS, GOARCH), as in image indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The machine this runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// How well an index entry's platform fits: `None` if it does not,
    /// higher is better (an exact variant beats an entry without one).
    pub fn score(&self, os: &str, arch: &str, variant: Option<&str>) -> Option<u8> {
        if os != self.os || arch != self.architecture {
            return None;
        }
        match (self.variant.as_deref(), variant) {
            (_, None) => Some(1),
            (Some(a), Some(b)) if a == b => Some(2),
            // arm64 images are labelled v8 or not at all; treat both the same.
            (None, Some(_)) => Some(1),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::Usage(format!(
                "platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8"
            )));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.score("linux", "arm64", Some("v8")), Some(2));
        assert_eq!(p.score("linux", "arm64", None), Some(1));
        assert_eq!(p.score("linux", "arm64", Some("v9")), None);
        assert_eq!(p.score("linux", "amd64", None), None);
        assert_eq!(p.score("windows", "arm64", None), None);
        assert!("linux".parse::<Platform>().is_err());
        assert_eq!(p.to_string(), "linux/arm64/v8");
        let host = Platform::host();
        assert_eq!(host.os, "linux");
    }
}
