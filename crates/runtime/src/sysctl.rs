//! `linux.sysctl`, written through a private procfs instance that
//! no mount inside the container can cover or redirect.

use std::collections::HashMap;
use std::io::Write;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SysctlError {
    #[error("open a private procfs: {0}")]
    Procfs(pathrs::error::Error),
    #[error("open /proc/{path}: {source}")]
    Open {
        path: String,
        source: pathrs::error::Error,
    },
    #[error("write {value:?} to /proc/{path}: {source}")]
    Write {
        path: String,
        value: String,
        source: std::io::Error,
    },
}

/// A procfs of the container's own pid namespace, detached from every mount tree.
pub struct Proc(ProcfsHandle);

impl Proc {
    pub fn open() -> Result<Self, SysctlError> {
        ProcfsHandleBuilder::new()
            .unmasked()
            .build()
            .map(Proc)
            .map_err(SysctlError::Procfs)
    }

    fn write(&self, base: ProcfsBase, path: &str, value: &str) -> Result<(), SysctlError> {
        let mut f = self
            .0
            .open(base, path, OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
            .map_err(|source| SysctlError::Open {
                path: path.to_string(),
                source,
            })?;
        f.write_all(value.as_bytes())
            .map_err(|source| SysctlError::Write {
                path: path.to_string(),
                value: value.to_string(),
                source,
            })
    }

    /// Apply every sysctl; keys may use `.` or `/` as separators.
    pub fn apply_sysctls(&self, sysctls: &HashMap<String, String>) -> Result<(), SysctlError> {
        let mut keys: Vec<&String> = sysctls.keys().collect();
        keys.sort();
        for key in keys {
            let path = format!("sys/{}", key.replace('.', "/"));
            self.write(ProcfsBase::ProcRoot, &path, &sysctls[key])?;
        }
        Ok(())
    }
}
