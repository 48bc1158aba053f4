//! The `data` column: a ban ticket's matches, failure count and captured
//! groups as the JSON text Python's `json.dumps(..., ensure_ascii=False)`
//! writes (separators `", "` and `": "`, only quotes, backslashes and
//! control characters escaped), stored as a UTF-8 BLOB, and read back into
//! a ticket.
//!
//! Written by hand rather than with `serde_json`'s printer: its compact
//! form has no spaces after separators and its pretty form adds newlines,
//! while a database shared with Python's fail2ban should hold the same
//! bytes Python writes.  Parsing goes through `serde_json` (order kept).
//!
//! One difference remains: fail2ban keeps the lines of a ticket's first
//! failure as `[prefix, date, rest]` triples (later ones as strings) and
//! stores them so; our tickets hold joined lines, stored as strings.  Both
//! programs read both forms (a triple is joined into its line).

use serde_json::{Map, Value};

use crate::dates::Timestamp;
use crate::failregex::{Groups, Value as GroupValue};
use crate::failures::Ticket;
use crate::ipaddr::{CIDR_UNSPEC, IpAddr};
use crate::pyvalue::{PyValue, json_string};

/// Python's `json.dumps(v, ensure_ascii=False)`.
pub fn dumps(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&float_text(f)),
            _ => out.push_str("null"),
        },
        Value::String(s) => json_string(out, s, false),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_string(out, k, false);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// A float as Python's `json` writes it (`repr`, or `NaN`/`Infinity`).
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        crate::pyvalue::float_repr(f)
    }
}

/// A captured group as fail2ban's JSON adapter stores it: strings and
/// numbers as such, tuples as arrays, addresses as their text, the
/// `users` set as the Python text of a list (`"['admin1']"`).
fn group_json(v: &GroupValue) -> Option<Value> {
    Some(match v {
        GroupValue::None => return None,
        GroupValue::Str(s) => Value::String(s.to_string()),
        GroupValue::Int(i) => Value::from(*i),
        GroupValue::Tuple(items) => Value::Array(items.iter().filter_map(group_json).collect()),
        GroupValue::Set(items) => Value::String(PyValue::str_list(items.iter()).repr()),
        GroupValue::Lines(lines) => Value::Array(
            lines
                .iter()
                .map(|l| {
                    let (a, b, c) = l.parts();
                    Value::Array(vec![a.into(), b.into(), c.into()])
                })
                .collect(),
        ),
        GroupValue::Ip(ip) => Value::String(ip.ntoa()),
    })
}

/// The `data` object of a ban: `matches` (the last `max_matches`; the key
/// is dropped when `max_matches` is 0 and there are matches), `failures`,
/// then the captured groups of the first failure.
pub fn ticket_data(ticket: &Ticket, max_matches: i64) -> Value {
    let mut map = Map::new();
    let matches = ticket.matches();
    if max_matches > 0 {
        let skip = matches.len().saturating_sub(max_matches as usize);
        map.insert(
            "matches".into(),
            Value::Array(matches[skip..].iter().map(|m| m.as_str().into()).collect()),
        );
    } else if matches.is_empty() {
        map.insert("matches".into(), Value::Array(Vec::new()));
    }
    map.insert("failures".into(), Value::from(ticket.attempts()));
    for (k, v) in ticket.groups().iter() {
        if let Some(j) = group_json(v) {
            map.insert(k.to_string(), j);
        }
    }
    Value::Object(map)
}

/// Reads a `data` column (BLOB or text); unreadable JSON gives an empty
/// object and fail2ban's error line.
pub fn loads(bytes: &[u8]) -> Map<String, Value> {
    let text = String::from_utf8_lossy(bytes);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m,
        Ok(_) => Map::new(),
        Err(e) => {
            crate::f2b_log!(
                ERROR,
                super::LOG_DB,
                "json loads failed: JSONDecodeError({})",
                crate::pyvalue::str_repr(&e.to_string())
            );
            Map::new()
        }
    }
}

/// One stored match as a line: arrays (the first match's
/// `[prefix, date, rest]`) are joined.
pub fn match_line(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().map(match_line).collect(),
        other => python_text(other),
    }
}

/// The stored matches of a `data` object.
pub fn matches_of(data: &Map<String, Value>) -> Vec<String> {
    match data.get("matches") {
        Some(Value::Array(items)) => items.iter().map(match_line).collect(),
        _ => Vec::new(),
    }
}

/// `data.get('failures', default)` as an integer.
pub fn failures_of(data: &Map<String, Value>, default: i64) -> i64 {
    match data.get("failures") {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(default),
        _ => default,
    }
}

/// What Python's `str()` shows of a value read from JSON.
fn python_text(v: &Value) -> String {
    to_py(v).to_py_str()
}

fn to_py(v: &Value) -> PyValue {
    match v {
        Value::Null => PyValue::None,
        Value::Bool(b) => PyValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => PyValue::Int(i),
            None => PyValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => PyValue::Str(s.clone()),
        Value::Array(items) => PyValue::List(items.iter().map(to_py).collect()),
        Value::Object(m) => PyValue::Dict(
            m.iter()
                .map(|(k, v)| (PyValue::Str(k.clone()), to_py(v)))
                .collect(),
        ),
    }
}

/// A ticket restored from a `bips` row (fail2ban's `FailTicket(ip,
/// timeofban, data=data)`): its matches (the last `max_matches`; none for
/// 0), failures, and the other keys as captured groups.
pub fn restored_ticket(
    id: IpAddr,
    timeofban: i64,
    data: &Map<String, Value>,
    max_matches: i64,
) -> Ticket {
    let mut matches = matches_of(data);
    if max_matches > 0 {
        let skip = matches.len().saturating_sub(max_matches as usize);
        matches.drain(..skip);
    } else {
        matches.clear();
    }
    let mut groups = Groups::new();
    for (k, v) in data {
        if k == "matches" || k == "failures" {
            continue;
        }
        let g = match v {
            Value::Null => continue,
            Value::String(s) if k == "ip" => match IpAddr::new(s, CIDR_UNSPEC) {
                Ok(ip) => GroupValue::Ip(ip),
                Err(_) => GroupValue::Str(s.as_str().into()),
            },
            Value::String(s) => GroupValue::Str(s.as_str().into()),
            Value::Number(n) if n.is_i64() => GroupValue::Int(n.as_i64().unwrap_or(0)),
            other => GroupValue::Str(python_text(other).into()),
        };
        groups.set(k, g);
    }
    let mut t = Ticket::failure(id, Timestamp::Int(timeofban), matches, groups);
    t.set_attempts(failures_of(data, 0));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_like_python() {
        let v: Value = serde_json::from_str(
            r#"{"matches": ["a \"q\" \\ é\u0001\t"], "failures": 3, "x": [1, 2.5, true, null], "e": {}}"#,
        )
        .unwrap();
        assert_eq!(
            dumps(&v),
            r#"{"matches": ["a \"q\" \\ é\u0001\t"], "failures": 3, "x": [1, 2.5, true, null], "e": {}}"#
        );
    }

    #[test]
    fn ticket_data_keeps_order_and_trims_matches() {
        let mut g = Groups::new();
        g.set("user", GroupValue::Str("admin".into()));
        g.set("users", GroupValue::Set(vec!["admin".into()]));
        g.set(
            "ip",
            GroupValue::Ip(IpAddr::new("192.0.2.1", CIDR_UNSPEC).unwrap()),
        );
        let mut t = Ticket::failure(
            IpAddr::new("192.0.2.1", CIDR_UNSPEC).unwrap(),
            Timestamp::Float(10.0),
            vec!["l1".into(), "l2".into(), "l3".into()],
            g,
        );
        t.set_attempts(3);
        assert_eq!(
            dumps(&ticket_data(&t, 2)),
            r#"{"matches": ["l2", "l3"], "failures": 3, "user": "admin", "users": "['admin']", "ip": "192.0.2.1"}"#
        );
        assert_eq!(
            dumps(&ticket_data(&t, 0)),
            r#"{"failures": 3, "user": "admin", "users": "['admin']", "ip": "192.0.2.1"}"#
        );
        let banip = Ticket::manual(
            IpAddr::new("192.0.2.9", CIDR_UNSPEC).unwrap(),
            Timestamp::Float(1.0),
        );
        assert_eq!(
            dumps(&ticket_data(&banip, 0)),
            r#"{"matches": [], "failures": 0}"#
        );
    }

    #[test]
    fn restore_joins_first_match_and_keeps_groups() {
        let data = loads(
            br#"{"matches": [["", "Nov 26 07:30:37", " host sshd: x"], "Nov 26 07:30:38 host sshd: y"], "failures": 2, "user": "bob", "ip": "192.0.2.3", "n": 4, "b": true}"#,
        );
        let t = restored_ticket(
            IpAddr::new("192.0.2.3", CIDR_UNSPEC).unwrap(),
            1000,
            &data,
            10,
        );
        assert_eq!(
            t.matches(),
            &[
                "Nov 26 07:30:37 host sshd: x".to_string(),
                "Nov 26 07:30:38 host sshd: y".to_string()
            ]
        );
        assert_eq!(t.attempts(), 2);
        assert_eq!(t.time(), Timestamp::Int(1000));
        assert_eq!(t.groups().get_str("user"), Some("bob"));
        assert_eq!(t.groups().get("n"), Some(&GroupValue::Int(4)));
        assert_eq!(t.groups().get_str("b"), Some("True"));
        assert!(matches!(t.groups().get("ip"), Some(GroupValue::Ip(_))));
        let one = restored_ticket(
            IpAddr::new("192.0.2.3", CIDR_UNSPEC).unwrap(),
            1000,
            &data,
            1,
        );
        assert_eq!(one.matches(), &["Nov 26 07:30:38 host sshd: y".to_string()]);
        let none = restored_ticket(
            IpAddr::new("192.0.2.3", CIDR_UNSPEC).unwrap(),
            1000,
            &data,
            0,
        );
        assert!(none.matches().is_empty());
    }

    #[test]
    fn unreadable_json_is_empty() {
        assert!(loads(b"{not json").is_empty());
        assert!(loads(b"[1, 2]").is_empty());
        assert_eq!(failures_of(&loads(b"{}"), 1), 1);
    }
}
