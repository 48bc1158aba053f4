//! A backtracking matcher with the exact semantics of CPython 3.11's `sre`
//! engine (`Modules/_sre/sre_lib.h`), written from its documented
//! behaviour.
//!
//! The `regex` crate decides *whether* and *where* a pattern matches (its
//! automata are fast and, for a superset of the pattern, exact about the
//! leftmost start), but neither it nor `fancy-regex` reproduces sre's
//! choice of path in every case: sre lets a loop iterate once more with an
//! empty body match and keeps that iteration's groups, restores groups in
//! its own way on backtracking, and treats look-arounds, back-references,
//! conditionals, atomic groups and possessive repeats as it defines them.
//! This matcher follows sre operation by operation (the same loop
//! classification as `re._compiler`, the same `last_ptr` rule for empty
//! iterations, the same mark saving and restoring), so its group spans are
//! Python's.  It runs once the automaton has found where the match starts.
//!
//! Where sre would try a path that certainly fails at once, this matcher
//! may skip it, and where only one path remains it runs it in place of
//! the loop or branch (no recursion, nothing saved): each operation knows
//! the bytes it can start with ([`First`]), alternatives and repeat tails
//! that cannot start are not tried, a branch with one viable alternative
//! continues into it, `(?:X)?` is a branch, and a single-character repeat
//! whose tail cannot start on its characters runs possessively.  Each
//! shortcut states why the groups stay sre's where it is made; the
//! differential tests (`difftest`) check them against the interpreter.

use std::cell::{Cell, RefCell};

use super::charset::{CaseMode, CharSet, any_set, class_set, is_py_word, literal_set, lower};
use super::parse::{
    ASCII, At, DOTALL, IGNORECASE, Item, MAXREPEAT, MULTILINE, Parsed, RepeatKind, UNICODE,
};

/// A character test: a table for ASCII bytes plus sorted ranges for the
/// rest.
#[derive(Debug, Clone)]
struct Set {
    /// Per byte: the ASCII character is in the set (`IN`), is not (`OUT`),
    /// or the byte starts a longer character (`WIDE`).
    bytes: Box<[u8; 256]>,
    /// The ASCII members, one bit each.
    ascii: u128,
    ranges: Box<[(u32, u32)]>,
    /// Whether the set is every character but `\n` (`.` without DOTALL).
    all_but_newline: bool,
}

const OUT: u8 = 0;
const IN: u8 = 1;
const WIDE: u8 = 2;

impl Set {
    fn new(set: &CharSet) -> Set {
        let mut bytes = Box::new([WIDE; 256]);
        for (b, slot) in bytes.iter_mut().enumerate().take(128) {
            *slot = if set.contains(b as u32) { IN } else { OUT };
        }
        Set {
            ascii: (0..128)
                .filter(|&b| bytes[b] == IN)
                .fold(0, |m, b| m | 1 << b),
            bytes,
            all_but_newline: *set == any_set(false),
            ranges: set
                .ranges()
                .iter()
                .copied()
                .filter(|&(_, b)| b >= 128)
                .collect(),
        }
    }

    #[inline]
    fn contains(&self, c: u32) -> bool {
        if c < 128 {
            self.bytes[c as usize] == IN
        } else {
            let i = self.ranges.partition_point(|&(_, b)| b < c);
            i < self.ranges.len() && self.ranges[i].0 <= c
        }
    }
}

/// Position tests with the flags resolved (`AT_*` after `re._compiler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtCode {
    Beginning,
    BeginningLine,
    End,
    EndLine,
    EndString,
    Boundary { ascii: bool },
    NonBoundary { ascii: bool },
}

/// One operation; `next` is the index of the operation that follows.
#[derive(Debug, Clone)]
enum Op {
    Char {
        set: usize,
        next: usize,
    },
    /// Consecutive literals matched case-sensitively, as UTF-8.
    Text {
        text: Box<[u8]>,
        next: usize,
    },
    At {
        at: AtCode,
        next: usize,
    },
    Mark {
        slot: usize,
        next: usize,
    },
    Branch {
        alts: Vec<usize>,
    },
    /// `REPEAT_ONE`, `MIN_REPEAT_ONE`, `POSSESSIVE_REPEAT_ONE`: a loop over
    /// one character.
    RepeatOne {
        kind: RepeatKind,
        set: usize,
        min: u32,
        max: u32,
        next: usize,
    },
    /// `REPEAT` ... `MAX_UNTIL` / `MIN_UNTIL`; the body ends at `Until`.
    Repeat {
        lazy: bool,
        min: u32,
        max: u32,
        body: usize,
        next: usize,
    },
    /// `MAX_UNTIL` / `MIN_UNTIL` of the innermost running `Repeat`.
    Until,
    /// `POSSESSIVE_REPEAT`; the body ends at `Success`.
    Possessive {
        min: u32,
        max: u32,
        body: usize,
        next: usize,
    },
    Atomic {
        body: usize,
        next: usize,
    },
    Assert {
        back: u32,
        negate: bool,
        body: usize,
        next: usize,
    },
    GroupRef {
        group: usize,
        case: CaseMode,
        next: usize,
    },
    GroupRefExists {
        group: usize,
        yes: usize,
        no: usize,
    },
    Success,
}

/// A pattern compiled for the matcher.
#[derive(Debug, Clone)]
pub(super) struct Program {
    ops: Vec<Op>,
    sets: Vec<Set>,
    /// Per operation, where it can start (see [`First`]).
    first: Vec<First>,
    start: usize,
    groups: usize,
}

/// A superset of the bytes at which an operation can succeed (or go on),
/// and whether it can at the end of the text.  Testing it before running
/// an alternative or a repeat's tail is sre's literal look-ahead made
/// general: a run it rules out would fail without effect.
#[derive(Debug, Clone, Copy)]
struct First {
    bytes: [u64; 4],
    at_end: bool,
}

impl First {
    const ALL: First = First {
        bytes: [u64::MAX; 4],
        at_end: true,
    };

    fn union(self, other: First) -> First {
        let mut bytes = self.bytes;
        for (b, o) in bytes.iter_mut().zip(other.bytes) {
            *b |= o;
        }
        First {
            bytes,
            at_end: self.at_end || other.at_end,
        }
    }

    /// The bytes at which a character of `set` can start.
    fn of_set(set: &Set) -> First {
        let mut bytes = [0u64; 4];
        for (b, &kind) in set.bytes.iter().enumerate() {
            if kind != OUT {
                bytes[b >> 6] |= 1 << (b & 63);
            }
        }
        First {
            bytes,
            at_end: false,
        }
    }

    #[inline]
    fn has(&self, b: u8) -> bool {
        self.bytes[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }
}

/// Whether every match starts at the beginning of the text (the pattern
/// opens with a non-multiline `^` or `\A`).
pub(super) fn at_start(parsed: &Parsed) -> bool {
    match parsed.seq.first() {
        Some(Item::At(At::BeginningString)) => true,
        Some(Item::At(At::Beginning)) => parsed.flags & MULTILINE == 0,
        _ => false,
    }
}

const SUCCESS: usize = 0;

/// The ASCII word characters, one bit each.
const WORD_BYTES: u128 =
    ((1 << 10) - 1) << b'0' | ((1 << 26) - 1) << b'A' | 1 << b'_' | ((1 << 26) - 1) << b'a';

/// Positions a [`Tests`] follows; a run reading further is not memoized.
const TESTED_SPAN: usize = 128;

/// What the tests of recorded runs told apart at each position of the
/// text: per position, a class for each ASCII byte (two bytes share a
/// class when every test made there at any recorded run gave the same
/// answer for both), or no classes at all (every byte its own, where a
/// back-reference compared the text itself).  Bytes of non-ASCII
/// characters are always classes of their own.  A run on a text whose
/// bytes have the same classes as a recorded text's, up to where the run
/// read, makes the same tests with the same answers: it takes the same
/// path, with the same outcome and groups.
#[derive(Debug, Clone, Default)]
pub struct Tests {
    rows: Vec<[u8; 128]>,
    /// Per position, the tests (ASCII members) its classes were split by.
    applied: Vec<Vec<u128>>,
    exact: Vec<bool>,
    /// Whether a class was split since the flag was last cleared.
    pub(super) changed: bool,
    /// Whether a run read past [`TESTED_SPAN`].
    pub(super) beyond: bool,
}

impl Tests {
    /// The class of byte `b` at `pos` (within the tested span).
    #[inline]
    pub(super) fn class(&self, pos: usize, b: u8) -> u8 {
        if b >= 128 || self.exact.get(pos).copied().unwrap_or(false) {
            b
        } else {
            self.rows.get(pos).map_or(0, |row| row[b as usize])
        }
    }

    fn row(&mut self, pos: usize) -> Option<&mut [u8; 128]> {
        if pos >= TESTED_SPAN {
            self.beyond = true;
            return None;
        }
        if self.rows.len() <= pos {
            self.rows.resize(pos + 1, [0; 128]);
            self.applied.resize(pos + 1, Vec::new());
            self.exact.resize(pos + 1, false);
        }
        if self.exact[pos] {
            return None;
        }
        Some(&mut self.rows[pos])
    }

    /// Records a test on the byte at `pos` whose ASCII members are the
    /// bits of `members`.
    fn split(&mut self, pos: usize, members: u128) {
        if self.applied.get(pos).is_some_and(|a| a.contains(&members)) {
            return;
        }
        let Some(row) = self.row(pos) else {
            return;
        };
        let member = |b: u8| members >> b & 1 == 1;
        let mut ids = [[u8::MAX; 2]; 128];
        let mut next = 0u8;
        let mut split = false;
        for b in 0..128u8 {
            let old = row[b as usize] as usize;
            let side = usize::from(member(b));
            if ids[old][side] == u8::MAX {
                split |= ids[old][1 - side] != u8::MAX;
                ids[old][side] = next;
                next += 1;
            }
            row[b as usize] = ids[old][side];
        }
        self.applied[pos].push(members);
        self.changed |= split;
    }

    /// Records a comparison of the byte at `pos` with others.
    fn exact(&mut self, pos: usize) {
        if self.row(pos).is_some() {
            self.exact[pos] = true;
            self.changed = true;
        }
    }
}

impl Program {
    /// Compiles a parsed pattern (flags resolved as `re._compiler` does).
    pub(super) fn new(parsed: &Parsed) -> Program {
        let mut p = Program {
            ops: vec![Op::Success],
            sets: Vec::new(),
            first: Vec::new(),
            start: SUCCESS,
            groups: parsed.groups,
        };
        p.start = p.seq(&parsed.seq, parsed.flags, SUCCESS, &parsed.widths);
        p.first = Vec::with_capacity(p.ops.len());
        for pc in 0..p.ops.len() {
            let f = p.first_of(pc);
            p.first.push(f);
            p.settle_repeat(pc);
        }
        p
    }

    /// Runs a single-character repeat whose tail cannot start on any of
    /// its characters possessively.  Proof: the tail is only tried where
    /// it may start ([`First`]); after `k` characters of a run of `n`, the
    /// next byte starts a character of the repeat's set, so when no byte
    /// starting one is in the tail's first bytes, only the end of the run
    /// (or of `max` characters) is tried.  Greedy (`REPEAT_ONE`) tries it
    /// first and then backs off over positions that are all skipped; lazy
    /// (`MIN_REPEAT_ONE`) extends past the skipped positions up to it.
    /// Either way the one attempt is the tail at the end of the count,
    /// which is what `POSSESSIVE_REPEAT_ONE` runs, without the recursion
    /// (the marks a failed attempt leaves are restored by whoever goes on
    /// after the failure, as in `branch`).
    fn settle_repeat(&mut self, pc: usize) {
        if let Op::RepeatOne {
            kind: kind @ (RepeatKind::Greedy | RepeatKind::Lazy),
            set,
            next,
            ..
        } = &mut self.ops[pc]
        {
            let own = First::of_set(&self.sets[*set]);
            let tail = self.first[*next];
            if own.bytes.iter().zip(tail.bytes).all(|(a, b)| a & b == 0) {
                *kind = RepeatKind::Possessive;
            }
        }
    }

    /// Where operation `pc` can start, from those of the operations it
    /// leads to (all built before it, so already known; `Until` leads
    /// where its repeat decides at run time).
    fn first_of(&self, pc: usize) -> First {
        let first = |i: usize| self.first[i];
        match &self.ops[pc] {
            Op::Success | Op::Until | Op::GroupRef { .. } => First::ALL,
            Op::Char { set, .. } => First::of_set(&self.sets[*set]),
            Op::Text { text, .. } => {
                let mut bytes = [0u64; 4];
                let b = text[0];
                bytes[(b >> 6) as usize] |= 1 << (b & 63);
                First {
                    bytes,
                    at_end: false,
                }
            }
            Op::At { next, .. } | Op::Mark { next, .. } | Op::Assert { next, .. } => first(*next),
            Op::Branch { alts } => alts.iter().fold(
                First {
                    bytes: [0; 4],
                    at_end: false,
                },
                |f, &a| f.union(first(a)),
            ),
            Op::RepeatOne { set, min, next, .. } => {
                let f = First::of_set(&self.sets[*set]);
                if *min > 0 { f } else { f.union(first(*next)) }
            }
            Op::Repeat {
                min, body, next, ..
            }
            | Op::Possessive {
                min, body, next, ..
            } => {
                if *min > 0 {
                    first(*body)
                } else {
                    first(*body).union(first(*next))
                }
            }
            Op::Atomic { body, .. } => first(*body),
            Op::GroupRefExists { yes, no, .. } => first(*yes).union(first(*no)),
        }
    }

    fn push(&mut self, op: Op) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    fn set(&mut self, set: &CharSet) -> usize {
        self.sets.push(Set::new(set));
        self.sets.len() - 1
    }

    fn seq(&mut self, seq: &[Item], flags: u32, next: usize, widths: &[(u64, u64)]) -> usize {
        let mut next = next;
        let mut i = seq.len();
        while i > 0 {
            // a run of plain literals becomes one text comparison
            let mut j = i;
            while j > 0 && plain_literal(&seq[j - 1], flags).is_some() {
                j -= 1;
            }
            if i - j >= 2 {
                let text: String = seq[j..i]
                    .iter()
                    .filter_map(|it| plain_literal(it, flags))
                    .collect();
                next = self.push(Op::Text {
                    text: text.into_bytes().into_boxed_slice(),
                    next,
                });
                i = j;
                continue;
            }
            next = self.item(&seq[i - 1], flags, next, widths);
            i -= 1;
        }
        next
    }

    fn item(&mut self, item: &Item, flags: u32, next: usize, widths: &[(u64, u64)]) -> usize {
        if let Some(set) = unit_set(item, flags) {
            let set = self.set(&set);
            return self.push(Op::Char { set, next });
        }
        match item {
            Item::Branch(alts) => {
                let alts = alts
                    .iter()
                    .map(|a| self.seq(a, flags, next, widths))
                    .collect();
                self.push(Op::Branch { alts })
            }
            Item::Group {
                group,
                add,
                del,
                body,
            } => {
                let f = combine_flags(flags, *add, *del);
                match group {
                    Some(g) => {
                        let close = self.push(Op::Mark {
                            slot: 2 * (g - 1) + 1,
                            next,
                        });
                        let body = self.seq(body, f, close, widths);
                        self.push(Op::Mark {
                            slot: 2 * (g - 1),
                            next: body,
                        })
                    }
                    None => self.seq(body, f, next, widths),
                }
            }
            Item::Repeat {
                kind,
                min,
                max,
                body,
            } => {
                if let Some(set) = simple_set(body, flags) {
                    let set = self.set(&set);
                    return self.push(Op::RepeatOne {
                        kind: *kind,
                        set,
                        min: *min,
                        max: *max,
                        next,
                    });
                }
                match kind {
                    // `(?:X)?` and `(?:X)??`: the branches `X|` and `|X`
                    // (and `(?:X){1}` is `X`).  sre runs them as `REPEAT`
                    // with `MAX_UNTIL` / `MIN_UNTIL`, which try the body
                    // (or the tail) first, restore `lastmark` and the marks
                    // when it fails, and go on with the other: what a
                    // branch does.  The differences are unobservable:
                    // * `last_ptr` only stops a second iteration, and there
                    //   is none (`max == 1`);
                    // * inside the body sre saves marks at nested branches
                    //   and repeats because the repeat's context is set; a
                    //   branch sets none.  Outside every loop, the marks an
                    //   alternative writes belong to groups opened inside
                    //   it, numbered above every group written before on
                    //   the path, so above `lastmark` at the branch point:
                    //   after a failure `lastmark` is restored and marks
                    //   above it are never read (`mark` clears the gap
                    //   before raising `lastmark`), saved or not.  Inside
                    //   an enclosing loop the saving happens anyway, the
                    //   enclosing context being set.
                    RepeatKind::Greedy | RepeatKind::Lazy if *max == 1 && *min <= 1 => {
                        let body = self.seq(body, flags, next, widths);
                        if *min == 1 {
                            return body;
                        }
                        let alts = if *kind == RepeatKind::Greedy {
                            vec![body, next]
                        } else {
                            vec![next, body]
                        };
                        self.push(Op::Branch { alts })
                    }
                    RepeatKind::Possessive => {
                        let body = self.seq(body, flags, SUCCESS, widths);
                        self.push(Op::Possessive {
                            min: *min,
                            max: *max,
                            body,
                            next,
                        })
                    }
                    _ => {
                        let until = self.push(Op::Until);
                        let body = self.seq(body, flags, until, widths);
                        self.push(Op::Repeat {
                            lazy: *kind == RepeatKind::Lazy,
                            min: *min,
                            max: *max,
                            body,
                            next,
                        })
                    }
                }
            }
            Item::At(at) => {
                let ml = flags & MULTILINE != 0;
                let ascii = flags & UNICODE == 0;
                let at = match at {
                    At::Beginning if ml => AtCode::BeginningLine,
                    At::Beginning | At::BeginningString => AtCode::Beginning,
                    At::End if ml => AtCode::EndLine,
                    At::End => AtCode::End,
                    At::EndString => AtCode::EndString,
                    At::Boundary => AtCode::Boundary { ascii },
                    At::NonBoundary => AtCode::NonBoundary { ascii },
                };
                self.push(Op::At { at, next })
            }
            Item::Assert {
                behind,
                negate,
                body,
            } => {
                let back = if *behind {
                    super::parse::width(body, widths).0 as u32
                } else {
                    0
                };
                let body = self.seq(body, flags, SUCCESS, widths);
                self.push(Op::Assert {
                    back,
                    negate: *negate,
                    body,
                    next,
                })
            }
            Item::GroupRef(g) => self.push(Op::GroupRef {
                group: *g,
                case: case_mode(flags),
                next,
            }),
            Item::GroupRefExists { group, yes, no, .. } => {
                let yes = self.seq(yes, flags, next, widths);
                let no = match no {
                    Some(no) => self.seq(no, flags, next, widths),
                    None => next,
                };
                self.push(Op::GroupRefExists {
                    group: *group,
                    yes,
                    no,
                })
            }
            Item::Atomic(body) => {
                let body = self.seq(body, flags, SUCCESS, widths);
                self.push(Op::Atomic { body, next })
            }
            Item::Literal(_) | Item::NotLiteral(_) | Item::Any | Item::In { .. } => next,
        }
    }

    /// Python's `search(text, pos)` on `hay` (already cut at `endpos`):
    /// tries each start from `pos` (only `pos` when `anchored`); on a match
    /// fills `slots` (two per group, group 0 first) if given.  Recursion
    /// deeper than `depth` gives up with [`Outcome::TooDeep`].
    pub(super) fn search(
        &self,
        hay: &str,
        pos: usize,
        anchored: bool,
        scratch: &mut Scratch,
        slots: Option<&mut Vec<Option<usize>>>,
        depth: usize,
    ) -> Outcome {
        let mut m = Matcher::<false>::new(self, hay, scratch, depth, None);
        let mut start = pos;
        loop {
            m.reset();
            if m.run(self.start, start) {
                if let Some(slots) = slots {
                    m.fill(start, slots);
                }
                return Outcome::Match;
            }
            if m.too_deep {
                return Outcome::TooDeep;
            }
            if anchored || start >= hay.len() {
                return Outcome::NoMatch;
            }
            start += utf8_len(hay.as_bytes()[start]);
        }
    }

    /// Python's `match(text)` (a search anchored at 0) that records in
    /// `tests` what each position's tests told apart; returns the outcome
    /// and the end of the bytes read, past the text's length when the run
    /// looked at the end of the text.  Recursion deeper than `depth` gives
    /// up with [`Outcome::TooDeep`].
    pub(super) fn match_recorded(
        &self,
        hay: &str,
        scratch: &mut Scratch,
        slots: &mut Vec<Option<usize>>,
        tests: &RefCell<Tests>,
        depth: usize,
    ) -> (Outcome, usize) {
        let mut m = Matcher::<true>::new(self, hay, scratch, depth, Some(tests));
        let outcome = if m.run(self.start, 0) {
            m.fill(0, slots);
            Outcome::Match
        } else if m.too_deep {
            Outcome::TooDeep
        } else {
            Outcome::NoMatch
        };
        (outcome, m.touched.get())
    }
}

/// The result of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Match,
    NoMatch,
    /// The recursion limit was reached; the answer is unknown.
    TooDeep,
}

/// Buffers reused between searches.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    marks: Vec<Option<usize>>,
    stack: Vec<Option<usize>>,
    repeats: Vec<RepeatCtx>,
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

/// The characters of a one-character item (`LITERAL`, `NOT_LITERAL`,
/// `ANY`, `IN`).
fn unit_set(item: &Item, flags: u32) -> Option<CharSet> {
    let mode = case_mode(flags);
    Some(match item {
        Item::Literal(c) => literal_set(*c, mode),
        Item::NotLiteral(c) => literal_set(*c, mode).negate(),
        Item::Any => any_set(flags & DOTALL != 0),
        Item::In { negate, items } => class_set(items, *negate, mode, flags & UNICODE == 0),
        _ => return None,
    })
}

/// The character of a literal that matches only itself.
fn plain_literal(item: &Item, flags: u32) -> Option<char> {
    match item {
        Item::Literal(c) if literal_set(*c, case_mode(flags)) == CharSet::single(*c) => {
            char::from_u32(*c)
        }
        _ => None,
    }
}

/// `re._compiler._simple`: a loop body that is one character (possibly in
/// non-capturing groups) is run as `REPEAT_ONE`.
fn simple_set(body: &[Item], flags: u32) -> Option<CharSet> {
    match body {
        [
            Item::Group {
                group: None,
                add,
                del,
                body,
            },
        ] => simple_set(body, combine_flags(flags, *add, *del)),
        [item] => unit_set(item, flags),
        _ => None,
    }
}

fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// A running `REPEAT` (sre's `SRE_REPEAT`).
#[derive(Debug, Clone, Copy)]
struct RepeatCtx {
    count: i64,
    op: usize,
    last_ptr: Option<usize>,
    prev: Option<usize>,
}

/// A run of the program; with `RECORD`, what it reads is noted in `tests`
/// and `touched` (see [`Program::match_recorded`]).
struct Matcher<'a, const RECORD: bool> {
    prog: &'a Program,
    hay: &'a [u8],
    tests: Option<&'a RefCell<Tests>>,
    touched: Cell<usize>,
    marks: &'a mut Vec<Option<usize>>,
    lastmark: isize,
    /// Saved marks (`MARK_PUSH`).
    stack: &'a mut Vec<Option<usize>>,
    repeats: &'a mut Vec<RepeatCtx>,
    repeat: Option<usize>,
    /// Where the last `Success` was reached.
    end: usize,
    depth: usize,
    limit: usize,
    too_deep: bool,
}

impl<'a, const RECORD: bool> Matcher<'a, RECORD> {
    fn new(
        prog: &'a Program,
        hay: &'a str,
        scratch: &'a mut Scratch,
        limit: usize,
        tests: Option<&'a RefCell<Tests>>,
    ) -> Matcher<'a, RECORD> {
        scratch.marks.clear();
        scratch.marks.resize(2 * prog.groups, None);
        Matcher {
            prog,
            hay: hay.as_bytes(),
            tests,
            touched: Cell::new(0),
            marks: &mut scratch.marks,
            lastmark: -1,
            stack: &mut scratch.stack,
            repeats: &mut scratch.repeats,
            repeat: None,
            end: 0,
            depth: 0,
            limit,
            too_deep: false,
        }
    }

    fn reset(&mut self) {
        self.lastmark = -1;
        self.stack.clear();
        self.repeats.clear();
        self.repeat = None;
    }

    /// The spans of a match that started at `start` (Python's rule: a group
    /// is set when both its marks are and it lies within `lastmark`).
    fn fill(&self, start: usize, slots: &mut Vec<Option<usize>>) {
        slots.clear();
        slots.resize(2 * (self.prog.groups + 1), None);
        slots[0] = Some(start);
        slots[1] = Some(self.end);
        // group `g` (from 0) has marks `2g`, `2g + 1`; the pair is set
        // when both are and the end is within `lastmark`
        let set = usize::try_from(self.lastmark + 1).unwrap_or(0) / 2;
        for (out, marks) in slots[2..]
            .chunks_exact_mut(2)
            .zip(self.marks.chunks_exact(2))
            .take(set)
        {
            if let [Some(_), Some(_)] = marks {
                out.copy_from_slice(marks);
            }
        }
    }

    /// The character at `pos` and the position after it.
    #[inline]
    fn next_char(&self, pos: usize) -> Option<(u32, usize)> {
        self.saw(pos + 1);
        let b = *self.hay.get(pos)?;
        if b < 0x80 {
            return Some((b as u32, pos + 1));
        }
        let len = utf8_len(b);
        self.saw(pos + len);
        let bytes = &self.hay[pos..pos + len];
        let mut c = (b as u32) & (0x7F >> len);
        for &x in &bytes[1..] {
            c = (c << 6) | (x as u32 & 0x3F);
        }
        Some((c, pos + len))
    }

    /// The character before `pos` and where it starts.
    #[inline]
    fn prev_char(&self, pos: usize) -> Option<(u32, usize)> {
        if pos == 0 {
            return None;
        }
        let mut s = pos - 1;
        while self.hay[s] & 0xC0 == 0x80 {
            s -= 1;
        }
        self.next_char(s).map(|(c, _)| (c, s))
    }

    fn is_word(c: u32, ascii: bool) -> bool {
        if ascii {
            c < 128 && (c as u8 == b'_' || (c as u8).is_ascii_alphanumeric())
        } else if c < 128 {
            c as u8 == b'_' || (c as u8).is_ascii_alphanumeric()
        } else {
            char::from_u32(c).is_some_and(is_py_word)
        }
    }

    /// Notes (when recording) that the bytes before `end` were read
    /// (`end` past the length: the end of the text was seen).
    #[inline]
    fn saw(&self, end: usize) {
        if RECORD && end > self.touched.get() {
            self.touched.set(end);
        }
    }

    /// Notes (when recording) a test on the byte at `pos` whose ASCII
    /// members are the bits of `members`.
    #[inline]
    fn note(&self, pos: usize, members: u128) {
        if RECORD {
            self.saw(pos + 1);
            if pos >= self.hay.len() {
                return;
            }
            if let Some(t) = self.tests {
                t.borrow_mut().split(pos, members);
            }
        }
    }

    /// Notes a test of the bytes at `pos` against set `set`.
    #[inline]
    fn note_set(&self, pos: usize, set: usize) {
        if RECORD {
            self.note(pos, self.prog.sets[set].ascii);
        }
    }

    /// Notes a comparison of the bytes of `from..to` with other text.
    fn note_exact(&self, from: usize, to: usize) {
        if RECORD {
            self.saw(to + 1);
            if let Some(t) = self.tests {
                for pos in from..to.min(self.hay.len()) {
                    t.borrow_mut().exact(pos);
                }
            }
        }
    }

    fn at(&self, at: AtCode, pos: usize) -> bool {
        let end = self.hay.len();
        if RECORD {
            let newline = 1u128 << b'\n';
            let word = WORD_BYTES;
            match at {
                AtCode::Beginning => {}
                AtCode::BeginningLine if pos > 0 => self.note(pos - 1, newline),
                AtCode::BeginningLine => {}
                AtCode::End => {
                    self.note(pos, newline);
                    self.saw(pos + 2);
                }
                AtCode::EndLine | AtCode::EndString => self.note(pos, newline),
                AtCode::Boundary { .. } | AtCode::NonBoundary { .. } => {
                    if pos > 0 {
                        self.note(pos - 1, word);
                    }
                    self.note(pos, word);
                }
            }
        }
        match at {
            AtCode::Beginning => pos == 0,
            AtCode::BeginningLine => pos == 0 || self.hay[pos - 1] == b'\n',
            AtCode::End => pos == end || (pos + 1 == end && self.hay[pos] == b'\n'),
            AtCode::EndLine => pos == end || self.hay[pos] == b'\n',
            AtCode::EndString => pos == end,
            AtCode::Boundary { ascii } | AtCode::NonBoundary { ascii } => {
                if end == 0 {
                    return false;
                }
                let before = self
                    .prev_char(pos)
                    .is_some_and(|(c, _)| Self::is_word(c, ascii));
                let after = self
                    .next_char(pos)
                    .is_some_and(|(c, _)| Self::is_word(c, ascii));
                (before != after) == matches!(at, AtCode::Boundary { .. })
            }
        }
    }

    fn mark(&mut self, slot: usize, pos: usize) {
        let i = slot as isize;
        if i > self.lastmark {
            for j in (self.lastmark + 1)..i {
                self.marks[j as usize] = None;
            }
            self.lastmark = i;
        }
        self.marks[slot] = Some(pos);
    }

    /// `MARK_PUSH(lastmark)`: returns the stack height to restore from.
    fn mark_push(&mut self, lastmark: isize) -> usize {
        let h = self.stack.len();
        if lastmark >= 0 {
            self.stack
                .extend_from_slice(&self.marks[..=lastmark as usize]);
        }
        h
    }

    /// `MARK_POP_KEEP(lastmark)`: restores the saved marks, keeps them saved.
    fn mark_restore(&mut self, h: usize, lastmark: isize) {
        if lastmark >= 0 {
            let n = lastmark as usize + 1;
            self.marks[..n].copy_from_slice(&self.stack[h..h + n]);
        }
    }

    fn mark_pop(&mut self, h: usize, lastmark: isize) {
        self.mark_restore(h, lastmark);
        self.stack.truncate(h);
    }

    fn group_span(&self, group: usize) -> Option<(usize, usize)> {
        let g = 2 * (group - 1);
        if g as isize >= self.lastmark {
            return None;
        }
        match (self.marks[g], self.marks[g + 1]) {
            (Some(s), Some(e)) if e >= s => Some((s, e)),
            _ => None,
        }
    }

    /// How many characters from `pos` (at most `max`) are in `set`, and
    /// where they end.
    #[inline]
    fn count(&self, set: usize, pos: usize, max: u32) -> (u32, usize) {
        let set_index = set;
        let set = &self.prog.sets[set];
        let hay = self.hay;
        if max == MAXREPEAT && set.all_but_newline {
            let end = memchr::memchr(b'\n', &hay[pos..]).map_or(hay.len(), |i| pos + i);
            if RECORD {
                for p in pos..=end {
                    self.note(p, 1u128 << b'\n');
                }
            }
            let run = &hay[pos..end];
            let n = if run.is_ascii() {
                run.len()
            } else {
                run.iter().filter(|&&b| (b as i8) >= -0x40).count()
            };
            return (n as u32, end);
        }
        let limit = if max == MAXREPEAT {
            usize::MAX
        } else {
            max as usize
        };
        let (mut n, mut p) = (0usize, pos);
        loop {
            // a run of ASCII members, one byte each
            let stop = hay.len().min(p.saturating_add(limit - n));
            let run = p;
            while p < stop && set.bytes[hay[p] as usize] == IN {
                self.note_set(p, set_index);
                p += 1;
            }
            if p < stop || p == hay.len() {
                // the byte that ended the run (or the end of the text)
                self.note_set(p, set_index);
            }
            n += p - run;
            if n >= limit || p >= hay.len() || set.bytes[hay[p] as usize] != WIDE {
                break;
            }
            match self.next_char(p) {
                Some((c, q)) if set.contains(c) => {
                    p = q;
                    n += 1;
                }
                _ => break,
            }
        }
        (n as u32, p)
    }

    /// False when operation `pc` certainly fails at `pos` ([`First`]).
    #[inline]
    fn may_start(&self, pc: usize, pos: usize) -> bool {
        let first = &self.prog.first[pc];
        self.note(
            pos,
            u128::from(first.bytes[0]) | u128::from(first.bytes[1]) << 64,
        );
        match self.hay.get(pos) {
            Some(&b) => first.has(b),
            None => first.at_end,
        }
    }

    fn back_one(&self, pos: usize) -> usize {
        self.prev_char(pos).map_or(pos, |(_, s)| s)
    }

    /// Runs from operation `pc` at `pos`; true when `Success` is reached
    /// (`self.end` then holds the position).
    fn run(&mut self, pc: usize, pos: usize) -> bool {
        if self.too_deep || self.depth >= self.limit {
            self.too_deep = true;
            return false;
        }
        self.depth += 1;
        let ok = self.step(pc, pos);
        self.depth -= 1;
        ok
    }

    fn step(&mut self, mut pc: usize, mut pos: usize) -> bool {
        loop {
            match &self.prog.ops[pc] {
                Op::Success => {
                    self.end = pos;
                    return true;
                }
                Op::Char { set, next } => {
                    self.note_set(pos, *set);
                    let set = &self.prog.sets[*set];
                    match self.hay.get(pos).map(|&b| set.bytes[b as usize]) {
                        Some(IN) => pos += 1,
                        Some(WIDE) => match self.next_char(pos) {
                            Some((c, q)) if set.contains(c) => pos = q,
                            _ => return false,
                        },
                        _ => return false,
                    }
                    pc = *next;
                }
                Op::Text { text, next } => {
                    if RECORD {
                        for (i, &t) in text.iter().enumerate() {
                            if t < 128 {
                                self.note(pos + i, 1u128 << t);
                            }
                        }
                    }
                    if !self.hay[pos..].starts_with(text) {
                        return false;
                    }
                    pos += text.len();
                    pc = *next;
                }
                Op::At { at, next } => {
                    if !self.at(*at, pos) {
                        return false;
                    }
                    pc = *next;
                }
                Op::Mark { slot, next } => {
                    self.mark(*slot, pos);
                    pc = *next;
                }
                Op::GroupRef { group, case, next } => {
                    let Some((s, e)) = self.group_span(*group) else {
                        return false;
                    };
                    match self.match_ref(s, e, pos, *case) {
                        Some(q) => {
                            pos = q;
                            pc = *next;
                        }
                        None => return false,
                    }
                }
                Op::GroupRefExists { group, yes, no } => {
                    pc = if self.group_span(*group).is_some() {
                        *yes
                    } else {
                        *no
                    };
                }
                Op::Branch { alts } => {
                    // a sole alternative that can start here is run in place:
                    // nothing needs saving, as whoever goes on after a
                    // failure restores `lastmark` (and, in loops, the marks)
                    // itself
                    let mut viable = alts.iter().filter(|&&a| self.may_start(a, pos));
                    let Some(&first) = viable.next() else {
                        return false;
                    };
                    if viable.next().is_some() {
                        return self.branch(alts, pos);
                    }
                    pc = first;
                }
                Op::RepeatOne {
                    kind,
                    set,
                    min,
                    max,
                    next,
                } => match kind {
                    RepeatKind::Greedy => return self.repeat_one(*set, *min, *max, *next, pos),
                    RepeatKind::Lazy => return self.min_repeat_one(*set, *min, *max, *next, pos),
                    RepeatKind::Possessive => {
                        let (n, q) = self.count(*set, pos, *max);
                        if n < *min {
                            return false;
                        }
                        pos = q;
                        pc = *next;
                    }
                },
                Op::Repeat { .. } => return self.repeat(pc, pos),
                Op::Until => return self.until(pos),
                Op::Possessive {
                    min,
                    max,
                    body,
                    next,
                } => match self.possessive(*min, *max, *body, pos) {
                    Some(q) => {
                        pos = q;
                        pc = *next;
                    }
                    None => return false,
                },
                Op::Atomic { body, next } => {
                    let saved_repeat = self.repeat;
                    if !self.run(*body, pos) {
                        return false;
                    }
                    self.repeat = saved_repeat;
                    pos = self.end;
                    pc = *next;
                }
                Op::Assert {
                    back,
                    negate,
                    body,
                    next,
                } => {
                    if !self.assert(*back, *negate, *body, pos) {
                        return false;
                    }
                    pc = *next;
                }
            }
        }
    }

    fn match_ref(&self, s: usize, e: usize, pos: usize, case: CaseMode) -> Option<usize> {
        self.note_exact(s, e);
        let mut p = s;
        let mut q = pos;
        while p < e {
            let (a, p2) = self.next_char(p)?;
            let (b, q2) = self.next_char(q)?;
            // a character of either case may take other widths: each one
            // compared is noted where it is
            self.note_exact(q, q2);
            let same = match case {
                CaseMode::Sensitive => a == b,
                CaseMode::Unicode => lower(a) == lower(b),
                CaseMode::Ascii => ascii_lower(a) == ascii_lower(b),
            };
            if !same {
                return None;
            }
            p = p2;
            q = q2;
        }
        Some(q)
    }

    fn branch(&mut self, alts: &[usize], pos: usize) -> bool {
        let lastmark = self.lastmark;
        let saved = self.repeat.map(|_| self.mark_push(lastmark));
        for &alt in alts {
            if !self.may_start(alt, pos) {
                continue;
            }
            if self.run(alt, pos) {
                if let Some(h) = saved {
                    self.stack.truncate(h);
                }
                return true;
            }
            if let Some(h) = saved {
                self.mark_restore(h, lastmark);
            }
            self.lastmark = lastmark;
        }
        if let Some(h) = saved {
            self.stack.truncate(h);
        }
        false
    }

    fn repeat_one(&mut self, set: usize, min: u32, max: u32, next: usize, pos: usize) -> bool {
        let (mut n, mut p) = self.count(set, pos, max);
        if n < min {
            return false;
        }
        if matches!(self.prog.ops[next], Op::Success) {
            self.end = p;
            return true;
        }
        let lastmark = self.lastmark;
        let saved = self.repeat.map(|_| self.mark_push(lastmark));
        loop {
            if self.may_start(next, p) {
                if self.run(next, p) {
                    if let Some(h) = saved {
                        self.stack.truncate(h);
                    }
                    return true;
                }
                if let Some(h) = saved {
                    self.mark_restore(h, lastmark);
                }
                self.lastmark = lastmark;
            }
            if n == min {
                break;
            }
            p = self.back_one(p);
            n -= 1;
        }
        if let Some(h) = saved {
            self.stack.truncate(h);
        }
        false
    }

    fn min_repeat_one(&mut self, set: usize, min: u32, max: u32, next: usize, pos: usize) -> bool {
        let (mut n, mut p) = if min == 0 {
            (0, pos)
        } else {
            let (n, p) = self.count(set, pos, min);
            if n < min {
                return false;
            }
            (n, p)
        };
        if matches!(self.prog.ops[next], Op::Success) {
            self.end = p;
            return true;
        }
        let lastmark = self.lastmark;
        let saved = self.repeat.map(|_| self.mark_push(lastmark));
        while max == MAXREPEAT || n <= max {
            if self.may_start(next, p) {
                if self.run(next, p) {
                    if let Some(h) = saved {
                        self.stack.truncate(h);
                    }
                    return true;
                }
                if let Some(h) = saved {
                    self.mark_restore(h, lastmark);
                }
                self.lastmark = lastmark;
            }
            let (k, q) = self.count(set, p, 1);
            if k == 0 {
                break;
            }
            p = q;
            n += 1;
        }
        if let Some(h) = saved {
            self.stack.truncate(h);
        }
        false
    }

    /// `REPEAT`: opens a repeat context and runs its `UNTIL`.
    fn repeat(&mut self, op: usize, pos: usize) -> bool {
        if let Op::Repeat {
            min: 0, body, next, ..
        } = self.prog.ops[op]
            && !self.may_start(body, pos)
        {
            // the body cannot start here: sre would try it, fail, and go on
            // with the tail under the enclosing repeat, as done here
            return self.run(next, pos);
        }
        let idx = self.repeats.len();
        self.repeats.push(RepeatCtx {
            count: -1,
            op,
            last_ptr: None,
            prev: self.repeat,
        });
        self.repeat = Some(idx);
        let ok = self.until(pos);
        self.repeat = self.repeats[idx].prev;
        self.repeats.truncate(idx);
        ok
    }

    /// `MAX_UNTIL` / `MIN_UNTIL` of the innermost repeat.
    fn until(&mut self, pos: usize) -> bool {
        let Some(r) = self.repeat else {
            return false;
        };
        let rep = self.repeats[r];
        let Some(&Op::Repeat {
            lazy,
            min,
            max,
            body,
            next,
        }) = self.prog.ops.get(rep.op)
        else {
            return false;
        };
        let count = rep.count + 1;
        if count < min as i64 {
            self.repeats[r].count = count;
            if self.run(body, pos) {
                return true;
            }
            self.repeats[r].count = count - 1;
            return false;
        }
        let more = (max == MAXREPEAT || count < max as i64) && rep.last_ptr != Some(pos);
        if !lazy {
            if more {
                self.repeats[r].count = count;
                let lastmark = self.lastmark;
                let h = self.mark_push(lastmark);
                let old = self.repeats[r].last_ptr;
                self.repeats[r].last_ptr = Some(pos);
                let ok = self.run(body, pos);
                self.repeats[r].last_ptr = old;
                if ok {
                    self.stack.truncate(h);
                    return true;
                }
                self.mark_pop(h, lastmark);
                self.lastmark = lastmark;
                self.repeats[r].count = count - 1;
            }
            self.repeat = rep.prev;
            let ok = self.run(next, pos);
            self.repeat = Some(r);
            return ok;
        }
        // MIN_UNTIL: the tail first
        self.repeat = rep.prev;
        let lastmark = self.lastmark;
        let saved = self.repeat.map(|_| self.mark_push(lastmark));
        let ok = self.run(next, pos);
        self.repeat = Some(r);
        if ok {
            if let Some(h) = saved {
                self.stack.truncate(h);
            }
            return true;
        }
        if let Some(h) = saved {
            self.mark_pop(h, lastmark);
        }
        self.lastmark = lastmark;
        if !more {
            return false;
        }
        self.repeats[r].count = count;
        let old = self.repeats[r].last_ptr;
        self.repeats[r].last_ptr = Some(pos);
        let ok = self.run(body, pos);
        self.repeats[r].last_ptr = old;
        if ok {
            return true;
        }
        self.repeats[r].count = count - 1;
        false
    }

    /// `POSSESSIVE_REPEAT`: returns where the loop ends.
    fn possessive(&mut self, min: u32, max: u32, body: usize, pos: usize) -> Option<usize> {
        let outer = self.repeat;
        let idx = self.repeats.len();
        self.repeats.push(RepeatCtx {
            count: -1,
            op: usize::MAX,
            last_ptr: None,
            prev: outer,
        });
        self.repeat = Some(idx);
        let mut ptr = pos;
        let mut count = 0u32;
        let result = loop {
            if count >= min {
                break Some(());
            }
            if !self.run(body, ptr) {
                break None;
            }
            ptr = self.end;
            count += 1;
        };
        if result.is_some() {
            let mut last: Option<usize> = None;
            while (max == MAXREPEAT || count < max) && Some(ptr) != last {
                let lastmark = self.lastmark;
                let h = self.mark_push(lastmark);
                last = Some(ptr);
                self.repeat = Some(idx);
                if self.run(body, ptr) {
                    self.stack.truncate(h);
                    ptr = self.end;
                    count += 1;
                } else {
                    self.mark_pop(h, lastmark);
                    self.lastmark = lastmark;
                    break;
                }
            }
        }
        self.repeat = outer;
        self.repeats.truncate(idx);
        result.map(|()| ptr)
    }

    fn assert(&mut self, back: u32, negate: bool, body: usize, pos: usize) -> bool {
        let mut start = pos;
        for _ in 0..back {
            match self.prev_char(start) {
                Some((_, s)) => start = s,
                None => return negate,
            }
        }
        let saved_repeat = self.repeat;
        if !negate {
            let ok = self.run(body, start);
            self.repeat = saved_repeat;
            return ok;
        }
        let lastmark = self.lastmark;
        let saved = self.repeat.map(|_| self.mark_push(lastmark));
        let matched = self.run(body, start);
        self.repeat = saved_repeat;
        if matched {
            if let Some(h) = saved {
                self.stack.truncate(h);
            }
            return false;
        }
        if let Some(h) = saved {
            self.mark_pop(h, lastmark);
        }
        self.lastmark = lastmark;
        true
    }
}

fn ascii_lower(c: u32) -> u32 {
    if (0x41..=0x5A).contains(&c) {
        c + 32
    } else {
        c
    }
}
