"""Docker labels patchwright puts on what it creates, so `prune` can find exactly that and nothing else."""

from __future__ import annotations

import os
import socket
from typing import Final

MANAGED: Final = "io.patchwright.managed"  # value MANAGED_VALUE on every container and image we create
MANAGED_VALUE: Final = "true"
RUN_ID: Final = "io.patchwright.run-id"  # the run a sandbox container belongs to
IMAGE_HASH: Final = "io.patchwright.image-hash"  # definition_hash() of the files an image was built from
KIND: Final = "io.patchwright.kind"  # KIND_SANDBOX, KIND_IMAGE or KIND_SNAPSHOT
KIND_SANDBOX: Final = "sandbox"
KIND_IMAGE: Final = "image"
KIND_SNAPSHOT: Final = "snapshot"
KIND_SERVICE: Final = "service"  # a run's database container (patchwright.services), joined to its sandbox
KIND_SERVICE_IMAGE: Final = "service-image"  # the registry-free image those run from
KIND_EGRESS: Final = "egress"  # a run's setup proxy (sandbox/egress.py), removed after setup
KIND_EGRESS_NETWORK: Final = "egress-network"  # on a network: the internal one setup runs on
KIND_EGRESS_IMAGE: Final = "egress-image"  # the registry-free image the setup proxy runs from
SERVICE: Final = "io.patchwright.service"  # on a service container: the service's name ("postgres", "db")
BASE_IMAGE: Final = "io.patchwright.base-image"  # on a snapshot: the image id it was made from
COPIED_AT: Final = "io.patchwright.copied-at"  # on a snapshot: when its copy began (Unix seconds)
SNAPSHOT_HEAD: Final = "io.patchwright.head"  # on a snapshot: the repo's HEAD commit then
REPO_PATH: Final = "io.patchwright.repo"  # on a snapshot: the host repo it holds
FILE_COUNT: Final = "io.patchwright.files"  # on a snapshot: how many files it holds
OWNER: Final = "io.patchwright.owner"  # on a sandbox: "host pid start-time" of the `agent` process


def owner() -> str:
    """This process, as OWNER records it: the host name, the pid, and when the pid started
    (a pid is reused; a pid with the same start time is the same process)."""
    return f"{socket.gethostname()} {os.getpid()} {_started(os.getpid())}"


def owner_alive(value: str) -> bool:
    """Whether the process OWNER names is still running on this host (False for other hosts
    and for values it cannot read: their sandboxes count as left behind)."""
    host, _, rest = value.partition(" ")
    pid_text, _, started = rest.partition(" ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return _started(pid) == started


def _started(pid: int) -> str:
    """The process start time from /proc (clock ticks since boot); "" where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return ""
    return stat.rpartition(b")")[2].split()[19].decode()  # field 22; the name may hold spaces
