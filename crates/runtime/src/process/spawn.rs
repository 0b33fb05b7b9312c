//! The parent's side of starting the init: one `clone3` that creates the namespaces,
//! lands the child in its cgroup (v2) and returns a pidfd; then the cgroup (v1) and
//! id maps are set up before the child is told to go on.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use rt_sys::clone::{clone3, CloneArgs, Forked};
use thiserror::Error;

use super::channel::{Channel, ChannelError, Msg};
use super::init;
use crate::cgroups::{CgroupError, CgroupRecord};
use crate::namespaces::{self, NamespaceError, Plan};

#[derive(Debug, Error)]
pub enum SpawnError {
    #[error("clone the container init: {0}")]
    Clone(nix::Error),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("container init: {0}")]
    Init(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Everything the init needs; the child reads it from its copy of our memory.
pub struct SpawnArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub cgroup: &'a CgroupRecord,
    /// The limits of the cgroup, for a systemd unit's start.
    pub resources: &'a LinuxResources,
    /// Where `rt start` will knock (already bound and listening).
    pub listener: OwnedFd,
    pub console: Option<UnixStream>,
    /// Per entry of `mounts`: the user namespace of its id mapping.
    pub idmaps: Vec<Option<OwnedFd>>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// rt runs as root on the host: the child hides from the container until it
    /// execs (see `init::undumpable`). Known before the clone: in a new user
    /// namespace the child's own euid soon reads 0.
    pub privileged: bool,
    /// The container's seccomp filter, compiled, and the connection to its agent.
    pub seccomp: Option<crate::seccomp::Prepared>,
}

/// A running init, waiting on the channel for the next step.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub channel: Channel,
}

impl Spawned {
    /// Kill and reap the init after a failed create.
    pub fn abort(&self) {
        let _ = rt_sys::pidfd::kill(self.pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

pub fn spawn(args: SpawnArgs<'_>) -> Result<Spawned, SpawnError> {
    let (parent_end, child_end) = Channel::pair()?;
    let mut guard = args.plan.enter_for_clone(args.spec)?;
    let cgroup_dir = args.cgroup.open_v2_dir();
    let mut clone_args = CloneArgs {
        flags: args.plan.clone_flags.bits() as u64,
        cgroup: cgroup_dir.as_ref().map(|d| d.as_fd()),
        pidfd: true,
    };
    let mut forked = clone3(&clone_args);
    if matches!(
        forked,
        Err(Errno::EOPNOTSUPP) | Err(Errno::EBUSY) | Err(Errno::EINVAL)
    ) && clone_args.cgroup.is_some()
    {
        // Some v2 cgroups refuse CLONE_INTO_CGROUP (threaded, older kernels): join by
        // writing cgroup.procs instead.
        clone_args.cgroup = None;
        forked = clone3(&clone_args);
    }
    let in_cgroup = clone_args.cgroup.is_some();
    match forked.map_err(SpawnError::Clone) {
        Ok(Forked::Child) => {
            // This copy of the guard belongs to the child, born in the joined
            // namespaces: it must never switch back to the runtime's.
            std::mem::forget(guard);
            drop(parent_end);
            if args.plan.intermediate {
                init::intermediate(&args, child_end)
            } else {
                init::run(&args, child_end, false)
            }
        }
        Ok(Forked::Parent { pid, pidfd }) => {
            let pidfd = pidfd.expect("clone3 asked for a pidfd");
            drop(child_end);
            let mut spawned = Spawned {
                pid,
                pidfd,
                channel: parent_end,
            };
            // Join before the child runs when it cannot wait: an intermediate's
            // init must inherit the cgroup, and systemd makes the cgroup (which the
            // init bind-mounts) only when it starts the unit.
            let early = args.plan.intermediate || args.cgroup.systemd.is_some();
            let mut setup = || -> Result<(), SpawnError> {
                guard.restore()?;
                if early {
                    args.cgroup
                        .attach(pid.as_raw(), in_cgroup, args.id, args.resources)?;
                }
                if args.plan.new_user {
                    namespaces::write_id_maps(pid, args.spec)?;
                }
                if let Some(score) = args.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
                    // From outside: no procfs of the container's is needed, and a user
                    // namespace does not stand in the way.
                    let path = format!("/proc/{pid}/oom_score_adj");
                    std::fs::write(&path, score.to_string()).map_err(|source| SpawnError::Io {
                        op: "write",
                        path: path.into(),
                        source,
                    })?;
                }
                spawned.channel.send(&Msg::Go(pid.as_raw()))?;
                if !args.plan.intermediate {
                    if !early {
                        // Joining a v1 cgroup waits for an RCU grace period (~10 ms):
                        // the init builds its rootfs meanwhile.
                        args.cgroup
                            .attach(pid.as_raw(), in_cgroup, args.id, args.resources)?;
                    }
                    spawned.channel.send(&Msg::Joined)?;
                }
                Ok(())
            };
            let mut result = setup();
            if result.is_ok() && args.plan.intermediate {
                result = adopt_forked_init(&mut spawned);
            }
            if let Err(e) = result {
                // The init may have failed first, its reason waiting in the channel,
                // and our error be only the consequence (a closed channel, a pid gone).
                let e = spawned.channel.pending_error().map_or(e, SpawnError::Init);
                spawned.abort();
                return Err(e);
            }
            Ok(spawned)
        }
        Err(e) => Err(e),
    }
}

/// The intermediate child reports the init it forked and exits; from then on the
/// init is the container's process, and gets its own `Go`.
fn adopt_forked_init(spawned: &mut Spawned) -> Result<(), SpawnError> {
    let init = match spawned.channel.recv()? {
        Msg::InitPid(p) => Pid::from_raw(p),
        Msg::Error(m) => return Err(SpawnError::Init(m)),
        other => return Err(ChannelError::Unexpected(other).into()),
    };
    let _ = waitpid(spawned.pid, None);
    spawned.pidfd = rt_sys::pidfd::open(init).map_err(SpawnError::Clone)?;
    spawned.pid = init;
    spawned.channel.send(&Msg::Go(init.as_raw()))?;
    spawned.channel.send(&Msg::Joined)?;
    Ok(())
}
