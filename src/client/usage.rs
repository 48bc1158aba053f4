//! The texts of `fail2ban-client -h`: the option list and the command
//! table, wrapped as Python's `textwrap` wraps it.
//!
//! The table's descriptions are wrapped at 34 columns by `textwrap.wrap`
//! (hyphenated words may break after a hyphen, whitespace is kept at line
//! ends); the chunking uses textwrap's own word-separator pattern through
//! [`crate::regex::PyRegex`].  fail2ban prefixes the description of a
//! command that is too long for its column with 34 spaces, and does so in
//! place, so every further `help` of one interactive session adds another
//! 34: the count of printed usages is kept to reproduce that.

use crate::regex::PyRegex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// fail2ban's version.
pub const VERSION: &str = "1.0.2";

const INDENT: usize = 4;
const MARGIN: usize = 41;
const WIDTH: usize = 34;

/// Section headings (empty command) and commands with their description.
const COMMANDS: &[(&str, &str)] = &[
    ("", "BASIC"),
    ("start", "starts the server and the jails"),
    ("restart", "restarts the server"),
    (
        "restart [--unban] [--if-exists] <JAIL>",
        "restarts the jail <JAIL> (alias for 'reload --restart ... <JAIL>')",
    ),
    (
        "reload [--restart] [--unban] [--all]",
        "reloads the configuration without restarting of the server, the option '--restart' activates completely restarting of affected jails, thereby can unban IP addresses (if option '--unban' specified)",
    ),
    (
        "reload [--restart] [--unban] [--if-exists] <JAIL>",
        "reloads the jail <JAIL>, or restarts it (if option '--restart' specified)",
    ),
    ("stop", "stops all jails and terminate the server"),
    (
        "unban --all",
        "unbans all IP addresses (in all jails and database)",
    ),
    (
        "unban <IP> ... <IP>",
        "unbans <IP> (in all jails and database)",
    ),
    ("banned", "return jails with banned IPs as dictionary"),
    (
        "banned <IP> ... <IP>]",
        "return list(s) of jails where given IP(s) are banned",
    ),
    ("status", "gets the current status of the server"),
    ("ping", "tests if the server is alive"),
    (
        "echo",
        "for internal usage, returns back and outputs a given string",
    ),
    ("help", "return this output"),
    ("version", "return the server version"),
    ("", "LOGGING"),
    (
        "set loglevel <LEVEL>",
        "sets logging level to <LEVEL>. Levels: CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG, TRACEDEBUG, HEAVYDEBUG or corresponding numeric value (50-5)",
    ),
    ("get loglevel", "gets the logging level"),
    (
        "set logtarget <TARGET>",
        "sets logging target to <TARGET>. Can be STDOUT, STDERR, SYSLOG, SYSTEMD-JOURNAL or a file",
    ),
    ("get logtarget", "gets logging target"),
    (
        "set syslogsocket auto|<SOCKET>",
        "sets the syslog socket path to auto or <SOCKET>. Only used if logtarget is SYSLOG",
    ),
    ("get syslogsocket", "gets syslog socket path"),
    (
        "flushlogs",
        "flushes the logtarget if a file and reopens it. For log rotation.",
    ),
    ("", "DATABASE"),
    (
        "set dbfile <FILE>",
        "set the location of fail2ban persistent datastore. Set to \"None\" to disable",
    ),
    (
        "get dbfile",
        "get the location of fail2ban persistent datastore",
    ),
    (
        "set dbmaxmatches <INT>",
        "sets the max number of matches stored in database per ticket",
    ),
    (
        "get dbmaxmatches",
        "gets the max number of matches stored in database per ticket",
    ),
    (
        "set dbpurgeage <SECONDS>",
        "sets the max age in <SECONDS> that history of bans will be kept",
    ),
    (
        "get dbpurgeage",
        "gets the max age in seconds that history of bans will be kept",
    ),
    ("", "JAIL CONTROL"),
    ("add <JAIL> <BACKEND>", "creates <JAIL> using <BACKEND>"),
    ("start <JAIL>", "starts the jail <JAIL>"),
    ("stop <JAIL>", "stops the jail <JAIL>. The jail is removed"),
    (
        "status <JAIL> [FLAVOR]",
        "gets the current status of <JAIL>, with optional flavor or extended info",
    ),
    ("", "JAIL CONFIGURATION"),
    ("set <JAIL> idle on|off", "sets the idle state of <JAIL>"),
    (
        "set <JAIL> ignoreself true|false",
        "allows the ignoring of own IP addresses",
    ),
    (
        "set <JAIL> addignoreip <IP>",
        "adds <IP> to the ignore list of <JAIL>",
    ),
    (
        "set <JAIL> delignoreip <IP>",
        "removes <IP> from the ignore list of <JAIL>",
    ),
    (
        "set <JAIL> ignorecommand <VALUE>",
        "sets ignorecommand of <JAIL>",
    ),
    (
        "set <JAIL> ignorecache <VALUE>",
        "sets ignorecache of <JAIL>",
    ),
    (
        "set <JAIL> addlogpath <FILE> ['tail']",
        "adds <FILE> to the monitoring list of <JAIL>, optionally starting at the 'tail' of the file (default 'head').",
    ),
    (
        "set <JAIL> dellogpath <FILE>",
        "removes <FILE> from the monitoring list of <JAIL>",
    ),
    (
        "set <JAIL> logencoding <ENCODING>",
        "sets the <ENCODING> of the log files for <JAIL>",
    ),
    (
        "set <JAIL> addjournalmatch <MATCH>",
        "adds <MATCH> to the journal filter of <JAIL>",
    ),
    (
        "set <JAIL> deljournalmatch <MATCH>",
        "removes <MATCH> from the journal filter of <JAIL>",
    ),
    (
        "set <JAIL> addfailregex <REGEX>",
        "adds the regular expression <REGEX> which must match failures for <JAIL>",
    ),
    (
        "set <JAIL> delfailregex <INDEX>",
        "removes the regular expression at <INDEX> for failregex",
    ),
    (
        "set <JAIL> addignoreregex <REGEX>",
        "adds the regular expression <REGEX> which should match pattern to exclude for <JAIL>",
    ),
    (
        "set <JAIL> delignoreregex <INDEX>",
        "removes the regular expression at <INDEX> for ignoreregex",
    ),
    (
        "set <JAIL> findtime <TIME>",
        "sets the number of seconds <TIME> for which the filter will look back for <JAIL>",
    ),
    (
        "set <JAIL> bantime <TIME>",
        "sets the number of seconds <TIME> a host will be banned for <JAIL>",
    ),
    (
        "set <JAIL> datepattern <PATTERN>",
        "sets the <PATTERN> used to match date/times for <JAIL>",
    ),
    (
        "set <JAIL> usedns <VALUE>",
        "sets the usedns mode for <JAIL>",
    ),
    (
        "set <JAIL> attempt <IP> [<failure1> ... <failureN>]",
        "manually notify about <IP> failure",
    ),
    (
        "set <JAIL> banip <IP> ... <IP>",
        "manually Ban <IP> for <JAIL>",
    ),
    (
        "set <JAIL> unbanip [--report-absent] <IP> ... <IP>",
        "manually Unban <IP> in <JAIL>",
    ),
    (
        "set <JAIL> maxretry <RETRY>",
        "sets the number of failures <RETRY> before banning the host for <JAIL>",
    ),
    (
        "set <JAIL> maxmatches <INT>",
        "sets the max number of matches stored in memory per ticket in <JAIL>",
    ),
    (
        "set <JAIL> maxlines <LINES>",
        "sets the number of <LINES> to buffer for regex search for <JAIL>",
    ),
    (
        "set <JAIL> addaction <ACT>[ <PYTHONFILE> <JSONKWARGS>]",
        "adds a new action named <ACT> for <JAIL>. Optionally for a Python based action, a <PYTHONFILE> and <JSONKWARGS> can be specified, else will be a Command Action",
    ),
    (
        "set <JAIL> delaction <ACT>",
        "removes the action <ACT> from <JAIL>",
    ),
    ("", "COMMAND ACTION CONFIGURATION"),
    (
        "set <JAIL> action <ACT> actionstart <CMD>",
        "sets the start command <CMD> of the action <ACT> for <JAIL>",
    ),
    (
        "set <JAIL> action <ACT> actionstop <CMD>",
        "sets the stop command <CMD> of the action <ACT> for <JAIL>",
    ),
    (
        "set <JAIL> action <ACT> actioncheck <CMD>",
        "sets the check command <CMD> of the action <ACT> for <JAIL>",
    ),
    (
        "set <JAIL> action <ACT> actionban <CMD>",
        "sets the ban command <CMD> of the action <ACT> for <JAIL>",
    ),
    (
        "set <JAIL> action <ACT> actionunban <CMD>",
        "sets the unban command <CMD> of the action <ACT> for <JAIL>",
    ),
    (
        "set <JAIL> action <ACT> timeout <TIMEOUT>",
        "sets <TIMEOUT> as the command timeout in seconds for the action <ACT> for <JAIL>",
    ),
    ("", "GENERAL ACTION CONFIGURATION"),
    (
        "set <JAIL> action <ACT> <PROPERTY> <VALUE>",
        "sets the <VALUE> of <PROPERTY> for the action <ACT> for <JAIL>",
    ),
    (
        "set <JAIL> action <ACT> <METHOD>[ <JSONKWARGS>]",
        "calls the <METHOD> with <JSONKWARGS> for the action <ACT> for <JAIL>",
    ),
    ("", "JAIL INFORMATION"),
    ("get <JAIL> banned", "return banned IPs of <JAIL>"),
    (
        "get <JAIL> banned <IP> ... <IP>]",
        "return 1 if IP is banned in <JAIL> otherwise 0, or a list of 1/0 for multiple IPs",
    ),
    (
        "get <JAIL> logpath",
        "gets the list of the monitored files for <JAIL>",
    ),
    (
        "get <JAIL> logencoding",
        "gets the encoding of the log files for <JAIL>",
    ),
    (
        "get <JAIL> journalmatch",
        "gets the journal filter match for <JAIL>",
    ),
    (
        "get <JAIL> ignoreself",
        "gets the current value of the ignoring the own IP addresses",
    ),
    (
        "get <JAIL> ignoreip",
        "gets the list of ignored IP addresses for <JAIL>",
    ),
    ("get <JAIL> ignorecommand", "gets ignorecommand of <JAIL>"),
    (
        "get <JAIL> failregex",
        "gets the list of regular expressions which matches the failures for <JAIL>",
    ),
    (
        "get <JAIL> ignoreregex",
        "gets the list of regular expressions which matches patterns to ignore for <JAIL>",
    ),
    (
        "get <JAIL> findtime",
        "gets the time for which the filter will look back for failures for <JAIL>",
    ),
    (
        "get <JAIL> bantime",
        "gets the time a host is banned for <JAIL>",
    ),
    (
        "get <JAIL> datepattern",
        "gets the pattern used to match date/times for <JAIL>",
    ),
    ("get <JAIL> usedns", "gets the usedns setting for <JAIL>"),
    (
        "get <JAIL> banip [<SEP>|--with-time]",
        "gets the list of of banned IP addresses for <JAIL>. Optionally the separator character ('<SEP>', default is space) or the option '--with-time' (printing the times of ban) may be specified. The IPs are ordered by end of ban.",
    ),
    (
        "get <JAIL> maxretry",
        "gets the number of failures allowed for <JAIL>",
    ),
    (
        "get <JAIL> maxmatches",
        "gets the max number of matches stored in memory per ticket in <JAIL>",
    ),
    (
        "get <JAIL> maxlines",
        "gets the number of lines to buffer for <JAIL>",
    ),
    ("get <JAIL> actions", "gets a list of actions for <JAIL>"),
    ("", "COMMAND ACTION INFORMATION"),
    (
        "get <JAIL> action <ACT> actionstart",
        "gets the start command for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> action <ACT> actionstop",
        "gets the stop command for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> action <ACT> actioncheck",
        "gets the check command for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> action <ACT> actionban",
        "gets the ban command for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> action <ACT> actionunban",
        "gets the unban command for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> action <ACT> timeout",
        "gets the command timeout in seconds for the action <ACT> for <JAIL>",
    ),
    ("", "GENERAL ACTION INFORMATION"),
    (
        "get <JAIL> actionproperties <ACT>",
        "gets a list of properties for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> actionmethods <ACT>",
        "gets a list of methods for the action <ACT> for <JAIL>",
    ),
    (
        "get <JAIL> action <ACT> <PROPERTY>",
        "gets the value of <PROPERTY> for the action <ACT> for <JAIL>",
    ),
];

/// How many times the command table was printed in this process.
static PRINTED: AtomicUsize = AtomicUsize::new(0);

/// The usage text (`dispUsage`) for the program called `caller` (the
/// base name of `argv[0]`); servers get no command table.
pub fn usage(caller: &str) -> String {
    let server = caller.ends_with("server");
    let mut out = format!(
        "Usage: {caller} [OPTIONS]{}\n\n",
        if server { "" } else { " <COMMAND>" }
    );
    out.push_str(&banner());
    out.push_str(
        "Options:
    -c, --conf <DIR>        configuration directory
    -s, --socket <FILE>     socket path
    -p, --pidfile <FILE>    pidfile path
    --pname <NAME>          name of the process (main thread) to identify instance (default fail2ban-server)
    --loglevel <LEVEL>      logging level
    --logtarget <TARGET>    logging target, use file-name or stdout, stderr, syslog or sysout.
    --syslogsocket auto|<FILE>
    -d                      dump configuration. For debugging
    --dp, --dump-pretty     dump the configuration using more human readable representation
    -t, --test              test configuration (can be also specified with start parameters)
    -i                      interactive mode
    -v                      increase verbosity
    -q                      decrease verbosity
    -x                      force execution of the server (remove socket file)
    -b                      start server in background (default)
    -f                      start server in foreground
    --async                 start server in async mode (for internal usage only, don't read configuration)
    --timeout               timeout to wait for the server (for internal usage only, don't read configuration)
    --str2sec <STRING>      convert time abbreviation format to seconds
    -h, --help              display this help message
    -V, --version           print the version (-V returns machine-readable short format)
",
    );
    if !server {
        out.push_str("\nCommand:\n");
        out.push_str(&command_table());
    }
    out.push_str("\nReport bugs to https://github.com/fail2ban/fail2ban/issues\n");
    out
}

/// The two lines describing fail2ban, then an empty line.
pub fn banner() -> String {
    format!(
        "Fail2Ban v{VERSION} reads log file that contains password failure report\n\
         and bans the corresponding IP addresses using firewall rules.\n\n"
    )
}

/// The command table (`printFormatted`).
fn command_table() -> String {
    let times = PRINTED.fetch_add(1, Ordering::Relaxed) + 1;
    let wordsep = PyRegex::new(WORDSEP).expect("textwrap pattern");
    let mut out = String::new();
    for (i, (cmd, desc)) in COMMANDS.iter().enumerate() {
        if cmd.is_empty() && i > 0 {
            out.push('\n');
        }
        let desc = if cmd.chars().count() >= MARGIN {
            format!("{}{desc}", " ".repeat(WIDTH * times))
        } else {
            desc.to_string()
        };
        for (k, piece) in wrap(&wordsep, &desc, WIDTH).iter().enumerate() {
            if k == 0 {
                let pad = MARGIN.saturating_sub(cmd.chars().count());
                out.push_str(&format!(
                    "{}{cmd}{}{}\n",
                    " ".repeat(INDENT),
                    " ".repeat(pad),
                    piece.trim()
                ));
            } else {
                out.push_str(&format!(
                    "{}{}\n",
                    " ".repeat(INDENT + MARGIN),
                    piece.trim()
                ));
            }
        }
    }
    out
}

/// textwrap's chunks: whitespace runs, em-dashes, and words that may break
/// after a hyphen between letters.
const WORDSEP: &str = r#"([\t\n\x0b\x0c\r ]+|(?<=[\w!"'&.,?])-{2,}(?=\w)|[^\t\n\x0b\x0c\r ]+?(?:-(?:(?<=[^\d\W]{2}-)|(?<=[^\d\W]-[^\d\W]-))(?=[^\d\W]-?[^\d\W])|(?=[\t\n\x0b\x0c\r ]|\Z)|(?<=[\w!"'&.,?])(?=-{2,}\w)))"#;

/// `textwrap.wrap(text, width, drop_whitespace=False)` for text without
/// tabs or line breaks; `re` is [`WORDSEP`].
fn wrap(re: &PyRegex, text: &str, width: usize) -> Vec<String> {
    // re.split with one group: the text between matches and the matches.
    let mut chunks: Vec<String> = Vec::new();
    let mut last = 0;
    while let Some(m) = re.search_range(text, last, text.len()) {
        let (start, end) = m.span();
        chunks.push(text[last..start].to_string());
        chunks.push(text[start..end].to_string());
        last = end;
    }
    chunks.push(text[last..].to_string());
    chunks.retain(|c| !c.is_empty());
    chunks.reverse();
    let len = |s: &str| s.chars().count();
    let mut lines = Vec::new();
    while !chunks.is_empty() {
        let mut cur: Vec<String> = Vec::new();
        let mut cur_len = 0;
        while let Some(c) = chunks.last() {
            if cur_len + len(c) <= width {
                cur_len += len(c);
                cur.push(chunks.pop().expect("chunk"));
            } else {
                break;
            }
        }
        if let Some(c) = chunks.last()
            && len(c) > width
        {
            // A word longer than a line: cut it, after a hyphen if any.
            let space_left = width.saturating_sub(cur_len).max(1);
            let chars: Vec<char> = c.chars().collect();
            let mut end = space_left;
            if chars.len() > space_left
                && let Some(h) = chars[..space_left].iter().rposition(|&x| x == '-')
                && h > 0
                && chars[..h].iter().any(|&x| x != '-')
            {
                end = h + 1;
            }
            cur.push(chars[..end].iter().collect());
            let rest: String = chars[end..].iter().collect();
            *chunks.last_mut().expect("chunk") = rest;
        }
        if !cur.is_empty() {
            lines.push(cur.concat());
        }
    }
    lines
}
