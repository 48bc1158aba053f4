//! The server's use of its database (fail2ban's `Server.setDatabase`, the
//! filter's log-position bookkeeping and the observer's hourly purge).
//!
//! `set dbfile` opens the file (or none, for `None`) while no jail exists;
//! every jail added then shares it.  A followed log resumes at its stored
//! position when its first line is still the same; positions read since
//! are written back at most every 10 seconds (as fail2ban's filter does
//! after reading), and always when the jail stops.  Old entries are purged
//! every hour.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::database::Database;
use crate::logwatch::{Added, Position};
use crate::pyvalue::PyValue;
use crate::server::Server;
use crate::server::transmitter::CmdError;

/// Interval of the purge of old entries (fail2ban's observer: one hour).
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);
/// Least interval between two writes of the log positions (fail2ban's
/// five sleep times of 2 s).
const POSITIONS_EVERY: Duration = Duration::from_secs(10);

/// When the database was last written to, and what it holds of the logs.
pub(super) struct DbState {
    next_purge: Instant,
    next_positions: Instant,
    /// Positions read but not written yet.
    pending: bool,
    /// The positions last written, per jail and path.
    written: HashMap<(String, String), Position>,
}

impl DbState {
    pub(super) fn new() -> DbState {
        let now = Instant::now();
        DbState {
            next_purge: now + PURGE_EVERY,
            next_positions: now,
            pending: false,
            written: HashMap::new(),
        }
    }
}

impl Server {
    /// `set dbfile <file>`: opens the database (`None`: no database),
    /// then marks the jails it knows disabled until they are added again.
    pub(crate) fn set_database(&mut self, filename: &str) -> Result<(), CmdError> {
        if self.db.as_ref().is_some_and(|d| d.filename() == filename) {
            return Ok(());
        }
        let none = filename.eq_ignore_ascii_case("none");
        if self.db.is_none() && none {
            return Ok(());
        }
        if !self.jails.is_empty() {
            return Err(CmdError::new(
                "RuntimeError",
                "Cannot change database when there are jails present",
            ));
        }
        if none {
            self.db = None;
            return Ok(());
        }
        super::process::make_file_path(filename).map_err(|e| {
            let dir = std::path::Path::new(filename)
                .parent()
                .map_or(String::new(), |p| p.to_string_lossy().into_owned());
            let class = match e.kind() {
                std::io::ErrorKind::NotFound => "FileNotFoundError",
                std::io::ErrorKind::PermissionDenied => "PermissionError",
                _ => "OSError",
            };
            match e.raw_os_error() {
                // Python's OSError(errno, strerror, filename)
                Some(n) => {
                    let text = super::process::os_error(&e, "");
                    let strerror = text
                        .strip_prefix(&format!("[Errno {n}] "))
                        .and_then(|t| t.strip_suffix(": ''"))
                        .unwrap_or(&text)
                        .to_string();
                    CmdError {
                        class,
                        args: vec![
                            PyValue::Int(i64::from(n)),
                            PyValue::Str(strerror),
                            PyValue::Str(dir),
                        ],
                    }
                }
                None => CmdError::new(class, e.to_string()),
            }
        })?;
        let db = Database::open(filename).map_err(|e| CmdError::new("OperationalError", e))?;
        db.del_all_jails();
        self.db = Some(Rc::new(db));
        self.db_state = DbState::new();
        Ok(())
    }

    /// A new jail gets the database and is recorded in it.
    pub(super) fn db_add_jail(&mut self, name: &str) {
        if let (Some(db), Some(j)) = (&self.db, self.jails.get_mut(name)) {
            db.add_jail(name);
            j.db = Some(db.clone());
        }
    }

    /// The position to resume a log at, as stored for the jail.
    pub(super) fn db_resume(&self, jail: &str, path: &str) -> Option<Position> {
        let (hash, pos) = self.db.as_ref()?.log_position(jail, path)?;
        Some(Position {
            hash: hash?,
            pos: pos.max(0) as u64,
        })
    }

    /// Records the files a jail started following (fail2ban's `addLog`);
    /// a file matched by a pattern resumes here at its stored position.
    pub(super) fn db_logs_added(&mut self, jail: &str, pattern: &str, added: &[Added], tail: bool) {
        let Some(db) = self.db.clone() else { return };
        let key = jail.to_string();
        for a in added {
            let resume = db.add_log(jail, &a.path, a.pos, &a.hash);
            if let Some(pos) = resume
                && a.path != pattern
                && !tail
                && pos > 0
            {
                self.watch.set_position(&key, &a.path, pos);
            }
        }
    }

    /// Writes the positions of the logs read since the last write: all
    /// jails when due (`force`: now), or one jail about to stop.
    pub(super) fn db_store_positions(&mut self, only: Option<&str>, force: bool) {
        let Some(db) = self.db.clone() else { return };
        let now = Instant::now();
        let names: Vec<String> = match only {
            Some(n) => vec![n.to_string()],
            None => self.jails.keys().cloned().collect(),
        };
        let mut changed = Vec::new();
        for name in names {
            for path in self.watch.paths(&name) {
                let Some(p) = self.watch.position(&name, &path) else {
                    continue;
                };
                let key = (name.clone(), path);
                if self.db_state.written.get(&key) != Some(&p) {
                    changed.push((key, p));
                }
            }
        }
        if changed.is_empty() {
            if only.is_none() {
                self.db_state.pending = false;
            }
            return;
        }
        if !force && now < self.db_state.next_positions {
            self.db_state.pending = true;
            return;
        }
        for ((jail, path), p) in changed {
            db.update_log(&jail, &path, p.pos, &p.hash);
            self.db_state.written.insert((jail, path), p);
        }
        if only.is_none() {
            self.db_state.pending = false;
            self.db_state.next_positions = now + POSITIONS_EVERY;
        }
    }

    /// The periodic work: positions when due, the hourly purge.
    pub(super) fn db_tick(&mut self) {
        if self.db.is_none() {
            return;
        }
        self.db_store_positions(None, false);
        let now = Instant::now();
        if now >= self.db_state.next_purge {
            self.db_state.next_purge = now + PURGE_EVERY;
            crate::f2b_log!(DEBUG, "fail2ban.observer", "Purge database event occurred");
            if let Some(db) = &self.db {
                db.purge();
            }
        }
    }

    /// When the loop must wake up for the database.
    pub(super) fn db_deadline(&self) -> Option<Instant> {
        self.db.as_ref()?;
        let s = &self.db_state;
        Some(if s.pending {
            s.next_positions.min(s.next_purge)
        } else {
            s.next_purge
        })
    }

    /// Closes the database at exit.
    pub(super) fn db_close(&mut self) {
        if let Some(db) = self.db.take() {
            crate::f2b_log!(
                DEBUG,
                "fail2ban.database",
                "Close connection to database ..."
            );
            drop(db);
            crate::f2b_log!(INFO, "fail2ban.database", "Connection to database closed.");
        }
    }
}
