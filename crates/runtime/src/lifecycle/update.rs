//! `update`: change a running container's resource limits. The change is written to
//! the cgroup and kept in the stored config, so the next update starts from it.

use oci_spec::runtime::{LinuxMemory, LinuxResources};
use serde_json::Value;

use crate::cgroups::resources;
use crate::state::{Access, Status, Store};
use crate::{id, Error};

pub fn update(store: &Store, container: &str, change: &LinuxResources) -> Result<(), Error> {
    id::validate(container)?;
    let dir = store.open(container, Access::Write)?;
    let mut state = dir.load()?;
    if state.status(&dir) == Status::Stopped {
        return Err(Error::Invalid(format!(
            "container {container} is not running"
        )));
    }
    let stored = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let merged = merge(&stored, change)?;
    let mut apply = change.clone();
    if let (Some(m), Some(all)) = (change.memory(), merged.memory()) {
        // The kernel checks swap against the limit: a swap change without a limit
        // takes the container's current limit (as runc).
        if m.swap().is_some() && m.limit().is_none() {
            let mut m = *m;
            m.set_limit(all.limit());
            apply.set_memory(Some(m));
        }
    }
    resources::apply_update(&state.cgroup, &apply)?;
    let mut linux = state.config.linux().clone().unwrap_or_default();
    linux.set_resources(Some(merged));
    state.config.set_linux(Some(linux));
    dir.save(&state)?;
    Ok(())
}

/// `change` on top of `stored`, field by field (objects merge, lists are replaced).
fn merge(stored: &LinuxResources, change: &LinuxResources) -> Result<LinuxResources, Error> {
    let mut base = serde_json::to_value(stored).expect("resources serialize");
    let top = serde_json::to_value(change).expect("resources serialize");
    overlay(&mut base, top);
    serde_json::from_value(base).map_err(|e| Error::Invalid(format!("resources: {e}")))
}

fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => overlay(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, t) => *b = t,
    }
}

/// runc's memory sizes: a number of bytes with an optional k, m, g, t (powers of
/// 1024, any case, optional trailing `b`), or -1 for unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, Error> {
    let bad = || Error::Invalid(format!("invalid size {s:?}"));
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as i64)
}

/// A memory section with just these fields set (for the per-resource flags).
pub fn memory(
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
) -> Option<LinuxMemory> {
    if limit.is_none() && reservation.is_none() && swap.is_none() {
        return None;
    }
    let mut m = LinuxMemory::default();
    m.set_limit(limit);
    m.set_reservation(reservation);
    m.set_swap(swap);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_runc() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2kb").unwrap(), 2048);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("x").is_err() && parse_bytes("-5").is_err());
    }

    #[test]
    fn merge_keeps_what_the_change_leaves_out() {
        let stored: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":100,"reservation":50},"pids":{"limit":10}}"#,
        )
        .unwrap();
        let change: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":200}}"#).unwrap();
        let m = merge(&stored, &change).unwrap();
        assert_eq!(m.memory().as_ref().unwrap().limit(), Some(200));
        assert_eq!(m.memory().as_ref().unwrap().reservation(), Some(50));
        assert_eq!(m.pids().as_ref().unwrap().limit(), 10);
    }
}
