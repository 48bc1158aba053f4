//! Translation of a parsed Python pattern into `regex`-crate syntax.
//!
//! The translation serves the automaton that decides whether and where a
//! pattern matches; the groups are left to [`super::backtrack`].  Every
//! character test is emitted as an explicit code-point class computed by
//! [`super::charset`], so neither the crate's `\w`, `\d`, `\s` nor its
//! `(?i)` is relied on, and no group is emitted.
//!
//! A back-reference to a group of one character (fail2ban's date
//! separators, `(?P<_sep>[-/.])...(?P=_sep)`) stays exact: the rest of the
//! sequence after the group is emitted once per character of the group,
//! with the reference as that character (the alternatives start with
//! different characters, so their order does not matter).
//!
//! Other constructs without a regular equivalent are *relaxed*: look-arounds
//! dropped, a back-reference replaced by a copy of its group's pattern, a
//! conditional by both branches, atomic groups and possessive repeats by
//! plain ones.  The result accepts a superset of Python's matches, so its
//! leftmost match start bounds Python's; the pattern is then marked
//! inexact.  Two rewrites keep common look-arounds exact instead: one whose
//! truth depends only on the characters next to the position
//! (`(?=\b|\W|$)`, `(?=^|\b|\W)`, `(?!\w)` ...) becomes the crate's half
//! word boundaries and line anchors, and a look-behind that the preceding
//! pattern always satisfies (fail2ban's IPv6 `(?<=:):`) is dropped.
//! Python's non-multiline `$` becomes `(?m:$)` and the word boundaries the
//! crate's: both exact on the haystacks the caller checks for (no `\n`
//! before the last character, no character whose word-ness differs).

use super::charset::{
    CaseMode, Category, CharSet, ClassItem, any_set, category_set, class_set, literal_set,
};
use super::parse::{
    ASCII, At, DOTALL, IGNORECASE, Item, MAXREPEAT, MULTILINE, Parsed, RepeatKind, Seq, UNICODE,
    width,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::OnceLock;

/// The result of an emission.
#[derive(Debug, Clone, Default)]
pub(super) struct Emitted {
    pub pattern: String,
    /// Whether the pattern matches exactly where Python's does (on
    /// haystacks passing the newline and word checks), i.e. nothing was
    /// relaxed.
    pub exact: bool,
    /// Whether a non-multiline `$` occurs (exact only without inner `\n`).
    pub uses_dollar: bool,
    /// Whether the crate's word boundaries were used for Unicode / ASCII
    /// words.
    pub word_unicode: bool,
    pub word_ascii: bool,
    /// Whether `\B` occurs (Python's `\B` never matches an empty string).
    pub non_boundary: bool,
}

/// What is known of the character just before a position.
#[derive(Debug, Clone)]
struct Tail {
    /// The possible characters, `None` when unknown.
    set: Option<CharSet>,
    /// Whether there may be no character from the pattern (the position is
    /// the match start, or everything before matched empty).
    may_be_empty: bool,
}

impl Tail {
    fn unknown() -> Tail {
        Tail {
            set: None,
            may_be_empty: true,
        }
    }

    fn zero() -> Tail {
        Tail {
            set: Some(CharSet::empty()),
            may_be_empty: true,
        }
    }

    fn chars(set: CharSet) -> Tail {
        Tail {
            set: Some(set),
            may_be_empty: false,
        }
    }

    /// The tail after `self` followed by something whose tail is `next`.
    fn then(&self, next: &Tail) -> Tail {
        if !next.may_be_empty {
            return next.clone();
        }
        Tail {
            set: match (&self.set, &next.set) {
                (Some(a), Some(b)) => Some(a.union(b)),
                _ => None,
            },
            may_be_empty: self.may_be_empty,
        }
    }

    fn union(&self, other: &Tail) -> Tail {
        Tail {
            set: match (&self.set, &other.set) {
                (Some(a), Some(b)) => Some(a.union(b)),
                _ => None,
            },
            may_be_empty: self.may_be_empty || other.may_be_empty,
        }
    }
}

fn combine_flags(flags: u32, add: u32, del: u32) -> u32 {
    let mut f = flags;
    if add & (ASCII | UNICODE) != 0 {
        f &= !(ASCII | UNICODE | 4);
    }
    (f | add) & !del
}

fn case_mode(flags: u32) -> CaseMode {
    if flags & IGNORECASE == 0 {
        CaseMode::Sensitive
    } else if flags & UNICODE != 0 {
        CaseMode::Unicode
    } else {
        CaseMode::Ascii
    }
}

fn is_ascii_mode(flags: u32) -> bool {
    flags & UNICODE == 0
}

/// The characters a single-character item matches, if it is one.
fn item_set(item: &Item, flags: u32) -> Option<CharSet> {
    let key = match item {
        Item::Literal(c) => SetKey::Lit(*c, false),
        Item::NotLiteral(c) => SetKey::Lit(*c, true),
        Item::Any => SetKey::Any,
        Item::In { negate, items } => SetKey::In(*negate, items.clone()),
        _ => return None,
    };
    let flags = flags & (IGNORECASE | DOTALL | UNICODE);
    SET_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear();
        }
        Some(
            cache
                .entry((key, flags))
                .or_insert_with(|| compute_item_set(item, flags))
                .clone(),
        )
    })
}

/// A character item, as the key of the set cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SetKey {
    Lit(u32, bool),
    Any,
    In(bool, Vec<ClassItem>),
}

thread_local! {
    static SET_CACHE: RefCell<HashMap<(SetKey, u32), CharSet>> = RefCell::new(HashMap::new());
}

fn compute_item_set(item: &Item, flags: u32) -> CharSet {
    let mode = case_mode(flags);
    match item {
        Item::Literal(c) => literal_set(*c, mode),
        Item::NotLiteral(c) => literal_set(*c, mode).negate(),
        Item::Any => any_set(flags & DOTALL != 0),
        Item::In { negate, items } => class_set(items, *negate, mode, is_ascii_mode(flags)),
        _ => CharSet::empty(),
    }
}

fn seq_tail(seq: &[Item], flags: u32, prev: &Tail) -> Tail {
    let mut t = prev.clone();
    for item in seq {
        t = item_tail(item, flags, &t);
    }
    t
}

/// The tail after `item`, given the tail `prev` before it.
fn item_tail(item: &Item, flags: u32, prev: &Tail) -> Tail {
    if let Some(set) = item_set(item, flags) {
        return Tail::chars(set);
    }
    match item {
        Item::Branch(alts) => {
            let mut out: Option<Tail> = None;
            for alt in alts {
                let t = seq_tail(alt, flags, prev);
                out = Some(match out {
                    None => t,
                    Some(o) => o.union(&t),
                });
            }
            out.unwrap_or_else(|| prev.clone())
        }
        Item::Group { add, del, body, .. } => {
            seq_tail(body, combine_flags(flags, *add, *del), prev)
        }
        Item::Atomic(body) => seq_tail(body, flags, prev),
        Item::Repeat { min, max, body, .. } => {
            if *max == 0 {
                return prev.clone();
            }
            let once = seq_tail(body, flags, &Tail::zero());
            let body_prev = prev.then(&Tail {
                set: once.set.clone(),
                may_be_empty: true,
            });
            let last = seq_tail(body, flags, &body_prev);
            if *min == 0 { prev.union(&last) } else { last }
        }
        Item::At(_) | Item::Assert { .. } => prev.clone(),
        Item::GroupRefExists { yes, no, .. } => {
            let y = seq_tail(yes, flags, prev);
            let n = match no {
                Some(no) => seq_tail(no, flags, prev),
                None => prev.clone(),
            };
            y.union(&n)
        }
        _ => prev.then(&Tail::unknown()),
    }
}

/// What is known of the first character matched by `seq` (the head).
fn seq_head(seq: &[Item], flags: u32) -> Tail {
    let mut set = CharSet::empty();
    for item in seq {
        let h = item_head(item, flags);
        let Some(s) = h.set else {
            return Tail::unknown();
        };
        set = set.union(&s);
        if !h.may_be_empty {
            return Tail::chars(set);
        }
    }
    Tail {
        set: Some(set),
        may_be_empty: true,
    }
}

fn item_head(item: &Item, flags: u32) -> Tail {
    if let Some(set) = item_set(item, flags) {
        return Tail::chars(set);
    }
    match item {
        Item::Branch(alts) => alts
            .iter()
            .map(|a| seq_head(a, flags))
            .reduce(|a, b| a.union(&b))
            .unwrap_or_else(Tail::zero),
        Item::Group { add, del, body, .. } => seq_head(body, combine_flags(flags, *add, *del)),
        Item::Atomic(body) => seq_head(body, flags),
        Item::Repeat { min, max, body, .. } => {
            if *max == 0 {
                return Tail::zero();
            }
            let h = seq_head(body, flags);
            if *min == 0 { h.union(&Tail::zero()) } else { h }
        }
        Item::At(_) | Item::Assert { .. } => Tail::zero(),
        Item::GroupRefExists { yes, no, .. } => {
            let n = no.as_ref().map_or_else(Tail::zero, |n| seq_head(n, flags));
            seq_head(yes, flags).union(&n)
        }
        _ => Tail::unknown(),
    }
}

/// The neighbour states a known neighbour can be in (all when unknown).
fn neighbour_states(t: &Tail) -> [bool; 4] {
    match (&t.set, t.may_be_empty) {
        (Some(set), false) => [
            false,
            set.contains(0x0A),
            set.intersects(category_set(Category::Word, false)),
            set.intersects(other_chars()),
        ],
        _ => [true; 4],
    }
}

/// Truth of an assertion over the characters around a position: bit
/// `4 * prev + next` with the states below.
type Mask = u16;
const ABSENT: usize = 0;
const NEWLINE: usize = 1;
const WORD: usize = 2;

fn mask_of(f: impl Fn(usize, usize) -> bool) -> Mask {
    let mut m = 0;
    for p in 0..4 {
        for n in 0..4 {
            if f(p, n) {
                m |= 1 << (4 * p + n);
            }
        }
    }
    m
}

fn is_word(s: usize) -> bool {
    s == WORD
}

/// The characters that are neither word characters nor `\n`.
fn other_chars() -> &'static CharSet {
    static OTHER: OnceLock<CharSet> = OnceLock::new();
    OTHER.get_or_init(|| {
        category_set(Category::Word, false)
            .union(&CharSet::single(0x0A))
            .negate()
    })
}

/// The `regex`-crate assertions used to express masks.
const ATOMS: usize = 10;
fn atoms() -> [(&'static str, Mask, bool); ATOMS] {
    [
        (r"\A", mask_of(|p, _| p == ABSENT), false),
        (r"\z", mask_of(|_, n| n == ABSENT), false),
        ("(?m:^)", mask_of(|p, _| p == ABSENT || p == NEWLINE), false),
        ("(?m:$)", mask_of(|_, n| n == ABSENT || n == NEWLINE), false),
        (r"\b", mask_of(|p, n| is_word(p) != is_word(n)), true),
        (r"\B", mask_of(|p, n| is_word(p) == is_word(n)), true),
        (
            r"\b{start}",
            mask_of(|p, n| !is_word(p) && is_word(n)),
            true,
        ),
        (r"\b{end}", mask_of(|p, n| is_word(p) && !is_word(n)), true),
        (r"\b{start-half}", mask_of(|p, _| !is_word(p)), true),
        (r"\b{end-half}", mask_of(|_, n| !is_word(n)), true),
    ]
}

/// Writes `target` as a disjunction of conjunctions of crate assertions,
/// caring only for the states in `care`; returns whether word boundaries
/// were used, `None` if impossible.
fn express_mask(target: Mask, care: Mask) -> Option<(String, bool)> {
    let target = target & care;
    if target == care {
        return Some((String::new(), false));
    }
    if target == 0 {
        return Some((r"\b\B".into(), true));
    }
    let atoms = atoms();
    // the conjunction of every subset of atoms (bit `i`: atom `i` used)
    static CONJUNCTIONS: OnceLock<Vec<Mask>> = OnceLock::new();
    let conjunctions = CONJUNCTIONS.get_or_init(|| {
        (0u32..(1 << ATOMS))
            .map(|subset| {
                (0..ATOMS)
                    .filter(|i| subset & (1 << i) != 0)
                    .fold(0xFFFF, |m, i| m & atoms[i].1)
            })
            .collect()
    });
    let products: Vec<(Mask, u32)> = (1u32..(1 << ATOMS))
        .map(|subset| (conjunctions[subset as usize] & care, subset))
        .filter(|&(m, _)| m != 0 && m & !target == 0)
        .collect();
    let mut covered: Mask = 0;
    let mut chosen: Vec<u32> = Vec::new();
    while covered != target {
        let best = products
            .iter()
            .filter(|(m, _)| m & !covered != 0)
            .max_by_key(|(m, used)| {
                (
                    (m & !covered).count_ones(),
                    std::cmp::Reverse(used.count_ones()),
                )
            })?;
        covered |= best.0;
        chosen.push(best.1);
    }
    let mut out = String::from("(?:");
    let mut words = false;
    for (k, used) in chosen.iter().enumerate() {
        if k > 0 {
            out.push('|');
        }
        for (i, atom) in atoms.iter().enumerate() {
            if used & (1 << i) != 0 {
                out.push_str(atom.0);
                words |= atom.2;
            }
        }
    }
    out.push(')');
    Some((out, words))
}

/// The mask of a zero-width `At` item, `None` for ASCII word boundaries.
/// The flag tells whether a non-multiline `$` was involved.
fn at_mask(at: At, flags: u32) -> Option<(Mask, bool)> {
    let ml = flags & MULTILINE != 0;
    let m = match at {
        At::Beginning if ml => mask_of(|p, _| p == ABSENT || p == NEWLINE),
        At::Beginning | At::BeginningString => mask_of(|p, _| p == ABSENT),
        At::End => {
            return Some((mask_of(|_, n| n == ABSENT || n == NEWLINE), !ml));
        }
        At::EndString => mask_of(|_, n| n == ABSENT),
        At::Boundary | At::NonBoundary if is_ascii_mode(flags) => return None,
        At::Boundary => mask_of(|p, n| is_word(p) != is_word(n)),
        At::NonBoundary => {
            mask_of(|p, n| is_word(p) == is_word(n) && !(p == ABSENT && n == ABSENT))
        }
    };
    Some((m, false))
}

/// For which neighbour states a character class holds; `None` when the
/// class splits a state.
fn class_states(set: &CharSet) -> Option<[bool; 4]> {
    let word = category_set(Category::Word, false);
    let newline = CharSet::single(0x0A);
    let other = other_chars();
    let state = |s: &CharSet| {
        if s.is_subset(set) {
            Some(true)
        } else if !s.intersects(set) {
            Some(false)
        } else {
            None
        }
    };
    // indexed by ABSENT, NEWLINE, WORD and the other characters
    Some([false, state(&newline)?, state(word)?, state(other)?])
}

/// The mask of a look-around made only of position tests and single
/// characters next to the position; `None` otherwise.
fn assert_mask(behind: bool, negate: bool, body: &[Item], flags: u32) -> Option<(Mask, bool)> {
    let alts: Vec<&[Item]> = match body {
        [Item::Branch(alts)] => alts.iter().map(|a| a.as_slice()).collect(),
        seq => vec![seq],
    };
    let mut mask: Mask = 0;
    let mut dollar = false;
    for alt in alts {
        let mut m: Mask = 0xFFFF;
        let mut chars = 0;
        for (i, item) in alt.iter().enumerate() {
            if let Item::At(at) = item {
                // position tests must stand at the asserted position
                if (behind && chars != 1 && i > 0) || (!behind && chars > 0) {
                    return None;
                }
                let (am, d) = at_mask(*at, flags)?;
                dollar |= d;
                m &= am;
            } else {
                let set = item_set(item, flags)?;
                if chars > 0 || (behind && i > 0) {
                    return None;
                }
                chars += 1;
                let st = class_states(&set)?;
                m &= if behind {
                    mask_of(|p, _| st[p])
                } else {
                    mask_of(|_, n| st[n])
                };
            }
        }
        mask |= m;
    }
    Some((if negate { !mask } else { mask }, dollar))
}

fn push_char(out: &mut String, c: u32) {
    match char::from_u32(c) {
        Some(ch) if ch.is_ascii_alphanumeric() || ch == '_' => out.push(ch),
        _ => {
            out.push_str("\\x{");
            let digits = (32 - c.leading_zeros()).div_ceil(4).max(1);
            for k in (0..digits).rev() {
                out.push(char::from_digit((c >> (4 * k)) & 0xF, 16).unwrap_or('0'));
            }
            out.push('}');
        }
    }
}

const NEVER: &str = r"[^\x{0}-\x{10FFFF}]";

/// Writes a character set as a class (or a single character); `positive`
/// forbids the negated form.
fn push_set(out: &mut String, set: &CharSet, positive: bool) {
    let surrogates = CharSet::from_ranges(&[(0xD800, 0xDFFF)]);
    let valid = set.minus(&surrogates);
    if valid.is_empty() {
        out.push_str(NEVER);
        return;
    }
    let ranges = valid.ranges();
    if let [(a, b)] = ranges
        && a == b
    {
        push_char(out, *a);
        return;
    }
    let complement = valid.negate().minus(&surrogates);
    let (neg, ranges) = if !positive && complement.ranges().len() < ranges.len() {
        (true, complement.ranges().to_vec())
    } else {
        (false, ranges.to_vec())
    };
    if neg && ranges.is_empty() {
        out.push_str(r"[\x{0}-\x{10FFFF}]");
        return;
    }
    out.push('[');
    if neg {
        out.push('^');
    }
    for (a, b) in ranges {
        push_char(out, a);
        if b > a {
            if b > a + 1 {
                out.push('-');
            }
            push_char(out, b);
        }
    }
    out.push(']');
}

struct Emitter<'a> {
    parsed: &'a Parsed,
    res: Emitted,
    /// Emitting a group's copy for a back-reference: assertions dropped.
    copy: bool,
    /// Whether the characters around each position are tracked (only
    /// needed to simplify look-arounds).
    track_tail: bool,
    /// Whether classes are cut down to ASCII (see [`emit_ascii`]).
    ascii_only: bool,
    /// Back-references known to stand for one character (group, char).
    known_refs: Vec<(usize, u32)>,
}

/// Most characters a group may have to be expanded ([`Emitter::seq`]).
const MAX_EXPANDED: usize = 8;

#[derive(Clone)]
struct Ctx {
    flags: u32,
    prev: Tail,
}

/// Emits the crate form of `parsed`.
pub(super) fn emit(parsed: &Parsed) -> Emitted {
    emit_with(parsed, false)
}

/// Emits the crate form for haystacks of ASCII characters only: every
/// class is cut down to its ASCII members (much smaller automata).
pub(super) fn emit_ascii(parsed: &Parsed) -> Emitted {
    emit_with(parsed, true)
}

fn emit_with(parsed: &Parsed, ascii_only: bool) -> Emitted {
    let mut e = Emitter {
        parsed,
        res: Emitted {
            exact: true,
            ..Emitted::default()
        },
        copy: false,
        track_tail: has_assert(&parsed.seq),
        ascii_only,
        known_refs: Vec::new(),
    };
    let ctx = Ctx {
        flags: parsed.flags,
        prev: Tail::unknown(),
    };
    let mut out = String::new();
    e.seq(&mut out, &parsed.seq, &ctx);
    e.res.pattern = out;
    e.res
}

impl<'a> Emitter<'a> {
    fn push_set(&self, out: &mut String, set: &CharSet) {
        if self.ascii_only {
            push_set(
                out,
                &set.intersect(&CharSet::from_ranges(&[(0, 0x7F)])),
                true,
            );
        } else {
            push_set(out, set, false);
        }
    }

    /// Emits `seq`; returns its tail ([`seq_tail`]) when tails are
    /// tracked, computed along the way instead of by a separate walk.
    fn seq(&mut self, out: &mut String, seq: &[Item], ctx: &Ctx) -> Tail {
        let mut c = ctx.clone();
        for (i, item) in seq.iter().enumerate() {
            if let Some((group, chars)) = self.expandable(seq, i, c.flags) {
                return self.expand(out, group, &chars, &seq[i + 1..], &c);
            }
            if let Item::Assert {
                behind,
                negate,
                body,
            } = item
            {
                let next = if self.track_tail {
                    seq_head(&seq[i + 1..], c.flags)
                } else {
                    Tail::unknown()
                };
                self.assert(out, (*behind, *negate), body, &c, &next);
            } else {
                let tail = self.item(out, item, &c);
                c.prev = tail;
            }
        }
        c.prev
    }

    /// Whether `seq[i]` is a group of one character, without case variants
    /// and of at most [`MAX_EXPANDED`] characters, that is referred to (by
    /// `(?P=name)` only) in `seq[i + 1..]` and nowhere else: its group
    /// number and characters.
    fn expandable(&self, seq: &[Item], i: usize, flags: u32) -> Option<(usize, Vec<u32>)> {
        if self.copy {
            return None;
        }
        let Item::Group {
            group: Some(g),
            add,
            del,
            body,
        } = &seq[i]
        else {
            return None;
        };
        let [single] = body.as_slice() else {
            return None;
        };
        let set = item_set(single, combine_flags(flags, *add, *del))?;
        let mut chars = Vec::new();
        for &(a, b) in set.ranges() {
            if chars.len() + (b - a) as usize >= MAX_EXPANDED {
                return None;
            }
            chars.extend(a..=b);
        }
        let caseless = chars.iter().all(|&c| {
            literal_set(c, CaseMode::Unicode) == CharSet::single(c)
                && literal_set(c, CaseMode::Ascii) == CharSet::single(c)
        });
        let (here, used) = ref_counts(&seq[i + 1..], *g);
        let (total, total_used) = ref_counts(&self.parsed.seq, *g);
        (caseless && here > 0 && here == total && !used && !total_used).then_some((*g, chars))
    }

    /// Emits `rest` once per character of group `group`, after it:
    /// `(?:c1 rest|c2 rest|...)` with the references as `ci`.
    fn expand(
        &mut self,
        out: &mut String,
        group: usize,
        chars: &[u32],
        rest: &[Item],
        ctx: &Ctx,
    ) -> Tail {
        out.push_str("(?:");
        let mut tail: Option<Tail> = None;
        for (k, &c) in chars.iter().enumerate() {
            if k > 0 {
                out.push('|');
            }
            push_char(out, c);
            self.known_refs.push((group, c));
            let inner = Ctx {
                flags: ctx.flags,
                prev: Tail::chars(CharSet::single(c)),
            };
            let t = self.seq(out, rest, &inner);
            self.known_refs.pop();
            tail = Some(match tail {
                None => t,
                Some(u) => u.union(&t),
            });
        }
        out.push(')');
        tail.unwrap_or_else(|| ctx.prev.clone())
    }

    /// Emits alternatives; returns the union of their tails.
    fn alts(&mut self, out: &mut String, alts: &[&[Item]], ctx: &Ctx) -> Tail {
        out.push_str("(?:");
        let mut tail: Option<Tail> = None;
        for (k, alt) in alts.iter().enumerate() {
            if k > 0 {
                out.push('|');
            }
            let t = self.seq(out, alt, ctx);
            if self.track_tail {
                tail = Some(match tail {
                    None => t,
                    Some(u) => u.union(&t),
                });
            }
        }
        out.push(')');
        tail.unwrap_or_else(|| ctx.prev.clone())
    }

    /// Emits `item`; returns its tail ([`item_tail`]) when tails are
    /// tracked.
    fn item(&mut self, out: &mut String, item: &Item, ctx: &Ctx) -> Tail {
        if let Some(set) = item_set(item, ctx.flags) {
            self.push_set(out, &set);
            return if self.track_tail {
                Tail::chars(set)
            } else {
                Tail::unknown()
            };
        }
        match item {
            Item::Branch(alts) => {
                let alts: Vec<&[Item]> = alts.iter().map(|a| a.as_slice()).collect();
                self.alts(out, &alts, ctx)
            }
            Item::Group { add, del, body, .. } => {
                let inner = Ctx {
                    flags: combine_flags(ctx.flags, *add, *del),
                    ..ctx.clone()
                };
                out.push_str("(?:");
                let tail = self.seq(out, body, &inner);
                out.push(')');
                tail
            }
            Item::Repeat {
                kind,
                min,
                max,
                body,
            } => self.repeat(out, *kind, *min, *max, body, ctx),
            Item::At(at) => {
                self.at(out, *at, ctx);
                ctx.prev.clone()
            }
            Item::Assert {
                behind,
                negate,
                body,
            } => {
                self.assert(out, (*behind, *negate), body, ctx, &Tail::unknown());
                ctx.prev.clone()
            }
            Item::GroupRef(g) => {
                if let Some(&(_, c)) = self.known_refs.iter().rev().find(|(k, _)| k == g) {
                    push_char(out, c);
                    return Tail::chars(CharSet::single(c));
                }
                self.groupref(out, *g, ctx);
                ctx.prev.then(&Tail::unknown())
            }
            Item::GroupRefExists { yes, no, .. } => {
                self.res.exact = false;
                self.alts(out, &[yes, no.as_deref().unwrap_or(&[])], ctx)
            }
            Item::Atomic(body) => {
                self.res.exact = false;
                out.push_str("(?:");
                let tail = self.seq(out, body, ctx);
                out.push(')');
                tail
            }
            Item::Literal(_) | Item::NotLiteral(_) | Item::Any | Item::In { .. } => {
                ctx.prev.clone()
            }
        }
    }

    fn repeat(
        &mut self,
        out: &mut String,
        kind: RepeatKind,
        min: u32,
        max: u32,
        body: &[Item],
        ctx: &Ctx,
    ) -> Tail {
        if kind == RepeatKind::Possessive {
            self.res.exact = false;
        }
        if max == 0 {
            return ctx.prev.clone();
        }
        let inner = Ctx {
            flags: ctx.flags,
            prev: if self.track_tail {
                let once = seq_tail(body, ctx.flags, &Tail::zero());
                ctx.prev.then(&Tail {
                    set: once.set,
                    may_be_empty: true,
                })
            } else {
                Tail::unknown()
            },
        };
        out.push_str("(?:");
        let last = self.seq(out, body, &inner);
        let tail = if min == 0 && self.track_tail {
            ctx.prev.union(&last)
        } else {
            last
        };
        if width(body, &self.parsed.widths).1 == 0 {
            // a zero-width body: once if `min > 0`, else optional
            out.push_str(if min == 0 { ")?" } else { ")" });
            return tail;
        }
        out.push(')');
        let lazy = if kind == RepeatKind::Lazy { "?" } else { "" };
        let _ = match (min, max) {
            (0, MAXREPEAT) => write!(out, "*{lazy}"),
            (1, MAXREPEAT) => write!(out, "+{lazy}"),
            (0, 1) => write!(out, "?{lazy}"),
            (m, MAXREPEAT) => write!(out, "{{{m},}}{lazy}"),
            (m, n) if m == n => write!(out, "{{{m}}}"),
            (m, n) => write!(out, "{{{m},{n}}}{lazy}"),
        };
        tail
    }

    fn at(&mut self, out: &mut String, at: At, ctx: &Ctx) {
        if self.copy {
            return;
        }
        let ml = ctx.flags & MULTILINE != 0;
        match at {
            At::Beginning if ml => out.push_str("(?m:^)"),
            At::Beginning | At::BeginningString => out.push_str(r"\A"),
            At::EndString => out.push_str(r"\z"),
            At::End => {
                self.res.uses_dollar |= !ml;
                out.push_str("(?m:$)");
            }
            At::Boundary | At::NonBoundary => {
                let non = at == At::NonBoundary;
                self.res.non_boundary |= non;
                if is_ascii_mode(ctx.flags) {
                    self.res.word_ascii = true;
                } else {
                    self.res.word_unicode = true;
                }
                out.push_str(if non { r"\B" } else { r"\b" });
            }
        }
    }

    fn assert(
        &mut self,
        out: &mut String,
        (behind, negate): (bool, bool),
        body: &[Item],
        ctx: &Ctx,
        next: &Tail,
    ) {
        if self.copy {
            return;
        }
        // a look-behind on one character that the pattern before always
        // (or never) provides
        if behind
            && let ([single], Some(prev)) = (body, &ctx.prev.set)
            && let Some(set) = item_set(single, ctx.flags)
            && !ctx.prev.may_be_empty
        {
            let always = prev.is_subset(&set);
            let never = !prev.intersects(&set);
            if always || never {
                if always == negate {
                    out.push_str(NEVER);
                }
                return;
            }
        }
        let prev_states = neighbour_states(&ctx.prev);
        let next_states = neighbour_states(next);
        let care = mask_of(|p, n| prev_states[p] && next_states[n]);
        if let Some((mask, dollar)) = assert_mask(behind, negate, body, ctx.flags)
            && let Some((text, words)) = express_mask(mask, care)
        {
            out.push_str(&text);
            self.res.word_unicode |= words;
            self.res.uses_dollar |= dollar;
            return;
        }
        self.res.exact = false;
    }

    fn groupref(&mut self, out: &mut String, g: usize, ctx: &Ctx) {
        self.res.exact = false;
        match self.group_body(g) {
            Some((body, flags)) if ctx.flags & IGNORECASE == 0 => {
                let saved = self.copy;
                self.copy = true;
                let inner = Ctx {
                    flags,
                    prev: Tail::unknown(),
                };
                out.push_str("(?:");
                self.seq(out, body, &inner);
                out.push(')');
                self.copy = saved;
            }
            _ => out.push_str(r"(?s:.*?)"),
        }
    }

    fn group_body(&self, g: usize) -> Option<(&'a Seq, u32)> {
        fn find(seq: &[Item], g: usize, flags: u32) -> Option<(&Seq, u32)> {
            seq.iter().find_map(|item| match item {
                Item::Group {
                    group,
                    add,
                    del,
                    body,
                } => {
                    let f = combine_flags(flags, *add, *del);
                    if *group == Some(g) {
                        Some((body, f))
                    } else {
                        find(body, g, f)
                    }
                }
                Item::Branch(alts) => alts.iter().find_map(|a| find(a, g, flags)),
                Item::Repeat { body, .. } | Item::Atomic(body) | Item::Assert { body, .. } => {
                    find(body, g, flags)
                }
                Item::GroupRefExists { yes, no, .. } => {
                    find(yes, g, flags).or_else(|| no.as_ref().and_then(|n| find(n, g, flags)))
                }
                _ => None,
            })
        }
        let parsed: &'a Parsed = self.parsed;
        find(&parsed.seq, g, parsed.flags)
    }
}

/// How many `(?P=g)` references to group `g` occur in `seq`, and whether
/// a conditional `(?(g)...)` tests it.
fn ref_counts(seq: &[Item], g: usize) -> (usize, bool) {
    let mut refs = 0;
    let mut tested = false;
    for item in seq {
        let (r, t) = match item {
            Item::GroupRef(k) => (usize::from(*k == g), false),
            Item::Group { body, .. }
            | Item::Repeat { body, .. }
            | Item::Atomic(body)
            | Item::Assert { body, .. } => ref_counts(body, g),
            Item::Branch(alts) => alts.iter().fold((0, false), |(r, t), a| {
                let (r2, t2) = ref_counts(a, g);
                (r + r2, t || t2)
            }),
            Item::GroupRefExists { group, yes, no, .. } => {
                let (r, t) = ref_counts(yes, g);
                let (r2, t2) = no.as_deref().map_or((0, false), |n| ref_counts(n, g));
                (r + r2, t || t2 || *group == g)
            }
            _ => (0, false),
        };
        refs += r;
        tested |= t;
    }
    (refs, tested)
}

/// Whether a look-around occurs.
fn has_assert(seq: &[Item]) -> bool {
    seq.iter().any(|item| match item {
        Item::Assert { .. } => true,
        Item::Group { body, .. } | Item::Repeat { body, .. } | Item::Atomic(body) => {
            has_assert(body)
        }
        Item::Branch(alts) => alts.iter().any(|a| has_assert(a)),
        Item::GroupRefExists { yes, no, .. } => {
            has_assert(yes) || no.as_ref().is_some_and(|n| has_assert(n))
        }
        _ => false,
    })
}
