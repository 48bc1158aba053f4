//! fail2ban's `strptime`: directives, template names, zones, and the
//! conversion of matched date groups into a timestamp.
//!
//! fail2ban does not use the C library's `strptime`.  It turns each `%X`
//! directive into a named regex group (a table derived from CPython's
//! `_strptime.TimeRE` with fail2ban's own overrides and `%Ex…` additions),
//! substitutes them with Python's `%` string formatting, and converts the
//! named groups itself (`reGroupDictStrptime`): year-less dates take the
//! current year and roll back to last year when they would lie in the future,
//! time-less dates take today, zone abbreviations come from a fixed table,
//! and the result is `timegm` (zone known, an integer) or `mktime` (local
//! time, a float).  None of that exists in a crate, so it is written here,
//! including the error texts of Python's `%` formatting that fail2ban passes
//! on for invalid patterns.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::pytext::{PyInt, digit_value, py_int};
use super::{DateError, Timestamp};
use crate::pyvalue::str_repr;

/// The regex of the `%ExY` directive: the years of the current century that
/// fail2ban accepts (see [`year_prefixes`]).  Like Python it is computed once
/// per process from the real clock (not the frozen test clock).
static EX_YEAR: LazyLock<String> = LazyLock::new(|| {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let year = civil_from_days(local_naive(now).div_euclid(86_400)).0;
    format!(r"(?P<Y>{}\d)", year_prefixes(year))
});

/// The compact regex for the first three digits of the years fail2ban's
/// `%ExY` accepts in `year`: last year, in three years, and every third year
/// from 2000 up to now.
pub(crate) fn year_prefixes(year: i64) -> String {
    let mut set: Vec<String> = Vec::new();
    let mut add = |y: i64| {
        let s: String = y.to_string().chars().take(3).collect();
        if !set.contains(&s) {
            set.push(s);
        }
    };
    add(year - 1);
    add(year + 3);
    let mut i = -1;
    while i < year - 2000 {
        add(2001 + i);
        i += 3;
    }
    set.sort();
    group_alternatives(&set)
}

/// Renders a sorted set of equal-length strings as a short regex by
/// factoring out a common prefix (fail2ban's `_getYearCentRE.grp`).
fn group_alternatives(set: &[String]) -> String {
    if set.len() > 1 {
        let mut common: Option<&str> = None;
        for s in set {
            let head = &s[..s.len().saturating_sub(1)];
            match common {
                None => common = Some(head),
                Some(c) if c == head => {}
                Some(_) => {
                    common = None;
                    break;
                }
            }
        }
        if common.is_none_or(str::is_empty) {
            common = None;
            for s in set {
                let head = &s[..s.len().min(1)];
                match common {
                    None => common = Some(head),
                    Some(c) if c == head => {}
                    Some(_) => {
                        common = None;
                        break;
                    }
                }
            }
        }
        if let Some(c) = common.filter(|c| !c.is_empty()) {
            let rest: Vec<String> = set.iter().map(|s| s[c.len()..].to_string()).collect();
            return format!("{c}{}", group_alternatives(&rest));
        }
        return if set[0].len() > 1 {
            format!("(?:{})", set.join("|"))
        } else {
            format!("[{}]", set.concat())
        };
    }
    set.concat()
}

/// The multi-character directive keys, in the order fail2ban's directive
/// pattern tries them.
const LONG_KEYS: [&str; 11] = [
    "ExZ", "Exz", "Exd", "Exm", "ExH", "Exk", "Exl", "ExM", "ExS", "ExY", "Exy",
];

/// The single-character directive keys.
const SHORT_KEYS: &str = "dfHIGjmMSUwuVyYzAaBbpZ%WcxXkl";

/// The regex a directive stands for.
pub(crate) fn directive_regex(key: &str) -> Option<&'static str> {
    Some(match key {
        "d" => r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])",
        "f" => r"(?P<f>[0-9]{1,6})",
        "H" => r"(?P<H>[0-1]?\d|2[0-3])",
        "I" => r"(?P<I>1[0-2]|0[1-9]|[1-9])",
        "G" => r"(?P<G>\d\d\d\d)",
        "j" => r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
        "m" => r"(?P<m>0?[1-9]|1[0-2])",
        "M" => r"(?P<M>[0-5]?\d)",
        "S" => r"(?P<S>[0-5]?\d|6[0-1])",
        "U" | "W" => {
            if key == "U" {
                r"(?P<U>5[0-3]|[0-4]\d|\d)"
            } else {
                r"(?P<W>5[0-3]|[0-4]\d|\d)"
            }
        }
        "w" => r"(?P<w>[0-6])",
        "u" => r"(?P<u>[1-7])",
        "V" => r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)",
        "y" => r"(?P<y>\d\d)",
        "Y" => r"(?P<Y>\d{4})",
        "z" => r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
        "A" => r"(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)",
        "a" => r"(?P<a>mon|tue|wed|thu|fri|sat|sun)",
        "B" => {
            r"(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)"
        }
        "b" => r"(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
        "p" => r"(?P<p>am|pm)",
        "Z" => r"(?P<Z>Z|[A-Z]{3,5})",
        "%" => "%",
        "c" => concat!(
            r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+",
            r"(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+",
            r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+",
            r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+",
            r"(?P<Y>\d\d\d\d)"
        ),
        "x" => concat!(
            r"(?P<m>1[0-2]|0[1-9]|[1-9])/",
            r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)"
        ),
        "X" => r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)",
        "k" => r" ?(?P<H>[0-2]?\d)",
        "l" => r" ?(?P<I>1?\d)",
        "ExZ" => r"(?P<Z>[A-Z](?:[A-Z]{2,4})?)",
        "Exz" => r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)",
        "Exd" => r"(?P<d>[1-2]\d|0[1-9]|3[0-1])",
        "Exm" => r"(?P<m>0[1-9]|1[0-2])",
        "ExH" => r"(?P<H>[0-1]\d|2[0-3])",
        "Exk" => r" ?(?P<H>[0-1]?\d|2[0-3])",
        "Exl" => r" ?(?P<I>1[0-2]|\d)",
        "ExM" => r"(?P<M>[0-5]\d)",
        "ExS" => r"(?P<S>[0-5]\d|6[0-1])",
        "ExY" => EX_YEAR.as_str(),
        "Exy" => r"(?P<y>\d{2})",
        _ => return None,
    })
}

/// The display name of a directive in template names.
///
/// Python derives the `%Exk`/`%Exl` names from a set iteration, so they are
/// either `%Exk` or `Ex%k` depending on the process; `%Exk` is used here.
pub(crate) fn directive_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "a" => "DAY",
        "A" => "DAYNAME",
        "b" => "MON",
        "B" => "MONTH",
        "d" => "Day",
        "H" => "24hour",
        "I" => "12hour",
        "j" => "Yearday",
        "m" => "Month",
        "M" => "Minute",
        "p" => "AMPM",
        "S" => "Second",
        "U" | "W" => "Yearweek",
        "w" => "Weekday",
        "y" => "Year2",
        "Y" => "Year",
        "%" => "%",
        "z" => "Zone offset",
        "f" => "Microseconds",
        "Z" => "Zone name",
        "ExZ" => "ExZone name",
        "Exz" => "ExZone offset",
        "Exd" => "ExDay",
        "Exm" => "ExMonth",
        "ExH" => "Ex24hour",
        "ExM" => "ExMinute",
        "ExS" => "ExSecond",
        "ExY" => "ExYear",
        "Exy" => "ExYear2",
        "Exk" => "%Exk",
        "Exl" => "%Exl",
        "G" => "%G",
        "u" => "%u",
        "V" => "%V",
        "c" => "%c",
        "x" => "%x",
        "X" => "%X",
        "k" => "%k",
        "l" => "%l",
        _ => return None,
    })
}

/// Rewrites each directive `%X` of `pattern` as `%(X)s` (fail2ban's
/// `_patternRE.sub`); other `%` signs are left for Python's formatting.
fn directives_to_format(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let key = LONG_KEYS
            .iter()
            .find(|k| after.starts_with(**k))
            .map(|k| &after[..k.len()])
            .or_else(|| {
                after
                    .chars()
                    .next()
                    .filter(|c| SHORT_KEYS.contains(*c))
                    .map(|c| &after[..c.len_utf8()])
            });
        match key {
            Some(k) => {
                out.push_str("%(");
                out.push_str(k);
                out.push_str(")s");
                rest = &after[k.len()..];
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Python's `fmt % mapping` where every value of the mapping is a string
/// (`lookup`), with CPython's error messages.  `mapping_type` names the
/// mapping's type for the messages about the mapping used as a value.
fn percent_format(
    fmt: &str,
    lookup: impl Fn(&str) -> Option<&'static str>,
    mapping_type: &str,
) -> Result<String, String> {
    const INCOMPLETE: &str = "incomplete format";
    const NOT_ENOUGH: &str = "not enough arguments for format string";
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len() * 4);
    // the argument the next conversion consumes: a looked-up value, or the
    // mapping itself (None); `used` once it was consumed
    let mut current: Option<&str> = None;
    let mut used = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let next = |i: &mut usize| -> Result<char, String> {
            let c = *chars.get(*i).ok_or(INCOMPLETE)?;
            *i += 1;
            Ok(c)
        };
        let mut ch = next(&mut i)?;
        if ch == '%' {
            out.push('%');
            continue;
        }
        if ch == '(' {
            let start = i;
            let mut depth = 1;
            while depth > 0 && i < chars.len() {
                match chars[i] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            if depth > 0 {
                return Err("incomplete format key".to_string());
            }
            let key: String = chars[start..i - 1].iter().collect();
            current = Some(lookup(&key).ok_or_else(|| str_repr(&key))?);
            used = false;
            ch = next(&mut i)?;
        }
        let mut left = false;
        while matches!(ch, '-' | '+' | ' ' | '#' | '0') {
            left |= ch == '-';
            ch = next(&mut i)?;
        }
        let mut width = 0usize;
        if ch == '*' {
            if used {
                return Err(NOT_ENOUGH.to_string());
            }
            return Err("* wants int".to_string());
        }
        while let Some(d) = ch.to_digit(10) {
            width = width.saturating_mul(10).saturating_add(d as usize);
            ch = next(&mut i)?;
        }
        let mut precision: Option<usize> = None;
        if ch == '.' {
            ch = next(&mut i)?;
            if ch == '*' {
                if used {
                    return Err(NOT_ENOUGH.to_string());
                }
                return Err("* wants int".to_string());
            }
            let mut p = 0usize;
            while let Some(d) = ch.to_digit(10) {
                p = p.saturating_mul(10).saturating_add(d as usize);
                ch = next(&mut i)?;
            }
            precision = Some(p);
        }
        if matches!(ch, 'h' | 'l' | 'L') {
            ch = next(&mut i)?;
        }
        if used {
            return Err(NOT_ENOUGH.to_string());
        }
        used = true;
        let type_name = if current.is_some() {
            "str"
        } else {
            mapping_type
        };
        let text: String = match ch {
            's' | 'r' | 'a' => {
                let Some(v) = current else {
                    return Err(format!(
                        "the directive table cannot be formatted with '%{ch}' (a {mapping_type} \
                         would be inserted)"
                    ));
                };
                if ch == 's' {
                    v.to_string()
                } else {
                    str_repr(v)
                }
            }
            'd' | 'i' | 'u' => {
                return Err(format!(
                    "%{ch} format: a real number is required, not {type_name}"
                ));
            }
            'o' | 'x' | 'X' => {
                return Err(format!(
                    "%{ch} format: an integer is required, not {type_name}"
                ));
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
                return Err(format!("must be real number, not {type_name}"));
            }
            'c' => match current {
                Some(v) if v.chars().count() == 1 => v.to_string(),
                _ => return Err("%c requires int or char".to_string()),
            },
            _ => {
                let shown = if ('\x1f'..='~').contains(&ch) {
                    ch
                } else {
                    '?'
                };
                return Err(format!(
                    "unsupported format character '{shown}' (0x{:x}) at index {}",
                    ch as u32,
                    i - 1
                ));
            }
        };
        let text: String = match precision {
            Some(p) if ch != 'c' => text.chars().take(p).collect(),
            _ => text,
        };
        let len = text.chars().count();
        if width > len && !left {
            out.extend(std::iter::repeat_n(' ', width - len));
        }
        out.push_str(&text);
        if width > len && left {
            out.extend(std::iter::repeat_n(' ', width - len));
        }
    }
    Ok(out)
}

/// Turns a date pattern (without `{UNB}`/`{^LN-BEG}`) into the template name
/// and the regex, or Python's error text for an invalid pattern.
pub(crate) fn pattern_to_regex(pattern: &str) -> Result<(String, String), String> {
    let fmt = directives_to_format(pattern);
    let name = percent_format(&fmt, directive_name, "dict")?;
    let regex = percent_format(&fmt, directive_regex, "TimeRE")?;
    Ok((name, regex))
}

/// Whether the pattern uses a directive that needs case-insensitive matching
/// (`%a %A %b %B %p %c` not preceded by `%`).
pub(crate) fn needs_ignore_case(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    (0..b.len().saturating_sub(1))
        .any(|i| b[i] == b'%' && (i == 0 || b[i - 1] != b'%') && b"aAbBpc".contains(&b[i + 1]))
}

/// Zone abbreviations with their fixed offsets (minutes east of UTC).
const ZONES: &[(i32, &[&str])] = &[
    (-720, &["Y"]),
    (-660, &["X", "NUT", "SST"]),
    (-600, &["W", "CKT", "HAST", "HST", "TAHT", "TKT"]),
    (-540, &["V", "AKST", "GAMT", "GIT", "HADT", "HNY"]),
    (-480, &["U", "AKDT", "CIST", "HAY", "HNP", "PST", "PT"]),
    (-420, &["T", "HAP", "HNR", "MST", "PDT"]),
    (-360, &["S", "CST", "EAST", "GALT", "HAR", "HNC", "MDT"]),
    (
        -300,
        &[
            "R", "CDT", "COT", "EASST", "ECT", "EST", "ET", "HAC", "HNE", "PET",
        ],
    ),
    (
        -240,
        &[
            "Q", "AST", "BOT", "CLT", "COST", "EDT", "FKT", "GYT", "HAE", "HNA", "PYT",
        ],
    ),
    (
        -180,
        &[
            "P", "ADT", "ART", "BRT", "CLST", "FKST", "GFT", "HAA", "PMST", "PYST", "SRT", "UYT",
            "WGT",
        ],
    ),
    (-120, &["O", "BRST", "FNT", "PMDT", "UYST", "WGST"]),
    (-60, &["N", "AZOT", "CVT", "EGT"]),
    (0, &["Z", "EGST", "GMT", "UTC", "WET", "WT"]),
    (60, &["A", "CET", "DFT", "WAT", "WEDT", "WEST"]),
    (120, &["B", "CAT", "CEDT", "CEST", "EET", "SAST", "WAST"]),
    (180, &["C", "EAT", "EEDT", "EEST", "IDT", "MSK"]),
    (
        240,
        &[
            "D", "AMT", "AZT", "GET", "GST", "KUYT", "MSD", "MUT", "RET", "SAMT", "SCT",
        ],
    ),
    (
        300,
        &[
            "E", "AMST", "AQTT", "AZST", "HMT", "MAWT", "MVT", "PKT", "TFT", "TJT", "TMT", "UZT",
            "YEKT",
        ],
    ),
    (
        360,
        &[
            "F", "ALMT", "BIOT", "BTT", "IOT", "KGT", "NOVT", "OMST", "YEKST",
        ],
    ),
    (
        420,
        &[
            "G", "CXT", "DAVT", "HOVT", "ICT", "KRAT", "NOVST", "OMSST", "THA", "WIB",
        ],
    ),
    (
        480,
        &[
            "H", "ACT", "AWST", "BDT", "BNT", "CAST", "HKT", "IRKT", "KRAST", "MYT", "PHT", "SGT",
            "ULAT", "WITA", "WST",
        ],
    ),
    (
        540,
        &[
            "I", "AWDT", "IRKST", "JST", "KST", "PWT", "TLT", "WDT", "WIT", "YAKT",
        ],
    ),
    (600, &["K", "AEST", "ChST", "PGT", "VLAT", "YAKST", "YAPT"]),
    (
        660,
        &[
            "L", "AEDT", "LHDT", "MAGT", "NCT", "PONT", "SBT", "VLAST", "VUT",
        ],
    ),
    (
        720,
        &[
            "M", "ANAST", "ANAT", "FJT", "GILT", "MAGST", "MHT", "NZST", "PETST", "PETT", "TVT",
            "WFT",
        ],
    ),
    (780, &["FJST", "NZDT"]),
    (690, &["NFT"]),
    (630, &["ACDT", "LHST"]),
    (570, &["ACST"]),
    (390, &["CCT", "MMT"]),
    (345, &["NPT"]),
    (330, &["SLT"]),
    (270, &["AFT", "IRDT"]),
    (210, &["IRST"]),
    (-150, &["HAT", "NDT"]),
    (-210, &["HNT", "NST", "NT"]),
    (-270, &["HLV", "VET"]),
    (-570, &["MART", "MIT"]),
];

static ZONE_TABLE: LazyLock<HashMap<&'static str, i32>> = LazyLock::new(|| {
    ZONES
        .iter()
        .flat_map(|(off, names)| names.iter().map(move |n| (*n, *off)))
        .collect()
});

/// The offset of a zone abbreviation, in minutes east of UTC.
pub(crate) fn zone_abbreviation(abbr: &str) -> Option<i32> {
    ZONE_TABLE.get(abbr).copied()
}

/// Every known zone abbreviation with its offset.
#[cfg(test)]
pub(crate) fn zone_abbreviations() -> impl Iterator<Item = (&'static str, i32)> {
    ZONES
        .iter()
        .flat_map(|(off, names)| names.iter().map(move |n| (*n, *off)))
}

/// Why a zone text gives no offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZoneError {
    /// Not of the form `[ABBR][+-]hh[[:]mm]` (Python's `ValueError`).
    Syntax,
    /// A well-formed but unknown abbreviation (Python's `KeyError`).
    Unknown(String),
}

/// Parses a zone text as fail2ban's `validateTimeZone`/`zone2offset` do:
/// an optional upper-case abbreviation (1 or 3–5 letters) and an optional
/// offset `+hh`, `+hhmm` or `+hh:mm`; the result is in minutes.
pub(crate) fn parse_zone(text: &str) -> Result<i32, ZoneError> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let letters = text.bytes().take_while(u8::is_ascii_uppercase).count();
    if !matches!(letters, 0 | 1 | 3 | 4 | 5) {
        return Err(ZoneError::Syntax);
    }
    let (abbr, rest) = text.split_at(letters);
    let offset = if rest.is_empty() {
        0
    } else {
        let chars: Vec<char> = rest.chars().collect();
        let sign = match chars[0] {
            '+' => 1,
            '-' => -1,
            _ => return Err(ZoneError::Syntax),
        };
        let digit = |i: usize| chars.get(i).and_then(|c| digit_value(*c)).map(|d| d as i32);
        let (Some(h1), Some(h2)) = (chars.get(1).filter(|c| matches!(c, '0' | '1')), digit(2))
        else {
            return Err(ZoneError::Syntax);
        };
        let hours = (*h1 as i32 - '0' as i32) * 10 + h2;
        let minutes = match chars.len() {
            3 => None,
            5 => Some((digit(3), digit(4))),
            6 if chars[3] == ':' => Some((digit(4), digit(5))),
            _ => return Err(ZoneError::Syntax),
        };
        match minutes {
            None => sign * hours * 60,
            Some((Some(m1), Some(m2))) => sign * (hours * 60 + m1 * 10 + m2),
            Some(_) => return Err(ZoneError::Syntax),
        }
    };
    let base = if abbr.is_empty() {
        0
    } else {
        zone_abbreviation(abbr).ok_or_else(|| ZoneError::Unknown(abbr.to_string()))?
    };
    Ok(base + offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The naive seconds of Python's `datetime.min` and of `datetime.max` + 1 s.
const NAIVE_MIN: i64 = -62_135_596_800;
const NAIVE_END: i64 = 253_402_300_800;

/// `datetime(year, month, day, hour, minute, second)` as naive seconds since
/// 1970, or `None` where Python raises `ValueError`.
fn naive_datetime(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&s)
    {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Naive local time (seconds since 1970 as if local time were UTC) of the
/// instant `t`, as `localtime` gives it.
pub(crate) fn local_naive(t: i64) -> i64 {
    ensure_tzset();
    let tt = t as libc::time_t;
    // SAFETY: `tm` is plain data filled in by localtime_r from valid pointers.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if !ok {
        return t;
    }
    days_from_civil(
        i64::from(tm.tm_year) + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
    ) * 86_400
        + i64::from(tm.tm_hour) * 3600
        + i64::from(tm.tm_min) * 60
        + i64::from(tm.tm_sec)
}

/// The naive local time of the last local-time conversion in the process.
static LAST_LOCAL: AtomicI64 = AtomicI64::new(i64::MIN);
/// The naive local time of the last call of the C library's `mktime`.
static LAST_CALLED: AtomicI64 = AtomicI64::new(i64::MIN);

/// Python's `time.mktime` of a naive local time (tm_isdst = -1).
///
/// For a local time that falls into a DST gap or overlap, glibc's answer
/// depends on the UTC offset of its previous result (it starts its search
/// there).  Python calls `mktime` for every line; callers that serve
/// conversions from a cache use [`LocalClock`], which replays the last
/// conversion before such a call so that glibc starts from the same offset.
pub(crate) fn mktime(naive: i64) -> Result<f64, DateError> {
    ensure_tzset();
    LAST_CALLED.store(naive, Ordering::Relaxed);
    let (y, mo, d) = civil_from_days(naive.div_euclid(86_400));
    let secs = naive.rem_euclid(86_400);
    // SAFETY: `tm` is plain data; mktime only reads and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = (y - 1900) as libc::c_int;
    tm.tm_mon = mo as libc::c_int - 1;
    tm.tm_mday = d as libc::c_int;
    tm.tm_hour = (secs / 3600) as libc::c_int;
    tm.tm_min = (secs / 60 % 60) as libc::c_int;
    tm.tm_sec = (secs % 60) as libc::c_int;
    tm.tm_isdst = -1;
    tm.tm_wday = -1;
    let t = unsafe { libc::mktime(&mut tm) };
    if t == -1 && tm.tm_wday == -1 {
        return Err(DateError::Uncaught(
            "OverflowError: mktime argument out of range".to_string(),
        ));
    }
    Ok(t as f64)
}

fn ensure_tzset() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: tzset only reads the TZ variable and the zone files.
    ONCE.call_once(|| unsafe { tzset() });
}

unsafe extern "C" {
    fn tzset();
}

/// The clock a conversion needs: local "now" and local-time conversion.
pub(crate) trait Clock {
    /// `MyTime.now()` as naive local seconds, truncated to the second.
    fn now_naive(&self) -> i64;
    /// `time.mktime` of a naive local time.
    fn mktime(&self, naive: i64) -> Result<f64, DateError>;
}

/// Cached hours (the index is 4 bits of a hash).
const MKTIME_SLOTS: usize = 16;
/// The span of naive local time one cache slot covers.
const MKTIME_SPAN: i64 = 3600;

/// The process clock (`crate::mytime::now()`, the C library's local time),
/// with small caches so that a stream of lines from the same hour costs
/// neither a `localtime` nor a `mktime` call per line (glibc's `mktime`
/// checks the zone file with a system call each time).
///
/// An hour is cached as (hour, `mktime` of its start, unique), unique when
/// its first and its last second each have exactly one instant, at the
/// same UTC offset.  The uniqueness check already assumes that the offset
/// changes at most once in a day; an offset that is the same at both ends
/// of the hour therefore holds throughout, and the seconds are added.
/// Hours with a DST gap or overlap are not unique; their conversions always
/// call `mktime`, as Python does, after replaying the last conversion.
#[derive(Debug)]
pub(crate) struct LocalClock {
    now: Cell<(i64, i64)>,
    hours: [Cell<(i64, f64, bool)>; MKTIME_SLOTS],
}

impl Default for LocalClock {
    fn default() -> Self {
        LocalClock {
            now: Cell::new((i64::MIN, 0)),
            hours: std::array::from_fn(|_| Cell::new((i64::MIN, 0.0, false))),
        }
    }
}

/// Whether the naive local time `wall` has exactly one instant, `t`: no
/// DST gap or overlap (the offsets a day before and after bound the
/// candidates).
fn unique_local_time(wall: i64, t: i64) -> bool {
    let offset = |u: i64| local_naive(u) - u;
    let mut candidates: Vec<i64> = [t - 90_000, t, t + 90_000]
        .into_iter()
        .map(|u| wall - offset(u))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut preimages = candidates.into_iter().filter(|c| local_naive(*c) == wall);
    preimages.next() == Some(t) && preimages.next().is_none()
}

/// `datetime.fromtimestamp(t)` truncated to whole seconds: the microseconds
/// are rounded half-even first, which may carry into the next second.
fn whole_seconds(t: f64) -> i64 {
    let mut secs = t as i64;
    if (secs as f64) > t {
        secs -= 1;
    }
    // the microseconds round (half to even) up to a full second
    secs + i64::from((t - secs as f64) * 1e6 >= 999_999.5)
}

impl LocalClock {
    /// The naive local seconds of the instant `now` (truncated).
    fn naive_at(&self, now: f64) -> i64 {
        let now = whole_seconds(now);
        let (key, value) = self.now.get();
        if key == now {
            return value;
        }
        let value = local_naive(now);
        self.now.set((now, value));
        value
    }
}

/// A [`LocalClock`] whose `now` is an instant the caller read already (one
/// clock reading per line, not one per use).
pub(crate) struct ClockAt<'a> {
    pub(crate) clock: &'a LocalClock,
    pub(crate) now: f64,
}

impl Clock for ClockAt<'_> {
    fn now_naive(&self) -> i64 {
        self.clock.naive_at(self.now)
    }

    fn mktime(&self, naive: i64) -> Result<f64, DateError> {
        self.clock.mktime(naive)
    }
}

impl Clock for LocalClock {
    fn now_naive(&self) -> i64 {
        self.naive_at(crate::mytime::now())
    }

    fn mktime(&self, naive: i64) -> Result<f64, DateError> {
        let hour = naive.div_euclid(MKTIME_SPAN);
        let seconds = naive.rem_euclid(MKTIME_SPAN);
        // Fibonacci hashing: hours a whole number of years apart must not
        // share a slot
        let index = (hour as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        let slot = &self.hours[index as usize];
        let (key, base, unique) = slot.get();
        if key == hour && unique {
            if LAST_LOCAL.load(Ordering::Relaxed) != naive {
                LAST_LOCAL.store(naive, Ordering::Relaxed);
            }
            return Ok(base + seconds as f64);
        }
        let last = LAST_LOCAL.load(Ordering::Relaxed);
        if last != i64::MIN && last != LAST_CALLED.load(Ordering::Relaxed) {
            // glibc's starting offset is that of the last conversion
            mktime(last)?;
        }
        let t = mktime(naive)?;
        LAST_LOCAL.store(naive, Ordering::Relaxed);
        let start = t as i64 - seconds;
        let (first, last) = (hour * MKTIME_SPAN, MKTIME_SPAN - 1);
        let unique =
            unique_local_time(first, start) && unique_local_time(first + last, start + last);
        slot.set((hour, start as f64, unique));
        Ok(t)
    }
}

/// The date fields fail2ban reads from named groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year2,
    Year,
    Month,
    MonthName,
    MonthAbbr,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    Fraction,
    WeekdayName,
    WeekdayAbbr,
    Weekday,
    YearDay,
    WeekSunday,
    WeekMonday,
    Zone,
}

impl Field {
    fn of_group(name: &str) -> Option<Field> {
        Some(match name {
            "y" => Field::Year2,
            "Y" => Field::Year,
            "m" => Field::Month,
            "B" => Field::MonthName,
            "b" => Field::MonthAbbr,
            "d" => Field::Day,
            "H" => Field::Hour24,
            "I" => Field::Hour12,
            "M" => Field::Minute,
            "S" => Field::Second,
            "f" => Field::Fraction,
            "A" => Field::WeekdayName,
            "a" => Field::WeekdayAbbr,
            "w" => Field::Weekday,
            "j" => Field::YearDay,
            "U" => Field::WeekSunday,
            "W" => Field::WeekMonday,
            "z" | "Z" => Field::Zone,
            _ => return None,
        })
    }
}

const MONTHS: [&str; 13] = [
    "",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const MONTH_ABBRS: [&str; 13] = [
    "", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const WEEKDAY_ABBRS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Python's `list.index(text.lower())` over lower-case names.
fn name_index(list: &[&str], text: &str) -> Option<i64> {
    let found = if text.is_ascii() {
        list.iter().position(|n| n.eq_ignore_ascii_case(text))
    } else {
        let lower = text.to_lowercase();
        list.iter().position(|n| *n == lower)
    };
    found.map(|p| p as i64)
}

/// Which named groups of a template regex carry date fields, in the order
/// Python's `groupdict()` lists them.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldPlan {
    fields: Vec<Field>,
    /// Group indices: one per field, then the `p` group if any.
    groups: Vec<usize>,
    has_ampm: bool,
    /// The slot of the seconds field, if any.
    second: Option<usize>,
    /// Tells plans apart in a [`MinuteMemo`] (unique per [`FieldPlan::new`];
    /// clones convert alike and share it).
    id: u64,
}

impl FieldPlan {
    /// The plan for a regex whose named groups are `names` (name, index).
    pub(crate) fn new(names: &[(String, usize)]) -> FieldPlan {
        let mut names: Vec<&(String, usize)> = names.iter().collect();
        names.sort_by_key(|(_, i)| *i);
        static IDS: AtomicU64 = AtomicU64::new(1);
        let mut plan = FieldPlan {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            ..FieldPlan::default()
        };
        for (name, index) in &names {
            if let Some(f) = Field::of_group(name) {
                if f == Field::Second {
                    plan.second = Some(plan.fields.len());
                }
                plan.fields.push(f);
                plan.groups.push(*index);
            }
        }
        if let Some((_, index)) = names.iter().find(|(n, _)| n.as_str() == "p") {
            plan.groups.push(*index);
            plan.has_ampm = true;
        }
        plan
    }

    /// The groups whose spans a conversion reads, in slot order.
    pub(crate) fn groups(&self) -> &[usize] {
        &self.groups
    }
}

#[inline]
fn int_field(text: &str) -> Result<Option<i64>, DateError> {
    // the usual field: one to four ASCII digits
    let b = text.as_bytes();
    if (1..=4).contains(&b.len()) && b.iter().all(u8::is_ascii_digit) {
        return Ok(Some(
            b.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0')),
        ));
    }
    match py_int(text) {
        PyInt::Value(v) => Ok(Some(v)),
        PyInt::Invalid => Ok(None),
        PyInt::Huge => Err(DateError::Uncaught(
            "OverflowError: Python int too large to convert to C int".to_string(),
        )),
    }
}

fn overflow() -> DateError {
    DateError::Uncaught("OverflowError: date value out of range".to_string())
}

/// CPython's `_calc_julian_from_U_or_W`: day of the year from a week number
/// and a weekday (Monday = 0).
fn julian_from_week(year: i64, week: i64, weekday: i64, week_starts_monday: bool) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    let mut first_weekday = (jan1 + 3).rem_euclid(7);
    let mut weekday = weekday;
    if !week_starts_monday {
        first_weekday = (first_weekday + 1) % 7;
        weekday = (weekday + 1) % 7;
    }
    let week0_length = (7 - first_weekday) % 7;
    if week == 0 {
        1 + weekday - first_weekday
    } else {
        1 + week0_length + 7 * (week - 1) + weekday
    }
}

/// A date's fields as far as the conversion goes without the zone and the
/// clock's corrections: the naive local time, and what the corrections need.
#[derive(Debug, Clone, Copy)]
struct NaiveDate {
    date: i64,
    year: i64,
    month: i64,
    day: i64,
    tzoffset: Option<i64>,
    assume_today: bool,
    assume_year: bool,
}

/// fail2ban's `reGroupDictStrptime`: the timestamp of the matched groups.
///
/// `value(slot)` gives the text of the group `plan.groups()[slot]` (None
/// when it did not take part).  `Ok(None)` is Python's `ValueError` (the
/// caller treats the date as unparsable); `Err` is an exception that escapes
/// date parsing in Python.
pub(crate) fn groups_to_time<'a, C: Clock>(
    plan: &FieldPlan,
    value: impl Fn(usize) -> Option<&'a str>,
    default_tz: Option<i32>,
    clock: &C,
) -> Result<Option<Timestamp>, DateError> {
    let mut now = None;
    match groups_to_naive(plan, value, clock, &mut now)? {
        Some(naive) => naive_to_time(naive, default_tz, clock, now),
        None => Ok(None),
    }
}

/// Dates converted in the last minutes: the first half of the conversion
/// ([`groups_to_naive`]) of the fields other than the seconds, per plan.
/// A log's lines come a few a second, so a minute's lines share it: each
/// costs a comparison, its seconds' digits and the second half
/// ([`naive_to_time`]).
#[derive(Debug, Default)]
pub(crate) struct MinuteMemo {
    entries: RefCell<Vec<MinuteEntry>>,
    /// Conversions answered from an entry.
    #[cfg(test)]
    hits: Cell<usize>,
}

#[derive(Debug)]
struct MinuteEntry {
    plan: u64,
    /// The spans of all groups (the seconds' included).
    spans: Vec<(u32, u32)>,
    /// The text from the first group's start to the last group's end, and
    /// where it starts; the seconds' digits are not compared.
    text: Vec<u8>,
    start: usize,
    /// The day of the clock's time, if the conversion read it.
    day: Option<i64>,
    naive: Option<NaiveDate>,
}

/// Minutes remembered (two templates alternate in some logs).
const MINUTE_ENTRIES: usize = 4;

/// The text of a group at `span` in `text` (`u32::MAX`: the group did not
/// take part).
pub(crate) fn span_text(text: &str, (a, b): (u32, u32)) -> Option<&str> {
    if a == u32::MAX {
        None
    } else {
        text.get(a as usize..b as usize)
    }
}

/// [`groups_to_time`] of the groups at `spans` (byte spans in `text`, one
/// per slot, as [`span_text`] reads them), through `memo`.
///
/// Exact: a line whose groups have the spans of a remembered line, and the
/// same text in them but for the seconds, has the same other fields (group
/// spans are match positions, so character boundaries in both).  With the
/// seconds' text one or two digits (whose parse cannot fail) the other
/// fields convert the same whatever the seconds, and their naive time at
/// second `s` is the one at second 0 plus `s` (`s` < 60, else no date).  A
/// naive time completed from the clock holds for the clock's day only.
pub(crate) fn groups_to_time_memo<C: Clock>(
    plan: &FieldPlan,
    text: &str,
    spans: &[(u32, u32)],
    default_tz: Option<i32>,
    clock: &C,
    memo: &MinuteMemo,
) -> Result<Option<Timestamp>, DateError> {
    let value = |slot: usize| span_text(text, spans[slot]);
    let spans = &spans[..plan.groups.len()];
    let bytes = text.as_bytes();
    let Some(slot) = plan.second else {
        return groups_to_time(plan, value, default_tz, clock);
    };
    let (sa, sb) = spans[slot];
    let seconds = match bytes.get(sa as usize..sb as usize) {
        Some([d]) if d.is_ascii_digit() => i64::from(d - b'0'),
        Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
            i64::from(a - b'0') * 10 + i64::from(b - b'0')
        }
        _ => return groups_to_time(plan, value, default_tz, clock),
    };
    let (sa, sb) = (sa as usize, sb as usize);
    let mut entries = memo.entries.borrow_mut();
    let mut now = None;
    let found = entries.iter().position(|e| {
        let end = e.start + e.text.len();
        e.plan == plan.id
            && e.spans == spans
            && bytes.get(e.start..sa) == e.text.get(..sa - e.start)
            && bytes.get(sb..end) == e.text.get(sb - e.start..)
            && e.day.is_none_or(|day| {
                let now = *now.get_or_insert_with(|| clock.now_naive());
                day == now.div_euclid(86_400)
            })
    });
    let naive = match found {
        Some(i) => {
            #[cfg(test)]
            memo.hits.set(memo.hits.get() + 1);
            entries[i].naive
        }
        None => {
            // the text the groups cover (the seconds' group among them)
            let (start, end) = spans
                .iter()
                .filter(|(a, _)| *a != u32::MAX)
                .fold((sa, sb), |(s, e), &(a, b)| {
                    (s.min(a as usize), e.max(b as usize))
                });
            // the seconds' text must be the seconds' alone
            let apart = spans.iter().enumerate().all(|(i, &(a, b))| {
                i == slot || a == u32::MAX || b as usize <= sa || a as usize >= sb
            });
            let naive = groups_to_naive(
                plan,
                |s| if s == slot { Some("0") } else { value(s) },
                clock,
                &mut now,
            )?;
            if apart && let Some(region) = bytes.get(start..end) {
                // the oldest entry goes
                entries.truncate(MINUTE_ENTRIES - 1);
                entries.insert(
                    0,
                    MinuteEntry {
                        plan: plan.id,
                        spans: spans.to_vec(),
                        text: region.to_vec(),
                        start,
                        day: now.map(|now| now.div_euclid(86_400)),
                        naive,
                    },
                );
            }
            naive
        }
    };
    match naive {
        Some(naive) if seconds < 60 => naive_to_time(
            NaiveDate {
                date: naive.date + seconds,
                ..naive
            },
            default_tz,
            clock,
            now,
        ),
        _ => Ok(None),
    }
}

/// The first half of [`groups_to_time`]: the fields, parsed and completed
/// (a missing year or day from the clock), as a naive local time.  `now`:
/// the clock's naive time, once read (read here if the fields need it).
fn groups_to_naive<'a, C: Clock>(
    plan: &FieldPlan,
    value: impl Fn(usize) -> Option<&'a str>,
    clock: &C,
    now: &mut Option<i64>,
) -> Result<Option<NaiveDate>, DateError> {
    let mut year: Option<i64> = None;
    let mut month: Option<i64> = None;
    let mut day: Option<i64> = None;
    let mut tzoffset: Option<i64> = None;
    let mut weekday: Option<i64> = None;
    let mut julian: Option<i64> = None;
    let mut week: Option<(i64, bool)> = None;
    let (mut hour, mut minute, mut second) = (0i64, 0i64, 0i64);
    macro_rules! int {
        ($t:expr) => {
            match int_field($t)? {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    for (slot, field) in plan.fields.iter().enumerate() {
        let Some(text) = value(slot) else { continue };
        match field {
            Field::Year2 => {
                let y = int!(text);
                year = Some(if y <= 2000 { y + 2000 } else { y });
            }
            Field::Year => year = Some(int!(text)),
            Field::Month => month = Some(int!(text)),
            Field::MonthName | Field::MonthAbbr => {
                let list: &[&str] = if *field == Field::MonthName {
                    &MONTHS
                } else {
                    &MONTH_ABBRS
                };
                match name_index(list, text) {
                    Some(m) => month = Some(m),
                    None => return Ok(None),
                }
            }
            Field::Day => day = Some(int!(text)),
            Field::Hour24 => hour = int!(text),
            Field::Hour12 => {
                hour = int!(text);
                let ampm = if plan.has_ampm {
                    value(plan.fields.len()).ok_or_else(|| {
                        DateError::Uncaught(
                            "AttributeError: 'NoneType' object has no attribute 'lower'"
                                .to_string(),
                        )
                    })?
                } else {
                    ""
                };
                if ampm.is_empty() || name_index(&["am"], ampm).is_some() {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if name_index(&["pm"], ampm).is_some() && hour != 12 {
                    hour += 12;
                }
            }
            Field::Minute => minute = int!(text),
            Field::Second => second = int!(text),
            Field::Fraction => {}
            Field::WeekdayName | Field::WeekdayAbbr => {
                let list: &[&str] = if *field == Field::WeekdayName {
                    &WEEKDAYS
                } else {
                    &WEEKDAY_ABBRS
                };
                match name_index(list, text) {
                    Some(w) => weekday = Some(w),
                    None => return Ok(None),
                }
            }
            Field::Weekday => {
                let w = int!(text) - 1;
                weekday = Some(if w < 0 { 6 } else { w });
            }
            Field::YearDay => julian = Some(int!(text)),
            Field::WeekSunday => week = Some((int!(text), false)),
            Field::WeekMonday => week = Some((int!(text), true)),
            Field::Zone => {
                tzoffset = Some(if matches!(text, "Z" | "UTC" | "GMT") {
                    0
                } else {
                    match parse_zone(text) {
                        Ok(o) => i64::from(o),
                        Err(ZoneError::Syntax) => return Ok(None),
                        Err(ZoneError::Unknown(a)) => return Err(DateError::UnknownZone(a)),
                    }
                });
            }
        }
    }
    let in_c_int = |v: i64| i32::try_from(v).is_ok();
    let mut get_now = || *now.get_or_insert_with(|| clock.now_naive());
    let assume_year = year.is_none();
    let mut year = match year {
        Some(y) => y,
        None => civil_from_days(get_now().div_euclid(86_400)).0,
    };
    if month.is_none() || day.is_none() {
        if julian.is_none()
            && let (Some((w, monday)), Some(wd)) = (week, weekday)
        {
            if !(1..=9999).contains(&year) {
                return Ok(None);
            }
            julian = Some(julian_from_week(year, w, wd, monday));
        }
        if let Some(j) = julian {
            if !(1..=9999).contains(&year) {
                return Ok(None);
            }
            let days = days_from_civil(year, 1, 1) + j - 1;
            if !(NAIVE_MIN / 86_400..NAIVE_END / 86_400).contains(&days) {
                return Ok(None);
            }
            let (y, m, d) = civil_from_days(days);
            year = y;
            month = Some(i64::from(m));
            day = Some(i64::from(d));
        }
    }
    let assume_today = month.is_none() && day.is_none();
    if assume_today {
        let (_, m, d) = civil_from_days(get_now().div_euclid(86_400));
        month = Some(i64::from(m));
        day = Some(i64::from(d));
    }
    let (Some(month), Some(day)) = (month, day) else {
        return Err(DateError::Uncaught(
            "TypeError: 'NoneType' object cannot be interpreted as an integer".to_string(),
        ));
    };
    if ![year, month, day, hour, minute, second]
        .into_iter()
        .all(in_c_int)
    {
        return Err(DateError::Uncaught(
            "OverflowError: signed integer is greater than maximum".to_string(),
        ));
    }
    let Some(date) = naive_datetime(year, month, day, hour, minute, second) else {
        return Ok(None);
    };
    Ok(Some(NaiveDate {
        date,
        year,
        month,
        day,
        tzoffset,
        assume_today,
        assume_year,
    }))
}

/// The second half of [`groups_to_time`]: the zone (`default_tz` when the
/// date has none), the corrections of dates that took the clock's year or
/// day and would lie in the future, and the local time's timestamp.
fn naive_to_time<C: Clock>(
    naive: NaiveDate,
    default_tz: Option<i32>,
    clock: &C,
    mut now: Option<i64>,
) -> Result<Option<Timestamp>, DateError> {
    let NaiveDate {
        mut date,
        year,
        month,
        day,
        mut tzoffset,
        assume_today,
        assume_year,
    } = naive;
    let mut get_now = || *now.get_or_insert_with(|| clock.now_naive());
    if tzoffset.is_none() {
        tzoffset = default_tz.map(i64::from);
    }
    if let Some(off) = tzoffset {
        date -= off * 60;
        if !(NAIVE_MIN..NAIVE_END).contains(&date) {
            return Err(overflow());
        }
    }
    if assume_today && date > get_now() {
        date -= 86_400;
        if date < NAIVE_MIN {
            return Err(overflow());
        }
    }
    if assume_year && date > get_now() + 86_400 {
        let secs = date.rem_euclid(86_400);
        match naive_datetime(year - 1, month, day, 0, 0, 0) {
            Some(d) => date = d + secs,
            None => return Ok(None),
        }
    }
    Ok(Some(match tzoffset {
        Some(_) => Timestamp::Int(date),
        None => Timestamp::Float(clock.mktime(date)?),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_prefixes_follow_fail2ban() {
        assert_eq!(year_prefixes(2026), "20[012]");
        assert_eq!(year_prefixes(2027), "20[0123]");
        assert_eq!(year_prefixes(2005), "200");
        assert_eq!(year_prefixes(2008), "20[01]");
        assert_eq!(year_prefixes(2098), "2(?:00|01|02|03|04|05|06|07|08|09|10)");
    }

    #[test]
    fn names_and_regexes_of_patterns() {
        let (name, regex) = pattern_to_regex("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(name, "Year-Month-Day 24hour:Minute:Second");
        assert!(regex.starts_with(r"(?P<Y>\d{4})-(?P<m>0?[1-9]|1[0-2])-"));
        let (name, regex) = pattern_to_regex("100%% %ExY %Exk %k").unwrap();
        assert_eq!(name, "100% ExYear %Exk %k");
        assert!(regex.starts_with("100% (?P<Y>20"));
        let (name, _) = pattern_to_regex("%(Y)s%(Y)5s|%(%)c").unwrap();
        assert_eq!(name, "Year Year|%");
    }

    #[test]
    fn invalid_patterns_give_python_errors() {
        let err = |p: &str| pattern_to_regex(p).unwrap_err();
        assert_eq!(
            err("%Q"),
            "unsupported format character 'Q' (0x51) at index 1"
        );
        assert_eq!(err("%Y-%Q"), "not enough arguments for format string");
        assert_eq!(err("x %"), "incomplete format");
        assert_eq!(err("%(Y"), "incomplete format key");
        assert_eq!(err("%(foo)s"), "'foo'");
        assert_eq!(
            err("%(Y)d"),
            "%d format: a real number is required, not str"
        );
        assert_eq!(err("%5x"), "%x format: an integer is required, not dict");
        assert_eq!(err("%*d"), "* wants int");
        assert_eq!(
            err("é%é"),
            "unsupported format character '?' (0xe9) at index 2"
        );
        assert_eq!(
            err("100% %H"),
            "unsupported format character '%' (0x25) at index 5"
        );
        assert_eq!(
            err("%(Y)i"),
            "%i format: a real number is required, not str"
        );
    }

    #[test]
    fn alpha_directives_need_ignore_case() {
        assert!(needs_ignore_case("%b %d"));
        assert!(needs_ignore_case("x%p"));
        assert!(!needs_ignore_case("%%b %d"));
        assert!(!needs_ignore_case("%Y %%%b"));
        assert!(!needs_ignore_case("%H:%M"));
    }

    #[test]
    fn zones_follow_fail2ban() {
        assert_eq!(parse_zone("CET"), Ok(60));
        assert_eq!(parse_zone("NPT"), Ok(345));
        assert_eq!(parse_zone("-0330"), Ok(-210));
        assert_eq!(parse_zone("+05"), Ok(300));
        assert_eq!(parse_zone("-05"), Ok(-300));
        assert_eq!(parse_zone("UTC+01:30"), Ok(90));
        assert_eq!(parse_zone("EST-1"), Err(ZoneError::Syntax));
        assert_eq!(parse_zone(""), Ok(0));
        assert_eq!(parse_zone("UTC\n"), Ok(0));
        assert_eq!(parse_zone("utc"), Err(ZoneError::Syntax));
        assert_eq!(parse_zone("ChST"), Err(ZoneError::Syntax));
        assert_eq!(parse_zone("AB"), Err(ZoneError::Syntax));
        assert_eq!(parse_zone("+2100"), Err(ZoneError::Syntax));
        assert_eq!(
            parse_zone("XYZ"),
            Err(ZoneError::Unknown("XYZ".to_string()))
        );
        assert_eq!(
            parse_zone("XYZ+01"),
            Err(ZoneError::Unknown("XYZ".to_string()))
        );
        assert_eq!(zone_abbreviations().count(), ZONE_TABLE.len());
    }

    #[test]
    fn now_rounds_like_fromtimestamp() {
        assert_eq!(whole_seconds(5.0), 5);
        assert_eq!(whole_seconds(1.999_999_4), 1);
        assert_eq!(whole_seconds(1.999_999_6), 2);
        assert_eq!(whole_seconds(-0.5), -1);
        assert_eq!(whole_seconds(1_124_013_600.25), 1_124_013_600);
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-719_162i64, -1, 0, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(1, 1, 1) * 86_400, NAIVE_MIN);
        assert_eq!(days_from_civil(10_000, 1, 1) * 86_400, NAIVE_END);
        assert_eq!(naive_datetime(2005, 2, 29, 0, 0, 0), None);
        assert_eq!(naive_datetime(2004, 2, 29, 23, 59, 59), Some(1_078_099_199));
        assert_eq!(naive_datetime(2004, 1, 1, 24, 0, 0), None);
        assert_eq!(naive_datetime(0, 1, 1, 0, 0, 0), None);
        // 2005-01-01 is a Saturday: week 0 of %W has two days
        assert_eq!(julian_from_week(2005, 0, 5, true), 1);
        assert_eq!(julian_from_week(2005, 1, 0, true), 3);
        assert_eq!(julian_from_week(2005, 1, 6, false), 2);
    }

    /// A clock frozen at a naive local time, with the local zone UTC+1.
    struct TestClock(i64);

    impl Clock for TestClock {
        fn now_naive(&self) -> i64 {
            self.0
        }
        fn mktime(&self, naive: i64) -> Result<f64, DateError> {
            Ok((naive - 3600) as f64)
        }
    }

    fn convert(
        names: &[&str],
        values: &[Option<&str>],
        now: i64,
    ) -> Result<Option<Timestamp>, DateError> {
        let names: Vec<(String, usize)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i + 1))
            .collect();
        let plan = FieldPlan::new(&names);
        let by_group: Vec<Option<&str>> = plan.groups().iter().map(|g| values[*g - 1]).collect();
        groups_to_time(&plan, |slot| by_group[slot], None, &TestClock(now))
    }

    #[test]
    fn minute_memo_converts_as_the_plain_conversion() {
        use crate::regex::difftest::Rng;
        let layouts: [&[&str]; 9] = [
            &["b", "d", "H", "M", "S"],
            &["Y", "m", "d", "H", "M", "S"],
            &["d", "b", "Y", "H", "M", "S", "z"],
            &["H", "M", "S"],
            &["a", "b", "d", "H", "M", "S"],
            &["I", "M", "S", "p"],
            &["Y", "m", "d", "H", "M", "S", "f"],
            &["S", "M", "H", "j"],
            &["b", "d", "H", "M"],
        ];
        let pool = |name: &str| -> &[&str] {
            match name {
                "S" => &["0", "5", "07", "59", "60", "61", "x", "007", "٣"],
                "M" => &["30", "59"],
                "H" => &["11", "23", "0"],
                "I" => &["12", "1"],
                "p" => &["AM", "pm"],
                "d" => &["14", "31", "29", "1"],
                "j" => &["1", "366", "45"],
                "b" => &["Aug", "Dec", "feb", "Foo"],
                "a" => &["Sun", "Mon"],
                "Y" => &["2005", "2004", "99999"],
                "m" => &["8", "2", "12", "13"],
                "z" => &["+0200", "Z", "-0130", "XYZ"],
                _ => &["123"],
            }
        };
        let names = |layout: &[&str]| -> Vec<(String, usize)> {
            layout
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i + 1))
                .collect()
        };
        let plans: Vec<FieldPlan> = layouts.iter().map(|l| FieldPlan::new(&names(l))).collect();
        let nows = [
            naive_datetime(2005, 8, 14, 12, 0, 0).unwrap(),
            naive_datetime(2005, 12, 31, 23, 59, 30).unwrap(),
            naive_datetime(2006, 1, 1, 0, 0, 10).unwrap(),
            naive_datetime(2004, 2, 29, 0, 0, 0).unwrap(),
        ];
        let memo = MinuteMemo::default();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        // per layout: the prefix and the fields of its current minute (a
        // log's lines share them but for the seconds, mostly)
        let mut minutes: Vec<(usize, Vec<Option<&str>>)> =
            layouts.iter().map(|l| (0, vec![None; l.len()])).collect();
        // two layouts and a clock at a time, as in a log
        let (mut pair, mut clock) = ([0, 1], TestClock(nows[0]));
        for _ in 0..20_000 {
            if rng.below(50) == 0 {
                pair = [rng.below(plans.len()), rng.below(plans.len())];
                clock = TestClock(nows[rng.below(nows.len())] + rng.below(3) as i64);
            }
            let which = pair[rng.below(2)];
            let (layout, plan) = (layouts[which], &plans[which]);
            let (prefix, fields) = &mut minutes[which];
            if rng.below(4) == 0 {
                *prefix = rng.below(3);
                for (field, name) in fields.iter_mut().zip(layout) {
                    *field = (rng.below(40) != 0).then(|| rng.pick(pool(name)));
                }
            }
            // the fields in a line, some of them absent
            let mut text = "x".repeat(*prefix);
            let mut spans = vec![(u32::MAX, 0); plan.groups().len()];
            for (slot, &group) in plan.groups().iter().enumerate() {
                let value = match layout[group - 1] {
                    "S" => Some(rng.pick(pool("S"))),
                    _ => fields[group - 1],
                };
                let Some(value) = value else { continue };
                let start = text.len() as u32;
                text.push_str(value);
                spans[slot] = (start, text.len() as u32);
                text.push(' ');
            }
            let tz = [None, Some(120)][rng.below(2)];
            let value = |slot: usize| span_text(&text, spans[slot]);
            assert_eq!(
                groups_to_time_memo(plan, &text, &spans, tz, &clock, &memo),
                groups_to_time(plan, value, tz, &clock),
                "{text:?} {layout:?} now {}",
                clock.0
            );
        }
        assert!(
            memo.hits.get() > 5_000,
            "{} answers from the memo",
            memo.hits.get()
        );
    }

    #[test]
    fn conversion_follows_fail2ban() {
        // 2005-08-14 12:00:00 naive
        let now = naive_datetime(2005, 8, 14, 12, 0, 0).unwrap();
        let full = ["Y", "m", "d", "H", "M", "S"];
        let v = [
            Some("2005"),
            Some("8"),
            Some("14"),
            Some("11"),
            Some("30"),
            Some("05"),
        ];
        let expect = naive_datetime(2005, 8, 14, 11, 30, 5).unwrap();
        assert_eq!(
            convert(&full, &v, now),
            Ok(Some(Timestamp::Float((expect - 3600) as f64)))
        );
        // invalid calendar date
        let v = [
            Some("2005"),
            Some("2"),
            Some("30"),
            Some("11"),
            Some("30"),
            Some("05"),
        ];
        assert_eq!(convert(&full, &v, now), Ok(None));
        // zone given: integer result
        let names = ["b", "d", "H", "M", "S", "z"];
        let v = [
            Some("AUG"),
            Some("14"),
            Some("11"),
            Some("30"),
            Some("05"),
            Some("+0200"),
        ];
        let utc = naive_datetime(2005, 8, 14, 9, 30, 5).unwrap();
        assert_eq!(convert(&names, &v, now), Ok(Some(Timestamp::Int(utc))));
        // more than a day in the future without year: last year
        let v = [
            Some("Dec"),
            Some("31"),
            Some("23"),
            Some("59"),
            Some("59"),
            None,
        ];
        let last = naive_datetime(2004, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            convert(&names, &v, now),
            Ok(Some(Timestamp::Float((last - 3600) as f64)))
        );
        // unknown zone abbreviation escapes
        let v = [
            Some("Aug"),
            Some("14"),
            Some("11"),
            Some("30"),
            Some("05"),
            Some("XYZ"),
        ];
        assert_eq!(
            convert(&names, &v, now),
            Err(DateError::UnknownZone("XYZ".to_string()))
        );
        // time only, later than now: yesterday
        let names = ["H", "M", "S"];
        let v = [Some("13"), Some("00"), Some("00")];
        let yesterday = naive_datetime(2005, 8, 13, 13, 0, 0).unwrap();
        assert_eq!(
            convert(&names, &v, now),
            Ok(Some(Timestamp::Float((yesterday - 3600) as f64)))
        );
        // 12-hour clock
        let names = ["Y", "m", "d", "I", "M", "S", "p"];
        let v = [
            Some("2005"),
            Some("8"),
            Some("14"),
            Some("12"),
            Some("15"),
            Some("00"),
            Some("AM"),
        ];
        let midnight = naive_datetime(2005, 8, 14, 0, 15, 0).unwrap();
        assert_eq!(
            convert(&names, &v, now),
            Ok(Some(Timestamp::Float((midnight - 3600) as f64)))
        );
        let v = [
            Some("2005"),
            Some("8"),
            Some("14"),
            Some("1"),
            Some("15"),
            Some("00"),
            Some("pm"),
        ];
        let afternoon = naive_datetime(2005, 8, 14, 13, 15, 0).unwrap();
        assert_eq!(
            convert(&names, &v, now),
            Ok(Some(Timestamp::Float((afternoon - 3600) as f64)))
        );
        let v = [
            Some("2005"),
            Some("8"),
            Some("14"),
            Some("1"),
            Some("15"),
            Some("00"),
            None,
        ];
        assert!(matches!(
            convert(&names, &v, now),
            Err(DateError::Uncaught(_))
        ));
        // two-digit year, year day
        let names = ["y", "j"];
        let v = [Some("05"), Some("032")];
        let feb1 = naive_datetime(2005, 2, 1, 0, 0, 0).unwrap();
        assert_eq!(
            convert(&names, &v, now),
            Ok(Some(Timestamp::Float((feb1 - 3600) as f64)))
        );
        // day without month
        let names = ["Y", "d"];
        let v = [Some("2005"), Some("3")];
        assert!(matches!(
            convert(&names, &v, now),
            Err(DateError::Uncaught(_))
        ));
    }
}
