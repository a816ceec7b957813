"""What a database costs the user at start-up: `agent fix` launched as a process against the
fake Messages API (tests/fakes/fakeapi.py), timed from the API's side, with and without services.

Configurations, interleaved in shuffled order each round (this machine is noisy):
  none       agent fix --no-services
  postgres   agent fix --service postgres
  mysql      agent fix --service mysql      (MariaDB)
  redis      agent fix --service redis
For each: seconds from launching the process to the model's first request (the sandbox and
its services are up and ready), and to the model's first command's result (the second
request); and the services' own time from being created to answering their readiness probe
(summary.json `ready_s`). Target: postgres adds at most 3 s to the first command.

The images are built first if missing (not timed). The repo is tiny, so the numbers are the
fixed cost of a run.

    python benchmarks/services_startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _bench
import docker

from patchwright.services.image import ensure_services_image

from fakeapi import FakeAnthropic, RecordedRequest, message, text, tool_use
from helpers import make_repo

CONFIGS = {
    "none": ["--no-services"],
    "postgres": ["--service", "postgres"],
    "mysql": ["--service", "mysql"],
    "redis": ["--service", "redis"],
}


@dataclass(frozen=True)
class Timing:
    request: float  # launch -> the model's first request
    command: float  # launch -> the first command's result (the second request)
    after_imports: float  # the first progress line (Python imports done) -> the first command's result
    ready: float | None  # the service: created -> answering its probe (summary.json ready_s)


def one_run(repo: Path, image: str, flags: list[str]) -> Timing:
    seen: list[float] = []
    steps = [message(tool_use("bash", {"command": "true"})), message(text("done"))]

    def script(_request: RecordedRequest, index: int) -> Any:
        seen.append(time.monotonic())
        return steps[index]

    with FakeAnthropic(script) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
        env.update(api.env(api_key="sk-ant-api03-bench-0000"), PATCHWRIGHT_IMAGE=image, CI="true")
        started = time.monotonic()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "patchwright",
                "fix",
                "nothing",
                "--repo",
                str(repo),
                "--format",
                "json",
                *flags,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None and process.stdout is not None
        first_line = None
        tail: list[str] = []
        for line in process.stderr:  # progress lines, flushed as they happen
            first_line = first_line or time.monotonic()
            tail = [*tail[-20:], line]
        output = process.stdout.read()
        code = process.wait(timeout=300)
    if code not in (0, 1) or len(seen) < 2 or first_line is None:
        raise SystemExit(f"agent fix failed ({code}): {''.join(tail)[-800:]}")
    services = json.loads(output).get("services") or []
    ready = services[0]["ready_s"] if services else None
    return Timing(seen[0] - started, seen[1] - started, seen[1] - first_line, ready)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    ensure_services_image(client, lambda line: print(f"  [image] {line}", file=sys.stderr))
    results: dict[str, list[Timing]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="pw-bench-services-") as tmp:
        repo = make_repo(Path(tmp) / "repo", {"app.py": "x = 1\n"})
        one_run(repo, image, CONFIGS["none"])  # warm-up: page cache, python imports
        for round_no in range(args.rounds):
            order = list(CONFIGS)
            random.shuffle(order)
            for name in order:
                results[name].append(one_run(repo, image, CONFIGS[name]))
            print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    def med(name: str, field: str) -> float:
        return _bench.median([getattr(t, field) for t in results[name]])

    print(f"\nmedians of {args.rounds} interleaved rounds, seconds")
    print(
        "  launch->: from launching `agent fix`; imports->: from its first progress line (Python imports done)"
    )
    header = (
        f"{'config':10} {'launch->1st request':>20} {'launch->1st command':>20} {'imports->1st command':>21}"
    )
    print(header + f" {'added':>7} {'service ready':>14}")
    for name in CONFIGS:
        readies = [t.ready for t in results[name] if t.ready is not None]
        ready = f"{_bench.median(readies):.2f}" if readies else "-"
        added = med(name, "after_imports") - med("none", "after_imports")
        print(
            f"{name:10} {med(name, 'request'):20.2f} {med(name, 'command'):20.2f} "
            f"{med(name, 'after_imports'):21.2f} {added:+7.2f} {ready:>14}"
        )
    added = med("postgres", "after_imports") - med("none", "after_imports")
    wall = med("postgres", "command") - med("none", "command")
    verdict = "met" if added <= 3.0 else "MISSED"
    print(
        f"\ntarget: postgres adds at most 3 s to the first command: {added:+.2f} s after imports ({verdict}); "
        f"{wall:+.2f} s launch to first command (includes import-time noise)"
    )


if __name__ == "__main__":
    main()
