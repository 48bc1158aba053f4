//! fail2ban's persistent database: an SQLite file (or `:memory:`) that
//! keeps the jails, the read position of each log, every ban (`bans`) and
//! the last ban of each address per jail (`bips`), so that a restarted
//! server restores its current bans, resumes its logs where it stopped,
//! and can lengthen the ban of a returning address (`bantime.increment`).
//!
//! The file is the one fail2ban 1.0.2 reads and writes: same schema
//! (version 4, see [`schema`]), same pragmas, same queries, the ban data
//! as the JSON text Python stores (see [`json`]).  A database written by
//! either program is read by the other.
//!
//! One [`Database`] is shared by the server and its jails (the server is
//! single-threaded: methods take `&self`, the settings are cells).
//! Failures of SQLite are logged (`fail2ban.database`) and the operation
//! is dropped, as fail2ban's callers log and go on.

pub mod json;
pub mod schema;

use std::cell::Cell;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params};

use crate::actions::{Merged, Num};
use crate::failures::Ticket;
use crate::ipaddr::{CIDR_UNSPEC, IpAddr};

pub(crate) const LOG_DB: &str = "fail2ban.database";

/// How much worse than its ban time an address must be out of date before
/// `purge` forgets its last ban (fail2ban's `outDatedFactor`).
const OUT_DATED_FACTOR: i64 = 3;

/// An open fail2ban database.
pub struct Database {
    conn: Connection,
    filename: String,
    purge_age: Cell<Num>,
    max_matches: Cell<i64>,
}

/// One address's ban record from `bips` (fail2ban's `getBan` rows):
/// ban count, time of the last ban, its ban time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanRecord {
    pub count: i64,
    pub time: i64,
    pub ban_time: i64,
}

/// What a jail restores at start (fail2ban's `getCurrentBans` arguments).
#[derive(Debug, Clone)]
pub struct RestoreQuery<'a> {
    pub jail: &'a str,
    /// The jail's ban time: used for bans stored by versions before 3
    /// (ban time -2).
    pub jail_ban_time: i64,
    /// Longer (or permanent) stored ban times are cut to this one; `None`:
    /// kept as stored.
    pub max_ban_time: Option<i64>,
    /// Only bans younger than this (`None`: any age).
    pub for_ban_time: Option<i64>,
    /// Matches kept per ticket (the jail's `maxmatches`).
    pub max_matches: i64,
    pub now: f64,
}

/// An `INTEGER` column that may hold a float (fail2ban stores
/// `bantime.rndtime` ban times as floats).
fn int_of(v: SqlValue) -> Option<i64> {
    match v {
        SqlValue::Integer(i) => Some(i),
        SqlValue::Real(f) => Some(f as i64),
        SqlValue::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// The bytes of a `data` column (stored as a BLOB by Python, text by
/// older versions).
fn bytes_of(v: SqlValue) -> Vec<u8> {
    match v {
        SqlValue::Blob(b) => b,
        SqlValue::Text(t) => t.into_bytes(),
        _ => b"{}".to_vec(),
    }
}

impl Database {
    /// Opens or creates the database (`set dbfile <filename>`), upgrading
    /// an older schema; `Err` with SQLite's message when it cannot.
    pub fn open(filename: &str) -> Result<Database, String> {
        let conn = schema::connect(filename)?;
        Ok(Database {
            conn,
            filename: filename.to_string(),
            purge_age: Cell::new(Num::Int(24 * 60 * 60)),
            max_matches: Cell::new(10),
        })
    }

    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// Age (seconds) after which `purge` drops bans (an int or a float,
    /// as `dbpurgeage` was given).
    pub fn purge_age(&self) -> Num {
        self.purge_age.get()
    }

    pub fn set_purge_age(&self, seconds: Num) {
        self.purge_age.set(seconds);
    }

    /// Matches stored per ban (`dbmaxmatches`).
    pub fn max_matches(&self) -> i64 {
        self.max_matches.get()
    }

    pub fn set_max_matches(&self, n: i64) {
        self.max_matches.set(n);
    }

    fn report(&self, what: &str, e: rusqlite::Error) {
        crate::f2b_log!(
            ERROR,
            LOG_DB,
            "{what} failed: {}",
            schema::sqlite_message(&e)
        );
    }

    fn run(&self, what: &str, f: impl FnOnce(&Connection) -> rusqlite::Result<()>) {
        let r = self.conn.unchecked_transaction().and_then(|tx| {
            f(&tx)?;
            tx.commit()
        });
        if let Err(e) = r {
            self.report(what, e);
        }
    }

    /// Adds (or re-enables) a jail.
    pub fn add_jail(&self, name: &str) {
        self.run("add jail", |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO jails(name, enabled) VALUES(?, 1)",
                [name],
            )?;
            if n == 0 {
                c.execute(
                    "UPDATE jails SET enabled = 1 WHERE name = ? AND enabled != 1",
                    [name],
                )?;
            }
            Ok(())
        });
    }

    /// Marks a jail disabled (it stays while it has bans).
    pub fn del_jail(&self, name: &str) {
        self.run("del jail", |c| {
            c.execute("UPDATE jails SET enabled=0 WHERE name=?", [name])
                .map(drop)
        });
    }

    /// Marks every jail disabled (done when the database is set).
    pub fn del_all_jails(&self) {
        self.run("del all jails", |c| {
            c.execute("UPDATE jails SET enabled=0", []).map(drop)
        });
    }

    /// The jails stored, all or only the enabled or disabled ones.
    pub fn jail_names(&self, enabled: Option<bool>) -> Vec<String> {
        let r = (|| {
            let mut st = match enabled {
                None => self.conn.prepare("SELECT name FROM jails")?,
                Some(e) => self.conn.prepare(&format!(
                    "SELECT name FROM jails WHERE enabled={}",
                    i64::from(e)
                ))?,
            };
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })();
        r.unwrap_or_else(|e| {
            self.report("get jail names", e);
            Vec::new()
        })
    }

    /// The stored first-line hash and position of a log of a jail.
    pub fn log_position(&self, jail: &str, path: &str) -> Option<(Option<String>, i64)> {
        let r = self.conn.query_row(
            "SELECT firstlinemd5, lastfilepos FROM logs WHERE jail=? AND path=?",
            [jail, path],
            |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, SqlValue>(1)?)),
        );
        match r {
            Ok((hash, pos)) => Some((hash, int_of(pos).unwrap_or(0))),
            Err(rusqlite::Error::QueryReturnedNoRows) => None,
            Err(e) => {
                self.report("get log", e);
                None
            }
        }
    }

    /// A log followed by a jail (fail2ban's `addLog`): stored with the
    /// file's current `pos` and `hash` when not known yet; returns the
    /// stored position when the stored hash is `hash` (where to resume).
    pub fn add_log(&self, jail: &str, path: &str, pos: u64, hash: &str) -> Option<u64> {
        let stored = self.log_position(jail, path);
        let known_hash = stored.as_ref().and_then(|(h, _)| h.clone());
        if known_hash.is_none() {
            self.run("add log", |c| {
                c.execute(
                    "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?, ?, ?, ?)",
                    params![jail, path, hash, pos as i64],
                )
                .map(drop)
            });
        }
        match stored {
            Some((Some(h), p)) if h == hash => Some(p.max(0) as u64),
            _ => None,
        }
    }

    /// Stores the current hash and position of a log (fail2ban's
    /// `updateLog`).
    pub fn update_log(&self, jail: &str, path: &str, pos: u64, hash: &str) {
        self.run("update log", |c| {
            let n = c.execute(
                "UPDATE logs SET firstlinemd5=?, lastfilepos=? WHERE jail=? AND path=?",
                params![hash, pos as i64, jail, path],
            )?;
            if n == 0 {
                c.execute(
                    "INSERT OR REPLACE INTO logs(jail, path, firstlinemd5, lastfilepos) VALUES(?, ?, ?, ?)",
                    params![jail, path, hash, pos as i64],
                )?;
            }
            Ok(())
        });
    }

    /// The log paths stored, for one jail or all.
    pub fn log_paths(&self, jail: Option<&str>) -> Vec<String> {
        let r = (|| {
            let (sql, args): (&str, Vec<&str>) = match jail {
                Some(j) => ("SELECT path FROM logs WHERE jail=?", vec![j]),
                None => ("SELECT path FROM logs", vec![]),
            };
            let mut st = self.conn.prepare(sql)?;
            st.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })();
        r.unwrap_or_else(|e| {
            self.report("get log paths", e);
            Vec::new()
        })
    }

    /// Stores a ban (fail2ban's `addBan`): a row in `bans`, and the
    /// address's last ban in `bips`.  `jail_ban_time` is used when the
    /// ticket has no ban time of its own.
    pub fn add_ban(&self, jail: &str, ticket: &Ticket, jail_ban_time: i64) {
        let ip = ticket.id().to_string();
        let data = json::dumps(&json::ticket_data(ticket, self.max_matches()));
        let time = ticket.time().as_f64().round_ties_even() as i64;
        let ban_time = ticket.ban_time().unwrap_or(jail_ban_time);
        let count = i64::from(ticket.ban_count());
        self.run("add ban", |c| {
            c.execute(
                "INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES(?, ?, ?, ?, ?, ?)",
                params![jail, ip, time, ban_time, count, data.as_bytes()],
            )?;
            c.execute(
                "INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES(?, ?, ?, ?, ?, ?)",
                params![ip, jail, time, ban_time, count, data.as_bytes()],
            )?;
            Ok(())
        });
    }

    /// Forgets the bans of `ip` in a jail, or all the jail's bans.
    pub fn del_ban(&self, jail: &str, ip: Option<&str>) {
        self.run("del ban", |c| {
            match ip {
                None => {
                    c.execute("DELETE FROM bips WHERE jail = ?", [jail])?;
                    c.execute("DELETE FROM bans WHERE jail = ?", [jail])?;
                }
                Some(ip) => {
                    c.execute("DELETE FROM bips WHERE jail = ? AND ip = ?", [jail, ip])?;
                    c.execute("DELETE FROM bans WHERE jail = ? AND ip = ?", [jail, ip])?;
                }
            }
            Ok(())
        });
    }

    /// All stored bans of `ip` (in one jail or all) merged (fail2ban's
    /// `getBansMerged(ip=...)`): the newest `dbmaxmatches` matches in
    /// order, and the sum of their failures.  `None` when never banned.
    pub fn bans_merged(&self, ip: &str, jail: Option<&str>) -> Option<Merged> {
        let mut sql = "SELECT data FROM bans WHERE ip=?".to_string();
        let mut args = vec![ip];
        if let Some(j) = jail {
            sql.push_str(" AND jail=?");
            args.push(j);
        }
        sql.push_str(" ORDER BY ip, timeofban desc");
        let rows = (|| {
            let mut st = self.conn.prepare(&sql)?;
            st.query_map(rusqlite::params_from_iter(args), |r| {
                r.get::<_, SqlValue>(0)
            })?
            .collect::<rusqlite::Result<Vec<SqlValue>>>()
        })();
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                self.report("get bans", e);
                return None;
            }
        };
        if rows.is_empty() {
            return None;
        }
        let max = self.max_matches().max(0) as usize;
        let mut matches: Vec<String> = Vec::new();
        let mut failures = 0;
        for data in rows {
            let d = json::loads(&bytes_of(data));
            let m = json::matches_of(&d);
            let room = max.saturating_sub(matches.len());
            if room > 0 {
                let skip = m.len().saturating_sub(room);
                let mut head = m[skip..].to_vec();
                head.append(&mut matches);
                matches = head;
            }
            failures += json::failures_of(&d, 1);
        }
        Some(Merged { matches, failures })
    }

    /// The bans of a jail still in effect at `q.now` (fail2ban's
    /// `getCurrentBans`), as tickets with their ban time and count.
    pub fn current_bans(&self, q: &RestoreQuery) -> Vec<Ticket> {
        let mut sql = "SELECT ip, timeofban, bantime, bancount, data FROM bips WHERE jail=? \
                       AND (timeofban + bantime > ? OR bantime <= -1)"
            .to_string();
        let mut args: Vec<SqlValue> =
            vec![SqlValue::Text(q.jail.to_string()), SqlValue::Real(q.now)];
        if let Some(f) = q.for_ban_time
            && f != -1
        {
            sql.push_str(" AND timeofban > ?");
            args.push(SqlValue::Real(q.now - f as f64));
        }
        sql.push_str(" GROUP BY ip ORDER BY ip, timeofban DESC");
        type Row = (String, SqlValue, SqlValue, SqlValue, SqlValue);
        let rows = (|| {
            let mut st = self.conn.prepare(&sql)?;
            st.query_map(rusqlite::params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<Vec<Row>>>()
        })();
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                self.report("get current bans", e);
                return Vec::new();
            }
        };
        let correct = q.max_ban_time.filter(|m| *m != -1);
        let mut out = Vec::new();
        for (ip, time, ban_time, count, data) in rows {
            let (Some(time), Some(mut ban_time)) = (int_of(time), int_of(ban_time)) else {
                continue;
            };
            if ip.is_empty() {
                continue;
            }
            if ban_time == -2 {
                ban_time = q.jail_ban_time;
            } else if let Some(c) = correct
                && c >= 0
                && (ban_time == -1 || ban_time > c)
            {
                ban_time = c;
            }
            if ban_time != -1 && (time + ban_time) as f64 <= q.now {
                continue;
            }
            let Ok(id) = IpAddr::new(&ip, CIDR_UNSPEC) else {
                continue;
            };
            let data = json::loads(&bytes_of(data));
            let mut t = json::restored_ticket(id, time, &data, q.max_matches);
            t.set_ban_time(Some(ban_time));
            t.set_ban_count(int_of(count).unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32);
            out.push(t);
        }
        out
    }

    /// The ban record of `ip` (fail2ban's `getBan`): in `jail`, or summed
    /// over all jails (`overall`), only bans younger than `for_ban_time`.
    pub fn get_ban(
        &self,
        ip: &str,
        jail: Option<&str>,
        for_ban_time: Option<i64>,
        overall: bool,
        now: f64,
    ) -> Vec<BanRecord> {
        let mut sql = if overall {
            "SELECT sum(bancount), max(timeofban), sum(bantime) FROM bips"
        } else {
            "SELECT bancount, timeofban, bantime FROM bips"
        }
        .to_string();
        sql.push_str(" WHERE ip = ?");
        let mut args: Vec<SqlValue> = vec![SqlValue::Text(ip.to_string())];
        if let Some(j) = jail
            && !overall
        {
            sql.push_str(" AND jail=?");
            args.push(SqlValue::Text(j.to_string()));
        }
        if let Some(f) = for_ban_time {
            sql.push_str(" AND timeofban > ?");
            args.push(SqlValue::Real(now - f as f64));
        }
        if overall || jail.is_none() {
            sql.push_str(" GROUP BY ip ORDER BY timeofban DESC LIMIT 1");
        }
        let rows = (|| {
            let mut st = self.conn.prepare(&sql)?;
            st.query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, SqlValue>(0)?,
                    r.get::<_, SqlValue>(1)?,
                    r.get::<_, SqlValue>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })();
        match rows {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|(c, t, b)| {
                    Some(BanRecord {
                        count: int_of(c)?,
                        time: int_of(t)?,
                        ban_time: int_of(b)?,
                    })
                })
                .collect(),
            Err(e) => {
                self.report("get ban", e);
                Vec::new()
            }
        }
    }

    /// Drops bans older than the purge age, addresses whose last ban is
    /// long over, and disabled jails left without bans (with their logs).
    pub fn purge(&self) {
        let now = crate::mytime::now();
        let age = self.purge_age().as_f64();
        let limit = (now as i64) as f64 - age;
        self.run("purge", |c| {
            c.execute(
                "DELETE FROM bans WHERE timeofban < ?",
                params![now - age],
            )?;
            c.execute(
                "DELETE FROM bips WHERE timeofban < ? and bantime != -1 and (timeofban + (bantime * ?)) < ?",
                params![limit, OUT_DATED_FACTOR, limit],
            )?;
            c.execute(
                "DELETE FROM jails WHERE enabled = 0 \
                 AND NOT EXISTS(SELECT * FROM bans WHERE jail = jails.name) \
                 AND NOT EXISTS(SELECT * FROM bips WHERE jail = jails.name)",
                [],
            )?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests;
