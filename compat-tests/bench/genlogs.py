#!/usr/bin/env python3
"""Deterministic generator of large Asterisk and sshd logs for benchmarks and tests.

Two kinds of log, each a function of (lines, seed, attack share) only:

* asterisk: an Asterisk "messages" file.  Every line picks one of the two
  prefixes Asterisk writes, "[2024-01-01 12:00:00] NOTICE[1234] chan_sip.c: "
  (file only, ISO date) and "[Jan  1 12:00:00] NOTICE[1234]: chan_sip.c:24310
  handle_request_register: " (file:line and function, syslog-like date), with
  "[C-0000abcd]" call ids on call-related lines.  The attack share consists of
  chan_sip REGISTER refusals, PJSIP request failures, security-log failures,
  calls to unknown extensions and a few IAX2/AMI failures; the rest is dialplan
  VERBOSE chatter, WARNINGs, successful SECURITY events and NOTICE lines that
  no filter should count.
* sshd: a syslog auth.log of an Internet-facing host: whole sshd sessions
  (brute force with invalid and valid users, scanners, key logins of the
  owners, negotiation failures) plus CRON, sudo and systemd-logind lines.  The
  attack share is the share of failure lines (Failed password, Invalid user,
  maximum attempts ...); the PAM and disconnect lines around them are extra.

Attackers: every usable address of 192.0.2.128/25, 198.51.100.0/24 and
203.0.113.0/24 plus several thousand IPv6 addresses of 2001:db8::/32, drawn
with a long-tailed popularity.  The site's own hosts use 192.0.2.0/25.
Documentation ranges only: nothing generated points at a real network.

Files are cached under target/bench-logs (env F2B_BENCH_DIR) by kind, line
count, seed, attack share and a digest of this script, so a changed generator
never reuses an old file (and removes the files an older version left).
Next to each log, NAME.stats.json records the counts per line kind.

Usage:
  genlogs.py asterisk|sshd [-n LINES] [--seed N] [--attack 0.05] [-o FILE]
prints the path of the (cached or new) file.
"""

import argparse
import glob
import hashlib
import ipaddress
import itertools
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import refs  # noqa: E402

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
START = 1704067200  # 2024-01-01 00:00:00 UTC; dates are rendered in UTC, independent of TZ
SITE_V4 = ["192.0.2.%d" % i for i in range(1, 128)]
SERVER = "192.0.2.10"


def attacker_pool(rng, n_v6=3500):
    """Attacker addresses (documentation ranges) in random order."""
    v4 = ["192.0.2.%d" % i for i in range(128, 255)]
    v4 += ["%s.%d" % (net, i) for net in ("198.51.100", "203.0.113") for i in range(1, 255)]
    v6 = set()
    while len(v6) < n_v6:
        value = (0x20010db8 << 96) | (rng.getrandbits(32) << 64)
        if rng.random() < 0.6:
            value |= rng.getrandbits(16)
        else:
            value |= rng.getrandbits(64)
        v6.add(ipaddress.IPv6Address(value).compressed)
    pool = v4 + sorted(v6)
    rng.shuffle(pool)
    return pool


def popularity(rng, pool, count):
    """`count` attackers drawn from `pool` with a long-tailed popularity."""
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(len(pool))))
    return rng.choices(pool, cum_weights=weights, k=count)


class Clock:
    """Monotonic time stamps rendered in both styles, cached per second."""

    def __init__(self, rng, mean_gap):
        self.rng = rng
        self.now = START
        self.mean_gap = mean_gap
        self.sec = None
        self.iso = self.bsd = self.syslog = ""

    def tick(self):
        self.now += self.rng.expovariate(1.0 / self.mean_gap)
        sec = int(self.now)
        if sec != self.sec:
            self.sec = sec
            t = time.gmtime(sec)
            hms = "%02d:%02d:%02d" % (t.tm_hour, t.tm_min, t.tm_sec)
            self.iso = "%04d-%02d-%02d %s" % (t.tm_year, t.tm_mon, t.tm_mday, hms)
            self.syslog = "%s %2d %s" % (MONTHS[t.tm_mon - 1], t.tm_mday, hms)
            self.bsd = self.syslog


# ---------------------------------------------------------------------------
# Asterisk

AST_SRC = {
    # kind: (file-only source, file:line function source)
    "sip_reg": ("chan_sip.c", "chan_sip.c:24310 handle_request_register"),
    "sip_inv": ("chan_sip.c", "chan_sip.c:26375 handle_request_invite"),
    "sip_peer": ("chan_sip.c", "chan_sip.c:24027 handle_response_peerpoke"),
    "sip_rtx": ("chan_sip.c", "chan_sip.c:4062 retrans_pkt"),
    "pjsip_dist": ("res_pjsip/pjsip_distributor.c",
                   "res_pjsip/pjsip_distributor.c:676 log_failed_request"),
    "pjsip_sess": ("res_pjsip_session.c", "res_pjsip_session.c:3960 new_invite"),
    "pjsip_opts": ("res_pjsip/pjsip_options.c",
                   "res_pjsip/pjsip_options.c:1297 sip_options_contact_status_notify_task"),
    "security": ("res_security_log.c", "res_security_log.c:114 security_event_stasis_cb"),
    "iax": ("chan_iax2.c", "chan_iax2.c:8874 register_verify"),
    "manager": ("manager.c", "manager.c:3542 authenticate"),
    "pbx": ("pbx.c", "pbx.c:2927 pbx_extension_helper"),
    "dial": ("app_dial.c", "app_dial.c:1227 wait_for_answer"),
    "bridge": ("bridge_channel.c", "bridge_channel.c:2258 bridge_channel_feature_digit_add"),
    "rtp": ("res_rtp_asterisk.c", "res_rtp_asterisk.c:6210 ast_rtp_read"),
    "spool": ("pbx_spool.c", "pbx_spool.c:393 attempt_thread"),
}
SIP_REASONS = ("Wrong password",) * 6 + ("No matching peer found",) * 3 + (
    "Username/auth name mismatch", "Device does not match ACL", "Not a local domain",
    "Peer is not supposed to register", "ACL error (permit/deny)")
PJSIP_REASONS = ("No matching endpoint found",) * 5 + (
    "Failed to authenticate", "Failed to authenticate", "Not match Endpoint ACL",
    "Error to authenticate", "Not match Endpoint Contact ACL")
SEC_FAILS = ("InvalidAccountID",) * 3 + ("ChallengeResponseFailed",) * 2 + (
    "InvalidPassword", "FailedACL")
SCAN_USERS = ("100", "101", "1000", "1001", "200", "2000", "admin", "test", "sip", "user",
              "guest", "9999", "asterisk", "123", "1234", "12345", "0", "operator", "support",
              "voip", "phone", "6001", "5000", "abc")
SCAN_AGENTS = ("friendly-scanner", "sipcli", "sipvicious", "VaxSIPUserAgent", "PBX", "pplsip")
DIAL_NUMBERS = ("900972599580679", "011441772285411", "00441772285407", "9011442037690237",
                "+441772285407", "0046812345678", "1000", "00", "")
EXTS = ("100", "101", "102", "103", "104", "105", "200", "201", "202", "300")
CONTEXTS = ("from-internal", "ext-local", "macro-dial-one", "from-trunk", "app-blackhole")


class AsteriskLog:
    """Line factory for the Asterisk messages file."""

    def __init__(self, rng):
        self.rng = rng
        self.clock = Clock(rng, 2.5)
        self.threads = [rng.randint(1200, 32000) for _ in range(16)]
        self.callno = rng.randint(1, 0x1000)

    def prefix(self, level, kind, call=False):
        rng = self.rng
        self.clock.tick()
        tid = self.threads[int(rng.random() * 16)]
        cid = ""
        if call:
            self.callno += 1
            cid = "[C-%08x]" % self.callno
        if rng.random() < 0.5:
            return "[%s] %s[%d]%s %s: " % (self.clock.iso, level, tid, cid, AST_SRC[kind][0])
        return "[%s] %s[%d]%s: %s: " % (self.clock.bsd, level, tid, cid, AST_SRC[kind][1])

    def attack(self, ip):
        """One line that every Asterisk filter of the benchmark should count."""
        rng = self.rng
        v6 = ":" in ip
        hostport = ("[%s]" % ip if v6 else ip) + ":%d" % rng.randint(5060, 65000)
        user = rng.choice(SCAN_USERS)
        roll = rng.random()
        if roll < 0.40:
            addr = hostport if rng.random() < 0.9 else ip
            name = rng.choice(('"%s" ' % user, "", '"%s" ' % rng.choice(SCAN_AGENTS)))
            return "sip_reg", self.prefix("NOTICE", "sip_reg") + (
                "Registration from '%s<sip:%s@%s>' failed for '%s' - %s"
                % (name, user, SERVER, addr, rng.choice(SIP_REASONS)))
        if roll < 0.65:
            method = rng.choice(("'REGISTER' ", "'REGISTER' ", "'INVITE' ", "'OPTIONS' ", ""))
            callid = "%08x-%04x@%s" % (rng.getrandbits(32), rng.getrandbits(16),
                                       ip if not v6 else "[%s]" % ip)
            tail = " after %d tries in %d.%03d ms" % (
                rng.randint(1, 9), rng.randint(0, 9), rng.randint(0, 999)) \
                if rng.random() < 0.3 else ""
            return "pjsip", self.prefix("NOTICE", "pjsip_dist") + (
                "Request %sfrom '\"%s\" <sip:%s@%s>' failed for '%s' (callid: %s) - %s%s"
                % (method, user, user, SERVER, hostport, callid, rng.choice(PJSIP_REASONS), tail))
        if roll < 0.85:
            event = rng.choice(SEC_FAILS)
            fam = "IPV6" if v6 else "IPV4"
            proto = rng.choice(("UDP", "UDP", "TCP", "TLS"))
            stamp = "%s.%03d+0000" % (self.clock.iso.replace(" ", "T"), rng.randint(0, 999))
            extra = {
                "InvalidPassword": ',Challenge="%08x",ReceivedChallenge="%08x",ReceivedHash="%032x"'
                                   % (rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(128)),
                "ChallengeResponseFailed": ',Challenge="%d/%032x",Response="%032x",ExpectedResponse=""'
                                           % (self.clock.sec, rng.getrandbits(128), rng.getrandbits(128)),
                "FailedACL": ',ACLName="no_on_net"',
                "InvalidAccountID": "",
            }[event]
            local_fam, local = ("IPV6", "2001:db8::10") if v6 else ("IPV4", SERVER)
            return "security", self.prefix("SECURITY", "security") + (
                'SecurityEvent="%s",EventTV="%s",Severity="Error",Service="%s",EventVersion="1",'
                'AccountID="%s",SessionID="%08x-%04x",LocalAddress="%s/%s/%s/5060",'
                'RemoteAddress="%s/%s/%s/%d"%s'
                % (event, stamp, rng.choice(("PJSIP", "PJSIP", "SIP")), user, rng.getrandbits(32),
                   rng.getrandbits(16), local_fam, proto, local, fam, proto, ip,
                   rng.randint(1024, 65000), extra))
        if roll < 0.97:
            if rng.random() < 0.5:
                src, caller, where = "sip_inv", rng.choice(("", user, "anonymous")), hostport
            else:
                src, caller = "pjsip_sess", rng.choice(("anonymous", user))
                where = rng.choice(("UDP:", "TCP:")) + ("[%s]:%d" % (ip, rng.randint(5060, 65000)))
            return "call", self.prefix("NOTICE", src, call=True) + (
                "Call from '%s' (%s) to extension '%s' rejected because extension not found in "
                "context '%s'." % (caller, where, rng.choice(DIAL_NUMBERS),
                                   rng.choice(("default", "public", "from-sip-external"))))
        if rng.random() < 0.5:
            return "ami", self.prefix("NOTICE", "manager") + (
                "%s failed to authenticate as '%s'" % (ip, rng.choice(("admin", "manager", "root"))))
        return "iax", self.prefix("NOTICE", "iax") + (
            "No registration for peer '%s' (from %s)" % (user, ip))

    def noise(self):
        """One line no Asterisk filter of the benchmark should count."""
        rng = self.rng
        roll = rng.random()
        ext = rng.choice(EXTS)
        chan = "%s/%s-%08x" % (rng.choice(("SIP", "PJSIP")), ext, rng.getrandbits(28))
        if roll < 0.50:
            app = rng.choice((
                'Dial("%s", "SIP/%s,20,tr")' % (chan, rng.choice(EXTS)),
                'Answer("%s", "")' % chan, 'Playback("%s", "custom/welcome")' % chan,
                'Set("%s", "CDR(userfield)=%d")' % (chan, rng.randint(0, 99)),
                'NoOp("%s", "Incoming call from %s")' % (chan, ext),
                'Macro("%s", "user-callerid,")' % chan, 'Hangup("%s", "")' % chan,
                'Goto("%s", "ext-local,%s,1")' % (chan, rng.choice(EXTS))))
            return "verbose", self.prefix("VERBOSE", "pbx", call=True) + (
                "  -- Executing [%s@%s:%d] %s in new stack"
                % (rng.choice(EXTS), rng.choice(CONTEXTS), rng.randint(1, 12), app))
        if roll < 0.65:
            msg = rng.choice(("  -- %s is ringing" % chan, "  -- %s answered %s" % (chan, chan),
                              "  -- Called SIP/%s" % ext, "  -- Nobody picked up in 20000 ms",
                              "  -- %s is busy" % chan))
            return "verbose", self.prefix("VERBOSE", "dial", call=True) + msg
        if roll < 0.72:
            return "notice", self.prefix("NOTICE", "sip_peer") + (
                "Peer '%s' is now %s" % (ext, rng.choice((
                    "Reachable. (%dms / 2000ms)" % rng.randint(1, 80),
                    "UNREACHABLE!  Last qualify: %d" % rng.randint(0, 50),
                    "Lagged. (2%03dms / 2000ms)" % rng.randint(0, 999)))))
        if roll < 0.78:
            return "notice", self.prefix("NOTICE", "pjsip_opts") + (
                "Contact %s/sip:%s@%s:5060 is now %s" % (
                    ext, ext, rng.choice(SITE_V4), rng.choice((
                        "Reachable.  RTT: %d.%03d msec" % (rng.randint(0, 90), rng.randint(0, 999)),
                        "Unreachable.  RTT: 0.000 msec"))))
        if roll < 0.82:
            return "notice", self.prefix("NOTICE", "spool") + rng.choice((
                "Call completed to SIP/%s" % ext,
                "Call failed to go through, reason (5) Remote end is Busy",
                "Queued call to SIP/%s expired without completion after 3 attempts" % ext))
        if roll < 0.85:
            return "notice", self.prefix("NOTICE", "sip_inv", call=True) + (
                'Failed to authenticate device "%s" <sip:%s@%s>;tag=%08x'
                % (ext, ext, rng.choice(SITE_V4), rng.getrandbits(32)))
        if roll < 0.92:
            return "warning", self.prefix("WARNING", rng.choice(("sip_rtx", "rtp", "bridge"))) + rng.choice((
                "Retransmission timeout reached on transmission %08x@%s for seqno %d (Critical "
                "Response) -- See https://wiki.asterisk.org/wiki/display/AST/SIP+Retransmissions"
                % (rng.getrandbits(32), SERVER, rng.randint(100, 999)),
                "RTP Read too short",
                "Unable to find a bridge channel for %s" % chan))
        if roll < 0.97:
            ip = rng.choice(SITE_V4)
            event = rng.choice(("SuccessfulAuth", "ChallengeSent"))
            if event == "SuccessfulAuth":
                tail = ',UsingPassword="1"'
            else:
                tail = ',Challenge="%08x"' % rng.getrandbits(32)
            return "security_ok", self.prefix("SECURITY", "security") + (
                'SecurityEvent="%s",EventTV="%s.%03d+0000",Severity="Informational",Service="PJSIP",'
                'EventVersion="1",AccountID="%s",SessionID="%08x",LocalAddress="IPV4/UDP/%s/5060",'
                'RemoteAddress="IPV4/UDP/%s/5060"%s'
                % (event, self.clock.iso.replace(" ", "T"), rng.randint(0, 999), ext,
                   rng.getrandbits(32), SERVER, ip, tail))
        return "verbose", self.prefix("VERBOSE", "pbx", call=True) + (
            "  == Spawn extension (%s, %s, 1) exited non-zero on '%s'"
            % (rng.choice(CONTEXTS), ext, chan))


def gen_asterisk(rng, lines, share, out):
    """Writes `lines` Asterisk lines; returns the counts per kind."""
    log = AsteriskLog(rng)
    attacks = round(lines * share)
    who = iter(popularity(rng, attacker_pool(rng), attacks))
    counts = {}
    attack_at = set(rng.sample(range(lines), attacks))
    chunk = []
    for i in range(lines):
        kind, line = log.attack(next(who)) if i in attack_at else log.noise()
        counts[kind] = counts.get(kind, 0) + 1
        chunk.append(line)
        if len(chunk) >= 8192:
            out.write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        out.write("\n".join(chunk) + "\n")
    counts["attack lines"] = attacks
    return counts


# ---------------------------------------------------------------------------
# sshd

BRUTE_USERS = ("admin", "test", "user", "oracle", "postgres", "ubuntu", "pi", "git", "guest",
               "ftpuser", "support", "deploy", "hadoop", "nagios", "tomcat", "jenkins", "mysql",
               "minecraft", "www", "ansible", "vagrant", "ubnt", "teamspeak", "student", "dev")
VALID_ATTACKED = ("root", "root", "root", "www-data", "backup", "mail")
OWNERS = ("alice", "bob", "carol", "deploy-ci")
OFFERS = ("diffie-hellman-group1-sha1,diffie-hellman-group14-sha1",
          "ssh-rsa,ssh-dss", "aes128-cbc,3des-cbc", "hmac-md5,hmac-sha1")


class SshdLog:
    """Session factory for a syslog auth.log."""

    def __init__(self, rng):
        self.rng = rng
        self.clock = Clock(rng, 1.2)
        self.pid = rng.randint(1000, 5000)

    def line(self, prog, pid, msg):
        self.clock.tick()
        return "%s bastion %s[%d]: %s" % (self.clock.syslog, prog, pid, msg)

    def next_pid(self):
        self.pid = self.pid + self.rng.randint(1, 40)
        if self.pid > 4000000:
            self.pid = 1000
        return self.pid

    def attack(self, ip):
        """A brute-force session: (failure lines, all lines)."""
        rng = self.rng
        pid = self.next_pid()
        port = rng.randint(1024, 65535)
        out = []
        fails = 0
        if rng.random() < 0.55:
            user = rng.choice(BRUTE_USERS)
            out.append(self.line("sshd", pid, "Invalid user %s from %s port %d" % (user, ip, port)))
            fails += 1
            if rng.random() < 0.5:
                out.append(self.line("sshd", pid, "pam_unix(sshd:auth): check pass; user unknown"))
                out.append(self.line("sshd", pid, "pam_unix(sshd:auth): authentication failure; logname= "
                                     "uid=0 euid=0 tty=ssh ruser= rhost=%s" % ip))
            out.append(self.line("sshd", pid, "Failed password for invalid user %s from %s port %d ssh2"
                                 % (user, ip, port)))
            fails += 1
            out.append(self.line("sshd", pid, "Received disconnect from %s port %d:11: Bye Bye [preauth]"
                                 % (ip, port)))
            out.append(self.line("sshd", pid, "Disconnected from invalid user %s %s port %d [preauth]"
                                 % (user, ip, port)))
            return fails, out
        user = rng.choice(VALID_ATTACKED)
        tries = rng.randint(1, 6)
        out.append(self.line("sshd", pid, "pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                             "euid=0 tty=ssh ruser= rhost=%s  user=%s" % (ip, user)))
        for _ in range(tries):
            out.append(self.line("sshd", pid, "Failed password for %s from %s port %d ssh2"
                                 % (user, ip, port)))
        fails += tries
        if tries == 6:
            out.append(self.line("sshd", pid, "error: maximum authentication attempts exceeded for %s "
                                 "from %s port %d ssh2 [preauth]" % (user, ip, port)))
            out.append(self.line("sshd", pid, "Disconnecting authenticating user %s %s port %d: Too many "
                                 "authentication failures [preauth]" % (user, ip, port)))
            fails += 2
        elif rng.random() < 0.5:
            out.append(self.line("sshd", pid, "Connection closed by authenticating user %s %s port %d "
                                 "[preauth]" % (user, ip, port)))
        else:
            out.append(self.line("sshd", pid, "PAM %d more authentication failure%s; logname= uid=0 euid=0 "
                                 "tty=ssh ruser= rhost=%s  user=%s"
                                 % (tries - 1, "s" if tries > 2 else "", ip, user)))
        return fails, out

    def noise(self, scanner_ip):
        """A session or line that is no failure: logins, scanners, system chatter."""
        rng = self.rng
        roll = rng.random()
        pid = self.next_pid()
        port = rng.randint(1024, 65535)
        if roll < 0.30:
            ip = rng.choice(SITE_V4)
            user = rng.choice(OWNERS)
            sess = rng.randint(1, 9999)
            return [
                self.line("sshd", pid, "Connection from %s port %d on 192.0.2.1 port 22 rdomain \"\""
                          % (ip, port)),
                self.line("sshd", pid, "Accepted publickey for %s from %s port %d ssh2: ED25519 "
                          "SHA256:%043x" % (user, ip, port, rng.getrandbits(172))),
                self.line("sshd", pid, "pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)"
                          % (user, 1000 + OWNERS.index(user))),
                self.line("systemd-logind", 611, "New session %d of user %s." % (sess, user)),
                self.line("sshd", pid, "Received disconnect from %s port %d:11: disconnected by user"
                          % (ip, port)),
                self.line("sshd", pid, "Disconnected from user %s %s port %d" % (user, ip, port)),
                self.line("sshd", pid, "pam_unix(sshd:session): session closed for user %s" % user),
                self.line("systemd-logind", 611, "Session %d logged out. Waiting for processes to exit."
                          % sess),
                self.line("systemd-logind", 611, "Removed session %d." % sess),
            ]
        if roll < 0.55:
            return [
                self.line("sshd", pid, "Connection from %s port %d on 192.0.2.1 port 22 rdomain \"\""
                          % (scanner_ip, port)),
                self.line("sshd", pid, rng.choice((
                    "Connection closed by %s port %d [preauth]" % (scanner_ip, port),
                    "Connection reset by %s port %d [preauth]" % (scanner_ip, port),
                    "error: kex_exchange_identification: Connection closed by remote host",
                    "Did not receive identification string from %s port %d" % (scanner_ip, port),
                    "Unable to negotiate with %s port %d: no matching key exchange method found. "
                    "Their offer: %s [preauth]" % (scanner_ip, port, rng.choice(OFFERS)),
                    "banner exchange: Connection from %s port %d: invalid format" % (scanner_ip, port),
                    "Received disconnect from %s port %d:11: Bye Bye [preauth]" % (scanner_ip, port),
                ))),
            ]
        if roll < 0.75:
            cron = rng.randint(100000, 999999)
            return [
                self.line("CRON", cron,
                          "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
                self.line("CRON", cron, "pam_unix(cron:session): session closed for user root"),
            ]
        if roll < 0.85:
            user = rng.choice(OWNERS)
            return [
                self.line("sudo", rng.randint(100000, 999999),
                          "   %s : TTY=pts/%d ; PWD=/home/%s ; USER=root ; COMMAND=/usr/bin/systemctl "
                          "status nginx" % (user, rng.randint(0, 5), user)),
                self.line("sudo", pid, "pam_unix(sudo:session): session opened for user root(uid=0) "
                          "by %s(uid=%d)" % (user, 1000 + OWNERS.index(user))),
                self.line("sudo", pid, "pam_unix(sudo:session): session closed for user root"),
            ]
        if roll < 0.95:
            reason = rng.choice(("Bye Bye", "", "Normal Shutdown, Thank you for playing"))
            return [self.line("sshd", pid, "Received disconnect from %s port %d:11: %s [preauth]"
                              % (scanner_ip, port, reason))]
        return [self.line("systemd", 1, rng.choice((
            "Started session-%d.scope - Session %d of User alice." % (pid, pid),
            "ssh.service: Reloading.", "Reloaded ssh.service - OpenBSD Secure Shell server.",
            "Starting logrotate.service - Rotate log files...")))]


def gen_sshd(rng, lines, share, out):
    """Writes `lines` auth.log lines, about `share` of them sshd failures."""
    log = SshdLog(rng)
    pool = attacker_pool(rng)
    who = iter(popularity(rng, pool, lines))
    scanners = iter(popularity(rng, pool, lines))
    counts = {"failure lines": 0}
    written = 0
    chunk = []
    while written < lines:
        if counts["failure lines"] < share * (written + 4):
            fails, block = log.attack(next(who))
            counts["failure lines"] += fails
            counts["attack sessions"] = counts.get("attack sessions", 0) + 1
        else:
            block = log.noise(next(scanners))
            counts["other sessions"] = counts.get("other sessions", 0) + 1
        block = block[:lines - written]
        written += len(block)
        chunk.extend(block)
        if len(chunk) >= 8192:
            out.write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        out.write("\n".join(chunk) + "\n")
    return counts


GENERATORS = {"asterisk": gen_asterisk, "sshd": gen_sshd}


def script_digest():
    with open(os.path.abspath(__file__), "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()[:10]


def cache_dir():
    return os.environ.get("F2B_BENCH_DIR") or os.path.join(refs.REPO_ROOT, "target", "bench-logs")


def ensure(kind, lines, seed=1, share=0.05, path=None, quiet=False):
    """Path of the log for these parameters, generating it if not cached."""
    if path is None:
        stem = "%s-%d-s%d-a%g-" % (kind, lines, seed, share)
        path = os.path.join(cache_dir(), stem + script_digest() + ".log")
        if os.path.exists(path) and os.path.exists(path + ".stats.json"):
            return path
        for stale in glob.glob(os.path.join(glob.escape(cache_dir()), glob.escape(stem) + "*.log*")):
            os.remove(stale)
    elif os.path.exists(path) and os.path.exists(path + ".stats.json"):
        return path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    started = time.time()
    rng = random.Random("%s/%d/%d/%g" % (kind, seed, lines, share))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        counts = GENERATORS[kind](rng, lines, share, out)
    os.rename(tmp, path)
    with open(path + ".stats.json", "w") as out:
        json.dump({"kind": kind, "lines": lines, "seed": seed, "attack share": share,
                   "counts": counts}, out, indent=1, sort_keys=True)
    if not quiet:
        print("genlogs: wrote %s (%d lines, %.1f s)" % (path, lines, time.time() - started),
              file=sys.stderr)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=sorted(GENERATORS))
    parser.add_argument("-n", "--lines", type=int, default=1000000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--attack", type=float, default=0.05, help="attack share (default 0.05)")
    parser.add_argument("-o", "--output", help="write here instead of the cache")
    args = parser.parse_args()
    print(ensure(args.kind, args.lines, args.seed, args.attack, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
