use std::path::{Path, PathBuf};

use super::*;
use crate::dates::Timestamp;
use crate::failregex::{Groups, Value as GroupValue};

const PYTHON: &str = "/usr/bin/python3";

fn ip(s: &str) -> IpAddr {
    IpAddr::new(s, CIDR_UNSPEC).unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "f2b-db-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ban_ticket(addr: &str, time: f64, lines: &[&str], user: &str) -> Ticket {
    let mut g = Groups::new();
    g.set("user", GroupValue::Str(user.into()));
    let mut t = Ticket::failure(
        ip(addr),
        Timestamp::Float(time),
        lines.iter().map(|s| s.to_string()).collect(),
        g,
    );
    t.set_attempts(lines.len() as i64);
    t.set_ban_count(1);
    t
}

fn query(jail: &str, now: f64) -> RestoreQuery<'_> {
    RestoreQuery {
        jail,
        jail_ban_time: 600,
        max_ban_time: Some(600),
        for_ban_time: Some(600),
        max_matches: 10,
        now,
    }
}

#[test]
fn jails_are_enabled_and_disabled() {
    let db = Database::open(":memory:").unwrap();
    db.add_jail("sshd");
    db.add_jail("web");
    db.add_jail("sshd");
    let mut all = db.jail_names(None);
    all.sort();
    assert_eq!(all, ["sshd", "web"]);
    db.del_jail("web");
    assert_eq!(db.jail_names(Some(true)), ["sshd"]);
    assert_eq!(db.jail_names(Some(false)), ["web"]);
    db.del_all_jails();
    assert_eq!(db.jail_names(Some(true)), Vec::<String>::new());
    db.add_jail("web");
    assert_eq!(db.jail_names(Some(true)), ["web"]);
}

#[test]
fn log_positions_resume_only_with_the_same_first_line() {
    let db = Database::open(":memory:").unwrap();
    db.add_jail("sshd");
    assert_eq!(db.add_log("sshd", "/var/log/auth.log", 0, "aaa"), None);
    assert_eq!(
        db.log_position("sshd", "/var/log/auth.log"),
        Some((Some("aaa".to_string()), 0))
    );
    db.update_log("sshd", "/var/log/auth.log", 1234, "aaa");
    assert_eq!(
        db.add_log("sshd", "/var/log/auth.log", 0, "aaa"),
        Some(1234)
    );
    // a rotated file (other first line): start over, the row is kept
    assert_eq!(db.add_log("sshd", "/var/log/auth.log", 0, "bbb"), None);
    assert_eq!(
        db.log_position("sshd", "/var/log/auth.log"),
        Some((Some("aaa".to_string()), 1234))
    );
    db.update_log("sshd", "/var/log/other.log", 7, "ccc");
    let mut paths = db.log_paths(Some("sshd"));
    paths.sort();
    assert_eq!(paths, ["/var/log/auth.log", "/var/log/other.log"]);
    assert!(db.log_paths(Some("web")).is_empty());
}

#[test]
fn bans_are_restored_while_in_effect() {
    let db = Database::open(":memory:").unwrap();
    db.add_jail("sshd");
    let now = 1_000_000.0;
    db.add_ban(
        "sshd",
        &ban_ticket("192.0.2.1", now - 100.4, &["l1", "l2"], "bob"),
        600,
    );
    db.add_ban(
        "sshd",
        &ban_ticket("192.0.2.2", now - 700.0, &["x"], "al"),
        600,
    );
    let mut perm = ban_ticket("192.0.2.3", now - 5000.0, &["p"], "eve");
    perm.set_ban_time(Some(-1));
    db.add_ban("sshd", &perm, 600);
    let got = db.current_bans(&RestoreQuery {
        for_ban_time: None,
        max_ban_time: None,
        ..query("sshd", now)
    });
    let ids: Vec<String> = got.iter().map(|t| t.id().to_string()).collect();
    assert_eq!(ids, ["192.0.2.1", "192.0.2.3"]);
    let t = &got[0];
    assert_eq!(t.time(), Timestamp::Int(999_900));
    assert_eq!(t.ban_time(), Some(600));
    assert_eq!(t.ban_count(), 1);
    assert_eq!(t.attempts(), 2);
    assert_eq!(t.matches(), ["l1", "l2"]);
    assert_eq!(t.groups().get_str("user"), Some("bob"));
    assert_eq!(got[1].ban_time(), Some(-1));
    // the permanent ban is cut to the jail's maximum, and then is over
    let cut = db.current_bans(&RestoreQuery {
        for_ban_time: None,
        ..query("sshd", now)
    });
    assert_eq!(cut.len(), 1);
    // only the younger bans with a search time
    let young = db.current_bans(&RestoreQuery {
        for_ban_time: Some(50),
        max_ban_time: None,
        ..query("sshd", now)
    });
    assert!(young.is_empty());
    // fewer matches when the jail keeps fewer
    let one = db.current_bans(&RestoreQuery {
        max_matches: 1,
        ..query("sshd", now)
    });
    assert_eq!(one[0].matches(), ["l2"]);
    assert!(db.current_bans(&query("web", now)).is_empty());
}

#[test]
fn old_bans_without_ban_time_take_the_jails() {
    let db = Database::open(":memory:").unwrap();
    db.add_jail("sshd");
    db.conn
        .execute(
            "INSERT INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES('192.0.2.9', 'sshd', 1000, -2, 1, '{}')",
            [],
        )
        .unwrap();
    let q = RestoreQuery {
        jail_ban_time: 300,
        for_ban_time: None,
        max_ban_time: None,
        ..query("sshd", 1200.0)
    };
    assert_eq!(db.current_bans(&q)[0].ban_time(), Some(300));
    assert!(
        db.current_bans(&RestoreQuery {
            now: 1300.0,
            ..q.clone()
        })
        .is_empty()
    );
}

#[test]
fn unban_forgets_bans() {
    let db = Database::open(":memory:").unwrap();
    db.add_jail("sshd");
    db.add_jail("web");
    let now = 5000.0;
    for (j, a) in [
        ("sshd", "192.0.2.1"),
        ("sshd", "192.0.2.2"),
        ("web", "192.0.2.1"),
    ] {
        db.add_ban(j, &ban_ticket(a, now, &["l"], "u"), 600);
    }
    db.del_ban("sshd", Some("192.0.2.1"));
    let left: Vec<String> = db
        .current_bans(&query("sshd", now))
        .iter()
        .map(|t| t.id().to_string())
        .collect();
    assert_eq!(left, ["192.0.2.2"]);
    assert_eq!(db.current_bans(&query("web", now)).len(), 1);
    db.del_ban("sshd", None);
    assert!(db.current_bans(&query("sshd", now)).is_empty());
    assert!(db.bans_merged("192.0.2.2", Some("sshd")).is_none());
    assert_eq!(db.current_bans(&query("web", now)).len(), 1);
}

#[test]
fn merged_bans_and_ban_records() {
    let db = Database::open(":memory:").unwrap();
    db.set_max_matches(3);
    db.add_jail("sshd");
    db.add_jail("web");
    db.add_ban(
        "sshd",
        &ban_ticket("192.0.2.1", 100.0, &["a", "b"], "u"),
        600,
    );
    let mut second = ban_ticket("192.0.2.1", 900.0, &["c", "d"], "u");
    second.set_ban_count(2);
    second.set_ban_time(Some(1200));
    db.add_ban("sshd", &second, 600);
    db.add_ban("web", &ban_ticket("192.0.2.1", 950.0, &["e"], "u"), 600);
    let m = db.bans_merged("192.0.2.1", Some("sshd")).unwrap();
    assert_eq!(m.matches, ["b", "c", "d"]);
    assert_eq!(m.failures, 4);
    let all = db.bans_merged("192.0.2.1", None).unwrap();
    assert_eq!(all.matches, ["c", "d", "e"]);
    assert_eq!(all.failures, 5);
    assert_eq!(
        db.get_ban("192.0.2.1", Some("sshd"), None, false, 1000.0),
        [BanRecord {
            count: 2,
            time: 900,
            ban_time: 1200
        }]
    );
    assert_eq!(
        db.get_ban("192.0.2.1", Some("sshd"), None, true, 1000.0),
        [BanRecord {
            count: 3,
            time: 950,
            ban_time: 1800
        }]
    );
    assert!(
        db.get_ban("192.0.2.1", Some("sshd"), Some(50), false, 1000.0)
            .is_empty()
    );
    assert!(
        db.get_ban("192.0.2.8", None, None, false, 1000.0)
            .is_empty()
    );
}

#[test]
fn purge_drops_old_bans_and_empty_disabled_jails() {
    let db = Database::open(":memory:").unwrap();
    db.set_purge_age(Num::Int(3600));
    db.add_jail("sshd");
    db.add_jail("gone");
    db.update_log("gone", "/var/log/x", 5, "h");
    let now = crate::mytime::now();
    db.add_ban(
        "sshd",
        &ban_ticket("192.0.2.1", now - 7200.0, &["a"], "u"),
        600,
    );
    db.add_ban(
        "sshd",
        &ban_ticket("192.0.2.2", now - 60.0, &["b"], "u"),
        600,
    );
    let mut perm = ban_ticket("192.0.2.3", now - 86400.0, &["c"], "u");
    perm.set_ban_time(Some(-1));
    db.add_ban("sshd", &perm, 600);
    let mut long = ban_ticket("192.0.2.4", now - 7200.0, &["d"], "u");
    long.set_ban_time(Some(3600));
    db.add_ban("sshd", &long, 600);
    db.del_jail("gone");
    db.purge();
    let count = |sql: &str| -> i64 { db.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM bans"), 1);
    let mut bips: Vec<String> = {
        let mut st = db.conn.prepare("SELECT ip FROM bips").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    bips.sort();
    assert_eq!(bips, ["192.0.2.2", "192.0.2.3", "192.0.2.4"]);
    assert_eq!(db.jail_names(None), ["sshd"]);
    assert!(db.log_paths(Some("gone")).is_empty());
}

/// Runs a Python snippet with fail2ban importable; `None` (after saying
/// why) when Python's fail2ban is not installed.
fn python(code: &str) -> Option<String> {
    if !Path::new(PYTHON).exists() {
        eprintln!("SKIP: {PYTHON} is missing; not compared with fail2ban's database");
        return None;
    }
    let out = std::process::Command::new(PYTHON)
        .arg("-c")
        .arg(code)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

const PY_JAIL: &str = "
from fail2ban.server.database import Fail2BanDb
from fail2ban.server.ticket import FailTicket
class A:
    def getBanTime(self): return 600
class J:
    name = 'sshd'
    actions = A()
    def getMaxBanTime(self): return 600
";

#[test]
fn python_reads_our_bans() {
    let d = tmpdir("py-reads");
    let f = d.join("f2b.sqlite3");
    let now = crate::mytime::now().floor();
    {
        let db = Database::open(f.to_str().unwrap()).unwrap();
        db.add_jail("sshd");
        db.add_ban(
            "sshd",
            &ban_ticket("192.0.2.1", now - 10.0, &["l1 \"é\"", "l2"], "bob"),
            600,
        );
    }
    let code = format!(
        "{PY_JAIL}
db = Fail2BanDb({f:?})
t = db.getCurrentBans(jail=J(), ip='192.0.2.1', fromtime={now})
print(repr((str(t.getID()), t.getTime(), t.getBanTime(), t.getBanCount(), t.getAttempt(), t.getMatches(), t.getData('user'))))
",
        f = f.display().to_string()
    );
    let Some(out) = python(&code) else { return };
    assert_eq!(
        out.trim(),
        format!(
            "('192.0.2.1', {}, 600, 1, 2, ['l1 \"é\"', 'l2'], 'bob')",
            now as i64 - 10
        )
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn we_read_pythons_bans_and_bytes_match() {
    let d = tmpdir("we-read");
    let theirs = d.join("py.sqlite3");
    let now = crate::mytime::now().floor();
    let code = format!(
        "{PY_JAIL}
db = Fail2BanDb({f:?})
db.addJail(J())
t = FailTicket('192.0.2.5', {t}, ['l1 \"é\"', 'l2'], data={{'user': 'bob'}})
t.setAttempt(2)
t.setBanCount(1)
db.addBan(J(), t)
db.close()
",
        f = theirs.display().to_string(),
        t = now - 20.0
    );
    if python(&code).is_none() {
        return;
    }
    let db = Database::open(theirs.to_str().unwrap()).unwrap();
    let got = db.current_bans(&query("sshd", now));
    assert_eq!(got.len(), 1);
    let t = &got[0];
    assert_eq!(t.id().to_string(), "192.0.2.5");
    assert_eq!(t.time(), Timestamp::Int(now as i64 - 20));
    assert_eq!(t.ban_time(), Some(600));
    assert_eq!(t.attempts(), 2);
    assert_eq!(t.matches(), ["l1 \"é\"", "l2"]);
    assert_eq!(t.groups().get_str("user"), Some("bob"));
    // the same ban stored by us is the same row, byte for byte
    let ours = Database::open(":memory:").unwrap();
    ours.add_jail("sshd");
    ours.add_ban(
        "sshd",
        &ban_ticket("192.0.2.5", now - 20.0, &["l1 \"é\"", "l2"], "bob"),
        600,
    );
    let row = |db: &Database| -> (String, i64, i64, i64, Vec<u8>) {
        db.conn
            .query_row(
                "SELECT ip, timeofban, bantime, bancount, data FROM bips",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    };
    assert_eq!(row(&ours), row(&db));
    std::fs::remove_dir_all(&d).unwrap();
}
