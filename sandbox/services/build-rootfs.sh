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
# The steps shared with the other images are in ../rootfs-lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=build-services
PACKAGES_FILE=$HERE/packages.txt
SVC_UID=2000
# shellcheck source=../rootfs-lib.sh
source "$HERE/../rootfs-lib.sh"

rootfs_init "$@"
rootfs_debootstrap
rootfs_prepare
# No cluster at install time: each run's server initialises its own data on tmpfs.
mkdir -p "$ROOTFS/etc/postgresql-common/createcluster.d"
echo "create_main_cluster = false" >"$ROOTFS/etc/postgresql-common/createcluster.d/patchwright.conf"
rootfs_install
stage user "creating user svc ($SVC_UID) and the template PostgreSQL cluster"
in_chroot groupadd --gid "$SVC_UID" svc
in_chroot useradd --uid "$SVC_UID" --gid "$SVC_UID" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin svc
# A ready-made PostgreSQL cluster (superuser postgres, no password yet): a run copies it to its
# tmpfs instead of running initdb (about 2 s on a busy 2-core machine), then sets its credentials.
install -d -o "$SVC_UID" -g "$SVC_UID" -m 755 "$ROOTFS/usr/share/patchwright"
in_chroot setpriv --reuid="$SVC_UID" --regid="$SVC_UID" --clear-groups \
    /usr/lib/postgresql/15/bin/initdb -D /usr/share/patchwright/pg-template -U postgres \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale -N
rootfs_clean
rm -rf "$ROOTFS"/var/lib/mysql/* "$ROOTFS"/var/lib/postgresql/*
rootfs_done
