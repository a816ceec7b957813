#!/usr/bin/env bash
# Build the root filesystem of patchwright's egress proxy image (tinyproxy from Debian
# bookworm) without a container registry.
#
#   build-rootfs.sh ROOTFS_DIR [MIRROR]
#
# The proxy is the only way out of a sandbox during setup: it sits on the sandbox's internal
# Docker network and on one that reaches out, and forwards only to the allowlisted package
# registries (src/patchwright/sandbox/egress.py writes its configuration at each start, so the
# image holds packages only). The steps shared with the other images are in ../rootfs-lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=build-egress
PACKAGES_FILE=$HERE/packages.txt
# shellcheck source=../rootfs-lib.sh
source "$HERE/../rootfs-lib.sh"

rootfs_init "$@"
rootfs_debootstrap
rootfs_prepare
rootfs_install
rootfs_clean
rootfs_done
