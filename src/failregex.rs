//! fail2ban's regex tags and the regex objects built from them.
//!
//! Filters write `<HOST>`, `<ADDR>`, `<F-USER>...</F-USER>`, `<SKIPLINES>`
//! and friends; this module expands them to Python regex text exactly as
//! fail2ban does (so error messages and `fail2ban-regex` output show the same
//! text), rewrites leading inline flag groups, compiles through
//! [`crate::regex::PyRegex`], and extracts the group dictionary of a match
//! with fail2ban's `alt_`/`tuple_` group merging.  It also computes, for
//! multi-line buffers, which buffered lines a match covered.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::ipaddr::{IpAddr, UseDns};
use crate::regex::{Captures, Flags, PyRegex, StartMemo};

const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
const DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";
const CIDR: &str = r"(?P<cidr>\d+)";

fn addr_re() -> String {
    format!(r"\[?(?:{IP4}|{IP6})\]?")
}

/// The static expansion of a tag name (without `<>`), if it has one.
fn static_tag(tag: &str, usedns: UseDns) -> Option<String> {
    Some(match tag {
        "HOST" if usedns == UseDns::No => addr_re(),
        "HOST" => format!("(?:{}|{DNS})", addr_re()),
        "IP4" | "F-IP4/" => IP4.to_string(),
        "IP6" | "F-IP6/" => IP6.to_string(),
        "ADDR" | "F-ADDR/" => addr_re(),
        "CIDR" | "F-CIDR/" => CIDR.to_string(),
        "SUBNET" | "F-SUBNET/" => format!(r"\[?(?:{IP4}|{IP6})(?:/{CIDR})?\]?"),
        "DNS" | "F-DNS/" => DNS.to_string(),
        "F-ID/" => r"(?P<fid>\S+)".to_string(),
        "F-PORT/" => r"(?P<fport>\w+)".to_string(),
        _ => return None,
    })
}

/// Maps a custom tag name to its group name (`ID` → `fid`, `PORT` → `fport`).
fn map_tag_to_group(tag: &str) -> String {
    let t = tag.to_lowercase();
    match t.as_str() {
        "id" => "fid".to_string(),
        "port" => "fport".to_string(),
        _ => t,
    }
}

fn ftag_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"</?[\w\-]+/?>").expect("tag regex"))
}

/// Expands fail2ban's tags in `regex` (Python `Regex._resolveHostTag`).
pub fn resolve_tags(regex: &str, usedns: UseDns) -> String {
    let mut open_tags: Vec<String> = Vec::new();
    let mut skiplines = 0;
    let mut out = String::with_capacity(regex.len() * 2);
    let mut last = 0;
    for m in ftag_re().find_iter(regex) {
        out.push_str(&regex[last..m.start()]);
        last = m.end();
        let tag = m.as_str();
        let name = &tag[1..tag.len() - 1];
        if name == "SKIPLINES" {
            out.push_str(&format!(r"\n(?P<skiplines{skiplines}>(?:(?:.*\n)*?))"));
            skiplines += 1;
            continue;
        }
        if let Some(exp) = static_tag(name, usedns) {
            out.push_str(&exp);
            continue;
        }
        let (closing, body) = match name.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, name),
        };
        let custom = body.strip_prefix("F-").filter(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
        match custom {
            Some(n) if closing => {
                if open_tags.iter().any(|t| t == n) {
                    out.push(')');
                } else {
                    out.push_str(tag);
                }
            }
            Some(n) => {
                open_tags.push(n.to_string());
                out.push_str(&format!("(?P<{}>", map_tag_to_group(n)));
            }
            None => out.push_str(tag),
        }
    }
    out.push_str(&regex[last..]);
    out
}

/// Rewrites a flag group at the start of a group to a scoped flag group:
/// `((?i)x)` and `(?:(?i)x)` become `(?i:x)` (fail2ban's
/// `R_GLOB2LOCFLAGS`; note that a capturing group loses its capture).
fn glob_to_local_flags(regex: &str) -> String {
    static RE: OnceLock<fancy_regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        fancy_regex::Regex::new(r"(?<!\\)\((?:\?:)?(\(\?[a-z]+)\)").expect("flag regex")
    });
    re.replace_all(regex, "$1:").into_owned()
}

/// A failure of building or using a fail2ban regex (Python `RegexException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexException(pub String);

impl fmt::Display for RegexException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RegexException {}

/// One line of a log as fail2ban splits it: text before the date, the date
/// text, text after it.  Stored as one string with two cut points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TupleLine {
    text: Arc<str>,
    a: usize,
    b: usize,
}

impl TupleLine {
    /// `(text[..a], text[a..b], text[b..])`.
    pub fn new(text: String, a: usize, b: usize) -> TupleLine {
        TupleLine::copied(&text, a, b)
    }

    /// Like [`new`](Self::new), copying `text` (one allocation).
    pub fn copied(text: &str, a: usize, b: usize) -> TupleLine {
        TupleLine {
            text: Arc::from(text),
            a,
            b,
        }
    }

    /// A line with no date part.
    pub fn plain(text: String) -> TupleLine {
        TupleLine::new(text, 0, 0)
    }

    /// The three parts.
    pub fn parts(&self) -> (&str, &str, &str) {
        (
            &self.text[..self.a],
            &self.text[self.a..self.b],
            &self.text[self.b..],
        )
    }

    /// All parts joined (the original line).
    pub fn joined(&self) -> &str {
        &self.text
    }

    /// The line without its date part (what regexes see).
    pub fn push_undated(&self, out: &mut String) {
        out.push_str(&self.text[..self.a]);
        out.push_str(&self.text[self.b..]);
    }

    /// The line without its date part, as a new string.
    pub fn undated(&self) -> String {
        let mut s = String::with_capacity(self.text.len());
        self.push_undated(&mut s);
        s
    }

    /// Whether the lines without their date parts are the same text.
    pub fn same_undated(&self, other: &TupleLine) -> bool {
        if Arc::ptr_eq(&self.text, &other.text) && (self.a, self.b) == (other.a, other.b) {
            return true;
        }
        let (a, _, c) = self.parts();
        let (x, _, z) = other.parts();
        a.len() + c.len() == x.len() + z.len()
            && a.bytes().chain(c.bytes()).eq(x.bytes().chain(z.bytes()))
    }

    /// The date text.
    pub fn date_text(&self) -> &str {
        &self.text[self.a..self.b]
    }
}

/// Builds fail2ban's match buffer: the undated lines joined by `\n`, plus a
/// final `\n`.
pub fn tuple_lines_buf(lines: &[TupleLine], out: &mut String) {
    out.clear();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        l.push_undated(out);
    }
    out.push('\n');
}

/// A value in a failure's group dictionary.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Str(Arc<str>),
    /// A `tuple_` combination.
    Tuple(Vec<Value>),
    /// A counter flag such as `mlfpending`.
    Int(i64),
    /// The `users` set (insertion order).
    Set(Vec<String>),
    /// Matched lines (`matches`, `nofail-matches`).
    Lines(Vec<TupleLine>),
    /// The address of a failure whose id is something else (`ip`).
    Ip(IpAddr),
}

impl Value {
    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Str(s) => !s.is_empty(),
            Value::Tuple(v) => !v.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Set(v) => !v.is_empty(),
            Value::Lines(v) => !v.is_empty(),
            Value::Ip(_) => true,
        }
    }

    /// The string value, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// An insertion-ordered dictionary, as Python's `dict` of groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Groups(Vec<(Arc<str>, Value)>);

impl Groups {
    pub fn new() -> Groups {
        Groups(Vec::new())
    }

    /// A copy with room for `n` more entries.
    pub fn clone_with_room(&self, n: usize) -> Groups {
        let mut entries = Vec::with_capacity(self.0.len() + n);
        entries.extend(self.0.iter().cloned());
        Groups(entries)
    }

    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| &**n == k).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(n, _)| &**n == k).map(|(_, v)| v)
    }

    /// `get(k)` as a string, treating `None` and non-strings as absent.
    pub fn get_str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }

    /// Python truthiness of `d.get(k)`.
    pub fn truthy(&self, k: &str) -> bool {
        self.get(k).is_some_and(Value::truthy)
    }

    /// `d[k] = v` (keeps the position of an existing key).
    pub fn set(&mut self, k: &str, v: Value) {
        match self.get_mut(k) {
            Some(slot) => *slot = v,
            None => self.0.push((Arc::from(k), v)),
        }
    }

    /// `d[k] = v` with a key already shared (no new key allocation).
    pub fn set_shared(&mut self, k: &Arc<str>, v: Value) {
        match self.get_mut(k) {
            Some(slot) => *slot = v,
            None => self.0.push((k.clone(), v)),
        }
    }

    /// `d.pop(k, None)`.
    pub fn pop(&mut self, k: &str) -> Option<Value> {
        let i = self.0.iter().position(|(n, _)| &**n == k)?;
        Some(self.0.remove(i).1)
    }

    pub fn contains(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Arc<str>, Value)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Groups {
    type Item = (Arc<str>, Value);
    type IntoIter = std::vec::IntoIter<(Arc<str>, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A compiled fail2ban regex (prefregex, failregex or ignoreregex).
#[derive(Debug)]
pub struct Regex {
    /// The regex text after tag expansion and flag rewriting.
    expanded: String,
    re: PyRegex,
    /// Named groups in definition order with their index.
    names: Vec<(Arc<str>, usize)>,
    /// Group indices in definition order with their names.
    alt_values: Vec<(String, String)>,
    tuple_values: Vec<(String, String)>,
    skiplines: Vec<usize>,
    /// For a prefregex `^P(?P<content>.+)$`: `P.` compiled, which finds the
    /// same content start without capturing the (long) content.
    content_tail: Option<PyRegex>,
    /// The answers of `content_tail` (see [`StartMemo`]).
    tail_memo: std::sync::Mutex<StartMemo>,
}

/// Which buffered lines a match covered, as indices into the original lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSplit {
    pub matched: Vec<usize>,
    pub unmatched: Vec<usize>,
}

/// A successful search: the captures and the split of the buffered lines.
#[derive(Debug, Clone)]
pub struct RegexMatch {
    pub caps: Captures,
    pub lines: LineSplit,
}

impl Regex {
    /// Builds a regex the way fail2ban's `Regex.__init__` does.
    pub fn new(regex: &str, multiline: bool, usedns: UseDns) -> Result<Regex, RegexException> {
        let expanded = resolve_tags(regex, usedns);
        if expanded.trim_start().is_empty() {
            return Err(RegexException("Cannot add empty regex".to_string()));
        }
        let expanded = glob_to_local_flags(&expanded);
        let flags = Flags {
            multiline,
            ..Flags::default()
        };
        let re = PyRegex::with_flags(&expanded, flags).map_err(|e| {
            RegexException(format!(
                "Unable to compile regular expression '{expanded}':\n{e}"
            ))
        })?;
        let mut alt_values = Vec::new();
        let mut tuple_values = Vec::new();
        for (name, _) in re.group_names() {
            if name.len() <= 4 {
                continue;
            }
            for (prefix, list) in [("alt_", &mut alt_values), ("tuple_", &mut tuple_values)] {
                if let Some(rest) = name.strip_prefix(prefix) {
                    list.push((name.clone(), map_tag_to_group(strip_index_suffix(rest))));
                }
            }
        }
        alt_values.sort();
        tuple_values.sort();
        let skiplines = (0..)
            .map_while(|k| re.group_index(&format!("skiplines{k}")))
            .collect();
        let content_tail = if multiline {
            None
        } else {
            content_tail(&expanded)
        };
        let names = re
            .group_names()
            .iter()
            .map(|(n, i)| (Arc::from(n.as_str()), *i))
            .collect();
        Ok(Regex {
            expanded,
            re,
            names,
            alt_values,
            tuple_values,
            skiplines,
            content_tail,
            tail_memo: std::sync::Mutex::default(),
        })
    }

    /// Searches `buf` with a prefregex: the group dictionary of the match
    /// but `content`, and the span of `content` in `buf` (`None` when the
    /// group did not take part; the callers drop the group, so it is
    /// neither copied nor stored).
    ///
    /// A prefregex of the shape `^P(?P<content>.+)$` (21 shipped filters)
    /// is searched as `^P.` when the buffer's only `\n` is its last byte:
    /// `.+$` then succeeds exactly where `.` does (one non-newline
    /// character follows), so the backtracking priority picks the same path
    /// through `P`, and the content is the rest of the line.  This avoids
    /// capturing the content, the costliest part of the search.
    pub fn search_prefix(&self, buf: &str) -> Option<(Groups, Option<(usize, usize)>)> {
        thread_local! {
            /// The spans of the last search on this thread, reused (the
            /// groups are copied out of them).
            static CAPS: std::cell::Cell<Captures> = const {
                std::cell::Cell::new(Captures::new())
            };
        }
        let mut caps = CAPS.take();
        let found = self.search_prefix_with(buf, &mut caps);
        CAPS.set(caps);
        found
    }

    fn search_prefix_with(
        &self,
        buf: &str,
        caps: &mut Captures,
    ) -> Option<(Groups, Option<(usize, usize)>)> {
        if let Some(tail) = &self.content_tail
            && memchr::memchr(b'\n', buf.as_bytes()).is_some_and(|i| i + 1 == buf.len())
        {
            let hit = match self.tail_memo.try_lock() {
                Ok(mut memo) if tail.at_start() => tail.match_start_memo(buf, caps, &mut memo),
                _ => tail.search_into(buf, 0, buf.len(), caps),
            };
            if !hit {
                return None;
            }
            let (_, end) = caps.span();
            let last = buf[..end].chars().next_back().map_or(0, char::len_utf8);
            let mut fail = Groups(Vec::with_capacity(self.names.len()));
            for (name, _) in &self.names {
                if &**name != "content" {
                    let i = tail.group_index(name).expect("group of the head");
                    fail.0.push((name.clone(), span_value(buf, caps.get(i))));
                }
            }
            self.merge_complex_groups(&mut fail);
            return Some((fail, Some((end - last, buf.len() - 1))));
        }
        if !self.re.search_into(buf, 0, buf.len(), caps) {
            return None;
        }
        let content = self.re.group_index("content").and_then(|i| caps.get(i));
        let mut fail = self.groups(buf, caps);
        fail.pop("content");
        Some((fail, content))
    }

    /// The effective regex text (tags expanded).
    pub fn expanded(&self) -> &str {
        &self.expanded
    }

    /// The compiled regex.
    pub fn compiled(&self) -> &PyRegex {
        &self.re
    }

    /// Whether a named group exists.
    pub fn has_group(&self, name: &str) -> bool {
        self.re.group_index(name).is_some()
    }

    /// Whether the regex matches anywhere in `buf` (no line bookkeeping).
    pub fn is_match(&self, buf: &str) -> bool {
        self.re.is_match(buf)
    }

    /// Searches `buf` (built from `org_lines` or replacing them) and, on a
    /// match, splits `org_lines` into matched and unmatched lines as
    /// fail2ban's `Regex.search` does.
    pub fn search(&self, buf: &str, org_lines: &[TupleLine]) -> Option<RegexMatch> {
        let caps = self.re.search(buf)?;
        let lines = if org_lines.len() <= 1 {
            LineSplit {
                matched: (0..org_lines.len()).collect(),
                unmatched: Vec::new(),
            }
        } else {
            self.split_lines(buf, &caps, org_lines)
        };
        Some(RegexMatch { caps, lines })
    }

    fn split_lines(&self, buf: &str, caps: &Captures, org: &[TupleLine]) -> LineSplit {
        let (start, end) = caps.span();
        let line_start = buf[..(start + 1).min(buf.len())]
            .rfind('\n')
            .map_or(0, |p| p + 1);
        let line_end = buf[end.saturating_sub(1).min(buf.len())..]
            .find('\n')
            .map_or(buf.len(), |p| end.saturating_sub(1) + p + 1);
        let count1 = buf[..line_start].matches('\n').count();
        let count2 = buf[..line_end].matches('\n').count();
        let clamp = |i: usize| i.min(org.len());
        let mut matched: Vec<usize> = (clamp(count1)..clamp(count2)).collect();
        let mut unmatched: Vec<usize> = (0..clamp(count1)).collect();
        let skipped = self.skipped_lines(buf, caps);
        let mut n = 0;
        for skipped_line in &skipped {
            let found = matched[n.min(matched.len())..]
                .iter()
                .position(|&i| org[i].undated() == *skipped_line);
            if let Some(m) = found {
                unmatched.push(matched.remove(n + m));
                n += m;
            }
        }
        unmatched.extend(clamp(count2)..org.len());
        LineSplit { matched, unmatched }
    }

    /// The lines captured by `<SKIPLINES>` groups.
    fn skipped_lines(&self, buf: &str, caps: &Captures) -> Vec<String> {
        let mut text = String::new();
        for &g in &self.skiplines {
            if let Some((s, e)) = caps.get(g) {
                text.push_str(&buf[s..e]);
            }
        }
        py_splitlines(&text)
    }

    /// The group dictionary of a match (`groupdict()` with `alt_`/`tuple_`
    /// merging).
    pub fn groups(&self, buf: &str, caps: &Captures) -> Groups {
        let mut fail = Groups(
            self.names
                .iter()
                .map(|(name, i)| (name.clone(), span_value(buf, caps.get(*i))))
                .collect(),
        );
        self.merge_complex_groups(&mut fail);
        fail
    }

    /// Applies the `alt_` and `tuple_` group rules to a group dictionary.
    fn merge_complex_groups(&self, fail: &mut Groups) {
        for (k, n) in &self.alt_values {
            let v = fail.get(k).cloned().unwrap_or(Value::None);
            if v.truthy() && !fail.truthy(n) {
                fail.set(n, v);
            }
        }
        for (k, n) in &self.tuple_values {
            let v = fail.get(k).cloned().unwrap_or(Value::None);
            let t = match fail.get(n).cloned() {
                Some(Value::Tuple(mut items)) => {
                    items.push(v);
                    items
                }
                other => vec![other.unwrap_or(Value::None), v],
            };
            fail.set(n, Value::Tuple(t));
        }
    }

    /// The text of a named group of a match.
    pub fn group_str<'t>(&self, buf: &'t str, caps: &Captures, name: &str) -> Option<&'t str> {
        let i = self.re.group_index(name)?;
        caps.get(i).map(|(s, e)| &buf[s..e])
    }
}

/// The value of a group span.
fn span_value(buf: &str, span: Option<(usize, usize)>) -> Value {
    span.map_or(Value::None, |(s, e)| Value::Str(buf[s..e].into()))
}

/// For an expanded prefregex `^P(?P<content>.+)$` whose `P` has no
/// top-level alternative and does not refer to `content`, compiles `^P.`.
fn content_tail(expanded: &str) -> Option<PyRegex> {
    let head = expanded.strip_suffix("(?P<content>.+)$")?;
    if !head.starts_with('^') || head.contains("content") || has_top_level_bar(head) {
        return None;
    }
    PyRegex::new(&format!("{head}.")).ok()
}

/// Whether a regex text has a `|` outside any group or class (or ends
/// inside one: then it is not a complete regex and no rewrite is done).
fn has_top_level_bar(re: &str) -> bool {
    let mut depth = 0i32;
    let mut in_class = false;
    let mut chars = re.chars().peekable();
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
            class_start = false;
            continue;
        }
        if in_class {
            if c == ']' && !class_start {
                in_class = false;
            }
            class_start = class_start && c == '^';
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => return true,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    depth != 0 || in_class
}

/// Strips a trailing `_<digits>` (the `(?:_\d+)?` of fail2ban's complex
/// group names, matched lazily so only the last one goes).
fn strip_index_suffix(rest: &str) -> &str {
    if let Some(p) = rest.rfind('_') {
        let digits = &rest[p + 1..];
        if !digits.is_empty() && digits.chars().all(|c| c.is_numeric()) {
            return &rest[..p];
        }
    }
    rest
}

/// Python's `str.splitlines()` (line boundaries \n, \r, \r\n, \v, \f,
/// \x1c-\x1e, \x85, \u2028, \u2029).
pub fn py_splitlines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => {
                out.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Group names that can identify a failure.
pub const FAILURE_ID_GROUPS: [&str; 4] = ["fid", "ip4", "ip6", "dns"];

/// Builds a failregex: a [`Regex`] that must have a failure-id group
/// (`fid`, `ip4`, `ip6`, `dns` or `mlfid`) itself or in the prefregex.
pub fn fail_regex(
    regex: &str,
    prefregex: Option<&Regex>,
    multiline: bool,
    usedns: UseDns,
) -> Result<Regex, RegexException> {
    let re = Regex::new(regex, multiline, usedns)?;
    let has_id = |r: &Regex| {
        FAILURE_ID_GROUPS
            .iter()
            .chain(std::iter::once(&"mlfid"))
            .any(|g| r.has_group(g))
    };
    if !has_id(&re) && !prefregex.is_some_and(has_id) {
        return Err(RegexException(format!(
            "No failure-id group in '{}'",
            re.expanded
        )));
    }
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_tag_expands_as_fail2ban() {
        let full = r"(?:\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)))\]?|(?P<dns>[\w\-.^_]*\w))";
        assert_eq!(resolve_tags("<HOST>", UseDns::Warn), full);
        assert!(!resolve_tags("<HOST>", UseDns::No).contains("dns"));
    }

    #[test]
    fn custom_tags_open_and_close() {
        assert_eq!(
            resolve_tags(
                "<F-USER>\\S+</F-USER> </F-X> <F-ID>x</F-ID> <f-user> <F-PORT/>",
                UseDns::Warn
            ),
            r"(?P<user>\S+) </F-X> (?P<fid>x) <f-user> (?P<fport>\w+)"
        );
        assert_eq!(
            resolve_tags("a<SKIPLINES>b<SKIPLINES>", UseDns::Warn),
            r"a\n(?P<skiplines0>(?:(?:.*\n)*?))b\n(?P<skiplines1>(?:(?:.*\n)*?))"
        );
    }

    #[test]
    fn global_flags_become_scoped() {
        assert_eq!(glob_to_local_flags("a((?i)b|c)"), "a(?i:b|c)");
        assert_eq!(glob_to_local_flags("a(?:(?i)b)"), "a(?i:b)");
        assert_eq!(glob_to_local_flags(r"a\((?i)b)"), r"a\((?i)b)");
    }

    #[test]
    fn alt_and_tuple_groups_merge() {
        let re = Regex::new(
            r"(?P<fid>a)?(?P<alt_user>u+)?(?P<ALT>x)?-(?P<tuple_fid_1>t1)(?P<tuple_fid_2>t2)",
            false,
            UseDns::Raw,
        )
        .unwrap();
        let buf = "uu-t1t2\n";
        let m = re.search(buf, &[]).unwrap();
        let g = re.groups(buf, &m.caps);
        assert_eq!(g.get_str("user"), Some("uu"));
        assert_eq!(
            g.get("fid"),
            Some(&Value::Tuple(vec![
                Value::None,
                Value::Str("t1".into()),
                Value::Str("t2".into())
            ]))
        );
    }

    #[test]
    fn failregex_needs_an_id_group() {
        let e = fail_regex("^abc$", None, false, UseDns::Warn).unwrap_err();
        assert_eq!(e.0, "No failure-id group in '^abc$'");
        assert!(fail_regex("^<HOST>$", None, false, UseDns::Warn).is_ok());
        let e = Regex::new("  ", false, UseDns::Warn).unwrap_err();
        assert_eq!(e.0, "Cannot add empty regex");
    }

    #[test]
    fn content_tail_gives_the_same_groups() {
        let pre = Regex::new(
            r"^(?:\[\])?\s*(?:\S+\s+)?(?:(?P<d>asterisk)\[\d+\]:\s+)?(?:NOTICE|WARNING)\[\d+\]:? [^:]+:\d*(?: [^:]+:)? <F-CONTENT>.+</F-CONTENT>$",
            false,
            UseDns::Raw,
        )
        .unwrap();
        assert!(pre.content_tail.is_some());
        for line in [
            "[] NOTICE[1234]: chan_sip.c:24310 handle_request_register: Registration from 'x' failed\n",
            "[] host asterisk[12]: WARNING[77] chan_sip.c: a: b: c\n",
            "[] NOTICE[1]: x.c:\n",
            "[] VERBOSE[1]: x.c: y\n",
            "[] NOTICE[1]: a: b\nc\n",
        ] {
            let slow = pre.re.search(line).map(|c| {
                let mut groups = pre.groups(line, &c);
                groups.pop("content");
                (groups, c.get(pre.re.group_index("content").unwrap()))
            });
            assert_eq!(pre.search_prefix(line), slow, "{line:?}");
        }
        assert!(has_top_level_bar("^a|b"));
        assert!(!has_top_level_bar(r"^(?:a|b)[|]\|"));
        assert!(content_tail(r"^a|b(?P<content>.+)$").is_none());
    }

    #[test]
    fn multiline_match_splits_lines() {
        let lines: Vec<TupleLine> = ["a 1", "b 2", "c 3"]
            .iter()
            .map(|s| TupleLine::plain(s.to_string()))
            .collect();
        let mut buf = String::new();
        tuple_lines_buf(&lines, &mut buf);
        let re = Regex::new(r"^b \d+\nc", true, UseDns::Raw).unwrap();
        let m = re.search(&buf, &lines).unwrap();
        assert_eq!(m.lines.matched, vec![1, 2]);
        assert_eq!(m.lines.unmatched, vec![0]);
        let re = Regex::new(r"^a \d<SKIPLINES>c (?P<fid>\d)", true, UseDns::Raw).unwrap();
        let m = re.search(&buf, &lines).unwrap();
        assert_eq!(m.lines.matched, vec![0, 2]);
        assert_eq!(m.lines.unmatched, vec![1]);
    }
}
