//! `rt-build build`: the stages the target needs, in order, each step
//! looked up in the cache first (key: the parent image's ID, the
//! instruction after expansion, the build args it sees, the digest of what
//! it copies or mounts from the context) and run only on a miss.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use rt_image::layer::Compression;
use rt_image::oci::Descriptor;
use rt_image::Digest;
use serde_json::{json, Value};

use crate::commit::{commit, CommitOptions};
use crate::context::BuildContext;
use crate::dockerfile::expand::Expander;
use crate::dockerfile::lexer::Line;
use crate::dockerfile::parser::parse_line;
use crate::dockerfile::{parse, Dockerfile, Instruction, Step};
use crate::error::{Context as _, Error, Result};
use crate::image::{build_time, ImageState};
use crate::progress::{Mode, Progress};
use crate::run::check_interrupted;
use crate::steps::StageState;
use crate::store::Store;

pub struct BuildOptions {
    /// The Dockerfile; `-` reads it from standard input.
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub network_host: bool,
    pub runtime: PathBuf,
    pub store: PathBuf,
    pub compression: Compression,
    pub compression_level: Option<u32>,
    pub source_date_epoch: Option<u64>,
    pub progress: Mode,
}

pub struct Built {
    pub manifest: Descriptor,
    pub id: Digest,
    pub state: ImageState,
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build args every Dockerfile may use without declaring them.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub(crate) struct Builder<'a> {
    pub opts: &'a BuildOptions,
    pub store: Store,
    pub ctx: BuildContext,
    pub df: Dockerfile,
    pub global: BTreeMap<String, Option<String>>,
    pub results: HashMap<usize, ImageState>,
    pub progress: Progress,
    pub step_no: usize,
    pub total: usize,
    pub used_args: HashSet<String>,
    pub commit: CommitOptions,
}

pub fn build(opts: &BuildOptions) -> Result<Built> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Usage(
            "rt-build build needs root (overlay mounts, containers of the runtime)".into(),
        ));
    }
    let stdin = opts.dockerfile.as_os_str() == "-";
    let text = if stdin {
        std::io::read_to_string(std::io::stdin()).ctx(|| "read the Dockerfile from stdin")?
    } else {
        std::fs::read_to_string(&opts.dockerfile)
            .ctx(|| format!("read {}", opts.dockerfile.display()))?
    };
    let name = if stdin {
        "<stdin>".to_owned()
    } else {
        opts.dockerfile.display().to_string()
    };
    let df = parse(&name, &text)?;
    let store = Store::open(&opts.store)?;
    store.clean_stale()?;
    let ctx = BuildContext::open(&opts.context, &opts.dockerfile)?;
    let mut b = Builder {
        opts,
        store,
        ctx,
        df,
        global: BTreeMap::new(),
        results: HashMap::new(),
        progress: Progress::new(opts.progress),
        step_no: 0,
        total: 0,
        used_args: HashSet::new(),
        commit: CommitOptions {
            compression: opts.compression,
            level: opts.compression_level,
            source_date_epoch: opts.source_date_epoch,
        },
    };
    b.global_args()?;
    let target = b.target()?;
    let order = b.needed(target)?;
    b.total = order.iter().map(|&i| 1 + b.df.stages[i].steps.len()).sum();
    for i in order {
        let state = b.stage(i)?;
        b.results.insert(i, state);
    }
    let state = b.results.remove(&target).expect("the target was built");
    let unused: Vec<&str> = opts
        .build_args
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !b.used_args.contains(*k) && !PROXY_ARGS.contains(k))
        .collect();
    if !unused.is_empty() {
        b.progress.warn(&format!(
            "one or more build args were not consumed: {}",
            unused.join(", ")
        ));
    }
    let manifest = b.store.save(&state)?;
    for t in &opts.tags {
        b.store.tag(&manifest, t)?;
        b.progress
            .note(&format!("COMMIT {}", crate::store::normalize(t)));
    }
    Ok(Built {
        manifest,
        id: state.id(),
        state,
    })
}

impl Builder<'_> {
    pub fn err(&self, line: usize, reason: impl Into<String>) -> Error {
        Error::Dockerfile {
            file: self.df.file.clone(),
            line,
            reason: reason.into(),
        }
    }

    pub fn build_arg(&self, name: &str) -> Option<String> {
        self.opts
            .build_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn global_args(&mut self) -> Result<()> {
        // BuildKit's automatic platform args: this machine's, for FROM
        // lines and for stages that declare them (`ARG TARGETARCH`).
        let p = rt_image::Platform::host();
        let full = match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        };
        for side in ["BUILD", "TARGET"] {
            let put = |g: &mut BTreeMap<String, Option<String>>, k: &str, v: &str| {
                g.insert(format!("{side}{k}"), Some(v.to_owned()));
            };
            put(&mut self.global, "PLATFORM", &full);
            put(&mut self.global, "OS", &p.os);
            put(&mut self.global, "ARCH", &p.architecture);
            put(
                &mut self.global,
                "VARIANT",
                p.variant.as_deref().unwrap_or(""),
            );
        }
        for step in self.df.global_args.clone() {
            let Instruction::Arg(list) = &step.instruction else {
                continue;
            };
            for (k, default) in list {
                let value = match self.build_arg(k) {
                    Some(v) => {
                        self.used_args.insert(k.clone());
                        Some(v)
                    }
                    None => match default {
                        Some(d) => Some(self.expand_global(step.line, d)?),
                        None => None,
                    },
                };
                self.global.insert(k.clone(), value);
            }
        }
        Ok(())
    }

    /// Expands with the global ARGs (what FROM lines see).
    pub fn expand_global(&self, line: usize, raw: &str) -> Result<String> {
        let vars = |n: &str| self.global.get(n).cloned().flatten();
        Expander {
            escape: self.df.escape,
            vars: &vars,
        }
        .word(raw)
        .map_err(|e| self.err(line, e))
    }

    /// The stage `name` (an alias or an index) defined before `before`.
    pub fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
    }

    fn target(&self) -> Result<usize> {
        match &self.opts.target {
            None => Ok(self.df.stages.len() - 1),
            Some(t) => self.stage_ref(t, self.df.stages.len()).ok_or_else(|| {
                Error::Usage(format!("--target {t}: no such stage in {}", self.df.file))
            }),
        }
    }

    /// The stages `target` depends on, then itself, each once, in order.
    fn needed(&self, target: usize) -> Result<Vec<usize>> {
        let mut seen = HashSet::new();
        let mut stack = vec![target];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let s = &self.df.stages[i];
            let mut refs = Vec::new();
            if let Instruction::From { image, .. } = &s.from.instruction {
                refs.push(self.expand_global(s.from.line, image)?);
            }
            for step in &s.steps {
                match &step.instruction {
                    Instruction::Copy(c) => refs.extend(c.from.clone()),
                    Instruction::Run(r) => {
                        for m in &r.mounts {
                            for part in m.split(',') {
                                if let Some(f) = part.strip_prefix("from=") {
                                    refs.push(f.to_owned());
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            for r in refs {
                if let Some(d) = self.stage_ref(&r, i) {
                    stack.push(d);
                }
            }
        }
        let mut v: Vec<usize> = seen.into_iter().collect();
        v.sort();
        Ok(v)
    }

    fn stage(&mut self, idx: usize) -> Result<ImageState> {
        let stage = self.df.stages[idx].clone();
        let Instruction::From {
            image, platform, ..
        } = &stage.from.instruction
        else {
            unreachable!("a stage starts with FROM");
        };
        self.step_no += 1;
        self.progress
            .step(self.step_no, self.total, &stage.from.text);
        let t0 = Instant::now();
        if let Some(p) = platform {
            let p = self.expand_global(stage.from.line, p)?;
            let want: rt_image::Platform = p
                .parse()
                .map_err(|e: rt_image::Error| self.err(stage.from.line, e.to_string()))?;
            let host = rt_image::Platform::host();
            if want.os != host.os || want.architecture != host.architecture {
                return Err(self.err(
                    stage.from.line,
                    format!("--platform={p}: this machine builds for {host} only"),
                ));
            }
        }
        let name = self.expand_global(stage.from.line, image)?;
        let mut state = self
            .base(&name, idx)
            .map_err(|e| self.err(stage.from.line, format!("FROM {name}: {e}")))?;
        // As buildah and BuildKit do: an image without PATH gets the default.
        if !state.env().iter().any(|(k, _)| k == "PATH") {
            let mut env = state.strings("Env");
            env.insert(0, DEFAULT_PATH.to_owned());
            state.run_config().insert("Env".into(), json!(env));
        }
        self.progress.done(&state.id().to_string(), t0.elapsed());
        let mut st = StageState::new(state, idx);
        // ONBUILD triggers of the base run first, and are not inherited.
        let triggers = st.state.strings("OnBuild");
        if !triggers.is_empty() {
            st.state.run_config().remove("OnBuild");
            for t in triggers {
                let line = Line {
                    line: stage.from.line,
                    text: t.clone(),
                    heredocs: Vec::new(),
                };
                let step = parse_line(&line, self.df.escape).map_err(|e| {
                    self.err(stage.from.line, format!("ONBUILD trigger {t:?}: {e}"))
                })?;
                self.progress.note(&format!("ONBUILD {t}"));
                self.step(&mut st, &step)?;
            }
        }
        for step in &stage.steps {
            check_interrupted()?;
            self.step_no += 1;
            self.progress.step(self.step_no, self.total, &step.text);
            self.step(&mut st, step)?;
        }
        Ok(st.state)
    }

    /// The image a FROM (or COPY --from) names.
    pub fn base(&self, name: &str, before: usize) -> Result<ImageState> {
        if name != "scratch" {
            if let Some(i) = self.stage_ref(name, before) {
                return self
                    .results
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| Error::Usage(format!("stage {name} was not built")));
            }
        }
        self.store.image(name)
    }

    /// Runs `exec` unless the cache has the result of the step `key`
    /// describes on `st`'s current image.
    pub fn cached(
        &mut self,
        st: &mut StageState,
        key: &str,
        exec: impl FnOnce(&mut Self, &mut StageState) -> Result<ImageState>,
    ) -> Result<()> {
        let t0 = Instant::now();
        let parent = st.state.id();
        let k = Digest::sha256(format!("{parent}\n{key}").as_bytes());
        if !self.opts.no_cache {
            if let Some(m) = self.store.cache_get(&k) {
                if let Ok(s) = self.store.load(&m) {
                    st.state = s;
                    self.progress
                        .cached(&st.state.id().to_string(), t0.elapsed());
                    return Ok(());
                }
            }
        }
        let new = exec(self, st)?;
        let desc = self.store.save(&new)?;
        self.store
            .cache_put(&k, &Digest::try_from(desc.digest())?)?;
        st.state = new;
        self.progress.done(&st.state.id().to_string(), t0.elapsed());
        Ok(())
    }

    /// A step that only changes the config.
    pub fn config_step(
        &mut self,
        st: &mut StageState,
        shown: &str,
        change: impl FnOnce(&mut ImageState),
    ) -> Result<()> {
        let created = build_time(self.opts.source_date_epoch);
        let shown = shown.to_owned();
        self.cached(st, &format!("config\n{shown}"), move |_, st| {
            let mut s = st.state.clone();
            change(&mut s);
            s.add_history(&created, &format!("/bin/sh -c #(nop) {shown}"), true);
            Ok(s)
        })
    }

    /// Commits a workspace, recording history either way.
    pub fn finish_fs_step(
        &self,
        mut state: ImageState,
        ws: crate::workspace::Workspace,
        created_by: &str,
    ) -> Result<ImageState> {
        let pb = self.progress.spinner("committing layer");
        let changed = commit(&self.store, ws, &mut state, &self.commit)?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        let created = build_time(self.opts.source_date_epoch);
        state.add_history(&created, created_by, !changed);
        Ok(state)
    }

    /// Runs one step; an error that does not name its line yet gets the
    /// step's `FILE:LINE` and instruction.
    fn step(&mut self, st: &mut StageState, step: &Step) -> Result<()> {
        crate::steps::execute(self, st, step).map_err(|e| match e {
            Error::Dockerfile { .. } | Error::StepFailed { .. } | Error::Interrupted => e,
            Error::Unsafe(m) if m.starts_with(&self.df.file) => Error::Unsafe(m),
            Error::Unsafe(m) => Error::Unsafe(format!(
                "{}:{}: {}: {m}",
                self.df.file,
                step.line,
                keyword(&step.text)
            )),
            e => self.err(step.line, format!("{}: {e}", keyword(&step.text))),
        })
    }
}

fn keyword(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Docker's Healthcheck durations are nanoseconds.
pub fn duration_ns(s: &str) -> Result<u64, String> {
    humantime::parse_duration(s)
        .map(|d| d.as_nanos() as u64)
        .map_err(|e| format!("{s}: {e}"))
}

pub fn set(state: &mut ImageState, key: &str, v: Value) {
    state.run_config().insert(key.to_owned(), v);
}

pub fn empty_obj() -> Value {
    json!({})
}
