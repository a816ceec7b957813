"""A snapshot not finished when the run is: handed to a detached process, which finishes it or,
stopped, leaves no container and no image behind (real engine); the lock between builders."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from patchwright.sandbox import labels
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.snapshot import (
    SnapshotBuild,
    SnapshotLock,
    current_snapshot,
    lock_path,
    snapshot_tag,
)
from patchwright.sandbox.snapshotjob import LOG_SUFFIX
from patchwright.sandbox.snapshotjob import run as run_job
from patchwright.workspace import open_workspace

from helpers import SESSION_ID, TEST_LABEL, make_repo, remove_image

FILES = 3000  # enough that the builder's copy and commit take a second or more


# -- the lock ----------------------------------------------------------------------------------


def test_lock_is_held_by_one_process_and_freed_when_it_dies(tmp_path: Path) -> None:
    path = str(tmp_path / "locks" / "repo.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from patchwright.sandbox.snapshot import SnapshotLock;"
            "assert SnapshotLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
            path,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = SnapshotLock(path)
        assert mine.holder() == holder.pid
        assert mine.acquire(wait=0.3) is False
        holder.kill()  # no chance to release it: the kernel does
        holder.wait()
        assert mine.acquire(wait=5) is True
        assert mine.holder() is None or mine.holder() == os.getpid()
        assert SnapshotLock(path).acquire() is False  # another open file, same process: still one holder
        mine.release()
        assert SnapshotLock(path).holder() is None
    finally:
        holder.kill()
        holder.wait()


# -- on the real engine ------------------------------------------------------------------------


@pytest.fixture
def big_repo(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    files = {f"pkg{i % 30}/mod_{i}.py": f"VALUE_{i} = {'x' * 2000!r}\n" for i in range(FILES)}
    repo = make_repo(tmp_path / "repo", files)
    # Written well before the snapshot: a file changed within a second of the copy is "racy" and
    # sent again by design, which made the next start's empty sync depend on the machine's speed.
    past = time.time() - 60
    for path in repo.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
    yield repo
    try:
        image = docker_client.images.get(snapshot_tag(open_workspace(repo)))
    except docker.errors.ImageNotFound:
        return
    if image.labels.get(labels.REPO_PATH) == str(repo.resolve()):
        remove_image(docker_client, str(image.id))


@pytest.fixture
def job_spec(spec: SandboxSpec, tmp_path: Path) -> SandboxSpec:
    return dataclasses.replace(spec, snapshot_min_files=1, manifest_dir=str(tmp_path / "manifests"))


def ours(client: docker.DockerClient, run_id: str) -> list[str]:
    """Names of our containers whose run id begins with this run's (its sandbox, builders, job)."""
    found = client.api.containers(all=True, filters={"label": f"{labels.MANAGED}={labels.MANAGED_VALUE}"})
    return [
        str(c["Names"][0]) for c in found if (c["Labels"] or {}).get(labels.RUN_ID, "").startswith(run_id)
    ]


def wait_exit(pid: int, timeout: float) -> None:
    """Reap the detached job (it is our child, in a session of its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the snapshot job {pid} still ran after {timeout} s")


def outcome(spec: SandboxSpec, repo: Path) -> str:
    assert spec.manifest_dir is not None
    return Path(lock_path(spec.manifest_dir, open_workspace(repo)) + LOG_SUFFIX).read_text().strip()


def handed_off(client: docker.DockerClient, spec: SandboxSpec, repo: Path) -> int:
    """Start a sandbox (which begins the snapshot) and stop it at once: the build is handed off."""
    box = DockerSandbox(client, spec, open_workspace(repo))
    box.handoff_after = 0.0
    box.start()
    started = time.monotonic()
    box.stop()
    assert time.monotonic() - started < 1.5, "stop() waited for the snapshot"
    assert box.snapshot_job is not None, "the build was over before stop(): nothing was handed off"
    assert spec.manifest_dir is not None
    lock = SnapshotLock(lock_path(spec.manifest_dir, open_workspace(repo)))
    assert lock.holder() is not None, "the lock was free between the run and the job"
    return box.snapshot_job


@pytest.mark.docker
def test_a_build_is_waited_for_at_the_end_only_once_it_is_saving(
    docker_client: docker.DockerClient, job_spec: SandboxSpec, big_repo: Path
) -> None:
    """A run ends while its snapshot's copy is still going in (a fresh clone's first run): no
    wait, the commit is all still to come. Once the copy is in, the build may be that close to
    its end."""
    copying, listing = threading.Event(), threading.Event()

    def make_builder() -> docker.models.containers.Container:
        builder = docker_client.containers.create(
            job_spec.image, ["sleep", "infinity"], labels={TEST_LABEL: SESSION_ID}, network_mode="none"
        )
        builder.start()
        return builder

    def list_files(_: object) -> tuple[bytes, int | None]:
        listing.wait(60)
        return b"", 1

    ws = open_workspace(big_repo)
    repo_label = {labels.REPO_PATH: str(big_repo.resolve())}  # big_repo's teardown removes the image
    build = SnapshotBuild(
        docker_client, ws, repo_label, make_builder, lambda _: copying.wait(60), list_files, None
    )
    build.start()
    try:
        started = time.monotonic()
        build.wait_if_saving(30)
        assert time.monotonic() - started < 1 and build.running, "a build still copying was waited for"
        copying.set()
        deadline = time.monotonic() + 30
        while not build.saving:
            assert time.monotonic() < deadline, "the build never got past its copy"
            time.sleep(0.01)
        started = time.monotonic()
        build.wait_if_saving(0.5)  # listing: waited for, up to the limit
        assert time.monotonic() - started >= 0.5 and build.running
    finally:
        copying.set()
        listing.set()
    build.wait_if_saving(120)
    assert not build.running and build.error is None
    assert docker_client.images.get(snapshot_tag(ws)).labels[labels.REPO_PATH] == str(big_repo.resolve())


@pytest.mark.docker
def test_an_unfinished_snapshot_is_finished_by_a_detached_process(
    docker_client: docker.DockerClient, job_spec: SandboxSpec, big_repo: Path
) -> None:
    pid = handed_off(docker_client, job_spec, big_repo)
    wait_exit(pid, 300)
    assert outcome(job_spec, big_repo) == "done: snapshot saved"
    assert ours(docker_client, job_spec.run_id) == []
    ws = open_workspace(big_repo)
    base = docker_client.images.get(job_spec.image)
    snapshot = current_snapshot(docker_client, ws, base)
    assert snapshot is not None and snapshot.labels[labels.FILE_COUNT] == str(FILES)
    box = DockerSandbox(docker_client, dataclasses.replace(job_spec, run_id=f"{job_spec.run_id}-2"), ws)
    try:
        box.start()
        assert box._snapshot is not None  # the next start comes from it
        assert box.sync_plan is not None and box.sync_plan.send == []
        count = box.run("find . -path ./.git -prune -o -type f -print | wc -l").output.strip()
        assert count == str(FILES)
    finally:
        box.stop()


@pytest.mark.docker
def test_the_job_keeps_a_current_snapshot_but_remakes_the_one_its_run_passed_over(
    docker_client: docker.DockerClient, job_spec: SandboxSpec, big_repo: Path
) -> None:
    """A run that found the snapshot out of date copied the repo whole; the job it hands the new
    snapshot to must not take that same snapshot for current and stop there."""
    box = DockerSandbox(docker_client, job_spec, open_workspace(big_repo))
    try:
        box.start()
        box._await_snapshot()
        job = box._job
    finally:
        box.stop()
    assert job is not None
    old = docker_client.images.get(snapshot_tag(open_workspace(big_repo)))
    assert run_job(job) == "done: the snapshot was current already"  # made by another run: kept
    assert run_job(dataclasses.replace(job, replaces=str(old.id))) == "done: snapshot saved"
    new = docker_client.images.get(snapshot_tag(open_workspace(big_repo)))
    assert new.id != old.id
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(str(old.id))  # superseded and removed
    assert ours(docker_client, job_spec.run_id) == []


@pytest.mark.docker
def test_a_detached_snapshot_stopped_midway_leaves_no_container_and_no_image(
    docker_client: docker.DockerClient, job_spec: SandboxSpec, big_repo: Path
) -> None:
    pid = handed_off(docker_client, job_spec, big_repo)
    deadline = time.monotonic() + 60
    while not [n for n in ours(docker_client, job_spec.run_id) if "-job" in n]:  # its builder is up
        assert time.monotonic() < deadline, "the job never started its builder"
        time.sleep(0.05)
    os.kill(pid, signal.SIGTERM)
    wait_exit(pid, 60)
    assert outcome(job_spec, big_repo) == "stopped by SIGTERM"
    assert ours(docker_client, job_spec.run_id) == []
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(snapshot_tag(open_workspace(big_repo)))


@pytest.mark.docker
def test_a_run_that_exits_mid_snapshot_leaves_nothing_behind(
    docker_client: docker.DockerClient, job_spec: SandboxSpec, big_repo: Path
) -> None:
    """As `agent fix` ends: stop() hands off, then the process exits without its teardown
    (cli.exit_now), cutting its own build's cleanup short; the job removes what it left."""
    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from patchwright.sandbox.base import SandboxSpec\n"
        "from patchwright.sandbox.docker import DockerSandbox\n"
        "from patchwright.sandbox.engine import docker_client\n"
        "from patchwright.workspace import open_workspace\n"
        "box = DockerSandbox(docker_client(), SandboxSpec(**json.loads(sys.argv[1])), open_workspace(Path(sys.argv[2])))\n"
        "box.handoff_after = 0.0\n"
        "box.start()\n"
        "box.stop()\n"
        "print(box.snapshot_job, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(dataclasses.asdict(job_spec)), str(big_repo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().isdigit(), "nothing was handed off"
    deadline = time.monotonic() + 300  # not our child: its parent is gone; it logs when it ends
    log = Path(lock_path(str(job_spec.manifest_dir), open_workspace(big_repo)) + LOG_SUFFIX)
    while not log.exists():
        assert time.monotonic() < deadline, "the snapshot job did not finish"
        time.sleep(0.2)
    assert outcome(job_spec, big_repo) == "done: snapshot saved"
    assert ours(docker_client, job_spec.run_id) == []
    base = docker_client.images.get(job_spec.image)
    assert current_snapshot(docker_client, open_workspace(big_repo), base) is not None
