"""Soak: many `agent fix` runs with random API faults and kills; count leaked containers and lost patches.

Each run edits a file first, then meets one fault at random: a normal finish, 500s
beyond retries, a stream cut, a rejected key, SIGINT, SIGTERM, or SIGKILL (after
which `agent sandbox prune` must clean up). A patch counts as lost when a run that
made its edit and was not SIGKILLed ends without that edit in patch.diff.

    python benchmarks/soak.py --runs 50 [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "fakes"))

import docker  # noqa: E402

from patchwright.sandbox import labels  # noqa: E402
from patchwright.sandbox.image import ensure_image  # noqa: E402

from fakeapi import FakeAnthropic, RecordedRequest, cut_stream, error, message, text, tool_use  # noqa: E402
from helpers import make_repo  # noqa: E402

FAULTS = ("finish", "api_500", "stream_cut", "key_401", "sigint", "sigterm", "sigkill")
EDIT = tool_use(
    "str_replace_based_edit_tool",
    {"command": "str_replace", "path": "/workspace/app.py", "old_str": "a - b", "new_str": "a + b"},
)


def script_for(fault: str) -> Any:
    def script(request: RecordedRequest, index: int) -> Any:
        if index == 0:
            return message(EDIT)
        if fault == "finish":
            return message(text("done"))
        if fault == "api_500":
            return error(500, "api_error", "soak", {"retry-after-ms": "1"})
        if fault == "stream_cut":
            return cut_stream(after_events=3, reply=message(text("never complete")))
        if fault == "key_401":
            return error(401, "authentication_error", "soak")
        return message(tool_use("bash", {"command": "sleep 60"}))  # the signal arrives during this

    return script


def containers_of(client: docker.DockerClient, run_id: str, wait: float = 0.0) -> list[str]:
    """The run's containers still there after up to `wait` s: the engine removes a stopped
    sandbox itself (AutoRemove), a moment after the run's exit."""
    deadline = time.monotonic() + wait
    while True:
        found = client.containers.list(all=True, filters={"label": f"{labels.RUN_ID}={run_id}"})
        if not found or time.monotonic() >= deadline:
            return [c.name for c in found]
        time.sleep(0.1)


def one_run(index: int, fault: str, image: str, workdir: Path, rng: random.Random) -> dict[str, Any]:
    repo = make_repo(workdir / f"repo{index}", {"app.py": "def add(a, b):\n    return a - b\n"})
    with FakeAnthropic(script_for(fault)) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
        env.update(api.env(api_key="sk-ant-soak-0000000000"))
        env.update({"PATCHWRIGHT_IMAGE": image, "PATCHWRIGHT_MAX_RETRIES": "1", "CI": "true"})
        proc = subprocess.Popen(
            [sys.executable, "-m", "patchwright", "fix", "soak", "--repo", str(repo), "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if fault.startswith("sig"):
            deadline = time.monotonic() + 60
            while len(api.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 1.5))
            proc.send_signal(
                {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[fault]
            )
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        edited = len(api.requests) >= 2
    runs = list((repo / ".patchwright" / "runs").glob("*"))
    run_id = runs[0].name if runs else ""
    patch = (runs[0] / "patch.diff") if runs else None
    has_edit = bool(patch and patch.exists() and "+    return a + b" in patch.read_text())
    summary = (
        json.loads((runs[0] / "summary.json").read_text())
        if runs and (runs[0] / "summary.json").exists()
        else {}
    )
    return {
        "fault": fault,
        "exit": proc.returncode,
        "run_id": run_id,
        "edited": edited,
        "patch_ok": has_edit,
        "status": summary.get("status"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    client = docker.from_env()
    image = os.environ.get("PATCHWRIGHT_TEST_IMAGE") or ensure_image(
        client, None, lambda s: print(s, file=sys.stderr)
    )
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="patchwright-soak-") as tmp:
        for i in range(args.runs):
            fault = FAULTS[i % len(FAULTS)] if i < len(FAULTS) else rng.choice(FAULTS)
            result = one_run(i, fault, image, Path(tmp), rng)
            wait = 0.0 if fault == "sigkill" else 30.0  # a SIGKILLed run's container still runs: prune's
            result["leaked"] = containers_of(client, result["run_id"], wait) if result["run_id"] else []
            results.append(result)
            print(
                f"{i + 1:3} {fault:10} exit={result['exit']!s:4} status={result['status']!s:12} "
                f"patch={'ok' if result['patch_ok'] else '-':2} leaked={len(result['leaked'])}",
                flush=True,
            )
        killed = [r for r in results if r["fault"] == "sigkill"]
        left_by_kill = sum(1 for r in killed if r["leaked"])
        prune = subprocess.run(
            [sys.executable, "-m", "patchwright", "sandbox", "prune"], capture_output=True, text=True
        )
        after_prune = sum(len(containers_of(client, r["run_id"])) for r in killed if r["run_id"])

    leaked = sum(len(r["leaked"]) for r in results if r["fault"] != "sigkill")
    lost = sum(1 for r in results if r["fault"] != "sigkill" and r["edited"] and not r["patch_ok"])
    expected_exit = {"finish": 0, "api_500": 4, "stream_cut": 4, "key_401": 4, "sigint": 130, "sigterm": 130}
    wrong_exit = [
        r for r in results if r["fault"] in expected_exit and r["exit"] != expected_exit[r["fault"]]
    ]
    print()
    print(
        f"runs: {len(results)} in {time.monotonic() - started:.0f}s; faults: "
        + ", ".join(f"{f}={sum(r['fault'] == f for r in results)}" for f in FAULTS)
    )
    print(
        f"SIGKILLed runs that left a container before prune: {left_by_kill}/{len(killed)}; "
        f"after `agent sandbox prune`: {after_prune} ({prune.stdout.strip()})"
    )
    print(f"wrong exit codes: {len(wrong_exit)} {[(r['fault'], r['exit']) for r in wrong_exit][:5]}")
    print(
        f"RESULT soak: containers_leaked={leaked + after_prune} patches_lost={lost} target=0,0 "
        f"{'PASS' if leaked + after_prune == 0 and lost == 0 and not wrong_exit else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
