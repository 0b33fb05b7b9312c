//! `events`: the container's resource usage as runc prints it, once (`--stats`) or
//! every interval, and an `oom` event whenever the kernel kills for memory in it.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cgroups::stats;
use crate::state::{Access, Status, Store};
use crate::{id, Error};

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// Write events to `out` until the container stops (or once, with `once`).
pub fn events(
    store: &Store,
    container: &str,
    interval: Duration,
    once: bool,
    out: &mut impl Write,
) -> Result<(), Error> {
    id::validate(container)?;
    let record = {
        let dir = store.open(container, Access::Read)?;
        let state = dir.load()?;
        if state.status(&dir) == Status::Stopped {
            return Err(Error::Invalid(format!(
                "container {container} is not running"
            )));
        }
        state.cgroup
    };
    let print = |out: &mut dyn Write, line: String| -> Result<(), Error> {
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(Error::io("write events", "stdout"))
    };
    let stats_line = || -> Result<String, Error> {
        let data = stats::stats(&record)?;
        Ok(serde_json::to_string(&Event {
            kind: "stats",
            id: container,
            data: Some(data),
        })
        .expect("event serializes"))
    };
    if once {
        return print(out, stats_line()?);
    }
    let mut ooms = stats::oom_count(&record).unwrap_or(0);
    let tick = interval
        .min(Duration::from_millis(200))
        .max(Duration::from_millis(10));
    let mut next_stats = Instant::now();
    loop {
        if Instant::now() >= next_stats {
            print(out, stats_line()?)?;
            next_stats += interval;
        }
        let now_ooms = stats::oom_count(&record).unwrap_or(ooms);
        for _ in ooms..now_ooms {
            let e = Event::<()> {
                kind: "oom",
                id: container,
                data: None,
            };
            print(out, serde_json::to_string(&e).expect("event serializes"))?;
        }
        ooms = now_ooms;
        std::thread::sleep(tick);
        let running = store
            .open(container, Access::Read)
            .and_then(|d| d.load().map(|s| s.status(&d) != Status::Stopped))
            .unwrap_or(false);
        if !running {
            return Ok(());
        }
    }
}
