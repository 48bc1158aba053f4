//! Which lines fail2ban processes in each file scenario, compared with ours.
//!
//! The installed Python fail2ban reads the same scenario through its own
//! `FilterPoll` (a dummy jail, lines recorded instead of processed), and
//! looks at the files after every step, as a watcher reacting at once
//! would. Our watcher must hand over the same lines in the same order and
//! with the same "in operation" flag, except the lines fail2ban loses at a
//! rotation (written to the old file after it was replaced), which we read
//! too: those are listed per scenario.

use super::tests::{Harness, TempDir, append, opts};
use super::*;
use serde_json::{Value, json};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::process::{Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";

/// Runs a scenario (JSON steps) through fail2ban; its lines with their
/// "in operation" flag.
const SCRIPT: &str = r#"
import json, os, sys
from fail2ban.server.filterpoll import FilterPoll
from fail2ban.tests.dummyjail import DummyJail

spec = json.load(sys.stdin)
d = spec['dir']
out = []
flt = FilterPoll(DummyJail())
flt.setLogEncoding('utf-8')
flt.setFindTime(spec['findtime'])
flt.active = True
flt.processLineAndAdd = lambda line, date=None: out.append([line, bool(flt.inOperation)])
fds = {}
paths = []
def p(name):
    return os.path.join(d, name)
for st in spec['steps']:
    op = st['op']
    if op == 'write':
        with open(p(st['file']), 'ab') as f:
            f.write(st['data'].encode('latin-1'))
    elif op == 'open':
        fds[st['file']] = open(p(st['file']), 'ab', buffering=0)
    elif op == 'write_open':
        fds[st['file']].write(st['data'].encode('latin-1'))
    elif op == 'rename':
        os.rename(p(st['file']), p(st['to']))
    elif op == 'truncate':
        os.truncate(p(st['file']), 0)
    elif op == 'delete':
        os.unlink(p(st['file']))
    elif op == 'add':
        flt.addLogPath(p(st['file']), tail=st['tail'])
        paths.append(p(st['file']))
    for path in paths:
        flt.getFailures(path)
json.dump(out, sys.stdout)
"#;

fn python_ok() -> bool {
    let ok = Command::new(PYTHON)
        .args([
            "-c",
            "import fail2ban.server.filterpoll, fail2ban.tests.dummyjail",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: {PYTHON} with fail2ban is not available");
    }
    ok
}

fn run_python(steps: &[Value], findtime: f64) -> Vec<(String, bool)> {
    let dir = TempDir::new("py");
    let spec = json!({"dir": dir.path(""), "findtime": findtime, "steps": steps});
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, bool)> = serde_json::from_slice(&out.stdout).expect("python json");
    v
}

fn latin1(v: &Value) -> Vec<u8> {
    v.as_str()
        .unwrap()
        .chars()
        .map(|c| c as u32 as u8)
        .collect()
}

fn run_ours(steps: &[Value], findtime: f64, backend: Backend) -> Vec<(String, bool)> {
    let dir = TempDir::new("rs");
    let mut h = Harness::new();
    h.jail("j", backend);
    let mut open: HashMap<String, fs::File> = HashMap::new();
    let settle = match backend {
        Backend::Inotify => Duration::from_millis(60),
        Backend::Polling => Duration::from_millis(450),
    };
    for st in steps {
        let file = |k: &str| dir.path(st[k].as_str().unwrap());
        match st["op"].as_str().unwrap() {
            "write" => append(&file("file"), &latin1(&st["data"])),
            "open" => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file("file"))
                    .unwrap();
                open.insert(st["file"].as_str().unwrap().to_string(), f);
            }
            "write_open" => open
                .get_mut(st["file"].as_str().unwrap())
                .unwrap()
                .write_all(&latin1(&st["data"]))
                .unwrap(),
            "rename" => fs::rename(file("file"), file("to")).unwrap(),
            "truncate" => OpenOptions::new()
                .write(true)
                .open(file("file"))
                .unwrap()
                .set_len(0)
                .unwrap(),
            "delete" => fs::remove_file(file("file")).unwrap(),
            "add" => {
                let o = PathOptions {
                    tail: st["tail"].as_bool().unwrap(),
                    find_time: Some(findtime),
                    ..opts()
                };
                h.add("j", &file("file"), o);
            }
            op => panic!("unknown step {op}"),
        }
        h.run_for(settle);
    }
    // a full polling cycle, so that the last step is seen
    h.run_for(settle * 5);
    h.rec.lines.iter().map(|l| (l.2.clone(), l.3)).collect()
}

/// Checks a scenario on both backends: our lines are fail2ban's plus the
/// `rescued` ones (in place), in the same order.
fn check(name: &str, steps: Vec<Value>, findtime: f64, rescued: &[&str]) {
    let py = run_python(&steps, findtime);
    for backend in [Backend::Inotify, Backend::Polling] {
        let ours = run_ours(&steps, findtime, backend);
        let without: Vec<(String, bool)> = ours
            .iter()
            .filter(|l| !rescued.contains(&l.0.as_str()))
            .cloned()
            .collect();
        assert_eq!(without, py, "{name} ({backend:?}): ours {ours:?}");
        for r in rescued {
            assert!(
                ours.iter().any(|l| l.0 == *r) && !py.iter().any(|l| l.0 == *r),
                "{name} ({backend:?}): {r} is read by us only"
            );
        }
        println!(
            "{name} ({backend:?}): {} lines as fail2ban, {} rescued",
            py.len(),
            rescued.len()
        );
    }
}

fn w(file: &str, data: &str) -> Value {
    json!({"op": "write", "file": file, "data": data})
}

fn add(file: &str, tail: bool) -> Value {
    json!({"op": "add", "file": file, "tail": tail})
}

#[test]
fn appends_partial_lines_and_line_ends_like_fail2ban() {
    if !python_ok() {
        return;
    }
    let big = "y".repeat(1 << 20);
    check(
        "appends",
        vec![
            w("a.log", "one\ntwo\n"),
            add("a.log", false),
            w("a.log", "three\n"),
            w("a.log", "fo"),
            w("a.log", "ur\nfive\nsi"),
            w("a.log", "x\r\n"),
            w("a.log", "crlf\r\r\n\r\n"),
            w(
                "a.log",
                "bad \u{ff}\u{fe} \u{e2}\u{82}\u{ac} ok \u{e2}\u{82}\n",
            ),
            w("a.log", &format!("{big}\n")),
        ],
        600.0,
        &[],
    );
}

#[test]
fn tail_and_head_like_fail2ban() {
    if !python_ok() {
        return;
    }
    check(
        "tail",
        vec![
            w("t.log", "old1\nold2\npartial"),
            add("t.log", true),
            w("t.log", " end\nnew\n"),
        ],
        600.0,
        &[],
    );
}

#[test]
fn rotations_like_fail2ban_without_its_losses() {
    if !python_ok() {
        return;
    }
    let open = |f: &str| json!({"op": "open", "file": f});
    let wo = |f: &str, d: &str| json!({"op": "write_open", "file": f, "data": d});
    check(
        "rename and create",
        vec![
            w("r.log", "a1\n"),
            add("r.log", false),
            open("r.log"),
            wo("r.log", "a2\n"),
            json!({"op": "rename", "file": "r.log", "to": "r.log.1"}),
            wo("r.log", "a3\n"),
            w("r.log", "b1\n"),
            wo("r.log", "a4\n"),
            w("r.log", "b2\n"),
        ],
        600.0,
        &["a3", "a4"],
    );
    check(
        "copytruncate",
        vec![
            w("c.log", "c1\nc2\n"),
            add("c.log", false),
            w("c.log", "c3\n"),
            json!({"op": "truncate", "file": "c.log"}),
            w("c.log", "d1\n"),
            w("c.log", "d2\n"),
        ],
        600.0,
        &[],
    );
    check(
        "delete and recreate",
        vec![
            w("d.log", "x1\n"),
            add("d.log", false),
            open("d.log"),
            json!({"op": "delete", "file": "d.log"}),
            wo("d.log", "x2\n"),
            w("d.log", "y1\n"),
            w("d.log", "y2\n"),
        ],
        600.0,
        &["x2"],
    );
}

#[test]
fn initial_seek_to_findtime_like_fail2ban() {
    if !python_ok() {
        return;
    }
    let now = crate::mytime::now();
    let mut text = String::new();
    for i in (0..400).rev() {
        let t = now - 45.0 * i as f64 - 20.0;
        let stamp = crate::mytime::format_local(t, "%Y-%m-%d %H:%M:%S");
        text.push_str(&format!("{stamp} event {i}\n"));
        if i % 5 == 0 {
            text.push_str("\tundated continuation\n");
        }
    }
    check(
        "seek",
        vec![
            w("s.log", &text),
            add("s.log", false),
            w("s.log", "tail line\n"),
        ],
        900.0,
        &[],
    );
}
