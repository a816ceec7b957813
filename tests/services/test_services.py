"""The run's services against the real engine: real PostgreSQL, MariaDB and Redis containers in
the sandbox's network namespace. The safety tests show the sandbox reaches its own services and
nothing else (not the host's loopback, not 0.0.0.0, not another run's services)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from patchwright.sandbox import labels
from patchwright.sandbox.base import SandboxSpec, StartResult
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.prune import prune
from patchwright.services import ServiceError, ServiceSet, ServiceSpec, parse_spec
from patchwright.workspace import open_workspace

from helpers import SESSION_ID, TEST_LABEL, our_containers, settled


def service_set(
    client: docker.DockerClient, image: str, *specs: str | ServiceSpec, **options: object
) -> ServiceSet:
    options.setdefault("extra_labels", {TEST_LABEL: SESSION_ID})
    wanted = [parse_spec(s) if isinstance(s, str) else s for s in specs]
    return ServiceSet(client, wanted, image, **options)  # type: ignore[arg-type]


@pytest.fixture
def box_with(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, services_image: str
) -> Iterator[object]:
    """Start sandboxes with the given services; all stopped at the end."""
    started: list[DockerSandbox] = []

    def start(
        *specs: str | ServiceSpec, sandbox_spec: SandboxSpec = spec, **options: object
    ) -> DockerSandbox:
        services = service_set(docker_client, services_image, *specs, **options)
        run_spec = dataclasses.replace(sandbox_spec, run_id=f"{sandbox_spec.run_id}-{len(started)}")
        box = DockerSandbox(docker_client, run_spec, open_workspace(small_repo), services=services)
        started.append(box)
        results.append(box.start())
        return box

    results: list[StartResult] = []
    start.results = results  # type: ignore[attr-defined]  # what each start returned (setup's output)
    yield start
    for box in started:
        box.stop()


def test_sandbox_reaches_its_services_by_name_and_by_the_variables(box_with) -> None:  # type: ignore[no-untyped-def]
    box = box_with("postgres:15", "mysql:8", "cache=redis")
    assert set(box.services.ready_seconds) == {"postgres", "mysql", "cache"}
    env = box.run(
        "echo $DATABASE_URL; echo $PGHOST:$PGPORT; echo $MYSQL_HOST:$MYSQL_TCP_PORT; echo $REDIS_URL"
    )
    assert env.output.splitlines() == [
        "postgresql://postgres:postgres@127.0.0.1:5432/postgres",
        "127.0.0.1:5432",
        "127.0.0.1:3306",
        "redis://127.0.0.1:6379/0",
    ]
    assert box.run("psql -tAc 'select 40 + 2'").output.strip() == "42"  # PG* variables alone
    assert box.run("psql -h postgres -tAc 'select current_user'").output.strip() == "postgres"
    maria = box.run('mariadb -h mysql -u root -p"$MYSQL_PASSWORD" -N -e "select @@version"')
    assert maria.exit_code == 0 and "MariaDB" in maria.output
    assert box.run("redis-cli -h cache ping").output.strip() == "PONG"
    assert box.run("redis-cli -h redis set k v >/dev/null && redis-cli get k").output.strip() == "v"
    python = box.run(
        "python3 -c \"import os, psycopg2; c = psycopg2.connect(os.environ['DATABASE_URL']); "
        "cur = c.cursor(); cur.execute('select 1'); print(cur.fetchone()[0])\""
    )
    assert python.output.strip() == "1"
    wrong = box.run("PGPASSWORD=wrong psql -h postgres -tAc 'select 1'")
    assert wrong.exit_code != 0 and "password authentication failed" in wrong.output


class Listener:
    """A TCP listener on this host that records every connection it accepts."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def _bridge_gateway(client: docker.DockerClient) -> str:
    config = client.networks.get("bridge").attrs["IPAM"]["Config"]
    return str(config[0].get("Gateway") or "172.17.0.1")


def test_sandbox_cannot_reach_host_listeners_on_loopback_or_any_address(box_with, docker_client) -> None:  # type: ignore[no-untyped-def]
    loopback, anywhere = Listener("127.0.0.1"), Listener("0.0.0.0")
    try:
        # The listeners work: this host reaches both.
        for port in (loopback.port, anywhere.port):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        deadline = time.monotonic() + 5
        while loopback.accepted + anywhere.accepted < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = loopback.accepted + anywhere.accepted
        assert before == 2
        box = box_with("postgres")
        gateway = _bridge_gateway(docker_client)
        for host, port in (
            ("127.0.0.1", loopback.port),
            ("127.0.0.1", anywhere.port),
            (gateway, anywhere.port),
        ):
            probe = box.run(
                f"timeout 3 bash -c 'echo > /dev/tcp/{host}/{port}' && echo REACHED || echo refused"
            )
            assert probe.output.strip().endswith("refused"), (host, port, probe.output)
        # Its own namespace has a loopback device and nothing else, so there is no route at all.
        devices = box.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").output.split()
        assert devices == ["lo"]
        assert box.run("psql -tAc 'select 1'").output.strip() == "1"  # while its own service answers
        assert loopback.accepted + anywhere.accepted == before
    finally:
        loopback.close()
        anywhere.close()


def test_a_run_cannot_reach_another_runs_services(box_with) -> None:  # type: ignore[no-untyped-def]
    first = box_with("redis", "postgres")
    second = box_with("redis")
    assert first.run("redis-cli set owner first").output.strip() == "OK"
    assert second.run("redis-cli get owner").output.strip() == ""  # its own, empty server
    # The second run has no postgres of its own and cannot reach the first run's.
    probe = second.run("timeout 3 bash -c 'echo > /dev/tcp/127.0.0.1/5432' && echo REACHED || echo refused")
    assert probe.output.strip().endswith("refused")
    assert "postgres" not in second.run("cat /etc/hosts").output


def test_service_containers_are_hardened_and_labelled(box_with, docker_client) -> None:  # type: ignore[no-untyped-def]
    box = box_with("postgres", "mariadb", "redis")
    assert box.container is not None
    for name, container in box.services.containers.items():
        container.reload()
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == f"container:{box.container.id}"
        assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
        assert host["ReadonlyRootfs"] is True
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["Memory"] == 2**30 and host["PidsLimit"] == 256 and host["NanoCpus"] == 10**9
        assert not host.get("Binds") and not container.attrs.get("Mounts")
        assert not host.get("PortBindings")
        assert host["AutoRemove"] is True  # ended by a signal at the run's end; the engine removes it
        assert container.attrs["Config"]["User"] == "2000:2000"
        found = container.labels
        assert found[labels.KIND] == labels.KIND_SERVICE and found[labels.SERVICE] == name
        assert found[labels.RUN_ID] == box.spec.run_id and found[labels.OWNER] == labels.owner()
        users = container.exec_run(["ps", "-e", "-o", "uid="]).output.decode().split()
        assert users and set(users) == {"2000"}, users  # no server process runs as root
        assert (
            "/data tmpfs"
            in container.exec_run(["sh", "-c", "awk '{print $2, $3}' /proc/mounts"]).output.decode()
        )
    box.stop()
    assert settled(lambda: our_containers(docker_client)) == []


def test_setup_runs_after_the_services_are_ready_and_sees_their_variables(box_with, spec) -> None:  # type: ignore[no-untyped-def]
    setup = "psql -c 'create table migrated (id int)' && redis-cli set seeded yes"
    box = box_with("postgres", "redis", sandbox_spec=dataclasses.replace(spec, setup_command=setup))
    setup_result = box_with.results[-1].setup
    assert setup_result is not None and setup_result.exit_code == 0, setup_result
    assert (
        box.run("psql -tAc \"select count(*) from pg_tables where tablename = 'migrated'\"").output.strip()
        == "1"
    )
    assert box.run("redis-cli get seeded").output.strip() == "yes"
    # Setup's network is cut afterwards; the services still answer on loopback.
    assert box.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").output.split() == ["lo"]
    assert box.run("psql -tAc 'select 1'").output.strip() == "1"


def test_stop_start_restart_keep_the_data_and_drop_connections(box_with) -> None:  # type: ignore[no-untyped-def]
    box = box_with("postgres")
    assert box.run("psql -c 'create table kept (x int); insert into kept values (7)'").exit_code == 0
    box.services.stop_one("postgres")
    assert box.services.status()[0]["state"] == "stopped"
    down = box.run("psql -tAc 'select 1'")
    assert down.exit_code != 0 and "Connection refused" in down.output
    box.services.start_one("postgres")
    assert box.services.status()[0]["state"] == "ready"
    assert box.run("psql -tAc 'select x from kept'").output.strip() == "7"
    # A connection open across a restart is broken by it, as with a real server.
    script = (
        "import os, time, psycopg2\n"
        "c = psycopg2.connect(os.environ['DATABASE_URL']); c.autocommit = True\n"
        "c.cursor().execute('select 1'); open('/tmp/connected', 'w').close()\n"
        "while not os.path.exists('/tmp/go'): time.sleep(0.1)\n"
        "try:\n    c.cursor().execute('select 1'); print('alive')\n"
        "except psycopg2.OperationalError: print('broken')\n"
    )
    box.write_file("/tmp/hold.py", script.encode())
    box.run(
        "(python3 /tmp/hold.py > /tmp/held.txt 2>&1 &); while [ ! -e /tmp/connected ]; do sleep 0.1; done"
    )
    box.services.restart_one("postgres")
    box.run("touch /tmp/go; sleep 1")
    assert box.run("cat /tmp/held.txt").output.strip() == "broken"
    assert "database system is ready" in box.services.logs("postgres")


def test_a_service_whose_container_ended_is_started_again_empty(box_with, docker_client) -> None:  # type: ignore[no-untyped-def]
    """Killed from outside (or out of memory), a service's container ends and the engine removes
    it; the service tool's start puts a new one in its place, with empty data as a restart of
    the old one would have."""
    box = box_with("postgres")
    assert box.run("psql -c 'create table lost (x int)'").exit_code == 0
    ended = box.services.containers["postgres"]
    ended.kill()
    assert (
        settled(lambda: [c.id for c in docker_client.containers.list(all=True, filters={"id": ended.id})])
        == []
    )
    assert box.services.status()[0]["state"] == "gone"
    box.services.start_one("postgres")
    assert box.services.status()[0]["state"] == "ready"
    assert box.services.containers["postgres"].id != ended.id
    assert box.run("psql -tAc 'select 1'").output.strip() == "1"
    assert "lost" not in box.run("psql -tAc '\\dt'").output


def test_a_service_that_fails_to_start_names_itself_and_leaves_nothing(  # type: ignore[no-untyped-def]
    box_with, docker_client
) -> None:
    # PostgreSQL refuses a role named pg_*: the first start's setup fails, and the log says why
    # (the container stays until the set is stopped, or the engine would remove it and its log).
    clash = dataclasses.replace(parse_spec("postgres"), user="pg_bad")
    with pytest.raises(
        ServiceError,
        match=r"service postgres \(postgres\) failed to start: its first start's own setup failed; "
        r"last log lines: .*role name .pg_bad. is reserved",
    ):
        box_with("redis", clash, ready_timeout=30)
    assert settled(lambda: our_containers(docker_client)) == []


def test_prune_removes_service_containers_of_a_dead_run(docker_client, services_image, box_with) -> None:  # type: ignore[no-untyped-def]
    box = box_with("redis", extra_labels={TEST_LABEL: SESSION_ID, labels.OWNER: "elsewhere 1 1"})
    ids = [c.id for c in box.services.containers.values()]
    live = box_with("redis")
    report = prune(docker_client, extra_labels={TEST_LABEL: SESSION_ID})
    assert set(ids) <= set(report.containers_removed)
    assert not {c.id for c in live.services.containers.values()} & set(report.containers_removed)
    assert live.run("redis-cli ping").output.strip() == "PONG"
