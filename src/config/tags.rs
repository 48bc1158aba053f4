//! Recursive `<tag>` substitution over a set of options (fail2ban's
//! `substituteRecursiveTags`), shared by filters and actions.
//!
//! A tag is `<name>` with a name free of spaces and angle brackets.  Each
//! option's tags are replaced by the value of the option of that name (or
//! by what a fallback lookup finds), repeatedly until nothing changes;
//! unknown tags stay as they are (`<HOST>` is the server's business).
//! Self references and runaway repetition are errors with Python's text.

use super::Error;
use crate::pyvalue::PyValue;
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};

/// How often one tag may be replaced within one option (`MAX_TAG_REPLACE_COUNT`).
pub const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Finds the next tag `<([^ <>]+)>` at or after byte `from`: returns the
/// span of the whole tag.
pub fn find_tag(value: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = value.as_bytes();
    let mut start = from;
    while let Some(p) = value[start..].find('<').map(|p| p + start) {
        let mut i = p + 1;
        while i < bytes.len() && !matches!(bytes[i], b' ' | b'<' | b'>') {
            i += 1;
        }
        if i > p + 1 && i < bytes.len() && bytes[i] == b'>' {
            return Some((p, i + 1));
        }
        start = i.max(p + 1);
    }
    None
}

/// Substitutes the tags of all options of `tags` (values `None` stand for
/// Python's `None` and are left alone).
///
/// - `conditional`: when not empty, a tag `T` is first looked up as
///   `T?<conditional>`;
/// - `ignore`: options neither processed nor used as replacements;
/// - `addrepl`: fallback lookup of a tag absent from `tags` (`Ok(None)`:
///   not found, the tag stays).
///
/// Returns the substituted options, in the same order.
pub fn substitute_recursive_tags(
    tags: &IndexMap<String, Option<String>>,
    conditional: &str,
    ignore: &HashSet<String>,
    addrepl: &mut dyn FnMut(&str) -> Result<Option<String>, Error>,
) -> Result<IndexMap<String, Option<String>>, Error> {
    let mut tags = tags.clone();
    let mut done: HashSet<String> = HashSet::new();
    let mut rep_counts: HashMap<String, IndexMap<String, usize>> = HashMap::new();
    let keys: Vec<String> = tags.keys().cloned().collect();
    loop {
        let mut repeat = false;
        for tag in &keys {
            if ignore.contains(tag) || done.contains(tag) {
                continue;
            }
            let Some(orgval) = tags[tag].clone() else {
                continue;
            };
            let mut value = orgval.clone();
            let stored = rep_counts.contains_key(tag);
            let mut counts = rep_counts.remove(tag).unwrap_or_default();
            let mut m = find_tag(&value, 0);
            while let Some((start, end)) = m {
                let rtag = value[start + 1..end - 1].to_string();
                if ignore.contains(&rtag) {
                    m = find_tag(&value, end);
                    continue;
                }
                if rtag == *tag || counts.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    return Err(self_reference(tag, &rtag, &counts, &value));
                }
                let mut repl = None;
                if !conditional.is_empty() {
                    repl = tags
                        .get(&format!("{rtag}?{conditional}"))
                        .cloned()
                        .flatten();
                }
                if repl.is_none() {
                    repl = tags.get(&rtag).cloned().flatten();
                    if repl.is_none() {
                        repl = addrepl(&rtag)?;
                    }
                }
                let Some(repl) = repl else {
                    m = find_tag(&value, end);
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                *counts.entry(rtag).or_insert(0) += 1;
                m = find_tag(&value, start);
            }
            let changed = orgval != value;
            let again = changed && find_tag(&value, 0).is_some();
            repeat |= again;
            if stored || again {
                rep_counts.insert(tag.clone(), counts);
            }
            if !value.contains('<') {
                done.insert(tag.clone());
            }
            if changed {
                tags.insert(tag.clone(), Some(value));
            }
        }
        if !repeat {
            return Ok(tags);
        }
    }
}

fn self_reference(tag: &str, rtag: &str, counts: &IndexMap<String, usize>, value: &str) -> Error {
    let counts = PyValue::Dict(
        counts
            .iter()
            .map(|(k, v)| (PyValue::str(k.as_str()), PyValue::Int(*v as i64)))
            .collect(),
    );
    Error::Value(format!(
        "properties contain self referencing definitions and cannot be resolved, \
         fail tag: {tag}, found: {rtag} in {}, value: {value}",
        counts.repr()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> IndexMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    fn subst(pairs: &[(&str, &str)]) -> Result<IndexMap<String, Option<String>>, Error> {
        substitute_recursive_tags(&map(pairs), "", &HashSet::new(), &mut |_| Ok(None))
    }

    #[test]
    fn tag_scanner() {
        assert_eq!(find_tag("a <b> c", 0), Some((2, 5)));
        assert_eq!(find_tag("<a b> <c>", 0), Some((6, 9)));
        assert_eq!(find_tag("<<x>>", 0), Some((1, 4)));
        assert_eq!(find_tag("<> <", 0), None);
        assert_eq!(find_tag("<a\nb>", 0), Some((0, 5)));
    }

    #[test]
    fn nested_and_missing_tags() {
        let r = subst(&[("a", "3"), ("b", "<a>_3"), ("c", "<b>-<HOST>-<b>")]).unwrap();
        assert_eq!(r["b"].as_deref(), Some("3_3"));
        assert_eq!(r["c"].as_deref(), Some("3_3-<HOST>-3_3"));
        // Innermost first: `<lt_<t>/x>` resolves `<t>`, then the composite.
        let r = subst(&[("t", "file"), ("lt_file/x", "F"), ("v", "<lt_<t>/x>")]).unwrap();
        assert_eq!(r["v"].as_deref(), Some("F"));
        // Later options feed earlier ones through repeated passes.
        let r = subst(&[("p", "<q>"), ("q", "<r>"), ("r", "end")]).unwrap();
        assert_eq!(r["p"].as_deref(), Some("end"));
    }

    #[test]
    fn fallback_lookup_and_ignore() {
        let mut asked = Vec::new();
        let ignore: HashSet<String> = ["blocktype".to_string()].into();
        let r = substitute_recursive_tags(
            &map(&[("x", "<known/y> <blocktype> <other>"), ("blocktype", "<x>")]),
            "",
            &ignore,
            &mut |t| {
                asked.push(t.to_string());
                Ok((t == "known/y").then(|| "Y".to_string()))
            },
        )
        .unwrap();
        assert_eq!(r["x"].as_deref(), Some("Y <blocktype> <other>"));
        assert_eq!(r["blocktype"].as_deref(), Some("<x>"));
        // No caching here: every pass asks again.
        assert_eq!(asked, vec!["known/y", "other", "other"]);
    }

    #[test]
    fn conditional_lookup() {
        let r = substitute_recursive_tags(
            &map(&[("cmd", "a"), ("cmd?family=inet6", "b"), ("x", "<cmd>")]),
            "family=inet6",
            &HashSet::new(),
            &mut |_| Ok(None),
        )
        .unwrap();
        assert_eq!(r["x"].as_deref(), Some("b"));
    }

    #[test]
    fn self_references() {
        let e = subst(&[("a", "x<a>")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "properties contain self referencing definitions and cannot be resolved, \
             fail tag: a, found: a in {}, value: x<a>"
        );
        let e = subst(&[("a", "<b>"), ("b", "<a>")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "properties contain self referencing definitions and cannot be resolved, \
             fail tag: a, found: a in {'b': 1}, value: <a>"
        );
        let e = subst(&[("a", "<b>"), ("b", "<c>"), ("c", "<d>"), ("d", "<b>")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "properties contain self referencing definitions and cannot be resolved, \
             fail tag: a, found: b in {'b': 26, 'c': 26, 'd': 26}, value: <b>"
        );
    }

    #[test]
    fn none_values_are_left_alone() {
        let mut m = map(&[("a", "<b>")]);
        m.insert("b".into(), None);
        let r = substitute_recursive_tags(&m, "", &HashSet::new(), &mut |_| Ok(None)).unwrap();
        assert_eq!(r["a"].as_deref(), Some("<b>"));
        assert_eq!(r["b"], None);
    }
}
