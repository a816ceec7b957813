"""Batch throughput: 8 scripted instances with 1 vs 2 local workers (instances per minute), and the
driver's overhead per instance on a 2-node Ray cluster (127.0.0.1) vs local workers.

Each batch is `agent batch` run as a process against the fake Messages API, on the
example repos (tests/fakes/batch_scenario.py), with verification as configured by the repos.
Overhead per instance: the time from the driver starting an instance to its result
arriving (read from `--format stream-json` as it happens) minus the instance's own
time measured where it ran.

    python benchmarks/batch_throughput.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _bench
import docker

import batch_scenario
from agentrun import AGENT, agent_env
from fakeapi import FakeAnthropic
from raycluster import LOOPBACK_ENV, RayCluster

INSTANCES = 8


@dataclass
class BatchRun:
    label: str
    wall_s: float
    overheads: list[float]
    exit_code: int

    @property
    def per_minute(self) -> float:
        return INSTANCES / self.wall_s * 60


def run(label: str, args: list[str], env: dict[str, str]) -> BatchRun:
    started_at: dict[str, float] = {}
    overheads = []
    begin = time.monotonic()
    proc = subprocess.Popen(
        [*AGENT, "batch", *args, "--format", "stream-json", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        now = time.monotonic()
        if event["event"] == "instance_start":
            started_at[event["instance_id"]] = now
        elif event["event"] == "instance_end":
            overheads.append(now - started_at[event["instance_id"]] - event["duration_s"])
    proc.wait()
    return BatchRun(label, time.monotonic() - begin, overheads, proc.returncode)


def main() -> None:
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    root = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    scenario = batch_scenario.build(root / "repos", count=INSTANCES, prefix="bench")
    instances = str(scenario.write(root / "instances.jsonl"))
    cluster = RayCluster(root / "ray")
    (root / "ray").mkdir()
    try:
        cluster.start_head({"patchwright_sandbox": 1})
        cluster.add_node({"patchwright_sandbox": 1})
        cluster.wait_for("patchwright_sandbox", 2)
        with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api:
            env = {**agent_env(api, image), **LOOPBACK_ENV}
            runs = [
                run("local, 1 worker", [instances, "--out", str(root / "w1"), "--workers", "1"], env),
                run("local, 2 workers", [instances, "--out", str(root / "w2"), "--workers", "2"], env),
                run(
                    "ray, 2 nodes x 1 slot",
                    [instances, "--out", str(root / "ray-out"), "--ray", cluster.address],
                    env,
                ),
            ]
    finally:
        cluster.stop()
        _bench.cleanup(client)
    print(f"\n{INSTANCES} scripted instances per batch (exit codes: {[r.exit_code for r in runs]})")
    print(f"{'batch':24} {'wall s':>8} {'inst/min':>9} {'driver overhead/instance (median, s)':>38}")
    for r in runs:
        print(f"{r.label:24} {r.wall_s:8.1f} {r.per_minute:9.2f} {statistics.median(r.overheads):38.3f}")
    one, two, ray = runs
    print(f"\nthroughput 2 workers vs 1: {two.per_minute / one.per_minute:.2f}x")
    local_overhead, ray_overhead = statistics.median(two.overheads), statistics.median(ray.overheads)
    print(
        f"driver overhead per instance, ray vs local (2 workers): {ray_overhead:.3f} s vs {local_overhead:.3f} s "
        f"({ray_overhead / max(local_overhead, 1e-3):.1f}x)"
    )
    identical = (root / "w2" / "predictions.jsonl").read_text() == (
        root / "ray-out" / "predictions.jsonl"
    ).read_text()
    print(f"predictions identical local vs ray: {identical}")
    if any(r.exit_code for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
