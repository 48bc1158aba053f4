//! fail2ban's actions: the `action.d` command templates of a jail turned
//! into shell commands and run as child processes, without ever blocking
//! the server's poll loop.
//!
//! # Interface
//!
//! One [`Actions`] per jail.  The server core builds it from the jail's
//! command stream (`addaction` → [`Actions::add_action`], `set J action A
//! K V` / `multi-set` → [`Actions::set_property`]), then reports what it
//! decided, each call *enqueuing* work and returning at once:
//! [`Actions::start`] (jail start), [`Actions::ban`], [`Actions::unban`],
//! [`Actions::reban`], [`Actions::prolong`], [`Actions::flush`] (`unban
//! --all`, `reload --unban`), [`Actions::stop`] (jail stop),
//! [`Actions::consistency_check`] ("already banned" long after the ban),
//! [`Actions::begin_reload`]/[`Actions::end_reload`] (config reload).  A
//! ticket is described by a [`BanInfo`] the core fills from its ban ticket;
//! the jail's counters and ban time for `<jail.banned>`, `<bantime>` ...
//! come from the last [`Actions::set_stats`].
//!
//! The work advances inside the core's loop: watch [`Actions::fds`] for
//! reading (pidfds or the SIGCHLD pipe, output pipes, the DNS wake pipe;
//! the set changes after every call, so ask again each round), wake up at
//! [`Actions::next_deadline`], and call [`Actions::on_ready`] /
//! [`Actions::on_timer`].  After any call, [`Actions::take_events`] gives
//! the log lines to write (Python level, fail2ban logger name, text: the
//! server's own lines such as `NOTICE [sshd] Ban 192.0.2.1`, the commands'
//! `ERROR 7f3e... -- returned 1` ...) and a [`Done`] per finished
//! operation of an action.  [`Actions::is_idle`] tells when nothing is
//! queued or running (wait for it after `stop` before exiting).
//!
//! # Semantics
//!
//! Per action, operations run strictly in the order they were asked for,
//! one command at a time (start before the first ban, ban, unban, ...,
//! stop last); each follows fail2ban's `CommandAction` exactly: on-demand
//! start per address family, a failed command retried once (after
//! `actioncheck` and, if that fails, `actionrepair` or stop + start), unban
//! only for families that received a ban, flush and stop per family with
//! one run for identical commands, the ban epoch bumped by a repair.
//!
//! Deliberate differences from fail2ban 1.0.2, which runs every command of
//! every jail under one global lock in the jail's actions thread:
//! - actions (of one jail and of different jails) run concurrently, so a
//!   slow `sendmail-whois` no longer delays `iptables` of the next ban;
//!   commands stay one at a time where the templates assume it (see
//!   [`gate`]: operations with all others, bans and unbans with those of
//!   actions of the same name), but a command that has run for 200 ms
//!   (`gate::GRACE`) holds back no other;
//! - a command's output is read while it runs (fail2ban's child blocks on
//!   a full pipe until its timeout), at most 1 MiB per stream is kept for
//!   the log, and stdin is `/dev/null`;
//! - `reban` of several actions does not stop at the first failing one
//!   (the result is not known when the core needs it);
//! - log lines that report the outcome of a command come when it ends, so
//!   `Unban` lines of a flush are logged before the flush command's errors;
//! - `<fq-hostname>` and `<ip-host>` are resolved on a helper thread;
//! - operation commands (start, stop, flush ...) see the jail counters of
//!   the moment (fail2ban keeps those it computed for the first operation).
//!
//! Without pidfds (Linux < 5.3) the runner installs a process-wide SIGCHLD
//! handler (calling a plain handler found before it) that wakes each jail's
//! pipe; the core must then not reap children of its own with `wait(-1)`.
//!
//! Python actions (`action.d/*.py`) cannot be hosted:
//! [`Actions::add_python_action`] refuses them with a clear error.

mod command;
mod dns;
mod runner;
mod tags;

#[cfg(test)]
mod difftest;
#[cfg(test)]
mod tests;

/// fail2ban's `str2seconds` as an action time (`timeout`): an int or a
/// float, as Python's evaluation gives it.
pub fn str2seconds(text: &str) -> Result<Num, String> {
    match crate::mytime::str2seconds(text)? {
        PyValue::Int(i) => Ok(Num::Int(i)),
        PyValue::Float(f) => Ok(Num::Float(f)),
        PyValue::Bool(b) => Ok(Num::Int(i64::from(b))),
        other => Err(format!("not a number: {}", other.repr())),
    }
}

/// A command template with the dynamic tags of a failure replaced, as
/// fail2ban's `replaceDynamicTags` does for `ignorecommand`: the script
/// for `/bin/sh -c` and the values bound to its `$0`, `$1` ... (values
/// with shell metacharacters are never pasted into the script).  Tags
/// that would need a DNS lookup (`<ip-host>`, `<fq-hostname>`) stay as
/// they are.
pub fn dynamic_command(cmd: &str, info: &BanInfo, stats: JailStats) -> (String, Vec<String>) {
    let src = tags::TicketTags::new(info, stats, None);
    match tags::replace_dynamic_tags(cmd, &src) {
        Ok(sc) => (sc.script, sc.args),
        Err(_) => (cmd.to_string(), Vec::new()),
    }
}

use crate::failregex::Groups;
use crate::ipaddr::IpAddr;
use crate::logging::NOTICE;
use crate::pyvalue::{PyValue, float_repr, str_repr};
use command::{Act, Job, Kind, Request, run_job};
use dns::{DnsKey, Resolver};
use runner::{ChildId, Runner};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Waker};
use std::time::Instant;
use tags::ShellCmd;

const LOG_ACTIONS: &str = "fail2ban.actions";

/// A Python number as fail2ban keeps times and durations (an `int` or a
/// `float`, which print differently: `600` vs `1795678238.0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Python's `int(x)` (truncation).
    pub fn trunc_int(self) -> i64 {
        match self {
            Num::Int(i) => i,
            Num::Float(f) => f.trunc() as i64,
        }
    }
}

impl fmt::Display for Num {
    /// Python's `str()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => f.write_str(&float_repr(*x)),
        }
    }
}

/// Matches and failures of an address merged from the database
/// (fail2ban's `getBansMerged`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    pub matches: Vec<String>,
    pub failures: i64,
}

/// What actions know of a ban ticket (the values of `<ip>`, `<time>` ...).
#[derive(Debug, Clone, PartialEq)]
pub struct BanInfo {
    /// The address (`ticket.getIP()`: the `ip` of the failure data, else
    /// the id).
    pub ip: IpAddr,
    /// The failure id as text (`<fid>`; the address unless the filter
    /// captured `<F-ID>`); also the address in the `Ban`/`Unban` lines.
    pub fid: String,
    /// Counted failures (`<failures>`).
    pub failures: i64,
    /// Ticket time (`<time>`): a float for bans found in logs or from
    /// `banip`, an int for bans restored from the database.
    pub time: Num,
    /// The ticket's own ban time; `None` for the jail's.
    pub bantime: Option<Num>,
    /// How often banned, this ban included (`<bancount>`).
    pub bancount: i64,
    /// Matched lines (`<matches>`).
    pub matches: Vec<String>,
    /// Restored from the database at start (`<restored>`; actions with
    /// `norestored` skip it).
    pub restored: bool,
    /// Captured groups of the failure (`<F-USER>` ...), without `matches`
    /// and `failures`.
    pub data: Groups,
    /// Merged over all jails for `<ipmatches>`/`<ipfailures>`; `None`: the
    /// ticket's own (fail2ban without database).
    pub merged_all: Option<Merged>,
    /// Merged over this jail for `<ipjailmatches>`/`<ipjailfailures>`.
    pub merged_jail: Option<Merged>,
}

impl BanInfo {
    /// The empty ticket fail2ban uses for operation commands (start, stop,
    /// flush ...), at time `now`.
    pub fn empty(now: f64) -> BanInfo {
        BanInfo {
            ip: IpAddr::raw(""),
            fid: String::new(),
            failures: 0,
            time: Num::Float(now),
            bantime: None,
            bancount: 0,
            matches: Vec::new(),
            restored: false,
            data: Groups::new(),
            merged_all: None,
            merged_jail: None,
        }
    }
}

/// The jail's state that tags show: `<jail.banned>`, `<jail.banned_total>`,
/// `<jail.found>`, `<jail.found_total>`, and the jail's ban time (for
/// `<bantime>` of tickets without their own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JailStats {
    pub banned: i64,
    pub banned_total: i64,
    pub found: i64,
    pub found_total: i64,
    pub bantime: Num,
}

impl Default for JailStats {
    fn default() -> Self {
        JailStats {
            banned: 0,
            banned_total: 0,
            found: 0,
            found_total: 0,
            bantime: Num::Int(600),
        }
    }
}

/// A log line to write: Python level ([`crate::logging`] constants; also
/// 9 for the commands' trace lines), fail2ban logger name, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: i64,
    pub logger: &'static str,
    pub message: String,
}

/// The operations of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Ban,
    Reban,
    Unban,
    Prolong,
    Flush,
    Stop,
    Reload,
    Check,
}

/// One operation of one action has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub action: String,
    pub op: Op,
    /// The ticket's failure id for ban, reban, unban and prolong.
    pub ip: Option<String>,
    pub ok: bool,
    /// fail2ban's exception text on failure (`Error banning 192.0.2.1`).
    pub error: Option<String>,
}

/// What [`Actions::take_events`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Log(LogLine),
    Done(Done),
}

/// Errors of the configuration calls, as the Python exception fail2ban
/// raises (class name in [`ActionError::py_type`], message in `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    Value(String),
    Key(String),
    Attribute(String),
    Runtime(String),
}

impl ActionError {
    pub fn py_type(&self) -> &'static str {
        match self {
            ActionError::Value(_) => "ValueError",
            ActionError::Key(_) => "KeyError",
            ActionError::Attribute(_) => "AttributeError",
            ActionError::Runtime(_) => "RuntimeError",
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::Value(m) | ActionError::Attribute(m) | ActionError::Runtime(m) => {
                f.write_str(m)
            }
            ActionError::Key(m) => f.write_str(&str_repr(m)),
        }
    }
}

impl std::error::Error for ActionError {}

impl From<String> for ActionError {
    fn from(msg: String) -> Self {
        ActionError::Value(msg)
    }
}

/// The methods fail2ban lists for a command action (`actionmethods`).
pub const ACTION_METHODS: [&str; 15] = [
    "ban",
    "clearAllParams",
    "consistencyCheck",
    "escapeTag",
    "executeCmd",
    "flush",
    "invalidateBanEpoch",
    "prolong",
    "reban",
    "reload",
    "replaceDynamicTags",
    "replaceTag",
    "start",
    "stop",
    "unban",
];

/// State shared by a jail's actions and their running jobs.
pub(crate) struct JailCtx {
    pub(crate) name: String,
    events: RefCell<Vec<Event>>,
    pub(crate) epoch: Cell<u64>,
    pub(crate) stats: Cell<JailStats>,
    pub(crate) allow_ipv6: Cell<bool>,
    frozen_time: Cell<Option<f64>>,
}

impl JailCtx {
    pub(crate) fn log(&self, level: i64, logger: &'static str, message: String) {
        self.push(Event::Log(LogLine {
            level,
            logger,
            message,
        }));
    }

    pub(crate) fn push(&self, e: Event) {
        self.events.borrow_mut().push(e);
    }

    pub(crate) fn now(&self) -> f64 {
        self.frozen_time.get().unwrap_or_else(crate::mytime::now)
    }
}

/// One action: its job queue and the job in progress.
struct Slot {
    act: Rc<Act>,
    queue: VecDeque<Job>,
    job: Option<Pin<Box<dyn Future<Output = ()>>>>,
    wait: Wait,
}

enum Wait {
    Nothing,
    /// A command is running (with its entry in the command gate).
    Child(ChildId, u64),
    Dns(DnsKey),
    /// A command waits for the command gate (see [`gate`]).
    Gate(ShellCmd, Num, Kind),
}

impl Slot {
    fn idle(&self) -> bool {
        self.job.is_none() && self.queue.is_empty()
    }
}

/// The command gate.  fail2ban runs every command of every jail one at a
/// time under a global lock, and action templates rely on it: nftables
/// actions share a table that each one's `actionstop` deletes, and
/// `hostsdeny`-like actions rewrite one file with `sed -i`, so two unbans
/// run together lose one.  Here:
/// - an operation (start, stop, flush, check, repair, reload) starts once
///   no other command is running, and
/// - a ticket command (ban, unban, prolong) once no operation and no
///   ticket command of an action of the same name (of any jail: the same
///   template, the same file or table) is running;
///
/// but a command that has run for [`gate::GRACE`] no longer holds the
/// others back, so a slow `sendmail-whois` delays nothing by more than
/// that, and never delays the firewall actions' bans at all.
mod gate {
    use super::command::Kind;
    use std::cell::RefCell;
    use std::time::{Duration, Instant};

    /// How long a running command keeps the others waiting.
    pub(super) const GRACE: Duration = Duration::from_millis(200);

    /// A running command.
    struct Entry {
        token: u64,
        kind: Kind,
        action: String,
        since: Instant,
    }

    thread_local! {
        /// The last token given, and the running commands.
        static RUNNING: RefCell<(u64, Vec<Entry>)> = const { RefCell::new((0, Vec::new())) };
    }

    /// Whether running command `e` holds back a command of `kind` of the
    /// action named `action`.
    fn holds(e: &Entry, kind: Kind, action: &str) -> bool {
        kind == Kind::Operation || e.kind == Kind::Operation || e.action == action
    }

    /// When the gate opens for a command of `kind` of action `action`
    /// (`None`: no running command holds it back).
    pub(super) fn opens_at(kind: Kind, action: &str) -> Option<Instant> {
        RUNNING.with(|r| {
            r.borrow()
                .1
                .iter()
                .filter(|e| holds(e, kind, action))
                .map(|e| e.since + GRACE)
                .max()
        })
    }

    /// Whether a command of `kind` of action `action` may start now.
    pub(super) fn open(kind: Kind, action: &str) -> bool {
        opens_at(kind, action).is_none_or(|t| t <= Instant::now())
    }

    /// A command of `kind` of action `action` started; returns its token.
    pub(super) fn started(kind: Kind, action: String) -> u64 {
        RUNNING.with(|r| {
            let mut r = r.borrow_mut();
            r.0 += 1;
            let token = r.0;
            r.1.push(Entry {
                token,
                kind,
                action,
                since: Instant::now(),
            });
            token
        })
    }

    /// The command of `token` ended.
    pub(super) fn finished(token: u64) {
        RUNNING.with(|r| r.borrow_mut().1.retain(|e| e.token != token));
    }
}

/// Runs the commands: real processes, or (tests) scripted results.
enum Backend {
    Real(Runner),
    #[cfg(test)]
    Script(tests::Script),
}

/// The actions of one jail (see the module documentation).
pub struct Actions {
    ctx: Rc<JailCtx>,
    slots: Vec<(String, Slot)>,
    retired: Vec<Slot>,
    backend: Backend,
    resolver: Resolver,
    reloading: Option<Vec<String>>,
    stopped: bool,
    last_check: f64,
}

impl Actions {
    /// The actions of jail `jail` (none yet).
    pub fn new(jail: &str) -> Actions {
        Actions::with_backend(jail, Backend::Real(Runner::new()))
    }

    fn with_backend(jail: &str, backend: Backend) -> Actions {
        Actions {
            ctx: Rc::new(JailCtx {
                name: jail.to_string(),
                events: RefCell::new(Vec::new()),
                epoch: Cell::new(0),
                stats: Cell::new(JailStats::default()),
                allow_ipv6: Cell::new(true),
                frozen_time: Cell::new(None),
            }),
            slots: Vec::new(),
            retired: Vec::new(),
            backend,
            resolver: Resolver::new(),
            reloading: None,
            stopped: false,
            last_check: 0.0,
        }
    }

    pub fn jail(&self) -> &str {
        &self.ctx.name
    }

    /// Whether IPv6 is allowed (`allowipv6`): family-conditional actions
    /// that start with the jail then start for `inet6` too.
    pub fn set_allow_ipv6(&mut self, allow: bool) {
        self.ctx.allow_ipv6.set(allow);
    }

    /// The jail's counters and ban time, read when commands are built.
    pub fn set_stats(&mut self, stats: JailStats) {
        self.ctx.stats.set(stats);
    }

    /// The jail's ban epoch: bumped by every repair; tickets banned under
    /// an older epoch are rebanned when they show up again ([`Actions::reban`]).
    pub fn ban_epoch(&self) -> u64 {
        self.ctx.epoch.get()
    }

    /// The action names, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.slots.iter().map(|(n, _)| n.clone()).collect()
    }

    fn slot(&self, name: &str) -> Result<&Slot, ActionError> {
        self.slots
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| ActionError::Key(format!("Invalid Action name: {name}")))
    }

    /// `addaction NAME`: a new command action.  During a reload an
    /// existing action is kept (its command templates reset) and marked
    /// for `actionreload`.
    pub fn add_action(&mut self, name: &str) -> Result<(), ActionError> {
        if let Ok(slot) = self.slot(name) {
            let act = slot.act.clone();
            let Some(marked) = &mut self.reloading else {
                return Err(ActionError::Value(format!("Action {name} already exists")));
            };
            act.core.borrow_mut().clear_all_params();
            if !marked.iter().any(|n| n == name) {
                marked.push(name.to_string());
            }
            return Ok(());
        }
        let act = Rc::new(Act::new(name, self.ctx.clone()));
        self.slots.push((
            name.to_string(),
            Slot {
                act,
                queue: VecDeque::new(),
                job: None,
                wait: Wait::Nothing,
            },
        ));
        Ok(())
    }

    /// `addaction NAME FILE.py OPTS`: Python actions cannot run here.
    pub fn add_python_action(&mut self, name: &str, path: &str) -> Result<(), ActionError> {
        Err(ActionError::Runtime(format!(
            "Python action {name} ({path}) is not supported: fail2ban-rs runs shell command \
             actions only"
        )))
    }

    /// `delaction NAME`: removes the action (no stop, no unban); what it
    /// was asked to do before still runs.
    pub fn del_action(&mut self, name: &str) -> Result<(), ActionError> {
        let i = self
            .slots
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| ActionError::Key(format!("Invalid Action name: {name}")))?;
        let (_, slot) = self.slots.remove(i);
        if !slot.idle() {
            self.retired.push(slot);
        }
        Ok(())
    }

    /// `set J action A KEY VALUE`.
    pub fn set_property(
        &mut self,
        action: &str,
        key: &str,
        value: PyValue,
    ) -> Result<(), ActionError> {
        let slot = self.slot(action)?;
        let stored = slot.act.core.borrow_mut().set(key, value)?;
        if let Some(v) = stored {
            self.ctx.log(
                crate::logging::DEBUG,
                "fail2ban.CommandAction",
                format!("  Set {key} = {}", v.repr()),
            );
        }
        Ok(())
    }

    /// `get J action A KEY`.
    pub fn property(&self, action: &str, key: &str) -> Result<PyValue, ActionError> {
        self.slot(action)?
            .act
            .core
            .borrow()
            .get(key)
            .ok_or_else(|| {
                ActionError::Attribute(format!(
                    "'CommandAction' object has no attribute {}",
                    str_repr(key)
                ))
            })
    }

    /// `get J actionproperties A`: the property names, sorted.
    pub fn property_names(&self, action: &str) -> Result<Vec<String>, ActionError> {
        Ok(self.slot(action)?.act.core.borrow().property_names())
    }

    /// Whether some action uses `<ipmatches>`, `<ipjailmatches>`,
    /// `<ipfailures>` or `<ipjailfailures>` (so the core needs to fill
    /// [`BanInfo::merged_all`]/[`BanInfo::merged_jail`] from its database).
    pub fn wants_merged(&self) -> bool {
        const TAGS: [&str; 4] = [
            "<ipmatches>",
            "<ipjailmatches>",
            "<ipfailures>",
            "<ipjailfailures>",
        ];
        self.slots.iter().any(|(_, s)| {
            let core = s.act.core.borrow();
            core.property_names().iter().any(|k| {
                let v = core.get(k).map(|v| v.to_py_str()).unwrap_or_default();
                TAGS.iter().any(|t| v.contains(t))
            })
        })
    }

    /// Jail start: `actionstart` of every action that does not start on
    /// demand.
    pub fn start(&mut self) {
        for i in 0..self.slots.len() {
            self.enqueue(i, Job::Start);
        }
    }

    /// A new ban: logs `[jail] Ban <fid>` (`Restore Ban` for restored
    /// tickets) and runs `actionban` of each action (not for restored
    /// tickets on actions with `norestored`).
    pub fn ban(&mut self, info: &BanInfo) {
        if self.stopped {
            return;
        }
        let restore = if info.restored { "Restore " } else { "" };
        self.ctx.log(
            NOTICE,
            LOG_ACTIONS,
            format!("[{}] {restore}Ban {}", self.ctx.name, info.fid),
        );
        let info = Rc::new(info.clone());
        for i in 0..self.slots.len() {
            if info.restored && self.slots[i].1.act.core.borrow().norestored() {
                continue;
            }
            self.enqueue(i, Job::Ban(info.clone()));
        }
    }

    /// Bans again a ticket banned under an older epoch than the jail's:
    /// runs `actionreban` (else `actionban`) of the actions repaired since
    /// (all if none), logs `[jail] Reban <fid>[, action 'a']`, and returns
    /// the epoch to store in the ticket.
    pub fn reban(&mut self, info: &BanInfo, ticket_epoch: u64) -> u64 {
        if self.stopped {
            return self.ban_epoch();
        }
        let mut chosen: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].1.act.core.borrow().ban_epoch > ticket_epoch)
            .collect();
        if chosen.is_empty() {
            chosen = (0..self.slots.len()).collect();
        }
        let only = match chosen.as_slice() {
            [i] => format!(", action {}", str_repr(&self.slots[*i].0)),
            _ => String::new(),
        };
        self.ctx.log(
            NOTICE,
            LOG_ACTIONS,
            format!("[{}] Reban {}{only}", self.ctx.name, info.fid),
        );
        let info = Rc::new(info.clone());
        for i in chosen {
            self.enqueue(i, Job::Reban(info.clone()));
        }
        self.ban_epoch()
    }

    /// A ban ends: logs `[jail] Unban <fid>` and runs `actionunban` of
    /// each action (for families that received a ban).
    pub fn unban(&mut self, info: &BanInfo) {
        if self.stopped {
            return;
        }
        self.ctx.log(
            NOTICE,
            LOG_ACTIONS,
            format!("[{}] Unban {}", self.ctx.name, info.fid),
        );
        let info = Rc::new(info.clone());
        for i in 0..self.slots.len() {
            self.enqueue(i, Job::Unban(info.clone()));
        }
    }

    /// A ban was lengthened (bantime.increment): `actionprolong` of the
    /// actions that have one.
    pub fn prolong(&mut self, info: &BanInfo) {
        if self.stopped {
            return;
        }
        let info = Rc::new(info.clone());
        for i in 0..self.slots.len() {
            let core = self.slots[i].1.act.core.borrow();
            let skip = (info.restored && core.norestored()) || !core.prolongable();
            drop(core);
            if !skip {
                self.enqueue(i, Job::Prolong(info.clone()));
            }
        }
    }

    /// Removes all bans (`unban --all`, `reload --unban`): `actionflush`
    /// of the actions that have one, `actionunban` per ticket of the
    /// others; logs `Flush ticket(s) with <a>` and `Unban <fid>` per ticket.
    pub fn flush(&mut self, tickets: &[BanInfo]) {
        if self.stopped {
            return;
        }
        let all: Vec<usize> = (0..self.slots.len()).collect();
        self.flush_some(&all, tickets, true, false);
    }

    fn flush_some(&mut self, which: &[usize], tickets: &[BanInfo], log: bool, stop: bool) {
        let mut unbanners = Vec::new();
        for &i in which {
            if self.slots[i].1.act.core.borrow().flushable() {
                self.ctx.log(
                    NOTICE,
                    LOG_ACTIONS,
                    format!(
                        "[{}] Flush ticket(s) with {}",
                        self.ctx.name, self.slots[i].0
                    ),
                );
                self.enqueue(i, Job::Flush { stop });
            } else {
                unbanners.push(i);
            }
        }
        for t in tickets {
            if log {
                self.ctx.log(
                    NOTICE,
                    LOG_ACTIONS,
                    format!("[{}] Unban {}", self.ctx.name, t.fid),
                );
            }
            let info = Rc::new(t.clone());
            for &i in &unbanners {
                self.enqueue(i, Job::Unban(info.clone()));
            }
        }
    }

    /// Jail stop: removes the bans `tickets` as [`Actions::flush`] does
    /// (no repair if a flush fails), then `actionstop` of every action, in
    /// reverse order; the actions are gone afterwards.
    pub fn stop(&mut self, tickets: &[BanInfo]) {
        if self.stopped {
            return;
        }
        let all: Vec<usize> = (0..self.slots.len()).collect();
        self.flush_some(&all, tickets, true, true);
        self.stop_and_remove(&all);
        self.stopped = true;
    }

    fn stop_and_remove(&mut self, which: &[usize]) {
        for &i in which.iter().rev() {
            self.enqueue(i, Job::Stop);
        }
        let names: Vec<String> = which.iter().map(|&i| self.slots[i].0.clone()).collect();
        let removed: Vec<(String, Slot)> = self
            .slots
            .extract_if(.., |(n, _)| names.contains(n))
            .collect();
        self.retired
            .extend(removed.into_iter().map(|(_, s)| s).filter(|s| !s.idle()));
    }

    /// An "already banned" failure long after its ban: `actioncheck` of
    /// every action (repairing if it fails), at most every 3 seconds.
    pub fn consistency_check(&mut self) {
        if self.stopped {
            return;
        }
        let now = self.ctx.now();
        if now <= self.last_check + 3.0 {
            return;
        }
        self.last_check = now;
        for i in 0..self.slots.len() {
            self.enqueue(i, Job::Check);
        }
    }

    /// The jail is being reloaded: actions added again keep their state.
    pub fn begin_reload(&mut self) {
        self.reloading = Some(Vec::new());
    }

    /// The reload is complete: `actionreload` of the actions added again;
    /// the others (as in fail2ban 1.0.2, including actions new to the
    /// jail) remove the bans `tickets` (without `Unban` lines), stop and
    /// are removed.
    pub fn end_reload(&mut self, tickets: &[BanInfo]) {
        let Some(marked) = self.reloading.take() else {
            return;
        };
        if self.stopped {
            return;
        }
        for name in &marked {
            if let Some(i) = self.slots.iter().position(|(n, _)| n == name) {
                self.enqueue(i, Job::Reload);
            }
        }
        let gone: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !marked.contains(&self.slots[i].0))
            .collect();
        if !gone.is_empty() {
            self.flush_some(&gone, tickets, false, true);
            self.stop_and_remove(&gone);
        }
    }

    fn enqueue(&mut self, i: usize, job: Job) {
        self.slots[i].1.queue.push_back(job);
        let Actions {
            slots,
            backend,
            resolver,
            ctx,
            ..
        } = self;
        pump(&mut slots[i].1, backend, resolver, ctx);
    }

    /// The descriptors to watch for reading.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut fds = match &self.backend {
            Backend::Real(r) => r.fds(),
            #[cfg(test)]
            Backend::Script(_) => Vec::new(),
        };
        fds.extend(self.resolver.fd());
        fds
    }

    /// When [`Actions::on_timer`] must be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let runner = match &self.backend {
            Backend::Real(r) => r.next_deadline(),
            #[cfg(test)]
            Backend::Script(_) => None,
        };
        // gated commands of any jail may go as soon as the gate opens
        let gate = self
            .slots
            .iter()
            .map(|(_, s)| s)
            .chain(&self.retired)
            .filter_map(|s| match s.wait {
                Wait::Gate(_, _, kind) => {
                    Some(gate::opens_at(kind, &s.act.name()).unwrap_or_else(Instant::now))
                }
                _ => None,
            })
            .min();
        match (runner, gate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One of [`Actions::fds`] is readable.
    pub fn on_ready(&mut self, fd: RawFd) {
        if self.resolver.fd() == Some(fd) {
            for key in self.resolver.on_ready() {
                self.answer(|w| matches!(w, Wait::Dns(k) if *k == key), true);
            }
            return;
        }
        let finished = match &mut self.backend {
            Backend::Real(r) => {
                let f = r.on_ready(fd);
                self.flush_runner_logs();
                f
            }
            #[cfg(test)]
            Backend::Script(_) => Vec::new(),
        };
        for f in finished {
            self.answer(|w| matches!(w, Wait::Child(id, _) if *id == f.id), f.ok);
        }
    }

    /// The deadline from [`Actions::next_deadline`] has come.
    pub fn on_timer(&mut self, now: Instant) {
        let finished = match &mut self.backend {
            Backend::Real(r) => {
                let f = r.on_timer(now);
                self.flush_runner_logs();
                f
            }
            #[cfg(test)]
            Backend::Script(_) => Vec::new(),
        };
        for f in finished {
            self.answer(|w| matches!(w, Wait::Child(id, _) if *id == f.id), f.ok);
        }
        // the gate may have opened (a command of another jail ended)
        self.answer(|_| false, true);
    }

    fn flush_runner_logs(&mut self) {
        let logs = match &mut self.backend {
            Backend::Real(r) => r.take_logs(),
            #[cfg(test)]
            Backend::Script(_) => Vec::new(),
        };
        for l in logs {
            self.ctx.push(Event::Log(l));
        }
    }

    /// Gives `ok` to the jobs waiting as `which` says, and lets them go on.
    fn answer(&mut self, which: impl Fn(&Wait) -> bool, ok: bool) {
        let Actions {
            slots,
            retired,
            backend,
            resolver,
            ctx,
            ..
        } = self;
        for slot in slots.iter_mut().map(|(_, s)| s).chain(retired.iter_mut()) {
            if which(&slot.wait) {
                if let Wait::Child(_, token) = slot.wait {
                    gate::finished(token);
                }
                slot.wait = Wait::Nothing;
                slot.act.io.borrow_mut().response = Some(ok);
                pump(slot, backend, resolver, ctx);
            }
        }
        // commands that waited for the gate may go now
        for slot in slots.iter_mut().map(|(_, s)| s).chain(retired.iter_mut()) {
            if matches!(slot.wait, Wait::Gate(..)) {
                pump(slot, backend, resolver, ctx);
            }
        }
        retired.retain(|s| !s.idle());
    }

    /// The log lines and completions since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut *self.ctx.events.borrow_mut())
    }

    /// Nothing queued or running.
    pub fn is_idle(&self) -> bool {
        self.retired.is_empty() && self.slots.iter().all(|(_, s)| s.idle())
    }
}

/// Advances the jobs of one action until one waits for a command or a
/// lookup, or the queue is empty.
fn pump(slot: &mut Slot, backend: &mut Backend, resolver: &mut Resolver, ctx: &JailCtx) {
    let mut cx = Context::from_waker(Waker::noop());
    if let Wait::Gate(_, _, kind) = slot.wait {
        if !gate::open(kind, &slot.act.name()) {
            return;
        }
        let Wait::Gate(cmd, timeout, kind) = std::mem::replace(&mut slot.wait, Wait::Nothing)
        else {
            unreachable!("checked above")
        };
        slot.act.io.borrow_mut().request = Some(Request::Exec(cmd, timeout, kind));
    }
    loop {
        if !matches!(slot.wait, Wait::Nothing) {
            return;
        }
        let job = match &mut slot.job {
            Some(j) => j,
            None => match slot.queue.pop_front() {
                Some(job) => slot.job.insert(Box::pin(run_job(slot.act.clone(), job))),
                None => return,
            },
        };
        if job.as_mut().poll(&mut cx).is_ready() {
            slot.job = None;
            continue;
        }
        let request = slot.act.io.borrow_mut().request.take();
        let answer = match request {
            // A job only waits on its own requests.
            None => {
                slot.job = None;
                continue;
            }
            Some(Request::Exec(cmd, timeout, kind)) => match backend {
                Backend::Real(_) if !gate::open(kind, &slot.act.name()) => {
                    slot.wait = Wait::Gate(cmd, timeout, kind);
                    return;
                }
                Backend::Real(r) => {
                    let spawned = r.spawn(&cmd, timeout);
                    for l in r.take_logs() {
                        ctx.push(Event::Log(l));
                    }
                    match spawned {
                        Ok(id) => {
                            slot.wait = Wait::Child(id, gate::started(kind, slot.act.name()));
                            return;
                        }
                        Err(()) => false,
                    }
                }
                #[cfg(test)]
                Backend::Script(s) => {
                    ctx.log(0, "test.exec", cmd.display());
                    s.next_result()
                }
            },
            Some(Request::Dns(key)) => {
                #[cfg(test)]
                if let Backend::Script(_) = backend {
                    dns::resolve_now(&key);
                }
                if dns::cached(&key).is_some() || !resolver.request(key.clone()) {
                    true
                } else {
                    slot.wait = Wait::Dns(key);
                    return;
                }
            }
        };
        slot.act.io.borrow_mut().response = Some(answer);
    }
}
