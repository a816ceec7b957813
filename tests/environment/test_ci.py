"""environment/ci.py: the install and test steps of the repository's own CI."""

from __future__ import annotations

from pathlib import Path

from patchwright.environment import ci
from patchwright.environment.files import RepoFiles

WORKFLOW = """
name: CI
on: push
env:
  GLOBAL: "1"
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: pip install ruff && ruff check .
      - run: pytest --collect-only  # lint jobs that also collect are not the test job: fewer steps
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.12", "3.13"]
        node: [20]
    defaults:
      run:
        working-directory: backend
    env:
      DATABASE_URL: postgres://u:p@localhost/db
      TOKEN: ${{ secrets.TOKEN }}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - uses: astral-sh/setup-uv@v3
        with:
          version: "0.4.0"
      - uses: actions/setup-node@v4
        with:
          node-version: ${{ matrix.node }}
      - run: sudo apt-get install -y libpq-dev
      - name: Deps
        run: |
          uv sync --frozen
          echo "${{ github.sha }}"
      - name: Cache key
        run: echo ${{ hashFiles('uv.lock') }}
      - run: uv run pytest -x
        env:
          EXTRA: "yes"
"""


def repo_with(tmp_path: Path, files: dict[str, str]) -> RepoFiles:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RepoFiles(tmp_path)


def test_the_job_that_runs_the_tests_is_chosen_with_its_steps(tmp_path: Path) -> None:
    plan = ci.find(repo_with(tmp_path, {".github/workflows/ci.yml": WORKFLOW}))
    assert plan is not None
    assert plan.source == ".github/workflows/ci.yml job `test`"
    assert plan.test == "uv run pytest -x"
    assert plan.workdir == "backend"
    assert plan.setup == ["cd backend && uv sync --frozen"]  # the echo of an expression is not an install
    assert plan.env == {"GLOBAL": "1", "DATABASE_URL": "postgres://u:p@localhost/db", "EXTRA": "yes"}
    tools = {req.tool: req.version for req in plan.tools}
    assert tools == {"python": "3.12 3.13", "uv": "0.4.0", "node": "20"}
    joined = " ".join(plan.notes)
    assert "TOKEN" in joined and "apt-get" in joined and "Cache key" in joined


def test_unresolvable_expressions_drop_their_step(tmp_path: Path) -> None:
    workflow = """
jobs:
  t:
    steps:
      - run: pip install -r ${{ inputs.file }}
      - run: pip install -e .
      - run: python -m pytest
"""
    plan = ci.find(repo_with(tmp_path, {".github/workflows/t.yaml": workflow}))
    assert plan is not None
    assert plan.setup == ["pip install -e ."]
    assert any("cannot resolve" in note for note in plan.notes)


def test_a_symlinked_workflow_folder_is_ignored(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "workflows").mkdir(parents=True)
    (outside / "workflows" / "ci.yml").write_text(WORKFLOW)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".github").symlink_to(outside)
    assert ci.find(RepoFiles(repo)) is None


def test_gitlab_travis_devcontainer_and_makefile(tmp_path: Path) -> None:
    gitlab = """
image: python:3.12
variables:
  DJANGO_SETTINGS_MODULE: app.settings
before_script:
  - pip install -r requirements.txt
test:
  script:
    - python manage.py migrate
    - python manage.py test
"""
    plan = ci.find(repo_with(tmp_path / "g", {".gitlab-ci.yml": gitlab}))
    assert plan is not None and plan.test == "python manage.py test"
    assert plan.setup == ["pip install -r requirements.txt", "python manage.py migrate"]
    assert plan.env == {"DJANGO_SETTINGS_MODULE": "app.settings"}
    assert [(r.tool, r.version) for r in plan.tools] == [("python", "3.12")]

    travis = "language: node_js\nnode_js: ['18']\ninstall: npm ci\nscript: npm test\n"
    plan = ci.find(repo_with(tmp_path / "t", {".travis.yml": travis}))
    assert plan is not None and plan.setup == ["npm ci"] and plan.test == "npm test"

    devcontainer = '{\n // comment\n "postCreateCommand": "pip install -e .[dev]",\n "features": {"ghcr.io/devcontainers/features/node:1": {"version": "20"}}\n}'
    plan = ci.find(repo_with(tmp_path / "d", {".devcontainer/devcontainer.json": devcontainer}))
    assert plan is not None and plan.setup == ["pip install -e .[dev]"] and plan.test is None
    assert [(r.tool, r.version) for r in plan.tools] == [("node", "20")]

    plan = ci.find(repo_with(tmp_path / "m", {"Makefile": "deps:\n\tpip install x\ntest:\n\tpytest\n"}))
    assert plan is not None and plan.setup == ["make deps"] and plan.test == "make test"


def test_an_install_that_names_a_test_tool_is_setup_not_the_test(tmp_path: Path) -> None:
    workflow = """
jobs:
  test:
    steps:
      - run: pip install psycopg2-binary pytest
      - run: |
          npm install -g jest
          python -m pytest -q
"""
    plan = ci.find(repo_with(tmp_path, {".github/workflows/t.yml": workflow}))
    assert plan is not None
    assert plan.setup == ["pip install psycopg2-binary pytest", "npm install -g jest"]
    assert plan.test == "python -m pytest -q"
