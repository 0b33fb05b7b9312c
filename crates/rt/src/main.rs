//! `rt`: an OCI runtime with runc's command line. This crate only defines arguments,
//! sets up logging and prints errors; the work is in `rt-runtime`.

mod cli;
mod commands;
mod logger;

use clap::Parser as _;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line, like every other error of rt (callers show stderr verbatim).
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid arguments"));
            std::process::exit(1);
        }
    };
    // The descriptors the caller hands to the container are 3.. (LISTEN_FDS, then
    // --preserve-fds); hold the numbers it left free before rt opens anything.
    let passed = match &cli.command {
        cli::Command::Create(c) => Some(c.preserve_fds),
        cli::Command::Run(r) => Some(r.create.preserve_fds),
        cli::Command::Exec(e) => Some(e.preserve_fds),
        _ => None,
    };
    if let Some(n) = passed {
        let listen: u32 = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if let Err(e) = rt_sys::fd::reserve_unopened(3, n.saturating_add(listen).min(65536)) {
            eprintln!("rt: reserve the descriptors of --preserve-fds: {e}");
            std::process::exit(1);
        }
    }
    // Commands that start processes in a container run from a sealed copy of rt, so
    // the container can never reach (and overwrite) the binary on the host.
    if matches!(
        cli.command,
        cli::Command::Create(_) | cli::Command::Run(_) | cli::Command::Exec(_)
    ) {
        if let Err(e) = rt_runtime::exeseal::ensure_sealed() {
            eprintln!("rt: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = logger::init(&cli.global) {
        eprintln!("rt: {e:#}");
        std::process::exit(1);
    }
    match commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = one_line(&e);
            log::error!("{msg}");
            if logger::logs_to_file() {
                eprintln!("{msg}");
            }
            std::process::exit(1);
        }
    }
}

/// The error and its causes on one line, skipping causes the message already quotes
/// (library errors include their source in their own text).
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace('\n', " ")
}
