"""Sandbox startup on a large repo: DockerSandbox start to first command result vs a bare `docker run`.

The repo (see bigrepo.py) has 20,000 files, ~120 MB of working tree plus its packed .git,
with uncommitted edits, untracked and ignored files; it is generated once under
benchmarks/.cache/.

First, the repo's first run: a full copy, then the snapshot commit (sandbox/snapshot.py)
that a real run does in the background while the model thinks; timed apart.

Part 1, interleaved rounds (shuffled order each round), 20 files edited and one added
before each round, so every start from the snapshot has something to sync:
  sandbox, from snapshot  open_workspace + DockerSandbox(...).start() + sandbox.run("true")
                          (stop not timed), the default for a repo's later runs
  sandbox, no snapshot    the same with snapshots off: the full copy of a first run
  docker run              subprocess `docker run --rm IMAGE true`
  Target: median(sandbox, from snapshot) / median(docker run) <= 3.

Part 2, one instrumented round from the snapshot: where DockerSandbox.start spends its
  time (_list_host within _create; _record_base at the first command),
  plus the host side of a full copy alone (git ls-files; GNU tar producing the stream
  into nothing).

Part 3, copy options side by side (interleaved rounds), each timed from nothing to
"the repo's files are in /workspace of a running, hardened container, owned by uid 1000":
  a  stream    the GNU tar generator streamed to the engine's archive API (put_archive)
  b  memory    the same GNU tar read fully into memory, then put_archive(bytes)
  c  pytar     a tar built by Python's tarfile, streamed as a generator to put_archive
  d1 cp-a      `cp -a` of the repo to a host temp dir, sanitized .git/config, chown -R 1000,
               bind mount (copies ignored files too: listed to show the cost of that shortcut)
  d2 hostlist  the same file list as (a) extracted by GNU tar into a host temp dir (owner 1000),
               sanitized .git/config, bind mount
  e  exec-tar  the current code: the GNU tar stream piped into `tar -x` run as uid 1000 inside
               the container
               (a `docker exec` with stdin; the engine's archive API is not used)
  Never a bind mount of the original repo: the model's commands must not reach it.

Deletions: sandboxes are stopped (and host copies removed) only after all timed rounds,
at the end; tables print after that. On a filesystem without a journal (this machine's ext4), creating files right
after ~20,000 deletions is several times slower (the allocator skips recently deleted
inodes), so stopping between rounds would make each round slow down the next.

Host copies (d1, d2) go under benchmarks/.cache/hostcopies/, not /tmp: on this machine
other processes' tests create and delete files in /tmp all the time, which (same cause)
made extraction there ~6x slower than elsewhere on the same disk.

    python benchmarks/startup.py [--rounds 5] [--option-rounds 3] [--no-options]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import _bench
import bigrepo
import docker

from patchwright.repocopy import git_config_tar, list_files, sanitize_git_config, tar_stream
from patchwright.sandbox.base import WORKSPACE, SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.env import GID, UID
from patchwright.sandbox.snapshot import snapshot_tag
from patchwright.workspace import Workspace, open_workspace

TARGET = 3.0
DRIFT_FILES = 20
CHUNK = 1 << 20


# --------------------------------------------------------------------------- helpers


def new_spec(image: str, tag: str, snapshots: bool = True) -> SandboxSpec:
    return SandboxSpec(
        image=image, run_id=f"bench-{tag}-{secrets.token_hex(3)}", labels=_bench.labels(), snapshots=snapshots
    )


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- part 1 and 2


def sandbox_to_first_result(
    client: docker.DockerClient,
    image: str,
    root: Path,
    later: list[tuple[str, Callable[[], None]]],
    snapshots: bool = True,
) -> float:
    """Seconds from nothing to the first command's result; the stop goes on `later`."""
    started = time.perf_counter()
    box = DockerSandbox(client, new_spec(image, "start", snapshots), open_workspace(root))
    later.append(("sandbox", box.stop))
    box.start()
    result = box.run("true")
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result
    return elapsed


def build_snapshot(client: docker.DockerClient, image: str, root: Path) -> list[tuple[str, float]]:
    """A first run on the repo: the full copy, then the commit (in the background in real runs)."""
    ws = open_workspace(root)
    with contextlib.suppress(docker.errors.ImageNotFound):  # from an earlier run: start from nothing
        client.images.remove(snapshot_tag(ws), force=True)
    box = DockerSandbox(client, new_spec(image, "first"), ws)
    try:
        start = timed(box.start)
        assert box._build is not None, "the first run did not start a snapshot"
        commit = timed(box._await_snapshot)  # what the model's first request hides
        assert box.snapshot_error is None, box.snapshot_error
    finally:
        box.stop()
    return [
        ("first run: start (full copy)", start),
        ("first run: snapshot commit, in the background", commit),
    ]


def drift(root: Path, round_no: int) -> None:
    """Work done on the repo since its snapshot: DRIFT_FILES files edited, one file added."""
    files = sorted(p for p in (root / "src").rglob("*.py"))[:DRIFT_FILES] if (root / "src").is_dir() else []
    if not files:
        files = sorted(p for p in root.rglob("*.py") if ".git" not in p.parts)[:DRIFT_FILES]
    for path in files:
        with path.open("a") as fh:
            fh.write(f"# edited in round {round_no}\n")
    (root / f"scratch-{round_no % 3}.txt").write_text(f"round {round_no}\n")


def docker_run(image: str) -> float:
    labels = [f"--label={k}={v}" for k, v in _bench.labels().items()]
    return timed(lambda: subprocess.run(["docker", "run", "--rm", *labels, image, "true"], check=True))


def _timing(
    original: Callable[..., object], name: str, steps: list[tuple[str, float]]
) -> Callable[..., object]:
    def wrapper(*args: object, **kwargs: object) -> object:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            steps.append((name, time.perf_counter() - began))

    return wrapper


def instrumented_round(
    client: docker.DockerClient, image: str, root: Path, later: list[tuple[str, Callable[[], None]]]
) -> list[tuple[str, float]]:
    ws = open_workspace(root)
    steps: list[tuple[str, float]] = []
    box = DockerSandbox(client, new_spec(image, "breakdown"), ws)
    later.append(("sandbox", box.stop))
    # _list_host runs within _create; _record_base at the first command.
    for name in ("_list_host", "_create", "_open_shell", "_copy_repository", "_record_base"):
        original = getattr(box, name)

        setattr(box, name, _timing(original, name, steps))  # on this instance only
    total = timed(lambda: (box.start(), box.run("true")))
    notes = {"_list_host": "  _list_host (within _create)"}
    steps = [(notes.get(name, name), t) for name, t in steps]
    steps.append(("total to first result", total))
    # The host side of the copy, alone: listing and producing the tar stream into nothing.
    files: list[str] = []
    steps.append(("  host: list_files", timed(lambda: files.extend(list_files(ws)))))
    size = [0]

    def drain() -> None:
        for chunk in tar_stream(ws, files, UID, GID):
            size[0] += len(chunk)

    seconds = timed(drain)
    steps.append((f"  host: GNU tar stream alone ({size[0] / 1e6:.0f} MB)", seconds))
    return steps


# --------------------------------------------------------------------------- part 3: copy options


class _Sink:
    """A write-only file for tarfile's stream mode; chunks are taken out as they fill."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def _members(ws: Workspace, files: list[str]) -> list[str]:
    """Exactly the member list workspace.tar_stream gives GNU tar: parent dirs, files, .git."""
    from patchwright.repocopy import _git_dir_members

    parents = {str(p) for name in files for p in Path(name).parents if str(p) != "."}
    members = sorted(parents) + list(files)
    if ws.git_dir_is_local:
        members += _git_dir_members(ws)
    return members


def python_tar_stream(ws: Workspace, files: list[str], uid: int, gid: int) -> Iterator[bytes]:
    sink = _Sink()
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
        for name in _members(ws, files):
            path = os.path.join(ws.root, name)
            try:
                info = tar.gettarinfo(path, arcname=name)
            except OSError:
                continue  # like --ignore-failed-read
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            if info.isreg():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
            if sink.size >= CHUNK:
                yield sink.take()
    yield sink.take()  # the end-of-archive blocks written on close


def create_bind_container(client: docker.DockerClient, spec: SandboxSpec, host_dir: str):  # type: ignore[no-untyped-def]
    """DockerSandbox._create's container, hardening unchanged, with a bind mount for /workspace."""
    client.images.get(spec.image)
    unused = Workspace(root=Path(host_dir), git_dir=Path(host_dir) / ".git", git_dir_is_local=True)
    options = DockerSandbox(client, spec, unused).container_options()
    options["labels"] = {**options["labels"], **spec.labels}
    del options["mounts"]
    options["volumes"] = {host_dir: {"bind": WORKSPACE, "mode": "rw"}}
    container = client.containers.create(spec.image, **options)
    container.start()
    return container


def host_copy_dir() -> str:
    """A fresh host folder for a bind-mounted copy (see "host copies" in the module docstring)."""
    parent = _bench.CACHE_DIR / "hostcopies"
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="copy-", dir=parent)


def write_sanitized_config(ws: Workspace, dest: Path) -> None:
    config = ws.root / ".git" / "config"
    if ws.git_dir_is_local and config.is_file():
        target = dest / ".git" / "config"
        target.write_text(sanitize_git_config(config.read_text(errors="surrogateescape")))
        os.chown(target, UID, GID)


class Option:
    """One way to get the repo into /workspace; `setup` is timed, `teardown` is timed separately."""

    def __init__(self, client: docker.DockerClient, image: str, root: Path) -> None:
        self.client, self.image, self.root = client, image, root
        self.box: DockerSandbox | None = None
        self.container = None
        self.host_dir: str | None = None

    def _sandbox(self, tag: str) -> DockerSandbox:
        self.box = DockerSandbox(self.client, new_spec(self.image, tag), open_workspace(self.root))
        self.box._create()
        assert self.box.container is not None
        self.container = self.box.container
        return self.box

    def stream(self) -> None:  # (a) the engine's archive API, streamed
        box = self._sandbox("a")
        ws = box.workspace
        box.container.put_archive(WORKSPACE, tar_stream(ws, list_files(ws), UID, GID))  # type: ignore[union-attr]
        config = git_config_tar(ws, UID, GID)
        if config is not None:
            box.container.put_archive(WORKSPACE, config)  # type: ignore[union-attr]

    def memory(self) -> None:  # (b)
        box = self._sandbox("b")
        ws = box.workspace
        data = b"".join(tar_stream(ws, list_files(ws), UID, GID))
        box.container.put_archive(WORKSPACE, data)  # type: ignore[union-attr]
        config = git_config_tar(ws, UID, GID)
        if config is not None:
            box.container.put_archive(WORKSPACE, config)  # type: ignore[union-attr]

    def pytar(self) -> None:  # (c)
        box = self._sandbox("c")
        ws = box.workspace
        box.container.put_archive(WORKSPACE, python_tar_stream(ws, list_files(ws), UID, GID))  # type: ignore[union-attr]
        config = git_config_tar(ws, UID, GID)
        if config is not None:
            box.container.put_archive(WORKSPACE, config)  # type: ignore[union-attr]

    def cp_a(self) -> None:  # (d1)
        ws = open_workspace(self.root)
        self.host_dir = host_copy_dir()
        subprocess.run(["cp", "-a", f"{ws.root}/.", self.host_dir], check=True)
        subprocess.run(["chown", "-R", f"{UID}:{GID}", self.host_dir], check=True)
        write_sanitized_config(ws, Path(self.host_dir))
        self.container = create_bind_container(self.client, new_spec(self.image, "d1"), self.host_dir)

    def hostlist(self) -> None:  # (d2)
        ws = open_workspace(self.root)
        self.host_dir = host_copy_dir()
        os.chown(self.host_dir, UID, GID)
        with subprocess.Popen(
            ["tar", "-x", "-f", "-", "-C", self.host_dir, "--same-owner", "--numeric-owner"],
            stdin=subprocess.PIPE,
        ) as proc:
            assert proc.stdin is not None
            with proc.stdin:
                for chunk in tar_stream(ws, list_files(ws), UID, GID):
                    proc.stdin.write(chunk)
        if proc.returncode != 0:
            raise RuntimeError("host tar -x failed")
        write_sanitized_config(ws, Path(self.host_dir))
        self.container = create_bind_container(self.client, new_spec(self.image, "d2"), self.host_dir)

    def exec_tar(self) -> None:  # (e) the current code: _create + _copy_repository
        self._sandbox("e")._copy_repository()

    def check(self) -> tuple[int, float, int, str]:
        """Files, MB, entries not owned by uid 1000, whether the ignored .env got in (untimed)."""
        assert self.container is not None
        script = (
            "cd /workspace; echo $(find . -type f | wc -l) "
            "$(find . -type f -printf '%s\\n' | awk '{s+=$1} END {print s+0}') "
            "$(find . ! -user 1000 | wc -l) $(test -e .env && echo yes || echo no)"
        )
        _, out = self.container.exec_run(["sh", "-c", script], user=f"{UID}:{GID}")
        files, size, foreign, env = out.decode().split()
        return int(files), int(size) / 1e6, int(foreign), env

    def teardown(self) -> None:
        if self.box is not None:
            self.box.stop()
        elif self.container is not None:
            with contextlib.suppress(docker.errors.APIError):
                self.container.remove(force=True, v=True)
        if self.host_dir is not None:
            shutil.rmtree(self.host_dir, ignore_errors=True)


OPTIONS = {
    "a stream": Option.stream,
    "b memory": Option.memory,
    "c pytar": Option.pytar,
    "d1 cp-a+bind": Option.cp_a,
    "d2 hostlist+bind": Option.hostlist,
    "e exec-tar (current)": Option.exec_tar,
}


Checks = dict[str, tuple[int, float, int, str]]


def copy_options(
    client: docker.DockerClient,
    image: str,
    root: Path,
    rounds: int,
    later: list[tuple[str, Callable[[], None]]],
) -> tuple[dict[str, list[float]], Checks]:
    times: dict[str, list[float]] = {name: [] for name in OPTIONS}
    checks: Checks = {}
    rng = random.Random(3)
    order = list(OPTIONS)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            option = Option(client, image, root)
            later.append((name, option.teardown))
            times[name].append(timed(lambda name=name, option=option: OPTIONS[name](option)))  # type: ignore[misc]
            if name not in checks:
                checks[name] = option.check()
    return times, checks


def print_options(times: dict[str, list[float]], checks: Checks, teardown: dict[str, list[float]]) -> None:
    rows = [
        (*stats, _bench.median(teardown[str(stats[0])]), *checks[str(stats[0])])
        for stats in _bench.stats_rows(times, "a stream")
    ]
    rounds = len(times["a stream"])
    print(
        f"\ncopy options, {rounds} interleaved rounds: seconds to files in /workspace of a running container"
    )
    headers = ["option", "n", "median s", "p90 s", "min s", "vs a", "teardown s", "files", "MB"]
    print(_bench.table([*headers, "not uid1000", ".env in"], rows))
    safe = [name for name in times if not name.startswith("d1")]  # d1 copies ignored files (.env)
    best = min(safe, key=lambda n: _bench.median(times[n]))
    print(f"fastest that copies only what git lists (no ignored files, host repo untouched): {best}")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--option-rounds", type=int, default=3)
    parser.add_argument("--no-options", action="store_true", help="skip part 3 (copy options)")
    args = parser.parse_args()

    began = time.monotonic()
    root = bigrepo.generate(lambda line: print(line, file=sys.stderr))
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    print(f"repo {root}: {bigrepo.describe(root)}; image {image}")
    later: list[tuple[str, Callable[[], None]]] = []  # teardowns, run after every timed round
    teardown: dict[str, list[float]] = {}
    try:
        first_run = build_snapshot(client, image, root)  # also the warm-up: page cache, image layers
        docker_run(image)
        warm, cold = "sandbox, from snapshot", "sandbox, no snapshot"
        times: dict[str, list[float]] = {warm: [], cold: [], "docker run": []}
        rng = random.Random(2)
        order = list(times)
        for round_no in range(args.rounds):
            rng.shuffle(order)
            drift(root, round_no)
            for name in order:
                if name == "docker run":
                    times[name].append(docker_run(image))
                else:
                    times[name].append(
                        sandbox_to_first_result(client, image, root, later, snapshots=name == warm)
                    )
        breakdown = instrumented_round(client, image, root, later)
        if not args.no_options:
            option_times, checks = copy_options(client, image, root, args.option_rounds, later)
    finally:
        for kind, fn in later:
            teardown.setdefault(kind, []).append(timed(fn))
        _bench.cleanup(client)

    print(f"\nstart to first command result, {args.rounds} interleaved rounds")
    rows = _bench.stats_rows(times, "docker run")
    print(_bench.table(["method", "n", "median s", "p90 s", "min s", "vs docker run"], rows))
    print(f"(sandbox stop, not timed above: median {_bench.median(teardown['sandbox']):.2f} s)")
    print(f"(before each round: {DRIFT_FILES} files edited and one added since the snapshot)")
    print("\nthe first run on the repo, which builds its snapshot")
    print(_bench.table(["step", "seconds"], first_run))
    print("\nwhere DockerSandbox.start spends its time from the snapshot (one instrumented round)")
    print(_bench.table(["step", "seconds"], breakdown))
    if not args.no_options:
        print_options(option_times, checks, teardown)
    print(f"\n(benchmark wall time {time.monotonic() - began:.0f} s)")
    base = _bench.median(times["docker run"])
    print(_bench.result_line("startup-no-snapshot", _bench.median(times[cold]) / base, TARGET))
    print(_bench.result_line("startup", _bench.median(times[warm]) / base, TARGET))
    return 0


if __name__ == "__main__":
    sys.exit(main())
