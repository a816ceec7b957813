"""environment/manifests.py: install and test commands from lockfiles and manifests."""

from __future__ import annotations

import json
from pathlib import Path

from patchwright.environment.files import RepoFiles
from patchwright.environment.manifests import plans_for


def files_of(tmp_path: Path, files: dict[str, str]) -> RepoFiles:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RepoFiles(tmp_path)


def only(tmp_path: Path, files: dict[str, str], folder: str = "") -> tuple[list[str], str | None, list[str]]:
    plans = plans_for(files_of(tmp_path, files), folder)
    assert len(plans) == 1, plans
    return plans[0].install, plans[0].test_cmd, [t.tool for t in plans[0].tools]


PYPROJECT = '[project]\nname = "x"\nrequires-python = ">=3.10"\n[project.optional-dependencies]\ntest = ["pytest"]\ndocs = ["sphinx"]\n'


def test_python_lockfiles_name_their_tool(tmp_path: Path) -> None:
    assert only(tmp_path / "uv", {"pyproject.toml": PYPROJECT, "uv.lock": ""}) == (
        ["uv sync --frozen --all-extras"],
        "uv run python -m pytest -q",
        ["uv"],
    )
    install, test, tools = only(tmp_path / "poetry", {"pyproject.toml": PYPROJECT, "poetry.lock": ""})
    assert install == ["poetry config virtualenvs.in-project true && poetry install --no-interaction -E test"]
    assert (test, tools) == ("poetry run python -m pytest -q", ["poetry"])
    assert only(tmp_path / "pdm", {"pyproject.toml": PYPROJECT, "pdm.lock": ""})[2] == ["pdm"]
    assert only(tmp_path / "pipenv", {"Pipfile": "", "Pipfile.lock": "{}", "test_x.py": ""})[0] == [
        "pipenv sync --dev"
    ]


def test_pyproject_test_extras_and_dependency_groups(tmp_path: Path) -> None:
    groups = '[dependency-groups]\ntest = ["pytest>=8", {include-group = "lint"}]\nlint = ["ruff"]\n'
    install, test, _ = only(tmp_path, {"pyproject.toml": PYPROJECT + groups})
    assert install == ["python3 -m pip install -q -e '.[test]'", "python3 -m pip install -q 'pytest>=8' ruff"]
    assert test == "python3 -m pytest -q"


def test_a_requirements_folder_prefers_the_test_file_that_includes_the_base(tmp_path: Path) -> None:
    files = {
        "requirements/base.txt": "django\n",
        "requirements/local.txt": "-r base.txt\npytest-django\n",
        "requirements/production.txt": "-r base.txt\ngunicorn\n",
        "manage.py": "",
    }
    install, test, _ = only(tmp_path / "a", files)
    assert install == ["python3 -m pip install -q -r requirements/local.txt"]
    assert test == "python3 -m pytest -q"  # pytest-django: the project tests with pytest
    files["requirements/local.txt"] = "ipython\n"  # no -r: the base file comes too
    files["requirements/base.txt"] = "django\n"
    install, test, _ = only(tmp_path / "b", files)
    assert install == ["python3 -m pip install -q -r requirements/base.txt -r requirements/local.txt"]
    assert test == "python3 manage.py test"  # Django with no sign of pytest


def test_node_lockfiles(tmp_path: Path) -> None:
    package = json.dumps({"scripts": {"test": "jest"}})
    assert only(tmp_path / "npm", {"package.json": package, "package-lock.json": "{}"}) == (
        ["npm ci --no-fund --no-audit"],
        "npm test",
        [],
    )
    assert only(tmp_path / "yarn", {"package.json": package, "yarn.lock": "# yarn lockfile v1\n"}) == (
        ["yarn install --frozen-lockfile"],
        "yarn test",
        ["yarn"],
    )
    berry = only(tmp_path / "berry", {"package.json": package, "yarn.lock": "__metadata:\n  version: 6\n"})
    assert berry[0] == ["yarn install --immutable"]
    pnpm = json.dumps({"scripts": {"test": "vitest"}, "packageManager": "pnpm@8.15.4+sha256.abc"})
    plans = plans_for(files_of(tmp_path / "pnpm", {"package.json": pnpm, "pnpm-lock.yaml": ""}), "")
    assert plans[0].install == ["pnpm install --frozen-lockfile"]
    assert [(t.tool, t.version) for t in plans[0].tools] == [("pnpm", "8.15.4")]
    assert only(tmp_path / "bun", {"package.json": package, "bun.lockb": ""})[0] == [
        "bun install --frozen-lockfile"
    ]
    placeholder = json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})
    assert only(tmp_path / "none", {"package.json": placeholder})[1] is None


def test_go_rust_ruby(tmp_path: Path) -> None:
    assert only(tmp_path / "go", {"go.mod": "module x\n\ngo 1.22\n"})[:2] == (
        ["go mod download"],
        "go test ./...",
    )
    assert only(tmp_path / "rs", {"Cargo.toml": "", "Cargo.lock": ""})[:2] == (
        ["cargo fetch --locked"],
        "cargo test",
    )
    assert only(tmp_path / "rb", {"Gemfile": "", "Gemfile.lock": "", ".rspec": ""})[1] == "bundle exec rspec"


def test_a_folder_with_nothing_python_has_no_python_plan(tmp_path: Path) -> None:
    assert plans_for(files_of(tmp_path, {"README.md": "hi"}), "") == []


def test_bare_python_tests_are_found_in_a_test_tree_but_not_in_other_languages_tests(tmp_path: Path) -> None:
    nested = files_of(tmp_path / "py", {"tests/unit/test_a.py": "def test_a():\n    pass\n"})
    assert [p.test_cmd for p in plans_for(nested, "")] == ["python3 -m pytest -q"]
    other = files_of(
        tmp_path / "js", {"tests/e2e/login.spec.ts": "it('x', () => {})\n", "tests/unit/a.go": ""}
    )
    assert plans_for(other, "") == []


def test_a_root_tests_module_is_named_to_the_runner(tmp_path: Path) -> None:
    """pytest's default pattern misses a root tests.py: unittest runs it, or pytest when the
    project uses pytest; a test_*.py beside it keeps the plain pytest command."""
    files = {"requirements.txt": "flask\n", "tests.py": "import unittest\n", "app/__init__.py": ""}
    assert only(tmp_path / "a", files)[1] == "python3 -m unittest -v tests"
    files["requirements.txt"] = "flask\npytest\n"
    assert only(tmp_path / "b", files)[1] == "python3 -m pytest -q tests.py"
    files["test_app.py"] = "def test_x():\n    pass\n"
    assert only(tmp_path / "c", files)[1] == "python3 -m pytest -q"
