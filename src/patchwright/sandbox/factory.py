"""Settings in, sandboxes out: the one place that picks a runtime and names Docker.

`open_factory` checks the engine and the image before anything else starts, so a
missing engine or image is found before a run directory exists. A new runtime (a
remote one, say) is a new `SandboxFactory` here; no caller changes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import docker
import docker.errors

from patchwright.ci import is_ci
from patchwright.config import Settings
from patchwright.repocopy import PendingScan
from patchwright.sandbox.allowlist import allowed_hosts
from patchwright.sandbox.base import Sandbox, SandboxSpec
from patchwright.sandbox.egress import EgressSpec, upstream_proxy
from patchwright.sanitize import strip_userinfo
from patchwright.services import ServiceSet, ServiceSpec
from patchwright.workspace import Workspace

Progress = Callable[[str], None]
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


class SandboxFactory(Protocol):
    @property
    def image(self) -> str:
        """The sandbox image every sandbox starts from (a saved state is only good on it)."""
        ...

    def create(
        self,
        run_id: str,
        ws: Workspace,
        progress: Progress,
        checkpoint_to: str | None = None,
        restore_from: str | None = None,
        setup_command: str | None = None,
        setup_repairable: bool = False,
        scan: PendingScan | None = None,
    ) -> Sandbox:
        """A new, not yet started sandbox for the run `run_id` on the repo `ws`.

        `checkpoint_to`: save the state right after setup in this folder; `restore_from`: start
        from such a saved state instead (no copy, no setup, no network), as verification does;
        with services, setup runs again over it (their databases start empty each time).
        `setup_command`: this setup instead of the settings' (a run's recipe, replayed);
        `setup_repairable`: leave the setup window open (SandboxSpec.setup_repairable);
        `scan`: the host's listing of `ws`, begun earlier (repocopy.begin_scan), for its copy."""
        ...


@dataclass(frozen=True)
class DockerFactory:
    """Sandboxes on the local Docker engine, all of one spec but for the run id."""

    client: docker.DockerClient
    spec: SandboxSpec
    services: tuple[ServiceSpec, ...] = ()  # the run's databases, started fresh for each sandbox
    services_image: str = ""

    @property
    def image(self) -> str:
        return self.spec.image

    def create(
        self,
        run_id: str,
        ws: Workspace,
        progress: Progress,
        checkpoint_to: str | None = None,
        restore_from: str | None = None,
        setup_command: str | None = None,
        setup_repairable: bool = False,
        scan: PendingScan | None = None,
    ) -> Sandbox:
        from patchwright.sandbox.docker import DockerSandbox

        spec = dataclasses.replace(
            self.spec,
            run_id=run_id,
            checkpoint_to=checkpoint_to,
            restore_from=restore_from,
            replay_setup=bool(restore_from and self.services),
            setup_command=setup_command or self.spec.setup_command,
            setup_repairable=setup_repairable,
        )
        services = ServiceSet(self.client, list(self.services), self.services_image, progress=progress)
        return DockerSandbox(self.client, spec, ws, progress=progress, services=services, scan=scan)


def host_ca_bundle() -> str | None:
    """The CA bundle the host trusts (a TLS-intercepting proxy's CA included), for the setup phase."""
    for candidate in (
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def proxy_env(env: dict[str, str], with_credentials: bool) -> dict[str, str]:
    """The host's proxy variables for the sandbox; their user:password only when the user opts in
    (`proxy_credentials`): anything in the sandbox can read them."""
    found = {k: v for k, v in env.items() if k.lower() in PROXY_VARIABLES}
    return found if with_credentials else {k: strip_userinfo(v) for k, v in found.items()}


def egress_spec(settings: Settings, image: str, env: dict[str, str]) -> EgressSpec | None:
    """Setup's allowlist and proxy, chained to the host's proxy (`env`); None with `network`
    (full access, as the user asked) or without a proxy image."""
    if settings.network or not image:
        return None
    return EgressSpec(image, allowed_hosts(settings.allow_hosts), upstream_proxy(env))


def sandbox_spec(settings: Settings, image: str, egress_image: str = "") -> SandboxSpec:
    """The sandbox part of the settings (the run id is set per sandbox)."""
    return SandboxSpec(
        image=image,
        run_id="",
        network=settings.network,
        setup_command=settings.setup,
        memory=settings.memory,
        image_workspace=settings.image_workspace,
        workspace_size=settings.workspace_size,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        snapshots=settings.snapshots if settings.snapshots is not None else not is_ci(os.environ),
        command_timeout=settings.command_timeout,
        setup_timeout=settings.setup_timeout,
        host_ca_bundle=host_ca_bundle(),
        proxy_env=proxy_env(dict(os.environ), settings.proxy_credentials),
        egress=egress_spec(settings, egress_image, dict(os.environ)),
        env=dict(settings.env),
    )


def open_factory(
    settings: Settings,
    progress: Progress,
    repo: Path | None = None,
    services: tuple[ServiceSpec, ...] = (),
    variables: dict[str, str] | None = None,
) -> SandboxFactory:
    """Reach the engine and make sure the images are there (built once if they are ours).

    `repo`: the repository the sandboxes will hold; an image holding another repo's
    snapshot (or built from one) is refused for it. `services`: each sandbox gets fresh ones.
    `variables`: the repository's own (services/variables.py), under the user's `env`."""
    from patchwright.sandbox.egress import ensure_egress_image
    from patchwright.sandbox.engine import docker_client
    from patchwright.sandbox.image import ensure_image
    from patchwright.services.image import ensure_services_image

    client = docker_client()
    image = ensure_image(client, settings.image, progress)
    check_image_for_repo(client, image, repo)
    services_image = ensure_services_image(client, progress) if services else ""
    egress_image = "" if settings.network else ensure_egress_image(client, progress)
    spec = sandbox_spec(settings, image, egress_image)
    if variables:
        spec = dataclasses.replace(spec, env={**variables, **spec.env})
    return DockerFactory(client, spec, tuple(services), services_image)


def check_image_for_repo(client: docker.DockerClient, image: str, repo: Path | None) -> None:
    """A snapshot holds a repository's files (its secrets too): it only ever serves that repository.
    UsageError for an image labelled as (or built from) a snapshot of any other path."""
    from patchwright.errors import UsageError
    from patchwright.sandbox import labels
    from patchwright.sandbox.snapshot import SNAPSHOT_REPO

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return  # ensure_image said it exists; a race is the start's to report
    tags = found.labels or {}
    is_snapshot = tags.get(labels.KIND) == labels.KIND_SNAPSHOT or labels.REPO_PATH in tags
    is_snapshot = is_snapshot or any(str(t).startswith(f"{SNAPSHOT_REPO}:") for t in found.tags)
    if is_snapshot and (repo is None or tags.get(labels.REPO_PATH) != str(repo)):
        raise UsageError(
            f"image {image} is a snapshot of {tags.get(labels.REPO_PATH) or 'another repository'}, "
            f"not of {repo}; a snapshot only ever serves the repository it was made from"
        )
