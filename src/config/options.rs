//! Small parsers of option values, with Python fail2ban's exact results
//! and error texts:
//! - [`extract_options`]: `name[opt=val, opt2="a,b"][opt3='x']` → name and
//!   ordered options (fail2ban's `extractOptions`);
//! - [`split_with_options`]: a list of such units separated by whitespace or
//!   new lines, brackets possibly spanning lines (`splitWithOptions`);
//! - [`splitwords`], [`as_bool`], [`py_int`]: word lists, booleans and
//!   Python's `int()`;
//! - [`shlex_split`]: Python's `shlex.split` (POSIX mode, no comments).
//!
//! fail2ban defines the first two with regular expressions whose exact
//! backtracking behaviour is observable (which text is an error, where a
//! malformed action list is cut).  They are matched here by hand, following
//! the expressions' alternatives in Python's order, so that the results do
//! not depend on a regex engine's flavour of `\s`, `\w` or `$`.

use super::{Error, is_py_space, is_py_word, py_strip};
use crate::pyvalue::str_repr;
use indexmap::IndexMap;
use std::collections::HashSet;

/// Characters of an option name inside brackets (`[\w\-_\.]`).
fn is_opt_name(c: char) -> bool {
    is_py_word(c) || c == '-' || c == '.'
}

fn unexpected_syntax() -> Error {
    Error::Value("unexpected option syntax".to_string())
}

/// Splits `name[opt=val, ...]` into the name and its options (fail2ban's
/// `extractOptions`).
///
/// The name is everything before the first `[`, untrimmed; several bracket
/// groups are merged; values are trimmed and unquoted; later duplicates win
/// (keeping the first position).  Errors are Python's `ValueError` texts:
/// `unexpected option syntax`, `unexpected syntax at N after option 'o': ...`,
/// `expected option, wrong syntax at N: ...`.
pub fn extract_options(option: &str) -> Result<(String, IndexMap<String, String>), Error> {
    let name_end = option.find('[').unwrap_or(option.len());
    if name_end == 0 {
        return Err(unexpected_syntax());
    }
    let name = option[..name_end].to_string();
    let mut opts = IndexMap::new();
    if name_end == option.len() {
        return Ok((name, opts));
    }
    let close = match option.rfind(']') {
        Some(q) if q > name_end && option[q + 1..].chars().all(is_py_space) => q,
        _ => return Err(unexpected_syntax()),
    };
    let cs: Vec<char> = option[name_end + 1..close].chars().collect();
    let n = cs.len();
    // Python's `$`: the end, or before a final line feed.
    let at_end = |i: usize| i == n || (i + 1 == n && cs[i] == '\n');
    let excerpt = |from: usize| cs[from..n.min(from + 25)].iter().collect::<String>();
    let mut pos = 0;
    while pos < n {
        // One option: `\s*name=value` and a separator.
        let mut i = pos;
        while i < n && is_py_space(cs[i]) {
            i += 1;
        }
        let name_start = i;
        while i < n && is_opt_name(cs[i]) {
            i += 1;
        }
        if i > name_start && i < n && cs[i] == '=' {
            let opt: String = cs[name_start..i].iter().collect();
            let vstart = i + 1;
            let closing = |q: char| {
                (vstart < n && cs[vstart] == q)
                    .then(|| cs[vstart + 1..].iter().position(|&c| c == q))
                    .flatten()
                    .map(|len| vstart + 1 + len)
            };
            let (value, vend) = if let Some(c) = closing('"').or_else(|| closing('\'')) {
                (&cs[vstart + 1..c], c + 1)
            } else {
                let end = (vstart..n)
                    .find(|&j| cs[j] == ',' || cs[j] == ']')
                    .unwrap_or(n);
                (&cs[vstart..end], end)
            };
            let next = if vend < n && cs[vend] == ',' {
                vend + 1
            } else if let Some(k) = (vend < n && cs[vend] == ']')
                .then(|| (vend + 1..n).find(|&k| !is_py_space(cs[k])))
                .flatten()
                .filter(|&k| cs[k] == '[')
            {
                k + 1
            } else if at_end(vend) {
                vend
            } else {
                return Err(Error::Value(format!(
                    "unexpected syntax at {} after option {}: {}",
                    vend,
                    str_repr(&opt),
                    excerpt(vend)
                )));
            };
            let value: String = value.iter().collect();
            opts.insert(py_strip(&opt).to_string(), py_strip(&value).to_string());
            pos = next;
            continue;
        }
        // An optional trailing comma and white space up to the end.
        let mut j = pos;
        if cs[j] == ',' {
            j += 1;
        }
        if cs[j..].iter().all(|&c| is_py_space(c)) {
            break;
        }
        return Err(Error::Value(format!(
            "expected option, wrong syntax at {}: {}",
            pos,
            excerpt(pos)
        )));
    }
    Ok((name, opts))
}

/// Splits a list of `name[options]` units (fail2ban's `splitWithOptions`):
/// units are separated by white space; a bracket part may contain white
/// space and new lines inside quoted or unquoted values; text that is not a
/// complete unit is cut at white space.  Results may carry one trailing
/// white-space character, as in Python.
pub fn split_with_options(option: &str) -> Vec<String> {
    let mut splitter = Splitter {
        cs: option.chars().collect(),
        failed: HashSet::new(),
    };
    let n = splitter.cs.len();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < n {
        if is_py_space(splitter.cs[pos]) {
            pos += 1;
            continue;
        }
        let end = splitter.unit_at(pos);
        out.push(splitter.cs[pos..end].iter().collect());
        pos = end;
    }
    out
}

/// Backtracking matcher of one unit of `splitWithOptions`.
struct Splitter {
    cs: Vec<char>,
    /// Positions where the option-list loop is known to fail (memo of the
    /// current bracket group, to keep the backtracking polynomial).
    failed: HashSet<usize>,
}

impl Splitter {
    fn space(&self, i: usize) -> bool {
        i < self.cs.len() && is_py_space(self.cs[i])
    }

    fn is(&self, i: usize, c: char) -> bool {
        self.cs.get(i) == Some(&c)
    }

    /// End of the white-space run starting at `i`.
    fn skip_space(&self, mut i: usize) -> usize {
        while self.space(i) {
            i += 1;
        }
        i
    }

    /// The unit starting at the non-space position `p`.
    fn unit_at(&mut self, p: usize) -> usize {
        let n = self.cs.len();
        if !self.is(p, '[') {
            let mut j = p;
            while j < n && !is_py_space(self.cs[j]) && self.cs[j] != '[' {
                j += 1;
            }
            self.failed.clear();
            if let Some(end) = self.group(j) {
                return end;
            }
            if let Some(end) = self.tail(j) {
                return end;
            }
        }
        let mut k = p;
        while k < n && !is_py_space(self.cs[k]) {
            k += 1;
        }
        k
    }

    /// `\s*` and the look-ahead `(?=\n\s*|\s+|$)` after a unit ending at `e`.
    fn tail(&self, e: usize) -> Option<usize> {
        let n = self.cs.len();
        if e == n {
            return Some(n);
        }
        let r = self.skip_space(e);
        if r == e {
            None
        } else if r == n {
            Some(n)
        } else {
            Some(r - 1)
        }
    }

    /// A bracket group `\s*\[\s*(option)*\]` after the name ending at `j`.
    fn group(&mut self, j: usize) -> Option<usize> {
        let i = self.skip_space(j);
        if !self.is(i, '[') {
            return None;
        }
        let i = self.skip_space(i + 1);
        self.options(i)
    }

    /// The greedy loop over options, then `\]` and the tail.
    fn options(&mut self, p: usize) -> Option<usize> {
        if self.failed.contains(&p) {
            return None;
        }
        let found = self.option(p).or_else(|| {
            if self.is(p, ']') {
                self.tail(p + 1)
            } else {
                None
            }
        });
        if found.is_none() {
            self.failed.insert(p);
        }
        found
    }

    /// One `name=value\s*(?:,|\]\s*\[)?\s*` and the rest of the loop.
    fn option(&mut self, p: usize) -> Option<usize> {
        let n = self.cs.len();
        let mut q = p;
        while q < n && is_opt_name(self.cs[q]) {
            q += 1;
        }
        if q == p || !self.is(q, '=') {
            return None;
        }
        let v = q + 1;
        for quote in ['"', '\''] {
            if self.is(v, quote)
                && let Some(len) = self.cs[v + 1..].iter().position(|&c| c == quote)
                && let Some(end) = self.after_value(v + len + 2)
            {
                return Some(end);
            }
        }
        let mut m = v;
        while m < n && self.cs[m] != ',' && self.cs[m] != ']' {
            m += 1;
        }
        (v..=m).rev().find_map(|e| self.after_value(e))
    }

    /// `\s*(?:,|\]\s*\[)?\s*` after a value, then the rest of the loop.
    fn after_value(&mut self, p: usize) -> Option<usize> {
        let r1 = self.skip_space(p);
        for pos in (p..=r1).rev() {
            if self.is(pos, ',')
                && let Some(end) = self.after_separator(pos + 1)
            {
                return Some(end);
            }
            if self.is(pos, ']') {
                let b = self.skip_space(pos + 1);
                if self.is(b, '[')
                    && let Some(end) = self.after_separator(b + 1)
                {
                    return Some(end);
                }
            }
            if let Some(end) = self.after_separator(pos) {
                return Some(end);
            }
        }
        None
    }

    fn after_separator(&mut self, p: usize) -> Option<usize> {
        let r = self.skip_space(p);
        (p..=r).rev().find_map(|e| self.options(e))
    }
}

/// fail2ban's `splitwords`: words separated by spaces, commas or new lines,
/// each trimmed, empty ones dropped.
pub fn splitwords(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(py_strip)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// fail2ban's `_as_bool` for a string: true iff `1`, `on`, `true` or `yes`
/// (any case).
pub fn as_bool(s: &str) -> bool {
    matches!(s.to_lowercase().as_str(), "1" | "on" | "true" | "yes")
}

/// Python's `int(s)` for a string: surrounding white space, a sign and `_`
/// between digits are accepted; `None` where Python raises `ValueError`
/// (and for values beyond 64 bits).  Only ASCII digits are recognised.
pub fn py_int(s: &str) -> Option<i64> {
    let t = py_strip(s);
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let value: i128 = digits.replace('_', "").parse().ok()?;
    i64::try_from(if neg { -value } else { value }).ok()
}

/// Python's `shlex.split(s)` (POSIX mode, no comments).  Errors are
/// Python's `ValueError` texts.
pub fn shlex_split(s: &str) -> Result<Vec<String>, Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Space,
        Word,
        Quote(char),
        Escape(Option<char>),
    }
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut out = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    let mut state = State::Space;
    for c in s.chars() {
        match state {
            State::Space | State::Word if is_ws(c) => {
                if !token.is_empty() || quoted {
                    out.push(std::mem::take(&mut token));
                }
                quoted = false;
                state = State::Space;
            }
            State::Space | State::Word => match c {
                '\\' => state = State::Escape(None),
                '"' | '\'' => state = State::Quote(c),
                _ => {
                    token.push(c);
                    state = State::Word;
                }
            },
            State::Quote(q) => {
                quoted = true;
                if c == q {
                    state = State::Word;
                } else if c == '\\' && q == '"' {
                    state = State::Escape(Some(q));
                } else {
                    token.push(c);
                }
            }
            State::Escape(inside) => {
                if let Some(q) = inside
                    && c != q
                    && c != '\\'
                {
                    token.push('\\');
                }
                token.push(c);
                state = inside.map_or(State::Word, State::Quote);
            }
        }
    }
    match state {
        State::Quote(_) => Err(Error::Value("No closing quotation".to_string())),
        State::Escape(_) => Err(Error::Value("No escaped character".to_string())),
        _ => {
            if !token.is_empty() || quoted {
                out.push(token);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> (String, Vec<(String, String)>) {
        let (name, opts) = extract_options(s).unwrap();
        (name, opts.into_iter().collect())
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(s: &str) -> String {
        extract_options(s).unwrap_err().to_string()
    }

    #[test]
    fn extract_plain_and_grouped_options() {
        assert_eq!(ex("sshd"), ("sshd".into(), vec![]));
        assert_eq!(ex("sshd  "), ("sshd  ".into(), vec![]));
        assert_eq!(ex("a [p=1]"), ("a ".into(), kv(&[("p", "1")])));
        assert_eq!(
            ex(r#"x[p1=0, p2="a,b]", p3='c"d', p5=plain value]"#).1,
            kv(&[
                ("p1", "0"),
                ("p2", "a,b]"),
                ("p3", "c\"d"),
                ("p5", "plain value")
            ])
        );
        assert_eq!(
            ex("a[x=1][y=2] [z=3]").1,
            kv(&[("x", "1"), ("y", "2"), ("z", "3")])
        );
        assert_eq!(ex("a[x=1, x=2, y=a=b,]").1, kv(&[("x", "2"), ("y", "a=b")]));
        assert_eq!(ex("a[]").1, vec![]);
        assert_eq!(ex("a[x=\"l1\nl2\"]\n").1, kv(&[("x", "l1\nl2")]));
        assert_eq!(ex("a[x=\"1\"\n]").1, kv(&[("x", "1")]));
    }

    #[test]
    fn extract_errors() {
        assert_eq!(err("[p=1]"), "unexpected option syntax");
        assert_eq!(err(""), "unexpected option syntax");
        assert_eq!(err("a[p=1] junk"), "unexpected option syntax");
        assert_eq!(err("a[p=1"), "unexpected option syntax");
        assert_eq!(
            err("a[p1=\"x\"y, p2=1]"),
            "unexpected syntax at 6 after option 'p1': y, p2=1"
        );
        assert_eq!(err("a[p=1]]"), "unexpected syntax at 3 after option 'p': ]");
        assert_eq!(
            err("a[mode = x]"),
            "expected option, wrong syntax at 0: mode = x"
        );
        assert_eq!(err("a[x=1, b]"), "expected option, wrong syntax at 4:  b");
        assert_eq!(
            err("a[x=1, ¿abcdefghijklmnopqrstuvwxyz]"),
            "expected option, wrong syntax at 4:  ¿abcdefghijklmnopqrstuvw"
        );
    }

    #[test]
    fn split_units() {
        assert_eq!(split_with_options("a b"), vec!["a", "b"]);
        assert_eq!(split_with_options("a  b"), vec!["a ", "b"]);
        assert_eq!(
            split_with_options("\n  iptables[name=x, port=\"1,2\"]\n  mail[dest=a b]\n"),
            vec!["iptables[name=x, port=\"1,2\"]\n ", "mail[dest=a b]\n"]
        );
        assert_eq!(
            split_with_options("dummy[a=1, b]"),
            vec!["dummy[a=1,", "b]"]
        );
        assert_eq!(split_with_options("a[x=1] [y"), vec!["a[x=1]", "[y"]);
        assert_eq!(
            split_with_options("a[x=1] [y=2] b"),
            vec!["a[x=1] [y=2]", "b"]
        );
        assert_eq!(split_with_options("a [x=1]"), vec!["a [x=1]"]);
        assert_eq!(
            split_with_options("a[x=1,\n   y=\"multi\nline\"]  next"),
            vec!["a[x=1,\n   y=\"multi\nline\"] ", "next"]
        );
        assert_eq!(
            split_with_options("a[x=1 y=2]z c"),
            vec!["a[x=1", "y=2]z", "c"]
        );
        assert_eq!(split_with_options(""), Vec::<String>::new());
    }

    #[test]
    fn split_backtracking_stays_polynomial() {
        let s = format!("a[{}]z", "x=1 ".repeat(300));
        assert_eq!(split_with_options(&s).len(), 301);
    }

    #[test]
    fn words_bools_ints() {
        assert_eq!(
            splitwords(" 127.0.0.1/8 ::1,\n10.0.0.1\t, x"),
            vec!["127.0.0.1/8", "::1", "10.0.0.1", "x"]
        );
        assert!(splitwords("").is_empty());
        assert!(as_bool("True") && as_bool("on") && as_bool("1") && as_bool("YES"));
        assert!(!as_bool("y") && !as_bool("") && !as_bool("false"));
        assert_eq!(py_int(" 1_000 "), Some(1000));
        assert_eq!(py_int("-5"), Some(-5));
        assert_eq!(py_int("+010"), Some(10));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int("_1"), None);
        assert_eq!(py_int("0x10"), None);
        assert_eq!(py_int("1.0"), None);
        assert_eq!(py_int(""), None);
    }

    #[test]
    fn shlex_like_python() {
        assert_eq!(
            shlex_split("_SYSTEMD_UNIT=sshd.service + _COMM=sshd").unwrap(),
            vec!["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]
        );
        assert_eq!(
            shlex_split(r#"a "b c" 'd\e' "f\"g\h" i\ j '' x"" "#).unwrap(),
            vec!["a", "b c", "d\\e", "f\"g\\h", "i j", "", "x"]
        );
        assert_eq!(shlex_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(
            shlex_split("a 'b").unwrap_err().to_string(),
            "No closing quotation"
        );
        assert_eq!(
            shlex_split("a \\").unwrap_err().to_string(),
            "No escaped character"
        );
    }
}
