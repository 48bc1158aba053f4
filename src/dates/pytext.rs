//! Python `str` behaviour that the date code depends on.
//!
//! fail2ban's date handling works on Python strings: offsets are character
//! indices, `int()`/`float()` accept any Unicode decimal digit and surrounding
//! whitespace, `str.strip()` and `str.isalnum()` use Python's own character
//! classes.  Rust's counterparts differ in small ways (byte offsets, ASCII-only
//! `to_digit`, a different whitespace set), so the few pieces needed are
//! written here by hand.

use std::sync::LazyLock;

/// Python's `str.isspace()` for one character.
pub(crate) fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\x0b'
            | '\x0c'
            | '\r'
            | '\x1c'..='\x1f'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `str.strip()` without arguments.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `str.isalnum()` for one character (Rust's alphanumeric classes
/// are the closest available approximation outside ASCII).
pub(crate) fn is_alnum(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        c.is_alphanumeric()
    }
}

/// Python's `\w` for one character.
pub(crate) fn is_word(c: char) -> bool {
    c == '_' || is_alnum(c)
}

static DECIMAL: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^\d$").expect("static regex"));

/// The value of a Unicode decimal digit (what Python's `int()` accepts).
pub(crate) fn digit_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return Some(c as u32 - '0' as u32);
    }
    if c.is_ascii() {
        return None;
    }
    let is_digit = |c: char| {
        let mut buf = [0u8; 4];
        DECIMAL.is_match(c.encode_utf8(&mut buf))
    };
    if !is_digit(c) {
        return None;
    }
    // Unicode decimal digits come in runs of ten starting with zero.
    let mut start = c as u32;
    while let Some(prev) = char::from_u32(start.wrapping_sub(1)) {
        if !is_digit(prev) {
            break;
        }
        start -= 1;
    }
    Some((c as u32 - start) % 10)
}

/// The result of Python's `int(text)` for a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyInt {
    Value(i64),
    /// A valid integer beyond the 64-bit range.
    Huge,
    /// `int()` raises `ValueError`.
    Invalid,
}

/// Python's `int(text)` (base 10): surrounding whitespace, a sign, Unicode
/// digits and single underscores between digits are accepted.
pub(crate) fn py_int(text: &str) -> PyInt {
    let b = text.as_bytes();
    // fast path: plain ASCII digits, maybe after spaces
    let digits = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let b = &b[digits..];
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        return PyInt::Value(b.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0')));
    }
    let s = strip(text);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i128 = 0;
    let mut huge = false;
    let mut count = 0;
    let mut prev_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if count == 0 || prev_underscore {
                return PyInt::Invalid;
            }
            prev_underscore = true;
            continue;
        }
        let Some(d) = digit_value(c) else {
            return PyInt::Invalid;
        };
        prev_underscore = false;
        count += 1;
        value = value * 10 + i128::from(d);
        if value > i128::from(i64::MAX) + 1 {
            huge = true;
            value = 0;
        }
    }
    if count == 0 || prev_underscore {
        return PyInt::Invalid;
    }
    let value = if neg { -value } else { value };
    match i64::try_from(value) {
        Ok(v) if !huge => PyInt::Value(v),
        _ => PyInt::Huge,
    }
}

/// Python's `float(text)`, or `None` where it raises `ValueError`.
pub(crate) fn py_float(text: &str) -> Option<f64> {
    let s = strip(text);
    let mut ascii = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            // only between two digits
            let next_digit = chars.get(i + 1).is_some_and(|n| digit_value(*n).is_some());
            if prev.is_none_or(|p| digit_value(p).is_none()) || !next_digit {
                return None;
            }
            prev = Some(c);
            continue;
        }
        if let Some(d) = digit_value(c) {
            ascii.push(char::from(b'0' + d as u8));
        } else if c.is_ascii() {
            ascii.push(c);
        } else {
            return None;
        }
        prev = Some(c);
    }
    let body = ascii.trim_start_matches(['+', '-']);
    if ascii.len() - body.len() > 1 {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return ascii.parse::<f64>().ok();
    }
    // Python's grammar: digits [. digits] | . digits, optional exponent
    let (mant, exp) = match lower.find('e') {
        Some(p) => (&lower[..p], Some(&lower[p + 1..])),
        None => (lower.as_str(), None),
    };
    let (int_part, frac_part) = match mant.find('.') {
        Some(p) => (&mant[..p], Some(&mant[p + 1..])),
        None => (mant, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !frac_part.is_none_or(all_digits) {
        return None;
    }
    if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
        return None;
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !all_digits(e) {
            return None;
        }
    }
    ascii.parse::<f64>().ok()
}

/// Number of Python characters in `s[..byte]`.
pub(crate) fn char_index(s: &str, byte: usize) -> usize {
    let head = &s.as_bytes()[..byte];
    if head.is_ascii() {
        byte
    } else {
        head.iter().filter(|b| (**b & 0xC0) != 0x80).count()
    }
}

/// Byte offset of the Python character index `ci` in `s` (clamped to the end).
pub(crate) fn byte_index(s: &str, ci: usize) -> usize {
    let b = s.as_bytes();
    if ci >= b.len() {
        // may still fall inside a multi-byte string; count properly then
        if b.is_ascii() {
            return b.len();
        }
    } else if b[..ci].is_ascii() {
        return ci;
    }
    match s.char_indices().nth(ci) {
        Some((pos, _)) => pos,
        None => s.len(),
    }
}

/// Python's `s[ci]` for a non-negative index (None when out of range).
pub(crate) fn char_at(s: &str, ci: usize) -> Option<char> {
    let b = s.as_bytes();
    if ci < b.len() && b[..=ci].is_ascii() {
        return Some(char::from(b[ci]));
    }
    s.chars().nth(ci)
}

/// Python's `s[ci - 1:ci]` as an optional character (`''` is `None`); an
/// index of 0 gives the empty slice `s[-1:0]`.
pub(crate) fn char_before(s: &str, ci: usize) -> Option<char> {
    if ci == 0 { None } else { char_at(s, ci - 1) }
}

/// Python's `s[-1]` (None for an empty string).
pub(crate) fn last_char(s: &str) -> Option<char> {
    s.chars().next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_python() {
        assert_eq!(py_int("2005"), PyInt::Value(2005));
        assert_eq!(py_int(" 5"), PyInt::Value(5));
        assert_eq!(py_int("-05"), PyInt::Value(-5));
        assert_eq!(py_int("+1_000"), PyInt::Value(1000));
        assert_eq!(py_int("\u{0662}\u{0660}"), PyInt::Value(20));
        assert_eq!(py_int("\u{ff11}\u{ff19}"), PyInt::Value(19));
        assert_eq!(py_int(""), PyInt::Invalid);
        assert_eq!(py_int("1__0"), PyInt::Invalid);
        assert_eq!(py_int("_1"), PyInt::Invalid);
        assert_eq!(py_int("1_"), PyInt::Invalid);
        assert_eq!(py_int("jan"), PyInt::Invalid);
        assert_eq!(py_int("\u{b2}"), PyInt::Invalid);
        assert_eq!(py_int("99999999999999999999999"), PyInt::Huge);
    }

    #[test]
    fn float_follows_python() {
        assert_eq!(py_float("1700000000.123"), Some(1700000000.123));
        assert_eq!(py_float(" 12 "), Some(12.0));
        assert_eq!(py_float("1_0.5"), Some(10.5));
        assert_eq!(py_float(".5"), Some(0.5));
        assert_eq!(py_float("5."), Some(5.0));
        assert_eq!(py_float("1e3"), Some(1000.0));
        assert_eq!(py_float("\u{0661}\u{0662}"), Some(12.0));
        assert_eq!(py_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(py_float(""), None);
        assert_eq!(py_float("."), None);
        assert_eq!(py_float("1_"), None);
        assert_eq!(py_float("--1"), None);
        assert_eq!(py_float("0x10"), None);
    }

    #[test]
    fn character_offsets_count_python_characters() {
        let s = "é[2005] x";
        assert_eq!(char_index(s, 3), 2);
        assert_eq!(byte_index(s, 2), 3);
        assert_eq!(byte_index(s, 99), s.len());
        assert_eq!(char_at(s, 0), Some('é'));
        assert_eq!(char_at(s, 1), Some('['));
        assert_eq!(char_at(s, 9), None);
        assert_eq!(char_before(s, 0), None);
        assert_eq!(char_before(s, 2), Some('['));
        assert_eq!(last_char(s), Some('x'));
        assert_eq!(strip("\x1c a b\u{3000}"), "a b");
        assert!(is_word('_') && is_word('é') && !is_word('-'));
    }
}
