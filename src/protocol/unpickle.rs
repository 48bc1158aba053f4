//! Reading Python pickles (protocols 0 to 5) without executing anything.
//!
//! The pickle machine is run on an arena of plain data objects: opcodes that
//! would import a module or call a function (`GLOBAL`, `STACK_GLOBAL`,
//! `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, `EXT*`,
//! persistent ids, out-of-band buffers) never do.  A few global names are
//! *interpreted* as data constructors, because ordinary values are spelled
//! with them: `set` and `frozenset` in protocols 0 to 3 (read as a set),
//! and `str(text)`, which is how fail2ban's server writes IP addresses
//! (`IPAddr.__reduce__`).  Any
//! other global is refused in a request; in a reply (written by a server, to
//! carry exception instances) it becomes an opaque [`Obj::Instance`] that
//! remembers its class name and arguments.
//!
//! Memo references are kept as references (a list memoized before it is
//! filled is seen filled through a later `GET`), and the final conversion to
//! a tree refuses cycles, nesting deeper than [`MAX_DEPTH`] and expansions of
//! shared objects beyond a budget proportional to the input, so that no input
//! can make the decoder allocate without bound.  Errors carry Python's
//! message where Python has one (`Ran out of input`, `pickle data was
//! truncated`, `invalid load key, 'x'.` ...).
//!
//! [`PyValue`] has no `bytes` type: bytes are parsed (so that the error is
//! precise) but refused when the value is built.  Python's own clients
//! never send bytes (they convert unknown argument types to `str`).

use super::PyException;
use crate::pyvalue::PyValue;
use std::collections::HashMap;
use std::fmt;

/// Deepest container nesting accepted.
pub const MAX_DEPTH: usize = 200;

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError(pub String);

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PickleError {}

fn err<T>(msg: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(msg.into()))
}

/// Who wrote the pickle: a client (no class references allowed) or a
/// server (exception instances allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Request,
    Reply,
}

type Id = usize;

/// An object of the pickle machine.
#[derive(Debug, Clone)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Keyed),
    Set(Keyed),
    FrozenSet(Keyed),
    /// A class or function reference (`module.name`), never resolved.
    Global(String, String),
    /// `Global(args)`: an instance of a class the decoder does not know.
    Instance {
        module: String,
        name: String,
        args: Id,
    },
}

/// The entries of a dict or set, in insertion order, with an index by key
/// hash so that equal keys replace each other as in Python.
#[derive(Debug, Clone, Default)]
pub struct Keyed {
    entries: Vec<(Id, Id)>,
    index: HashMap<u64, Vec<usize>>,
}

/// The decoded object graph and its root.
pub struct Decoded {
    arena: Vec<Obj>,
    pub root: Id,
}

/// Decodes one pickle from the start of `data` (bytes after its `STOP` are
/// ignored, as Python does).
pub fn decode(data: &[u8], source: Source) -> Result<Decoded, PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        metastack: Vec::new(),
        memo: HashMap::new(),
        proto: 0,
        source,
    };
    let root = m.run()?;
    Ok(Decoded {
        arena: m.arena,
        root,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Obj>,
    stack: Vec<Id>,
    metastack: Vec<Vec<Id>>,
    memo: HashMap<u64, Id>,
    proto: u8,
    source: Source,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return err("pickle data was truncated");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length that must fit in the remaining input.
    fn len(&mut self, n: u64) -> Result<usize, PickleError> {
        if n > (self.data.len() - self.pos) as u64 {
            return err("pickle data was truncated");
        }
        Ok(n as usize)
    }

    /// A text argument ending with `\n` (protocol 0 opcodes).
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos..];
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => err("pickle data was truncated"),
        }
    }

    fn line_str(&mut self) -> Result<&'a str, PickleError> {
        let l = self.line()?;
        std::str::from_utf8(l).or_else(|_| err("could not decode text argument"))
    }

    fn push(&mut self, o: Obj) {
        self.arena.push(o);
        self.stack.push(self.arena.len() - 1);
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        self.stack
            .pop()
            .map_or_else(|| err("unpickling stack underflow"), Ok)
    }

    fn top(&self) -> Result<Id, PickleError> {
        self.stack
            .last()
            .copied()
            .map_or_else(|| err("unpickling stack underflow"), Ok)
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let prev = self
            .metastack
            .pop()
            .map_or_else(|| err("could not find MARK"), Ok)?;
        Ok(std::mem::replace(&mut self.stack, prev))
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), PickleError> {
        match self.memo.get(&idx) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => err(format!("Memo value not found at index {idx}")),
        }
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(idx, id);
        Ok(())
    }

    fn forbidden(&self, what: &str) -> Result<(), PickleError> {
        if self.source == Source::Request {
            return err(format!("{what} is not allowed in a request"));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Id, PickleError> {
        loop {
            if self.pos >= self.data.len() {
                return err("Ran out of input");
            }
            let op = self.data[self.pos];
            self.pos += 1;
            match op {
                b'.' => {
                    // STOP
                    return match self.stack.pop() {
                        Some(id) => Ok(id),
                        None if !self.metastack.is_empty() => err("unexpected MARK found"),
                        None => err("unpickling stack underflow"),
                    };
                }
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if p > 5 {
                        return err(format!("unsupported pickle protocol: {p}"));
                    }
                    self.proto = p;
                }
                0x95 => {
                    // FRAME: only checks that the frame is there.
                    let n = self.u64()?;
                    self.len(n)?;
                }
                b'(' => {
                    let cur = std::mem::take(&mut self.stack);
                    self.metastack.push(cur);
                }
                b'0' => {
                    // POP
                    if self.stack.pop().is_none() {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(id);
                }
                b'N' => self.push(Obj::None),
                0x88 => self.push(Obj::Bool(true)),
                0x89 => self.push(Obj::Bool(false)),
                b'I' => {
                    let t = self.line_str()?;
                    let o = match t {
                        "01" => Obj::Bool(true),
                        "00" => Obj::Bool(false),
                        _ => Obj::Int(parse_int(t)?),
                    };
                    self.push(o);
                }
                b'L' => {
                    let t = self.line_str()?;
                    let t = t.strip_suffix('L').unwrap_or(t);
                    let v = parse_int(t)?;
                    self.push(Obj::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Obj::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Obj::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Obj::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push(Obj::Int(decode_long(b)?));
                }
                0x8b => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return err("LONG pickle has negative byte count");
                    }
                    let n = self.len(n as u64)?;
                    let b = self.take(n)?;
                    self.push(Obj::Int(decode_long(b)?));
                }
                b'F' => {
                    let t = self.line_str()?;
                    let v = parse_float(t)?;
                    self.push(Obj::Float(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Obj::Float(f64::from_be_bytes(a)));
                }
                b'S' => {
                    let l = self.line()?;
                    let raw = unquote_string(l)?;
                    let s = ascii_text(&raw)?;
                    self.push(Obj::Str(s));
                }
                b'T' => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return err("BINSTRING pickle has negative byte count");
                    }
                    let n = self.len(n as u64)?;
                    let s = ascii_text(self.take(n)?)?;
                    self.push(Obj::Str(s));
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = ascii_text(self.take(n)?)?;
                    self.push(Obj::Str(s));
                }
                b'V' => {
                    let l = self.line()?;
                    let s = raw_unicode_escape(l)?;
                    self.push(Obj::Str(s));
                }
                b'X' => {
                    let n = self.u32()? as u64;
                    let n = self.len(n)?;
                    let s = utf8_text(self.take(n)?)?;
                    self.push(Obj::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = utf8_text(self.take(n)?)?;
                    self.push(Obj::Str(s));
                }
                0x8d => {
                    let n = self.u64()?;
                    let n = self.len(n)?;
                    let s = utf8_text(self.take(n)?)?;
                    self.push(Obj::Str(s));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(b));
                }
                b'B' => {
                    let n = self.u32()? as u64;
                    let n = self.len(n)?;
                    let b = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(b));
                }
                0x8e => {
                    let n = self.u64()?;
                    let n = self.len(n)?;
                    let b = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(b));
                }
                b']' => self.push(Obj::List(Vec::new())),
                b'}' => self.push(Obj::Dict(Keyed::default())),
                b')' => self.push(Obj::Tuple(Vec::new())),
                0x8f => self.push(Obj::Set(Keyed::default())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return err("unpickling stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Obj::Tuple(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return err("odd number of items for DICT");
                    }
                    let mut keyed = Keyed::default();
                    for kv in items.chunks(2) {
                        self.keyed_insert(&mut keyed, kv[0], kv[1])?;
                    }
                    self.push(Obj::Dict(keyed));
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let mut keyed = Keyed::default();
                    for it in items {
                        self.keyed_insert(&mut keyed, it, it)?;
                    }
                    self.push(Obj::FrozenSet(keyed));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend_list(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend_list(list, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.dict_set(d, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return err("odd number of items for SETITEMS");
                    }
                    let d = self.top()?;
                    self.dict_set(d, items)?;
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let s = self.top()?;
                    self.set_add(s, items)?;
                }
                b'g' => {
                    let t = self.line_str()?;
                    let idx = parse_index(t)?;
                    self.memo_get(idx)?;
                }
                b'h' => {
                    let idx = self.u8()? as u64;
                    self.memo_get(idx)?;
                }
                b'j' => {
                    let idx = self.u32()? as u64;
                    self.memo_get(idx)?;
                }
                b'p' => {
                    let t = self.line_str()?;
                    let idx = parse_index(t)?;
                    self.memo_put(idx)?;
                }
                b'q' => {
                    let idx = self.u8()? as u64;
                    self.memo_put(idx)?;
                }
                b'r' => {
                    let idx = self.u32()? as u64;
                    self.memo_put(idx)?;
                }
                0x94 => {
                    let idx = self.memo.len() as u64;
                    self.memo_put(idx)?;
                }
                b'c' => {
                    let module = self.line_str()?.to_string();
                    let name = self.line_str()?.to_string();
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&self.arena[module], &self.arena[name]) {
                        (Obj::Str(m), Obj::Str(n)) => {
                            let (m, n) = (m.clone(), n.clone());
                            self.global(m, n)?;
                        }
                        _ => return err("STACK_GLOBAL requires str"),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let o = self.reduce(func, args)?;
                    self.push(o);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    self.forbidden("NEWOBJ")?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let o = self.instance(cls, args)?;
                    self.push(o);
                }
                0x92 => {
                    // NEWOBJ_EX: keyword arguments are dropped.
                    self.forbidden("NEWOBJ_EX")?;
                    self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let o = self.instance(cls, args)?;
                    self.push(o);
                }
                b'b' => {
                    // BUILD: the state of an opaque instance is not kept.
                    self.forbidden("BUILD")?;
                    self.pop()?;
                    let inst = self.top()?;
                    if !matches!(self.arena[inst], Obj::Instance { .. }) {
                        return err("BUILD on a value that is not an instance");
                    }
                }
                b'i' => {
                    self.forbidden("INST")?;
                    let module = self.line_str()?.to_string();
                    let name = self.line_str()?.to_string();
                    let items = self.pop_mark()?;
                    self.arena.push(Obj::Global(module, name));
                    let cls = self.arena.len() - 1;
                    self.arena.push(Obj::Tuple(items));
                    let args = self.arena.len() - 1;
                    let o = self.instance(cls, args)?;
                    self.push(o);
                }
                b'o' => {
                    self.forbidden("OBJ")?;
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return err("unpickling stack underflow");
                    }
                    let cls = items.remove(0);
                    self.arena.push(Obj::Tuple(items));
                    let args = self.arena.len() - 1;
                    let o = self.instance(cls, args)?;
                    self.push(o);
                }
                b'P' | b'Q' => return err("A load persistent id instruction was encountered"),
                0x82..=0x84 => return err("extension codes are not supported"),
                0x96..=0x98 => return err("out-of-band buffers and bytearrays are not supported"),
                _ => {
                    let c = op as char;
                    return if (0x20..0x7f).contains(&op) {
                        err(format!("invalid load key, '{c}'."))
                    } else {
                        err(format!("invalid load key, '\\x{op:02x}'."))
                    };
                }
            }
        }
    }

    fn extend_list(&mut self, list: Id, items: Vec<Id>) -> Result<(), PickleError> {
        match &mut self.arena[list] {
            Obj::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => err("APPEND to a value that is not a list"),
        }
    }

    fn dict_set(&mut self, d: Id, items: Vec<Id>) -> Result<(), PickleError> {
        let mut keyed = match &mut self.arena[d] {
            Obj::Dict(k) => std::mem::take(k),
            _ => return err("SETITEM on a value that is not a dict"),
        };
        let res = items
            .chunks(2)
            .try_for_each(|kv| self.keyed_insert(&mut keyed, kv[0], kv[1]));
        self.arena[d] = Obj::Dict(keyed);
        res
    }

    fn set_add(&mut self, s: Id, items: Vec<Id>) -> Result<(), PickleError> {
        let mut keyed = match &mut self.arena[s] {
            Obj::Set(k) => std::mem::take(k),
            _ => return err("ADDITEMS on a value that is not a set"),
        };
        let res = items
            .into_iter()
            .try_for_each(|it| self.keyed_insert(&mut keyed, it, it));
        self.arena[s] = Obj::Set(keyed);
        res
    }

    /// Python's `d[key] = value` (for sets `value == key`): an equal key
    /// keeps its place and its first spelling, the value is replaced.
    fn keyed_insert(&self, keyed: &mut Keyed, key: Id, value: Id) -> Result<(), PickleError> {
        let h = self.hash(key, 0)?;
        let slots = keyed.index.entry(h).or_default();
        for &i in slots.iter() {
            if self.py_eq(keyed.entries[i].0, key, 0) {
                keyed.entries[i].1 = value;
                return Ok(());
            }
        }
        slots.push(keyed.entries.len());
        keyed.entries.push((key, value));
        Ok(())
    }

    /// A hash consistent with [`Machine::py_eq`] (equal numbers of
    /// different types hash alike); unhashable types are Python's error.
    fn hash(&self, id: Id, depth: usize) -> Result<u64, PickleError> {
        use std::hash::{Hash, Hasher};
        if depth > MAX_DEPTH {
            return err("maximum recursion depth exceeded");
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match &self.arena[id] {
            Obj::None => 0u8.hash(&mut h),
            Obj::Bool(b) => (1u8, *b as i64).hash(&mut h),
            Obj::Int(i) => (1u8, *i).hash(&mut h),
            Obj::Float(f) => {
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    (1u8, *f as i64).hash(&mut h)
                } else {
                    (2u8, f.to_bits()).hash(&mut h)
                }
            }
            Obj::Str(s) => (3u8, s).hash(&mut h),
            Obj::Bytes(b) => (4u8, b).hash(&mut h),
            Obj::Tuple(items) => {
                5u8.hash(&mut h);
                for &i in items {
                    self.hash(i, depth + 1)?.hash(&mut h);
                }
            }
            Obj::FrozenSet(k) => {
                let mut acc = 0u64;
                for &(i, _) in &k.entries {
                    acc = acc.wrapping_add(self.hash(i, depth + 1)?);
                }
                (6u8, acc).hash(&mut h);
            }
            Obj::Global(m, n) => (7u8, m, n).hash(&mut h),
            Obj::List(_) => return err("unhashable type: 'list'"),
            Obj::Dict(_) => return err("unhashable type: 'dict'"),
            Obj::Set(_) => return err("unhashable type: 'set'"),
            Obj::Instance { .. } => return err("instances cannot be keys"),
        }
        Ok(h.finish())
    }

    /// Python `==` between hashable values.
    fn py_eq(&self, a: Id, b: Id, depth: usize) -> bool {
        if a == b {
            return true;
        }
        if depth > MAX_DEPTH {
            return false;
        }
        let num = |o: &Obj| match o {
            Obj::Bool(b) => Some(*b as i64 as f64),
            Obj::Int(i) => Some(*i as f64),
            Obj::Float(f) => Some(*f),
            _ => None,
        };
        match (&self.arena[a], &self.arena[b]) {
            (Obj::Int(x), Obj::Int(y)) => x == y,
            (Obj::Bool(x), Obj::Int(y)) | (Obj::Int(y), Obj::Bool(x)) => *x as i64 == *y,
            (Obj::None, Obj::None) => true,
            (Obj::Str(x), Obj::Str(y)) => x == y,
            (Obj::Bytes(x), Obj::Bytes(y)) => x == y,
            (Obj::Tuple(x), Obj::Tuple(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(&p, &q)| self.py_eq(p, q, depth + 1))
            }
            (Obj::FrozenSet(x), Obj::FrozenSet(y)) => {
                x.entries.len() == y.entries.len()
                    && x.entries
                        .iter()
                        .all(|&(p, _)| y.entries.iter().any(|&(q, _)| self.py_eq(p, q, depth + 1)))
            }
            (Obj::Global(m1, n1), Obj::Global(m2, n2)) => m1 == m2 && n1 == n2,
            (x, y) => matches!((num(x), num(y)), (Some(p), Some(q)) if p == q),
        }
    }

    /// `GLOBAL`/`STACK_GLOBAL`: a class reference, refused in requests
    /// unless it is one of the data constructors.
    fn global(&mut self, module: String, name: String) -> Result<(), PickleError> {
        // Python 2 names, mapped as Python 3 maps them for protocols < 3.
        let (module, name) = match (module.as_str(), name.as_str()) {
            ("__builtin__", "unicode") if self.proto < 3 => {
                ("builtins".to_string(), "str".to_string())
            }
            ("__builtin__" | "exceptions", _) if self.proto < 3 => ("builtins".to_string(), name),
            _ => (module, name),
        };
        if self.source == Source::Request && constructor(&module, &name).is_none() {
            return err(format!(
                "global '{module}.{name}' is not allowed in a request"
            ));
        }
        self.push(Obj::Global(module, name));
        Ok(())
    }

    fn reduce(&mut self, func: Id, args: Id) -> Result<Obj, PickleError> {
        let Obj::Global(module, name) = &self.arena[func] else {
            return err("REDUCE of a value that is not a class");
        };
        let Obj::Tuple(argv) = &self.arena[args] else {
            return err("REDUCE arguments must be a tuple");
        };
        let Some(ctor) = constructor(module, name) else {
            return self.instance(func, args);
        };
        let argv = argv.clone();
        match (ctor, argv.as_slice()) {
            (Ctor::Set | Ctor::FrozenSet, []) => Ok(self.new_set(ctor, Vec::new())?),
            (Ctor::Set | Ctor::FrozenSet, [it]) => {
                let items = match &self.arena[*it] {
                    Obj::List(v) | Obj::Tuple(v) => v.clone(),
                    Obj::Set(k) | Obj::FrozenSet(k) => k.entries.iter().map(|e| e.0).collect(),
                    _ => return err(format!("{name}() argument must be a list")),
                };
                self.new_set(ctor, items)
            }
            (Ctor::Str, []) => Ok(Obj::Str(String::new())),
            (Ctor::Str, [text]) => match &self.arena[*text] {
                Obj::Str(t) => Ok(Obj::Str(t.clone())),
                _ => err("str() is only read with a str argument"),
            },
            _ => err(format!("unexpected arguments for {module}.{name}")),
        }
    }

    fn new_set(&self, ctor: Ctor, items: Vec<Id>) -> Result<Obj, PickleError> {
        let mut keyed = Keyed::default();
        for it in items {
            self.keyed_insert(&mut keyed, it, it)?;
        }
        Ok(if ctor == Ctor::Set {
            Obj::Set(keyed)
        } else {
            Obj::FrozenSet(keyed)
        })
    }

    /// An opaque instance of a class reference (replies only).
    fn instance(&mut self, cls: Id, args: Id) -> Result<Obj, PickleError> {
        self.forbidden("an object instance")?;
        let Obj::Global(module, name) = &self.arena[cls] else {
            return err("instance of a value that is not a class");
        };
        if !matches!(self.arena[args], Obj::Tuple(_)) {
            return err("instance arguments must be a tuple");
        }
        Ok(Obj::Instance {
            module: module.clone(),
            name: name.clone(),
            args,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctor {
    Set,
    FrozenSet,
    Str,
}

/// The global names read as data constructors.
fn constructor(module: &str, name: &str) -> Option<Ctor> {
    match (module, name) {
        ("builtins", "set") => Some(Ctor::Set),
        ("builtins", "frozenset") => Some(Ctor::FrozenSet),
        ("builtins", "str") => Some(Ctor::Str),
        _ => None,
    }
}

fn parse_int(t: &str) -> Result<i64, PickleError> {
    let t = t.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err("could not convert string to int");
    }
    t.parse()
        .or_else(|_| err("integer out of the supported range (64 bits)"))
}

fn parse_index(t: &str) -> Result<u64, PickleError> {
    t.trim()
        .parse()
        .or_else(|_| err("memo key must be an integer"))
}

fn parse_float(t: &str) -> Result<f64, PickleError> {
    let s = t.trim();
    match s.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => return Ok(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(v) if ok => Ok(v),
        _ => err(format!(
            "could not convert string to float: {}",
            crate::pyvalue::str_repr(s)
        )),
    }
}

/// A little-endian two's complement integer (LONG1/LONG4).
fn decode_long(b: &[u8]) -> Result<i64, PickleError> {
    if b.is_empty() {
        return Ok(0);
    }
    let neg = b[b.len() - 1] & 0x80 != 0;
    // Drop redundant sign bytes, then the rest must fit in 8 bytes.
    let mut n = b.len();
    let fill = if neg { 0xff } else { 0x00 };
    while n > 1 && b[n - 1] == fill && (b[n - 2] & 0x80 != 0) == neg {
        n -= 1;
    }
    if n > 8 {
        return err("integer out of the supported range (64 bits)");
    }
    let mut a = [fill; 8];
    a[..n].copy_from_slice(&b[..n]);
    Ok(i64::from_le_bytes(a))
}

fn utf8_text(b: &[u8]) -> Result<String, PickleError> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => err(format!(
            "'utf-8' codec can't decode byte 0x{:02x} in position {}: invalid utf-8",
            b[e.valid_up_to()],
            e.valid_up_to()
        )),
    }
}

/// Python 3 reads protocol 0-2 byte strings as ASCII text.
fn ascii_text(b: &[u8]) -> Result<String, PickleError> {
    match b.iter().position(|c| !c.is_ascii()) {
        None => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(i) => err(format!(
            "'ascii' codec can't decode byte 0x{:02x} in position {i}: ordinal not in range(128)",
            b[i]
        )),
    }
}

/// The quoted, backslash-escaped argument of `STRING`.
fn unquote_string(l: &[u8]) -> Result<Vec<u8>, PickleError> {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    let inner = match l {
        [q, inner @ .., e] if (*q == b'\'' || *q == b'"') && q == e => inner,
        _ => return err("the STRING opcode argument must be quoted"),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = inner.get(i) else {
            return err("\\ at end of string");
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hex = inner
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => return err(format!("invalid \\x escape at position {}", i - 2)),
                }
            }
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < inner.len() && (b'0'..=b'7').contains(&inner[i]) {
                    v = v * 8 + (inner[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Python's `raw-unicode-escape` codec (the `UNICODE` opcode): latin-1
/// bytes, except `\uXXXX` and `\UXXXXXXXX`.
fn raw_unicode_escape(b: &[u8]) -> Result<String, PickleError> {
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // An escape needs an odd number of backslashes before the `u`.
        if c == b'\\' && matches!(b.get(i + 1), Some(b'u' | b'U')) {
            let mut run = 0;
            while run < i && b[i - 1 - run] == b'\\' {
                run += 1;
            }
            if run % 2 == 0 {
                let n = if b[i + 1] == b'u' { 4 } else { 8 };
                let hex = b
                    .get(i + 2..i + 2 + n)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|x| x.is_ascii_hexdigit()));
                let Some(hex) = hex else {
                    return err(format!(
                        "'rawunicodeescape' codec can't decode bytes in position {i}: truncated \\{}XXXX escape",
                        b[i + 1] as char
                    ));
                };
                let cp = u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
                match char::from_u32(cp) {
                    Some(ch) => out.push(ch),
                    None => {
                        return err(format!(
                            "'rawunicodeescape' codec can't decode bytes in position {i}: \\Uxxxxxxxx out of range"
                        ));
                    }
                }
                i += 2 + n;
                continue;
            }
        }
        out.push(c as char);
        i += 1;
    }
    Ok(out)
}

impl Decoded {
    /// The object at `id`.
    pub fn obj(&self, id: Id) -> &Obj {
        &self.arena[id]
    }

    /// Converts the object at `id` to a tree; `budget` bounds the expanded
    /// size (units: one per object plus its text bytes).
    pub fn to_value(&self, id: Id, budget: &mut usize) -> Result<PyValue, PickleError> {
        let mut active = vec![false; self.arena.len()];
        self.convert(id, budget, &mut active, 0)
    }

    /// The exception at `id` (an instance whose arguments are plain data).
    pub fn to_exception(&self, id: Id, budget: &mut usize) -> Result<PyException, PickleError> {
        match self.obj(id) {
            Obj::Instance { module, name, args } => {
                let Obj::Tuple(items) = self.obj(*args) else {
                    return err("instance arguments must be a tuple");
                };
                let args = items
                    .iter()
                    .map(|&i| self.to_value(i, budget))
                    .collect::<Result<_, _>>()?;
                Ok(PyException {
                    module: module.clone(),
                    name: name.clone(),
                    args,
                })
            }
            _ => err("not an exception instance"),
        }
    }

    fn convert(
        &self,
        id: Id,
        budget: &mut usize,
        active: &mut [bool],
        depth: usize,
    ) -> Result<PyValue, PickleError> {
        if depth > MAX_DEPTH {
            return err("nesting too deep");
        }
        if active[id] {
            return err("recursive data structures are not supported");
        }
        let o = &self.arena[id];
        let cost = 1 + match o {
            Obj::Str(s) => s.len(),
            Obj::Bytes(b) => b.len(),
            _ => 0,
        };
        if *budget < cost {
            return err("pickle expands beyond the size limit");
        }
        *budget -= cost;
        active[id] = true;
        let mut seq = |items: &[Id]| -> Result<Vec<PyValue>, PickleError> {
            items
                .iter()
                .map(|&i| self.convert(i, budget, active, depth + 1))
                .collect()
        };
        let v = match o {
            Obj::None => Ok(PyValue::None),
            Obj::Bool(b) => Ok(PyValue::Bool(*b)),
            Obj::Int(i) => Ok(PyValue::Int(*i)),
            Obj::Float(f) => Ok(PyValue::Float(*f)),
            Obj::Str(s) => Ok(PyValue::Str(s.clone())),
            Obj::Bytes(_) => err("bytes values are not supported"),
            Obj::List(items) => seq(items).map(PyValue::List),
            Obj::Tuple(items) => seq(items).map(PyValue::Tuple),
            Obj::Set(k) | Obj::FrozenSet(k) => {
                let keys: Vec<Id> = k.entries.iter().map(|e| e.0).collect();
                seq(&keys).map(PyValue::Set)
            }
            Obj::Dict(k) => {
                let flat: Vec<Id> = k.entries.iter().flat_map(|&(a, b)| [a, b]).collect();
                seq(&flat).map(|vals| {
                    let mut it = vals.into_iter();
                    let mut pairs = Vec::with_capacity(k.entries.len());
                    while let (Some(a), Some(b)) = (it.next(), it.next()) {
                        pairs.push((a, b));
                    }
                    PyValue::Dict(pairs)
                })
            }
            Obj::Global(m, n) => err(format!("unexpected class reference {m}.{n}")),
            Obj::Instance { module, name, .. } => {
                err(format!("unexpected instance of {module}.{name}"))
            }
        };
        active[id] = false;
        v
    }
}
