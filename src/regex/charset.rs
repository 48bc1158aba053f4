//! Character sets with the exact membership rules of CPython 3.11's `re`.
//!
//! Python decides `\w`, `\d`, `\s` and case-insensitive matching with its
//! own Unicode 14 data and its own (partly quirky) rules: a case-insensitive
//! literal matches every character whose lower case (`_sre`'s mapping, the
//! first character of the full mapping) equals the literal's, plus a few
//! extra equivalences; a case-insensitive class lowers the *subject*
//! character and tests it against a set built from lowered members, with
//! astral literals kept unlowered.  Neither the `regex` crate's Unicode
//! classes nor its simple case folding reproduce this, so every class is
//! computed here as an explicit set of code points and emitted as such; the
//! emitted patterns never rely on the engines' `(?i)` or `\w`.

use super::tables;
use std::sync::OnceLock;

/// The highest code point.
pub(super) const MAX_CHAR: u32 = 0x10FFFF;

/// A set of code points as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CharSet {
    ranges: Vec<(u32, u32)>,
}

impl CharSet {
    /// The empty set.
    pub(super) fn empty() -> CharSet {
        CharSet::default()
    }

    /// Every code point.
    pub(super) fn full() -> CharSet {
        CharSet {
            ranges: vec![(0, MAX_CHAR)],
        }
    }

    /// One code point.
    pub(super) fn single(c: u32) -> CharSet {
        CharSet {
            ranges: vec![(c, c)],
        }
    }

    /// The set of the given (possibly unsorted, overlapping) ranges.
    pub(super) fn from_ranges(items: &[(u32, u32)]) -> CharSet {
        let mut ranges = items.to_vec();
        ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        CharSet { ranges: out }
    }

    /// The ranges, sorted and disjoint.
    pub(super) fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Whether `c` is in the set.
    pub(super) fn contains(&self, c: u32) -> bool {
        ranges_contain(&self.ranges, c)
    }

    /// Whether the set is empty.
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Union (a linear merge of the two range lists).
    pub(super) fn union(&self, other: &CharSet) -> CharSet {
        let (a, b) = (&self.ranges, &other.ranges);
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let next = if j >= b.len() || (i < a.len() && a[i].0 <= b[j].0) {
                i += 1;
                a[i - 1]
            } else {
                j += 1;
                b[j - 1]
            };
            match out.last_mut() {
                Some(last) if next.0 <= last.1.saturating_add(1) => last.1 = last.1.max(next.1),
                _ => out.push(next),
            }
        }
        CharSet { ranges: out }
    }

    /// Complement within all code points.
    pub(super) fn negate(&self) -> CharSet {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = 0u32;
        for &(a, b) in &self.ranges {
            if a > next {
                out.push((next, a - 1));
            }
            next = b + 1;
        }
        if next <= MAX_CHAR {
            out.push((next, MAX_CHAR));
        }
        CharSet { ranges: out }
    }

    /// Intersection.
    pub(super) fn intersect(&self, other: &CharSet) -> CharSet {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a1, b1) = self.ranges[i];
            let (a2, b2) = other.ranges[j];
            let (a, b) = (a1.max(a2), b1.min(b2));
            if a <= b {
                out.push((a, b));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        CharSet { ranges: out }
    }

    /// The elements of `self` not in `other` (each range of `self` cut
    /// by the ranges of `other` it overlaps, found by binary search).
    pub(super) fn minus(&self, other: &CharSet) -> CharSet {
        let mut out = Vec::with_capacity(self.ranges.len());
        let theirs = &other.ranges;
        for &(a, b) in &self.ranges {
            let mut next = a;
            let mut j = theirs.partition_point(|&(_, y)| y < a);
            while next <= b {
                match theirs.get(j) {
                    Some(&(x, y)) if x <= b => {
                        if x > next {
                            out.push((next, x - 1));
                        }
                        if y >= b {
                            break;
                        }
                        next = next.max(y + 1);
                        j += 1;
                    }
                    _ => {
                        out.push((next, b));
                        break;
                    }
                }
            }
        }
        CharSet { ranges: out }
    }

    /// Whether every element of `self` is in `other` (each range of
    /// `self` must lie in one range of `other`, as ranges never touch).
    pub(super) fn is_subset(&self, other: &CharSet) -> bool {
        self.ranges.iter().all(|&(a, b)| {
            let j = other.ranges.partition_point(|&(_, y)| y < a);
            other.ranges.get(j).is_some_and(|&(x, y)| x <= a && b <= y)
        })
    }

    /// Whether the two sets share an element.
    pub(super) fn intersects(&self, other: &CharSet) -> bool {
        let (small, big) = if self.ranges.len() <= other.ranges.len() {
            (&self.ranges, &other.ranges)
        } else {
            (&other.ranges, &self.ranges)
        };
        small.iter().any(|&(a, b)| {
            let j = big.partition_point(|&(_, y)| y < a);
            big.get(j).is_some_and(|&(x, _)| x <= b)
        })
    }
}

fn ranges_contain(ranges: &[(u32, u32)], c: u32) -> bool {
    let i = ranges.partition_point(|&(_, b)| b < c);
    i < ranges.len() && ranges[i].0 <= c
}

/// Python's `\w` (`str.isalnum()` or `_`).
pub(super) fn is_py_word(c: char) -> bool {
    ranges_contain(tables::WORD, c as u32)
}

/// Whether `name` is a Python identifier (`str.isidentifier()`).
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || ranges_contain(tables::XID_START, c as u32) => {
            chars.all(|c| ranges_contain(tables::XID_CONTINUE, c as u32))
        }
        _ => false,
    }
}

/// A class escape category (`\d \D \s \S \w \W`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Category {
    Digit,
    NotDigit,
    Space,
    NotSpace,
    Word,
    NotWord,
}

/// The members of a category, Unicode (`str` patterns) or ASCII (`(?a)`).
pub(super) fn category_set(cat: Category, ascii: bool) -> &'static CharSet {
    static SETS: [OnceLock<CharSet>; 12] = [const { OnceLock::new() }; 12];
    let idx = cat as usize * 2 + usize::from(ascii);
    SETS[idx].get_or_init(|| {
        let base = |unicode: &[(u32, u32)], asc: &[(u32, u32)]| {
            CharSet::from_ranges(if ascii { asc } else { unicode })
        };
        match cat {
            Category::Digit => base(tables::DIGIT, &[(0x30, 0x39)]),
            Category::NotDigit => category_set(Category::Digit, ascii).negate(),
            Category::Space => base(tables::SPACE, &[(0x09, 0x0D), (0x20, 0x20)]),
            Category::NotSpace => category_set(Category::Space, ascii).negate(),
            Category::Word => base(
                tables::WORD,
                &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
            ),
            Category::NotWord => category_set(Category::Word, ascii).negate(),
        }
    })
}

/// One member of a bracket class, as Python's parser records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum ClassItem {
    Lit(u32),
    Range(u32, u32),
    Cat(Category),
}

/// The case rules in force: none, Unicode or ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CaseMode {
    Sensitive,
    Unicode,
    Ascii,
}

fn map_lookup(runs: &[(u32, u32, u32, i32)], c: u32) -> u32 {
    let i = runs.partition_point(|&(_, last, _, _)| last < c);
    match runs.get(i) {
        Some(&(first, _, stride, delta)) if first <= c && (c - first).is_multiple_of(stride) => {
            c.wrapping_add_signed(delta)
        }
        _ => c,
    }
}

/// `_sre`'s lower-case mapping.
pub(super) fn lower(c: u32) -> u32 {
    map_lookup(tables::LOWER, c)
}

fn is_cased(c: u32) -> bool {
    ranges_contain(tables::CASED, c)
}

fn fixes(lo: u32) -> &'static [u32] {
    match tables::CASE_FIXES.binary_search_by_key(&lo, |&(k, _)| k) {
        Ok(i) => tables::CASE_FIXES[i].1,
        Err(_) => &[],
    }
}

fn ascii_lower(c: u32) -> u32 {
    if (0x41..=0x5A).contains(&c) {
        c + 32
    } else {
        c
    }
}

fn ascii_is_cased(c: u32) -> bool {
    c < 0x80 && (c as u8).is_ascii_alphabetic()
}

/// Every code point `c` a mapping moves, with its image.
fn mapped(runs: &'static [(u32, u32, u32, i32)]) -> impl Iterator<Item = (u32, u32)> {
    runs.iter().flat_map(|&(first, last, stride, delta)| {
        (first..=last)
            .step_by(stride as usize)
            .map(move |c| (c, c.wrapping_add_signed(delta)))
    })
}

/// The code points a mapping moves (cached per table).
fn domain(runs: &'static [(u32, u32, u32, i32)]) -> &'static CharSet {
    static LOWER_DOMAIN: OnceLock<CharSet> = OnceLock::new();
    static UPPER_DOMAIN: OnceLock<CharSet> = OnceLock::new();
    let cell = if std::ptr::eq(runs, tables::LOWER) {
        &LOWER_DOMAIN
    } else {
        &UPPER_DOMAIN
    };
    cell.get_or_init(|| {
        let items: Vec<(u32, u32)> = mapped(runs).map(|(c, _)| (c, c)).collect();
        CharSet::from_ranges(&items)
    })
}

/// Every `(map(c), c)` of a mapping, sorted (cached per table).
fn inverse(runs: &'static [(u32, u32, u32, i32)]) -> &'static [(u32, u32)] {
    static LOWER_INVERSE: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    static UPPER_INVERSE: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    let cell = if std::ptr::eq(runs, tables::LOWER) {
        &LOWER_INVERSE
    } else {
        &UPPER_INVERSE
    };
    cell.get_or_init(|| {
        let mut pairs: Vec<(u32, u32)> = mapped(runs).map(|(c, m)| (m, c)).collect();
        pairs.sort_unstable();
        pairs
    })
}

/// `{c : map(c) in target}` for a mapping given as runs: the unmoved
/// members of `target`, plus the moved characters whose image is in it
/// (looked up per range of `target` in the inverse table).
fn preimage(runs: &'static [(u32, u32, u32, i32)], target: &CharSet) -> CharSet {
    let inv = inverse(runs);
    let mut moved: Vec<(u32, u32)> = Vec::new();
    for &(a, b) in target.ranges() {
        let start = inv.partition_point(|&(m, _)| m < a);
        moved.extend(
            inv[start..]
                .iter()
                .take_while(|&&(m, _)| m <= b)
                .map(|&(_, c)| (c, c)),
        );
    }
    target
        .minus(domain(runs))
        .union(&CharSet::from_ranges(&moved))
}

fn lower_preimage(mode: CaseMode, target: &CharSet) -> CharSet {
    match mode {
        CaseMode::Sensitive => target.clone(),
        CaseMode::Unicode => preimage(tables::LOWER, target),
        CaseMode::Ascii => {
            let upper_az = CharSet::from_ranges(&[(0x41, 0x5A)]);
            let lowered = target.intersect(&CharSet::from_ranges(&[(0x61, 0x7A)]));
            let shifted: Vec<(u32, u32)> = lowered
                .ranges()
                .iter()
                .map(|&(a, b)| (a - 32, b - 32))
                .collect();
            target
                .minus(&upper_az)
                .union(&CharSet::from_ranges(&shifted))
        }
    }
}

/// The characters a literal matches (`LITERAL` and its `*_IGNORE` forms).
pub(super) fn literal_set(c: u32, mode: CaseMode) -> CharSet {
    match mode {
        CaseMode::Sensitive => CharSet::single(c),
        CaseMode::Unicode if is_cased(c) => {
            let lo = lower(c);
            let mut keys = vec![(lo, lo)];
            keys.extend(fixes(lo).iter().map(|&k| (k, k)));
            lower_preimage(mode, &CharSet::from_ranges(&keys))
        }
        CaseMode::Ascii if ascii_is_cased(c) => {
            lower_preimage(mode, &CharSet::single(ascii_lower(c)))
        }
        _ => CharSet::single(c),
    }
}

/// The characters a bracket class matches, following `_optimize_charset`
/// and the `IN` / `IN_IGNORE` / `IN_UNI_IGNORE` matchers.
pub(super) fn class_set(items: &[ClassItem], negate: bool, mode: CaseMode, ascii: bool) -> CharSet {
    if let [ClassItem::Cat(cat)] = items {
        // a category alone is never lowered (no cased member)
        let set = category_set(*cat, ascii);
        return if negate { set.negate() } else { set.clone() };
    }
    let mut bmp: Vec<(u32, u32)> = Vec::new();
    let mut tail = CharSet::empty();
    let mut cased = false;
    let fold = |c: u32| match mode {
        CaseMode::Sensitive => c,
        CaseMode::Unicode => lower(c),
        CaseMode::Ascii => ascii_lower(c),
    };
    let item_cased = |c: u32| match mode {
        CaseMode::Sensitive => false,
        CaseMode::Unicode => is_cased(c),
        CaseMode::Ascii => ascii_is_cased(c),
    };
    let add_fixes = |bmp: &mut Vec<(u32, u32)>, lo: u32| {
        if mode == CaseMode::Unicode {
            bmp.extend(fixes(lo).iter().map(|&k| (k, k)));
        }
    };
    for item in items {
        match *item {
            ClassItem::Lit(v) => {
                let lo = fold(v);
                if lo < 0x10000 {
                    bmp.push((lo, lo));
                    add_fixes(&mut bmp, lo);
                    cased |= item_cased(v);
                } else {
                    // astral literals stay unlowered (Python's quirk)
                    tail = tail.union(&CharSet::single(v));
                    cased |= mode != CaseMode::Sensitive;
                }
            }
            ClassItem::Range(a, b) => {
                let bmp_part = CharSet::from_ranges(&[(a, b.min(0xFFFF))]);
                let bmp_part = if a > 0xFFFF {
                    CharSet::empty()
                } else {
                    bmp_part
                };
                if mode == CaseMode::Sensitive {
                    bmp.extend_from_slice(&CharSet::from_ranges(&[(a, b)]).ranges);
                    continue;
                }
                let lowered = image(mode, &bmp_part);
                bmp.extend_from_slice(lowered.ranges());
                for (k, _) in tables::CASE_FIXES {
                    if lowered.contains(*k) {
                        add_fixes(&mut bmp, *k);
                    }
                }
                if b > 0xFFFF {
                    // RANGE_UNI_IGNORE: the lowered subject or its upper case
                    let r = CharSet::from_ranges(&[(a, b)]);
                    tail = tail.union(&r).union(&preimage(tables::UPPER, &r));
                    cased = true;
                } else {
                    cased |= match mode {
                        CaseMode::Unicode => {
                            bmp_part.intersects(&CharSet::from_ranges(tables::CASED))
                        }
                        _ => bmp_part
                            .intersects(&CharSet::from_ranges(&[(0x41, 0x5A), (0x61, 0x7A)])),
                    };
                }
            }
            ClassItem::Cat(cat) => tail = tail.union(category_set(cat, ascii)),
        }
    }
    let target = CharSet::from_ranges(&bmp).union(&tail);
    let set = if cased {
        lower_preimage(mode, &target)
    } else {
        target
    };
    if negate { set.negate() } else { set }
}

/// `{map(c) : c in set}` for the case mapping of `mode`.
fn image(mode: CaseMode, set: &CharSet) -> CharSet {
    let (runs, dom) = match mode {
        CaseMode::Sensitive => return set.clone(),
        CaseMode::Unicode => (tables::LOWER, domain(tables::LOWER)),
        CaseMode::Ascii => {
            let upper_az = CharSet::from_ranges(&[(0x41, 0x5A)]);
            let moved: Vec<(u32, u32)> = set
                .intersect(&upper_az)
                .ranges()
                .iter()
                .map(|&(a, b)| (a + 32, b + 32))
                .collect();
            return set.minus(&upper_az).union(&CharSet::from_ranges(&moved));
        }
    };
    let moved: Vec<(u32, u32)> = runs
        .iter()
        .filter(|&&(first, last, _, _)| {
            let j = set.ranges.partition_point(|&(_, y)| y < first);
            set.ranges.get(j).is_some_and(|&(x, _)| x <= last)
        })
        .flat_map(|&(first, last, stride, delta)| {
            (first..=last)
                .step_by(stride as usize)
                .filter(|&c| set.contains(c))
                .map(move |c| {
                    let m = c.wrapping_add_signed(delta);
                    (m, m)
                })
        })
        .collect();
    set.minus(dom).union(&CharSet::from_ranges(&moved))
}

/// The characters `.` matches.
pub(super) fn any_set(dotall: bool) -> CharSet {
    if dotall {
        CharSet::full()
    } else {
        CharSet::single(0x0A).negate()
    }
}
