//! What the user sees: `STEP n/N: INSTRUCTION` lines, cache hits and the
//! time each step took (`plain`, and `auto`, which adds a live line on a
//! terminal for layer commits and exports); `quiet` prints only the ID.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Plain,
    Quiet,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "auto" | "tty" => Ok(Mode::Auto),
            "plain" => Ok(Mode::Plain),
            "quiet" => Ok(Mode::Quiet),
            _ => Err(format!("--progress {s}: expected auto, plain or quiet")),
        }
    }
}

pub struct Progress {
    mode: Mode,
    tty: bool,
    started: Instant,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            tty: mode == Mode::Auto && std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    pub fn quiet(&self) -> bool {
        self.mode == Mode::Quiet
    }

    fn line(&self, s: &str) {
        if !self.quiet() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    }

    pub fn step(&self, n: usize, total: usize, text: &str) {
        let one_line: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        self.line(&format!("STEP {n}/{total}: {one_line}"));
    }

    pub fn cached(&self, id: &str, took: Duration) {
        self.line(&format!("--> Using cache {} ({})", short(id), secs(took)));
    }

    pub fn done(&self, id: &str, took: Duration) {
        self.line(&format!("--> {} ({})", short(id), secs(took)));
    }

    pub fn note(&self, s: &str) {
        self.line(s);
    }

    pub fn warn(&self, s: &str) {
        eprintln!("WARN: {s}");
    }

    pub fn total(&self) -> Duration {
        self.started.elapsed()
    }

    /// A live line on a terminal for something that may take a while.
    pub fn spinner(&self, what: &str) -> Option<ProgressBar> {
        if !self.tty {
            return None;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"));
        pb.set_message(what.to_owned());
        pb.enable_steady_tick(Duration::from_millis(120));
        Some(pb)
    }
}

pub fn short(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
