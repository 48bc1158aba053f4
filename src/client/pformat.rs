//! Python's `pprint.pformat(value, width=..., indent=...)`, used by
//! `fail2ban-client --dp` to print each command of the configuration
//! stream (`width=1000, indent=2`).
//!
//! The layout follows CPython 3.11's `PrettyPrinter`: a value whose `repr`
//! (with dict keys sorted) fits in the remaining width is written as is;
//! otherwise containers are opened one element per line, indented by
//! `indent` per level, and long strings are cut at whitespace into
//! adjacent literals (parenthesised at the top level).

use crate::pyvalue::{PyValue, str_repr};
use std::cmp::Ordering;

/// `pprint.pformat(value, width=width, indent=indent)`.
pub fn pformat(value: &PyValue, width: usize, indent: usize) -> String {
    let mut p = Printer {
        width: width as i64,
        per_level: indent as i64,
        out: String::new(),
    };
    p.format(value, 0, 0, 0);
    p.out
}

struct Printer {
    width: i64,
    per_level: i64,
    out: String,
}

fn len(s: &str) -> i64 {
    s.chars().count() as i64
}

fn spaces(n: i64) -> String {
    " ".repeat(n.max(0) as usize)
}

/// `repr` with dict items sorted (pprint's `_safe_repr`).
fn safe_repr(v: &PyValue) -> String {
    match v {
        PyValue::Dict(items) if !items.is_empty() => {
            let parts: Vec<String> = sorted_items(items)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", safe_repr(k), safe_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        PyValue::List(items) if !items.is_empty() => {
            let parts: Vec<String> = items.iter().map(safe_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        PyValue::Tuple(items) if !items.is_empty() => {
            let parts: Vec<String> = items.iter().map(safe_repr).collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        }
        other => other.repr(),
    }
}

/// Python's `<` as a total order where it is defined (`None` where Python
/// raises `TypeError`).
fn py_cmp(a: &PyValue, b: &PyValue) -> Option<Ordering> {
    let num = |v: &PyValue| match v {
        PyValue::Bool(b) => Some(*b as i64 as f64),
        PyValue::Int(i) => Some(*i as f64),
        PyValue::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (PyValue::Int(x), PyValue::Int(y)) => Some(x.cmp(y)),
        (PyValue::Str(x), PyValue::Str(y)) => Some(x.cmp(y)),
        (PyValue::List(x), PyValue::List(y)) | (PyValue::Tuple(x), PyValue::Tuple(y)) => {
            for (p, q) in x.iter().zip(y) {
                match py_cmp(p, q)? {
                    Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

/// pprint's `_safe_key` order: Python's order, else by type name.
fn safe_cmp(a: &PyValue, b: &PyValue) -> Ordering {
    py_cmp(a, b).unwrap_or_else(|| a.type_name().cmp(b.type_name()))
}

fn sorted_items(items: &[(PyValue, PyValue)]) -> Vec<(&PyValue, &PyValue)> {
    let mut v: Vec<(&PyValue, &PyValue)> = items.iter().map(|(k, v)| (k, v)).collect();
    v.sort_by(|a, b| safe_cmp(a.0, b.0).then_with(|| safe_cmp(a.1, b.1)));
    v
}

impl Printer {
    fn format(&mut self, v: &PyValue, indent: i64, allowance: i64, level: i64) {
        let rep = safe_repr(v);
        if len(&rep) > self.width - indent - allowance {
            match v {
                PyValue::Dict(items) => return self.dict(items, indent, allowance, level + 1),
                PyValue::List(items) => {
                    self.out.push('[');
                    self.items(items, indent, allowance + 1, level + 1);
                    self.out.push(']');
                    return;
                }
                PyValue::Tuple(items) => {
                    self.out.push('(');
                    let end = if items.len() == 1 { ",)" } else { ")" };
                    self.items(items, indent, allowance + len(end), level + 1);
                    self.out.push_str(end);
                    return;
                }
                PyValue::Set(items) if !items.is_empty() => {
                    self.out.push('{');
                    let mut sorted: Vec<PyValue> = items.clone();
                    sorted.sort_by(safe_cmp);
                    self.items(&sorted, indent, allowance + 1, level + 1);
                    self.out.push('}');
                    return;
                }
                PyValue::Str(s) if !s.is_empty() => {
                    return self.string(s, indent, allowance, level + 1);
                }
                _ => {}
            }
        }
        self.out.push_str(&rep);
    }

    fn dict(&mut self, items: &[(PyValue, PyValue)], indent: i64, allowance: i64, level: i64) {
        self.out.push('{');
        if self.per_level > 1 {
            self.out.push_str(&spaces(self.per_level - 1));
        }
        let sorted = sorted_items(items);
        let indent = indent + self.per_level;
        let allowance = allowance + 1;
        let delim = format!(",\n{}", spaces(indent));
        let last = sorted.len().saturating_sub(1);
        for (i, (k, v)) in sorted.into_iter().enumerate() {
            let rep = safe_repr(k);
            self.out.push_str(&rep);
            self.out.push_str(": ");
            let allow = if i == last { allowance } else { 1 };
            self.format(v, indent + len(&rep) + 2, allow, level);
            if i != last {
                self.out.push_str(&delim);
            }
        }
        self.out.push('}');
    }

    fn items(&mut self, items: &[PyValue], indent: i64, allowance: i64, level: i64) {
        let indent = indent + self.per_level;
        if self.per_level > 1 {
            self.out.push_str(&spaces(self.per_level - 1));
        }
        let delim = format!(",\n{}", spaces(indent));
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(&delim);
            }
            let allow = if i + 1 == items.len() { allowance } else { 1 };
            self.format(it, indent, allow, level);
        }
    }

    fn string(&mut self, s: &str, indent: i64, allowance: i64, level: i64) {
        let (indent, allowance) = if level == 1 {
            (indent + 1, allowance + 1)
        } else {
            (indent, allowance)
        };
        let max_width = self.width - indent;
        let mut max_width1 = max_width;
        let mut chunks: Vec<String> = Vec::new();
        let lines = split_lines_keep(s);
        let mut rep = String::new();
        for (i, line) in lines.iter().enumerate() {
            rep = str_repr(line);
            let last_line = i + 1 == lines.len();
            if last_line {
                max_width1 -= allowance;
            }
            if len(&rep) <= max_width1 {
                chunks.push(rep.clone());
                continue;
            }
            // Alternating non-space and space runs (`\S*\s*`).
            let parts = words_with_space(line);
            let mut max_width2 = max_width;
            let mut current = String::new();
            for (j, part) in parts.iter().enumerate() {
                let candidate = format!("{current}{part}");
                if j + 1 == parts.len() && last_line {
                    max_width2 -= allowance;
                }
                if len(&str_repr(&candidate)) > max_width2 {
                    if !current.is_empty() {
                        chunks.push(str_repr(&current));
                    }
                    current = part.clone();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                chunks.push(str_repr(&current));
            }
        }
        if chunks.len() == 1 {
            self.out.push_str(&rep);
            return;
        }
        if level == 1 {
            self.out.push('(');
        }
        for (i, c) in chunks.iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
                self.out.push_str(&spaces(indent));
            }
            self.out.push_str(c);
        }
        if level == 1 {
            self.out.push(')');
        }
    }
}

/// Python's `str.splitlines(True)`.
fn split_lines_keep(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        cur.push(c);
        let brk = match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    cur.push('\n');
                    chars.next();
                }
                true
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => true,
            _ => false,
        };
        if brk {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `re.findall(r'\S*\s*', line)` without its final empty match.
fn words_with_space(line: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in line.chars() {
        // Python's `str.isspace()`.
        let ws = c.is_whitespace() || ('\x1c'..='\x1f').contains(&c);
        if !ws && in_space {
            parts.push(std::mem::take(&mut cur));
            in_space = false;
        }
        if ws {
            in_space = true;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn s(v: &str) -> PyValue {
        PyValue::str(v)
    }

    #[test]
    fn layouts_like_python() {
        let long = "^%(__prefix_line)s(?:error: PAM: )?[aA]uthentication (?:failure|error|failed) for .* from <HOST>( via \\S+)?\\s*$";
        let values = vec![
            PyValue::List(vec![s("set"), s("sshd"), s("maxretry"), PyValue::Int(3)]),
            PyValue::List(vec![
                s("multi-set"),
                s("sshd"),
                s("addfailregex"),
                PyValue::List(vec![s(long), s(long), s("short")]),
            ]),
            PyValue::List(vec![
                s("set"),
                s("j"),
                s("actionban"),
                s(&format!("{long}\n{long} x")),
            ]),
            PyValue::List(vec![
                s("set"),
                s("thread"),
                PyValue::Dict(vec![(s("z"), PyValue::Int(1)), (s("a"), s(long))]),
            ]),
            PyValue::Tuple(vec![s(long)]),
            PyValue::Set((100..=120).map(PyValue::Int).collect()),
            s(&format!("{long} {long}")),
            PyValue::List(vec![s(&"x".repeat(120))]),
        ];
        let py = "/usr/bin/python3";
        if !std::path::Path::new(py).exists() {
            eprintln!("SKIP: {py} is not installed; pprint comparison not run");
            return;
        }
        let script = "import ast, pprint, sys\n\
            for line in sys.stdin.read().split('\\0'):\n\
            \x20   w, i, lit = line.split(' ', 2)\n\
            \x20   print(pprint.pformat(ast.literal_eval(lit), width=int(w), indent=int(i)), end='\\0')\n";
        let mut input = Vec::new();
        let mut ours = Vec::new();
        for (w, i) in [(1000, 2), (80, 2), (40, 1), (30, 4), (60, 3)] {
            for v in &values {
                input.push(format!("{w} {i} {}", v.repr()));
                ours.push(pformat(v, w, i));
            }
        }
        let mut child = Command::new(py)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = input.join("\0");
        let writer = std::thread::spawn(move || stdin.write_all(data.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let want: Vec<&str> = text.split('\0').filter(|x| !x.is_empty()).collect();
        assert_eq!(want.len(), ours.len());
        for (o, w) in ours.iter().zip(want) {
            assert_eq!(o, w);
        }
    }
}
