//! The client's rendering of server replies (fail2ban's `Beautifier`).
//!
//! Each command has its fixed text (`Server replied: pong`, the `Status`
//! trees with `|-`/`` `- `` and tabs, `Current monitored log file(s):` ...);
//! every other reply is printed with Python's `str()`.  The rendering is
//! an interpretation of the Python code over [`PyValue`]s, including what
//! happens when a reply does not have the expected shape: Python then
//! raises inside the beautifier, logs `Beautifier error. Please report the
//! error` and prints `repr(<message built so far>) + repr(reply)`, which is
//! reproduced by keeping the message in the same intermediate states.

use crate::protocol::PyException;
use crate::pyvalue::PyValue;

/// A Python exception raised while rendering (the message is `str(exc)`).
#[derive(Debug)]
pub struct PyError(pub String);

type R<T> = Result<T, PyError>;

fn type_error(msg: impl Into<String>) -> PyError {
    PyError(msg.into())
}

/// Python's `logging.getLevelName(level)` with fail2ban's names
/// (unnamed levels under 50 are `#NN-Lev.`).
pub fn level_name(level: i64) -> String {
    match level {
        0 => "NOTSET".into(),
        5 => "HEAVY".into(),
        7 => "TRACE".into(),
        10 => "DEBUG".into(),
        18 => "MSG".into(),
        20 => "INFO".into(),
        25 => "NOTICE".into(),
        30 => "WARNING".into(),
        40 => "ERROR".into(),
        50 => "CRITICAL".into(),
        1..=49 => format!("#{level:02}-Lev."),
        _ => format!("Level {level}"),
    }
}

/// `str_value + other`: both must be strings.
fn concat(a: &str, b: &PyValue) -> R<String> {
    match b {
        PyValue::Str(s) => Ok(format!("{a}{s}")),
        other => Err(type_error(format!(
            "can only concatenate str (not \"{}\") to str",
            other.type_name()
        ))),
    }
}

/// `len(v)`.
fn py_len(v: &PyValue) -> R<usize> {
    match v {
        PyValue::Str(s) => Ok(s.chars().count()),
        PyValue::List(x) | PyValue::Tuple(x) | PyValue::Set(x) => Ok(x.len()),
        PyValue::Dict(x) => Ok(x.len()),
        other => Err(type_error(format!(
            "object of type '{}' has no len()",
            other.type_name()
        ))),
    }
}

/// `list(v)`: the items of an iterable (dict keys, string characters).
fn py_iter(v: &PyValue) -> R<Vec<PyValue>> {
    match v {
        PyValue::Str(s) => Ok(s.chars().map(|c| PyValue::Str(c.to_string())).collect()),
        PyValue::List(x) | PyValue::Tuple(x) | PyValue::Set(x) => Ok(x.clone()),
        PyValue::Dict(x) => Ok(x.iter().map(|(k, _)| k.clone()).collect()),
        other => Err(type_error(format!(
            "'{}' object is not iterable",
            other.type_name()
        ))),
    }
}

/// `v[i]` for an integer index (negative from the end).
pub fn py_index(v: &PyValue, i: i64) -> R<PyValue> {
    let pick = |items: Vec<PyValue>, what: &str| {
        let n = items.len() as i64;
        let k = if i < 0 { n + i } else { i };
        if (0..n).contains(&k) {
            Ok(items[k as usize].clone())
        } else {
            Err(PyError(format!("{what} index out of range")))
        }
    };
    match v {
        PyValue::List(x) => pick(x.clone(), "list"),
        PyValue::Tuple(x) => pick(x.clone(), "tuple"),
        PyValue::Str(_) => pick(py_iter(v)?, "string"),
        PyValue::Dict(items) => items
            .iter()
            .find(|(k, _)| match k {
                PyValue::Int(n) => *n == i,
                PyValue::Bool(b) => *b as i64 == i,
                PyValue::Float(f) => *f == i as f64,
                _ => false,
            })
            .map(|(_, v)| v.clone())
            .ok_or_else(|| PyError(i.to_string())),
        other => Err(type_error(format!(
            "'{}' object is not subscriptable",
            other.type_name()
        ))),
    }
}

/// `sep.join(items)`: every item must be a string.
fn join(sep: &str, v: &PyValue) -> R<String> {
    let items = py_iter(v)?;
    let mut parts = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match it {
            PyValue::Str(s) => parts.push(s.as_str().to_string()),
            other => {
                return Err(type_error(format!(
                    "sequence item {i}: expected str instance, {} found",
                    other.type_name()
                )));
            }
        }
    }
    Ok(parts.join(sep))
}

fn is_str(v: Option<&PyValue>, s: &str) -> bool {
    matches!(v, Some(PyValue::Str(x)) if x == s)
}

/// The text printed for a successful reply to `cmd`.
pub fn beautify(cmd: &[PyValue], response: &PyValue) -> String {
    log::trace!(
        target: "fail2ban.beautifier",
        "Beautify {} with {}",
        response.repr(),
        PyValue::List(cmd.to_vec()).repr()
    );
    let mut msg = response.clone();
    match render(cmd, response, &mut msg) {
        Ok(()) => msg.to_py_str(),
        Err(_) => {
            log::warn!(target: "fail2ban.beautifier", "Beautifier error. Please report the error");
            log::error!(
                target: "fail2ban.beautifier",
                "Beautify {} with {} failed",
                response.repr(),
                PyValue::List(cmd.to_vec()).repr()
            );
            format!("{}{}", msg.repr(), response.repr())
        }
    }
}

/// Builds the message in `msg` as Python does, step by step (so that a
/// failure leaves it where Python's would be).
fn render(cmd: &[PyValue], response: &PyValue, msg: &mut PyValue) -> R<()> {
    let arg = |i: usize| cmd.get(i);
    let set = |msg: &mut PyValue, s: String| *msg = PyValue::Str(s);
    let first = arg(0);
    if is_str(first, "ping") {
        set(msg, concat("Server replied: ", response)?);
    } else if is_str(first, "version") {
    } else if is_str(first, "start") {
        set(msg, "Jail started".into());
    } else if is_str(first, "stop") {
        if *response == PyValue::None {
            let text = if cmd.len() == 1 {
                "Shutdown successful"
            } else {
                "Jail stopped"
            };
            set(msg, text.into());
        }
    } else if is_str(first, "add") {
        set(msg, concat("Added jail ", response)?);
    } else if is_str(first, "flushlogs") {
        set(msg, concat("logs: ", response)?);
    } else if is_str(first, "echo") {
        set(msg, join(" ", msg)?);
    } else if is_str(first, "status") {
        render_status(cmd, response, msg)?;
    } else if cmd.len() < 2 {
    } else if is_str(arg(1), "syslogsocket") || is_str(arg(1), "logtarget") {
        let what = if is_str(arg(1), "syslogsocket") {
            "syslog socket"
        } else {
            "logging target"
        };
        set(msg, format!("Current {what} is:\n"));
        set(
            msg,
            format!("{}{}", msg.to_py_str(), concat("`- ", response)?),
        );
    } else if is_str(arg(1), "loglevel") {
        let name = match response {
            PyValue::Int(l) => PyValue::Str(level_name(*l)),
            PyValue::Bool(b) => PyValue::Str(level_name(*b as i64)),
            other => other.clone(),
        };
        set(msg, format!("Current logging level is {}", name.repr()));
    } else if is_str(arg(1), "dbfile") {
        if *response == PyValue::None {
            set(msg, "Database currently disabled".into());
        } else {
            set(msg, "Current database file is:\n".into());
            set(
                msg,
                format!("{}{}", msg.to_py_str(), concat("`- ", response)?),
            );
        }
    } else if is_str(arg(1), "dbpurgeage") {
        if *response == PyValue::None {
            set(msg, "Database currently disabled".into());
        } else {
            set(msg, "Current database purge age is:\n".into());
            let secs = match response {
                PyValue::Int(i) => i.to_string(),
                PyValue::Bool(b) => (*b as i64).to_string(),
                PyValue::Float(f) if f.is_finite() => format!("{}", f.trunc() as i64),
                other => {
                    return Err(type_error(format!(
                        "%i format: a real number is required, not {}",
                        other.type_name()
                    )));
                }
            };
            set(msg, format!("{}`- {secs}seconds", msg.to_py_str()));
        }
    } else if cmd.len() < 3 {
    } else {
        render_jail(cmd, response, msg)?;
    }
    Ok(())
}

fn render_status(cmd: &[PyValue], response: &PyValue, msg: &mut PyValue) -> R<()> {
    let push = |msg: &mut PyValue, line: String| {
        if let PyValue::List(lines) = msg {
            lines.push(PyValue::Str(line));
        }
    };
    let items = py_iter(response)?;
    let n_items = py_len(response)?;
    // A list value is shown as its items joined by spaces.
    let value = |v: PyValue| -> String {
        match v {
            PyValue::List(items) => items
                .iter()
                .map(PyValue::to_py_str)
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_py_str(),
        }
    };
    if cmd.len() > 1 {
        *msg = PyValue::List(vec![PyValue::Str(format!(
            "Status for the jail: {}",
            cmd[1].to_py_str()
        ))]);
        for (n, res1) in items.iter().enumerate() {
            let last = n + 1 == n_items;
            let p1 = if last { "`-" } else { "|-" };
            push(msg, format!("{p1} {}", py_index(res1, 0)?.to_py_str()));
            let p1 = if last { "   " } else { "|  " };
            let sub = py_index(res1, 1)?;
            let sub_items = py_iter(&sub)?;
            let n_sub = py_len(&sub)?;
            for (m, res2) in sub_items.iter().enumerate() {
                let p2 = if m + 1 == n_sub { "`-" } else { "|-" };
                let val = value(py_index(res2, 1)?);
                let key = py_index(res2, 0)?.to_py_str();
                push(msg, format!("{p1}{p2} {key}:\t{val}"));
            }
        }
    } else {
        *msg = PyValue::List(vec![PyValue::str("Status")]);
        for (n, res1) in items.iter().enumerate() {
            let p1 = if n + 1 == n_items { "`-" } else { "|-" };
            let val = value(py_index(res1, 1)?);
            let key = py_index(res1, 0)?.to_py_str();
            push(msg, format!("{p1} {key}:\t{val}"));
        }
    }
    let text = join("\n", msg)?;
    *msg = PyValue::Str(text);
    Ok(())
}

/// A list shown as a tree: `|- a` lines and a last `` `- z `` line.
fn tree(
    msg: &mut PyValue,
    header: &str,
    response: &PyValue,
    label: impl Fn(usize) -> String,
) -> R<()> {
    let items = py_iter(response)?;
    *msg = PyValue::Str(header.to_string());
    for (i, it) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        let prefix = format!("{}{}", if last { "`- " } else { "|- " }, label(i));
        let mut line = concat(&prefix, it)?;
        if !last {
            line.push('\n');
        }
        *msg = PyValue::Str(format!("{}{line}", msg.to_py_str()));
    }
    Ok(())
}

fn render_jail(cmd: &[PyValue], response: &PyValue, msg: &mut PyValue) -> R<()> {
    let sub = match &cmd[2] {
        PyValue::Str(s) => s.as_str(),
        _ => return Ok(()),
    };
    let jail = cmd[1].to_py_str();
    match sub {
        "logpath" | "addlogpath" | "dellogpath" => {
            if py_len(response)? == 0 {
                *msg = PyValue::str("No file is currently monitored");
            } else {
                tree(msg, "Current monitored log file(s):\n", response, |_| {
                    String::new()
                })?;
            }
        }
        "logencoding" => {
            *msg = PyValue::str("Current log encoding is set to:\n");
            *msg = PyValue::Str(concat(&msg.to_py_str(), response)?);
        }
        "journalmatch" | "addjournalmatch" | "deljournalmatch" => {
            if py_len(response)? == 0 {
                *msg = PyValue::str("No journal match filter set");
            } else {
                *msg = PyValue::str("Current match filter:\n");
                let groups = py_iter(response)?
                    .iter()
                    .map(|g| join(" ", g))
                    .collect::<R<Vec<String>>>()?;
                *msg = PyValue::Str(format!("{}{}", msg.to_py_str(), groups.join(" + ")));
            }
        }
        "datepattern" => {
            *msg = PyValue::str("Current date pattern set to: ");
            let tail = if *response == PyValue::None {
                "Not set/required".to_string()
            } else if py_index(response, 0)? == PyValue::None {
                match py_index(response, 1)? {
                    PyValue::Tuple(t) if t.len() != 1 => {
                        return Err(type_error(
                            "not all arguments converted during string formatting",
                        ));
                    }
                    PyValue::Tuple(t) => t[0].to_py_str(),
                    v => v.to_py_str(),
                }
            } else {
                match response {
                    PyValue::Tuple(t) if t.len() == 2 => {
                        format!("{} ({})", t[0].to_py_str(), t[1].to_py_str())
                    }
                    _ => return Err(type_error("not enough arguments for format string")),
                }
            };
            *msg = PyValue::Str(format!("{}{tail}", msg.to_py_str()));
        }
        "ignoreip" | "addignoreip" | "delignoreip" => {
            if py_len(response)? == 0 {
                *msg = PyValue::str("No IP address/network is ignored");
            } else {
                tree(
                    msg,
                    "These IP addresses/networks are ignored:\n",
                    response,
                    |_| String::new(),
                )?;
            }
        }
        "failregex" | "addfailregex" | "delfailregex" | "ignoreregex" | "addignoreregex"
        | "delignoreregex" => {
            if py_len(response)? == 0 {
                *msg = PyValue::str("No regular expression is defined");
            } else {
                tree(
                    msg,
                    "The following regular expression are defined:\n",
                    response,
                    |i| format!("[{i}]: "),
                )?;
            }
        }
        "actions" => {
            if py_len(response)? == 0 {
                *msg = PyValue::Str(format!("No actions for jail {jail}"));
            } else {
                *msg = PyValue::Str(format!("The jail {jail} has the following actions:\n"));
                *msg = PyValue::Str(format!("{}{}", msg.to_py_str(), join(", ", response)?));
            }
        }
        "actionproperties" | "actionmethods" => {
            let what = if sub == "actionproperties" {
                "properties"
            } else {
                "methods"
            };
            let act = || {
                cmd.get(3)
                    .map(PyValue::to_py_str)
                    .ok_or_else(|| PyError("list index out of range".into()))
            };
            if py_len(response)? == 0 {
                *msg = PyValue::Str(format!("No {what} for jail {jail} action {}", act()?));
            } else {
                *msg = PyValue::Str(format!(
                    "The jail {jail} action {} has the following {what}:\n",
                    act()?
                ));
                *msg = PyValue::Str(format!("{}{}", msg.to_py_str(), join(", ", response)?));
            }
        }
        "banip" if is_str(cmd.first(), "get") => {
            if let PyValue::List(_) = response {
                let sep = match cmd.get(3) {
                    None => " ".to_string(),
                    Some(PyValue::Str(s)) if s == "--with-time" => "\n".to_string(),
                    Some(v) => v.to_py_str(),
                };
                *msg = PyValue::Str(join(&sep, response)?);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The text printed for an error reply (`beautifyError`), or the Python
/// exception raised while making it.
pub fn beautify_error(cmd: &[PyValue], exc: &PyException) -> Result<String, PyError> {
    log::debug!(
        target: "fail2ban.beautifier",
        "Beautify (error) {} with {}",
        exc.repr(),
        PyValue::List(cmd.to_vec()).repr()
    );
    let arg0 = || -> R<PyValue> {
        exc.args
            .first()
            .cloned()
            .ok_or_else(|| PyError("tuple index out of range".into()))
    };
    if exc.is_instance_of("fail2ban.exceptions", "UnknownJailException") {
        let s = concat("Sorry but the jail '", &arg0()?)?;
        Ok(format!("{s}' does not exist"))
    } else if exc.is_instance_of("builtins", "IndexError") {
        Ok("Sorry but the command is invalid".into())
    } else if exc.is_instance_of("fail2ban.exceptions", "DuplicateJailException") {
        let s = concat("The jail '", &arg0()?)?;
        Ok(format!("{s}' already exists"))
    } else {
        Ok(exc.to_py_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Vec<PyValue> {
        line.split(' ').map(PyValue::str).collect()
    }

    fn s(v: &str) -> PyValue {
        PyValue::str(v)
    }

    fn pair(k: &str, v: PyValue) -> PyValue {
        PyValue::Tuple(vec![s(k), v])
    }

    #[test]
    fn status_trees() {
        let server = PyValue::List(vec![
            pair("Number of jail", PyValue::Int(2)),
            pair("Jail list", s("manual, sshd")),
        ]);
        assert_eq!(
            beautify(&cmd("status"), &server),
            "Status\n|- Number of jail:\t2\n`- Jail list:\tmanual, sshd"
        );
        let jail = PyValue::List(vec![
            pair(
                "Filter",
                PyValue::List(vec![
                    pair("Currently failed", PyValue::Int(0)),
                    pair("Total failed", PyValue::Int(3)),
                    pair("File list", PyValue::str_list(["/a.log", "/b.log"])),
                ]),
            ),
            pair(
                "Actions",
                PyValue::List(vec![
                    pair("Currently banned", PyValue::Int(1)),
                    pair("Banned IP list", PyValue::List(vec![])),
                ]),
            ),
        ]);
        assert_eq!(
            beautify(&cmd("status sshd"), &jail),
            "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t0\n\
             |  |- Total failed:\t3\n|  `- File list:\t/a.log /b.log\n`- Actions\n\
             \x20  |- Currently banned:\t1\n   `- Banned IP list:\t"
        );
    }

    #[test]
    fn fixed_texts() {
        assert_eq!(beautify(&cmd("ping"), &s("pong")), "Server replied: pong");
        assert_eq!(
            beautify(&cmd("stop"), &PyValue::None),
            "Shutdown successful"
        );
        assert_eq!(beautify(&cmd("stop j"), &PyValue::None), "Jail stopped");
        assert_eq!(
            beautify(&cmd("echo a b"), &PyValue::str_list(["a", "b"])),
            "a b"
        );
        assert_eq!(
            beautify(&cmd("get loglevel"), &PyValue::Int(10)),
            "Current logging level is 'DEBUG'"
        );
        assert_eq!(
            beautify(&cmd("get dbpurgeage"), &PyValue::Int(86400)),
            "Current database purge age is:\n`- 86400seconds"
        );
        assert_eq!(
            beautify(
                &cmd("get j datepattern"),
                &PyValue::Tuple(vec![s("%Y"), s("Year")])
            ),
            "Current date pattern set to: %Y (Year)"
        );
        assert_eq!(
            beautify(
                &cmd("get j datepattern"),
                &PyValue::Tuple(vec![PyValue::None, s("Default Detectors")])
            ),
            "Current date pattern set to: Default Detectors"
        );
        assert_eq!(
            beautify(&cmd("get j failregex"), &PyValue::str_list(["a", "b"])),
            "The following regular expression are defined:\n|- [0]: a\n`- [1]: b"
        );
        assert_eq!(
            beautify(
                &cmd("get j banip --with-time"),
                &PyValue::str_list(["1", "2"])
            ),
            "1\n2"
        );
        assert_eq!(
            beautify(&cmd("get j banned"), &PyValue::str_list(["1.2.3.4"])),
            "['1.2.3.4']"
        );
        assert_eq!(
            beautify(&cmd("get j ignorecommand"), &PyValue::Bool(false)),
            "False"
        );
        assert_eq!(
            beautify(&cmd("set loglevel 9"), &PyValue::Int(9)),
            "Current logging level is '#09-Lev.'"
        );
        assert_eq!(level_name(99), "Level 99");
    }

    #[test]
    fn malformed_replies_print_like_python() {
        // Python: repr(msg so far) + repr(response).
        assert_eq!(beautify(&cmd("ping"), &PyValue::Int(1)), "11");
        assert_eq!(
            beautify(&cmd("get logtarget"), &PyValue::None),
            "'Current logging target is:\\n'None"
        );
        assert_eq!(
            beautify(
                &cmd("get j logpath"),
                &PyValue::List(vec![s("a"), PyValue::Int(2)])
            ),
            "'Current monitored log file(s):\\n|- a\\n'['a', 2]"
        );
        assert_eq!(
            beautify(&cmd("status j"), &PyValue::List(vec![PyValue::Int(1)])),
            "['Status for the jail: j']".to_string() + "[1]"
        );
    }

    #[test]
    fn error_texts() {
        let e = PyException::new("fail2ban.exceptions", "UnknownJailException", vec![s("x")]);
        assert_eq!(
            beautify_error(&cmd("status x"), &e).unwrap(),
            "Sorry but the jail 'x' does not exist"
        );
        let e = PyException::new("builtins", "IndexError", vec![s("list index out of range")]);
        assert_eq!(
            beautify_error(&cmd("get"), &e).unwrap(),
            "Sorry but the command is invalid"
        );
        let e = PyException::builtin("KeyError", "Invalid Action name: a");
        assert_eq!(
            beautify_error(&cmd("get j action a x"), &e).unwrap(),
            "'Invalid Action name: a'"
        );
        let e = PyException::new("fail2ban.exceptions", "UnknownJailException", vec![]);
        assert_eq!(
            beautify_error(&cmd("status"), &e).unwrap_err().0,
            "tuple index out of range"
        );
    }
}
