//! rt-unpack: an OCI image to a runtime bundle. Argument definitions and
//! error printing only; the work is rt-image's.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rt_image::unpack::Progress;
use rt_image::{ConfigOptions, Image, ImageRef, Platform, UnpackOptions};

/// Unpack an OCI image into a runtime bundle (a rootfs and a config.json)
/// that `rt run` and runc run.
#[derive(Parser, Debug)]
#[command(
    name = "rt-unpack",
    version,
    after_help = "SOURCE is oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:TAG|:@N].\n\
                  REF is a tag (org.opencontainers.image.ref.name, default latest) or a digest.\n\
                  ARGS after -- replace the image's Cmd."
)]
struct Cli {
    /// The image (see below).
    #[arg(required_unless_present = "cleanup")]
    source: Option<String>,
    /// The bundle directory to create (absent or empty).
    #[arg(required_unless_present = "cleanup")]
    bundle: Option<PathBuf>,
    /// Replace the image's Cmd.
    #[arg(last = true)]
    args: Vec<String>,

    /// Keep layers extracted once in DIR and mount the rootfs as an overlay of them.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Unmount a bundle's overlay rootfs and remove the bundle.
    #[arg(long, value_name = "BUNDLE", conflicts_with_all = ["source", "store"])]
    cleanup: Option<PathBuf>,
    /// Make a config for a user namespace (as `rt spec --rootless`).
    #[arg(long)]
    rootless: bool,
    /// Replace the image's Entrypoint (repeat for more words); drops its Cmd.
    #[arg(long, value_name = "WORD", allow_hyphen_values = true)]
    entrypoint: Vec<String>,
    /// Add or replace an environment variable.
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The container's hostname.
    #[arg(long)]
    hostname: Option<String>,
    /// Replace the image's User (user[:group], names or ids).
    #[arg(long)]
    user: Option<String>,
    /// Replace the image's WorkingDir.
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Mount the root filesystem read-only (runc's default).
    #[arg(long)]
    readonly: bool,
    /// The platform to pick from an image index (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Sync the filesystem before the bundle is put in place.
    #[arg(long)]
    fsync: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn layer(&self, index: usize, total: usize, _size: Option<u64>, cached: bool) {
        let what = if cached { " (stored)" } else { "" };
        self.0
            .set_message(format!("layer {}/{total}{what}", index + 1));
    }
    fn bytes(&self, n: u64) {
        self.0.inc(n);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(bundle) = &cli.cleanup {
        return rt_image::cleanup(bundle).with_context(|| format!("cleanup {}", bundle.display()));
    }
    let (Some(source), Some(bundle)) = (&cli.source, &cli.bundle) else {
        unreachable!("clap requires SOURCE and BUNDLE without --cleanup");
    };
    let r: ImageRef = source.parse()?;
    let platform = match &cli.platform {
        Some(p) => p.parse()?,
        None => Platform::host(),
    };
    let image = Image::open(&r, &platform)?;
    let rootless = cli.rootless.then(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
        let total: u64 = image.layers.iter().filter_map(|l| l.size).sum();
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg:20} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template"),
        );
        pb
    });
    let opts = UnpackOptions {
        config: ConfigOptions {
            rootless,
            entrypoint: (!cli.entrypoint.is_empty()).then(|| cli.entrypoint.clone()),
            cmd: (!cli.args.is_empty()).then(|| cli.args.clone()),
            env: cli.env.clone(),
            hostname: cli.hostname.clone(),
            terminal: cli.tty,
            readonly: cli.readonly,
            user: cli.user.clone(),
            cwd: cli.cwd.clone(),
        },
        store: cli.store.clone(),
        fsync: cli.fsync,
        progress: bar.clone().map(|b| Box::new(Bar(b)) as Box<dyn Progress>),
    };
    let result = rt_image::unpack(&image, bundle, &opts);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = result.with_context(|| format!("unpack {r} to {}", bundle.display()))?;
    for w in &report.warnings {
        eprintln!("rt-unpack: warning: {w}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rt-unpack: {e:#}");
            ExitCode::FAILURE
        }
    }
}
