//! Differential tests of the filter reader against the installed Python
//! fail2ban: every shipped filter (1.0.2 and upstream trees) with several
//! init options and reading flows, and crafted trees exercising includes,
//! overrides, `known/` chains, interpolation and parse errors.  Python is
//! spawned once; its results (command streams or exceptions) are compared
//! job by job with ours.

use super::{Error, FilterReader, ShareConfig};
use crate::pyvalue::PyValue;
use crate::testrefs::{self, Ref};
use indexmap::IndexMap;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::rc::Rc;

const PYTHON: &str = "/usr/bin/python3";
/// The reference configuration trees that are present (1.0.2, upstream).
fn trees() -> Vec<String> {
    [Ref::Config102, Ref::ConfigUpstream]
        .into_iter()
        .filter_map(testrefs::path)
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// Reads the jobs given on stdin (plus, for each tree to scan, every filter
/// with no init options, each mode value it uses, each logtype, and the
/// init options of its sample log), runs them with Python's FilterReader
/// and prints the results as JSON.
const SCRIPT: &str = r#"
import json, logging, os, re, sys
from fail2ban.client.filterreader import FilterReader
logging.disable(logging.CRITICAL)
spec = json.load(sys.stdin)
jobs = list(spec['jobs'])
flows = ('harness', 'regex', 'all', 'systemd')
for base in spec['scan']:
    fdir = os.path.join(base, 'filter.d')
    for fn in sorted(os.listdir(fdir)):
        if not fn.endswith('.conf') or fn.endswith('common.conf'):
            continue
        text = open(os.path.join(fdir, fn), encoding='utf-8').read()
        prefixes = set(re.findall(r'<([\w-]+)-<mode>', text))
        modes = set()
        for m in re.finditer(r'^([\w-]+)\s*[=:]', text, re.M):
            key = m.group(1).lower()
            for p in prefixes:
                if key.startswith(p + '-'):
                    modes.add(key[len(p) + 1:].split('-')[0])
        optsets = [{}] + [{'mode': m} for m in sorted(modes)] + \
            [{'logtype': t} for t in ('file', 'short', 'journal', 'rfc5424')]
        for opts in optsets:
            for flow in flows:
                jobs.append({'basedir': base, 'name': fn[:-5], 'opts': opts,
                             'flow': flow, 'explicit': False})
    # The init options the sample-log tests use (`# filterOptions:` lines).
    logs = os.path.join(os.path.dirname(base), 'tests', 'files', 'logs')
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else ():
        path = os.path.join(logs, name)
        if not os.path.isfile(path) or not os.path.isfile(os.path.join(fdir, name + '.conf')):
            continue
        common, seen = {}, set()
        for line in open(path, encoding='utf-8', errors='replace'):
            m = re.match(r'^#+ ?((?:file|filter)Options):(.+)$', line)
            if not m:
                continue
            data = json.loads(m.group(2))
            if m.group(1) == 'fileOptions':
                common = data
                continue
            for d in (data if isinstance(data, list) else [data]):
                opts = dict(common)
                opts.update(d)
                opts = {k: v for k, v in opts.items() if not k.startswith('test.')}
                key = json.dumps(opts, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    jobs.append({'basedir': base, 'name': name, 'opts': opts,
                                 'flow': 'harness', 'explicit': False})
shares = {}
out = []
for job in jobs:
    share = shares.setdefault(job['basedir'], {})
    res = {'job': job}
    try:
        r = FilterReader(job['name'], 'test-jail', dict(job['opts']),
                         share_config=share, basedir=job['basedir'])
        if job['explicit']:
            r.setBaseDir(None)
            ok = bool(r.readexplicit())
        else:
            ok = bool(r.read())
        res['read'] = ok
        if ok:
            if job['flow'] in ('regex', 'all'):
                r.applyAutoOptions('auto')
            elif job['flow'] == 'systemd':
                r.applyAutoOptions('systemd')
            r.getOptions(None, all=(job['flow'] == 'all'))
            res['stream'] = r.convert()
    except Exception as e:
        res['error'] = [type(e).__name__, str(e)]
    out.append(res)
json.dump(out, sys.stdout)
"#;

fn python_available() -> Result<(), String> {
    if !std::path::Path::new(PYTHON).exists() {
        return Err(format!("{PYTHON} is missing"));
    }
    let ok = Command::new(PYTHON)
        .args(["-c", "import fail2ban.client.filterreader"])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !ok.success() {
        return Err("the Python fail2ban package is not importable".into());
    }
    Ok(())
}

fn run_python(spec: &Value) -> Vec<Value> {
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("python output");
    assert!(out.status.success(), "python failed");
    match serde_json::from_slice(&out.stdout).expect("python JSON") {
        Value::Array(items) => items,
        other => panic!("unexpected python output {other}"),
    }
}

fn to_json(v: &PyValue) -> Value {
    match v {
        PyValue::None => Value::Null,
        PyValue::Bool(b) => json!(b),
        PyValue::Int(i) => json!(i),
        PyValue::Float(f) => json!(f),
        PyValue::Str(s) => json!(s),
        PyValue::List(items) | PyValue::Tuple(items) | PyValue::Set(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        PyValue::Dict(items) => Value::Object(
            items
                .iter()
                .map(|(k, v)| (k.to_py_str(), to_json(v)))
                .collect(),
        ),
    }
}

/// Runs one job with our reader; the result in the script's JSON shape.
fn run_ours(job: &Value, shares: &mut HashMap<String, Rc<ShareConfig>>) -> Value {
    let basedir = job["basedir"].as_str().unwrap();
    let share = shares.entry(basedir.to_string()).or_default().clone();
    let opts: IndexMap<String, String> = job["opts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let name = job["name"].as_str().unwrap();
    let flow = job["flow"].as_str().unwrap();
    let mut r = FilterReader::with_share(name, "test-jail", opts, Some(basedir), share);
    let mut res = serde_json::Map::new();
    res.insert("job".into(), job.clone());
    let outcome = (|| -> Result<(), Error> {
        let ok = if job["explicit"].as_bool().unwrap() {
            r.definition_mut().reader_mut().set_base_dir(None);
            r.read_explicit()?
        } else {
            r.read()?
        };
        res.insert("read".into(), json!(ok));
        if ok {
            match flow {
                "regex" | "all" => r.apply_auto_options("auto"),
                "systemd" => r.apply_auto_options("systemd"),
                _ => {}
            }
            r.get_options(None, flow == "all")?;
            let stream = r.convert()?;
            res.insert(
                "stream".into(),
                Value::Array(stream.iter().map(to_json).collect()),
            );
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        res.insert("error".into(), json!([e.py_type(), e.to_string()]));
    }
    Value::Object(res)
}

/// Compares all jobs; returns the number compared.
fn compare(spec: Value) -> usize {
    let expected = run_python(&spec);
    let mut shares = HashMap::new();
    let mut mismatches = Vec::new();
    for exp in &expected {
        let ours = run_ours(&exp["job"], &mut shares);
        if ours != *exp {
            mismatches.push(format!(
                "job {}\n  python: {}\n  ours:   {}",
                exp["job"], exp, ours
            ));
        }
    }
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for exp in &expected {
        let kind = match (&exp["error"], &exp["read"]) {
            (Value::Array(e), _) => e[0].as_str().unwrap_or("?").to_string(),
            (_, Value::Bool(false)) => "not read".to_string(),
            _ => "stream".to_string(),
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    eprintln!("python outcomes: {outcomes:?}");
    for m in mismatches.iter().take(10) {
        eprintln!("{m}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} jobs differ",
        mismatches.len(),
        expected.len()
    );
    expected.len()
}

#[test]
fn shipped_filters_match_python() {
    if let Err(why) = python_available() {
        eprintln!("skipping the differential filter test: {why}");
        return;
    }
    let scan = trees();
    if scan.len() < 2 {
        eprintln!("note: some reference trees are missing, comparing {scan:?}");
    }
    let n = compare(json!({"scan": scan, "jobs": []}));
    eprintln!("compared {n} filter jobs with Python");
    assert!(n > 1000 || scan.len() < 2, "too few jobs: {n}");
}

/// Crafted filter trees: (file, content) pairs under one base directory.
const CRAFTED: &[(&str, &str)] = &[
    // Includes: before/after, relative to the including file, missing ones,
    // `.local` companions, `.d` directories and `.local` overrides.
    (
        "filter.d/common.conf",
        "[DEFAULT]\n_daemon = \\S*\nlogtype = file\n__pre = <lt_<logtype>/p>\n[lt_file]\np = F(<_daemon>)\n[lt_short]\np = S(%(_daemon)s)\n",
    ),
    ("filter.d/common.local", "[lt_short]\np = SL(%(_daemon)s)\n"),
    (
        "filter.d/inc.conf",
        "[INCLUDES]\nbefore = common.conf\n  missing.conf\nafter = sub/after.conf\n[DEFAULT]\n_daemon = incd\n[Definition]\nfailregex = ^%(__pre)s <HOST> %(opt)s\n  ^second <v>\nopt = base\nv = conf\n",
    ),
    (
        "filter.d/sub/after.conf",
        "[Definition]\nopt = after ; comment\nv2 = x\n",
    ),
    ("filter.d/inc.d/10.conf", "[Definition]\nv = d10\n"),
    (
        "filter.d/inc.d/20.conf",
        "[Definition]\nv = d20 %(known/v)s\n",
    ),
    (
        "filter.d/inc.local",
        "[Definition]\nignoreregex = local %(known/opt)s\n",
    ),
    ("filter.d/inc.d/30.local", "[Definition]\nmaxlines = 3\n"),
    // known/ chains: one level works, two levels recurse forever.
    ("filter.d/known1.conf", "[Definition]\nfailregex = a\n"),
    (
        "filter.d/known1.local",
        "[Definition]\nfailregex = %(known/failregex)s\n            b\n",
    ),
    ("filter.d/known2.conf", "[Definition]\nfailregex = a\n"),
    (
        "filter.d/known2.d/x.conf",
        "[Definition]\nfailregex = %(known/failregex)s b\n",
    ),
    (
        "filter.d/known2.local",
        "[Definition]\nfailregex = %(known/failregex)s c\n",
    ),
    // Interpolation forms and errors.
    (
        "filter.d/interp.conf",
        "[DEFAULT]\nd = D\n[Definition]\nfailregex = %(__name__)s %(default/d)s %(Other/o)s %(Other/d)s 100%%\ndatepattern = ^%%Y-%%m\n[Other]\no = O\n",
    ),
    (
        "filter.d/missing.conf",
        "[Definition]\nfailregex = %(nope)s\n",
    ),
    (
        "filter.d/percent.conf",
        "[Definition]\nfailregex = 5% off\n",
    ),
    ("filter.d/badref.conf", "[Definition]\nfailregex = %(x\n"),
    (
        "filter.d/badother.conf",
        "[Definition]\nfailregex = x\nother = %(nope)s\n",
    ),
    // Parse errors.
    ("filter.d/noheader.conf", "# c\nfailregex = x\n"),
    (
        "filter.d/junk.conf",
        "[Definition]\nfailregex = x\njunk line\n[x\n",
    ),
    (
        "filter.d/dupsec.conf",
        "[Definition]\nfailregex = x\n[Definition]\n",
    ),
    (
        "filter.d/dupopt.conf",
        "[Definition]\nfailregex = x\nFailRegex = y\n",
    ),
    // Tags: self references, init options, known/, conditionals, modes.
    (
        "filter.d/selfref.conf",
        "[Definition]\nfailregex = <a>\na = <b>\nb = <a>\n",
    ),
    (
        "filter.d/initopts.conf",
        "[Definition]\nfailregex = <pfx> <mode-<mode>> %(mode)s\n  <known/pfx>\nmode-normal = N\nmode-extra = E\nmaxlines = <lines>\n[Init]\npfx = P\nmode = normal\nlines = 1_0\n[Init?family=inet6]\npfx = P6\n",
    ),
    (
        "filter.d/knownself.conf",
        "[Definition]\nfailregex = <chain>\n[Init]\nchain = <known/chain>\n",
    ),
    (
        "filter.d/badint.conf",
        "[Definition]\nfailregex = x\nmaxlines = many\n",
    ),
    (
        "filter.d/journal.conf",
        "[Definition]\nfailregex = x\njournalmatch = _SYSTEMD_UNIT=a.service + _COMM=\"a b\"\n  'q' x\\ y\n",
    ),
    (
        "filter.d/badjournal.conf",
        "[Definition]\nfailregex = x\njournalmatch = _COMM=\"open\n",
    ),
    (
        "filter.d/quirk.conf",
        "[Definition]\nfailregex = x\ndate = D\npattern = P\nusedns = no\nprefregex = ^<F-CONTENT>.+</F-CONTENT>$\n",
    ),
    (
        "filter.d/comments.conf",
        "; top\n[Definition]\nfailregex = a ;c\n   b;c\n   # skipped\n\n   c #kept\nignoreregex =\n",
    ),
    ("filter.d/lower.conf", "[definition]\nfailregex = x\n"),
    (
        "filter.d/logtype.conf",
        "[Definition]\nfailregex = <logtype>\nlogtype = own\n",
    ),
    (
        "filter.d/bad-utf8.conf",
        "[Definition]\nfailregex = \u{fffd}\n",
    ),
    // An explicit file: includes and sibling .local, never the .d directory.
    (
        "ext/my.conf",
        "[INCLUDES]\nbefore = ../filter.d/common.conf\n[Definition]\nfailregex = %(__pre)s <v>\n",
    ),
    ("ext/my.local", "[Definition]\nv = local\n"),
    ("ext/my.d/z.conf", "[Definition]\nv = dotd\n"),
];

#[test]
fn crafted_trees_match_python() {
    if let Err(why) = python_available() {
        eprintln!("skipping the differential crafted-tree test: {why}");
        return;
    }
    let tree = super::reader::tests::Tree::new("difftest", CRAFTED);
    // A file that is not valid UTF-8.
    std::fs::write(
        tree.path("filter.d/bad-utf8.conf"),
        b"[Definition]\nfailregex = \xff\n",
    )
    .unwrap();
    let mut jobs = Vec::new();
    let names = CRAFTED
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("filter.d/")?.strip_suffix(".conf"))
        .filter(|n| !n.contains('/') && !n.contains(".d/") && *n != "common");
    let optsets = [
        json!({}),
        json!({"mode": "extra"}),
        json!({"logtype": "short", "pfx": "given"}),
        json!({"lines": "x"}),
    ];
    for name in names.chain(["nonexistent"]) {
        for opts in &optsets {
            for flow in ["harness", "regex", "all", "systemd"] {
                jobs.push(json!({"basedir": tree.0, "name": name, "opts": opts,
                                 "flow": flow, "explicit": false}));
            }
        }
    }
    for path in [tree.path("ext/my.conf"), tree.path("ext/none.conf")] {
        for flow in ["harness", "regex", "all"] {
            jobs.push(json!({"basedir": tree.0, "name": path, "opts": {},
                             "flow": flow, "explicit": true}));
        }
    }
    let n = compare(json!({"scan": [], "jobs": jobs}));
    eprintln!("compared {n} crafted jobs with Python");
}

// ---------------------------------------------------------------------------
// Whole configurations: `fail2ban-client -c DIR -d` against our Configurator.

const CLIENT: &str = "/usr/bin/fail2ban-client";

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What a dump gives: the printed lines and, when the reading failed, the
/// message of `Failed during configuration: ...`.
type Dump = (Vec<String>, Option<String>);

/// Python's `fail2ban-client -c DIR -d`.
fn python_dump(dir: &str) -> Dump {
    let out = Command::new(PYTHON)
        .args([CLIENT, "-c", dir, "-d"])
        .stdin(Stdio::null())
        .output()
        .expect("run fail2ban-client");
    let lines = String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_string)
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failure = stderr
        .split_once("Failed during configuration: ")
        .map(|(_, rest)| {
            rest.split("\n20")
                .next()
                .unwrap_or(rest)
                .trim_end()
                .to_string()
        });
    (lines, failure)
}

/// What our configurator gives for the same dump.
fn our_dump(dir: &str) -> Dump {
    let mut c = super::Configurator::new(Some(dir), false);
    let main: super::Vars = match c.read_early().and_then(|_| c.early_options()) {
        Ok(early) => early.into_iter().collect(),
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    match c.read_config(None, Some(&main), true, true) {
        Ok(r) => (r.stream.iter().map(PyValue::repr).collect(), None),
        Err(e) => (
            vec![
                "ERROR: The configuration stream failed because of the invalid syntax.".to_string(),
            ],
            Some(e.to_string()),
        ),
    }
}

fn compare_dumps(what: &str, dir: &str) -> usize {
    let (expected, expected_failure) = python_dump(dir);
    let (ours, our_failure) = our_dump(dir);
    assert_eq!(our_failure, expected_failure, "{what}: failures differ");
    let differ =
        expected.len().max(ours.len()) - expected.iter().zip(&ours).filter(|(a, b)| a == b).count();
    if differ > 0 {
        for (i, (a, b)) in expected.iter().zip(&ours).enumerate() {
            if a != b {
                eprintln!(
                    "{what}: first difference at line {}\n  python: {a}\n  ours:   {b}",
                    i + 1
                );
                break;
            }
        }
        eprintln!(
            "{what}: python {} lines, ours {}",
            expected.len(),
            ours.len()
        );
    }
    assert_eq!(differ, 0, "{what}: {differ} lines differ");
    match expected_failure {
        Some(f) => eprintln!("{what}: same failure: {}", f.lines().next().unwrap_or("")),
        None => eprintln!("{what}: {} lines identical", expected.len()),
    }
    expected.len()
}

/// A concrete file name matching a glob (`*`, `?` → `suffix`, a set → its
/// first character).
fn concrete(path: &str, fill: &str) -> String {
    let mut out = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => out.push_str(fill),
            '[' => {
                let set: String = chars.by_ref().take_while(|&c| c != ']').collect();
                out.push(set.trim_start_matches('!').chars().next().unwrap_or('x'));
            }
            c => out.push(c),
        }
    }
    out
}

/// Copies a reference tree, points every absolute path of the jail files
/// into the copy (creating the files, two per wildcard), and enables every
/// jail in a `jail.local` followed by `extra`.
fn all_enabled_tree(tree: &str, tag: &str, extra: &str) -> super::reader::tests::Tree {
    let copy = super::reader::tests::Tree::new(tag, &[]);
    copy_dir(std::path::Path::new(tree), std::path::Path::new(&copy.0));
    let abs = regex::Regex::new(r"(?m)(^|[\s=])(/(?:var|opt|home|root|service|usr|srv)/[^\s;]*)")
        .unwrap();
    let mut files: Vec<String> = vec!["jail.conf".into()];
    for entry in std::fs::read_dir(&copy.0).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("paths-") {
            files.push(name);
        }
    }
    let mut created = 0;
    for name in files {
        let path = copy.path(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        for cap in abs.captures_iter(&text) {
            for fill in ["x", "y"] {
                let target = format!("{}/logs{}", copy.0, concrete(&cap[2], fill));
                let target = std::path::Path::new(&target);
                if std::fs::create_dir_all(target.parent().unwrap()).is_ok()
                    && std::fs::write(target, "").is_ok()
                {
                    created += 1;
                }
            }
        }
        let rewritten = abs.replace_all(&text, format!("${{1}}{}/logs${{2}}", copy.0));
        std::fs::write(&path, rewritten.as_bytes()).unwrap();
    }
    assert!(created > 50, "only {created} log files created");
    let mut jails = super::ConfigReader::new(Some(&copy.0), None);
    assert!(jails.read("jail").unwrap());
    let mut local = String::new();
    for sec in jails.sections() {
        if sec != "INCLUDES" {
            local.push_str(&format!("[{sec}]\nenabled = true\n\n"));
        }
    }
    local.push_str(&extra.replace("@TMP@", &copy.0));
    std::fs::write(copy.path("jail.local"), local).unwrap();
    copy
}

/// Jails exercising definition errors, action naming, `known/` options,
/// log path forms and Python actions (on top of a reference tree).
const EXTRA_JAILS: &str = r#"
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1,10.0.0.1
           192.168.0.0/16

[custom-known]
enabled = true
filter = sshd[mode=aggressive]
failregex = %(known/failregex)s
            ^extra <HOST>$
logpath = @TMP@/logs/custom.log tail
          @TMP@/logs/dangling.log
          @TMP@/logs/none-*.log
action = iptables-multiport[name=second, port="22,80"]
         iptables-multiport[name=custom-known-x]
         dummy-py.py[actname=py1, x=1, y="a b"]
         other.py
         sendmail-whois[dest="a@b", sender=x]

[custom-badfilter]
enabled = true
filter = nope

[custom-badfilter-syntax]
enabled = true
filter = sshd[mode = x]

[custom-badaction]
enabled = true
filter = sshd
action = dummy[a=1, b]

[custom-noaction]
enabled = true
filter = sshd
action = nope

[custom-systemd]
enabled = true
filter = sshd
backend = systemd
journalmatch = _SYSTEMD_UNIT=custom.service

[custom-wrongint]
enabled = true
filter = sshd
maxretry = lots
findtime = %(fail2ban_version)s
bantime = %(fail2ban_confpath)s
logpath = @TMP@/logs/custom.log

[custom-disabled]
enabled = false
filter = nope
action = nope

[Definition]
enabled = true
"#;

#[test]
fn client_dump_matches_python() {
    if let Err(why) = python_available() {
        eprintln!("skipping the fail2ban-client -d comparison: {why}");
        return;
    }
    if !std::path::Path::new(CLIENT).exists() {
        eprintln!("skipping the fail2ban-client -d comparison: {CLIENT} is missing");
        return;
    }
    let mut total = 0;
    for (i, tree) in trees().iter().enumerate() {
        let plain = super::reader::tests::Tree::new(&format!("dump-plain{i}"), &[]);
        copy_dir(std::path::Path::new(tree), std::path::Path::new(&plain.0));
        total += compare_dumps(&format!("{tree} unchanged"), &plain.0);
        let all = all_enabled_tree(tree, &format!("dump-all{i}"), "");
        total += compare_dumps(&format!("{tree} all jails enabled"), &all.0);
        let extra = all_enabled_tree(tree, &format!("dump-extra{i}"), EXTRA_JAILS);
        std::fs::write(extra.path("logs/custom.log"), "").unwrap();
        std::os::unix::fs::symlink(extra.path("nowhere"), extra.path("logs/dangling.log")).unwrap();
        total += compare_dumps(&format!("{tree} crafted jails"), &extra.0);
        // An action whose definition cannot be interpolated aborts everything.
        std::fs::write(
            extra.path("action.d/broken.conf"),
            "[Definition]\nactionban = %(nope)s\n",
        )
        .unwrap();
        std::fs::create_dir_all(extra.path("jail.d")).unwrap();
        std::fs::write(
            extra.path("jail.d/zz-broken.local"),
            "[custom-known]\naction = broken\n",
        )
        .unwrap();
        total += compare_dumps(&format!("{tree} fatal action error"), &extra.0);
        // So do a filter that cannot be parsed or interpolated.
        for (what, text) in [
            ("parse", "[Definition]\nfailregex = x\njunk\n"),
            ("interpolation", "[Definition]\nfailregex = %(nope)s\n"),
        ] {
            std::fs::write(extra.path("filter.d/broken.conf"), text).unwrap();
            std::fs::write(
                extra.path("jail.d/zz-broken.local"),
                "[custom-known]\nfilter = broken\n",
            )
            .unwrap();
            total += compare_dumps(&format!("{tree} fatal filter {what} error"), &extra.0);
        }
    }
    eprintln!("compared {total} dump lines with fail2ban-client");
}
