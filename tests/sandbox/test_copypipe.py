"""The full copy through a named pipe (copypipe.py), against the real engine: no mocks."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import time
from pathlib import Path

import docker
import pytest

from patchwright.errors import SandboxError
from patchwright.repocopy import (
    SPOOL_CAP,
    SPOOL_ROOT,
    PendingScan,
    begin_scan,
    remove_stale_spools,
    spool_folder,
    writes_ahead,
)
from patchwright.sandbox import copypipe
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.copypipe import IN_CONTAINER, CopyPipe, engine_is_local
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.engine import ContainerExec
from patchwright.sandbox.env import GID, UID
from patchwright.sandbox.transfer import list_host
from patchwright.workspace import open_workspace

from helpers import git


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


# --------------------------------------------------------------------------- the copy written ahead


def spooling_scan(repo: Path, cap: int = SPOOL_CAP) -> tuple[PendingScan, Path]:
    """A listing of `repo` that writes the copy ahead, and the spool's folder."""
    scan = begin_scan(open_workspace(repo))
    place = spool_folder()
    assert place is not None, "no room in /dev/shm or no prlimit: the spool is never used here"
    assert place[0].parent == Path(SPOOL_ROOT) and place[0].stat().st_mode & 0o777 == 0o700
    scan.spool_into(place[0], UID, GID, min(cap, place[1]))
    return scan, place[0]


def test_a_copy_written_ahead_is_read_from_its_file_which_is_then_emptied_and_removed(
    local_engine: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    (small_repo / "secret.env").write_text("API_TOKEN=do-not-copy\n")  # ignored: must not travel
    scan, folder = spooling_scan(small_repo)
    said: list[str] = []
    box = DockerSandbox(local_engine, spec, open_workspace(small_repo), progress=said.append, scan=scan)
    box.start()
    try:
        assert not folder.exists()  # removed from the host once the copy was in
        # the mount was the spool's file, not a pipe; emptied, so it holds no second copy
        assert box.run(f"test -f {IN_CONTAINER} && stat -c %s {IN_CONTAINER}").output.strip() == "0"
        assert not [line for line in said if "instead" in line], said
        assert workspace_listing(box) == [".gitignore", "README.md", "app.py", "tests/test_app.py"]
        assert box.run("git status --porcelain").output == ""  # .git and the index came too
        assert box.run("git config core.bare").output.strip() == "false"  # and the config, appended
    finally:
        box.stop()
    assert not folder.exists()


def test_a_repo_past_the_spools_cap_is_copied_the_usual_way(
    local_engine: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    (small_repo / "big.bin").write_bytes(os.urandom(64 << 10))
    git(small_repo, "add", "big.bin")
    git(small_repo, "commit", "-qm", "big")
    scan, folder = spooling_scan(small_repo, cap=16 << 10)  # the tar is stopped at 16 KiB
    said: list[str] = []
    box = DockerSandbox(local_engine, spec, open_workspace(small_repo), progress=said.append, scan=scan)
    box.start()
    try:
        # a pipe when the stopped tar was seen before the container was made, else the engine's copy
        piped = box.run(f"test -p {IN_CONTAINER} && echo pipe").output.strip() == "pipe"
        assert piped or any("from its spool" in line and "instead" in line for line in said), said
        assert "big.bin" in workspace_listing(box)
        assert box.run("sha256sum big.bin").output.split()[0] == sha256((small_repo / "big.bin").read_bytes())
    finally:
        box.stop()
    assert not folder.exists()


def test_a_spool_no_copy_took_is_removed_with_the_sandbox(
    local_engine: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    scan, folder = spooling_scan(small_repo)
    missing = dataclasses.replace(spec, image="patchwright-no-such-image:0")
    box = DockerSandbox(local_engine, missing, open_workspace(small_repo), scan=scan)
    with pytest.raises(SandboxError, match="not found"):
        box.start()
    assert not folder.exists()


@pytest.mark.parametrize(
    ("snapshots", "env", "expected"),
    [
        (None, {"CI": "true"}, True),  # CI builds no snapshot: its first run is every run
        (None, {}, False),  # a developer's machine: the next run starts from the snapshot
        (False, {}, True),
        (True, {"CI": "true"}, False),
        (None, {"CI": "true", "DOCKER_HOST": "tcp://10.0.0.9:2376"}, False),  # a remote engine
        (None, {"CI": "true", "DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, True),
    ],
)
def test_a_copy_is_written_ahead_only_for_runs_without_a_snapshot_on_a_local_engine(
    snapshots: bool | None, env: dict[str, str], expected: bool
) -> None:
    assert writes_ahead(snapshots, env) is expected


def test_prune_removes_spools_a_killed_run_left_and_no_other(tmp_path: Path) -> None:
    old, fresh, other = (tmp_path / n for n in ("patchwright-copy-old", "patchwright-copy-new", "keep-me"))
    for folder in (old, fresh, other):
        folder.mkdir()
        (folder / "copy.tar").write_bytes(b"x" * 1024)
    hour_ago = time.time() - 2 * 3600
    for folder in (old, other):
        os.utime(folder, (hour_ago, hour_ago))
    assert remove_stale_spools(str(tmp_path)) == [str(old)]
    assert not old.exists() and fresh.exists() and other.exists()
