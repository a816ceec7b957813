"""`agent fix --attempts N` as a user runs it: attempts that differ get the right verdicts, the
proven one is chosen, cross-validation runs, --max-cost stops new attempts, a killed attempt
leaves the others intact. Real `agent` processes, the real SDK against the fake API, real Docker."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from agentrun import containers_of
from fakeapi import FakeAnthropic, RecordedRequest, ToolUse, message, text, tool_use
from helpers import make_repo, settled

EDITOR = "str_replace_based_edit_tool"
AGENT = [sys.executable, "-m", "patchwright"]
TEST_CMD = "python3 -m pytest -q"
CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
MUL_TEST = "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
ADD_TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
ADD_ZERO_TEST = (
    "from calc import add\n\n\ndef test_add_zero():\n    assert add(2, 0) == 2\n"  # passes on the bug
)


def calc_repo(tmp_path: Path) -> Path:
    """add() subtracts; the only test checks mul(), so the suite passes on the original code."""
    return make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_calc.py": MUL_TEST})


def create(path: str, body: str) -> Any:
    return message(tool_use(EDITOR, {"command": "create", "path": f"/workspace/{path}", "file_text": body}))


def replace(old: str, new: str) -> Any:
    return message(
        tool_use(
            EDITOR, {"command": "str_replace", "path": "/workspace/calc.py", "old_str": old, "new_str": new}
        )
    )


def fixes_with_a_test() -> list[Any]:
    return [
        create("tests/test_add.py", ADD_TEST),
        replace("a - b", "a + b"),
        message(text("fixed, with a test")),
    ]


def fixes_with_a_test_that_passes_anyway() -> list[Any]:
    return [
        create("tests/test_add_zero.py", ADD_ZERO_TEST),
        replace("a - b", "a + b"),
        message(text("fixed")),
    ]


def fixes_and_regresses() -> list[Any]:
    return [
        create("tests/test_add.py", ADD_TEST),
        replace("a - b", "a + b"),
        replace("a * b", "a + b"),
        message(text("fixed")),
    ]


def breaks_the_build() -> list[Any]:
    return [replace("return a - b", "return a +"), message(text("fixed"))]


def sleeps() -> list[Any]:
    return [message(tool_use("bash", {"command": "sleep 120"})), message(text("done"))]


class Lanes:
    """Each new conversation (one attempt) gets the next scenario; its later requests are told
    apart by the id of the first tool call the scenario answered with."""

    def __init__(self, *scenarios: list[Any]) -> None:
        self.scenarios = list(scenarios)
        self.by_first_call: dict[str, list[Any]] = {}
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest, _: int) -> Any:
        messages = request.body["messages"]
        with self.lock:
            if len(messages) == 1:
                steps = self.scenarios.pop(0)
                first = next((b for b in steps[0].blocks if isinstance(b, ToolUse)), None)
                if first is not None:  # a one-reply conversation (the judge) needs no lane
                    self.by_first_call[first.id] = steps
                return steps[0]
            first_id = next(b["id"] for b in messages[1]["content"] if b["type"] == "tool_use")
            return self.by_first_call[first_id][(len(messages) - 1) // 2]


def agent_env(api: FakeAnthropic, image: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
    env.update(api.env(api_key="sk-ant-api03-attempts-secret-0000"))
    env.update({"PATCHWRIGHT_IMAGE": image, "CI": "true", "PATCHWRIGHT_MAX_RETRIES": "1"})
    return env


def fix_args(repo: Path, *extra: str) -> list[str]:
    return [
        *AGENT,
        "fix",
        "add is wrong",
        "--repo",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--max-continues",
        "0",
        *extra,
    ]


def what_went_wrong(run_dir: Path) -> str:
    """Each attempt's error and the end of its stderr, for an assertion's message."""
    lines = []
    for folder in sorted(run_dir.glob("attempt-*")):
        summary = folder / "summary.json"
        error = json.loads(summary.read_text()).get("error") if summary.is_file() else "no summary"
        stderr = folder / "stderr.log"
        tail = stderr.read_text(errors="replace")[-1500:] if stderr.is_file() else ""
        lines.append(f"{folder.name}: error={error!r}\n{tail}")
    return "\n".join(lines)


def the_run(repo: Path) -> Path:
    runs = list((repo / ".patchwright" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_attempts_get_their_verdicts_and_the_proven_one_is_chosen(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = calc_repo(tmp_path)
    lanes = Lanes(
        fixes_with_a_test(), fixes_with_a_test_that_passes_anyway(), fixes_and_regresses(), breaks_the_build()
    )
    with FakeAnthropic(lanes) as api:
        result = subprocess.run(
            fix_args(repo, "--attempts", "4", "--parallel", "1", "--apply", "--format", "json"),
            env=agent_env(api, sandbox_image),
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    run_dir = the_run(repo)
    selection = json.loads((run_dir / "selection.json").read_text())
    verdicts = {a["attempt"]: a["verdict"] for a in selection["attempts"]}
    assert verdicts == {1: "fixed", 2: "not_reproduced", 3: "regressed", 4: "regressed"}, what_went_wrong(
        run_dir
    )
    assert selection["chosen"] == 1 and selection["order"][0] == 1
    # cross-validation: attempt 1's code against attempt 3's failing test (attempt 2's test passes
    # on the original code, so it shows no bug and is no test set; attempt 4 wrote none)
    assert [(c["code_of"], c["tests_of"], c["passed"]) for c in selection["cross_validation"]] == [
        (1, 3, True)
    ]
    first = selection["attempts"][0]
    assert first["tests_show_the_bug"] is True and first["cross_validation"]["passed"] == [3]
    assert selection["attempts"][1]["tests_show_the_bug"] is False

    one = json.loads((run_dir / "attempt-1" / "summary.json").read_text())
    assert one["verification"]["FAIL_TO_PASS"] == ["tests/test_add.py::test_add"]
    assert one["verification"]["PASS_TO_PASS"] == ["tests/test_calc.py::test_mul"]
    assert one["tests"]["test_files"] == ["tests/test_add.py"] and one["verified"] is True
    two = json.loads((run_dir / "attempt-2" / "summary.json").read_text())
    assert two["verified"] is False and "also pass on the original code" in two["verification"]["reason"]
    three = json.loads((run_dir / "attempt-3" / "summary.json").read_text())
    assert three["verification"]["PASS_TO_FAIL"] == ["tests/test_calc.py::test_mul"]
    four = json.loads((run_dir / "attempt-4" / "summary.json").read_text())
    assert four["verification"]["PASS_TO_FAIL"] == ["tests/test_calc.py::test_mul"]

    summary = json.loads(result.stdout)
    assert summary["chosen_attempt"] == 1 and summary["verification"]["verdict"] == "fixed"
    assert (run_dir / "patch.diff").read_bytes() == (run_dir / "attempt-1" / "patch.diff").read_bytes()
    assert summary["cost_usd"] == round(sum(a["cost_usd"] for a in summary["attempts"]), 6) > 0
    assert summary["applied"] is True and "a + b" in (repo / "calc.py").read_text()
    assert (repo / "tests" / "test_add.py").read_text() == ADD_TEST
    assert settled(lambda: containers_of(docker_client, summary["run_id"])) == []


def test_apply_leaves_a_patch_that_proves_nothing_unless_told(tmp_path: Path, sandbox_image: str) -> None:
    repo = calc_repo(tmp_path)
    with FakeAnthropic(Lanes([replace("a - b", "a + b"), message(text("fixed"))])) as api:
        result = subprocess.run(
            fix_args(repo, "--apply", "--format", "json"),
            env=agent_env(api, sandbox_image),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["verified"] is False and summary["verification"]["verdict"] == "not_reproduced"
    assert "no test shows the bug" in summary["verification"]["reason"]
    assert summary["applied"] is False and "--apply-unproven" in summary["apply_error"]
    assert (repo / "calc.py").read_text() == CALC
    assert "agent: warning: patch not applied: the verdict is not_reproduced" in result.stderr


def test_max_cost_stops_new_attempts(tmp_path: Path, sandbox_image: str) -> None:
    repo = calc_repo(tmp_path)
    with FakeAnthropic(Lanes(fixes_with_a_test(), fixes_with_a_test(), fixes_with_a_test())) as api:
        result = subprocess.run(
            fix_args(
                repo, "--attempts", "3", "--parallel", "1", "--max-cost", "0.000003", "--format", "json"
            ),
            env=agent_env(api, sandbox_image),
            capture_output=True,
            text=True,
            timeout=300,
        )
        conversations = sum(1 for r in api.requests if len(r.body["messages"]) == 1)
    run_dir = the_run(repo)
    selection = json.loads((run_dir / "selection.json").read_text())
    assert conversations == 1  # the first attempt spent the budget; no other attempt reached the API
    assert [a["attempt"] for a in selection["attempts"]] == [1]
    assert selection["not_started"] == [
        {"attempt": 2, "why": "--max-cost spent"},
        {"attempt": 3, "why": "--max-cost spent"},
    ]
    assert selection["attempts"][0]["status"] == "max_cost" and result.returncode == 3, result.stderr
    assert not (run_dir / "attempt-2").exists()


def test_a_killed_attempt_leaves_the_others_intact(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = calc_repo(tmp_path)
    with FakeAnthropic(Lanes(sleeps(), fixes_with_a_test())) as api:
        proc = subprocess.Popen(
            fix_args(repo, "--attempts", "2", "--parallel", "2", "--format", "json"),
            env=agent_env(api, sandbox_image),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sleeper = wait_for_sleeper(repo)
        run_id = f"{sleeper.parent.name}-a{sleeper.name.split('-')[1]}"
        assert settled_on(lambda: containers_of(docker_client, run_id))  # its sandbox is up
        pid = json.loads((sleeper / "process.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run_dir = the_run(repo)
    selection = json.loads((run_dir / "selection.json").read_text())
    by_number = {a["attempt"]: a for a in selection["attempts"]}
    killed = int(sleeper.name.split("-")[1])
    other = 3 - killed
    assert by_number[killed]["status"] == "killed" and "SIGKILL" in by_number[killed]["error"]
    assert by_number[other]["verdict"] == "fixed" and selection["chosen"] == other
    assert (run_dir / "patch.diff").read_bytes() == (run_dir / f"attempt-{other}" / "patch.diff").read_bytes()
    assert settled(lambda: containers_of(docker_client, json.loads(out)["run_id"])) == []


def settled_on(probe: Any, timeout: float = 60) -> Any:
    """The first truthy value of `probe()` within `timeout` seconds, else the last one."""
    deadline = time.monotonic() + timeout
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def wait_for_sleeper(repo: Path, timeout: float = 120) -> Path:
    """The attempt folder whose model is running `sleep 120` (its trajectory says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trajectory in (repo / ".patchwright" / "runs").glob("*/attempt-*/trajectory.jsonl"):
            if '"sleep 120"' in trajectory.read_text() and "tool_call" in trajectory.read_text():
                time.sleep(1.0)  # the command is running in the sandbox now
                return trajectory.parent
        time.sleep(0.2)
    raise AssertionError("no attempt started sleeping")


def test_until_fixed_starts_no_attempt_after_a_fixed_one(tmp_path: Path, sandbox_image: str) -> None:
    repo = calc_repo(tmp_path)
    with FakeAnthropic(Lanes(breaks_the_build(), fixes_with_a_test(), fixes_with_a_test())) as api:
        result = subprocess.run(
            fix_args(repo, "--attempts", "3", "--parallel", "1", "--until-fixed", "--format", "json"),
            env=agent_env(api, sandbox_image),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    selection = json.loads((the_run(repo) / "selection.json").read_text())
    assert [(a["attempt"], a["verdict"]) for a in selection["attempts"]] == [(1, "regressed"), (2, "fixed")]
    assert selection["not_started"] == [{"attempt": 3, "why": "--until-fixed: attempt 2 is fixed"}]
    assert selection["chosen"] == 2 and selection["cross_validation"] == []


def test_each_attempt_gets_a_share_of_what_is_neither_spent_nor_reserved(tmp_path: Path) -> None:
    from patchwright.attempts import AttemptRun, Running
    from patchwright.config import Settings
    from patchwright.display import make_display
    from patchwright.fixer import FixRequest
    from patchwright.selection import AttemptResult
    from patchwright.workspace import open_workspace

    repo = calc_repo(tmp_path)
    request = FixRequest("t", repo, Settings(max_cost=1.0, attempts=4))
    run = AttemptRun(
        request,
        make_display("text", True, False, True),
        open_workspace(repo),
        "r",
        tmp_path,
        TEST_CMD,
        (),
        "claude-sonnet-5-5",
    )
    finished = [AttemptResult(1, "f", "completed", 0, cost_usd=0.3)]
    running = {2: Running(2, None, 0.2)}  # type: ignore[arg-type]
    assert run.budget(finished, running, left=2) == pytest.approx(0.25)
    assert run.budget([AttemptResult(1, "f", "max_cost", 3, cost_usd=1.01)], {}, left=3) < 0
    unbounded = dataclasses.replace(run, request=FixRequest("t", repo, Settings()))
    assert unbounded.budget(finished, running, left=2) is None


def test_an_attempt_that_left_no_summary_is_crashed_and_unverified(tmp_path: Path) -> None:
    from patchwright.attempts import AttemptRun
    from patchwright.config import Settings
    from patchwright.display import make_display
    from patchwright.fixer import FixRequest
    from patchwright.workspace import open_workspace

    repo = calc_repo(tmp_path)
    run_dir = tmp_path / "run"
    (run_dir / "attempt-1").mkdir(parents=True)
    (run_dir / "attempt-1" / "patch.diff").write_text("diff --git a/x b/x\n")
    run = AttemptRun(
        FixRequest("t", repo, Settings()),
        make_display("text", True, False, True),
        open_workspace(repo),
        "r",
        run_dir,
        TEST_CMD,
        (),
        "claude-sonnet-5-5",
    )
    response = {"event": "response", "usage": {"input_tokens": 1_000_000, "output_tokens": 0}}
    (run_dir / "attempt-1" / "trajectory.jsonl").write_text(json.dumps(response) + "\n" + '{"half a line')
    result = run.result(1, 4)
    assert result.status == "crashed" and result.verdict is None and result.patch_bytes > 0
    assert result.key()[0] == 5  # ranked below every verdict
    assert result.cost_usd == pytest.approx(2.0)  # what its replies cost counts against --max-cost


def fixes_with_a_test_and_a_comment() -> list[Any]:
    return [
        create("tests/test_add.py", ADD_TEST),
        replace("return a - b", "# the sum, not the difference\n    return a + b"),
        message(text("fixed, with a test")),
    ]


def test_judge_picks_among_tied_fixed_attempts_and_its_reasoning_is_kept(
    tmp_path: Path, sandbox_image: str
) -> None:
    repo = calc_repo(tmp_path)
    verdict = "Attempt 2 documents why.\nCHOICE: 2"
    lanes = Lanes(fixes_with_a_test(), fixes_with_a_test_and_a_comment(), [message(text(verdict))])
    with FakeAnthropic(lanes) as api:
        result = subprocess.run(
            fix_args(repo, "--attempts", "2", "--parallel", "1", "--judge", "--format", "json"),
            env=agent_env(api, sandbox_image),
            capture_output=True,
            text=True,
            timeout=600,
        )
        judged = api.requests[-1].body
    assert result.returncode == 0, result.stderr
    selection = json.loads((the_run(repo) / "selection.json").read_text())
    # both fixed, each passes the other's test: tied on every rule; by size attempt 1 would win
    assert [a["cross_validation"]["passed"] for a in selection["attempts"]] == [[2], [1]]
    assert selection["attempts"][0]["patch_bytes"] < selection["attempts"][1]["patch_bytes"]
    assert selection["judge"]["candidates"] == [1, 2] and selection["judge"]["choice"] == 2
    assert "documents why" in selection["judge"]["reasoning"] and selection["judge"]["cost_usd"] > 0
    assert selection["chosen"] == 2 and "<task>\nadd is wrong\n</task>" in judged["messages"][0]["content"]
    summary = json.loads(result.stdout)
    assert (
        summary["cost_usd"] == selection["total_cost_usd"] > sum(a["cost_usd"] for a in selection["attempts"])
    )


def test_sigterm_stops_every_attempt_and_still_writes_the_selection(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = calc_repo(tmp_path)
    with FakeAnthropic(Lanes(sleeps(), sleeps())) as api:
        proc = subprocess.Popen(
            fix_args(repo, "--attempts", "2", "--parallel", "2", "--format", "json"),
            env=agent_env(api, sandbox_image),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_sleepers(repo, 2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["status"] == "interrupted"
    selection = json.loads((the_run(repo) / "selection.json").read_text())
    assert [a["status"] for a in selection["attempts"]] == ["interrupted", "interrupted"]
    assert settled(lambda: containers_of(docker_client, summary["run_id"])) == []


def wait_for_sleepers(repo: Path, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            t
            for t in (repo / ".patchwright" / "runs").glob("*/attempt-*/trajectory.jsonl")
            if '"sleep 120"' in t.read_text()
        ]
        if len(found) == count:
            time.sleep(1.0)
            return
        time.sleep(0.2)
    raise AssertionError(f"{count} attempts did not start sleeping")
