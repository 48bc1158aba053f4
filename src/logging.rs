//! fail2ban's logging levels and line format on top of the `log` crate.
//!
//! fail2ban uses Python's logging with extra levels (NOTICE 25, MSG 18,
//! TRACEDEBUG 7, HEAVYDEBUG 5) and a fixed line format
//! (`2024-01-01 12:00:00,123 fail2ban.filter         [123]: WARNING ...`).
//! Messages are logged with the `log` crate; the target names the fail2ban
//! logger (`fail2ban.filter`), and the Python level travels in the record's
//! level (coarse) plus, for the extra levels, a `py_level` key.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// Python logging levels used by fail2ban.
pub const CRITICAL: i64 = 50;
pub const ERROR: i64 = 40;
pub const WARNING: i64 = 30;
pub const NOTICE: i64 = 25;
pub const INFO: i64 = 20;
pub const MSG: i64 = 18;
pub const DEBUG: i64 = 10;
pub const TRACEDEBUG: i64 = 7;
pub const HEAVYDEBUG: i64 = 5;

/// fail2ban's `str2LogLevel`: a number, or a level name (case-insensitive).
pub fn str2loglevel(value: &str) -> Result<i64, String> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        return value
            .parse()
            .map_err(|_| format!("Invalid log level {}", crate::pyvalue::str_repr(value)));
    }
    Ok(match value.to_uppercase().as_str() {
        "CRITICAL" | "FATAL" => CRITICAL,
        "ERROR" => ERROR,
        "WARNING" | "WARN" => WARNING,
        "NOTICE" => NOTICE,
        "INFO" => INFO,
        "MSG" => MSG,
        "DEBUG" => DEBUG,
        "TRACEDEBUG" => TRACEDEBUG,
        "HEAVYDEBUG" => HEAVYDEBUG,
        "NOTSET" => 0,
        _ => {
            return Err(format!(
                "Invalid log level {}",
                crate::pyvalue::str_repr(value)
            ));
        }
    })
}

/// Python's level name as printed by `%(levelname)s`.
pub fn level_name(level: i64) -> String {
    match level {
        CRITICAL => "CRITICAL".into(),
        ERROR => "ERROR".into(),
        WARNING => "WARNING".into(),
        NOTICE => "NOTICE".into(),
        INFO => "INFO".into(),
        MSG => "MSG".into(),
        DEBUG => "DEBUG".into(),
        TRACEDEBUG => "TRACE".into(),
        HEAVYDEBUG => "HEAVY".into(),
        l => format!("Level {l}"),
    }
}

fn from_log_level(l: log::Level) -> i64 {
    match l {
        log::Level::Error => ERROR,
        log::Level::Warn => WARNING,
        log::Level::Info => INFO,
        log::Level::Debug => DEBUG,
        log::Level::Trace => TRACEDEBUG,
    }
}

/// Where log lines go.
pub enum Sink {
    Stdout,
    Stderr,
}

struct Logger {
    level: AtomicI64,
    sink: Mutex<Sink>,
    /// Prefix format choice: fail2ban-regex's short `X: message` form.
    short_level: bool,
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        from_log_level(m.level()) >= self.level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &log::Record) {
        let level = from_log_level(record.level());
        if level < self.level.load(Ordering::Relaxed) {
            return;
        }
        let now = chrono::Local::now();
        let name = logger_name(record.target());
        let lname = level_name(level);
        let mut line = format!(
            "{} {:<24}[{}]: {:<7}",
            now.format("%Y-%m-%d %H:%M:%S,%3f"),
            name,
            std::process::id(),
            lname
        );
        if self.short_level {
            line.push_str(&format!(" {}: {}", &lname[..1], record.args()));
        } else {
            line.push_str(&format!(" {}", record.args()));
        }
        line.push('\n');
        let sink = self.sink.lock().expect("log sink");
        let _ = match *sink {
            Sink::Stdout => std::io::stdout().write_all(line.as_bytes()),
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        };
    }

    fn flush(&self) {}
}

/// Maps a `log` target (a module path or an explicit fail2ban logger
/// name) to fail2ban's logger name.
fn logger_name(target: &str) -> String {
    if target.starts_with("fail2ban.") {
        return target.to_string();
    }
    target.replace("::", ".")
}

/// Installs the logger (once per process) at the given Python level.
pub fn init(level: i64, sink: Sink, short_level: bool) {
    let logger = LOGGER.get_or_init(|| Logger {
        level: AtomicI64::new(level),
        sink: Mutex::new(sink),
        short_level,
    });
    logger.level.store(level, Ordering::Relaxed);
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_like_fail2ban() {
        assert_eq!(str2loglevel("critical"), Ok(CRITICAL));
        assert_eq!(str2loglevel("HeavyDebug"), Ok(HEAVYDEBUG));
        assert_eq!(str2loglevel("17"), Ok(17));
        assert_eq!(
            str2loglevel("loud"),
            Err("Invalid log level 'loud'".to_string())
        );
        assert_eq!(logger_name("fail2ban::filter"), "fail2ban.filter");
    }
}
