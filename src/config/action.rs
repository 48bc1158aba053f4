//! Action files → the commands that attach an action to a jail (fail2ban's
//! `ActionReader`).
//!
//! An action `NAME` lives in `action.d/NAME.conf` (plus `.d`, `.local`) and
//! is read with the init options of its `action = NAME[...]` entry.  Init
//! option `name` defaults to the jail name and `actname` to the file name,
//! made unique per jail when `name` differs from the jail.  The stream is
//! `['set', J, 'addaction', actname]` followed by one (multi-)set of the
//! action's standard options (tags substituted) and its other init options
//! (as given).

use super::Error;
use super::definition::DefinitionReader;
use super::reader::{OptDefault, OptKind, OptionSpec, ShareConfig, Vars, py_abspath, py_join};
use crate::pyvalue::PyValue;
use indexmap::IndexMap;
use std::collections::HashSet;
use std::rc::Rc;

/// The standard options of an action.
pub static ACTION_OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("actionstart", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionstart_on_demand", OptKind::Bool, OptDefault::None),
    OptionSpec::new("actionstop", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionflush", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionreload", OptKind::Str, OptDefault::None),
    OptionSpec::new("actioncheck", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionrepair", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionrepair_on_unban", OptKind::Bool, OptDefault::None),
    OptionSpec::new("actionban", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionprolong", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionreban", OptKind::Str, OptDefault::None),
    OptionSpec::new("actionunban", OptKind::Str, OptDefault::None),
    OptionSpec::new("norestored", OptKind::Bool, OptDefault::None),
];

/// Tags the server substitutes itself (`CommandAction._escapedTags` and the
/// ban-time tags): left alone when combining an action's options.
pub const SERVER_TAGS: [&str; 5] = [
    "matches",
    "ipmatches",
    "ipjailmatches",
    "timeout",
    "bantime",
];

fn is_action_option(name: &str) -> bool {
    ACTION_OPTIONS.iter().any(|s| s.name == name)
}

/// A reader of one action of a jail.
#[derive(Debug)]
pub struct ActionReader {
    def: DefinitionReader,
    file: String,
    name: String,
}

impl ActionReader {
    /// A reader of action `file` (a name under `action.d`) for jail
    /// `jail_name` with the init options of its jail entry (`name` and
    /// `actname` are added when missing).
    pub fn with_share(
        file: &str,
        jail_name: &str,
        mut init_opts: IndexMap<String, String>,
        basedir: Option<&str>,
        share: Rc<ShareConfig>,
    ) -> Self {
        let n = init_opts
            .entry("name".to_string())
            .or_insert_with(|| jail_name.to_string())
            .clone();
        let actname = match init_opts.get("actname") {
            Some(a) => a.clone(),
            None => {
                let mut actname = file.to_string();
                if n != jail_name {
                    match n.strip_prefix(jail_name) {
                        Some(rest) => actname.push_str(rest),
                        None => {
                            actname.push('-');
                            actname.push_str(&n);
                        }
                    }
                }
                init_opts.insert("actname".to_string(), actname.clone());
                actname
            }
        };
        let file = if file.starts_with("./") {
            py_abspath(file)
        } else {
            file.to_string()
        };
        ActionReader {
            def: DefinitionReader::new(
                &py_join("action.d", &file),
                jail_name,
                init_opts,
                ACTION_OPTIONS,
                basedir,
                share,
            ),
            file,
            name: actname,
        }
    }

    /// The action file name as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The action's name in its jail (`actname`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `[Definition]`/`[Init]` layer.
    pub fn definition(&self) -> &DefinitionReader {
        &self.def
    }

    /// Reads `action.d/NAME` under the base directory.
    pub fn read(&mut self) -> Result<bool, Error> {
        self.def.read()
    }

    /// Reads the options with the jail's options as vars.
    pub fn get_options(&mut self, vars: Option<&Vars>) -> Result<(), Error> {
        self.def.get_options(vars, false)
    }

    /// The command stream attaching this action to its jail.
    pub fn convert(&mut self) -> Result<Vec<PyValue>, Error> {
        let ignore: HashSet<String> = SERVER_TAGS.iter().map(|t| t.to_string()).collect();
        let opts = self.def.combined(&ignore)?;
        let jail = self.def.jail_name().to_string();
        let mut stream = vec![PyValue::List(vec![
            PyValue::str("set"),
            PyValue::str(jail.as_str()),
            PyValue::str("addaction"),
            PyValue::str(self.name.as_str()),
        ])];
        let pair = |k: &str, v: PyValue| PyValue::List(vec![PyValue::str(k), v]);
        let mut multi: Vec<PyValue> = opts
            .iter()
            .filter(|(k, _)| is_action_option(k) && !k.starts_with("known/"))
            .map(|(k, v)| pair(k, v.clone()))
            .collect();
        multi.extend(
            self.def
                .init_options()
                .iter()
                .filter(|(k, _)| !is_action_option(k) && !k.starts_with("known/"))
                .map(|(k, v)| pair(k, PyValue::str(v.as_str()))),
        );
        let head = |op: &str| {
            vec![
                PyValue::str(op),
                PyValue::str(jail.as_str()),
                PyValue::str("action"),
                PyValue::str(self.name.as_str()),
            ]
        };
        if multi.len() > 1 {
            let mut cmd = head("multi-set");
            cmd.push(PyValue::List(multi));
            stream.push(PyValue::List(cmd));
        } else if let Some(PyValue::List(one)) = multi.pop() {
            let mut cmd = head("set");
            cmd.extend(one);
            stream.push(PyValue::List(cmd));
        }
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::tests::Tree;

    fn opts(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_are_unique_per_jail() {
        let share = ShareConfig::new();
        let a = ActionReader::with_share("dummy", "j", opts(&[]), None, share.clone());
        assert_eq!(a.name(), "dummy");
        assert_eq!(a.definition().init_options()["name"], "j");
        let a = ActionReader::with_share(
            "dummy",
            "j",
            opts(&[("name", "j-second")]),
            None,
            share.clone(),
        );
        assert_eq!(a.name(), "dummy-second");
        let a = ActionReader::with_share(
            "dummy",
            "j",
            opts(&[("name", "other")]),
            None,
            share.clone(),
        );
        assert_eq!(a.name(), "dummy-other");
        let a = ActionReader::with_share("dummy", "j", opts(&[("actname", "x")]), None, share);
        assert_eq!(a.name(), "x");
    }

    #[test]
    fn stream_of_options_and_init_options() {
        let t = Tree::new(
            "action",
            &[(
                "action.d/a.conf",
                "[Definition]\nactionstart = start <port> <ip> <matches>\nactionban = ban <name>\n\
                 actionstart_on_demand = false\nother = x\n[Init]\nport = 22\n",
            )],
        );
        let mut a = ActionReader::with_share(
            "a",
            "j",
            opts(&[("port", "<p>")]),
            Some(&t.0),
            ShareConfig::new(),
        );
        assert!(a.read().unwrap());
        let mut vars = Vars::new();
        vars.insert("p".into(), PyValue::str("ssh"));
        a.get_options(Some(&vars)).unwrap();
        let s: Vec<String> = a.convert().unwrap().iter().map(PyValue::repr).collect();
        assert_eq!(
            s,
            vec![
                "['set', 'j', 'addaction', 'a']".to_string(),
                "['multi-set', 'j', 'action', 'a', [['actionstart', 'start ssh <ip> <matches>'], \
                 ['actionstart_on_demand', False], ['actionban', 'ban j'], ['port', '<p>'], \
                 ['name', 'j'], ['actname', 'a']]]"
                    .to_string()
            ]
        );
    }
}
