//! `fail2ban-client`: the command-line client of the fail2ban server
//! (fail2ban's `Fail2banCmdLine` and `Fail2banClient`).
//!
//! The client parses its options with getopt rules ([`getopt`]), takes the
//! socket, pid file and logging options it was not given from
//! `fail2ban.conf` ([`crate::config::Configurator`]), and then either
//! prints the configuration stream (`-d`, `--dp`), tests the configuration
//! (`-t`), or runs a command: `start` launches `fail2ban-server` and pushes
//! the configuration to it, `restart`/`reload` read the configuration and
//! send it, everything else is sent unchanged over the socket
//! ([`crate::protocol`]) and the reply printed by the [`beautifier`].
//! Messages, exit statuses (0, or 255 on any failure) and the diagnostics on
//! stderr (`<time> fail2ban [pid]: ERROR   ...`) are Python's.
//!
//! A foreground start (`-f start`) runs Python's server inside the client
//! process; here the server is started as a child in the foreground, the
//! configuration pushed to it, and the client waits for it to end.

pub mod beautifier;
pub mod getopt;
pub mod pformat;
pub mod usage;

use crate::config::{Configurator, Vars, shlex_split};
use crate::protocol::{Connection, PyException, Reply, TransportError, py_os_error};
use crate::pyvalue::{PyValue, float_repr, str_repr};
use beautifier::{beautify, beautify_error, py_index};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

const SHORT_OPTIONS: &str = "hc:s:p:xfbdtviqV";
const LONG_OPTIONS: &[&str] = &[
    "loglevel=",
    "logtarget=",
    "syslogsocket=",
    "test",
    "async",
    "conf=",
    "pidfile=",
    "pname=",
    "socket=",
    "timeout=",
    "str2sec=",
    "help",
    "version",
    "dp",
    "dump-pretty",
];

/// The server program the client starts.
const SERVER: &str = "fail2ban-server";
/// Default wait for the server (`--timeout`), seconds.
const MAX_WAITTIME: f64 = 30.0;
const PROMPT: &str = "fail2ban> ";

/// Whether stderr diagnostics are set up (before, Python's last-resort
/// handler prints warnings and errors without a prefix).
static LOG_READY: AtomicBool = AtomicBool::new(false);
/// The pid of a server started in the foreground (killed with the client).
static FOREGROUND: AtomicI32 = AtomicI32::new(0);

fn log_error(msg: &str) {
    if LOG_READY.load(Ordering::Relaxed) {
        log::error!(target: "fail2ban", "{msg}");
    } else {
        eprintln!("{msg}");
    }
}

fn log_warning(msg: &str) {
    if LOG_READY.load(Ordering::Relaxed) {
        log::warn!(target: "fail2ban", "{msg}");
    } else {
        eprintln!("{msg}");
    }
}

/// `print()`: a line on stdout (a closed pipe is not an error).
fn output(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.write_all(b"\n");
}

/// Python's `str()` of a number from `str2seconds`.
fn num_text(v: &PyValue) -> String {
    match v {
        PyValue::Float(f) => float_repr(*f),
        other => other.to_py_str(),
    }
}

/// The client's settings (Python's `_conf`).
#[derive(Debug, Clone, PartialEq)]
pub struct Conf {
    /// `-c`: the configuration directory.
    pub conf: String,
    pub socket: Option<String>,
    pub pidfile: Option<String>,
    pub loglevel: Option<String>,
    pub logtarget: Option<String>,
    pub syslogsocket: Option<String>,
    /// `--pname`: the server's process name.
    pub pname: Option<String>,
    /// `-x`: remove a stale socket.
    pub force: bool,
    /// `-b` (true, the default) or `-f`.
    pub background: bool,
    /// 1 by default, `-v` adds and `-q` removes one.
    pub verbose: i64,
    /// `--async`: a server started by a client does not read the
    /// configuration.
    pub async_start: bool,
    /// `--timeout`, seconds.
    pub timeout: f64,
    /// `-d` (false) or `--dp` (true).
    pub dump: Option<bool>,
    /// `-t`.
    pub test: bool,
    /// `-i`.
    pub interactive: bool,
}

impl Default for Conf {
    fn default() -> Self {
        Conf {
            conf: "/etc/fail2ban".into(),
            socket: None,
            pidfile: None,
            loglevel: None,
            logtarget: None,
            syslogsocket: None,
            pname: None,
            force: false,
            background: true,
            verbose: 1,
            async_start: false,
            timeout: MAX_WAITTIME,
            dump: None,
            test: false,
            interactive: false,
        }
    }
}

/// How reading the command line ended (Python's `initCmdLine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// Nothing more to do: success (`-h`, `-V`, `-d`, `-t` ...) or failure.
    Done(bool),
    /// A command (or interactive mode) is to be run.
    Continue,
}

/// A client session: the command line, the settings and the work.
pub struct Client {
    argv: Vec<String>,
    /// The arguments after the options (the command).
    pub args: Vec<String>,
    pub conf: Conf,
    initialized: bool,
    /// `-t` given: definition errors in jails are fatal.
    clean_conf_only: bool,
    configurator: Option<Configurator>,
}

/// Runs `fail2ban-client` with `argv` (the program name first); returns
/// the exit status.
pub fn main(argv: Vec<String>) -> i32 {
    handle_signals();
    let mut client = Client::new(argv);
    let code = if client.start() { 0 } else { 255 };
    log::debug!(target: "fail2ban", "Exit with code {code}");
    let _ = std::io::stdout().flush();
    code
}

/// SIGTERM and SIGINT end the client with status 255 (after an empty line
/// and `Caught signal N. Exiting`), taking a foreground server along.
/// Called once, before other threads exist, by a process acting as client
/// (`fail2ban-client`, or `fail2ban-server` given a command).
pub fn handle_signals() {
    // SAFETY: plain libc signal-set manipulation on a local set; the mask
    // is changed before any other thread exists (the server child gets a
    // clean mask, see `spawn_server`).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let wait_set = set;
        std::thread::spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: waits on a valid signal set for a blocked signal.
            if libc::sigwait(&wait_set, &mut sig) == 0 {
                output("");
                log_warning(&format!("Caught signal {sig}. Exiting"));
                let child = FOREGROUND.load(Ordering::Relaxed);
                if child > 0 {
                    // SAFETY: signals the server child this client started.
                    libc::kill(child, libc::SIGTERM);
                }
                let _ = std::io::stdout().flush();
                std::process::exit(255);
            }
        });
    }
}

/// An exception that ends the current operation, logged as `str(e)`.
type Fail = String;

impl Client {
    pub fn new(argv: Vec<String>) -> Client {
        Client {
            argv,
            args: Vec::new(),
            conf: Conf::default(),
            initialized: false,
            clean_conf_only: false,
            configurator: None,
        }
    }

    fn caller(&self) -> String {
        let name = self.argv.first().map(String::as_str).unwrap_or(SERVER);
        Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn socket(&self) -> &str {
        self.conf.socket.as_deref().unwrap_or_default()
    }

    fn disp_usage(&self) {
        print!("{}", usage::usage(&self.caller()));
    }

    /// Reads the command line, sets up diagnostics, fills the settings from
    /// `fail2ban.conf`, and performs `-d`/`-t`.  `Err` is a failed
    /// configuration test (Python raises it to the caller).
    pub fn init_cmdline(&mut self) -> Result<Init, Fail> {
        let initial = !self.initialized;
        self.initialized = true;
        let (opts, args) = match getopt::getopt(&self.argv[1..], SHORT_OPTIONS, LONG_OPTIONS) {
            Ok(r) => r,
            Err(_) => {
                self.disp_usage();
                return Ok(Init::Done(false));
            }
        };
        self.args = args;
        match self.apply_options(&opts) {
            Ok(Some(done)) => return Ok(Init::Done(done)),
            Ok(None) => {}
            Err(e) => {
                output(&format!("ERROR: {e}"));
                return Ok(Init::Done(false));
            }
        }
        if initial {
            let level = match self.conf.verbose {
                v if v <= 0 => crate::logging::ERROR,
                1 => crate::logging::WARNING,
                2 => crate::logging::INFO,
                3 => crate::logging::DEBUG,
                _ => crate::logging::HEAVYDEBUG,
            };
            crate::logging::init_stderr(level);
            LOG_READY.store(true, Ordering::Relaxed);
        }
        match self.init_settings() {
            Ok(None) => Ok(Init::Continue),
            Ok(Some(done)) => Ok(Init::Done(done)),
            Err(Some(fail)) => Err(fail),
            Err(None) => Ok(Init::Done(false)),
        }
    }

    /// The options in order; `Some` ends the run (help, version,
    /// `--str2sec`), `Err` is an exception text.
    fn apply_options(&mut self, opts: &[(String, String)]) -> Result<Option<bool>, String> {
        for (o, v) in opts {
            match o.as_str() {
                "-c" | "--conf" => self.conf.conf = v.clone(),
                "-s" | "--socket" => self.conf.socket = Some(v.clone()),
                "-p" | "--pidfile" => self.conf.pidfile = Some(v.clone()),
                "-d" => self.conf.dump = Some(false),
                "--dp" | "--dump-pretty" => self.conf.dump = Some(true),
                "-t" | "--test" => {
                    self.clean_conf_only = true;
                    self.conf.test = true;
                }
                "-v" => self.conf.verbose += 1,
                "-q" => self.conf.verbose -= 1,
                "-x" => self.conf.force = true,
                "-i" => self.conf.interactive = true,
                "-b" => self.conf.background = true,
                "-f" => self.conf.background = false,
                "--async" => self.conf.async_start = true,
                "--timeout" => {
                    self.conf.timeout = match crate::mytime::str2seconds(v)? {
                        PyValue::Int(i) => i as f64,
                        PyValue::Float(f) => f,
                        other => {
                            return Err(format!(
                                "timeout must be a number, not {}",
                                other.type_name()
                            ));
                        }
                    }
                }
                "--str2sec" => {
                    output(&num_text(&crate::mytime::str2seconds(v)?));
                    return Ok(Some(true));
                }
                "-h" | "--help" => {
                    self.disp_usage();
                    return Ok(Some(true));
                }
                "-V" => {
                    output(usage::VERSION);
                    return Ok(Some(true));
                }
                "--version" => {
                    output(&format!("Fail2Ban v{}", usage::VERSION));
                    return Ok(Some(true));
                }
                "--loglevel" => self.conf.loglevel = Some(v.clone()),
                "--logtarget" => self.conf.logtarget = Some(v.clone()),
                "--syslogsocket" => self.conf.syslogsocket = Some(v.clone()),
                "--pname" => self.conf.pname = Some(v.clone()),
                _ => {}
            }
        }
        Ok(None)
    }

    fn configurator(&mut self) -> &mut Configurator {
        let dir = self.conf.conf.clone();
        self.configurator
            .get_or_insert_with(|| Configurator::new(Some(&dir), false))
    }

    /// Settings from `fail2ban.conf`, the log level check, `-d` and `-t`.
    /// `Err(None)`: an exception already printed as `ERROR: ...`;
    /// `Err(Some(msg))`: the failed configuration test.
    fn init_settings(&mut self) -> Result<Option<bool>, Option<Fail>> {
        let fail = |e: String| {
            output(&format!("ERROR: {e}"));
            None
        };
        let c = &self.conf;
        let missing = c.socket.is_none()
            || c.pidfile.is_none()
            || c.logtarget.is_none()
            || c.loglevel.is_none()
            || c.syslogsocket.is_none();
        if missing {
            let cfg = self.configurator();
            cfg.read_early().map_err(|e| fail(e.to_string()))?;
            let early = cfg.early_options().map_err(|e| fail(e.to_string()))?;
            let get = |k: &str| early.get(k).map(PyValue::to_py_str);
            let c = &mut self.conf;
            for (slot, key) in [
                (&mut c.socket, "socket"),
                (&mut c.pidfile, "pidfile"),
                (&mut c.logtarget, "logtarget"),
                (&mut c.loglevel, "loglevel"),
                (&mut c.syslogsocket, "syslogsocket"),
            ] {
                if slot.is_none() {
                    *slot = get(key);
                }
            }
        }
        log::info!(target: "fail2ban", "Using socket file {}", self.socket());
        let level = self.conf.loglevel.clone().unwrap_or_default();
        let level = crate::logging::str2loglevel(&level).map_err(fail)?;
        log::info!(
            target: "fail2ban",
            "Using pid file {}, [{}] logging to {}",
            self.conf.pidfile.as_deref().unwrap_or_default(),
            beautifier::level_name(level),
            self.conf.logtarget.as_deref().unwrap_or_default()
        );
        let mut read = None;
        if let Some(pretty) = self.conf.dump {
            let (ret, stream) = self.read_config(None);
            match &stream {
                Some(cmds) => dump_config(cmds, pretty),
                None => {
                    output("ERROR: The configuration stream failed because of the invalid syntax.")
                }
            }
            if !self.conf.test {
                return Ok(Some(ret));
            }
            read = Some(ret);
        }
        if self.conf.test {
            let ret = match read {
                Some(r) => r,
                None => self.read_config(None).0,
            };
            if !ret {
                return Err(Some("ERROR: test configuration failed".into()));
            }
            if self.args.is_empty() {
                output("OK: configuration test is successful");
                return Ok(Some(true));
            }
        }
        Ok(None)
    }

    /// Reads the whole configuration (or one jail's) into the command
    /// stream: `(valid, stream)`.
    fn read_config(&mut self, jail: Option<&str>) -> (bool, Option<Vec<PyValue>>) {
        let mut main = Vars::new();
        for (k, v) in [
            ("loglevel", &self.conf.loglevel),
            ("logtarget", &self.conf.logtarget),
            ("syslogsocket", &self.conf.syslogsocket),
        ] {
            if let Some(v) = v {
                main.insert(k.to_string(), PyValue::str(v.as_str()));
            }
        }
        let ignore_wrong = !self.clean_conf_only;
        let allow_no_files = self.conf.dump.is_some();
        let cfg = self.configurator();
        cfg.reload();
        match cfg.read_config(jail, Some(&main), ignore_wrong, allow_no_files) {
            Ok(cs) => (cs.ok, Some(cs.stream)),
            Err(e) => {
                log_error(&format!("Failed during configuration: {e}"));
                (false, None)
            }
        }
    }

    /// Runs the session after [`Client::init_cmdline`] (Python's
    /// `Fail2banClient.start`): whether it succeeded.
    pub fn start(&mut self) -> bool {
        if !self.initialized {
            match self.init_cmdline() {
                Ok(Init::Continue) => {}
                Ok(Init::Done(true)) => return true,
                Ok(Init::Done(false)) => {
                    log_error("Init of command line failed");
                    return false;
                }
                Err(e) => {
                    log_error(&e);
                    return false;
                }
            }
        }
        let result = if self.conf.interactive {
            self.interactive()
        } else if self.args.is_empty() {
            self.disp_usage();
            Ok(false)
        } else {
            let args = self.args.clone();
            self.process_command(args)
        };
        result.unwrap_or_else(|e| {
            log_error(&e);
            false
        })
    }

    fn interactive(&mut self) -> Result<bool, Fail> {
        let mut ret = true;
        if !self.args.is_empty() {
            let args = self.args.clone();
            ret = self.process_command(args)?;
        }
        if !ret {
            return Ok(ret);
        }
        print!("{}", usage::banner());
        let stdin = std::io::stdin();
        loop {
            print!("{PROMPT}");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
                output("");
                return Err("EOF when reading a line".into());
            }
            let cmd = line.strip_suffix('\n').unwrap_or(&line);
            match cmd {
                "exit" | "quit" => return Ok(true),
                "help" => self.disp_usage(),
                "" => {}
                _ => {
                    let done = shlex_split(cmd)
                        .map_err(|e| e.to_string())
                        .and_then(|words| self.process_command(words));
                    if let Err(e) = done {
                        log_error(&e);
                    }
                }
            }
        }
    }

    /// One command line (Python's `__processCommand`).
    fn process_command(&mut self, mut cmd: Vec<String>) -> Result<bool, Fail> {
        let interactive = self.conf.interactive;
        if cmd.len() == 1 && cmd[0] == "start" {
            return Ok(self.start_server());
        }
        if cmd.first().map(String::as_str) == Some("restart") {
            if cmd.len() > 1 {
                cmd.splice(0..1, ["reload".to_string(), "--restart".to_string()]);
                return self.process_command(cmd);
            }
            if interactive {
                output("  ## stop ... ");
            }
            self.process_command(vec!["stop".into()])?;
            if !self.wait_on_server(false, None)? {
                log_error("Could not stop server");
                return Ok(false);
            }
            if interactive {
                output("  ## load configuration ... ");
                self.conf = Conf::default();
                match self.init_cmdline()? {
                    Init::Done(ret) => return Ok(ret),
                    Init::Continue => {}
                }
            }
            if interactive {
                output("  ## start ... ");
            }
            return self.process_command(vec!["start".into()]);
        }
        if cmd.first().map(String::as_str) == Some("reload") {
            let mut opts = Vec::new();
            while cmd.len() >= 2 {
                if matches!(cmd[1].as_str(), "--restart" | "--unban" | "--if-exists") {
                    opts.push(cmd.remove(1));
                } else {
                    if cmd.len() > 2 {
                        log_error(&format!(
                            "Unexpected argument(s) for reload: {}",
                            PyValue::str_list(cmd[1..].iter().cloned()).repr()
                        ));
                        return Ok(false);
                    }
                    break;
                }
            }
            if !self.ping(None) {
                log_error("Could not find server");
                return Ok(false);
            }
            let (jail, (ret, stream)) = if cmd.len() == 1 || cmd[1] == "--all" {
                ("--all".to_string(), self.read_config(None))
            } else {
                let jail = cmd[1].clone();
                let r = self.read_config(Some(&jail));
                (jail, r)
            };
            let Some(stream) = stream.filter(|_| ret) else {
                return Ok(false);
            };
            if interactive {
                output("  ## reload ... ");
            }
            let request = vec![
                PyValue::str("reload"),
                PyValue::Str(jail),
                PyValue::str_list(opts),
                PyValue::List(stream),
            ];
            return Ok(self.process_cmd(&[request], true, None));
        }
        if cmd.len() > 1 && cmd[0] == "ping" {
            let timeout = py_float(&cmd[1])?;
            let request: Vec<PyValue> = cmd.into_iter().map(PyValue::Str).collect();
            return Ok(self.process_cmd(&[request], true, Some(timeout)));
        }
        let request: Vec<PyValue> = cmd.into_iter().map(PyValue::Str).collect();
        Ok(self.process_cmd(&[request], true, None))
    }

    /// `ping` the server (with the timeout as second argument when given).
    fn ping(&mut self, timeout: Option<f64>) -> bool {
        let mut cmd = vec![PyValue::str("ping")];
        if let Some(t) = timeout {
            cmd.push(PyValue::Float(t));
        }
        self.process_cmd(&[cmd], false, timeout)
    }

    /// Sends commands over one connection and prints the replies
    /// (Python's `__processCmd`); whether all succeeded.
    fn process_cmd(&mut self, cmds: &[Vec<PyValue>], show_ret: bool, timeout: Option<f64>) -> bool {
        let mut client: Option<Connection> = None;
        let mut stream_ret = true;
        let shows = |c: &[PyValue]| {
            show_ret
                || matches!(c.first(), Some(PyValue::Str(s)) if s == "echo" || s == "server-status")
        };
        let is_ping = |c: &[PyValue]| matches!(c.first(), Some(PyValue::Str(s)) if s == "ping");
        let mut last: &[PyValue] = &[];
        for c in cmds {
            last = c;
            let outcome = self.send_one(&mut client, c, timeout);
            let fail = match outcome {
                Ok(Reply::Ok(v)) => {
                    log::trace!(target: "fail2ban", "OK : {}", v.repr());
                    if shows(c) {
                        output(&beautify(c, &v));
                    }
                    None
                }
                Ok(Reply::Err(e)) => {
                    stream_ret = false;
                    self.print_error(c, &e, show_ret)
                }
                Ok(Reply::Other(v)) => self.odd_reply(c, &v, show_ret, &mut stream_ret),
                Err(Sent::Socket(e)) => {
                    if show_ret || self.conf.verbose > 1 {
                        if show_ret || !is_ping(c) {
                            self.log_socket_error(&e, is_ping(c));
                        } else {
                            log::trace!(
                                target: "fail2ban",
                                " -- {} failed -- {e}",
                                PyValue::List(c.clone()).repr()
                            );
                        }
                    }
                    Some(None)
                }
                Err(Sent::Other(e)) => Some(Some(e)),
            };
            if let Some(err) = fail {
                if let Some(e) = err
                    && (show_ret || self.conf.verbose > 1)
                {
                    log_error(&e);
                }
                stream_ret = false;
                break;
            }
        }
        if let Some(mut c) = client {
            c.close();
        }
        if shows(last) {
            let _ = std::io::stdout().flush();
        }
        stream_ret
    }

    /// Connects when needed and sends one command.
    fn send_one(
        &self,
        client: &mut Option<Connection>,
        c: &[PyValue],
        timeout: Option<f64>,
    ) -> Result<Reply, Sent> {
        let tout = timeout
            .map(socket_timeout)
            .transpose()
            .map_err(Sent::Other)?;
        match client {
            None => {
                let conn = Connection::connect(Path::new(self.socket()), tout)
                    .map_err(|e| Sent::Socket(e.to_string()))?;
                *client = Some(conn);
            }
            Some(conn) if timeout.is_some() => {
                conn.set_timeout(tout)
                    .map_err(|e| Sent::Socket(e.to_string()))?;
            }
            Some(_) => {}
        }
        if self.conf.verbose > 2 {
            log::trace!(target: "fail2ban", "CMD: {}", PyValue::List(c.to_vec()).repr());
        }
        let conn = client.as_mut().expect("connected");
        conn.send(c).map_err(|e| match e {
            TransportError::Socket(e) => Sent::Socket(e.to_string()),
            TransportError::Decode(e) => Sent::Other(e.to_string()),
        })
    }

    /// An error reply: `NOK: <args>` on stderr and its text on stdout.
    /// `Some(Some(msg))` when making the text raised.
    fn print_error(&self, c: &[PyValue], e: &PyException, show_ret: bool) -> Option<Option<Fail>> {
        log_error(&format!("NOK: {}", e.args_repr()));
        if show_ret {
            match beautify_error(c, e) {
                Ok(text) => output(&text),
                Err(err) => return Some(Some(err.0)),
            }
        }
        None
    }

    /// A reply that is not `(code, value)`: Python indexes it anyway.
    fn odd_reply(
        &self,
        c: &[PyValue],
        v: &PyValue,
        show_ret: bool,
        stream_ret: &mut bool,
    ) -> Option<Option<Fail>> {
        let code = match py_index(v, 0) {
            Ok(code) => code,
            Err(e) => return Some(Some(e.0)),
        };
        let value = match py_index(v, 1) {
            Ok(value) => value,
            Err(e) => return Some(Some(e.0)),
        };
        let zero = matches!(code, PyValue::Int(0) | PyValue::Bool(false))
            || matches!(code, PyValue::Float(f) if f == 0.0);
        if zero {
            if show_ret
                || matches!(c.first(), Some(PyValue::Str(s)) if s == "echo" || s == "server-status")
            {
                output(&beautify(c, &value));
            }
            return None;
        }
        *stream_ret = false;
        Some(Some(format!(
            "'{}' object has no attribute 'args'",
            value.type_name()
        )))
    }

    /// Explains a failed connection (Python's `__logSocketError`).
    fn log_socket_error(&self, err: &str, error_only: bool) {
        let sock = self.socket();
        if Path::new(sock).exists() || Path::new(sock).is_symlink() {
            if access_writable(sock) {
                if error_only {
                    log_error(err);
                } else {
                    log_error(&format!("[{err}] Unable to contact server. Is it running?"));
                }
            } else {
                log_error(&format!(
                    "Permission denied to socket: {sock}, (you must be root)"
                ));
            }
        } else {
            log_error(&format!(
                "Failed to access socket path: {sock}. Is fail2ban running?"
            ));
        }
    }

    /// `start`: checks, reads the configuration, starts the server and
    /// configures it.
    fn start_server(&mut self) -> bool {
        let Some(stream) = self.prepare_start_server() else {
            return false;
        };
        if self.conf.background {
            let Some(mut child) = self.spawn_server(true) else {
                return false;
            };
            let ok = self.process_start_stream_after_wait(&stream);
            // The background server has detached by now; collect its
            // first process if it has ended.
            let _ = child.try_wait();
            return ok;
        }
        let Some(mut child) = self.spawn_server(false) else {
            return false;
        };
        FOREGROUND.store(child.id() as i32, Ordering::Relaxed);
        if !self.process_start_stream_after_wait(&stream) {
            // SAFETY: signals the server child this client started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
            FOREGROUND.store(0, Ordering::Relaxed);
            return false;
        }
        let status = child.wait();
        FOREGROUND.store(0, Ordering::Relaxed);
        status.is_ok_and(|s| s.success())
    }

    fn prepare_start_server(&mut self) -> Option<Vec<Vec<PyValue>>> {
        if self.ping(Some(0.1)) {
            log_error("Server already running");
            return None;
        }
        let (ret, stream) = self.read_config(None);
        let stream = stream.filter(|_| ret)?;
        if !self.conf.force && Path::new(self.socket()).exists() {
            log_error(
                "Fail2ban seems to be in unexpected state (not running but the socket exists)",
            );
            return None;
        }
        Some(vec![
            vec![PyValue::str("server-stream"), PyValue::List(stream)],
            vec![PyValue::str("server-status")],
        ])
    }

    /// The server's arguments (Python's `startServerAsync`), in the
    /// background (`-b`) or the foreground (`-f`).
    fn server_args(&self, background: bool) -> Vec<String> {
        let c = &self.conf;
        let mut args = vec![
            "--async".to_string(),
            if background { "-b" } else { "-f" }.to_string(),
            "-s".into(),
            self.socket().to_string(),
            "-p".into(),
            c.pidfile.clone().unwrap_or_default(),
        ];
        if c.force {
            args.push("-x".into());
        }
        if c.verbose > 1 {
            args.push(format!("-{}", "v".repeat((c.verbose - 1) as usize)));
        }
        for (o, v) in [
            ("--loglevel", &c.loglevel),
            ("--logtarget", &c.logtarget),
            ("--syslogsocket", &c.syslogsocket),
        ] {
            args.push(o.into());
            args.push(v.clone().unwrap_or_default());
        }
        args
    }

    /// Starts `fail2ban-server` from the client's directory, else from
    /// `PATH`.
    fn spawn_server(&self, background: bool) -> Option<Child> {
        use std::os::unix::process::CommandExt;
        let args = self.server_args(background);
        let exe = server_path(self.argv.first().map(String::as_str));
        log::debug!(
            target: "fail2ban",
            "Starting {} with args {}",
            str_repr(&exe.to_string_lossy()),
            PyValue::str_list(std::iter::once(SERVER.to_string()).chain(args.iter().cloned())).repr()
        );
        let command = |exe: &Path| {
            let mut c = Command::new(exe);
            c.arg0(SERVER).args(&args);
            // SAFETY: only async-signal-safe calls between fork and exec:
            // the server must not inherit the client's blocked signals.
            unsafe {
                c.pre_exec(|| {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
            c
        };
        match command(&exe).spawn() {
            Ok(child) => Some(child),
            Err(e) => {
                log_warning(&format!(
                    "Initial start attempt failed ({}). Starting {} with the same args",
                    py_os_error(&e),
                    str_repr(SERVER)
                ));
                match command(Path::new(SERVER)).spawn() {
                    Ok(child) => Some(child),
                    Err(e) => {
                        log_error(&py_os_error(&e));
                        None
                    }
                }
            }
        }
    }

    fn process_start_stream_after_wait(&mut self, stream: &[Vec<PyValue>]) -> bool {
        match self.wait_on_server(true, None) {
            Ok(true) => self.process_cmd(stream, false, None),
            Ok(false) => {
                log_error("Could not find server, waiting failed");
                false
            }
            Err(e) => {
                if self.conf.verbose > 1 {
                    log_error(&e);
                }
                log_error(&format!(
                    "Could not start server. Maybe an old socket file is still present. \
                     Try to remove {}. If you used fail2ban-client to start the server, \
                     adding the -x option will do it",
                    self.socket()
                ));
                false
            }
        }
    }

    /// Waits until the server answers (`alive`) or is gone; `Err` when the
    /// time is up.
    fn wait_on_server(&mut self, alive: bool, maxtime: Option<f64>) -> Result<bool, Fail> {
        let maxtime = maxtime.unwrap_or(self.conf.timeout);
        let start = Instant::now();
        let mut sltime = 0.0125 / 2.0;
        let mut vis = VisualWait::new(self.conf.verbose > 1);
        loop {
            let runf = Path::new(self.socket()).exists() && self.ping(Some(sltime));
            if runf == alive {
                return Ok(true);
            }
            let waittime = start.elapsed().as_secs_f64();
            if waittime > 1.0 {
                vis.heartbeat();
            }
            if waittime >= maxtime {
                return Err("Failed to start server".into());
            }
            sltime = (sltime * 2.0).min(if waittime > 0.2 { 0.5 } else { 0.1 });
            std::thread::sleep(Duration::from_secs_f64(sltime));
        }
    }
}

/// How sending a command failed.
enum Sent {
    /// A socket error (Python's `socket.error`), as Python prints it.
    Socket(String),
    /// Any other exception.
    Other(String),
}

/// Python's `float(text)`.
fn py_float(text: &str) -> Result<f64, Fail> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_'));
    t.replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|_| ok)
        .ok_or_else(|| format!("could not convert string to float: {}", str_repr(text)))
}

/// A socket timeout as Python's `settimeout` accepts it.
fn socket_timeout(t: f64) -> Result<Duration, Fail> {
    if t.is_nan() {
        return Err("Invalid value NaN (not a number)".into());
    }
    if t < 0.0 {
        return Err("Timeout value out of range".into());
    }
    Duration::try_from_secs_f64(t.max(1e-9))
        .map_err(|_| "timeout doesn't fit into C timeval".to_string())
}

/// `os.access(path, os.W_OK)`.
fn access_writable(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `fail2ban-server` in the directory of the running client (resolved),
/// else beside `argv[0]`, else the bare name (searched in `PATH`).
fn server_path(argv0: Option<&str>) -> PathBuf {
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(SERVER)));
    if let Some(p) = beside_exe.filter(|p| p.is_file()) {
        return p;
    }
    let beside_argv0 = argv0
        .and_then(|a| Path::new(a).parent().map(|d| d.join(SERVER)))
        .and_then(|p| std::path::absolute(p).ok());
    if let Some(p) = beside_argv0.filter(|p| p.is_file()) {
        return p;
    }
    PathBuf::from(SERVER)
}

/// `-d`/`--dp`: one command per line.
fn dump_config(cmds: &[PyValue], pretty: bool) {
    for c in cmds {
        if pretty {
            output(&pformat::pformat(c, 1000, 2));
        } else {
            output(&c.repr());
        }
    }
}

/// The progress line shown with `-v` while waiting for the server.
struct VisualWait {
    enabled: bool,
    pos: i32,
    delta: i32,
}

impl VisualWait {
    const MAXPOS: i32 = 10;

    fn new(enabled: bool) -> Self {
        VisualWait {
            enabled,
            pos: 0,
            delta: 1,
        }
    }

    fn heartbeat(&mut self) {
        if !self.enabled {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.pos == 0 {
            let _ = write!(
                out,
                "\nINFO   [#{}] Waiting on the server...\r\x1b[8C",
                " ".repeat(Self::MAXPOS as usize)
            );
        }
        self.pos += self.delta;
        let s = if self.delta > 0 {
            if self.pos > 1 {
                " #\x1b[1D"
            } else {
                "# \x1b[2D"
            }
        } else {
            "\x1b[1D# \x1b[2D"
        };
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
        if self.pos > Self::MAXPOS {
            self.delta = -1;
        } else if self.pos < 2 {
            self.delta = 1;
        }
    }
}

impl Drop for VisualWait {
    fn drop(&mut self) {
        if self.enabled && self.pos != 0 {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r{}\r", " ".repeat(35 + Self::MAXPOS as usize));
            let _ = out.flush();
        }
    }
}
