"""The sandbox image on the real Docker engine: built once, reused, named after its definition.

Every container or image these tests create carries TEST_LABEL with a value unique to
the test, and prune is only ever called with that label, so other people's objects on
a shared engine are never touched.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound, NotFound

from patchwright.errors import SandboxError
from patchwright.resources import data_dir
from patchwright.sandbox import engine as engine_module
from patchwright.sandbox import labels
from patchwright.sandbox.image import (
    DEFAULT_IMAGE_REPO,
    build_image,
    default_image_tag,
    definition_hash,
    ensure_image,
)
from patchwright.sandbox.prune import prune

TEST_LABEL = "io.patchwright.test-image"


@pytest.fixture
def scope() -> dict[str, str]:
    """A label only this test's objects carry."""
    return {TEST_LABEL: uuid.uuid4().hex}


@pytest.fixture
def cleanup(docker_client: docker.DockerClient, scope: dict[str, str]) -> Iterator[None]:
    """Remove whatever this test created, whether or not it passed."""
    yield
    selector = {"label": [f"{key}={value}" for key, value in scope.items()]}
    for container in docker_client.containers.list(all=True, filters=selector):
        with contextlib.suppress(NotFound):
            container.remove(force=True, v=True)
    for image in docker_client.images.list(filters=selector):
        for name in image.tags or [str(image.id)]:
            with contextlib.suppress(NotFound):
                docker_client.images.remove(name)


def test_build_is_idempotent(docker_client: docker.DockerClient, sandbox_image: str) -> None:
    first = build_image(docker_client)  # builds only if the fixture used another image
    started = time.monotonic()
    second = build_image(docker_client)
    elapsed = time.monotonic() - started

    assert second.skipped and second.method == "existing"
    assert elapsed < 5 and second.seconds < 5
    assert first.tag == second.tag == default_image_tag()


def test_default_image_is_labelled_and_configured(docker_client: docker.DockerClient) -> None:
    tag = ensure_image(docker_client, None)
    assert tag == f"{DEFAULT_IMAGE_REPO}:{definition_hash()}"
    config = docker_client.images.get(tag).attrs["Config"]

    assert config["Labels"][labels.MANAGED] == "true"
    assert config["Labels"][labels.KIND] == "image"
    assert config["Labels"][labels.IMAGE_HASH] == definition_hash()
    assert config["User"] == "agent"
    assert config["WorkingDir"] == "/workspace"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == "/home/agent"
    assert env["PATH"].startswith("/home/agent/.local/bin:")
    assert env["PIP_USER"] == env["PIP_BREAK_SYSTEM_PACKAGES"] == env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["LANG"] == "C.UTF-8"


def test_image_runs_as_agent_with_the_tools(
    docker_client: docker.DockerClient, sandbox_image: str, scope: dict[str, str], cleanup: None
) -> None:
    tools = "git python3 pytest node npm rg pkill timeout make gcc patch curl"
    script = (
        'id -u; id -un; pwd; echo "$HOME"; touch /workspace/probe && echo writable; '
        f"for t in {tools}; do command -v $t >/dev/null || echo missing:$t; done; "
        "python3 -m pytest --version 2>&1 | head -1"
    )
    output = docker_client.containers.run(
        sandbox_image, ["bash", "-c", script], remove=True, network_disabled=True, labels=scope
    ).decode()
    lines = output.splitlines()

    assert lines[:5] == ["1000", "agent", "/workspace", "/home/agent", "writable"], output
    assert not [line for line in lines if line.startswith("missing:")], output
    assert lines[-1].startswith("pytest "), output


def test_tag_follows_the_definition(tmp_path: Path) -> None:
    copy = tmp_path / "sandbox"
    shutil.copytree(data_dir("sandbox"), copy)
    assert re.fullmatch(r"[0-9a-f]{12}", definition_hash())
    assert definition_hash(copy) == definition_hash()
    assert default_image_tag(copy) == default_image_tag()

    (copy / "notes.md").write_text("not part of the definition\n")
    assert definition_hash(copy) == definition_hash()

    for name in ("packages.txt", "Dockerfile", "build-rootfs.sh", "rootfs-lib.sh"):
        edited = tmp_path / f"edited-{name}"
        shutil.copytree(data_dir("sandbox"), edited)
        with open(edited / name, "a") as handle:
            handle.write("\n# changed\n")
        assert definition_hash(edited) != definition_hash(), name
        assert default_image_tag(edited) != default_image_tag(), name


def test_prune_removes_managed_containers_only(
    docker_client: docker.DockerClient, sandbox_image: str, scope: dict[str, str], cleanup: None
) -> None:
    managed = docker_client.containers.create(
        sandbox_image, ["true"], labels={labels.MANAGED: "true", labels.KIND: "sandbox", **scope}
    )
    # Not a sandbox: it only inherits the image's labels (MANAGED, KIND=image) like any
    # container someone starts by hand from our image.
    unmanaged = docker_client.containers.create(sandbox_image, ["true"], labels=scope)
    managed.start()
    managed.wait(timeout=30)  # a stopped container, as a crashed run leaves it

    report = prune(docker_client, extra_labels=scope)

    assert report.containers_removed == [managed.id]
    assert report.images_removed == []
    with pytest.raises(NotFound):
        docker_client.containers.get(str(managed.id))
    assert docker_client.containers.get(str(unmanaged.id)).id == unmanaged.id


def test_prune_leaves_runs_in_progress_alone_unless_asked(
    docker_client: docker.DockerClient, sandbox_image: str, scope: dict[str, str], cleanup: None
) -> None:
    dead = subprocess.Popen(["true"])  # a process that has come and gone
    dead.wait()
    owners = {
        "live": labels.owner(),  # this test process: its run is still going
        "dead": f"{socket.gethostname()} {dead.pid} 1",
        "reused pid": labels.owner().rsplit(" ", 1)[0] + " 12345",  # our pid, another start time
        "other host": "elsewhere 1 1",
    }
    made = {
        name: docker_client.containers.create(
            sandbox_image,
            ["true"],
            labels={labels.MANAGED: "true", labels.KIND: "sandbox", labels.OWNER: value, **scope},
        )
        for name, value in owners.items()
    }

    report = prune(docker_client, extra_labels=scope)
    assert report.containers_kept == [made["live"].id]
    assert sorted(report.containers_removed) == sorted(
        str(made[n].id) for n in ("dead", "reused pid", "other host")
    )
    assert docker_client.containers.get(str(made["live"].id))

    report = prune(docker_client, extra_labels=scope, include_live=True)
    assert report.containers_removed == [made["live"].id] and report.containers_kept == []


def test_prune_removes_stale_images_only(
    docker_client: docker.DockerClient, sandbox_image: str, scope: dict[str, str], cleanup: None
) -> None:
    def derived(repository: str, image_hash: str) -> str:
        tag = f"{repository}:test-{scope[TEST_LABEL][:8]}-{image_hash}"
        docker_client.images.build(
            fileobj=io.BytesIO(f"FROM {sandbox_image}\n".encode()),
            tag=tag,
            labels={labels.MANAGED: "true", labels.KIND: "image", labels.IMAGE_HASH: image_hash, **scope},
            rm=True,
        )
        return tag

    stale = derived(DEFAULT_IMAGE_REPO, "000000000000")
    current = derived(DEFAULT_IMAGE_REPO, definition_hash())
    # A user's image built FROM ours inherits our labels, stale hash included; it is not ours.
    users = derived("patchwright-test-users-own", "000000000000")

    report = prune(docker_client, extra_labels=scope)

    assert report.images_removed == [stale]
    assert report.containers_removed == []
    with pytest.raises(ImageNotFound):
        docker_client.images.get(stale)
    docker_client.images.get(current)
    docker_client.images.get(users)
    docker_client.images.get(sandbox_image)  # the parent of them all is untouched


def test_missing_user_tag_is_a_sandbox_error(docker_client: docker.DockerClient) -> None:
    tag = f"patchwright-no-such-image:{uuid.uuid4().hex[:12]}"
    with pytest.raises(SandboxError, match=r"not found; run `agent sandbox build` or pass --image") as info:
        ensure_image(docker_client, tag, lambda line: None)
    assert tag in str(info.value)


def test_unreachable_engine_is_a_one_line_sandbox_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    with pytest.raises(SandboxError) as info:
        engine_module.docker_client()
    message = str(info.value)
    assert "\n" not in message and len(message) < 200, message
    assert message.startswith("cannot reach the Docker engine (unix:///nonexistent"), message
    assert "is dockerd running? see README" in message


def test_image_can_build_common_native_drivers(
    docker_client: docker.DockerClient, sandbox_image: str, scope: dict[str, str], cleanup: None
) -> None:
    """What psycopg2, mysqlclient and bcrypt's C parts compile against (a source build of
    psycopg2 stopped at a missing Python.h, mysqlclient at `pkg-config --exists mysqlclient`)."""
    script = (
        'test -e "$(python3 -c "import sysconfig; print(sysconfig.get_path(\'include\'))")/Python.h" '
        "|| echo missing:Python.h; "
        "for lib in libpq mysqlclient libffi openssl; do pkg-config --exists $lib || echo missing:$lib; done; "
        "command -v pg_config >/dev/null || echo missing:pg_config; "
        "command -v gcc >/dev/null || echo missing:gcc"
    )
    output = docker_client.containers.run(
        sandbox_image, ["bash", "-c", script], remove=True, network_disabled=True, labels=scope
    ).decode()
    assert output == "", output
