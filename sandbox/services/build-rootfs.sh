#!/usr/bin/env bash
# Build the root filesystem of patchwright's service image (PostgreSQL, MariaDB, Redis)
# without a container registry.
#
#   build-rootfs.sh ROOTFS_DIR [MIRROR]
#
# debootstraps a minimal Debian bookworm into ROOTFS_DIR (empty or absent), installs
# packages.txt in a chroot with no server started and no database created, and adds the
# unprivileged user `svc` (uid 2000) every server runs as, and a template PostgreSQL cluster
# (/usr/share/patchwright/pg-template) each run copies. patchwright tars the tree and
# `docker import`s it. The servers' start scripts are not baked in: patchwright passes them
# as the container command (src/patchwright/services/servers.py), so the image holds packages only.
set -euo pipefail

SUITE=bookworm
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGES_FILE=$HERE/packages.txt
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CHROOT_CA=/tmp/host-ca-bundle.crt
SVC_UID=2000

log() { printf '[build-services] %s\n' "$*"; }
die() { printf '[build-services] error: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 ROOTFS_DIR [MIRROR]" >&2; exit 2; }
MIRROR=${2:-http://deb.debian.org/debian}
MIRROR=${MIRROR%/}
if [[ -z ${SECURITY_MIRROR+set} && $MIRROR == */debian ]]; then
    SECURITY_MIRROR=${MIRROR%/debian}/debian-security
fi
SECURITY_MIRROR=${SECURITY_MIRROR:-}

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed; run: apt-get install debootstrap"
[[ -r $PACKAGES_FILE ]] || die "package list $PACKAGES_FILE is missing"

ROOTFS=$(realpath -m -- "$1")
[[ $ROOTFS != / ]] || die "refusing to build into /"
if [[ -e $ROOTFS ]]; then
    [[ -d $ROOTFS && -z $(ls -A -- "$ROOTFS") ]] || die "$ROOTFS exists and is not an empty directory"
fi
mkdir -p -- "$ROOTFS"
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PACKAGES_FILE" | grep -v '^$')

LOG=$(mktemp -t patchwright-build-services.XXXXXX.log)
unmount_all() {
    local m
    for m in "$ROOTFS/proc" "$ROOTFS/sys"; do
        if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
    done
}
on_exit() {
    local rc=$?
    unmount_all
    if [[ $rc -eq 0 ]]; then rm -f "$LOG"; fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM
step() {
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 25 "$LOG" >&2
        die "step failed: $*; full log: $LOG"
    fi
}
CHROOT_ENV=(PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [[ -n ${!var:-} ]]; then CHROOT_ENV+=("$var=${!var}"); fi
done
in_chroot() { step chroot "$ROOTFS" /usr/bin/env -i "${CHROOT_ENV[@]}" "$@"; }

START=$SECONDS
log "1/4 debootstrap $SUITE (minbase) from $MIRROR"
step debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"
log "    base system ready after $((SECONDS - START)) s"

log "2/4 preparing the chroot"
mount -t proc proc "$ROOTFS/proc"
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0)
if [[ -r $HOST_CA_BUNDLE ]]; then
    cp -L "$HOST_CA_BUNDLE" "$ROOTFS$CHROOT_CA"
    APT_OPTS+=(-o "Acquire::https::CAInfo=$CHROOT_CA")
fi
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
# No cluster at install time: each run's server initialises its own data on tmpfs.
mkdir -p "$ROOTFS/etc/postgresql-common/createcluster.d"
echo "create_main_cluster = false" >"$ROOTFS/etc/postgresql-common/createcluster.d/patchwright.conf"
{
    echo "deb $MIRROR $SUITE main"
    echo "deb $MIRROR $SUITE-updates main"
    if [[ -n $SECURITY_MIRROR ]]; then echo "deb $SECURITY_MIRROR $SUITE-security main"; fi
} >"$ROOTFS/etc/apt/sources.list"

log "3/4 apt-get install ${PACKAGES[*]}"
in_chroot apt-get "${APT_OPTS[@]}" update
in_chroot apt-get "${APT_OPTS[@]}" install --no-install-recommends "${PACKAGES[@]}"
in_chroot groupadd --gid "$SVC_UID" svc
in_chroot useradd --uid "$SVC_UID" --gid "$SVC_UID" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin svc
# A ready-made PostgreSQL cluster (superuser postgres, no password yet): a run copies it to its
# tmpfs instead of running initdb (about 2 s on a busy 2-core machine), then sets its credentials.
install -d -o "$SVC_UID" -g "$SVC_UID" -m 755 "$ROOTFS/usr/share/patchwright"
in_chroot setpriv --reuid="$SVC_UID" --regid="$SVC_UID" --clear-groups \
    /usr/lib/postgresql/15/bin/initdb -D /usr/share/patchwright/pg-template -U postgres \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale -N
log "    packages installed after $((SECONDS - START)) s"

log "4/4 cleaning up"
in_chroot apt-get clean
unmount_all
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/log/apt/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS/usr/sbin/policy-rc.d" \
    "$ROOTFS"/var/lib/mysql/* "$ROOTFS"/var/lib/postgresql/* "$ROOTFS$CHROOT_CA"
rm -rf "$ROOTFS"/usr/share/{groff,info,locale,man}/*
: >"$ROOTFS/etc/resolv.conf"
echo localhost >"$ROOTFS/etc/hostname"
log "done in $((SECONDS - START)) s: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"
