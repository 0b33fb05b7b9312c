//! Each subcommand: turn arguments into a call to the runtime library and print.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};
use rt_runtime::lifecycle::{
    self, ContainerState, CreateOptions, ExecFlags, ExecOptions, ExecProcess, RunOptions,
};
use rt_runtime::Store;

use crate::cli::{Cli, Command, CreateArgs, ExecArgs, ListFormat, UpdateArgs};

pub fn dispatch(cli: Cli) -> Result<i32> {
    let store = Store::new(state_root(cli.global.root.clone()));
    match cli.command {
        Command::Create(a) => {
            lifecycle::create(&store, &create_options(a, cli.global.systemd_cgroup))?;
        }
        Command::Start { id } => lifecycle::start(&store, &id)?,
        Command::Run(a) => {
            let opts = RunOptions {
                create: create_options(a.create, cli.global.systemd_cgroup),
                detach: a.detach,
                keep: a.keep,
            };
            return Ok(lifecycle::run(&store, &opts)?);
        }
        Command::State { id } => {
            let s = lifecycle::state(&store, &id)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        Command::Kill { all, id, signal } => lifecycle::kill(&store, &id, &signal, all)?,
        Command::Delete { force, id } => lifecycle::delete(&store, &id, force)?,
        Command::List { format, quiet } => list(&store, format, quiet)?,
        Command::Spec { bundle, rootless } => spec(&bundle, rootless)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&features())?),
        Command::Exec(a) => return Ok(lifecycle::exec(&store, &exec_options(*a))?),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&store, &id, format, &ps_args)?,
        Command::Pause { id } => lifecycle::pause(&store, &id)?,
        Command::Resume { id } => lifecycle::resume(&store, &id)?,
        Command::Update(a) => {
            let r = update_resources(&a)?;
            lifecycle::update(&store, &a.id, &r)?
        }
        Command::Events {
            stats,
            interval,
            id,
        } => {
            let every = humantime::parse_duration(&interval)
                .with_context(|| format!("invalid --interval {interval:?}"))?;
            if every.is_zero() {
                anyhow::bail!("--interval must be more than 0");
            }
            lifecycle::events(&store, &id, every, stats, &mut std::io::stdout().lock())?
        }
    }
    Ok(0)
}

fn create_options(a: CreateArgs, systemd_cgroup: bool) -> CreateOptions {
    CreateOptions {
        systemd_cgroup,
        id: a.id,
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    }
}

fn list(store: &Store, format: ListFormat, quiet: bool) -> Result<()> {
    let all = lifecycle::list(store)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for c in &all {
            writeln!(out, "{}", c.id)?;
        }
        return Ok(());
    }
    match format {
        // runc prints `null` for no containers; callers parse either.
        ListFormat::Json if all.is_empty() => writeln!(out, "null")?,
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string(&all)?)?,
        ListFormat::Table => write!(out, "{}", table(&all))?,
    }
    Ok(())
}

/// Columns as runc's tabwriter lays them out (minimum width 12, padding 3).
fn table(all: &[ContainerState]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for c in all {
        rows.push(vec![
            c.id.clone(),
            c.pid.to_string(),
            c.status.clone(),
            c.bundle.clone(),
            c.created.clone(),
            c.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i == 5 {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        s.push('\n');
    }
    s
}

fn spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join(rt_spec::CONFIG_FILE);
    let spec = if rootless {
        rt_spec::rootless_spec(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        rt_spec::default_spec(false)
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!("File {} exists. Remove it first", path.display())
            } else {
                anyhow::Error::new(e).context(format!("create {}", path.display()))
            }
        })?;
    f.write_all(rt_spec::to_json(&spec).as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

fn features() -> serde_json::Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": rt_runtime::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
            "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime",
            "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
            "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
            "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
            "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable", "idmap", "ridmap"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false},
            "seccomp": rt_runtime::seccomp::features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.opencontainers.runtime.name": "rt",
            "org.opencontainers.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

fn exec_options(a: ExecArgs) -> ExecOptions {
    let process = match a.process {
        Some(p) => ExecProcess::File(p),
        None => ExecProcess::Args(ExecFlags {
            args: a.command,
            cwd: a.cwd,
            env: a.env,
            user: a.user,
            additional_gids: a.additional_gids,
            caps: a.cap,
            no_new_privs: a.no_new_privs,
            tty: a.tty,
            process_label: a.process_label,
            apparmor: a.apparmor,
        }),
    };
    ExecOptions {
        id: a.id,
        process,
        detach: a.detach,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        preserve_fds: a.preserve_fds,
    }
}

/// `ps`: the container's pids as JSON, or ps(1)'s table cut to the container's lines.
fn ps(store: &Store, id: &str, format: ListFormat, args: &[String]) -> Result<()> {
    let pids = lifecycle::pids(store, id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<&str> = if args.is_empty() {
        vec!["-ef"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

/// The resources `update` asked for: from `--resources`, then the flags on top.
fn update_resources(a: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxPids, LinuxResources};
    let mut r: LinuxResources = match &a.resources {
        Some(p) if p.as_os_str() == "-" => serde_json::from_reader(std::io::stdin().lock())
            .context("parse resources from stdin")?,
        Some(p) => {
            let data = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
            serde_json::from_slice(&data).with_context(|| format!("parse {}", p.display()))?
        }
        None => LinuxResources::default(),
    };
    let size = |s: &Option<String>| -> Result<Option<i64>> {
        s.as_deref()
            .map(lifecycle::parse_bytes)
            .transpose()
            .map_err(Into::into)
    };
    let (limit, reservation, swap) = (
        size(&a.memory)?,
        size(&a.memory_reservation)?,
        size(&a.memory_swap)?,
    );
    if let Some(m) = lifecycle::memory(limit, reservation, swap) {
        let mut merged = (*r.memory()).unwrap_or_default();
        if m.limit().is_some() {
            merged.set_limit(m.limit());
        }
        if m.reservation().is_some() {
            merged.set_reservation(m.reservation());
        }
        if m.swap().is_some() {
            merged.set_swap(m.swap());
        }
        r.set_memory(Some(merged));
    }
    let cpu_flags = a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_share.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpu_idle.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if cpu_flags {
        let mut c: LinuxCpu = r.cpu().clone().unwrap_or_default();
        if a.cpu_period.is_some() {
            c.set_period(a.cpu_period);
        }
        if a.cpu_quota.is_some() {
            c.set_quota(a.cpu_quota);
        }
        if a.cpu_share.is_some() {
            c.set_shares(a.cpu_share);
        }
        if a.cpu_rt_period.is_some() {
            c.set_realtime_period(a.cpu_rt_period);
        }
        if a.cpu_rt_runtime.is_some() {
            c.set_realtime_runtime(a.cpu_rt_runtime);
        }
        if a.cpu_idle.is_some() {
            c.set_idle(a.cpu_idle);
        }
        if a.cpuset_cpus.is_some() {
            c.set_cpus(a.cpuset_cpus.clone());
        }
        if a.cpuset_mems.is_some() {
            c.set_mems(a.cpuset_mems.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(n) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(n);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        anyhow::bail!("Intel RDT is not supported");
    }
    Ok(r)
}

/// `--root`, or the default: `/run/rt` for root, the user's runtime directory (as
/// rootless runc) otherwise.
fn state_root(given: Option<std::path::PathBuf>) -> std::path::PathBuf {
    if let Some(r) = given {
        return r;
    }
    if nix::unistd::geteuid().is_root() {
        return "/run/rt".into();
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::Path::new(&d).join("rt"),
        None => format!("/tmp/rt-{}", nix::unistd::geteuid()).into(),
    }
}
