# Shared steps of patchwright's registry-free image builds (sourced, not run).
#
# sandbox/build-rootfs.sh, sandbox/services/build-rootfs.sh and sandbox/egress/build-rootfs.sh
# each debootstrap a minimal Debian bookworm, install their packages.txt in a chroot and clean
# up; only what they add in between differs. A caller sets LOG_TAG and PACKAGES_FILE, then:
#
#   rootfs_init "$@"     # ROOTFS_DIR [MIRROR]: checks, log file, traps; sets ROOTFS, MIRROR, PACKAGES
#   rootfs_debootstrap
#   rootfs_prepare       # /proc, resolv.conf, the host CA for apt, no service start, slim dpkg, sources
#   rootfs_install       # apt-get update + install PACKAGES (--no-install-recommends)
#   rootfs_clean         # apt caches, logs, docs, the build host's resolv.conf and hostname
#
# and `in_chroot CMD...` / `step CMD...` for its own steps. Environment: SECURITY_MIRROR overrides
# the bookworm-security source (empty: none); http_proxy/https_proxy are honoured by debootstrap
# and apt alike. Tool output goes to a log file that is shown when a step fails.

SUITE=bookworm
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CHROOT_CA=/tmp/host-ca-bundle.crt  # path inside the chroot, removed by rootfs_clean
STAGE=setup
START=$SECONDS

log() { printf '[%s] %s\n' "$LOG_TAG" "$*"; }
stage() { STAGE=$1; log "$*"; }
die() { printf '[%s] error: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

# Run a command with its output in the log; on failure show the tail and stop.
step() {
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 25 "$LOG" >&2
        die "stage $STAGE failed; full log: $LOG"
    fi
}
in_chroot() { step chroot "$ROOTFS" /usr/bin/env -i "${CHROOT_ENV[@]}" "$@"; }

unmount_all() {
    # Deepest first; lazy so a busy mount cannot keep the tree pinned.
    local m
    for m in "$ROOTFS/proc" "$ROOTFS/sys"; do
        if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
    done
}
_rootfs_on_exit() {
    local rc=$?
    unmount_all
    if [[ $rc -eq 0 ]]; then rm -f "$LOG"; fi
}

rootfs_init() {
    [[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 ROOTFS_DIR [MIRROR]" >&2; exit 2; }
    MIRROR=${2:-http://deb.debian.org/debian}
    MIRROR=${MIRROR%/}
    if [[ -z ${SECURITY_MIRROR+set} && $MIRROR == */debian ]]; then
        SECURITY_MIRROR=${MIRROR%/debian}/debian-security
    fi
    SECURITY_MIRROR=${SECURITY_MIRROR:-}

    [[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and chroot need it)"
    command -v debootstrap >/dev/null 2>&1 \
        || die "debootstrap is not installed; run: apt-get install debootstrap"
    [[ -r $PACKAGES_FILE ]] || die "package list $PACKAGES_FILE is missing"

    ROOTFS=$(realpath -m -- "$1")
    # A wrong argument here would chroot-install into the host: refuse anything but a fresh dir.
    [[ $ROOTFS != / ]] || die "refusing to build into /"
    if [[ -e $ROOTFS ]]; then
        [[ -d $ROOTFS && -z $(ls -A -- "$ROOTFS") ]] || die "$ROOTFS exists and is not an empty directory"
    fi
    mkdir -p -- "$ROOTFS"

    mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PACKAGES_FILE" | grep -v '^$')
    [[ ${#PACKAGES[@]} -gt 0 ]] || die "package list $PACKAGES_FILE is empty"

    LOG=$(mktemp -t "patchwright-$LOG_TAG.XXXXXX.log")
    trap _rootfs_on_exit EXIT
    trap 'exit 130' INT TERM

    # A clean environment inside the chroot, keeping only the proxy settings.
    CHROOT_ENV=(PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
    local var
    for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        if [[ -n ${!var:-} ]]; then CHROOT_ENV+=("$var=${!var}"); fi
    done
    APT_OPTS=(-q -y -o Dpkg::Use-Pty=0)
    START=$SECONDS
}

rootfs_debootstrap() {
    stage debootstrap "$SUITE (minbase) from $MIRROR into $ROOTFS"
    step debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"
    log "    base system ready after $((SECONDS - START)) s"
}

rootfs_prepare() {
    stage prepare "the chroot (proc, resolv.conf, CA bundle, apt sources)"
    mount -t proc proc "$ROOTFS/proc"
    cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    if [[ -r $HOST_CA_BUNDLE ]]; then
        # Lets apt reach an https mirror or a TLS-intercepting proxy before ca-certificates exists.
        cp -L "$HOST_CA_BUNDLE" "$ROOTFS$CHROOT_CA"
        APT_OPTS+=(-o "Acquire::https::CAInfo=$CHROOT_CA")
    fi
    # No service may start inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
    chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
    # Same slimming as debian:bookworm-slim, so both build paths give the same tree.
    cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
    {
        echo "deb $MIRROR $SUITE main"
        echo "deb $MIRROR $SUITE-updates main"
        if [[ -n $SECURITY_MIRROR ]]; then echo "deb $SECURITY_MIRROR $SUITE-security main"; fi
    } >"$ROOTFS/etc/apt/sources.list"
}

rootfs_install() {
    stage install "apt-get install ${#PACKAGES[@]} packages (--no-install-recommends)"
    in_chroot apt-get "${APT_OPTS[@]}" update
    in_chroot apt-get "${APT_OPTS[@]}" install --no-install-recommends "${PACKAGES[@]}"
    log "    packages installed after $((SECONDS - START)) s"
}

rootfs_clean() {
    stage clean "apt lists, caches and build leftovers"
    in_chroot apt-get clean
    unmount_all
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
        "$ROOTFS"/var/log/apt/* "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* \
        "$ROOTFS"/root/.cache "$ROOTFS/usr/sbin/policy-rc.d" "$ROOTFS$CHROOT_CA"
    # What debootstrap installed before the excludes existed.
    find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$ROOTFS"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
    # Docker supplies these at run time; do not bake the build host's into the image.
    : >"$ROOTFS/etc/resolv.conf"
    echo localhost >"$ROOTFS/etc/hostname"
}

rootfs_done() {
    log "done in $((SECONDS - START)) s: $(du -sh --one-file-system "$ROOTFS" | cut -f1) in $ROOTFS"
}
