"""The run's own database servers (PostgreSQL, MariaDB/MySQL, Redis) beside the sandbox.

spec.py says what a service is, detect.py finds them in a repo, servers.py knows how each kind
starts and is reached, image.py builds their registry-free image, pod.py runs them in the
sandbox's network namespace.
"""

from patchwright.services.pod import ServiceError, ServiceSet
from patchwright.services.spec import ServiceSpec, parse_spec

__all__ = ["ServiceError", "ServiceSet", "ServiceSpec", "parse_spec"]
