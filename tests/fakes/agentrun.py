"""Running `agent` as a user does, for the suites that launch it: a subprocess with the fake
API's address and key, the test image, and the helpers that read what a run left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

from patchwright.sandbox import labels

from example_fixes import ExampleFix
from fakeapi import FakeAnthropic, message, tool_use
from helpers import make_repo

EDITOR = "str_replace_based_edit_tool"


def agent_env(api: FakeAnthropic, image: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
    env.update(api.env(api_key="sk-ant-api03-e2e-secret-key-0000"))
    env.update({"PATCHWRIGHT_IMAGE": image, "CI": "true", "PATCHWRIGHT_MAX_RETRIES": "2"})
    # These runs test the loop offline; the detected setup (network on) has tests of its own.
    env.setdefault("PATCHWRIGHT_DETECT_SETUP", "0")
    env.update(extra)
    return env


AGENT = [sys.executable, "-m", "patchwright"]  # the `agent` command, from this interpreter


def run_agent(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], env=env, capture_output=True, text=True, timeout=timeout)


def example_repo(example: ExampleFix, tmp_path: Path) -> Path:
    root = tmp_path / example.name
    shutil.copytree(
        example.source_dir,
        root,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "node_modules"),
    )
    return make_repo(root, {})


def containers_of(client: docker.DockerClient, run_id: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{labels.MANAGED}=true"}, sparse=True)
    names = [(str(c.attrs["Names"][0]).lstrip("/"), c.attrs.get("Labels") or {}) for c in found]
    return [name for name, tags in names if tags.get(labels.RUN_ID, "").startswith(run_id)]


def only_run(repo: Path) -> Path:
    runs = list((repo / ".patchwright" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def edit_then(*replies: Any) -> list[Any]:
    """A model that makes one edit, then whatever follows."""
    return [
        message(
            tool_use(
                EDITOR,
                {
                    "command": "str_replace",
                    "path": "/workspace/app.py",
                    "old_str": "a - b",
                    "new_str": "a + b",
                },
            )
        ),
        *replies,
    ]
