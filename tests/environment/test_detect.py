"""environment/detect.py: the recipe, on the real-world-shaped projects in tests/environment/projects."""

from __future__ import annotations

import json
from pathlib import Path

from patchwright.environment.detect import detect, setup_script
from patchwright.environment.report import environment_report

PROJECTS = Path(__file__).parent / "projects"


def test_django_postgres_follows_its_ci_job() -> None:
    recipe = detect(PROJECTS / "django_postgres", "db connection errors", ["postgres"])
    assert recipe.setup == ["python -m pip install --upgrade pip\npip install -r requirements/local.txt"]
    assert recipe.test_cmd == "pytest"
    assert recipe.env["DJANGO_SETTINGS_MODULE"] == "config.settings"
    assert "SENTRY_DSN" not in recipe.env  # set from a secret in CI: left out, with a note
    assert recipe.test_command is not None and recipe.test_command.startswith("export DATABASE_URL=")
    assert [s.describe() for s in recipe.sources][:2] == [
        "test: .github/workflows/ci.yml job `test`",
        "setup: .github/workflows/ci.yml job `test`",
    ]
    script = setup_script(recipe)
    assert script is not None and "sudo" not in script and "ruff" not in script


def test_express_yarn_and_nvmrc() -> None:
    recipe = detect(PROJECTS / "express_postgres")
    assert recipe.setup == ["yarn install --frozen-lockfile"]
    assert recipe.test_command == "yarn test"
    assert {(r.tool, r.version) for r in recipe.requirements} == {("node", "20"), ("yarn", "")}
    script = setup_script(recipe) or ""
    assert "node@20" in script and "yarn" in script
    assert recipe.notes == []  # the lockfile is only peeked at, never refused for its size


def test_the_monorepo_backend_is_chosen_over_the_root_script() -> None:
    recipe = detect(PROJECTS / "monorepo", "prices are wrong")
    assert recipe.workdir == "backend"
    assert recipe.test_command == "cd backend && python3 -m pytest -q"
    assert recipe.setup == ["cd backend && python3 -m pip install -q -e '.[test]'"]
    assert any(s.what == "workdir" for s in recipe.sources)


def test_the_task_can_point_at_another_sub_project(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for folder in ("api", "web"):
        (root / folder / "tests").mkdir(parents=True)
    (root / "api" / "requirements.txt").write_text("flask\n")
    (root / "api" / "tests" / "test_a.py").write_text("")
    (root / "web" / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    (root / "web" / "tests" / "a.test.js").write_text("")
    assert detect(root, "the web checkout button").workdir == "web"
    assert detect(root, "api returns 500", ["postgres"]).workdir == "api"


def test_a_python_version_the_image_lacks_is_a_hard_requirement() -> None:
    recipe = detect(PROJECTS / "python314")
    assert [(r.tool, r.version, r.soft) for r in recipe.requirements] == [("python", ">=3.14", False)]


def test_the_report_says_which_source_was_used() -> None:
    recipe = detect(PROJECTS / "monorepo")
    found = environment_report(recipe, setup_script(recipe), recipe.test_command, True)
    assert found["sources"][:2] == ["test: backend/pyproject.toml", "setup: backend/pyproject.toml"]
    assert found["workdir"] == "backend" and found["test_cmd"] == recipe.test_command
    given = environment_report(recipe, "make deps", "make check", False)
    assert given["sources"][:2] == [
        "test: the user's settings (--test-cmd / config `test_cmd`)",
        "setup: the user's settings (--setup / config `setup`)",
    ]
    assert given["requirements"] == []


def test_nothing_to_do_is_no_setup(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi\n")
    recipe = detect(tmp_path)
    assert recipe.test_command is None and setup_script(recipe) is None


def test_a_bare_folder_of_tests_names_what_it_was_found_by(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "test_app.py").write_text("def test_a():\n    pass\n")
    recipe = detect(tmp_path)
    assert recipe.test_command is not None and "pytest" in recipe.test_command
    sources = recipe.as_dict()["sources"]
    assert sources and all(s.split(":", 1)[1].strip() for s in sources), sources  # no empty source


def test_a_committed_env_sample_becomes_the_env_file_first(tmp_path: Path) -> None:
    """An Express project's suites all stopped at `"JWT_SECRET" is required`: its README's first
    step, `cp .env.example .env`, had not been taken."""
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    (tmp_path / ".env.example").write_text("JWT_SECRET=thisisasamplesecret\n")
    recipe = detect(tmp_path)
    assert recipe.setup[0] == "[ -e .env ] || cp .env.example .env", recipe.setup
    assert "setup: .env.example" in recipe.as_dict()["sources"]
    (tmp_path / ".env").write_text("JWT_SECRET=mine\n")
    assert not any(".env" in line for line in detect(tmp_path).setup)  # a real .env is left alone
