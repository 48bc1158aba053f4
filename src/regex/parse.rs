//! The parser of Python regular expressions, reproducing CPython 3.11's
//! `re._parser` (and the checks of `re._compiler`) decision for decision.
//!
//! The parse tree mirrors the one Python builds, including its two
//! rewrites that are visible in matching (a common prefix of all
//! alternatives is factored out, and alternatives of single characters
//! become one class, which changes case-insensitive matching of astral
//! characters).  Errors carry Python's message and character position.
//! Neither regex crate parses Python syntax (`(?P<n>`, `(?P=n)`,
//! `(?(name)`, literal `{`, `[` in classes, octal/group-number rules ...),
//! hence this hand-written port.

use super::charset::{Category, ClassItem, is_identifier};
use super::tables;
use crate::pyvalue::str_repr;

/// Python's `re` flag bits (`re.RegexFlag`).
pub(super) const TEMPLATE: u32 = 1;
pub(super) const IGNORECASE: u32 = 2;
pub(super) const LOCALE: u32 = 4;
pub(super) const MULTILINE: u32 = 8;
pub(super) const DOTALL: u32 = 16;
pub(super) const UNICODE: u32 = 32;
pub(super) const VERBOSE: u32 = 64;
pub(super) const ASCII: u32 = 256;
const TYPE_FLAGS: u32 = ASCII | LOCALE | UNICODE;
const GLOBAL_FLAGS: u32 = TEMPLATE | 128;

/// Python's `MAXREPEAT`: an open upper bound.
pub(super) const MAXREPEAT: u32 = u32::MAX;
const MAXGROUPS: u128 = 1_073_741_823;

/// A parse or compile error: message and character position, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParseError {
    pub msg: String,
    pub pos: Option<usize>,
}

type PResult<T> = Result<T, ParseError>;

/// A sequence of items (Python's `SubPattern`).
pub(super) type Seq = Vec<Item>;

/// Zero-width position tests (`AT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    /// `^`
    Beginning,
    /// `\A`
    BeginningString,
    /// `$`
    End,
    /// `\Z`
    EndString,
    /// `\b`
    Boundary,
    /// `\B`
    NonBoundary,
}

/// Greedy, lazy or possessive repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RepeatKind {
    Greedy,
    Lazy,
    Possessive,
}

/// One item of a parsed pattern (Python's `(op, av)` tuples).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    Literal(u32),
    NotLiteral(u32),
    Any,
    In {
        negate: bool,
        items: Vec<ClassItem>,
    },
    Branch(Vec<Seq>),
    /// A capturing group and/or a scoped flag group.
    Group {
        group: Option<usize>,
        add: u32,
        del: u32,
        body: Seq,
    },
    Repeat {
        kind: RepeatKind,
        min: u32,
        max: u32,
        body: Seq,
    },
    At(At),
    Assert {
        behind: bool,
        negate: bool,
        body: Seq,
    },
    GroupRef(usize),
    GroupRefExists {
        group: usize,
        /// Whether the group was complete where the condition stands.
        closed: bool,
        yes: Seq,
        no: Option<Seq>,
    },
    Atomic(Seq),
}

impl Item {
    /// Python's tuple equality for the prefix factoring: items holding a
    /// sub-pattern compare by identity, so they never equal another item.
    fn same_as(&self, other: &Item) -> bool {
        match (self, other) {
            (Item::Literal(_), _)
            | (Item::NotLiteral(_), _)
            | (Item::Any, _)
            | (Item::In { .. }, _)
            | (Item::At(_), _)
            | (Item::GroupRef(_), _) => self == other,
            _ => false,
        }
    }
}

/// The result of parsing: the tree, the final global flags and the groups.
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    pub seq: Seq,
    pub flags: u32,
    /// Number of capturing groups (Python's `.groups`).
    pub groups: usize,
    /// Named groups in definition order.
    pub names: Vec<(String, usize)>,
    /// Width (min, max) of each group (index 0 unused).
    pub widths: Vec<(u64, u64)>,
}

/// A token: one character, or a backslash and the character after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tok {
    c: char,
    esc: bool,
}

impl Tok {
    fn len(self) -> usize {
        if self.esc { 2 } else { 1 }
    }

    fn is(self, ch: char) -> bool {
        !self.esc && self.c == ch
    }

    fn text(self) -> String {
        if self.esc {
            format!("\\{}", self.c)
        } else {
            self.c.to_string()
        }
    }

    fn is_in(tok: Option<Tok>, set: &str) -> bool {
        matches!(tok, Some(t) if !t.esc && set.contains(t.c))
    }
}

struct Source {
    chars: Vec<char>,
    index: usize,
    next: Option<Tok>,
}

impl Source {
    fn new(pattern: &str) -> PResult<Source> {
        let mut s = Source {
            chars: pattern.chars().collect(),
            index: 0,
            next: None,
        };
        s.advance()?;
        Ok(s)
    }

    fn advance(&mut self) -> PResult<()> {
        let mut index = self.index;
        let Some(&c) = self.chars.get(index) else {
            self.next = None;
            return Ok(());
        };
        let tok = if c == '\\' {
            index += 1;
            match self.chars.get(index) {
                Some(&e) => Tok { c: e, esc: true },
                None => {
                    return Err(ParseError {
                        msg: "bad escape (end of pattern)".into(),
                        pos: Some(self.chars.len() - 1),
                    });
                }
            }
        } else {
            Tok { c, esc: false }
        };
        self.index = index + 1;
        self.next = Some(tok);
        Ok(())
    }

    fn matches(&mut self, ch: char) -> PResult<bool> {
        if matches!(self.next, Some(t) if t.is(ch)) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn get(&mut self) -> PResult<Option<Tok>> {
        let this = self.next;
        self.advance()?;
        Ok(this)
    }

    fn getwhile(&mut self, n: usize, set: &str) -> PResult<String> {
        let mut out = String::new();
        for _ in 0..n {
            if !Tok::is_in(self.next, set) {
                break;
            }
            out.push(self.next.map_or(' ', |t| t.c));
            self.advance()?;
        }
        Ok(out)
    }

    fn getuntil(&mut self, terminator: char, name: &str) -> PResult<String> {
        let mut result = String::new();
        let mut len = 0;
        loop {
            let c = self.next;
            self.advance()?;
            match c {
                None => {
                    if len == 0 {
                        return Err(self.error(format!("missing {name}"), 0));
                    }
                    return Err(self.error(format!("missing {terminator}, unterminated name"), len));
                }
                Some(t) if t.is(terminator) => {
                    if len == 0 {
                        return Err(self.error(format!("missing {name}"), 1));
                    }
                    return Ok(result);
                }
                Some(t) => {
                    result.push_str(&t.text());
                    len += t.len();
                }
            }
        }
    }

    fn tell(&self) -> usize {
        self.index - self.next.map_or(0, Tok::len)
    }

    fn seek(&mut self, index: usize) -> PResult<()> {
        self.index = index;
        self.advance()
    }

    fn error(&self, msg: impl Into<String>, offset: usize) -> ParseError {
        ParseError {
            msg: msg.into(),
            pos: Some(self.tell() - offset),
        }
    }

    fn checkgroupname(&self, name: &str, offset: usize) -> PResult<()> {
        if is_identifier(name) {
            Ok(())
        } else {
            Err(self.error(
                format!("bad character in group name {}", str_repr(name)),
                name.chars().count() + offset,
            ))
        }
    }
}

struct State {
    flags: u32,
    names: Vec<(String, usize)>,
    widths: Vec<Option<(u64, u64)>>,
    lookbehind_groups: Option<usize>,
    groupref_pos: Vec<(u128, usize)>,
}

impl State {
    fn groups(&self) -> usize {
        self.widths.len()
    }

    fn group_of(&self, name: &str) -> Option<usize> {
        self.names.iter().find(|(n, _)| n == name).map(|&(_, g)| g)
    }

    fn checkgroup(&self, gid: usize) -> bool {
        gid < self.groups() && self.widths[gid].is_some()
    }

    fn check_lookbehind_group(&self, gid: usize, source: &Source) -> PResult<()> {
        if let Some(lb) = self.lookbehind_groups {
            if !self.checkgroup(gid) {
                return Err(source.error("cannot refer to an open group", 0));
            }
            if gid >= lb {
                return Err(source.error(
                    "cannot refer to group defined in the same lookbehind subpattern",
                    0,
                ));
            }
        }
        Ok(())
    }

    fn resolved_widths(&self) -> Vec<(u64, u64)> {
        self.widths.iter().map(|w| w.unwrap_or((0, 0))).collect()
    }
}

const MAXW: u128 = MAXREPEAT as u128;

/// Whether some repeat that may iterate more than once has a body that can
/// match the empty string: the one place where the `regex` crate's
/// leftmost-first span differs from sre's (the empty-iteration rule).
pub(super) fn has_nullable_repeat(seq: &[Item], groups: &[(u64, u64)]) -> bool {
    seq.iter().any(|item| match item {
        Item::Repeat { max, body, .. } => {
            (*max > 1 && width(body, groups).0 == 0) || has_nullable_repeat(body, groups)
        }
        Item::Branch(alts) => alts.iter().any(|a| has_nullable_repeat(a, groups)),
        Item::Atomic(body) | Item::Group { body, .. } | Item::Assert { body, .. } => {
            has_nullable_repeat(body, groups)
        }
        Item::GroupRefExists { yes, no, .. } => {
            has_nullable_repeat(yes, groups)
                || no
                    .as_deref()
                    .is_some_and(|n| has_nullable_repeat(n, groups))
        }
        _ => false,
    })
}

/// Python's `SubPattern.getwidth()`: (min, max) characters, saturated.
pub(super) fn width(seq: &[Item], groups: &[(u64, u64)]) -> (u64, u64) {
    let (mut lo, mut hi) = (0u128, 0u128);
    for item in seq {
        let (i, j): (u128, u128) = match item {
            Item::Branch(alts) => {
                let mut i = MAXW - 1;
                let mut j = 0;
                for alt in alts {
                    let (l, h) = width(alt, groups);
                    i = i.min(l as u128);
                    j = j.max(h as u128);
                }
                (i, j)
            }
            Item::Atomic(body) | Item::Group { body, .. } => {
                let (l, h) = width(body, groups);
                (l as u128, h as u128)
            }
            Item::Repeat { min, max, body, .. } => {
                let (l, h) = width(body, groups);
                (l as u128 * *min as u128, h as u128 * *max as u128)
            }
            Item::Literal(_) | Item::NotLiteral(_) | Item::Any | Item::In { .. } => (1, 1),
            Item::GroupRef(g) => {
                let (l, h) = groups.get(*g).copied().unwrap_or((0, 0));
                (l as u128, h as u128)
            }
            Item::GroupRefExists { yes, no, .. } => {
                let (l, h) = width(yes, groups);
                match no {
                    Some(no) => {
                        let (l2, h2) = width(no, groups);
                        (l.min(l2) as u128, h.max(h2) as u128)
                    }
                    None => (0, h as u128),
                }
            }
            Item::At(_) | Item::Assert { .. } => (0, 0),
        };
        lo += i;
        hi += j;
    }
    (lo.min(MAXW - 1) as u64, hi.min(MAXW) as u64)
}

/// Parses `pattern` with the initial `flags` as `re.compile` does,
/// including the checks `re._compiler` makes.
pub(super) fn parse(pattern: &str, flags: u32) -> PResult<Parsed> {
    let mut source = Source::new(pattern)?;
    let mut state = State {
        flags,
        names: Vec::new(),
        widths: vec![None],
        lookbehind_groups: None,
        groupref_pos: Vec::new(),
    };
    let verbose = flags & VERBOSE != 0;
    let seq = parse_sub(&mut source, &mut state, verbose, 0)?;
    state.flags = fix_flags(state.flags)?;
    if source.next.is_some() {
        return Err(source.error("unbalanced parenthesis", 0));
    }
    for &(g, pos) in &state.groupref_pos {
        if g >= state.groups() as u128 {
            return Err(ParseError {
                msg: format!("invalid group reference {g}"),
                pos: Some(pos),
            });
        }
    }
    let widths = state.resolved_widths();
    compile_check(&seq, state.flags, &widths)?;
    Ok(Parsed {
        seq,
        flags: state.flags,
        groups: state.groups() - 1,
        names: state.names,
        widths,
    })
}

fn fix_flags(flags: u32) -> PResult<u32> {
    if flags & ASCII == 0 {
        Ok(flags | UNICODE)
    } else if flags & UNICODE != 0 {
        Err(ParseError {
            msg: "ASCII and UNICODE flags are incompatible".into(),
            pos: None,
        })
    } else {
        Ok(flags)
    }
}

/// The errors `re._compiler` raises, in its traversal order.
fn compile_check(seq: &[Item], flags: u32, widths: &[(u64, u64)]) -> PResult<()> {
    for item in seq {
        match item {
            Item::Repeat { kind, body, .. } => {
                if flags & TEMPLATE != 0 {
                    let op = match kind {
                        RepeatKind::Greedy => "MAX_REPEAT",
                        RepeatKind::Lazy => "MIN_REPEAT",
                        RepeatKind::Possessive => "POSSESSIVE_REPEAT",
                    };
                    return Err(ParseError {
                        msg: format!("internal: unsupported template operator {op}"),
                        pos: None,
                    });
                }
                compile_check(body, flags, widths)?;
            }
            Item::Group { add, del, body, .. } => {
                let mut f = flags;
                if add & TYPE_FLAGS != 0 {
                    f &= !TYPE_FLAGS;
                }
                compile_check(body, (f | add) & !del, widths)?;
            }
            Item::Atomic(body) => compile_check(body, flags, widths)?,
            Item::Assert { behind, body, .. } => {
                if *behind {
                    let (lo, hi) = width(body, widths);
                    if lo != hi {
                        return Err(ParseError {
                            msg: "look-behind requires fixed-width pattern".into(),
                            pos: None,
                        });
                    }
                }
                compile_check(body, flags, widths)?;
            }
            Item::Branch(alts) => {
                for alt in alts {
                    compile_check(alt, flags, widths)?;
                }
            }
            Item::GroupRefExists { yes, no, .. } => {
                compile_check(yes, flags, widths)?;
                if let Some(no) = no {
                    compile_check(no, flags, widths)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_sub(source: &mut Source, state: &mut State, verbose: bool, nested: usize) -> PResult<Seq> {
    let mut verbose = verbose;
    let mut items: Vec<Seq> = Vec::new();
    loop {
        let first = nested == 0 && items.is_empty();
        items.push(parse_seq(source, state, verbose, nested + 1, first)?);
        if !source.matches('|')? {
            break;
        }
        if nested == 0 {
            verbose = state.flags & VERBOSE != 0;
        }
    }
    if items.len() == 1 {
        return Ok(items.pop().unwrap_or_default());
    }
    let mut out = Seq::new();
    // move a prefix common to all alternatives out of the branch
    while let Some(prefix) = items[0].first().cloned() {
        if !items
            .iter()
            .all(|it| it.first().is_some_and(|i| i.same_as(&prefix)))
        {
            break;
        }
        for it in &mut items {
            it.remove(0);
        }
        out.push(prefix);
    }
    // alternatives of single characters become one class
    let mut set = Vec::new();
    let all_chars = items.iter().all(|it| match it.as_slice() {
        [Item::Literal(c)] => {
            set.push(ClassItem::Lit(*c));
            true
        }
        [
            Item::In {
                negate: false,
                items,
            },
        ] => {
            set.extend_from_slice(items);
            true
        }
        _ => false,
    });
    if all_chars {
        out.push(Item::In {
            negate: false,
            items: uniq(set),
        });
    } else {
        out.push(Item::Branch(items));
    }
    Ok(out)
}

fn uniq(items: Vec<ClassItem>) -> Vec<ClassItem> {
    let mut out: Vec<ClassItem> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

const SPECIAL_CHARS: &str = ".\\[{()*+?^$|";
const REPEAT_CHARS: &str = "*+?{";
const DIGITS: &str = "0123456789";
const OCTDIGITS: &str = "01234567";
const HEXDIGITS: &str = "0123456789abcdefABCDEF";
const WHITESPACE: &str = " \t\n\r\x0b\x0c";
const FLAG_CHARS: &str = "iLmsxatu";

fn flag_bit(c: char) -> u32 {
    match c {
        'i' => IGNORECASE,
        'L' => LOCALE,
        'm' => MULTILINE,
        's' => DOTALL,
        'x' => VERBOSE,
        'a' => ASCII,
        't' => TEMPLATE,
        'u' => UNICODE,
        _ => 0,
    }
}

fn is_flag(tok: Option<Tok>) -> bool {
    Tok::is_in(tok, FLAG_CHARS)
}

fn parse_seq(
    source: &mut Source,
    state: &mut State,
    verbose: bool,
    nested: usize,
    first: bool,
) -> PResult<Seq> {
    let mut verbose = verbose;
    let mut seq: Seq = Vec::new();
    while let Some(this) = source.next {
        if this.is('|') || this.is(')') {
            break;
        }
        source.advance()?;
        if verbose {
            if Tok::is_in(Some(this), WHITESPACE) {
                continue;
            }
            if this.is('#') {
                loop {
                    match source.get()? {
                        None => break,
                        Some(t) if t.is('\n') => break,
                        Some(_) => {}
                    }
                }
                continue;
            }
        }
        if this.esc {
            seq.push(escape(source, this, state)?);
        } else if !SPECIAL_CHARS.contains(this.c) {
            seq.push(Item::Literal(this.c as u32));
        } else if this.c == '[' {
            seq.push(parse_class(source)?);
        } else if REPEAT_CHARS.contains(this.c) {
            parse_repeat(source, this, &mut seq)?;
        } else if this.c == '.' {
            seq.push(Item::Any);
        } else if this.c == '(' {
            if let Some(item) = parse_paren(source, state, &mut verbose, nested, first, &seq)? {
                seq.push(item);
            }
        } else if this.c == '^' {
            seq.push(Item::At(At::Beginning));
        } else {
            seq.push(Item::At(At::End));
        }
    }
    // unpack non-capturing groups without flags
    let mut out = Seq::with_capacity(seq.len());
    for item in seq {
        match item {
            Item::Group {
                group: None,
                add: 0,
                del: 0,
                body,
            } => out.extend(body),
            other => out.push(other),
        }
    }
    Ok(out)
}

fn parse_class(source: &mut Source) -> PResult<Item> {
    let here = source.tell() - 1;
    let mut set: Vec<ClassItem> = Vec::new();
    let negate = source.matches('^')?;
    loop {
        let Some(this) = source.get()? else {
            return Err(source.error("unterminated character set", source.tell() - here));
        };
        if this.is(']') && !set.is_empty() {
            break;
        }
        let code1 = if this.esc {
            class_escape(source, this)?
        } else {
            ClassCode::Lit(this.c as u32)
        };
        if source.matches('-')? {
            let Some(that) = source.get()? else {
                return Err(source.error("unterminated character set", source.tell() - here));
            };
            if that.is(']') {
                set.push(code1.item());
                set.push(ClassItem::Lit('-' as u32));
                break;
            }
            let code2 = if that.esc {
                class_escape(source, that)?
            } else {
                ClassCode::Lit(that.c as u32)
            };
            let bad = || {
                source.error(
                    format!("bad character range {}-{}", this.text(), that.text()),
                    this.len() + 1 + that.len(),
                )
            };
            match (code1, code2) {
                (ClassCode::Lit(lo), ClassCode::Lit(hi)) => {
                    if hi < lo {
                        return Err(bad());
                    }
                    set.push(ClassItem::Range(lo, hi));
                }
                _ => return Err(bad()),
            }
        } else {
            set.push(code1.item());
        }
    }
    let set = uniq(set);
    Ok(match set.as_slice() {
        [ClassItem::Lit(c)] if negate => Item::NotLiteral(*c),
        [ClassItem::Lit(c)] => Item::Literal(*c),
        _ => Item::In { negate, items: set },
    })
}

fn parse_repeat(source: &mut Source, this: Tok, seq: &mut Seq) -> PResult<()> {
    let here = source.tell();
    let (min, max) = match this.c {
        '?' => (0, 1),
        '*' => (0, MAXREPEAT),
        '+' => (1, MAXREPEAT),
        _ => {
            if matches!(source.next, Some(t) if t.is('}')) {
                seq.push(Item::Literal('{' as u32));
                return Ok(());
            }
            let lo = source.getwhile(usize::MAX, DIGITS)?;
            let hi = if source.matches(',')? {
                source.getwhile(usize::MAX, DIGITS)?
            } else {
                lo.clone()
            };
            if !source.matches('}')? {
                seq.push(Item::Literal('{' as u32));
                source.seek(here)?;
                return Ok(());
            }
            let too_large = || ParseError {
                msg: "the repetition number is too large".into(),
                pos: None,
            };
            let parse_num = |s: &str| -> PResult<u32> {
                let v: u128 = s.bytes().fold(0u128, |acc, d| {
                    (acc * 10 + (d - b'0') as u128).min(u128::MAX / 100)
                });
                if v >= MAXREPEAT as u128 {
                    Err(too_large())
                } else {
                    Ok(v as u32)
                }
            };
            let min = if lo.is_empty() { 0 } else { parse_num(&lo)? };
            let max = if hi.is_empty() {
                MAXREPEAT
            } else {
                let max = parse_num(&hi)?;
                if max < min {
                    return Err(
                        source.error("min repeat greater than max repeat", source.tell() - here)
                    );
                }
                max
            };
            (min, max)
        }
    };
    let repeat_error = |source: &Source, msg: &str| source.error(msg, source.tell() - here + 1);
    let Some(last) = seq.pop() else {
        return Err(repeat_error(source, "nothing to repeat"));
    };
    let body = match last {
        Item::At(_) => return Err(repeat_error(source, "nothing to repeat")),
        Item::Repeat { .. } => return Err(repeat_error(source, "multiple repeat")),
        Item::Group {
            group: None,
            add: 0,
            del: 0,
            body,
        } => body,
        other => vec![other],
    };
    let kind = if source.matches('?')? {
        RepeatKind::Lazy
    } else if source.matches('+')? {
        RepeatKind::Possessive
    } else {
        RepeatKind::Greedy
    };
    seq.push(Item::Repeat {
        kind,
        min,
        max,
        body,
    });
    Ok(())
}

/// Parses what follows `(`; `None` for items that add nothing (comments,
/// global flags, handled back-references are returned as items).
fn parse_paren(
    source: &mut Source,
    state: &mut State,
    verbose: &mut bool,
    nested: usize,
    first: bool,
    seq: &Seq,
) -> PResult<Option<Item>> {
    let start = source.tell() - 1;
    let mut capture = true;
    let mut atomic = false;
    let mut name: Option<String> = None;
    let (mut add, mut del) = (0, 0);
    let unterminated =
        |source: &Source| source.error("missing ), unterminated subpattern", source.tell() - start);
    if source.matches('?')? {
        let Some(char) = source.get()? else {
            return Err(source.error("unexpected end of pattern", 0));
        };
        if char.is('P') {
            if source.matches('<')? {
                let n = source.getuntil('>', "group name")?;
                source.checkgroupname(&n, 1)?;
                name = Some(n);
            } else if source.matches('=')? {
                let n = source.getuntil(')', "group name")?;
                source.checkgroupname(&n, 1)?;
                let off = n.chars().count() + 1;
                let Some(gid) = state.group_of(&n) else {
                    return Err(source.error(format!("unknown group name {}", str_repr(&n)), off));
                };
                if !state.checkgroup(gid) {
                    return Err(source.error("cannot refer to an open group", off));
                }
                state.check_lookbehind_group(gid, source)?;
                return Ok(Some(Item::GroupRef(gid)));
            } else {
                let Some(c) = source.get()? else {
                    return Err(source.error("unexpected end of pattern", 0));
                };
                return Err(source.error(format!("unknown extension ?P{}", c.text()), c.len() + 2));
            }
        } else if char.is(':') {
            capture = false;
        } else if char.is('#') {
            loop {
                if source.next.is_none() {
                    return Err(
                        source.error("missing ), unterminated comment", source.tell() - start)
                    );
                }
                if matches!(source.get()?, Some(t) if t.is(')')) {
                    break;
                }
            }
            return Ok(None);
        } else if char.is('=') || char.is('!') || char.is('<') {
            let mut kind = char;
            let mut behind = false;
            let mut outer_lookbehind = None;
            if char.is('<') {
                let Some(c) = source.get()? else {
                    return Err(source.error("unexpected end of pattern", 0));
                };
                if !(c.is('=') || c.is('!')) {
                    return Err(
                        source.error(format!("unknown extension ?<{}", c.text()), c.len() + 2)
                    );
                }
                kind = c;
                behind = true;
                outer_lookbehind = Some(state.lookbehind_groups);
                if state.lookbehind_groups.is_none() {
                    state.lookbehind_groups = Some(state.groups());
                }
            }
            let body = parse_sub(source, state, *verbose, nested + 1)?;
            if let Some(None) = outer_lookbehind {
                state.lookbehind_groups = None;
            }
            if !source.matches(')')? {
                return Err(unterminated(source));
            }
            return Ok(Some(Item::Assert {
                behind,
                negate: kind.is('!'),
                body,
            }));
        } else if char.is('(') {
            return parse_conditional(source, state, *verbose, nested, start).map(Some);
        } else if char.is('>') {
            capture = false;
            atomic = true;
        } else if is_flag(Some(char)) || char.is('-') {
            match parse_flags(source, state, char)? {
                None => {
                    if !first || !seq.is_empty() {
                        return Err(source.error(
                            "global flags not at the start of the expression",
                            source.tell() - start,
                        ));
                    }
                    *verbose = state.flags & VERBOSE != 0;
                    return Ok(None);
                }
                Some((a, d)) => {
                    add = a;
                    del = d;
                    capture = false;
                }
            }
        } else {
            return Err(source.error(
                format!("unknown extension ?{}", char.text()),
                char.len() + 1,
            ));
        }
    }
    let group = if capture {
        let gid = state.groups();
        state.widths.push(None);
        if let Some(n) = &name {
            if let Some(ogid) = state.group_of(n) {
                return Err(source.error(
                    format!(
                        "redefinition of group name {} as group {gid}; was group {ogid}",
                        str_repr(n)
                    ),
                    n.chars().count() + 1,
                ));
            }
            state.names.push((n.clone(), gid));
        }
        Some(gid)
    } else {
        None
    };
    let sub_verbose = (*verbose || add & VERBOSE != 0) && del & VERBOSE == 0;
    let body = parse_sub(source, state, sub_verbose, nested + 1)?;
    if !source.matches(')')? {
        return Err(unterminated(source));
    }
    if let Some(g) = group {
        let widths = state.resolved_widths();
        state.widths[g] = Some(width(&body, &widths));
    }
    Ok(Some(if atomic {
        Item::Atomic(body)
    } else {
        Item::Group {
            group,
            add,
            del,
            body,
        }
    }))
}

fn parse_conditional(
    source: &mut Source,
    state: &mut State,
    verbose: bool,
    nested: usize,
    start: usize,
) -> PResult<Item> {
    let condname = source.getuntil(')', "group name")?;
    let off = condname.chars().count() + 1;
    let group = if is_identifier(&condname) {
        match state.group_of(&condname) {
            Some(g) => g,
            None => {
                return Err(
                    source.error(format!("unknown group name {}", str_repr(&condname)), off)
                );
            }
        }
    } else {
        let bad = || {
            source.error(
                format!("bad character in group name {}", str_repr(&condname)),
                off,
            )
        };
        let g = match py_int(&condname) {
            Some((false, v)) => v,
            Some((true, 0)) => 0,
            _ => return Err(bad()),
        };
        if g == 0 {
            return Err(source.error("bad group number", off));
        }
        if g >= MAXGROUPS {
            return Err(source.error(format!("invalid group reference {g}"), off));
        }
        if !state.groupref_pos.iter().any(|&(k, _)| k == g) {
            state.groupref_pos.push((g, source.tell() - off));
        }
        g as usize
    };
    state.check_lookbehind_group(group, source)?;
    let closed = state.checkgroup(group);
    let yes = parse_seq(source, state, verbose, nested + 1, false)?;
    let no = if source.matches('|')? {
        let no = parse_seq(source, state, verbose, nested + 1, false)?;
        if matches!(source.next, Some(t) if t.is('|')) {
            return Err(source.error("conditional backref with more than two branches", 0));
        }
        Some(no)
    } else {
        None
    };
    if !source.matches(')')? {
        return Err(source.error("missing ), unterminated subpattern", source.tell() - start));
    }
    Ok(Item::GroupRefExists {
        group,
        closed,
        yes,
        no,
    })
}

/// Python's `int(s)` for a decimal string: (negative, magnitude), the
/// magnitude saturated; `None` where `int` raises.
fn py_int(s: &str) -> Option<(bool, u128)> {
    let is_space = |c: char| {
        let cp = c as u32;
        tables::SPACE.iter().any(|&(a, b)| a <= cp && cp <= b)
    };
    let t = s.trim_matches(is_space);
    let (neg, digits) = match t.chars().next()? {
        '-' => (true, &t[1..]),
        '+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut value: u128 = 0;
    let mut prev_digit = false;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return None;
            }
            prev_digit = false;
            continue;
        }
        let d = decimal_value(c)?;
        value = (value * 10 + d as u128).min(u128::MAX / 100);
        prev_digit = true;
        any = true;
    }
    (any && prev_digit).then_some((neg, value))
}

fn decimal_value(c: char) -> Option<u32> {
    let cp = c as u32;
    tables::DIGIT
        .iter()
        .find(|&&(a, b)| a <= cp && cp <= b)
        .map(|&(a, _)| (cp - a) % 10)
}

/// `_parse_flags`: `None` for a global flag group `(?flags)`, else the
/// scoped flags turned on and off.
fn parse_flags(source: &mut Source, state: &mut State, first: Tok) -> PResult<Option<(u32, u32)>> {
    let mut add = 0u32;
    let mut del = 0u32;
    let mut char = first;
    if !char.is('-') {
        loop {
            let flag = flag_bit(char.c);
            if char.c == 'L' {
                return Err(source.error(
                    "bad inline flags: cannot use 'L' flag with a str pattern",
                    0,
                ));
            }
            add |= flag;
            if flag & TYPE_FLAGS != 0 && add & TYPE_FLAGS != flag {
                return Err(source.error(
                    "bad inline flags: flags 'a', 'u' and 'L' are incompatible",
                    0,
                ));
            }
            let Some(c) = source.get()? else {
                return Err(source.error("missing -, : or )", 0));
            };
            char = c;
            if Tok::is_in(Some(c), ")-:") {
                break;
            }
            if !is_flag(Some(c)) {
                let msg = if !c.esc && c.c.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing -, : or )"
                };
                return Err(source.error(msg, c.len()));
            }
        }
    }
    if char.is(')') {
        state.flags |= add;
        return Ok(None);
    }
    if add & GLOBAL_FLAGS != 0 {
        return Err(source.error("bad inline flags: cannot turn on global flag", 1));
    }
    if char.is('-') {
        let Some(c) = source.get()? else {
            return Err(source.error("missing flag", 0));
        };
        if !is_flag(Some(c)) {
            let msg = if !c.esc && c.c.is_alphabetic() {
                "unknown flag"
            } else {
                "missing flag"
            };
            return Err(source.error(msg, c.len()));
        }
        char = c;
        loop {
            let flag = flag_bit(char.c);
            if flag & TYPE_FLAGS != 0 {
                return Err(source.error(
                    "bad inline flags: cannot turn off flags 'a', 'u' and 'L'",
                    0,
                ));
            }
            del |= flag;
            let Some(c) = source.get()? else {
                return Err(source.error("missing :", 0));
            };
            if c.is(':') {
                break;
            }
            if !is_flag(Some(c)) {
                let msg = if !c.esc && c.c.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing :"
                };
                return Err(source.error(msg, c.len()));
            }
            char = c;
        }
    }
    if del & GLOBAL_FLAGS != 0 {
        return Err(source.error("bad inline flags: cannot turn off global flag", 1));
    }
    if add & del != 0 {
        return Err(source.error("bad inline flags: flag turned on and off", 1));
    }
    Ok(Some((add, del)))
}

/// What a class escape stands for.
#[derive(Clone, Copy)]
enum ClassCode {
    Lit(u32),
    Cat(Category),
}

impl ClassCode {
    fn item(self) -> ClassItem {
        match self {
            ClassCode::Lit(c) => ClassItem::Lit(c),
            ClassCode::Cat(c) => ClassItem::Cat(c),
        }
    }
}

fn simple_escape(c: char) -> Option<u32> {
    Some(match c {
        'a' => 7,
        'b' => 8,
        'f' => 12,
        'n' => 10,
        'r' => 13,
        't' => 9,
        'v' => 11,
        '\\' => 92,
        _ => return None,
    })
}

fn category(c: char) -> Option<Category> {
    Some(match c {
        'd' => Category::Digit,
        'D' => Category::NotDigit,
        's' => Category::Space,
        'S' => Category::NotSpace,
        'w' => Category::Word,
        'W' => Category::NotWord,
        _ => return None,
    })
}

fn bad_escape(source: &Source, text: &str) -> ParseError {
    source.error(format!("bad escape {text}"), text.chars().count())
}

/// The escapes shared by classes and the pattern body: `\x \u \U \N{}`.
/// `Ok(None)` when `tok` is none of them.
fn unicode_escape(source: &mut Source, tok: Tok) -> PResult<Option<u32>> {
    let digits = match tok.c {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        'N' => {
            if !source.matches('{')? {
                return Err(source.error("missing {", 0));
            }
            let name = source.getuntil('}', "character name")?;
            return match unicode_names2::character(&name).map(|c| c as u32) {
                Some(c) => Ok(Some(c)),
                None => Err(source.error(
                    format!("undefined character name {}", str_repr(&name)),
                    name.chars().count() + 4,
                )),
            };
        }
        _ => return Ok(None),
    };
    let hex = source.getwhile(digits, HEXDIGITS)?;
    let text = format!("\\{}{}", tok.c, hex);
    if hex.len() != digits {
        return Err(source.error(format!("incomplete escape {text}"), text.len()));
    }
    let value = u32::from_str_radix(&hex, 16).unwrap_or(u32::MAX);
    if value > super::charset::MAX_CHAR {
        return Err(bad_escape(source, &text));
    }
    Ok(Some(value))
}

fn class_escape(source: &mut Source, tok: Tok) -> PResult<ClassCode> {
    if let Some(v) = simple_escape(tok.c) {
        return Ok(ClassCode::Lit(v));
    }
    if let Some(cat) = category(tok.c) {
        return Ok(ClassCode::Cat(cat));
    }
    if let Some(v) = unicode_escape(source, tok)? {
        return Ok(ClassCode::Lit(v));
    }
    if OCTDIGITS.contains(tok.c) {
        let more = source.getwhile(2, OCTDIGITS)?;
        let text = format!("\\{}{}", tok.c, more);
        let v = u32::from_str_radix(&text[1..], 8).unwrap_or(0);
        if v > 0o377 {
            return Err(source.error(
                format!("octal escape value {text} outside of range 0-0o377"),
                text.len(),
            ));
        }
        return Ok(ClassCode::Lit(v));
    }
    if tok.c.is_ascii_alphanumeric() {
        return Err(bad_escape(source, &tok.text()));
    }
    Ok(ClassCode::Lit(tok.c as u32))
}

fn escape(source: &mut Source, tok: Tok, state: &State) -> PResult<Item> {
    let at = match tok.c {
        'A' => Some(At::BeginningString),
        'b' => Some(At::Boundary),
        'B' => Some(At::NonBoundary),
        'Z' => Some(At::EndString),
        _ => None,
    };
    if let Some(at) = at {
        return Ok(Item::At(at));
    }
    if let Some(cat) = category(tok.c) {
        return Ok(Item::In {
            negate: false,
            items: vec![ClassItem::Cat(cat)],
        });
    }
    if let Some(v) = simple_escape(tok.c) {
        return Ok(Item::Literal(v));
    }
    if let Some(v) = unicode_escape(source, tok)? {
        return Ok(Item::Literal(v));
    }
    if tok.c == '0' {
        let more = source.getwhile(2, OCTDIGITS)?;
        return Ok(Item::Literal(
            u32::from_str_radix(&format!("0{more}"), 8).unwrap_or(0),
        ));
    }
    if tok.c.is_ascii_digit() {
        let mut text = format!("\\{}", tok.c);
        if Tok::is_in(source.next, DIGITS) {
            let d2 = source.get()?.map_or('0', |t| t.c);
            text.push(d2);
            if OCTDIGITS.contains(tok.c)
                && OCTDIGITS.contains(d2)
                && Tok::is_in(source.next, OCTDIGITS)
            {
                let d3 = source.get()?.map_or('0', |t| t.c);
                text.push(d3);
                let v = u32::from_str_radix(&text[1..], 8).unwrap_or(0);
                if v > 0o377 {
                    return Err(source.error(
                        format!("octal escape value {text} outside of range 0-0o377"),
                        text.len(),
                    ));
                }
                return Ok(Item::Literal(v));
            }
        }
        let group: usize = text[1..].parse().unwrap_or(0);
        if group < state.groups() {
            if !state.checkgroup(group) {
                return Err(source.error("cannot refer to an open group", text.len()));
            }
            state.check_lookbehind_group(group, source)?;
            return Ok(Item::GroupRef(group));
        }
        return Err(source.error(format!("invalid group reference {group}"), text.len() - 1));
    }
    if tok.c.is_ascii_alphabetic() {
        return Err(bad_escape(source, &tok.text()));
    }
    Ok(Item::Literal(tok.c as u32))
}
