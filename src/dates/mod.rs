//! fail2ban's date detector: finds the date in a log line and turns it into
//! a timestamp, exactly as fail2ban 1.0.2 does.
//!
//! - `strptime`: the `%` directives, template names, zone abbreviations and
//!   the conversion of matched groups into a time (`server/strptime.py`);
//! - `template`: building a template's regex from a `datepattern` line, the
//!   epoch and TAI64N templates, and the process-wide template sharing
//!   (`server/datetemplate.py`, the caches of `server/datedetector.py`);
//! - `detector`: the stateful choice among the templates of a detector and
//!   the re-ordering of its list (`server/datedetector.py`).
//!
//! Template regexes are Python regexes and are compiled with
//! [`crate::regex::PyRegex`].  Offsets compared by the detector are Python
//! character indices; the spans handed out are byte offsets.

mod detector;
#[cfg(test)]
mod difftest;
mod pytext;
mod strptime;
mod template;

use std::fmt;

pub use detector::{DateConverter, DateDetector, TemplateInfo, TimeMatch};
pub use template::TemplateCache;

use crate::pyvalue::{PyValue, str_repr};

/// A log time as Python has it: a float from `mktime` (local time, no zone)
/// or from the epoch templates, an int from `timegm` (zone known) or TAI64N.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timestamp {
    Int(i64),
    Float(f64),
}

impl Timestamp {
    /// The value as seconds since the epoch.
    pub fn as_f64(self) -> f64 {
        match self {
            Timestamp::Int(i) => i as f64,
            Timestamp::Float(f) => f,
        }
    }

    /// The Python value (`int` or `float`).
    pub fn to_py(self) -> PyValue {
        match self {
            Timestamp::Int(i) => PyValue::Int(i),
            Timestamp::Float(f) => PyValue::Float(f),
        }
    }
}

/// An error of the date code; `Display` gives Python's `str(exception)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateError {
    /// An invalid date pattern (`TypeError`); `pattern` is the pattern
    /// without its `{UNB}`/`{^LN-BEG}` prefix, `message` Python's reason.
    Pattern { pattern: String, message: String },
    /// A second template with the same name (`ValueError`).
    Duplicate(String),
    /// A time zone text that is not `[ABBR][+-]hh[[:]mm]` (`ValueError`).
    InvalidTimeZone(String),
    /// A well-formed but unknown zone abbreviation (`KeyError`).
    UnknownZone(String),
    /// A template regex that does not compile (`re.error`).  Python reports
    /// it at the first search; here it is reported when the template is made.
    Regex {
        name: String,
        regex: String,
        message: String,
    },
    /// Another exception that escapes date parsing in Python, as
    /// `"ExceptionType: message"`.
    Uncaught(String),
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateError::Pattern { pattern, message } => write!(
                f,
                "Failed to set datepattern '{pattern}' (may be an invalid format or unescaped \
                 percent char): {message}"
            ),
            DateError::Duplicate(name) => {
                write!(f, "There is already a template with name {name}")
            }
            DateError::InvalidTimeZone(tz) => {
                write!(f, "Unknown or unsupported time zone: {}", str_repr(tz))
            }
            DateError::UnknownZone(abbr) => f.write_str(&str_repr(abbr)),
            DateError::Regex { message, .. } => f.write_str(message),
            DateError::Uncaught(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for DateError {}

/// The offset in minutes of a time zone text (`logtimezone`, `%z`/`%Z`
/// values): `validateTimeZone`.
pub fn time_zone_offset(tz: &str) -> Result<i32, DateError> {
    strptime::parse_zone(tz).map_err(|e| match e {
        strptime::ZoneError::Syntax => DateError::InvalidTimeZone(tz.to_string()),
        strptime::ZoneError::Unknown(abbr) => DateError::UnknownZone(abbr),
    })
}

/// Checks a `logtimezone` value as fail2ban does.
pub fn validate_time_zone(tz: &str) -> Result<(), DateError> {
    time_zone_offset(tz).map(|_| ())
}

/// A detector for a `datepattern` value (`Filter.setDatePattern`): one
/// template line per non-empty line, trimmed.
pub fn set_datepattern(value: &str) -> Result<DateDetector, DateError> {
    let mut detector = DateDetector::new();
    for line in value
        .split('\n')
        .map(pytext::strip)
        .filter(|l| !l.is_empty())
    {
        detector.append_template(line)?;
    }
    Ok(detector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_python_messages() {
        assert_eq!(
            validate_time_zone("Europe/Paris").unwrap_err().to_string(),
            "Unknown or unsupported time zone: 'Europe/Paris'"
        );
        assert_eq!(validate_time_zone("XYZ").unwrap_err().to_string(), "'XYZ'");
        assert_eq!(time_zone_offset("UTC+0130"), Ok(90));
        assert_eq!(time_zone_offset(""), Ok(0));
        let err = set_datepattern("^%Y-%Q").err().unwrap();
        assert_eq!(
            err.to_string(),
            "Failed to set datepattern '^%Y-%Q' (may be an invalid format or unescaped percent \
             char): not enough arguments for format string"
        );
        let err = set_datepattern("%H:%M\n\n  %H:%M  ").err().unwrap();
        assert_eq!(
            err.to_string(),
            "There is already a template with name 24hour:Minute"
        );
    }

    #[test]
    fn timestamps_convert_to_python_values() {
        assert_eq!(Timestamp::Int(5).to_py().repr(), "5");
        assert_eq!(Timestamp::Float(5.0).to_py().repr(), "5.0");
        assert_eq!(Timestamp::Int(5).as_f64(), 5.0);
    }
}
