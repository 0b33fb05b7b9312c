//! Shared helpers for the integration tests of `rt`.
//!
//! The tests run the real runtime binary (env `RT_BIN`, default
//! `<workspace>/target/debug/rt`) on real busybox bundles.  Because `rt` is a
//! drop-in replacement for runc, the suite can be validated against runc:
//!
//! ```text
//! RT_BIN=/usr/sbin/runc cargo test -p rt-tests
//! ```
//!
//! * [`Bundle`] builds a bundle (busybox rootfs + `config.json` held as a
//!   `serde_json::Value`, tweaked by builder methods and written on use).
//! * [`Runtime`] wraps the binary with a private `--root` per test, runs
//!   commands with a timeout and returns an [`Out`].
//! * [`assert_nothing_left`] and friends check that no state dir, cgroup,
//!   mount or process of a container is left on the host.
//!
//! Everything is cleaned up on drop (`delete --force`, kill stray processes,
//! lazy unmounts, temp dir removal), errors ignored.
//!
//! Build the runtime first (`cargo build -p rt`): this package does not
//! depend on it. Tests need root; without root they print a note and pass,
//! unless `CI=true`, where they fail (likewise for missing kernel features).
//!
//! Known failures against runc 1.1.5 (rt must pass them):
//! * `hooks::hooks_run_in_spec_order`: runc runs poststart during `create`.
//! * `hooks::hooks_in_container_get_host_pid`: runc passes pid 1 (the pid in
//!   the container's pid namespace) to createContainer/startContainer hooks.
//! * `hooks::hooks_receive_state`: runc passes status "creating" to
//!   prestart/createRuntime/createContainer hooks (rt: "created").
//! * `config_errors::{unsupported_oci_version, unknown_capability,
//!   uid_mappings_without_user_namespace, relative_mount_destination}`:
//!   runc accepts these configs.
//! * `errors::create_killed_midway_then_delete_force`: runc's
//!   `delete --force` leaves the cgroup of the half-made container.
//! * `errors::racing_creates_of_one_id`: both racing runc creates may fail
//!   ("exec fifo ... already exists" / "unable to store init state").
//! * `linux::no_mount_namespace`: runc leaves the container's mounts on the
//!   host after delete.
//! * `linux::join_user_namespace_with_new_pid_namespace`: runc 1.1 wants
//!   uid/gid mappings in the config even when joining a user namespace.
//! * `linux::time_namespace_offsets`: runc 1.1 has no time namespaces.
//! * `exec::exec_cap_and_no_new_privs`: runc 1.1 adds `exec --cap` to the
//!   bounding, effective and permitted sets only (rt: all five, ambient
//!   included, so a non-root user keeps it).
//! * `cgroups::events_interval_prints_until_the_container_stops`: runc's
//!   `events` goes on printing for a stopped container until it is deleted.
//! * `notify::notify_socket_passes_ready_with_mainpid`: runc 1.1 sends
//!   `READY=1` and `MAINPID=` in two datagrams, and no barrier.
//! * `exec::exec_joins_user_cgroup_and_time_namespaces`: runc 1.1 has no
//!   time namespaces (create fails).
//! * `security::{create_killed_at_random_points_then_delete_force,
//!   create_killed_in_create_runtime_hook_then_delete_force}`: runc's
//!   `delete --force` leaves the cgroup of a create it did not finish.
//! * `security::dev_null_hostile_in_image`: runc keeps an image's
//!   `/dev/null` symlink (CVE-2025-31133).
//! * `security::dev_symlink_in_image`: runc creates `/dev/fd`, `/dev/ptmx`...
//!   on the host through an image's absolute `/dev` symlink.
//! * `security::mount_destination_swapped_during_setup_stays_inside`: runc
//!   creates the mount point in the host directory a swapped symlink names.
//! * `security::failing_poststart_and_poststop_hooks`: runc runs poststart
//!   during `create`, which a failing one fails.
//! * `security::hanging_hooks`: runc waits for a hook's child that holds its
//!   stdout.
//! * `security::rootless_container_stays_in_its_bounds`: runc keeps its
//!   rootless state in `$XDG_RUNTIME_DIR/runc`.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default timeout for one invocation of the runtime binary.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Default timeout when polling for a condition.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn next_n() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

/// Root of the cargo workspace (parent of the `tests` package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The runtime binary under test: `$RT_BIN` or `<workspace>/target/debug/rt`.
pub fn rt_bin() -> PathBuf {
    match std::env::var_os("RT_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join("target/debug/rt"),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `CI=true` (or `1`): tests that cannot run must fail instead of skipping.
pub fn is_ci() -> bool {
    matches!(
        std::env::var("CI").map(|v| v.to_ascii_lowercase()),
        Ok(ref v) if v == "true" || v == "1"
    )
}

/// Returns true if the test may go on. When the requirement is not met the
/// test fails under CI and is skipped with a note otherwise.
#[track_caller]
pub fn requirement(ok: bool, module: &str, what: &str) -> bool {
    if ok {
        return true;
    }
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(n) if n != "main" => format!("{module}::{n}"),
        _ => module.to_string(),
    };
    if is_ci() {
        panic!("{test}: requirement not met: {what} (CI=true, so this is a failure)");
    }
    eprintln!("note: {test} skipped: {what}");
    false
}

/// Skip (or fail under CI) the current test unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::requirement($crate::is_root(), module_path!(), "needs root") {
            return;
        }
    };
}

/// Skip (or fail under CI) the current test unless `cond` holds.
#[macro_export]
macro_rules! require {
    ($cond:expr, $what:expr) => {
        if !$crate::requirement($cond, module_path!(), $what) {
            return;
        }
    };
}

/// Poll `f` every 10ms until it returns true or `timeout` expires.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Path of the busybox binary on the host (`$BUSYBOX`, /bin/busybox, ...).
pub fn host_busybox() -> PathBuf {
    if let Some(p) = std::env::var_os("BUSYBOX") {
        return PathBuf::from(p);
    }
    for p in ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox not found (install busybox-static or set BUSYBOX)");
}

/// `(soft, hard)` of one of our own rlimits.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid out pointer.
    let rc = unsafe { libc::getrlimit(resource, &mut r) };
    assert_eq!(rc, 0, "getrlimit");
    (r.rlim_cur, r.rlim_max)
}

/// True if the host uses the unified cgroup v2 layout.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Inode string of a namespace link such as `/proc/self/ns/net`
/// (e.g. `net:[4026531840]`).
pub fn ns_id(path: impl AsRef<Path>) -> String {
    fs::read_link(path.as_ref())
        .unwrap_or_else(|e| panic!("readlink {}: {e}", path.as_ref().display()))
        .to_string_lossy()
        .into_owned()
}

/// Does `pid` exist (and is not a zombie)?
pub fn pid_alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" of comm
            let st = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
            !st.starts_with('Z') && !st.starts_with('X')
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------

pub const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Bit mask of a list of capability names as in a config.
pub fn cap_mask<S: AsRef<str>>(names: &[S]) -> u64 {
    names.iter().fold(0u64, |m, n| {
        let i = CAP_NAMES
            .iter()
            .position(|c| *c == n.as_ref())
            .unwrap_or_else(|| panic!("unknown capability {}", n.as_ref()));
        m | (1u64 << i)
    })
}

/// Parse `CapInh`... lines of a `/proc/PID/status` text into masks.
pub fn parse_cap_status(status: &str) -> std::collections::BTreeMap<String, u64> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.starts_with("Cap") {
                return None;
            }
            Some((
                k.to_string(),
                u64::from_str_radix(v.trim(), 16).expect("hex cap mask"),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Default spec
// ---------------------------------------------------------------------------

/// The config template: equivalent to `runc spec` output, with
/// `terminal: false`.
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": {
                "devices": [ { "allow": false, "access": "rwm" } ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Quote a string for `sh -c`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Applet names of the host busybox (`busybox --list`), cached.
pub fn busybox_applets() -> &'static BTreeSet<String> {
    static APPLETS: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let list = Command::new(host_busybox())
            .arg("--list")
            .output()
            .expect("busybox --list");
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Bundle
// ---------------------------------------------------------------------------

/// A bundle in a fresh temp dir: `rootfs/` (busybox) and `config.json`
/// (written from [`Bundle::config`] by [`Bundle::save`], which [`Runtime`]
/// calls before `create`/`run`).
pub struct Bundle {
    path: PathBuf,
    /// The config, edited by the builder methods or directly.
    pub config: Value,
    /// Set to false to keep the bundle for debugging.
    pub cleanup: bool,
    /// When false, [`Bundle::save`] leaves config.json alone (see
    /// [`Bundle::raw_config`]).
    pub write_config: bool,
}

impl Bundle {
    /// A busybox bundle with the default config and a unique absolute
    /// `linux.cgroupsPath`.
    pub fn busybox() -> Bundle {
        let n = next_n();
        let dir = tempfile::Builder::new()
            .prefix(&format!("rt-bundle-{}-{n}-", std::process::id()))
            .tempdir()
            .expect("create bundle temp dir")
            .keep();
        let path = fs::canonicalize(&dir).expect("canonicalize bundle dir");
        // Readable by mapped users (user namespace tests).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let rootfs = path.join("rootfs");
        for d in [
            "bin",
            "proc",
            "sys",
            "dev",
            "tmp",
            "etc",
            "root",
            "home/user",
            "mnt",
            "var",
            "run",
        ] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755)).unwrap();
        let bb = rootfs.join("bin/busybox");
        // A hard link avoids ETXTBSY races with fork()s of parallel tests
        // that would inherit the write fd of a copy.
        if fs::hard_link(host_busybox(), &bb).is_err() {
            fs::copy(host_busybox(), &bb).expect("copy busybox");
            fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut applets = busybox_applets().clone();
        for a in [
            "sh", "cat", "ls", "id", "echo", "sleep", "hostname", "grep", "mount", "stat", "test",
            "true", "false", "touch", "env", "pwd", "readlink", "tty", "wc", "head", "mkdir",
        ] {
            applets.insert(a.to_string());
        }
        for a in applets {
            if a == "busybox" {
                continue;
            }
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(&a));
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             user:x:1000:1000:user:/home/user:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\ntty:x:5:\nuser:x:1000:\nnobody:x:65534:\n",
        )
        .unwrap();
        let _ = std::os::unix::fs::chown(rootfs.join("home/user"), Some(1000), Some(1000));
        let mut config = default_spec();
        config["linux"]["cgroupsPath"] = json!(format!("/rt-test-{}-{n}", std::process::id()));
        Bundle {
            path,
            config,
            cleanup: true,
            write_config: true,
        }
    }

    /// Absolute path of the bundle dir.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("utf-8 bundle path")
    }

    /// Absolute path of the rootfs.
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// Write a file inside the rootfs (parents created).
    pub fn write_rootfs_file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.rootfs().join(rel.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }

    /// A host directory inside the bundle (outside the rootfs), mode 0777,
    /// meant to be bind-mounted into the container.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        p
    }

    /// `host_dir(name)` bind-mounted read-write at `dest`.
    pub fn shared_dir(&mut self, name: &str, dest: &str) -> PathBuf {
        let p = self.host_dir(name);
        self.bind(p.to_str().unwrap(), dest, &["rbind", "rw"]);
        p
    }

    /// Replace config.json by raw text (`None`: no config.json at all);
    /// [`Bundle::save`] will not overwrite it.
    pub fn raw_config(&mut self, text: Option<&str>) -> &mut Self {
        self.write_config = false;
        let p = self.path.join("config.json");
        match text {
            Some(t) => fs::write(p, t).unwrap(),
            None => {
                let _ = fs::remove_file(p);
            }
        }
        self
    }

    /// Write `config.json` from [`Bundle::config`].
    pub fn save(&self) {
        if !self.write_config {
            return;
        }
        fs::write(
            self.path.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .expect("write config.json");
    }

    /// The configured cgroupsPath, if any.
    pub fn cgroups_path(&self) -> Option<String> {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .map(str::to_string)
    }

    // ----- generic editing -------------------------------------------------

    /// Set a value by JSON pointer (`/process/cwd`); parents must exist or
    /// are created as objects.
    pub fn set(&mut self, pointer: &str, v: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        let (last, parents) = parts.split_last().expect("non-empty pointer");
        for p in parents {
            if cur.get(p.as_str()).is_none() {
                cur[p.as_str()] = json!({});
            }
            cur = cur.get_mut(p.as_str()).unwrap();
        }
        cur[last.as_str()] = v;
        self
    }

    /// Remove a value by JSON pointer.
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, last) = pointer.rsplit_once('/').expect("pointer");
        if let Some(Value::Object(m)) = self.config.pointer_mut(parent) {
            m.remove(last);
        }
        self
    }

    fn array_mut(&mut self, pointer: &str) -> &mut Vec<Value> {
        if self.config.pointer(pointer).map(Value::is_array) != Some(true) {
            self.set(pointer, json!([]));
        }
        self.config
            .pointer_mut(pointer)
            .unwrap()
            .as_array_mut()
            .unwrap()
    }

    // ----- process ---------------------------------------------------------

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn env(&mut self, env: &[&str]) -> &mut Self {
        self.set("/process/env", json!(env))
    }

    pub fn add_env(&mut self, kv: &str) -> &mut Self {
        self.array_mut("/process/env").push(json!(kv));
        self
    }

    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.set("/process/cwd", json!(cwd))
    }

    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set("/process/terminal", json!(on))
    }

    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user/uid", json!(uid));
        self.set("/process/user/gid", json!(gid))
    }

    pub fn additional_gids(&mut self, gids: &[u32]) -> &mut Self {
        self.set("/process/user/additionalGids", json!(gids))
    }

    pub fn umask(&mut self, umask: u32) -> &mut Self {
        self.set("/process/user/umask", json!(umask))
    }

    /// Set one capability set (`bounding`, `effective`, `permitted`,
    /// `inheritable`, `ambient`).
    pub fn caps(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        self.set(&format!("/process/capabilities/{set}"), json!(caps))
    }

    /// Set all five capability sets to the same list.
    pub fn all_caps(&mut self, caps: &[&str]) -> &mut Self {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            self.caps(set, caps);
        }
        self
    }

    /// Add or replace an rlimit.
    pub fn rlimit(&mut self, typ: &str, soft: u64, hard: u64) -> &mut Self {
        let a = self.array_mut("/process/rlimits");
        a.retain(|r| r["type"] != typ);
        a.push(json!({"type": typ, "soft": soft, "hard": hard}));
        self
    }

    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.set("/process/noNewPrivileges", json!(on))
    }

    pub fn oom_score_adj(&mut self, v: i32) -> &mut Self {
        self.set("/process/oomScoreAdj", json!(v))
    }

    // ----- root, hostname, mounts -----------------------------------------

    pub fn root_readonly(&mut self, ro: bool) -> &mut Self {
        self.set("/root/readonly", json!(ro))
    }

    pub fn hostname(&mut self, h: &str) -> &mut Self {
        self.set("/hostname", json!(h))
    }

    pub fn mount(&mut self, dest: &str, typ: &str, source: &str, options: &[&str]) -> &mut Self {
        let mut m = json!({"destination": dest, "type": typ, "source": source});
        if !options.is_empty() {
            m["options"] = json!(options);
        }
        self.array_mut("/mounts").push(m);
        self
    }

    /// A bind mount; options should include `bind` or `rbind`.
    /// What a dynamically linked host binary needs in the container (the
    /// host's /usr and /lib* read-only), and the host binary `helper` at `at`.
    pub fn host_userland(&mut self, helper: &str, at: &str) -> &mut Self {
        let rootfs = self.rootfs();
        fs::create_dir_all(rootfs.join("usr")).unwrap();
        self.bind("/usr", "/usr", &["rbind", "ro"]);
        for lib in ["/lib", "/lib32", "/lib64", "/libx32"] {
            let host = Path::new(lib);
            let inside = rootfs.join(&lib[1..]);
            match fs::read_link(host) {
                // merged /usr: the same symlink (into our /usr)
                Ok(target) => std::os::unix::fs::symlink(target, &inside).unwrap(),
                Err(_) if host.is_dir() => {
                    fs::create_dir_all(&inside).unwrap();
                    self.bind(lib, lib, &["rbind", "ro"]);
                }
                Err(_) => {}
            }
        }
        fs::write(rootfs.join(at.trim_start_matches('/')), "").unwrap();
        self.bind(helper, at, &["bind", "ro"])
    }

    pub fn bind(&mut self, host: &str, dest: &str, options: &[&str]) -> &mut Self {
        self.mount(dest, "bind", host, options)
    }

    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        self.array_mut("/mounts")
            .retain(|m| m["destination"] != dest);
        self
    }

    pub fn masked_paths(&mut self, paths: &[&str]) -> &mut Self {
        let a = self.array_mut("/linux/maskedPaths");
        a.extend(paths.iter().map(|p| json!(p)));
        self
    }

    pub fn readonly_paths(&mut self, paths: &[&str]) -> &mut Self {
        let a = self.array_mut("/linux/readonlyPaths");
        a.extend(paths.iter().map(|p| json!(p)));
        self
    }

    // ----- linux -------------------------------------------------------------

    pub fn has_namespace(&self, typ: &str) -> bool {
        self.config["linux"]["namespaces"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["type"] == typ))
    }

    pub fn add_namespace(&mut self, typ: &str) -> &mut Self {
        if !self.has_namespace(typ) {
            self.array_mut("/linux/namespaces")
                .push(json!({"type": typ}));
        }
        self
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        self.array_mut("/linux/namespaces")
            .retain(|n| n["type"] != typ);
        self
    }

    /// Join an existing namespace by path (replaces the entry of that type).
    pub fn namespace_path(&mut self, typ: &str, path: &str) -> &mut Self {
        self.remove_namespace(typ);
        self.array_mut("/linux/namespaces")
            .push(json!({"type": typ, "path": path}));
        self
    }

    pub fn uid_mappings(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        self.set(
            "/linux/uidMappings",
            json!([{"containerID": container, "hostID": host, "size": size}]),
        )
    }

    pub fn gid_mappings(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        self.set(
            "/linux/gidMappings",
            json!([{"containerID": container, "hostID": host, "size": size}]),
        )
    }

    pub fn sysctl(&mut self, key: &str, value: &str) -> &mut Self {
        let mut p = String::from("/linux/sysctl/");
        p.push_str(&key.replace('~', "~0").replace('/', "~1"));
        self.set(&p, json!(value))
    }

    /// Add an entry to `linux.devices`.
    pub fn device(&mut self, dev: Value) -> &mut Self {
        self.array_mut("/linux/devices").push(dev);
        self
    }

    pub fn set_cgroups_path(&mut self, path: Option<&str>) -> &mut Self {
        match path {
            Some(p) => self.set("/linux/cgroupsPath", json!(p)),
            None => self.remove("/linux/cgroupsPath"),
        }
    }

    // ----- hooks -------------------------------------------------------------

    /// Add a hook of `kind` (`prestart`, `createRuntime`, ...).
    pub fn hook(
        &mut self,
        kind: &str,
        path: &str,
        args: &[&str],
        timeout: Option<u64>,
    ) -> &mut Self {
        let mut h = json!({"path": path, "args": args});
        if let Some(t) = timeout {
            h["timeout"] = json!(t);
        }
        self.array_mut(&format!("/hooks/{kind}")).push(h);
        self
    }

    // ----- cleanup ---------------------------------------------------------

    /// Kill leftover processes, unmount leftover mounts, remove cgroups and
    /// finally the directory (only if nothing is mounted under it any more).
    fn cleanup_now(&mut self) {
        let rootfs = self.rootfs();
        let cg = self.cgroups_path();
        for pid in leftover_processes(&rootfs, cg.as_deref()) {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let mut mounts = mounts_under(&self.path);
        mounts.reverse();
        for m in mounts {
            if let Ok(c) = CString::new(m.as_os_str().as_bytes()) {
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if let Some(cg) = &cg {
            wait_for(Duration::from_secs(2), || {
                leftover_processes(&rootfs, Some(cg)).is_empty()
            });
            for d in cgroup_dirs(cg).into_iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        if mounts_under(&self.path).is_empty() {
            let _ = fs::remove_dir_all(&self.path);
        } else {
            eprintln!(
                "warning: mounts left under {}, not removing it",
                self.path.display()
            );
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if self.cleanup {
            self.cleanup_now();
        }
    }
}

// ---------------------------------------------------------------------------
// Host inspection
// ---------------------------------------------------------------------------

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub mount_id: String,
    pub parent_id: String,
    pub root: String,
    pub mount_point: PathBuf,
    pub options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

impl MountInfo {
    /// Per-mount options (`rw,nosuid,...`).
    pub fn opts(&self) -> Vec<&str> {
        self.options.split(',').collect()
    }

    /// Superblock options (`rw,size=1024k,mode=755`).
    pub fn super_opts(&self) -> Vec<&str> {
        self.super_options.split(',').collect()
    }

    /// The option is among the per-mount or the superblock options.
    pub fn has(&self, opt: &str) -> bool {
        self.opts().contains(&opt) || self.super_opts().contains(&opt)
    }
}

/// The topmost mount at `mount_point` in a parsed mountinfo list.
pub fn find_mount<'a>(list: &'a [MountInfo], mount_point: &str) -> Option<&'a MountInfo> {
    list.iter()
        .rev()
        .find(|m| m.mount_point == Path::new(mount_point))
}

/// Our own /proc/self/mountinfo.
pub fn mountinfo() -> Vec<MountInfo> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo"))
}

/// Parse mountinfo text (e.g. printed by a container); lines that are not
/// mountinfo lines are ignored.
pub fn parse_mountinfo(s: &str) -> Vec<MountInfo> {
    s.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let g: Vec<&str> = post.split(' ').collect();
            Some(MountInfo {
                mount_id: f.first()?.to_string(),
                parent_id: f.get(1)?.to_string(),
                root: unescape_mountinfo(f.get(3)?),
                mount_point: PathBuf::from(unescape_mountinfo(f.get(4)?)),
                options: f.get(5)?.to_string(),
                fstype: g.first()?.to_string(),
                source: g.get(1).map(|s| unescape_mountinfo(s)).unwrap_or_default(),
                super_options: g.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// Mount points (in our mount namespace) at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Cgroup mounts: `(mount point, hierarchy key)` where the key is the
/// controller list of a v1 hierarchy (`cpu`, `name=systemd`...) or `""` for v2.
///
/// Only the first mount of each hierarchy counts: a container without a
/// mount namespace (run by a parallel test) mounts its cgroups on the host
/// too, under its bundle, later than the host's own mounts.
pub fn cgroup_mounts() -> Vec<(PathBuf, String)> {
    let mut seen = BTreeSet::new();
    mountinfo()
        .into_iter()
        .filter_map(|m| match m.fstype.as_str() {
            "cgroup2" => Some((m.mount_point, String::new())),
            "cgroup" => {
                let ctrls: Vec<&str> = m
                    .super_options
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        ) && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "xattr"
                            && *o != "cpuset_v2_mode"
                            && *o != "noprefix"
                    })
                    .collect();
                Some((m.mount_point, ctrls.join(",")))
            }
            _ => None,
        })
        .filter(|(_, key)| {
            let mut k: Vec<&str> = key.split(',').collect();
            k.sort();
            seen.insert(k.join(","))
        })
        .collect()
}

/// Our own cgroup per hierarchy key (see [`cgroup_mounts`]).
pub fn own_cgroups() -> Vec<(String, String)> {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// The cgroup a relative cgroupsPath starts from, in the hierarchy whose
/// line in /proc/self/cgroup is `own`: that cgroup, on a pure v2 host its
/// parent (runc's rule, which rt follows).
pub fn relative_base(own: &str) -> String {
    if cgroup_v2() {
        let p = Path::new(own);
        p.parent().unwrap_or(p).to_string_lossy().into_owned()
    } else {
        own.to_string()
    }
}

/// All host directories that would hold the cgroup `path` (absolute
/// cgroupsPath is taken from each hierarchy's root, a relative one from our
/// own cgroup in that hierarchy, see [`relative_base`]).
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let own = own_cgroups();
    let mut out = Vec::new();
    for (mp, key) in cgroup_mounts() {
        if path.starts_with('/') {
            out.push(mp.join(path.trim_start_matches('/')));
        } else if let Some((_, base)) = own.iter().find(|(k, _)| *k == key) {
            out.push(
                mp.join(relative_base(base).trim_start_matches('/'))
                    .join(path),
            );
        }
    }
    out
}

/// Host cgroup dirs of `path` that exist.
pub fn existing_cgroup_dirs(path: &str) -> Vec<PathBuf> {
    cgroup_dirs(path)
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

fn cgroup_matches(cg_line_path: &str, cg: &str) -> bool {
    let cg = cg.trim_end_matches('/');
    if cg.starts_with('/') {
        cg_line_path == cg || cg_line_path.starts_with(&format!("{cg}/"))
    } else {
        cg_line_path.ends_with(&format!("/{cg}")) || cg_line_path.contains(&format!("/{cg}/"))
    }
}

/// Processes (not us) whose root is `rootfs` (same dev/inode) or whose root
/// link points under it, or that are in cgroup `cg`.
pub fn leftover_processes(rootfs: &Path, cg: Option<&str>) -> Vec<i64> {
    let me = std::process::id() as i64;
    let target = fs::metadata(rootfs).ok().map(|m| (m.dev(), m.ino()));
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let base = e.path();
        let mut hit = false;
        if let (Some(t), Ok(m)) = (target, fs::metadata(base.join("root"))) {
            if (m.dev(), m.ino()) == t {
                hit = true;
            }
        }
        if !hit {
            if let Ok(l) = fs::read_link(base.join("root")) {
                if l != Path::new("/") && l.starts_with(rootfs) {
                    hit = true;
                }
            }
        }
        if !hit {
            if let Some(cg) = cg {
                if let Ok(s) = fs::read_to_string(base.join("cgroup")) {
                    hit = s.lines().any(|l| {
                        l.splitn(3, ':')
                            .nth(2)
                            .is_some_and(|p| cgroup_matches(p, cg))
                    });
                }
            }
        }
        if hit && pid_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Assert the state dir of `id` under the runtime's root is gone.
#[track_caller]
pub fn assert_no_state(rt: &Runtime, id: &str) {
    let p = rt.root().join(id);
    assert!(
        !p.exists(),
        "state dir {} of container {id:?} left behind",
        p.display()
    );
}

/// Assert no cgroup dir for `path` exists in any hierarchy.
#[track_caller]
pub fn assert_no_cgroup(path: &str) {
    let mut left = Vec::new();
    wait_for(Duration::from_secs(3), || {
        left = existing_cgroup_dirs(path);
        left.is_empty()
    });
    assert!(left.is_empty(), "cgroup dirs left behind: {left:?}");
}

/// Assert nothing is mounted at or below `dir`.
#[track_caller]
pub fn assert_no_mounts(dir: &Path) {
    let left = mounts_under(dir);
    assert!(
        left.is_empty(),
        "mounts left behind under {}: {left:?}",
        dir.display()
    );
}

/// Assert no process has its root in `rootfs` or lives in cgroup `cg`.
#[track_caller]
pub fn assert_no_processes(rootfs: &Path, cg: Option<&str>) {
    let mut left = Vec::new();
    wait_for(Duration::from_secs(3), || {
        left = leftover_processes(rootfs, cg);
        left.is_empty()
    });
    let desc: Vec<String> = left
        .iter()
        .map(|p| {
            let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect();
    assert!(left.is_empty(), "processes left behind: {desc:?}");
}

/// Assert that container `id` of `bundle` left nothing behind: no state dir,
/// no cgroup, no mount under the bundle, no process in the rootfs/cgroup.
#[track_caller]
pub fn assert_nothing_left(rt: &Runtime, id: &str, bundle: &Bundle) {
    assert_no_state(rt, id);
    if let Some(cg) = bundle.cgroups_path() {
        assert_no_cgroup(&cg);
    }
    assert_no_mounts(bundle.path());
    assert_no_processes(&bundle.rootfs(), bundle.cgroups_path().as_deref());
}

// ---------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------

/// Result of one invocation of the runtime.
#[derive(Debug)]
pub struct Out {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Files that received stdout/stderr; containers started by `create` or
    /// `run -d` keep writing to them.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub elapsed: Duration,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\nstdout: {}\nstderr: {}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }

    /// Panic unless the command exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "command failed\n{}", self.describe());
        self
    }

    /// Panic unless the command exited non-zero (not by a signal) with a
    /// one-line message on stderr.
    #[track_caller]
    pub fn assert_err(&self) -> &Self {
        assert!(
            matches!(self.code(), Some(c) if c != 0),
            "command should have failed with a non-zero exit code\n{}",
            self.describe()
        );
        let msg = self.stderr.trim();
        assert!(
            !msg.is_empty(),
            "no error message on stderr\n{}",
            self.describe()
        );
        assert_eq!(
            msg.lines().count(),
            1,
            "error message should be one line\n{}",
            self.describe()
        );
        self
    }

    /// Panic unless the command exited non-zero (message not checked).
    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            !self.success(),
            "command should have failed\n{}",
            self.describe()
        );
        self
    }

    /// Current content of the stdout file (a container may have written
    /// more since the command returned).
    pub fn read_stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn read_stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// A runtime invocation running in the background (e.g. a foreground `run`).
pub struct Spawned {
    child: Option<Child>,
    cmdline: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    start: Instant,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The file receiving its stdout (read it while it runs).
    pub fn stdout_path(&self) -> PathBuf {
        self.stdout_path.clone()
    }

    /// The file receiving its stderr.
    pub fn stderr_path(&self) -> PathBuf {
        self.stderr_path.clone()
    }

    /// Wait for exit; panics (after killing it) on timeout.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Out {
        match self.wait_inner(timeout) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    fn wait_inner(&mut self, timeout: Duration) -> Result<Out, String> {
        let mut child = self.child.take().unwrap();
        let mut status = None;
        wait_for(timeout, || match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                true
            }
            _ => false,
        });
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timeout after {timeout:?}: {}\nstdout: {}\nstderr: {}",
                self.cmdline,
                fs::read_to_string(&self.stdout_path).unwrap_or_default(),
                fs::read_to_string(&self.stderr_path).unwrap_or_default()
            ));
        };
        Ok(Out {
            cmdline: self.cmdline.clone(),
            status,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stdout_path: self.stdout_path.clone(),
            stderr_path: self.stderr_path.clone(),
            elapsed: self.start.elapsed(),
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The runtime binary with a private `--root` (state directory).
pub struct Runtime {
    bin: PathBuf,
    base: PathBuf,
    root: PathBuf,
    ids: Mutex<Vec<String>>,
    /// Extra environment for every invocation.
    pub env: Vec<(String, String)>,
}

impl Runtime {
    /// Panics if the binary does not exist.
    pub fn new() -> Runtime {
        let bin = rt_bin();
        assert!(
            bin.exists(),
            "runtime binary {} not found (build it, or set RT_BIN)",
            bin.display()
        );
        let base = tempfile::Builder::new()
            .prefix(&format!("rt-root-{}-", std::process::id()))
            .tempdir()
            .expect("temp dir")
            .keep();
        let base = fs::canonicalize(base).unwrap();
        let root = base.join("state");
        fs::create_dir(&root).unwrap();
        fs::create_dir(base.join("io")).unwrap();
        Runtime {
            bin,
            base,
            root,
            ids: Mutex::new(Vec::new()),
            env: Vec::new(),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn root_str(&self) -> &str {
        self.root.to_str().unwrap()
    }

    /// A scratch dir private to this runtime (removed on drop).
    pub fn scratch(&self) -> &Path {
        &self.base
    }

    /// A container id unique to this test, registered for cleanup.
    pub fn id(&self, name: &str) -> String {
        let id = format!("rt{}-{}-{name}", std::process::id(), next_n());
        self.track(&id);
        id
    }

    /// Register an id for `delete --force` on drop.
    pub fn track(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }

    /// The binary as a `Command` without `--root` (for CLI tests).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Start `bin args...` (no `--root` added) with stdout/stderr redirected
    /// to fresh files and stdin from /dev/null.
    pub fn spawn_raw<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Spawned {
        self.spawn_raw_with(args, Stdio::null())
    }

    pub fn spawn_raw_with<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], stdin: Stdio) -> Spawned {
        let mut c = self.command();
        c.args(args).stdin(stdin);
        self.spawn_command(c)
    }

    /// Start any prepared `Command` (e.g. with `pre_exec` or another
    /// program in front of the runtime) with stdout/stderr redirected to
    /// fresh files. Stdin is left as set on `c`.
    pub fn spawn_command(&self, mut c: Command) -> Spawned {
        let n = next_n();
        let stdout_path = self.base.join(format!("io/{n}.out"));
        let stderr_path = self.base.join(format!("io/{n}.err"));
        let out = fs::File::create(&stdout_path).unwrap();
        let err = fs::File::create(&stderr_path).unwrap();
        c.stdout(out).stderr(err);
        let cmdline = format!(
            "{} {}",
            c.get_program().to_string_lossy(),
            c.get_args()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        Spawned {
            child: Some(child),
            cmdline,
            stdout_path,
            stderr_path,
            start: Instant::now(),
        }
    }

    /// Run `bin args...` without adding `--root`.
    #[track_caller]
    pub fn exec_raw<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        self.spawn_raw(args).wait(CMD_TIMEOUT)
    }

    fn with_root<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec!["--root".into(), self.root.clone().into()];
        v.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        v
    }

    /// Start `bin --root R args...` in the background.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Spawned {
        self.spawn_raw(&self.with_root(args))
    }

    /// Start `bin --root R args...` with the given fds of ours as its fds
    /// 3, 4, ... (see [`pass_fds`]).
    pub fn spawn_with_fds<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        fds: &[std::os::fd::RawFd],
    ) -> Spawned {
        let mut c = self.command();
        c.args(self.with_root(args)).stdin(Stdio::null());
        pass_fds(&mut c, fds);
        self.spawn_command(c)
    }

    /// Run `bin --root R args...` and wait (60s timeout).
    #[track_caller]
    pub fn exec<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        self.spawn(args).wait(CMD_TIMEOUT)
    }

    /// `create --bundle B [extra...] ID` (config saved first).
    #[track_caller]
    pub fn create(&self, id: &str, bundle: &Bundle) -> Out {
        self.create_with(id, bundle, &[])
    }

    #[track_caller]
    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Out {
        bundle.save();
        let mut a = vec!["create", "--bundle", bundle.path_str()];
        a.extend_from_slice(extra);
        a.push(id);
        self.exec(&a)
    }

    /// `run --bundle B [extra...] ID` in the foreground (config saved first).
    #[track_caller]
    pub fn run(&self, id: &str, bundle: &Bundle) -> Out {
        self.run_with(id, bundle, &[])
    }

    #[track_caller]
    pub fn run_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Out {
        self.spawn_run(id, bundle, extra).wait(CMD_TIMEOUT)
    }

    /// `run -d --bundle B [extra...] ID` (config saved first).
    #[track_caller]
    pub fn run_detached(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Out {
        bundle.save();
        let mut a = vec!["run", "-d", "--bundle", bundle.path_str()];
        a.extend_from_slice(extra);
        a.push(id);
        self.exec(&a)
    }

    /// Start a foreground `run` in the background.
    pub fn spawn_run(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Spawned {
        bundle.save();
        let mut a = vec!["run", "--bundle", bundle.path_str()];
        a.extend_from_slice(extra);
        a.push(id);
        self.spawn(&a)
    }

    #[track_caller]
    pub fn start(&self, id: &str) -> Out {
        self.exec(&["start", id])
    }

    #[track_caller]
    pub fn kill(&self, id: &str, sig: &str) -> Out {
        self.exec(&["kill", id, sig])
    }

    #[track_caller]
    pub fn delete(&self, id: &str) -> Out {
        self.exec(&["delete", id])
    }

    #[track_caller]
    pub fn delete_force(&self, id: &str) -> Out {
        self.exec(&["delete", "--force", id])
    }

    /// `state ID` parsed; `Err(out)` if the command failed.
    #[track_caller]
    pub fn try_state(&self, id: &str) -> Result<Value, Box<Out>> {
        let o = self.exec(&["state", id]);
        if !o.success() {
            return Err(Box::new(o));
        }
        match serde_json::from_str(&o.stdout) {
            Ok(v) => Ok(v),
            Err(e) => panic!("state output is not JSON ({e})\n{}", o.describe()),
        }
    }

    /// `state ID` parsed; panics if it fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        match self.try_state(id) {
            Ok(v) => v,
            Err(o) => panic!("state failed\n{}", o.describe()),
        }
    }

    /// `status` of the state, panics if `state` fails.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// `pid` of the state.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i64 {
        self.state(id)["pid"].as_i64().unwrap_or(0)
    }

    /// Poll `state` until status is `want`; panics on timeout.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = String::new();
        let ok = wait_for(POLL_TIMEOUT, || {
            last = match self.try_state(id) {
                Ok(v) => v["status"].as_str().unwrap_or("").to_string(),
                Err(o) => format!("<state failed: {}>", o.stderr.trim()),
            };
            last == want
        });
        assert!(
            ok,
            "container {id} did not reach status {want:?} (last: {last})"
        );
    }

    /// `create` + `start` (both must succeed).
    #[track_caller]
    pub fn create_start(&self, id: &str, bundle: &Bundle) -> Out {
        let o = self.create(id, bundle);
        o.assert_ok();
        self.start(id).assert_ok();
        o
    }

    fn cleanup_now(&self) {
        let mut ids: Vec<String> = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        if let Ok(mut s) = self
            .spawn(&["list", "-q"])
            .wait_inner(Duration::from_secs(20))
        {
            s.stdout = fs::read_to_string(&s.stdout_path).unwrap_or_default();
            ids.extend(s.stdout.lines().map(str::to_string));
        }
        ids.sort();
        ids.dedup();
        for id in ids {
            if self.root.join(&id).exists() || !id.contains('/') {
                let _ = self
                    .spawn(&["delete", "--force", id.as_str()])
                    .wait_inner(Duration::from_secs(20));
            }
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.cleanup_now();
    }
}

// ---------------------------------------------------------------------------
// Misc helpers for tests
// ---------------------------------------------------------------------------

/// A process holding new namespaces (`unshare --net ... sleep`), killed on
/// drop; join them with `/proc/PID/ns/TYPE`.
pub struct NsHolder {
    child: Child,
}

impl NsHolder {
    /// `flags` as for unshare(1), e.g. `&["--net"]`. Waits until the
    /// namespace (first flag) differs from ours.
    pub fn new(flags: &[&str], ns: &str) -> NsHolder {
        let child = Command::new("unshare")
            .args(flags)
            .args(["sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let h = NsHolder { child };
        let mine = ns_id(format!("/proc/self/ns/{ns}"));
        let p = h.ns_path(ns);
        let ok = wait_for(POLL_TIMEOUT, || {
            fs::read_link(&p).is_ok_and(|l| l.to_string_lossy() != mine)
        });
        assert!(ok, "unshare {flags:?} did not create a new {ns} namespace");
        h
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ns_path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.child.id())
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make the fds `fds` (of this process) the fds 3, 4, ... of the process
/// `c` starts; every other fd of ours stays close-on-exec.
pub fn pass_fds(c: &mut Command, fds: &[std::os::fd::RawFd]) {
    use std::os::unix::process::CommandExt;
    assert!(fds.len() <= 16, "pass_fds: too many fds");
    let mut src = [-1i32; 16];
    src[..fds.len()].copy_from_slice(fds);
    let n = fds.len();
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close), no
    // allocation.
    unsafe {
        c.pre_exec(move || {
            // First move the sources out of the way (one may sit on 3..),
            // then dup2 them into place (dup2 clears FD_CLOEXEC).
            let mut high = [-1i32; 16];
            for i in 0..n {
                high[i] = libc::fcntl(src[i], libc::F_DUPFD_CLOEXEC, 100);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, h) in high.iter().take(n).enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(*h);
            }
            Ok(())
        });
    }
}

/// Host directory of the cgroup `path` (a cgroupsPath; absolute from the
/// hierarchy's root, relative from our own cgroup) that holds the files of
/// `controller`: on a cgroup v2 host the unified dir, else the dir in the
/// v1 hierarchy of that controller.
pub fn cgroup_dir(path: &str, controller: &str) -> PathBuf {
    let own = own_cgroups();
    let v2 = cgroup_v2();
    let (mp, key) = cgroup_mounts()
        .into_iter()
        .find(|(_, key)| {
            if v2 {
                key.is_empty()
            } else {
                key.split(',').any(|c| c == controller)
            }
        })
        .unwrap_or_else(|| panic!("no cgroup hierarchy with controller {controller}"));
    if path.starts_with('/') {
        mp.join(path.trim_start_matches('/'))
    } else {
        let base = own
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, b)| relative_base(b))
            .unwrap_or_default();
        mp.join(base.trim_start_matches('/')).join(path)
    }
}

/// Content (trimmed) of file `file` of `controller` in cgroup `path` (see
/// [`cgroup_dir`]); panics if it cannot be read.
#[track_caller]
pub fn cgroup_read(path: &str, controller: &str, file: &str) -> String {
    let p = cgroup_dir(path, controller).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Is the cgroup `path` frozen (v1 freezer.state FROZEN, v2 cgroup.events
/// `frozen 1`)?
pub fn cgroup_frozen(path: &str) -> bool {
    if cgroup_v2() {
        let ev = read(cgroup_dir(path, "freezer").join("cgroup.events"));
        ev.lines().any(|l| l.trim() == "frozen 1")
    } else {
        read(cgroup_dir(path, "freezer").join("freezer.state")).trim() == "FROZEN"
    }
}

/// Read a whole file as a string ("" if missing).
pub fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// Parse `KEY=VALUE` lines.
pub fn kv_lines(s: &str) -> std::collections::BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Read everything from a raw fd until EOF/EIO.
pub fn read_fd_to_end(fd: i32, timeout: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let start = Instant::now();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r < 0 {
            break;
        }
        if r > 0 {
            let mut buf = [0u8; 4096];
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        if start.elapsed() > timeout {
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Console socket
// ---------------------------------------------------------------------------

/// A unix socket listening for the pty master sent by the runtime with
/// `--console-socket` (SCM_RIGHTS).
pub struct ConsoleSocket {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: impl AsRef<Path>) -> ConsoleSocket {
        let path = path.as_ref().to_path_buf();
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket { listener, path }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Accept one connection and receive one fd. Returns the fd and the
    /// bytes of the message that carried it.
    pub fn recv_master(&self, timeout: Duration) -> Option<(std::os::fd::OwnedFd, Vec<u8>)> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let mut stream = None;
        wait_for(timeout, || match self.listener.accept() {
            Ok((s, _)) => {
                stream = Some(s);
                true
            }
            Err(_) => false,
        });
        let stream = stream?;
        stream.set_nonblocking(false).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = [0u8; 4096];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
        let mut cbuf = vec![0u64; space.div_ceil(8) + 1];
        // SAFETY: all-zero msghdr is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg points to valid buffers that outlive the call.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            return None;
        }
        // SAFETY: walking the control messages recvmsg filled in.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                    return Some((
                        std::os::fd::OwnedFd::from_raw_fd(fd),
                        buf[..n as usize].to_vec(),
                    ));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        None
    }
}

/// Is `fd` the master side of a pseudo terminal (TIOCGPTN works)?
pub fn is_pty_master(fd: i32) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) == 0 }
}

/// Write all of `data` to a raw fd.
pub fn write_fd(fd: i32, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: the slice is valid.
        let n = unsafe { libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) };
        assert!(n > 0, "write to fd {fd} failed");
        off += n as usize;
    }
}

// ---------------------------------------------------------------------------
// Unprivileged user
// ---------------------------------------------------------------------------

/// An unprivileged user (`rttest`, made with useradd if missing), a private
/// directory of its own (state dir, outputs), and how to run rt as it
/// (`runuser`).
pub struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    /// Owned by the user, removed on drop.
    pub dir: PathBuf,
}

impl User {
    pub fn get() -> User {
        let name = "rttest";
        if Command::new("id")
            .arg(name)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            let ok = Command::new("useradd")
                .args(["-m", "-u", "1501", name])
                .status()
                .expect("useradd");
            assert!(ok.success(), "useradd {name}");
        }
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let dir = tempfile::Builder::new()
            .prefix("rt-user-")
            .tempdir()
            .unwrap()
            .keep();
        let (uid, gid) = (id("-u"), id("-g"));
        chown_r(&dir, uid, gid);
        User {
            name,
            uid,
            gid,
            dir,
        }
    }

    /// A rootless version of `b` (a user namespace mapping root to the user),
    /// handed over to the user.
    pub fn own(&self, b: &mut Bundle) {
        // The rootfs's busybox is a hard link of the host's: chown -R would
        // hand the host's /bin/busybox to the user. Give the bundle a copy.
        let bb = b.rootfs().join("bin/busybox");
        if fs::metadata(&bb).is_ok_and(|m| m.nlink() > 1) {
            fs::remove_file(&bb).unwrap();
            fs::copy(host_busybox(), &bb).unwrap();
            fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).unwrap();
        }
        b.add_namespace("user")
            .uid_mappings(0, self.uid, 1)
            .gid_mappings(0, self.gid, 1)
            .set("/process/user", json!({"uid": 0, "gid": 0}));
        b.save();
        chown_r(b.path(), self.uid, self.gid);
    }

    /// `rt --root <dir>/state args...` as the user, with `env` added.
    pub fn rt(&self, env: &[(&str, String)], args: &[&str]) -> std::process::Output {
        let root = self.dir.join("state");
        let mut a = vec!["--root", root.to_str().unwrap()];
        a.extend_from_slice(args);
        self.rt_raw(env, &a)
    }

    /// `rt args...` as the user (no `--root` added), with `env` added.
    pub fn rt_raw(&self, env: &[(&str, String)], args: &[&str]) -> std::process::Output {
        self.run(env, rt_bin().to_str().unwrap(), args)
    }

    /// Any program as the user.
    pub fn run(&self, env: &[(&str, String)], prog: &str, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("runuser");
        c.args(["-u", self.name, "--", "env"]);
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        c.arg(prog).args(args);
        c.stdin(Stdio::null());
        // Output to files: a detached container keeps them open.
        let out = self.dir.join(format!("out-{}", next_n()));
        let err = self.dir.join(format!("err-{}", next_n()));
        c.stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let status = c.status().expect("runuser");
        std::process::Output {
            status,
            stdout: fs::read(out).unwrap_or_default(),
            stderr: fs::read(err).unwrap_or_default(),
        }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `chown -R uid:gid p`.
pub fn chown_r(p: &Path, uid: u32, gid: u32) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(ok.success());
}
