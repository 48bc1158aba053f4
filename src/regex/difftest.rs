//! Differential tests against CPython: the same patterns, flags, texts and
//! search ranges go to `/usr/bin/python3` (one process, JSON on stdin) and
//! to [`PyRegex`]; compile errors (`str(e)`) and group spans must agree.

use super::{Captures, Flags, PyRegex, PyRegexSet, StartMemo};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";

/// The CPython side: compiles and searches each case, reporting the error
/// text or the spans as UTF-8 byte offsets.
const SCRIPT: &str = r#"
import json, re, sys
cases = json.load(sys.stdin)
out = []
cache = {}
def b(text, i):
    return len(text[:i].encode('utf-8'))
for pattern, flags, text, pos, endpos in cases:
    key = (pattern, flags)
    if key not in cache:
        try:
            cache[key] = re.compile(pattern, flags)
        except Exception as e:
            cache[key] = e
    p = cache[key]
    if isinstance(p, Exception):
        out.append({"err": str(p)})
        continue
    m = p.search(text, pos, len(text) if endpos is None else endpos)
    if m is None:
        out.append({"groups": p.groups, "names": list(p.groupindex.items()), "spans": None})
    else:
        spans = []
        for i in range(p.groups + 1):
            s, e = m.span(i)
            spans.append(None if s < 0 else [b(text, s), b(text, e)])
        out.append({"groups": p.groups, "names": list(p.groupindex.items()), "spans": spans})
json.dump(out, sys.stdout)
"#;

#[derive(Debug, Clone)]
struct Case {
    pattern: String,
    flags: Flags,
    text: String,
    /// Character positions, as Python takes them.
    pos: usize,
    endpos: Option<usize>,
}

impl Case {
    fn new(pattern: &str, text: &str) -> Case {
        Case {
            pattern: pattern.into(),
            flags: Flags::default(),
            text: text.into(),
            pos: 0,
            endpos: None,
        }
    }
}

fn python_available() -> bool {
    if Path::new(PYTHON).exists() {
        true
    } else {
        println!("SKIPPED: {PYTHON} is missing, the differential test needs CPython 3.11");
        false
    }
}

fn run_python(cases: &[Case]) -> Vec<Value> {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| json!([c.pattern, c.flags.bits(), c.text, c.pos, c.endpos]))
        .collect();
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let payload = serde_json::to_vec(&input).expect("cases serialise");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&payload)
        .expect("cases sent");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(out.status.success(), "python3 failed");
    serde_json::from_slice(&out.stdout).expect("python3 output is JSON")
}

fn byte_pos(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

fn rust_result(case: &Case, cache: &mut BTreeMap<(String, u32), Result<PyRegex, String>>) -> Value {
    let key = (case.pattern.clone(), case.flags.bits());
    let re = cache.entry(key).or_insert_with(|| {
        PyRegex::with_flags(&case.pattern, case.flags).map_err(|e| e.to_string())
    });
    let re = match re {
        Ok(re) => re,
        Err(e) => return json!({ "err": e }),
    };
    let pos = byte_pos(&case.text, case.pos);
    let endpos = case
        .endpos
        .map_or(case.text.len(), |e| byte_pos(&case.text, e));
    let names: Vec<Value> = re
        .group_names()
        .iter()
        .map(|(n, i)| json!([n, i]))
        .collect();
    let found = re.search_range(&case.text, pos, endpos);
    let quick = if pos == 0 && endpos == case.text.len() {
        Some(re.is_match(&case.text))
    } else {
        None
    };
    if let Some(q) = quick {
        assert_eq!(
            q,
            found.is_some(),
            "is_match disagrees with search for {case:?}"
        );
    }
    let spans = found.map(|c| {
        (0..=re.groups())
            .map(|i| c.get(i).map_or(Value::Null, |(s, e)| json!([s, e])))
            .collect::<Vec<_>>()
    });
    json!({ "groups": re.groups(), "names": names, "spans": spans })
}

/// Runs all cases on both sides; returns the mismatches as text.
fn compare(cases: &[Case]) -> (Vec<String>, usize) {
    let py = run_python(cases);
    assert_eq!(py.len(), cases.len());
    let mut cache = BTreeMap::new();
    let mut bad = Vec::new();
    let mut matched = 0;
    for (case, expected) in cases.iter().zip(py) {
        let got = rust_result(case, &mut cache);
        matched += usize::from(got.get("spans").is_some_and(|s| !s.is_null()));
        if got != expected {
            bad.push(format!(
                "pattern {:?} flags {:?} text {:?} pos {} endpos {:?}\n  python: {expected}\n  rust:   {got}",
                case.pattern, case.flags, case.text, case.pos, case.endpos
            ));
        }
    }
    (bad, matched)
}

fn assert_agree(cases: &[Case]) {
    let (bad, matched) = compare(cases);
    for b in bad.iter().take(30) {
        println!("{b}");
    }
    assert!(
        bad.is_empty(),
        "{} of {} cases differ from CPython",
        bad.len(),
        cases.len()
    );
    println!(
        "{} cases agree with CPython ({matched} with a match)",
        cases.len()
    );
}

fn cross(patterns: &[&str], texts: &[&str]) -> Vec<Case> {
    let mut out = Vec::new();
    for p in patterns {
        for t in texts {
            out.push(Case::new(p, t));
        }
    }
    out
}

const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
const DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";

fn host() -> String {
    format!(r"(?:\[?(?:{IP4}|{IP6})\]?|{DNS})")
}

#[test]
fn hand_written_cases_agree_with_python() {
    if !python_available() {
        return;
    }
    let texts = [
        "",
        "a",
        "abc",
        "abc\n",
        "ab\ncd\n",
        "foo bar baz\n",
        "x-y_z 12 é ü ß\n",
        "AbC aBc ABC",
        "İı Kk ſs ΣσςK",
        "[12] (34) {56}",
        "a\u{1c}b\u{85}c\u{a0}d",
        "١٢٣ ½ ² x²",
        "\u{10400}\u{10428}",
        "aaa bbb aaa",
        "key=value; other='x'",
        "a=1;b=;=c; d 12.34.5 it's 7' x9",
        "abcbcc xab ab aab",
    ];
    let patterns = [
        r"a",
        r"^a",
        r"a$",
        r"c$",
        r"^$",
        r"$",
        r"^",
        r"\Aa",
        r"c\Z",
        r"\Z",
        r"b\b",
        r"\bb",
        r"\B",
        r"\Bb",
        r"\w+",
        r"\W+",
        r"\d+",
        r"\D",
        r"\s+",
        r"\S+",
        r".",
        r".+",
        r"(?s).+",
        r"(?m)^\w+$",
        r"(?m)$",
        r"(?m)^",
        r"(?i)abc",
        r"(?i)[a-c]+",
        r"(?i)[^a]+",
        r"(?i)s",
        r"(?i)k",
        r"(?i)i",
        r"(?i)σ",
        r"(?i)[\w]",
        r"(?a)\w+",
        r"(?a)\b\w",
        r"(?ai)k",
        r"(?i)\U00010400",
        r"(?i)[\U00010400x]",
        r"(?i)[\U00010400-\U00010401]",
        r"(?i)\U00010400|x",
        r"(?iu)[A-Z]+",
        r"a{,2}",
        r"a{2,}",
        r"a{1}b",
        r"{",
        r"a{",
        r"a{x}",
        r"a{,}",
        r"a{}",
        r"x{2,1",
        r"[]a]",
        r"[^]a]",
        r"[a-]",
        r"[-a]",
        r"[\]]",
        r"[^[]+",
        r"[[]",
        r"[a\-z]",
        r"[\d-]",
        r"[\b]",
        r"\x41",
        r"\u00e9",
        r"\U0001F600|é",
        r"\N{LATIN SMALL LETTER E WITH ACUTE}",
        r"\101",
        r"\0",
        r"\07",
        r"[\101]",
        r"[\0]",
        r"\<\>\:\/",
        r#"\'\"\ \#"#,
        r"(a)(b)?",
        r"(?P<x>a)|(?P<y>b)",
        r"(a)\1",
        r"(?P<s>[-/])\d(?P=s)",
        r"(a|b)c\1",
        r"(?:a|b)+?c",
        r"a*?b",
        r"a+?",
        r"a??",
        r"a*+",
        r"a++b",
        r"a?+a",
        r"(?>a+)b",
        r"(?>a|ab)c",
        r"a{1,2}+a",
        r"(?=a)\w",
        r"(?!a)\w",
        r"(?<=a)b",
        r"(?<!a)b",
        r"(?<=\s)\w+",
        r"\w+(?=\s)",
        r"(?=\b|\W|$)",
        r"b(?=\b|\W|$)",
        r"(?=^|\b|\W)b",
        r"\d+(?=\b|\W|$)",
        r"(?<=^\[)\d+",
        r"(?<=\baudit\()\d+",
        r"(?P<a>\[)?\d+(?(a)\])",
        r"(?P<a>\[)?\d+(?(a)\]|$)",
        r"(\()?\d+(?(1)\))",
        r"(?(1)a|b)(x)?",
        r"(a)?(?(1)|b)",
        r"(?#comment)a",
        r"a(?#c)*",
        r"(?x) a b # comment\n c",
        r"(?x)[ ]a",
        r"(?x:a b)c d",
        r"(?i:a)b",
        r"(?-i:a)b",
        r"((?i)a)",
        r"(?s:.)",
        r"(?m:^b)",
        r"a|",
        r"|a",
        r"a||b",
        r"ab|ac",
        r"(?:ab|ac)d",
        r"x*",
        r"(a*)b",
        r"(?:(a)|b)+",
        r"(a)|b",
        r"(?:(?! from ).)*",
        r"^(?:(?!aa).)*$",
        r"^(.*?)(?:a|$)",
        r"(?<=:):",
        r"key=(?P<v>[^;]*)",
        // optional groups run as branches, also inside loops
        r"(?:(a)|(b))?(c)?",
        r"(?:(?:(a)|b)?c)+",
        r"(?:(\w)?(?:(=)|;)?)*",
        r"((?:(a)b)??)(ab)?",
        r"(?:x(a)?)?\w+(?:(b)|(c))?",
        // single-character repeats whose tail starts on none of their
        // characters (run possessively), greedy and lazy, in loops
        r"(\S+)\s+(\S+)",
        r"(?:([^ =]+)=([^;]*);? ?)+",
        r"([^']*?)'(\w*?)(\d)",
        r"(?:(\d+)\.){2}(\d{1,2})",
        r"(?:( *)(\w+?)(?=[ ;]))*",
        r"([a-z]{0,2}?)(\d|$)",
    ];
    let mut cases = cross(&patterns, &texts);
    for (p, t) in [
        (host(), "1.2.3.4"),
        (host(), "[::1]:22"),
        (host(), "fe80::1:2 and 2001:db8::"),
        (host(), "host.example.com"),
        (
            format!(r"^from {} port \d+$", host()),
            "from 192.0.2.1 port 22\n",
        ),
        (
            format!(r"^from {} port \d+$", host()),
            "from 2001:db8::1 port 22\n",
        ),
    ] {
        cases.push(Case::new(&p, t));
    }
    for p in [
        r"^a", r"(?m)^b", r"\bb", r"(?<=a)b", r"a$", r"\Aa", r"b\Z", r"\B", r"c$",
    ] {
        for (pos, endpos) in [
            (0, Some(0)),
            (1, None),
            (1, Some(2)),
            (2, Some(3)),
            (3, Some(1)),
            (1, Some(1)),
        ] {
            for t in ["abc", "a\nbc\n", "ab\n"] {
                let mut c = Case::new(p, t);
                c.pos = pos;
                c.endpos = endpos;
                cases.push(c);
            }
        }
    }
    let long = format!("user {} from 192.0.2.1 port 22\n", "x y ".repeat(1500));
    for p in [
        r"^(?:(?! from ).)*$",
        r"^user (?:(?! from ).)*? from (\S+)",
        r"(?:ab|x |y )*from",
    ] {
        cases.push(Case::new(p, &long));
    }
    for (flags, p) in [
        (
            Flags {
                multiline: true,
                ..Flags::default()
            },
            r"^\w+$",
        ),
        (
            Flags {
                ignorecase: true,
                ..Flags::default()
            },
            r"ABC[a-z]",
        ),
        (
            Flags {
                dotall: true,
                ..Flags::default()
            },
            r"b.c",
        ),
    ] {
        for t in ["abc\nbcd\n", "ABCd\nb\nc"] {
            let mut c = Case::new(p, t);
            c.flags = flags;
            cases.push(c);
        }
    }
    assert_agree(&cases);
}

#[test]
fn errors_agree_with_python() {
    if !python_available() {
        return;
    }
    let patterns = [
        "(",
        "(a",
        "a)",
        "(?",
        "(?P",
        "(?P<",
        "(?P<a",
        "(?P<a>",
        "(?P<>a)",
        "(?P<1a>x)",
        "(?P<a-b>x)",
        "(?P<a>x)(?P<a>y)",
        "(?P=",
        "(?P=a)",
        "(?P=a",
        "(?P<a>(?P=a))",
        "(?Px)",
        "(?<x)",
        "(?<",
        "(?x",
        "(?-",
        "(?i-",
        "(?i-:",
        "(?-i",
        "(?-a:x)",
        "(?a-i:x)",
        "(?au)",
        "(?i-i:x)",
        "(?L)",
        "(?t:x)",
        "(?z)",
        "(?i",
        "(?iz)",
        "(?i-z:x)",
        "(?-z:x)",
        "(?-1:x)",
        "(?i1)",
        "a(?i)",
        "(a(?i))",
        "a|(?i)b",
        "(?#abc",
        "*",
        "+a",
        "a**",
        "a*?*",
        "a++*",
        "^*",
        "\\b+",
        "a{2}{3}",
        "a{3,2}",
        "a{99999999999}",
        "[",
        "[a",
        "[^",
        "[]",
        "[a-",
        "[z-a]",
        "[\\d-z]",
        "[a-\\d]",
        "\\",
        "a\\",
        "\\q",
        "[\\q]",
        "\\8",
        "[\\8]",
        "\\x",
        "\\xz",
        "\\u12",
        "\\U1234567",
        "\\U00110000",
        "\\N",
        "\\N{",
        "\\N{}",
        "\\N{NOPE}",
        "\\N{LATIN SMALL LETTER A",
        "\\400",
        "[\\400]",
        "\\1",
        "(a)\\2",
        "(a\\1)",
        "(?(1)a|b)",
        "(?(a)x)",
        "(?(0)x)",
        "(?(-1)x)",
        "(?(1a)x)",
        "(?(1)a|b|c)",
        "(a)(?(1)x",
        "(?(",
        "(?()x)",
        "(?<=a*)",
        "(?<=a|bc)",
        "(?<!a+)b",
        "(?<=(a))\\1",
        "(a)(?<=\\1)",
        "(?<=(?P<n>a)(?P=n))",
        "(?t)a*",
        "(?t)(?<=a*)",
        "a\nb)",
        "a\n(?P<1>b)",
        "x\ny\n[",
        "(?x)a\n  \\q",
    ];
    let cases: Vec<Case> = patterns.iter().map(|p| Case::new(p, "a")).collect();
    assert_agree(&cases);
}

/// The values of a fail2ban `.conf` file: `key = value` with continuation
/// lines, all sections flattened (`section/key` is kept too).
fn conf_values(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    let mut key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].to_string();
            key = None;
            continue;
        }
        if line.starts_with([' ', '\t']) && !trimmed.is_empty() {
            if let Some(k) = &key {
                for name in [k.clone(), format!("{section}/{k}")] {
                    if let Some(v) = out.get_mut(&name) {
                        let v: &mut String = v;
                        v.push('\n');
                        v.push_str(trimmed);
                    }
                }
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim().to_string();
            out.insert(format!("{section}/{k}"), v.trim().to_string());
            if section != "lt_short" && section != "lt_journal" && section != "INCLUDES" {
                out.insert(k.clone(), v.trim().to_string());
            }
            key = Some(k);
        } else {
            key = None;
        }
    }
    out
}

/// Resolves `%(name)s` and `<name>` references (only those naming known
/// values) and fail2ban's address tags; `None` if something stays open.
fn expand(value: &str, vals: &BTreeMap<String, String>) -> Option<String> {
    let mut s = value.replace("<lt_<logtype>/__prefix_line>", "<lt_file/__prefix_line>");
    for _ in 0..12 {
        let before = s.clone();
        for (k, v) in vals {
            s = s.replace(&format!("%({k})s"), v);
            if !k.contains(' ') {
                s = s.replace(&format!("<{k}>"), v);
            }
        }
        if s == before {
            break;
        }
    }
    let addr = format!(r"\[?(?:{IP4}|{IP6})\]?");
    s = s
        .replace("<HOST>", &host())
        .replace("<ADDR>", &addr)
        .replace("<IP4>", IP4)
        .replace("<IP6>", IP6)
        .replace("<DNS>", DNS)
        .replace("<CIDR>", r"(?P<cidr>\d+)")
        .replace(
            "<SUBNET>",
            &format!(r"\[?(?:{IP4}|{IP6})(?:/(?P<cidr>\d+))?\]?"),
        )
        .replace("<F-ID/>", r"(?P<fid>\S+)")
        .replace("<F-PORT/>", r"(?P<fport>\w+)")
        .replace("<SKIPLINES>", r"\n(?P<skiplines0>(?:(?:.*\n)*?))");
    // <F-NAME>...</F-NAME> become named groups
    while let Some(i) = s.find("<F-") {
        let Some(j) = s[i..].find('>') else { break };
        let name = s[i + 3..i + j].to_string();
        if !name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return None;
        }
        let close = format!("</F-{name}>");
        let open = s[i..i + j + 1].to_string();
        let group = match name.to_lowercase().as_str() {
            "id" => "fid".to_string(),
            "port" => "fport".to_string(),
            n => n.to_string(),
        };
        s = s.replacen(&open, &format!("(?P<{group}>"), 1);
        s = s.replacen(&close, ")", 1);
    }
    if s.contains("%(") {
        return None;
    }
    Some(s)
}

/// The values of a filter with the files it includes before itself;
/// `known/key` names an included value the filter overrides.
fn filter_values(dir: &Path, conf: &str, depth: usize) -> BTreeMap<String, String> {
    let own = conf_values(conf);
    let mut vals = BTreeMap::new();
    if depth < 4
        && let Some(before) = own.get("INCLUDES/before")
    {
        for inc in before.split_whitespace() {
            if let Ok(text) = std::fs::read_to_string(dir.join(inc)) {
                vals.extend(filter_values(dir, &text, depth + 1));
            }
        }
    }
    let known: Vec<(String, String)> = vals
        .iter()
        .filter(|(k, _)| !k.contains('/'))
        .map(|(k, v)| (format!("known/{k}"), v.clone()))
        .collect();
    vals.extend(known);
    vals.extend(own);
    vals
}

fn filter_regexes(dir: &Path, conf: &str) -> Vec<(String, String)> {
    let vals = filter_values(dir, conf, 0);
    let mut out = Vec::new();
    for key in ["prefregex", "failregex", "ignoreregex"] {
        let Some(v) = vals.get(&format!("Definition/{key}")).cloned() else {
            continue;
        };
        let Some(v) = expand(&v, &vals) else { continue };
        for line in v.lines() {
            let line = line.trim();
            if !line.is_empty() {
                out.push((key.to_string(), line.to_string()));
            }
        }
    }
    out
}

/// Checks a set against its members' own searches on `texts`: every
/// pattern that matches is a candidate, and on ASCII texts an exact one
/// is only when it matches.  Returns how many (text, pattern) pairs matched.
fn check_set(regexes: &[PyRegex], texts: &[String]) -> usize {
    let refs: Vec<&PyRegex> = regexes.iter().collect();
    let set = PyRegexSet::new(&refs);
    assert_eq!(set.len(), regexes.len());
    let mut out = Vec::new();
    let mut hits = 0;
    for text in texts {
        set.candidates(text, &mut out);
        assert!(out.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        for (i, re) in regexes.iter().enumerate() {
            let matched = re.search(text).is_some();
            hits += usize::from(matched);
            let listed = out.contains(&i);
            assert!(
                listed || !matched,
                "{:?} matches {text:?} but is no candidate",
                re.as_str()
            );
            if let Some(exact) = re.automaton_span(text).filter(|_| text.is_ascii()) {
                assert_eq!(
                    listed,
                    exact.is_some(),
                    "{:?} on {text:?}: exact automaton, yet listed = {listed}",
                    re.as_str()
                );
            }
        }
    }
    hits
}

/// The `*.conf` files of a `filter.d` directory, sorted.
fn filter_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("filter.d")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    names.sort();
    names
}

#[test]
fn shipped_failregex_sets_list_every_match() {
    if !python_available() {
        return;
    }
    use crate::testrefs::{Ref, path};
    let (Some(config), Some(files)) = (path(Ref::Config102), path(Ref::Files102)) else {
        return;
    };
    let dir = config.join("filter.d");
    let names = filter_files(&dir);
    let mut all_lines = Vec::new();
    let mut per_filter = Vec::new();
    for path in names {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let conf = std::fs::read_to_string(&path).expect("filter");
        let log = std::fs::read_to_string(files.join("logs").join(stem)).unwrap_or_default();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(String::from)
            .collect();
        per_filter.push((filter_regexes(&dir, &conf), lines.len()));
        all_lines.extend(lines);
    }
    let Some((stripped, _)) = fail2ban_dates(&all_lines) else {
        println!("SKIPPED: the installed fail2ban's date detector is not usable from {PYTHON}");
        return;
    };
    let (mut sets, mut hits, mut offset) = (0, 0, 0);
    for (regexes, n) in per_filter {
        let mut texts: Vec<String> = stripped[offset..offset + n]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        offset += n;
        // the content part as the prefregex captures it
        if let Some((_, pref)) = regexes.iter().find(|(k, _)| k == "prefregex")
            && let Ok(re) = PyRegex::new(pref)
            && let Some(idx) = re.group_index("content")
        {
            let contents: Vec<String> = texts
                .iter()
                .filter_map(|l| {
                    let (s, e) = re.search(l)?.get(idx)?;
                    Some(l[s..e].to_string())
                })
                .collect();
            texts.extend(contents);
        }
        texts.push(String::new());
        let fails: Vec<PyRegex> = regexes
            .iter()
            .filter(|(k, _)| k == "failregex")
            .filter_map(|(_, rx)| PyRegex::new(rx).ok())
            .collect();
        if fails.is_empty() {
            continue;
        }
        sets += 1;
        hits += check_set(&fails, &texts);
    }
    println!("{sets} failregex sets, {hits} matches listed");
    assert!(sets > 50, "too few filters: {sets}");
    assert!(hits > 200, "too few matches: {hits}");
}

/// fail2ban's view of log lines: each line with its date cut out by the
/// default date detector, and the default date templates' regexes.
const DATES_SCRIPT: &str = r#"
import json, sys
from fail2ban.server.datedetector import DateDetector
dd = DateDetector()
dd.addDefaultTemplate()
out = []
for line in json.load(sys.stdin):
    m = dd.matchTime(line)[0]
    out.append(line if m is None else line[:m.start(1)] + line[m.end(1):])
json.dump({"lines": out, "templates": [t.template.regex for t in dd.templates]}, sys.stdout)
"#;

fn fail2ban_dates(lines: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(DATES_SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let payload = serde_json::to_vec(lines).ok()?;
    child.stdin.take()?.write_all(&payload).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some((strings("lines"), strings("templates")))
}

#[test]
fn shipped_filters_agree_with_python() {
    if !python_available() {
        return;
    }
    use crate::testrefs::{Ref, path};
    let (Some(config), Some(files)) = (path(Ref::Config102), path(Ref::Files102)) else {
        return;
    };
    let dir = config.join("filter.d");
    let names = filter_files(&dir);
    let mut cases = Vec::new();
    let mut regex_count = 0;
    let mut all_lines = Vec::new();
    let mut per_filter = Vec::new();
    for path in names {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let conf = std::fs::read_to_string(&path).expect("filter");
        let log = std::fs::read_to_string(files.join("logs").join(&stem)).unwrap_or_default();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .take(25)
            .map(String::from)
            .collect();
        all_lines.extend(lines.iter().cloned());
        per_filter.push((filter_regexes(&dir, &conf), lines.len()));
    }
    let Some((stripped, templates)) = fail2ban_dates(&all_lines) else {
        println!("SKIPPED: the installed fail2ban's date detector is not usable from {PYTHON}");
        return;
    };
    assert_eq!(stripped.len(), all_lines.len());
    for t in &templates {
        for l in all_lines.iter().step_by(3) {
            cases.push(Case::new(t, l));
        }
    }
    let mut offset = 0;
    for (regexes, n) in per_filter {
        let mut lines: Vec<String> = stripped[offset..offset + n]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        offset += n;
        // the content part as the prefregex captures it
        if let Some((_, pref)) = regexes.iter().find(|(k, _)| k == "prefregex")
            && let Ok(re) = PyRegex::new(pref)
        {
            let idx = re.group_index("content");
            let extra: Vec<String> = lines
                .iter()
                .filter_map(|l| {
                    let c = re.search(l)?;
                    let (s, e) = c.get(idx?)?;
                    Some(l[s..e].to_string())
                })
                .collect();
            lines.extend(extra);
        }
        for (_, rx) in &regexes {
            regex_count += 1;
            for l in &lines {
                cases.push(Case::new(rx, l));
            }
            cases.push(Case::new(rx, ""));
        }
    }
    println!(
        "{regex_count} shipped regexes, {} date templates",
        templates.len()
    );
    assert!(
        regex_count > 200,
        "too few filter regexes found: {regex_count}"
    );
    assert_agree(&cases);
}

/// A small deterministic generator (xorshift).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

struct Gen {
    rng: Rng,
    groups: usize,
    open: Vec<usize>,
}

impl Gen {
    fn atom(&mut self, depth: usize) -> String {
        let r = self.rng.below(if depth > 2 { 10 } else { 22 });
        match r {
            0..=3 => self
                .rng
                .pick(&["a", "b", "c", "a", "b", " ", "é", "A"])
                .to_string(),
            4 => self
                .rng
                .pick(&[".", "[ab]", "[^a]", "[a-c]", "[\\s-]", "[^\\w]"])
                .to_string(),
            5 => self
                .rng
                .pick(&["\\w", "\\W", "\\s", "\\d", "\\S"])
                .to_string(),
            6..=7 => self
                .rng
                .pick(&["^", "$", "\\b", "\\B", "\\A", "\\Z"])
                .to_string(),
            8 => self.backref(),
            9 => self.rng.pick(&["ab", "ba", "aa", "b"]).to_string(),
            10..=12 => {
                self.groups += 1;
                let g = self.groups;
                self.open.push(g);
                let inner = self.alt(depth + 1);
                self.open.pop();
                if self.rng.below(2) == 0 {
                    format!("({inner})")
                } else {
                    format!("(?P<g{g}>{inner})")
                }
            }
            13..=14 => format!("(?:{})", self.alt(depth + 1)),
            15 => {
                let kind = self.rng.pick(&["(?=", "(?!"]);
                format!("{kind}{})", self.alt(depth + 1))
            }
            16 => {
                let kind = self.rng.pick(&["(?<=", "(?<!"]);
                let body = self
                    .rng
                    .pick(&["a", "b", "ab", "\\w", "[ab]", "a|b", "^", "\\s", "$"]);
                format!("{kind}{body})")
            }
            17 => {
                if self.groups == 0 {
                    return "a".into();
                }
                let g = 1 + self.rng.below(self.groups);
                format!("(?({g}){}|{})", self.alt(depth + 1), self.alt(depth + 1))
            }
            18 => format!("(?>{})", self.alt(depth + 1)),
            19 => format!("(?i:{})", self.alt(depth + 1)),
            _ => format!("(?:{})", self.seq(depth + 1)),
        }
    }

    fn backref(&mut self) -> String {
        let closed: Vec<usize> = (1..=self.groups)
            .filter(|g| !self.open.contains(g))
            .collect();
        if closed.is_empty() {
            return "b".into();
        }
        let g = closed[self.rng.below(closed.len())];
        if self.rng.below(2) == 0 {
            format!("\\{g}")
        } else {
            format!("(?:\\{g})")
        }
    }

    fn quantified(&mut self, depth: usize) -> String {
        let a = self.atom(depth);
        let q = match self.rng.below(14) {
            0 => "*",
            1 => "+",
            2 => "?",
            3 => "{1,2}",
            4 => "*?",
            5 => "+?",
            6 => "??",
            7 => "{0,2}?",
            _ => "",
        };
        format!("{a}{q}")
    }

    fn seq(&mut self, depth: usize) -> String {
        let n = 1 + self.rng.below(3);
        (0..n).map(|_| self.quantified(depth)).collect()
    }

    fn alt(&mut self, depth: usize) -> String {
        let mut s = self.seq(depth);
        if self.rng.below(4) == 0 {
            s.push('|');
            s.push_str(&self.seq(depth));
        }
        s
    }
}

/// Random patterns tried (each with four texts); `REGEX_DIFF_ROUNDS` and
/// `REGEX_DIFF_SEED` in the environment try more or other ones.
const ROUNDS: usize = 3000;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_patterns_agree_with_python() {
    if !python_available() {
        return;
    }
    let seed = env_number("REGEX_DIFF_SEED").unwrap_or(0x2545_F491_4F6C_DD1D);
    let rounds = env_number("REGEX_DIFF_ROUNDS").map_or(ROUNDS, |n| n as usize);
    let mut rng = Rng(seed | 1);
    let mut cases = Vec::new();
    let alphabet = ["a", "b", "c", " ", "\n", "é", "A", "-", "\u{301}", "²"];
    for _ in 0..rounds {
        let mut g = Gen {
            rng: Rng(rng.next() | 1),
            groups: 0,
            open: Vec::new(),
        };
        let pattern = g.alt(0);
        let flags = Flags {
            multiline: rng.below(4) == 0,
            ignorecase: rng.below(4) == 0,
            dotall: rng.below(4) == 0,
        };
        for _ in 0..4 {
            let len = rng.below(16);
            let text: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let chars = text.chars().count();
            let (pos, endpos) = match rng.below(4) {
                0 => (rng.below(chars + 1), Some(rng.below(chars + 2))),
                _ => (0, None),
            };
            cases.push(Case {
                pattern: pattern.clone(),
                flags,
                text,
                pos,
                endpos,
            });
        }
    }
    assert_agree(&cases);
}

/// The start memo (see [`StartMemo`]) answers as a search does: random
/// line-begin patterns (look-arounds, back-references, boundaries,
/// loops), each on texts from a small alphabet, through one memo per
/// pattern; the texts repeat their shapes, so most answers come from the
/// memo.
#[test]
fn start_memo_answers_as_search() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = ["a", "b", "1", "2", " ", "\n", "é", "A", "-", ":"];
    let (mut searched, mut remembered) = (0, 0);
    // back-references compare the text itself, which no class captures
    // (a case-insensitive one may compare characters of other widths)
    let fixed = [
        r"^(\w)\1",
        r"(?i)^(\w)-\1",
        r"^(\d+):\1$",
        r"^(?P<s>[-:])\d(?P=s)",
        r"(?i)^(\w\w)\1",
    ];
    let given = [
        "kk\u{212a}k",
        "kk\u{212a}m",
        "kkKk",
        "kkKm",
        "aa-aa",
        "ab-ab",
    ];
    for round in 0..1500 + fixed.len() {
        let mut g = Gen {
            rng: Rng(rng.next() | 1),
            groups: 0,
            open: Vec::new(),
        };
        let pattern = match fixed.get(round) {
            Some(p) => p.to_string(),
            None => format!("^(?:{})", g.alt(0)),
        };
        let flags = Flags {
            multiline: false,
            ignorecase: rng.below(4) == 0,
            dotall: rng.below(4) == 0,
        };
        let re = match PyRegex::with_flags(&pattern, flags) {
            Ok(re) => re,
            Err(e) if round >= fixed.len() => {
                assert!(!e.to_string().is_empty());
                continue;
            }
            Err(e) => panic!("{pattern}: {e}"),
        };
        assert!(re.at_start(), "{pattern}");
        let mut memo = StartMemo::default();
        let mut caps = Captures::new();
        for i in 0..60 {
            let len = rng.below(10);
            let text: String = match given.get(i) {
                Some(t) => t.to_string(),
                None => (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect(),
            };
            let entries = |m: &StartMemo| m.maps.iter().map(|m| m.len()).sum::<usize>();
            let before = entries(&memo);
            let hit = re.match_start_memo(&text, &mut caps, &mut memo);
            let got = hit.then(|| (0..caps.len()).map(|i| caps.get(i)).collect::<Vec<_>>());
            let want = re
                .search(&text)
                .map(|c| (0..c.len()).map(|i| c.get(i)).collect::<Vec<_>>());
            assert_eq!(got, want, "{pattern:?} {flags:?} on {text:?}");
            searched += 1;
            if entries(&memo) == before && before > 0 {
                remembered += 1;
            }
        }
    }
    eprintln!("the memo answered {remembered} of {searched} searches");
    assert!(
        remembered * 3 > searched,
        "the memo answered {remembered} of {searched} searches"
    );
}

/// Regenerates the Unicode data of `tables` from the interpreter.
const TABLES_SCRIPT: &str = r#"
import _sre, ctypes, json
from re._casefix import _EXTRA_CASES
up = ctypes.pythonapi._PyUnicode_ToUppercase
up.restype = ctypes.c_uint32
up.argtypes = [ctypes.c_uint32]
def ranges(pred):
    out, start = [], None
    for i in range(0x110000):
        if pred(i):
            if start is None:
                start = i
        elif start is not None:
            out.append([start, i - 1])
            start = None
    if start is not None:
        out.append([start, 0x10FFFF])
    return out
def pairs(f):
    return [[i, f(i)] for i in range(0x110000) if f(i) != i]
json.dump({
    "word": ranges(lambda i: chr(i).isalnum() or i == 0x5F),
    "digit": ranges(lambda i: chr(i).isdecimal()),
    "space": ranges(lambda i: chr(i).isspace()),
    "xid_start": ranges(lambda i: chr(i).isidentifier()),
    "xid_continue": ranges(lambda i: ("a" + chr(i)).isidentifier()),
    "cased": ranges(_sre.unicode_iscased),
    "lower": pairs(_sre.unicode_tolower),
    "upper": pairs(up),
    "fixes": sorted([k, list(v)] for k, v in _EXTRA_CASES.items()),
}, __import__("sys").stdout)
"#;

#[test]
fn tables_match_python() {
    use super::tables;
    if !python_available() {
        return;
    }
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(TABLES_SCRIPT)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "python3 failed");
    let py: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ranges =
        |t: &[(u32, u32)]| json!(t.iter().map(|&(a, b)| json!([a, b])).collect::<Vec<_>>());
    let pairs = |t: &[(u32, u32, u32, i32)]| {
        let mut v = Vec::new();
        for &(first, last, stride, delta) in t {
            for c in (first..=last).step_by(stride as usize) {
                v.push(json!([c, c.wrapping_add_signed(delta)]));
            }
        }
        json!(v)
    };
    assert_eq!(py["word"], ranges(tables::WORD));
    assert_eq!(py["digit"], ranges(tables::DIGIT));
    assert_eq!(py["space"], ranges(tables::SPACE));
    assert_eq!(py["xid_start"], ranges(tables::XID_START));
    assert_eq!(py["xid_continue"], ranges(tables::XID_CONTINUE));
    assert_eq!(py["cased"], ranges(tables::CASED));
    assert_eq!(py["lower"], pairs(tables::LOWER));
    assert_eq!(py["upper"], pairs(tables::UPPER));
    let fixes: Vec<Value> = tables::CASE_FIXES
        .iter()
        .map(|(k, v)| json!([k, v]))
        .collect();
    assert_eq!(py["fixes"], json!(fixes));
}
