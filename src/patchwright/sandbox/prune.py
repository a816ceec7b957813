"""Remove what patchwright left in Docker: its containers, images of outdated definitions,
and repo snapshots (with their manifests): those are caches, made again on the next run.

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

from patchwright.repocopy import remove_stale_spools
from patchwright.sandbox import labels
from patchwright.sandbox.egress import EGRESS_IMAGE
from patchwright.sandbox.engine import docker_errors
from patchwright.sandbox.image import DEFAULT_IMAGE_REPO, definition_hash
from patchwright.sandbox.snapshot import SNAPSHOT_REPO, remove_manifests
from patchwright.services.image import SERVICES_IMAGE

# a run's containers: its sandbox, its services and its setup proxy
RUN_CONTAINER_KINDS = (labels.KIND_SANDBOX, labels.KIND_SERVICE, labels.KIND_EGRESS)
_CONFLICT = 409  # the engine's answer for "in use" or "removal already in progress"


@dataclass
class PruneReport:
    """What prune removed: container ids, and image tags (or ids of untagged images)."""

    containers_removed: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)
    containers_kept: list[str] = field(default_factory=list)  # of runs in progress on this host
    networks_removed: list[str] = field(default_factory=list)  # setup networks (egress.py), by name
    spools_removed: list[str] = field(default_factory=list)  # copies written ahead by killed runs


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


def _remove_images(client: docker.DockerClient, names: list[str], report: PruneReport) -> None:
    """Remove by tag (or id), so an image with several tags is untagged rather than refused."""
    for name in names:
        try:
            client.images.remove(name)
        except APIError as err:
            if _tolerable(err):
                continue
            raise
        report.images_removed.append(name)


def prune(
    client: docker.DockerClient,
    extra_labels: dict[str, str] | None = None,
    manifest_dir: str | None = None,
    include_live: bool = False,
) -> PruneReport:
    """Force-remove every sandbox container (with its volumes) whose run is over (its `agent`
    process gone; with `include_live`, every one), every
    sandbox image that is not the current definition's (stale hash, or untagged) and not in
    use, and every repo snapshot not in use; then the manifests (in `manifest_dir`) of
    snapshots that are gone."""
    current = definition_hash()
    report = PruneReport()
    with docker_errors("cannot prune patchwright's containers"):
        # a run's service containers and setup proxy go like its sandbox
        found = [
            container
            for kind in RUN_CONTAINER_KINDS
            for container in client.containers.list(all=True, filters=_filters(kind, extra_labels))
        ]
        for container in found:
            if not include_live and labels.owner_alive(container.labels.get(labels.OWNER, "")):
                report.containers_kept.append(str(container.id))
                continue
            try:
                container.remove(force=True, v=True)
            except APIError as err:
                if _tolerable(err):
                    continue
                raise
            report.containers_removed.append(str(container.id))
        _remove_networks(client, extra_labels, include_live, report.networks_removed)
    with docker_errors("cannot prune patchwright's images"):
        # Snapshots first: they are children of the sandbox image, which cannot go before them.
        for image in client.images.list(filters=_filters(labels.KIND_SNAPSHOT, extra_labels)):
            names = [tag for tag in image.tags if tag.startswith(SNAPSHOT_REPO + ":")] or [str(image.id)]
            _remove_images(client, names, report)
        for image in client.images.list(filters=_filters(labels.KIND_IMAGE, extra_labels)):
            tags = list(image.tags)
            if image.labels.get(labels.IMAGE_HASH) == current and tags:
                continue
            _remove_images(client, [tag for tag in tags if _ours(tag)] if tags else [str(image.id)], report)
        # the service and setup-proxy images of outdated definitions
        for definition in (SERVICES_IMAGE, EGRESS_IMAGE):
            current_hash = definition.hash()
            for image in client.images.list(filters=_filters(definition.kind, extra_labels)):
                tags = list(image.tags)
                if image.labels.get(labels.IMAGE_HASH) == current_hash and tags:
                    continue
                ours = [tag for tag in tags if tag.rpartition(":")[0] == definition.repo]
                _remove_images(client, ours if tags else [str(image.id)], report)
        if manifest_dir:
            remaining = client.images.list(filters=_filters(labels.KIND_SNAPSHOT, None))
            remove_manifests(manifest_dir, keep={str(image.id) for image in remaining})
    if extra_labels is None:  # not a test's narrowed prune: the host's own leftovers too
        report.spools_removed = remove_stale_spools()
    return report


def remove_left_by(client: docker.DockerClient, run_id: str) -> list[str]:
    """Remove the sandbox and service containers of the run `run_id` (and its `run_id-verify`...)
    whose `agent` process is gone (killed before it could clean up); the ids removed."""
    removed: list[str] = []
    with docker_errors("cannot remove a killed run's containers"):
        for kind in RUN_CONTAINER_KINDS:
            for container in client.containers.list(all=True, filters=_filters(kind, None)):
                tags = container.labels
                owner_run = tags.get(labels.RUN_ID, "")
                if owner_run != run_id and not owner_run.startswith(run_id + "-"):
                    continue
                if labels.owner_alive(tags.get(labels.OWNER, "")):
                    continue
                try:
                    container.remove(force=True, v=True)
                except APIError as err:
                    if _tolerable(err):
                        continue
                    raise
                removed.append(str(container.id))
        removed += _remove_networks(client, None, False, [], run_id)
    return removed


def _remove_networks(
    client: docker.DockerClient,
    extra_labels: dict[str, str] | None,
    include_live: bool,
    removed: list[str],
    run_id: str | None = None,
) -> list[str]:
    """Remove the setup networks whose run is over (or all, `include_live`; or only `run_id`'s),
    every member disconnected first; appends their names to `removed` and returns it."""
    for network in client.networks.list(filters=_filters(labels.KIND_EGRESS_NETWORK, extra_labels)):
        tags = network.attrs.get("Labels") or {}
        owner_run = tags.get(labels.RUN_ID, "")
        if run_id is not None and owner_run != run_id and not owner_run.startswith(run_id + "-"):
            continue
        if not include_live and labels.owner_alive(tags.get(labels.OWNER, "")):
            continue
        try:
            network.reload()
            for member in network.containers:
                network.disconnect(member, force=True)
            network.remove()
        except APIError as err:
            if _tolerable(err):
                continue
            raise
        removed.append(str(network.name))
    return removed
