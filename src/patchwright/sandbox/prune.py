"""Remove what patchwright left in Docker: its containers, and images of outdated definitions.

Only objects carrying our MANAGED label are ever touched, so prune is safe on a
shared engine; `extra_labels` narrows it further (tests pass a label unique to them).
Containers and images inherit their image's labels, so KIND tells our sandboxes from
other containers of the image, and only tags in our own repository are removed
(an image a user built FROM ours carries our labels too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import docker
from docker.errors import APIError, NotFound

from patchwright.sandbox import labels
from patchwright.sandbox.image import DEFAULT_IMAGE_REPO, definition_hash, docker_errors

_CONFLICT = 409  # the engine's answer for "in use" or "removal already in progress"


@dataclass
class PruneReport:
    """What prune removed: container ids, and image tags (or ids of untagged images)."""

    containers_removed: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)


def _filters(kind: str, extra_labels: dict[str, str] | None) -> dict[str, str | list[str] | bool]:
    """Label filters; the engine requires all of them to match."""
    wanted = {labels.MANAGED: labels.MANAGED_VALUE, labels.KIND: kind, **(extra_labels or {})}
    return {"label": [f"{key}={value}" for key, value in wanted.items()]}


def _ours(tag: str) -> bool:
    repository = tag.rpartition(":")[0]
    return repository == DEFAULT_IMAGE_REPO or repository.endswith("/" + DEFAULT_IMAGE_REPO)


def _tolerable(err: APIError) -> bool:
    """Gone already, in use, or being removed by someone else: leave it and go on."""
    return isinstance(err, NotFound) or err.status_code == _CONFLICT


def prune(client: docker.DockerClient, extra_labels: dict[str, str] | None = None) -> PruneReport:
    """Force-remove every sandbox container (with its volumes), running or not, and every
    sandbox image that is not the current definition's (stale hash, or untagged) and not in use."""
    current = definition_hash()
    report = PruneReport()
    with docker_errors("cannot prune patchwright's containers"):
        for container in client.containers.list(
            all=True, filters=_filters(labels.KIND_SANDBOX, extra_labels)
        ):
            try:
                container.remove(force=True, v=True)
            except APIError as err:
                if _tolerable(err):
                    continue
                raise
            report.containers_removed.append(str(container.id))
    with docker_errors("cannot prune patchwright's images"):
        for image in client.images.list(filters=_filters(labels.KIND_IMAGE, extra_labels)):
            tags = list(image.tags)
            if image.labels.get(labels.IMAGE_HASH) == current and tags:
                continue
            # By tag, so an image with several tags is untagged rather than refused.
            for name in [tag for tag in tags if _ours(tag)] if tags else [str(image.id)]:
                try:
                    client.images.remove(name)
                except APIError as err:
                    if _tolerable(err):
                        continue
                    raise
                report.images_removed.append(name)
    return report
