#!/usr/bin/env bash
# Runs the end-to-end tests (bad_input.py, many_jails.py, asterisk_guide.py)
# against the server and client named by F2B_SERVER / F2B_CLIENT (default:
# ours, built when missing; `python` for Debian's fail2ban 1.0.2), passing
# the arguments on to each, and closes with the added-up `N passed, N failed`.
# Needs root, iproute2, iptables, nftables and setpriv (see each script).
set -uo pipefail
cd "$(dirname "$0")"

status=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for test in bad_input.py many_jails.py asterisk_guide.py; do
    printf '\n----- %s -----\n' "$test"
    python3 "$test" "$@" | tee -a "$out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo
awk '/^[a-z_]+: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4; s += $6 }
     END { printf "e2e: %d passed, %d failed", p, f; if (s) printf ", %d skipped", s; print "" }' "$out"
exit $status
