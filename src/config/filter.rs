//! Filter files → the command stream for the server (fail2ban's
//! `FilterReader`).
//!
//! A filter `NAME` lives in `filter.d/NAME.conf` (plus `.d`, `.local`) under
//! the base directory, or in an explicit file (`fail2ban-regex` given a
//! path).  Its standard options are `usedns`, `prefregex`, `ignoreregex`,
//! `failregex`, `maxlines` (an integer), `datepattern` and `journalmatch`;
//! [`FilterReader::convert`] turns the combined options into commands such
//! as `['set', J, 'addfailregex', R]` or `['multi-set', J, 'addfailregex',
//! [R, ...]]`, in Python's order.

use super::Error;
use super::definition::DefinitionReader;
use super::options::shlex_split;
use super::reader::{OptDefault, OptKind, OptionSpec, ShareConfig, Vars, py_abspath, py_join};
use crate::pyvalue::PyValue;
use indexmap::IndexMap;
use std::collections::HashSet;
use std::rc::Rc;

/// The standard options of a filter.
pub static FILTER_OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("usedns", OptKind::Str, OptDefault::None),
    OptionSpec::new("prefregex", OptKind::Str, OptDefault::None),
    OptionSpec::new("ignoreregex", OptKind::Str, OptDefault::None),
    OptionSpec::new("failregex", OptKind::Str, OptDefault::None),
    OptionSpec::new("maxlines", OptKind::Int, OptDefault::None),
    OptionSpec::new("datepattern", OptKind::Str, OptDefault::None),
    OptionSpec::new("journalmatch", OptKind::Str, OptDefault::None),
];

/// A reader of one filter.
#[derive(Debug)]
pub struct FilterReader {
    def: DefinitionReader,
    name: String,
}

impl FilterReader {
    /// A reader of filter `name` (a name under `filter.d`, or for
    /// [`FilterReader::read_explicit`] an absolute file path) for jail
    /// `jail_name`, with init options, under `basedir` (default
    /// `/etc/fail2ban`), with a private cache.
    pub fn new(
        name: &str,
        jail_name: &str,
        init_opts: IndexMap<String, String>,
        basedir: Option<&str>,
    ) -> Self {
        Self::with_share(name, jail_name, init_opts, basedir, ShareConfig::new())
    }

    /// Like [`FilterReader::new`], sharing parsed files through `share`.
    pub fn with_share(
        name: &str,
        jail_name: &str,
        init_opts: IndexMap<String, String>,
        basedir: Option<&str>,
        share: Rc<ShareConfig>,
    ) -> Self {
        let name = if name.starts_with("./") {
            py_abspath(name)
        } else {
            name.to_string()
        };
        let file = py_join("filter.d", &name);
        FilterReader {
            def: DefinitionReader::new(&file, jail_name, init_opts, FILTER_OPTIONS, basedir, share),
            name,
        }
    }

    /// The filter name (or path) as given.
    pub fn file(&self) -> &str {
        &self.name
    }

    /// The `[Definition]`/`[Init]` layer (init options, config access).
    pub fn definition(&self) -> &DefinitionReader {
        &self.def
    }

    pub fn definition_mut(&mut self) -> &mut DefinitionReader {
        &mut self.def
    }

    /// Reads `filter.d/NAME` under the base directory (`.conf`, `.d/*.conf`,
    /// `.local`, `.d/*.local`, includes).  `Ok(false)` when no file exists.
    pub fn read(&mut self) -> Result<bool, Error> {
        self.def.read()
    }

    /// Reads the file given by path, its includes and its sibling `.local`
    /// (no `.d` directory).  `Ok(false)` when it cannot be read.
    pub fn read_explicit(&mut self) -> Result<bool, Error> {
        self.def.read_explicit()
    }

    /// Sets init option `logtype` from the jail backend (`journal` for
    /// `systemd*`, else `file`) unless the init options have a non-empty
    /// `logtype` or the filter's own `[Definition]` defines one.
    pub fn apply_auto_options(&mut self, backend: &str) {
        let given = self
            .def
            .init_options()
            .get("logtype")
            .is_some_and(|v| !v.is_empty());
        if !given && !self.def.reader().has_option("Definition", "logtype", false) {
            let logtype = if backend.starts_with("systemd") {
                "journal"
            } else {
                "file"
            };
            self.def
                .init_options_mut()
                .insert("logtype".to_string(), logtype.to_string());
        }
    }

    /// Reads the options (see [`DefinitionReader::get_options`]); `vars`
    /// are the jail's options, `all` adds every `[Definition]` option.
    pub fn get_options(&mut self, vars: Option<&Vars>, all: bool) -> Result<(), Error> {
        self.def.get_options(vars, all)
    }

    /// The combined options: tags substituted, `maxlines` an integer.
    pub fn combined(&mut self) -> Result<IndexMap<String, PyValue>, Error> {
        self.def.combined(&HashSet::new())
    }

    /// The command stream of the filter for its jail.
    pub fn convert(&mut self) -> Result<Vec<PyValue>, Error> {
        let opts = self.combined()?;
        let mut stream = Vec::new();
        if !opts.is_empty() {
            Self::fill_stream(&mut stream, &opts, self.def.jail_name())?;
        }
        Ok(stream)
    }

    /// Appends (or, for `usedns`, `maxlines` and `prefregex`, inserts near
    /// the front) the commands for the filter options among `opts`
    /// (Python's `FilterReader._fillStream`, also used for jail options).
    pub fn fill_stream(
        stream: &mut Vec<PyValue>,
        opts: &IndexMap<String, PyValue>,
        jail_name: &str,
    ) -> Result<(), Error> {
        let cmd = |op: &str, opt: &str, value: PyValue| {
            PyValue::List(vec![
                PyValue::str(op),
                PyValue::str(jail_name),
                PyValue::str(opt),
                value,
            ])
        };
        let mut prio = 0;
        for (opt, value) in opts {
            if *value == PyValue::None {
                continue;
            }
            match opt.as_str() {
                "failregex" | "ignoreregex" => {
                    let text = value.to_py_str();
                    let multi: Vec<&str> = text.split('\n').filter(|r| !r.is_empty()).collect();
                    let add = format!("add{opt}");
                    match multi.as_slice() {
                        [] => {}
                        [one] => stream.push(cmd("set", &add, PyValue::str(*one))),
                        many => stream.push(cmd(
                            "multi-set",
                            &add,
                            PyValue::str_list(many.iter().copied()),
                        )),
                    }
                }
                "usedns" | "maxlines" | "prefregex" => {
                    let at = if opt == "usedns" { 0 } else { prio };
                    stream.insert(at, cmd("set", opt, value.clone()));
                    prio += 1;
                }
                // Python tests `opt in ('datepattern')`: a substring test.
                o if "datepattern".contains(o) => stream.push(cmd("set", opt, value.clone())),
                "journalmatch" => {
                    for line in value.to_py_str().split('\n').filter(|l| !l.is_empty()) {
                        let mut items = vec![
                            PyValue::str("set"),
                            PyValue::str(jail_name),
                            PyValue::str("addjournalmatch"),
                        ];
                        items.extend(shlex_split(line)?.into_iter().map(PyValue::Str));
                        stream.push(PyValue::List(items));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::tests::Tree;

    fn stream(
        tree: &Tree,
        name: &str,
        init: &[(&str, &str)],
        backend: Option<&str>,
        all: bool,
    ) -> Vec<String> {
        let init = init
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut f = FilterReader::new(name, "j", init, Some(&tree.0));
        assert!(f.read().unwrap());
        if let Some(b) = backend {
            f.apply_auto_options(b);
        }
        f.get_options(None, all).unwrap();
        f.convert().unwrap().iter().map(PyValue::repr).collect()
    }

    #[test]
    fn stream_order_and_forms() {
        let t = Tree::new(
            "fstream",
            &[(
                "filter.d/f.conf",
                "[Definition]\nfailregex = ^a <HOST>$\n            ^b <HOST>$\n\nignoreregex = ^i$\n\
                 prefregex = ^<F-CONTENT>.+</F-CONTENT>$\nmaxlines = 2\ndatepattern = ^%%Y\n\
                 journalmatch = _SYSTEMD_UNIT=x.service + _COMM=\"a b\"\n\nusedns = no\ndate = D\n",
            )],
        );
        assert_eq!(
            stream(&t, "f", &[], None, false),
            vec![
                "['set', 'j', 'usedns', 'no']",
                "['set', 'j', 'prefregex', '^<F-CONTENT>.+</F-CONTENT>$']",
                "['set', 'j', 'maxlines', 2]",
                "['set', 'j', 'addignoreregex', '^i$']",
                "['multi-set', 'j', 'addfailregex', ['^a <HOST>$', '^b <HOST>$']]",
                "['set', 'j', 'datepattern', '^%Y']",
                "['set', 'j', 'addjournalmatch', '_SYSTEMD_UNIT=x.service', '+', '_COMM=a b']",
            ]
        );
        // With all options, a key that is a substring of "datepattern" is
        // sent as well (Python's `in ('datepattern')`).
        assert!(
            stream(&t, "f", &[], None, true).contains(&"['set', 'j', 'date', 'D']".to_string())
        );
    }

    #[test]
    fn logtype_auto_option() {
        let t = Tree::new(
            "flogtype",
            &[
                ("filter.d/a.conf", "[Definition]\nfailregex = <logtype>\n"),
                (
                    "filter.d/b.conf",
                    "[Definition]\nfailregex = <logtype>\nlogtype = own\n",
                ),
            ],
        );
        assert_eq!(
            stream(&t, "a", &[], Some("auto"), false),
            vec!["['set', 'j', 'addfailregex', 'file']"]
        );
        assert_eq!(
            stream(&t, "a", &[], Some("systemd[journalflags=1]"), false),
            vec!["['set', 'j', 'addfailregex', 'journal']"]
        );
        assert_eq!(
            stream(&t, "a", &[("logtype", "short")], Some("auto"), false),
            vec!["['set', 'j', 'addfailregex', 'short']"]
        );
        assert_eq!(
            stream(&t, "b", &[], Some("auto"), false),
            vec!["['set', 'j', 'addfailregex', 'own']"]
        );
        assert_eq!(
            stream(&t, "a", &[], None, false),
            vec!["['set', 'j', 'addfailregex', '<logtype>']"]
        );
    }

    #[test]
    fn explicit_file_reads_includes_and_local_only() {
        let t = Tree::new(
            "fexplicit",
            &[
                (
                    "x/my.conf",
                    "[INCLUDES]\nbefore = inc.conf\n[Definition]\nfailregex = <p> <v>\n",
                ),
                ("x/inc.conf", "[DEFAULT]\np = P\n"),
                ("x/my.local", "[Definition]\nv = local\n"),
                ("x/my.d/z.conf", "[Definition]\nv = dotd\n"),
            ],
        );
        let path = t.path("x/my.conf");
        let mut f = FilterReader::new(&path, "j", IndexMap::new(), None);
        assert!(f.read_explicit().unwrap());
        f.get_options(None, false).unwrap();
        assert_eq!(
            f.convert().unwrap()[0].repr(),
            "['set', 'j', 'addfailregex', 'P local']"
        );
        let mut f = FilterReader::new(&t.path("x/none.conf"), "j", IndexMap::new(), None);
        assert!(!f.read_explicit().unwrap());
    }

    #[test]
    fn missing_definition_gives_empty_stream() {
        let t = Tree::new(
            "fmissing",
            &[("filter.d/e.conf", "[definition]\nfailregex = x\n")],
        );
        assert!(stream(&t, "e", &[], None, false).is_empty());
        let mut f = FilterReader::new("none", "j", IndexMap::new(), Some(&t.0));
        assert!(!f.read().unwrap());
    }
}
