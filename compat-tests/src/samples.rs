//! The sample-log harness: every `# failJSON:` annotation of a fail2ban
//! configuration tree, checked against our filter engine.
//!
//! fail2ban ships, next to each filter, a sample log whose lines are
//! annotated with what the filter must find (`match`, `host`, `time`,
//! captured fields, `attempts`, `users`), with `filterOptions` /
//! `fileOptions` / `addFILE` directives.  This program runs them the way
//! fail2ban's own sample tests do (raw hosts, check-all mode, no find-time
//! checks, time frozen at 2005-08-14 12:00 CEST), and prints a per-filter
//! table.  Exit status 1 when any annotation fails.
//!
//! Usage: `samples --config DIR --logs DIR [--test-config DIR] [--only NAME]...
//! [--skip NAME]... [--verbose] [--title TEXT]`

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use fail2ban::config::FilterReader;
use fail2ban::dates::Timestamp;
use fail2ban::failregex::{Value, resolve_tags};
use fail2ban::filter::{FailResult, Filter};
use fail2ban::ipaddr::{IpAddr, UseDns};
use fail2ban::pyvalue::PyValue;
use fail2ban::regex::PyRegex;
use serde_json::Value as Json;

/// fail2ban's test clock: 2005-08-14 10:00:00 UTC.
const TEST_NOW: i64 = 1124013600;
const TEST_NOW_STR: &str = "2005-08-14T10:00:00";
const TEST_TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";

/// One filter instance per option combination, with the regex indices used.
struct FilterCase {
    filter: Filter,
    used: HashSet<usize>,
}

/// The result of one filter's sample test.
#[derive(Default)]
struct Outcome {
    annotations: usize,
    /// `(file, line)` of every annotation met, for the distinct total.
    seen: Vec<(String, usize)>,
    lines: usize,
    failures: Vec<String>,
}

/// Evaluates the tiny Python expressions the sample logs use in
/// `test.condition` and `constraint`: `name == 'x'`, `name != 'x'`,
/// `opts.get('k') == 'v'`, `opts.get('k') != 'v'`.
fn eval_condition(
    expr: &str,
    name: &str,
    opts: &serde_json::Map<String, Json>,
) -> Result<bool, String> {
    let (lhs, rhs, eq) = if let Some((l, r)) = expr.split_once("==") {
        (l.trim(), r.trim(), true)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l.trim(), r.trim(), false)
    } else {
        return Err(format!("unsupported condition expression: {expr}"));
    };
    let literal = |s: &str| -> Option<Option<String>> {
        if s == "None" {
            return Some(None);
        }
        let q = s.chars().next()?;
        (matches!(q, '\'' | '"') && s.len() >= 2 && s.ends_with(q))
            .then(|| Some(s[1..s.len() - 1].to_string()))
    };
    let value = |s: &str| -> Result<Option<String>, String> {
        if s == "name" {
            return Ok(Some(name.to_string()));
        }
        if let Some(inner) = s
            .strip_prefix("opts.get(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let key = literal(inner.trim())
                .flatten()
                .ok_or_else(|| format!("bad key in {s}"))?;
            return Ok(opts.get(&key).map(|v| match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        literal(s).ok_or_else(|| format!("unsupported operand: {s}"))
    };
    let (a, b) = (value(lhs)?, value(rhs)?);
    Ok((a == b) == eq)
}

/// `time.mktime` of a naive local `%Y-%m-%dT%H:%M:%S[.%f]` text, plus the fraction.
fn local_time(text: &str) -> Option<f64> {
    let (main, frac) = match text.split_once('.') {
        Some((m, f)) => (m, format!("0.{f}").parse::<f64>().ok()?),
        None => (text, 0.0),
    };
    let dt = chrono::NaiveDateTime::parse_from_str(main, "%Y-%m-%dT%H:%M:%S").ok()?;
    use chrono::{Datelike, Timelike};
    // SAFETY: an all-zero `tm` is valid; mktime reads and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = dt.year() - 1900;
    tm.tm_mon = dt.month0() as i32;
    tm.tm_mday = dt.day() as i32;
    tm.tm_hour = dt.hour() as i32;
    tm.tm_min = dt.minute() as i32;
    tm.tm_sec = dt.second() as i32;
    tm.tm_isdst = -1;
    // SAFETY: tm is a valid, initialised struct.
    let t = unsafe { libc::mktime(&mut tm) };
    Some(t as f64 + frac)
}

/// The greedy catch-all lint of fail2ban's sample tests.
fn wrong_greed() -> PyRegex {
    let host = resolve_tags("<HOST>", UseDns::Yes);
    let escaped = regex_escape_py(&host);
    PyRegex::new(&format!(
        r"\.[+\*](?!\?)[^\$\^]*{escaped}.*(?:\.[+\*].*|[^\$])$"
    ))
    .expect("lint regex")
}

/// Python's `re.escape`.
fn regex_escape_py(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads a sample log as fail2ban's test does: UTF-8, line ends removed,
/// a last line without line end kept.
fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
        .collect();
    if text.is_empty() {
        lines.clear();
    }
    Ok(lines)
}

/// Builds the filter for one option combination.
fn read_filter(
    name: &str,
    basedir: &Path,
    opts: &[(String, String)],
    lint: &PyRegex,
) -> Result<Filter, String> {
    let init = opts.iter().cloned().collect();
    let base = basedir.to_string_lossy().into_owned();
    let mut reader = FilterReader::new(name, "jail", init, Some(&base));
    if !reader.read().map_err(|e| e.to_string())? {
        return Err(format!(
            "cannot read filter {name} under {}",
            basedir.display()
        ));
    }
    reader.get_options(None, false).map_err(|e| e.to_string())?;
    let stream = reader.convert().map_err(|e| e.to_string())?;
    let mut flt = Filter::new();
    flt.return_raw_host = true;
    flt.set_check_all_regex(true);
    flt.set_check_find_time(false);
    for cmd in &stream {
        let PyValue::List(items) = cmd else { continue };
        let kind = items[0].to_py_str();
        let opt = items[2].to_py_str();
        let values: Vec<String> = match (kind.as_str(), &items[3]) {
            ("multi-set", PyValue::List(v)) => v.iter().map(PyValue::to_py_str).collect(),
            ("set", v) => vec![v.to_py_str()],
            _ => return Err(format!("unexpected config token {}", cmd.repr())),
        };
        for v in values {
            let r = match opt.as_str() {
                "prefregex" => flt.set_prefregex(&v),
                "addfailregex" => flt.add_failregex(&v),
                "addignoreregex" => flt.add_ignoreregex(&v),
                "maxlines" => flt.set_maxlines(v.trim().parse().unwrap_or(0)),
                "datepattern" => flt.set_datepattern(Some(&v)),
                _ => Ok(()),
            };
            r.map_err(|e| format!("{opt}: {e}"))?;
        }
    }
    for re in flt.failregexes() {
        if lint.is_match(re.expanded()) {
            return Err(format!(
                "regex contains greedy catch-all before <HOST>, not hard-anchored at end: {}",
                re.expanded()
            ));
        }
    }
    Ok(flt)
}

/// Compares one expected annotation field with the failure.
fn field_matches(k: &str, v: &Json, r: &FailResult) -> bool {
    let fv = r.groups.get(k).filter(|x| **x != Value::None);
    match fv {
        None => match k {
            "host" => match (&r.id, v) {
                (Some(id), Json::String(s)) => id.eq_text(s),
                (None, Json::Null) => true,
                _ => false,
            },
            "attempts" => {
                let n = match r.groups.get("matches") {
                    Some(Value::Lines(l)) => l.len(),
                    _ => 0,
                };
                v.as_u64() == Some(n as u64)
            }
            _ => v.is_null(),
        },
        Some(Value::Set(items)) => match v {
            Json::Array(a) => {
                let mut want: Vec<String> = a
                    .iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect();
                let mut have = items.clone();
                want.sort();
                have.sort();
                want == have
            }
            _ => false,
        },
        Some(Value::Str(s)) => v.as_str() == Some(&**s),
        Some(Value::Int(i)) => v.as_i64() == Some(*i),
        Some(Value::Ip(ip)) => v.as_str().is_some_and(|s| ip.eq_text(s)),
        Some(other) => {
            let py = fail2ban::filter::value_to_py(other);
            matches!(v, Json::String(s) if *s == py.to_py_str())
        }
    }
}

fn time_matches(expected: &str, t: Option<Timestamp>) -> Result<bool, String> {
    let want = local_time(expected).ok_or_else(|| format!("bad time annotation {expected}"))?;
    Ok(t.is_some_and(|t| t.as_f64() == want))
}

fn describe(r: &FailResult) -> String {
    let id = r.id.as_ref().map_or("None".to_string(), IpAddr::ntoa);
    let groups = PyValue::Dict(
        r.groups
            .iter()
            .filter(|(k, _)| &**k != "matches")
            .map(|(k, v)| {
                (
                    PyValue::str(k.to_string()),
                    fail2ban::filter::value_to_py(v),
                )
            })
            .collect(),
    );
    format!(
        "regex {} id {id} time {:?} groups {}",
        r.index,
        r.time.map(|t| t.as_f64()),
        groups.repr()
    )
}

/// Runs the sample test of filter `name`.
fn run_filter(name: &str, basedir: &Path, logs: &Path, lint: &PyRegex) -> Outcome {
    let mut out = Outcome::default();
    if !logs.join(name).is_file() {
        out.failures
            .push(format!("No sample log file available for '{name}' filter"));
        return out;
    }
    let mut filenames = vec![name.to_string()];
    let mut cases: BTreeMap<String, FilterCase> = BTreeMap::new();
    let mut used_re: HashSet<String> = HashSet::new();
    let mut common: serde_json::Map<String, Json> = serde_json::Map::new();
    let mut active: Vec<(String, serde_json::Map<String, Json>)> = Vec::new();
    let annot = PyRegex::new(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$")
        .expect("annotation regex");
    let mut fi = 0;
    while fi < filenames.len() {
        let fname = filenames[fi].clone();
        fi += 1;
        let path = logs.join(&fname);
        let lines = match read_lines(&path) {
            Ok(l) => l,
            Err(e) => {
                out.failures.push(e);
                return out;
            }
        };
        let mut ignore_block = false;
        let mut i = 0;
        while i < lines.len() {
            let lnnum = i + 1;
            let mut line = lines[i].clone();
            i += 1;
            let mut faildata = serde_json::Map::new();
            if let Some(c) = annot.search(&line) {
                let (ks, ke) = c.get(1).unwrap_or((0, 0));
                let (vs, ve) = c.get(2).unwrap_or((0, 0));
                let kind = line[ks..ke].to_string();
                let data: Json = match serde_json::from_str(&line[vs..ve]) {
                    Ok(d) => d,
                    Err(e) => {
                        out.failures
                            .push(format!("{e}: {}:{lnnum}", path.display()));
                        return out;
                    }
                };
                match kind.as_str() {
                    "fileOptions" => {
                        common = data.as_object().cloned().unwrap_or_default();
                        continue;
                    }
                    "filterOptions" => {
                        active.clear();
                        ignore_block = false;
                        let list = match data {
                            Json::Array(a) => a,
                            other => vec![other],
                        };
                        for entry in list {
                            let mut opts = common.clone();
                            for (k, v) in entry.as_object().cloned().unwrap_or_default() {
                                opts.insert(k, v);
                            }
                            if let Some(Json::String(cond)) = opts.get("test.condition")
                                && !cond.is_empty()
                            {
                                match eval_condition(cond, name, &opts) {
                                    Ok(b) => ignore_block = !b,
                                    Err(e) => {
                                        out.failures
                                            .push(format!("{}:{lnnum}: {e}", path.display()));
                                        return out;
                                    }
                                }
                            }
                            if ignore_block {
                                continue;
                            }
                            let flt_opts: Vec<(String, String)> = opts
                                .iter()
                                .filter(|(k, _)| !k.starts_with("test."))
                                .map(|(k, v)| (k.clone(), json_str(v)))
                                .collect();
                            let key = match opts.get("test.filter-name").and_then(Json::as_str) {
                                Some(n) if !n.is_empty() => format!("{name}{n}"),
                                _ if flt_opts.is_empty() => name.to_string(),
                                _ => format!("{name}{}", py_dict_str(&flt_opts)),
                            };
                            if !cases.contains_key(&key) {
                                match read_filter(name, basedir, &flt_opts, lint) {
                                    Ok(f) => {
                                        cases.insert(
                                            key.clone(),
                                            FilterCase {
                                                filter: f,
                                                used: HashSet::new(),
                                            },
                                        );
                                    }
                                    Err(e) => {
                                        out.failures.push(format!("{key}: {e}"));
                                        return out;
                                    }
                                }
                            }
                            active.push((key, opts));
                        }
                        continue;
                    }
                    "addFILE" => {
                        filenames.push(data.as_str().unwrap_or_default().to_string());
                        continue;
                    }
                    _ => {
                        out.annotations += 1;
                        out.seen.push((fname.clone(), lnnum));
                        faildata = data.as_object().cloned().unwrap_or_default();
                        if i >= lines.len() {
                            break;
                        }
                        line = lines[i].clone();
                        i += 1;
                    }
                }
            } else if ignore_block || line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if ignore_block {
                continue;
            }
            if active.is_empty() {
                if !cases.contains_key(name) {
                    match read_filter(name, basedir, &[], lint) {
                        Ok(f) => {
                            cases.insert(
                                name.to_string(),
                                FilterCase {
                                    filter: f,
                                    used: HashSet::new(),
                                },
                            );
                        }
                        Err(e) => {
                            out.failures.push(format!("{name}: {e}"));
                            return out;
                        }
                    }
                }
                active.push((name.to_string(), serde_json::Map::new()));
            }
            out.lines += 1;
            for (key, opts) in &active {
                if let Some(Json::String(c)) = faildata.get("constraint")
                    && !c.is_empty()
                {
                    match eval_condition(c, name, opts) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            out.failures
                                .push(format!("{}:{lnnum}: {e}", path.display()));
                            continue;
                        }
                    }
                }
                let case = cases.get_mut(key).expect("filter case");
                let results = if opts.get("logtype").and_then(Json::as_str) != Some("journal") {
                    match case.filter.process_line(&line) {
                        Ok(r) => r,
                        Err(e) => {
                            out.failures
                                .push(format!("{key}: {}:{lnnum}: {e}", path.display()));
                            continue;
                        }
                    }
                } else {
                    let prefix = opts
                        .get("test.prefix-line")
                        .and_then(Json::as_str)
                        .unwrap_or("");
                    let text = format!("{TEST_NOW_STR}{prefix}{line}");
                    let tl = fail2ban::failregex::TupleLine::new(text, 0, TEST_NOW_STR.len());
                    case.filter.process_tuple_line(tl, Timestamp::Int(TEST_NOW))
                };
                let regex_texts: Vec<String> = case
                    .filter
                    .failregexes()
                    .iter()
                    .map(|r| r.expanded().to_string())
                    .collect();
                let mut found = Vec::new();
                for r in results {
                    if r.id.is_none() || r.groups.truthy("nofail") {
                        case.used.insert(r.index);
                        used_re.insert(regex_texts[r.index].clone());
                        continue;
                    }
                    found.push(r);
                }
                let should = faildata
                    .get("match")
                    .and_then(Json::as_bool)
                    .unwrap_or(false);
                let place = format!("{key}: {}:{lnnum}: {line}", path.display());
                if found.is_empty() {
                    if should {
                        out.failures
                            .push(format!("Line not matched when should have: {place}"));
                    }
                    continue;
                }
                if !should {
                    out.failures.push(format!(
                        "Line matched when shouldn't have: {place} ({})",
                        describe(&found[0])
                    ));
                    continue;
                }
                if found.len() != 1 {
                    let idx: Vec<usize> = found.iter().map(|r| r.index).collect();
                    out.failures
                        .push(format!("Multiple regexs matched {idx:?}: {place}"));
                    continue;
                }
                let r = &found[0];
                for (k, v) in &faildata {
                    if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
                        continue;
                    }
                    if !field_matches(k, v, r) {
                        out.failures.push(format!(
                            "field {k}: expected {v}, got {}: {place}",
                            describe(r)
                        ));
                    }
                }
                if let Some(Json::String(t)) = faildata.get("time") {
                    match time_matches(t, r.time) {
                        Ok(true) => {}
                        Ok(false) => out.failures.push(format!(
                            "time mismatch: expected {t} ({:?}), got {:?}: {place}",
                            local_time(t),
                            r.time.map(|x| x.as_f64())
                        )),
                        Err(e) => out.failures.push(format!("{e}: {place}")),
                    }
                }
                case.used.insert(r.index);
                used_re.insert(regex_texts[r.index].clone());
            }
        }
    }
    for (key, case) in &cases {
        for (i, re) in case.filter.failregexes().iter().enumerate() {
            if !case.used.contains(&i) && !used_re.contains(re.expanded()) {
                out.failures.push(format!(
                    "{key}: Regex has no samples: {i}: {}",
                    re.expanded()
                ));
            }
        }
    }
    out
}

fn json_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `str(dict)` of the filter options (fail2ban's cache key).
fn py_dict_str(opts: &[(String, String)]) -> String {
    PyValue::Dict(
        opts.iter()
            .map(|(k, v)| (PyValue::str(k.clone()), PyValue::str(v.clone())))
            .collect(),
    )
    .repr()
}

/// The filters a tree tests: `filter.d/*.conf` except `*common.conf`.
fn filters_in(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("filter.d"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".conf") && !n.starts_with('.') && pred(n))
                .map(|n| n.trim_end_matches(".conf").to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// fail2ban's test filters (`zzz-*.conf`) include the tree's common.conf
/// through `../../../../../../../config/filter.d/common.conf`, a path that
/// only resolves in fail2ban's source layout.  Stage them in a temporary
/// directory where that path leads to `config`.
fn stage_test_config(test_config: &Path, config: &Path) -> std::io::Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("f2b-samples-{}", std::process::id()));
    let base = root.join("a/b/c/d/e/f");
    std::fs::create_dir_all(base.join("filter.d"))?;
    let link = root.join("config");
    if !link.exists() {
        std::os::unix::fs::symlink(std::fs::canonicalize(config)?, &link)?;
    }
    for e in std::fs::read_dir(test_config.join("filter.d"))? {
        let e = e?;
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("zzz-") {
            std::fs::copy(e.path(), base.join("filter.d").join(&n))?;
        }
    }
    Ok(base)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config: Option<PathBuf> = None;
    let mut logs: Option<PathBuf> = None;
    let mut test_config: Option<PathBuf> = None;
    let mut only: Vec<String> = Vec::new();
    let mut skip: Vec<String> = Vec::new();
    let mut verbose = false;
    let mut title = String::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => config = it.next().map(PathBuf::from),
            "--logs" => logs = it.next().map(PathBuf::from),
            "--test-config" => test_config = it.next().map(PathBuf::from),
            "--only" => only.extend(it.next()),
            "--skip" => skip.extend(it.next()),
            "--title" => title = it.next().unwrap_or_default(),
            "--verbose" => verbose = true,
            other => {
                eprintln!("samples: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let (Some(config), Some(logs)) = (config, logs) else {
        eprintln!(
            "usage: samples --config DIR --logs DIR [--test-config DIR] [--only NAME]... [--verbose] [--title T]"
        );
        std::process::exit(2);
    };
    // fail2ban's sample tests run in CET/CEST with the clock at TEST_NOW
    // SAFETY: single-threaded at this point; tzset only re-reads TZ.
    unsafe {
        std::env::set_var("TZ", TEST_TZ);
        libc_tzset();
    }
    fail2ban::mytime::set_time(Some(TEST_NOW as f64));
    let lint = wrong_greed();
    let mut tests: Vec<(String, PathBuf)> = filters_in(&config, |n| !n.ends_with("common.conf"))
        .into_iter()
        .map(|n| (n, config.clone()))
        .collect();
    if let Some(tc) = &test_config {
        match stage_test_config(tc, &config) {
            Ok(staged) => tests.extend(
                filters_in(&staged, |n| n.starts_with("zzz-"))
                    .into_iter()
                    .map(|n| (n, staged.clone())),
            ),
            Err(e) => {
                eprintln!(
                    "samples: cannot stage the test filters of {}: {e}",
                    tc.display()
                );
                std::process::exit(2);
            }
        }
    }
    if !only.is_empty() {
        tests.retain(|(n, _)| only.contains(n));
    }
    for n in &skip {
        println!("skipped: {n}");
    }
    tests.retain(|(n, _)| !skip.contains(n));
    let mut distinct: HashSet<(String, usize)> = HashSet::new();
    let mut total_failed_filters = 0;
    let mut rows = Vec::new();
    let mut all_failures: HashMap<String, Vec<String>> = HashMap::new();
    for (name, basedir) in &tests {
        let o = run_filter(name, basedir, &logs, &lint);
        distinct.extend(o.seen.iter().cloned());
        let status = if o.failures.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        if !o.failures.is_empty() {
            total_failed_filters += 1;
            all_failures.insert(name.clone(), o.failures.clone());
        }
        rows.push((
            name.clone(),
            o.annotations,
            o.lines,
            o.failures.len(),
            status,
        ));
    }
    println!("Sample-log annotations {title}");
    println!("config: {}  logs: {}", config.display(), logs.display());
    println!(
        "{:<32} {:>11} {:>7} {:>9}  result",
        "filter", "annotations", "lines", "failures"
    );
    for (name, a, l, f, s) in &rows {
        println!("{name:<32} {a:>11} {l:>7} {f:>9}  {s}");
    }
    println!(
        "{} filters, {} distinct annotations, {} filters passed, {} failed",
        rows.len(),
        distinct.len(),
        rows.len() - total_failed_filters,
        total_failed_filters
    );
    let mut names: Vec<&String> = all_failures.keys().collect();
    names.sort();
    for n in names {
        let f = &all_failures[n];
        println!("\n--- {n}: {} failure(s)", f.len());
        for (i, msg) in f.iter().enumerate() {
            if i >= 20 && !verbose {
                println!("  ... {} more (use --verbose)", f.len() - i);
                break;
            }
            println!("  {msg}");
        }
    }
    std::process::exit(i32::from(total_failed_filters > 0));
}

unsafe extern "C" {
    /// C library `tzset` (not exported by the `libc` crate for all targets).
    #[link_name = "tzset"]
    fn libc_tzset();
}
