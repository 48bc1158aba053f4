//! Python `re` semantics for fail2ban's regular expressions.
//!
//! fail2ban's filters, prefregexes, ignoreregexes and date templates are
//! CPython 3.11 `re` patterns.  [`PyRegex`] parses them with Python's own
//! rules ([`parse`]: syntax, group numbering, error messages and
//! positions) and runs them on two engines, because no crate speaks
//! Python's dialect or shares its semantics:
//!
//! * the `regex` crate (through `regex-automata`'s meta engine, for
//!   searches that start at an offset but see the text before it) gets a
//!   group-free translation ([`emit`]) and decides whether and where a
//!   match starts.  Without groups its automata answer in tens of
//!   nanoseconds, and a line that does not match never goes further;
//! * [`backtrack`], a re-implementation of sre's backtracking algorithm,
//!   computes the groups from that start (and decides outright where the
//!   translation had to be relaxed: look-arounds, back-references,
//!   conditionals, atomic groups, possessive repeats).  Its answer is
//!   Python's by construction, including sre's quirks (loops over bodies
//!   that match empty, group restoring on backtracking).
//!
//! The translation is exact for the common fail2ban shapes: Python's `$`
//! (end, or before a final `\n`) becomes `(?m:$)`, exact when the
//! haystack's only `\n` is its last character (checked with `memchr`);
//! word boundaries use the crate's, exact when the haystack holds no
//! character on which the crate's and Python's `\w` disagree (checked only
//! for non-ASCII haystacks); `(?=\b|\W|$)`-style look-arounds and the IPv6
//! `(?<=:):` are rewritten.  Otherwise the translation is a superset of
//! Python's pattern and only bounds where the backtracker starts.
//! `\w`/`\d`/`\s` and case-insensitivity use Python's Unicode 14 tables
//! ([`charset`]).  The crate form is built twice: with every class cut down
//! to ASCII, for haystacks without other characters (small automata, fast
//! to build), and, on first use, with full classes.
//!
//! Compiling ([`PyRegex::new`]) only parses: every error Python's
//! `re.compile` reports is found there.  The crate forms and the
//! backtracker's program are built on first use, so that the forty-odd
//! patterns a filter and the default date templates bring cost little
//! until a line needs them.  Searches allocate nothing once their buffers
//! (thread-local, and the caller's [`Captures`]) have grown.
//!
//! [`PyRegexSet`] tries many patterns in one automaton pass (fail2ban's
//! failregexes on every line) and lists those that may match.
//!
//! `search(text, pos, endpos)` follows Python: the text is cut at
//! `endpos`, `^`/`\A` never match at `pos > 0`, look-behind sees before
//! `pos`.
//!
//! Residual differences from CPython 3.11.2:
//! * its possessive repeats (new in 3.11) have known bugs fixed in later
//!   releases (spans no path produces); this module follows the corrected
//!   semantics;
//! * `\N{...}` knows the names of the `unicode_names2` crate's Unicode
//!   version (newer than Python 3.11's 14.0), and `isprintable` in error
//!   messages follows [`crate::pyvalue::str_repr`];
//! * recursion deeper than the backtracker allows (loops of complex bodies
//!   over millions of characters) reports no match where sre, which keeps
//!   its stack on the heap, would go on.

mod backtrack;
mod charset;
mod emit;
mod parse;
mod set;
mod tables;

pub use set::PyRegexSet;

#[cfg(test)]
pub(crate) mod difftest;
#[cfg(test)]
mod tests;

use backtrack::{Outcome, Program, Scratch, Tests};
use regex_automata::{Input, meta};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, OnceLock, Weak};

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
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Captures {
    /// Start and end of each group, flattened.
    slots: Vec<Option<usize>>,
}

impl Clone for Captures {
    fn clone(&self) -> Self {
        Captures {
            slots: self.slots.clone(),
        }
    }

    /// Copies into the existing allocation.
    fn clone_from(&mut self, source: &Self) {
        self.slots.clone_from(&source.slots);
    }
}

impl Captures {
    /// No spans (no allocation), to be filled by a search.
    pub const fn new() -> Captures {
        Captures { slots: Vec::new() }
    }

    /// The span of group `i`, if it took part in the match.
    pub fn get(&self, i: usize) -> Option<(usize, usize)> {
        match (self.slots.get(2 * i), self.slots.get(2 * i + 1)) {
            (Some(&Some(s)), Some(&Some(e))) => Some((s, e)),
            _ => None,
        }
    }

    /// Number of groups including group 0.
    pub fn len(&self) -> usize {
        self.slots.len() / 2
    }

    /// Whether there are no spans at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The whole match span.
    pub fn span(&self) -> (usize, usize) {
        self.get(0).unwrap_or((0, 0))
    }
}

/// A compiled Python regex.
///
/// Compiling only parses (every error `re.compile` reports is a parse
/// error); the automata and the backtracker's program are built on first
/// use.
///
/// Like Python's `re`, compiling keeps a cache: the same pattern with the
/// same flags compiled again (twenty jails of one filter) gives the same
/// compiled regex, whose automata are then built once and shared.
#[derive(Clone)]
pub struct PyRegex {
    inner: Arc<Inner>,
}

struct Inner {
    pattern: String,
    parsed: Arc<parse::Parsed>,
    /// The crate form for ASCII haystacks and what is known of it.
    automaton: OnceLock<Automaton>,
    program: OnceLock<Program>,
    /// The crate form for other haystacks.
    unicode_re: OnceLock<Option<meta::Regex>>,
}

/// The compiled regexes still in use, by pattern and flags.
type Compiled = BTreeMap<(String, u32), Weak<Inner>>;

/// The compile cache and the size at which it is next swept of regexes
/// no longer in use.
static COMPILED: Mutex<(Compiled, usize)> = Mutex::new((BTreeMap::new(), 0));

/// The crate form of a pattern for ASCII haystacks, and the conditions
/// under which the crate forms are exact.
struct Automaton {
    ascii_re: Option<meta::Regex>,
    /// Its pattern.
    ascii_pattern: String,
    /// Whether the crate form matches exactly where Python does (given
    /// the haystack checks).
    exact: bool,
    /// Whether, beyond that, its match span is Python's (no repeat with a
    /// body that can match empty).
    crate_span_exact: bool,
    uses_dollar: bool,
    word_unicode: bool,
    word_ascii: bool,
    non_boundary: bool,
    /// Whether every match starts at the beginning of the text.
    at_start: bool,
}

impl fmt::Debug for PyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PyRegex({:?})", self.inner.pattern)
    }
}

pub(super) const SIZE_LIMIT: usize = 256 << 20;

/// Backtracking depth allowed on the caller's stack (a level takes up to
/// about 600 bytes in a debug build), and on the helper thread (with
/// `DEEP_STACK` bytes of stack) a search that needs more gets.
const SHALLOW_DEPTH: usize = 1_000;
const DEEP_DEPTH: usize = 2_000_000;
const DEEP_STACK: usize = 1 << 30;

fn build_crate(pattern: &str) -> Option<meta::Regex> {
    meta::Regex::builder()
        .configure(meta::Config::new().nfa_size_limit(Some(SIZE_LIMIT)))
        .build(pattern)
        .ok()
}

thread_local! {
    /// The backtracker's buffers, and the spans `is_match` has no use for.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static SLOTS: RefCell<Vec<Option<usize>>> = const { RefCell::new(Vec::new()) };
}

impl PyRegex {
    /// Compiles `pattern` without flags.
    pub fn new(pattern: &str) -> Result<PyRegex, Error> {
        PyRegex::with_flags(pattern, Flags::default())
    }

    /// Compiles `pattern` with `flags`.
    pub fn with_flags(pattern: &str, flags: Flags) -> Result<PyRegex, Error> {
        let key = (pattern.to_string(), flags.bits());
        let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = compiled.0.get(&key).and_then(Weak::upgrade) {
            return Ok(PyRegex { inner });
        }
        let parsed =
            parse::parse(pattern, flags.bits()).map_err(|e| Error::new(e.msg, e.pos, pattern))?;
        let inner = Arc::new(Inner {
            pattern: pattern.to_string(),
            parsed: Arc::new(parsed),
            automaton: OnceLock::new(),
            program: OnceLock::new(),
            unicode_re: OnceLock::new(),
        });
        let (map, sweep_at) = &mut *compiled;
        if map.len() >= *sweep_at {
            map.retain(|_, w| w.strong_count() > 0);
            *sweep_at = (2 * map.len()).max(64);
        }
        map.insert(key, Arc::downgrade(&inner));
        Ok(PyRegex { inner })
    }

    fn automaton(&self) -> &Automaton {
        self.inner.automaton.get_or_init(|| {
            let em = emit::emit_ascii(&self.inner.parsed);
            let ascii_re = build_crate(&em.pattern);
            let ascii_pattern = em.pattern;
            Automaton {
                exact: em.exact && ascii_re.is_some(),
                crate_span_exact: !parse::has_nullable_repeat(
                    &self.inner.parsed.seq,
                    &self.inner.parsed.widths,
                ),
                uses_dollar: em.uses_dollar,
                word_unicode: em.word_unicode,
                word_ascii: em.word_ascii,
                non_boundary: em.non_boundary,
                at_start: backtrack::at_start(&self.inner.parsed),
                ascii_re,
                ascii_pattern,
            }
        })
    }

    fn program(&self) -> &Program {
        self.inner
            .program
            .get_or_init(|| Program::new(&self.inner.parsed))
    }

    /// The Python pattern text.
    pub fn as_str(&self) -> &str {
        &self.inner.pattern
    }

    /// Number of capture groups, excluding group 0.
    pub fn groups(&self) -> usize {
        self.inner.parsed.groups
    }

    /// Named groups in order of definition, with their group index.
    pub fn group_names(&self) -> &[(String, usize)] {
        &self.inner.parsed.names
    }

    /// Index of the named group.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.inner
            .parsed
            .names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| *i)
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

    /// Python's match span of `text` found by the automaton alone:
    /// `Some(None)` for no match, `None` when only a full search can tell
    /// (the automaton is not exact for this pattern or this text).
    pub fn automaton_span(&self, text: &str) -> Option<Option<(usize, usize)>> {
        let a = self.automaton();
        if !(a.exact && a.crate_span_exact) || (a.non_boundary && text.is_empty()) {
            return None;
        }
        let ascii = text.is_ascii();
        let re = if ascii {
            a.ascii_re.as_ref()
        } else {
            self.unicode_form()
        }?;
        if a.words_disagree(text, ascii) || (a.uses_dollar && inner_newline(text)) {
            return None;
        }
        Some(re.find(Input::new(text)).map(|m| (m.start(), m.end())))
    }

    /// The match of Python's `search(text)` that starts exactly at byte
    /// `start`, if there is one (the whole text visible to `^`, `\b` and
    /// look-behinds): one step of the search, without the automaton.  Once
    /// [`automaton_span`](Self::automaton_span) gave `Some(Some((start,
    /// _)))`, this fills `caps` with `search`'s groups.
    pub fn match_at_into(&self, text: &str, start: usize, caps: &mut Captures) -> bool {
        if start > text.len() || !text.is_char_boundary(start) {
            caps.slots.clear();
            return false;
        }
        self.backtrack(text, start, true, Some(&mut caps.slots))
    }

    /// Whether every match starts at the beginning of the text (the
    /// pattern opens with `^` or `\A`, without MULTILINE).
    pub fn at_start(&self) -> bool {
        backtrack::at_start(&self.inner.parsed)
    }

    /// Python's `search(text)` for a pattern whose matches start at the
    /// beginning of the text ([`at_start`](Self::at_start)), answered from
    /// `memo` when a text read the same way was searched before.
    pub fn match_start_memo(&self, text: &str, caps: &mut Captures, memo: &mut StartMemo) -> bool {
        if memo.off {
            return self.search_into(text, 0, text.len(), caps);
        }
        if let Some(matched) = memo.get(text.as_bytes(), &mut caps.slots) {
            return matched;
        }
        memo.misses += 1;
        if memo.misses > MEMO_MISSES {
            // the memo's tables are dropped with it
            *memo = StartMemo {
                off: true,
                ..StartMemo::default()
            };
            return self.search_into(text, 0, text.len(), caps);
        }
        let program = self.program();
        let searched = SCRATCH.with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            Some(program.match_recorded(text, &mut s, &mut caps.slots, &memo.tests, SHALLOW_DEPTH))
        });
        match searched {
            Some((Outcome::Match, touched)) => {
                memo.put(text.as_bytes(), touched, Some(&caps.slots));
                true
            }
            Some((Outcome::NoMatch, touched)) => {
                caps.slots.clear();
                memo.put(text.as_bytes(), touched, None);
                false
            }
            _ => {
                memo.tests.get_mut().beyond = false;
                self.match_at_into(text, 0, caps)
            }
        }
    }

    fn unicode_form(&self) -> Option<&meta::Regex> {
        self.inner
            .unicode_re
            .get_or_init(|| build_crate(&emit::emit(&self.inner.parsed).pattern))
            .as_ref()
    }

    fn run(&self, text: &str, pos: usize, endpos: usize, caps: Option<&mut Captures>) -> bool {
        let endpos = floor_boundary(text, endpos.min(text.len()));
        let pos = floor_boundary(text, pos.min(text.len()));
        if pos > endpos {
            if let Some(caps) = caps {
                caps.slots.clear();
            }
            return false;
        }
        let hay = &text[..endpos];
        let ascii = hay.is_ascii();
        let a = self.automaton();
        let crate_re = if ascii {
            a.ascii_re.as_ref()
        } else {
            self.unicode_form()
        };
        // where the automaton says the match starts (`None`: no match);
        // without a usable automaton, search from `pos`
        let mut start = Some(pos);
        let mut anchored = false;
        if let Some(re) = crate_re
            && !a.words_disagree(hay, ascii)
        {
            let input = Input::new(hay).range(pos..);
            let exact = a.exact
                && !(a.non_boundary && hay.is_empty())
                && !(a.uses_dollar && inner_newline(hay));
            if caps.is_none() && exact {
                return re.is_match(input);
            }
            if exact && a.crate_span_exact && self.inner.parsed.groups == 0 {
                let m = re.find(input);
                if let Some(caps) = caps {
                    caps.slots.clear();
                    if let Some(m) = m {
                        caps.slots.extend([Some(m.start()), Some(m.end())]);
                    }
                }
                return m.is_some();
            }
            start = if a.at_start {
                // the match can only start at `pos`: a yes/no suffices
                re.is_match(input).then_some(pos)
            } else {
                re.find(input).map(|m| m.start())
            };
            anchored = exact || a.at_start;
        }
        let Some(start) = start else {
            if let Some(caps) = caps {
                caps.slots.clear();
            }
            return false;
        };
        match caps {
            Some(caps) => self.backtrack(hay, start, anchored, Some(&mut caps.slots)),
            None => SLOTS.with(|s| match s.try_borrow_mut() {
                Ok(mut slots) => self.backtrack(hay, start, anchored, Some(&mut slots)),
                Err(_) => self.backtrack(hay, start, anchored, None),
            }),
        }
    }

    /// Runs the backtracker from `start`; fills `slots` (cleared when
    /// there is no match).
    fn backtrack(
        &self,
        hay: &str,
        start: usize,
        anchored: bool,
        slots: Option<&mut Vec<Option<usize>>>,
    ) -> bool {
        let mut slots = slots;
        let program = self.program();
        let outcome = SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => program.search(
                hay,
                start,
                anchored,
                &mut s,
                slots.as_deref_mut(),
                SHALLOW_DEPTH,
            ),
            Err(_) => program.search(
                hay,
                start,
                anchored,
                &mut Scratch::default(),
                slots.as_deref_mut(),
                SHALLOW_DEPTH,
            ),
        });
        let outcome = match outcome {
            Outcome::TooDeep => std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .stack_size(DEEP_STACK)
                    .spawn_scoped(scope, || {
                        program.search(
                            hay,
                            start,
                            anchored,
                            &mut Scratch::default(),
                            slots.as_deref_mut(),
                            DEEP_DEPTH,
                        )
                    })
                    .ok()
                    .and_then(|h| h.join().ok())
                    .unwrap_or(Outcome::NoMatch)
            }),
            other => other,
        };
        if outcome != Outcome::Match
            && let Some(slots) = slots
        {
            slots.clear();
        }
        outcome == Outcome::Match
    }
}

/// Results of [`PyRegex::match_start_memo`] for texts already searched,
/// keyed by the classes of the bytes each search read, per position (see
/// [`backtrack::Tests`]): a later text whose bytes have the same classes
/// there is searched along the same path, with the same outcome and
/// groups.  Log lines differ in their digits and words more than in how a
/// date template reads them: a `%H:%M:%S` time has a few dozen class
/// sequences, not 86,400.
#[derive(Debug, Clone, Default)]
pub struct StartMemo {
    tests: RefCell<Tests>,
    /// The key shapes stored: how many bytes were read, and whether the
    /// end of the text was.
    shapes: Vec<(usize, bool)>,
    /// Per whether the end was read: key (classes) → outcome.
    maps: [HashMap<Box<[u8]>, Stored, KeyHash>; 2],
    classes: Vec<u8>,
    /// The last two answers, the latest first (compared before the maps: a
    /// log's lines mostly take one path, or alternate between two).
    recent: [Recent; 2],
    /// Searches and misses in the current window; a memo that misses too
    /// often (texts too varied where the pattern reads them) stops.
    tries: u32,
    misses: u32,
    off: bool,
}

/// An answer of a [`StartMemo`] kept apart from its maps.
#[derive(Debug, Clone, Default)]
struct Recent {
    /// Whether it matched (`None`: no answer kept).
    matched: Option<bool>,
    /// Whether the end of the text was read.
    ends: bool,
    key: Vec<u8>,
    slots: Vec<Option<usize>>,
}

type KeyHash = BuildHasherDefault<KeyHasher>;

/// A memoized outcome: the group slots, or `None` for no match.
type Stored = Option<Box<[Option<usize>]>>;

/// Shapes and entries a [`StartMemo`] keeps (it starts afresh when full).
const MEMO_SHAPES: usize = 16;
const MEMO_ENTRIES: usize = 256;

/// A [`StartMemo`] that misses more than `MEMO_MISSES` of `MEMO_WINDOW`
/// searches stops: recording a search costs several plain ones.
const MEMO_WINDOW: u32 = 1024;
const MEMO_MISSES: u32 = 128;

impl StartMemo {
    /// The stored outcome for `text`, if any (its groups then in `slots`).
    fn get(&mut self, text: &[u8], slots: &mut Vec<Option<usize>>) -> Option<bool> {
        self.tries += 1;
        if self.tries == MEMO_WINDOW {
            self.tries = 0;
            self.misses = 0;
        }
        self.classes.clear();
        let tests = self.tests.get_mut();
        for recent in &self.recent {
            let Some(matched) = recent.matched else { break };
            let k = recent.key.len();
            if text.len() >= k
                && (!recent.ends || text.len() == k)
                && recent
                    .key
                    .iter()
                    .zip(text)
                    .enumerate()
                    .all(|(i, (&class, &b))| tests.class(i, b) == class)
            {
                slots.clone_from(&recent.slots);
                return Some(matched);
            }
        }
        for (j, &(k, ends)) in self.shapes.iter().enumerate() {
            if text.len() < k || (ends && text.len() != k) {
                continue;
            }
            while self.classes.len() < k {
                let i = self.classes.len();
                self.classes.push(tests.class(i, text[i]));
            }
            if let Some(found) = self.maps[usize::from(ends)].get(&self.classes[..k]) {
                slots.clear();
                if let Some(stored) = found {
                    slots.extend_from_slice(stored);
                }
                let matched = found.is_some();
                self.recent.swap(0, 1);
                let latest = &mut self.recent[0];
                latest.matched = Some(matched);
                latest.ends = ends;
                latest.key.clear();
                latest.key.extend_from_slice(&self.classes[..k]);
                latest.slots.clone_from(slots);
                // the shapes that answer most come first (any shape whose
                // key fits answers as the search would)
                if j > 0 {
                    self.shapes.swap(j, j - 1);
                }
                return Some(matched);
            }
        }
        None
    }

    /// Stores the outcome of the recorded search of `text` that read
    /// `touched` bytes.
    fn put(&mut self, text: &[u8], touched: usize, slots: Option<&[Option<usize>]>) {
        let tests = self.tests.get_mut();
        if std::mem::take(&mut tests.changed) {
            // the classes of earlier keys were split
            self.maps.iter_mut().for_each(HashMap::clear);
            self.recent.iter_mut().for_each(|r| r.matched = None);
        }
        if std::mem::take(&mut tests.beyond) {
            return;
        }
        let shape = (touched.min(text.len()), touched > text.len());
        if !self.shapes.contains(&shape) {
            if self.shapes.len() == MEMO_SHAPES {
                return;
            }
            self.shapes.push(shape);
        }
        let map = &mut self.maps[usize::from(shape.1)];
        if map.len() >= MEMO_ENTRIES {
            map.clear();
        }
        let key: Box<[u8]> = (0..shape.0).map(|i| tests.class(i, text[i])).collect();
        map.insert(key, slots.map(Box::from));
    }
}

/// A fast hash for the memo's short keys (FxHash's mixing step).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Automaton {
    fn words_disagree(&self, hay: &str, ascii: bool) -> bool {
        words_disagree(hay, ascii, self.word_unicode, self.word_ascii)
    }
}

/// Whether the haystack has characters on which Python's word characters
/// and the `regex` crate's differ, for the boundaries used (on Unicode /
/// ASCII words).
fn words_disagree(hay: &str, ascii: bool, word_unicode: bool, word_ascii: bool) -> bool {
    if !(word_unicode || word_ascii) || ascii {
        return false;
    }
    hay.chars().any(|c| {
        let crate_word = regex_syntax::is_word_character(c);
        (word_unicode && charset::is_py_word(c) != crate_word)
            || (word_ascii && !c.is_ascii() && crate_word)
    })
}

/// Whether `hay` has a `\n` before its last character (where the crate's
/// `(?m:$)` and Python's `$` differ).
fn inner_newline(hay: &str) -> bool {
    memchr::memchr(b'\n', hay.as_bytes()).is_some_and(|i| i + 1 != hay.len())
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}
