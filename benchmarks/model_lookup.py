"""Time to the first model request with the capability cache warm, cold, and expired.

`agent fix` (a subprocess, the real SDK against tests/fakes/fakeapi.py, real Docker) in a small repo,
timed from the process's start to the moment the fake receives the first Messages request.
Interleaved rounds (shuffled order each round):
  warm     the model's capabilities cached and fresh: no Models API request at all
  cold     the cache folder emptied: the lookup runs on its thread while the input is checked
           and the engine looked up, and the run waits for it before anything starts
  expired  the entry older than the TTL: asked again, the same path as cold
Also counted: Models API requests per run (warm must be 0).
Target: median(warm) / median(cold) <= 1 (the warm path does no lookup work on the way).

    python benchmarks/model_lookup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import median, result_line, sandbox_image, stats_rows, table

from fakeapi import FakeAnthropic, message, text
from helpers import make_repo

MODEL = "claude-sonnet-5-5"


def run_once(api: FakeAnthropic, repo: Path, env: dict[str, str]) -> tuple[float, int]:
    seen_models = len(api.model_requests)
    seen = len(api.requests)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "patchwright", "fix", "look", "--repo", str(repo), "--model", MODEL],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 1:
        raise SystemExit(f"agent fix exited {result.returncode}: {result.stderr}")
    first = api.requests[seen].received
    return first - started, len(api.model_requests) - seen_models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    import docker

    image = sandbox_image(docker.from_env())
    work = Path(tempfile.mkdtemp(prefix="pw-model-lookup-"))
    try:
        repo = make_repo(work / "repo", {"notes.txt": "nothing to test\n"})
        cache = work / "cache"
        with FakeAnthropic(lambda _r, _i: message(text("Nothing to change."))) as api:
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_", "XDG_"))
            }
            env.update(api.env())
            env.update({"PATCHWRIGHT_IMAGE": image, "CI": "true", "XDG_CACHE_HOME": str(cache)})
            env["XDG_CONFIG_HOME"] = str(work / "config")
            run_once(api, repo, env)  # warm-up: image lookup, page cache
            times: dict[str, list[float]] = {"warm": [], "cold": [], "expired": []}
            lookups: dict[str, list[int]] = {name: [] for name in times}
            entry = cache / "patchwright" / "models" / f"{MODEL}.json"
            for _ in range(rounds):
                order = list(times)
                random.shuffle(order)
                for name in order:
                    if name == "cold":
                        shutil.rmtree(cache, ignore_errors=True)
                    elif name == "expired":
                        data = json.loads(entry.read_text())
                        data["fetched_at"] = 0.0
                        entry.write_text(json.dumps(data))
                    elif not entry.exists():
                        run_once(api, repo, env)  # fill it (untimed)
                    seconds, asked = run_once(api, repo, env)
                    times[name].append(seconds)
                    lookups[name].append(asked)
            rows = stats_rows(times, "cold")
            print(table(["cache", "n", "median s", "p90 s", "min s", "ratio to cold"], rows))
            print("Models API requests per run:", {k: sorted(set(v)) for k, v in lookups.items()})
            print(
                result_line(
                    "warm vs cold, time to first request", median(times["warm"]) / median(times["cold"]), 1.0
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
