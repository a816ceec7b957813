"""The registry-free image the run's services run from: PostgreSQL, MariaDB and Redis from
Debian packages in one image, built like the sandbox image (debootstrap + `docker import`)
from `sandbox/services/` and tagged by a hash of that definition, so it is built once per
machine and a changed definition gets a new tag.

One image for all three servers, not one each: one debootstrap (about 40 s here) instead of
three, one tag to cache; a container's start does not depend on the image's size.
"""

from __future__ import annotations

from patchwright.sandbox import labels
from patchwright.sandbox.image import ImageDefinition

SERVICES_IMAGE_REPO = "patchwright-services"
SERVICES_IMAGE = ImageDefinition(
    "service image",
    SERVICES_IMAGE_REPO,
    labels.KIND_SERVICE_IMAGE,
    "services",
    ": postgresql, mariadb-server, redis-server",
)

# The module's names for the definition's methods (callers and tests use these).
services_definition_dir = SERVICES_IMAGE.folder
services_image_hash = SERVICES_IMAGE.hash
services_image_tag = SERVICES_IMAGE.tag
build_services_image = SERVICES_IMAGE.build
ensure_services_image = SERVICES_IMAGE.ensure
