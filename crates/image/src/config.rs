//! A runtime `config.json` from an image config, following the image
//! spec's conversion rules (conversion.md) on top of runc's default spec.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::BorrowedFd;

use nix::fcntl::OFlag;
use oci_spec::image::ImageConfiguration;
use rt_spec::runtime::{Spec, User};

use crate::error::{Error, Result};
use crate::fs::open_in_root;

/// What the caller wants beyond the image's own settings.
#[derive(Clone, Debug, Default)]
pub struct ConfigOptions {
    /// A config for a user namespace (`rt spec --rootless` as the base),
    /// mapping container root to these host ids.
    pub rootless: Option<(u32, u32)>,
    /// Replaces the image's `Entrypoint` (and drops its `Cmd`, as docker does).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` added to (or replacing in) the image's `Env`.
    pub env: Vec<String>,
    pub hostname: Option<String>,
    /// Allocate a terminal (runc's default spec does; images usually run without).
    pub terminal: bool,
    /// Keep runc's read-only root (images usually expect to write).
    pub readonly: bool,
    /// Replaces the image's `User`.
    pub user: Option<String>,
    /// Replaces the image's `WorkingDir`.
    pub cwd: Option<String>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds the runtime spec. `rootfs` is the unpacked root, read (confined
/// to it) for `/etc/passwd` and `/etc/group` when `User` names a user or group.
pub fn runtime_spec(
    image: &ImageConfiguration,
    rootfs: BorrowedFd<'_>,
    opts: &ConfigOptions,
) -> Result<Spec> {
    let mut spec = match opts.rootless {
        Some((uid, gid)) => rt_spec::rootless_spec(uid, gid),
        None => rt_spec::default_spec(false),
    };
    let cfg = image.config().clone().unwrap_or_default();

    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(e) => (e.clone(), opts.cmd.clone().unwrap_or_default()),
        None => (
            cfg.entrypoint().clone().unwrap_or_default(),
            opts.cmd
                .clone()
                .or_else(|| cfg.cmd().clone())
                .unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Usage(
            "the image has no Entrypoint or Cmd: give the command to run (-- ARGS)".into(),
        ));
    }

    let mut env: Vec<String> = cfg.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    if opts.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    for add in &opts.env {
        let key = add.split_once('=').map_or(add.as_str(), |(k, _)| k);
        if key.is_empty() {
            return Err(Error::Usage(format!("--env {add:?}: expected KEY=VALUE")));
        }
        let prefix = format!("{key}=");
        env.retain(|e| !e.starts_with(&prefix) && e != key);
        env.push(if add.contains('=') {
            add.clone()
        } else {
            format!("{key}=")
        });
    }

    let user_spec = opts
        .user
        .clone()
        .or_else(|| cfg.user().clone())
        .unwrap_or_default();
    let resolved = resolve_user(&user_spec, rootfs)?;
    let cwd = opts
        .cwd
        .clone()
        .or_else(|| cfg.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(Error::Image(format!("WorkingDir {cwd:?} is not absolute")));
    }

    if let Some(p) = spec.process_mut() {
        p.set_args(Some(args));
        p.set_env(Some(env));
        p.set_cwd(cwd.into());
        p.set_terminal(Some(opts.terminal));
        let mut u = User::default();
        u.set_uid(resolved.uid);
        u.set_gid(resolved.gid);
        if !resolved.additional_gids.is_empty() {
            u.set_additional_gids(Some(resolved.additional_gids));
        }
        p.set_user(u);
    }
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(opts.readonly));
    }
    if let Some(h) = &opts.hostname {
        spec.set_hostname(Some(h.clone()));
    }

    let mut ann: HashMap<String, String> = HashMap::new();
    let mut put = |k: &str, v: String| {
        ann.insert(format!("org.opencontainers.image.{k}"), v);
    };
    put("os", image.os().to_string());
    put("architecture", image.architecture().to_string());
    if let Some(v) = image.variant() {
        put("variant", v.clone());
    }
    if let Some(v) = image.os_version() {
        put("os.version", v.clone());
    }
    if let Some(v) = image.os_features() {
        put("os.features", v.join(","));
    }
    if let Some(v) = image.author() {
        put("author", v.clone());
    }
    if let Some(v) = image.created() {
        put("created", v.clone());
    }
    if let Some(v) = cfg.stop_signal() {
        put("stopSignal", v.clone());
    }
    if let Some(v) = cfg.exposed_ports() {
        let mut v = v.clone();
        v.sort();
        put("exposedPorts", v.join(","));
    }
    // Labels win over the implied annotations (conversion.md allows either;
    // the image author's explicit word is the better one).
    for (k, v) in cfg.labels().clone().unwrap_or_default() {
        ann.insert(k, v);
    }
    spec.set_annotations(Some(ann));
    Ok(spec)
}

#[derive(Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_rootfs_file(rootfs: BorrowedFd<'_>, path: &str) -> Result<String> {
    match open_in_root(rootfs, path.as_bytes(), OFlag::O_RDONLY) {
        Ok(fd) => {
            let mut s = Vec::new();
            std::fs::File::from(fd)
                .take(16 << 20)
                .read_to_end(&mut s)
                .map_err(|e| Error::Io {
                    context: format!("read rootfs {path}"),
                    err: e,
                })?;
            Ok(String::from_utf8_lossy(&s).into_owned())
        }
        Err(nix::errno::Errno::ENOENT) => Ok(String::new()),
        Err(e) => Err(Error::Io {
            context: format!("open rootfs {path}"),
            err: e.into(),
        }),
    }
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Passwd {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(Group {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// `User` as runc and docker read it: `user`, `uid`, `user:group`,
/// `uid:gid` (mixed too). Names must exist in the rootfs; a numeric user
/// takes its group from `/etc/passwd` if listed there, else 0. Without an
/// explicit group, the groups that list the user become additional gids.
pub fn resolve_user(spec: &str, rootfs: BorrowedFd<'_>) -> Result<ResolvedUser> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let numeric_user = user.parse::<u32>().ok();
    let numeric_group = group.and_then(|g| g.parse::<u32>().ok());
    let need_passwd = numeric_user.is_none() || group.is_none();
    let passwd = if need_passwd {
        parse_passwd(&read_rootfs_file(rootfs, "/etc/passwd")?)
    } else {
        Vec::new()
    };
    let entry = match (user, numeric_user) {
        ("", _) => passwd.iter().find(|p| p.uid == 0),
        (_, Some(uid)) => passwd.iter().find(|p| p.uid == uid),
        (name, None) => Some(passwd.iter().find(|p| p.name == name).ok_or_else(|| {
            Error::Image(format!("user {name:?} is not in the image's /etc/passwd"))
        })?),
    };
    let uid = numeric_user.or(entry.map(|e| e.uid)).unwrap_or(0);
    let mut gid = entry.map_or(0, |e| e.gid);
    let mut additional = Vec::new();
    let need_group =
        (group.is_some() && numeric_group.is_none()) || (group.is_none() && entry.is_some());
    let groups = if need_group {
        parse_group(&read_rootfs_file(rootfs, "/etc/group")?)
    } else {
        Vec::new()
    };
    match (group, numeric_group) {
        (Some(_), Some(g)) => gid = g,
        (Some(""), None) => {}
        (Some(name), None) => {
            gid = groups
                .iter()
                .find(|g| g.name == name)
                .ok_or_else(|| {
                    Error::Image(format!("group {name:?} is not in the image's /etc/group"))
                })?
                .gid;
        }
        (None, _) => {
            if let Some(e) = entry {
                for g in &groups {
                    if g.members.contains(&e.name) && !additional.contains(&g.gid) {
                        additional.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn rootfs() -> (tempfile::TempDir, std::os::fd::OwnedFd) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwww:x:34:\nstaff:x:50:bob,www\naudio:x:29:bob\nbob:x:1000:\n",
        )
        .unwrap();
        let fd = crate::fs::open_dir_nofollow(d.path()).unwrap();
        (d, fd)
    }

    #[test]
    fn resolves_users_like_runc() {
        let (_d, fd) = rootfs();
        let r = |s: &str| resolve_user(s, fd.as_fd());
        let u = |uid, gid, add: &[u32]| ResolvedUser {
            uid,
            gid,
            additional_gids: add.to_vec(),
        };
        assert_eq!(r("").unwrap(), u(0, 0, &[]));
        assert_eq!(r("bob").unwrap(), u(1000, 1000, &[50, 29]));
        assert_eq!(r("1000").unwrap(), u(1000, 1000, &[50, 29]));
        assert_eq!(r("www:staff").unwrap(), u(33, 50, &[]));
        assert_eq!(r("33:7").unwrap(), u(33, 7, &[]));
        assert_eq!(r("4242").unwrap(), u(4242, 0, &[]));
        assert_eq!(r("bob:audio").unwrap(), u(1000, 29, &[]));
        assert!(r("nobody").unwrap_err().to_string().contains("nobody"));
        assert!(r("bob:nogroup")
            .unwrap_err()
            .to_string()
            .contains("nogroup"));
    }

    #[test]
    fn passwd_symlink_stays_in_root() {
        let (d, _) = rootfs();
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // A symlink to "/etc/passwd" from /etc/passwd loops inside the root;
        // it must never reach the host's file.
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/shadow", d.path().join("etc/passwd"))
            .unwrap();
        let fd = crate::fs::open_dir_nofollow(d.path()).unwrap();
        assert!(resolve_user("root", fd.as_fd()).is_err());
    }
}
