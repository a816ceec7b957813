"""Setup's way out: package registries only, through a proxy on the sandbox's own network.

During setup the sandbox sits on an internal Docker network (`internal=True`: no route
out, not even to the host). The one other member is a tinyproxy container, also on the
engine's default bridge, and the sandbox's HTTP(S)_PROXY points at it. tinyproxy forwards a
request only when its host matches the allowlist (`Filter` + `FilterDefaultDeny Yes`, the
host name anchored at both ends), tunnels only to port 443 (`ConnectPort 443`), and hands
everything to the host's own proxy (`Upstream`) when the host has one. After setup the
sandbox leaves the network, and the proxy and the network are removed; so a repository
can neither reach another host during setup nor anything at all afterwards.

The allowlist is REGISTRY_HOSTS plus the hosts the user adds (`allow_hosts`, a setting a
repository cannot set). The proxy image is tinyproxy from Debian, built like the other
images without a registry (`sandbox/egress/`), and tagged by a hash of its definition.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from patchwright.errors import SandboxError
from patchwright.sandbox import labels
from patchwright.sandbox.allowlist import REGISTRY_HOSTS, filter_patterns
from patchwright.sandbox.image import (
    ImageDefinition,
)

Progress = Callable[[str], None]
EGRESS_IMAGE_REPO = "patchwright-egress"
PROXY_ALIAS = "registry-proxy"  # the proxy's name on the sandbox's internal network
PROXY_PORT = 8888
READY_TIMEOUT = 20.0
NO_PROXY = "localhost,127.0.0.1,::1"  # the run's services answer on the loopback, not through the proxy

_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_HOST_GATEWAY = "host.docker.internal"


def upstream_proxy(env: dict[str, str]) -> str | None:
    """The host's proxy as tinyproxy's `Upstream` takes it (`http [user:pass@]host:port`), or None.

    A proxy on the host's loopback is reached through the engine's host gateway."""
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        value = env.get(name, "").strip()
        if not value:
            continue
        parts = urlsplit(value if "://" in value else f"http://{value}")
        if parts.scheme not in ("http", "") or not parts.hostname:
            continue  # tinyproxy chains to http proxies (and socks, which is not offered here)
        host = _HOST_GATEWAY if parts.hostname in _LOOPBACK_NAMES else parts.hostname
        userinfo = parts.netloc.rpartition("@")[0]
        return f"http {userinfo + '@' if userinfo else ''}{host}:{parts.port or 80}"
    return None


def tinyproxy_config(upstream: str | None) -> str:
    """The proxy's configuration: deny by default, the filter file allows, tunnels to 443 only."""
    lines = [
        f"Port {PROXY_PORT}",
        "Listen 0.0.0.0",
        "Timeout 600",
        "MaxClients 64",
        "LogLevel Info",  # the refusals, and "Accepting connections" once it listens
        'Filter "/tmp/allowlist"',
        "FilterType ere",
        "FilterDefaultDeny Yes",
        "ConnectPort 443",
        "DisableViaHeader Yes",
    ]
    if upstream:
        lines.append(f"Upstream {upstream}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EgressSpec:
    """What setup may reach: the allowlist, the proxy image, and the host proxy to chain to."""

    image: str
    hosts: tuple[str, ...] = REGISTRY_HOSTS
    upstream: str | None = None  # tinyproxy `Upstream` value (may hold the host proxy's credentials)


@dataclass
class EgressProxy:
    """One sandbox's setup network and proxy: made before the sandbox, removed after setup."""

    client: docker.DockerClient
    spec: EgressSpec
    run_id: str
    extra_labels: dict[str, str] = field(default_factory=dict)
    progress: Progress = field(default=lambda _line: None)
    network: Network | None = None
    container: Container | None = None

    @property
    def network_name(self) -> str:
        if self.network is None:
            raise SandboxError("the setup network is not there")
        return str(self.network.name)

    def _labels(self, kind: str) -> dict[str, str]:
        return {
            labels.MANAGED: labels.MANAGED_VALUE,
            labels.KIND: kind,
            labels.RUN_ID: self.run_id,
            labels.OWNER: labels.owner(),
            **self.extra_labels,
        }

    def start(self) -> None:
        """The internal network and the proxy on it, listening; SandboxError (nothing left) if not."""
        suffix = secrets.token_hex(3)
        self.progress(f"setup network: package registries only ({len(self.spec.hosts)} hosts, via tinyproxy)")
        try:
            self.network = self.client.networks.create(
                f"patchwright-{self.run_id}-setup-{suffix}",
                driver="bridge",
                internal=True,
                # No address for the host on this bridge: an internal network still routes to every
                # address of the host itself (the gateway, docker0, eth0), so its services would be
                # in reach; without one, the proxy is the only peer.
                options={"com.docker.network.bridge.inhibit_ipv4": "true"},
                labels=self._labels(labels.KIND_EGRESS_NETWORK),
            )
            self.container = self.client.containers.create(
                self.spec.image, **self._container_options(f"patchwright-{self.run_id}-egress-{suffix}")
            )
            self.network.connect(self.container, aliases=[PROXY_ALIAS])
            self.container.start()
            self._wait_listening()
        except docker.errors.DockerException as err:
            self.stop()
            raise SandboxError(f"cannot start the setup proxy: {_reason(err)}") from None
        except BaseException:  # its own failure, or Ctrl-C mid-way: nothing stays behind
            self.stop()
            raise

    def _container_options(self, name: str) -> dict[str, Any]:
        script = (
            'printf "%s" "$PATCHWRIGHT_PROXY_CONF" >/tmp/tinyproxy.conf && '
            'printf "%s\\n" "$PATCHWRIGHT_ALLOWLIST" >/tmp/allowlist && '
            "exec tinyproxy -d -c /tmp/tinyproxy.conf"
        )
        return {
            "name": name,
            "command": ["sh", "-c", script],
            "user": "65534:65534",
            "environment": {
                "PATCHWRIGHT_PROXY_CONF": tinyproxy_config(self.spec.upstream),
                "PATCHWRIGHT_ALLOWLIST": "\n".join(filter_patterns(self.spec.hosts)),
            },
            "labels": self._labels(labels.KIND_EGRESS),
            "network": "bridge",  # the way out; the internal network is joined before the start
            "extra_hosts": {_HOST_GATEWAY: "host-gateway"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=1m"},
            "mem_limit": "128m",
            "pids_limit": 64,
            "auto_remove": False,
        }

    def _wait_listening(self) -> None:
        assert self.container is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status not in ("created", "running"):
                break
            if b"Accepting connections" in self.container.logs():
                return
            time.sleep(0.05)
        tail = self.container.logs(tail=3).decode(errors="replace").strip().replace("\n", "; ")
        raise SandboxError(f"the setup proxy did not start: {tail or 'no output'}")

    def env(self) -> dict[str, str]:
        """The sandbox's proxy variables during setup (both spellings: tools read one or the other)."""
        url = f"http://{PROXY_ALIAS}:{PROXY_PORT}"
        values = {"http_proxy": url, "https_proxy": url, "no_proxy": NO_PROXY}
        return {**values, **{k.upper(): v for k, v in values.items()}}

    def refused(self) -> list[str]:
        """The hosts the proxy refused so far (from its log), for the setup's failure message."""
        if self.container is None:
            return []
        with contextlib.suppress(docker.errors.DockerException):
            text = self.container.logs().decode(errors="replace")
            return list(dict.fromkeys(re.findall(r'refused on filtered domain "([^"]+)"', text)))
        return []

    def stop(self) -> None:
        """Remove the proxy and the network (every member disconnected first); never raises."""
        if self.container is not None:
            with contextlib.suppress(docker.errors.DockerException):
                self.container.remove(force=True)
            self.container = None
        if self.network is not None:
            with contextlib.suppress(docker.errors.DockerException):
                self.network.reload()
                for member in self.network.containers:
                    with contextlib.suppress(docker.errors.DockerException):
                        self.network.disconnect(member, force=True)
                self.network.remove()
            self.network = None


# On the sandbox while it is on the setup network: no IPv6, so no link-local route to the host's
# bridge address either (inhibit_ipv4 covers IPv4 only).
SANDBOX_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


def environment(base: dict[str, str], proxy: dict[str, str]) -> dict[str, str]:
    """`base` (the host's proxy variables among others) with every proxy variable replaced by `proxy`'s."""
    kept = {k: v for k, v in base.items() if k.lower() not in _PROXY_NAMES}
    return {**kept, **proxy}


def _reason(err: docker.errors.DockerException) -> str:
    if isinstance(err, docker.errors.APIError) and err.explanation:
        return str(err.explanation)
    return str(err)


# -- the image -------------------------------------------------------------------------------


EGRESS_IMAGE = ImageDefinition(
    "setup proxy image", EGRESS_IMAGE_REPO, labels.KIND_EGRESS_IMAGE, "egress", ": tinyproxy"
)


# The module's names for the definition's methods (callers and tests use these).
egress_definition_dir = EGRESS_IMAGE.folder
egress_image_hash = EGRESS_IMAGE.hash
egress_image_tag = EGRESS_IMAGE.tag
build_egress_image = EGRESS_IMAGE.build
ensure_egress_image = EGRESS_IMAGE.ensure
