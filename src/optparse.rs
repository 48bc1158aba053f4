//! Command-line parsing with Python `optparse` behaviour.
//!
//! fail2ban's tools parse their options with `optparse`, and users (and
//! scripts) see its exact behaviour: unique prefixes of long options,
//! `--opt=value` and `--opt value`, clustered short options (`-rvL5`),
//! interspersed positional arguments, and its error texts and exit status 2
//! (`no such option: --x`, `ambiguous option: --p (--a, --b?)`,
//! `option -L: invalid integer value: 'x'`).  `clap` parses differently and
//! words its errors differently, so this small parser is written by hand.

use std::collections::HashMap;

/// What an option does with its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Takes a string value.
    Store,
    /// Takes an integer value.
    StoreInt,
    /// A flag set to true.
    StoreTrue,
    /// A flag set to false (stored as "false").
    StoreFalse,
    /// Counts occurrences.
    Count,
    /// Stops parsing and reports the option (help, version...).
    Exit,
}

/// One option: its short and long spellings, destination and action.
#[derive(Debug, Clone)]
pub struct Opt {
    pub short: Option<char>,
    pub longs: Vec<&'static str>,
    pub dest: &'static str,
    pub action: Action,
}

impl Opt {
    pub fn new(
        short: Option<char>,
        longs: &[&'static str],
        dest: &'static str,
        action: Action,
    ) -> Opt {
        Opt {
            short,
            longs: longs.to_vec(),
            dest,
            action,
        }
    }
}

/// The result of a successful parse.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    values: HashMap<&'static str, String>,
    counts: HashMap<&'static str, i64>,
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value stored for `dest`.
    pub fn get(&self, dest: &str) -> Option<&str> {
        self.values.get(dest).map(String::as_str)
    }

    /// An integer value (already validated).
    pub fn get_int(&self, dest: &str) -> Option<i64> {
        self.get(dest).and_then(parse_int)
    }

    /// Whether a flag was set (`StoreTrue`) or cleared (`StoreFalse`):
    /// `Some(true/false)`, or `None` when not given.
    pub fn flag(&self, dest: &str) -> Option<bool> {
        self.get(dest).map(|v| v == "true")
    }

    /// How many times a counting option was given.
    pub fn count(&self, dest: &str) -> i64 {
        self.counts.get(dest).copied().unwrap_or(0)
    }
}

/// What stopped the parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// An `Exit` option was met (its dest).
    Exit(&'static str),
    /// An error, worded as optparse does (without the `prog: error: ` part).
    Error(String),
}

/// Python's `int()` with optparse's radix prefixes (`0x`, `0b`, `0o`).
pub fn parse_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else {
        (10, lower.as_str())
    };
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    let n = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -n } else { n })
}

/// Parses `args` (without the program name) against `opts`.
pub fn parse(opts: &[Opt], args: &[String]) -> Result<Parsed, Stop> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            out.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let (opt, used) = match_long(opts, &name)?;
            if takes_value(opt.action) {
                let value = match inline {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => return Err(Stop::Error(format!("{used} option requires 1 argument"))),
                };
                store(&mut out, opt, used, value)?;
            } else {
                if inline.is_some() {
                    return Err(Stop::Error(format!("{used} option does not take a value")));
                }
                if let Some(stop) = act(&mut out, opt) {
                    return Err(stop);
                }
            }
            continue;
        }
        if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let used = format!("-{c}");
                let Some(opt) = opts.iter().find(|o| o.short == Some(c)) else {
                    return Err(Stop::Error(format!("no such option: {used}")));
                };
                if takes_value(opt.action) {
                    let value = if j < chars.len() {
                        let v: String = chars[j..].iter().collect();
                        j = chars.len();
                        v
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(Stop::Error(format!("{used} option requires 1 argument")));
                    };
                    store(&mut out, opt, &used, value)?;
                } else if let Some(stop) = act(&mut out, opt) {
                    return Err(stop);
                }
            }
            continue;
        }
        out.args.push(arg.clone());
    }
    Ok(out)
}

fn takes_value(a: Action) -> bool {
    matches!(a, Action::Store | Action::StoreInt)
}

fn match_long<'a>(opts: &'a [Opt], name: &str) -> Result<(&'a Opt, &'static str), Stop> {
    for o in opts {
        if let Some(l) = o.longs.iter().find(|l| **l == name) {
            return Ok((o, l));
        }
    }
    let mut cands: Vec<(&'static str, &Opt)> = Vec::new();
    for o in opts {
        for l in &o.longs {
            if l.starts_with(name) {
                cands.push((l, o));
            }
        }
    }
    match cands.len() {
        0 => Err(Stop::Error(format!("no such option: {name}"))),
        1 => Ok((cands[0].1, cands[0].0)),
        _ => {
            let mut names: Vec<&str> = cands.iter().map(|(l, _)| *l).collect();
            names.sort();
            Err(Stop::Error(format!(
                "ambiguous option: {name} ({}?)",
                names.join(", ")
            )))
        }
    }
}

fn store(out: &mut Parsed, opt: &Opt, used: &str, value: String) -> Result<(), Stop> {
    if opt.action == Action::StoreInt && parse_int(&value).is_none() {
        return Err(Stop::Error(format!(
            "option {used}: invalid integer value: {}",
            crate::pyvalue::str_repr(&value)
        )));
    }
    out.values.insert(opt.dest, value);
    Ok(())
}

fn act(out: &mut Parsed, opt: &Opt) -> Option<Stop> {
    match opt.action {
        Action::StoreTrue => {
            out.values.insert(opt.dest, "true".to_string());
        }
        Action::StoreFalse => {
            out.values.insert(opt.dest, "false".to_string());
        }
        Action::Count => *out.counts.entry(opt.dest).or_insert(0) += 1,
        Action::Exit => return Some(Stop::Exit(opt.dest)),
        Action::Store | Action::StoreInt => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Vec<Opt> {
        vec![
            Opt::new(Some('L'), &["--maxlines"], "maxlines", Action::StoreInt),
            Opt::new(Some('r'), &["--raw"], "raw", Action::StoreTrue),
            Opt::new(Some('v'), &["--verbose"], "verbose", Action::Count),
            Opt::new(None, &["--print-all-matched"], "pam", Action::StoreTrue),
            Opt::new(None, &["--print-all-missed"], "pami", Action::StoreTrue),
            Opt::new(None, &["--timezone", "--TZ"], "tz", Action::Store),
            Opt::new(Some('h'), &["--help"], "help", Action::Exit),
        ]
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_like_optparse() {
        let p = parse(
            &opts(),
            &args(&["-rvvL5", "log", "--TZ=UTC", "re", "--print-all-ma"]),
        )
        .unwrap();
        assert_eq!(p.get_int("maxlines"), Some(5));
        assert_eq!(p.flag("raw"), Some(true));
        assert_eq!(p.count("verbose"), 2);
        assert_eq!(p.get("tz"), Some("UTC"));
        assert_eq!(p.flag("pam"), Some(true));
        assert_eq!(p.args, args(&["log", "re"]));
        let p = parse(&opts(), &args(&["--maxlines", "0x10", "--", "-r"])).unwrap();
        assert_eq!(p.get_int("maxlines"), Some(16));
        assert_eq!(p.args, args(&["-r"]));
    }

    #[test]
    fn errors_are_worded_like_optparse() {
        let e = |a: &[&str]| parse(&opts(), &args(a)).unwrap_err();
        assert_eq!(
            e(&["--bogus"]),
            Stop::Error("no such option: --bogus".into())
        );
        assert_eq!(e(&["-x"]), Stop::Error("no such option: -x".into()));
        assert_eq!(
            e(&["-L", "x"]),
            Stop::Error("option -L: invalid integer value: 'x'".into())
        );
        assert_eq!(
            e(&["--print-all-m"]),
            Stop::Error(
                "ambiguous option: --print-all-m (--print-all-matched, --print-all-missed?)".into()
            )
        );
        assert_eq!(
            e(&["-L"]),
            Stop::Error("-L option requires 1 argument".into())
        );
        assert_eq!(
            e(&["--raw=1"]),
            Stop::Error("--raw option does not take a value".into())
        );
        assert_eq!(e(&["-h", "--bogus"]), Stop::Exit("help"));
        assert_eq!(
            e(&["--maxl", "y"]),
            Stop::Error("option --maxlines: invalid integer value: 'y'".into())
        );
    }
}
