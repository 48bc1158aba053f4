//! Python's `glob.glob` (non-recursive), as jails expand their `logpath`.
//!
//! Written by hand because fail2ban's output depends on Python's exact
//! behaviour, which glob crates do not share: results come in directory
//! order (not sorted), `*` and `?` do not match a leading dot, a pattern
//! without wildcards is returned as is when the path exists (even as a
//! dangling symbolic link), `**` is an ordinary `*`.

use super::reader::py_join;
use std::path::Path;

/// `glob.glob(pattern)`.
pub fn glob(pattern: &str) -> Vec<String> {
    iglob(pattern, false)
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `os.path.split`.
fn split(p: &str) -> (&str, &str) {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = (&p[..i], &p[i..]);
    if !head.is_empty() && !head.bytes().all(|b| b == b'/') {
        (head.trim_end_matches('/'), tail)
    } else {
        (head, tail)
    }
}

fn lexists(p: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn is_dir(p: &str) -> bool {
    Path::new(p).is_dir()
}

fn iglob(pathname: &str, dironly: bool) -> Vec<String> {
    let (dirname, basename) = split(pathname);
    if !has_magic(pathname) {
        let found = if basename.is_empty() {
            is_dir(dirname)
        } else {
            lexists(pathname)
        };
        return if found {
            vec![pathname.to_string()]
        } else {
            Vec::new()
        };
    }
    if dirname.is_empty() {
        return glob1("", basename, dironly);
    }
    let dirs = if dirname != pathname && has_magic(dirname) {
        iglob(dirname, true)
    } else {
        vec![dirname.to_string()]
    };
    let mut out = Vec::new();
    for dir in dirs {
        let names = if has_magic(basename) {
            glob1(&dir, basename, dironly)
        } else {
            glob0(&dir, basename)
        };
        out.extend(names.iter().map(|name| py_join(&dir, name)));
    }
    out
}

/// Names in `dirname` matching `pattern` (hidden ones only for a hidden
/// pattern), in directory order.
fn glob1(dirname: &str, pattern: &str, dironly: bool) -> Vec<String> {
    let dir = if dirname.is_empty() { "." } else { dirname };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let hidden_ok = pattern.starts_with('.');
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            if dironly && !e.path().is_dir() {
                return None;
            }
            e.file_name().into_string().ok()
        })
        .filter(|n| (hidden_ok || !n.starts_with('.')) && fnmatch(n, pattern))
        .collect()
}

fn glob0(dirname: &str, basename: &str) -> Vec<String> {
    let found = if basename.is_empty() {
        is_dir(dirname)
    } else {
        lexists(&py_join(dirname, basename))
    };
    if found {
        vec![basename.to_string()]
    } else {
        Vec::new()
    }
}

/// One element of a translated `fnmatch` pattern.
enum Tok {
    Star,
    Any,
    Lit(char),
    /// A bracket set: negated?, ranges (a single character is `(c, c)`).
    Set(bool, Vec<(char, char)>),
}

fn translate(pattern: &str) -> Vec<Tok> {
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(toks.last(), Some(Tok::Star)) {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::Any),
            '[' => {
                let mut j = i;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    toks.push(Tok::Lit('['));
                    continue;
                }
                let stuff = &p[i..j];
                i = j + 1;
                let (negate, body) = match stuff.first() {
                    Some('!') => (true, &stuff[1..]),
                    _ => (false, stuff),
                };
                let mut ranges = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        ranges.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        ranges.push((body[k], body[k]));
                        k += 1;
                    }
                }
                toks.push(Tok::Set(negate, ranges));
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    toks
}

/// `fnmatch.fnmatchcase(name, pattern)` (POSIX: case-sensitive).
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    matches(&name, &translate(pattern))
}

fn matches(name: &[char], toks: &[Tok]) -> bool {
    match toks.split_first() {
        None => name.is_empty(),
        Some((Tok::Star, rest)) => (0..=name.len()).any(|k| matches(&name[k..], rest)),
        Some((tok, rest)) => {
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            let ok = match tok {
                Tok::Any => true,
                Tok::Lit(l) => *l == c,
                Tok::Set(negate, ranges) => {
                    ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negate
                }
                Tok::Star => unreachable!("handled above"),
            };
            ok && matches(tail, rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::tests::Tree;

    #[test]
    fn fnmatch_like_python() {
        assert!(fnmatch("L01.log", "L[0-9]*.log"));
        assert!(!fnmatch("Lx.log", "L[0-9]*.log"));
        assert!(fnmatch("a.log", "[!b].log"));
        assert!(!fnmatch("b.log", "[!b].log"));
        assert!(fnmatch("]]", "[]]]") && !fnmatch("x]", "[]]]"));
        assert!(fnmatch("[ab", "[ab"));
        assert!(fnmatch("apache-error.log", "*error.log"));
        assert!(fnmatch("error.log", "*error.log"));
        assert!(!fnmatch("error.log2", "*error.log"));
        assert!(fnmatch("a?c", "a?c") && fnmatch("abc", "a?c"));
    }

    #[test]
    fn glob_like_python() {
        let t = Tree::new(
            "glob",
            &[
                ("logs/a-error.log", ""),
                ("logs/.hidden-error.log", ""),
                ("logs/b.log", ""),
                ("sub1/x/log.txt", ""),
                ("sub2/x/log.txt", ""),
            ],
        );
        let mut found = glob(&t.path("logs/*error.log"));
        found.sort();
        assert_eq!(found, vec![t.path("logs/a-error.log")]);
        assert_eq!(
            glob(&t.path("logs/.*error.log")),
            vec![t.path("logs/.hidden-error.log")]
        );
        let mut found = glob(&t.path("sub*/x/log.txt"));
        found.sort();
        assert_eq!(
            found,
            vec![t.path("sub1/x/log.txt"), t.path("sub2/x/log.txt")]
        );
        assert_eq!(glob(&t.path("logs/b.log")), vec![t.path("logs/b.log")]);
        assert!(glob(&t.path("logs/none.log")).is_empty());
        assert!(glob(&t.path("nodir/*.log")).is_empty());
        assert_eq!(glob(&t.path("logs/")), vec![t.path("logs/")]);
        std::os::unix::fs::symlink(t.path("nowhere"), t.path("logs/dangling.log")).unwrap();
        assert_eq!(
            glob(&t.path("logs/dangling.log")),
            vec![t.path("logs/dangling.log")]
        );
        assert!(glob("").is_empty());
    }
}
