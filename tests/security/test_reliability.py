"""Hostile commands and faults: bounded memory, redacted outputs, full disks, killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import docker
import pytest

from patchwright.sandbox.docker import DockerSandbox

from agentrun import EDITOR, agent_env, containers_of, edit_then, only_run, run_agent
from fakeapi import FakeAnthropic, message, text, tool_use
from helpers import make_repo, settled


def test_a_gigabyte_of_output_keeps_host_memory_flat(sandbox: DockerSandbox) -> None:
    tracemalloc.start()
    try:
        result = sandbox.run("head -c 1000000000 /dev/zero", timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0 and result.output_bytes == 1_000_000_000
    assert result.truncated and len(result.output) < 70_000
    assert peak < 16 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.1f} MB"


def test_root_filesystem_cannot_be_written(sandbox: DockerSandbox) -> None:
    for target in ("/etc/passwd", "/usr/bin/python3", "/opt/x", "/var/x"):
        result = sandbox.run(f"echo x >> {target}")
        assert result.exit_code != 0, target
        assert "Read-only file system" in result.output or "Permission denied" in result.output


def test_keys_in_tool_output_are_redacted_in_every_output(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(
        tmp_path / "r", {"conf.py": 'GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n'}
    )
    replies = [
        message(tool_use("bash", {"command": "cat conf.py"})),
        message(text("Saw ghp_abcdefghijklmnopqrstuvwxyz0123456789.")),
    ]
    with FakeAnthropic(replies) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(repo), "--format", "stream-json"], agent_env(api, sandbox_image)
        )
    assert result.returncode == 1, result.stderr
    run_dir = only_run(repo)
    for produced in (
        result.stdout,
        (run_dir / "trajectory.jsonl").read_text(),
        (run_dir / "summary.json").read_text(),
    ):
        assert "ghp_abcdefghijklmnopqrstuvwxyz" not in produced
    assert "[REDACTED]" in (run_dir / "trajectory.jsonl").read_text()


@pytest.fixture
def full_dir(tmp_path: Path) -> Path:
    """A 64 KiB tmpfs: writing a larger file into it fails with ENOSPC, like a full disk."""
    target = tmp_path / "full"
    target.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield target
    subprocess.run(["umount", str(target)], check=False)


def test_disk_full_while_writing_the_patch_exits_4_with_one_line(
    tmp_path: Path, full_dir: Path, sandbox_image: str
) -> None:
    repo = make_repo(tmp_path / "r", {"data.txt": "small\n"})
    big = "x" * 200_000
    replies = [
        message(tool_use(EDITOR, {"command": "create", "path": "/workspace/big.txt", "file_text": big})),
        message(text("done")),
    ]
    with FakeAnthropic(replies) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(repo), "--patch", str(full_dir / "fix.patch")],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 4, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("agent: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (full_dir / "fix.patch").exists()  # no half-written file
    assert big in (only_run(repo) / "patch.diff").read_text()  # the run dir copy survived


def test_prune_removes_what_a_sigkilled_run_left(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "def add(a, b):\n    return a - b\n"})
    with FakeAnthropic(edit_then(message(tool_use("bash", {"command": "sleep 100"})))) as api:
        proc = subprocess.Popen(
            [sys.executable, "-m", "patchwright", "fix", "x", "--repo", str(repo), "--quiet"],
            env=agent_env(api, sandbox_image),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while len(api.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    run_id = only_run(repo).name
    left = containers_of(docker_client, run_id)
    assert left, "a SIGKILLed run cannot clean up after itself"
    volumes = [
        m["Name"] for m in docker_client.containers.get(left[0]).attrs["Mounts"] if m["Type"] == "volume"
    ]
    pruned = subprocess.run(
        [sys.executable, "-m", "patchwright", "sandbox", "prune"], capture_output=True, text=True, timeout=120
    )
    assert pruned.returncode == 0, pruned.stderr
    assert not settled(lambda: containers_of(docker_client, run_id))
    for name in volumes:
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(name)


def test_a_run_uses_a_fresh_run_directory_each_time(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    with FakeAnthropic(lambda request, index: message(text(f"run {uuid.uuid4().hex}"))) as api:
        env = agent_env(api, sandbox_image)
        first = run_agent(["fix", "x", "--repo", str(repo), "--format", "json"], env)
        second = run_agent(["fix", "x", "--repo", str(repo), "--format", "json"], env)
    dirs = {json.loads(r.stdout)["run_dir"] for r in (first, second)}
    assert len(dirs) == 2 and all(Path(d).is_dir() for d in dirs)
    assert ".patchwright/" in (repo / ".git" / "info" / "exclude").read_text()
    assert not (repo / ".gitignore").exists()
    assert os.listdir(repo / ".patchwright" / "runs") and len(os.listdir(repo / ".patchwright" / "runs")) == 2
