//! Child processes of action commands, run without blocking the poll loop.
//!
//! Each command runs as `/bin/sh -c SCRIPT [VALUE ...]` in a new session
//! (so its process group can be killed as a whole), with the server's
//! environment and working directory, stdin on `/dev/null` and stdout and
//! stderr on non-blocking pipes that the poll loop drains as data arrives
//! (fail2ban reads them only after the exit, so a chatty command blocks on
//! a full pipe until its timeout; here it never blocks).
//!
//! The end of a child is noticed through a pidfd (Linux ≥ 5.3).  Without
//! pidfds, a SIGCHLD handler writes a byte to a pipe per runner (the write
//! ends are never closed, so the handler cannot hit a reused descriptor);
//! if even that is not available, exits are polled every 50 ms.
//!
//! A command that outlives its timeout is handled as fail2ban does: its
//! group gets SIGTERM, 0.2 s later SIGKILL, and the result is a failure
//! reported as `killed with SIGTERM (return code: -15)` (or SIGKILL).  The
//! log lines (`<id> -- exec: ...`, `stdout: '...'`, `returned 1` ...) are
//! fail2ban's, under its `fail2ban.utils` logger; `<id>` is a per-command
//! hexadecimal token (fail2ban prints an object address).
//!
//! Written on `std::process` plus raw descriptors because no process crate
//! offers the pieces together: poll-driven output capture, pidfds, group
//! kills with fail2ban's timing, and a registry-based SIGCHLD fallback.

use super::tags::ShellCmd;
use super::{LogLine, Num};
use crate::logging::{DEBUG, ERROR, INFO};
use crate::pyvalue::str_repr;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, killpg, sigaction};
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const LOGGER: &str = "fail2ban.utils";

/// Time between SIGTERM and SIGKILL, and the wait after SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(200);
/// Interval of exit checks for children without pidfd or signal watch.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The deadline of a timeout too large to represent.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86400);
/// Output kept per stream and command (the rest is read and dropped).
const OUTPUT_CAP: usize = 1 << 20;

/// Identifies a child of a [`Runner`].
pub(crate) type ChildId = u64;

/// How the end of a child is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watch {
    Pidfd,
    SigChld,
    Poll,
}

/// A finished command: its id and whether it succeeded (exit status 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finished {
    pub id: ChildId,
    pub ok: bool,
}

/// Output of one stream of a child.
struct Capture {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl Capture {
    fn new(fd: Option<OwnedFd>) -> Capture {
        if let Some(fd) = &fd
            && let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL)
        {
            let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
            let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
        }
        Capture {
            fd,
            buf: Vec::new(),
        }
    }

    fn raw(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Reads what is available; closes the pipe at its end.
    fn drain(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut chunk = [0u8; 16384];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => break,
            }
        }
        self.fd = None;
    }
}

enum Phase {
    Running,
    /// SIGTERM sent; SIGKILL at the instant.
    Terminating(Instant),
    /// SIGKILL sent; given up at the instant.
    Killing(Instant),
}

struct Running {
    id: ChildId,
    token: String,
    cmd: ShellCmd,
    timeout: Num,
    proc: Child,
    pidfd: Option<OwnedFd>,
    watch: Watch,
    out: Capture,
    err: Capture,
    deadline: Instant,
    phase: Phase,
    exec_logged: bool,
    /// Python-style return code once the child is reaped.
    status: Option<i32>,
}

impl Running {
    fn pid(&self) -> i32 {
        self.proc.id() as i32
    }

    /// Reaps the child if it has ended.
    fn check_exit(&mut self) {
        if self.status.is_some() {
            return;
        }
        self.status = match self.proc.try_wait() {
            Ok(Some(st)) => Some(match st.signal() {
                Some(sig) => -sig,
                None => st.code().unwrap_or(0),
            }),
            Ok(None) => None,
            // Already reaped elsewhere (SIGCHLD ignored): Python's `poll`
            // then reports 0.
            Err(_) => Some(0),
        };
    }

    fn kill_group(&self, sig: Signal) {
        let _ = killpg(Pid::from_raw(self.pid()), sig);
    }
}

/// A child given up on (not killable): reaped silently when it ends.
struct Abandoned {
    proc: Child,
    pidfd: Option<OwnedFd>,
}

/// Runs commands of one jail's actions.
pub(crate) struct Runner {
    watch: Watch,
    sig: Option<SigSlot>,
    children: Vec<Running>,
    abandoned: Vec<Abandoned>,
    next_poll: Option<Instant>,
    seq: u64,
    logs: Vec<LogLine>,
}

impl Runner {
    /// A runner watching exits with pidfds when the kernel has them.
    pub(crate) fn new() -> Runner {
        let watch = if pidfd_open(std::process::id() as i32).is_ok() {
            Watch::Pidfd
        } else {
            Watch::SigChld
        };
        Runner::with_watch(watch)
    }

    /// A runner with the given exit watch (tests use each).
    pub(crate) fn with_watch(watch: Watch) -> Runner {
        Runner {
            watch,
            sig: None,
            children: Vec::new(),
            abandoned: Vec::new(),
            next_poll: None,
            seq: 0,
            logs: Vec::new(),
        }
    }

    /// The log lines produced since the last call.
    pub(crate) fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.logs)
    }

    fn log(&mut self, level: i64, message: String) {
        self.logs.push(LogLine {
            level,
            logger: LOGGER,
            message,
        });
    }

    /// Starts `cmd`; it is killed when it runs longer than `timeout`
    /// seconds.  `Err` when it could not be started (logged).
    pub(crate) fn spawn(&mut self, cmd: &ShellCmd, timeout: Num) -> Result<ChildId, ()> {
        self.seq += 1;
        let id = self.seq;
        let token = format!("{:x}", 0x7f3e_2500_0000u64 + id * 0x30);
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(&cmd.script)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A process group of its own, so that a timeout kills the command's
        // children too.  fail2ban makes a new session; a new group lets
        // the standard library start the command with posix_spawn (no copy
        // of the server's page tables, whose cost grew with its memory, at
        // every ban), and differs only in that the command could still
        // open the server's controlling terminal, which a daemon lacks.
        c.process_group(0);
        let mut proc = match c.spawn() {
            Ok(p) => p,
            Err(e) => {
                self.log(ERROR, format!("{token} -- exec: {}", cmd.display()));
                self.log(
                    ERROR,
                    format!("{} -- failed with {}", cmd.display(), os_error_text(&e)),
                );
                return Err(());
            }
        };
        let out = Capture::new(proc.stdout.take().map(OwnedFd::from));
        let err = Capture::new(proc.stderr.take().map(OwnedFd::from));
        let (watch, pidfd) = self.watch_child(proc.id() as i32);
        let now = Instant::now();
        let deadline = Duration::try_from_secs_f64(timeout.as_f64().max(0.0))
            .ok()
            .and_then(|d| now.checked_add(d))
            .unwrap_or_else(|| now + FOREVER);
        self.children.push(Running {
            id,
            token,
            cmd: cmd.clone(),
            timeout,
            proc,
            pidfd,
            watch,
            out,
            err,
            deadline,
            phase: Phase::Running,
            exec_logged: false,
            status: None,
        });
        Ok(id)
    }

    /// How to notice the end of a new child.  A child registered for the
    /// SIGCHLD pipe after it has already ended is caught by a first check
    /// scheduled right away.
    fn watch_child(&mut self, pid: i32) -> (Watch, Option<OwnedFd>) {
        if self.watch == Watch::Pidfd
            && let Ok(fd) = pidfd_open(pid)
        {
            return (Watch::Pidfd, Some(fd));
        }
        if self.watch != Watch::Poll {
            if self.sig.is_none() {
                self.sig = SigSlot::acquire();
            }
            if self.sig.is_some() {
                self.next_poll = Some(Instant::now());
                return (Watch::SigChld, None);
            }
        }
        self.next_poll = Some(Instant::now());
        (Watch::Poll, None)
    }

    /// The descriptors to watch for reading.
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        let mut fds = Vec::new();
        for c in &self.children {
            fds.extend(c.pidfd.as_ref().map(|f| f.as_raw_fd()));
            fds.extend(c.out.raw());
            fds.extend(c.err.raw());
        }
        for a in &self.abandoned {
            fds.extend(a.pidfd.as_ref().map(|f| f.as_raw_fd()));
        }
        if let Some(s) = &self.sig
            && (self.children.iter().any(|c| c.watch == Watch::SigChld)
                || self.abandoned.iter().any(|a| a.pidfd.is_none()))
        {
            fds.push(s.read_fd());
        }
        fds
    }

    /// When [`Runner::on_timer`] must run next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let phases = self.children.iter().map(|c| match c.phase {
            Phase::Running => c.deadline,
            Phase::Terminating(t) | Phase::Killing(t) => t,
        });
        phases.chain(self.next_poll).min()
    }

    /// Handles a readable descriptor; returns the commands that finished.
    pub(crate) fn on_ready(&mut self, fd: RawFd) -> Vec<Finished> {
        let sig_fd = self.sig.as_ref().map(SigSlot::read_fd);
        if sig_fd == Some(fd) {
            if let Some(s) = &self.sig {
                s.drain();
            }
            for c in &mut self.children {
                if c.watch == Watch::SigChld {
                    c.check_exit();
                }
            }
            self.abandoned
                .retain_mut(|a| a.pidfd.is_some() || !reaped(a));
        }
        for c in &mut self.children {
            if c.pidfd.as_ref().map(|f| f.as_raw_fd()) == Some(fd) {
                c.check_exit();
            }
            if c.out.raw() == Some(fd) {
                c.out.drain();
            }
            if c.err.raw() == Some(fd) {
                c.err.drain();
            }
        }
        self.abandoned
            .retain_mut(|a| a.pidfd.as_ref().map(|f| f.as_raw_fd()) != Some(fd) || !reaped(a));
        self.collect(Instant::now())
    }

    /// Handles timeouts, kill steps and polled exits due at `now`.
    pub(crate) fn on_timer(&mut self, now: Instant) -> Vec<Finished> {
        if self.next_poll.is_some_and(|t| t <= now) {
            self.next_poll = None;
            let mut polled = false;
            for c in &mut self.children {
                if c.watch != Watch::Pidfd {
                    c.check_exit();
                    polled |= c.watch == Watch::Poll && c.status.is_none();
                }
            }
            self.abandoned.retain_mut(|a| !reaped(a));
            if polled || self.abandoned.iter().any(|a| a.pidfd.is_none()) {
                self.next_poll = Some(now + POLL_INTERVAL);
            }
        }
        let mut timed_out = Vec::new();
        for c in &mut self.children {
            match c.phase {
                Phase::Running if now >= c.deadline => {
                    c.check_exit();
                    if c.status.is_none() {
                        timed_out.push((c.token.clone(), c.cmd.display(), c.timeout));
                        c.exec_logged = true;
                        c.kill_group(Signal::SIGTERM);
                        c.phase = Phase::Terminating(now + KILL_GRACE);
                    }
                }
                Phase::Terminating(t) if now >= t => {
                    c.check_exit();
                    c.kill_group(Signal::SIGKILL);
                    c.phase = Phase::Killing(now + KILL_GRACE);
                }
                Phase::Killing(t) if now >= t => c.check_exit(),
                _ => {}
            }
        }
        for (token, cmd, timeout) in timed_out {
            self.log(ERROR, format!("{token} -- exec: {cmd}"));
            self.log(
                ERROR,
                format!("{token} -- timed out after {timeout} seconds."),
            );
        }
        self.collect(now)
    }

    /// Finishes the children whose end is known (or given up on).
    fn collect(&mut self, now: Instant) -> Vec<Finished> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.children.len() {
            let c = &mut self.children[i];
            let finish = match c.phase {
                _ if c.status.is_some() => true,
                Phase::Killing(t) => now >= t,
                _ => false,
            };
            if !finish {
                i += 1;
                continue;
            }
            let c = self.children.remove(i);
            if matches!(c.phase, Phase::Terminating(_)) {
                // fail2ban kills the rest of the group in any case.
                c.kill_group(Signal::SIGKILL);
            }
            done.push(self.finish(c));
        }
        done
    }

    /// Logs the end of a child as fail2ban does and reports it.
    fn finish(&mut self, mut c: Running) -> Finished {
        c.out.drain();
        c.err.drain();
        let rc = c.status;
        let ok = rc == Some(0);
        let level = if ok { DEBUG } else { ERROR };
        let token = c.token.clone();
        if !c.exec_logged {
            let exec_level = if ok { DEBUG - 1 } else { ERROR };
            self.log(exec_level, format!("{token} -- exec: {}", c.cmd.display()));
        }
        for (name, buf) in [("stdout", &c.out.buf), ("stderr", &c.err.buf)] {
            let lines: Vec<String> = split_lines(buf)
                .map(|l| {
                    format!(
                        "{token} -- {name}: {}",
                        str_repr(&String::from_utf8_lossy(l))
                    )
                })
                .collect();
            for l in lines {
                self.log(level, l);
            }
        }
        match rc {
            Some(0) => self.log(DEBUG, format!("{token} -- returned successfully 0")),
            None => {
                self.log(ERROR, format!("{token} -- unable to kill PID {}", c.pid()));
                self.abandoned.push(Abandoned {
                    proc: c.proc,
                    pidfd: c.pidfd.take(),
                });
                if c.watch == Watch::Poll {
                    self.next_poll.get_or_insert(Instant::now() + POLL_INTERVAL);
                }
            }
            Some(r) if !(0..=128).contains(&r) => {
                let sig = if r < 0 { -r } else { r - 128 };
                self.log(
                    ERROR,
                    format!(
                        "{token} -- killed with {} (return code: {r})",
                        signal_name(sig)
                    ),
                );
            }
            Some(r) => {
                self.log(ERROR, format!("{token} -- returned {r}"));
                if r == 127 {
                    self.log(
                        INFO,
                        format!(
                            "HINT on 127: \"Command not found\".  Make sure that all commands in {} \
                             are in the PATH of fail2ban-server process \
                             (grep -a PATH= /proc/`pidof -x fail2ban-server`/environ). \
                             You may want to start \"fail2ban-server -f\" separately, initiate it \
                             with \"fail2ban-client reload\" in another shell session and observe \
                             if additional informative error messages appear in the terminals.",
                            c.cmd.repr()
                        ),
                    );
                }
            }
        }
        Finished { id: c.id, ok }
    }
}

/// Whether an abandoned child has ended (and is now reaped).
fn reaped(a: &mut Abandoned) -> bool {
    !matches!(a.proc.try_wait(), Ok(None))
}

/// Lines as Python's `bytes.splitlines` cuts them (at LF, CR, CR LF).
fn split_lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            None => (rest, &rest[rest.len()..]),
            Some(end) => {
                let skip = if rest[end..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                (&rest[..end], &rest[end + skip..])
            }
        };
        rest = next;
        Some(line)
    })
}

/// The name fail2ban prints for a signal number (its table comes from
/// Python's `signal` module, where later aliases win).
fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "SIG_DFL",
        "SIG_IGN",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGPOLL",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        0..=31 => NAMES[sig as usize].to_string(),
        34 => "SIGRTMIN".to_string(),
        64 => "SIGRTMAX".to_string(),
        _ => format!("signal {sig}"),
    }
}

/// An OS error as Python prints an `OSError` (`[Errno 2] No such file ...`).
fn os_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("[Errno {n}] {}", Errno::from_raw(n).desc()),
        None => e.to_string(),
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Pipes the SIGCHLD handler writes to: write ends (never closed once
/// created) and read ends, by slot.
const SIG_SLOTS: usize = 64;
static SIG_WRITE: [AtomicI32; SIG_SLOTS] = [const { AtomicI32::new(-1) }; SIG_SLOTS];
static SIG_READ: [AtomicI32; SIG_SLOTS] = [const { AtomicI32::new(-1) }; SIG_SLOTS];
/// Which slots a runner holds; whether the handler is installed.
static SIG_USED: Mutex<([bool; SIG_SLOTS], bool)> = Mutex::new(([false; SIG_SLOTS], false));
/// The handler found before ours (a plain function, or 0).
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigchld(sig: libc::c_int) {
    let saved = Errno::last_raw();
    for slot in &SIG_WRITE {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write is async-signal-safe; the descriptor is never closed.
            unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
        }
    }
    let prev = PREV_HANDLER.load(Ordering::Relaxed);
    if prev != 0 {
        // SAFETY: `prev` was stored from a valid `extern "C" fn(c_int)` handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
        f(sig);
    }
    Errno::set_raw(saved);
}

/// A runner's slot in the SIGCHLD pipe registry.
struct SigSlot(usize);

impl SigSlot {
    fn acquire() -> Option<SigSlot> {
        let mut used = SIG_USED.lock().unwrap_or_else(|e| e.into_inner());
        let i = used.0.iter().position(|u| !u)?;
        if SIG_WRITE[i].load(Ordering::Relaxed) < 0 {
            let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
            SIG_READ[i].store(into_raw(r), Ordering::Relaxed);
            SIG_WRITE[i].store(into_raw(w), Ordering::Relaxed);
        }
        if !used.1 {
            let act = SigAction::new(
                SigHandler::Handler(on_sigchld),
                SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
                SigSet::empty(),
            );
            // SAFETY: the handler only uses async-signal-safe calls.
            let prev = unsafe { sigaction(Signal::SIGCHLD, &act) }.ok()?;
            if let SigHandler::Handler(f) = prev.handler() {
                PREV_HANDLER.store(f as usize, Ordering::Relaxed);
            }
            used.1 = true;
        }
        used.0[i] = true;
        Some(SigSlot(i))
    }

    fn read_fd(&self) -> RawFd {
        SIG_READ[self.0].load(Ordering::Relaxed)
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: the read end of this slot stays open for the process lifetime.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.read_fd()) };
        while matches!(nix::unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for SigSlot {
    fn drop(&mut self) {
        self.drain();
        let mut used = SIG_USED.lock().unwrap_or_else(|e| e.into_inner());
        used.0[self.0] = false;
    }
}

fn into_raw(fd: OwnedFd) -> RawFd {
    use std::os::fd::IntoRawFd;
    fd.into_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_python_bytes() {
        let v: Vec<&[u8]> = split_lines(b"a\nb\r\nc\rd").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c", b"d"]);
        let v: Vec<&[u8]> = split_lines(b"\n").collect();
        assert_eq!(v, vec![&b""[..]]);
        assert_eq!(split_lines(b"").count(), 0);
        let v: Vec<&[u8]> = split_lines(b"x\n\ny\n").collect();
        assert_eq!(v, vec![&b"x"[..], b"", b"y"]);
    }

    #[test]
    fn signal_names_follow_python_table() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(1), "SIG_IGN");
        assert_eq!(signal_name(29), "SIGPOLL");
        assert_eq!(signal_name(40), "signal 40");
    }
}
