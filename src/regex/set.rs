//! Several compiled patterns tried in one pass: which of them may match a
//! text.
//!
//! fail2ban tries every failure regex on every line; most lines match none
//! of them.  The crate forms of the patterns ([`super::emit`]) go into one
//! multi-pattern automaton of `regex-automata` (overlapping search, so that
//! every pattern that matches is reported, not only the leftmost), and one
//! scan of the text tells which patterns are worth a full search.  A crate
//! form is either exact or a superset of its Python pattern, so the answer
//! never misses a pattern that matches; on ASCII texts it is exact for the
//! patterns whose automaton is exact on that text.  (On a non-ASCII text,
//! a set with word boundaries lists every pattern: its lazy DFA does not
//! decide those boundaries next to non-ASCII characters.)

use super::parse::Parsed;
use super::{PyRegex, SIZE_LIMIT, emit, words_disagree};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind, PatternID, PatternSet};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Patterns tried together (see the module documentation).
///
/// Sets are cached as regexes are ([`PyRegex::with_flags`]): the same
/// compiled regexes in the same order give the same set.
#[derive(Clone)]
pub struct PyRegexSet {
    pub(super) inner: Arc<SetInner>,
}

/// The sets still in use, by the identities of their members.
type Sets = BTreeMap<Vec<usize>, Weak<SetInner>>;

/// The set cache and the size at which it is next swept of sets no
/// longer in use.
static SETS: Mutex<(Sets, usize)> = Mutex::new((BTreeMap::new(), 0));

pub(super) struct SetInner {
    /// The members, held so that the identities in the cache's key stay
    /// theirs while the set lives (never read).
    _members: Vec<PyRegex>,
    members: Vec<Member>,
    /// Members without a crate form of their own: always candidates.
    always: Vec<usize>,
    /// The index of the member of each pattern of the automata.
    ids: Vec<usize>,
    /// Whether one of them has a word boundary.
    words: bool,
    /// The multi-pattern automaton for ASCII texts (`None` when it could
    /// not be built: every member is then a candidate).
    ascii: Option<Overlapping>,
    /// The parsed members (in automaton order), for the crate forms with
    /// full classes and their automaton, built on the first non-ASCII text.
    parsed: Vec<Arc<Parsed>>,
    unicode: OnceLock<Option<Overlapping>>,
    /// When every member can only match at the start of the text, with one
    /// of a few literal prefixes: the members by the first byte of their
    /// prefixes (see [`PyRegexSet::starts`]).
    prefixes: Option<Prefixes>,
}

/// Literal prefixes of members, by first byte: (member, prefix).
type Prefixes = Box<[Vec<(usize, Box<[u8]>)>; 256]>;

/// The literal prefixes one of which every match of the crate form
/// `pattern` starts with, if there are a few and none is empty.
fn literal_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix).limit_total(64);
    let seq = extractor.extract(&hir);
    let literals = seq.literals()?;
    (!literals.is_empty() && literals.iter().all(|l| !l.is_empty()))
        .then(|| literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// What a member's crate form needs checked on each text.
struct Member {
    /// Whether word boundaries are used for Unicode / ASCII words (the
    /// crate's and Python's word characters differ on some non-ASCII
    /// texts, where the crate form proves nothing).
    word_unicode: bool,
    word_ascii: bool,
}

/// A lazy DFA over the forward NFA only (the meta engine would also build
/// a reverse NFA and prefilters, which an overlapping yes/no search does
/// not use), with its caches.  Where a pattern has a Unicode word boundary
/// it gives up on non-ASCII bytes (the caller then lists every member).
struct Overlapping {
    dfa: DFA,
    caches: Pool<Cache, CacheFn>,
}

type CacheFn = Box<dyn Fn() -> Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

impl Overlapping {
    fn new(patterns: &[String]) -> Option<Overlapping> {
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_many(patterns)
            .ok()?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .unicode_word_boundary(true),
            )
            .build_from_nfa(nfa)
            .ok()?;
        let owned = dfa.clone();
        let create: CacheFn = Box::new(move || owned.create_cache());
        Some(Overlapping {
            dfa,
            caches: Pool::new(create),
        })
    }

    /// Marks in `matched` the patterns matching in `text`; false when the
    /// DFA could not tell.
    fn which(&self, text: &str, matched: &mut PatternSet) -> bool {
        let mut cache = self.caches.get();
        self.dfa
            .try_which_overlapping_matches(&mut cache, &Input::new(text), matched)
            .is_ok()
    }
}

thread_local! {
    /// The per-pattern answers of the last overlapping search.
    static MATCHED: RefCell<PatternSet> = RefCell::new(PatternSet::new(0));
}

impl PyRegexSet {
    /// A set of the given patterns; [`candidates`](Self::candidates)
    /// reports indices into `regexes`.
    pub fn new(regexes: &[&PyRegex]) -> PyRegexSet {
        let key: Vec<usize> = regexes
            .iter()
            .map(|re| Arc::as_ptr(&re.inner) as usize)
            .collect();
        let mut sets = SETS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = sets.0.get(&key).and_then(Weak::upgrade) {
            return PyRegexSet { inner };
        }
        let inner = Arc::new(SetInner::new(regexes));
        let (map, sweep_at) = &mut *sets;
        if map.len() >= *sweep_at {
            map.retain(|_, w| w.strong_count() > 0);
            *sweep_at = (2 * map.len()).max(16);
        }
        map.insert(key, Arc::downgrade(&inner));
        PyRegexSet { inner }
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.inner.members.len()
    }

    /// Whether the set has no pattern.
    pub fn is_empty(&self) -> bool {
        self.inner.members.is_empty()
    }

    /// Replaces `out` with the indices (ascending) of the patterns that may
    /// match somewhere in `text` (Python's `search(text)`): every pattern
    /// that matches is among them, and on an ASCII text, for a pattern
    /// whose automaton is exact there ([`PyRegex::automaton_span`]
    /// answers), being listed means matching.
    pub fn candidates(&self, text: &str, out: &mut Vec<usize>) {
        self.inner.candidates(text, out);
    }

    /// Like [`candidates`](Self::candidates), cheaper but coarser, when
    /// every pattern can only match at the start of the text and the crate
    /// form of each has a few literal prefixes: replaces `out` with the
    /// patterns one of whose prefixes `text` starts with (every pattern
    /// that matches is among them).  False when the set cannot tell that
    /// way (`out` is then unspecified): a pattern without such prefixes, or
    /// a non-ASCII text.
    pub fn starts(&self, text: &str, out: &mut Vec<usize>) -> bool {
        self.inner.starts(text, out)
    }
}

impl SetInner {
    fn new(regexes: &[&PyRegex]) -> SetInner {
        let mut members = Vec::with_capacity(regexes.len());
        let mut always = Vec::new();
        let mut ids = Vec::new();
        let mut ascii_patterns = Vec::new();
        let mut parsed = Vec::new();
        for (i, re) in regexes.iter().enumerate() {
            let a = re.automaton();
            members.push(Member {
                word_unicode: a.word_unicode,
                word_ascii: a.word_ascii,
            });
            if a.ascii_re.is_some() {
                ids.push(i);
                ascii_patterns.push(a.ascii_pattern.clone());
                parsed.push(Arc::clone(&re.inner.parsed));
            } else {
                always.push(i);
            }
        }
        // members that match at the start only, each with literal prefixes
        let prefixes = (always.is_empty() && !ids.is_empty())
            .then(|| {
                let mut table: Prefixes = Box::new(std::array::from_fn(|_| Vec::new()));
                for (&i, pattern) in ids.iter().zip(&ascii_patterns) {
                    if !regexes[i].at_start() {
                        return None;
                    }
                    for prefix in literal_prefixes(pattern)? {
                        table[usize::from(prefix[0])].push((i, prefix.into()));
                    }
                }
                Some(table)
            })
            .flatten();
        SetInner {
            prefixes,
            _members: regexes.iter().map(|&re| re.clone()).collect(),
            words: ids
                .iter()
                .any(|&i| members[i].word_unicode || members[i].word_ascii),
            ascii: Overlapping::new(&ascii_patterns),
            members,
            always,
            ids,
            parsed,
            unicode: OnceLock::new(),
        }
    }

    /// See [`PyRegexSet::starts`].
    fn starts(&self, text: &str, out: &mut Vec<usize>) -> bool {
        let Some(prefixes) = &self.prefixes else {
            return false;
        };
        if !text.is_ascii() {
            return false;
        }
        out.clear();
        let Some(&first) = text.as_bytes().first() else {
            return true;
        };
        for (i, prefix) in &prefixes[usize::from(first)] {
            if text.as_bytes().starts_with(prefix) {
                out.push(*i);
            }
        }
        out.sort_unstable();
        out.dedup();
        true
    }

    /// See [`PyRegexSet::candidates`].
    fn candidates(&self, text: &str, out: &mut Vec<usize>) {
        out.clear();
        let ascii = text.is_ascii();
        let automaton = if ascii {
            self.ascii.as_ref()
        } else if self.words {
            // the DFA would give up (and allocate its error)
            None
        } else {
            self.unicode_form()
        };
        let n = self.ids.len();
        let known = automaton.is_some_and(|automaton| {
            MATCHED.with(|cell| {
                let mut own;
                let mut shared = cell.try_borrow_mut();
                let matched: &mut PatternSet = match shared.as_deref_mut() {
                    Ok(set) => set,
                    Err(_) => {
                        own = PatternSet::new(n);
                        &mut own
                    }
                };
                if matched.capacity() != n {
                    *matched = PatternSet::new(n);
                }
                matched.clear();
                if !automaton.which(text, matched) {
                    return false;
                }
                if ascii {
                    // the word boundaries agree on ASCII texts
                    out.extend(matched.iter().map(|pid| self.ids[pid.as_usize()]));
                    return true;
                }
                for (pid, &i) in self.ids.iter().enumerate() {
                    let m = &self.members[i];
                    if matched.contains(PatternID::must(pid))
                        || words_disagree(text, ascii, m.word_unicode, m.word_ascii)
                    {
                        out.push(i);
                    }
                }
                true
            })
        });
        if !known {
            out.clear();
            out.extend(0..self.members.len());
            return;
        }
        if !self.always.is_empty() {
            out.extend_from_slice(&self.always);
            out.sort_unstable();
        }
    }

    fn unicode_form(&self) -> Option<&Overlapping> {
        self.unicode
            .get_or_init(|| {
                let patterns: Vec<String> =
                    self.parsed.iter().map(|p| emit::emit(p).pattern).collect();
                Overlapping::new(&patterns)
            })
            .as_ref()
    }
}
