#!/usr/bin/env python3
"""End to end: the Asterisk guide's setup, with real packets and a real firewall.

Every scenario builds three network namespaces (f2b-ast-<pid>-pbx,
-attacker, -friend), veth pairs between pbx and the two others with
documentation addresses only:

    attacker 192.0.2.2/24, 2001:db8::2/64  <->  pbx 192.0.2.1/24, 2001:db8::1/64
    friend 198.51.100.2/24, 203.0.113.7/24 <->  pbx 198.51.100.1/24, 203.0.113.1/24

and runs in pbx a stand-in PBX (pbx_standin.py: UDP 5060 on IPv4 and IPv6, one
chan_sip "Wrong password" line per datagram) and the server under test, with
a copy of the stock configuration plus the guide's `jail.local`.  Datagrams
are sent one at a time from the other namespaces; whether they still reach
the PBX is read from the PBX's own counters.  The firewall is read inside pbx
(`iptables -S`, `ip6tables -S`, `nft list ruleset`); nothing outside the
test's namespaces is touched, and the namespaces, processes and temporary
files are removed at the end, also on failure or interruption.

Scenarios (all by default, or --scenario NAME, repeatable):
  guide           [asterisk-iptables] as the guide writes it: iptables-allports
                  (name=ASTERISK, protocol=all) + sendmail-whois, maxretry 5,
                  short bantime; IPv4 and IPv6 attackers banned, the friend
                  (ignoreip) never, mails handed to the stand-in sendmail,
                  `status` outputs compared with Python's client, unban after
                  bantime, `fail2ban-client stop` cleans up.
  guide-longban   the same jail with the guide's bantime = 259200: ban only,
                  then SIGTERM cleans up.
  debian          Debian's own [asterisk] jail (enabled + logpath only):
                  iptables-multiport on tcp and udp, maxretry 10; client stop.
  nftables        Debian's [asterisk] jail with banaction = nftables, IPv4 and
                  IPv6 attackers; SIGTERM cleans up.
  ours-guide      the guide scenario on our own etc/fail2ban tree instead of
                  the stock one (same jail.local, same checks).
  ours-asterisk   our own [asterisk] jail (enabled + logpath only):
                  iptables-multiport with one chain f2b-asterisk jumped to for
                  tcp and udp, maxretry 10; client stop.
  ours-nftables   our [asterisk] jail with banaction = nftables-multiport: one
                  set per family (addr-set-asterisk, addr6-set-asterisk), IPv4
                  and IPv6 attackers, the friend; SIGTERM cleans up.

The stock sendmail-common action calls /usr/sbin/sendmail by its absolute
path: a `action.d/sendmail-common.local` sets `mailcmd` to plain `sendmail`,
so that the stand-in first on the server's PATH receives the mail (a `whois`
stand-in answers without network).

Usage: asterisk_guide.py [--server PATH|python|ours] [--client PATH|python|ours]
                         [--scenario NAME ...] [--keep]
Programs also from env F2B_SERVER / F2B_CLIENT (default: ours, built when
missing).  Needs root, iproute2, iptables (nf_tables or legacy, whichever
works in a namespace) and nftables.
"""

import os
import re
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib as lib  # noqa: E402

PBX4, PBX6 = "192.0.2.1", "2001:db8::1"
ATTACKER4, ATTACKER6 = "192.0.2.2", "2001:db8::2"
FRIEND_ADDR, FRIEND_NET = "198.51.100.2", "203.0.113.7"
PBX_SIDE = {ATTACKER4: PBX4, ATTACKER6: PBX6, FRIEND_ADDR: "198.51.100.1",
            FRIEND_NET: "203.0.113.1"}
IGNOREIP = "127.0.0.1/8 ::1 198.51.100.2 203.0.113.0/24"

SEND = ("import socket,sys\n"
        "src,dst,port=sys.argv[1],sys.argv[2],int(sys.argv[3])\n"
        "fam=socket.AF_INET6 if ':' in dst else socket.AF_INET\n"
        "s=socket.socket(fam,socket.SOCK_DGRAM)\n"
        "s.bind((src,0))\n"
        "s.sendto(b'REGISTER sip:100@192.0.2.1 SIP/2.0\\r\\n\\r\\n',(dst,port))\n")

SCENARIOS = {
    "guide": dict(jail="asterisk-iptables", style="guide", bantime=15, maxretry=5,
                  attackers=(ATTACKER4, ATTACKER6), friend=True, mail=True,
                  unban=True, stop="client"),
    "guide-longban": dict(jail="asterisk-iptables", style="guide", bantime=259200,
                          maxretry=5, attackers=(ATTACKER4,), friend=False, mail=True,
                          unban=False, stop="sigterm"),
    "debian": dict(jail="asterisk", style="debian", bantime=None, maxretry=10,
                   attackers=(ATTACKER4,), friend=False, mail=False, unban=False,
                   stop="client"),
    "nftables": dict(jail="asterisk", style="debian", banaction="nftables", bantime=None,
                     maxretry=10, attackers=(ATTACKER4, ATTACKER6), friend=True,
                     mail=False, unban=False, stop="sigterm"),
    # the same on our own configuration tree (etc/fail2ban)
    "ours-guide": dict(jail="asterisk-iptables", style="guide", tree="ours", bantime=15,
                       maxretry=5, attackers=(ATTACKER4, ATTACKER6), friend=True, mail=True,
                       unban=True, stop="client"),
    "ours-asterisk": dict(jail="asterisk", style="debian", tree="ours", bantime=None,
                          maxretry=10, attackers=(ATTACKER4,), friend=False, mail=False,
                          unban=False, stop="client", places=["f2b-asterisk"],
                          protocols=("tcp", "udp")),
    "ours-nftables": dict(jail="asterisk", style="debian", tree="ours",
                          banaction="nftables-multiport", bantime=None, maxretry=10,
                          attackers=(ATTACKER4, ATTACKER6), friend=True, mail=False,
                          unban=False, stop="sigterm", places=["addr-set-asterisk"],
                          protocols=("tcp", "udp")),
}


def jail_local(spec, logpath):
    """The test's jail.local, in the guide's words for the guide's jail."""
    lines = ["[DEFAULT]", "ignoreip = " + IGNOREIP]
    if spec.get("banaction"):
        lines.append("banaction = " + spec["banaction"])
    lines += ["", "[sshd]", "enabled = false", ""]
    if spec["style"] == "guide":
        lines += [
            "[asterisk-iptables]",
            "enabled  = true",
            "filter   = asterisk",
            "action   = iptables-allports[name=ASTERISK, protocol=all]",
            "           sendmail-whois[name=ASTERISK, dest=root, sender=fail2ban@example.org]",
            "logpath  = " + logpath,
            "maxretry = %d" % spec["maxretry"],
            "bantime  = %d" % spec["bantime"],
            ""]
    else:
        lines += ["[asterisk]", "enabled = true", "logpath = " + logpath, ""]
    return "\n".join(lines)


class Firewall:
    """Reads the pbx namespace's firewall and finds the test's bans in it."""

    def __init__(self, ns, spec):
        self.ns = ns
        self.spec = spec
        self.nft = spec.get("banaction", "").startswith("nftables")
        if spec.get("places"):
            self.places = spec["places"]
        elif self.nft:
            self.places = ["addr-set-asterisk-tcp", "addr-set-asterisk-udp"]
        elif spec["style"] == "guide":
            self.places = ["f2b-ASTERISK"]
        else:
            self.places = ["f2b-asterisk-tcp", "f2b-asterisk-udp"]

    def dump(self, family):
        if self.nft:
            return lib.in_netns(self.ns, "nft", "list", "ruleset")
        tool = lib.IPTABLES["ip6tables" if family == 6 else "iptables"]
        return lib.in_netns(self.ns, tool, "-w", "-S")

    def everything(self):
        if self.nft:
            return self.dump(4)
        return self.dump(4) + self.dump(6)

    def banned_in(self, ip):
        """The chains (or sets) that hold a reject rule (or element) for ip."""
        fam = 6 if ":" in ip else 4
        text = self.dump(fam)
        found = []
        if self.nft:
            for place in self.places:
                name = place.replace("addr-set", "addr6-set") if fam == 6 else place
                block = re.search(r"set %s \{(.*?)\n\t\}" % re.escape(name), text, re.S)
                if block and re.search(r"elements = \{[^}]*\b%s\b" % re.escape(ip),
                                       block.group(1)):
                    found.append(place)
            return found
        mask = "128" if fam == 6 else "32"
        for place in self.places:
            rule = "-A %s -s %s/%s -j REJECT" % (place, ip, mask)
            if any(line.startswith(rule) for line in text.splitlines()):
                found.append(place)
        return found

    def jumps(self, fam):
        """The INPUT rules jumping to the test's chains (iptables only)."""
        return [line for line in self.dump(fam).splitlines()
                if line.startswith("-A INPUT ") and " -j f2b-" in line]

    def nft_rules(self):
        return [line.strip() for line in self.dump(4).splitlines() if "@addr" in line]


class Scenario:
    """One scenario: its namespaces, work directory, stand-in PBX and server."""

    def __init__(self, name, spec, progs, checks, keep):
        self.name = name
        self.spec = spec
        self.server_prog, self.client_prog, self.py_client = progs
        self.checks = checks
        self.ns = lib.Namespaces("ast")
        self.work = lib.Workdir("e2e-asterisk-" + name, keep)
        self.pbx = None
        self.server = None
        self.counts_path = self.work.path("pbx.counts")
        self.logpath = self.work.path("asterisk", "messages")

    # --------------------------------------------------------- setup
    def topology(self):
        self.pbx_ns = self.ns.add("pbx")
        self.attacker_ns = self.ns.add("attacker")
        self.friend_ns = self.ns.add("friend")
        self.ns.link(self.pbx_ns, [PBX4 + "/24", PBX6 + "/64"],
                     self.attacker_ns, [ATTACKER4 + "/24", ATTACKER6 + "/64"])
        self.ns.link(self.pbx_ns, ["198.51.100.1/24", "203.0.113.1/24"],
                     self.friend_ns, [FRIEND_ADDR + "/24", FRIEND_NET + "/24"])

    def config(self):
        work = self.work
        if self.spec.get("tree") == "ours":
            work.copy_ours()
        else:
            work.copy_stock()
        work.fail2ban_local(dbfile=":memory:")
        os.makedirs(os.path.dirname(self.logpath))
        open(self.logpath, "w").close()
        work.write_conf("jail.local", jail_local(self.spec, self.logpath))
        work.write_conf("action.d/sendmail-common.local",
                        "[Init]\nmailcmd = sendmail -f \"<sender>\" \"<dest>\"\n")
        os.makedirs(work.path("mail"))
        work.stub("sendmail", 'n=$(date +%%s%%N)\nout="%s/mail-$n-$$.txt"\n'
                  '{ printf "ARGS: %%s\\n" "$*"; cat; } > "$out.tmp"\nmv "$out.tmp" "$out"\n'
                  % work.path("mail"))
        lib.iptables_stubs(work)
        work.stub("whois", 'printf "whois stand-in (no network) for %s\\n" "$*"\n')

    def start_pbx(self):
        ready = self.work.path("pbx.ready")
        self.pbx = subprocess.Popen(
            ["ip", "netns", "exec", self.pbx_ns, sys.executable,
             os.path.join(lib.HERE, "pbx_standin.py"), "--log", self.logpath,
             "--counts", self.counts_path, "--ready", ready],
            stdin=subprocess.DEVNULL)
        if not lib.wait_for(lambda: os.path.exists(ready), 10):
            raise RuntimeError("the stand-in PBX did not start")

    # --------------------------------------------------------- traffic
    def counts(self):
        out = {}
        for line in lib.read(self.counts_path).splitlines():
            host, count = line.split()
            out[host] = int(count)
        return out

    def send(self, ns, src):
        dst = PBX_SIDE[src]
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SEND, src, dst,
                        "5060"], check=True)

    def send_and_see(self, ns, src, timeout):
        """Sends one datagram; True when the PBX received it within timeout."""
        before = self.counts().get(src, 0)
        self.send(ns, src)
        return bool(lib.wait_for(lambda: self.counts().get(src, 0) > before, timeout))

    # --------------------------------------------------------- helpers
    def client(self, *args, program=None):
        return lib.client(program or self.client_prog, self.work, *args)

    def mails(self):
        folder = self.work.path("mail")
        return [lib.read(os.path.join(folder, f)) for f in sorted(os.listdir(folder))
                if f.endswith(".txt")]

    def mail_with(self, *needles):
        return [m for m in self.mails() if all(n in m for n in needles)]

    def compare_with_python(self, *args):
        """Runs a client command with ours and Python's; returns our output."""
        code, out, err = self.client(*args)
        self.checks.equal(code, 0, "[%s] `%s` exits 0" % (self.name, " ".join(args)))
        if self.py_client and self.py_client != self.client_prog:
            pcode, pout, _ = self.client(*args, program=self.py_client)
            self.checks.equal(out, pout, "[%s] `%s` prints what Python's client prints"
                              % (self.name, " ".join(args)))
            self.checks.equal(code, pcode, "[%s] `%s` exit status as Python's client"
                              % (self.name, " ".join(args)))
        return out

    # --------------------------------------------------------- steps
    def attack(self, fw, ip):
        c, name = self.checks, self.name
        ns = self.attacker_ns
        maxretry = self.spec["maxretry"]
        jail = self.spec["jail"]
        counted = lib.total_failed(self.work.sock, jail) or 0
        for n in range(1, maxretry):
            c.check(self.send_and_see(ns, ip, 3), "[%s] %s datagram %d reaches the PBX"
                    % (name, ip, n))
        c.check(lib.wait_for(lambda: lib.total_failed(self.work.sock, jail)
                             == counted + maxretry - 1, 10),
                "[%s] the server counted %s's %d failures" % (name, ip, maxretry - 1))
        c.equal(fw.banned_in(ip), [], "[%s] %s not banned after %d failures (maxretry %d)"
                % (name, ip, maxretry - 1, maxretry))
        c.check(self.send_and_see(ns, ip, 3), "[%s] %s datagram %d (the maxretry-th) "
                "reaches the PBX" % (name, ip, maxretry))
        banned = lib.wait_for(lambda: fw.banned_in(ip) == fw.places, 20, 0.05)
        when = time.monotonic()
        c.check(banned, "[%s] %s banned in %s" % (name, ip, ", ".join(fw.places)),
                fw.everything() + "\n" + self.server.tail())
        before = self.counts().get(ip, 0)
        self.send(ns, ip)
        time.sleep(1.5)
        c.equal(self.counts().get(ip, 0), before,
                "[%s] %s: datagrams after the ban no longer reach the PBX" % (name, ip))
        fam = 6 if ":" in ip else 4
        if fw.nft:
            rules = fw.nft_rules()
            want = ["addr6-set" if fam == 6 else "addr-set"]
            c.check(any(w in r and "reject" in r for r in rules for w in want),
                    "[%s] nft chain f2b-chain rejects the IPv%d set" % (name, fam),
                    "\n".join(rules))
        else:
            jumps = fw.jumps(fam)
            for place in fw.places:
                c.check(any(j.endswith("-j " + place) for j in jumps),
                        "[%s] INPUT jumps to %s (%s)" % (name, place,
                                                         "ip6tables" if fam == 6 else "iptables"),
                        "\n".join(jumps))
        for proto in self.spec.get("protocols", ()):
            if fw.nft:
                found = any(r.startswith(proto + " dport ") for r in fw.nft_rules())
                where = "the nft chain"
            else:
                found = any(" -p %s " % proto in j for j in fw.jumps(fam))
                where = "INPUT"
            c.check(found, "[%s] %s sends %s traffic to the jail (IPv%d)"
                    % (name, where, proto, fam),
                    "\n".join(fw.nft_rules() if fw.nft else fw.jumps(fam)))
        if self.spec["mail"]:
            mail = lib.wait_for(lambda: self.mail_with("banned %s" % ip), 10)
            c.check(mail, "[%s] a mail naming %s was handed to sendmail" % (name, ip),
                    "\n---\n".join(self.mails()))
            if mail:
                c.check("ARGS: -f fail2ban@example.org root" in mail[0],
                        "[%s] the mail goes from fail2ban@example.org to root" % name,
                        mail[0])
                c.check("whois stand-in (no network) for %s" % ip in mail[0],
                        "[%s] the mail holds the whois answer for %s" % (name, ip), mail[0])
        return when

    def friend(self, fw):
        c, name = self.checks, self.name
        for ip in (FRIEND_ADDR, FRIEND_NET):
            arrived = sum(self.send_and_see(self.friend_ns, ip, 3) for _ in range(10))
            c.equal(arrived, 10, "[%s] friend %s: 10 datagrams reach the PBX" % (name, ip))
        seen = lib.wait_for(lambda: "Ignore %s by ip" % FRIEND_NET in self.server.log_text(), 10)
        c.check(seen, "[%s] the server logs `Ignore %s by ip`" % (name, FRIEND_NET),
                self.server.tail())
        time.sleep(1.0)
        for ip in (FRIEND_ADDR, FRIEND_NET):
            c.equal(fw.banned_in(ip), [], "[%s] friend %s is never banned" % (name, ip))
            c.check(self.send_and_see(self.friend_ns, ip, 3),
                    "[%s] friend %s: datagrams still reach the PBX" % (name, ip))

    def status(self, banned, total_banned, total_failed, current_failed):
        c, name, jail = self.checks, self.name, self.spec["jail"]
        out = self.compare_with_python("status")
        c.equal(out, "Status\n|- Number of jail:\t1\n`- Jail list:\t%s\n" % jail,
                "[%s] `status` lists the one jail" % name)
        out = self.compare_with_python("status", jail)
        fields = dict(re.findall(r"^[|` -]*([A-Z][A-Za-z ]+):\t(.*)$", out, re.M))
        c.equal(out.splitlines()[0] if out else "", "Status for the jail: %s" % jail,
                "[%s] `status %s` header" % (name, jail))
        c.equal(fields.get("File list"), self.logpath, "[%s] status: File list" % name)
        c.equal(fields.get("Currently failed"), str(current_failed),
                "[%s] status: Currently failed" % name)
        c.equal(fields.get("Total failed"), str(total_failed), "[%s] status: Total failed"
                % name)
        c.equal(fields.get("Currently banned"), str(len(banned)),
                "[%s] status: Currently banned" % name)
        c.equal(fields.get("Total banned"), str(total_banned), "[%s] status: Total banned"
                % name)
        c.equal(sorted(fields.get("Banned IP list", "").split()), sorted(banned),
                "[%s] status: Banned IP list" % name)

    def unban(self, fw, bans):
        c, name = self.checks, self.name
        bantime = self.spec["bantime"]
        for ip, when in bans:
            gone = lib.wait_for(lambda: fw.banned_in(ip) == [], bantime + 15, 0.1)
            after = time.monotonic() - when
            c.check(gone, "[%s] %s unbanned after bantime" % (name, ip), fw.everything())
            c.check(after >= bantime - 2, "[%s] %s not unbanned early (%.1f s after the ban, "
                    "bantime %d)" % (name, ip, after, bantime))
            c.check(self.send_and_see(self.attacker_ns, ip, 3),
                    "[%s] %s: datagrams reach the PBX again after the unban" % (name, ip))

    def stop(self, fw):
        c, name = self.checks, self.name
        if self.spec["stop"] == "client":
            code, out, err = self.client("stop")
            c.equal((code, out), (0, "Shutdown successful\n"),
                    "[%s] `fail2ban-client stop` answers `Shutdown successful`" % name)
        else:
            self.server.signal(15)
        status = self.server.wait_exit(30)
        c.equal(status, 0, "[%s] server exits 0 after %s" % (name, self.spec["stop"]))
        left = [line for line in fw.everything().splitlines() if "f2b-" in line]
        c.equal(left, [], "[%s] no f2b- chain, jump, table or set is left" % name)
        c.check(not os.path.exists(self.work.sock), "[%s] the socket is removed" % name)
        c.check(not os.path.exists(self.work.pidfile), "[%s] the pidfile is removed" % name)
        if self.spec["mail"]:
            c.check(lib.wait_for(lambda: self.mail_with("stopped on"), 5),
                    "[%s] the `stopped` mail was sent" % name)

    # --------------------------------------------------------- run
    def run(self):
        c, name, spec = self.checks, self.name, self.spec
        lib.say("\n== scenario %s (%s)" % (name, self.work.root))
        failed_before = c.failed
        try:
            self.topology()
            self.config()
            self.start_pbx()
            fw = Firewall(self.pbx_ns, spec)
            self.server = lib.Server(self.server_prog, self.work, netns=self.pbx_ns)
            self.server.start()
            ready = self.server.wait_ready({spec["jail"]}, 30)
            if not c.check(ready is not None, "[%s] server ready with jail %s"
                           % (name, spec["jail"]), self.server.tail()):
                return
            pid = lib.read(self.work.pidfile).strip()
            c.equal(pid, str(self.server.pid), "[%s] pidfile holds the server's pid" % name)
            if spec["mail"]:
                c.check(lib.wait_for(lambda: self.mail_with("started on"), 10),
                        "[%s] the `started` mail was sent" % name)
            bans = []
            for ip in spec["attackers"]:
                bans.append((ip, self.attack(fw, ip)))
            failures = len(bans) * spec["maxretry"]
            self.status([ip for ip, _ in bans], len(bans), failures, 0)
            if spec["friend"]:
                self.friend(fw)
            if spec["unban"]:
                self.unban(fw, bans)
                # each address sent one datagram again after its unban
                self.status([], len(bans), failures + len(bans), len(bans))
            self.stop(fw)
            errors = [line for line in self.server.log_text().splitlines() if " ERROR " in line]
            c.equal(errors, [], "[%s] no ERROR line in the server log" % name)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            c.check(False, "[%s] scenario ran to its end" % name, traceback.format_exc())
        finally:
            if c.failed > failed_before and self.server:
                lib.say(self.server.tail())
            if self.server:
                self.server.kill()
            if self.pbx and self.pbx.poll() is None:
                self.pbx.terminate()
                try:
                    self.pbx.wait(5)
                except subprocess.TimeoutExpired:
                    self.pbx.kill()
                    self.pbx.wait()
            self.ns.close()
            self.work.cleanup()


def main():
    parser = lib.base_parser(__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only this scenario (repeatable)")
    args = parser.parse_args()
    lib.install_signal_cleanup()
    checks = lib.Checks("asterisk_guide")
    reason = lib.netns_support()
    used = None
    if not reason:
        reason, used = lib.choose_iptables()
    reason = reason or lib.nft_support()
    if reason:
        checks.skip("asterisk guide end-to-end", reason)
        return checks.finish()
    progs = lib.programs(args)
    lib.say("server: %s\nclient: %s\n%s" % (progs[0], progs[1], used))
    for name in args.scenario or list(SCENARIOS):
        Scenario(name, SCENARIOS[name], progs, checks, args.keep).run()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
