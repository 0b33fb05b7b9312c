//! RUN: a container of the runtime over the stage's image, its mounts
//! (`--mount`, /etc/hosts and friends, a `#!` here-document) prepared and
//! resolved inside the rootfs, the mount points it needed taken out again,
//! the upper directory committed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use nix::unistd::UnlinkatFlags;

use super::{comps, resolve_path, StageState};
use crate::build::Builder;
use crate::context::{clean_rel, join, kind, open_parent, stat_at};
use crate::copy::{mkdir_p, write_file};
use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Command, Run, Step};
use crate::error::{Context as _, Error, Result};
use crate::mounts::{self, MountSpec};
use crate::run::{container_config, RunSpec};
use crate::workspace::Workspace;

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

/// The heredoc-aware command of a RUN: `RUN <<EOF` alone runs the
/// document as the script; otherwise the shell gets the whole text.
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

pub(super) fn run(b: &mut Builder<'_>, st: &mut StageState, step: &Step, r: &Run) -> Result<()> {
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
            let Some(mut spec) = MountSpec::parse_run(&m).map_err(|e| b.err(line, e))? else {
                continue;
            };
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
                MountSpec::Cache {
                    target,
                    from: Some(f),
                    ..
                } => {
                    *target = t;
                    let base = b.base(f, st.idx).map_err(|e| b.err(line, e.to_string()))?;
                    mount_keys.push(format!("{m} {}", base.id()));
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
                    from,
                    source,
                    target,
                    sharing,
                    mode,
                    uid,
                    gid,
                    readonly,
                } => {
                    let source = source.as_deref().unwrap_or("/");
                    let base = from.as_ref().map(|f| b.base(f, st.idx)).transpose()?;
                    // Keyed by the base's content, not its config: a rebuilt but
                    // unchanged stage keeps its cache.
                    let base_id = base.as_ref().map(|i| {
                        i.chain_ids()
                            .pop()
                            .unwrap_or_else(|| rt_image::Digest::sha256(b""))
                    });
                    let dir = mounts::cache_dir(
                        b.store.path(),
                        id,
                        base_id.as_ref().map(|d| (d, source)),
                    );
                    // The base's rootfs is mounted only to seed a new cache.
                    let seed_root = match &base {
                        Some(base) if !dir.is_dir() => {
                            let sws = Workspace::mount(&b.store, base)?;
                            let fd = sws.root_fd()?;
                            sources.push((sws, fd));
                            sources.last().map(|(_, fd)| fd.as_fd())
                        }
                        _ => None,
                    };
                    let m = mounts::cache(
                        &dir,
                        target,
                        *mode,
                        (*uid, *gid),
                        *readonly,
                        seed_root.map(|fd| (fd, source)),
                    )?;
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
        // Missing parents of mount targets are made as runc and rt make them
        // (0755), so the tree matches `buildah bud` with those whatever
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
                        nix::sys::stat::Mode::from_bits_truncate(0o755),
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
/// files stay behind as mount points (mode 0755, as runc and rt make them),
/// as `buildah bud` leaves them (and `/run`), so both builders give the same
/// tree.
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
                    0o755,
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
