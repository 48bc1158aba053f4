#!/bin/sh
# fail2ban-rs installer: copies the release binaries, the default
# configuration and the service files into place.
#
#   packaging/install.sh [options]
#
#   --destdir DIR       install under DIR (a staging root for packaging;
#                       default: $DESTDIR, else the real root)
#   --prefix DIR        binaries in DIR/bin, the systemd unit in
#                       DIR/lib/systemd/system, the tmpfiles.d entry in
#                       DIR/lib/tmpfiles.d (default: $PREFIX, else /usr/local;
#                       /usr for a distribution package)
#   --sysconfdir DIR    configuration in DIR/fail2ban, logrotate snippet in
#                       DIR/logrotate.d (default: /etc)
#   --from DIR          where fail2ban-server, fail2ban-client and
#                       fail2ban-regex are taken from (default:
#                       target/release of this source tree)
#   --overwrite-config  replace the shipped files of an existing
#                       configuration and logrotate snippet with ours
#                       (files we do not ship, such as *.local, are kept)
#
# An existing <sysconfdir>/fail2ban is kept as it is by default: the
# binaries read a fail2ban configuration unchanged.  Nothing is started
# and no service manager is called; the next steps are printed at the end.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
destdir=${DESTDIR:-}
prefix=${PREFIX:-/usr/local}
sysconfdir=/etc
from=$top/target/release
overwrite=no

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --sysconfdir) sysconfdir=${2:?--sysconfdir needs a directory}; shift 2 ;;
        --sysconfdir=*) sysconfdir=${1#*=}; shift ;;
        --from) from=${2:?--from needs a directory}; shift 2 ;;
        --from=*) from=${1#*=}; shift ;;
        --overwrite-config) overwrite=yes; shift ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done

for dir in "$prefix" "$sysconfdir"; do
    case $dir in
        /*) ;;
        *) echo "install.sh: $dir: an absolute path is needed" >&2; exit 2 ;;
    esac
done

programs="fail2ban-server fail2ban-client fail2ban-regex"
for prog in $programs; do
    if [ ! -x "$from/$prog" ]; then
        echo "install.sh: $from/$prog is missing: run \`cargo build --release\` first (or give --from)" >&2
        exit 1
    fi
done

bindir=$prefix/bin
confdir=$sysconfdir/fail2ban
# The binaries look for /etc/fail2ban unless told otherwise.
confopt=
[ "$confdir" = /etc/fail2ban ] || confopt=" -c $confdir"

say() { printf '%s\n' "$*"; }

# Rewrites the /usr/bin paths (and adds -c for another configuration
# directory) in a service file as it is copied: file, destination, mode.
install_service_file() {
    mkdir -p "$(dirname "$2")"
    sed -e "s|/usr/bin/fail2ban-server|$bindir/fail2ban-server$confopt|g" \
        -e "s|/usr/bin/fail2ban-client|$bindir/fail2ban-client$confopt|g" "$1" > "$2.tmp"
    chmod "$3" "$2.tmp"
    mv "$2.tmp" "$2"
    say "  $2"
}

say "binaries:"
mkdir -p "$destdir$bindir"
for prog in $programs; do
    cp "$from/$prog" "$destdir$bindir/$prog.tmp"
    chmod 0755 "$destdir$bindir/$prog.tmp"
    mv "$destdir$bindir/$prog.tmp" "$destdir$bindir/$prog"
    say "  $destdir$bindir/$prog"
done

say "configuration:"
if [ -e "$destdir$confdir/jail.conf" ] || [ -e "$destdir$confdir/fail2ban.conf" ]; then
    existing=yes
else
    existing=no
fi
if [ $existing = yes ] && [ $overwrite = no ]; then
    say "  $destdir$confdir exists: kept as it is (--overwrite-config replaces its shipped files)"
else
    (cd "$top/etc/fail2ban" && find . -type f -name '*.conf') | sort | while read -r file; do
        file=${file#./}
        mkdir -p "$(dirname "$destdir$confdir/$file")"
        cp "$top/etc/fail2ban/$file" "$destdir$confdir/$file.tmp"
        chmod 0644 "$destdir$confdir/$file.tmp"
        mv "$destdir$confdir/$file.tmp" "$destdir$confdir/$file"
    done
    mkdir -p "$destdir$confdir/fail2ban.d" "$destdir$confdir/jail.d"
    say "  $destdir$confdir ($(cd "$top/etc/fail2ban" && find . -type f -name '*.conf' | wc -l) files)"
fi

say "service files:"
install_service_file "$here/fail2ban.service" "$destdir$prefix/lib/systemd/system/fail2ban.service" 0644
install_service_file "$here/fail2ban.tmpfiles" "$destdir$prefix/lib/tmpfiles.d/fail2ban.conf" 0644
rotate=$destdir$sysconfdir/logrotate.d/fail2ban
if [ -e "$rotate" ] && [ $overwrite = no ]; then
    say "  $rotate exists: kept as it is"
else
    install_service_file "$here/fail2ban.logrotate" "$rotate" 0644
fi

if [ -z "$destdir" ]; then
    say ""
    say "Next steps (systemd):"
    say "  systemctl daemon-reload"
    say "  systemctl enable --now fail2ban"
    say "  $bindir/fail2ban-client$confopt status"
fi
