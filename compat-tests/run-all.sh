#!/usr/bin/env bash
# Runs every test of the project:
#   1. formatting and lints (cargo fmt --check, clippy with -D warnings),
#   2. the unit and integration tests (cargo test),
#   3. the sample-log harness (every `# failJSON:` annotation) on fail2ban
#      1.0.2's tree, on the newest upstream tree and on our own etc/fail2ban,
#   4. the differential tests against Python's fail2ban-regex,
#   5. the end-to-end tests of the server and the demo, packaging/demo.sh
#      (root: network namespaces, real iptables/nftables; without root they
#      are skipped with the reason),
#   6. the benchmarks against Python (figures only, never a failure; leave
#      them out with --no-bench).
# Reference trees come from ../shared or, when absent, from Debian's package
# (see compat-tests/refs.py).
set -euo pipefail
cd "$(dirname "$0")/.."

bench=1
for arg in "$@"; do
    case "$arg" in
        --no-bench) bench=0 ;;
        *) echo "usage: $0 [--no-bench]" >&2; exit 2 ;;
    esac
done

step() { printf '\n===== %s =====\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --release"
cargo build --release --workspace

# the Rust tests read the same references (REF102_CONFIG ...)
step "reference trees"
while IFS='=' read -r key value; do
    export "$key=$value"
    echo "$key=$value"
done < <(python3 compat-tests/refs.py --print)

step "cargo test"
cargo test --workspace --release

status=0
samples() {
    target/release/samples "$@" || status=1
}

# fail2ban's own test filters (zzz-*) ship in the Python package only
TEST_CONFIG=()
if [ -n "${PYTHON_LIB:-}" ] && [ -d "$PYTHON_LIB/fail2ban/tests/config/filter.d" ]; then
    TEST_CONFIG=(--test-config "$PYTHON_LIB/fail2ban/tests/config")
fi

step "sample logs: fail2ban 1.0.2"
samples --title "(fail2ban 1.0.2)" --config "$REF102_CONFIG" --logs "$REF102_FILES/logs" "${TEST_CONFIG[@]}"

if [ -n "${UPSTREAM_CONFIG:-}" ]; then
    step "sample logs: fail2ban upstream"
    # the zzz-sshd-obsolete-multiline test filter of the 1.0.2 package predates
    # upstream's sshd-session lines, and upstream's own copy is not part of
    # the reference tree: it is skipped there (it has no annotations of its
    # own; the sshd test checks every sshd annotation)
    samples --title "(fail2ban upstream)" --config "$UPSTREAM_CONFIG" --logs "$UPSTREAM_FILES/logs" \
        "${TEST_CONFIG[@]}" --skip zzz-sshd-obsolete-multiline
else
    echo "upstream tree not available (see refs.py output above): skipped"
fi

step "sample logs: our etc/fail2ban"
samples --title "(fail2ban-rs etc/fail2ban)" --config etc/fail2ban --logs compat-tests/logs

step "differential tests against Python's fail2ban-regex"
python3 compat-tests/differential/difftest.py || status=1

step "end-to-end tests of the server"
if [ "$(id -u)" -eq 0 ]; then
    bash compat-tests/e2e/run-e2e.sh || status=1
else
    echo "SKIP: the end-to-end tests need root (network namespaces, iptables); run as root to include them"
fi

step "the demo (packaging/demo.sh)"
if [ "$(id -u)" -eq 0 ]; then
    bash packaging/demo.sh || status=1
else
    echo "SKIP: packaging/demo.sh needs root (network namespaces, iptables); run as root to include it"
fi

if [ "$bench" -eq 1 ]; then
    step "benchmark: fail2ban-regex against Python's (figures)"
    python3 compat-tests/bench/bench.py || echo "benchmark did not complete (not a test failure)"
    step "benchmark: fail2ban-server against Python's (figures)"
    python3 compat-tests/bench/daemon_bench.py || echo "benchmark did not complete (not a test failure)"
fi

exit $status
