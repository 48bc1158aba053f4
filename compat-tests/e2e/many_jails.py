#!/usr/bin/env python3
"""End to end: twenty iptables jails starting and banning at the same moment.

The classic Asterisk guide adds a `time.sleep(0.1)` to fail2ban's start-up
because concurrent iptables calls made `fail2ban.action.action ERROR` lines
(and missing chains) when many jails started together.  Here 20 jails
(jail01..jail20, each with its own copy of a small filter and its own log,
`iptables-multiport` on port 10001..10020, maxretry 1) are started at once
by a server running inside a private network namespace (f2b-many-<pid>-pbx;
no interface but lo is needed: the test reads the firewall, it sends no
packets).  Every log already holds one recent failure, so all 20 jails
create their chain and ban in the same instant; then one more failure is
appended to every log at once.

Asserts: the server lists the 20 jails; every chain f2b-jailNN exists with
the INPUT jump (`-p tcp -m multiport --dports 100NN`) and both banned
addresses; the server log has no ERROR line; `fail2ban-client stop` removes
every chain and jump, and the server exits 0.

Usage: many_jails.py [--server PATH|python|ours] [--client PATH|python|ours]
                     [--jails N] [--keep]
"""

import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib as lib  # noqa: E402


def jail_name(n):
    return "jail%02d" % n


def first_ip(n):
    return "192.0.2.%d" % n


def second_ip(n):
    return "198.51.100.%d" % n


def write_config(work, count):
    work.copy_stock()
    work.fail2ban_local()
    lib.iptables_stubs(work)
    os.makedirs(work.path("logs"))
    sections = ["[sshd]", "enabled = false", ""]
    for n in range(1, count + 1):
        name = jail_name(n)
        work.write_conf("filter.d/e2e-%s.conf" % name, lib.SIMPLE_FILTER)
        log = work.path("logs", name + ".log")
        lib.append(log, lib.failure_line(first_ip(n)))
        sections += ["[%s]" % name, "enabled = true", "filter = e2e-%s" % name,
                     "logpath = " + log, "banaction = iptables-multiport",
                     "port = %d" % (10000 + n), "protocol = tcp", "maxretry = 1",
                     "findtime = 10m", "bantime = 1h", ""]
    work.write_conf("jail.local", "\n".join(sections))


def chain_state(ns, count):
    """{jail: (has jump, set of banned addresses)} read from `iptables -S`."""
    text = lib.in_netns(ns, lib.IPTABLES["iptables"], "-w", "-S")
    state = {}
    for n in range(1, count + 1):
        chain = "f2b-" + jail_name(n)
        jump = "-A INPUT -p tcp -m multiport --dports %d -j %s" % (10000 + n, chain)
        banned = set()
        exists = ("-N %s" % chain) in text.splitlines()
        for line in text.splitlines():
            words = line.split()
            if words[:2] == ["-A", chain] and "-s" in words:
                banned.add(words[words.index("-s") + 1].split("/")[0])
        state[jail_name(n)] = (exists, jump in text.splitlines(), banned)
    return state, text


def main():
    parser = lib.base_parser(__doc__.split("\n")[0])
    parser.add_argument("--jails", type=int, default=20)
    args = parser.parse_args()
    lib.install_signal_cleanup()
    checks = lib.Checks("many_jails")
    reason, used = lib.netns_support(), None
    if not reason:
        reason, used = lib.choose_iptables()
    if reason:
        checks.skip("twenty jails at once", reason)
        return checks.finish()
    server_prog, client_prog, _ = lib.programs(args)
    lib.say("server: %s\nclient: %s\n%s" % (server_prog, client_prog, used))
    count = args.jails
    names = {jail_name(n) for n in range(1, count + 1)}
    ns = lib.Namespaces("many")
    work = lib.Workdir("e2e-many", args.keep)
    server = None
    c = checks
    try:
        pbx = ns.add("pbx")
        write_config(work, count)
        server = lib.Server(server_prog, work, netns=pbx)
        server.start()
        ready = server.wait_ready(names, 60)
        if c.check(ready is not None, "server ready with %d jails" % count, server.tail()):
            lib.say("ready after %.2f s" % ready)

            def all_banned(ips):
                state, _ = chain_state(pbx, count)
                return all(s[0] and s[1] and ips(n) <= s[2]
                           for n, s in ((int(k[4:]), v) for k, v in state.items()))
            done = lib.wait_for(lambda: all_banned(lambda n: {first_ip(n)}), 30, 0.1)
            state, text = chain_state(pbx, count)
            c.check(done, "every chain f2b-jailNN exists, is jumped to from INPUT and bans "
                    "its first address", text)
            for name, (exists, jump, banned) in sorted(state.items()):
                if not (exists and jump):
                    c.check(False, "%s: chain %s, jump %s" % (name, exists, jump))
            for n in range(1, count + 1):
                lib.append(work.path("logs", jail_name(n) + ".log"),
                           lib.failure_line(second_ip(n)))
            done = lib.wait_for(lambda: all_banned(lambda n: {first_ip(n), second_ip(n)}),
                                30, 0.1)
            state, text = chain_state(pbx, count)
            c.check(done, "a second failure appended to every log at once is banned in "
                    "every chain", text)
            code, out, _ = lib.client(client_prog, work, "status")
            c.check(code == 0 and "Number of jail:\t%d\n" % count in out,
                    "`status` counts %d jails" % count, out)
            code, out, _ = lib.client(client_prog, work, "stop")
            c.equal((code, out), (0, "Shutdown successful\n"), "`stop` answers")
            c.equal(server.wait_exit(60), 0, "server exits 0")
            state, text = chain_state(pbx, count)
            left = [line for line in text.splitlines() if "f2b-" in line]
            c.equal(left, [], "no f2b- chain or jump is left after stop")
        errors = [line for line in server.log_text().splitlines() if " ERROR " in line]
        c.equal(errors, [], "no ERROR line in the server log")
    except (RuntimeError, OSError, subprocess.SubprocessError):
        c.check(False, "test ran to its end", traceback.format_exc())
    finally:
        if c.failed and server:
            lib.say(server.tail())
        if server:
            server.kill()
        ns.close()
        work.cleanup()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
