//! Following the jails' log files (fail2ban's file backends: `FileFilter`
//! with `FilterPyinotify` or `FilterPoll`), driven by the server's single
//! poll loop.
//!
//! # Interface
//!
//! One [`LogWatch`] serves the whole server: it owns one inotify
//! descriptor for every jail, so the core polls a single fd ([`LogWatch::fd`])
//! and one deadline ([`LogWatch::next_deadline`]) whatever the number of
//! jails. Jails are identified by the core's own key `J` (a name or an
//! index) and each has its backend:
//!
//! ```text
//! let mut w = LogWatch::new()?;
//! w.add_jail(jail, Backend::Inotify)?;          // `add <jail> <backend>`
//! w.add_path(&jail, "/var/log/auth.log", opts)?; // `addlogpath`
//! w.set_active(&jail, true);                      // `start`, idle off
//! loop {
//!     poll([w.fd(), ...], until w.next_deadline());
//!     if fd readable { w.on_ready(&mut sink) }
//!     w.on_timer(Instant::now(), &mut sink);
//! }
//! ```
//!
//! Lines reach the core through its [`LineSink`]: each complete line, in
//! file order, without its terminator, decoded with the path's encoding
//! (invalid bytes replaced), with the log's "in operation" flag. The sink
//! also answers the date of a line ([`LineSink::time_of`], the jail's date
//! detector) for the initial seek to `now - findtime`. Read positions and
//! first-line hashes ([`LogWatch::position`], [`PathOptions::resume`]) are
//! what fail2ban stores in its `logs` table.
//!
//! # Semantics
//!
//! As fail2ban: a line is handed over only once its `\n` is there; lines
//! end at `\n` and lose every trailing `\r`/`\n`; `head` logs start at 0 (or
//! at the stored position when the stored first-line hash matches) and their
//! first read bisects to `now - findtime`; `tail` logs start at the end; a
//! head log is "in operation" once its end was reached; rotation is a new
//! file at the path, a file shorter than the position, or a changed SHA-1 of
//! the first line, after which the new file is read from its start and
//! `Log rotation detected for ...` is logged (when the old file had a hash);
//! the polling backend stats at fail2ban's growing intervals (0.2 s steps
//! up to the 2 s `sleeptime`) and drops a file after 50 failed stats
//! (counted once per 2 s, as fail2ban pauses after each); the inotify
//! backend logs fail2ban's absence/presence messages.
//!
//! Deliberate differences, each fixing a weakness of fail2ban:
//! - files stay open, so when a file is renamed, deleted or replaced, the
//!   lines still unread in it (and those its writer adds during the next
//!   60 s, before it reopens its log) are read before and after switching
//!   to the new file; fail2ban loses them;
//! - a rotation always restarts at 0 and takes the new inode (fail2ban keeps
//!   the old position and inode when the old file had no complete first
//!   line, then skips the start of the new file or reports a second
//!   rotation later);
//! - a short first line is rehashed on every read, so a file rewritten in
//!   place is noticed at once rather than within 30 s;
//! - the inotify backend needs no timer while idle: a missing file is waited
//!   for through its directory's events (fail2ban re-checks it every 0.2 to
//!   60 s); only a vanished directory is retried on a timer;
//! - a line that ends with a lone `\r` at the end of the file waits for its
//!   `\n` (fail2ban hands it over and later an extra empty line);
//! - a pattern with wildcards in its file name (`/var/log/app/*.log`) is
//!   watched: files that appear later are followed from their start
//!   (fail2ban's client expands globs once, when the configuration is read);
//! - a large backlog is read in slices of [`READ_BUDGET`] bytes, leaving
//!   the loop free for other work in between.

mod container;
pub mod encoding;
mod seek;

#[cfg(test)]
mod difftest;
#[cfg(test)]
mod tests;

use container::{Container, Rotation};
use encoding::DecodeWarnings;
pub use encoding::Encoding;
use indexmap::IndexMap;
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// Bytes of one log read in one go before the loop gets control back.
pub const READ_BUDGET: u64 = 8 << 20;
/// Bytes read between two [`LineSink::pause`] calls.
pub const SLICE: u64 = 16 << 10;
/// fail2ban's `sleeptime`: the polling cycle, and the pause after an error.
const SLEEP_TIME: f64 = 2.0;
/// fail2ban's polling step (`DEFAULT_SLEEP_INTERVAL`).
const SLEEP_STEP: f64 = 0.2;
/// Consecutive failed stats after which the polling backend gives a file up.
const MAX_STAT_ERRORS: u32 = 50;
/// How long a renamed or deleted log is still read after it was replaced.
const ROTATED_GRACE: Duration = Duration::from_secs(60);
/// Rotated files kept open per log at most.
const MAX_RETIRED: usize = 4;
/// Longest wait between two looks for a vanished directory.
const MAX_RETRY: f64 = 60.0;

const T_FILTER: &str = "fail2ban.filter";
const T_POLL: &str = "fail2ban.filterpoll";
const T_INOTIFY: &str = "fail2ban.filterpyinotify";

/// How a jail notices that its logs changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// inotify (fail2ban's `pyinotify`, and what `auto` selects).
    Inotify,
    /// `stat()` at fail2ban's polling intervals.
    Polling,
}

/// The backend a jail's `backend` option selects (fail2ban's
/// `Jail._setBackend`), given without its `[...]` options.
#[derive(Debug, PartialEq, Eq)]
pub struct BackendChoice {
    pub backend: Backend,
    /// The name fail2ban reports (`pyinotify`, `polling`).
    pub name: &'static str,
    /// Set when the requested backend was not available and a later one
    /// was taken: fail2ban's ERROR and WARNING texts, to be logged.
    pub fallback: Option<(String, String)>,
}

/// Resolves a backend name as fail2ban 1.0.2 does: `auto` and `pyinotify`
/// give inotify, `gamin` (never available) falls through to polling,
/// `polling` is polling; `systemd` is not supported by this server.
pub fn select_backend(name: &str) -> Result<BackendChoice, String> {
    const KNOWN: [&str; 4] = ["pyinotify", "gamin", "polling", "systemd"];
    let lower = name.to_lowercase();
    match lower.as_str() {
        "auto" | "pyinotify" => Ok(BackendChoice {
            backend: Backend::Inotify,
            name: "pyinotify",
            fallback: None,
        }),
        "polling" => Ok(BackendChoice {
            backend: Backend::Polling,
            name: "polling",
            fallback: None,
        }),
        "gamin" => Ok(BackendChoice {
            backend: Backend::Polling,
            name: "polling",
            fallback: Some((
                "Backend 'gamin' failed to initialize due to No module named 'gamin'".into(),
                "Could only initiated 'polling' backend whenever 'gamin' was requested".into(),
            )),
        }),
        "systemd" => Err(
            "Backend 'systemd' is not supported by this fail2ban: use a file backend \
             (auto, pyinotify or polling) with a logpath"
                .into(),
        ),
        _ => Err(format!(
            "Unknown backend {lower}. Must be among {} or 'auto'",
            crate::pyvalue::PyValue::str_list(KNOWN).repr()
        )),
    }
}

/// A followed file's place, as fail2ban's database keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// SHA-1 (hex) of the first line with its terminator; empty while the
    /// file has no complete line.
    pub hash: String,
    /// Offset of the first byte not yet read as part of a complete line.
    pub pos: u64,
}

/// How a path is followed.
#[derive(Clone, Debug)]
pub struct PathOptions {
    /// Start at the end of the file (`tail`) rather than its start (`head`).
    pub tail: bool,
    pub encoding: Encoding,
    /// For a `head` log: the jail's findtime; the first read skips lines
    /// older than `now - findtime` (by bisection). `None`: no such seek.
    pub find_time: Option<f64>,
    /// The position stored in the database for this jail and path; used
    /// (for a `head` log) when its hash is the file's current one. Ignored
    /// for a pattern (see [`LogWatch::set_position`]).
    pub resume: Option<Position>,
}

/// A file that `add_path` started following.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    pub path: String,
    pub pos: u64,
    pub hash: String,
}

/// Why `add_path` failed.
#[derive(Debug)]
pub enum AddError {
    /// The jail was never added with [`LogWatch::add_jail`].
    UnknownJail,
    /// The jail already follows this path (fail2ban logs `<path> already
    /// exists` and goes on).
    AlreadyFollowed(String),
    /// The file could not be opened (fail2ban's reply is this `IOError`).
    Open { path: String, error: io::Error },
    /// A pattern matched nothing and its directory cannot be watched.
    NoMatch(String),
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddError::UnknownJail => f.write_str("unknown jail"),
            AddError::AlreadyFollowed(p) => write!(f, "{p} already exists"),
            AddError::Open { path, error } => f.write_str(&py_os_error(error, path)),
            AddError::NoMatch(p) => write!(f, "No file(s) found for glob {p}"),
        }
    }
}

impl std::error::Error for AddError {}

/// Python's text of an `OSError` about `path`:
/// `[Errno 2] No such file or directory: '/x'`.
pub fn py_os_error(e: &io::Error, path: &str) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text)
                .to_string();
            format!("[Errno {code}] {text}: {}", crate::pyvalue::str_repr(path))
        }
        None => e.to_string(),
    }
}

/// Where the lines go: implemented by the server core.
pub trait LineSink<J> {
    /// A complete line of `path`, followed for `jail`; `in_operation` is
    /// false while a `head` log is still being caught up with.
    fn line(&mut self, jail: &J, path: &str, line: &str, in_operation: bool);

    /// The time of `line` by the jail's date detector (`None`: no date);
    /// asked only during the initial seek of a `head` log.
    fn time_of(&mut self, jail: &J, line: &str) -> Option<f64>;

    /// The polling backend gave `path` up after too many failed stats.
    fn dropped(&mut self, jail: &J, path: &str);

    /// A slice of [`SLICE`] bytes was read: the owner may do what must not
    /// wait for the end of a large backlog (start the bans just decided).
    fn pause(&mut self) {}
}

/// fail2ban's polling rhythm: stat, then wait 0.2 s, 0.4 s, ... until the
/// 2 s cycle is over; start again after a change or at the end of a cycle.
struct PollClock {
    next: Instant,
    step: f64,
    elapsed: f64,
}

impl PollClock {
    fn new() -> PollClock {
        PollClock {
            next: Instant::now(),
            step: 0.0,
            elapsed: 0.0,
        }
    }

    fn advance(&mut self, now: Instant, changed: bool) {
        if changed || self.elapsed >= SLEEP_TIME {
            self.step = 0.0;
            self.elapsed = 0.0;
        }
        self.step = (self.step + SLEEP_STEP).min(SLEEP_TIME);
        self.elapsed += self.step;
        self.next = now + Duration::from_secs_f64(self.step);
    }
}

/// A pattern whose later matches are followed too.
struct Glob {
    pattern: String,
    /// Directory as written in the pattern, and its key in `dirs`.
    dir: String,
    dir_key: String,
    name: String,
    opts: PathOptions,
    /// Polling: the directory's last (mtime, ino).
    stamp: Option<(i64, i64, u64)>,
}

struct Jail {
    backend: Backend,
    active: bool,
    files: IndexMap<String, usize>,
    globs: Vec<Glob>,
    poll: PollClock,
}

/// A renamed, deleted or replaced file still read for a while.
struct Retired {
    cont: Container,
    wd: Option<WatchDescriptor>,
    until: Instant,
}

/// One path followed for one jail.
struct Follow<J> {
    jail: J,
    path: String,
    dir_key: String,
    name: String,
    inotify: bool,
    encoding: Encoding,
    cur: Container,
    wd: Option<WatchDescriptor>,
    retired: Vec<Retired>,
    /// Pending initial seek: the findtime.
    seek: Option<f64>,
    in_operation: bool,
    /// When this file should be looked at (an event, a start, more data).
    due: Option<Instant>,
    missing: bool,
    /// What the last event said about the file (for the absence message).
    reason: Option<String>,
    /// inotify: the presence message of the first read is still to come.
    greet: bool,
    /// Polling: last (mtime s, mtime ns, ino, size), failed stats and
    /// when the last one was counted.
    stamp: Option<(i64, i64, u64, u64)>,
    errors: u32,
    error_at: Option<Instant>,
    /// The pattern this file was found by, if any.
    glob: Option<String>,
}

/// A watched directory (inotify jails only).
struct Dir {
    wd: Option<WatchDescriptor>,
    /// Follows by file name.
    names: HashMap<String, Vec<usize>>,
    /// Follows plus globs using this directory.
    users: usize,
    /// The directory vanished: next look and back-off.
    retry: Option<(Instant, f64)>,
}

/// The log files of all jails, followed.
pub struct LogWatch<J> {
    inotify: Inotify,
    jails: IndexMap<J, Jail>,
    follows: Vec<Option<Follow<J>>>,
    file_wds: HashMap<WatchDescriptor, Vec<usize>>,
    dirs: HashMap<String, Dir>,
    dir_wds: HashMap<WatchDescriptor, String>,
    warnings: DecodeWarnings,
}

fn file_mask() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DELETE_SELF
}

fn dir_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// The names of the event bits, as pyinotify prints a mask.
fn mask_name(mask: AddWatchFlags) -> String {
    const NAMES: [(AddWatchFlags, &str); 10] = [
        (AddWatchFlags::IN_MODIFY, "IN_MODIFY"),
        (AddWatchFlags::IN_ATTRIB, "IN_ATTRIB"),
        (AddWatchFlags::IN_MOVED_FROM, "IN_MOVED_FROM"),
        (AddWatchFlags::IN_MOVED_TO, "IN_MOVED_TO"),
        (AddWatchFlags::IN_CREATE, "IN_CREATE"),
        (AddWatchFlags::IN_DELETE, "IN_DELETE"),
        (AddWatchFlags::IN_DELETE_SELF, "IN_DELETE_SELF"),
        (AddWatchFlags::IN_MOVE_SELF, "IN_MOVE_SELF"),
        (AddWatchFlags::IN_IGNORED, "IN_IGNORED"),
        (AddWatchFlags::IN_ISDIR, "IN_ISDIR"),
    ];
    NAMES
        .iter()
        .filter(|(bit, _)| mask.contains(*bit))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join("|")
}

/// `os.path.split` of a path: directory as written (may be empty) and name.
fn split_path(path: &str) -> (&str, &str) {
    let i = path.rfind('/').map_or(0, |i| i + 1);
    let head = &path[..i];
    let dir = if !head.is_empty() && !head.bytes().all(|b| b == b'/') {
        head.trim_end_matches('/')
    } else {
        head
    };
    (dir, &path[i..])
}

/// The directory to watch for a directory part as written.
fn dir_key(dir: &str) -> String {
    if dir.is_empty() {
        ".".to_string()
    } else {
        dir.to_string()
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Whether a directory entry is a match of a glob's name part (Python's
/// `glob` skips hidden names unless the pattern itself starts with a dot).
fn glob_matches(pattern: &str, name: &str) -> bool {
    (!name.starts_with('.') || pattern.starts_with('.'))
        && crate::config::glob::fnmatch(name, pattern)
}

/// The (UTF-8) names in a directory, in directory order.
fn dir_names(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn stamp_of(m: &std::fs::Metadata) -> (i64, i64, u64, u64) {
    (m.mtime(), m.mtime_nsec(), m.ino(), m.size())
}

/// A raw line (with its terminator) as the text fail2ban processes.
fn line_text<'a>(
    warnings: &mut DecodeWarnings,
    path: &str,
    enc: Encoding,
    raw: &'a [u8],
) -> Cow<'a, str> {
    match warnings.decode(path, enc, raw) {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_end_matches(['\r', '\n'])),
        Cow::Owned(mut s) => {
            let keep = s.trim_end_matches(['\r', '\n']).len();
            s.truncate(keep);
            Cow::Owned(s)
        }
    }
}

/// Reads complete lines of one container into the sink; returns whether
/// its end was reached.
#[allow(clippy::too_many_arguments)]
fn deliver<J>(
    warnings: &mut DecodeWarnings,
    jail: &J,
    path: &str,
    enc: Encoding,
    in_operation: bool,
    cont: &mut Container,
    budget: u64,
    sink: &mut dyn LineSink<J>,
) -> bool {
    let start = cont.pos();
    loop {
        let read = cont.pos() - start;
        let mut each = |raw: &[u8]| {
            let text = line_text(warnings, path, enc, raw);
            sink.line(jail, path, &text, in_operation);
        };
        match cont.read_lines(SLICE.min(budget.saturating_sub(read)), &mut each) {
            Ok(true) => return true,
            Ok(false) if cont.pos() - start > budget => return false,
            Ok(false) => sink.pause(),
            Err(e) => {
                log::error!(target: T_FILTER, "Unable to read {path}: {}", py_os_error(&e, path));
                return true;
            }
        }
    }
}

impl<J: Clone + Eq + Hash + fmt::Debug> LogWatch<J> {
    /// A watcher following nothing yet (one inotify instance).
    pub fn new() -> io::Result<LogWatch<J>> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        Ok(LogWatch {
            inotify,
            jails: IndexMap::new(),
            follows: Vec::new(),
            file_wds: HashMap::new(),
            dirs: HashMap::new(),
            dir_wds: HashMap::new(),
            warnings: DecodeWarnings::default(),
        })
    }

    /// The descriptor to poll for readability; then call [`Self::on_ready`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Registers a jail (inactive: its logs are read once it is activated).
    /// Fails when the jail is already registered.
    pub fn add_jail(&mut self, jail: J, backend: Backend) -> Result<(), String> {
        if self.jails.contains_key(&jail) {
            return Err(format!("jail {jail:?} already watched"));
        }
        self.jails.insert(
            jail,
            Jail {
                backend,
                active: false,
                files: IndexMap::new(),
                globs: Vec::new(),
                poll: PollClock::new(),
            },
        );
        Ok(())
    }

    /// Stops following every log of the jail and forgets it.
    pub fn remove_jail(&mut self, jail: &J) {
        let Some(j) = self.jails.get(jail) else {
            return;
        };
        let paths: Vec<String> = j.files.keys().cloned().collect();
        let globs: Vec<String> = j.globs.iter().map(|g| g.pattern.clone()).collect();
        for g in globs {
            self.remove_glob(jail, &g);
        }
        for p in paths {
            self.remove_path(jail, &p);
        }
        self.jails.shift_remove(jail);
    }

    /// Starts (`true`) or pauses (`false`: stopped or idle) the reading of a
    /// jail's logs. On activation every log is looked at at once, so lines
    /// written meanwhile are read.
    pub fn set_active(&mut self, jail: &J, active: bool) {
        let Some(j) = self.jails.get_mut(jail) else {
            return;
        };
        if j.active == active {
            return;
        }
        j.active = active;
        if active {
            let now = Instant::now();
            j.poll = PollClock::new();
            let ids: Vec<usize> = j.files.values().copied().collect();
            for id in ids {
                if let Some(f) = self.follows[id].as_mut() {
                    f.due = Some(now);
                }
            }
        }
    }

    /// Follows `path` for `jail` (`addlogpath`). A pattern with wildcards
    /// follows its current matches, and, when only the file name has
    /// wildcards, the files that match later. Returns the files added, as
    /// logged in `Added logfile: ...`.
    pub fn add_path(
        &mut self,
        jail: &J,
        path: &str,
        opts: PathOptions,
    ) -> Result<Vec<Added>, AddError> {
        let Some(j) = self.jails.get(jail) else {
            return Err(AddError::UnknownJail);
        };
        if !has_magic(path) {
            if j.files.contains_key(path) {
                return Err(AddError::AlreadyFollowed(path.to_string()));
            }
            return Ok(vec![self.add_file(jail, path, &opts, None)?]);
        }
        if j.globs.iter().any(|g| g.pattern == path) {
            return Err(AddError::AlreadyFollowed(path.to_string()));
        }
        let (dir, name) = split_path(path);
        let watchable = !has_magic(dir) && std::path::Path::new(&dir_key(dir)).is_dir();
        // a stored position belongs to one file: not to a pattern's matches
        let opts = PathOptions {
            resume: None,
            ..opts
        };
        let mut added = Vec::new();
        for m in crate::config::glob::glob(path) {
            let known = self
                .jails
                .get(jail)
                .is_some_and(|j| j.files.contains_key(&m));
            if !known && std::path::Path::new(&m).is_file() {
                added.push(self.add_file(jail, &m, &opts, Some(path))?);
            }
        }
        if !watchable {
            if added.is_empty() {
                return Err(AddError::NoMatch(path.to_string()));
            }
            return Ok(added);
        }
        let inotify = self.jails[jail].backend == Backend::Inotify;
        let key = dir_key(dir);
        if inotify {
            self.dir_ref(&key);
        }
        let stamp = std::fs::metadata(&key)
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec(), m.ino()));
        let glob = Glob {
            pattern: path.to_string(),
            dir: dir.to_string(),
            dir_key: key,
            name: name.to_string(),
            opts: PathOptions {
                tail: false,
                ..opts
            },
            stamp,
        };
        if let Some(j) = self.jails.get_mut(jail) {
            j.globs.push(glob);
        }
        Ok(added)
    }

    fn add_file(
        &mut self,
        jail: &J,
        path: &str,
        opts: &PathOptions,
        glob: Option<&str>,
    ) -> Result<Added, AddError> {
        let mut cont = Container::open(path, opts.tail).map_err(|error| AddError::Open {
            path: path.to_string(),
            error,
        })?;
        if let Some(r) = &opts.resume
            && !opts.tail
            && r.pos > 0
            && r.hash == cont.hash()
        {
            cont.set_pos(r.pos);
        }
        let added = Added {
            path: path.to_string(),
            pos: cont.pos(),
            hash: cont.hash().to_string(),
        };
        log::info!(target: T_FILTER, "Added logfile: {} (pos = {}, hash = {})",
            crate::pyvalue::str_repr(path), added.pos, added.hash);
        let j = &self.jails[jail];
        let inotify = j.backend == Backend::Inotify;
        let active = j.active;
        let (dir, name) = split_path(path);
        let id = match self.follows.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.follows.push(None);
                self.follows.len() - 1
            }
        };
        let key = dir_key(dir);
        let mut f = Follow {
            jail: jail.clone(),
            path: path.to_string(),
            dir_key: key.clone(),
            name: name.to_string(),
            inotify,
            encoding: opts.encoding,
            cur: cont,
            wd: None,
            retired: Vec::new(),
            seek: if opts.tail { None } else { opts.find_time },
            in_operation: opts.tail,
            due: active.then(Instant::now),
            missing: false,
            reason: None,
            greet: inotify,
            stamp: None,
            errors: 0,
            error_at: None,
            glob: glob.map(str::to_string),
        };
        if inotify {
            f.wd = self.watch_file(path, id);
            self.dir_ref(&key);
            if let Some(d) = self.dirs.get_mut(&key) {
                d.names.entry(f.name.clone()).or_default().push(id);
            }
            crate::f2b_log!(
                MSG,
                T_INOTIFY,
                "Log absence detected (possibly rotation) for {path}, reason: INITIAL of {path}"
            );
        }
        self.follows[id] = Some(f);
        if let Some(j) = self.jails.get_mut(jail) {
            j.files.insert(path.to_string(), id);
        }
        Ok(added)
    }

    /// Stops following `path` (a file, or a pattern given to `add_path`
    /// together with the files it found) for `jail`. Returns whether it was
    /// followed.
    pub fn remove_path(&mut self, jail: &J, path: &str) -> bool {
        if self.remove_glob(jail, path) {
            return true;
        }
        let Some(id) = self
            .jails
            .get_mut(jail)
            .and_then(|j| j.files.shift_remove(path))
        else {
            return false;
        };
        let Some(f) = self.follows[id].take() else {
            return false;
        };
        log::info!(target: T_FILTER, "Removed logfile: {}", crate::pyvalue::str_repr(path));
        if let Some(wd) = f.wd {
            self.release_wd(wd, id);
        }
        for r in &f.retired {
            if let Some(wd) = r.wd {
                self.release_wd(wd, id);
            }
        }
        if f.inotify {
            if let Some(d) = self.dirs.get_mut(&f.dir_key)
                && let Some(v) = d.names.get_mut(&f.name)
            {
                v.retain(|&i| i != id);
                if v.is_empty() {
                    d.names.remove(&f.name);
                }
            }
            self.dir_unref(&f.dir_key);
        }
        true
    }

    fn remove_glob(&mut self, jail: &J, pattern: &str) -> bool {
        let Some(j) = self.jails.get_mut(jail) else {
            return false;
        };
        let Some(i) = j.globs.iter().position(|g| g.pattern == pattern) else {
            return false;
        };
        let g = j.globs.remove(i);
        let inotify = j.backend == Backend::Inotify;
        let found: Vec<String> = j
            .files
            .iter()
            .filter(|(_, id)| {
                self.follows[**id]
                    .as_ref()
                    .is_some_and(|f| f.glob.as_deref() == Some(pattern))
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in found {
            self.remove_path(jail, &p);
        }
        if inotify {
            self.dir_unref(&g.dir_key);
        }
        true
    }

    /// The files followed for `jail`, in the order they were added
    /// (fail2ban's `File list`).
    pub fn paths(&self, jail: &J) -> Vec<String> {
        self.jails
            .get(jail)
            .map(|j| j.files.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The current position and first-line hash of a followed file.
    pub fn position(&self, jail: &J, path: &str) -> Option<Position> {
        let f = self.follow(jail, path)?;
        Some(Position {
            hash: f.cur.hash().to_string(),
            pos: f.cur.pos(),
        })
    }

    /// Moves the read position of a followed file (e.g. from the database);
    /// returns whether the file is followed.
    pub fn set_position(&mut self, jail: &J, path: &str, pos: u64) -> bool {
        let id = self
            .jails
            .get(jail)
            .and_then(|j| j.files.get(path).copied());
        match id.and_then(|id| self.follows[id].as_mut()) {
            Some(f) => {
                f.cur.set_pos(pos);
                true
            }
            None => false,
        }
    }

    /// Changes the encoding of all logs of a jail (`set <jail> logencoding`).
    pub fn set_encoding(&mut self, jail: &J, encoding: Encoding) {
        let Some(j) = self.jails.get_mut(jail) else {
            return;
        };
        for g in &mut j.globs {
            g.opts.encoding = encoding;
        }
        for &id in j.files.values() {
            if let Some(f) = self.follows[id].as_mut() {
                f.encoding = encoding;
            }
        }
    }

    fn follow(&self, jail: &J, path: &str) -> Option<&Follow<J>> {
        let id = *self.jails.get(jail)?.files.get(path)?;
        self.follows[id].as_ref()
    }

    fn active(&self, jail: &J) -> bool {
        self.jails.get(jail).is_some_and(|j| j.active)
    }

    /// When [`Self::on_timer`] must run next; `None` when only file events
    /// can bring work (an idle inotify watch needs no timer at all).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut take = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        for j in self.jails.values().filter(|j| j.active) {
            if j.backend == Backend::Polling && (!j.files.is_empty() || !j.globs.is_empty()) {
                take(j.poll.next);
            }
        }
        for f in self.follows.iter().flatten() {
            if !self.active(&f.jail) {
                continue;
            }
            if let Some(t) = f.due {
                take(t);
            }
            for r in &f.retired {
                take(r.until);
            }
        }
        for d in self.dirs.values() {
            if let Some((t, _)) = d.retry {
                take(t);
            }
        }
        next
    }

    /// Reads the pending inotify events and the lines they announce.
    pub fn on_ready(&mut self, sink: &mut dyn LineSink<J>) {
        let now = Instant::now();
        let mut created: Vec<(String, String)> = Vec::new();
        loop {
            match self.inotify.read_events() {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    for ev in events {
                        self.dispatch(ev, now, &mut created);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!(target: T_INOTIFY, "Error reading inotify events: {e}");
                    break;
                }
            }
        }
        for (dir_key, name) in created {
            self.glob_appeared(&dir_key, &name, now, None);
        }
        self.run_due(now, sink);
    }

    fn dispatch(&mut self, ev: InotifyEvent, now: Instant, created: &mut Vec<(String, String)>) {
        if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            log::warn!(target: T_INOTIFY, "inotify event queue overflowed: checking all logs");
            for f in self.follows.iter_mut().flatten() {
                if f.inotify {
                    f.due = Some(now);
                }
            }
            // files may have appeared unnoticed: list the patterns' folders
            let keys: Vec<String> = self
                .jails
                .values()
                .filter(|j| j.backend == Backend::Inotify)
                .flat_map(|j| j.globs.iter().map(|g| g.dir_key.clone()))
                .collect();
            for key in keys {
                for name in dir_names(&key) {
                    created.push((key.clone(), name));
                }
            }
            return;
        }
        if let Some(ids) = self.file_wds.get(&ev.wd).cloned() {
            let gone = ev.mask.contains(AddWatchFlags::IN_IGNORED);
            if gone {
                self.file_wds.remove(&ev.wd);
            }
            for id in ids {
                if let Some(f) = self.follows[id].as_mut() {
                    if gone {
                        if f.wd == Some(ev.wd) {
                            f.wd = None;
                        }
                        for r in &mut f.retired {
                            if r.wd == Some(ev.wd) {
                                r.wd = None;
                            }
                        }
                    }
                    if !ev.mask.contains(AddWatchFlags::IN_MODIFY) {
                        f.reason = Some(format!("{} of {}", mask_name(ev.mask), f.path));
                    }
                    f.due = Some(now);
                }
            }
            return;
        }
        let Some(key) = self.dir_wds.get(&ev.wd).cloned() else {
            return;
        };
        let self_gone =
            AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_IGNORED;
        if ev.mask.intersects(self_gone) {
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                // the kernel dropped the watch itself
                self.dir_wds.remove(&ev.wd);
                if let Some(d) = self.dirs.get_mut(&key) {
                    d.wd = None;
                }
            }
            self.dir_lost(&key, &mask_name(ev.mask), now);
            return;
        }
        if ev.mask.contains(AddWatchFlags::IN_ISDIR) {
            return;
        }
        let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()) else {
            return;
        };
        let ids = self
            .dirs
            .get(&key)
            .and_then(|d| d.names.get(name))
            .cloned()
            .unwrap_or_default();
        for id in ids {
            if let Some(f) = self.follows[id].as_mut() {
                f.reason = Some(format!("{} of {}", mask_name(ev.mask), f.path));
                f.due = Some(now);
            }
        }
        if ev
            .mask
            .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
        {
            created.push((key, name.to_string()));
        }
    }

    /// A watched directory was deleted or moved (`wd`: the watch that
    /// said so): its files are looked at (they are gone) and the directory
    /// is looked for again later.
    fn dir_lost(&mut self, key: &str, reason: &str, now: Instant) {
        let Some(d) = self.dirs.get_mut(key) else {
            return;
        };
        if let Some(wd) = d.wd.take() {
            self.dir_wds.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
        if d.retry.is_none() {
            crate::f2b_log!(
                MSG,
                T_INOTIFY,
                "Log absence detected (possibly rotation) for {key}, reason: {reason} of {key}"
            );
            d.retry = Some((now + Duration::from_secs_f64(SLEEP_STEP), SLEEP_STEP));
        }
        let ids: Vec<usize> = d.names.values().flatten().copied().collect();
        for id in ids {
            if let Some(f) = self.follows[id].as_mut() {
                f.due = Some(now);
            }
        }
    }

    /// A file `name` appeared in the directory `dir_key`: jails whose
    /// pattern it matches start following it.
    fn glob_appeared(&mut self, dir_key: &str, name: &str, now: Instant, only: Option<&J>) {
        let mut todo: Vec<(J, String, PathOptions, String)> = Vec::new();
        for (jail, j) in &self.jails {
            if only.is_some_and(|o| o != jail) {
                continue;
            }
            for g in &j.globs {
                if g.dir_key == dir_key && glob_matches(&g.name, name) {
                    let path = join(&g.dir, name);
                    if !j.files.contains_key(&path) {
                        todo.push((jail.clone(), path, g.opts.clone(), g.pattern.clone()));
                    }
                }
            }
        }
        for (jail, path, opts, pattern) in todo {
            if !std::path::Path::new(&path).is_file() || self.is_rotated_copy(&jail, &path) {
                continue;
            }
            match self.add_file(&jail, &path, &opts, Some(&pattern)) {
                Ok(_) => {
                    if let Some(f) = self.jails[&jail]
                        .files
                        .get(&path)
                        .and_then(|&id| self.follows[id].as_mut())
                    {
                        f.due = Some(now);
                    }
                }
                Err(e) => log::error!(target: T_FILTER, "{e}"),
            }
        }
    }

    /// Whether `path` is a file the jail already reads under another name
    /// (a log renamed by its rotation into a name the pattern matches).
    fn is_rotated_copy(&self, jail: &J, path: &str) -> bool {
        let Ok(m) = std::fs::metadata(path) else {
            return false;
        };
        let id = (m.dev(), m.ino());
        self.jails[jail].files.values().any(|&i| {
            self.follows[i].as_ref().is_some_and(|f| {
                f.cur.identity() == id || f.retired.iter().any(|r| r.cont.identity() == id)
            })
        })
    }

    /// Runs what is due at `now`: polling, retries of vanished directories,
    /// the end of reading rotated files, pending reads.
    pub fn on_timer(&mut self, now: Instant, sink: &mut dyn LineSink<J>) {
        let polled: Vec<J> = self
            .jails
            .iter()
            .filter(|(_, j)| j.active && j.backend == Backend::Polling && j.poll.next <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for jail in polled {
            self.poll_jail(&jail, now, sink);
        }
        self.retry_dirs(now);
        self.expire_retired(now, sink);
        self.run_due(now, sink);
    }

    fn poll_jail(&mut self, jail: &J, now: Instant, sink: &mut dyn LineSink<J>) {
        let ids: Vec<usize> = self.jails[jail].files.values().copied().collect();
        let mut changed = false;
        let mut dropped = Vec::new();
        for id in ids {
            let Some(f) = self.follows[id].as_mut() else {
                continue;
            };
            match std::fs::metadata(&f.path) {
                Ok(m) => {
                    f.errors = 0;
                    f.error_at = None;
                    let stamp = stamp_of(&m);
                    if f.stamp != Some(stamp) {
                        log::debug!(target: T_POLL, "{} has been modified", f.path);
                        f.stamp = Some(stamp);
                        f.due = Some(now);
                        changed = true;
                    }
                }
                Err(_)
                    if f.error_at.is_some_and(|t| {
                        now.duration_since(t) < Duration::from_secs_f64(SLEEP_TIME)
                    }) =>
                {
                    if f.cur.has_unread() {
                        f.due = Some(now);
                    }
                }
                Err(e) => {
                    // fail2ban sleeps `sleeptime` after each failure: count
                    // at most one per such interval
                    if f.errors < 2 {
                        if e.kind() == io::ErrorKind::NotFound {
                            log::debug!(target: T_POLL,
                                "Log absence detected (possibly rotation) for {}, reason: {}",
                                f.path, py_os_error(&e, &f.path));
                        } else {
                            log::error!(target: T_POLL, "Unable to get stat on {} because of: {}",
                                f.path, py_os_error(&e, &f.path));
                        }
                    }
                    if f.errors == 0 || f.cur.has_unread() {
                        // read what the vanished file still holds
                        f.due = Some(now);
                    }
                    f.errors += 1;
                    f.error_at = Some(now);
                    if f.errors > MAX_STAT_ERRORS {
                        log::warn!(target: T_POLL,
                            "Too many errors. Remove file {} from monitoring process",
                            crate::pyvalue::str_repr(&f.path));
                        dropped.push(f.path.clone());
                    }
                }
            }
            if f.retired.iter().any(|r| r.cont.has_unread()) {
                f.due = Some(now);
            }
        }
        self.poll_globs(jail, now);
        for path in dropped {
            self.remove_path(jail, &path);
            sink.dropped(jail, &path);
        }
        if let Some(j) = self.jails.get_mut(jail) {
            j.poll.advance(now, changed);
        }
    }

    /// Polling: a pattern's directory changed → look for new matches.
    fn poll_globs(&mut self, jail: &J, now: Instant) {
        let mut rescan = Vec::new();
        if let Some(j) = self.jails.get_mut(jail) {
            for g in &mut j.globs {
                let stamp = std::fs::metadata(&g.dir_key)
                    .ok()
                    .map(|m| (m.mtime(), m.mtime_nsec(), m.ino()));
                if stamp != g.stamp {
                    g.stamp = stamp;
                    rescan.push(g.dir_key.clone());
                }
            }
        }
        rescan.dedup();
        for key in rescan {
            for name in dir_names(&key) {
                self.glob_appeared(&key, &name, now, Some(jail));
            }
        }
    }

    fn retry_dirs(&mut self, now: Instant) {
        let due: Vec<String> = self
            .dirs
            .iter()
            .filter(|(_, d)| d.retry.is_some_and(|(t, _)| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let wd = if std::path::Path::new(&key).is_dir() {
                self.inotify.add_watch(key.as_str(), dir_mask()).ok()
            } else {
                None
            };
            let Some(d) = self.dirs.get_mut(&key) else {
                continue;
            };
            match wd {
                Some(wd) => {
                    crate::f2b_log!(MSG, T_INOTIFY, "Log presence detected for directory {key}");
                    d.wd = Some(wd);
                    d.retry = None;
                    self.dir_wds.insert(wd, key.clone());
                    let ids: Vec<usize> = d.names.values().flatten().copied().collect();
                    for id in ids {
                        if let Some(f) = self.follows[id].as_mut() {
                            f.due = Some(now);
                        }
                    }
                    for name in dir_names(&key) {
                        self.glob_appeared(&key, &name, now, None);
                    }
                }
                None => {
                    let (_, back) = d.retry.unwrap_or((now, SLEEP_STEP));
                    let back = (back * 2.0).min(MAX_RETRY);
                    d.retry = Some((now + Duration::from_secs_f64(back), back));
                }
            }
        }
    }

    /// Rotated files whose grace time is over: read one last time, closed.
    fn expire_retired(&mut self, now: Instant, sink: &mut dyn LineSink<J>) {
        for id in 0..self.follows.len() {
            let expired = self.follows[id]
                .as_ref()
                .is_some_and(|f| f.retired.iter().any(|r| r.until <= now));
            if !expired {
                continue;
            }
            let Some(mut f) = self.follows[id].take() else {
                continue;
            };
            let mut keep = Vec::new();
            for mut r in std::mem::take(&mut f.retired) {
                if r.until > now {
                    keep.push(r);
                    continue;
                }
                if self.active(&f.jail) {
                    deliver(
                        &mut self.warnings,
                        &f.jail,
                        &f.path,
                        f.encoding,
                        f.in_operation,
                        &mut r.cont,
                        u64::MAX,
                        sink,
                    );
                }
                if let Some(wd) = r.wd {
                    self.release_wd(wd, id);
                }
            }
            f.retired = keep;
            self.follows[id] = Some(f);
        }
    }

    fn run_due(&mut self, now: Instant, sink: &mut dyn LineSink<J>) {
        for id in 0..self.follows.len() {
            let due = self.follows[id]
                .as_ref()
                .is_some_and(|f| f.due.is_some_and(|t| t <= now) && self.active(&f.jail));
            if due {
                self.check(id, now, sink);
            }
        }
    }

    /// Looks at one followed path: reads what its rotated files still hold,
    /// notices a missing, replaced, truncated or rewritten file, and reads
    /// the new complete lines.
    fn check(&mut self, id: usize, now: Instant, sink: &mut dyn LineSink<J>) {
        let Some(mut f) = self.follows[id].take() else {
            return;
        };
        f.due = None;
        for r in &mut f.retired {
            deliver(
                &mut self.warnings,
                &f.jail,
                &f.path,
                f.encoding,
                f.in_operation,
                &mut r.cont,
                u64::MAX,
                sink,
            );
        }
        let replaced = match std::fs::metadata(&f.path) {
            Ok(m) if m.is_file() => {
                if f.missing || f.greet {
                    f.missing = false;
                    f.greet = false;
                    if f.inotify {
                        crate::f2b_log!(
                            MSG,
                            T_INOTIFY,
                            "Log presence detected for file {}",
                            f.path
                        );
                    }
                }
                (m.dev(), m.ino()) != f.cur.identity()
            }
            _ => {
                if !f.missing {
                    f.missing = true;
                    if f.inotify {
                        let reason = f
                            .reason
                            .take()
                            .unwrap_or_else(|| format!("IN_IGNORED of {}", f.path));
                        crate::f2b_log!(
                            MSG,
                            T_INOTIFY,
                            "Log absence detected (possibly rotation) for {}, reason: {reason}",
                            f.path
                        );
                    }
                }
                // a directory holding a file we keep open reports no
                // deletion of its own: look at it
                if f.inotify && !std::path::Path::new(&f.dir_key).is_dir() {
                    self.dir_lost(&f.dir_key, "IN_DELETE_SELF", now);
                }
                false
            }
        };
        f.reason = None;
        if replaced {
            // finish the old file before following the new one
            deliver(
                &mut self.warnings,
                &f.jail,
                &f.path,
                f.encoding,
                f.in_operation,
                &mut f.cur,
                u64::MAX,
                sink,
            );
            match Container::open(&f.path, false) {
                Ok(new) => {
                    let rot = new.replacing(&f.cur);
                    log_rotation(&f.path, &rot);
                    let old = std::mem::replace(&mut f.cur, new);
                    let old_wd = f.wd.take();
                    if f.inotify {
                        f.wd = self.watch_file(&f.path, id);
                    }
                    if f.retired.len() >= MAX_RETIRED {
                        let mut r = f.retired.remove(0);
                        deliver(
                            &mut self.warnings,
                            &f.jail,
                            &f.path,
                            f.encoding,
                            f.in_operation,
                            &mut r.cont,
                            u64::MAX,
                            sink,
                        );
                        if let Some(wd) = r.wd {
                            self.release_wd(wd, id);
                        }
                    }
                    f.retired.push(Retired {
                        cont: old,
                        wd: old_wd,
                        until: now + ROTATED_GRACE,
                    });
                }
                Err(e) => {
                    log::error!(target: T_FILTER, "Unable to open {}", f.path);
                    log::debug!(target: T_FILTER, "{}", py_os_error(&e, &f.path));
                }
            }
        }
        if !f.missing {
            match f.cur.check_in_place() {
                Ok(Some(rot)) => log_rotation(&f.path, &rot),
                Ok(None) => {}
                Err(e) => {
                    log::error!(target: T_FILTER, "Unable to open {}", f.path);
                    log::debug!(target: T_FILTER, "{}", py_os_error(&e, &f.path));
                }
            }
        }
        if let Some(find_time) = f.seek.take() {
            self.seek(&mut f, find_time, sink);
        }
        let eof = deliver(
            &mut self.warnings,
            &f.jail,
            &f.path,
            f.encoding,
            f.in_operation,
            &mut f.cur,
            READ_BUDGET,
            sink,
        );
        if eof {
            f.in_operation = true;
        } else {
            f.due = Some(now);
        }
        self.follows[id] = Some(f);
    }

    /// The first read of a `head` log: go to the first line not older than
    /// `now - find_time`.
    fn seek(&mut self, f: &mut Follow<J>, find_time: f64, sink: &mut dyn LineSink<J>) {
        let Ok(size) = f.cur.size() else {
            return;
        };
        let date = crate::mytime::now() - find_time;
        let warnings = &mut self.warnings;
        let (path, enc, jail) = (&f.path, f.encoding, &f.jail);
        let mut decode = |raw: &[u8]| line_text(warnings, path, enc, raw).into_owned();
        let mut time_of = |line: &str| sink.time_of(jail, line);
        let start = f.cur.pos();
        match seek::seek_to_time(f.cur.file(), size, start, date, &mut decode, &mut time_of) {
            Ok(pos) => {
                if pos != start {
                    f.cur.set_pos(pos);
                }
            }
            Err(e) => log::error!(target: T_FILTER,
                "Error during seek to start time in \"{}\": {}", f.path, py_os_error(&e, &f.path)),
        }
    }

    fn watch_file(&mut self, path: &str, id: usize) -> Option<WatchDescriptor> {
        match self.inotify.add_watch(path, file_mask()) {
            Ok(wd) => {
                self.file_wds.entry(wd).or_default().push(id);
                Some(wd)
            }
            Err(e) => {
                log::debug!(target: T_INOTIFY, "Cannot watch {path}: {e}");
                None
            }
        }
    }

    fn release_wd(&mut self, wd: WatchDescriptor, id: usize) {
        let Some(users) = self.file_wds.get_mut(&wd) else {
            return;
        };
        if let Some(i) = users.iter().position(|&u| u == id) {
            users.remove(i);
        }
        if users.is_empty() {
            self.file_wds.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }

    fn dir_ref(&mut self, key: &str) {
        if let Some(d) = self.dirs.get_mut(key) {
            d.users += 1;
            return;
        }
        let (wd, retry) = match self.inotify.add_watch(key, dir_mask()) {
            Ok(wd) => {
                self.dir_wds.insert(wd, key.to_string());
                (Some(wd), None)
            }
            Err(e) => {
                log::debug!(target: T_INOTIFY, "Cannot watch directory {key}: {e}");
                let now = Instant::now();
                (
                    None,
                    Some((now + Duration::from_secs_f64(SLEEP_STEP), SLEEP_STEP)),
                )
            }
        };
        self.dirs.insert(
            key.to_string(),
            Dir {
                wd,
                names: HashMap::new(),
                users: 1,
                retry,
            },
        );
    }

    fn dir_unref(&mut self, key: &str) {
        let Some(d) = self.dirs.get_mut(key) else {
            return;
        };
        d.users -= 1;
        if d.users > 0 {
            return;
        }
        if let Some(wd) = d.wd {
            self.dir_wds.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
        self.dirs.remove(key);
    }
}

fn log_rotation(path: &str, rot: &Rotation) {
    if rot.logged() {
        crate::f2b_log!(
            MSG,
            T_FILTER,
            "Log rotation detected for {path}, reason: {}",
            rot.repr()
        );
    }
}
