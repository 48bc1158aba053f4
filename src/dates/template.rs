//! Date templates: one regex each that finds a date in a line, with its
//! display name, boundary flags and the way its match becomes a time.
//!
//! A template is built from a `datepattern` line exactly as fail2ban builds
//! it (`DateTemplate.setRegex`, `DatePatternRegex`, `DateEpoch`,
//! `DateTai64n`): automatic word or line-begin boundaries, the `{UNB}`,
//! `{^LN-BEG}` and `**` markers, a capturing group 1 around the date, and the
//! `(?iu)` flag for patterns with names.  fail2ban inspects and rewrites the
//! pattern text with a handful of small regexes; these inspections are
//! re-implemented here as plain string functions so that the result does not
//! depend on a regex engine's reading of those meta-patterns.
//!
//! fail2ban also shares template objects process-wide through a keyed cache
//! (`DD_patternCache`, one hour, 1000 entries) and a lazily built list of
//! default templates; a template's "search hits" counter and its weight live
//! on the shared object and influence the template choice of every detector
//! that uses it.  [`TemplateCache`] reproduces that sharing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::pytext::{is_word, py_float, strip};
use super::strptime::{FieldPlan, needs_ignore_case, pattern_to_regex};
use super::{DateError, Timestamp};
use crate::regex::PyRegex;

/// The template is anchored at the line begin.
pub(crate) const LINE_BEGIN: u8 = 8;
/// The template is anchored at the line end.
pub(crate) const LINE_END: u8 = 4;
/// A word boundary was added in front of the date.
pub(crate) const WORD_BEGIN: u8 = 2;
/// A word boundary was added after the date.
pub(crate) const WORD_END: u8 = 1;

/// Which boundary goes in front of a template's regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WordBegin {
    No,
    Word,
    /// Line begin, allowing up to two non-word characters before the date.
    Start,
}

const LN_BEG: &str = "{^LN-BEG}";

/// The default date patterns, in fail2ban's order.
pub(crate) const DEFAULT_PATTERNS: [&str; 17] = [
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
];

/// Length of a `(?word)` group at the start of `s`.
fn flag_group_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("(?")?;
    let word = rest
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(rest.len(), |(i, _)| i);
    (word > 0 && rest[word..].starts_with(')')).then_some(2 + word + 1)
}

/// Removes the first `(?letters)` group (lower-case ASCII letters) from
/// `regex` and returns it.
fn take_global_flags(regex: &mut String) -> Option<String> {
    let b = regex.as_bytes();
    let found = (0..b.len()).find_map(|i| {
        if !regex[i..].starts_with("(?") {
            return None;
        }
        let n = b[i + 2..]
            .iter()
            .take_while(|c| c.is_ascii_lowercase())
            .count();
        (n > 0 && b.get(i + 2 + n) == Some(&b')')).then_some((i, i + 3 + n))
    })?;
    let flags = regex[found.0..found.1].to_string();
    regex.replace_range(found.0..found.1, "");
    Some(flags)
}

/// Where Python's `$` can match at the end of `s` (the end, or before a
/// final newline).
fn end_positions(s: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(s.len()).chain(s.ends_with('\n').then(|| s.len() - 1))
}

/// Whether the byte before `j` is not a backslash.
fn unescaped(s: &str, j: usize) -> bool {
    j == 0 || s.as_bytes()[j - 1] != b'\\'
}

/// The pattern starts with `^`, `(^`, `(?:^` or `**` (after optional `(`s
/// and a flag group): no automatic begin boundary.
fn no_word_bound_begin(s: &str) -> bool {
    let n = s.bytes().take_while(|c| *c == b'(').count();
    (0..=n).rev().any(|k| {
        let with_flags = flag_group_len(&s[k..]).map(|l| k + l);
        with_flags.into_iter().chain([k]).any(|p| {
            let t = &s[p..];
            t.starts_with('^')
                || t.trim_start_matches('(').starts_with("**")
                || t.starts_with("(^")
                || t.starts_with("(?:^")
        })
    })
}

/// The pattern ends with `$`, `$)`, `\b`, `\s` or `**` and `)`s: no automatic
/// end boundary.
fn no_word_bound_end(s: &str) -> bool {
    end_positions(s).any(|e| {
        let t = &s[..e];
        (t.ends_with("$)") && unescaped(t, e - 2))
            || (t.ends_with('$') && unescaped(t, e - 1))
            || ((t.ends_with("\\b") || t.ends_with("\\s")) && unescaped(t, e - 2))
            || {
                let u = t.trim_end_matches(')');
                u.ends_with("**") && unescaped(t, u.len() - 2)
            }
    })
}

/// The pattern has a capturing group: an unescaped `(` not followed by `?`
/// and not directly after `(?`.
fn has_capturing_group(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'('
            && !(i >= 2 && &b[i - 2..i] == b"(?")
            && unescaped(s, i)
            && b.get(i + 1) != Some(&b'?')
    })
}

/// Wraps the body of the pattern in a group, keeping a leading flag group,
/// `^` and flag group and a trailing `$` outside.
fn wrap_in_group(s: &str) -> String {
    let mut p = 0;
    if let Some(l) = flag_group_len(s) {
        p += l;
    }
    if s[p..].starts_with('^') {
        p += 1;
    }
    if let Some(l) = flag_group_len(&s[p..]) {
        p += l;
    }
    let is_end = |q: usize| q == s.len() || (q + 1 == s.len() && s.ends_with('\n'));
    let b = s.as_bytes();
    for e in p..=s.len() {
        if e > p && b[e - 1] == b'\n' {
            return s.to_string();
        }
        let (close, dollar) = if b.get(e) == Some(&b'$') && is_end(e + 1) {
            (e, true)
        } else if is_end(e) {
            (e, false)
        } else {
            continue;
        };
        let end = close + usize::from(dollar);
        return format!(
            "{}({}){}{}",
            &s[..p],
            &s[p..close],
            &s[close..end],
            &s[end..]
        );
    }
    s.to_string()
}

/// The regex is anchored at the line begin (`^`, `(^`, `(?:^`, not `(^|`).
fn line_bound_begin(s: &str) -> bool {
    flag_group_len(s).into_iter().chain([0]).any(|p| {
        let t = &s[p..];
        t.starts_with('^')
            || (t.starts_with("(^") && !t[2..].starts_with('|'))
            || (t.starts_with("(?:^") && !t[4..].starts_with('|'))
    })
}

/// The regex is anchored at the line end (`$` or `$)`, not after `\` or `|`).
fn line_bound_end(s: &str) -> bool {
    end_positions(s).any(|e| {
        let t = &s[..e];
        let ok = |j: usize| j == 0 || !matches!(t.as_bytes()[j - 1], b'\\' | b'|');
        (t.ends_with("$)") && ok(e - 2)) || (t.ends_with('$') && ok(e - 1))
    })
}

/// End of a leading `**` marker (after `(`s and a flag group).
fn leading_marker_end(s: &str) -> Option<usize> {
    let n = s.bytes().take_while(|c| *c == b'(').count();
    (0..=n).rev().find_map(|k| {
        let with_flags = flag_group_len(&s[k..]).map(|l| k + l);
        with_flags.into_iter().chain([k]).find_map(|p| {
            let q = p + s[p..].bytes().take_while(|c| *c == b'(').count();
            s[q..].starts_with("**").then_some(q + 2)
        })
    })
}

/// Removes the `**` markers at the start and the end of the regex.
fn remove_markers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    if let Some(end) = leading_marker_end(s) {
        out.push_str(&s[..end].replace("**", ""));
        pos = end;
    }
    let trailing = end_positions(s)
        .filter_map(|e| {
            let u = s[..e].trim_end_matches(')');
            (u.ends_with("**") && unescaped(s, u.len() - 2)).then(|| (u.len() - 2, e))
        })
        .filter(|(j, _)| *j >= pos)
        .min();
    if let Some((j, e)) = trailing {
        out.push_str(&s[pos..j]);
        out.push_str(&s[j..e].replace("**", ""));
        pos = e;
    }
    out.push_str(&s[pos..]);
    out
}

/// fail2ban's `DateTemplate.setRegex`: adds the boundaries and group 1,
/// returns the final regex and the flags; the name gets the `{^LN-BEG}`
/// prefix for line-begin templates.
pub(crate) fn bound_regex(
    name: &mut String,
    regex: &str,
    word_begin: WordBegin,
    word_end: bool,
) -> (String, u8) {
    let mut regex = strip(regex).to_string();
    let global_flags = take_global_flags(&mut regex);
    let bound_begin = word_begin != WordBegin::No && !no_word_bound_begin(&regex);
    let bound_end = word_end && !no_word_bound_end(&regex);
    if !has_capturing_group(&regex) {
        regex = wrap_in_group(&regex);
    }
    let mut flags = 0;
    if bound_begin {
        if word_begin == WordBegin::Start {
            flags |= LINE_BEGIN;
            regex.insert_str(0, r"^(?:\W{0,2})?");
            if !name.starts_with(LN_BEG) {
                name.insert_str(0, LN_BEG);
            }
        } else {
            flags |= WORD_BEGIN;
            regex.insert_str(0, r"(?=^|\b|\W)");
        }
    }
    if bound_end {
        flags |= WORD_END;
        regex.push_str(r"(?=\b|\W|$)");
    }
    if flags & LINE_BEGIN == 0 && line_bound_begin(&regex) {
        flags |= LINE_BEGIN;
    }
    if flags & LINE_END == 0 && line_bound_end(&regex) {
        flags |= LINE_END;
    }
    let mut regex = remove_markers(&regex);
    if let Some(f) = global_flags {
        regex.insert_str(0, &f);
    }
    (regex, flags)
}

/// A pattern without its boundary markers and explicit boundaries (for the
/// `{DATE}` substitution).
pub(crate) fn unbound_pattern(pattern: &str) -> String {
    let p = pattern.strip_prefix("{UNB}").unwrap_or(pattern);
    let p = p.strip_prefix(LN_BEG).unwrap_or(p);
    let p = p
        .strip_prefix(r"(^|\b|\W)")
        .or_else(|| p.strip_prefix(r"(?:^|\b|\W)"))
        .unwrap_or(p);
    const END: &str = r"(?=\b|\W|$)";
    if let Some(q) = p.strip_suffix(END) {
        q.to_string()
    } else if let Some(q) = p.strip_suffix("\n").and_then(|q| q.strip_suffix(END)) {
        format!("{q}\n")
    } else {
        p.to_string()
    }
}

/// Positions of the unescaped, case-insensitive occurrences of `{word}` in
/// `s` (`word` upper-case ASCII), as (start, end).
fn marker_positions(s: &str, words: &[&str]) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hit = (b[i] == b'{' && unescaped(s, i))
            .then(|| {
                words.iter().find_map(|w| {
                    let end = i + w.len() + 2;
                    (end <= b.len()
                        && b[i + 1..end - 1].eq_ignore_ascii_case(w.as_bytes())
                        && b[end - 1] == b'}')
                        .then_some(end)
                })
            })
            .flatten();
        match hit {
            Some(end) => {
                found.push((i, end));
                i = end;
            }
            None => i += 1,
        }
    }
    found
}

/// Replaces the found markers by `with`.
fn replace_markers(s: &str, found: &[(usize, usize)], with: &str) -> String {
    let mut out = String::with_capacity(s.len() + with.len() * found.len());
    let mut pos = 0;
    for (a, b) in found {
        out.push_str(&s[pos..*a]);
        out.push_str(with);
        pos = *b;
    }
    out.push_str(&s[pos..]);
    out
}

/// Whether the pattern holds an unescaped `{EPOCH}` or `{LEPOCH}`.
pub(crate) fn has_epoch_marker(pattern: &str) -> bool {
    !marker_positions(pattern, &["EPOCH", "LEPOCH"]).is_empty()
}

/// `preMatch` with every unescaped `{DATE}` replaced by `date`.
pub(crate) fn substitute_date(pre_match: &str, date: &str) -> String {
    replace_markers(pre_match, &marker_positions(pre_match, &["DATE"]), date)
}

/// How a template's match becomes a time.
#[derive(Debug)]
pub(crate) enum Kind {
    /// strptime-style fields in named groups.
    Pattern(FieldPlan),
    /// Seconds since the epoch (`long`: also milli- and microseconds).
    Epoch { long: bool },
    /// A TAI64N label.
    Tai64n,
}

/// One date template (a fail2ban `DateTemplate` object).
#[derive(Debug)]
pub(crate) struct Template {
    pub(crate) name: String,
    /// The date pattern it was built from (pattern templates only).
    pub(crate) pattern: Option<String>,
    pub(crate) regex_text: String,
    pub(crate) regex: PyRegex,
    pub(crate) flags: u8,
    pub(crate) kind: Kind,
    /// Group indices whose spans the time conversion needs.
    pub(crate) value_groups: Vec<usize>,
    weight: AtomicU64,
    /// Successful searches by any detector (Python's `template.hits`).
    search_hits: AtomicU64,
}

impl Template {
    fn build(
        name: String,
        pattern: Option<String>,
        regex_text: String,
        flags: u8,
        kind: impl FnOnce(&PyRegex) -> (Kind, Vec<usize>),
    ) -> Result<Template, DateError> {
        let regex = PyRegex::new(&regex_text).map_err(|e| DateError::Regex {
            name: name.clone(),
            regex: regex_text.clone(),
            message: e.to_string(),
        })?;
        let (kind, value_groups) = kind(&regex);
        Ok(Template {
            name,
            pattern,
            regex_text,
            regex,
            flags,
            kind,
            value_groups,
            weight: AtomicU64::new(1f64.to_bits()),
            search_hits: AtomicU64::new(0),
        })
    }

    /// A strptime-style template (`DatePatternRegex`).
    pub(crate) fn from_pattern(pattern: &str) -> Result<Template, DateError> {
        let original = pattern.to_string();
        let mut p = pattern;
        let (mut begin, mut end) = (WordBegin::Word, true);
        if let Some(rest) = p.strip_prefix("{UNB}") {
            p = rest;
            begin = WordBegin::No;
            end = false;
        }
        if begin != WordBegin::No
            && let Some(rest) = p.strip_prefix(LN_BEG)
        {
            p = rest;
            begin = WordBegin::Start;
        }
        let (mut name, mut regex) = pattern_to_regex(p).map_err(|e| DateError::Pattern {
            pattern: p.to_string(),
            message: e,
        })?;
        if needs_ignore_case(p) {
            regex.insert_str(0, "(?iu)");
        }
        let (regex, flags) = bound_regex(&mut name, &regex, begin, end);
        Template::build(name, Some(original), regex, flags, |re| {
            let plan = FieldPlan::new(re.group_names());
            let groups = plan.groups().to_vec();
            (Kind::Pattern(plan), groups)
        })
    }

    /// An epoch template (`DateEpoch`): plain (`EPOCH`), line-begin only, or
    /// a custom pattern with `{EPOCH}`/`{LEPOCH}`; `long` also accepts
    /// milli- and microseconds.
    pub(crate) fn epoch(
        line_begin_only: bool,
        pattern: Option<&str>,
        long: bool,
    ) -> Result<Template, DateError> {
        let (mut name, number) = if long {
            (
                pattern.unwrap_or("LongEpoch").to_string(),
                r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?",
            )
        } else {
            (
                pattern.unwrap_or("Epoch").to_string(),
                r"\d{10,11}\b(?:\.\d{3,6})?",
            )
        };
        let (regex, flags, group) = if let Some(p) = pattern {
            let found = marker_positions(p, &["EPOCH", "LEPOCH"]);
            let regex = format!("({})", replace_markers(p, &found, &format!("({number})")));
            let (regex, flags) = bound_regex(&mut name, &regex, WordBegin::Word, true);
            (regex, flags, 2)
        } else if !line_begin_only {
            let regex = concat!(
                r"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))%s)",
                r"(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))"
            )
            .replace("%s", number);
            let (regex, flags) = bound_regex(&mut name, &regex, WordBegin::No, true);
            (regex, flags, 1)
        } else {
            let regex = format!(r"((?P<square>(?<=^\[))?{number})(?(square)(?=\]))");
            let (regex, flags) = bound_regex(&mut name, &regex, WordBegin::Start, true);
            (regex, flags, 1)
        };
        Template::build(name, None, regex, flags, |_| {
            (Kind::Epoch { long }, vec![group])
        })
    }

    /// A TAI64N template (`DateTai64n`).
    pub(crate) fn tai64n(begin: WordBegin) -> Result<Template, DateError> {
        let mut name = "TAI64N".to_string();
        let (regex, flags) = bound_regex(&mut name, "@[0-9a-f]{24}", begin, true);
        Template::build(name, None, regex, flags, |_| (Kind::Tai64n, vec![1]))
    }

    /// The template's own weight (1, or 100 for the line-begin copies in the
    /// default list).
    pub(crate) fn weight(&self) -> f64 {
        f64::from_bits(self.weight.load(Ordering::Relaxed))
    }

    fn set_weight(&self, w: f64) {
        self.weight.store(w.to_bits(), Ordering::Relaxed);
    }

    /// Successful searches of this template by any detector.
    pub(crate) fn search_hits(&self) -> u64 {
        self.search_hits.load(Ordering::Relaxed)
    }

    /// Counts a successful search.
    pub(crate) fn count_hit(&self) {
        self.search_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// The time of a match whose value groups (`value_groups`) are at
    /// `spans` in `text` (`u32::MAX`: the group did not take part).
    pub(crate) fn time_of<C: super::strptime::Clock>(
        &self,
        text: &str,
        spans: &[(u32, u32)],
        default_tz: Option<i32>,
        clock: &C,
        memo: &super::strptime::MinuteMemo,
    ) -> Result<Option<Timestamp>, DateError> {
        let value = |slot: usize| super::strptime::span_text(text, spans[slot]);
        match &self.kind {
            Kind::Pattern(plan) => {
                super::strptime::groups_to_time_memo(plan, text, spans, default_tz, clock, memo)
            }
            Kind::Epoch { long } => {
                let Some(v) = value(0) else {
                    return Err(DateError::Uncaught(
                        if *long {
                            "TypeError: object of type 'NoneType' has no len()"
                        } else {
                            "TypeError: float() argument must be a string or a real number, \
                             not 'NoneType'"
                        }
                        .to_string(),
                    ));
                };
                let len = v.chars().count();
                let Some(mut t) = py_float(v) else {
                    return Ok(None);
                };
                if *long && len >= 13 {
                    t /= if len >= 16 && !v.contains('.') {
                        1_000_000.0
                    } else {
                        1000.0
                    };
                }
                Ok(Some(Timestamp::Float(t)))
            }
            Kind::Tai64n => {
                let Some(v) = value(0) else {
                    return Ok(None);
                };
                let hex: String = v.chars().skip(2).take(15).collect();
                Ok(i64::from_str_radix(&hex, 16).ok().map(Timestamp::Int))
            }
        }
    }
}

const CACHE_MAX_COUNT: usize = 1000;
const CACHE_MAX_TIME: f64 = 3600.0;

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct CacheEntry {
    key: String,
    template: Arc<Template>,
    expires: f64,
}

/// The state behind [`TemplateCache`].
#[derive(Default)]
pub(crate) struct CacheState {
    entries: Vec<CacheEntry>,
    base: Option<Vec<Arc<Template>>>,
    full: Option<Vec<Arc<Template>>>,
}

/// Templates shared by the detectors of a process, as fail2ban shares them:
/// the pattern cache (by key, one hour, at most 1000 entries, oldest evicted
/// first) and the lists of default templates.
///
/// [`TemplateCache::global`] is the process-wide instance every
/// [`super::DateDetector::new`] uses; a separate instance gives a detector
/// the state of a fresh Python process.
#[derive(Default)]
pub struct TemplateCache {
    state: Mutex<CacheState>,
    /// Counts weight changes of shared templates.
    weight_changes: AtomicU64,
}

static GLOBAL_CACHE: LazyLock<Arc<TemplateCache>> = LazyLock::new(Arc::default);

impl TemplateCache {
    /// The process-wide cache.
    pub fn global() -> Arc<TemplateCache> {
        GLOBAL_CACHE.clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How often a shared template's weight was changed so far.
    pub(crate) fn weight_changes(&self) -> u64 {
        self.weight_changes.load(Ordering::Relaxed)
    }

    /// The default templates (17, `DEFAULT_TEMPLATES`).
    pub(crate) fn base_defaults(&self) -> Result<Vec<Arc<Template>>, DateError> {
        let mut state = self.lock();
        state.base_defaults()
    }

    /// The full default list (31): line-begin copies first, weight 100.
    pub(crate) fn full_defaults(&self) -> Result<Vec<Arc<Template>>, DateError> {
        let mut state = self.lock();
        if let Some(full) = &state.full {
            return Ok(full.clone());
        }
        let mut anchored = Vec::new();
        let mut plain = Vec::new();
        for t in state.base_defaults()? {
            if !t.name.starts_with(LN_BEG) && !t.name.starts_with('^') {
                let copy = state.anchored(&t, &|s| format!("{LN_BEG}{s}"))?;
                if copy.name != t.name {
                    copy.set_weight(100.0);
                    self.weight_changes.fetch_add(1, Ordering::Relaxed);
                    anchored.push(copy);
                }
            }
            plain.push(t);
        }
        anchored.extend(plain);
        state.full = Some(anchored.clone());
        Ok(anchored)
    }
}

/// The cache key of a pattern: the pattern itself, upper-cased when it has
/// no `%`.
pub(crate) fn pattern_key(pattern: &str) -> String {
    if pattern.contains('%') {
        pattern.to_string()
    } else {
        pattern.to_uppercase()
    }
}

impl CacheState {
    /// The cached template of `key`, if not expired.
    pub(crate) fn get(&mut self, key: &str) -> Option<Arc<Template>> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        if self.entries[i].expires > wall_time() {
            return Some(self.entries[i].template.clone());
        }
        self.entries.remove(i);
        None
    }

    /// Caches `template` under `key`.
    pub(crate) fn set(&mut self, key: &str, template: Arc<Template>) {
        let now = wall_time();
        if self.entries.len() >= CACHE_MAX_COUNT {
            while !self.entries.is_empty() {
                let e = self.entries.remove(0);
                if e.expires > now && self.entries.len() < CACHE_MAX_COUNT {
                    break;
                }
            }
        }
        let expires = now + CACHE_MAX_TIME;
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.template = template;
                e.expires = expires;
            }
            None => self.entries.push(CacheEntry {
                key: key.to_string(),
                template,
                expires,
            }),
        }
    }

    /// fail2ban's `_getPatternTemplate`: the (cached) template of a pattern.
    pub(crate) fn template(
        &mut self,
        pattern: &str,
        key: Option<&str>,
    ) -> Result<Arc<Template>, DateError> {
        let key = key.map_or_else(|| pattern_key(pattern), str::to_string);
        let template = match self.get(&key) {
            Some(t) => t,
            None => {
                let mut made = None;
                if key.contains("EPOCH") {
                    if has_epoch_marker(pattern) {
                        made = Some(Template::epoch(
                            false,
                            Some(pattern),
                            key.contains("LEPOCH"),
                        ));
                    } else if matches!(key.as_str(), "EPOCH" | "{^LN-BEG}EPOCH" | "^EPOCH") {
                        made = Some(Template::epoch(key != "EPOCH", None, false));
                    } else if matches!(key.as_str(), "LEPOCH" | "{^LN-BEG}LEPOCH" | "^LEPOCH") {
                        made = Some(Template::epoch(key != "LEPOCH", None, true));
                    }
                }
                let made = match made {
                    Some(t) => t,
                    None if matches!(key.as_str(), "TAI64N" | "{^LN-BEG}TAI64N" | "^TAI64N") => {
                        let begin = if key == "TAI64N" {
                            WordBegin::No
                        } else {
                            WordBegin::Start
                        };
                        Template::tai64n(begin)
                    }
                    None => Template::from_pattern(pattern),
                };
                Arc::new(made?)
            }
        };
        self.set(&key, template.clone());
        Ok(template)
    }

    /// fail2ban's `_getAnchoredTemplate`: the template whose name and
    /// pattern are `wrap`ped versions of `template`'s.
    pub(crate) fn anchored(
        &mut self,
        template: &Arc<Template>,
        wrap: &dyn Fn(&str) -> String,
    ) -> Result<Arc<Template>, DateError> {
        let name = wrap(&template.name);
        if let Some(t) = self.get(&name) {
            return Ok(t);
        }
        match &template.pattern {
            Some(pattern) => {
                let wrapped = wrap(pattern);
                match self.get(&wrapped) {
                    Some(t) => Ok(t),
                    None => self.template(&wrapped, None),
                }
            }
            None => self.template(&name, None),
        }
    }

    fn base_defaults(&mut self) -> Result<Vec<Arc<Template>>, DateError> {
        if let Some(base) = &self.base {
            return Ok(base.clone());
        }
        let base = DEFAULT_PATTERNS
            .iter()
            .map(|p| self.template(p, None))
            .collect::<Result<Vec<_>, _>>()?;
        self.base = Some(base.clone());
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(pattern: &str) -> (String, String, u8) {
        let t = Template::from_pattern(pattern).unwrap();
        (t.name, t.regex_text, t.flags)
    }

    #[test]
    fn boundaries_and_groups_follow_fail2ban() {
        let (name, regex, flags) = built("^%Y-%m-%d %H:%M:%S");
        assert_eq!(name, "^Year-Month-Day 24hour:Minute:Second");
        assert!(regex.starts_with(r"^((?P<Y>\d{4})-"));
        assert!(regex.ends_with(r"(?P<S>[0-5]?\d|6[0-1]))(?=\b|\W|$)"));
        assert_eq!(flags, LINE_BEGIN | WORD_END);

        let (name, regex, flags) = built("{^LN-BEG}%H:%M:%S");
        assert_eq!(name, "{^LN-BEG}24hour:Minute:Second");
        assert!(regex.starts_with(r"^(?:\W{0,2})?((?P<H>"));
        assert_eq!(flags, LINE_BEGIN | WORD_END);

        let (name, regex, flags) = built("%b %d");
        assert_eq!(name, "MON Day");
        assert!(regex.starts_with(r"(?iu)(?=^|\b|\W)((?P<b>jan|"));
        assert_eq!(flags, WORD_BEGIN | WORD_END);

        let (_, regex, flags) = built(r"**%H:%M**");
        assert!(regex.starts_with("((?P<H>"));
        assert!(regex.ends_with("(?P<M>[0-5]?\\d))"));
        assert_eq!(flags, 0);

        let (_, regex, flags) = built(r"{UNB}^%H$");
        assert_eq!(regex, r"^((?P<H>[0-1]?\d|2[0-3]))$");
        assert_eq!(flags, LINE_BEGIN | LINE_END);

        let (_, regex, flags) = built(r"^t=(%H)\s");
        assert_eq!(regex, r"^t=((?P<H>[0-1]?\d|2[0-3]))\s");
        assert_eq!(flags, LINE_BEGIN);

        let (name, regex, flags) = built("{UNB}^");
        assert_eq!(
            (name.as_str(), regex.as_str(), flags),
            ("^", "^()", LINE_BEGIN)
        );
    }

    #[test]
    fn marker_helpers() {
        assert_eq!(remove_markers("(**x**))"), "(x))");
        assert_eq!(remove_markers(r"x\**"), r"x\**");
        assert_eq!(remove_markers("((?i)**x"), "((?i)x");
        assert_eq!(wrap_in_group("(?i)^abc$"), "(?i)^(abc)$");
        assert_eq!(wrap_in_group(r"abc\$"), r"(abc\)$");
        assert!(has_capturing_group("a(b)"));
        assert!(!has_capturing_group(r"a\(b(?:c)(?(x)y)"));
        assert!(no_word_bound_begin("((?i)**x"));
        assert!(no_word_bound_begin("(?:^x"));
        assert!(!no_word_bound_begin("x^"));
        assert!(no_word_bound_end("x$)"));
        assert!(!no_word_bound_end(r"x\$"));
        assert!(no_word_bound_end(r"x\b"));
        assert!(!line_bound_begin("(^|x)"));
        assert!(!line_bound_end("(a|$)"));
        assert_eq!(unbound_pattern(r"{^LN-BEG}(?:^|\b|\W)%H(?=\b|\W|$)"), "%H");
        assert_eq!(substitute_date(r"^a{date}b\{DATE}", "X"), r"^aXb\{DATE}");
        assert!(has_epoch_marker("x {lepoch}") && !has_epoch_marker(r"\{EPOCH}"));
        let mut r = "a(?iu)b(?x)".to_string();
        assert_eq!(take_global_flags(&mut r), Some("(?iu)".to_string()));
        assert_eq!(r, "ab(?x)");
    }

    #[test]
    fn epoch_and_tai64n_templates() {
        let t = Template::epoch(false, None, false).unwrap();
        assert_eq!(t.name, "Epoch");
        assert_eq!(t.flags, WORD_END);
        assert!(t.regex_text.ends_with(r"(?(square)(?=\])))(?=\b|\W|$)"));
        let t = Template::epoch(true, None, true).unwrap();
        assert_eq!(t.name, "{^LN-BEG}LongEpoch");
        assert_eq!(t.flags, LINE_BEGIN | WORD_END);
        let t = Template::epoch(false, Some("^x={EPOCH}"), false).unwrap();
        assert_eq!(t.name, "^x={EPOCH}");
        assert_eq!(t.regex_text, r"(^x=(\d{10,11}\b(?:\.\d{3,6})?))(?=\b|\W|$)");
        assert_eq!(t.value_groups, vec![2]);
        let t = Template::tai64n(WordBegin::Start).unwrap();
        assert_eq!(t.name, "{^LN-BEG}TAI64N");
        assert_eq!(t.regex_text, r"^(?:\W{0,2})?(@[0-9a-f]{24})(?=\b|\W|$)");
    }

    #[test]
    fn default_lists_and_sharing() {
        let cache = TemplateCache::default();
        let full = cache.full_defaults().unwrap();
        let base = cache.base_defaults().unwrap();
        assert_eq!((base.len(), full.len()), (17, 31));
        assert_eq!(
            full.iter().filter(|t| t.flags & LINE_BEGIN != 0).count(),
            17
        );
        assert_eq!(full[7].name, "{^LN-BEG}Epoch");
        assert_eq!(full[13].name, "{^LN-BEG}TAI64N");
        assert!(full[..14].iter().all(|t| t.weight() == 100.0));
        assert!(full[14..].iter().all(|t| t.weight() == 1.0));
        assert!(Arc::ptr_eq(&full[14], &base[0]));
        assert_eq!(
            full[1].name,
            r"{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?"
        );
        // the pattern cache hands out the shared default object
        let again = cache
            .lock()
            .template(
                r"{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
                None,
            )
            .unwrap();
        assert!(Arc::ptr_eq(&again, &full[0]));
        assert_eq!(cache.weight_changes(), 14);
    }
}
