"""The full copy through a named pipe (copypipe.py), against the real engine: no mocks."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import docker
import pytest

from patchwright.errors import SandboxError
from patchwright.sandbox import copypipe
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.copypipe import IN_CONTAINER, CopyPipe, engine_is_local
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.engine import ContainerExec
from patchwright.sandbox.transfer import list_host
from patchwright.workspace import open_workspace

from helpers import git


def pipe_folders() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("patchwright-copy-")}


def workspace_listing(box: DockerSandbox) -> list[str]:
    found = box.run("find . -path ./.git -prune -o -type f -print | sort").output.split()
    return [name.removeprefix("./") for name in found]


@pytest.fixture
def local_engine(docker_client: docker.DockerClient) -> docker.DockerClient:
    if not engine_is_local(docker_client):
        pytest.skip("the engine does not run on this machine's kernel: the copy takes the exec's stdin")
    return docker_client


def test_engine_is_local_only_on_this_kernel_over_a_local_socket(local_engine: docker.DockerClient) -> None:
    assert engine_is_local(local_engine)
    remote = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41")  # nothing listens; never asked
    assert not engine_is_local(remote)


def test_the_copy_comes_through_the_pipe_which_then_leaves_the_host(
    local_engine: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    (small_repo / "secret.env").write_text("API_TOKEN=do-not-copy\n")  # ignored: must not travel
    before = pipe_folders()
    said: list[str] = []
    box = DockerSandbox(local_engine, spec, open_workspace(small_repo), progress=said.append)
    box.start()
    try:
        assert pipe_folders() == before  # removed from the host once the copy was in
        assert box.run(f"test -p {IN_CONTAINER} && echo pipe").output.strip() == "pipe"
        assert not [line for line in said if "instead" in line], said
        assert workspace_listing(box) == [".gitignore", "README.md", "app.py", "tests/test_app.py"]
        assert box.run("cat app.py").output == (small_repo / "app.py").read_text()
        assert box.run("git status --porcelain").output == ""  # .git and the index came too
        assert box.run("git config core.bare").output.strip() == "false"  # and the config, after tar's end
        # The sandbox user cannot write into it, and no one on the host reads it any more.
        wrote = box.run(f"timeout 2 sh -c 'echo x > {IN_CONTAINER}'", timeout=10)
        assert wrote.exit_code != 0, wrote.output
    finally:
        box.stop()
    assert pipe_folders() == before


def test_a_pipe_the_container_cannot_read_gives_way_to_the_engines_copy(
    local_engine: docker.DockerClient, spec: SandboxSpec, small_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = CopyPipe.create

    def unreadable() -> CopyPipe:
        pipe = made()
        os.chmod(pipe.path, 0)  # the sandbox user's tar is refused, as by an SELinux host
        return pipe

    monkeypatch.setattr(CopyPipe, "create", staticmethod(unreadable))
    (small_repo / "tests" / "deep" / "er").mkdir(parents=True)
    (small_repo / "tests" / "deep" / "er" / "data.txt").write_text("nested\n")
    git(small_repo, "add", "-A")
    git(small_repo, "commit", "-qm", "nested")
    said: list[str] = []
    box = DockerSandbox(local_engine, spec, open_workspace(small_repo), progress=said.append)
    box.start()
    try:
        fallback = [line for line in said if "copying through the engine instead" in line]
        assert len(fallback) == 1 and "through the pipe" in fallback[0], said
        assert workspace_listing(box) == [
            ".gitignore",
            "README.md",
            "app.py",
            "tests/deep/er/data.txt",
            "tests/test_app.py",
        ]
        assert box.run("git status --porcelain").output == ""
    finally:
        box.stop()


def test_a_reader_that_never_comes_does_not_hold_the_copy(
    local_engine: docker.DockerClient, sandbox_image: str, small_repo: Path
) -> None:
    """The container has no pipe mounted: its tar fails at once, and so does the copy, at once."""
    container = local_engine.containers.run(
        sandbox_image, ["sleep", "infinity"], detach=True, network_mode="none", auto_remove=True
    )
    pipe = CopyPipe.create()
    try:
        ws = open_workspace(small_repo)
        started = time.monotonic()
        with pytest.raises(SandboxError, match="through the pipe"):
            pipe.extract(
                ContainerExec(local_engine, str(container.id), "/tmp"),
                ws,
                list_host(ws, False).members,
                [],
                60,
            )
        assert time.monotonic() - started < copypipe.OPEN_WAIT / 3
    finally:
        pipe.close()
        container.remove(force=True)
    assert not pipe.folder.exists()
