//! The five capability sets of the container process.
//!
//! Order matters: the bounding set is cut while the process is still root with every
//! capability, then (after the uid changes, with keep-caps) effective, inheritable,
//! permitted and ambient are set in an order the kernel accepts at each step.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CapError {
    #[error("set {set} capabilities: {source}")]
    Set {
        set: &'static str,
        source: caps::errors::CapsError,
    },
    #[error("capability {0} is not known to this kernel")]
    Unknown(String),
}

fn to_caps(set: &Option<Capabilities>) -> Result<HashSet<Cap>, CapError> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        out.insert(convert(c)?);
    }
    Ok(out)
}

fn convert(c: &Capability) -> Result<Cap, CapError> {
    let name = format!("CAP_{}", c.to_string().trim_start_matches("CAP_"));
    name.parse::<Cap>().map_err(|_| CapError::Unknown(name))
}

/// Cut the bounding set to what the config lists (runs as full root).
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<(), CapError> {
    let keep = to_caps(c.bounding())?;
    let supported = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    for cap in supported {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|source| CapError::Set {
                set: "bounding",
                source,
            })?;
        }
    }
    Ok(())
}

/// Set effective, inheritable, permitted and ambient (after the uid change).
pub fn apply(c: &LinuxCapabilities) -> Result<(), CapError> {
    let set = |which: CapSet, name: &'static str, v: &HashSet<Cap>| {
        caps::set(None, which, v).map_err(|source| CapError::Set { set: name, source })
    };
    // Effective first: it must stay within permitted at every step, and the
    // permitted set can only shrink.
    set(CapSet::Effective, "effective", &to_caps(c.effective())?)?;
    set(
        CapSet::Inheritable,
        "inheritable",
        &to_caps(c.inheritable())?,
    )?;
    set(CapSet::Permitted, "permitted", &to_caps(c.permitted())?)?;
    let ambient = to_caps(c.ambient())?;
    caps::clear(None, CapSet::Ambient).map_err(|source| CapError::Set {
        set: "ambient",
        source,
    })?;
    for cap in ambient {
        // The kernel only raises ambient capabilities that are also permitted and
        // inheritable; runc skips the others, and configs rely on that.
        let _ = caps::raise(None, CapSet::Ambient, cap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_every_oci_capability() {
        let all: Capabilities = serde_json::from_str(
            r#"["CAP_CHOWN","CAP_SYS_ADMIN","CAP_CHECKPOINT_RESTORE","CAP_BPF","CAP_PERFMON"]"#,
        )
        .unwrap();
        let got = to_caps(&Some(all)).unwrap();
        assert!(got.contains(&Cap::CAP_SYS_ADMIN) && got.contains(&Cap::CAP_BPF));
        assert_eq!(got.len(), 5);
    }
}
