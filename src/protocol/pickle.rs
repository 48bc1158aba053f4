//! Writing Python pickles the way CPython 3.11's `_pickle` writes them.
//!
//! Protocols 2 to 5 are written byte for byte as `pickle.dumps(value,
//! protocol)` writes the equivalent Python object: the same opcodes
//! (`BININT1`/`BININT2`/`BININT`/`LONG1`, short and long string forms,
//! `TUPLE1-3`, batches of 1000 for `APPENDS`/`SETITEMS`/`ADDITEMS` with
//! `APPEND`/`SETITEM` for one-element containers), the same memo indices
//! (every string, list, dict, set, non-empty tuple and class reference is
//! memoized), and from protocol 4 on the same frames (a frame is closed
//! before saving an object once it holds 64 KiB; payloads of 64 KiB or
//! more are written outside frames; frames under 4 bytes get no header).
//!
//! Python memoizes by object identity.  A value tree has no identity, so
//! only what is a singleton in CPython is shared: strings of at most one
//! latin-1 character and class references.  Equal longer strings are written
//! twice, as CPython writes two distinct string objects.  Sets are written
//! in the order given (CPython writes them in hash order).
//!
//! Exception instances are written as `cls(*args)`: a class reference
//! (`STACK_GLOBAL` from protocol 4, else `GLOBAL`, with Python 2 module
//! names in protocol 2 as `fix_imports` does), the argument tuple and
//! `REDUCE`.  Only the server writes them; the decoder never runs them.

use super::PyException;
use crate::pyvalue::PyValue;
use std::collections::HashMap;

const FRAME_SIZE_TARGET: usize = 64 * 1024;
const FRAME_SIZE_MIN: usize = 4;
const FRAME_HEADER: usize = 9;
const BATCHSIZE: usize = 1000;

/// What can be pickled: plain values, exception instances, and tuples
/// mixing both (the reply envelope).
pub enum Item<'a> {
    Value(&'a PyValue),
    Exception(&'a PyException),
    Tuple(Vec<Item<'a>>),
}

/// Identities CPython shares between equal values.
#[derive(Hash, PartialEq, Eq)]
enum Shared {
    Str(String),
    Global(String, String),
}

/// Pickles `item` with `protocol` (2 to 5; values outside are clamped).
pub fn dumps(item: &Item<'_>, protocol: u8) -> Vec<u8> {
    let proto = protocol.clamp(2, 5);
    let mut p = Pickler {
        out: Vec::new(),
        proto,
        memo_len: 0,
        framing: proto >= 4,
        frame_start: None,
        shared: HashMap::new(),
    };
    p.out.extend_from_slice(&[0x80, proto]);
    p.save_item(item);
    p.write(b".");
    p.commit_frame();
    p.out
}

struct Pickler {
    out: Vec<u8>,
    proto: u8,
    memo_len: u32,
    framing: bool,
    frame_start: Option<usize>,
    shared: HashMap<Shared, u32>,
}

impl Pickler {
    fn write(&mut self, data: &[u8]) {
        if self.framing && self.frame_start.is_none() {
            self.frame_start = Some(self.out.len());
            self.out.extend_from_slice(&[0; FRAME_HEADER]);
        }
        self.out.extend_from_slice(data);
    }

    fn commit_frame(&mut self) {
        let Some(start) = self.frame_start.take() else {
            return;
        };
        let len = self.out.len() - start - FRAME_HEADER;
        if len >= FRAME_SIZE_MIN {
            self.out[start] = 0x95;
            self.out[start + 1..start + FRAME_HEADER].copy_from_slice(&(len as u64).to_le_bytes());
        } else {
            self.out.drain(start..start + FRAME_HEADER);
        }
    }

    /// Closes a full frame before an object is saved.
    fn boundary(&mut self) {
        if let Some(start) = self.frame_start
            && self.out.len() - start - FRAME_HEADER >= FRAME_SIZE_TARGET
        {
            self.commit_frame();
        }
    }

    /// An opcode and its payload; large payloads go outside frames.
    fn write_payload(&mut self, header: &[u8], payload: &[u8]) {
        if self.framing && payload.len() >= FRAME_SIZE_TARGET {
            self.commit_frame();
            self.framing = false;
            self.write(header);
            self.write(payload);
            self.framing = true;
        } else {
            self.write(header);
            self.write(payload);
        }
    }

    fn memoize(&mut self) -> u32 {
        let idx = self.memo_len;
        self.memo_len += 1;
        if self.proto >= 4 {
            self.write(&[0x94]);
        } else if idx < 256 {
            self.write(&[b'q', idx as u8]);
        } else {
            let mut op = vec![b'r'];
            op.extend_from_slice(&idx.to_le_bytes());
            self.write(&op);
        }
        idx
    }

    fn memo_get(&mut self, idx: u32) {
        if idx < 256 {
            self.write(&[b'h', idx as u8]);
        } else {
            let mut op = vec![b'j'];
            op.extend_from_slice(&idx.to_le_bytes());
            self.write(&op);
        }
    }

    /// Writes a shared object from the memo, or creates and memoizes it.
    fn shared(&mut self, key: Shared, create: impl FnOnce(&mut Self)) {
        if let Some(&idx) = self.shared.get(&key) {
            self.memo_get(idx);
            return;
        }
        create(self);
        let idx = self.memoize();
        self.shared.insert(key, idx);
    }

    fn save_item(&mut self, item: &Item<'_>) {
        match item {
            Item::Value(v) => self.save(v),
            Item::Exception(e) => self.save_exception(e),
            Item::Tuple(items) => {
                self.boundary();
                self.save_tuple_with(items.len(), |p| {
                    for it in items {
                        p.save_item(it);
                    }
                });
            }
        }
    }

    fn save(&mut self, v: &PyValue) {
        self.boundary();
        match v {
            PyValue::None => self.write(b"N"),
            PyValue::Bool(true) => self.write(&[0x88]),
            PyValue::Bool(false) => self.write(&[0x89]),
            PyValue::Int(i) => self.save_int(*i),
            PyValue::Float(f) => {
                let mut op = vec![b'G'];
                op.extend_from_slice(&f.to_be_bytes());
                self.write(&op);
            }
            PyValue::Str(s) => self.save_str(s),
            PyValue::List(items) => {
                self.write(b"]");
                self.memoize();
                self.batch(items.len(), b"a", b"e", |p, i| p.save(&items[i]));
            }
            PyValue::Tuple(items) => self.save_tuple_with(items.len(), |p| {
                for it in items {
                    p.save(it);
                }
            }),
            PyValue::Dict(items) => {
                self.write(b"}");
                self.memoize();
                self.batch(items.len(), b"s", b"u", |p, i| {
                    p.save(&items[i].0);
                    p.save(&items[i].1);
                });
            }
            PyValue::Set(items) => self.save_set(items),
        }
    }

    fn save_int(&mut self, i: i64) {
        if (-0x8000_0000..0x8000_0000).contains(&i) {
            if (0..=0xff).contains(&i) {
                self.write(&[b'K', i as u8]);
            } else if (0..=0xffff).contains(&i) {
                let mut op = vec![b'M'];
                op.extend_from_slice(&(i as u16).to_le_bytes());
                self.write(&op);
            } else {
                let mut op = vec![b'J'];
                op.extend_from_slice(&(i as i32).to_le_bytes());
                self.write(&op);
            }
            return;
        }
        // LONG1: bit length / 8 + 1 bytes of two's complement, one less
        // for -(2**(8*j-1)).
        let bits = 64 - i.unsigned_abs().leading_zeros() as usize;
        let mut n = bits / 8 + 1;
        let all = (i as i128).to_le_bytes();
        if i < 0 && n > 1 && all[n - 1] == 0xff && all[n - 2] & 0x80 != 0 {
            n -= 1;
        }
        let mut op = vec![0x8a, n as u8];
        op.extend_from_slice(&all[..n]);
        self.write(&op);
    }

    fn save_str(&mut self, s: &str) {
        let mut chars = s.chars();
        let single = match (chars.next(), chars.next()) {
            (None, _) => true,
            (Some(c), None) => (c as u32) < 256,
            _ => false,
        };
        if single {
            self.shared(Shared::Str(s.to_string()), |p| p.write_str(s));
        } else {
            self.write_str(s);
            self.memoize();
        }
    }

    fn write_str(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut header = Vec::with_capacity(9);
        if b.len() <= 0xff && self.proto >= 4 {
            header.extend_from_slice(&[0x8c, b.len() as u8]);
        } else if b.len() > 0xffff_ffff {
            header.push(0x8d);
            header.extend_from_slice(&(b.len() as u64).to_le_bytes());
        } else {
            header.push(b'X');
            header.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.write_payload(&header, b);
    }

    /// A tuple of `n` elements written by `items` (memoized when not
    /// empty).
    fn save_tuple_with(&mut self, n: usize, items: impl FnOnce(&mut Self)) {
        if n == 0 {
            return self.write(b")");
        }
        if n <= 3 {
            items(self);
            self.write(&[0x84 + n as u8]);
        } else {
            self.write(b"(");
            items(self);
            self.write(b"t");
        }
        self.memoize();
    }

    /// The elements of a list/dict/set: one element with `single`, else
    /// batches of `MARK ... many`.
    fn batch(
        &mut self,
        n: usize,
        single: &[u8],
        many: &[u8],
        mut save: impl FnMut(&mut Self, usize),
    ) {
        if n == 0 {
            return;
        }
        if n == 1 {
            save(self, 0);
            return self.write(single);
        }
        let mut i = 0;
        while i < n {
            self.write(b"(");
            let end = (i + BATCHSIZE).min(n);
            while i < end {
                save(self, i);
                i += 1;
            }
            self.write(many);
        }
    }

    fn save_set(&mut self, items: &[PyValue]) {
        if self.proto < 4 {
            // set(list(items)) through REDUCE.
            self.save_global("builtins", "set");
            self.save_tuple_with(1, |p| {
                p.write(b"]");
                p.memoize();
                p.batch(items.len(), b"a", b"e", |p, i| p.save(&items[i]));
            });
            self.write(b"R");
            self.memoize();
            return;
        }
        self.write(&[0x8f]);
        self.memoize();
        if items.is_empty() {
            return;
        }
        // CPython ends with an empty batch when the last one was full.
        let mut i = 0;
        loop {
            self.write(b"(");
            let end = (i + BATCHSIZE).min(items.len());
            let full = end - i == BATCHSIZE;
            while i < end {
                self.save(&items[i]);
                i += 1;
            }
            self.write(&[0x90]);
            if !full {
                break;
            }
        }
    }

    /// A class reference, memoized once per class.
    fn save_global(&mut self, module: &str, name: &str) {
        self.boundary();
        let key = Shared::Global(module.to_string(), name.to_string());
        self.shared(key, |p| {
            if p.proto >= 4 {
                for s in [module, name] {
                    p.boundary();
                    p.shared(Shared::Str(format!("\0{s}")), |p| p.write_str(s));
                }
                p.write(&[0x93]);
            } else {
                let (m, n) = python2_name(p.proto, module, name);
                p.write(format!("c{m}\n{n}\n").as_bytes());
            }
        });
    }

    fn save_exception(&mut self, e: &PyException) {
        self.boundary();
        self.save_global(&e.module, &e.name);
        self.boundary();
        self.save_tuple_with(e.args.len(), |p| {
            for a in &e.args {
                p.save(a);
            }
        });
        self.write(b"R");
        self.memoize();
    }
}

/// Exceptions Python 2 had in its `exceptions` module.
const PYTHON2_EXCEPTIONS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BufferError",
    "BytesWarning",
    "DeprecationWarning",
    "EOFError",
    "EnvironmentError",
    "Exception",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "ReferenceError",
    "RuntimeError",
    "RuntimeWarning",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
];

/// Protocol 2 spells `builtins` names as Python 2 did (`fix_imports`).
fn python2_name<'a>(proto: u8, module: &'a str, name: &'a str) -> (&'a str, &'a str) {
    if proto >= 3 || module != "builtins" {
        (module, name)
    } else if PYTHON2_EXCEPTIONS.contains(&name) {
        ("exceptions", name)
    } else {
        ("__builtin__", name)
    }
}
