#!/usr/bin/env python3
"""Where the compatibility scripts find their references and the two programs.

Every script under compat-tests/ (and the Rust sample harness, through
`python3 compat-tests/refs.py --print`) resolves its inputs here, so that the
rules live in one place:

* the fail2ban 1.0.2 reference tree: env F2B_REF_102, default
  ../shared/fail2ban-1.0.2 relative to the repository root;
* the newest upstream tree: env F2B_REF_UPSTREAM, default
  ../shared/fail2ban-upstream;
* the real-world logs: env F2B_REALWORLD, default ../shared/realworld-logs
  (no fallback: scripts skip those cases and say so);
* the stock configuration for the benchmark: env F2B_REF_CONFIG, default
  /etc/fail2ban when it holds filter.d/, else the 1.0.2 tree's config;
* Python's fail2ban-regex: env F2B_PYTHON_REGEX, default
  /usr/bin/fail2ban-regex;
* ours: env F2B_OURS, default target/release/fail2ban-regex, built with
  `cargo build --release` when missing.

A tree may be laid out as the shared copies are (config/ and tests/files/) or
as Debian's package is (etc/fail2ban/ and
usr/lib/python3/dist-packages/fail2ban/tests/files/).  When the 1.0.2 tree is
not found, Debian's fail2ban package is fetched with `apt-get download` into
the cache directory (env F2B_CACHE, default target/compat-refs), unpacked with
`dpkg-deb -x`, and used for the configuration, the sample logs and, when
/usr/bin/fail2ban-regex is absent, as the Python oracle itself.

Run as a script, `--print` writes the resolved values as KEY=value lines
(an empty value means "not available"; the reason goes to stderr).  It does
not build our binary unless --build is given (so that it can be called from
`cargo test` without taking cargo's lock); OURS is then the expected path.
Keys:
  REF102_CONFIG, REF102_FILES      1.0.2 config dir and tests/files dir
  UPSTREAM_CONFIG, UPSTREAM_FILES  the same for the upstream tree
  REALWORLD                        real-world log directory
  STOCK_CONFIG                     configuration the benchmark calls "stock"
  PYTHON_REGEX                     Python's fail2ban-regex (one executable path)
  PYTHON, PYTHON_LIB               interpreter and dist-packages dir with fail2ban
  OURS                             our fail2ban-regex
  OUR_CONFIG, OUR_LOGS             etc/fail2ban and compat-tests/logs
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), "shared")
DEBIAN_VERSION = "1.0.2-2"
PY_SITE = os.path.join("usr", "lib", "python3", "dist-packages")
SYSTEM_PYTHON = "/usr/bin/python3"


def note(msg):
    """Prints a diagnostic line on stderr."""
    print("refs: " + msg, file=sys.stderr)


def cache_dir():
    """The directory where fetched references are kept."""
    return os.environ.get("F2B_CACHE") or os.path.join(REPO_ROOT, "target", "compat-refs")


def _layout(root):
    """(config dir, test files dir) of a tree in either layout, or None."""
    if not root or not os.path.isdir(root):
        return None
    shared_cfg = os.path.join(root, "config")
    if os.path.isdir(os.path.join(shared_cfg, "filter.d")):
        return shared_cfg, os.path.join(root, "tests", "files")
    deb_cfg = os.path.join(root, "etc", "fail2ban")
    if os.path.isdir(os.path.join(deb_cfg, "filter.d")):
        return deb_cfg, os.path.join(root, PY_SITE, "fail2ban", "tests", "files")
    return None


def _run_quiet(cmd, cwd):
    """Runs a command, returning True when it succeeded."""
    try:
        res = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        note("cannot run %s: %s" % (cmd[0], exc))
        return False
    if res.returncode != 0:
        note("%s failed:\n%s" % (" ".join(cmd), res.stdout.strip()))
    return res.returncode == 0


def debian_package_root():
    """Unpacks Debian's fail2ban package into the cache; returns its root or None."""
    root = os.path.join(cache_dir(), "fail2ban-deb")
    if os.path.isdir(os.path.join(root, "etc", "fail2ban", "filter.d")):
        return root
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        note("apt-get/dpkg-deb not available: cannot fetch Debian's fail2ban package")
        return None
    dl = os.path.join(cache_dir(), "download")
    os.makedirs(dl, exist_ok=True)
    debs = glob.glob(os.path.join(dl, "fail2ban_*.deb"))
    if not debs:
        note("fetching Debian's fail2ban package (apt-get download) into " + dl)
        ok = _run_quiet(["apt-get", "download", "fail2ban=" + DEBIAN_VERSION], dl)
        if not ok:
            note("retrying after apt-get update, with whatever version apt offers")
            _run_quiet(["apt-get", "update"], dl)
            ok = _run_quiet(["apt-get", "download", "fail2ban=" + DEBIAN_VERSION], dl) or \
                _run_quiet(["apt-get", "download", "fail2ban"], dl)
        debs = glob.glob(os.path.join(dl, "fail2ban_*.deb"))
        if not ok or not debs:
            return None
    deb = sorted(debs)[-1]
    if "_%s_" % DEBIAN_VERSION not in os.path.basename(deb):
        note("WARNING: %s is not fail2ban %s, the reference version" % (deb, DEBIAN_VERSION))
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if not _run_quiet(["dpkg-deb", "-x", deb, tmp], dl):
        return None
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    return root


def _tree(env_name, default):
    """(config, files) for a reference tree named by env or default, or None."""
    given = os.environ.get(env_name)
    found = _layout(given or default)
    if given and not found:
        note("%s=%s holds neither config/filter.d nor etc/fail2ban/filter.d" % (env_name, given))
    return found


def ref102():
    """(config dir, test files dir) of fail2ban 1.0.2, falling back to Debian's package."""
    found = _tree("F2B_REF_102", os.path.join(SHARED, "fail2ban-1.0.2"))
    if found:
        return found
    note("1.0.2 reference tree not found; falling back to Debian's fail2ban package")
    return _layout(debian_package_root())


def ref_upstream():
    """(config dir, test files dir) of the newest upstream tree, or None."""
    found = _tree("F2B_REF_UPSTREAM", os.path.join(SHARED, "fail2ban-upstream"))
    if not found:
        note("upstream reference tree not found (no fallback)")
    return found


def realworld():
    """The real-world log directory, or None (there is no fallback)."""
    path = os.environ.get("F2B_REALWORLD") or os.path.join(SHARED, "realworld-logs")
    if os.path.isdir(path):
        return path
    note("real-world logs not found at %s (set F2B_REALWORLD); there is no fallback" % path)
    return None


def stock_config():
    """The stock configuration tree the benchmark compares against."""
    given = os.environ.get("F2B_REF_CONFIG")
    if given:
        if os.path.isdir(os.path.join(given, "filter.d")):
            return given
        note("F2B_REF_CONFIG=%s has no filter.d; using the 1.0.2 tree" % given)
    elif os.path.isdir("/etc/fail2ban/filter.d"):
        return "/etc/fail2ban"
    found = ref102()
    return found[0] if found else None


def python_regex():
    """Path of Python's fail2ban-regex (a wrapper script when taken from the package)."""
    given = os.environ.get("F2B_PYTHON_REGEX")
    if given:
        return given
    if os.access("/usr/bin/fail2ban-regex", os.X_OK):
        return "/usr/bin/fail2ban-regex"
    root = debian_package_root()
    if not root or not os.access(SYSTEM_PYTHON, os.X_OK):
        note("Python's fail2ban-regex is not available (no /usr/bin/fail2ban-regex, "
             "no package to run with %s)" % SYSTEM_PYTHON)
        return None
    wrapper = os.path.join(cache_dir(), "fail2ban-regex-py")
    with open(wrapper, "w") as out:
        out.write("#!/bin/sh\nPYTHONPATH='%s' exec %s '%s' \"$@\"\n" % (
            os.path.join(root, PY_SITE), SYSTEM_PYTHON,
            os.path.join(root, "usr", "bin", "fail2ban-regex")))
    os.chmod(wrapper, 0o755)
    return wrapper


def python_lib():
    """(interpreter, dist-packages dir) able to `import fail2ban` 1.0.2, or None."""
    python = os.environ.get("F2B_PYTHON") or SYSTEM_PYTHON
    if not os.access(python, os.X_OK):
        note("no Python interpreter at %s (set F2B_PYTHON)" % python)
        return None
    system_site = "/" + PY_SITE
    if os.path.isdir(os.path.join(system_site, "fail2ban")):
        return python, system_site
    root = debian_package_root()
    return (python, os.path.join(root, PY_SITE)) if root else None


def ours(build=True):
    """Path of our fail2ban-regex; builds the default one when it is missing (if `build`)."""
    given = os.environ.get("F2B_OURS")
    if given:
        return given
    path = os.path.join(REPO_ROOT, "target", "release", "fail2ban-regex")
    if not os.path.exists(path) and build:
        note("building %s (cargo build --release)" % path)
        res = subprocess.run(["cargo", "build", "--release", "--bin", "fail2ban-regex"],
                             cwd=REPO_ROOT)
        if res.returncode != 0 or not os.path.exists(path):
            note("cargo build --release failed")
            return None
    return path


def our_config():
    """Our own configuration tree (etc/fail2ban of this repository)."""
    return os.path.join(REPO_ROOT, "etc", "fail2ban")


def our_logs():
    """Our own annotated sample logs."""
    return os.path.join(REPO_ROOT, "compat-tests", "logs")


def resolved(build=True):
    """Every resolved value as an ordered list of (KEY, value-or-empty)."""
    r102 = ref102()
    rup = ref_upstream()
    lib = python_lib()
    return [
        ("REF102_CONFIG", r102[0] if r102 else ""),
        ("REF102_FILES", r102[1] if r102 else ""),
        ("UPSTREAM_CONFIG", rup[0] if rup else ""),
        ("UPSTREAM_FILES", rup[1] if rup else ""),
        ("REALWORLD", realworld() or ""),
        ("STOCK_CONFIG", stock_config() or ""),
        ("PYTHON_REGEX", python_regex() or ""),
        ("PYTHON", lib[0] if lib else ""),
        ("PYTHON_LIB", lib[1] if lib else ""),
        ("OURS", ours(build) or ""),
        ("OUR_CONFIG", our_config()),
        ("OUR_LOGS", our_logs()),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--print", action="store_true", dest="print_",
                        help="print the resolved paths as KEY=path lines")
    parser.add_argument("--build", action="store_true",
                        help="build our binary (cargo build --release) when it is missing")
    args = parser.parse_args()
    if not args.print_:
        parser.print_help()
        return 2
    for key, value in resolved(build=args.build):
        print("%s=%s" % (key, value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
