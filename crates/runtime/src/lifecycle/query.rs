//! `state` and `list`: read-only views, the status read off the live process.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::state::{Access, Status, Store};
use crate::{id, Error, OCI_VERSION};

/// The state as runc prints it (runtime-spec state plus `rootfs`, `created`, `owner`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

pub fn state(store: &Store, container: &str) -> Result<ContainerState, Error> {
    id::validate(container)?;
    let dir = store.open(container, Access::Read)?;
    let s = dir.load()?;
    let status = s.status(&dir);
    Ok(ContainerState {
        oci_version: OCI_VERSION.to_string(),
        id: s.id.clone(),
        // As runc: a stopped container has no pid.
        pid: if status == Status::Stopped {
            0
        } else {
            s.pid.unwrap_or(0)
        },
        status: status.to_string(),
        bundle: s.bundle.display().to_string(),
        rootfs: s.rootfs.display().to_string(),
        created: s.created.clone(),
        owner: dir.owner(),
        annotations: s.annotations.clone(),
    })
}

/// Every container in the store; ones that vanish or cannot be read are left out.
pub fn list(store: &Store) -> Result<Vec<ContainerState>, Error> {
    let mut out = vec![];
    for id in store.ids()? {
        if let Ok(s) = state(store, &id) {
            out.push(s);
        }
    }
    Ok(out)
}
