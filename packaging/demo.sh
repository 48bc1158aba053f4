#!/usr/bin/env bash
# The main job of fail2ban-rs, end to end, on our own configuration tree
# (etc/fail2ban): a stand-in Asterisk PBX logs every SIP registration
# attempt it receives as a failed one; our fail2ban-server watches that log
# with the stock [asterisk] jail, bans the attacking address in iptables
# (iptables-allports), mails the ban (sendmail-whois), lifts the ban after
# bantime and removes its chain when stopped.
#
# Needs root: everything happens in two network namespaces of its own
# ("pbx" and "attacker", joined by a veth pair, documentation addresses
# 192.0.2.0/24 only).  The firewall of this machine's own namespace is never
# touched: every iptables command runs inside the pbx namespace.  Mail goes
# to a stand-in sendmail that keeps it in the temporary directory; whois is
# a stand-in too (the namespaces have no Internet).  Namespaces, processes
# and files are removed at the end, also on failure or Ctrl-C.
#
# Exit status 0 only when every step was observed: failures logged, ban in
# the firewall and in `status`, ignoreip respected, mail captured, unban
# after bantime, chain removed on stop.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bantime=20
pbx_ip=192.0.2.1
attacker_ip=192.0.2.2
friend_ip=192.0.2.10      # in ignoreip as an address
friend_net_ip=192.0.2.200 # in ignoreip through 192.0.2.192/26

heading() { printf '\n===== %s =====\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
die() {
    printf '\nDEMO FAILED: %s\n' "$*" >&2
    if [ -n "${tmp:-}" ] && [ -s "$tmp/fail2ban.log" ]; then
        printf '\nserver log (last lines):\n' >&2
        tail -n 20 "$tmp/fail2ban.log" >&2
    fi
    exit 1
}
# within SECONDS CMD...: runs CMD every 0.1 s until it succeeds, for at most SECONDS
within() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh needs root (network namespaces, iptables): run it as 'sudo $0'" >&2
    exit 1
fi
for tool in ip iptables python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install iproute2 iptables python3)"
done
# the interpreter itself, not a wrapper (pyenv's shim), so that $! is the PBX's own pid
python=$(python3 -c 'import sys; print(sys.executable)')

server=$repo/target/release/fail2ban-server
client=$repo/target/release/fail2ban-client
if [ ! -x "$server" ] || [ ! -x "$client" ]; then
    command -v cargo >/dev/null || die "$server is missing: build it first with 'cargo build --release'"
    heading "building the release binaries"
    (cd "$repo" && cargo build --release --bin fail2ban-server --bin fail2ban-client)
fi

ns_pbx=f2b-demo-$$-pbx
ns_att=f2b-demo-$$-attacker
tmp=
server_pid=
pbx_pid=
namespaces=()

stop_pid() { # SIGTERM, then SIGKILL after 10 s
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    within 10 eval "! kill -0 $1 2>/dev/null" || kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_pid "$server_pid"
    stop_pid "$pbx_pid"
    for ns in "${namespaces[@]}"; do ip netns del "$ns"; done
    [ -n "$tmp" ] && rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

in_pbx() { ip netns exec "$ns_pbx" "$@"; }
f2b() { "$client" -c "$tmp/conf" -s "$tmp/run/fail2ban.sock" "$@"; }
# send FROM COUNT: COUNT SIP-like datagrams from the attacker namespace to the PBX
send() {
    ip netns exec "$ns_att" "$python" -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(int(sys.argv[2])):
    s.sendto(b"REGISTER sip:100@" + sys.argv[3].encode() + b" SIP/2.0\r\n\r\n", (sys.argv[3], 5060))
' "$1" "$2" "$pbx_ip"
}
received() { awk -v ip="$1" '$1 == ip { print $2 }' "$tmp/counts"; } # datagrams the PBX got from an address
has_received() { [ "$(received "$1")" = "$2" ]; }
chain_has() { in_pbx iptables -w -S f2b-ASTERISK 2>/dev/null | grep -q -- "-s $1/32 "; }
banned_list() { f2b status asterisk | sed -n 's/.*Banned IP list:[[:space:]]*//p' | xargs; }
banned_count() { f2b status asterisk | sed -n 's/.*Currently banned:[[:space:]]*//p'; }
ban_mail() { grep -l "banned $attacker_ip" "$tmp"/mail/*.txt 2>/dev/null | head -n 1; }

heading "network: namespaces $ns_pbx ($pbx_ip) and $ns_att"
tmp=$(mktemp -d /tmp/f2b-demo.XXXXXX)
for ns in "$ns_pbx" "$ns_att"; do
    ip netns add "$ns"
    namespaces+=("$ns")
    ip -n "$ns" link set lo up
done
ip -n "$ns_pbx" link add veth-pbx type veth peer name veth-att netns "$ns_att"
ip -n "$ns_pbx" addr add "$pbx_ip/24" dev veth-pbx
for addr in "$attacker_ip" "$friend_ip" "$friend_net_ip"; do
    ip -n "$ns_att" addr add "$addr/24" dev veth-att
done
ip -n "$ns_pbx" link set veth-pbx up
ip -n "$ns_att" link set veth-att up
in_pbx iptables -w -L -n >/dev/null 2>&1 || die "iptables does not work inside a network namespace here"
ip -n "$ns_att" -4 -brief addr show dev veth-att

heading "configuration: a copy of etc/fail2ban with jail.d/demo.local"
mkdir -p "$tmp/run" "$tmp/mail" "$tmp/bin"
cp -a "$repo/etc/fail2ban" "$tmp/conf"
: >"$tmp/messages"
printf '[DEFAULT]\ndbfile = None\n' >"$tmp/conf/fail2ban.local"
cat >"$tmp/bin/sendmail" <<EOF
#!/bin/sh
# stand-in sendmail: keeps each mail as a file
exec cat >"$tmp/mail/\$(date +%s%N)-\$\$.txt"
EOF
cat >"$tmp/bin/whois" <<'EOF'
#!/bin/sh
echo "whois stand-in (the demo has no Internet): $1 is a documentation address (RFC 5737)"
EOF
chmod 755 "$tmp/bin/sendmail" "$tmp/bin/whois"
cat >"$tmp/conf/jail.d/demo.local" <<EOF
# the demo's own settings: only the [asterisk] jail, on the PBX's log
[sshd]
enabled = false

[asterisk]
enabled  = true
logpath  = $tmp/messages
maxretry = 5
bantime  = $bantime
ignoreip = 127.0.0.1/8 ::1 $friend_ip 192.0.2.192/26
action   = iptables-allports[name=ASTERISK, protocol=all]
           sendmail-whois[name=ASTERISK, dest=root@example.org, sender=fail2ban@example.org, sendmail=$tmp/bin/sendmail]
EOF
cat "$tmp/conf/jail.d/demo.local"

heading "starting the stand-in PBX and fail2ban-server in $ns_pbx"
# started by `ip netns exec` itself (not through a function, which would fork a
# subshell): $! is then the pid of the program, which cleanup() ends
ip netns exec "$ns_pbx" "$python" "$repo/compat-tests/e2e/pbx_standin.py" --log "$tmp/messages" \
    --counts "$tmp/counts" --ready "$tmp/pbx.ready" &
pbx_pid=$!
PATH="$tmp/bin:$PATH" ip netns exec "$ns_pbx" "$server" -xf -c "$tmp/conf" -s "$tmp/run/fail2ban.sock" \
    -p "$tmp/run/fail2ban.pid" --logtarget "$tmp/fail2ban.log" --loglevel INFO start \
    >"$tmp/server.out" 2>&1 &
server_pid=$!
within 10 test -e "$tmp/pbx.ready" || die "the stand-in PBX did not start"
within 10 eval 'f2b status 2>/dev/null | grep -q "Jail list:[[:space:]]*asterisk$"' ||
    die "the server did not come up with the asterisk jail: $(cat "$tmp/server.out")"
ok "server $server_pid and PBX $pbx_pid are running"

heading "failures from the ignored addresses $friend_ip and $friend_net_ip (6 each)"
send "$friend_ip" 6
send "$friend_net_ip" 6
within 5 has_received "$friend_ip" 6 && within 5 has_received "$friend_net_ip" 6 ||
    die "the PBX did not log the friendly datagrams"
sleep 0.5
[ "$(banned_count)" = 0 ] || die "status asterisk: '$(banned_count)' banned, not 0: $(banned_list)"
grep -m 1 -F "'$friend_net_ip:" "$tmp/messages"
ok "12 failures logged by the PBX (6 per address), nobody banned (ignoreip)"

heading "failures from the attacker $attacker_ip (5 = maxretry)"
send "$attacker_ip" 5
within 5 has_received "$attacker_ip" 5 || die "the PBX did not log the attacker's 5 datagrams"
grep -F "'$attacker_ip:" "$tmp/messages"
within 10 chain_has "$attacker_ip" || die "no ban of $attacker_ip in f2b-ASTERISK"
ok "$attacker_ip is banned in the firewall"
send "$attacker_ip" 3
sleep 1
has_received "$attacker_ip" 5 || die "datagrams sent after the ban reached the PBX"
ok "3 more datagrams from $attacker_ip were dropped before the PBX"

heading "the server's log"
grep -E 'Found|Ignore|Ban ' "$tmp/fail2ban.log" | sed 's/^[0-9-]* [0-9:,]* //' | uniq -c

heading "fail2ban-client status"
f2b status
heading "fail2ban-client status asterisk"
f2b status asterisk
[ "$(banned_list)" = "$attacker_ip" ] || die "status asterisk lists '$(banned_list)', not $attacker_ip"
ok "status asterisk lists exactly $attacker_ip"

heading "iptables -L -v -n (in $ns_pbx)"
in_pbx iptables -w -L -v -n
heading "iptables -S (in $ns_pbx)"
in_pbx iptables -w -S
if chain_has "$friend_ip" || chain_has "$friend_net_ip"; then die "an ignored address is in f2b-ASTERISK"; fi

heading "the mail sendmail-whois sent"
within 10 ban_mail >/dev/null || die "no mail about the ban of $attacker_ip was captured"
cat "$(ban_mail)"
ok "$(ls "$tmp/mail" | wc -l) mails captured (jail started, $attacker_ip banned)"

heading "waiting for the unban (bantime = $bantime s)"
within $((bantime + 15)) eval '! chain_has "$attacker_ip"' || die "$attacker_ip was not unbanned"
grep -E 'Unban ' "$tmp/fail2ban.log" | sed 's/^[0-9-]* [0-9:,]* //'
in_pbx iptables -w -S
in_pbx iptables -w -S f2b-ASTERISK >/dev/null 2>&1 || die "the f2b-ASTERISK chain vanished before the stop"
[ "$(banned_count)" = 0 ] || die "status asterisk: '$(banned_count)' banned after bantime, not 0"
send "$attacker_ip" 1
within 5 has_received "$attacker_ip" 6 || die "$attacker_ip still cannot reach the PBX"
ok "$attacker_ip unbanned: rule gone, status empty, its datagrams reach the PBX again"

heading "fail2ban-client stop"
f2b stop
within 15 eval '! kill -0 "$server_pid" 2>/dev/null' || die "the server did not exit after stop"
wait "$server_pid" || die "the server exited with status $?"
server_pid=
in_pbx iptables -w -S
if in_pbx iptables -w -S 2>/dev/null | grep -q f2b-ASTERISK; then die "f2b-ASTERISK is still there"; fi
ok "server stopped, f2b-ASTERISK chain and its INPUT rule removed"

heading "demo passed"
echo "failures logged, ignoreip respected, ban in iptables and status, mail captured, unban, chain removed"
