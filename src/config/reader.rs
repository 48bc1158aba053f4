//! Config names → merged, interpolated options (fail2ban's
//! `SafeConfigParserWithIncludes`, `ConfigReaderUnshared` and
//! `ConfigReader`).
//!
//! - A config *name* (`jail`, `filter.d/sshd`) under a base directory is
//!   the file set `NAME.conf`, `NAME.d/*.conf`, `NAME.local`,
//!   `NAME.d/*.local`; each file brings its `[INCLUDES] before/after` files
//!   and its sibling `.local`.  The files are parsed one by one
//!   ([`crate::config::ini`]) and merged: `[DEFAULT]` keys overwrite,
//!   conditional sections `[S?cond]` become keys `key?cond` of `S`, and
//!   overwritten keys keep their previous value in a hidden `KNOWN/S`.
//! - Values are interpolated on each read: `%%`, `%(name)s` from the caller's
//!   vars, the section and `[DEFAULT]`; `%(__name__)s`; `%(known/x)s`,
//!   `%(default/x)s`, `%(Section/x)s`.
//! - [`ConfigReader::get_options`] reads a table of typed options.
//! - A [`ShareConfig`] caches parsed files, include lists and merged configs
//!   by name, so that many readers over one tree parse each file once.
//!
//! Hand-written on top of [`crate::config::ini`]: the interpolation is
//! Python's `BasicInterpolation` with fail2ban's extensions, which no crate
//! provides.

use super::ini::{self, DEFAULT_SECTION, IniData, Section};
use super::options::{as_bool, py_int};
use super::{Error, MAX_INTERPOLATION_DEPTH, is_py_word, split_conditional};
use crate::pyvalue::{PyValue, str_repr};
use indexmap::IndexMap;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

/// Options passed as interpolation variables (a Python dict; values are
/// used as `str(value)`, `None` stays `None`).
pub type Vars = IndexMap<String, PyValue>;

/// Variables ready for lookups: lower-cased names, string values.
pub(crate) type LVars = IndexMap<String, Option<String>>;

/// The base directory used when none is given.
pub const DEFAULT_BASEDIR: &str = "/etc/fail2ban";

const LOG: &str = "fail2ban.configreader";
const LOG_INC: &str = "fail2ban.configparserinc";

pub(crate) fn lower_vars(vars: Option<&Vars>) -> LVars {
    let mut out = LVars::new();
    for (k, v) in vars.into_iter().flatten() {
        let v = match v {
            PyValue::None => None,
            other => Some(other.to_py_str()),
        };
        out.insert(k.to_lowercase(), v);
    }
    out
}

/// The type of an option in an option table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    Str,
    Int,
    Bool,
}

impl OptKind {
    /// The type's name in Python's tables and messages.
    pub fn name(self) -> &'static str {
        match self {
            OptKind::Str => "string",
            OptKind::Int => "int",
            OptKind::Bool => "bool",
        }
    }

    /// Converts a string as Python's converter does; `None` where Python
    /// raises `ValueError`.
    pub fn convert(self, value: &str) -> Option<PyValue> {
        match self {
            OptKind::Str => Some(PyValue::str(value)),
            OptKind::Int => py_int(value).map(PyValue::Int),
            OptKind::Bool => Some(PyValue::Bool(as_bool(value))),
        }
    }
}

/// The default of an option in an option table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptDefault {
    None,
    Str(&'static str),
    Bool(bool),
    Int(i64),
}

impl OptDefault {
    pub fn value(self) -> PyValue {
        match self {
            OptDefault::None => PyValue::None,
            OptDefault::Str(s) => PyValue::str(s),
            OptDefault::Bool(b) => PyValue::Bool(b),
            OptDefault::Int(i) => PyValue::Int(i),
        }
    }
}

/// One entry of an option table: `name: (type, default)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptKind,
    pub default: OptDefault,
}

impl OptionSpec {
    pub const fn new(name: &'static str, kind: OptKind, default: OptDefault) -> Self {
        OptionSpec {
            name,
            kind,
            default,
        }
    }
}

// ---------------------------------------------------------------------------
// Paths, with Python's `os.path` string semantics.

pub(crate) fn py_join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        b.to_string()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

fn py_dirname(p: &str) -> &str {
    let head = &p[..p.rfind('/').map_or(0, |i| i + 1)];
    if !head.is_empty() && !head.bytes().all(|b| b == b'/') {
        head.trim_end_matches('/')
    } else {
        head
    }
}

/// `os.path.splitext(p)[0]`.
fn py_splitext_root(p: &str) -> &str {
    let sep = p.rfind('/').map_or(0, |i| i + 1);
    match p.rfind('.') {
        Some(dot) if dot > sep && p[sep..dot].bytes().any(|b| b != b'.') => &p[..dot],
        _ => p,
    }
}

/// `os.path.abspath(p)`.
pub(crate) fn py_abspath(p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        let cwd = std::env::current_dir().unwrap_or_default();
        py_join(&cwd.to_string_lossy(), p)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `sorted(glob.glob(dir + '/*' + suffix))`.
fn glob_suffix(dir: &str, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && n.ends_with(suffix))
        .map(|n| py_join(dir, &n))
        .collect();
    out.sort();
    out
}

fn py_list(items: &[String]) -> String {
    PyValue::str_list(items.iter().cloned()).repr()
}

// ---------------------------------------------------------------------------
// Lookups and interpolation on parsed data.

/// The lookup context of one interpolated read.
struct Ctx<'a> {
    section: &'a str,
    sect: Option<&'a Section>,
    vars: Option<&'a LVars>,
}

impl IniData {
    /// The options of `section` (`None` for `DEFAULT` when no such section
    /// exists); `NoSectionError` otherwise.
    fn section_map(&self, section: &str) -> Result<Option<&Section>, Error> {
        match self.sections.get(section) {
            Some(s) => Ok(Some(s)),
            None if section == DEFAULT_SECTION => Ok(None),
            None => Err(Error::NoSection(section.to_string())),
        }
    }

    /// `ConfigParser.get`: the value of `option` in `section` (looked up in
    /// `vars`, the section, then `[DEFAULT]`), interpolated unless `raw`.
    /// `Ok(None)` when the value is a `None` of `vars`.
    pub(crate) fn get_value(
        &self,
        section: &str,
        option: &str,
        raw: bool,
        vars: Option<&LVars>,
    ) -> Result<Option<String>, Error> {
        let sect = self.section_map(section)?;
        let opt = option.to_lowercase();
        let value = match vars.and_then(|v| v.get(&opt)) {
            Some(None) => return Ok(None),
            Some(Some(v)) => v,
            None => sect
                .and_then(|s| s.get(&opt))
                .or_else(|| self.defaults.get(&opt))
                .ok_or_else(|| Error::NoOption {
                    option: opt.clone(),
                    section: section.to_string(),
                })?,
        };
        if raw {
            return Ok(Some(value.clone()));
        }
        let ctx = Ctx {
            section,
            sect,
            vars,
        };
        let mut out = String::new();
        let mut extra = IndexMap::new();
        self.interpolate_some(&ctx, &opt, &mut out, value, &mut extra, 1)?;
        Ok(Some(out))
    }

    /// [`IniData::get_value`] where a `None` result is an error.
    pub(crate) fn get(
        &self,
        section: &str,
        option: &str,
        raw: bool,
        vars: Option<&LVars>,
    ) -> Result<String, Error> {
        self.get_value(section, option, raw, vars)?
            .ok_or_else(|| Error::NoOption {
                option: option.to_lowercase(),
                section: section.to_string(),
            })
    }

    /// fail2ban's `get_ex`: like `get`, but an option named `SEC/opt` is
    /// first looked up (without vars) as `opt` of `KNOWN/<section>` then
    /// `<section>` (SEC `known`), of `[DEFAULT]` (SEC `default`) or of SEC.
    pub(crate) fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: Option<&LVars>,
    ) -> Result<String, Error> {
        if let Some((sec, opt)) = split_section_option(option) {
            let lower = sec.to_lowercase();
            let candidates: Vec<String> = match lower.as_str() {
                "known" => vec![format!("KNOWN/{section}"), section.to_string()],
                "default" => vec![DEFAULT_SECTION.to_string()],
                _ => vec![sec.to_string()],
            };
            for sec in candidates {
                match self.get(&sec, opt, false, None) {
                    Ok(v) => return Ok(v),
                    Err(Error::NoSection(_) | Error::NoOption { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.get(section, option, false, vars)
    }

    fn in_map(&self, ctx: &Ctx, extra: &IndexMap<String, String>, key: &str) -> bool {
        key == "__name__"
            || ctx.vars.is_some_and(|v| v.contains_key(key))
            || extra.contains_key(key)
            || ctx.sect.is_some_and(|s| s.contains_key(key))
            || self.defaults.contains_key(key)
    }

    /// Makes the raw values of `%(SEC/opt)s` references in `rest` available
    /// as variables (fail2ban's `_map_section_options`).
    fn map_section_options(&self, ctx: &Ctx, rest: &str, extra: &mut IndexMap<String, String>) {
        if !rest.contains('/') || !rest.contains("%(") {
            return;
        }
        for (sopt, opt) in section_references(rest) {
            if self.in_map(ctx, extra, sopt) {
                continue;
            }
            let sec = &sopt[..sopt.len() - opt.len() - 1];
            let value = match sec.to_lowercase().as_str() {
                "default" => self.defaults.get(opt),
                "known" => self
                    .sections
                    .get(&format!("KNOWN/{}", ctx.section))
                    .and_then(|s| s.get(opt))
                    .or_else(|| self.defaults.get(opt)),
                _ => match self.sections.get(sec) {
                    None => continue,
                    Some(s) => s.get(opt).or_else(|| self.defaults.get(opt)),
                },
            };
            if let Some(v) = value {
                extra.insert(sopt.to_string(), v.clone());
            }
        }
    }

    /// `BasicInterpolation._interpolate_some` with fail2ban's additions.
    fn interpolate_some(
        &self,
        ctx: &Ctx,
        option: &str,
        accum: &mut String,
        rest: &str,
        extra: &mut IndexMap<String, String>,
        depth: usize,
    ) -> Result<(), Error> {
        self.map_section_options(ctx, rest, extra);
        let rawval = ctx
            .sect
            .and_then(|s| s.get(option))
            .or_else(|| self.defaults.get(option))
            .map_or(rest, String::as_str);
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(Error::InterpolationDepth {
                option: option.to_string(),
                section: ctx.section.to_string(),
                rawval: rawval.to_string(),
            });
        }
        let syntax = |msg: String| Error::InterpolationSyntax {
            option: option.to_string(),
            section: ctx.section.to_string(),
            msg,
        };
        let mut rest = rest;
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                accum.push_str(rest);
                return Ok(());
            };
            accum.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest[1..].chars().next() {
                Some('%') => {
                    accum.push('%');
                    rest = &rest[2..];
                }
                Some('(') => {
                    let close = rest[2..]
                        .find(')')
                        .map(|q| q + 2)
                        .filter(|&q| q > 2 && rest[q + 1..].starts_with('s'));
                    let Some(q) = close else {
                        return Err(syntax(format!(
                            "bad interpolation variable reference {}",
                            str_repr(rest)
                        )));
                    };
                    let var = rest[2..q].to_lowercase();
                    rest = &rest[q + 2..];
                    let value = self.lookup(ctx, extra, &var).ok_or_else(|| {
                        Error::InterpolationMissingOption {
                            option: option.to_string(),
                            section: ctx.section.to_string(),
                            rawval: rawval.to_string(),
                            reference: var.clone(),
                        }
                    })??;
                    if value.contains('%') {
                        self.interpolate_some(ctx, option, accum, &value, extra, depth + 1)?;
                    } else {
                        accum.push_str(&value);
                    }
                }
                _ => {
                    return Err(syntax(format!(
                        "'%' must be followed by '%' or '(', found: {}",
                        str_repr(rest)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The interpolation map: `__name__`, vars, mapped `SEC/opt`, section,
    /// `[DEFAULT]`.  `Some(Err)` for a `None` variable (Python's TypeError).
    fn lookup(
        &self,
        ctx: &Ctx,
        extra: &IndexMap<String, String>,
        var: &str,
    ) -> Option<Result<String, Error>> {
        if var == "__name__" {
            return Some(Ok(ctx.section.to_string()));
        }
        if let Some(v) = ctx.vars.and_then(|v| v.get(var)) {
            return Some(v.clone().ok_or_else(|| {
                Error::Type("argument of type 'NoneType' is not iterable".to_string())
            }));
        }
        extra
            .get(var)
            .or_else(|| ctx.sect.and_then(|s| s.get(var)))
            .or_else(|| self.defaults.get(var))
            .map(|v| Ok(v.clone()))
    }

    /// Option names of a section: own ones, plus `[DEFAULT]`'s when asked.
    pub(crate) fn options(&self, section: &str, with_default: bool) -> Result<Vec<String>, Error> {
        let sect = self
            .sections
            .get(section)
            .ok_or_else(|| Error::NoSection(section.to_string()))?;
        let mut out: Vec<String> = sect.keys().cloned().collect();
        if with_default {
            out.extend(
                self.defaults
                    .keys()
                    .filter(|k| !sect.contains_key(*k))
                    .cloned(),
            );
        }
        Ok(out)
    }

    /// `RawConfigParser.has_option`.
    pub(crate) fn has_option(&self, section: &str, option: &str) -> bool {
        let opt = option.to_lowercase();
        if section.is_empty() || section == DEFAULT_SECTION {
            return self.defaults.contains_key(&opt);
        }
        self.sections
            .get(section)
            .is_some_and(|s| s.contains_key(&opt) || self.defaults.contains_key(&opt))
    }

    /// Merges one more file over this data (later files win).
    fn merge(&mut self, file: &IniData) {
        for (k, v) in &file.defaults {
            self.defaults.insert(k.clone(), v.clone());
        }
        for (name, sect) in &file.sections {
            let (name, sect): (&str, Section) = match split_conditional(name) {
                Some((base, cond)) => (
                    base,
                    sect.iter()
                        .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                        .collect(),
                ),
                None => (name, sect.clone()),
            };
            match self.sections.get_mut(name) {
                Some(existing) => {
                    let previous: Section = existing
                        .iter()
                        .filter(|(k, _)| sect.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    existing.extend(sect);
                    self.merge_section(&format!("KNOWN/{name}"), previous, "");
                }
                None => {
                    self.sections.insert(name.to_string(), sect);
                }
            }
        }
    }

    /// fail2ban's `merge_section`: adds options to a section (created when
    /// missing), their names prefixed with `pref`; options whose names
    /// already start with `pref` (and `__name__`) are left out.
    pub(crate) fn merge_section(&mut self, section: &str, options: Section, pref: &str) {
        let sect = self.sections.entry(section.to_string()).or_default();
        for (k, v) in options {
            if pref.is_empty() {
                sect.insert(k, v);
            } else if !k.starts_with(pref) && k != "__name__" {
                sect.insert(format!("{pref}{k}"), v);
            }
        }
    }
}

/// `^([\w\-]+)/([^\s>]+)$` on an option name: section and option.
fn split_section_option(option: &str) -> Option<(&str, &str)> {
    let body = option.strip_suffix('\n').unwrap_or(option);
    let slash = body.find('/')?;
    let (sec, opt) = (&body[..slash], &body[slash + 1..]);
    let sec_ok = !sec.is_empty() && sec.chars().all(|c| is_py_word(c) || c == '-');
    let opt_ok = !opt.is_empty() && !opt.chars().any(|c| super::is_py_space(c) || c == '>');
    (sec_ok && opt_ok).then_some((sec, opt))
}

/// All `%(SEC/opt)s` references of a value: `(SEC/opt, opt)` pairs
/// (`%\(([\w\-]+/([^\)]+))\)s`).
fn section_references(rest: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = rest[from..].find("%(").map(|p| p + from) {
        let start = p + 2;
        let sec_end = rest[start..]
            .find(|c: char| !(is_py_word(c) || c == '-'))
            .map_or(rest.len(), |i| i + start);
        if sec_end > start && rest[sec_end..].starts_with('/') {
            let opt_start = sec_end + 1;
            if let Some(close) = rest[opt_start..].find(')').map(|i| i + opt_start)
                && close > opt_start
                && rest[close + 1..].starts_with('s')
            {
                out.push((&rest[start..close], &rest[opt_start..close]));
                from = close + 2;
                continue;
            }
        }
        from = p + 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Sharing.

/// One parsed file: its data and whether it could be opened.
type ParsedFile = Rc<(IniData, bool)>;

/// Caches shared by the readers of one configuration tree (Python's
/// `share_config` dict): merged configs by name, parsed files by path and
/// include lists by file list.
#[derive(Debug, Default)]
pub struct ShareConfig {
    configs: RefCell<HashMap<String, Rc<RefCell<ConfigData>>>>,
    files: RefCell<HashMap<String, ParsedFile>>,
    includes: RefCell<HashMap<String, Vec<String>>>,
}

impl ShareConfig {
    /// An empty cache.
    pub fn new() -> Rc<ShareConfig> {
        Rc::new(ShareConfig::default())
    }

    /// Forgets everything (Python's `Configurator.Reload`).
    pub fn clear(&self) {
        self.configs.borrow_mut().clear();
        self.files.borrow_mut().clear();
        self.includes.borrow_mut().clear();
    }

    /// One file, parsed once (`_getSharedSCPWI`).
    fn parsed(&self, filename: &str) -> Result<ParsedFile, Error> {
        if let Some(found) = self.files.borrow().get(filename) {
            log::trace!(target: LOG_INC, "    Shared file: {filename}");
            return Ok(found.clone());
        }
        log::trace!(target: LOG_INC, "    Reading file: {filename}");
        let parsed = Rc::new(match ini::read_file(filename)? {
            Some(data) => (data, true),
            None => (IniData::default(), false),
        });
        self.files
            .borrow_mut()
            .insert(filename.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// The files to read for `filenames`, includes expanded (`_getIncludes`;
    /// cached by file list, as Python does, whatever the include chain).
    fn includes(&self, filenames: &[String], seen: &[String]) -> Result<Vec<String>, Error> {
        let mut expanded = Vec::new();
        for f in filenames {
            expanded.push(f.clone());
            let local = format!("{}.local", py_splitext_root(f));
            if !filenames.contains(&local) && Path::new(&local).is_file() {
                expanded.push(local);
            }
        }
        let key = expanded.join("\x01");
        if let Some(found) = self.includes.borrow().get(&key) {
            return Ok(found.clone());
        }
        let mut full = Vec::new();
        for f in &expanded {
            full.extend(self.includes_of(f, seen)?);
        }
        self.includes.borrow_mut().insert(key, full.clone());
        Ok(full)
    }

    /// One file with its `before` and `after` includes, recursively.
    fn includes_of(&self, resource: &str, seen: &[String]) -> Result<Vec<String>, Error> {
        let parsed = match self.parsed(resource) {
            Ok(p) => p,
            Err(Error::Decode(msg)) => {
                log::error!(target: LOG_INC, "Error decoding config file '{resource}': {msg}");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let (data, ok) = &*parsed;
        if !ok {
            return Ok(Vec::new());
        }
        let dir = py_dirname(resource);
        let mut lists: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        if data.sections.contains_key("INCLUDES") {
            let names = data.options("INCLUDES", true)?;
            for (i, which) in ["before", "after"].into_iter().enumerate() {
                if !names.iter().any(|n| n == which) {
                    continue;
                }
                let value = data.get("INCLUDES", which, false, None)?;
                for line in value.split('\n') {
                    let r = py_join(dir, line);
                    if seen.contains(&r) {
                        continue;
                    }
                    let mut chain = seen.to_vec();
                    chain.push(resource.to_string());
                    lists[i].extend(self.includes(&[r], &chain)?);
                }
            }
        }
        let [before, after] = lists;
        let mut out = before;
        out.push(resource.to_string());
        out.extend(after);
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Merged configs.

/// The merged options of one config name (Python's `ConfigReaderUnshared`).
#[derive(Debug)]
pub struct ConfigData {
    pub(crate) data: IniData,
    basedir: String,
    /// The result of the first `read`, which later reads return.
    read_result: Option<bool>,
}

impl ConfigData {
    fn new(basedir: Option<&str>) -> Self {
        let mut cfg = ConfigData {
            data: IniData::default(),
            basedir: String::new(),
            read_result: None,
        };
        cfg.set_base_dir(basedir);
        cfg
    }

    fn set_base_dir(&mut self, basedir: Option<&str>) {
        self.basedir = basedir
            .unwrap_or(DEFAULT_BASEDIR)
            .trim_end_matches('/')
            .to_string();
    }

    /// Reads the file set of `name` under the base directory.
    fn read(&mut self, name: &str, share: &ShareConfig) -> Result<bool, Error> {
        if !Path::new(&self.basedir).exists() {
            return Err(Error::Value(format!(
                "Base configuration directory {} does not exist ",
                self.basedir
            )));
        }
        let name = if name.starts_with("./") {
            py_abspath(name)
        } else {
            name.to_string()
        };
        let base = py_join(&self.basedir, &name);
        log::debug!(target: LOG, "Reading configs for {name} under {} ", self.basedir);
        let dir = format!("{base}.d");
        let mut files = vec![format!("{base}.conf")];
        files.extend(glob_suffix(&dir, ".conf"));
        files.push(format!("{base}.local"));
        files.extend(glob_suffix(&dir, ".local"));
        files.retain(|f| Path::new(f).exists());
        if files.is_empty() {
            log::error!(target: LOG,
                "Found no accessible config files for {} under {}",
                str_repr(&name), self.basedir
            );
            return Ok(false);
        }
        log::debug!(target: LOG, "Reading config files: {}", files.join(", "));
        let read = self.read_files(&files, share)?;
        let missed: Vec<&str> = files
            .iter()
            .filter(|f| !read.contains(f))
            .map(String::as_str)
            .collect();
        if !missed.is_empty() {
            log::error!(target: LOG, "Could not read config files: {}", missed.join(", "));
        }
        if !read.is_empty() {
            return Ok(true);
        }
        log::error!(target: LOG,
            "Found no accessible config files for {} under {}",
            str_repr(&name), self.basedir
        );
        Ok(false)
    }

    /// Reads files with their includes and merges them in order; returns
    /// the files read.
    fn read_files(&mut self, files: &[String], share: &ShareConfig) -> Result<Vec<String>, Error> {
        let full = share.includes(files, &[])?;
        if full.is_empty() {
            return Ok(Vec::new());
        }
        log::info!(target: LOG_INC, "  Loading files: {}", py_list(&full));
        let mut read = Vec::new();
        for f in &full {
            let parsed = share.parsed(f)?;
            if parsed.1 {
                read.push(f.clone());
                self.data.merge(&parsed.0);
            }
        }
        Ok(read)
    }
}

/// A reader of one config name, possibly sharing its data with other
/// readers of the same [`ShareConfig`] (Python's `ConfigReader`).
///
/// Cloning gives a second handle on the same data (Python's `use_config`).
#[derive(Debug, Clone)]
pub struct ConfigReader {
    share: Rc<ShareConfig>,
    basedir: Option<String>,
    cfg: Option<Rc<RefCell<ConfigData>>>,
}

impl ConfigReader {
    /// A reader under `basedir` (default `/etc/fail2ban`), sharing through
    /// `share` (a private cache when `None`).
    pub fn new(basedir: Option<&str>, share: Option<Rc<ShareConfig>>) -> Self {
        ConfigReader {
            share: share.unwrap_or_default(),
            basedir: basedir.map(str::to_string),
            cfg: None,
        }
    }

    /// The cache this reader shares.
    pub fn share(&self) -> &Rc<ShareConfig> {
        &self.share
    }

    /// Sets the base directory (`None`: the default one).
    pub fn set_base_dir(&mut self, basedir: Option<&str>) {
        match &self.cfg {
            Some(cfg) => cfg.borrow_mut().set_base_dir(basedir),
            None => self.basedir = basedir.map(str::to_string),
        }
    }

    /// The base directory, without trailing slashes.
    pub fn base_dir(&self) -> String {
        match &self.cfg {
            Some(cfg) => cfg.borrow().basedir.clone(),
            None => ConfigData::new(self.basedir.as_deref()).basedir,
        }
    }

    /// Attaches the merged data shared under `name` (creating it).
    fn attach(&mut self, name: &str) -> Rc<RefCell<ConfigData>> {
        if let Some(cfg) = &self.cfg {
            return cfg.clone();
        }
        let cfg = self
            .share
            .configs
            .borrow_mut()
            .entry(name.to_string())
            .or_insert_with(|| Rc::new(RefCell::new(ConfigData::new(self.basedir.as_deref()))))
            .clone();
        self.cfg = Some(cfg.clone());
        cfg
    }

    /// Reads config `name` (`NAME.conf`, `NAME.d/*.conf`, `NAME.local`,
    /// `NAME.d/*.local` and their includes), once per shared name: later
    /// calls return the first result.  `Ok(false)` (with an error logged)
    /// when no file could be read; errors for an unparsable file or a
    /// missing base directory.
    pub fn read(&mut self, name: &str) -> Result<bool, Error> {
        let cfg = self.attach(name);
        if let Some(done) = cfg.borrow().read_result {
            return Ok(done);
        }
        log::info!(target: LOG,
            "Loading configs for {name} under {} ",
            cfg.borrow().basedir
        );
        let share = self.share.clone();
        let result = cfg.borrow_mut().read(name, &share)?;
        cfg.borrow_mut().read_result = Some(result);
        Ok(result)
    }

    /// Reads one explicit file (with its includes and sibling `.local`, no
    /// `.d` directory, no base directory), merging it into the data shared
    /// under its path.  `Ok(false)` when nothing could be read.
    pub fn read_explicit(&mut self, path: &str) -> Result<bool, Error> {
        let cfg = self.attach(path);
        let share = self.share.clone();
        let read = cfg.borrow_mut().read_files(&[path.to_string()], &share)?;
        Ok(!read.is_empty())
    }

    fn with_data<T>(&self, default: T, f: impl FnOnce(&IniData) -> T) -> T {
        match &self.cfg {
            Some(cfg) => f(&cfg.borrow().data),
            None => default,
        }
    }

    fn no_section<T>(&self, section: &str) -> Result<T, Error> {
        Err(Error::NoSection(section.to_string()))
    }

    /// Section names, without the hidden `KNOWN/...` ones.
    pub fn sections(&self) -> Vec<String> {
        self.with_data(Vec::new(), |d| {
            d.sections
                .keys()
                .filter(|n| !n.starts_with("KNOWN/"))
                .cloned()
                .collect()
        })
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.with_data(false, |d| d.sections.contains_key(section))
    }

    /// Whether `section` has `option`: with defaults, as `ConfigParser`
    /// (names case-folded, `[DEFAULT]` counts); without, own keys only,
    /// names compared exactly.
    pub fn has_option(&self, section: &str, option: &str, with_default: bool) -> bool {
        self.with_data(false, |d| {
            if with_default {
                d.has_option(section, option)
            } else {
                d.sections
                    .get(section)
                    .is_some_and(|s| s.contains_key(option))
            }
        })
    }

    /// Option names of a section (own ones, plus `[DEFAULT]`'s when asked).
    pub fn options(&self, section: &str, with_default: bool) -> Result<Vec<String>, Error> {
        match &self.cfg {
            Some(cfg) => cfg.borrow().data.options(section, with_default),
            None => self.no_section(section),
        }
    }

    /// The interpolated value of an option (vars first, then the section,
    /// then `[DEFAULT]`).
    pub fn get(&self, section: &str, option: &str, vars: Option<&Vars>) -> Result<String, Error> {
        let lvars = lower_vars(vars);
        match &self.cfg {
            Some(cfg) => cfg.borrow().data.get(section, option, false, Some(&lvars)),
            None => self.no_section(section),
        }
    }

    /// The raw (uninterpolated) value of an option.
    pub fn get_raw(&self, section: &str, option: &str) -> Result<String, Error> {
        match &self.cfg {
            Some(cfg) => cfg.borrow().data.get(section, option, true, None),
            None => self.no_section(section),
        }
    }

    /// fail2ban's `get_ex` (see [`IniData`]): `SEC/opt` names are looked up
    /// in the named section first.
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: Option<&Vars>,
    ) -> Result<String, Error> {
        let lvars = lower_vars(vars);
        match &self.cfg {
            Some(cfg) => cfg.borrow().data.get_ex(section, option, Some(&lvars)),
            None => self.no_section(section),
        }
    }

    /// Adds options to `[DEFAULT]` (overwriting).
    pub fn merge_defaults(&mut self, options: &[(&str, &str)]) {
        if let Some(cfg) = &self.cfg {
            let mut cfg = cfg.borrow_mut();
            for (k, v) in options {
                cfg.data.defaults.insert(k.to_string(), v.to_string());
            }
        }
    }

    /// Adds options to a section (created when missing), names prefixed with
    /// `pref`; options already starting with `pref` are left out.
    pub fn merge_section(
        &mut self,
        section: &str,
        options: Section,
        pref: &str,
    ) -> Result<(), Error> {
        match &self.cfg {
            Some(cfg) => {
                cfg.borrow_mut().data.merge_section(section, options, pref);
                Ok(())
            }
            None => self.no_section(section),
        }
    }

    /// Reads a table of options of `section` (Python's `getOptions`).
    ///
    /// Options named in `p_options` are skipped; the others are read with
    /// `p_options` as vars and, when `convert`, converted to their type.  A
    /// missing option takes its default (with a warning) unless that is
    /// `None`; a bad value takes its default (warning `Wrong value ...`); a
    /// missing section logs an error and takes the defaults, or is an error
    /// when `should_exist`.
    pub fn get_options(
        &self,
        section: &str,
        table: &[OptionSpec],
        p_options: Option<&Vars>,
        should_exist: bool,
        convert: bool,
    ) -> Result<IndexMap<String, PyValue>, Error> {
        let Some(cfg) = &self.cfg else {
            return self.no_section(section);
        };
        let cfg = cfg.borrow();
        let lvars = lower_vars(p_options);
        let mut values = IndexMap::new();
        for spec in table {
            if p_options.is_some_and(|p| p.contains_key(spec.name)) {
                continue;
            }
            match cfg.data.get_value(section, spec.name, false, Some(&lvars)) {
                Ok(None) => {
                    values.insert(spec.name.to_string(), PyValue::None);
                }
                Ok(Some(v)) => {
                    let typed = if convert {
                        spec.kind.convert(&v)
                    } else {
                        Some(PyValue::Str(v))
                    };
                    let typed = typed.unwrap_or_else(|| {
                        let default = spec.default.value();
                        log::warn!(target: LOG,
                            "Wrong value for '{}' in '{}'. Using default one: '{}'",
                            spec.name, section, default.repr()
                        );
                        default
                    });
                    values.insert(spec.name.to_string(), typed);
                }
                Err(e @ Error::NoSection(_)) => {
                    if should_exist {
                        return Err(e);
                    }
                    log::error!(target: LOG, "{e}");
                    values.insert(spec.name.to_string(), spec.default.value());
                }
                Err(Error::NoOption { .. }) => {
                    let default = spec.default.value();
                    if default != PyValue::None {
                        log::warn!(target: LOG,
                            "'{}' not defined in '{}'. Using default one: {}",
                            spec.name, section, default.repr()
                        );
                        values.insert(spec.name.to_string(), default);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(values)
    }

    /// The parsed data, for readers built on this one.
    pub(crate) fn data(&self) -> Option<std::cell::Ref<'_, IniData>> {
        self.cfg
            .as_ref()
            .map(|cfg| std::cell::Ref::map(cfg.borrow(), |c| &c.data))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A temporary config tree, removed on drop.
    pub(crate) struct Tree(pub String);

    impl Tree {
        pub(crate) fn new(tag: &str, files: &[(&str, &str)]) -> Tree {
            let dir = std::env::temp_dir().join(format!(
                "f2b-cfg-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            for (name, text) in files {
                let path = dir.join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            Tree(dir.to_string_lossy().into_owned())
        }

        pub(crate) fn path(&self, name: &str) -> String {
            format!("{}/{name}", self.0)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn reader(tree: &Tree, name: &str) -> ConfigReader {
        let mut r = ConfigReader::new(Some(&tree.0), None);
        assert!(r.read(name).unwrap());
        r
    }

    fn get(r: &ConfigReader, sec: &str, opt: &str) -> String {
        r.get(sec, opt, None).unwrap()
    }

    #[test]
    fn path_helpers_follow_os_path() {
        assert_eq!(py_join("a", "b"), "a/b");
        assert_eq!(py_join("a/", "b"), "a/b");
        assert_eq!(py_join("a", "/b"), "/b");
        assert_eq!(py_join("", "b"), "b");
        assert_eq!(py_dirname("/x/y.conf"), "/x");
        assert_eq!(py_dirname("y.conf"), "");
        assert_eq!(py_dirname("/y"), "/");
        assert_eq!(py_dirname("a//b"), "a");
        assert_eq!(py_splitext_root("/a/b.conf"), "/a/b");
        assert_eq!(py_splitext_root("/a.d/b"), "/a.d/b");
        assert_eq!(py_splitext_root("/a/.conf"), "/a/.conf");
        assert_eq!(py_splitext_root("/a/..x.conf"), "/a/..x");
        assert_eq!(py_abspath("/a/./b/../c"), "/a/c");
    }

    #[test]
    fn file_set_order_and_merge_history() {
        let t = Tree::new(
            "set",
            &[
                ("x.conf", "[S]\na = conf\nb = conf\n[DEFAULT]\nd = conf\n"),
                ("x.d/02.conf", "[S]\na = d02\n"),
                ("x.d/01.conf", "[S]\na = d01\nc = d01\n"),
                ("x.d/.hidden.conf", "[S]\na = hidden\n"),
                ("x.local", "[S]\na = local\n[DEFAULT]\nd = local\n"),
                ("x.d/01.local", "[S]\nb = dlocal\n"),
            ],
        );
        let r = reader(&t, "x");
        assert_eq!(get(&r, "S", "a"), "local");
        assert_eq!(get(&r, "S", "b"), "dlocal");
        assert_eq!(get(&r, "S", "c"), "d01");
        assert_eq!(get(&r, "S", "d"), "local");
        assert_eq!(r.get_raw("KNOWN/S", "a").unwrap(), "d02");
        assert_eq!(r.get_raw("KNOWN/S", "b").unwrap(), "conf");
        assert_eq!(r.sections(), vec!["S"]);
        assert!(r.has_section("KNOWN/S"));
    }

    #[test]
    fn conditional_sections_merge_as_keys() {
        let t = Tree::new(
            "cond",
            &[(
                "a.conf",
                "[Init]\ncmd = iptables\n[Init?family=inet6]\ncmd = ip6tables\n",
            )],
        );
        let r = reader(&t, "a");
        assert_eq!(
            r.options("Init", false).unwrap(),
            vec!["cmd", "cmd?family=inet6"]
        );
        assert_eq!(get(&r, "Init", "cmd?family=inet6"), "ip6tables");
        assert_eq!(r.sections(), vec!["Init"]);
    }

    #[test]
    fn includes_before_after_relative_missing_and_local() {
        let t = Tree::new(
            "inc",
            &[
                (
                    "f/main.conf",
                    "[INCLUDES]\nbefore = common.conf\n  missing.conf\nafter = sub/after.conf\n[S]\nv = main\nw = main\n",
                ),
                ("f/common.conf", "[S]\nv = common\nc = common\n"),
                ("f/common.local", "[S]\nc = common.local\n"),
                (
                    "f/sub/after.conf",
                    "[INCLUDES]\nbefore = ../common.conf\n[S]\nw = after\n",
                ),
            ],
        );
        let mut r = ConfigReader::new(Some(&t.0), None);
        assert!(r.read("f/main").unwrap());
        // `after.conf` includes `common.conf` again, after `main.conf`.
        assert_eq!(get(&r, "S", "v"), "common");
        assert_eq!(get(&r, "S", "w"), "after");
        assert_eq!(get(&r, "S", "c"), "common.local");
        assert_eq!(r.get_raw("KNOWN/S", "w").unwrap(), "main");
        let full = r.share().includes(&[t.path("f/main.conf")], &[]).unwrap();
        let rel: Vec<String> = full
            .iter()
            .map(|f| f[t.0.len() + 1..].to_string())
            .collect();
        assert_eq!(
            rel,
            vec![
                "f/common.conf",
                "f/common.local",
                "f/main.conf",
                "f/sub/../common.conf",
                "f/sub/../common.local",
                "f/sub/after.conf"
            ]
        );
    }

    #[test]
    fn include_loops_stop_at_ancestors() {
        let t = Tree::new(
            "loop",
            &[
                ("a.conf", "[INCLUDES]\nbefore = b.conf\n[S]\nx = a\n"),
                ("b.conf", "[INCLUDES]\nbefore = a.conf\n[S]\nx = b\n"),
            ],
        );
        let r = reader(&t, "a");
        let full = r.share().includes(&[t.path("a.conf")], &[]).unwrap();
        assert_eq!(full, vec![t.path("b.conf"), t.path("a.conf")]);
        assert_eq!(get(&r, "S", "x"), "a");
    }

    #[test]
    fn missing_files_and_base_dir() {
        let t = Tree::new("miss", &[("a.conf", "[S]\nx = 1\n")]);
        let mut r = ConfigReader::new(Some(&t.0), None);
        assert!(!r.read("nothing").unwrap());
        let mut r = ConfigReader::new(Some("/nonexistent-f2b"), None);
        assert_eq!(
            r.read("a").unwrap_err().to_string(),
            "Base configuration directory /nonexistent-f2b does not exist "
        );
        let t = Tree::new("bad", &[("a.conf", "x = 1\n")]);
        let mut r = ConfigReader::new(Some(&t.0), None);
        assert_eq!(
            r.read("a").unwrap_err().py_type(),
            "MissingSectionHeaderError"
        );
    }

    #[test]
    fn interpolation_forms() {
        let t = Tree::new(
            "interp",
            &[
                (
                    "a.conf",
                    "[DEFAULT]\nd = def\nself = %(__name__)s\npre = P\n\
                     [S]\nv = %(d)s-%(W)s-%%-%(__name__)s-%(self)s\nw = w\nx = %(known/pre)s\n\
                     y = %(default/pre)s %(t/t)s %(t/d)s\npre = S\nupper = %(T/t)s\n[t]\nt = tt\n[T]\nt = TT\n\
                     [U]\nbad = %(nope)s\nsyn = 5%\nsyn2 = %(x\nz = %(T/none)s\n\
                     loop = %(loop)s\n",
                ),
                ("a.local", "[S]\npre = %(known/pre)s+L\n"),
            ],
        );
        let r = reader(&t, "a");
        assert_eq!(get(&r, "S", "v"), "def-w-%-S-S");
        assert_eq!(get(&r, "S", "pre"), "S+L");
        assert_eq!(get(&r, "S", "x"), "S");
        assert_eq!(get(&r, "S", "y"), "P tt def");
        assert_eq!(get(&r, "T", "self"), "T");
        // References are case-folded, mapped section names are not.
        assert_eq!(
            r.get("S", "upper", None).unwrap_err().to_string(),
            "Bad value substitution: option 'upper' in section 'S' contains an interpolation key \
             't/t' which is not a valid option name. Raw value: '%(T/t)s'"
        );
        let mut vars = Vars::new();
        vars.insert("W".into(), PyValue::Int(5));
        assert_eq!(r.get("S", "v", Some(&vars)).unwrap(), "def-5-%-S-S");
        let e = r.get("U", "bad", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bad value substitution: option 'bad' in section 'U' contains an interpolation key \
             'nope' which is not a valid option name. Raw value: '%(nope)s'"
        );
        assert_eq!(
            r.get("U", "syn", None).unwrap_err().to_string(),
            "'%' must be followed by '%' or '(', found: '%'"
        );
        assert_eq!(
            r.get("U", "syn2", None).unwrap_err().to_string(),
            "bad interpolation variable reference '%(x'"
        );
        assert_eq!(
            r.get("U", "z", None).unwrap_err().py_type(),
            "InterpolationMissingOptionError"
        );
        assert_eq!(
            r.get("U", "loop", None).unwrap_err().to_string(),
            "Recursion limit exceeded in value substitution: option 'loop' in section 'U' \
             contains an interpolation key which cannot be substituted in 10 steps. \
             Raw value: '%(loop)s'"
        );
        assert_eq!(
            r.get("Nope", "x", None).unwrap_err().to_string(),
            "No section: 'Nope'"
        );
        assert_eq!(
            r.get("S", "nope", None).unwrap_err().to_string(),
            "No option 'nope' in section: 'S'"
        );
    }

    #[test]
    fn known_history_is_one_level_deep() {
        let t = Tree::new(
            "known",
            &[
                ("k.conf", "[S]\nv = one\n"),
                ("k.d/a.conf", "[S]\nv = %(known/v)s two\n"),
                ("k.local", "[S]\nv = %(known/v)s three\n"),
            ],
        );
        let r = reader(&t, "k");
        assert_eq!(
            r.get("S", "v", None).unwrap_err().py_type(),
            "InterpolationDepthError"
        );
        let t = Tree::new(
            "known2",
            &[
                ("k.conf", "[S]\nv = one\n"),
                ("k.local", "[S]\nv = %(known/v)s two\n"),
            ],
        );
        assert_eq!(get(&reader(&t, "k"), "S", "v"), "one two");
    }

    #[test]
    fn get_ex_section_lookups() {
        let t = Tree::new(
            "getex",
            &[
                (
                    "g.conf",
                    "[DEFAULT]\ndd = D\n[Definition]\na = 1\nb = x%(a)s\n[Other]\no = O%(dd)s\n",
                ),
                ("g.local", "[Definition]\na = 2\n"),
            ],
        );
        let r = reader(&t, "g");
        assert_eq!(r.get_ex("Definition", "known/a", None).unwrap(), "1");
        assert_eq!(r.get_ex("Definition", "known/b", None).unwrap(), "x2");
        assert_eq!(r.get_ex("Definition", "default/dd", None).unwrap(), "D");
        assert_eq!(r.get_ex("Definition", "Other/o", None).unwrap(), "OD");
        assert!(matches!(
            r.get_ex("Definition", "Missing/o", None),
            Err(Error::NoOption { .. })
        ));
        let mut vars = Vars::new();
        vars.insert("missing/o".into(), PyValue::str("V"));
        assert_eq!(
            r.get_ex("Definition", "Missing/o", Some(&vars)).unwrap(),
            "V"
        );
    }

    #[test]
    fn typed_options() {
        let t = Tree::new(
            "typed",
            &[(
                "t.conf",
                "[DEFAULT]\nb = yes\n[S]\ni = 12\nbad = x\ns = %(i)s\n",
            )],
        );
        let r = reader(&t, "t");
        let table = [
            OptionSpec::new("i", OptKind::Int, OptDefault::None),
            OptionSpec::new("bad", OptKind::Int, OptDefault::Int(3)),
            OptionSpec::new("b", OptKind::Bool, OptDefault::Bool(false)),
            OptionSpec::new("s", OptKind::Str, OptDefault::None),
            OptionSpec::new("missing", OptKind::Str, OptDefault::Str("dflt")),
            OptionSpec::new("absent", OptKind::Str, OptDefault::None),
            OptionSpec::new("given", OptKind::Str, OptDefault::None),
        ];
        let mut p = Vars::new();
        p.insert("given".into(), PyValue::str("g"));
        p.insert("I".into(), PyValue::str("99"));
        let v = r.get_options("S", &table, Some(&p), false, true).unwrap();
        let got: Vec<(String, String)> = v.iter().map(|(k, v)| (k.clone(), v.repr())).collect();
        assert_eq!(
            got,
            vec![
                ("i".into(), "99".into()),
                ("bad".into(), "3".into()),
                ("b".into(), "True".into()),
                ("s".into(), "'99'".into()),
                ("missing".into(), "'dflt'".into()),
            ]
        );
        let v = r
            .get_options("Nope", &table[..2], None, false, true)
            .unwrap();
        assert_eq!(v["i"], PyValue::None);
        assert!(r.get_options("Nope", &table, None, true, true).is_err());
    }

    /// The warning and error lines of captured logs.
    pub(crate) fn problems(lines: Option<Vec<String>>) -> Option<Vec<String>> {
        lines.map(|l| {
            l.into_iter()
                .filter(|l| l.starts_with("WARN") || l.starts_with("ERROR"))
                .collect()
        })
    }

    #[test]
    fn log_messages() {
        let t = Tree::new(
            "logmsg",
            &[
                ("x.conf/not-a-file", ""),
                ("x.local", "[S]\ni = 1\nbad = z\n"),
                ("u.conf", ""),
            ],
        );
        std::fs::write(t.path("u.conf"), b"[S]\na = \xff\n").unwrap();
        let table = [
            OptionSpec::new("bad", OptKind::Int, OptDefault::Int(3)),
            OptionSpec::new("missing", OptKind::Str, OptDefault::Str("dflt")),
            OptionSpec::new("absent", OptKind::Int, OptDefault::None),
        ];
        let ((), lines) = crate::config::tests::capture_logs(|| {
            let mut r = ConfigReader::new(Some(&t.0), None);
            assert!(r.read("x").unwrap());
            r.get_options("S", &table, None, false, true).unwrap();
            r.get_options("Nope", &table[2..], None, false, true)
                .unwrap();
            let mut r = ConfigReader::new(Some(&t.0), None);
            assert!(!r.read("u").unwrap());
            assert!(!r.read("u").unwrap());
            let mut r = ConfigReader::new(Some(&t.0), None);
            assert!(!r.read("none").unwrap());
        });
        let Some(lines) = problems(lines) else { return };
        let base = &t.0;
        assert_eq!(
            lines,
            vec![
                format!("ERROR fail2ban.configreader: Could not read config files: {base}/x.conf"),
                "WARN fail2ban.configreader: Wrong value for 'bad' in 'S'. Using default one: '3'"
                    .to_string(),
                "WARN fail2ban.configreader: 'missing' not defined in 'S'. Using default one: 'dflt'"
                    .to_string(),
                "ERROR fail2ban.configreader: No section: 'Nope'".to_string(),
                format!(
                    "ERROR fail2ban.configparserinc: Error decoding config file '{base}/u.conf': \
                     'utf-8' codec can't decode byte 0xff in position 8: invalid start byte"
                ),
                format!("ERROR fail2ban.configreader: Could not read config files: {base}/u.conf"),
                format!("ERROR fail2ban.configreader: Found no accessible config files for 'u' under {base}"),
                format!("ERROR fail2ban.configreader: Found no accessible config files for 'none' under {base}"),
            ]
        );
    }

    #[test]
    fn shared_readers_parse_each_file_once() {
        let t = Tree::new(
            "share",
            &[
                ("filter.d/common.conf", "[DEFAULT]\nc = 1\n"),
                (
                    "filter.d/a.conf",
                    "[INCLUDES]\nbefore = common.conf\n[Definition]\nx = a\n",
                ),
                (
                    "filter.d/b.conf",
                    "[INCLUDES]\nbefore = common.conf\n[Definition]\nx = b\n",
                ),
            ],
        );
        let share = ShareConfig::new();
        let mut a = ConfigReader::new(Some(&t.0), Some(share.clone()));
        let mut b = ConfigReader::new(Some(&t.0), Some(share.clone()));
        assert!(a.read("filter.d/a").unwrap());
        assert!(b.read("filter.d/b").unwrap());
        assert_eq!(share.files.borrow().len(), 3);
        let mut a2 = ConfigReader::new(Some(&t.0), Some(share.clone()));
        assert!(a2.read("filter.d/a").unwrap());
        assert!(Rc::ptr_eq(
            a.cfg.as_ref().unwrap(),
            a2.cfg.as_ref().unwrap()
        ));
        assert_eq!(get(&a2, "Definition", "c"), "1");
    }
}
