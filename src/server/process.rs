//! Starting the server process: daemon mode, pidfile, socket, logging,
//! signals, and the configuration push.
//!
//! As fail2ban's `Server.start` and `Fail2banServer.start`: a server not
//! started by the client (`fail2ban-server -xf start`, Debian's unit) reads
//! the configuration itself and refuses to start when a server answers on
//! the socket, or when the socket exists without `-x`; `--async` (the
//! client's start) reads nothing.  The last directory level of the pidfile
//! and socket paths is created when missing, so a reboot that emptied
//! `/var/run` does not keep the daemon from starting (fail2ban created it
//! too, but failed silently when the socket's directory vanished later).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use crate::pyvalue::PyValue;
use crate::server::{Server, SignalPipe};

const LOG_SERVER: &str = "fail2ban.server";

/// How the server was asked to start.
#[derive(Debug, Clone)]
pub struct StartConf {
    pub conf_dir: String,
    pub socket: String,
    pub pidfile: String,
    /// `-x`: take over an existing socket file.
    pub force: bool,
    /// `-b`: detach into the background (daemon).
    pub background: bool,
    /// `--async`: started by the client, which sends the configuration.
    pub nonsync: bool,
    pub loglevel: String,
    pub logtarget: String,
    pub syslogsocket: String,
    pub pname: String,
}

/// Whether a server answers `ping` on `socket`.
pub fn server_alive(socket: &str) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
    let req = crate::protocol::frame(crate::protocol::encode_request(&[PyValue::str("ping")]));
    use std::io::{Read, Write};
    if s.write_all(&req).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(crate::protocol::END) {
            return true;
        }
    }
    false
}

/// Creates the last directory level of `path` when missing (fail2ban's
/// `_make_file_path`: only for absolute paths; deeper missing levels are
/// an error).
pub(super) fn make_file_path(path: &str) -> std::io::Result<()> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Ok(());
    }
    if let Some(dir) = p.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Python's `str()` of an OS error on a path.
pub(super) fn os_error(e: &std::io::Error, path: &str) -> String {
    let msg = e.to_string();
    let text = msg.split(" (os error").next().unwrap_or(&msg).to_string();
    match e.raw_os_error() {
        Some(n) => format!("[Errno {n}] {text}: {}", crate::pyvalue::str_repr(path)),
        None => text,
    }
}

/// Detaches into the background as fail2ban's `__createDaemon` does
/// (SIGHUP ignored, double fork, new session, working directory `/`,
/// stdio on `/dev/null`; the umask is kept). `Ok(false)` in the process
/// that must exit, `Err` when no daemon could be made.
fn daemonize() -> Result<bool, String> {
    // SAFETY: single-threaded at this point; ignoring SIGHUP and reading
    // the umask (set back at once) have no other effect.
    let mask = unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        let mask = libc::umask(0);
        libc::umask(mask);
        mask
    };
    match daemonize::Daemonize::new().umask(mask).execute() {
        daemonize::Outcome::Parent(Ok(_)) => Ok(false),
        daemonize::Outcome::Parent(Err(e)) => Err(e.to_string()),
        daemonize::Outcome::Child(Ok(_)) => Ok(true),
        daemonize::Outcome::Child(Err(e)) => {
            crate::f2b_log!(ERROR, LOG_SERVER, "Daemon set-up incomplete: {e}");
            Ok(true)
        }
    }
}

/// Reads the whole configuration for a server that configures itself;
/// `None` (after logging why) when it cannot be used.
pub fn read_configuration(conf: &StartConf) -> Option<Vec<PyValue>> {
    let mut c = crate::config::Configurator::new(Some(&conf.conf_dir), false);
    let mut main_opts = crate::config::Vars::new();
    main_opts.insert("loglevel".into(), PyValue::Str(conf.loglevel.clone()));
    main_opts.insert("logtarget".into(), PyValue::Str(conf.logtarget.clone()));
    main_opts.insert(
        "syslogsocket".into(),
        PyValue::Str(conf.syslogsocket.clone()),
    );
    main_opts.insert("socket".into(), PyValue::Str(conf.socket.clone()));
    main_opts.insert("pidfile".into(), PyValue::Str(conf.pidfile.clone()));
    match c.read_config(None, Some(&main_opts), true, false) {
        Ok(s) if s.ok => Some(s.stream),
        Ok(_) => None,
        Err(e) => {
            crate::f2b_log!(ERROR, "fail2ban", "Failed during configuration: {e}");
            None
        }
    }
}

/// Runs a server; returns the process exit status.
pub fn start(conf: &StartConf) -> i32 {
    let mut stream = None;
    if !conf.nonsync {
        if server_alive(&conf.socket) {
            crate::f2b_log!(ERROR, "fail2ban", "Server already running");
            return 255;
        }
        stream = read_configuration(conf);
        if stream.is_none() {
            crate::f2b_log!(ERROR, "fail2ban", "Async configuration of server failed");
            return 255;
        }
        if Path::new(&conf.socket).exists() && !conf.force {
            crate::f2b_log!(
                ERROR,
                "fail2ban",
                "Fail2ban seems to be in unexpected state (not running but the socket exists)"
            );
            return 255;
        }
    }
    // SAFETY: umask only changes this process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
    if conf.background {
        crate::f2b_log!(INFO, LOG_SERVER, "Starting in daemon mode");
        match daemonize() {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(e) => {
                crate::f2b_log!(ERROR, LOG_SERVER, "Could not create daemon {e}");
                return 255;
            }
        }
    }
    set_process_name(&conf.pname);
    let level = crate::logging::str2loglevel(&conf.loglevel).unwrap_or(crate::logging::INFO);
    crate::logging::set_level(level);
    let mut server = match Server::new() {
        Ok(s) => s,
        Err(e) => {
            crate::f2b_log!(ERROR, LOG_SERVER, "{e}");
            return 255;
        }
    };
    server.syslog_socket = conf.syslogsocket.clone();
    if let Err(e) = crate::logging::set_target(&conf.logtarget, &conf.syslogsocket, false) {
        crate::logging::init_stderr(level);
        crate::f2b_log!(ERROR, LOG_SERVER, "{e}");
    }
    server.log_target = conf.logtarget.clone();
    crate::f2b_log!(INFO, LOG_SERVER, "{}", "-".repeat(50));
    crate::f2b_log!(
        INFO,
        LOG_SERVER,
        "Starting Fail2ban v{}",
        crate::regextool::VERSION
    );
    if conf.background {
        crate::f2b_log!(INFO, LOG_SERVER, "Daemon started");
    }
    match SignalPipe::new() {
        Ok(s) => server.signals = Some(s),
        Err(e) => crate::f2b_log!(ERROR, LOG_SERVER, "Unable to install signal handlers: {e}"),
    }
    let pid_written = make_file_path(&conf.pidfile)
        .and_then(|()| std::fs::write(&conf.pidfile, format!("{}\n", std::process::id())));
    match pid_written {
        Ok(()) => server.pidfile = Some(conf.pidfile.clone()),
        Err(e) => crate::f2b_log!(
            ERROR,
            LOG_SERVER,
            "Unable to create PID file: {}",
            os_error(
                &e,
                Path::new(&conf.pidfile)
                    .parent()
                    .map_or("", |p| p.to_str().unwrap_or(""))
            )
        ),
    }
    if let Err(e) = make_file_path(&conf.socket) {
        let dir = Path::new(&conf.socket)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::f2b_log!(ERROR, LOG_SERVER, "{}", os_error(&e, &dir));
        server.begin_quit();
        server.shutdown();
        return 255;
    }
    if Path::new(&conf.socket).exists() {
        crate::f2b_log!(
            ERROR,
            "fail2ban.asyncserver",
            "Fail2ban seems to be already running"
        );
        if conf.force {
            crate::f2b_log!(
                WARNING,
                "fail2ban.asyncserver",
                "Forcing execution of the server"
            );
            let _ = std::fs::remove_file(&conf.socket);
        } else {
            crate::f2b_log!(
                ERROR,
                LOG_SERVER,
                "Could not start server: Server already running"
            );
            server.begin_quit();
            server.shutdown();
            return 255;
        }
    }
    let listener = match UnixListener::bind(&conf.socket) {
        Ok(l) => l,
        Err(e) => {
            crate::f2b_log!(
                ERROR,
                LOG_SERVER,
                "Could not start server: {}",
                os_error(&e, &conf.socket)
            );
            server.begin_quit();
            server.shutdown();
            return 255;
        }
    };
    let _ = std::fs::set_permissions(&conf.socket, std::fs::Permissions::from_mode(0o600));
    let _ = listener.set_nonblocking(true);
    super::set_cloexec(std::os::fd::AsRawFd::as_raw_fd(&listener));
    server.listener = Some(listener);
    server.socket_path = Some(conf.socket.clone());
    let mut status = 0;
    if let Some(stream) = stream {
        let cmd = vec![PyValue::str("server-stream"), PyValue::List(stream)];
        if server.proceed(&cmd).is_err() {
            crate::f2b_log!(ERROR, "fail2ban", "Async configuration of server failed");
            server.begin_quit();
            status = 255;
        } else if !conf.background {
            println!("Server ready");
        }
    }
    // give back to the system what reading the configuration used
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    server.run();
    status
}

/// Runs `fail2ban-server` with `argv` (program name first); returns the
/// exit status.  As fail2ban's: with no command or just `start` it runs a
/// server, with any other command it behaves as `fail2ban-client`.
pub fn main(argv: Vec<String>) -> i32 {
    let mut cli = crate::client::Client::new(argv.clone());
    match cli.init_cmdline() {
        Ok(crate::client::Init::Done(ok)) => return if ok { 0 } else { 255 },
        Ok(crate::client::Init::Continue) => {}
        Err(e) => {
            crate::f2b_log!(ERROR, "fail2ban", "{e}");
            return 255;
        }
    }
    let just_start = cli.args.is_empty() || (cli.args.len() == 1 && cli.args[0] == "start");
    if !just_start || cli.conf.interactive {
        return crate::client::main(argv);
    }
    let c = &cli.conf;
    let conf = StartConf {
        conf_dir: c.conf.clone(),
        socket: c
            .socket
            .clone()
            .unwrap_or_else(|| "/var/run/fail2ban/fail2ban.sock".into()),
        pidfile: c
            .pidfile
            .clone()
            .unwrap_or_else(|| "/var/run/fail2ban/fail2ban.pid".into()),
        force: c.force,
        background: c.background,
        nonsync: c.async_start,
        loglevel: c.loglevel.clone().unwrap_or_else(|| "INFO".into()),
        logtarget: c.logtarget.clone().unwrap_or_else(|| "STDOUT".into()),
        syslogsocket: c.syslogsocket.clone().unwrap_or_else(|| "auto".into()),
        pname: c.pname.clone().unwrap_or_else(|| "fail2ban-server".into()),
    };
    let code = start(&conf);
    if code != 0 {
        crate::f2b_log!(ERROR, "fail2ban", "Could not start fail2ban-server");
    }
    code
}

/// Names the process (`ps`, `top`): fail2ban's `--pname`.
fn set_process_name(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().take(15).collect();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}
