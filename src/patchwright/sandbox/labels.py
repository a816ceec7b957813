"""Docker labels patchwright puts on what it creates, so `prune` can find exactly that and nothing else."""

from __future__ import annotations

from typing import Final

MANAGED: Final = "io.patchwright.managed"  # value MANAGED_VALUE on every container and image we create
MANAGED_VALUE: Final = "true"
RUN_ID: Final = "io.patchwright.run-id"  # the run a sandbox container belongs to
IMAGE_HASH: Final = "io.patchwright.image-hash"  # definition_hash() of the files an image was built from
KIND: Final = "io.patchwright.kind"  # KIND_SANDBOX or KIND_IMAGE
KIND_SANDBOX: Final = "sandbox"
KIND_IMAGE: Final = "image"
