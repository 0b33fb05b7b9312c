//! Working containers, the imperative way of building (buildah's `from`,
//! `run`, `config`, `copy`, `commit`): `STORE/containers/NAME/` holds the
//! image it stands on (its manifest in the store), the config changes
//! made so far, and a persistent overlay upper directory mounted at
//! `bundle/rootfs` over the image's layers. `commit` turns the upper
//! directory into a layer and the container goes on from the new image.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rt_image::Digest;
use serde_json::{json, Value};

use crate::commit::{commit, CommitOptions};
use crate::copy::{copy_children, copy_entry, mkdir_p, CopyOptions};
use crate::error::{Context, Error, Result};
use crate::image::{build_time, ImageState};
use crate::run::{container_config, RunSpec};
use crate::store::Store;
use crate::workspace::Workspace;

/// What `rt-build config` changes.
#[derive(Clone, Debug, Default)]
pub struct ConfigChange {
    /// `KEY=VALUE`, added or replaced.
    pub env: Vec<String>,
    /// A JSON array, else a shell command (`/bin/sh -c`), as buildah reads them.
    pub cmd: Option<String>,
    pub entrypoint: Option<String>,
    pub workingdir: Option<String>,
    pub user: Option<String>,
    /// `KEY=VALUE`.
    pub labels: Vec<String>,
    /// `PORT[/PROTO]`.
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

fn command_words(s: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(s)
        .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), s.to_owned()])
}

pub struct Container {
    pub name: String,
    pub dir: PathBuf,
    /// The image below the upper directory.
    pub base: Digest,
    /// The config the next commit records (the base's plus `config` changes).
    pub config: Value,
    /// What `from` was given, for `containers`.
    pub image: String,
}

fn containers_dir(store: &Store) -> PathBuf {
    store.path().join("containers")
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !n.starts_with('.')
}

impl Container {
    fn meta_path(&self) -> PathBuf {
        self.dir.join("container.json")
    }

    fn save(&self) -> Result<()> {
        let v = json!({"name": self.name, "base": self.base.to_string(), "config": self.config, "image": self.image});
        let tmp = self.dir.join(".container.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&v).expect("JSON serialises"),
        )
        .ctx(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.meta_path()).ctx(|| format!("rename {}", tmp.display()))
    }

    /// `rt-build from IMAGE [--name N]`.
    pub fn create(
        store: &Store,
        image: &str,
        state: ImageState,
        name: Option<&str>,
    ) -> Result<Container> {
        let base = Digest::try_from(store.save(&state)?.digest())?;
        let root = containers_dir(store);
        std::fs::create_dir_all(&root).ctx(|| format!("create {}", root.display()))?;
        let name = match name {
            Some(n) if !valid_name(n) => {
                return Err(Error::Usage(format!(
                    "container name {n:?}: use letters, digits, '-', '_' and '.'"
                )))
            }
            Some(n) if root.join(n).exists() => {
                return Err(Error::Usage(format!("container {n:?} exists")))
            }
            Some(n) => n.to_owned(),
            None => {
                let last = image.rsplit(['/', ':']).next().unwrap_or("scratch");
                let stem: String = image
                    .rsplit('/')
                    .next()
                    .unwrap_or(last)
                    .split(':')
                    .next()
                    .unwrap_or("scratch")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                    .collect();
                let stem = if stem.is_empty() {
                    "working".into()
                } else {
                    stem
                };
                let mut n = format!("{stem}-working-container");
                let mut i = 1;
                while root.join(&n).exists() {
                    n = format!("{stem}-working-container-{i}");
                    i += 1;
                }
                n
            }
        };
        let dir = root.join(&name);
        std::fs::create_dir(&dir).ctx(|| format!("create {}", dir.display()))?;
        let c = Container {
            name,
            dir,
            base,
            config: state.config.clone(),
            image: image.to_owned(),
        };
        c.save()?;
        Ok(c)
    }

    pub fn open(store: &Store, name: &str) -> Result<Container> {
        if !valid_name(name) {
            return Err(Error::Usage(format!("no container {name:?}")));
        }
        let dir = containers_dir(store).join(name);
        let p = dir.join("container.json");
        let data = std::fs::read(&p).map_err(|_| Error::Usage(format!("no container {name:?}")))?;
        let v: Value = serde_json::from_slice(&data)
            .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
        Ok(Container {
            name: name.to_owned(),
            dir,
            base: v["base"].as_str().unwrap_or("").parse()?,
            config: v["config"].clone(),
            image: v["image"].as_str().unwrap_or("").to_owned(),
        })
    }

    pub fn list(store: &Store) -> Result<Vec<Container>> {
        let root = containers_dir(store);
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&root) else {
            return Ok(out);
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            if let Ok(c) = Container::open(store, &n) {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn state(&self, store: &Store) -> Result<ImageState> {
        let mut s = store.load(&self.base)?;
        s.config = self.config.clone();
        Ok(s)
    }

    /// Mounts the rootfs (if it is not) and returns its path.
    pub fn mount(&self, store: &Store) -> Result<(Workspace, PathBuf)> {
        let ws = Workspace::attach(store, &store.load(&self.base)?, self.dir.clone())?;
        let p = ws.rootfs.clone();
        Ok((ws, p))
    }

    pub fn is_mounted(&self) -> bool {
        rt_image::fs::is_mount_point(&self.dir.join("bundle/rootfs")).unwrap_or(false)
    }

    /// `rt-build run NAME -- CMD...`: the exit status of the command.
    pub fn run(
        &self,
        store: &Store,
        runtime: &Path,
        argv: Vec<String>,
        network_host: bool,
    ) -> Result<std::process::ExitStatus> {
        let (ws, _) = self.mount(store)?;
        let state = self.state(store)?;
        let spec = container_config(
            &ws,
            &state.oci_config()?,
            &RunSpec {
                argv,
                env: Vec::new(),
                network_host,
                mounts: Vec::new(),
            },
        )?;
        crate::run::run(&ws, runtime, &spec)
    }

    /// `rt-build copy NAME SRC... DEST`: host paths into the rootfs.
    pub fn copy(&self, store: &Store, srcs: &[PathBuf], dest: &str) -> Result<()> {
        let (ws, _) = self.mount(store)?;
        let root = ws.root_fd()?;
        let workdir = self.config["config"]["WorkingDir"].as_str().unwrap_or("/");
        let abs = crate::steps::resolve_path(workdir, dest);
        let comps: Vec<Vec<u8>> = abs
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let into_dir = dest.ends_with('/')
            || srcs.len() > 1
            || rt_image::fs::open_dir_in_root(root.as_fd(), &crate::context::join(&comps)).is_ok();
        let opts = CopyOptions {
            owner: Some((0, 0)),
            chmod: None,
        };
        let none = |_: &[Vec<u8>]| crate::copy::Pick::Copy;
        for src in srcs {
            let src = std::path::absolute(src).ctx(|| format!("resolve {}", src.display()))?;
            let md = std::fs::symlink_metadata(&src).ctx(|| format!("stat {}", src.display()))?;
            let rel = vec![src
                .file_name()
                .map(|n| std::os::unix::ffi::OsStrExt::as_bytes(n).to_vec())
                .unwrap_or_default()];
            if md.is_dir() {
                let s = rt_image::fs::open_dir_nofollow(&src)?;
                let d = mkdir_p(root.as_fd(), &comps, (0, 0))?;
                copy_children(s.as_fd(), &rel, d.as_fd(), &abs, &opts, &none)?;
                continue;
            }
            let parent = rt_image::fs::open_dir_nofollow(src.parent().unwrap_or(Path::new("/")))?;
            let (dir, name) = if into_dir {
                (mkdir_p(root.as_fd(), &comps, (0, 0))?, rel[0].clone())
            } else {
                let (last, up) = comps
                    .split_last()
                    .ok_or_else(|| Error::Usage("cannot copy a file over /".into()))?;
                (mkdir_p(root.as_fd(), up, (0, 0))?, last.clone())
            };
            copy_entry(
                parent.as_fd(),
                &rel[0],
                &rel,
                dir.as_fd(),
                &name,
                &abs,
                &opts,
                &none,
            )?;
        }
        Ok(())
    }

    /// Changes the config the next commit records.
    pub fn configure(&mut self, c: &ConfigChange) -> Result<()> {
        let mut s = ImageState {
            config: self.config.clone(),
            layers: Vec::new(),
        };
        for kv in &c.env {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            s.set_env(k, v);
        }
        let rc = s.run_config();
        let mut put = |key: &str, v: Option<Value>| {
            if let Some(v) = v {
                rc.insert(key.to_owned(), v);
            }
        };
        put("Cmd", c.cmd.as_deref().map(|v| json!(command_words(v))));
        put(
            "Entrypoint",
            c.entrypoint.as_deref().map(|v| json!(command_words(v))),
        );
        put("WorkingDir", c.workingdir.as_ref().map(|v| json!(v)));
        put("User", c.user.as_ref().map(|v| json!(v)));
        put("StopSignal", c.stop_signal.as_ref().map(|v| json!(v)));
        let mut add = |key: &str, k: String, v: Value| {
            let m = rc.entry(key).or_insert_with(|| json!({}));
            if let Some(m) = m.as_object_mut() {
                m.insert(k, v);
            }
        };
        for kv in &c.labels {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            add("Labels", k.to_owned(), json!(v));
        }
        for p in &c.ports {
            let p = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            add("ExposedPorts", p, json!({}));
        }
        for v in &c.volumes {
            add("Volumes", v.clone(), json!({}));
        }
        self.config = s.config;
        self.save()
    }

    /// `rt-build commit NAME IMAGE`: the container's changes as a layer on
    /// its image, tagged; the container then stands on the new image.
    pub fn commit(
        &mut self,
        store: &Store,
        tag: Option<&str>,
        opts: &CommitOptions,
    ) -> Result<(ImageState, rt_image::oci::Descriptor)> {
        let (ws, _) = self.mount(store)?;
        let mut state = self.state(store)?;
        let changed = commit(store, ws, &mut state, opts)?;
        state.add_history(
            &build_time(opts.source_date_epoch),
            &format!("rt-build commit {}", self.name),
            !changed,
        );
        let desc = store.save(&state)?;
        if let Some(t) = tag {
            store.tag(&desc, t)?;
        }
        self.base = Digest::try_from(desc.digest())?;
        self.config = state.config.clone();
        self.save()?;
        Ok((state, desc))
    }

    /// `rt-build rm NAME`: unmounts and removes the container.
    pub fn remove(self, store: &Store) -> Result<()> {
        let rootfs = self.dir.join("bundle/rootfs");
        if rt_image::fs::is_mount_point(&rootfs)? {
            rt_image::store::unmount(&rootfs, false)?;
        }
        let _ = store;
        Ok(rt_image::fs::remove_tree(&self.dir)?)
    }
}
