//! The database file itself: the tables and indexes of fail2ban's schema
//! version 4 (created with the very statements fail2ban 1.0.2 runs, so
//! that `sqlite_master` holds the same text and either program opens the
//! other's file), the connection pragmas, the upgrade of older versions,
//! and the repair of a file SQLite cannot read.
//!
//! A file SQLite cannot read is repaired as fail2ban does: moved aside
//! (the backup name), dumped with the `sqlite3` command-line tool into a
//! new file, which is checked; when nothing could be dumped (or the tool
//! is missing) an empty database is created in its place.

use std::path::Path;

use rusqlite::Connection;

use super::LOG_DB;

/// The schema version written (fail2ban 1.0.2's `Fail2BanDb.__version__`).
pub const VERSION: i64 = 4;

const CREATE_VERSION: &str = "CREATE TABLE IF NOT EXISTS fail2banDb(version INTEGER);";

const CREATE_JAILS: &str = "CREATE TABLE IF NOT EXISTS jails(\
name TEXT NOT NULL UNIQUE, \
enabled INTEGER NOT NULL DEFAULT 1\
);\
CREATE INDEX IF NOT EXISTS jails_name ON jails(name);";

const CREATE_LOGS: &str = "CREATE TABLE IF NOT EXISTS logs(\
jail TEXT NOT NULL, \
path TEXT, \
firstlinemd5 TEXT, \
lastfilepos INTEGER DEFAULT 0, \
FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, \
UNIQUE(jail, path),\
UNIQUE(jail, path, firstlinemd5)\
);\
CREATE INDEX IF NOT EXISTS logs_path ON logs(path);\
CREATE INDEX IF NOT EXISTS logs_jail_path ON logs(jail, path);";

const CREATE_BANS: &str = "CREATE TABLE IF NOT EXISTS bans(\
jail TEXT NOT NULL, \
ip TEXT, \
timeofban INTEGER NOT NULL, \
bantime INTEGER NOT NULL, \
bancount INTEGER NOT NULL default 1, \
data JSON, \
FOREIGN KEY(jail) REFERENCES jails(name) \
);\
CREATE INDEX IF NOT EXISTS bans_jail_timeofban_ip ON bans(jail, timeofban);\
CREATE INDEX IF NOT EXISTS bans_jail_ip ON bans(jail, ip);\
CREATE INDEX IF NOT EXISTS bans_ip ON bans(ip);";

const CREATE_BIPS: &str = "CREATE TABLE IF NOT EXISTS bips(\
ip TEXT NOT NULL, \
jail TEXT NOT NULL, \
timeofban INTEGER NOT NULL, \
bantime INTEGER NOT NULL, \
bancount INTEGER NOT NULL default 1, \
data JSON, \
PRIMARY KEY(ip, jail), \
FOREIGN KEY(jail) REFERENCES jails(name) \
);\
CREATE INDEX IF NOT EXISTS bips_timeofban ON bips(timeofban);\
CREATE INDEX IF NOT EXISTS bips_ip ON bips(ip);";

/// Every table's script, in creation order.
const CREATE_ALL: [&str; 5] = [
    CREATE_VERSION,
    CREATE_JAILS,
    CREATE_LOGS,
    CREATE_BANS,
    CREATE_BIPS,
];

/// Opens (creating when missing) the database at `filename` and brings it
/// to [`VERSION`]; logs as fail2ban does.  `Err` carries the text of the
/// error fail2ban's `set dbfile` would answer.
pub fn connect(filename: &str) -> Result<Connection, String> {
    let conn = match Connection::open(filename) {
        Ok(c) => c,
        Err(e) => {
            // rusqlite appends the path, Python's sqlite3 does not
            let msg = sqlite_message(&e);
            let msg = msg
                .strip_suffix(&format!(": {filename}"))
                .map_or(msg.clone(), str::to_string);
            crate::f2b_log!(
                ERROR,
                LOG_DB,
                "Error connecting to fail2ban persistent database '{filename}': {msg}"
            );
            return Err(msg);
        }
    };
    crate::f2b_log!(
        INFO,
        LOG_DB,
        "Connected to fail2ban persistent database '{filename}'"
    );
    match prepare(&conn) {
        Ok(Some(version)) if version == VERSION => Ok(conn),
        Ok(Some(version)) => {
            let reached = upgrade(&conn, filename, version)?;
            if reached != VERSION {
                crate::f2b_log!(
                    ERROR,
                    LOG_DB,
                    "Database update failed to achieve version '{VERSION}': updated from '{version}' to '{reached}'"
                );
                return Err("Failed to fully update".to_string());
            }
            crate::f2b_log!(
                WARNING,
                LOG_DB,
                "Database updated from '{version}' to '{reached}'"
            );
            Ok(conn)
        }
        Ok(None) => {
            let v = create(&conn).map_err(|e| sqlite_message(&e))?;
            crate::f2b_log!(WARNING, LOG_DB, "New database created. Version '{v}'");
            Ok(conn)
        }
        Err(e) => {
            crate::f2b_log!(
                ERROR,
                LOG_DB,
                "Error opening fail2ban persistent database '{filename}': {}",
                sqlite_message(&e)
            );
            if !Path::new(filename).is_file() {
                return Err(sqlite_message(&e));
            }
            drop(conn);
            repair(filename)
        }
    }
}

/// Sets the pragmas and reads the version; `Ok(None)` when the file has
/// no version table yet (a new database).
fn prepare(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = OFF; \
         PRAGMA journal_mode = MEMORY; PRAGMA temp_store = MEMORY;",
    )?;
    match conn.query_row("SELECT version FROM fail2banDb LIMIT 1", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.starts_with("no such table") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Creates what is missing of the schema; returns the version stored.
fn create(conn: &Connection) -> rusqlite::Result<i64> {
    let tx = conn.unchecked_transaction()?;
    for script in CREATE_ALL {
        tx.execute_batch(script)?;
    }
    tx.execute(
        "INSERT INTO fail2banDb(version) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM fail2banDb LIMIT 1)",
        [VERSION],
    )?;
    let v = tx.query_row("SELECT version FROM fail2banDb LIMIT 1", [], |r| r.get(0))?;
    tx.commit()?;
    Ok(v)
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type='table' AND name=?)",
        [table],
        |r| r.get(0),
    )
}

/// The name of the backup made before an upgrade or repair: the file
/// name with the UTC time appended (`.YYYYmmdd-HHMMSS`).
pub fn backup_name(filename: &str) -> String {
    let t = crate::mytime::now();
    let stamp = chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y%m%d-%H%M%S").to_string())
        .unwrap_or_default();
    format!("{filename}.{stamp}")
}

/// Brings a database of an older `version` to the current one, after a
/// backup copy of the file; returns the version reached.
fn upgrade(conn: &Connection, filename: &str, version: i64) -> Result<i64, String> {
    if version > VERSION {
        return Err(
            "Attempt to travel to future version of database ...how did you get here??".into(),
        );
    }
    let backup = backup_name(filename);
    crate::f2b_log!(
        INFO,
        LOG_DB,
        "Upgrade database: {backup} from version '{version}'"
    );
    let steps = || -> Result<i64, String> {
        if Path::new(filename).is_file() && !Path::new(&backup).is_file() {
            std::fs::copy(filename, &backup).map_err(|e| e.to_string())?;
            crate::f2b_log!(INFO, LOG_DB, "  Database backup created: {backup}");
        }
        let e = |e: rusqlite::Error| sqlite_message(&e);
        if version < 2 && table_exists(conn, "logs").map_err(e)? {
            conn.execute_batch(&format!(
                "BEGIN TRANSACTION;\
                 CREATE TEMPORARY TABLE logs_temp AS SELECT * FROM logs;\
                 DROP TABLE logs;{CREATE_LOGS};\
                 INSERT INTO logs SELECT * from logs_temp;\
                 DROP TABLE logs_temp;\
                 UPDATE fail2banDb SET version = 2;\
                 COMMIT;"
            ))
            .map_err(e)?;
        }
        if version < 3 && table_exists(conn, "bans").map_err(e)? {
            conn.execute_batch(&format!(
                "BEGIN TRANSACTION;\
                 CREATE TEMPORARY TABLE bans_temp AS SELECT jail, ip, timeofban, -2 as bantime, 1 as bancount, data FROM bans;\
                 DROP TABLE bans;{CREATE_BANS};\n\
                 INSERT INTO bans SELECT * from bans_temp;\
                 DROP TABLE bans_temp;\
                 COMMIT;"
            ))
            .map_err(e)?;
        }
        if version < 4 && !table_exists(conn, "bips").map_err(e)? {
            conn.execute_batch(&format!(
                "BEGIN TRANSACTION;{CREATE_BIPS};\n\
                 UPDATE fail2banDb SET version = 4;\
                 COMMIT;"
            ))
            .map_err(e)?;
            if table_exists(conn, "bans").map_err(e)? {
                conn.execute(
                    "INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) \
                     SELECT ip, jail, timeofban, bantime, bancount, data FROM bans order by timeofban",
                    [],
                )
                .map_err(e)?;
            }
        }
        conn.query_row("SELECT version FROM fail2banDb LIMIT 1", [], |r| r.get(0))
            .map_err(e)
    };
    match steps() {
        Ok(v) => Ok(v),
        Err(msg) => {
            crate::f2b_log!(
                ERROR,
                LOG_DB,
                "Failed to upgrade database '{filename}': {msg}"
            );
            Err(msg)
        }
    }
}

/// Repairs an unreadable database: the file is moved aside, what the
/// `sqlite3` tool can dump of it goes into a new file; when that is empty
/// a new database is created.
fn repair(filename: &str) -> Result<Connection, String> {
    crate::f2b_log!(INFO, LOG_DB, "Trying to repair database {filename}");
    let backup = backup_name(filename);
    let dumped = (|| -> Result<u64, String> {
        if !Path::new(&backup).is_file() {
            std::fs::rename(filename, &backup).map_err(|e| e.to_string())?;
            crate::f2b_log!(INFO, LOG_DB, "  Database backup created: {backup}");
        } else if Path::new(filename).is_file() {
            std::fs::remove_file(filename).map_err(|e| e.to_string())?;
        }
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"f2b_db=$0; f2b_dbbk=$1; sqlite3 "$f2b_dbbk" ".dump" | sqlite3 "$f2b_db" "#)
            .arg(filename)
            .arg(&backup)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let size = std::fs::metadata(filename).map(|m| m.len()).unwrap_or(0);
        if size > 0 {
            crate::f2b_log!(
                INFO,
                LOG_DB,
                "  Repair seems to be successful, restored {size} byte(s)."
            );
            Ok(size)
        } else {
            crate::f2b_log!(
                INFO,
                LOG_DB,
                "  Repair seems to be failed, restored {size} byte(s)."
            );
            Err("Recreate ...".to_string())
        }
    })();
    if let Err(e) = dumped {
        crate::f2b_log!(
            ERROR,
            LOG_DB,
            "  Error repairing of fail2ban database '{filename}': {e}"
        );
        let _ = std::fs::remove_file(filename);
    }
    let conn = Connection::open(filename).map_err(|e| sqlite_message(&e))?;
    crate::f2b_log!(
        INFO,
        LOG_DB,
        "Connected to fail2ban persistent database '{filename}'"
    );
    let fail = |e: rusqlite::Error| {
        let msg = sqlite_message(&e);
        crate::f2b_log!(
            ERROR,
            LOG_DB,
            "Error opening fail2ban persistent database '{filename}': {msg}"
        );
        msg
    };
    if prepare(&conn).map_err(fail)?.is_none() {
        let v = create(&conn).map_err(fail)?;
        crate::f2b_log!(WARNING, LOG_DB, "New database created. Version '{v}'");
    }
    crate::f2b_log!(DEBUG, LOG_DB, "  Create missing tables/indices ...");
    create(&conn).map_err(fail)?;
    crate::f2b_log!(DEBUG, LOG_DB, "  -> ok");
    crate::f2b_log!(DEBUG, LOG_DB, "  Check integrity ...");
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(fail)?;
    for r in rows {
        crate::f2b_log!(DEBUG, LOG_DB, "  -> {r}");
    }
    Ok(conn)
}

/// The message Python's `sqlite3` shows for an error (`e.args[0]`).
pub fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        rusqlite::Error::SqliteFailure(f, None) => f.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "f2b-db-schema-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn objects(conn: &Connection) -> Vec<(String, String)> {
        let mut st = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn new_database_has_version_4_and_all_tables() {
        let conn = connect(":memory:").unwrap();
        let v: i64 = conn
            .query_row("SELECT version FROM fail2banDb", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 4);
        let names: Vec<String> = objects(&conn).into_iter().map(|(n, _)| n).collect();
        for t in [
            "fail2banDb",
            "jails",
            "jails_name",
            "logs",
            "logs_path",
            "logs_jail_path",
            "bans",
            "bans_jail_timeofban_ip",
            "bans_jail_ip",
            "bans_ip",
            "bips",
            "bips_timeofban",
            "bips_ip",
        ] {
            assert!(names.iter().any(|n| n == t), "{t} missing in {names:?}");
        }
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    /// Has Python's fail2ban open (create or upgrade) the database `file`.
    fn python_opens(py: &str, file: &Path) {
        let out = std::process::Command::new(py)
            .arg("-c")
            .arg(format!(
                "from fail2ban.server.database import Fail2BanDb; Fail2BanDb({:?}).close()",
                file.display().to_string()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn schema_text_is_pythons() {
        let py = "/usr/bin/python3";
        if !Path::new(py).exists() {
            eprintln!("SKIP: {py} is missing; schema not compared with fail2ban's");
            return;
        }
        let d = tmp("cmp");
        let theirs = d.join("py.sqlite3");
        python_opens(py, &theirs);
        let ours = connect(d.join("rs.sqlite3").to_str().unwrap()).unwrap();
        let py_conn = Connection::open(&theirs).unwrap();
        assert_eq!(objects(&ours), objects(&py_conn));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn version_2_is_upgraded_with_backup() {
        let d = tmp("upg");
        let f = d.join("old.sqlite3");
        {
            let c = Connection::open(&f).unwrap();
            c.execute_batch(
                "CREATE TABLE fail2banDb(version INTEGER); INSERT INTO fail2banDb VALUES(2);\
                 CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);\
                 INSERT INTO jails VALUES('sshd', 1);\
                 CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0);\
                 CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON);\
                 INSERT INTO bans VALUES('sshd', '192.0.2.1', 100, '{}');\
                 INSERT INTO bans VALUES('sshd', '192.0.2.1', 200, '{\"failures\": 3}');",
            )
            .unwrap();
        }
        let conn = connect(f.to_str().unwrap()).unwrap();
        let v: i64 = conn
            .query_row("SELECT version FROM fail2banDb", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 4);
        let row: (i64, i64, i64) = conn
            .query_row(
                "SELECT timeofban, bantime, bancount FROM bips WHERE ip='192.0.2.1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, (200, -2, 1));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM bans WHERE bantime = -2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 2);
        let backups = std::fs::read_dir(&d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("old.sqlite3.")
            })
            .count();
        assert_eq!(backups, 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Every row of every table, as text, and the schema.
    fn dump(conn: &Connection) -> Vec<String> {
        let mut out: Vec<String> = objects(conn)
            .into_iter()
            .map(|(n, sql)| format!("{n}: {sql}"))
            .collect();
        for t in ["fail2banDb", "jails", "logs", "bans", "bips"] {
            let mut st = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut cols = Vec::new();
                    for i in 0..n {
                        cols.push(format!("{:?}", r.get::<_, rusqlite::types::Value>(i)?));
                    }
                    Ok(format!("{t}: {}", cols.join(" | ")))
                })
                .unwrap()
                .map(Result::unwrap);
            out.extend(rows);
        }
        out.sort();
        out
    }

    #[test]
    fn old_versions_are_upgraded_as_python_does() {
        let py = "/usr/bin/python3";
        if !Path::new(py).exists() {
            eprintln!("SKIP: {py} is missing; upgrade not compared with fail2ban's");
            return;
        }
        let d = tmp("upg-py");
        let v1 = "CREATE TABLE fail2banDb(version INTEGER); INSERT INTO fail2banDb VALUES(1);\
                  CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);\
                  INSERT INTO jails VALUES('sshd', 1);\
                  CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0);\
                  INSERT INTO logs VALUES('sshd', '/var/log/auth.log', 'abc', 77);\
                  CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, data JSON);\
                  INSERT INTO bans VALUES('sshd', '192.0.2.1', 100, '{}');\
                  INSERT INTO bans VALUES('sshd', '192.0.2.1', 200, '{\"failures\": 3}');\
                  INSERT INTO bans VALUES('sshd', '192.0.2.2', 150, '{}');";
        let (ours, theirs) = (d.join("ours.sqlite3"), d.join("theirs.sqlite3"));
        for f in [&ours, &theirs] {
            Connection::open(f).unwrap().execute_batch(v1).unwrap();
        }
        python_opens(py, &theirs);
        let ours = connect(ours.to_str().unwrap()).unwrap();
        let theirs = Connection::open(&theirs).unwrap();
        let got = dump(&ours);
        assert!(got.iter().any(|l| l.starts_with("bips: ")), "{got:#?}");
        assert_eq!(got, dump(&theirs));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unreadable_file_is_set_aside() {
        let d = tmp("bad");
        let f = d.join("bad.sqlite3");
        std::fs::write(&f, vec![b'x'; 4096]).unwrap();
        let conn = connect(f.to_str().unwrap()).unwrap();
        let v: i64 = conn
            .query_row("SELECT version FROM fail2banDb", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 4);
        let aside: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("bad.sqlite3."))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(d.join(&aside[0])).unwrap(), vec![b'x'; 4096]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn repair_dumps_what_is_readable_into_a_new_file() {
        if std::process::Command::new("sqlite3")
            .arg("-version")
            .output()
            .is_err()
        {
            eprintln!("SKIP: no sqlite3 tool; the dump repair was not tried");
            return;
        }
        let d = tmp("dump");
        let f = d.join("dmg.sqlite3");
        {
            let c = connect(f.to_str().unwrap()).unwrap();
            c.execute("INSERT INTO jails(name) VALUES('kept')", [])
                .unwrap();
        }
        let c = repair(f.to_str().unwrap()).unwrap();
        let names: Vec<String> = c
            .prepare("SELECT name FROM jails")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(names, ["kept"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn future_version_is_refused() {
        let d = tmp("future");
        let f = d.join("f.sqlite3");
        Connection::open(&f)
            .unwrap()
            .execute_batch(
                "CREATE TABLE fail2banDb(version INTEGER); INSERT INTO fail2banDb VALUES(9);",
            )
            .unwrap();
        assert!(connect(f.to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
