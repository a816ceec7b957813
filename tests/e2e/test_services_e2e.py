"""`agent fix` on a Postgres-backed service whose bug only shows against a real server: the
repo's CI workflow declares `services: postgres`, so the run starts one with no flags; the
scripted model reproduces the failure, looks at its service, fixes the code, restarts the
database to check, and verification passes with fresh services of its own."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import docker

from patchwright.sandbox import labels
from patchwright.sandbox.prune import prune

from agentrun import AGENT, EDITOR, agent_env, containers_of, edit_then, example_repo, only_run, run_agent
from example_fixes import INVENTORY_SERVICE_POSTGRES as EXAMPLE
from fakeapi import FakeAnthropic, RecordedRequest, last_tool_results, message, text, tool_use
from helpers import make_repo, settled


def test_fixes_a_connection_bug_against_the_runs_own_postgres(
    tmp_path: Path,
    sandbox_image: str,
    services_image: str,
    docker_client: docker.DockerClient,
) -> None:
    repo = example_repo(EXAMPLE, tmp_path)
    edit = EXAMPLE.edits[0]
    steps: list[Any] = [
        message(text("Reproducing first."), tool_use("bash", {"command": EXAMPLE.test_command})),
        message(tool_use("service", {"action": "status"})),
        message(tool_use(EDITOR, {"command": "view", "path": f"/workspace/{edit.file}"})),
        message(
            tool_use(
                EDITOR,
                {
                    "command": "str_replace",
                    "path": f"/workspace/{edit.file}",
                    "old_str": edit.old,
                    "new_str": edit.new,
                },
            )
        ),
        message(tool_use("bash", {"command": EXAMPLE.test_command})),
        message(tool_use("service", {"action": "restart", "name": "postgres"})),
        message(tool_use("bash", {"command": EXAMPLE.test_command + " && psql -tAc 'select current_user'"})),
        message(text("The service now reconnects when the database ends its session.")),
    ]
    observed: list[dict[str, Any]] = []
    systems: list[str] = []

    def script(request: RecordedRequest, index: int) -> Any:
        if index:
            observed.extend(last_tool_results(request))
        systems.append(json.dumps(request.body.get("system")))
        return steps[index]

    with FakeAnthropic(script) as api:
        result = run_agent(
            [
                "fix",
                EXAMPLE.task,
                "--repo",
                str(repo),
                "--format",
                "json",
                "--test-cmd",
                EXAMPLE.test_command,
            ],
            agent_env(api, sandbox_image),
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    first, status, *_, restarted, final = observed
    assert EXAMPLE.failing_test_hint in first["text"] and "[exit code: 1]" in first["text"]
    assert (
        "server closed the connection unexpectedly" in first["text"]
        or "terminating connection" in first["text"]
    )
    assert (
        "postgres: postgres 15 on 127.0.0.1:5432 (user inventory, database inventory): ready"
        in status["text"]
    )
    assert "postgres restarted and ready again" in restarted["text"]
    assert "2 passed" in final["text"] and final["text"].strip().endswith("inventory")
    assert "[exit code:" not in final["text"]
    # The model was told about its service.
    assert "- postgres: postgres 15 at 127.0.0.1:5432, user inventory / password inventory" in systems[0]

    summary = json.loads(result.stdout)
    assert summary["verified"] is True
    assert summary["tests"]["before"]["passed"] is False and summary["tests"]["after"]["passed"] is True
    [service] = summary["services"]
    assert service["kind"] == "postgres" and service["source"] == ".github/workflows/test.yml"
    assert service["ready_s"] is not None and "password" not in service
    records = [json.loads(line) for line in (only_run(repo) / "trajectory.jsonl").read_text().splitlines()]
    [recorded] = [r for r in records if r["event"] == "services"]
    assert recorded["detected"] is True and recorded["services"][0]["names"] == ["postgres"]
    assert not settled(
        lambda: containers_of(docker_client, summary["run_id"])
    )  # sandboxes and services, both runs


def test_unknown_service_is_exit_2_before_anything_starts(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    with FakeAnthropic([]) as api:
        result = run_agent(
            ["fix", "anything", "--repo", str(repo), "--service", "mongo:7"], agent_env(api, sandbox_image)
        )
        assert not api.requests
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "agent: error: service 'mongo:7': unknown service 'mongo:7' (known: mariadb, mysql, postgres, postgresql, "
        "redis; e.g. postgres:15)"
    ]
    assert not (repo / ".patchwright" / "runs").exists()


def test_a_service_that_cannot_start_is_exit_4_naming_it(
    tmp_path: Path,
    sandbox_image: str,
    services_image: str,
    docker_client: docker.DockerClient,
) -> None:
    compose = "services:\n  db:\n    image: postgres:15\n    environment:\n      POSTGRES_USER: pg_app\n"
    repo = make_repo(tmp_path / "repo", {"compose.yaml": compose, "app.py": "x = 1\n"})
    with FakeAnthropic([]) as api:
        result = run_agent(["fix", "anything", "--repo", str(repo)], agent_env(api, sandbox_image))
        assert not api.requests  # the model never started
    assert result.returncode == 4, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("agent: error:")]
    assert line.startswith("agent: error: service db (postgres) failed to start:")
    assert 'role name "pg_app" is reserved' in line
    summary = json.loads((only_run(repo) / "summary.json").read_text())
    assert summary["exit_code"] == 4 and summary["services"][0]["name"] == "db"
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))


def _start_and_wait(
    repo: Path, env: dict[str, str], api: FakeAnthropic, *flags: str
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*AGENT, "fix", "x", "--repo", str(repo), "--quiet", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not api.requests and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the `sleep 100` is running in the sandbox now
    return proc


def _run_id(client: docker.DockerClient, repo: Path) -> str:
    [run] = list((repo / ".patchwright" / "runs").iterdir())
    return run.name


def test_sigterm_removes_the_services_too(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    replies = [message(tool_use("bash", {"command": "sleep 100"})), message(text("never"))]
    with FakeAnthropic(replies) as api:
        proc = _start_and_wait(
            repo, agent_env(api, sandbox_image), api, "--service", "postgres", "--service", "redis"
        )
        running = containers_of(docker_client, _run_id(docker_client, repo))
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert len(running) == 3  # the sandbox and its two services, while the run ran
    assert not settled(lambda: containers_of(docker_client, _run_id(docker_client, repo)))


def test_prune_removes_the_services_of_a_killed_run(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    replies = [message(tool_use("bash", {"command": "sleep 100"})), message(text("never"))]
    with FakeAnthropic(replies) as api:
        proc = _start_and_wait(repo, agent_env(api, sandbox_image), api, "--service", "redis")
        proc.kill()  # SIGKILL: no cleanup at all
        proc.communicate(timeout=60)
    run_id = _run_id(docker_client, repo)
    left = containers_of(docker_client, run_id)
    assert len(left) == 2  # the sandbox and its redis
    report = prune(docker_client, extra_labels={labels.RUN_ID: run_id})  # this run's only
    assert len(report.containers_removed) == 2
    assert not settled(lambda: containers_of(docker_client, run_id))


def test_verification_runs_setup_again_when_setup_filled_the_databases(
    tmp_path: Path,
    sandbox_image: str,
    services_image: str,
    docker_client: docker.DockerClient,
) -> None:
    # A migration in --setup lives in the service, not in the workspace: verification starts
    # from the saved post-setup files, and setup runs again over them for its fresh services.
    repo = make_repo(
        tmp_path / "svc",
        {
            "app.py": "def add(a, b):\n    return a - b\n",
            "test_app.py": "from app import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        },
    )
    setup = "psql -c 'create table migrated (id int)'"
    test_cmd = "psql -tAc 'select count(*) from migrated' && python3 -m pytest -q -p no:cacheprovider"
    with FakeAnthropic(edit_then(message(text("done")))) as api:
        result = run_agent(
            [
                "fix",
                "add is wrong",
                "--repo",
                str(repo),
                "--service",
                "postgres",
                "--setup",
                setup,
                "--test-cmd",
                test_cmd,
                "--max-continues",
                "0",
                "--format",
                "json",
            ],
            agent_env(api, sandbox_image),
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["tests"]["from_setup_state"] is True
    assert summary["verified"] is True, summary["tests"]  # the table is there: setup ran again
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))
