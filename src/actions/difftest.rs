//! Differential tests against the installed Python fail2ban: the same
//! action properties and the same sequence of operations go through
//! Python's `CommandAction` (with `executeCmd` replaced by a recorder that
//! answers from a script) and through [`Actions`] with a scripted backend;
//! the traces (every command, byte for byte, the `CommandAction` log
//! lines, the exceptions) must be identical.
//!
//! The corpus is every shipped action of fail2ban 1.0.2, read through our
//! config reader into the properties the `-d` stream carries, plus the
//! stock `action_*` shortcuts and crafted actions for every dynamic tag and
//! the check/repair paths.  The tickets carry matches full of shell
//! metacharacters, quotes, `$(...)`, backticks and newlines.

use super::command::Job;
use super::tests::ticket;
use super::*;
use crate::config::{JailsReader, ShareConfig};
use crate::failregex::Value;
use crate::ipaddr::CIDR_UNSPEC;
use crate::logging::ERROR;
use serde_json::{Value as Json, json};
use std::io::Write;
use std::process::{Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";
const NOW: f64 = 1_700_000_500.5;
const FLUSH_IMPOSSIBLE: &str = "Invariant check failed. Flush is impossible.";
/// The address part of our rendering of a function never called.
const UNCOMPUTED_AT: &str = " at 0x7f0a1c2e3f40>";

/// Runs each case with Python's CommandAction and prints the traces.
const SCRIPT: &str = r#"
import json, logging, re, sys
from fail2ban.server import action as actmod
from fail2ban.server.action import CommandAction
from fail2ban.server.actions import Actions
from fail2ban.server.ticket import BanTicket
from fail2ban.server.ipdns import IPAddr
from fail2ban.server.mytime import MyTime

spec = json.load(sys.stdin)
MyTime.setTime(spec['now'])
actmod.allowed_ipv6 = lambda: True
stats = spec['stats']
trace = []

FLUSH_IMPOSSIBLE = 'Invariant check failed. Flush is impossible.'
class Rec(logging.Handler):
    def emit(self, r):
        m = r.getMessage()
        if r.name == 'fail2ban.CommandAction' and r.levelno >= logging.ERROR or \
           r.name == 'fail2ban.actions' and m == FLUSH_IMPOSSIBLE:
            trace.append(['log', r.levelno, r.name, m])
        elif r.name == 'fail2ban.actions' and r.levelno >= logging.ERROR:
            trace.append(['msg', re.sub(r' at 0x[0-9a-f]+>', ' at 0x>', m)])
root = logging.getLogger('fail2ban')
root.handlers = [Rec()]
root.setLevel(1)
root.propagate = False
actslog = logging.getLogger('fail2ban.actions')

results = []
def fake_exec(realCmd, timeout=60, **kw):
    if not realCmd:
        return True
    trace.append(['cmd', realCmd if isinstance(realCmd, str) else repr(realCmd)])
    return results.pop(0) if results else True
CommandAction.executeCmd = staticmethod(fake_exec)

class O: pass

def ticket(t):
    tk = BanTicket(t['fid'], t['time'], t['matches'])
    tk.setAttempt(t['failures'])
    if t['bantime'] is not None: tk.setBanTime(t['bantime'])
    tk.setBanCount(t['bancount'])
    tk.restored = t['restored']
    for k, v in t['data']:
        tk.setData(k, IPAddr(v) if k == 'ip' else v)
    return tk

def merged(m):
    if m is None: return None
    tk = BanTicket('x', 0, m['matches'])
    tk.setAttempt(m['failures'])
    return tk

def make_jail():
    j = O()
    j.name = spec['jail']
    j.__class__ = type('Jail', (O,), {'__repr__': lambda s: 'Jail(%r)' % s.name})
    acts = O()
    acts.banEpoch = 0
    acts.getBanTime = lambda: stats['bantime']
    acts.banManager = O()
    acts.banManager.size = lambda: stats['banned']
    acts.banManager.getBanTotal = lambda: stats['banned_total']
    acts._getActionInfo = lambda tk: Actions.ActionInfo(tk or BanTicket('', MyTime.time()), j)
    j.actions = acts
    j.filter = O()
    j.filter.failManager = O()
    j.filter.failManager.size = lambda: stats['found']
    j.filter.failManager.getFailTotal = lambda: stats['found_total']
    j.database = O()
    def getBansMerged(ip, jail=None):
        t = next((t for t in spec['tickets'] if str(ip) == t['ip']), None)
        return merged(t and t['merged_jail' if jail is not None else 'merged_all'])
    j.database.getBansMerged = getBansMerged
    return j

out = []
for case in spec['cases']:
    del trace[:]
    results[:] = case['results']
    jail = make_jail()
    a = CommandAction(jail, case['name'])
    for k, v in case['props']:
        setattr(a, k, v)
    for i, step in enumerate(case['steps']):
        op = step[0]
        ai = Actions.ActionInfo(ticket(spec['tickets'][step[1]]), jail) if len(step) > 1 else None
        try:
            if op == 'start': a.start()
            elif op == 'ban': a.ban(ai)
            elif op == 'reban': a.reban(ai)
            elif op == 'unban': a.unban(ai)
            elif op == 'prolong':
                if not a._prolongable: continue
                a.prolong(ai)
            elif op in ('flush', 'flush-stop'):
                try:
                    a.flush()
                except Exception as e:
                    actslog.error("Failed to flush bans in jail '%s' action '%s': %s", jail.name, case['name'], e)
                    def before():
                        if op == 'flush-stop' and not getattr(a, 'actionrepair_on_unban', None):
                            actslog.error('Invariant check failed. Flush is impossible.')
                            return False
                        return True
                    err = e
                    try:
                        a.consistencyCheck(before)
                    except Exception as e2:
                        err = e2
                    raise err
            elif op == 'stop': a.stop()
            elif op == 'reload': a.reload()
            elif op == 'check': a.consistencyCheck()
        except Exception as e:
            what = {'ban': 'ban', 'reban': 'reban', 'unban': 'unban', 'prolong': 'ban'}.get(op)
            if what:
                actslog.error("Failed to execute %s jail '%s' action '%s' info '%r': %s",
                              what, jail.name, case['name'], ai, e)
            elif op in ('start', 'stop'):
                actslog.error("Failed to %s jail '%s' action '%s': %s", op, jail.name, case['name'], e)
            elif op == 'check':
                actslog.error("[%s] unhandled error in actions thread: %s", jail.name, e)
            trace.append(['err', i, str(e)])
    out.append(list(trace))
json.dump(out, sys.stdout)
"#;

/// One action and what to do with it.
struct Case {
    name: String,
    props: Vec<(String, PyValue)>,
    steps: Vec<(&'static str, Option<usize>)>,
    results: Vec<bool>,
}

fn py_json(v: &PyValue) -> Json {
    match v {
        PyValue::Str(s) => json!(s),
        PyValue::Bool(b) => json!(b),
        PyValue::Int(i) => json!(i),
        PyValue::Float(f) => json!(f),
        PyValue::None => Json::Null,
        other => json!(other.to_py_str()),
    }
}

fn num_json(n: Num) -> Json {
    match n {
        Num::Int(i) => json!(i),
        Num::Float(f) => json!(f),
    }
}

fn merged_json(m: &Option<Merged>) -> Json {
    match m {
        Some(m) => json!({"matches": m.matches, "failures": m.failures}),
        None => Json::Null,
    }
}

/// The tickets of every scenario.
fn tickets() -> Vec<BanInfo> {
    let mut t4 = ticket(
        "192.0.2.7",
        &[
            "Jan  1 00:00:01 host sshd[1]: Failed password for invalid user $(touch /tmp/pwn) from 192.0.2.7",
            "quotes 'single' \"double\" `id` ; & | > < * ? ~ ^ [x] {y} #c \\ back",
            "tab\there\rcr",
        ],
    );
    t4.bancount = 2;
    t4.time = Num::Float(1_700_000_000.25);
    t4.data.set("user", Value::Str("root'; rm -rf / #".into()));
    t4.data.set("fport", Value::Str("22".into()));
    t4.merged_all = Some(Merged {
        matches: vec!["a;b".into(), "c".into()],
        failures: 7,
    });
    t4.merged_jail = Some(Merged {
        matches: vec!["c".into()],
        failures: 4,
    });
    let mut t6 = ticket("2001:db8::1", &["plain line"]);
    t6.time = Num::Int(1_700_000_100);
    t6.bantime = Some(Num::Int(3600));
    t6.restored = true;
    let mut traw = ticket("192.0.2.9", &[]);
    traw.ip = IpAddr::new("some-host", CIDR_UNSPEC).expect("raw id");
    traw.fid = "some-host".into();
    traw.bantime = Some(Num::Float(12.5));
    let mut tfid = ticket("198.51.100.9", &["user alice"]);
    tfid.fid = "alice".into();
    tfid.data.set("fid", Value::Str("alice".into()));
    tfid.data.set(
        "ip",
        Value::Ip(IpAddr::new("198.51.100.9", CIDR_UNSPEC).expect("ip")),
    );
    vec![t4, t6, traw, tfid]
}

fn ticket_json(t: &BanInfo) -> Json {
    let data: Vec<Json> = t
        .data
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Str(s) => json!(&**s),
                Value::Ip(ip) => json!(ip.ntoa()),
                other => panic!("unexpected test value {other:?}"),
            };
            json!([&**k, v])
        })
        .collect();
    json!({
        "ip": t.ip.ntoa(), "fid": t.fid, "time": num_json(t.time),
        "bantime": t.bantime.map(num_json), "bancount": t.bancount,
        "failures": t.failures, "matches": t.matches, "restored": t.restored,
        "data": data, "merged_all": merged_json(&t.merged_all),
        "merged_jail": merged_json(&t.merged_jail),
    })
}

fn stats() -> JailStats {
    JailStats {
        banned: 3,
        banned_total: 10,
        found: 2,
        found_total: 50,
        bantime: Num::Int(600),
    }
}

/// The full life of an action: start, bans of each kind of ticket,
/// prolong, reban, unbans, flush, check, reload, stop.
const LIFE: [(&str, Option<usize>); 15] = [
    ("start", None),
    ("ban", Some(0)),
    ("ban", Some(1)),
    ("ban", Some(2)),
    ("ban", Some(3)),
    ("prolong", Some(0)),
    ("reban", Some(0)),
    ("unban", Some(0)),
    ("unban", Some(1)),
    ("check", None),
    ("flush", None),
    ("unban", Some(3)),
    ("reload", None),
    ("stop", None),
    ("stop", None),
];

/// Runs the cases with our implementation: the trace of each.
fn ours(cases: &[Case], tickets: &[BanInfo]) -> Vec<Json> {
    cases
        .iter()
        .map(|case| {
            let mut a = Actions::scripted("j", case.results.clone());
            a.freeze_time(NOW);
            a.set_stats(stats());
            a.add_action(&case.name).expect("new action");
            for (k, v) in &case.props {
                a.set_property(&case.name, k, v.clone()).expect("property");
            }
            a.take_events();
            // Python numbers the errors by step, skipped prolongs included.
            let mut pushed = Vec::new();
            for (i, (op, t)) in case.steps.iter().enumerate() {
                let info = t.map(|i| Rc::new(tickets[i].clone()));
                let job = match *op {
                    "start" => Job::Start,
                    "ban" => Job::Ban(info.expect("ticket")),
                    "reban" => Job::Reban(info.expect("ticket")),
                    "unban" => Job::Unban(info.expect("ticket")),
                    "prolong" => {
                        if !a.slots[0].1.act.core.borrow().prolongable() {
                            continue;
                        }
                        Job::Prolong(info.expect("ticket"))
                    }
                    "flush" => Job::Flush { stop: false },
                    "flush-stop" => Job::Flush { stop: true },
                    "stop" => Job::Stop,
                    "reload" => Job::Reload,
                    "check" => Job::Check,
                    other => panic!("unknown step {other}"),
                };
                pushed.push(i);
                a.push_job(&case.name, job);
            }
            let mut trace = Vec::new();
            let mut done = 0;
            for e in a.take_events() {
                match e {
                    Event::Log(l) if l.logger == "test.exec" => {
                        trace.push(json!(["cmd", l.message]))
                    }
                    Event::Log(l)
                        if (l.logger == "fail2ban.CommandAction" && l.level >= ERROR)
                            || (l.logger == "fail2ban.actions"
                                && l.message == FLUSH_IMPOSSIBLE) =>
                    {
                        trace.push(json!(["log", l.level, l.logger, l.message]))
                    }
                    Event::Log(l) if l.logger == "fail2ban.actions" && l.level >= ERROR => {
                        let masked = l.message.replace(UNCOMPUTED_AT, " at 0x>");
                        trace.push(json!(["msg", masked]))
                    }
                    Event::Log(_) => {}
                    Event::Done(d) => {
                        if let Some(err) = d.error {
                            trace.push(json!(["err", pushed[done], err]));
                        }
                        done += 1;
                    }
                }
            }
            Json::Array(trace)
        })
        .collect()
}

fn python(cases: &[Case], tickets: &[BanInfo]) -> Option<Vec<Json>> {
    if !std::path::Path::new(PYTHON).exists() {
        eprintln!("skipped: {PYTHON} (with fail2ban) is not installed");
        return None;
    }
    let s = stats();
    let spec = json!({
        "now": NOW,
        "jail": "j",
        "stats": {"banned": s.banned, "banned_total": s.banned_total, "found": s.found,
                  "found_total": s.found_total, "bantime": num_json(s.bantime)},
        "tickets": tickets.iter().map(ticket_json).collect::<Vec<_>>(),
        "cases": cases.iter().map(|c| json!({
            "name": c.name,
            "props": c.props.iter().map(|(k, v)| json!([k, py_json(v)])).collect::<Vec<_>>(),
            "steps": c.steps.iter().map(|(op, t)| match t {
                Some(i) => json!([op, i]),
                None => json!([op]),
            }).collect::<Vec<_>>(),
            "results": c.results,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python");
    let input = spec.to_string();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("python output");
    writer.join().expect("writer").expect("write");
    assert!(out.status.success(), "python harness failed");
    let v: Json = serde_json::from_slice(&out.stdout).expect("json");
    Some(v.as_array().expect("list").clone())
}

/// Compares case by case and reports every difference; returns how many
/// trace entries of each kind (`cmd`, `log`, `err`) were compared.
fn compare(cases: &[Case]) -> [usize; 3] {
    let tickets = tickets();
    let Some(theirs) = python(cases, &tickets) else {
        return [0; 3];
    };
    let ours = ours(cases, &tickets);
    assert_eq!(theirs.len(), cases.len());
    let mut bad = 0;
    let mut counts = [0; 3];
    for ((case, o), p) in cases.iter().zip(&ours).zip(&theirs) {
        if o != p {
            bad += 1;
            eprintln!("== {}\nours:   {o:#}\npython: {p:#}", case.name);
        }
        for entry in o.as_array().into_iter().flatten() {
            match entry[0].as_str() {
                Some("cmd") => counts[0] += 1,
                Some("log" | "msg") => counts[1] += 1,
                _ => counts[2] += 1,
            }
        }
    }
    assert_eq!(bad, 0, "{bad} of {} cases differ", cases.len());
    eprintln!(
        "{} cases: {} commands, {} log lines, {} errors identical",
        cases.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    counts
}

/// The actions of the shipped configuration: one jail per action file,
/// plus the stock `action_*` shortcuts, read by our config reader.
fn shipped_cases(config: &std::path::Path) -> Vec<Case> {
    let dir = std::env::temp_dir().join(format!("f2b-actions-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for entry in std::fs::read_dir(config).expect("config tree") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name != "jail.d" {
            std::os::unix::fs::symlink(entry.path(), dir.join(&name)).expect("symlink");
        }
    }
    let mut local = String::from(
        "[DEFAULT]\ncfemail = cf@example.com\ncfapikey = cf-key\nblocklist_de_apikey = bl-key\n\n",
    );
    let mut files: Vec<String> = std::fs::read_dir(config.join("action.d"))
        .expect("action.d")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".conf").map(str::to_string))
        .collect();
    files.sort();
    let mut jails: Vec<(String, String)> = files
        .iter()
        .map(|f| (format!("t-{f}"), f.clone()))
        .collect();
    for (i, a) in [
        "%(action_)s",
        "%(action_mw)s",
        "%(action_mwl)s",
        "%(action_xarf)s",
        "%(action_cf_mwl)s",
        "%(action_blocklist_de)s",
        "%(action_abuseipdb)s",
        "iptables-multiport[name=SSH, port=\"ssh,http\", protocol=tcp]",
        "nftables[type=allports, blocktype=drop]",
        "sendmail-whois-ipjailmatches[name=X, dest=root@localhost, sender=f2b@x]",
    ]
    .iter()
    .enumerate()
    {
        jails.push((format!("t-stock{i}"), a.to_string()));
    }
    for (jail, action) in &jails {
        local.push_str(&format!(
            "[{jail}]\nenabled = true\nfilter =\nbackend = polling\nlogpath = /dev/null\naction = {action}\n\n"
        ));
    }
    std::fs::write(dir.join("jail.local"), local).expect("jail.local");
    let mut reader = JailsReader::new(dir.to_str(), ShareConfig::new(), false);
    assert!(reader.read().expect("read jails"));
    reader.get_options(None, true).expect("jail options");
    let stream = reader.convert(true).expect("stream");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cases: Vec<Case> = Vec::new();
    for cmd in &stream {
        let PyValue::List(items) = cmd else { continue };
        let words: Vec<String> = items.iter().take(4).map(PyValue::to_py_str).collect();
        if words.len() < 4 || !words[1].starts_with("t-") {
            continue;
        }
        let key = format!("{}/{}", words[1], words.get(3).cloned().unwrap_or_default());
        match (words[0].as_str(), words[2].as_str()) {
            ("set", "addaction") => cases.push(Case {
                name: key,
                props: Vec::new(),
                steps: LIFE.to_vec(),
                results: Vec::new(),
            }),
            ("multi-set", "action") => {
                let case = cases.iter_mut().find(|c| c.name == key).expect("added");
                let Some(PyValue::List(pairs)) = items.get(4) else {
                    continue;
                };
                for p in pairs {
                    if let PyValue::List(kv) = p {
                        case.props.push((kv[0].to_py_str(), kv[1].clone()));
                    }
                }
            }
            ("set", "action") => {
                let case = cases.iter_mut().find(|c| c.name == key).expect("added");
                case.props.push((items[4].to_py_str(), items[5].clone()));
            }
            _ => {}
        }
    }
    cases
}

fn props(pairs: &[(&str, &str)]) -> Vec<(String, PyValue)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), PyValue::str(*v)))
        .collect()
}

#[test]
fn shipped_actions_build_the_same_commands() {
    let Some(config) = crate::testrefs::path(crate::testrefs::Ref::Config102) else {
        return;
    };
    let cases = shipped_cases(&config);
    assert!(cases.len() >= 70, "only {} actions read", cases.len());
    let [cmds, _, _] = compare(&cases);
    assert!(cmds == 0 || cmds > 500, "only {cmds} commands");
}

#[test]
fn every_tag_and_escape_matches() {
    let all = "<ip> <family> <ip-rev> <ip-host> <fid> <failures> <time> <bantime> <bancount> \
               <matches> <restored> <F-*> <ipmatches> <ipjailmatches> <ipfailures> \
               <ipjailfailures> <raw-ticket> <jail.banned> <jail.banned_total> <jail.found> \
               <jail.found_total> <F-USER> <F-ID> <F-PORT> <F-IP> <F-MATCHES> <F-FAILURES> \
               <F-MISSING> <F-user> <br> <sp> <sh-hostname> <fq-hostname> <unknown> <timeout> \
               <banEpoch> <ESCAPE_VN_CRE>";
    let cases = vec![
        Case {
            name: "all-tags".into(),
            props: props(&[
                ("actionstart", &format!("start {all}")),
                ("actionban", &format!("ban {all}")),
                ("actionunban", "unban <ip> <known> <chain>"),
                ("actionstop", "stop <family> <time> <ip> <F-X>"),
                ("known", "<chain>-<name>"),
                ("chain", "f2b-<name>"),
                ("chain?family=inet6", "f2b6-<name>"),
                ("name", "a;b"),
                ("timeout", "2m"),
                ("matches", "static $(x) 'q'\nline"),
            ]),
            steps: LIFE.to_vec(),
            results: Vec::new(),
        },
        Case {
            name: "all-tags failing".into(),
            props: props(&[
                ("actionstart", &format!("start {all}")),
                ("actionban", &format!("ban {all}")),
                ("actionunban", &format!("unban {all}")),
                ("actionprolong", &format!("prolong {all}")),
                ("actionreban", &format!("reban {all}")),
                ("actionstop", "stop <family>"),
                ("actioncheck", "check"),
            ]),
            steps: LIFE.to_vec(),
            results: vec![false; 60],
        },
        Case {
            name: "conditional".into(),
            props: props(&[
                ("actionstart", "start <family> <fw>"),
                ("actionstop", "stop <fw>"),
                ("actionflush", "flush <fw>"),
                ("actionban", "<fw> add <ip> <blocktype>"),
                ("actionunban", "<fw> del <ip>"),
                ("fw", "iptables"),
                ("fw?family=inet6", "ip6tables"),
                ("blocktype", "REJECT"),
                ("blocktype?family=inet6", "DROP"),
            ]),
            steps: LIFE.to_vec(),
            results: Vec::new(),
        },
        Case {
            name: "self-reference".into(),
            props: props(&[
                ("actionstart", "start <a>"),
                ("actionban", "ban <b>"),
                ("a", "x<b>"),
                ("b", "<a>y"),
            ]),
            steps: LIFE.to_vec(),
            results: Vec::new(),
        },
    ];
    let [cmds, _, errs] = compare(&cases);
    assert!(
        cmds == 0 || (cmds > 20 && errs > 5),
        "{cmds} commands, {errs} errors"
    );
}

#[test]
fn failures_check_and_repair_follow_fail2ban() {
    let base = [
        ("actionstart", "start <family>"),
        ("actionstop", "stop <family>"),
        ("actionban", "ban <ip>"),
        ("actionunban", "unban <ip>"),
        ("actioncheck", "check <family>"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut p: Vec<(&str, &str)> = base.to_vec();
        p.extend_from_slice(extra);
        props(&p)
    };
    let v4 = [
        ("start", None),
        ("ban", Some(0)),
        ("unban", Some(0)),
        ("stop", None),
    ];
    let mut cases = Vec::new();
    type Props = Vec<(&'static str, &'static str)>;
    let scenarios: Vec<(&str, Props, Vec<bool>)> = vec![
        (
            "ban ok after repair",
            vec![("actionrepair", "repair")],
            vec![true, false, false, true, true, true],
        ),
        (
            "repair fails",
            vec![("actionrepair", "repair")],
            vec![true, false, false, false],
        ),
        (
            "check fails again",
            vec![("actionrepair", "repair")],
            vec![true, false, false, true, false],
        ),
        (
            "stop and start",
            vec![],
            vec![true, false, false, true, true, true, true],
        ),
        (
            "restart fails",
            vec![],
            vec![true, false, false, true, false],
        ),
        (
            "check ok, retry fails",
            vec![],
            vec![true, false, true, false],
        ),
        ("unban impossible", vec![], vec![true, true, false, false]),
        (
            "unban repaired",
            vec![("actionrepair_on_unban", "1")],
            vec![true, true, false, false, true, true, true, true],
        ),
        (
            "no check: ban twice",
            vec![("actioncheck", "")],
            vec![true, false, false],
        ),
        (
            "conditional on demand",
            vec![("x?family=inet6", "6")],
            vec![false, true, true],
        ),
        (
            "conditional repair",
            vec![("x?family=inet6", "6")],
            vec![true, false, false, true, true, true, true],
        ),
    ];
    for (name, extra, results) in scenarios {
        cases.push(Case {
            name: name.into(),
            props: with(&extra),
            steps: v4.to_vec(),
            results,
        });
    }
    let flushing = [("actionflush", "flush <family>")];
    for (name, stop, results) in [
        (
            "flush fails, check ok",
            false,
            vec![true, true, false, true],
        ),
        (
            "flush fails, repaired",
            false,
            vec![true, true, false, false, true, true, true, true],
        ),
        ("flush fails at stop", true, vec![true, true, false, false]),
    ] {
        cases.push(Case {
            name: name.into(),
            props: with(&flushing),
            steps: vec![
                ("start", None),
                ("ban", Some(0)),
                (if stop { "flush-stop" } else { "flush" }, None),
                ("check", None),
                ("stop", None),
            ],
            results,
        });
    }
    cases.push(Case {
        name: "mixed families and raw ids".into(),
        props: with(&[("x?family=inet6", "6"), ("actionrepair", "repair <family>")]),
        steps: vec![
            ("ban", Some(2)),
            ("ban", Some(0)),
            ("ban", Some(1)),
            ("check", None),
            ("unban", Some(2)),
            ("flush", None),
            ("stop", None),
        ],
        results: vec![
            true, true, false, false, true, true, true, true, true, false,
        ],
    });
    let [cmds, logs, errs] = compare(&cases);
    assert!(
        cmds == 0 || (cmds > 80 && logs > 10 && errs > 5),
        "{cmds} {logs} {errs}"
    );
}

#[test]
fn time_expressions_evaluate_as_python() {
    let inputs = [
        "60",
        " 60 ",
        "1m",
        "1h 30m",
        "1d12h",
        "0.5",
        "1mo",
        "2*3",
        "1y-6mo",
        "10 20",
        "1 2 3",
        "3600/7",
        "7//2",
        "-7//2",
        "7%-3",
        "2**3",
        "2**-1",
        "-5",
        "1e2",
        "1e+2",
        "1.",
        ".5",
        "abc",
        "",
        "1 d",
        "1D",
        "1dd",
        "1days",
        "1dax",
        "(1+2)*3m",
        "5 %2",
        "1w2d",
        "1_0",
        "010",
        "00",
        "1 h 30 m",
        "2 weeks",
        "1 month",
        "3 Years",
        "1sec",
        "1se",
        "2 minutes",
        "1 hh",
        "1/0",
        "1.5h",
        "(1",
        "1)",
        "1h-",
        "4wee",
        "1d_",
        "3 MiN",
    ];
    if !std::path::Path::new(PYTHON).exists() {
        eprintln!("skipped: {PYTHON} (with fail2ban) is not installed");
        return;
    }
    let script = "import json, sys\nfrom fail2ban.server.mytime import MyTime\n\
        for s in json.load(sys.stdin):\n    try: print(repr(MyTime.str2seconds(s)))\n    \
        except Exception: print('ERR')\n";
    let mut child = Command::new(PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let input = json!(inputs.to_vec()).to_string();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python output");
    let theirs = String::from_utf8(out.stdout).expect("utf-8");
    let ours: Vec<String> = inputs
        .iter()
        .map(|s| match str2seconds(s) {
            Ok(n @ Num::Int(_)) => n.to_string(),
            Ok(Num::Float(f)) => float_repr(f),
            Err(_) => "ERR".to_string(),
        })
        .collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    for ((s, o), t) in inputs.iter().zip(&ours).zip(&theirs) {
        assert_eq!(o, t, "str2seconds({s:?})");
    }
    assert_eq!(theirs.len(), inputs.len());
}
