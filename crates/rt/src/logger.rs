//! Log lines as runc writes them: logrus text (`time="..." level=error msg="..."`) or
//! JSON lines (`{"level":"error","msg":"...","time":"..."}`), which containerd and
//! conmon read back for the last error.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::cli::{Global, LogFormat};

struct Logger {
    out: Mutex<Option<File>>,
    format: LogFormat,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(g: &Global) -> anyhow::Result<()> {
    let out = match &g.log {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open log file {}", path.display()))?,
        ),
        None => None,
    };
    let logger = LOGGER.get_or_init(|| Logger {
        out: Mutex::new(out),
        format: g.log_format,
    });
    log::set_logger(logger).map_err(|e| anyhow::anyhow!("{e}"))?;
    log::set_max_level(if g.debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
    Ok(())
}

/// With a log file, errors also go to stderr; without one, stderr is the log.
pub fn logs_to_file() -> bool {
    LOGGER
        .get()
        .map(|l| l.out.lock().map(|o| o.is_some()).unwrap_or(false))
        .unwrap_or(false)
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

impl Logger {
    fn line(&self, level: Level, msg: &str) -> String {
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        match self.format {
            LogFormat::Json => {
                let v = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
                format!("{v}\n")
            }
            LogFormat::Text => format!(
                "time={:?} level={} msg={}\n",
                time,
                level_name(level),
                serde_json::Value::String(msg.to_string())
            ),
        }
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match out.as_mut() {
            // One write per line, so lines of concurrent rt processes never interleave.
            Some(f) => {
                let _ = f.write_all(self.line(r.level(), &msg).as_bytes());
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
        }
    }

    fn flush(&self) {}
}
