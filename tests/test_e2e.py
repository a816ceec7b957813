"""`agent fix` run as a user runs it: a subprocess, the real SDK against the fake API, real Docker.

The scripted model works like a careful developer: runs the failing tests,
views the file, edits it with the text editor tool, runs the tests again and
stops. The patch must then fix a clean clone, and the host repo stay untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from patchwright.sandbox import labels

from example_fixes import EXAMPLES, ExampleFix
from fakeapi import (
    FakeAnthropic,
    RecordedRequest,
    error,
    last_tool_results,
    last_user_text,
    message,
    text,
    tool_use,
)
from helpers import git, make_repo, repo_state, settled

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


def fixing_script(example: ExampleFix) -> Callable[[RecordedRequest, int], Any]:
    """A model that reproduces, views, edits, re-runs the tests, and checks what it saw."""
    steps: list[Any] = [
        message(text("Reproducing first."), tool_use("bash", {"command": example.test_command})),
        message(
            *[
                tool_use(EDITOR, {"command": "view", "path": f"/workspace/{e.file}"})
                for e in example.edits[:1]
            ]
        ),
        *[
            message(
                tool_use(
                    EDITOR,
                    {
                        "command": "str_replace",
                        "path": f"/workspace/{e.file}",
                        "old_str": e.old,
                        "new_str": e.new,
                    },
                )
            )
            for e in example.edits
        ],
        message(tool_use("bash", {"command": example.test_command})),
        message(text("Root cause fixed; the test suite passes now.")),
    ]
    observed: list[dict[str, Any]] = []

    def script(request: RecordedRequest, index: int) -> Any:
        if index:
            observed.extend(last_tool_results(request))
        return steps[index]

    script.observed = observed  # type: ignore[attr-defined]
    return script


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_fixes_each_example_end_to_end(
    example: ExampleFix, tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = example_repo(example, tmp_path)
    before = repo_state(repo)
    script = fixing_script(example)
    with FakeAnthropic(script) as api:
        patch_file = tmp_path / "fix.patch"
        result = run_agent(
            [
                "fix",
                example.task,
                "--repo",
                str(repo),
                "--patch",
                str(patch_file),
                "--format",
                "json",
                "--test-cmd",
                example.test_command,
            ],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 0, result.stderr
    observed = script.observed  # type: ignore[attr-defined]
    first_run, final_run = observed[0], observed[-1]
    assert example.failing_test_hint in first_run["text"] and "[exit code:" in first_run["text"]
    assert "[exit code:" not in final_run["text"], final_run["text"]
    assert not any(r["is_error"] for r in observed)

    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["exit_code"] == 0
    assert summary["verified"] is True
    assert summary["tests"]["before"]["passed"] is False and summary["tests"]["after"]["passed"] is True
    assert summary["files_changed"] == sorted({e.file for e in example.edits})
    assert summary["steps"] == len(api.requests)
    assert summary["tokens"]["cache_read_input_tokens"] > 0

    assert repo_state(repo) == before  # the host repo is untouched
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "patch.diff").read_text() == patch_file.read_text()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    events = [json.loads(line)["event"] for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    assert events[0] == "run_start" and events[-1] == "run_end" and "tool_result" in events
    assert "sk-ant-api03-e2e-secret" not in (run_dir / "trajectory.jsonl").read_text()

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "apply", str(patch_file)], cwd=clone, check=True)
    command = example.test_command.replace("python3", sys.executable)
    check = subprocess.run(command, shell=True, cwd=clone, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))


@pytest.fixture
def buggy_repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "svc",
        {
            "app.py": "def add(a, b):\n    return a - b\n",
            "test_app.py": "from app import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        },
    )


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


def test_apply_writes_the_fix_into_the_repo(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic(edit_then(message(text("done")))) as api:
        result = run_agent(
            ["fix", "add is wrong", "--repo", str(buggy_repo), "--apply"], agent_env(api, sandbox_image)
        )
    assert result.returncode == 0, result.stderr
    assert (buggy_repo / "app.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "applied" in result.stderr
    assert json.loads((only_run(buggy_repo) / "summary.json").read_text())["applied"] is True


def test_no_changes_exits_1(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic(
        [message(tool_use("bash", {"command": "ls"})), message(text("Nothing to change."))]
    ) as api:
        result = run_agent(
            ["fix", "look around", "--repo", str(buggy_repo), "--max-continues", "0"],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 1, result.stderr
    assert "status: completed (exit 1)" in result.stdout
    assert (only_run(buggy_repo) / "patch.diff").read_text() == ""


def test_a_failing_self_check_goes_back_to_the_model(buggy_repo: Path, sandbox_image: str) -> None:
    """Issue 12: an end of turn with the tests still failing is sent back once, with the failure."""
    replies = [message(text("Looks fine to me.")), *edit_then(message(text("Fixed add().")))]
    with FakeAnthropic(replies) as api:
        result = run_agent(
            ["fix", "add is wrong", "--repo", str(buggy_repo), "--format", "json"],
            agent_env(api, sandbox_image),
        )
        nudge = last_user_text(api.requests[1])
    assert result.returncode == 0, result.stderr
    assert "patchwright ran the tests" in nudge and "assert" in nudge  # pytest's failure, capped
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["verified"] is True
    records = [
        json.loads(line) for line in (only_run(buggy_repo) / "trajectory.jsonl").read_text().splitlines()
    ]
    assert [(r["round"], r["passed"]) for r in records if r["event"] == "self_check"] == [
        (1, False),
        (2, True),
    ]
    params = next(r for r in records if r["event"] == "model_params")
    assert params["betas"] == ["context-management-2025-06-27"] and params["thinking"] == {"type": "adaptive"}


def test_max_steps_exits_3_with_the_partial_patch(buggy_repo: Path, sandbox_image: str) -> None:
    replies = edit_then(*[message(tool_use("bash", {"command": f"echo {i}"})) for i in range(5)])
    with FakeAnthropic(replies) as api:
        result = run_agent(
            ["fix", "add is wrong", "--repo", str(buggy_repo), "--max-steps", "3", "--format", "json"],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "max_steps" and summary["steps"] == 3
    assert "+    return a + b" in Path(summary["patch"]).read_text()


def test_api_failure_mid_run_exits_4_and_keeps_the_work(
    buggy_repo: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    failures = [error(500, "api_error", "upstream broke", {"retry-after-ms": "1"})] * 5
    with FakeAnthropic(edit_then(*failures)) as api:
        result = run_agent(
            ["fix", "add is wrong", "--repo", str(buggy_repo), "--format", "json"],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 4, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "error" and "500" in summary["error"]
    assert "+    return a + b" in Path(summary["patch"]).read_text()
    trajectory = (Path(summary["run_dir"]) / "trajectory.jsonl").read_text()
    assert '"event": "tool_result"' in trajectory and '"event": "run_end"' in trajectory
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))


def test_rejected_key_exits_4_with_one_line(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic([error(401, "authentication_error", "invalid x-api-key")]) as api:
        result = run_agent(["fix", "add is wrong", "--repo", str(buggy_repo)], agent_env(api, sandbox_image))
    assert result.returncode == 4
    errors = [line for line in result.stderr.splitlines() if line.startswith("agent: error:")]
    assert errors == ["agent: error: the API rejected the credentials (401): check ANTHROPIC_API_KEY"]
    assert "Traceback" not in result.stderr
    assert len(api.requests) == 1


def test_sigint_mid_run_exits_130_with_partial_patch_and_no_container(
    buggy_repo: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    replies = edit_then(message(tool_use("bash", {"command": "sleep 100"})), message(text("never")))
    with FakeAnthropic(replies) as api:
        env = agent_env(api, sandbox_image)
        proc = subprocess.Popen(
            [*AGENT, "fix", "add is wrong", "--repo", str(buggy_repo)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(api.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the `sleep 100` is running in the sandbox now
        proc.send_signal(signal.SIGINT)
        interrupted_at = time.monotonic()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # a second Ctrl-C must not skip the cleanup
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - interrupted_at < 15
    run_dir = only_run(buggy_repo)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert "+    return a + b" in (run_dir / "patch.diff").read_text()
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))


def test_sigterm_is_handled_like_ctrl_c(
    buggy_repo: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    replies = edit_then(message(tool_use("bash", {"command": "sleep 100"})))
    with FakeAnthropic(replies) as api:
        proc = subprocess.Popen(
            [*AGENT, "fix", "x", "--repo", str(buggy_repo), "--quiet"],
            env=agent_env(api, sandbox_image),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(api.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    summary = json.loads((only_run(buggy_repo) / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))


def test_resume_continues_an_interrupted_run(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic(edit_then(error(500, "api_error", "down", {"retry-after-ms": "1"}))) as api:
        env = agent_env(api, sandbox_image)
        first = run_agent(["fix", "add is wrong", "--repo", str(buggy_repo), "--format", "json"], env)
    assert first.returncode == 4
    run_id = json.loads(first.stdout)["run_id"]

    resumed_requests: list[RecordedRequest] = []

    def script(request: RecordedRequest, index: int) -> Any:
        resumed_requests.append(request)
        if index == 0:
            return message(tool_use("bash", {"command": "grep -c 'a + b' app.py"}))
        return message(text("The earlier edit is in place."))

    with FakeAnthropic(script) as api:
        second = run_agent(
            ["fix", "--resume", run_id, "--repo", str(buggy_repo), "--format", "json"],
            agent_env(api, sandbox_image),
        )
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["run_id"] == run_id and summary["status"] == "completed"
    first_messages = resumed_requests[0].body["messages"]
    assert first_messages[0]["content"][0]["text"] == "add is wrong"  # the conversation came back
    assert last_tool_results(resumed_requests[1])[0]["text"].strip() == "1"  # so did the edit
    assert "+    return a + b" in Path(summary["patch"]).read_text()
    records = [
        json.loads(line) for line in (only_run(buggy_repo) / "trajectory.jsonl").read_text().splitlines()
    ]
    responses = [r["usage"] for r in records if r.get("event") == "response"]
    assert len(responses) == 3  # one before the failure, two after the resume
    assert summary["tokens"]["output_tokens"] == sum(u["output_tokens"] for u in responses) > 0


def test_resume_with_a_new_task_goes_on_with_it(buggy_repo: Path, sandbox_image: str) -> None:
    # The tests still fail after each reply: the self-check is off, this test is about --resume.
    with FakeAnthropic([message(text("Fixed, I think."))]) as api:
        first = run_agent(
            ["fix", "add is wrong", "--repo", str(buggy_repo), "--format", "json"],
            agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),
        )
    run_id = json.loads(first.stdout)["run_id"]
    with FakeAnthropic([message(text("Checked the tests too."))]) as api:
        second = run_agent(
            ["fix", "also run the tests", "--resume", run_id, "--repo", str(buggy_repo), "--format", "json"],
            agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),
        )
        sent = api.requests[0].body["messages"]
    assert second.returncode in (0, 1), second.stderr
    assert sent[0]["content"][0]["text"] == "add is wrong"  # the run's task stays its task
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [(b["type"], b["text"]) for b in sent[-1]["content"]] == [("text", "also run the tests")]


def test_setup_output_is_in_the_trajectory_whether_it_works_or_not(
    buggy_repo: Path, sandbox_image: str
) -> None:
    with FakeAnthropic([message(text("nothing to do"))]) as api:
        env = agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0")  # the tests fail; no self-check
        worked = run_agent(
            ["fix", "x", "--repo", str(buggy_repo), "--setup", "echo preparing; ls app.py"], env
        )
        failed = run_agent(
            ["fix", "x", "--repo", str(buggy_repo), "--setup", "echo half way; exit 3", "--format", "json"],
            env,
        )
    assert worked.returncode == 1, worked.stderr  # no changes
    assert failed.returncode == 4 and "setup command exited with 3" in json.loads(failed.stdout)["error"]
    setups = []
    for run in sorted((buggy_repo / ".patchwright" / "runs").iterdir()):
        records = [json.loads(line) for line in (run / "trajectory.jsonl").read_text().splitlines()]
        setups += [r for r in records if r.get("event") == "setup"]
    by_code = {r["exit_code"]: r for r in setups}
    assert set(by_code) == {0, 3}
    assert (
        by_code[0]["output"] == "preparing\napp.py\n" and by_code[0]["command"] == "echo preparing; ls app.py"
    )
    assert by_code[3]["output"] == "half way\n" and not by_code[3]["timed_out"]


def test_stream_json_emits_events_then_the_result(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic(edit_then(message(text("done")))) as api:
        result = run_agent(
            ["fix", "add is wrong", "--repo", str(buggy_repo), "--format", "stream-json"],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "result" and "step" in kinds and "tool" in kinds
    assert events[-1]["exit_code"] == 0


def test_a_reader_that_goes_away_does_not_end_the_run(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic(edit_then(message(text("done")))) as api:
        proc = subprocess.Popen(
            [*AGENT, "fix", "add is wrong", "--repo", str(buggy_repo), "--format", "stream-json"],
            env=agent_env(api, sandbox_image),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = json.loads(proc.stdout.readline())  # as `| head -1` would, then it is gone
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=300)
    assert first["type"] == "status"
    assert code == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    summary = json.loads((only_run(buggy_repo) / "summary.json").read_text())
    assert summary["status"] == "completed" and "+    return a + b" in Path(summary["patch"]).read_text()


def test_concurrent_runs_do_not_collide(buggy_repo: Path, sandbox_image: str) -> None:
    def script(request: RecordedRequest, index: int) -> Any:
        first_turn = len(request.body["messages"]) == 1
        return edit_then()[0] if first_turn else message(text("done"))

    with FakeAnthropic(script) as api:
        env = agent_env(api, sandbox_image)
        procs = [
            subprocess.Popen(
                [*AGENT, "fix", "add is wrong", "--repo", str(buggy_repo), "--quiet"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0, 0]
    runs = list((buggy_repo / ".patchwright" / "runs").iterdir())
    assert len(runs) == 3
    assert all("+    return a + b" in (r / "patch.diff").read_text() for r in runs)


# -- input errors: one line, exit 2, no container ------------------------------------------


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_input_errors(tmp_path: Path, buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic([]) as api:
        env = agent_env(api, sandbox_image)
        not_repo = tmp_path / "plain"
        not_repo.mkdir()
        cases = {
            "not inside a git repository": ["fix", "x", "--repo", str(not_repo)],
            "no such directory": ["fix", "x", "--repo", str(tmp_path / "missing")],
            "the task is empty": ["fix", "   ", "--repo", str(buggy_repo)],
            "No such option": ["fix", "x", "--no-such-flag"],
            "not found": ["fix", "x", "--repo", str(buggy_repo), "--agent", "nobody"],
            "max_steps must be at least 1": ["fix", "x", "--repo", str(buggy_repo), "--max-steps", "0"],
        }
        for expected, args in cases.items():
            result = run_agent(args, env)
            assert result.returncode == 2, (args, result.stderr)
            assert expected in one_error_line(result)
        no_key = run_agent(
            ["fix", "x", "--repo", str(buggy_repo)],
            {k: v for k, v in env.items() if k != "ANTHROPIC_API_KEY"},
        )
        assert no_key.returncode == 2 and "no API key" in one_error_line(no_key)
        (buggy_repo / ".claude" / "agents").mkdir(parents=True)
        (buggy_repo / ".claude" / "agents" / "broken.md").write_text("---\nname: [unclosed\n---\nbody\n")
        broken = run_agent(["fix", "x", "--repo", str(buggy_repo), "--agent", "broken"], env)
        assert broken.returncode == 2 and "broken.md" in one_error_line(broken)
        bad_patch = run_agent(
            ["fix", "x", "--repo", str(buggy_repo), "--patch", str(tmp_path / "no" / "p.diff")], env
        )
        assert bad_patch.returncode == 2 and "no such directory" in one_error_line(bad_patch)
        huge = run_agent(["fix", "x" * 100_001, "--repo", str(buggy_repo)], env)
        assert huge.returncode == 2 and "over the limit of 100,000" in one_error_line(huge)
        (buggy_repo / ".claude" / "agents" / "web.md").write_text(
            "---\nname: web-only\ndescription: reads the web\ntools: WebFetch, WebSearch\n---\nbody\n"
        )
        toolless = run_agent(["fix", "x", "--repo", str(buggy_repo), "--agent", "web-only"], env)
        assert toolless.returncode == 2 and "leaves the model no tools" in one_error_line(toolless)
        unknown_price = run_agent(
            ["fix", "x", "--repo", str(buggy_repo), "--model", "claude-unknown-9", "--max-cost", "1"], env
        )
        assert unknown_price.returncode == 2 and "price" in one_error_line(unknown_price)
        assert api.requests == []
    assert not (buggy_repo / ".patchwright").exists()


def test_docker_unreachable_exits_4(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic([]) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(buggy_repo)],
            agent_env(api, sandbox_image, DOCKER_HOST="unix:///nonexistent/docker.sock"),
        )
    assert result.returncode == 4
    assert "Docker" in one_error_line(result)


def test_missing_image_exits_4(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic([]) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(buggy_repo), "--image", "patchwright-missing:1"],
            agent_env(api, sandbox_image),
        )
    assert result.returncode == 4
    assert "patchwright-missing:1" in one_error_line(result)


def test_task_from_stdin(buggy_repo: Path, sandbox_image: str) -> None:
    with FakeAnthropic([message(text("ok"))]) as api:
        result = subprocess.run(
            [*AGENT, "fix", "--task-file", "-", "--repo", str(buggy_repo)],
            input="a long task\nover two lines\n",
            env=agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),  # tests fail; no self-check
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        assert api.requests[0].body["messages"][0]["content"][0]["text"] == "a long task\nover two lines\n"


def test_project_instructions_and_persona_reach_the_model(buggy_repo: Path, sandbox_image: str) -> None:
    (buggy_repo / "CLAUDE.md").write_text("Always run pytest with -x.\n")
    git(buggy_repo, "add", "CLAUDE.md")
    git(buggy_repo, "commit", "-qm", "instructions")
    with FakeAnthropic([message(text("ok"))]) as api:
        run_agent(["fix", "x", "--repo", str(buggy_repo)], agent_env(api, sandbox_image))
        system = json.dumps(api.requests[0].body["system"])
        tools = [t["name"] for t in api.requests[0].body["tools"]]
    assert "Always run pytest with -x." in system and "/workspace" in system
    assert tools[:2] == ["bash", EDITOR]


def test_verification_starts_from_the_state_setup_left_without_running_it_again(
    buggy_repo: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    # Setup leaves a random token in the workspace and in home; a second setup would draw another.
    setup = (
        "head -c8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > .token; cp .token ~/.token; "
        "echo .token > .gitignore; echo token=$(cat .token)"
    )
    test_cmd = 'echo "saw=$(cat .token) home=$(cat ~/.token)"; python3 -m pytest -q -p no:cacheprovider'
    with FakeAnthropic(edit_then(message(text("done")))) as api:
        result = run_agent(
            [
                "fix",
                "add is wrong",
                "--repo",
                str(buggy_repo),
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
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    run_dir = Path(summary["run_dir"])
    records = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    setups = [r for r in records if r["event"] == "setup"]
    assert len(setups) == 1  # setup ran once: for the run, not again for verification
    token = setups[0]["output"].strip().removeprefix("token=")
    assert len(token) == 16
    tests = summary["tests"]
    assert tests["from_setup_state"] is True and summary["verified"] is True
    assert f"saw={token} home={token}" in tests["before"]["output_tail"]
    assert f"saw={token} home={token}" in tests["after"]["output_tail"]
    assert not list(Path(tempfile.gettempdir()).glob(f"patchwright-checkpoint-{summary['run_id']}-*"))
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))
