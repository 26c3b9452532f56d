#!/usr/bin/env bash
# Install the four real MTAs for relaylab's netns backend, side by side.
#
# postfix, sendmail-bin, exim4-daemon-light and opensmtpd all Provide and Conflict with
# mail-transport-agent, so apt cannot install them together. Instead:
#   - their library dependencies (and m4, sendmail-cf, swaks, iproute2) are installed with apt;
#   - each MTA's packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x`
#     into its own tree, $RELAYLAB_MTA_DIR/<flavour>/root (default /opt/relaylab/mta).
# No maintainer script runs and nothing is written outside that folder but apt's own state:
# users, spool folders and configuration are made per lab inside the lab's overlay root
# (relay-under-test/src/netns.rs), never on the host.
#
# Idempotent: a tree whose packages have not changed version is kept. Safe to run twice.
# Needs root (apt). Usage: relay-under-test/mta/install.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: needs root (apt-get install); run it as root" >&2
  exit 2
fi
command -v apt-get >/dev/null || { echo "install.sh: needs a Debian system with apt-get" >&2; exit 2; }

MTA_DIR=${RELAYLAB_MTA_DIR:-/opt/relaylab/mta}
DEB_DIR=$MTA_DIR/debs

# Libraries and tools the MTAs' Depends name (Debian 12), less the MTA packages themselves.
DEPS=(
  # postfix
  libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3 netbase ssl-cert cpio
  # sendmail-bin, sendmail-base
  sendmail-cf m4 make procps libldap-2.5-0 liblockfile1 libwrap0 lockfile-progs perl
  # exim4-daemon-light
  libcrypt1 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libpcre2-8-0
  # opensmtpd
  libevent-2.1-7 libpam0g zlib1g ed
  # the lab: namespaces and a hand client
  iproute2 util-linux swaks
)

# flavour -> the packages unpacked into its tree
declare -A TREES=(
  [postfix]="postfix"
  [sendmail]="sendmail-bin sendmail-base"
  [exim]="exim4-daemon-light exim4-base exim4-config"
  [opensmtpd]="opensmtpd"
)

say() { echo "install.sh: $*"; }

apt_retry() {
  # another apt may hold the dpkg lock briefly (other developers on the machine)
  local i
  for i in 1 2 3 4 5; do
    if apt-get -o DPkg::Lock::Timeout=120 "$@"; then return 0; fi
    sleep 5
  done
  return 1
}

say "apt-get update"
apt_retry update -q >/dev/null

missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  apt_retry install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  say "dependencies already installed (${#DEPS[@]} packages)"
fi

mkdir -p "$DEB_DIR"
chmod 755 "$MTA_DIR"
for flavour in postfix sendmail exim opensmtpd; do
  pkgs=${TREES[$flavour]}
  want=""
  for p in $pkgs; do
    v=$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')
    [ -n "$v" ] && [ "$v" != "(none)" ] || { echo "install.sh: apt knows no candidate for $p" >&2; exit 1; }
    want+="$p=$v "
  done
  tree=$MTA_DIR/$flavour
  if [ -f "$tree/VERSIONS" ] && [ "$(cat "$tree/VERSIONS")" = "$want" ] && [ -d "$tree/root/usr" ]; then
    say "$flavour: tree up to date ($want)"
    continue
  fi
  say "$flavour: unpacking $want into $tree/root"
  rm -rf "$tree.new"
  mkdir -p "$tree.new/root"
  for p in $pkgs; do
    v=$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')
    # No cached .deb yet is normal on a fresh machine: `ls` must not end the script (set -e, pipefail).
    deb=$({ ls "$DEB_DIR/${p}_"*".deb" 2>/dev/null || true; } | while read -r f; do
            [ "$(dpkg-deb -f "$f" Version)" = "$v" ] && echo "$f"; done | head -1)
    if [ -z "$deb" ]; then
      (cd "$DEB_DIR" && apt_retry download -q "$p=$v" >/dev/null 2>&1)
      deb=$(ls -t "$DEB_DIR/${p}_"*".deb" | head -1)
    fi
    dpkg-deb -x "$deb" "$tree.new/root"
  done
  # Debian 12 has a merged /usr: /lib, /bin, /sbin are symlinks. A real top-level
  # folder in the tree would hide them once the tree is laid over / in the lab's
  # overlay root, so move such contents under usr/.
  for d in bin sbin lib lib64; do
    if [ -d "$tree.new/root/$d" ] && [ ! -L "$tree.new/root/$d" ]; then
      mkdir -p "$tree.new/root/usr/$d"
      cp -a "$tree.new/root/$d/." "$tree.new/root/usr/$d/"
      rm -rf "$tree.new/root/$d"
    fi
  done
  echo "$want" > "$tree.new/VERSIONS"
  rm -rf "$tree"
  mv "$tree.new" "$tree"
done

# Check: every MTA binary finds its shared libraries on this host.
status=0
check() {
  local flavour=$1 bin=$2 out
  local path=$MTA_DIR/$flavour/root/$bin
  [ -x "$path" ] || { echo "install.sh: $flavour: $bin missing from the tree" >&2; status=1; return; }
  out=$(LD_LIBRARY_PATH=$MTA_DIR/$flavour/root/usr/lib/postfix ldd "$path" 2>&1 | grep 'not found' || true)
  if [ -n "$out" ]; then echo "install.sh: $flavour: $bin: $out" >&2; status=1; fi
}
check postfix usr/lib/postfix/sbin/master
check postfix usr/lib/postfix/sbin/smtpd
check postfix usr/sbin/postconf
check sendmail usr/libexec/sendmail/sendmail
check exim usr/sbin/exim4
check opensmtpd usr/sbin/smtpd
[ -f /usr/share/sendmail/cf/m4/cf.m4 ] || { echo "install.sh: sendmail-cf's m4 files are missing" >&2; status=1; }
for flavour in postfix sendmail exim opensmtpd; do
  say "$flavour: $(cat "$MTA_DIR/$flavour/VERSIONS")in $MTA_DIR/$flavour/root"
done
[ $status = 0 ] && say "ok" || say "FAILED (see above)"
exit $status
