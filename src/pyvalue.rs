//! Python values as fail2ban shows them.
//!
//! fail2ban prints many of its data structures with Python's `repr()` and
//! `str()`: the command stream of `fail2ban-client -d`, the `-o row` output of
//! `fail2ban-regex`, the replies of the socket protocol.  `PyValue` models the
//! few Python types that occur there and renders them exactly as CPython 3.11
//! does (string quoting and escapes, float formatting, container syntax).

use std::fmt::Write;

/// A Python value, as far as fail2ban ever exchanges or prints one.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    /// A dict in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
    /// A set, printed in the order given.
    Set(Vec<PyValue>),
}

impl PyValue {
    /// Python's truth value (`bool(v)`).
    pub fn truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) | PyValue::Set(v) => !v.is_empty(),
            PyValue::Dict(v) => !v.is_empty(),
        }
    }

    /// Python's type name (`type(v).__name__`).
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
            PyValue::Set(_) => "set",
        }
    }

    /// Shorthand for a string value.
    pub fn str(s: impl Into<String>) -> PyValue {
        PyValue::Str(s.into())
    }

    /// A list of strings.
    pub fn str_list<I, S>(items: I) -> PyValue
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PyValue::List(items.into_iter().map(|s| PyValue::Str(s.into())).collect())
    }

    /// Python's `repr(value)`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    /// Python's `str(value)`: like `repr` except that a string is itself.
    pub fn to_py_str(&self) -> String {
        match self {
            PyValue::Str(s) => s.clone(),
            other => other.repr(),
        }
    }

    /// Appends `repr(self)` to `out`.
    pub fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => out.push_str(&str_repr(s)),
            PyValue::List(items) => write_seq(out, "[", "]", items, false),
            PyValue::Tuple(items) => write_seq(out, "(", ")", items, items.len() == 1),
            PyValue::Set(items) if items.is_empty() => out.push_str("set()"),
            PyValue::Set(items) => write_seq(out, "{", "}", items, false),
            PyValue::Dict(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_seq(out: &mut String, open: &str, close: &str, items: &[PyValue], trailing_comma: bool) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.write_repr(out);
    }
    if trailing_comma {
        out.push(',');
    }
    out.push_str(close);
}

impl From<&str> for PyValue {
    fn from(s: &str) -> Self {
        PyValue::Str(s.to_string())
    }
}

impl From<String> for PyValue {
    fn from(s: String) -> Self {
        PyValue::Str(s)
    }
}

impl From<i64> for PyValue {
    fn from(i: i64) -> Self {
        PyValue::Int(i)
    }
}

impl From<bool> for PyValue {
    fn from(b: bool) -> Self {
        PyValue::Bool(b)
    }
}

/// Whether CPython's `str.isprintable()` holds for this character.
///
/// Non-printable are the categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other
/// than the ASCII space.  Without a full Unicode table we cover the control
/// characters, all separators and the format characters that occur in
/// practice; unassigned code points are treated as printable.
pub fn is_printable(c: char) -> bool {
    let cp = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() {
        return false;
    }
    !matches!(cp,
        0x00A0 | 0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891
        | 0x08E2 | 0x1680 | 0x180E | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x2064
        | 0x2066..=0x206F | 0x3000 | 0xD800..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

/// Python's `repr()` of a `str`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let cp = c as u32;
                let _ = if cp < 0x100 {
                    write!(out, "\\x{cp:02x}")
                } else if cp < 0x10000 {
                    write!(out, "\\u{cp:04x}")
                } else {
                    write!(out, "\\U{cp:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a `float` (shortest round-trip digits; scientific
/// notation below 1e-4 and from 1e16 on).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("scientific format");
    let exp: i32 = exp.parse().expect("exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

/// Appends Python's `json.dumps` of the string `s`: quotes, the short
/// escapes, `\uXXXX` for other control characters and, with
/// `ensure_ascii` (Python's default), for everything outside `' '..='~'`
/// (as UTF-16 units).
pub fn json_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c if ensure_ascii || c < ' ' => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts of Python's `json.dumps(s)` and `json.dumps(s,
    /// ensure_ascii=False)`.
    #[test]
    fn json_strings_as_python_dumps_them() {
        let s = "a\"\\\n\u{1}\u{e9}\u{1F600}\u{7f}";
        let mut ascii = String::new();
        json_string(&mut ascii, s, true);
        assert_eq!(ascii, r#""a\"\\\n\u0001\u00e9\ud83d\ude00\u007f""#);
        let mut kept = String::new();
        json_string(&mut kept, s, false);
        assert_eq!(kept, "\"a\\\"\\\\\\n\\u0001\u{e9}\u{1F600}\u{7f}\"");
    }

    #[test]
    fn string_quoting_follows_python() {
        assert_eq!(str_repr("abc"), "'abc'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("tab\there\n"), "'tab\\there\\n'");
        assert_eq!(str_repr("\\d+"), "'\\\\d+'");
        assert_eq!(str_repr("\x00\x7f\u{a0}é"), "'\\x00\\x7f\\xa0é'");
        assert_eq!(str_repr("\u{2028}"), "'\\u2028'");
    }

    #[test]
    fn floats_follow_python() {
        assert_eq!(float_repr(1782060468.0), "1782060468.0");
        assert_eq!(float_repr(1700000000.123), "1700000000.123");
        assert_eq!(float_repr(0.5), "0.5");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(0.00001), "1e-05");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(100.0), "100.0");
    }

    #[test]
    fn containers_follow_python() {
        let v = PyValue::List(vec![
            PyValue::str("set"),
            PyValue::Int(3),
            PyValue::None,
            PyValue::Tuple(vec![PyValue::str("x")]),
            PyValue::Dict(vec![(PyValue::str("k"), PyValue::Bool(true))]),
            PyValue::Set(vec![]),
        ]);
        assert_eq!(v.repr(), "['set', 3, None, ('x',), {'k': True}, set()]");
    }
}
