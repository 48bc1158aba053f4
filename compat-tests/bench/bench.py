#!/usr/bin/env python3
"""Benchmark: Python's fail2ban-regex against ours on the same large logs.

For each generated log (see genlogs.py: an Asterisk "messages" file and an sshd
auth.log, 1,000,000 lines each by default) and each filter set (the stock
1.0.2 filters of the reference configuration, and our etc/fail2ban filters),
both programs run in turn with the same arguments (`-c CONFIG -r LOG FILTER`):
Python's --runs times (3 by default: this machine's timings vary by up to a
third from one run to the next, and at times everything runs at half speed
for a minute), each run followed by --ours-runs runs of ours (3 by default:
ours are short, and several spread over Python's runs keep one slow spell
from deciding their median).  This prints, per program, the median wall
time, lines per second and the highest peak resident memory (from wait4),
every run's wall time, then the ratios ours/Python (of the medians) and the
two `Lines:` summary lines.  The figures are for reading, not a timed test: the exit status is 1
only when the two programs disagree on `Lines:` or one of them fails, and with
--enforce also when the project's target is missed (ours at least 30 times
faster and at most a fifth of Python's peak memory, on every run).

Usage:
  bench.py [--quick | --lines N] [--logs asterisk,sshd] [--filters stock,ours]
           [--runs N] [--ours-runs N] [--ours PATH] [--python PATH] [--dns]
           [--enforce]

Paths come from compat-tests/refs.py: F2B_PYTHON_REGEX, F2B_OURS (default
target/release/fail2ban-regex, built when missing), F2B_REF_CONFIG (stock
configuration, default /etc/fail2ban), F2B_BENCH_DIR (log cache).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import genlogs  # noqa: E402
import refs  # noqa: E402

TARGET_SPEED = 30.0
TARGET_RSS = 0.2
LINES_RE = re.compile(r"^Lines: .*$", re.M)


GNU_TIME = "/usr/bin/time"


def run_measured(cmd):
    """Runs cmd; returns (wall seconds, peak RSS in KiB, exit status, stdout, stderr).

    The peak RSS comes from GNU time when it is installed: a child forked
    from this (large) Python process would otherwise be charged, through
    wait4's ru_maxrss, with the memory it shared with us before exec.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r") as rss:
        use_time = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-f", "%M", "-o", rss.name] + list(cmd) if use_time else list(cmd)
        started = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss
        if use_time:
            text = rss.read().strip().splitlines()
            peak = int(text[-1]) if text and text[-1].isdigit() else peak
        out.seek(0)
        err.seek(0)
        return (wall, peak, proc.returncode,
                out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def summary_line(stdout):
    found = LINES_RE.search(stdout)
    return found.group(0) if found else None


def human_rate(lines, wall):
    return "%.0f" % (lines / wall) if wall > 0 else "inf"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000000, help="lines per log (default 1000000)")
    parser.add_argument("--quick", action="store_true", help="100,000-line smoke run")
    parser.add_argument("--logs", default="asterisk,sshd", help="comma-separated: asterisk,sshd")
    parser.add_argument("--filters", default="stock,ours",
                        help="comma-separated filter sets: stock (reference config), ours (etc/fail2ban)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of Python's program per log and filter set; the median counts (default 3)")
    parser.add_argument("--ours-runs", type=int, default=3,
                        help="runs of ours after each of Python's (default 3): ours take well under a second,"
                             " so a spell of this machine's slowness would otherwise cover them all")
    parser.add_argument("--ours", help="our fail2ban-regex (default from refs.py)")
    parser.add_argument("--python", help="Python's fail2ban-regex (default from refs.py)")
    parser.add_argument("--dns", action="store_true", help="do not pass -r (resolve host names)")
    parser.add_argument("--enforce", action="store_true",
                        help="exit 1 when the speed or memory target is missed")
    args = parser.parse_args()
    lines = 100000 if args.quick else args.lines
    logs = [x for x in args.logs.split(",") if x]
    sets = [x for x in args.filters.split(",") if x]
    bad = [x for x in logs if x not in genlogs.GENERATORS] + [x for x in sets if x not in ("stock", "ours")]
    if bad:
        parser.error("unknown log or filter set: %s" % ", ".join(bad))

    python = args.python or refs.python_regex()
    ours = args.ours or refs.ours()
    configs = {"stock": refs.stock_config(), "ours": refs.our_config()}
    missing = [name for name, value in (("Python's fail2ban-regex", python), ("ours", ours))
               if not value] + ["%s configuration" % s for s in sets if not configs[s]]
    if missing:
        print("bench: cannot run, missing: %s" % ", ".join(missing), file=sys.stderr)
        return 2
    print("bench: python = %s" % python)
    print("bench: ours   = %s" % ours)
    for name in sets:
        print("bench: %-6s filters from %s" % (name, configs[name]))

    failures = []
    missed_target = []
    rows = []
    for kind in logs:
        path = genlogs.ensure(kind, lines, args.seed)
        print("bench: %s log %s (%d lines)" % (kind, path, lines))
        for name in sets:
            cmd_tail = ["-c", configs[name]] + ([] if args.dns else ["-r"]) + [path, kind]
            walls = {"python": [], "ours": []}
            results = {}
            plan = (("python", python, 1), ("ours", ours, max(1, args.ours_runs)))
            for _ in range(max(1, args.runs)):
                for who, binary, _ in (run for run in plan for _ in range(run[2])):
                    wall, rss, code, out, err = run_measured([binary] + cmd_tail)
                    walls[who].append(wall)
                    peak = max(rss, results[who][1]) if who in results else rss
                    results[who] = (sorted(walls[who])[(len(walls[who]) - 1) // 2], peak, code,
                                    summary_line(out))
                    if code != 0:
                        failures.append("%s/%s: %s exited with %d: %s" % (
                            kind, name, who, code, err.strip().splitlines()[-1:] or out[-200:]))
            (pw, prss, _, plines), (ow, orss, _, olines) = results["python"], results["ours"]
            speed = pw / ow if ow > 0 else float("inf")
            mem = orss / prss if prss else float("inf")
            same = plines is not None and plines == olines
            if not same:
                failures.append("%s/%s: Lines differ:\n  python: %s\n  ours:   %s" % (
                    kind, name, plines, olines))
            if speed < TARGET_SPEED or mem > TARGET_RSS:
                missed_target.append("%s/%s" % (kind, name))
            rows.append((kind, name, pw, prss, ow, orss, speed, mem, plines, olines, same, walls))

    print()
    print("%-9s %-6s %-7s %9s %12s %10s" % ("log", "filter", "program", "wall s", "lines/s", "peak MiB"))
    for kind, name, pw, prss, ow, orss, speed, mem, plines, olines, same, walls in rows:
        for who, wall, rss in (("python", pw, prss), ("ours", ow, orss)):
            print("%-9s %-6s %-7s %9.2f %12s %10.1f   runs: %s" % (
                kind, name, who, wall, human_rate(lines, wall), rss / 1024.0,
                " ".join("%.2f" % w for w in walls[who])))
        print("%-9s %-6s ratio:  ours is %.1fx faster, peak RSS %.3f of Python's -> target %s" % (
            "", "", speed, mem,
            "met" if speed >= TARGET_SPEED and mem <= TARGET_RSS else "MISSED"))
        print("%-16s python: %s" % ("", plines))
        print("%-16s ours:   %s  [%s]" % ("", olines, "identical" if same else "DIFFERENT"))
    print()
    for problem in failures:
        print("bench: ERROR: " + problem, file=sys.stderr)
    if missed_target:
        print("bench: target (>= %.0fx faster, <= %.2f of the memory) missed for: %s"
              % (TARGET_SPEED, TARGET_RSS, ", ".join(missed_target)))
    if failures:
        return 1
    if missed_target and args.enforce:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
