//! The whole configuration → the client's command stream (fail2ban's
//! `Fail2banReader` and `Configurator`).
//!
//! `fail2ban.conf` gives the server's general options (log level and
//! target, database ...); the jails come from [`crate::config::jail`].
//! [`Configurator::read_config`] does what `fail2ban-client` does before
//! talking to the server, and what `fail2ban-client -d` prints: the general
//! commands, then every jail's commands, then the `start` commands.

use super::Error;
use super::jail::JailsReader;
use super::reader::{ConfigReader, OptDefault, OptKind, OptionSpec, ShareConfig, Vars};
use crate::pyvalue::PyValue;
use indexmap::IndexMap;
use std::rc::Rc;

const fn opt(name: &'static str, kind: OptKind, default: OptDefault) -> OptionSpec {
    OptionSpec::new(name, kind, default)
}

/// Options the client needs before anything else (`getEarlyOptions`).
pub static EARLY_OPTIONS: &[OptionSpec] = &[
    opt(
        "socket",
        OptKind::Str,
        OptDefault::Str("/var/run/fail2ban/fail2ban.sock"),
    ),
    opt(
        "pidfile",
        OptKind::Str,
        OptDefault::Str("/var/run/fail2ban/fail2ban.pid"),
    ),
    opt("loglevel", OptKind::Str, OptDefault::Str("INFO")),
    opt(
        "logtarget",
        OptKind::Str,
        OptDefault::Str("/var/log/fail2ban.log"),
    ),
    opt("syslogsocket", OptKind::Str, OptDefault::Str("auto")),
];

/// The general options of `[Definition]`.
pub static MAIN_OPTIONS: &[OptionSpec] = &[
    opt("loglevel", OptKind::Str, OptDefault::Str("INFO")),
    opt("logtarget", OptKind::Str, OptDefault::Str("STDERR")),
    opt("syslogsocket", OptKind::Str, OptDefault::Str("auto")),
    opt("allowipv6", OptKind::Str, OptDefault::Str("auto")),
    opt(
        "dbfile",
        OptKind::Str,
        OptDefault::Str("/var/lib/fail2ban/fail2ban.sqlite3"),
    ),
    opt("dbmaxmatches", OptKind::Int, OptDefault::None),
    opt("dbpurgeage", OptKind::Str, OptDefault::Str("1d")),
];

/// The options of `[Thread]`.
pub static THREAD_OPTIONS: &[OptionSpec] = &[opt("stacksize", OptKind::Int, OptDefault::None)];

/// Level names Python's `logging` module knows (with fail2ban's additions).
const LOG_LEVELS: [&str; 13] = [
    "BASIC_FORMAT",
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "FATAL",
    "HEAVYDEBUG",
    "INFO",
    "MSG",
    "NOTICE",
    "NOTSET",
    "TRACEDEBUG",
    "WARN",
    "WARNING",
];

/// fail2ban's `str2LogLevel` check: an integer, digits or a level name.
pub fn check_log_level(value: &PyValue) -> Result<(), Error> {
    let ok = match value {
        PyValue::Int(_) | PyValue::Bool(_) => true,
        PyValue::Str(s) => {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                || LOG_LEVELS.contains(&s.to_uppercase().as_str())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Value(format!("Invalid log level {}", value.repr())))
    }
}

/// The reader of `fail2ban.conf` (with `fail2ban.d`, `fail2ban.local`).
#[derive(Debug)]
pub struct Fail2banReader {
    reader: ConfigReader,
    opts: IndexMap<String, PyValue>,
}

impl Fail2banReader {
    pub fn new(basedir: Option<&str>, share: Rc<ShareConfig>) -> Self {
        Fail2banReader {
            reader: ConfigReader::new(basedir, Some(share)),
            opts: IndexMap::new(),
        }
    }

    pub fn reader(&self) -> &ConfigReader {
        &self.reader
    }

    /// Reads the config files (whether any could be read).
    pub fn read(&mut self) -> Result<bool, Error> {
        self.reader.read("fail2ban")
    }

    /// `socket`, `pidfile`, `loglevel`, `logtarget`, `syslogsocket`.
    pub fn get_early_options(&self) -> Result<IndexMap<String, PyValue>, Error> {
        self.reader
            .get_options("Definition", EARLY_OPTIONS, None, false, true)
    }

    /// Reads the general options, overridden by `update_main_opt` (the
    /// client's own settings); checks the log level.
    pub fn get_options(&mut self, update_main_opt: Option<&Vars>) -> Result<(), Error> {
        self.opts = self
            .reader
            .get_options("Definition", MAIN_OPTIONS, None, false, true)?;
        for (k, v) in update_main_opt.into_iter().flatten() {
            self.opts.insert(k.clone(), v.clone());
        }
        check_log_level(self.opts.get("loglevel").unwrap_or(&PyValue::Int(0)))?;
        if self.reader.has_section("Thread") {
            let thread = self
                .reader
                .get_options("Thread", THREAD_OPTIONS, None, false, true)?;
            if !thread.is_empty() {
                let dict = thread
                    .into_iter()
                    .map(|(k, v)| (PyValue::Str(k), v))
                    .collect();
                self.opts.insert("thread".to_string(), PyValue::Dict(dict));
            }
        }
        Ok(())
    }

    /// The general commands, in the server's required order.
    pub fn convert(&self) -> Vec<PyValue> {
        let order = |name: &str| match name {
            "thread" => Some(0),
            "syslogsocket" => Some(11),
            "loglevel" => Some(12),
            "logtarget" => Some(13),
            "allowipv6" => Some(14),
            "dbfile" => Some(50),
            "dbmaxmatches" | "dbpurgeage" => Some(51),
            _ => None,
        };
        let mut items: Vec<(i32, &String, &PyValue)> = self
            .opts
            .iter()
            .filter_map(|(k, v)| Some((order(k)?, k, v)))
            .collect();
        items.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        items
            .into_iter()
            .map(|(_, k, v)| {
                PyValue::List(vec![
                    PyValue::str("set"),
                    PyValue::str(k.as_str()),
                    v.clone(),
                ])
            })
            .collect()
    }
}

/// The outcome of reading a whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigStream {
    /// Python's result: false when some jail had a definition error and
    /// wrong jails are not ignored, or when no jail was fine.
    pub ok: bool,
    /// The commands, as `fail2ban-client -d` prints them (one `repr` each).
    pub stream: Vec<PyValue>,
    /// Jails skipped for definition errors: `(jail, message)`.
    pub jail_errors: Vec<(String, String)>,
}

/// Reads `fail2ban.conf` and the jails of one base directory, sharing the
/// parsed files (Python's `Configurator`).
#[derive(Debug)]
pub struct Configurator {
    basedir: Option<String>,
    force_enable: bool,
    fail2ban: Fail2banReader,
    jails: JailsReader,
}

impl Configurator {
    /// A configurator of `basedir` (default `/etc/fail2ban`); `force_enable`
    /// treats every jail as enabled.
    pub fn new(basedir: Option<&str>, force_enable: bool) -> Self {
        let share = ShareConfig::new();
        Configurator {
            basedir: basedir.map(str::to_string),
            force_enable,
            fail2ban: Fail2banReader::new(basedir, share.clone()),
            jails: JailsReader::new(basedir, share, force_enable),
        }
    }

    /// Forgets everything read (a fresh start for a reload).
    pub fn reload(&mut self) {
        *self = Configurator::new(self.basedir.as_deref(), self.force_enable);
    }

    /// Reads `fail2ban.conf` (enough for [`Configurator::early_options`]).
    pub fn read_early(&mut self) -> Result<(), Error> {
        self.fail2ban.read().map(|_| ())
    }

    /// The options the client needs first: `socket`, `pidfile`, `loglevel`,
    /// `logtarget`, `syslogsocket` (after [`Configurator::read_early`]).
    pub fn early_options(&self) -> Result<IndexMap<String, PyValue>, Error> {
        self.fail2ban.get_early_options()
    }

    /// The jails reader (jails kept, their options and errors).
    pub fn jails(&self) -> &JailsReader {
        &self.jails
    }

    /// Reads everything and returns the command stream (Python's
    /// `readConfig` of `fail2ban-client`): `main_opts` override the general
    /// options (the client passes its settings, e.g. the early options and
    /// `--loglevel`); `jail` restricts to one jail; `ignore_wrong` keeps
    /// going past jails with definition errors (false for `-t`);
    /// `allow_no_files` turns "no log file" into a warning (true for `-d`).
    /// Errors are what Python reports as `Failed during configuration: ...`.
    pub fn read_config(
        &mut self,
        jail: Option<&str>,
        main_opts: Option<&Vars>,
        ignore_wrong: bool,
        allow_no_files: bool,
    ) -> Result<ConfigStream, Error> {
        self.read_early()?;
        self.jails.read()?;
        self.fail2ban.get_options(main_opts)?;
        let ok = self.jails.get_options(jail, ignore_wrong)?;
        let mut stream = self.fail2ban.convert();
        stream.extend(self.jails.convert(allow_no_files)?);
        let jail_errors = self
            .jails
            .jails()
            .iter()
            .filter_map(|j| Some((j.name().to_string(), j.config_error()?.to_string())))
            .collect();
        Ok(ConfigStream {
            ok,
            stream,
            jail_errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::tests::Tree;

    #[test]
    fn log_levels() {
        for ok in [
            "INFO",
            "debug",
            "10",
            "notice",
            "HeavyDebug",
            "BASIC_FORMAT",
        ] {
            assert!(check_log_level(&PyValue::str(ok)).is_ok(), "{ok}");
        }
        assert!(check_log_level(&PyValue::Int(5)).is_ok());
        assert_eq!(
            check_log_level(&PyValue::str("loud"))
                .unwrap_err()
                .to_string(),
            "Invalid log level 'loud'"
        );
        assert!(check_log_level(&PyValue::str("")).is_err());
        assert!(check_log_level(&PyValue::None).is_err());
    }

    #[test]
    fn general_options_order_and_overrides() {
        let t = Tree::new(
            "f2bconf",
            &[
                (
                    "fail2ban.conf",
                    "[Definition]\nloglevel = INFO\nlogtarget = /var/log/x.log\ndbmaxmatches = 7\n\
                     dbpurgeage = 2d\n[Thread]\nstacksize = 0\n",
                ),
                ("jail.conf", "[j]\nenabled = false\n"),
            ],
        );
        let mut c = Configurator::new(Some(&t.0), false);
        c.read_early().unwrap();
        let early = c.early_options().unwrap();
        assert_eq!(
            early["socket"],
            PyValue::str("/var/run/fail2ban/fail2ban.sock")
        );
        let mut main = Vars::new();
        main.insert("loglevel".into(), PyValue::str("DEBUG"));
        main.insert("socket".into(), PyValue::str("/s"));
        let r = c.read_config(None, Some(&main), true, true).unwrap();
        let lines: Vec<String> = r.stream.iter().map(PyValue::repr).collect();
        assert_eq!(
            lines,
            vec![
                "['set', 'thread', {'stacksize': 0}]",
                "['set', 'syslogsocket', 'auto']",
                "['set', 'loglevel', 'DEBUG']",
                "['set', 'logtarget', '/var/log/x.log']",
                "['set', 'allowipv6', 'auto']",
                "['set', 'dbfile', '/var/lib/fail2ban/fail2ban.sqlite3']",
                "['set', 'dbmaxmatches', 7]",
                "['set', 'dbpurgeage', '2d']",
            ]
        );
        assert!(r.ok);
        main.insert("loglevel".into(), PyValue::str("LOUD"));
        c.reload();
        assert_eq!(
            c.read_config(None, Some(&main), true, true)
                .unwrap_err()
                .to_string(),
            "Invalid log level 'LOUD'"
        );
    }
}
