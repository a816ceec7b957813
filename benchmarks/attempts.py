"""Wall time and cost of `agent fix --attempts 3` against 3 separate `agent fix` runs, one after another.

Each is real `agent` processes against the fake Messages API (every model turn delayed by
--model-seconds, as a real model's reply takes time), on a small repo whose bug no test shows:
the scripted model adds a failing test and fixes the code, so every attempt is `fixed` and
--attempts also pays for cross-validation (each attempt's code against the other attempts'
tests, a sandbox each). Compared side by side in one run, rounds interleaved:

  sequential      3 x `agent fix` (what a user does by hand, then picks a patch)
  attempts        `agent fix --attempts 3` (--parallel: what this machine holds, see default_parallel)
  attempts-par3   `agent fix --attempts 3 --parallel 3`
  until-fixed     `agent fix --attempts 3 --until-fixed` (stops after the first fixed attempt)
  ray             `agent batch --ray ADDRESS --attempts 3` with the same task as its one instance,
                  on a local Ray cluster bound to 127.0.0.1 (one node; the attempts run on the
                  node the instance runs on, as `--parallel` allows there)

    python benchmarks/attempts.py [--rounds N] [--model-seconds S] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench
import docker

from test_attempts import AGENT, TEST_CMD, Lanes, calc_repo, fixes_with_a_test

from fakeapi import Delay, FakeAnthropic, RecordedRequest, delay
from raycluster import LOOPBACK_ENV, RayCluster

MODES = {
    "sequential": [],
    "attempts": ["--attempts", "3"],
    "attempts-par3": ["--attempts", "3", "--parallel", "3"],
    "until-fixed": ["--attempts", "3", "--until-fixed"],
    "ray": ["--attempts", "3", "--max-continues", "0"],  # through `agent batch --ray`
}


def slow(lanes: Lanes, seconds: float) -> Any:
    def script(request: RecordedRequest, index: int) -> Delay:
        return delay(seconds, lanes(request, index))

    return script


def env_for(api: FakeAnthropic, image: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
    env.update(api.env(api_key="sk-ant-api03-bench-0000"))
    env.update({"PATCHWRIGHT_IMAGE": image, "CI": "true", "PATCHWRIGHT_MAX_RETRIES": "1"})
    return env


def fix(repo: Path, extra: list[str], env: dict[str, str]) -> dict[str, Any]:
    args = [*AGENT, "fix", "add is wrong", "--repo", str(repo), "--test-cmd", TEST_CMD]
    result = subprocess.run(
        [*args, "--max-continues", "0", "--format", "json", "--quiet", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"agent fix failed ({result.returncode}): {result.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def on_ray(repo: Path, address: str, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """The task as a one-instance batch on the Ray cluster; the instance's summary."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    instance = {
        "instance_id": "calc",
        "problem_statement": "add is wrong",
        "repo": str(repo),
        "base_commit": head.stdout.strip(),
        "test_cmd": TEST_CMD,
    }
    instances = workdir / "instances.jsonl"
    instances.write_text(json.dumps(instance) + "\n")
    out = workdir / "ray-out"
    result = subprocess.run(
        [*AGENT, "batch", str(instances), "--out", str(out), "--ray", address, *MODES["ray"], "--quiet"],
        env={**env, **LOOPBACK_ENV},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"agent batch failed ({result.returncode}): {result.stderr[-2000:]}")
    (summary_file,) = out.glob("runs/*/summary.json")
    summary: dict[str, Any] = json.loads(summary_file.read_text())
    return summary


def one(
    mode: str, image: str, workdir: Path, model_seconds: float, ray: str | None = None
) -> tuple[float, float, int]:
    """(wall seconds, cost USD, attempts that ran) of one mode on a fresh repo."""
    repo = calc_repo(Path(tempfile.mkdtemp(dir=workdir)))
    lanes = Lanes(*(fixes_with_a_test() for _ in range(3)))
    with FakeAnthropic(slow(lanes, model_seconds)) as api:
        env = env_for(api, image)
        begin = time.monotonic()
        if mode == "ray":
            assert ray is not None
            summary = on_ray(repo, ray, env, Path(tempfile.mkdtemp(dir=workdir)))
            wall = time.monotonic() - begin
        elif mode == "sequential":
            summaries = [fix(repo, [], env) for _ in range(3)]
            wall = time.monotonic() - begin
            return wall, sum(s["cost_usd"] or 0.0 for s in summaries), 3
        else:
            summary = fix(repo, MODES[mode], env)
            wall = time.monotonic() - begin
    assert summary["verification"]["verdict"] == "fixed", summary
    return wall, summary["cost_usd"] or 0.0, len(summary["attempts"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model-seconds", type=float, default=2.0)
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray mode")
    args = parser.parse_args()
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    modes = [m for m in MODES if not (args.no_ray and m == "ray")]
    walls: dict[str, list[float]] = {m: [] for m in modes}
    costs: dict[str, list[float]] = {m: [] for m in modes}
    ran: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = RayCluster(Path(tmp) / "ray")
        (Path(tmp) / "ray").mkdir()
        try:
            if "ray" in modes:
                cluster.start_head({"patchwright_sandbox": 1})
                cluster.wait_for("patchwright_sandbox", 1)
            for round_number in range(args.rounds):
                order = modes if round_number % 2 == 0 else list(reversed(modes))
                for mode in order:
                    wall, cost, count = one(mode, image, Path(tmp), args.model_seconds, cluster.address)
                    walls[mode].append(wall)
                    costs[mode].append(cost)
                    ran[mode] = count
                    print(f"  round {round_number + 1} {mode}: {wall:.1f} s, ${cost:.4f}", flush=True)
        finally:
            cluster.stop()
    base_wall = _bench.median(walls["sequential"])
    base_cost = _bench.median(costs["sequential"])
    rows = [
        (
            mode,
            ran[mode],
            _bench.median(walls[mode]),
            _bench.median(walls[mode]) / base_wall,
            _bench.median(costs[mode]),
            _bench.median(costs[mode]) / base_cost,
        )
        for mode in modes
    ]
    print(f"cpus: {os.cpu_count()}, model turn: {args.model_seconds} s, rounds: {args.rounds}")
    print(_bench.table(["mode", "attempts run", "wall s", "wall ratio", "cost USD", "cost ratio"], rows))
    ratio = _bench.median(walls["attempts-par3"]) / base_wall
    print(_bench.result_line("attempts", ratio, 1.0))


if __name__ == "__main__":
    main()
