"""Setup's network on the real engine: package registries through the allowlist proxy, nothing
else (not the host, not another domain), nothing at all once setup is over, and no proxy or
network left behind by a stop, a failed start or prune."""

from __future__ import annotations

import dataclasses
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from patchwright.errors import SandboxError
from patchwright.sandbox import labels
from patchwright.sandbox.allowlist import allowed_hosts
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.egress import (
    EgressProxy,
    EgressSpec,
    ensure_egress_image,
    tinyproxy_config,
    upstream_proxy,
)
from patchwright.sandbox.prune import prune
from patchwright.workspace import open_workspace

from helpers import SESSION_ID, TEST_LABEL, settled

CA = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def egress_image(docker_client: docker.DockerClient) -> str:
    return ensure_egress_image(docker_client)


@pytest.fixture
def host_server() -> Iterator[tuple[str, int, list[str]]]:
    """An HTTP server on the host, on every address (the docker bridge gateway included); the
    paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host-secret-page")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "172.17.0.1", server.server_address[1], asked
    finally:
        server.shutdown()


def _gateway(client: docker.DockerClient) -> str:
    config = client.networks.get("bridge").attrs["IPAM"]["Config"]
    return str(config[0].get("Gateway") or "172.17.0.1")


def _host_address() -> str:
    """The host's own address on its outward interface (its route to the internet)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.254", 9))  # no packet is sent: only the route is looked up
        return str(probe.getsockname()[0])
    finally:
        probe.close()


def _spec(spec: SandboxSpec, image: str, setup: str, extra: tuple[str, ...] = ()) -> SandboxSpec:
    return dataclasses.replace(
        spec,
        setup_command=setup,
        host_ca_bundle=CA if os.path.exists(CA) else None,
        egress=EgressSpec(image, allowed_hosts(extra)),
    )


def _run_things(client: docker.DockerClient, run_id: str) -> list[str]:
    """The proxy containers and setup networks of the run `run_id` still there."""
    wanted = {"label": [f"{labels.RUN_ID}={run_id}", f"{labels.KIND}={labels.KIND_EGRESS}"]}
    found = [str(c.id) for c in client.containers.list(all=True, filters=wanted, sparse=True)]
    wanted = {"label": [f"{labels.RUN_ID}={run_id}"]}
    return found + [str(n.name) for n in client.networks.list(filters=wanted)]


def test_setup_reaches_the_registry_and_nothing_else(
    docker_client: docker.DockerClient,
    spec: SandboxSpec,
    small_repo: Path,
    egress_image: str,
    host_server: tuple[str, int, list[str]],
) -> None:
    _, port, asked = host_server
    gateway = _gateway(docker_client)
    probe = "curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{http_connect}'"
    setup = "; ".join(
        [
            "pip download --no-deps --quiet -d /tmp/wheels six > /tmp/pip.log 2>&1",
            f"{probe} https://pypi.org/simple/six/ > /tmp/pypi 2>/dev/null",
            f"{probe} http://{gateway}:{port}/via-proxy > /tmp/gateway 2>/dev/null",
            f"{probe} -x \"$http_proxy\" --noproxy '' http://127.0.0.1:{port}/loopback > /tmp/loopback 2>/dev/null",
            f"{probe} --noproxy '*' http://{gateway}:{port}/direct > /tmp/direct 2>&1",
            f"{probe} --noproxy '*' http://{_host_address()}:{port}/direct-eth > /tmp/direct-eth 2>&1",
            "ip -6 addr 2>/dev/null > /tmp/ipv6; cat /proc/net/if_inet6 >> /tmp/ipv6",
            f"{probe} https://example.org/ > /tmp/other 2>/dev/null",
            f"{probe} https://pypi.org.example.org/ > /tmp/lookalike 2>/dev/null",
            "env > /tmp/env-during",
            "true",
        ]
    )
    box = DockerSandbox(docker_client, _spec(spec, egress_image, setup), open_workspace(small_repo))
    box.start()
    try:
        assert "six" in box.run("ls /tmp/wheels").output, box.run("cat /tmp/pip.log").output
        assert box.run("cat /tmp/pypi").output.startswith("200")
        # the proxy refuses what is not on the list: 403 to a plain request, 403 to a tunnel
        assert box.run("cat /tmp/gateway").output.startswith("403")
        assert box.run("cat /tmp/loopback").output.startswith("403")
        assert box.run("cat /tmp/other").output == "000 403"
        assert box.run("cat /tmp/lookalike").output == "000 403"
        # without the proxy there is no route at all: the internal network ends at the proxy
        for name in ("direct", "direct-eth"):
            direct = box.run(f"cat /tmp/{name}").output
            assert direct.endswith("000 000") and "host-secret-page" not in direct, (name, direct)
        assert box.run("cat /tmp/ipv6").output.strip() == ""  # no IPv6 route to the host either
        assert asked == []  # the host server never saw a request
        env_during = box.run("cat /tmp/env-during").output
        assert "HTTPS_PROXY=http://registry-proxy:8888" in env_during
        # after setup: no network for the model, and the proxy and its network are gone
        assert box.run("ls /sys/class/net").output.split() == ["lo"]
        assert "registry-proxy" not in box.run("env").output
        assert not settled(lambda: _run_things(docker_client, spec.run_id))
    finally:
        box.stop()


def test_a_repairs_commands_go_through_the_same_proxy(
    docker_client: docker.DockerClient,
    spec: SandboxSpec,
    small_repo: Path,
    egress_image: str,
    host_server: tuple[str, int, list[str]],
) -> None:
    """The setup repair (no setup command: the window opens at its first command) gets the
    registries-only network, never the default bridge."""
    _, port, asked = host_server
    gateway = _gateway(docker_client)
    probe = "curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{http_connect}'"
    repairable = dataclasses.replace(_spec(spec, egress_image, ""), setup_command=None, setup_repairable=True)
    box = DockerSandbox(docker_client, repairable, open_workspace(small_repo))
    box.start()
    try:
        assert box.run("ls /sys/class/net").output.split() == ["lo"]  # offline until a repair command
        assert box.setup_run(f"{probe} https://pypi.org/simple/six/").output.startswith("200")
        assert box.setup_run(f"{probe} https://example.org/ 2>/dev/null").output == "000 403"
        direct = box.setup_run(f"{probe} --noproxy '*' http://{gateway}:{port}/direct 2>&1").output
        assert direct.endswith("000 000") and asked == [], direct
        assert "example.org" in box.egress_refused()
        box.finish_setup(save=False)
        assert box.run("ls /sys/class/net").output.split() == ["lo"]
        assert not settled(lambda: _run_things(docker_client, spec.run_id))
    finally:
        box.stop()


def test_a_host_the_user_allows_is_reachable(
    docker_client: docker.DockerClient,
    spec: SandboxSpec,
    small_repo: Path,
    egress_image: str,
    host_server: tuple[str, int, list[str]],
) -> None:
    _, port, asked = host_server
    gateway = _gateway(docker_client)
    setup = f"curl -sS --max-time 10 http://{gateway}:{port}/allowed > /tmp/page"
    box = DockerSandbox(
        docker_client, _spec(spec, egress_image, setup, (gateway,)), open_workspace(small_repo)
    )
    box.start()
    try:
        assert box.run("cat /tmp/page").output == "host-secret-page"
        assert asked == ["/allowed"]
    finally:
        box.stop()


def test_a_refused_host_is_named_and_a_failed_start_leaves_no_proxy(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, egress_image: str
) -> None:
    setup = "curl -fsS --max-time 10 https://example.org/ -o /dev/null"
    box = DockerSandbox(docker_client, _spec(spec, egress_image, setup), open_workspace(small_repo))
    with pytest.raises(SandboxError, match=r"the setup proxy refused example\.org.*--allow-host"):
        box.start()
    assert box.container is None
    assert not settled(lambda: _run_things(docker_client, spec.run_id))


def test_stop_during_setup_removes_the_proxy_and_network(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, egress_image: str
) -> None:
    box = DockerSandbox(
        docker_client, _spec(spec, egress_image, "touch /tmp/begun; sleep 60"), open_workspace(small_repo)
    )
    failures: list[BaseException] = []

    def start() -> None:
        try:
            box.start()
        except BaseException as err:  # the stop below ends the setup: start fails, as it should
            failures.append(err)

    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    try:

        def begun() -> list[str]:
            assert not failures, f"the start failed before the stop: {failures[0]!r}"
            container = box.container
            if container is None:
                return ["not yet"]
            try:
                found = container.exec_run(["test", "-e", "/tmp/begun"]).exit_code == 0
            except docker.errors.APIError:  # going away: a failed start shows on the next poll
                return ["not yet"]
            return [] if found else ["not yet"]

        assert settled(begun) == []
        assert len(_run_things(docker_client, spec.run_id)) == 2  # the proxy and its network
    finally:
        box.stop()
    starting.join(timeout=60)
    assert failures
    assert not settled(lambda: _run_things(docker_client, spec.run_id))


def test_the_full_network_flag_uses_no_proxy(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, egress_image: str
) -> None:
    full = dataclasses.replace(_spec(spec, egress_image, "env > /tmp/env-during"), network=True)
    box = DockerSandbox(docker_client, full, open_workspace(small_repo))
    box.start()
    try:
        assert "registry-proxy" not in box.run("cat /tmp/env-during").output
        assert _run_things(docker_client, spec.run_id) == []
    finally:
        box.stop()


def test_the_proxy_chains_to_the_hosts_proxy(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, egress_image: str
) -> None:
    """A stand-in for the host's proxy (tinyproxy with no filter) sees the registry request."""
    config = "Port 3128\nListen 0.0.0.0\nLogLevel Connect\nConnectPort 443\n"
    upstream = docker_client.containers.run(
        egress_image,
        ["sh", "-c", 'printf "%s" "$CONF" > /tmp/c && exec tinyproxy -d -c /tmp/c'],
        environment={"CONF": config},
        tmpfs={"/tmp": "size=1m"},
        labels={labels.MANAGED: labels.MANAGED_VALUE, TEST_LABEL: SESSION_ID},
        name=f"pw-test-upstream-{uuid.uuid4().hex[:6]}",
        detach=True,
    )
    try:
        upstream.reload()
        address = upstream.attrs["NetworkSettings"]["IPAddress"]
        setup = (
            "curl -sS --max-time 20 -o /dev/null -w '%{http_code}' https://pypi.org/simple/six/ > /tmp/pypi"
        )
        chained = _spec(spec, egress_image, setup)
        assert chained.egress is not None
        chained = dataclasses.replace(
            chained, egress=dataclasses.replace(chained.egress, upstream=f"http {address}:3128")
        )
        box = DockerSandbox(docker_client, chained, open_workspace(small_repo))
        box.start()
        try:
            assert box.run("cat /tmp/pypi").output == "200"
        finally:
            box.stop()
        assert "CONNECT pypi.org:443" in upstream.logs().decode()
    finally:
        upstream.remove(force=True)


def test_prune_removes_a_left_behind_proxy_and_network(
    docker_client: docker.DockerClient, egress_image: str
) -> None:
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    proxy = EgressProxy(
        docker_client, EgressSpec(egress_image), run_id, extra_labels={TEST_LABEL: SESSION_ID}
    )
    proxy.start()
    network, container = proxy.network_name, proxy.container
    assert container is not None
    report = prune(docker_client, extra_labels={TEST_LABEL: SESSION_ID}, include_live=True)
    assert network in report.networks_removed
    assert str(container.id) in report.containers_removed
    assert _run_things(docker_client, run_id) == []


def test_the_hosts_proxy_becomes_the_upstream() -> None:
    assert upstream_proxy({}) is None
    assert upstream_proxy({"HTTPS_PROXY": "http://proxy.corp:3128"}) == "http proxy.corp:3128"
    assert upstream_proxy({"http_proxy": "proxy.corp:8080"}) == "http proxy.corp:8080"
    # a proxy on the host's loopback is the engine's host gateway from inside the proxy container
    assert upstream_proxy({"https_proxy": "http://127.0.0.1:3128"}) == "http host.docker.internal:3128"
    assert upstream_proxy({"https_proxy": "http://u:p@proxy:3128"}) == "http u:p@proxy:3128"
    assert upstream_proxy({"https_proxy": "socks5://proxy:1080"}) is None


def test_the_proxy_denies_by_default_and_tunnels_to_443_only() -> None:
    config = tinyproxy_config(None).splitlines()
    assert "FilterDefaultDeny Yes" in config and "ConnectPort 443" in config
    assert not [line for line in config if line.startswith("Upstream")]
    assert "Upstream http proxy:3128" in tinyproxy_config("http proxy:3128").splitlines()


def test_ctrl_c_during_setup_leaves_no_proxy_or_network(
    tmp_path: Path, sandbox_image: str, egress_image: str, docker_client: docker.DockerClient
) -> None:
    from agentrun import AGENT, agent_env
    from fakeapi import FakeAnthropic, message, text
    from helpers import make_repo

    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    with FakeAnthropic([message(text("done"))]) as api:
        proc = subprocess.Popen(
            [*AGENT, "fix", "x", "--repo", str(repo), "--setup", "sleep 120"],
            env=agent_env(api, sandbox_image),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        owner = f"{socket.gethostname()} {proc.pid} "

        def of_the_run() -> list[str]:
            wanted = {"label": [f"{labels.MANAGED}=true"]}
            # sparse: listed by the engine, not inspected one by one (another run's may vanish meanwhile)
            found = [
                str(c.id)
                for c in docker_client.containers.list(all=True, filters=wanted, sparse=True)
                if (c.attrs.get("Labels") or {}).get(labels.OWNER, "").startswith(owner)
            ]
            networks = docker_client.networks.list(
                filters={"label": f"{labels.KIND}={labels.KIND_EGRESS_NETWORK}"}
            )
            return found + [
                str(n.name)
                for n in networks
                if (n.attrs.get("Labels") or {}).get(labels.OWNER, "").startswith(owner)
            ]

        try:
            # the sandbox, the proxy and the network, with setup under way
            assert settled(lambda: [] if len(of_the_run()) >= 3 else ["not yet"], wait=120) == []
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert not settled(of_the_run)
