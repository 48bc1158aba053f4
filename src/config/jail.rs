//! Jails → their command streams (fail2ban's `JailReader` and
//! `JailsReader`).
//!
//! Every section of the config `jail` (jail.conf with its `paths-*.conf`
//! includes, `jail.d/*.conf`, `jail.local`, `jail.d/*.local`) except
//! `INCLUDES` is a jail.  A jail is read in two stages: `enabled`, `backend`
//! and `filter` first (a disabled jail stops there); then its filter is read
//! and its combined options are merged into the jail section as
//! `known/<option>`; then the full jail option table, the filter again with
//! the jail's options, and the actions.  Definition errors (bad `filter` or
//! `action` syntax, missing files) put the jail aside with a
//! `config-error` entry; other errors abort the whole reading, as in Python.

use super::Error;
use super::action::ActionReader;
use super::filter::{FILTER_OPTIONS, FilterReader};
use super::glob::glob;
use super::ini::Section;
use super::options::{extract_options, split_with_options, splitwords};
use super::reader::{ConfigReader, OptDefault, OptKind, OptionSpec, ShareConfig, py_join};
use crate::pyvalue::{PyValue, json_string, str_repr};
use indexmap::IndexMap;
use std::path::Path;
use std::rc::Rc;

const LOG: &str = "fail2ban.jailreader";
const LOG_JAILS: &str = "fail2ban.jailsreader";

/// The fail2ban version this reader emulates (`%(fail2ban_version)s`).
pub const VERSION: &str = "1.0.2";

const fn opt(name: &'static str, kind: OptKind, default: OptDefault) -> OptionSpec {
    OptionSpec::new(name, kind, default)
}

/// The options of a jail's first stage.
pub static JAIL_OPTIONS_1ST: &[OptionSpec] = &[
    opt("enabled", OptKind::Bool, OptDefault::Bool(false)),
    opt("backend", OptKind::Str, OptDefault::Str("auto")),
    opt("filter", OptKind::Str, OptDefault::Str("")),
];

/// The options of a jail (followed by the filter options, [`jail_options`]).
static JAIL_OWN_OPTIONS: &[OptionSpec] = &[
    opt("enabled", OptKind::Bool, OptDefault::Bool(false)),
    opt("backend", OptKind::Str, OptDefault::Str("auto")),
    opt("maxretry", OptKind::Int, OptDefault::None),
    opt("maxmatches", OptKind::Int, OptDefault::None),
    opt("findtime", OptKind::Str, OptDefault::None),
    opt("bantime", OptKind::Str, OptDefault::None),
    opt("bantime.increment", OptKind::Bool, OptDefault::None),
    opt("bantime.factor", OptKind::Str, OptDefault::None),
    opt("bantime.formula", OptKind::Str, OptDefault::None),
    opt("bantime.multipliers", OptKind::Str, OptDefault::None),
    opt("bantime.maxtime", OptKind::Str, OptDefault::None),
    opt("bantime.rndtime", OptKind::Str, OptDefault::None),
    opt("bantime.overalljails", OptKind::Bool, OptDefault::None),
    opt("ignorecommand", OptKind::Str, OptDefault::None),
    opt("ignoreself", OptKind::Bool, OptDefault::None),
    opt("ignoreip", OptKind::Str, OptDefault::None),
    opt("ignorecache", OptKind::Str, OptDefault::None),
    opt("filter", OptKind::Str, OptDefault::Str("")),
    opt("logtimezone", OptKind::Str, OptDefault::None),
    opt("logencoding", OptKind::Str, OptDefault::None),
    opt("logpath", OptKind::Str, OptDefault::None),
    opt("action", OptKind::Str, OptDefault::Str("")),
];

/// The full option table of a jail: its own options, then the filter's.
pub fn jail_options() -> Vec<OptionSpec> {
    JAIL_OWN_OPTIONS
        .iter()
        .chain(FILTER_OPTIONS)
        .copied()
        .collect()
}

/// Jail options not sent as `set` commands.
fn is_ignored_option(name: &str) -> bool {
    matches!(name, "action" | "filter" | "enabled") || FILTER_OPTIONS.iter().any(|s| s.name == name)
}

fn str_of(opts: &IndexMap<String, PyValue>, name: &str) -> String {
    opts.get(name).map(PyValue::to_py_str).unwrap_or_default()
}

/// Python's `json.dumps` of a dict of strings (default separators,
/// non-ASCII escaped).
fn json_dumps(map: &IndexMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(&mut out, k, true);
        out.push_str(": ");
        json_string(&mut out, v, true);
    }
    out.push('}');
    out
}

/// Why reading a jail stopped.
enum Stop {
    /// A definition error: the jail is skipped (`JailDefError`).
    Def(String),
    /// Any other error: the whole reading fails.
    Fatal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fatal(e)
    }
}

/// One action of a jail: an action file, or a Python action (`X.py`)
/// already turned into its command.
#[derive(Debug)]
enum JailAction {
    Reader(Box<ActionReader>),
    Command(PyValue),
}

/// A reader of one jail.
#[derive(Debug)]
pub struct JailReader {
    reader: ConfigReader,
    name: String,
    force_enable: bool,
    filter: Option<FilterReader>,
    actions: Vec<JailAction>,
    opts: IndexMap<String, PyValue>,
    config_error: Option<String>,
}

impl JailReader {
    /// A reader of jail `name` over the (already read) `jail` config.
    pub fn new(name: &str, force_enable: bool, config: ConfigReader) -> Self {
        JailReader {
            reader: config,
            name: name.to_string(),
            force_enable,
            filter: None,
            actions: Vec::new(),
            opts: IndexMap::new(),
            config_error: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The jail's options as read.
    pub fn options(&self) -> &IndexMap<String, PyValue> {
        &self.opts
    }

    /// The definition error that makes this jail skipped, if any.
    pub fn config_error(&self) -> Option<&str> {
        self.config_error.as_deref()
    }

    /// Whether the jail is enabled (or forced).
    pub fn is_enabled(&self) -> bool {
        self.force_enable || self.opts.get("enabled").is_some_and(PyValue::truthy)
    }

    fn share(&self) -> Rc<ShareConfig> {
        self.reader.share().clone()
    }

    /// Reads the jail (Python's `JailReader.getOptions`): `Ok(false)` for a
    /// definition error (logged, kept as [`JailReader::config_error`]).
    pub fn get_options(&mut self) -> Result<bool, Error> {
        let basedir = self.reader.base_dir();
        self.reader.merge_defaults(&[
            ("fail2ban_version", VERSION),
            ("fail2ban_confpath", basedir.as_str()),
        ]);
        match self.read_options(&basedir) {
            Ok(()) => Ok(true),
            Err(Stop::Def(msg)) => {
                log::error!(target: LOG, "{msg}");
                self.config_error = Some(msg);
                Ok(false)
            }
            Err(Stop::Fatal(e)) => Err(e),
        }
    }

    fn read_options(&mut self, basedir: &str) -> Result<(), Stop> {
        self.opts = self
            .reader
            .get_options(&self.name, JAIL_OPTIONS_1ST, None, true, true)?;
        if !self.is_enabled() {
            return Ok(());
        }
        let flt = str_of(&self.opts, "filter");
        if flt.is_empty() {
            self.filter = None;
            log::warn!(target: LOG, "No filter set for jail {}", self.name);
        } else {
            let (filter_name, filter_opts) = extract_options(&flt).map_err(|e| {
                Stop::Def(format!("Invalid filter definition {}: {e}", str_repr(&flt)))
            })?;
            let mut filter = FilterReader::with_share(
                &filter_name,
                &self.name,
                filter_opts,
                Some(basedir),
                self.share(),
            );
            if !filter.read()? {
                return Err(Stop::Def(format!(
                    "Unable to read the filter {}",
                    str_repr(&filter_name)
                )));
            }
            filter.apply_auto_options(&str_of(&self.opts, "backend"));
            filter.get_options(Some(&self.opts), true)?;
            let known: Section = filter
                .combined()?
                .into_iter()
                .filter(|(_, v)| *v != PyValue::None)
                .map(|(k, v)| (k, v.to_py_str()))
                .collect();
            self.reader.merge_section(&self.name, known, "known/")?;
            self.filter = Some(filter);
        }
        self.opts = self
            .reader
            .get_options(&self.name, &jail_options(), None, false, true)?;
        if let Some(filter) = &mut self.filter {
            filter.get_options(Some(&self.opts), false)?;
        }
        for act in split_with_options(&str_of(&self.opts, "action")) {
            let act = super::py_strip(&act).to_string();
            if act.is_empty() {
                continue;
            }
            self.add_action(&act, basedir).map_err(|stop| match stop {
                Stop::Fatal(e) => Stop::Fatal(Error::Value(format!(
                    "Error in action definition {}: {}",
                    str_repr(&act),
                    e.py_repr()
                ))),
                def => def,
            })?;
        }
        if self.actions.is_empty() {
            log::warn!(target: LOG, "No actions were defined for {}", self.name);
        }
        Ok(())
    }

    fn add_action(&mut self, act: &str, basedir: &str) -> Result<(), Stop> {
        let (act_name, mut act_opts) = extract_options(act)
            .map_err(|e| Stop::Def(format!("Invalid action definition {}: {e}", str_repr(act))))?;
        if act_name.ends_with(".py") {
            let actname = act_opts
                .shift_remove("actname")
                .unwrap_or_else(|| act_name[..act_name.len() - 3].to_string());
            self.actions.push(JailAction::Command(PyValue::List(vec![
                PyValue::str("set"),
                PyValue::str(self.name.as_str()),
                PyValue::str("addaction"),
                PyValue::Str(actname),
                PyValue::Str(py_join(&py_join(basedir, "action.d"), &act_name)),
                PyValue::Str(json_dumps(&act_opts)),
            ])));
            return Ok(());
        }
        let mut action =
            ActionReader::with_share(&act_name, &self.name, act_opts, Some(basedir), self.share());
        if !action.read()? {
            return Err(Stop::Def(format!(
                "Unable to read action {}",
                str_repr(&act_name)
            )));
        }
        action.get_options(Some(&self.opts))?;
        self.actions.push(JailAction::Reader(Box::new(action)));
        Ok(())
    }

    /// The jail's command stream (Python's `JailReader.convert`).  Without
    /// `allow_no_files`, a jail without any log file is an error.
    pub fn convert(&mut self, allow_no_files: bool) -> Result<Vec<PyValue>, Error> {
        let name = self.name.clone();
        let set = |opt: &str, mut rest: Vec<PyValue>| {
            let mut cmd = vec![
                PyValue::str("set"),
                PyValue::str(name.as_str()),
                PyValue::str(opt),
            ];
            cmd.append(&mut rest);
            PyValue::List(cmd)
        };
        if let Some(e) = &self.config_error {
            return Ok(vec![PyValue::List(vec![
                PyValue::str("config-error"),
                PyValue::Str(format!(
                    "Jail '{name}' skipped, because of wrong configuration: {e}"
                )),
            ])]);
        }
        let mut stream = Vec::new();
        let mut logpaths = Vec::new();
        if let Some(filter) = &mut self.filter {
            stream.extend(filter.convert()?);
        }
        FilterReader::fill_stream(&mut stream, &self.opts, &name)?;
        let mut backend = PyValue::None;
        let systemd = str_of(&self.opts, "backend").starts_with("systemd");
        for (opt, value) in &self.opts {
            match opt.as_str() {
                "logpath" => {
                    if systemd {
                        continue;
                    }
                    let mut found = 0;
                    for line in value.to_py_str().split('\n') {
                        let (path, tail) = line.rsplit_once(' ').unwrap_or((line, "head"));
                        let paths = existing_files(path);
                        if paths.is_empty() {
                            log::info!(target: LOG, "No file(s) found for glob {path}");
                        }
                        for p in paths {
                            found += 1;
                            logpaths
                                .push(set("addlogpath", vec![PyValue::Str(p), PyValue::str(tail)]));
                        }
                    }
                    if found == 0 {
                        let msg = format!("Have not found any log file for {name} jail");
                        if !allow_no_files {
                            return Err(Error::Value(msg));
                        }
                        log::warn!(target: LOG, "{msg}");
                    }
                }
                "backend" => backend = value.clone(),
                "ignoreip" => stream.push(set(
                    "addignoreip",
                    splitwords(&value.to_py_str())
                        .into_iter()
                        .map(PyValue::Str)
                        .collect(),
                )),
                o if !is_ignored_option(o) => stream.push(set(o, vec![value.clone()])),
                _ => {}
            }
        }
        stream.append(&mut logpaths);
        for action in &mut self.actions {
            match action {
                JailAction::Reader(reader) => stream.extend(reader.convert()?),
                JailAction::Command(cmd) => stream.push(cmd.clone()),
            }
        }
        stream.insert(
            0,
            PyValue::List(vec![
                PyValue::str("add"),
                PyValue::str(name.as_str()),
                backend,
            ]),
        );
        Ok(stream)
    }
}

/// `JailReader._glob`: the files of a glob, dangling links left out (with a
/// warning).
fn existing_files(path: &str) -> Vec<String> {
    glob(path)
        .into_iter()
        .filter(|p| {
            let exists = Path::new(p).exists();
            if !exists {
                log::warn!(target: LOG, "File {p} is a dangling link, thus cannot be monitored");
            }
            exists
        })
        .collect()
}

/// A reader of all jails of a configuration (Python's `JailsReader`).
#[derive(Debug)]
pub struct JailsReader {
    reader: ConfigReader,
    force_enable: bool,
    jails: Vec<JailReader>,
}

impl JailsReader {
    /// A reader of the config `jail` under `basedir`, sharing parsed files
    /// through `share`; `force_enable` treats every jail as enabled.
    pub fn new(basedir: Option<&str>, share: Rc<ShareConfig>, force_enable: bool) -> Self {
        JailsReader {
            reader: ConfigReader::new(basedir, Some(share)),
            force_enable,
            jails: Vec::new(),
        }
    }

    /// The underlying config reader.
    pub fn reader(&self) -> &ConfigReader {
        &self.reader
    }

    pub fn reader_mut(&mut self) -> &mut ConfigReader {
        &mut self.reader
    }

    /// The jails kept by [`JailsReader::get_options`]: enabled ones and
    /// those with definition errors.
    pub fn jails(&self) -> &[JailReader] {
        &self.jails
    }

    /// Reads the jail config files.
    pub fn read(&mut self) -> Result<bool, Error> {
        self.jails.clear();
        self.reader.read("jail")
    }

    /// Reads every jail (or the one named `section`), keeping enabled ones
    /// and erroneous ones.  The result is Python's: with `ignore_wrong`, true
    /// when some jail was fine; otherwise true when no jail had an error.
    pub fn get_options(
        &mut self,
        section: Option<&str>,
        ignore_wrong: bool,
    ) -> Result<bool, Error> {
        let sections = match section {
            Some(s) => vec![s.to_string()],
            None => self.reader.sections(),
        };
        let (mut some_ok, mut some_wrong) = (false, false);
        for sec in sections {
            if sec == "INCLUDES" {
                continue;
            }
            let mut jail = JailReader::new(&sec, self.force_enable, self.reader.clone());
            if jail.get_options()? {
                if jail.is_enabled() {
                    some_ok = true;
                    self.jails.push(jail);
                }
            } else {
                log::error!(target: LOG_JAILS,
                    "Errors in jail {}.{}",
                    str_repr(&sec),
                    if ignore_wrong { " Skipping..." } else { "" }
                );
                self.jails.push(jail);
                some_wrong = true;
            }
        }
        Ok((ignore_wrong && some_ok) || !some_wrong)
    }

    /// The command stream of all kept jails, then `['start', J]` for each
    /// jail without definition error.
    pub fn convert(&mut self, allow_no_files: bool) -> Result<Vec<PyValue>, Error> {
        let mut stream = Vec::new();
        for jail in &mut self.jails {
            stream.extend(jail.convert(allow_no_files)?);
        }
        for jail in &self.jails {
            if jail.config_error().is_none() {
                stream.push(PyValue::List(vec![
                    PyValue::str("start"),
                    PyValue::str(jail.name()),
                ]));
            }
        }
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::tests::Tree;

    fn jails(tree: &Tree) -> (JailsReader, bool) {
        let mut j = JailsReader::new(Some(&tree.0), ShareConfig::new(), false);
        assert!(j.read().unwrap());
        let ok = j.get_options(None, true).unwrap();
        (j, ok)
    }

    /// Warnings and errors, without the many "not defined" ones (checked
    /// once: they come first).
    fn jail_problems(logged: Option<Vec<String>>, first_jail: &str) -> Option<Vec<String>> {
        let all = crate::config::reader::tests::problems(logged)?;
        assert_eq!(
            all.first().map(String::as_str),
            Some(
                format!(
                    "WARN fail2ban.configreader: 'backend' not defined in '{first_jail}'. \
                     Using default one: 'auto'"
                )
                .as_str()
            )
        );
        Some(
            all.into_iter()
                .filter(|l| !l.contains(" not defined in "))
                .collect(),
        )
    }

    fn lines(stream: &[PyValue]) -> Vec<String> {
        stream.iter().map(PyValue::repr).collect()
    }

    #[test]
    fn json_like_python() {
        let mut m = IndexMap::new();
        m.insert("a".to_string(), "x\"y\\z\n".to_string());
        m.insert("é".to_string(), "😀/".to_string());
        assert_eq!(
            json_dumps(&m),
            r#"{"a": "x\"y\\z\n", "\u00e9": "\ud83d\ude00/"}"#
        );
        assert_eq!(json_dumps(&IndexMap::new()), "{}");
    }

    #[test]
    fn jail_stream() {
        let t = Tree::new(
            "jails",
            &[
                ("log/a.log", ""),
                (
                    "jail.conf",
                    "[INCLUDES]\nbefore = paths.conf\n[DEFAULT]\nusedns = warn\nmode = normal\n\
                     filter = %(__name__)s[mode=%(mode)s]\naction = a[port=%(port)s]\n  b.py[x=1, actname=bb]\n\
                     port = 22\nmaxretry = 5\n[one]\nenabled = true\nlogpath = %(log)s\n\
                     ignoreip = 1.2.3.4, ::1\n[two]\n[three]\nenabled = true\nfilter = bad[\n",
                ),
                (
                    "paths.conf",
                    "[DEFAULT]\nlog = log/a.log tail\n  log/none*.log\n",
                ),
                (
                    "filter.d/one.conf",
                    "[Definition]\nfailregex = <mode> <HOST>\nmaxlines = 2\n",
                ),
                (
                    "action.d/a.conf",
                    "[Definition]\nactionban = ban <ip> <port>\n",
                ),
            ],
        );
        // Make the log path absolute in the tree.
        let jail = std::fs::read_to_string(t.path("paths.conf")).unwrap();
        std::fs::write(
            t.path("paths.conf"),
            jail.replace("log/", &format!("{}/log/", t.0)),
        )
        .unwrap();
        let (mut j, ok) = jails(&t);
        assert!(ok);
        let names: Vec<&str> = j.jails().iter().map(|j| j.name()).collect();
        assert_eq!(names, vec!["one", "three"]);
        assert_eq!(
            j.jails()[1].config_error(),
            Some("Invalid filter definition 'bad[': unexpected option syntax")
        );
        let s = lines(&j.convert(false).unwrap());
        let base = &t.0;
        assert_eq!(
            s,
            vec![
                "['add', 'one', 'auto']".to_string(),
                "['set', 'one', 'usedns', 'warn']".to_string(),
                "['set', 'one', 'maxlines', 2]".to_string(),
                "['set', 'one', 'addfailregex', 'normal <HOST>']".to_string(),
                "['set', 'one', 'maxretry', 5]".to_string(),
                "['set', 'one', 'addignoreip', '1.2.3.4', '::1']".to_string(),
                format!("['set', 'one', 'addlogpath', '{base}/log/a.log', 'tail']"),
                "['set', 'one', 'addaction', 'a']".to_string(),
                "['multi-set', 'one', 'action', 'a', [['actionban', 'ban <ip> 22'], ['port', '22'], \
                 ['name', 'one'], ['actname', 'a']]]"
                    .to_string(),
                format!(
                    "['set', 'one', 'addaction', 'bb', '{base}/action.d/b.py', '{{\"x\": \"1\"}}']"
                ),
                "['config-error', \"Jail 'three' skipped, because of wrong configuration: \
                 Invalid filter definition 'bad[': unexpected option syntax\"]"
                    .to_string(),
                "['start', 'one']".to_string(),
            ]
        );
    }

    #[test]
    fn missing_log_files() {
        let t = Tree::new(
            "jailnolog",
            &[
                (
                    "jail.conf",
                    "[j]\nenabled = true\nlogpath = /nonexistent/x.log\n",
                ),
                (
                    "jail.local",
                    "[k]\nenabled = true\nbackend = systemd\nlogpath = /nonexistent/x.log\n",
                ),
            ],
        );
        let ((mut j, _), logged) = crate::config::tests::capture_logs(|| jails(&t));
        if let Some(logged) = jail_problems(logged, "j") {
            assert_eq!(
                logged,
                vec![
                    "WARN fail2ban.jailreader: No filter set for jail j",
                    "WARN fail2ban.jailreader: No actions were defined for j",
                    "WARN fail2ban.jailreader: No filter set for jail k",
                    "WARN fail2ban.jailreader: No actions were defined for k",
                ]
            );
        }
        assert_eq!(
            j.convert(false).unwrap_err().to_string(),
            "Have not found any log file for j jail"
        );
        let (s, logged) = crate::config::tests::capture_logs(|| lines(&j.convert(true).unwrap()));
        if let Some(logged) = logged {
            assert_eq!(
                logged,
                vec![
                    "INFO fail2ban.jailreader: No file(s) found for glob /nonexistent/x.log",
                    "WARN fail2ban.jailreader: Have not found any log file for j jail",
                ]
            );
        }
        assert_eq!(
            s,
            vec![
                "['add', 'j', 'auto']",
                "['add', 'k', 'systemd']",
                "['start', 'j']",
                "['start', 'k']"
            ]
        );
    }

    #[test]
    fn definition_errors_skip_jails_other_errors_abort() {
        let t = Tree::new(
            "jailerr",
            &[
                (
                    "jail.conf",
                    "[nofilter]\nenabled = true\nfilter = nope\n[badact]\nenabled = true\naction = x[a=1, b]\n\
                     [noact]\nenabled = true\naction = nope\n",
                ),
                (
                    "action.d/broken.conf",
                    "[Definition]\nactionban = %(nope)s\n",
                ),
            ],
        );
        let ((j, ok), logged) = crate::config::tests::capture_logs(|| jails(&t));
        assert!(!ok);
        if let Some(logged) = jail_problems(logged, "nofilter") {
            let base = &t.0;
            assert_eq!(
                logged,
                vec![
                    format!(
                        "ERROR fail2ban.configreader: Found no accessible config files for 'filter.d/nope' under {base}"
                    ),
                    "ERROR fail2ban.jailreader: Unable to read the filter 'nope'".to_string(),
                    "ERROR fail2ban.jailsreader: Errors in jail 'nofilter'. Skipping...".to_string(),
                    "WARN fail2ban.jailreader: No filter set for jail badact".to_string(),
                    "ERROR fail2ban.jailreader: Invalid action definition 'x[a=1,': unexpected option syntax"
                        .to_string(),
                    "ERROR fail2ban.jailsreader: Errors in jail 'badact'. Skipping...".to_string(),
                    "WARN fail2ban.jailreader: No filter set for jail noact".to_string(),
                    format!(
                        "ERROR fail2ban.configreader: Found no accessible config files for 'action.d/nope' under {base}"
                    ),
                    "ERROR fail2ban.jailreader: Unable to read action 'nope'".to_string(),
                    "ERROR fail2ban.jailsreader: Errors in jail 'noact'. Skipping...".to_string(),
                ]
            );
        }
        let errors: Vec<(&str, &str)> = j
            .jails()
            .iter()
            .map(|j| (j.name(), j.config_error().unwrap()))
            .collect();
        assert_eq!(
            errors,
            vec![
                ("nofilter", "Unable to read the filter 'nope'"),
                (
                    "badact",
                    "Invalid action definition 'x[a=1,': unexpected option syntax"
                ),
                ("noact", "Unable to read action 'nope'"),
            ]
        );
        let t = Tree::new(
            "jailfatal",
            &[
                ("jail.conf", "[j]\nenabled = true\naction = broken\n"),
                (
                    "action.d/broken.conf",
                    "[Definition]\nactionban = %(nope)s\n",
                ),
            ],
        );
        let mut j = JailsReader::new(Some(&t.0), ShareConfig::new(), false);
        j.read().unwrap();
        assert_eq!(
            j.get_options(None, true).unwrap_err().to_string(),
            "Error in action definition 'broken': Bad value substitution: option 'actionban' in \
             section 'Definition' contains an interpolation key 'nope' which is not a valid option \
             name. Raw value: '%(nope)s'"
        );
    }
}
