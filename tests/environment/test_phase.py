"""The environment phase on the local backend: probe, repair when the tests cannot start, the
recipe, the window closed; the repairer here is a script, the model's loop is in the e2e tests."""

from __future__ import annotations

from pathlib import Path

from patchwright.environment.phase import Plan, prepare_environment
from patchwright.environment.repair import Attempted, RepairOutcome
from patchwright.sandbox.base import Sandbox
from patchwright.sandbox.local import LocalSandbox
from patchwright.workspace import open_workspace

from helpers import diff_text, make_repo

TEST = "test -f installed.flag && echo '1 passed' || { echo 'bash: runner: command not found'; exit 127; }"


def box(tmp_path: Path, setup: str | None) -> LocalSandbox:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", ".gitignore": "installed.flag\n"})
    return LocalSandbox(open_workspace(repo), tmp_path / "root", setup_command=setup, setup_repairable=True)


def installer(commands: list[str]) -> object:
    def repair(sandbox: Sandbox, test_command: str, problem: str) -> RepairOutcome:
        installer.problem = problem  # type: ignore[attr-defined]
        done = [Attempted(c, sandbox.setup_run(c).exit_code) for c in commands]
        return RepairOutcome(tuple(done), steps=len(commands) + 1, cost_usd=0.01, status="completed")

    return repair


def test_runnable_tests_need_no_repair(tmp_path: Path) -> None:
    sandbox = box(tmp_path, "touch installed.flag")
    try:
        env = prepare_environment(
            sandbox, sandbox.start(), Plan("touch installed.flag", TEST, 20), None, print
        )
        assert env.tests_runnable and env.recipe == ["touch installed.flag"] and env.repair is None
        assert env.as_dict()["setup_line"] == "touch installed.flag" and env.hints == []
        sandbox.run("echo b > b.txt")
        assert "b.txt" in diff_text(sandbox) and "installed.flag" not in diff_text(sandbox)
    finally:
        sandbox.stop()


def test_a_failed_setup_is_repaired_and_the_recipe_replaces_it(tmp_path: Path) -> None:
    sandbox = box(tmp_path, "echo 'error: no such script' >&2; exit 2")
    repair = installer(["cat a.txt", "touch installed.flag"])
    try:
        env = prepare_environment(sandbox, sandbox.start(), Plan("./bootstrap", TEST, 20), repair, print)  # type: ignore[arg-type]
        assert env.tests_runnable and not env.setup_failed
        assert env.recipe == ["touch installed.flag"] and env.setup_line == "touch installed.flag"
        assert env.setup_error == ["error: no such script"]
        assert "the setup command exited with 2: error: no such script" in installer.problem  # type: ignore[attr-defined]
        assert env.as_dict()["repair"] == {"steps": 3, "cost_usd": 0.01, "status": "completed", "commands": 2}
    finally:
        sandbox.stop()


def test_tests_that_still_cannot_run_say_why_and_what_to_try(tmp_path: Path) -> None:
    sandbox = box(tmp_path, None)
    try:
        env = prepare_environment(sandbox, sandbox.start(), Plan(None, TEST, 20), installer(["true"]), print)  # type: ignore[arg-type]
        assert not env.tests_runnable and env.cause == "command_not_found"
        assert env.reason == "command not found: runner" and env.recipe == []
        assert [hint.split()[0] for hint in env.hints] == ["--setup", "--image", "--test-cmd"]
    finally:
        sandbox.stop()


def test_a_failed_setup_without_repair_stays_failed(tmp_path: Path) -> None:
    sandbox = box(tmp_path, "exit 4")
    try:
        env = prepare_environment(sandbox, sandbox.start(), Plan("exit 4", TEST, 20), None, print)
        assert env.setup_failed and not env.tests_runnable and env.cause == "setup_failed"
    finally:
        sandbox.stop()


def test_a_plain_pytest_command_is_probed_by_collecting_only(tmp_path: Path) -> None:
    """A suite that would hang (a server it waits for) does not hold the model's first turn, and a
    package missing at import is still found, by collection alone."""
    repo = make_repo(
        tmp_path / "repo",
        {
            "test_slow.py": "import time\n\n\ndef test_waits():\n    time.sleep(60)\n",
            "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n",
        },
    )
    sandbox = LocalSandbox(open_workspace(repo), tmp_path / "root", setup_repairable=True)
    command = "python3 -m pytest -q"
    try:
        env = prepare_environment(sandbox, sandbox.start(), Plan(None, command, 20), None, print)
        assert env.tests_runnable and env.reason == "pytest collected 1 test (collection only)", env.reason
    finally:
        sandbox.stop()
    (repo / "test_missing.py").write_text("import no_such_package_here\n\n\ndef test_x():\n    pass\n")
    sandbox = LocalSandbox(open_workspace(repo), tmp_path / "root2", setup_repairable=True)
    try:
        env = prepare_environment(sandbox, sandbox.start(), Plan(None, command, 20), None, print)
        assert not env.tests_runnable and env.cause == "missing_module"
        assert "no_such_package_here" in str(env.reason)
    finally:
        sandbox.stop()
