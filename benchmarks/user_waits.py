"""What a user waits for, timed the way a stopwatch at the API would: `agent fix` launched as a
process against the fake Messages API, every figure taken on the API's side.

  turns   A mixed run on a small repo (bash, editor view, str_replace, search_code, in turn):
          each tool turn is the time from the end of one reply to the arrival of the next
          request. Baseline, measured between the runs: `docker exec CONTAINER true`.
          Targets: median tool turn <= 0.25x, and the editor's view alone <= 0.25x.
  start   A fresh clone of the 20,000-file repo (benchmarks/bigrepo.py), as an ephemeral CI
          runner has it: launch to the first tool result's arrival (the second request), on the
          clone's first run and on its second. Baseline: `docker run --rm IMAGE true`.
          Targets: first run <= 3x, second run <= 2x.
  finish  On that clone, from the end of the model's final reply to the process's exit
          (no test command). Target: <= 1.5 s.

    python benchmarks/user_waits.py [--rounds N] [--only turns|start|finish]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _bench
import bigrepo
import docker
import docker.errors

from patchwright.sandbox.snapshot import snapshot_tag
from patchwright.workspace import open_workspace

from agentrun import AGENT, agent_env
from fakeapi import FakeAnthropic, RecordedRequest, message, text, tool_use
from helpers import make_repo

EDITOR = "str_replace_based_edit_tool"


def mixed_script(rounds: int) -> list[object]:
    """bash, view, str_replace, search_code, `rounds` times; then the final word."""
    script: list[object] = []
    for n in range(rounds):
        script += [
            message(tool_use("bash", {"command": "ls"})),
            message(tool_use(EDITOR, {"command": "view", "path": "app.py"})),
            message(
                tool_use(
                    EDITOR,
                    {
                        "command": "str_replace",
                        "path": "app.py",
                        "old_str": f"N = {n}",
                        "new_str": f"N = {n + 1}",
                    },
                )
            ),
            message(tool_use("search_code", {"pattern": "def handler"})),
        ]
    return [*script, message(text("done"))]


def tool_of(request: RecordedRequest) -> str:
    """The tool whose result this request carries (the last tool_result's call)."""
    messages = request.body.get("messages", [])
    calls = {
        block["id"]: block
        for turn in messages
        if turn["role"] == "assistant"
        for block in turn["content"]
        if block.get("type") == "tool_use"
    }
    last = messages[-1]["content"] if messages else []
    ids = [b["tool_use_id"] for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
    call = calls.get(ids[-1]) if ids else None
    if call is None:
        return "?"
    return f"editor {call['input']['command']}" if call["name"] == EDITOR else str(call["name"])


def run_fix(
    repo: Path, script: list[object], image: str, ci: bool = True
) -> tuple[float, float, list[RecordedRequest]]:
    """Launch `agent fix` (as a CI job would, or on a developer's machine); its launch time, exit
    time and the API's requests."""
    with FakeAnthropic(script) as api:
        env = agent_env(api, image, CI="true" if ci else "")
        launched = time.monotonic()
        done = subprocess.run(
            [*AGENT, "fix", "benchmark", "--repo", str(repo), "--quiet", "--max-steps", "500"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        exited = time.monotonic()
        requests = api.requests
    if done.returncode not in (0, 1):
        raise SystemExit(f"agent fix failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return launched, exited, requests


def docker_exec_true(container: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.monotonic()
        subprocess.run(["docker", "exec", container, "true"], check=True, capture_output=True)
        times.append(time.monotonic() - started)
    return times


def docker_run_true(image: str) -> float:
    started = time.monotonic()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "true"], check=True, capture_output=True
    )
    return time.monotonic() - started


@contextlib.contextmanager
def idle_container(client: docker.DockerClient, image: str) -> Iterator[str]:
    container = client.containers.run(
        image, ["sleep", "infinity"], detach=True, labels=_bench.labels(), network_mode="none"
    )
    try:
        yield str(container.id)
    finally:
        container.remove(force=True)


def bench_turns(client: docker.DockerClient, image: str, rounds: int, work: Path) -> None:
    files = {"app.py": "N = 0\n\ndef handler(request):\n    return request\n"}
    files.update({f"pkg/module_{i}.py": f"def handler_{i}(x):\n    return x + {i}\n" for i in range(50)})
    turns: dict[str, list[float]] = {}
    exec_times: list[float] = []
    with idle_container(client, image) as container:
        for r in range(rounds):
            exec_times += docker_exec_true(container, 10)
            repo = make_repo(work / f"turns-{r}", files)
            _, _, requests = run_fix(repo, mixed_script(6), image)
            for before, after in itertools.pairwise(requests):
                turns.setdefault(tool_of(after), []).append(after.received - before.answered)
            exec_times += docker_exec_true(container, 10)
    every = [t for ts in turns.values() for t in ts]
    times = {"docker exec true": exec_times, "tool turn (all)": every, **turns}
    print(
        _bench.table(
            ["", "n", "median s", "p90 s", "min s", "x exec"], _bench.stats_rows(times, "docker exec true")
        )
    )
    base = _bench.median(exec_times)
    print(_bench.result_line("median tool turn vs docker exec", _bench.median(every) / base, 0.25))
    print(_bench.result_line("editor view vs docker exec", _bench.median(turns["editor view"]) / base, 0.25))


def fresh_clone(work: Path, name: str) -> Path:
    source = bigrepo.generate(log=lambda line: print(f"  [bigrepo] {line}", file=sys.stderr))
    clone = work / name
    subprocess.run(["git", "clone", "-q", "--no-local", str(source), str(clone)], check=True)
    return clone


def bench_start_and_finish(client: docker.DockerClient, image: str, rounds: int, work: Path) -> None:
    """Per round, on a fresh clone: a CI job's run (no snapshot: the first run), then on a
    developer's machine a run that leaves a snapshot and the second run, which starts from it."""
    first: list[float] = []
    second: list[float] = []
    finish_ci: list[float] = []
    finish_snapshot: list[float] = []
    runs: list[float] = []
    script = [message(tool_use("bash", {"command": "true"})), message(text("done"))]
    for r in range(rounds):
        clone = fresh_clone(work, f"clone-{r}")
        runs.append(docker_run_true(image))
        launched, exited, requests = run_fix(clone, script, image, ci=True)
        first.append(requests[1].received - launched)
        finish_ci.append(exited - requests[-1].answered)
        runs.append(docker_run_true(image))
        run_fix(clone, script, image, ci=False)  # builds the snapshot, and waits for it at its end
        launched, exited, requests = run_fix(clone, script, image, ci=False)
        second.append(requests[1].received - launched)
        finish_snapshot.append(exited - requests[-1].answered)
        runs.append(docker_run_true(image))
        with contextlib.suppress(docker.errors.ImageNotFound):  # the clone's snapshot
            client.images.remove(snapshot_tag(open_workspace(clone)), force=True)
        shutil.rmtree(clone)
    times = {
        "docker run --rm true": runs,
        "first run (CI): first tool result": first,
        "second run (from snapshot)": second,
    }
    headers = ["", "n", "median s", "p90 s", "min s", "x docker run"]
    print(_bench.table(headers, _bench.stats_rows(times, "docker run --rm true")))
    base = _bench.median(runs)
    print(
        _bench.result_line(
            "first run, launch to first tool result vs docker run", _bench.median(first) / base, 3
        )
    )
    print(_bench.result_line("second run vs docker run", _bench.median(second) / base, 2))
    rows = [
        (name, len(ts), _bench.median(ts), _bench.p90(ts), min(ts))
        for name, ts in (
            ("final reply to exit (CI run)", finish_ci),
            ("... (run from a snapshot)", finish_snapshot),
        )
    ]
    print(_bench.table(["", "n", "median s", "p90 s", "min s"], rows))
    for name, ts in (("CI run", finish_ci), ("run from a snapshot", finish_snapshot)):
        verdict = "PASS" if _bench.median(ts) <= 1.5 else "MISS"
        print(f"RESULT final reply to exit, {name}: {_bench.median(ts):.2f} s target<=1.5 s {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["turns", "start", "finish"])
    args = parser.parse_args()
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    work = Path(tempfile.mkdtemp(prefix="pw-user-waits-"))
    try:
        if args.only in (None, "turns"):
            bench_turns(client, image, args.rounds, work)
        if args.only in (None, "start", "finish"):
            bench_start_and_finish(client, image, args.rounds, work)
    finally:
        _bench.cleanup(client)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
