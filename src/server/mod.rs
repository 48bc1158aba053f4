//! `fail2ban-server`: one thread, one poll loop.
//!
//! The loop waits on the control socket and its connections, the log
//! watcher (inotify, or its polling deadline), the actions' child
//! processes (their pidfds and output pipes), a self-pipe for signals, and
//! the next timer (the earliest end of a ban, the watcher's and the
//! actions' deadlines).  Log lines go to their jail's filter; failures that
//! reach `maxretry` are banned at once through the jail's actions; bans
//! whose time is over are unbanned; commands from the socket are executed
//! by the [`transmitter`] and answered; nothing the server waits for
//! (a slow action, a slow client) blocks the rest.
//!
//! Process handling follows fail2ban: pidfile and socket (their last
//! directory level created when missing — the reboot problem of a vanished
//! `/var/run/fail2ban`), a live socket refused, a stale one taken over with
//! `-x`, SIGTERM/SIGINT stop cleanly (bans removed through the actions,
//! `actionstop`, socket and pidfile removed), SIGUSR1 reopens the log.

pub mod formula;
pub mod ignore;
pub mod increment;
pub mod jail;
mod persist;
pub mod process;
pub mod transmitter;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::actions::Event;
use crate::database::Database;
use crate::logwatch::{Backend, Encoding, LineSink, LogWatch, PathOptions};
use crate::protocol::{self, Message, MessageBuffer, PyException, Reply};
use crate::pyvalue::PyValue;
use jail::Jail;
use transmitter::CmdError;

const LOG_SERVER: &str = "fail2ban.server";

/// The name fail2ban shows for the locale's encoding (`auto`).
const PREFERRED_ENCODING: &str = "UTF-8";

/// One client connection.
struct Conn {
    stream: UnixStream,
    input: MessageBuffer,
    output: Vec<u8>,
    /// The connection asked to stop the server: answered when done.
    awaiting_stop: bool,
    closing: bool,
}

/// The server state.
pub struct Server {
    jails: IndexMap<String, Jail>,
    /// Jails stopped, whose actions are still finishing (unbans, stop).
    stopping: Vec<Jail>,
    watch: LogWatch<String>,
    listener: Option<UnixListener>,
    conns: Vec<Conn>,
    signals: Option<SignalPipe>,
    quiet: bool,
    quitting: bool,
    syslog_socket: String,
    log_target: String,
    allow_ipv6: String,
    /// The persistent database (`set dbfile`), shared with the jails.
    db: Option<Rc<Database>>,
    db_state: persist::DbState,
    /// Per jail: the log encoding and its name as configured (`auto` is
    /// shown as the locale's, `UTF-8`).
    encodings: IndexMap<String, (Encoding, String)>,
    reloading: Option<Reload>,
    socket_path: Option<String>,
    pidfile: Option<String>,
}

/// What a reload has seen confirmed so far (fail2ban's `__reload_state`).
struct Reload {
    /// Jails affected and not yet re-added.
    pending: Vec<String>,
    /// Jails re-added in place.
    kept: Vec<String>,
    /// Log paths and actions confirmed per jail.
    paths: IndexMap<String, Vec<String>>,
    actions: IndexMap<String, Vec<String>>,
}

/// Signals delivered into a pipe the loop watches (SIGTERM, SIGINT, SIGUSR1).
struct SignalPipe {
    read: UnixStream,
}

impl SignalPipe {
    fn new() -> std::io::Result<SignalPipe> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1] {
            signal_hook::low_level::pipe::register_raw(sig, write.try_clone()?.into_raw_fd())?;
        }
        std::mem::forget(write);
        Ok(SignalPipe { read })
    }

    /// The signals received since the last call.
    fn drain(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n) = self.read.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend(buf[..n].iter().map(|b| i32::from(*b)));
        }
        out
    }
}

/// Hands the watcher's lines to the jails.
struct Dispatch<'a> {
    jails: &'a mut IndexMap<String, Jail>,
}

impl LineSink<String> for Dispatch<'_> {
    fn line(&mut self, jail: &String, _path: &str, line: &str, in_operation: bool) {
        if let Some(j) = self.jails.get_mut(jail) {
            j.process_line(line, in_operation);
        }
    }

    fn time_of(&mut self, jail: &String, line: &str) -> Option<f64> {
        let j = self.jails.get_mut(jail)?;
        let d = j.filter.dater_mut().date_line(line).ok()??;
        if d.no_date {
            None
        } else {
            d.date.map(|t| t.as_f64())
        }
    }

    fn dropped(&mut self, _jail: &String, _path: &str) {}

    fn pause(&mut self) {
        advance_actions(self.jails);
    }
}

/// Between two slices of a long read: lets the commands that ended make
/// room for the next ones and starts the bans decided so far, without
/// waiting, as fail2ban bans at once when an address reaches `maxretry`.
fn advance_actions(jails: &mut IndexMap<String, Jail>) {
    let fds: Vec<(usize, RawFd)> = jails
        .values()
        .enumerate()
        .flat_map(|(i, j)| j.actions.fds().into_iter().map(move |fd| (i, fd)))
        .collect();
    let wanted = fds
        .iter()
        .map(|&(_, fd)| (fd, nix::poll::PollFlags::POLLIN));
    let ready = poll_ready(wanted, nix::poll::PollTimeout::ZERO);
    for (&(i, fd), ready) in fds.iter().zip(ready) {
        if ready && let Some((_, j)) = jails.get_index_mut(i) {
            j.actions.on_ready(fd);
        }
    }
    let now = Instant::now();
    for j in jails.values_mut() {
        j.check_bans();
        j.actions.on_timer(now);
        emit_events(j.actions.take_events());
    }
}

impl Server {
    /// A server with no jails, no socket yet.
    pub fn new() -> std::io::Result<Server> {
        Ok(Server {
            jails: IndexMap::new(),
            stopping: Vec::new(),
            watch: LogWatch::new()?,
            listener: None,
            conns: Vec::new(),
            signals: None,
            quiet: false,
            quitting: false,
            syslog_socket: "auto".to_string(),
            log_target: "STDOUT".to_string(),
            allow_ipv6: "auto".to_string(),
            db: None,
            db_state: persist::DbState::new(),
            encodings: IndexMap::new(),
            reloading: None,
            socket_path: None,
            pidfile: None,
        })
    }

    // ---- jails -----------------------------------------------------------

    fn add_jail(&mut self, name: &str, backend: &str) -> Result<(), CmdError> {
        if let Some(r) = self.reloading.as_mut()
            && let Some(pos) = r.pending.iter().position(|n| n == name)
        {
            let same = self.jails.get(name).is_some_and(|j| j.backend == backend);
            r.pending.remove(pos);
            if same {
                crate::f2b_log!(
                    INFO,
                    LOG_SERVER,
                    "Reload jail {}",
                    crate::pyvalue::str_repr(name)
                );
                r.kept.push(name.to_string());
                return Ok(());
            }
            let old = self
                .jails
                .get(name)
                .map(|j| j.backend.clone())
                .unwrap_or_default();
            crate::f2b_log!(
                INFO,
                LOG_SERVER,
                "Restart jail {} (reason: {} != {})",
                crate::pyvalue::str_repr(name),
                crate::pyvalue::str_repr(&old),
                crate::pyvalue::str_repr(backend)
            );
            self.stop_jail(name)?;
        } else if self.jails.contains_key(name) {
            return Err(CmdError::new(
                "NameError",
                "name 'noduplicates' is not defined",
            ));
        }
        if name.chars().count() >= 26 {
            crate::f2b_log!(
                WARNING,
                "fail2ban.jail",
                "Jail name {} might be too long and some commands might not function correctly. Please shorten",
                crate::pyvalue::str_repr(name)
            );
        }
        crate::f2b_log!(INFO, "fail2ban.jail", "Creating new jail '{name}'");
        let (kind, args) = crate::config::extract_options(backend)
            .map_err(|e| CmdError::new("ValueError", e.to_string()))?;
        let choice = crate::logwatch::select_backend(&kind).map_err(|e| {
            crate::f2b_log!(ERROR, "fail2ban.jail", "{e}");
            CmdError::new("ValueError", e)
        })?;
        if let Some((error, warning)) = &choice.fallback {
            crate::f2b_log!(ERROR, "fail2ban.jail", "{error}");
            crate::f2b_log!(WARNING, "fail2ban.jail", "{warning}");
        }
        let args_repr = PyValue::Dict(
            args.iter()
                .map(|(k, v)| (PyValue::Str(k.clone()), PyValue::Str(v.clone())))
                .collect(),
        )
        .repr();
        match choice.backend {
            Backend::Inotify => {
                crate::f2b_log!(
                    INFO,
                    "fail2ban.jail",
                    "Jail '{name}' uses pyinotify {args_repr}"
                );
            }
            Backend::Polling => {
                crate::f2b_log!(
                    INFO,
                    "fail2ban.jail",
                    "Jail '{name}' uses poller {args_repr}"
                );
            }
        }
        crate::f2b_log!(
            INFO,
            "fail2ban.jail",
            "Initiated {} backend",
            crate::pyvalue::str_repr(choice.name)
        );
        self.watch
            .add_jail(name.to_string(), choice.backend)
            .map_err(|e| CmdError::new("ValueError", e))?;
        let mut jail = Jail::new(name, backend);
        let allow = !matches!(
            self.allow_ipv6.to_lowercase().as_str(),
            "no" | "false" | "0" | "off"
        );
        jail.actions.set_allow_ipv6(allow);
        self.jails.insert(name.to_string(), jail);
        self.db_add_jail(name);
        Ok(())
    }

    fn start_jail(&mut self, name: &str) -> Result<(), CmdError> {
        let reloaded = self
            .reloading
            .as_mut()
            .and_then(|r| {
                r.kept
                    .iter()
                    .position(|n| n == name)
                    .map(|p| r.kept.remove(p))
            })
            .is_some();
        let jail = self.jail_mut(name)?;
        if !jail.started {
            jail.started = true;
            jail.actions.start();
            jail.restore_bans();
            crate::f2b_log!(
                INFO,
                "fail2ban.jail",
                "Jail {} started",
                crate::pyvalue::str_repr(name)
            );
        } else if reloaded {
            crate::f2b_log!(
                INFO,
                LOG_SERVER,
                "Jail {} reloaded",
                crate::pyvalue::str_repr(name)
            );
        }
        jail.idle = false;
        self.watch.set_active(&name.to_string(), true);
        Ok(())
    }

    fn stop_jail(&mut self, name: &str) -> Result<(), CmdError> {
        let mut jail = self
            .jails
            .shift_remove(name)
            .ok_or_else(|| CmdError::new("UnknownJailException", name))?;
        let key = name.to_string();
        self.db_store_positions(Some(name), true);
        for p in self.watch.paths(&key) {
            self.watch.remove_path(&key, &p);
        }
        self.watch.remove_jail(&key);
        jail.stop();
        if let Some(db) = &self.db {
            db.del_jail(name);
        }
        self.stopping.push(jail);
        crate::f2b_log!(
            INFO,
            "fail2ban.jail",
            "Jail {} stopped",
            crate::pyvalue::str_repr(name)
        );
        Ok(())
    }

    fn stop_all_jails(&mut self) {
        crate::f2b_log!(INFO, LOG_SERVER, "Stopping all jails");
        let names: Vec<String> = self.jails.keys().cloned().collect();
        for n in names {
            let _ = self.stop_jail(&n);
        }
    }

    fn set_idle(&mut self, name: &str, on: bool) {
        if let Some(j) = self.jails.get_mut(name) {
            j.idle = on;
        }
        self.watch.set_active(&name.to_string(), !on);
    }

    fn unban_all(&mut self) -> usize {
        self.jails.values_mut().map(Jail::flush_bans).sum()
    }

    fn add_log_path(&mut self, name: &str, path: &str, tail: bool) {
        let key = name.to_string();
        if let Some(r) = self.reloading.as_mut() {
            r.paths
                .entry(key.clone())
                .or_default()
                .push(path.to_string());
            if self.watch.paths(&key).iter().any(|p| p == path) {
                return;
            }
        }
        let encoding = self.encoding(name);
        let find_time = self.jails.get(name).map(|j| j.filter.find_time());
        let opts = PathOptions {
            tail,
            encoding,
            find_time,
            resume: self.db_resume(name, path),
        };
        match self.watch.add_path(&key, path, opts) {
            Ok(added) => self.db_logs_added(name, path, &added, tail),
            Err(crate::logwatch::AddError::AlreadyFollowed(p)) => {
                crate::f2b_log!(ERROR, "fail2ban.filter", "{p} already exists");
            }
            Err(e) => crate::f2b_log!(ERROR, "fail2ban.filter", "{e}"),
        }
    }

    fn del_log_path(&mut self, name: &str, path: &str) {
        self.watch.remove_path(&name.to_string(), path);
    }

    fn set_encoding(&mut self, name: &str, enc: &str) -> Result<(), CmdError> {
        let e = Encoding::lookup(enc).map_err(|m| CmdError::new("LookupError", m))?;
        let shown = if enc.eq_ignore_ascii_case("auto") {
            PREFERRED_ENCODING.to_string()
        } else {
            enc.to_string()
        };
        crate::f2b_log!(INFO, "fail2ban.filter", "  encoding: {shown}");
        self.watch.set_encoding(&name.to_string(), e);
        self.encodings.insert(name.to_string(), (e, shown));
        Ok(())
    }

    /// A jail's log encoding (default: the locale's, fail2ban's `auto`).
    fn encoding(&self, name: &str) -> Encoding {
        self.encodings
            .get(name)
            .map(|(e, _)| *e)
            .unwrap_or_else(|| Encoding::lookup("auto").unwrap_or(Encoding::Utf8))
    }

    fn encoding_name(&self, name: &str) -> String {
        self.encodings
            .get(name)
            .map_or_else(|| PREFERRED_ENCODING.to_string(), |(_, n)| n.clone())
    }

    fn set_bantime_extra(
        &mut self,
        name: &str,
        opt: &str,
        value: &str,
    ) -> Result<PyValue, CmdError> {
        let j = self.jail_mut(name)?;
        if value.is_empty() {
            j.ban_extra.values.shift_remove(opt);
            crate::f2b_log!(INFO, "fail2ban.jail", "Set banTime.{opt} = None");
            return Ok(PyValue::None);
        }
        crate::f2b_log!(INFO, "fail2ban.jail", "Set banTime.{opt} = {value}");
        let stored = match opt {
            "increment" | "overalljails" => PyValue::Bool(crate::config::as_bool(value)),
            "maxtime" | "rndtime" => PyValue::Int(transmitter::seconds(value)? as i64),
            _ => PyValue::Str(value.to_string()),
        };
        if opt == "formula" {
            increment::check_formula(value);
        }
        if opt == "increment" && stored == PyValue::Bool(true) && j.db.is_none() {
            crate::f2b_log!(
                WARNING,
                "fail2ban.jail",
                "ban time increment is not available as long jail database is not set"
            );
        }
        j.ban_extra.values.insert(opt.to_string(), stored.clone());
        Ok(stored)
    }

    fn confirm_action(&mut self, jail: &str, action: &str) {
        if let Some(r) = self.reloading.as_mut() {
            r.actions
                .entry(jail.to_string())
                .or_default()
                .push(action.to_string());
        }
    }

    fn reload_begin(&mut self, target: &str, opts: &[String]) -> Result<(), CmdError> {
        let affected: Vec<String> = if target == "--all" {
            crate::f2b_log!(INFO, LOG_SERVER, "Reload all jails");
            self.jails.keys().cloned().collect()
        } else {
            crate::f2b_log!(INFO, LOG_SERVER, "Reload jail {target}");
            if !self.jails.contains_key(target) {
                if opts.iter().any(|o| o == "--if-exists") {
                    Vec::new()
                } else {
                    return Err(CmdError::new("UnknownJailException", target));
                }
            } else {
                vec![target.to_string()]
            }
        };
        if opts.iter().any(|o| o == "--unban") {
            for n in &affected {
                if let Some(j) = self.jails.get_mut(n) {
                    j.flush_bans();
                }
            }
        }
        if opts.iter().any(|o| o == "--restart") {
            for n in &affected {
                let _ = self.stop_jail(n);
            }
        }
        for n in &affected {
            if let Some(j) = self.jails.get_mut(n) {
                j.idle = true;
                j.filter.clear_regexes();
                j.ignore.clear();
                j.actions.begin_reload();
            }
        }
        self.reloading = Some(Reload {
            pending: affected
                .into_iter()
                .filter(|n| self.jails.contains_key(n))
                .collect(),
            kept: Vec::new(),
            paths: IndexMap::new(),
            actions: IndexMap::new(),
        });
        Ok(())
    }

    fn reload_end(&mut self, _target: &str, _opts: &[String]) {
        let Some(r) = self.reloading.take() else {
            return;
        };
        for n in &r.pending {
            let _ = self.stop_jail(n);
        }
        for (name, jail) in self.jails.iter_mut() {
            let key = name.clone();
            if let Some(confirmed) = r.paths.get(name) {
                for p in self.watch.paths(&key) {
                    if !confirmed.contains(&p) {
                        self.watch.remove_path(&key, &p);
                    }
                }
            }
            let tickets: Vec<crate::actions::BanInfo> =
                jail.bans.tickets().map(|t| jail.ban_info(t)).collect();
            let _ = r.actions.get(name);
            jail.actions.end_reload(&tickets);
            jail.idle = false;
        }
        crate::f2b_log!(INFO, LOG_SERVER, "Reload finished.");
    }

    fn begin_quit(&mut self) {
        if !self.quitting {
            crate::f2b_log!(INFO, LOG_SERVER, "Shutdown in progress...");
            self.quitting = true;
            self.stop_all_jails();
        }
    }
}

/// Converts a command error into the exception Python's client expects.
pub fn to_exception(e: &CmdError) -> PyException {
    let module = match e.class {
        "UnknownJailException" | "DuplicateJailException" => "fail2ban.exceptions",
        "RegexException" => "fail2ban.server.failregex",
        "OperationalError" => "sqlite3",
        _ => "builtins",
    };
    PyException::new(module, e.class, e.args.clone())
}

/// Replies queued for a client beyond which its requests are no longer
/// read (until it reads the replies).
const MAX_PENDING_OUTPUT: usize = 1 << 20;

/// What a polled descriptor belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Listener,
    Conn(usize),
    /// A connection with replies waiting to be written.
    Writable,
    Watch,
    Signals,
    /// An action descriptor of a jail (index in `jails`, or in `stopping`
    /// when the flag is set).
    Action(usize, bool),
}

impl Server {
    /// The earliest time the loop must wake up without an event.
    fn next_wakeup(&self) -> Option<Instant> {
        let now_wall = crate::mytime::now();
        let now = Instant::now();
        let mut next: Option<Instant> = self.watch.next_deadline();
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for j in self.jails.values() {
            take(j.actions.next_deadline());
            if let Some(u) = j.next_unban() {
                // bans end strictly after their end time
                let wait = (u - now_wall).max(0.0) + 0.001;
                take(Some(now + Duration::from_secs_f64(wait.min(1e6))));
            }
        }
        for j in &self.stopping {
            take(j.actions.next_deadline());
        }
        take(self.db_deadline());
        next
    }

    /// Runs the loop until the server is stopped.
    pub fn run(&mut self) {
        loop {
            let mut sources: Vec<(RawFd, Source)> = Vec::new();
            if let Some(l) = &self.listener
                && !self.quitting
            {
                sources.push((l.as_raw_fd(), Source::Listener));
            }
            for (i, c) in self.conns.iter().enumerate() {
                // a client that does not read its replies is not read from
                // either, until they are written
                if c.output.len() < MAX_PENDING_OUTPUT && !c.closing {
                    sources.push((c.stream.as_raw_fd(), Source::Conn(i)));
                }
                if !c.output.is_empty() {
                    sources.push((c.stream.as_raw_fd(), Source::Writable));
                }
            }
            sources.push((self.watch.fd().as_raw_fd(), Source::Watch));
            if let Some(s) = &self.signals {
                sources.push((s.read.as_raw_fd(), Source::Signals));
            }
            for (i, j) in self.jails.values().enumerate() {
                for fd in j.actions.fds() {
                    sources.push((fd, Source::Action(i, false)));
                }
            }
            for (i, j) in self.stopping.iter().enumerate() {
                for fd in j.actions.fds() {
                    sources.push((fd, Source::Action(i, true)));
                }
            }
            let timeout = match self.next_wakeup() {
                None => nix::poll::PollTimeout::NONE,
                Some(t) => {
                    let ms = t.saturating_duration_since(Instant::now()).as_millis();
                    nix::poll::PollTimeout::try_from(ms.min(i32::MAX as u128) as i32)
                        .unwrap_or(nix::poll::PollTimeout::MAX)
                }
            };
            let wanted = sources.iter().map(|(fd, src)| {
                let flags = match src {
                    Source::Writable => nix::poll::PollFlags::POLLOUT,
                    _ => nix::poll::PollFlags::POLLIN,
                };
                (*fd, flags)
            });
            let ready = poll_ready(wanted, timeout);
            for (k, (fd, src)) in sources.iter().enumerate() {
                if !ready[k] {
                    continue;
                }
                match *src {
                    Source::Listener => self.accept(),
                    Source::Conn(i) => self.read_conn(i),
                    // written by `tick`
                    Source::Writable => {}
                    Source::Watch => {
                        let mut d = Dispatch {
                            jails: &mut self.jails,
                        };
                        self.watch.on_ready(&mut d);
                    }
                    Source::Signals => self.on_signals(),
                    Source::Action(i, stopping) => {
                        let j = if stopping {
                            self.stopping.get_mut(i)
                        } else {
                            self.jails.get_index_mut(i).map(|(_, j)| j)
                        };
                        if let Some(j) = j {
                            j.actions.on_ready(*fd);
                        }
                    }
                }
            }
            self.tick();
            if self.finished() {
                break;
            }
        }
        self.shutdown();
    }

    /// The work that does not wait for a descriptor: timers, bans,
    /// unbans, action progress, replies.
    fn tick(&mut self) {
        let now = Instant::now();
        {
            let mut d = Dispatch {
                jails: &mut self.jails,
            };
            self.watch.on_timer(now, &mut d);
        }
        let wall = crate::mytime::now();
        for j in self.jails.values_mut() {
            j.check_bans();
            if !j.idle {
                j.check_unbans(wall);
            }
            j.actions.on_timer(now);
            emit_events(j.actions.take_events());
        }
        for j in &mut self.stopping {
            j.actions.on_timer(now);
            emit_events(j.actions.take_events());
        }
        self.stopping.retain(|j| !j.actions.is_idle());
        self.db_tick();
        self.flush_conns();
    }

    /// Whether a stop has completed (all jails stopped, their actions done).
    fn finished(&self) -> bool {
        self.quitting && self.jails.is_empty() && self.stopping.is_empty()
    }

    fn on_signals(&mut self) {
        let sigs = self
            .signals
            .as_mut()
            .map(SignalPipe::drain)
            .unwrap_or_default();
        for s in sigs {
            if s == libc::SIGUSR1 {
                crate::logging::flush_logs();
            } else {
                self.begin_quit();
            }
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((stream, _)) = l.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            set_cloexec(stream.as_raw_fd());
            self.conns.push(Conn {
                stream,
                input: MessageBuffer::default(),
                output: Vec::new(),
                awaiting_stop: false,
                closing: false,
            });
        }
    }

    /// Reads what connection `i` sent (one buffer per turn of the loop, so
    /// that a client sending much does not hold up the others) and
    /// answers its complete requests.
    fn read_conn(&mut self, i: usize) {
        let mut buf = [0u8; 65536];
        loop {
            let c = &mut self.conns[i];
            match c.stream.read(&mut buf) {
                Ok(0) => c.closing = true,
                Ok(n) => c.input.feed(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => c.closing = true,
            }
            break;
        }
        loop {
            let msg = match self.conns[i].input.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    crate::f2b_log!(ERROR, "fail2ban.asyncserver", "PROTO-error: {e}");
                    let reply = protocol::frame(protocol::encode_reply(
                        &Reply::Other(PyValue::Str(format!("ERROR: {e}"))),
                        protocol::PROTOCOL,
                    ));
                    let c = &mut self.conns[i];
                    c.output.extend_from_slice(&reply);
                    c.closing = true;
                    break;
                }
            };
            match msg {
                Message::Close => {
                    self.conns[i].closing = true;
                    break;
                }
                Message::Data(data) => self.answer(i, &data),
            }
        }
    }

    /// Decodes and runs one request of connection `i`, queueing the reply.
    fn answer(&mut self, i: usize, data: &[u8]) {
        let reply = if self.quitting {
            Reply::Ok(PyValue::List(vec![PyValue::str("SHUTDOWN")]))
        } else {
            match protocol::decode_request(data) {
                Err(e) => {
                    crate::f2b_log!(
                        ERROR,
                        "fail2ban.asyncserver",
                        "PROTO-error: load message failed: {e}"
                    );
                    Reply::Other(PyValue::Str(format!("ERROR: {e}")))
                }
                Ok(PyValue::List(cmd)) | Ok(PyValue::Tuple(cmd)) => {
                    let is_stop = cmd.len() == 1 && cmd[0].to_py_str() == "stop";
                    match self.proceed(&cmd) {
                        Ok(v) => {
                            if is_stop {
                                self.conns[i].awaiting_stop = true;
                                return;
                            }
                            Reply::Ok(v)
                        }
                        Err(e) => Reply::Err(to_exception(&e)),
                    }
                }
                Ok(other) => Reply::Err(to_exception(&CmdError::new(
                    "TypeError",
                    format!("command must be a list, not {}", other.repr()),
                ))),
            }
        };
        let bytes = protocol::frame(protocol::encode_reply(&reply, protocol::PROTOCOL));
        self.conns[i].output.extend_from_slice(&bytes);
    }

    /// Writes what can be written without blocking; drops closed connections.
    fn flush_conns(&mut self) {
        for c in &mut self.conns {
            while !c.output.is_empty() {
                match c.stream.write(&c.output) {
                    Ok(0) => {
                        c.closing = true;
                        c.output.clear();
                    }
                    Ok(n) => {
                        c.output.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.closing = true;
                        c.output.clear();
                    }
                }
            }
        }
        self.conns
            .retain(|c| !(c.closing && c.output.is_empty() && !c.awaiting_stop));
    }

    /// The end of a stop: close the socket, answer the `stop` requests,
    /// remove the pidfile.
    fn shutdown(&mut self) {
        self.db_close();
        crate::f2b_log!(INFO, LOG_SERVER, "Exiting Fail2ban");
        if self.listener.take().is_some()
            && let Some(p) = &self.socket_path
        {
            let _ = std::fs::remove_file(p);
        }
        let reply = protocol::frame(protocol::encode_reply(
            &Reply::Ok(PyValue::None),
            protocol::PROTOCOL,
        ));
        for c in &mut self.conns {
            if c.awaiting_stop {
                c.output.extend_from_slice(&reply);
                c.awaiting_stop = false;
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = c.stream.write_all(&c.output);
        }
        self.conns.clear();
        if let Some(p) = &self.pidfile
            && let Err(e) = std::fs::remove_file(p)
        {
            crate::f2b_log!(ERROR, LOG_SERVER, "Unable to remove PID file: {e}");
        }
    }
}

/// Writes the log lines of the actions.
/// Which of the descriptors are ready for what is asked of them (none
/// when the poll fails, e.g. interrupted by a signal).
fn poll_ready(
    wanted: impl Iterator<Item = (RawFd, nix::poll::PollFlags)>,
    timeout: nix::poll::PollTimeout,
) -> Vec<bool> {
    let mut pfds: Vec<nix::poll::PollFd> = wanted
        .map(|(fd, flags)| {
            // SAFETY: the callers' descriptors stay open until the poll returns.
            let b = unsafe { BorrowedFd::borrow_raw(fd) };
            nix::poll::PollFd::new(b, flags)
        })
        .collect();
    match nix::poll::poll(&mut pfds, timeout) {
        Ok(_) => pfds
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect(),
        Err(_) => vec![false; pfds.len()],
    }
}

fn emit_events(events: Vec<Event>) {
    for e in events {
        if let Event::Log(l) = e {
            crate::logging::emit(l.level, l.logger, format_args!("{}", l.message));
        }
    }
}

/// Marks a descriptor close-on-exec (actions must not inherit it).
fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own, with valid flag arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}
