//! What each instruction does to the image of its stage. Config
//! instructions change the config only; RUN, COPY, ADD and WORKDIR mount a
//! [`Workspace`] over the image, change its files, and commit the upper
//! directory as a layer (none when nothing changed).

use std::collections::BTreeMap;
use std::os::fd::AsFd;

use serde_json::{json, Map, Value};

use crate::build::{duration_ns, set, Builder, PROXY_ARGS};
use crate::copy::mkdir_p;
use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Command, Instruction, Step};
use crate::error::Result;
use crate::image::ImageState;
use crate::workspace::Workspace;

mod copy;
pub(crate) mod run;

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
        Instruction::Run(r) => run::run(b, st, step, r),
        Instruction::Copy(c) => copy::copy(b, st, step, c),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_workdir() {
        assert_eq!(resolve_path("/app", "sub"), "/app/sub");
        assert_eq!(resolve_path("/app/", "./a/../b/"), "/app/b");
        assert_eq!(resolve_path("/app", "/abs"), "/abs");
        assert_eq!(resolve_path("/", "../../x"), "/x");
        assert_eq!(resolve_path("/a", "."), "/a");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real/dir", r.join("real/up")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("host")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        let fd = rt_image::fs::open_dir_nofollow(r).unwrap();
        let res = |p: &str| {
            let c = run::resolve_in_root(fd.as_fd(), &comps(p));
            format!("/{}", String::from_utf8_lossy(&crate::context::join(&c)))
        };
        assert_eq!(res("/abs/dir/x"), "/real/dir/x");
        assert_eq!(res("/real/up/y"), "/real/dir/y");
        assert_eq!(res("/host/passwd"), "/etc/passwd");
        assert_eq!(res("/abs/missing/x"), "/real/missing/x");
        // a loop ends (as a path inside the root) instead of spinning
        assert!(res("/loop/x").starts_with('/'));
    }
}
