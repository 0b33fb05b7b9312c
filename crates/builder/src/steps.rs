//! What each instruction does to the image of its stage. Config
//! instructions change the config only; RUN, COPY, ADD and WORKDIR mount a
//! [`Workspace`] over the image, change its files, and commit the upper
//! directory as a layer (none when nothing changed).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use nix::unistd::UnlinkatFlags;
use serde_json::{json, Map, Value};

use crate::build::{duration_ns, set, Builder, PROXY_ARGS};
use crate::context::{clean_rel, expand_glob, join, kind, open_parent, stat_at};
use crate::copy::{copy_children, copy_entry, mkdir_p, write_file, CopyOptions, Pick};
use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Command, Copy, Instruction, Run, Step};
use crate::error::{Context as _, Error, Result};
use crate::image::ImageState;
use crate::mounts::{self, MountSpec};
use crate::run::{container_config, RunSpec};
use crate::workspace::Workspace;

pub(crate) struct StageState {
    pub state: ImageState,
    pub idx: usize,
    /// ARGs declared in this stage and their values (`None`: declared, unset).
    pub args: BTreeMap<String, Option<String>>,
    /// Whether this stage set CMD (an ENTRYPOINT clears an inherited one).
    pub cmd_set: bool,
}

impl StageState {
    pub fn new(state: ImageState, idx: usize) -> StageState {
        StageState {
            state,
            idx,
            args: BTreeMap::new(),
            cmd_set: false,
        }
    }

    /// ENV wins over ARG of the same name, as in Docker.
    fn lookup(&self, name: &str) -> Option<String> {
        self.state
            .env()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    fn shell(&self) -> Vec<String> {
        let s = self.state.strings("Shell");
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    fn workdir(&self) -> String {
        self.state
            .string("WorkingDir")
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// Build args a RUN sees in its environment (not in the image).
    fn arg_env(&self, b: &Builder<'_>) -> Vec<String> {
        let env: Vec<String> = self.state.env().into_iter().map(|(k, _)| k).collect();
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &self.args {
            if let Some(v) = v {
                out.insert(k.clone(), v.clone());
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = b.build_arg(p) {
                out.entry(p.to_owned()).or_insert(v);
            }
        }
        out.into_iter()
            .filter(|(k, _)| !env.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

fn argv(c: &Command, shell: &[String]) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
    }
}

/// `dir` joined to `path` unless absolute, with `.`, `..` and repeated
/// slashes resolved (never above `/`).
pub fn resolve_path(dir: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", dir.trim_end_matches('/'))
    };
    let mut out: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn comps(abs: &str) -> Vec<Vec<u8>> {
    abs.split('/')
        .filter(|c| !c.is_empty())
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

pub(crate) fn execute(b: &mut Builder<'_>, st: &mut StageState, step: &Step) -> Result<()> {
    let line = step.line;
    let vars = |n: &str| st.lookup(n);
    let ex = Expander {
        escape: b.df.escape,
        vars: &vars,
    };
    let word = |raw: &str| ex.word(raw).map_err(|e| b.err(line, e));
    match &step.instruction {
        Instruction::From { .. } => Err(b.err(line, "FROM inside a stage")),
        Instruction::Arg(list) => {
            let t0 = std::time::Instant::now();
            let mut values = Vec::new();
            for (k, default) in list {
                let v = match b.build_arg(k) {
                    Some(v) => Some(v),
                    None => match default {
                        Some(d) => Some(word(d)?),
                        None => b.global.get(k).cloned().flatten(),
                    },
                };
                values.push((k.clone(), v));
            }
            for (k, v) in values {
                if b.build_arg(&k).is_some() {
                    b.used_args.insert(k.clone());
                }
                st.args.insert(k, v);
            }
            b.progress.done(&st.state.id().to_string(), t0.elapsed());
            Ok(())
        }
        Instruction::Env(pairs) => {
            let mut set_to = Vec::new();
            for (k, v) in pairs {
                set_to.push((word(k)?, word(v)?));
            }
            let shown = format!(
                "ENV {}",
                set_to
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            b.config_step(st, &shown, move |s| {
                for (k, v) in &set_to {
                    s.set_env(k, v);
                }
            })
        }
        Instruction::Label(pairs) => {
            let mut labels = Vec::new();
            for (k, v) in pairs {
                labels.push((word(k)?, word(v)?));
            }
            let shown = format!(
                "LABEL {}",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            b.config_step(st, &shown, move |s| {
                merge(s, "Labels", labels.into_iter().map(|(k, v)| (k, json!(v))));
            })
        }
        Instruction::Expose(ports) => {
            let mut list = Vec::new();
            for p in ports {
                for w in ex.words(p).map_err(|e| b.err(line, e))? {
                    let w = if w.contains('/') {
                        w.to_ascii_lowercase()
                    } else {
                        format!("{w}/tcp")
                    };
                    let (num, proto) = w.split_once('/').expect("has a /");
                    let ok = num.split('-').all(|n| n.parse::<u16>().is_ok())
                        && matches!(proto, "tcp" | "udp" | "sctp");
                    if !ok {
                        return Err(b.err(line, format!("EXPOSE {w}: not PORT[/tcp|udp|sctp]")));
                    }
                    list.push(w);
                }
            }
            let shown = format!("EXPOSE {}", list.join(" "));
            b.config_step(st, &shown, move |s| {
                merge(s, "ExposedPorts", list.into_iter().map(|p| (p, json!({}))));
            })
        }
        Instruction::Volume(vols) => {
            let mut list = Vec::new();
            for v in vols {
                list.push(word(v)?);
            }
            let shown = format!("VOLUME {list:?}");
            b.config_step(st, &shown, move |s| {
                merge(s, "Volumes", list.into_iter().map(|p| (p, json!({}))));
            })
        }
        Instruction::User(u) => {
            let u = word(u)?;
            b.config_step(st, &format!("USER {u}"), move |s| set(s, "User", json!(u)))
        }
        Instruction::StopSignal(sig) => {
            let sig = word(sig)?;
            b.config_step(st, &format!("STOPSIGNAL {sig}"), move |s| {
                set(s, "StopSignal", json!(sig))
            })
        }
        Instruction::Maintainer(m) => {
            let m = m.clone();
            b.config_step(st, &format!("MAINTAINER {m}"), move |s| {
                s.config["author"] = json!(m);
            })
        }
        Instruction::Cmd(c) => {
            let a = argv(c, &st.shell());
            st.cmd_set = true;
            b.config_step(st, &format!("CMD {a:?}"), move |s| set(s, "Cmd", json!(a)))
        }
        Instruction::Entrypoint(c) => {
            let a = argv(c, &st.shell());
            let keep_cmd = st.cmd_set;
            b.config_step(st, &format!("ENTRYPOINT {a:?}"), move |s| {
                set(s, "Entrypoint", json!(a));
                if !keep_cmd {
                    s.run_config().remove("Cmd");
                }
            })
        }
        Instruction::Shell(v) => {
            let v = v.clone();
            b.config_step(st, &format!("SHELL {v:?}"), move |s| {
                set(s, "Shell", json!(v))
            })
        }
        Instruction::Healthcheck(h) => {
            let mut o = Map::new();
            match &h.cmd {
                None => {
                    o.insert("Test".into(), json!(["NONE"]));
                }
                Some(Command::Exec(v)) => {
                    let t: Vec<String> = ["CMD".to_owned()].into_iter().chain(v.clone()).collect();
                    o.insert("Test".into(), json!(t));
                }
                Some(Command::Shell(s)) => {
                    o.insert("Test".into(), json!(["CMD-SHELL", s]));
                }
            }
            for (k, v) in [
                ("Interval", &h.interval),
                ("Timeout", &h.timeout),
                ("StartPeriod", &h.start_period),
                ("StartInterval", &h.start_interval),
            ] {
                if let Some(v) = v {
                    let ns =
                        duration_ns(v).map_err(|e| b.err(line, format!("HEALTHCHECK: {e}")))?;
                    o.insert(k.into(), json!(ns));
                }
            }
            if let Some(r) = &h.retries {
                let n: u64 = r
                    .parse()
                    .map_err(|_| b.err(line, format!("HEALTHCHECK --retries={r}: not a number")))?;
                o.insert("Retries".into(), json!(n));
            }
            let v = Value::Object(o);
            b.config_step(st, &format!("HEALTHCHECK {v}"), move |s| {
                set(s, "Healthcheck", v)
            })
        }
        Instruction::Onbuild(t) => {
            let t = t.clone();
            b.config_step(st, &format!("ONBUILD {t}"), move |s| {
                let mut l = s.strings("OnBuild");
                l.push(t);
                set(s, "OnBuild", json!(l));
            })
        }
        Instruction::Workdir(w) => {
            let w = resolve_path(&st.workdir(), &word(w)?);
            let shown = format!("WORKDIR {w}");
            b.cached(st, &format!("workdir\n{w}"), |b, st| {
                let mut s = st.state.clone();
                set(&mut s, "WorkingDir", json!(w));
                let ws = Workspace::mount(&b.store, &s)?;
                let root = ws.root_fd()?;
                // As buildah: what WORKDIR creates belongs to the USER.
                let owner = match s.string("User").filter(|u| !u.is_empty()) {
                    Some(u) => {
                        let r = rt_image::config::resolve_user(&u, root.as_fd())?;
                        (r.uid, r.gid)
                    }
                    None => (0, 0),
                };
                mkdir_p(root.as_fd(), &comps(&w), owner)?;
                drop(root);
                b.finish_fs_step(s, ws, &format!("/bin/sh -c #(nop) {shown}"))
            })
        }
        Instruction::Run(r) => run(b, st, step, r),
        Instruction::Copy(c) => copy(b, st, step, c),
    }
}

fn merge(s: &mut ImageState, key: &str, items: impl Iterator<Item = (String, Value)>) {
    let c = s.run_config();
    let m = c.entry(key).or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    let m = m.as_object_mut().expect("an object");
    for (k, v) in items {
        m.insert(k, v);
    }
}

/// The heredoc-aware command of a RUN: `RUN <<EOF` alone runs the
/// document as the script; otherwise the shell gets the whole text.
/// The here-document of `RUN <<EOF` with nothing else on the line.
fn lone_heredoc(r: &Run) -> Option<&crate::dockerfile::Heredoc> {
    match &r.cmd {
        Command::Shell(s)
            if r.heredocs.len() == 1 && s.trim().starts_with("<<") && !s.trim().contains(' ') =>
        {
            r.heredocs.first()
        }
        _ => None,
    }
}

/// A `#!` script of `RUN <<EOF`, as BuildKit runs one: an executable file
/// at `/dev/pipes/NAME` (on the container's /dev tmpfs, so never in a layer).
fn script_mount(ws: &Workspace, r: &Run) -> Result<Option<rt_spec::runtime::Mount>> {
    let Some(h) = lone_heredoc(r).filter(|h| h.content.starts_with("#!")) else {
        return Ok(None);
    };
    let src = ws.dir.join(format!("heredoc-{}", h.name));
    std::fs::write(&src, &h.content).ctx(|| format!("write {}", src.display()))?;
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .ctx(|| format!("chmod {}", src.display()))?;
    Ok(Some(
        rt_spec::runtime::MountBuilder::default()
            .destination(format!("/dev/pipes/{}", h.name))
            .typ("bind")
            .source(src)
            .options(vec!["rbind".to_owned(), "ro".to_owned()])
            .build()
            .map_err(|e| Error::Usage(format!("mount /dev/pipes/{}: {e}", h.name)))?,
    ))
}

fn run_argv(r: &Run, shell: &[String]) -> Vec<String> {
    match &r.cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let script = if r.heredocs.is_empty() {
                s.clone()
            } else if let Some(h) = lone_heredoc(r) {
                if h.content.starts_with("#!") {
                    // Its own interpreter: run as a file (see `script_mount`).
                    return vec![format!("/dev/pipes/{}", h.name)];
                }
                h.content.clone()
            } else {
                let mut t = s.clone();
                for h in &r.heredocs {
                    t.push('\n');
                    t.push_str(&h.content);
                    t.push_str(&h.name);
                }
                t
            };
            shell.iter().cloned().chain([script]).collect()
        }
    }
}

fn run(b: &mut Builder<'_>, st: &mut StageState, step: &Step, r: &Run) -> Result<()> {
    let line = step.line;
    let argv = run_argv(r, &st.shell());
    let env = st.arg_env(b);
    for e in &env {
        if let Some((k, _)) = e.split_once('=') {
            if b.build_arg(k).is_some() {
                b.used_args.insert(k.to_owned());
            }
        }
    }
    let network_host = match r.network.as_deref() {
        Some("host") => true,
        Some("none") => false,
        _ => b.opts.network_host,
    };
    let workdir = st.workdir();
    let mut specs = Vec::new();
    let mut mount_keys = Vec::new();
    {
        let vars = |n: &str| st.lookup(n);
        let ex = Expander {
            escape: b.df.escape,
            vars: &vars,
        };
        for m in &r.mounts {
            let m = ex.word(m).map_err(|e| b.err(line, e))?;
            let mut spec = MountSpec::parse(&m).map_err(|e| b.err(line, e))?;
            let t = resolve_path(&workdir, spec.target());
            match &mut spec {
                MountSpec::Bind {
                    target,
                    source,
                    from,
                    ..
                } => {
                    *target = t;
                    match from {
                        None => {
                            let rel = clean_rel(source).map_err(|e| {
                                Error::Unsafe(format!("{}:{line}: --mount source={e}", b.df.file))
                            })?;
                            mount_keys.push(format!("{m} {}", b.ctx.digest(&[rel])?));
                        }
                        Some(f) => {
                            let base = b.base(f, st.idx).map_err(|e| b.err(line, e.to_string()))?;
                            mount_keys.push(format!("{m} {}", base.id()));
                        }
                    }
                }
                MountSpec::Cache { target, .. } | MountSpec::Tmpfs { target, .. } => {
                    *target = t;
                    mount_keys.push(m.clone());
                }
            }
            specs.push(spec);
        }
    }
    let key = format!("run\n{argv:?}\n{env:?}\nnetwork_host={network_host}\n{mount_keys:?}");
    let created_by = argv.join(" ");
    let step_no = format!("{}/{}", b.step_no, b.total);
    let text = step.text.lines().next().unwrap_or("").to_owned();
    b.cached(st, &key, |b, st| {
        let mut ws = Workspace::mount(&b.store, &st.state)?;
        // Targets resolved here, inside the rootfs, symlinks and all: the
        // runtime gets paths with no symlink an earlier step could plant.
        let specs: Vec<MountSpec> = {
            let root = ws.root_fd()?;
            specs
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    let t = resolve_in_root(root.as_fd(), &comps(s.target()));
                    s.set_target(format!("/{}", String::from_utf8_lossy(&join(&t))));
                    s
                })
                .collect()
        };
        let mut sources: Vec<(Workspace, OwnedFd)> = Vec::new();
        let mut oci = Vec::new();
        let mut locks = Vec::new();
        for spec in &specs {
            match spec {
                MountSpec::Bind {
                    source,
                    from,
                    target,
                    rw,
                } => match from {
                    None => {
                        let fd = nix::unistd::dup(b.ctx.fd()).ctx(|| "dup context")?;
                        oci.push(mounts::bind(&mut ws, fd.as_fd(), source, target, *rw)?);
                    }
                    Some(f) => {
                        let base = b.base(f, st.idx)?;
                        let sws = Workspace::mount(&b.store, &base)?;
                        let fd = sws.root_fd()?;
                        oci.push(mounts::bind(&mut ws, fd.as_fd(), source, target, *rw)?);
                        sources.push((sws, fd));
                    }
                },
                MountSpec::Cache {
                    id,
                    target,
                    sharing,
                    mode,
                    uid,
                    gid,
                    readonly,
                } => {
                    let (m, dir) =
                        mounts::cache(b.store.path(), id, target, *mode, (*uid, *gid), *readonly)?;
                    if sharing == "locked" {
                        let f =
                            std::fs::File::open(&dir).ctx(|| format!("open {}", dir.display()))?;
                        let l = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
                            .map_err(|(_, e)| Error::Io {
                                context: format!("lock {}", dir.display()),
                                err: e.into(),
                            })?;
                        locks.push(l);
                    }
                    oci.push(m);
                }
                MountSpec::Tmpfs { target, size } => {
                    oci.push(mounts::tmpfs(target, size.as_deref())?)
                }
            }
        }
        let root = ws.root_fd()?;
        oci.extend(network_files(&mut ws, root.as_fd(), network_host)?);
        oci.extend(script_mount(&ws, r)?);
        // Mount points the runtime will create where the image has none are
        // not the step's doing: removed again before the commit.
        let mut stubs = Vec::new();
        for t in ["/proc", "/dev", "/sys"]
            .into_iter()
            .map(str::to_owned)
            .chain(specs.iter().map(|s| s.target().to_owned()))
        {
            let c = comps(&t);
            if rt_image::fs::open_in_root(root.as_fd(), &join(&c), OFlag::O_PATH).is_err() {
                stubs.push(c);
            }
        }
        // Missing parents of mount targets are made as crun makes them
        // (01755), so the tree matches `buildah bud` on a crun host whatever
        // runtime runs the step; the targets themselves go again.
        for spec in &specs {
            let c = comps(spec.target());
            for i in 1..c.len() {
                let p = &c[..i];
                if rt_image::fs::open_in_root(root.as_fd(), &join(p), OFlag::O_PATH).is_err() {
                    mkdir_p(root.as_fd(), p, (0, 0))?;
                    let (dir, name) = open_parent(root.as_fd(), p).ctx(|| "open mount parent")?;
                    nix::sys::stat::fchmodat(
                        dir.as_fd(),
                        name.as_slice(),
                        nix::sys::stat::Mode::from_bits_truncate(0o1755),
                        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                    )
                    .ctx(|| "chmod mount parent")?;
                }
            }
        }
        let cfg = st.state.oci_config()?;
        let spec = container_config(
            &ws,
            &cfg,
            &RunSpec {
                argv: argv.clone(),
                env: env.clone(),
                network_host,
                mounts: oci,
            },
        )?;
        let status = crate::run::run(&ws, &b.opts.runtime, &spec)?;
        if !status.success() {
            let status = match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => status.to_string(),
            };
            return Err(Error::StepFailed {
                step: step_no.clone(),
                instruction: format!("{}:{line}: {text}", b.df.file),
                command: argv.clone(),
                status,
            });
        }
        for c in stubs.iter().rev() {
            remove_stub(root.as_fd(), c);
        }
        drop(root);
        drop(locks);
        drop(sources);
        b.finish_fs_step(st.state.clone(), ws, &created_by)
    })
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the step,
/// bind-mounted from the workspace. Where the image lacks them, empty
/// files stay behind as mount points, as `buildah bud` leaves them (and
/// `/run`), so both builders give the same tree.
fn network_files(
    ws: &mut Workspace,
    root: BorrowedFd<'_>,
    network_host: bool,
) -> Result<Vec<rt_spec::runtime::Mount>> {
    let etc = mkdir_p(root, &[b"etc".to_vec()], (0, 0))?;
    mkdir_p(root, &[b"run".to_vec()], (0, 0))?;
    let resolv = if network_host {
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    } else {
        String::new()
    };
    let files = [
        ("hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\trt-build\n".to_owned()),
        ("hostname", "rt-build\n".to_owned()),
        ("resolv.conf", resolv),
    ];
    let mut out = Vec::new();
    for (name, content) in files {
        match stat_at(etc.as_fd(), name.as_bytes()) {
            Ok(st) if kind(&st) != SFlag::S_IFREG => continue,
            Ok(_) => {}
            Err(_) => {
                write_file(
                    etc.as_fd(),
                    name.as_bytes(),
                    &format!("/etc/{name}"),
                    b"",
                    0o700,
                    (0, 0),
                )?;
            }
        }
        let src = ws.dir.join(format!("etc-{name}"));
        std::fs::write(&src, content).ctx(|| format!("write {}", src.display()))?;
        out.push(
            rt_spec::runtime::MountBuilder::default()
                .destination(format!("/etc/{name}"))
                .typ("bind")
                .source(src)
                .options(vec!["rbind".to_owned(), "rw".to_owned()])
                .build()
                .map_err(|e| Error::Usage(format!("mount /etc/{name}: {e}")))?,
        );
    }
    Ok(out)
}

/// `path` with every symlink on it followed as the container would follow
/// it, never above `root`; from the first missing component on, the rest
/// is taken as written.
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut todo: Vec<Vec<u8>> = path.iter().rev().cloned().collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let st = rt_image::fs::open_dir_in_root(root, &join(&done))
            .ok()
            .and_then(|d| stat_at(d.as_fd(), &c).ok().map(|st| (d, st)));
        match st {
            Some((d, st)) if kind(&st) == SFlag::S_IFLNK && hops < 40 => {
                hops += 1;
                let Ok(t) = nix::fcntl::readlinkat(d.as_fd(), c.as_slice()) else {
                    done.push(c);
                    continue;
                };
                let t = std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str()).to_vec();
                if t.starts_with(b"/") {
                    done.clear();
                }
                for part in t.split(|&b| b == b'/').rev() {
                    todo.push(part.to_vec());
                }
            }
            Some(_) => done.push(c),
            None => {
                done.push(c);
                while let Some(r) = todo.pop() {
                    match r.as_slice() {
                        b"" | b"." => {}
                        b".." => {
                            done.pop();
                        }
                        _ => done.push(r),
                    }
                }
            }
        }
    }
    done
}

fn remove_stub(root: BorrowedFd<'_>, c: &[Vec<u8>]) {
    if let Ok((dir, name)) = open_parent(root, c) {
        let flag = match stat_at(dir.as_fd(), &name) {
            Ok(s) if kind(&s) == SFlag::S_IFDIR => UnlinkatFlags::RemoveDir,
            Ok(s) if s.st_size == 0 => UnlinkatFlags::NoRemoveDir,
            _ => return,
        };
        let _ = nix::unistd::unlinkat(dir.as_fd(), name.as_slice(), flag);
    }
}

/// `user[:group]` of `--chown`, names looked up in the rootfs; a user
/// alone gets its primary group (its own id when numeric).
fn resolve_chown(spec: &str, root: BorrowedFd<'_>) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => {
            let r = rt_image::config::resolve_user(u, root)?;
            (r.uid, Some(r.gid))
        }
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => rt_image::config::resolve_user(&format!("0:{g}"), root)?.gid,
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// A tar (plain, gzip, bzip2, xz or zstd) in `dir/name`, ready to read, or
/// `None` if the file is not one.
fn archive(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<Box<dyn Read>>> {
    let open = || -> Result<std::fs::File> {
        rt_image::fs::open_child(dir, name, OFlag::O_RDONLY)
            .map(std::fs::File::from)
            .ctx(|| format!("open {}", String::from_utf8_lossy(name)))
    };
    let mut head = [0u8; 6];
    let mut f = open()?;
    let n = f.read(&mut head).ctx(|| "read archive")?;
    let head = &head[..n];
    let f = open()?;
    let mut r: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(f))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(f).ctx(|| "start zstd decoder")?)
    } else {
        Box::new(f)
    };
    let mut block = Vec::with_capacity(512);
    if (&mut r).take(512).read_to_end(&mut block).is_err() || block.len() < 512 {
        return Ok(None);
    }
    if &block[257..262] != b"ustar" {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(block).chain(r))))
}

enum Sources {
    Context(Vec<Vec<Vec<u8>>>),
    Image(ImageState),
}

fn copy(b: &mut Builder<'_>, st: &mut StageState, step: &Step, c: &Copy) -> Result<()> {
    let line = step.line;
    let kw = if c.add { "ADD" } else { "COPY" };
    let (srcs, dest, from, chown, chmod) = {
        let vars = |n: &str| st.lookup(n);
        let ex = Expander {
            escape: b.df.escape,
            vars: &vars,
        };
        let mut srcs = Vec::new();
        for s in &c.srcs {
            srcs.extend(ex.words(s).map_err(|e| b.err(line, e))?);
        }
        let dest = ex.word(&c.dest).map_err(|e| b.err(line, e))?;
        let from = match &c.from {
            Some(f) => Some(ex.word(f).map_err(|e| b.err(line, e))?),
            None => None,
        };
        let chown = match &c.chown {
            Some(f) => Some(ex.word(f).map_err(|e| b.err(line, e))?),
            None => None,
        };
        let chmod = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(&ex.word(m).map_err(|e| b.err(line, e))?, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| b.err(line, format!("{kw} --chmod={m}: not an octal mode")))?,
            ),
            None => None,
        };
        (srcs, dest, from, chown, chmod)
    };
    for s in &srcs {
        if s.contains("://") || s.starts_with("git@") {
            return Err(b.err(
                line,
                format!("{kw} {s}: remote sources are not supported (no network at build time)"),
            ));
        }
    }
    let dest_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.") || dest == "..";
    let dest_abs = resolve_path(&st.workdir(), &dest);
    let sources = match &from {
        None => {
            let mut all = Vec::new();
            for s in &srcs {
                let found = b.ctx.sources(s).map_err(|e| match e {
                    Error::Unsafe(r) => Error::Unsafe(format!("{}:{line}: {kw} {r}", b.df.file)),
                    e => b.err(line, format!("{kw}: {e}")),
                })?;
                all.extend(found);
            }
            Sources::Context(all)
        }
        Some(f) => Sources::Image(
            b.base(f, st.idx)
                .map_err(|e| b.err(line, format!("{kw} --from={f}: {e}")))?,
        ),
    };
    let count = match &sources {
        Sources::Context(v) => v.len(),
        Sources::Image(_) => srcs.len(),
    } + c.heredocs.len();
    if count > 1 && !dest_dir {
        return Err(b.err(
            line,
            format!("{kw} with more than one source needs a destination directory ending in /"),
        ));
    }
    let content = match &sources {
        Sources::Context(v) => format!("context {:?} {}", v, b.ctx.digest(v)?),
        Sources::Image(s) => format!("image {} {srcs:?}", s.id()),
    };
    let docs: Vec<(String, String)> = {
        let vars = |n: &str| st.lookup(n);
        let ex = Expander {
            escape: b.df.escape,
            vars: &vars,
        };
        let mut docs = Vec::new();
        for h in &c.heredocs {
            let content = if h.expand {
                ex.raw(&h.content).map_err(|e| b.err(line, e))?
            } else {
                h.content.clone()
            };
            docs.push((h.name.clone(), content));
        }
        docs
    };
    let key = format!(
        "copy add={}\n{content}\ndest={dest_abs} dir={dest_dir}\nchown={chown:?} chmod={chmod:?}\n{docs:?}",
        c.add
    );
    let created_by = format!(
        "/bin/sh -c #(nop) {kw} {} in {dest_abs}",
        if srcs.is_empty() {
            "heredoc".to_owned()
        } else {
            srcs.join(" ")
        }
    );
    let add = c.add;
    b.cached(st, &key, |b, st| {
        let ws = Workspace::mount(&b.store, &st.state)?;
        let root = ws.root_fd()?;
        let owner = match &chown {
            Some(spec) => Some(resolve_chown(spec, root.as_fd())?),
            None => None,
        };
        let dest_c = comps(&dest_abs);
        let into_dir = dest_dir
            || count > 1
            || rt_image::fs::open_dir_in_root(root.as_fd(), &join(&dest_c)).is_ok();
        let target = Target {
            root: root.as_fd(),
            dest: &dest_c,
            into_dir,
            add,
            parents: owner.unwrap_or((0, 0)),
        };
        match &sources {
            Sources::Context(paths) => {
                let opts = CopyOptions {
                    owner: Some(owner.unwrap_or((0, 0))),
                    chmod,
                };
                let ig = b.ctx.ignore();
                let filter = |r: &[Vec<u8>]| {
                    let c: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
                    match (ig.excluded(&c), ig.has_exceptions()) {
                        (false, _) => Pick::Copy,
                        (true, true) => Pick::Inside,
                        (true, false) => Pick::Skip,
                    }
                };
                for p in paths {
                    target.copy(b.ctx.fd(), p, &opts, &filter)?;
                }
            }
            Sources::Image(state) => {
                let sws = Workspace::mount(&b.store, state)?;
                let sroot = sws.root_fd()?;
                let opts = CopyOptions { owner, chmod };
                let none = |_: &[Vec<u8>]| Pick::Copy;
                for s in &srcs {
                    let mut n = 0;
                    let rel = clean_rel(s).map_err(Error::Unsafe)?;
                    for p in expand_glob(sroot.as_fd(), &rel)? {
                        let exists = open_parent(sroot.as_fd(), &p)
                            .is_ok_and(|(d, name)| stat_at(d.as_fd(), &name).is_ok());
                        if exists {
                            target.copy(sroot.as_fd(), &p, &opts, &none)?;
                            n += 1;
                        }
                    }
                    if n == 0 {
                        return Err(Error::Usage(format!(
                            "{}:{line}: {kw} --from: {s}: no such file or directory",
                            b.df.file
                        )));
                    }
                }
            }
        }
        for (name, data) in &docs {
            let (dir, fname) = if into_dir {
                (
                    mkdir_p(root.as_fd(), &dest_c, owner.unwrap_or((0, 0)))?,
                    name.as_bytes().to_vec(),
                )
            } else {
                let (last, parent) = dest_c
                    .split_last()
                    .ok_or_else(|| Error::Usage(format!("{kw}: cannot write a file at /")))?;
                (
                    mkdir_p(root.as_fd(), parent, owner.unwrap_or((0, 0)))?,
                    last.clone(),
                )
            };
            write_file(
                dir.as_fd(),
                &fname,
                &format!("{dest_abs}/{name}"),
                data.as_bytes(),
                chmod.unwrap_or(0o644),
                owner.unwrap_or((0, 0)),
            )?;
        }
        drop(root);
        b.finish_fs_step(st.state.clone(), ws, &created_by)
    })
}

struct Target<'a> {
    root: BorrowedFd<'a>,
    dest: &'a [Vec<u8>],
    into_dir: bool,
    add: bool,
    /// Owner of the directories the copy creates (buildah gives them the
    /// `--chown` owner).
    parents: (u32, u32),
}

impl Target<'_> {
    fn copy(
        &self,
        src_root: BorrowedFd<'_>,
        p: &[Vec<u8>],
        opts: &CopyOptions,
        filter: crate::copy::Filter<'_>,
    ) -> Result<()> {
        let shown_src = format!("/{}", String::from_utf8_lossy(&join(p)));
        let (sdir, sname) = open_parent(src_root, p).ctx(|| format!("open {shown_src}"))?;
        let st = stat_at(sdir.as_fd(), &sname).ctx(|| format!("stat {shown_src}"))?;
        let dest_shown = format!("/{}", String::from_utf8_lossy(&join(self.dest)));
        if kind(&st) == SFlag::S_IFDIR {
            let d = mkdir_p(self.root, self.dest, self.parents)?;
            let src = if sname.is_empty() {
                sdir
            } else {
                rt_image::fs::open_child(sdir.as_fd(), &sname, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                    .ctx(|| format!("open {shown_src}"))?
            };
            return copy_children(src.as_fd(), p, d.as_fd(), &dest_shown, opts, filter);
        }
        if self.add && kind(&st) == SFlag::S_IFREG {
            if let Some(mut tar) = archive(sdir.as_fd(), &sname)? {
                let d = mkdir_p(self.root, self.dest, self.parents)?;
                let aopts = rt_image::layer::apply::ApplyOptions::new(
                    rt_image::layer::apply::Whiteouts::Apply,
                    true,
                );
                rt_image::layer::apply::apply_layer(d.as_fd(), &mut tar, &aopts, &[], &shown_src)?;
                return Ok(());
            }
        }
        let (dir, name) = if self.into_dir {
            (mkdir_p(self.root, self.dest, self.parents)?, sname.clone())
        } else {
            let (last, parent) = self
                .dest
                .split_last()
                .ok_or_else(|| Error::Usage(format!("cannot copy {shown_src} over /")))?;
            (mkdir_p(self.root, parent, self.parents)?, last.clone())
        };
        let shown = format!(
            "{}/{}",
            dest_shown.trim_end_matches('/'),
            String::from_utf8_lossy(&name)
        );
        copy_entry(
            sdir.as_fd(),
            &sname,
            p,
            dir.as_fd(),
            &name,
            &shown,
            opts,
            filter,
        )
    }
}
