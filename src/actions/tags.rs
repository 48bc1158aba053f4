//! Tag substitution in action commands, in fail2ban's two phases.
//!
//! 1. *Static* ([`replace_tag`]): a command template such as
//!    `<actionban>` is expanded from the action's properties, themselves
//!    resolved recursively (by [`crate::config::tags`]), with the
//!    `tag?family=F` variant of a property taking precedence.  The
//!    expansion is repeated until nothing changes (at most 26 rounds);
//!    property values are inserted as they are, except properties named
//!    like the log-line tags (`matches`, ...), which are backslash-escaped.
//! 2. *Dynamic* ([`replace_dynamic_tags`]): one non-recursive pass over the
//!    ticket's tags ([`TicketTags`]: `<ip>`, `<matches>`, `<F-USER>` ...).
//!    A value holding a shell metacharacter is never pasted into the
//!    script: the tag becomes `$f2bV_<tag>` and the value travels as a
//!    positional argument of `/bin/sh -c`, bound to that variable by a
//!    prologue line (`f2bV_matches=$0 ...`).
//!
//! In both phases unknown tags stay verbatim, except `<br>`, `<sp>`,
//! `<fq-hostname>` and `<sh-hostname>`.  The host name and `<ip-host>`
//! need DNS: instead of blocking, a lookup that is not cached yet makes
//! the substitution answer with the [`DnsKey`] to resolve first.
//!
//! Written by hand: the tag grammar (`<[^ <>]+>`), the rescanning rules and
//! the escaping are fail2ban's own, and the results must match its bytes.

use super::dns::{self, DnsKey};
use super::{BanInfo, JailStats, Num};
use crate::config::tags::{MAX_TAG_REPLACE_COUNT, find_tag};
use crate::failregex::Value;
use crate::pyvalue::{PyValue, str_repr};
use indexmap::IndexMap;
use std::cell::Cell;

/// The tags whose values come from log lines (`CommandAction._escapedTags`).
pub(crate) const ESCAPED_TAGS: [&str; 3] = ["matches", "ipmatches", "ipjailmatches"];

/// A command for `/bin/sh -c`: the script, then the values bound to the
/// script's `f2bV_*` variables (`$0`, `$1`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ShellCmd {
    pub(crate) script: String,
    pub(crate) args: Vec<String>,
}

impl ShellCmd {
    /// A script without arguments.
    pub(crate) fn plain(script: impl Into<String>) -> ShellCmd {
        ShellCmd {
            script: script.into(),
            args: Vec::new(),
        }
    }

    /// Nothing to run (fail2ban skips empty commands).
    pub(crate) fn is_empty(&self) -> bool {
        self.script.is_empty() && self.args.is_empty()
    }

    /// The command as fail2ban logs it (`%s`): the script, or the Python
    /// list of script and values.
    pub(crate) fn display(&self) -> String {
        if self.args.is_empty() {
            self.script.clone()
        } else {
            self.as_list().repr()
        }
    }

    /// The command as Python's `%r` prints it.
    pub(crate) fn repr(&self) -> String {
        if self.args.is_empty() {
            str_repr(&self.script)
        } else {
            self.as_list().repr()
        }
    }

    fn as_list(&self) -> PyValue {
        PyValue::str_list(std::iter::once(&self.script).chain(&self.args).cloned())
    }
}

/// Whether a value holds a character that fail2ban never pastes into a
/// script (`\ # & ; \` | * ? ~ < > ^ ( ) [ ] { } $ ' "`, LF, CR).
pub(crate) fn needs_escape(value: &str) -> bool {
    value.chars().any(is_special)
}

fn is_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '#'
            | '&'
            | ';'
            | '`'
            | '|'
            | '*'
            | '?'
            | '~'
            | '<'
            | '>'
            | '^'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '$'
            | '\''
            | '"'
            | '\n'
            | '\r'
    )
}

/// fail2ban's `escapeTag`: a backslash before every special character,
/// newline and carriage return as `\n` and `\r`.
pub(crate) fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if is_special(c) {
            out.push('\\');
            out.push(match c {
                '\n' => 'n',
                '\r' => 'r',
                c => c,
            });
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of a special tag, or `None` with the lookup it waits for put
/// in `need` (or for a tag that is not special).
fn special_or_lookup(tag: &str, need: &mut Option<DnsKey>) -> Option<String> {
    match special_tag(tag)? {
        Ok(v) => Some(v),
        Err(key) => {
            *need = Some(key);
            None
        }
    }
}

/// The tags every phase knows: `<br>`, `<sp>` and the host names.
/// `Err` names the lookup still to be done.
fn special_tag(tag: &str) -> Option<Result<String, DnsKey>> {
    match tag {
        "br" => Some(Ok("\n".to_string())),
        "sp" => Some(Ok(" ".to_string())),
        "sh-hostname" => Some(Ok(dns::short_hostname())),
        "fq-hostname" => Some(match dns::cached(&DnsKey::Fqdn) {
            Some(name) => Ok(name.unwrap_or_default()),
            None => Err(DnsKey::Fqdn),
        }),
        _ => None,
    }
}

/// One `re.sub` pass of `<([^ <>]+)>` over `text`: `f(tag)` gives the
/// replacement, `None` keeps the tag.
fn sub_tags(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some((start, end)) = find_tag(text, pos) {
        out.push_str(&text[pos..start]);
        match f(&text[start + 1..end - 1]) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&text[start..end]),
        }
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// One `re.sub` pass of `<F-([A-Z0-9_\-]+)>` over `text`.
fn sub_ftags(text: &str, mut f: impl FnMut(&str) -> String) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut p) = (0, 0);
    while let Some(off) = text[p..].find("<F-") {
        let start = p + off;
        let name_start = start + 3;
        let mut i = name_start;
        while i < bytes.len()
            && (bytes[i].is_ascii_uppercase()
                || bytes[i].is_ascii_digit()
                || bytes[i] == b'_'
                || bytes[i] == b'-')
        {
            i += 1;
        }
        if i > name_start && i < bytes.len() && bytes[i] == b'>' {
            out.push_str(&text[copied..start]);
            out.push_str(&f(&text[name_start..i]));
            copied = i + 1;
            p = i + 1;
        } else {
            p = start + 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Static phase: expands `query` with the recursively resolved properties
/// `info` (`conditional` is `family=inet4` etc. or empty).  `Ok(Err(key))`:
/// a host name must be looked up first.  `Err`: fail2ban's `ValueError`
/// text for a runaway expansion.
pub(crate) fn replace_tag(
    query: &str,
    info: &IndexMap<String, Option<String>>,
    conditional: &str,
) -> Result<Result<String, DnsKey>, String> {
    if !query.contains('<') {
        return Ok(Ok(query.to_string()));
    }
    let mut query = query.to_string();
    let mut count = MAX_TAG_REPLACE_COUNT + 1;
    loop {
        let mut need = None;
        let value = sub_tags(&query, |tag| {
            let mut v = None;
            if !conditional.is_empty() {
                v = info.get(&format!("{tag}?{conditional}")).cloned().flatten();
            }
            if v.is_none() {
                v = info.get(tag).cloned().flatten();
            }
            match v {
                Some(v) if ESCAPED_TAGS.contains(&tag) => Some(escape_tag(&v)),
                Some(v) => Some(v),
                None => special_or_lookup(tag, &mut need),
            }
        });
        if let Some(key) = need {
            return Ok(Err(key));
        }
        if value == query || !value.contains('<') {
            return Ok(Ok(value));
        }
        query = value;
        count -= 1;
        if count == 0 {
            return Err(format!(
                "unexpected too long replacement interpolation, possible self referencing \
                 definitions in query: {query}"
            ));
        }
    }
}

/// Where the dynamic phase takes its values from.
pub(crate) trait TagSource {
    /// The value of tag `tag`, `None` when this source has no such tag,
    /// `Some(Err(key))` when a lookup is needed first.
    fn value(&self, tag: &str) -> Option<Result<String, DnsKey>>;
    /// The ticket data item `key` (for `<F-KEY>` tags), as `str()` prints it.
    fn fdata(&self, key: &str) -> Option<String>;
}

/// The source of `_getOperation`: only `<family>`, and no ticket data.
pub(crate) struct FamilyOnly<'a>(pub &'a str);

impl TagSource for FamilyOnly<'_> {
    fn value(&self, tag: &str) -> Option<Result<String, DnsKey>> {
        (tag == "family").then(|| Ok(self.0.to_string()))
    }

    fn fdata(&self, _key: &str) -> Option<String> {
        None
    }
}

/// fail2ban's `mapTag2Opt`: the data key of an `<F-NAME>` tag.
fn map_tag2opt(name: &str) -> String {
    let key = name.to_lowercase();
    match key.as_str() {
        "id" => "fid".to_string(),
        "port" => "fport".to_string(),
        _ => key,
    }
}

/// The shell variable name of a tag (`\W` → `_`).
fn var_name(tag: &str) -> String {
    let mut name = String::from("f2bV_");
    name.extend(tag.chars().map(|c| {
        if c.is_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    name
}

/// Dynamic phase: replaces the ticket tags of `cmd` once (no recursion),
/// then the `<F-*>` tags, binding values with special characters to shell
/// variables.  `Err(key)`: a lookup must be done first.
pub(crate) fn replace_dynamic_tags(cmd: &str, src: &dyn TagSource) -> Result<ShellCmd, DnsKey> {
    let mut vars: IndexMap<String, String> = IndexMap::new();
    let mut escape = |tag: &str, value: String| {
        if needs_escape(&value) {
            let name = var_name(tag);
            let repl = format!("${name}");
            vars.insert(name, value);
            repl
        } else {
            value
        }
    };
    let mut need = None;
    let mut script = sub_tags(cmd, |tag| match src.value(tag) {
        Some(Ok(v)) => Some(escape(tag, v)),
        Some(Err(key)) => {
            need = Some(key);
            None
        }
        None => special_or_lookup(tag, &mut need),
    });
    if let Some(key) = need {
        return Err(key);
    }
    if script.contains('<') {
        script = sub_ftags(&script, |name| {
            let key = map_tag2opt(name);
            match src.fdata(&key) {
                Some(v) => escape(&format!("F_{key}"), v),
                None => String::new(),
            }
        });
    }
    if vars.is_empty() {
        return Ok(ShellCmd::plain(script));
    }
    let mut prologue = String::new();
    for (i, name) in vars.keys().enumerate() {
        prologue.push_str(&format!("{name}=${i} "));
    }
    prologue.push('\n');
    prologue.push_str(&script);
    Ok(ShellCmd {
        script: prologue,
        args: vars.into_values().collect(),
    })
}

/// The tags of `Actions.ActionInfo`, in its order (the order of the
/// `ActionInfo({...})` text in error messages).
const INFO_TAGS: [&str; 21] = [
    "ip",
    "family",
    "ip-rev",
    "ip-host",
    "fid",
    "failures",
    "time",
    "bantime",
    "bancount",
    "matches",
    "restored",
    "F-*",
    "ipmatches",
    "ipjailmatches",
    "ipfailures",
    "ipjailfailures",
    "raw-ticket",
    "jail.banned",
    "jail.banned_total",
    "jail.found",
    "jail.found_total",
];

/// Shown by Python for the two always-listed items it has not computed.
const UNCOMPUTED: &str = "<function Actions.ActionInfo.<lambda> at 0x7f0a1c2e3f40>";

/// The family of a ticket or operation as fail2ban keys its state: a name
/// (`inet4`, `inet6`, or empty for actions that do not depend on it) or
/// Python's `None` (ids that are not addresses).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    None,
    Name(String),
}

impl Family {
    pub(crate) fn name(s: &str) -> Family {
        Family::Name(s.to_string())
    }

    /// Python truthiness.
    pub(crate) fn truthy(&self) -> bool {
        matches!(self, Family::Name(s) if !s.is_empty())
    }

    /// `str(family)`.
    pub(crate) fn text(&self) -> &str {
        match self {
            Family::None => "None",
            Family::Name(s) => s,
        }
    }

    /// The conditional suffix (`family=inet6`), empty for a falsy family.
    pub(crate) fn conditional(&self) -> String {
        if self.truthy() {
            format!("family={}", self.text())
        } else {
            String::new()
        }
    }
}

/// The dynamic tags of one ticket (`ActionInfo`), with the jail's counters
/// as they are when the command is built, and which tags were used (for
/// the error text).
pub(crate) struct TicketTags<'a> {
    info: &'a BanInfo,
    stats: JailStats,
    family: Option<Family>,
    used: Cell<u32>,
}

impl<'a> TicketTags<'a> {
    /// The tags of `info`; `family` overrides the address family (the
    /// operations' empty ticket).
    pub(crate) fn new(info: &'a BanInfo, stats: JailStats, family: Option<Family>) -> Self {
        TicketTags {
            info,
            stats,
            family,
            used: Cell::new(0),
        }
    }

    fn mark(&self, tag: &str) {
        if let Some(i) = INFO_TAGS.iter().position(|t| *t == tag) {
            self.used.set(self.used.get() | 1 << i);
        }
    }

    /// The family of the ticket (`aInfo['family']`).
    pub(crate) fn family(&self) -> Family {
        self.mark("ip");
        self.mark("family");
        match &self.family {
            Some(f) => f.clone(),
            None => match self.info.ip.family_str() {
                Some(f) => Family::name(f),
                None => Family::None,
            },
        }
    }

    /// `str(aInfo['ip'])`.
    pub(crate) fn ip(&self) -> String {
        self.mark("ip");
        self.info.ip.ntoa()
    }

    fn bantime(&self) -> i64 {
        self.info.bantime.unwrap_or(self.stats.bantime).trunc_int()
    }

    /// The ticket's data dict as Python holds it: matches, failures, then
    /// the captured groups.
    fn data_dict(&self) -> PyValue {
        let mut items = vec![
            (
                PyValue::str("matches"),
                PyValue::str_list(self.info.matches.iter().cloned()),
            ),
            (PyValue::str("failures"), PyValue::Int(self.info.failures)),
        ];
        for (k, v) in self.info.data.iter() {
            if matches!(v, Value::None) {
                continue;
            }
            let key = PyValue::str(&**k);
            match items.iter_mut().find(|(n, _)| *n == key) {
                Some(slot) => slot.1 = value_py(v),
                None => items.push((key, value_py(v))),
            }
        }
        PyValue::Dict(items)
    }

    fn raw_ticket(&self) -> String {
        let bantime = match self.info.bantime {
            Some(b) => b.to_string(),
            None => "None".to_string(),
        };
        format!(
            "BanTicket: ip={} time={} bantime={} bancount={} #attempts={} matches={}",
            self.info.fid,
            self.info.time,
            bantime,
            self.info.bancount,
            self.info.failures,
            PyValue::str_list(self.info.matches.iter().cloned()).repr()
        )
    }

    /// The value of a tag as Python holds it (for `repr` in messages).
    fn py_value(&self, tag: &str) -> Option<PyValue> {
        let info = self.info;
        let merged_all = info.merged_all.as_ref();
        let merged_jail = info.merged_jail.as_ref();
        let lines = |m: &[String]| PyValue::Str(m.join("\n"));
        Some(match tag {
            "ip" => PyValue::Str(info.ip.ntoa()),
            "family" => match self.family() {
                Family::None => PyValue::None,
                Family::Name(s) => PyValue::Str(s),
            },
            "ip-rev" => PyValue::Str(ptr_prefix(&info.ip)),
            "fid" => PyValue::Str(info.fid.clone()),
            "failures" => PyValue::Int(info.failures),
            "time" => num_py(info.time),
            "bantime" => PyValue::Int(self.bantime()),
            "bancount" => PyValue::Int(info.bancount),
            "matches" => lines(&info.matches),
            "restored" => PyValue::Int(info.restored as i64),
            "F-*" => self.data_dict(),
            "ipmatches" => lines(merged_all.map_or(&info.matches, |m| &m.matches)),
            "ipjailmatches" => lines(merged_jail.map_or(&info.matches, |m| &m.matches)),
            "ipfailures" => PyValue::Int(merged_all.map_or(info.failures, |m| m.failures)),
            "ipjailfailures" => PyValue::Int(merged_jail.map_or(info.failures, |m| m.failures)),
            "raw-ticket" => PyValue::Str(self.raw_ticket()),
            "jail.banned" => PyValue::Int(self.stats.banned),
            "jail.banned_total" => PyValue::Int(self.stats.banned_total),
            "jail.found" => PyValue::Int(self.stats.found),
            "jail.found_total" => PyValue::Int(self.stats.found_total),
            _ => return None,
        })
    }

    /// Python's `repr(aInfo)`: the items computed so far, plus `fid` and
    /// `raw-ticket` (shown as the functions that compute them when unused).
    pub(crate) fn repr(&self) -> String {
        let used = self.used.get();
        let mut items = Vec::new();
        for (i, tag) in INFO_TAGS.iter().enumerate() {
            let computed = used & (1 << i) != 0;
            let value = if computed {
                match *tag {
                    "ip-host" => match self.value("ip-host") {
                        Some(Ok(v)) if v != "None" => PyValue::Str(v),
                        _ => PyValue::None,
                    },
                    t => match self.py_value(t) {
                        Some(v) => v,
                        None => continue,
                    },
                }
            } else if *tag == "fid" || *tag == "raw-ticket" {
                items.push(format!("{}: {UNCOMPUTED}", str_repr(tag)));
                continue;
            } else {
                continue;
            };
            items.push(format!("{}: {}", str_repr(tag), value.repr()));
        }
        format!("ActionInfo({{{}}})", items.join(", "))
    }
}

impl TagSource for TicketTags<'_> {
    fn value(&self, tag: &str) -> Option<Result<String, DnsKey>> {
        if tag == "ip-host" {
            self.mark(tag);
            if !self.info.ip.is_ip() {
                return Some(Ok("None".to_string()));
            }
            let key = DnsKey::Ptr(self.info.ip.ntoa());
            return Some(match dns::cached(&key) {
                Some(name) => Ok(name.unwrap_or_else(|| "None".to_string())),
                None => Err(key),
            });
        }
        let v = self.py_value(tag)?;
        self.mark(tag);
        Some(Ok(v.to_py_str()))
    }

    fn fdata(&self, key: &str) -> Option<String> {
        self.mark("F-*");
        match key {
            "matches" if !self.info.data.contains("matches") => {
                Some(PyValue::str_list(self.info.matches.iter().cloned()).repr())
            }
            "failures" if !self.info.data.contains("failures") => {
                Some(self.info.failures.to_string())
            }
            _ => match self.info.data.get(key)? {
                Value::None => None,
                v => Some(value_py(v).to_py_str()),
            },
        }
    }
}

/// `getPTR('')`: the reversed address with a trailing dot, empty for ids
/// that are not addresses.
fn ptr_prefix(ip: &crate::ipaddr::IpAddr) -> String {
    let ptr = ip.ptr();
    for suffix in ["in-addr.arpa.", "ip6.arpa."] {
        if let Some(p) = ptr.strip_suffix(suffix) {
            return p.to_string();
        }
    }
    ptr
}

fn num_py(n: Num) -> PyValue {
    match n {
        Num::Int(i) => PyValue::Int(i),
        Num::Float(f) => PyValue::Float(f),
    }
}

/// A captured group value as the Python object it stands for.
fn value_py(v: &Value) -> PyValue {
    match v {
        Value::None => PyValue::None,
        Value::Str(s) => PyValue::Str(s.to_string()),
        Value::Tuple(items) => PyValue::Tuple(items.iter().map(value_py).collect()),
        Value::Int(i) => PyValue::Int(*i),
        Value::Set(items) => PyValue::Set(items.iter().map(|s| PyValue::str(s.as_str())).collect()),
        Value::Lines(lines) => {
            PyValue::List(lines.iter().map(|l| PyValue::str(l.joined())).collect())
        }
        Value::Ip(ip) => PyValue::Str(ip.ntoa()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> IndexMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn escaping_of_property_values_and_special_tags() {
        assert_eq!(escape_tag("a;b\n$(c) 'd'"), "a\\;b\\n\\$\\(c\\) \\'d\\'");
        let p = props(&[
            ("actionban", "ban <ip> <chain><br><matches> <x>"),
            ("chain", "f2b-<name>"),
            ("name", "ssh"),
            ("matches", "x;y"),
        ]);
        let r = replace_tag("<actionban>", &p, "").unwrap().unwrap();
        assert_eq!(r, "ban <ip> f2b-ssh\nx\\;y <x>");
    }

    #[test]
    fn conditional_properties_win() {
        let p = props(&[
            ("actionban", "<cmd> <ip>"),
            ("cmd", "iptables"),
            ("cmd?family=inet6", "ip6tables"),
        ]);
        assert_eq!(
            replace_tag("<actionban>", &p, "family=inet6")
                .unwrap()
                .unwrap(),
            "ip6tables <ip>"
        );
        assert_eq!(
            replace_tag("<actionban>", &p, "").unwrap().unwrap(),
            "iptables <ip>"
        );
    }

    #[test]
    fn runaway_expansion_is_an_error() {
        // Without the recursive phase (which would refuse these
        // properties), the query grows on every round.
        let p = props(&[("a", "<b>x"), ("b", "<c>"), ("c", "<a>")]);
        let e = replace_tag("<a>", &p, "").unwrap_err();
        assert!(e.starts_with("unexpected too long replacement interpolation"));
    }

    #[test]
    fn dynamic_values_with_metacharacters_become_variables() {
        let src = FamilyOnly("inet6");
        let c = replace_dynamic_tags("x <family> <F-USER> <br> <other>", &src).unwrap();
        assert_eq!(c, ShellCmd::plain("x inet6  \n <other>"));
        assert_eq!(var_name("ip-host"), "f2bV_ip_host");
        assert_eq!(var_name("jail.banned"), "f2bV_jail_banned");
    }

    #[test]
    fn ftag_scanner_is_uppercase_only() {
        let s = sub_ftags("<F-USER> <F-user> <F-> <<F-ID>>", |n| format!("[{n}]"));
        assert_eq!(s, "[USER] <F-user> <F-> <[ID]>");
    }

    #[test]
    fn commands_print_as_python_does() {
        let c = ShellCmd {
            script: "f2bV_matches=$0 \necho $f2bV_matches".into(),
            args: vec!["a'b".into()],
        };
        assert_eq!(
            c.display(),
            "['f2bV_matches=$0 \\necho $f2bV_matches', \"a'b\"]"
        );
        assert_eq!(ShellCmd::plain("echo 'x'").repr(), "\"echo 'x'\"");
    }
}
