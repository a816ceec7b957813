"""`agent setup` and `agent fix` with no flags on the real-world-shaped projects in
tests/environment/projects: the project's own setup is found and run (network on, registries through the
host's proxy), and the tests really are collected and run - or the ending names the cause.

Slow (installs from PyPI and the npm registry): one test per project shape.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentrun import agent_env, only_run, run_agent
from fakeapi import FakeAnthropic, RecordedRequest, last_tool_results, message, text, tool_use
from helpers import make_repo

PROJECTS = Path(__file__).parents[1] / "environment" / "projects"
pytestmark = pytest.mark.docker


def project(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(PROJECTS / name, root)
    return make_repo(root, {})


def setup_env(image: str) -> dict[str, str]:
    with FakeAnthropic(lambda _r, _i: message(text("unused"))) as api:
        return agent_env(api, image, PATCHWRIGHT_DETECT_SETUP="1")


def agent_setup(repo: Path, image: str) -> tuple[int, dict[str, Any], str]:
    result = run_agent(["setup", "--repo", str(repo), "--format", "json"], setup_env(image), timeout=900)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_django_with_postgres_installs_from_its_ci_job_and_runs_its_tests(
    tmp_path: Path,
    sandbox_image: str,
    services_image: str,
) -> None:
    code, found, stderr = agent_setup(project("django_postgres", tmp_path), sandbox_image)
    assert code == 0, stderr[-3000:]
    assert found["tests_runnable"] is True
    assert found["tests"]["passed"] == 2  # both tests collected and ran, one of them against postgres
    assert found["sources"][:2] == [
        "test: .github/workflows/ci.yml job `test`",
        "setup: .github/workflows/ci.yml job `test`",
    ]
    assert "pip install -r requirements/local.txt" in found["setup"]


def test_express_with_yarn_gets_the_node_version_of_its_nvmrc(
    tmp_path: Path,
    sandbox_image: str,
    services_image: str,
) -> None:
    code, found, stderr = agent_setup(project("express_postgres", tmp_path), sandbox_image)
    assert code == 0, stderr[-3000:]
    # one test asserts Node 20 (the image has 18), the other queries the run's postgres via express
    assert found["tests"] == {"runners": ["tap"], "passed": 2, "failed": 0, "skipped": 0}
    assert "node: .nvmrc" in found["sources"] and "yarn: yarn.lock" in found["sources"]


def test_a_python_the_sandbox_cannot_provide_ends_naming_the_requirement(
    tmp_path: Path, sandbox_image: str
) -> None:
    code, found, _ = agent_setup(project("python314", tmp_path), sandbox_image)
    assert code == 5
    assert found["tests_runnable"] is False
    [unmet] = found["unmet"]
    assert unmet["requirement"] == "python >=3.14" and unmet["source"] == "pyproject.toml requires-python"
    assert "--image" in found["reason"]


def test_fix_in_a_monorepo_tests_the_python_backend_not_the_root_script(
    tmp_path: Path, sandbox_image: str
) -> None:
    repo = project("monorepo", tmp_path)
    observed: list[dict[str, Any]] = []
    steps = [
        message(text("Reproducing first."), tool_use("run_tests", {})),
        message(tool_use("run_tests", {"args": "-k zero"})),
        message(text("The suite runs; nothing to change.")),
    ]

    def script(request: RecordedRequest, index: int) -> Any:
        if index:
            observed.extend(last_tool_results(request))
        return steps[index]

    with FakeAnthropic(script) as api:
        result = run_agent(
            ["fix", "prices are wrong", "--repo", str(repo), "--format", "json"],
            agent_env(api, sandbox_image, PATCHWRIGHT_DETECT_SETUP="1"),
            timeout=900,
        )
    assert result.returncode == 1, result.stderr[-3000:]  # ran, no changes
    whole, narrowed = observed
    assert "2 passed" in whole["text"]
    assert "1 passed, 1 deselected" in narrowed["text"]  # run_tests' arguments reach pytest in backend/
    summary = json.loads((only_run(repo) / "summary.json").read_text())
    environment = summary["environment"]
    assert environment["workdir"] == "backend"
    assert environment["test_cmd"] == "cd backend && python3 -m pytest -q"
    assert environment["sources"][:2] == ["test: backend/pyproject.toml", "setup: backend/pyproject.toml"]
