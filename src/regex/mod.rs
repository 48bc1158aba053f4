//! Python `re` semantics for fail2ban's regular expressions.
//!
//! fail2ban's filters, prefregexes and date templates are Python regexes.
//! `PyRegex` compiles such a pattern and searches with Python's semantics.
//! (Provisional thin translation onto `fancy-regex`; the full Python-syntax
//! translator replaces the internals behind the same API.)

use std::fmt;

/// Compile flags, as Python's `re.MULTILINE`, `re.IGNORECASE`, `re.DOTALL`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub multiline: bool,
    pub ignorecase: bool,
    pub dotall: bool,
}

/// A compile error, displayed as Python's `str(re.error)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub msg: String,
    /// Character position in the pattern, as Python reports it.
    pub pos: Option<usize>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{} at position {}", self.msg, p),
            None => f.write_str(&self.msg),
        }
    }
}

impl std::error::Error for Error {}

/// Spans of the groups of one match (index 0 is the whole match), byte offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    spans: Vec<Option<(usize, usize)>>,
}

impl Captures {
    /// The span of group `i`, if it took part in the match.
    pub fn get(&self, i: usize) -> Option<(usize, usize)> {
        self.spans.get(i).copied().flatten()
    }

    /// Number of groups including group 0.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no spans at all.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The whole match span.
    pub fn span(&self) -> (usize, usize) {
        self.get(0).unwrap_or((0, 0))
    }
}

/// A compiled Python regex.
pub struct PyRegex {
    pattern: String,
    re: fancy_regex::Regex,
    names: Vec<(String, usize)>,
    groups: usize,
}

impl fmt::Debug for PyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PyRegex({:?})", self.pattern)
    }
}

impl PyRegex {
    /// Compiles `pattern` without flags.
    pub fn new(pattern: &str) -> Result<PyRegex, Error> {
        PyRegex::with_flags(pattern, Flags::default())
    }

    /// Compiles `pattern` with `flags`.
    pub fn with_flags(pattern: &str, flags: Flags) -> Result<PyRegex, Error> {
        let mut prefix = String::new();
        if flags.multiline {
            prefix.push('m');
        }
        if flags.ignorecase {
            prefix.push('i');
        }
        if flags.dotall {
            prefix.push('s');
        }
        let mut body = pattern
            .replace("(?P=", "\\k<")
            .replace("\\Z", "\\z")
            .replace("(?(", "(?(<");
        // close the conditional names and backreferences opened above
        body = fix_refs(&body);
        if !flags.multiline {
            body = replace_dollar(&body);
        }
        let full = if prefix.is_empty() {
            body
        } else {
            format!("(?{prefix}){body}")
        };
        let re = fancy_regex::Regex::new(&full).map_err(|e| Error {
            msg: e.to_string(),
            pos: None,
        })?;
        let mut names = Vec::new();
        let mut groups = 0;
        for (i, n) in re.capture_names().enumerate() {
            if i > 0 {
                groups = i;
            }
            if let Some(n) = n {
                names.push((n.to_string(), i));
            }
        }
        Ok(PyRegex {
            pattern: pattern.to_string(),
            re,
            names,
            groups,
        })
    }

    /// The Python pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Number of capture groups, excluding group 0.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Named groups in order of definition, with their group index.
    pub fn group_names(&self) -> &[(String, usize)] {
        &self.names
    }

    /// Index of the named group.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, i)| *i)
    }

    /// Whether the pattern is found anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text).unwrap_or(false)
    }

    /// Python's `pattern.search(text)`.
    pub fn search(&self, text: &str) -> Option<Captures> {
        self.search_range(text, 0, text.len())
    }

    /// Python's `pattern.search(text, pos, endpos)` with byte offsets.
    pub fn search_range(&self, text: &str, pos: usize, endpos: usize) -> Option<Captures> {
        let mut caps = Captures::default();
        self.search_into(text, pos, endpos, &mut caps)
            .then_some(caps)
    }

    /// Like `search_range`, reusing `caps`; returns whether it matched.
    pub fn search_into(&self, text: &str, pos: usize, endpos: usize, caps: &mut Captures) -> bool {
        let hay = &text[..endpos.min(text.len())];
        match self.re.captures_from_pos(hay, pos) {
            Ok(Some(c)) => {
                caps.spans.clear();
                for i in 0..=self.groups {
                    caps.spans.push(c.get(i).map(|m| (m.start(), m.end())));
                }
                true
            }
            _ => false,
        }
    }
}

fn fix_refs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while rest.contains("\\k<") || rest.contains("(?(<") {
        let j = rest.find("\\k<").unwrap_or(usize::MAX);
        let k = rest.find("(?(<").unwrap_or(usize::MAX);
        let (at, open) = if j < k { (j, 3) } else { (k, 4) };
        out.push_str(&rest[..at + open]);
        rest = &rest[at + open..];
        let end = rest.find(')').unwrap_or(rest.len());
        out.push_str(&rest[..end]);
        out.push('>');
        // a backreference's closing parenthesis becomes the `>` itself
        rest = if open == 3 {
            &rest[(end + 1).min(rest.len())..]
        } else {
            &rest[end..]
        };
    }
    out.push_str(rest);
    out
}

fn replace_dollar(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    let mut in_class = false;
    for c in s.chars() {
        if esc {
            out.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => {
                esc = true;
                out.push(c);
            }
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            '$' if !in_class => out.push_str("(?=\\n?\\z)"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_constructs_are_translated() {
        let r = PyRegex::new(r"^(?P<a>x)-(?P=a)$").unwrap();
        assert!(r.is_match("x-x\n"));
        assert!(!r.is_match("x-y"));
        let r = PyRegex::new(r"^(?P<s>\[)?\d+(?(s)\])$").unwrap();
        assert!(r.is_match("[12]"));
        assert!(r.is_match("12"));
        assert!(!r.is_match("[12"));
        assert_eq!(r.group_index("s"), Some(1));
    }
}
