//! The per-line decision: does this log line report a failure, by whom, when?
//!
//! This is fail2ban's `Filter.processLine` / `findFailure`: the date is found
//! and cut out of the line, the match buffer is built (several lines with
//! `maxlines`), the prefregex selects and trims the content, the failregexes
//! are tried in order, ignoreregexes veto, multi-line failures are merged by
//! their `mlfid` (sshd's connection tracking), and the failure id is chosen
//! (address groups first, then `fid`, with DNS resolution per `usedns`).
//! The server and `fail2ban-regex` both drive this module.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dates::{DateConverter, DateDetector, DateError, TimeMatch, Timestamp};
use crate::failregex::{
    Groups, LineSplit, Regex, RegexException, TupleLine, Value, fail_regex, tuple_lines_buf,
};
use crate::ipaddr::{self, CIDR_RAW, CIDR_UNSPEC, FAM_IPV4, FAM_IPV6, IpAddr, UseDns};
use crate::mytime;
use crate::regex::Captures;

/// One failure found in a line: `[failregex index, id, time, groups]`.
#[derive(Debug, Clone)]
pub struct FailResult {
    pub index: usize,
    /// The failure id; `None` for a pending multi-line failure.
    pub id: Option<IpAddr>,
    pub time: Option<Timestamp>,
    pub groups: Groups,
}

/// Errors that abort the processing of one line (fail2ban lets these
/// escape as exceptions: the server logs them, `fail2ban-regex` dies).
#[derive(Debug, Clone, PartialEq)]
pub enum LineError {
    /// An unknown time zone abbreviation matched by `%Z` (Python KeyError).
    Date(DateError),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Date(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LineError {}

/// Errors of configuring a filter (the messages fail2ban shows).
#[derive(Debug, Clone, PartialEq)]
pub enum FilterError {
    Regex(RegexException),
    Date(DateError),
    Value(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Regex(e) => write!(f, "{e}"),
            FilterError::Date(e) => write!(f, "{e}"),
            FilterError::Value(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for FilterError {}

impl From<RegexException> for FilterError {
    fn from(e: RegexException) -> Self {
        FilterError::Regex(e)
    }
}

impl From<DateError> for FilterError {
    fn from(e: DateError) -> Self {
        FilterError::Date(e)
    }
}

type Shared = Rc<RefCell<Groups>>;

/// fail2ban's multi-line failure cache (`Utils.Cache(maxCount=100,
/// maxTime=300)`): FIFO eviction, entries expire on the real clock.
///
/// `order` lists the keys by insertion; a removed key's place is left
/// behind and told apart by its insertion number (`unset` stays O(1)), and
/// the list is compacted when the dead places outnumber the live ones.
struct MlfidCache {
    /// A fast hash with a random seed per process (the keys come from log
    /// lines, so from whoever writes them).
    entries: foldhash::HashMap<String, (Shared, Instant, u64)>,
    order: VecDeque<(String, u64)>,
    inserted: u64,
    max_count: usize,
    max_time: Duration,
}

impl MlfidCache {
    fn new() -> MlfidCache {
        MlfidCache {
            entries: foldhash::HashMap::default(),
            order: VecDeque::new(),
            inserted: 0,
            max_count: 100,
            max_time: Duration::from_secs(300),
        }
    }

    fn get(&mut self, k: &str) -> Option<Shared> {
        let (v, exp, _) = self.entries.get(k)?;
        if *exp > Instant::now() {
            return Some(v.clone());
        }
        self.unset(k);
        None
    }

    /// Whether `order`'s place `(k, n)` is the live one of `k`.
    fn live(&self, k: &str, n: u64) -> bool {
        self.entries.get(k).is_some_and(|e| e.2 == n)
    }

    fn set(&mut self, k: &str, v: Shared) {
        let now = Instant::now();
        if self.entries.len() >= self.max_count {
            while let Some((old, n)) = self.order.pop_front() {
                if !self.live(&old, n) {
                    continue;
                }
                let Some((_, exp, _)) = self.entries.remove(&old) else {
                    continue;
                };
                if exp > now && self.entries.len() < self.max_count {
                    break;
                }
            }
        }
        let n = match self.entries.get(k) {
            Some(e) => e.2,
            None => {
                self.inserted += 1;
                self.order.push_back((k.to_string(), self.inserted));
                self.inserted
            }
        };
        self.entries
            .insert(k.to_string(), (v, now + self.max_time, n));
    }

    fn unset(&mut self, k: &str) {
        if self.entries.remove(k).is_some() && self.order.len() > 2 * self.entries.len() + 64 {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(o, n)| self.live(o, *n));
            self.order = order;
        }
    }
}

/// The line buffer in use while one line is processed: the original lines,
/// or a replacement (prefregex content, or lines left unmatched).
enum CurrentBuffer {
    Original,
    Replaced(Vec<TupleLine>),
}

/// A line as [`Dater::find_date`] leaves it: cut around the date the
/// detector found (not cut without one), the date not yet converted.
#[derive(Debug, Clone)]
pub struct FoundDate {
    tuple: TupleLine,
    tm: Option<TimeMatch>,
}

impl FoundDate {
    /// The line cut around the found date, as the regexes will see it
    /// unless the conversion changes it (see [`Dater::convert_date`]).
    pub fn tuple(&self) -> &TupleLine {
        &self.tuple
    }
}

/// A log line after date detection: split around its date text, with its
/// time (`None` when it has none), and whether no date was found in it.
#[derive(Debug, Clone)]
pub struct Dated {
    pub tuple: TupleLine,
    pub date: Option<Timestamp>,
    pub no_date: bool,
}

/// Logs a warning at most once a day per key (fail2ban's `_logWarnOnce`);
/// repeats go to the trace level.
fn log_warn_once<const N: usize>(
    next: &mut HashMap<&'static str, f64>,
    jail: &str,
    key: &'static str,
    msgs: impl FnOnce() -> [String; N],
) {
    let now = mytime::now();
    if now < next.get(key).copied().unwrap_or(0.0) {
        // written only when traced: a log full of odd lines repeats this
        // for every line
        if log::log_enabled!(log::Level::Trace) {
            for m in msgs() {
                log::trace!("{m}");
            }
        }
    } else {
        next.insert(key, now + 24.0 * 60.0 * 60.0);
        for m in msgs() {
            log::warn!("[{jail}] {m}");
        }
    }
}

/// The date-finding half of a filter: the date detector and the "last
/// date" state fail2ban keeps for undated continuation lines.  It depends
/// only on the sequence of lines, so it can run ahead of the rest.
pub struct Dater {
    date_detector: Option<DateDetector>,
    logtimezone: Option<String>,
    last_date: Option<Timestamp>,
    last_time_text: String,
    find_time: f64,
    check_find_time: bool,
    in_operation: bool,
    next_warn: HashMap<&'static str, f64>,
    jail_name: String,
}

impl Dater {
    fn new(jail_name: String) -> Dater {
        Dater {
            date_detector: Some(DateDetector::new()),
            ..Dater::without_detector(jail_name)
        }
    }

    fn without_detector(jail_name: String) -> Dater {
        Dater {
            date_detector: None,
            logtimezone: None,
            last_date: None,
            last_time_text: String::new(),
            find_time: 600.0,
            check_find_time: true,
            in_operation: true,
            next_warn: HashMap::new(),
            jail_name,
        }
    }

    /// Whether [`convert_date`](Self::convert_date) may run after the
    /// line's regexes were evaluated: without find-time checks, evaluating
    /// a line does not look at its date.
    pub fn can_defer_conversion(&self) -> bool {
        !self.check_find_time
    }

    /// A copy of the conversion state (the last date, the find-time
    /// settings, no detector), for [`convert_date`](Self::convert_date) on
    /// another thread while this dater finds dates; see
    /// [`join_tail`](Self::join_tail).
    pub fn split_tail(&self) -> Dater {
        Dater {
            date_detector: None,
            logtimezone: self.logtimezone.clone(),
            last_date: self.last_date,
            last_time_text: self.last_time_text.clone(),
            find_time: self.find_time,
            check_find_time: self.check_find_time,
            in_operation: self.in_operation,
            next_warn: self.next_warn.clone(),
            jail_name: self.jail_name.clone(),
        }
    }

    /// Takes back the conversion state of a [`split_tail`](Self::split_tail)
    /// copy.
    pub fn join_tail(&mut self, tail: Dater) {
        self.last_date = tail.last_date;
        self.last_time_text = tail.last_time_text;
        self.next_warn = tail.next_warn;
    }

    /// The date detector (`None` for journal lines).
    pub fn date_detector(&self) -> Option<&DateDetector> {
        self.date_detector.as_ref()
    }

    fn set_datepattern(&mut self, pattern: Option<&str>) -> Result<(), FilterError> {
        self.date_detector = match pattern {
            None => None,
            Some(p) => {
                let mut dd = crate::dates::set_datepattern(p)?;
                dd.set_default_tz(self.logtimezone.as_deref())?;
                Some(dd)
            }
        };
        Ok(())
    }

    fn set_logtimezone(&mut self, tz: Option<&str>) -> Result<(), FilterError> {
        if let Some(t) = tz {
            crate::dates::validate_time_zone(t)?;
        }
        self.logtimezone = tz.map(str::to_string);
        if let Some(dd) = self.date_detector.as_mut() {
            dd.set_default_tz(tz)?;
        }
        Ok(())
    }

    fn with_last_date_text(&self, line: &str) -> TupleLine {
        let n = self.last_time_text.len();
        TupleLine::new(format!("{}{}", self.last_time_text, line), 0, n)
    }

    /// Finds and cuts the date of a raw line (the first half of fail2ban's
    /// `processLine`); `None` when the line is too old to be considered.
    pub fn date_line(&mut self, line: &str) -> Result<Option<Dated>, LineError> {
        let found = self.find_date(line);
        // the conversion needs the detector's converter, not the detector
        let detector = self.date_detector.take();
        let converted = match &detector {
            Some(dd) => self.convert_date(found, dd.converter()),
            None => self.convert_date(found, &DateConverter::default()),
        };
        self.date_detector = detector;
        converted
    }

    /// A converter for [`convert_date`](Self::convert_date) on another
    /// thread (see [`DateConverter`]).
    pub fn converter(&self) -> DateConverter {
        self.date_detector
            .as_ref()
            .map(|dd| dd.converter().clone())
            .unwrap_or_default()
    }

    /// The detection half of [`date_line`](Self::date_line): the date the
    /// detector finds in `line` and the line cut around it.  It depends
    /// only on the detector, so it can run ahead of
    /// [`convert_date`](Self::convert_date), on another thread.
    pub fn find_date(&mut self, line: &str) -> FoundDate {
        let tm = self
            .date_detector
            .as_mut()
            .and_then(|dd| dd.match_time(line));
        let (s, e) = tm.as_ref().map_or((0, 0), TimeMatch::span);
        FoundDate {
            tuple: TupleLine::copied(line, s, e),
            tm,
        }
    }

    /// The conversion half of [`date_line`](Self::date_line), in line
    /// order: the timestamp of the found date (with `conv`, this dater's
    /// [`DateDetector::converter`]) and the "last date" of undated lines.
    pub fn convert_date(
        &mut self,
        found: FoundDate,
        conv: &DateConverter,
    ) -> Result<Option<Dated>, LineError> {
        let mut no_date = false;
        let mut date: Option<Timestamp> = None;
        let now = mytime::now();
        let FoundDate { tuple, tm } = found;
        let line = tuple.joined();
        let tuple = match tm {
            Some(tm) => {
                let (s, e) = tm.span();
                let mut tuple = tuple.clone();
                if s < e {
                    match conv.get_time_at(line, &tm, now).map_err(LineError::Date)? {
                        Some(t) => {
                            date = Some(t);
                            if self.last_time_text != line[s..e] {
                                self.last_time_text.clear();
                                self.last_time_text.push_str(&line[s..e]);
                            }
                            self.last_date = Some(t);
                        }
                        None => {
                            log::error!("findFailure failed to parse timeText: {}", &line[s..e])
                        }
                    }
                } else if let Some(last) = self.last_date.filter(|d| d.as_f64() > now - 60.0) {
                    tuple = self.with_last_date_text(line);
                    date = Some(last);
                } else {
                    date = Some(Timestamp::Float(now));
                }
                tuple
            }
            None => tuple.clone(),
        };
        let mut tuple = tuple;
        if date.is_none() {
            no_date = true;
            if let Some(last) = self.last_date.filter(|d| d.as_f64() > now - 60.0) {
                tuple = self.with_last_date_text(line);
                date = Some(last);
            } else if self.check_find_time && self.in_operation {
                date = Some(Timestamp::Float(now));
            }
        }
        if self.check_find_time
            && let Some(d) = date
        {
            if self.in_operation {
                let delta = (d.as_f64() - now) as i64;
                if delta.abs() > 60 {
                    log_warn_once(&mut self.next_warn, &self.jail_name, "sim_by_time", || {
                        [
                            format!(
                                "Detected a log entry {} {} the current time in operation mode. This looks like a {} problem. Treating such entries as if they just happened.",
                                mytime::seconds2str(delta.abs() as f64),
                                if delta < 0 { "before" } else { "after" },
                                if (-3300..0).contains(&delta) {
                                    "latency"
                                } else {
                                    "timezone"
                                }
                            ),
                            format!(
                                "Please check a jail for a timing issue. Line with odd timestamp: {line}"
                            ),
                        ]
                    });
                    date = Some(Timestamp::Float(now));
                    self.last_date = date;
                }
            } else if d.as_f64() < now - self.find_time {
                let find_time = self.find_time;
                log_warn_once(&mut self.next_warn, &self.jail_name, "ign_by_time", || {
                    [
                        format!(
                            "Ignoring all log entries older than {}s; these are probably messages generated while fail2ban was not running.",
                            mytime::num_str(find_time)
                        ),
                        format!(
                            "Please check a jail for a timing issue. Line with odd timestamp: {line}"
                        ),
                    ]
                });
                return Ok(None);
            }
        }
        Ok(Some(Dated {
            tuple,
            date,
            no_date,
        }))
    }
}

/// What a filter matches with: its regexes and the switches that decide how
/// they are tried.  Fixed while lines are processed, and shared (read-only)
/// with the threads that evaluate lines ahead of the stateful part.
pub struct Rules {
    usedns: UseDns,
    prefregex: Option<Regex>,
    failregex: Vec<Regex>,
    ignoreregex: Vec<Regex>,
    maxlines: usize,
    check_all_regex: bool,
    check_find_time: bool,
    keep_pref_groups: bool,
    /// The failregexes in one automaton: which of them may match a line.
    fail_set: std::sync::OnceLock<crate::regex::PyRegexSet>,
}

/// How a failregex hit of one line ended in the evaluation.
#[derive(Debug, Clone)]
enum HitKind {
    /// An ignoreregex vetoed it.
    Ignored,
    /// The line has no time and such matches are skipped.
    NoTime,
    /// A match; `no_group` is the error when no failure-id group took part.
    Match { no_group: Option<String> },
}

/// One failregex that matched a line.
#[derive(Debug, Clone)]
struct Hit {
    index: usize,
    groups: Groups,
    kind: HitKind,
}

/// What the regexes found in one (single-line) log line, before any state
/// (multi-line merging, failure ids) is applied: a pure function of the
/// line, so lines can be evaluated in parallel and finished in order.
#[derive(Debug, Clone)]
pub struct Evaluation {
    dated: Dated,
    ignore_hits: Vec<usize>,
    /// Whether the prefregex matched, when it was searched.
    pref_matched: Option<bool>,
    pref_groups: Groups,
    pref_shown: Option<Groups>,
    hits: Vec<Hit>,
}

impl Evaluation {
    /// This evaluation with its line's final date (a line evaluated before
    /// its date was converted, see [`Dater::can_defer_conversion`]), or
    /// `Err(dated)` when the conversion changed the text the regexes see
    /// (an invalid date then stays in the line), which must then be
    /// evaluated again.
    pub fn with_dated(mut self, dated: Dated) -> Result<Evaluation, Dated> {
        if !self.dated.tuple.same_undated(&dated.tuple) {
            return Err(dated);
        }
        self.dated = dated;
        Ok(self)
    }

    /// The dated line this evaluation is about.
    pub fn dated(&self) -> &Dated {
        &self.dated
    }
}

impl Rules {
    fn new() -> Rules {
        Rules {
            usedns: UseDns::Warn,
            prefregex: None,
            failregex: Vec::new(),
            ignoreregex: Vec::new(),
            maxlines: 1,
            check_all_regex: false,
            check_find_time: true,
            keep_pref_groups: false,
            fail_set: std::sync::OnceLock::new(),
        }
    }

    /// The failregex set, built at first use.
    fn fail_set(&self) -> &crate::regex::PyRegexSet {
        self.fail_set.get_or_init(|| {
            let res: Vec<&crate::regex::PyRegex> =
                self.failregex.iter().map(Regex::compiled).collect();
            crate::regex::PyRegexSet::new(&res)
        })
    }

    /// Whether lines can be evaluated on their own ([`Rules::evaluate`]):
    /// true unless several lines are buffered (`maxlines` > 1).
    pub fn single_line(&self) -> bool {
        self.maxlines <= 1
    }

    /// The ignoreregexes that hit `buf`, in order (all of them in check-all
    /// mode, else the first).
    fn ignore_hits(&self, buf: &str, hits: &mut Vec<usize>) -> bool {
        let mut found = false;
        for (i, re) in self.ignoreregex.iter().enumerate() {
            if re.is_match(buf) {
                found = true;
                hits.push(i);
                if !self.check_all_regex {
                    break;
                }
            }
        }
        found
    }

    /// Runs the regexes over one dated line, as fail2ban's `findFailure`
    /// does for a single-line buffer, up to the point where the multi-line
    /// state would come in.  Only for [`Rules::single_line`] filters.
    pub fn evaluate(&self, dated: Dated) -> Evaluation {
        thread_local! {
            /// The buffer and the candidate list of the last evaluation on
            /// this thread, reused.
            static SCRATCH: std::cell::Cell<(String, Vec<usize>, Captures)> =
                const { std::cell::Cell::new((String::new(), Vec::new(), Captures::new())) };
        }
        let (mut buf, mut candidates, mut caps) = SCRATCH.take();
        let ev = self.evaluate_with(dated, &mut buf, &mut candidates, &mut caps);
        SCRATCH.set((buf, candidates, caps));
        ev
    }

    fn evaluate_with(
        &self,
        dated: Dated,
        buf: &mut String,
        candidates: &mut Vec<usize>,
        caps: &mut Captures,
    ) -> Evaluation {
        let mut ev = Evaluation {
            dated,
            ignore_hits: Vec::new(),
            pref_matched: None,
            pref_groups: Groups::new(),
            pref_shown: None,
            hits: Vec::new(),
        };
        buf.clear();
        ev.dated.tuple.push_undated(buf);
        buf.push('\n');
        if !self.ignoreregex.is_empty()
            && self.ignoreregex.len() + 2 < self.failregex.len()
            && self.ignore_hits(buf, &mut ev.ignore_hits)
        {
            return ev;
        }
        if let Some(pre) = &self.prefregex {
            let Some((groups, content)) = pre.search_prefix(buf) else {
                ev.pref_matched = Some(false);
                return ev;
            };
            ev.pref_matched = Some(true);
            if self.keep_pref_groups {
                ev.pref_shown = Some(groups.clone());
            }
            if let Some((start, end)) = content
                && start < end
            {
                // the buffer becomes the content and its newline
                buf.truncate(end);
                buf.drain(..start);
                buf.push('\n');
            }
            ev.pref_groups = groups;
        }
        // the literal prefixes tell cheaply which failregexes may match;
        // where several may, the set's automaton tells which do
        if !self.fail_set().starts(buf, candidates) || candidates.len() > 1 {
            self.fail_set().candidates(buf, candidates);
        }
        // only the regexes found possible can match this buffer (until
        // the buffer changes below), in order
        let mut next = 0;
        while let Some(&index) = candidates.get(next) {
            next += 1;
            let re = &self.failregex[index];
            // a single line: the match's line split is that line.  The set
            // found this regex possible: a match that can only start at the
            // beginning goes straight to the backtracker (the automaton's
            // yes/no before it would nearly always be yes)
            let compiled = re.compiled();
            let hit = if compiled.at_start() {
                compiled.match_at_into(buf, 0, caps)
            } else {
                compiled.search_into(buf, 0, buf.len(), caps)
            };
            if !hit {
                continue;
            }
            let groups = re.groups(buf, caps);
            if !self.ignoreregex.is_empty() && self.ignore_hits(buf, &mut ev.ignore_hits) {
                ev.hits.push(Hit {
                    index,
                    groups,
                    kind: HitKind::Ignored,
                });
                if !self.check_all_regex {
                    // the buffer keeps the unmatched lines: none
                    break;
                }
                continue;
            }
            if ev.dated.no_date && ev.dated.date.is_none() && self.check_find_time {
                ev.hits.push(Hit {
                    index,
                    groups,
                    kind: HitKind::NoTime,
                });
                continue;
            }
            let no_group = (!has_failure_id(&ev.pref_groups, &groups)).then(|| {
                format!(
                    "No group found in '{buf}' using 're.compile({})'",
                    crate::pyvalue::str_repr(re.expanded())
                )
            });
            let stop = !self.check_all_regex && no_group.is_none();
            ev.hits.push(Hit {
                index,
                groups,
                kind: HitKind::Match { no_group },
            });
            if stop {
                break;
            }
            if !self.check_all_regex {
                // later regexes see the lines this one left: none
                buf.clear();
                buf.push('\n');
                self.fail_set().candidates(buf, candidates);
                next = candidates.partition_point(|&c| c <= index);
            }
        }
        ev
    }
}

/// Whether a failure-id group (`mlfid`, `ip4`, `ip6`, `dns`, `fid`) took
/// part in a match, counting the prefregex's groups.
fn has_failure_id(pre: &Groups, fail: &Groups) -> bool {
    ["mlfid", "ip4", "ip6", "dns", "fid"].iter().any(|g| {
        fail.get(g).is_some_and(|v| *v != Value::None)
            || pre.get(g).is_some_and(|v| *v != Value::None)
    })
}

/// A filter: regexes, date detection, buffers and the multi-line state.
pub struct Filter {
    rules: Arc<Rules>,
    line_buffer: Vec<TupleLine>,
    dater: Dater,
    mlfid_cache: MlfidCache,
    next_warn: HashMap<&'static str, f64>,
    /// Return the failure id text as is (fail2ban-regex `-r`).
    pub return_raw_host: bool,
    /// Do not report failures without id (multi-line pending ones).
    pub ignore_pending: bool,
    /// The jail's name, for log messages.
    pub jail_name: String,
    pref_matched: bool,
    pref_groups: Option<Groups>,
    ignore_hits: Vec<usize>,
    buf: String,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new()
    }
}

impl Filter {
    /// A filter with fail2ban's defaults (usedns `warn`, maxlines 1, the
    /// default date templates, findtime 600).
    pub fn new() -> Filter {
        Filter {
            rules: Arc::new(Rules::new()),
            line_buffer: Vec::new(),
            dater: Dater::new("~jailless~".to_string()),
            mlfid_cache: MlfidCache::new(),
            next_warn: HashMap::new(),
            return_raw_host: false,
            ignore_pending: true,
            jail_name: "~jailless~".to_string(),
            pref_matched: false,
            pref_groups: None,
            ignore_hits: Vec::new(),
            buf: String::new(),
        }
    }

    /// The rules, for changing them (only while no evaluation holds them).
    fn rules_mut(&mut self) -> &mut Rules {
        let rules =
            Arc::get_mut(&mut self.rules).expect("filter rules changed while lines are evaluated");
        rules.fail_set = std::sync::OnceLock::new();
        rules
    }

    /// The rules, to evaluate lines on other threads.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    pub fn set_usedns(&mut self, value: &str) {
        self.rules_mut().usedns = UseDns::parse(value);
    }

    pub fn usedns(&self) -> UseDns {
        self.rules.usedns
    }

    /// Try every failregex on a line (fail2ban-regex, sample tests).
    pub fn set_check_all_regex(&mut self, on: bool) {
        self.rules_mut().check_all_regex = on;
    }

    /// Remember the prefregex groups of each line (fail2ban-regex `-v`).
    pub fn set_keep_pref_groups(&mut self, on: bool) {
        self.rules_mut().keep_pref_groups = on;
    }

    /// Sets (or clears, with an empty value) the prefregex.
    pub fn set_prefregex(&mut self, value: &str) -> Result<(), FilterError> {
        let usedns = self.rules.usedns;
        self.rules_mut().prefregex = if value.is_empty() {
            None
        } else {
            Some(Regex::new(value, false, usedns)?)
        };
        Ok(())
    }

    pub fn prefregex(&self) -> Option<&Regex> {
        self.rules.prefregex.as_ref()
    }

    /// Adds a failregex; multi-line mode depends on `maxlines` now.
    pub fn add_failregex(&mut self, value: &str) -> Result<(), FilterError> {
        let r = &self.rules;
        let re = fail_regex(value, r.prefregex.as_ref(), r.maxlines > 1, r.usedns)
            .inspect_err(|e| log::error!("{e}"))?;
        self.rules_mut().failregex.push(re);
        Ok(())
    }

    pub fn failregexes(&self) -> &[Regex] {
        &self.rules.failregex
    }

    pub fn add_ignoreregex(&mut self, value: &str) -> Result<(), FilterError> {
        let re = Regex::new(value, false, self.rules.usedns).inspect_err(|e| log::error!("{e}"))?;
        self.rules_mut().ignoreregex.push(re);
        Ok(())
    }

    pub fn ignoreregexes(&self) -> &[Regex] {
        &self.rules.ignoreregex
    }

    /// Removes failregex (`fail`) or ignoreregex number `index`
    /// (`delfailregex`); an index out of range is logged, as fail2ban does.
    pub fn delete_regex(&mut self, fail: bool, index: i64) {
        let rules = self.rules_mut();
        let list = if fail {
            &mut rules.failregex
        } else {
            &mut rules.ignoreregex
        };
        let len = list.len() as i64;
        let i = if index < 0 { index + len } else { index };
        if (0..len).contains(&i) {
            list.remove(i as usize);
        } else {
            log::error!("Cannot remove regular expression. Index {index} is not valid");
        }
    }

    /// Clears the failregexes and ignoreregexes (a reload refills them).
    pub fn clear_regexes(&mut self) {
        let rules = self.rules_mut();
        rules.failregex.clear();
        rules.ignoreregex.clear();
    }

    /// The `logtimezone`, if set.
    pub fn logtimezone(&self) -> Option<&str> {
        self.dater.logtimezone.as_deref()
    }

    pub fn set_maxlines(&mut self, value: i64) -> Result<(), FilterError> {
        if value <= 0 {
            return Err(FilterError::Value(
                "maxlines must be integer greater than zero".to_string(),
            ));
        }
        self.rules_mut().maxlines = value as usize;
        Ok(())
    }

    pub fn maxlines(&self) -> usize {
        self.rules.maxlines
    }

    pub fn set_find_time(&mut self, seconds: f64) {
        self.dater.find_time = seconds;
    }

    pub fn find_time(&self) -> f64 {
        self.dater.find_time
    }

    /// Replaces the date detector by one built from `pattern` (lines of
    /// templates), or removes it (`None`, for journal lines).
    pub fn set_datepattern(&mut self, pattern: Option<&str>) -> Result<(), FilterError> {
        self.dater.set_datepattern(pattern)
    }

    pub fn date_detector(&self) -> Option<&DateDetector> {
        self.dater.date_detector.as_ref()
    }

    /// Sets `logtimezone` (validated as fail2ban does).
    pub fn set_logtimezone(&mut self, tz: Option<&str>) -> Result<(), FilterError> {
        self.dater.set_logtimezone(tz)
    }

    /// Whether lines older than `findtime` are dropped and odd dates
    /// replaced by now (the server; fail2ban-regex turns it off).
    pub fn set_check_find_time(&mut self, on: bool) {
        self.rules_mut().check_find_time = on;
        self.dater.check_find_time = on;
    }

    /// Tailing new lines (as opposed to reading existing content).
    pub fn set_in_operation(&mut self, on: bool) {
        self.dater.in_operation = on;
    }

    /// The current line buffer (multi-line mode bookkeeping).
    pub fn line_buffer(&self) -> &[TupleLine] {
        &self.line_buffer
    }

    /// Whether the prefregex matched the last line it was tried on.
    pub fn pref_matched(&self) -> bool {
        self.pref_matched
    }

    /// The prefregex groups of the last line (with `keep_pref_groups`).
    pub fn pref_groups(&self) -> Option<&Groups> {
        self.pref_groups.as_ref()
    }

    /// Indices of the ignoreregexes that hit the last line.
    pub fn ignore_hits(&self) -> &[usize] {
        &self.ignore_hits
    }

    fn log_warn_once<const N: usize>(
        &mut self,
        key: &'static str,
        msgs: impl FnOnce() -> [String; N],
    ) {
        log_warn_once(&mut self.next_warn, &self.jail_name, key, msgs);
    }

    /// Splits the date from a raw log line and looks for failures
    /// (fail2ban's `processLine` without a given date).
    pub fn process_line(&mut self, line: &str) -> Result<Vec<FailResult>, LineError> {
        match self.dater.date_line(line)? {
            Some(d) => Ok(self.find_dated(d)),
            None => Ok(Vec::new()),
        }
    }

    /// Processes a line that comes already split, with its time (journal).
    pub fn process_tuple_line(&mut self, tuple: TupleLine, date: Timestamp) -> Vec<FailResult> {
        self.dater.last_time_text = tuple.date_text().to_string();
        self.dater.last_date = Some(date);
        self.find_dated(Dated {
            tuple,
            date: Some(date),
            no_date: false,
        })
    }

    /// Looks for failures in a line already dated by [`Dater::date_line`].
    pub fn find_dated(&mut self, d: Dated) -> Vec<FailResult> {
        if self.rules.single_line() {
            let ev = self.rules.evaluate(d);
            self.finish(ev)
        } else {
            self.find_failure(d.tuple, d.date, d.no_date)
        }
    }

    /// The date-finding half of the filter.
    pub fn dater(&self) -> &Dater {
        &self.dater
    }

    /// The date-finding half of the filter, to configure it.
    pub fn dater_mut(&mut self) -> &mut Dater {
        &mut self.dater
    }

    /// Takes the date-finding half out (to run it on another thread); the
    /// filter has no date detector until [`Filter::put_dater`].
    pub fn take_dater(&mut self) -> Dater {
        let jail = self.jail_name.clone();
        std::mem::replace(&mut self.dater, Dater::without_detector(jail))
    }

    /// Puts a date-finding half back.
    pub fn put_dater(&mut self, dater: Dater) {
        self.dater = dater;
    }

    /// The no-date warning of fail2ban's `findFailure`.
    fn warn_no_time(&mut self, tuple: &TupleLine, matched: &[TupleLine]) {
        self.log_warn_once("no_time", || {
            [
                format!(
                    "Found a match but no valid date/time found for {}.",
                    crate::pyvalue::str_repr(tuple.date_text())
                ),
                format!(
                    "Match without a timestamp: {}",
                    matched
                        .iter()
                        .map(|l| l.joined())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                "Please try setting a custom date pattern (see man page jail.conf(5)).".to_string(),
            ]
        });
    }

    /// Applies the stateful part of fail2ban's `findFailure` to an
    /// evaluated line: multi-line merging, failure ids, results.
    pub fn finish(&mut self, ev: Evaluation) -> Vec<FailResult> {
        let rules = self.rules.clone();
        let mut fail_list = Vec::new();
        self.ignore_hits = ev.ignore_hits;
        self.line_buffer.clear();
        if let Some(m) = ev.pref_matched {
            self.pref_matched = m;
            if m {
                self.pref_groups = ev.pref_shown;
            }
        }
        let defcidr = self.default_cidr();
        let date = ev.dated.date;
        let matched = std::slice::from_ref(&ev.dated.tuple);
        for hit in ev.hits {
            let no_group = match hit.kind {
                HitKind::Ignored => continue,
                HitKind::NoTime => {
                    self.warn_no_time(&ev.dated.tuple, matched);
                    continue;
                }
                HitKind::Match { no_group } => no_group,
            };
            if ev.dated.no_date {
                self.warn_no_time(&ev.dated.tuple, matched);
            }
            let fail = merge_pref_groups(&ev.pref_groups, hit.groups);
            let mlfid = fail.get_str("mlfid").map(str::to_string);
            let shared = match &mlfid {
                Some(id) => {
                    let merged = self.merge_failure(id, fail, matched);
                    if merged.borrow().truthy("nofail") && !rules.check_all_regex {
                        return fail_list;
                    }
                    merged
                }
                None => with_matches(fail, matched),
            };
            if let Some(msg) = no_group {
                log::error!("{msg}");
                continue;
            }
            match self.failure_ids(&shared, defcidr) {
                Some(ids) => self.push_results(&mut fail_list, hit.index, ids, date, &shared),
                None => {
                    shared.borrow_mut().set("mlfpending", Value::Int(1));
                    if !rules.check_all_regex && self.ignore_pending {
                        return fail_list;
                    }
                    self.push_results(&mut fail_list, hit.index, vec![None], date, &shared);
                }
            }
            if !rules.check_all_regex {
                break;
            }
        }
        fail_list
    }

    fn default_cidr(&self) -> i32 {
        if self.rules.usedns == UseDns::Raw || self.return_raw_host {
            CIDR_RAW
        } else {
            CIDR_UNSPEC
        }
    }

    fn push_results(
        &self,
        out: &mut Vec<FailResult>,
        index: usize,
        ids: Vec<Option<IpAddr>>,
        time: Option<Timestamp>,
        shared: &Shared,
    ) {
        let mut ids = ids;
        let Some(last) = ids.pop() else {
            return;
        };
        let snapshot = shared.borrow().clone();
        for id in ids {
            out.push(FailResult {
                index,
                id,
                time,
                groups: snapshot.clone(),
            });
        }
        out.push(FailResult {
            index,
            id: last,
            time,
            groups: snapshot,
        });
    }

    /// Runs the ignoreregexes over `buf` (multi-line buffers); returns the
    /// last index that hit.  With a failregex match, the buffer keeps only
    /// its unmatched lines.
    fn ignore_line(
        &mut self,
        buf: &str,
        org: &[TupleLine],
        fail_split: Option<&LineSplit>,
        current: &mut CurrentBuffer,
    ) -> Option<usize> {
        let rules = self.rules.clone();
        let own_buf;
        let buf = match fail_split {
            Some(split) => {
                let lines: Vec<TupleLine> = split.matched.iter().map(|&i| org[i].clone()).collect();
                let mut b = String::new();
                tuple_lines_buf(&lines, &mut b);
                own_buf = b;
                own_buf.as_str()
            }
            None => buf,
        };
        let mut found = None;
        for (i, re) in rules.ignoreregex.iter().enumerate() {
            if !re.is_match(buf) {
                continue;
            }
            found = Some(i);
            self.ignore_hits.push(i);
            if let Some(split) = fail_split {
                *current = CurrentBuffer::Replaced(
                    split.unmatched.iter().map(|&i| org[i].clone()).collect(),
                );
            }
            if !rules.check_all_regex {
                break;
            }
        }
        found
    }

    /// fail2ban's `findFailure` for a multi-line buffer (`maxlines` > 1).
    fn find_failure(
        &mut self,
        tuple: TupleLine,
        date: Option<Timestamp>,
        no_date: bool,
    ) -> Vec<FailResult> {
        let rules = self.rules.clone();
        let mut fail_list = Vec::new();
        self.ignore_hits.clear();
        let defcidr = self.default_cidr();
        let mut org = std::mem::take(&mut self.line_buffer);
        org.push(tuple);
        let excess = org.len().saturating_sub(rules.maxlines);
        org.drain(..excess);
        let mut current = CurrentBuffer::Original;
        let mut buf = std::mem::take(&mut self.buf);
        tuple_lines_buf(&org, &mut buf);
        let mut buf_valid = true;

        'done: {
            if !rules.ignoreregex.is_empty()
                && rules.ignoreregex.len() + 2 < rules.failregex.len()
                && self.ignore_line(&buf, &org, None, &mut current).is_some()
            {
                break 'done;
            }
            let mut pre_groups = Groups::new();
            if let Some(pre) = &rules.prefregex {
                let Some((groups, content)) = pre.search_prefix(&buf) else {
                    self.pref_matched = false;
                    break 'done;
                };
                self.pref_matched = true;
                pre_groups = groups;
                self.pref_groups = rules.keep_pref_groups.then(|| pre_groups.clone());
                if let Some((start, end)) = content
                    && start < end
                {
                    let repl = buf[start..end].to_string();
                    current = CurrentBuffer::Replaced(vec![TupleLine::plain(repl)]);
                    buf_valid = false;
                }
            }
            for idx in 0..rules.failregex.len() {
                if !buf_valid {
                    match &current {
                        CurrentBuffer::Original => tuple_lines_buf(&org, &mut buf),
                        CurrentBuffer::Replaced(lines) => tuple_lines_buf(lines, &mut buf),
                    }
                    buf_valid = true;
                }
                let Some(m) = rules.failregex[idx].search(&buf, &org) else {
                    continue;
                };
                let fail = rules.failregex[idx].groups(&buf, &m.caps);
                if !rules.ignoreregex.is_empty()
                    && self
                        .ignore_line(&buf, &org, Some(&m.lines), &mut current)
                        .is_some()
                {
                    buf_valid = false;
                    if !rules.check_all_regex {
                        break;
                    }
                    continue;
                }
                let matched_lines: Vec<TupleLine> =
                    m.lines.matched.iter().map(|&i| org[i].clone()).collect();
                if no_date {
                    let last = org.last().cloned().expect("buffered line");
                    self.warn_no_time(&last, &matched_lines);
                    if date.is_none() && rules.check_find_time {
                        continue;
                    }
                }
                current = CurrentBuffer::Replaced(
                    m.lines.unmatched.iter().map(|&i| org[i].clone()).collect(),
                );
                buf_valid = false;
                let fail = merge_pref_groups(&pre_groups, fail);
                let mlfid = fail.get_str("mlfid").map(str::to_string);
                let shared: Shared = match &mlfid {
                    Some(id) => {
                        let merged = self.merge_failure(id, fail, &matched_lines);
                        if merged.borrow().truthy("nofail") && !rules.check_all_regex {
                            break 'done;
                        }
                        merged
                    }
                    None => with_matches(fail, &matched_lines),
                };
                if !has_failure_id(&Groups::new(), &shared.borrow()) {
                    log::error!(
                        "No group found in '{buf}' using 're.compile({})'",
                        crate::pyvalue::str_repr(rules.failregex[idx].expanded())
                    );
                    continue;
                }
                match self.failure_ids(&shared, defcidr) {
                    Some(ids) => self.push_results(&mut fail_list, idx, ids, date, &shared),
                    None => {
                        shared.borrow_mut().set("mlfpending", Value::Int(1));
                        if !rules.check_all_regex && self.ignore_pending {
                            break 'done;
                        }
                        self.push_results(&mut fail_list, idx, vec![None], date, &shared);
                    }
                }
                if !rules.check_all_regex {
                    break;
                }
            }
        }
        self.line_buffer = match current {
            CurrentBuffer::Original => org,
            CurrentBuffer::Replaced(lines) => lines,
        };
        self.buf = buf;
        fail_list
    }

    /// Chooses the failure id(s) of a match; `None` for a pending
    /// multi-line failure (no id yet).
    fn failure_ids(&self, shared: &Shared, defcidr: i32) -> Option<Vec<Option<IpAddr>>> {
        let mut fail = shared.borrow_mut();
        let fid_text = value_text(fail.get("fid"));
        let cidr_of = |fail: &Groups, fam: i32| {
            fail.get_str("cidr")
                .filter(|c| !c.is_empty())
                .and_then(|c| c.parse::<i32>().ok())
                .unwrap_or(fam)
        };
        let (ip, cidr, raw) = if let Some(ip) = fail.get_str("ip4") {
            (ip.to_string(), cidr_of(&fail, FAM_IPV4), true)
        } else if let Some(ip) = fail.get_str("ip6") {
            (ip.to_string(), cidr_of(&fail, FAM_IPV6), true)
        } else if let Some(dns) = fail.get_str("dns") {
            (dns.to_string(), defcidr, defcidr == CIDR_RAW)
        } else {
            match &fid_text {
                Some(f) => (f.clone(), defcidr, true),
                None => return None,
            }
        };
        if raw {
            let fid = match fid_text {
                Some(f) if f != ip => {
                    fail.set("ip", Value::Ip(make_addr(&ip, cidr)));
                    make_addr(&f, defcidr)
                }
                _ => make_addr(&ip, cidr),
            };
            Some(vec![Some(fid)])
        } else {
            Some(
                ipaddr::text_to_ip(&ip, self.rules.usedns)
                    .into_iter()
                    .map(Some)
                    .collect(),
            )
        }
    }

    /// fail2ban's `_mergeFailure`: folds this match into the cached
    /// failure of the same connection (`mlfid`).
    fn merge_failure(&mut self, mlfid: &str, mut fail: Groups, matched: &[TupleLine]) -> Shared {
        const NOFAIL: u8 = 1;
        const FORGET: u8 = 2;
        const CACHED_NOFAIL: u8 = 4;
        const GAINED: u8 = 8;
        let cached = self.mlfid_cache.get(mlfid);
        let mut users: Option<Vec<String>> = None;
        let mut flags = 0u8;
        if fail.truthy("mlfgained") {
            flags |= GAINED | NOFAIL;
            if !fail.truthy("nofail") {
                let g = fail.get("mlfgained").cloned().unwrap_or(Value::None);
                fail.set("nofail", g);
            }
        } else if fail.truthy("nofail") {
            flags |= NOFAIL;
        }
        if fail.pop("mlfforget").is_some_and(|v| v.truthy()) {
            flags |= FORGET;
        }
        let user = fail.get_str("user").map(str::to_string);
        let shared = match cached {
            Some(entry) => {
                {
                    let mut groups = entry.borrow_mut();
                    users = update_users(&mut groups, user.as_deref());
                    if groups.pop("nofail").is_some_and(|v| v.truthy()) {
                        flags |= CACHED_NOFAIL;
                    }
                    if groups.pop("mlfgained").is_some_and(|v| v.truthy()) {
                        flags |= CACHED_NOFAIL;
                    }
                    if flags & GAINED != 0 {
                        groups.pop("mlfpending");
                    }
                    if flags & CACHED_NOFAIL == 0 && !groups.truthy("mlfpending") {
                        groups.pop("matches");
                    }
                    for (k, v) in fail {
                        if v != Value::None {
                            groups.set_shared(&k, v);
                        }
                    }
                }
                if flags & FORGET != 0 {
                    self.mlfid_cache.unset(mlfid);
                }
                entry
            }
            None => {
                if flags & FORGET == 0 {
                    users = update_users(&mut fail, user.as_deref());
                    let entry = Rc::new(RefCell::new(fail));
                    self.mlfid_cache.set(mlfid, entry.clone());
                    entry
                } else {
                    Rc::new(RefCell::new(fail))
                }
            }
        };
        {
            let mut fail = shared.borrow_mut();
            let pending = fail.pop("mlfpending").is_some_and(|v| v.truthy());
            if pending || users.as_ref().is_some_and(|u| u.len() > 1) {
                fail.pop("nofail");
                fail.pop("mlfgained");
                flags &= !(GAINED | NOFAIL);
            }
            if flags & NOFAIL == 0 {
                let mut m = match fail.pop("nofail-matches") {
                    Some(Value::Lines(l)) => l,
                    _ => Vec::new(),
                };
                // the old list is replaced below: its lines move
                if let Some(Value::Lines(l)) = fail.get_mut("matches") {
                    if m.is_empty() {
                        m = std::mem::take(l);
                    } else {
                        m.append(l);
                    }
                }
                if flags & GAINED == 0 {
                    m.extend(matched.iter().cloned());
                }
                fail.set("matches", Value::Lines(m));
            } else if flags & (NOFAIL | FORGET) == NOFAIL {
                match fail.get_mut("nofail-matches") {
                    Some(Value::Lines(l)) => l.extend(matched.iter().cloned()),
                    _ => fail.set("nofail-matches", Value::Lines(matched.to_vec())),
                }
            }
        }
        shared
    }
}

/// The failregex groups over the prefregex's: fail2ban 1.0.2 lets a
/// failregex group that did not take part in the match (None) overwrite the
/// prefregex's value of the same name, losing e.g. an address the prefix
/// captured (a lost failure, fixed upstream in 1.1): the value is kept.
fn merge_pref_groups(pre: &Groups, fail: Groups) -> Groups {
    if pre.is_empty() {
        return fail;
    }
    let mut merged = pre.clone_with_room(fail.len());
    for (k, v) in fail {
        if v != Value::None || !merged.contains(&k) {
            merged.set_shared(&k, v);
        }
    }
    merged
}

/// A failure without a connection id: its groups plus the matched lines.
fn with_matches(mut fail: Groups, matched: &[TupleLine]) -> Shared {
    match fail.get_mut("matches") {
        Some(Value::Lines(l)) => l.extend(matched.iter().cloned()),
        _ => fail.set("matches", Value::Lines(matched.to_vec())),
    }
    Rc::new(RefCell::new(fail))
}

/// Adds `user` to the `users` set of `fail`; returns the set.
fn update_users(fail: &mut Groups, user: Option<&str>) -> Option<Vec<String>> {
    let existing = match fail.get("users") {
        Some(Value::Set(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    match user.filter(|u| !u.is_empty()) {
        Some(u) => {
            let mut set = existing.unwrap_or_default();
            if !set.iter().any(|x| x == u) {
                set.push(u.to_string());
            }
            fail.set("users", Value::Set(set.clone()));
            Some(set)
        }
        None => existing,
    }
}

/// The text of a group value as fail2ban would use it as an id (tuples are
/// turned into their Python `str`).
fn value_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::None => None,
        Value::Str(s) => Some(s.to_string()),
        other => Some(crate::filter::py_str(other)),
    }
}

/// Python `str()` of a group value.
pub fn py_str(v: &Value) -> String {
    value_to_py(v).to_py_str()
}

/// A group value as a Python value (for `repr` output).
pub fn value_to_py(v: &Value) -> crate::pyvalue::PyValue {
    use crate::pyvalue::PyValue;
    match v {
        Value::None => PyValue::None,
        Value::Str(s) => PyValue::Str(s.to_string()),
        Value::Tuple(items) => PyValue::Tuple(items.iter().map(value_to_py).collect()),
        Value::Int(i) => PyValue::Int(*i),
        Value::Set(items) => PyValue::Set(items.iter().map(|s| PyValue::Str(s.clone())).collect()),
        Value::Lines(lines) => PyValue::List(
            lines
                .iter()
                .map(|l| {
                    let (a, b, c) = l.parts();
                    PyValue::Tuple(vec![a.into(), b.into(), c.into()])
                })
                .collect(),
        ),
        Value::Ip(ip) => PyValue::Str(ip.ntoa()),
    }
}

/// Builds an address object; text that fail2ban would fail to convert
/// (an unparsable `/mask`, where Python raises) is kept as a raw id.
fn make_addr(text: &str, cidr: i32) -> IpAddr {
    IpAddr::new(text, cidr).unwrap_or_else(|_| IpAddr::raw(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Shared {
        Rc::new(RefCell::new(Groups::new()))
    }

    fn keys(cache: &MlfidCache) -> Vec<String> {
        let mut k: Vec<String> = cache.entries.keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn mlfid_cache_evicts_in_insertion_order_past_removed_keys() {
        let mut cache = MlfidCache::new();
        cache.max_count = 3;
        for k in ["a", "b", "c"] {
            cache.set(k, entry());
        }
        // "a" leaves and comes back: it is now the newest
        cache.unset("a");
        cache.set("a", entry());
        cache.set("d", entry());
        assert_eq!(keys(&cache), ["a", "c", "d"]);
        // a full cache makes room first, even for a key it holds: "c" is
        // the oldest, leaves and comes back as the newest
        cache.set("c", entry());
        assert_eq!(keys(&cache), ["a", "c", "d"]);
        cache.set("e", entry());
        assert_eq!(keys(&cache), ["c", "d", "e"]);
        cache.set("f", entry());
        assert_eq!(keys(&cache), ["c", "e", "f"]);
    }

    fn summary(d: &Result<Option<Dated>, LineError>) -> String {
        match d {
            Ok(Some(d)) => format!(
                "{:?} {:?} {}",
                d.tuple.parts(),
                d.date.map(|t| t.as_f64()),
                d.no_date
            ),
            Ok(None) => "skipped".to_string(),
            Err(e) => format!("error {e:?}"),
        }
    }

    #[test]
    fn dates_converted_apart_from_their_detection_are_the_same() {
        let lines = [
            "Jan  1 00:00:01 host sshd[1]: first",
            "a line without a date",
            "2024-02-30 12:00:00 an impossible date",
            "[2024-01-01 00:00:04] VERBOSE[1] pbx.c: x",
            "Jan  1 00:00:07 host sshd[1]: last",
        ];
        for check_find_time in [false, true] {
            let mut whole = Dater::new("test".to_string());
            whole.check_find_time = check_find_time;
            whole.in_operation = false;
            let mut finder = Dater::new("test".to_string());
            finder.check_find_time = check_find_time;
            finder.in_operation = false;
            let mut tail = finder.split_tail();
            // the detector adds its templates at the first line
            let mut found = Vec::new();
            for line in lines {
                found.push(finder.find_date(line));
            }
            let conv = finder.converter();
            for (line, f) in lines.iter().zip(found) {
                assert_eq!(f.tuple().joined(), *line);
                let expected = summary(&whole.date_line(line));
                assert_eq!(summary(&tail.convert_date(f, &conv)), expected, "{line}");
            }
            finder.join_tail(tail);
            assert_eq!(
                finder.last_date.map(|t| t.as_f64()),
                whole.last_date.map(|t| t.as_f64())
            );
            assert_eq!(finder.last_time_text, whole.last_time_text);
        }
    }

    #[test]
    fn undated_texts_compare_without_the_date() {
        let a = TupleLine::copied("[x] rest", 0, 3);
        assert!(a.same_undated(&a.clone()));
        assert!(a.same_undated(&TupleLine::copied("[y] rest", 0, 3)));
        assert!(a.same_undated(&TupleLine::copied(" rest", 0, 0)));
        assert!(!a.same_undated(&TupleLine::copied("[x] rest", 0, 0)));
    }

    #[test]
    fn mlfid_cache_order_stays_small_under_churn() {
        let mut cache = MlfidCache::new();
        for i in 0..10_000 {
            let k = format!("conn{}", i % 7);
            cache.set(&k, entry());
            if i % 3 == 0 {
                cache.unset(&k);
            }
        }
        assert!(cache.order.len() <= 2 * cache.entries.len() + 65);
        assert!(cache.get("conn1").is_some() || cache.get("conn2").is_some());
    }
}
