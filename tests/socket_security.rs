//! The server's socket as an attacker or a broken client meets it: the
//! socket is private to its owner (mode 0600), another user's client is
//! refused with the message Python's client prints, and malformed,
//! code-running, oversized, flooding or half-sent requests get an error or
//! a closed connection while the other clients (and the jails) go on being
//! served.

use fail2ban::protocol::{CLOSE, END, MAX_MESSAGE, Reply, decode_reply, encode_request, frame};
use fail2ban::pyvalue::PyValue;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PYTHON_CLIENT: &str = "/usr/bin/fail2ban-client";

/// Our server running on a throw-away configuration (one polling jail
/// with a recording action), in a temporary directory that other users
/// may enter (so that only the socket's own mode keeps them out).
struct Server {
    dir: PathBuf,
    child: Child,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("f2b-sock-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for d in ["bin", "run", "conf/filter.d", "conf/action.d"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        for d in [&dir, &dir.join("bin"), &dir.join("run")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let client = dir.join("bin/fail2ban-client");
        fs::copy(env!("CARGO_BIN_EXE_fail2ban-client"), &client).unwrap();
        fs::set_permissions(&client, fs::Permissions::from_mode(0o755)).unwrap();
        let t = dir.display();
        let files = [
            (
                "conf/fail2ban.conf",
                format!(
                    "[Definition]\nloglevel = INFO\nlogtarget = {t}/server.log\n\
                     socket = {t}/run/f2b.sock\npidfile = {t}/run/f2b.pid\ndbfile = :memory:\n"
                ),
            ),
            (
                "conf/jail.conf",
                format!(
                    "[j]\nenabled = true\nbackend = polling\nfilter = simple\n\
                     logpath = {t}/j.log\nmaxretry = 1\naction = record\n"
                ),
            ),
            (
                "conf/filter.d/simple.conf",
                "[Definition]\nfailregex = ^login failed from <HOST>$\n".to_string(),
            ),
            (
                "conf/action.d/record.conf",
                format!("[Definition]\nactionban = echo <ip> >> {t}/bans\n"),
            ),
            ("j.log", String::new()),
        ];
        for (p, text) in files {
            fs::write(dir.join(p), text).unwrap();
        }
        let child = Command::new(env!("CARGO_BIN_EXE_fail2ban-server"))
            .args(["-xf", "-c"])
            .arg(dir.join("conf"))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Server { dir, child };
        let t0 = Instant::now();
        while s.request(&["ping"]).is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("run/f2b.sock")
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(self.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// One request on a fresh connection; `None` when no reply came.
    fn request(&self, cmd: &[&str]) -> Option<Reply> {
        let mut s = UnixStream::connect(self.socket()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        send(&mut s, cmd);
        let r = read_reply(&mut s);
        let _ = s.write_all(&frame(CLOSE.to_vec()));
        r
    }

    /// Whether the server answers `ping` within `limit`.
    fn pongs_within(&self, limit: Duration) -> bool {
        let t0 = Instant::now();
        let ok =
            matches!(self.request(&["ping"]), Some(Reply::Ok(PyValue::Str(ref s))) if s == "pong");
        ok && t0.elapsed() < limit
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.request(&["stop"]);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn send(s: &mut UnixStream, cmd: &[&str]) {
    let args: Vec<PyValue> = cmd.iter().map(|a| PyValue::str(*a)).collect();
    s.write_all(&frame(encode_request(&args))).unwrap();
}

/// Reads up to the end marker and decodes the reply.
fn read_reply(s: &mut UnixStream) -> Option<Reply> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while !data.ends_with(END) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    decode_reply(&data[..data.len() - END.len()]).ok()
}

fn error_text(r: &Option<Reply>) -> String {
    match r {
        Some(Reply::Other(PyValue::Str(s))) => s.clone(),
        other => panic!("expected an `ERROR: ...` reply, got {other:?}"),
    }
}

/// A temporary system user, deleted on drop.
struct TempUser(String);

impl TempUser {
    fn create() -> Result<TempUser, String> {
        let name = format!("f2bt{}", std::process::id() % 100_000);
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .output()
            .map_err(|e| format!("useradd: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(TempUser(name))
    }

    /// Runs `prog args` as this user.
    fn run(&self, prog: &Path, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                "--reuid",
                &self.0,
                "--regid",
                &self.0,
                "--clear-groups",
                "--",
            ])
            .arg(prog)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).output();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_socket_is_private_and_other_users_are_refused() {
    let server = Server::start("private");
    let meta = fs::metadata(server.socket()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "socket mode");
    // SAFETY: geteuid has no preconditions.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() }, "socket owner");
    if !is_root() {
        eprintln!(
            "SKIP: not root, so no temporary user can be made; only the socket's mode was checked"
        );
        return;
    }
    let user = TempUser::create().expect("a temporary user");
    let sock = server.socket();
    let sock = sock.to_str().unwrap();
    let ours = user.run(
        &server.dir.join("bin/fail2ban-client"),
        &["-s", sock, "ping"],
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(
        ours.status.code(),
        Some(255),
        "our client as {}: {stderr}",
        user.0
    );
    assert!(
        stderr.contains(&format!(
            "Permission denied to socket: {sock}, (you must be root)"
        )),
        "our client's error: {stderr}"
    );
    if Path::new(PYTHON_CLIENT).exists() {
        let python = user.run(Path::new(PYTHON_CLIENT), &["-s", sock, "ping"]);
        let mask = |b: &[u8]| {
            let t = String::from_utf8_lossy(b);
            regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} fail2ban\S*\s+\[\d+\]")
                .unwrap()
                .replace_all(&t, "<prefix>")
                .into_owned()
        };
        assert_eq!(
            mask(&python.stderr),
            mask(&ours.stderr),
            "stderr as Python's client"
        );
        assert_eq!(python.stdout, ours.stdout, "stdout as Python's client");
        assert_eq!(
            python.status.code(),
            ours.status.code(),
            "exit status as Python's"
        );
    } else {
        eprintln!("SKIP: {PYTHON_CLIENT} missing: our client's refusal not compared with Python's");
    }
    // the refused attempts did not disturb the server
    assert!(server.pongs_within(Duration::from_secs(2)));
}

#[test]
fn bad_requests_get_errors_and_never_stall_the_server() {
    let server = Server::start("bad");
    // a client that sends half a request and then nothing
    let mut half = server.connect();
    let partial = frame(encode_request(&[PyValue::str("status")]));
    half.write_all(&partial[..partial.len() / 2]).unwrap();

    // garbage: an error reply, and the connection still serves
    let mut c = server.connect();
    c.write_all(b"\x80\x05not a pickle at all").unwrap();
    c.write_all(END).unwrap();
    assert!(error_text(&read_reply(&mut c)).starts_with("ERROR: "));
    // a pickle that would import and call code (os.system): refused
    c.write_all(b"\x80\x02cos\nsystem\nq\x00X\x05\x00\x00\x00touchq\x01\x85q\x02Rq\x03.")
        .unwrap();
    c.write_all(END).unwrap();
    assert!(error_text(&read_reply(&mut c)).starts_with("ERROR: "));
    send(&mut c, &["ping"]);
    assert!(
        matches!(read_reply(&mut c), Some(Reply::Ok(PyValue::Str(ref s))) if s == "pong"),
        "the connection serves after bad requests"
    );

    // a request larger than any real one: an error, then the connection ends
    let mut big = server.connect();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    while sent <= MAX_MESSAGE + (1 << 20) {
        match big.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.contains("ERROR") && rest.ends_with(END),
        "the oversized request gets an error before the connection closes"
    );

    // a client that floods requests and never reads the replies
    let mut flood = server.connect();
    flood.set_nonblocking(true).unwrap();
    let ping = frame(encode_request(&[PyValue::str("ping")]));
    let t0 = Instant::now();
    let mut sent = 0usize;
    while t0.elapsed() < Duration::from_secs(2) {
        match flood.write(&ping) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("flooding: {e}"),
        }
    }
    assert!(sent > 0);

    // the half-sent, oversized and flooding clients hold nobody up
    for _ in 0..5 {
        assert!(
            server.pongs_within(Duration::from_secs(1)),
            "ping answered within a second while bad clients are connected"
        );
    }
    fs::write(server.dir.join("j.log"), "login failed from 192.0.2.7\n").unwrap();
    let t0 = Instant::now();
    while !fs::read_to_string(server.dir.join("bans")).is_ok_and(|b| b == "192.0.2.7\n") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the jail bans while bad clients are connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // the half-sent request, completed, is answered
    half.write_all(&partial[partial.len() / 2..]).unwrap();
    assert!(matches!(read_reply(&mut half), Some(Reply::Ok(_))));
    let log = fs::read_to_string(server.dir.join("server.log")).unwrap();
    assert!(
        log.contains("PROTO-error"),
        "the bad requests are logged:\n{log}"
    );
}
