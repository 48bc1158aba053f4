//! Differential test of the date detector against the installed Python
//! fail2ban: the same lines go through detectors built the same way in both,
//! per line the chosen template, the cut span and the timestamp (type and
//! value) are compared, and at the end the template list with its order,
//! hits and weights.
//!
//! Each clock/zone setting runs in a child process (this test binary
//! re-executed with `TZ` set), so that the process-wide state it needs (the
//! time zone, the frozen clock, the shared template cache) is its own.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::pytext::char_index;
use super::strptime::{directive_name, directive_regex, zone_abbreviation, zone_abbreviations};
use super::{DateDetector, DateError, set_datepattern};
use crate::testrefs::{self, Ref};

const PYTHON: &str = "/usr/bin/python3";
const DIST: &str = "/usr/lib/python3/dist-packages";
const WORKER_ENV: &str = "F2B_DATES_DIFF_RUN";
const DIR_ENV: &str = "F2B_DATES_DIFF_DIR";
const LINES_PER_LOG: usize = 300;

/// (TZ, frozen "now") of each run; `None`: the real time of the test start.
const RUNS: [(&str, Option<f64>); 5] = [
    ("Europe/Berlin", Some(1_124_013_600.0)),
    ("UTC", Some(1_704_069_000.0)),
    ("CET-01CEST-02,M3.5.0,M10.5.0", Some(1_124_013_600.0)),
    ("America/New_York", Some(1_710_054_000.0)),
    ("Europe/Berlin", None),
];

/// Hand-made lines: every default format, year ends, 12-hour clock, zones,
/// epoch forms, TAI64N, DST gaps, invalid dates, non-ASCII prefixes.
const EDGE_LINES: &[&str] = &[
    "2005-01-23T21:59:59.981746 x",
    "2005-01-23 21:59:59 x",
    "2005/01/23  8:59:59 x",
    "2006.12.21 06:43:20 x",
    "2005-01-23T21:59:59+0100 x",
    "2005-01-23 21:59:59,123 +02:00 msg",
    "Sun Jan 23 21:59:59.011 2005 x",
    "Jan 23 21:59:59 host x",
    "Jan  3 01:02:03 host x",
    "Dec 31 23:59:59 host x",
    "Jan  1 00:00:01 host x",
    "Feb 29 12:00:00 host x",
    "Aug 14 12:00:00 host x",
    "Aug 15 11:59:00 host x",
    "Sun Jan 23 2005 21:59:59.011 x",
    "23/01/2005 21:59:59 x",
    "23/01/05 21:59:59 x",
    "17-07-2008 17:23:25 x",
    "[31/Oct/2006:09:22:55 -0000] x",
    "26-Jul-2007 15:20:52.252 x",
    "26-Jul-2007 15:20:52 +0200 x",
    "05/20/2008:01:57:39 x",
    "01-27-2012 16:22:44.252 x",
    "1138046399 x",
    "[1138046399] x",
    "type=AVC msg=audit(1138046399.123:42): x",
    "1138046399.123456 x",
    "1138046399123 x",
    "1138046399123456 x",
    "x=1138046399.5 y",
    "12:34:56 x",
    "23:59:59 late",
    "<09/16/08@05:03:30> x",
    "130322 11:46:11 x",
    "130322  1:46:11 x",
    "Jan 23, 2005 9:59:59 PM x",
    "Jan 23, 2005 12:59:59 AM x",
    "Apr-27-13 02:33:06 x",
    "20050123T215959 x",
    "20050123 215959.123+0100 x",
    "PDT Apr 16 21:05:29 x",
    "CEST Apr 16 21:05:29 x",
    "XYZ Apr 16 21:05:29 x",
    "+00:00 Jan 23 21:59:59.011 2005 x",
    "@4000000037c219bf2ef02e94 x",
    " @4000000037c219bf2ef02e94 x",
    "foo 2005-01-23 21:59:59 bar",
    "foo Jan 23 21:59:59 bar",
    "user 12345 logged 2005-01-23 21:59:59",
    "2005-02-30 12:00:00 invalid",
    "0000-01-01 00:00:00 x",
    "2099-12-31 23:59:59 x",
    "1999-12-31 23:59:59 x",
    "2030-01-01 00:00:00 x",
    "Mar 10 02:30:00 host gap",
    "Nov  3 01:30:00 host ambiguous",
    "Oct 30 02:30:00 host",
    "Mar 27 02:30:00 host",
    "no date at all",
    "Jan 23 25:59:59 x",
    "[Jan 23 21:59:59] x",
    "éé Jan 23 21:59:59 x",
    "ÄÖ 2005-01-23 21:59:59 x",
    "2005-01-23 21:59:59 UTC x",
    "2005-01-23 21:59:59 NPT x",
    "2005-01-23 21:59:59 utc x",
    "2005-01-23 21:59:59 CET+0130 x",
    "2005-01-23 21:59:59 Z+01 x",
    "Sunday 2005 03 12:00",
    "wed 10 2005 12:30",
    "Mon Jan 23 21:59:59 2005 x",
    "01/23/05 21:59:59 x",
    "032 2005 x",
    "366 2005 x",
    "January 23, 2005 x",
    "23.01.2005 21:59 x",
    "5 7 05 x",
    "12:30 PM x",
    " 9:30:00 am x",
    "x=1138046399 y",
    "2005-01-23 21:59:59 x 2005-01-24 22:00:00",
    "Jan 23 21:59:59 host Jan 24 22:00:00",
    "Epoch TAI64N x",
    "<W>Jan 23 21:59:59 x",
    "<W>2005-01-23 21:59:59 x",
    "srv [Jan 23 21:59:59] x",
    "srv [2005-01-23 21:59:59.123] x",
    "2024-03-10 02:30:00 gap",
    "2024-03-10 02:30:45 gap",
    "2024-11-03 01:30:45 ambiguous",
    "2024-11-03 01:30:00 ambiguous",
    "2024-11-03 00:59:59 before",
    "2024-11-03 01:00:30 ambiguous",
    "2005-03-27 02:30:45 gap",
    "2005-10-30 02:30:45 ambiguous",
    "2005-10-30 01:59:59 before",
    "2005-10-30 02:00:01 ambiguous",
    "2005-10-30 03:00:00 after",
    "2005-10-30 02:59:59 ambiguous",
    "2005-07-01 12:00:00 summer",
    "2005-01-15 12:00:00 winter",
    "2005-07-01 12:00:30 summer again",
    "2005-10-30 02:30:00 ambiguous",
    "2005-01-15 12:00:30 winter again",
    "2005-10-30 02:30:00 ambiguous",
    "2005-03-27 02:30:00 gap",
    "2024-07-01 12:00:00 summer",
    "2024-01-15 12:00:00 winter",
    "2024-07-01 12:00:30 summer again",
    "2024-11-03 01:30:00 ambiguous",
    "2024-01-15 12:00:30 winter again",
    "2024-11-03 01:30:00 ambiguous",
    "2024-03-10 02:30:00 gap",
    "pdt Apr 16 21:05:29 x",
    "error Apr 16 21:05:29 x",
    "ERROR Apr 16 21:05:29 x",
    "202\u{665}-01-23 21:59:59 x",
    "2005-01-2\u{663} 21:59:59 x",
    "Jan 2\u{663} 21:59:59 x",
    "\t2005-01-23\t21:59:59 x",
    "2005-01-23 21:59:59\u{a0}x",
    "ab2005-01-23 21:59:59 x",
    "\u{17f}ep 23 21:59:59 x",
    "SEP 23 21:59:59 x",
    "sep 23 21:59:59 PM x",
    "1138046399\u{660} x",
];

/// Custom date patterns exercising the directives and keywords.
const EDGE_PATTERNS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "^%Y-%m-%d %H:%M:%S",
    "{^LN-BEG}%b %d %H:%M:%S",
    "%d/%b/%Y:%H:%M:%S %z",
    "{UNB}%H:%M:%S",
    "**%H:%M:%S**",
    r"^(?:\[)?%b %d %H:%M:%S",
    "%b %d, %Y %I:%M:%S %p",
    "%l:%M:%S %p",
    "%I:%M %p",
    "%Exl:%M",
    "%j %Y",
    "%A %Y %U %H:%M",
    "%a %W %Y %H:%M",
    "%c",
    "%x %X",
    "%Y-%m-%d %H:%M:%S %Z",
    "%Y-%m-%d %H:%M:%S %ExZ",
    "%Y-%m-%d %H:%M:%S %Exz",
    "%Y-%m-%d %H:%M:%S(?: %z)?",
    "%B %d, %Y",
    "%d.%m.%Y %H:%M",
    "%d %w %y",
    "%ExY%Exm%Exd",
    "EPOCH",
    "^EPOCH",
    "LEPOCH",
    "{^LN-BEG}LEPOCH",
    "TAI64N",
    "^TAI64N",
    "x={EPOCH}",
    "^{LEPOCH}",
    "{NONE}",
    "{^LN-BEG}",
    "{DEFAULT}",
    "^<W>{DATE}",
    r"^[^\[]*\[({DATE})",
    "%H:%M:%S\n%Y-%m-%d",
    "%Y-%m-%d\n{^LN-BEG}",
    "%Y-%Q",
    "%H:%M\n%H:%M",
    "{^LN-BEG}\n{DEFAULT}",
    "%Y-%m-%d\n{DATE}",
    "%Y %",
    "%(Y)s-%(m)s",
    "%Y-%m-%d (%H)",
    "%Y-%m %d",
    "%5Y",
    "%-H:%M",
    "%(Y)r",
    "%(%)c %H:%M",
    "%.2(Y)s",
    "%#",
    "%%(Y)s %H:%M",
    "%é",
    "100% %H:%M",
    "%Ex",
    "%ExQ",
    "%H:%M%",
    "%%%b %d",
    "%(Y)10s",
    "%(Y).4s",
    "%(Y)*s",
    "%(H)s:%(M)s %(Y)d",
    "%(Y)c",
    "%lf",
    "(?i)%H:%M",
    "^(?P<H>\\d+):%M",
];

/// (datepattern, logtimezone) combinations.
const EDGE_ZONES: &[(&str, &str)] = &[
    ("%Y-%m-%d %H:%M:%S", "UTC+0200"),
    ("%Y-%m-%d %H:%M:%S", "CEST"),
    ("%Y-%m-%d %H:%M:%S", "-0330"),
    ("%Y-%m-%d %H:%M:%S", ""),
    ("%Y-%m-%d %H:%M:%S", "Europe/Paris"),
    ("%Y-%m-%d %H:%M:%S", "XYZ"),
    ("%b %d %H:%M:%S", "EST"),
];

const SCRIPT: &str = r#"
import sys, json, re
sys.path.insert(0, sys.argv[4])
from fail2ban.server.mytime import MyTime
from fail2ban.server.datedetector import DateDetector
from fail2ban.server import strptime

inp = json.load(open(sys.argv[1], encoding='utf-8'))
MyTime.setTime(inp['runs'][int(sys.argv[2])]['now'])

def slice_pos(line, s, e):
    return [len(line[:s]), len(line) - len(line[e:])]

out = {'scenarios': []}
for sc in inp['scenarios']:
    res = {'label': sc['label']}
    out['scenarios'].append(res)
    dd = DateDetector()
    try:
        if sc['tz'] is not None:
            dd.default_tz = sc['tz']
        if sc['pattern'] is not None:
            for p in filter(bool, map(str.strip, re.split('\n+', sc['pattern']))):
                dd.appendTemplate(p)
    except KeyError as e:
        res['error'] = 'KeyError:' + str(e)
        continue
    except Exception as e:
        res['error'] = str(e)
        continue
    lines = []
    res['lines'] = lines
    try:
        for line in sc['lines']:
            try:
                m, t = dd.matchTime(line)
            except IndexError:
                lines.append(None)
                continue
            if not m:
                lines.append(None)
                continue
            try:
                r = dd.getTime(line, (m, t))
                v = repr(r[0]) if r else None
            except KeyError as ex:
                v = 'KeyError:' + str(ex)
            except Exception as ex:
                v = type(ex).__name__
            lines.append([t.name] + slice_pos(line, *m.span(1)) + [v])
    except re.error as e:
        res['error'] = 'regex'
        del res['lines']
        continue
    res['templates'] = [
        [t.name, t.hits, t.regex, getattr(t, 'pattern', None), t.template.weight, '%.3f' % t.weight]
        for t in dd.templates
    ]
if sys.argv[2] == '0':
    out['timeRE'] = dict(strptime.timeRE)
    out['names'] = strptime.getTimePatternRE()[1]
    out['zones'] = {k: v for k, v in strptime.TZ_ABBR_OFFS.items() if k}
json.dump(out, open(sys.argv[3], 'w', encoding='utf-8'))
"#;

/// Python's `Exk`/`Exl` names depend on its set order; compare them in one form.
fn normalize_name(name: &str) -> String {
    name.replace("Ex%k", "%Exk").replace("Ex%l", "%Exl")
}

/// Files below `dir`, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in read.flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The first lines of a log as fail2ban-regex reads them (line ends cut,
/// empty lines skipped).
fn log_lines(path: &Path, max: usize) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .split('\n')
        .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
        .filter(|l| !l.is_empty())
        .take(max)
        .collect()
}

/// The `datepattern` values of the filter files (`%%` → `%`), with the
/// filter name, skipping values that need interpolation.
fn config_datepatterns() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for tree in [Ref::Config102, Ref::ConfigUpstream] {
        let Some(config) = testrefs::path(tree) else {
            continue;
        };
        let dir = config.join("filter.d");
        for file in files_below(&dir) {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let filter = file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let Some(rest) = line.strip_prefix("datepattern") else {
                    continue;
                };
                let Some(value) = rest.trim_start().strip_prefix('=') else {
                    continue;
                };
                let mut value = value.trim().to_string();
                for more in &lines[i + 1..] {
                    if !more.starts_with([' ', '\t']) || more.trim().is_empty() {
                        break;
                    }
                    if more.trim().starts_with(['#', ';']) {
                        continue;
                    }
                    value.push('\n');
                    value.push_str(more.trim());
                }
                if value.contains("%(") || value.contains("<lt_") || value.contains("<L_") {
                    continue;
                }
                let value = value.replace("%%", "%");
                if seen.insert((filter.clone(), value.clone())) {
                    out.push((filter.clone(), value));
                }
            }
        }
    }
    out
}

/// All scenarios: default detectors over the sample logs, the hand-made
/// lines through default and custom detectors, the filters' own patterns.
fn scenarios() -> Vec<Value> {
    let mut out = Vec::new();
    let edge: Vec<String> = EDGE_LINES.iter().map(|s| s.to_string()).collect();
    let logs_of = |r: Ref| {
        testrefs::path(r)
            .map(|p| files_below(&p.join("logs")))
            .unwrap_or_default()
    };
    let mut logs = logs_of(Ref::Files102);
    let upstream = logs_of(Ref::FilesUpstream);
    let known: BTreeSet<_> = logs.iter().filter_map(|p| p.file_name()).collect();
    let extra: Vec<PathBuf> = upstream
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| !known.contains(n)))
        .cloned()
        .collect();
    logs.extend(extra);
    if let Some(dir) = testrefs::path(Ref::Realworld) {
        logs.extend(files_below(&dir));
    }
    logs.retain(|p| p.extension().is_none_or(|e| e != "md"));
    for log in &logs {
        out.push(json!({
            "label": format!("default {}", log.display()),
            "pattern": null, "tz": null,
            "lines": log_lines(log, LINES_PER_LOG),
        }));
    }
    out.push(json!({"label": "default edge", "pattern": null, "tz": null, "lines": edge}));
    for p in EDGE_PATTERNS {
        out.push(json!({"label": format!("edge {p:?}"), "pattern": p, "tz": null, "lines": edge}));
    }
    for (p, tz) in EDGE_ZONES {
        out.push(json!({
            "label": format!("edge {p:?} tz {tz:?}"), "pattern": p, "tz": tz, "lines": edge,
        }));
    }
    let sample_dir = testrefs::path(Ref::Files102)
        .map(|p| p.join("logs"))
        .unwrap_or_default();
    for (filter, pattern) in config_datepatterns() {
        let mut lines = log_lines(&sample_dir.join(&filter), LINES_PER_LOG);
        lines.extend(edge.iter().cloned());
        out.push(json!({
            "label": format!("filter {filter} {pattern:?}"),
            "pattern": pattern, "tz": null, "lines": lines,
        }));
    }
    out
}

/// The worker side: runs every scenario through Rust detectors.
fn run_rust(input: &Value) -> Value {
    let mut results = Vec::new();
    for sc in input["scenarios"].as_array().expect("scenarios") {
        let mut res = json!({"label": sc["label"]});
        let built = (|| -> Result<DateDetector, DateError> {
            let mut d = match sc["pattern"].as_str() {
                Some(p) => set_datepattern(p)?,
                None => DateDetector::new(),
            };
            if let Some(tz) = sc["tz"].as_str() {
                d.set_default_tz(Some(tz))?;
            }
            Ok(d)
        })();
        let mut dd = match built {
            Ok(d) => d,
            Err(DateError::UnknownZone(z)) => {
                res["error"] = json!(format!("KeyError:{}", DateError::UnknownZone(z)));
                results.push(res);
                continue;
            }
            Err(DateError::Regex { .. }) => {
                res["error"] = json!("regex");
                results.push(res);
                continue;
            }
            Err(e) => {
                res["error"] = json!(e.to_string());
                results.push(res);
                continue;
            }
        };
        let mut lines = Vec::new();
        for line in sc["lines"].as_array().expect("lines") {
            let line = line.as_str().expect("line");
            let Some(m) = dd.match_time(line) else {
                lines.push(Value::Null);
                continue;
            };
            let value = match dd.get_time(line, &m) {
                Ok(Some(t)) => json!(t.to_py().repr()),
                Ok(None) => Value::Null,
                Err(e @ DateError::UnknownZone(_)) => json!(format!("KeyError:{e}")),
                Err(DateError::Uncaught(text)) => {
                    json!(text.split(':').next().unwrap_or_default())
                }
                Err(e) => json!(format!("unexpected {e}")),
            };
            let (s, e) = m.span();
            lines.push(json!([
                dd.templates()[m.template()].name,
                char_index(line, s),
                char_index(line, e),
                value
            ]));
        }
        res["lines"] = json!(lines);
        res["templates"] = json!(
            dd.templates()
                .iter()
                .map(|t| json!([
                    t.name,
                    t.hits,
                    t.regex,
                    t.pattern,
                    t.weight,
                    format!("{:.3}", t.computed_weight())
                ]))
                .collect::<Vec<_>>()
        );
        results.push(res);
    }
    json!({ "scenarios": results })
}

/// Compares one run; appends a description of each difference.
fn compare(run: &str, rust: &Value, python: &Value, report: &mut Vec<String>, lines: &mut usize) {
    let empty = Vec::new();
    let rs = rust["scenarios"].as_array().unwrap_or(&empty);
    let ps = python["scenarios"].as_array().unwrap_or(&empty);
    if rs.len() != ps.len() {
        report.push(format!("{run}: {} scenarios vs {}", rs.len(), ps.len()));
    }
    for (r, p) in rs.iter().zip(ps) {
        let label = r["label"].as_str().unwrap_or_default();
        if r["error"] != p["error"] {
            report.push(format!(
                "{run} {label}: error {} (python {})",
                r["error"], p["error"]
            ));
            continue;
        }
        let (rl, pl) = (
            r["lines"].as_array().unwrap_or(&empty),
            p["lines"].as_array().unwrap_or(&empty),
        );
        if rl.len() != pl.len() {
            report.push(format!("{run} {label}: {} lines vs {}", rl.len(), pl.len()));
        }
        let mut shown = 0;
        for (k, (a, b)) in rl.iter().zip(pl).enumerate() {
            *lines += 1;
            let mut b = b.clone();
            if let Some(name) = b.get(0).and_then(Value::as_str) {
                b[0] = json!(normalize_name(name));
            }
            if *a != b {
                shown += 1;
                if shown <= 5 {
                    report.push(format!("{run} {label} line {k}: rust {a} python {b}"));
                }
            }
        }
        if shown > 5 {
            report.push(format!(
                "{run} {label}: {} more line differences",
                shown - 5
            ));
        }
        let (rt, pt) = (
            r["templates"].as_array().unwrap_or(&empty),
            p["templates"].as_array().unwrap_or(&empty),
        );
        if rt.len() != pt.len() {
            report.push(format!(
                "{run} {label}: {} templates vs {}",
                rt.len(),
                pt.len()
            ));
        }
        for (k, (a, b)) in rt.iter().zip(pt).enumerate() {
            let mut b = b.clone();
            if let Some(name) = b.get(0).and_then(Value::as_str) {
                b[0] = json!(normalize_name(name));
            }
            if *a != b {
                report.push(format!("{run} {label} template {k}: rust {a} python {b}"));
            }
        }
    }
}

/// Compares the directive, name and zone tables with Python's.
fn compare_tables(python: &Value, report: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    for (key, regex) in python["timeRE"].as_object().unwrap_or(&empty) {
        if directive_regex(key) != regex.as_str() {
            report.push(format!(
                "directive {key}: {:?} vs {regex}",
                directive_regex(key)
            ));
        }
    }
    for (key, name) in python["names"].as_object().unwrap_or(&empty) {
        let name = name.as_str().map(normalize_name);
        if directive_name(key).map(str::to_string) != name {
            report.push(format!("name {key}: {:?} vs {name:?}", directive_name(key)));
        }
    }
    let zones = python["zones"].as_object().unwrap_or(&empty);
    for (abbr, off) in zones {
        if zone_abbreviation(abbr).map(i64::from) != off.as_i64() {
            report.push(format!(
                "zone {abbr}: {:?} vs {off}",
                zone_abbreviation(abbr)
            ));
        }
    }
    if zone_abbreviations().count() != zones.len() {
        report.push(format!(
            "{} zone abbreviations vs {}",
            zone_abbreviations().count(),
            zones.len()
        ));
    }
}

fn python_available() -> Result<(), String> {
    if !Path::new(PYTHON).exists() {
        return Err(format!("{PYTHON} is missing"));
    }
    let probe = Command::new(PYTHON)
        .args([
            "-c",
            &format!(
                "import sys; sys.path.insert(0, {DIST:?}); import fail2ban.server.datedetector"
            ),
        ])
        .output()
        .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "fail2ban is not importable: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    Ok(())
}

#[test]
fn differential_against_python() {
    // child mode: one run of the Rust side, in its own process
    if let (Ok(run), Ok(dir)) = (std::env::var(WORKER_ENV), std::env::var(DIR_ENV)) {
        let dir = PathBuf::from(dir);
        let input: Value =
            serde_json::from_slice(&std::fs::read(dir.join("input.json")).expect("input"))
                .expect("input json");
        let k: usize = run.parse().expect("run index");
        let now = input["runs"][k]["now"].as_f64().expect("now");
        crate::mytime::set_time(Some(now));
        let out = run_rust(&input);
        std::fs::write(dir.join(format!("rust-{k}.json")), out.to_string()).expect("write");
        return;
    }
    if let Err(why) = python_available() {
        println!("differential_against_python skipped: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("f2b-dates-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let start = crate::mytime::now().floor();
    let runs: Vec<Value> = RUNS
        .iter()
        .map(|(tz, now)| json!({"tz": tz, "now": now.unwrap_or(start)}))
        .collect();
    let scenarios = scenarios();
    let input = json!({"runs": runs, "scenarios": scenarios});
    std::fs::write(dir.join("input.json"), input.to_string()).expect("write input");
    std::fs::write(dir.join("script.py"), SCRIPT).expect("write script");
    let exe = std::env::current_exe().expect("test binary");
    let mut report = Vec::new();
    let mut compared = 0;
    for (k, (tz, _)) in RUNS.iter().enumerate() {
        let child = Command::new(&exe)
            .args([
                "dates::difftest::differential_against_python",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER_ENV, k.to_string())
            .env(DIR_ENV, &dir)
            .env("TZ", tz)
            .output()
            .expect("run worker");
        assert!(
            child.status.success(),
            "worker {k} failed: {}",
            String::from_utf8_lossy(&child.stderr)
        );
        let py = Command::new(PYTHON)
            .arg(dir.join("script.py"))
            .arg(dir.join("input.json"))
            .arg(k.to_string())
            .arg(dir.join(format!("python-{k}.json")))
            .arg(DIST)
            .env("TZ", tz)
            .env("PYTHONHASHSEED", "0")
            .output()
            .expect("run python");
        assert!(
            py.status.success(),
            "python run {k} failed: {}",
            String::from_utf8_lossy(&py.stderr)
        );
        let read = |name: String| -> Value {
            serde_json::from_slice(&std::fs::read(dir.join(name)).expect("result"))
                .expect("result json")
        };
        let rust = read(format!("rust-{k}.json"));
        let python = read(format!("python-{k}.json"));
        if k == 0 {
            compare_tables(&python, &mut report);
        }
        compare(
            &format!("TZ={tz}"),
            &rust,
            &python,
            &mut report,
            &mut compared,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut text = String::new();
    for r in &report {
        let _ = writeln!(text, "{r}");
    }
    println!(
        "differential_against_python: {} scenarios × {} runs, {compared} lines compared, {} differences",
        scenarios.len(),
        RUNS.len(),
        report.len()
    );
    assert!(report.is_empty(), "differences from Python:\n{text}");
}
