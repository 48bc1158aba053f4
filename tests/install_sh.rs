//! `packaging/install.sh` into temporary directories only (a staging
//! DESTDIR, or a prefix and sysconfdir inside a temporary directory):
//! what lands where with which mode, the service files' paths rewritten
//! for the prefix and configuration directory, an existing configuration
//! and logrotate snippet kept unless `--overwrite-config` (and `.local`
//! files kept even then), missing binaries refused, and the installed
//! client reading the installed tree.  Where systemd's tools are present,
//! `systemd-analyze verify` checks the installed unit and
//! `systemd-tmpfiles --root` creates the directories of the tmpfiles.d
//! entry inside the temporary directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PROGRAMS: [&str; 3] = ["fail2ban-server", "fail2ban-client", "fail2ban-regex"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory cargo built the binaries of this test run into.
fn built() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fail2ban-server"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("f2b-install-{name}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn install(args: &[&str]) -> Output {
    let out = Command::new("/bin/sh")
        .arg(repo().join("packaging/install.sh"))
        .args(args)
        .env_remove("DESTDIR")
        .env_remove("PREFIX")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "install.sh {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn install_ok(args: &[&str]) -> String {
    let out = install(args);
    assert!(out.status.success(), "install.sh {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn exec_lines(unit: &str) -> Vec<&str> {
    unit.lines().filter(|l| l.starts_with("Exec")).collect()
}

fn have(tool: &str) -> bool {
    let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists());
    if !found {
        eprintln!("{tool} is not installed: that check is skipped");
    }
    found
}

#[test]
fn staged_install_into_destdir() {
    let dest = TempDir::new("destdir");
    let from = built();
    let d = dest.0.to_str().unwrap();
    install_ok(&["--destdir", d, "--from", from.to_str().unwrap()]);

    for prog in PROGRAMS {
        let path = dest.path(&format!("usr/local/bin/{prog}"));
        assert_eq!(mode(&path), 0o755, "{prog}");
        assert!(
            fs::read(&path).unwrap() == fs::read(from.join(prog)).unwrap(),
            "{prog} is a copy of the built one"
        );
    }

    let ours = repo().join("etc/fail2ban");
    let conf = dest.path("etc/fail2ban");
    assert_eq!(files(&conf), files(&ours));
    for file in files(&ours) {
        assert_eq!(
            fs::read(conf.join(&file)).unwrap(),
            fs::read(ours.join(&file)).unwrap(),
            "{file}"
        );
        assert_eq!(mode(&conf.join(&file)), 0o644, "{file}");
    }
    assert!(conf.join("jail.d").is_dir() && conf.join("fail2ban.d").is_dir());

    let unit = dest.read("usr/local/lib/systemd/system/fail2ban.service");
    assert_eq!(
        exec_lines(&unit),
        [
            "ExecStart=/usr/local/bin/fail2ban-server -xf start",
            "ExecStop=/usr/local/bin/fail2ban-client stop",
            "ExecReload=/usr/local/bin/fail2ban-client reload",
        ]
    );
    assert!(unit.contains("\nRuntimeDirectory=fail2ban\n"));
    assert!(unit.contains("\nPIDFile=/run/fail2ban/fail2ban.pid\n"));
    let tmpfiles = dest.read("usr/local/lib/tmpfiles.d/fail2ban.conf");
    assert!(tmpfiles.contains("\nd /run/fail2ban "), "{tmpfiles}");
    let rotate = dest.read("etc/logrotate.d/fail2ban");
    assert!(rotate.starts_with("# ") && rotate.contains("\n/var/log/fail2ban.log {\n"));
    assert!(
        rotate.contains("\n        /usr/local/bin/fail2ban-client flushlogs >/dev/null || true\n"),
        "{rotate}"
    );
    // nothing else is written
    let mut all = files(&dest.0);
    all.retain(|f| !f.starts_with("etc/fail2ban/"));
    assert_eq!(
        all,
        [
            "etc/logrotate.d/fail2ban",
            "usr/local/bin/fail2ban-client",
            "usr/local/bin/fail2ban-regex",
            "usr/local/bin/fail2ban-server",
            "usr/local/lib/systemd/system/fail2ban.service",
            "usr/local/lib/tmpfiles.d/fail2ban.conf",
        ]
    );

    // the installed client reads the installed tree (sshd is enabled)
    let dump = Command::new(dest.path("usr/local/bin/fail2ban-client"))
        .arg("-c")
        .arg(&conf)
        .arg("-d")
        .output()
        .unwrap();
    assert!(dump.status.success());
    let stream = String::from_utf8(dump.stdout).unwrap();
    assert!(stream.contains("\n['add', 'sshd', 'auto']\n"), "{stream}");

    if have("systemd-tmpfiles") {
        let out = Command::new("systemd-tmpfiles")
            .arg(format!("--root={d}"))
            .arg("--create")
            .arg(dest.path("usr/local/lib/tmpfiles.d/fail2ban.conf"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(mode(&dest.path("run/fail2ban")), 0o755);
        assert_eq!(mode(&dest.path("var/lib/fail2ban")), 0o755);
    }
}

#[test]
fn existing_configuration_is_kept_unless_asked() {
    let dest = TempDir::new("keep");
    let d = dest.0.to_str().unwrap();
    let from = built();
    let args = ["--destdir", d, "--from", from.to_str().unwrap()];
    install_ok(&args);
    let jail_conf = dest.path("etc/fail2ban/jail.conf");
    let shipped = fs::read_to_string(&jail_conf).unwrap();
    let edited = shipped.clone() + "\n[mine]\nenabled = false\n";
    fs::write(&jail_conf, &edited).unwrap();
    fs::write(
        dest.path("etc/fail2ban/jail.local"),
        "[sshd]\nenabled = false\n",
    )
    .unwrap();
    fs::write(dest.path("etc/logrotate.d/fail2ban"), "# the admin's\n").unwrap();

    let out = install_ok(&args);
    assert!(out.contains("exists: kept as it is"), "{out}");
    assert_eq!(fs::read_to_string(&jail_conf).unwrap(), edited);
    assert_eq!(dest.read("etc/logrotate.d/fail2ban"), "# the admin's\n");

    let mut overwrite = args.to_vec();
    overwrite.push("--overwrite-config");
    install_ok(&overwrite);
    assert_eq!(fs::read_to_string(&jail_conf).unwrap(), shipped);
    assert_eq!(
        dest.read("etc/fail2ban/jail.local"),
        "[sshd]\nenabled = false\n"
    );
    assert!(dest.read("etc/logrotate.d/fail2ban").contains("flushlogs"));

    // a tree without jail.conf but with fail2ban.conf is a configuration too
    let other = TempDir::new("keep2");
    fs::create_dir_all(other.path("etc/fail2ban")).unwrap();
    fs::write(other.path("etc/fail2ban/fail2ban.conf"), "[Definition]\n").unwrap();
    install_ok(&[
        "--destdir",
        other.0.to_str().unwrap(),
        "--from",
        from.to_str().unwrap(),
    ]);
    assert!(!other.path("etc/fail2ban/jail.conf").exists());
}

#[test]
fn prefix_and_sysconfdir_install() {
    let root = TempDir::new("prefix");
    let prefix = root.path("usr");
    let etc = root.path("etc");
    let (p, e) = (prefix.to_str().unwrap(), etc.to_str().unwrap());
    install_ok(&[
        "--prefix",
        p,
        "--sysconfdir",
        e,
        "--from",
        built().to_str().unwrap(),
    ]);
    let unit_path = prefix.join("lib/systemd/system/fail2ban.service");
    let unit = fs::read_to_string(&unit_path).unwrap();
    assert_eq!(
        exec_lines(&unit),
        [
            format!("ExecStart={p}/bin/fail2ban-server -c {e}/fail2ban -xf start"),
            format!("ExecStop={p}/bin/fail2ban-client -c {e}/fail2ban stop"),
            format!("ExecReload={p}/bin/fail2ban-client -c {e}/fail2ban reload"),
        ]
    );
    assert!(
        fs::read_to_string(etc.join("logrotate.d/fail2ban"))
            .unwrap()
            .contains(&format!(
                "{p}/bin/fail2ban-client -c {e}/fail2ban flushlogs"
            ))
    );
    assert!(etc.join("fail2ban/jail.conf").exists());
    if have("systemd-analyze") {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // --prefix /usr gives the unit as it is in packaging/
    let usr = TempDir::new("usr");
    install_ok(&[
        "--destdir",
        usr.0.to_str().unwrap(),
        "--prefix",
        "/usr",
        "--from",
        built().to_str().unwrap(),
    ]);
    assert_eq!(
        usr.read("usr/lib/systemd/system/fail2ban.service"),
        fs::read_to_string(repo().join("packaging/fail2ban.service")).unwrap()
    );
    assert_eq!(
        usr.read("etc/logrotate.d/fail2ban"),
        fs::read_to_string(repo().join("packaging/fail2ban.logrotate")).unwrap()
    );
}

#[test]
fn refusals() {
    let dest = TempDir::new("refuse");
    let d = dest.0.to_str().unwrap();
    let empty = TempDir::new("nobin");
    let out = install(&["--destdir", d, "--from", empty.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo build --release"));
    assert_eq!(files(&dest.0), Vec::<String>::new(), "nothing installed");

    let out = install(&["--destdir", d, "--prefix", "usr/local"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("an absolute path is needed"));
    let out = install(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite-config"));
    assert_eq!(files(&dest.0), Vec::<String>::new(), "nothing installed");
}
