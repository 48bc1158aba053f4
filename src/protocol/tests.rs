//! Tests of the wire format: the captured hex dumps of the specification,
//! byte-for-byte comparisons with CPython's `pickle` (run at test time), a
//! refusal of code-running opcodes, the memo and size limits, and a
//! bounded fuzz run over the decoder.

use super::*;
use std::io::Write as _;
use std::process::{Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn s(v: &str) -> PyValue {
    PyValue::str(v)
}

/// Runs `script` under the installed Python with `input` on stdin; `None`
/// (after saying why) when that Python or fail2ban is not installed.
fn python(script: &str, input: &str) -> Option<String> {
    if !Path::new(PYTHON).exists() || !Path::new("/usr/lib/python3/dist-packages/fail2ban").exists()
    {
        eprintln!("SKIP: {PYTHON} with fail2ban is not installed; differential check not run");
        return None;
    }
    let mut child = Command::new(PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    // Written from a thread: Python answers while it reads.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ALPHABET: &[char] = &[
    'a',
    'b',
    'z',
    'A',
    '0',
    '9',
    ' ',
    '\'',
    '"',
    '\\',
    '\n',
    '\t',
    '\r',
    '\0',
    '\x7f',
    '<',
    '>',
    'é',
    '\u{a0}',
    'ÿ',
    'Ā',
    '€',
    '\u{2028}',
    '漢',
    '😀',
    '\u{10ffff}',
    '%',
    '$',
];

fn random_str(r: &mut Rng) -> String {
    let len = match r.below(10) {
        0 => 0,
        1 => 1,
        2 => 255 + r.below(3) as usize,
        _ => r.below(20) as usize,
    };
    (0..len)
        .map(|_| ALPHABET[r.below(ALPHABET.len() as u64) as usize])
        .collect()
}

fn random_int(r: &mut Rng) -> i64 {
    match r.below(8) {
        0 => r.below(256) as i64,
        1 => 256 + r.below(65280) as i64,
        2 => -(r.below(1 << 31) as i64),
        3 => r.next() as i64,
        4 => i64::MIN,
        5 => i64::MAX,
        6 => -(1i64 << (8 * (1 + r.below(7)) - 1)),
        _ => (1i64 << 31) + r.below(1000) as i64,
    }
}

/// A random value without sets of more than one element (CPython writes
/// sets in hash order) and with distinct dict keys.
fn random_value(r: &mut Rng, depth: u32) -> PyValue {
    let kinds = if depth >= 4 { 6 } else { 11 };
    match r.below(kinds) {
        0 => PyValue::None,
        1 => PyValue::Bool(r.below(2) == 0),
        2 => PyValue::Int(random_int(r)),
        3 => PyValue::Float(f64::from_bits(r.next())),
        4 | 5 => PyValue::Str(random_str(r)),
        6 | 7 => PyValue::List(
            (0..r.below(6))
                .map(|_| random_value(r, depth + 1))
                .collect(),
        ),
        8 => PyValue::Tuple(
            (0..r.below(6))
                .map(|_| random_value(r, depth + 1))
                .collect(),
        ),
        9 => {
            let mut keys: Vec<String> = (0..r.below(5)).map(|_| random_str(r)).collect();
            keys.sort();
            keys.dedup();
            PyValue::Dict(
                keys.into_iter()
                    .map(|k| (PyValue::Str(k), random_value(r, depth + 1)))
                    .collect(),
            )
        }
        _ => PyValue::Set(
            (0..r.below(2))
                .map(|_| PyValue::Int(random_int(r)))
                .collect(),
        ),
    }
}

/// Replaces non-finite floats (not Python literals) by finite ones.
fn finite(v: PyValue) -> PyValue {
    match v {
        PyValue::Float(f) if !f.is_finite() => PyValue::Float(1.5),
        PyValue::List(x) => PyValue::List(x.into_iter().map(finite).collect()),
        PyValue::Tuple(x) => PyValue::Tuple(x.into_iter().map(finite).collect()),
        PyValue::Dict(x) => PyValue::Dict(x.into_iter().map(|(k, v)| (k, finite(v))).collect()),
        other => other,
    }
}

/// Python side: each input line is `<protocol> <literal>`; the literal is
/// rebuilt with distinct objects (as a server builds its replies) and the
/// pickle printed in hex.
const DUMPS: &str = r#"
import ast, pickle, sys
def fresh(v):
    if isinstance(v, str): return v.encode('utf-8').decode('utf-8')
    if isinstance(v, list): return [fresh(x) for x in v]
    if isinstance(v, tuple): return tuple(fresh(x) for x in v)
    if isinstance(v, dict): return {fresh(k): fresh(x) for k, x in v.items()}
    if isinstance(v, set): return {fresh(x) for x in v}
    return v
for line in sys.stdin:
    p, lit = line.rstrip('\n').split(' ', 1)
    print(pickle.dumps(fresh(ast.literal_eval(lit)), int(p)).hex())
"#;

#[test]
fn encoding_matches_cpython_byte_for_byte() {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let mut cases: Vec<(u8, PyValue)> = Vec::new();
    for i in 0..600 {
        let v = finite(random_value(&mut r, 0));
        cases.push((2 + (i % 4) as u8, v));
    }
    // Batches, frames and payloads outside frames.
    let many: Vec<PyValue> = (0..2500).map(PyValue::Int).collect();
    let big = "x".repeat(70_000);
    let mid: Vec<PyValue> = (0..60).map(|i| s(&format!("{i:03}").repeat(400))).collect();
    for p in [2, 3, 4, 5] {
        cases.push((p, PyValue::List(many.clone())));
        cases.push((p, PyValue::List(vec![s(&big), PyValue::Int(1)])));
        cases.push((p, PyValue::List(mid.clone())));
        cases.push((
            p,
            PyValue::List(vec![
                s(&"a".repeat(60000)),
                s(&"b".repeat(6000)),
                PyValue::Float(1.5),
            ]),
        ));
        cases.push((
            p,
            PyValue::Tuple(vec![
                s(&"a".repeat(60000)),
                s(&"b".repeat(6000)),
                PyValue::None,
            ]),
        ));
        cases.push((
            p,
            PyValue::Dict((0..1500).map(|i| (PyValue::Int(i), s("v"))).collect()),
        ));
    }
    let input: String = cases
        .iter()
        .map(|(p, v)| format!("{p} {}\n", v.repr()))
        .collect();
    let Some(out) = python(DUMPS, &input) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((p, v), want) in cases.iter().zip(lines) {
        let ours = hex(&encode_reply(&Reply::Other(v.clone()), *p));
        if ours != want {
            let at = ours
                .bytes()
                .zip(want.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            let cut = |x: &str| x[at.saturating_sub(40)..(at + 40).min(x.len())].to_string();
            let mut shown = v.repr();
            shown.truncate(200);
            panic!(
                "protocol {p}, value {shown}: differs at hex offset {at}\nours   ...{}\npython ...{}",
                cut(&ours),
                cut(want)
            );
        }
    }
}

#[test]
fn decoding_reads_cpython_pickles_of_every_protocol() {
    // Python pickles values (with shared objects, sets, frozensets,
    // protocol 0-1 text forms) and prints repr; we decode and compare.
    let script = r#"
import pickle, sys
shared = ['s']
vals = [
    ['ping'], ['ping', 0.1], ['set', 'sshd', 'bantime.increment', True],
    ['set', 'thread', {'stacksize': 0}], ['echo', None, False, -1, 300, 70000, 2**40, -2**63],
    [shared, shared, ('t', shared)], {'k': [1, 2, 3], 'x': {'y': ()}},
    [set(), {1}, {'a', 'b'}, frozenset(['z'])], [1.5, -0.0, 1e300, 'é€😀\n\\\'"'],
    ['multi-set', 'j', 'addfailregex', ['^a <HOST>$', '^b <HOST>$'] * 3],
    list(range(2500)), {i: str(i) for i in range(1100)}, ('a',) * 5,
    ['x' * 70000, 'y' * 300],
]
for p in range(6):
    for v in vals:
        d = pickle.dumps(v, p)
        r = repr(v).replace('frozenset(', '').replace('})', '}')
        print(d.hex(), r, sep='\t')
"#;
    let Some(out) = python(script, "") else {
        return;
    };
    let mut n = 0;
    for line in out.lines() {
        let (h, want) = line.split_once('\t').unwrap();
        let got = decode_request(&unhex(h)).unwrap_or_else(|e| panic!("{e}: {want}"));
        assert_eq!(got.repr(), want);
        n += 1;
    }
    assert_eq!(n, 84);
}

#[test]
fn replies_we_write_are_read_by_python() {
    let replies = vec![
        Reply::Ok(s("pong")),
        Reply::Ok(PyValue::List(vec![
            PyValue::Tuple(vec![s("Number of jail"), PyValue::Int(2)]),
            PyValue::Tuple(vec![s("Jail list"), s("a, b")]),
        ])),
        Reply::Ok(PyValue::None),
        Reply::Ok(PyValue::Set(vec![s("x")])),
        Reply::Err(PyException::new(
            "fail2ban.exceptions",
            "UnknownJailException",
            vec![s("nosuch")],
        )),
        Reply::Err(PyException::builtin("KeyError", "Invalid Action name: x")),
        Reply::Err(PyException::new(
            "fail2ban.server.failregex",
            "RegexException",
            vec![s("Unable to compile regular expression '(':\nmissing )")],
        )),
        Reply::Err(PyException::new("builtins", "IndexError", vec![])),
        Reply::Err(PyException::new(
            "builtins",
            "ValueError",
            vec![s("a"), PyValue::Int(2)],
        )),
        Reply::Other(s("ERROR: invalid load key, 'x'.")),
    ];
    let script = r#"
import pickle, sys
for line in sys.stdin:
    p, h = line.split()
    v = pickle.loads(bytes.fromhex(h))
    again = pickle.dumps(v, int(p)).hex()
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], Exception):
        print(repr(v), type(v[1]).__module__, repr(str(v[1])), again, sep='\t')
    else:
        print(repr(v), again, sep='\t')
"#;
    let mut input = String::new();
    for p in [2, 3, 4, 5] {
        for r in &replies {
            input.push_str(&format!("{p} {}\n", hex(&encode_reply(r, p))));
        }
    }
    let Some(out) = python(script, &input) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4 * replies.len());
    for (i, line) in lines.iter().enumerate() {
        let reply = &replies[i % replies.len()];
        // Python writes back exactly our bytes.
        let (line, again) = line.rsplit_once('\t').unwrap();
        assert_eq!(
            again,
            hex(&encode_reply(reply, 2 + (i / replies.len()) as u8))
        );
        let want = match reply {
            Reply::Ok(v) => PyValue::Tuple(vec![PyValue::Int(0), v.clone()]).repr(),
            Reply::Other(v) => v.repr(),
            Reply::Err(e) => format!(
                "(1, {})\t{}\t{}",
                e.repr(),
                e.module,
                crate::pyvalue::str_repr(&e.to_py_str())
            ),
        };
        assert_eq!(line, want);
    }
}

#[test]
fn captured_hex_dumps_of_the_specification() {
    // ping request and reply (§5.5 of the runtime specification).
    assert_eq!(
        hex(&encode_request(&[s("ping")])),
        "8005950b000000000000005d948c0470696e679461 2e".replace(' ', "")
    );
    let pong = unhex(
        "8005950c000000000000004b008c04706f6e6794869 42e"
            .replace(' ', "")
            .as_str(),
    );
    assert_eq!(encode_reply(&Reply::Ok(s("pong")), PROTOCOL), pong);
    assert_eq!(decode_reply(&frame(pong)).unwrap(), Reply::Ok(s("pong")));
    // status reply.
    let status = Reply::Ok(PyValue::List(vec![
        PyValue::Tuple(vec![s("Number of jail"), PyValue::Int(2)]),
        PyValue::Tuple(vec![s("Jail list"), s("manual, sshd")]),
    ]));
    assert_eq!(
        hex(&encode_reply(&status, PROTOCOL)),
        "8005953b000000000000004b005d9428\
         8c0e4e756d626572206f66206a61696c944b028694\
         8c094a61696c206c697374948c0c6d616e75616c2c2073736864948694658694 2e"
            .replace(' ', "")
    );
    // status nosuch: the request and the exception reply.
    assert_eq!(
        hex(&encode_request(&[s("status"), s("nosuch")])),
        "80059517000000000000005d94288c06737461747573948c066e6f737563689465 2e".replace(' ', "")
    );
    let err = Reply::Err(PyException::new(
        "fail2ban.exceptions",
        "UnknownJailException",
        vec![s("nosuch")],
    ));
    let bytes = encode_reply(&err, PROTOCOL);
    assert_eq!(
        hex(&bytes),
        "80059541000000000000004b018c13\
         6661696c3262616e2e657863657074696f6e73948c14\
         556e6b6e6f776e4a61696c457863657074696f6e949394\
         8c066e6f7375636894859452948694 2e"
            .replace(' ', "")
    );
    let Reply::Err(e) = decode_reply(&bytes).unwrap() else {
        panic!("not an error reply")
    };
    assert!(e.is_instance_of("builtins", "KeyError"));
    assert!(e.is_instance_of("fail2ban.exceptions", "UnknownJailException"));
    assert!(!e.is_instance_of("builtins", "IndexError"));
    assert_eq!(e.args_repr(), "('nosuch',)");
    assert_eq!(e.to_py_str(), "'nosuch'");
    assert_eq!(e.repr(), "UnknownJailException('nosuch')");
}

#[test]
fn exceptions_print_like_python() {
    let e = PyException::builtin("Exception", "Invalid command");
    assert_eq!(e.to_py_str(), "Invalid command");
    assert_eq!(e.repr(), "Exception('Invalid command')");
    let e = PyException::new("builtins", "ValueError", vec![s("a"), PyValue::Int(2)]);
    assert_eq!(e.to_py_str(), "('a', 2)");
    assert_eq!(e.repr(), "ValueError('a', 2)");
    let e = PyException::new("builtins", "IndexError", vec![]);
    assert_eq!(e.to_py_str(), "");
    assert_eq!(e.repr(), "IndexError()");
    assert!(e.is_instance_of("builtins", "LookupError"));
    assert!(e.is_instance_of("builtins", "BaseException"));
}

#[test]
fn requests_never_run_code() {
    // Pickles that would run `os.system` or build arbitrary objects.
    let script = r#"
import os, pickle
class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))
class Plain:
    pass
for p in range(6):
    print(pickle.dumps(['ping', Evil()], p).hex())
    print(pickle.dumps(['ping', Plain()], p).hex())
"#;
    let Some(out) = python(script, "") else {
        return;
    };
    for line in out.lines() {
        let data = unhex(line);
        let e = decode_request(&data).unwrap_err();
        assert!(e.0.contains("not allowed in a request"), "{e}");
        // In a reply the same bytes are opaque, never resolved.
        let _ = decode_reply(&data);
    }
    // Hand-written opcodes, protocol 0 INST and 2 NEWOBJ/BUILD.
    for bad in [
        &b"(S'x'\nios\nsystem\n."[..],
        b"\x80\x02cos\nsystem\n)\x81.",
        b"\x80\x02]\x8c\x01a\x8c\x01b\x93.",
        b"\x80\x02]N}b.",
        b"\x80\x02]\x82\x01.",
        b"P1\n.",
    ] {
        assert!(decode_request(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn ip_addresses_of_the_python_server_are_strings() {
    // fail2ban's IPAddr pickles itself as `str(<text>)`.
    let script = r#"
import pickle, sys
sys.path.insert(0, '/usr/lib/python3/dist-packages')
from fail2ban.server.ipdns import IPAddr
for p in range(6):
    print(pickle.dumps((0, [IPAddr('192.0.2.10'), IPAddr('10.0.0.0/8'), {'j': [IPAddr('::1')]}]), p).hex())
"#;
    let Some(out) = python(script, "") else {
        return;
    };
    assert_eq!(out.lines().count(), 6);
    for line in out.lines() {
        let reply = decode_reply(&unhex(line)).unwrap();
        assert_eq!(
            reply,
            Reply::Ok(PyValue::List(vec![
                s("192.0.2.10"),
                s("10.0.0.0/8"),
                PyValue::Dict(vec![(s("j"), PyValue::List(vec![s("::1")]))]),
            ]))
        );
    }
}

#[test]
fn decoder_errors_are_pythons() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "Ran out of input"),
        (b"\xff", "invalid load key, '\\xff'."),
        (b"z", "invalid load key, 'z'."),
        (b"abc", "unpickling stack underflow"),
        (b"\x80\x06.", "unsupported pickle protocol: 6"),
        (b"\x80\x05]", "Ran out of input"),
        (b"(.", "unexpected MARK found"),
        (b"h\x05.", "Memo value not found at index 5"),
        (b"]\x94K", "pickle data was truncated"),
        (b"X\x05\x00\x00\x00ab", "pickle data was truncated"),
        (
            b"\x80\x05\x95\xff\x00\x00\x00\x00\x00\x00\x00]",
            "pickle data was truncated",
        ),
        (b"}]]s.", "unhashable type: 'list'"),
        (b"t.", "could not find MARK"),
        (b"(K\x01e.", "unpickling stack underflow"),
    ];
    for (data, msg) in cases {
        assert_eq!(decode_request(data).unwrap_err().0, *msg, "{data:?}");
    }
}

#[test]
fn memo_references_and_limits() {
    // A list memoized before it is filled is seen filled.
    let v = decode_request(b"\x80\x02]q\x00(]q\x01K\x01ah\x01e.").unwrap();
    assert_eq!(v.repr(), "[[1], [1]]");
    // Equal dict keys replace the value, keeping the first key.
    let v = decode_request(b"\x80\x05}(K\x01K\x02K\x01K\x03\x88K\x04u.").unwrap();
    assert_eq!(v.repr(), "{1: 4}");
    // A list containing itself.
    let e = decode_request(b"\x80\x02]q\x00h\x00a.").unwrap_err();
    assert_eq!(e.0, "recursive data structures are not supported");
    // 2**40 leaves from 40 doublings of a shared list: refused quickly.
    let mut bomb = b"\x80\x02]q\x00".to_vec();
    for i in 1..=40u8 {
        bomb.extend_from_slice(&[b'h', i - 1, b'h', i - 1, 0x86, b'q', i]);
    }
    bomb.push(b'.');
    let t = std::time::Instant::now();
    let e = decode_request(&bomb).unwrap_err();
    assert_eq!(e.0, "pickle expands beyond the size limit");
    assert!(t.elapsed().as_secs() < 2);
    // Deep nesting is refused, not a stack overflow.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    assert_eq!(decode_request(&deep).unwrap_err().0, "nesting too deep");
    // Lengths beyond the input are not allocated.
    assert!(decode_request(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f").is_err());
    assert!(decode_request(b"\x80\x02\x8b\xff\xff\xff\x7f").is_err());
    // Integers beyond 64 bits are refused, those within are read.
    assert_eq!(
        decode_request(b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40.")
            .unwrap_err()
            .0,
        "integer out of the supported range (64 bits)"
    );
    assert_eq!(
        decode_request(b"\x80\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.").unwrap(),
        PyValue::Int(i64::MIN)
    );
    assert_eq!(
        decode_request(b"\x80\x03C\x02ab.").unwrap_err().0,
        "bytes values are not supported"
    );
}

#[test]
fn fuzzed_input_never_panics() {
    let mut r = Rng(0x0f00_dbad_5eed_0002);
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for _ in 0..40 {
        let v = random_value(&mut r, 0);
        for p in [2, 3, 4, 5] {
            seeds.push(encode_reply(&Reply::Other(v.clone()), p));
        }
    }
    seeds.push(encode_reply(
        &Reply::Err(PyException::builtin("ValueError", "x")),
        5,
    ));
    seeds.push(b"(lp0\nVa\np1\naI01\naF1.5\naS'q\\n'\np2\na(dp3\ng1\nNsa.".to_vec());
    let t = std::time::Instant::now();
    let mut decoded = 0;
    for i in 0..40_000 {
        let mut data = if i % 4 == 0 {
            (0..r.below(64)).map(|_| r.next() as u8).collect()
        } else {
            seeds[r.below(seeds.len() as u64) as usize].clone()
        };
        for _ in 0..1 + r.below(4) {
            if data.is_empty() {
                break;
            }
            let at = r.below(data.len() as u64) as usize;
            match r.below(4) {
                0 => data[at] = r.next() as u8,
                1 => {
                    data.remove(at);
                }
                2 => data.insert(at, r.next() as u8),
                _ => data.truncate(at),
            }
        }
        if decode_request(&data).is_ok() {
            decoded += 1;
        }
        let _ = decode_reply(&data);
    }
    assert!(
        decoded > 100,
        "mutations should leave some pickles readable"
    );
    assert!(t.elapsed().as_secs() < 60);
}

#[test]
fn message_buffer_cuts_at_the_first_marker() {
    let mut b = MessageBuffer::new(1000);
    let mut stream = encode_request(&[s("ping")]);
    stream.extend_from_slice(END);
    stream.extend_from_slice(b"second");
    stream.extend_from_slice(END);
    stream.extend_from_slice(CLOSE);
    stream.extend_from_slice(END);
    // Fed byte by byte, the marker split over several reads.
    let mut got = Vec::new();
    for c in &stream {
        b.feed(std::slice::from_ref(c));
        while let Some(m) = b.next_message().unwrap() {
            got.push(m);
        }
    }
    assert_eq!(
        got,
        vec![
            Message::Data(encode_request(&[s("ping")])),
            Message::Data(b"second".to_vec()),
            Message::Close
        ]
    );
    assert_eq!(b.next_message(), Ok(None));
    b.feed(&[b'x'; 1100]);
    assert_eq!(b.next_message(), Err(TooLarge(1000)));
}

#[test]
fn os_errors_print_like_python() {
    let e = std::io::Error::from_raw_os_error(111);
    assert_eq!(py_os_error(&e), "[Errno 111] Connection refused");
    let e = std::io::Error::from(std::io::ErrorKind::WouldBlock);
    assert_eq!(py_os_error(&e), "timed out");
    assert_eq!(
        SocketError::Reset.to_string(),
        "[Errno 104] Connection reset by peer"
    );
}
