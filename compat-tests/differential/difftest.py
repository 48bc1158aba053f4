#!/usr/bin/env python3
"""Differential test: Python's fail2ban-regex and ours, run with the same arguments.

Every case runs both programs with identical arguments, environment and
working directory and compares their standard output (with the
"[processed in X sec]" line masked and, for `-o row`, the elements of Python
sets sorted, since Python prints them in hash order, and the current time,
which undated failures get, masked), their exit status and
their standard error (for a Python traceback only the final exception line
is compared).  A case that differs is run once more, so that a second
boundary between the two runs cannot fail it.  The table lists every case
with PASS or FAIL, failures are followed by a unified diff, and the exit
status is 1 when any case failed.

Sections (all by default; choose with --sections):
  samples     fail2ban 1.0.2's sample logs with its own config, one case per
              filter and output mode (normal, -o row/ip/msg/id/fid), with -r;
  upstream    the newer upstream sample logs with the 1.0.2 filters;
  ours        our sample logs (compat-tests/logs) with our etc/fail2ban;
  realworld   the real-world logs (F2B_REALWORLD): asterisk logs with the
              asterisk filter, sshd/auth logs with sshd and
              sshd[mode=aggressive], each with the 1.0.2 config and ours;
  generated   20,000-line logs of compat-tests/bench/genlogs.py;
  guide       the 0.8.4-era guide's Asterisk filter (compat-tests/fixtures)
              on every Asterisk log, and its misprinted variant, which both
              programs must refuse (exit 255, "Unable to compile ...");
  dns         a few cases without -r, on logs whose failures are addresses.

Usage:
  difftest.py [--sections a,b] [--only REGEX] [-j N] [--list]
              [--ours PATH] [--python PATH]
Paths come from compat-tests/refs.py (F2B_REF_102, F2B_REF_UPSTREAM,
F2B_REALWORLD, F2B_PYTHON_REGEX, F2B_OURS).
"""

import argparse
import ast
import concurrent.futures
import difflib
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.dirname(HERE)
sys.path.insert(0, COMPAT)
sys.path.insert(0, os.path.join(COMPAT, "bench"))
import genlogs  # noqa: E402
import refs  # noqa: E402

SECTIONS = ("samples", "upstream", "ours", "realworld", "generated", "guide", "dns")
MODES = (None, "row", "ip", "msg", "id", "fid")
NOT_FILTERS = ("common",)
GENERATED_LINES = 20000
GUIDE = os.path.join(COMPAT, "fixtures", "guide-asterisk-0.8.4.conf")
GUIDE_TYPO = os.path.join(COMPAT, "fixtures", "guide-asterisk-0.8.4-typo.conf")
PROCESSED = re.compile(r"^\[processed in \d+\.\d+ sec\]$", re.M)

# Cases left out on purpose, by name pattern, with the reason printed when skipped.
EXCLUDED = (
    (re.compile(r"^upstream-log domino-smtp "),
     "1.0.2's domino-smtp failregex backtracks catastrophically on the newer upstream "
     "samples (Python needs many minutes per run)"),
)


class Case:
    """One pair of runs: a name and the arguments given to both programs."""

    def __init__(self, section, name, args, python_status=None):
        self.section = section
        self.name = name
        self.args = args
        self.python_status = python_status
        self.excluded = next((why for pattern, why in EXCLUDED if pattern.search(name)), None)


def mode_args(mode):
    return ["-o", mode] if mode else []


def mode_name(mode):
    return "-o " + mode if mode else "normal"


def filters_with_logs(config, logs):
    """Filter names of a config that have a sample log of the same name."""
    names = []
    filter_dir = os.path.join(config, "filter.d")
    for entry in sorted(os.listdir(filter_dir)):
        name, ext = os.path.splitext(entry)
        if ext == ".conf" and not name.endswith(NOT_FILTERS) and \
                os.path.isfile(os.path.join(logs, name)):
            names.append(name)
    return names


def sample_cases(section, config, logs, label):
    cases = []
    for name in filters_with_logs(config, logs):
        for mode in MODES:
            cases.append(Case(section, "%s %s %s" % (label, name, mode_name(mode)),
                              mode_args(mode) + ["-c", config, "-r", os.path.join(logs, name), name]))
    return cases


def realworld_logs(root):
    """(path, is_asterisk) for every log under the real-world directory."""
    found = []
    for dirpath, _, files in sorted(os.walk(root)):
        for entry in sorted(files):
            if entry.endswith(".log"):
                found.append((os.path.join(dirpath, entry), "asterisk" in entry))
    return found


def build_cases(sections, skipped):
    """Every case of the chosen sections; records skipped sections in `skipped`."""
    cases = []
    r102 = refs.ref102()
    ours_cfg = refs.our_config()
    if not r102:
        skipped.append("samples, realworld, generated, dns with the 1.0.2 config: "
                       "no fail2ban 1.0.2 reference tree")
    if "samples" in sections and r102:
        cases += sample_cases("samples", r102[0], os.path.join(r102[1], "logs"), "1.0.2")
    if "upstream" in sections and r102:
        upstream = refs.ref_upstream()
        if upstream:
            cases += sample_cases("upstream", r102[0], os.path.join(upstream[1], "logs"),
                                  "upstream-log")
        else:
            skipped.append("upstream: no upstream reference tree (F2B_REF_UPSTREAM)")
    if "ours" in sections:
        cases += sample_cases("ours", ours_cfg, refs.our_logs(), "ours")
    configs = [("1.0.2", r102[0])] if r102 else []
    configs.append(("ours", ours_cfg))
    asterisk_logs = []
    if "realworld" in sections or "guide" in sections:
        root = refs.realworld()
        if root:
            for path, is_asterisk in realworld_logs(root):
                rel = os.path.relpath(path, root)
                if is_asterisk:
                    asterisk_logs.append((rel, path))
                if "realworld" not in sections:
                    continue
                filters = ["asterisk"] if is_asterisk else ["sshd", "sshd[mode=aggressive]"]
                for label, config in configs:
                    for flt in filters:
                        for mode in MODES:
                            cases.append(Case("realworld", "%s %s (%s) %s" % (
                                rel, flt, label, mode_name(mode)),
                                mode_args(mode) + ["-c", config, "-r", path, flt]))
        else:
            skipped.append("realworld (and the guide filter on real-world logs): "
                           "no real-world logs, set F2B_REALWORLD")
    generated = {}
    if "generated" in sections or "guide" in sections or "dns" in sections:
        for kind in ("asterisk", "sshd"):
            generated[kind] = genlogs.ensure(kind, GENERATED_LINES, 1, 0.05, quiet=True)
    if "generated" in sections:
        for label, config in configs:
            for kind, filters in (("asterisk", ["asterisk"]),
                                  ("sshd", ["sshd", "sshd[mode=aggressive]"])):
                for flt in filters:
                    for mode in MODES:
                        cases.append(Case("generated", "generated-%s %s (%s) %s" % (
                            kind, flt, label, mode_name(mode)),
                            mode_args(mode) + ["-c", config, "-r", generated[kind], flt]))
    if "guide" in sections:
        targets = [("generated-asterisk", generated["asterisk"])]
        if r102:
            targets.append(("1.0.2-sample-asterisk", os.path.join(r102[1], "logs", "asterisk")))
        targets.append(("ours-sample-asterisk", os.path.join(refs.our_logs(), "asterisk")))
        targets += asterisk_logs
        for label, path in targets:
            for mode in MODES:
                cases.append(Case("guide", "guide-0.8.4 on %s %s" % (label, mode_name(mode)),
                                  mode_args(mode) + ["-r", path, GUIDE]))
            cases.append(Case("guide", "guide-0.8.4-typo on %s" % label, ["-r", path, GUIDE_TYPO],
                              python_status=255))
    if "dns" in sections:
        dns_logs = [("ours", ours_cfg, os.path.join(refs.our_logs(), "asterisk"), "asterisk"),
                    ("ours", ours_cfg, os.path.join(refs.our_logs(), "recidive"), "recidive")]
        if r102:
            dns_logs += [("1.0.2", r102[0], os.path.join(r102[1], "logs", name), name)
                         for name in ("asterisk", "recidive")]
            dns_logs.append(("1.0.2", r102[0], generated["asterisk"], "asterisk"))
        for label, config, path, flt in dns_logs:
            for mode in (None, "row"):
                cases.append(Case("dns", "no -r: %s %s (%s) %s" % (
                    os.path.basename(path), flt, label, mode_name(mode)),
                    mode_args(mode) + ["-c", config, path, flt]))
    return cases


def normalise_row(line, window):
    """A `-o row` line with the elements of every set sorted and "now" masked.

    A failure without a date gets the current time, which differs between
    any two runs: a time inside `window` (when the run happened) is shown as
    <now> in both outputs.
    """
    text = line.rstrip()
    if not (text.startswith("[") and text.endswith("],")):
        return line
    try:
        value = ast.literal_eval(text[:-1])
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return line
    if len(value) == 3 and isinstance(value[1], float) and \
            window[0] - 1 <= value[1] <= window[1] + 1:
        value[1] = "<now>"
    return repr(sorted_sets(value)) + ","


def sorted_sets(value):
    if isinstance(value, (set, frozenset)):
        return "{%s}" % ", ".join(sorted(repr(v) for v in value))
    if isinstance(value, dict):
        return {k: sorted_sets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sorted_sets(v) for v in value]
    if isinstance(value, tuple):
        return tuple(sorted_sets(v) for v in value)
    return value


def normalise_stdout(text, args, window):
    text = PROCESSED.sub("[processed in X sec]", text)
    if "-o" in args and args[args.index("-o") + 1] == "row":
        text = "\n".join(normalise_row(line, window) for line in text.split("\n"))
    return text


def normalise_stderr(text):
    if "Traceback (most recent call last):" in text:
        last = [line for line in text.splitlines() if line.strip()][-1:]
        return "<traceback> " + "".join(last) + "\n"
    return text


class TimedOut(Exception):
    """A run that did not finish in time."""


def run(binary, args, timeout):
    started = time.time()
    try:
        res = subprocess.run([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimedOut()
    window = (started, time.time())
    return (normalise_stdout(res.stdout.decode("utf-8", "replace"), args, window),
            normalise_stderr(res.stderr.decode("utf-8", "replace")), res.returncode)


def compare(case, python, ours, timeout):
    """(verdict, details): PASS, FAIL with the differences, or SKIP with the reason."""
    if case.excluded:
        return "SKIP", case.excluded
    for attempt in (1, 2):
        try:
            py = run(python, case.args, timeout)
        except TimedOut:
            return "SKIP", "Python's fail2ban-regex did not finish in %d s" % timeout
        if case.python_status is not None and py[2] != case.python_status:
            return "FAIL", "Python's fail2ban-regex exited with %s, the case expects %d\n" % (
                py[2], case.python_status)
        try:
            us = run(ours, case.args, timeout)
        except TimedOut:
            return "FAIL", "ours did not finish in %d s (Python did)\n" % timeout
        if py == us:
            return "PASS", None
    parts = []
    if py[2] != us[2]:
        parts.append("exit status: python %s, ours %s\n" % (py[2], us[2]))
    for what, index in (("stdout", 0), ("stderr", 1)):
        if py[index] != us[index]:
            diff = difflib.unified_diff(py[index].splitlines(True), us[index].splitlines(True),
                                        "python " + what, "ours " + what, n=2)
            parts.append("".join(line if line.endswith("\n") else line + "\n" for line in diff))
    return "FAIL", "".join(parts)


def shell_quote(args):
    return " ".join(a if re.match(r"^[\w@%+=:,./\[\]-]+$", a) else "'%s'" % a.replace("'", "'\\''")
                    for a in args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated, of: " + ", ".join(SECTIONS))
    parser.add_argument("--only", help="run only cases whose name matches this regex")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--ours", help="our fail2ban-regex (default from refs.py)")
    parser.add_argument("--python", help="Python's fail2ban-regex (default from refs.py)")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds one run may take (default 120)")
    parser.add_argument("--diff-lines", type=int, default=80,
                        help="at most this many diff lines per failed case (default 80)")
    args = parser.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error("unknown section(s): " + ", ".join(unknown))

    skipped = []
    cases = build_cases(sections, skipped)
    if args.only:
        only = re.compile(args.only)
        cases = [c for c in cases if only.search(c.name)]
    for note in skipped:
        print("difftest: SKIPPED section: " + note, file=sys.stderr)
    if args.list:
        for case in cases:
            print("%-10s %s\n           fail2ban-regex %s"
                  % (case.section, case.name, shell_quote(case.args)))
        return 0
    python = args.python or refs.python_regex()
    ours = args.ours or refs.ours()
    if not python or not ours:
        print("difftest: cannot run: %s is missing" % (
            "Python's fail2ban-regex" if not python else "our fail2ban-regex"), file=sys.stderr)
        return 2
    print("difftest: python = %s\ndifftest: ours   = %s\ndifftest: %d cases" % (
        python, ours, len(cases)))
    failed = []
    skipped_cases = []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = pool.map(lambda c: compare(c, python, ours, args.timeout), cases)
        for case, (verdict, details) in zip(cases, results):
            print("%s  %-10s %s" % (verdict, case.section, case.name), flush=True)
            if verdict == "FAIL":
                failed.append((case, details))
            elif verdict == "SKIP":
                skipped_cases.append((case, details))
    for case, diff in failed:
        lines = diff.splitlines()
        print("\n=== FAIL %s\n    fail2ban-regex %s" % (case.name, shell_quote(case.args)))
        print("\n".join(lines[:args.diff_lines]))
        if len(lines) > args.diff_lines:
            print("... (%d more diff lines)" % (len(lines) - args.diff_lines))
    print()
    for note in skipped:
        print("difftest: SKIPPED section: " + note)
    for case, why in skipped_cases:
        print("difftest: SKIPPED %s: %s" % (case.name, why))
    summary = "%d passed, %d failed" % (len(cases) - len(failed) - len(skipped_cases), len(failed))
    if skipped or skipped_cases:
        summary += ", %d skipped" % (len(skipped) + len(skipped_cases))
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
