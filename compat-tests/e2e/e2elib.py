#!/usr/bin/env python3
"""Shared pieces of the end-to-end tests and of the daemon benchmark.

* Which programs run: env F2B_SERVER / F2B_CLIENT (or --server / --client),
  a path or the word `python` (Debian's /usr/bin/fail2ban-server and
  /usr/bin/fail2ban-client); by default ours, target/release/fail2ban-server
  and target/release/fail2ban-client, built with `cargo build --release`
  when missing.  Python's own client is always available as the reference
  the outputs are compared with (env F2B_PYTHON_CLIENT).
* A throw-away configuration directory: a copy of the stock tree (see
  compat-tests/refs.py) with the test's own `.local` files and filters.
* The server process: started in the foreground (`-xf -c DIR -s SOCK -p PID
  --logtarget LOG --loglevel LEVEL start`), optionally inside a network
  namespace, talked to over its socket (fail2ban's pickle protocol), stopped
  by the client or a signal, always killed by its own pid at the end.
* Network namespaces named f2b-<test>-<pid>, with veth pairs and
  documentation addresses only, deleted at the end whatever happens.
* A tiny check recorder printing `ok`/`FAIL` lines and the closing
  `N passed, N failed` line.

Python 3.9+ standard library only.
"""

import argparse
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(COMPAT)
sys.path.insert(0, COMPAT)
import refs  # noqa: E402

PY_SERVER = "/usr/bin/fail2ban-server"
PY_CLIENT = "/usr/bin/fail2ban-client"

END = b"<F2B_END_COMMAND>"
CLOSE = b"<F2B_CLOSE_COMMAND>"


def say(msg):
    """Prints one progress line at once (the output is read live in CI)."""
    print(msg, flush=True)


# ---------------------------------------------------------------- programs

def _our_binary(name):
    path = os.path.join(REPO_ROOT, "target", "release", name)
    if not os.path.exists(path):
        say("building %s (cargo build --release)" % path)
        subprocess.run(["cargo", "build", "--release", "--bin", "fail2ban-server",
                        "--bin", "fail2ban-client"], cwd=REPO_ROOT, check=False)
    if not os.path.exists(path):
        raise SystemExit("%s is missing and could not be built" % path)
    return path


def resolve_program(given, env_name, python_path, our_name):
    """The executable for a program: option, then env, then ours."""
    value = given or os.environ.get(env_name) or "ours"
    if value == "python":
        return python_path
    if value == "ours":
        return _our_binary(our_name)
    return value


def add_program_options(parser):
    """Adds --server/--client/--keep to a script's argument parser."""
    parser.add_argument("--server", help="server to test: a path, `python` or `ours` "
                        "(default env F2B_SERVER, else ours)")
    parser.add_argument("--client", help="client to use: a path, `python` or `ours` "
                        "(default env F2B_CLIENT, else ours)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directories (their paths are printed)")


def programs(args):
    """(server, client, python client) from parsed options."""
    server = resolve_program(args.server, "F2B_SERVER", PY_SERVER, "fail2ban-server")
    client = resolve_program(args.client, "F2B_CLIENT", PY_CLIENT, "fail2ban-client")
    py_client = os.environ.get("F2B_PYTHON_CLIENT") or PY_CLIENT
    for path in (server, client):
        if not os.access(path, os.X_OK):
            raise SystemExit("not executable: %s" % path)
    if not os.access(py_client, os.X_OK):
        say("note: Python's client %s is missing: outputs are not compared with it" % py_client)
        py_client = None
    return server, client, py_client


# ---------------------------------------------------------------- checks

class Checks:
    """Records named checks; prints each at once and a closing summary line."""

    def __init__(self, title):
        self.title = title
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            say("ok   - %s" % what)
        else:
            self.failed += 1
            self.failures.append(what)
            say("FAIL - %s%s" % (what, ("\n       " + detail.replace("\n", "\n       "))
                                 if detail else ""))
        return bool(cond)

    def equal(self, got, want, what):
        return self.check(got == want, what, "got:  %r\nwant: %r" % (got, want))

    def skip(self, what, why):
        self.skipped += 1
        say("SKIP - %s: %s" % (what, why))

    def finish(self):
        say("")
        if self.failures:
            say("%s: failed checks:" % self.title)
            for what in self.failures:
                say("  - " + what)
        line = "%s: %d passed, %d failed" % (self.title, self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        say(line)
        return 1 if self.failed else 0


def wait_for(pred, timeout, step=0.02):
    """Polls pred() until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


# ---------------------------------------------------------------- config

# A small filter for test logs: `<date> Login failed for <user> from <ip>`.
SIMPLE_FILTER = ("[Definition]\n"
                 "failregex = ^\\s*Login failed for \\S+ from <HOST>$\n"
                 "ignoreregex =\n")


def failure_line(ip, user="admin", when=None):
    """A line SIMPLE_FILTER counts as a failure of ip (current local time by default)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    return "%s Login failed for %s from %s\n" % (stamp, user, ip)


def append(path, text):
    """Appends text (str or bytes) to a file in one write."""
    data = text.encode() if isinstance(text, str) else text
    with open(path, "ab") as fh:
        fh.write(data)


def stock_config():
    """The stock configuration tree the tests copy (refs.stock_config())."""
    path = refs.stock_config()
    if not path:
        raise SystemExit("no stock fail2ban configuration found (see compat-tests/refs.py)")
    return path


class Workdir:
    """A temporary directory holding conf/, run/, logs and the stand-ins."""

    def __init__(self, name, keep=False):
        self.root = tempfile.mkdtemp(prefix="f2b-%s-" % name)
        self.keep = keep
        self.conf = os.path.join(self.root, "conf")
        self.run = os.path.join(self.root, "run")
        self.sock = os.path.join(self.run, "fail2ban.sock")
        self.pidfile = os.path.join(self.run, "fail2ban.pid")
        self.log = os.path.join(self.root, "fail2ban.log")
        self.bin = os.path.join(self.root, "bin")
        os.makedirs(self.bin)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def copy_stock(self):
        shutil.copytree(stock_config(), self.conf, symlinks=True)

    def copy_ours(self):
        """conf/ as a copy of our own configuration tree, etc/fail2ban."""
        shutil.copytree(os.path.join(REPO_ROOT, "etc", "fail2ban"), self.conf, symlinks=True)

    def write(self, relpath, text, mode=None):
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
        if mode is not None:
            os.chmod(path, mode)
        return path

    def write_conf(self, relpath, text):
        return self.write(os.path.join("conf", relpath), text)

    def fail2ban_local(self, dbfile="None", loglevel="INFO"):
        """conf/fail2ban.local pointing everything into this directory."""
        self.write_conf("fail2ban.local", "\n".join([
            "[DEFAULT]",
            "loglevel = %s" % loglevel,
            "logtarget = %s" % self.log,
            "socket = %s" % self.sock,
            "pidfile = %s" % self.pidfile,
            "dbfile = %s" % dbfile,
            ""]))

    def stub(self, name, body):
        """An executable stand-in in bin/ (first on the server's PATH)."""
        return self.write(os.path.join("bin", name), "#!/bin/sh\n" + body, 0o755)

    def cleanup(self):
        if self.keep:
            say("kept %s" % self.root)
            return
        shutil.rmtree(self.root, ignore_errors=True)


def read(path, mode="r"):
    """A file's content, or an empty value when it does not exist."""
    try:
        with open(path, mode) as fh:
            return fh.read()
    except FileNotFoundError:
        return b"" if "b" in mode else ""


# ---------------------------------------------------------------- protocol

def request(sock_path, cmd, timeout=5.0):
    """Sends one command over the server's socket; returns (code, value).

    The framing is fail2ban's: a pickled list of strings followed by the
    end marker; the reply is a pickled (code, value) pair with the same
    marker; the connection is closed with the close marker.
    """
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(sock_path)
        conn.sendall(pickle.dumps([str(c) for c in cmd], pickle.HIGHEST_PROTOCOL) + END)
        data = b""
        while data.rfind(END, -32) == -1:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the reply ended")
            data += chunk
        try:
            conn.sendall(CLOSE + END)
        except OSError:
            pass
        return pickle.loads(data[:data.rfind(END)])
    finally:
        conn.close()


def try_request(sock_path, cmd, timeout=2.0):
    """request() returning None instead of raising when the server is not there."""
    try:
        return request(sock_path, cmd, timeout)
    except (OSError, EOFError, pickle.UnpicklingError, ConnectionError):
        return None


def jail_names(sock_path):
    """The jail names the server's `status` lists, or None."""
    reply = try_request(sock_path, ["status"])
    if not reply or reply[0] != 0:
        return None
    for key, value in reply[1]:
        if key == "Jail list":
            return [j.strip() for j in value.split(",") if j.strip()]
    return None


def total_failed(sock_path, jail):
    """`Total failed` of a jail as its `status` reply gives it, or None."""
    reply = try_request(sock_path, ["status", jail])
    try:
        for key, value in reply[1]:
            if key == "Filter":
                for k, v in value:
                    if k == "Total failed":
                        return int(v)
    except (TypeError, ValueError, IndexError):
        pass
    return None


# ---------------------------------------------------------------- server

class Server:
    """One server process in the foreground, optionally inside a namespace."""

    def __init__(self, program, work, netns=None, wrapper=None, loglevel="INFO"):
        self.program = program
        self.work = work
        self.netns = netns
        self.wrapper = wrapper or []
        self.loglevel = loglevel
        self.proc = None
        self.started_at = None
        self.stdout = work.path("server.stdout")
        self.stderr = work.path("server.stderr")

    def argv(self):
        cmd = [self.program, "-xf", "-c", self.work.conf, "-s", self.work.sock,
               "-p", self.work.pidfile, "--logtarget", self.work.log,
               "--loglevel", self.loglevel, "start"]
        cmd = self.wrapper + cmd
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return cmd

    def start(self):
        env = dict(os.environ)
        path = env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        for extra in ("/usr/sbin", "/sbin"):
            if extra not in path.split(":"):
                path += ":" + extra
        env["PATH"] = self.work.bin + ":" + path
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env, cwd=self.work.root)
        return self.proc

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, jails, timeout=30.0):
        """Waits until `status` lists exactly `jails` (a set); returns the time taken or None."""
        want = set(jails)

        def ready():
            if not self.alive():
                return "dead"
            names = jail_names(self.work.sock)
            return "ready" if names is not None and set(names) == want else None
        state = wait_for(ready, timeout, 0.005)
        if state == "ready":
            return time.monotonic() - self.started_at
        return None

    def log_text(self):
        return read(self.work.log, "rb").decode("utf-8", "replace")

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=20.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """Ends the process (by its pid) if it is still running."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines=40):
        text = self.log_text().splitlines()[-lines:]
        err = read(self.stderr, "rb").decode("utf-8", "replace").splitlines()[-lines:]
        return "server log (tail):\n  %s\nserver stderr (tail):\n  %s" % (
            "\n  ".join(text), "\n  ".join(err))


def client(program, work, *args, timeout=30.0):
    """Runs a client command; returns (exit status, stdout, stderr)."""
    cmd = [program, "-c", work.conf, "-s", work.sock] + [str(a) for a in args]
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %s s" % timeout
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def rss_kib(pid):
    """VmRSS of a process in KiB (0 when it is gone)."""
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    text = read("/proc/%d/stat" % pid)
    if not text:
        return 0
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


# ---------------------------------------------------------------- netns

def netns_support():
    """None when namespaces can be made here, else the reason why not."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_SYS_ADMIN)"
    if not shutil.which("ip"):
        return "the `ip` command (iproute2) is missing"
    probe = "f2b-probe-%d" % os.getpid()
    res = subprocess.run(["ip", "netns", "add", probe], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        return "`ip netns add` failed: %s" % res.stdout.strip()
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


# The iptables commands the tests read with and the server runs: Debian's
# default variant, or the other one when only that works in a namespace.
IPTABLES = {"iptables": "iptables", "ip6tables": "ip6tables"}


def _probe(cmds):
    """None when every command succeeds in a throw-away namespace, else the failure."""
    probe = "f2b-probe-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", probe], check=False)
    try:
        for cmd in cmds:
            res = subprocess.run(["ip", "netns", "exec", probe] + cmd, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            if res.returncode != 0:
                return "`%s` fails inside a network namespace: %s" % (
                    " ".join(cmd), res.stdout.strip())
    finally:
        subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


def _iptables_probe(ipt, ip6t):
    missing = [p for p in (ipt, ip6t) if not shutil.which(p)]
    if missing:
        return "%s not installed (apt-get install iptables)" % ", ".join(missing)
    return _probe([[tool, "-w", verb, "f2b-probe"] for tool in (ipt, ip6t)
                   for verb in ("-N", "-X")])


def choose_iptables():
    """(None, what is used) when an iptables variant works in a namespace, else (reason, None).

    Debian's default (`iptables -V` says nf_tables or legacy) is used when it
    works; otherwise the other variant, through `iptables`/`ip6tables`
    stand-ins put first on the server's PATH (see iptables_stubs).
    """
    version = subprocess.run(["iptables", "-V"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True).stdout.strip() \
        if shutil.which("iptables") else "iptables missing"
    first = _iptables_probe("iptables", "ip6tables")
    if first is None:
        return None, "%s works in a namespace: used as it is" % version
    for variant in ("legacy", "nft"):
        ipt, ip6t = "iptables-" + variant, "ip6tables-" + variant
        if _iptables_probe(ipt, ip6t) is None:
            IPTABLES.update(iptables=ipt, ip6tables=ip6t)
            return None, "%s: %s; using %s instead" % (version, first, ipt)
    return first, None


def iptables_stubs(work):
    """Stand-ins for iptables/ip6tables in work.bin when another variant is used."""
    for name, real in IPTABLES.items():
        if name != real:
            work.stub(name, 'exec %s "$@"\n' % shutil.which(real))


def nft_support():
    """None when nft works in a namespace, else the reason."""
    if not shutil.which("nft"):
        return "nft is not installed (apt-get install nftables)"
    return _probe([["nft", "list", "ruleset"]])


def in_netns(ns, *cmd, check=True):
    """Runs a command inside a namespace; returns its output (stdout and stderr)."""
    res = subprocess.run(["ip", "netns", "exec", ns] + list(cmd), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if check and res.returncode != 0:
        raise RuntimeError("in %s: %s failed: %s" % (ns, " ".join(cmd), res.stdout.strip()))
    return res.stdout


class Namespaces:
    """Network namespaces f2b-<test>-<pid>-<role>, removed by close()."""

    def __init__(self, test):
        self.prefix = "f2b-%s-%d" % (test, os.getpid())
        self.names = []
        self.links = 0

    def add(self, role):
        name = "%s-%s" % (self.prefix, role)
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def run(self, ns, *cmd, check=True):
        return in_netns(ns, *cmd, check=check)

    def link(self, ns_a, addrs_a, ns_b, addrs_b):
        """A veth pair between two namespaces with the given addresses (CIDR)."""
        self.links += 1
        end_a = "f2bv%da" % self.links
        end_b = "f2bv%db" % self.links
        subprocess.run(["ip", "-n", ns_a, "link", "add", end_a, "type", "veth", "peer",
                        "name", end_b, "netns", ns_b], check=True)
        for ns, end, addrs in ((ns_a, end_a, addrs_a), (ns_b, end_b, addrs_b)):
            for addr in addrs:
                extra = ["nodad"] if ":" in addr else []
                subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", end] + extra,
                               check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", end, "up"], check=True)
        return end_a, end_b

    def close(self):
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], check=False)
        self.names = []


def install_signal_cleanup():
    """Turns SIGTERM/SIGHUP into SystemExit so that finally blocks run."""
    def handler(signum, _frame):
        raise SystemExit("stopped by signal %d" % signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def base_parser(description):
    parser = argparse.ArgumentParser(description=description)
    add_program_options(parser)
    return parser
