//! The date detector: a list of templates, the stateful choice of the one
//! that dates a line, and the re-ordering of the list by success.
//!
//! This is fail2ban's `DateDetector` (`matchTime`, `_reorderTemplate`,
//! `getTime`, `appendTemplate`).  Its choice depends on state: the previous
//! winner is tried first (inside its previous span when the characters around
//! it look the same), a date found further into the line than before is only
//! kept as a fallback while other templates are tried, and a winner moves up
//! the list when its weight (hits × template weight ÷ distance) beats the
//! template at the target place or that one was not used for five minutes.
//! fail2ban-regex prints the resulting list with its hit counts, so the
//! algorithm is reproduced step by step, on Python character offsets.

use std::collections::HashSet;
use std::sync::Arc;

use super::pytext::{byte_index, char_at, char_before, char_index, last_char};
use super::strptime::{ClockAt, LocalClock, MinuteMemo};
use super::template::{
    LINE_BEGIN, LINE_END, Template, TemplateCache, pattern_key, substitute_date, unbound_pattern,
};
use super::{DateError, Timestamp, time_zone_offset};
use crate::regex::{Captures, StartMemo};

/// Seconds a template may stay unused before any winner may replace it.
const UNUSED_TIME: f64 = 300.0;
/// The initial distance of a template (Python's `0x7fffffff`).
const FAR: i64 = 0x7fff_ffff;
/// The most value groups a template has (19 date fields and `%p`).
const MAX_VALUES: usize = 20;
const NO_SPAN: (u32, u32) = (u32::MAX, u32::MAX);

/// A template in a detector's list, with the detector's own statistics.
#[derive(Debug, Clone)]
pub struct TemplateInfo {
    /// The name fail2ban-regex prints.
    pub name: String,
    /// The date pattern (None for the epoch and TAI64N templates).
    pub pattern: Option<String>,
    /// The final regex.
    pub regex: String,
    /// Times this template dated a line in this detector.
    pub hits: u64,
    /// The template's own weight (1, or 100 for the default line-begin
    /// copies), as of the last `append_template`/`match_time`.
    pub weight: f64,
    /// Character offset of its last date in a line (`0x7fffffff` before).
    pub distance: i64,
    last_used: f64,
    template: Arc<Template>,
    memo: StartMemo,
}

impl TemplateInfo {
    fn new(template: Arc<Template>) -> TemplateInfo {
        TemplateInfo {
            name: template.name.clone(),
            pattern: template.pattern.clone(),
            regex: template.regex_text.clone(),
            hits: 0,
            weight: template.weight(),
            distance: FAR,
            last_used: 0.0,
            template,
            memo: StartMemo::default(),
        }
    }

    /// The weight used for re-ordering: hits × weight ÷ max(1, distance)
    /// (the first number of fail2ban-regex's `--verbose-date` line).
    pub fn computed_weight(&self) -> f64 {
        self.hits as f64 * self.template.weight() / self.distance.max(1) as f64
    }

    /// Whether the template is anchored at the line begin or end.
    fn anchored(&self) -> bool {
        self.template.flags & (LINE_BEGIN | LINE_END) != 0
    }
}

/// The date found in a line by [`DateDetector::match_time`] (lines up to
/// 4 GiB), with the template that found it.
#[derive(Debug, Clone)]
pub struct TimeMatch {
    template: usize,
    found_by: Arc<Template>,
    whole: (usize, usize),
    cut: (usize, usize),
    values: [(u32, u32); MAX_VALUES],
}

impl TimeMatch {
    /// Byte span of group 1, the text to cut from the line (may be empty).
    /// When group 1 did not take part, the span is where Python's slices
    /// with index -1 put it: before the last character.
    pub fn span(&self) -> (usize, usize) {
        self.cut
    }

    /// Byte span of the whole match.
    pub fn whole_span(&self) -> (usize, usize) {
        self.whole
    }

    /// Index of the template in the detector's list (after re-ordering).
    pub fn template(&self) -> usize {
        self.template
    }
}

/// Which default templates `add_defaults` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultFilter {
    All,
    LineBegin,
    /// fail2ban's `{DEFAULT}` keyword: its filter returns None, which skips
    /// every template.
    Nothing,
}

/// A date detector (one per filter).
pub struct DateDetector {
    cache: Arc<TemplateCache>,
    entries: Vec<TemplateInfo>,
    known_names: HashSet<String>,
    /// Start of the last date, the character before it and the one at it.
    last_pos: (i64, Option<char>, Option<char>),
    /// End of the last date, the character before it and the one at it.
    last_end: (i64, Option<char>, Option<char>),
    last_index: usize,
    first_unused: usize,
    caps: Captures,
    spare: Captures,
    converter: DateConverter,
    weight_changes: u64,
}

/// The conversion of a found date into a timestamp: the zone of dates
/// without one (`logtimezone`) and the local clock.  A detector has one; a
/// clone (with an empty conversion cache) serves another thread, so that
/// dates can be converted apart from (and after) their detection.
#[derive(Debug, Default)]
pub struct DateConverter {
    default_tz: Option<i32>,
    clock: LocalClock,
    minutes: MinuteMemo,
}

impl Clone for DateConverter {
    fn clone(&self) -> Self {
        DateConverter {
            default_tz: self.default_tz,
            clock: LocalClock::default(),
            minutes: MinuteMemo::default(),
        }
    }
}

impl DateConverter {
    /// The timestamp of a date found by [`DateDetector::match_time`] in
    /// the same `line` (fail2ban's `getTime`).  `Ok(None)`: the date text
    /// is not a valid date; `Err`: an exception that escapes in Python (an
    /// unknown zone abbreviation, ...).
    pub fn get_time(&self, line: &str, m: &TimeMatch) -> Result<Option<Timestamp>, DateError> {
        m.found_by
            .time_of(line, &m.values, self.default_tz, &self.clock, &self.minutes)
    }

    /// [`get_time`](Self::get_time) with `now` (`MyTime.now()`) read
    /// already by the caller.
    pub fn get_time_at(
        &self,
        line: &str,
        m: &TimeMatch,
        now: f64,
    ) -> Result<Option<Timestamp>, DateError> {
        let clock = ClockAt {
            clock: &self.clock,
            now,
        };
        m.found_by
            .time_of(line, &m.values, self.default_tz, &clock, &self.minutes)
    }
}

impl Default for DateDetector {
    fn default() -> Self {
        DateDetector::new()
    }
}

impl std::fmt::Debug for DateDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DateDetector")
            .field("templates", &self.entries)
            .field("default_tz", &self.converter.default_tz)
            .finish_non_exhaustive()
    }
}

/// The current wall-clock time (a coarse clock is enough for the
/// five-minute comparisons of the re-ordering).
fn coarse_now() -> f64 {
    // SAFETY: clock_gettime only writes the given timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A search of the whole line: through the template's memo when its
/// matches start at the line's beginning (see [`StartMemo`]), else the
/// automaton, then the backtracker.
fn search_line(memo: &mut StartMemo, t: &Template, line: &str, caps: &mut Captures) -> bool {
    if !t.regex.at_start() {
        return search(t, line, 0, line.len(), caps);
    }
    let hit = t.regex.match_start_memo(line, caps, memo);
    if hit {
        t.count_hit();
    }
    hit
}

/// Searches `line[pos..endpos]` with Python's `search(line, pos, endpos)`;
/// counts the template's search hit.
fn search(t: &Template, line: &str, pos: usize, endpos: usize, caps: &mut Captures) -> bool {
    if pos > endpos {
        return false;
    }
    let hit = t.regex.search_into(line, pos, endpos, caps);
    if hit {
        t.count_hit();
    }
    hit
}

impl DateDetector {
    /// An empty detector using the process-wide template cache; the default
    /// templates are added at the first [`match_time`](Self::match_time) if
    /// none were appended.
    pub fn new() -> DateDetector {
        DateDetector::with_cache(TemplateCache::global())
    }

    /// An empty detector sharing templates through `cache`.  The choice of
    /// a template depends on how often the shared templates were found by
    /// other detectors (as in Python); tests that check the choice and run
    /// in parallel threads should use a cache of their own.
    pub fn with_cache(cache: Arc<TemplateCache>) -> DateDetector {
        let weight_changes = cache.weight_changes();
        DateDetector {
            cache,
            entries: Vec::new(),
            known_names: HashSet::new(),
            last_pos: (1, None, None),
            last_end: (FAR, None, None),
            last_index: usize::MAX,
            first_unused: 0,
            caps: Captures::default(),
            spare: Captures::default(),
            converter: DateConverter::default(),
            weight_changes,
        }
    }

    fn push(&mut self, template: Arc<Template>, ignore_duplicate: bool) -> Result<(), DateError> {
        if self.known_names.contains(&template.name) {
            if ignore_duplicate {
                return Ok(());
            }
            return Err(DateError::Duplicate(template.name.clone()));
        }
        self.known_names.insert(template.name.clone());
        self.entries.push(TemplateInfo::new(template));
        Ok(())
    }

    /// Adds the templates of one `datepattern` line: `{^LN-BEG}`,
    /// `{DEFAULT}`, a `{DATE}` wrapper, `{NONE}`, the epoch and TAI64N
    /// keywords, a custom `{EPOCH}` pattern or a strptime pattern.
    pub fn append_template(&mut self, pattern: &str) -> Result<(), DateError> {
        let key = pattern_key(pattern);
        let cached = self.cache.lock().get(&key);
        let template = match cached {
            Some(t) => t,
            None if key == "{^LN-BEG}" => return self.add_defaults(DefaultFilter::LineBegin, None),
            None if key == "{DEFAULT}" => return self.add_defaults(DefaultFilter::Nothing, None),
            None if key.contains("{DATE}") => {
                return self.add_defaults(DefaultFilter::All, Some(pattern));
            }
            None if key == "{NONE}" => self.cache.lock().template("{UNB}^", Some(&key))?,
            None => self.cache.lock().template(pattern, Some(&key))?,
        };
        self.cache.lock().set(&key, template.clone());
        self.push(template, false)
    }

    /// fail2ban's `addDefaultTemplate`: the full default list, or with a
    /// `{DATE}` pattern (`pre_match`) one copy per base default template.
    fn add_defaults(
        &mut self,
        filter: DefaultFilter,
        pre_match: Option<&str>,
    ) -> Result<(), DateError> {
        let ignore_duplicate = !self.entries.is_empty();
        let list = match pre_match {
            Some(_) => self.cache.base_defaults()?,
            None => self.cache.full_defaults()?,
        };
        self.sync_weights();
        for template in list {
            match filter {
                DefaultFilter::All => {}
                DefaultFilter::LineBegin if template.flags & LINE_BEGIN != 0 => {}
                DefaultFilter::LineBegin | DefaultFilter::Nothing => continue,
            }
            let template = match pre_match {
                Some(pm) => {
                    let wrap = |s: &str| substitute_date(pm, &unbound_pattern(s));
                    self.cache.lock().anchored(&template, &wrap)?
                }
                None => template,
            };
            self.push(template, ignore_duplicate)?;
        }
        Ok(())
    }

    /// Sets `logtimezone`: dates without a zone are taken in this zone.
    pub fn set_default_tz(&mut self, tz: Option<&str>) -> Result<(), DateError> {
        self.converter.default_tz = tz.map(time_zone_offset).transpose()?;
        Ok(())
    }

    /// The templates in their current order.
    pub fn templates(&self) -> &[TemplateInfo] {
        &self.entries
    }

    /// fail2ban's `Filter.getDatePattern`: `(pattern, name)` of a detector
    /// with one or two templates, else `(None, "Default Detectors")`.
    pub fn date_pattern(&self) -> (Option<&str>, &str) {
        match self.entries.len() {
            1 | 2 => (
                self.entries[0].pattern.as_deref(),
                self.entries[0].name.as_str(),
            ),
            _ => (None, "Default Detectors"),
        }
    }

    fn sync_weights(&mut self) {
        let changes = self.cache.weight_changes();
        if changes != self.weight_changes {
            self.weight_changes = changes;
            for e in &mut self.entries {
                e.weight = e.template.weight();
            }
        }
    }

    /// Character span of the whole match in `caps`.
    fn char_span(line: &str, caps: &Captures) -> (i64, i64) {
        let (s, e) = caps.span();
        (char_index(line, s) as i64, char_index(line, e) as i64)
    }

    /// Finds the date of `line` (fail2ban's `matchTime`), updating the hit
    /// counts, the state and the order of the templates.
    pub fn match_time(&mut self, line: &str) -> Option<TimeMatch> {
        if self.entries.is_empty() && self.add_defaults(DefaultFilter::All, None).is_err() {
            return None;
        }
        self.sync_weights();
        let n = self.entries.len();
        let mut winner: Option<(usize, i64, i64)> = None;
        // a reserved alternative; its captures are in `self.spare`
        let mut found: Option<(usize, i64, i64)> = None;
        let mut skip = usize::MAX;
        let last = self.last_index;
        if last < n {
            let entry = &mut self.entries[last];
            let anchored = entry.anchored();
            let hit = if anchored {
                skip = last;
                search_line(&mut entry.memo, &entry.template, line, &mut self.caps)
            } else {
                let (d, e) = (self.last_pos.0, self.last_end.0);
                let (du, eu) = (d as usize, e as usize);
                let same_start = char_before(line, du) == self.last_pos.1
                    || (char_at(line, du) == self.last_pos.2
                        && !self.last_pos.2.is_some_and(super::pytext::is_alnum));
                let same_end = char_at(line, eu) == self.last_end.2
                    || (char_before(line, eu) == self.last_end.1
                        && !self.last_end.1.is_some_and(super::pytext::is_alnum));
                if same_start && same_end {
                    let (pos, endpos) = (byte_index(line, du), byte_index(line, eu));
                    search(&entry.template, line, pos, endpos, &mut self.caps)
                } else {
                    skip = last;
                    search_line(&mut entry.memo, &entry.template, line, &mut self.caps)
                }
            };
            if hit {
                let (s, e) = Self::char_span(line, &self.caps);
                if n == 1 || anchored || (s == self.last_pos.0 && e == self.last_end.0) {
                    winner = Some((last, s, e));
                } else {
                    found = Some((last, s, e));
                    std::mem::swap(&mut self.caps, &mut self.spare);
                }
            }
        }
        if winner.is_none() {
            for j in 0..n {
                if j == skip {
                    continue;
                }
                let entry = &mut self.entries[j];
                if !search_line(&mut entry.memo, &entry.template, line, &mut self.caps) {
                    continue;
                }
                let entry = &self.entries[j];
                let (s, e) = Self::char_span(line, &self.caps);
                if j + 1 >= n
                    || entry.anchored()
                    || (s == 0 && entry.hits > 0 && self.entries[j + 1].template.search_hits() == 0)
                {
                    winner = Some((j, s, e));
                    break;
                }
                if s > entry.distance || s > self.last_pos.0 {
                    if found.is_none_or(|f| s < f.1) {
                        found = Some((j, s, e));
                        std::mem::swap(&mut self.caps, &mut self.spare);
                    }
                    continue;
                }
                winner = Some((j, s, e));
                break;
            }
            if winner.is_none() && found.is_some() {
                winner = found;
                std::mem::swap(&mut self.caps, &mut self.spare);
            }
        }
        let (mut i, s, e) = winner?;
        let entry = &mut self.entries[i];
        entry.hits += 1;
        entry.last_used = coarse_now();
        entry.distance = s;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        // Python indexes line[start] here and fails on a date at the very end
        let at = char_at(line, s as usize)?;
        self.last_pos = (s, char_before(line, s as usize), Some(at));
        let before_end = if e == 0 {
            last_char(line)
        } else {
            char_at(line, e as usize - 1)
        };
        self.last_end = (e, before_end, char_at(line, e as usize));
        if i != 0 && i != self.last_index {
            i = self.reorder(i);
        }
        self.last_index = i;
        Some(self.time_match(line, i))
    }

    fn time_match(&self, line: &str, i: usize) -> TimeMatch {
        let template = &self.entries[i].template;
        let whole = self.caps.span();
        let cut = self.caps.get(1).unwrap_or_else(|| {
            let b = last_char(line).map_or(0, |c| line.len() - c.len_utf8());
            (b, b)
        });
        let mut values = [NO_SPAN; MAX_VALUES];
        for (slot, g) in template.value_groups.iter().enumerate().take(MAX_VALUES) {
            if let Some((a, b)) = self.caps.get(*g) {
                values[slot] = (a as u32, b as u32);
            }
        }
        TimeMatch {
            template: i,
            found_by: template.clone(),
            whole,
            cut,
            values,
        }
    }

    /// fail2ban's `_reorderTemplate`: moves the winner at `num` up the list
    /// when it deserves it; returns its new index.
    fn reorder(&mut self, num: usize) -> usize {
        let entry = &self.entries[num];
        let untime = entry.last_used - UNUSED_TIME;
        let weight = entry.computed_weight();
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        let movable = |pos: usize| {
            let other = &self.entries[pos];
            weight > other.computed_weight() || untime > other.last_used
        };
        if !movable(pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !movable(pos) {
                return num;
            }
        }
        let entry = self.entries.remove(num);
        self.entries.insert(pos, entry);
        while self.first_unused < self.entries.len() && self.entries[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }

    /// The timestamp of a date found by [`match_time`](Self::match_time) in
    /// the same `line` (fail2ban's `getTime`).  `Ok(None)`: the date text
    /// is not a valid date; `Err`: an exception that escapes in Python (an
    /// unknown zone abbreviation, ...).
    pub fn get_time(&self, line: &str, m: &TimeMatch) -> Result<Option<Timestamp>, DateError> {
        self.converter.get_time(line, m)
    }

    /// This detector's converter (its zone and local clock).
    pub fn converter(&self) -> &DateConverter {
        &self.converter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(patterns: &[&str]) -> DateDetector {
        let mut d = DateDetector::with_cache(Arc::default());
        for p in patterns {
            d.append_template(p).unwrap();
        }
        d
    }

    #[test]
    fn detectors_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        let d = detector(&["%H:%M:%S"]);
        send(&d);
        let handle = std::thread::spawn(move || {
            let mut d = d;
            d.match_time("x 12:34:56 y").map(|m| m.span())
        });
        assert_eq!(handle.join().unwrap(), Some((2, 10)));
    }

    #[test]
    fn keywords_add_the_right_templates() {
        assert_eq!(detector(&["{^LN-BEG}"]).templates().len(), 17);
        assert_eq!(detector(&["{DEFAULT}"]).templates().len(), 0);
        assert_eq!(detector(&["%H:%M:%S", "{DEFAULT}"]).templates().len(), 1);
        let d = detector(&["^<W>{DATE}"]);
        assert_eq!(d.templates().len(), 17);
        assert_eq!(d.templates()[7].name, "^<W>Epoch");
        assert_eq!(d.templates()[16].name, "^<W>TAI64N");
        assert_eq!(d.templates()[8].name, "^<W>24hour:Minute:Second");
        let d = detector(&["{NONE}"]);
        assert_eq!(d.templates()[0].name, "^");
        assert_eq!(d.templates()[0].regex, "^()");
        assert_eq!(d.templates()[0].pattern.as_deref(), Some("{UNB}^"));
        let d = detector(&["epoch", "{^LN-BEG}TAI64N", "LEPOCH"]);
        let names: Vec<&str> = d.templates().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Epoch", "{^LN-BEG}TAI64N", "LongEpoch"]);
        assert_eq!(
            detector(&["%H:%M:%S"]).date_pattern(),
            (Some("%H:%M:%S"), "24hour:Minute:Second")
        );
        assert_eq!(
            detector(&["{^LN-BEG}"]).date_pattern(),
            (None, "Default Detectors")
        );
    }

    #[test]
    fn defaults_are_added_lazily_and_find_dates() {
        let mut d = DateDetector::with_cache(Arc::default());
        assert!(d.templates().is_empty());
        let line = "Jan 23 21:59:59 host sshd[1]: fail";
        let m = d.match_time(line).unwrap();
        assert_eq!(d.templates().len(), 31);
        assert_eq!(&line[m.span().0..m.span().1], "Jan 23 21:59:59");
        assert_eq!(
            d.templates()[m.template()].name,
            r"{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?"
        );
        assert!(d.match_time("no date here").is_none());
    }

    #[test]
    fn epoch_and_tai64n_values() {
        let mut d = detector(&["EPOCH", "TAI64N", "LEPOCH"]);
        let line = "1700000000.500 x";
        let m = d.match_time(line).unwrap();
        assert_eq!(
            d.get_time(line, &m),
            Ok(Some(Timestamp::Float(1700000000.5)))
        );
        let line = "@4000000037c219bf2ef02e94 x";
        let m = d.match_time(line).unwrap();
        assert_eq!(d.get_time(line, &m), Ok(Some(Timestamp::Int(0x37c219bf))));
        let mut d = detector(&["LEPOCH"]);
        let line = "1700000000123 x";
        let m = d.match_time(line).unwrap();
        assert_eq!(
            d.get_time(line, &m),
            Ok(Some(Timestamp::Float(1700000000.123)))
        );
        let line = "1700000000123456 x";
        let m = d.match_time(line).unwrap();
        assert_eq!(
            d.get_time(line, &m),
            Ok(Some(Timestamp::Float(1700000000.123456)))
        );
    }

    #[test]
    fn zones_and_default_tz() {
        let mut d = detector(&["^%Y-%m-%d %H:%M:%S(?: %z)?"]);
        let line = "2005-08-14 12:00:00 +0200 x";
        let m = d.match_time(line).unwrap();
        assert_eq!(d.get_time(line, &m), Ok(Some(Timestamp::Int(1124013600))));
        d.set_default_tz(Some("UTC")).unwrap();
        let line = "2005-08-14 10:00:00 x";
        let m = d.match_time(line).unwrap();
        assert_eq!(d.get_time(line, &m), Ok(Some(Timestamp::Int(1124013600))));
        assert!(d.set_default_tz(Some("Mars/Base")).is_err());
        let mut d = detector(&["^%Y-%m-%d %H:%M:%S %Z"]);
        let line = "2005-08-14 10:00:00 XYZ x";
        let m = d.match_time(line).unwrap();
        assert_eq!(
            d.get_time(line, &m),
            Err(DateError::UnknownZone("XYZ".into()))
        );
    }

    #[test]
    fn winner_moves_up_the_list() {
        let mut d = detector(&["^%H:%M:%S", "^%Y-%m-%d", "^%d.%m.%Y"]);
        let line = "14.08.2005 x";
        let m = d.match_time(line).unwrap();
        // the first unused place is 0: the winner moves there
        assert_eq!(m.template(), 0);
        let names: Vec<&str> = d.templates().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "^Day.Month.Year",
                "^24hour:Minute:Second",
                "^Year-Month-Day"
            ]
        );
        assert_eq!(d.templates()[0].hits, 1);
        let m = d.match_time("2005-08-14 x").unwrap();
        assert_eq!(m.template(), 1);
        assert_eq!(d.templates()[1].name, "^Year-Month-Day");
    }
}
