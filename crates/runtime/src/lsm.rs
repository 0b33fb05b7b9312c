//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`, applied when the host has the module; when it has not, rt
//! does what runc does: a SELinux label or an AppArmor profile is an error (the
//! container would otherwise run unconfined while the caller believes it is), a
//! mount label is ignored.

use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{Process, Spec};
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandleBuilder};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LsmError {
    #[error("selinux label is specified in config, but selinux is disabled or not supported")]
    NoSelinux,
    #[error(
        "apparmor profile {0:?} is specified in config, but AppArmor is not enabled on this host"
    )]
    NoApparmor(String),
    #[error("{what}: {source}")]
    Attr {
        what: String,
        source: std::io::Error,
    },
}

pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .map(|b| b.first() == Some(&b'Y'))
            .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuse, before anything is made, labels the host cannot apply.
pub fn check(process: Option<&Process>) -> Result<(), LsmError> {
    let Some(p) = process else { return Ok(()) };
    if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) && !selinux_enabled() {
        return Err(LsmError::NoSelinux);
    }
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|a| !a.is_empty()) {
        if !apparmor_enabled() {
            return Err(LsmError::NoApparmor(profile.to_string()));
        }
    }
    Ok(())
}

/// Ask for the labels to take effect at the coming execve (this thread only).
pub fn set_exec_labels(p: &Process) -> Result<(), LsmError> {
    let profile = p.apparmor_profile().as_deref().filter(|a| !a.is_empty());
    let label = p.selinux_label().as_deref().filter(|l| !l.is_empty());
    if profile.is_none() && label.is_none() {
        return Ok(());
    }
    // Our own procfs: the container's /proc could be anything.
    let proc = ProcfsHandleBuilder::new()
        .build()
        .map_err(|e| LsmError::Attr {
            what: "open a private procfs".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let write = |sub: &str, value: &str| -> Result<(), LsmError> {
        let mut f = proc
            .open(
                ProcfsBase::ProcThreadSelf,
                sub,
                OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC,
            )
            .map_err(|e| LsmError::Attr {
                what: format!("open /proc/thread-self/{sub}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        f.write_all(value.as_bytes())
            .map_err(|source| LsmError::Attr {
                what: format!("write {value:?} to /proc/thread-self/{sub}"),
                source,
            })
    };
    if let Some(profile) = profile {
        let value = format!("exec {profile}");
        write("attr/apparmor/exec", &value).or_else(|_| write("attr/exec", &value))?;
    }
    if let Some(label) = label {
        write("attr/exec", label)?;
    }
    Ok(())
}

/// The `context=` option a non-bind mount gets for `linux.mountLabel`, with SELinux.
pub fn mount_label_option(spec: &Spec) -> Option<String> {
    let label = spec.linux().as_ref()?.mount_label().as_deref()?;
    (!label.is_empty() && selinux_enabled()).then(|| format!("context=\"{label}\""))
}
