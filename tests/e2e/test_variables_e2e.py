"""`agent fix --env KEY=VALUE` as a user runs it: the variable reaches setup and the model's
shell, and its value is in no file of the run folder (summary, trajectory, settings, attempts'
folders) nor on the screen, even when setup, a command and the model's last words print it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker

from agentrun import agent_env, run_agent
from fakeapi import FakeAnthropic, RecordedRequest, last_tool_results, message, text, tool_use
from helpers import make_repo

SECRET = "tok-5f1c9e0a7b3d-never-on-disk"


def _repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "app.py": "def add(a, b):\n    return a + b\n",
            "test_app.py": "from app import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        },
    )


def _model(request: RecordedRequest, index: int) -> Any:
    """Prints the variable, then says it back: whatever attempt asks, by what it was sent."""
    results = last_tool_results(request)
    if not results:
        return message(tool_use("bash", {"command": 'echo "model sees $API_TOKEN"; printenv API_TOKEN'}))
    return message(text(f"Done. The token was {results[0]['text'].split()[-1]}."))


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_env_values_reach_the_sandbox_and_no_file_of_the_run(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = _repo(tmp_path)
    setup = 'echo "setup sees $API_TOKEN"; printenv API_TOKEN > /tmp/setup-token'
    for extra in ([], ["--attempts", "2", "--parallel", "1"]):
        with FakeAnthropic(_model) as api:
            result = run_agent(
                [
                    "fix",
                    "check the token",
                    "--repo",
                    str(repo),
                    "--format",
                    "json",
                    "--setup",
                    setup,
                    "--env",
                    f"API_TOKEN={SECRET}",
                    "--env",
                    "REGION=eu",
                    *extra,
                ],
                agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),
            )
            seen = [r["text"] for request in api.requests for r in last_tool_results(request)]
        assert result.returncode in (0, 1), result.stderr[-2000:]
        # the sandbox had it, during setup and in the model's shell
        assert any(f"model sees {SECRET}" in t for t in seen), seen
        summary = json.loads(result.stdout)
        run_dir = repo / ".patchwright" / "runs" / summary["run_id"]
        assert (run_dir / "trajectory.jsonl").is_file() or extra
        # ... and no file patchwright wrote, nor its output, holds it
        assert _files_holding(run_dir, SECRET.encode()) == []
        assert SECRET not in result.stdout and SECRET not in result.stderr
        assert "[REDACTED]" in "".join(p.read_text() for p in run_dir.rglob("*.jsonl"))
        if extra:
            settings = json.loads((run_dir / "attempt-1" / "settings.json").read_text())
            assert settings["env"] == [["API_TOKEN", "[REDACTED]"], ["REGION", "[REDACTED]"]]


def test_a_failing_setup_that_prints_the_value_shows_it_nowhere(tmp_path: Path, sandbox_image: str) -> None:
    repo = _repo(tmp_path)
    for output_format in ("json", "text"):
        with FakeAnthropic([message(text("unused"))]) as api:
            result = run_agent(
                [
                    "fix",
                    "x",
                    "--repo",
                    str(repo),
                    "--format",
                    output_format,
                    "--env",
                    f"API_TOKEN={SECRET}",
                    "--setup",
                    'echo "bad token $API_TOKEN"; exit 3',
                    "--repair-steps",
                    "0",  # the failure itself, not a repair of it
                ],
                agent_env(api, sandbox_image),
            )
        assert result.returncode == 5, result.stderr[-2000:]
        assert "setup command exited with 3: bad token [REDACTED]" in result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr
    assert _files_holding(repo / ".patchwright", SECRET.encode()) == []


def test_the_repos_variables_reach_the_sandbox_listed_by_name(tmp_path: Path, sandbox_image: str) -> None:
    key = "django-insecure-4e1f0c2b9a77d3"
    repo = make_repo(
        tmp_path / "repo",
        {
            "app.py": "def add(a, b):\n    return a + b\n",
            "docker-compose.yml": "services:\n  web:\n    build: .\n    env_file: .env\n"
            "    environment:\n      DJANGO_DEBUG: '1'\n",
            ".env": f"SECRET_KEY={key}\n",
        },
    )

    def model(request: RecordedRequest, index: int) -> Any:
        if not last_tool_results(request):
            return message(tool_use("bash", {"command": "echo debug=$DJANGO_DEBUG; printenv SECRET_KEY"}))
        return message(text("done"))

    with FakeAnthropic(model) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(repo), "--format", "json"],
            agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),
        )
        seen = [r["text"] for request in api.requests for r in last_tool_results(request)]
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert any("debug=1" in t and key in t for t in seen), seen
    summary = json.loads(result.stdout)
    assert summary["environment_variables"] == [
        {"name": "SECRET_KEY", "source": ".env"},
        {"name": "DJANGO_DEBUG", "source": "docker-compose.yml"},
    ]
    assert "variables from the repository (values not shown): SECRET_KEY (.env)" in result.stderr
    run_dir = repo / ".patchwright" / "runs" / summary["run_id"]
    assert _files_holding(run_dir, key.encode()) == []  # a secret-looking name: redacted
