//! `fail2ban-regex`: test filters against log files, as fail2ban's tool does.
//!
//! Same options (parsed with optparse rules), same resolution of the REGEX
//! argument (literal regex, filter name with options, filter file), same
//! output layouts (the summary with its counters and line lists, and the
//! `-o` formats `row`, `id`, `fid`, `ip`, `msg`, group names and tag
//! templates), same exit status (0 done, 255 refused, 2 bad options, 1 for
//! the cases where Python dies with a traceback).  Only the help text is our
//! own wording.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config;
use crate::dates::{DateConverter, Timestamp};
use crate::failregex::{Groups, Value};
use crate::filter::{
    Dated, Dater, Evaluation, FailResult, Filter, FoundDate, LineError, Rules, py_str, value_to_py,
};
use crate::ipaddr::IpAddr;
use crate::optparse::{self, Action, Opt, Stop};
use crate::pyvalue::{PyValue, float_repr, str_repr};
use crate::regex::{Flags, PyRegex};

/// The version fail2ban-regex reports (the Python release we replace).
pub const VERSION: &str = "1.0.2";

fn options() -> Vec<Opt> {
    use Action::*;
    vec![
        Opt::new(None, &["--version"], "version", Exit),
        Opt::new(Some('h'), &["--help"], "help", Exit),
        Opt::new(Some('c'), &["--config"], "config", Store),
        Opt::new(Some('d'), &["--datepattern"], "datepattern", Store),
        Opt::new(None, &["--timezone", "--TZ"], "timezone", Store),
        Opt::new(Some('e'), &["--encoding"], "encoding", Store),
        Opt::new(Some('r'), &["--raw"], "raw", StoreTrue),
        Opt::new(None, &["--usedns"], "usedns", Store),
        Opt::new(Some('L'), &["--maxlines"], "maxlines", StoreInt),
        Opt::new(Some('m'), &["--journalmatch"], "journalmatch", Store),
        Opt::new(Some('l'), &["--log-level"], "log_level", Store),
        Opt::new(Some('V'), &[], "V", Exit),
        Opt::new(Some('v'), &["--verbose"], "verbose", Count),
        Opt::new(None, &["--verbosity"], "verbosity", StoreInt),
        Opt::new(None, &["--verbose-date", "--VD"], "verbose_date", StoreTrue),
        Opt::new(Some('D'), &["--debuggex"], "debuggex", StoreTrue),
        Opt::new(None, &["--no-check-all"], "check_all", StoreFalse),
        Opt::new(Some('o'), &["--out"], "out", Store),
        Opt::new(None, &["--print-no-missed"], "print_no_missed", StoreTrue),
        Opt::new(None, &["--print-no-ignored"], "print_no_ignored", StoreTrue),
        Opt::new(
            None,
            &["--print-all-matched"],
            "print_all_matched",
            StoreTrue,
        ),
        Opt::new(None, &["--print-all-missed"], "print_all_missed", StoreTrue),
        Opt::new(
            None,
            &["--print-all-ignored"],
            "print_all_ignored",
            StoreTrue,
        ),
        Opt::new(Some('t'), &["--log-traceback"], "log_traceback", StoreTrue),
        Opt::new(None, &["--full-traceback"], "full_traceback", StoreTrue),
    ]
}

fn usage(prog: &str) -> String {
    format!("{prog} [OPTIONS] <LOG> <REGEX> [IGNOREREGEX]")
}

fn help_text(prog: &str) -> String {
    format!(
        "Usage: {usage}

fail2ban-regex (fail2ban-rs) tests failure regexes, filters and date
patterns against log lines, the way fail2ban's server would apply them.

LOG:
  string                a log line to test
  filename              path to a log file (/var/log/auth.log)
  systemd-journal       the systemd journal, optionally with backend options
                        (systemd-journal[journalflags=1])

REGEX:
  string                a failregex
  filter                a filter name, optionally with options (sshd[mode=aggressive])
  filename              path to a filter file (filter.d/sshd.conf)

IGNOREREGEX:
  string                an ignoreregex
  filename              path to a filter file (filter.d/sshd.conf)

Options:
  --version             show program's version number and exit
  -h, --help            show this help message and exit
  -c CONFIG, --config=CONFIG
                        set alternate config directory
  -d DATEPATTERN, --datepattern=DATEPATTERN
                        set custom pattern used to match date/times
  --timezone=TIMEZONE, --TZ=TIMEZONE
                        set time-zone used by convert time format
  -e ENCODING, --encoding=ENCODING
                        File encoding. Default: system locale
  -r, --raw             Raw hosts, don't resolve dns
  --usedns=USEDNS       DNS specified replacement of tags <HOST> in regexp
                        ('yes' - matches all form of hosts, 'no' - IP
                        addresses only)
  -L MAXLINES, --maxlines=MAXLINES
                        maxlines for multi-line regex.
  -m JOURNALMATCH, --journalmatch=JOURNALMATCH
                        journalctl style matches overriding filter file.
                        \"systemd-journal\" only
  -l LOG_LEVEL, --log-level=LOG_LEVEL
                        Log level for the Fail2Ban logger to use
  -V                    get version in machine-readable short format
  -v, --verbose         Increase verbosity
  --verbosity=VERBOSE   Set numerical level of verbosity (0..4)
  --verbose-date, --VD  Verbose date patterns/regex in output
  -D, --debuggex        Produce debuggex.com urls for debugging there
  --no-check-all        Disable check for all regex's
  -o OUT, --out=OUT     Set token to print failure information only (row, id,
                        ip, msg, host, ip4, ip6, dns, matches, ...)
  --print-no-missed     Do not print any missed lines
  --print-no-ignored    Do not print any ignored lines
  --print-all-matched   Print all matched lines
  --print-all-missed    Print all missed lines, no matter how many
  --print-all-ignored   Print all ignored lines, no matter how many
  -t, --log-traceback   Enrich log-messages with compressed tracebacks
  --full-traceback      Either to make the tracebacks full, not compressed (as
                        by default)

fail2ban-rs is dual-licensed under MIT or Apache-2.0.
",
        usage = usage(prog)
    )
}

/// fail2ban-regex's `shortstr`: at most `l` characters, `...` when cut.
fn shortstr(s: &str, l: usize) -> String {
    if s.chars().count() > l {
        let head: String = s.chars().take(l - 3).collect();
        format!("{head}...")
    } else {
        s.to_string()
    }
}

/// The parsed command line.
struct Opts {
    config: String,
    datepattern: Option<String>,
    timezone: Option<String>,
    encoding: String,
    raw: bool,
    usedns: Option<String>,
    maxlines: i64,
    verbose: i64,
    verbose_date: bool,
    debuggex: bool,
    check_all: bool,
    out: Option<String>,
    print_no_missed: bool,
    print_no_ignored: bool,
    print_all_matched: bool,
    print_all_missed: bool,
    print_all_ignored: bool,
}

/// A regex with its hit counter (fail2ban-regex's `RegexStat`).
struct RegexStat {
    text: String,
    hits: u64,
    /// (id, time, multiple) per hit, kept for verbose output only.
    ips: Vec<(Option<IpAddr>, Option<Timestamp>, bool)>,
}

impl RegexStat {
    fn new(text: &str) -> RegexStat {
        RegexStat {
            text: text.to_string(),
            hits: 0,
            ips: Vec::new(),
        }
    }
}

#[derive(Default)]
struct LineStats {
    tested: u64,
    matched: u64,
    matched_lines: Vec<String>,
    missed: i64,
    missed_lines: Vec<String>,
    ignored: u64,
    ignored_lines: Vec<String>,
    matched_lines_te: Vec<String>,
    missed_lines_te: Vec<String>,
    ignored_lines_te: Vec<String>,
}

/// Why the run stopped early.
enum Fail {
    /// Exit with this status (messages already printed).
    Exit(i32),
}

struct Tool {
    opts: Opts,
    out: BufWriter<io::Stdout>,
    filter: Filter,
    maxlines_set: bool,
    datepattern_set: bool,
    print_limit: i64,
    pref_matched: u64,
    pref_groups: Vec<String>,
    failregex: Vec<RegexStat>,
    ignoreregex: Vec<RegexStat>,
    stats: LineStats,
    elapsed: Option<f64>,
    line_ignored: bool,
    backend: String,
}

impl Tool {
    /// Prints a line unless in `-o` mode.
    fn output(&mut self, line: &str) {
        if self.opts.out.is_none() {
            self.print(line);
        }
    }

    /// Prints a line.
    fn print(&mut self, line: &str) {
        if writeln!(self.out, "{line}").is_err() {
            // stdout closed early (e.g. `| head`): nothing more to say
            std::process::exit(0);
        }
    }

    fn set_maxlines(&mut self, v: i64) -> Result<(), String> {
        if !self.maxlines_set {
            self.filter.set_maxlines(v).map_err(|e| e.to_string())?;
            self.maxlines_set = true;
            let n = self.filter.maxlines();
            self.output(&format!("Use         maxlines : {n}"));
        }
        Ok(())
    }

    fn set_datepattern(&mut self, pattern: &str) -> Result<(), String> {
        if !self.datepattern_set {
            self.filter
                .set_datepattern(Some(pattern))
                .map_err(|e| e.to_string())?;
            self.datepattern_set = true;
            let name = match self.filter.date_detector() {
                Some(dd) => {
                    let t = dd.templates();
                    if t.is_empty() || t.len() > 2 {
                        "Default Detectors".to_string()
                    } else {
                        t[0].name.clone()
                    }
                }
                None => "None".to_string(),
            };
            self.output(&format!("Use      datepattern : {pattern} : {name}"));
        }
        Ok(())
    }

    fn new(opts: Opts) -> Result<Tool, String> {
        let mut tool = Tool {
            print_limit: if opts.maxlines != 0 {
                opts.maxlines
            } else {
                20
            },
            opts,
            out: BufWriter::with_capacity(1 << 16, io::stdout()),
            filter: Filter::new(),
            maxlines_set: false,
            datepattern_set: false,
            pref_matched: 0,
            pref_groups: Vec::new(),
            failregex: Vec::new(),
            ignoreregex: Vec::new(),
            stats: LineStats::default(),
            elapsed: None,
            line_ignored: false,
            backend: "auto".to_string(),
        };
        if tool.opts.maxlines != 0 {
            tool.set_maxlines(tool.opts.maxlines)?;
        }
        if let Some(tz) = tool.opts.timezone.clone() {
            tool.filter
                .set_logtimezone(Some(&tz))
                .map_err(|e| e.to_string())?;
        }
        tool.filter.set_check_find_time(false);
        if let Some(dp) = tool.opts.datepattern.clone() {
            tool.set_datepattern(&dp)?;
        }
        if let Some(u) = tool.opts.usedns.clone() {
            tool.filter.set_usedns(&u);
        }
        tool.filter.return_raw_host = tool.opts.raw;
        tool.filter
            .set_check_all_regex(tool.opts.check_all && tool.opts.out.is_none());
        tool.filter.ignore_pending = tool.opts.out.is_some();
        tool.filter.set_keep_pref_groups(tool.opts.verbose > 0);
        Ok(tool)
    }

    /// fail2ban-regex's `readRegex`.
    fn read_regex(&mut self, value: &str, fail: bool) -> Result<(), Fail> {
        let label = if fail { "failregex" } else { "ignoreregex" };
        let mut basedir = PathBuf::from(&self.opts.config);
        let mut flt_name = value.to_string();
        let mut flt_file: Option<PathBuf> = None;
        let mut flt_opts: indexmap::IndexMap<String, String> = indexmap::IndexMap::new();
        if fail && looks_like_filter(value) {
            match config::extract_options(value) {
                Ok((name, opts)) => {
                    flt_name = name;
                    flt_opts = opts;
                    let try_names: Vec<String> = if last_chars(&flt_name, 6).contains('.') {
                        vec![flt_name.clone()]
                    } else {
                        vec![
                            flt_name.clone(),
                            format!("{flt_name}.conf"),
                            format!("{flt_name}.local"),
                        ]
                    };
                    for n in try_names {
                        let candidate = if !n.contains('/') {
                            if basedir.file_name().is_some_and(|f| f == "filter.d") {
                                basedir.join(&n)
                            } else {
                                basedir.join("filter.d").join(&n)
                            }
                        } else {
                            let p = PathBuf::from(&n);
                            basedir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                            p
                        };
                        if candidate.is_file() {
                            flt_file = Some(candidate);
                            break;
                        }
                    }
                }
                Err(e) => {
                    self.print(&format!("ERROR: Wrong filter name or options: {e}"));
                    self.print(&format!("       while parsing: {value}"));
                    return Err(Fail::Exit(255));
                }
            }
        }
        if flt_file.is_some() {
            let config_dir = PathBuf::from(&self.opts.config);
            let standard = basedir == config_dir
                || basedir.file_name().is_some_and(|f| f == "filter.d")
                || (!last_chars(&flt_name, 6).contains('.') && !flt_name.contains('/'));
            let explicit_path;
            if standard {
                if basedir.file_name().is_some_and(|f| f == "filter.d") {
                    basedir = basedir.parent().map(Path::to_path_buf).unwrap_or_default();
                }
                let stem = Path::new(&flt_name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                flt_name = stem;
                explicit_path = None;
                let msg = format!(
                    "Use {label:>11} filter file : {flt_name}, basedir: {}",
                    basedir.display()
                );
                self.output(&msg);
            } else {
                self.output(&format!("Use {label:>11} file : {flt_name}"));
                let p = PathBuf::from(&flt_name);
                explicit_path = Some(if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir().unwrap_or_default().join(p)
                });
            }
            if !flt_opts.is_empty() {
                let dict = PyValue::Dict(
                    flt_opts
                        .iter()
                        .map(|(k, v)| (PyValue::str(k.clone()), PyValue::str(v.clone())))
                        .collect(),
                );
                self.output(&format!("Use   filter options : {}", dict.repr()));
            }
            let loaded = load_filter(
                &flt_name,
                &flt_opts,
                &basedir,
                explicit_path.as_deref(),
                &self.backend,
            );
            let stream = match loaded {
                Ok(Some(s)) => s,
                Ok(None) => {
                    self.print(&format!("ERROR: failed to load filter {value}"));
                    return Err(Fail::Exit(255));
                }
                Err(LoadError::Read(msg)) => {
                    self.print(&format!("Wrong config file: {msg}"));
                    self.print(&format!("ERROR: failed to load filter {value}"));
                    return Err(Fail::Exit(255));
                }
                Err(LoadError::Fatal(msg)) => {
                    self.out.flush().ok();
                    eprintln!("{msg}");
                    return Err(Fail::Exit(1));
                }
            };
            if self.opts.verbose > 1 {
                self.output(&format!(
                    "Real  filter options : {}",
                    stream.real_options.repr()
                ));
            }
            let mut fails = Vec::new();
            let mut ignores = Vec::new();
            for cmd in &stream.commands {
                let (opt, values) = match command_values(cmd) {
                    Some(x) => x,
                    None => continue,
                };
                match opt.as_str() {
                    "prefregex" => {
                        for v in &values {
                            if let Err(e) = self.filter.set_prefregex(v) {
                                self.print(&format!("ERROR: {e}"));
                                return Err(Fail::Exit(255));
                            }
                        }
                    }
                    "addfailregex" => fails.extend(values),
                    "addignoreregex" => ignores.extend(values),
                    "maxlines" => {
                        for v in &values {
                            let n = crate::optparse::parse_int(v).unwrap_or(0);
                            if let Err(e) = self.set_maxlines(n) {
                                self.print(&format!(
                                    "ERROR: Invalid value for maxlines ({}) read from {value}: {e}",
                                    PyValue::List(vec![PyValue::str(v.clone())]).repr()
                                ));
                                return Err(Fail::Exit(255));
                            }
                        }
                    }
                    "datepattern" => {
                        for v in &values {
                            if let Err(e) = self.set_datepattern(v) {
                                self.out.flush().ok();
                                eprintln!("TypeError: {e}");
                                return Err(Fail::Exit(1));
                            }
                        }
                    }
                    _ => {}
                }
            }
            for r in &fails {
                self.failregex.push(RegexStat::new(r));
            }
            for r in &ignores {
                self.ignoreregex.push(RegexStat::new(r));
            }
            for r in fails {
                self.add_regex(true, &r)?;
            }
            for r in ignores {
                self.add_regex(false, &r)?;
            }
            return Ok(());
        }
        self.output(&format!("Use {label:>11} line : {}", shortstr(value, 53)));
        let stat = vec![RegexStat::new(value)];
        if fail {
            self.failregex = stat;
        } else {
            self.ignoreregex = stat;
        }
        self.add_regex(fail, value)
    }

    fn add_regex(&mut self, fail: bool, r: &str) -> Result<(), Fail> {
        let res = if fail {
            self.filter.add_failregex(r)
        } else {
            self.filter.add_ignoreregex(r)
        };
        if let Err(e) = res {
            self.print(&format!("ERROR: {e}"));
            return Err(Fail::Exit(255));
        }
        Ok(())
    }

    /// fail2ban-regex's `testRegex` for one line, dated by the [`Dater`].
    fn test_line(&mut self, work: Work) -> Result<(Vec<FailResult>, bool), LineError> {
        let multi = self.filter.maxlines() > 1;
        let org_buffer: Vec<crate::failregex::TupleLine> = if multi {
            self.filter.line_buffer().to_vec()
        } else {
            Vec::new()
        };
        let full_buffer = org_buffer.len() >= self.filter.maxlines();
        self.line_ignored = false;
        let mut is_ignored = false;
        let found = match work {
            Work::Line(dated) => match dated? {
                Some(d) => self.filter.find_dated(d),
                None => Vec::new(),
            },
            Work::Evaluated(ev) => self.filter.finish(ev),
            Work::Found(_) | Work::FoundEvaluated(..) => {
                unreachable!("found dates are converted before the line is tested")
            }
        };
        if !self.filter.ignore_hits().is_empty() {
            self.line_ignored = true;
            for &i in self.filter.ignore_hits() {
                if let Some(s) = self.ignoreregex.get_mut(i) {
                    s.hits += 1;
                }
            }
        }
        let mut ret: Vec<FailResult> = Vec::new();
        for m in found {
            if self.opts.out.is_none() {
                let multiple = ret.len() > 1;
                let verbose = self.opts.verbose > 0;
                if let Some(stat) = self.failregex.get_mut(m.index) {
                    stat.hits += 1;
                    if verbose {
                        stat.ips.push((m.id.clone(), m.time, multiple));
                    }
                }
            }
            if !m.groups.truthy("nofail") {
                ret.push(m);
            } else {
                is_ignored = true;
            }
        }
        if self.opts.out.is_some() {
            return Ok((ret, is_ignored || self.line_ignored));
        }
        if self.filter.prefregex().is_some() && self.filter.pref_matched() {
            self.pref_matched += 1;
            if self.opts.verbose > 0 {
                let limit = self.print_limit as usize;
                if self.pref_groups.len() < limit {
                    let g = self
                        .filter
                        .pref_groups()
                        .map(groups_repr)
                        .unwrap_or_else(|| "{}".to_string());
                    self.pref_groups.push(g);
                } else if self.pref_groups.len() == limit {
                    self.pref_groups.push("...".to_string());
                }
            }
        }
        if multi {
            let skip = usize::from(full_buffer);
            let current = self.filter.line_buffer().to_vec();
            for buf_line in org_buffer.iter().skip(skip) {
                if !current.contains(buf_line) {
                    let joined = buf_line.joined().to_string();
                    if let Some(p) = self.stats.missed_lines.iter().position(|l| *l == joined) {
                        self.stats.missed_lines.remove(p);
                    }
                    if self.opts.print_all_matched {
                        self.stats.matched_lines.push(joined);
                    }
                    self.stats.matched += 1;
                    self.stats.missed -= 1;
                }
            }
        }
        Ok((ret, is_ignored || self.line_ignored))
    }

    /// Runs the lines through the filter, on three threads: one reads and
    /// dates the lines (the date detector's state depends only on the line
    /// sequence), one evaluates the regexes of each line (single-line
    /// filters: a line's regex results depend on that line only), and this
    /// thread applies the stateful rest (multi-line merging, counting,
    /// output) in the original order.
    fn process<R: BufRead + Send>(&mut self, lines: LineSource<R>) -> Result<(), Fail> {
        let t0 = Instant::now();
        let mut dater = self.filter.take_dater();
        // the reader only finds the dates; this thread converts them, in
        // line order, after the evaluation (see `Item::settle`)
        let defer = dater.can_defer_conversion();
        let mut tail = (dater.split_tail(), dater.converter());
        let rules = self.filter.rules().clone();
        // one evaluating thread: each regex then stays with one thread (a
        // regex searched from several threads at once shares its automaton
        // caches through a slow path), and the reader, the evaluator and
        // this thread keep two cores busy
        let workers = usize::from(rules.single_line());
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Item>)>(WAITING);
        let outcome = std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                let mut lines = lines;
                let mut batch = Vec::with_capacity(BATCH);
                let mut seq = 0;
                let mut raw = String::new();
                while lines.next_line(&mut raw) {
                    let line = raw.trim_end_matches(['\r', '\n']);
                    if line.starts_with('#') || line.is_empty() {
                        continue;
                    }
                    let mut failed = false;
                    let item = if defer {
                        Item {
                            work: Work::Found(dater.find_date(line)),
                            orig: None,
                        }
                    } else {
                        let dated = dater.date_line(line);
                        failed = dated.is_err();
                        Item::from_dated(dated, line)
                    };
                    batch.push(item);
                    if batch.len() == BATCH || failed {
                        if tx.send((seq, std::mem::take(&mut batch))).is_err() || failed {
                            return dater;
                        }
                        seq += 1;
                        batch.reserve(BATCH);
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send((seq, batch));
                }
                dater
            });
            let rx = if workers == 0 {
                rx
            } else {
                let shared_rx = std::sync::Mutex::new(rx);
                let (etx, erx) = std::sync::mpsc::sync_channel::<(usize, Vec<Item>)>(WAITING);
                let shared_rx = std::sync::Arc::new(shared_rx);
                for _ in 0..workers {
                    let (rx, etx, rules) = (shared_rx.clone(), etx.clone(), rules.clone());
                    scope.spawn(move || {
                        loop {
                            let next = rx.lock().expect("work queue").recv();
                            let Ok((seq, batch)) = next else { break };
                            let mut batch = batch;
                            for item in &mut batch {
                                item.evaluate(&rules);
                            }
                            if etx.send((seq, batch)).is_err() {
                                break;
                            }
                        }
                    });
                }
                erx
            };
            let mut outcome = Ok(());
            let mut pending = std::collections::BTreeMap::new();
            let mut want = 0;
            'batches: for (seq, batch) in rx.iter() {
                pending.insert(seq, batch);
                while let Some(batch) = pending.remove(&want) {
                    want += 1;
                    for item in batch {
                        let item = item.settle(&mut tail.0, &tail.1);
                        if let Err(e) = self.process_item(item) {
                            outcome = Err(e);
                            break 'batches;
                        }
                    }
                }
            }
            drop(rx);
            let dater = producer.join().expect("line reader thread");
            (outcome, dater)
        });
        let (outcome, mut dater) = outcome;
        drop(rules);
        if defer {
            dater.join_tail(tail.0);
        }
        self.filter.put_dater(dater);
        outcome?;
        self.elapsed = Some(t0.elapsed().as_secs_f64());
        Ok(())
    }

    /// Tests one dated line and counts it.
    fn process_item(&mut self, item: Item) -> Result<(), Fail> {
        // the line's text, copied only when it is kept
        let tuple = item.dated().map(|d| d.tuple.clone());
        let Item { work, orig } = item;
        let line = move || match (orig, tuple) {
            (Some(orig), _) => orig,
            (None, Some(t)) => t.joined().to_string(),
            (None, None) => String::new(),
        };
        let te = if self.opts.debuggex {
            work_dated(&work).map(|d| d.tuple.undated())
        } else {
            None
        };
        let (ret, is_ignored) = match self.test_line(work) {
            Ok(x) => x,
            Err(e) => {
                self.out.flush().ok();
                eprintln!("Traceback (most recent call last):\nKeyError: {e}");
                return Err(Fail::Exit(1));
            }
        };
        if let Some(fmt) = self.opts.out.clone() {
            if !ret.is_empty() && !is_ignored {
                self.print_results(&fmt, &ret);
            }
            return Ok(());
        }
        if is_ignored {
            self.stats.ignored += 1;
            if !self.opts.print_no_ignored
                && (self.opts.print_all_ignored
                    || self.stats.ignored as i64 <= self.print_limit + 1)
            {
                self.stats.ignored_lines.push(line());
                if let Some(t) = te {
                    self.stats.ignored_lines_te.push(t);
                }
            }
        } else if !ret.is_empty() {
            self.stats.matched += 1;
            if self.opts.print_all_matched {
                self.stats.matched_lines.push(line());
                if let Some(t) = te {
                    self.stats.matched_lines_te.push(t);
                }
            }
        } else {
            self.stats.missed += 1;
            if !self.opts.print_no_missed
                && (self.opts.print_all_missed || self.stats.missed <= self.print_limit + 1)
            {
                self.stats.missed_lines.push(line());
                if let Some(t) = te {
                    self.stats.missed_lines_te.push(t);
                }
            }
        }
        self.stats.tested += 1;
        Ok(())
    }

    /// The `-o` output of one line's results.
    fn print_results(&mut self, fmt: &str, ret: &[FailResult]) {
        match fmt {
            "id" | "fid" => {
                for r in ret {
                    let s = id_str(&r.id);
                    self.print(&s);
                }
            }
            "ip" => {
                for r in ret {
                    let s = match r.groups.get("ip") {
                        Some(v) => py_str(v),
                        None => id_str(&r.id),
                    };
                    self.print(&s);
                }
            }
            "msg" => {
                for r in ret {
                    if let Some(Value::Lines(lines)) = r.groups.get("matches") {
                        for l in lines.clone() {
                            self.print(l.joined());
                        }
                    }
                }
            }
            "row" => {
                for r in ret {
                    let id = match &r.id {
                        Some(ip) => str_repr(&ip.ntoa()),
                        None => "None".to_string(),
                    };
                    let time = time_repr(r.time);
                    let mut shown = Groups::new();
                    for (k, v) in r.groups.iter() {
                        if &**k != "matches" {
                            shown.set(k, v.clone());
                        }
                    }
                    let line = format!("[{id},\t{time},\t{}],", groups_repr(&shown));
                    self.print(&line);
                }
            }
            f if !f.contains('<') => {
                for r in ret {
                    let s = match r.groups.get(f) {
                        Some(v) => py_str(v),
                        None => "None".to_string(),
                    };
                    self.print(&s);
                }
            }
            f => {
                let mut wrap = false;
                let mut deferred: Vec<(&FailResult, String)> = Vec::new();
                for r in ret {
                    let matches = match_lines(r);
                    let msg = if !wrap && matches.len() <= 1 {
                        matches.join("\n")
                    } else {
                        wrap = true;
                        "\x00msg\x00".to_string()
                    };
                    let v = substitute_tags(f, r, &msg);
                    if wrap {
                        deferred.push((r, v));
                        continue;
                    }
                    self.print(&v);
                }
                for (r, v) in deferred {
                    for m in match_lines(r) {
                        let line = v.replace("\x00msg\x00", &m);
                        self.print(&line);
                    }
                }
            }
        }
    }

    fn print_lines(&mut self, ltype: &str) {
        let (count, lines, te, print_all) = match ltype {
            "matched" => (
                self.stats.matched as i64,
                self.stats.matched_lines.clone(),
                self.stats.matched_lines_te.clone(),
                self.opts.print_all_matched,
            ),
            "ignored" => (
                self.stats.ignored as i64,
                self.stats.ignored_lines.clone(),
                self.stats.ignored_lines_te.clone(),
                self.opts.print_all_ignored,
            ),
            _ => (
                self.stats.missed,
                self.stats.missed_lines.clone(),
                self.stats.missed_lines_te.clone(),
                self.opts.print_all_missed,
            ),
        };
        if count == 0 {
            return;
        }
        let mut cap = ltype.to_string();
        cap[..1].make_ascii_uppercase();
        let header = format!("{cap} line(s):");
        if count < self.print_limit || print_all {
            let items: Vec<String> = if self.opts.debuggex {
                let regexes: Vec<String> = if ltype == "ignored" {
                    self.ignoreregex.iter().map(|r| r.text.clone()).collect()
                } else {
                    self.failregex.iter().map(|r| r.text.clone()).collect()
                };
                let multiline = self.filter.maxlines() > 1;
                let usedns = self.opts.usedns.clone();
                let mut v = Vec::new();
                for l in &te {
                    for r in &regexes {
                        v.push(format!(
                            "{l} | {r} |  {}",
                            debuggex_url(l, r, multiline, usedns.as_deref())
                        ));
                    }
                }
                v
            } else {
                lines
            };
            let items: Vec<String> = items.iter().map(|x| x.trim_end().to_string()).collect();
            self.pprint_list(&items, Some(&header));
        } else {
            self.print(&format!(
                "{header} too many to print.  Use --print-all-{ltype} to print all {count} lines"
            ));
        }
    }

    fn pprint_list(&mut self, items: &[String], header: Option<&str>) {
        if items.is_empty() {
            return;
        }
        let mut s = match header {
            Some(h) => format!("|- {h}\n"),
            None => String::new(),
        };
        s.push_str("|  ");
        s.push_str(&items.join("\n|  "));
        s.push_str("\n`-");
        self.print(&s);
    }

    fn print_regex_stats(&mut self, title: &str, fail: bool) {
        let mut total = 0;
        let mut out = Vec::new();
        let verbose = self.opts.verbose > 0;
        let stats = if fail {
            &self.failregex
        } else {
            &self.ignoreregex
        };
        for (cnt, stat) in stats.iter().enumerate() {
            total += stat.hits;
            if stat.hits > 0 || verbose {
                out.push(format!("{:2}) [{}] {}", cnt + 1, stat.hits, stat.text));
            }
            if verbose {
                for (id, time, multiple) in &stat.ips {
                    out.push(format!(
                        "    {}  {}{}",
                        id_str(id),
                        ctime_local(time.map(|t| t.as_f64())),
                        if *multiple {
                            " (multiple regex matched)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        self.print(&format!("\n{title}: {total} total"));
        self.pprint_list(&out, Some(" #) [# of hits] regular expression"));
    }

    fn print_stats(&mut self) {
        if self.opts.out.is_some() {
            return;
        }
        self.print("");
        self.print("Results");
        self.print("=======");
        if let Some(pre) = self.filter.prefregex() {
            let mut out = vec![pre.expanded().to_string()];
            if self.opts.verbose > 0 {
                for g in &self.pref_groups {
                    out.push(format!("    {g}"));
                }
            }
            let n = self.pref_matched;
            self.print(&format!("\nPrefregex: {n} total"));
            self.pprint_list(&out, None);
        }
        self.print_regex_stats("Failregex", true);
        self.print_regex_stats("Ignoreregex", false);
        if let Some(dd) = self.filter.date_detector() {
            let mut out = Vec::new();
            for t in dd.templates() {
                if self.opts.verbose > 0 || t.hits > 0 {
                    out.push(format!("[{}] {}", t.hits, t.name));
                    if self.opts.verbose_date {
                        out.push(format!(
                            "    # weight: {:.3} ({:.3}), pattern: {}",
                            t.computed_weight(),
                            t.weight,
                            t.pattern.clone().unwrap_or_default()
                        ));
                        out.push(format!("    # regex:   {}", t.regex));
                    }
                }
            }
            self.print("\nDate template hits:");
            self.pprint_list(&out, Some("[# of hits] date format"));
        }
        let s = &self.stats;
        let summary = format!(
            "\nLines: {} lines, {} ignored, {} matched, {} missed",
            s.tested, s.ignored, s.matched, s.missed
        );
        self.print(&summary);
        if let Some(e) = self.elapsed {
            self.print(&format!("[processed in {e:.2} sec]"));
        }
        self.print("");
        if self.opts.print_all_matched {
            self.print_lines("matched");
        }
        if !self.opts.print_no_ignored {
            self.print_lines("ignored");
        }
        if !self.opts.print_no_missed {
            self.print_lines("missed");
        }
    }

    fn start(&mut self, args: &[String]) -> Result<(), Fail> {
        let cmd_log = &args[0];
        if cmd_log.starts_with("systemd-journal") {
            self.backend = "systemd".to_string();
        }
        self.read_regex(&args[1], true)?;
        if args.len() == 3 {
            self.read_regex(&args[2], false)?;
        }
        let path = Path::new(cmd_log);
        if path.is_file() {
            let enc = Encoding::lookup(&self.opts.encoding).ok_or_else(|| {
                self.out.flush().ok();
                eprintln!("LookupError: unknown encoding: {}", self.opts.encoding);
                Fail::Exit(1)
            })?;
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    let msg = format!(
                        "[Errno {}] {}: {}",
                        e.raw_os_error().unwrap_or(0),
                        io_error_text(&e),
                        str_repr(cmd_log)
                    );
                    self.print(&msg);
                    return Err(Fail::Exit(255));
                }
            };
            self.output(&format!("Use         log file : {cmd_log}"));
            let enc_name = self.opts.encoding.clone();
            self.output(&format!("Use         encoding : {enc_name}"));
            self.output("");
            let source = LineSource::File {
                reader: BufReader::with_capacity(1 << 18, file),
                buf: Vec::with_capacity(4096),
                enc,
                name: cmd_log.clone(),
                warned: false,
            };
            self.process(source)?;
        } else if cmd_log.starts_with("systemd-journal") {
            self.print("Error: systemd library not found. Exiting...");
            return Err(Fail::Exit(255));
        } else {
            let lines: Vec<String> = if self.filter.maxlines() <= 1 && !cmd_log.contains('\n') {
                let shown = shortstr(&cmd_log.replace('\n', "\\n"), 53);
                self.output(&format!("Use      single line : {shown}"));
                vec![cmd_log.clone()]
            } else {
                let lines: Vec<String> = cmd_log.split('\n').map(str::to_string).collect();
                self.output(&format!("Use      multi line : {} line(s)", lines.len()));
                for (i, l) in lines.iter().enumerate() {
                    if i >= 5 {
                        self.output("| ...");
                        break;
                    }
                    let num: String = format!("{}", i + 1).chars().take(2).collect();
                    self.output(&format!("| {num:>2}: {}", shortstr(l, 53)));
                }
                self.output("`-");
                lines
            };
            self.output("");
            self.process(LineSource::<io::Empty>::List(lines.into_iter()))?;
        }
        self.print_stats();
        Ok(())
    }
}

/// A filter read for fail2ban-regex: its command stream and the options
/// `-vv` shows.
struct LoadedFilter {
    commands: Vec<PyValue>,
    real_options: PyValue,
}

/// Why a filter could not be loaded.
enum LoadError {
    /// Reading failed (fail2ban prints `Wrong config file: ...`).
    Read(String),
    /// An error Python does not catch (interpolation, tags): a traceback.
    Fatal(String),
}

/// Reads a filter as fail2ban-regex does: the standard way under
/// `basedir`, or explicitly from `explicit`; `Ok(None)` when nothing could
/// be read.
fn load_filter(
    name: &str,
    opts: &indexmap::IndexMap<String, String>,
    basedir: &Path,
    explicit: Option<&Path>,
    backend: &str,
) -> Result<Option<LoadedFilter>, LoadError> {
    let fatal = |e: config::Error| {
        LoadError::Fatal(format!(
            "Traceback (most recent call last):\n{}: {e}",
            e.py_type()
        ))
    };
    let ok = match explicit {
        None => {
            let base = basedir.to_string_lossy().into_owned();
            let mut reader =
                config::FilterReader::new(name, "fail2ban-regex-jail", opts.clone(), Some(&base));
            let ok = reader.read().map_err(|e| LoadError::Read(e.to_string()))?;
            (ok, reader)
        }
        Some(path) => {
            let p = path.to_string_lossy().into_owned();
            let mut reader =
                config::FilterReader::new(&p, "fail2ban-regex-jail", opts.clone(), None);
            let ok = reader
                .read_explicit()
                .map_err(|e| LoadError::Read(e.to_string()))?;
            (ok, reader)
        }
    };
    let (ok, mut reader) = ok;
    if !ok {
        return Ok(None);
    }
    reader.apply_auto_options(backend);
    reader.get_options(None, false).map_err(fatal)?;
    let combined = reader.combined().map_err(fatal)?;
    let mut real = Vec::new();
    let keys = ["logtype".to_string(), "datepattern".to_string()]
        .into_iter()
        .chain(opts.keys().cloned());
    for k in keys {
        let v = match combined.get(&k) {
            Some(v) => Some(v.clone()),
            None => reader
                .definition()
                .reader()
                .get("Definition", &k, None)
                .ok()
                .map(PyValue::Str),
        };
        if let Some(v) = v {
            real.retain(|(key, _): &(PyValue, PyValue)| *key != PyValue::str(k.clone()));
            real.push((PyValue::str(k.clone()), v));
        }
    }
    let commands = reader.convert().map_err(fatal)?;
    Ok(Some(LoadedFilter {
        commands,
        real_options: PyValue::Dict(real),
    }))
}

/// Lines handed from one thread to the next at a time, and batches waiting
/// in each channel: few hand-overs (each may wake a thread), and as few
/// lines in flight as with smaller batches (1M sshd lines: 1024 lines with
/// one waiting, 0.66 s and 13.8 MiB; 256 with eight, 0.70 s and 13.4 MiB).
const BATCH: usize = 1024;
const WAITING: usize = 1;

/// A line on its way through the threads: dated by the reading thread,
/// possibly evaluated by a worker; `orig` is the raw line when it differs
/// from the dated line's text (or there is no dated line).
struct Item {
    work: Work,
    orig: Option<String>,
}

enum Work {
    Line(Result<Option<Dated>, LineError>),
    Evaluated(Evaluation),
    /// A line whose date is found but not converted yet.
    Found(FoundDate),
    /// Such a line, evaluated.
    FoundEvaluated(FoundDate, Evaluation),
}

impl Item {
    /// A dated line (`line`: the raw line).
    fn from_dated(dated: Result<Option<Dated>, LineError>, line: &str) -> Item {
        let orig = match &dated {
            Ok(Some(d)) if d.tuple.joined().len() == line.len() => None,
            _ => Some(line.to_string()),
        };
        Item {
            work: Work::Line(dated),
            orig,
        }
    }

    /// Evaluates the regexes of a dated line (a worker's job), in place.
    fn evaluate(&mut self, rules: &Rules) {
        let work = std::mem::replace(&mut self.work, Work::Line(Ok(None)));
        self.work = match work {
            Work::Line(Ok(Some(d))) => Work::Evaluated(rules.evaluate(d)),
            Work::Found(found) => {
                let ev = rules.evaluate(Dated {
                    tuple: found.tuple().clone(),
                    date: None,
                    no_date: false,
                });
                Work::FoundEvaluated(found, ev)
            }
            other => other,
        };
    }

    /// Converts the date of a line found by the reader (in line order, with
    /// the conversion half of the dater): the item is then as if the
    /// reader had dated it.  An evaluation whose text the conversion
    /// changed is dropped, the line is then evaluated again.
    fn settle(self, tail: &mut Dater, conv: &DateConverter) -> Item {
        let (found, ev) = match self.work {
            Work::Found(found) => (found, None),
            Work::FoundEvaluated(found, ev) => (found, Some(ev)),
            _ => return self,
        };
        let raw = found.tuple().clone();
        let dated = tail.convert_date(found, conv);
        let item = Item::from_dated(dated, raw.joined());
        match (item.work, ev) {
            (Work::Line(Ok(Some(d))), Some(ev)) => Item {
                work: match ev.with_dated(d) {
                    Ok(ev) => Work::Evaluated(ev),
                    Err(d) => Work::Line(Ok(Some(d))),
                },
                orig: item.orig,
            },
            (work, _) => Item {
                work,
                orig: item.orig,
            },
        }
    }

    /// The dated line, if there is one.
    fn dated(&self) -> Option<&Dated> {
        work_dated(&self.work)
    }
}

/// The dated line of some work, if there is one.
fn work_dated(work: &Work) -> Option<&Dated> {
    match work {
        Work::Line(Ok(Some(d))) => Some(d),
        Work::Evaluated(ev) => Some(ev.dated()),
        Work::Line(_) | Work::Found(_) | Work::FoundEvaluated(..) => None,
    }
}

/// Whether fail2ban-regex treats a REGEX argument as a filter name/file.
fn looks_like_filter(value: &str) -> bool {
    static RE: std::sync::OnceLock<PyRegex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        PyRegex::with_flags(
            r"^/{0,3}[\w/_\-.]+(?:\[.*\])?$",
            Flags {
                multiline: true,
                dotall: true,
                ..Flags::default()
            },
        )
        .expect("filter-name regex")
    })
    .is_match(value)
}

/// Python's `s[~5:]`: the last six characters.
fn last_chars(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// The option name and values of a `set`/`multi-set` command.
fn command_values(cmd: &PyValue) -> Option<(String, Vec<String>)> {
    let PyValue::List(items) = cmd else {
        return None;
    };
    let kind = items.first()?.to_py_str();
    let opt = items.get(2)?.to_py_str();
    let values: Vec<String> = match kind.as_str() {
        "multi-set" => match items.get(3)? {
            PyValue::List(v) => v.iter().map(PyValue::to_py_str).collect(),
            other => vec![other.to_py_str()],
        },
        "set" => items[3..].iter().map(PyValue::to_py_str).collect(),
        _ => return None,
    };
    Some((opt, values))
}

fn id_str(id: &Option<IpAddr>) -> String {
    id.as_ref().map_or_else(|| "None".to_string(), IpAddr::ntoa)
}

fn time_repr(t: Option<Timestamp>) -> String {
    match t {
        None => "None".to_string(),
        Some(Timestamp::Int(i)) => i.to_string(),
        Some(Timestamp::Float(f)) => float_repr(f),
    }
}

/// `repr()` of a group dictionary.
fn groups_repr(g: &Groups) -> String {
    PyValue::Dict(
        g.iter()
            .map(|(k, v)| (PyValue::str(k.to_string()), value_to_py(v)))
            .collect(),
    )
    .repr()
}

/// The match lines of a result, each joined back to the full line.
fn match_lines(r: &FailResult) -> Vec<String> {
    match r.groups.get("matches") {
        Some(Value::Lines(lines)) => lines.iter().map(|l| l.joined().to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Local time as `time.strftime("%a %b %d %H:%M:%S %Y", localtime(t))`.
fn ctime_local(t: Option<f64>) -> String {
    let t = t.unwrap_or_else(crate::mytime::now);
    crate::mytime::format_local(t, "%a %b %d %H:%M:%S %Y")
}

/// The template output of `-o '<ip> ...'`: action-style tags replaced
/// once (no recursion, no shell escaping; NUL shown as `\x00`).
fn substitute_tags(fmt: &str, r: &FailResult, msg: &str) -> String {
    static TAG: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static FTAG: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let tag_re = TAG.get_or_init(|| regex::Regex::new(r"<([^ <>]+)>").expect("tag regex"));
    let ftag_re =
        FTAG.get_or_init(|| regex::Regex::new(r"<F-([A-Z0-9_\-]+)>").expect("F-tag regex"));
    let ip_value: Option<PyValue> = match r.groups.get("ip") {
        Some(v) => Some(value_to_py(v)),
        None => r.id.as_ref().map(|i| PyValue::str(i.ntoa())),
    };
    let ip_addr: Option<IpAddr> = match r.groups.get("ip") {
        Some(Value::Ip(ip)) => Some(ip.clone()),
        Some(v) => IpAddr::new(&py_str(v), crate::ipaddr::CIDR_UNSPEC).ok(),
        None => r.id.clone(),
    };
    let time = r.time.map_or_else(crate::mytime::now, |t| t.as_f64());
    let esc = |v: String| v.replace('\x00', "\\x00");
    let out = tag_re.replace_all(fmt, |c: &regex::Captures| {
        let tag = &c[1];
        let v: Option<String> = match tag {
            "ip" => ip_value.as_ref().map(PyValue::to_py_str),
            "family" => Some(
                ip_addr
                    .as_ref()
                    .and_then(IpAddr::family_str)
                    .unwrap_or("None")
                    .to_string(),
            ),
            "ip-rev" => Some(ip_addr.as_ref().map(IpAddr::ptr).unwrap_or_default()),
            "ip-host" => Some(
                ip_addr
                    .as_ref()
                    .and_then(|ip| crate::ipaddr::ip_to_name(&ip.ntoa()))
                    .unwrap_or_else(|| "None".to_string()),
            ),
            "fid" => Some(id_str(&r.id)),
            "failures" => Some("0".to_string()),
            "time" => Some(match r.time {
                Some(Timestamp::Int(i)) => i.to_string(),
                _ => float_repr(time),
            }),
            "matches" => Some(match_lines(r).join("\n")),
            "restored" => Some("0".to_string()),
            "msg" => return msg.to_string(),
            "br" => return "\n".to_string(),
            "sp" => return " ".to_string(),
            "fq-hostname" => return hostname(true),
            "sh-hostname" => return hostname(false),
            _ => None,
        };
        match v {
            Some(v) => esc(v),
            None => c[0].to_string(),
        }
    });
    if !out.contains('<') {
        return out.into_owned();
    }
    ftag_re
        .replace_all(&out, |c: &regex::Captures| {
            let name = match c[1].to_lowercase().as_str() {
                "id" => "fid".to_string(),
                "port" => "fport".to_string(),
                n => n.to_string(),
            };
            match name.as_str() {
                "matches" => esc(match_lines(r).join("\n")),
                "failures" => "0".to_string(),
                _ => match r.groups.get(&name) {
                    Some(Value::None) | None => String::new(),
                    Some(v) => esc(py_str(v)),
                },
            }
        })
        .into_owned()
}

fn hostname(fqdn: bool) -> String {
    crate::ipaddr::get_hostname(fqdn)
}

/// debuggex.com URL of a line and regex (fail2ban-regex `-D`).
fn debuggex_url(sample: &str, regex: &str, multiline: bool, usedns: Option<&str>) -> String {
    let usedns = crate::ipaddr::UseDns::parse(usedns.unwrap_or("yes"));
    let expanded = crate::failregex::resolve_tags(regex, usedns);
    let mut args = vec![
        ("re", expanded),
        ("str", sample.to_string()),
        ("flavor", "python".to_string()),
    ];
    if multiline {
        args.push(("flags", "m".to_string()));
    }
    let q: Vec<String> = args
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    format!("https://www.debuggex.com/?{}", q.join("&"))
}

/// `urllib.parse.quote_plus`.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn io_error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

/// The text encodings fail2ban-regex can read logs in.
#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "latin-1",
            Encoding::Ascii => "ascii",
        }
    }

    fn lookup(name: &str) -> Option<Encoding> {
        let n = name.to_lowercase().replace(['-', '_', ' '], "");
        match n.as_str() {
            "utf8" | "u8" | "utf" | "cp65001" => Some(Encoding::Utf8),
            "latin1" | "iso88591" | "l1" | "latin" | "8859" | "cp819" | "iso8859" => {
                Some(Encoding::Latin1)
            }
            "ascii" | "usascii" | "646" | "ansix3.41968" => Some(Encoding::Ascii),
            _ => None,
        }
    }

    /// Decodes a line as Python's `decode(enc, 'replace')` into `out`
    /// (cleared first); false when a character had to be replaced.
    /// Decodes `bytes` into `out`; false on invalid input (replaced).  The
    /// two may swap their allocations.
    fn decode_into(self, bytes: &mut Vec<u8>, out: &mut String) -> bool {
        out.clear();
        match self {
            Encoding::Utf8 => {
                // valid bytes become the string without a copy, and the
                // string's old allocation takes their place
                let old = std::mem::take(out).into_bytes();
                match String::from_utf8(std::mem::replace(bytes, old)) {
                    Ok(text) => {
                        *out = text;
                        true
                    }
                    Err(e) => {
                        out.push_str(&String::from_utf8_lossy(e.as_bytes()));
                        *bytes = e.into_bytes();
                        false
                    }
                }
            }
            Encoding::Latin1 => {
                out.extend(bytes.iter().map(|&b| b as char));
                true
            }
            Encoding::Ascii => {
                out.extend(
                    bytes
                        .iter()
                        .map(|&b| if b < 128 { b as char } else { '\u{fffd}' }),
                );
                bytes.is_ascii()
            }
        }
    }
}

/// Where the lines come from: a file (read as fail2ban's FileContainer
/// does) or the LOG argument itself.
enum LineSource<R: BufRead> {
    File {
        reader: R,
        buf: Vec<u8>,
        enc: Encoding,
        name: String,
        warned: bool,
    },
    List(std::vec::IntoIter<String>),
}

impl<R: BufRead> LineSource<R> {
    /// Reads the next complete line (with its line end) into `out`; a last
    /// line without a line end is not returned, as fail2ban waits for it to
    /// be finished.
    fn next_line(&mut self, out: &mut String) -> bool {
        match self {
            LineSource::List(it) => match it.next() {
                Some(line) => {
                    *out = line;
                    true
                }
                None => false,
            },
            LineSource::File {
                reader,
                buf,
                enc,
                name,
                warned,
            } => {
                buf.clear();
                match read_line(reader, buf) {
                    Ok(0) | Err(_) => false,
                    Ok(_) => {
                        let ok = enc.decode_into(buf, out);
                        if !ok && !*warned {
                            *warned = true;
                            log::warn!(target: "fail2ban.filter",
                                "Error decoding line from '{name}' with '{}'.", enc.name());
                        }
                        out.ends_with('\n') || out.ends_with('\r')
                    }
                }
            }
        }
    }
}

/// `BufRead::read_until(b'\n', buf)`, with the `memchr` crate's vectorized
/// search (the standard library's is a word at a time).
fn read_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (done, used) = match memchr::memchr(b'\n', available) {
            Some(i) => (true, i + 1),
            None => (available.is_empty(), available.len()),
        };
        buf.extend_from_slice(&available[..used]);
        reader.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

fn parse_opts(p: &optparse::Parsed) -> Opts {
    let verbose = p.get_int("verbosity").unwrap_or_else(|| p.count("verbose"));
    Opts {
        config: p.get("config").unwrap_or("/etc/fail2ban").to_string(),
        datepattern: p.get("datepattern").map(str::to_string),
        timezone: p.get("timezone").map(str::to_string),
        encoding: p.get("encoding").unwrap_or("UTF-8").to_string(),
        raw: p.flag("raw").unwrap_or(false),
        usedns: p.get("usedns").map(str::to_string),
        maxlines: p.get_int("maxlines").unwrap_or(0),
        verbose,
        verbose_date: p.flag("verbose_date").unwrap_or(false),
        debuggex: p.flag("debuggex").unwrap_or(false),
        check_all: p.flag("check_all").unwrap_or(true),
        out: p.get("out").map(str::to_string),
        print_no_missed: p.flag("print_no_missed").unwrap_or(false),
        print_no_ignored: p.flag("print_no_ignored").unwrap_or(false),
        print_all_matched: p.flag("print_all_matched").unwrap_or(false),
        print_all_missed: p.flag("print_all_missed").unwrap_or(false),
        print_all_ignored: p.flag("print_all_ignored").unwrap_or(false),
    }
}

/// Runs fail2ban-regex with `argv` (program name first); returns the exit status.
pub fn main(argv: Vec<String>) -> i32 {
    let prog_path = argv
        .first()
        .cloned()
        .unwrap_or_else(|| "fail2ban-regex".to_string());
    let prog = Path::new(&prog_path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fail2ban-regex".to_string());
    let parsed = match optparse::parse(&options(), &argv[1.min(argv.len())..]) {
        Ok(p) => p,
        Err(Stop::Exit("help")) => {
            print!("{}", help_text(&prog_path));
            return 0;
        }
        Err(Stop::Exit("version")) => {
            println!("{prog} {VERSION}");
            return 0;
        }
        Err(Stop::Exit(_)) => {
            println!("{VERSION}");
            return 0;
        }
        Err(Stop::Error(msg)) => {
            eprintln!("Usage: {}\n\n{prog}: error: {msg}", usage(&prog_path));
            return 2;
        }
    };
    let opts = parse_opts(&parsed);
    let mut errors = Vec::new();
    if opts.print_no_missed && opts.print_all_missed {
        errors.push("ERROR: --print-no-missed and --print-all-missed are mutually exclusive.");
    }
    if opts.print_no_ignored && opts.print_all_ignored {
        errors.push("ERROR: --print-no-ignored and --print-all-ignored are mutually exclusive.");
    }
    if !(2..=3).contains(&parsed.args.len()) {
        errors.push("ERROR: provide both <LOG> and <REGEX>.");
    }
    if !errors.is_empty() {
        print!("{}", help_text(&prog_path));
        eprintln!("\n{}", errors.join("\n"));
        return 255;
    }
    if opts.out.is_none() {
        println!("\nRunning tests\n=============\n");
    }
    let level = match crate::logging::str2loglevel(parsed.get("log_level").unwrap_or("critical")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Traceback (most recent call last):\nValueError: {e}");
            return 1;
        }
    };
    crate::logging::init_regex_tool(level, opts.verbose <= 1);
    let mut tool = match Tool::new(opts) {
        Ok(t) => t,
        Err(e) => {
            println!("ERROR: {e}");
            return 255;
        }
    };
    let status = match tool.start(&parsed.args) {
        Ok(()) => 0,
        Err(Fail::Exit(code)) => code,
    };
    let _ = tool.out.flush();
    status
}
