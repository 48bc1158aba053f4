//! fail2ban's configuration reading, as the Python client does it.
//!
//! The layers, bottom up:
//! - [`ini`]: one file in Python `configparser`'s dialect (as fail2ban
//!   configures it) → sections of options;
//! - [`reader`]: a config *name* (`jail`, `filter.d/sshd`, ...) → the file
//!   set `NAME.conf`, `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local` with
//!   their `[INCLUDES]`, merged with `KNOWN/` history and conditional
//!   sections; `%(name)s` interpolation and typed option reading;
//! - [`options`]: the `name[opt=val, ...]` syntax and other small parsers
//!   (word splitting, booleans, integers, `shlex.split`);
//! - [`tags`]: recursive `<tag>` substitution over a set of options;
//! - [`definition`]: files made of `[Definition]` and `[Init]` (filters and
//!   actions): init options, `known/` init options, combined options;
//! - [`filter`]: filter files → the command stream sent to the server;
//! - [`action`]: action files → the commands attaching them to a jail;
//! - [`jail`]: jails (two-stage reading, filter `known/` options, actions,
//!   log path globbing with [`glob`]) → their command streams;
//! - [`fail2ban`]: `fail2ban.conf` and the whole configuration
//!   ([`Configurator`]) → what `fail2ban-client -d` prints.
//!
//! Values are strings, as in Python; typed results use
//! [`crate::pyvalue::PyValue`], so that command streams print as Python
//! prints them.  Errors carry Python's exception texts ([`Error`]); log
//! messages go through the `log` crate with Python's texts, under Python's
//! logger names (`fail2ban.configreader`, ...) as targets.

pub mod action;
pub mod definition;
pub mod fail2ban;
pub mod filter;
pub mod glob;
pub mod ini;
pub mod jail;
pub mod options;
pub mod reader;
pub mod tags;

#[cfg(test)]
mod difftest;

pub use action::ActionReader;
pub use definition::DefinitionReader;
pub use fail2ban::{ConfigStream, Configurator, Fail2banReader};
pub use filter::FilterReader;
pub use ini::IniData;
pub use jail::{JailReader, JailsReader};
pub use options::{as_bool, extract_options, py_int, shlex_split, split_with_options, splitwords};
pub use reader::{ConfigReader, OptDefault, OptKind, OptionSpec, ShareConfig, Vars};
pub use tags::substitute_recursive_tags;

use crate::pyvalue::str_repr;
use std::fmt;

/// An error of the configuration layer, displayed exactly as Python's
/// `str(exception)`; [`Error::py_type`] names the Python exception class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `configparser.MissingSectionHeaderError`: an option before any
    /// section header.  `line` is the raw line, with its line end.
    MissingSectionHeader {
        source: String,
        lineno: usize,
        line: String,
    },
    /// `configparser.ParsingError`: unparsable lines `(number, raw line)`.
    Parsing {
        source: String,
        errors: Vec<(usize, String)>,
    },
    /// `configparser.DuplicateSectionError` (same section twice in a file).
    DuplicateSection {
        section: String,
        source: String,
        lineno: usize,
    },
    /// `configparser.DuplicateOptionError` (same option twice in a section
    /// of one file).
    DuplicateOption {
        section: String,
        option: String,
        source: String,
        lineno: usize,
    },
    /// `configparser.NoSectionError`.
    NoSection(String),
    /// `configparser.NoOptionError`.
    NoOption { option: String, section: String },
    /// `configparser.InterpolationMissingOptionError`.
    InterpolationMissingOption {
        option: String,
        section: String,
        rawval: String,
        reference: String,
    },
    /// `configparser.InterpolationSyntaxError` with its message.
    InterpolationSyntax {
        option: String,
        section: String,
        msg: String,
    },
    /// `configparser.InterpolationDepthError`.
    InterpolationDepth {
        option: String,
        section: String,
        rawval: String,
    },
    /// `UnicodeDecodeError` while reading a file, with Python's message.
    Decode(String),
    /// Python `ValueError` with its message.
    Value(String),
    /// Python `TypeError` with its message.
    Type(String),
}

/// `configparser.MAX_INTERPOLATION_DEPTH`.
pub const MAX_INTERPOLATION_DEPTH: usize = 10;

impl Error {
    /// The name of the Python exception class this error stands for.
    pub fn py_type(&self) -> &'static str {
        match self {
            Error::MissingSectionHeader { .. } => "MissingSectionHeaderError",
            Error::Parsing { .. } => "ParsingError",
            Error::DuplicateSection { .. } => "DuplicateSectionError",
            Error::DuplicateOption { .. } => "DuplicateOptionError",
            Error::NoSection(_) => "NoSectionError",
            Error::NoOption { .. } => "NoOptionError",
            Error::InterpolationMissingOption { .. } => "InterpolationMissingOptionError",
            Error::InterpolationSyntax { .. } => "InterpolationSyntaxError",
            Error::InterpolationDepth { .. } => "InterpolationDepthError",
            Error::Decode(_) => "UnicodeDecodeError",
            Error::Value(_) => "ValueError",
            Error::Type(_) => "TypeError",
        }
    }
}

impl Error {
    /// Python's `repr(exception)`: the message for `configparser` errors,
    /// `Class('message')` for the others.
    pub fn py_repr(&self) -> String {
        match self {
            Error::Decode(msg) | Error::Value(msg) | Error::Type(msg) => {
                format!("{}({})", self.py_type(), str_repr(msg))
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingSectionHeader {
                source,
                lineno,
                line,
            } => write!(
                f,
                "File contains no section headers.\nfile: {}, line: {}\n{}",
                str_repr(source),
                lineno,
                str_repr(line)
            ),
            Error::Parsing { source, errors } => {
                write!(f, "Source contains parsing errors: {}", str_repr(source))?;
                for (lineno, line) in errors {
                    write!(f, "\n\t[line {:2}]: {}", lineno, str_repr(line))?;
                }
                Ok(())
            }
            Error::DuplicateSection {
                section,
                source,
                lineno,
            } => write!(
                f,
                "While reading from {} [line {:2}]: section {} already exists",
                str_repr(source),
                lineno,
                str_repr(section)
            ),
            Error::DuplicateOption {
                section,
                option,
                source,
                lineno,
            } => write!(
                f,
                "While reading from {} [line {:2}]: option {} in section {} already exists",
                str_repr(source),
                lineno,
                str_repr(option),
                str_repr(section)
            ),
            Error::NoSection(section) => write!(f, "No section: {}", str_repr(section)),
            Error::NoOption { option, section } => write!(
                f,
                "No option {} in section: {}",
                str_repr(option),
                str_repr(section)
            ),
            Error::InterpolationMissingOption {
                option,
                section,
                rawval,
                reference,
            } => write!(
                f,
                "Bad value substitution: option {} in section {} contains an interpolation \
                 key {} which is not a valid option name. Raw value: {}",
                str_repr(option),
                str_repr(section),
                str_repr(reference),
                str_repr(rawval)
            ),
            Error::InterpolationSyntax { msg, .. } => f.write_str(msg),
            Error::InterpolationDepth {
                option,
                section,
                rawval,
            } => write!(
                f,
                "Recursion limit exceeded in value substitution: option {} in section {} \
                 contains an interpolation key which cannot be substituted in {} steps. \
                 Raw value: {}",
                str_repr(option),
                str_repr(section),
                MAX_INTERPOLATION_DEPTH,
                str_repr(rawval)
            ),
            Error::Decode(msg) | Error::Value(msg) | Error::Type(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// Python's `str.isspace()` for one character.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `\w` (in a `str` pattern) for one character.
pub(crate) fn is_py_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str.rstrip()`.
pub(crate) fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Matches fail2ban's `CONDITIONAL_RE` (`^(\w+)(\?.+)$`) on an option or
/// section name: returns the base name and the `?...` condition.
pub(crate) fn split_conditional(name: &str) -> Option<(&str, &str)> {
    let q = name.find(|c: char| !is_py_word(c))?;
    if q == 0 || !name[q..].starts_with('?') {
        return None;
    }
    let cond = &name[q..];
    // `.+` stops at a line feed; `$` also matches before a final one.
    let body = cond.strip_suffix('\n').unwrap_or(cond);
    if body.len() < 2 || body.contains('\n') {
        return None;
    }
    Some((&name[..q], body))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    /// Records the log messages of the thread that asked for them.
    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }

        fn log(&self, record: &log::Record) {
            CAPTURED.with(|c| {
                if let Some(lines) = c.borrow_mut().as_mut() {
                    lines.push(format!(
                        "{} {}: {}",
                        record.level(),
                        record.target(),
                        record.args()
                    ));
                }
            });
        }

        fn flush(&self) {}
    }

    /// Runs `f`, returning the log lines it produced (`LEVEL target:
    /// message`, debug and trace left out), or `None` when another logger
    /// owns the process (then the caller cannot check messages).
    pub(crate) fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, Option<Vec<String>>) {
        static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let installed = *INSTALLED.get_or_init(|| {
            let ok = log::set_logger(&Capture).is_ok();
            if ok {
                log::set_max_level(log::LevelFilter::Info);
            }
            ok
        });
        if !installed {
            eprintln!("log messages not checked: another logger is installed");
            return (f(), None);
        }
        CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
        let result = f();
        let lines = CAPTURED.with(|c| c.borrow_mut().take());
        (result, lines)
    }

    #[test]
    fn conditional_names_follow_the_python_pattern() {
        assert_eq!(
            split_conditional("cmd?family=inet6"),
            Some(("cmd", "?family=inet6"))
        );
        assert_eq!(split_conditional("Init?x"), Some(("Init", "?x")));
        assert_eq!(split_conditional("?x"), None);
        assert_eq!(split_conditional("cmd?"), None);
        assert_eq!(split_conditional("a-b?x"), None);
        assert_eq!(split_conditional("plain"), None);
    }

    #[test]
    fn error_texts_follow_python() {
        let e = Error::Parsing {
            source: "/x/a.conf".into(),
            errors: vec![(3, "junk\n".into()), (12, "more".into())],
        };
        assert_eq!(
            e.to_string(),
            "Source contains parsing errors: '/x/a.conf'\n\t[line  3]: 'junk\\n'\n\t[line 12]: 'more'"
        );
        let e = Error::InterpolationMissingOption {
            option: "failregex".into(),
            section: "Definition".into(),
            rawval: "%(nope)s x".into(),
            reference: "nope".into(),
        };
        assert_eq!(
            e.to_string(),
            "Bad value substitution: option 'failregex' in section 'Definition' contains an \
             interpolation key 'nope' which is not a valid option name. Raw value: '%(nope)s x'"
        );
        assert_eq!(e.py_type(), "InterpolationMissingOptionError");
    }
}
