//! Our own configuration tree, `etc/fail2ban`, as the client reads it and
//! as the server acts on it.
//!
//! Every test works on a temporary copy of the tree whose
//! `paths-overrides.local` points the log paths of the shipped jails at
//! empty files in the temporary directory.  Checked:
//!
//! * `fail2ban-client -d` and `-t` succeed with every shipped jail enabled
//!   (and fail when a jail's log file is missing), and the Debian default
//!   enables sshd alone;
//! * the Asterisk guide's `jail.local` gives the expected commands (the ban
//!   command uses the chain `f2b-ASTERISK`, the mail command names the
//!   guide's recipient and sender);
//! * every action file is used by some jail, every tag left in its commands
//!   is a property of the action or one the server fills in at run time,
//!   and every command is valid shell once its tags are filled in, for IPv4
//!   and IPv6;
//! * Python's `fail2ban-client` reads the tree without a warning and prints
//!   the same stream, byte for byte (skipped, with a message, when Debian's
//!   fail2ban is not installed);
//! * our server runs the dummy action and the three sendmail actions of
//!   the tree for real (a stand-in `sendmail` and `whois`, no firewall, no
//!   root needed): the recorded bans and the mails' headers and contents.

use fail2ban::config::fail2ban::Configurator;
use fail2ban::pyvalue::PyValue;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON_CLIENT: &str = "/usr/bin/fail2ban-client";
const PYTHON: &str = "/usr/bin/python3";

/// The log files of the shipped jails: (path variable, file name).
const LOGS: [(&str, &str); 3] = [
    ("sshd_log", "auth.log"),
    ("asterisk_log", "messages"),
    ("fail2ban_log", "fail2ban.log"),
];

/// The Asterisk guide's jail, as an administrator writes it in jail.local.
const GUIDE: &str = "[DEFAULT]\n\
    ignoreip = 127.0.0.1/8 ::1 198.51.100.2 203.0.113.0/24\n\n\
    [sshd]\nenabled = false\n\n\
    [asterisk-iptables]\n\
    enabled  = true\n\
    filter   = asterisk\n\
    action   = iptables-allports[name=ASTERISK, protocol=all]\n\
    \x20          sendmail-whois[name=ASTERISK, dest=root, sender=fail2ban@example.org]\n\
    logpath  = /var/log/asterisk/messages\n\
    maxretry = 5\n\
    bantime  = 259200\n";

/// A temporary copy of etc/fail2ban (in `conf/`) with empty log files
/// (in `log/`), removed on drop.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("f2b-defconf-{name}-{}-{nanos}", std::process::id()));
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/fail2ban"),
            &dir.join("conf"),
        );
        fs::create_dir_all(dir.join("log")).unwrap();
        let mut overrides = String::from("[DEFAULT]\n");
        for (var, file) in LOGS {
            fs::write(dir.join("log").join(file), "").unwrap();
            overrides += &format!("{var} = {}/log/{file}\n", dir.display());
        }
        let tree = Tree { dir };
        tree.write("conf/paths-overrides.local", &overrides);
        tree
    }

    fn conf(&self) -> String {
        self.path("conf")
    }

    fn path(&self, rel: &str) -> String {
        self.dir.join(rel).to_string_lossy().into_owned()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// The command stream as our configuration reader builds it.
    fn stream(&self) -> Vec<PyValue> {
        let conf = self.conf();
        let read = Configurator::new(Some(&conf), false)
            .read_config(None, None, false, false)
            .unwrap_or_else(|e| panic!("reading {conf}: {e}"));
        assert!(read.ok, "jails with errors: {:?}", read.jail_errors);
        assert_eq!(read.jail_errors, vec![]);
        read.stream
    }

    /// Our client with `-c <conf>` and `args`.
    fn ours(&self, args: &[&str]) -> Outcome {
        run(Command::new(env!("CARGO_BIN_EXE_fail2ban-client"))
            .arg("-c")
            .arg(self.conf())
            .args(args))
    }

    /// Python's client with `-c <conf>` and `args`; `None` (said on
    /// stderr) when Debian's fail2ban is not installed.
    fn python(&self, args: &[&str]) -> Option<Outcome> {
        for need in [PYTHON_CLIENT, PYTHON] {
            if !Path::new(need).exists() {
                eprintln!("{need} is missing: Python's client is not compared (skipped)");
                return None;
            }
        }
        Some(run(Command::new(PYTHON)
            .arg(PYTHON_CLIENT)
            .arg("-c")
            .arg(self.conf())
            .args(args)))
    }

    /// Ours and Python's client print the same for `args` (log time
    /// stamps and process ids aside); returns ours.
    fn same_as_python(&self, args: &[&str]) -> Outcome {
        let ours = self.ours(args);
        if let Some(py) = self.python(args) {
            assert_eq!(
                masked(&ours),
                masked(&py),
                "ours (left) and Python's client for {args:?}"
            );
        }
        ours
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), to).unwrap();
        }
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// An outcome with the time stamps and process ids of log lines masked.
fn masked(o: &Outcome) -> Outcome {
    let stamp =
        regex::Regex::new(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (.*?)\[\d+\]:").unwrap();
    Outcome {
        code: o.code,
        stdout: o.stdout.clone(),
        stderr: stamp.replace_all(&o.stderr, "TIME $1[PID]:").into_owned(),
    }
}

fn run(cmd: &mut Command) -> Outcome {
    let out = cmd
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn s(v: &PyValue) -> &str {
    match v {
        PyValue::Str(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn items(v: &PyValue) -> &[PyValue] {
    match v {
        PyValue::List(l) => l,
        other => panic!("not a list: {other:?}"),
    }
}

/// The commands whose first words are `head`.
fn commands<'a>(stream: &'a [PyValue], head: &[&str]) -> Vec<&'a [PyValue]> {
    stream
        .iter()
        .map(items)
        .filter(|c| {
            c.len() >= head.len()
                && head
                    .iter()
                    .zip(c.iter())
                    .all(|(h, v)| matches!(v, PyValue::Str(s) if s == h))
        })
        .collect()
}

/// The jails the stream adds, in order.
fn added_jails(stream: &[PyValue]) -> Vec<String> {
    commands(stream, &["add"])
        .iter()
        .map(|c| s(&c[1]).to_string())
        .collect()
}

/// One action of a jail: its name and properties.
struct Action {
    jail: String,
    name: String,
    props: HashMap<String, String>,
}

fn actions(stream: &[PyValue]) -> Vec<Action> {
    commands(stream, &["multi-set"])
        .iter()
        .filter(|c| s(&c[2]) == "action")
        .map(|c| Action {
            jail: s(&c[1]).to_string(),
            name: s(&c[3]).to_string(),
            props: items(&c[4])
                .iter()
                .map(|pair| {
                    let pair = items(pair);
                    let value = match &pair[1] {
                        PyValue::Bool(b) => b.to_string(),
                        v => s(v).to_string(),
                    };
                    (s(&pair[0]).to_string(), value)
                })
                .collect(),
        })
        .collect()
}

fn action<'a>(all: &'a [Action], jail: &str, name: &str) -> &'a Action {
    all.iter()
        .find(|a| a.jail == jail && a.name == name)
        .unwrap_or_else(|| panic!("no action {name} in jail {jail}"))
}

/// `-d` output for a stream: one `repr` per line.
fn dump(stream: &[PyValue]) -> String {
    stream.iter().map(|c| c.repr() + "\n").collect()
}

/// `-d` (ours, equal to our reader's stream, and Python's) and `-t` both
/// succeed silently; returns the stream.
fn dump_and_test(tree: &Tree) -> Vec<PyValue> {
    let stream = tree.stream();
    let d = tree.same_as_python(&["-d"]);
    assert_eq!(
        (d.code, d.stderr.as_str()),
        (0, ""),
        "-d output:\n{}",
        d.stdout
    );
    assert_eq!(d.stdout, dump(&stream));
    let t = tree.same_as_python(&["-t"]);
    assert_eq!(
        t,
        Outcome {
            code: 0,
            stdout: "OK: configuration test is successful\n".into(),
            stderr: String::new(),
        }
    );
    stream
}

#[test]
fn every_shipped_jail_enabled_dumps_and_tests() {
    let tree = Tree::new("all");
    let local: String = ["sshd", "asterisk", "recidive"]
        .iter()
        .map(|j| format!("[{j}]\nenabled = true\n\n"))
        .collect();
    tree.write("conf/jail.local", &local);
    let stream = dump_and_test(&tree);
    assert_eq!(added_jails(&stream), ["sshd", "asterisk", "recidive"]);
    assert_eq!(commands(&stream, &["start"]).len(), 3, "one start per jail");
    for (jail, file) in [
        ("sshd", "auth.log"),
        ("asterisk", "messages"),
        ("recidive", "fail2ban.log"),
    ] {
        let logs: Vec<&str> = commands(&stream, &["set", jail, "addlogpath"])
            .iter()
            .map(|c| s(&c[3]))
            .collect();
        assert_eq!(logs, [tree.path(&format!("log/{file}"))], "{jail}");
    }
    let all = actions(&stream);
    let asterisk = action(&all, "asterisk", "iptables-multiport");
    assert_eq!(asterisk.props["protocol"], "tcp,udp");
    assert!(
        asterisk.props["actionstart"]
            .contains("-m multiport --dports 5060,5061,4569 -j f2b-asterisk"),
        "{}",
        asterisk.props["actionstart"]
    );
    let recidive = action(&all, "recidive", "iptables-allports");
    assert_eq!(recidive.props["protocol"], "all");
    assert_eq!(
        commands(&stream, &["set", "recidive", "bantime"])[0][3],
        PyValue::str("1w")
    );

    // the same test fails when a jail's log file is not there
    fs::remove_file(tree.path("log/messages")).unwrap();
    let t = tree.same_as_python(&["-t"]);
    assert_eq!(t.code, 255);
    assert!(
        t.stderr
            .contains("Have not found any log file for asterisk jail"),
        "{}",
        t.stderr
    );
}

#[test]
fn debian_default_enables_sshd_alone() {
    let tree = Tree::new("debian");
    let stream = dump_and_test(&tree);
    assert_eq!(added_jails(&stream), ["sshd"]);
    let all = actions(&stream);
    assert_eq!(all.len(), 1);
    let ban = action(&all, "sshd", "iptables-multiport");
    assert_eq!(
        ban.props["actionban"],
        "<iptables> -I f2b-sshd 1 -s <ip> -j <blocktype>"
    );
    assert_eq!(ban.props["port"], "ssh");
    assert_eq!(ban.props["iptables"], "iptables <lockingopt>");
    assert_eq!(ban.props["iptables?family=inet6"], "ip6tables <lockingopt>");
    assert_eq!(ban.props["lockingopt"], "-w");
}

#[test]
fn asterisk_guide_jail_local() {
    let tree = Tree::new("guide");
    let logpath = tree.path("log/messages");
    tree.write(
        "conf/jail.local",
        &GUIDE.replace("/var/log/asterisk/messages", &logpath),
    );
    let stream = dump_and_test(&tree);
    let jail = "asterisk-iptables";
    assert_eq!(added_jails(&stream), [jail]);
    let one = |opt: &str| -> Vec<PyValue> {
        let found = commands(&stream, &["set", jail, opt]);
        assert_eq!(found.len(), 1, "set {jail} {opt}");
        found[0][3..].to_vec()
    };
    assert_eq!(one("maxretry"), [PyValue::Int(5)]);
    assert_eq!(one("bantime"), [PyValue::str("259200")]);
    assert_eq!(
        one("addignoreip"),
        ["127.0.0.1/8", "::1", "198.51.100.2", "203.0.113.0/24"].map(PyValue::str)
    );
    assert_eq!(
        one("addlogpath"),
        [logpath.as_str(), "head"].map(PyValue::str)
    );
    let added: Vec<&str> = commands(&stream, &["set", jail, "addaction"])
        .iter()
        .map(|c| s(&c[3]))
        .collect();
    assert_eq!(
        added,
        ["iptables-allports-ASTERISK", "sendmail-whois-ASTERISK"]
    );

    let all = actions(&stream);
    let ipt = action(&all, jail, "iptables-allports-ASTERISK");
    assert_eq!(
        ipt.props["actionban"],
        "<iptables> -I f2b-ASTERISK 1 -s <ip> -j <blocktype>"
    );
    assert_eq!(
        ipt.props["actionunban"],
        "<iptables> -D f2b-ASTERISK -s <ip> -j <blocktype>"
    );
    assert!(
        ipt.props["actionstart"].contains("<iptables> -I INPUT -p $proto -j f2b-ASTERISK"),
        "{}",
        ipt.props["actionstart"]
    );
    assert!(ipt.props["actionstop"].ends_with("<iptables> -X f2b-ASTERISK"));
    assert_eq!(ipt.props["protocol"], "all");
    assert_eq!(ipt.props["name"], "ASTERISK");

    let mail = action(&all, jail, "sendmail-whois-ASTERISK");
    assert_eq!(mail.props["dest"], "root");
    assert_eq!(mail.props["sender"], "fail2ban@example.org");
    assert_eq!(mail.props["norestored"], "true");
    let ban = &mail.props["actionban"];
    for part in [
        "| /usr/sbin/sendmail -f \"fail2ban@example.org\" \"root\"",
        "\"Subject: [Fail2Ban] ASTERISK: banned <ip> from <fq-hostname>\"",
        "\"From: Fail2Ban <fail2ban@example.org>\"",
        "\"To: root\"",
        "whois <ip>",
    ] {
        assert!(ban.contains(part), "{part:?} not in {ban}");
    }
    assert!(mail.props["actionstart"].contains("started on <fq-hostname>"));
    assert!(mail.props["actionstop"].contains("stopped on <fq-hostname>"));
}

/// Dynamic tags: the server fills them in from the ban (or leaves the
/// host names to itself).
const RUN_TIME_TAGS: [&str; 18] = [
    "ip",
    "family",
    "fid",
    "failures",
    "time",
    "bantime",
    "bancount",
    "matches",
    "restored",
    "ipmatches",
    "ipjailmatches",
    "ipfailures",
    "ipjailfailures",
    "ip-rev",
    "ip-host",
    "fq-hostname",
    "sh-hostname",
    "br",
];

/// A command with every tag filled in: properties (the family's variant
/// first), then sample run-time values.  Also returns the tags that are
/// neither.
fn fill_in(cmd: &str, props: &HashMap<String, String>, family: &str) -> (String, BTreeSet<String>) {
    let tag = regex::Regex::new(r"<([^ <>]+)>").unwrap();
    let sample = |name: &str| -> Option<&str> {
        Some(match name {
            "ip" | "fid" => {
                if family == "inet6" {
                    "2001:db8::7"
                } else {
                    "192.0.2.7"
                }
            }
            "family" => family,
            "failures" | "bancount" | "ipfailures" | "ipjailfailures" => "5",
            "time" => "1795678238.0",
            "bantime" => "600",
            "restored" => "0",
            "fq-hostname" => "pbx.example.org",
            "sh-hostname" => "pbx",
            "br" => "\n",
            _ if RUN_TIME_TAGS.contains(&name) => "x",
            _ => return None,
        })
    };
    let mut unknown = BTreeSet::new();
    let mut text = cmd.to_string();
    for _ in 0..30 {
        let next = tag
            .replace_all(&text, |c: &regex::Captures| {
                let name = &c[1];
                let conditional = format!("{name}?family={family}");
                match props
                    .get(&conditional)
                    .or_else(|| props.get(name))
                    .map(String::as_str)
                    .or_else(|| sample(name))
                {
                    Some(v) => v.to_string(),
                    None => {
                        // "<fail2ban@example.org>" in a From: line is text
                        if !props.values().any(|v| v == name) {
                            unknown.insert(name.to_string());
                        }
                        c[0].to_string()
                    }
                }
            })
            .into_owned();
        if next == text {
            break;
        }
        text = next;
    }
    (text, unknown)
}

#[test]
fn every_action_file_is_used_and_complete() {
    let tree = Tree::new("actions");
    tree.write(
        "conf/jail.local",
        &format!(
            "[DEFAULT]\ndestemail = admin@example.org\nsender = fail2ban@example.org\n\n\
             [sshd]\nenabled = true\naction = %(action_mwl)s\n\n\
             [asterisk]\nenabled = true\nbanaction = nftables-multiport\naction = %(action_mw)s\n\n\
             [recidive]\nenabled = true\nbanaction_allports = nftables-allports\n\n\
             [other]\nenabled = true\nfilter = sshd\nlogpath = %(sshd_log)s\n\
             action = iptables[port=2222]\n\
             \x20        iptables-allports[protocol=all]\n\
             \x20        nftables[type=oneport, port=2222]\n\
             \x20        sendmail\n\
             \x20        dummy[target={}/dummy]\n",
            tree.path("log")
        ),
    );
    let stream = dump_and_test(&tree);
    let all = actions(&stream);

    let shipped: BTreeSet<String> = fs::read_dir(tree.dir.join("conf/action.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| !f.ends_with("-common.conf"))
        .filter_map(|f| f.strip_suffix(".conf").map(str::to_string))
        .collect();
    let used: BTreeSet<String> = all.iter().map(|a| a.name.clone()).collect();
    assert_eq!(used, shipped, "every action file is used once here");

    for a in &all {
        for (prop, cmd) in &a.props {
            if !prop.starts_with("action") {
                continue;
            }
            for family in ["inet4", "inet6"] {
                let (script, unknown) = fill_in(cmd, &a.props, family);
                assert!(
                    unknown.is_empty(),
                    "{}/{}: {prop} uses tags nothing fills in: {unknown:?}\n{cmd}",
                    a.jail,
                    a.name
                );
                let check = Command::new("/bin/sh")
                    .args(["-n", "-c", &script])
                    .output()
                    .unwrap();
                assert!(
                    check.status.success(),
                    "{}/{}: {prop} ({family}) is not valid shell: {}\n{script}",
                    a.jail,
                    a.name,
                    String::from_utf8_lossy(&check.stderr)
                );
            }
        }
    }
    let nft = action(&all, "other", "nftables");
    let (start, _) = fill_in(&nft.props["actionstart"], &nft.props, "inet6");
    assert!(
        start.contains("nft add set inet f2b-table addr6-set-other \"{ type ipv6_addr; }\""),
        "{start}"
    );
    assert!(
        start.contains("ip6 saddr @addr6-set-other reject"),
        "{start}"
    );
}

/// Our server on the tree, in the foreground, killed (by its pid) on drop.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The mails the stand-in sendmail stored, oldest first.
fn mails(dir: &str) -> Vec<String> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect()
}

fn mail_with<'a>(all: &'a [String], needles: &[&str]) -> Vec<&'a String> {
    all.iter()
        .filter(|m| needles.iter().all(|n| m.contains(n)))
        .collect()
}

/// A stored mail's sendmail arguments, header lines and body.
fn parse_mail(mail: &str) -> (String, Vec<String>, String) {
    let (args, rest) = mail.split_once('\n').unwrap();
    let (head, body) = rest
        .split_once("\n\n")
        .expect("an empty line ends the header");
    (
        args.to_string(),
        head.lines().map(str::to_string).collect(),
        body.to_string(),
    )
}

#[test]
fn dummy_and_mail_actions_at_work() {
    let tree = Tree::new("server");
    let mail_dir = tree.path("mail");
    fs::create_dir_all(&mail_dir).unwrap();
    let bin = tree.path("bin");
    for (name, body) in [
        (
            "sendmail",
            format!(
                "n=$(date +%s%N)\nout=\"{mail_dir}/$n-$$\"\n\
                 {{ printf 'ARGS: %s\\n' \"$*\"; cat; }} > \"$out.tmp\"\nmv \"$out.tmp\" \"$out.txt\"\n"
            ),
        ),
        (
            "whois",
            "printf 'whois stand-in for %s\\n' \"$*\"\n".to_string(),
        ),
    ] {
        let path = format!("{bin}/{name}");
        tree.write(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let t = tree.dir.display();
    tree.write(
        "conf/fail2ban.local",
        &format!(
            "[DEFAULT]\nlogtarget = {t}/server.log\nsocket = {t}/run/f2b.sock\n\
             pidfile = {t}/run/f2b.pid\ndbfile = :memory:\n"
        ),
    );
    fs::create_dir_all(tree.dir.join("run")).unwrap();
    tree.write(
        "conf/action.d/sendmail-common.local",
        &format!("[Init]\nsendmail = {bin}/sendmail\n"),
    );
    let dummy = tree.path("dummy.txt");
    tree.write(
        "conf/jail.local",
        &format!(
            "[sshd]\nenabled = false\n\n\
             [asterisk]\nenabled = true\nmaxretry = 3\n\
             action = dummy[target={dummy}]\n\
             \x20        sendmail[dest=admin@example.org, sender=fail2ban@example.org]\n\
             \x20        sendmail-whois[dest=admin@example.org, sender=fail2ban@example.org]\n\
             \x20        sendmail-whois-lines[dest=admin@example.org, sender=fail2ban@example.org, \
             grepmax=10, logpath=\"%(logpath)s\"]\n"
        ),
    );
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let _server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_fail2ban-server"))
            .args(["-xf", "-c", &tree.conf(), "start"])
            .env("PATH", &path)
            .current_dir(&tree.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let client = |args: &[&str]| tree.ours(args);
    wait_for("the jail", Duration::from_secs(20), || {
        (client(&["status", "asterisk"]).code == 0).then_some(())
    });
    let started = wait_for("three `started` mails", Duration::from_secs(10), || {
        let all = mails(&mail_dir);
        (mail_with(&all, &["started on"]).len() == 3).then_some(all)
    });
    assert_eq!(fs::read_to_string(&dummy).unwrap(), "");
    let (args, head, body) = parse_mail(&started[0]);
    assert_eq!(args, "ARGS: -f fail2ban@example.org admin@example.org");
    assert!(head[0].starts_with("Subject: [Fail2Ban] asterisk: started on "));
    assert!(body.contains("The jail asterisk on "), "{body}");

    let ip = "192.0.2.9";
    let lines: String = (0..3)
        .map(|n| {
            format!(
                "[{}] NOTICE[4242] chan_sip.c: Registration from '\"10{n}\" <sip:10{n}@192.0.2.1>' \
                 failed for '{ip}:5060' - Wrong password\n",
                chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
            )
        })
        .collect();
    fs::OpenOptions::new()
        .append(true)
        .open(tree.path("log/messages"))
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    wait_for("the ban in the dummy file", Duration::from_secs(20), || {
        (fs::read_to_string(&dummy).ok()? == format!("+{ip}\n")).then_some(())
    });
    let all = wait_for("three ban mails", Duration::from_secs(20), || {
        let all = mails(&mail_dir);
        (mail_with(&all, &[&format!("banned {ip} from ")]).len() == 3).then_some(all)
    });
    for mail in mail_with(&all, &[&format!("banned {ip} from ")]) {
        let (args, head, body) = parse_mail(mail);
        assert_eq!(args, "ARGS: -f fail2ban@example.org admin@example.org");
        assert_eq!(head.len(), 4, "{head:?}");
        let host = head[0]
            .strip_prefix(&format!("Subject: [Fail2Ban] asterisk: banned {ip} from "))
            .unwrap_or_else(|| panic!("{}", head[0]));
        assert!(!host.is_empty());
        let date = head[1].strip_prefix("Date: ").unwrap();
        assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
        assert_eq!(head[2], "From: Fail2Ban <fail2ban@example.org>");
        assert_eq!(head[3], "To: admin@example.org");
        assert!(
            body.starts_with(&format!(
                "The jail asterisk on {host} has banned {ip}\nafter 3 failures.\n"
            )),
            "{body}"
        );
    }
    let whois = mail_with(&all, &[&format!("whois stand-in for {ip}")]);
    assert_eq!(whois.len(), 2, "sendmail-whois and sendmail-whois-lines");
    let with_lines = mail_with(&all, &["Log lines with", "(the last 10 at most)"]);
    assert_eq!(with_lines.len(), 1);
    for line in lines.lines() {
        assert!(with_lines[0].contains(line), "{line} in {}", with_lines[0]);
    }

    assert_eq!(client(&["set", "asterisk", "unbanip", ip]).code, 0);
    wait_for(
        "the unban in the dummy file",
        Duration::from_secs(10),
        || (fs::read_to_string(&dummy).ok()? == format!("+{ip}\n-{ip}\n")).then_some(()),
    );
    let stop = client(&["stop"]);
    assert_eq!(
        (stop.code, stop.stdout.as_str()),
        (0, "Shutdown successful\n")
    );
    wait_for("the dummy file removed", Duration::from_secs(10), || {
        (!Path::new(&dummy).exists()).then_some(())
    });
    wait_for("three `stopped` mails", Duration::from_secs(10), || {
        (mail_with(&mails(&mail_dir), &["stopped on"]).len() == 3).then_some(())
    });
    let log = fs::read_to_string(tree.path("server.log")).unwrap();
    assert!(!log.contains(" ERROR "), "{log}");
}
