//! `create`: validate everything that can be checked without side effects, claim the
//! ID, make the cgroup, clone the init and drive it until it waits for `start`.
//! Any failure undoes all of it: no state directory, cgroup or process remains.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

use super::hook_state;
use crate::cgroups::{CgroupRecord, Layout};
use crate::namespaces::Plan;
use crate::process::channel::{ChannelError, Msg};
use crate::process::{spawn, SpawnArgs, Spawned};
use crate::state::{ContainerDir, Phase, State, Store};
use crate::{hooks, id, Error};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Let systemd own the cgroup (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
}

/// A container waiting for `start`; its init is our child until we exit.
#[derive(Debug)]
pub struct Created {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// Whether the container's process has a terminal.
    pub terminal: bool,
}

pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created, Error> {
    create_inner(store, opts, None)
}

/// `create`, with a socket of our own standing in for `--console-socket` when the
/// container has a terminal (for `run` in the foreground, which proxies the pty).
pub(crate) fn create_inner(
    store: &Store,
    opts: &CreateOptions,
    own_console: Option<UnixStream>,
) -> Result<Created, Error> {
    id::validate(&opts.id)?;
    let bundle = fs::canonicalize(&opts.bundle).map_err(Error::io("open bundle", &opts.bundle))?;
    let mut spec = rt_spec::load_bundle(&bundle)?;
    let notify = crate::notify::host_socket();
    if notify.is_some() {
        crate::notify::setup_spec(&mut spec, &store.root().join(&opts.id));
    }
    let listen_fds = take_listen_fds(&mut spec);
    // Relative paths in the config (root.path, bind sources) are the bundle's.
    std::env::set_current_dir(&bundle).map_err(Error::io("chdir to bundle", &bundle))?;
    let rootfs = resolve_rootfs(&bundle, &spec)?;
    crate::lsm::check(spec.process().as_ref())?;
    let plan = Plan::new(&spec)?;
    // Compiled here, so a bad profile (or an absent agent) fails before anything exists.
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::prepare)
        .transpose()?;
    let layout = Layout::detect()?;
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let cgroups_path = cgroups_path.as_deref().and_then(Path::to_str);
    let cgroup = if opts.systemd_cgroup {
        let user = !nix::unistd::geteuid().is_root();
        CgroupRecord::resolve_systemd(&layout, cgroups_path, &opts.id, user)?
    } else {
        CgroupRecord::resolve(&layout, cgroups_path, &opts.id)?
    };
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = match own_console {
        Some(c) if terminal && opts.console_socket.is_none() => Some(c),
        _ => connect_console(&spec, opts.console_socket.as_deref())?,
    };

    let dir = store.create(&opts.id)?;
    if notify.is_some() {
        let d = dir.path.join(crate::notify::DIR);
        if let Err(e) = std::fs::create_dir(&d) {
            let _ = dir.remove();
            return Err(Error::io("create", d)(e));
        }
    }
    let mut state = State {
        id: opts.id.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        phase: Phase::Creating,
        pid: None,
        start_time: None,
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup,
        host_mounts: !plan.mount_ns,
        config: Box::new(spec.clone()),
    };
    let mut spawned = None;
    let res = build(
        &dir,
        &mut state,
        &mut spawned,
        opts,
        &spec,
        &plan,
        console,
        listen_fds,
        seccomp,
    );
    match res {
        Ok(()) => {
            let s = spawned.expect("built containers have an init");
            Ok(Created {
                pid: s.pid,
                pidfd: s.pidfd,
                terminal,
            })
        }
        Err(e) => {
            if let Some(s) = &spawned {
                s.abort();
            }
            let _ = state.cgroup.destroy();
            if state.host_mounts {
                crate::rootfs::unmount_host_mounts(&state.rootfs);
            }
            let _ = dir.remove();
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    dir: &ContainerDir,
    state: &mut State,
    spawned: &mut Option<Spawned>,
    opts: &CreateOptions,
    spec: &Spec,
    plan: &Plan,
    console: Option<UnixStream>,
    listen_fds: u32,
    seccomp: Option<crate::seccomp::Prepared>,
) -> Result<(), Error> {
    // Recorded before the cgroup exists, so `delete --force` finds it after any crash.
    dir.save(state)?;
    match state.cgroup.create() {
        Ok(()) => {}
        // Without root and without a delegated cgroup there is none to make: run
        // without one, as rootless runc does.
        Err(e) if !nix::unistd::geteuid().is_root() && e.is_permission() => {
            log::warn!("running without a cgroup: {e}");
            let _ = state.cgroup.destroy();
            state.cgroup.dirs.clear();
            if spec
                .linux()
                .as_ref()
                .is_some_and(|l| l.resources().is_some())
            {
                log::warn!("linux.resources ignored: the container has no cgroup");
            }
        }
        Err(e) => return Err(e.into()),
    }
    dir.save(state)?;
    let resources = effective_resources(spec);
    if state.cgroup.systemd.is_none() {
        // Limits in place before the init joins, so it never runs without them.
        apply_resources(&state.cgroup, &resources)?;
    }
    let listener = listen_for_start(dir)?;
    let mut idmaps = vec![];
    let linux = spec.linux().as_ref();
    let (cuid, cgid) = if plan.new_user {
        (
            linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default(),
            linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default(),
        )
    } else {
        (vec![], vec![])
    };
    for m in spec.mounts().as_deref().unwrap_or_default() {
        idmaps.push(if crate::rootfs::wants_idmap(m) {
            let uid = m.uid_mappings().clone().unwrap_or_default();
            let gid = m.gid_mappings().clone().unwrap_or_default();
            Some(crate::namespaces::mount_userns(&uid, &gid, &cuid, &cgid)?)
        } else {
            None
        });
    }
    let s = spawned.insert(spawn(SpawnArgs {
        id: &opts.id,
        spec,
        bundle: &state.bundle,
        rootfs: &state.rootfs,
        plan,
        cgroup: &state.cgroup,
        resources: &resources,
        listener,
        console,
        idmaps,

        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds + listen_fds,
        privileged: nix::unistd::geteuid().is_root(),
        seccomp,
    })?);
    state.pid = Some(s.pid.as_raw());
    state.start_time = crate::procstat::read(s.pid.as_raw()).map(|p| p.start_time);
    dir.save(state)?;
    if state.cgroup.systemd.is_some() {
        // systemd made the cgroup when it started the unit with the init.
        if let Err(e) = apply_resources(&state.cgroup, &resources) {
            // The init sets up meanwhile. When it fails, systemd takes the unit's
            // cgroup away with it: the init's reason, sent before it exited, is the
            // one to report, not the cgroup that is gone.
            return Err(s.channel.pending_error().map_or(e, Error::Init));
        }
    }
    loop {
        match s.channel.recv() {
            Ok(Msg::RuntimeHooks) => {
                if let Some(h) = spec.hooks() {
                    // "created": the runtime spec's lifecycle puts these hooks after step 2.
                    let st = hook_state(state, "created");
                    #[allow(deprecated)]
                    let prestart = h.prestart().as_deref().unwrap_or_default();
                    hooks::run_all("prestart", prestart, &st)?;
                    hooks::run_all(
                        "createRuntime",
                        h.create_runtime().as_deref().unwrap_or_default(),
                        &st,
                    )?;
                }
                s.channel.send(&Msg::HooksDone)?;
            }
            Ok(Msg::Ready) => break,
            Ok(Msg::Error(m)) => return Err(Error::Init(m)),
            Ok(other) => return Err(ChannelError::Unexpected(other).into()),
            Err(ChannelError::Closed) => return Err(Error::Init(describe_exit(s.pid))),
            Err(e) => return Err(e.into()),
        }
    }
    state.phase = Phase::Created;
    dir.save(state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, s.pid.as_raw())?;
    }
    Ok(())
}

fn describe_exit(pid: Pid) -> String {
    match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code} during setup"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig} during setup"),
        _ => "exited during setup".to_string(),
    }
}

fn resolve_rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf, Error> {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let path = bundle.join(root);
    let rootfs = fs::canonicalize(&path).map_err(Error::io("rootfs", &path))?;
    if !rootfs.is_dir() {
        return Err(Error::Invalid(format!(
            "rootfs {} is not a directory",
            rootfs.display()
        )));
    }
    Ok(rootfs)
}

fn connect_console(spec: &Spec, socket: Option<&Path>) -> Result<Option<UnixStream>, Error> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (terminal, socket) {
        (true, Some(path)) => UnixStream::connect(path)
            .map(Some)
            .map_err(Error::io("connect to console socket", path)),
        (true, None) => Err(Error::Invalid(
            "process.terminal is true but no --console-socket was given".into(),
        )),
        (false, Some(_)) => Err(Error::Invalid(
            "--console-socket given but process.terminal is false".into(),
        )),
        (false, None) => Ok(None),
    }
}

/// The init's `start.sock`, bound through the directory descriptor so a long `--root`
/// never overflows a socket address.
fn listen_for_start(dir: &ContainerDir) -> Result<OwnedFd, Error> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(Error::sys("create start socket"))?;
    let path = dir.start_socket();
    let addr = UnixAddr::new(&path).map_err(Error::sys("start socket address"))?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(Error::sys("bind start socket"))?;
    listen(&fd, Backlog::new(4).expect("small backlog"))
        .map_err(Error::sys("listen on start socket"))?;
    Ok(fd)
}

/// Write the pid file atomically; a symlink at its path is replaced, never followed.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("pid file {} has no name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(Error::io("create pid file", &tmp))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(Error::io("write pid file", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write pid file", path)(e)
    })
}

/// Socket activation (`LISTEN_FDS`/`LISTEN_PID` meant for us): the sockets at 3.. are
/// passed on to the container process, ahead of `--preserve-fds`, as runc does.
fn take_listen_fds(spec: &mut Spec) -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n: u32 = match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) if ours && n > 0 => n,
        _ => return 0,
    };
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
    }
    n
}

/// The config's resources, with every device of `linux.devices` allowed after the
/// configured rules, as runc does (the container could not use them otherwise).
fn effective_resources(spec: &Spec) -> LinuxResources {
    let linux = spec.linux().as_ref();
    let mut r = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    if !devices.is_empty() {
        let mut rules = r.devices().clone().unwrap_or_default();
        for d in devices {
            // Fifos need no device permission; unbuffered char devices are char ones.
            let typ = match d.typ() {
                LinuxDeviceType::P => continue,
                LinuxDeviceType::B => LinuxDeviceType::B,
                _ => LinuxDeviceType::C,
            };
            let mut rule = LinuxDeviceCgroup::default();
            rule.set_allow(true);
            rule.set_typ(Some(typ));
            rule.set_major(Some(d.major()));
            rule.set_minor(Some(d.minor()));
            rule.set_access(Some("rwm".to_string()));
            rules.push(rule);
        }
        r.set_devices(Some(rules));
    }
    r
}

/// Apply the limits; without root, limits the cgroup tree does not let us set (no
/// delegation of that controller) are skipped with a warning, as rootless runc does.
fn apply_resources(cgroup: &CgroupRecord, r: &LinuxResources) -> Result<(), Error> {
    match crate::cgroups::resources::apply(cgroup, r) {
        Err(e)
            if !nix::unistd::geteuid().is_root()
                && (e.is_permission() || e.is_missing_controller()) =>
        {
            log::warn!("linux.resources not applied: {e}");
            Ok(())
        }
        r => Ok(r?),
    }
}
