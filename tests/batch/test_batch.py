"""`agent batch` as users run it: a process over an instances file, the real SDK against the fake API,
real Docker, and a real 2-node Ray cluster on 127.0.0.1.

The scripted instances (batch_scenario.py) fix the example repos, or fix and add a
notes file, or look and change nothing, each from a base commit below the repo's HEAD.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from patchwright.batch.instances import repo_source
from patchwright.sandbox import labels
from patchwright.selfcheck import DEFAULT_MAX_CONTINUES

import batch_scenario
from agentrun import AGENT, agent_env
from batch_scenario import Scenario
from fakeapi import FakeAnthropic, delay, error, message, text, tool_use
from helpers import SESSION_ID, TEST_LABEL, git, make_repo, remove_image, settled
from raycluster import LOOPBACK_ENV, RayCluster

BATCH_TIMEOUT = 1200  # seconds: generous, others run Docker tests on this 2-core machine too


def run_batch(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, "batch", *args], env=env, capture_output=True, text=True, timeout=BATCH_TIMEOUT
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def instances_seen(api: FakeAnthropic) -> list[str]:
    """The instance of each request the API answered, in arrival order."""
    seen = []
    for request in api.requests:
        first = request.body["messages"][0]["content"]
        found = batch_scenario.MARKER.match(first if isinstance(first, str) else first[0]["text"])
        if found:
            seen.append(found.group(1))
    return seen


class FixWatcher:
    """Notes every `agent fix` process started for this test's checkouts (by their --repo path), so the
    test can prove none of them left a container, even one killed with its node."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.owners: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> FixWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    started = (entry / "stat").read_bytes().rpartition(b")")[2].split()[19].decode()
                except (OSError, IndexError):
                    continue
                if b"fix" in argv and any(self.marker.encode() in a for a in argv):
                    self.owners.add(f"{socket.gethostname()} {entry.name} {started}")

    def containers_left(self, client: docker.DockerClient) -> list[str]:
        # sparse: names and labels from the listing itself, no inspect of a container that may go
        found = client.containers.list(all=True, filters={"label": f"{labels.MANAGED}=true"}, sparse=True)
        return [
            str(c.attrs["Names"][0]).lstrip("/")
            for c in found
            if (c.attrs.get("Labels") or {}).get(labels.OWNER) in self.owners
        ]


def blob_of(patch: str, path: str) -> str:
    """The full pre-image hash of `path` in a `--full-index` patch."""
    header = patch.split(f"diff --git a/{path} b/{path}\n", 1)[1]
    return header.split("\n", 1)[0].split()[1].split("..")[0]


def check_predictions(out: Path, scenario: Scenario) -> list[dict[str, Any]]:
    """Every instance has its prediction, in the file's order, made from its base commit."""
    predictions = lines(out / "predictions.jsonl")
    assert [p["instance_id"] for p in predictions] == [i["instance_id"] for i in scenario.instances]
    for n, (prediction, instance) in enumerate(zip(predictions, scenario.instances, strict=True)):
        example = batch_scenario.EXAMPLES[n % 3]
        variant = (n // 3) % 3
        assert prediction["model_name_or_path"] == "patchwright__claude-sonnet-5-5"
        patch = prediction["model_patch"]
        if variant == 2:
            assert patch == ""
            continue
        edit = example.edits[0]
        added = next(line for line in edit.new.splitlines() if line not in edit.old.splitlines())
        assert f"\n+{added}\n" in patch
        base_blob = git(Path(instance["repo"]), "rev-parse", f"{instance['base_commit']}:{edit.file}").strip()
        assert blob_of(patch, edit.file) == base_blob  # the base commit, not the later HEAD
        assert (f"NOTES-{instance['instance_id']}.md" in patch) == (variant == 1)
    return predictions


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return batch_scenario.build(tmp_path_factory.mktemp("batch-repos"), count=9)


@pytest.fixture(scope="module")
def local_run(
    scenario: Scenario, tmp_path_factory: pytest.TempPathFactory, sandbox_image: str
) -> tuple[Path, subprocess.CompletedProcess[str], list[str]]:
    """The 9 instances with 2 local workers, once for the tests that look at its output."""
    root = tmp_path_factory.mktemp("batch-local")
    instances = scenario.write(root / "instances.jsonl")
    with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api:
        result = run_batch(
            [str(instances), "--out", str(root / "out"), "--workers", "2", "--format", "stream-json"],
            agent_env(api, sandbox_image),
        )
        seen = instances_seen(api)
    if (root / "out" / "predictions.jsonl").is_file():  # as this run left it (later tests rerun into out/)
        shutil.copy(root / "out" / "predictions.jsonl", root / "local-predictions.jsonl")
    return root, result, seen


def test_local_batch_writes_predictions_runs_and_report(
    local_run: tuple[Path, subprocess.CompletedProcess[str], list[str]], scenario: Scenario
) -> None:
    root, result, seen = local_run
    out = root / "out"
    assert result.returncode == 0, result.stderr
    check_predictions(out, scenario)
    assert sorted(set(seen)) == sorted(i["instance_id"] for i in scenario.instances)

    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "completed"
    totals = report["totals"]
    assert (totals["instances"], totals["finished"], totals["patched"], totals["failed"]) == (9, 9, 6, 0)
    assert totals["verified_rate"] == 1.0  # the python and node test suites pass in a fresh sandbox
    assert totals["tokens"]["output_tokens"] > 0 and totals["cost_usd"] > 0
    rows = {r["instance_id"]: r for r in report["instances"]}
    for n, instance in enumerate(scenario.instances):
        row = rows[instance["instance_id"]]
        assert row["exit_code"] == (1 if (n // 3) % 3 == 2 else 0), row
        unfixed = (n // 3) % 3 == 2  # its tests still fail: the self-check sends them back, twice
        nudges = DEFAULT_MAX_CONTINUES if unfixed else 0
        assert row["steps"] == len(scenario.plans[instance["instance_id"]]) + nudges
        run = out / "runs" / instance["instance_id"]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["run_dir"] == str(run) and summary["steps"] == row["steps"]
        events = [json.loads(line)["event"] for line in (run / "trajectory.jsonl").read_text().splitlines()]
        assert events[0] == "run_start" and events[-1] == "run_end"
        prediction = next(
            p for p in lines(out / "predictions.jsonl") if p["instance_id"] == instance["instance_id"]
        )
        assert (run / "patch.diff").read_text() == prediction["model_patch"]

    events = lines_of(result.stdout)
    starts = [e["instance_id"] for e in events if e["event"] == "instance_start"]
    ends = [e["instance_id"] for e in events if e["event"] == "instance_end"]
    assert sorted(starts) == sorted(ends) == sorted(rows)
    assert events[-1]["event"] == "batch_end" and events[-1]["finished"] == 9
    assert not list(Path(tempfile.gettempdir()).glob("pw-inst-*"))  # the checkouts are gone


def lines_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_rerun_resumes_and_redo_forces(
    local_run: tuple[Path, subprocess.CompletedProcess[str], list[str]],
    scenario: Scenario,
    sandbox_image: str,
) -> None:
    root, _, _ = local_run
    out = root / "out"
    before = (out / "predictions.jsonl").read_text()
    again = scenario.instances[4]["instance_id"]
    (out / "runs" / again / "result.json").unlink()  # as if the batch died while it ran
    script = batch_scenario.script_for(scenario.plans)
    with FakeAnthropic(script) as api:
        result = run_batch([str(root / "instances.jsonl"), "--out", str(out)], agent_env(api, sandbox_image))
        assert result.returncode == 0, result.stderr
        assert set(instances_seen(api)) == {again}  # the 8 finished ones were skipped
    assert "8 instances already finished" in result.stderr
    assert (out / "predictions.jsonl").read_text() == before

    subset = [scenario.instances[0], scenario.instances[2]]
    (root / "two.jsonl").write_text("".join(json.dumps(i) + "\n" for i in subset))
    with FakeAnthropic(script) as api:
        result = run_batch(
            [str(root / "two.jsonl"), "--out", str(out), "--redo"], agent_env(api, sandbox_image)
        )
        assert result.returncode == 0, result.stderr
        assert set(instances_seen(api)) == {i["instance_id"] for i in subset}
    assert [p["instance_id"] for p in lines(out / "predictions.jsonl")] == [i["instance_id"] for i in subset]


def test_one_instance_failing_never_stops_the_batch(tmp_path: Path, sandbox_image: str) -> None:
    scenario = batch_scenario.build(tmp_path / "repos", count=3, prefix="iso")
    good, api_error, bad_commit = (i["instance_id"] for i in scenario.instances)
    scenario.plans[api_error] = [
        error(400, "invalid_request_error", "scripted: this instance's request is bad")
    ]
    scenario.instances[2]["base_commit"] = "0" * 40
    scenario.instances.append(
        {
            "instance_id": "iso-missing-repo",
            "problem_statement": "[iso-missing-repo] x",
            "repo": str(tmp_path / "nope"),
        }
    )
    instances = scenario.write(tmp_path / "instances.jsonl")
    out = tmp_path / "out"
    with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api:
        result = run_batch(
            [str(instances), "--out", str(out), "--workers", "2"], agent_env(api, sandbox_image)
        )
    assert result.returncode == 4, result.stderr  # documented: one or more instances failed
    rows = {r["instance_id"]: r for r in json.loads((out / "report.json").read_text())["instances"]}
    assert rows[good]["exit_code"] == 0 and rows[good]["error"] is None
    assert (
        rows[api_error]["exit_code"] == 4
        and "scripted: this instance's request is bad" in rows[api_error]["error"]
    )
    assert rows[bad_commit]["exit_code"] == 2 and "cannot check out" in rows[bad_commit]["error"]
    assert (
        rows["iso-missing-repo"]["exit_code"] == 2
        and "no such directory" in rows["iso-missing-repo"]["error"]
    )
    assert [p["instance_id"] for p in lines(out / "predictions.jsonl")] == [good]
    # the API error's run still left its record
    assert "run_start" in (out / "runs" / api_error / "trajectory.jsonl").read_text()

    scenario.plans[api_error] = batch_scenario.plan(batch_scenario.EXAMPLES[1], api_error, 0, 0.0)
    with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api:
        result = run_batch([str(instances), "--out", str(out)], agent_env(api, sandbox_image))
        assert set(instances_seen(api)) == {api_error}  # failed ones run again, the finished one not
    assert result.returncode == 4  # the two bad repos still fail
    assert [p["instance_id"] for p in lines(out / "predictions.jsonl")] == [good, api_error]


def start_batch(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*AGENT, "batch", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def test_ctrl_c_stops_starting_and_a_second_interrupts(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    scenario = batch_scenario.build(tmp_path / "repos", count=5, prefix="sig", pause=1.5)
    for instance_id in scenario.plans:  # a long last turn: still running when the second Ctrl-C comes
        scenario.plans[instance_id][-1] = delay(120, message(text("late")))
    instances = scenario.write(tmp_path / "instances.jsonl")
    out = tmp_path / "out"
    with (
        FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api,
        FixWatcher("pw-sig-") as watcher,
    ):
        proc = start_batch(
            [str(instances), "--out", str(out), "--workers", "2"], agent_env(api, sandbox_image)
        )
        # both running instances made their edit and wait for their last reply
        wait_until(lambda: len([i for i in instances_seen(api) if instances_seen(api).count(i) >= 2]) >= 2)
        running = set(instances_seen(api))
        proc.send_signal(signal.SIGINT)
        time.sleep(3)
        assert proc.poll() is None  # the first Ctrl-C lets running instances go on
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=BATCH_TIMEOUT)
        assert set(instances_seen(api)) == running  # nothing started after the first Ctrl-C
    assert proc.returncode == 130, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "interrupted"
    assert sorted(report["not_run"]) == sorted(set(scenario.plans) - running)
    for row in report["instances"]:
        assert row["status"] == "interrupted" and row["exit_code"] == 130, row
        patch = (out / "runs" / row["instance_id"] / "patch.diff").read_text()
        assert patch.startswith("diff --git")  # the partial patch: the edit made before the interrupt
    assert not (out / "predictions.jsonl").read_text()
    assert watcher.owners and not settled(lambda: watcher.containers_left(docker_client))


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    good = {"instance_id": "a", "problem_statement": "x", "repo": str(tmp_path)}
    cases = {
        "not json": "{nope\n",
        "twice": json.dumps(good) + "\n" + json.dumps(good) + "\n",
        "unsafe id": json.dumps({**good, "instance_id": "../evil"}) + "\n",
        "no task": json.dumps({**good, "problem_statement": " "}) + "\n",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        path.write_text(content)
        result = run_batch([str(path), "--out", str(tmp_path / "out")], dict(os.environ))
        assert result.returncode == 2, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("agent: error: "), (
            name
        )
    (tmp_path / "ok.jsonl").write_text(json.dumps(good) + "\n")
    result = run_batch(
        [str(tmp_path / "ok.jsonl"), "--out", str(tmp_path / "out"), "--workers", "0"], dict(os.environ)
    )
    assert result.returncode == 2 and "--workers" in result.stderr
    assert not (tmp_path / "out").exists()

    no_ray = tmp_path / "no-ray" / "ray"  # an interpreter where `import ray` fails, as without the extra
    no_ray.mkdir(parents=True)
    (no_ray / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": str(no_ray.parent)}
    result = run_batch([str(tmp_path / "ok.jsonl"), "--out", str(tmp_path / "out"), "--ray", "auto"], env)
    assert result.returncode == 2
    assert result.stderr.strip() == "agent: error: --ray needs Ray: pip install 'patchwright[ray]'"


def test_repo_resolution(tmp_path: Path) -> None:
    mirrors = tmp_path / "mirrors"
    (mirrors / "astropy__astropy").mkdir(parents=True)
    assert repo_source("astropy/astropy", mirrors) == str((mirrors / "astropy__astropy").resolve())
    assert repo_source("django/django", mirrors) == "https://github.com/django/django.git"
    assert repo_source("django/django", None) == "https://github.com/django/django.git"
    assert repo_source("https://example.org/x.git", mirrors) == "https://example.org/x.git"
    assert repo_source("git@example.org:x/y.git", None) == "git@example.org:x/y.git"
    assert repo_source(str(tmp_path), mirrors) == str(tmp_path.resolve())


# -- Ray ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A head and a second node, one sandbox slot each, all on 127.0.0.1; stopped whatever happens."""
    cluster = RayCluster(tmp_path_factory.mktemp("ray"))
    try:
        cluster.start_head({"patchwright_sandbox": 1})
        cluster.add_node({"patchwright_sandbox": 1})
        cluster.wait_for("patchwright_sandbox", 2)
        yield cluster
    finally:
        cluster.stop()


def test_ray_batch_gives_the_local_predictions(
    ray_cluster: RayCluster,
    local_run: tuple[Path, subprocess.CompletedProcess[str], list[str]],
    scenario: Scenario,
    tmp_path: Path,
    sandbox_image: str,
) -> None:
    root, local_result, _ = local_run
    assert local_result.returncode == 0
    out = tmp_path / "out"
    with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api:
        env = {**agent_env(api, sandbox_image), **LOOPBACK_ENV}
        result = run_batch(
            [str(root / "instances.jsonl"), "--out", str(out), "--ray", ray_cluster.address], env
        )
    assert result.returncode == 0, result.stderr
    check_predictions(out, scenario)
    local_predictions = (root / "local-predictions.jsonl").read_text()
    assert (out / "predictions.jsonl").read_text() == local_predictions
    report = json.loads((out / "report.json").read_text())
    assert len({r["node"] for r in report["instances"]}) == 2  # spread over both nodes
    assert all(r["attempts"] == 1 for r in report["instances"])
    for row in report["instances"]:  # DIR as a local batch writes it
        run = out / "runs" / row["instance_id"]
        assert {p.name for p in run.iterdir()} == {
            "patch.diff",
            "summary.json",
            "trajectory.jsonl",
            "result.json",
        }


def test_ray_batch_survives_a_node_dying(
    ray_cluster: RayCluster, tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    """Runs last: it stops the second node."""
    scenario = batch_scenario.build(tmp_path / "repos", count=4, prefix="die", pause=2.0)
    instances = scenario.write(tmp_path / "instances.jsonl")
    out = tmp_path / "out"
    with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api, FixWatcher("pw-die-") as watcher:
        env = {**agent_env(api, sandbox_image), **LOOPBACK_ENV}
        proc = start_batch([str(instances), "--out", str(out), "--ray", ray_cluster.address], env)
        wait_until(lambda: len(set(instances_seen(api))) >= 2)  # one instance on each node, mid-run
        ray_cluster.nodes[1].stop()
        _, stderr = proc.communicate(timeout=BATCH_TIMEOUT)
    assert proc.returncode == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["finished"] == 4
    retried = [r for r in report["instances"] if r["attempts"] > 1]
    assert len(retried) == 1, report["instances"]
    assert retried[0]["retries"] and "attempt 1" in retried[0]["retries"][0]
    assert [p["instance_id"] for p in lines(out / "predictions.jsonl")] == [
        i["instance_id"] for i in scenario.instances
    ]
    # the fix on the dead node got SIGTERM with its worker: it removed its container
    wait_until(lambda: not watcher.containers_left(docker_client), timeout=120)


def test_instance_whose_image_holds_the_repo(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    """SWE-bench's layout: the image has the repo and its history at /testbed; no host clone is used."""
    files = {
        "app.py": "def add(a, b):\n    return a - b\n",
        "test_app.py": "from app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    }
    source = make_repo(tmp_path / "context" / "testbed", files)
    base = git(source, "rev-parse", "HEAD").strip()
    (tmp_path / "context" / "Dockerfile").write_text(
        f"FROM {sandbox_image}\nUSER root\nCOPY testbed /testbed\nRUN chown -R root:root /testbed && chmod -R a+rX,go-w /testbed\n"
    )
    tag = f"patchwright-test-testbed:{SESSION_ID}"
    docker_client.images.build(
        path=str(tmp_path / "context"), tag=tag, labels={TEST_LABEL: SESSION_ID}, rm=True
    )
    try:
        instance = {
            "instance_id": "img-1",
            "problem_statement": "[img-1] add() subtracts",
            "image": tag,
            "workspace": "/testbed",
            "test_cmd": "python3 -m pytest -q",
        }
        (tmp_path / "instances.jsonl").write_text(json.dumps(instance) + "\n")
        edit = {"command": "str_replace", "path": "/workspace/app.py", "old_str": "a - b", "new_str": "a + b"}
        plans = {"img-1": [message(tool_use(batch_scenario.EDITOR, edit)), message(text("done"))]}
        out = tmp_path / "out"
        with FixWatcher("pw-img-1-") as watcher, FakeAnthropic(batch_scenario.script_for(plans)) as api:
            env = {**agent_env(api, sandbox_image)}
            result = run_batch([str(tmp_path / "instances.jsonl"), "--out", str(out)], env)
        assert result.returncode == 0, result.stderr
        row = json.loads((out / "report.json").read_text())["instances"][0]
        assert row["exit_code"] == 0 and row["verified"] is True, row  # the tests ran on the image's repo
        patch = lines(out / "predictions.jsonl")[0]["model_patch"]
        assert patch.startswith("diff --git a/app.py b/app.py") and "+    return a + b" in patch
        assert blob_of(patch, "app.py") == git(source, "rev-parse", f"{base}:app.py").strip()
        assert not settled(lambda: watcher.containers_left(docker_client))
    finally:
        remove_image(docker_client, tag)


def test_batch_settings_reach_each_instances_run(tmp_path: Path, sandbox_image: str) -> None:
    """Settings a batch once lacked (effort, the self-check, the run's own services) reach the instance."""
    scenario = batch_scenario.build(tmp_path / "repos", count=1)
    instances = scenario.write(tmp_path / "instances.jsonl")
    out = tmp_path / "out"
    flags = ["--effort", "high", "--max-continues", "0", "--service", "redis"]
    with FakeAnthropic(batch_scenario.script_for(scenario.plans)) as api:
        result = run_batch(
            [str(instances), "--out", str(out), "--workers", "1", *flags], agent_env(api, sandbox_image)
        )
        bodies = [request.body for request in api.requests]
    assert result.returncode == 0, result.stderr
    assert bodies and all(body.get("output_config", {}).get("effort") == "high" for body in bodies)
    summary = json.loads((out / "runs" / scenario.instances[0]["instance_id"] / "summary.json").read_text())
    assert "redis" in json.dumps(summary["services"])
