#!/usr/bin/env python3
"""End to end: bad input does not stop the server or the other jails.

No network namespace: every jail bans through a recording action
(`echo <ip> >> <file>`), and one jail, `control`, is used after every bad
event to show that the server still bans (a fresh address appended to its
log must be recorded within a few seconds).

Part 1, one server meeting bad input while it runs:
  vanish      the jail's log is deleted: a message names it (at loglevel MSG,
              the level this server runs at, as fail2ban's `Log absence
              detected`); once the file is back, its failures are banned again;
  unreadable  the jail's log is rotated to a new, unreadable file (mode 000;
              the server runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
              through setpriv, so that root obeys file modes): an ERROR or
              WARNING names it, nothing of it is banned; rotated again to a
              readable file, its failures are banned;
  badutf8     a failure line holding invalid UTF-8: a warning names the file,
              the line still counts (the invalid bytes are replaced);
  huge        a 1 MB failure line and a normal one after it: both banned;
  failing     an actionban that exits 3: the command ran, an ERROR names it
              and its status, the jail bans the next address too;
  hanging     an actionban that (the first time only) sleeps past the
              action's `timeout` (5 s): the server answers `ping` while it
              hangs, `control` still bans (Python runs one action command at
              a time, so its ban waits for the timeout: the delay is printed),
              an ERROR says it timed out, the command's processes are ended,
              the jail bans the next address too;
  badregex    `fail2ban-client set control addfailregex '(unclosed'` is
              refused with an error, and `control` keeps its own regex.
Part 2, the same kinds of bad input already present at start (a jail with a
missing log, with an unreadable log, with a filter that does not compile,
each next to `control`): the server either refuses to start (non-zero exit
within 30 s; Python 1.0.2 does that) or starts and `control` bans; either way
a log or stderr line names the culprit.  The outcome is printed.
Part 3, a burst: 200,000 lines appended at once to a jail's log (loglevel
INFO), a failure first, another one last: both are banned, and the first
address's `Ban` line comes before the `Found` line of the last, i.e. its ban
does not wait until the whole burst has been read (fail2ban bans as soon as
an address reaches maxretry).

Usage: bad_input.py [--server PATH|python|ours] [--client PATH|python|ours] [--keep]
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib as lib  # noqa: E402

RECORD_ACTION = """[Definition]
actionstart =
actionstop =
actioncheck =
actionban = echo <ip> >> <file>
actionunban =

[Init]
file = /dev/null
"""

FAILING_ACTION = """[Definition]
actionban = echo <ip> >> <file>; exit 3

[Init]
file = /dev/null
"""

HANGING_ACTION = """[Definition]
actionban = echo <ip> >> <file>
            if mkdir <file>.hung 2>/dev/null; then <sleeper> <hang>; echo <ip> >> <file>.after; fi

[Init]
file = /dev/null
sleeper = sleep
hang = 30
timeout = 5
"""

BROKEN_FILTER = ("[Definition]\n"
                 "failregex = ^\\s*Login failed for (\\S+ from <HOST>$\n")

DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
            "--inh-caps", "-dac_override,-dac_read_search", "--"]


class Run:
    """A work directory, its configuration and one server."""

    def __init__(self, name, progs, keep):
        self.server_prog, self.client_prog, _ = progs
        self.work = lib.Workdir("e2e-bad-" + name, keep)
        self.work.copy_stock()
        self.work.fail2ban_local()
        self.work.write_conf("action.d/e2e-record.conf", RECORD_ACTION)
        self.work.write_conf("action.d/e2e-failing.conf", FAILING_ACTION)
        self.work.write_conf("action.d/e2e-hanging.conf", HANGING_ACTION)
        self.work.write_conf("filter.d/e2e-simple.conf", lib.SIMPLE_FILTER)
        self.work.write_conf("filter.d/e2e-broken.conf", BROKEN_FILTER)
        os.makedirs(self.work.path("logs"))
        os.makedirs(self.work.path("bans"))
        self.sections = ["[sshd]", "enabled = false", ""]
        self.server = None
        self.next_ip = 0

    def log(self, jail):
        return self.work.path("logs", jail + ".log")

    def bans(self, jail):
        return self.work.path("bans", jail + ".txt")

    def jail(self, name, action="e2e-record", filt="e2e-simple", logpath=None, extra=None):
        path = logpath or self.log(name)
        if logpath is None:
            open(path, "w").close()
        options = 'file="%s"' % self.bans(name) + (", " + extra if extra else "")
        self.sections += ["[%s]" % name, "enabled = true", "filter = " + filt,
                          "logpath = " + path, "action = %s[%s]" % (action, options),
                          "maxretry = 1", "findtime = 10m", "bantime = 1h", ""]

    def start(self, wrapper=None, loglevel="INFO"):
        self.work.write_conf("jail.local", "\n".join(self.sections))
        self.work.fail2ban_local(loglevel=loglevel)
        self.server = lib.Server(self.server_prog, self.work, wrapper=wrapper,
                                 loglevel=loglevel)
        self.server.start()

    def fresh_ip(self):
        self.next_ip += 1
        return "203.0.113.%d" % self.next_ip

    def banned(self, jail):
        return lib.read(self.bans(jail)).split()

    def wait_banned(self, jail, ip, timeout=10.0):
        return lib.wait_for(lambda: ip in self.banned(jail), timeout, 0.02)

    def fail(self, jail, ip=None):
        """Appends a failure of a fresh (or given) address to a jail's log; returns it."""
        ip = ip or self.fresh_ip()
        lib.append(self.log(jail), lib.failure_line(ip))
        return ip

    def log_since(self, offset):
        return self.server.log_text()[offset:]

    def output_text(self):
        return (self.server.log_text() + lib.read(self.server.stderr, "rb").decode(
            "utf-8", "replace") + lib.read(self.server.stdout, "rb").decode("utf-8", "replace"))

    def finish(self):
        if self.server:
            self.server.kill()
        self.work.cleanup()


ALL_LEVELS = ("WARNING", "ERROR", "CRITICAL", "MSG", "NOTICE", "INFO")


def lines_naming(text, needle, levels=ALL_LEVELS):
    """The lines of text mentioning needle that carry one of the log levels."""
    return [line for line in text.splitlines()
            if needle in line and any(" %s " % lev in line for lev in levels)]


def part_runtime(progs, checks, keep):
    c = checks
    run = Run("runtime", progs, keep)
    hang_pids = []
    try:
        for name in ("control", "vanish", "unreadable", "badutf8", "huge"):
            run.jail(name)
        run.jail("failing", action="e2e-failing")
        sleeper = run.work.stub("e2e-hang-sleep", 'sleep "$1"\n')
        run.jail("hanging", action="e2e-hanging", extra="sleeper=\"%s\"" % sleeper)
        names = {"control", "vanish", "unreadable", "badutf8", "huge", "failing", "hanging"}
        run.start(wrapper=DROP_DAC, loglevel="MSG")
        server = run.server
        if not c.check(server.wait_ready(names, 30) is not None,
                       "runtime: server ready with %d jails" % len(names), server.tail()):
            return

        def control_still_bans(after):
            ip = run.fail("control")
            c.check(run.wait_banned("control", ip), "runtime: control still bans after %s"
                    % after, server.tail())

        control_still_bans("start")

        # vanish: the log is deleted, then comes back
        mark = len(server.log_text())
        os.unlink(run.log("vanish"))
        said = lib.wait_for(lambda: lines_naming(run.log_since(mark), run.log("vanish")), 10)
        c.check(said, "vanish: a log line names the deleted log", run.log_since(mark))
        ip = run.fail("vanish")
        c.check(run.wait_banned("vanish", ip, 15),
                "vanish: a failure in the re-created log is banned", server.tail())
        control_still_bans("the vanished log")

        # unreadable: rotated to a new file of mode 000 (the server cannot
        # override file modes); a server holding the old file open must
        # still open the new one
        mark = len(server.log_text())
        path = run.log("unreadable")
        os.rename(path, path + ".1")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        os.close(fd)
        blocked_ip = run.fail("unreadable")
        said = lib.wait_for(lambda: lines_naming(run.log_since(mark), run.log("unreadable"),
                                                 ("ERROR", "WARNING", "CRITICAL")), 10)
        c.check(said, "unreadable: an ERROR/WARNING line names the unreadable log",
                run.log_since(mark))
        c.check(blocked_ip not in run.banned("unreadable"),
                "unreadable: nothing was read from the unreadable log")
        control_still_bans("the unreadable log")
        os.rename(path, path + ".2")
        ip = run.fail("unreadable")
        c.check(run.wait_banned("unreadable", ip, 15),
                "unreadable: rotated again to a readable file, its failures are banned",
                server.tail())

        # badutf8: invalid bytes in the user name of a failure line
        mark = len(server.log_text())
        ip = run.fresh_ip()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        lib.append(run.log("badutf8"), ("%s Login failed for b" % stamp).encode()
                   + b"\xff\xfe\xc3(" + (" from %s\n" % ip).encode())
        c.check(run.wait_banned("badutf8", ip), "badutf8: the line with invalid UTF-8 counts",
                server.tail())
        c.check(lines_naming(run.log_since(mark), run.log("badutf8"), ("WARNING",)),
                "badutf8: a WARNING names the file", run.log_since(mark))
        control_still_bans("invalid UTF-8")

        # huge: a 1 MB failure line, then a normal one
        big_ip, small_ip = run.fresh_ip(), run.fresh_ip()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        lib.append(run.log("huge"), "%s Login failed for %s from %s\n%s" % (
            stamp, "x" * (1 << 20), big_ip, lib.failure_line(small_ip)))
        c.check(run.wait_banned("huge", small_ip, 15),
                "huge: the line after a 1 MB line is banned", server.tail())
        c.check(big_ip in run.banned("huge"), "huge: the 1 MB failure line is banned too")
        control_still_bans("a 1 MB line")

        # failing: actionban exits 3
        mark = len(server.log_text())
        ip = run.fail("failing")
        c.check(run.wait_banned("failing", ip), "failing: the failing command ran")
        said = lib.wait_for(lambda: [line for line in lines_naming(
            run.log_since(mark), "returned 3", ("ERROR",))], 10)
        c.check(said, "failing: an ERROR line reports `returned 3`", run.log_since(mark))
        ip = run.fail("failing")
        c.check(run.wait_banned("failing", ip), "failing: the jail runs its action again for "
                "the next address")
        control_still_bans("a failing action")

        # hanging: actionban sleeps past timeout = 5 (the first time)
        def leftovers():
            return [p for p in os.listdir("/proc") if p.isdigit()
                    and sleeper in lib.read("/proc/%s/cmdline" % p).replace("\0", " ")]
        mark = len(server.log_text())
        ip = run.fail("hanging")
        c.check(run.wait_banned("hanging", ip), "hanging: the hanging command started")
        c.check(lib.wait_for(leftovers, 2), "hanging: its process is seen running")
        began = time.monotonic()
        time.sleep(0.3)
        reply = lib.try_request(run.work.sock, ["ping"], 1.0)
        c.equal(reply, (0, "pong"), "hanging: the server answers ping within 1 s while the "
                "action hangs")
        ctl_ip = run.fail("control")
        c.check(run.wait_banned("control", ctl_ip, 12),
                "hanging: control still bans", run.log_since(mark))
        lib.say("     control's ban recorded %.1f s after the hanging command started (%s its "
                "5 s timeout)" % (time.monotonic() - began, "after" if "timed out"
                                  in run.log_since(mark) else "before"))
        said = lib.wait_for(lambda: lines_naming(run.log_since(mark), "timed out",
                                                 ("ERROR",)), 15)
        took = time.monotonic() - began
        c.check(said, "hanging: an ERROR line says the command timed out", run.log_since(mark))
        c.check(took < 9, "hanging: the 5 s timeout is enforced (reported %.1f s after the start)"
                % took)
        lib.wait_for(lambda: not leftovers(), 2.0)
        hang_pids = leftovers()
        c.equal(hang_pids, [], "hanging: no process of the timed-out command is left")
        c.check(not os.path.exists(run.bans("hanging") + ".after"),
                "hanging: the timed-out command never reached its last step")
        ip = run.fail("hanging")
        c.check(run.wait_banned("hanging", ip), "hanging: the jail runs its action again for "
                "the next address")
        control_still_bans("a hanging action")

        # badregex: a failregex that does not compile, added at run time
        code, out, err = lib.client(run.client_prog, run.work, "set", "control",
                                    "addfailregex", "^(unclosed <HOST>")
        c.check(code not in (0, None), "badregex: the client exits non-zero (%r)" % code)
        c.check("regular expression" in out + err or "regex" in (out + err).lower(),
                "badregex: the client names the regular expression problem", out + err)
        code, out, _ = lib.client(run.client_prog, run.work, "get", "control", "failregex")
        c.check(code == 0 and "unclosed" not in out and "Login failed" in out,
                "badregex: control keeps only its own failregex", out)
        control_still_bans("a bad regex")

        code, out, _ = lib.client(run.client_prog, run.work, "ping")
        c.equal((code, out), (0, "Server replied: pong\n"), "runtime: server answers ping")
        code, out, _ = lib.client(run.client_prog, run.work, "stop")
        c.equal(server.wait_exit(30), 0, "runtime: server exits 0 after stop")
    finally:
        if c.failed and run.server:
            lib.say(run.server.tail())
        for pid in hang_pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        run.finish()


def part_start(progs, checks, keep):
    """Bad input already there at start: refuse clearly, or run without it."""
    cases = [
        ("missing", "missing log file", None),
        ("unreadable", "unreadable log file", "permission denied"),
        ("badfilter", "filter that does not compile", "regular expression"),
    ]
    for case, what, problem in cases:
        c = checks
        run = Run("start-" + case, progs, keep)
        bad = "bad" + case
        try:
            run.jail("control")
            if case == "missing":
                run.jail(bad, logpath=run.work.path("logs", "nowhere.log"))
                names = [bad, run.work.path("logs", "nowhere.log")]
            elif case == "unreadable":
                run.jail(bad)
                os.chmod(run.log(bad), 0)
                names = [bad, run.log(bad)]
            else:
                run.jail(bad, filt="e2e-broken")
                names = [bad, "e2e-broken", "Login failed for ("]
            ip = run.fail("control")
            run.start(wrapper=DROP_DAC)
            server = run.server
            state = lib.wait_for(
                lambda: "exited" if not server.alive() else (
                    "running" if ip in run.banned("control") else None), 30, 0.05)
            text = run.output_text()
            errors = [line for line in text.splitlines()
                      if any(" %s " % lev in line for lev in ("ERROR", "CRITICAL", "WARNING"))]
            if state == "exited":
                lib.say("start with a %s: the server refused to start (exit %s)"
                        % (what, server.proc.returncode))
                c.check(server.proc.returncode != 0,
                        "start/%s: refusing to start exits non-zero" % case)
            elif state == "running":
                lib.say("start with a %s: the server runs without the bad jail" % what)
                code, _, _ = lib.client(run.client_prog, run.work, "ping")
                c.equal(code, 0, "start/%s: the server answers" % case)
            c.check(state is not None, "start/%s: the server either refuses to start or "
                    "bans with control (no hang)" % case, server.tail())
            c.check([line for line in errors if any(n in line for n in names)],
                    "start/%s: an ERROR/WARNING line names the jail, its log or its filter"
                    % case, text[-3000:])
            if problem:
                c.check([line for line in errors if problem in line.lower()],
                        "start/%s: an ERROR/WARNING line says `%s`" % (case, problem),
                        text[-3000:])
        finally:
            run.finish()


def part_burst(progs, checks, keep):
    """A large burst of lines: the bans it holds start while it is read."""
    c = checks
    run = Run("burst", progs, keep)
    try:
        run.jail("burst")
        run.start()
        if not c.check(run.server.wait_ready({"burst"}, 30) is not None,
                       "burst: server ready", run.server.tail()):
            return
        first, last = run.fresh_ip(), run.fresh_ip()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        quiet = "%s Session opened for admin\n" % stamp
        mark = len(run.server.log_text())
        lib.append(run.log("burst"), lib.failure_line(first) + quiet * 200000
                   + lib.failure_line(last))
        c.check(run.wait_banned("burst", last, 120), "burst: the address of the last line "
                "is banned", run.server.tail())
        c.check(first in run.banned("burst"), "burst: the address of the first line is banned")
        text = run.log_since(mark)
        ban_first = text.find("[burst] Ban %s\n" % first)
        found_last = text.find("[burst] Found %s " % last)
        c.check(0 <= ban_first < found_last, "burst: the first address's Ban line comes "
                "before the Found line of the last (%d < %d)" % (ban_first, found_last),
                text[-3000:])
    finally:
        run.finish()


def main():
    parser = lib.base_parser(__doc__.split("\n")[0])
    args = parser.parse_args()
    lib.install_signal_cleanup()
    checks = lib.Checks("bad_input")
    if not shutil.which("setpriv"):
        checks.skip("bad input", "setpriv (util-linux) is missing: the unreadable-log cases "
                    "need a server without CAP_DAC_OVERRIDE")
        return checks.finish()
    progs = lib.programs(args)
    lib.say("server: %s\nclient: %s" % progs[:2])
    try:
        part_runtime(progs, checks, args.keep)
        part_start(progs, checks, args.keep)
        part_burst(progs, checks, args.keep)
    except (RuntimeError, OSError, subprocess.SubprocessError):
        checks.check(False, "test ran to its end", traceback.format_exc())
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
