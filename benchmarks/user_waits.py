"""What a user waits for, timed the way a stopwatch at the API would: `agent fix` launched as a
process against the fake Messages API, every figure taken on the API's side.

  turns   A mixed run on a small repo (bash, editor view, str_replace, search_code, in turn):
          each tool turn is the time from the end of one reply to the arrival of the next
          request. Baseline, measured between the runs: `docker exec CONTAINER true`.
          Targets: median tool turn <= 0.1x, and the editor's view alone <= 0.25x.
  start   A fresh clone of the 20,000-file repo (benchmarks/bigrepo.py): launch to the first
          tool result's arrival (the second request), on the clone's first run (as an ephemeral
          CI runner has it) and on its second (from the snapshot the first left). References,
          measured in the same rounds: a bare `docker run --rm IMAGE true`, and
          `python -c "import anthropic; anthropic.Anthropic()"` with the same interpreter (the
          SDK's import, a floor no agent built on it goes below). "Ours on top of the SDK" is
          (start - SDK reference) / docker run, medians. Target: <= 1x, first and second run.
  finish  From the end of the model's final reply to the process's exit (no test command), on
          the CI run, on the first run of a fresh clone on a developer's machine (no CI=true:
          the run builds the repo's snapshot) and on the run from the snapshot. Target: <= 1.5 s.

With --before SRC (a checkout's src/ folder, e.g. of main), every round runs that code and this
one alternately, each on clones of its own, and prints both.

Each src/ folder is byte-compiled first, as `pip install .` (the README's install) leaves the
package; the SDK the reference imports is compiled the same way. Run from a bare source tree
where PYTHONDONTWRITEBYTECODE is set (as on our CI machines), every launch would compile our
modules again: 0.14 s of CPU that no installed agent spends.

    python benchmarks/user_waits.py [--rounds N] [--only turns|start|finish] [--before SRC]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _bench
import bigrepo
import docker
import docker.errors

from patchwright.sandbox.base import default_manifest_dir
from patchwright.sandbox.snapshot import SnapshotLock, lock_path, snapshot_tag
from patchwright.workspace import open_workspace

from agentrun import AGENT, agent_env
from fakeapi import FakeAnthropic, RecordedRequest, message, text, tool_use
from helpers import make_repo

EDITOR = "str_replace_based_edit_tool"


@dataclass(frozen=True)
class Variant:
    """One version of the code: its name in the tables and the src/ folder it runs from."""

    name: str
    src: Path


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
    variant: Variant, repo: Path, script: list[object], image: str, ci: bool = True
) -> tuple[float, float, list[RecordedRequest]]:
    """Launch `agent fix` of `variant` (as a CI job would, or on a developer's machine); its
    launch time, exit time and the API's requests."""
    with FakeAnthropic(script) as api:
        env = agent_env(api, image, CI="true" if ci else "", PYTHONPATH=str(variant.src))
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


def docker_run_true(image: str) -> float:
    started = time.monotonic()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "true"], check=True, capture_output=True
    )
    return time.monotonic() - started


def bench_turns(
    client: docker.DockerClient, image: str, rounds: int, work: Path, variants: list[Variant]
) -> None:
    files = {"app.py": "N = 0\n\ndef handler(request):\n    return request\n"}
    files.update({f"pkg/module_{i}.py": f"def handler_{i}(x):\n    return x + {i}\n" for i in range(50)})
    turns: dict[str, dict[str, list[float]]] = {v.name: {} for v in variants}
    exec_times: list[float] = []
    with _bench.idle_container(client, image) as container:
        for r in range(rounds):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                exec_times += _bench.docker_exec_true(container, 10)
                repo = make_repo(work / f"turns-{variant.name}-{r}", files)
                _, _, requests = run_fix(variant, repo, mixed_script(6), image)
                for before, after in itertools.pairwise(requests):
                    turns[variant.name].setdefault(tool_of(after), []).append(
                        after.received - before.answered
                    )
            exec_times += _bench.docker_exec_true(container, 10)
    print(f"turns ({rounds} rounds; {_bench.load()} at the end)")
    base = _bench.median(exec_times)
    for variant in variants:
        mine = turns[variant.name]
        every = [t for ts in mine.values() for t in ts]
        times = {"docker exec true": exec_times, f"{variant.name}: tool turn (all)": every, **mine}
        headers = ["", "n", "median s", "p90 s", "min s", "x exec"]
        print(_bench.table(headers, _bench.stats_rows(times, "docker exec true")))
        print(
            _bench.result_line(
                f"{variant.name}: median tool turn vs docker exec", _bench.median(every) / base, 0.1
            )
        )
        view = _bench.median(mine["editor view"]) / base
        print(_bench.result_line(f"{variant.name}: editor view vs docker exec", view, 0.25))


def fresh_clone(work: Path, name: str) -> Path:
    source = bigrepo.generate(log=lambda line: print(f"  [bigrepo] {line}", file=sys.stderr))
    clone = work / name
    subprocess.run(["git", "clone", "-q", "--no-local", str(source), str(clone)], check=True)
    return clone


def await_snapshot_job(clone: Path, timeout: float = 600) -> float:
    """Wait for a detached process still saving the clone's snapshot (snapshotjob.py); seconds waited."""
    lock = SnapshotLock(lock_path(default_manifest_dir(), open_workspace(clone)))
    started = time.monotonic()
    while lock.holder() is not None and time.monotonic() - started < timeout:
        time.sleep(0.2)
    return time.monotonic() - started


@dataclass
class StartTimes:
    first: list[float]
    second: list[float]
    finish_ci: list[float]
    finish_fresh: list[float]
    finish_snapshot: list[float]
    job_wait: list[float]


def one_round(
    client: docker.DockerClient, image: str, variant: Variant, clone: Path, times: StartTimes
) -> None:
    """On a fresh clone: a CI job's run (the first run, no snapshot), then on a developer's
    machine the first run (which builds the snapshot) and the second (from it)."""
    script = [message(tool_use("bash", {"command": "true"})), message(text("done"))]
    launched, exited, requests = run_fix(variant, clone, script, image, ci=True)
    times.first.append(requests[1].received - launched)
    times.finish_ci.append(exited - requests[-1].answered)
    launched, exited, requests = run_fix(variant, clone, script, image, ci=False)
    times.finish_fresh.append(exited - requests[-1].answered)
    times.job_wait.append(await_snapshot_job(clone))  # the second run is to start from the snapshot
    launched, exited, requests = run_fix(variant, clone, script, image, ci=False)
    times.second.append(requests[1].received - launched)
    times.finish_snapshot.append(exited - requests[-1].answered)
    with contextlib.suppress(docker.errors.ImageNotFound):  # the clone's snapshot
        client.images.remove(snapshot_tag(open_workspace(clone)), force=True)


def bench_start_and_finish(
    client: docker.DockerClient, image: str, rounds: int, work: Path, variants: list[Variant]
) -> None:
    runs: list[float] = []
    sdk: list[float] = []
    times = {v.name: StartTimes([], [], [], [], [], []) for v in variants}
    for r in range(rounds):
        for variant in variants if r % 2 == 0 else variants[::-1]:
            clone = fresh_clone(work, f"clone-{variant.name}-{r}")
            runs.append(docker_run_true(image))
            sdk.append(_bench.sdk_reference())
            one_round(client, image, variant, clone, times[variant.name])
            runs.append(docker_run_true(image))
            sdk.append(_bench.sdk_reference())
            shutil.rmtree(clone)
        print(f"  round {r + 1} done, {_bench.load()}", file=sys.stderr)
    print(f"start and finish ({rounds} rounds; {_bench.load()} at the end)")
    base, floor = _bench.median(runs), _bench.median(sdk)
    rows: dict[str, list[float]] = {
        "docker run --rm true": runs,
        "SDK import + client (python -c)": sdk,
    }
    for variant in variants:
        mine = times[variant.name]
        rows[f"{variant.name}: first run (CI), first tool result"] = mine.first
        rows[f"{variant.name}: second run (from snapshot)"] = mine.second
    print(
        _bench.table(
            ["", "n", "median s", "p90 s", "min s", "x docker run"],
            _bench.stats_rows(rows, "docker run --rm true"),
        )
    )
    for variant in variants:
        mine = times[variant.name]
        for name, ts in (("first run", mine.first), ("second run", mine.second)):
            above = _bench.median(ts) - floor
            print(
                _bench.result_line(
                    f"{variant.name}: {name}, ours on top of the SDK ({above:.2f} s) vs docker run",
                    above / base,
                    1,
                )
            )
    finish_rows = []
    for variant in variants:
        mine = times[variant.name]
        for name, ts in (
            ("final reply to exit, CI run", mine.finish_ci),
            ("... first run on a fresh clone, no CI (snapshot under way)", mine.finish_fresh),
            ("... run from the snapshot", mine.finish_snapshot),
            ("(not a user's wait) snapshot job still running after that exit", mine.job_wait),
        ):
            finish_rows.append(
                (f"{variant.name}: {name}", len(ts), _bench.median(ts), _bench.p90(ts), min(ts), max(ts))
            )
    print(_bench.table(["", "n", "median s", "p90 s", "min s", "max s"], finish_rows))
    for variant in variants:
        mine = times[variant.name]
        for name, ts in (
            ("CI run", mine.finish_ci),
            ("first run on a fresh clone", mine.finish_fresh),
            ("run from a snapshot", mine.finish_snapshot),
        ):
            verdict = "PASS" if max(ts) <= 1.5 else "MISS"
            print(
                f"RESULT {variant.name}: final reply to exit, {name}: median {_bench.median(ts):.2f} s, "
                f"max {max(ts):.2f} s target<=1.5 s {verdict}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["turns", "start", "finish"])
    parser.add_argument("--before", type=Path, help="src/ folder of the code to compare with")
    args = parser.parse_args()
    variants = [Variant("after" if args.before else "this", _bench.REPO_ROOT / "src")]
    if args.before:
        variants.insert(0, Variant("before", args.before.resolve()))
    for variant in variants:
        compileall.compile_dir(variant.src, quiet=1)  # as pip does at install (see above)
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    work = Path(tempfile.mkdtemp(prefix="pw-user-waits-"))
    print(f"{_bench.load()} at the start; python {sys.version.split()[0]}")
    try:
        if args.only in (None, "turns"):
            bench_turns(client, image, args.rounds, work, variants)
        if args.only in (None, "start", "finish"):
            bench_start_and_finish(client, image, args.rounds, work, variants)
    finally:
        _bench.cleanup(client)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
