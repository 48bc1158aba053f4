//! The wire format between `fail2ban-client` and `fail2ban-server`.
//!
//! fail2ban talks over a Unix stream socket.  A request is a pickled list of
//! arguments followed by `<F2B_END_COMMAND>`; the reply is the pickled tuple
//! `(0, value)` or `(1, exception)` followed by the same marker; a client
//! ends the conversation with `<F2B_CLOSE_COMMAND><F2B_END_COMMAND>`.  One
//! connection may carry several requests.  Python writes pickles with its
//! highest protocol (5) and reads any protocol.
//!
//! The pickle codec is written by hand (`unpickle.rs`, `pickle.rs`) rather
//! than taken from `serde-pickle`: that crate writes only protocols 2 and 3
//! and cannot write a class reference with `REDUCE`, which is how the
//! server must send the exception instances Python's client prints
//! (`Sorry but the jail 'x' does not exist`); when reading it resolves a
//! fixed list of globals itself and turns any other into an error or
//! `None`, so the class and arguments of an error reply are lost; and its
//! output differs from CPython's (memo, frames).  fail2ban needs requests
//! read without interpreting class references and replies written as
//! Python's server writes them.
//!
//! [`Connection`] is the client's side of a conversation (Python's
//! `CSocket`); [`MessageBuffer`] cuts a server's incoming byte stream into
//! messages the way `asynchat` does (at the first end marker).

mod pickle;
mod unpickle;

#[cfg(test)]
mod tests;

pub use unpickle::{MAX_DEPTH, PickleError};

use crate::pyvalue::PyValue;
use pickle::Item;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use unpickle::{Obj, Source};

/// The end-of-message marker.
pub const END: &[u8] = b"<F2B_END_COMMAND>";
/// The message a client sends before it disconnects.
pub const CLOSE: &[u8] = b"<F2B_CLOSE_COMMAND>";
/// The pickle protocol Python 3.8+ writes (`pickle.HIGHEST_PROTOCOL`).
pub const PROTOCOL: u8 = 5;
/// The largest message accepted (Python has no limit; a reload stream of a
/// large configuration is a few hundred KiB).
pub const MAX_MESSAGE: usize = 64 << 20;

/// An exception instance as the server sends it: the class (module and
/// name) and the constructor arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct PyException {
    pub module: String,
    pub name: String,
    pub args: Vec<PyValue>,
}

impl PyException {
    pub fn new(module: &str, name: &str, args: Vec<PyValue>) -> Self {
        PyException {
            module: module.to_string(),
            name: name.to_string(),
            args,
        }
    }

    /// An exception of Python's `builtins` (`Exception`, `ValueError` ...)
    /// with one message argument.
    pub fn builtin(name: &str, message: impl Into<String>) -> Self {
        PyException::new("builtins", name, vec![PyValue::Str(message.into())])
    }

    /// Python's `isinstance(exc, <module>.<name>)` for the classes fail2ban
    /// sends (builtins and fail2ban's own); unknown classes are only
    /// instances of themselves.
    pub fn is_instance_of(&self, module: &str, name: &str) -> bool {
        let mut cls = Some((self.module.as_str(), self.name.as_str()));
        while let Some((m, n)) = cls {
            if m == module && n == name {
                return true;
            }
            cls = parent_class(m, n);
        }
        false
    }

    /// Python's `str(exc)`.
    pub fn to_py_str(&self) -> String {
        match self.args.as_slice() {
            [] => String::new(),
            [a] if self.is_instance_of("builtins", "KeyError") => a.repr(),
            [a] => a.to_py_str(),
            _ => self.args_repr(),
        }
    }

    /// Python's `repr(exc)`, e.g. `UnknownJailException('x')`.
    pub fn repr(&self) -> String {
        match self.args.as_slice() {
            [a] => format!("{}({})", self.name, a.repr()),
            _ => format!("{}{}", self.name, self.args_repr()),
        }
    }

    /// Python's `repr(exc.args)`, e.g. `('x',)`.
    pub fn args_repr(&self) -> String {
        PyValue::Tuple(self.args.clone()).repr()
    }
}

/// The base class of the exception classes fail2ban uses.
fn parent_class(module: &str, name: &str) -> Option<(&'static str, &'static str)> {
    Some(match (module, name) {
        ("fail2ban.exceptions", "UnknownJailException") => ("builtins", "KeyError"),
        ("fail2ban.exceptions", "DuplicateJailException")
        | ("fail2ban.server.failregex", "RegexException") => ("builtins", "Exception"),
        ("builtins", "KeyError" | "IndexError") => ("builtins", "LookupError"),
        ("builtins", "UnicodeError") => ("builtins", "ValueError"),
        ("builtins", "NotImplementedError" | "RecursionError") => ("builtins", "RuntimeError"),
        ("builtins", "UnboundLocalError") => ("builtins", "NameError"),
        ("builtins", "ZeroDivisionError" | "OverflowError" | "FloatingPointError") => {
            ("builtins", "ArithmeticError")
        }
        ("builtins", "Exception" | "SystemExit" | "KeyboardInterrupt" | "GeneratorExit") => {
            ("builtins", "BaseException")
        }
        ("builtins", "BaseException") => return None,
        ("builtins", _) => ("builtins", "Exception"),
        _ => return None,
    })
}

/// A reply of the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `(0, value)`: the command succeeded.
    Ok(PyValue),
    /// `(code, exception)` with a non-zero code: the command failed.
    Err(PyException),
    /// Anything else, e.g. the bare string `"ERROR: ..."` Python's server
    /// sends when it could not read a request.
    Other(PyValue),
}

/// The pickle of a request (the list of arguments, protocol 5, as
/// Python's client writes it), without the end marker.
pub fn encode_request(args: &[PyValue]) -> Vec<u8> {
    let list = PyValue::List(args.to_vec());
    pickle::dumps(&Item::Value(&list), PROTOCOL)
}

/// Reads a request.  Nothing in it is ever resolved or run: class
/// references and object construction are errors (the server then answers
/// `"ERROR: <message>"`, as Python's does for an unreadable message).
pub fn decode_request(data: &[u8]) -> Result<PyValue, PickleError> {
    let d = unpickle::decode(data, Source::Request)?;
    d.to_value(d.root, &mut expansion_budget(data))
}

/// The pickle of a reply with `protocol` (2 to 5; Python's server uses
/// [`PROTOCOL`]), without the end marker.
pub fn encode_reply(reply: &Reply, protocol: u8) -> Vec<u8> {
    let code0 = PyValue::Int(0);
    let code1 = PyValue::Int(1);
    let item = match reply {
        Reply::Ok(v) => Item::Tuple(vec![Item::Value(&code0), Item::Value(v)]),
        Reply::Err(e) => Item::Tuple(vec![Item::Value(&code1), Item::Exception(e)]),
        Reply::Other(v) => Item::Value(v),
    };
    pickle::dumps(&item, protocol)
}

/// Reads a reply (class references are kept as names, never resolved).
pub fn decode_reply(data: &[u8]) -> Result<Reply, PickleError> {
    let d = unpickle::decode(data, Source::Reply)?;
    let budget = &mut expansion_budget(data);
    if let Obj::Tuple(items) | Obj::List(items) = d.obj(d.root)
        && let [code, value] = items.as_slice()
    {
        let zero = matches!(d.obj(*code), Obj::Int(0) | Obj::Bool(false))
            || matches!(d.obj(*code), Obj::Float(f) if *f == 0.0);
        if zero {
            return Ok(Reply::Ok(d.to_value(*value, budget)?));
        }
        if let Obj::Instance { .. } = d.obj(*value) {
            return Ok(Reply::Err(d.to_exception(*value, budget)?));
        }
    }
    Ok(Reply::Other(d.to_value(d.root, budget)?))
}

/// How far shared (memoized) objects may expand: a generous multiple of
/// the input, so that a small pickle cannot build a huge tree.
fn expansion_budget(data: &[u8]) -> usize {
    data.len().saturating_mul(16).saturating_add(1 << 20)
}

/// `payload` followed by the end marker.
pub fn frame(mut payload: Vec<u8>) -> Vec<u8> {
    payload.extend_from_slice(END);
    payload
}

/// A message cut from a server's input stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The client is done: flush the replies and close.
    Close,
    /// A request (a pickle, to be read with [`decode_request`]).
    Data(Vec<u8>),
}

/// The message is larger than the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message exceeds {} bytes", self.0)
    }
}

/// Buffers a server's input and cuts it into messages at each end marker
/// (Python's `asynchat` with the terminator `<F2B_END_COMMAND>`).
#[derive(Debug)]
pub struct MessageBuffer {
    buf: Vec<u8>,
    /// Bytes already searched for a marker.
    scanned: usize,
    limit: usize,
}

impl Default for MessageBuffer {
    fn default() -> Self {
        MessageBuffer::new(MAX_MESSAGE)
    }
}

impl MessageBuffer {
    /// A buffer refusing messages longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MessageBuffer {
            buf: Vec::new(),
            scanned: 0,
            limit,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if any.  A partial message longer than
    /// the limit is an error (the connection should be dropped).
    pub fn next_message(&mut self) -> Result<Option<Message>, TooLarge> {
        let from = self.scanned.saturating_sub(END.len() - 1);
        let Some(at) = memchr::memmem::find(&self.buf[from..], END).map(|i| from + i) else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.limit + END.len() {
                return Err(TooLarge(self.limit));
            }
            return Ok(None);
        };
        if at > self.limit {
            return Err(TooLarge(self.limit));
        }
        let msg: Vec<u8> = self.buf[..at].to_vec();
        self.buf.drain(..at + END.len());
        self.scanned = 0;
        Ok(Some(if msg == CLOSE {
            Message::Close
        } else {
            Message::Data(msg)
        }))
    }
}

/// A socket failure, printed as Python prints `socket.error`.
#[derive(Debug)]
pub enum SocketError {
    Io(std::io::Error),
    /// The server closed the connection before the reply was complete.
    Reset,
    /// The reply is larger than [`MAX_MESSAGE`].
    TooLarge,
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::Io(e) => f.write_str(&py_os_error(e)),
            SocketError::Reset => f.write_str("[Errno 104] Connection reset by peer"),
            SocketError::TooLarge => write!(f, "reply exceeds {MAX_MESSAGE} bytes"),
        }
    }
}

/// Python's `str()` of an `OSError`: `[Errno 111] Connection refused`, or
/// `timed out` for a socket timeout.
pub fn py_os_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
        return "timed out".to_string();
    }
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let suffix = format!(" (os error {code})");
            format!(
                "[Errno {code}] {}",
                text.strip_suffix(&suffix).unwrap_or(&text)
            )
        }
        None => e.to_string(),
    }
}

/// Why a request got no usable reply.
#[derive(Debug)]
pub enum TransportError {
    /// The socket failed (Python's `socket.error`).
    Socket(SocketError),
    /// The reply could not be read.
    Decode(PickleError),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Socket(e) => e.fmt(f),
            TransportError::Decode(e) => e.fmt(f),
        }
    }
}

/// A client connection (Python's `CSocket`).
#[derive(Debug)]
pub struct Connection {
    stream: Option<UnixStream>,
}

impl Connection {
    /// Connects to the server's socket; `timeout` bounds every later read
    /// and write (none: wait forever).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Connection, SocketError> {
        let stream = UnixStream::connect(path).map_err(SocketError::Io)?;
        let mut c = Connection {
            stream: Some(stream),
        };
        c.set_timeout(timeout)?;
        Ok(c)
    }

    /// Changes the timeout of reads and writes.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SocketError> {
        if let Some(s) = &self.stream {
            let t = timeout.filter(|d| !d.is_zero());
            s.set_read_timeout(t).map_err(SocketError::Io)?;
            s.set_write_timeout(t).map_err(SocketError::Io)?;
        }
        Ok(())
    }

    /// Sends one request and waits for its reply.
    pub fn send(&mut self, args: &[PyValue]) -> Result<Reply, TransportError> {
        let raw = self.send_raw(&encode_request(args))?;
        decode_reply(&raw).map_err(TransportError::Decode)
    }

    /// Sends a pickled request and returns the raw reply (the pickle,
    /// possibly followed by the end marker, which the pickle ignores).
    pub fn send_raw(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let sock = |e| TransportError::Socket(SocketError::Io(e));
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| sock(std::io::ErrorKind::NotConnected.into()))?;
        s.write_all(request).map_err(sock)?;
        s.write_all(END).map_err(sock)?;
        // Like Python's client: read until the marker shows up among the
        // last 32 bytes (a chunk that is exactly the marker ends too).
        let mut msg = Vec::new();
        let mut size = 1024;
        let mut chunk = vec![0u8; 32768];
        loop {
            let tail = &msg[msg.len().saturating_sub(32)..];
            if memchr::memmem::find(tail, END).is_some() {
                return Ok(msg);
            }
            let n = s.read(&mut chunk[..size]).map_err(sock)?;
            if n == 0 {
                return Err(TransportError::Socket(SocketError::Reset));
            }
            if &chunk[..n] == END {
                return Ok(msg);
            }
            msg.extend_from_slice(&chunk[..n]);
            if msg.len() > MAX_MESSAGE {
                return Err(TransportError::Socket(SocketError::TooLarge));
            }
            size = (size * 2).min(32768);
        }
    }

    /// Says goodbye (`CLOSE` + end marker) and shuts the socket down.
    pub fn close(&mut self) {
        if let Some(mut s) = self.stream.take() {
            let mut bye = CLOSE.to_vec();
            bye.extend_from_slice(END);
            let _ = s.write_all(&bye);
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

/// The text Python's server answers to a message it cannot read.
pub fn load_error_reply(e: &PickleError) -> Reply {
    Reply::Other(PyValue::Str(format!("ERROR: {e}")))
}
