//! OCI hooks: run a program with the container state on its stdin, within its
//! `timeout`, and report how it failed with what it printed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HookError {
    #[error("{kind} hook {path}: start: {source}")]
    Spawn {
        kind: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{kind} hook {path}: {status}{output}")]
    Failed {
        kind: &'static str,
        path: String,
        status: String,
        output: String,
    },
    #[error("{kind} hook {path}: timed out after {timeout}s")]
    Timeout {
        kind: &'static str,
        path: String,
        timeout: i64,
    },
}

/// The state a hook reads on stdin (the runtime spec's state, without extras).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

/// Run `hooks` in order; the first failure stops the list.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &HookState<'_>) -> Result<(), HookError> {
    let json = serde_json::to_vec(state).expect("state serializes");
    for h in hooks {
        run(kind, h, &json)?;
    }
    Ok(())
}

/// Run every hook even when some fail (poststart, poststop): the runtime spec wants
/// a warning and the lifecycle to go on.
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &HookState<'_>) {
    let json = serde_json::to_vec(state).expect("state serializes");
    for h in hooks {
        if let Err(e) = run(kind, h, &json) {
            log::warn!("{e}");
        }
    }
}

fn run(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
            cmd.args(rest);
        }
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    // Output goes to a memfd: no thread is needed to drain pipes, and the hook can
    // never block on a full one.
    let out = memfd();
    cmd.stdin(Stdio::piped());
    if let Some(o) = &out {
        if let (Ok(a), Ok(b)) = (o.try_clone(), o.try_clone()) {
            cmd.stdout(a).stderr(b);
        }
    }
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its state is fine (EPIPE).
        let _ = stdin.write_all(state);
    }
    let timeout = hook.timeout().filter(|&t| t > 0);
    let status = match timeout {
        None => child.wait().map_err(spawn_err)?,
        Some(secs) => {
            if !wait_deadline(&child, Instant::now() + Duration::from_secs(secs as u64)) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout {
                    kind,
                    path,
                    timeout: secs,
                });
            }
            child.wait().map_err(spawn_err)?
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut output = String::new();
    if let Some(mut o) = out {
        let _ = o.seek(SeekFrom::Start(0));
        let _ = o.read_to_string(&mut output);
    }
    let output = output.trim();
    Err(HookError::Failed {
        kind,
        path,
        status: status.to_string(),
        output: if output.is_empty() {
            String::new()
        } else {
            format!(": {}", output.replace('\n', "; "))
        },
    })
}

/// Wait for the child to exit until `deadline`; true if it did.
fn wait_deadline(child: &std::process::Child, deadline: Instant) -> bool {
    let Ok(pidfd) = rt_sys::pidfd::open(nix::unistd::Pid::from_raw(child.id() as i32)) else {
        return true;
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

fn memfd() -> Option<std::fs::File> {
    nix::sys::memfd::memfd_create(c"rt-hook-output", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .ok()
        .map(std::fs::File::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    fn state() -> HookState<'static> {
        HookState {
            oci_version: "1.2.0",
            id: "c",
            status: "creating",
            pid: Some(1),
            bundle: "/b",
            annotations: None,
        }
    }

    #[test]
    fn passes_state_on_stdin() {
        let dir = std::env::temp_dir().join(format!("rt-hook-{}", std::process::id()));
        let out = dir.with_extension("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}"]}}"#,
            out.display()
        ));
        run_all("prestart", &[h], &state()).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got["id"], "c");
        assert_eq!(got["pid"], 1);
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn failure_carries_output_and_timeout_kills() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo boom >&2; exit 3"]}"#);
        let e = run_all("prestart", &[h], &state()).unwrap_err().to_string();
        assert!(e.contains("boom") && e.contains("3"), "{e}");
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let t = Instant::now();
        let e = run_all("prestart", &[h], &state()).unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn ignores_hooks_that_do_not_read_stdin() {
        let h = hook(r#"{"path":"/bin/true"}"#);
        run_all("poststop", &[h], &state()).unwrap();
    }
}
