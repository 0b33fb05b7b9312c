//! `RUN --mount=type=bind|cache|tmpfs` with BuildKit's options. Sources
//! never come from outside what they name: a bind source is resolved in the
//! context (or the `from` stage's rootfs) with `RESOLVE_IN_ROOT` and the
//! opened directory itself is bind-mounted (through its `/proc/self/fd`
//! link) to a staging point, so no later rename or symlink swap can change
//! what the container sees; a cache id only names a directory through its
//! digest, so no id climbs out of the store. Targets are resolved by the
//! runtime inside the container's rootfs.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use rt_spec::runtime::{Mount, MountBuilder};

use crate::context::clean_rel;
use crate::error::{Context, Error, Result};
use crate::workspace::Workspace;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSpec {
    Bind {
        source: String,
        from: Option<String>,
        target: String,
        rw: bool,
    },
    Cache {
        id: String,
        /// BuildKit's base of a new cache: a stage or image, and a directory in it.
        from: Option<String>,
        source: Option<String>,
        target: String,
        sharing: String,
        mode: u32,
        uid: u32,
        gid: u32,
        readonly: bool,
    },
    Tmpfs {
        target: String,
        size: Option<String>,
    },
}

fn flag(v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(x) => Err(format!("expected true or false, got {x:?}")),
    }
}

/// `type=secret` and `type=ssh`: rt-build takes no secrets or agents, so
/// (as BuildKit without one) the mount is left out unless `required`.
fn unprovided(s: &str) -> Option<Result<(), String>> {
    let mut ty = None;
    let mut required = false;
    let mut id = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("type", t)) => ty = Some(t),
            Some(("required", v)) => required = v == "true",
            Some(("id", v)) => id = Some(v),
            None if part == "required" => required = true,
            _ => {}
        }
    }
    let ty = ty.filter(|t| matches!(*t, "secret" | "ssh"))?;
    Some(if required {
        Err(format!(
            "--mount type={ty}{}: required, but rt-build provides no secrets or SSH agents",
            id.map(|i| format!(",id={i}")).unwrap_or_default()
        ))
    } else {
        Ok(())
    })
}

impl MountSpec {
    /// `None` for a secret or SSH mount that is not required (left out).
    pub fn parse_run(s: &str) -> Result<Option<MountSpec>, String> {
        match unprovided(s) {
            Some(r) => r.map(|()| None),
            None => MountSpec::parse(s).map(Some),
        }
    }

    pub fn parse(s: &str) -> Result<MountSpec, String> {
        let mut ty = "bind".to_owned();
        let (mut source, mut from, mut target, mut id) = (None, None, None, None);
        let (mut rw, mut ro, mut sharing) = (false, false, "shared".to_owned());
        let (mut mode, mut uid, mut gid, mut size) = (0o755, 0, 0, None);
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = match part.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_owned())),
                None => (part.to_ascii_lowercase(), None),
            };
            let need = || {
                v.clone()
                    .ok_or_else(|| format!("--mount {k} needs a value"))
            };
            match k.as_str() {
                "type" => ty = need()?,
                "source" | "src" => source = Some(need()?),
                "from" => from = Some(need()?),
                "target" | "dst" | "destination" => target = Some(need()?),
                "id" => id = Some(need()?),
                "rw" | "readwrite" => rw = flag(v.as_deref())?,
                "ro" | "readonly" => ro = flag(v.as_deref())?,
                "sharing" => {
                    sharing = need()?;
                    if !matches!(sharing.as_str(), "shared" | "private" | "locked") {
                        return Err(format!(
                            "--mount sharing={sharing}: expected shared, private or locked"
                        ));
                    }
                }
                "mode" => {
                    mode = u32::from_str_radix(&need()?, 8).map_err(|_| {
                        format!("--mount mode={}: not octal", need().unwrap_or_default())
                    })?
                }
                "uid" => {
                    uid = need()?
                        .parse()
                        .map_err(|_| "--mount uid: not a number".to_owned())?
                }
                "gid" => {
                    gid = need()?
                        .parse()
                        .map_err(|_| "--mount gid: not a number".to_owned())?
                }
                "size" => size = Some(need()?),
                _ => return Err(format!("--mount: unknown option {k}")),
            }
        }
        let target = target.ok_or("--mount needs target=")?;
        Ok(match ty.as_str() {
            "bind" => MountSpec::Bind {
                source: source.unwrap_or_else(|| "/".into()),
                from,
                target,
                rw: rw && !ro,
            },
            "cache" => {
                if source.is_some() && from.is_none() {
                    return Err("--mount type=cache: source= names a directory of from=".into());
                }
                MountSpec::Cache {
                    id: id.unwrap_or_else(|| target.clone()),
                    from,
                    source,
                    target,
                    sharing,
                    mode,
                    uid,
                    gid,
                    readonly: ro,
                }
            }
            "tmpfs" => MountSpec::Tmpfs { target, size },
            t => {
                return Err(format!(
                    "--mount type={t} is not supported (bind, cache, tmpfs)"
                ))
            }
        })
    }

    pub fn set_target(&mut self, t: String) {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Cache { target, .. }
            | MountSpec::Tmpfs { target, .. } => *target = t,
        }
    }

    pub fn target(&self) -> &str {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Cache { target, .. }
            | MountSpec::Tmpfs { target, .. } => target,
        }
    }
}

fn oci_mount(dest: &str, ty: &str, source: &Path, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(ty)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| Error::Usage(format!("mount {dest}: {e}")))
}

/// A bind mount of `source` inside `root` (a directory fd of the context or
/// a stage's rootfs), staged under the workspace.
pub fn bind(
    ws: &mut Workspace,
    root: std::os::fd::BorrowedFd<'_>,
    source: &str,
    target: &str,
    rw: bool,
) -> Result<Mount> {
    let rel = clean_rel(source).map_err(|e| Error::Unsafe(format!("--mount source={e}")))?;
    let relb = crate::context::join(&rel);
    let fd: OwnedFd = rt_image::fs::open_in_root(root, &relb, OFlag::O_PATH)
        .ctx(|| format!("--mount source={source}"))?;
    let st = nix::sys::stat::fstat(&fd).ctx(|| format!("stat --mount source={source}"))?;
    let is_dir = crate::context::kind(&st) == nix::sys::stat::SFlag::S_IFDIR;
    let stage = ws.dir.join(crate::workspace::unique("mnt"));
    if is_dir {
        std::fs::create_dir(&stage)
    } else {
        std::fs::write(&stage, b"")
    }
    .ctx(|| format!("create {}", stage.display()))?;
    let proc_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    mount(
        Some(&proc_path),
        &stage,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind --mount source={source}"))?;
    ws.track_mount(stage.clone());
    if !rw {
        return oci_mount(target, "bind", &stage, &["rbind", "ro"]);
    }
    // Writes to a bind mount are the step's own and are thrown away.
    if !is_dir {
        let copy = ws.dir.join(crate::workspace::unique("mnt-copy"));
        std::fs::copy(&stage, &copy).ctx(|| format!("copy --mount source={source}"))?;
        return oci_mount(target, "bind", &copy, &["rbind", "rw"]);
    }
    let (upper, work, merged) = (
        ws.dir.join(crate::workspace::unique("mnt-upper")),
        ws.dir.join(crate::workspace::unique("mnt-work")),
        ws.dir.join(crate::workspace::unique("mnt-rw")),
    );
    for d in [&upper, &work, &merged] {
        std::fs::create_dir(d).ctx(|| format!("create {}", d.display()))?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        stage.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .ctx(|| format!("mount writable copy of --mount source={source}"))?;
    ws.track_mount(merged.clone());
    oci_mount(target, "bind", &merged, &["rbind", "rw"])
}

/// The directory of a cache mount in the store, named by the digest of its id
/// (and of its base, when it has one: each base seeds a cache of its own).
pub fn cache_dir(store_root: &Path, id: &str, base: Option<(&rt_image::Digest, &str)>) -> PathBuf {
    let key = match base {
        None => id.to_owned(),
        Some((image, source)) => format!("{id}\0{image}\0{source}"),
    };
    let name = rt_image::Digest::sha256(key.as_bytes());
    store_root.join("cache-mounts").join(name.hex())
}

/// A cache mount of `dir`, made on first use: empty, or a copy of `source` in
/// `seed` (the rootfs of the mount's `from`, resolved inside it). The copy is
/// made aside and renamed into place, so an interrupted one is never a cache.
pub fn cache(
    dir: &Path,
    target: &str,
    mode: u32,
    owner: (u32, u32),
    readonly: bool,
    seed: Option<(std::os::fd::BorrowedFd<'_>, &str)>,
) -> Result<Mount> {
    if !dir.is_dir() {
        let parent = dir.parent().expect("cache dirs are in cache-mounts");
        std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
        let tmp = parent.join(crate::workspace::unique(".new"));
        std::fs::create_dir(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        let made = (|| {
            if let Some((root, source)) = seed {
                seed_cache(root, source, &tmp)?;
            }
            nix::unistd::chown(
                &tmp,
                Some(nix::unistd::Uid::from_raw(owner.0)),
                Some(nix::unistd::Gid::from_raw(owner.1)),
            )
            .ctx(|| format!("chown {}", tmp.display()))?;
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .ctx(|| format!("chmod {}", tmp.display()))?;
            std::fs::rename(&tmp, dir)
                .or_else(|e| {
                    // Another build made it meanwhile: theirs is as good.
                    if dir.is_dir() {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .ctx(|| format!("rename {} to {}", tmp.display(), dir.display()))
        })();
        if tmp.exists() {
            let _ = rt_image::fs::remove_tree(&tmp);
        }
        made?;
    }
    let opts: &[&str] = if readonly {
        &["rbind", "ro"]
    } else {
        &["rbind", "rw"]
    };
    oci_mount(target, "bind", dir, opts)
}

/// Copy the directory `source` of `root` (resolved inside it) into `dst`.
fn seed_cache(root: std::os::fd::BorrowedFd<'_>, source: &str, dst: &Path) -> Result<()> {
    use std::os::fd::AsFd;
    let rel = clean_rel(source).map_err(|e| Error::Unsafe(format!("--mount source={e}")))?;
    let src = rt_image::fs::open_dir_in_root(root, &crate::context::join(&rel))
        .ctx(|| format!("open --mount source={source} (a directory of from=)"))?;
    let dst_fd = rt_image::fs::open_dir_nofollow(dst)?;
    crate::copy::copy_children(
        src.as_fd(),
        &rel,
        dst_fd.as_fd(),
        &dst.display().to_string(),
        &crate::copy::CopyOptions::default(),
        &|_| crate::copy::Pick::Copy,
    )
}

pub fn tmpfs(target: &str, size: Option<&str>) -> Result<Mount> {
    let mut opts = vec!["nosuid", "nodev"];
    let s;
    if let Some(size) = size {
        s = format!("size={size}");
        opts.push(&s);
    }
    oci_mount(target, "tmpfs", Path::new("tmpfs"), &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildkit_options() {
        assert_eq!(
            MountSpec::parse("type=cache,target=/c,id=x,sharing=locked,mode=0700,uid=1").unwrap(),
            MountSpec::Cache {
                id: "x".into(),
                from: None,
                source: None,
                target: "/c".into(),
                sharing: "locked".into(),
                mode: 0o700,
                uid: 1,
                gid: 0,
                readonly: false
            }
        );
        assert_eq!(
            MountSpec::parse("target=/src,source=a,from=build,rw").unwrap(),
            MountSpec::Bind {
                source: "a".into(),
                from: Some("build".into()),
                target: "/src".into(),
                rw: true
            }
        );
        assert!(MountSpec::parse("type=secret,target=/s").is_err());
        assert_eq!(MountSpec::parse_run("type=secret,id=k").unwrap(), None);
        assert!(MountSpec::parse_run("type=ssh,required=true").is_err());
        assert_eq!(
            MountSpec::parse("type=cache,target=/c,from=deps,source=/root/.cache").unwrap(),
            MountSpec::Cache {
                id: "/c".into(),
                from: Some("deps".into()),
                source: Some("/root/.cache".into()),
                target: "/c".into(),
                sharing: "shared".into(),
                mode: 0o755,
                uid: 0,
                gid: 0,
                readonly: false
            }
        );
        assert!(MountSpec::parse("type=cache,target=/c,source=/x").is_err());
        assert!(MountSpec::parse("type=bind").is_err());
        assert!(MountSpec::parse("type=cache,target=/c,sharing=x").is_err());
        assert!(MountSpec::parse("type=tmpfs,target=/t,bogus=1").is_err());
    }
}
