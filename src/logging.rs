//! fail2ban's logging: its levels, line format and targets.
//!
//! fail2ban uses Python's logging with extra levels (NOTICE 25, MSG 18,
//! TRACEDEBUG 7, HEAVYDEBUG 5), a fixed line format
//! (`2024-01-01 12:00:00,123 fail2ban.actions        [123]: NOTICE  [sshd] Ban 192.0.2.1`)
//! that the `recidive` filter reads back, and targets: a file (reopened by
//! `flushlogs`), `STDOUT`, `STDERR`, `SYSOUT` (no time), `SYSLOG` (no time,
//! no padding, over the syslog socket).  Messages come either through the
//! `log` crate (the target names the fail2ban logger, e.g.
//! `fail2ban.filter`; module paths are mapped) or through [`emit`] / the
//! [`f2b_log!`](crate::f2b_log) macro for the levels the `log` crate lacks.
//!
//! Written by hand rather than with `env_logger`: fail2ban's levels between
//! the `log` crate's, its exact line layout, its targets (syslog, reopening
//! on `flushlogs`) and changing level and target at run time through the
//! socket are outside what `env_logger` does.

use chrono::TimeZone;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
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
        0 => "NOTSET".into(),
        l => format!("Level {l}"),
    }
}

/// The syslog severity of a level (Python's `SysLogHandler.mapPriority`:
/// fail2ban's extra levels fall back to `warning`).
fn syslog_severity(level: i64) -> u8 {
    match level {
        DEBUG => 7,
        INFO => 6,
        NOTICE => 5,
        ERROR => 3,
        CRITICAL => 2,
        _ => 4,
    }
}

fn syslog_facility(name: &str) -> Option<u8> {
    Some(match name.to_uppercase().as_str() {
        "KERN" => 0,
        "USER" => 1,
        "MAIL" => 2,
        "DAEMON" => 3,
        "AUTH" | "SECURITY" => 4,
        "SYSLOG" => 5,
        "LPR" => 6,
        "NEWS" => 7,
        "UUCP" => 8,
        "CRON" => 9,
        "AUTHPRIV" => 10,
        "FTP" => 11,
        "LOCAL0" => 16,
        "LOCAL1" => 17,
        "LOCAL2" => 18,
        "LOCAL3" => 19,
        "LOCAL4" => 20,
        "LOCAL5" => 21,
        "LOCAL6" => 22,
        "LOCAL7" => 23,
        _ => return None,
    })
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
enum Sink {
    Stdout,
    Stderr,
    File { path: String, file: File },
    Syslog { socket: UnixDatagram, facility: u8 },
}

/// How a line is laid out.
#[derive(Clone, Copy)]
struct Layout {
    time: bool,
    padding: bool,
    /// fail2ban-regex's short `X: message` level form.
    short_level: bool,
}

struct State {
    sink: Sink,
    layout: Layout,
    target: String,
    /// The local time text of the last second a line was written in (a
    /// burst of `Found` lines converts the time once per second).
    stamp: (u64, String),
}

static LEVEL: AtomicI64 = AtomicI64::new(WARNING);
static STATE: Mutex<Option<State>> = Mutex::new(None);

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata) -> bool {
        enabled(from_log_level(m.level()))
    }

    fn log(&self, record: &log::Record) {
        let level = from_log_level(record.level());
        if enabled(level) {
            emit(level, &logger_name(record.target()), *record.args());
        }
    }

    fn flush(&self) {}
}

static BRIDGE: Bridge = Bridge;

/// Maps a `log` target (a module path or an explicit fail2ban logger
/// name) to fail2ban's logger name.
fn logger_name(target: &str) -> String {
    if target.starts_with("fail2ban.") || target == "fail2ban" {
        return target.to_string();
    }
    target.replace("::", ".")
}

/// Whether a message at `level` would be written.
pub fn enabled(level: i64) -> bool {
    level >= LEVEL.load(Ordering::Relaxed)
}

/// The current level.
pub fn level() -> i64 {
    LEVEL.load(Ordering::Relaxed)
}

/// Sets the level.
pub fn set_level(level: i64) {
    LEVEL.store(level, Ordering::Relaxed);
}

fn install(state: State) {
    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
    if log::set_logger(&BRIDGE).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// Sets up logging for fail2ban-regex: stdout, fail2ban's short level form.
pub fn init_regex_tool(level: i64, short_level: bool) {
    set_level(level);
    install(State {
        sink: Sink::Stdout,
        layout: Layout {
            time: true,
            padding: true,
            short_level,
        },
        target: "STDOUT".to_string(),
        stamp: (0, String::new()),
    });
}

/// Sets up logging for a client (stderr, fail2ban's format).
pub fn init_stderr(level: i64) {
    set_level(level);
    install(State {
        sink: Sink::Stderr,
        layout: Layout {
            time: true,
            padding: true,
            short_level: false,
        },
        target: "STDERR".to_string(),
        stamp: (0, String::new()),
    });
}

/// The current target as given to [`set_target`].
pub fn target() -> Option<String> {
    STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|s| s.target.clone())
}

/// Sets the log target (`STDOUT`, `STDERR`, `SYSOUT`, `SYSLOG[facility=...]`
/// or a file path, with `[datetime=on|off, padding=on|off]` options).
/// `syslog_socket` is the socket for SYSLOG (`auto` = `/dev/log`);
/// `announce` logs fail2ban's `Changed logging target` lines (a change at
/// run time).  On failure the previous target stays and the error text is
/// returned.
pub fn set_target(spec: &str, syslog_socket: &str, announce: bool) -> Result<(), String> {
    let (target, opts) = crate::config::extract_options(spec).map_err(|e| e.to_string())?;
    let sys = target.to_uppercase();
    if target_is(&target) {
        return Ok(());
    }
    let opt = |k: &str| opts.get(k).map(String::as_str);
    let padding_default = sys != "SYSLOG";
    let sink = match sys.as_str() {
        "STDOUT" | "SYSOUT" => Sink::Stdout,
        "STDERR" => Sink::Stderr,
        "SYSLOG" => {
            let facility = match opt("facility") {
                None => 3,
                Some(f) => syslog_facility(f).unwrap_or_else(|| {
                    crate::f2b_log!(
                        ERROR,
                        "fail2ban.server",
                        "Unable to set facility {}, using 'DAEMON'",
                        crate::pyvalue::str_repr(f)
                    );
                    3
                }),
            };
            let path = if syslog_socket == "auto" {
                "/dev/log"
            } else {
                syslog_socket
            };
            let is_sock = std::fs::metadata(path)
                .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                .unwrap_or(false);
            let socket = is_sock
                .then(|| {
                    let s = UnixDatagram::unbound().ok()?;
                    s.connect(path).ok()?;
                    Some(s)
                })
                .flatten();
            match socket {
                Some(socket) => Sink::Syslog { socket, facility },
                None => {
                    return Err(format!(
                        "Syslog socket file: {path} does not exists or is not a socket"
                    ));
                }
            }
        }
        _ => match OpenOptions::new().create(true).append(true).open(&target) {
            Ok(file) => Sink::File {
                path: target.clone(),
                file,
            },
            Err(_) => {
                return Err(format!(
                    "Unable to log to {}",
                    crate::pyvalue::str_repr(&target)
                ));
            }
        },
    };
    let time = match opt("datetime") {
        Some(v) => crate::config::as_bool(v),
        None => sys != "SYSLOG" && sys != "SYSOUT",
    };
    let padding = opt("padding").map_or(padding_default, crate::config::as_bool);
    install(State {
        sink,
        layout: Layout {
            time,
            padding,
            short_level: false,
        },
        target: target.clone(),
        stamp: (0, String::new()),
    });
    if announce {
        let v = crate::regextool::VERSION;
        crate::f2b_log!(INFO, "fail2ban.server", "Start Fail2ban v{v}");
        let shown = if sys == "SYSLOG" {
            format!("{target} ({syslog_socket})")
        } else {
            target.clone()
        };
        crate::f2b_log!(
            INFO,
            "fail2ban.server",
            "Changed logging target to {shown} for Fail2ban v{v}"
        );
    }
    Ok(())
}

fn target_is(target: &str) -> bool {
    STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.target == target)
}

/// Reopens a file target (`flushlogs`): `rolled over` for a file,
/// `flushed` for the others.
pub fn flush_logs() -> &'static str {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_mut() {
        Some(State {
            sink: Sink::File { path, file },
            ..
        }) => {
            if let Ok(f) = OpenOptions::new().create(true).append(true).open(&*path) {
                *file = f;
            }
            "rolled over"
        }
        Some(s) => {
            let _ = match &mut s.sink {
                Sink::Stdout => std::io::stdout().flush(),
                Sink::Stderr => std::io::stderr().flush(),
                _ => Ok(()),
            };
            "flushed"
        }
        None => "flushed",
    }
}

/// Writes one message at `level` from the fail2ban logger `name`.
pub fn emit(level: i64, name: &str, args: std::fmt::Arguments) {
    if !enabled(level) {
        return;
    }
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(state) = guard.as_mut() else {
        return;
    };
    let lname = level_name(level);
    let lay = state.layout;
    let mut line = String::new();
    if lay.time {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        if state.stamp.0 != secs || state.stamp.1.is_empty() {
            let local = i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::Local.timestamp_opt(s, 0).single());
            state.stamp = (
                secs,
                local.map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            );
        }
        let _ = write!(line, "{},{:03} ", state.stamp.1, now.subsec_millis());
    }
    let pid = std::process::id();
    let _ = if lay.padding {
        write!(line, "{name:<24}[{pid}]: {lname:<7}")
    } else {
        write!(line, "{name}[{pid}]: {lname}")
    };
    let _ = if lay.short_level {
        write!(line, " {}: {args}", &lname[..1])
    } else {
        write!(line, " {args}")
    };
    let _ = match &mut state.sink {
        Sink::Stdout => writeln!(std::io::stdout(), "{line}"),
        Sink::Stderr => writeln!(std::io::stderr(), "{line}"),
        Sink::File { file, .. } => writeln!(file, "{line}"),
        Sink::Syslog { socket, facility } => {
            let pri = u32::from(*facility) * 8 + u32::from(syslog_severity(level));
            socket
                .send(format!("<{pri}>{line}\0").as_bytes())
                .map(|_| ())
        }
    };
}

/// Logs at a fail2ban level (`NOTICE`, `MSG`... or any Python level
/// number) from a fail2ban logger name:
/// `f2b_log!(NOTICE, "fail2ban.actions", "[{}] Ban {}", jail, ip)`.
#[macro_export]
macro_rules! f2b_log {
    ($level:ident, $name:expr, $($arg:tt)*) => {
        if $crate::logging::enabled($crate::logging::$level) {
            $crate::logging::emit($crate::logging::$level, $name, format_args!($($arg)*))
        }
    };
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
        assert_eq!(syslog_severity(NOTICE), 5);
        assert_eq!(syslog_severity(MSG), 4);
    }

    #[test]
    fn file_target_writes_fail2ban_lines_and_reopens() {
        let dir = std::env::temp_dir().join(format!("f2b-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fail2ban.log");
        let p = path.to_string_lossy().into_owned();
        set_level(INFO);
        set_target(&p, "auto", false).unwrap();
        crate::f2b_log!(NOTICE, "fail2ban.actions", "[sshd] Ban {}", "192.0.2.1");
        crate::f2b_log!(DEBUG, "fail2ban.actions", "not shown");
        std::fs::rename(&path, dir.join("fail2ban.log.1")).unwrap();
        assert_eq!(flush_logs(), "rolled over");
        crate::f2b_log!(WARNING, "fail2ban.filter", "after rotation");
        let old = std::fs::read_to_string(dir.join("fail2ban.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let pid = std::process::id();
        assert!(
            old.lines().any(|l| l.ends_with(&format!(
                "fail2ban.actions        [{pid}]: NOTICE  [sshd] Ban 192.0.2.1"
            ))),
            "{old}"
        );
        assert!(!old.contains("not shown"));
        assert!(new.contains("fail2ban.filter         ["), "{new}");
        assert!(new.contains("WARNING after rotation"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
