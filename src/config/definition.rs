//! Files made of `[Definition]` and `[Init]` sections — filters and actions
//! (fail2ban's `DefinitionInitConfigReader`).
//!
//! Such a file is read with *init options* (from `name[opt=val]` in a jail,
//! or a test's filter options).  [`DefinitionReader::get_options`] reads the
//! reader's standard options from `[Definition]` with the caller's options
//! and the init options as interpolation vars, folds the file's own `[Init]`
//! options into the init options (each also as `known/<name>`), and, when
//! asked, adds every other `[Definition]` option.
//! [`DefinitionReader::combined`] overlays the init options and resolves
//! `<tag>`s ([`crate::config::tags`]), falling back to any `section/option`
//! of the file, then converts typed options.

use super::reader::{ConfigReader, OptionSpec, ShareConfig, Vars, lower_vars};
use super::tags::substitute_recursive_tags;
use super::{Error, split_conditional};
use crate::pyvalue::PyValue;
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

const LOG: &str = "fail2ban.configreader";

/// A reader of one filter or action file.
#[derive(Debug)]
pub struct DefinitionReader {
    reader: ConfigReader,
    /// The config name read, e.g. `filter.d/sshd` (or an explicit path).
    file: String,
    jail_name: String,
    init_opts: IndexMap<String, String>,
    /// The vars of the last [`DefinitionReader::get_options`].
    p_opts: Vars,
    /// The options read from `[Definition]` (`None`: Python's `None`).
    opts: IndexMap<String, Option<String>>,
    /// Tag lookups in the file, cached for the reader's life.
    def_cache: HashMap<String, Option<String>>,
    table: &'static [OptionSpec],
}

impl DefinitionReader {
    /// A reader of config `file` (e.g. `filter.d/sshd`) for jail `jail_name`,
    /// with init options and the table of the reader's standard options.
    pub fn new(
        file: &str,
        jail_name: &str,
        init_opts: IndexMap<String, String>,
        table: &'static [OptionSpec],
        basedir: Option<&str>,
        share: Rc<ShareConfig>,
    ) -> Self {
        DefinitionReader {
            reader: ConfigReader::new(basedir, Some(share)),
            file: file.to_string(),
            jail_name: jail_name.to_string(),
            init_opts,
            p_opts: Vars::new(),
            opts: IndexMap::new(),
            def_cache: HashMap::new(),
            table,
        }
    }

    /// The underlying config reader (sections, `get`, ...).
    pub fn reader(&self) -> &ConfigReader {
        &self.reader
    }

    /// The underlying config reader, mutably (base directory).
    pub fn reader_mut(&mut self) -> &mut ConfigReader {
        &mut self.reader
    }

    /// The config name read.
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn jail_name(&self) -> &str {
        &self.jail_name
    }

    /// The init options, including those added by reading (`[Init]` keys,
    /// `known/...`, an automatic `logtype`).
    pub fn init_options(&self) -> &IndexMap<String, String> {
        &self.init_opts
    }

    pub fn init_options_mut(&mut self) -> &mut IndexMap<String, String> {
        &mut self.init_opts
    }

    /// The options read by the last [`DefinitionReader::get_options`].
    pub fn options(&self) -> &IndexMap<String, Option<String>> {
        &self.opts
    }

    /// Reads the file set of the config name under the base directory.
    pub fn read(&mut self) -> Result<bool, Error> {
        self.reader.read(&self.file)
    }

    /// Reads the file itself with its includes and sibling `.local`, without
    /// base directory nor `.d` directory.
    pub fn read_explicit(&mut self) -> Result<bool, Error> {
        self.reader.read_explicit(&self.file)
    }

    /// Reads the options (Python's `getOptions(pOpts, all)`): the standard
    /// options not given in `p_opts`, with `p_opts` and the init options as
    /// vars; the `[Init]` options into the init options; with `all`, every
    /// other own `[Definition]` option (read without vars).
    pub fn get_options(&mut self, p_opts: Option<&Vars>, all: bool) -> Result<(), Error> {
        let mut p = p_opts.cloned().unwrap_or_default();
        for (k, v) in &self.init_opts {
            p.insert(k.clone(), PyValue::str(v.as_str()));
        }
        let values = self
            .reader
            .get_options("Definition", self.table, Some(&p), false, false)?;
        self.opts = values
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    PyValue::None => None,
                    other => Some(other.to_py_str()),
                };
                (k, v)
            })
            .collect();
        self.p_opts = p;
        if self.reader.has_section("Init") {
            for opt in self.reader.options("Init", false)? {
                if opt == "__name__" {
                    continue;
                }
                let mut value = None;
                if !opt.starts_with("known/") {
                    let v = self.reader.get("Init", &opt, None)?;
                    self.init_opts.insert(format!("known/{opt}"), v.clone());
                    value = Some(v);
                }
                if !self.init_opts.contains_key(&opt) {
                    let v = match value {
                        Some(v) => v,
                        None => self.reader.get("Init", &opt, None)?,
                    };
                    self.init_opts.insert(opt, v);
                }
            }
        }
        if all && self.reader.has_section("Definition") {
            for opt in self.reader.options("Definition", false)? {
                if opt == "__name__" || self.opts.contains_key(&opt) {
                    continue;
                }
                let v = self.reader.get("Definition", &opt, None)?;
                self.opts.insert(opt, Some(v));
            }
        }
        Ok(())
    }

    /// A `<tag>` not among the combined options, looked up in the file
    /// (Python's `getCombOption`): `Definition` with the vars, `SEC/opt`
    /// forms through `get_ex`.  Not found → `None`; cached.
    pub fn get_comb_option(&mut self, name: &str) -> Result<Option<String>, Error> {
        comb_option(&self.reader, &self.p_opts, &mut self.def_cache, name)
    }

    /// The combined options: the read options overlaid with the init
    /// options, tags substituted (options named in `ignore` and conditional
    /// ones left alone), typed options converted.
    pub fn combined(
        &mut self,
        ignore: &HashSet<String>,
    ) -> Result<IndexMap<String, PyValue>, Error> {
        let mut combined = self.opts.clone();
        for (k, v) in &self.init_opts {
            combined.insert(k.clone(), Some(v.clone()));
        }
        if combined.is_empty() {
            return Ok(IndexMap::new());
        }
        let mut ignore = ignore.clone();
        for name in combined.keys() {
            if let Some((base, _)) = split_conditional(name) {
                ignore.insert(base.to_string());
            }
        }
        let (reader, p_opts, cache) = (&self.reader, &self.p_opts, &mut self.def_cache);
        let substituted = substitute_recursive_tags(&combined, "", &ignore, &mut |tag| {
            comb_option(reader, p_opts, cache, tag)
        })?;
        let mut out: IndexMap<String, PyValue> = substituted
            .into_iter()
            .map(|(k, v)| (k, v.map_or(PyValue::None, PyValue::Str)))
            .collect();
        for spec in self.table {
            let Some(PyValue::Str(v)) = out.get(spec.name) else {
                continue;
            };
            let converted = spec.kind.convert(v).unwrap_or_else(|| {
                let default = spec.default.value();
                log::warn!(target: LOG,
                    "Wrong {} value {} for {}. Using default one: {}",
                    spec.kind.name(),
                    PyValue::str(v.as_str()).repr(),
                    PyValue::str(spec.name).repr(),
                    default.repr()
                );
                default
            });
            out.insert(spec.name.to_string(), converted);
        }
        Ok(out)
    }
}

fn comb_option(
    reader: &ConfigReader,
    p_opts: &Vars,
    cache: &mut HashMap<String, Option<String>>,
    name: &str,
) -> Result<Option<String>, Error> {
    if let Some(v) = cache.get(name) {
        return Ok(v.clone());
    }
    let lvars = lower_vars(Some(p_opts));
    let value = match reader.data() {
        None => None,
        Some(data) => match data.get_ex("Definition", name, Some(&lvars)) {
            Ok(v) => Some(v),
            Err(Error::NoSection(_) | Error::NoOption { .. } | Error::Value(_)) => None,
            Err(e) => return Err(e),
        },
    };
    cache.insert(name.to_string(), value.clone());
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::super::reader::{OptDefault, OptKind};
    use super::*;
    use crate::config::reader::tests::Tree;

    static TABLE: &[OptionSpec] = &[
        OptionSpec::new("failregex", OptKind::Str, OptDefault::None),
        OptionSpec::new("maxlines", OptKind::Int, OptDefault::None),
        OptionSpec::new("flag", OptKind::Bool, OptDefault::None),
    ];

    fn opts(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn reader(tree: &Tree, init: &[(&str, &str)]) -> DefinitionReader {
        let mut r = DefinitionReader::new(
            "x",
            "j",
            opts(init),
            TABLE,
            Some(&tree.0),
            ShareConfig::new(),
        );
        assert!(r.read().unwrap());
        r
    }

    #[test]
    fn init_options_and_known() {
        let t = Tree::new(
            "definit",
            &[(
                "x.conf",
                "[Definition]\nfailregex = <a> <b> %(mode)s <known/a>\nmaxlines = <n>\nextra = %(mode)s\n\
                 [Init]\na = A\nb = B\nn = 2\nmode = m\n",
            )],
        );
        let mut r = reader(&t, &[("a", "given")]);
        r.get_options(None, true).unwrap_err();
        let mut r = reader(&t, &[("a", "given"), ("mode", "M")]);
        r.get_options(None, false).unwrap();
        let init: Vec<_> = r.init_options().keys().cloned().collect();
        assert_eq!(
            init,
            vec![
                "a",
                "mode",
                "known/a",
                "known/b",
                "b",
                "known/n",
                "n",
                "known/mode"
            ]
        );
        assert_eq!(r.init_options()["mode"], "M");
        let c = r.combined(&HashSet::new()).unwrap();
        assert_eq!(c["failregex"], PyValue::str("given B M A"));
        assert_eq!(c["maxlines"], PyValue::Int(2));
        assert!(!c.contains_key("extra"));
    }

    #[test]
    fn all_reads_other_definition_keys_without_vars() {
        let t = Tree::new(
            "defall",
            &[(
                "x.conf",
                "[DEFAULT]\nd = D\n[Definition]\nfailregex = f\nother = <d>-%(d)s\n",
            )],
        );
        let mut r = reader(&t, &[]);
        r.get_options(None, true).unwrap();
        let c = r.combined(&HashSet::new()).unwrap();
        let keys: Vec<_> = c.keys().cloned().collect();
        assert_eq!(keys, vec!["failregex", "other"]);
        assert_eq!(c["other"], PyValue::str("D-D"));
    }

    #[test]
    fn tag_fallbacks_and_bad_ints() {
        let t = Tree::new(
            "deftags",
            &[
                (
                    "x.conf",
                    "[DEFAULT]\ndk = dv\n[Definition]\nfailregex = <sec/o> <default/dk> <dk> <nope>\n\
                     maxlines = x\nflag = yes\n[sec]\no = so\n",
                ),
                (
                    "x.local",
                    "[Definition]\nfailregex = local <known/failregex>\n",
                ),
            ],
        );
        let mut r = reader(&t, &[]);
        r.get_options(None, false).unwrap();
        let (c, lines) =
            crate::config::tests::capture_logs(|| r.combined(&HashSet::new()).unwrap());
        if let Some(lines) = crate::config::reader::tests::problems(lines) {
            assert_eq!(
                lines,
                vec![
                    "WARN fail2ban.configreader: Wrong int value 'x' for 'maxlines'. Using default one: None"
                ]
            );
        }
        assert_eq!(c["failregex"], PyValue::str("local so dv dv <nope>"));
        assert_eq!(c["maxlines"], PyValue::None);
        assert_eq!(c["flag"], PyValue::Bool(true));
    }

    #[test]
    fn known_init_self_reference_fails() {
        let t = Tree::new(
            "defself",
            &[(
                "x.conf",
                "[Definition]\nfailregex = <chain>\n[Init]\nchain = <known/chain>\n",
            )],
        );
        let mut r = reader(&t, &[]);
        r.get_options(None, false).unwrap();
        let e = r.combined(&HashSet::new()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "properties contain self referencing definitions and cannot be resolved, \
                 fail tag: failregex, found: known/chain in {'chain': 1, 'known/chain': 26}"
            ),
            "{e}"
        );
        let mut r = reader(&t, &[("chain", "<known/chain>-X")]);
        r.get_options(None, false).unwrap();
        assert!(r.combined(&HashSet::new()).is_err());
    }

    #[test]
    fn conditional_keys_are_ignored_as_tags() {
        let t = Tree::new(
            "defcond",
            &[(
                "x.conf",
                "[Definition]\nfailregex = <bt>\n[Init]\nbt = REJECT\n[Init?family=inet6]\nbt = REJECT6\n",
            )],
        );
        let mut r = reader(&t, &[]);
        r.get_options(None, false).unwrap();
        let c = r.combined(&HashSet::new()).unwrap();
        assert_eq!(c["failregex"], PyValue::str("<bt>"));
        assert_eq!(c["bt?family=inet6"], PyValue::str("REJECT6"));
    }
}
