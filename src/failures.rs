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

use std::collections::{BTreeMap, HashMap};

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
/// address and prefix, or same raw text), without writing the address out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    /// An IPv4 (false) or IPv6 (true) address or network: the address and
    /// the prefix length, a full-length prefix for 0 as in its text form.
    Ip(bool, u128, u32),
    /// A raw id (false) or an invalid address (true): its text.
    Text(bool, String),
}

impl IdKey {
    pub fn of(ip: &IpAddr) -> IdKey {
        let full = |bits: u32| match ip.plen() {
            0 => bits,
            p => p.min(bits),
        };
        match ip.family() {
            Family::V4 => IdKey::Ip(false, u128::from(ip.addr() as u32), full(32)),
            Family::V6 => IdKey::Ip(true, ip.addr(), full(128)),
            Family::Raw => IdKey::Text(false, ip.ntoa()),
            Family::Invalid => IdKey::Text(true, ip.ntoa()),
        }
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
///
/// The ids keep the order in which they first failed (fail2ban's dict),
/// through a sequence number per entry, so that one is removed without
/// shifting all the later ones (an attack from thousands of addresses
/// bans and removes them all the time).
pub struct FailManager {
    list: HashMap<IdKey, (u64, Ticket)>,
    order: BTreeMap<u64, IdKey>,
    next_seq: u64,
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
            list: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
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
            Some((_, data)) => {
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
                let seq = self.next_seq;
                self.next_seq += 1;
                self.order.insert(seq, key.clone());
                self.list.insert(key, (seq, data));
                r
            }
        };
        self.total += 1;
        retry
    }

    /// Drops the ids whose last failure is older than `time - findtime`.
    pub fn cleanup(&mut self, time: f64) {
        let limit = time - self.max_time;
        let order = &mut self.order;
        self.list.retain(|_, (seq, t)| {
            let keep = t.time.as_f64() > limit;
            if !keep {
                order.remove(seq);
            }
            keep
        });
    }

    pub fn del_failure(&mut self, id: &IpAddr) {
        self.remove(&IdKey::of(id));
    }

    fn remove(&mut self, key: &IdKey) -> Option<Ticket> {
        let (seq, t) = self.list.remove(key)?;
        self.order.remove(&seq);
        Some(t)
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
            Some(k) => self.list.get(&k).filter(|(_, t)| t.retry >= max).map(|_| k),
            None => self
                .order
                .values()
                .find(|k| self.list.get(*k).is_some_and(|(_, t)| t.retry >= max))
                .cloned(),
        };
        found.and_then(|k| self.remove(&k))
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
    fn ids_keep_the_order_of_their_first_failure() {
        let mut fm = FailManager::new();
        fm.set_max_retry(2);
        for a in ["192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3"] {
            fm.add_failure(fail(a, 1.0), 2);
        }
        // the first id over maxretry in the order of first failure
        assert_eq!(fm.to_ban(None).unwrap().id().ntoa(), "192.0.2.1");
        fm.del_failure(&ip("192.0.2.2"));
        // failing again after its removal puts an id last
        fm.add_failure(fail("192.0.2.1", 2.0), 2);
        let order: Vec<String> = std::iter::from_fn(|| fm.to_ban(None))
            .map(|t| t.id().ntoa())
            .collect();
        assert_eq!(order, ["2001:db8::1", "192.0.2.3", "192.0.2.1"]);
        assert_eq!(fm.size(), 0);
        // the same address written differently is the same id
        fm.add_failure(fail("2001:db8:0::0:1", 3.0), 1);
        assert_eq!(fm.add_failure(fail("2001:DB8::1", 3.0), 1), 2);
        assert_eq!(fm.size(), 1);
    }

    #[test]
    fn matches_keep_the_last_maxmatches() {
        let mut fm = FailManager::new();
        fm.max_matches = 2;
        fm.set_max_retry(100);
        for i in 0..5 {
            fm.add_failure(fail("192.0.2.4", i as f64), 1);
        }
        let (_, t) = fm.list.values().next().unwrap();
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
