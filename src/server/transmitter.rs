//! The server's command table: what `fail2ban-client` (and the command
//! stream of the configuration) can ask, and the replies fail2ban gives.
//!
//! Commands are Python lists of strings (`['set', 'sshd', 'maxretry',
//! '5']`), replies Python values, errors Python exceptions (class and
//! message), exactly as fail2ban's `Transmitter` and `Server` produce them.

use crate::actions::ActionError;
use crate::ipaddr::{CIDR_UNSPEC, IpAddr};
use crate::pyvalue::PyValue;
use crate::server::Server;
use crate::server::jail::Jail;

const LOG_TRANSMITTER: &str = "fail2ban.transmitter";

/// A Python exception raised by a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CmdError {
    /// The exception class (`Exception`, `ValueError`, `UnknownJailException` ...).
    pub class: &'static str,
    /// Its arguments (usually one message string).
    pub args: Vec<PyValue>,
}

impl CmdError {
    pub fn new(class: &'static str, msg: impl Into<String>) -> CmdError {
        CmdError {
            class,
            args: vec![PyValue::Str(msg.into())],
        }
    }

    fn generic(msg: impl Into<String>) -> CmdError {
        CmdError::new("Exception", msg)
    }

    fn value(msg: impl Into<String>) -> CmdError {
        CmdError::new("ValueError", msg)
    }

    fn index() -> CmdError {
        CmdError::new("IndexError", "list index out of range")
    }

    /// Python's `repr(exception)`.
    pub fn repr(&self) -> String {
        let args: Vec<String> = self.args.iter().map(PyValue::repr).collect();
        format!("{}({})", self.class, args.join(", "))
    }
}

impl From<ActionError> for CmdError {
    fn from(e: ActionError) -> CmdError {
        let msg = match &e {
            ActionError::Value(m)
            | ActionError::Key(m)
            | ActionError::Attribute(m)
            | ActionError::Runtime(m) => m.clone(),
        };
        CmdError::new(e.py_type(), msg)
    }
}

type Reply = Result<PyValue, CmdError>;

/// The `set <jail> ...` requests, besides the `bantime.*` options.
const JAIL_SET: &[&str] = &[
    "idle",
    "ignoreself",
    "addignoreip",
    "delignoreip",
    "ignorecommand",
    "ignorecache",
    "addlogpath",
    "dellogpath",
    "logencoding",
    "addjournalmatch",
    "deljournalmatch",
    "prefregex",
    "addfailregex",
    "addignoreregex",
    "delfailregex",
    "delignoreregex",
    "usedns",
    "findtime",
    "datepattern",
    "logtimezone",
    "maxmatches",
    "maxretry",
    "maxlines",
    "bantime",
    "attempt",
    "banip",
    "unbanip",
    "addaction",
    "delaction",
    "action",
];

/// The `get <jail> ...` requests, besides the `bantime.*` options.
const JAIL_GET: &[&str] = &[
    "banned",
    "logpath",
    "logencoding",
    "journalmatch",
    "ignoreself",
    "ignoreip",
    "ignorecommand",
    "ignorecache",
    "prefregex",
    "failregex",
    "ignoreregex",
    "usedns",
    "findtime",
    "datepattern",
    "logtimezone",
    "maxmatches",
    "maxretry",
    "maxlines",
    "bantime",
    "banip",
    "actions",
    "action",
    "actionproperties",
    "actionmethods",
];

/// Whether `what` is one of the jail requests `names` (or a `bantime.*`).
fn jail_command(names: &[&str], what: &str) -> bool {
    names.contains(&what) || what.starts_with("bantime.")
}

fn arg(cmd: &[PyValue], i: usize) -> Result<String, CmdError> {
    cmd.get(i)
        .map(PyValue::to_py_str)
        .ok_or_else(CmdError::index)
}

fn int_arg(cmd: &[PyValue], i: usize) -> Result<i64, CmdError> {
    let v = cmd.get(i).ok_or_else(CmdError::index)?;
    match v {
        PyValue::Int(n) => Ok(*n),
        other => {
            let s = other.to_py_str();
            crate::config::py_int(&s).ok_or_else(|| {
                CmdError::value(format!(
                    "invalid literal for int() with base 10: {}",
                    crate::pyvalue::str_repr(&s)
                ))
            })
        }
    }
}

fn str_list<I: IntoIterator<Item = String>>(items: I) -> PyValue {
    PyValue::List(items.into_iter().map(PyValue::Str).collect())
}

impl Server {
    /// Runs one command (fail2ban's `Transmitter.proceed`): the reply, or
    /// the exception, which is also logged.
    pub fn proceed(&mut self, cmd: &[PyValue]) -> Reply {
        let r = self.handle(cmd);
        if let Err(e) = &r {
            crate::f2b_log!(
                ERROR,
                LOG_TRANSMITTER,
                "Command {} has failed. Received {}",
                PyValue::List(cmd.to_vec()).repr(),
                e.repr()
            );
        }
        r
    }

    pub(crate) fn jail_mut(&mut self, name: &str) -> Result<&mut Jail, CmdError> {
        self.jails
            .get_mut(name)
            .ok_or_else(|| CmdError::new("UnknownJailException", name))
    }

    fn jail(&self, name: &str) -> Result<&Jail, CmdError> {
        self.jails
            .get(name)
            .ok_or_else(|| CmdError::new("UnknownJailException", name))
    }

    fn quiet_or(&self, v: PyValue) -> Reply {
        Ok(if self.quiet { PyValue::None } else { v })
    }

    /// Runs the commands of a configuration stream without logging each
    /// one, up to the first that fails.
    fn run_stream(&mut self, stream: &[PyValue]) -> Result<(), CmdError> {
        self.quiet = true;
        let result = stream.iter().try_for_each(|c| match c {
            PyValue::List(c) => self.handle(c).map(drop),
            _ => Ok(()),
        });
        self.quiet = false;
        result
    }

    fn handle(&mut self, cmd: &[PyValue]) -> Reply {
        let name = arg(cmd, 0)?;
        match name.as_str() {
            "ping" => Ok(PyValue::str("pong")),
            "add" => {
                let jail = arg(cmd, 1)?;
                if jail == "--all" {
                    return Err(CmdError::generic(format!(
                        "Reserved name {}",
                        crate::pyvalue::str_repr(&jail)
                    )));
                }
                let backend = cmd.get(2).map_or("auto".to_string(), PyValue::to_py_str);
                self.add_jail(&jail, &backend)?;
                Ok(PyValue::Str(jail))
            }
            "multi-set" => self.command_set(&cmd[1..], true),
            "set" => self.command_set(&cmd[1..], false),
            "start" => {
                let jail = arg(cmd, 1)?;
                self.start_jail(&jail)?;
                Ok(PyValue::None)
            }
            "stop" => {
                match cmd.get(1).map(PyValue::to_py_str) {
                    None => self.begin_quit(),
                    Some(a) if a == "--all" => self.stop_all_jails(),
                    Some(j) => self.stop_jail(&j)?,
                }
                Ok(PyValue::None)
            }
            "reload" => {
                let target = arg(cmd, 1)?;
                let opts: Vec<String> = match cmd.get(2) {
                    Some(PyValue::List(v)) => v.iter().map(PyValue::to_py_str).collect(),
                    _ => Vec::new(),
                };
                let stream: Vec<PyValue> = match cmd.get(3) {
                    Some(PyValue::List(v)) => v.clone(),
                    _ => Vec::new(),
                };
                self.reload_begin(&target, &opts)?;
                let result = self.run_stream(&stream);
                self.reload_end(&target, &opts);
                result?;
                Ok(PyValue::str("OK"))
            }
            "unban" if cmd.len() >= 2 => {
                let values: Vec<String> = cmd[1..].iter().map(PyValue::to_py_str).collect();
                if values.len() == 1 && values[0] == "--all" {
                    return Ok(PyValue::Int(self.unban_all() as i64));
                }
                self.unban_ips(None, &values, true)
            }
            "banned" => {
                let ids: Vec<String> = cmd[1..].iter().map(PyValue::to_py_str).collect();
                self.banned(None, &ids)
            }
            "echo" => Ok(PyValue::List(cmd[1..].to_vec())),
            "server-status" => Ok(PyValue::str("Server ready")),
            "server-stream" => {
                let stream: Vec<PyValue> = match cmd.get(1) {
                    Some(PyValue::List(v)) => v.clone(),
                    _ => Vec::new(),
                };
                self.run_stream(&stream)?;
                Ok(PyValue::None)
            }
            "sleep" => {
                let secs: f64 = arg(cmd, 1)?
                    .trim()
                    .parse()
                    .map_err(|_| CmdError::value("could not convert string to float"))?;
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.0)));
                Ok(PyValue::None)
            }
            "flushlogs" => Ok(PyValue::str(crate::logging::flush_logs())),
            "get" => self.command_get(&cmd[1..]),
            "status" => self.status(&cmd[1..]),
            "version" => Ok(PyValue::str(crate::regextool::VERSION)),
            "config-error" => {
                crate::f2b_log!(ERROR, LOG_TRANSMITTER, "{}", arg(cmd, 1)?);
                Ok(PyValue::None)
            }
            _ => Err(CmdError::generic("Invalid command")),
        }
    }

    fn status(&self, cmd: &[PyValue]) -> Reply {
        match cmd.len() {
            0 => {
                let mut names: Vec<&String> = self.jails.keys().collect();
                names.sort();
                let list: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
                Ok(PyValue::List(vec![
                    PyValue::Tuple(vec![
                        PyValue::str("Number of jail"),
                        PyValue::Int(self.jails.len() as i64),
                    ]),
                    PyValue::Tuple(vec![
                        PyValue::str("Jail list"),
                        PyValue::str(list.join(", ")),
                    ]),
                ]))
            }
            1 | 2 => {
                let name = arg(cmd, 0)?;
                let flavor = cmd.get(1).map_or("basic".to_string(), PyValue::to_py_str);
                self.status_jail(&name, &flavor)
            }
            _ => Err(CmdError::generic("Invalid command (no status)")),
        }
    }

    fn status_jail(&self, name: &str, flavor: &str) -> Reply {
        let jail = self.jail(name)?;
        let pair = |k: &str, v: PyValue| PyValue::Tuple(vec![PyValue::str(k), v]);
        let filter = PyValue::List(vec![
            pair("Currently failed", PyValue::Int(jail.fails.size() as i64)),
            pair("Total failed", PyValue::Int(jail.fails.total() as i64)),
            pair("File list", str_list(self.watch.paths(&name.to_string()))),
        ]);
        if !matches!(flavor, "short" | "basic" | "cymru") {
            crate::f2b_log!(
                WARNING,
                "fail2ban.actions",
                "Unsupported extended jail status flavor {}. Supported: ['short', 'basic', 'cymru']",
                crate::pyvalue::str_repr(flavor)
            );
        }
        let mut actions = vec![
            pair("Currently banned", PyValue::Int(jail.bans.size() as i64)),
            pair("Total banned", PyValue::Int(jail.bans.total() as i64)),
        ];
        if flavor != "short" {
            actions.push(pair(
                "Banned IP list",
                PyValue::List(jail.bans.ids().map(|i| PyValue::Str(i.ntoa())).collect()),
            ));
        }
        if flavor == "cymru" {
            let errs = PyValue::List(jail.bans.ids().map(|_| PyValue::str("error")).collect());
            actions.push(pair("Banned ASN list", errs.clone()));
            actions.push(pair("Banned Country list", errs.clone()));
            actions.push(pair("Banned RIR list", errs));
        }
        Ok(PyValue::List(vec![
            pair("Filter", filter),
            pair("Actions", PyValue::List(actions)),
        ]))
    }

    /// `banned [ips]` (all jails) and `get <jail> banned [ips]`.
    fn banned(&self, jail: Option<&str>, ids: &[String]) -> Reply {
        let is_banned = |j: &Jail, ip: &str| {
            IpAddr::new(ip, CIDR_UNSPEC)
                .map(|a| j.bans.contains(&a))
                .unwrap_or(false)
        };
        let jail_reply = |j: &Jail| -> PyValue {
            if ids.is_empty() {
                PyValue::List(j.bans.ids().map(|i| PyValue::Str(i.ntoa())).collect())
            } else {
                let v: Vec<PyValue> = ids
                    .iter()
                    .map(|ip| PyValue::Int(i64::from(is_banned(j, ip))))
                    .collect();
                if v.len() == 1 {
                    v.into_iter().next().expect("one")
                } else {
                    PyValue::List(v)
                }
            }
        };
        if let Some(name) = jail {
            return Ok(jail_reply(self.jail(name)?));
        }
        if !ids.is_empty() {
            return Ok(PyValue::List(
                ids.iter()
                    .map(|ip| {
                        str_list(
                            self.jails
                                .values()
                                .filter(|j| is_banned(j, ip))
                                .map(|j| j.name.clone()),
                        )
                    })
                    .collect(),
            ));
        }
        Ok(PyValue::List(
            self.jails
                .values()
                .map(|j| PyValue::Dict(vec![(PyValue::Str(j.name.clone()), jail_reply(j))]))
                .collect(),
        ))
    }

    /// `set <jail> unbanip ...` (one jail) and `unban ...` (all jails).
    fn unban_ips(&mut self, jail: Option<&str>, values: &[String], if_exists: bool) -> Reply {
        let names: Vec<String> = match jail {
            Some(j) => {
                self.jail(j)?;
                vec![j.to_string()]
            }
            None => self.jails.keys().cloned().collect(),
        };
        let if_exists = if_exists || jail.is_none();
        let mut count = 0;
        let mut missing = Vec::new();
        for name in &names {
            let j = self.jails.get_mut(name).expect("jail");
            for v in values {
                let ip = IpAddr::new(v, CIDR_UNSPEC).map_err(|e| CmdError::value(e.to_string()))?;
                let targets: Vec<IpAddr> = if ip.is_single() || !ip.is_valid() {
                    vec![ip.clone()]
                } else {
                    j.bans.ids().filter(|b| b.is_in_net(&ip)).cloned().collect()
                };
                let mut found = false;
                for t in targets {
                    if j.unban_id(&t) {
                        count += 1;
                        found = true;
                    }
                }
                if !found {
                    if !if_exists {
                        missing.push(v.clone());
                    } else {
                        crate::f2b_log!(MSG, "fail2ban.actions", "{v} is not banned");
                    }
                }
            }
        }
        if !missing.is_empty() {
            let list = str_list(missing).repr();
            return Err(CmdError::value(format!("not banned: {list}")));
        }
        Ok(PyValue::Int(count))
    }

    fn command_get(&mut self, cmd: &[PyValue]) -> Reply {
        let name = arg(cmd, 0)?;
        match name.as_str() {
            "loglevel" => {
                return Ok(PyValue::Str(crate::logging::level_name(
                    crate::logging::level(),
                )));
            }
            "logtarget" => {
                return Ok(crate::logging::target().map_or(PyValue::None, PyValue::Str));
            }
            "syslogsocket" => return Ok(PyValue::Str(self.syslog_socket.clone())),
            "thread" => {
                return Ok(PyValue::Dict(vec![(
                    PyValue::str("stacksize"),
                    PyValue::Int(0),
                )]));
            }
            "dbfile" => {
                return Ok(self
                    .db
                    .as_ref()
                    .map_or(PyValue::None, |d| PyValue::str(d.filename())));
            }
            "dbmaxmatches" => {
                return Ok(self
                    .db
                    .as_ref()
                    .map_or(PyValue::None, |d| PyValue::Int(d.max_matches())));
            }
            "dbpurgeage" => {
                return Ok(self
                    .db
                    .as_ref()
                    .map_or(PyValue::None, |d| num_value(d.purge_age())));
            }
            _ => {}
        }
        let what = arg(cmd, 1)?;
        let invalid =
            || CmdError::generic("Invalid command (no get action or not yet implemented)");
        // fail2ban names an unknown request before a missing jail
        let jail = match self.jail(&name) {
            Ok(jail) => jail,
            Err(e) if jail_command(JAIL_GET, &what) => return Err(e),
            Err(_) => return Err(invalid()),
        };
        let f = &jail.filter;
        Ok(match what.as_str() {
            "banned" => {
                let ids: Vec<String> = cmd[2..].iter().map(PyValue::to_py_str).collect();
                return self.banned(Some(&name), &ids);
            }
            "logpath" => str_list(self.watch.paths(&name)),
            "logencoding" => PyValue::Str(self.encoding_name(&name)),
            "journalmatch" => PyValue::List(Vec::new()),
            "ignoreself" => PyValue::Bool(jail.ignore.ignore_self),
            "ignoreip" => str_list(jail.ignore.entries()),
            // fail2ban's initial value is False, until a command is set
            "ignorecommand" => match &jail.ignore.command {
                None => PyValue::Bool(false),
                Some(c) => PyValue::Str(c.clone()),
            },
            "ignorecache" => match jail.ignore.cache() {
                Some(c) => PyValue::List(vec![
                    PyValue::Str(c.key.clone()),
                    PyValue::Int(c.max_count as i64),
                    num(c.max_time),
                ]),
                None => PyValue::None,
            },
            "prefregex" => PyValue::Str(
                f.prefregex()
                    .map(|r| r.expanded().to_string())
                    .unwrap_or_default(),
            ),
            "failregex" => str_list(f.failregexes().iter().map(|r| r.expanded().to_string())),
            "ignoreregex" => str_list(f.ignoreregexes().iter().map(|r| r.expanded().to_string())),
            "usedns" => PyValue::str(f.usedns().as_str()),
            "findtime" => num(f.find_time()),
            "datepattern" => date_pattern_value(f),
            "logtimezone" => f.logtimezone().map_or(PyValue::None, PyValue::str),
            "maxmatches" => PyValue::Int(jail.fails.max_matches as i64),
            "maxretry" => PyValue::Int(jail.fails.max_retry()),
            "maxlines" => PyValue::Int(f.maxlines() as i64),
            "bantime" => PyValue::Int(jail.bans.ban_time()),
            "banip" => {
                let with_time =
                    cmd.get(2).map(PyValue::to_py_str).as_deref() == Some("--with-time");
                let bt = jail.bans.ban_time();
                let fmt = |t: f64| {
                    if t >= 253402214400.0 {
                        "9999-12-31 23:59:59".to_string()
                    } else {
                        crate::mytime::format_local(t, "%Y-%m-%d %H:%M:%S")
                    }
                };
                PyValue::List(
                    jail.bans
                        .ordered()
                        .into_iter()
                        .map(|t| {
                            if with_time {
                                PyValue::Str(format!(
                                    "{} \t{} + {} = {}",
                                    t.id(),
                                    fmt(t.time().as_f64()),
                                    t.ban_time().unwrap_or(bt),
                                    fmt(t.end_of_ban_f(bt))
                                ))
                            } else {
                                PyValue::Str(t.id().ntoa())
                            }
                        })
                        .collect(),
                )
            }
            w if w.starts_with("bantime.") => jail
                .ban_extra
                .values
                .get(&w["bantime.".len()..])
                .cloned()
                .unwrap_or(PyValue::None),
            "actions" => str_list(jail.actions.names()),
            "action" => {
                let act = arg(cmd, 2)?;
                let prop = arg(cmd, 3)?;
                jail.actions.property(&act, &prop)?
            }
            "actionproperties" => str_list(jail.actions.property_names(&arg(cmd, 2)?)?),
            "actionmethods" => {
                jail.actions.property_names(&arg(cmd, 2)?)?;
                str_list(crate::actions::ACTION_METHODS.iter().map(|m| m.to_string()))
            }
            _ => return Err(invalid()),
        })
    }

    fn command_set(&mut self, cmd: &[PyValue], multiple: bool) -> Reply {
        let name = arg(cmd, 0)?;
        match name.as_str() {
            "loglevel" => {
                let v = arg(cmd, 1)?;
                let level = crate::logging::str2loglevel(&v).map_err(CmdError::value)?;
                crate::logging::set_level(level);
                return self.quiet_or(PyValue::Str(crate::logging::level_name(level)));
            }
            "logtarget" => {
                let v = arg(cmd, 1)?;
                match crate::logging::set_target(&v, &self.syslog_socket, true) {
                    Ok(()) => {
                        self.log_target = v;
                        return self.quiet_or(
                            crate::logging::target().map_or(PyValue::None, PyValue::Str),
                        );
                    }
                    Err(e) => {
                        crate::f2b_log!(ERROR, "fail2ban.server", "{e}");
                        return Err(CmdError::generic("Failed to change log target"));
                    }
                }
            }
            "syslogsocket" => {
                self.syslog_socket = arg(cmd, 1)?;
                return self.quiet_or(PyValue::Str(self.syslog_socket.clone()));
            }
            "allowipv6" => {
                let v = arg(cmd, 1)?;
                self.allow_ipv6 = v.clone();
                let allow = !matches!(v.to_lowercase().as_str(), "no" | "false" | "0" | "off");
                for j in self.jails.values_mut() {
                    j.actions.set_allow_ipv6(allow);
                }
                return self.quiet_or(PyValue::Str(v));
            }
            "thread" => return Ok(PyValue::None),
            "dbfile" => {
                self.set_database(&arg(cmd, 1)?)?;
                return match &self.db {
                    None => Ok(PyValue::None),
                    Some(d) => self.quiet_or(PyValue::str(d.filename())),
                };
            }
            "dbmaxmatches" => {
                let Some(db) = self.db.clone() else {
                    crate::f2b_log!(
                        MSG,
                        "fail2ban.transmitter",
                        "dbmaxmatches setting was not in effect since no db yet"
                    );
                    return Ok(PyValue::None);
                };
                let n = int_arg(cmd, 1)?;
                db.set_max_matches(n);
                return self.quiet_or(PyValue::Int(n));
            }
            "dbpurgeage" => {
                let Some(db) = self.db.clone() else {
                    crate::f2b_log!(
                        MSG,
                        "fail2ban.transmitter",
                        "dbpurgeage setting was not in effect since no db yet"
                    );
                    return Ok(PyValue::None);
                };
                let age = crate::actions::str2seconds(&arg(cmd, 1)?)
                    .map_err(|e| CmdError::value(e.to_string()))?;
                db.set_purge_age(age);
                return self.quiet_or(num_value(age));
            }
            _ => {}
        }
        let what = arg(cmd, 1)?;
        let invalid = |what: &str| {
            CmdError::generic(format!(
                "Invalid command {} (no set action or not yet implemented)",
                crate::pyvalue::str_repr(what)
            ))
        };
        // fail2ban names an unknown request before a missing jail
        if let Err(e) = self.jail(&name) {
            return Err(if jail_command(JAIL_SET, &what) {
                e
            } else {
                invalid(&what)
            });
        }
        match what.as_str() {
            "idle" => {
                let v = arg(cmd, 2)?;
                let on = match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => {
                        return Err(CmdError::generic(
                            "Invalid idle option, must be 'on' or 'off'",
                        ));
                    }
                };
                self.set_idle(&name, on);
                self.quiet_or(PyValue::Bool(on))
            }
            "ignoreself" => {
                let v = crate::config::as_bool(&arg(cmd, 2)?);
                self.jail_mut(&name)?.ignore.ignore_self = v;
                self.quiet_or(PyValue::Bool(v))
            }
            "addignoreip" => {
                let j = self.jail_mut(&name)?;
                for v in &cmd[2..] {
                    j.ignore.add(&v.to_py_str()).map_err(CmdError::value)?;
                }
                let e = j.ignore.entries();
                self.quiet_or(str_list(e))
            }
            "delignoreip" => {
                let v = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                j.ignore.remove(&v).map_err(CmdError::value)?;
                let e = j.ignore.entries();
                self.quiet_or(str_list(e))
            }
            "ignorecommand" => {
                let v = arg(cmd, 2)?;
                self.jail_mut(&name)?.ignore.command = Some(v.clone());
                self.quiet_or(PyValue::Str(v))
            }
            "ignorecache" => {
                let v = arg(cmd, 2)?;
                let cache = if v.is_empty() {
                    None
                } else {
                    let (_, opts) = crate::config::extract_options(&format!("cache[{v}]"))
                        .map_err(|e| CmdError::value(e.to_string()))?;
                    let key = opts.get("key").cloned().unwrap_or_default();
                    let count = opts
                        .get("max-count")
                        .and_then(|c| crate::config::py_int(c))
                        .unwrap_or(100) as usize;
                    let time = match opts.get("max-time") {
                        Some(t) => seconds(t)?,
                        None => 300.0,
                    };
                    Some(crate::server::ignore::IgnoreCache::new(key, count, time))
                };
                let j = self.jail_mut(&name)?;
                j.ignore.set_cache(cache);
                let reply = match j.ignore.cache() {
                    Some(c) => PyValue::List(vec![
                        PyValue::Str(c.key.clone()),
                        PyValue::Int(c.max_count as i64),
                        num(c.max_time),
                    ]),
                    None => PyValue::None,
                };
                self.quiet_or(reply)
            }
            "addlogpath" => {
                let path = arg(cmd, 2)?;
                let tail = match cmd.len() {
                    3 => false,
                    4 => match arg(cmd, 3)?.to_lowercase().as_str() {
                        "tail" => true,
                        "head" => false,
                        _ => return Err(CmdError::value("File option must be 'head' or 'tail'")),
                    },
                    _ => return Err(CmdError::value("Only one file can be added at a time")),
                };
                self.add_log_path(&name, &path, tail);
                self.quiet_or(str_list(self.watch.paths(&name)))
            }
            "dellogpath" => {
                let path = arg(cmd, 2)?;
                self.del_log_path(&name, &path);
                self.quiet_or(str_list(self.watch.paths(&name)))
            }
            "logencoding" => {
                let v = arg(cmd, 2)?;
                self.set_encoding(&name, &v)?;
                self.quiet_or(PyValue::Str(self.encoding_name(&name)))
            }
            // only a systemd jail has journal matches (fail2ban ignores them
            // for file backends, and systemd jails are refused at `add`)
            "addjournalmatch" | "deljournalmatch" => self.quiet_or(PyValue::List(Vec::new())),
            "prefregex" => {
                let v = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                j.filter.set_prefregex(&v).map_err(filter_err)?;
                let shown = j
                    .filter
                    .prefregex()
                    .map(|r| r.expanded().to_string())
                    .unwrap_or_default();
                self.quiet_or(PyValue::Str(shown))
            }
            "addfailregex" | "addignoreregex" => {
                let fail = what == "addfailregex";
                let values: Vec<String> = match cmd.get(2) {
                    Some(PyValue::List(v)) if multiple => {
                        v.iter().map(PyValue::to_py_str).collect()
                    }
                    Some(v) => vec![v.to_py_str()],
                    None => return Err(CmdError::index()),
                };
                let j = self.jail_mut(&name)?;
                for v in &values {
                    let r = if fail {
                        j.filter.add_failregex(v)
                    } else {
                        j.filter.add_ignoreregex(v)
                    };
                    r.map_err(filter_err)?;
                }
                if multiple {
                    return Ok(PyValue::Bool(true));
                }
                let list = if fail {
                    j.filter.failregexes()
                } else {
                    j.filter.ignoreregexes()
                };
                let list = str_list(list.iter().map(|r| r.expanded().to_string()));
                self.quiet_or(list)
            }
            "delfailregex" | "delignoreregex" => {
                let idx = int_arg(cmd, 2)?;
                let fail = what == "delfailregex";
                let j = self.jail_mut(&name)?;
                j.filter.delete_regex(fail, idx);
                let list = if fail {
                    j.filter.failregexes()
                } else {
                    j.filter.ignoreregexes()
                };
                let list = str_list(list.iter().map(|r| r.expanded().to_string()));
                self.quiet_or(list)
            }
            "usedns" => {
                let v = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                j.filter.set_usedns(&v);
                let shown = j.filter.usedns().as_str();
                self.quiet_or(PyValue::str(shown))
            }
            "findtime" => {
                let secs = seconds(&arg(cmd, 2)?)?;
                let j = self.jail_mut(&name)?;
                j.filter.set_find_time(secs);
                j.fails.set_max_time(secs);
                crate::f2b_log!(
                    INFO,
                    "fail2ban.filter",
                    "  findtime: {}",
                    crate::mytime::num_str(secs)
                );
                self.quiet_or(num(secs))
            }
            "datepattern" => {
                let v = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                j.filter
                    .set_datepattern(Some(&v))
                    .map_err(|e| CmdError::new("TypeError", e.to_string()))?;
                let shown = date_pattern_value(&j.filter);
                self.quiet_or(shown)
            }
            "logtimezone" => {
                let v = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                j.filter.set_logtimezone(Some(&v)).map_err(filter_err)?;
                self.quiet_or(PyValue::Str(v))
            }
            "maxmatches" => {
                let v = int_arg(cmd, 2)?;
                self.jail_mut(&name)?.fails.max_matches = v.max(0) as usize;
                self.quiet_or(PyValue::Int(v))
            }
            "maxretry" => {
                let v = int_arg(cmd, 2)?;
                self.jail_mut(&name)?.fails.set_max_retry(v);
                crate::f2b_log!(INFO, "fail2ban.filter", "  maxRetry: {v}");
                self.quiet_or(PyValue::Int(v))
            }
            "maxlines" => {
                let v = int_arg(cmd, 2)?;
                self.jail_mut(&name)?
                    .filter
                    .set_maxlines(v)
                    .map_err(filter_err)?;
                crate::f2b_log!(INFO, "fail2ban.filter", "  maxLines: {v}");
                self.quiet_or(PyValue::Int(v))
            }
            "bantime" => {
                let v = seconds(&arg(cmd, 2)?)? as i64;
                self.jail_mut(&name)?.bans.set_ban_time(v);
                crate::f2b_log!(INFO, "fail2ban.actions", "  banTime: {v}");
                self.quiet_or(PyValue::Int(v))
            }
            "attempt" => {
                if self.quiet {
                    return Ok(PyValue::None);
                }
                let ip = IpAddr::new(&arg(cmd, 2)?, CIDR_UNSPEC)
                    .map_err(|e| CmdError::value(e.to_string()))?;
                let matches: Vec<String> = cmd[3..].iter().map(PyValue::to_py_str).collect();
                let j = self.jail_mut(&name)?;
                j.attempt(ip, matches);
                j.check_bans();
                Ok(PyValue::Int(1))
            }
            w if w.starts_with("bantime.") => {
                let opt = w["bantime.".len()..].to_string();
                let v = arg(cmd, 2)?;
                let stored = self.set_bantime_extra(&name, &opt, &v)?;
                self.quiet_or(stored)
            }
            "banip" => {
                let values: Vec<String> = cmd[2..].iter().map(PyValue::to_py_str).collect();
                let j = self.jail_mut(&name)?;
                let now = crate::mytime::now();
                let mut count = 0;
                for v in values {
                    let ip =
                        IpAddr::new(&v, CIDR_UNSPEC).map_err(|e| CmdError::value(e.to_string()))?;
                    let t =
                        crate::failures::Ticket::manual(ip, crate::dates::Timestamp::Float(now));
                    count += i64::from(j.ban_ticket(t));
                }
                Ok(PyValue::Int(count))
            }
            "unbanip" => {
                let rest: Vec<String> = cmd[2..].iter().map(PyValue::to_py_str).collect();
                let (if_exists, values) = match rest.first().map(String::as_str) {
                    Some("--report-absent") => (false, rest[1..].to_vec()),
                    _ => (true, rest),
                };
                if values.is_empty() {
                    return Err(CmdError::index());
                }
                self.unban_ips(Some(&name), &values, if_exists)
            }
            "addaction" => {
                let act = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                if cmd.len() > 3 {
                    let path = arg(cmd, 3)?;
                    j.actions.add_python_action(&act, &path)?;
                } else {
                    j.actions.add_action(&act)?;
                }
                self.confirm_action(&name, &act);
                self.quiet_or(PyValue::Str(act))
            }
            "delaction" => {
                let act = arg(cmd, 2)?;
                self.jail_mut(&name)?.actions.del_action(&act)?;
                Ok(PyValue::None)
            }
            "action" => {
                let act = arg(cmd, 2)?;
                let j = self.jail_mut(&name)?;
                if multiple {
                    let Some(PyValue::List(pairs)) = cmd.get(3) else {
                        return Err(CmdError::index());
                    };
                    for p in pairs {
                        if let PyValue::List(kv) | PyValue::Tuple(kv) = p {
                            let k = kv.first().map(PyValue::to_py_str).unwrap_or_default();
                            let v = kv.get(1).cloned().unwrap_or(PyValue::None);
                            j.actions.set_property(&act, &k, v)?;
                        }
                    }
                    return Ok(PyValue::Bool(true));
                }
                let key = arg(cmd, 3)?;
                let value = cmd.get(4).cloned().unwrap_or(PyValue::None);
                j.actions.set_property(&act, &key, value)?;
                let v = j.actions.property(&act, &key)?;
                self.quiet_or(v)
            }
            other => Err(invalid(other)),
        }
    }
}

/// A number as fail2ban returns it: an int when it is one.
fn num(v: f64) -> PyValue {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        PyValue::Int(v as i64)
    } else {
        PyValue::Float(v)
    }
}

/// fail2ban's `str2seconds` as a command error on bad input.
/// A number as the Python value fail2ban replies.
fn num_value(n: crate::actions::Num) -> PyValue {
    match n {
        crate::actions::Num::Int(i) => PyValue::Int(i),
        crate::actions::Num::Float(f) => PyValue::Float(f),
    }
}

pub(crate) fn seconds(text: &str) -> Result<f64, CmdError> {
    crate::actions::str2seconds(text)
        .map(|n| n.as_f64())
        .map_err(|e| CmdError::value(e.to_string()))
}

fn filter_err(e: crate::filter::FilterError) -> CmdError {
    match e {
        crate::filter::FilterError::Regex(r) => CmdError::new("RegexException", r.0),
        crate::filter::FilterError::Date(d) => CmdError::new("TypeError", d.to_string()),
        crate::filter::FilterError::Value(v) => CmdError::value(v),
    }
}

/// `get <jail> datepattern`: `(pattern, name)`, or `None` without a
/// date detector.
fn date_pattern_value(f: &crate::filter::Filter) -> PyValue {
    match f.date_detector() {
        None => PyValue::None,
        Some(dd) => {
            let (p, n) = dd.date_pattern();
            PyValue::Tuple(vec![p.map_or(PyValue::None, PyValue::str), PyValue::str(n)])
        }
    }
}
