#!/usr/bin/env python3
"""Checks annotated sample logs against filters, with Python fail2ban as the oracle.

A sample log (compat-tests/logs/<filter>, or fail2ban's tests/files/logs/<filter>)
carries `# failJSON: {...}` annotations describing the line that follows: whether
the filter must report a failure for it ("match"), and then the failure's host,
time and other captured groups.  `filterOptions`, `fileOptions` and `addFILE`
annotations and `constraint` expressions work as in fail2ban's own sample tests
(see shared/spec/config-filters-dates.md section 4): the clock is frozen at
2005-08-14 12:00 CEST (1124013600) in the zone CET-01CEST-02,M3.5.0,M10.5.0,
filters run with raw hosts and every failregex tried, state carries from line
to line, and every failregex must be exercised by some sample.

This script runs under any python3; it re-runs itself as a worker under the
interpreter that can import fail2ban 1.0.2 (see compat-tests/refs.py), which
loads each filter from the configuration directory and feeds it the lines.

Usage:
  check_samples.py                       our etc/fail2ban with compat-tests/logs
  check_samples.py --ref                 fail2ban 1.0.2's config with its own samples
  check_samples.py --config DIR --logs DIR [FILTER ...]

Exit status: 0 when every filter passes, 1 otherwise.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import refs  # noqa: E402

TEST_NOW = 1124013600
TEST_TZ = "CET-01CEST-02,M3.5.0,M10.5.0"
ANNOTATION = r"^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$"
NOT_FILTERS = ("common",)


def discover(config, logs):
    """Filter names that have both a filter file and a sample log."""
    names = []
    for entry in sorted(os.listdir(os.path.join(config, "filter.d"))):
        name, ext = os.path.splitext(entry)
        if ext != ".conf" or name.endswith(NOT_FILTERS) or name.startswith("."):
            continue
        if os.path.isfile(os.path.join(logs, name)):
            names.append(name)
    return names


# ---------------------------------------------------------------------------
# Worker: runs under the interpreter that has fail2ban.


class SampleRun:
    """Checks one filter's sample log(s); collects problems instead of stopping."""

    def __init__(self, name, config, logs):
        self.name = name
        self.config = config
        self.logs = logs
        self.instances = {}
        self.used_regex_text = set()
        self.problems = []
        self.lines_checked = 0

    def instance(self, key, opts):
        """The cached filter for an option combination: [Filter, used indices]."""
        from fail2ban.client.filterreader import FilterReader
        from fail2ban.server.filter import Filter
        found = self.instances.get(key)
        if found:
            return found
        flt = Filter(None)
        flt.returnRawHost = True
        flt.checkAllRegex = True
        flt.checkFindTime = False
        flt.active = True
        reader = FilterReader(self.name, "jail", dict(opts), basedir=self.config)
        if not reader.read():
            raise RuntimeError("cannot read filter %s from %s" % (self.name, self.config))
        reader.getOptions({})
        setters = {
            "prefregex": lambda v: setattr(flt, "prefRegex", v),
            "addfailregex": flt.addFailRegex,
            "addignoreregex": flt.addIgnoreRegex,
            "maxlines": flt.setMaxLines,
            "datepattern": flt.setDatePattern,
        }
        for cmd in reader.convert():
            values = cmd[3] if cmd[0] == "multi-set" else [cmd[3]]
            setter = setters.get(cmd[2])
            if setter:
                for value in values:
                    setter(value)
        self.lint(key, flt)
        found = [flt, set()]
        self.instances[key] = found
        return found

    def lint(self, key, flt):
        """Rejects a greedy catch-all before <HOST> that is not anchored at the end."""
        from fail2ban.server.failregex import Regex
        host = Regex._resolveHostTag("<HOST>")
        wrong = re.compile(r"\.[+\*](?!\?)[^\$\^]*" + re.escape(host) + r".*(?:\.[+\*].*|[^\$])$")
        for text in flt.getFailRegex():
            if wrong.search(text):
                self.problems.append("%s: greedy catch-all before <HOST> without end anchor: %s"
                                     % (key, text.replace(host, "<HOST>")))

    def run(self):
        annotation = re.compile(ANNOTATION)
        files = [self.name]
        file_opts = {}
        active = None
        skipping = False
        index = 0
        while index < len(files):
            path = os.path.join(self.logs, files[index])
            index += 1
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            pos = 0
            while pos < len(lines):
                lineno = pos + 1
                text = lines[pos]
                pos += 1
                expect = {}
                found = annotation.match(text)
                if found:
                    kind = found.group(1)
                    try:
                        data = json.loads(found.group(2))
                    except ValueError as exc:
                        self.problems.append("%s:%d: invalid JSON: %s" % (path, lineno, exc))
                        continue
                    if kind == "fileOptions":
                        file_opts = data
                        continue
                    if kind == "addFILE":
                        files.append(data)
                        continue
                    if kind == "filterOptions":
                        active, skipping = self.select(data, file_opts)
                        continue
                    expect = data
                    if pos >= len(lines):
                        self.problems.append("%s:%d: annotation without a line" % (path, lineno))
                        break
                    lineno = pos + 1
                    text = lines[pos]
                    pos += 1
                elif skipping or text.startswith("#") or not text.strip():
                    continue
                if skipping:
                    continue
                if not active:
                    active = [(self.name, self.instance(self.name, {}), {})]
                self.check_line(active, path, lineno, text.rstrip("\r\n"), expect)
        self.check_coverage()

    def select(self, data, file_opts):
        """The filter instances for a filterOptions annotation, and whether to skip."""
        chosen = []
        skipping = False
        for entry in data if isinstance(data, list) else [data]:
            opts = dict(file_opts)
            opts.update(entry)
            if opts.get("test.condition"):
                skipping = not self.holds(opts["test.condition"], opts)
            if skipping:
                continue
            flt_opts = {k: v for k, v in opts.items() if not k.startswith("test.")}
            key = self.name + (opts.get("test.filter-name") or (str(flt_opts) if flt_opts else ""))
            chosen.append((key, self.instance(key, flt_opts), opts))
        return chosen, skipping

    def holds(self, expression, opts):
        """Evaluates a test.condition or constraint (Python, as in fail2ban's samples)."""
        return eval(expression, {}, {"name": self.name, "opts": opts})

    def check_line(self, active, path, lineno, text, expect):
        self.lines_checked += 1
        for key, (flt, used), opts in active:
            constraint = expect.get("constraint")
            if constraint and not self.holds(constraint, opts):
                continue
            regexes = flt.getFailRegex()
            if opts.get("logtype") == "journal":
                now_text = datetime.datetime.utcfromtimestamp(TEST_NOW).isoformat()
                line = opts.get("test.prefix-line", "") + text
                results = flt.processLine(("", now_text, line), TEST_NOW)
            else:
                results = flt.processLine(text)
            kept = []
            for result in results or ():
                if result[1] is None or result[3].get("nofail"):
                    used.add(result[0])
                    self.used_regex_text.add(regexes[result[0]])
                else:
                    kept.append(result)
            where = "%s:%d [%s]" % (path, lineno, key)
            if not kept:
                if expect.get("match", False):
                    self.problems.append("%s: not matched, but should be:\n  %s" % (where, text))
                continue
            if not expect.get("match", False):
                self.problems.append("%s: matched (regex %s), but should not be:\n  %s"
                                     % (where, [r[0] for r in kept], text))
                continue
            if len(kept) > 1:
                self.problems.append("%s: several regexes matched %s:\n  %s"
                                     % (where, [r[0] for r in kept], text))
                continue
            index, fid, when, groups = kept[0]
            for field, want in expect.items():
                if field in ("time", "match", "desc", "constraint"):
                    continue
                got = groups.get(field)
                if got is None and field == "host":
                    got = fid
                elif got is None and field == "attempts":
                    got = len(groups.get("matches", ()))
                if isinstance(got, (set, list, dict)):
                    same = sorted(got) == sorted(want)
                else:
                    same = got == want
                if not same:
                    self.problems.append("%s: %s is %r, expected %r:\n  %s"
                                         % (where, field, got, want, text))
            want_time = expect.get("time")
            if want_time is not None:
                fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in want_time else "%Y-%m-%dT%H:%M:%S"
                local = datetime.datetime.strptime(want_time, fmt)
                expected = time.mktime(local.timetuple()) + local.microsecond / 1e6
                if when != expected:
                    self.problems.append("%s: time is %r (%s UTC), expected %r (%s):\n  %s" % (
                        where, when, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)),
                        expected, want_time, text))
            used.add(index)
            self.used_regex_text.add(regexes[index])

    def check_coverage(self):
        from fail2ban.server.failregex import Regex
        host = Regex._resolveHostTag("<HOST>")
        for key, (flt, used) in self.instances.items():
            for index, text in enumerate(flt.getFailRegex()):
                if index not in used and text not in self.used_regex_text:
                    self.problems.append("%s: failregex %d has no sample: %s"
                                         % (key, index, text.replace(host, "<HOST>")))


def worker(args):
    os.environ["TZ"] = TEST_TZ
    time.tzset()
    from fail2ban.server.mytime import MyTime
    MyTime.setTime(TEST_NOW)
    failed = 0
    for name in args.filters:
        run = SampleRun(name, args.config, args.logs)
        try:
            run.run()
        except Exception as exc:  # a broken filter or log is a failure of this filter only
            run.problems.append("%s: %s: %s" % (name, type(exc).__name__, exc))
        status = "PASS" if not run.problems else "FAIL"
        print("%-4s %-24s %4d lines, %2d filter variants" % (
            status, name, run.lines_checked, len(run.instances)))
        for problem in run.problems:
            print("     " + problem.replace("\n", "\n     "))
        failed += bool(run.problems)
    print("%d passed, %d failed" % (len(args.filters) - failed, failed))
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# Front end: runs under any python3.


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="configuration directory (default: our etc/fail2ban)")
    parser.add_argument("--logs", help="sample log directory (default: compat-tests/logs)")
    parser.add_argument("--ref", action="store_true",
                        help="use fail2ban 1.0.2's own config and samples (self-test)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("filters", nargs="*", help="filter names (default: all with a sample log)")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.ref:
        found = refs.ref102()
        if not found:
            print("check_samples: no fail2ban 1.0.2 reference tree", file=sys.stderr)
            return 2
        args.config = args.config or found[0]
        args.logs = args.logs or os.path.join(found[1], "logs")
    config = os.path.abspath(args.config or refs.our_config())
    logs = os.path.abspath(args.logs or refs.our_logs())
    filters = args.filters or discover(config, logs)
    if not filters:
        print("check_samples: no filter with a sample log in %s / %s" % (config, logs),
              file=sys.stderr)
        return 2
    lib = refs.python_lib()
    if not lib:
        print("check_samples: SKIPPED: no Python fail2ban 1.0.2 to check against",
              file=sys.stderr)
        return 2
    python, site = lib
    env = dict(os.environ, TZ=TEST_TZ, PYTHONPATH=site)
    print("check_samples: config %s, logs %s (oracle: %s with %s)" % (config, logs, python, site))
    cmd = [python, os.path.abspath(__file__), "--worker", "--config", config, "--logs", logs]
    return subprocess.run(cmd + filters, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
