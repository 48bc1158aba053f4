//! Python `re` semantics for fail2ban's regular expressions.
//!
//! fail2ban's filters, prefregexes, ignoreregexes and date templates are
//! CPython 3.11 `re` patterns.  [`PyRegex`] parses them with Python's own
//! rules ([`parse`]: syntax, group numbering, error messages and positions)
//! and translates them ([`emit`]) for two engines, because neither crate
//! speaks Python's dialect nor shares its semantics:
//!
//! * the `regex` crate (through `regex-automata`'s meta engine, to search
//!   with a start position and anchored sub-searches) runs every search.
//!   Python constructs without a regular equivalent are *relaxed* in this
//!   form (look-arounds dropped, a back-reference replaced by a capturing
//!   copy of its group, a conditional by both branches) and marked with
//!   empty groups; a match is then verified (look-around bodies run
//!   anchored at the marker, copies compared with their group, conditions
//!   checked).  A verified match is exactly Python's: the relaxed pattern
//!   accepts a superset of Python's paths with the same priority order, so
//!   its preferred path, once it satisfies the constraints, is Python's
//!   preferred path.
//! * `fancy-regex` decides when a check fails or cannot be made (the
//!   construct sits inside a loop, atomic groups, possessive repeats), and
//!   starts at the relaxed match's start: Python cannot match earlier.
//!
//! The crate form is built twice: with every class cut down to ASCII, for
//! haystacks without other characters (far smaller automata: faster to
//! build, captures cost about half), and, on first use, with full classes.
//!
//! Semantics reproduced by hand: Python's `$` (end, or before a final
//! `\n`: the fast form uses `(?m:$)`, exact when the haystack's only `\n`
//! is its last character, which is checked with `memchr` per search; other
//! haystacks verify the position or use the exact `(?=\n?\z)` form), `\Z`
//! (absolute end), `search(text, pos, endpos)` (the text is cut at
//! `endpos`, `^`/`\A` never match at `pos > 0`, look-behind sees before
//! `pos`), `\w`/`\d`/`\s` and case-insensitivity with Python's Unicode 14
//! tables ([`charset`]).  Word boundaries use the `regex` crate's `\b`
//! (and half boundaries for rewritten look-arounds) when the haystack holds
//! no character on which the crate's and Python's `\w` disagree (checked
//! only for non-ASCII haystacks); otherwise an exact look-around form runs.
//!
//! Residual differences from CPython:
//! * a repetition whose body can match the empty string, iterated more
//!   than once (`(a|)*`, `(a*)+`): sre lets one empty iteration happen and
//!   keeps its captures; both engines discard it, so group spans inside
//!   such loops (and, with an empty alternative before a consuming one,
//!   the match end) can differ;
//! * back-references under IGNORECASE compare with `fancy-regex`'s case
//!   folding instead of sre's lower-case mapping;
//! * `\N{...}` knows the names of the `unicode_names2` crate's Unicode
//!   version (newer than Python 3.11's 14.0), and `isprintable` in error
//!   messages follows [`crate::pyvalue::str_repr`];
//! * a pattern too large for the engines' size limits (huge counted
//!   repeats) is reported as an error where Python would accept it.

mod charset;
mod emit;
mod parse;
mod tables;

#[cfg(test)]
mod difftest;
#[cfg(test)]
mod tests;

use emit::{Check, Emitted, Target};
use fancy_regex::RegexBuilder as FancyBuilder;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input, meta};
use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;

/// Compile flags, as Python's `re.MULTILINE`, `re.IGNORECASE`, `re.DOTALL`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub multiline: bool,
    pub ignorecase: bool,
    pub dotall: bool,
}

impl Flags {
    /// The flags as Python's `re` flag bits.
    pub fn bits(self) -> u32 {
        let mut b = 0;
        if self.ignorecase {
            b |= parse::IGNORECASE;
        }
        if self.multiline {
            b |= parse::MULTILINE;
        }
        if self.dotall {
            b |= parse::DOTALL;
        }
        b
    }
}

/// A compile error, displayed as Python's `str(re.error)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub msg: String,
    /// Character position in the pattern, as Python reports it.
    pub pos: Option<usize>,
    /// Line and column of `pos` when the pattern has several lines (Python
    /// then appends them to the message).
    pub line_col: Option<(usize, usize)>,
}

impl Error {
    fn new(msg: String, pos: Option<usize>, pattern: &str) -> Error {
        let line_col = match pos {
            Some(p) if pattern.contains('\n') => {
                let before: Vec<char> = pattern.chars().take(p).collect();
                let line = before.iter().filter(|&&c| c == '\n').count() + 1;
                let col = match before.iter().rposition(|&c| c == '\n') {
                    Some(nl) => p - nl,
                    None => p + 1,
                };
                Some((line, col))
            }
            _ => None,
        };
        Error { msg, pos, line_col }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if let Some(p) = self.pos {
            write!(f, " at position {p}")?;
            if let Some((l, c)) = self.line_col {
                write!(f, " (line {l}, column {c})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Spans of the groups of one match (index 0 is the whole match), byte offsets.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    spans: Vec<Option<(usize, usize)>>,
    slots: Vec<Option<NonMaxUsize>>,
}

impl PartialEq for Captures {
    fn eq(&self, other: &Captures) -> bool {
        self.spans == other.spans
    }
}

impl Eq for Captures {}

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

/// A verification compiled for the relaxed crate form.
#[derive(Debug)]
enum CompiledCheck {
    Dollar {
        marker: usize,
    },
    Look {
        marker: usize,
        behind: bool,
        negate: bool,
        width: usize,
        re: meta::Regex,
    },
    Tempered {
        span: usize,
        re: meta::Regex,
    },
    Backref {
        group: usize,
        copy: usize,
    },
    Cond {
        group: usize,
        yes: usize,
        no: usize,
    },
}

/// How the relaxed crate form's matches are turned into answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The crate form is exact (only `$` positions to verify).
    Exact,
    /// Matches must pass the checks; failures go to `fancy-regex`.
    Verified,
    /// The crate form only bounds where a match can start.
    Prefilter,
}

/// A compiled Python regex.
pub struct PyRegex {
    pattern: String,
    groups: usize,
    names: Vec<(String, usize)>,
    parsed: parse::Parsed,
    /// The crate form for ASCII haystacks.
    ascii_re: Option<meta::Regex>,
    /// The crate form for other haystacks (built on first use).
    unicode_pattern: String,
    unicode_re: OnceLock<Option<meta::Regex>>,
    slot_len: usize,
    /// Crate-form group of each Python group.
    py_groups: Vec<usize>,
    checks: Vec<CompiledCheck>,
    mode: Mode,
    nl_exact: bool,
    uses_dollar: bool,
    word_unicode: bool,
    word_ascii: bool,
    non_boundary: bool,
    /// `fancy-regex` forms, by `dollar_exact + 2 * word_exact`.
    fancy: [OnceLock<Option<fancy_regex::Regex>>; 4],
}

impl fmt::Debug for PyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PyRegex({:?})", self.pattern)
    }
}

const SIZE_LIMIT: usize = 256 << 20;

fn build_crate(pattern: &str) -> Option<meta::Regex> {
    meta::Regex::builder()
        .configure(meta::Config::new().nfa_size_limit(Some(SIZE_LIMIT)))
        .build(pattern)
        .ok()
}

thread_local! {
    static SCRATCH: RefCell<Vec<Option<NonMaxUsize>>> = const { RefCell::new(Vec::new()) };
}

impl PyRegex {
    /// Compiles `pattern` without flags.
    pub fn new(pattern: &str) -> Result<PyRegex, Error> {
        PyRegex::with_flags(pattern, Flags::default())
    }

    /// Compiles `pattern` with `flags`.
    pub fn with_flags(pattern: &str, flags: Flags) -> Result<PyRegex, Error> {
        let parsed =
            parse::parse(pattern, flags.bits()).map_err(|e| Error::new(e.msg, e.pos, pattern))?;
        let em: Emitted = emit::emit(&parsed, Target::Crate);
        let ascii_re = build_crate(&emit::emit_ascii(&parsed).pattern);
        let mut checks = Vec::with_capacity(em.checks.len());
        let mut compiled_all = ascii_re.is_some();
        for c in &em.checks {
            let cc = match c {
                Check::Dollar { marker } => Some(CompiledCheck::Dollar { marker: *marker }),
                Check::Look {
                    marker,
                    behind,
                    negate,
                    width,
                    body,
                } => build_crate(body).map(|re| CompiledCheck::Look {
                    marker: *marker,
                    behind: *behind,
                    negate: *negate,
                    width: *width,
                    re,
                }),
                Check::Tempered { span, body } => {
                    build_crate(body).map(|re| CompiledCheck::Tempered { span: *span, re })
                }
                Check::Backref { group, copy } => Some(CompiledCheck::Backref {
                    group: *group,
                    copy: *copy,
                }),
                Check::Cond { group, yes, no } => Some(CompiledCheck::Cond {
                    group: *group,
                    yes: *yes,
                    no: *no,
                }),
            };
            match cc {
                Some(cc) => checks.push(cc),
                None => compiled_all = false,
            }
        }
        let py_groups: Vec<usize> = em
            .py_groups
            .iter()
            .map(|g| g.unwrap_or(usize::MAX))
            .collect();
        let all_groups = em.py_groups.iter().all(Option::is_some);
        let mode = if !(em.verifiable && compiled_all && all_groups) {
            Mode::Prefilter
        } else if checks
            .iter()
            .all(|c| matches!(c, CompiledCheck::Dollar { .. }))
        {
            Mode::Exact
        } else {
            Mode::Verified
        };
        let re = PyRegex {
            pattern: pattern.to_string(),
            groups: parsed.groups,
            names: parsed.names.clone(),
            parsed,
            slot_len: em.slots,
            ascii_re,
            unicode_pattern: em.pattern,
            unicode_re: OnceLock::new(),
            py_groups,
            checks,
            mode,
            nl_exact: em.nl_exact,
            uses_dollar: em.uses_dollar,
            word_unicode: em.word_unicode,
            word_ascii: em.word_ascii,
            non_boundary: em.non_boundary,
            fancy: Default::default(),
        };
        if re.ascii_re.is_none() && re.fancy_form(true, true).is_none() {
            return Err(Error::new(
                "pattern too large for the regex engines".into(),
                None,
                pattern,
            ));
        }
        Ok(re)
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
        self.run(text, 0, text.len(), None)
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
        self.run(text, pos, endpos, Some(caps))
    }

    fn fancy_form(&self, dollar_exact: bool, word_exact: bool) -> Option<&fancy_regex::Regex> {
        let idx = dollar_exact as usize + 2 * word_exact as usize;
        self.fancy[idx]
            .get_or_init(|| {
                let em = emit::emit(
                    &self.parsed,
                    Target::Fancy {
                        dollar_exact,
                        word_exact,
                    },
                );
                FancyBuilder::new(&em.pattern)
                    .backtrack_limit(usize::MAX)
                    .delegate_size_limit(SIZE_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    fn unicode_form(&self) -> Option<&meta::Regex> {
        self.unicode_re
            .get_or_init(|| build_crate(&self.unicode_pattern))
            .as_ref()
    }

    /// Whether the haystack has characters on which Python's word
    /// characters and the `regex` crate's differ (for the boundaries used).
    fn words_disagree(&self, hay: &str, ascii: bool) -> bool {
        if !(self.word_unicode || self.word_ascii) || ascii {
            return false;
        }
        hay.chars().any(|c| {
            let crate_word = regex_syntax::is_word_character(c);
            (self.word_unicode && charset::is_py_word(c) != crate_word)
                || (self.word_ascii && !c.is_ascii() && crate_word)
        })
    }

    fn run(&self, text: &str, pos: usize, endpos: usize, caps: Option<&mut Captures>) -> bool {
        let endpos = floor_boundary(text, endpos.min(text.len()));
        let pos = floor_boundary(text, pos.min(text.len()));
        if pos > endpos {
            return fail(caps);
        }
        let hay = &text[..endpos];
        let ascii = hay.is_ascii();
        let words_ok = !self.words_disagree(hay, ascii);
        let nl_simple = !self.uses_dollar
            || match memchr::memchr(b'\n', hay.as_bytes()) {
                None => true,
                Some(i) => i + 1 == hay.len(),
            };
        let empty_non_boundary = self.non_boundary && hay.is_empty();
        let crate_re = if ascii {
            self.ascii_re.as_ref()
        } else {
            self.unicode_form()
        };
        let re = match crate_re {
            Some(re) if words_ok && !empty_non_boundary => re,
            _ => {
                let word_exact = !words_ok || empty_non_boundary;
                return self.run_fancy(hay, pos, !nl_simple, word_exact, caps);
            }
        };
        let input = Input::new(hay).range(pos..);
        if self.mode == Mode::Exact && nl_simple {
            return match caps {
                None => re.is_match(input),
                Some(caps) => {
                    caps.slots.resize(self.slot_len, None);
                    if re.search_slots(&input, &mut caps.slots).is_none() {
                        return fail(Some(caps));
                    }
                    self.fill_from_slots(caps);
                    true
                }
            };
        }
        if !re.is_match(input.clone()) {
            return fail(caps);
        }
        let slot_len = self.slot_len;
        let verdict = |slots: &mut Vec<Option<NonMaxUsize>>| -> Result<bool, usize> {
            slots.resize(slot_len, None);
            if re.search_slots(&input, slots).is_none() {
                return Ok(false);
            }
            let start = slots[0].map_or(pos, |s| s.get());
            if self.mode != Mode::Prefilter
                && (nl_simple || self.nl_exact)
                && self.checks_hold(hay, slots)
            {
                Ok(true)
            } else {
                Err(start)
            }
        };
        match caps {
            Some(caps) => match verdict(&mut caps.slots) {
                Ok(true) => {
                    self.fill_from_slots(caps);
                    true
                }
                Ok(false) => fail(Some(caps)),
                Err(start) => self.run_fancy(hay, start, !nl_simple, false, Some(caps)),
            },
            None => match SCRATCH.with(|s| verdict(&mut s.borrow_mut())) {
                Ok(found) => found,
                Err(start) => self.run_fancy(hay, start, !nl_simple, false, None),
            },
        }
    }

    fn run_fancy(
        &self,
        hay: &str,
        pos: usize,
        dollar_exact: bool,
        word_exact: bool,
        caps: Option<&mut Captures>,
    ) -> bool {
        let Some(re) = self.fancy_form(dollar_exact, word_exact) else {
            return fail(caps);
        };
        match caps {
            None => matches!(re.find_from_pos(hay, pos), Ok(Some(_))),
            Some(caps) => match re.captures_from_pos(hay, pos) {
                Ok(Some(c)) => {
                    caps.spans.clear();
                    caps.spans
                        .extend((0..=self.groups).map(|i| c.get(i).map(|m| (m.start(), m.end()))));
                    true
                }
                _ => fail(Some(caps)),
            },
        }
    }

    fn fill_from_slots(&self, caps: &mut Captures) {
        let Captures { spans, slots } = caps;
        spans.clear();
        spans.extend(self.py_groups.iter().map(|&g| span_of(slots, g)));
    }

    fn checks_hold(&self, hay: &str, slots: &[Option<NonMaxUsize>]) -> bool {
        let n = hay.len();
        self.checks.iter().all(|check| match check {
            CompiledCheck::Dollar { marker } => match span_of(slots, *marker) {
                Some((q, _)) => q == n || (q + 1 == n && hay.as_bytes()[q] == b'\n'),
                None => true,
            },
            CompiledCheck::Look {
                marker,
                behind,
                negate,
                width,
                re,
            } => match span_of(slots, *marker) {
                Some((q, _)) => {
                    let found = if *behind {
                        match step_back(hay, q, *width) {
                            Some(s) => {
                                re.is_match(Input::new(hay).range(s..).anchored(Anchored::Yes))
                            }
                            None => false,
                        }
                    } else {
                        re.is_match(Input::new(hay).range(q..).anchored(Anchored::Yes))
                    };
                    found != *negate
                }
                None => true,
            },
            CompiledCheck::Tempered { span, re } => match span_of(slots, *span) {
                Some((s, e)) if s < e => match re.find(Input::new(hay).range(s..)) {
                    Some(m) => m.start() >= e,
                    None => true,
                },
                _ => true,
            },
            CompiledCheck::Backref { group, copy } => {
                match (span_of(slots, *group), span_of(slots, *copy)) {
                    (_, None) => true,
                    (Some((a, b)), Some((c, d))) => hay[a..b] == hay[c..d],
                    (None, Some(_)) => false,
                }
            }
            CompiledCheck::Cond { group, yes, no } => {
                let set = span_of(slots, *group).is_some();
                (span_of(slots, *yes).is_none() || set) && (span_of(slots, *no).is_none() || !set)
            }
        })
    }
}

fn fail(caps: Option<&mut Captures>) -> bool {
    if let Some(c) = caps {
        c.spans.clear();
    }
    false
}

fn span_of(slots: &[Option<NonMaxUsize>], g: usize) -> Option<(usize, usize)> {
    match (
        slots.get(2 * g).copied().flatten(),
        slots.get(2 * g + 1).copied().flatten(),
    ) {
        (Some(a), Some(b)) => Some((a.get(), b.get())),
        _ => None,
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The byte offset `chars` characters before `q`, if there are that many.
fn step_back(hay: &str, q: usize, chars: usize) -> Option<usize> {
    let mut it = hay[..q].char_indices().rev();
    let mut s = q;
    for _ in 0..chars {
        s = it.next()?.0;
    }
    Some(s)
}
