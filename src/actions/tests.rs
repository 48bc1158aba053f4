//! Tests of the jail-level flows: scripted command results for the
//! control flow, real children for ordering, concurrency, timeouts and
//! output handling.

use super::command::Job;
use super::runner::{Runner, Watch};
use super::*;
use crate::ipaddr::CIDR_UNSPEC;
use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

/// Scripted command results (true when the script runs out).  The
/// commands show up in the events as level-0 lines of logger `test.exec`.
pub(crate) struct Script {
    results: VecDeque<bool>,
}

impl Script {
    pub(crate) fn next_result(&mut self) -> bool {
        self.results.pop_front().unwrap_or(true)
    }
}

impl Actions {
    /// Actions whose commands are not run: each gets the next result.
    pub(crate) fn scripted(jail: &str, results: Vec<bool>) -> Actions {
        Actions::with_backend(
            jail,
            Backend::Script(Script {
                results: results.into(),
            }),
        )
    }

    pub(crate) fn with_watch(jail: &str, watch: Watch) -> Actions {
        Actions::with_backend(jail, Backend::Real(Runner::with_watch(watch)))
    }

    pub(crate) fn freeze_time(&self, t: f64) {
        self.ctx.frozen_time.set(Some(t));
    }

    /// Queues one job on one action (the per-action operations of the
    /// differential test).
    pub(crate) fn push_job(&mut self, action: &str, job: Job) {
        let i = self
            .slots
            .iter()
            .position(|(n, _)| n == action)
            .expect("known action");
        self.enqueue(i, job);
    }
}

/// A ticket for tests.
pub(crate) fn ticket(ip: &str, matches: &[&str]) -> BanInfo {
    let addr = IpAddr::new(ip, CIDR_UNSPEC).expect("address");
    BanInfo {
        fid: addr.ntoa(),
        ip: addr,
        failures: matches.len() as i64,
        time: Num::Float(1_700_000_000.5),
        bantime: None,
        bancount: 1,
        matches: matches.iter().map(|s| s.to_string()).collect(),
        restored: false,
        data: Groups::new(),
        merged_all: None,
        merged_jail: None,
    }
}

fn set(a: &mut Actions, action: &str, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        a.set_property(action, k, PyValue::str(*v))
            .expect("property");
    }
}

/// Runs the poll loop until nothing is left to do (or `max` passed), and
/// returns the events.
fn drive(a: &mut Actions, max: Duration) -> Vec<Event> {
    drive_until(a, max, |_| false)
}

/// Runs the poll loop until `stop` holds for the events so far, nothing
/// is left to do, or `max` passed.
fn drive_until(a: &mut Actions, max: Duration, stop: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    drive_jails(std::slice::from_mut(a), max, stop)
}

/// Runs the poll loop of several jails' actions until `stop` holds for
/// the events so far (of all of them), all are idle, or `max` passed.
fn drive_jails(all: &mut [Actions], max: Duration, stop: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let start = Instant::now();
    let mut events: Vec<Event> = all.iter_mut().flat_map(Actions::take_events).collect();
    while !all.iter().all(Actions::is_idle) && !stop(&events) && start.elapsed() < max {
        let mut fds: Vec<(usize, RawFd)> = Vec::new();
        let mut wait = Duration::from_millis(100);
        for (i, a) in all.iter().enumerate() {
            fds.extend(a.fds().into_iter().map(|fd| (i, fd)));
            if let Some(d) = a.next_deadline() {
                wait = wait.min(d.saturating_duration_since(Instant::now()));
            }
        }
        let mut pfds: Vec<nix::poll::PollFd> = fds
            .iter()
            .map(|&(_, fd)| {
                // SAFETY: the descriptors belong to the actions and stay
                // open until they are called again.
                nix::poll::PollFd::new(
                    unsafe { BorrowedFd::borrow_raw(fd) },
                    nix::poll::PollFlags::POLLIN,
                )
            })
            .collect();
        let _ = nix::poll::poll(&mut pfds, wait.as_millis().min(1000) as u16);
        let ready: Vec<(usize, RawFd)> = pfds
            .iter()
            .zip(&fds)
            .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, fd)| *fd)
            .collect();
        for (i, fd) in ready {
            all[i].on_ready(fd);
        }
        for a in all.iter_mut() {
            if a.next_deadline().is_some_and(|d| d <= Instant::now()) {
                a.on_timer(Instant::now());
            }
            events.extend(a.take_events());
        }
    }
    events
}

fn logs(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log(l) => Some(format!("{} {} {}", l.level, l.logger, l.message)),
            Event::Done(_) => None,
        })
        .collect()
}

fn dones(events: &[Event]) -> Vec<&Done> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Done(d) => Some(d),
            Event::Log(_) => None,
        })
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("f2b-actions-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn commands_of_one_action_run_in_order() {
    for watch in [Watch::Pidfd, Watch::SigChld, Watch::Poll] {
        let t = TempDir::new(&format!("order-{watch:?}"));
        let f = t.file("log");
        let mut a = Actions::with_watch("j", watch);
        a.add_action("echo").unwrap();
        set(
            &mut a,
            "echo",
            &[
                ("actionstart", &format!("echo start >> {f}")),
                ("actionban", &format!("sleep 0.05; echo ban <ip> >> {f}")),
                ("actionunban", &format!("echo unban <ip> >> {f}")),
                ("actionstop", &format!("echo stop >> {f}")),
            ],
        );
        a.start();
        a.ban(&ticket("192.0.2.1", &[]));
        a.ban(&ticket("192.0.2.2", &[]));
        a.unban(&ticket("192.0.2.1", &[]));
        a.stop(&[ticket("192.0.2.2", &[])]);
        let ev = drive(&mut a, Duration::from_secs(20));
        assert!(a.is_idle(), "{watch:?}");
        assert_eq!(
            t.read("log"),
            "start\nban 192.0.2.1\nban 192.0.2.2\nunban 192.0.2.1\nunban 192.0.2.2\nstop\n",
            "{watch:?}"
        );
        let d = dones(&ev);
        assert_eq!(d.len(), 6);
        assert!(d.iter().all(|d| d.ok && d.action == "echo"));
        let l = logs(&ev);
        let notices: Vec<&String> = l.iter().filter(|l| l.starts_with("25 ")).collect();
        assert_eq!(
            notices,
            [
                "25 fail2ban.actions [j] Ban 192.0.2.1",
                "25 fail2ban.actions [j] Ban 192.0.2.2",
                "25 fail2ban.actions [j] Unban 192.0.2.1",
                "25 fail2ban.actions [j] Unban 192.0.2.2",
            ]
        );
        assert!(l.iter().any(|l| l.contains("-- returned successfully 0")));
    }
}

#[test]
fn a_slow_action_does_not_delay_another() {
    let t = TempDir::new("concurrent");
    let f = t.file("log");
    let mut a = Actions::new("j");
    a.add_action("slow").unwrap();
    a.add_action("fast").unwrap();
    set(
        &mut a,
        "slow",
        &[("actionban", &format!("sleep 2; echo slow <ip> >> {f}"))],
    );
    set(
        &mut a,
        "fast",
        &[("actionban", &format!("echo fast <ip> >> {f}"))],
    );
    let start = Instant::now();
    a.ban(&ticket("192.0.2.1", &[]));
    a.ban(&ticket("192.0.2.2", &[]));
    let fast_done = |ev: &[Event]| dones(ev).iter().filter(|d| d.action == "fast").count() == 2;
    let ev = drive_until(&mut a, Duration::from_secs(20), fast_done);
    let fast = start.elapsed();
    assert!(fast_done(&ev));
    assert!(
        fast < Duration::from_millis(700),
        "fast action took {fast:?}"
    );
    assert_eq!(t.read("log"), "fast 192.0.2.1\nfast 192.0.2.2\n");
    drive(&mut a, Duration::from_secs(20));
    let all = start.elapsed();
    assert!(a.is_idle());
    // The slow action ran its two bans one after the other.
    assert!(all >= Duration::from_secs(4), "slow action took {all:?}");
    assert_eq!(
        t.read("log"),
        "fast 192.0.2.1\nfast 192.0.2.2\nslow 192.0.2.1\nslow 192.0.2.2\n"
    );
}

/// A command that logs its begin and end around a short sleep.
fn bracketed(f: &str, name: &str) -> String {
    format!("echo begin {name} >> {f}; sleep 0.05; echo end {name} >> {f}")
}

/// Whether the log shows every command's begin directly followed by its end.
fn one_at_a_time(log: &str) -> bool {
    log.lines().collect::<Vec<_>>().chunks(2).all(|pair| {
        pair.len() == 2
            && pair[0]
                .strip_prefix("begin ")
                .is_some_and(|name| pair[1] == format!("end {name}"))
    })
}

/// Operations of different actions never overlap: templates such as
/// nftables' assume that one action's `actionstop` does not run while
/// another's is half-way (the command gate).
#[test]
fn operations_of_different_actions_do_not_overlap() {
    let t = TempDir::new("gate-ops");
    let f = t.file("log");
    let mut a = Actions::new("j");
    for name in ["first", "second", "third"] {
        a.add_action(name).unwrap();
        set(&mut a, name, &[("actionstart", &bracketed(&f, name))]);
    }
    a.start();
    drive(&mut a, Duration::from_secs(20));
    assert!(a.is_idle());
    let log = t.read("log");
    assert_eq!(log.lines().count(), 6, "{log}");
    assert!(one_at_a_time(&log), "{log}");
}

#[test]
fn bans_of_same_named_actions_of_two_jails_do_not_overlap() {
    let t = TempDir::new("gate-same");
    let f = t.file("log");
    let mut jails = [Actions::new("j1"), Actions::new("j2")];
    for (n, a) in jails.iter_mut().enumerate() {
        a.add_action("shared").unwrap();
        set(
            a,
            "shared",
            &[("actionban", &bracketed(&f, &format!("j{n}")))],
        );
    }
    for a in &mut jails {
        for ip in ["192.0.2.1", "192.0.2.2"] {
            a.ban(&ticket(ip, &[]));
        }
    }
    drive_jails(&mut jails, Duration::from_secs(20), |_| false);
    assert!(jails.iter().all(Actions::is_idle));
    let log = t.read("log");
    assert_eq!(log.lines().count(), 8, "{log}");
    assert!(one_at_a_time(&log), "{log}");
}

#[test]
fn bans_of_different_actions_run_side_by_side() {
    let t = TempDir::new("gate-side");
    let f = t.file("log");
    let mut a = Actions::new("j");
    for name in ["first", "second", "third"] {
        a.add_action(name).unwrap();
        let cmd = format!("echo begin >> {f}; sleep 0.5; echo end >> {f}");
        set(&mut a, name, &[("actionban", &cmd)]);
    }
    a.ban(&ticket("192.0.2.1", &[]));
    drive(&mut a, Duration::from_secs(20));
    assert!(a.is_idle());
    // all three began before the first ended
    let log = t.read("log");
    assert_eq!(log, "begin\nbegin\nbegin\nend\nend\nend\n");
}

/// Whether process `pid` is gone (or a zombie waiting for its parent).
fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn timeout_kills_the_process_group() {
    let t = TempDir::new("timeout");
    let pidfile = t.file("pid");
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    let cmd = format!("sleep 30 & echo $! > {pidfile}; sleep 30");
    set(&mut a, "a", &[("actionban", &cmd), ("timeout", "0.5")]);
    let start = Instant::now();
    a.ban(&ticket("192.0.2.1", &[]));
    let ev = drive(&mut a, Duration::from_secs(20));
    let took = start.elapsed();
    // Two attempts (no actioncheck), each killed 0.5 s after its start.
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let l = logs(&ev);
    let exec: Vec<&String> = l
        .iter()
        .filter(|l| l.contains("-- exec: sleep 30 &"))
        .collect();
    assert_eq!(exec.len(), 2);
    assert!(exec.iter().all(|l| l.starts_with("40 fail2ban.utils ")));
    let timed: Vec<&String> = l
        .iter()
        .filter(|l| l.ends_with("-- timed out after 0.5 seconds."))
        .collect();
    assert_eq!(timed.len(), 2);
    let killed: Vec<&String> = l
        .iter()
        .filter(|l| l.ends_with("-- killed with SIGTERM (return code: -15)"))
        .collect();
    assert_eq!(killed.len(), 2);
    assert!(l.iter().any(|l| l.starts_with(
        "40 fail2ban.actions Failed to execute ban jail 'j' action 'a' info 'ActionInfo({'ip': '192.0.2.1', 'family': 'inet4', 'fid': <function"
    ) && l.ends_with("': Error banning 192.0.2.1")));
    let d = dones(&ev);
    assert_eq!(d.len(), 1);
    assert!(!d[0].ok);
    assert_eq!(d[0].error.as_deref(), Some("Error banning 192.0.2.1"));
    // The background member of the group was killed too.
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    let gone_by = Instant::now() + Duration::from_secs(3);
    while !process_gone(pid) && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process_gone(pid), "background process {pid} survived");
}

#[test]
fn timeout_escalates_to_sigkill() {
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[
            ("actionban", "trap '' TERM; sleep 30"),
            ("actioncheck", "true"),
            ("timeout", "0.3"),
        ],
    );
    a.ban(&ticket("192.0.2.1", &[]));
    let ev = drive(&mut a, Duration::from_secs(20));
    let l = logs(&ev);
    let killed = l
        .iter()
        .filter(|l| l.ends_with("-- killed with SIGKILL (return code: -9)"))
        .count();
    assert_eq!(killed, 2, "{l:#?}");
    assert!(!dones(&ev)[0].ok);
}

#[test]
fn failed_ban_is_checked_repaired_and_retried() {
    let t = TempDir::new("repair");
    let (f, ready) = (t.file("log"), t.file("ready"));
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[
            ("actioncheck", &format!("test -e {ready}")),
            ("actionrepair", &format!("touch {ready}")),
            (
                "actionban",
                &format!("test -e {ready} && echo ban <ip> >> {f}"),
            ),
        ],
    );
    a.ban(&ticket("192.0.2.1", &[]));
    let ev = drive(&mut a, Duration::from_secs(10));
    assert_eq!(t.read("log"), "ban 192.0.2.1\n");
    assert_eq!(a.ban_epoch(), 1);
    let l = logs(&ev);
    assert!(l.contains(
        &"40 fail2ban.CommandAction Invariant check failed. Trying to restore a sane environment"
            .to_string()
    ));
    // Ban, check, repair, check, ban: two failures logged with their exec line.
    assert_eq!(l.iter().filter(|l| l.ends_with("-- returned 1")).count(), 2);
    assert!(dones(&ev)[0].ok);
}

#[test]
fn actionstart_on_demand_per_family() {
    let t = TempDir::new("families");
    let f = t.file("log");
    let mut a = Actions::new("j");
    a.add_action("cond").unwrap();
    a.add_action("plain").unwrap();
    set(
        &mut a,
        "cond",
        &[
            ("actionstart", &format!("echo start <family> >> {f}")),
            ("actionstop", &format!("echo stop <family> >> {f}")),
            ("actionban", &format!("echo ban <ip> <fw> >> {f}")),
            ("actionunban", &format!("echo unban <ip> >> {f}")),
            ("fw", "iptables"),
            ("fw?family=inet6", "ip6tables"),
        ],
    );
    let g = t.file("plain");
    set(
        &mut a,
        "plain",
        &[
            ("actionstart", &format!("echo start [<family>] >> {g}")),
            ("actionstop", &format!("echo stop [<family>] >> {g}")),
        ],
    );
    let v4a = ticket("192.0.2.1", &[]);
    let v4b = ticket("192.0.2.2", &[]);
    let v6 = ticket("2001:db8::5", &[]);
    a.start();
    a.ban(&v4a);
    a.ban(&v4b);
    a.ban(&v6);
    a.stop(&[v4a, v4b, v6]);
    drive(&mut a, Duration::from_secs(10));
    assert_eq!(
        t.read("log"),
        "start inet4\nban 192.0.2.1 iptables\nban 192.0.2.2 iptables\nstart inet6\n\
         ban 2001:db8::5 ip6tables\nunban 192.0.2.1\nunban 192.0.2.2\nunban 2001:db8::5\n\
         stop inet4\nstop inet6\n"
    );
    // Not conditional: started with the jail, for the empty family only;
    // but its (empty) ban marks each ticket's family as started, and its
    // stop runs for each family, as in fail2ban.
    assert_eq!(
        t.read("plain"),
        "start []\nstop []\nstop [inet4]\nstop [inet6]\n"
    );
}

#[test]
fn stop_waits_for_pending_bans() {
    let t = TempDir::new("stop");
    let f = t.file("log");
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[
            ("actionban", &format!("sleep 0.2; echo ban <ip> >> {f}")),
            ("actionflush", &format!("echo flush >> {f}")),
            ("actionstop", &format!("echo stop >> {f}")),
        ],
    );
    let tickets: Vec<BanInfo> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        .iter()
        .map(|ip| ticket(ip, &[]))
        .collect();
    for tk in &tickets {
        a.ban(tk);
    }
    a.stop(&tickets);
    assert!(a.names().is_empty());
    // Stopped: later requests are ignored.
    a.ban(&ticket("192.0.2.4", &[]));
    assert!(!a.is_idle());
    let ev = drive(&mut a, Duration::from_secs(10));
    assert!(a.is_idle());
    assert_eq!(
        t.read("log"),
        "ban 192.0.2.1\nban 192.0.2.2\nban 192.0.2.3\nflush\nstop\n"
    );
    let l = logs(&ev);
    assert!(l.contains(&"25 fail2ban.actions [j] Flush ticket(s) with a".to_string()));
    assert_eq!(l.iter().filter(|l| l.contains("] Unban ")).count(), 3);
}

#[test]
fn chatty_commands_do_not_block() {
    let t = TempDir::new("output");
    let f = t.file("log");
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[
            (
                "actionban",
                &format!(
                    "head -c 3000000 /dev/zero | tr '\\0' x; echo; yes err | head -n 50000 >&2; echo done >> {f}; exit 3"
                ),
            ),
            ("actioncheck", "true"),
            ("timeout", "20"),
        ],
    );
    let start = Instant::now();
    a.ban(&ticket("192.0.2.1", &[]));
    let ev = drive(&mut a, Duration::from_secs(30));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(t.read("log"), "done\ndone\n");
    let l = logs(&ev);
    let out: Vec<&String> = l.iter().filter(|l| l.contains("-- stdout: ")).collect();
    // One line of 3 MB, kept up to the cap.
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|l| l.len() > 1_000_000 && l.len() < 1_100_000)
    );
    let err = l.iter().filter(|l| l.ends_with("-- stderr: 'err'")).count();
    assert_eq!(err, 100_000);
    assert_eq!(l.iter().filter(|l| l.ends_with("-- returned 3")).count(), 2);
}

#[test]
fn failures_are_logged_as_fail2ban_does() {
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[
            ("actionstart", "echo out; echo err >&2; exit 127"),
            ("actionban", "kill -USR1 $$"),
            ("actionunban", "exit 130"),
        ],
    );
    a.start();
    a.ban(&ticket("192.0.2.1", &["a'b"]));
    let ev = drive(&mut a, Duration::from_secs(10));
    let l: Vec<String> = logs(&ev)
        .into_iter()
        .filter(|l| !l.starts_with("10 ") && !l.starts_with("9 ") && !l.starts_with("25 "))
        .map(|l| {
            // The command token varies.
            let (head, rest) = l.split_once(" -- ").unwrap_or((&l, ""));
            match head.rsplit_once(' ') {
                Some((lvl, _)) if !rest.is_empty() => format!("{lvl} <id> -- {rest}"),
                _ => l.clone(),
            }
        })
        .collect();
    assert_eq!(
        l[0],
        "40 fail2ban.utils <id> -- exec: echo out; echo err >&2; exit 127"
    );
    assert_eq!(l[1], "40 fail2ban.utils <id> -- stdout: 'out'");
    assert_eq!(l[2], "40 fail2ban.utils <id> -- stderr: 'err'");
    assert_eq!(l[3], "40 fail2ban.utils <id> -- returned 127");
    assert!(l[4].starts_with(
        "20 fail2ban.utils HINT on 127: \"Command not found\".  Make sure that all commands in \
         'echo out; echo err >&2; exit 127' are in the PATH"
    ));
    assert_eq!(
        l[5],
        "40 fail2ban.actions Failed to start jail 'j' action 'a': Error starting action \
         Jail('j')/a: 'Script error'"
    );
    assert_eq!(l[6], "40 fail2ban.utils <id> -- exec: kill -USR1 $$");
    assert_eq!(
        l[7],
        "40 fail2ban.utils <id> -- killed with SIGUSR1 (return code: -10)"
    );
    let d = dones(&ev);
    assert_eq!(d[0].op, Op::Start);
    assert!(!d[0].ok);
    assert_eq!(d[1].op, Op::Ban);
    assert_eq!(d[1].error.as_deref(), Some("Error banning 192.0.2.1"));
    // The failed ban left no item: no unban.
    a.unban(&ticket("192.0.2.1", &[]));
    let ev = drive(&mut a, Duration::from_secs(10));
    assert!(!logs(&ev).iter().any(|l| l.contains("exit 130")));
}

#[test]
fn host_names_are_resolved_off_the_loop() {
    let t = TempDir::new("dns");
    let f = t.file("log");
    let mut a = Actions::new("j");
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[(
            "actionban",
            &format!("echo '<fq-hostname>' '<ip-host>' >> {f}"),
        )],
    );
    a.ban(&ticket("192.0.2.77", &[]));
    drive(&mut a, Duration::from_secs(30));
    let name = crate::ipaddr::ip_to_name("192.0.2.77").unwrap_or_else(|| "None".into());
    assert_eq!(
        t.read("log"),
        format!("{} {name}\n", crate::ipaddr::get_hostname(true))
    );
}

#[test]
fn jail_level_choices_of_actions() {
    let mut a = Actions::scripted("j", vec![]);
    for n in ["fw", "mail", "prol"] {
        a.add_action(n).unwrap();
    }
    set(
        &mut a,
        "fw",
        &[
            ("actionban", "fw ban <ip>"),
            ("actionunban", "fw unban <ip>"),
            ("actionflush", "fw flush"),
        ],
    );
    set(
        &mut a,
        "mail",
        &[
            ("actionban", "mail <ip>"),
            ("actionunban", "mail unban <ip>"),
        ],
    );
    a.set_property("mail", "norestored", PyValue::Bool(true))
        .unwrap();
    set(
        &mut a,
        "prol",
        &[
            ("actionban", "prol ban <ip>"),
            ("actionprolong", "prol prolong <ip>"),
        ],
    );
    a.take_events();
    let mut restored = ticket("192.0.2.1", &[]);
    restored.restored = true;
    a.ban(&restored);
    a.ban(&ticket("192.0.2.2", &[]));
    a.prolong(&ticket("192.0.2.2", &[]));
    a.flush(&[restored.clone(), ticket("192.0.2.2", &[])]);
    let l: Vec<String> = logs(&a.take_events())
        .into_iter()
        .filter(|l| l.starts_with("0 ") || l.starts_with("25 "))
        .collect();
    assert_eq!(
        l,
        [
            "25 fail2ban.actions [j] Restore Ban 192.0.2.1",
            "0 test.exec fw ban 192.0.2.1",
            "0 test.exec prol ban 192.0.2.1",
            "25 fail2ban.actions [j] Ban 192.0.2.2",
            "0 test.exec fw ban 192.0.2.2",
            "0 test.exec mail 192.0.2.2",
            "0 test.exec prol ban 192.0.2.2",
            "0 test.exec prol prolong 192.0.2.2",
            "25 fail2ban.actions [j] Flush ticket(s) with fw",
            "0 test.exec fw flush",
            // `norestored` skips bans only: the family has items.
            "25 fail2ban.actions [j] Unban 192.0.2.1",
            "0 test.exec mail unban 192.0.2.1",
            "25 fail2ban.actions [j] Unban 192.0.2.2",
            "0 test.exec mail unban 192.0.2.2",
        ]
    );
}

#[test]
fn reload_keeps_readded_actions_and_drops_the_rest() {
    let mut a = Actions::scripted("j", vec![]);
    for n in ["keep", "gone"] {
        a.add_action(n).unwrap();
        set(
            &mut a,
            n,
            &[
                ("actionstart", &format!("{n} start")),
                ("actionban", &format!("{n} ban <ip>")),
                ("actionunban", &format!("{n} unban <ip>")),
                ("actionstop", &format!("{n} stop")),
                ("actionreload", &format!("{n} reload <port>")),
            ],
        );
    }
    a.start();
    let tk = ticket("192.0.2.1", &[]);
    a.ban(&tk);
    a.take_events();
    a.begin_reload();
    a.add_action("keep").unwrap();
    // Reset by the reload, then set again by the new stream.
    assert_eq!(a.property("keep", "actionban").unwrap(), PyValue::str(""));
    set(
        &mut a,
        "keep",
        &[
            ("actionban", "keep ban2 <ip>"),
            ("actionreload", "keep reload <port>"),
            ("port", "22"),
        ],
    );
    a.add_action("new").unwrap();
    set(&mut a, "new", &[("actionstop", "new stop")]);
    a.end_reload(std::slice::from_ref(&tk));
    let l: Vec<String> = logs(&a.take_events())
        .into_iter()
        .filter(|l| l.starts_with("0 ") || l.starts_with("25 "))
        .collect();
    assert_eq!(
        l,
        [
            "0 test.exec keep reload 22",
            "0 test.exec gone unban 192.0.2.1",
            "0 test.exec gone stop"
        ]
    );
    assert_eq!(a.names(), ["keep"]);
    a.ban(&ticket("192.0.2.2", &[]));
    assert!(logs(&a.take_events()).contains(&"0 test.exec keep ban2 192.0.2.2".to_string()));
    assert!(a.is_idle());
}

#[test]
fn reban_after_repair_uses_the_repaired_action() {
    // ban ok on both; then a ban on "a" fails, its check fails, the
    // repair works: "a" has a newer epoch than the first ticket.
    let mut a = Actions::scripted("j", vec![true, true, false, false, true, true, true, true]);
    for n in ["a", "b"] {
        a.add_action(n).unwrap();
        set(
            &mut a,
            n,
            &[
                ("actionban", &format!("{n} ban <ip>")),
                ("actioncheck", "check"),
                ("actionrepair", "repair"),
            ],
        );
    }
    a.ban(&ticket("192.0.2.1", &[]));
    a.ban(&ticket("192.0.2.2", &[]));
    assert_eq!(a.ban_epoch(), 1);
    a.take_events();
    assert_eq!(a.reban(&ticket("192.0.2.1", &[]), 0), 1);
    let l: Vec<String> = logs(&a.take_events())
        .into_iter()
        .filter(|l| l.starts_with("0 ") || l.starts_with("25 "))
        .collect();
    assert_eq!(
        l,
        [
            "25 fail2ban.actions [j] Reban 192.0.2.1, action 'a'",
            "0 test.exec a ban 192.0.2.1"
        ]
    );
    // Nothing repaired since the ticket's epoch: every action.
    a.reban(&ticket("192.0.2.2", &[]), 1);
    let l: Vec<String> = logs(&a.take_events())
        .into_iter()
        .filter(|l| l.starts_with("0 "))
        .collect();
    assert_eq!(l.len(), 2);
}

#[test]
fn consistency_checks_are_rate_limited() {
    let mut a = Actions::scripted("j", vec![]);
    a.add_action("a").unwrap();
    set(
        &mut a,
        "a",
        &[("actionban", "ban <ip>"), ("actioncheck", "check <family>")],
    );
    a.freeze_time(1000.0);
    a.ban(&ticket("192.0.2.1", &[]));
    a.consistency_check();
    a.consistency_check();
    a.freeze_time(1003.5);
    a.consistency_check();
    let checks = logs(&a.take_events())
        .iter()
        .filter(|l| l.contains("test.exec check"))
        .count();
    assert_eq!(checks, 2);
}

#[test]
fn configuration_errors_are_fail2ban_exceptions() {
    let mut a = Actions::scripted("j", vec![]);
    a.add_action("a").unwrap();
    let e = a.add_action("a").unwrap_err();
    assert_eq!(
        (e.py_type(), e.to_string()),
        ("ValueError", "Action a already exists".to_string())
    );
    let e = a.set_property("x", "k", PyValue::str("v")).unwrap_err();
    assert_eq!(
        (e.py_type(), e.to_string()),
        ("KeyError", "'Invalid Action name: x'".to_string())
    );
    let e = a.property("a", "port").unwrap_err();
    assert_eq!(
        e.to_string(),
        "'CommandAction' object has no attribute 'port'"
    );
    assert_eq!(a.property("a", "timeout").unwrap(), PyValue::Int(60));
    let e = a
        .add_python_action("smtp", "/etc/fail2ban/action.d/smtp.py")
        .unwrap_err();
    assert_eq!(e.py_type(), "RuntimeError");
    assert!(a.del_action("x").is_err());
    assert!(!a.wants_merged());
    set(&mut a, "a", &[("actionban", "mail <ipjailmatches>")]);
    assert!(a.wants_merged());
    a.del_action("a").unwrap();
    assert!(a.names().is_empty());
}
