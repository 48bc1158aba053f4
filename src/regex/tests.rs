//! Unit tests of the Python regex translator (expected values are CPython
//! 3.11's; the differential tests in `difftest` check many more against
//! the interpreter itself).

use super::*;

fn err(pattern: &str) -> String {
    match PyRegex::new(pattern) {
        Ok(_) => panic!("{pattern:?} compiled"),
        Err(e) => e.to_string(),
    }
}

fn spans(re: &PyRegex, text: &str) -> Option<Vec<Option<(usize, usize)>>> {
    re.search(text)
        .map(|c| (0..c.len()).map(|i| c.get(i)).collect())
}

fn span(pattern: &str, text: &str) -> Option<(usize, usize)> {
    PyRegex::new(pattern)
        .unwrap()
        .search(text)
        .map(|c| c.span())
}

#[test]
fn compiled_patterns_can_be_shared_between_threads() {
    // first use (the lazy build) from several threads at once
    let re = PyRegex::new(r"^(?P<user>\w+)@(?P<host>[\w.]+)$").unwrap();
    let others = [PyRegex::new(r"@").unwrap(), PyRegex::new(r"^x").unwrap()];
    let refs: Vec<&PyRegex> = [&re].into_iter().chain(&others).collect();
    let set = PyRegexSet::new(&refs);
    let texts = ["root@example.org", "x y", "é@h"];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    texts
                        .iter()
                        .map(|t| {
                            set.candidates(t, &mut out);
                            (re.search(t).map(|c| c.get(2)), out.clone())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            let got = h.join().unwrap();
            assert_eq!(got[0], (Some(Some((5, 16))), vec![0, 1]));
            assert_eq!(got[1], (None, vec![2]));
            assert_eq!(got[2], (Some(Some((3, 4))), vec![0, 1]));
        }
    });
}

#[test]
fn parse_errors_have_python_messages_and_positions() {
    for (p, msg) in [
        ("a(b", "missing ), unterminated subpattern at position 1"),
        ("abcde)", "unbalanced parenthesis at position 5"),
        ("*a", "nothing to repeat at position 0"),
        ("a**", "multiple repeat at position 2"),
        ("a{2}{3}", "multiple repeat at position 4"),
        ("^*", "nothing to repeat at position 1"),
        ("[a-", "unterminated character set at position 0"),
        ("x[^", "unterminated character set at position 1"),
        (r"\q", r"bad escape \q at position 0"),
        (r"[\q]", r"bad escape \q at position 1"),
        ("(?<x)", "unknown extension ?<x at position 1"),
        ("(?Pq)", "unknown extension ?Pq at position 1"),
        (
            "(?P<a>x)(?P<a>y)",
            "redefinition of group name 'a' as group 2; was group 1 at position 12",
        ),
        ("(?P=x)", "unknown group name 'x' at position 4"),
        ("[z-a]", "bad character range z-a at position 1"),
        (r"[\w-z]", r"bad character range \w-z at position 1"),
        ("(?P<>x)", "missing group name at position 4"),
        (
            "(?P<x-y>a)",
            "bad character in group name 'x-y' at position 4",
        ),
        (
            "a(?i)",
            "global flags not at the start of the expression at position 1",
        ),
        ("(?i", "missing -, : or ) at position 3"),
        (
            "(?i-i:a)",
            "bad inline flags: flag turned on and off at position 5",
        ),
        (
            "(?-a:a)",
            "bad inline flags: cannot turn off flags 'a', 'u' and 'L' at position 4",
        ),
        (r"(a)\2", "invalid group reference 2 at position 4"),
        (r"(a\1)", "cannot refer to an open group at position 2"),
        (
            r"\400",
            r"octal escape value \400 outside of range 0-0o377 at position 0",
        ),
        (r"\x4", r"incomplete escape \x4 at position 0"),
        ("(?(2)a)", "invalid group reference 2 at position 3"),
        ("(?(0)a)", "bad group number at position 3"),
        (
            "(a)(?(1)b|c|d)",
            "conditional backref with more than two branches at position 11",
        ),
        ("(?#x", "missing ), unterminated comment at position 0"),
        ("a\\", "bad escape (end of pattern) at position 1"),
        ("x{3,2}", "min repeat greater than max repeat at position 2"),
        (
            "ab\n(?P<1>)",
            "bad character in group name '1' at position 7 (line 2, column 5)",
        ),
    ] {
        assert_eq!(err(p), msg, "pattern {p:?}");
    }
}

#[test]
fn compile_errors_have_no_position() {
    for (p, msg) in [
        ("(?<=a*)b", "look-behind requires fixed-width pattern"),
        ("(?<!a|bc)", "look-behind requires fixed-width pattern"),
        ("a{4294967295}", "the repetition number is too large"),
        (
            "(?t)a+",
            "internal: unsupported template operator MAX_REPEAT",
        ),
    ] {
        let e = PyRegex::new(p).unwrap_err();
        assert_eq!(e.to_string(), msg);
        assert_eq!(e.pos, None);
    }
    let e = PyRegex::new("(a)\n(b").unwrap_err();
    assert_eq!(e.pos, Some(4));
    assert_eq!(e.line_col, Some((2, 1)));
}

#[test]
fn groups_are_numbered_as_python() {
    let re = PyRegex::new(r"(?P<a>x)(?:y)(z)(?P<b>(w))(?=(v))").unwrap();
    assert_eq!(re.groups(), 5);
    assert_eq!(
        re.group_names(),
        &[("a".to_string(), 1), ("b".to_string(), 3)]
    );
    assert_eq!(re.group_index("b"), Some(3));
    assert_eq!(re.group_index("c"), None);
    assert_eq!(re.as_str(), r"(?P<a>x)(?:y)(z)(?P<b>(w))(?=(v))");
    let got = spans(&re, "--xyzwv").unwrap();
    assert_eq!(
        got,
        vec![
            Some((2, 6)),
            Some((2, 3)),
            Some((4, 5)),
            Some((5, 6)),
            Some((5, 6)),
            Some((6, 7))
        ]
    );
}

#[test]
fn literals_classes_and_escapes() {
    assert_eq!(span(r"a{,2}b", "xaab"), Some((1, 4)));
    assert_eq!(span(r"{[^}]+}", "x{ab}"), Some((1, 5)));
    assert_eq!(span(r"\d{,3}\.", "12."), Some((0, 3)));
    assert_eq!(
        span(r"{{(?:\d+,){3}\d+},\d+}", "{{1,2,3,4},5}"),
        Some((0, 13))
    );
    assert_eq!(span(r"[^[]+", "ab[c"), Some((0, 2)));
    assert_eq!(span(r"[]a]+", "]a]b"), Some((0, 3)));
    assert_eq!(span(r"\<\>\:\/\'\ ", "<>:/' "), Some((0, 6)));
    assert_eq!(span(r"[\b]", "a\x08"), Some((1, 2)));
    assert_eq!(span(r"\x41\u00e9\101", "AéA"), Some((0, 4)));
    assert_eq!(span(r"\N{EM DASH}", "a\u{2014}"), Some((1, 4)));
    assert_eq!(span(r"\s", "a\u{1c}"), Some((1, 2)));
    assert_eq!(span(r"\w", "\u{301}x"), Some((2, 3)));
    assert_eq!(span(r"\w+", "x²½"), Some((0, 5)));
    assert_eq!(span(r"\d", "½١"), Some((2, 4)));
    assert_eq!(span(r"(?a)\w+", "éab"), Some((2, 4)));
    assert_eq!(span(r"(?i)K", "\u{212a}"), Some((0, 3)));
    assert_eq!(span(r"(?i)i", "İ"), Some((0, 2)));
    assert_eq!(span(r"(?ai)k", "\u{212a}k"), Some((3, 4)));
    assert_eq!(span(r"(?i)[\U00010400x]", "\u{10400}"), None);
    assert_eq!(span(r"(?i)\U00010400", "\u{10428}"), Some((0, 4)));
    assert_eq!(span(r"(?x) a b # c\n", "ab"), Some((0, 2)));
    assert_eq!(span(r"(?x:a b) c", "ab c"), Some((0, 4)));
    assert_eq!(span(r"a(?#note)*", "aaa"), Some((0, 3)));
}

#[test]
fn anchors_follow_python() {
    let re = PyRegex::new(r"a$").unwrap();
    assert_eq!(re.search("a\n").map(|c| c.span()), Some((0, 1)));
    assert_eq!(re.search("a\nb\n").map(|c| c.span()), None);
    assert_eq!(re.search("b\na\n").map(|c| c.span()), Some((2, 3)));
    assert_eq!(re.search("a\n\n").map(|c| c.span()), None);
    assert!(PyRegex::new(r"a\Z").unwrap().search("a\n").is_none());
    let ml = PyRegex::with_flags(
        r"^\w$",
        Flags {
            multiline: true,
            ..Flags::default()
        },
    )
    .unwrap();
    assert_eq!(ml.search("ab\nc\n").map(|c| c.span()), Some((3, 4)));
    assert_eq!(span(r"\B", ""), None);
    assert_eq!(span(r"e\b", "e\u{301}"), Some((0, 1)));
    assert_eq!(span(r"e\B", "e\u{301}"), None);
}

#[test]
fn search_range_has_python_semantics() {
    let caret = PyRegex::new(r"^b").unwrap();
    assert!(caret.search_range("ab", 1, 2).is_none());
    let ml = PyRegex::new(r"(?m)^b").unwrap();
    assert_eq!(
        ml.search_range("a\nb", 2, 3).map(|c| c.span()),
        Some((2, 3))
    );
    let behind = PyRegex::new(r"(?<=a)b").unwrap();
    assert_eq!(
        behind.search_range("ab", 1, 2).map(|c| c.span()),
        Some((1, 2))
    );
    let dollar = PyRegex::new(r"b$").unwrap();
    assert_eq!(
        dollar.search_range("abc", 0, 2).map(|c| c.span()),
        Some((1, 2))
    );
    let word = PyRegex::new(r"b\b").unwrap();
    assert_eq!(
        word.search_range("abc", 0, 2).map(|c| c.span()),
        Some((1, 2))
    );
    assert!(dollar.search_range("ab", 2, 1).is_none());
    let empty = PyRegex::new("").unwrap();
    assert_eq!(
        empty.search_range("abc", 5, 9).map(|c| c.span()),
        Some((3, 3))
    );
    let mut caps = Captures::default();
    assert!(dollar.search_into("xb\n", 0, 3, &mut caps));
    assert_eq!(caps.span(), (1, 2));
    assert!(!dollar.search_into("xc\n", 0, 3, &mut caps));
    assert!(caps.is_empty());
}

#[test]
fn lookarounds_backrefs_conditionals() {
    assert_eq!(span(r"(?P<a>x)-(?P=a)", "x-y x-x"), Some((4, 7)));
    assert_eq!(span(r"(a|b)c\1", "acb bcb"), Some((4, 7)));
    let cond = PyRegex::new(r"^(?P<s>\[)?\d+(?(s)\])$").unwrap();
    assert!(cond.is_match("[12]"));
    assert!(cond.is_match("12"));
    assert!(!cond.is_match("[12"));
    assert!(!cond.is_match("12]"));
    assert_eq!(span(r"foo(?!bar)\w+", "foobar foobaz"), Some((7, 13)));
    assert_eq!(span(r"(?<!a)b", "ab cb"), Some((4, 5)));
    assert_eq!(span(r"(?<=:)\d+", "a1 :23"), Some((4, 6)));
    assert_eq!(span(r"^(?:(?! from ).)*$", "user x from y\n"), None);
    assert_eq!(span(r"^(?:(?! from ).)*$", "user x fro\n"), Some((0, 10)));
    assert_eq!(span(r"(?>a+)b|a", "aaa"), Some((0, 1)));
    assert_eq!(span(r"a++a", "aaa"), None);
    assert_eq!(span(r"a?+a", "a"), None);
    assert_eq!(span(r"(?=a)?b", "b"), Some((0, 1)));
}

fn exact(pattern: &str) -> bool {
    PyRegex::new(pattern).unwrap().automaton().exact
}

#[test]
fn fail2ban_shapes_stay_exact_on_the_regex_crate() {
    let host = r"(?:\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)))\]?|(?P<dns>[\w\-.^_]*\w))";
    let p = format!(r"^Failed password for \S+ from {host} port \d+\s*$");
    let re = PyRegex::new(&p).unwrap();
    assert!(re.automaton().exact);
    let caps = re
        .search("Failed password for root from 2001:db8::1 port 22\n")
        .unwrap();
    assert_eq!(caps.get(2), Some((30, 41)));
    let caps = re
        .search("Failed password for root from fe80:: port 2\n")
        .unwrap();
    assert_eq!(caps.get(2), Some((30, 36)));
    assert!(exact(r"^(?:\W{0,2})?(\d+)(?=\b|\W|$)"));
    assert!(exact(r"(?=^|\b|\W)(\d+)(?=\b|\W|$)"));
    assert!(exact(r"(?iu)^(\w+)(?=\b|\W|$)"));
    assert!(exact(r"(a|)*b"));
    assert!(!exact(r"^user (?!root)\S+"));
    // a one-character group's reference is expanded, a longer one relaxed
    assert!(exact(r"(?P<_sep>[-/.])\d+(?P=_sep)"));
    assert!(!exact(r"(?P<_sep>[-/.]+)\d+(?P=_sep)"));
    assert!(!exact(r"(?i)(?P<_sep>[a.])\d+(?P=_sep)"));
    assert!(!exact(r"^(?P<cond>x)?a(?(cond)b|c)$"));
    assert!(!exact(r"(?>a+)b"));
    assert!(!exact(r"a*+"));
}

#[test]
fn relaxed_patterns_are_decided_by_the_backtracker() {
    let re = PyRegex::new(r"x(?!1)\d").unwrap();
    assert_eq!(spans(&re, "x1 x2"), Some(vec![Some((3, 5))]));
    let re = PyRegex::new(r"(?P<s>[-/.])\d+(?P=s)\d").unwrap();
    assert_eq!(
        spans(&re, "1-2/3.4/5/6"),
        Some(vec![Some((7, 11)), Some((7, 8))])
    );
    assert_eq!(re.automaton_span("1-2/3.4/5/6"), Some(Some((7, 11))));
    let re = PyRegex::new(r"(?P<a>\w)(?P=a)").unwrap();
    assert_eq!(spans(&re, "abccd"), Some(vec![Some((2, 4)), Some((2, 3))]));
    let re = PyRegex::new(r"(\w+)$").unwrap();
    assert_eq!(
        spans(&re, "ab\ncd\n"),
        Some(vec![Some((3, 5)), Some((3, 5))])
    );
    assert!(re.is_match("ab\ncd\n"));
    // sre's empty iteration keeps its group
    let re = PyRegex::new(r"(a|)*").unwrap();
    assert_eq!(spans(&re, "aab"), Some(vec![Some((0, 2)), Some((2, 2))]));
    let re = PyRegex::new(r"(?:a|()|b)*").unwrap();
    assert_eq!(spans(&re, "aab"), Some(vec![Some((0, 2)), Some((2, 2))]));
}

#[test]
fn deep_backtracking_moves_to_a_larger_stack() {
    let re = PyRegex::new(r"^(?:a|b)*c$").unwrap();
    let long = format!("{}c", "ab".repeat(20_000));
    assert_eq!(re.search(&long).map(|c| c.span()), Some((0, long.len())));
    assert!(re.is_match(&long));
    assert!(!re.is_match(&long[..long.len() - 1]));
}

#[test]
fn sets_list_the_patterns_that_may_match() {
    let pats = [
        r"^Failed \S+ for (?P<user>\S+) from (?P<ip>\d+\.\d+\.\d+\.\d+)",
        r"^Accepted \w+ for",
        r"from (\d+)\.",
        r"(?<=x)y\b",
        r"(a)\1",
        r"é\b",
        r"\Bb",
    ];
    let regexes: Vec<PyRegex> = pats.iter().map(|p| PyRegex::new(p).unwrap()).collect();
    let refs: Vec<&PyRegex> = regexes.iter().collect();
    let set = PyRegexSet::new(&refs);
    assert_eq!(set.len(), pats.len());
    assert!(!set.is_empty());
    let mut out = vec![99];
    set.candidates("Failed password for root from 192.0.2.7 port 22", &mut out);
    assert_eq!(out, [0, 2]);
    // `\Bb` matches in "publickey"; the look-behind dropped from the
    // crate form of `(?<=x)y\b`, it is a candidate there too
    set.candidates("Accepted publickey for root from 1.2.3.4", &mut out);
    assert_eq!(out, [1, 2, 3, 6]);
    assert!(regexes[3].search("Accepted publickey").is_none());
    // inexact forms (look-behind, back-reference) are supersets
    set.candidates("zy aa", &mut out);
    assert!(out.contains(&3) && out.contains(&4));
    assert!(regexes[3].search("zy aa").is_none());
    assert!(regexes[4].search("zy aa").is_some());
    // on a non-ASCII text the word boundaries make the automaton give up:
    // every pattern is listed
    set.candidates("é ab", &mut out);
    assert_eq!(out, (0..pats.len()).collect::<Vec<_>>());
    let plain = PyRegexSet::new(&refs[..3]);
    plain.candidates("Failed é from 1.2", &mut out);
    assert_eq!(out, [2]);
    set.candidates("", &mut out);
    assert_eq!(out, Vec::<usize>::new());
    let empty = PyRegexSet::new(&[]);
    assert!(empty.is_empty());
    empty.candidates("x", &mut out);
    assert!(out.is_empty());
}

#[test]
fn sets_of_anchored_patterns_list_them_by_literal_prefix() {
    let pats = [
        r"^Failed \S+ for (?P<user>\S+) from (?P<ip>\d+\.\d+\.\d+\.\d+)",
        r"^[iI](?:llegal|nvalid) user (?P<user>.*?) from",
        r"^(?:Connection (?:closed|reset)|Disconnected) (?:by|from)",
        r"^Failed publickey for",
    ];
    let regexes: Vec<PyRegex> = pats.iter().map(|p| PyRegex::new(p).unwrap()).collect();
    let refs: Vec<&PyRegex> = regexes.iter().collect();
    let set = PyRegexSet::new(&refs);
    let mut out = vec![99];
    let texts = [
        ("Failed password for root from 192.0.2.7", vec![0]),
        ("Failed publickey for root from 192.0.2.7", vec![0, 3]),
        ("invalid user x from 192.0.2.7", vec![1]),
        ("Illegal user", vec![]),
        ("Illegal user x from y", vec![1]),
        ("Connection reset by 192.0.2.7", vec![2]),
        ("Connection from 192.0.2.7", vec![]),
        ("Disconnected", vec![]),
        ("Disconnected from 192.0.2.7", vec![2]),
        ("Fail", vec![]),
        ("", vec![]),
    ];
    for (text, expected) in texts {
        assert!(set.starts(text, &mut out), "{text}");
        assert_eq!(out, expected, "{text}");
        // every pattern that matches is listed
        for (i, re) in regexes.iter().enumerate() {
            assert!(re.search(text).is_none() || out.contains(&i), "{text} {i}");
        }
    }
    // non-ASCII texts are left to the automaton
    assert!(!set.starts("Failed é for x from 1.2.3.4", &mut out));
    // a pattern that may match anywhere, or without a literal prefix
    for other in [r"from (\d+)\.", r"^\S+ from"] {
        let other = PyRegex::new(other).unwrap();
        let refs: Vec<&PyRegex> = regexes.iter().chain([&other]).collect();
        assert!(!PyRegexSet::new(&refs).starts("Failed x", &mut out));
    }
}

#[test]
fn match_at_gives_the_groups_of_the_search_from_the_automaton_start() {
    let cases = [
        (r"(?P<a>\d+)-(?P<b>\w+)\b", "x 12-ab 34-cd"),
        (
            r"(?:\W{0,2})?((?P<m>jan|feb) (?P<d>[0 ]?\d))(?=\b|\W|$)",
            "[feb  7] x",
        ),
        (r"^(\S+) (\S+)$", "a b"),
        (r"é(\w)", "aéb"),
    ];
    for (pattern, text) in cases {
        let re = PyRegex::new(pattern).unwrap();
        let Some(Some((start, end))) = re.automaton_span(text) else {
            panic!("{pattern:?}: the automaton should be exact on {text:?}");
        };
        let mut caps = Captures::default();
        assert!(re.match_at_into(text, start, &mut caps));
        assert_eq!(caps.span(), (start, end));
        assert_eq!(Some(caps), re.search(text), "{pattern:?} on {text:?}");
    }
    let re = PyRegex::new(r"(\d)").unwrap();
    let mut caps = Captures::default();
    assert!(!re.match_at_into("a1", 0, &mut caps));
    assert!(caps.is_empty());
    assert!(re.match_at_into("a1", 1, &mut caps));
    assert_eq!(caps.get(1), Some((1, 2)));
    assert!(!re.match_at_into("a1", 3, &mut caps));
    assert!(!re.match_at_into("é1", 1, &mut caps));
}

/// Counts the allocations of the current thread (for the test below).
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's guarantees on `layout` are passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> usize {
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn searches_allocate_nothing_once_warm() {
    let host = r"(?:\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)))\]?|(?P<dns>[\w\-.^_]*\w))";
    let patterns = [
        format!(r"^Failed \S+ for (?P<user>\S+) from {host}(?: port \d+)?\s*$"),
        r"(?iu)^(?:\W{0,2})?((?P<b>jan|feb) (?P<d>[0 ]?\d) (?P<H>\d\d):(?P<M>\d\d))(?=\b|\W|$)"
            .to_string(),
        r"(?P<_sep>[-/.])(?P<m>\d\d)(?P=_sep)(?P<d>\d\d)".to_string(),
        r"^(?P<mlfid>\S+ \w+\[\d+\]: )(?P<content>.+)$".to_string(),
    ];
    let regexes: Vec<PyRegex> = patterns.iter().map(|p| PyRegex::new(p).unwrap()).collect();
    let refs: Vec<&PyRegex> = regexes.iter().collect();
    let set = PyRegexSet::new(&refs);
    let texts = [
        "Failed password for root from 192.0.2.7 port 22\n",
        "Failed password for root from 2001:db8::1\n",
        "feb  7 10:11 host x",
        "at 2024-01-05 ok",
        "host sshd[12]: Failed password for root from 192.0.2.7",
        "nothing here é",
    ];
    let mut caps = Captures::default();
    let mut out = Vec::new();
    let mut round = |count: &mut usize| {
        for text in texts {
            set.candidates(text, &mut out);
            for re in &regexes {
                *count += usize::from(re.search_into(text, 0, text.len(), &mut caps));
                *count += usize::from(re.is_match(text));
                if let Some(Some((s, _))) = re.automaton_span(text) {
                    *count += usize::from(re.match_at_into(text, s, &mut caps));
                }
            }
        }
    };
    let mut hits = 0;
    round(&mut hits);
    let before = allocations();
    for _ in 0..20 {
        round(&mut hits);
    }
    assert_eq!(allocations() - before, 0, "searches allocated");
    assert!(hits > 20 * 10, "too few matches: {hits}");
}

/// Compiling a pattern again gives the same compiled regex while the first
/// is in use (twenty jails of one filter build their automata once), with
/// flags part of the identity; a set of the same regexes is the same set.
#[test]
fn compiling_again_shares_the_compiled_regex_and_set() {
    let pattern = r"^cache test (?P<host>\S+) \d+$";
    let a = PyRegex::new(pattern).unwrap();
    let b = PyRegex::new(pattern).unwrap();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    let i = PyRegex::with_flags(
        pattern,
        Flags {
            ignorecase: true,
            ..Flags::default()
        },
    )
    .unwrap();
    assert!(!Arc::ptr_eq(&a.inner, &i.inner));
    assert!(i.is_match("CACHE TEST x 1"));
    assert!(!a.is_match("CACHE TEST x 1"));
    let s1 = PyRegexSet::new(&[&a, &i]);
    let s2 = PyRegexSet::new(&[&b, &i]);
    let s3 = PyRegexSet::new(&[&i, &a]);
    assert!(Arc::ptr_eq(&s1.inner, &s2.inner));
    assert!(!Arc::ptr_eq(&s1.inner, &s3.inner));
    let mut out = Vec::new();
    s3.candidates("CACHE TEST x 1", &mut out);
    assert_eq!(out, vec![0]);
    // no longer in use: compiled anew
    let old = Arc::downgrade(&a.inner);
    drop((a, b, s1, s2, s3));
    assert!(old.upgrade().is_none());
    let c = PyRegex::new(pattern).unwrap();
    assert!(c.is_match("cache test x 1"));
}
