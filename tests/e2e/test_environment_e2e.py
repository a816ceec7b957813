"""The environment phase as a user meets it: `agent fix` as a subprocess, the real SDK against the
fake API, real Docker. A setup that fails is repaired by the (scripted) model with the network on,
its recipe recorded and verification started from its state, and the task then runs offline;
a suite that cannot run ends with exit 5 and says why, without the self-check sending it back."""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from agentrun import EDITOR, agent_env, edit_then, run_agent
from fakeapi import FakeAnthropic, RecordedRequest, last_tool_results, message, text, tool_use
from helpers import make_repo

pytestmark = pytest.mark.docker

NET = "cat /proc/net/dev"
SITE = '"$(python3 -m site --user-site)"'
INSTALL = f"mkdir -p {SITE} && cp vendor/helperlib.py {SITE}/"


def project(root: Path, dependency: str) -> Path:
    return make_repo(
        root,
        {
            "app.py": "def add(a, b):\n    return a - b\n",
            "test_app.py": f"import {dependency}\nfrom app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
            "vendor/helperlib.py": "VERSION = 1\n",
            "README.md": "Install: copy vendor/helperlib.py onto the Python path.\n",
        },
    )


def run_twice(
    tmp_path: Path, replies: list[Any], image: str, repo: Path, setup: str, *extra: str
) -> tuple[
    CompletedProcess[str], CompletedProcess[str], str, list[dict[str, Any]], list[list[dict[str, Any]]]
]:
    """`agent fix` twice on the same tree, state reuse on (--snapshots, a cache of the test's own):
    both results, the text of the second run's first tool result, each run's summary and setup events."""
    with FakeAnthropic(replies) as api:
        env = agent_env(api, image, XDG_CACHE_HOME=str(tmp_path / "cache"), PATCHWRIGHT_MAX_CONTINUES="0")
        args = ["fix", "x", "--repo", str(repo), "--setup", setup, "--test-cmd", "python3 -m pytest -q"]
        first = run_agent([*args, *extra, "--snapshots"], env)
        second = run_agent([*args, *extra, "--snapshots"], env)
        seen = last_tool_results(api.requests[2])[0]["text"]
    runs = sorted((repo / ".patchwright" / "runs").iterdir())
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    setups = [
        [
            r
            for r in map(json.loads, (run / "trajectory.jsonl").read_text().splitlines())
            if r["event"] == "setup"
        ]
        for run in runs
    ]
    return first, second, seen, summaries, setups


def test_a_failed_setup_is_repaired_recorded_and_the_task_runs_offline(
    tmp_path: Path, sandbox_image: str
) -> None:
    repo = project(tmp_path / "svc", "helperlib")
    replies = [
        # the repair phase
        message(text("Reading the README."), tool_use("setup_command", {"command": "cat README.md"})),
        message(tool_use("setup_command", {"command": NET})),
        message(tool_use("setup_command", {"command": INSTALL})),
        message(text("Installed helperlib for this user.")),
        # the task
        message(tool_use("bash", {"command": NET})),
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
        message(text("Fixed add.")),
    ]
    seen: list[list[dict[str, Any]]] = []

    def script(request: RecordedRequest, index: int) -> Any:
        seen.append(last_tool_results(request) if index else [])
        return replies[index]

    with FakeAnthropic(script) as api:
        result = run_agent(
            [
                "fix",
                "add is wrong",
                "--repo",
                str(repo),
                "--setup",
                "./scripts/bootstrap.sh",
                "--test-cmd",
                "python3 -m pytest -q -p no:cacheprovider",
            ],
            agent_env(api, sandbox_image),
        )
        tools_in_repair = [t["name"] for t in api.requests[0].body["tools"]]
        repair_system = json.dumps(api.requests[0].body["system"])
    assert result.returncode == 0, result.stderr
    (run_dir,) = (repo / ".patchwright" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    environment = summary["environment"]
    assert environment["tests_runnable"] is True and environment["recipe"] == [INSTALL]
    assert environment["setup_line"] == INSTALL and environment["repair"]["steps"] == 4
    assert tools_in_repair == ["setup_command"] and "do not change the project's source code" in repair_system
    during, after = seen[2][0]["text"], seen[5][0]["text"]
    assert "eth0" in during  # the repair had the setup's network
    assert "eth0" not in after and "lo:" in after  # the task had none
    assert summary["verified"] is True and summary["tests"]["from_setup_state"] is True
    shown = result.stdout + result.stderr  # the last lines, as a user reads them
    assert "setup recipe: " + INSTALL in shown and "setup repair: 4 steps" in shown
    assert "setup = " + json.dumps(INSTALL) in shown
    repair_log = [json.loads(line) for line in (run_dir / "setup-repair.jsonl").read_text().splitlines()]
    assert [r["input"]["command"] for r in repair_log if r["event"] == "tool_call"] == [
        "cat README.md",
        NET,
        INSTALL,
    ]


def test_tests_that_cannot_run_end_with_exit_5_and_no_self_check(tmp_path: Path, sandbox_image: str) -> None:
    repo = project(tmp_path / "svc", "nosuchpkg_xyz")
    replies = [
        message(text("nosuchpkg_xyz is on no registry I can reach; it cannot be installed here.")),  # repair
        *edit_then(message(text("I could not run the tests; this change is untested."))),  # the task
    ]
    with FakeAnthropic(replies) as api:
        result = run_agent(
            [
                "fix",
                "add is wrong",
                "--repo",
                str(repo),
                "--test-cmd",
                "python3 -m pytest -q",
            ],
            agent_env(api, sandbox_image, PATCHWRIGHT_REPAIR_STEPS="3"),
        )
        requests = len(api.requests)
        task_system = json.dumps(api.requests[1].body["system"])
    assert result.returncode == 5, result.stderr
    (run_dir,) = (repo / ".patchwright" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "environment" and summary["exit_code"] == 5
    environment = summary["environment"]
    assert environment["tests_runnable"] is False and environment["cause"] == "missing_module"
    assert "No module named 'nosuchpkg_xyz'" in environment["reason"]
    assert any("--setup" in hint for hint in environment["hints"]) and environment["recipe"] == []
    assert requests == 3  # one repair turn, two task turns: the self-check sent nothing back
    # the patch is kept, and its verdict comes from the environment phase's run on the original code
    assert (run_dir / "patch.diff").read_text().count("+    return a + b") == 1
    assert summary["verified"] is False
    assert summary["verification"]["verdict"] == "tests_not_runnable"
    assert "No module named 'nosuchpkg_xyz'" in summary["verification"]["reason"]
    assert "cannot run in this sandbox" in task_system  # the task's model knew
    shown = result.stdout + result.stderr
    assert "status: environment (exit 5)" in shown and "tests: could not run: " in shown
    assert "try --image IMAGE" in shown


def test_a_second_run_on_the_same_tree_starts_from_the_kept_state(tmp_path: Path, sandbox_image: str) -> None:
    repo = project(tmp_path / "svc", "helperlib")
    setup = f"{INSTALL} && echo installed-once"
    replies = [
        message(text("Nothing to change.")),  # the first run
        message(
            tool_use(
                "bash",
                {"command": "python3 -m pytest -q 2>&1 | tail -1; ls /proc/net/dev && cat /proc/net/dev"},
            )
        ),
        message(text("Nothing to change.")),
    ]
    first, second, seen, summaries, setups = run_twice(tmp_path, replies, sandbox_image, repo, setup)
    assert (first.returncode, second.returncode) == (1, 1), second.stderr  # the tests ran (and fail)
    assert len(setups[0]) == 1 and setups[1] == []  # the second run installed nothing
    assert summaries[0]["environment"]["reused"] is None
    assert summaries[1]["environment"]["reused"] and summaries[1]["environment"]["recipe"] == [setup]
    assert "no setup, no installs" in second.stdout + second.stderr
    assert "1 failed" in seen and "eth0" not in seen  # the installs are there, the network is not


def test_with_a_service_the_kept_state_is_reused_and_setup_fills_the_fresh_database(
    tmp_path: Path, sandbox_image: str, services_image: str
) -> None:
    """The installs are kept; the database is not (each sandbox gets an empty one), so setup runs
    again over the kept files, finds its installs done, and seeds the database again. Verification
    starts from the kept state the same way."""
    repo = make_repo(
        tmp_path / "seeded",
        {
            "app.py": "def add(a, b):\n    return a - b\n",
            "test_app.py": (
                "import subprocess\nimport helperlib\nfrom app import add\n\n\n"
                "def test_seeded():\n"
                "    out = subprocess.run(['redis-cli', 'get', 'seeded'], capture_output=True, text=True)\n"
                "    assert out.stdout.strip() == 'yes'\n\n\n"
                "def test_add():\n    assert add(2, 3) == 5\n"
            ),
            "vendor/helperlib.py": "VERSION = 1\n",
        },
    )
    installed = f"{SITE}/helperlib.py"
    setup = (
        f"(test -f {installed} && echo install-found-done || ({INSTALL} && echo install-ran))"
        " && redis-cli set seeded yes"
    )
    replies = [
        message(text("Nothing to change.")),  # the first run
        message(tool_use("bash", {"command": "python3 -m pytest -q 2>&1 | tail -1"})),  # the second
        *edit_then(message(text("Fixed add."))),
    ]
    first, second, seen, summaries, setups = run_twice(
        tmp_path, replies, sandbox_image, repo, setup, "--service", "redis"
    )
    assert first.returncode == 1, first.stderr  # the tests ran, and test_add fails
    assert second.returncode == 0, second.stderr
    outputs = [[r["output"] for r in run] for run in setups]
    assert "install-ran" in outputs[0][0]
    assert len(outputs[1]) == 1 and "install-found-done" in outputs[1][0]  # kept installs, setup again
    assert summaries[0]["environment"]["reused"] is None and summaries[1]["environment"]["reused"]
    assert "setup runs again for the empty databases" in second.stderr
    assert "1 failed, 1 passed" in seen  # the fresh database was seeded again before the model's turn
    # verification's two sandboxes start from the kept state and seed their own databases
    verification = summaries[1]["verification"]
    assert verification["verdict"] == "fixed", verification
    assert verification["FAIL_TO_PASS"] == ["test_app.py::test_add"]
    assert verification["PASS_TO_PASS"] == ["test_app.py::test_seeded"]
