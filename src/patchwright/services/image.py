"""The registry-free image the run's services run from: PostgreSQL, MariaDB and Redis from
Debian packages in one image, built like the sandbox image (debootstrap + `docker import`)
from `sandbox/services/` and tagged by a hash of that definition, so it is built once per
machine and a changed definition gets a new tag.

One image for all three servers, not one each: one debootstrap (about 40 s here) instead of
three, one tag to cache; a container's start does not depend on the image's size.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker

from patchwright.errors import ImageBuildError
from patchwright.resources import data_dir
from patchwright.sandbox import labels
from patchwright.sandbox.image import (
    BuildMethod,
    BuildResult,
    Progress,
    _build_lock,
    _build_with_debootstrap,
    _build_with_dockerfile,
    _choose_method,
    _image_exists,
    _quiet,
    definition_hash,
)

SERVICES_IMAGE_REPO = "patchwright-services"


def services_definition_dir() -> Path:
    """`sandbox/services/` of the checkout or the wheel."""
    try:
        return data_dir("sandbox") / "services"
    except FileNotFoundError as err:
        raise ImageBuildError(str(err)) from err


def services_image_hash() -> str:
    return definition_hash(services_definition_dir())


def services_image_tag() -> str:
    """The tag of the service image built from the shipped definition."""
    return f"{SERVICES_IMAGE_REPO}:{services_image_hash()}"


def _image_labels(image_hash: str) -> dict[str, str]:
    return {
        labels.MANAGED: labels.MANAGED_VALUE,
        labels.KIND: labels.KIND_SERVICE_IMAGE,
        labels.IMAGE_HASH: image_hash,
    }


def build_services_image(
    client: docker.DockerClient,
    method: BuildMethod = "auto",
    force: bool = False,
    progress: Progress | None = None,
    *,
    mirror: str | None = None,
) -> BuildResult:
    """Build the service image unless its tag exists (or `force`); parallel callers build it once."""
    say = progress or _quiet
    started = time.monotonic()
    folder = services_definition_dir()
    image_hash = definition_hash(folder)
    tag = f"{SERVICES_IMAGE_REPO}:{image_hash}"
    if not force and _image_exists(client, tag):
        say(f"service image {tag} already exists")
        return BuildResult(tag, "existing", time.monotonic() - started, skipped=True)
    try:
        with _build_lock(f"services-{image_hash}"):
            if not force and _image_exists(client, tag):
                say(f"service image {tag} was built meanwhile")
                return BuildResult(tag, "existing", time.monotonic() - started, skipped=True)
            chosen = _choose_method(client, method, say)
            say(f"building service image {tag} ({chosen}: postgresql, mariadb-server, redis-server)")
            if chosen == "dockerfile":
                _build_with_dockerfile(client, tag, folder, _image_labels(image_hash), say)
            else:
                _build_with_debootstrap(client, tag, folder, _image_labels(image_hash), say, mirror)
    except OSError as err:
        raise ImageBuildError(f"building the service image failed: {err}") from err
    seconds = time.monotonic() - started
    say(f"built service image {tag} in {seconds:.0f} s")
    return BuildResult(tag, chosen, seconds, skipped=False)


def ensure_services_image(client: docker.DockerClient, progress: Progress | None = None) -> str:
    """The service image's tag, built first if missing (once per machine, 1-2 minutes)."""
    say = progress or _quiet
    tag = services_image_tag()
    if not _image_exists(client, tag):
        say(f"service image {tag} is missing; building it now (once, 1-2 minutes)")
        build_services_image(client, progress=say)
    return tag
