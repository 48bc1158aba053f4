//! Following real files in temporary directories through the poll loop a
//! server runs: appends, partial lines, rotations, globs, encodings, seeks.

use super::*;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("f2b-logwatch-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub(super) fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn append(path: &str, text: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text).expect("append");
}

/// What the sink received.
#[derive(Default)]
pub(super) struct Rec {
    pub(super) lines: Vec<(String, String, String, bool)>,
    pub(super) dropped: Vec<String>,
    pub(super) dated: usize,
    /// How many lines had arrived at each [`LineSink::pause`].
    pub(super) pauses: Vec<usize>,
}

impl Rec {
    pub(super) fn texts(&self) -> Vec<String> {
        self.lines.iter().map(|l| l.2.clone()).collect()
    }
}

/// Lines starting with `YYYY-mm-dd HH:MM:SS` (local time) are dated.
pub(super) fn parse_date(line: &str) -> Option<f64> {
    let head = line.get(..19)?;
    let dt = chrono::NaiveDateTime::parse_from_str(head, "%Y-%m-%d %H:%M:%S").ok()?;
    use chrono::TimeZone;
    chrono::Local
        .from_local_datetime(&dt)
        .earliest()
        .map(|t| t.timestamp() as f64)
}

impl LineSink<String> for Rec {
    fn line(&mut self, jail: &String, path: &str, line: &str, in_operation: bool) {
        self.lines.push((
            jail.clone(),
            path.to_string(),
            line.to_string(),
            in_operation,
        ));
    }

    fn time_of(&mut self, _jail: &String, line: &str) -> Option<f64> {
        self.dated += 1;
        parse_date(line)
    }

    fn dropped(&mut self, _jail: &String, path: &str) {
        self.dropped.push(path.to_string());
    }

    fn pause(&mut self) {
        self.pauses.push(self.lines.len());
    }
}

pub(super) struct Harness {
    pub(super) w: LogWatch<String>,
    pub(super) rec: Rec,
}

pub(super) fn opts() -> PathOptions {
    PathOptions {
        tail: false,
        encoding: Encoding::Utf8,
        find_time: None,
        resume: None,
    }
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness {
            w: LogWatch::new().expect("inotify"),
            rec: Rec::default(),
        }
    }

    pub(super) fn jail(&mut self, name: &str, backend: Backend) {
        self.w
            .add_jail(name.to_string(), backend)
            .expect("new jail");
        self.w.set_active(&name.to_string(), true);
    }

    pub(super) fn add(&mut self, jail: &str, path: &str, o: PathOptions) -> Vec<Added> {
        self.w
            .add_path(&jail.to_string(), path, o)
            .expect("add path")
    }

    /// One turn of the server loop: waits for the inotify fd or the next
    /// deadline (at most `max`), then runs what is ready. Returns whether
    /// the fd was readable.
    pub(super) fn turn(&mut self, max: Duration) -> bool {
        let now = Instant::now();
        let wait = match self.w.next_deadline() {
            Some(t) => t.saturating_duration_since(now).min(max),
            None => max,
        };
        let ready = {
            let mut fds = [PollFd::new(self.w.fd(), PollFlags::POLLIN)];
            // round up: waking a little early would only spin
            let ms = wait.as_micros().div_ceil(1000) as u64;
            let n = poll(&mut fds, PollTimeout::try_from(ms).expect("timeout")).expect("poll");
            n > 0
        };
        if ready {
            self.w.on_ready(&mut self.rec);
        }
        self.w.on_timer(Instant::now(), &mut self.rec);
        ready
    }

    /// Runs the loop until `n` lines arrived in total or `max` passed.
    pub(super) fn until_lines(&mut self, n: usize, max: Duration) {
        let end = Instant::now() + max;
        while self.rec.lines.len() < n {
            let now = Instant::now();
            if now >= end {
                break;
            }
            self.turn(end - now);
        }
    }

    /// Runs the loop for `d`, whatever happens.
    pub(super) fn run_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            self.turn(end - now);
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);
const SETTLE: Duration = Duration::from_millis(300);

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn both_backends(test: impl Fn(Backend)) {
    test(Backend::Inotify);
    test(Backend::Polling);
}

#[test]
fn appended_lines_arrive_in_order_and_partial_lines_wait() {
    both_backends(|b| {
        let d = TempDir::new("append");
        let p = d.path("a.log");
        append(&p, b"one\ntwo\n");
        let mut h = Harness::new();
        h.jail("j", b);
        h.add("j", &p, opts());
        h.until_lines(2, WAIT);
        assert_eq!(h.rec.texts(), lines(&["one", "two"]), "{b:?}");
        // read while catching up with the file: not in operation yet
        assert!(h.rec.lines.iter().all(|l| !l.3));
        append(&p, b"three\n");
        h.until_lines(3, WAIT);
        append(&p, b"four\nfive\nsix\n");
        h.until_lines(6, WAIT);
        append(&p, b"sev");
        h.run_for(SETTLE);
        assert_eq!(
            h.rec.lines.len(),
            6,
            "{b:?}: a partial line is not handed over"
        );
        append(&p, b"en\n");
        h.until_lines(7, WAIT);
        assert_eq!(
            h.rec.texts(),
            lines(&["one", "two", "three", "four", "five", "six", "seven"]),
            "{b:?}"
        );
        assert!(h.rec.lines[2..].iter().all(|l| l.3), "{b:?}: in operation");
        assert!(h.rec.lines.iter().all(|l| l.0 == "j" && l.1 == p));
        let pos = h.w.position(&"j".to_string(), &p).unwrap();
        assert_eq!(pos.pos, fs::metadata(&p).unwrap().len(), "{b:?}");
        assert_eq!(pos.hash.len(), 40);
    });
}

#[test]
fn a_large_backlog_is_read_in_slices_with_a_pause_between_them() {
    both_backends(|b| {
        let d = TempDir::new("slices");
        let p = d.path("a.log");
        let text: String = (0..20_000)
            .map(|i| format!("2024-01-01 00:00:00 line {i:05} of a backlog\n"))
            .collect();
        append(&p, text.as_bytes());
        let line_len = text.len() / 20_000;
        let mut h = Harness::new();
        h.jail("j", b);
        h.add("j", &p, opts());
        h.until_lines(20_000, WAIT);
        let texts = h.rec.texts();
        assert!(
            texts
                .iter()
                .enumerate()
                .all(|(i, t)| t.ends_with(&format!("line {i:05} of a backlog")))
        );
        // a pause after every SLICE bytes (the line that crosses the
        // boundary included), none at the end of the file
        let per_slice = SLICE as usize / line_len + 1;
        let expected: Vec<usize> = (1..)
            .map(|k| k * per_slice)
            .take_while(|&n| n < 20_000)
            .collect();
        assert_eq!(h.rec.pauses, expected, "{b:?}");
    });
}

#[test]
fn first_line_hash_is_sha1_of_the_line_with_its_newline() {
    let d = TempDir::new("hash");
    let p = d.path("h.log");
    append(&p, b"first line\nsecond\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    let added = h.add("j", &p, opts());
    // sha1sum of "first line\n"
    assert_eq!(added[0].hash, "e32c72173d6151f438f6ff3a85c56a46ed99ca81");
    assert_eq!(added[0].pos, 0);
    let q = d.path("partial.log");
    append(&q, b"no newline yet");
    let added = h.add("j", &q, opts());
    assert_eq!(added[0].hash, "");
}

#[test]
fn line_ends_encodings_and_long_lines() {
    let d = TempDir::new("enc");
    let p = d.path("crlf.log");
    let big = "x".repeat(1 << 20);
    let mut content = b"dos\r\ndouble\r\r\n\r\nbad \xff\xfe utf8 \xe2\x82\n".to_vec();
    content.extend_from_slice(big.as_bytes());
    content.extend_from_slice(b"\nend\n");
    append(&p, &content);
    let l = d.path("latin.log");
    append(&l, b"caf\xe9\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add("j", &p, opts());
    h.add(
        "j",
        &l,
        PathOptions {
            encoding: Encoding::Latin1,
            ..opts()
        },
    );
    h.until_lines(7, WAIT);
    let got = h.rec.texts();
    assert_eq!(got.len(), 7);
    assert_eq!(
        &got[..4],
        &lines(&["dos", "double", "", "bad \u{fffd}\u{fffd} utf8 \u{fffd}"])
    );
    assert_eq!(got[4].len(), 1 << 20);
    assert_eq!(got[5], "end");
    assert_eq!(got[6], "caf\u{e9}");
    // a big line written in pieces is handed over once, complete
    append(&p, &big.as_bytes()[..300_000]);
    h.run_for(SETTLE);
    assert_eq!(h.rec.lines.len(), 7);
    append(&p, &big.as_bytes()[300_000..]);
    append(&p, b"\n");
    h.until_lines(8, WAIT);
    assert_eq!(h.rec.lines[7].2, big);
}

#[test]
fn tail_starts_at_the_end_head_at_the_start() {
    let d = TempDir::new("tail");
    let p = d.path("t.log");
    append(&p, b"old1\nold2\n");
    let mut h = Harness::new();
    h.jail("head", Backend::Inotify);
    h.jail("tail", Backend::Inotify);
    let a = h.add(
        "tail",
        &p,
        PathOptions {
            tail: true,
            ..opts()
        },
    );
    assert_eq!(a[0].pos, 10);
    h.add("head", &p, opts());
    h.until_lines(2, WAIT);
    append(&p, b"new\n");
    h.until_lines(4, WAIT);
    h.run_for(SETTLE);
    let by = |j: &str| -> Vec<(String, bool)> {
        h.rec
            .lines
            .iter()
            .filter(|l| l.0 == j)
            .map(|l| (l.2.clone(), l.3))
            .collect()
    };
    assert_eq!(
        by("head"),
        vec![
            ("old1".into(), false),
            ("old2".into(), false),
            ("new".into(), true)
        ]
    );
    assert_eq!(by("tail"), vec![("new".into(), true)]);
}

#[test]
fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    both_backends(|b| {
        let d = TempDir::new("rename");
        let p = d.path("r.log");
        let old = d.path("r.log.1");
        append(&p, b"a1\n");
        let mut h = Harness::new();
        h.jail("j", b);
        h.add("j", &p, opts());
        h.until_lines(1, WAIT);
        // the writer still has the old file open: lines written before and
        // after the rename, before it reopens, land in the old file
        let mut writer = OpenOptions::new().append(true).open(&p).unwrap();
        writer.write_all(b"a2\n").unwrap();
        fs::rename(&p, &old).unwrap();
        writer.write_all(b"a3\n").unwrap();
        append(&p, b"b1\n");
        h.until_lines(4, WAIT);
        writer.write_all(b"a4\n").unwrap();
        append(&p, b"b2\n");
        h.until_lines(6, WAIT);
        assert_eq!(
            h.rec.texts(),
            lines(&["a1", "a2", "a3", "b1", "a4", "b2"]),
            "{b:?}"
        );
        let pos = h.w.position(&"j".to_string(), &p).unwrap();
        assert_eq!(pos.pos, 6, "{b:?}: the position is the new file's");
    });
}

#[test]
fn copytruncate_restarts_at_zero() {
    both_backends(|b| {
        let d = TempDir::new("trunc");
        let p = d.path("c.log");
        append(&p, b"line one\nline two\n");
        let mut h = Harness::new();
        h.jail("j", b);
        h.add("j", &p, opts());
        h.until_lines(2, WAIT);
        fs::copy(&p, d.path("c.log.1")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        h.run_for(SETTLE);
        append(&p, b"after\n");
        h.until_lines(3, WAIT);
        assert_eq!(
            h.rec.texts(),
            lines(&["line one", "line two", "after"]),
            "{b:?}"
        );
    });
}

#[test]
fn truncated_and_refilled_before_the_next_read_is_noticed_by_its_hash() {
    let d = TempDir::new("rewrite");
    let p = d.path("w.log");
    append(&p, b"first\nsecond\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Polling);
    h.add("j", &p, opts());
    h.until_lines(2, WAIT);
    // rewritten in place, longer than before, between two polls
    fs::write(&p, b"other\nlonger content\n").unwrap();
    h.until_lines(4, WAIT);
    assert_eq!(
        h.rec.texts(),
        lines(&["first", "second", "other", "longer content"])
    );
}

#[test]
fn deleted_and_recreated_file_is_followed_again() {
    both_backends(|b| {
        let d = TempDir::new("delete");
        let p = d.path("d.log");
        append(&p, b"x1\n");
        let mut h = Harness::new();
        h.jail("j", b);
        h.add("j", &p, opts());
        h.until_lines(1, WAIT);
        append(&p, b"x2\n");
        fs::remove_file(&p).unwrap();
        h.run_for(SETTLE);
        append(&p, b"y1\n");
        h.until_lines(3, WAIT);
        assert_eq!(h.rec.texts(), lines(&["x1", "x2", "y1"]), "{b:?}");
        assert_eq!(h.w.paths(&"j".to_string()), vec![p.clone()]);
    });
}

#[test]
fn glob_follows_files_that_appear_later() {
    both_backends(|b| {
        let d = TempDir::new("glob");
        append(&d.path("a.log"), b"a\n");
        append(&d.path("skip.txt"), b"no\n");
        let mut h = Harness::new();
        h.jail("j", b);
        let pattern = d.path("*.log");
        let added = h.add("j", &pattern, opts());
        assert_eq!(added.len(), 1);
        h.until_lines(1, WAIT);
        append(&d.path("b.log"), b"b1\nb2\n");
        append(&d.path(".hidden.log"), b"hidden\n");
        append(&d.path("other.txt"), b"other\n");
        h.until_lines(3, WAIT);
        h.run_for(SETTLE);
        assert_eq!(h.rec.texts(), lines(&["a", "b1", "b2"]), "{b:?}");
        assert_eq!(
            h.w.paths(&"j".to_string()),
            vec![d.path("a.log"), d.path("b.log")]
        );
        // a rotated copy of a followed file is not followed a second time
        fs::rename(d.path("a.log"), d.path("a.old.log")).unwrap();
        append(&d.path("a.log"), b"a2\n");
        h.until_lines(4, WAIT);
        h.run_for(SETTLE);
        assert_eq!(h.rec.texts()[3], "a2");
        assert_eq!(h.rec.lines.len(), 4, "{b:?}");
        assert!(h.w.remove_path(&"j".to_string(), &pattern));
        assert!(h.w.paths(&"j".to_string()).is_empty());
    });
}

#[test]
fn several_files_and_jails() {
    let d = TempDir::new("multi");
    let (p, q) = (d.path("p.log"), d.path("q.log"));
    append(&p, b"");
    append(&q, b"");
    let mut h = Harness::new();
    h.jail("j1", Backend::Inotify);
    h.jail("j2", Backend::Polling);
    h.add("j1", &p, opts());
    h.add("j1", &q, opts());
    h.add("j2", &p, opts());
    append(&p, b"p1\n");
    append(&q, b"q1\n");
    h.until_lines(3, WAIT);
    h.run_for(SETTLE);
    let mut got: Vec<(String, String)> = h
        .rec
        .lines
        .iter()
        .map(|l| (l.0.clone(), l.2.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("j1".into(), "p1".into()),
            ("j1".into(), "q1".into()),
            ("j2".into(), "p1".into())
        ]
    );
    // removing one jail's watch leaves the other's working
    assert!(h.w.remove_path(&"j1".to_string(), &p));
    append(&p, b"p2\n");
    h.until_lines(4, WAIT);
    h.run_for(SETTLE);
    assert_eq!(h.rec.lines.len(), 4);
    assert_eq!(h.rec.lines[3].0, "j2");
    assert!(matches!(
        h.w.add_path(&"j2".to_string(), &p, opts()),
        Err(AddError::AlreadyFollowed(_))
    ));
    let missing = d.path("none.log");
    let err =
        h.w.add_path(&"j2".to_string(), &missing, opts())
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("[Errno 2] No such file or directory: '{missing}'")
    );
}

#[test]
fn inactive_jail_reads_nothing_until_started() {
    let d = TempDir::new("inactive");
    let p = d.path("i.log");
    append(&p, b"before\n");
    let mut h = Harness::new();
    h.w.add_jail("j".to_string(), Backend::Inotify).unwrap();
    h.add("j", &p, opts());
    append(&p, b"while stopped\n");
    h.run_for(SETTLE);
    assert!(h.rec.lines.is_empty());
    assert_eq!(h.w.next_deadline(), None);
    h.w.set_active(&"j".to_string(), true);
    h.until_lines(2, WAIT);
    assert_eq!(h.rec.texts(), lines(&["before", "while stopped"]));
}

#[test]
fn initial_seek_skips_lines_older_than_findtime() {
    let d = TempDir::new("seek");
    let p = d.path("s.log");
    let now = crate::mytime::now();
    let mut text = String::new();
    // 3 hours of lines, one a minute, with undated lines in between
    for i in (0..180).rev() {
        let t = now - 60.0 * i as f64 - 30.0;
        let stamp = crate::mytime::format_local(t, "%Y-%m-%d %H:%M:%S");
        text.push_str(&format!("{stamp} line {i}\n"));
        if i % 7 == 0 {
            text.push_str("  continuation without a date\n");
        }
    }
    append(&p, text.as_bytes());
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add(
        "j",
        &p,
        PathOptions {
            find_time: Some(600.0),
            ..opts()
        },
    );
    h.run_for(SETTLE);
    let got = h.rec.texts();
    let first_dated = got.iter().find_map(|l| parse_date(l)).unwrap();
    assert!(
        first_dated >= now - 600.0 - 60.0,
        "starts near now - findtime: {:?}",
        got.first()
    );
    assert!(
        got.len() >= 10 && got.len() <= 14,
        "{} lines: {got:?}",
        got.len()
    );
    assert!(
        got.iter()
            .rev()
            .find(|l| parse_date(l).is_some())
            .unwrap()
            .ends_with("line 0")
    );
    // bisection: far fewer dates looked at than lines in the file
    assert!(h.rec.dated < 60, "{} dates parsed", h.rec.dated);
}

#[test]
fn database_position_is_used_only_for_the_same_first_line() {
    let d = TempDir::new("resume");
    let p = d.path("db.log");
    append(&p, b"head line\nsecond\nthird\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    let hash = h.add("j", &p, opts())[0].hash.clone();
    h.w.remove_path(&"j".to_string(), &p);
    let resume = |hash: &str, pos| PathOptions {
        resume: Some(Position {
            hash: hash.to_string(),
            pos,
        }),
        ..opts()
    };
    assert_eq!(h.add("j", &p, resume(&hash, 17))[0].pos, 17);
    h.until_lines(1, WAIT);
    assert_eq!(h.rec.texts(), lines(&["third"]));
    h.w.remove_path(&"j".to_string(), &p);
    assert_eq!(h.add("j", &p, resume("0000", 17))[0].pos, 0);
    h.w.remove_path(&"j".to_string(), &p);
    // the stored position lies past the end (file shortened while down)
    let added = h.add("j", &p, resume(&hash, 1000));
    assert_eq!(added[0].pos, 1000);
    h.rec.lines.clear();
    h.until_lines(3, WAIT);
    assert_eq!(h.rec.texts(), lines(&["head line", "second", "third"]));
}

#[test]
fn idle_inotify_watch_sleeps_until_a_write() {
    let d = TempDir::new("idle");
    let p = d.path("idle.log");
    append(&p, b"x\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add("j", &p, opts());
    h.until_lines(1, WAIT);
    assert_eq!(h.w.next_deadline(), None, "no timer while idle");
    let writer_path = p.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        append(&writer_path, b"wake\n");
    });
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    // one turn with a long timeout: it must end because of the write
    let ready = h.turn(Duration::from_secs(30));
    let waited = t0.elapsed();
    let cpu = cpu_time() - cpu0;
    writer.join().unwrap();
    println!("idle turn: woken after {waited:?} by the write at 700 ms, thread cpu {cpu:?}");
    assert!(ready, "woken by the inotify fd");
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        cpu < Duration::from_millis(50),
        "cpu while waiting: {cpu:?}"
    );
    assert_eq!(h.rec.texts(), lines(&["x", "wake"]));
}

/// CPU time of this thread.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero timespec is valid for clock_gettime to fill in.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn polling_wakes_at_growing_intervals() {
    let d = TempDir::new("pollclock");
    let p = d.path("p.log");
    append(&p, b"");
    let mut h = Harness::new();
    h.jail("j", Backend::Polling);
    h.add("j", &p, opts());
    let mut now = Instant::now();
    h.w.on_timer(now, &mut h.rec);
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let t = h.w.next_deadline().expect("polling has a timer");
        gaps.push(((t - now).as_secs_f64() * 1000.0).round() as u64);
        now = t;
        h.w.on_timer(now, &mut h.rec);
    }
    assert_eq!(gaps, vec![200, 400, 600, 800, 200, 400]);
    // a change starts the cycle again
    append(&p, b"x\n");
    h.w.on_timer(h.w.next_deadline().unwrap(), &mut h.rec);
    assert_eq!(h.rec.texts(), lines(&["x"]));
}

#[test]
fn polling_gives_a_vanished_file_up_after_fifty_failures() {
    let d = TempDir::new("drop");
    let p = d.path("gone.log");
    append(&p, b"last words\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Polling);
    h.add("j", &p, opts());
    let mut now = Instant::now();
    h.w.on_timer(now, &mut h.rec);
    fs::remove_file(&p).unwrap();
    // failures count once per 2 s, as fail2ban sleeps after each one
    let mut seconds = 0.0;
    while h.rec.dropped.is_empty() && seconds < 200.0 {
        now += Duration::from_millis(100);
        seconds += 0.1;
        h.w.on_timer(now, &mut h.rec);
    }
    assert_eq!(h.rec.dropped, vec![p.clone()]);
    assert!(
        (100.0..103.0).contains(&seconds),
        "dropped after {seconds} s"
    );
    assert!(h.w.paths(&"j".to_string()).is_empty());
    assert_eq!(h.rec.texts(), lines(&["last words"]));
    assert_eq!(h.w.next_deadline(), None);
}

#[test]
fn rotated_file_is_read_for_a_grace_time_then_closed() {
    let d = TempDir::new("grace");
    let p = d.path("g.log");
    append(&p, b"a1\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add("j", &p, opts());
    h.until_lines(1, WAIT);
    let mut old = OpenOptions::new().append(true).open(&p).unwrap();
    fs::rename(&p, d.path("g.log.1")).unwrap();
    append(&p, b"b1\n");
    h.until_lines(2, WAIT);
    let id = h.w.jails[&"j".to_string()].files[&p];
    assert_eq!(h.w.follows[id].as_ref().unwrap().retired.len(), 1);
    let deadline = h.w.next_deadline().expect("the end of the grace time");
    assert!(deadline > Instant::now() + Duration::from_secs(50));
    // written to the old file: read at the latest when the grace time ends
    old.write_all(b"a2\n").unwrap();
    h.w.on_timer(deadline, &mut h.rec);
    assert_eq!(h.rec.texts(), lines(&["a1", "b1", "a2"]));
    assert!(h.w.follows[id].as_ref().unwrap().retired.is_empty());
    assert_eq!(h.w.next_deadline(), None);
    old.write_all(b"a3\n").unwrap();
    h.run_for(SETTLE);
    assert_eq!(h.rec.lines.len(), 3, "closed: no longer read");
}

#[test]
fn a_large_backlog_is_read_in_slices() {
    let d = TempDir::new("backlog");
    let p = d.path("big.log");
    let mut text = Vec::new();
    let n = 120_000;
    for i in 0..n {
        text.extend_from_slice(format!("{i:0>99}\n").as_bytes());
    }
    append(&p, &text);
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add("j", &p, opts());
    let now = Instant::now();
    h.w.on_timer(now, &mut h.rec);
    let first = h.rec.lines.len();
    assert!(first > 0 && first < n, "{first} lines in the first slice");
    assert!(h.w.next_deadline().is_some_and(|t| t <= Instant::now()));
    h.until_lines(n, WAIT);
    assert_eq!(h.rec.lines.len(), n);
    assert!(
        h.rec
            .lines
            .iter()
            .enumerate()
            .all(|(i, l)| l.2 == format!("{i:0>99}"))
    );
    assert!(!h.rec.lines[n - 2].3 && h.w.follows[0].as_ref().unwrap().in_operation);
}

#[test]
fn a_directory_is_not_a_log_file() {
    let d = TempDir::new("isdir");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    let sub = d.path("sub");
    fs::create_dir(&sub).unwrap();
    let err = h.w.add_path(&"j".to_string(), &sub, opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("[Errno 21] Is a directory: '{sub}'")
    );
}

#[test]
fn encoding_change_applies_to_the_next_lines() {
    let d = TempDir::new("setenc");
    let p = d.path("e.log");
    append(&p, b"caf\xe9\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add("j", &p, opts());
    h.until_lines(1, WAIT);
    h.w.set_encoding(&"j".to_string(), Encoding::lookup("latin-1").unwrap());
    append(&p, b"caf\xe9\n");
    h.until_lines(2, WAIT);
    assert_eq!(h.rec.texts(), lines(&["caf\u{fffd}", "caf\u{e9}"]));
    h.w.remove_jail(&"j".to_string());
    assert!(h.w.paths(&"j".to_string()).is_empty());
    assert!(h.w.file_wds.is_empty() && h.w.dirs.is_empty() && h.w.dir_wds.is_empty());
}

#[test]
fn vanished_directory_is_found_again() {
    let d = TempDir::new("dir");
    let sub = d.path("sub");
    fs::create_dir(&sub).unwrap();
    let p = format!("{sub}/v.log");
    append(&p, b"v1\n");
    let mut h = Harness::new();
    h.jail("j", Backend::Inotify);
    h.add("j", &p, opts());
    h.until_lines(1, WAIT);
    fs::remove_dir_all(&sub).unwrap();
    h.run_for(SETTLE);
    assert!(h.w.next_deadline().is_some(), "the directory is looked for");
    fs::create_dir(&sub).unwrap();
    append(&p, b"v2\n");
    h.until_lines(2, WAIT);
    assert_eq!(h.rec.texts(), lines(&["v1", "v2"]));
}

#[test]
fn backends_resolve_like_fail2ban() {
    assert_eq!(select_backend("auto").unwrap().backend, Backend::Inotify);
    assert_eq!(select_backend("PyInotify").unwrap().name, "pyinotify");
    let g = select_backend("gamin").unwrap();
    assert_eq!(g.backend, Backend::Polling);
    assert!(
        g.fallback
            .unwrap()
            .1
            .contains("'polling' backend whenever 'gamin'")
    );
    assert!(
        select_backend("systemd")
            .unwrap_err()
            .contains("not supported")
    );
    assert_eq!(
        select_backend("foo").unwrap_err(),
        "Unknown backend foo. Must be among ['pyinotify', 'gamin', 'polling', 'systemd'] or 'auto'"
    );
}
