//! The state store: one directory per container under the state root, holding
//! `state.json` (written atomically: write, fsync, rename) and, while the container
//! waits for `start`, the init's `start.sock`. Every command that changes a container
//! holds an flock on its directory, so two `rt` processes never interleave.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cgroups::CgroupRecord;
use crate::procstat;

const STATE_FILE: &str = "state.json";
const START_SOCKET: &str = "start.sock";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lock {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io { op, path, source }
}

/// How far `create` got; the rest of the status is read off the live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Creating,
    Created,
}

/// What rt remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub phase: Phase,
    /// Host pid of the container's init, once it exists.
    pub pid: Option<i32>,
    /// The init's start time in clock ticks since boot: with the pid, it names the
    /// process uniquely, so a recycled pid is never taken for the container.
    pub start_time: Option<u64>,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub cgroup: CgroupRecord,
    /// The container shares the host's mount namespace: its mounts are on the host
    /// and `delete` takes them down.
    #[serde(default)]
    pub host_mounts: bool,
    /// The config as it was at create time: hooks and the process for `exec` come from
    /// here, so deleting or editing the bundle afterwards changes nothing.
    pub config: Box<Spec>,
}

/// The status the OCI runtime spec defines, plus runc's `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state root, `--root`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Whether a command changes the container (exclusive) or only reads it (shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the container's directory; exactly one of two racing creates wins.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(io("create state root", &self.root))?;
        let path = self.root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(e) => return Err(io("create state directory", &path)(e)),
        }
        ContainerDir::open(id, path, Access::Write)
    }

    /// Open an existing container's directory and lock it.
    pub fn open(&self, id: &str, access: Access) -> Result<ContainerDir, StateError> {
        let path = self.root.join(id);
        let dir = ContainerDir::open(id, path, access)?;
        // A delete may have removed the directory while we waited for the lock.
        if !dir.path.exists() {
            return Err(StateError::NotFound(id.to_string()));
        }
        Ok(dir)
    }

    /// IDs of every container in the store, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io("read state root", &self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A locked container directory. The lock is released on drop.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    lock: Flock<File>,
}

impl ContainerDir {
    fn open(id: &str, path: PathBuf, access: Access) -> Result<Self, StateError> {
        let dir = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io("open state directory", &path)(e)),
        };
        let arg = match access {
            Access::Read => FlockArg::LockShared,
            Access::Write => FlockArg::LockExclusive,
        };
        let lock = Flock::lock(dir, arg).map_err(|(_, source)| StateError::Lock {
            path: path.clone(),
            source,
        })?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock,
        })
    }

    /// The raw descriptor of the directory (kept out of the container by the init).
    pub fn raw_fd(&self) -> i32 {
        self.lock.as_raw_fd()
    }

    /// A path to `name` in this directory short enough for a unix socket address,
    /// whatever the length of `--root`.
    pub fn short_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/self/fd/{}/{}",
            self.lock.as_fd().as_raw_fd(),
            name
        ))
    }

    pub fn start_socket(&self) -> PathBuf {
        self.short_path(START_SOCKET)
    }

    /// True while the init waits for `start`: the socket exists until `start` takes it.
    pub fn waiting_for_start(&self) -> bool {
        self.path.join(START_SOCKET).exists()
    }

    pub fn remove_start_socket(&self) {
        let _ = fs::remove_file(self.path.join(START_SOCKET));
    }

    pub fn load(&self) -> Result<State, StateError> {
        let path = self.path.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StateError::NotFound(self.id.clone()))
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        serde_json::from_slice(&data).map_err(|source| StateError::Parse { path, source })
    }

    /// Replace `state.json` atomically, so a reader or a crash never sees half a file.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let tmp = self.path.join(".state.json.tmp");
        let path = self.path.join(STATE_FILE);
        let data = serde_json::to_vec(state).expect("state serializes");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        f.write_all(&data).map_err(io("write", &tmp))?;
        f.sync_data().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    /// The user name owning the container (the owner of its directory).
    pub fn owner(&self) -> String {
        let uid = fs::metadata(&self.path).map(|m| m.uid()).unwrap_or(0);
        user_name(uid)
    }

    /// Remove the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &self.path)(e)),
        }
    }
}

impl State {
    /// The status, read off the live init process rather than trusted from the file.
    pub fn status(&self, dir: &ContainerDir) -> Status {
        let (Some(pid), Some(start)) = (self.pid, self.start_time) else {
            return if self.phase == Phase::Creating {
                Status::Creating
            } else {
                Status::Stopped
            };
        };
        match procstat::read(pid) {
            Some(st) if st.start_time == start && !st.is_dead() => {}
            _ => return Status::Stopped,
        }
        if self.phase == Phase::Creating {
            return Status::Creating;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        if dir.waiting_for_start() {
            return Status::Created;
        }
        Status::Running
    }
}

/// Look a uid up in the host's /etc/passwd; the number when it is not there.
fn user_name(uid: u32) -> String {
    if let Ok(passwd) = fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut f = line.split(':');
            if let (Some(name), _, Some(id)) = (f.next(), f.next(), f.next()) {
                if id.parse() == Ok(uid) {
                    return name.to_string();
                }
            }
        }
    }
    uid.to_string()
}
