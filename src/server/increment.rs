//! `bantime.increment`: longer bans for addresses banned before (fail2ban's
//! observer `failureFound`, `incrBanTime` and `banFound`), from the ban
//! records of the database (`bips`).
//!
//! A failure of an address already banned counts more (2, 3, 5, 9 ...
//! failures, `(2^n)/2 + 1` for n earlier bans, at most `maxretry`); a new
//! ban of such an address lasts `bantime.multipliers[n] * factor * bantime`
//! or, without multipliers, `bantime * 2^n * factor` (never less than
//! `bantime`), capped by `bantime.maxtime`, plus up to `bantime.rndtime`
//! seconds at random; `bantime.overalljails` counts the bans of all jails.
//!
//! Deliberate differences: fail2ban computes the longer ban time in its
//! observer thread after the actions have banned with the jail's ban
//! time, then calls `actionprolong` a few seconds later; here it is
//! computed before the ban, so the actions get the final `<bantime>` at
//! once (the `Increase Ban` line is still logged after `Ban`).
//! `bantime.formula` and `bantime.factor` are evaluated by
//! [`super::formula`] (numeric Python expressions).

use crate::actions::Num;
use crate::database::Database;
use crate::failures::Ticket;
use crate::mytime;
use crate::pyvalue::PyValue;
use crate::server::formula::{Expr, Scope};
use crate::server::jail::{BanTimeExtra, Jail};

const LOG_OBSERVER: &str = "fail2ban.observer";

/// fail2ban's default `bantime.formula`.
pub const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";

/// The ban time of an address banned `count` times before, for a jail ban
/// time of `ban_time` (fail2ban's `evformula`); `Err` when the formula or
/// factor fails (fail2ban then keeps the jail's ban time).
pub fn increased(extra: &BanTimeExtra, ban_time: i64, count: i64) -> Result<i64, String> {
    let factor = match extra.values.get("factor") {
        Some(PyValue::Str(s)) => Expr::parse(s)?.eval(&Scope {
            time: Num::Int(0),
            count: Num::Int(0),
            factor: Num::Int(1),
        })?,
        _ => Num::Int(1),
    };
    let multipliers: Vec<i64> = match extra.values.get("multipliers") {
        Some(PyValue::Str(s)) => s
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| w.parse::<i64>().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let t = ban_time as f64;
    let mut v = if multipliers.is_empty() {
        let formula = match extra.values.get("formula") {
            Some(PyValue::Str(f)) => f.as_str(),
            _ => DEFAULT_FORMULA,
        };
        let r = Expr::parse(formula)?.eval(&Scope {
            time: Num::Int(ban_time),
            count: Num::Int(count),
            factor,
        })?;
        t.max(r.as_f64())
    } else {
        let i = (count.max(0) as usize).min(multipliers.len() - 1);
        t * factor.as_f64() * multipliers[i] as f64
    };
    if let Some(max) = extra.int("maxtime") {
        v = v.min(max as f64);
    }
    if let Some(rnd) = extra.int("rndtime") {
        v += random_unit() * rnd as f64;
    }
    Ok(v as i64)
}

/// A number in [0, 1) (the random part of `bantime.rndtime`).
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b[..4].copy_from_slice(&n.to_le_bytes());
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Reports a `bantime.formula` that cannot be used (fail2ban would fail
/// on it later, when banning, and keep the jail's ban time).
pub fn check_formula(value: &str) {
    if let Err(e) = Expr::parse(value) {
        crate::f2b_log!(
            ERROR,
            "fail2ban.jail",
            "bantime.formula {}: {e}",
            crate::pyvalue::str_repr(value)
        );
    }
}

impl Jail {
    /// The database when `bantime.increment` is on.
    fn increment_db(&self) -> Option<std::rc::Rc<Database>> {
        if self.ban_extra.is_on("increment") {
            self.db.clone()
        } else {
            None
        }
    }

    /// Whether failures are to be observed for `bantime.increment`.
    pub fn observes_failures(&self) -> bool {
        self.increment_db().is_some()
    }

    /// A failure of an address banned before counts more (fail2ban's
    /// `failureFound`); bans it when that reaches `maxretry`.
    pub fn failure_found(&mut self, ticket: Ticket) {
        let Some(db) = self.increment_db() else {
            return;
        };
        let id = ticket.id().clone();
        let now = mytime::now();
        let Some(rec) = db
            .get_ban(&id.to_string(), Some(&self.name), None, false, now)
            .into_iter()
            .next()
        else {
            return;
        };
        let count = rec.count.max(i64::from(ticket.ban_count()));
        let max_retry = self.fails.max_retry();
        let retry = (1i64 << count.clamp(0, 20)) / 2 + 1;
        if ticket.time().as_f64() <= rec.time as f64 {
            crate::f2b_log!(
                DEBUG,
                LOG_OBSERVER,
                "[{}] Ignore failure {} before last ban {} < {}, restored",
                self.name,
                id,
                mytime::num_str(ticket.time().as_f64()),
                rec.time
            );
            return;
        }
        // fail2ban's count is a float, unless maxretry is smaller
        let (retry, shown) = if retry <= max_retry {
            (retry, format!("{retry}.0"))
        } else {
            (max_retry, max_retry.to_string())
        };
        if retry <= 1 {
            return;
        }
        crate::f2b_log!(
            INFO,
            LOG_OBSERVER,
            "[{}] Found {}, bad - {}, {} # -> {}{}",
            self.name,
            id,
            mytime::format_local(ticket.time().as_f64(), "%Y-%m-%d %H:%M:%S"),
            count,
            shown,
            if retry >= max_retry { ", Ban" } else { "" }
        );
        let attempts = self.fails.add_failure(ticket, retry - 1);
        if attempts >= max_retry {
            self.perform_ban(Some(&id));
        }
    }

    /// Lengthens the ban time of a new ticket of an address banned before
    /// (fail2ban's `incrBanTime`); `None` when not applied.
    pub fn increase_ban_time(&self, ticket: &mut Ticket) -> Option<Increase> {
        let db = self.increment_db()?;
        let jail_ban_time = self.bans.ban_time();
        // fail2ban lengthens new bans only (its observer sees no other)
        if ticket.restored
            || ticket.ban_time().is_some()
            || jail_ban_time <= 0
            || self.bans.contains(ticket.id())
        {
            return None;
        }
        let overall = self.ban_extra.is_on("overalljails");
        let now = mytime::now();
        let id = ticket.id().to_string();
        let previous = db
            .get_ban(&id, Some(&self.name), None, overall, now)
            .into_iter()
            .next()?;
        // the ban manager adds one when banning
        if previous.count > i64::from(ticket.ban_count()) {
            ticket.set_ban_count(previous.count.clamp(0, i64::from(u32::MAX)) as u32);
        }
        let ban_time = if previous.count > 0 {
            increased(&self.ban_extra, jail_ban_time, previous.count).unwrap_or_else(|e| {
                crate::f2b_log!(ERROR, LOG_OBSERVER, "{e}");
                jail_ban_time
            })
        } else {
            jail_ban_time
        };
        ticket.set_ban_time(Some(ban_time));
        Some(Increase {
            stored: ticket.time().as_f64() <= previous.time as f64,
            previous,
        })
    }

    /// Logs a ban made longer (after its `Ban` line, as fail2ban's
    /// observer does).
    pub fn log_increase(&self, ticket: &Ticket, inc: &Increase) {
        let jail_ban_time = self.bans.ban_time();
        let Some(bt) = ticket.ban_time() else { return };
        if !inc.stored {
            crate::f2b_log!(
                INFO,
                LOG_OBSERVER,
                "[{}] IP {} is bad: {} # last {} - incr {} to {}",
                self.name,
                ticket.id(),
                inc.previous.count,
                mytime::format_local(inc.previous.time as f64, "%Y-%m-%d %H:%M:%S"),
                mytime::seconds2str(jail_ban_time as f64),
                mytime::seconds2str(bt as f64)
            );
        }
        if bt == jail_ban_time {
            return;
        }
        let (len, end) = if bt == -1 {
            ("permanent".to_string(), "infinite".to_string())
        } else {
            (
                mytime::seconds2str(bt as f64),
                mytime::format_local(ticket.time().as_f64() + bt as f64, "%Y-%m-%d %H:%M:%S"),
            )
        };
        crate::f2b_log!(
            NOTICE,
            LOG_OBSERVER,
            "[{}] Increase Ban {} ({} # {} -> {})",
            self.name,
            ticket.id(),
            ticket.ban_count(),
            len,
            end
        );
    }
}

/// A ban time lengthened from an address's previous ban.
pub struct Increase {
    /// The ticket is not newer than the previous ban: it was stored
    /// already (a log read again), and is not stored twice.
    pub stored: bool,
    pub previous: crate::database::BanRecord,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::Timestamp;
    use crate::ipaddr::{CIDR_UNSPEC, IpAddr};
    use std::rc::Rc;

    fn ip(s: &str) -> IpAddr {
        IpAddr::new(s, CIDR_UNSPEC).unwrap()
    }

    /// A started jail (no actions) on an in-memory database, ban time
    /// 600, maxretry 3, `bantime.increment` on.
    fn jail() -> (Jail, Rc<Database>) {
        let db = Rc::new(Database::open(":memory:").unwrap());
        db.add_jail("j");
        let mut j = Jail::new("j", "polling");
        j.db = Some(db.clone());
        j.bans.set_ban_time(600);
        j.fails.set_max_retry(3);
        j.ignore.ignore_self = false;
        j.ban_extra
            .values
            .insert("increment".into(), PyValue::Bool(true));
        j.started = true;
        j.actions.start();
        (j, db)
    }

    fn failure(addr: &str, t: f64) -> Ticket {
        Ticket::failure(ip(addr), Timestamp::Float(t), vec![], Default::default())
    }

    /// A failure as the jail's line processing counts it.
    fn fail(j: &mut Jail, addr: &str, t: f64) {
        let tk = failure(addr, t);
        let attempts = j.fails.add_failure(tk.clone(), 1);
        if attempts >= j.fails.max_retry() {
            j.perform_ban(Some(&ip(addr)));
        } else {
            j.failure_found(tk);
        }
    }

    #[test]
    fn a_returning_address_is_banned_longer_and_sooner() {
        let (mut j, db) = jail();
        let now = mytime::now();
        assert!(j.ban_ticket(Ticket::manual(
            ip("192.0.2.1"),
            Timestamp::Float(now - 500.0)
        )));
        let rec = db.get_ban("192.0.2.1", Some("j"), None, false, now);
        assert_eq!((rec[0].count, rec[0].ban_time), (1, 600));
        j.check_unbans(now + 200.0);
        assert_eq!(j.bans.size(), 0);
        // a failure of a known address counts 2: the second one bans
        fail(&mut j, "192.0.2.1", now - 10.0);
        assert_eq!(j.check_bans(), 0);
        fail(&mut j, "192.0.2.1", now - 5.0);
        assert_eq!(j.check_bans(), 1);
        let t = j.bans.get(&ip("192.0.2.1")).unwrap();
        assert_eq!(t.ban_time(), Some(1200));
        assert_eq!(t.ban_count(), 2);
        let rec = db.get_ban("192.0.2.1", Some("j"), None, false, now);
        assert_eq!((rec[0].count, rec[0].ban_time), (2, 1200));
        // failures older than the last ban count once only
        j.check_unbans(now + 2000.0);
        fail(&mut j, "192.0.2.1", now - 100.0);
        fail(&mut j, "192.0.2.1", now - 100.0);
        assert_eq!(j.check_bans(), 0);
        // an unknown address needs maxretry failures
        fail(&mut j, "192.0.2.9", now - 3.0);
        fail(&mut j, "192.0.2.9", now - 2.0);
        assert_eq!(j.check_bans(), 0);
    }

    #[test]
    fn restore_keeps_the_increased_ban_time_up_to_maxtime() {
        let (mut j, db) = jail();
        let now = mytime::now();
        let mut t = Ticket::manual(ip("192.0.2.2"), Timestamp::Float(now - 900.0));
        t.set_ban_time(Some(4800));
        t.set_ban_count(3);
        db.add_ban("j", &t, 600);
        j.restore_bans();
        assert_eq!(j.check_bans(), 1);
        let r = j.bans.get(&ip("192.0.2.2")).unwrap();
        assert!(r.restored);
        assert_eq!(r.ban_time(), Some(4800));
        // with a maximum below it, cut to the maximum
        let (mut k, _) = jail();
        k.db = Some(db.clone());
        k.ban_extra
            .values
            .insert("maxtime".into(), PyValue::Int(1000));
        k.restore_bans();
        assert_eq!(k.check_bans(), 1);
        assert_eq!(k.bans.get(&ip("192.0.2.2")).unwrap().ban_time(), Some(1000));
        // without increment, the jail's ban time decides: over by now
        let (mut l, _) = jail();
        l.db = Some(db);
        l.ban_extra.values.shift_remove("increment");
        l.restore_bans();
        assert_eq!(l.check_bans(), 0);
    }

    fn extra(pairs: &[(&str, PyValue)]) -> BanTimeExtra {
        let mut e = BanTimeExtra::default();
        for (k, v) in pairs {
            e.values.insert(k.to_string(), v.clone());
        }
        e
    }

    #[test]
    fn default_formula_doubles_up_to_maxtime() {
        let e = extra(&[]);
        assert_eq!(increased(&e, 600, 1), Ok(1200));
        assert_eq!(increased(&e, 600, 3), Ok(4800));
        assert_eq!(increased(&e, 600, 25), Ok(600 << 20));
        let f = extra(&[
            ("factor", PyValue::str("2")),
            ("maxtime", PyValue::Int(5000)),
        ]);
        assert_eq!(increased(&f, 600, 1), Ok(2400));
        assert_eq!(increased(&f, 600, 3), Ok(5000));
    }

    #[test]
    fn multipliers_index_by_count() {
        let e = extra(&[("multipliers", PyValue::str("1 5 30 60"))]);
        assert_eq!(increased(&e, 60, 1), Ok(300));
        assert_eq!(increased(&e, 60, 2), Ok(1800));
        assert_eq!(increased(&e, 60, 9), Ok(3600));
    }

    #[test]
    fn rndtime_adds_at_most_its_value() {
        let e = extra(&[("rndtime", PyValue::Int(100))]);
        for _ in 0..20 {
            let v = increased(&e, 600, 1).unwrap();
            assert!((1200..1300).contains(&v), "{v}");
        }
    }

    #[test]
    fn formula_is_pythons_default() {
        let py = "/usr/bin/python3";
        if !std::path::Path::new(py).exists() {
            eprintln!("SKIP: {py} is missing; default formula not compared");
            return;
        }
        let out = std::process::Command::new(py)
            .arg("-c")
            .arg(
                "from fail2ban.server.jail import Jail\n\
                 j = Jail('t', backend='polling')\n\
                 j.setBanTimeExtra('factor', '1.5')\n\
                 j.setBanTimeExtra('maxtime', '1d')\n\
                 class B: pass\n\
                 for c in range(0, 8):\n\
                 \x20   b = B(); b.Time = 600; b.Count = c\n\
                 \x20   print(int(j.getBanTimeExtra('evformula')(b)))\n",
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let e = extra(&[
            ("factor", PyValue::str("1.5")),
            ("maxtime", PyValue::Int(86400)),
        ]);
        let ours: Vec<String> = (0..8)
            .map(|c| increased(&e, 600, c).unwrap().to_string())
            .collect();
        let theirs: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(ours, theirs);
    }
}
