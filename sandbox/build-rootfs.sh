#!/usr/bin/env bash
# Build the sandbox root filesystem without a container registry.
#
#   build-rootfs.sh ROOTFS_DIR [MIRROR]
#
# debootstraps a minimal Debian bookworm into ROOTFS_DIR (which must be empty or
# absent), installs packages.txt inside a chroot and creates the `agent` user, so
# the tree matches what the Dockerfile produces. patchwright then tars the tree and
# `docker import`s it. The steps shared with the other images are in rootfs-lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=build-rootfs
PACKAGES_FILE=$HERE/packages.txt
AGENT_UID=1000
AGENT_GID=1000
# shellcheck source=rootfs-lib.sh
source "$HERE/rootfs-lib.sh"

rootfs_init "$@"
rootfs_debootstrap
rootfs_prepare
rootfs_install
stage user "creating user agent ($AGENT_UID:$AGENT_GID), /home/agent and /workspace"
in_chroot groupadd --gid "$AGENT_GID" agent
in_chroot useradd --uid "$AGENT_UID" --gid "$AGENT_GID" --create-home --home-dir /home/agent \
    --shell /bin/bash agent
install -d -o "$AGENT_UID" -g "$AGENT_GID" -m 755 "$ROOTFS/workspace"
rootfs_clean
rootfs_done
