"""Declared services patchwright cannot run are named: by detection, to the model, on screen
and in summary.json; never dropped without a word."""

from __future__ import annotations

import json
from pathlib import Path

from patchwright.services.detect import detect
from patchwright.services.plan import plan_services, service_notes

from agentrun import agent_env, run_agent
from fakeapi import FakeAnthropic, message, text
from helpers import make_repo

COMPOSE = """
services:
  api:
    build: .
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: pw}
  mongo:
    image: mongo:7
  queue:
    image: docker.io/library/rabbitmq:3-management
  search:
    image: docker.elastic.co/elasticsearch/elasticsearch:8.13.0
  web:
    image: nginx:1.27
"""
WORKFLOW = """
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    services:
      kafka: {image: "bitnami/kafka:3.7"}
      mongodb: mongo:6
"""


def test_detection_names_the_kinds_it_cannot_run(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo", {"compose.yaml": COMPOSE, ".github/workflows/ci.yml": WORKFLOW}, commit=False
    )
    found = detect(repo)
    assert [s.kind for s in found.specs] == ["postgres"]
    # one entry per kind (mongo is in both files); a web server is no backing service
    assert [(u.name, u.kind, u.source) for u in found.unsupported] == [
        ("mongo", "MongoDB", "compose.yaml"),
        ("queue", "RabbitMQ", "compose.yaml"),
        ("search", "Elasticsearch", "compose.yaml"),
        ("kafka", "Kafka", ".github/workflows/ci.yml"),
    ]
    plan = plan_services(None, repo)
    warning = plan.unsupported_warning()
    assert warning is not None and "mongo (MongoDB, image mongo:7, from compose.yaml)" in warning
    notes = service_notes(plan)
    assert "postgres" in notes and "cannot run them" in notes and "Kafka" in notes
    # asked for explicitly, the services are the user's: nothing is detected, nothing named
    assert plan_services(("redis",), repo).unsupported == []


def test_a_run_warns_and_writes_them_to_the_summary(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(tmp_path / "repo", {"docker-compose.yml": "services:\n  mongo:\n    image: mongo:7\n"})
    with FakeAnthropic([message(text("nothing to do"))]) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(repo), "--format", "json"],
            agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),
        )
        system = json.dumps(api.requests[0].body["system"]) + json.dumps(api.requests[0].body["messages"])
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert "warning: not started: mongo (MongoDB, image mongo:7, from docker-compose.yml)" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["services_unsupported"] == [
        {"name": "mongo", "kind": "MongoDB", "image": "mongo:7", "source": "docker-compose.yml"}
    ]
    assert "MongoDB" in system  # the model is told too
