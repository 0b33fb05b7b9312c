//! RUN through an OCI runtime: a bundle whose config.json comes from the
//! image config (env, workdir, user resolved in the rootfs) via rt-image,
//! in a new network namespace unless the step asks for the host's, run by
//! `RUNTIME --root DIR run --bundle B ID` with the output streamed.
//! The runtime's state directory is inside the step's workspace, so
//! nothing of it outlives the step; an interrupted step's container is
//! deleted with `delete --force` before the workspace goes.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rt_image::config::{runtime_spec, ConfigOptions};
use rt_image::oci::ImageConfiguration;
use rt_spec::runtime::{LinuxNamespaceType, Mount};

use crate::error::{Context, Error, Result};
use crate::workspace::Workspace;

static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Makes SIGINT, SIGTERM and SIGHUP set a flag instead of killing the
/// builder, so it can take down the container, mounts and temporary
/// directories first. The runtime gets the terminal's SIGINT itself.
pub fn catch_signals() -> Result<()> {
    let flag = INTERRUPTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, flag.clone()).ctx(|| format!("catch signal {sig}"))?;
    }
    Ok(())
}

pub fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// What a RUN step may do as root: the default set of podman and buildah
/// (containers.conf), so steps that chown, setuid or chroot work.
pub const BUILD_CAPABILITIES: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Everything but the image config that a RUN container needs.
pub struct RunSpec {
    pub argv: Vec<String>,
    /// Variables added to the image's Env (build args).
    pub env: Vec<String>,
    pub network_host: bool,
    pub mounts: Vec<Mount>,
}

/// The bundle's config for `spec`.
pub fn container_config(
    ws: &Workspace,
    image: &ImageConfiguration,
    spec: &RunSpec,
) -> Result<rt_spec::runtime::Spec> {
    let root = ws.root_fd()?;
    let opts = ConfigOptions {
        entrypoint: Some(spec.argv.clone()),
        cmd: Some(Vec::new()),
        env: spec.env.clone(),
        hostname: Some("rt-build".into()),
        ..ConfigOptions::default()
    };
    let mut s = runtime_spec(image, root.as_fd(), &opts)?;
    if let Some(p) = s.process_mut() {
        // HOME from the user's passwd entry and HOSTNAME, as buildah and
        // docker give a RUN step, unless the image sets them.
        let mut env = p.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            let home = home_dir(root.as_fd(), p.user().uid());
            env.push(format!("HOME={home}"));
        }
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push("HOSTNAME=rt-build".into());
        }
        p.set_env(Some(env));
        let caps: Vec<&str> = BUILD_CAPABILITIES.to_vec();
        let c: rt_spec::runtime::LinuxCapabilities = serde_json::from_value(
            serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps}),
        )
        .map_err(|e| Error::Usage(format!("capabilities: {e}")))?;
        p.set_capabilities(Some(c));
    }
    if let Some(linux) = s.linux_mut() {
        if spec.network_host {
            if let Some(ns) = linux.namespaces_mut() {
                ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
            }
        }
        // The runtime's default cgroup, created and removed with the container.
        linux.set_cgroups_path(None);
    }
    let mut mounts = s.mounts().clone().unwrap_or_default();
    mounts.extend(spec.mounts.iter().cloned());
    s.set_mounts(Some(mounts));
    // Relative to the bundle, so the bundle could move and still run.
    if let Some(r) = s.root_mut() {
        r.set_path(PathBuf::from("rootfs"));
    }
    Ok(s)
}

/// The home directory `/etc/passwd` in the rootfs gives `uid`: `/root`
/// for root and `/` for others when it has none.
fn home_dir(root: std::os::fd::BorrowedFd<'_>, uid: u32) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(fd) = rt_image::fs::open_in_root(root, b"etc/passwd", nix::fcntl::OFlag::O_RDONLY) {
        let _ = std::fs::File::from(fd)
            .take(16 << 20)
            .read_to_string(&mut text);
    }
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() })
}

/// Runs the container and waits for it.
pub fn run(ws: &Workspace, runtime: &Path, config: &rt_spec::runtime::Spec) -> Result<ExitStatus> {
    let cfg = ws.bundle.join(rt_spec::CONFIG_FILE);
    std::fs::write(&cfg, rt_spec::to_json(config)).ctx(|| format!("write {}", cfg.display()))?;
    let state = ws.dir.join("state");
    std::fs::create_dir_all(&state).ctx(|| format!("create {}", state.display()))?;
    let id = ws
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rt-build".into());
    let mut guard = Container {
        runtime,
        state: &state,
        id: &id,
    };
    let mut child = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .arg("run")
        .arg("--bundle")
        .arg(&ws.bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .spawn()
        .ctx(|| format!("start runtime {}", runtime.display()))?;
    // Polled rather than waited on, so a Ctrl-C that the container's init
    // ignores (a shell as pid 1 does) still ends the step at once.
    let mut killed = false;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .ctx(|| format!("wait for runtime {}", runtime.display()))?
        {
            break s;
        }
        if interrupted() && !killed {
            guard.delete();
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    guard.delete();
    check_interrupted()?;
    Ok(status)
}

/// Deletes the container if the runtime left its state behind.
struct Container<'a> {
    runtime: &'a Path,
    state: &'a Path,
    id: &'a str,
}

impl Container<'_> {
    fn delete(&mut self) {
        if self.state.join(self.id).exists() {
            let _ = Command::new(self.runtime)
                .arg("--root")
                .arg(self.state)
                .args(["delete", "--force", self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.delete();
    }
}

/// `runtime` as given, else the `rt` beside the running binary.
pub fn default_runtime() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("rt")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("rt"))
}

/// Marks every descriptor above stderr close-on-exec, so none the builder
/// inherited reaches a runtime or a RUN step.
pub fn seal_fds() -> Result<()> {
    rt_sys::fd::cloexec_from(3, &[])
        .map_err(|e| Error::Usage(format!("mark descriptors close-on-exec: {e}")))
}
