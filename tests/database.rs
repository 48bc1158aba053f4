//! The persistent database across restarts and across implementations:
//! our server restores its bans and resumes its log after a restart, reads
//! a database written by Python's fail2ban 1.0.2 server, and writes one
//! Python's server reads; both servers show the same restored bans
//! (`status`, `banned`, `get <jail> banip --with-time`).
//!
//! Each test runs servers in the foreground on a throw-away configuration
//! (one polling jail on a temporary log, an action that records its calls,
//! a database file in the temporary directory).  Without Python's
//! fail2ban the cross-implementation tests say so and pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";
const PYTHON_SERVER: &str = "/usr/bin/fail2ban-server";
const PYTHON_CLIENT: &str = "/usr/bin/fail2ban-client";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Impl {
    Ours,
    Python,
}

/// A temporary configuration and the server currently running on it.
struct Env {
    dir: PathBuf,
    server: Option<Child>,
    running: Option<Impl>,
}

impl Env {
    fn new(name: &str) -> Env {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("f2b-dbtest-{name}-{}-{nanos}", std::process::id()));
        for d in ["run", "conf/filter.d", "conf/action.d"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let env = Env {
            dir,
            server: None,
            running: None,
        };
        env.write_config("");
        env.write("alpha.log", "");
        env
    }

    fn path(&self, p: &str) -> String {
        self.dir.join(p).to_string_lossy().into_owned()
    }

    fn write(&self, p: &str, text: &str) {
        fs::write(self.dir.join(p), text).unwrap();
    }

    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.dir.join(p)).unwrap_or_default()
    }

    /// One jail `alpha` (maxretry 2) with the recording action, plus
    /// `extra` lines in its section.
    fn write_config(&self, extra: &str) {
        let t = self.dir.display();
        self.write(
            "conf/fail2ban.conf",
            &format!(
                "[Definition]\nloglevel = INFO\nlogtarget = {t}/server.log\nsyslogsocket = auto\n\
                 allowipv6 = auto\nsocket = {t}/run/f2b.sock\npidfile = {t}/run/f2b.pid\n\
                 dbfile = {t}/f2b.sqlite3\ndbpurgeage = 1d\ndbmaxmatches = 10\n"
            ),
        );
        self.write(
            "conf/jail.conf",
            &format!(
                "[DEFAULT]\nbackend = polling\nmaxretry = 2\nfindtime = 10m\nbantime = 1h\n\
                 action = record\n\n[alpha]\nenabled = true\nfilter = simple\n\
                 logpath = {t}/alpha.log\n{extra}"
            ),
        );
        self.write(
            "conf/filter.d/simple.conf",
            "[Definition]\nfailregex = ^\\s*login failed for <F-USER>\\S+</F-USER> from <HOST>$\n",
        );
        self.write(
            "conf/action.d/record.conf",
            &format!(
                "[Definition]\nactionstart =\nactionstop =\nactioncheck =\n\
                 actionban = echo \"ban <ip> restored=<restored> failures=<failures> bantime=<bantime>\" >> {t}/actions.txt\n\
                 actionunban = echo \"unban <ip>\" >> {t}/actions.txt\n"
            ),
        );
        self.write(
            "conf/action.d/quiet.conf",
            &format!(
                "[Definition]\nnorestored = true\nactionstart =\nactionstop =\nactioncheck =\n\
                 actionban = echo \"quiet ban <ip>\" >> {t}/actions.txt\nactionunban =\n"
            ),
        );
    }

    /// Appends failure lines dated now.
    /// Appends failure lines to the jail's log in one write, as a logger
    /// does (rewriting the file would let a poll see it truncated, which
    /// both servers rightly take for a rotation and read it all again).
    fn fail(&self, ip: &str, users: &[&str]) {
        use std::io::Write;
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        let text: String = users
            .iter()
            .map(|u| format!("{now} login failed for {u} from {ip}\n"))
            .collect();
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("alpha.log"))
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .unwrap();
    }

    fn start(&mut self, which: Impl) {
        assert!(self.server.is_none());
        let mut cmd = match which {
            Impl::Ours => Command::new(env!("CARGO_BIN_EXE_fail2ban-server")),
            Impl::Python => {
                let mut c = Command::new(PYTHON);
                c.arg(PYTHON_SERVER);
                c
            }
        };
        cmd.args(["-xf", "-c"])
            .arg(self.path("conf"))
            .arg("-s")
            .arg(self.path("run/f2b.sock"))
            .arg("-p")
            .arg(self.path("run/f2b.pid"))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.server = Some(cmd.spawn().unwrap());
        self.running = Some(which);
        if self.read("conf/jail.conf").contains("enabled = true") {
            self.wait_log("Jail 'alpha' started", 1);
        } else {
            let t = Instant::now();
            while self.client_of(Impl::Python, &["ping"]).2 != 0 {
                assert!(t.elapsed() < Duration::from_secs(20), "server not ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Runs the client of the running server's implementation.
    fn client(&self, args: &[&str]) -> String {
        self.client_of(self.running.unwrap_or(Impl::Ours), args).0
    }

    /// Runs the client of `which`: stdout, stderr, exit status.
    fn client_of(&self, which: Impl, args: &[&str]) -> (String, String, i32) {
        let mut cmd = match which {
            Impl::Python => Command::new(PYTHON_CLIENT),
            Impl::Ours => Command::new(env!("CARGO_BIN_EXE_fail2ban-client")),
        };
        let out = cmd
            .arg("-c")
            .arg(self.path("conf"))
            .arg("-s")
            .arg(self.path("run/f2b.sock"))
            .args(args)
            .output()
            .unwrap();
        let text =
            |b: &[u8]| String::from_utf8_lossy(b).replace(&self.dir.display().to_string(), "$T");
        (
            text(&out.stdout),
            text(&out.stderr),
            out.status.code().unwrap_or(-1),
        )
    }

    fn stop(&mut self) {
        self.client(&["stop"]);
        if let Some(mut c) = self.server.take() {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if c.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.running = None;
    }

    /// Waits until the server log holds `count` lines containing `what`.
    fn wait_log(&self, what: &str, count: usize) {
        self.wait_file("server.log", what, count);
    }

    fn wait_file(&self, file: &str, what: &str, count: usize) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if self.read(file).matches(what).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{file}: {count} x {what:?} not seen; log:\n{}\nactions:\n{}",
            self.read("server.log"),
            self.read("actions.txt")
        );
    }

    /// Forgets the log and the actions recorded (before a restart).
    fn clear_records(&self) {
        self.write("server.log", "");
        self.write("actions.txt", "");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn python_missing() -> bool {
    for p in [PYTHON, PYTHON_SERVER, PYTHON_CLIENT] {
        if !Path::new(p).exists() {
            eprintln!(
                "SKIP: {p} is not installed; the database was not shared with Python's fail2ban"
            );
            return true;
        }
    }
    false
}

/// What a client shows of the bans of a running server.
fn ban_views(env: &Env) -> Vec<String> {
    vec![
        env.client(&["status", "alpha"]),
        env.client(&["banned"]),
        env.client(&["get", "alpha", "banip", "--with-time"]),
    ]
}

/// Bans two addresses on the running server: one from log failures, one
/// with `banip`.
fn ban_two(env: &Env) {
    env.fail("192.0.2.7", &["bob", "eve"]);
    env.wait_log("Ban 192.0.2.7", 1);
    env.client(&["set", "alpha", "banip", "198.51.100.4"]);
    env.wait_log("Ban 198.51.100.4", 1);
}

#[test]
fn our_server_restores_bans_and_resumes_its_log() {
    let mut env = Env::new("ours");
    env.start(Impl::Ours);
    ban_two(&env);
    env.fail("203.0.113.9", &["x", "y"]);
    env.wait_log("Ban 203.0.113.9", 1);
    assert_eq!(env.client(&["unban", "203.0.113.9"]).trim(), "1");
    env.stop();
    env.clear_records();

    env.start(Impl::Ours);
    env.wait_log("Restore Ban", 2);
    env.wait_file("actions.txt", "restored=1", 2);
    let log = env.read("server.log");
    assert!(log.contains("[alpha] Restore Ban 192.0.2.7"), "{log}");
    assert!(log.contains("[alpha] Restore Ban 198.51.100.4"), "{log}");
    assert!(
        !log.contains("203.0.113.9"),
        "unbanned address restored:\n{log}"
    );
    // the log is resumed at its end: the old failures are not found again
    assert!(!log.contains("Found"), "{log}");
    let size = env.read("alpha.log").len();
    assert!(log.contains(&format!("(pos = {size}, hash = ")), "{log}");
    let actions = env.read("actions.txt");
    assert!(
        actions.contains("ban 192.0.2.7 restored=1 failures=2"),
        "{actions}"
    );
    let views = ban_views(&env);
    assert!(views[0].contains("Currently banned:\t2"), "{}", views[0]);
    assert!(views[0].contains("Total failed:\t0"), "{}", views[0]);
    assert_eq!(
        views[1].trim(),
        "[{'alpha': ['192.0.2.7', '198.51.100.4']}]"
    );
    assert_eq!(env.client(&["get", "dbfile"]).lines().count(), 2);
    // unban --all forgets them in the database too
    assert_eq!(env.client(&["unban", "--all"]).trim(), "2");
    env.stop();
    env.clear_records();
    env.start(Impl::Ours);
    std::thread::sleep(Duration::from_millis(500));
    let views = ban_views(&env);
    assert!(views[0].contains("Currently banned:\t0"), "{}", views[0]);
    env.stop();
}

#[test]
fn norestored_actions_skip_restored_bans() {
    let mut env = Env::new("norestored");
    env.write_config("action = record\n         quiet\n");
    env.start(Impl::Ours);
    env.client(&["set", "alpha", "banip", "198.51.100.4"]);
    env.wait_file("actions.txt", "quiet ban 198.51.100.4", 1);
    env.stop();
    env.clear_records();
    env.start(Impl::Ours);
    env.wait_file("actions.txt", "ban 198.51.100.4 restored=1", 1);
    std::thread::sleep(Duration::from_millis(300));
    env.stop();
    let actions = env.read("actions.txt");
    assert!(!actions.contains("quiet ban"), "{actions}");
}

#[test]
fn we_restore_what_python_stored() {
    if python_missing() {
        return;
    }
    let mut env = Env::new("from-py");
    env.start(Impl::Python);
    ban_two(&env);
    env.stop();
    let saved = env.path("saved.sqlite3");
    fs::copy(env.path("f2b.sqlite3"), &saved).unwrap();

    env.clear_records();
    env.start(Impl::Ours);
    env.wait_log("Restore Ban", 2);
    env.wait_file("actions.txt", "restored=1", 2);
    let ours = ban_views(&env);
    let log = env.read("server.log");
    env.stop();
    assert!(
        log.contains("NOTICE  [alpha] Restore Ban 192.0.2.7"),
        "{log}"
    );
    assert!(!log.contains("Found"), "{log}");
    let actions = env.read("actions.txt");
    assert!(
        actions.contains("ban 192.0.2.7 restored=1 failures=2"),
        "{actions}"
    );
    assert!(
        actions.contains("ban 198.51.100.4 restored=1 failures=0"),
        "{actions}"
    );

    // Python's server on the same file shows the same
    fs::copy(&saved, env.path("f2b.sqlite3")).unwrap();
    env.clear_records();
    env.start(Impl::Python);
    env.wait_log("Restore Ban", 2);
    let theirs = ban_views(&env);
    env.stop();
    assert_eq!(ours, theirs);
}

#[test]
fn python_restores_what_we_stored() {
    if python_missing() {
        return;
    }
    let mut env = Env::new("to-py");
    env.start(Impl::Ours);
    ban_two(&env);
    env.stop();
    env.clear_records();
    env.start(Impl::Python);
    env.wait_log("Restore Ban", 2);
    env.wait_file("actions.txt", "restored=1", 2);
    let theirs = ban_views(&env);
    let log = env.read("server.log");
    env.stop();
    assert!(log.contains("[alpha] Restore Ban 192.0.2.7"), "{log}");
    assert!(log.contains("[alpha] Restore Ban 198.51.100.4"), "{log}");
    assert!(!log.contains("Found"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    let actions = env.read("actions.txt");
    assert!(
        actions.contains("ban 192.0.2.7 restored=1 failures=2"),
        "{actions}"
    );
    assert!(theirs[0].contains("Currently banned:\t2"), "{}", theirs[0]);
}

/// The lines of a server log about `bantime.increment`, times masked.
fn increment_lines(log: &str) -> Vec<String> {
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(,\d{3})?").unwrap();
    let pid = regex::Regex::new(r"\[\d+\]:").unwrap();
    log.lines()
        .filter(|l| l.contains(" bad") || l.contains("Increase Ban") || l.contains("Ban "))
        .map(|l| {
            let l = time.replace_all(l, "<time>");
            pid.replace_all(&l, "[<pid>]:").into_owned()
        })
        .collect()
}

/// A second ban of an address after its first one ran out.
fn increment_session(env: &mut Env, which: Impl) -> (Vec<String>, String) {
    env.clear_records();
    env.write("alpha.log", "");
    let _ = fs::remove_file(env.dir.join("f2b.sqlite3"));
    env.start(which);
    env.fail("192.0.2.7", &["bob", "eve"]);
    env.wait_log("Unban 192.0.2.7", 1);
    std::thread::sleep(Duration::from_millis(1100));
    env.fail("192.0.2.7", &["bob"]);
    env.wait_log("Increase Ban 192.0.2.7", 1);
    let banned = env.client(&["get", "alpha", "banip", "--with-time"]);
    env.stop();
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").unwrap();
    (
        increment_lines(&env.read("server.log")),
        time.replace_all(&banned, "<time>").into_owned(),
    )
}

#[test]
fn bantime_increment_as_python() {
    if python_missing() {
        return;
    }
    let mut env = Env::new("incr");
    env.write_config("bantime = 2\nbantime.increment = true\nbantime.factor = 3\n");
    let ours = increment_session(&mut env, Impl::Ours);
    let theirs = increment_session(&mut env, Impl::Python);
    assert!(
        ours.0
            .iter()
            .any(|l| l.contains("Increase Ban 192.0.2.7 (2 # 12s -> ")),
        "{ours:#?}"
    );
    assert_eq!(ours, theirs);
}

/// Starts a server and runs `commands` through Python's client (for both
/// servers: their replies are compared), then stops it: each command with
/// its stdout, its stderr lines without their prefix, and its exit status.
fn answers(
    env: &mut Env,
    which: Impl,
    commands: &[&[&str]],
) -> Vec<(String, String, Vec<String>, i32)> {
    env.start(which);
    let out = commands
        .iter()
        .map(|c| {
            let (stdout, stderr, code) = env.client_of(Impl::Python, c);
            let stderr: Vec<String> = stderr
                .lines()
                .filter(|l| !l.contains("configreader"))
                .map(|l| l.split_once(": ").map_or(l, |(_, m)| m).to_string())
                .collect();
            (c.join(" "), stdout, stderr, code)
        })
        .collect();
    env.stop();
    out
}

#[test]
fn database_settings_answer_as_python() {
    if python_missing() {
        return;
    }
    let commands: &[&[&str]] = &[
        &["get", "dbfile"],
        &["get", "dbpurgeage"],
        &["get", "dbmaxmatches"],
        &["set", "dbpurgeage", "2h"],
        &["get", "dbpurgeage"],
        &["set", "dbpurgeage", "1.5h"],
        &["get", "dbpurgeage"],
        &["set", "dbmaxmatches", "5"],
        &["get", "dbmaxmatches"],
        &["set", "dbfile", "/nonexistent/other.sqlite3"],
        &["set", "dbfile", "None"],
        &["stop"],
    ];
    let mut env = Env::new("settings");
    let mut runs = Vec::new();
    for which in [Impl::Python, Impl::Ours] {
        let _ = fs::remove_file(env.dir.join("f2b.sqlite3"));
        runs.push(answers(&mut env, which, commands));
    }
    assert_eq!(runs[1], runs[0]);
    assert!(runs[0][0].1.contains("$T/f2b.sqlite3"), "{:?}", runs[0]);
    assert!(
        runs[0][9].1.contains("Cannot change database"),
        "{:?}",
        runs[0]
    );
}

#[test]
fn database_errors_answer_as_python() {
    if python_missing() {
        return;
    }
    let mut env = Env::new("errors");
    env.write("conf/jail.conf", "[DEFAULT]\n");
    let dir = env.path("");
    let commands: &[&[&str]] = &[
        &["set", "dbfile", dir.as_str()],
        &["get", "dbfile"],
        &["set", "dbpurgeage", "1h"],
        &["set", "dbfile", "/nonexistent-f2b/x/f2b.sqlite3"],
        &["set", "dbfile", ":memory:"],
        &["get", "dbpurgeage"],
        &["set", "dbfile", "none"],
        &["get", "dbfile"],
        &["stop"],
    ];
    let runs: Vec<_> = [Impl::Python, Impl::Ours]
        .into_iter()
        .map(|which| answers(&mut env, which, commands))
        .collect();
    assert_eq!(runs[1], runs[0]);
    assert!(
        runs[0][0].1.contains("unable to open database file"),
        "{:?}",
        runs[0]
    );
}
