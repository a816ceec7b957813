"""The variables a repository declares for its tests: compose's application services (their
`environment:` and committed `env_file:`) and the workflows' `env:`; never patchwright's own."""

from __future__ import annotations

import os
from pathlib import Path

from patchwright.services.variables import parse_env_file, repo_variables

from helpers import make_repo

COMPOSE = """
services:
  api:
    build: .
    env_file: [.env, config/test.env, ../outside.env, /etc/passwd]
    environment:
      DATABASE_URL: postgres://app:pw@db:5432/app
      DEBUG: "1"
      PATH: /evil
      LD_PRELOAD: /tmp/x.so
      CACHE_URL: ${CACHE_URL:-redis://cache:6379/0}
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: pw}
"""
WORKFLOW = """
on: push
env:
  TZ: UTC
jobs:
  lint:
    runs-on: ubuntu-latest
    env: {LINT_ONLY: "1"}
    steps: [{run: ruff check .}]
  test:
    runs-on: ubuntu-latest
    env:
      DJANGO_SETTINGS_MODULE: app.settings.test
      STRIPE_KEY: ${{ secrets.STRIPE_KEY }}
      PYTHONPATH: /evil
    steps:
      - uses: actions/checkout@v4
      - run: python -m pytest
"""


def test_compose_and_ci_variables_are_read_and_reserved_ones_left_out(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "docker-compose.yml": COMPOSE,
            ".github/workflows/ci.yml": WORKFLOW,
            ".env": "# committed\nexport SECRET_KEY='dev-secret-key-123'\nEMPTY=\n",
            "config/test.env": "FEATURE_X=on # comment\nHOME=/root\n",
        },
    )
    (tmp_path / "outside.env").write_text("OUTSIDE=1\n")
    found = repo_variables(repo)
    assert found.values == {
        "TZ": "UTC",
        "DJANGO_SETTINGS_MODULE": "app.settings.test",
        "SECRET_KEY": "dev-secret-key-123",
        "EMPTY": "",
        "FEATURE_X": "on",
        "DATABASE_URL": "postgres://app:pw@db:5432/app",
        "DEBUG": "1",
        "CACHE_URL": "redis://cache:6379/0",
    }
    assert found.sources["SECRET_KEY"] == ".env" and found.sources["TZ"] == ".github/workflows/ci.yml"
    assert found.unavailable == ["STRIPE_KEY (.github/workflows/ci.yml)"]
    assert {"name": "DEBUG", "source": "docker-compose.yml"} in found.describe()
    assert all("value" not in item for item in found.describe())


def test_a_symlinked_env_file_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "host.env"
    secret.write_text("HOST_SECRET=1\n")
    repo = make_repo(
        tmp_path / "repo", {"compose.yaml": "services:\n  app:\n    build: .\n    env_file: .env\n"}
    )
    os.symlink(secret, repo / ".env")
    assert repo_variables(repo).values == {}


def test_env_file_lines() -> None:
    data = b'A=1\n\n# c\nexport B="two words"\nC=x # note\nbad line\n1X=2\nD==e\n'
    assert parse_env_file(data) == {"A": "1", "B": "two words", "C": "x", "D": "=e"}
