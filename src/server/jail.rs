//! A jail: a filter, its failures, its bans and its actions.
//!
//! Lines of the jail's logs come in (from the log watcher), the filter
//! finds failures, the ignore list vetoes, the failure manager counts, and
//! ids reaching `maxretry` are queued; the server then bans them (ban list
//! plus actions) and unbans them when their time is over.  This is
//! fail2ban's `Jail` with its `Filter.processLineAndAdd`, `Actions.__checkBan`
//! and `__checkUnBan`, driven by the server's loop instead of threads.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::actions::{Actions, BanInfo, JailStats, Num};
use crate::bans::{BanManager, NotAdded};
use crate::database::{Database, RestoreQuery};
use crate::dates::Timestamp;
use crate::failregex::Value;
use crate::failures::{FailManager, Ticket};
use crate::filter::Filter;
use crate::ipaddr::IpAddr;
use crate::mytime;
use crate::server::ignore::IgnoreList;

const LOG_FILTER: &str = "fail2ban.filter";
const LOG_ACTIONS: &str = "fail2ban.actions";

/// Lines between two clean-ups of the failure list (fail2ban's
/// `performSvc` every 100 lines, at most every 5 s).
const SVC_LINES: u64 = 100;

/// The `bantime.*` options of a jail, as set (fail2ban's `_banExtra`).
#[derive(Debug, Clone, Default)]
pub struct BanTimeExtra {
    pub values: indexmap::IndexMap<String, crate::pyvalue::PyValue>,
}

impl BanTimeExtra {
    /// Whether a boolean option (`increment`, `overalljails`) is on.
    pub fn is_on(&self, opt: &str) -> bool {
        matches!(
            self.values.get(opt),
            Some(crate::pyvalue::PyValue::Bool(true))
        )
    }

    /// A seconds option (`maxtime`, `rndtime`) when set.
    pub fn int(&self, opt: &str) -> Option<i64> {
        match self.values.get(opt) {
            Some(crate::pyvalue::PyValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

/// One jail.
pub struct Jail {
    pub name: String,
    pub backend: String,
    pub filter: Filter,
    pub fails: FailManager,
    pub bans: BanManager,
    pub actions: Actions,
    pub ignore: IgnoreList,
    pub ban_extra: BanTimeExtra,
    /// The server's database, when one is set.
    pub db: Option<Rc<Database>>,
    queue: VecDeque<Ticket>,
    pub started: bool,
    pub idle: bool,
    lines: u64,
    next_svc: f64,
    last_consistency: f64,
}

impl Jail {
    /// A new jail (`add <jail> <backend>`).
    pub fn new(name: &str, backend: &str) -> Jail {
        let mut filter = Filter::new();
        filter.jail_name = name.to_string();
        Jail {
            name: name.to_string(),
            backend: backend.to_string(),
            filter,
            fails: FailManager::new(),
            bans: BanManager::new(),
            actions: Actions::new(name),
            ignore: IgnoreList::new(name),
            ban_extra: BanTimeExtra::default(),
            db: None,
            queue: VecDeque::new(),
            started: false,
            idle: false,
            lines: 0,
            next_svc: 0.0,
            last_consistency: 0.0,
        }
    }

    /// The counters actions show in their tags.
    pub fn stats(&self) -> JailStats {
        JailStats {
            banned: self.bans.size() as i64,
            banned_total: self.bans.total() as i64,
            found: self.fails.size() as i64,
            found_total: self.fails.total() as i64,
            bantime: Num::Int(self.bans.ban_time()),
        }
    }

    /// Processes one log line (fail2ban's `processLineAndAdd`); `in_operation`
    /// tells whether the log is being tailed (vs. read from the start).
    pub fn process_line(&mut self, line: &str, in_operation: bool) {
        if self.idle {
            return;
        }
        self.filter.set_in_operation(in_operation);
        let results = match self.filter.process_line(line) {
            Ok(r) => r,
            Err(e) => {
                crate::f2b_log!(
                    ERROR,
                    LOG_FILTER,
                    "Failed to process line: {}, caught exception: KeyError({})",
                    crate::pyvalue::str_repr(line),
                    e
                );
                return;
            }
        };
        // the clock is read only for lines that need it
        let now = if results.is_empty() && !(self.lines + 1).is_multiple_of(SVC_LINES) {
            0.0
        } else {
            mytime::now()
        };
        for r in results {
            let Some(id) = r.id else { continue };
            let mut time = r.time.unwrap_or(Timestamp::Float(now));
            if time.as_f64() > now {
                time = Timestamp::Float(now);
            }
            let matches: Vec<String> = match r.groups.get("matches") {
                Some(Value::Lines(l)) => l.iter().map(|t| t.joined().to_string()).collect(),
                _ => Vec::new(),
            };
            let ticket = Ticket::failure(id.clone(), time, matches, r.groups);
            if self.ignore.is_ignored(&id, Some(&ticket)) {
                continue;
            }
            crate::f2b_log!(
                INFO,
                LOG_FILTER,
                "[{}] Found {} - {}",
                self.name,
                id,
                mytime::format_local(time.as_f64(), "%Y-%m-%d %H:%M:%S")
            );
            let observed = self.observes_failures().then(|| ticket.clone());
            let attempts = self.fails.add_failure(ticket, 1);
            if attempts >= self.fails.max_retry() {
                self.perform_ban(Some(&id));
            } else if let Some(t) = observed {
                self.failure_found(t);
            }
        }
        self.lines += 1;
        if self.lines.is_multiple_of(SVC_LINES) {
            self.service(now, false);
        }
    }

    /// Moves the ids that reached `maxretry` to the ban queue.
    pub(crate) fn perform_ban(&mut self, id: Option<&IpAddr>) {
        while let Some(t) = self.fails.to_ban(id) {
            self.queue.push_back(t);
            if id.is_some() {
                break;
            }
        }
        self.service(mytime::now(), false);
    }

    /// Drops failures older than `findtime` (at most every 5 s).
    pub fn service(&mut self, now: f64, force: bool) {
        if force || now >= self.next_svc {
            self.next_svc = now + 5.0;
            self.fails.cleanup(now);
        }
    }

    /// One failure for `ip` with `matches` (`set <jail> attempt`): counts
    /// as many failures as matches (at least one).
    pub fn attempt(&mut self, ip: IpAddr, matches: Vec<String>) {
        let now = mytime::now();
        let weight = matches.len().max(1) as i64;
        crate::f2b_log!(
            INFO,
            LOG_FILTER,
            "[{}] Attempt {} - {}",
            self.name,
            ip,
            chrono::DateTime::from_timestamp(now as i64, 0)
                .map(|d| d
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string())
                .unwrap_or_default()
        );
        let mut ticket = Ticket::failure(
            ip.clone(),
            Timestamp::Float(now),
            matches,
            Default::default(),
        );
        ticket.set_attempts(weight);
        let attempts = self.fails.add_failure(ticket, weight);
        if attempts >= self.fails.max_retry() {
            self.perform_ban(Some(&ip));
        }
    }

    /// What actions see of a ticket.
    pub fn ban_info(&self, t: &Ticket) -> BanInfo {
        let mut data = t.groups().clone();
        data.pop("ip");
        BanInfo {
            ip: t.ip(),
            fid: t.id().ntoa(),
            failures: t.attempts(),
            time: match t.time() {
                Timestamp::Int(i) => Num::Int(i),
                Timestamp::Float(f) => Num::Float(f),
            },
            bantime: t.ban_time().map(Num::Int),
            bancount: i64::from(t.ban_count()),
            matches: t.matches().to_vec(),
            restored: t.restored,
            data,
            merged_all: None,
            merged_jail: None,
        }
    }

    /// Bans the queued tickets (fail2ban's `__checkBan`); returns how many
    /// were newly banned.
    pub fn check_bans(&mut self) -> usize {
        let mut count = 0;
        while let Some(ticket) = self.queue.pop_front() {
            count += usize::from(self.ban_ticket(ticket));
        }
        count
    }

    /// Bans one ticket; true when it was newly banned.
    pub fn ban_ticket(&mut self, mut ticket: Ticket) -> bool {
        let now = mytime::now();
        let id = ticket.id().clone();
        let new_time = ticket.time();
        let increased = self.increase_ban_time(&mut ticket);
        match self.bans.add(ticket, now) {
            Ok(()) => {
                let stats = self.stats();
                self.actions.set_stats(stats);
                let epoch = self.actions.ban_epoch();
                let mut info = {
                    let t = self.bans.get(&id).expect("just banned");
                    if let Some(db) = &self.db
                        && !t.restored
                        && !increased.as_ref().is_some_and(|i| i.stored)
                    {
                        db.add_ban(&self.name, t, self.bans.ban_time());
                    }
                    self.ban_info(t)
                };
                if let Some(db) = &self.db
                    && self.actions.wants_merged()
                {
                    let ip = id.to_string();
                    info.merged_all = db.bans_merged(&ip, None);
                    info.merged_jail = db.bans_merged(&ip, Some(&self.name));
                }
                self.actions.ban(&info);
                if let Some(t) = self.bans.get_mut(&id) {
                    t.banned = true;
                    if epoch != 0 {
                        t.ban_epoch = epoch;
                    }
                }
                if let Some(inc) = &increased
                    && let Some(t) = self.bans.get(&id)
                {
                    super::emit_events(self.actions.take_events());
                    self.log_increase(t, inc);
                }
                true
            }
            Err(NotAdded::Expired) => {
                crate::f2b_log!(
                    INFO,
                    LOG_ACTIONS,
                    "[{}] Ignore {}, expired bantime",
                    self.name,
                    id
                );
                false
            }
            Err(NotAdded::AlreadyBanned {
                old_time,
                old_banned,
                old_epoch,
                ..
            }) => {
                let epoch = self.actions.ban_epoch();
                if old_banned {
                    let dif = new_time.as_f64() - old_time.as_f64();
                    let msg = format_args!("[{}] {} already banned", self.name, id);
                    if dif < 3.0 {
                        crate::f2b_log!(DEBUG, LOG_ACTIONS, "{msg}");
                    } else if dif < 60.0 {
                        crate::f2b_log!(NOTICE, LOG_ACTIONS, "{msg}");
                    } else {
                        crate::f2b_log!(WARNING, LOG_ACTIONS, "{msg}");
                    }
                    if old_epoch == epoch && dif > 3.0 && now > self.last_consistency + 3.0 {
                        self.last_consistency = now;
                        self.actions.consistency_check();
                    }
                    if old_epoch < epoch {
                        return self.reban(&id, old_epoch);
                    }
                    false
                } else {
                    self.reban(&id, old_epoch)
                }
            }
        }
    }

    fn reban(&mut self, id: &IpAddr, old_epoch: u64) -> bool {
        let info = match self.bans.get(id) {
            Some(t) => self.ban_info(t),
            None => return false,
        };
        let stats = self.stats();
        self.actions.set_stats(stats);
        let epoch = self.actions.reban(&info, old_epoch);
        if let Some(t) = self.bans.get_mut(id) {
            t.banned = true;
            if epoch != 0 {
                t.ban_epoch = epoch;
            }
        }
        true
    }

    /// Unbans the bans that are over at `now` (fail2ban's `__checkUnBan`).
    pub fn check_unbans(&mut self, now: f64) {
        let expired = self.bans.unban_list(now, usize::MAX);
        if expired.is_empty() {
            return;
        }
        let stats = self.stats();
        self.actions.set_stats(stats);
        for t in expired {
            let info = self.ban_info(&t);
            self.actions.unban(&info);
        }
    }

    /// The time of the next unban, if any.
    pub fn next_unban(&self) -> Option<f64> {
        (self.bans.size() > 0).then(|| self.bans.next_unban())
    }

    /// Removes the ban of `id` now (`unbanip`); false when not banned.
    pub fn unban_id(&mut self, id: &IpAddr) -> bool {
        if let Some(db) = &self.db {
            db.del_ban(&self.name, Some(&id.to_string()));
        }
        match self.bans.take(id) {
            Some(t) => {
                let stats = self.stats();
                self.actions.set_stats(stats);
                let info = self.ban_info(&t);
                self.actions.unban(&info);
                true
            }
            None => false,
        }
    }

    /// Removes every ban (`unban --all`); returns how many there were.
    pub fn flush_bans(&mut self) -> usize {
        if let Some(db) = &self.db {
            db.del_ban(&self.name, None);
        }
        let tickets = self.bans.flush();
        let infos: Vec<BanInfo> = tickets.iter().map(|t| self.ban_info(t)).collect();
        let stats = self.stats();
        self.actions.set_stats(stats);
        self.actions.flush(&infos);
        infos.len()
    }

    /// Queues the bans of the database still in effect (fail2ban's
    /// `restoreCurrentBans`), marked restored: they are banned again
    /// (`Restore Ban`, skipped by `norestored` actions) and not stored
    /// twice.  Ignored addresses and bans over by now are left out.
    pub fn restore_bans(&mut self) {
        let Some(db) = self.db.clone() else { return };
        let jail_ban_time = self.bans.ban_time();
        let increment = self.ban_extra.is_on("increment");
        let (for_ban_time, max_ban_time) = if increment {
            (None, self.ban_extra.int("maxtime"))
        } else {
            (Some(jail_ban_time), Some(jail_ban_time))
        };
        let now = mytime::now();
        let tickets = db.current_bans(&RestoreQuery {
            jail: &self.name,
            jail_ban_time,
            max_ban_time,
            for_ban_time,
            max_matches: self.fails.max_matches as i64,
            now,
        });
        for mut t in tickets {
            let id = t.id().clone();
            if self.ignore.is_ignored(&id, Some(&t)) {
                continue;
            }
            t.restored = true;
            let ban_time = t.ban_time().or(for_ban_time).unwrap_or(jail_ban_time);
            let age = now - t.time().as_f64();
            if ban_time != -1 && ban_time as f64 - age.max(0.0) <= 0.0 {
                continue;
            }
            self.queue.push_back(t);
        }
    }

    /// Stops the jail's actions: the current bans are removed through
    /// them, then `actionstop` runs.
    pub fn stop(&mut self) {
        let tickets = self.bans.flush();
        let infos: Vec<BanInfo> = tickets.iter().map(|t| self.ban_info(t)).collect();
        let stats = self.stats();
        self.actions.set_stats(stats);
        self.actions.stop(&infos);
        self.started = false;
    }
}
