//! Decoding log lines as fail2ban does: `bytes.decode(logencoding,
//! 'replace')`, with fail2ban's once-a-day warning per file.
//!
//! Written by hand rather than with an encoding crate because the result
//! must be Python's: its codec names and aliases (`utf8`, `latin-1`,
//! `646` ...), and one U+FFFD per maximal invalid subsequence for UTF-8 (the
//! rule CPython and `String::from_utf8_lossy` share), one per byte for ASCII.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A text encoding a jail's `logencoding` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Encoding {
    /// Python's `codecs.lookup(name)` for the codecs supported here; `auto`
    /// is the locale's preferred encoding (fail2ban's `PREFER_ENC`).
    /// The error is the text of Python's `LookupError`.
    pub fn lookup(name: &str) -> Result<Encoding, String> {
        if name.eq_ignore_ascii_case("auto") {
            return Ok(preferred());
        }
        let norm: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c == '-' || c == ' ' { '_' } else { c })
            .collect();
        match norm.as_str() {
            "utf_8" | "utf8" | "u8" | "utf" | "cp65001" | "utf8_ucs2" | "utf8_ucs4" => {
                Ok(Encoding::Utf8)
            }
            "latin_1" | "latin1" | "latin" | "l1" | "iso8859_1" | "iso_8859_1" | "8859"
            | "cp819" | "iso_ir_100" | "csisolatin1" | "ibm819" | "iso_8859_1_1987" => {
                Ok(Encoding::Latin1)
            }
            "ascii" | "us_ascii" | "646" | "us" | "cp367" | "csascii" | "ibm367" | "iso646_us"
            | "iso_ir_6" | "ansi_x3.4_1968" | "ansi_x3_4_1968" | "ansi_x3.4_1986"
            | "iso_646.irv_1991" => Ok(Encoding::Ascii),
            _ => Err(format!("unknown encoding: {name}")),
        }
    }

    /// The codec's name as Python prints it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "latin-1",
            Encoding::Ascii => "ascii",
        }
    }

    /// Decodes with replacement; the flag says whether the bytes were valid.
    pub fn decode(self, bytes: &[u8]) -> (String, bool) {
        match self {
            Encoding::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => (s.to_string(), true),
                Err(_) => (String::from_utf8_lossy(bytes).into_owned(), false),
            },
            Encoding::Latin1 => (bytes.iter().map(|&b| b as char).collect(), true),
            Encoding::Ascii => (
                bytes
                    .iter()
                    .map(|&b| if b < 0x80 { b as char } else { '\u{fffd}' })
                    .collect(),
                bytes.is_ascii(),
            ),
        }
    }
}

/// The locale's preferred encoding as Python 3.11 sees it: the codeset of
/// `LC_ALL`, `LC_CTYPE` or `LANG` (the first one set), UTF-8 for the C and
/// POSIX locales (Python coerces them to UTF-8) and for unknown codesets.
fn preferred() -> Encoding {
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    let codeset = locale
        .split_once('.')
        .map(|(_, c)| c.split('@').next().unwrap_or(""))
        .unwrap_or("");
    Encoding::lookup(codeset).unwrap_or(Encoding::Utf8)
}

/// Python's `repr()` of a `bytes` value.
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

/// How long a file stays warned about (fail2ban's cache of 24 hours).
const WARN_AGAIN_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Entries the cache holds at most (fail2ban's `maxCount`).
const WARN_CACHE_MAX: usize = 1000;

/// Files already warned about, so that an undecodable line logs a WARNING
/// once per file and day and the later ones at TRACE level.
#[derive(Default)]
pub struct DecodeWarnings {
    warned: HashMap<String, Instant>,
}

impl DecodeWarnings {
    /// Decodes `raw` (a line with its terminator) read from `path`,
    /// logging fail2ban's warnings when it holds invalid bytes.
    /// Valid UTF-8 (and ASCII) lines are borrowed, not copied.
    pub fn decode<'a>(&mut self, path: &str, enc: Encoding, raw: &'a [u8]) -> Cow<'a, str> {
        let as_is = match enc {
            Encoding::Utf8 => true,
            Encoding::Ascii => raw.is_ascii(),
            Encoding::Latin1 => false,
        };
        if as_is && let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text);
        }
        let (text, ok) = enc.decode(raw);
        if !ok {
            self.warn(path, enc, raw);
        }
        Cow::Owned(text)
    }

    fn warn(&mut self, path: &str, enc: Encoding, raw: &[u8]) {
        let now = Instant::now();
        let fresh = match self.warned.get(path) {
            Some(&t) => now.duration_since(t) >= WARN_AGAIN_AFTER,
            None => true,
        };
        let level = if fresh {
            if self.warned.len() >= WARN_CACHE_MAX {
                self.warned
                    .retain(|_, t| now.duration_since(*t) < WARN_AGAIN_AFTER);
                if self.warned.len() >= WARN_CACHE_MAX {
                    self.warned.clear();
                }
            }
            self.warned.insert(path.to_string(), now);
            log::Level::Warn
        } else {
            log::Level::Trace
        };
        log::log!(target: "fail2ban.filter", level,
            "Error decoding line from '{}' with '{}'.", path, enc.name());
        if log::log_enabled!(target: "fail2ban.filter", level) {
            log::log!(target: "fail2ban.filter", level,
                "Consider setting logencoding to appropriate encoding for this jail. \
                 Continuing to process line ignoring invalid characters: {}",
                bytes_repr(raw));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_resolve_like_python() {
        assert_eq!(Encoding::lookup("UTF-8"), Ok(Encoding::Utf8));
        assert_eq!(Encoding::lookup("utf8"), Ok(Encoding::Utf8));
        assert_eq!(Encoding::lookup("Latin-1"), Ok(Encoding::Latin1));
        assert_eq!(Encoding::lookup("ISO-8859-1"), Ok(Encoding::Latin1));
        assert_eq!(Encoding::lookup("US-ASCII"), Ok(Encoding::Ascii));
        assert_eq!(
            Encoding::lookup("klingon"),
            Err("unknown encoding: klingon".to_string())
        );
    }

    #[test]
    fn invalid_bytes_are_replaced() {
        assert_eq!(
            Encoding::Utf8.decode(b"a\xffb\xe2\x82"),
            ("a\u{fffd}b\u{fffd}".to_string(), false)
        );
        assert_eq!(
            Encoding::Ascii.decode(b"a\xc3\xa9"),
            ("a\u{fffd}\u{fffd}".to_string(), false)
        );
        assert_eq!(
            Encoding::Latin1.decode(b"a\xe9"),
            ("a\u{e9}".to_string(), true)
        );
    }

    #[test]
    fn bytes_print_like_python() {
        assert_eq!(bytes_repr(b"ab\xff\r\n"), "b'ab\\xff\\r\\n'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(bytes_repr(b"'\""), "b'\\'\"'");
    }
}
