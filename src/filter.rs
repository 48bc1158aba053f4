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
use std::time::{Duration, Instant};

use crate::dates::{DateDetector, DateError, Timestamp};
use crate::failregex::{
    Groups, LineSplit, Regex, RegexException, TupleLine, Value, fail_regex, tuple_lines_buf,
};
use crate::ipaddr::{self, CIDR_RAW, CIDR_UNSPEC, FAM_IPV4, FAM_IPV6, IpAddr, UseDns};
use crate::mytime;

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
struct MlfidCache {
    entries: HashMap<String, (Shared, Instant)>,
    order: VecDeque<String>,
    max_count: usize,
    max_time: Duration,
}

impl MlfidCache {
    fn new() -> MlfidCache {
        MlfidCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            max_count: 100,
            max_time: Duration::from_secs(300),
        }
    }

    fn get(&mut self, k: &str) -> Option<Shared> {
        let (v, exp) = self.entries.get(k)?;
        if *exp > Instant::now() {
            return Some(v.clone());
        }
        self.unset(k);
        None
    }

    fn set(&mut self, k: &str, v: Shared) {
        let now = Instant::now();
        if self.entries.len() >= self.max_count {
            while let Some(old) = self.order.pop_front() {
                let Some((_, exp)) = self.entries.remove(&old) else {
                    continue;
                };
                if exp > now && self.entries.len() < self.max_count {
                    break;
                }
            }
        }
        if !self.entries.contains_key(k) {
            self.order.push_back(k.to_string());
        }
        self.entries.insert(k.to_string(), (v, now + self.max_time));
    }

    fn unset(&mut self, k: &str) {
        if self.entries.remove(k).is_some() {
            self.order.retain(|o| o != k);
        }
    }
}

/// The line buffer in use while one line is processed: the original lines,
/// or a replacement (prefregex content, or lines left unmatched).
enum CurrentBuffer {
    Original,
    Replaced(Vec<TupleLine>),
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
fn log_warn_once(
    next: &mut HashMap<&'static str, f64>,
    jail: &str,
    key: &'static str,
    msgs: &[String],
) {
    let now = mytime::now();
    if now < next.get(key).copied().unwrap_or(0.0) {
        for m in msgs {
            log::trace!("{m}");
        }
    } else {
        next.insert(key, now + 24.0 * 60.0 * 60.0);
        for m in msgs {
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
        let mut no_date = false;
        let mut date: Option<Timestamp> = None;
        let now = mytime::now();
        let tuple = match self
            .date_detector
            .as_mut()
            .and_then(|dd| dd.match_time(line))
        {
            Some(tm) => {
                let (s, e) = tm.span();
                let mut tuple = TupleLine::new(line.to_string(), s, e);
                if s < e {
                    let dd = self.date_detector.as_ref().expect("detector");
                    match dd.get_time(line, &tm).map_err(LineError::Date)? {
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
            None => TupleLine::plain(line.to_string()),
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
                    let msg = format!(
                        "Detected a log entry {} {} the current time in operation mode. This looks like a {} problem. Treating such entries as if they just happened.",
                        mytime::seconds2str(delta.abs() as f64),
                        if delta < 0 { "before" } else { "after" },
                        if (-3300..0).contains(&delta) {
                            "latency"
                        } else {
                            "timezone"
                        }
                    );
                    let msg2 = format!(
                        "Please check a jail for a timing issue. Line with odd timestamp: {line}"
                    );
                    log_warn_once(
                        &mut self.next_warn,
                        &self.jail_name,
                        "sim_by_time",
                        &[msg, msg2],
                    );
                    date = Some(Timestamp::Float(now));
                    self.last_date = date;
                }
            } else if d.as_f64() < now - self.find_time {
                let msg = format!(
                    "Ignoring all log entries older than {}s; these are probably messages generated while fail2ban was not running.",
                    mytime::num_str(self.find_time)
                );
                let msg2 = format!(
                    "Please check a jail for a timing issue. Line with odd timestamp: {line}"
                );
                log_warn_once(
                    &mut self.next_warn,
                    &self.jail_name,
                    "ign_by_time",
                    &[msg, msg2],
                );
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

/// A filter: regexes, date detection, buffers and the multi-line state.
pub struct Filter {
    usedns: UseDns,
    prefregex: Option<Regex>,
    failregex: Vec<Regex>,
    ignoreregex: Vec<Regex>,
    maxlines: usize,
    line_buffer: Vec<TupleLine>,
    dater: Dater,
    mlfid_cache: MlfidCache,
    next_warn: HashMap<&'static str, f64>,
    /// Return the failure id text as is (fail2ban-regex `-r`).
    pub return_raw_host: bool,
    /// Try every failregex on a line (fail2ban-regex, sample tests).
    pub check_all_regex: bool,
    /// Do not report failures without id (multi-line pending ones).
    pub ignore_pending: bool,
    /// Skip matches without a time (the server; fail2ban-regex keeps them).
    check_find_time: bool,
    /// Remember the prefregex groups of the last line (fail2ban-regex -v).
    pub keep_pref_groups: bool,
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
            usedns: UseDns::Warn,
            prefregex: None,
            failregex: Vec::new(),
            ignoreregex: Vec::new(),
            maxlines: 1,
            line_buffer: Vec::new(),
            dater: Dater::new("~jailless~".to_string()),
            mlfid_cache: MlfidCache::new(),
            next_warn: HashMap::new(),
            return_raw_host: false,
            check_all_regex: false,
            ignore_pending: true,
            check_find_time: true,
            keep_pref_groups: false,
            jail_name: "~jailless~".to_string(),
            pref_matched: false,
            pref_groups: None,
            ignore_hits: Vec::new(),
            buf: String::new(),
        }
    }

    pub fn set_usedns(&mut self, value: &str) {
        self.usedns = UseDns::parse(value);
    }

    pub fn usedns(&self) -> UseDns {
        self.usedns
    }

    /// Sets (or clears, with an empty value) the prefregex.
    pub fn set_prefregex(&mut self, value: &str) -> Result<(), FilterError> {
        self.prefregex = if value.is_empty() {
            None
        } else {
            Some(Regex::new(value, false, self.usedns)?)
        };
        Ok(())
    }

    pub fn prefregex(&self) -> Option<&Regex> {
        self.prefregex.as_ref()
    }

    /// Adds a failregex; multi-line mode depends on `maxlines` now.
    pub fn add_failregex(&mut self, value: &str) -> Result<(), FilterError> {
        let re = fail_regex(
            value,
            self.prefregex.as_ref(),
            self.maxlines > 1,
            self.usedns,
        )
        .inspect_err(|e| log::error!("{e}"))?;
        self.failregex.push(re);
        Ok(())
    }

    pub fn failregexes(&self) -> &[Regex] {
        &self.failregex
    }

    pub fn add_ignoreregex(&mut self, value: &str) -> Result<(), FilterError> {
        let re = Regex::new(value, false, self.usedns).inspect_err(|e| log::error!("{e}"))?;
        self.ignoreregex.push(re);
        Ok(())
    }

    pub fn ignoreregexes(&self) -> &[Regex] {
        &self.ignoreregex
    }

    pub fn set_maxlines(&mut self, value: i64) -> Result<(), FilterError> {
        if value <= 0 {
            return Err(FilterError::Value(
                "maxlines must be integer greater than zero".to_string(),
            ));
        }
        self.maxlines = value as usize;
        Ok(())
    }

    pub fn maxlines(&self) -> usize {
        self.maxlines
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
        self.check_find_time = on;
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

    /// Whether the prefregex matched the last line.
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

    fn log_warn_once(&mut self, key: &'static str, msgs: &[String]) {
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
        self.find_failure(tuple, Some(date), false)
    }

    /// Looks for failures in a line already dated by [`Dater::date_line`].
    pub fn find_dated(&mut self, d: Dated) -> Vec<FailResult> {
        self.find_failure(d.tuple, d.date, d.no_date)
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

    /// Runs the ignoreregexes over `buf`; returns the last index that hit.
    /// With a failregex match, the buffer keeps only its unmatched lines.
    fn ignore_line(
        &mut self,
        buf: &str,
        org: &[TupleLine],
        fail_split: Option<&LineSplit>,
        current: &mut CurrentBuffer,
    ) -> Option<usize> {
        let own_buf;
        let buf = match fail_split {
            Some(split) if self.maxlines > 1 => {
                let lines: Vec<TupleLine> = split.matched.iter().map(|&i| org[i].clone()).collect();
                let mut b = String::new();
                tuple_lines_buf(&lines, &mut b);
                own_buf = b;
                own_buf.as_str()
            }
            _ => buf,
        };
        let mut found = None;
        for (i, re) in self.ignoreregex.iter().enumerate() {
            if !re.is_match(buf) {
                continue;
            }
            found = Some(i);
            self.ignore_hits.push(i);
            if (!self.check_all_regex || self.maxlines > 1)
                && let Some(split) = fail_split
            {
                *current = CurrentBuffer::Replaced(
                    split.unmatched.iter().map(|&i| org[i].clone()).collect(),
                );
            }
            if !self.check_all_regex {
                break;
            }
        }
        found
    }

    /// fail2ban's `findFailure` for one tuple line.
    fn find_failure(
        &mut self,
        tuple: TupleLine,
        date: Option<Timestamp>,
        no_date: bool,
    ) -> Vec<FailResult> {
        let mut fail_list = Vec::new();
        self.ignore_hits.clear();
        let defcidr = if self.usedns == UseDns::Raw || self.return_raw_host {
            CIDR_RAW
        } else {
            CIDR_UNSPEC
        };
        let org: Vec<TupleLine> = if self.maxlines > 1 {
            let mut lb = std::mem::take(&mut self.line_buffer);
            lb.push(tuple);
            let excess = lb.len().saturating_sub(self.maxlines);
            lb.drain(..excess);
            lb
        } else {
            self.line_buffer.clear();
            vec![tuple]
        };
        let mut current = CurrentBuffer::Original;
        let mut buf = std::mem::take(&mut self.buf);
        tuple_lines_buf(&org, &mut buf);
        let mut buf_valid = true;

        'done: {
            if !self.ignoreregex.is_empty()
                && self.ignoreregex.len() + 2 < self.failregex.len()
                && self.ignore_line(&buf, &org, None, &mut current).is_some()
            {
                break 'done;
            }
            let mut pre_groups = Groups::new();
            if let Some(pre) = &self.prefregex {
                let Some(groups) = pre.search_groups(&buf) else {
                    self.pref_matched = false;
                    break 'done;
                };
                self.pref_matched = true;
                pre_groups = groups;
                self.pref_groups = None;
                if self.keep_pref_groups {
                    let mut shown = pre_groups.clone();
                    shown.pop("content");
                    self.pref_groups = Some(shown);
                }
                if let Some(Value::Str(repl)) = pre_groups.pop("content")
                    && !repl.is_empty()
                {
                    current = CurrentBuffer::Replaced(vec![TupleLine::plain(repl)]);
                    buf_valid = false;
                }
            }
            for idx in 0..self.failregex.len() {
                if !buf_valid {
                    match &current {
                        CurrentBuffer::Original => tuple_lines_buf(&org, &mut buf),
                        CurrentBuffer::Replaced(lines) => tuple_lines_buf(lines, &mut buf),
                    }
                    buf_valid = true;
                }
                let Some(m) = self.failregex[idx].search(&buf, &org) else {
                    continue;
                };
                let fail = self.failregex[idx].groups(&buf, &m.caps);
                if !self.ignoreregex.is_empty()
                    && self
                        .ignore_line(&buf, &org, Some(&m.lines), &mut current)
                        .is_some()
                {
                    buf_valid = false;
                    if !self.check_all_regex {
                        break;
                    }
                    continue;
                }
                let matched_lines: Vec<TupleLine> =
                    m.lines.matched.iter().map(|&i| org[i].clone()).collect();
                if no_date {
                    let msgs = [
                        format!(
                            "Found a match but no valid date/time found for {}.",
                            crate::pyvalue::str_repr(org.last().map_or("", |l| l.date_text()))
                        ),
                        format!(
                            "Match without a timestamp: {}",
                            matched_lines
                                .iter()
                                .map(|l| l.joined())
                                .collect::<Vec<_>>()
                                .join("\n")
                        ),
                        "Please try setting a custom date pattern (see man page jail.conf(5))."
                            .to_string(),
                    ];
                    self.log_warn_once("no_time", &msgs);
                    if date.is_none() && self.check_find_time {
                        continue;
                    }
                }
                if !self.check_all_regex || self.maxlines > 1 {
                    current = CurrentBuffer::Replaced(
                        m.lines.unmatched.iter().map(|&i| org[i].clone()).collect(),
                    );
                    buf_valid = false;
                }
                let fail = if pre_groups.is_empty() {
                    fail
                } else {
                    // fail2ban 1.0.2 lets a failregex group that did not take
                    // part in the match (None) overwrite the prefregex's value of
                    // the same name, losing e.g. an address the prefix captured
                    // (a lost failure, fixed upstream in 1.1): keep the value.
                    let mut merged = pre_groups.clone();
                    for (k, v) in fail.iter() {
                        if *v != Value::None || !merged.contains(k) {
                            merged.set(k, v.clone());
                        }
                    }
                    merged
                };
                let mlfid = fail.get_str("mlfid").map(str::to_string);
                let shared: Shared = match &mlfid {
                    Some(id) => {
                        let merged = self.merge_failure(id, fail, &matched_lines);
                        if merged.borrow().truthy("nofail") && !self.check_all_regex {
                            break 'done;
                        }
                        merged
                    }
                    None => {
                        let mut fail = fail;
                        let mut lines = match fail.get("matches") {
                            Some(Value::Lines(l)) => l.clone(),
                            _ => Vec::new(),
                        };
                        lines.extend(matched_lines.iter().cloned());
                        fail.set("matches", Value::Lines(lines));
                        Rc::new(RefCell::new(fail))
                    }
                };
                let fids = match self.failure_ids(&buf, idx, &shared, mlfid.is_some(), defcidr) {
                    FailureIds::Ids(f) => f,
                    FailureIds::Pending => {
                        shared.borrow_mut().set("mlfpending", Value::Int(1));
                        if !self.check_all_regex && self.ignore_pending {
                            break 'done;
                        }
                        vec![None]
                    }
                    FailureIds::NoGroup(msg) => {
                        log::error!("{msg}");
                        continue;
                    }
                };
                let snapshot = shared.borrow().clone();
                for fid in fids {
                    fail_list.push(FailResult {
                        index: idx,
                        id: fid,
                        time: date,
                        groups: snapshot.clone(),
                    });
                }
                if !self.check_all_regex {
                    break;
                }
            }
        };
        self.line_buffer = match current {
            CurrentBuffer::Original => org,
            CurrentBuffer::Replaced(lines) => lines,
        };
        self.buf = buf;
        fail_list
    }

    /// Chooses the failure id(s) of a match.
    fn failure_ids(
        &self,
        buf: &str,
        idx: usize,
        shared: &Shared,
        has_mlfid: bool,
        defcidr: i32,
    ) -> FailureIds {
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
                None if !has_mlfid => {
                    return FailureIds::NoGroup(format!(
                        "No group found in '{buf}' using 're.compile({})'",
                        crate::pyvalue::str_repr(self.failregex[idx].expanded())
                    ));
                }
                None => return FailureIds::Pending,
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
            FailureIds::Ids(vec![Some(fid)])
        } else {
            FailureIds::Ids(
                ipaddr::text_to_ip(&ip, self.usedns)
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
                    for (k, v) in fail.iter() {
                        if *v != Value::None {
                            groups.set(k, v.clone());
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
                if let Some(Value::Lines(l)) = fail.get("matches") {
                    m.extend(l.iter().cloned());
                }
                if flags & GAINED == 0 {
                    m.extend(matched.iter().cloned());
                }
                fail.set("matches", Value::Lines(m));
            } else if flags & (NOFAIL | FORGET) == NOFAIL {
                let mut m = match fail.get("nofail-matches") {
                    Some(Value::Lines(l)) => l.clone(),
                    _ => Vec::new(),
                };
                m.extend(matched.iter().cloned());
                fail.set("nofail-matches", Value::Lines(m));
            }
        }
        shared
    }
}

/// The outcome of choosing a failure id.
enum FailureIds {
    /// One entry per id (several when a host name resolves to several).
    Ids(Vec<Option<IpAddr>>),
    /// No id yet: a multi-line failure waiting for its address.
    Pending,
    /// No id group took part in the match (a broken regex).
    NoGroup(String),
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
        Value::Str(s) => Some(s.clone()),
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
        Value::Str(s) => PyValue::Str(s.clone()),
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
