"""The run's service containers, in the sandbox's own network namespace (the "pod model").

Each server joins the sandbox container's network namespace (`network_mode=container:<id>`),
so the sandbox, which has no network, reaches its services on 127.0.0.1 and nothing else:
there is no bridge, no route and no published port. The servers listen on 127.0.0.1 only.
Service containers carry the run's labels (prune finds them after a SIGKILL), run as an
unprivileged user with every capability dropped, a read-only root, data on tmpfs, memory and
pids limits and no host mount, and are removed with the sandbox: ended by a signal the
engine does not wait for (servers.END_SIGNAL), then removed by the engine (`auto_remove`), so
the end of a run does not wait on an engine busy removing another container's layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from patchwright.errors import SandboxError
from patchwright.sandbox import labels
from patchwright.sandbox.engine import discard, side_by_side
from patchwright.services import servers
from patchwright.services.spec import ServiceSpec

Progress = Callable[[str], None]
SERVICE_UID = 2000  # the image's `svc` user
READY_TIMEOUT = 90.0
LOG_LINES_ON_FAILURE = 5
LOG_LIMIT = 16 * 1024  # bytes of a service's log the tool hands the model
PROBE_INTERVAL = 0.05  # between probes, inside the container
PROBE_SLICE = 10.0  # seconds one probing exec may take
# A server's log is the sandbox's to fill (`RAISE LOG repeat(...)`), and it lands on the host's
# disk: json-file (which `service logs` reads back) with rotation, at most 2 x 4 MiB a service.
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "4m", "max-file": "2"}}


class ServiceError(SandboxError):
    """A service did not start or answer in time (exit 4)."""


def _quiet(_: str) -> None:
    pass


@dataclass
class ServiceSet:
    """The services of one sandbox: started with it, gone with it. Empty: does nothing."""

    client: docker.DockerClient | None
    specs: list[ServiceSpec]
    image: str = ""
    extra_labels: dict[str, str] = field(default_factory=dict)
    memory: str = "1g"
    pids_limit: int = 256
    cpus: float = 1.0  # each server; the engine refuses more than it has, and 1 fits every engine
    ready_timeout: float = READY_TIMEOUT
    progress: Progress = _quiet
    containers: dict[str, Container] = field(default_factory=dict)
    ready_seconds: dict[str, float] = field(default_factory=dict)  # from attach to ready, per service
    _attached_at: float = 0.0
    _sandbox: tuple[str, str] = ("", "")  # the sandbox container's id and run id, once attached

    @property
    def log_limit(self) -> int:
        return LOG_LIMIT

    def fresh(self) -> ServiceSet:
        """The same services, not started: verification's own, clean ones."""
        return dataclasses.replace(self, containers={}, ready_seconds={}, _attached_at=0.0, _sandbox=("", ""))

    # -- what the sandbox needs --------------------------------------------------------------

    def hosts(self) -> dict[str, str]:
        """/etc/hosts entries of the sandbox: every service name is the loopback address."""
        return {name: servers.LOOPBACK for spec in self.specs for name in spec.names}

    def env(self) -> dict[str, str]:
        """DATABASE_URL, PG*, MYSQL_*, REDIS_URL for the sandbox's shell, setup and tests."""
        return servers.sandbox_env(self.specs)

    def attach(self, sandbox: Container) -> None:
        """Start every service in `sandbox`'s network namespace (replacing any earlier ones)."""
        if not self.specs:
            return
        self.stop()
        self._sandbox = (str(sandbox.id), (sandbox.labels or {}).get(labels.RUN_ID, ""))
        self._attached_at = time.monotonic()
        for spec in self.specs:
            self.progress(f"starting service {spec.name} ({spec.kind} {spec.runs_version}, port {spec.port})")
            try:
                self._start_container(spec)
            except docker.errors.DockerException as err:
                self.stop()
                raise ServiceError(
                    f"cannot start service {spec.name} ({spec.kind}): {_reason(err)}"
                ) from None

    def wait_ready(self) -> None:
        """Block until every service answers its probe; ServiceError (everything removed) if one
        does not within ready_timeout, naming it and the last lines of its log."""
        for spec in self.specs:
            self._wait_one(spec, self._attached_at + self.ready_timeout)
            self.ready_seconds[spec.name] = round(time.monotonic() - self._attached_at, 3)
        if self.specs:
            ready = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.ready_seconds.items())
            self.progress(f"services ready: {ready}")

    def stop(self) -> None:
        """Remove every service container, all at once; never raises, safe to call again."""
        containers, self.containers = list(self.containers.values()), {}
        side_by_side(*(functools.partial(discard, container, servers.END_SIGNAL) for container in containers))

    # -- the service tool ------------------------------------------------------------------

    def spec(self, name: str) -> ServiceSpec:
        for spec in self.specs:
            if name in spec.names:
                return spec
        raise KeyError(name)

    def status(self) -> list[dict[str, Any]]:
        """Each service: names, kind, port, and whether its container runs and it answers."""
        rows = []
        for spec in self.specs:
            state = "not started"
            container = self.containers.get(spec.name)
            if container is not None:
                state = self._state(spec, container)
            rows.append({**self.describe_one(spec), "state": state})
        return rows

    def logs(self, name: str, limit: int = LOG_LIMIT) -> str:
        """The service's log (server output), its last `limit` bytes."""
        container = self._container(name)
        with _docker_errors(f"cannot read the log of service {name}"):
            data = bytes(container.logs(stdout=True, stderr=True, tail=400))
        if len(data) > limit:
            data = b"[... earlier lines cut ...]\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def stop_one(self, name: str) -> None:
        """Shut the server down (the container and its data stay) and wait until it has gone."""
        spec = self.spec(name)
        signal_name = "INT" if spec.kind == "postgres" else "TERM"  # postgres: fast shutdown
        script = (
            f"touch {servers.CONTROL}/stopped; pid=$(cat {servers.CONTROL}/pid 2>/dev/null) || exit 0; "
            f"kill -{signal_name} $pid 2>/dev/null; for i in $(seq 300); do "
            f"[ -e {servers.CONTROL}/pid ] || exit 0; sleep 0.1; done; kill -KILL $pid; exit 0"
        )
        self._exec(name, script, 45)

    def start_one(self, name: str) -> float:
        """Start a stopped server, or a new container in place of one that ended (the engine
        removes it; its data, on tmpfs, went with it as a restart would lose it), and wait
        until it is ready."""
        spec = self.spec(name)
        container = self._container(name)
        started = time.monotonic()
        with _docker_errors(f"cannot start service {name}"):
            if self._running(container):
                self._exec(name, f"rm -f {servers.CONTROL}/stopped", 15)
            else:
                discard(container, servers.END_SIGNAL)
                self._start_container(spec)
        self._wait_one(spec, started + self.ready_timeout, remove_on_failure=False)
        return time.monotonic() - started

    def restart_one(self, name: str) -> float:
        self.stop_one(name)
        return self.start_one(name)

    # -- records ---------------------------------------------------------------------------

    def describe_one(self, spec: ServiceSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "names": list(spec.names),
            "kind": spec.kind,
            "requested": spec.requested,
            "version": spec.runs_version,
            "host": servers.LOOPBACK,
            "port": spec.port,
            "user": spec.user,
            "database": spec.database,
            "source": spec.source,
        }

    def describe(self) -> list[dict[str, Any]]:
        """What summary.json and the trajectory record (no passwords)."""
        return [
            {**self.describe_one(spec), "ready_s": self.ready_seconds.get(spec.name)} for spec in self.specs
        ]

    # -- internals -------------------------------------------------------------------------

    def container_options(self, spec: ServiceSpec, sandbox_id: str, run_id: str) -> dict[str, Any]:
        """The hardened service container, as `containers.create` keyword arguments."""
        uid = f"{SERVICE_UID}:{SERVICE_UID}"
        owned = f"uid={SERVICE_UID},gid={SERVICE_UID},mode=0700"
        return {
            "command": ["bash", "--noprofile", "--norc", "-c", servers.script(spec)],
            "init": True,
            "user": uid,
            "environment": servers.container_env(spec),
            "labels": {
                labels.MANAGED: labels.MANAGED_VALUE,
                labels.KIND: labels.KIND_SERVICE,
                labels.RUN_ID: run_id,
                labels.OWNER: labels.owner(),
                labels.SERVICE: spec.name,
                **self.extra_labels,
            },
            "name": f"patchwright-{run_id or 'run'}-{spec.name}-{secrets.token_hex(3)}",
            "network_mode": f"container:{sandbox_id}",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "pids_limit": self.pids_limit,
            "mem_limit": self.memory,
            "memswap_limit": self.memory,
            "nano_cpus": int(self.cpus * 1e9),
            "tmpfs": {
                servers.DATA_DIR: f"rw,nosuid,nodev,noexec,size=512m,{owned}",
                "/tmp": f"rw,nosuid,nodev,noexec,size=64m,{owned}",
                "/run": "rw,nosuid,nodev,noexec,size=1m",
            },
            "mounts": [],
            "log_config": LOG_CONFIG,
            "auto_remove": True,
            "stdin_open": False,
            "tty": False,
        }

    def _start_container(self, spec: ServiceSpec) -> None:
        sandbox_id, run_id = self._sandbox
        container = self._client().containers.create(
            self.image, **self.container_options(spec, sandbox_id, run_id)
        )
        self.containers[spec.name] = container
        container.start()

    def _client(self) -> docker.DockerClient:
        if self.client is None:
            raise ServiceError("services need the Docker engine")
        return self.client

    def _container(self, name: str) -> Container:
        spec = self.spec(name)
        container = self.containers.get(spec.name)
        if container is None:
            raise ServiceError(f"service {name} is not running (the sandbox has not started it)")
        return container

    def _exec(self, name: str, script: str, timeout: int) -> tuple[int | None, str]:
        container = self._container(name)
        with _docker_errors(f"cannot reach service {name}"):
            code, output = container.exec_run(
                ["timeout", str(timeout), "bash", "-c", script], user=f"{SERVICE_UID}:{SERVICE_UID}"
            )
        return code, output.decode("utf-8", "replace") if isinstance(output, bytes) else ""

    def _state(self, spec: ServiceSpec, container: Container) -> str:
        try:
            container.reload()
        except docker.errors.DockerException:
            return "gone"
        if container.status != "running":
            return f"container {container.status}"
        code, _ = self._exec(spec.name, f"[ -e {servers.CONTROL}/stopped ]", 5)
        if code == 0:
            return "stopped"
        ready, _ = container.exec_run(servers.probe(spec), user=f"{SERVICE_UID}:{SERVICE_UID}")
        return "ready" if ready == 0 else "starting"

    def _wait_one(self, spec: ServiceSpec, deadline: float, remove_on_failure: bool = True) -> None:
        container = self.containers.get(spec.name)
        why = "its container was not created"
        while container is not None:
            # One exec that probes inside the container until ready, in slices well under the
            # SDK's read timeout: an exec per probe would cost the busy engine more than the probe.
            left = deadline - time.monotonic()
            try:
                code, _ = container.exec_run(
                    servers.wait_probe(spec, max(0.1, min(PROBE_SLICE, left)), PROBE_INTERVAL),
                    user=f"{SERVICE_UID}:{SERVICE_UID}",
                )
            except docker.errors.APIError as err:  # exited: exec is refused
                why = f"it exited ({_reason(err)})"
                break
            if code == 0:
                return
            if code == servers.INITIAL_SETUP_FAILED:
                why = "its first start's own setup failed"
                break
            if not self._running(container):
                why = "it exited"
                break
            if time.monotonic() >= deadline:
                why = f"it was not ready after {self.ready_timeout:.0f} s"
                break
        tail = self._log_tail(container)
        if remove_on_failure:
            self.stop()
        raise ServiceError(
            f"service {spec.name} ({spec.kind}) failed to start: {why}; last log lines: {tail}"
        )

    def _running(self, container: Container) -> bool:
        try:
            container.reload()
        except docker.errors.DockerException:
            return False
        return container.status == "running"

    def _log_tail(self, container: Container | None) -> str:
        if container is None:
            return "(none)"
        try:
            raw = bytes(container.logs(stdout=True, stderr=True, tail=LOG_LINES_ON_FAILURE))
        except docker.errors.DockerException:
            return "(unavailable)"
        lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
        return " | ".join(line[:200] for line in lines) or "(empty)"


def _reason(err: docker.errors.DockerException) -> str:
    if isinstance(err, docker.errors.APIError) and err.explanation:
        return str(err.explanation)
    return str(err)


@contextlib.contextmanager
def _docker_errors(what: str) -> Any:
    try:
        yield
    except docker.errors.DockerException as err:
        raise ServiceError(f"{what}: {_reason(err)}") from None
