#!/usr/bin/env python3
"""A stand-in PBX for the end-to-end tests: UDP port 5060 on IPv4 and IPv6.

For every datagram it appends one Asterisk chan_sip "Wrong password" line
naming the datagram's source address and port (current local time, the
`[Mon dd HH:MM:SS]` stamp of Asterisk's messages log) to --log, then
rewrites --counts atomically as `<address> <count>` lines, so that a test can
tell whether datagrams from an address still arrive.  IPv6 sources are
written `[address]:port`, as Asterisk does.  Runs until SIGTERM.

Usage: pbx_standin.py --log FILE --counts FILE [--port 5060] [--ready FILE]
"""

import argparse
import os
import selectors
import signal
import socket
import sys
import time


def line_for(host, port):
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    where = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    return ("[%s] NOTICE[1234] chan_sip.c: Registration from '\"100\" <sip:100@192.0.2.1>' "
            "failed for '%s' - Wrong password\n" % (stamp, where))


def write_counts(path, counts):
    tmp = path + ".tmp"
    with open(tmp, "w") as out:
        for host in sorted(counts):
            out.write("%s %d\n" % (host, counts[host]))
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--counts", required=True)
    parser.add_argument("--port", type=int, default=5060)
    parser.add_argument("--ready", help="file created once the sockets are bound")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sel = selectors.DefaultSelector()
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.bind(("0.0.0.0", args.port))
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    v6.bind(("::", args.port))
    for sock in (v4, v6):
        sel.register(sock, selectors.EVENT_READ)
    counts = {}
    write_counts(args.counts, counts)
    if args.ready:
        open(args.ready, "w").close()
    with open(args.log, "a") as log:
        while True:
            for key, _ in sel.select():
                _, addr = key.fileobj.recvfrom(65535)
                host, port = addr[0], addr[1]
                log.write(line_for(host, port))
                log.flush()
                counts[host] = counts.get(host, 0) + 1
                write_counts(args.counts, counts)


if __name__ == "__main__":
    main()
