//! rt-build: build OCI images from Dockerfiles with rt (or runc, crun)
//! running each step. Argument definitions and error printing only; the
//! work is rt-builder's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rt_builder::container::{ConfigChange, Container};
use rt_builder::layer::Compression;
use rt_builder::output::Output;
use rt_builder::progress::Mode;
use rt_builder::store::{Store, DEFAULT_STORE};
use rt_builder::BuildOptions;

#[derive(Parser, Debug)]
#[command(
    name = "rt-build",
    version,
    about = "Build OCI images from Dockerfiles, each RUN a container of rt (or runc, crun)"
)]
struct Cli {
    /// The image store: an OCI image layout plus extracted layers and the build cache.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_STORE)]
    store: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build an image from a Dockerfile (as `buildah bud` / `docker build`).
    #[command(visible_alias = "bud")]
    Build(BuildArgs),
    /// List the store's tagged images.
    Images {
        /// Print only image IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove tags from the store.
    Rmi {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Give an image another name.
    Tag { image: String, names: Vec<String> },
    /// Print an image's config (or manifest) as JSON.
    Inspect {
        image: String,
        /// Print the manifest instead of the config.
        #[arg(long)]
        manifest: bool,
    },
    /// Write an image to oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME].
    Save { image: String, dest: String },
    /// Create a working container from IMAGE (a store name, oci:, oci-archive:, docker-archive: or scratch).
    From {
        image: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Run a command in a working container.
    Run {
        container: String,
        /// Network: none or host.
        #[arg(long, default_value = "none", value_parser = ["none", "host"])]
        network: String,
        /// A runc-compatible runtime (default: the rt beside rt-build).
        #[arg(long, value_name = "PATH")]
        runtime: Option<PathBuf>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Change the config a working container's commit records.
    Config(ConfigArgs),
    /// Copy host files into a working container (DEST relative to its WorkingDir).
    Copy {
        container: String,
        #[arg(required = true, num_args = 2..)]
        paths: Vec<PathBuf>,
    },
    /// Commit a working container's changes as an image.
    Commit {
        container: String,
        image: Option<String>,
        /// Layer compression: gzip or zstd.
        #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd", "none"])]
        compression: String,
    },
    /// List working containers.
    Containers,
    /// Remove working containers (unmounting them).
    Rm {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Mount a working container's rootfs and print its path.
    Mount { container: String },
    /// Unmount a working container's rootfs.
    Umount { container: String },
    /// Bring an image from oci:, oci-archive: or docker-archive: into the store.
    #[command(visible_alias = "pull")]
    Load {
        source: String,
        /// Name to give it (default: the names the source gives it).
        #[arg(short, long)]
        tag: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct ConfigArgs {
    container: String,
    /// KEY=VALUE (repeatable).
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// The command, as a JSON array or a shell command.
    #[arg(long)]
    cmd: Option<String>,
    /// The entrypoint, as a JSON array or a shell command.
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(long)]
    workingdir: Option<String>,
    #[arg(long)]
    user: Option<String>,
    /// KEY=VALUE (repeatable).
    #[arg(long, short = 'l')]
    label: Vec<String>,
    /// PORT[/PROTO] (repeatable).
    #[arg(long, short = 'p')]
    port: Vec<String>,
    /// A volume path (repeatable).
    #[arg(long, short = 'v')]
    volume: Vec<String>,
    #[arg(long)]
    stop_signal: Option<String>,
}

fn compression(s: &str) -> Compression {
    match s {
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        _ => Compression::Gzip,
    }
}

fn configure(store: &Path, a: ConfigArgs) -> Result<()> {
    let s = Store::open(store)?;
    let mut c = Container::open(&s, &a.container)?;
    c.configure(&ConfigChange {
        env: a.env,
        cmd: a.cmd,
        entrypoint: a.entrypoint,
        workingdir: a.workingdir,
        user: a.user,
        labels: a.label,
        ports: a.port,
        volumes: a.volume,
        stop_signal: a.stop_signal,
    })?;
    Ok(())
}

#[derive(clap::Args, Debug)]
struct BuildArgs {
    /// The Dockerfile, `-` for stdin (default: CONTEXT/Containerfile, then CONTEXT/Dockerfile).
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Name the result NAME[:TAG] in the store (repeatable).
    #[arg(short, long, value_name = "NAME[:TAG]")]
    tag: Vec<String>,
    /// Set a build argument (KEY alone takes the value from the environment).
    #[arg(long, value_name = "KEY=VALUE")]
    build_arg: Vec<String>,
    /// Build this stage (and what it needs) rather than the last.
    #[arg(long)]
    target: Option<String>,
    /// Run every step, ignoring the cache.
    #[arg(long)]
    no_cache: bool,
    /// Network of RUN steps: none (a new empty network namespace) or host.
    #[arg(long, default_value = "none", value_parser = ["none", "host"])]
    network: String,
    /// A runc-compatible runtime (default: the rt beside rt-build).
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// Also write the image to oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME] (repeatable).
    #[arg(long, short = 'o', value_name = "DEST")]
    output: Vec<String>,
    /// auto, plain or quiet.
    #[arg(long, default_value = "auto")]
    progress: Mode,
    /// Print only the image ID (same as --progress quiet).
    #[arg(short, long)]
    quiet: bool,
    /// Layer compression: gzip or zstd.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd", "none"])]
    compression: String,
    /// Compression level (gzip 0-9, default 1; zstd 1-22, default 3).
    #[arg(long, value_name = "N")]
    compression_level: Option<u32>,
    /// Clamp file times and record this as the creation time (default: $SOURCE_DATE_EPOCH).
    #[arg(long, value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    /// Write the image ID (sha256:...) to FILE.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// The build context directory.
    #[arg(default_value = ".")]
    context: PathBuf,
}

fn dockerfile(a: &BuildArgs) -> Result<PathBuf> {
    if let Some(f) = &a.file {
        return Ok(f.clone());
    }
    for n in ["Containerfile", "Dockerfile"] {
        let p = a.context.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no Containerfile or Dockerfile in {} (give one with -f)",
        a.context.display()
    )
}

fn build(store: &Path, a: BuildArgs) -> Result<()> {
    let file = dockerfile(&a)?;
    let mut build_args = Vec::new();
    for kv in &a.build_arg {
        match kv.split_once('=') {
            Some((k, v)) => build_args.push((k.to_owned(), v.to_owned())),
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.push((kv.clone(), v));
                }
            }
        }
    }
    let outputs: Vec<Output> = a
        .output
        .iter()
        .map(|o| o.parse())
        .collect::<Result<_, _>>()?;
    let epoch = match a.source_date_epoch {
        Some(e) => Some(e),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(s) if !s.is_empty() => Some(
                s.parse()
                    .with_context(|| format!("SOURCE_DATE_EPOCH={s}: not a number of seconds"))?,
            ),
            _ => None,
        },
    };
    let opts = BuildOptions {
        dockerfile: file,
        context: a.context.clone(),
        tags: a.tag.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        network_host: a.network == "host",
        runtime: a
            .runtime
            .clone()
            .unwrap_or_else(rt_builder::run::default_runtime),
        store: store.to_owned(),
        compression: compression(&a.compression),
        compression_level: a.compression_level,
        source_date_epoch: epoch,
        progress: if a.quiet { Mode::Quiet } else { a.progress },
    };
    let built = rt_builder::build(&opts)?;
    if !outputs.is_empty() {
        let s = Store::open(store)?;
        let progress = rt_builder::progress::Progress::new(opts.progress);
        for (o, raw) in outputs.iter().zip(&a.output) {
            let pb = progress.spinner(&format!("writing {raw}"));
            let r =
                rt_builder::output::write(&s, &built.state, o, a.tag.first().map(String::as_str));
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            r.with_context(|| format!("write the image to {raw}"))?;
            progress.note(&format!("Wrote {raw}"));
        }
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, built.id.to_string())
            .with_context(|| format!("write {}", f.display()))?;
    }
    println!("{}", built.id.hex());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Build(a) => build(&cli.store, a),
        Cmd::Images { quiet } => {
            let s = Store::open(&cli.store)?;
            if !quiet {
                println!("{:<40} {:<14} {:>6}", "NAME", "IMAGE ID", "LAYERS");
            }
            for t in s.images()? {
                let st = s.load(&t.manifest)?;
                let id = st.id();
                if quiet {
                    println!("{}", id.hex());
                } else {
                    println!(
                        "{:<40} {:<14} {:>6}",
                        t.name,
                        &id.hex()[..12],
                        st.layers.len()
                    );
                }
            }
            Ok(())
        }
        Cmd::Rmi { names } => {
            let s = Store::open(&cli.store)?;
            for n in names {
                if !s.untag(&n)? {
                    bail!("no image {n:?} in the store {}", cli.store.display());
                }
                println!("untagged {}", rt_builder::store::normalize(&n));
            }
            Ok(())
        }
        Cmd::Tag { image, names } => {
            let s = Store::open(&cli.store)?;
            let (_, st) = s.find(&image)?;
            let desc = s.save(&st)?;
            for n in names {
                s.tag(&desc, &n)?;
            }
            Ok(())
        }
        Cmd::Inspect { image, manifest } => {
            let s = Store::open(&cli.store)?;
            let (t, st) = s.find(&image)?;
            let v: serde_json::Value = if manifest {
                serde_json::from_slice(&s.read_blob(&t.manifest)?)?
            } else {
                st.config.clone()
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Save { image, dest } => {
            let s = Store::open(&cli.store)?;
            let (t, st) = s.find(&image)?;
            let o: Output = dest.parse()?;
            rt_builder::output::write(&s, &st, &o, Some(&t.name))?;
            Ok(())
        }
        Cmd::From { image, name } => {
            let s = Store::open(&cli.store)?;
            let st = s.image(&image)?;
            let c = Container::create(&s, &image, st, name.as_deref())?;
            println!("{}", c.name);
            Ok(())
        }
        Cmd::Run {
            container,
            network,
            runtime,
            command,
        } => {
            let s = Store::open(&cli.store)?;
            let c = Container::open(&s, &container)?;
            let runtime = runtime.unwrap_or_else(rt_builder::run::default_runtime);
            let status = c.run(&s, &runtime, command.clone(), network == "host")?;
            if !status.success() {
                bail!("{command:?} in {container}: {status}");
            }
            Ok(())
        }
        Cmd::Config(a) => configure(&cli.store, a),
        Cmd::Copy {
            container,
            mut paths,
        } => {
            let s = Store::open(&cli.store)?;
            let c = Container::open(&s, &container)?;
            let dest = paths.pop().expect("clap requires two paths");
            c.copy(&s, &paths, &dest.to_string_lossy())?;
            Ok(())
        }
        Cmd::Commit {
            container,
            image,
            compression: comp,
        } => {
            let s = Store::open(&cli.store)?;
            let mut c = Container::open(&s, &container)?;
            let epoch = std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok());
            let (st, _) = c.commit(
                &s,
                image.as_deref(),
                &rt_builder::commit::CommitOptions {
                    compression: compression(&comp),
                    level: None,
                    source_date_epoch: epoch,
                },
            )?;
            println!("{}", st.id().hex());
            Ok(())
        }
        Cmd::Containers => {
            let s = Store::open(&cli.store)?;
            println!("{:<36} {:<8} {:<14} IMAGE", "NAME", "MOUNTED", "BASE");
            for c in Container::list(&s)? {
                let mounted = if c.is_mounted() { "yes" } else { "no" };
                println!(
                    "{:<36} {:<8} {:<14} {}",
                    c.name,
                    mounted,
                    &c.base.hex()[..12],
                    c.image
                );
            }
            Ok(())
        }
        Cmd::Rm { containers } => {
            let s = Store::open(&cli.store)?;
            for n in containers {
                Container::open(&s, &n)?.remove(&s)?;
                println!("{n}");
            }
            Ok(())
        }
        Cmd::Mount { container } => {
            let s = Store::open(&cli.store)?;
            let c = Container::open(&s, &container)?;
            let (_ws, p) = c.mount(&s)?;
            println!("{}", p.display());
            Ok(())
        }
        Cmd::Umount { container } => {
            let s = Store::open(&cli.store)?;
            let c = Container::open(&s, &container)?;
            let rootfs = c.dir.join("bundle/rootfs");
            if rt_builder::workspace::is_mounted(&rootfs) {
                rt_builder::workspace::unmount(&rootfs)?;
            }
            Ok(())
        }
        Cmd::Load { source, tag } => {
            let s = Store::open(&cli.store)?;
            let r: rt_builder::ImageRef = source.parse()?;
            let st = s.import(&r)?;
            let desc = s.save(&st)?;
            let names = if tag.is_empty() {
                Store::source_names(&r)
            } else {
                tag
            };
            for n in &names {
                s.tag(&desc, n)?;
                eprintln!("Loaded image: {}", rt_builder::store::normalize(n));
            }
            println!("{}", st.id().hex());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = rt_builder::run::seal_fds().and_then(|()| rt_builder::run::catch_signals()) {
        eprintln!("rt-build: {e}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rt-build: {e:#}");
            ExitCode::FAILURE
        }
    }
}
