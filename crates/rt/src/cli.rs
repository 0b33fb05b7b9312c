//! The command line, flag for flag as runc's (callers send both `--flag value` and
//! `--flag=value`; clap takes both).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rt",
    version = VERSION,
    disable_version_flag = true,
    about = "An OCI container runtime, drop-in compatible with runc"
)]
pub struct Cli {
    /// Print the version
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `rt --version`, in runc's layout (callers parse the `spec:` line).
const VERSION: &str = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.1");

#[derive(Debug, Args)]
pub struct Global {
    /// Directory for container state (default /run/rt; $XDG_RUNTIME_DIR/rt without root)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Write log messages to this file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Let systemd own container cgroups (cgroupsPath as slice:prefix:name)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Accepted for runc compatibility (true|false|auto); rootless mode is detected
    #[arg(long = "rootless", id = "global_rootless", hide = true)]
    pub rootless: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`
    Create(CreateArgs),
    /// Run the user process of a created container
    Start { id: String },
    /// Create and start a container, and wait for it unless detached
    Run(RunArgs),
    /// Print the state of a container as JSON
    State { id: String },
    /// Send a signal to the container's init (or all its processes)
    Kill {
        /// Send the signal to every process of the container
        #[arg(short, long)]
        all: bool,
        id: String,
        /// Signal name or number
        #[arg(default_value = "SIGTERM", allow_negative_numbers = true)]
        signal: String,
    },
    /// Delete a container and everything it holds
    Delete {
        /// Kill the container first if it is still running
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print only the IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        /// Directory to write config.json into
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for a user namespace, for running without root
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features this runtime supports, as JSON
    Features,
    /// Run a process in a running container
    Exec(Box<ExecArgs>),
    /// List the processes of a container
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        id: String,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change a running container's resource limits
    Update(Box<UpdateArgs>),
    /// Print the container's resource usage (and OOM events) as JSON lines
    Events {
        /// Print the statistics once and exit
        #[arg(long)]
        stats: bool,
        /// How often to print statistics
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A file with the resources (linux.resources of config.json), or - for stdin
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpu_idle: Option<i64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k, m, g suffix; -1 for none)
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Ignored, as by the kernel since 5.x
    #[arg(long, hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT (not supported)
    #[arg(long, hide = true)]
    pub l3_cache_schema: Option<String>,
    #[arg(long, hide = true)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Unix socket to receive the pty master
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long, value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// process.json describing the process (instead of the arguments)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// SELinux label of the process
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile of the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Pass this many descriptors after stdio into the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility: exec into a sub-cgroup (not supported)
    #[arg(long, hide = true)]
    pub cgroup: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long, hide = true)]
    pub ignore_paused: bool,
    /// Container ID
    pub id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to receive the pty master of a terminal container
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on a ramdisk)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many descriptors after stdio (3, 4...) into the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container ID
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Start the container and return without waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}
