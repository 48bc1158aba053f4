//! Failure tickets and the failure manager: counting failures per address
//! within `findtime` until `maxretry` calls for a ban.
//!
//! A ticket carries what fail2ban's `Ticket`/`FailTicket` carry: the id
//! (address or raw failure id), the time of the last counted failure, the
//! matched lines (at most `maxmatches` kept), the number of failures, the
//! captured groups of the *first* failure, and for bans the ban time, ban
//! count and flags.  The manager keeps fail2ban's rate-based sliding window:
//! when a failure arrives more than `findtime` after the first one, the
//! retry count is rescaled to the rate over the last `findtime`.

use indexmap::IndexMap;

use crate::dates::Timestamp;
use crate::failregex::Groups;
use crate::ipaddr::{Family, IpAddr};

/// The largest end of ban fail2ban uses for permanent bans.
pub const MAX_TIME: i64 = 0x7FFF_FFFF_FFFF;

/// A failure or ban ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    id: IpAddr,
    time: Timestamp,
    first_time: f64,
    retry: i64,
    failures: i64,
    matches: Vec<String>,
    /// Captured groups (`user`, `ip4`, `F-*` ...) of the first failure,
    /// without `matches` (kept apart) and without None values.
    groups: Groups,
    ban_time: Option<i64>,
    ban_count: u32,
    pub restored: bool,
    pub banned: bool,
    pub ban_epoch: u64,
}

/// A key identifying a ticket's id as fail2ban's dictionaries do (same
/// address and prefix, or same raw text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdKey(u8, String);

impl IdKey {
    pub fn of(ip: &IpAddr) -> IdKey {
        let fam = match ip.family() {
            Family::Raw => 0,
            Family::Invalid => 1,
            Family::V4 => 2,
            Family::V6 => 3,
        };
        IdKey(fam, ip.ntoa())
    }
}

impl Ticket {
    /// A failure ticket for `id` at `time`, with the matched lines and the
    /// captured groups of the match (fail2ban's `FailTicket(ip, time, data)`).
    pub fn failure(id: IpAddr, time: Timestamp, matches: Vec<String>, groups: Groups) -> Ticket {
        let mut clean = Groups::new();
        for (k, v) in groups.iter() {
            if &**k != "matches" && *v != crate::failregex::Value::None {
                clean.set(k, v.clone());
            }
        }
        Ticket {
            id,
            time,
            first_time: time.as_f64(),
            retry: 1,
            failures: 0,
            matches,
            groups: clean,
            ban_time: None,
            ban_count: 0,
            restored: false,
            banned: false,
            ban_epoch: 0,
        }
    }

    /// A ticket for a manual `banip` (time now, no failures, no matches).
    pub fn manual(id: IpAddr, time: Timestamp) -> Ticket {
        let mut t = Ticket::failure(id, time, Vec::new(), Groups::new());
        t.retry = 0;
        t
    }

    pub fn id(&self) -> &IpAddr {
        &self.id
    }

    /// The address to ban: the `ip` group when the failure id is something
    /// else, else the id (fail2ban's `getIP`).
    pub fn ip(&self) -> IpAddr {
        match self.groups.get("ip") {
            Some(crate::failregex::Value::Ip(ip)) => ip.clone(),
            _ => self.id.clone(),
        }
    }

    pub fn time(&self) -> Timestamp {
        self.time
    }

    pub fn set_time(&mut self, t: Timestamp) {
        self.time = t;
    }

    pub fn retry(&self) -> i64 {
        self.retry
    }

    pub fn set_retry(&mut self, v: i64) {
        self.retry = v;
        if self.failures == 0 {
            self.failures = 1;
        }
        if v == 0 {
            self.failures = 0;
            self.matches.clear();
        }
    }

    /// Number of failures (fail2ban's `getAttempt`).
    pub fn attempts(&self) -> i64 {
        self.failures
    }

    pub fn set_attempts(&mut self, v: i64) {
        self.failures = v;
    }

    pub fn matches(&self) -> &[String] {
        &self.matches
    }

    pub fn set_matches(&mut self, m: Vec<String>) {
        self.matches = m;
    }

    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    pub fn ban_time(&self) -> Option<i64> {
        self.ban_time
    }

    pub fn set_ban_time(&mut self, v: Option<i64>) {
        self.ban_time = v;
    }

    pub fn ban_count(&self) -> u32 {
        self.ban_count
    }

    pub fn set_ban_count(&mut self, v: u32) {
        self.ban_count = v;
    }

    /// The end of the ban with `default` as the jail's ban time.
    pub fn end_of_ban(&self, default: i64) -> i64 {
        let bt = self.ban_time.unwrap_or(default);
        if bt == -1 {
            MAX_TIME
        } else {
            (self.time.as_f64() + bt as f64) as i64
        }
    }

    /// The end of the ban as a float (fail2ban compares float times).
    pub fn end_of_ban_f(&self, default: i64) -> f64 {
        let bt = self.ban_time.unwrap_or(default);
        if bt == -1 {
            MAX_TIME as f64
        } else {
            self.time.as_f64() + bt as f64
        }
    }

    /// fail2ban's `adjustTime`: a later failure moves the ticket time and,
    /// past `findtime` from the first failure, rescales the retry count to
    /// the rate over the last `findtime`.
    fn adjust_time(&mut self, time: Timestamp, max_time: f64) {
        let t = time.as_f64();
        if t > self.time.as_f64() {
            if self.first_time < t - max_time {
                let rate = self.retry as f64 / (t - self.first_time) * max_time;
                self.retry = rate.round_ties_even() as i64;
                self.first_time = t - max_time;
            }
            self.time = time;
        }
    }
}

/// The failures of a jail per id, and their counters.
pub struct FailManager {
    list: IndexMap<IdKey, Ticket>,
    max_retry: i64,
    max_time: f64,
    total: u64,
    pub max_matches: usize,
}

impl Default for FailManager {
    fn default() -> Self {
        FailManager::new()
    }
}

impl FailManager {
    pub fn new() -> FailManager {
        FailManager {
            list: IndexMap::new(),
            max_retry: 3,
            max_time: 600.0,
            total: 0,
            max_matches: 5,
        }
    }

    pub fn set_max_retry(&mut self, v: i64) {
        self.max_retry = v;
    }

    pub fn max_retry(&self) -> i64 {
        self.max_retry
    }

    pub fn set_max_time(&mut self, v: f64) {
        self.max_time = v;
    }

    pub fn max_time(&self) -> f64 {
        self.max_time
    }

    /// `Currently failed`.
    pub fn size(&self) -> usize {
        self.list.len()
    }

    /// `Total failed`.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn set_total(&mut self, v: u64) {
        self.total = v;
    }

    /// Counts one failure (weight `count`); returns the retry count of the
    /// id after it (fail2ban's `addFailure`).
    pub fn add_failure(&mut self, ticket: Ticket, count: i64) -> i64 {
        let key = IdKey::of(&ticket.id);
        let max_matches = self.max_matches;
        let max_time = self.max_time;
        let retry = match self.list.get_mut(&key) {
            Some(data) => {
                let mut attempt = ticket.failures;
                if attempt <= 0 {
                    attempt += 1;
                }
                data.adjust_time(ticket.time, max_time);
                data.retry += count;
                data.failures += attempt;
                if max_matches > 0 {
                    data.matches.extend(ticket.matches);
                    let n = data.matches.len();
                    if n > max_matches {
                        data.matches.drain(..n - max_matches);
                    }
                } else {
                    data.matches.clear();
                }
                data.retry
            }
            None => {
                let mut data = ticket;
                if count > data.failures {
                    data.set_retry(count);
                }
                let r = data.retry;
                self.list.insert(key, data);
                r
            }
        };
        self.total += 1;
        retry
    }

    /// Drops the ids whose last failure is older than `time - findtime`.
    pub fn cleanup(&mut self, time: f64) {
        let limit = time - self.max_time;
        self.list.retain(|_, t| t.time.as_f64() > limit);
    }

    pub fn del_failure(&mut self, id: &IpAddr) {
        self.list.shift_remove(&IdKey::of(id));
    }

    /// The ticket of an id that reached `maxretry` (the given one, or the
    /// first such in insertion order), removed from the list.
    pub fn to_ban(&mut self, id: Option<&IpAddr>) -> Option<Ticket> {
        let key = match id.map(IdKey::of) {
            Some(k) if self.list.contains_key(&k) => Some(k),
            _ => None,
        };
        let max = self.max_retry;
        let found = match key {
            Some(k) => self.list.get(&k).filter(|t| t.retry >= max).map(|_| k),
            None => self
                .list
                .iter()
                .find(|(_, t)| t.retry >= max)
                .map(|(k, _)| k.clone()),
        };
        found.and_then(|k| self.list.shift_remove(&k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipaddr::CIDR_UNSPEC;

    fn ip(s: &str) -> IpAddr {
        IpAddr::new(s, CIDR_UNSPEC).unwrap()
    }

    fn fail(addr: &str, t: f64) -> Ticket {
        Ticket::failure(
            ip(addr),
            Timestamp::Float(t),
            vec![format!("line at {t}")],
            Groups::new(),
        )
    }

    #[test]
    fn failures_count_until_maxretry() {
        let mut fm = FailManager::new();
        fm.set_max_retry(3);
        assert_eq!(fm.add_failure(fail("192.0.2.1", 100.0), 1), 1);
        assert_eq!(fm.add_failure(fail("192.0.2.1", 101.0), 1), 2);
        assert!(fm.to_ban(None).is_none());
        assert_eq!(fm.add_failure(fail("192.0.2.1", 102.0), 1), 3);
        let t = fm.to_ban(Some(&ip("192.0.2.1"))).unwrap();
        assert_eq!(t.attempts(), 3);
        assert_eq!(t.matches().len(), 3);
        assert_eq!(t.time(), Timestamp::Float(102.0));
        assert_eq!(fm.size(), 0);
        assert_eq!(fm.total(), 3);
    }

    #[test]
    fn retry_is_rescaled_past_findtime() {
        let mut fm = FailManager::new();
        fm.set_max_time(600.0);
        fm.set_max_retry(10);
        fm.add_failure(fail("192.0.2.2", 0.0), 1);
        fm.add_failure(fail("192.0.2.2", 300.0), 1);
        // third failure 1200 s after the first: 2 failures over 1200 s → 1 per 600 s, plus this one
        assert_eq!(fm.add_failure(fail("192.0.2.2", 1200.0), 1), 2);
        let mut fm2 = FailManager::new();
        fm2.add_failure(fail("192.0.2.3", 0.0), 1);
        fm2.add_failure(fail("192.0.2.3", 300.0), 1);
        fm2.add_failure(fail("192.0.2.3", 400.0), 1);
        // 3 failures in 1200 s: round(3 / 1200 * 600) = round(1.5) = 2, plus this one
        assert_eq!(fm2.add_failure(fail("192.0.2.3", 1200.0), 1), 2 + 1);
    }

    #[test]
    fn matches_keep_the_last_maxmatches() {
        let mut fm = FailManager::new();
        fm.max_matches = 2;
        fm.set_max_retry(100);
        for i in 0..5 {
            fm.add_failure(fail("192.0.2.4", i as f64), 1);
        }
        let t = fm.list.values().next().unwrap();
        assert_eq!(
            t.matches(),
            &["line at 3".to_string(), "line at 4".to_string()]
        );
    }

    #[test]
    fn cleanup_drops_old_ids() {
        let mut fm = FailManager::new();
        fm.add_failure(fail("192.0.2.5", 0.0), 1);
        fm.add_failure(fail("192.0.2.6", 500.0), 1);
        fm.cleanup(700.0);
        assert_eq!(fm.size(), 1);
    }
}
