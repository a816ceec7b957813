"""Service specs, detection from a repo's compose file and workflows (hostile input included),
the variables the sandbox gets, and the settings/flags that choose services. No Docker here."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from patchwright.config import load_settings
from patchwright.errors import ConfigError, UsageError
from patchwright.sandbox.local import LocalSandbox
from patchwright.services.detect import MAX_FILE_BYTES, detect
from patchwright.services.plan import plan_services, service_notes
from patchwright.services.servers import sandbox_env
from patchwright.services.spec import merge, parse_spec


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_specs_parse_with_the_official_images_defaults() -> None:
    pg = parse_spec("postgres:15")
    assert (pg.kind, pg.names, pg.port, pg.user, pg.password, pg.database) == (
        "postgres",
        ("postgres",),
        5432,
        "postgres",
        "postgres",
        "postgres",
    )
    assert pg.notes == ()  # Debian has 15
    named = parse_spec("db=postgresql")
    assert named.names == ("db", "postgresql", "postgres")
    mysql = parse_spec("mysql:8")
    assert (mysql.kind, mysql.port, mysql.user, mysql.password, mysql.database) == (
        "mariadb",
        3306,
        "root",
        "root",
        "test",
    )
    assert mysql.names == ("mysql", "mariadb")
    assert parse_spec("redis:7").notes == () and parse_spec("redis").port == 6379


def test_a_version_debian_lacks_runs_on_the_nearest_with_one_warning() -> None:
    spec = parse_spec("postgres:16-alpine")
    assert spec.version == "16-alpine"
    assert len(spec.notes) == 1 and "running Debian's postgres 15" in spec.notes[0]
    assert parse_spec("postgres:15.4").notes == ()
    assert "MariaDB 10.11" in parse_spec("mysql:8").notes[0]


@pytest.mark.parametrize(
    "text", ["mongo", "postgres:15;rm -rf /", "", "Localhost=redis", "localhost=redis", "x=", "evil/postgres"]
)
def test_unknown_services_and_bad_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_spec(text)


def test_one_server_per_kind_and_names_must_not_clash() -> None:
    merged = merge([parse_spec("db=postgres"), parse_spec("postgres:15"), parse_spec("redis")])
    assert [spec.names for spec in merged] == [("db", "postgres"), ("redis",)]
    with pytest.raises(UsageError, match="given to both"):
        merge([parse_spec("db=postgres"), parse_spec("db=redis")])


def test_sandbox_variables() -> None:
    env = sandbox_env(merge([parse_spec("redis"), parse_spec("mysql"), parse_spec("postgres")]))
    assert env["DATABASE_URL"] == "mysql://root:root@127.0.0.1:3306/test"  # the first SQL service
    assert (
        env["PGHOST"] == "127.0.0.1" and env["PGPASSWORD"] == "postgres" and env["PGDATABASE"] == "postgres"
    )
    assert env["MYSQL_TCP_PORT"] == "3306" and env["MYSQL_USER"] == "root"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379/0"


COMPOSE = """
services:
  app:
    build: .
    depends_on: [db, cache]
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: "${DB_PASSWORD:-s3cret}"
      POSTGRES_DB: orders
    ports: ["5433:5432"]
  cache:
    image: docker.io/library/redis:7-alpine
  search:
    image: elasticsearch:8
"""

WORKFLOW = """
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    services:
      postgres:
        image: postgres:15
        env:
          POSTGRES_PASSWORD: ${{ secrets.PG }}
        ports: ["5432:5432"]
      mysql:
        image: mysql:8.0
        env:
          MYSQL_ROOT_PASSWORD: rootpw
          MYSQL_DATABASE: app_test
        ports:
          - 3307:3306
"""


def test_detection_from_compose_and_workflows(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", COMPOSE)
    write(tmp_path, ".github/workflows/ci.yml", WORKFLOW)
    found = detect(tmp_path)
    by_kind = {spec.kind: spec for spec in found.specs}
    assert set(by_kind) == {"postgres", "redis", "mariadb"}  # not elasticsearch, not the app
    pg = by_kind["postgres"]
    # compose comes first: its credentials, its container port (apps in compose use db:5432),
    # and the workflow's name as a second name of the same server
    assert (pg.user, pg.password, pg.database, pg.port) == ("shop", "s3cret", "orders", 5432)
    assert pg.names == ("db", "postgres") and pg.source == "compose.yaml"
    assert any("other credentials" in note for note in pg.notes)
    assert any("running Debian's postgres 15" in note for note in pg.notes)
    assert by_kind["redis"].names == ("cache",)
    maria = by_kind["mariadb"]
    # a job on the runner reaches its service on the published port
    assert (maria.user, maria.password, maria.database, maria.port) == ("root", "rootpw", "app_test", 3307)


def test_an_actions_expression_falls_back_to_the_default(tmp_path: Path) -> None:
    write(tmp_path, ".github/workflows/ci.yaml", WORKFLOW)
    pg = next(spec for spec in detect(tmp_path).specs if spec.kind == "postgres")
    assert pg.password == "postgres" and pg.port == 5432


def test_plan_flags_win_over_detection_and_empty_means_none(tmp_path: Path) -> None:
    write(tmp_path, "docker-compose.yml", COMPOSE)
    assert {s.kind for s in plan_services(None, tmp_path).specs} == {"postgres", "redis"}
    assert [s.kind for s in plan_services(("mysql:8",), tmp_path).specs] == ["mariadb"]
    assert plan_services((), tmp_path).specs == []
    with pytest.raises(UsageError, match="unknown service 'mongo'"):
        plan_services(("mongo",), tmp_path)
    notes = service_notes(plan_services(None, tmp_path))
    assert "- db: postgres 15 at 127.0.0.1:5432, user shop / password s3cret, database orders" in notes
    assert "DATABASE_URL, PG*, REDIS_URL" in notes


def test_hostile_files_are_skipped_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "compose.yaml", COMPOSE)
    write(outside, "workflows/ci.yml", WORKFLOW)
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(outside / "compose.yaml", repo / "compose.yaml")  # a symlinked file
    (repo / ".github").mkdir()
    os.symlink(outside / "workflows", repo / ".github" / "workflows")  # a symlinked folder
    assert detect(repo).specs == []
    # a symlinked .github itself
    repo2 = tmp_path / "repo2"
    repo2.mkdir()
    os.symlink(outside, repo2 / ".github")
    assert detect(repo2).specs == []
    # a FIFO is not opened (it would block)
    repo3 = tmp_path / "repo3"
    repo3.mkdir()
    os.mkfifo(repo3 / "compose.yaml")
    assert detect(repo3).specs == []


def test_yaml_bombs_huge_files_and_garbage_cost_nothing(tmp_path: Path) -> None:
    def levels(count: int, width: int) -> str:
        text = "a: &a [" + ",".join("x" * width) + "]\n"
        for i in range(1, count):
            text += f"l{i}: &l{i} [" + ",".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * width) + "]\n"
        return text

    # Over the alias cap: refused while parsing.
    write(tmp_path, "compose.yaml", levels(30, 9) + "services:\n  db:\n    image: postgres\n")
    # Under the cap (80 aliases, 4**20 leaves if walked): read without walking it.
    small = levels(21, 4) + "jobs:\n  t:\n    services:\n      db:\n        image: redis\n        env: *l20\n"
    write(tmp_path, ".github/workflows/c.yml", small)
    write(tmp_path, "compose.yml", "services:\n  db:\n    image: redis\n" + "#" * (MAX_FILE_BYTES + 10))
    write(tmp_path, "docker-compose.yaml", b"\xff\xfe: [unclosed\n\t- ")
    write(tmp_path, "docker-compose.yml", "[" * 5000 + "]" * 5000)
    write(tmp_path, ".github/workflows/a.yml", "jobs: 3\n")
    write(tmp_path, ".github/workflows/b.yml", "jobs:\n  t:\n    services: '${{ fromJSON(x) }}'\n")
    started = time.monotonic()
    found = detect(tmp_path)
    assert time.monotonic() - started < 5
    assert [(spec.kind, spec.names) for spec in found.specs] == [("redis", ("db",))]  # from c.yml
    joined = "\n".join(found.notes)
    assert "compose.yaml: not valid YAML" in joined and "aliases" in joined
    assert "compose.yml: not read" in joined
    assert "docker-compose.yaml: not valid YAML" in joined


def test_a_bad_detected_value_skips_that_service_with_a_note(tmp_path: Path) -> None:
    write(
        tmp_path,
        "compose.yaml",
        "services:\n  db:\n    image: postgres\n    environment:\n"
        '      - POSTGRES_DB=x";drop\n  cache:\n    image: redis\n',
    )
    found = detect(tmp_path)
    assert [s.kind for s in found.specs] == ["redis"]
    assert "database 'x\";drop' is not a plain name" in found.notes[0]


def test_settings_flags_config_and_environment(tmp_path: Path) -> None:
    write(tmp_path, ".patchwright/config.toml", 'services = ["postgres:15", "redis"]\n')
    settings, _ = load_settings(tmp_path, tmp_path, {}, {})
    assert settings.services == ("postgres:15", "redis")
    settings, _ = load_settings(tmp_path, tmp_path, {"PATCHWRIGHT_SERVICES": "mysql, redis"}, {})
    assert settings.services == ("mysql", "redis")
    settings, _ = load_settings(tmp_path, tmp_path, {"PATCHWRIGHT_SERVICES": "none"}, {})
    assert settings.services == ()
    settings, _ = load_settings(tmp_path, tmp_path, {}, {"services": ()})
    assert settings.services == ()
    write(tmp_path, ".patchwright/config.toml", "services = [1]\n")
    with pytest.raises(ConfigError, match="list of strings"):
        load_settings(tmp_path, tmp_path, {}, {})


def test_the_github_actions_example_needs_no_flags(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "github" / "tests.yml"
    write(tmp_path, ".github/workflows/patchwright-fix.yml", example.read_text())
    plan = plan_services(None, tmp_path)
    [pg] = plan.specs
    assert plan.detected and plan.notes == []
    assert (pg.kind, pg.names, pg.user, pg.password, pg.database, pg.port) == (
        "postgres",
        ("postgres",),
        "app",
        "app",
        "app_test",
        5432,
    )
    # the job's DATABASE_URL is what the sandbox gets, but with the loopback address
    assert sandbox_env(plan.specs)["DATABASE_URL"] == "postgresql://app:app@127.0.0.1:5432/app_test"


def test_the_service_tool_checks_its_input_before_touching_anything() -> None:
    from patchwright.services import ServiceSet
    from patchwright.tools import build_toolset
    from patchwright.tools.base import ToolError
    from patchwright.tools.service import ServiceTool

    services = ServiceSet(None, merge([parse_spec("db=postgres"), parse_spec("redis")]))
    tool = ServiceTool(services)
    assert tool.definition()["input_schema"]["properties"]["action"]["enum"] == [
        "status",
        "logs",
        "restart",
        "stop",
        "start",
    ]
    assert "db (postgres), redis (redis)" in tool.definition()["description"]
    with pytest.raises(ToolError, match="`action` must be one of"):
        tool.run({"action": "drop"})
    with pytest.raises(ToolError, match="`name` is required: one of db, redis"):
        tool.run({"action": "restart"})
    with pytest.raises(ToolError, match="no service 'mongo'; the run's services: db, postgres, redis"):
        tool.run({"action": "logs", "name": "mongo"})
    status = tool.run({"action": "status"}).content.splitlines()
    assert (
        status[0]
        == "db/postgres: postgres 15 on 127.0.0.1:5432 (user postgres, database postgres): not started"
    )
    failed = tool.run({"action": "logs", "name": "postgres"})  # by its second name
    assert failed.is_error and "service postgres is not running" in failed.content
    # Offered only when the run has services.
    with_services = LocalSandbox()
    with_services.services = services
    assert "service" in build_toolset(with_services, "m", 10.0).tools
    with_services.services = ServiceSet(None, [])
    assert "service" not in build_toolset(with_services, "m", 10.0).tools
    assert "service" not in build_toolset(LocalSandbox(), "m", 10.0).tools  # a sandbox without services
