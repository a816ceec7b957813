"""The example projects fail their own test suites as shipped and pass after the known fix.

Each example is copied to a temporary directory (it must be self-contained),
its test command is run on this host, the edits from ``example_fixes`` are
applied as exact string replacements, and the command is run again.
"""

import ast
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from example_fixes import EXAMPLES, REPO_ROOT, Edit, ExampleFix

MAX_CHANGED_LINES = 10
COPY_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", "node_modules", "*.db"
)
# A line that reports a failed test: pytest's summary, TAP, node's spec reporter.
FAILED_MARKERS = ("FAILED", "not ok", "✖")

by_name = pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    seconds: float


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv[0] == "python3":  # the sandbox's python3; here, the interpreter running this suite
        return [sys.executable, *argv[1:]]
    tool = shutil.which(argv[0])
    if tool is None:
        pytest.skip(f"{argv[0]} is not installed on this host")
    return [tool, *argv[1:]]


def _env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "NODE_TEST"))
        and key not in {"PYTHONPATH", "FORCE_COLOR", "PY_COLORS"}
    }
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        NO_COLOR="1",
        npm_config_update_notifier="false",
        # The sandbox has a bare pytest; this host's plugins would only slow the examples down.
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    return env


def _run(example: ExampleFix, project: Path) -> Run:
    start = time.monotonic()
    proc = subprocess.run(
        _argv(example.test_command),
        cwd=project,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start)


def _apply(project: Path, edits: tuple[Edit, ...]) -> None:
    for edit in edits:
        path = project / edit.file
        text = path.read_text()
        assert text.count(edit.old) == 1, f"{edit.file}: old text must occur exactly once"
        path.write_text(text.replace(edit.old, edit.new))


def _failed_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(marker in line for marker in FAILED_MARKERS)]


def _changed_lines(edit: Edit) -> int:
    diff = list(difflib.ndiff(edit.old.splitlines(), edit.new.splitlines()))
    return max(sum(line.startswith("- ") for line in diff), sum(line.startswith("+ ") for line in diff))


def _project_files(root: Path, suffix: str) -> list[Path]:
    skip = {"__pycache__", ".pytest_cache", "node_modules"}
    return [path for path in root.rglob(f"*{suffix}") if skip.isdisjoint(path.relative_to(root).parts)]


@by_name
def test_example_fails_before_and_passes_after_its_fix(example: ExampleFix, tmp_path: Path) -> None:
    project = tmp_path / example.name
    shutil.copytree(example.source_dir, project, ignore=COPY_IGNORE)

    before = _run(example, project)
    assert before.returncode != 0, f"suite passes before the fix:\n{before.output}"
    assert any(example.failing_test_hint in line for line in _failed_lines(before.output)), before.output

    _apply(project, example.edits)

    after = _run(example, project)
    assert after.returncode == 0, f"suite still fails after the fix:\n{after.output}"
    assert re.search(r"\b[1-9]\d* passed\b|^(?:# |ℹ )pass [1-9]", after.output, re.MULTILINE), after.output
    assert not _failed_lines(after.output), after.output


@by_name
def test_example_fix_is_a_small_exact_str_replace(example: ExampleFix) -> None:
    assert example.source_dir.is_dir()
    assert example.path.startswith("examples/")
    assert "\n" not in example.task
    assert 1 <= len(example.edits) <= 2
    assert len({edit.file for edit in example.edits}) == 1, "the fix touches one file"
    for edit in example.edits:
        assert edit.old != edit.new
        assert (example.source_dir / edit.file).read_text().count(edit.old) == 1, edit.file
        assert 1 <= _changed_lines(edit) <= MAX_CHANGED_LINES
    tests_text = "".join(
        path.read_text()
        for suffix in (".py", ".js")
        for path in _project_files(example.source_dir, suffix)
        if "test" in path.name
    )
    assert example.failing_test_hint in tests_text, "the hint names a test of the example"


@by_name
def test_example_has_no_third_party_dependencies(example: ExampleFix) -> None:
    root = example.source_dir
    if (root / "package.json").exists():
        package = json.loads((root / "package.json").read_text())
        assert package["scripts"]["test"] == "node --test"
        assert not package.get("dependencies") and not package.get("devDependencies")
        for path in _project_files(root, ".js"):
            for module in re.findall(r"require\(\s*['\"]([^'\"]+)['\"]\s*\)", path.read_text()):
                assert module.startswith(("node:", "./", "../")), f"{path.name} requires {module}"
        return

    local = {path.parent.name for path in root.glob("*/__init__.py")}
    allowed = set(sys.stdlib_module_names) | local | {"pytest"}
    for path in _project_files(root, ".py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.relative_to(root)} imports {name}"


def test_outer_test_run_does_not_collect_the_examples() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    testpaths = config["tool"]["pytest"]["ini_options"]["testpaths"]
    examples = REPO_ROOT / "examples"
    assert not any((REPO_ROOT / p).resolve().is_relative_to(examples) for p in testpaths)

    # Even when pointed at examples/ explicitly, examples/conftest.py ignores everything.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "examples"],
        cwd=REPO_ROOT,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, proc.stdout + proc.stderr
