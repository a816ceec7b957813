"""A repo's snapshot finished by a detached process, so nobody waits for it after the work is done.

The first run on a large repo builds its snapshot beside the sandbox (snapshot.py). When the
run is over and the build is not, the run hands it off: it kills its builder, starts
`python -m patchwright.sandbox.snapshotjob` in a session of its own (a Ctrl-C in the
terminal does not reach it) with the job on stdin, and exits. The job waits for the repo's
snapshot lock (the run's build holds it until its thread, or the run, ends), removes what the
run's builder left, and builds the snapshot again from the host's files, unless one
is current by then. Stopped by a signal, it removes its builder container on the way out;
a commit is all or nothing in the engine, so there is never half an image. Killed outright
(SIGKILL), its builder carries the job's own pid as owner, so `agent sandbox prune`
removes it, and the next job removes the run's builder by its run id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

LOCK_WAIT = 3600.0  # seconds the job waits for another builder of the same repo
LOG_SUFFIX = ".log"  # beside the lock: the last job's one-line outcome


@dataclass(frozen=True)
class SnapshotJob:
    """What the detached process needs: plain data, sent as JSON on its stdin."""

    root: str
    git_dir: str
    git_dir_is_local: bool
    base_image: str  # the image id the snapshot is made from
    spec: dict[str, Any]  # the run's SandboxSpec, as fields
    image_labels: dict[str, str]  # the snapshot's own labels (base image, repo path)
    leftover_run_id: str  # the run id on the run's killed builder, removed before building
    lock_fd: int | None = None  # the run's lock, passed on open: the job holds it from its start
    replaces: str = ""  # the snapshot the run passed over (out of date, unsyncable): made again

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SnapshotJob:
        return cls(**json.loads(text))


def hand_off(job: SnapshotJob, lock_fd: int | None = None) -> int:
    """Start the detached process; its pid. It outlives this one and ignores this terminal's
    signals; no API credential is passed on (it needs only Docker). `lock_fd`: a descriptor
    holding the repo's snapshot lock, passed on (and closed here), so that no run starting
    between this process's exit and the job's start takes the lock and builds too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    job = dataclasses.replace(job, lock_fd=lock_fd)
    try:
        child = _spawn(job, env, () if lock_fd is None else (lock_fd,))
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    return child.pid


def _spawn(job: SnapshotJob, env: dict[str, str], pass_fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "patchwright.sandbox.snapshotjob"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        pass_fds=pass_fds,
        env=env,
        cwd="/",
    )
    assert child.stdin is not None
    with child.stdin:
        child.stdin.write(job.to_json().encode())
    return child


class Stopped(BaseException):
    """A signal asked the job to stop; a BaseException so the build's cleanup runs and nothing
    catches it on the way."""


def run(job: SnapshotJob) -> str:
    """Build the snapshot (under the repo's lock); a one-line outcome."""
    from patchwright.sandbox import labels, transfer
    from patchwright.sandbox.base import SandboxSpec, default_manifest_dir
    from patchwright.sandbox.engine import docker_client
    from patchwright.sandbox.snapshot import SnapshotLock, current_snapshot, lock_path
    from patchwright.workspace import Workspace

    ws = Workspace(Path(job.root), Path(job.git_dir), job.git_dir_is_local)
    spec = SandboxSpec(**job.spec)
    spec = dataclasses.replace(spec, run_id=f"{job.leftover_run_id}-job")
    lock = SnapshotLock(lock_path(spec.manifest_dir or default_manifest_dir(), ws))
    if job.lock_fd is not None:
        lock.adopt(job.lock_fd)
    elif not lock.acquire(wait=LOCK_WAIT):
        return "skipped: another process held the snapshot lock"
    try:
        client = docker_client()
        remove_leftovers(client, job.leftover_run_id)
        base = client.images.get(job.base_image)
        current = current_snapshot(client, ws, base)
        if current is not None and current.id != job.replaces:
            return "done: the snapshot was current already"
        view = transfer.list_host(ws, with_entries=False)
        found = {**job.image_labels, labels.FILE_COUNT: str(len(view.files))}
        build = transfer.build_snapshot(client, ws, base, view, spec, found, start=False)
        build.run()
        return f"failed: {build.error}" if build.error else "done: snapshot saved"
    finally:
        lock.release()


def remove_leftovers(client: Any, run_id: str) -> list[str]:
    """Remove our containers labelled with exactly this run id (the run's killed builder)."""
    from patchwright.sandbox import labels

    wanted = [f"{labels.MANAGED}={labels.MANAGED_VALUE}", f"{labels.RUN_ID}={run_id}"]
    removed = []
    for found in client.api.containers(all=True, filters={"label": wanted}):  # no inspect: no race
        with contextlib.suppress(Exception):
            client.api.remove_container(found["Id"], force=True)
            removed.append(str(found["Id"]))
    return removed


def main() -> int:
    def stop(signum: int, _: FrameType | None) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # one stop; the cleanup is not cut short
        raise Stopped(signal.Signals(signum).name)

    stops = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    for sig in stops:
        signal.signal(sig, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)  # the run held them while it handed off
    job = SnapshotJob.from_json(sys.stdin.read())
    try:
        outcome = run(job)
    except Stopped as err:
        outcome = f"stopped by {err}"
    except Exception as err:
        outcome = f"failed: {type(err).__name__}: {err}"
    _log(job, outcome)
    return 0 if outcome.startswith(("done", "skipped")) else 1


def _log(job: SnapshotJob, outcome: str) -> None:
    """The outcome beside the lock, for whoever wonders why there is no snapshot."""
    from patchwright.sandbox.base import default_manifest_dir
    from patchwright.sandbox.snapshot import lock_path
    from patchwright.workspace import Workspace

    ws = Workspace(Path(job.root), Path(job.git_dir), job.git_dir_is_local)
    path = lock_path(job.spec.get("manifest_dir") or default_manifest_dir(), ws) + LOG_SUFFIX
    with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as fh:
        fh.write(" ".join(outcome.split())[:500] + "\n")


if __name__ == "__main__":
    sys.exit(main())
