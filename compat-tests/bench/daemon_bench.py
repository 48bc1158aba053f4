#!/usr/bin/env python3
"""Daemon benchmark: Python's fail2ban-server against ours, same config, same run.

Both servers get the same configuration (a copy of the stock tree plus 20
jails jail01..jail20 on 20 Asterisk logs: the stock `asterisk` filter,
`backend = pyinotify`, maxretry 3,
findtime 10 min, bantime 1 h, a recording action that appends `<ip>` and
`date +%s.%N` to a file through /bin/sh; dbfile None unless --dbfile), no
network namespace and no firewall.  Each server runs alone, one after the
other, and is measured for:

  ready      from the process start until its socket answers `status` with
             the 20 jails (fail2ban's own protocol, polled every 5 ms);
  idle RSS   VmRSS (/proc/<pid>/status) 2 s after ready;
  idle CPU   utime+stime (/proc/<pid>/stat) over 10 s without input;
  latency    for --bans bans (default 100), spread over the jails: two
             failures are written, then the third one; from just before that
             write to the time the action's command recorded; median and p95;
  200k lines --lines lines (default 200,000) appended at once across the 20
             logs, --fail-share of them failures (default 0.1):
             --expected-bans addresses (default 113) failing maxretry times
             and more (already banned), 2,000 others once or twice; the time
             until every expected ban is recorded (each log ends with a
             ban-completing line), and, on a second row, the time until the
             server has logged all their `Ban` lines (the decisions; both
             servers run the ban commands one at a time, and start them
             while they still read); then, after 2 s, the bans must be exactly
             that number and the jails' `Total failed` must add up to the
             failures written.

A table of both programs and the ratios follows, with the project's targets:
latency median < 5 ms and p95 < 20 ms, ready >= 5x sooner, idle RSS <= 1/4,
the 200k lines >= 20x faster with exactly the expected bans, no idle CPU
(at most one clock tick in 10 s).  Not a timed test: the exit status is 1
when a server fails or a ban count is wrong, and with --enforce also when a
target is missed.

Usage: daemon_bench.py [--server PATH|ours] [--python-server PATH] [--only python|ours]
                       [--bans N] [--lines N] [--expected-bans N] [--fail-share F]
                       [--idle S]
                       [--quick] [--dbfile VALUE] [--enforce] [--keep]
Our server: --server or env F2B_SERVER (default target/release/fail2ban-server,
built when missing); Python's: --python-server or /usr/bin/fail2ban-server.
"""

import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import e2elib as lib  # noqa: E402
import pbx_standin  # noqa: E402

JAILS = 20
MAXRETRY = 3
TICK = os.sysconf("SC_CLK_TCK")

RECORD_ACTION = """[Definition]
actionstart =
actionstop =
actioncheck =
actionban = printf '%%s %%s\\n' '<ip>' "$(date +%%s.%%N)" >> <file>
actionunban =

[Init]
file = /dev/null
"""


def jail_name(n):
    return "jail%02d" % n


def addresses(prefix, count):
    """count distinct documentation addresses: 192.0.2.x etc., then 2001:db8:<prefix>::x."""
    out = []
    nets = {"lat": ["192.0.2."], "ban": ["198.51.100."], "miss": ["203.0.113."]}[prefix]
    for net in nets:
        out += [net + str(i) for i in range(1, 255)]
    tag = {"lat": 1, "ban": 2, "miss": 3}[prefix]
    i = 1
    while len(out) < count:
        out.append("2001:db8:%x::%x" % (tag, i))
        i += 1
    return out[:count]


class Bench:
    """One server under measurement."""

    def __init__(self, label, program, args):
        self.label = label
        self.args = args
        self.work = lib.Workdir("bench-" + label, args.keep)
        self.record = self.work.path("bans.txt")
        self.server = lib.Server(program, self.work)
        self.results = {}
        self.problems = []

    def log(self, n):
        return self.work.path("logs", jail_name(n) + ".log")

    def configure(self):
        work = self.work
        work.copy_stock()
        work.fail2ban_local(dbfile=self.args.dbfile)
        work.write_conf("action.d/bench-record.conf", RECORD_ACTION)
        os.makedirs(work.path("logs"))
        sections = ["[sshd]", "enabled = false", ""]
        for n in range(1, JAILS + 1):
            open(self.log(n), "w").close()
            sections += ["[%s]" % jail_name(n), "enabled = true", "filter = asterisk",
                         "backend = pyinotify", "logpath = " + self.log(n),
                         "action = bench-record[file=\"%s\"]" % self.record,
                         "maxretry = %d" % MAXRETRY, "findtime = 10m", "bantime = 1h", ""]
        work.write_conf("jail.local", "\n".join(sections))

    def recorded(self):
        """{ip: recorded time} from the action's file."""
        out = {}
        for line in lib.read(self.record).splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = float(parts[1])
        return out

    def recorded_count(self):
        return len(lib.read(self.record).splitlines())

    def run(self):
        self.configure()
        names = {jail_name(n) for n in range(1, JAILS + 1)}
        lib.say("%s: starting %s" % (self.label, self.server.program))
        self.server.start()
        ready = self.server.wait_ready(names, 60)
        if ready is None:
            self.problems.append("%s: not ready within 60 s\n%s" % (self.label, self.server.tail()))
            return
        self.results["ready"] = ready
        pid = self.server.pid
        time.sleep(2.0)
        self.results["rss"] = lib.rss_kib(pid) / 1024.0
        before = lib.cpu_ticks(pid)
        time.sleep(self.args.idle)
        self.results["idle_cpu"] = (lib.cpu_ticks(pid) - before) / TICK
        lib.say("%s: ready %.3f s, idle RSS %.1f MiB, idle CPU %.2f s in %g s" % (
            self.label, ready, self.results["rss"], self.results["idle_cpu"], self.args.idle))
        self.latency()
        self.throughput()
        self.results["rss_after"] = lib.rss_kib(pid) / 1024.0
        reply = lib.try_request(self.work.sock, ["stop"], 30)
        if self.server.wait_exit(60) is None:
            self.problems.append("%s: did not exit after stop (reply %r)" % (self.label, reply))

    def latency(self):
        samples = []
        ips = addresses("lat", self.args.bans)
        for i, ip in enumerate(ips):
            log = self.log(i % JAILS + 1)
            lib.append(log, pbx_standin.line_for(ip, 5060) * (MAXRETRY - 1))
            time.sleep(0.03)
            sent = time.time()
            lib.append(log, pbx_standin.line_for(ip, 5060))
            got = lib.wait_for(lambda: self.recorded().get(ip), 15, 0.0005)
            if not got:
                self.problems.append("%s: latency ban %d (%s) not recorded within 15 s"
                                     % (self.label, i + 1, ip))
                return
            samples.append(got - sent)
        samples.sort()
        self.results["lat_median"] = statistics.median(samples)
        self.results["lat_p95"] = samples[max(0, int(round(0.95 * len(samples))) - 1)]
        self.results["lat_max"] = samples[-1]
        lib.say("%s: latency over %d bans: median %.2f ms, p95 %.2f ms, max %.2f ms" % (
            self.label, len(samples), self.results["lat_median"] * 1e3,
            self.results["lat_p95"] * 1e3, self.results["lat_max"] * 1e3))

    def throughput(self):
        texts, failures, bans = make_throughput(self.args.lines, self.args.expected_bans,
                                                self.args.fail_share, self.args.seed)
        start_count = self.recorded_count()
        want = start_count + len(bans)
        decisions = BanLines(self.work.log)
        decided = []
        began = time.monotonic()
        for n, text in enumerate(texts, 1):
            lib.append(self.log(n), text)

        def finished():
            if not decided and decisions.count() >= len(bans):
                decided.append(time.monotonic() - began)
            return self.recorded_count() >= want
        done = lib.wait_for(finished, 300, 0.002)
        took = time.monotonic() - began
        if decided:
            self.results["decided"] = decided[0]
        time.sleep(2.0)
        got = self.recorded_count() - start_count
        self.results["bans"] = got
        if not done:
            self.problems.append("%s: only %d of %d bans after 300 s" % (
                self.label, got, len(bans)))
            return
        self.results["throughput"] = took
        banned = set(list(self.recorded())[-got:]) if got else set()
        if got != len(bans) or banned != set(bans):
            self.problems.append("%s: %d bans recorded for the %d lines, %d expected%s" % (
                self.label, got, self.args.lines, len(bans),
                "" if banned == set(bans) else " (other addresses)"))
        total = 0
        for n in range(1, JAILS + 1):
            total += lib.total_failed(self.work.sock, jail_name(n)) or 0
        want_failed = failures + self.args.bans * MAXRETRY
        self.results["failed"] = total
        if total != want_failed:
            self.problems.append("%s: the jails' Total failed add up to %d, %d expected" % (
                self.label, total, want_failed))
        lib.say("%s: %d lines (%d failures), %d bans in %.3f s (%.0f lines/s)" % (
            self.label, self.args.lines, failures, got, took, self.args.lines / took))


class BanLines:
    """Counts the `Ban` lines a server writes to its log from now on."""

    def __init__(self, path):
        self.file = open(path, "rb")
        self.file.seek(0, os.SEEK_END)
        self.rest = b""
        self.seen = 0

    def count(self):
        lines = (self.rest + self.file.read()).split(b"\n")
        self.rest = lines.pop()
        self.seen += sum(1 for line in lines if b" NOTICE " in line and b"] Ban " in line)
        return self.seen


def make_throughput(lines, nbans, share, seed):
    """The per-jail texts, the number of failure lines and the addresses to ban.

    Every jail gets lines // 20 lines, about `share` of them failures: its
    part of the addresses to ban (maxretry failures each, the last failure
    of one of them ending the log), 100 addresses failing once or twice
    (below maxretry), and further failures of its banned addresses (an
    attacker still hammering: `already banned`, no second ban); the other
    lines match nothing.
    """
    rng = random.Random(seed)
    ban_ips = addresses("ban", nbans)
    miss_ips = addresses("miss", JAILS * 100)
    texts = []
    failures = 0
    for j in range(JAILS):
        count = lines // JAILS + (1 if j < lines % JAILS else 0)
        mine = ban_ips[j::JAILS]
        events = []
        for ip in mine:
            events += [ip] * MAXRETRY
        for ip in miss_ips[j * 100:(j + 1) * 100]:
            events += [ip] * rng.choice((1, MAXRETRY - 1))
        last = mine[-1] if mine else None
        repeaters = mine[:-1]
        while repeaters and len(events) < int(count * share):
            events.append(repeaters[len(events) % len(repeaters)])
        if len(events) > count:
            raise SystemExit("too few lines (%d) for the failures of jail %d" % (lines, j + 1))
        if last:
            events.remove(last)
        events += [None] * (count - len(events) - (1 if last else 0))
        rng.shuffle(events)
        if last:
            events.append(last)
        failures += sum(1 for e in events if e)
        out = []
        for e in events:
            out.append(pbx_standin.line_for(e, rng.randrange(1024, 65536)) if e
                       else noise_line(rng))
        texts.append("".join(out))
    return texts, failures, ban_ips


def noise_line(rng):
    """An Asterisk messages line the asterisk filter does not count."""
    stamp = time.strftime("%b %d %H:%M:%S")
    peer = rng.randrange(100, 200)
    if rng.random() < 0.5:
        return ("[%s] VERBOSE[%d] pbx.c:     -- Executing [%d@default:1] Dial(\"SIP/%d-%08x\", "
                "\"SIP/200,30\") in new stack\n" % (stamp, rng.randrange(1000, 9999), peer, peer,
                                                    rng.randrange(1 << 32)))
    return ("[%s] NOTICE[%d] chan_sip.c: Peer '%d' is now Reachable. (%dms / 2000ms)\n"
            % (stamp, rng.randrange(1000, 9999), peer, rng.randrange(1, 50)))


def ratio(a, b):
    return a / b if b else float("inf")


def report(python, ours):
    """Prints the table; returns the list of missed targets."""
    p, o = python.results if python else {}, ours.results if ours else {}
    missed = []

    def fmt(value, scale, digits):
        return ("%.*f" % (digits, value * scale)) if value is not None else "-"

    rows = [
        ("ready (s)", "ready", 1, 3),
        ("idle RSS (MiB)", "rss", 1, 1),
        ("idle CPU (s per %gs)" % (ours or python).args.idle, "idle_cpu", 1, 2),
        ("latency median (ms)", "lat_median", 1e3, 2),
        ("latency p95 (ms)", "lat_p95", 1e3, 2),
        ("latency max (ms)", "lat_max", 1e3, 2),
        ("%dk lines (s)" % ((ours or python).args.lines // 1000), "throughput", 1, 3),
        ("  of which to decide (s)", "decided", 1, 3),
        ("bans for the lines", "bans", 1, 0),
        ("RSS after the lines (MiB)", "rss_after", 1, 1),
    ]
    print()
    print("%-26s %10s %10s %10s" % ("", "python", "ours", "ratio"))
    for title, key, scale, digits in rows:
        pv, ov = p.get(key), o.get(key)
        rt = ""
        if pv is not None and ov is not None and key not in ("bans", "idle_cpu"):
            rt = "%.1fx" % ratio(pv, ov) if key not in ("rss", "rss_after") else \
                "%.3f" % ratio(ov, pv)
        print("%-26s %10s %10s %10s" % (title, fmt(pv, scale, digits), fmt(ov, scale, digits),
                                        rt))
    if not o:
        return missed
    expected = (ours or python).args.expected_bans
    targets = [
        ("latency median < 5 ms", o.get("lat_median") is not None and o["lat_median"] < 0.005),
        ("latency p95 < 20 ms", o.get("lat_p95") is not None and o["lat_p95"] < 0.020),
        ("idle CPU ~0 (<= 1 tick)", o.get("idle_cpu") is not None
         and o["idle_cpu"] <= 1.0 / TICK),
        ("exactly %d bans" % expected, o.get("bans") == expected),
    ]
    if p:
        targets += [
            ("ready >= 5x sooner", "ready" in o and "ready" in p
             and ratio(p["ready"], o["ready"]) >= 5),
            ("idle RSS <= 1/4", "rss" in o and "rss" in p and o["rss"] <= p["rss"] / 4),
            ("200k lines >= 20x faster", "throughput" in o and "throughput" in p
             and ratio(p["throughput"], o["throughput"]) >= 20),
        ]
    print()
    for what, met in targets:
        print("target %-28s %s" % (what, "met" if met else "MISSED"))
        if not met:
            missed.append(what)
    return missed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", help="our server: a path or `ours` (default env "
                        "F2B_SERVER, else target/release/fail2ban-server)")
    parser.add_argument("--python-server", default=lib.PY_SERVER)
    parser.add_argument("--only", choices=("python", "ours"))
    parser.add_argument("--bans", type=int, default=100, help="latency samples (default 100)")
    parser.add_argument("--lines", type=int, default=200000)
    parser.add_argument("--expected-bans", type=int, default=113)
    parser.add_argument("--fail-share", type=float, default=0.1,
                        help="share of failure lines among the appended lines (default 0.1)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle CPU window in s")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 latency bans, 20,000 lines, 2 s idle")
    parser.add_argument("--dbfile", default="None", help="fail2ban.local dbfile (default None)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--enforce", action="store_true",
                        help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.bans, args.lines, args.idle = 20, 20000, 2.0
    lib.install_signal_cleanup()

    runs = []
    if args.only != "ours":
        if not os.access(args.python_server, os.X_OK):
            print("daemon_bench: Python's server %s is missing" % args.python_server,
                  file=sys.stderr)
            return 2
        runs.append(("python", args.python_server))
    if args.only != "python":
        runs.append(("ours", lib.resolve_program(args.server, "F2B_SERVER", lib.PY_SERVER,
                                                 "fail2ban-server")))
    done = {}
    problems = []
    for label, program in runs:
        bench = Bench(label, program, args)
        try:
            bench.run()
        finally:
            bench.server.kill()
            bench.work.cleanup()
        done[label] = bench
        problems += bench.problems
    missed = report(done.get("python"), done.get("ours"))
    for problem in problems:
        print("daemon_bench: ERROR: " + problem, file=sys.stderr)
    if problems or (missed and args.enforce):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
